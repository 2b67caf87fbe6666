//! Whole-process benchmark of the plugin host: N fake plugins (N = 1, 10, 100, 1000) answering
//! promptly with a small valid report each, served from ONE thread of this process
//! (`host/farm.rs`) so they do not distort the figures.
//!
//! It measures, and prints as one table at the end:
//! 1. **Poll cycle**, in-process: `Probe::once()` repeated on one probe (one `GET /report` to
//!    every plugin concurrently, validation, merge, and encoding of the two JSON reports `once`
//!    returns). `once` does not rescan: discovery (the readdir/stat scan and loading the
//!    registry, plus epoll/timerfd/signal/inotify setup) is `Probe::new`, timed separately.
//! 2. **Memory** of the real binary with `--publish-stdout --no-host --spy-interval 1s
//!    --publish-interval 3s` (stdout drained and checked here): `VmRSS` 10 s after the first
//!    complete report and at the end of the window, and `VmHWM`.
//! 3. **CPU** of the same process over the window: utime+stime ticks from `/proc/<pid>/stat`,
//!    and the exact on-CPU time from `/proc/<pid>/task/*/schedstat`, as % of one core.
//! 4. **Reaction** of discovery: from `bind` creating a new socket to its first request head
//!    (inotify path: spy interval 10 s and rescan interval 1 m, so neither can poll it first).
//!
//! `cargo bench --bench host` runs everything (30 s windows; about 2.5 minutes).
//! `cargo bench --bench host -- quick` (or `HOSTBENCH_QUICK=1`) uses 5 s windows and fewer runs.
//! Naming stages (`-- cycle`, `-- process`, `-- reaction`, combinable with `quick`) runs only
//! those.
//! `HOSTBENCH_PROBE_ARGS="--publish-interval 1s"` appends options to the process runs' probe.
//! `SCOPE_PROBE_BIN=path` measures another binary than the one cargo built for the bench (for
//! example the `cargo build --release` one, which differs only in `panic = "abort"`).
//!
//! Not here: merge throughput on big reports (`benches/merge.rs`), misbehaving plugins (the
//! integration tests).

#[path = "host/farm.rs"]
mod farm;
#[path = "host/procfs.rs"]
mod procfs;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use scope_probe::probe::{Config, OnceOutcome, Probe};

use farm::Farm;

const SIZES: [usize; 4] = [1, 10, 100, 1000];

/// Which parts run (all unless some are named on the command line).
struct Stages {
    cycle: bool,
    process: bool,
    reaction: bool,
}

