//! `application/x-www-form-urlencoded` bodies and query strings, as browsers send them.
//!
//! Pairs are split on `&`, each on its first `=` (a pair without one is a name with an empty
//! value, as the URL standard reads it), `+` is a space, and **every** `%XX` is decoded (the
//! seed decoded only `+` and `%40`). Then the bytes must be UTF-8.
//!
//! # Decision: strict, not lenient
//! The URL standard keeps a malformed escape (`%zz`) as literal text and replaces invalid UTF-8
//! with U+FFFD. A browser never sends either, so a body that has them was written by hand or
//! mangled on the way; we answer it with 400 and say why ([`FormError`]) rather than store a
//! message the user did not write. A limit on the number of pairs ([`MAX_PAIRS`]) bounds the
//! work one body can cause.

use crate::http::chars::hex_val;

/// The most pairs one form may have.
pub const MAX_PAIRS: usize = 256;

/// Why a form was refused (a 400, with this as the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// More than [`MAX_PAIRS`] pairs.
    TooManyPairs,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FormError::BadEscape => "a percent-escape in the form is not % and two hex digits",
            FormError::NotUtf8 => "the form does not decode to UTF-8",
            FormError::TooManyPairs => "the form has too many fields",
        })
    }
}

/// A decoded form: its pairs in order (a name may repeat).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes a body or a query string (without its `?`).
    pub fn parse(input: &[u8]) -> Result<Form, FormError> {
        let mut pairs = Vec::new();
        for part in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_PAIRS {
                return Err(FormError::TooManyPairs);
            }
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Form { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one name or value: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_val);
                let lo = raw.get(i + 2).copied().and_then(hex_val);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(FormError::BadEscape);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// Encodes `s` for a form or query string (the inverse of [`decode`]): unreserved bytes as
/// they are, a space as `+`, everything else `%XX`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out
}
