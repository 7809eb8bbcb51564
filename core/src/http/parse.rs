//! The incremental HTTP/1.1 parser, for requests (server side) and responses (client side).
//!
//! # Contract
//! * [`Parser::feed`] only buffers; [`Parser::feed_eof`] records that the peer closed.
//! * [`Parser::next_event`] returns one [`Event`] at a time, [`Event::NeedData`] when it needs more
//!   bytes, or the [`ParseError`] that ends the stream (returned again on every later call).
//! * **Split invariance**: for any input, the sequence of events (with adjacent `Data` events
//!   merged) and the final error are the same however the bytes were split across `feed` calls.
//!   This holds because every decision is a function of a prefix of the stream: a head line is
//!   judged only once its LF has arrived, and the size limits are defined by byte positions, not
//!   by what happened to be buffered (see [`super::head`]). `tests/split_invariance.rs` checks it
//!   with proptest, the fuzz target with the fuzzer's splits.
//! * Request framing follows RFC 9112 §6 strictly: Transfer-Encoding with Content-Length, several
//!   Content-Length fields, a malformed Content-Length, a Transfer-Encoding that does not end in
//!   `chunked`, obs-fold, whitespace before a colon and bare CR/LF are all errors: ambiguous
//!   framing is refused, never repaired (http-rules.md §6).
//! * After a request that asks to switch protocols (CONNECT, or `Upgrade` listed in
//!   `Connection`) ends, the parser returns [`Event::Paused`] until the owner calls
//!   [`Parser::resume`] (the upgrade was declined) or takes the rest with [`Parser::take_rest`].
//!   After a 101 response, or a 2xx response to CONNECT, it returns [`Event::Upgrade`] forever.

use super::chars::{hex_val, is_token, tchar, trim_ows, value_byte};
use super::head::{HeadScan, Known, Section, StartLine};
use super::{Headers, Limits, Method, RequestHead, ResponseHead, Status, Target, Version};
use std::collections::VecDeque;

/// What the parser reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// One step of the parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Request(RequestHead),
    /// A response head: interim (1xx) heads come before the final one for the same request.
    Response(ResponseHead),
    /// Body bytes, de-chunked. How the body is cut into `Data` events depends on the input split.
    Data(Vec<u8>),
    /// The message is complete (trailers are empty unless the body was chunked and had some).
    End {
        trailers: Headers,
    },
    /// More input is needed.
    NeedData,
    /// A switch-protocol request ended: waiting for [`Parser::resume`] or [`Parser::take_rest`].
    Paused,
    /// The HTTP part of the stream is over (101, or 2xx to CONNECT).
    Upgrade,
    /// The peer closed cleanly between messages.
    Closed,
}

/// What went wrong; [`ErrorKind::status`] is the answer a server gives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    StartLineTooLong,
    HeadTooLarge,
    TooManyHeaders,
    TooManyEmptyLines,
    BareLf,
    BareCr,
    BadStartLine,
    BadMethod,
    BadTarget,
    BadVersion,
    UnsupportedVersion,
    BadStatus,
    ObsFold,
    BadHeaderName,
    WhitespaceBeforeColon,
    MissingColon,
    BadHeaderValue,
    MissingHost,
    DuplicateHost,
    BadHost,
    BadContentLength,
    DuplicateContentLength,
    TransferEncodingWithContentLength,
    TransferEncodingInHttp10,
    BadTransferEncoding,
    UnknownTransferCoding,
    BodyTooLarge,
    BadChunkSize,
    BadChunkExtension,
    ChunkLineTooLong,
    BadChunkTerminator,
    Truncated,
}

