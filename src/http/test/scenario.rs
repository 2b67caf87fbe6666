//! Fixtures that build a call already in a given state, and a driver that plays the mio loop's
//! part: it keeps a read buffer, offers it, drops what was consumed, and reports EOF.

use crate::http::{Call, Error, Limits, Method, Progress, Request};

pub const GET: Request<'static> = Request {
    method: Method::Get,
    target: "/report?api_version=1&probe_id=5a",
    host: "plugin",
    headers: &[],
    body: b"",
};

pub const UPGRADE: Request<'static> = Request {
    method: Method::Get,
    target: "/api/control/ws",
    host: "app:4040",
    headers: &[
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ],
    body: b"",
};

pub fn small_limits() -> Limits {
    Limits {
        max_body_bytes: 16,
        max_head_bytes: 128,
        max_headers: 4,
    }
}

/// A fresh GET: the request is waiting to be written.
pub fn call_send_request() -> Call {
    Call::new(&GET, Limits::default())
}

/// A GET whose request is written: waiting for the response head.
pub fn call_recv_head() -> Call {
    call_recv_head_with(Limits::default())
}

pub fn call_recv_head_with(limits: Limits) -> Call {
    let mut call = Call::new(&GET, limits);
    write_all(&mut call);
    call
}

/// A websocket handshake whose request is written.
pub fn call_recv_head_upgrade() -> Call {
    let mut call = Call::new_upgrade(&UPGRADE, Limits::default());
    write_all(&mut call);
    call
}

/// Waiting for `len` body bytes announced by Content-Length.
pub fn call_recv_body_length(len: u64, limits: Limits) -> Call {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
    call_after_head(head.as_bytes(), limits)
}

/// Waiting for the first chunk of a chunked body.
pub fn call_recv_body_chunked(limits: Limits) -> Call {
    call_after_head(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        limits,
    )
}

/// Reading a body that ends when the peer closes.
pub fn call_recv_body_until_eof(limits: Limits) -> Call {
    call_after_head(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        limits,
    )
}

/// A completed GET with body `{}`.
pub fn call_done() -> Call {
    let mut call = call_recv_head();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(call.handle_input(wire), Ok((wire.len(), Progress::Done)));
    call
}

/// A GET that failed on a garbage head.
pub fn call_failed() -> Call {
    let mut call = call_recv_head();
    assert!(call.handle_input(b"SSH-2.0-OpenSSH_9.6\r\n").is_err());
    call
}

fn call_after_head(head: &[u8], limits: Limits) -> Call {
    let mut call = call_recv_head_with(limits);
    assert_eq!(
        call.handle_input(head),
        Ok((head.len(), Progress::NeedMore))
    );
    call
}

pub fn write_all(call: &mut Call) {
    let n = call.pending_output().len();
    call.consume_output(n);
    assert!(!call.wants_write());
}

/// What a driven call ended with.
#[derive(Debug)]
pub struct Outcome {
    /// The last progress, or the error.
    pub result: Result<Progress, Error>,
    /// Input bytes the call did not consume (after the response, or a partial head).
    pub leftover: Vec<u8>,
}

/// Feeds `pieces` as successive reads, the way the mio loop does, then EOF if `eof` and the call
/// still wants to read. Stops at the first error or at `Done`.
pub fn drive(call: &mut Call, pieces: &[&[u8]], eof: bool) -> Outcome {
    let mut buf: Vec<u8> = Vec::new();
    let mut result = Ok(Progress::NeedMore);
    let mut pieces = pieces.iter();
    for piece in pieces.by_ref() {
        buf.extend_from_slice(piece);
        match call.handle_input(&buf) {
            Ok((used, progress)) => {
                assert!(used <= buf.len(), "consumed more than offered");
                buf.drain(..used);
                result = Ok(progress);
                if progress == Progress::Done {
                    break;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    for piece in pieces {
        buf.extend_from_slice(piece);
    }
    if eof && result == Ok(Progress::NeedMore) {
        result = call.handle_eof();
    }
    Outcome {
        result,
        leftover: buf,
    }
}

/// Every way to cut `wire` in two.
pub fn two_way_splits(wire: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    (0..=wire.len()).map(move |i| vec![&wire[..i], &wire[i..]])
}

/// Every way to cut `wire` in three.
pub fn three_way_splits(wire: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    (0..=wire.len())
        .flat_map(move |i| (i..=wire.len()).map(move |j| vec![&wire[..i], &wire[i..j], &wire[j..]]))
}

/// One byte per read.
pub fn byte_splits(wire: &[u8]) -> Vec<&[u8]> {
    wire.chunks(1).collect()
}

/// Pseudo-random cuts, reproducible from `seed` (xorshift64; no clock, no rand crate).
pub fn random_splits(wire: &[u8], seed: u64, max_piece: usize) -> Vec<&[u8]> {
    let mut state = seed.max(1);
    let mut pieces = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Include empty reads now and then: a spurious wakeup that read nothing.
        let n = (state % (max_piece as u64 + 1)) as usize;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Feeds `wire` to fresh calls from `make` cut every way (two- and three-way, one byte per
/// read, pseudo-random), and hands each outcome to `check`.
pub fn for_all_splits(
    make: impl Fn() -> Call,
    wire: &[u8],
    eof: bool,
    check: impl Fn(&mut Call, Outcome, &[&[u8]]),
) {
    let mut cuts: Vec<Vec<&[u8]>> = two_way_splits(wire).collect();
    if wire.len() <= 160 {
        cuts.extend(three_way_splits(wire));
    }
    cuts.push(byte_splits(wire));
    for seed in 1..=200 {
        cuts.push(random_splits(wire, seed, 1 + (seed as usize % 37)));
    }
    for pieces in cuts {
        let mut call = make();
        let outcome = drive(&mut call, &pieces, eof);
        check(&mut call, outcome, &pieces);
    }
}
