//! Tests for the end states: Done and Failed.

use super::scenario::*;
use crate::http::{Error, Progress};

#[test]
fn done_takes_no_more_input() {
    let mut call = call_done();
    assert!(call.is_done());
    assert!(!call.wants_read());
    assert!(!call.wants_write());
    assert_eq!(call.handle_input(b"more bytes"), Ok((0, Progress::Done)));
    assert_eq!(call.handle_eof(), Ok(Progress::Done));
    assert!(call.error().is_none());
}

#[test]
fn done_hands_over_head_and_body() {
    let mut call = call_done();
    assert_eq!(call.response().unwrap().status_string(), "200 OK");
    assert_eq!(call.take_body(), b"{}");
    // Taken once.
    assert!(call.take_body().is_empty());
}

#[test]
fn failed_repeats_its_error() {
    let mut call = call_failed();
    let err = Error::InvalidHead(httparse::Error::Version);
    assert_eq!(call.error(), Some(&err));
    assert!(!call.is_done());
    assert!(!call.wants_read());
    assert!(!call.wants_write());
    assert_eq!(
        call.handle_input(b"HTTP/1.1 200 OK\r\n\r\n"),
        Err(err.clone())
    );
    assert_eq!(call.handle_eof(), Err(err));
}

#[test]
fn failed_before_writing_drops_the_output() {
    let mut call = call_send_request();
    assert!(call.wants_write());
    let _ = call.handle_input(b"HTTP/9.9");
    assert!(call.pending_output().is_empty());
}

#[test]
fn a_call_stays_small() {
    // A plugin host may hold 1000 calls in flight; the call itself is a few words plus its
    // buffers (the head is boxed, the chunk decoder is a few counters).
    let size = std::mem::size_of::<crate::http::Call>();
    assert!(size <= 160, "Call is {size} bytes");
}
