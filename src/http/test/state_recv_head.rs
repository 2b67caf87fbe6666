//! Tests for the RecvHead state: heads, interim responses, bounds and garbage.

use super::scenario::*;
use crate::http::{Error, Limits, Progress, Version};

#[test]
fn partial_head_consumes_nothing() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    for end in 0..wire.len() {
        assert_eq!(call.handle_input(&wire[..end]), Ok((0, Progress::NeedMore)));
        assert!(call.response().is_none());
    }
    assert_eq!(
        call.handle_input(wire),
        Ok((wire.len(), Progress::NeedMore))
    );
    assert_eq!(call.response().unwrap().status, 200);
}

#[test]
fn head_fields_are_kept_as_sent() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.0 503 Try Later\r\nContent-Type: text/plain\r\nX-Empty:\r\n\r\n";
    call.handle_input(wire).unwrap();
    let head = call.response().unwrap();
    assert_eq!(head.status, 503);
    assert_eq!(&*head.reason, "Try Later");
    assert_eq!(head.version, Version::Http10);
    assert_eq!(head.header("content-type"), Some(&b"text/plain"[..]));
    assert_eq!(head.header("x-empty"), Some(&b""[..]));
    assert_eq!(head.status_string(), "503 Try Later");
}

#[test]
fn content_length_zero_is_done_at_the_head() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra";
    assert_eq!(
        call.handle_input(wire),
        Ok((wire.len() - 5, Progress::Done))
    );
    assert!(call.take_body().is_empty());
}

#[test]
fn no_body_statuses_ignore_content_length() {
    for status in ["204 No Content", "304 Not Modified"] {
        let mut call = call_recv_head();
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
        let mut wire = head.clone().into_bytes();
        wire.extend_from_slice(b"0123456789");
        assert_eq!(call.handle_input(&wire), Ok((head.len(), Progress::Done)));
        assert!(call.take_body().is_empty());
    }
}

#[test]
fn interim_responses_are_skipped_in_one_read() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                 HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    assert_eq!(call.handle_input(wire), Ok((wire.len(), Progress::Done)));
    let head = call.response().unwrap();
    assert_eq!(head.status, 200);
    assert!(head.header("link").is_none());
    assert_eq!(call.take_body(), b"x");
}

#[test]
fn interim_head_then_partial_consumes_the_interim_head() {
    let mut call = call_recv_head();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut wire = interim.to_vec();
    wire.extend_from_slice(b"HTTP/1.1 2");
    assert_eq!(
        call.handle_input(&wire),
        Ok((interim.len(), Progress::NeedMore))
    );
    assert!(call.response().is_none());
}

#[test]
fn five_interim_responses_are_fine_six_are_not() {
    let interim = "HTTP/1.1 100 Continue\r\n\r\n";
    let final_head = "HTTP/1.1 204 No Content\r\n\r\n";
    let mut call = call_recv_head();
    let wire = interim.repeat(5) + final_head;
    assert_eq!(
        call.handle_input(wire.as_bytes()),
        Ok((wire.len(), Progress::Done))
    );
    let mut call = call_recv_head();
    let wire = interim.repeat(6) + final_head;
    assert_eq!(
        call.handle_input(wire.as_bytes()),
        Err(Error::TooManyInterimResponses)
    );
}

