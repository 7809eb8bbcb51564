//! Request-target forms (RFC 9112 §3.2) and path normalisation for file lookup.
//!
//! The target is kept exactly as received ([`Target::as_str`]) so a proxy can forward it
//! untouched; [`normalize_path`] is the one place that turns a path into segments: it decodes
//! percent-escapes **once**, refuses what would change the path's meaning after decoding (an
//! encoded `/`, a backslash, NUL, invalid UTF-8), then removes dot-segments and refuses any `..`
//! that would climb above the root (nginx answers that with 400 too).

use super::chars::{all_target_bytes, hex_val};
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

/// A validated request-target over its raw text `S`: [`Target`] owns it, [`TargetRef`] borrows
/// it from the parser's buffer. Both read the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetOf<S> {
    raw: S,
    form: Form,
    /// Byte range of the path-and-query within `raw` (empty for authority and asterisk forms).
    path_start: usize,
    authority: (usize, usize),
}

/// A request-target that owns its text.
pub type Target = TargetOf<String>;
/// A request-target read in place.
pub type TargetRef<'a> = TargetOf<&'a str>;

/// Why a request-target was refused (always a 400).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    Empty,
    BadByte,
    FormNotAllowed,
    BadAbsolute,
}

impl Target {
    /// Validates `raw` for `method`; see [`TargetRef::parse`].
    pub fn parse(raw: &[u8], method: &Method) -> Result<Target, TargetError> {
        TargetRef::parse(raw, method).map(|t| t.to_target())
    }
}

