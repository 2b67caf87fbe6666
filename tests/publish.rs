//! Publishing to Scope apps, end to end (spec `app-protocol.md` §1–§3, §6; `cli.md`
//! `--http-listen`): the real binary, real unix-socket plugins and a fake app on loopback TCP.
//!
//! The tests measure cadences, so they take turns (one lock) instead of competing for the
//! cores with each other.

mod util;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use util::fake_app::{Answer, AppRequest, FakeApp, http_get};
use util::plugin_server::{Behaviour, PluginServer};
use util::probe_process::{ProbeProcess, plugin_status, quick_args};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const BOUND: Duration = Duration::from_secs(10);
const PUBLISH: Duration = Duration::from_millis(300);
const VERSION: &str = env!("CARGO_PKG_VERSION");
const HOST_NODE: &str = "testhost;<host>";

fn spec(id: &str) -> String {
    format!(r#"{{"id":"{id}","label":"{id}","interfaces":["reporter"],"api_version":"1"}}"#)
}

/// A plugin report with a node in the Host, Process, Container, ContainerImage and Pod
/// topologies; its metric on the probe's own Host node must land on that node.
fn rich_body(id: &str) -> Vec<u8> {
    format!(
        r#"{{
  "Host": {{"nodes": {{"{HOST_NODE}": {{"metrics": {{"plug_temp": {{
      "samples": [{{"date": "2026-01-01T00:00:00Z", "value": 42}}], "min": 0, "max": 100}}}}}}}}}},
  "Process": {{"nodes": {{"testhost;42": {{"latest": {{"pid": {{"timestamp": "2026-01-01T00:00:00Z", "value": "42"}}}}}}}}}},
  "Container": {{"nodes": {{"c1;<container>": {{}}}}}},
  "ContainerImage": {{"nodes": {{"img1;<container_image>": {{}}}}}},
  "Pod": {{"nodes": {{"pod1;<pod>": {{}}}}}},
  "Plugins": [{}]
}}"#,
        spec(id)
    )
    .into_bytes()
}

fn plugin(root: &Path, id: &str, body: Vec<u8>) -> PluginServer {
    PluginServer::start(
        &root.join(format!("{id}.sock")),
        Behaviour::Respond { status: 200, body },
    )
}

fn probe(root: &Path, extra: &[&str], targets: &[String]) -> ProbeProcess {
    ProbeProcess::start(&quick_args(root, extra, targets))
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn node<'r>(report: &'r Value, topology: &str, id: &str) -> &'r Value {
    let node = &report[topology]["nodes"][id];
    assert!(node.is_object(), "no {topology} node {id:?}");
    node
}

fn latest<'r>(node: &'r Value, key: &str) -> &'r str {
    node["latest"][key]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no latest {key:?} in {node}"))
}

/// Gaps between consecutive arrivals.
fn gaps(reports: &[AppRequest]) -> Vec<Duration> {
    reports
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

/// Asserts `n` consecutive reports came on the 300 ms cadence: every gap within
/// [150 ms, 600 ms] and the whole span within 15 % of `n - 1` intervals.
fn assert_cadence(reports: &[AppRequest]) {
    let gaps = gaps(reports);
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(150) && *gap <= Duration::from_millis(600),
            "gaps {gaps:?}"
        );
    }
    let span: Duration = gaps.iter().sum();
    let expected = PUBLISH * gaps.len() as u32;
    assert!(
        span >= expected.mul_f64(0.85) && span <= expected.mul_f64(1.15),
        "{} reports in {span:?}, expected about {expected:?}",
        reports.len()
    );
}

