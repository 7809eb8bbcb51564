//! Byte classes of RFC 9110 §5.6 and RFC 3986, as lookup tables (one load per byte on the hot path).

macro_rules! table {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// field-vchar / obs-text / SP / HTAB: what may appear inside a field value (RFC 9110 §5.5).
const fn is_value_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f)
}

/// What a reg-name may hold (RFC 3986 §3.2.2): unreserved, sub-delims and `%` of pct-encoded.
const fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

static TCHAR: [bool; 256] = table!(is_tchar);
static REG_NAME: [bool; 256] = table!(is_reg_name_byte);
static VALUE: [bool; 256] = table!(is_value_byte);

#[inline]
pub fn tchar(b: u8) -> bool {
    TCHAR[b as usize]
}
#[inline]
pub fn value_byte(b: u8) -> bool {
    VALUE[b as usize]
}
#[inline]
pub fn reg_name_byte(b: u8) -> bool {
    REG_NAME[b as usize]
}
/// True when every byte of `s` may appear in a request-target as we accept it: visible ASCII
/// except `#` (a fragment never goes on the wire). Non-ASCII must be percent-encoded (every
/// browser does so); CTLs, SP and DEL are never valid. Written as one reduction over range
/// compares with no early exit, so LLVM turns it into SIMD compares (a long target is checked
/// sixteen bytes at a time instead of one table load a byte).
#[inline]
pub fn all_target_bytes(s: &[u8]) -> bool {
    s.iter().fold(0u8, |bad, &b| bad | !target_byte(b) as u8) == 0
}
/// One byte of [`all_target_bytes`], written with compares rather than a table for the same
/// reason.
#[inline]
pub fn target_byte(b: u8) -> bool {
    (b > 0x20) & (b < 0x7f) & (b != b'#')
}
/// A non-empty token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| tchar(b))
}
/// Value of a hex digit, either case.
#[inline]
pub fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
/// Strips SP and HTAB (and nothing else: RFC 9110 OWS) from both ends.
pub fn trim_ows(s: &[u8]) -> &[u8] {
    &s[trim_ows_range(s)]
}

/// The range of `s` that [`trim_ows`] keeps (for callers that record positions).
pub fn trim_ows_range(s: &[u8]) -> std::ops::Range<usize> {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_bytes_are_visible_ascii_but_the_fragment_mark() {
        for b in 0..=255u8 {
            let expected = b > 0x20 && b < 0x7f && b != b'#';
            assert_eq!(all_target_bytes(&[b]), expected, "byte {b:#x}");
            assert_eq!(all_target_bytes(&[b'/', b, b'a']), expected, "byte {b:#x}");
        }
        assert!(all_target_bytes(b""));
    }
}
