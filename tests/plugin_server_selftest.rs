//! The fake plugin server's own tests: every behaviour, seen by a plain `UnixStream` client.
//! Every wait is bounded; "nothing arrives" is checked with a short read timeout.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use util::plugin_server::{Behaviour, PluginServer, RecordedRequest, status_line};

/// Upper bound for anything that should happen promptly.
const BOUND: Duration = Duration::from_secs(5);
/// How long we watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(150);

const GET_REPORT: &[u8] =
    b"GET /report?api_version=1&probe_id=1a2b HTTP/1.1\r\nHost: plugin\r\nUser-Agent: test\r\n\r\n";

fn socket_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn connect(server: &PluginServer) -> UnixStream {
    let stream = UnixStream::connect(server.path()).expect("connect to plugin server");
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
}

/// Reads a response head; returns it and whatever body bytes came with it.
fn read_head(stream: &mut UnixStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let head_len = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = response.parse(&buf).expect("valid head") {
            break len;
        }
        read_some(stream, &mut buf);
    };
    let rest = buf.split_off(head_len);
    (String::from_utf8(buf).unwrap(), rest)
}

/// Reads one HTTP response (framed by Content-Length or chunked) and returns its head and body.
fn read_response(stream: &mut UnixStream) -> (String, Vec<u8>) {
    let (head, mut rest) = read_head(stream);
    let lower = head.to_ascii_lowercase();
    if let Some(line) = lower.lines().find(|l| l.starts_with("content-length:")) {
        let len: usize = line["content-length:".len()..].trim().parse().unwrap();
        while rest.len() < len {
            read_some(stream, &mut rest);
        }
        assert_eq!(rest.len(), len, "no bytes beyond the body");
        return (head, rest);
    }
    assert!(
        lower.contains("transfer-encoding: chunked"),
        "framed response: {head}"
    );
    let (body, _) = dechunk(stream, rest);
    (head, body)
}

/// Decodes a chunked body from `buf` plus further reads; returns the body and chunk sizes.
fn dechunk(stream: &mut UnixStream, mut buf: Vec<u8>) -> (Vec<u8>, Vec<usize>) {
    let mut body = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            read_some(stream, &mut buf);
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
        while buf.len() < line_end + 2 + size + 2 {
            read_some(stream, &mut buf);
        }
        assert_eq!(&buf[line_end + 2 + size..line_end + 4 + size], b"\r\n");
        if size == 0 {
            return (body, sizes);
        }
        body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
        sizes.push(size);
        buf.drain(..line_end + 4 + size);
    }
}

fn read_some(stream: &mut UnixStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).expect("read within the bound");
    assert!(
        n > 0,
        "unexpected end of stream after {:?}",
        String::from_utf8_lossy(buf)
    );
    buf.extend_from_slice(&chunk[..n]);
}

fn read_to_end(stream: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .expect("server closes within the bound");
    out
}

/// Asserts that nothing arrives and the connection stays open for `QUIET`.
fn assert_quiet(stream: &mut UnixStream) {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    stream.set_read_timeout(Some(BOUND)).unwrap();
}

/// Drops the server on another thread and fails if that takes longer than `BOUND` (which would
/// mean a server thread ignores the stop flag).
fn drop_within_bound(server: PluginServer) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(server);
        let _ = done.send(());
    });
    finished
        .recv_timeout(BOUND)
        .expect("server dropped within the bound");
}

#[test]
fn respond_answers_with_content_length_and_records_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 200,
            body: b"{\"ok\":1}".to_vec(),
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let (head, body) = read_response(&mut client);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, b"{\"ok\":1}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let RecordedRequest {
        method,
        target,
        headers,
        body,
        ..
    } = &requests[0];
    assert_eq!(method, "GET");
    assert_eq!(target, "/report?api_version=1&probe_id=1a2b");
    assert_eq!(
        headers,
        &vec![
            ("Host".to_string(), "plugin".to_string()),
            ("User-Agent".to_string(), "test".to_string())
        ]
    );
    assert!(body.is_empty());
    assert_eq!(server.requests()[0].header("host"), Some("plugin"));

    // Keep-alive: a second request on the same connection is answered too.
    client.write_all(GET_REPORT).unwrap();
    assert_eq!(read_response(&mut client).1, b"{\"ok\":1}");
    assert_eq!(server.request_count(), 2);
}

