//! What the proxy changes in the heads it forwards (RFC 9110 §7.6, RFC 9112 §3.2).
//!
//! Requests, in this order:
//! 1. Hop-by-hop fields go: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//!    `Transfer-Encoding` (the proxy frames the body itself), `Upgrade`, `Proxy-Authorization`,
//!    and every field the client named in `Connection`, except `Host` and `Content-Length`,
//!    which carry routing and framing and may not be removed that way.
//! 2. A WebSocket (or any) upgrade request keeps `Upgrade` and gets `Connection: upgrade`: the
//!    one exception to 1.
//! 3. The proxy's own fields are added **after** the stripping, so a client cannot remove them
//!    by naming them in `Connection`: `X-Forwarded-For` gets the client's address appended to
//!    what it already held (nginx's `$proxy_add_x_forwarded_for`; a client can write what it
//!    likes before its own address, so only the last entry is trustworthy);
//!    `X-Forwarded-Proto` and `X-Forwarded-Host` are replaced; `Via: 1.1 weaprous` is
//!    appended.
//! 4. `proxy_set_header` applies last: it replaces the field, or removes it when the value
//!    comes out empty. `Host` is the client's unless a `proxy_set_header Host` says otherwise.
//! 5. `Max-Forwards` on OPTIONS and TRACE is decremented; at 0 the proxy answers itself.
//! 6. The request-target goes on byte for byte; an absolute-form target becomes its origin
//!    form and its authority becomes `Host` (RFC 9112 §3.2.2: the authority overrides the
//!    client's `Host`). The upstream always gets HTTP/1.1.
//!
//! Responses lose the same hop-by-hop fields (keeping `Upgrade` and `Connection: upgrade` on a
//! 101) and get `Via: 1.1 weaprous` appended.

use super::config::{Part, SetHeader, Var};
use crate::http::target::Form;
use crate::http::{Headers, Method, RequestHead, ResponseHead, Status, Target, Version};

/// The pseudonym in `Via`.
pub const VIA: &str = "1.1 weaprous";

/// The values `proxy_set_header` templates and the forwarding fields draw on.
#[derive(Clone, Debug)]
pub struct ForwardCtx<'a> {
    /// The client's IP address, as text (IPv6 without brackets).
    pub client_ip: &'a str,
    pub scheme: &'a str,
    pub request_id: &'a str,
}

/// The outcome for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forward {
    /// Send this head upstream.
    Upstream(RequestHead),
    /// `Max-Forwards: 0` on OPTIONS or TRACE: the proxy itself answers with this status.
    AnswerHere(Status),
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Fields a `Connection` option may not remove (they carry routing and framing).
const NOT_REMOVABLE: &[&str] = &["host", "content-length"];

/// The `Connection` options of `h` (trimmed; compare them without case).
fn connection_options(h: &Headers) -> Vec<&[u8]> {
    h.get_all("connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(crate::http::chars::trim_ows)
        .filter(|t| !t.is_empty())
        .collect()
}

fn listed(list: &[&str], name: &[u8]) -> bool {
    list.iter().any(|l| l.as_bytes().eq_ignore_ascii_case(name))
}

/// `h` without hop-by-hop fields and without the fields its `Connection` names. Copies the
/// fields with one arena of the right size, comparing names in place (no allocation per field).
fn strip_hop_by_hop(h: &Headers) -> Headers {
    let named = connection_options(h);
    let bytes: usize = h.iter().map(|(n, v)| n.len() + v.len()).sum();
    // Room for the fields the proxy adds (X-Forwarded-*, Via) without growing the arena.
    let mut out = Headers::with_capacity(h.len() + 6, bytes + 256);
    for (name, value) in h.iter() {
        let hop = listed(HOP_BY_HOP, name);
        let named_away = !hop
            && named.iter().any(|t| t.eq_ignore_ascii_case(name))
            && !listed(NOT_REMOVABLE, name);
        if !hop && !named_away {
            out.append(name, value);
        }
    }
    out
}

/// Appends `item` to the comma-separated field `name` (one field line).
fn append_to_list(h: &mut Headers, name: &str, item: &str) {
    if !h.contains(name) {
        h.append(name, item);
        return;
    }
    let existing: Vec<String> = h
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let mut value = existing.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(item);
    h.set(name, value);
}

fn render(parts: &[Part], host: &str, cx: &ForwardCtx) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.as_str(),
            Part::Var(Var::Host) => host,
            Part::Var(Var::RemoteAddr) => cx.client_ip,
            Part::Var(Var::Scheme) => cx.scheme,
            Part::Var(Var::RequestId) => cx.request_id,
        })
        .collect()
}