impl ErrorKind {
    /// The status a server answers this error with (RFC 9110/9112, RFC 6585).
    pub fn status(self) -> Status {
        use ErrorKind::*;
        match self {
            StartLineTooLong => Status::URI_TOO_LONG,
            HeadTooLarge | TooManyHeaders => Status::HEADERS_TOO_LARGE,
            UnsupportedVersion => Status::VERSION_NOT_SUPPORTED,
            UnknownTransferCoding => Status::NOT_IMPLEMENTED,
            BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            _ => Status::BAD_REQUEST,
        }
    }
    /// A stable snake_case name (used by `httptool parse` and in logs).
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            StartLineTooLong => "start_line_too_long",
            HeadTooLarge => "head_too_large",
            TooManyHeaders => "too_many_headers",
            TooManyEmptyLines => "too_many_empty_lines",
            BareLf => "bare_lf",
            BareCr => "bare_cr",
            BadStartLine => "bad_start_line",
            BadMethod => "bad_method",
            BadTarget => "bad_target",
            BadVersion => "bad_version",
            UnsupportedVersion => "unsupported_version",
            BadStatus => "bad_status",
            ObsFold => "obs_fold",
            BadHeaderName => "bad_header_name",
            WhitespaceBeforeColon => "whitespace_before_colon",
            MissingColon => "missing_colon",
            BadHeaderValue => "bad_header_value",
            MissingHost => "missing_host",
            DuplicateHost => "duplicate_host",
            BadHost => "bad_host",
            BadContentLength => "bad_content_length",
            DuplicateContentLength => "duplicate_content_length",
            TransferEncodingWithContentLength => "transfer_encoding_with_content_length",
            TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            BadTransferEncoding => "bad_transfer_encoding",
            UnknownTransferCoding => "unknown_transfer_coding",
            BodyTooLarge => "body_too_large",
            BadChunkSize => "bad_chunk_size",
            BadChunkExtension => "bad_chunk_extension",
            ChunkLineTooLong => "chunk_line_too_long",
            BadChunkTerminator => "bad_chunk_terminator",
            Truncated => "truncated",
        }
    }
}

/// A parse failure at a byte offset of the whole stream (0 = the first byte ever fed).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub offset: u64,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.kind.name(), self.offset)
    }
}
impl std::error::Error for ParseError {}

/// How the body of the current message is delimited.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the peer closes (responses only).
    CloseDelimited,
}

#[derive(Clone, Debug)]
enum State {
    /// Reading a head (progress in `Parser::scan`); `leading` empty lines were skipped.
    Head {
        leading: usize,
    },
    Length {
        remaining: u64,
    },
    ChunkSize,
    ChunkData {
        remaining: u64,
    },
    ChunkDataEnd,
    /// Reading the trailer section (progress in `Parser::scan`).
    Trailers,
    CloseDelimited,
    /// Emit End with these trailers, then go to `after`.
    EndPending,
    Paused,
    Upgraded,
    Closed,
    Failed(ParseError),
}

/// The incremental parser. See the module docs for the contract.
#[derive(Clone, Debug)]
pub struct Parser {
    kind: Kind,
    limits: Limits,
    buf: Vec<u8>,
    /// Index in `buf` of the first unconsumed byte.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    state: State,
    trailers: Headers,
    body_seen: u64,
    /// For responses: the methods of requests still waiting for their final response.
    methods: VecDeque<Method>,
    /// The message being read switches protocols once it ends.
    switch_after: bool,
    /// Progress through the head or trailer section being read.
    scan: HeadScan,
}

impl Parser {
    pub fn new(kind: Kind, limits: Limits) -> Self {
        Parser {
            kind,
            limits,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
            state: State::Head { leading: 0 },
            trailers: Headers::new(),
            body_seen: 0,
            methods: VecDeque::new(),
            switch_after: false,
            scan: HeadScan::default(),
        }
    }
    pub fn request(limits: Limits) -> Self {
        Self::new(Kind::Request, limits)
    }
    pub fn response(limits: Limits) -> Self {
        Self::new(Kind::Response, limits)
    }