#[test]
fn request_body_is_read_by_content_length_even_when_split() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 200,
            body: vec![],
        },
    );
    let mut client = connect(&server);
    client
        .write_all(b"POST /control?api_version=1&probe_id=1a2b HTTP/1.1\r\nHost: plugin\r\nContent-Length: 12\r\n\r\n{\"Node")
        .unwrap();
    assert!(
        !server.wait_for_requests(1, QUIET),
        "recorded before the body was complete"
    );
    client.write_all(b"ID\":1}").unwrap();
    assert!(server.wait_for_requests(1, BOUND));
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/control?api_version=1&probe_id=1a2b");
    assert_eq!(request.body, b"{\"NodeID\":1}");
    assert_eq!(read_response(&mut client).1, b"");
}

#[test]
fn status_lines_use_go_reason_phrases() {
    assert_eq!(status_line(200), "HTTP/1.1 200 OK\r\n");
    assert_eq!(status_line(204), "HTTP/1.1 204 No Content\r\n");
    assert_eq!(status_line(500), "HTTP/1.1 500 Internal Server Error\r\n");
    assert_eq!(status_line(599), "HTTP/1.1 599 status code 599\r\n");

    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 404,
            body: b"nope".to_vec(),
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let (head, body) = read_response(&mut client);
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert_eq!(body, b"nope");
}

#[test]
fn chunked_sends_the_body_in_chunks_of_the_given_size() {
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..100u8).collect();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Chunked {
            status: 200,
            body: body.clone(),
            chunk: 30,
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        read_some(&mut client, &mut buf);
    }
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let rest = buf.split_off(split);
    let head = String::from_utf8(buf).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    let (got, sizes) = dechunk(&mut client, rest);
    assert_eq!(got, body);
    assert_eq!(sizes, vec![30, 30, 30, 10]);
}

#[test]
fn http10_has_no_length_and_closes_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Http10 {
            body: b"{}".to_vec(),
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let all = String::from_utf8(read_to_end(&mut client)).unwrap();
    assert!(all.starts_with("HTTP/1.0 200 OK\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\n{}"), "{all}");
    assert!(
        !all.to_ascii_lowercase().contains("content-length"),
        "{all}"
    );
}

#[test]
fn never_close_answers_then_keeps_the_connection_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::NeverClose {
            body: b"{\"a\":1}".to_vec(),
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    assert_eq!(read_response(&mut client).1, b"{\"a\":1}");
    assert_quiet(&mut client);
    drop_within_bound(server);
    assert_eq!(read_to_end(&mut client), b"", "closed by the drop");
}

#[test]
fn hang_records_the_request_and_does_not_block_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(&socket_path(&dir, "p.sock"), Behaviour::Hang);
    let mut hung = connect(&server);
    hung.write_all(GET_REPORT).unwrap();
    assert!(server.wait_for_requests(1, BOUND));
    assert_quiet(&mut hung);

    server.set_behaviour(Behaviour::Respond {
        status: 200,
        body: b"later".to_vec(),
    });
    let mut other = connect(&server);
    other.write_all(GET_REPORT).unwrap();
    assert_eq!(read_response(&mut other).1, b"later");

    drop_within_bound(server);
    assert_eq!(
        read_to_end(&mut hung),
        b"",
        "the hung connection ends with the server"
    );
}

#[test]
fn drip_sends_the_head_at_once_and_the_body_byte_by_byte() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(30);
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Drip {
            body: b"abcde".to_vec(),
            every,
        },
    );
    let mut client = connect(&server);
    let sent = Instant::now();
    client.write_all(GET_REPORT).unwrap();
    let (head, body) = read_response(&mut client);
    assert!(head.contains("Content-Length: 5\r\n"), "{head}");
    assert_eq!(body, b"abcde");
    assert!(
        sent.elapsed() >= every * 5,
        "body took {:?}",
        sent.elapsed()
    );
}

