//! The incremental HTTP/1.1 parser, for requests (server side) and responses (client side).
//!
//! # Contract
//! * [`Parser::feed`] only buffers; [`Parser::feed_eof`] records that the peer closed.
//! * [`Parser::next_event`] returns one [`Event`] at a time, [`Event::NeedData`] when it needs more
//!   bytes, or the [`ParseError`] that ends the stream (returned again on every later call).
//! * [`Parser::next_borrowed`] returns the same events read in place ([`EventRef`]: heads, body
//!   bytes and trailers borrow the buffer, nothing is allocated); `next_event` is its owned copy.
//! * **Split invariance**: for any input, the sequence of events (with adjacent `Data` events
//!   merged) and the final error are the same however the bytes were split across `feed` calls.
//!   This holds because every decision is a function of a prefix of the stream: a head line is
//!   judged only once its LF has arrived, and the size limits are defined by byte positions, not
//!   by what happened to be buffered (see the `head` module). `tests/split_invariance.rs` checks it
//!   with proptest, the fuzz target with the fuzzer's splits.
//! * Request framing follows RFC 9112 §6 strictly: Transfer-Encoding with Content-Length, several
//!   Content-Length fields, a malformed Content-Length, a Transfer-Encoding that does not end in
//!   `chunked`, obs-fold, whitespace before a colon and bare CR/LF are all errors: ambiguous
//!   framing is refused, never repaired (RFC 9112 §6.3, §11.2).
//! * After a request that asks to switch protocols (CONNECT, or `Upgrade` listed in
//!   `Connection`) ends, the parser returns [`Event::Paused`] until the owner calls
//!   [`Parser::resume`] (the upgrade was declined) or takes the rest with [`Parser::take_rest`].
//!   After a 101 response, or a 2xx response to CONNECT, it returns [`Event::Upgrade`] forever.

use super::chars::{hex_val, is_token, reg_name_byte, tchar, trim_ows, value_byte};
use super::head::{run_len, HeadScan, Known, Section, StartLine};
use super::swar;
use super::{
    FieldsRef, Headers, Limits, Method, RequestHead, ResponseHead, Status, TargetRef, Version,
};
use std::collections::VecDeque;
use std::ops::Range;

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

/// One step of the parse read in place: heads, body bytes and trailers borrow the parser's
/// buffer, so [`Parser::next_borrowed`] allocates nothing for a message (an extension method
/// aside). The borrow ends before the next call; [`EventRef::to_event`] makes the owned copy,
/// which is what [`Parser::next_event`] returns.
#[derive(Clone, Debug)]
pub enum EventRef<'a> {
    Request(RequestRef<'a>),
    Response(ResponseRef<'a>),
    Data(&'a [u8]),
    End { trailers: FieldsRef<'a> },
    NeedData,
    Paused,
    Upgrade,
    Closed,
}

/// A request head read in place.
#[derive(Clone, Debug)]
pub struct RequestRef<'a> {
    pub method: Method,
    pub target: TargetRef<'a>,
    pub version: Version,
    pub headers: FieldsRef<'a>,
}

/// A response head read in place. The reason phrase is bytes: obs-text is legal in it.
#[derive(Clone, Debug)]
pub struct ResponseRef<'a> {
    pub version: Version,
    pub status: Status,
    pub reason: &'a [u8],
    pub headers: FieldsRef<'a>,
}

impl RequestRef<'_> {
    /// The owned head: three allocations (target text, header bytes, field spans).
    pub fn to_head(&self) -> RequestHead {
        RequestHead {
            method: self.method.clone(),
            target: self.target.to_target(),
            version: self.version,
            headers: self.headers.to_headers(),
        }
    }
}

impl ResponseRef<'_> {
    /// The owned head (a reason that is not UTF-8 is kept lossily).
    pub fn to_head(&self) -> ResponseHead {
        ResponseHead {
            version: self.version,
            status: self.status,
            reason: String::from_utf8_lossy(self.reason).into_owned().into(),
            headers: self.headers.to_headers(),
        }
    }
}

