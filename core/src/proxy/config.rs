//! `proxy.conf`: the grammar, its meaning, and the routing it implies.
//!
//! ```text
//! # comments run to the end of the line
//! proxy_connect_timeout 5s;             # top level: defaults for every host
//! host "app2.local" {                   # also "name:port"; names match without case
//!     proxy_set_header Host $host;      # $host $remote_addr $scheme $request_id
//!     proxy_pass http://127.0.0.1:9001 weight=2;
//!     proxy_pass http://127.0.0.1:9002;
//!     proxy_pass http://127.0.0.1:9003 backup;
//!     dist_policy round-robin;          # weighted least-conn random ip-hash
//!     location /api/ { proxy_pass http://127.0.0.1:9100; proxy_read_timeout 120s; }
//! }
//! default { proxy_pass http://127.0.0.1:9000; }   # for unknown hosts (else 404)
//! ```
//!
//! Decisions (nginx's where it has one):
//! * A directive ends with `;`. The seed's file writes `dist_policy round-robin` right before
//!   `}` without one: accepted, with a warning that names the line. A missing `;` anywhere else
//!   is an error (it would swallow the next directive as arguments).
//! * `proxy_set_header` at a level replaces the headers set at the levels above (nginx); the
//!   other directives are inherited unless the level sets them. A `location` without
//!   `proxy_pass` uses its host's upstreams.
//! * Timeouts: connect 5 s (nginx's 60 s makes failover to the next backend a minute long;
//!   a loopback or LAN backend that has not answered in 5 s is down), read 60 s, send 60 s.
//!   Values: `500ms`, `30s`, `2m`, or a bare number of seconds.
//! * Errors say `line:column: what was expected`; the caller prefixes the file name.

use super::lex::{tokens, Pos, Tok};
use crate::http::parse::valid_host;
use crate::time::Duration;
use std::fmt::Write as _;

/// How a location picks among its upstreams.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    RoundRobin,
    Weighted,
    LeastConn,
    Random,
    IpHash,
}

impl Policy {
    fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "round-robin" => Policy::RoundRobin,
            "weighted" => Policy::Weighted,
            "least-conn" => Policy::LeastConn,
            "random" => Policy::Random,
            "ip-hash" => Policy::IpHash,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round-robin",
            Policy::Weighted => "weighted",
            Policy::LeastConn => "least-conn",
            Policy::Random => "random",
            Policy::IpHash => "ip-hash",
        }
    }
}

/// One `proxy_pass` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub weight: u32,
    /// Used only when every non-backup upstream is down.
    pub backup: bool,
}

impl Upstream {
    /// `host:port`, as a socket address string.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A variable in a `proxy_set_header` value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Var {
    Host,
    RemoteAddr,
    Scheme,
    RequestId,
}

impl Var {
    fn parse(s: &str) -> Option<Var> {
        Some(match s {
            "host" => Var::Host,
            "remote_addr" => Var::RemoteAddr,
            "scheme" => Var::Scheme,
            "request_id" => Var::RequestId,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Var::Host => "host",
            Var::RemoteAddr => "remote_addr",
            Var::Scheme => "scheme",
            Var::RequestId => "request_id",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(Var),
}

/// `proxy_set_header NAME VALUE;` (an empty value removes the header, as in nginx).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetHeader {
    pub name: String,
    pub value: Vec<Part>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub send: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            send: Duration::from_secs(60),
        }
    }
}

/// Where requests whose path starts with `prefix` go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub prefix: String,
    pub upstreams: Vec<Upstream>,
    pub policy: Policy,
    pub set_headers: Vec<SetHeader>,
    pub timeouts: Timeouts,
}

/// A `host` block (or the `default` block, whose name is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualHost {
    /// Lower case, without the port.
    pub name: String,
    pub port: Option<u16>,
    pub pos: Pos,
    /// Longest prefix first; the last one is always `/`.
    pub locations: Vec<Location>,
}

impl VirtualHost {
    /// The location for `path` (longest matching prefix).
    pub fn location(&self, path: &str) -> &Location {
        &self.locations[self.location_index(path)]
    }
    /// The index of [`VirtualHost::location`] in `locations`.
    pub fn location_index(&self, path: &str) -> usize {
        self.locations
            .iter()
            .position(|l| path.starts_with(&l.prefix))
            .unwrap_or(self.locations.len() - 1)
    }
    pub fn label(&self) -> String {
        match (self.name.as_str(), self.port) {
            ("", _) => "default".into(),
            (n, Some(p)) => format!("{n}:{p}"),
            (n, None) => n.to_string(),
        }
    }
}

