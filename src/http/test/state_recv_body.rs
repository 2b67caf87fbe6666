//! Tests for the RecvBody state: by Content-Length, chunked and until EOF.

use super::scenario::*;
use crate::http::{Error, Limits, Progress};

// Content-Length.

#[test]
fn length_body_across_reads() {
    let mut call = call_recv_body_length(5, Limits::default());
    assert_eq!(call.handle_input(b""), Ok((0, Progress::NeedMore)));
    assert_eq!(call.handle_input(b"he"), Ok((2, Progress::NeedMore)));
    assert_eq!(call.body_len(), 2);
    assert_eq!(call.handle_input(b"llo"), Ok((3, Progress::Done)));
    assert_eq!(call.take_body(), b"hello");
}

#[test]
fn length_body_leaves_bytes_after_it() {
    // A server that keeps the connection open and sends more: the call ends at the length.
    let mut call = call_recv_body_length(2, Limits::default());
    assert_eq!(call.handle_input(b"{}HTTP/1.1"), Ok((2, Progress::Done)));
    assert_eq!(call.take_body(), b"{}");
}

#[test]
fn length_body_is_reserved_up_front() {
    let mut call = call_recv_body_length(4096, Limits::default());
    assert_eq!(call.handle_input(&[7; 100]), Ok((100, Progress::NeedMore)));
    let body = call.take_body();
    assert!(body.capacity() >= 4096);
}

#[test]
fn length_body_of_exactly_the_limit() {
    let limits = small_limits();
    let mut call = call_recv_body_length(16, limits);
    assert_eq!(call.handle_input(&[b'x'; 16]), Ok((16, Progress::Done)));
    assert_eq!(call.take_body().len(), 16);
}

#[test]
fn eof_inside_a_length_body() {
    let mut call = call_recv_body_length(4096, Limits::default());
    call.handle_input(&[0; 120]).unwrap();
    let err = call.handle_eof().unwrap_err();
    assert_eq!(
        err,
        Error::BodyCutShort {
            received: 120,
            expected: 4096
        }
    );
    assert_eq!(
        err.to_string(),
        "connection closed after 120 of 4096 body bytes"
    );
    assert!(!call.wants_read());
    assert_eq!(call.handle_eof(), Err(err.clone()));
    assert_eq!(call.handle_input(b"late"), Err(err));
}

// Chunked.

#[test]
fn chunked_body_across_reads() {
    let mut call = call_recv_body_chunked(Limits::default());
    assert_eq!(call.handle_input(b"3\r\nab"), Ok((5, Progress::NeedMore)));
    assert_eq!(call.handle_input(b"c\r\n0\r"), Ok((5, Progress::NeedMore)));
    assert_eq!(call.handle_input(b"\n\r\nrest"), Ok((3, Progress::Done)));
    assert_eq!(call.take_body(), b"abc");
}

#[test]
fn chunked_body_over_the_limit_by_running_total() {
    let mut call = call_recv_body_chunked(small_limits());
    assert_eq!(
        call.handle_input(b"a\r\n0123456789\r\n"),
        Ok((15, Progress::NeedMore))
    );
    // 10 + 6 is exactly the limit.
    assert_eq!(
        call.handle_input(b"6\r\nabcdef\r\n"),
        Ok((11, Progress::NeedMore))
    );
    let err = call.handle_input(b"1\r\n").unwrap_err();
    assert_eq!(err, Error::BodyTooLarge { limit: 16 });
    assert_eq!(err.to_string(), "response must be shorter than 50MB");
    // The head survives for the status check (spec §7.4 step 2 before 3).
    assert_eq!(call.response().unwrap().status, 200);
}

#[test]
fn chunked_body_with_bad_size() {
    let mut call = call_recv_body_chunked(Limits::default());
    let err = call.handle_input(b"zz\r\n").unwrap_err();
    assert_eq!(err, Error::InvalidChunkSize);
    assert_eq!(err.to_string(), "invalid chunk size");
}

