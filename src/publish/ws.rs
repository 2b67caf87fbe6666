//! The client side of an RFC 6455 websocket, sans-IO: the control socket to a Scope app
//! (spec `app-protocol.md` §4).
//!
//! What it owns: the opening handshake's key and its check ([`client_key`], [`accept_key`],
//! [`check_upgrade_response`]), and after the `101` the framing ([`WsConn`]): reading server
//! frames into whole messages (fragments reassembled, control frames interleaved, text checked
//! as UTF-8, a size cap), writing masked client frames into an output buffer, answering pings
//! and closes, and the keepalive clock (a ping after 33 s of idle output, dead after 60 s
//! without a frame received).
//!
//! What it does not: sockets, the HTTP request and response heads of the upgrade (the crate's
//! sans-IO HTTP client writes the `GET` with [`handshake_headers`] and parses the `101`), the
//! RPC carried in the text messages (`publish::rpc`), reconnecting, and randomness (the caller
//! supplies the key and the masks).
//!
//! Why hand-written and not `tungstenite`: the probe's one loop already owns the TCP socket and
//! does the HTTP upgrade through our own sans-IO HTTP client. A frame codec is a few hundred
//! lines and keeps one I/O model (bytes in, bytes out, `now` passed in), while tungstenite
//! brings its own HTTP handshake and a blocking-style `Read + Write` stream API. We need no
//! extensions (no `permessage-deflate`) and never act as a server.
//!
//! ```text
//!   Open ──send_close──▶ AwaitingClose ──Close received──▶ Closed
//!    └───────────── Close received (our echo queued) ─────────▲
//!   any receive error ─▶ Failed (a Close with 1002/1007/1009 is queued while Open)
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// RFC 6455 §5.5: control frames carry at most 125 bytes of payload.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Opcodes of RFC 6455 §5.2.
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes of RFC 6455 §7.4.1.
/// §7.4.1: normal closure, for [`WsConn::send_close`].
pub const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// §7.4.1: "no status code was actually present"; never sent on the wire.
pub const CLOSE_NO_STATUS: u16 = 1005;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;

/// Compact a consumed buffer prefix once it is at least this large, so appending stays cheap
/// without moving bytes after every frame.
const COMPACT_AT: usize = 64 * 1024;

