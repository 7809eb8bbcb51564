//! IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`; and RFC 3339 timestamps for
//! logs.
//!
//! Only IMF-fixdate is parsed; the two obsolete formats are rare and a conditional header we
//! cannot read is ignored, which is always safe (a full response instead of a 304).

use crate::time::UnixTime;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Hinnant's civil_from_days).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats a wall-clock instant as RFC 3339 in UTC with milliseconds,
/// `2026-12-07T08:10:00.123Z`: the timestamp that starts every access-log line.
pub fn rfc3339_utc(secs: u64, millis: u32) -> String {
    let secs = secs as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        millis.min(999)
    )
}

/// Formats `t` as IMF-fixdate. A year of four digits (every real date) is written digit by
/// digit into one allocation of the 29 bytes it takes: this runs for every response (its
/// `Last-Modified`) and the formatting machinery showed in the backend's profile.
pub fn format(t: UnixTime) -> String {
    let secs = t.0 as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let day = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    if (1000..=9999).contains(&y) {
        let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        let mut b = Vec::with_capacity(29);
        b.extend_from_slice(day.as_bytes());
        b.extend_from_slice(b", ");
        b.extend_from_slice(&two(d as i64));
        b.push(b' ');
        b.extend_from_slice(month.as_bytes());
        b.push(b' ');
        b.extend_from_slice(&two(y / 100));
        b.extend_from_slice(&two(y % 100));
        b.push(b' ');
        b.extend_from_slice(&two(rem / 3600));
        b.push(b':');
        b.extend_from_slice(&two(rem / 60 % 60));
        b.push(b':');
        b.extend_from_slice(&two(rem % 60));
        b.extend_from_slice(b" GMT");
        // Only ASCII was written.
        return String::from_utf8(b).unwrap_or_default();
    }
    format_general(day, d, month, y, rem)
}

/// [`format`] for any year, through the formatting machinery.
fn format_general(day: &str, d: u32, month: &str, y: i64, rem: i64) -> String {
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        day,
        d,
        month,
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp (`2026-12-07T08:10:00Z`, `2026-12-07t08:10:00.5+01:00`) to
/// whole seconds; `None` for anything else or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = b.get(r)?;
        t.iter()
            .all(u8::is_ascii_digit)
            .then(|| t.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = |a: u8, b: u8| i64::from(a - b'0') * 10 + i64::from(b - b'0');
            let off = v(digits[0], digits[1]) * 3600 + v(digits[2], digits[3]) * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs).ok().map(UnixTime)
}

/// Parses IMF-fixdate; `None` for anything else.
pub fn parse(s: &[u8]) -> Option<UnixTime> {
    let s = std::str::from_utf8(s).ok()?;
    let b = s.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || &b[25..] != b" GMT"
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let d = num(5..7)?;
    let m = MONTHS.iter().position(|&x| x == &s[8..11])? as u32 + 1;
    let y = num(12..16)? as i64;
    if &s[19..20] != ":" || &s[22..23] != ":" {
        return None;
    }
    let (hh, mm, ss) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 || y < 1970 {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + (hh * 3600 + mm * 60 + ss) as i64;
    u64::try_from(secs).ok().map(UnixTime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_what_it_formats_and_offsets() {
        assert_eq!(
            parse_rfc3339("2026-12-07T08:10:00Z"),
            Some(UnixTime(1796631000))
        );
        assert_eq!(
            parse_rfc3339("2026-12-07t08:10:00.123z"),
            Some(UnixTime(1796631000))
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T09:10:00+01:00"),
            Some(UnixTime(1796631000))
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T07:40:00-00:30"),
            Some(UnixTime(1796631000))
        );
        for bad in [
            "2026-12-07T08:10:00",
            "2026-02-30T08:10:00Z",
            "2026-13-07T08:10:00Z",
            "2026-12-07T24:10:00Z",
            "2026-12-07T08:10:00.Z",
            "2026-12-07T08:10:00+0100",
            "1969-12-31T23:59:59Z",
            "2026-12-07X08:10:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_in_utc_with_milliseconds() {
        assert_eq!(super::rfc3339_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_utc(784_111_777, 5),
            "1994-11-06T08:49:37.005Z"
        );
        assert_eq!(
            super::rfc3339_utc(1_796_628_599, 999),
            "2026-12-07T07:29:59.999Z"
        );
    }

    #[test]
    fn rfc_example_round_trips() {
        assert_eq!(
            format(UnixTime(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UnixTime(784_111_777))
        );
        assert_eq!(format(UnixTime(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format(UnixTime(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        for t in (0..4_000_000_000u64).step_by(86_399 * 37) {
            assert_eq!(parse(format(UnixTime(t)).as_bytes()), Some(UnixTime(t)));
        }
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    /// The digit-by-digit path writes what the formatting machinery writes, up to the last
    /// second of year 9999, and years beyond it still format.
    #[test]
    fn the_fast_format_is_the_general_one() {
        let general = |t: u64| {
            let secs = t as i64;
            let days = secs.div_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let day = DAYS[days.rem_euclid(7) as usize];
            format_general(day, d, MONTHS[(m - 1) as usize], y, secs.rem_euclid(86_400))
        };
        let last_of_9999 = 253_402_300_799u64;
        let mut times: Vec<u64> = (0..last_of_9999).step_by(7_919 * 3_617).collect();
        times.extend([0, 59, 3_599, 86_399, 951_782_400, last_of_9999, u64::MAX]);
        // Before year 1000 (a wrapped, absurd modification time): the general path too.
        times.push((-40_000_000_000i64) as u64);
        for t in times {
            assert_eq!(format(UnixTime(t)), general(t), "{t}");
        }
        assert_eq!(
            format(UnixTime(last_of_9999 + 1)),
            "Sat, 01 Jan 10000 00:00:00 GMT"
        );
    }
}
