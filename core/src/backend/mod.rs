//! The static-file backend as a connection machine ([`BackendConn`]).
//!
//! # Mapping (the seed's, made safe)
//! * `/` and any path ending in `/` → `index.html` in that folder of the **www** root.
//! * A name whose type is HTML (`.html`, `.htm`) → the www root; anything else → the **static**
//!   root: `/css/styles.css` → `static/css/styles.css`, `/favicon.ico` → `static/favicon.ico`.
//! * The query string never takes part in the lookup.
//! * The path is decoded once and normalised ([`crate::http::target::normalize_path`]); a bad
//!   path is a 400. The opened file's real path (symlinks resolved by the driver) must lie
//!   inside its root, or the answer is 403 and no byte of it is sent.
//! * A directory asked for without the final `/` is a 301 to the same path with it (H5).
//!
//! # Methods
//! GET and HEAD. Other methods RFC 9110 defines get 405 with `Allow: GET, HEAD`; extension
//! methods we do not implement get 501.
//!
//! # Responses
//! `ETag` and `Last-Modified` on every file, 304 for a matching `If-None-Match` (or, without
//! it, `If-Modified-Since`), one `Range` as 206 (416 when unsatisfiable, `If-Range` honoured).
//! A file of up to [`BackendConfig::small_file`] bytes is read by the machine and sent with the
//! head in one write, so a disk error there is a clean 500. A larger file goes out whole as a
//! file segment that the driver sends itself (sendfile) behind the head, as nginx sends it, so
//! memory per connection is bounded whatever the file size. A disk error after the head aborts
//! the connection: a short body is never presented as complete.
//!
//! # App mode
//! With [`BackendConfig::app`] set, the connection is the front of a WeApRous app: it answers
//! static assets and public pages alone and hands every other request, body and all, to its
//! node, then carries out the node's reply (a response, the static file, an event stream).
//! [`app`] states the split and the limits.

pub mod app;
pub mod mime;
pub mod node;
pub mod range;

use crate::buggify::Buggify;
use crate::http::serialize::BodyFraming;
use crate::http::server::{Closing, ServerConn, ServerEvent, Timeouts};
use crate::http::target::{normalize_path, CleanPath};
use crate::http::{Limits, Method, RequestHead, ResponseHead, Status};
use crate::node::{
    AccessLog, ConnInput, ConnOutput, Connection, FileHandle, FileMeta, FileOp, FileReply,
    FileSegment, FsError, Now,
};
use app::{AppReply, AppRequest};
use range::RangeAnswer;
use std::collections::VecDeque;
// `core::net` holds address values only (no sockets).
use core::net::{Ipv4Addr, SocketAddr};

/// What a backend serves and how. Roots are absolute, symlink-free paths (drivers canonicalise
/// them at startup) without a trailing `/`.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    pub www_root: String,
    pub static_root: String,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// The transmit low-water mark: the next pipelined request is started only when less than
    /// this waits to be sent. Also caps [`Self::small_file`].
    pub read_chunk: usize,
    /// Files up to this size are read and sent with the head (a disk error is a clean 500);
    /// larger ones go out whole by sendfile behind the head (a disk error aborts). 64 KiB.
    ///
    /// Measured with `bench/load.sh` against nginx in the same run (100 KiB and 1 MiB files,
    /// 50 and 256 connections, 3 rounds): reading the first 64 KiB of a large file before its
    /// head, as this did before, cost 1.06-1.11x nginx's CPU per request with
    /// `Connection: close`; sending it all by sendfile cost 0.88-1.06x. Over keep-alive the
    /// first read was cheaper for 100 KiB (0.68-0.77x against 0.82-0.87x) and dearer for
    /// 1 MiB at 256 connections (1.11x against 1.00x); both stay ahead of nginx there.
    pub small_file: usize,
    /// The `Server` header.
    pub server_name: String,
    /// App mode ([`app`]): which requests go to the node. `None` serves files only, and the
    /// connection never sends its node anything.
    pub app: Option<app::AppRules>,
}

impl BackendConfig {
    pub fn new(www_root: impl Into<String>, static_root: impl Into<String>) -> Self {
        BackendConfig {
            www_root: www_root.into(),
            static_root: static_root.into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            read_chunk: 64 * 1024,
            small_file: 64 * 1024,
            server_name: "weaprous".into(),
            app: None,
        }
    }
}