/// Runs the probe with and without `--token` and checks every header of `GET /api` and
/// `POST /api/report` (AP §2, §3), the gzip JSON body and its `Window`.
#[test]
fn discovery_and_report_requests_carry_scope_headers_and_a_gzip_json_report() {
    let _serial = serial();
    for token in [Some("secret"), None] {
        let root = tempfile::tempdir().expect("tempdir");
        let plug = plugin(root.path(), "plug", rich_body("plug"));
        let app = FakeApp::start("app1");
        let targets = [app.target()];
        let extra: Vec<&str> = match token {
            Some(t) => vec!["--token", t],
            None => vec![],
        };
        let _p = probe(root.path(), &extra, &targets);
        assert!(app.wait_reports(6, BOUND), "reports arrive");
        let requests = app.requests();

        let discovery = &requests[0];
        assert_eq!(
            (discovery.method.as_str(), discovery.target.as_str()),
            ("GET", "/api")
        );
        let probe_id = discovery
            .header("X-Scope-Probe-ID")
            .expect("X-Scope-Probe-ID")
            .to_owned();
        assert!(
            !probe_id.is_empty()
                && probe_id.len() <= 16
                && probe_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "probe id {probe_id:?}: lower-case hex, at most 16 digits"
        );
        let authorization = format!("Scope-Probe token={}", token.unwrap_or(""));
        let user_agent = format!("Scope_Probe/{VERSION}");
        let common = [
            ("User-Agent", user_agent.as_str()),
            ("Authorization", authorization.as_str()),
            ("X-Scope-Probe-ID", probe_id.as_str()),
            ("X-Scope-Probe-Version", VERSION),
        ];
        for (name, value) in common {
            assert_eq!(discovery.header(name), Some(value), "GET /api {name}");
        }
        assert_eq!(discovery.header("Host"), Some(app.target().as_str()));
        assert_eq!(
            discovery.header("Connection"),
            Some("close"),
            "one request per connection"
        );

        // AP §4: the control websocket's upgrade carries the same identity.
        let upgrade = requests
            .iter()
            .find(|r| r.target == "/api/control/ws")
            .expect("an upgrade request");
        assert_eq!(upgrade.method, "GET");
        for (name, value) in common {
            assert_eq!(upgrade.header(name), Some(value), "upgrade {name}");
        }
        assert_eq!(upgrade.header("Upgrade"), Some("websocket"));
        assert_eq!(upgrade.header("Connection"), Some("Upgrade"));
        assert_eq!(upgrade.header("Sec-WebSocket-Version"), Some("13"));
        let key = upgrade.header("Sec-WebSocket-Key").expect("a key");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64 key");
        assert_eq!(raw.len(), 16, "RFC 6455 §4.1: 16 random bytes");
        assert!(
            upgrade.at > discovery.at,
            "after the first successful GET /api"
        );

        let reports: Vec<&AppRequest> = requests.iter().filter(|r| r.is_report()).collect();
        for report in &reports {
            for (name, value) in common {
                assert_eq!(report.header(name), Some(value), "POST /api/report {name}");
            }
            assert_eq!(report.header("Content-Type"), Some("application/json"));
            assert_eq!(report.header("Connection"), Some("close"));
            assert_eq!(report.header("Content-Encoding"), Some("gzip"));
            assert_eq!(
                report.header("Content-Length"),
                Some(report.body.len().to_string().as_str())
            );
            assert_eq!(&report.body[..2], &[0x1f, 0x8b], "gzip magic");
            let json = report.json();
            assert_eq!(json["Shortcut"], false);
            assert_eq!(plugin_status(json, "plug"), Some("ok"));
            assert_eq!(
                latest(node(json, "Host", HOST_NODE), "control_probe_id"),
                probe_id
            );
            node(json, "Process", "testhost;42");
        }
        // The probe ID is the one the plugins see (AP §5, RF §7.3).
        assert!(plug.wait_for_requests(1, BOUND));
        assert_eq!(
            plug.requests()[0].target,
            format!("/report?api_version=1&probe_id={probe_id}")
        );
        // AP §3: Window is the time since the previous publish, in nanoseconds. The first
        // counts from the start; the others follow the 300 ms interval.
        let windows: Vec<i64> = reports[1..]
            .iter()
            .map(|r| r.json()["Window"].as_i64().expect("Window is an integer"))
            .collect();
        for w in &windows {
            assert!(
                (200_000_000..=600_000_000).contains(w),
                "windows {windows:?}"
            );
        }
        let mean = windows.iter().sum::<i64>() / windows.len() as i64;
        assert!(
            (270_000_000..=360_000_000).contains(&mean),
            "windows {windows:?}"
        );
        let ids: std::collections::HashSet<&str> = reports
            .iter()
            .map(|r| r.json()["ID"].as_str().expect("ID"))
            .collect();
        assert_eq!(ids.len(), reports.len(), "every report has its own ID");
    }
}

