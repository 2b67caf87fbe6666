//! A sans-IO HTTP/1.1 client: bytes in, bytes out, progress and errors.
//!
//! # In scope
//!
//! - Serialising one request (`GET` or `POST`, with `Host`, `Content-Length` and
//!   `Connection: close` added) into a buffer the caller writes out.
//! - Reading the response: status line and headers (httparse), 1xx interim responses skipped,
//!   then the body by Content-Length, by `Transfer-Encoding: chunked` (extensions and trailers
//!   skipped) or until the peer closes (HTTP/1.0 servers, or no length given).
//! - A 101 answer to an upgrade request (the websocket handshake to a Scope app), which ends
//!   the call right after its head.
//! - Bounds: head bytes, header count, body bytes (Scope's `response must be shorter than
//!   50MB`, spec §7.3), trailer bytes and chunk-size line length.
//!
//! # Out of scope
//!
//! - Sockets, readiness, connecting and closing: the mio loop owns them and moves bytes.
//! - Time: there is no clock here. The loop owns each call's deadline (500 ms for plugins,
//!   spec §7.3) and drops the call when it passes.
//! - Keep-alive, pipelining, redirects, `Expect: 100-continue` on our side, content codings
//!   (no gzip decoding of responses; we send no `Accept-Encoding`), TLS, HTTP/2.
//! - What a status means: a non-200 is a complete response here; the caller decides
//!   (spec §7.4 step 2).
//!
//! # The caller's contract
//!
//! Write [`Call::pending_output`] while [`Call::wants_write`], reporting progress with
//! [`Call::consume_output`]. Read while [`Call::wants_read`]: append what the socket gives to
//! a buffer, offer the whole buffer to [`Call::handle_input`], and drop the consumed prefix.
//! Unconsumed bytes are a partial head (offer them again with more) or, once done, bytes past
//! the response. When the socket reports EOF, call [`Call::handle_eof`].
//!
//! # States
//!
//! ```text
//!            Call::new / Call::new_upgrade
//!                       |
//!                       v
//!   +------------>  RecvHead  <--------+   request bytes drain meanwhile
//!   |                   |              |   (pending_output / consume_output)
//!   |                   | head         | 1xx interim (at most 5)
//!   |                   +--------------+
//!   |                   |
//!   |                   +-- 204, 304, Content-Length: 0, 101 when upgrading --+
//!   |                   |                                                     |
//!   |                   v                                                     |
//!   |    RecvBody(Length | Chunked | UntilEof)                                |
//!   |                   |                                                     |
//!   |                   | last byte, last chunk + trailers, or EOF            |
//!   |                   v                                                     |
//!   |                 Done  <-------------------------------------------------+
//!   |
//!   +-- any error (input or EOF) --> Failed(error)   (response() stays if read)
//! ```
//!
//! # A GET, step by step
//!
//! ```
//! use scope_probe::http::{Call, Limits, Method, Progress, Request};
//!
//! let req = Request {
//!     method: Method::Get,
//!     target: "/report?api_version=1&probe_id=5a",
//!     host: "plugin",
//!     headers: &[],
//!     body: b"",
//! };
//! let mut call = Call::new(&req, Limits::default());
//!
//! // The loop writes the request; say the socket takes it in two writes.
//! assert!(call.wants_write());
//! assert!(call.pending_output().starts_with(b"GET /report?api_version=1&probe_id=5a HTTP/1.1\r\n"));
//! call.consume_output(10);
//! let rest = call.pending_output().len();
//! call.consume_output(rest);
//! assert!(!call.wants_write());
//!
//! // The response arrives in pieces. A partial head consumes nothing: keep the bytes.
//! let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
//! let mut buf = wire[..20].to_vec();
//! assert_eq!(call.handle_input(&buf)?, (0, Progress::NeedMore));
//! buf.extend_from_slice(&wire[20..wire.len() - 1]);
//! let (used, progress) = call.handle_input(&buf)?;
//! assert_eq!((used, progress), (buf.len(), Progress::NeedMore)); // head + 1 body byte
//! buf.clear();
//! buf.extend_from_slice(&wire[wire.len() - 1..]);
//! assert_eq!(call.handle_input(&buf)?, (1, Progress::Done));
//!
//! assert!(call.is_done() && !call.wants_read());
//! assert_eq!(call.response().map(|r| r.status), Some(200));
//! assert_eq!(call.take_body(), b"{}");
//! # Ok::<(), scope_probe::http::Error>(())
//! ```

mod call;
mod chunk;
mod error;
mod head;
mod status;

#[cfg(test)]
mod test;

pub use call::Call;
pub use error::{Error, MAX_CHUNK_LINE_BYTES, MAX_INTERIM_RESPONSES};
pub use head::{Header, ResponseHead, Version};
pub use status::status_text;

/// The request methods we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET /report`, `GET /api`, the websocket handshake.
    Get,
    /// `POST /control`, `POST /api/report`.
    Post,
}

impl Method {
    /// The method as written on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request to send, borrowed for the moment [`Call::new`] serialises it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// Path and query, already escaped (`/report?api_version=1&probe_id=…`, spec §7.3).
    /// Empty means `/`.
    pub target: &'a str,
    /// The `Host` header value (`plugin` for plugins, spec §7.3).
    pub host: &'a str,
    /// Extra headers, written in order. Not `Host`, `Content-Length` or `Connection` (the call
    /// adds those), except `Connection: Upgrade` for [`Call::new_upgrade`].
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; `Content-Length` is sent when it is non-empty or the method is POST.
    pub body: &'a [u8],
}

/// Bounds on what a response may make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest body accepted; exactly this many bytes is fine (spec §7.3: 50 MiB).
    pub max_body_bytes: usize,
    /// Longest status line plus headers, final CRLF included; also bounds chunked trailers.
    pub max_head_bytes: usize,
    /// Most header lines in one head.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // spec §7.3: Scope's maxResponseBytes, 50 × 1024 × 1024.
            max_body_bytes: 52_428_800,
            max_head_bytes: 64 * 1024,
            max_headers: 64,
        }
    }
}

/// What [`Call::handle_input`] and [`Call::handle_eof`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete yet: read more.
    NeedMore,
    /// The response is complete: take the head and body, then close.
    Done,
}
