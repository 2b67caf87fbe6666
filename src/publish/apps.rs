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
//!   new address
//!        |
//!        v
//!   WaitDiscover{at} --at--> Discovering --2xx + id--> Up --report--> Publishing
//!        ^                   (GET /api)                ^             (POST /api/report)
//!        |                        |                    +------2xx--------+
//!        |                        | failure            |                 | failure
//!        +------------------------+--------------------------------------+
//!          backoff: at = now + 1 s, 2 s, 4 s … 60 s (AP §1); reset by any 2xx
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
    /// A live address of the app (the one that worked last, when it is still live). It can
    /// change within a generation; a websocket that works need not follow it.
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
            if let Some((at, text)) = &a.stats.last_error
                && latest.is_none_or(|l| *at >= l)
            {
                *latest = Some(*at);
                entry.last_error = Some(text);
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
        let delay = backoff_delay(a.failures_in_row);
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

/// AP §1: how long to wait after the `failures_in_row`-th failure in a row (counting from 1):
/// 1 s doubling to 60 s, as Scope's probe does. Public so that the control websocket
/// reconnects on the same schedule (AP §4).
pub fn backoff_delay(failures_in_row: u32) -> Duration {
    // Past 2^6 s the cap applies anyway; the bound keeps the shift from overflowing.
    let shift = failures_in_row.saturating_sub(1).min(16);
    (BACKOFF_FIRST * (1u32 << shift)).min(BACKOFF_MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn identity(token: &str) -> ProbeIdentity {
        ProbeIdentity {
            probe_id: "5c4a1ebcbf6b3b2e".to_owned(),
            version: "0.1.0".to_owned(),
            token: token.to_owned(),
        }
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    fn target(host: &str) -> (String, u16) {
        (host.to_owned(), 4040)
    }

    fn apps_for(hosts: &[&str], t0: Instant) -> Apps {
        Apps::new(hosts.iter().map(|h| target(h)).collect(), &identity(""), t0)
    }

    fn body(text: &str) -> Rc<[u8]> {
        Rc::from(text.as_bytes())
    }

    fn details(app_id: &str) -> Result<(u16, Vec<u8>), String> {
        let json = format!(
            r#"{{"id":"{app_id}","version":"1.13.2","hostname":"vm","plugins":[],"capabilities":{{}}}}"#
        );
        Ok((200, json.into_bytes()))
    }

    fn accepted() -> Result<(u16, Vec<u8>), String> {
        Ok((200, Vec::new()))
    }

    fn refused() -> Result<(u16, Vec<u8>), String> {
        Err("connect: connection refused".to_owned())
    }

    fn drain(apps: &mut Apps, now: Instant) -> Vec<AppRequest> {
        std::iter::from_fn(|| apps.poll_request(now)).collect()
    }

    /// Answers every due discovery with the app id `id_of` gives for the address.
    fn discover(apps: &mut Apps, now: Instant, id_of: impl Fn(SocketAddr) -> &'static str) {
        let requests = drain(apps, now);
        assert!(!requests.is_empty(), "a discovery was due");
        for req in requests {
            assert_eq!(req.kind, RequestKind::Discover);
            apps.handle_response(req.id, details(id_of(req.addr)), now);
        }
    }

    /// An `Apps` whose one literal target answered `GET /api` with id `A` at `t0`.
    fn one_app_up(t0: Instant) -> Apps {
        let mut apps = apps_for(&["10.0.0.1"], t0);
        discover(&mut apps, t0, |_| "A");
        apps
    }

    fn only<T: fmt::Debug>(mut items: Vec<T>) -> T {
        assert_eq!(items.len(), 1, "{items:?}");
        items.remove(0)
    }

    fn views(apps: &Apps) -> Vec<(String, SocketAddr, u64)> {
        apps.apps()
            .map(|v| (v.app_id.to_owned(), v.addr, v.generation))
            .collect()
    }

    // Discovery and publishing.

    #[test]
    fn discovery_then_publish() {
        let t0 = Instant::now();
        let mut apps = apps_for(&["10.0.0.1"], t0);
        assert_eq!(apps.poll_resolve(t0), None, "an IP literal needs no lookup");

        let req = only(drain(&mut apps, t0));
        assert_eq!(req.kind, RequestKind::Discover);
        assert_eq!(req.addr, sa("10.0.0.1:4040"));
        assert_eq!((req.method, req.target), ("GET", "/api"));
        assert!(req.body.is_empty());
        assert_eq!(apps.status()[0].app_id, None, "no id before the answer");

        apps.handle_response(req.id, details("7fd6be681e3114f2"), t0);
        assert_eq!(apps.app_id(sa("10.0.0.1:4040")), Some("7fd6be681e3114f2"));
        assert!(drain(&mut apps, t0).is_empty(), "nothing to publish yet");

        let report = body("gzip report 1");
        let t1 = t0 + 3 * SEC;
        apps.publish(Rc::clone(&report), false, t1);
        let req = only(drain(&mut apps, t1));
        assert_eq!(req.kind, RequestKind::Publish);
        assert_eq!(req.addr, sa("10.0.0.1:4040"));
        assert_eq!((req.method, req.target), ("POST", "/api/report"));
        assert!(
            Rc::ptr_eq(&req.body, &report),
            "the body is shared, not copied"
        );
        apps.handle_response(req.id, accepted(), t1);
        assert!(drain(&mut apps, t1).is_empty(), "one report per app");

        let status = only(apps.status());
        assert_eq!(status.app_id, Some("7fd6be681e3114f2"));
        assert_eq!(status.addrs, vec![sa("10.0.0.1:4040")]);
        assert!(status.up);
        assert_eq!((status.publishes, status.failures), (1, 0));
        assert_eq!(status.last_success, Some(t1));
        assert_eq!(status.last_error, None);
        assert_eq!(
            views(&apps),
            vec![("7fd6be681e3114f2".to_owned(), sa("10.0.0.1:4040"), 1)]
        );
    }

    #[test]
    fn headers_with_empty_token() {
        let t0 = Instant::now();
        let mut apps = apps_for(&["10.0.0.1"], t0);
        let req = only(drain(&mut apps, t0));
        let expected = [
            ("User-Agent", "Scope_Probe/0.1.0"),
            ("Authorization", "Scope-Probe token="),
            ("X-Scope-Probe-ID", "5c4a1ebcbf6b3b2e"),
            ("X-Scope-Probe-Version", "0.1.0"),
        ];
        let owned = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(req.headers, owned(&expected));

        apps.handle_response(req.id, details("A"), t0);
        apps.publish(body("r"), false, t0);
        let req = only(drain(&mut apps, t0));
        let mut with_body = expected.to_vec();
        with_body.push(("Content-Type", "application/json"));
        with_body.push(("Content-Encoding", "gzip"));
        assert_eq!(req.headers, owned(&with_body));
    }

    #[test]
    fn headers_with_token() {
        let t0 = Instant::now();
        let mut apps = Apps::new(vec![target("10.0.0.1")], &identity("s3cr3t"), t0);
        let req = only(drain(&mut apps, t0));
        assert_eq!(
            req.headers.get(1),
            Some(&(
                "Authorization".to_owned(),
                "Scope-Probe token=s3cr3t".to_owned()
            ))
        );
        apps.handle_response(req.id, details("A"), t0);
        apps.publish(body("r"), false, t0);
        let req = only(drain(&mut apps, t0));
        assert_eq!(
            req.headers.get(1),
            Some(&(
                "Authorization".to_owned(),
                "Scope-Probe token=s3cr3t".to_owned()
            ))
        );
    }

    #[test]
    fn two_addresses_of_one_app_get_one_publish_per_tick() {
        let t0 = Instant::now();
        let (a1, a2) = (sa("10.0.0.1:4040"), sa("10.0.0.2:4040"));
        let mut apps = apps_for(&["10.0.0.1", "10.0.0.2"], t0);
        discover(&mut apps, t0, |_| "A");
        assert_eq!(views(&apps).len(), 1, "one app, one websocket");

        // Tick 1: either address will do.
        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        assert_eq!(req.addr, a1);
        apps.handle_response(req.id, accepted(), t0);

        // Tick 2: the address that worked last; it fails.
        let t3 = t0 + 3 * SEC;
        apps.publish(body("r2"), false, t3);
        let req = only(drain(&mut apps, t3));
        assert_eq!(req.addr, a1);
        apps.handle_response(req.id, refused(), t3);
        assert!(drain(&mut apps, t3).is_empty(), "not resent through a2");
        assert_eq!(
            views(&apps),
            vec![("A".to_owned(), a2, 1)],
            "a2 keeps it up"
        );

        // Tick 3: a1 is backing off, so a2; it works and becomes the preferred one.
        let t6 = t0 + 6 * SEC;
        let rediscovery = only(drain(&mut apps, t6));
        assert_eq!(
            (rediscovery.addr, rediscovery.kind),
            (a1, RequestKind::Discover)
        );
        apps.publish(body("r3"), false, t6);
        let req = only(drain(&mut apps, t6));
        assert_eq!(req.addr, a2);
        apps.handle_response(req.id, accepted(), t6);
        apps.handle_response(rediscovery.id, details("A"), t6);

        // Tick 4: both up, a2 worked last.
        let t9 = t0 + 9 * SEC;
        apps.publish(body("r4"), false, t9);
        let req = only(drain(&mut apps, t9));
        assert_eq!(req.addr, a2);

        let status = only(apps.status());
        assert_eq!(status.addrs, vec![a1, a2]);
        assert_eq!((status.publishes, status.failures), (2, 1));
    }

    #[test]
    fn live_app_gets_every_publish_while_dead_one_backs_off() {
        let t0 = Instant::now();
        let (live, dead) = (sa("10.0.0.1:4040"), sa("10.0.0.2:4040"));
        let mut apps = apps_for(&["10.0.0.1", "10.0.0.2"], t0);
        let mut now = t0;
        let mut next_publish = t0;
        let mut published = Vec::new();
        let mut received = Vec::new();
        let mut dead_attempts = Vec::new();
        while now <= t0 + 200 * SEC {
            if now >= next_publish {
                let name = format!("r{}", published.len() + 1);
                apps.publish(body(&name), false, now);
                published.push(name);
                next_publish += 3 * SEC;
            }
            while let Some(req) = apps.poll_request(now) {
                let outcome = if req.addr == dead {
                    dead_attempts.push((req.kind, (now - t0).as_secs()));
                    refused()
                } else if req.kind == RequestKind::Discover {
                    details("live-app")
                } else {
                    received.push(String::from_utf8_lossy(&req.body).into_owned());
                    accepted()
                };
                apps.handle_response(req.id, outcome, now);
            }
            let next = apps
                .poll_timeout()
                .map_or(next_publish, |t| t.min(next_publish));
            assert!(next > now, "nothing due after draining");
            now = next;
        }
        assert_eq!(received, published, "every report, in order, once");
        let expected: Vec<(RequestKind, u64)> = [0, 1, 3, 7, 15, 31, 63, 123, 183]
            .into_iter()
            .map(|s| (RequestKind::Discover, s))
            .collect();
        assert_eq!(dead_attempts, expected, "1, 2, 4 … 60 s");

        let status = apps.status();
        assert_eq!(status.len(), 2);
        assert_eq!(status[0].addrs, vec![live]);
        assert_eq!(status[1].app_id, None);
        assert_eq!(status[1].addrs, vec![dead]);
        assert!(!status[1].up);
        assert_eq!(status[1].failures, 9);
        assert_eq!(
            status[1].last_error,
            Some("GET /api: connect: connection refused")
        );
    }

    #[test]
    fn app_down_then_back_resets_backoff_and_gets_the_next_report() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        let addr = sa("10.0.0.1:4040");
        let generation = views(&apps)[0].2;

        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, refused(), t0);
        assert!(views(&apps).is_empty(), "no live address: no websocket");
        assert!(!apps.status()[0].up);
        assert_eq!(apps.poll_timeout(), Some(t0 + SEC));
        assert!(drain(&mut apps, t0 + SEC - Duration::from_millis(1)).is_empty());

        let req = only(drain(&mut apps, t0 + SEC));
        assert_eq!(req.kind, RequestKind::Discover);
        apps.handle_response(req.id, refused(), t0 + SEC);
        assert_eq!(apps.poll_timeout(), Some(t0 + 3 * SEC));

        let t3 = t0 + 3 * SEC;
        let req = only(drain(&mut apps, t3));
        apps.handle_response(req.id, details("A"), t3);
        let view = only(views(&apps));
        assert_eq!((view.0.as_str(), view.1), ("A", addr));
        assert!(
            view.2 > generation,
            "a new generation: reopen the websocket"
        );
        assert!(apps.status()[0].up);
        assert!(drain(&mut apps, t3).is_empty(), "r1 is not resent");

        apps.publish(body("r2"), false, t3);
        let req = only(drain(&mut apps, t3));
        assert_eq!(&*req.body, b"r2");
        apps.handle_response(req.id, accepted(), t3);

        // The backoff starts over at 1 s.
        let t6 = t0 + 6 * SEC;
        apps.publish(body("r3"), false, t6);
        let req = only(drain(&mut apps, t6));
        apps.handle_response(req.id, refused(), t6);
        assert_eq!(apps.poll_timeout(), Some(t6 + SEC));
        assert_eq!(apps.status()[0].failures, 3);
    }

    #[test]
    fn status_400_is_logged_and_not_fatal() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        let answer = b"Unsupported Content-Type: text/plain\n".to_vec();
        apps.handle_response(req.id, Ok((400, answer)), t0);
        let status = only(apps.status());
        assert_eq!(
            status.last_error,
            Some("POST /api/report: status 400: Unsupported Content-Type: text/plain")
        );
        assert_eq!(status.failures, 1);

        let t1 = t0 + SEC;
        discover(&mut apps, t1, |_| "A");
        apps.publish(body("r2"), false, t1);
        let req = only(drain(&mut apps, t1));
        assert_eq!(&*req.body, b"r2");
        apps.handle_response(req.id, accepted(), t1);
        let status = only(apps.status());
        assert!(status.up);
        assert_eq!(status.publishes, 1);
        assert_eq!(
            status.last_error,
            Some("POST /api/report: status 400: Unsupported Content-Type: text/plain"),
            "the last error stays visible after recovery"
        );
    }

    #[test]
    fn error_body_is_cut_to_200_bytes() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, Ok((500, vec![b'x'; 1000])), t0);
        let expected = format!("POST /api/report: status 500: {}", "x".repeat(200));
        assert_eq!(apps.status()[0].last_error, Some(expected.as_str()));
    }

    #[test]
    fn failed_publish_is_not_resent() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        let r1 = body("r1");
        apps.publish(Rc::clone(&r1), false, t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, Err("no response within 10s".to_owned()), t0);
        drop(req);

        let t1 = t0 + SEC;
        discover(&mut apps, t1, |_| "A");
        assert!(drain(&mut apps, t1).is_empty(), "r1 is not resent");
        assert!(drain(&mut apps, t0 + 2 * SEC).is_empty());

        let t3 = t0 + 3 * SEC;
        apps.publish(body("r2"), false, t3);
        assert_eq!(Rc::strong_count(&r1), 1, "r1 dropped when r2 arrived");
        let req = only(drain(&mut apps, t3));
        assert_eq!(&*req.body, b"r2");
    }

    #[test]
    fn report_replaced_while_app_is_busy_goes_out_when_it_is_free() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        apps.publish(body("r1"), false, t0);
        let slow = only(drain(&mut apps, t0));
        apps.publish(body("r2"), false, t0 + 3 * SEC);
        apps.publish(body("shortcut"), true, t0 + 4 * SEC);
        assert!(
            drain(&mut apps, t0 + 4 * SEC).is_empty(),
            "one request per address"
        );
        apps.handle_response(slow.id, accepted(), t0 + 5 * SEC);
        let req = only(drain(&mut apps, t0 + 5 * SEC));
        assert_eq!(&*req.body, b"shortcut", "only the latest report is kept");
    }

    #[test]
    fn shortcut_report_goes_out_at_once() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, accepted(), t0);

        let t = t0 + Duration::from_millis(1030);
        apps.publish(body("shortcut"), true, t);
        let req = only(drain(&mut apps, t));
        assert_eq!(req.kind, RequestKind::Publish);
        assert_eq!(&*req.body, b"shortcut");
    }

    #[test]
    fn discovery_answer_without_id_is_a_failure() {
        let t0 = Instant::now();
        let mut apps = apps_for(&["10.0.0.1"], t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, Ok((200, br#"{"id":""}"#.to_vec())), t0);
        assert_eq!(
            apps.status()[0].last_error,
            Some("GET /api: no app id in the answer: empty id")
        );
        assert_eq!(apps.poll_timeout(), Some(t0 + SEC));

        let req = only(drain(&mut apps, t0 + SEC));
        apps.handle_response(req.id, Ok((200, b"<html>".to_vec())), t0 + SEC);
        let error = apps.status()[0].last_error.map(str::to_owned);
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.starts_with("GET /api: no app id in the answer: ")),
            "{error:?}"
        );
        assert_eq!(apps.poll_timeout(), Some(t0 + 3 * SEC));
        assert!(views(&apps).is_empty());
    }

    #[test]
    fn app_restarted_with_a_new_id() {
        let t0 = Instant::now();
        let mut apps = one_app_up(t0);
        apps.publish(body("r1"), false, t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(req.id, refused(), t0);
        assert_eq!(
            apps.app_id(sa("10.0.0.1:4040")),
            Some("A"),
            "kept while down"
        );

        discover(&mut apps, t0 + SEC, |_| "B");
        assert_eq!(apps.app_id(sa("10.0.0.1:4040")), Some("B"));
        assert_eq!(only(views(&apps)).0, "B");
        assert_eq!(only(apps.status()).app_id, Some("B"));
    }

    #[test]
    fn stale_and_unknown_outcomes_and_spurious_timeouts_are_no_ops() {
        let t0 = Instant::now();
        let mut apps = apps_for(&["10.0.0.1"], t0);
        apps.handle_timeout(t0);
        let req = only(drain(&mut apps, t0));
        apps.handle_response(RequestId(999), refused(), t0);
        apps.handle_resolved(ResolveId(5), Ok(vec![sa("10.0.0.9:4040")]), t0);
        apps.handle_timeout(t0 + 10 * SEC);
        assert!(drain(&mut apps, t0 + 10 * SEC).is_empty(), "still waiting");
        assert_eq!(apps.poll_timeout(), None, "nothing timed while discovering");
        apps.handle_response(req.id, details("A"), t0);
        apps.handle_response(req.id, refused(), t0);
        assert!(
            only(apps.status()).up,
            "a second outcome for one request is ignored"
        );
    }

    #[test]
    fn ip_literals_need_no_lookup_and_share_addresses() {
        let t0 = Instant::now();
        let mut apps = Apps::new(
            vec![target("::1"), target("[::1]"), ("10.0.0.1".to_owned(), 80)],
            &identity(""),
            t0,
        );
        assert_eq!(apps.poll_resolve(t0), None);
        let addrs: Vec<SocketAddr> = drain(&mut apps, t0).iter().map(|r| r.addr).collect();
        assert_eq!(addrs, vec![sa("10.0.0.1:80"), sa("[::1]:4040")]);
    }

    // Names.

    #[test]
    fn resolve_ramp_instants() {
        let t0 = Instant::now();
        let app = sa("10.0.0.1:4040");
        let mut apps = apps_for(&["scope-app"], t0);
        let mut now = t0;
        let mut lookups = Vec::new();
        while now <= t0 + 1200 * SEC {
            while let Some((id, host, port)) = apps.poll_resolve(now) {
                assert_eq!((host.as_str(), port), ("scope-app", 4040));
                assert_eq!(apps.poll_resolve(now), None, "one lookup at a time");
                assert_eq!(
                    apps.poll_timeout().filter(|t| *t > now),
                    None,
                    "no lookup timer while one is in flight"
                );
                lookups.push((now - t0).as_secs());
                apps.handle_resolved(id, Ok(vec![app]), now);
            }
            while let Some(req) = apps.poll_request(now) {
                apps.handle_response(req.id, details("A"), now);
            }
            let next = apps.poll_timeout().expect("a lookup is always scheduled");
            assert!(next > now);
            now = next;
        }
        assert_eq!(lookups, [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 811, 1111]);
    }

    #[test]
    fn name_with_two_addresses_of_one_app() {
        let t0 = Instant::now();
        let (a1, a2) = (sa("10.0.0.1:4040"), sa("[fd00::1]:4040"));
        let mut apps = apps_for(&["scope-app"], t0);
        assert!(
            drain(&mut apps, t0).is_empty(),
            "no address before the lookup"
        );
        let (id, _, _) = apps.poll_resolve(t0).expect("first lookup at once");
        apps.handle_resolved(id, Ok(vec![a2, a1, a1]), t0);
        let requests = drain(&mut apps, t0);
        let addrs: Vec<SocketAddr> = requests.iter().map(|r| r.addr).collect();
        assert_eq!(
            addrs,
            vec![a1, a2],
            "every answer address is discovered, once"
        );
        for req in requests {
            apps.handle_response(req.id, details("A"), t0);
        }
        assert_eq!(views(&apps).len(), 1);
        apps.publish(body("r1"), false, t0);
        assert_eq!(drain(&mut apps, t0).len(), 1, "one publish for one app");
    }

    #[test]
    fn addresses_dropped_after_re_resolution() {
        let t0 = Instant::now();
        let (a1, a2) = (sa("10.0.0.1:4040"), sa("10.0.0.2:4040"));
        let mut apps = apps_for(&["scope-app"], t0);
        let (id, _, _) = apps.poll_resolve(t0).expect("lookup");
        apps.handle_resolved(id, Ok(vec![a1, a2]), t0);
        discover(&mut apps, t0, |addr| {
            if addr.ip().to_string() == "10.0.0.1" {
                "A"
            } else {
                "B"
            }
        });
        assert_eq!(views(&apps).len(), 2);

        apps.publish(body("r1"), false, t0);
        let requests = drain(&mut apps, t0);
        assert_eq!(requests.len(), 2, "two apps, two publishes");
        let to_a1 = requests.iter().find(|r| r.addr == a1).expect("a1 request");

        let t1 = t0 + SEC;
        let (id, _, _) = apps.poll_resolve(t1).expect("second lookup after 1 s");
        apps.handle_resolved(id, Ok(vec![a2]), t1);
        assert_eq!(apps.app_id(a1), None, "a1 is gone");
        assert_eq!(views(&apps), vec![("B".to_owned(), a2, 2)]);
        apps.handle_response(to_a1.id, refused(), t1);
        let status = only(apps.status());
        assert_eq!((status.app_id, status.failures), (Some("B"), 0));

        // A failed lookup keeps what is known.
        let t3 = t0 + 3 * SEC;
        let (id, _, _) = apps.poll_resolve(t3).expect("third lookup after 3 s");
        apps.handle_resolved(
            id,
            Err("failed to lookup address information".to_owned()),
            t3,
        );
        assert_eq!(apps.app_id(a2), Some("B"));
        let (id, _, _) = apps.poll_resolve(t0 + 7 * SEC).expect("ramp goes on");
        apps.handle_resolved(id, Ok(Vec::new()), t0 + 7 * SEC);
        assert_eq!(
            apps.app_id(a2),
            Some("B"),
            "an empty answer is a failure too"
        );

        // A new address comes back undiscovered.
        let t15 = t0 + 15 * SEC;
        let (id, _, _) = apps.poll_resolve(t15).expect("ramp goes on");
        apps.handle_resolved(id, Ok(vec![a1, a2]), t15);
        assert_eq!(apps.app_id(a1), None);
        let req = only(drain(&mut apps, t15));
        assert_eq!((req.addr, req.kind), (a1, RequestKind::Discover));
    }

    #[test]
    fn backoff_doubles_from_1_s_to_60_s() {
        let delays: Vec<u64> = (0..=9).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff_delay(u32::MAX), BACKOFF_MAX);
    }

    // Errors: the text after `publish: <addr>: <request>: `.

    #[test]
    fn failure_transport_text() {
        let failure = Failure::Transport("connect: connection refused".to_owned());
        assert_eq!(failure.to_string(), "connect: connection refused");
    }

    #[test]
    fn failure_status_text() {
        let failure = Failure::status(400, b"  Unsupported Content-Type: text/plain\n");
        assert_eq!(
            failure.to_string(),
            "status 400: Unsupported Content-Type: text/plain"
        );
        assert_eq!(Failure::status(503, b"").to_string(), "status 503");
    }

    #[test]
    fn failure_no_app_id_text() {
        let failure = Failure::NoAppId("empty id".to_owned());
        assert_eq!(failure.to_string(), "no app id in the answer: empty id");
    }
}