/// A warning or error at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// A parsed, valid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub hosts: Vec<VirtualHost>,
    pub default: Option<VirtualHost>,
    pub warnings: Vec<Diagnostic>,
}

/// Most host blocks, locations per host and upstreams per location (a limit on everything).
pub const MAX_HOSTS: usize = 10_000;
pub const MAX_LOCATIONS: usize = 1_000;
pub const MAX_UPSTREAMS: usize = 1_000;

impl Config {
    /// Parses a whole file.
    pub fn parse(text: &str) -> Result<Config, Diagnostic> {
        let toks = tokens(text).map_err(|e| Diagnostic {
            pos: e.pos,
            message: e.message,
        })?;
        let end = toks.last().map_or(Pos { line: 1, col: 1 }, |(p, _)| *p);
        let mut p = Parser {
            toks,
            i: 0,
            end,
            warnings: Vec::new(),
        };
        let config = p.file()?;
        let mut warnings = p.warnings;
        if config.hosts.is_empty() && config.default.is_none() {
            warnings.push(Diagnostic {
                pos: Pos { line: 1, col: 1 },
                message: "no host block and no default: every request will be answered 404".into(),
            });
        }
        Ok(Config { warnings, ..config })
    }

    /// The host block for a `Host` header value: `name:port` first, then the bare name, then
    /// `default`. Names compare without case; a trailing dot is ignored.
    pub fn route(&self, host_header: &str) -> Option<&VirtualHost> {
        self.host(self.route_index(host_header)?)
    }

    /// The host block at an index of [`Config::route_index`].
    pub fn host(&self, index: usize) -> Option<&VirtualHost> {
        match index {
            usize::MAX => self.default.as_ref(),
            i => self.hosts.get(i),
        }
    }

    /// [`Config::route`] as an index into `hosts`, `usize::MAX` for the `default` block.
    pub fn route_index(&self, host_header: &str) -> Option<usize> {
        let h = host_header.trim().to_ascii_lowercase();
        let (name, port) = split_host_port(&h);
        let name = name.strip_suffix('.').unwrap_or(name);
        self.hosts
            .iter()
            .position(|v| v.name == name && v.port.is_some() && v.port == port)
            .or_else(|| {
                self.hosts
                    .iter()
                    .position(|v| v.name == name && v.port.is_none())
            })
            .or(self.default.as_ref().map(|_| usize::MAX))
    }