#[test]
fn reports_arrive_every_publish_interval() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    let targets = [app.target()];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(12, BOUND), "twelve reports");
    // The first report may come early or late relative to the websocket and discovery.
    assert_cadence(&app.reports()[1..12]);
}

/// A live app keeps its cadence next to a dead one (AP §1: publishing to one app never
/// delays another).
fn live_app_unaffected_by(dead_target: String) {
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("live");
    let targets = [dead_target, app.target()];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(12, BOUND), "the live app gets reports");
    let reports = app.reports();
    assert_cadence(&reports[1..12]);
    assert!(
        reports[0].at.duration_since(app.requests()[0].at) < Duration::from_millis(600),
        "the first report came within two intervals of discovery"
    );
}

#[test]
fn a_refusing_app_never_delays_a_live_one() {
    let _serial = serial();
    live_app_unaffected_by(format!("127.0.0.1:{}", free_port()));
}

#[test]
fn an_app_that_never_answers_never_delays_a_live_one() {
    let _serial = serial();
    let hung = FakeApp::start("hung");
    hung.answer_all(Answer::Hang);
    live_app_unaffected_by(hung.target());
    // It was asked once and is still waited on: not hammered.
    let asked = hung.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].target, "/api");
}

/// The probe with its stderr (logs) captured line by line.
struct LoggedProbe {
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl LoggedProbe {
    fn start(args: &[&str]) -> LoggedProbe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scope-probe"))
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn scope-probe");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                sink.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                sink.1.notify_all();
            }
        });
        LoggedProbe { child, lines }
    }

    /// The first log line containing `text`, waiting up to `timeout`.
    fn wait_log(&self, text: &str, timeout: Duration) -> Option<String> {
        self.wait_log_line(timeout, |l| l.contains(text))
    }

    /// The first log line satisfying `pred`, waiting up to `timeout`.
    fn wait_log_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, cv) = &*self.lines;
        let mut guard = lines.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(line) = guard.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = cv
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for LoggedProbe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// AP §1: an app that goes away is retried with backoff; it goes through `GET /api` again
/// and then gets reports (and a new control websocket) as before.
#[test]
fn an_app_that_goes_down_and_comes_back_gets_reports_again() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    let targets = [app.target()];
    let mut p = LoggedProbe::start(&quick_args(root.path(), &[], &targets));
    assert!(app.wait_reports(2, BOUND), "reports arrive");
    assert!(app.wait_ws(0, BOUND).is_some(), "control websocket open");

    app.go_down();
    let down_at = Instant::now();
    // The next publish (or, if one was in flight, the rediscovery after it) is refused.
    let failed = format!("publish: {}: ", app.target());
    p.wait_log_line(BOUND, |l| l.contains(&failed) && l.contains("refused"))
        .expect("the refused request is logged");
    p.wait_log("control websocket: closed by the app", BOUND)
        .expect("the websocket drop is logged");
    let before = app.requests().len();
    app.come_up();
    let up_at = Instant::now();

    assert!(
        app.wait_requests(BOUND, |r| r.len() > before
            && r[before..].iter().any(|r| r.is_report())),
        "reports resume"
    );
    let after = app.requests()[before..].to_vec();
    assert_eq!(
        (after[0].method.as_str(), after[0].target.as_str()),
        ("GET", "/api"),
        "rediscovered first: {after:?}"
    );
    let resumed = after.iter().find(|r| r.is_report()).expect("a report");
    // One failure so far: the address retries `GET /api` 1 s after it, and the report follows
    // within a publish interval.
    assert!(
        resumed.at.duration_since(up_at) < Duration::from_millis(1500),
        "resumed {:?} after coming up",
        resumed.at.duration_since(up_at)
    );
    assert!(
        after[0].at.duration_since(down_at) >= Duration::from_millis(900),
        "no request before the first backoff ended"
    );
    assert!(app.wait_ws(1, BOUND).is_some(), "a new control websocket");
    assert!(
        app.wait_reports(app.report_count() + 3, BOUND),
        "cadence goes on"
    );
    assert!(p.is_running());
}

