//! The HTTP surface the simulated clients send to the static backend, and what it must answer.
//!
//! # The mix
//! A run's [`Mix`] says which kinds of request its clients send besides plain GET and HEAD
//! (swarm testing: a seed switches each family on with probability 1/2, so some runs
//! exercise one family hard and others their combinations):
//! * **bodies**: `Content-Length` and chunked bodies (random chunk sizes, extensions,
//!   trailers), on any method, pipelined, some over the backend's body limit;
//! * **expect**: `Expect: 100-continue` on requests with a body;
//! * **methods**: every method the backend and the proxy tell apart (POST, PUT, DELETE,
//!   OPTIONS, also with `*` and `Max-Forwards`, PATCH, TRACE, extension and lower-case ones);
//! * **targets**: percent-encoding, dot segments, encoded dot segments and slashes, queries,
//!   absolute-form, symbolic links in and out of the roots, folders with and without `/`;
//! * **malformed**: framing broken mid-body (after a head the server answers early, and in the
//!   head itself, which nothing answers before the error).
//!
//! # The oracle
//! [`backend_expect`] is the static backend's contract written a second time, independently
//! of `core`: the seed's mapping, the path decoded once and normalised ([`model_path`]), the
//! simulated disk's real paths for the "stays inside its root" rule, methods, limits, and
//! which answers end the connection. A client compares every response with it.

use crate::client::{Body, Break, ClientReq, ConnPlan, Expect, Framing, BAD_CHUNK_SIZES};
use crate::clock::WALL_EPOCH;
use crate::disk::{Disk, Node};
use crate::rng;
use serde::{Deserialize, Serialize};
use weaprous_core::http::Method;
use weaprous_core::node::FsError;
use weaprous_core::time::UnixTime;

/// The simulated backend's request body limit (its `Limits::max_body`): small, so bodies
/// over it are cheap to send.
pub const BODY_LIMIT: u64 = 64 * 1024;

/// Which request families a run's clients send (see the module docs). All off is the
/// original workload: GET and HEAD on plain paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub bodies: bool,
    pub expect_continue: bool,
    pub methods: bool,
    pub targets: bool,
    pub malformed: bool,
    /// Revalidations: `If-None-Match` and `If-Modified-Since`, holding or not. (Absent from
    /// scenarios saved before it existed: off there.)
    #[serde(default)]
    pub conditional: bool,
}

impl Mix {
    pub fn all() -> Mix {
        Mix {
            bodies: true,
            expect_continue: true,
            methods: true,
            targets: true,
            malformed: true,
            conditional: true,
        }
    }
    /// Each family on with probability 1/2, from the seed's own stream (so the mix changes
    /// nothing else the seed chooses).
    pub fn generate(seed: u64) -> Mix {
        let mut r = rng::stream(seed, rng::MIX);
        Mix {
            bodies: r.bool(),
            expect_continue: r.bool(),
            methods: r.bool(),
            targets: r.bool(),
            malformed: r.bool(),
            // Drawn last, so every other family of a seed is what it was before this one.
            conditional: r.bool(),
        }
    }
}

/// The files of the simulated site (sizes cover empty, tiny, one chunk and many chunks), the
/// URL paths that reach them, and symbolic links in and out of the roots.
pub fn site(seed: u64, small: bool) -> (Disk, Vec<String>) {
    let mut r = rng::stream(seed, rng::FILES);
    let mut disk = Disk::default();
    let sizes = if small {
        [0usize, 1, 100, 700, 1500, 2048, 3000 + r.usize(..1000)]
    } else {
        [
            0,
            1,
            700,
            4096,
            65_536,
            65_537,
            200_000 + r.usize(..100_000),
        ]
    };
    let mut paths = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|_| r.u8(..)).collect();
        let (disk_path, url) = if i % 3 == 0 {
            (format!("/www/p{i}.html"), format!("/p{i}.html"))
        } else {
            (format!("/static/d{i}/f{i}.bin"), format!("/d{i}/f{i}.bin"))
        };
        disk.add_file(&disk_path, data, UnixTime(WALL_EPOCH - 1000 * i as u64));
        paths.push(url);
    }
    disk.add_file(
        "/www/index.html",
        b"<h1>sim</h1>".to_vec(),
        UnixTime(WALL_EPOCH - 5),
    );
    paths.push("/".into());
    disk.add_file("/secret.bin", b"TOP-SECRET".to_vec(), UnixTime(WALL_EPOCH));
    disk.add_symlink("/static/lnk", "/static/d1");
    disk.add_symlink("/static/out.bin", "/secret.bin");
    disk.add_symlink("/static/up", "/");
    disk.add_symlink("/www/leak.html", "/secret.bin");
    disk.add_symlink("/static/gone.bin", "/nowhere");
    (disk, paths)
}

