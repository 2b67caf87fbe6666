//! Scope's merge vectors (`vectors/README.md` §1): each input decoded over `MakeReport()` and
//! merged into an accumulator that starts as `MakeReport()`; the encoded result (without `ID`)
//! must equal Go's under the semantic comparison of README §3.

mod util;

use scope_probe::report::{Report, Time, decode_plugin_report, encode};
use serde_json::Value;
use util::compare::{CompareOptions, compare_report, status_matches};

/// Runs one vector; `Err` names the first difference.
fn run_vector(v: &Value) -> Result<(), String> {
    let inputs = v["inputs"].as_array().ok_or("no inputs")?;
    // Re-serialise each input so decoded strings can borrow from it.
    let bodies: Vec<String> = inputs.iter().map(Value::to_string).collect();
    let now = Time::ZERO;
    let mut acc = Report::make();
    for (i, body) in bodies.iter().enumerate() {
        let r = decode_plugin_report(body.as_bytes(), now)
            .map_err(|e| format!("input {i} does not decode: {e}"))?;
        acc.merge(r);
    }
    let mut out = Vec::new();
    encode(&acc, &mut out);
    let mut actual: Value =
        serde_json::from_slice(&out).map_err(|e| format!("encoded output is not JSON: {e}"))?;
    if let Some(o) = actual.as_object_mut() {
        o.remove("ID");
    }
    compare_report(&v["expected"], &actual, &CompareOptions::default())
}

