//! Writing messages: heads, chunked framing, and the `Date` value.
//!
//! Heads are written exactly as given: the caller decides framing headers
//! (`Content-Length` or `Transfer-Encoding: chunked`) through [`BodyFraming`], and this module
//! adds them, so a head can never carry both.

use super::{Headers, Method, ResponseHead, Version};

/// How the body that follows a head is framed on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body and no length header (1xx, 204, 304, or a request without a body).
    None,
    /// `Content-Length: n` (also used for HEAD responses, which then send no bytes).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Body until the connection closes (responses only, for 1.0 clients).
    Close,
}

/// Appends a response head. `framing` adds the length header; `Content-Length` and
/// `Transfer-Encoding` in `head.headers` are ignored so they cannot contradict it.
pub fn write_response_head(head: &ResponseHead, framing: BodyFraming, out: &mut Vec<u8>) {
    // One allocation for the whole head, at most (none when `out` has room from an earlier
    // response): status line, fields with their ": " and CRLF, the framing field, CRLF.
    let fields: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    out.reserve(15 + head.reason.len() + fields + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    let code = head.status.0;
    out.extend_from_slice(&[
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(&head.headers, framing, out);
}

/// Appends a request head (origin-form `target`).
pub fn write_request_head(
    method: &Method,
    target: &str,
    version: Version,
    headers: &Headers,
    framing: BodyFraming,
    out: &mut Vec<u8>,
) {
    // One allocation for the whole head: fields plus their ": " and CRLF, the start line and
    // the framing field.
    let fields: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    out.reserve(method.as_str().len() + target.len() + fields + 64);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/");
    // Versions are single digits (the parser accepts no other), written without formatting.
    out.push(b'0' + version.major.min(9));
    out.push(b'.');
    out.push(b'0' + version.minor.min(9));
    out.extend_from_slice(b"\r\n");
    write_fields(headers, framing, out);
}

/// The fields (less any framing field, which `framing` alone decides), the framing field and
/// the empty line that ends the head.
fn write_fields(headers: &Headers, framing: BodyFraming, out: &mut Vec<u8>) {
    for (n, v) in headers.iter() {
        if n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding")
        {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    write_framing(framing, out);
    out.extend_from_slice(b"\r\n");
}

fn write_framing(framing: BodyFraming, out: &mut Vec<u8>) {
    match framing {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            write_u64(n, out);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::None | BodyFraming::Close => {}
    }
}

/// Appends one chunk (nothing for empty data: an empty chunk would end the body).
pub fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    write_hex(data.len() as u64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and trailers.
pub fn write_last_chunk(trailers: &Headers, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    trailers.write_to(out);
    out.extend_from_slice(b"\r\n");
}

/// Appends the lowercase hex digits of `n` (a chunk size), without formatting machinery.
pub(crate) fn write_hex(n: u64, out: &mut Vec<u8>) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for k in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(n >> (4 * k) & 0xf) as usize]);
    }
}

/// Appends the decimal digits of `n`.
pub fn write_u64(n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse::Parser, Event, Limits, Status};

    #[test]
    fn response_head_round_trips_through_the_parser() {
        let mut head = ResponseHead::new(Status::OK);
        head.headers.append("Content-Type", "text/plain");
        head.headers.append("Content-Length", "999"); // ignored: framing decides
        let mut out = Vec::new();
        write_response_head(&head, BodyFraming::Chunked, &mut out);
        write_chunk(b"hello", &mut out);
        write_chunk(b"", &mut out);
        write_last_chunk(&Headers::new(), &mut out);
        let mut p = Parser::response(Limits::default());
        p.feed(&out);
        let Ok(Event::Response(r)) = p.next_event() else {
            panic!("no head")
        };
        assert_eq!(r.status, Status::OK);
        assert!(!r.headers.contains("content-length"));
        assert_eq!(p.next_event(), Ok(Event::Data(b"hello".to_vec())));
        assert!(matches!(p.next_event(), Ok(Event::End { .. })));
    }

    #[test]
    fn u64_digits() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut v = Vec::new();
            write_u64(n, &mut v);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }

    #[test]
    fn hex_digits() {
        let mut cases = vec![0u64, 1, 0xf, 0x10, 0xff, 0x100, 0xabc, u64::MAX];
        cases.extend((0..64).map(|k| 1u64 << k));
        cases.extend((1..64).map(|k| (1u64 << k) - 1));
        for n in cases {
            let mut v = Vec::new();
            write_hex(n, &mut v);
            assert_eq!(String::from_utf8(v).unwrap(), format!("{n:x}"));
        }
    }
}