/// Paths through the site's links and folders (see [`site`]): served through a link inside
/// the root, refused (403) through one that leaves it, dangling (404), folders (301, 404).
const LINK_PATHS: &[&str] = &[
    "/lnk/f1.bin",
    "/out.bin",
    "/up/secret.bin",
    "/up/static/d1/f1.bin",
    "/leak.html",
    "/gone.bin",
    "/lnk",
    "/d1",
    "/d1/",
    "/up",
];

/// A request path decoded once and normalised (RFC 3986 §5.2.4 dot segments; a decoded `/`,
/// a backslash, NUL, bad escapes, invalid UTF-8 and `..` above the root are refused): the
/// segments and whether a folder was asked for, or `None` for a 400. Written plainly, as a
/// second opinion on `core`'s one-pass version.
pub fn model_path(path: &str) -> Option<(Vec<String>, bool)> {
    let raw = path.strip_prefix('/')?;
    let parts: Vec<&str> = raw.split('/').collect();
    let mut kept: Vec<String> = Vec::new();
    let mut folder = false;
    for (i, part) in parts.iter().enumerate() {
        let mut bytes = Vec::new();
        let mut rest = part.as_bytes();
        while let Some((&c, tail)) = rest.split_first() {
            if c == b'%' {
                let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
                let b = u8::from_str_radix(hex, 16).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(b);
                rest = &tail[2..];
            } else {
                bytes.push(c);
                rest = tail;
            }
        }
        if bytes.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return None;
        }
        let seg = String::from_utf8(bytes).ok()?;
        let last = i + 1 == parts.len();
        match seg.as_str() {
            "" | "." => folder = last,
            ".." => {
                kept.pop()?;
                folder = last;
            }
            _ => {
                kept.push(seg);
                folder = false;
            }
        }
    }
    let folder = folder || kept.is_empty();
    Some((kept, folder))
}

/// The path part of a request-target (origin or absolute form), without the query.
fn target_path(target: &str) -> Option<&str> {
    let t = match target.split_once("://") {
        Some((_, rest)) => match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        },
        None => target,
    };
    Some(t.split('?').next().unwrap_or(""))
}

/// Malformed request heads and the status each must get (RFC 9112 §6: the framing cannot be
/// trusted, so nothing of what follows is read).
pub const BAD_HEADS: &[(&str, u16)] = &[
    ("Transfer-Encoding: gzip", 400),
    ("Transfer-Encoding: gzip, chunked", 501),
    ("Content-Length: 1, 2", 400),
    ("Content-Length: 5\r\nContent-Length: 5", 400),
    ("Content-Length: 3\r\nTransfer-Encoding: chunked", 400),
    ("Content-Length: -1", 400),
    ("Content-Length : 3", 400),
    ("X-A: b\r\n folded", 400),
];

/// Whether `req`'s head is one of [`BAD_HEADS`], and its status.
pub fn bad_head_status(req: &ClientReq) -> Option<u16> {
    BAD_HEADS
        .iter()
        .find(|(h, _)| req.raw_headers.iter().any(|r| r == h))
        .map(|(_, s)| *s)
}

