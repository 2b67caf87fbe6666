//! Property tests: arbitrary bytes in every state never panic and never consume more than
//! offered, and any chunking of any body, read in any pieces, decodes to that body.

use super::scenario::*;
use crate::http::{Call, Limits, Progress};
use proptest::collection::vec;
use proptest::prelude::*;

/// Cuts `wire` at the given positions (taken modulo its length, sorted).
fn cut<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for end in at.into_iter().chain([wire.len()]) {
        pieces.push(&wire[start..end]);
        start = end;
    }
    pieces
}

/// A call in each state that reads input.
fn calls_in_every_state() -> Vec<Call> {
    vec![
        call_send_request(),
        call_recv_head(),
        call_recv_head_upgrade(),
        call_recv_body_length(40, Limits::default()),
        call_recv_body_chunked(small_limits()),
        call_recv_body_until_eof(small_limits()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_in_every_state(
        input in vec(any::<u8>(), 0..300),
        cuts in vec(any::<usize>(), 0..6),
        eof in any::<bool>(),
    ) {
        for mut call in calls_in_every_state() {
            // `drive` asserts that no more is consumed than offered.
            let out = drive(&mut call, &cut(&input, &cuts), eof);
            match out.result {
                Ok(Progress::Done) => prop_assert!(call.is_done() && !call.wants_read()),
                Ok(Progress::NeedMore) => prop_assert!(call.wants_read()),
                Err(e) => {
                    prop_assert!(!call.wants_read() && !call.wants_write());
                    prop_assert_eq!(call.error(), Some(&e));
                    let text = e.to_string();
                    prop_assert!(!text.is_empty() && !text.ends_with('.'));
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_plausible_head(
        status in 100u16..600,
        header in "[A-Za-z-]{1,12}: [ -~]{0,20}",
        rest in vec(any::<u8>(), 0..200),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let mut wire = format!("HTTP/1.1 {status} X\r\n{header}\r\n").into_bytes();
        wire.extend_from_slice(&rest);
        let mut call = call_recv_head();
        let out = drive(&mut call, &cut(&wire, &cuts), true);
        prop_assert!(out.result.is_ok() || call.error().is_some());
    }

    #[test]
    fn any_chunking_decodes_to_the_body(
        body in vec(any::<u8>(), 0..400),
        sizes in vec(1usize..50, 1..20),
        upper in any::<bool>(),
        cuts in vec(any::<usize>(), 0..10),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let size = if upper { format!("{n:X}") } else { format!("{n:x}") };
            wire.extend_from_slice(size.as_bytes());
            if i % 3 == 1 {
                wire.extend_from_slice(b" ;ext=1");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(b"0\r\nTrailer: x\r\n\r\nAFTER");
        let mut call = call_recv_head();
        let out = drive(&mut call, &cut(&wire, &cuts), false);
        prop_assert_eq!(out.result, Ok(Progress::Done));
        prop_assert_eq!(out.leftover, b"AFTER".to_vec());
        prop_assert_eq!(call.take_body(), body);
    }
}
