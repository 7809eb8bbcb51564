//! HTTP/1.1 (RFC 9110, RFC 9112) without I/O.
//!
//! * [`parse::Parser`]: incremental request/response parser. Its events never depend on how the
//!   input was split (tested by `tests/split_invariance.rs`).
//! * [`serialize`]: response and request heads, chunked framing, `Date`.
//! * [`target`]: request-target forms, percent-decoding and dot-segment removal.
//! * [`server::ServerConn`]: the server side of one connection (keep-alive, pipelining, deadlines).
//! * [`client::ClientConn`]: the client side of one connection (what the proxy speaks upstream).
//!
//! Line endings are strict CRLF: a bare LF or CR anywhere in a head or in chunked framing is a 400
//! (RFC 9112 §2.2 lets a recipient accept a bare LF; we take the strict choice), so no peer can
//! frame a message differently from us.

pub mod chars;
pub mod client;
pub mod date;
pub mod fetch;
mod head;
pub mod headers;
pub mod page;
pub mod parse;
pub mod serialize;
pub mod server;
pub mod split_check;
mod swar;
pub mod target;

pub use headers::{FieldsRef, Headers};
pub use parse::{Event, ParseError, Parser};
pub use target::{Target, TargetRef};

use std::fmt;

/// A request method. Methods are case-sensitive tokens (RFC 9110 §9.1): `get` is an extension
/// method, not GET.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other(Box<str>),
}

impl Method {
    /// Parses a token; `None` if `b` is not a valid token.
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        Some(match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ if chars::is_token(b) => Method::Other(std::str::from_utf8(b).ok()?.into()),
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(s) => s,
        }
    }
    /// The method's name, kept without a copy: a standard method's is static text, an
    /// extension method's is the text it already owns.
    pub fn into_name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Method::Other(s) => String::from(s).into(),
            Method::Get => "GET".into(),
            Method::Head => "HEAD".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Connect => "CONNECT".into(),
            Method::Options => "OPTIONS".into(),
            Method::Trace => "TRACE".into(),
            Method::Patch => "PATCH".into(),
        }
    }
    /// RFC 9110 §9.2.2: a retry cannot change the outcome.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol version as received. `HTTP/1.2`..`HTTP/1.9` are handled as 1.1 (RFC 9110 §6.2)
/// but reported with their minor digit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    pub const HTTP_10: Version = Version { major: 1, minor: 0 };
    pub const HTTP_11: Version = Version { major: 1, minor: 1 };
    /// True for 1.1 and later 1.x: persistent connections by default, Host required.
    pub fn at_least_11(self) -> bool {
        self.major == 1 && self.minor >= 1
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}.{}", self.major, self.minor)
    }
}

/// A three-digit status code.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(pub u16);

impl Status {
    pub const CONTINUE: Status = Status(100);
    pub const SWITCHING_PROTOCOLS: Status = Status(101);
    pub const OK: Status = Status(200);
    pub const NO_CONTENT: Status = Status(204);
    pub const PARTIAL_CONTENT: Status = Status(206);
    pub const MOVED_PERMANENTLY: Status = Status(301);
    pub const NOT_MODIFIED: Status = Status(304);
    pub const BAD_REQUEST: Status = Status(400);
    pub const FORBIDDEN: Status = Status(403);
    pub const NOT_FOUND: Status = Status(404);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const REQUEST_TIMEOUT: Status = Status(408);
    pub const PAYLOAD_TOO_LARGE: Status = Status(413);
    pub const URI_TOO_LONG: Status = Status(414);
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);
    pub const EXPECTATION_FAILED: Status = Status(417);
    pub const HEADERS_TOO_LARGE: Status = Status(431);
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    pub const NOT_IMPLEMENTED: Status = Status(501);
    pub const BAD_GATEWAY: Status = Status(502);
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    pub const GATEWAY_TIMEOUT: Status = Status(504);
    pub const VERSION_NOT_SUPPORTED: Status = Status(505);

    /// The RFC 9110 reason phrase (empty for codes it does not name).
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            101 => "Switching Protocols",
            103 => "Early Hints",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            421 => "Misdirected Request",
            422 => "Unprocessable Content",
            426 => "Upgrade Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "",
        }
    }
    pub fn is_informational(self) -> bool {
        (100..200).contains(&self.0)
    }
    /// 1xx, 204 and 304 never carry a body (RFC 9112 §6.3 rule 1).
    pub fn forbids_body(self) -> bool {
        self.is_informational() || self.0 == 204 || self.0 == 304
    }
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub target: Target,
    pub version: Version,
    pub headers: Headers,
}

/// A parsed (or to-be-sent) response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: Status,
    /// The standard phrase borrowed, or a peer's owned.
    pub reason: std::borrow::Cow<'static, str>,
    pub headers: Headers,
}

impl ResponseHead {
    /// An HTTP/1.1 head with the standard reason phrase and no fields, with room for the
    /// fields a server's response usually has, so building one costs two allocations rather
    /// than one per doubling of its field list and bytes.
    pub fn new(status: Status) -> Self {
        ResponseHead {
            version: Version::HTTP_11,
            status,
            reason: status.reason().into(),
            headers: Headers::with_capacity(8, 256),
        }
    }
}

/// Limits on everything a peer can make us hold. Hitting one has a defined answer (RFC status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line or status line, CRLF excluded (414 for requests).
    pub max_start_line: usize,
    /// Longest header section, start line included (431).
    pub max_head: usize,
    /// Most header fields in one head, and most trailer fields (431).
    pub max_headers: usize,
    /// Largest request body (413). Responses are streamed and not capped by the parser.
    pub max_body: u64,
    /// Longest chunk-size line, extensions included (400).
    pub max_chunk_line: usize,
    /// Most empty lines skipped before a request line (RFC 9112 §2.2 robustness).
    pub max_leading_empty_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_start_line: 8 * 1024,
            max_head: 32 * 1024,
            max_headers: 100,
            max_body: 1 << 30,
            max_chunk_line: 4 * 1024,
            max_leading_empty_lines: 8,
        }
    }
}