/// What the static backend must answer to `req` (see the module docs).
pub fn backend_expect(disk: &Disk, req: &ClientReq) -> Expect {
    if let Some(status) = bad_head_status(req) {
        return Expect {
            closes: true,
            ..Expect::status(status)
        };
    }
    let body_len = req.body.as_ref().map_or(0, |b| b.data.len() as u64);
    let chunked = matches!(
        req.body.as_ref().map(|b| &b.framing),
        Some(Framing::Chunked { .. })
    );
    if !chunked && body_len > BODY_LIMIT {
        // Refused from the head; the unread body makes the close necessary.
        return Expect {
            closes: true,
            ..Expect::status(413)
        };
    }
    let mut e = match &req.method {
        Method::Get | Method::Head => file_expect(disk, req),
        Method::Other(_) => Expect::status(501),
        _ => Expect::status(405),
    };
    // The answer goes out before the body is read: a chunked body (whose reading may yet
    // fail: it says `Connection: close`), or one held back for a `100 Continue` that never
    // comes, ends the connection.
    let waits_for_continue = req.expect_continue && !req.body_bytes().is_empty();
    e.closes = chunked || waits_for_continue;
    e
}

/// What a client of the proxy must get for `req`, which the proxy forwards to a static
/// backend whose own answer is `backend`: the backend's answer, except where the proxy
/// decides by itself.
/// * A malformed head is refused by the proxy as the backend would refuse it.
/// * OPTIONS or TRACE with `Max-Forwards: 0` are answered by the proxy (200, 405).
/// * A body that breaks may be answered with the proxy's own 400 (if no upstream answer has
///   reached the client yet), or the connection aborted (if one was being relayed); either
///   way it is the last answer on the connection.
/// * Otherwise the client's connection is the proxy's, not the backend's: it stays open
///   where the backend closes its own (the proxy answers `100 Continue` itself, and a body
///   over the backend's limit ends only the upstream connection).
pub fn via_proxy(req: &ClientReq, backend: Expect) -> Expect {
    if bad_head_status(req).is_some() {
        return backend;
    }
    let hop_limit = req.raw_headers.iter().any(|h| h == "Max-Forwards: 0");
    let mut e = match req.method {
        Method::Options if hop_limit => Expect::status(200),
        Method::Trace if hop_limit => Expect::status(405),
        _ => backend,
    };
    e.closes = false;
    if req.brk.is_some() {
        e.closes = true;
        e.may_abort = true;
        if e.status != 400 {
            e.or_status = Some(400);
        }
    }
    e
}

/// Whether `target` carries an attempt marker (`a=`, see [`ClientReq::once`]).
pub fn is_once(target: &str) -> bool {
    target
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("a=")))
}

/// A GET or HEAD of the seed's mapping: `/` and folders → `index.html` of the www root, HTML
/// names → the www root, anything else → the static root; the real path must stay inside.
fn file_expect(disk: &Disk, req: &ClientReq) -> Expect {
    let real = match served_file(disk, &req.target) {
        Ok(real) => real,
        Err(e) => return e,
    };
    if req.not_modified == Some(true) {
        // The client's copy is current: no body, whatever the method or range.
        return Expect::exact(304, vec![]);
    }
    let data = disk.file(&real).unwrap_or_default();
    let head = req.method == Method::Head;
    match req.range {
        Some((a, _)) if a >= data.len() as u64 => Expect::status(416),
        Some((a, b)) => {
            let end = (b as usize).min(data.len() - 1);
            let body = if head {
                vec![]
            } else {
                data[a as usize..=end].to_vec()
            };
            Expect::exact(206, body)
        }
        None => Expect::exact(200, if head { vec![] } else { data.to_vec() }),
    }
}

