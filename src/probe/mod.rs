//! The probe: one mio event loop on one thread that discovers plugins, polls them
//! concurrently under hard deadlines, merges their reports, publishes the result to Scope
//! apps and carries the apps' control calls back to plugins.
//!
//! ```text
//!            ┌──────────── publish interval (one arena of response bodies) ─────────────┐
//!  SpyTick ─▶ start a Tick: one GET /report per plugin not already in flight
//!             each PluginCall: connect ─▶ write ─▶ read … (deadline in Timers)
//!             last call of the tick done ─▶ validate and merge in socket-path order ─▶ SpyReport
//!  Publish ─▶ merge the interval's SpyReports (removed plugins leave Plugins) ─▶ sink
//!            └──────────────────────────────────────────────────────────────────────────┘
//!  apps:     resolve ─▶ GET /api ─▶ POST /api/report (gzip) … ; control websocket per app
//!  controls: websocket call ─▶ POST /control ─▶ reply frames (+ shortcut report published)
//! ```
//!
//! Response bodies of one publish interval move into a [`typed_arena::Arena`] that lives as
//! long as that interval, so decoded reports borrow their strings from the bodies and the
//! merge copies none of them; what they cannot borrow (unescaped strings, sample lists, sets,
//! node maps) goes to the probe's [`DecodeArena`], reset for each interval and kept between
//! them. Everything with a time limit is an entry in [`Timers`]; the one
//! timerfd is armed to the earliest entry before every wait. Nothing on the loop blocks:
//! sockets are non-blocking, names are resolved by the resolver thread, and discovery is a
//! readdir of a local directory tree.
//!
//! Out of scope here: the protocols themselves ([`crate::http`], [`crate::publish`],
//! [`crate::serve`]), validation and statuses ([`crate::plugins::registry`]), the report
//! model ([`crate::report`]).

mod apps;
mod conn;
mod controls;
mod discovery;
mod exchange;
mod local;
mod slab;
mod timers;

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use typed_arena::Arena;

use crate::cli::Options;
use crate::host::HostReporter;
use crate::http;
use crate::plugins::registry::{PollOutcome, Registry, TransportError};
use crate::plugins::scan::go_path_cmp;
use crate::report::{self, DecodeArena, Report, Time};
use crate::sys::timer::TimerFd;

use conn::{Conn, PluginCall, Purpose};
use discovery::Discovery;
use exchange::{Answer, Drive, Exchange};
pub use exchange::{USER_AGENT, plugin_target, query_escape};
use slab::Slab;
pub use timers::{Timer, Timers};

const TIMER: Token = Token(0);
const INOTIFY: Token = Token(1);
const SIGNALS: Token = Token(2);
const RESOLVER: Token = Token(3);
const LOCAL: Token = Token(4);
/// Connections use `Token(CONN_BASE + slot)`.
const CONN_BASE: usize = 16;

/// A new socket seen through inotify is polled after this short pause: `bind` creates the
/// file before the plugin calls `listen`, and a connect in between would be refused.
const NEW_SOCKET_GRACE: Duration = Duration::from_millis(10);

/// Where published reports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// One JSON line per report on stdout (`--publish-stdout`).
    Stdout,
    /// The Scope apps at these `(host, port)` targets (AP §1).
    Apps(Vec<(String, u16)>),
    /// Nowhere: the caller takes reports through [`Probe::once`].
    None,
}

/// Everything the probe is configured with: the command line's [`Options`] plus what they
/// leave open, settled before the loop runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The options of `spec/cli.md`.
    pub options: Options,
    /// The probe's ID (`probe_id` query parameter, `X-Scope-Probe-ID`, `control_probe_id`):
    /// `--probe-id`, or random (AP §5).
    pub probe_id: String,
    /// Host name for the Host node ID `<hostname>;<host>`: `--hostname`, or the kernel's.
    pub hostname: String,
    /// `--http-listen`, resolved to an address.
    pub http_listen: Option<SocketAddr>,
}

impl Config {
    /// The command line's defaults for `plugins_root`, with no app target: reports go
    /// nowhere unless the caller sets `options.targets` or `options.publish_stdout`.
    pub fn new(plugins_root: Option<PathBuf>, probe_id: String, hostname: String) -> Config {
        Config {
            options: Options {
                plugins_root,
                targets: Vec::new(),
                ..Options::default()
            },
            probe_id,
            hostname,
            http_listen: None,
        }
    }