#[test]
fn a_dripping_connection_ends_when_the_server_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Drip {
            body: vec![b'x'; 1000],
            every: Duration::from_secs(1),
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    // The head must have arrived before the drop: the request is recorded before the head is
    // written, so waiting on the request alone races with the drop on a loaded machine.
    let (head, mut body) = read_head(&mut client);
    assert!(head.contains("Content-Length: 1000\r\n"), "{head}");
    drop_within_bound(server);
    body.extend(read_to_end(&mut client));
    // A loaded machine may let a byte or two drip before the drop; the rest must never come.
    assert!(
        body.len() < 1000,
        "the drip ended with the server: {} body bytes",
        body.len()
    );
}

#[test]
fn close_mid_body_announces_the_whole_length_and_stops_short() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::CloseMidBody {
            body: b"0123456789".to_vec(),
            after: 4,
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let all = String::from_utf8(read_to_end(&mut client)).unwrap();
    assert!(all.contains("Content-Length: 10\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\n0123"), "{all}");
}

#[test]
fn garbage_writes_raw_bytes_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = b"SSH-2.0-OpenSSH\r\n\xff\x00".to_vec();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Garbage(raw.clone()),
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    assert_eq!(read_to_end(&mut client), raw);
}

#[test]
fn dynamic_computes_each_answer_from_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let handler_calls = Arc::clone(&calls);
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Dynamic(Arc::new(move |request: &RecordedRequest| {
            let n = handler_calls.fetch_add(1, Ordering::SeqCst) + 1;
            let status = if request.target.starts_with("/control") {
                500
            } else {
                200
            };
            (status, format!("{} #{n}", request.method).into_bytes())
        })),
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let (head, body) = read_response(&mut client);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, b"GET #1");
    client
        .write_all(b"POST /control HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut client);
    assert!(
        head.starts_with("HTTP/1.1 500 Internal Server Error"),
        "{head}"
    );
    assert_eq!(body, b"POST #2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn connection_close_request_closes_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 200,
            body: b"x".to_vec(),
        },
    );
    let mut client = connect(&server);
    client
        .write_all(b"GET /report HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let all = String::from_utf8(read_to_end(&mut client)).unwrap();
    assert!(
        all.starts_with("HTTP/1.1 200 OK\r\n") && all.ends_with("\r\n\r\nx"),
        "{all}"
    );
}

#[test]
fn wait_for_requests_gives_up_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(&socket_path(&dir, "p.sock"), Behaviour::Hang);
    let start = Instant::now();
    assert!(!server.wait_for_requests(1, QUIET));
    assert!(start.elapsed() >= QUIET);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn start_creates_parent_dirs_and_drop_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins/nested/p.sock");
    let server = PluginServer::start(&path, Behaviour::Hang);
    assert_eq!(server.path(), path);
    assert!(path.exists());
    drop_within_bound(server);
    assert!(!path.exists());
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn drop_leaves_a_newer_socket_at_the_same_path_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir, "p.sock");
    let old = PluginServer::start(&path, Behaviour::Hang);
    std::fs::remove_file(&path).unwrap();
    let new = PluginServer::start(
        &path,
        Behaviour::Respond {
            status: 200,
            body: b"new".to_vec(),
        },
    );
    drop_within_bound(old);
    let mut client = connect(&new);
    client.write_all(GET_REPORT).unwrap();
    assert_eq!(read_response(&mut client).1, b"new");
}

#[test]
fn a_client_that_stops_reading_a_large_body_does_not_keep_the_server_alive() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 200,
            body: vec![b' '; 8 << 20],
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    let mut start = Vec::new();
    read_some(&mut client, &mut start);
    assert!(start.starts_with(b"HTTP/1.1 200 OK\r\n"));
    drop(client);
    drop_within_bound(server);
}

#[test]
fn a_stopped_server_with_a_blocked_writer_still_drops() {
    let dir = tempfile::tempdir().unwrap();
    let server = PluginServer::start(
        &socket_path(&dir, "p.sock"),
        Behaviour::Respond {
            status: 200,
            body: vec![b' '; 8 << 20],
        },
    );
    let mut client = connect(&server);
    client.write_all(GET_REPORT).unwrap();
    assert!(server.wait_for_requests(1, BOUND));
    // The client never reads, so the server's writes block on a full socket buffer.
    drop_within_bound(server);
    let received = read_to_end(&mut client);
    assert!(
        received.len() < (8 << 20),
        "the body was cut short by the drop"
    );
}
