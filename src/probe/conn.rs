//! One HTTP exchange with a plugin over a non-blocking unix socket: the thin I/O shell around
//! [`http::Call`].
//!
//! In scope: connecting, moving bytes between the socket and the sans-IO call until
//! `WouldBlock`, keeping the few head bytes the call could not consume yet, and deriving the
//! mio interest from the call's state. Out of scope: deadlines (the loop's timer table owns
//! them) and what the answer means (the registry).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mio::Interest;
use mio::net::UnixStream;

use crate::http::{self, Call, Progress};
use crate::plugins::registry::TransportError;

/// What the exchange is for.
#[derive(Debug)]
pub enum Purpose {
    /// `GET /report` for spy tick `tick`.
    Report {
        /// The tick the answer belongs to.
        tick: u64,
    },
}

/// A finished exchange: the head and, for status 200, the whole body.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub code: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// The body; empty unless the status is 200, because Scope never reads other bodies.
    pub body: Vec<u8>,
}

/// How far a [`PluginCall`] got after moving bytes.
#[derive(Debug)]
pub enum Drive {
    /// Waiting on the socket.
    Pending,
    /// Finished, well or badly; the connection can be dropped.
    Done(Result<Answer, TransportError>),
}

/// One request in flight to a plugin socket.
#[derive(Debug)]
pub struct PluginCall {
    /// The connected (or connecting) socket.
    pub stream: UnixStream,
    /// The protocol state.
    pub call: Call,
    /// The plugin's socket path (its registry key).
    pub path: PathBuf,
    /// What the answer is for.
    pub purpose: Purpose,
    /// When connecting started: latency is measured from here.
    pub started: Instant,
    /// Response bytes received so far (for the timeout text).
    pub received: usize,
    /// Input the call could not consume yet (only ever part of a response head).
    unconsumed: Vec<u8>,
}

impl PluginCall {
    /// Starts connecting to `path`. A refused or missing socket fails here, at once.
    pub fn connect(
        path: &Path,
        call: Call,
        purpose: Purpose,
        now: Instant,
    ) -> Result<PluginCall, TransportError> {
        let stream = UnixStream::connect(path).map_err(TransportError::Connect)?;
        Ok(PluginCall {
            stream,
            call,
            path: path.to_path_buf(),
            purpose,
            started: now,
            received: 0,
            unconsumed: Vec::new(),
        })
    }

    /// The readiness the call needs next.
    pub fn interest(&self) -> Interest {
        if self.call.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
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
                Some(head) if head.status != 200 => Drive::Done(Ok(Answer {
                    code: head.status,
                    reason: head.reason.to_string(),
                    body: Vec::new(),
                })),
                _ => Drive::Done(Err(e)),
            },
        }
    }

    fn drive_inner(&mut self, scratch: &mut [u8]) -> Result<Option<Answer>, TransportError> {
        while self.call.wants_write() {
            match self.stream.write(self.call.pending_output()) {
                Ok(0) => {
                    return Err(TransportError::Io(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => self.call.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A plugin that closes early may still have answered: read what is there.
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
            // Scope reads no body after a non-200 head: the status alone is the outcome.
            if let Some(head) = self.call.response()
                && head.status != 200
            {
                return Ok(Some(Answer {
                    code: head.status,
                    reason: head.reason.to_string(),
                    body: Vec::new(),
                }));
            }
        }
    }

    /// Feeds input to the call; returns whether the exchange is complete.
    fn feed(&mut self, input: &[u8]) -> Result<bool, TransportError> {
        let owned;
        let mut data = input;
        if !self.unconsumed.is_empty() {
            self.unconsumed.extend_from_slice(input);
            owned = std::mem::take(&mut self.unconsumed);
            data = &owned;
        }
        while !data.is_empty() {
            let (used, progress) = self.call.handle_input(data).map_err(TransportError::Http)?;
            data = &data[used..];
            if let Progress::Done = progress {
                return Ok(true);
            }
            if used == 0 {
                self.unconsumed.extend_from_slice(data);
                break;
            }
        }
        Ok(false)
    }

    fn finished(&mut self) -> Option<Answer> {
        let head = self.call.response()?;
        let (code, reason) = (head.status, head.reason.to_string());
        let body = if code == 200 {
            self.call.take_body()
        } else {
            Vec::new()
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

/// Builds the `GET /report` call.
pub fn report_call(api_version: &str, probe_id: &str, limits: http::Limits) -> Call {
    let target = plugin_target("/report", api_version, probe_id);
    Call::new(
        &http::Request {
            method: http::Method::Get,
            target: &target,
            host: "plugin",
            headers: &[("User-Agent", USER_AGENT)],
            body: &[],
        },
        limits,
    )
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