    /// Buffers bytes. Never parses.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.base += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }
    /// Records that the peer closed its sending side.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }
    /// For a response parser: the method of the request whose response comes next (in order).
    /// HEAD makes the response bodiless; CONNECT makes a 2xx an upgrade. Unannounced responses
    /// are read as answers to GET.
    pub fn expect_response_to(&mut self, method: Method) {
        self.methods.push_back(method);
    }
    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// True between messages with nothing buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { .. }) && self.buffered() == 0
    }
    /// True when the stream has failed, upgraded or closed: no more HTTP events will come.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            State::Failed(_) | State::Upgraded | State::Closed
        )
    }
    /// After [`Event::Paused`]: the switch did not happen; parse the next request.
    pub fn resume(&mut self) {
        if matches!(self.state, State::Paused) {
            self.state = State::Head { leading: 0 };
        }
    }
    /// After [`Event::Paused`] or [`Event::Upgrade`]: the bytes that follow the HTTP part.
    /// The parser is finished afterwards.
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.pos);
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.pos = 0;
        self.state = State::Upgraded;
        rest
    }
    /// True while reading a body that ends only when the peer closes (a response with neither
    /// Content-Length nor chunked framing).
    pub fn in_close_delimited_body(&self) -> bool {
        matches!(self.state, State::CloseDelimited)
    }
    /// Body bytes of the current message so far (for chunked bodies: announced by chunk sizes).
    pub fn body_bytes_seen(&self) -> u64 {
        self.body_seen
    }

    fn offset(&self, i: usize) -> u64 {
        self.base + i as u64
    }
    fn fail(&mut self, kind: ErrorKind, at: usize) -> ParseError {
        let e = ParseError {
            kind,
            offset: self.offset(at),
        };
        self.state = State::Failed(e);
        e
    }

    /// Advances the parse by one event. See the module docs.
    pub fn next_event(&mut self) -> Result<Event, ParseError> {
        match self.state.clone() {
            State::Failed(e) => Err(e),
            State::Closed => Ok(Event::Closed),
            State::Upgraded => Ok(Event::Upgrade),
            State::Paused => Ok(Event::Paused),
            State::Head { leading } => self.next_head(leading),
            State::Length { remaining } => {
                let Some((data, left)) = self.take_up_to(remaining) else {
                    return self.need_data_in_body();
                };
                self.body_seen += data.len() as u64;
                self.state = if left == 0 {
                    State::EndPending
                } else {
                    State::Length { remaining: left }
                };
                Ok(Event::Data(data))
            }
            State::CloseDelimited => {
                if self.buffered() > 0 {
                    let data = self.buf[self.pos..].to_vec();
                    self.pos = self.buf.len();
                    self.body_seen += data.len() as u64;
                    Ok(Event::Data(data))
                } else if self.eof {
                    self.state = State::Closed;
                    Ok(Event::End {
                        trailers: Headers::new(),
                    })
                } else {
                    Ok(Event::NeedData)
                }
            }
            State::ChunkSize => self.next_chunk_size(),
            State::ChunkData { remaining } => {
                let Some((data, left)) = self.take_up_to(remaining) else {
                    return self.need_data_in_body();
                };
                self.state = if left == 0 {
                    State::ChunkDataEnd
                } else {
                    State::ChunkData { remaining: left }
                };
                Ok(Event::Data(data))
            }
            State::ChunkDataEnd => {
                let avail = &self.buf[self.pos..];
                match avail {
                    [] | [b'\r'] => self.need_data_in_body(),
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        self.state = State::ChunkSize;
                        self.next_event()
                    }
                    [b'\r', _, ..] => Err(self.fail(ErrorKind::BadChunkTerminator, self.pos + 1)),
                    _ => Err(self.fail(ErrorKind::BadChunkTerminator, self.pos)),
                }
            }
            State::Trailers => self.next_trailers(),
            State::EndPending => {
                let trailers = std::mem::take(&mut self.trailers);
                self.state = if self.switch_after {
                    self.switch_after = false;
                    match self.kind {
                        Kind::Request => State::Paused,
                        Kind::Response => State::Upgraded,
                    }
                } else {
                    State::Head { leading: 0 }
                };
                Ok(Event::End { trailers })
            }
        }
    }

    /// Consumes up to `remaining` buffered body bytes: the bytes and how many remain after
    /// them, or `None` when nothing is buffered.
    fn take_up_to(&mut self, remaining: u64) -> Option<(Vec<u8>, u64)> {
        let n = (self.buffered() as u64).min(remaining) as usize;
        if n == 0 {
            return None;
        }
        let data = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Some((data, remaining - n as u64))
    }

    fn need_data_in_body(&mut self) -> Result<Event, ParseError> {
        if self.eof {
            let at = self.buf.len();
            Err(self.fail(ErrorKind::Truncated, at))
        } else {
            Ok(Event::NeedData)
        }
    }

    fn next_head(&mut self, mut leading: usize) -> Result<Event, ParseError> {
        // RFC 9112 §2.2: ignore empty lines before a request line (a bounded number).
        if self.scan.is_fresh() {
            loop {
                match &self.buf[self.pos..] {
                    [b'\r', b'\n', ..] if self.kind == Kind::Request => {
                        leading += 1;
                        if leading > self.limits.max_leading_empty_lines {
                            return Err(self.fail(ErrorKind::TooManyEmptyLines, self.pos));
                        }
                        self.pos += 2;
                        self.state = State::Head { leading };
                    }
                    [] | [b'\r'] if self.eof => {
                        if self.buffered() == 0 {
                            self.state = State::Closed;
                            return Ok(Event::Closed);
                        }
                        let at = self.buf.len();
                        return Err(self.fail(ErrorKind::Truncated, at));
                    }
                    [] | [b'\r'] => return Ok(Event::NeedData),
                    _ => break,
                }
            }
        }
        let section = match self.kind {
            Kind::Request => Section::Request,
            Kind::Response => Section::Response,
        };
        let Some(end) = self.scan_section(section)? else {
            return if self.eof {
                let at = self.buf.len();
                Err(self.fail(ErrorKind::Truncated, at))
            } else {
                Ok(Event::NeedData)
            };
        };
        let start = self.pos;
        let headers = self.take_headers(end);
        let known = std::mem::take(&mut self.scan.known);
        // The scan only reports a complete head after its start line, so `None` cannot happen;
        // it is answered like a bad start line rather than with a panic.
        let ev = match self.scan.start.take() {
            Some(StartLine::Request {
                method,
                target,
                version,
            }) => self.request_head(method, target, version, headers, &known),
            Some(StartLine::Response {
                version,
                status,
                reason,
            }) => self.response_head(version, status, reason, headers, &known),
            None => Err(ErrorKind::BadStartLine),
        }
        .map_err(|kind| self.fail(kind, start))?;
        self.scan.reset();
        self.pos = end;
        Ok(ev)
    }

    /// Runs the head scan over the buffered bytes of the current section.
    fn scan_section(&mut self, section: Section) -> Result<Option<usize>, ParseError> {
        let start = self.pos;
        match self.scan.scan(&self.buf[start..], section, &self.limits) {
            Ok(end) => Ok(end.map(|e| start + e)),
            Err((kind, at)) => Err(self.fail(kind, start + at)),
        }
    }

    /// The fields the scan found, in a header list that owns a copy of the section's bytes.
    fn take_headers(&mut self, end: usize) -> Headers {
        let fields = &self.scan.fields;
        let mut headers = Headers::from_arena(self.buf[self.pos..end].to_vec(), fields.len());
        for &[ns, ne, vs, ve] in fields {
            headers.push_span(ns as usize..ne as usize, vs as usize..ve as usize);
        }
        headers
    }

    fn request_head(
        &mut self,
        method: Method,
        target: Target,
        version: Version,
        headers: Headers,
        known: &Known,
    ) -> Result<Event, ErrorKind> {
        // Host (RFC 9112 §3.2): exactly one, valid, and required from 1.1 clients.
        match known.host {
            2.. => return Err(ErrorKind::DuplicateHost),
            1 if !valid_host(headers.get("host").unwrap_or_default()) => {
                return Err(ErrorKind::BadHost)
            }
            0 if version.at_least_11() => return Err(ErrorKind::MissingHost),
            _ => {}
        }
        let framing = request_framing(&headers, known, version, &self.limits)?;
        let upgrade = method == Method::Connect
            || (known.connection && known.upgrade && headers.has_token("connection", "upgrade"));
        self.start_body(framing, upgrade);
        Ok(Event::Request(RequestHead {
            method,
            target,
            version,
            headers,
        }))
    }

    fn response_head(
        &mut self,
        version: Version,
        status: Status,
        reason: String,
        headers: Headers,
        known: &Known,
    ) -> Result<Event, ErrorKind> {
        let method = if status.is_informational() && status != Status::SWITCHING_PROTOCOLS {
            self.methods.front().cloned().unwrap_or(Method::Get)
        } else {
            self.methods.pop_front().unwrap_or(Method::Get)
        };
        let is_connect_ok = method == Method::Connect && (200..300).contains(&status.0);
        let head = ResponseHead {
            version,
            status,
            reason,
            headers,
        };
        if status == Status::SWITCHING_PROTOCOLS || is_connect_ok {
            self.state = State::Upgraded;
            return Ok(Event::Response(head));
        }
        let framing =
            if status.is_informational() || status.forbids_body() || method == Method::Head {
                Framing::Empty
            } else {
                response_framing(&head.headers, known)?
            };
        if status.is_informational() {
            // The final response for the same request follows.
            self.state = State::Head { leading: 0 };
        } else {
            self.start_body(framing, false);
        }
        Ok(Event::Response(head))
    }

    fn start_body(&mut self, framing: Framing, switch_after: bool) {
        self.body_seen = 0;
        self.switch_after = switch_after;
        self.state = match framing {
            Framing::Empty | Framing::Length(0) => State::EndPending,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::ChunkSize,
            Framing::CloseDelimited => State::CloseDelimited,
        };
    }

    fn next_chunk_size(&mut self) -> Result<Event, ParseError> {
        let start = self.pos;
        let limit = self.limits.max_chunk_line;
        let Some(rel) = find_byte(b'\n', &self.buf[start..]) else {
            if self.buffered() > limit + 1 {
                return Err(self.fail(ErrorKind::ChunkLineTooLong, start + limit + 1));
            }
            return self.need_data_in_body();
        };
        let lf = start + rel;
        if rel > limit + 1 {
            return Err(self.fail(ErrorKind::ChunkLineTooLong, start + limit + 1));
        }
        if rel == 0 || self.buf[lf - 1] != b'\r' {
            return Err(self.fail(ErrorKind::BareLf, lf));
        }
        let line = &self.buf[start..lf - 1];
        let size = parse_chunk_line(line).map_err(|(k, at)| self.fail(k, start + at))?;
        self.body_seen = self.body_seen.saturating_add(size);
        if self.kind == Kind::Request && self.body_seen > self.limits.max_body {
            return Err(self.fail(ErrorKind::BodyTooLarge, start));
        }
        self.pos = lf + 1;
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData { remaining: size }
        };
        self.next_event()
    }

    fn next_trailers(&mut self) -> Result<Event, ParseError> {
        let Some(end) = self.scan_section(Section::Trailers)? else {
            return self.need_data_in_body();
        };
        self.trailers = self.take_headers(end);
        self.scan.reset();
        self.pos = end;
        self.state = State::EndPending;
        self.next_event()
    }
}

