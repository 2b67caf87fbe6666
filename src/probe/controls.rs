//! Controls end to end (AP §4, RF §7.7–§7.9): one websocket per app, the app's
//! `control.Handle` calls routed to controller plugins as `POST /control`, the answers sent
//! back with the call's `Seq`, and shortcut reports published at once.
//!
//! In scope: the websocket's socket, upgrade and reconnection (with the publishing backoff),
//! routing and its error texts, the plugin call, the shortcut report. Out of scope: framing
//! (`publish::ws`), net/rpc encoding (`publish::rpc`), the report model.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;

use super::conn::{Conn, ControlReply, Purpose, WsLink, WsPhase};
use super::exchange::{Answer, Drive, Exchange, plugin_target};
use super::{Probe, Timer, USER_AGENT};
use crate::http;
use crate::plugins::id::go_quote;
use crate::plugins::registry::TransportError;
use crate::publish::apps::backoff_delay;
use crate::publish::rpc::{self, RpcCall, RpcServer};
use crate::publish::ws::{self, Message, WsConfig, WsConn};
use crate::report::{self, Time};
use crate::sys;

/// The upgrade request must be answered within this.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// The websocket of one app, across reconnections.
#[derive(Debug, Default)]
pub(super) struct LinkState {
    /// The live connection: slot and its generation.
    conn: Option<(usize, u64)>,
    /// The app generation the connection was opened for.
    generation: u64,
    /// Failures in a row (upgrade refused, connection dropped).
    failures: u32,
    /// Not before this instant may it reconnect.
    pub retry_at: Option<Instant>,
}

/// Masks for client frames (RFC 6455 §5.3): unpredictable to the app, not secret.
fn mask_source() -> Box<dyn FnMut() -> [u8; 4]> {
    let mut state = sys::host::random_u64() | 1;
    Box::new(move || {
        // xorshift64: cheap, and seeded from getrandom.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        [bytes[0], bytes[1], bytes[2], bytes[3]]
    })
}

impl Probe {
    /// Opens or drops websockets so there is exactly one per live app generation.
    pub(super) fn drive_control_links(&mut self, now: Instant) {
        let Some(links) = &mut self.apps else {
            return;
        };
        let views: Vec<(String, SocketAddr, u64)> = links
            .apps
            .apps()
            .map(|v| (v.app_id.to_string(), v.addr, v.generation))
            .collect();
        let gone: Vec<String> = links
            .links
            .keys()
            .filter(|id| !views.iter().any(|(v, _, _)| v == *id))
            .cloned()
            .collect();
        let mut to_close = Vec::new();
        for id in gone {
            if let Some(LinkState {
                conn: Some((slot, _)),
                ..
            }) = links.links.remove(&id)
            {
                to_close.push(slot);
            }
        }
        let mut to_open = Vec::new();
        for (app_id, addr, generation) in views {
            let state = links.links.entry(app_id.clone()).or_default();
            if let Some((slot, conn_generation)) = state.conn {
                let live = self.conns.is_live(super::slab::Key {
                    slot,
                    generation: conn_generation,
                });
                if live && state.generation == generation {
                    continue;
                }
                if live {
                    to_close.push(slot);
                }
                state.conn = None;
            }
            if state.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            state.generation = generation;
            to_open.push((app_id, addr, generation));
        }
        for slot in to_close {
            self.close_conn(slot);
        }
        for (app_id, addr, generation) in to_open {
            if let Err(e) = self.open_ws(&app_id, addr, generation, now) {
                self.ws_failed_to_open(&app_id, &e, now);
            }
        }
    }

    fn open_ws(
        &mut self,
        app_id: &str,
        addr: SocketAddr,
        generation: u64,
        now: Instant,
    ) -> io::Result<()> {
        let Some(links) = &self.apps else {
            return Ok(());
        };
        let stream = TcpStream::connect(addr)?;
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&sys::host::random_u64().to_le_bytes());
        random[8..].copy_from_slice(&sys::host::random_u64().to_le_bytes());
        let key = ws::client_key(random);
        let upgrade = ws::handshake_headers(&key);
        let mut headers: Vec<(&str, &str)> =
            upgrade.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.extend(
            links
                .probe_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let host = addr.to_string();
        let call = http::Call::new_upgrade(
            &http::Request {
                method: http::Method::Get,
                target: "/api/control/ws",
                host: &host,
                headers: &headers,
                body: &[],
            },
            http::Limits {
                max_body_bytes: 1 << 16,
                ..http::Limits::default()
            },
        );
        let conn = Conn::Ws(WsLink {
            app_id: app_id.to_string(),
            generation,
            phase: WsPhase::Upgrading {
                exchange: Exchange::new(stream, call, false),
                key,
            },
        });
        let slot = self.add_conn(conn, Some(now + UPGRADE_TIMEOUT))?;
        let conn_generation = self.conns.key(slot).map_or(0, |k| k.generation);
        if let Some(state) = self.apps.as_mut().and_then(|l| l.links.get_mut(app_id)) {
            state.conn = Some((slot, conn_generation));
        }
        log::debug!("controls: {app_id}: opening the control websocket to {addr}");
        Ok(())
    }

