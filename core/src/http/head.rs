//! Reading a head (a start line and field lines, or a trailer section) line by line as its bytes
//! arrive, in one pass: the scan that finds a line's end is the scan that validates it.
//!
//! # Contract
//! [`HeadScan::scan`] is given the bytes from the head's first byte to the end of what is
//! buffered. It reads every complete line it has not read yet, in order, and returns
//! * `Ok(Some(end))` once the empty line has arrived (`end` is the index just past it); the start
//!   line, fields and [`Known`] flags are then in the scan, for the caller to take;
//! * `Ok(None)` when more bytes are needed (the lines read so far are kept);
//! * `Err((kind, index))` for the first error in byte order.
//!
//! **Split invariance.** A line is judged only once its LF is buffered, and its verdict depends
//! on nothing but its own bytes and its position (for the limits below), so the result is the
//! same however the head was split. A partial last line is looked at again only when a new LF
//! has arrived or a limit is reached, so a head trickling in byte by byte costs linear time.
//!
//! **Limits** (positions are indices into the head):
//! * the start line's LF must be within the first `max_start_line + 2` bytes, else
//!   `StartLineTooLong` at `max_start_line + 2` as soon as that many bytes are buffered;
//! * the head's final LF must be before `max_head`, else `HeadTooLarge` at `max_head` once more
//!   than `max_head` bytes are buffered;
//! * at most `max_headers` field lines: the next one is `TooManyHeaders` at its LF.

use super::chars::{all_target_bytes, target_byte, tchar, trim_ows_range, value_byte};
use super::headers::{Field, Span};
use super::parse::{content_length, find_byte, valid_host, ErrorKind};
use super::swar;
use super::target::{TargetError, TargetOf};
use super::{Limits, Method, Status, Version};

/// What kind of section is being read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Request,
    Response,
    /// A chunked body's trailer section: field lines only.
    Trailers,
}

/// A parsed start line; text is kept as index ranges into the head, so reading it allocates
/// nothing.
#[derive(Clone, Debug)]
pub(super) enum StartLine {
    Request {
        method: Method,
        target: TargetOf<std::ops::Range<usize>>,
        version: Version,
    },
    Response {
        version: Version,
        status: Status,
        reason: std::ops::Range<usize>,
    },
}

/// Which framing-relevant fields a head has, found while reading so no later scan is needed:
/// how many `Host` and `Content-Length` fields there are and what the first of each says, judged
/// while its bytes are at hand (the verdicts are used only once the whole head has been read,
/// so errors still come in the order of the module docs).
#[derive(Clone, Default, Debug)]
pub(super) struct Known {
    pub host: u8,
    /// The first Host field's value is a valid `uri-host [ ":" port ]`.
    pub host_valid: bool,
    pub content_length: u8,
    /// The first Content-Length field's value, or why it is not one.
    pub first_content_length: Option<Result<u64, ErrorKind>>,
    pub transfer_encoding: bool,
    pub connection: bool,
    pub upgrade: bool,
}

/// The progress through one head. See the module docs for the contract.
#[derive(Clone, Debug, Default)]
pub(super) struct HeadScan {
    /// Where the next unread line begins.
    next_line: usize,
    /// How many bytes the last incomplete scan had seen: no LF lies in `next_line..checked`.
    checked: usize,
    pub start: Option<StartLine>,
    pub fields: Vec<Field>,
    pub known: Known,
}

/// The outcome of looking at one field line.
#[derive(Debug, PartialEq)]
enum Line {
    /// The empty line: the head ends just before this index.
    End(usize),
    /// A valid field line; the next line starts at `next`.
    Field { span: Field, next: usize },
    /// The line's LF has not arrived (within the head limit).
    Incomplete,
}

impl HeadScan {
    /// Forgets everything: the next call reads a new head.
    #[inline]
    pub fn reset(&mut self) {
        self.next_line = 0;
        self.checked = 0;
        self.start = None;
        self.fields.clear();
        self.known = Known::default();
    }

    /// True when no byte of the current head has been looked at yet.
    pub fn is_fresh(&self) -> bool {
        self.checked == 0 && self.next_line == 0
    }