/// The transfer codings and the Content-Length, read only when the head has those fields.
type FramingFields = (Option<Vec<String>>, Option<u64>);

fn framing_fields(h: &Headers, known: &Known) -> Result<FramingFields, ErrorKind> {
    let te = if known.transfer_encoding {
        transfer_codings(h)?
    } else {
        None
    };
    let cl = if known.content_length {
        content_length(h)?
    } else {
        None
    };
    Ok((te, cl))
}

/// RFC 9112 §6.3 for requests, strict: see the module docs.
fn request_framing(
    h: &Headers,
    known: &Known,
    version: Version,
    limits: &Limits,
) -> Result<Framing, ErrorKind> {
    match framing_fields(h, known)? {
        (Some(_), Some(_)) => Err(ErrorKind::TransferEncodingWithContentLength),
        (Some(_), None) if !version.at_least_11() => Err(ErrorKind::TransferEncodingInHttp10),
        (Some(codings), None) => {
            if codings.last().map(|c| c.eq_ignore_ascii_case("chunked")) != Some(true) {
                Err(ErrorKind::BadTransferEncoding)
            } else if codings.len() > 1 {
                Err(ErrorKind::UnknownTransferCoding)
            } else {
                Ok(Framing::Chunked)
            }
        }
        (None, Some(n)) if n > limits.max_body => Err(ErrorKind::BodyTooLarge),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::Empty),
    }
}