    /// Settles what `options` leave open: a random 63-bit probe ID in lower-case hex (AP §5),
    /// the kernel's hostname, and the `--http-listen` address (which may name a host, so this
    /// may block on DNS: call it before the loop runs). The error says what to do.
    pub fn from_options(options: Options) -> Result<Config, String> {
        let probe_id = match &options.probe_id {
            Some(id) => id.clone(),
            None => format!("{:x}", crate::sys::host::random_u64() >> 1),
        };
        let hostname = match &options.hostname {
            Some(name) => name.clone(),
            None => crate::sys::host::hostname()
                .map_err(|e| format!("cannot read the hostname ({e}); pass --hostname NAME"))?,
        };
        let http_listen = match &options.http_listen {
            Some(addr) => Some(
                std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or_else(|| format!("cannot resolve --http-listen address {addr:?}"))?,
            ),
            None => None,
        };
        Ok(Config {
            options,
            probe_id,
            hostname,
            http_listen,
        })
    }

    /// Where reports go: stdout with `--publish-stdout`, else the targets, if any.
    pub fn sink(&self) -> Sink {
        if self.options.publish_stdout {
            Sink::Stdout
        } else if self.options.targets.is_empty() {
            Sink::None
        } else {
            Sink::Apps(
                self.options
                    .targets
                    .iter()
                    .map(|t| (t.host.clone(), t.port))
                    .collect(),
            )
        }
    }

    /// The Host node ID of this probe's host.
    pub fn host_node_id(&self) -> String {
        format!("{};<host>", self.hostname)
    }
}

/// What one poll cycle of [`Probe::once`] or [`Probe::once_registry_report`] produced.
#[derive(Debug)]
pub struct OnceOutcome {
    /// The report, as JSON.
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
    /// Scope's `Registry.Report()` for the tick: `MakeReport()` with every plugin's report
    /// merged in socket-path order. Merged at once, so a publish interval holds one report
    /// per tick rather than one per plugin per tick.
    plugins: Report<'a>,
}

/// State that lives exactly as long as one publish interval.
struct Interval<'a> {
    bodies: &'a Arena<Vec<u8>>,
    decoded: &'a DecodeArena,
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
    sink: Sink,
    poll: Poll,
    events: Option<Events>,
    timer: TimerFd,
    armed: Option<Instant>,
    signals: Signals,
    discovery: Option<Discovery>,
    registry: Registry,
    host: Option<HostReporter>,
    timers: Timers,
    conns: Slab<Conn>,
    in_flight: HashSet<PathBuf>,
    ticks: Vec<Tick>,
    next_tick: u64,
    new_sockets: Vec<PathBuf>,
    scratch: Box<[u8]>,
    /// What the interval's reports cannot borrow from their bodies; reset for each interval
    /// and kept between them, so a steady set of plugins stops allocating for it.
    decoded: DecodeArena,
    last_publish: Instant,
    /// When the current spy tick and publish were due: the next ones are due one interval
    /// later, so the cadence does not drift by however late the loop got to them.
    spy_due: Instant,
    publish_due: Instant,
    running: bool,
    apps: Option<apps::AppLinks>,
    local: Option<TcpListener>,
    /// The last published report as JSON, for `/api/report` (empty before the first).
    last_report: Rc<[u8]>,
    started_at: SystemTime,
}

/// The first instant after `now` on the cadence `due + k * interval`: a periodic timer keeps
/// its phase, and a loop that fell behind skips the missed beats instead of bunching them.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let mut next = due + interval;
    if next <= now {
        let behind = now.saturating_duration_since(next).as_nanos();
        let beats = behind / interval.as_nanos().max(1) + 1;
        next += interval.saturating_mul(u32::try_from(beats).unwrap_or(u32::MAX));
    }
    next
}