/// Where the current request is.
#[derive(Debug)]
enum Job {
    None,
    Opening {
        /// The file is under the www root (else the static root).
        in_www: bool,
        clean: CleanPath,
    },
    /// Waiting for the first chunk: the head goes out with it.
    FirstRead {
        meta: FileMeta,
        head: ResponseHead,
        start: u64,
        len: u64,
    },
    /// The rest of the body is a file segment the driver sends directly.
    Sending {
        handle: FileHandle,
    },
    /// App mode: reading a body for the node.
    Gathering {
        body: Vec<u8>,
    },
    /// App mode: the request was handed to the node; its reply has not come.
    AwaitingNode,
    /// App mode: a stream the node feeds is open.
    Streaming,
}

/// One backend connection. See the module docs.
#[derive(Debug)]
pub struct BackendConn {
    cfg: std::sync::Arc<BackendConfig>,
    http: ServerConn,
    job: Job,
    request: Option<RequestHead>,
    /// The far end (handed to an app's node, for rate limits and logs).
    peer: SocketAddr,
    /// The file being served depends on who asks (the node said so): no shared caching, and
    /// revalidation every time.
    private: bool,
    out: VecDeque<ConnOutput<AppRequest>>,
    finished: bool,
    /// Abort was returned (nothing more will be).
    aborted: bool,
    buggify: Buggify,
}

impl BackendConn {
    pub fn new(cfg: std::sync::Arc<BackendConfig>, now: Now) -> Self {
        Self::with_buggify(cfg, now, Buggify::off())
    }
    /// A connection whose rare paths fire under simulation (see [`crate::buggify`]):
    /// `backend.tiny_first_read` reads only a few bytes of a small file before the head, so the
    /// rest follows as a file segment (the path a file that shrank after `stat` takes).
    pub fn with_buggify(cfg: std::sync::Arc<BackendConfig>, now: Now, buggify: Buggify) -> Self {
        let http = ServerConn::new(now, cfg.limits.clone(), cfg.timeouts.clone());
        BackendConn {
            cfg,
            http,
            job: Job::None,
            request: None,
            peer: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            private: false,
            out: VecDeque::new(),
            finished: false,
            aborted: false,
            buggify,
        }
    }

    /// The same connection, knowing its far end's address.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// The rare paths this connection took on purpose (simulation only).
    pub fn buggify(&self) -> &Buggify {
        &self.buggify
    }

    /// Pulls events from the HTTP layer while no file work is pending and the client keeps
    /// up: a pipelined request is not started while a chunk's worth of response still waits,
    /// so a client that pipelines without reading cannot make us buffer without bound.
    fn drive(&mut self, now: Now) {
        while matches!(self.job, Job::None | Job::Gathering { .. })
            && self.http.pending_len() < self.cfg.read_chunk as u64
        {
            let Some(ev) = self.http.poll_event(now) else {
                break;
            };
            match ev {
                ServerEvent::Request(head) => self.on_request(now, head),
                ServerEvent::Body(data) => self.gather(now, &data),
                ServerEvent::BodyEnd => self.body_gathered(),
                ServerEvent::Rejected { status, .. } => {
                    // A body being gathered broke its framing: the connection answered it.
                    if matches!(self.job, Job::Gathering { .. }) {
                        self.job = Job::None;
                        self.request = None;
                    }
                    self.out.push_back(ConnOutput::Log(AccessLog {
                        method: "-".into(),
                        target: "-".into(),
                        status: status.0,
                        bytes: self.http.body_sent(),
                        duration_ns: 0,
                        aborted: false,
                    }))
                }
            }
        }
    }

    fn on_request(&mut self, now: Now, head: RequestHead) {
        self.request = Some(head);
        if self.cfg.app.is_some() {
            self.on_app_request(now);
        } else {
            self.serve_static(now);
        }
    }

    /// App mode: answers a static asset or a public page alone, else starts gathering the
    /// body for the node ([`app`]).
    fn on_app_request(&mut self, now: Now) {
        let cfg = self.cfg.clone();
        let Some(rules) = cfg.app.as_ref() else {
            return;
        };
        let Some(req) = self.request.as_ref() else {
            return;
        };
        let clean = match normalize_path(req.target.path()) {
            Ok(c) => c,
            Err(_) => return self.simple(now, Status::BAD_REQUEST, &[]),
        };
        if matches!(req.method, Method::Get | Method::Head)
            && rules.answers_alone(file_name(&clean), &clean.to_slash_path())
        {
            return self.serve_static(now);
        }
        let declared = req
            .headers
            .get_str("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > rules.max_body as u64) {
            return self.too_large(now);
        }
        self.http.accept_body();
        self.job = Job::Gathering {
            body: Vec::with_capacity(declared.unwrap_or(0) as usize),
        };
    }