/// AP §1: several addresses of one app get one report per publish. `localhost` resolves only
/// to 127.0.0.1 here, so the two addresses are given as two targets.
#[test]
fn two_addresses_of_one_app_get_one_publish_per_tick() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let ips = [
        "127.0.0.1".parse().expect("ip"),
        "127.0.0.2".parse().expect("ip"),
    ];
    let app = FakeApp::start_on("one-app", &ips);
    let targets = [
        format!("127.0.0.1:{}", app.port()),
        format!("127.0.0.2:{}", app.port()),
    ];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(10, BOUND), "reports arrive");
    let requests = app.requests();
    let mut discovered: Vec<String> = requests
        .iter()
        .filter(|r| r.target == "/api")
        .map(|r| r.local.ip().to_string())
        .collect();
    discovered.sort();
    assert_eq!(
        discovered,
        ["127.0.0.1", "127.0.0.2"],
        "each address discovered once"
    );
    let reports = app.reports();
    assert_cadence(&reports[1..10]);
    assert_eq!(app.ws_count(), 1, "one control websocket for one app");
}

/// AP §3: a `400` with a text body is logged and is not fatal; publishing goes on.
#[test]
fn a_400_answer_is_logged_and_publishing_goes_on() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    app.answer_reports(Answer::Status(
        400,
        "Unsupported Content-Type: text/plain\n".into(),
    ));
    let targets = [app.target()];
    let mut p = LoggedProbe::start(&quick_args(root.path(), &[], &targets));
    assert!(app.wait_reports(1, BOUND), "a report arrives");
    let refused = app.reports()[0].clone();
    app.answer_reports(Answer::Normal);
    let line = p
        .wait_log(
            &format!(
                "publish: {}: POST /api/report: status 400: Unsupported Content-Type: text/plain",
                app.target()
            ),
            BOUND,
        )
        .expect("the 400 and its text are logged");
    assert!(line.contains("WARN"), "{line}");
    // The address backs off 1 s (as Scope's does), then publishes a fresh report.
    let next = app
        .wait_report_after(1, Duration::from_secs(3), |_| true)
        .expect("publishing goes on");
    assert_ne!(
        next.json()["ID"],
        refused.json()["ID"],
        "not the same report again"
    );
    assert!(next.at.duration_since(refused.at) < Duration::from_millis(2000));
    assert!(p.is_running());
}

