//! The probe: one mio event loop on one thread that discovers plugins, polls them
//! concurrently under hard deadlines, merges their reports and publishes the result.
//!
//! ```text
//!            ┌──────────── publish interval (one arena of response bodies) ─────────────┐
//!  SpyTick ─▶ start a Tick: one GET /report per plugin not already in flight
//!             each PluginCall: connect ─▶ write ─▶ read … (deadline in Timers)
//!             last call of the tick done ─▶ validate in socket-path order ─▶ SpyReport
//!  Publish ─▶ merge the interval's SpyReports (removed plugins left out) ─▶ sink
//!            └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Response bodies of one publish interval move into a [`typed_arena::Arena`] that lives as
//! long as that interval, so decoded reports borrow their strings from the bodies and the
//! merge copies none of them. Everything with a time limit is an entry in [`Timers`]; the one
//! timerfd is armed to the earliest entry after every turn. Nothing on the loop blocks:
//! sockets are non-blocking, and discovery is a readdir of a local directory tree.
//!
//! Out of scope here: the HTTP protocol ([`crate::http`]), validation and statuses
//! ([`crate::plugins::registry`]), the report model ([`crate::report`]).

mod conn;
mod discovery;
mod slab;
mod timers;

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use typed_arena::Arena;

use crate::host::HostReporter;
use crate::http;
use crate::plugins::registry::{PollOutcome, Registry, TransportError};
use crate::plugins::scan::go_path_cmp;
use crate::report::{self, Report, Time};
use crate::sys::timer::TimerFd;

use conn::{Answer, Drive, PluginCall, Purpose};
pub use conn::{USER_AGENT, plugin_target, query_escape};
use discovery::Discovery;
use slab::Slab;
pub use timers::{Timer, Timers};

const TIMER: Token = Token(0);
const INOTIFY: Token = Token(1);
const SIGNALS: Token = Token(2);
/// Plugin connections use `Token(PLUGIN_BASE + slot)`.
const PLUGIN_BASE: usize = 1 << 20;

/// A new socket seen through inotify is polled after this short pause: `bind` creates the
/// file before the plugin calls `listen`, and a connect in between would be refused.
const NEW_SOCKET_GRACE: Duration = Duration::from_millis(15);

/// Where published reports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// One JSON line per report on stdout (`--publish-stdout`).
    Stdout,
    /// Nowhere: the caller takes reports through [`Probe::once`].
    None,
}

/// Everything the probe is configured with (built from the command line by `main`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Plugin socket root; `None` disables plugins.
    pub plugins_root: Option<PathBuf>,
    /// How often every plugin is polled.
    pub spy_interval: Duration,
    /// How often a report is published.
    pub publish_interval: Duration,
    /// Deadline of one plugin request, connect to last body byte.
    pub plugin_timeout: Duration,
    /// Safety-net full rescan of the root.
    pub rescan_interval: Duration,
    /// Largest plugin response body.
    pub max_response_bytes: usize,
    /// Plugin `api_version` the probe speaks.
    pub api_version: String,
    /// The probe's ID (`probe_id` query parameter, `control_probe_id`).
    pub probe_id: String,
    /// Host name for the Host node ID `<hostname>;<host>`.
    pub hostname: String,
    /// Strip controls from published reports and refuse control requests.
    pub no_controls: bool,
    /// Leave out the probe's own Host node.
    pub no_host: bool,
    /// Where reports go.
    pub sink: Sink,
}

impl Config {
    /// Defaults of the command-line contract, for the given root and probe ID.
    pub fn new(plugins_root: Option<PathBuf>, probe_id: String, hostname: String) -> Config {
        Config {
            plugins_root,
            spy_interval: Duration::from_secs(1),
            publish_interval: Duration::from_secs(3),
            plugin_timeout: Duration::from_millis(500),
            rescan_interval: Duration::from_secs(5),
            max_response_bytes: 52_428_800,
            api_version: "1".to_string(),
            probe_id,
            hostname,
            no_controls: false,
            no_host: false,
            sink: Sink::None,
        }
    }

    /// The Host node ID of this probe's host.
    pub fn host_node_id(&self) -> String {
        format!("{};<host>", self.hostname)
    }
}

/// What `once` produced.
#[derive(Debug)]
pub struct OnceOutcome {
    /// Scope's `Registry.Report()`: `MakeReport()` with every plugin's report merged in
    /// socket-path order, untagged, as JSON.
    pub plugins_report: Vec<u8>,
    /// The report as it would be published (TS, tagging, controls policy), as JSON.
    pub report: Vec<u8>,
    /// Each loaded plugin's ID and status after the poll.
    pub statuses: Vec<(String, String)>,
}

