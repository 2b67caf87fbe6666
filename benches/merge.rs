//! Merge benchmarks over a synthetic corpus (`corpus`): how fast the probe turns a publish
//! interval's plugin bodies into one merged, encoded report, against the floor of merely
//! validating the same JSON.
//!
//! Groups: `merge_10x1MB` (10 reports of about 1 MB) and `merge_100x30KB` (100 reports of about
//! 30 kB), both with `Throughput::Bytes` of the total input. Benchmarks in each group:
//! - `validate_only`: `serde_json` skipping every body into `IgnoredAny` (the baseline);
//! - `decode_merge_encode`: decode every body, merge into one report, encode it. Like the probe
//!   in a publish interval, it decodes into a `DecodeArena` that it resets first and reuses.
//!
//! With `SCOPE_PROBE_BENCH_PHASES=1`, also `phase_decode`, `phase_decode_merge` (both including
//! the drop of what they built) and `phase_encode` (of the merged report), to see where the time
//! goes.
//!
//! A counting global allocator also reports how many allocations `Report::merge` makes over
//! pre-decoded reports, per string in the input.
//!
//! `SCOPE_PROBE_DUMP_CORPUS=<dir> cargo bench --bench merge` writes the corpora to
//! `<dir>/<group>/pNNN.json` and exits, so they can be checked outside Rust.
//!
//! `SCOPE_PROBE_BENCH_ONCE=<group>` runs that group's pipeline once after a warm-up, inside
//! `pipeline_once`, and exits: for counting its instructions with
//! `valgrind --tool=callgrind --toggle-collect='*pipeline_once*'`, a figure that, unlike
//! wall time on a shared machine, does not drift from run to run.
//!
//! `SCOPE_PROBE_BENCH_FASTEST=<runs>` times that many single runs of validate-only and of the
//! pipeline, alternating, for each group, prints the fastest and the median of each and exits:
//! on a shared machine the fastest run is the one least disturbed by other tenants, where
//! criterion's mean moves with them. With `SCOPE_PROBE_BENCH_PHASES=1` too, it also prints the
//! fastest time of each phase.
//!
//! Not here: correctness of merge (unit tests and the Go vectors cover that).

mod corpus;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use scope_probe::report::DecodeArena;

/// A `GlobalAlloc` over `System` that counts allocations while [`allocations_during`] runs,
/// so the bench can print how many allocations a phase makes.
struct CountingAlloc;

/// Whether allocations are being counted. Outside [`allocations_during`] the allocator costs
/// one relaxed load more than `System`: counting with locked adds all the time would charge the
/// timed pipeline for an instrument the probe does not have.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Allocations (including reallocations) counted.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested by those allocations.
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counters are atomics and never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest of
        // `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the allocations and bytes it made. Only meaningful
/// while no other thread allocates (the bench is single-threaded outside criterion's runs).
fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let (count, bytes) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    COUNTING.store(true, Ordering::Relaxed);
    let out = f();
    COUNTING.store(false, Ordering::Relaxed);
    let count = ALLOCATIONS.load(Ordering::Relaxed) - count;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
    (out, count, bytes)
}

/// One benchmark group: its name, and the corpus it runs on.
struct GroupSpec {
    name: &'static str,
    reports: usize,
    nodes: usize,
}

const GROUPS: [GroupSpec; 2] = [
    GroupSpec {
        name: "merge_10x1MB",
        reports: 10,
        nodes: 230,
    },
    GroupSpec {
        name: "merge_100x30KB",
        reports: 100,
        nodes: 7,
    },
];
const SEED: u64 = 0x5C09_E202;

