//! `Range` (RFC 9110 §14) and the validators `ETag` / `Last-Modified` (§8.8, §13).
//!
//! One range is served as 206; several ranges are answered with the whole file (200), which
//! RFC 9110 §14.2 allows and which avoids multipart bodies; a malformed `Range` is ignored.

use crate::http::{date, Headers};
use crate::time::UnixTime;

/// The answer to a `Range` header for a file of `len` bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Serve everything (no header, malformed, several ranges, or `If-Range` mismatch).
    Full,
    /// Serve `start..=end` as 206.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

pub fn answer_range(value: Option<&[u8]>, len: u64) -> RangeAnswer {
    let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return RangeAnswer::Full;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())?
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeAnswer::Full,
        (true, false) => match num(b) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeAnswer::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return RangeAnswer::Full,
                }
            };
            if start >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

/// A strong validator from size and modification time (as nginx builds its ETag).
/// Built in one allocation (room for two 16-digit numbers, the dash and the quotes), without
/// the formatting machinery: it runs for every response.
pub fn etag(len: u64, modified: UnixTime) -> String {
    use crate::http::serialize::write_hex;
    let mut tag = Vec::with_capacity(36);
    tag.push(b'"');
    write_hex(modified.0, &mut tag);
    tag.push(b'-');
    write_hex(len, &mut tag);
    tag.push(b'"');
    // Only ASCII was written.
    String::from_utf8(tag).unwrap_or_default()
}

/// `If-None-Match` (weak comparison) or, without it, `If-Modified-Since`: true when the
/// client's copy is current and a 304 is the answer (RFC 9110 §13.2.2 order).
pub fn not_modified(h: &Headers, etag: &str, modified: UnixTime) -> bool {
    if h.contains("if-none-match") {
        let tag = etag.trim_start_matches("W/");
        return h.get_all("if-none-match").any(|v| {
            v.split(|&b| b == b',').any(|t| {
                let t = crate::http::chars::trim_ows(t);
                t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == tag.as_bytes()
            })
        });
    }
    match h.get("if-modified-since").and_then(date::parse) {
        Some(since) => modified <= since,
        None => false,
    }
}

/// `If-Range`: the range applies only if the validator still matches (strong comparison for
/// entity tags, exact match for dates).
pub fn if_range_holds(h: &Headers, etag: &str, modified: UnixTime) -> bool {
    match h.get("if-range") {
        None => true,
        Some(v) if v.first() == Some(&b'"') => v == etag.as_bytes(),
        Some(v) => date::parse(v) == Some(modified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn ranges() {
        let r = |s: &str| answer_range(Some(s.as_bytes()), 100);
        assert_eq!(r("bytes=0-4"), Partial { start: 0, end: 4 });
        assert_eq!(r("bytes=-5"), Partial { start: 95, end: 99 });
        assert_eq!(r("bytes=90-"), Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=90-1000"), Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=999999-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=5-1"), Full);
        assert_eq!(r("bytes=a-b"), Full);
        assert_eq!(r("items=0-4"), Full);
        assert_eq!(r("bytes=0-1,5-6"), Full);
        assert_eq!(answer_range(None, 100), Full);
        assert_eq!(answer_range(Some(b"bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn validators() {
        let tag = etag(10, UnixTime(1000));
        assert_eq!(tag, "\"3e8-a\"", "nginx's form: hex mtime, dash, hex size");
        assert_eq!(etag(0, UnixTime(u64::MAX)), "\"ffffffffffffffff-0\"");
        let mut h = Headers::new();
        h.append("If-None-Match", format!("\"x\", {tag}"));
        h.append("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT");
        assert!(not_modified(&h, &tag, UnixTime(1000)), "INM wins over IMS");
        let mut h = Headers::new();
        h.append("If-Modified-Since", date::format(UnixTime(1000)));
        assert!(not_modified(&h, &tag, UnixTime(1000)));
        assert!(!not_modified(&h, &tag, UnixTime(1001)));
        let mut h = Headers::new();
        h.append("If-Range", "\"other\"");
        assert!(!if_range_holds(&h, &tag, UnixTime(1000)));
    }
}
