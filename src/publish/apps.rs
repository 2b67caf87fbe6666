//! The state of every Scope app the probe publishes to (AP §1–§3, §5), without sockets.
//!
//! Owns: the targets and their name resolution schedule, the addresses each target stands
//! for, what each address answered to `GET /api` (the app `id`), which addresses are one app,
//! which report each app still needs, per-address backoff, and the status shown in logs and
//! `/metrics`.
//!
//! Does not own: sockets, HTTP framing, request deadlines (the event loop turns each
//! [`AppRequest`] into one HTTP call on its own connection, and reports a timeout as an
//! error outcome), lookups (the [`super::resolver`] thread does them), building or compressing
//! reports, or the control websocket (the loop opens one per entry of [`Apps::apps`]).
//!
//! Driving it (quinn-proto style; nothing here reads a clock):
//!
//! ```text
//!   loop {
//!       while let Some(job) = apps.poll_resolve(now)   -> resolver.resolve(job)
//!       while let Some(req) = apps.poll_request(now)   -> start an HTTP call
//!       arm the timer for apps.poll_timeout()
//!       wait; then, as things happen:
//!         resolver answers  -> apps.handle_resolved(id, result, now)
//!         an HTTP call ends -> apps.handle_response(id, outcome, now)
//!         publish interval  -> apps.publish(gzip(report), false, now)
//!         timer fired       -> apps.handle_timeout(now)
//!   }
//! ```
//!
//! Every address goes through these states:
//!
//! ```text
//!            new address             failure: backoff 1 s, 2 s, 4 s … 60 s
//!                 |                +-----------------------------+
//!                 v                v                             |
//!   +--> WaitDiscover{at} --> Discovering(GET /api) --2xx + id--> Up <--2xx-- Publishing
//!   |                                                             |             ^
//!   |                                                             +--report-----+
//!   +---------------- failure of either request: backoff ------------------------+
//! ```
//!
//! An address that failed goes back through `GET /api` before it gets another report, which
//! also notices an app that restarted with a new `id` behind the same address.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// AP §2: the discovery request target.
pub const DISCOVERY_TARGET: &str = "/api";
/// AP §3: the report request target.
pub const REPORT_TARGET: &str = "/api/report";

/// AP §1: first retry delay of a failing address (Scope: 1 s doubling to 60 s).
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// AP §1: longest retry delay of a failing address.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// AP §1: a name is resolved again after 1 s, then every doubling interval up to this.
const RESOLVE_FIRST: Duration = Duration::from_secs(1);
/// AP §1: longest interval between two lookups of one name.
const RESOLVE_MAX: Duration = Duration::from_secs(300);
/// How much of a 4xx/5xx body goes into a log line (Scope apps answer 400 with a text reason).
const ERROR_BODY_LIMIT: usize = 200;