/// AP §3, §6, RF §8: what the published report holds besides the plugins' data.
#[test]
fn the_host_node_and_the_taggers() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    let targets = [app.target()];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(3, BOUND), "reports arrive");
    let request = app.reports()[2].clone();
    let report = request.json();
    let host = node(report, "Host", HOST_NODE);

    assert_eq!(latest(host, "host_name"), "testhost");
    assert_eq!(latest(host, "os"), "linux");
    assert!(!latest(host, "kernel_version").is_empty());
    assert!(
        latest(host, "uptime").parse::<u64>().is_ok(),
        "uptime in seconds"
    );
    assert!(!latest(host, "host_scope_version").is_empty());
    assert_eq!(
        latest(host, "control_probe_id"),
        request.header("X-Scope-Probe-ID").expect("probe id")
    );
    assert!(latest(host, "ts").starts_with("20"), "ts is a time");
    let networks = host["sets"]["local_networks"]
        .as_array()
        .expect("local_networks");
    assert!(
        networks
            .iter()
            .all(|n| n.as_str().is_some_and(|n| n.contains('/'))),
        "CIDRs: {networks:?}"
    );

    let metric = |name: &str| {
        let m = &host["metrics"][name];
        assert!(
            m["samples"].as_array().is_some_and(|s| !s.is_empty()),
            "metric {name}: {m}"
        );
        m.clone()
    };
    let cpu = metric("host_cpu_usage_percent");
    assert_eq!(cpu["max"], 100.0);
    for s in cpu["samples"].as_array().expect("samples") {
        let v = s["value"].as_f64().expect("value");
        assert!((0.0..=100.0).contains(&v), "cpu {v}");
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let total_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    assert_eq!(
        metric("host_mem_usage_bytes")["max"].as_f64(),
        Some(total_kib * 1024.0)
    );
    metric("load1");
    // The plugin's metric on `testhost;<host>` lands on the probe's own Host node.
    assert_eq!(metric("plug_temp")["samples"][0]["value"], 42.0);

    let topology = &report["Host"];
    for key in [
        "host_name",
        "os",
        "local_networks",
        "host_scope_version",
        "kernel_version",
        "uptime",
    ] {
        assert_eq!(
            topology["metadata_templates"][key]["id"], key,
            "metadata template {key}"
        );
    }
    for key in ["host_cpu_usage_percent", "host_mem_usage_bytes", "load1"] {
        assert_eq!(
            topology["metric_templates"][key]["id"], key,
            "metric template {key}"
        );
    }

    // Every node carries its topology's internal name; the host tagger's four topologies
    // get host_node_id and parents.host, others do not.
    let internal = [
        ("Host", HOST_NODE, "host", true),
        ("Process", "testhost;42", "process", true),
        ("Container", "c1;<container>", "container", true),
        (
            "ContainerImage",
            "img1;<container_image>",
            "container_image",
            true,
        ),
        ("Pod", "pod1;<pod>", "pod", false),
    ];
    for (key, id, name, tagged) in internal {
        let n = node(report, key, id);
        assert_eq!(n["topology"], name, "{key} node topology");
        if tagged {
            assert_eq!(latest(n, "host_node_id"), HOST_NODE, "{key} host_node_id");
            assert_eq!(
                n["parents"]["host"],
                serde_json::json!([HOST_NODE]),
                "{key} parents"
            );
        } else {
            assert!(
                n["latest"]["host_node_id"].is_null(),
                "{key} is not host-tagged"
            );
        }
    }
    let mut nodes = 0;
    for (key, topology) in report.as_object().expect("object") {
        let Some(map) = topology.get("nodes").and_then(Value::as_object) else {
            continue;
        };
        for (id, n) in map {
            nodes += 1;
            assert!(
                n["topology"].as_str().is_some_and(|t| !t.is_empty()),
                "{key} node {id} has no topology"
            );
        }
    }
    assert_eq!(nodes, 5);
}

