//! The README's example plugin (`examples/controller.py`) really works with the probe.

mod util;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use scope_probe::probe::{Config, Probe};

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &Path, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn python_controller_example_is_loaded_with_its_controls() {
    let root = tempfile::tempdir().expect("tempdir");
    let socket = root.path().join("light.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/controller.py");
    let child = Command::new("python3")
        .arg(&script)
        .arg(&socket)
        .arg("examplehost")
        .spawn()
        .expect("python3 runs the example (CPython is on every machine of this project)");
    let _plugin = Plugin(child);
    assert!(
        wait_for_socket(&socket, Duration::from_secs(10)),
        "example listens"
    );

    let mut config = Config::new(
        Some(root.path().to_path_buf()),
        "0123456789abcdef".into(),
        "examplehost".into(),
    );
    config.options.no_host = true;
    let outcome = Probe::new(config).expect("probe").once().expect("once");
    assert_eq!(
        outcome.statuses,
        vec![("light".to_string(), "ok".to_string())]
    );
    let report: serde_json::Value = serde_json::from_slice(&outcome.report).expect("JSON");
    let host = &report["Host"];
    let node = &host["nodes"]["examplehost;<host>"];
    assert_eq!(node["latest"]["light"]["value"], "off");
    assert_eq!(node["latest"]["active_controls"]["value"], "light~on");
    assert!(host["controls"]["light~on"].is_object());
    assert!(host["controls"]["light~off"].is_object());
}
