//! The real `scope-probe` binary as a child process: its stdout lines (published reports with
//! `--publish-stdout`) arrive on a channel, and it receives real signals.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// Arguments for a probe that tests can watch closely: plugins under `root`, host `testhost`,
/// a spy tick every 100 ms (unless `extra` sets `--spy-interval`) and a publish every 300 ms,
/// then `extra`, then the app targets.
pub fn quick_args<'a>(root: &'a Path, extra: &[&'a str], targets: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "--plugins-root",
        root.to_str().expect("utf-8 path"),
        "--hostname",
        "testhost",
        "--publish-interval",
        "300ms",
    ];
    if !extra.contains(&"--spy-interval") {
        args.extend_from_slice(&["--spy-interval", "100ms"]);
    }
    args.extend_from_slice(extra);
    args.extend(targets.iter().map(String::as_str));
    args
}

/// A running probe. Dropping it kills the process.
pub struct ProbeProcess {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl ProbeProcess {
    /// Starts the binary with `args`; stderr (logs) goes to the test's stderr.
    pub fn start(args: &[&str]) -> ProbeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scope-probe"))
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn scope-probe");
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        ProbeProcess { child, lines }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line within `timeout`, with the instant it was read.
    pub fn next_line(&self, timeout: Duration) -> Option<(Instant, String)> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Reads published reports until one satisfies `pred`, within `timeout`. Returns the
    /// instant it was read and the report.
    pub fn wait_report(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> Option<(Instant, serde_json::Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (at, line) = self.next_line(left)?;
            let report: serde_json::Value =
                serde_json::from_str(&line).expect("each stdout line is one JSON report");
            if pred(&report) {
                return Some((at, report));
            }
        }
    }

    /// Sends a real signal (`TERM`, `INT`, `HUP`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ProbeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of plugin `id` in a report's `Plugins`, if it is listed.
pub fn plugin_status<'r>(report: &'r serde_json::Value, id: &str) -> Option<&'r str> {
    report["Plugins"]
        .as_array()?
        .iter()
        .find(|spec| spec["id"] == id)?
        .get("status")?
        .as_str()
}