    /// A piece of the body the node is to get (ignored when no body is being gathered: a
    /// static request's body is read and dropped).
    fn gather(&mut self, now: Now, data: &[u8]) {
        let max = self.cfg.app.as_ref().map_or(0, |r| r.max_body);
        if let Job::Gathering { body } = &mut self.job {
            if body.len() + data.len() > max {
                self.job = Job::None;
                return self.too_large(now);
            }
            body.extend_from_slice(data);
        }
    }

    /// The body is whole: the request goes to the node.
    fn body_gathered(&mut self) {
        let Job::Gathering { body } = std::mem::replace(&mut self.job, Job::None) else {
            return;
        };
        let Some(head) = self.request.clone() else {
            return;
        };
        self.job = Job::AwaitingNode;
        self.out.push_back(ConnOutput::ToNode(AppRequest {
            head,
            peer: self.peer,
            body,
        }));
    }

    /// `413`, and the connection closes behind it rather than read a body it will not use.
    fn too_large(&mut self, now: Now) {
        self.simple(now, Status::PAYLOAD_TOO_LARGE, &[("Connection", "close")]);
    }

    /// Carries out the node's reply to the request handed to it; a reply that answers nothing
    /// (late, or out of order) is dropped.
    fn on_reply(&mut self, now: Now, reply: AppReply) {
        let (max_backlog, max_response) = self
            .cfg
            .app
            .as_ref()
            .map_or((0, 0), |r| (r.max_stream_backlog, r.max_response));
        match (reply, &self.job) {
            (AppReply::Respond { body, .. }, Job::AwaitingNode) if body.len() > max_response => {
                debug_assert!(false, "the node's response is over max_response");
                self.job = Job::None;
                self.simple(now, Status::INTERNAL_SERVER_ERROR, &[]);
            }
            (AppReply::StreamData(data), Job::Streaming) if data.len() > max_response => {
                debug_assert!(false, "the node's stream event is over max_response");
                self.http.abort();
            }
            (AppReply::Respond { head, body }, Job::AwaitingNode) => {
                self.job = Job::None;
                self.http
                    .send_head(now, head, BodyFraming::Length(body.len() as u64));
                self.http.send_data(now, &body);
                self.http.end_response(now);
                self.finish(now, false);
            }
            (AppReply::Static { private }, Job::AwaitingNode) => {
                self.job = Job::None;
                self.private = private;
                self.serve_static(now);
            }
            (AppReply::Stream { head }, Job::AwaitingNode) => {
                self.job = Job::Streaming;
                self.http.send_head(now, head, BodyFraming::Chunked);
            }
            (AppReply::StreamData(data), Job::Streaming) => {
                self.http.send_data(now, &data);
                if self.http.pending_len() > max_backlog as u64 {
                    // Cut off; the reader resumes from its last event id (module docs).
                    self.http.abort();
                }
            }
            (AppReply::StreamEnd, Job::Streaming) => {
                self.job = Job::None;
                self.http.end_response(now);
                self.finish(now, false);
            }
            _ => {}
        }
    }

    /// Answers the current request by the static-file rules (module docs).
    fn serve_static(&mut self, now: Now) {
        let Some(method) = self.request.as_ref().map(|r| r.method.clone()) else {
            return;
        };
        match method {
            Method::Get | Method::Head => {}
            Method::Other(_) => return self.simple(now, Status::NOT_IMPLEMENTED, &[]),
            _ => return self.simple(now, Status::METHOD_NOT_ALLOWED, &[("Allow", "GET, HEAD")]),
        }
        let target = self.request.as_ref().map_or("", |r| r.target.path());
        let clean = match normalize_path(target) {
            Ok(c) => c,
            Err(_) => return self.simple(now, Status::BAD_REQUEST, &[]),
        };
        let (in_www, path) = self.file_path(&clean);
        self.job = Job::Opening { in_www, clean };
        self.out.push_back(ConnOutput::File(FileOp::Open { path }));
    }