/// The real path of the file a GET of `target` serves, or the answer that is not a file.
fn served_file(disk: &Disk, target: &str) -> Result<String, Expect> {
    let Some((segments, folder)) = target_path(target).and_then(model_path) else {
        return Err(Expect::status(400));
    };
    let name = if folder {
        "index.html"
    } else {
        segments.last().map_or("index.html", String::as_str)
    };
    let root = if weaprous_core::backend::mime::is_page(name) {
        "/www"
    } else {
        "/static"
    };
    let mut path = root.to_string();
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if folder {
        path.push_str("/index.html");
    }
    let inside = |real: &str| real.strip_prefix(root).is_some_and(|r| r.starts_with('/'));
    match disk.resolve(&path) {
        Err(FsError::NotFound) => Err(Expect::status(404)),
        Err(_) => Err(Expect::status(500)),
        Ok(Node::Dir(real)) if !inside(&real) => Err(Expect::status(403)),
        Ok(Node::Dir(_)) => Err(Expect::status(if folder { 404 } else { 301 })),
        Ok(Node::File(real)) if !inside(&real) => Err(Expect::status(403)),
        Ok(Node::File(real)) => Ok(real),
    }
}

/// A revalidation of `req`'s file, as a browser sends with what it cached: the validator it
/// holds (`If-None-Match` with the file's entity tag, alone or in a list, or
/// `If-Modified-Since` its time: 304), or one that no longer matches (200). The entity tag
/// is written here from its documented form, `"MTIME-LEN"` in hex, not by the backend's code.
fn revalidate(r: &mut fastrand::Rng, disk: &Disk, req: &mut ClientReq) {
    let Some((len, modified)) = served_file(disk, &req.target)
        .ok()
        .and_then(|real| disk.meta(&real))
    else {
        return;
    };
    let tag = format!("\"{:x}-{:x}\"", modified.0, len);
    let (field, current) = match r.u8(..5) {
        0 => (format!("If-None-Match: {tag}"), true),
        1 => (format!("If-None-Match: \"stale\", W/{tag}"), true),
        2 => ("If-None-Match: \"stale\"".to_string(), false),
        3 => (
            format!(
                "If-Modified-Since: {}",
                weaprous_core::http::date::format(modified)
            ),
            true,
        ),
        _ => (
            format!(
                "If-Modified-Since: {}",
                weaprous_core::http::date::format(UnixTime(modified.0.saturating_sub(86_400)))
            ),
            false,
        ),
    };
    req.raw_headers.push(field);
    req.not_modified = Some(current);
}

/// One request: a GET or HEAD (sometimes of a missing file, sometimes a range), then, as the
/// mix allows, another method, another spelling of the target, a body, `Expect`, a framing
/// error. Draws only for the families that are on, so a mix with none of them draws exactly
/// what the original workload drew.
pub fn request(r: &mut fastrand::Rng, mix: &Mix, disk: &Disk, paths: &[String]) -> ClientReq {
    let path = if r.u8(..10) == 0 {
        format!("/missing{}.css", r.u8(..))
    } else {
        paths[r.usize(..paths.len())].clone()
    };
    let method = if r.u8(..5) == 0 {
        Method::Head
    } else {
        Method::Get
    };
    let range = (r.u8(..6) == 0).then(|| {
        let a = r.u64(..70_000);
        (a, a + r.u64(..70_000))
    });
    let mut req = ClientReq::new(method, path, Expect::default());
    req.range = range;
    if mix.targets && r.u8(..3) == 0 {
        req.target = if r.u8(..4) == 0 {
            LINK_PATHS[r.usize(..LINK_PATHS.len())].to_string()
        } else {
            respell(r, &req.target)
        };
    }
    if mix.methods && r.u8(..4) == 0 {
        req.method = match r.u8(..9) {
            0 => Method::Post,
            1 => Method::Put,
            2 => Method::Delete,
            3 => Method::Options,
            4 => Method::Patch,
            5 => Method::Trace,
            6 => Method::Other("PURGE".into()),
            7 => Method::Other("get".into()),
            _ => {
                req.target = "*".into();
                Method::Options
            }
        };
        if matches!(req.method, Method::Options | Method::Trace) && r.bool() {
            req.raw_headers.push(format!("Max-Forwards: {}", r.u8(..2)));
        }
    }
    if mix.bodies && r.u8(..3) == 0 {
        req.body = Some(body(r));
    }
    if mix.malformed && r.u8(..8) == 0 {
        if r.bool() {
            let (h, _) = BAD_HEADS[r.usize(..BAD_HEADS.len())];
            req.raw_headers.push(h.to_string());
            req.body = None;
        } else {
            // A chunked body with a framing error somewhere in it.
            let mut b = req.body.take().unwrap_or_else(|| body(r));
            if b.data.is_empty() {
                b.data.push(b'x');
            }
            if b.framing == Framing::Length {
                b.framing = chunked(r);
            }
            req.body = Some(b);
            req.brk = Some(if r.bool() {
                Break::ChunkSize {
                    at: r.usize(..4),
                    how: r.usize(..BAD_CHUNK_SIZES.len()),
                }
            } else {
                Break::ChunkEnd { at: r.usize(..4) }
            });
        }
    }
    if mix.expect_continue && req.body.is_some() && req.brk.is_none() && r.bool() {
        req.expect_continue = true;
    }
    if mix.conditional && r.u8(..4) == 0 {
        revalidate(r, disk, &mut req);
    }
    // (`*` takes no query to carry the attempt in.)
    req.once = (matches!(req.method, Method::Post | Method::Patch) || req.body.is_some())
        && req.target != "*";
    req.expect = backend_expect(disk, &req);
    req
}

