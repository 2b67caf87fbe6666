//! A fake Scope app for end-to-end tests (spec `app-protocol.md`): a real HTTP/1.1 server on
//! loopback TCP that answers `GET /api`, records every `POST /api/report` (gunzipped and
//! parsed), and upgrades `GET /api/control/ws` to a websocket on which the test plays the app's
//! net/rpc client side (AP §4).
//!
//! One thread per connection; every request is recorded before it is answered, so tests wait
//! for it with a bound. The websocket framing is the server side of RFC 6455, by hand: frames
//! we send are unmasked, the probe's frames must be masked and are unmasked here.
//!
//! Also here: [`http_get`], a one-shot client for the probe's `--http-listen` endpoints.
//!
//! Not here: being a correct HTTP server (requests are framed by `Content-Length` only, one per
//! connection, as the probe sends them).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// How long a thread blocks before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(5);
/// RFC 6455 §1.3.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// How the app answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// As a Scope app does: `200` with the app's details, `200` empty, `101`.
    Normal,
    /// This status with this text body.
    Status(u16, String),
    /// Reads the request and never answers (until the app is dropped or goes down).
    Hang,
    /// Reads the request and closes the connection without a byte.
    Drop,
    /// Waits this long (or until going down), then answers normally.
    Delay(Duration),
}

/// One request as the app read it.
#[derive(Clone, Debug)]
pub struct AppRequest {
    /// When the whole request had been read.
    pub at: Instant,
    /// The same instant on the wall clock (to compare with report times).
    pub wall: std::time::SystemTime,
    /// The address the probe connected to (tells the app's addresses apart).
    pub local: SocketAddr,
    /// `GET` or `POST`.
    pub method: String,
    /// For example `/api/report`.
    pub target: String,
    /// Headers in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as sent (gzip for reports).
    pub body: Vec<u8>,
    /// For `POST /api/report`: the body, gunzipped when `Content-Encoding: gzip`, as JSON
    /// (`Err` with the reason when it is neither).
    pub report: Option<Result<Value, String>>,
}

impl AppRequest {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a `POST /api/report`.
    pub fn is_report(&self) -> bool {
        self.method == "POST" && self.target == "/api/report"
    }

    /// The parsed report; panics if this is not a good report request.
    pub fn json(&self) -> &Value {
        match &self.report {
            Some(Ok(v)) => v,
            other => panic!(
                "{} {} is not a JSON report: {other:?}",
                self.method, self.target
            ),
        }
    }

    /// Whether the report says `"Shortcut": true`.
    pub fn shortcut(&self) -> bool {
        matches!(&self.report, Some(Ok(v)) if v["Shortcut"] == true)
    }
}

/// State shared by the handle, the accept threads and the connection threads.
struct Shared {
    id: Mutex<String>,
    /// Answer `GET /api` as Go does when the answer outgrows its buffer: chunked, with the
    /// app's other fields.
    chunked_discovery: AtomicBool,
    stop: AtomicBool,
    /// Bumped by [`FakeApp::go_down`]: connections of an older epoch end.
    epoch: AtomicU64,
    /// Answer to every request, overriding `report_answer`.
    all_answer: Mutex<Answer>,
    /// Answer to `POST /api/report`.
    report_answer: Mutex<Answer>,
    /// Answer to `GET /api/control/ws`.
    upgrade_answer: Mutex<Answer>,
    /// Frames written in the same write as the `101`.
    greeting: Mutex<Vec<u8>>,
    requests: Mutex<Vec<AppRequest>>,
    sockets: Mutex<Vec<Arc<AppWs>>>,
    /// Signalled when a request is recorded.
    request_added: Condvar,
    /// Signalled when a websocket is upgraded (a condvar serves one mutex).
    ws_added: Condvar,
    /// Accept and connection threads still to be joined.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopped(&self, epoch: u64) -> bool {
        self.stop.load(Ordering::SeqCst) || self.epoch.load(Ordering::SeqCst) != epoch
    }
}