    fn ws_failed_to_open(&mut self, app_id: &str, error: &io::Error, now: Instant) {
        self.note_ws_failure(app_id, &format!("connect: {error}"), now);
    }

    /// Records a dropped or refused websocket and schedules the reconnect.
    fn note_ws_failure(&mut self, app_id: &str, reason: &str, now: Instant) {
        let Some(state) = self.apps.as_mut().and_then(|l| l.links.get_mut(app_id)) else {
            return;
        };
        state.conn = None;
        state.failures = state.failures.saturating_add(1);
        let delay = backoff_delay(state.failures);
        state.retry_at = Some(now + delay);
        let retry = crate::plugins::registry::GoDuration(delay);
        if state.failures == 1 {
            log::warn!(
                "controls: app {app_id}: control websocket: {reason}; reconnecting in {retry}"
            );
        } else {
            log::debug!(
                "controls: app {app_id}: control websocket: {reason}; reconnecting in {retry}"
            );
        }
        self.drive_apps(now);
    }

    fn close_ws(&mut self, slot: usize, reason: &str, now: Instant) {
        if let Some(Conn::Ws(link)) = self.close_conn(slot) {
            self.note_ws_failure(&link.app_id, reason, now);
        }
    }

    pub(super) fn handle_ws_timeout(&mut self, slot: usize, now: Instant) {
        let verdict = match self.conns.get_mut(slot) {
            Some(Conn::Ws(WsLink {
                phase: WsPhase::Upgrading { .. },
                ..
            })) => Some(format!(
                "no answer to the upgrade within {}",
                crate::plugins::registry::GoDuration(UPGRADE_TIMEOUT)
            )),
            Some(Conn::Ws(WsLink {
                phase: WsPhase::Open {
                    ws, keepalive_at, ..
                },
                ..
            })) => {
                // Only the pending entry counts; one that fires before it is stale.
                if keepalive_at.is_some_and(|at| at > now) {
                    return;
                }
                *keepalive_at = None;
                ws.handle_timeout(now);
                ws.is_dead(now)
                    .then(|| "no frame from the app for 60s".to_string())
            }
            _ => return,
        };
        match verdict {
            Some(reason) => self.close_ws(slot, &reason, now),
            None => self.flush_ws(slot, now),
        }
    }

    pub(super) fn handle_ws_event(&mut self, slot: usize, now: Instant) {
        let upgrading = matches!(
            self.conns.get(slot),
            Some(Conn::Ws(WsLink {
                phase: WsPhase::Upgrading { .. },
                ..
            }))
        );
        if upgrading {
            self.drive_upgrade(slot, now);
        } else {
            self.read_ws(slot, now);
        }
    }

    fn drive_upgrade(&mut self, slot: usize, now: Instant) {
        let drive = match self.conns.get_mut(slot) {
            Some(Conn::Ws(WsLink {
                phase: WsPhase::Upgrading { exchange, .. },
                ..
            })) => exchange.drive(&mut self.scratch),
            _ => return,
        };
        match drive {
            Drive::Pending => {}
            Drive::Done(Err(e)) => self.close_ws(slot, &format!("upgrade: {e}"), now),
            Drive::Done(Ok(answer)) => self.finish_upgrade(slot, answer, now),
        }
    }

