//! The plugin host against real unix-socket plugins: transport edge cases through one
//! `Probe::once` cycle each, and scale (many plugins, many hung).

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use scope_probe::probe::{Config, OnceOutcome, Probe};
use util::plugin_server::{Behaviour, PluginServer};

/// A valid reporter plugin report for `id`, with one Host node of its own.
fn report_body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"Host":{{"nodes":{{"{id};<host>":{{"latest":{{"seen_by":{{"timestamp":"2023-06-01T12:00:00Z","value":"{id}"}}}}}}}}}},"Plugins":[{{"id":"{id}","label":"{id} label","interfaces":["reporter"],"api_version":"1"}}]}}"#
    )
    .into_bytes()
}

fn once_with(root: &Path, tweak: impl FnOnce(&mut Config)) -> (OnceOutcome, Duration) {
    let mut config = Config::new(
        Some(root.to_path_buf()),
        "0123456789abcdef".into(),
        "testhost".into(),
    );
    config.options.no_host = true;
    tweak(&mut config);
    let started = Instant::now();
    let mut probe = Probe::new(config).expect("probe starts");
    let outcome = probe.once().expect("once");
    (outcome, started.elapsed())
}

fn status<'o>(outcome: &'o OnceOutcome, id: &str) -> &'o str {
    outcome
        .statuses
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, s)| s.as_str())
        .unwrap_or_else(|| panic!("no status for {id}: {:?}", outcome.statuses))
}