/// Another spelling of `path` that names the same file, or a broken one the server must
/// refuse: percent-encoded bytes, dot segments (also encoded), doubled slashes, a query, the
/// absolute form; or an encoded slash, a climb above the root, a bad escape.
fn respell(r: &mut fastrand::Rng, path: &str) -> String {
    let mut p = path.to_string();
    for _ in 0..r.usize(1..=3) {
        p = match r.u8(..8) {
            0 => p
                .bytes()
                .map(|b| {
                    if b != b'/' && r.u8(..3) == 0 {
                        if r.bool() {
                            format!("%{b:02X}")
                        } else {
                            format!("%{b:02x}")
                        }
                    } else {
                        (b as char).to_string()
                    }
                })
                .collect(),
            1 | 2 => {
                let dots = [
                    "/.",
                    "/%2e",
                    "/%2E",
                    "/x/..",
                    "/x/%2e%2e",
                    "/zz/.%2E",
                    "/y/%2E.",
                    "/",
                ];
                insert_one(r, &p, &dots)
            }
            3 => format!("{p}?q=1&r=%2F"),
            4 => format!("http://sim{}{p}", if r.bool() { ":80" } else { "" }),
            5 => {
                // Dot segments last leave a folder.
                let tails = ["/..", "/.", "/x/..", "/%2e%2e"];
                format!("{p}{}", tails[r.usize(..tails.len())])
            }
            _ => {
                let broken = [
                    "/%2F",
                    "/../..",
                    "/%2e%2e/%2e%2e",
                    "/%zz",
                    "/a%00",
                    "/%5c",
                    "/%ff",
                ];
                insert_one(r, &p, &broken)
            }
        };
        if p.starts_with("http://") {
            break;
        }
    }
    p
}

/// `p` with one of `pieces` put just before one of its `/` (or at the end of its path).
fn insert_one(r: &mut fastrand::Rng, p: &str, pieces: &[&str]) -> String {
    let end = p.find('?').unwrap_or(p.len());
    let slashes: Vec<usize> = p[..end]
        .match_indices('/')
        .map(|(i, _)| i)
        .chain([end])
        .collect();
    let at = slashes[r.usize(..slashes.len())];
    let piece = pieces[r.usize(..pieces.len())];
    format!("{}{piece}{}", &p[..at], &p[at..])
}

fn chunked(r: &mut fastrand::Rng) -> Framing {
    let n = r.usize(1..=3);
    Framing::Chunked {
        sizes: (0..n)
            .map(|_| [1, 3, 100, 1000, 8192, 70_000][r.usize(..6)])
            .collect(),
        ext: r.bool(),
        trailers: r.bool(),
    }
}