impl EventRef<'_> {
    /// The owned event with the same content.
    pub fn to_event(&self) -> Event {
        match self {
            EventRef::Request(r) => Event::Request(r.to_head()),
            EventRef::Response(r) => Event::Response(r.to_head()),
            EventRef::Data(d) => Event::Data(d.to_vec()),
            EventRef::End { trailers } => Event::End {
                trailers: trailers.to_headers(),
            },
            EventRef::NeedData => Event::NeedData,
            EventRef::Paused => Event::Paused,
            EventRef::Upgrade => Event::Upgrade,
            EventRef::Closed => Event::Closed,
        }
    }
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
    /// Emit End (with the trailers in `Parser::trailers`), then read the next head, or pause
    /// or upgrade when the message switches protocols.
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
    /// Where in `buf` the trailer section just read lies (its fields are in `scan`).
    trailers: Option<Range<usize>>,
    /// The scan holds a head or trailer section already returned; it is reset on the next call,
    /// not at once, because the returned event borrows its fields.
    scan_spent: bool,
    /// Body bytes a chunked message announced so far (against the request body limit).
    body_seen: u64,
    /// For responses: the methods of requests still waiting for their final response.
    methods: VecDeque<Method>,
    /// The message being read switches protocols once it ends.
    switch_after: bool,
    /// Progress through the head or trailer section being read.
    scan: HeadScan,
    /// The method of a request head that failed after its request line was read.
    failed_method: Option<Method>,
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
            trailers: None,
            scan_spent: false,
            body_seen: 0,
            methods: VecDeque::new(),
            switch_after: false,
            scan: HeadScan::default(),
            failed_method: None,
        }
    }
    pub fn request(limits: Limits) -> Self {
        Self::new(Kind::Request, limits)
    }
    pub fn response(limits: Limits) -> Self {
        Self::new(Kind::Response, limits)
    }

    /// Buffers bytes. Never parses.
    #[inline]
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
    /// For a response parser: the method of the request whose response comes next, if one
    /// was announced.
    pub fn pending_method(&self) -> Option<Method> {
        self.methods.front().cloned()
    }
    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// True between messages with nothing buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { .. }) && self.buffered() == 0
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
    /// After a request head failed (a framing error, a field too many), the method of its
    /// request line if that line had been read: an error answer to a HEAD carries no body.
    pub fn failed_method(&self) -> Option<&Method> {
        self.failed_method.as_ref()
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
        self.next_borrowed().map(|e| e.to_event())
    }

    /// [`Parser::next_event`] read in place: the same events, borrowed from the buffer.
    #[inline]
    pub fn next_borrowed(&mut self) -> Result<EventRef<'_>, ParseError> {
        if self.scan_spent {
            self.scan.reset();
            self.scan_spent = false;
        }
        // The two steps every Content-Length message takes after its head are done here, where
        // they inline into the caller, rather than through `step`'s dispatch and frame: about
        // 2 ns of a small POST's 83 in the parser bench.
        match self.state {
            State::Length { remaining } if self.buffered() > 0 => {
                Ok(EventRef::Data(self.length_data(remaining)))
            }
            State::EndPending if !self.switch_after => {
                self.state = State::Head { leading: 0 };
                Ok(EventRef::End {
                    trailers: self.take_trailers(),
                })
            }
            _ => self.step(),
        }
    }

    fn step(&mut self) -> Result<EventRef<'_>, ParseError> {
        match self.state.clone() {
            State::Failed(e) => Err(e),
            State::Closed => Ok(EventRef::Closed),
            State::Upgraded => Ok(EventRef::Upgrade),
            State::Paused => Ok(EventRef::Paused),
            State::Head { leading } => self.next_head(leading),
            State::Length { remaining } => {
                if self.buffered() == 0 {
                    return self.need_data_in_body();
                }
                Ok(EventRef::Data(self.length_data(remaining)))
            }
            State::CloseDelimited => {
                if self.buffered() > 0 {
                    let data = self.pos..self.buf.len();
                    self.pos = self.buf.len();
                    Ok(EventRef::Data(&self.buf[data]))
                } else if self.eof {
                    self.state = State::Closed;
                    Ok(EventRef::End {
                        trailers: FieldsRef::EMPTY,
                    })
                } else {
                    Ok(EventRef::NeedData)
                }
            }
            State::ChunkSize => self.next_chunk_size(),
            State::ChunkData { remaining } => {
                if self.buffered() == 0 {
                    return self.need_data_in_body();
                }
                let (data, left) = self.take_up_to(remaining);
                self.state = if left == 0 {
                    State::ChunkDataEnd
                } else {
                    State::ChunkData { remaining: left }
                };
                Ok(EventRef::Data(&self.buf[data]))
            }
            State::ChunkDataEnd => {
                let avail = &self.buf[self.pos..];
                match avail {
                    [] | [b'\r'] => self.need_data_in_body(),
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        self.state = State::ChunkSize;
                        self.step()
                    }
                    [b'\r', _, ..] => Err(self.fail(ErrorKind::BadChunkTerminator, self.pos + 1)),
                    _ => Err(self.fail(ErrorKind::BadChunkTerminator, self.pos)),
                }
            }
            State::Trailers => self.next_trailers(),
            State::EndPending => {
                self.state = if self.switch_after {
                    self.switch_after = false;
                    match self.kind {
                        Kind::Request => State::Paused,
                        Kind::Response => State::Upgraded,
                    }
                } else {
                    State::Head { leading: 0 }
                };
                Ok(EventRef::End {
                    trailers: self.take_trailers(),
                })
            }
        }
    }

    /// In `State::Length` with bytes buffered: consumes up to `remaining` of them.
    #[inline]
    fn length_data(&mut self, remaining: u64) -> &[u8] {
        let (data, left) = self.take_up_to(remaining);
        self.state = if left == 0 {
            State::EndPending
        } else {
            State::Length { remaining: left }
        };
        &self.buf[data]
    }

    /// The trailer section that ends the current message, if it had one.
    #[inline]
    fn take_trailers(&mut self) -> FieldsRef<'_> {
        match self.trailers.take() {
            Some(section) => FieldsRef::new(&self.buf[section], &self.scan.fields),
            None => FieldsRef::EMPTY,
        }
    }

    /// Consumes up to `remaining` buffered body bytes: where they are and how many remain
    /// after them.
    #[inline]
    fn take_up_to(&mut self, remaining: u64) -> (Range<usize>, u64) {
        let n = (self.buffered() as u64).min(remaining) as usize;
        let data = self.pos..self.pos + n;
        self.pos += n;
        (data, remaining - n as u64)
    }

    fn need_data_in_body(&mut self) -> Result<EventRef<'static>, ParseError> {
        if self.eof {
            let at = self.buf.len();
            Err(self.fail(ErrorKind::Truncated, at))
        } else {
            Ok(EventRef::NeedData)
        }
    }

    fn next_head(&mut self, mut leading: usize) -> Result<EventRef<'_>, ParseError> {
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
                            return Ok(EventRef::Closed);
                        }
                        let at = self.buf.len();
                        return Err(self.fail(ErrorKind::Truncated, at));
                    }
                    [] | [b'\r'] => return Ok(EventRef::NeedData),
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
                Ok(EventRef::NeedData)
            };
        };
        let start = self.pos;
        // The scan only reports a complete head after its start line, so `None` cannot happen;
        // it is answered like a bad start line rather than with a panic.
        let Some(line) = self.scan.start.take() else {
            return Err(self.fail(ErrorKind::BadStartLine, start));
        };
        let decided = match &line {
            StartLine::Request {
                method, version, ..
            } => self.request_body(method, *version, start..end),
            StartLine::Response { status, .. } => self.response_body(*status, start..end),
        };
        if let Err(kind) = decided {
            if let StartLine::Request { method, .. } = line {
                self.failed_method = Some(method);
            }
            return Err(self.fail(kind, start));
        }
        self.scan_spent = true;
        self.pos = end;
        let head = &self.buf[start..end];
        let headers = FieldsRef::new(head, &self.scan.fields);
        Ok(match line {
            StartLine::Request {
                method,
                target,
                version,
            } => EventRef::Request(RequestRef {
                method,
                // The scan checked that the target is visible ASCII.
                target: target.map_raw(|r| std::str::from_utf8(&head[r]).unwrap_or_default()),
                version,
                headers,
            }),
            StartLine::Response {
                version,
                status,
                reason,
            } => EventRef::Response(ResponseRef {
                version,
                status,
                reason: &head[reason],
                headers,
            }),
        })
    }

    /// Runs the head scan over the buffered bytes of the current section.
    fn scan_section(&mut self, section: Section) -> Result<Option<usize>, ParseError> {
        let start = self.pos;
        match self.scan.scan(&self.buf[start..], section, &self.limits) {
            Ok(end) => Ok(end.map(|e| start + e)),
            Err((kind, at)) => {
                if let Some(StartLine::Request { method, .. }) = &self.scan.start {
                    self.failed_method = Some(method.clone());
                }
                Err(self.fail(kind, start + at))
            }
        }
    }

    /// Judges a complete request head in `buf[head]` and sets up the reading of its body.
    fn request_body(
        &mut self,
        method: &Method,
        version: Version,
        head: Range<usize>,
    ) -> Result<(), ErrorKind> {
        let fields = FieldsRef::new(&self.buf[head], &self.scan.fields);
        let known = &self.scan.known;
        // Host (RFC 9112 §3.2): exactly one, valid, and required from 1.1 clients.
        match known.host {
            2.. => return Err(ErrorKind::DuplicateHost),
            1 if !known.host_valid => return Err(ErrorKind::BadHost),
            0 if version.at_least_11() => return Err(ErrorKind::MissingHost),
            _ => {}
        }
        let framing = request_framing(fields, known, version, &self.limits)?;
        let upgrade = *method == Method::Connect
            || (known.connection && known.upgrade && fields.has_token("connection", "upgrade"));
        self.start_body(framing, upgrade);
        Ok(())
    }

    /// Judges a complete response head in `buf[head]`: pairs it with its request's method and
    /// sets up the reading of its body, or the switch of protocols.
    fn response_body(&mut self, status: Status, head: Range<usize>) -> Result<(), ErrorKind> {
        let method = if status.is_informational() && status != Status::SWITCHING_PROTOCOLS {
            self.methods.front().cloned().unwrap_or(Method::Get)
        } else {
            self.methods.pop_front().unwrap_or(Method::Get)
        };
        let is_connect_ok = method == Method::Connect && (200..300).contains(&status.0);
        if status == Status::SWITCHING_PROTOCOLS || is_connect_ok {
            self.state = State::Upgraded;
            return Ok(());
        }
        let framing =
            if status.is_informational() || status.forbids_body() || method == Method::Head {
                Framing::Empty
            } else {
                let fields = FieldsRef::new(&self.buf[head], &self.scan.fields);
                response_framing(fields, &self.scan.known)?
            };
        if status.is_informational() {
            // The final response for the same request follows.
            self.state = State::Head { leading: 0 };
        } else {
            self.start_body(framing, false);
        }
        Ok(())
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

    fn next_chunk_size(&mut self) -> Result<EventRef<'_>, ParseError> {
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
        self.step()
    }

    fn next_trailers(&mut self) -> Result<EventRef<'_>, ParseError> {
        let Some(end) = self.scan_section(Section::Trailers)? else {
            return self.need_data_in_body();
        };
        self.trailers = Some(self.pos..end);
        self.scan_spent = true;
        self.pos = end;
        self.state = State::EndPending;
        self.step()
    }
}