impl Probe {
    /// Sets up the loop: poll, timerfd, signals, the local listener, the resolver thread
    /// (when publishing to apps) and the first scan of the plugin root.
    pub fn new(config: Config) -> io::Result<Probe> {
        let poll = Poll::new()?;
        let mut timer = TimerFd::new()?;
        poll.registry()
            .register(&mut timer, TIMER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let discovery = match &config.options.plugins_root {
            Some(root) => Some(Discovery::new(root.clone(), poll.registry(), INOTIFY)?),
            None => None,
        };
        let local = match config.http_listen {
            Some(addr) => {
                let mut listener = TcpListener::bind(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("--http-listen {addr}: {e}")))?;
                poll.registry()
                    .register(&mut listener, LOCAL, Interest::READABLE)?;
                log::info!(
                    "http: serving /api/report, /api/plugins and /metrics on {}",
                    listener.local_addr()?
                );
                Some(listener)
            }
            None => None,
        };
        let sink = config.sink();
        let apps = match &sink {
            Sink::Apps(targets) => Some(apps::AppLinks::new(
                targets.clone(),
                &config,
                poll.registry(),
                RESOLVER,
                Instant::now(),
            )?),
            _ => None,
        };
        let host = (!config.options.no_host)
            .then(|| HostReporter::new(&config.hostname, &config.probe_id));
        let mut probe = Probe {
            config,
            sink,
            poll,
            events: Some(Events::with_capacity(1024)),
            timer,
            armed: None,
            signals,
            discovery,
            registry: Registry::new(),
            host,
            timers: Timers::new(),
            conns: Slab::default(),
            in_flight: HashSet::new(),
            ticks: Vec::new(),
            next_tick: 0,
            new_sockets: Vec::new(),
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
            decoded: DecodeArena::new(),
            last_publish: Instant::now(),
            spy_due: Instant::now(),
            publish_due: Instant::now(),
            running: false,
            apps,
            local,
            last_report: Rc::from(Vec::new()),
            started_at: SystemTime::now(),
        };
        probe.rescan(Instant::now());
        Ok(probe)
    }

    /// The registry of loaded plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The address `--http-listen` is bound to (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Runs until SIGTERM or SIGINT: polls every spy interval, publishes every publish
    /// interval. SIGHUP forces a rescan.
    pub fn run(&mut self) -> io::Result<()> {
        let now = Instant::now();
        self.running = true;
        self.last_publish = now;
        self.spy_due = now;
        self.publish_due = now + self.config.options.publish_interval;
        self.timers.set(self.spy_due, Timer::SpyTick);
        self.timers.set(self.publish_due, Timer::Publish);
        self.timers
            .set(now + self.config.options.rescan_interval, Timer::Rescan);
        self.drive_apps(now);
        loop {
            let bodies = Arena::new();
            let decoded = self.take_decode_arena();
            let mut interval = Interval {
                bodies: &bodies,
                decoded: &decoded,
                spies: Vec::new(),
            };
            let flow = loop {
                if let Some(flow) = self.turn(&mut interval)? {
                    break flow;
                }
            };
            if flow == Flow::Stop {
                log::info!("probe: stopping");
                return Ok(());
            }
            self.publish(interval)?;
            self.decoded = decoded;
        }
    }

    /// One poll of every plugin the scan in [`Probe::new`] found (`scope-probe once`);
    /// returns as soon as every plugin answered or timed out, with the report as it would be
    /// published (TS, Host node, tagging, controls policy). A signal stops it early (with an
    /// error of kind `Interrupted`). Calling it again polls again without rescanning.
    pub fn once(&mut self) -> io::Result<OnceOutcome> {
        self.poll_once(true)
    }

    /// Like [`Probe::once`], but returns Scope's `Registry.Report()` for the cycle instead:
    /// `MakeReport()` with every plugin's report merged in socket-path order, untagged, with
    /// no Host node and no TS of its own (what Scope's plugin-host vectors record).
    pub fn once_registry_report(&mut self) -> io::Result<OnceOutcome> {
        self.poll_once(false)
    }

    /// The probe's decode arena, emptied, for one interval's reports to borrow from; the
    /// caller gives it back (`self.decoded = …`) once they are gone, so its block is reused.
    fn take_decode_arena(&mut self) -> DecodeArena {
        let mut arena = std::mem::take(&mut self.decoded);
        arena.reset();
        arena
    }