/// The host a request is for: an absolute-form target's authority, which overrides the `Host`
/// field (RFC 9112 §3.2.2), else the `Host` field (empty when there is none). Routing, the
/// forwarded `Host`, `X-Forwarded-Host` and `$host` all use this one value.
pub fn request_host(head: &RequestHead) -> &str {
    match head.target.form() {
        Form::Absolute => head.target.authority().unwrap_or(""),
        _ => head.headers.get_str("host").unwrap_or(""),
    }
}

/// True when `head` asks to switch protocols (`Connection: upgrade` and an `Upgrade` field).
pub fn wants_upgrade(head: &RequestHead) -> bool {
    head.headers.contains("upgrade")
        && connection_options(&head.headers)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// The head to send upstream for `head` (see the module docs).
pub fn upstream_request(head: &RequestHead, set: &[SetHeader], cx: &ForwardCtx) -> Forward {
    let upgrade =
        wants_upgrade(head).then(|| head.headers.get("upgrade").unwrap_or_default().to_vec());
    let mut h = strip_hop_by_hop(&head.headers);
    if matches!(head.method, Method::Options | Method::Trace) {
        if let Some(v) = head.headers.get_str("max-forwards") {
            match v.trim().parse::<u64>() {
                Ok(0) => {
                    return Forward::AnswerHere(if head.method == Method::Trace {
                        Status::METHOD_NOT_ALLOWED
                    } else {
                        Status::OK
                    })
                }
                Ok(n) => h.set("Max-Forwards", (n - 1).to_string()),
                Err(_) => {}
            }
        }
    }
    if let Some(u) = upgrade {
        h.append("Connection", "upgrade");
        h.append("Upgrade", u);
    }
    let host = request_host(head).to_string();
    if head.target.form() == Form::Absolute {
        // The authority overrides Host (RFC 9112 §3.2.2); the origin-form target sent up
        // needs it back in Host.
        h.set("Host", &host);
    }
    append_to_list(&mut h, "X-Forwarded-For", cx.client_ip);
    h.set("X-Forwarded-Proto", cx.scheme);
    if !host.is_empty() {
        h.set("X-Forwarded-Host", &host);
    }
    append_to_list(&mut h, "Via", VIA);
    for s in set {
        let value = render(&s.value, &host, cx);
        h.remove(&s.name);
        if !value.is_empty() {
            h.append(&s.name, value);
        }
    }
    let target = match head.target.form() {
        Form::Absolute => {
            let pq = match head.target.query() {
                Some(q) => format!("{}?{q}", head.target.path()),
                None => head.target.path().to_string(),
            };
            Target::parse(pq.as_bytes(), &head.method).unwrap_or_else(|_| head.target.clone())
        }
        _ => head.target.clone(),
    };
    Forward::Upstream(RequestHead {
        method: head.method.clone(),
        target,
        version: Version::HTTP_11,
        headers: h,
    })
}

/// The head to send the client for an upstream response `head`.
pub fn downstream_response(head: &ResponseHead) -> ResponseHead {
    let switching = head.status == Status::SWITCHING_PROTOCOLS;
    let upgrade = switching.then(|| head.headers.get("upgrade").unwrap_or_default().to_vec());
    let mut h = strip_hop_by_hop(&head.headers);
    if let Some(u) = upgrade {
        h.append("Connection", "upgrade");
        h.append("Upgrade", u);
    }
    append_to_list(&mut h, "Via", VIA);
    ResponseHead {
        version: Version::HTTP_11,
        status: head.status,
        reason: head.reason.clone(),
        headers: h,
    }
}
