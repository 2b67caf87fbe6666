//! Helpers shared by integration tests: `mod util;` in a test file, then `util::compare::…`.
//! Each test crate uses only some of them.
#![allow(dead_code)]

pub mod compare;
pub mod fake_app;
pub mod plugin_server;
pub mod probe_process;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The crate's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `*.json` files in `dir`, sorted by name.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Reads and parses one JSON file.
pub fn load_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Whether a read or write on a stream with a timeout should simply be tried again.
pub fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Reads some bytes from `stream` (which has a read timeout) into `buf`, retrying timeouts
/// until `stopped()`; false on end of stream, error or stop. The test servers' read loop.
pub fn read_more(stream: &mut impl Read, buf: &mut Vec<u8>, stopped: impl Fn() -> bool) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if stopped() {
            return false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if retryable(&e) => {}
            Err(_) => return false,
        }
    }
}

/// Parsed header lines as owned `(name, value)` pairs, values decoded lossily.
pub fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}
