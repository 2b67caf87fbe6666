//! Every socket the loop owns besides its singletons, as one enum living in one slab: one
//! token space, one deadline kind, one dispatch.
//!
//! In scope: what each connection is, its protocol state, which readiness it wants and its
//! deadline. Out of scope: what happens on events (the `impl Probe` blocks in the sibling
//! modules: plugins in `mod.rs`, apps in `apps.rs`, the control websocket in `controls.rs`,
//! the local endpoints in `local.rs`).

use std::path::PathBuf;
use std::time::Instant;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};

use super::exchange::Exchange;
use crate::publish::apps::RequestId;
use crate::publish::rpc::RpcServer;
use crate::publish::ws::WsConn;
use crate::serve::ServerConn;

/// One connection of the loop.
#[derive(Debug)]
pub enum Conn {
    /// A request to a plugin.
    Plugin(PluginCall),
    /// A request to a Scope app (`GET /api` or `POST /api/report`).
    App(AppCall),
    /// A client of `--http-listen`.
    Local(LocalConn),
    /// The control websocket to one app.
    Ws(WsLink),
}

impl Conn {
    /// The socket, for (re)registration.
    pub fn source(&mut self) -> &mut dyn Source {
        match self {
            Conn::Plugin(c) => &mut c.exchange.stream,
            Conn::App(c) => &mut c.exchange.stream,
            Conn::Local(c) => &mut c.stream,
            Conn::Ws(c) => match &mut c.phase {
                WsPhase::Upgrading { exchange, .. } => &mut exchange.stream,
                WsPhase::Open { stream, .. } => stream,
            },
        }
    }
}

/// What a plugin request is for.
#[derive(Debug)]
pub enum Purpose {
    /// `GET /report` for spy tick `tick`.
    Report {
        /// The tick the answer belongs to.
        tick: u64,
    },
    /// `POST /control` on behalf of an app's websocket call.
    Control(ControlReply),
}

/// Where a control answer goes back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlReply {
    /// Slot of the websocket that carried the call.
    pub ws_slot: usize,
    /// Generation of that slot, so a reply never goes to a newer connection in it.
    pub ws_generation: u64,
    /// The net/rpc sequence number to echo.
    pub seq: u64,
    /// The method called (echoed in the reply header).
    pub method: String,
}

/// A request in flight to a plugin socket.
#[derive(Debug)]
pub struct PluginCall {
    /// The exchange.
    pub exchange: Exchange<UnixStream>,
    /// The plugin's socket path (its registry key).
    pub path: PathBuf,
    /// What the answer is for.
    pub purpose: Purpose,
    /// When connecting started: latency is measured from here.
    pub started: Instant,
}

/// A request in flight to an app.
#[derive(Debug)]
pub struct AppCall {
    /// The exchange.
    pub exchange: Exchange<TcpStream>,
    /// The request's id in [`crate::publish::apps::Apps`].
    pub id: RequestId,
}

/// A client of the local endpoints.
#[derive(Debug)]
pub struct LocalConn {
    /// The accepted socket.
    pub stream: TcpStream,
    /// Its protocol state.
    pub server: ServerConn,
}

/// The control websocket to one app (AP §4).
#[derive(Debug)]
pub struct WsLink {
    /// The app's id (from `GET /api`).
    pub app_id: String,
    /// The app generation it was opened for (a new one means reconnect).
    pub generation: u64,
    /// Upgrade in progress, or open.
    pub phase: WsPhase,
}

/// The two phases of a control websocket.
#[derive(Debug)]
pub enum WsPhase {
    /// `GET /api/control/ws` sent, waiting for `101`.
    Upgrading {
        /// The upgrade request.
        exchange: Exchange<TcpStream>,
        /// Our `Sec-WebSocket-Key`, to check the server's accept key.
        key: String,
    },
    /// Frames flowing; the app is the RPC client.
    Open {
        /// The socket.
        stream: TcpStream,
        /// Framing.
        ws: WsConn,
        /// net/rpc decoding of the app's calls.
        rpc: RpcServer,
        /// When its one live keepalive entry in the timer table fires: flushes add no entry
        /// while one is pending, and earlier (stale) entries are ignored.
        keepalive_at: Option<Instant>,
    },
}
