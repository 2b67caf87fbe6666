//! The loop's side of publishing (AP §1–§3): turning [`Apps`]' requests into HTTP calls on
//! TCP connections, feeding their outcomes and the resolver's answers back, and keeping one
//! timer entry aimed at the next instant `Apps` (or a websocket retry) needs the clock.
//!
//! In scope: sockets and deadlines of app requests. Out of scope: which request goes where
//! and when, backoff and app identity (all in [`crate::publish::apps`]); the control
//! websocket (`controls.rs`).

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::conn::{AppCall, Conn};
use super::exchange::{Drive, Exchange, USER_AGENT};
use super::{Config, Probe, Timer};
use crate::http;
use crate::publish::apps::{AppRequest, Apps, ProbeIdentity, RequestId};
use crate::publish::resolver::Resolver;

/// One app request, connect to last byte. Scope's app client allows 10 s as well.
pub(super) const APP_TIMEOUT: Duration = Duration::from_secs(10);

/// An app's `/api` answer or `/api/report` reply is small; anything bigger is an error.
const APP_MAX_BODY: usize = 1 << 20;

/// Publishing state owned by the loop.
pub(super) struct AppLinks {
    /// Targets, addresses, app identities and backoff.
    pub apps: Apps,
    resolver: Resolver,
    /// The instant a [`Timer::Apps`] entry is pending for, so at most one is live.
    timer_at: Option<Instant>,
    /// The control websocket of each app, by app id.
    pub links: HashMap<String, super::controls::LinkState>,
    /// Headers every app request carries (AP §2).
    pub probe_headers: Vec<(String, String)>,
}

