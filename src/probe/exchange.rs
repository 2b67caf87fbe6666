//! One HTTP exchange over a non-blocking stream: the thin I/O shell around [`http::Call`],
//! shared by plugin calls (unix sockets) and app calls (TCP).
//!
//! In scope: moving bytes between the socket and the sans-IO call until `WouldBlock`, keeping
//! the input the call could not consume yet, and deriving the mio interest from the call's
//! state. Out of scope: connecting, deadlines (the loop's timer table owns them) and what the
//! answer means.

use std::io::{self, Read, Write};

use crate::http::{Call, Progress};
use crate::plugins::registry::TransportError;

/// A finished exchange: the head and the body.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub code: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// The body; for plugin calls empty unless the status is 200 (Scope never reads others).
    pub body: Vec<u8>,
}

/// How far an [`Exchange`] got after moving bytes.
#[derive(Debug)]
pub enum Drive {
    /// Waiting on the socket.
    Pending,
    /// Finished, well or badly.
    Done(Result<Answer, TransportError>),
}

/// A request in flight on `stream`.
#[derive(Debug)]
pub struct Exchange<S> {
    /// The connected (or connecting) socket.
    pub stream: S,
    call: Call,
    /// Response bytes received so far (for the timeout text).
    pub received: usize,
    /// Input the call did not consume: part of a response head while reading, or, after a
    /// `101 Switching Protocols`, the first bytes of the new protocol.
    leftover: Vec<u8>,
    /// Plugin calls end at a non-200 head: Scope checks the status before reading the body.
    stop_at_non_200: bool,
}

impl<S: Read + Write> Exchange<S> {
    /// An exchange of `call` over `stream`.
    pub fn new(stream: S, call: Call, stop_at_non_200: bool) -> Self {
        Exchange {
            stream,
            call,
            received: 0,
            leftover: Vec::new(),
            stop_at_non_200,
        }
    }

    /// The response head, once read.
    pub fn head(&self) -> Option<&crate::http::ResponseHead> {
        self.call.response()
    }

    /// The stream and the bytes that followed the response (after a 101: the first frames).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.leftover)
    }

    /// Moves bytes both ways until the socket would block or the exchange ends. `scratch` is
    /// the loop's shared read buffer.
    pub fn drive(&mut self, scratch: &mut [u8]) -> Drive {
        match self.drive_inner(scratch) {
            Ok(Some(answer)) => Drive::Done(Ok(answer)),
            Ok(None) => Drive::Pending,
            // spec §7.4: the status is checked before the body, so a non-200 head wins over
            // whatever went wrong with the body afterwards.
            Err(e) => match self.call.response() {
                Some(head) if self.stop_at_non_200 && head.status != 200 => {
                    Drive::Done(Ok(Answer {
                        code: head.status,
                        reason: head.reason.to_string(),
                        body: Vec::new(),
                    }))
                }
                _ => Drive::Done(Err(e)),
            },
        }
    }

    fn drive_inner(&mut self, scratch: &mut [u8]) -> Result<Option<Answer>, TransportError> {
        while self.call.wants_write() {
            match self.stream.write(self.call.pending_output()) {
                Ok(0) => return Err(TransportError::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.call.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that closes early may still have answered: read what is there.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(connect_or_io(e, self.received)),
            }
        }
        loop {
            if !self.call.wants_read() {
                return Ok(self.finished());
            }
            let n = match self.stream.read(scratch) {
                Ok(0) => {
                    let progress = self.call.handle_eof().map_err(TransportError::Http)?;
                    return Ok(match progress {
                        Progress::Done => self.finished(),
                        Progress::NeedMore => None,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(connect_or_io(e, self.received)),
            };
            self.received += n;
            if self.feed(&scratch[..n])? {
                return Ok(self.finished());
            }
            if self.stop_at_non_200
                && let Some(head) = self.call.response()
                && head.status != 200
            {
                return Ok(self.finished());
            }
        }
    }

    /// Feeds input to the call; returns whether the exchange is complete. Unconsumed input is
    /// kept in `leftover` (the http layer consumes a head only once it is whole). Body bytes
    /// go straight from `input` to the call: only a partial head is ever buffered here.
    fn feed(&mut self, input: &[u8]) -> Result<bool, TransportError> {
        if self.leftover.is_empty() {
            let (used, done) = self.feed_slice(input)?;
            self.leftover.extend_from_slice(&input[used..]);
            return Ok(done);
        }
        let mut pending = std::mem::take(&mut self.leftover);
        pending.extend_from_slice(input);
        let (used, done) = self.feed_slice(&pending)?;
        pending.drain(..used);
        self.leftover = pending;
        Ok(done)
    }

    /// Offers `data` to the call until it is done or takes no more; returns the bytes used.
    fn feed_slice(&mut self, data: &[u8]) -> Result<(usize, bool), TransportError> {
        let mut used_total = 0;
        while used_total < data.len() {
            let (used, progress) = self
                .call
                .handle_input(&data[used_total..])
                .map_err(TransportError::Http)?;
            used_total += used;
            if let Progress::Done = progress {
                return Ok((used_total, true));
            }
            if used == 0 {
                break;
            }
        }
        Ok((used_total, false))
    }

    fn finished(&mut self) -> Option<Answer> {
        let head = self.call.response()?;
        let (code, reason) = (head.status, head.reason.to_string());
        let body = if self.stop_at_non_200 && code != 200 {
            Vec::new()
        } else {
            self.call.take_body()
        };
        Some(Answer { code, reason, body })
    }
}

/// A socket error before any response byte is most likely the connect itself failing (a
/// non-blocking connect reports its error on first use).
fn connect_or_io(e: io::Error, received: usize) -> TransportError {
    if received == 0 && matches!(e.kind(), io::ErrorKind::ConnectionRefused) {
        TransportError::Connect(e)
    } else {
        TransportError::Io(e)
    }
}

/// The request line's target: `<path>?api_version=<v>&probe_id=<id>` (spec §7.3, Go's
/// `url.Values.Encode`: keys sorted, values query-escaped).
pub fn plugin_target(path: &str, api_version: &str, probe_id: &str) -> String {
    format!(
        "{path}?api_version={}&probe_id={}",
        query_escape(api_version),
        query_escape(probe_id)
    )
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What the probe calls itself in `User-Agent`, as Scope's probe does.
pub const USER_AGENT: &str = concat!("Scope_Probe/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_sorted_and_escaped_like_go() {
        assert_eq!(
            plugin_target("/report", "1", "3f2a9c1b7d0e4a55"),
            "/report?api_version=1&probe_id=3f2a9c1b7d0e4a55"
        );
        assert_eq!(query_escape("a b&c/d~"), "a+b%26c%2Fd~");
    }
}