    /// Reads what it can of `head`. See the module docs.
    pub fn scan(
        &mut self,
        head: &[u8],
        section: Section,
        limits: &Limits,
    ) -> Result<Option<usize>, (ErrorKind, usize)> {
        let window = &head[..head.len().min(limits.max_head)];
        let start_pending = section != Section::Trailers && self.start.is_none();
        if self.checked > self.next_line
            && find_byte(b'\n', &window[self.checked.min(window.len())..]).is_none()
        {
            return self.incomplete(head.len(), limits, start_pending);
        }
        if start_pending {
            let reach = window.len().min(limits.max_start_line + 2);
            let fast = match section {
                Section::Request => fast_request_line(&window[..reach]),
                Section::Response => fast_response_line(&window[..reach]),
                Section::Trailers => None,
            };
            let (start, lf) = match fast {
                Some(fast) => fast,
                None => match general_start_line(&window[..reach], section) {
                    Some(read) => read?,
                    None => return self.incomplete(head.len(), limits, true),
                },
            };
            self.start = Some(start);
            self.next_line = lf + 1;
        }
        let mut i = self.next_line;
        loop {
            let line = match fast_field_line(window, i) {
                Some(line) => line,
                None => slow_field_line(window, i)?,
            };
            match line {
                Line::End(end) => return Ok(Some(end)),
                Line::Incomplete => {
                    // Kept only when the scan stops: a store per field line showed in the bench.
                    self.next_line = i;
                    return self.incomplete(head.len(), limits, false);
                }
                Line::Field { span, next } => {
                    if self.fields.len() == limits.max_headers {
                        return Err((ErrorKind::TooManyHeaders, next - 1));
                    }
                    let name = &window[span.name.start as usize..span.name.end as usize];
                    let value = &window[span.value.start as usize..span.value.end as usize];
                    self.note_known(name, value);
                    self.fields.push(span);
                    i = next;
                }
            }
        }
    }

    fn incomplete(
        &mut self,
        len: usize,
        limits: &Limits,
        start_pending: bool,
    ) -> Result<Option<usize>, (ErrorKind, usize)> {
        self.checked = len;
        if start_pending && len >= limits.max_start_line + 2 {
            return Err((ErrorKind::StartLineTooLong, limits.max_start_line + 2));
        }
        if len > limits.max_head {
            return Err((ErrorKind::HeadTooLarge, limits.max_head));
        }
        Ok(None)
    }

    /// Notes a field the framing depends on; `value` is its (trimmed) value.
    fn note_known(&mut self, name: &[u8], value: &[u8]) {
        let k = &mut self.known;
        match name.len() {
            4 if is_name(name, b"host") => {
                if k.host == 0 {
                    k.host_valid = valid_host(value);
                }
                k.host = k.host.saturating_add(1);
            }
            7 if is_name(name, b"upgrade") => k.upgrade = true,
            10 if is_name(name, b"connection") => k.connection = true,
            14 if is_name(name, b"content-length") => {
                if k.content_length == 0 {
                    k.first_content_length = Some(content_length(value));
                }
                k.content_length = k.content_length.saturating_add(1);
            }
            17 if is_name(name, b"transfer-encoding") => k.transfer_encoding = true,
            _ => {}
        }
    }
}

