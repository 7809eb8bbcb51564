//! Cookies on the server's side (RFC 6265 §4): reading the `Cookie` field and writing
//! `Set-Cookie`. The user agent's side is [`super::jar`].
//!
//! Reading is lenient, as servers are: pairs split on `;`, whitespace around them trimmed, a
//! value in double quotes unquoted, a pair without `=` skipped. Writing is strict: a name must be
//! a token and a value cookie-octets (§4.1.1), or [`SetCookie::new`] refuses it, so a header we
//! write is never one a browser could read differently.

use crate::http::chars::is_token;
use crate::http::date;
use crate::time::UnixTime;

/// The pairs of a `Cookie` field value, in order (a name may repeat; browsers send the most
/// specific path first).
pub fn parse_cookie_header(value: &str) -> Vec<(&str, &str)> {
    value
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim_matches([' ', '\t']);
            let value = value.trim_matches([' ', '\t']);
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (!name.is_empty()).then_some((name, value))
        })
        .collect()
}

/// The value of the first cookie called `name` in a `Cookie` field value.
pub fn cookie<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    parse_cookie_header(value)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `SameSite` attribute.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// A `Set-Cookie` field value to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    name: String,
    value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    /// Seconds; 0 or less deletes the cookie.
    pub max_age: Option<i64>,
    pub expires: Option<UnixTime>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<SameSite>,
}

/// `cookie-octet` (RFC 6265 §4.1.1): visible ASCII but DQUOTE, comma, semicolon and backslash.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

impl SetCookie {
    /// A cookie with no attributes; `None` when the name is not a token or the value not
    /// cookie-octets.
    pub fn new(name: &str, value: &str) -> Option<SetCookie> {
        let good = is_token(name.as_bytes()) && value.bytes().all(is_cookie_octet);
        good.then(|| SetCookie {
            name: name.into(),
            value: value.into(),
            path: None,
            domain: None,
            max_age: None,
            expires: None,
            secure: false,
            http_only: false,
            same_site: None,
        })
    }

    /// The cookie that deletes `name` at `path` (empty value, `Max-Age=0`, an `Expires` in the
    /// past for agents that predate `Max-Age`).
    pub fn removal(name: &str, path: &str) -> Option<SetCookie> {
        let mut c = SetCookie::new(name, "")?;
        c.path = Some(path.into());
        c.max_age = Some(0);
        c.expires = Some(UnixTime(0));
        Some(c)
    }
}

impl std::fmt::Display for SetCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)?;
        if let Some(p) = &self.path {
            write!(f, "; Path={p}")?;
        }
        if let Some(d) = &self.domain {
            write!(f, "; Domain={d}")?;
        }
        if let Some(s) = self.max_age {
            write!(f, "; Max-Age={s}")?;
        }
        if let Some(t) = self.expires {
            write!(f, "; Expires={}", date::format(t))?;
        }
        if self.secure {
            f.write_str("; Secure")?;
        }
        if self.http_only {
            f.write_str("; HttpOnly")?;
        }
        match self.same_site {
            Some(SameSite::Strict) => f.write_str("; SameSite=Strict"),
            Some(SameSite::Lax) => f.write_str("; SameSite=Lax"),
            Some(SameSite::None) => f.write_str("; SameSite=None"),
            None => Ok(()),
        }
    }
}