/// Identifies one request handed out by [`Apps::poll_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies one lookup handed out by [`Apps::poll_resolve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolveId(pub u64);

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET /api`: learn which app answers at this address (AP §2).
    Discover,
    /// `POST /api/report`: one gzip JSON report (AP §3).
    Publish,
}

/// One HTTP request for the loop to make, on a connection of its own, to `addr`.
///
/// The HTTP layer adds `Host`, `Content-Length` and `Connection: close`; everything else is
/// here. Answer it with [`Apps::handle_response`], always: an error outcome (connect error,
/// deadline passed) is what puts the address into backoff.
#[derive(Clone, Debug)]
pub struct AppRequest {
    /// Pass back to [`Apps::handle_response`].
    pub id: RequestId,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Discovery or report.
    pub kind: RequestKind,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// [`DISCOVERY_TARGET`] or [`REPORT_TARGET`].
    pub target: &'static str,
    /// Request headers in order (AP §2, §3).
    pub headers: Vec<(String, String)>,
    /// The gzip report for a publish (shared with every other app's request); empty for
    /// discovery.
    pub body: Rc<[u8]>,
}

/// Who the probe is to the apps (AP §2, §5).
#[derive(Clone, Debug)]
pub struct ProbeIdentity {
    /// `X-Scope-Probe-ID`: random 63-bit integer in lower-case hex, new at every start.
    pub probe_id: String,
    /// The probe's version, for `User-Agent` and `X-Scope-Probe-Version`.
    pub version: String,
    /// The token for `Authorization: Scope-Probe token=…`; may be empty.
    pub token: String,
}

/// An app as the control websocket sees it (AP §4): one per app `id`, listed while the app
/// has a live address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppView<'a> {
    /// The `id` the app gave in `GET /api`.
    pub app_id: &'a str,
    /// A live address of the app (the one that worked last, when it is still live).
    pub addr: SocketAddr,
    /// Changes every time the app comes back after having no live address: a websocket
    /// opened for an older generation should be reopened.
    pub generation: u64,
}

/// Status of one app (or of one address that has not told its app `id` yet), for `/metrics`
/// and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppStatus<'a> {
    /// The app `id`, or `None` for an address that has never answered `GET /api`.
    pub app_id: Option<&'a str>,
    /// The app's addresses, in order.
    pub addrs: Vec<SocketAddr>,
    /// Whether some address of the app is taking requests.
    pub up: bool,
    /// Reports the app accepted.
    pub publishes: u64,
    /// Failed requests of either kind.
    pub failures: u64,
    /// When the app last answered a request with 2xx (turn into wall-clock time with the
    /// caller's `SystemTime::now() - (now - last_success)`).
    pub last_success: Option<Instant>,
    /// What went wrong last, as logged.
    pub last_error: Option<&'a str>,
}

/// Why a request failed; `Display` is the text after `publish: <addr>: <request>: ` in logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request did not complete; the text is the loop's (connect error, deadline…).
    Transport(String),
    /// The app answered with a status other than 2xx; `body` is the start of its answer.
    Status {
        /// The HTTP status code.
        status: u16,
        /// At most the first 200 bytes of the body, lossily decoded and trimmed.
        body: String,
    },
    /// `GET /api` answered 2xx but without a usable app `id`.
    NoAppId(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transport(text) => f.write_str(text),
            Failure::Status { status, body } if body.is_empty() => {
                write!(f, "status {status}")
            }
            Failure::Status { status, body } => write!(f, "status {status}: {body}"),
            Failure::NoAppId(why) => write!(f, "no app id in the answer: {why}"),
        }
    }
}

impl Failure {
    fn status(status: u16, body: &[u8]) -> Failure {
        let head = body.get(..ERROR_BODY_LIMIT).unwrap_or(body);
        // A cut through a UTF-8 sequence shows as one replacement character: fine for a log.
        let text = String::from_utf8_lossy(head);
        Failure::Status {
            status,
            body: text.trim().to_owned(),
        }
    }
}

/// The part of the `GET /api` answer the probe needs (AP §2).
#[derive(Deserialize)]
struct Details {
    id: String,
}

/// Where an address is in its cycle; see the module diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// Needs `GET /api` at `at`: the address is new, or failed and is backing off.
    WaitDiscover { at: Instant },
    /// `GET /api` in flight.
    Discovering(RequestId),
    /// Answered `GET /api` and every request since; idle.
    Up,
    /// A report in flight; the address counts as live.
    Publishing(RequestId),
}

impl Link {
    fn is_live(self) -> bool {
        matches!(self, Link::Up | Link::Publishing(_))
    }

    fn in_flight(self) -> Option<(RequestId, RequestKind)> {
        match self {
            Link::Discovering(id) => Some((id, RequestKind::Discover)),
            Link::Publishing(id) => Some((id, RequestKind::Publish)),
            Link::WaitDiscover { .. } | Link::Up => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Stats {
    publishes: u64,
    failures: u64,
    last_success: Option<Instant>,
    /// The last failure and when it happened (to pick the latest one across an app's
    /// addresses).
    last_error: Option<(Instant, String)>,
}

#[derive(Debug)]
struct Address {
    link: Link,
    /// The `id` this address answered last. Kept through failures, so that an app keeps its
    /// identity (and its record of which report it got) while it is down.
    app_id: Option<String>,
    /// Failures since the last success: the backoff exponent.
    failures_in_row: u32,
    /// Whether the current run of failures was logged at warn level (log state changes once).
    down_logged: bool,
    stats: Stats,
}

impl Address {
    fn new(now: Instant) -> Address {
        Address {
            link: Link::WaitDiscover { at: now },
            app_id: None,
            failures_in_row: 0,
            down_logged: false,
            stats: Stats::default(),
        }
    }
}

#[derive(Debug)]
struct App {
    /// Sequence number of the last report handed out for this app (0: none). Never decreases,
    /// so a report is handed out at most once per app, and a failed one is not resent (AP §3).
    sent_seq: u64,
    /// The address whose last report was accepted; preferred while it is live.
    last_good: Option<SocketAddr>,
    generation: u64,
    /// Whether some address of the app is live.
    live: bool,
}

#[derive(Debug)]
enum Resolution {
    /// An IP literal: its one address never changes.
    Literal,
    /// A name, looked up on Scope's ramp (AP §1).
    Name {
        /// When the next lookup is due (once `pending` is `None`).
        next_at: Instant,
        /// Interval after the next lookup: 1 s doubling up to [`RESOLVE_MAX`].
        interval: Duration,
        /// The lookup in flight, if any.
        pending: Option<ResolveId>,
        /// Whether the current run of failed lookups was logged at warn level.
        failing: bool,
    },
}

#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    resolution: Resolution,
    /// The addresses this target stands for: its literal, or the last good lookup answer.
    addrs: Vec<SocketAddr>,
}

/// The report being published. Holding only the latest bounds memory to one body (AP §3).
#[derive(Debug)]
struct Report {
    body: Rc<[u8]>,
    seq: u64,
}

/// Every app target and what is known about it. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Apps {
    /// AP §2 headers common to every request.
    headers: Vec<(String, String)>,
    targets: Vec<Target>,
    /// Every address of every target, once even when two targets share it. Invariant: the
    /// keys are exactly the union of the targets' `addrs`.
    addresses: BTreeMap<SocketAddr, Address>,
    /// Invariant: the keys are exactly the `app_id`s of `addresses`.
    apps: BTreeMap<String, App>,
    report: Option<Report>,
    /// The body of every discovery request.
    empty: Rc<[u8]>,
    last_request: u64,
    last_resolve: u64,
    last_generation: u64,
}

impl Apps {
    /// Starts with `targets` (host, port); a host is an IP literal (an IPv6 one with or
    /// without brackets) or a name. Names get their first lookup at `now`, literals their
    /// first `GET /api`.
    pub fn new(targets: Vec<(String, u16)>, identity: &ProbeIdentity, now: Instant) -> Apps {
        let targets = targets
            .into_iter()
            .map(|(host, port)| {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(&host);
                match bare.parse::<IpAddr>() {
                    Ok(ip) => Target {
                        addrs: vec![SocketAddr::new(ip, port)],
                        host,
                        port,
                        resolution: Resolution::Literal,
                    },
                    Err(_) => Target {
                        host,
                        port,
                        resolution: Resolution::Name {
                            next_at: now,
                            interval: RESOLVE_FIRST,
                            pending: None,
                            failing: false,
                        },
                        addrs: Vec::new(),
                    },
                }
            })
            .collect();
        let mut apps = Apps {
            headers: common_headers(identity),
            targets,
            addresses: BTreeMap::new(),
            apps: BTreeMap::new(),
            report: None,
            empty: Rc::from(&[][..]),
            last_request: 0,
            last_resolve: 0,
            last_generation: 0,
        };
        apps.sync_addresses(now);
        apps
    }

    /// Makes `body` (a gzip JSON report) the report every app gets next, replacing and
    /// dropping the previous one: an app that did not get that one gets this one instead
    /// (AP §3, no queue). The requests come out of [`Apps::poll_request`]. Shortcut reports
    /// (RF §7.9) go out at once exactly like normal ones.
    pub fn publish(&mut self, body: Rc<[u8]>, shortcut: bool, now: Instant) {
        let seq = self.report.as_ref().map_or(1, |r| r.seq + 1);
        log::trace!(
            "publish: {} report #{seq} of {} bytes at {now:?}",
            if shortcut { "shortcut" } else { "full" },
            body.len()
        );
        self.report = Some(Report { body, seq });
    }

    /// The next request to make, if any is due at `now`. Call until `None` after every
    /// `handle_*` and `publish`.
    ///
    /// Discoveries come first, then one report per app that has not had the current one,
    /// through an idle live address (the one that worked last if it can). An app whose
    /// addresses are all busy or down gets the report when one comes up, unless a newer report
    /// replaced it by then.
    pub fn poll_request(&mut self, now: Instant) -> Option<AppRequest> {
        let due = self.addresses.iter().find_map(|(addr, a)| match a.link {
            Link::WaitDiscover { at } if at <= now => Some(*addr),
            _ => None,
        });
        if let Some(addr) = due {
            let id = self.next_request_id();
            if let Some(a) = self.addresses.get_mut(&addr) {
                a.link = Link::Discovering(id);
            }
            return Some(self.request(id, addr, RequestKind::Discover));
        }

        let report = self.report.as_ref()?;
        let seq = report.seq;
        let (app_id, addr) = self.apps.iter().find_map(|(app_id, app)| {
            if app.sent_seq >= seq {
                return None;
            }
            let idle = |addr: &SocketAddr| {
                self.addresses.get(addr).is_some_and(|a| {
                    a.link == Link::Up && a.app_id.as_deref() == Some(app_id.as_str())
                })
            };
            let addr = app
                .last_good
                .filter(idle)
                .or_else(|| self.addresses.keys().find(|addr| idle(addr)).copied())?;
            Some((app_id.clone(), addr))
        })?;
        let id = self.next_request_id();
        if let Some(app) = self.apps.get_mut(&app_id) {
            app.sent_seq = seq;
        }
        if let Some(a) = self.addresses.get_mut(&addr) {
            a.link = Link::Publishing(id);
        }
        Some(self.request(id, addr, RequestKind::Publish))
    }

    /// Takes the outcome of a request: `Ok((status, body))` for any HTTP answer, `Err(text)`
    /// when there was none (the text goes into logs). Outcomes of requests this no longer
    /// waits for (their address was dropped) are ignored.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        outcome: Result<(u16, Vec<u8>), String>,
        now: Instant,
    ) {
        let Some((addr, kind)) = self.addresses.iter().find_map(|(addr, a)| {
            a.link
                .in_flight()
                .filter(|(in_flight, _)| *in_flight == id)
                .map(|(_, kind)| (*addr, kind))
        }) else {
            return;
        };
        let result = match outcome {
            Err(text) => Err(Failure::Transport(text)),
            Ok((status, body)) if !(200..300).contains(&status) => {
                Err(Failure::status(status, &body))
            }
            Ok((_, body)) => match kind {
                RequestKind::Publish => Ok(None),
                RequestKind::Discover => match serde_json::from_slice::<Details>(&body) {
                    Ok(details) if !details.id.is_empty() => Ok(Some(details.id)),
                    Ok(_) => Err(Failure::NoAppId("empty id".to_owned())),
                    Err(err) => Err(Failure::NoAppId(err.to_string())),
                },
            },
        };
        match result {
            Ok(app_id) => self.succeeded(addr, kind, app_id, now),
            Err(failure) => self.failed(addr, kind, &failure, now),
        }
        self.sync_apps();
    }

    /// The next lookup to start, if one is due at `now`: hand it to the resolver thread.
    pub fn poll_resolve(&mut self, now: Instant) -> Option<(ResolveId, String, u16)> {
        let target = self.targets.iter_mut().find(|t| {
            matches!(t.resolution,
                Resolution::Name { next_at, pending: None, .. } if next_at <= now)
        })?;
        self.last_resolve += 1;
        let id = ResolveId(self.last_resolve);
        if let Resolution::Name {
            next_at,
            interval,
            pending,
            ..
        } = &mut target.resolution
        {
            // AP §1: lookups at 0, 1, 3, 7, 15, 31, 63 s… from the first, then every 5 min.
            // The ramp counts from when a lookup starts, so a slow answer does not stretch it.
            *next_at = now + *interval;
            *interval = (*interval * 2).min(RESOLVE_MAX);
            *pending = Some(id);
        }
        Some((id, target.host.clone(), target.port))
    }

    /// Takes the answer of a lookup. Every address of a good answer is an app address (AP §1);
    /// addresses the answer no longer lists are dropped, with their requests in flight. A
    /// failed or empty lookup keeps the addresses known so far: a DNS hiccup should not stop
    /// publishing to apps that work, and an address that really went away fails and backs off
    /// on its own.
    pub fn handle_resolved(
        &mut self,
        id: ResolveId,
        result: Result<Vec<SocketAddr>, String>,
        now: Instant,
    ) {
        let Some(target) = self
            .targets
            .iter_mut()
            .find(|t| matches!(t.resolution, Resolution::Name { pending: Some(p), .. } if p == id))
        else {
            return;
        };
        let Resolution::Name {
            pending, failing, ..
        } = &mut target.resolution
        else {
            return;
        };
        *pending = None;
        let result = result.and_then(|addrs| {
            if addrs.is_empty() {
                Err("no addresses".to_owned())
            } else {
                Ok(addrs)
            }
        });
        match result {
            Ok(mut addrs) => {
                if *failing {
                    log::info!("publish: {}: resolves again", target.host);
                }
                *failing = false;
                addrs.sort();
                addrs.dedup();
                if addrs != target.addrs {
                    log::info!("publish: {}: resolves to {addrs:?}", target.host);
                    target.addrs = addrs;
                    self.sync_addresses(now);
                }
            }
            Err(err) => {
                if *failing {
                    log::debug!("publish: {}: cannot resolve: {err}", target.host);
                } else {
                    log::warn!("publish: {}: cannot resolve: {err}", target.host);
                }
                *failing = true;
            }
        }
    }

    /// When [`Apps::poll_request`] or [`Apps::poll_resolve`] will next have something to do
    /// without new input: the earliest backoff end or lookup due. May be in the past when
    /// something is due and not polled yet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let discoveries = self.addresses.values().filter_map(|a| match a.link {
            Link::WaitDiscover { at } => Some(at),
            _ => None,
        });
        let lookups = self.targets.iter().filter_map(|t| match t.resolution {
            Resolution::Name {
                next_at,
                pending: None,
                ..
            } => Some(next_at),
            _ => None,
        });
        discoveries.chain(lookups).min()
    }

    /// Fires the timers due at `now`. Due work is handed out by [`Apps::poll_request`] and
    /// [`Apps::poll_resolve`], which compare each deadline with their own `now`, so there is no
    /// state to change here; calling it (spuriously or not) is always harmless, and the loop
    /// can treat this core like its others.
    pub fn handle_timeout(&mut self, now: Instant) {
        log::trace!("publish: timer at {now:?}");
    }

    /// The apps with a live address, one entry per app `id`, for the control websockets.
    pub fn apps(&self) -> impl Iterator<Item = AppView<'_>> {
        self.apps
            .iter()
            .filter(|(_, app)| app.live)
            .filter_map(|(id, app)| {
                Some(AppView {
                    app_id: id,
                    addr: self.live_addr(id, app)?,
                    generation: app.generation,
                })
            })
    }

    /// The app `id` last learned at `addr`, if `addr` is a current address.
    pub fn app_id(&self, addr: SocketAddr) -> Option<&str> {
        self.addresses.get(&addr)?.app_id.as_deref()
    }

    /// One entry per app `id`, then one per address that never told its `id`.
    pub fn status(&self) -> Vec<AppStatus<'_>> {
        let mut out: Vec<AppStatus<'_>> = self
            .apps
            .iter()
            .map(|(id, app)| AppStatus {
                app_id: Some(id.as_str()),
                addrs: Vec::new(),
                up: app.live,
                publishes: 0,
                failures: 0,
                last_success: None,
                last_error: None,
            })
            .collect();
        let mut latest_error: Vec<Option<Instant>> = vec![None; out.len()];
        for (addr, a) in &self.addresses {
            let index = match &a.app_id {
                Some(id) => self.apps.keys().position(|k| k == id),
                None => None,
            };
            let index = index.unwrap_or_else(|| {
                out.push(AppStatus {
                    app_id: None,
                    addrs: Vec::new(),
                    up: false,
                    publishes: 0,
                    failures: 0,
                    last_success: None,
                    last_error: None,
                });
                latest_error.push(None);
                out.len() - 1
            });
            let (Some(entry), Some(latest)) = (out.get_mut(index), latest_error.get_mut(index))
            else {
                continue;
            };
            entry.addrs.push(*addr);
            entry.publishes += a.stats.publishes;
            entry.failures += a.stats.failures;
            entry.last_success = entry.last_success.max(a.stats.last_success);
            if let Some((at, text)) = &a.stats.last_error {
                if latest.is_none_or(|l| *at >= l) {
                    *latest = Some(*at);
                    entry.last_error = Some(text);
                }
            }
        }
        out
    }

    fn succeeded(
        &mut self,
        addr: SocketAddr,
        kind: RequestKind,
        app_id: Option<String>,
        now: Instant,
    ) {
        let Some(a) = self.addresses.get_mut(&addr) else {
            return;
        };
        a.link = Link::Up;
        a.failures_in_row = 0;
        a.down_logged = false;
        a.stats.last_success = Some(now);
        match kind {
            RequestKind::Discover => {
                if let Some(app_id) = app_id {
                    log::info!("publish: {addr}: app {app_id} up");
                    a.app_id = Some(app_id);
                }
            }
            RequestKind::Publish => {
                a.stats.publishes += 1;
                if let Some(app) = a.app_id.as_ref().and_then(|id| self.apps.get_mut(id)) {
                    app.last_good = Some(addr);
                }
            }
        }
    }

    fn failed(&mut self, addr: SocketAddr, kind: RequestKind, failure: &Failure, now: Instant) {
        let Some(a) = self.addresses.get_mut(&addr) else {
            return;
        };
        a.failures_in_row = a.failures_in_row.saturating_add(1);
        // AP §1: 1 s doubling to 60 s.
        let shift = a.failures_in_row.saturating_sub(1).min(16);
        let delay = (BACKOFF_FIRST * (1u32 << shift)).min(BACKOFF_MAX);
        a.link = Link::WaitDiscover { at: now + delay };
        let (method, target) = method_target(kind);
        let text = format!("{method} {target}: {failure}");
        // Log each outage once; its later failures only at debug level.
        if a.down_logged {
            log::debug!("publish: {addr}: {text} (retry in {delay:?})");
        } else {
            log::warn!("publish: {addr}: {text}");
            a.down_logged = true;
        }
        a.stats.failures += 1;
        a.stats.last_error = Some((now, text));
    }

    /// Re-derives `addresses` from the targets: new ones wait for discovery at `now`, gone
    /// ones are dropped with whatever they had in flight.
    fn sync_addresses(&mut self, now: Instant) {
        let mut wanted: Vec<SocketAddr> = self
            .targets
            .iter()
            .flat_map(|t| t.addrs.iter().copied())
            .collect();
        wanted.sort();
        wanted.dedup();
        self.addresses.retain(|addr, _| {
            let keep = wanted.binary_search(addr).is_ok();
            if !keep {
                log::info!("publish: {addr}: dropped, no target resolves to it any more");
            }
            keep
        });
        for addr in wanted {
            self.addresses
                .entry(addr)
                .or_insert_with(|| Address::new(now));
        }
        self.sync_apps();
    }

    /// Re-derives `apps` from the addresses' ids and liveness.
    fn sync_apps(&mut self) {
        let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
        for a in self.addresses.values() {
            if let Some(id) = &a.app_id {
                *seen.entry(id).or_insert(false) |= a.link.is_live();
            }
        }
        self.apps.retain(|id, _| seen.contains_key(id.as_str()));
        for (id, live) in seen {
            let app = self.apps.entry(id.to_owned()).or_insert(App {
                sent_seq: 0,
                last_good: None,
                generation: 0,
                live: false,
            });
            if live && !app.live {
                self.last_generation += 1;
                app.generation = self.last_generation;
            }
            app.live = live;
        }
    }

    fn live_addr(&self, id: &str, app: &App) -> Option<SocketAddr> {
        let live = |addr: &SocketAddr| {
            self.addresses
                .get(addr)
                .is_some_and(|a| a.link.is_live() && a.app_id.as_deref() == Some(id))
        };
        app.last_good
            .filter(live)
            .or_else(|| self.addresses.keys().find(|addr| live(addr)).copied())
    }

    fn next_request_id(&mut self) -> RequestId {
        self.last_request += 1;
        RequestId(self.last_request)
    }

    fn request(&self, id: RequestId, addr: SocketAddr, kind: RequestKind) -> AppRequest {
        let (method, target) = method_target(kind);
        let mut headers = self.headers.clone();
        let body = match (kind, &self.report) {
            (RequestKind::Publish, Some(report)) => {
                // AP §3: the app takes JSON, gunzipping it when told.
                headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
                headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
                Rc::clone(&report.body)
            }
            _ => Rc::clone(&self.empty),
        };
        AppRequest {
            id,
            addr,
            kind,
            method,
            target,
            headers,
            body,
        }
    }
}

fn method_target(kind: RequestKind) -> (&'static str, &'static str) {
    match kind {
        RequestKind::Discover => ("GET", DISCOVERY_TARGET),
        RequestKind::Publish => ("POST", REPORT_TARGET),
    }
}

/// AP §2: the headers of every request. `Authorization` goes out even with an empty token,
/// as Scope's probe does.
fn common_headers(identity: &ProbeIdentity) -> Vec<(String, String)> {
    vec![
        (
            "User-Agent".to_owned(),
            format!("Scope_Probe/{}", identity.version),
        ),
        (
            "Authorization".to_owned(),
            format!("Scope-Probe token={}", identity.token),
        ),
        ("X-Scope-Probe-ID".to_owned(), identity.probe_id.clone()),
        ("X-Scope-Probe-Version".to_owned(), identity.version.clone()),
    ]
}