/// How long and how often to measure.
struct Settings {
    quick: bool,
    stages: Stages,
    /// More options for the probe of the process runs (`HOSTBENCH_PROBE_ARGS`).
    probe_args: Vec<String>,
    cycle_runs: usize,
    /// Process runs: how long CPU is counted, from the first complete report.
    window: Duration,
    /// When the first RSS sample is taken, from the first complete report.
    rss_at: Duration,
    reaction_samples: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "quick")
            || std::env::var("HOSTBENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let named = |stage: &str| args.iter().any(|a| a == stage);
        let any_named = named("cycle") || named("process") || named("reaction");
        let probe_args: Vec<String> = std::env::var("HOSTBENCH_PROBE_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let stages = Stages {
            cycle: !any_named || named("cycle"),
            process: !any_named || named("process"),
            reaction: !any_named || named("reaction"),
        };
        if quick {
            Settings {
                quick,
                stages,
                probe_args,
                cycle_runs: 20,
                window: Duration::from_secs(5),
                rss_at: Duration::from_secs(5),
                reaction_samples: 10,
            }
        } else {
            Settings {
                quick,
                stages,
                probe_args,
                cycle_runs: 50,
                window: Duration::from_secs(30),
                rss_at: Duration::from_secs(10),
                reaction_samples: 20,
            }
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("host bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let settings = Settings::from_env();
    let fd_limit = raise_fd_limit()?;
    let bin = std::env::var("SCOPE_PROBE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_scope-probe").to_string());
    let machine = procfs::machine();
    eprintln!(
        "host bench ({} mode): {machine}; fd limit {fd_limit}; binary {bin}",
        if settings.quick { "quick" } else { "full" }
    );

    let mut cycles = Vec::new();
    for n in SIZES.into_iter().filter(|_| settings.stages.cycle) {
        eprintln!("cycle: {n} plugins, {} runs", settings.cycle_runs);
        cycles.push(bench_cycle(n, settings.cycle_runs)?);
    }
    let mut processes = Vec::new();
    for n in SIZES.into_iter().filter(|_| settings.stages.process) {
        eprintln!(
            "process: {n} plugins, {} s window",
            settings.window.as_secs()
        );
        processes.push(bench_process(&bin, n, &settings)?);
    }
    let reaction = if settings.stages.reaction {
        eprintln!("reaction: {} new sockets", settings.reaction_samples);
        Some(bench_reaction(&bin, settings.reaction_samples)?)
    } else {
        None
    };

    print_table(
        &settings,
        &machine,
        &bin,
        &cycles,
        &processes,
        reaction.as_ref(),
    );
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: the in-process cycle with 1000
/// plugins holds 1000 listeners, up to 1000 accepted and 1000 client sockets at once. The
/// child probes inherit it.
fn raise_fd_limit() -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid `rlimit` read above, with the soft limit at the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    let needed = 3 * SIZES[SIZES.len() - 1] as u64 + 64;
    if limit.rlim_cur < needed {
        return Err(format!(
            "the open-files limit is {} (hard), the bench needs {needed}",
            limit.rlim_cur
        ));
    }
    Ok(limit.rlim_cur)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

// ---------------------------------------------------------------------------------------------
// 1. Poll cycle, in-process

struct CycleResult {
    n: usize,
    runs: usize,
    median: Duration,
    p95: Duration,
    max: Duration,
    /// On-CPU time of the probe's thread during `once` (the rest is waiting for plugins or
    /// for a core).
    cpu_median: Duration,
    new_median: Duration,
    report_bytes: usize,
    body_bytes: usize,
}

fn bench_cycle(n: usize, runs: usize) -> Result<CycleResult, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let farm = Farm::start(dir.path(), n).map_err(|e| format!("plugin farm: {e}"))?;
    let mut config = Config::new(
        Some(dir.path().to_path_buf()),
        "0123456789abcdef".into(),
        "benchhost".into(),
    );
    config.options.no_host = true;

    let mut new_times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let probe = Probe::new(config.clone()).map_err(|e| format!("Probe::new: {e}"))?;
        new_times.push(started.elapsed());
        if probe.registry().len() != n {
            return Err(format!(
                "Probe::new loaded {} plugins, expected {n}",
                probe.registry().len()
            ));
        }
    }

    let mut probe = Probe::new(config).map_err(|e| format!("Probe::new: {e}"))?;
    for _ in 0..3 {
        let outcome = probe.once().map_err(|e| format!("once: {e}"))?;
        check_all_ok(&outcome, n)?;
    }
    let served_before = farm.served();
    let mut times = Vec::with_capacity(runs);
    let mut cpu_times = Vec::with_capacity(runs);
    let mut report_bytes = 0;
    for _ in 0..runs {
        let cpu_started = thread_cpu_time();
        let started = Instant::now();
        let outcome = probe.once().map_err(|e| format!("once: {e}"))?;
        times.push(started.elapsed());
        cpu_times.push(thread_cpu_time().saturating_sub(cpu_started));
        check_all_ok(&outcome, n)?;
        report_bytes = outcome.report.len();
    }
    // Every run polled every plugin exactly once (the farm counts just after its last write,
    // so the count may trail the probe by a moment).
    let expected = served_before + (runs * n) as u64;
    let deadline = Instant::now() + Duration::from_secs(2);
    while farm.served() < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    if farm.served() != expected {
        return Err(format!(
            "{n} plugins × {runs} runs should be {} requests, the farm answered {}",
            runs * n,
            farm.served() - served_before
        ));
    }
    Ok(CycleResult {
        n,
        runs,
        median: percentile(&mut times, 0.5),
        p95: percentile(&mut times, 0.95),
        max: percentile(&mut times, 1.0),
        cpu_median: percentile(&mut cpu_times, 0.5),
        new_median: percentile(&mut new_times, 0.5),
        report_bytes,
        body_bytes: farm::report_body(&farm::plugin_id(0)).len(),
    })
}

