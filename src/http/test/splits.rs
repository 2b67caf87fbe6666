//! Whole responses fed split at every byte position (two and three pieces), one byte per read,
//! and at pseudo-random cuts. Each must give the same head, body and leftover bytes.

use super::scenario::*;
use crate::http::{Call, Error, Limits, Progress, Version};

/// Checks that every cut of `wire` completes with `status` and `body`, leaving `leftover`.
fn assert_all_splits(
    make: impl Fn() -> Call,
    wire: &[u8],
    eof: bool,
    status: u16,
    body: &[u8],
    leftover: &[u8],
) {
    for_all_splits(make, wire, eof, |call, out, pieces| {
        assert_eq!(out.result, Ok(Progress::Done), "pieces {pieces:?}");
        assert!(call.is_done());
        assert_eq!(call.response().map(|r| r.status), Some(status));
        assert_eq!(call.take_body(), body, "pieces {pieces:?}");
        assert_eq!(out.leftover, leftover, "pieces {pieces:?}");
    });
}

/// Checks that every cut of `wire` fails with `err`.
fn assert_all_splits_fail(make: impl Fn() -> Call, wire: &[u8], eof: bool, err: Error) {
    for_all_splits(make, wire, eof, |call, out, pieces| {
        assert_eq!(out.result, Err(err.clone()), "pieces {pieces:?}");
        assert!(!call.wants_read());
    });
}

#[test]
fn content_length() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"Plugins\":[]}";
    assert_all_splits(call_recv_head, wire, false, 200, br#"{"Plugins":[]}"#, b"");
}

#[test]
fn content_length_from_a_server_that_never_closes() {
    // No EOF, and trailing bytes that are not ours.
    let wire =
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabcGARBAGE";
    assert_all_splits(call_recv_head, wire, false, 200, b"abc", b"GARBAGE");
}

#[test]
fn chunked() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 4\r\nwiki\r\n5;ext=\"a b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
    assert_all_splits(
        call_recv_head,
        wire,
        false,
        200,
        b"wikipedia in\r\n\r\nchunks.",
        b"",
    );
}

#[test]
fn until_eof() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length, read to close";
    assert_all_splits(
        call_recv_head,
        wire,
        true,
        200,
        b"no length, read to close",
        b"",
    );
}

#[test]
fn http_1_0() {
    let wire = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\n\r\n{\"a\":1}";
    assert_all_splits(call_recv_head, wire, true, 200, br#"{"a":1}"#, b"");
    for_all_splits(call_recv_head, wire, true, |call, _, _| {
        assert_eq!(call.response().unwrap().version, Version::Http10);
    });
    let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT";
    assert_all_splits(call_recv_head, wire, false, 200, b"ok", b"NEXT");
}

#[test]
fn upgrade_101_with_trailing_frames() {
    let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello\x89\x00";
    assert_all_splits(
        call_recv_head_upgrade,
        wire,
        false,
        101,
        b"",
        b"\x81\x05hello\x89\x00",
    );
}

#[test]
fn continue_then_final_response() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    assert_all_splits(call_recv_head, wire, false, 200, b"{}", b"");
}

#[test]
fn no_content() {
    let wire = b"HTTP/1.1 204 No Content\r\nDate: Sun, 22 Nov 2026 02:00:00 GMT\r\n\r\n";
    assert_all_splits(call_recv_head, wire, false, 204, b"", b"");
}

#[test]
fn non_200_with_body() {
    let wire = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops\n";
    assert_all_splits(call_recv_head, wire, false, 500, b"oops\n", b"");
}

#[test]
fn oversize_by_header() {
    let limits = small_limits();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n01234567890123456";
    assert_all_splits_fail(
        || call_recv_head_with(limits),
        wire,
        false,
        Error::BodyTooLarge { limit: 16 },
    );
}

#[test]
fn oversize_by_running_total_chunked() {
    let limits = small_limits();
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n1\r\nx\r\n0\r\n\r\n";
    assert_all_splits_fail(
        || call_recv_head_with(limits),
        wire,
        true,
        Error::BodyTooLarge { limit: 16 },
    );
}

#[test]
fn oversize_by_running_total_until_eof() {
    let limits = small_limits();
    let wire = b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdefX";
    assert_all_splits_fail(
        || call_recv_head_with(limits),
        wire,
        true,
        Error::BodyTooLarge { limit: 16 },
    );
    // One byte less is exactly the limit.
    let wire = b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdef";
    assert_all_splits(
        || call_recv_head_with(limits),
        wire,
        true,
        200,
        b"0123456789abcdef",
        b"",
    );
}

#[test]
fn head_too_large_at_every_split() {
    let limits = Limits {
        max_head_bytes: 40,
        ..Limits::default()
    };
    let wire = b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    assert_all_splits_fail(
        || call_recv_head_with(limits),
        wire,
        true,
        Error::HeadTooLarge { limit: 40 },
    );
}

#[test]
fn garbage_at_every_split() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\n{}";
    assert_all_splits_fail(
        call_recv_head,
        wire,
        true,
        Error::InvalidHead(httparse::Error::HeaderName),
    );
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY";
    assert_all_splits_fail(call_recv_head, wire, true, Error::MalformedChunkedEncoding);
}

#[test]
fn eof_cuts_at_every_byte() {
    // Whatever the phase when the peer closes, the error says what was cut short.
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    let head_len = wire.len() - 4;
    for end in 0..wire.len() {
        let mut call = call_recv_head();
        let out = drive(&mut call, &[&wire[..end]], true);
        let expected = if end < head_len {
            Error::HeadCutShort
        } else {
            Error::BodyCutShort {
                received: (end - head_len) as u64,
                expected: 4,
            }
        };
        assert_eq!(out.result, Err(expected), "cut at {end}");
    }
}