    /// The routing table, as `proxy --check` prints it.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for v in self.hosts.iter().chain(self.default.iter()) {
            for l in &v.locations {
                let ups: Vec<String> = l
                    .upstreams
                    .iter()
                    .map(|u| {
                        let mut s = u.addr();
                        if u.weight != 1 {
                            let _ = write!(s, " weight={}", u.weight);
                        }
                        if u.backup {
                            s.push_str(" backup");
                        }
                        s
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{:<24} {:<12} {:<12} -> {}",
                    v.label(),
                    l.prefix,
                    l.policy.as_str(),
                    ups.join(", ")
                );
            }
        }
        out
    }

    /// The configuration written back in canonical form (every inherited value spelled out per
    /// location). Parsing it gives the same configuration, warnings aside.
    pub fn to_conf(&self) -> String {
        let mut out = String::new();
        for v in self.hosts.iter().chain(self.default.iter()) {
            if v.name.is_empty() {
                out.push_str("default {\n");
            } else {
                let _ = writeln!(out, "host {} {{", quote(&v.label()));
            }
            for l in &v.locations {
                let _ = writeln!(out, "  location {} {{", quote(&l.prefix));
                for u in &l.upstreams {
                    let _ = write!(out, "    proxy_pass http://{}", u.addr());
                    if u.weight != 1 {
                        let _ = write!(out, " weight={}", u.weight);
                    }
                    if u.backup {
                        out.push_str(" backup");
                    }
                    out.push_str(";\n");
                }
                let _ = writeln!(out, "    dist_policy {};", l.policy.as_str());
                for h in &l.set_headers {
                    let value: String = h
                        .value
                        .iter()
                        .map(|p| match p {
                            Part::Lit(s) => s.replace('$', "$$"),
                            Part::Var(v) => format!("${{{}}}", v.name()),
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "    proxy_set_header {} {};",
                        quote(&h.name),
                        quote(&value)
                    );
                }
                let t = &l.timeouts;
                let _ = writeln!(
                    out,
                    "    proxy_connect_timeout {}ms;\n    proxy_read_timeout {}ms;\n    proxy_send_timeout {}ms;",
                    t.connect.as_nanos() / 1_000_000,
                    t.read.as_nanos() / 1_000_000,
                    t.send.as_nanos() / 1_000_000
                );
                out.push_str("  }\n");
            }
            out.push_str("}\n");
        }
        out
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `name[:port]` → (name, port); a bracketed IPv6 literal keeps its brackets.
fn split_host_port(h: &str) -> (&str, Option<u16>) {
    let colon = if h.starts_with('[') {
        h.find(']')
            .and_then(|e| (h.as_bytes().get(e + 1) == Some(&b':')).then_some(e + 1))
    } else {
        h.rfind(':')
    };
    match colon {
        Some(c) => match h[c + 1..].parse::<u16>() {
            Ok(p) => (&h[..c], Some(p)),
            Err(_) => (h, None),
        },
        None => (h, None),
    }
}

/// What one level (the top, a host, a location) sets; unset values come from the level above.
#[derive(Clone, Default)]
struct Settings {
    upstreams: Vec<Upstream>,
    policy: Option<Policy>,
    set_headers: Option<Vec<SetHeader>>,
    connect: Option<Duration>,
    read: Option<Duration>,
    send: Option<Duration>,
}

impl Settings {
    /// `self` with every unset value taken from `outer` (upstreams too, when it has none).
    fn under(&self, outer: &Settings) -> Settings {
        Settings {
            upstreams: if self.upstreams.is_empty() {
                outer.upstreams.clone()
            } else {
                self.upstreams.clone()
            },
            policy: self.policy.or(outer.policy),
            set_headers: self
                .set_headers
                .clone()
                .or_else(|| outer.set_headers.clone()),
            connect: self.connect.or(outer.connect),
            read: self.read.or(outer.read),
            send: self.send.or(outer.send),
        }
    }
    fn location(self, prefix: String) -> Location {
        let d = Timeouts::default();
        Location {
            prefix,
            upstreams: self.upstreams,
            policy: self.policy.unwrap_or(Policy::RoundRobin),
            set_headers: self.set_headers.unwrap_or_default(),
            timeouts: Timeouts {
                connect: self.connect.unwrap_or(d.connect),
                read: self.read.unwrap_or(d.read),
                send: self.send.unwrap_or(d.send),
            },
        }
    }
}

struct Parser {
    toks: Vec<(Pos, Tok)>,
    i: usize,
    end: Pos,
    warnings: Vec<Diagnostic>,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, Diagnostic> {
    Err(Diagnostic {
        pos,
        message: message.into(),
    })
}

impl Parser {
    fn peek(&self) -> Option<&(Pos, Tok)> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<(Pos, Tok)> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn expect_open(&mut self, what: &str) -> Result<(), Diagnostic> {
        match self.next() {
            Some((_, Tok::Open)) => Ok(()),
            Some((pos, t)) => err(pos, format!("expected `{{` to open {what}, found {t}")),
            None => err(
                self.end,
                format!("expected `{{` to open {what}, found the end of the file"),
            ),
        }
    }
    /// The name or prefix after `host` or `location`.
    fn name_after(&mut self, what: &str) -> Result<(Pos, String), Diagnostic> {
        match self.next() {
            Some((p, Tok::Str(s) | Tok::Word(s))) => Ok((p, s)),
            Some((p, t)) => err(p, format!("expected {what}, found {t}")),
            None => err(
                self.end,
                format!("expected {what}, found the end of the file"),
            ),
        }
    }

    fn file(&mut self) -> Result<Config, Diagnostic> {
        let mut top = Settings::default();
        let mut hosts: Vec<VirtualHost> = Vec::new();
        let mut default: Option<VirtualHost> = None;
        while let Some((pos, tok)) = self.next() {
            let Tok::Word(word) = tok else {
                return err(
                    pos,
                    format!("expected a directive (`host`, `default`, ...), found {tok}"),
                );
            };
            match word.as_str() {
                "host" => {
                    let (name_pos, name) = self.name_after("the host name after `host`")?;
                    let (hname, port) = host_name(&name).ok_or(Diagnostic {
                        pos: name_pos,
                        message: format!("`{name}` is not a host name with an optional :port"),
                    })?;
                    if let Some(prev) = hosts.iter().find(|h| h.name == hname && h.port == port) {
                        return err(
                            name_pos,
                            format!("host `{name}` is already defined at {}", prev.pos),
                        );
                    }
                    if hosts.len() >= MAX_HOSTS {
                        return err(pos, format!("more than {MAX_HOSTS} host blocks"));
                    }
                    self.expect_open("the host block")?;
                    let locations = self.host_body(&top, pos, &name)?;
                    hosts.push(VirtualHost {
                        name: hname,
                        port,
                        pos,
                        locations,
                    });
                }
                "default" => {
                    if let Some(prev) = &default {
                        return err(pos, format!("`default` is already defined at {}", prev.pos));
                    }
                    self.expect_open("the default block")?;
                    let locations = self.host_body(&top, pos, "default")?;
                    default = Some(VirtualHost {
                        name: String::new(),
                        port: None,
                        pos,
                        locations,
                    });
                }
                "proxy_pass" | "location" => {
                    return err(
                        pos,
                        format!("`{word}` belongs inside a `host` or `default` block"),
                    );
                }
                _ => self.setting(pos, &word, &mut top, "the top level")?,
            }
        }
        Ok(Config {
            hosts,
            default,
            warnings: Vec::new(),
        })
    }

    /// The inside of a host block, after its `{`, resolved into its locations.
    fn host_body(
        &mut self,
        top: &Settings,
        open: Pos,
        name: &str,
    ) -> Result<Vec<Location>, Diagnostic> {
        let mut own = Settings::default();
        let mut raw: Vec<(Pos, String, Settings)> = Vec::new();
        loop {
            let Some((pos, tok)) = self.next() else {
                return err(
                    self.end,
                    format!("the block of host `{name}` opened at {open} is not closed with `}}`"),
                );
            };
            match tok {
                Tok::Close => break,
                Tok::Word(w) if w == "location" => {
                    let (ppos, prefix) = self.name_after("a path prefix after `location`")?;
                    if !prefix.starts_with('/') {
                        return err(
                            ppos,
                            format!("a location prefix starts with `/`, `{prefix}` does not"),
                        );
                    }
                    if raw.iter().any(|(_, p, _)| *p == prefix) {
                        return err(
                            ppos,
                            format!("location `{prefix}` is defined twice in host `{name}`"),
                        );
                    }
                    if raw.len() >= MAX_LOCATIONS {
                        return err(ppos, format!("more than {MAX_LOCATIONS} locations"));
                    }
                    self.expect_open("the location block")?;
                    let settings = self.location_body(pos, &prefix)?;
                    raw.push((ppos, prefix, settings));
                }
                Tok::Word(w) if w == "host" || w == "default" => {
                    return err(pos, format!("`{w}` cannot be nested in host `{name}`"));
                }
                Tok::Word(w) => self.setting(pos, &w, &mut own, &format!("host `{name}`"))?,
                t => {
                    return err(
                        pos,
                        format!("expected a directive in host `{name}`, found {t}"),
                    )
                }
            }
        }
        let host = own.under(top);
        if !raw.iter().any(|(_, p, _)| p == "/") {
            raw.push((open, "/".to_string(), Settings::default()));
        }
        let mut locations = Vec::with_capacity(raw.len());
        for (ppos, prefix, settings) in raw {
            let resolved = settings.under(&host);
            if resolved.upstreams.is_empty() {
                return err(
                    ppos,
                    format!("host `{name}` has no `proxy_pass` for location `{prefix}`"),
                );
            }
            locations.push(resolved.location(prefix));
        }
        locations.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| a.prefix.cmp(&b.prefix))
        });
        Ok(locations)
    }

    /// The inside of a location block, after its `{`.
    fn location_body(&mut self, open: Pos, prefix: &str) -> Result<Settings, Diagnostic> {
        let mut s = Settings::default();
        loop {
            let Some((pos, tok)) = self.next() else {
                return err(
                    self.end,
                    format!("location `{prefix}` opened at {open} is not closed with `}}`"),
                );
            };
            match tok {
                Tok::Close => return Ok(s),
                Tok::Word(w) if matches!(w.as_str(), "location" | "host" | "default") => {
                    return err(pos, format!("`{w}` cannot be nested in a location"));
                }
                Tok::Word(w) => self.setting(pos, &w, &mut s, &format!("location `{prefix}`"))?,
                t => {
                    return err(
                        pos,
                        format!("expected a directive in location `{prefix}`, found {t}"),
                    )
                }
            }
        }
    }

    /// The arguments of a directive up to its `;` (or, with a warning, up to a `}`).
    fn args(&mut self, pos: Pos, name: &str) -> Result<Vec<(Pos, String)>, Diagnostic> {
        let mut args = Vec::new();
        loop {
            match self.peek().cloned() {
                Some((_, Tok::Semi)) => {
                    self.i += 1;
                    return Ok(args);
                }
                Some((cpos, Tok::Close)) => {
                    self.warnings.push(Diagnostic {
                        pos: cpos,
                        message: format!(
                            "`{name}` at {pos} is missing its `;` before `}}` (accepted)"
                        ),
                    });
                    return Ok(args);
                }
                Some((p, Tok::Word(w) | Tok::Str(w))) => {
                    self.i += 1;
                    args.push((p, w));
                }
                Some((p, Tok::Open)) => return err(p, format!("`{name}` does not take a block")),
                None => return err(self.end, format!("`{name}` at {pos} is missing its `;`")),
            }
        }
    }

    /// A directive that sets something at the current level.
    fn setting(
        &mut self,
        pos: Pos,
        name: &str,
        s: &mut Settings,
        place: &str,
    ) -> Result<(), Diagnostic> {
        let args = self.args(pos, name)?;
        let one = |args: &[(Pos, String)]| -> Result<(Pos, String), Diagnostic> {
            match args {
                [a] => Ok(a.clone()),
                [] => err(pos, format!("`{name}` needs a value")),
                [a, b, ..] => err(
                    b.0,
                    format!("`{name}` takes one value; expected `;` after `{}`", a.1),
                ),
            }
        };
        match name {
            "proxy_pass" => {
                let Some((upos, url)) = args.first().cloned() else {
                    return err(pos, "`proxy_pass` needs a URL like http://127.0.0.1:9000");
                };
                let (host, port) = upstream_url(&url).ok_or(Diagnostic {
                    pos: upos,
                    message: format!("expected http://HOST[:PORT] (no path), found `{url}`"),
                })?;
                let mut up = Upstream {
                    host,
                    port,
                    weight: 1,
                    backup: false,
                };
                for (apos, a) in &args[1..] {
                    if a == "backup" {
                        up.backup = true;
                    } else if let Some(w) = a.strip_prefix("weight=") {
                        up.weight = match w.parse::<u32>() {
                            Ok(w @ 1..=1000) => w,
                            _ => {
                                return err(*apos, format!("weight must be 1..=1000, found `{w}`"))
                            }
                        };
                    } else {
                        return err(
                            *apos,
                            format!(
                                "expected `weight=N`, `backup` or `;` after the URL, found `{a}`"
                            ),
                        );
                    }
                }
                if s.upstreams.len() >= MAX_UPSTREAMS {
                    return err(pos, format!("more than {MAX_UPSTREAMS} upstreams"));
                }
                s.upstreams.push(up);
            }
            "dist_policy" => {
                let (vpos, v) = one(&args)?;
                s.policy = Some(Policy::parse(&v).ok_or(Diagnostic {
                    pos: vpos,
                    message: format!(
                        "unknown dist_policy `{v}` (round-robin, weighted, least-conn, random, ip-hash)"
                    ),
                })?);
            }
            "proxy_set_header" => {
                let (npos, hname, value) = match args.as_slice() {
                    [(p, n), (_, v)] => (*p, n.clone(), v.clone()),
                    [(p, n)] => (*p, n.clone(), String::new()),
                    [] => return err(pos, "`proxy_set_header` needs a header name and a value"),
                    [_, _, (p, extra), ..] => {
                        return err(
                            *p,
                            format!("`proxy_set_header` takes a name and one value (quote a value with spaces); found `{extra}`"),
                        )
                    }
                };
                if !crate::http::chars::is_token(hname.as_bytes()) {
                    return err(npos, format!("`{hname}` is not a header name"));
                }
                let value = template(&value).map_err(|m| Diagnostic {
                    pos: npos,
                    message: m,
                })?;
                let list = s.set_headers.get_or_insert_with(Vec::new);
                list.retain(|h| !h.name.eq_ignore_ascii_case(&hname));
                list.push(SetHeader { name: hname, value });
            }
            "proxy_connect_timeout" | "proxy_read_timeout" | "proxy_send_timeout" => {
                let (vpos, v) = one(&args)?;
                let d = duration(&v).ok_or(Diagnostic {
                    pos: vpos,
                    message: format!("expected a duration like 500ms, 30s or 2m, found `{v}`"),
                })?;
                match name {
                    "proxy_connect_timeout" => s.connect = Some(d),
                    "proxy_read_timeout" => s.read = Some(d),
                    _ => s.send = Some(d),
                }
            }
            _ => return err(pos, format!("unknown directive `{name}` in {place}")),
        }
        Ok(())
    }
}