/// Locks even if a panicking thread poisoned the mutex: the data is plain records.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `cv` until `done(&guard)` or `timeout`; returns whether it became true.
fn wait_on<T>(
    m: &Mutex<T>,
    cv: &Condvar,
    timeout: Duration,
    mut done: impl FnMut(&T) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = lock(m);
    loop {
        if done(&guard) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        guard = cv
            .wait_timeout(guard, (deadline - now).min(Duration::from_millis(50)))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// A fake Scope app listening until dropped.
pub struct FakeApp {
    port: u16,
    ips: Vec<IpAddr>,
    shared: Arc<Shared>,
}

impl FakeApp {
    /// An app with id `id` on `127.0.0.1:<free port>`.
    pub fn start(id: &str) -> FakeApp {
        FakeApp::start_on(id, &["127.0.0.1".parse().expect("ip")])
    }

    /// An app with id `id` listening on the same free port at each of `ips` (for one app
    /// behind several addresses).
    pub fn start_on(id: &str, ips: &[IpAddr]) -> FakeApp {
        let shared = Arc::new(Shared {
            id: Mutex::new(id.to_owned()),
            chunked_discovery: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            all_answer: Mutex::new(Answer::Normal),
            report_answer: Mutex::new(Answer::Normal),
            upgrade_answer: Mutex::new(Answer::Normal),
            greeting: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            request_added: Condvar::new(),
            ws_added: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        let first = TcpListener::bind((ips[0], 0)).expect("bind the fake app");
        let port = first.local_addr().expect("local addr").port();
        let app = FakeApp {
            port,
            ips: ips.to_vec(),
            shared,
        };
        app.listen(Some(first));
        app
    }

    /// Starts one accept thread per address (`first` is the already bound first one).
    fn listen(&self, mut first: Option<TcpListener>) {
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        for ip in &self.ips {
            let listener = match first.take() {
                Some(l) => l,
                None => TcpListener::bind((*ip, self.port))
                    .unwrap_or_else(|e| panic!("bind {ip}:{}: {e}", self.port)),
            };
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            let shared = Arc::clone(&self.shared);
            let handle = thread::spawn(move || accept_loop(&listener, &shared, epoch));
            lock(&self.shared.threads).push(handle);
        }
    }

    /// The app's id.
    pub fn id(&self) -> String {
        lock(&self.shared.id).clone()
    }

    /// Answers `GET /api` with this id from now on (an app that restarted).
    pub fn set_id(&self, id: &str) {
        *lock(&self.shared.id) = id.to_owned();
    }

    /// Answers `GET /api` chunked, with a `plugins` list and `capabilities`, from now on.
    pub fn chunked_discovery(&self) {
        self.shared.chunked_discovery.store(true, Ordering::SeqCst);
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>` (its first address), as a probe target.
    pub fn target(&self) -> String {
        SocketAddr::new(self.ips[0], self.port).to_string()
    }

    /// Answers every request (discovery, reports, upgrades) with `answer` from now on.
    pub fn answer_all(&self, answer: Answer) {
        *lock(&self.shared.all_answer) = answer;
    }

    /// Answers `POST /api/report` with `answer` from now on.
    pub fn answer_reports(&self, answer: Answer) {
        *lock(&self.shared.report_answer) = answer;
    }

    /// Answers `GET /api/control/ws` with `answer` from now on.
    pub fn answer_upgrades(&self, answer: Answer) {
        *lock(&self.shared.upgrade_answer) = answer;
    }

    /// Sends these text messages right behind the `101`, in the same write, from now on.
    pub fn greet_with(&self, texts: &[String]) {
        let mut bytes = Vec::new();
        for text in texts {
            bytes.extend(server_frame(true, OP_TEXT, text.as_bytes()));
        }
        *lock(&self.shared.greeting) = bytes;
    }

    /// Stops listening (new connections are refused) and ends every open connection,
    /// websockets included.
    pub fn go_down(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.join_threads();
    }

    /// Listens again on the same port(s) after [`FakeApp::go_down`].
    pub fn come_up(&self) {
        self.listen(None);
    }

    fn join_threads(&self) {
        loop {
            let threads = std::mem::take(&mut *lock(&self.shared.threads));
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<AppRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Every `POST /api/report` so far.
    pub fn reports(&self) -> Vec<AppRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_report())
            .collect()
    }

    /// Waits until `done(requests so far)`; false if `timeout` passes first.
    pub fn wait_requests(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[AppRequest]) -> bool,
    ) -> bool {
        wait_on(
            &self.shared.requests,
            &self.shared.request_added,
            timeout,
            |r| done(r),
        )
    }

    /// Waits until at least `n` reports have arrived; false if `timeout` passes first.
    pub fn wait_reports(&self, n: usize, timeout: Duration) -> bool {
        self.wait_requests(timeout, |r| r.iter().filter(|r| r.is_report()).count() >= n)
    }

    /// The first report after the first `skip` that satisfies `pred`, waiting up to `timeout`.
    pub fn wait_report_after(
        &self,
        skip: usize,
        timeout: Duration,
        mut pred: impl FnMut(&AppRequest) -> bool,
    ) -> Option<AppRequest> {
        let mut found = None;
        self.wait_requests(timeout, |reqs| {
            found = reqs
                .iter()
                .filter(|r| r.is_report())
                .skip(skip)
                .find(|r| pred(r))
                .cloned();
            found.is_some()
        });
        found
    }

    /// How many reports have arrived so far.
    pub fn report_count(&self) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.is_report())
            .count()
    }

    /// The `n`th websocket upgraded (0-based), waiting up to `timeout` for it.
    pub fn wait_ws(&self, n: usize, timeout: Duration) -> Option<Arc<AppWs>> {
        let mut found = None;
        wait_on(&self.shared.sockets, &self.shared.ws_added, timeout, |s| {
            found = s.get(n).cloned();
            found.is_some()
        });
        found
    }

    /// How many websockets were upgraded so far.
    pub fn ws_count(&self) -> usize {
        lock(&self.shared.sockets).len()
    }
}

impl Drop for FakeApp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.join_threads();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, epoch: u64) {
    while !shared.stopped(epoch) {
        match listener.accept() {
            Ok((stream, _)) => {
                let conn_shared = Arc::clone(shared);
                let handle = thread::spawn(move || serve(stream, &conn_shared, epoch));
                let mut threads = lock(&shared.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// A stream read with short timeouts so the thread notices stop and `go_down`.
struct Conn<'s> {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: &'s Shared,
    epoch: u64,
}

impl Conn<'_> {
    /// Reads more bytes into `buf`; false on end of stream, error, stop or going down.
    fn read_more(&mut self) -> bool {
        super::read_more(&mut self.stream, &mut self.buf, || {
            self.shared.stopped(self.epoch)
        })
    }

    /// Holds the connection, discarding input, until the client closes it or we stop.
    fn hold(&mut self) {
        while self.read_more() {
            self.buf.clear();
        }
    }
}

/// Writes all of `bytes` to a blocking stream.
fn write_all(mut stream: &TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok() && stream.flush().is_ok()
}

fn serve(stream: TcpStream, shared: &Shared, epoch: u64) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        shared,
        epoch,
    };
    // One request per connection: the probe sends `Connection: close`.
    let Some(request) = read_request(&mut conn, local) else {
        return;
    };
    let upgrade = request.method == "GET" && request.target == "/api/control/ws";
    let answer = match &*lock(&shared.all_answer) {
        Answer::Normal if request.is_report() => lock(&shared.report_answer).clone(),
        Answer::Normal if upgrade => lock(&shared.upgrade_answer).clone(),
        other => other.clone(),
    };
    let key = request.header("Sec-WebSocket-Key").map(str::to_owned);
    {
        lock(&shared.requests).push(request.clone());
        shared.request_added.notify_all();
    }
    match answer {
        Answer::Hang => return conn.hold(),
        Answer::Drop => return,
        Answer::Status(status, text) => {
            respond(
                &conn.stream,
                status,
                "text/plain; charset=utf-8",
                text.as_bytes(),
            );
            return;
        }
        Answer::Delay(delay) => {
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if shared.stopped(epoch) {
                    return;
                }
                thread::sleep(POLL);
            }
        }
        Answer::Normal => {}
    }
    match (request.method.as_str(), request.target.as_str()) {
        ("GET", "/api") if shared.chunked_discovery.load(Ordering::SeqCst) => {
            let plugins: Vec<String> = (0..40)
                .map(|i| format!(r#"{{"id":"p{i}","label":"plugin {i}","status":"ok"}}"#))
                .collect();
            let body = format!(
                r#"{{"id":"{}","version":"test","hostname":"fake","plugins":[{}],"capabilities":{{"report_persistence":false}}}}"#,
                lock(&shared.id),
                plugins.join(",")
            );
            let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for piece in body.as_bytes().chunks(1000) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            let _ = write_all(&conn.stream, &bytes);
        }
        ("GET", "/api") => {
            let body = format!(
                r#"{{"id":"{}","version":"test","hostname":"fake"}}"#,
                lock(&shared.id)
            );
            respond(&conn.stream, 200, "application/json", body.as_bytes());
        }
        ("POST", "/api/report") => respond(&conn.stream, 200, "", b""),
        _ if upgrade => {
            let Some(key) = key else {
                respond(&conn.stream, 400, "text/plain", b"\"X-Scope-Probe-ID\"");
                return;
            };
            let accept = ws_accept(&key);
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&lock(&shared.greeting));
            if !write_all(&conn.stream, &bytes) {
                return;
            }
            run_ws(conn);
        }
        _ => respond(&conn.stream, 404, "text/plain", b"404 page not found\n"),
    }
}

fn read_request(conn: &mut Conn<'_>, local: SocketAddr) -> Option<AppRequest> {
    let (len, method, target, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(&conn.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let headers: Vec<(String, String)> = super::owned_headers(req.headers);
                break (
                    len,
                    req.method.unwrap_or_default().to_owned(),
                    req.path.unwrap_or_default().to_owned(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => {
                if !conn.read_more() {
                    return None;
                }
            }
            Err(_) => return None,
        }
    };
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, v)| v.trim().parse().ok())?;
    while conn.buf.len() < len + length {
        if !conn.read_more() {
            return None;
        }
    }
    let body = conn.buf[len..len + length].to_vec();
    conn.buf.drain(..len + length);
    let mut request = AppRequest {
        at: Instant::now(),
        wall: std::time::SystemTime::now(),
        local,
        method,
        target,
        headers,
        body,
        report: None,
    };
    if request.is_report() {
        request.report = Some(decode_report(&request));
    }
    Some(request)
}

/// The report body: gunzipped when the probe says so, then JSON.
fn decode_report(request: &AppRequest) -> Result<Value, String> {
    let json = if request.header("Content-Encoding") == Some("gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&request.body[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("gunzip: {e}"))?;
        out
    } else {
        request.body.clone()
    };
    serde_json::from_slice(&json).map_err(|e| format!("json: {e}"))
}

fn respond(stream: &TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let reason = scope_probe::http::status_text(status);
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let _ = write_all(stream, &bytes);
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn ws_accept(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

// ---------------------------------------------------------------------------------------------
// The control websocket, app side.

/// Opcodes of RFC 6455 §5.2: continuation.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text.
pub const OP_TEXT: u8 = 0x1;
/// Close.
pub const OP_CLOSE: u8 = 0x8;
/// Ping.
pub const OP_PING: u8 = 0x9;
/// Pong.
pub const OP_PONG: u8 = 0xA;

/// One frame the probe sent.
#[derive(Clone, Debug)]
pub struct Frame {
    /// When it was read.
    pub at: Instant,
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Whether it was masked (RFC 6455 §5.3 requires it of a client).
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The payload as JSON (for text frames).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "frame is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

/// One upgraded control websocket: the test sends the app's frames, a thread records the
/// probe's (and answers its pings).
pub struct AppWs {
    /// When the upgrade request arrived.
    pub opened_at: Instant,
    writer: Mutex<TcpStream>,
    frames: Mutex<Vec<Frame>>,
    changed: Condvar,
    closed: AtomicBool,
}

impl AppWs {
    /// Every frame received so far.
    pub fn frames(&self) -> Vec<Frame> {
        lock(&self.frames).clone()
    }

    /// Whether the probe's side ended (EOF, error or a Close frame), or we dropped it.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sends one unmasked server frame.
    pub fn send_frame(&self, opcode: u8, payload: &[u8]) -> bool {
        self.send_fragment(true, opcode, payload)
    }

    /// Sends one unmasked server frame with the given FIN bit (`opcode` 0 continues a
    /// fragmented message, RFC 6455 §5.4).
    pub fn send_fragment(&self, fin: bool, opcode: u8, payload: &[u8]) -> bool {
        write_all(&lock(&self.writer), &server_frame(fin, opcode, payload))
    }

    /// Sends the two frames of a net/rpc call (AP §4).
    pub fn send_call(&self, seq: u64, method: &str, args: &Value) {
        let header = serde_json::json!({
            "Request": {"Seq": seq, "ServiceMethod": method},
            "Response": null,
            "Value": null,
        });
        let body = serde_json::json!({"Request": null, "Response": null, "Value": args});
        assert!(
            self.send_frame(OP_TEXT, header.to_string().as_bytes())
                && self.send_frame(OP_TEXT, body.to_string().as_bytes()),
            "sending call {seq}"
        );
    }

    /// Waits for the reply to call `seq`: its header frame (whose `Response.Seq` is `seq`) and
    /// the text frame right after it, both as JSON.
    pub fn wait_reply(&self, seq: u64, timeout: Duration) -> Option<(Value, Value)> {
        let mut reply = None;
        wait_on(&self.frames, &self.changed, timeout, |frames| {
            let texts: Vec<&Frame> = frames.iter().filter(|f| f.opcode == OP_TEXT).collect();
            let at = texts.iter().position(|f| {
                serde_json::from_slice::<Value>(&f.payload)
                    .is_ok_and(|v| v["Response"]["Seq"] == seq)
            });
            if let Some(i) = at
                && let (Some(head), Some(body)) = (texts.get(i), texts.get(i + 1))
            {
                reply = Some((head.json(), body.json()));
            }
            reply.is_some()
        });
        reply
    }

    /// Sends a call and waits for its reply.
    pub fn call(
        &self,
        seq: u64,
        method: &str,
        args: &Value,
        timeout: Duration,
    ) -> Option<(Value, Value)> {
        self.send_call(seq, method, args);
        self.wait_reply(seq, timeout)
    }

    /// Waits for a frame with `opcode` after the first `skip` frames.
    pub fn wait_frame(&self, opcode: u8, skip: usize, timeout: Duration) -> Option<Frame> {
        let mut found = None;
        wait_on(&self.frames, &self.changed, timeout, |frames| {
            found = frames
                .iter()
                .skip(skip)
                .find(|f| f.opcode == opcode)
                .cloned();
            found.is_some()
        });
        found
    }

    /// Waits until the probe's side has ended.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        wait_on(&self.frames, &self.changed, timeout, |_| self.is_closed())
    }

    /// Drops the TCP connection (both directions), as an app that dies does.
    pub fn drop_connection(&self) {
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }
}

/// One unmasked server frame (RFC 6455 §5.2).
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= 0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// Registers the websocket and reads the probe's frames until it ends.
fn run_ws(mut conn: Conn<'_>) {
    let Ok(writer) = conn.stream.try_clone() else {
        return;
    };
    let ws = Arc::new(AppWs {
        opened_at: Instant::now(),
        writer: Mutex::new(writer),
        frames: Mutex::new(Vec::new()),
        changed: Condvar::new(),
        closed: AtomicBool::new(false),
    });
    {
        lock(&conn.shared.sockets).push(Arc::clone(&ws));
        conn.shared.ws_added.notify_all();
    }
    loop {
        match parse_frame(&conn.buf) {
            Some((len, frame)) => {
                conn.buf.drain(..len);
                match frame.opcode {
                    OP_PING => {
                        ws.send_frame(OP_PONG, &frame.payload);
                    }
                    OP_CLOSE => {
                        ws.send_frame(OP_CLOSE, &frame.payload);
                    }
                    _ => {}
                }
                let close = frame.opcode == OP_CLOSE;
                lock(&ws.frames).push(frame);
                ws.changed.notify_all();
                if close {
                    break;
                }
            }
            None => {
                if !conn.read_more() {
                    break;
                }
            }
        }
    }
    ws.closed.store(true, Ordering::SeqCst);
    let _ = conn.stream.shutdown(Shutdown::Both);
    // Wake waiters so they see `closed` at once.
    let _guard = lock(&ws.frames);
    ws.changed.notify_all();
}

/// One client frame from the front of `buf` and its length, or `None` if incomplete.
fn parse_frame(buf: &[u8]) -> Option<(usize, Frame)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mut mask = [0u8; 4];
    if masked {
        mask.copy_from_slice(buf.get(at..at + 4)?);
        at += 4;
    }
    let mut payload = buf.get(at..at + len)?.to_vec();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Some((
        at + len,
        Frame {
            at: Instant::now(),
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            masked,
            payload,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// A client for the probe's local endpoints.

/// `GET path` on `addr` with `Connection: close`: the status, headers and body.
pub fn http_get(addr: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(&raw) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!("bad answer to GET {path}: {other:?}"),
    };
    let headers = super::owned_headers(response.headers);
    (response.code.unwrap_or(0), headers, raw[len..].to_vec())
}