/// The `Sec-WebSocket-Key` for a new handshake: 16 random bytes, base64 (RFC 6455 §4.1).
pub fn client_key(random: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// The `Sec-WebSocket-Accept` a server must answer to `client_key` (RFC 6455 §4.2.2 step 5:
/// base64 of the SHA-1 of the key followed by the GUID).
pub fn accept_key(client_key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(client_key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// The headers that turn `GET /api/control/ws` into a websocket upgrade (spec AP §4); the
/// caller adds `Host` and the probe's usual headers (AP §2).
pub fn handshake_headers(client_key: &str) -> [(&'static str, String); 4] {
    [
        ("Upgrade", "websocket".to_owned()),
        ("Connection", "Upgrade".to_owned()),
        ("Sec-WebSocket-Key", client_key.to_owned()),
        ("Sec-WebSocket-Version", "13".to_owned()),
    ]
}

/// Checks the server's answer to the upgrade (RFC 6455 §4.1, the client's checks 1–4): status
/// `101`, `Upgrade: websocket`, a `Connection` header with the `upgrade` token, and the right
/// `Sec-WebSocket-Accept`. Header names and the `Upgrade`/`Connection` values compare without
/// case. Bytes after the response head are already websocket frames: feed them to
/// [`WsConn::handle_input`].
pub fn check_upgrade_response<'h>(
    status: u16,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    client_key: &str,
) -> Result<(), WsError> {
    if status != 101 {
        return Err(WsError::UpgradeStatus(status));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    let expected_accept = accept_key(client_key);
    for (name, value) in headers {
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= value.eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept |= value == expected_accept.as_bytes();
        }
    }
    if !upgrade {
        return Err(WsError::UpgradeHeader("Upgrade"));
    }
    if !connection {
        return Err(WsError::UpgradeHeader("Connection"));
    }
    if !accept {
        return Err(WsError::UpgradeHeader("Sec-WebSocket-Accept"));
    }
    Ok(())
}

/// Tunables of a [`WsConn`]; the defaults are Scope's (spec AP §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsConfig {
    /// A ping is sent when nothing was sent for this long.
    pub ping_interval: Duration,
    /// The connection is dead when no frame (pongs included) arrived for this long.
    pub dead_after: Duration,
    /// The largest message accepted, after reassembling its fragments.
    pub max_message_bytes: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            ping_interval: Duration::from_secs(33),
            dead_after: Duration::from_secs(60),
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One whole message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping; the pong is already queued.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The server's close: status code ([`CLOSE_NO_STATUS`] when the frame had none) and
    /// reason. Our echo is already queued; flush the output and then close the socket.
    Close(u16, String),
}

/// Why the websocket failed. Every receive error also fails the connection (RFC 6455 §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// The upgrade was answered with another status than 101.
    UpgradeStatus(u16),
    /// The upgrade response lacks this header, or has a wrong value.
    UpgradeHeader(&'static str),
    /// A server frame was masked (RFC 6455 §5.1).
    MaskedFrame,
    /// A frame set RSV1–3 without a negotiated extension (§5.2).
    ReservedBits,
    /// A frame used an opcode RFC 6455 reserves.
    ReservedOpcode(u8),
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A control frame payload over 125 bytes (§5.5), received or asked to be sent.
    ControlTooLong,
    /// A continuation frame with no message to continue (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was still open (§5.4).
    UnfinishedMessage,
    /// A message over the configured size.
    MessageTooBig(usize),
    /// A text message that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a 1-byte payload, a code that may not be sent, or a non-UTF-8 reason
    /// (§5.5.1, §7.4).
    InvalidClose,
    /// Sending after our close was queued or the connection ended.
    Closed,
}

impl WsError {
    /// The close code this error is reported to the server with (RFC 6455 §7.4.1).
    fn close_code(self) -> u16 {
        match self {
            WsError::MessageTooBig(_) => CLOSE_TOO_BIG,
            WsError::InvalidUtf8 => CLOSE_INVALID_DATA,
            _ => CLOSE_PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::UpgradeStatus(status) => {
                write!(f, "websocket upgrade answered with status {status}")
            }
            WsError::UpgradeHeader(name) => {
                write!(
                    f,
                    "websocket upgrade answered without a valid {name} header"
                )
            }
            WsError::MaskedFrame => f.write_str("websocket frame from the server is masked"),
            WsError::ReservedBits => f.write_str("websocket frame sets reserved bits"),
            WsError::ReservedOpcode(op) => {
                write!(f, "websocket frame uses reserved opcode {op:#x}")
            }
            WsError::FragmentedControl => f.write_str("websocket control frame is fragmented"),
            WsError::ControlTooLong => {
                f.write_str("websocket control frame payload is longer than 125 bytes")
            }
            WsError::UnexpectedContinuation => {
                f.write_str("websocket continuation frame without a message to continue")
            }
            WsError::UnfinishedMessage => {
                f.write_str("websocket message started before the previous one finished")
            }
            WsError::MessageTooBig(limit) => {
                write!(f, "websocket message is larger than {limit} bytes")
            }
            WsError::InvalidUtf8 => f.write_str("websocket text message is not valid utf-8"),
            WsError::InvalidClose => f.write_str("websocket close frame is invalid"),
            WsError::Closed => f.write_str("websocket is closed"),
        }
    }
}

impl std::error::Error for WsError {}

/// Where the closing handshake stands (RFC 6455 §7); named for what the connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close and wait for the server's.
    AwaitingClose,
    /// Both Closes were exchanged (or the server's arrived and ours is queued).
    Closed,
    /// A protocol error ended the connection.
    Failed,
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Partial {
    is_text: bool,
    data: Vec<u8>,
}

/// The fixed part of a frame (RFC 6455 §5.2), parsed from the front of the input.
#[derive(Debug, Clone, Copy)]
struct FrameHead {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: u64,
}

/// The client end of a websocket after the `101`: bytes in through
/// [`handle_input`](Self::handle_input), messages out through
/// [`poll_message`](Self::poll_message), frames to send in [`pending_output`](Self::pending_output).
pub struct WsConn {
    config: WsConfig,
    state: State,
    /// Received bytes; `input[input_start..]` is not parsed yet (`input_start <= input.len()`).
    input: Vec<u8>,
    input_start: usize,
    /// Bytes to send; `output[output_start..]` is pending (`output_start <= output.len()`).
    output: Vec<u8>,
    output_start: usize,
    partial: Option<Partial>,
    /// The `now` of the latest `handle_input`: a frame completed then.
    last_input_at: Instant,
    last_frame_at: Instant,
    last_sent_at: Instant,
    masks: Box<dyn FnMut() -> [u8; 4]>,
}

impl fmt::Debug for WsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConn")
            .field("state", &self.state)
            .field("unparsed", &(self.input.len() - self.input_start))
            .field("pending_output", &(self.output.len() - self.output_start))
            .finish_non_exhaustive()
    }
}