/// `name[:port]` written in the configuration: a valid Host value whose port, if there is a
/// colon, is 1..=65535 (a bare trailing `:` is refused, not read as "no port").
fn strict_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() || !valid_host(s.as_bytes()) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let colon = if lower.starts_with('[') {
        let close = lower.find(']')?;
        match &lower[close + 1..] {
            "" => None,
            rest if rest.starts_with(':') => Some(close + 1),
            _ => return None,
        }
    } else {
        lower.rfind(':')
    };
    let (name, port) = match colon {
        None => (lower.as_str(), None),
        Some(c) => {
            let digits = &lower[c + 1..];
            let port = digits
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0 && digits.bytes().all(|b| b.is_ascii_digit()))?;
            (&lower[..c], Some(port))
        }
    };
    (!name.is_empty()).then(|| (name.to_string(), port))
}

/// `NAME[:PORT]` of a host block, lower-cased, a trailing dot dropped, the port split off.
fn host_name(s: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = strict_host_port(s)?;
    // One trailing dot (the absolute form of a DNS name) is dropped; an empty label is no name.
    let name = name.strip_suffix('.').map_or(name.clone(), str::to_string);
    let empty_label = name.is_empty() || name.ends_with('.') || name.contains("..");
    (!empty_label || name.starts_with('[')).then_some((name, port))
}