    /// (under the www root, full path) for a clean path, per the mapping in the module docs.
    /// The path is built in one allocation.
    fn file_path(&self, clean: &CleanPath) -> (bool, String) {
        let index = if clean.trailing_slash {
            "/index.html"
        } else {
            ""
        };
        let in_www = mime::is_page(file_name(clean));
        let root = self.root(in_www);
        let mut path = String::with_capacity(root.len() + clean.joined().len() + index.len());
        path.push_str(root);
        path.push_str(clean.joined());
        path.push_str(index);
        (in_www, path)
    }

    fn root(&self, in_www: bool) -> &str {
        if in_www {
            &self.cfg.www_root
        } else {
            &self.cfg.static_root
        }
    }

    fn on_opened(
        &mut self,
        now: Now,
        in_www: bool,
        clean: CleanPath,
        result: Result<FileMeta, FsError>,
    ) {
        let meta = match result {
            Ok(m) => m,
            Err(FsError::NotFound) => return self.simple(now, Status::NOT_FOUND, &[]),
            Err(FsError::PermissionDenied) => return self.simple(now, Status::FORBIDDEN, &[]),
            Err(FsError::Io) => return self.simple(now, Status::INTERNAL_SERVER_ERROR, &[]),
        };
        let inside = meta
            .real_path
            .strip_prefix(self.root(in_www))
            .is_some_and(|rest| rest.starts_with('/'));
        if !inside {
            self.close_file(meta.handle);
            return self.simple(now, Status::FORBIDDEN, &[]);
        }
        if meta.is_dir {
            self.close_file(meta.handle);
            if clean.trailing_slash {
                return self.simple(now, Status::NOT_FOUND, &[]);
            }
            let mut location = clean.to_slash_path();
            location.push('/');
            if let Some(q) = self.request.as_ref().and_then(|r| r.target.query()) {
                location.push('?');
                location.push_str(q);
            }
            return self.simple(now, Status::MOVED_PERMANENTLY, &[("Location", &location)]);
        }
        let name = file_name(&clean);
        let tag = range::etag(meta.len, meta.modified);
        let mut head = ResponseHead::new(Status::OK);
        head.headers.append("Server", &self.cfg.server_name);
        head.headers
            .append("Content-Type", mime::content_type(name));
        head.headers
            .append("Last-Modified", crate::http::date::format(meta.modified));
        head.headers.append("ETag", &tag);
        head.headers.append("Accept-Ranges", "bytes");
        if self.private {
            head.headers.append("Cache-Control", "private, no-cache");
        }
        // Judged before anything is sent, while the request is borrowed (not copied).
        let no_headers = crate::http::Headers::new();
        let req_headers = self.request.as_ref().map_or(&no_headers, |r| &r.headers);
        let not_modified = range::not_modified(req_headers, &tag, meta.modified);
        let answer = if range::if_range_holds(req_headers, &tag, meta.modified) {
            range::answer_range(req_headers.get("range"), meta.len)
        } else {
            RangeAnswer::Full
        };
        if not_modified {
            self.close_file(meta.handle);
            head.status = Status::NOT_MODIFIED;
            head.reason = Status::NOT_MODIFIED.reason().into();
            head.headers.remove("content-type");
            head.headers.remove("accept-ranges");
            self.http.send_head(now, head, BodyFraming::None);
            // A 304 has no body, but its response still ends here: without this the next
            // request on the connection was never read.
            self.http.end_response(now);
            return self.finish(now, false);
        }
        let (start, len) = match answer {
            RangeAnswer::Full => (0, meta.len),
            RangeAnswer::Partial { start, end } => {
                head.status = Status::PARTIAL_CONTENT;
                head.reason = Status::PARTIAL_CONTENT.reason().into();
                head.headers
                    .append("Content-Range", format!("bytes {start}-{end}/{}", meta.len));
                (start, end - start + 1)
            }
            RangeAnswer::Unsatisfiable => {
                self.close_file(meta.handle);
                let cr = format!("bytes */{}", meta.len);
                return self.simple(
                    now,
                    Status::RANGE_NOT_SATISFIABLE,
                    &[("Content-Range", &cr)],
                );
            }
        };
        let is_head = self
            .request
            .as_ref()
            .is_some_and(|r| r.method == Method::Head);
        if len == 0 || is_head {
            self.close_file(meta.handle);
            self.http.send_head(now, head, BodyFraming::Length(len));
            self.http.end_response(now);
            return self.finish(now, false);
        }
        let handle = meta.handle;
        let small = self.cfg.small_file.min(self.cfg.read_chunk) as u64;
        if len > small {
            self.http.send_head(now, head, BodyFraming::Length(len));
            let segment = FileSegment {
                handle,
                offset: start,
                len,
            };
            self.send_segment(now, segment);
            return;
        }
        let mut want = len as usize;
        if self.buggify.fire("backend.tiny_first_read") {
            want = want.min(7);
        }
        self.job = Job::FirstRead {
            meta,
            head,
            start,
            len,
        };
        self.out.push_back(ConnOutput::File(FileOp::Read {
            handle,
            offset: start,
            len: want,
        }));
    }

