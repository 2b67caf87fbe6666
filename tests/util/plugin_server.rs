//! Fake Scope plugins for integration tests: a tiny threaded HTTP/1.1 server on a real unix
//! socket, answering every request with a configurable [`Behaviour`] (well-formed, chunked,
//! HTTP/1.0, never closing, hanging, dripping, cut short, garbage, or computed per request).
//!
//! Each connection gets its own thread, so a hanging connection never blocks the next one. Every
//! request is recorded before it is answered, so tests can wait for it with a bound. Dropping
//! the server stops all its threads (they poll a stop flag between short socket timeouts) and
//! removes the socket file.
//!
//! Not here: being a correct HTTP server. Requests are framed by `Content-Length` only (the
//! probe sends nothing else), and responses are exactly what the behaviour says.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a server thread blocks before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(5);
/// A request head larger than this closes the connection (guards against runaway clients).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Computes a response `(status, body)` for one request; see [`Behaviour::Dynamic`].
pub type Handler = Arc<dyn Fn(&RecordedRequest) -> (u16, Vec<u8>) + Send + Sync>;

/// How the server answers each request.
#[derive(Clone)]
pub enum Behaviour {
    /// A `Content-Length` response with Go's reason phrase for `status`; keeps the connection.
    Respond { status: u16, body: Vec<u8> },
    /// A chunked response, `chunk` bytes per chunk (one write each); keeps the connection.
    Chunked {
        status: u16,
        body: Vec<u8>,
        chunk: usize,
    },
    /// `HTTP/1.0 200 OK` without a length; the body ends when the server closes.
    Http10 { body: Vec<u8> },
    /// A `Content-Length` response, then the connection stays open until the client closes it
    /// or the server is dropped; nothing else is answered on it.
    NeverClose { body: Vec<u8> },
    /// Reads the request and never answers.
    Hang,
    /// Sends the head (with `Content-Length`) at once, then the body one byte every `every`.
    Drip { body: Vec<u8>, every: Duration },
    /// Announces the whole body's `Content-Length`, sends `after` bytes of it and closes.
    CloseMidBody { body: Vec<u8>, after: usize },
    /// Writes these raw bytes instead of a response, then closes.
    Garbage(Vec<u8>),
    /// Answers like `Respond` with what the handler returns for the request.
    Dynamic(Handler),
}

/// One request as the server read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// For example `GET`.
    pub method: String,
    /// The request target, for example `/report?api_version=1&probe_id=1a2b`.
    pub target: String,
    /// Header names and values in the order sent (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body, as framed by `Content-Length`.
    pub body: Vec<u8>,
    /// When the whole request had been read (for reaction-time tests).
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this request.
    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }
}

/// A fake plugin listening on a unix socket until dropped.
pub struct PluginServer {
    path: PathBuf,
    /// Inode of the socket file we bound, so `Drop` never removes a later server's socket.
    inode: u64,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// State shared by the server handle, its accept thread and its connection threads.
struct Shared {
    stop: AtomicBool,
    behaviour: Mutex<Arc<Behaviour>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Signalled whenever a request is recorded.
    recorded: Condvar,
    /// Connection threads still to be joined.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Locks `mutex` even if a panicking server thread poisoned it: the data is plain records.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PluginServer {
    /// Binds a unix socket at `path` (creating its parent directories and replacing a stale
    /// socket file) and serves `behaviour` until dropped. Panics if it cannot bind.
    pub fn start(path: &Path, behaviour: Behaviour) -> PluginServer {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = fs::remove_file(path);
        }
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        let inode = fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        // Non-blocking accept polled against the stop flag: waking a blocking accept by
        // connecting to our own path would hang `Drop` in tests that delete or replace the
        // socket file.
        listener
            .set_nonblocking(true)
            .expect("set listener non-blocking");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            behaviour: Mutex::new(Arc::new(behaviour)),
            requests: Mutex::new(Vec::new()),
            recorded: Condvar::new(),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("plugin {}", path.display()))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn accept thread")
        };
        PluginServer {
            path: path.to_owned(),
            inode,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests have been recorded so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until at least `n` requests have been recorded; false if `timeout` passes first.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        while requests.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            requests = self
                .shared
                .recorded
                .wait_timeout(requests, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Answers requests read from now on with `behaviour` (connections already past reading
    /// their request keep the old one).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = Arc::new(behaviour);
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PluginServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The acceptor first, so no connection thread is added after we take the list.
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for connection in connections {
            // A panicking `Dynamic` handler already failed its test; don't panic in drop.
            let _ = connection.join();
        }
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                let conn_shared = Arc::clone(shared);
                let handle = thread::Builder::new()
                    .name("plugin connection".to_owned())
                    .spawn(move || serve_connection(stream, &conn_shared))
                    .expect("spawn connection thread");
                let mut connections = lock(&shared.connections);
                connections.retain(|c| !c.is_finished());
                connections.push(handle);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock, or a transient failure such as EMFILE: try again shortly.
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn serve_connection(stream: UnixStream, shared: &Shared) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)));
    if setup.is_err() {
        return;
    }
    let mut conn = Connection {
        stream,
        buf: Vec::new(),
        shared,
    };
    while let Some(request) = conn.read_request() {
        let close = request.wants_close();
        let behaviour = Arc::clone(&lock(&shared.behaviour));
        {
            let mut requests = lock(&shared.requests);
            requests.push(request.clone());
            shared.recorded.notify_all();
        }
        let keep_alive = conn.answer(&behaviour, &request);
        if !keep_alive || close {
            break;
        }
    }
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
}