/// RFC 9112 §6.3 for responses (status and request method already considered). Stricter than
/// the RFC where a proxy must be: TE with CL, or a TE not ending in `chunked`, is refused (502).
fn response_framing(h: &Headers, known: &Known) -> Result<Framing, ErrorKind> {
    match framing_fields(h, known)? {
        (Some(_), Some(_)) => Err(ErrorKind::TransferEncodingWithContentLength),
        (Some(codings), None) => {
            if codings.last().map(|c| c.eq_ignore_ascii_case("chunked")) == Some(true) {
                Ok(Framing::Chunked)
            } else {
                Err(ErrorKind::BadTransferEncoding)
            }
        }
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::CloseDelimited),
    }
}

/// The list of transfer codings across all Transfer-Encoding fields, or `None` if absent.
/// `chunked` more than once, or anywhere but last, is an error; every coding must be a token.
fn transfer_codings(h: &Headers) -> Result<Option<Vec<String>>, ErrorKind> {
    let mut codings: Vec<String> = Vec::new();
    let mut any = false;
    for v in h.get_all("transfer-encoding") {
        any = true;
        for item in v.split(|&b| b == b',') {
            let item = trim_ows(item);
            // Parameters (`;q=...`) are not allowed on transfer codings we understand; keep the
            // name only to decide, the whole coding is unknown anyway.
            let name = trim_ows(item.split(|&b| b == b';').next().unwrap_or(&[]));
            if !is_token(name) {
                return Err(ErrorKind::BadTransferEncoding);
            }
            codings.push(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    if !any {
        return Ok(None);
    }
    let chunked = codings.iter().filter(|c| *c == "chunked").count();
    if chunked > 1 || (chunked == 1 && codings.last().map(String::as_str) != Some("chunked")) {
        return Err(ErrorKind::BadTransferEncoding);
    }
    Ok(Some(codings))
}

/// The Content-Length, if present. One field holding 1*DIGIT that fits in u63; anything else
/// (lists, duplicates even if equal, signs, spaces) is refused.
fn content_length(h: &Headers) -> Result<Option<u64>, ErrorKind> {
    let mut values = h.get_all("content-length");
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ErrorKind::DuplicateContentLength);
    }
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(if v.contains(&b',') {
            ErrorKind::DuplicateContentLength
        } else {
            ErrorKind::BadContentLength
        });
    }
    Ok(Some(
        v.iter().fold(0u64, |a, &d| a * 10 + (d - b'0') as u64),
    ))
}