fn host_nodes(outcome: &OnceOutcome) -> serde_json::Map<String, serde_json::Value> {
    let report: serde_json::Value = serde_json::from_slice(&outcome.report).expect("report JSON");
    report["Host"]["nodes"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn serve(root: &Path, name: &str, behaviour: Behaviour) -> PluginServer {
    PluginServer::start(&root.join(name), behaviour)
}

#[test]
fn socket_in_a_subdirectory_is_polled() {
    let root = tempfile::tempdir().expect("tempdir");
    let _p = serve(
        root.path(),
        "deep/er/nested.sock",
        Behaviour::Respond {
            status: 200,
            body: report_body("nested"),
        },
    );
    let (outcome, _) = once_with(root.path(), |_| {});
    assert_eq!(status(&outcome, "nested"), "ok");
    assert!(host_nodes(&outcome).contains_key("nested;<host>"));
}

#[test]
fn stale_socket_is_reported_at_once_not_after_the_deadline() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists(), "the socket file outlives its listener");
    let (outcome, elapsed) = once_with(root.path(), |c| {
        c.options.plugin_timeout = Duration::from_secs(20)
    });
    assert_eq!(
        status(&outcome, "stale"),
        "error: connect: connection refused"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn plugin_that_never_answers_times_out_at_the_deadline() {
    let root = tempfile::tempdir().expect("tempdir");
    let _p = serve(root.path(), "mute.sock", Behaviour::Hang);
    let (outcome, elapsed) = once_with(root.path(), |c| {
        c.options.plugin_timeout = Duration::from_millis(300)
    });
    assert_eq!(status(&outcome, "mute"), "error: no response within 300ms");
    assert!(elapsed >= Duration::from_millis(300), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn dripping_plugin_is_cut_off_at_the_deadline() {
    let root = tempfile::tempdir().expect("tempdir");
    let _p = serve(
        root.path(),
        "drip.sock",
        Behaviour::Drip {
            body: report_body("drip"),
            every: Duration::from_millis(100),
        },
    );
    let (outcome, elapsed) = once_with(root.path(), |c| {
        c.options.plugin_timeout = Duration::from_millis(500)
    });
    let text = status(&outcome, "drip");
    assert!(
        text.starts_with("error: response not complete within 500ms ("),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn body_over_the_limit_gets_scopes_text() {
    let root = tempfile::tempdir().expect("tempdir");
    let _big = serve(
        root.path(),
        "big.sock",
        Behaviour::Respond {
            status: 200,
            body: report_body("big"),
        },
    );
    let _chunky = serve(
        root.path(),
        "chunky.sock",
        Behaviour::Chunked {
            status: 200,
            body: report_body("chunky"),
            chunk: 16,
        },
    );
    let (outcome, _) = once_with(root.path(), |c| c.options.max_response_bytes = 128);
    for id in ["big", "chunky"] {
        assert_eq!(
            status(&outcome, id),
            "error: response must be shorter than 50MB",
            "{id}"
        );
    }
}

#[test]
fn chunked_http10_and_never_closing_replies_are_read() {
    let root = tempfile::tempdir().expect("tempdir");
    let _a = serve(
        root.path(),
        "chunked.sock",
        Behaviour::Chunked {
            status: 200,
            body: report_body("chunked"),
            chunk: 7,
        },
    );
    let _b = serve(
        root.path(),
        "old.sock",
        Behaviour::Http10 {
            body: report_body("old"),
        },
    );
    let _c = serve(
        root.path(),
        "open.sock",
        Behaviour::NeverClose {
            body: report_body("open"),
        },
    );
    let (outcome, elapsed) = once_with(root.path(), |c| {
        c.options.plugin_timeout = Duration::from_secs(10)
    });
    for id in ["chunked", "old", "open"] {
        assert_eq!(status(&outcome, id), "ok", "{id}");
        assert!(host_nodes(&outcome).contains_key(&format!("{id};<host>")));
    }
    // A server that keeps the connection open must not hold the cycle to the deadline.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn broken_replies_become_clear_statuses_and_spare_the_others() {
    let root = tempfile::tempdir().expect("tempdir");
    let body = report_body("cut");
    let half = body.len() / 2;
    let _cut = serve(
        root.path(),
        "cut.sock",
        Behaviour::CloseMidBody { body, after: half },
    );
    let _junk = serve(
        root.path(),
        "junk.sock",
        Behaviour::Garbage(b"\x00\x01 this is not HTTP at all\r\n\r\n".to_vec()),
    );
    let _good = serve(
        root.path(),
        "good.sock",
        Behaviour::Respond {
            status: 200,
            body: report_body("good"),
        },
    );
    let (outcome, _) = once_with(root.path(), |_| {});
    let cut = status(&outcome, "cut");
    assert!(cut.starts_with("error: connection closed"), "{cut}");
    let junk = status(&outcome, "junk");
    assert!(junk.starts_with("error: invalid response head"), "{junk}");
    assert_eq!(status(&outcome, "good"), "ok");
    assert!(host_nodes(&outcome).contains_key("good;<host>"));
}

#[test]
fn two_hundred_plugins_fifty_hung_cycle_ends_at_the_deadline() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut servers = Vec::new();
    for i in 0..200 {
        let id = format!("p{i:03}");
        let behaviour = if i % 4 == 0 {
            Behaviour::Hang
        } else {
            Behaviour::Respond {
                status: 200,
                body: report_body(&id),
            }
        };
        servers.push(serve(root.path(), &format!("{id}.sock"), behaviour));
    }
    let timeout = Duration::from_millis(500);
    let (outcome, elapsed) = once_with(root.path(), |c| c.options.plugin_timeout = timeout);
    let nodes = host_nodes(&outcome);
    for i in 0..200 {
        let id = format!("p{i:03}");
        if i % 4 == 0 {
            assert_eq!(status(&outcome, &id), "error: no response within 500ms");
        } else {
            assert_eq!(status(&outcome, &id), "ok", "{id}");
            assert!(nodes.contains_key(&format!("{id};<host>")), "{id} merged");
        }
    }
    assert_eq!(nodes.len(), 150);
    // Concurrent polling: the whole cycle is one deadline, not 50 of them.
    assert!(
        elapsed < timeout + Duration::from_millis(1500),
        "took {elapsed:?}"
    );
}