impl WsConn {
    /// A connection whose `101` arrived at `now`. `masks` gives the masking key of each frame
    /// sent (RFC 6455 §5.3 wants them unpredictable: draw them from the OS's randomness).
    pub fn new(now: Instant, config: WsConfig, masks: Box<dyn FnMut() -> [u8; 4]>) -> Self {
        WsConn {
            config,
            state: State::Open,
            input: Vec::new(),
            input_start: 0,
            output: Vec::new(),
            output_start: 0,
            partial: None,
            last_input_at: now,
            last_frame_at: now,
            last_sent_at: now,
            masks,
        }
    }

    /// Buffers bytes read from the socket at `now`; call [`poll_message`](Self::poll_message)
    /// until it returns `None` afterwards.
    pub fn handle_input(&mut self, input: &[u8], now: Instant) {
        if self.input_start == self.input.len() {
            self.input.clear();
            self.input_start = 0;
        } else if self.input_start >= COMPACT_AT {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        self.input.extend_from_slice(input);
        self.last_input_at = now;
    }

    /// The next whole message, `None` when more input is needed or the connection has ended.
    /// An error fails the connection: a Close is queued when still allowed, flush it and close
    /// the socket; later calls return `None`.
    pub fn poll_message(&mut self) -> Option<Result<Message, WsError>> {
        loop {
            if matches!(self.state, State::Closed | State::Failed) {
                return None;
            }
            let (head, payload) = match self.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return None,
                Err(e) => return Some(Err(self.fail(e))),
            };
            self.last_frame_at = self.last_input_at;
            match self.handle_frame(head, payload) {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => continue,
                Err(e) => return Some(Err(self.fail(e))),
            }
        }
    }