/// CPU time of the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn check_all_ok(outcome: &OnceOutcome, n: usize) -> Result<(), String> {
    if outcome.statuses.len() != n {
        return Err(format!(
            "{} plugin statuses, expected {n}",
            outcome.statuses.len()
        ));
    }
    match outcome.statuses.iter().find(|(_, s)| s != "ok") {
        Some((id, status)) => Err(format!("plugin {id}: {status}")),
        None => Ok(()),
    }
}

/// Nearest-rank percentile (`q` in 0..=1) of `samples`, which it sorts.
fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

// ---------------------------------------------------------------------------------------------
// 2–3. Memory and CPU of the real binary

/// A published report as the drain thread saw it.
struct Published {
    at: Instant,
    plugins_ok: usize,
    plugins: usize,
}

/// The probe binary as a child; killed when dropped.
struct ProbeChild {
    child: Child,
    reports: Receiver<Published>,
}

impl ProbeChild {
    fn start(bin: &str, root: &Path, extra: &[&str]) -> Result<ProbeChild, String> {
        let mut child = Command::new(bin)
            .args(["--publish-stdout", "--no-host", "--log-level", "warn"])
            .arg("--plugins-root")
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {bin}: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| "child has no stdout".to_string())?;
        let (tx, reports) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let report: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("host bench: probe printed a line that is not JSON: {e}");
                        continue;
                    }
                };
                let specs = report["Plugins"].as_array().map_or(&[][..], Vec::as_slice);
                let published = Published {
                    at,
                    plugins_ok: specs.iter().filter(|s| s["status"] == "ok").count(),
                    plugins: specs.len(),
                };
                if tx.send(published).is_err() {
                    break;
                }
            }
        });
        Ok(ProbeChild { child, reports })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a report with all `n` plugins `ok`; returns when it was read.
    fn wait_complete_report(&self, n: usize, timeout: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| format!("no report with {n} plugins ok within {timeout:?}"))?;
            match self.reports.recv_timeout(left) {
                Ok(p) if p.plugins == n && p.plugins_ok == n => return Ok(p.at),
                Ok(_) => {}
                Err(_) => return Err(format!("no report with {n} plugins ok within {timeout:?}")),
            }
        }
    }
}

impl Drop for ProbeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ProcessResult {
    n: usize,
    window: Duration,
    rss_early_kb: u64,
    rss_kb: u64,
    hwm_kb: u64,
    cpu_ticks: u64,
    cpu_sched_ns: Option<u64>,
    polls: u64,
    reports: usize,
    reports_not_ok: usize,
}

impl ProcessResult {
    fn cpu_percent_ticks(&self) -> f64 {
        self.cpu_ticks as f64 / clock_ticks_per_second() as f64 / self.window.as_secs_f64() * 100.0
    }

    fn cpu_percent_sched(&self) -> Option<f64> {
        self.cpu_sched_ns
            .map(|ns| ns as f64 / self.window.as_nanos() as f64 * 100.0)
    }
}

