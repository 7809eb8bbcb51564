//! Request-target forms (RFC 9112 §3.2) and path normalisation for file lookup.
//!
//! The target is kept exactly as received ([`Target::as_str`]) so a proxy can forward it
//! untouched; [`normalize_path`] is the one place that turns a path into segments: it decodes
//! percent-escapes **once**, refuses what would change the path's meaning after decoding (an
//! encoded `/`, a backslash, NUL, invalid UTF-8), then removes dot-segments and refuses any `..`
//! that would climb above the root (nginx answers that with 400 too).

use super::chars::{hex_val, target_byte};
use super::Method;

/// Which of the four forms a request-target has.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// `/path?query`
    Origin,
    /// `http://host:port/path?query` (a proxy request; routed by its authority, not Host)
    Absolute,
    /// `host:port`, CONNECT only
    Authority,
    /// `*`, OPTIONS only
    Asterisk,
}

/// A validated request-target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    raw: String,
    form: Form,
    /// Byte range of the path-and-query within `raw` (empty for authority and asterisk forms).
    path_start: usize,
    authority: (usize, usize),
}

/// Why a request-target was refused (always a 400).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    Empty,
    BadByte,
    FormNotAllowed,
    BadAbsolute,
}

impl Target {
    /// Validates `raw` for `method` (asterisk-form only with OPTIONS, authority-form only and
    /// always with CONNECT).
    pub fn parse(raw: &[u8], method: &Method) -> Result<Target, TargetError> {
        if raw.is_empty() {
            return Err(TargetError::Empty);
        }
        if !raw.iter().all(|&b| target_byte(b)) {
            return Err(TargetError::BadByte);
        }
        // All bytes are visible ASCII, so this cannot fail.
        let s = std::str::from_utf8(raw)
            .map_err(|_| TargetError::BadByte)?
            .to_string();
        let is_connect = *method == Method::Connect;
        if is_connect {
            if s.starts_with('/') || s.contains('/') || !s.contains(':') {
                return Err(TargetError::FormNotAllowed);
            }
            let len = s.len();
            return Ok(Target {
                raw: s,
                form: Form::Authority,
                path_start: len,
                authority: (0, len),
            });
        }
        if s == "*" {
            return if *method == Method::Options {
                let len = s.len();
                Ok(Target {
                    raw: s,
                    form: Form::Asterisk,
                    path_start: len,
                    authority: (0, 0),
                })
            } else {
                Err(TargetError::FormNotAllowed)
            };
        }
        if s.starts_with('/') {
            return Ok(Target {
                raw: s,
                form: Form::Origin,
                path_start: 0,
                authority: (0, 0),
            });
        }
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        let colon = s.find("://").ok_or(TargetError::FormNotAllowed)?;
        let scheme = &s[..colon];
        let scheme_ok = scheme
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(TargetError::BadAbsolute);
        }
        let auth_start = colon + 3;
        let auth_end = s[auth_start..]
            .find(['/', '?'])
            .map_or(s.len(), |i| auth_start + i);
        if auth_end == auth_start {
            return Err(TargetError::BadAbsolute);
        }
        Ok(Target {
            raw: s,
            form: Form::Absolute,
            path_start: auth_end,
            authority: (auth_start, auth_end),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn form(&self) -> Form {
        self.form
    }
    /// The path (before `?`), still percent-encoded. `/` for an absolute-form target with an
    /// empty path; empty for the authority and asterisk forms.
    pub fn path(&self) -> &str {
        let pq = &self.raw[self.path_start..];
        let p = pq.split('?').next().unwrap_or("");
        if p.is_empty() && self.form == Form::Absolute {
            "/"
        } else {
            p
        }
    }
    /// The query after the first `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.raw[self.path_start..].split_once('?').map(|(_, q)| q)
    }
    /// The authority of an absolute-form or authority-form target.
    pub fn authority(&self) -> Option<&str> {
        let (a, b) = self.authority;
        (b > a).then(|| &self.raw[a..b])
    }
}

/// Why a path cannot name a file (always a 400: the request is malformed or hostile).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    NotOrigin,
    BadEscape,
    EncodedSlash,
    Backslash,
    Nul,
    NotUtf8,
    AboveRoot,
}

/// A path decoded once and normalised: segments without `.`, `..` or empty parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanPath {
    pub segments: Vec<String>,
    /// The path ended in `/` (a directory was asked for).
    pub trailing_slash: bool,
}

