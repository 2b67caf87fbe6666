//! The real binary as users run it: discovery reacting to the file system, the loop's
//! cadence with a hung plugin, and real signals.
//!
//! The tests in this file measure reaction times, so they take turns (one lock) instead of
//! competing for the two cores with each other.

mod util;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use util::plugin_server::{Behaviour, PluginServer};
use util::probe_process::{ProbeProcess, plugin_status};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"Plugins":[{{"id":"{id}","label":"{id}","interfaces":["reporter"],"api_version":"1"}}]}}"#
    )
    .into_bytes()
}

fn good(path: &Path, id: &str) -> PluginServer {
    PluginServer::start(
        path,
        Behaviour::Respond {
            status: 200,
            body: body(id),
        },
    )
}

fn probe(root: &Path, extra: &[&str]) -> ProbeProcess {
    let root = root.to_str().expect("utf-8 path");
    let mut args = vec![
        "--publish-stdout",
        "--no-host",
        "--plugins-root",
        root,
        "--hostname",
        "testhost",
    ];
    args.extend_from_slice(extra);
    ProbeProcess::start(&args)
}

const BOUND: Duration = Duration::from_secs(10);

#[test]
fn new_socket_is_polled_within_100ms_through_inotify() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    // Spy ticks and rescans an hour apart: only inotify can explain a prompt poll.
    let p = probe(
        root.path(),
        &[
            "--spy-interval",
            "1h",
            "--rescan-interval",
            "1h",
            "--publish-interval",
            "50ms",
        ],
    );
    p.wait_report(BOUND, |_| true).expect("probe publishes");
    let created = Instant::now();
    let plugin = good(&root.path().join("sub/late.sock"), "late");
    assert!(plugin.wait_for_requests(1, BOUND), "never polled");
    let latency = plugin.requests()[0].received_at.duration_since(created);
    assert!(
        latency < Duration::from_millis(100),
        "first poll after {latency:?}"
    );
    let (_, report) = p
        .wait_report(BOUND, |r| plugin_status(r, "late") == Some("ok"))
        .expect("its report is published");
    assert_eq!(report["Plugins"].as_array().map(Vec::len), Some(1));
}

#[test]
fn removed_socket_leaves_the_report_within_100ms() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let plugin = good(&root.path().join("gone.sock"), "gone");
    let p = probe(
        root.path(),
        &[
            "--spy-interval",
            "20ms",
            "--publish-interval",
            "20ms",
            "--rescan-interval",
            "1h",
        ],
    );
    p.wait_report(BOUND, |r| plugin_status(r, "gone") == Some("ok"))
        .expect("plugin reported");
    let removed = Instant::now();
    drop(plugin); // closes the listener and unlinks the socket
    let (at, _) = p
        .wait_report(BOUND, |r| plugin_status(r, "gone").is_none())
        .expect("plugin leaves the report");
    let latency = at.duration_since(removed);
    assert!(
        latency < Duration::from_millis(100),
        "left after {latency:?}"
    );
}

#[test]
fn root_that_appears_later_and_is_recreated_is_picked_up() {
    let _serial = serial();
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("run/scope/plugins");
    let p = probe(
        &root,
        &["--spy-interval", "50ms", "--publish-interval", "50ms"],
    );
    p.wait_report(BOUND, |_| true)
        .expect("probe runs without its root");

    let first = good(&root.join("first.sock"), "first");
    p.wait_report(BOUND, |r| plugin_status(r, "first") == Some("ok"))
        .expect("root picked up when it appears");

    drop(first);
    std::fs::remove_dir_all(base.path().join("run")).expect("remove root");
    p.wait_report(BOUND, |r| plugin_status(r, "first").is_none())
        .expect("plugin dropped with its root");
    let second = good(&root.join("again/second.sock"), "second");
    p.wait_report(BOUND, |r| plugin_status(r, "second") == Some("ok"))
        .expect("recreated root picked up");
    drop(second);
}

#[test]
fn a_hung_plugin_never_delays_a_good_one() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let hung = PluginServer::start(&root.path().join("hung.sock"), Behaviour::Hang);
    let fine = good(&root.path().join("fine.sock"), "fine");
    let _p = probe(
        root.path(),
        &[
            "--spy-interval",
            "100ms",
            "--publish-interval",
            "100ms",
            "--plugin-timeout",
            "5s",
        ],
    );
    assert!(fine.wait_for_requests(2, BOUND), "good plugin polled");
    let start = fine.request_count();
    let t0 = Instant::now();
    assert!(fine.wait_for_requests(start + 10, BOUND), "cadence kept");
    let elapsed = t0.elapsed();
    // Ten ticks of 100 ms while the hung request stays open the whole time.
    assert!(
        elapsed < Duration::from_millis(2500),
        "ten polls took {elapsed:?}"
    );
    assert_eq!(
        hung.request_count(),
        1,
        "a plugin in flight is not polled twice"
    );
}

#[test]
fn sigterm_and_sigint_end_the_probe_cleanly_within_a_second() {
    let _serial = serial();
    for signal in ["TERM", "INT"] {
        let root = tempfile::tempdir().expect("tempdir");
        let _hung = PluginServer::start(&root.path().join("hung.sock"), Behaviour::Hang);
        let mut p = probe(
            root.path(),
            &["--spy-interval", "50ms", "--publish-interval", "50ms"],
        );
        p.wait_report(BOUND, |_| true).expect("probe runs");
        let sent = Instant::now();
        p.signal(signal);
        let status = p.wait_exit(BOUND).expect("probe exits");
        let took = sent.elapsed();
        assert!(status.success(), "SIG{signal}: {status:?}");
        assert!(
            took < Duration::from_secs(1),
            "SIG{signal}: exit took {took:?}"
        );
    }
}

#[test]
fn sighup_forces_a_rescan_that_inotify_cannot_see() {
    let _serial = serial();
    let base = tempfile::tempdir().expect("tempdir");
    let (a, b) = (base.path().join("a"), base.path().join("b"));
    std::fs::create_dir_all(&a).expect("mkdir a");
    std::fs::create_dir_all(&b).expect("mkdir b");
    let root = base.path().join("root");
    std::os::unix::fs::symlink(&a, &root).expect("symlink root -> a");
    let p = probe(
        &root,
        &[
            "--spy-interval",
            "50ms",
            "--publish-interval",
            "50ms",
            "--rescan-interval",
            "1h",
        ],
    );
    p.wait_report(BOUND, |_| true).expect("probe runs");
    let _plugin = good(&b.join("swapped.sock"), "swapped");
    // Swap the root symlink atomically: no watched directory changes, so no event.
    let tmp = base.path().join("root.new");
    std::os::unix::fs::symlink(&b, &tmp).expect("symlink root.new -> b");
    std::fs::rename(&tmp, &root).expect("swap root");
    p.signal("HUP");
    p.wait_report(BOUND, |r| plugin_status(r, "swapped") == Some("ok"))
        .expect("SIGHUP rescan finds the plugin");
}
