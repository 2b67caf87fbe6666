//! Scope's plugin-host scenarios (`vectors/README.md` §2), each run through the real probe:
//! real unix-socket HTTP plugins under a fresh root, one discovery, one poll cycle. The merged
//! plugin report and every status must equal what Scope's registry produced.

mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use scope_probe::probe::{Config, Probe};
use scope_probe::report::Time;
use serde_json::Value;
use util::compare::{CompareOptions, compare_report, status_matches};
use util::plugin_server::{Behaviour, PluginServer};

fn run_scenario(v: &Value) -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    for plugin in v["plugins"].as_array().ok_or("no plugins")? {
        let socket = plugin["socket"].as_str().ok_or("no socket")?;
        let status = plugin["status"].as_u64().ok_or("no status")? as u16;
        let body = plugin["body"]
            .as_str()
            .ok_or("no body")?
            .as_bytes()
            .to_vec();
        servers.push(PluginServer::start(
            &root.path().join(socket),
            Behaviour::Respond { status, body },
        ));
    }
    let mut config = Config::new(
        Some(root.path().to_path_buf()),
        "0123456789abcdef".into(),
        "vectorhost".into(),
    );
    config.options.no_host = true;
    config.options.api_version = v["api_version"].as_str().ok_or("no api_version")?.into();
    if let Some(limit) = v["max_response_bytes"].as_u64() {
        config.options.max_response_bytes = limit as usize;
    }
    let before = Time::from_system(SystemTime::now());
    let mut probe = Probe::new(config).map_err(|e| e.to_string())?;
    let outcome = probe.once_registry_report().map_err(|e| e.to_string())?;
    let after = Time::from_system(SystemTime::now());

    let mut actual: Value =
        serde_json::from_slice(&outcome.report).map_err(|e| format!("report is not JSON: {e}"))?;
    if let Some(o) = actual.as_object_mut() {
        o.remove("ID");
    }
    let mut opts = CompareOptions::with_status_match(None, v.get("status_match"));
    opts.now_window = Some((before, after));
    compare_report(&v["expected"]["report"], &actual, &opts)?;

    // Two sockets with one ID share one entry (vectors/README.md §2).
    let statuses: BTreeMap<String, String> = outcome.statuses.into_iter().collect();
    let expected = v["expected"]["statuses"]
        .as_object()
        .ok_or("no expected statuses")?;
    let expected_ids: Vec<&String> = expected.keys().collect();
    let actual_ids: Vec<&String> = statuses.keys().collect();
    if expected_ids != actual_ids {
        return Err(format!(
            "loaded plugins differ: expected {expected_ids:?}, got {actual_ids:?}"
        ));
    }
    for (id, want) in expected {
        let want = want.as_str().ok_or("status not a string")?;
        let got = &statuses[id];
        let rule = v["status_match"][id].as_str();
        if !status_matches(rule, want, got) {
            return Err(format!(
                "status of {id}: expected {want:?} ({rule:?}), got {got:?}"
            ));
        }
    }
    drop(servers);
    Ok(())
}

#[test]
fn every_plugin_scenario_matches_scope() {
    let dir = util::fixtures().join("vectors/plugins");
    let files = util::json_files(Path::new(&dir));
    assert!(files.len() >= 30, "expected Scope's plugin scenarios");
    let mut failures = Vec::new();
    for file in &files {
        let v = util::load_json(file);
        if let Err(e) = run_scenario(&v) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