impl CleanPath {
    /// `/a/b` form, for logs and redirects (decoded).
    pub fn to_slash_path(&self) -> String {
        let mut s = String::new();
        for seg in &self.segments {
            s.push('/');
            s.push_str(seg);
        }
        if s.is_empty() || self.trailing_slash {
            s.push('/');
        }
        s
    }
}

/// Decodes and normalises an origin-form path (the part before `?`). See the module docs.
pub fn normalize_path(path: &str) -> Result<CleanPath, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotOrigin);
    }
    let mut segments: Vec<String> = Vec::new();
    let raw_segments: Vec<&str> = path[1..].split('/').collect();
    let last = raw_segments.len() - 1;
    let mut trailing_slash = false;
    for (i, raw) in raw_segments.iter().enumerate() {
        let seg = decode_segment(raw)?;
        match seg.as_str() {
            "" | "." => {
                if i == last {
                    trailing_slash = true;
                }
            }
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                if i == last {
                    trailing_slash = true;
                }
            }
            _ => segments.push(seg),
        }
    }
    if segments.is_empty() {
        trailing_slash = true;
    }
    Ok(CleanPath {
        segments,
        trailing_slash,
    })
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = if b[i] == b'%' {
            let hi = b
                .get(i + 1)
                .copied()
                .and_then(hex_val)
                .ok_or(PathError::BadEscape)?;
            let lo = b
                .get(i + 2)
                .copied()
                .and_then(hex_val)
                .ok_or(PathError::BadEscape)?;
            i += 3;
            let c = hi << 4 | lo;
            if c == b'/' {
                return Err(PathError::EncodedSlash);
            }
            c
        } else {
            i += 1;
            b[i - 1]
        };
        match c {
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            _ => out.push(c),
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, m: Method) -> Result<Target, TargetError> {
        Target::parse(s.as_bytes(), &m)
    }

    #[test]
    fn forms_are_tied_to_methods() {
        assert_eq!(t("/a?b", Method::Get).unwrap().form(), Form::Origin);
        assert_eq!(t("*", Method::Options).unwrap().form(), Form::Asterisk);
        assert_eq!(t("*", Method::Get), Err(TargetError::FormNotAllowed));
        assert_eq!(
            t("a.b:443", Method::Connect).unwrap().form(),
            Form::Authority
        );
        assert_eq!(t("/", Method::Connect), Err(TargetError::FormNotAllowed));
        assert_eq!(t("a.b:80", Method::Get), Err(TargetError::FormNotAllowed));
        assert_eq!(t("/a b", Method::Get), Err(TargetError::BadByte));
        assert_eq!(t("/a#f", Method::Get), Err(TargetError::BadByte));
    }

    #[test]
    fn absolute_form_exposes_authority_and_path() {
        let x = t("http://b.example/x?q=1", Method::Get).unwrap();
        assert_eq!(x.authority(), Some("b.example"));
        assert_eq!(x.path(), "/x");
        assert_eq!(x.query(), Some("q=1"));
        let y = t("http://b.example?q", Method::Get).unwrap();
        assert_eq!(y.path(), "/");
        assert_eq!(t("http:///x", Method::Get), Err(TargetError::BadAbsolute));
    }

    #[test]
    fn normalisation_decodes_once_and_stays_inside() {
        let p = |s| normalize_path(s).map(|c| c.to_slash_path());
        assert_eq!(p("/"), Ok("/".into()));
        assert_eq!(p("/a/./b/../c"), Ok("/a/c".into()));
        assert_eq!(p("/a/%2e%2e/c"), Ok("/c".into()));
        assert_eq!(p("/css/"), Ok("/css/".into()));
        assert_eq!(p("/%2541"), Ok("/%41".into()), "decoded exactly once");
        assert_eq!(p("/../etc/passwd"), Err(PathError::AboveRoot));
        assert_eq!(p("/%2e%2e/x"), Err(PathError::AboveRoot));
        assert_eq!(p("/a/%2F..%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(p("/..%5c.."), Err(PathError::Backslash));
        assert_eq!(p("/a\\b"), Err(PathError::Backslash));
        assert_eq!(p("/a%00.txt"), Err(PathError::Nul));
        assert_eq!(p("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(p("/%ff"), Err(PathError::NotUtf8));
    }
}