/// One accepted connection: its stream and the bytes read but not yet consumed.
struct Connection<'s> {
    stream: UnixStream,
    buf: Vec<u8>,
    shared: &'s Shared,
}

/// A parsed request head: what to record, and where the body starts.
struct Head {
    len: usize,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    content_length: usize,
}

/// `Ok(None)` while the head is incomplete; `Err` for a head we cannot serve.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let headers: Vec<(String, String)> = super::owned_headers(request.headers);
    let content_length = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v.trim().parse().map_err(|_| ())?,
        None => 0,
    };
    Ok(Some(Head {
        len,
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
        content_length,
    }))
}

impl Connection<'_> {
    /// The next request, or `None` once the client is gone, the request is unreadable or the
    /// server stops.
    fn read_request(&mut self) -> Option<RecordedRequest> {
        let head = loop {
            match parse_head(&self.buf) {
                Ok(Some(head)) => break head,
                Ok(None) if self.buf.len() <= MAX_HEAD_BYTES => {
                    if !self.read_more() {
                        return None;
                    }
                }
                _ => return None,
            }
        };
        let end = head.len.checked_add(head.content_length)?;
        while self.buf.len() < end {
            if !self.read_more() {
                return None;
            }
        }
        let body = self.buf[head.len..end].to_vec();
        self.buf.drain(..end);
        Some(RecordedRequest {
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
            received_at: Instant::now(),
        })
    }

    /// Reads some bytes into `buf`; false on end of stream, error or stop.
    fn read_more(&mut self) -> bool {
        super::read_more(&mut self.stream, &mut self.buf, || self.shared.stopped())
    }

    /// Writes all of `bytes`; false if the client is gone or the server stops.
    fn write_all(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.shared.stopped() {
                return false;
            }
            match self.stream.write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if super::retryable(&e) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Holds the connection until the client closes it or the server stops, discarding input.
    fn hold_open(&mut self) {
        while self.read_more() {
            self.buf.clear();
        }
    }

    /// Sleeps for `duration` unless the server stops first (then false).
    fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.shared.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Answers one request; true if the connection may serve another.
    fn answer(&mut self, behaviour: &Behaviour, request: &RecordedRequest) -> bool {
        match behaviour {
            Behaviour::Respond { status, body } => self.respond(*status, body),
            Behaviour::Dynamic(handler) => {
                let (status, body) = handler(request);
                self.respond(status, &body)
            }
            Behaviour::Chunked {
                status,
                body,
                chunk,
            } => {
                let head = format!("{}Transfer-Encoding: chunked\r\n\r\n", status_line(*status));
                if !self.write_all(head.as_bytes()) {
                    return false;
                }
                for piece in body.chunks((*chunk).max(1)) {
                    let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                    framed.extend_from_slice(piece);
                    framed.extend_from_slice(b"\r\n");
                    if !self.write_all(&framed) {
                        return false;
                    }
                }
                self.write_all(b"0\r\n\r\n")
            }
            Behaviour::Http10 { body } => {
                let _ = self
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
                    && self.write_all(body);
                false
            }
            Behaviour::NeverClose { body } => {
                if self.respond(200, body) {
                    self.hold_open();
                }
                false
            }
            Behaviour::Hang => {
                self.hold_open();
                false
            }
            Behaviour::Drip { body, every } => {
                if !self.write_all(content_length_head(200, body.len()).as_bytes()) {
                    return false;
                }
                for byte in body {
                    if !self.pause(*every) || !self.write_all(std::slice::from_ref(byte)) {
                        return false;
                    }
                }
                true
            }
            Behaviour::CloseMidBody { body, after } => {
                let _ = self.write_all(content_length_head(200, body.len()).as_bytes())
                    && self.write_all(&body[..(*after).min(body.len())]);
                false
            }
            Behaviour::Garbage(bytes) => {
                let _ = self.write_all(bytes);
                false
            }
        }
    }

    fn respond(&mut self, status: u16, body: &[u8]) -> bool {
        self.write_all(content_length_head(status, body.len()).as_bytes()) && self.write_all(body)
    }
}

fn content_length_head(status: u16, len: usize) -> String {
    format!(
        "{}Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        status_line(status)
    )
}

/// The status line as Go's `net/http` server writes it, including its fallback text.
pub fn status_line(status: u16) -> String {
    // Go's http.StatusText table, shared with the probe's HTTP layer.
    match scope_probe::http::status_text(status) {
        "" => format!("HTTP/1.1 {status:03} status code {status}\r\n"),
        text => format!("HTTP/1.1 {status:03} {text}\r\n"),
    }
}