#[test]
fn chunked_body_missing_crlf() {
    let mut call = call_recv_body_chunked(Limits::default());
    let err = call.handle_input(b"2\r\nabc").unwrap_err();
    assert_eq!(err, Error::MalformedChunkedEncoding);
}

#[test]
fn chunked_size_line_too_long() {
    let mut call = call_recv_body_chunked(Limits::default());
    let mut wire = b"1;".to_vec();
    wire.resize(5000, b'x');
    assert_eq!(call.handle_input(&wire), Err(Error::ChunkLineTooLong));
}

#[test]
fn chunked_trailers_bounded_by_the_head_limit() {
    let mut call = call_recv_body_chunked(small_limits());
    let mut wire = b"0\r\nX-Trailer: ".to_vec();
    wire.resize(200, b't');
    assert_eq!(
        call.handle_input(&wire),
        Err(Error::TrailersTooLarge { limit: 128 })
    );
}

#[test]
fn eof_at_every_point_of_a_chunked_body() {
    let body = b"4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\n";
    for end in 0..body.len() {
        let mut call = call_recv_body_chunked(Limits::default());
        let out = drive(&mut call, &[&body[..end]], true);
        let received = call.body_len() as u64;
        assert_eq!(
            out.result,
            Err(Error::ChunkedBodyCutShort { received }),
            "cut at {end}"
        );
        assert!(out.leftover.is_empty());
    }
    let err = Error::ChunkedBodyCutShort { received: 4 };
    assert_eq!(
        err.to_string(),
        "connection closed after 4 body bytes, before the last chunk"
    );
}

// Until EOF.

#[test]
fn until_eof_body_ends_at_eof() {
    let mut call = call_recv_body_until_eof(Limits::default());
    assert_eq!(call.handle_input(b"plain "), Ok((6, Progress::NeedMore)));
    assert_eq!(call.handle_input(b"text"), Ok((4, Progress::NeedMore)));
    assert!(call.wants_read());
    assert_eq!(call.handle_eof(), Ok(Progress::Done));
    assert!(call.is_done());
    assert_eq!(call.take_body(), b"plain text");
}

#[test]
fn until_eof_empty_body() {
    let mut call = call_recv_body_until_eof(Limits::default());
    assert_eq!(call.handle_eof(), Ok(Progress::Done));
    assert!(call.take_body().is_empty());
}

#[test]
fn until_eof_over_the_limit_by_running_total() {
    let mut call = call_recv_body_until_eof(small_limits());
    assert_eq!(call.handle_input(&[b'a'; 10]), Ok((10, Progress::NeedMore)));
    assert_eq!(call.handle_input(&[b'b'; 6]), Ok((6, Progress::NeedMore)));
    assert_eq!(
        call.handle_input(b"c"),
        Err(Error::BodyTooLarge { limit: 16 })
    );
    assert!(!call.wants_read());
    // A late EOF does not turn the failure into success.
    assert_eq!(call.handle_eof(), Err(Error::BodyTooLarge { limit: 16 }));
}

#[test]
fn until_eof_exactly_the_limit() {
    let mut call = call_recv_body_until_eof(small_limits());
    assert_eq!(call.handle_input(&[b'a'; 16]), Ok((16, Progress::NeedMore)));
    assert_eq!(call.handle_eof(), Ok(Progress::Done));
    assert_eq!(call.take_body().len(), 16);
}

#[test]
fn until_eof_over_the_limit_in_one_read() {
    let mut call = call_recv_body_until_eof(small_limits());
    assert_eq!(
        call.handle_input(&[b'a'; 17]),
        Err(Error::BodyTooLarge { limit: 16 })
    );
}

#[test]
fn default_body_limit_by_running_total() {
    // A 50 MiB body in 1 MiB reads is fine; one more byte is not.
    let mut call = call_recv_body_until_eof(Limits::default());
    let mib = vec![b'x'; 1 << 20];
    for _ in 0..50 {
        assert_eq!(call.handle_input(&mib), Ok((mib.len(), Progress::NeedMore)));
    }
    assert_eq!(
        call.handle_input(b"!"),
        Err(Error::BodyTooLarge { limit: 52_428_800 })
    );
}