/// `chunk-size [ chunk-ext ]` without the CRLF. Returns the size.
fn parse_chunk_line(line: &[u8]) -> Result<u64, (ErrorKind, usize)> {
    let digits = line.iter().take_while(|&&b| hex_val(b).is_some()).count();
    if digits == 0 {
        return Err((ErrorKind::BadChunkSize, 0));
    }
    let significant = line[..digits].iter().skip_while(|&&b| b == b'0').count();
    if significant > 15 {
        return Err((ErrorKind::BadChunkSize, 0));
    }
    let size = line[..digits]
        .iter()
        .fold(0u64, |a, &b| a << 4 | hex_val(b).unwrap_or(0) as u64);
    let mut i = digits;
    // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    loop {
        while matches!(line.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match line.get(i) {
            None => {
                // Trailing whitespace after the size with no extension is not BWS before ';'.
                if i > digits && line[digits..].iter().all(|&b| b == b' ' || b == b'\t') {
                    return Err((ErrorKind::BadChunkSize, digits));
                }
                return Ok(size);
            }
            Some(b';') => i += 1,
            Some(_) => {
                return Err((
                    if i == digits {
                        ErrorKind::BadChunkSize
                    } else {
                        ErrorKind::BadChunkExtension
                    },
                    i,
                ))
            }
        }
        while matches!(line.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let name_len = line[i..].iter().take_while(|&&b| tchar(b)).count();
        if name_len == 0 {
            return Err((ErrorKind::BadChunkExtension, i));
        }
        i += name_len;
        let mut j = i;
        while matches!(line.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if line.get(j) != Some(&b'=') {
            continue;
        }
        i = j + 1;
        while matches!(line.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if line.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match line.get(i) {
                    None => return Err((ErrorKind::BadChunkExtension, i)),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        match line.get(i + 1) {
                            Some(&b) if value_byte(b) => i += 2,
                            _ => return Err((ErrorKind::BadChunkExtension, i)),
                        };
                    }
                    Some(&b) if value_byte(b) => i += 1,
                    Some(_) => return Err((ErrorKind::BadChunkExtension, i)),
                }
            }
        } else {
            let v = line[i..].iter().take_while(|&&b| tchar(b)).count();
            if v == 0 {
                return Err((ErrorKind::BadChunkExtension, i));
            }
            i += v;
        }
    }
}