fn main() {
    if let Some(dir) = std::env::var_os("SCOPE_PROBE_DUMP_CORPUS") {
        dump_corpora(Path::new(&dir));
        return;
    }
    if let Some(group) = std::env::var_os("SCOPE_PROBE_BENCH_ONCE") {
        let Some(spec) = GROUPS.iter().find(|spec| group == spec.name) else {
            panic!("SCOPE_PROBE_BENCH_ONCE: no group {group:?}");
        };
        let bodies = corpus::generate(spec.reports, spec.nodes, SEED);
        let (mut arena, mut out) = (DecodeArena::new(), Vec::new());
        with_report::decode_merge_encode(&bodies, &mut arena, &mut out);
        let len = with_report::pipeline_once(&bodies, &mut arena, &mut out);
        eprintln!("{}: one run, {len} bytes out", spec.name);
        return;
    }
    if let Some(runs) = std::env::var_os("SCOPE_PROBE_BENCH_FASTEST") {
        let runs = runs
            .to_str()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0);
        let Some(runs) = runs else {
            panic!("SCOPE_PROBE_BENCH_FASTEST: expected a number of runs");
        };
        for spec in &GROUPS {
            fastest_runs(spec, runs);
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    for spec in &GROUPS {
        let bodies = corpus::generate(spec.reports, spec.nodes, SEED);
        let total: usize = bodies.iter().map(Vec::len).sum();
        let smallest = bodies.iter().map(Vec::len).min().unwrap_or(0);
        let largest = bodies.iter().map(Vec::len).max().unwrap_or(0);
        eprintln!(
            "{}: {} reports, {total} bytes in all, {smallest}..{largest} bytes each",
            spec.name, spec.reports
        );
        let ((), count, _) = allocations_during(|| validate_all(&bodies));
        eprintln!("{}: validate_only made {count} allocations", spec.name);

        let mut group = criterion.benchmark_group(spec.name);
        group.throughput(Throughput::Bytes(total as u64));
        group.sample_size(20);
        bench_validate_only(&mut group, &bodies);
        with_report::bench_decode_merge_encode(&mut group, &bodies);
        if std::env::var_os("SCOPE_PROBE_BENCH_PHASES").is_some() {
            with_report::bench_phases(&mut group, &bodies);
        }
        group.finish();
        with_report::print_merge_allocations(spec.name, &bodies);
    }
    criterion.final_summary();
}

/// Times `runs` single runs of validate-only and of the pipeline over `spec`'s corpus,
/// alternating so that both see the same disturbances, and prints the fastest and median.
fn fastest_runs(spec: &GroupSpec, runs: usize) {
    let bodies = corpus::generate(spec.reports, spec.nodes, SEED);
    let total: usize = bodies.iter().map(Vec::len).sum();
    let (mut arena, mut out) = (DecodeArena::new(), Vec::new());
    // Warm-up: the output buffer, the arena and the allocator reach their steady state.
    with_report::decode_merge_encode(&bodies, &mut arena, &mut out);
    let (mut validate, mut pipeline) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let start = Instant::now();
        validate_all(&bodies);
        validate.push(start.elapsed());
        let start = Instant::now();
        with_report::decode_merge_encode(&bodies, &mut arena, &mut out);
        pipeline.push(start.elapsed());
    }
    validate.sort();
    pipeline.sort();
    let per_second = |d: Duration| total as f64 / d.as_secs_f64();
    let mib = |d: Duration| per_second(d) / f64::from(1 << 20);
    let (v_fast, v_mid) = (validate[0], validate[runs / 2]);
    let (p_fast, p_mid) = (pipeline[0], pipeline[runs / 2]);
    eprintln!(
        "{}: {runs} runs, fastest / median: validate-only {:.0} / {:.0} MiB/s; \
         decode + merge + encode {:.0} / {:.0} MiB/s ({:.0} / {:.0} MB/s), \
         {:.1} / {:.1} % of validate-only",
        spec.name,
        mib(v_fast),
        mib(v_mid),
        mib(p_fast),
        mib(p_mid),
        per_second(p_fast) / 1e6,
        per_second(p_mid) / 1e6,
        100.0 * v_fast.as_secs_f64() / p_fast.as_secs_f64(),
        100.0 * v_mid.as_secs_f64() / p_mid.as_secs_f64(),
    );
    if std::env::var_os("SCOPE_PROBE_BENCH_PHASES").is_some() {
        let [decode, decode_merge, encode, drop] = with_report::fastest_phases(&bodies, runs);
        eprintln!(
            "{}: fastest phases: decode (each report dropped) {decode:.2} ms, decode + merge \
             {decode_merge:.2} ms, encode {encode:.2} ms, drop the merged report {drop:.2} ms",
            spec.name
        );
    }
}

fn validate_all(bodies: &[Vec<u8>]) {
    for body in bodies {
        // unwrap: the corpus is generated valid JSON; failing here is a generator bug.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("corpus body is JSON");
    }
}

fn bench_validate_only(group: &mut BenchmarkGroup<'_, WallTime>, bodies: &[Vec<u8>]) {
    group.bench_function("validate_only", |b| {
        b.iter(|| validate_all(black_box(bodies)))
    });
}

/// Writes each group's corpus to `dir/<group>/pNNN.json`.
fn dump_corpora(dir: &Path) {
    for spec in &GROUPS {
        let out = dir.join(spec.name);
        std::fs::create_dir_all(&out).expect("create corpus directory");
        for (i, body) in corpus::generate(spec.reports, spec.nodes, SEED)
            .iter()
            .enumerate()
        {
            std::fs::write(out.join(format!("p{:03}.json", i + 1)), body)
                .expect("write corpus file");
        }
        eprintln!("wrote {} reports to {}", spec.reports, out.display());
    }
}

/// decode + merge + encode through `scope_probe::report`, and merge's allocation count.
mod with_report {
    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;
    use scope_probe::report::{DecodeArena, Report, Time, decode_plugin_report_in, encode};
    use serde_json::Value;
    use std::hint::black_box;
    use std::time::Instant;

    /// Well after every timestamp in the corpus (which starts at 2026-11-22T01:00:00Z).
    fn now() -> Time {
        Time::from_unix_nanos(1_795_400_000_000_000_000)
    }

    /// Decodes `body` into `arena`, as the probe does.
    fn decode<'a>(body: &'a [u8], arena: &'a DecodeArena) -> Report<'a> {
        // unwrap: the corpus is valid; a decode failure is a bug worth a panic.
        decode_plugin_report_in(body, now(), arena).expect("corpus report decodes")
    }