/// Polls of one spy tick in flight.
#[derive(Debug)]
struct Tick {
    id: u64,
    /// Whether every plugin was polled (a spy tick) rather than only new sockets.
    full: bool,
    ts: Time,
    started: Instant,
    outstanding: usize,
    outcomes: Vec<(PathBuf, Result<Answer, TransportError>, Duration)>,
}

/// The validated result of one tick.
#[derive(Debug)]
struct SpyReport<'a> {
    ts: Time,
    /// The probe's Host node, on full ticks.
    host: Option<Report<'static>>,
    plugins: Vec<(PathBuf, Report<'a>)>,
}

/// State that lives exactly as long as one publish interval.
struct Interval<'a> {
    bodies: &'a Arena<Vec<u8>>,
    spies: Vec<SpyReport<'a>>,
}

/// Why a run of the loop returned.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Publish,
    Stop,
}

/// The plugin host and its event loop. See the module docs.
pub struct Probe {
    config: Config,
    poll: Poll,
    events: Option<Events>,
    timer: TimerFd,
    armed: Option<Instant>,
    signals: Signals,
    discovery: Option<Discovery>,
    registry: Registry,
    host: Option<HostReporter>,
    timers: Timers,
    calls: Slab<PluginCall>,
    in_flight: HashSet<PathBuf>,
    ticks: Vec<Tick>,
    next_tick: u64,
    new_sockets: Vec<PathBuf>,
    scratch: Box<[u8]>,
    last_publish: Instant,
    running: bool,
}

impl Probe {
    /// Sets up the loop: poll, timerfd, signals, and the first scan of the plugin root.
    pub fn new(config: Config) -> io::Result<Probe> {
        let poll = Poll::new()?;
        let mut timer = TimerFd::new()?;
        poll.registry()
            .register(&mut timer, TIMER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let discovery = match &config.plugins_root {
            Some(root) => Some(Discovery::new(root.clone(), poll.registry(), INOTIFY)?),
            None => None,
        };
        let host = (!config.no_host).then(|| HostReporter::new(&config.hostname, &config.probe_id));
        let mut probe = Probe {
            config,
            poll,
            events: Some(Events::with_capacity(1024)),
            timer,
            armed: None,
            signals,
            discovery,
            registry: Registry::new(),
            host,
            timers: Timers::new(),
            calls: Slab::default(),
            in_flight: HashSet::new(),
            ticks: Vec::new(),
            next_tick: 0,
            new_sockets: Vec::new(),
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
            last_publish: Instant::now(),
            running: false,
        };
        probe.rescan(Instant::now());
        Ok(probe)
    }

    /// The registry of loaded plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs until SIGTERM or SIGINT: polls every spy interval, publishes every publish
    /// interval. SIGHUP forces a rescan.
    pub fn run(&mut self) -> io::Result<()> {
        let now = Instant::now();
        self.running = true;
        self.last_publish = now;
        self.timers.set(now, Timer::SpyTick);
        self.timers
            .set(now + self.config.publish_interval, Timer::Publish);
        self.timers
            .set(now + self.config.rescan_interval, Timer::Rescan);
        loop {
            let bodies = Arena::new();
            let mut interval = Interval {
                bodies: &bodies,
                spies: Vec::new(),
            };
            let flow = loop {
                match self.turn(&mut interval)? {
                    None => continue,
                    Some(flow) => break flow,
                }
            };
            if flow == Flow::Stop {
                log::info!("probe: stopping");
                return Ok(());
            }
            self.publish(interval)?;
        }
    }

    /// One discovery and one poll of every plugin; returns as soon as every plugin answered
    /// or timed out. Signals still stop it early (with an error of kind `Interrupted`).
    pub fn once(&mut self) -> io::Result<OnceOutcome> {
        let now = Instant::now();
        let bodies = Arena::new();
        let mut interval = Interval {
            bodies: &bodies,
            spies: Vec::new(),
        };
        let tick = self.start_tick(now, None, &mut interval);
        // A tick whose plugins all failed at connect is complete already.
        self.complete_ticks(&mut interval);
        while self.ticks.iter().any(|t| t.id == tick) {
            if self.turn(&mut interval)? == Some(Flow::Stop) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
        }
        let now_time = Time::from_system(SystemTime::now());
        let spies = std::mem::take(&mut interval.spies);
        let (plugins_report, hosts) = self.merge_spies(spies, false);
        let mut out = Vec::new();
        report::encode(&plugins_report, &mut out);
        let mut published = plugins_report;
        // spec §6.2: the earliest non-zero TS wins, so a plugin's older TS still pulls it back.
        if published.ts.is_zero() || now_time < published.ts {
            published.ts = now_time;
        }
        for host in hosts {
            published.merge(host);
        }
        let published = self.finish_report(published, now_time);
        let mut report_json = Vec::new();
        report::encode(&published, &mut report_json);
        Ok(OnceOutcome {
            plugins_report: out,
            report: report_json,
            statuses: self
                .registry
                .iter()
                .map(|p| (p.id.clone(), p.status().to_string()))
                .collect(),
        })
    }

    /// Merges spy reports into one `MakeReport()`-based report as Scope's probe does: each
    /// spy report is stamped with its tick's time and holds the Host node and then every
    /// plugin's report in socket-path order (plugins removed since are left out); the spy
    /// reports are merged in tick order.
    ///
    /// With `as_published` false the result is Scope's `Registry.Report()` instead: no stamp
    /// and no Host node (the Host reports are returned for the caller to merge).
    fn merge_spies<'a>(
        &self,
        spies: Vec<SpyReport<'a>>,
        as_published: bool,
    ) -> (Report<'a>, Vec<Report<'static>>) {
        let mut out = Report::make();
        let mut hosts = Vec::new();
        for spy in spies {
            let mut rpt = Report::make();
            if as_published {
                rpt.ts = spy.ts;
            }
            match (spy.host, as_published) {
                (Some(host), true) => rpt.merge(host),
                (Some(host), false) => hosts.push(host),
                (None, _) => {}
            }
            for (path, plugin_report) in spy.plugins {
                if self.registry.get(&path).is_some() {
                    rpt.merge(plugin_report);
                }
            }
            out.merge(rpt);
        }
        (out, hosts)
    }

