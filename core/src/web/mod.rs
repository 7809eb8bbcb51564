//! WeApRous, the small web framework the apps are written in, as pure pieces: no I/O, no
//! clock, no randomness of its own.
//!
//! * [`form`]: `application/x-www-form-urlencoded` bodies and query strings.
//! * [`cookie`]: the `Cookie` field and `Set-Cookie` values, on the server's side.
//! * [`cookie_date`]: the cookie-date of RFC 6265 §5.1.1 (what `Expires` holds).
//! * [`jar`]: a user agent's cookie jar (RFC 6265 §5), for simulated browsers and clients.
//! * [`url`]: the parts of an http(s) URL a client needs.
//! * [`request`]: browser or API client, the client's address, the Origin check, error
//!   bodies.
//! * [`reply`]: the answers every node gives alike (JSON, redirects, 401s, "starting").
//! * [`router`]: the route table (path parameters, 404 and 405 with `Allow`, HEAD for GET).
//! * [`sse`]: Server-Sent Events, written and read.
//! * [`accounts`]: user names, password rules, hashes behind a trait.
//! * [`session`]: the session store (idle and absolute expiry, per-user limits).
//! * [`limit`]: rate limits for password guesses.
//! * [`basic`]: HTTP Basic authentication (RFC 7617).
//! * [`base64`]: standard base64.
//! * [`check`]: what the nodes' request checkers (fuzz targets, property tests) share.

pub mod accounts;
pub mod base64;
pub mod basic;
pub mod check;
pub mod cookie;
pub mod cookie_date;
pub mod form;
pub mod jar;
pub mod limit;
pub mod reply;
pub mod request;
pub mod router;
pub mod session;
pub mod sse;
pub mod url;

use std::collections::BTreeMap;

/// Removes the entry whose `age` is least (the first in key order among equals) and returns
/// its key: how the bounded tables here make room.
fn evict_oldest<V, A: Ord>(map: &mut BTreeMap<String, V>, age: impl Fn(&V) -> A) -> Option<String> {
    let key = map
        .iter()
        .min_by_key(|(_, v)| age(v))
        .map(|(k, _)| k.clone())?;
    map.remove(&key);
    Some(key)
}

/// Lowercase hex of `bytes` (tokens, salts).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