    /// What `decode_merge_encode` times: every body decoded and merged into one report, which
    /// is encoded into `out`. Like the probe in a publish interval, it starts by resetting the
    /// arena it decodes into.
    pub fn decode_merge_encode(bodies: &[Vec<u8>], arena: &mut DecodeArena, out: &mut Vec<u8>) {
        arena.reset();
        let mut acc = Report::make();
        for body in black_box(bodies) {
            acc.merge(decode(body, arena));
        }
        out.clear();
        encode(&acc, out);
        black_box(&out);
    }

    /// One run of [`decode_merge_encode`] in a function of its own, for callgrind's
    /// `--toggle-collect`; returns the encoded length.
    #[inline(never)]
    pub fn pipeline_once(bodies: &[Vec<u8>], arena: &mut DecodeArena, out: &mut Vec<u8>) -> usize {
        decode_merge_encode(bodies, arena, out);
        out.len()
    }

    pub fn bench_decode_merge_encode(group: &mut BenchmarkGroup<'_, WallTime>, bodies: &[Vec<u8>]) {
        let (mut arena, mut out) = (DecodeArena::new(), Vec::new());
        group.bench_function("decode_merge_encode", |b| {
            b.iter(|| decode_merge_encode(bodies, &mut arena, &mut out))
        });
    }

    /// Each phase of `decode_merge_encode` alone, to see where its time goes.
    pub fn bench_phases(group: &mut BenchmarkGroup<'_, WallTime>, bodies: &[Vec<u8>]) {
        let mut arena = DecodeArena::new();
        group.bench_function("phase_decode", |b| {
            b.iter(|| {
                arena.reset();
                for body in black_box(bodies) {
                    black_box(decode(body, &arena));
                }
            })
        });
        group.bench_function("phase_decode_merge", |b| {
            b.iter(|| {
                arena.reset();
                let mut acc = Report::make();
                for body in black_box(bodies) {
                    acc.merge(decode(body, &arena));
                }
                drop(black_box(acc));
            })
        });
        arena.reset();
        let mut acc = Report::make();
        for body in bodies {
            acc.merge(decode(body, &arena));
        }
        let mut out = Vec::new();
        group.bench_function("phase_encode", |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(&acc), &mut out);
                black_box(&out);
            })
        });
        eprintln!("merged report encodes to {} bytes", out.len());
    }

    /// The fastest of `runs` timings of each phase of [`decode_merge_encode`], in
    /// milliseconds: decoding every body (each report dropped at once), decoding and merging
    /// them, encoding the merged report, and dropping it.
    pub fn fastest_phases(bodies: &[Vec<u8>], runs: usize) -> [f64; 4] {
        let mut fastest = [f64::INFINITY; 4];
        let (mut arena, mut out) = (DecodeArena::new(), Vec::new());
        let mut time = |phase: usize, start: Instant| {
            fastest[phase] = fastest[phase].min(start.elapsed().as_secs_f64() * 1e3);
        };
        for _ in 0..runs {
            let start = Instant::now();
            arena.reset();
            for body in black_box(bodies) {
                black_box(decode(body, &arena));
            }
            time(0, start);
            let start = Instant::now();
            arena.reset();
            let mut acc = Report::make();
            for body in black_box(bodies) {
                acc.merge(decode(body, &arena));
            }
            time(1, start);
            let start = Instant::now();
            out.clear();
            encode(black_box(&acc), &mut out);
            black_box(&out);
            time(2, start);
            let start = Instant::now();
            drop(black_box(acc));
            time(3, start);
        }
        fastest
    }

    /// Prints the allocations decoding and `Report::merge` make, the latter over reports
    /// decoded beforehand.
    pub fn print_merge_allocations(name: &str, bodies: &[Vec<u8>]) {
        let arena = DecodeArena::new();
        let (decoded, decode_count, _) = super::allocations_during(|| {
            bodies
                .iter()
                .map(|body| decode(body, &arena))
                .collect::<Vec<Report<'_>>>()
        });
        eprintln!(
            "{name}: decoding made {} allocations per report (the arena's blocks included; \
             {} bytes in all)",
            decode_count / bodies.len().max(1) as u64,
            arena.allocated_bytes()
        );
        let mut acc = Report::make();
        let ((), count, bytes) = super::allocations_during(|| {
            for report in decoded {
                acc.merge(report);
            }
        });
        let strings: u64 = bodies.iter().map(|body| count_strings(body)).sum();
        eprintln!(
            "{name}: merge made {count} allocations ({bytes} bytes) for {strings} input strings: \
             {:.3} allocations per string",
            count as f64 / strings.max(1) as f64
        );
        black_box(&acc);
    }

    /// JSON strings (object keys and string values) in one body.
    fn count_strings(body: &[u8]) -> u64 {
        fn walk(value: &Value) -> u64 {
            match value {
                Value::String(_) => 1,
                Value::Array(items) => items.iter().map(walk).sum(),
                Value::Object(map) => map.values().map(|v| 1 + walk(v)).sum(),
                _ => 0,
            }
        }
        walk(&serde_json::from_slice(body).expect("corpus body is JSON"))
    }
}
