//! A farm of fake Scope plugins for the host benchmark: any number of unix sockets served by
//! ONE thread with one mio loop, so that a thousand plugins cost the measured probe nothing
//! but their answers.
//!
//! Each connection: read the request head up to `\r\n\r\n`, write the listener's prebuilt
//! `HTTP/1.1 200 OK` response (`Content-Length`, `Connection: close`), close. The farm counts
//! the requests it answered and reports the first request each listener receives (with the
//! instant its head was complete) for reaction-time measurements.
//!
//! Not here: being a general HTTP server (no bodies, no keep-alive), or misbehaving plugins
//! (`tests/util/plugin_server.rs` does those, with a thread per connection).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};

const WAKER: Token = Token(usize::MAX);
/// Connections use `Token(CONN_BASE + slot)`; listeners use `Token(index)`.
const CONN_BASE: usize = 1 << 24;
/// A request head larger than this closes the connection (the probe sends about 150 bytes).
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The plugin ID of the `index`th socket (`p0042`), valid per spec §7.2.
pub fn plugin_id(index: usize) -> String {
    format!("p{index:04}")
}

/// A small valid reporter report for plugin `id`: one Host node with a few latest entries and
/// one metric, plus its `Plugins` spec (about 1.3 kB).
pub fn report_body(id: &str) -> Vec<u8> {
    let ts = "2026-11-22T01:00:00Z";
    let latest: Vec<String> = [
        ("host_name", format!("{id}.bench.local")),
        ("os", "linux".to_string()),
        (
            "kernel_version",
            "6.1.0-bench #1 SMP PREEMPT_DYNAMIC".to_string(),
        ),
        ("uptime", "123456".to_string()),
        ("bench_plugin_version", "1.2.3".to_string()),
        ("bench_plugin_state", format!("{id} answering promptly")),
    ]
    .iter()
    .map(|(k, v)| format!(r#""{k}":{{"timestamp":"{ts}","value":"{v}"}}"#))
    .collect();
    let samples: Vec<String> = (0..10)
        .map(|s| {
            format!(
                r#"{{"date":"2026-11-22T01:00:{s:02}Z","value":{}.{}}}"#,
                s % 4,
                (s * 37) % 100
            )
        })
        .collect();
    format!(
        concat!(
            r#"{{"Host":{{"nodes":{{"{id};<host>":{{"id":"{id};<host>","topology":"host","#,
            r#""latest":{{{latest}}},"#,
            r#""metrics":{{"load1":{{"samples":[{samples}],"min":0,"max":4}}}}}}}}}},"#,
            r#""Plugins":[{{"id":"{id}","label":"{id} bench plugin","#,
            r#""description":"A fake plugin of the host benchmark","#,
            r#""interfaces":["reporter"],"api_version":"1"}}]}}"#
        ),
        id = id,
        latest = latest.join(","),
        samples = samples.join(","),
    )
    .into_bytes()
}

/// The whole HTTP response for `body`.
pub fn response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

enum Command {
    Add {
        index: usize,
        listener: StdUnixListener,
        response: Arc<[u8]>,
    },
    Stop,
}

/// The running farm. Dropping it stops the thread and closes every listener (the socket files
/// stay; they live in the caller's directory).
pub struct Farm {
    root: PathBuf,
    next_index: usize,
    commands: Sender<Command>,
    waker: Arc<Waker>,
    served: Arc<AtomicU64>,
    first_requests: Receiver<(usize, Instant)>,
    thread: Option<JoinHandle<()>>,
}

impl Farm {
    /// Starts the serving thread with `n` plugins `p0000.sock`… bound in `root`.
    pub fn start(root: &Path, n: usize) -> io::Result<Farm> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (commands, command_rx) = mpsc::channel();
        let (first_tx, first_requests) = mpsc::channel();
        let served = Arc::new(AtomicU64::new(0));
        let thread = {
            let served = Arc::clone(&served);
            thread::Builder::new()
                .name("plugin farm".into())
                .spawn(move || serve(poll, &command_rx, &first_tx, &served))?
        };
        let mut farm = Farm {
            root: root.to_path_buf(),
            next_index: 0,
            commands,
            waker,
            served,
            first_requests,
            thread: Some(thread),
        };
        for _ in 0..n {
            farm.add()?;
        }
        Ok(farm)
    }

    /// Binds one more plugin socket; returns its index and the instant just before `bind`
    /// created the socket file.
    pub fn add(&mut self) -> io::Result<(usize, Instant)> {
        let index = self.next_index;
        self.next_index += 1;
        let id = plugin_id(index);
        let path = self.root.join(format!("{id}.sock"));
        let response: Arc<[u8]> = response(&report_body(&id)).into();
        let created = Instant::now();
        let listener = StdUnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        self.commands
            .send(Command::Add {
                index,
                listener,
                response,
            })
            .map_err(|_| io::Error::other("plugin farm thread is gone"))?;
        self.waker.wake()?;
        Ok((index, created))
    }

    /// Requests answered so far, over all plugins.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for the next listener's first request: its index and the instant
    /// its request head was complete.
    pub fn next_first_request(&self, timeout: Duration) -> Option<(usize, Instant)> {
        self.first_requests.recv_timeout(timeout).ok()
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Listener {
    socket: UnixListener,
    response: Arc<[u8]>,
    polled: bool,
}

struct Conn {
    stream: UnixStream,
    listener: usize,
    head: Vec<u8>,
    /// Bytes of the response written; `None` while the head is still being read.
    written: Option<usize>,
}

fn serve(
    mut poll: Poll,
    commands: &Receiver<Command>,
    first_requests: &Sender<(usize, Instant)>,
    served: &AtomicU64,
) {
    let mut events = Events::with_capacity(1024);
    let mut listeners: Vec<Option<Listener>> = Vec::new();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("plugin farm: poll failed: {e}");
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    while let Ok(command) = commands.try_recv() {
                        match command {
                            Command::Stop => return,
                            Command::Add {
                                index,
                                listener,
                                response,
                            } => {
                                let mut socket = UnixListener::from_std(listener);
                                poll.registry()
                                    .register(&mut socket, Token(index), Interest::READABLE)
                                    .expect("plugin farm: register listener");
                                if listeners.len() <= index {
                                    listeners.resize_with(index + 1, || None);
                                }
                                listeners[index] = Some(Listener {
                                    socket,
                                    response,
                                    polled: false,
                                });
                            }
                        }
                    }
                }
                Token(t) if t >= CONN_BASE => {
                    let slot = t - CONN_BASE;
                    let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                        continue;
                    };
                    let Some(listener) = listeners.get_mut(conn.listener).and_then(Option::as_mut)
                    else {
                        continue;
                    };
                    match drive(conn, listener, first_requests) {
                        Ok(true) => {
                            served.fetch_add(1, Ordering::Relaxed);
                            close(&poll, &mut conns, &mut free, slot);
                        }
                        Ok(false) => {}
                        Err(_) => close(&poll, &mut conns, &mut free, slot),
                    }
                }
                Token(index) => {
                    let Some(listener) = listeners.get_mut(index).and_then(Option::as_mut) else {
                        continue;
                    };
                    loop {
                        let stream = match listener.socket.accept() {
                            Ok((stream, _)) => stream,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => panic!("plugin farm: accept failed: {e}"),
                        };
                        let slot = free.pop().unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        let mut conn = Conn {
                            stream,
                            listener: index,
                            head: Vec::with_capacity(256),
                            written: None,
                        };
                        poll.registry()
                            .register(
                                &mut conn.stream,
                                Token(CONN_BASE + slot),
                                Interest::READABLE | Interest::WRITABLE,
                            )
                            .expect("plugin farm: register connection");
                        conns[slot] = Some(conn);
                    }
                }
            }
        }
    }
}