impl<'a> TargetRef<'a> {
    /// Validates `raw` for `method` (asterisk-form only with OPTIONS, authority-form only and
    /// always with CONNECT), without copying it.
    pub fn parse(raw: &'a [u8], method: &Method) -> Result<TargetRef<'a>, TargetError> {
        let parts = TargetOf::check(raw, method)?;
        // `check` accepted only visible ASCII, so this cannot fail.
        let text = std::str::from_utf8(raw).map_err(|_| TargetError::BadByte)?;
        Ok(parts.map_raw(|()| text))
    }
}

impl TargetOf<()> {
    /// The validation of [`TargetRef::parse`] on bytes: the form and the spans, without the
    /// text (the parser keeps a span and makes the text once the head is complete).
    #[inline]
    pub(crate) fn check(raw: &[u8], method: &Method) -> Result<TargetOf<()>, TargetError> {
        if raw.is_empty() {
            return Err(TargetError::Empty);
        }
        if !all_target_bytes(raw) {
            return Err(TargetError::BadByte);
        }
        let len = raw.len();
        let parts = |form, path_start, authority| {
            Ok(TargetOf {
                raw: (),
                form,
                path_start,
                authority,
            })
        };
        if *method == Method::Connect {
            if raw.contains(&b'/') || !raw.contains(&b':') {
                return Err(TargetError::FormNotAllowed);
            }
            return parts(Form::Authority, len, (0, len));
        }
        if raw == b"*" {
            return if *method == Method::Options {
                parts(Form::Asterisk, len, (0, 0))
            } else {
                Err(TargetError::FormNotAllowed)
            };
        }
        if raw[0] == b'/' {
            return Ok(TargetOf::origin(()));
        }
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        let colon = raw
            .windows(3)
            .position(|w| w == b"://")
            .ok_or(TargetError::FormNotAllowed)?;
        let scheme = &raw[..colon];
        let scheme_ok = scheme.first().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(TargetError::BadAbsolute);
        }
        let auth_start = colon + 3;
        let auth_end = raw[auth_start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(len, |i| auth_start + i);
        // The authority decides where the request goes (RFC 9112 §3.2.2), so it must be a
        // plain host and port: no userinfo (RFC 9110 §4.2.4 says to treat one as an error),
        // nothing a Host field could not hold.
        let authority = &raw[auth_start..auth_end];
        if authority.is_empty() || !super::parse::valid_host(authority) {
            return Err(TargetError::BadAbsolute);
        }
        parts(Form::Absolute, auth_end, (auth_start, auth_end))
    }
}

impl<S> TargetOf<S> {
    /// An origin-form target over `raw`, which begins with `/` and holds only target bytes:
    /// what [`TargetOf::check`] makes of such a target for any method but CONNECT.
    #[inline]
    pub(crate) fn origin(raw: S) -> TargetOf<S> {
        TargetOf {
            raw,
            form: Form::Origin,
            path_start: 0,
            authority: (0, 0),
        }
    }
    /// The same target over other storage for its text (the parser keeps a span while it
    /// reads the rest of the head, and turns it back into text once the head is complete).
    pub(crate) fn map_raw<T>(self, f: impl FnOnce(S) -> T) -> TargetOf<T> {
        TargetOf {
            raw: f(self.raw),
            form: self.form,
            path_start: self.path_start,
            authority: self.authority,
        }
    }
}

impl TargetOf<String> {
    /// The target's text as received, without a copy.
    pub fn into_string(self) -> String {
        self.raw
    }
}

impl<S: AsRef<str>> TargetOf<S> {
    /// The owned copy.
    pub fn to_target(&self) -> Target {
        TargetOf {
            raw: self.raw.as_ref().to_string(),
            form: self.form,
            path_start: self.path_start,
            authority: self.authority,
        }
    }
    /// The target exactly as received.
    pub fn as_str(&self) -> &str {
        self.raw.as_ref()
    }
    pub fn form(&self) -> Form {
        self.form
    }
    /// The path (before `?`), still percent-encoded. `/` for an absolute-form target with an
    /// empty path; empty for the authority and asterisk forms.
    pub fn path(&self) -> &str {
        let pq = &self.as_str()[self.path_start..];
        let p = pq.split('?').next().unwrap_or("");
        if p.is_empty() && self.form == Form::Absolute {
            "/"
        } else {
            p
        }
    }
    /// The query after the first `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.as_str()[self.path_start..]
            .split_once('?')
            .map(|(_, q)| q)
    }
    /// The authority of an absolute-form or authority-form target.
    pub fn authority(&self) -> Option<&str> {
        let (a, b) = self.authority;
        (b > a).then(|| &self.as_str()[a..b])
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

/// A path decoded once and normalised: segments without `.`, `..` or empty parts, held as one
/// string (`/a/b`, empty for the root) so a request's path costs one allocation, not one per
/// segment and one for their list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanPath {
    /// Each decoded segment preceded by `/`; a decoded segment never contains `/`.
    joined: String,
    /// The path ended in `/` (a directory was asked for).
    pub trailing_slash: bool,
}

impl CleanPath {
    /// The decoded segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.joined.split('/').skip(1)
    }
    /// The segments joined as `/a/b` (empty for the root), without the trailing slash.
    pub fn joined(&self) -> &str {
        &self.joined
    }
    /// The last segment, if any.
    pub fn last(&self) -> Option<&str> {
        self.joined.rsplit_once('/').map(|(_, last)| last)
    }
    /// `/a/b` form, for logs and redirects (decoded).
    pub fn to_slash_path(&self) -> String {
        let mut s = self.joined.clone();
        if s.is_empty() || self.trailing_slash {
            s.push('/');
        }
        s
    }
}

/// Decodes and normalises an origin-form path (the part before `?`). See the module docs.
/// Each segment is decoded straight onto the end of the result and judged there: kept, or cut
/// off again (`.`, empty), or cut off with the segment before it (`..`). Errors come in segment
/// order, as they would segment by segment.
pub fn normalize_path(path: &str) -> Result<CleanPath, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotOrigin);
    }
    let mut joined: Vec<u8> = Vec::with_capacity(path.len());
    let mut raw_segments = path[1..].split('/').peekable();
    let mut trailing_slash = false;
    while let Some(raw) = raw_segments.next() {
        let last = raw_segments.peek().is_none();
        let start = joined.len();
        joined.push(b'/');
        decode_segment(raw, &mut joined)?;
        let seg = std::str::from_utf8(&joined[start + 1..]).map_err(|_| PathError::NotUtf8)?;
        match seg {
            "" | "." => {
                joined.truncate(start);
                trailing_slash |= last;
            }
            ".." => {
                joined.truncate(start);
                let parent = joined
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(PathError::AboveRoot)?;
                joined.truncate(parent);
                trailing_slash |= last;
            }
            _ => {}
        }
    }
    if joined.is_empty() {
        trailing_slash = true;
    }
    // Every segment kept was checked to be UTF-8, and `/` is ASCII.
    let joined = String::from_utf8(joined).map_err(|_| PathError::NotUtf8)?;
    Ok(CleanPath {
        joined,
        trailing_slash,
    })
}