    fn on_read(&mut self, now: Now, result: Result<Vec<u8>, FsError>) {
        match std::mem::replace(&mut self.job, Job::None) {
            Job::FirstRead {
                meta,
                head,
                start,
                len,
            } => match result {
                Ok(data) if !data.is_empty() => {
                    self.http.send_head(now, head, BodyFraming::Length(len));
                    let n = (data.len() as u64).min(len);
                    self.http.send_data(now, &data[..n as usize]);
                    let (next, end) = (start + n, start + len);
                    let segment = FileSegment {
                        handle: meta.handle,
                        offset: next,
                        len: end - next,
                    };
                    if next == end {
                        self.close_file(meta.handle);
                        self.http.end_response(now);
                        self.finish(now, false);
                    } else {
                        self.send_segment(now, segment);
                    }
                }
                // The file shrank or the disk failed before any byte went out: a clean 500.
                _ => {
                    self.close_file(meta.handle);
                    self.simple(now, Status::INTERNAL_SERVER_ERROR, &[]);
                }
            },
            // Only a failure is ever reported while the driver sends the file itself.
            Job::Sending { handle } => {
                self.close_file(handle);
                self.http.abort();
                self.finish(now, true);
            }
            other => {
                debug_assert!(false, "a read reply with no read pending");
                self.job = other;
            }
        }
    }

    /// Hands the rest of the body to the driver as a file segment (after its head).
    fn send_segment(&mut self, now: Now, segment: FileSegment) {
        let handle = segment.handle;
        if self.http.send_file(now, segment) {
            self.job = Job::Sending { handle };
        } else {
            debug_assert!(false, "a Content-Length body always takes a file segment");
            self.close_file(handle);
            self.http.abort();
            self.finish(now, true);
        }
    }

    /// Ends the response once the driver has sent the whole file segment.
    fn continue_stream(&mut self, now: Now) {
        if let Job::Sending { handle } = self.job {
            if self.http.pending_len() == 0 {
                self.job = Job::None;
                self.close_file(handle);
                self.http.end_response(now);
                self.finish(now, false);
            }
        }
    }

    /// Ends the file work in progress, if any, as aborted.
    fn release_job(&mut self, now: Now) {
        match std::mem::replace(&mut self.job, Job::None) {
            Job::Sending { handle } => self.close_file(handle),
            Job::FirstRead { meta, .. } => self.close_file(meta.handle),
            Job::None
            | Job::Opening { .. }
            | Job::Gathering { .. }
            | Job::AwaitingNode
            | Job::Streaming => {}
        }
        self.finish(now, true);
    }

    fn close_file(&mut self, handle: FileHandle) {
        self.out
            .push_back(ConnOutput::File(FileOp::Close { handle }));
    }

    /// A short generated response (errors, redirects, 405/501).
    fn simple(&mut self, now: Now, status: Status, extra: &[(&str, &str)]) {
        let server = self.cfg.server_name.clone();
        let html = self
            .request
            .as_ref()
            .is_some_and(|r| crate::http::page::wants_html(&r.headers));
        self.http.send_page(now, status, &server, extra, html);
        self.finish(now, false);
    }

    fn finish(&mut self, now: Now, aborted: bool) {
        self.job = Job::None;
        self.private = false;
        let Some(req) = self.request.take() else {
            return;
        };
        self.out.push_back(ConnOutput::Log(AccessLog {
            method: req.method.into_name(),
            target: req.target.into_string(),
            status: self.http.status().0,
            bytes: self.http.body_sent(),
            duration_ns: now.mono.since(self.http.request_started_at()).as_nanos() as u64,
            aborted,
        }));
    }
}

