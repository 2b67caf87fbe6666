//! Controls end to end (spec `app-protocol.md` §4, `report-format.md` §7.5–§7.9): the fake app
//! calls `control.Handle` over the real binary's control websocket, the probe routes it to a
//! real unix-socket controller plugin and answers, and shortcut reports reach the app at once.
//!
//! The tests measure reaction times, so they take turns (one lock).

mod util;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::fake_app::{
    Answer, AppWs, FakeApp, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};
use util::plugin_server::{Behaviour, PluginServer, RecordedRequest};
use util::probe_process::{ProbeProcess, plugin_status, quick_args};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const BOUND: Duration = Duration::from_secs(10);
const HOST_NODE: &str = "testhost;<host>";
const APP_ID: &str = "app1";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A plugin's report: a Host topology with `controls` and the probe's Host node showing the
/// first of them as active.
fn report_body(id: &str, label: &str, interfaces: &str, controls: &[&str]) -> Vec<u8> {
    let defs: Vec<String> = controls
        .iter()
        .enumerate()
        .map(|(i, c)| format!(r#""{c}":{{"id":"{c}","human":"{c}","icon":"fa-play","rank":{i}}}"#))
        .collect();
    format!(
        r#"{{"Host":{{"controls":{{{}}},"nodes":{{"{HOST_NODE}":{{"latest":{{"active_controls":{{"timestamp":"2026-01-01T00:00:00Z","value":"{}"}}}}}}}}}},"Plugins":[{{"id":"{id}","label":"{label}","interfaces":{interfaces},"api_version":"1"}}]}}"#,
        defs.join(","),
        controls.first().copied().unwrap_or("")
    )
    .into_bytes()
}

const CONTROLLER: &str = r#"["reporter","controller"]"#;

/// What the controller plugin answers; tests change it while the probe runs.
struct Controller {
    report: Mutex<Vec<u8>>,
    /// How long `/control` takes, and its body.
    control: Mutex<(Duration, Vec<u8>)>,
    /// When each `/control` answer was about to be written.
    replied: Mutex<Vec<Instant>>,
}

impl Controller {
    fn start(path: &Path) -> (PluginServer, Arc<Controller>) {
        let state = Arc::new(Controller {
            report: Mutex::new(report_body("ctl", "Ctl", CONTROLLER, &["ctrl"])),
            control: Mutex::new((Duration::ZERO, br#"{"value":"done"}"#.to_vec())),
            replied: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let handler = move |req: &RecordedRequest| {
            if req.target.starts_with("/report") {
                return (200, lock(&shared.report).clone());
            }
            // A call may carry its own answer: `reply` after `delay_ms` (for concurrent calls).
            let args: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let args = &args["ControlArgs"];
            let (delay, body) = match args["reply"].as_str() {
                Some(reply) => (
                    Duration::from_millis(
                        args["delay_ms"]
                            .as_str()
                            .map_or(0, |d| d.parse().unwrap_or(0)),
                    ),
                    json!({ "value": reply }).to_string().into_bytes(),
                ),
                None => lock(&shared.control).clone(),
            };
            std::thread::sleep(delay);
            lock(&shared.replied).push(Instant::now());
            (200, body)
        };
        let server = PluginServer::start(path, Behaviour::Dynamic(Arc::new(handler)));
        (server, state)
    }

    fn answer_controls(&self, delay: Duration, body: &str) {
        *lock(&self.control) = (delay, body.as_bytes().to_vec());
    }
}

/// The probe, the controller plugin `ctl` and the app, with the control registered and the
/// websocket open.
struct Setup {
    _root: tempfile::TempDir,
    ctl: PluginServer,
    state: Arc<Controller>,
    app: FakeApp,
    probe: ProbeProcess,
    ws: Arc<AppWs>,
}

fn setup(
    extra: &[&str],
    more_plugins: impl FnOnce(&Path) -> Vec<PluginServer>,
) -> (Setup, Vec<PluginServer>) {
    let root = tempfile::tempdir().expect("tempdir");
    let (ctl, state) = Controller::start(&root.path().join("ctl.sock"));
    let others = more_plugins(root.path());
    let app = FakeApp::start(APP_ID);
    let targets = [app.target()];
    let probe = ProbeProcess::start(&quick_args(root.path(), extra, &targets));
    let no_controls = extra.contains(&"--no-controls");
    app.wait_report_after(0, BOUND, |r| {
        plugin_status(r.json(), "ctl") == Some("ok")
            && (no_controls || r.json()["Host"]["controls"]["ctl~ctrl"].is_object())
    })
    .expect("the controller's report is published");
    let ws = app.wait_ws(0, BOUND).expect("control websocket");
    (
        Setup {
            _root: root,
            ctl,
            state,
            app,
            probe,
            ws,
        },
        others,
    )
}

fn handle(control: &str) -> Value {
    json!({"AppID": "", "Control": control, "ControlArgs": {"k": "v"}, "NodeID": HOST_NODE})
}

/// Calls `control.Handle` and returns the reply's header and body frames, checking the
/// header's shape (AP §4).
fn call(ws: &AppWs, seq: u64, control: &str) -> (Value, Value) {
    let (header, body) = ws
        .call(seq, "control.Handle", &handle(control), BOUND)
        .unwrap_or_else(|| panic!("no reply to call {seq} ({control})"));
    assert_eq!(header["Request"], Value::Null);
    assert_eq!(header["Value"], Value::Null);
    assert_eq!(header["Response"]["Seq"], seq);
    assert_eq!(header["Response"]["ServiceMethod"], "control.Handle");
    assert_eq!(body["Request"], Value::Null);
    assert_eq!(body["Response"], Value::Null);
    (header, body)
}

/// The response value of a call that the RPC layer accepted (empty header `Error`).
fn response(ws: &AppWs, seq: u64, control: &str) -> Value {
    let (header, body) = call(ws, seq, control);
    assert_eq!(header["Response"]["Error"], "", "{header}");
    body["Value"].clone()
}

fn error_text(control: &str) -> Value {
    json!({"error": format!("Control \"{control}\" not recognised")})
}

fn control_requests(plugin: &PluginServer) -> Vec<RecordedRequest> {
    plugin
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/control"))
        .collect()
}

/// Waits until the plugin has received `n` `/control` requests (its `/report` polls, every
/// 100 ms, wake the wait).
fn wait_control_requests(plugin: &PluginServer, n: usize) -> bool {
    let deadline = Instant::now() + BOUND;
    while control_requests(plugin).len() < n {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        plugin.wait_for_requests(plugin.request_count() + 1, left);
    }
    true
}

#[test]
fn a_control_reaches_the_plugin_and_its_shortcut_report_is_published_at_once() {
    let _serial = serial();
    // One poll only: a later poll would register the plugin's normal report's controls again
    // (RF §7.6: the registered set follows the latest report or shortcut report).
    let (s, _) = setup(&["--spy-interval", "1h"], |_| Vec::new());
    let shortcut =
        String::from_utf8(report_body("ctl", "Ctl", CONTROLLER, &["undo", "ctrl"])).expect("utf-8");
    s.state.answer_controls(
        Duration::ZERO,
        &format!(r#"{{"value":{{"done":true}},"shortcutReport":{shortcut}}}"#),
    );
    let reports_before = s.app.report_count();

    let (header, body) = call(&s.ws, 7, "ctl~ctrl");
    assert_eq!(
        header,
        json!({"Request": null, "Response": {"Error": "", "Seq": 7, "ServiceMethod": "control.Handle"}, "Value": null})
    );
    assert_eq!(
        body,
        json!({"Request": null, "Response": null, "Value": {"value": {"done": true}}}),
        "the response without shortcutReport"
    );
    // Frames from the probe are masked single-frame text messages (RFC 6455 §5.3).
    for frame in s.ws.frames() {
        assert!(frame.masked && frame.fin, "{frame:?}");
    }

    // RF §7.7–7.8: the exact POST, with AppID filled in and the plugin's own control id.
    let posts = control_requests(&s.ctl);
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    let probe_id = s.app.requests()[0]
        .header("X-Scope-Probe-ID")
        .expect("probe id")
        .to_owned();
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.target,
        format!("/control?api_version=1&probe_id={probe_id}")
    );
    assert_eq!(post.header("Content-Type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&post.body).expect("JSON body");
    assert_eq!(
        sent,
        json!({"AppID": APP_ID, "Control": "ctrl", "ControlArgs": {"k": "v"}, "NodeID": HOST_NODE})
    );

    // RF §7.9: the shortcut report goes out at once, rewritten and tagged.
    let published = s
        .app
        .wait_report_after(reports_before, BOUND, |r| r.shortcut())
        .expect("the shortcut report is published");
    let replied = lock(&s.state.replied)[0];
    let latency = published.at.duration_since(replied);
    assert!(
        latency < Duration::from_millis(100),
        "shortcut after {latency:?}"
    );
    let report = published.json();
    let controls = report["Host"]["controls"].as_object().expect("controls");
    let mut keys: Vec<&str> = controls.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["ctl~ctrl", "ctl~undo"]);
    assert_eq!(controls["ctl~undo"]["id"], "ctl~undo");
    let host = &report["Host"]["nodes"][HOST_NODE];
    assert_eq!(host["latest"]["active_controls"]["value"], "ctl~undo");
    assert_eq!(host["topology"], "host", "tagged like any published report");
    assert_eq!(report["Plugins"][0]["id"], "ctl");

    // The shortcut's controls are registered: `undo` now routes to the plugin.
    s.state
        .answer_controls(Duration::ZERO, r#"{"value":"undone"}"#);
    assert_eq!(response(&s.ws, 8, "ctl~undo"), json!({"value": "undone"}));
    let sent: Value = serde_json::from_slice(&control_requests(&s.ctl)[1].body).expect("JSON");
    assert_eq!(sent["Control"], "undo");

    // RF §7.8: without arguments, ControlArgs is sent as null.
    let mut no_args = handle("ctl~ctrl");
    no_args["ControlArgs"] = Value::Null;
    let (header, _) =
        s.ws.call(9, "control.Handle", &no_args, BOUND)
            .expect("a reply");
    assert_eq!(header["Response"]["Error"], "");
    let sent: Value = serde_json::from_slice(&control_requests(&s.ctl)[2].body).expect("JSON");
    assert_eq!(
        sent,
        json!({"AppID": APP_ID, "Control": "ctrl", "ControlArgs": null, "NodeID": HOST_NODE})
    );

    // Pings are answered with a masked pong carrying the same payload.
    let seen = s.ws.frames().len();
    assert!(s.ws.send_frame(OP_PING, b"are you there"));
    let pong = s.ws.wait_frame(OP_PONG, seen, BOUND).expect("pong");
    assert_eq!(pong.payload, b"are you there");
    assert!(pong.masked);
}

#[test]
fn every_refused_control_has_its_error_text() {
    let _serial = serial();
    let (s, others) = setup(&[], |root| {
        let plain = report_body("plain", "Plain", r#"["reporter"]"#, &["pctrl"]);
        vec![PluginServer::start(
            &root.join("plain.sock"),
            Behaviour::Respond {
                status: 200,
                body: plain,
            },
        )]
    });
    let plain = &others[0];
    let ws = &s.ws;

    assert_eq!(response(ws, 1, "ctl~nope"), error_text("ctl~nope"));
    assert_eq!(response(ws, 2, "ctrl"), error_text("ctrl"));
    assert_eq!(response(ws, 3, "nobody~ctrl"), error_text("nobody~ctrl"));

    // RF §7.5: a non-controller's controls are published as sent and not registered.
    let report = s.app.reports().last().expect("a report").json().clone();
    assert!(
        report["Host"]["controls"]["pctrl"].is_object(),
        "{}",
        report["Host"]
    );
    assert!(report["Host"]["controls"]["plain~pctrl"].is_null());
    assert_eq!(response(ws, 4, "plain~pctrl"), error_text("plain~pctrl"));
    assert!(control_requests(plain).is_empty());

    // AP §4: an unknown method gets a header error and a null value; the stream stays in step.
    let (header, body) = ws
        .call(5, "control.Nope", &handle("ctl~ctrl"), BOUND)
        .expect("a reply to an unknown method");
    assert_eq!(header["Response"]["Seq"], 5);
    assert_eq!(
        header["Response"]["Error"],
        "rpc: can't find method control.Nope"
    );
    assert_eq!(body["Value"], Value::Null);
    // Go's net/rpc texts for an unknown service and a name without a dot.
    for (seq, method, text) in [
        (50, "nope.Handle", "rpc: can't find service nope.Handle"),
        (
            51,
            "Handle",
            "rpc: service/method request ill-formed: Handle",
        ),
    ] {
        let (header, body) = ws
            .call(seq, method, &handle("ctl~ctrl"), BOUND)
            .expect("a reply to an unknown method");
        assert_eq!(header["Response"]["Seq"], seq);
        assert_eq!(header["Response"]["ServiceMethod"], method);
        assert_eq!(header["Response"]["Error"], text);
        assert_eq!(body["Value"], Value::Null);
    }
    assert_eq!(response(ws, 6, "ctl~ctrl"), json!({"value": "done"}));

    // RF §7.7: a controller that stops being one keeps its handlers, which now refuse.
    *lock(&s.state.report) = report_body("ctl", "Ctl", r#"["reporter"]"#, &["ctrl"]);
    let from = s.app.report_count();
    s.app
        .wait_report_after(from, BOUND, |r| {
            r.json()["Host"]["controls"]["ctrl"].is_object()
        })
        .expect("the plugin's controls are published as sent");
    assert_eq!(
        response(ws, 7, "ctl~ctrl"),
        json!({"error": "the Ctl plugin does not implement the controller interface"})
    );
    assert_eq!(
        control_requests(&s.ctl).len(),
        1,
        "only call 6 reached the plugin"
    );
    assert!(ws.frames().iter().all(|f| f.masked));
}

#[test]
fn no_controls_strips_controls_and_refuses_calls() {
    let _serial = serial();
    let (s, _) = setup(&["--no-controls"], |_| Vec::new());
    assert!(s.app.wait_reports(s.app.report_count() + 2, BOUND));
    for request in s.app.reports() {
        let report = request.json();
        for (key, topology) in report.as_object().expect("object") {
            if let Some(controls) = topology.get("controls") {
                assert!(
                    controls.is_null() || controls.as_object().is_some_and(|c| c.is_empty()),
                    "{key} controls: {controls}"
                );
            }
        }
    }
    let value = response(&s.ws, 1, "ctl~ctrl");
    assert_eq!(
        value,
        json!({"error": "controls are disabled on this probe (--no-controls)"})
    );
    assert!(control_requests(&s.ctl).is_empty());
}

#[test]
fn a_hung_control_times_out_while_another_plugin_keeps_its_cadence() {
    let _serial = serial();
    let (s, others) = setup(&["--plugin-timeout", "300ms"], |root| {
        let steady = report_body("steady", "Steady", r#"["reporter"]"#, &[]);
        vec![PluginServer::start(
            &root.join("steady.sock"),
            Behaviour::Respond {
                status: 200,
                body: steady,
            },
        )]
    });
    let steady = &others[0];
    s.state
        .answer_controls(Duration::from_millis(1500), r#"{"value":"late"}"#);
    let polls_before = steady.request_count();
    let sent = Instant::now();
    let (header, body) = call(&s.ws, 1, "ctl~ctrl");
    let took = sent.elapsed();
    assert_eq!(header["Response"]["Error"], "");
    assert_eq!(body["Value"], json!({"error": "no response within 300ms"}));
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(800),
        "answered after {took:?}"
    );
    // The other plugin was polled every 100 ms meanwhile.
    let polls: Vec<Instant> = steady.requests()[polls_before..]
        .iter()
        .map(|r| r.received_at)
        .filter(|at| *at <= sent + took)
        .collect();
    assert!(
        polls.len() >= 2,
        "{} polls while the control hung",
        polls.len()
    );
    for pair in polls.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap < Duration::from_millis(250), "a poll gap of {gap:?}");
    }
    // And later calls work again.
    s.state
        .answer_controls(Duration::ZERO, r#"{"value":"quick"}"#);
    assert_eq!(response(&s.ws, 2, "ctl~ctrl"), json!({"value": "quick"}));
}

#[test]
fn bad_shortcut_reports_get_an_error_and_the_probe_keeps_running() {
    let _serial = serial();
    let (mut s, _) = setup(&[], |_| Vec::new());
    s.state.answer_controls(
        Duration::ZERO,
        r#"{"value":"x","shortcutReport":{"Host":"not a topology","Plugins":[{"id":"ctl","label":"Ctl"}]}}"#,
    );
    let value = response(&s.ws, 1, "ctl~ctrl");
    let text = value["error"].as_str().expect("an error");
    assert!(
        text.starts_with("shortcut report: decoding error: "),
        "{text}"
    );
    for (seq, shortcut) in [(2, r#"{"Host":{}}"#), (3, r#"{"Host":{},"Plugins":[]}"#)] {
        s.state.answer_controls(
            Duration::ZERO,
            &format!(r#"{{"value":"x","shortcutReport":{shortcut}}}"#),
        );
        assert_eq!(
            response(&s.ws, seq, "ctl~ctrl"),
            json!({"error": "shortcut report must contain a plugin spec in Plugins"}),
            "{shortcut}"
        );
    }
    assert!(
        s.probe.wait_exit(Duration::ZERO).is_none(),
        "the probe runs"
    );
    assert!(
        s.app.reports().iter().all(|r| !r.shortcut()),
        "nothing was published for them"
    );
    assert!(
        s.app.wait_reports(s.app.report_count() + 2, BOUND),
        "publishing goes on"
    );
    s.state
        .answer_controls(Duration::ZERO, r#"{"value":"fine"}"#);
    assert_eq!(response(&s.ws, 4, "ctl~ctrl"), json!({"value": "fine"}));
}

#[test]
fn a_websocket_dropped_mid_call_is_reopened_and_calls_work_again() {
    let _serial = serial();
    let (mut s, _) = setup(&[], |_| Vec::new());
    s.state
        .answer_controls(Duration::from_millis(300), r#"{"value":"slow"}"#);
    s.ws.send_call(1, "control.Handle", &handle("ctl~ctrl"));
    assert!(
        wait_control_requests(&s.ctl, 1),
        "the call reaches the plugin"
    );
    s.ws.drop_connection();
    assert!(s.ws.wait_closed(BOUND));

    let again = s.app.wait_ws(1, BOUND).expect("the probe reconnects");
    assert!(again.opened_at > s.ws.opened_at);
    let keys: Vec<String> = s
        .app
        .requests()
        .iter()
        .filter_map(|r| r.header("Sec-WebSocket-Key").map(str::to_owned))
        .collect();
    assert!(
        keys.len() == 2 && keys[0] != keys[1],
        "a fresh key: {keys:?}"
    );
    s.state
        .answer_controls(Duration::ZERO, r#"{"value":"after"}"#);
    assert_eq!(response(&again, 2, "ctl~ctrl"), json!({"value": "after"}));
    assert!(
        s.probe.wait_exit(Duration::ZERO).is_none(),
        "the probe runs"
    );
    assert!(
        s.app.wait_reports(s.app.report_count() + 2, BOUND),
        "publishing goes on"
    );
    assert_eq!(s.app.ws_count(), 2, "one reconnection");
}

/// Go's websocket writer splits messages larger than its 4 KiB buffer into fragments, and a
/// ping may come between them (RFC 6455 §5.4); the reply to a large value is one frame with a
/// 64-bit length, flushed whole.
#[test]
fn fragmented_calls_and_large_replies() {
    let _serial = serial();
    let (s, _) = setup(&[], |_| Vec::new());
    let big_arg = "a".repeat(10_000);
    let header = json!({"Request": {"Seq": 1, "ServiceMethod": "control.Handle"}, "Response": null, "Value": null});
    let mut args = handle("ctl~ctrl");
    args["ControlArgs"]["big"] = json!(big_arg);
    let body = json!({"Request": null, "Response": null, "Value": args}).to_string();
    let (first, rest) = body.as_bytes().split_at(4096);
    let (second, third) = rest.split_at(4096);
    let big_value = "b".repeat(3 * 1024 * 1024);
    s.state
        .answer_controls(Duration::ZERO, &json!({"value": big_value}).to_string());
    assert!(s.ws.send_frame(OP_TEXT, header.to_string().as_bytes()));
    assert!(s.ws.send_fragment(false, OP_TEXT, first));
    assert!(s.ws.send_frame(OP_PING, b"between"));
    assert!(s.ws.send_fragment(false, OP_CONTINUATION, second));
    assert!(s.ws.send_fragment(true, OP_CONTINUATION, third));

    let (header, body) = s.ws.wait_reply(1, BOUND).expect("a reply");
    assert_eq!(header["Response"]["Error"], "");
    assert_eq!(
        body["Value"]["value"].as_str().map(str::len),
        Some(big_value.len())
    );
    assert!(body["Value"]["value"] == big_value.as_str());
    let sent: Value = serde_json::from_slice(&control_requests(&s.ctl)[0].body).expect("JSON");
    assert_eq!(sent["ControlArgs"]["big"], big_arg.as_str());
    let pong =
        s.ws.wait_frame(OP_PONG, 0, BOUND)
            .expect("the ping is answered");
    assert_eq!(pong.payload, b"between");
}

/// net/rpc lets a client have several calls out at once; each reply's two frames stay
/// together, in whatever order the plugins answer.
#[test]
fn concurrent_calls_are_answered_each_with_its_own_frames() {
    let _serial = serial();
    let (s, _) = setup(&[], |_| Vec::new());
    let with_reply = |reply: &str, delay_ms: &str| {
        let mut args = handle("ctl~ctrl");
        args["ControlArgs"] = json!({"reply": reply, "delay_ms": delay_ms});
        args
    };
    s.ws.send_call(1, "control.Handle", &with_reply("slow", "200"));
    assert!(
        wait_control_requests(&s.ctl, 1),
        "call 1 reaches the plugin"
    );
    s.ws.send_call(2, "control.Handle", &with_reply("quick", "0"));
    s.ws.send_call(3, "control.Handle", &handle("ctl~missing"));
    for (seq, value) in [
        (1, json!({"value": "slow"})),
        (2, json!({"value": "quick"})),
        (3, error_text("ctl~missing")),
    ] {
        let (header, body) = s.ws.wait_reply(seq, BOUND).expect("a reply");
        assert_eq!(header["Response"]["Error"], "");
        assert_eq!(body["Value"], value, "call {seq}");
    }
    let texts: Vec<Value> =
        s.ws.frames()
            .iter()
            .filter(|f| f.opcode == OP_TEXT)
            .map(|f| f.json())
            .collect();
    assert_eq!(texts.len(), 6);
    for pair in texts.chunks(2) {
        assert!(pair[0]["Response"].is_object(), "a header first: {pair:?}");
        assert!(pair[1]["Response"].is_null(), "then its body: {pair:?}");
    }
    let order: Vec<&Value> = texts
        .iter()
        .step_by(2)
        .map(|h| &h["Response"]["Seq"])
        .collect();
    assert_eq!(
        order.last(),
        Some(&&json!(1)),
        "the slow call is answered last: {order:?}"
    );
}

/// A frame that is not a net/rpc envelope ends the connection (Go's server stops serving it);
/// a Close from the app is echoed. Either way the probe reconnects.
#[test]
fn a_malformed_frame_or_a_close_ends_the_websocket_and_the_probe_reconnects() {
    let _serial = serial();
    let (mut s, _) = setup(&[], |_| Vec::new());
    assert!(s.ws.send_frame(OP_TEXT, b"this is not json"));
    assert!(s.ws.wait_closed(BOUND), "the probe closes the websocket");
    let second = s.app.wait_ws(1, BOUND).expect("the probe reconnects");
    assert_eq!(response(&second, 1, "ctl~ctrl"), json!({"value": "done"}));

    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    assert!(second.send_frame(OP_CLOSE, &close));
    let echo = second
        .wait_frame(OP_CLOSE, 0, BOUND)
        .expect("the close is echoed");
    assert!(echo.masked);
    assert_eq!(echo.payload.get(..2), Some(&1000u16.to_be_bytes()[..]));
    assert!(second.wait_closed(BOUND));
    let third = s.app.wait_ws(2, BOUND).expect("the probe reconnects again");
    assert_eq!(response(&third, 2, "ctl~ctrl"), json!({"value": "done"}));
    assert!(
        s.probe.wait_exit(Duration::ZERO).is_none(),
        "the probe runs"
    );
}

/// AP §4: every app has its own websocket, and the `AppID` a plugin sees is the id of the app
/// that called; an app that comes back with a new id gets a new websocket and its new id.
#[test]
fn each_app_calls_with_its_own_id_also_after_a_restart() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let (ctl, _state) = Controller::start(&root.path().join("ctl.sock"));
    let (a, b) = (FakeApp::start("app-a"), FakeApp::start("app-b"));
    let targets = [a.target(), b.target()];
    let _probe = ProbeProcess::start(&quick_args(root.path(), &[], &targets));
    for app in [&a, &b] {
        app.wait_report_after(0, BOUND, |r| {
            r.json()["Host"]["controls"]["ctl~ctrl"].is_object()
        })
        .expect("the control is published to both apps");
    }
    let app_ids = |ctl: &PluginServer| -> Vec<Value> {
        control_requests(ctl)
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).expect("JSON")["AppID"].clone())
            .collect()
    };
    let ws_a = a.wait_ws(0, BOUND).expect("websocket to a");
    let ws_b = b.wait_ws(0, BOUND).expect("websocket to b");
    assert_eq!(response(&ws_b, 1, "ctl~ctrl"), json!({"value": "done"}));
    assert_eq!(response(&ws_a, 1, "ctl~ctrl"), json!({"value": "done"}));
    assert_eq!(app_ids(&ctl), [json!("app-b"), json!("app-a")]);

    // Down for longer than two publish intervals, so that a publish fails: an address that
    // failed goes through `GET /api` again, which is how the probe learns the new id.
    b.go_down();
    b.set_id("app-b2");
    std::thread::sleep(Duration::from_millis(700));
    b.come_up();
    let ws_b2 = b
        .wait_ws(1, BOUND)
        .expect("a new websocket to the restarted app");
    assert_eq!(response(&ws_b2, 2, "ctl~ctrl"), json!({"value": "done"}));
    assert_eq!(app_ids(&ctl)[2], "app-b2");
    assert_eq!(a.ws_count(), 1, "the other app's websocket is untouched");
    assert_eq!(response(&ws_a, 3, "ctl~ctrl"), json!({"value": "done"}));
}

/// AP §4: a refused upgrade (`400 "X-Scope-Probe-ID"`) is retried with the publishing
/// backoff (1 s, 2 s, 4 s…) while reports keep their cadence; once the app accepts, calls work.
#[test]
fn a_refused_upgrade_is_retried_with_backoff_while_publishing_goes_on() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let (_ctl, _state) = Controller::start(&root.path().join("ctl.sock"));
    let app = FakeApp::start(APP_ID);
    app.answer_upgrades(Answer::Status(400, "\"X-Scope-Probe-ID\"".into()));
    let targets = [app.target()];
    let probe = ProbeProcess::start(&quick_args(root.path(), &[], &targets));
    let upgrades = |r: &[util::fake_app::AppRequest]| -> Vec<Instant> {
        r.iter()
            .filter(|r| r.target == "/api/control/ws")
            .map(|r| r.at)
            .collect()
    };
    assert!(
        app.wait_requests(BOUND, |r| upgrades(r).len() >= 3),
        "upgrades retried"
    );
    let requests = app.requests();
    let tries = upgrades(&requests);
    let gaps: Vec<Duration> = tries
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .collect();
    let expected = [1000, 2000].map(Duration::from_millis);
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            *gap >= want.mul_f64(0.95) && *gap <= want + Duration::from_millis(400),
            "retries {gaps:?}"
        );
    }
    // Reports went on every 300 ms meanwhile.
    let reports: Vec<Instant> = requests
        .iter()
        .filter(|r| r.is_report())
        .map(|r| r.at)
        .collect();
    assert!(reports.len() >= 9, "{} reports in 3 s", reports.len());
    for pair in reports[1..].windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap < Duration::from_millis(600), "a report gap of {gap:?}");
    }

    app.answer_upgrades(Answer::Normal);
    let ws = app.wait_ws(0, BOUND).expect("the upgrade succeeds at last");
    assert_eq!(response(&ws, 1, "ctl~ctrl"), json!({"value": "done"}));
    drop(probe);
}

/// An upgrade the app never answers holds nothing up.
#[test]
fn a_hung_upgrade_holds_up_neither_reports_nor_polls() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let (ctl, _state) = Controller::start(&root.path().join("ctl.sock"));
    let app = FakeApp::start(APP_ID);
    app.answer_upgrades(Answer::Hang);
    let targets = [app.target()];
    let _probe = ProbeProcess::start(&quick_args(root.path(), &[], &targets));
    assert!(app.wait_requests(BOUND, |r| r.iter().any(|r| r.target == "/api/control/ws")));
    let from = app.report_count();
    let polls = ctl.request_count();
    assert!(app.wait_reports(from + 8, BOUND));
    let reports = app.reports();
    for pair in reports[from..].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap < Duration::from_millis(600), "a report gap of {gap:?}");
    }
    assert!(ctl.request_count() >= polls + 15, "polls went on");
    assert_eq!(app.ws_count(), 0);
}

/// Frames that arrive in the same read as the `101` are not lost.
#[test]
fn a_call_right_behind_the_101_is_answered() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tempdir");
    let (_ctl, _state) = Controller::start(&root.path().join("ctl.sock"));
    let app = FakeApp::start(APP_ID);
    let header = json!({"Request": {"Seq": 1, "ServiceMethod": "control.Handle"}, "Response": null, "Value": null});
    let body = json!({"Request": null, "Response": null, "Value": handle("ctl~nope")});
    app.greet_with(&[header.to_string(), body.to_string()]);
    let target = app.target();
    let _probe = ProbeProcess::start(&[
        "--plugins-root",
        root.path().to_str().expect("utf-8"),
        "--hostname",
        "testhost",
        &target,
    ]);
    let ws = app.wait_ws(0, BOUND).expect("control websocket");
    let (header, body) = ws.wait_reply(1, BOUND).expect("a reply to the early call");
    assert_eq!(header["Response"]["Error"], "");
    assert_eq!(body["Value"], error_text("ctl~nope"));
}

/// RF §7.7: a control call runs to its end even if its plugin goes away meanwhile; the app
/// gets an error answer and the probe goes on.
#[test]
fn a_plugin_that_goes_away_mid_control_still_answers_the_app() {
    let _serial = serial();
    let (mut s, _) = setup(&["--plugin-timeout", "5s"], |_| Vec::new());
    s.state
        .answer_controls(Duration::from_millis(300), r#"{"value":"never"}"#);
    s.ws.send_call(1, "control.Handle", &handle("ctl~ctrl"));
    assert!(
        wait_control_requests(&s.ctl, 1),
        "the call reaches the plugin"
    );
    let sent = Instant::now();
    drop(s.ctl); // closes the connection unanswered and removes the socket
    let (header, body) = s.ws.wait_reply(1, BOUND).expect("an answer");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "not the 5 s deadline"
    );
    assert_eq!(header["Response"]["Error"], "");
    let error = body["Value"]["error"].as_str().expect("an error");
    assert!(!error.is_empty());
    assert!(
        s.probe.wait_exit(Duration::ZERO).is_none(),
        "the probe runs"
    );
    s.app
        .wait_report_after(s.app.report_count(), BOUND, |r| {
            plugin_status(r.json(), "ctl").is_none()
        })
        .expect("the plugin leaves the reports");
    assert_eq!(response(&s.ws, 2, "ctl~ctrl"), error_text("ctl~ctrl"));
}

/// The probe's open files after many calls, publishes and a reconnection are what they were:
/// no connection is leaked.
#[test]
fn no_descriptor_leaks_across_calls_publishes_and_reconnections() {
    let _serial = serial();
    let (s, _) = setup(&[], |_| Vec::new());
    let fds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("the probe's fds")
            .count()
    };
    // Let every initial connection settle: one full round of calls first.
    assert_eq!(response(&s.ws, 1, "ctl~ctrl"), json!({"value": "done"}));
    let before = fds(s.probe.pid());
    let mut seq = 2;
    for _ in 0..30 {
        for control in ["ctl~ctrl", "ctl~nope"] {
            let (header, _) = call(&s.ws, seq, control);
            assert_eq!(header["Response"]["Error"], "");
            seq += 1;
        }
    }
    s.ws.drop_connection();
    let again = s.app.wait_ws(1, BOUND).expect("the probe reconnects");
    assert_eq!(response(&again, seq, "ctl~ctrl"), json!({"value": "done"}));
    assert!(s.app.wait_reports(s.app.report_count() + 3, BOUND));
    // A poll or a publish may be in flight at either count.
    let after = fds(s.probe.pid());
    assert!(after <= before + 2, "{before} fds before, {after} after");
}
