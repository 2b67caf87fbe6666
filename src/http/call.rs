//! One request/response exchange: [`Call`].
//!
//! Owns the request bytes until they are written, the response head, the body buffer and the
//! phase of the exchange. Does not own sockets, readiness, deadlines or the caller's read
//! buffer (see the module docs of [`http`](super) for the contract).

use super::chunk::{ChunkLimits, Dechunker};
use super::error::{Error, MAX_INTERIM_RESPONSES};
use super::head::{self, Framing, ResponseHead};
use super::{Limits, Method, Progress, Request};

/// One HTTP/1.1 request and its response, on a connection of its own.
///
/// Sending and receiving are independent: the request sits in [`pending_output`] until the
/// caller has written all of it, and input is accepted from the start, because a server may
/// answer (say with 413) before it has read the whole request.
///
/// [`pending_output`]: Call::pending_output
#[derive(Debug)]
pub struct Call {
    /// The serialised request. Freed (set empty) once fully written.
    output: Vec<u8>,
    /// Bytes of `output` already written. Invariant: `0 <= written <= output.len()`.
    written: usize,
    /// Where the response is.
    phase: Phase,
    /// The final response head, once read. Kept after a body error so the caller can still
    /// check the status first (spec §7.4: status before size).
    head: Option<Box<ResponseHead>>,
    /// The body so far. Reserved from Content-Length (capped by the limit).
    body: Vec<u8>,
    limits: Limits,
    /// 1xx responses skipped so far; at most [`MAX_INTERIM_RESPONSES`].
    interim: u8,
    /// The request asked to switch protocols: a 101 ends the call after its head.
    upgrade: bool,
    /// Length of the partial head offered last, 0 when none (see [`head::worth_parsing`]).
    /// Invariant: `head_scanned < limits.max_head_bytes`.
    head_scanned: usize,
}

/// The phases of the response side. Named for what each waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// The status line and headers (after any number of 1xx heads, up to the bound).
    RecvHead,
    /// The body, framed as the head said.
    RecvBody(BodyReader),
    /// The response is complete.
    Done,
    /// The exchange failed; every later input returns this error again.
    Failed(Error),
}

/// How much body is left, by framing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyReader {
    /// Content-Length: `remaining > 0` bytes still to come.
    Length { remaining: u64 },
    /// Chunked framing.
    Chunked(Dechunker),
    /// Until the peer closes.
    UntilEof,
}

impl Call {
    /// A call for `req`, its request serialised and waiting in [`pending_output`].
    ///
    /// Adds `Host`, `Connection: close` (one connection per request) and `Content-Length` when
    /// there is a body or the method is POST. `req.headers` must not repeat those three.
    ///
    /// [`pending_output`]: Call::pending_output
    pub fn new(req: &Request<'_>, limits: Limits) -> Call {
        Call::build(req, limits, false)
    }

    /// Like [`new`](Call::new), for a request that asks to switch protocols (the websocket
    /// handshake). A 101 response ends the call right after its head; the bytes after the head
    /// are left unconsumed in the caller's buffer, since frames of the new protocol may arrive
    /// in the same read. Any other status is read as a normal response.
    ///
    /// Adds no `Connection` header: `req.headers` carries `Connection: Upgrade` and `Upgrade`.
    pub fn new_upgrade(req: &Request<'_>, limits: Limits) -> Call {
        Call::build(req, limits, true)
    }

    fn build(req: &Request<'_>, limits: Limits, upgrade: bool) -> Call {
        let headers_len: usize = req.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(
            req.target.len() + req.host.len() + headers_len + req.body.len() + 96,
        );
        out.extend_from_slice(req.method.as_str().as_bytes());
        out.push(b' ');
        if req.target.is_empty() {
            out.push(b'/');
        }
        push_field(&mut out, req.target);
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        push_field(&mut out, req.host);
        out.extend_from_slice(b"\r\n");
        for (name, value) in req.headers {
            push_field(&mut out, name);
            out.extend_from_slice(b": ");
            push_field(&mut out, value);
            out.extend_from_slice(b"\r\n");
        }
        if !req.body.is_empty() || req.method == Method::Post {
            out.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes());
        }
        if !upgrade {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(req.body);
        Call {
            output: out,
            written: 0,
            phase: Phase::RecvHead,
            head: None,
            body: Vec::new(),
            limits,
            interim: 0,
            upgrade,
            head_scanned: 0,
        }
    }