/// `http://HOST[:PORT][/]` → (host, port); port 80 by default.
fn upstream_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return None;
    }
    let (host, port) = strict_host_port(rest)?;
    Some((host, port.unwrap_or(80)))
}

/// `30s`, `500ms`, `2m`, `1h`, or seconds; at most a day.
fn duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (ms <= 86_400_000).then(|| Duration::from_millis(ms))
}

/// A header value with `$var` or `${var}` references; `$$` is a literal `$`.
fn template(v: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            lit.push('$');
            rest = r;
            continue;
        }
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or("`${` without its `}`")?;
            (&r[..end], &r[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let var = Var::parse(name).ok_or(format!(
            "unknown variable `${name}` (host, remote_addr, scheme, request_id)"
        ))?;
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(Part::Var(var));
        rest = after;
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    if v.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err("control character in a header value".into());
    }
    Ok(parts)
}

/// The property the config fuzz target checks (and the corpus replay test): parsing any text
/// returns, never panics, and a configuration that parses writes back ([`Config::to_conf`]) to
/// text that parses to the same routes. Panics on a violation (a fuzzer finding).
pub fn assert_round_trip(text: &str) {
    let Ok(c) = Config::parse(text) else {
        return;
    };
    let written = c.to_conf();
    let again = Config::parse(&written)
        .unwrap_or_else(|e| panic!("the canonical form does not parse: {e}\n{written}"));
    let routes = |c: &Config| -> Vec<(String, Option<u16>, Vec<Location>)> {
        c.hosts
            .iter()
            .chain(c.default.iter())
            .map(|v| (v.name.clone(), v.port, v.locations.clone()))
            .collect()
    };
    assert_eq!(
        routes(&c),
        routes(&again),
        "round trip changed the routes\n{written}"
    );
}