/// What the Transfer-Encoding fields say: how many codings they list, and whether the last
/// is `chunked` (the only place `chunked` may be).
struct Codings {
    count: usize,
    chunked_last: bool,
}

/// The transfer codings and the Content-Length, read only when the head has those fields.
type FramingFields = (Option<Codings>, Option<u64>);

// Always inlined: LLVM kept it a call, and this is on every head's path (see `head::first_control_from`).
#[inline(always)]
fn framing_fields(h: FieldsRef<'_>, known: &Known) -> Result<FramingFields, ErrorKind> {
    let te = if known.transfer_encoding {
        transfer_codings(h)?
    } else {
        None
    };
    let cl = match known.content_length {
        0 => None,
        1 => Some(
            known
                .first_content_length
                .unwrap_or(Err(ErrorKind::BadContentLength))?,
        ),
        _ => return Err(ErrorKind::DuplicateContentLength),
    };
    Ok((te, cl))
}

/// RFC 9112 §6.3 for requests, strict: see the module docs.
fn request_framing(
    h: FieldsRef<'_>,
    known: &Known,
    version: Version,
    limits: &Limits,
) -> Result<Framing, ErrorKind> {
    match framing_fields(h, known)? {
        (Some(_), Some(_)) => Err(ErrorKind::TransferEncodingWithContentLength),
        (Some(_), None) if !version.at_least_11() => Err(ErrorKind::TransferEncodingInHttp10),
        (Some(codings), None) => {
            if !codings.chunked_last {
                Err(ErrorKind::BadTransferEncoding)
            } else if codings.count > 1 {
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
fn response_framing(h: FieldsRef<'_>, known: &Known) -> Result<Framing, ErrorKind> {
    match framing_fields(h, known)? {
        (Some(_), Some(_)) => Err(ErrorKind::TransferEncodingWithContentLength),
        (Some(codings), None) => {
            if codings.chunked_last {
                Ok(Framing::Chunked)
            } else {
                Err(ErrorKind::BadTransferEncoding)
            }
        }
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::CloseDelimited),
    }
}

/// The transfer codings across all Transfer-Encoding fields, or `None` if absent. `chunked`
/// more than once, or anywhere but last, is an error; every coding must be a token.
fn transfer_codings(h: FieldsRef<'_>) -> Result<Option<Codings>, ErrorKind> {
    let mut count = 0;
    let mut chunked = 0;
    let mut chunked_last = false;
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
            count += 1;
            chunked_last = name.eq_ignore_ascii_case(b"chunked");
            chunked += chunked_last as usize;
        }
    }
    if !any {
        return Ok(None);
    }
    if chunked > 1 || (chunked == 1 && !chunked_last) {
        return Err(ErrorKind::BadTransferEncoding);
    }
    Ok(Some(Codings {
        count,
        chunked_last,
    }))
}

/// The value of the one Content-Length field: 1*DIGIT that fits in u63; anything else (lists,
/// signs, spaces) is refused, as are duplicates even if equal (see [`framing_fields`]).
#[inline]
pub(super) fn content_length(v: &[u8]) -> Result<u64, ErrorKind> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(if v.contains(&b',') {
            ErrorKind::DuplicateContentLength
        } else {
            ErrorKind::BadContentLength
        });
    }
    Ok(v.iter().fold(0u64, |a, &d| a * 10 + (d - b'0') as u64))
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
///
/// A reg-name or IPv4 address (a reg-name's bytes) is walked as one run that stops at the
/// port's colon, rather than searched for the colon and then checked byte by byte: one pass
/// over the host instead of two.
#[inline]
pub fn valid_host(h: &[u8]) -> bool {
    let n = run_len(h, reg_name_byte);
    let rest = if n > 0 {
        // A reg-name needs one character besides dots.
        if h[0] == b'.' && h[..n].iter().all(|&b| b == b'.') {
            return false;
        }
        &h[n..]
    } else {
        match h {
            [] => return true,
            [b'[', inner @ ..] => {
                let Some(close) = find_byte(b']', inner) else {
                    return false;
                };
                let (addr, rest) = (&inner[..close], &inner[close + 1..]);
                if addr.is_empty()
                    || !addr
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                rest
            }
            _ => return false,
        }
    };
    match rest {
        [] => true,
        [b':', port @ ..] => valid_port(port),
        _ => false,
    }
}