fn bench_process(bin: &str, n: usize, settings: &Settings) -> Result<ProcessResult, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let farm = Farm::start(dir.path(), n).map_err(|e| format!("plugin farm: {e}"))?;
    let mut args = vec!["--spy-interval", "1s", "--publish-interval", "3s"];
    // Later options win, so these can override the intervals above.
    args.extend(settings.probe_args.iter().map(String::as_str));
    let probe = ProbeChild::start(bin, dir.path(), &args)?;
    let pid = probe.pid();
    probe.wait_complete_report(n, Duration::from_secs(15))?;
    let cpu_before = procfs::cpu_time(pid)?;
    let served_before = farm.served();
    let started = Instant::now();

    thread::sleep(settings.rss_at.min(settings.window));
    let (rss_early_kb, _) = procfs::memory_kb(pid)?;
    if let Some(left) = (started + settings.window).checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
    let cpu_after = procfs::cpu_time(pid)?;
    let window = started.elapsed();
    let served_after = farm.served();
    let (rss_kb, hwm_kb) = procfs::memory_kb(pid)?;

    let mut reports = 0;
    let mut reports_not_ok = 0;
    while let Ok(p) = probe.reports.try_recv() {
        reports += 1;
        if p.plugins != n || p.plugins_ok != n {
            reports_not_ok += 1;
        }
    }
    drop(probe);
    Ok(ProcessResult {
        n,
        window,
        rss_early_kb,
        rss_kb,
        hwm_kb,
        cpu_ticks: cpu_after.ticks - cpu_before.ticks,
        cpu_sched_ns: cpu_after
            .sched_ns
            .zip(cpu_before.sched_ns)
            .map(|(a, b)| a - b),
        polls: served_after - served_before,
        reports,
        reports_not_ok,
    })
}

// ---------------------------------------------------------------------------------------------
// 4. Reaction of discovery

struct ReactionResult {
    samples: Vec<Duration>,
}

fn bench_reaction(bin: &str, samples: usize) -> Result<ReactionResult, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mut farm = Farm::start(dir.path(), 1).map_err(|e| format!("plugin farm: {e}"))?;
    let _probe = ProbeChild::start(
        bin,
        dir.path(),
        &[
            "--spy-interval",
            "10s",
            "--rescan-interval",
            "1m",
            "--publish-interval",
            "3s",
        ],
    )?;
    // The probe polls the existing plugin at start: from then on its inotify watch is up.
    match farm.next_first_request(Duration::from_secs(10)) {
        Some((0, _)) => {}
        other => {
            return Err(format!(
                "the probe never polled the first plugin: {other:?}"
            ));
        }
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (index, created) = farm.add().map_err(|e| format!("add a plugin: {e}"))?;
        match farm.next_first_request(Duration::from_secs(5)) {
            Some((polled, at)) if polled == index => out.push(at.duration_since(created)),
            other => {
                return Err(format!(
                    "new plugin {index} not polled within 5 s (got {other:?})"
                ));
            }
        }
        // Samples apart from each other, so that no two share one inotify wake-up.
        thread::sleep(Duration::from_millis(100));
    }
    Ok(ReactionResult { samples: out })
}

// ---------------------------------------------------------------------------------------------
// Output

