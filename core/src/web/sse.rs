//! Server-Sent Events (the HTML standard's `text/event-stream`): the server's encoder and the
//! client's incremental parser (the simulated browsers and tests read streams with it).
//!
//! # Writing
//! [`Event`] encodes as `id:`, `event:` and one `data:` line per line of its data, then a
//! blank line. Data may hold any text: CR, LF and CRLF inside it all become line breaks (a
//! reader rebuilds them as LF), so no user text can end an event early or inject a field.
//! [`comment`] is a line a reader ignores: the heartbeat that keeps an idle stream open
//! through proxies.
//!
//! # Reading
//! [`Reader::feed`] takes bytes in any chunking and returns the events completed by them, as
//! the standard's "interpret an event stream" says: lines end in CRLF, LF or CR (a CR at the
//! end of a chunk waits for the next byte); a leading BOM is skipped; `data` lines join with
//! LF; an event with no data is not dispatched; `id` persists as the last event id (and one
//! holding NUL is ignored); `retry` with digits only sets the reconnection time. A line longer
//! than [`MAX_LINE`] is a protocol error: the stream must be dropped.

/// The longest line a [`Reader`] holds.
pub const MAX_LINE: usize = 1 << 20;

/// One event to send or one received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    /// `None`: the default type, `message`.
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    /// Appends the wire form of this event to `out`. `id` and `event` must hold no line break
    /// (they come from the server, not from users); one that does is cut at it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let one_line = |s: &str| s.split(['\r', '\n']).next().unwrap_or("").to_string();
        if let Some(id) = &self.id {
            out.extend_from_slice(format!("id: {}\n", one_line(id)).as_bytes());
        }
        if let Some(ev) = &self.event {
            out.extend_from_slice(format!("event: {}\n", one_line(ev)).as_bytes());
        }
        for line in lines(&self.data) {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// The lines of `s`, split at CRLF, LF or CR (one empty line for empty text).
fn lines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        match rest.find(['\r', '\n']) {
            None => {
                out.push(rest);
                return out;
            }
            Some(i) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
}

/// A comment line (ignored by readers), for heartbeats.
pub fn comment(text: &str, out: &mut Vec<u8>) {
    for line in lines(text) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// A stream that broke the format (a line too long).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError;

/// An incremental event-stream reader.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a following LF belongs to that line end.
    after_cr: bool,
    started: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// The last event id (persists across events, as the standard says).
    pub last_id: Option<String>,
    /// The reconnection time the server asked for, in milliseconds.
    pub retry_ms: Option<u64>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Reads `bytes`; returns the events they completed, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, StreamError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, &mut out);
                }
                _ => {
                    if self.line.len() == MAX_LINE {
                        return Err(StreamError);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        let mut line = String::from_utf8_lossy(line).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    id: self.last_id.clone(),
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            self.data.clear();
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }
}