impl AppLinks {
    /// Publishing to `targets`, with the resolver thread registered under `token`.
    pub fn new(
        targets: Vec<(String, u16)>,
        config: &Config,
        registry: &mio::Registry,
        token: mio::Token,
        now: Instant,
    ) -> io::Result<AppLinks> {
        let identity = ProbeIdentity {
            probe_id: config.probe_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            token: config.options.token.clone(),
        };
        let probe_headers = vec![
            ("User-Agent".to_string(), USER_AGENT.to_string()),
            (
                "Authorization".to_string(),
                format!("Scope-Probe token={}", config.options.token),
            ),
            ("X-Scope-Probe-ID".to_string(), config.probe_id.clone()),
            (
                "X-Scope-Probe-Version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ];
        Ok(AppLinks {
            apps: Apps::new(targets, &identity, now),
            resolver: Resolver::new(registry, token)?,
            timer_at: None,
            links: HashMap::new(),
            probe_headers,
        })
    }
}

impl Probe {
    /// Hands out everything `Apps` wants done now: lookups, requests, websockets, and the
    /// next timer. Call after every change to `Apps`.
    pub(super) fn drive_apps(&mut self, now: Instant) {
        loop {
            let Some(links) = &mut self.apps else {
                return;
            };
            while let Some((id, host, port)) = links.apps.poll_resolve(now) {
                links.resolver.resolve(id, host, port);
            }
            let mut requests = Vec::new();
            while let Some(request) = links.apps.poll_request(now) {
                requests.push(request);
            }
            if requests.is_empty() {
                break;
            }
            for request in requests {
                if let Err((id, error)) = self.start_app_call(request, now) {
                    // A connect that fails at once is an outcome like any other.
                    if let Some(links) = &mut self.apps {
                        links.apps.handle_response(id, Err(error), now);
                    }
                }
            }
        }
        self.drive_control_links(now);
        self.arm_apps_timer(now);
    }

    fn start_app_call(
        &mut self,
        request: AppRequest,
        now: Instant,
    ) -> Result<(), (RequestId, String)> {
        let id = request.id;
        let stream = TcpStream::connect(request.addr).map_err(|e| (id, format!("connect: {e}")))?;
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let host = request.addr.to_string();
        let method = if request.method == "POST" {
            http::Method::Post
        } else {
            http::Method::Get
        };
        let call = http::Call::new(
            &http::Request {
                method,
                target: request.target,
                host: &host,
                headers: &headers,
                body: &request.body,
            },
            http::Limits {
                max_body_bytes: APP_MAX_BODY,
                ..http::Limits::default()
            },
        );
        let conn = Conn::App(AppCall {
            exchange: Exchange::new(stream, call, false),
            id,
        });
        self.add_conn(conn, Some(now + APP_TIMEOUT))
            .map(|_| ())
            .map_err(|e| (id, format!("registering the connection: {e}")))
    }

    pub(super) fn handle_app_event(&mut self, slot: usize, now: Instant) {
        let drive = match self.conns.get_mut(slot) {
            Some(Conn::App(call)) => call.exchange.drive(&mut self.scratch),
            _ => return,
        };
        let outcome = match drive {
            Drive::Pending => return,
            Drive::Done(result) => result
                .map(|answer| (answer.code, answer.body))
                .map_err(|e| e.to_string()),
        };
        self.finish_app_call(slot, outcome, now);
    }

    pub(super) fn app_call_timed_out(&mut self, slot: usize, now: Instant) {
        let text = format!(
            "no answer within {}",
            crate::plugins::registry::GoDuration(APP_TIMEOUT)
        );
        self.finish_app_call(slot, Err(text), now);
    }

    fn finish_app_call(
        &mut self,
        slot: usize,
        outcome: Result<(u16, Vec<u8>), String>,
        now: Instant,
    ) {
        let Some(Conn::App(call)) = self.close_conn(slot) else {
            return;
        };
        if let Some(links) = &mut self.apps {
            links.apps.handle_response(call.id, outcome, now);
        }
        self.drive_apps(now);
    }

    /// The resolver thread answered: hand the addresses to `Apps`.
    pub(super) fn handle_resolved(&mut self, now: Instant) {
        let Some(links) = &mut self.apps else {
            return;
        };
        for (id, result) in links.resolver.drain() {
            links.apps.handle_resolved(id, result, now);
        }
        self.drive_apps(now);
    }

    pub(super) fn handle_apps_timer(&mut self, now: Instant) {
        if let Some(links) = &mut self.apps {
            // An entry firing before the armed instant is stale (an earlier deadline replaced
            // it): the armed entry is still pending, and forgetting it would arm a duplicate.
            if links.timer_at.is_some_and(|at| at <= now) {
                links.timer_at = None;
            }
            links.apps.handle_timeout(now);
        }
        self.drive_apps(now);
    }

    /// Keeps one timer entry at the earliest instant `Apps` or a websocket retry needs.
    fn arm_apps_timer(&mut self, now: Instant) {
        let Some(links) = &mut self.apps else {
            return;
        };
        let retries = links.links.values().filter_map(|l| l.retry_at);
        let Some(next) = links.apps.poll_timeout().into_iter().chain(retries).min() else {
            return;
        };
        // Something due but not handed out (everything due was just polled) must not spin.
        let at = next.max(now + Duration::from_millis(1));
        if links.timer_at.is_none_or(|armed| at < armed) {
            links.timer_at = Some(at);
            self.timers.set(at, Timer::Apps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A stale entry (one set before an earlier deadline replaced it) used to clear the armed
    // instant when it fired, so the next arming pushed a duplicate of the live entry; the
    // duplicates then re-armed each other forever.
    #[test]
    fn a_stale_apps_entry_neither_disarms_nor_duplicates_the_live_one() {
        // An app that accepts connections (in the backlog) and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut config = Config::new(None, "1".into(), "testhost".into());
        config.options.targets = vec![crate::cli::Target {
            host: "127.0.0.1".into(),
            port,
        }];
        let mut probe = Probe::new(config).expect("probe");
        let t0 = Instant::now();
        probe.drive_apps(t0);
        let discovery = probe
            .conns
            .slots()
            .into_iter()
            .find(|s| matches!(probe.conns.get(*s), Some(Conn::App(_))))
            .expect("a discovery request");
        probe.finish_app_call(discovery, Err("refused".into()), t0);
        let armed = probe.apps.as_ref().and_then(|l| l.timer_at);
        assert_eq!(armed, Some(t0 + Duration::from_secs(1)), "backoff armed");
        let entries = probe.timers.len();

        probe.handle_apps_timer(t0 + Duration::from_millis(500));
        assert_eq!(probe.apps.as_ref().and_then(|l| l.timer_at), armed);
        assert_eq!(probe.timers.len(), entries, "no duplicate entry");
    }
}