    /// Parses and removes the next complete frame, checking it before its payload is buffered
    /// whole (so an oversized frame fails at once).
    fn next_frame(&mut self) -> Result<Option<(FrameHead, Vec<u8>)>, WsError> {
        let buf = self.input.get(self.input_start..).unwrap_or_default();
        let Some(head) = parse_head(buf)? else {
            return Ok(None);
        };
        if head.opcode >= OP_CLOSE {
            if !head.fin {
                return Err(WsError::FragmentedControl);
            }
            if head.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::ControlTooLong);
            }
        } else {
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let room = self.config.max_message_bytes.saturating_sub(so_far);
            if head.payload_len > room as u64 {
                return Err(WsError::MessageTooBig(self.config.max_message_bytes));
            }
        }
        // The cap above keeps payload_len within usize for data frames; control frames are
        // at most 125 bytes.
        let payload_len = usize::try_from(head.payload_len)
            .map_err(|_| WsError::MessageTooBig(self.config.max_message_bytes))?;
        let end = head.header_len.saturating_add(payload_len);
        let Some(payload) = buf.get(head.header_len..end) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.input_start += end;
        Ok(Some((head, payload)))
    }

    fn handle_frame(
        &mut self,
        head: FrameHead,
        payload: Vec<u8>,
    ) -> Result<Option<Message>, WsError> {
        match head.opcode {
            OP_CONTINUATION => {
                let Some(mut partial) = self.partial.take() else {
                    return Err(WsError::UnexpectedContinuation);
                };
                partial.data.extend_from_slice(&payload);
                if !head.fin {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                finish_message(partial.is_text, partial.data).map(Some)
            }
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(WsError::UnfinishedMessage);
                }
                let is_text = head.opcode == OP_TEXT;
                if head.fin {
                    finish_message(is_text, payload).map(Some)
                } else {
                    self.partial = Some(Partial {
                        is_text,
                        data: payload,
                    });
                    Ok(None)
                }
            }
            OP_PING => {
                // RFC 6455 §5.5.2: answer with a pong carrying the same payload, unless our
                // Close is already out (§5.5.1: nothing may follow it).
                if self.state == State::Open {
                    let now = self.last_input_at;
                    self.queue_frame(OP_PONG, &payload, now);
                }
                Ok(Some(Message::Ping(payload)))
            }
            OP_PONG => Ok(Some(Message::Pong(payload))),
            OP_CLOSE => {
                let (code, reason) = parse_close(&payload)?;
                if self.state == State::Open {
                    // §5.5.1: echo the status code when answering a Close.
                    let echo = if code == CLOSE_NO_STATUS {
                        Vec::new()
                    } else {
                        code.to_be_bytes().to_vec()
                    };
                    let now = self.last_input_at;
                    self.queue_frame(OP_CLOSE, &echo, now);
                }
                self.state = State::Closed;
                Ok(Some(Message::Close(code, reason)))
            }
            // parse_head rejects every other opcode.
            other => Err(WsError::ReservedOpcode(other)),
        }
    }

    /// Ends the connection with `error`, queuing a Close for the server when still allowed.
    fn fail(&mut self, error: WsError) -> WsError {
        if self.state == State::Open {
            let code = error.close_code().to_be_bytes();
            let now = self.last_input_at;
            self.queue_frame(OP_CLOSE, &code, now);
        }
        self.state = State::Failed;
        self.partial = None;
        error
    }

    /// Queues a text message (one unfragmented frame).
    pub fn send_text(&mut self, text: &str, now: Instant) -> Result<(), WsError> {
        self.check_open()?;
        self.queue_frame(OP_TEXT, text.as_bytes(), now);
        Ok(())
    }

    /// Queues a ping; its payload is at most 125 bytes.
    pub fn send_ping(&mut self, payload: &[u8], now: Instant) -> Result<(), WsError> {
        self.send_control(OP_PING, payload, now)
    }

    /// Queues a pong (unsolicited pongs are allowed as a heartbeat, RFC 6455 §5.5.3).
    pub fn send_pong(&mut self, payload: &[u8], now: Instant) -> Result<(), WsError> {
        self.send_control(OP_PONG, payload, now)
    }

    /// Queues our Close with `code` and `reason` (at most 123 bytes); afterwards only the
    /// server's Close is awaited and nothing more can be sent.
    pub fn send_close(&mut self, code: u16, reason: &str, now: Instant) -> Result<(), WsError> {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.send_control(OP_CLOSE, &payload, now)?;
        self.state = State::AwaitingClose;
        Ok(())
    }

    fn send_control(&mut self, opcode: u8, payload: &[u8], now: Instant) -> Result<(), WsError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlTooLong);
        }
        self.queue_frame(opcode, payload, now);
        Ok(())
    }

    fn check_open(&self) -> Result<(), WsError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(WsError::Closed),
        }
    }

    /// Writes one masked, unfragmented frame into the output (RFC 6455 §5.2, §5.3).
    fn queue_frame(&mut self, opcode: u8, payload: &[u8], now: Instant) {
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
        }
        self.output.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            self.output.push(0x80 | len as u8);
        } else if let Ok(len16) = u16::try_from(len) {
            self.output.push(0x80 | 126);
            self.output.extend_from_slice(&len16.to_be_bytes());
        } else {
            self.output.push(0x80 | 127);
            self.output.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = (self.masks)();
        self.output.extend_from_slice(&mask);
        self.output.extend(
            payload
                .iter()
                .zip(mask.iter().cycle())
                .map(|(byte, key)| byte ^ key),
        );
        self.last_sent_at = now;
    }

    /// Bytes waiting to be written to the socket.
    pub fn pending_output(&self) -> &[u8] {
        self.output.get(self.output_start..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as written.
    pub fn consume_output(&mut self, n: usize) {
        self.output_start = self.output_start.saturating_add(n).min(self.output.len());
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
        } else if self.output_start >= COMPACT_AT {
            self.output.drain(..self.output_start);
            self.output_start = 0;
        }
    }

    /// Whether there is output to write.
    pub fn wants_write(&self) -> bool {
        self.output_start < self.output.len()
    }

    /// Whether the connection has ended (both Closes seen, or failed): flush the output, then
    /// close the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed)
    }

    /// Whether no frame arrived for [`WsConfig::dead_after`] (spec AP §4): reconnect.
    pub fn is_dead(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_frame_at) >= self.config.dead_after
    }

    /// Sends the keepalive ping when output was idle for [`WsConfig::ping_interval`]. Early
    /// (spurious) calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Open
            && now.saturating_duration_since(self.last_sent_at) >= self.config.ping_interval
        {
            self.queue_frame(OP_PING, &[], now);
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) or
    /// [`is_dead`](Self::is_dead) has something to do; `None` once the connection has ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dead_at = self.last_frame_at + self.config.dead_after;
        match self.state {
            State::Open => Some(dead_at.min(self.last_sent_at + self.config.ping_interval)),
            State::AwaitingClose => Some(dead_at),
            State::Closed | State::Failed => None,
        }
    }
}