    fn poll_once(&mut self, as_published: bool) -> io::Result<OnceOutcome> {
        let now = Instant::now();
        let bodies = Arena::new();
        let decoded = self.take_decode_arena();
        let mut interval = Interval {
            bodies: &bodies,
            decoded: &decoded,
            spies: Vec::new(),
        };
        let tick = self.start_tick(now, None);
        // A tick whose plugins all failed at connect is complete already.
        self.complete_ticks(&mut interval);
        while self.ticks.iter().any(|t| t.id == tick) {
            if self.turn(&mut interval)? == Some(Flow::Stop) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
        }
        let now_time = Time::from_system(SystemTime::now());
        let spies = std::mem::take(&mut interval.spies);
        let (mut rpt, hosts) = self.merge_spies(spies, false);
        if as_published {
            // spec §6.2: the earliest non-zero TS wins: a plugin's older TS still pulls it back.
            if rpt.ts.is_zero() || now_time < rpt.ts {
                rpt.ts = now_time;
            }
            for host in hosts {
                rpt.merge(host);
            }
            rpt = self.finish_report(rpt, now_time);
        }
        let mut report = Vec::new();
        report::encode(&rpt, &mut report);
        // The arena's block serves the next poll too (growing it again was a third of a
        // thousand plugins' poll).
        drop(rpt);
        drop(interval);
        self.decoded = decoded;
        Ok(OnceOutcome {
            report,
            statuses: self
                .registry
                .iter()
                .map(|p| (p.id.clone(), p.status().to_string()))
                .collect(),
        })
    }