/// A body of a size that matters (none, one byte, one segment, many, over the limit), framed
/// either way.
pub fn body(r: &mut fastrand::Rng) -> Body {
    let len = [
        0,
        1,
        100,
        5_000,
        30_000,
        BODY_LIMIT as usize + 1 + r.usize(..5_000),
    ][r.usize(..6)];
    let data = (0..len).map(|_| r.u8(..)).collect();
    let framing = if r.bool() {
        Framing::Length
    } else {
        chunked(r)
    };
    Body { data, framing }
}

/// A connection's requests (1..=`max_requests`, pipelined up to 1..=`max_depth`), sometimes a
/// stalled client instead.
pub fn plan(
    r: &mut fastrand::Rng,
    mix: &Mix,
    max_requests: usize,
    max_depth: usize,
    disk: &Disk,
    paths: &[String],
) -> ConnPlan {
    let n = r.usize(1..=max_requests);
    let reqs = (0..n).map(|_| request(r, mix, disk, paths)).collect();
    let mut plan = ConnPlan {
        reqs,
        depth: r.usize(1..=max_depth),
        close_header: r.bool(),
        stall_after: None,
    };
    if r.u8(..25) == 0 {
        // A stalled client: part of a head, then silence; the answer is a 408. (As a plain
        // GET: the server never learns the method of a head it never got, so it answers with
        // a body.)
        plan.reqs.truncate(1);
        let req = &mut plan.reqs[0];
        // (`*` would make the request line itself wrong for a GET, answered at once.)
        let target = if req.target == "*" {
            "/".into()
        } else {
            req.target.clone()
        };
        *req = ClientReq::new(Method::Get, target, Expect::status(408));
        plan.stall_after = Some(r.usize(1..20));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_model_reads_the_rfc_examples() {
        let m = |p: &str| model_path(p).map(|(s, f)| (s.join("/"), f));
        assert_eq!(m("/"), Some((String::new(), true)));
        assert_eq!(m("/a/./b/../c"), Some(("a/c".into(), false)));
        assert_eq!(m("/a/%2e%2E/c"), Some(("c".into(), false)));
        assert_eq!(m("/a/b/.."), Some(("a".into(), true)));
        assert_eq!(m("/a//b/"), Some(("a/b".into(), true)));
        assert_eq!(m("/%2541"), Some(("%41".into(), false)));
        assert_eq!(m("/%66%31.bin"), Some(("f1.bin".into(), false)));
        for bad in [
            "/..", "/a/../..", "/a%2Fb", "/%5c", "/%00", "/%zz", "/%ff", "/%4",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
        assert_eq!(target_path("http://sim:80/a?b"), Some("/a"));
        assert_eq!(target_path("http://sim?b"), Some("/"));
        assert_eq!(target_path("http://sim"), Some("/"));
    }

    #[test]
    fn links_and_folders_get_the_answers_a_real_disk_gives() {
        let (disk, _) = site(1, true);
        let get = |t: &str| {
            backend_expect(&disk, &ClientReq::new(Method::Get, t, Expect::default())).status
        };
        assert_eq!(get("/lnk/f1.bin"), 200);
        assert_eq!(get("/up/static/d1/f1.bin"), 200);
        assert_eq!(get("/out.bin"), 403);
        assert_eq!(get("/up/secret.bin"), 403);
        assert_eq!(get("/leak.html"), 403);
        assert_eq!(get("/up"), 403);
        assert_eq!(get("/gone.bin"), 404);
        assert_eq!(get("/d1"), 301);
        assert_eq!(get("/lnk"), 301);
        assert_eq!(get("/d1/"), 404);
        assert_eq!(get("/d1/f1.bin/.."), 404);
        assert_eq!(get("/%2e%2e/p0.html"), 400);
        assert_eq!(get("http://sim/p0.html"), 200);
    }
}