/// One table row, columns right-aligned to the header widths.
fn print_row(cells: &[String]) {
    const WIDTHS: [usize; 14] = [5, 5, 9, 8, 8, 8, 8, 7, 9, 8, 8, 9, 7, 11];
    let line: Vec<String> = cells
        .iter()
        .zip(WIDTHS)
        .map(|(c, w)| format!("{c:>w$}"))
        .collect();
    println!("{}", line.join(" | "));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn print_table(
    settings: &Settings,
    machine: &str,
    bin: &str,
    cycles: &[CycleResult],
    processes: &[ProcessResult],
    reaction: Option<&ReactionResult>,
) {
    let window = settings.window.as_secs();
    println!();
    println!(
        "scope-probe host benchmark ({} mode)",
        if settings.quick { "quick" } else { "full" }
    );
    println!("machine: {machine}");
    println!("binary:  {bin}");
    println!(
        "plugins: each answers at once with a {} B report (1 Host node, 6 latest, 1 metric)",
        cycles.first().map_or(0, |c| c.body_bytes)
    );
    println!();
    println!("cycle = Probe::once() in-process: GET /report to every plugin concurrently,");
    println!(
        "        validate, merge, encode (no rescan); scan = Probe::new (setup + scan + load)"
    );
    println!(
        "process = release binary, --spy-interval 1s --publish-interval 3s --no-host \
         --publish-stdout {}; CPU over a {window} s window after the first complete report",
        settings.probe_args.join(" ")
    );
    println!();
    let header = [
        "N",
        "runs",
        "cycle med",
        "p95",
        "max",
        "cyc CPU",
        "scan",
        "report",
        "RSS@early",
        "RSS end",
        "HWM",
        "CPU ticks",
        "CPU ns",
        "polls/s ok",
    ];
    let units = [
        "", "", "ms", "ms", "ms", "ms", "ms", "KB", "MB", "MB", "MB", "% core", "% core", "",
    ];
    print_row(&header.map(String::from));
    print_row(&units.map(String::from));
    for n in SIZES {
        let c = cycles.iter().find(|c| c.n == n);
        let p = processes.iter().find(|p| p.n == n);
        let cell = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let reports_ok = p.map(|p| {
            format!(
                "{:.0} {}/{}",
                p.polls as f64 / p.window.as_secs_f64(),
                p.reports - p.reports_not_ok,
                p.reports
            )
        });
        print_row(&[
            n.to_string(),
            cell(c.map(|c| c.runs.to_string())),
            cell(c.map(|c| format!("{:.2}", ms(c.median)))),
            cell(c.map(|c| format!("{:.2}", ms(c.p95)))),
            cell(c.map(|c| format!("{:.2}", ms(c.max)))),
            cell(c.map(|c| format!("{:.2}", ms(c.cpu_median)))),
            cell(c.map(|c| format!("{:.2}", ms(c.new_median)))),
            cell(c.map(|c| format!("{:.1}", c.report_bytes as f64 / 1024.0))),
            cell(p.map(|p| format!("{:.2}", mb(p.rss_early_kb)))),
            cell(p.map(|p| format!("{:.2}", mb(p.rss_kb)))),
            cell(p.map(|p| format!("{:.2}", mb(p.hwm_kb)))),
            cell(p.map(|p| format!("{:.3}", p.cpu_percent_ticks()))),
            cell(p.and_then(|p| p.cpu_percent_sched().map(|v| format!("{v:.3}")))),
            cell(reports_ok),
        ]);
    }
    println!(
        "(cyc CPU: on-CPU time of the probe's thread per cycle, median; scan: Probe::new, \
         median of 7; RSS@early: {} s after the first complete report; CPU ticks: \
         utime+stime at {} Hz; CPU ns: schedstat; polls/s: requests answered by the farm; \
         a/b: reports with every plugin ok / reports)",
        settings.rss_at.min(settings.window).as_secs(),
        clock_ticks_per_second()
    );
    let Some(reaction) = reaction else {
        return;
    };
    let mut samples = reaction.samples.clone();
    let median = percentile(&mut samples, 0.5);
    let max = percentile(&mut samples, 1.0);
    let min = percentile(&mut samples, 0.0);
    println!();
    println!(
        "reaction (bind of a new socket -> its first request head, inotify path), {} samples: \
         median {:.1} ms, min {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(median),
        ms(min),
        ms(max)
    );
    println!();
    let cycle_1000 = cycles.iter().find(|c| c.n == 1000);
    let proc_of = |n: usize| processes.iter().find(|p| p.n == n);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    if let Some(c) = cycle_1000 {
        println!(
            "target: 1000 plugins cycle <= 50 ms: median {:.2} ms, p95 {:.2} ms ({})",
            ms(c.median),
            ms(c.p95),
            verdict(c.p95 <= Duration::from_millis(50))
        );
    }
    for (n, limit_mb) in [(10, 4.0), (1000, 32.0)] {
        if let Some(p) = proc_of(n) {
            println!(
                "target: RSS with {n} plugins <= {limit_mb} MB: RSS {:.2} MB, HWM {:.2} MB ({})",
                mb(p.rss_kb),
                mb(p.hwm_kb),
                verdict(mb(p.hwm_kb) <= limit_mb)
            );
        }
    }
    if let Some(p) = proc_of(1) {
        let pct = p
            .cpu_percent_sched()
            .unwrap_or_else(|| p.cpu_percent_ticks());
        println!(
            "target: idle CPU with 1 plugin at 1 s <= 0.05 % of a core: {pct:.3} % ({})",
            verdict(pct <= 0.05)
        );
    }
}