    /// Merges spy reports into one `MakeReport()`-based report as Scope's probe does: each
    /// spy report is stamped with its tick's time and holds the Host node and then the tick's
    /// plugin reports; the spy reports are merged in tick order. Plugins removed since their
    /// tick leave `Plugins` (their nodes stay until the next interval, as the app keeps them
    /// for its window anyway).
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
            rpt.merge(spy.plugins);
            out.merge(rpt);
        }
        let loaded: HashSet<&str> = self.registry.iter().map(|p| p.id.as_str()).collect();
        out.plugins.retain(|spec| loaded.contains(spec.id.as_ref()));
        (out, hosts)
    }

    /// Applies what every published report gets: the controls policy and the taggers
    /// (RF §8, AP §3).
    fn finish_report<'a>(&self, mut rpt: Report<'a>, now: Time) -> Report<'a> {
        if self.config.options.no_controls {
            rpt.strip_controls();
        }
        rpt.tag(&self.config.host_node_id(), now);
        rpt
    }

    /// Merges the interval's spy reports and hands the result to the sink.
    fn publish(&mut self, interval: Interval<'_>) -> io::Result<()> {
        let now = Instant::now();
        let now_time = Time::from_system(SystemTime::now());
        let spies = interval.spies;
        let spy_ts = spies.first().map(|s| s.ts);
        let (mut rpt, _) = self.merge_spies(spies, true);
        if spy_ts.is_none() {
            rpt.ts = now_time;
        }
        // AP §3: the window is the time since the previous publish, in nanoseconds.
        rpt.window_ns = now
            .saturating_duration_since(self.last_publish)
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        self.last_publish = now;
        rpt.id = report::Str::Owned(format!("{}", crate::sys::host::random_u64() >> 1));
        let rpt = self.finish_report(rpt, now_time);
        let mut json = Vec::with_capacity(64 * 1024);
        report::encode(&rpt, &mut json);
        self.publish_json(json, false, now)
    }

    /// Sends one encoded report to the sink; shortcut reports go out the same way, at once.
    fn publish_json(&mut self, json: Vec<u8>, shortcut: bool, now: Instant) -> io::Result<()> {
        match self.sink {
            Sink::Stdout => {
                // A slow reader of stdout can only hold up this debugging mode, never the
                // plugins' deadlines: they are absolute and checked on the next turn.
                let mut out = io::stdout().lock();
                out.write_all(&json)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Sink::Apps(_) => {
                let body: Rc<[u8]> = Rc::from(crate::publish::gzip::gzip(&json));
                if let Some(links) = &mut self.apps {
                    links.apps.publish(body, shortcut, now);
                }
                self.drive_apps(now);
            }
            Sink::None => {}
        }
        if !shortcut {
            self.last_report = Rc::from(json);
        }
        Ok(())
    }

    /// One turn of the loop: arm the timer, wait, dispatch events, run due timers.
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
                RESOLVER => self.handle_resolved(Instant::now()),
                LOCAL => self.accept_local(Instant::now()),
                Token(t) if t >= CONN_BASE => self.handle_conn_event(t - CONN_BASE),
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
                    self.start_tick(now, None);
                    self.spy_due = next_due(self.spy_due, self.config.options.spy_interval, now);
                    self.timers.set(self.spy_due, Timer::SpyTick);
                }
                Timer::Publish => {
                    flow = Some(Flow::Publish);
                    self.publish_due =
                        next_due(self.publish_due, self.config.options.publish_interval, now);
                    self.timers.set(self.publish_due, Timer::Publish);
                }
                Timer::Rescan => {
                    self.rescan(now);
                    self.timers
                        .set(now + self.config.options.rescan_interval, Timer::Rescan);
                }
                Timer::PollNew => {
                    let paths = std::mem::take(&mut self.new_sockets);
                    self.start_tick(now, Some(paths));
                }
                Timer::ConnDeadline { slot, generation } => {
                    self.handle_deadline(slot, generation, now);
                }
                Timer::Apps => self.handle_apps_timer(now),
            }
        }
        self.complete_ticks(interval);
        Ok(flow)
    }

    /// Re-arms the timerfd when the earliest deadline changed. Deadlines of connections that
    /// already finished are dropped first, so they never wake the loop.
    fn rearm(&mut self) -> io::Result<()> {
        let conns = &self.conns;
        self.timers.drop_stale_front(|timer| match *timer {
            Timer::ConnDeadline { slot, generation } => {
                !conns.is_live(slab::Key { slot, generation })
            }
            _ => false,
        });
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

    /// Drops in-flight report calls to a removed plugin; their ticks stop waiting for them.
    /// Control calls run to their end: the app is owed an answer.
    fn cancel_calls_to(&mut self, path: &std::path::Path) {
        for slot in self.conns.slots() {
            let doomed = matches!(
                self.conns.get(slot),
                Some(Conn::Plugin(c)) if c.path == path && matches!(c.purpose, Purpose::Report { .. })
            );
            if doomed {
                self.finish_plugin_call(slot, None, Instant::now());
            }
        }
    }

    /// Puts a connected socket into the slab, registers it and sets its deadline.
    ///
    /// Registration is edge-triggered and for both directions, once: the protocol code always
    /// reads and writes until `WouldBlock`, so a readiness change is never missed, and a
    /// writable edge with nothing to write is a cheap no-op. That is one `epoll_ctl` per
    /// connection instead of one per event (derive-interest-and-reregister costs a syscall
    /// for every turn of every connection, which adds up with a thousand plugins a second).
    fn add_conn(&mut self, conn: Conn, deadline: Option<Instant>) -> io::Result<usize> {
        let key = self.conns.insert(conn);
        let token = Token(CONN_BASE + key.slot);
        let registered = match self.conns.get_mut(key.slot) {
            Some(conn) => self.poll.registry().register(
                conn.source(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => Ok(()),
        };
        if let Err(e) = registered {
            self.conns.remove(key.slot);
            return Err(e);
        }
        if let Some(at) = deadline {
            self.timers.set(
                at,
                Timer::ConnDeadline {
                    slot: key.slot,
                    generation: key.generation,
                },
            );
        }
        Ok(key.slot)
    }

    /// Removes a connection whose socket lives on (a websocket moving on from its upgrade):
    /// it leaves the poll first.
    fn remove_conn(&mut self, slot: usize) -> Option<Conn> {
        let mut conn = self.conns.remove(slot)?;
        // Deregistering can only fail if the fd is already gone; dropping closes it anyway.
        let _ = self.poll.registry().deregister(conn.source());
        Some(conn)
    }

    /// Removes a connection whose socket the caller drops: closing the fd takes it out of
    /// epoll, so no `deregister` syscall is spent on it.
    fn close_conn(&mut self, slot: usize) -> Option<Conn> {
        self.conns.remove(slot)
    }

    fn handle_conn_event(&mut self, slot: usize) {
        let now = Instant::now();
        match self.conns.get(slot) {
            Some(Conn::Plugin(_)) => self.handle_plugin_event(slot, now),
            Some(Conn::App(_)) => self.handle_app_event(slot, now),
            Some(Conn::Local(_)) => self.handle_local_event(slot, now),
            Some(Conn::Ws(_)) => self.handle_ws_event(slot, now),
            None => {}
        }
    }

    fn handle_deadline(&mut self, slot: usize, generation: u64, now: Instant) {
        let key = slab::Key { slot, generation };
        if !self.conns.is_live(key) {
            return; // finished before its deadline
        }
        match self.conns.get(slot) {
            Some(Conn::Plugin(call)) => {
                let received = call.exchange.received;
                let timeout = self.config.options.plugin_timeout;
                self.finish_plugin_call(
                    slot,
                    Some(Err(TransportError::Timeout { timeout, received })),
                    now,
                );
            }
            Some(Conn::App(_)) => self.app_call_timed_out(slot, now),
            Some(Conn::Local(_)) => {
                self.close_conn(slot);
            }
            Some(Conn::Ws(_)) => self.handle_ws_timeout(slot, now),
            None => {}
        }
    }

    /// Opens a plugin connection for `purpose`. A refused or missing socket fails here, at
    /// once, not after the deadline.
    fn start_plugin_call(
        &mut self,
        path: &std::path::Path,
        call: http::Call,
        purpose: Purpose,
        now: Instant,
    ) -> Result<(), TransportError> {
        let stream = UnixStream::connect(path).map_err(TransportError::Connect)?;
        let conn = Conn::Plugin(PluginCall {
            exchange: Exchange::new(stream, call, true),
            path: path.to_path_buf(),
            purpose,
            started: now,
        });
        self.add_conn(conn, Some(now + self.config.options.plugin_timeout))
            .map_err(TransportError::Io)?;
        Ok(())
    }

    /// Starts polling `only` (or every loaded plugin) for a new tick and returns its id. The
    /// tick completes in [`Probe::complete_ticks`] once none of its calls is in flight.
    fn start_tick(&mut self, now: Instant, only: Option<Vec<PathBuf>>) -> u64 {
        let full = only.is_none();
        let paths: Vec<PathBuf> = match only {
            Some(paths) => paths,
            None => self.registry.iter().map(|p| p.path.clone()).collect(),
        };
        let id = self.next_tick;
        self.next_tick += 1;
        let mut tick = Tick {
            id,
            full,
            ts: Time::from_system(SystemTime::now()),
            started: now,
            outstanding: 0,
            outcomes: Vec::new(),
        };
        let limits = self.plugin_limits();
        for path in paths {
            if self.registry.get(&path).is_none() || self.in_flight.contains(&path) {
                // Not polled twice: the request in flight answers for this plugin.
                continue;
            }
            let target = plugin_target(
                "/report",
                &self.config.options.api_version,
                &self.config.probe_id,
            );
            let call = http::Call::new(
                &http::Request {
                    method: http::Method::Get,
                    target: &target,
                    host: "plugin",
                    headers: &[("User-Agent", USER_AGENT)],
                    body: &[],
                },
                limits,
            );
            match self.start_plugin_call(&path, call, Purpose::Report { tick: id }, now) {
                Ok(()) => {
                    self.in_flight.insert(path);
                    tick.outstanding += 1;
                }
                Err(e) => tick.outcomes.push((path, Err(e), Duration::ZERO)),
            }
        }
        self.ticks.push(tick);
        id
    }

    fn plugin_limits(&self) -> http::Limits {
        http::Limits {
            max_body_bytes: self.config.options.max_response_bytes,
            ..http::Limits::default()
        }
    }

    fn handle_plugin_event(&mut self, slot: usize, now: Instant) {
        let drive = match self.conns.get_mut(slot) {
            Some(Conn::Plugin(call)) => call.exchange.drive(&mut self.scratch),
            _ => return,
        };
        if let Drive::Done(result) = drive {
            self.finish_plugin_call(slot, Some(result), now);
        }
    }

    /// Removes a plugin call and hands its outcome on (`None`: cancelled, no outcome).
    fn finish_plugin_call(
        &mut self,
        slot: usize,
        result: Option<Result<Answer, TransportError>>,
        now: Instant,
    ) {
        let Some(Conn::Plugin(call)) = self.close_conn(slot) else {
            return;
        };
        let latency = call.started.elapsed();
        match call.purpose {
            Purpose::Report { tick } => {
                self.in_flight.remove(&call.path);
                if let Some(tick) = self.ticks.iter_mut().find(|t| t.id == tick) {
                    tick.outstanding = tick.outstanding.saturating_sub(1);
                    if let Some(result) = result {
                        tick.outcomes.push((call.path, result, latency));
                    }
                }
            }
            Purpose::Control(reply) => {
                let result = result.unwrap_or_else(|| {
                    Err(TransportError::Io(io::ErrorKind::ConnectionAborted.into()))
                });
                self.finish_control(reply, &call.path, result, now);
            }
        }
    }

    /// Validates and records every tick whose calls have all ended.
    fn complete_ticks<'a>(&mut self, interval: &mut Interval<'a>) {
        while let Some(pos) = self.ticks.iter().position(|t| t.outstanding == 0) {
            let tick = self.ticks.remove(pos);
            let spy = self.validate_tick(tick, interval.bodies, interval.decoded);
            interval.spies.push(spy);
        }
    }

    /// Scope's registry cycle for one tick: every plugin's outcome, in socket-path order,
    /// through validation, statuses and control rewriting.
    fn validate_tick<'a>(
        &mut self,
        tick: Tick,
        bodies: &'a Arena<Vec<u8>>,
        decoded: &'a DecodeArena,
    ) -> SpyReport<'a> {
        let now = Time::from_system(SystemTime::now());
        let mut outcomes = tick.outcomes;
        // Scope visits plugins in sorted path *string* order (spec §7.4), which differs from
        // `Path`'s component order around '/'.
        outcomes.sort_by(|a, b| go_path_cmp(&a.0, &b.0));
        let mut plugins = Report::make();
        let mut merged = 0;
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
            let rpt = plugin.handle_report(
                outcome,
                decoded,
                &self.config.options.api_version,
                latency,
                now,
            );
            plugins.merge(rpt);
            merged += 1;
        }
        log::debug!(
            "probe: tick {} done in {:?} ({merged} plugins)",
            tick.id,
            tick.started.elapsed(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `polls` connections on a plugin socket at `path`, each answered with `body`.
    fn serve_plugin(
        path: &std::path::Path,
        body: &'static str,
        polls: usize,
    ) -> std::thread::JoinHandle<()> {
        use std::io::{Read, Write};
        let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
        std::thread::spawn(move || {
            for _ in 0..polls {
                let (mut conn, _) = listener.accept().expect("accept");
                let mut head = Vec::new();
                let mut byte = [0u8];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).expect("read") == 1 {
                    head.push(byte[0]);
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).expect("write");
            }
        })
    }

    // What a poll's reports cannot borrow from their bodies goes to the probe's arena, whose
    // block is kept for the next poll: growing a fresh one every poll cost a third of a
    // thousand plugins' poll.
    #[test]
    fn polls_reuse_the_decode_arena() {
        let root = tempfile::tempdir().expect("tempdir");
        let body = concat!(
            r#"{"Host":{"nodes":{"h;<host>":{"latest":{"os":{"timestamp":"#,
            r#""2026-11-22T01:00:00Z","value":"\u003clinux\u003e"}}}}},"#,
            r#""Plugins":[{"id":"p","label":"P","interfaces":["reporter"],"api_version":"1"}]}"#
        );
        let server = serve_plugin(&root.path().join("p.sock"), body, 3);
        let config = Config::new(
            Some(root.path().to_path_buf()),
            "1".into(),
            "testhost".into(),
        );
        let mut probe = Probe::new(config).expect("probe");
        let first = probe.once().expect("first poll");
        assert!(
            String::from_utf8_lossy(&first.report).contains("<linux>"),
            "the plugin's report was decoded"
        );
        let block = probe.decoded.allocated_bytes();
        assert!(block > 0, "the decoded report used the arena");
        for _ in 0..2 {
            probe.once().expect("poll");
            assert_eq!(
                probe.decoded.allocated_bytes(),
                block,
                "the same block again"
            );
        }
        server.join().expect("plugin thread");
    }

    #[test]
    fn periodic_timers_keep_their_phase_and_skip_missed_beats() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        // On time: exactly one interval later, however late within the beat we ran.
        assert_eq!(
            next_due(t0, second, t0 + Duration::from_millis(300)),
            t0 + second
        );
        // 2.5 intervals late: the missed beats are skipped, the phase is kept.
        assert_eq!(
            next_due(t0, second, t0 + Duration::from_millis(2500)),
            t0 + 3 * second
        );
        // Exactly on a beat: the next one.
        assert_eq!(next_due(t0, second, t0 + second), t0 + 2 * second);
    }
}
