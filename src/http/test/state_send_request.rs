//! Tests for sending the request: serialisation and the output cursor.

use super::scenario::*;
use crate::http::{Call, Limits, Method, Progress, Request};

fn wire(call: &Call) -> String {
    String::from_utf8(call.pending_output().to_vec()).unwrap()
}

#[test]
fn get_is_serialised_with_host_and_connection_close() {
    assert_eq!(
        wire(&call_send_request()),
        "GET /report?api_version=1&probe_id=5a HTTP/1.1\r\n\
         Host: plugin\r\n\
         Connection: close\r\n\r\n"
    );
}

#[test]
fn post_carries_headers_content_length_and_body() {
    let req = Request {
        method: Method::Post,
        target: "/control?api_version=1&probe_id=5a",
        host: "plugin",
        headers: &[("Content-Type", "application/json")],
        body: br#"{"AppID":"a"}"#,
    };
    assert_eq!(
        wire(&Call::new(&req, Limits::default())),
        "POST /control?api_version=1&probe_id=5a HTTP/1.1\r\n\
         Host: plugin\r\n\
         Content-Type: application/json\r\n\
         Content-Length: 13\r\n\
         Connection: close\r\n\r\n\
         {\"AppID\":\"a\"}"
    );
}

#[test]
fn empty_post_says_content_length_zero() {
    let req = Request {
        method: Method::Post,
        body: b"",
        ..GET
    };
    assert!(wire(&Call::new(&req, Limits::default())).contains("\r\nContent-Length: 0\r\n"));
}

#[test]
fn get_with_a_body_says_its_length() {
    let req = Request {
        body: b"abc",
        ..GET
    };
    let w = wire(&Call::new(&req, Limits::default()));
    assert!(w.contains("\r\nContent-Length: 3\r\n"));
    assert!(w.ends_with("\r\n\r\nabc"));
}

#[test]
fn binary_body_is_sent_verbatim() {
    let body = [0x1f, 0x8b, 0x08, 0x00, 0xff, 0x0d, 0x0a];
    let req = Request {
        method: Method::Post,
        body: &body,
        ..GET
    };
    let call = Call::new(&req, Limits::default());
    assert!(call.pending_output().ends_with(&body));
}

#[test]
fn upgrade_leaves_connection_to_the_caller() {
    let w = wire(&Call::new_upgrade(&UPGRADE, Limits::default()));
    assert_eq!(
        w,
        "GET /api/control/ws HTTP/1.1\r\n\
         Host: app:4040\r\n\
         Connection: Upgrade\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
}

#[test]
fn empty_target_is_root() {
    let req = Request { target: "", ..GET };
    assert!(wire(&Call::new(&req, Limits::default())).starts_with("GET / HTTP/1.1\r\n"));
}

#[test]
fn line_breaks_in_fields_cannot_split_the_request() {
    let req = Request {
        host: "plugin\r\nX-Evil: 1",
        headers: &[("X-A", "b\nc")],
        ..GET
    };
    let w = wire(&Call::new(&req, Limits::default()));
    assert!(w.contains("Host: plugin  X-Evil: 1\r\n"));
    assert!(w.contains("X-A: b c\r\n"));
    assert_eq!(w.matches("\r\n").count(), 5);
}

#[test]
fn output_drains_in_pieces() {
    let mut call = call_send_request();
    let full = call.pending_output().to_vec();
    assert!(call.wants_write());
    call.consume_output(0);
    assert_eq!(call.pending_output(), &full[..]);
    call.consume_output(4);
    assert_eq!(call.pending_output(), &full[4..]);
    call.consume_output(full.len() - 5);
    assert_eq!(call.pending_output(), &full[full.len() - 1..]);
    assert!(call.wants_write());
    call.consume_output(1);
    assert!(call.pending_output().is_empty());
    assert!(!call.wants_write());
    // Spurious reports after the end change nothing.
    call.consume_output(100);
    assert!(!call.wants_write());
}

#[test]
fn over_consuming_counts_as_all() {
    let mut call = call_send_request();
    call.consume_output(usize::MAX);
    assert!(!call.wants_write());
}

#[test]
fn reads_from_the_start() {
    let call = call_send_request();
    assert!(call.wants_read());
    assert!(!call.is_done());
    assert!(call.response().is_none());
}

#[test]
fn an_early_response_ends_the_write_side() {
    // A server may answer (here 413) before reading the request; once the response is in,
    // there is nothing left to write.
    let req = Request {
        method: Method::Post,
        body: &[b'x'; 1000],
        ..GET
    };
    let mut call = Call::new(&req, Limits::default());
    call.consume_output(10);
    let resp = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(call.handle_input(resp), Ok((resp.len(), Progress::Done)));
    assert_eq!(call.response().unwrap().status, 413);
    assert!(!call.wants_write());
    assert!(call.pending_output().is_empty());
}

#[test]
fn a_failed_call_stops_writing() {
    let mut call = call_send_request();
    assert!(call.handle_input(b"garbage\r\n\r\n").is_err());
    assert!(!call.wants_write());
}