    fn finish_upgrade(&mut self, slot: usize, answer: Answer, now: Instant) {
        let Some(Conn::Ws(link)) = self.remove_conn(slot) else {
            return;
        };
        let WsPhase::Upgrading { exchange, key } = link.phase else {
            return;
        };
        let checked = match exchange.head() {
            Some(head) => ws::check_upgrade_response(
                head.status,
                head.headers
                    .iter()
                    .map(|h| (h.name.as_ref(), h.value.as_ref())),
                &key,
            ),
            None => Err(ws::WsError::UpgradeStatus(answer.code)),
        };
        if let Err(e) = checked {
            let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]);
            let reason = format!("upgrade refused: {e} {}", body.trim());
            self.note_ws_failure(&link.app_id, &reason, now);
            return;
        }
        let (stream, leftover) = exchange.into_parts();
        let mut conn = WsConn::new(now, WsConfig::default(), mask_source());
        conn.handle_input(&leftover, now);
        let deadline = conn.poll_timeout();
        let app_id = link.app_id.clone();
        let new = Conn::Ws(WsLink {
            app_id: link.app_id,
            generation: link.generation,
            phase: WsPhase::Open {
                stream,
                ws: conn,
                rpc: RpcServer::new(),
                keepalive_at: deadline,
            },
        });
        match self.add_conn(new, deadline) {
            Ok(new_slot) => {
                let conn_generation = self.conns.key(new_slot).map_or(0, |k| k.generation);
                if let Some(state) = self.apps.as_mut().and_then(|l| l.links.get_mut(&app_id)) {
                    if state.failures > 0 {
                        log::info!("controls: app {app_id}: control websocket up again");
                    }
                    state.conn = Some((new_slot, conn_generation));
                    state.failures = 0;
                    state.retry_at = None;
                }
                log::info!("controls: app {app_id}: control websocket open");
                // Frames may have arrived with the 101.
                self.process_ws_messages(new_slot, now);
            }
            Err(e) => self.note_ws_failure(&app_id, &format!("registering: {e}"), now),
        }
    }

    fn read_ws(&mut self, slot: usize, now: Instant) {
        loop {
            let Some(Conn::Ws(WsLink {
                phase: WsPhase::Open { stream, ws, .. },
                ..
            })) = self.conns.get_mut(slot)
            else {
                return;
            };
            match stream.read(&mut self.scratch) {
                Ok(0) => return self.close_ws(slot, "closed by the app", now),
                Ok(n) => ws.handle_input(&self.scratch[..n], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.close_ws(slot, &format!("read: {e}"), now),
            }
        }
        self.process_ws_messages(slot, now);
    }

    /// Takes every complete message off the websocket and answers the calls among them.
    fn process_ws_messages(&mut self, slot: usize, now: Instant) {
        let mut calls: Vec<RpcCall> = Vec::new();
        let mut failure = None;
        let (app_id, ws_generation) = match self.conns.get_mut(slot) {
            Some(Conn::Ws(WsLink {
                app_id,
                phase: WsPhase::Open { ws, rpc, .. },
                ..
            })) => {
                while let Some(message) = ws.poll_message() {
                    match message {
                        Ok(Message::Text(text)) => match rpc.handle_message(&text) {
                            Ok(Some(call)) => calls.push(call),
                            Ok(None) => {}
                            Err(e) => match e.reply() {
                                // Unknown method or bad arguments: answered, stream goes on.
                                Some(frames) => {
                                    for frame in &frames {
                                        let _ = ws.send_text(frame, now);
                                    }
                                }
                                None => {
                                    failure = Some(e.to_string());
                                    break;
                                }
                            },
                        },
                        Ok(Message::Close(code, reason)) => {
                            failure = Some(format!("closed by the app ({code} {reason})"));
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            failure = Some(e.to_string());
                            break;
                        }
                    }
                }
                (
                    app_id.clone(),
                    self.conns.key(slot).map_or(0, |k| k.generation),
                )
            }
            _ => return,
        };
        for call in calls {
            self.handle_control_call(slot, ws_generation, &app_id, call, now);
        }
        // Answering can itself close this websocket (and reuse its slot).
        if !self.conns.is_live(super::slab::Key {
            slot,
            generation: ws_generation,
        }) {
            return;
        }
        match failure {
            Some(reason) => {
                self.flush_ws(slot, now);
                self.close_ws(slot, &reason, now);
            }
            None => self.flush_ws(slot, now),
        }
    }

    /// Writes what the websocket has queued, re-registers, and sets its keepalive deadline.
    fn flush_ws(&mut self, slot: usize, now: Instant) {
        let mut error = None;
        let deadline = match self.conns.get_mut(slot) {
            Some(Conn::Ws(WsLink {
                phase:
                    WsPhase::Open {
                        stream,
                        ws,
                        keepalive_at,
                        ..
                    },
                ..
            })) => {
                while ws.wants_write() {
                    match stream.write(ws.pending_output()) {
                        Ok(0) => {
                            error = Some("write: connection closed".to_string());
                            break;
                        }
                        Ok(n) => ws.consume_output(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            error = Some(format!("write: {e}"));
                            break;
                        }
                    }
                }
                if ws.is_closed() && !ws.wants_write() {
                    error = Some("closed".to_string());
                }
                // The keepalive instant only moves later, so the pending entry (if any) fires
                // first and re-arms from there: one entry per websocket, not one per flush.
                match (ws.poll_timeout(), *keepalive_at) {
                    (Some(at), armed) if armed.is_none_or(|armed| at < armed) => {
                        *keepalive_at = Some(at);
                        Some(at)
                    }
                    _ => None,
                }
            }
            _ => return,
        };
        if let Some(reason) = error {
            return self.close_ws(slot, &reason, now);
        }
        if let (Some(at), Some(key)) = (deadline, self.conns.key(slot)) {
            self.timers.set(
                at,
                Timer::ConnDeadline {
                    slot,
                    generation: key.generation,
                },
            );
        }
    }

    /// RF §7.7: routes one `control.Handle` call; answers at once when it cannot reach a
    /// plugin, otherwise when the plugin answers (or its deadline passes).
    fn handle_control_call(
        &mut self,
        ws_slot: usize,
        ws_generation: u64,
        app_id: &str,
        call: RpcCall,
        now: Instant,
    ) {
        let reply = ControlReply {
            ws_slot,
            ws_generation,
            seq: call.seq,
            method: call.method,
        };
        let mut request = call.args;
        // AP §4: the app leaves AppID empty; the probe fills in the id it learned.
        request.app_id = app_id.to_string();
        let (path, original) = match self.route_control(&request.control) {
            Ok(route) => route,
            Err(text) => {
                log::info!("controls: {}: {text}", request.control);
                return self.send_control_reply(&reply, &rpc::error_response(&text), now);
            }
        };
        let full_id = std::mem::replace(&mut request.control, original);
        log::debug!(
            "controls: {full_id} on {} for app {app_id}",
            request.node_id
        );
        let body = rpc::encode_control_request(&request);
        let target = plugin_target(
            "/control",
            &self.config.options.api_version,
            &self.config.probe_id,
        );
        let call = http::Call::new(
            &http::Request {
                method: http::Method::Post,
                target: &target,
                host: "plugin",
                headers: &[
                    ("User-Agent", USER_AGENT),
                    ("Content-Type", "application/json"),
                ],
                body: &body,
            },
            self.plugin_limits(),
        );
        if let Err(e) = self.start_plugin_call(&path, call, Purpose::Control(reply.clone()), now) {
            self.finish_control(reply, &path, Err(e), now);
        }
    }

    /// RF §7.7: the registered handler for the full ID, then the plugin, then its interface.
    /// Returns the plugin's socket and the original control ID, or the error text.
    fn route_control(&self, full_id: &str) -> Result<(std::path::PathBuf, String), String> {
        if self.config.options.no_controls {
            return Err("controls are disabled on this probe (--no-controls)".to_string());
        }
        // Split at the first '~'; without one the plugin ID is "" (RF §7.7).
        let (plugin_id, control) = full_id.split_once('~').unwrap_or(("", full_id));
        let plugin = self.registry.by_id(plugin_id);
        let registered = plugin.is_some_and(|p| p.controls.iter().any(|c| c == control));
        if !registered {
            return Err(format!("Control {} not recognised", go_quote(full_id)));
        }
        let Some(plugin) = plugin else {
            return Err(format!("plugin {plugin_id} not found"));
        };
        if !plugin.is_controller() {
            return Err(format!(
                "the {} plugin does not implement the controller interface",
                plugin.spec.label
            ));
        }
        Ok((plugin.path.clone(), control.to_string()))
    }

    /// The plugin answered a control (or failed to): update its status like Scope does,
    /// publish a shortcut report, and answer the app.
    pub(super) fn finish_control(
        &mut self,
        reply: ControlReply,
        path: &Path,
        result: Result<Answer, TransportError>,
        now: Instant,
    ) {
        let response = match self.control_outcome(path, result, now) {
            Ok(json) => {
                self.set_control_status(path, Ok(()));
                json
            }
            Err(text) => {
                log::warn!("plugins: {}: /control error: {text}", path.display());
                self.set_control_status(path, Err(&text));
                rpc::error_response(&text)
            }
        };
        self.send_control_reply(&reply, &response, now);
    }

    fn set_control_status(&mut self, path: &Path, result: Result<(), &str>) {
        if let Some(plugin) = self.registry.get_mut(path) {
            plugin.spec.status = match result {
                Ok(()) => "ok".into(),
                Err(text) => format!("error: {text}").into(),
            };
        }
    }

    /// RF §7.8: the response for the app, without `shortcutReport`; the shortcut report, if
    /// any, is published before the answer goes back.
    fn control_outcome(
        &mut self,
        path: &Path,
        result: Result<Answer, TransportError>,
        now: Instant,
    ) -> Result<String, String> {
        let answer = result.map_err(|e| e.to_string())?;
        if answer.code != 200 {
            let status = if answer.reason.is_empty() {
                answer.code.to_string()
            } else {
                format!("{} {}", answer.code, answer.reason)
            };
            return Err(format!("plugin returned non-200 status code: {status}"));
        }
        let response = rpc::decode_control_response(&answer.body).map_err(|e| e.to_string())?;
        if let Some(raw) = response.shortcut_report() {
            self.publish_shortcut(path, raw, now)?;
        }
        Ok(response.encode_for_app())
    }

    /// RF §7.9, without Scope's crashes: decoded over empty defaults, rejected without a
    /// `Plugins` entry, rewritten and registered like a report, published at once.
    fn publish_shortcut(&mut self, path: &Path, raw: &str, now: Instant) -> Result<(), String> {
        let now_time = Time::from_system(SystemTime::now());
        let mut rpt = report::decode_shortcut_report(raw, now_time)
            .map_err(|e| format!("shortcut report: decoding error: {e}"))?;
        let Some(plugin_id) = rpt.plugins.iter().next().map(|s| s.id.to_string()) else {
            return Err("shortcut report must contain a plugin spec in Plugins".to_string());
        };
        let controls = report::rewrite_controls(&mut rpt, &plugin_id, now_time);
        match self.registry.get_mut(path) {
            Some(plugin) if plugin.id == plugin_id => plugin.controls = controls,
            _ => log::warn!(
                "plugins: {}: shortcut report names plugin {plugin_id:?}; its controls are not registered",
                path.display()
            ),
        }
        rpt.shortcut = true;
        let rpt = self.finish_report(rpt, now_time);
        let mut json = Vec::new();
        report::encode(&rpt, &mut json);
        self.publish_json(json, true, now)
            .map_err(|e| format!("publishing the shortcut report: {e}"))
    }

    /// Sends the two reply frames of a call, if its websocket is still the same connection.
    fn send_control_reply(&mut self, reply: &ControlReply, response: &str, now: Instant) {
        let live = self.conns.is_live(super::slab::Key {
            slot: reply.ws_slot,
            generation: reply.ws_generation,
        });
        if !live {
            log::info!(
                "controls: the app's websocket closed before the answer to call {}",
                reply.seq
            );
            return;
        }
        if let Some(Conn::Ws(WsLink {
            phase: WsPhase::Open { ws, .. },
            ..
        })) = self.conns.get_mut(reply.ws_slot)
        {
            for frame in rpc::reply(reply.seq, &reply.method, Ok(response)) {
                let _ = ws.send_text(&frame, now);
            }
        }
        self.flush_ws(reply.ws_slot, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Config;

    /// A probe holding one open control websocket over a real loopback connection; the app's
    /// end is returned so it stays open.
    fn probe_with_open_ws() -> (Probe, usize, std::net::TcpStream) {
        let config = Config::new(None, "1".into(), "testhost".into());
        let mut probe = Probe::new(config).expect("probe");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (app, _) = listener.accept().expect("accept");
        client.set_nonblocking(true).expect("non-blocking");
        let ws = WsConn::new(Instant::now(), WsConfig::default(), mask_source());
        let deadline = ws.poll_timeout();
        let link = Conn::Ws(WsLink {
            app_id: "app".into(),
            generation: 1,
            phase: WsPhase::Open {
                stream: TcpStream::from_std(client),
                ws,
                rpc: RpcServer::new(),
                keepalive_at: deadline,
            },
        });
        let slot = probe.add_conn(link, deadline).expect("add");
        (probe, slot, app)
    }

    // Every flush used to push another keepalive entry, and every entry that fired pushed one
    // more: a busy websocket grew the timer heap (and the wake-ups every 33 s) without bound.
    #[test]
    fn keepalive_deadline_stays_one_timer_entry() {
        let (mut probe, slot, _app) = probe_with_open_ws();
        let entries = probe.timers.len();
        let now = Instant::now();
        for _ in 0..100 {
            probe.flush_ws(slot, now);
        }
        assert_eq!(probe.timers.len(), entries, "flushes add no entries");
        let generation = probe.conns.key(slot).expect("live").generation;
        for _ in 0..100 {
            probe.handle_deadline(slot, generation, now);
        }
        assert_eq!(probe.timers.len(), entries, "early wake-ups add no entries");
        assert!(
            probe
                .conns
                .is_live(crate::probe::slab::Key { slot, generation })
        );
    }
}