    /// Request bytes not yet written. Empty once all are written, or once the call is over.
    pub fn pending_output(&self) -> &[u8] {
        if self.is_over() {
            return &[];
        }
        self.output.get(self.written..).unwrap_or_default()
    }

    /// Records that the first `n` bytes of [`pending_output`](Call::pending_output) were
    /// written. `n` larger than what is pending counts as all of it.
    pub fn consume_output(&mut self, n: usize) {
        self.written = self.written.saturating_add(n).min(self.output.len());
        if self.written == self.output.len() {
            // The request can be large (a gzipped report); do not hold it for the response.
            self.output = Vec::new();
            self.written = 0;
        }
    }

    /// True while request bytes are waiting to be written.
    pub fn wants_write(&self) -> bool {
        !self.pending_output().is_empty()
    }

    /// True while the response is incomplete (and the call has not failed).
    pub fn wants_read(&self) -> bool {
        matches!(self.phase, Phase::RecvHead | Phase::RecvBody(_))
    }

    /// True once the response is complete.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The error the call failed with, if it did.
    pub fn error(&self) -> Option<&Error> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The final response head, once read. Still there after a body error.
    pub fn response(&self) -> Option<&ResponseHead> {
        self.head.as_deref()
    }

    /// The body received so far, in full once [`is_done`](Call::is_done). Takes it out of the
    /// call, so the caller can decode it in place.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Body bytes received so far (for logs and progress).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Offers received bytes. Returns how many were consumed, from the front of `input`.
    ///
    /// The caller keeps the bytes that were not consumed and offers them again, followed by
    /// more, on the next read: a head is parsed only once it is complete, so a partial head
    /// returns `Ok((0, NeedMore))` (after any complete 1xx heads). Body bytes are always
    /// consumed as they come. After `Done`, bytes past the response are left unconsumed: after
    /// a 101 they are the new protocol's; otherwise the caller may drop them and close.
    ///
    /// Partial input is never an error. After an error, returns that error again.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<(usize, Progress), Error> {
        let result = self.handle_input_inner(input);
        if let Err(e) = &result {
            self.phase = Phase::Failed(e.clone());
        }
        self.free_output_when_over();
        result
    }

    /// Tells the call the peer closed its side. Completes a body read until EOF; otherwise says
    /// what the close cut short. Offer every received byte to
    /// [`handle_input`](Call::handle_input) first.
    pub fn handle_eof(&mut self) -> Result<Progress, Error> {
        let received = self.body.len() as u64;
        let result = match &self.phase {
            Phase::Done => return Ok(Progress::Done),
            Phase::Failed(e) => return Err(e.clone()),
            Phase::RecvHead => Err(Error::HeadCutShort),
            Phase::RecvBody(BodyReader::UntilEof) => Ok(Progress::Done),
            Phase::RecvBody(BodyReader::Length { remaining }) => Err(Error::BodyCutShort {
                received,
                expected: received + remaining,
            }),
            Phase::RecvBody(BodyReader::Chunked(_)) => Err(Error::ChunkedBodyCutShort { received }),
        };
        self.phase = match &result {
            Ok(_) => Phase::Done,
            Err(e) => Phase::Failed(e.clone()),
        };
        self.free_output_when_over();
        result
    }

    /// An answered or failed call writes nothing more; a large unsent request (a gzipped
    /// report) should not stay allocated until the caller drops the call.
    fn free_output_when_over(&mut self) {
        if self.is_over() && !self.output.is_empty() {
            self.output = Vec::new();
            self.written = 0;
        }
    }

    fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed(_))
    }

    fn handle_input_inner(&mut self, input: &[u8]) -> Result<(usize, Progress), Error> {
        let mut used = 0;
        if self.phase == Phase::RecvHead {
            used = self.handle_head(input)?;
        }
        let rest = input.get(used..).unwrap_or_default();
        match &mut self.phase {
            Phase::RecvHead => Ok((used, Progress::NeedMore)),
            Phase::Done => Ok((used, Progress::Done)),
            Phase::Failed(e) => Err(e.clone()),
            Phase::RecvBody(reader) => {
                let (n, done) = read_body(reader, rest, &mut self.body, self.limits)?;
                if done {
                    self.phase = Phase::Done;
                }
                let progress = if done {
                    Progress::Done
                } else {
                    Progress::NeedMore
                };
                Ok((used + n, progress))
            }
        }
    }

    /// Parses heads from the front of `input`, skipping 1xx ones, until the final head is read
    /// (then moves to `RecvBody` or `Done`) or the input ends inside a head. Returns the bytes
    /// used: all complete heads.
    fn handle_head(&mut self, input: &[u8]) -> Result<usize, Error> {
        let max_head = self.limits.max_head_bytes;
        let mut used = 0;
        loop {
            let buf = input.get(used..).unwrap_or_default();
            // A head dripped in byte by byte is parsed O(log n) times, not n times.
            if !head::worth_parsing(buf, self.head_scanned, max_head) {
                self.head_scanned = buf.len();
                return Ok(used);
            }
            let Some((len, head)) = head::parse_head(buf, self.limits.max_headers)? else {
                // A partial head already this long can only end up longer than the limit.
                if buf.len() >= max_head {
                    return Err(Error::HeadTooLarge { limit: max_head });
                }
                self.head_scanned = buf.len();
                return Ok(used);
            };
            self.head_scanned = 0;
            if len > max_head {
                return Err(Error::HeadTooLarge { limit: max_head });
            }
            used += len;
            if head.status == 101 {
                if !self.upgrade {
                    return Err(Error::UnexpectedSwitchingProtocols);
                }
                self.head = Some(Box::new(head));
                self.phase = Phase::Done;
                return Ok(used);
            }
            if head.is_interim() {
                // 100 Continue and friends: the final response follows (RFC 9110 §15.2).
                self.interim += 1;
                if self.interim > MAX_INTERIM_RESPONSES {
                    return Err(Error::TooManyInterimResponses);
                }
                continue;
            }
            // Kept before framing is checked, so a bad length still shows its status.
            let head = self.head.insert(Box::new(head));
            let framing = head::framing(head)?;
            self.phase = match framing {
                Framing::None | Framing::Length(0) => Phase::Done,
                Framing::Length(n) => {
                    // spec §7.3: a body announced past the limit fails now, not after reading.
                    if n > self.limits.max_body_bytes as u64 {
                        return Err(Error::BodyTooLarge {
                            limit: self.limits.max_body_bytes,
                        });
                    }
                    // One allocation for the whole body; `n` fits usize, being under the limit.
                    self.body = Vec::with_capacity(n as usize);
                    Phase::RecvBody(BodyReader::Length { remaining: n })
                }
                Framing::Chunked => Phase::RecvBody(BodyReader::Chunked(Dechunker::new())),
                Framing::UntilEof => Phase::RecvBody(BodyReader::UntilEof),
            };
            return Ok(used);
        }
    }
}