/// Parses a frame head from the front of `buf`; `None` when it is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<FrameHead>, WsError> {
    let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let opcode = b0 & 0x0F;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(WsError::ReservedOpcode(opcode));
    }
    // RFC 6455 §5.1: "A client MUST close a connection if it detects a masked frame."
    if b1 & 0x80 != 0 {
        return Err(WsError::MaskedFrame);
    }
    let rest = buf.get(2..).unwrap_or_default();
    let (payload_len, header_len) = match b1 & 0x7F {
        126 => match rest.first_chunk::<2>() {
            Some(ext) => (u64::from(u16::from_be_bytes(*ext)), 4),
            None => return Ok(None),
        },
        127 => match rest.first_chunk::<8>() {
            Some(ext) => (u64::from_be_bytes(*ext), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    Ok(Some(FrameHead {
        fin: b0 & 0x80 != 0,
        opcode,
        header_len,
        payload_len,
    }))
}

fn finish_message(is_text: bool, data: Vec<u8>) -> Result<Message, WsError> {
    if is_text {
        String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(Message::Binary(data))
    }
}

/// A Close payload: empty, or a code that may be sent (RFC 6455 §7.4) and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<(u16, String), WsError> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok((CLOSE_NO_STATUS, String::new()))
        } else {
            Err(WsError::InvalidClose)
        };
    };
    let code = u16::from_be_bytes(*code);
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(WsError::InvalidClose);
    }
    let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidClose)?;
    Ok((code, reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn conn_at(now: Instant) -> WsConn {
        WsConn::new(now, WsConfig::default(), Box::new(|| MASK))
    }

    fn conn() -> WsConn {
        conn_at(Instant::now())
    }

    /// A server frame (unmasked) with explicit FIN and opcode.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    /// Decodes the client frames in `out`: (opcode, unmasked payload) each; panics on frames
    /// that are not FIN + masked, which the client must never produce.
    fn client_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            assert_eq!(out[0] & 0xF0, 0x80, "FIN set, no reserved bits");
            assert_eq!(out[1] & 0x80, 0x80, "client frames are masked");
            let (len, mut at) = match out[1] & 0x7F {
                126 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let mask = &out[at..at + 4];
            at += 4;
            let payload = out[at..at + len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            frames.push((out[0] & 0x0F, payload));
            out = &out[at + len..];
        }
        frames
    }

    fn drain(c: &mut WsConn) -> Vec<(u8, Vec<u8>)> {
        let frames = client_frames(c.pending_output());
        let n = c.pending_output().len();
        c.consume_output(n);
        frames
    }

    fn feed(c: &mut WsConn, bytes: &[u8]) -> Vec<Result<Message, WsError>> {
        c.handle_input(bytes, Instant::now());
        std::iter::from_fn(|| c.poll_message()).collect()
    }

    // Handshake.

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(client_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn upgrade_response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good: [(&str, &[u8]); 3] = [
            ("upgrade", b"WebSocket"),
            ("Connection", b"keep-alive, Upgrade"),
            ("Sec-WebSocket-Accept", b" s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(check_upgrade_response(101, good, key), Ok(()));
        assert_eq!(
            check_upgrade_response(400, good, key),
            Err(WsError::UpgradeStatus(400))
        );
        let mut bad = good;
        bad[2].1 = b"AAAA";
        assert_eq!(
            check_upgrade_response(101, bad, key),
            Err(WsError::UpgradeHeader("Sec-WebSocket-Accept"))
        );
        assert_eq!(
            check_upgrade_response(101, [good[0], good[2]], key),
            Err(WsError::UpgradeHeader("Connection"))
        );
        assert_eq!(
            check_upgrade_response(101, [good[1], good[2]], key),
            Err(WsError::UpgradeHeader("Upgrade"))
        );
        let headers = handshake_headers(key);
        assert_eq!(headers[2], ("Sec-WebSocket-Key", key.to_owned()));
        assert_eq!(headers[3].1, "13");
    }

    // Receiving.

    #[test]
    fn messages_at_every_split() {
        let mut bytes = frame(true, OP_TEXT, "héllo".as_bytes());
        bytes.extend(frame(true, OP_BINARY, &[0u8; 300]));
        bytes.extend(frame(true, OP_PING, b"p"));
        for split in 0..=bytes.len() {
            let mut c = conn();
            let mut got = feed(&mut c, &bytes[..split]);
            got.extend(feed(&mut c, &bytes[split..]));
            assert_eq!(
                got,
                vec![
                    Ok(Message::Text("héllo".into())),
                    Ok(Message::Binary(vec![0; 300])),
                    Ok(Message::Ping(b"p".to_vec())),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn frame_with_64_bit_length_at_head_splits() {
        let bytes = frame(true, OP_BINARY, &vec![7u8; 70_000]);
        for split in (0..=12).chain([bytes.len() - 1]) {
            let mut c = conn();
            let mut got = feed(&mut c, &bytes[..split]);
            got.extend(feed(&mut c, &bytes[split..]));
            assert_eq!(
                got,
                vec![Ok(Message::Binary(vec![7; 70_000]))],
                "split at {split}"
            );
        }
    }

    #[test]
    fn input_is_compacted_around_a_partial_frame() {
        let mut bytes = frame(true, OP_BINARY, &vec![1u8; 70_000]);
        let text = frame(true, OP_TEXT, b"after");
        bytes.extend_from_slice(&text[..3]);
        let mut c = conn();
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ok(Message::Binary(vec![1; 70_000]))]
        );
        // The consumed 70 kB prefix is dropped here, keeping the 3 pending bytes.
        assert_eq!(
            feed(&mut c, &text[3..]),
            vec![Ok(Message::Text("after".into()))]
        );
        assert_eq!(c.input.len(), text.len());
    }

    #[test]
    fn output_is_compacted_while_partly_written() {
        let now = Instant::now();
        let mut c = conn_at(now);
        c.send_text(&"a".repeat(70_000), now).unwrap();
        c.send_text("b", now).unwrap();
        let total = c.pending_output().len();
        let rest = c.pending_output()[COMPACT_AT..].to_vec();
        c.consume_output(COMPACT_AT);
        assert_eq!(c.pending_output(), rest.as_slice());
        assert_eq!(c.output.len(), total - COMPACT_AT);
    }

    #[test]
    fn random_input_never_panics() {
        // A fixed xorshift stream: deterministic, and a mix of valid and broken frames.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let b = next() as u8;
                    // Bias the second byte towards unmasked short lengths.
                    if i == 1 { b & 0x0F } else { b }
                })
                .collect();
            let mut c = conn();
            for chunk in bytes.chunks(3) {
                let _ = feed(&mut c, chunk);
            }
            let _ = client_frames(c.pending_output());
        }
    }

    #[test]
    fn byte_by_byte_input() {
        let bytes = frame(true, OP_TEXT, b"{\"Request\":null}");
        let mut c = conn();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(feed(&mut c, std::slice::from_ref(b)));
        }
        assert_eq!(got, vec![Ok(Message::Text("{\"Request\":null}".into()))]);
    }

    #[test]
    fn fragments_reassembled_with_interleaved_ping() {
        let mut bytes = frame(false, OP_TEXT, b"hel");
        bytes.extend(frame(true, OP_PING, b"p"));
        bytes.extend(frame(false, OP_CONTINUATION, b"lo "));
        bytes.extend(frame(true, OP_CONTINUATION, b"world"));
        let mut c = conn();
        assert_eq!(
            feed(&mut c, &bytes),
            vec![
                Ok(Message::Ping(b"p".to_vec())),
                Ok(Message::Text("hello world".into())),
            ]
        );
        assert_eq!(drain(&mut c), vec![(OP_PONG, b"p".to_vec())]);
    }

    #[test]
    fn utf8_split_across_fragments_is_fine() {
        let e = "é".as_bytes();
        let mut bytes = frame(false, OP_TEXT, &e[..1]);
        bytes.extend(frame(true, OP_CONTINUATION, &e[1..]));
        assert_eq!(
            feed(&mut conn(), &bytes),
            vec![Ok(Message::Text("é".into()))]
        );
    }

    #[test]
    fn pong_is_returned() {
        assert_eq!(
            feed(&mut conn(), &frame(true, OP_PONG, b"x")),
            vec![Ok(Message::Pong(b"x".to_vec()))]
        );
    }

    #[test]
    fn close_is_echoed_and_ends_the_connection() {
        let mut payload = 1001u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"going away");
        let mut bytes = frame(true, OP_CLOSE, &payload);
        bytes.extend(frame(true, OP_TEXT, b"ignored"));
        let mut c = conn();
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ok(Message::Close(1001, "going away".into()))]
        );
        assert!(c.is_closed());
        assert_eq!(
            drain(&mut c),
            vec![(OP_CLOSE, 1001u16.to_be_bytes().to_vec())]
        );
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.send_text("x", Instant::now()), Err(WsError::Closed));
    }

    #[test]
    fn empty_close_means_no_status_and_is_echoed_empty() {
        let mut c = conn();
        assert_eq!(
            feed(&mut c, &frame(true, OP_CLOSE, b"")),
            vec![Ok(Message::Close(CLOSE_NO_STATUS, String::new()))]
        );
        assert_eq!(drain(&mut c), vec![(OP_CLOSE, vec![])]);
    }

    #[test]
    fn our_close_then_theirs() {
        let now = Instant::now();
        let mut c = conn_at(now);
        c.send_close(CLOSE_NORMAL, "bye", now).unwrap();
        assert_eq!(drain(&mut c), vec![(OP_CLOSE, b"\x03\xe8bye".to_vec())]);
        assert_eq!(c.send_ping(b"", now), Err(WsError::Closed));
        // Data may still arrive; a ping is not answered after our Close.
        let mut bytes = frame(true, OP_TEXT, b"late");
        bytes.extend(frame(true, OP_PING, b""));
        bytes.extend(frame(true, OP_CLOSE, &CLOSE_NORMAL.to_be_bytes()));
        assert_eq!(
            feed(&mut c, &bytes),
            vec![
                Ok(Message::Text("late".into())),
                Ok(Message::Ping(vec![])),
                Ok(Message::Close(CLOSE_NORMAL, String::new())),
            ]
        );
        assert!(c.is_closed());
        assert!(!c.wants_write());
    }

    /// Feeds `bytes` and expects exactly `error`, a queued Close with `code`, and a dead end.
    fn expect_failure(bytes: &[u8], error: WsError, code: u16) {
        let mut c = conn();
        assert_eq!(feed(&mut c, bytes), vec![Err(error)], "{bytes:02x?}");
        assert!(c.is_closed());
        assert_eq!(drain(&mut c), vec![(OP_CLOSE, code.to_be_bytes().to_vec())]);
        assert_eq!(feed(&mut c, &frame(true, OP_TEXT, b"x")), vec![]);
    }

    #[test]
    fn masked_server_frame_fails() {
        expect_failure(&[0x81, 0x81, 1, 2, 3, 4, b'x'], WsError::MaskedFrame, 1002);
    }

    #[test]
    fn reserved_bits_fail() {
        expect_failure(&[0xC1, 0x00], WsError::ReservedBits, 1002);
    }

    #[test]
    fn reserved_opcodes_fail() {
        for op in [3, 7, 0xB, 0xF] {
            expect_failure(&[0x80 | op, 0x00], WsError::ReservedOpcode(op), 1002);
        }
    }

    #[test]
    fn fragmented_control_fails() {
        expect_failure(
            &frame(false, OP_PING, b""),
            WsError::FragmentedControl,
            1002,
        );
    }

    #[test]
    fn long_control_fails_before_its_payload_arrives() {
        // Only the head of a 126-byte ping: the error does not wait for the payload.
        expect_failure(&[0x89, 126, 0, 126], WsError::ControlTooLong, 1002);
    }

    #[test]
    fn continuation_without_message_fails() {
        expect_failure(
            &frame(true, OP_CONTINUATION, b"x"),
            WsError::UnexpectedContinuation,
            1002,
        );
    }

    #[test]
    fn new_message_inside_fragmented_one_fails() {
        let mut c = conn();
        assert_eq!(feed(&mut c, &frame(false, OP_TEXT, b"a")), vec![]);
        assert_eq!(
            feed(&mut c, &frame(true, OP_BINARY, b"b")),
            vec![Err(WsError::UnfinishedMessage)]
        );
    }

    #[test]
    fn oversized_message_fails_early() {
        let limit = WsConfig::default().max_message_bytes;
        // A 64-bit length beyond the cap fails from the head alone.
        let mut head = vec![0x82, 127];
        head.extend_from_slice(&(limit as u64 + 1).to_be_bytes());
        expect_failure(&head, WsError::MessageTooBig(limit), 1009);
        // So does a length that does not fit any buffer.
        let mut head = vec![0x82, 127];
        head.extend_from_slice(&u64::MAX.to_be_bytes());
        expect_failure(&head, WsError::MessageTooBig(limit), 1009);
    }

    #[test]
    fn oversized_fragmented_message_fails() {
        let config = WsConfig {
            max_message_bytes: 10,
            ..WsConfig::default()
        };
        let mut c = WsConn::new(Instant::now(), config, Box::new(|| MASK));
        let mut bytes = frame(false, OP_TEXT, b"123456");
        bytes.extend(frame(true, OP_CONTINUATION, b"12345"));
        assert_eq!(feed(&mut c, &bytes), vec![Err(WsError::MessageTooBig(10))]);
        // Exactly the cap is fine.
        let mut c = WsConn::new(Instant::now(), config, Box::new(|| MASK));
        let mut bytes = frame(false, OP_TEXT, b"123456");
        bytes.extend(frame(true, OP_CONTINUATION, b"1234"));
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ok(Message::Text("1234561234".into()))]
        );
    }

    #[test]
    fn invalid_utf8_text_fails_with_1007() {
        expect_failure(&frame(true, OP_TEXT, b"\xff"), WsError::InvalidUtf8, 1007);
    }

    #[test]
    fn invalid_close_payloads_fail() {
        expect_failure(&frame(true, OP_CLOSE, b"\x03"), WsError::InvalidClose, 1002);
        for code in [999u16, 1004, 1005, 1006, 1015, 2000, 5000] {
            expect_failure(
                &frame(true, OP_CLOSE, &code.to_be_bytes()),
                WsError::InvalidClose,
                1002,
            );
        }
        expect_failure(
            &frame(true, OP_CLOSE, b"\x03\xe8\xff"),
            WsError::InvalidClose,
            1002,
        );
    }

    // Sending.

    #[test]
    fn sent_frames_are_masked_with_the_callers_keys() {
        let mut n = 0u8;
        let now = Instant::now();
        let mut c = WsConn::new(
            now,
            WsConfig::default(),
            Box::new(move || {
                n += 1;
                [n, n, n, n]
            }),
        );
        c.send_text("Hi", now).unwrap();
        c.send_ping(b"", now).unwrap();
        assert_eq!(
            c.pending_output(),
            &[
                0x81,
                0x82,
                1,
                1,
                1,
                1,
                b'H' ^ 1,
                b'i' ^ 1,
                0x89,
                0x80,
                2,
                2,
                2,
                2
            ]
        );
        assert!(c.wants_write());
        c.consume_output(3);
        assert_eq!(c.pending_output().len(), 11);
        c.consume_output(100);
        assert!(!c.wants_write());
    }

    #[test]
    fn long_payload_lengths_are_encoded() {
        let now = Instant::now();
        for len in [125usize, 126, 65_535, 65_536] {
            let mut c = conn_at(now);
            let text = "a".repeat(len);
            c.send_text(&text, now).unwrap();
            assert_eq!(drain(&mut c), vec![(OP_TEXT, text.into_bytes())]);
        }
    }

    #[test]
    fn sending_long_control_payloads_is_refused() {
        let mut c = conn();
        let now = Instant::now();
        assert_eq!(c.send_ping(&[0; 126], now), Err(WsError::ControlTooLong));
        assert_eq!(c.send_pong(&[0; 126], now), Err(WsError::ControlTooLong));
        assert_eq!(
            c.send_close(1000, &"r".repeat(124), now),
            Err(WsError::ControlTooLong)
        );
        c.send_pong(&[0; 125], now).unwrap();
        assert_eq!(drain(&mut c), vec![(OP_PONG, vec![0; 125])]);
    }

    // Keepalive.

    #[test]
    fn ping_after_idle_output_and_dead_after_silence() {
        let t0 = Instant::now();
        let mut c = conn_at(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(33)));
        // Spurious early timeout: nothing happens.
        c.handle_timeout(t0 + Duration::from_secs(32));
        assert!(!c.wants_write());
        // Sending resets the idle clock.
        c.send_text("x", t0 + Duration::from_secs(10)).unwrap();
        drain(&mut c);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(43)));
        c.handle_timeout(t0 + Duration::from_secs(43));
        assert_eq!(drain(&mut c), vec![(OP_PING, vec![])]);
        // The next ping would be at 76 s, but the dead deadline (60 s) comes first.
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        assert!(!c.is_dead(t0 + Duration::from_secs(59)));
        assert!(c.is_dead(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn any_received_frame_keeps_the_connection_alive() {
        let t0 = Instant::now();
        let mut c = conn_at(t0);
        let t1 = t0 + Duration::from_secs(50);
        // Half a frame is not a frame.
        let pong = frame(true, OP_PONG, b"");
        c.handle_input(&pong[..1], t1);
        assert_eq!(c.poll_message(), None);
        assert!(c.is_dead(t0 + Duration::from_secs(60)));
        let t2 = t0 + Duration::from_secs(55);
        c.handle_input(&pong[1..], t2);
        assert_eq!(c.poll_message(), Some(Ok(Message::Pong(vec![]))));
        assert!(!c.is_dead(t0 + Duration::from_secs(114)));
        assert!(c.is_dead(t2 + Duration::from_secs(60)));
    }

    #[test]
    fn error_texts() {
        let cases = [
            (
                WsError::UpgradeStatus(400),
                "websocket upgrade answered with status 400",
            ),
            (
                WsError::UpgradeHeader("Upgrade"),
                "websocket upgrade answered without a valid Upgrade header",
            ),
            (
                WsError::MaskedFrame,
                "websocket frame from the server is masked",
            ),
            (WsError::ReservedBits, "websocket frame sets reserved bits"),
            (
                WsError::ReservedOpcode(3),
                "websocket frame uses reserved opcode 0x3",
            ),
            (
                WsError::FragmentedControl,
                "websocket control frame is fragmented",
            ),
            (
                WsError::ControlTooLong,
                "websocket control frame payload is longer than 125 bytes",
            ),
            (
                WsError::UnexpectedContinuation,
                "websocket continuation frame without a message to continue",
            ),
            (
                WsError::UnfinishedMessage,
                "websocket message started before the previous one finished",
            ),
            (
                WsError::MessageTooBig(16),
                "websocket message is larger than 16 bytes",
            ),
            (
                WsError::InvalidUtf8,
                "websocket text message is not valid utf-8",
            ),
            (WsError::InvalidClose, "websocket close frame is invalid"),
            (WsError::Closed, "websocket is closed"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