/// Moves the exchange on; `Ok(true)` when the whole response is written.
fn drive(
    conn: &mut Conn,
    listener: &mut Listener,
    first_requests: &Sender<(usize, Instant)>,
) -> io::Result<bool> {
    if conn.written.is_none() {
        let mut buf = [0u8; 1024];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    let from = conn.head.len().saturating_sub(3);
                    conn.head.extend_from_slice(&buf[..n]);
                    if conn.head[from..].windows(4).any(|w| w == b"\r\n\r\n") {
                        conn.written = Some(0);
                        if !listener.polled {
                            listener.polled = true;
                            let _ = first_requests.send((conn.listener, Instant::now()));
                        }
                        break;
                    }
                    if conn.head.len() > MAX_HEAD_BYTES {
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
    let mut written = conn.written.unwrap_or(0);
    while written < listener.response.len() {
        match conn.stream.write(&listener.response[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            // Registered for WRITABLE too, so the next edge resumes here.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    conn.written = Some(written);
    Ok(written == listener.response.len())
}

fn close(poll: &Poll, conns: &mut [Option<Conn>], free: &mut Vec<usize>, slot: usize) {
    if let Some(mut conn) = conns.get_mut(slot).and_then(Option::take) {
        let _ = poll.registry().deregister(&mut conn.stream);
        free.push(slot);
    }
}