/// Appends body bytes from `input` to `body`. Returns (bytes used, body complete).
fn read_body(
    reader: &mut BodyReader,
    input: &[u8],
    body: &mut Vec<u8>,
    limits: Limits,
) -> Result<(usize, bool), Error> {
    match reader {
        BodyReader::Length { remaining } => {
            let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
            body.extend_from_slice(input.get(..take).unwrap_or_default());
            *remaining -= take as u64;
            Ok((take, *remaining == 0))
        }
        BodyReader::UntilEof => {
            // spec §7.3: fail as soon as the body would pass the limit; exactly the limit is fine.
            if input.len() > limits.max_body_bytes.saturating_sub(body.len()) {
                return Err(Error::BodyTooLarge {
                    limit: limits.max_body_bytes,
                });
            }
            body.extend_from_slice(input);
            Ok((input.len(), false))
        }
        BodyReader::Chunked(dechunker) => {
            let chunk_limits = ChunkLimits {
                max_body_bytes: limits.max_body_bytes,
                // Trailers are head-like; the head bound is the natural one.
                max_trailer_bytes: limits.max_head_bytes,
            };
            let used = dechunker.parse_input(input, body, chunk_limits)?;
            Ok((used, dechunker.is_done()))
        }
    }
}

/// Appends a request-line or header field, with CR and LF turned into spaces: the fields come
/// from our own configuration, but a stray line break must not split the request.
fn push_field(out: &mut Vec<u8>, field: &str) {
    out.extend(
        field
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}