#[test]
fn all_merge_vectors_pass() {
    let files = util::json_files(&util::fixtures().join("vectors/merge"));
    assert_eq!(files.len(), 150, "expected the 150 merge vectors");
    let mut failures = Vec::new();
    for file in &files {
        let v = util::load_json(file);
        if let Err(e) = run_vector(&v) {
            failures.push(format!("{}: {e}", v["name"].as_str().unwrap_or("?")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

// The comparator itself: it must catch real differences and accept README §3's equalities.

fn base() -> Value {
    serde_json::json!({
        "TS": "0001-01-01T00:00:00Z",
        "Host": {"label": "host", "nodes": {"a": {
            "id": "a", "sets": {"k": ["x", "y"]}, "adjacency": ["p", "q"],
            "latest": {"os": {"timestamp": "2023-06-01T09:00:00Z", "value": "linux"}},
            "metrics": {"m": {"samples": [{"date": "2023-06-01T09:00:00Z", "value": 1}], "min": 0, "max": 100}},
            "parents": null, "children": [{"id": "c1"}, {"id": "c2"}]
        }}},
        "Plugins": [{"id": "p", "label": "P", "status": "error: decoding error: [pos 4]: x"}],
        "Window": 0
    })
}

fn cmp(e: &Value, a: &Value) -> Result<(), String> {
    compare_report(e, a, &CompareOptions::default())
}

#[test]
fn comparator_accepts_equivalent_forms() {
    let e = base();
    let mut a = base();
    // Zero/absent/null equal for fixed-struct fields; sets and children unordered; times as
    // instants; numbers numerically.
    a["TS"] = Value::Null;
    a["Window"] = serde_json::json!(0.0);
    a["Host"]["nodes"]["a"]["sets"]["k"] = serde_json::json!(["y", "x"]);
    a["Host"]["nodes"]["a"]["parents"] = serde_json::json!({});
    a["Host"]["nodes"]["a"]["children"] =
        serde_json::json!([{"id": "c2"}, {"id": "c1", "sets": null}]);
    a["Host"]["nodes"]["a"]["latest"]["os"]["timestamp"] = "2023-06-01T11:00:00+02:00".into();
    a["Host"]["nodes"]["a"]["metrics"]["m"]["max"] = serde_json::json!(100.0);
    a["Endpoint"] = serde_json::json!({});
    cmp(&e, &a).unwrap();
}

#[test]
fn comparator_reports_path_of_difference() {
    let e = base();
    let mut a = base();
    a["Host"]["nodes"]["a"]["latest"]["os"]["value"] = "windows".into();
    let err = cmp(&e, &a).unwrap_err();
    assert!(
        err.starts_with("Host.nodes.a.latest.os.value: strings differ"),
        "{err}"
    );

    let mut a = base();
    a["Host"]["nodes"]["a"]["sets"]["extra"] = serde_json::json!([]);
    let err = cmp(&e, &a).unwrap_err();
    assert!(
        err.starts_with("Host.nodes.a.sets.extra: unexpected key"),
        "{err}"
    );

    let mut a = base();
    a["Host"]["nodes"]["a"]["metrics"]["m"]["samples"] = serde_json::json!([]);
    assert!(cmp(&e, &a).is_err());

    let mut a = base();
    a["Host"]["nodes"]["a"]["children"] = serde_json::json!([{"id": "c1"}]);
    assert!(cmp(&e, &a).unwrap_err().contains("ids differ"));

    let mut a = base();
    a["Host"]["nodes"]["a"]["latest"]["os"]["timestamp"] = "2023-06-01T09:00:00.1Z".into();
    assert!(cmp(&e, &a).unwrap_err().contains("times differ"));

    let mut a = base();
    a["Host"]["nodes"]["b;<host>"] = serde_json::json!({});
    let err = cmp(&e, &a).unwrap_err();
    assert!(
        err.starts_with("Host.nodes[\"b;<host>\"]: unexpected key"),
        "{err}"
    );

    // A status differs unless the vector allows a prefix.
    let mut a = base();
    a["Plugins"][0]["status"] = "error: decoding error: something else".into();
    assert!(cmp(&e, &a).is_err());
    let opts = CompareOptions::with_status_match(
        None,
        Some(&serde_json::json!({"p": "prefix:error: decoding error: "})),
    );
    compare_report(&e, &a, &opts).unwrap();
}

#[test]
fn comparator_now_rule() {
    let mut e = base();
    e["Host"]["nodes"]["a"]["latest"]["os"]["timestamp"] = "<now>".into();
    let a = base();
    assert!(cmp(&e, &a).is_err(), "<now> without a now never matches");
    let now = Time::parse("2023-06-01T09:00:00Z").ok();
    compare_report(
        &e,
        &a,
        &CompareOptions {
            now,
            ..CompareOptions::default()
        },
    )
    .unwrap();
    let other = Time::parse("2023-06-01T09:00:01Z").ok();
    assert!(
        compare_report(
            &e,
            &a,
            &CompareOptions {
                now: other,
                ..CompareOptions::default()
            }
        )
        .is_err()
    );
}

#[test]
fn status_rules() {
    assert!(status_matches(Some("exact"), "ok", "ok"));
    assert!(!status_matches(Some("exact"), "ok", "ok "));
    assert!(status_matches(None, "ok", "ok"));
    assert!(status_matches(
        Some("prefix:error: decoding error: "),
        "x",
        "error: decoding error: y"
    ));
    assert!(!status_matches(
        Some("prefix:error: decoding error: "),
        "x",
        "error: other"
    ));
}

/// The plugin vectors in which every plugin answers 200 with a valid report, replayed without
/// the plugin host: decode each body, set the one spec's status to `ok`, run the §7.6
/// rewriting for controllers, merge in sorted socket order. This checks the report layer's
/// share of a plugin cycle (decoding, [`rewrite_controls`], merging, `"<now>"` stamps).
#[test]
fn all_ok_plugin_vectors_replay() {
    use scope_probe::report::rewrite_controls;
    let now = Time::parse("2099-01-01T00:00:00Z").expect("valid time");
    let mut ran = 0;
    for file in util::json_files(&util::fixtures().join("vectors/plugins")) {
        let v = util::load_json(&file);
        let statuses = v["expected"]["statuses"].as_object().expect("statuses");
        let plugins = v["plugins"].as_array().expect("plugins");
        let all_ok = plugins.len() == statuses.len()
            && statuses.values().all(|s| s == "ok")
            && plugins.iter().all(|p| p["status"] == 200);
        if !all_ok {
            continue;
        }
        let mut plugins: Vec<&Value> = plugins.iter().collect();
        plugins.sort_by_key(|p| p["socket"].as_str().unwrap_or("").to_owned());
        let bodies: Vec<&str> = plugins
            .iter()
            .map(|p| p["body"].as_str().expect("body"))
            .collect();
        let mut acc = Report::make();
        for body in &bodies {
            let mut r = decode_plugin_report(body.as_bytes(), now).expect("decodes");
            assert_eq!(r.plugins.len(), 1, "{file:?}");
            let mut spec = r.plugins.first().expect("one spec").clone();
            spec.status = "ok".into();
            r.plugins.clear();
            let id = spec.id.to_string();
            let controller = spec.interfaces.iter().any(|i| i == "controller");
            r.plugins.insert(spec);
            if controller {
                rewrite_controls(&mut r, &id, now);
            }
            acc.merge(r);
        }
        let mut out = Vec::new();
        encode(&acc, &mut out);
        let mut actual: Value = serde_json::from_slice(&out).expect("JSON");
        if let Some(o) = actual.as_object_mut() {
            o.remove("ID");
        }
        let opts = CompareOptions::with_status_match(Some(now), v.get("status_match"));
        if let Err(e) = compare_report(&v["expected"]["report"], &actual, &opts) {
            panic!("{}: {e}", file.display());
        }
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} vectors replayed");
}
