//! A user agent's cookie jar (RFC 6265 §5): what the simulated browsers and the peer nodes'
//! HTTP client keep between requests, and what `httptool cookies` exposes for conformance
//! checks.
//!
//! * [`Jar::set`] reads a `Set-Cookie` value as §5.2 says (lenient: unknown attributes and
//!   unreadable ones are skipped, a pair without `=` or with an empty name drops the cookie) and
//!   stores it as §5.3 says: `Max-Age` wins over `Expires`; `Domain` must domain-match the
//!   request's host or the cookie is dropped, and without it the cookie is host-only; `Path`
//!   defaults to the request path's directory; a cookie with the same name, domain and path
//!   replaces the old one but keeps its creation time; expired cookies are evicted.
//! * [`Jar::header`] builds the `Cookie` value for a URL (§5.4): domain and path matching,
//!   `Secure` cookies only over https, nothing expired; longer paths first, then older first.
//!
//! # Decisions
//! * No public-suffix list: a `Domain=com` from `a.com` is accepted (the list is a large,
//!   changing data set; our agents talk to our own servers). IP hosts only domain-match
//!   themselves.
//! * Time is whole seconds ([`UnixTime`]), given by the caller; nothing reads a clock.
//! * Limits: at most [`MAX_COOKIES`] cookies (the oldest go first) and 4096 bytes per
//!   name and value together (longer ones are dropped, as browsers do).
//! * `SameSite` is read and ignored: these agents do not make cross-site requests.

use super::cookie_date;
use super::url::Url;
use crate::time::UnixTime;

/// The most cookies a jar keeps.
pub const MAX_COOKIES: usize = 3000;
/// The longest name plus value a jar accepts.
pub const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    name: String,
    value: String,
    domain: String,
    path: String,
    host_only: bool,
    secure: bool,
    http_only: bool,
    /// `None`: a session cookie.
    expires: Option<u64>,
    /// Order of creation (a counter, so equal times still order).
    created: u64,
}

/// A cookie jar.
#[derive(Clone, Debug, Default)]
pub struct Jar {
    cookies: Vec<Stored>,
    next_created: u64,
}

/// The parts of one `Set-Cookie` value (§5.2).
struct Parsed<'a> {
    name: &'a str,
    value: &'a str,
    expires: Option<u64>,
    max_age: Option<i64>,
    domain: Option<String>,
    path: Option<&'a str>,
    secure: bool,
    http_only: bool,
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn parse(set_cookie: &str) -> Option<Parsed<'_>> {
    let (pair, attrs) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (trim(name), trim(value));
    if name.is_empty() {
        return None;
    }
    let mut p = Parsed {
        name,
        value,
        expires: None,
        max_age: None,
        domain: None,
        path: None,
        secure: false,
        http_only: false,
    };
    for av in attrs.split(';') {
        let (k, v) = av.split_once('=').unwrap_or((av, ""));
        let (k, v) = (trim(k), trim(v));
        if k.eq_ignore_ascii_case("expires") {
            if let Some(t) = cookie_date::parse(v) {
                p.expires = Some(t.0);
            }
        } else if k.eq_ignore_ascii_case("max-age") {
            let digits = v.strip_prefix('-').unwrap_or(v);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                // Too many digits for an i64 is "forever" (or "long ago").
                p.max_age = Some(v.parse().unwrap_or(if v.starts_with('-') {
                    i64::MIN
                } else {
                    i64::MAX
                }));
            }
        } else if k.eq_ignore_ascii_case("domain") {
            if !v.is_empty() {
                p.domain = Some(v.strip_prefix('.').unwrap_or(v).to_ascii_lowercase());
            }
        } else if k.eq_ignore_ascii_case("path") {
            p.path = Some(v);
        } else if k.eq_ignore_ascii_case("secure") {
            p.secure = true;
        } else if k.eq_ignore_ascii_case("httponly") {
            p.http_only = true;
        }
    }
    Some(p)
}

/// §5.1.3: `host` domain-matches `domain`.
fn domain_match(host: &str, domain: &str, host_is_ip: bool) -> bool {
    host == domain
        || (!host_is_ip
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// §5.1.4: the default path of a request path.
fn default_path(path: &str) -> &str {
    if !path.starts_with('/') {
        return "/";
    }
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// §5.1.4: `request` path-matches `cookie`.
fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

impl Jar {
    pub fn new() -> Jar {
        Jar::default()
    }

    /// How many cookies the jar holds (expired ones included until the next call evicts them).
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Stores the cookie of one `Set-Cookie` value received from `url` at `now`; `false` when
    /// the value was ignored.
    pub fn set(&mut self, now: UnixTime, url: &Url, set_cookie: &str) -> bool {
        let Some(p) = parse(set_cookie) else {
            return false;
        };
        if p.name.len() + p.value.len() > MAX_COOKIE_BYTES {
            return false;
        }
        let expires = match p.max_age {
            Some(s) if s <= 0 => Some(0),
            Some(s) => Some(now.0.saturating_add(s as u64)),
            None => p.expires,
        };
        let (domain, host_only) = match p.domain {
            Some(d) if domain_match(&url.host, &d, url.host_is_ip()) => (d, false),
            Some(_) => return false,
            None => (url.host.clone(), true),
        };
        let path = match p.path {
            Some(path) if path.starts_with('/') => path.to_string(),
            _ => default_path(&url.path).to_string(),
        };
        let mut created = self.next_created;
        if let Some(i) = self
            .cookies
            .iter()
            .position(|c| c.name == p.name && c.domain == domain && c.path == path)
        {
            created = self.cookies.remove(i).created;
        } else {
            self.next_created += 1;
        }
        self.cookies.push(Stored {
            name: p.name.into(),
            value: p.value.into(),
            domain,
            path,
            host_only,
            secure: p.secure,
            http_only: p.http_only,
            expires,
            created,
        });
        self.evict(now);
        true
    }

    /// Drops expired cookies, then the oldest beyond [`MAX_COOKIES`].
    fn evict(&mut self, now: UnixTime) {
        self.cookies.retain(|c| c.expires.is_none_or(|t| t > now.0));
        if self.cookies.len() > MAX_COOKIES {
            self.cookies.sort_by_key(|c| c.created);
            let extra = self.cookies.len() - MAX_COOKIES;
            self.cookies.drain(..extra);
        }
    }

    /// The `Cookie` field value for a request to `url` at `now`; empty when no cookie applies.
    pub fn header(&mut self, now: UnixTime, url: &Url) -> String {
        self.evict(now);
        let ip = url.host_is_ip();
        let mut matching: Vec<&Stored> = self
            .cookies
            .iter()
            .filter(|c| {
                let domain_ok = if c.host_only {
                    url.host == c.domain
                } else {
                    domain_match(&url.host, &c.domain, ip)
                };
                domain_ok && path_match(&url.path, &c.path) && (!c.secure || url.secure())
            })
            .collect();
        matching.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.created.cmp(&b.created))
        });
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        pairs.join("; ")
    }

    /// Whether the jar holds an `HttpOnly` cookie called `name` (a script could not read it).
    pub fn is_http_only(&self, name: &str) -> bool {
        self.cookies.iter().any(|c| c.name == name && c.http_only)
    }
}