/// `port = *DIGIT` (RFC 3986 §3.2.3) no greater than 65535. Five digits are compared with
/// "65535" as text rather than parsed: a multiply chain per digit showed in the parser bench.
#[inline]
fn valid_port(p: &[u8]) -> bool {
    let digits = p.iter().fold(true, |ok, &d| ok & d.is_ascii_digit());
    digits && (p.len() < 5 || (p.len() == 5 && p <= &b"65535"[..]))
}

/// Position of the first `needle` in `hay`, eight bytes at a time (no `unsafe`, no memchr crate).
#[inline]
pub fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        if let Some(p) = swar::lowest(swar::equal(swar::word(chunk), needle)) {
            return Some(base + p);
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
        // Every length around the word size, the needle at every place or absent, once or
        // twice: the first of them, whether in a whole word or in the tail.
        for len in 0..40usize {
            for at in 0..=len {
                for also in [None, Some(len.saturating_sub(1)), Some(at + 1)] {
                    let mut hay = vec![b'a'; len];
                    for p in [Some(at), also].into_iter().flatten().filter(|&p| p < len) {
                        hay[p] = b':';
                    }
                    let expect = hay.iter().position(|&b| b == b':');
                    assert_eq!(find_byte(b':', &hay), expect, "{len} {at} {also:?}");
                }
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
    fn ports_are_up_to_65535_with_any_leading_zeros() {
        for n in 0..=99_999u32 {
            for text in [n.to_string(), format!("{n:05}"), format!("{n:06}")] {
                let expected = n <= 65535 && text.len() <= 5;
                assert_eq!(valid_port(text.as_bytes()), expected, "{text}");
            }
        }
        assert!(valid_port(b""), "an empty port is allowed");
        for bad in [&b"8a"[..], b" 80", b"+80", b"-1", b"8 0"] {
            assert!(!valid_port(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// The grammar read the plain way: split at the first colon outside an IPv6 literal, then
    /// judge each part. `valid_host` must agree on every string of up to five bytes from an
    /// alphabet with each kind of byte the grammar treats differently.
    #[test]
    fn valid_host_agrees_with_the_grammar_read_plainly() {
        fn plain(h: &[u8]) -> bool {
            if h.is_empty() {
                return true;
            }
            let (host, port) = if h[0] == b'[' {
                let Some(close) = h.iter().position(|&b| b == b']') else {
                    return false;
                };
                match &h[close + 1..] {
                    [] => (&h[..=close], None),
                    [b':', port @ ..] => (&h[..=close], Some(port)),
                    _ => return false,
                }
            } else {
                match h.iter().position(|&b| b == b':') {
                    Some(c) => (&h[..c], Some(&h[c + 1..])),
                    None => (h, None),
                }
            };
            let port_ok = port.is_none_or(|p| {
                p.iter().all(u8::is_ascii_digit)
                    && p.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')) <= 65535
            });
            let host_ok = if let [b'[', inner @ .., b']'] = host {
                !inner.is_empty()
                    && inner
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            } else {
                host.iter().all(|&b| reg_name_byte(b)) && host.iter().any(|&b| b != b'.')
            };
            port_ok && host_ok
        }
        let alphabet = b"a.:[]1 %/";
        let mut checked = 0;
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut h = Vec::new();
                for _ in 0..len {
                    h.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                assert_eq!(
                    valid_host(&h),
                    plain(&h),
                    "{:?}",
                    String::from_utf8_lossy(&h)
                );
                checked += 1;
            }
        }
        assert!(checked > 60_000);
    }

    #[test]
    fn hosts() {
        for ok in [
            &b"a"[..],
            b"Example.COM.:8080",
            b"[::1]:80",
            b"127.0.0.1",
            b"a:",
            b"",
            b"[::1]",
            b"[::1]:",
            b"x.example:65535",
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
            b"[]",
            b"[::1]x",
            b"[::1]:65536",
            b":80",
            b"a:80a",
            b"a:123456",
            b"..:80",
        ] {
            assert!(!valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