/// `--http-listen`: the last published report, the plugins' states and metrics.
#[test]
fn local_endpoints_show_the_last_report_plugins_and_metrics() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let good = plugin(root.path(), "good", rich_body("good"));
    let bad = PluginServer::start(
        &root.path().join("bad.sock"),
        Behaviour::Respond {
            status: 500,
            body: b"oops".to_vec(),
        },
    );
    let app = FakeApp::start("app1");
    let listen = format!("127.0.0.1:{}", free_port());
    let targets = [app.target()];
    let _p = probe(root.path(), &["--http-listen", &listen], &targets);
    assert!(app.wait_reports(2, BOUND), "reports arrive");
    assert!(bad.wait_for_requests(3, BOUND));

    let (status, headers, body) = http_get(&listen, "/api/report");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "application/json")
    );
    let served: Value = serde_json::from_slice(&body).expect("JSON report");
    let id = served["ID"].clone();
    let published = app
        .wait_report_after(0, BOUND, |r| r.json()["ID"] == id)
        .expect("the served report is one the app got");
    assert_eq!(
        &served,
        published.json(),
        "/api/report is the published report"
    );
    let (status, _, body) = http_get(&listen, "/api/plugins");
    assert_eq!(status, 200);
    let plugins: Value = serde_json::from_slice(&body).expect("JSON");
    let entry = |id: &str| {
        plugins
            .as_array()
            .expect("array")
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed in {plugins}"))
            .clone()
    };
    let g = entry("good");
    assert_eq!(g["status"], "ok");
    assert_eq!(g["socket"], good.path().to_str().expect("utf-8"));
    assert!(
        g["last_poll_latency_ms"]
            .as_f64()
            .is_some_and(|ms| (0.0..500.0).contains(&ms))
    );
    assert_eq!(g["consecutive_failures"], 0);
    assert_eq!(g["interfaces"], serde_json::json!(["reporter"]));
    let b = entry("bad");
    assert_eq!(
        b["status"],
        "error: plugin returned non-200 status code: 500 Internal Server Error"
    );
    assert_eq!(b["socket"], bad.path().to_str().expect("utf-8"));
    assert!(b["consecutive_failures"].as_u64().is_some_and(|n| n >= 3));

    let (status, headers, body) = http_get(&listen, "/metrics");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("text/plain"))
    );
    let metrics = String::from_utf8(body).expect("utf-8");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
            .parse()
            .expect("number")
    };
    let labels =
        |id: &str, path: &Path| format!("{{plugin=\"{id}\",socket=\"{}\"}}", path.display());
    let (gl, bl) = (labels("good", good.path()), labels("bad", bad.path()));
    assert!(value(&format!("scope_probe_plugin_polls_total{gl}")) >= 2.0);
    assert_eq!(value(&format!("scope_probe_plugin_errors_total{gl}")), 0.0);
    assert_eq!(value(&format!("scope_probe_plugin_up{gl}")), 1.0);
    assert!(value(&format!("scope_probe_plugin_errors_total{bl}")) >= 3.0);
    assert_eq!(value(&format!("scope_probe_plugin_up{bl}")), 0.0);
    let app_label = format!("{{app=\"{}\"}}", app.id());
    assert!(value(&format!("scope_probe_app_publishes_total{app_label}")) >= 2.0);
    assert_eq!(
        value(&format!("scope_probe_app_failures_total{app_label}")),
        0.0
    );
    assert!(
        value(&format!(
            "scope_probe_app_last_success_timestamp_seconds{app_label}"
        )) > 1.7e9
    );
}

/// AP §1: a name is resolved (by the resolver thread) and its address published to.
#[test]
fn a_named_target_is_resolved_and_published_to() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    let targets = [format!("localhost:{}", app.port())];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(5, BOUND), "reports arrive");
    assert_cadence(&app.reports()[1..5]);
    assert_eq!(app.ws_count(), 1);
}

/// AP §2: a Scope app's `/api` answer carries `plugins` and `capabilities`, and Go's server
/// sends a body that outgrows its buffer chunked.
#[test]
fn a_chunked_discovery_answer_with_every_field_is_understood() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    app.chunked_discovery();
    let targets = [app.target()];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(3, BOUND), "reports arrive");
    assert!(
        app.wait_ws(0, BOUND).is_some(),
        "the control websocket opens"
    );
    let discoveries = app.requests().iter().filter(|r| r.target == "/api").count();
    assert_eq!(discoveries, 1);
}

/// AP §1: `[v6]:port` targets.
#[test]
fn an_ipv6_target_is_published_to() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start_on("app6", &["::1".parse().expect("ip")]);
    let target = format!("[::1]:{}", app.port());
    assert_eq!(app.target(), target);
    let targets = [target.clone()];
    let _p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(3, BOUND), "reports arrive");
    let report = &app.reports()[2];
    assert_eq!(report.header("Host"), Some(target.as_str()));
    assert!(
        app.wait_ws(0, BOUND).is_some(),
        "the control websocket opens"
    );
}

