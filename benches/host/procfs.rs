//! What the host benchmark reads from `/proc`: a process's memory and CPU time, and a
//! description of the machine.
//!
//! Not here: anything about the probe; these are plain readers that fail with a message.

use std::fs;

/// A process's CPU time so far.
#[derive(Clone, Copy, Debug)]
pub struct CpuTime {
    /// utime + stime from `/proc/<pid>/stat`, in clock ticks.
    pub ticks: u64,
    /// Time on CPU of all its threads from `/proc/<pid>/task/*/schedstat`, in nanoseconds
    /// (exact, where ticks are 10 ms coarse); `None` if the kernel has no schedstat.
    pub sched_ns: Option<u64>,
}

/// Reads `pid`'s CPU time.
pub fn cpu_time(pid: u32) -> Result<CpuTime, String> {
    let stat = read(&format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses; the fields after it never do.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat: no ')' in {stat:?}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15 (proc(5)).
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {n}"))
    };
    let ticks = field(14)? + field(15)?;
    let sched_ns = fs::read_dir(format!("/proc/{pid}/task"))
        .ok()
        .and_then(|dir| {
            let mut total = 0u64;
            for task in dir.flatten() {
                let text = fs::read_to_string(task.path().join("schedstat")).ok()?;
                total += text.split_whitespace().next()?.parse::<u64>().ok()?;
            }
            Some(total)
        });
    Ok(CpuTime { ticks, sched_ns })
}

/// `VmRSS` and `VmHWM` of `pid`, in kB.
pub fn memory_kb(pid: u32) -> Result<(u64, u64), String> {
    let status = read(&format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/status: no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Processors, CPU model, kernel release and load average, one line.
pub fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown kernel".into());
    let load = fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("nproc {nproc}, {model}, Linux {kernel}, load average {load}")
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}