#[test]
fn switching_protocols_without_upgrade_is_an_error() {
    let mut call = call_recv_head();
    assert_eq!(
        call.handle_input(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
        Err(Error::UnexpectedSwitchingProtocols)
    );
}

#[test]
fn upgrade_ends_after_the_101_head_and_leaves_frames() {
    let mut call = call_recv_head_upgrade();
    let head =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let mut wire = head.to_vec();
    wire.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    assert_eq!(call.handle_input(&wire), Ok((head.len(), Progress::Done)));
    assert!(call.is_done() && !call.wants_read());
    assert_eq!(call.response().unwrap().status, 101);
}

#[test]
fn upgrade_refused_is_a_normal_response() {
    let mut call = call_recv_head_upgrade();
    let wire = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
    assert_eq!(call.handle_input(wire), Ok((wire.len(), Progress::Done)));
    assert_eq!(call.response().unwrap().status_string(), "404 Not Found");
    assert_eq!(call.take_body(), b"not found");
}

#[test]
fn upgrade_skips_100_continue_first() {
    let mut call = call_recv_head_upgrade();
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n";
    assert_eq!(call.handle_input(wire), Ok((wire.len(), Progress::Done)));
    assert_eq!(call.response().unwrap().status, 101);
}

#[test]
fn head_too_large_while_partial() {
    let limits = Limits {
        max_head_bytes: 64,
        ..Limits::default()
    };
    let mut call = call_recv_head_with(limits);
    let mut wire = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    wire.resize(63, b'a');
    assert_eq!(call.handle_input(&wire), Ok((0, Progress::NeedMore)));
    wire.push(b'a');
    assert_eq!(
        call.handle_input(&wire),
        Err(Error::HeadTooLarge { limit: 64 })
    );
    assert_eq!(
        call.error().map(ToString::to_string).as_deref(),
        Some("response head larger than 64 bytes")
    );
}

#[test]
fn head_of_exactly_the_limit_is_fine_one_more_is_not() {
    let head = |len: usize| {
        let mut h = b"HTTP/1.1 204 No Content\r\nX: ".to_vec();
        h.resize(len - 4, b'a');
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    let limits = Limits {
        max_head_bytes: 100,
        ..Limits::default()
    };
    let wire = head(100);
    let mut call = call_recv_head_with(limits);
    assert_eq!(call.handle_input(&wire), Ok((100, Progress::Done)));

    let wire = head(101);
    let mut call = call_recv_head_with(limits);
    assert_eq!(
        call.handle_input(&wire),
        Err(Error::HeadTooLarge { limit: 100 })
    );
}

#[test]
fn default_head_limit_is_64_kib() {
    let mut call = call_recv_head();
    let mut wire = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    wire.resize(65536, b'a');
    assert_eq!(
        call.handle_input(&wire),
        Err(Error::HeadTooLarge { limit: 65536 })
    );
    assert_eq!(
        call.error().unwrap().to_string(),
        "response head larger than 65536 bytes"
    );
}

#[test]
fn too_many_headers() {
    let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..65 {
        wire.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    let mut call = call_recv_head();
    assert_eq!(
        call.handle_input(&wire),
        Err(Error::TooManyHeaders { limit: 64 })
    );
    assert_eq!(
        call.error().unwrap().to_string(),
        "too many response headers (more than 64)"
    );
    // Detected before the head is complete.
    let mut call = call_recv_head();
    assert_eq!(
        call.handle_input(&wire[..wire.len() - 2]),
        Err(Error::TooManyHeaders { limit: 64 })
    );
}

#[test]
fn sixty_four_headers_are_fine() {
    let mut wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".to_vec();
    for i in 0..63 {
        wire.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    let mut call = call_recv_head();
    assert_eq!(call.handle_input(&wire), Ok((wire.len(), Progress::Done)));
    assert_eq!(call.response().unwrap().headers.len(), 64);
}

#[test]
fn garbage_heads() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"SSH-2.0-OpenSSH_9.6\r\n",
            "invalid response head: invalid HTTP version",
        ),
        (
            b"HTTP/2 200 OK\r\n\r\n",
            "invalid response head: invalid HTTP version",
        ),
        (
            b"HTTP/1.1 20 OK\r\n\r\n",
            "invalid response head: invalid response status",
        ),
        (
            b"HTTP/1.1 abc OK\r\n\r\n",
            "invalid response head: invalid response status",
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "invalid response head: invalid header name",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
            "invalid response head: invalid header value",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            "invalid response head: invalid HTTP version",
        ),
        (
            b"{\"Plugins\":[]}",
            "invalid response head: invalid HTTP version",
        ),
    ];
    for (wire, text) in cases {
        let mut call = call_recv_head();
        let err = call.handle_input(wire).unwrap_err();
        assert_eq!(
            err.to_string(),
            *text,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
        assert!(!call.wants_read());
        assert!(call.response().is_none());
    }
}

#[test]
fn invalid_content_length() {
    let mut call = call_recv_head();
    assert_eq!(
        call.handle_input(b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"),
        Err(Error::InvalidContentLength)
    );
    assert_eq!(call.error().unwrap().to_string(), "invalid Content-Length");
    // The head was complete, so the caller can still see it.
    assert_eq!(call.response().unwrap().status, 200);
}

#[test]
fn unsupported_transfer_encoding() {
    let mut call = call_recv_head();
    assert_eq!(
        call.handle_input(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        Err(Error::UnsupportedTransferEncoding("gzip".into()))
    );
}

#[test]
fn content_length_over_the_limit_fails_at_the_head() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 52428801\r\n\r\n";
    assert_eq!(
        call.handle_input(wire),
        Err(Error::BodyTooLarge { limit: 52_428_800 })
    );
    assert_eq!(
        call.error().unwrap().to_string(),
        "response must be shorter than 50MB"
    );
    // spec §7.4 checks the status before the size; the head is still there for that.
    assert_eq!(call.response().unwrap().status, 200);
}

#[test]
fn content_length_of_exactly_the_limit_reserves_the_body() {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 52428800\r\n\r\n";
    assert_eq!(
        call.handle_input(wire),
        Ok((wire.len(), Progress::NeedMore))
    );
    let body = call.take_body();
    assert!(body.is_empty());
    assert!(body.capacity() >= 52_428_800);
}

#[test]
fn eof_before_any_byte() {
    let mut call = call_recv_head();
    assert_eq!(call.handle_eof(), Err(Error::HeadCutShort));
    assert_eq!(
        call.error().unwrap().to_string(),
        "connection closed before the response head was complete"
    );
}

#[test]
fn eof_before_the_request_was_written() {
    let mut call = call_send_request();
    assert_eq!(call.handle_eof(), Err(Error::HeadCutShort));
    assert!(!call.wants_write());
}

#[test]
fn eof_at_every_point_of_a_head() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    let final_start = b"HTTP/1.1 100 Continue\r\n\r\n".len();
    for end in 0..wire.len() {
        let mut call = call_recv_head();
        let out = drive(&mut call, &[&wire[..end]], true);
        assert_eq!(out.result, Err(Error::HeadCutShort), "cut at {end}");
        // Only a complete interim head is consumed.
        let expected_leftover = if end >= final_start {
            &wire[final_start..end]
        } else {
            &wire[..end]
        };
        assert_eq!(out.leftover, expected_leftover);
    }
}

#[test]
fn a_long_head_dripped_byte_by_byte() {
    let prefix = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Big: ";
    let mut wire = prefix.to_vec();
    wire.resize(60_000, b'v');
    wire.extend_from_slice(b"\r\n\r\n!");
    let mut call = call_recv_head();
    let out = drive(&mut call, &byte_splits(&wire), false);
    assert_eq!(out.result, Ok(Progress::Done));
    let big = call.response().unwrap().header("x-big").unwrap();
    assert_eq!(big.len(), 60_000 - prefix.len());
    assert_eq!(call.take_body(), b"!");
}

#[test]
fn garbage_dripped_byte_by_byte_is_caught_early() {
    // No end of head ever comes; the error must not wait for the head limit or EOF. A partial
    // head is parsed again each time its length passes a power of two: the bad name (bytes
    // 17..25) is seen at 32 bytes.
    for wire in [&b"SSH-2.0-"[..], b"HTTP/1.1 200 OK\r\nBad Name: 0123456789"] {
        let mut call = call_recv_head();
        let out = drive(&mut call, &byte_splits(wire), false);
        assert!(out.result.is_err(), "{out:?}");
    }
}