/// `Host` = uri-host [ ":" port ] (RFC 9110 §7.2). Empty is allowed (RFC 9112 §3.2).
pub fn valid_host(h: &[u8]) -> bool {
    if h.is_empty() {
        return true;
    }
    let (host, port) = if h[0] == b'[' {
        let Some(close) = find_byte(b']', h) else {
            return false;
        };
        let inner = &h[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match &h[close + 1..] {
            [] => (&h[..=close], None),
            [b':', port @ ..] => (&h[..=close], Some(port)),
            _ => return false,
        }
    } else {
        match find_byte(b':', h) {
            Some(c) => (&h[..c], Some(&h[c + 1..])),
            None => (h, None),
        }
    };
    if let Some(port) = port {
        if port.len() > 5
            || !port.iter().all(u8::is_ascii_digit)
            || port.iter().fold(0u32, |a, &d| a * 10 + (d - b'0') as u32) > 65535
        {
            return false;
        }
    }
    if host.first() == Some(&b'[') {
        return true;
    }
    // reg-name: unreserved / pct-encoded / sub-delims; at least one character besides dots.
    let ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b));
    ok && host.iter().any(|&b| b != b'.')
}

/// Position of the first `needle` in `hay`, eight bytes at a time (no `unsafe`, no memchr crate).
#[inline]
pub fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(needle as u64);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ pattern;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_position() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        for needle in 0..=255u8 {
            for start in 0..20 {
                assert_eq!(
                    find_byte(needle, &hay[start..]),
                    hay[start..].iter().position(|&b| b == needle)
                );
            }
        }
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(parse_chunk_line(b"5"), Ok(5));
        assert_eq!(parse_chunk_line(b"000"), Ok(0));
        assert_eq!(parse_chunk_line(b"a"), Ok(10));
        assert_eq!(parse_chunk_line(b"5;name=value"), Ok(5));
        assert_eq!(parse_chunk_line(b"5;a;b=\"x;y\""), Ok(5));
        assert_eq!(parse_chunk_line(b"5 ;a"), Ok(5));
        for bad in [
            &b"0x5"[..],
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"5_0",
            b"",
            b"1x",
            b"5;",
            b"5;a=\"x",
            b"fffffffffffffffff",
        ] {
            assert!(
                parse_chunk_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_chunk_line(b"0000000000000000000001"),
            Ok(1),
            "leading zeros are not overflow"
        );
    }

    #[test]
    fn hosts() {
        for ok in [
            &b"a"[..],
            b"Example.COM.:8080",
            b"[::1]:80",
            b"127.0.0.1",
            b"a:",
        ] {
            assert!(valid_host(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"a:99999",
            b"a:1:2",
            b".",
            b"[::1",
            b"[zz]",
        ] {
            assert!(!valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