/// Appends the percent-decoding of one raw segment to `out`.
fn decode_segment(raw: &str, out: &mut Vec<u8>) -> Result<(), PathError> {
    let b = raw.as_bytes();
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
    Ok(())
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
        let z = t("http://[::1]:8080/", Method::Get).unwrap();
        assert_eq!(z.authority(), Some("[::1]:8080"));
        for bad in [
            "http://u@b.example/",
            "http://u:p@b.example/",
            "http://b.example:99999/",
            "http://b.example:80:80/",
            "http://./",
            "http://[::1/",
        ] {
            assert_eq!(t(bad, Method::Get), Err(TargetError::BadAbsolute), "{bad}");
        }
    }

    #[test]
    fn normalisation_decodes_once_and_stays_inside() {
        let p = |s| normalize_path(s).map(|c| c.to_slash_path());
        assert_eq!(p("/"), Ok("/".into()));
        assert_eq!(p("/a/./b/../c"), Ok("/a/c".into()));
        assert_eq!(p("/a/%2e%2e/c"), Ok("/c".into()));
        assert_eq!(p("/css/"), Ok("/css/".into()));
        // A dot segment last leaves a folder, as a trailing slash does; anywhere else it goes.
        assert_eq!(p("/a/b/.."), Ok("/a/".into()));
        assert_eq!(p("/a/."), Ok("/a/".into()));
        assert_eq!(p("/a/./"), Ok("/a/".into()));
        assert_eq!(p("/a/../b"), Ok("/b".into()));
        assert_eq!(p("/a//b"), Ok("/a/b".into()));
        assert_eq!(p("/a/b/"), Ok("/a/b/".into()));
        assert_eq!(
            p("/%ff/../a"),
            Err(PathError::NotUtf8),
            "judged before `..` drops it"
        );
        assert_eq!(p("/a/%e2%82%ac"), Ok("/a/\u{20ac}".into()));
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

    /// The straightforward normalisation (a list of decoded segments), which the one-string
    /// version must match on any path: same segments, same trailing slash, same first error.
    fn model(path: &str) -> Result<(Vec<String>, bool), PathError> {
        let path = path.strip_prefix('/').ok_or(PathError::NotOrigin)?;
        let raw: Vec<&str> = path.split('/').collect();
        let mut segments: Vec<String> = Vec::new();
        let mut trailing = false;
        for (i, r) in raw.iter().enumerate() {
            let mut bytes = Vec::new();
            decode_segment(r, &mut bytes)?;
            let seg = String::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
            let last = i == raw.len() - 1;
            match seg.as_str() {
                "" | "." => trailing |= last,
                ".." => {
                    segments.pop().ok_or(PathError::AboveRoot)?;
                    trailing |= last;
                }
                _ => segments.push(seg),
            }
        }
        Ok((segments.clone(), trailing || segments.is_empty()))
    }

    proptest::proptest! {
        #[test]
        fn normalisation_matches_the_segment_list_model(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "", ".", "..", "a", "b.css", "%2e", "%2e%2e", "%2E.", "%ff", "%e2%82%ac",
                    "%2f", "%5c", "%00", "%4", "x%41y", "\\",
                ]),
                0..8,
            )
        ) {
            let path = format!("/{}", parts.join("/"));
            let got = normalize_path(&path)
                .map(|c| (c.segments().map(str::to_string).collect::<Vec<_>>(), c.trailing_slash));
            proptest::prop_assert_eq!(got, model(&path), "{}", path);
        }
    }
}