/// The name of the file a clean path asks for: its last segment, or `index.html` for a folder.
fn file_name(clean: &CleanPath) -> &str {
    match clean.last() {
        Some(name) if !clean.trailing_slash => name,
        _ => "index.html",
    }
}

impl Connection for BackendConn {
    type ToNode = AppRequest;
    type FromNode = AppReply;

    fn handle(&mut self, now: Now, input: ConnInput<'_, AppReply>) {
        if self.finished {
            // Only the flush of what was queued before Close still matters, and its deadline.
            match input {
                ConnInput::Flushed(n) => self.http.flushed(now, n),
                ConnInput::Timeout => {
                    self.http.on_timeout(now);
                }
                _ => {}
            }
            return;
        }
        match input {
            ConnInput::Data(bytes) => self.http.feed(now, bytes),
            ConnInput::Eof => self.http.feed_eof(),
            ConnInput::Reset => self.http.abort(),
            ConnInput::Drain => self.http.drain(),
            ConnInput::Flushed(n) => {
                self.http.flushed(now, n);
                self.continue_stream(now);
            }
            ConnInput::Timeout => {
                if let Some(ServerEvent::Rejected { status, .. }) = self.http.on_timeout(now) {
                    self.out.push_back(ConnOutput::Log(AccessLog {
                        method: "-".into(),
                        target: "-".into(),
                        status: status.0,
                        bytes: 0,
                        duration_ns: 0,
                        aborted: false,
                    }));
                }
            }
            ConnInput::File(FileReply::Opened(result)) => {
                match std::mem::replace(&mut self.job, Job::None) {
                    Job::Opening { in_www, clean } => self.on_opened(now, in_www, clean, result),
                    other => {
                        debug_assert!(false, "an open reply with no open pending");
                        self.job = other;
                    }
                }
            }
            ConnInput::File(FileReply::Read(result)) => self.on_read(now, result),
            ConnInput::FromNode(reply) => self.on_reply(now, reply),
        }
        if self.http.closing() == Closing::Abort {
            // Reset by the peer, or aborted by the HTTP layer itself (a send deadline, a bad
            // body): the file in use is closed and the request logged as aborted.
            self.release_job(now);
        } else {
            self.drive(now);
        }
    }

    fn poll_output(&mut self) -> ConnOutput<AppRequest> {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        if self.finished {
            if self.http.closing() == Closing::Abort && !self.aborted {
                // The bytes left after Close were not taken within the send timeout.
                self.aborted = true;
                return ConnOutput::Abort;
            }
            let deadline = if self.aborted {
                None
            } else {
                self.http.deadline()
            };
            return ConnOutput::Wait { deadline };
        }
        match self.http.closing() {
            Closing::AfterFlush if matches!(self.job, Job::None) => {
                self.finished = true;
                ConnOutput::Close
            }
            Closing::Abort => {
                self.finished = true;
                self.aborted = true;
                ConnOutput::Abort
            }
            _ => ConnOutput::Wait {
                deadline: self.http.deadline(),
            },
        }
    }

    fn transmit(&self) -> &[u8] {
        self.http.transmit()
    }

    fn transmit_file(&self) -> Option<FileSegment> {
        self.http.transmit_file()
    }

    fn wants_read(&self) -> bool {
        !self.finished && self.http.wants_read()
    }

    fn file_follows(&self) -> bool {
        self.http.file_follows()
    }

    fn closes_after_flush(&self) -> bool {
        self.http.closes_after_flush()
    }

    fn may_leave_unread(&self) -> bool {
        self.http.may_leave_unread()
    }

    fn check_invariants(&self) {
        self.http.check_invariants();
        if let Job::Sending { .. } = self.job {
            assert!(
                self.http.responding(),
                "a file segment belongs to a response in progress"
            );
        }
        // Memory per connection is bounded: one chunk beyond the low-water mark, plus a head,
        // plus in app mode the stream backlog and one message of the node's beyond it.
        let node = self
            .cfg
            .app
            .as_ref()
            .map_or(0, |r| r.max_stream_backlog + r.max_response);
        assert!(
            self.http.transmit_len() <= 2 * self.cfg.read_chunk + 64 * 1024 + node,
            "transmit buffer grew without bound"
        );
    }
}
