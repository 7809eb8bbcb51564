//! The cookie-date of RFC 6265 §5.1.1: how a user agent reads `Expires`.
//!
//! Not the HTTP-date: servers in the wild write `Wed, 09-Jun-2021 10:18:14 GMT`,
//! `Thursday, 01-Jan-70 00:00:01 GMT` and worse, and the algorithm reads them all the same way:
//! split the text into tokens at delimiters, then take the first token that looks like a time,
//! a day of the month, a month and a year, in any order. Two-digit years are 1970-2069. A date
//! that does not exist (30 February) or lacks a part fails. Dates before 1970 come back as
//! 1970-01-01: for a cookie, any of them means "already expired".

use crate::http::date::{civil_from_days, days_from_civil};
use crate::time::UnixTime;

/// %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E
fn is_delimiter(b: u8) -> bool {
    matches!(b, 0x09 | 0x20..=0x2F | 0x3B..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E)
}

/// `1*max DIGIT` at the start of `t`, followed by a non-digit or the end: its value and length.
fn digits(t: &[u8], min: usize, max: usize) -> Option<(u32, usize)> {
    let n = t.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    let v = t[..n]
        .iter()
        .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
    Some((v, n))
}

/// `hms-time ( non-digit *OCTET )`, each field `1*2DIGIT`.
fn time(t: &[u8]) -> Option<(u32, u32, u32)> {
    let (h, a) = digits(t, 1, 2)?;
    let t = t[a..].strip_prefix(b":")?;
    let (m, b) = digits(t, 1, 2)?;
    let t = t[b..].strip_prefix(b":")?;
    let (s, _) = digits(t, 1, 2)?;
    Some((h, m, s))
}

fn month(t: &[u8]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let head = t.get(..3)?;
    NAMES
        .iter()
        .position(|n| head.eq_ignore_ascii_case(&n[..]))
        .map(|i| i as u32 + 1)
}

/// Parses a cookie-date; `None` when §5.1.1 says it fails.
pub fn parse(s: &str) -> Option<UnixTime> {
    let (mut hms, mut day, mut mon, mut year) = (None, None, None, None);
    for token in s.as_bytes().split(|&b| is_delimiter(b)) {
        if token.is_empty() {
            continue;
        }
        if hms.is_none() {
            if let Some(t) = time(token) {
                hms = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some((d, _)) = digits(token, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if mon.is_none() {
            if let Some(m) = month(token) {
                mon = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some((y, _)) = digits(token, 2, 4) {
                year = Some(y);
                continue;
            }
        }
    }
    let (h, mi, sec) = hms?;
    let (d, m, mut y) = (day?, mon?, year?);
    if (70..=99).contains(&y) {
        y += 1900;
    } else if y <= 69 {
        y += 2000;
    }
    if !(1..=31).contains(&d) || y < 1601 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    // A day past the month's end (31 April) names no date.
    if civil_from_days(days) != (i64::from(y), m, d) {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    Some(UnixTime(u64::try_from(secs).unwrap_or(0)))
}