/// `name` (a validated token) equals `lower` (lowercase letters and `-`) ignoring ASCII case,
/// compared without a branch per byte. Setting bit 0x20 maps only a letter's two cases onto a
/// lowercase letter, and onto `-` only `-` and CR, which is not a tchar: so for a token this is
/// exactly `eq_ignore_ascii_case`, at a fraction of its cost (it showed as several ns a head).
#[inline]
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(0u8, |diff, (&a, &b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// The common case in one pass: a token, a colon, OWS, a value of visible bytes (or TAB) and
/// CRLF. `None` when the line is anything else, for [`slow_field_line`] to judge.
#[inline]
fn fast_field_line(h: &[u8], i: usize) -> Option<Line> {
    if h.get(i) == Some(&b'\r') {
        return match h.get(i + 1) {
            Some(b'\n') => Some(Line::End(i + 2)),
            Some(_) => None,
            None => Some(Line::Incomplete),
        };
    }
    // The name is a run of tchars ending in a colon (a colon is not a tchar), walked four
    // bytes a branch and then a byte a branch. Where it ends is then decided by branches the
    // CPU predicts, not computed from the bytes, so the search for the value's end can start
    // before the name's bytes are even loaded. The scan is bound by that chain from one line's
    // end to the next, and the word-at-a-time colon search it replaces (load, mask, bit scan)
    // added some twelve cycles to every link: the parser bench's response went from 90 to
    // 83-84 ns and the small POST from 73.5 to 71.5-72 (`bench/parser.sh`, four runs each),
    // in fewer instructions. Where names vary, the exit costs a mispredicted branch per
    // line, as in httparse's and picohttpparser's name loops. A line without a colon, or
    // with something else first, is left to the slow path.
    let j = i + run_len(&h[i..], tchar);
    if j == i || h.get(j) != Some(&b':') {
        return None;
    }
    let mut k = j + 1;
    while matches!(h.get(k), Some(b' ' | b'\t')) {
        k += 1;
    }
    let value_start = k;
    loop {
        let Some(p) = first_control(&h[k..]) else {
            return Some(Line::Incomplete);
        };
        let p = k + p;
        match h[p] {
            b'\t' => k = p + 1,
            b'\r' => {
                return match h.get(p + 1) {
                    Some(b'\n') => {
                        let mut value_end = p;
                        // Only SP and TAB sort at or below SP among the bytes before `p`.
                        if h[p - 1] <= b' ' {
                            while value_end > value_start
                                && matches!(h[value_end - 1], b' ' | b'\t')
                            {
                                value_end -= 1;
                            }
                        }
                        let span = Field {
                            name: Span::new(i..j),
                            value: Span::new(value_start..value_end),
                        };
                        Some(Line::Field { span, next: p + 2 })
                    }
                    Some(_) => None,
                    None => Some(Line::Incomplete),
                };
            }
            _ => return None,
        }
    }
}

/// Index of the first byte below 0x20 or equal to 0x7f. The first eight bytes are tested with
/// SWAR alone: many values (`Content-Length: 37`, `keep-alive`) end there, and for them the SIMD
/// test of [`first_control_from`] was pure overhead.
#[inline]
fn first_control(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    if let Some(w) = b.first_chunk::<8>() {
        if let Some(p) = swar::lowest(control_mask(swar::word(w))) {
            return Some(p);
        }
        from = 8;
    }
    first_control_from(b, from)
}

/// The bytes of `x` below 0x20 or equal to 0x7f.
#[inline]
fn control_mask(x: u64) -> u64 {
    swar::below(x, 0x20) | swar::equal(x, 0x7f)
}

/// [`first_control`] from `b[from..]` on (the index counted from `b`'s start), sixteen bytes
/// at a time: the test of a chunk is written so that LLVM compiles it to SIMD compares on any
/// x86-64 (no `unsafe`), and the byte that passed is then found with [`control_mask`]. A tail
/// shorter than a chunk is tested a byte at a time.
///
/// Always inlined, as are [`first_non_target`] and `parse::framing_fields`: LLVM kept each as
/// a call, and inlining the three took the parser bench's small POST from 69.5-70 to 64.5-66
/// ns, the response from 81-83 to 75.5-76 and the browser GET from 132-137 to 124-126 (two
/// runs or more each), with 90-280 fewer instructions a message.
#[inline(always)]
fn first_control_from(b: &[u8], mut from: usize) -> Option<usize> {
    let control = |x: u8| (x < 0x20) | (x == 0x7f);
    while let Some(chunk) = b[from..].first_chunk::<16>() {
        let mut any = 0u8;
        for &x in chunk {
            any |= control(x) as u8;
        }
        if any != 0 {
            let (lo, hi) = chunk.split_at(8);
            let found = swar::lowest(control_mask(swar::word(lo)))
                .or_else(|| swar::lowest(control_mask(swar::word(hi))).map(|p| 8 + p));
            return found.map(|p| from + p);
        }
        from += 16;
    }
    b[from..].iter().position(|&x| control(x)).map(|p| from + p)
}

/// Judges a field line the fast path refused: finds its LF first (a line is judged only once it
/// is complete), then names the first thing wrong with it.
fn slow_field_line(h: &[u8], i: usize) -> Result<Line, (ErrorKind, usize)> {
    let Some(rel) = find_byte(b'\n', &h[i..]) else {
        return Ok(Line::Incomplete);
    };
    let lf = i + rel;
    if lf == 0 || h[lf - 1] != b'\r' {
        return Err((ErrorKind::BareLf, lf));
    }
    if lf - 1 == i {
        return Ok(Line::End(lf + 1));
    }
    let line = &h[i..lf - 1];
    if let [b' ' | b'\t', ..] = line {
        return Err((ErrorKind::ObsFold, i));
    }
    let name_len = line.iter().take_while(|&&b| tchar(b)).count();
    if line.get(name_len) != Some(&b':') || name_len == 0 {
        let kind = match line.get(name_len) {
            _ if find_byte(b':', line).is_none() => ErrorKind::MissingColon,
            Some(b' ' | b'\t') => ErrorKind::WhitespaceBeforeColon,
            Some(b'\r') => ErrorKind::BareCr,
            _ => ErrorKind::BadHeaderName,
        };
        return Err((kind, i));
    }
    let trimmed = trim_ows_range(&line[name_len + 1..]);
    let value = &line[name_len + 1..][trimmed.clone()];
    if let Some(bad) = value.iter().position(|&b| !value_byte(b)) {
        let kind = if value[bad] == b'\r' {
            ErrorKind::BareCr
        } else {
            ErrorKind::BadHeaderValue
        };
        return Err((kind, i));
    }
    let value_start = i + name_len + 1 + trimmed.start;
    let value_end = i + name_len + 1 + trimmed.end;
    let span = Field {
        name: Span::new(i..i + name_len),
        value: Span::new(value_start..value_end),
    };
    Ok(Line::Field { span, next: lf + 1 })
}

/// The common request line in one pass: GET, POST, HEAD, PUT or DELETE, SP, an origin-form
/// target, SP, `HTTP/1.0` or `HTTP/1.1`, CRLF, all within `w`. Returns the start line and the
/// index of its LF: exactly what finding the LF and [`request_line`] make of the same bytes
/// (the first LF is this one, since no byte before it may be a control). `None` for any other
/// line, or one not complete in `w`, which that path then judges. One scan of the target both
/// finds its end and validates it, where the general path searches for the LF, then for each
/// SP, then checks the target's bytes: in the parser bench that saved about 6 ns of the small
/// POST's 83 and 13 of the browser GET's 157.
#[inline]
fn fast_request_line(w: &[u8]) -> Option<(StartLine, usize)> {
    let (method, target_at) = match w {
        [b'G', b'E', b'T', b' ', ..] => (Method::Get, 4),
        [b'P', b'O', b'S', b'T', b' ', ..] => (Method::Post, 5),
        [b'H', b'E', b'A', b'D', b' ', ..] => (Method::Head, 5),
        [b'P', b'U', b'T', b' ', ..] => (Method::Put, 4),
        [b'D', b'E', b'L', b'E', b'T', b'E', b' ', ..] => (Method::Delete, 7),
        _ => return None,
    };
    if w.get(target_at) != Some(&b'/') {
        return None;
    }
    let target_end = target_at + first_non_target(&w[target_at..])?;
    let minor = match &w[target_end..] {
        [b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ (b'0' | b'1'), b'\r', b'\n', ..] => {
            minor - b'0'
        }
        _ => return None,
    };
    let start = StartLine::Request {
        method,
        target: TargetOf::origin(target_at..target_end),
        version: Version { major: 1, minor },
    };
    Some((start, target_end + 10))
}

/// The common status line in one pass: `HTTP/1.0` or `HTTP/1.1`, SP, a status of three digits
/// from 100, SP, a reason without control bytes (TAB included), CRLF, all within `w`. Returns
/// what finding the LF and [`response_line`] make of the same bytes, or `None` for that path to
/// judge. The general path searches for the LF and then checks the line a part at a time; this
/// saves 43 of the ~2,780 instructions the parser bench's response took (callgrind) and 1.8-2.7
/// ns of its ~90 (`bench/parser.sh`, two runs each way).
#[inline]
fn fast_response_line(w: &[u8]) -> Option<(StartLine, usize)> {
    let [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ (b'0' | b'1'), b' ', d0 @ b'1'..=b'9', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', b' ', ..] =
        *w
    else {
        return None;
    };
    let reason_end = 13 + run_len(&w[13..], |x| x >= 0x20 && x != 0x7f);
    if w.get(reason_end) != Some(&b'\r') || w.get(reason_end + 1) != Some(&b'\n') {
        return None;
    }
    let digit = |d: u8| u16::from(d - b'0');
    let start = StartLine::Response {
        version: Version {
            major: 1,
            minor: minor - b'0',
        },
        status: Status(digit(d0) * 100 + digit(d1) * 10 + digit(d2)),
        reason: 13..reason_end,
    };
    Some((start, reason_end + 1))
}

/// Index of the first byte that may not appear in a request-target (a control, SP, `#`, DEL
/// or non-ASCII: what [`target_byte`] refuses). Sixteen bytes a branch (LLVM tests a chunk
/// with SIMD compares), then [`run_len`]: the target's end is decided by predicted branches,
/// not computed from a mask, which took the small POST from 71.5-72 to 69.5-70 ns and the
/// browser GET from 137-140 to 133.5-137.5 in the parser bench (two runs each). Always
/// inlined: see [`first_control_from`].
#[inline(always)]
fn first_non_target(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = b.get(i..).and_then(|r| r.first_chunk::<16>()) {
        if !all_target_bytes(w) {
            break;
        }
        i += 16;
    }
    i += run_len(&b[i..], target_byte);
    (i < b.len()).then_some(i)
}

/// The length of the run of bytes at the start of `b` that pass `ok`, walked four bytes a
/// branch and then a byte a branch. Where the run ends is decided by branches the CPU
/// predicts rather than computed from the bytes (as a word-at-a-time search does with a mask
/// and a bit scan), so the work that starts there need not wait for the bytes to be loaded
/// and tested: see [`fast_field_line`] for what that was worth.
#[inline]
pub(super) fn run_len(b: &[u8], ok: impl Fn(u8) -> bool) -> usize {
    let mut i = 0;
    while let Some(&[p, q, r, s]) = b.get(i..).and_then(|r| r.first_chunk::<4>()) {
        if !(ok(p) & ok(q) & ok(r) & ok(s)) {
            break;
        }
        i += 4;
    }
    while b.get(i).is_some_and(|&x| ok(x)) {
        i += 1;
    }
    i
}

/// The start line at the front of `w` read the general way, which every line can take: its LF
/// found first, then the line before it judged ([`request_line`] or [`response_line`]). Returns
/// the start line and the index of its LF; `None` while no LF has arrived.
fn general_start_line(
    w: &[u8],
    section: Section,
) -> Option<Result<(StartLine, usize), (ErrorKind, usize)>> {
    let lf = find_byte(b'\n', w)?;
    if lf == 0 || w[lf - 1] != b'\r' {
        return Some(Err((ErrorKind::BareLf, lf)));
    }
    let line = &w[..lf - 1];
    let start = match section {
        Section::Response => response_line(line),
        _ => request_line(line),
    };
    Some(start.map(|start| (start, lf)))
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3). Errors carry indices into `line`.
fn request_line(line: &[u8]) -> Result<StartLine, (ErrorKind, usize)> {
    let sp1 = find_byte(b' ', line).ok_or((ErrorKind::BadStartLine, 0))?;
    let rest = &line[sp1 + 1..];
    let sp2 = find_byte(b' ', rest).ok_or((ErrorKind::BadStartLine, 0))?;
    let target_bytes = &rest[..sp2];
    let method = Method::from_bytes(&line[..sp1]).ok_or((ErrorKind::BadMethod, 0))?;
    let target_at = sp1 + 1;
    if target_bytes.is_empty() {
        return Err((ErrorKind::BadStartLine, target_at));
    }
    let version = parse_version(&rest[sp2 + 1..]).map_err(|k| (k, target_at + sp2 + 1))?;
    let target = TargetOf::check(target_bytes, &method).map_err(|e| {
        let kind = match e {
            TargetError::Empty => ErrorKind::BadStartLine,
            _ => ErrorKind::BadTarget,
        };
        (kind, target_at)
    })?;
    let target = target.map_raw(|()| target_at..target_at + sp2);
    Ok(StartLine::Request {
        method,
        target,
        version,
    })
}

/// `HTTP-version SP 3DIGIT SP [reason]`; a missing SP + reason is tolerated.
fn response_line(line: &[u8]) -> Result<StartLine, (ErrorKind, usize)> {
    if line.len() < 12 || line[8] != b' ' {
        return Err((ErrorKind::BadStatus, 0));
    }
    let version = parse_version(&line[..8]).map_err(|k| (k, 0))?;
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) || (line.len() > 12 && line[12] != b' ') {
        return Err((ErrorKind::BadStatus, 9));
    }
    let status = Status(code.iter().fold(0u16, |a, &d| a * 10 + (d - b'0') as u16));
    if status.0 < 100 {
        return Err((ErrorKind::BadStatus, 9));
    }
    let reason = 13.min(line.len())..line.len();
    if !line[reason.clone()].iter().all(|&b| value_byte(b)) {
        return Err((ErrorKind::BadStatus, 13));
    }
    Ok(StartLine::Response {
        version,
        status,
        reason,
    })
}

/// `HTTP/` DIGIT `.` DIGIT, case-sensitive (RFC 9112 §2.3). Majors other than 1 are 505.
fn parse_version(b: &[u8]) -> Result<Version, ErrorKind> {
    match b {
        [b'H', b'T', b'T', b'P', b'/', ma, b'.', mi]
            if ma.is_ascii_digit() && mi.is_ascii_digit() =>
        {
            let v = Version {
                major: ma - b'0',
                minor: mi - b'0',
            };
            if v.major == 1 {
                Ok(v)
            } else {
                Err(ErrorKind::UnsupportedVersion)
            }
        }
        _ => Err(ErrorKind::BadVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_name_is_eq_ignore_ascii_case_for_tokens() {
        let names: [&[u8]; 5] = [
            b"host",
            b"upgrade",
            b"connection",
            b"content-length",
            b"transfer-encoding",
        ];
        for name in names {
            assert!(is_name(&name.to_ascii_uppercase(), name));
            for at in 0..name.len() {
                for b in (0..=255u8).filter(|&b| tchar(b)) {
                    let mut other = name.to_vec();
                    other[at] = b;
                    assert_eq!(
                        is_name(&other, name),
                        other.eq_ignore_ascii_case(name),
                        "{:?}",
                        String::from_utf8_lossy(&other)
                    );
                }
            }
            assert!(!is_name(&name[1..], name));
        }
    }

    /// Gives every line of `lines` to `fast`; where it answers, demands exactly what
    /// [`general_start_line`] makes of the same bytes. Returns how many lines it answered.
    fn fast_agrees_with_general(
        lines: Vec<Vec<u8>>,
        fast: fn(&[u8]) -> Option<(StartLine, usize)>,
        section: Section,
    ) -> usize {
        let mut answered = 0;
        for w in lines {
            let Some((fast, lf)) = fast(&w) else {
                continue;
            };
            answered += 1;
            let shown = String::from_utf8_lossy(&w);
            let general = general_start_line(&w, section);
            let Some(Ok((start, general_lf))) = general else {
                panic!("{shown:?}: fast answered, general said {general:?}");
            };
            assert_eq!(lf, general_lf, "{shown:?}");
            assert_eq!(format!("{fast:?}"), format!("{start:?}"), "{shown:?}");
        }
        answered
    }

    #[test]
    fn the_fast_request_line_is_the_general_one_where_it_answers() {
        let methods: [&[u8]; 9] = [
            b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"get", b"GE",
        ];
        let long = [b'/'; 40];
        let targets: [&[u8]; 14] = [
            b"/",
            b"/a",
            b"/a/b?c=d&e",
            b"/a b",
            b"/a#b",
            b"/a\x7f",
            b"/\xc3\xa9",
            b"/a\tb",
            b"*",
            b"http://x/y",
            b"",
            b"a/b",
            b"/%2e%2e/",
            &long,
        ];
        let versions: [&[u8]; 7] = [
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/1.2",
            b"HTTP/2.0",
            b"http/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.",
        ];
        let ends: [&[u8]; 5] = [b"\r\n", b"\n", b"\r", b"", b"\r\r\n"];
        let mut lines = Vec::new();
        for m in methods {
            for t in targets {
                for v in versions {
                    for end in ends {
                        for rest in [&b""[..], b"Host: a\r\n\r\n"] {
                            lines.push([m, b" ", t, b" ", v, end, rest].concat());
                        }
                    }
                }
            }
        }
        let answered = fast_agrees_with_general(lines, fast_request_line, Section::Request);
        // Five methods, the five targets of valid bytes that begin with `/`, two versions, one
        // line end, two continuations: every other line is left to the general path.
        assert_eq!(
            answered,
            5 * 5 * 2 * 2,
            "the fast path answered {answered} lines"
        );
    }

    #[test]
    fn the_fast_response_line_is_the_general_one_where_it_answers() {
        let versions: [&[u8]; 6] = [
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/1.2",
            b"HTTP/2.0",
            b"http/1.1",
            b"HTTP/1.",
        ];
        let statuses: [&[u8]; 8] = [b"200", b"100", b"999", b"099", b"20", b"2000", b"2x0", b""];
        let long = [b'x'; 40];
        let reasons: [&[u8]; 10] = [
            b" OK",
            b" ",
            b"",
            b" Not Found",
            b" a\tb",
            b" \xc3\xa9",
            b" a\x7fb",
            b" a\x01",
            b"  two",
            &long,
        ];
        let ends: [&[u8]; 5] = [b"\r\n", b"\n", b"\r", b"", b"\r\r\n"];
        let mut lines = Vec::new();
        for v in versions {
            for code in statuses {
                for reason in reasons {
                    for end in ends {
                        for rest in [&b""[..], b"Server: a\r\n\r\n"] {
                            lines.push([v, b" ", code, reason, end, rest].concat());
                        }
                    }
                }
            }
        }
        let answered = fast_agrees_with_general(lines, fast_response_line, Section::Response);
        // Two versions, three statuses, the reasons that start with SP and hold no control
        // (" OK", " ", " Not Found", " é", "  two"), and three ways to a CRLF: the line's own
        // with either continuation, and none, where the next line's text joins the reason.
        assert_eq!(
            answered,
            2 * 3 * 5 * 3,
            "the fast path answered {answered} lines"
        );
    }

    #[test]
    fn the_fast_field_line_is_the_slow_one_where_it_answers() {
        let names: [&[u8]; 14] = [
            b"",
            b"a",
            b"Host",
            b"Cookie",
            b"X-Long-Header-Name-0",
            b"Content-Length",
            b"x_y.z~!#$%&'*+^`|",
            b"Bad Name",
            b"Bad\tName",
            b"Bad@Name",
            b"Bad\x80Name",
            b"Bad\rName",
            b" Folded",
            b"Name\n",
        ];
        let colons: [&[u8]; 3] = [b":", b" :", b""];
        let ows: [&[u8]; 4] = [b"", b" ", b"\t", b" \t "];
        let values: [&[u8]; 9] = [
            b"",
            b"v",
            b"localhost:8080",
            b"a value that runs past sixteen and thirty-two bytes, to the SIMD loop",
            b"tab\tinside",
            b"trailing ows \t ",
            b"obs\x80text\xff",
            b"del\x7fhere",
            b"bare\rcr",
        ];
        let ends: [&[u8]; 6] = [b"\r\n", b"\n", b"\r", b"", b"\rx", b"\r\n\r\n"];
        let mut answered = 0;
        for name in names {
            for colon in colons {
                for lead in ows {
                    for value in values {
                        for end in ends {
                            let line = [name, colon, lead, value, end].concat();
                            for prefix in [&b""[..], b"Ab: c\r\n"] {
                                let h = [prefix, &line].concat();
                                let i = prefix.len();
                                let Some(fast) = fast_field_line(&h, i) else {
                                    continue;
                                };
                                answered += 1;
                                let shown = String::from_utf8_lossy(&h);
                                assert_eq!(Ok(fast), slow_field_line(&h, i), "{shown:?}");
                            }
                        }
                    }
                }
            }
        }
        // The fast path must still answer the common lines, or this test checks nothing.
        assert!(answered > 300, "answered {answered}");
    }

    #[test]
    fn run_len_agrees_with_position() {
        let hay: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len in 0..hay.len() {
            for at in 0..=len {
                let mut b = hay[..len].to_vec();
                if at < len {
                    b[at] = b':';
                }
                let expect = b.iter().position(|&x| !tchar(x)).unwrap_or(len);
                assert_eq!(
                    run_len(&b, tchar),
                    expect,
                    "{:?}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
    }

    #[test]
    fn first_non_target_agrees_with_position() {
        for bad in 0..=255u8 {
            for at in 0..40 {
                let mut w = [b'a'; 40];
                w[at] = bad;
                for from in [0, 1, 7, 8, 9, 16, 17, 30] {
                    let expect = w[from..].iter().position(|&x| !target_byte(x));
                    assert_eq!(first_non_target(&w[from..]), expect, "{bad:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn first_control_agrees_with_position() {
        let hay: Vec<u8> = (0..300u32).map(|i| (i * 37 % 95 + 32) as u8).collect();
        for bad in [0u8, b'\t', b'\r', b'\n', 0x1f, 0x7f] {
            for at in 0..hay.len() {
                let mut h = hay.clone();
                h[at] = bad;
                for from in [0, 1, 15, 16, 17] {
                    let expect = h[from..].iter().position(|&x| x < 0x20 || x == 0x7f);
                    assert_eq!(first_control(&h[from..]), expect);
                }
            }
        }
        assert_eq!(first_control(&hay), None);
    }
}
