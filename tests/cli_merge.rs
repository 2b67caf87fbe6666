//! `scope-probe merge [FILE...]` as `spec/cli.md` says: each input decoded over Scope's
//! defaults, merged in order, printed; a decode error names the file and exits 1; stdin is `-`.

mod util;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn merge(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scope-probe"))
        .arg("merge")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scope-probe merge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("merge runs")
}

#[test]
fn merges_files_and_stdin_in_order_with_scopes_rules() {
    // The first merge vector, split into files (and the last input on stdin).
    let vector = util::load_json(&util::fixtures().join("vectors/merge/m0001.json"));
    let inputs = vector["inputs"].as_array().expect("inputs");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = Vec::new();
    for (i, input) in inputs[..inputs.len() - 1].iter().enumerate() {
        let path = dir.path().join(format!("in{i}.json"));
        std::fs::write(&path, input.to_string()).expect("write input");
        args.push(path.display().to_string());
    }
    args.push("-".to_string());
    let last = inputs[inputs.len() - 1].to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = merge(&args, last.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut actual: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON report");
    if let Some(o) = actual.as_object_mut() {
        o.remove("ID");
    }
    util::compare::compare_report(
        &vector["expected"],
        &actual,
        &util::compare::CompareOptions::default(),
    )
    .expect("same as Scope's merge");
}

#[test]
fn a_bad_file_is_named_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&good, r#"{"Plugins":[]}"#).expect("write");
    std::fs::write(
        &bad,
        r#"{"Host":{"nodes":{"a":{"latest":{"k":{"timestamp":"yesterday"}}}}}}"#,
    )
    .expect("write");
    let out = merge(&[good.to_str().unwrap(), bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json"), "{stderr}");
    assert!(stderr.contains("decoding error"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed on error");
}

#[test]
fn no_files_give_the_empty_report() {
    let out = merge(&[], b"");
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["Host"]["label"], "host", "MakeReport's defaults");
}
