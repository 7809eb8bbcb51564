//! What an app reads from a request beyond its route: who is asking (a browser or an API
//! client), from where (the client's address behind a trusted proxy), whether a cookie-bound
//! change comes from our own pages, and how an error is written.
//!
//! # Decisions
//! * A request is a **browser's** when its `Accept` names `text/html` (browsers send it for
//!   every page load; `curl` and `fetch` by default do not). Browsers get HTML error pages and
//!   redirects; everything else gets JSON.
//! * **Origin check** for state-changing requests authenticated by a cookie: an `Origin` that
//!   is present must name the same host and port as `Host` (`null` never does; the scheme is
//!   not compared, since `Host` carries none and one port serves one scheme). A request
//!   without `Origin` passes: old browsers and API clients send none, and the session cookie is
//!   `SameSite=Lax`, which modern browsers already keep off cross-site POSTs. This is the
//!   second of two walls, as OWASP recommends, not the only one.
//! * **Client address**: the socket's peer, unless the peer is a trusted proxy
//!   (`--trusted-proxy`); then the rightmost `X-Forwarded-For` entry that is not itself a
//!   trusted proxy (entries to its left could have been written by the client).

use core::net::IpAddr;

/// Whether `Accept` asks for HTML.
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/html")
        })
    })
}

/// Whether a cookie-authenticated change may go ahead: no `Origin`, or one naming `host`.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some(host) = host else {
        return false;
    };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let normal = |hp: &str, default_port: &str| {
        let hp = hp.trim().to_ascii_lowercase();
        let has_port = match hp.rfind(':') {
            Some(i) => !hp[i..].contains(']'),
            None => false,
        };
        if has_port {
            hp
        } else {
            format!("{hp}:{default_port}")
        }
    };
    // Our servers speak plain HTTP: a `Host` without a port means 80.
    !authority.is_empty()
        && !authority.contains('/')
        && normal(authority, default_port) == normal(host, "80")
}

/// The client's address: see the module docs.
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut last_trusted = peer;
    for entry in list.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => last_trusted = ip,
            Ok(ip) => return ip,
            // An entry we cannot read: trust stops here.
            Err(_) => return last_trusted,
        }
    }
    last_trusted
}

/// The JSON body of an error: `{"status":"error","message":...}`.
pub fn error_json(message: &str) -> String {
    serde_json::json!({ "status": "error", "message": message }).to_string()
}

/// A body's fields: a form (or no `Content-Type`) or a JSON object of strings (numbers and
/// booleans as text). The first of a repeated form field wins. Errors: `400` for a body that
/// does not parse, `415` for another media type.
pub fn fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, (u16, String)> {
    use std::collections::BTreeMap;
    let ty = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ty.as_str() {
        "application/json" => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| (400, format!("the body is not JSON: {e}")))?;
            let obj = value
                .as_object()
                .ok_or((400, "the body must be a JSON object".to_string()))?;
            let mut out = BTreeMap::new();
            for (k, v) in obj {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return Err((400, format!("field {k} must be a string"))),
                };
                out.insert(k.clone(), text);
            }
            Ok(out)
        }
        "application/x-www-form-urlencoded" | "" => {
            let form =
                super::form::Form::parse(body).map_err(|e| (400, format!("bad form: {e:?}")))?;
            let mut out = BTreeMap::new();
            for (k, v) in form.pairs {
                out.entry(k).or_insert(v);
            }
            Ok(out)
        }
        _ => Err((415, "send a form or JSON".to_string())),
    }
}
