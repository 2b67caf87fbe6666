//! The loop's side of `--http-listen`: accepting local clients and answering `/api/report`,
//! `/api/plugins` and `/metrics` from the probe's own state.
//!
//! In scope: sockets, the per-connection deadline, gathering the data each endpoint shows.
//! Out of scope: HTTP parsing and rendering (`crate::serve`).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Probe;
use super::conn::{Conn, LocalConn};
use crate::serve::{self, Route, ServerConn};

/// A local client gets this long to send its request and read the answer.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(10);

impl Probe {
    pub(super) fn accept_local(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.local else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let conn = Conn::Local(LocalConn {
                        stream,
                        server: ServerConn::new(),
                    });
                    if let Err(e) = self.add_conn(conn, Some(now + LOCAL_TIMEOUT)) {
                        log::warn!("http: registering a client failed: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the client waits in the backlog until fds free up.
                    log::warn!("http: accept failed: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn handle_local_event(&mut self, slot: usize, _now: Instant) {
        let mut request = None;
        let mut failed = false;
        if let Some(Conn::Local(conn)) = self.conns.get_mut(slot) {
            while conn.server.wants_read() {
                match conn.stream.read(&mut self.scratch) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => match conn.server.handle_input(&self.scratch[..n]) {
                        Ok(Some(r)) => {
                            request = Some(r);
                            break;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            conn.server.respond_error(e);
                            break;
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        if let Some(request) = request {
            let (status, content_type, body) = self.local_answer(&request);
            if let Some(Conn::Local(conn)) = self.conns.get_mut(slot) {
                if status == 200 {
                    conn.server.respond(status, content_type, &body);
                } else {
                    conn.server.respond_status(status);
                }
            }
        }
        if !failed && let Some(Conn::Local(conn)) = self.conns.get_mut(slot) {
            while conn.server.wants_write() {
                match conn.stream.write(conn.server.pending_output()) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => conn.server.consume_output(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            failed |= conn.server.is_finished();
        }
        if failed {
            self.close_conn(slot);
        }
    }

    /// Status, content type and body for one local request.
    fn local_answer(&self, request: &serve::Request) -> (u16, &'static str, Vec<u8>) {
        match serve::route(request) {
            Route::Report if self.last_report.is_empty() => (503, "", Vec::new()),
            Route::Report => (200, serve::JSON_CONTENT_TYPE, self.last_report.to_vec()),
            Route::Plugins => (200, serve::JSON_CONTENT_TYPE, self.render_plugins()),
            Route::Metrics => (
                200,
                serve::METRICS_CONTENT_TYPE,
                self.render_metrics().into_bytes(),
            ),
            Route::NotFound => (404, "", Vec::new()),
            Route::MethodNotAllowed => (405, "", Vec::new()),
        }
    }

    fn render_plugins(&self) -> Vec<u8> {
        let paths: Vec<String> = self
            .registry
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        let states: Vec<serve::PluginState<'_>> = self
            .registry
            .iter()
            .zip(&paths)
            .map(|(p, path)| serve::PluginState {
                id: &p.id,
                label: &p.spec.label,
                status: p.status(),
                socket: path,
                interfaces: p.spec.interfaces.iter().map(|i| i.as_ref()).collect(),
                last_poll_latency_ms: p.stats.last_latency.map(|d| d.as_secs_f64() * 1000.0),
                consecutive_failures: p.stats.consecutive_failures,
            })
            .collect();
        serve::render_plugins(&states)
    }

    fn render_metrics(&self) -> String {
        let unix = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let paths: Vec<String> = self
            .registry
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        let plugins: Vec<serve::PluginMetrics<'_>> = self
            .registry
            .iter()
            .zip(&paths)
            .map(|(p, path)| serve::PluginMetrics {
                id: &p.id,
                path,
                polls: p.stats.polls,
                errors: p.stats.errors,
                consecutive_failures: p.stats.consecutive_failures,
                last_latency_seconds: p.stats.last_latency.map(|d| d.as_secs_f64()),
                response_bytes: p.stats.response_bytes,
                status: p.status(),
            })
            .collect();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let statuses = self
            .apps
            .as_ref()
            .map(|l| l.apps.status())
            .unwrap_or_default();
        let names: Vec<String> = statuses
            .iter()
            .map(|s| match s.app_id {
                Some(id) => id.to_string(),
                None => s
                    .addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            })
            .collect();
        let apps: Vec<serve::AppMetrics<'_>> = statuses
            .iter()
            .zip(&names)
            .map(|(s, name)| serve::AppMetrics {
                app: name,
                publishes: s.publishes,
                failures: s.failures,
                last_success_unix_seconds: s
                    .last_success
                    .map(|at| unix(wall - now.saturating_duration_since(at))),
            })
            .collect();
        serve::render_metrics(
            &serve::ProbeInfo {
                version: env!("CARGO_PKG_VERSION"),
                probe_id: &self.config.probe_id,
                start_time_unix_seconds: unix(self.started_at),
            },
            &plugins,
            &apps,
        )
    }
}