    /// Applies what every published report gets: the controls policy and the taggers.
    fn finish_report<'a>(&self, mut rpt: Report<'a>, now: Time) -> Report<'a> {
        if self.config.no_controls {
            rpt.strip_controls();
        }
        rpt.tag(&self.config.host_node_id(), now);
        rpt
    }

    fn publish(&mut self, mut interval: Interval<'_>) -> io::Result<()> {
        let now = Instant::now();
        let now_time = Time::from_system(SystemTime::now());
        let spies = std::mem::take(&mut interval.spies);
        let spy_ts = spies.first().map(|s| s.ts);
        let (mut rpt, _) = self.merge_spies(spies, true);
        if spy_ts.is_none() {
            rpt.ts = now_time;
        }
        rpt.window_ns = now
            .saturating_duration_since(self.last_publish)
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        self.last_publish = now;
        let rpt = self.finish_report(rpt, now_time);
        let mut json = Vec::with_capacity(64 * 1024);
        report::encode(&rpt, &mut json);
        match self.config.sink {
            Sink::Stdout => {
                json.push(b'\n');
                // A slow reader of stdout can only hold up this debugging mode, never the
                // plugins' deadlines: they are absolute and checked on the next turn.
                let mut out = io::stdout().lock();
                out.write_all(&json)?;
                out.flush()?;
            }
            Sink::None => {}
        }
        Ok(())
    }

    /// One turn of the loop: wait, dispatch events, run due timers, re-arm the timerfd.
    fn turn<'a>(&mut self, interval: &mut Interval<'a>) -> io::Result<Option<Flow>> {
        self.rearm()?;
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(1024));
        let polled = self.poll.poll(&mut events, None);
        let result = match polled {
            Ok(()) => self.dispatch(&events, interval),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        };
        self.events = Some(events);
        result
    }

    fn dispatch<'a>(
        &mut self,
        events: &Events,
        interval: &mut Interval<'a>,
    ) -> io::Result<Option<Flow>> {
        let mut flow = None;
        let mut rescan = false;
        for event in events.iter() {
            match event.token() {
                TIMER => {
                    // Only clears readiness; the timer table decides what is due.
                    if let Err(e) = self.timer.drain() {
                        log::debug!("probe: reading the timerfd failed: {e}");
                    }
                }
                INOTIFY => {
                    if let Some(d) = &mut self.discovery {
                        rescan |= d.handle_events();
                    }
                }
                SIGNALS => {
                    for signal in self.signals.pending() {
                        match signal {
                            SIGHUP => {
                                log::info!("probe: SIGHUP, rescanning plugins");
                                rescan = true;
                            }
                            _ => flow = Some(Flow::Stop),
                        }
                    }
                }
                Token(t) if t >= PLUGIN_BASE => self.handle_plugin_event(t - PLUGIN_BASE),
                // Sporadic events of sources already gone are harmless.
                _ => {}
            }
        }
        if flow == Some(Flow::Stop) {
            return Ok(flow);
        }
        let now = Instant::now();
        if rescan {
            self.rescan(now);
        }
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::SpyTick => {
                    self.start_tick(now, None, interval);
                    let next = now + self.config.spy_interval;
                    self.timers.set(next, Timer::SpyTick);
                }
                Timer::Publish => {
                    flow = Some(Flow::Publish);
                    self.timers
                        .set(now + self.config.publish_interval, Timer::Publish);
                }
                Timer::Rescan => {
                    self.rescan(now);
                    self.timers
                        .set(now + self.config.rescan_interval, Timer::Rescan);
                }
                Timer::PollNew => {
                    let paths = std::mem::take(&mut self.new_sockets);
                    self.start_tick(now, Some(paths), interval);
                }
                Timer::ConnDeadline { slot, generation } => {
                    self.handle_deadline(slot, generation);
                }
            }
        }
        self.complete_ticks(interval);
        Ok(flow)
    }

    /// Re-arms the timerfd when the earliest deadline changed.
    fn rearm(&mut self) -> io::Result<()> {
        let next = self.timers.next_deadline();
        if next != self.armed {
            match next {
                Some(at) => self.timer.arm_at(at)?,
                None => self.timer.disarm()?,
            }
            self.armed = next;
        }
        Ok(())
    }

    fn rescan(&mut self, now: Instant) {
        let Some(discovery) = &mut self.discovery else {
            return;
        };
        let sockets = discovery.rescan();
        let changes = self
            .registry
            .apply_scan(sockets.iter().map(|p| p.as_path()));
        for plugin in &changes.removed {
            self.cancel_calls_to(&plugin.path);
        }
        if self.running && !changes.added.is_empty() {
            if self.new_sockets.is_empty() {
                self.timers.set(now + NEW_SOCKET_GRACE, Timer::PollNew);
            }
            self.new_sockets.extend(changes.added);
        }
    }

    /// Drops in-flight calls to a removed plugin; their ticks stop waiting for them.
    fn cancel_calls_to(&mut self, path: &std::path::Path) {
        for slot in self.calls.slots() {
            if self.calls.get(slot).is_some_and(|c| c.path == path) {
                self.finish_call(slot, None);
            }
        }
    }

    /// Starts polling `only` (or every loaded plugin) for a new tick and returns its id. The
    /// tick completes in [`Probe::complete_ticks`] once none of its calls is in flight.
    fn start_tick(
        &mut self,
        now: Instant,
        only: Option<Vec<PathBuf>>,
        _interval: &mut Interval<'_>,
    ) -> u64 {
        let paths: Vec<PathBuf> = match &only {
            Some(paths) => paths.clone(),
            None => self.registry.iter().map(|p| p.path.clone()).collect(),
        };
        let id = self.next_tick;
        self.next_tick += 1;
        let mut tick = Tick {
            id,
            full: only.is_none(),
            ts: Time::from_system(SystemTime::now()),
            started: now,
            outstanding: 0,
            outcomes: Vec::new(),
        };
        let limits = http::Limits {
            max_body_bytes: self.config.max_response_bytes,
            ..http::Limits::default()
        };
        for path in paths {
            if self.registry.get(&path).is_none() || self.in_flight.contains(&path) {
                // Not polled twice: the request in flight answers for this plugin.
                continue;
            }
            let call = conn::report_call(&self.config.api_version, &self.config.probe_id, limits);
            match PluginCall::connect(&path, call, Purpose::Report { tick: id }, now) {
                Ok(plugin_call) => {
                    let interest = plugin_call.interest();
                    let key = self.calls.insert(plugin_call);
                    let token = Token(PLUGIN_BASE + key.slot);
                    let registered = match self.calls.get_mut(key.slot) {
                        Some(c) => self
                            .poll
                            .registry()
                            .register(&mut c.stream, token, interest),
                        None => Ok(()),
                    };
                    if let Err(e) = registered {
                        self.calls.remove(key.slot);
                        tick.outcomes
                            .push((path, Err(TransportError::Io(e)), Duration::ZERO));
                        continue;
                    }
                    self.timers.set(
                        now + self.config.plugin_timeout,
                        Timer::ConnDeadline {
                            slot: key.slot,
                            generation: key.generation,
                        },
                    );
                    self.in_flight.insert(path);
                    tick.outstanding += 1;
                }
                // A refused or missing socket is reported at once, not after the deadline.
                Err(e) => tick.outcomes.push((path, Err(e), Duration::ZERO)),
            }
        }
        self.ticks.push(tick);
        id
    }

    fn handle_plugin_event(&mut self, slot: usize) {
        let Some(call) = self.calls.get_mut(slot) else {
            return;
        };
        match call.drive(&mut self.scratch) {
            Drive::Pending => {
                let interest = call.interest();
                let token = Token(PLUGIN_BASE + slot);
                if let Err(e) = self
                    .poll
                    .registry()
                    .reregister(&mut call.stream, token, interest)
                {
                    self.finish_call(slot, Some(Err(TransportError::Io(e))));
                }
            }
            Drive::Done(result) => self.finish_call(slot, Some(result)),
        }
    }

    fn handle_deadline(&mut self, slot: usize, generation: u64) {
        let key = slab::Key { slot, generation };
        if !self.calls.is_live(key) {
            return; // finished before its deadline
        }
        let received = self.calls.get(slot).map_or(0, |c| c.received);
        let timeout = self.config.plugin_timeout;
        self.finish_call(
            slot,
            Some(Err(TransportError::Timeout { timeout, received })),
        );
    }

    /// Removes a call; records its outcome in its tick (`None`: cancelled, no outcome).
    fn finish_call(&mut self, slot: usize, result: Option<Result<Answer, TransportError>>) {
        let Some(mut call) = self.calls.remove(slot) else {
            return;
        };
        // Deregistering can only fail if the fd is already gone; dropping closes it anyway.
        let _ = self.poll.registry().deregister(&mut call.stream);
        self.in_flight.remove(&call.path);
        let latency = call.started.elapsed();
        let Purpose::Report { tick } = call.purpose;
        if let Some(tick) = self.ticks.iter_mut().find(|t| t.id == tick) {
            tick.outstanding = tick.outstanding.saturating_sub(1);
            if let Some(result) = result {
                tick.outcomes.push((call.path, result, latency));
            }
        }
    }

    /// Validates and records every tick whose calls have all ended.
    fn complete_ticks<'a>(&mut self, interval: &mut Interval<'a>) {
        while let Some(pos) = self.ticks.iter().position(|t| t.outstanding == 0) {
            let tick = self.ticks.remove(pos);
            let spy = self.validate_tick(tick, interval.bodies);
            interval.spies.push(spy);
        }
    }

    /// Scope's registry cycle for one tick: every plugin's outcome, in socket-path order,
    /// through validation, statuses and control rewriting.
    fn validate_tick<'a>(&mut self, tick: Tick, bodies: &'a Arena<Vec<u8>>) -> SpyReport<'a> {
        let now = Time::from_system(SystemTime::now());
        let mut outcomes = tick.outcomes;
        // Scope visits plugins in sorted path *string* order (spec §7.4), which differs from
        // `Path`'s component order around '/'.
        outcomes.sort_by(|a, b| go_path_cmp(&a.0, &b.0));
        let mut plugins = Vec::with_capacity(outcomes.len());
        for (path, result, latency) in outcomes {
            let Some(plugin) = self.registry.get_mut(&path) else {
                continue; // removed while its request was in flight
            };
            let outcome = match result {
                Ok(Answer { code, reason, body }) => {
                    let body: &'a [u8] = bodies.alloc(body);
                    PollOutcome::Answer { code, reason, body }
                }
                Err(e) => PollOutcome::Failed(e),
            };
            let rpt = plugin.handle_report(outcome, &self.config.api_version, latency, now);
            plugins.push((path, rpt));
        }
        log::debug!(
            "probe: tick {} done in {:?} ({} plugins)",
            tick.id,
            tick.started.elapsed(),
            plugins.len()
        );
        let host = match (&mut self.host, tick.full) {
            (Some(host), true) => Some(host.report(now)),
            _ => None,
        };
        SpyReport {
            ts: tick.ts,
            host,
            plugins,
        }
    }
}