/// A report far larger than a socket buffer goes out whole (partial writes resumed).
#[test]
fn a_large_report_is_published_whole() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let nodes: Vec<String> = (0..20_000)
        .map(|i| {
            format!(
                r#""testhost;{i}":{{"latest":{{"cmdline":{{"timestamp":"2026-01-01T00:00:00Z","value":"/usr/bin/worker --id {i} {}"}}}}}}"#,
                // Random-looking text so that gzip cannot shrink it below a socket buffer.
                (0..8).map(|k| format!("{:x}", (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15u64.rotate_left(k)))).collect::<String>()
            )
        })
        .collect();
    let body = format!(
        r#"{{"Process":{{"nodes":{{{}}}}},"Plugins":[{}]}}"#,
        nodes.join(","),
        spec("big")
    );
    let _big = plugin(root.path(), "big", body.into_bytes());
    let app = FakeApp::start("app1");
    let targets = [app.target()];
    let _p = probe(
        root.path(),
        &["--publish-interval", "2s", "--spy-interval", "1s"],
        &targets,
    );
    let report = app
        .wait_report_after(0, Duration::from_secs(20), |r| {
            plugin_status(r.json(), "big") == Some("ok")
        })
        .expect("the big report arrives");
    assert!(
        report.body.len() > 1 << 20,
        "{} bytes of gzip",
        report.body.len()
    );
    let processes = report.json()["Process"]["nodes"]
        .as_object()
        .expect("nodes");
    assert_eq!(processes.len(), 20_000);
    assert!(
        processes["testhost;19999"]["latest"]["cmdline"]["value"]
            .as_str()
            .is_some_and(|c| c.starts_with("/usr/bin/worker --id 19999 "))
    );
}

/// SIGTERM ends the probe at once, whatever it has open: a websocket, a request an app never
/// answers, the resolver thread.
#[test]
fn sigterm_ends_the_probe_quickly_with_apps_connected() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("app1");
    let hung = FakeApp::start("hung");
    hung.answer_all(Answer::Hang);
    let targets = [format!("localhost:{}", app.port()), hung.target()];
    let mut p = probe(root.path(), &[], &targets);
    assert!(app.wait_reports(2, BOUND), "reports arrive");
    assert!(app.wait_ws(0, BOUND).is_some(), "control websocket open");
    assert!(
        hung.wait_requests(BOUND, |r| !r.is_empty()),
        "the hung app is asked"
    );
    let sent = Instant::now();
    p.signal("TERM");
    let status = p.wait_exit(BOUND).expect("the probe exits");
    assert!(status.success(), "{status:?}");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    assert!(
        app.ws_count() == 1
            && app
                .wait_ws(0, BOUND)
                .is_some_and(|ws| ws.wait_closed(BOUND))
    );
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time as Scope writes it
/// (`2026-01-02T03:04:05.123456789Z`).
fn unix_seconds(text: &str) -> f64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').expect("a time");
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().expect("date"));
    let (y, m, d) = (
        ymd.next().expect("y"),
        ymd.next().expect("m"),
        ymd.next().expect("d"),
    );
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let mut hms = time.split(':');
    let (h, min) = (
        hms.next().expect("h").parse::<f64>().expect("h"),
        hms.next().expect("min").parse::<f64>().expect("min"),
    );
    let s: f64 = hms.next().expect("s").parse().expect("s");
    days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s
}

/// AP §3: an app slower than the publish interval gets the newest report each time it is
/// free, never a backlog of old ones.
#[test]
fn a_slow_app_gets_the_newest_report_never_a_backlog() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let _plug = plugin(root.path(), "plug", rich_body("plug"));
    let app = FakeApp::start("slow");
    app.answer_reports(Answer::Delay(Duration::from_secs(1)));
    let targets = [app.target()];
    let _p = probe(root.path(), &[], &targets);
    assert!(
        app.wait_reports(5, Duration::from_secs(15)),
        "reports arrive"
    );
    let reports = app.reports();
    for gap in gaps(&reports) {
        assert!(
            gap >= Duration::from_millis(950),
            "one report at a time: {gap:?}"
        );
    }
    for report in &reports[1..] {
        let ts = unix_seconds(report.json()["TS"].as_str().expect("TS"));
        let sent = report
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        // The newest report is at most one publish interval old, and its TS is the first
        // spy tick of its interval: another interval before that.
        assert!(sent - ts < 0.8, "a report {:.3}s old", sent - ts);
    }
}

#[test]
fn unix_seconds_reads_scope_times() {
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0.0);
    assert_eq!(unix_seconds("2000-03-01T00:00:01.5Z"), 951_868_801.5);
    assert_eq!(unix_seconds("2026-01-01T00:00:00Z"), 1_767_225_600.0);
}
