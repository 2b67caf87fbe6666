//! Plugin discovery (spec §7.1): a recursive walk of the plugins root for unix sockets. The
//! registry diffs each scan against the plugins it knows.
//!
//! Rules, as Scope's `Registry.sockets`:
//! - The root is `stat`ed (following symlinks). If that or reading it fails, the scan fails:
//!   [`ScanResult::root_error`] is set, and on the very first scan that means "no plugin
//!   support for the probe's whole life" (§7.1; the caller decides). A root that is itself a
//!   socket is that one plugin; a root that is neither a directory nor a socket has none.
//! - Directories are entered with their entries in name (byte) order. A path whose `stat` type
//!   is a socket is a plugin socket; anything else is ignored.
//! - An error on a sub-path is collected in [`ScanResult::errors`] and that path is skipped;
//!   the caller logs `plugins: error loading path <path>: <error>`.
//!
//! One deliberate difference: `stat` follows symlinks, so a symlink to a socket counts, but a
//! symlink to a directory is never entered (Go's walk would follow it). That keeps the walk
//! inside the root and makes symlink loops impossible; a symlink chain that loops on itself
//! fails its `stat` with `ELOOP` and lands in `errors` like any other bad path.
//!
//! The walk uses plain blocking `std::fs` on the event loop: a readdir of a small local
//! directory tree (tmpfs under `/var/run`) takes microseconds, and it runs once per rescan,
//! not per event. It keeps its own stack, so a deep tree cannot overflow the thread's stack.
//!
//! Out of scope: plugin IDs ([`super::id`]), watches (the loop watches [`ScanResult::dirs`]
//! through [`crate::sys::inotify`]) and what happens to added or removed plugins.
//!
//! Ordering note: [`BTreeSet<PathBuf>`] orders by path components, but Scope iterates its
//! plugins in Go string order (`sort.Strings`), which differs when a name sorts around `/`
//! (`a-b.sock` < `a/x.sock` as strings). Use [`go_path_cmp`] where the order is observable,
//! e.g. the merge order of plugin reports.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// The outcome of one scan. Collected first and acted on afterwards: the registry diffs the
/// sockets against what it knows, and the watches are re-aimed at `dirs`.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Every plugin socket found (paths under the root, symlinks not resolved).
    pub sockets: BTreeSet<PathBuf>,
    /// Every directory entered, root first, then depth-first in name order: the directories
    /// to watch with inotify. Symlinked directories are never in it.
    pub dirs: Vec<PathBuf>,
    /// Sub-paths that could not be examined or read, with why; each was skipped.
    pub errors: Vec<(PathBuf, io::Error)>,
    /// Set when the root itself could not be `stat`ed or read: the scan as a whole failed,
    /// and `sockets` and `dirs` are empty.
    pub root_error: Option<io::Error>,
}

impl ScanResult {
    /// The root does not exist (the common reason for running without plugins, §7.1).
    pub fn root_missing(&self) -> bool {
        self.root_error
            .as_ref()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }

    /// The scan as a whole succeeded (sub-path errors aside).
    pub fn is_ok(&self) -> bool {
        self.root_error.is_none()
    }
}

/// Walks `root` recursively and collects its plugin sockets (spec §7.1).
pub fn scan(root: &Path) -> ScanResult {
    let mut result = ScanResult::default();
    // The configured root is trusted: follow it even if it is a symlink (e.g. /var/run).
    let meta = match fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) => {
            result.root_error = Some(e);
            return result;
        }
    };
    let file_type = meta.file_type();
    if file_type.is_socket() {
        result.sockets.insert(root.to_path_buf());
        return result;
    }
    if !file_type.is_dir() {
        return result;
    }
    let entries = match sorted_entries(root) {
        Ok(entries) => entries,
        Err(e) => {
            result.root_error = Some(e);
            return result;
        }
    };
    result.dirs.push(root.to_path_buf());

    // Depth-first, in name order: each frame is a directory's remaining entries, reversed so
    // that `pop` yields the next name.
    let mut stack = vec![reversed(entries)];
    while let Some(frame) = stack.last_mut() {
        let Some(path) = frame.pop() else {
            stack.pop();
            continue;
        };
        match classify(&path) {
            Ok(Kind::Socket) => {
                result.sockets.insert(path);
            }
            Ok(Kind::Dir) => match sorted_entries(&path) {
                Ok(entries) => {
                    result.dirs.push(path);
                    stack.push(reversed(entries));
                }
                Err(e) => result.errors.push((path, e)),
            },
            Ok(Kind::Other) => {}
            Err(e) => result.errors.push((path, e)),
        }
    }
    result
}

enum Kind {
    Socket,
    /// A real directory (never a symlink to one).
    Dir,
    Other,
}

fn classify(path: &Path) -> io::Result<Kind> {
    let own = fs::symlink_metadata(path)?.file_type();
    if own.is_symlink() {
        // `stat` follows the link: a link to a socket is a plugin, a link to a directory is
        // not entered (no escape from the root, no loops).
        let target = fs::metadata(path)?.file_type();
        return Ok(if target.is_socket() {
            Kind::Socket
        } else {
            Kind::Other
        });
    }
    Ok(if own.is_socket() {
        Kind::Socket
    } else if own.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    })
}

/// The directory's entry paths in name (byte) order, like Go's `ioutil.ReadDir`.
fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names.into_iter().map(|name| dir.join(name)).collect())
}

fn reversed(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.reverse();
    v
}

/// Orders paths as Go's `sort.Strings` orders their strings (raw bytes), which is how Scope
/// iterates plugins. `Ord for Path` compares components instead and can disagree.
pub fn go_path_cmp(a: &Path, b: &Path) -> Ordering {
    a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    /// A temp root with helpers that keep the listeners alive as long as the root.
    struct Root {
        dir: tempfile::TempDir,
        listeners: Vec<UnixListener>,
    }

    impl Root {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                listeners: Vec::new(),
            }
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn socket(&mut self, rel: &str) -> PathBuf {
            let p = self.path(rel);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            self.listeners.push(UnixListener::bind(&p).unwrap());
            p
        }
        fn mkdir(&self, rel: &str) -> PathBuf {
            let p = self.path(rel);
            fs::create_dir_all(&p).unwrap();
            p
        }
        fn file(&self, rel: &str) -> PathBuf {
            let p = self.path(rel);
            fs::write(&p, b"not a socket").unwrap();
            p
        }
        fn sockets(&self, rels: &[&str]) -> BTreeSet<PathBuf> {
            rels.iter().map(|r| self.path(r)).collect()
        }
    }

    #[test]
    fn finds_sockets_in_nested_directories_and_ignores_other_files() {
        let mut root = Root::new();
        // The layout of the sockets-in-subdirectories vector, plus noise.
        root.socket("z-top.sock");
        root.socket("sub/a-sub.sock");
        root.socket("sub/deeper/b-deep.sock");
        root.socket("a/x.sock");
        root.file("readme.txt");
        root.file("sub/not-a-socket.sock");
        root.mkdir("empty");
        let result = scan(root.dir.path());
        assert!(result.is_ok());
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(
            result.sockets,
            root.sockets(&[
                "z-top.sock",
                "sub/a-sub.sock",
                "sub/deeper/b-deep.sock",
                "a/x.sock"
            ])
        );
    }

    #[test]
    fn enters_directories_root_first_then_in_name_order() {
        let root = Root::new();
        for d in ["b", "a/y", "a/x", "c-d", "c/e"] {
            root.mkdir(d);
        }
        let result = scan(root.dir.path());
        let rel: Vec<_> = result
            .dirs
            .iter()
            .map(|d| {
                d.strip_prefix(root.dir.path())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        // Byte order puts "c" before "c-d"; depth-first visits a's children before "b".
        assert_eq!(rel, ["", "a", "a/x", "a/y", "b", "c", "c/e", "c-d"]);
    }

    #[test]
    fn a_symlink_to_a_socket_counts_under_its_own_name() {
        let mut root = Root::new();
        let real = root.socket("real/p.sock");
        symlink(&real, root.path("link.sock")).unwrap();
        let result = scan(root.dir.path());
        assert_eq!(result.sockets, root.sockets(&["real/p.sock", "link.sock"]));
    }

    #[test]
    fn a_symlink_to_a_socket_outside_the_root_counts() {
        let mut outside = Root::new();
        let real = outside.socket("o.sock");
        let root = Root::new();
        symlink(&real, root.path("o.sock")).unwrap();
        assert_eq!(scan(root.dir.path()).sockets, root.sockets(&["o.sock"]));
    }

    #[test]
    fn a_symlinked_directory_is_not_entered() {
        let mut outside = Root::new();
        outside.socket("escape.sock");
        let mut root = Root::new();
        root.socket("in/inside.sock");
        symlink(outside.dir.path(), root.path("out")).unwrap();
        symlink(root.path("in"), root.path("in-again")).unwrap();
        let result = scan(root.dir.path());
        assert_eq!(result.sockets, root.sockets(&["in/inside.sock"]));
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(
            result.dirs,
            vec![root.dir.path().to_path_buf(), root.path("in")]
        );
    }

    #[test]
    fn symlink_loops_end_and_are_reported() {
        let mut root = Root::new();
        root.socket("d/p.sock");
        symlink(".", root.path("d/self")).unwrap();
        symlink(root.dir.path(), root.path("d/up")).unwrap();
        symlink("loop-b", root.path("loop-a")).unwrap();
        symlink("loop-a", root.path("loop-b")).unwrap();
        symlink("missing-target", root.path("dangling")).unwrap();
        let result = scan(root.dir.path());
        assert_eq!(result.sockets, root.sockets(&["d/p.sock"]));
        let failed: Vec<_> = result
            .errors
            .iter()
            .map(|(p, e)| (p.clone(), e.raw_os_error()))
            .collect();
        assert_eq!(
            failed,
            vec![
                (root.path("dangling"), Some(libc::ENOENT)),
                (root.path("loop-a"), Some(libc::ELOOP)),
                (root.path("loop-b"), Some(libc::ELOOP)),
            ]
        );
    }

    #[test]
    fn a_missing_root_fails_the_scan() {
        let root = Root::new();
        let result = scan(&root.path("nope"));
        assert!(result.root_missing());
        assert!(!result.is_ok());
        assert!(result.sockets.is_empty() && result.dirs.is_empty() && result.errors.is_empty());
    }

    #[test]
    fn a_root_that_is_a_socket_is_one_plugin_and_a_file_is_none() {
        let mut root = Root::new();
        let sock = root.socket("only.sock");
        let result = scan(&sock);
        assert!(result.is_ok());
        assert_eq!(result.sockets, BTreeSet::from([sock]));
        assert!(result.dirs.is_empty());

        let file = root.file("plain");
        let result = scan(&file);
        assert!(result.is_ok() && result.sockets.is_empty() && result.dirs.is_empty());
    }

    #[test]
    fn a_root_that_is_a_symlink_to_a_directory_is_followed() {
        let mut real = Root::new();
        real.socket("p.sock");
        let holder = Root::new();
        let link = holder.path("plugins");
        symlink(real.dir.path(), &link).unwrap();
        let result = scan(&link);
        assert_eq!(result.sockets, BTreeSet::from([link.join("p.sock")]));
        assert_eq!(result.dirs, vec![link]);
    }

    #[test]
    fn a_deep_tree_is_walked_to_the_bottom() {
        let mut root = Root::new();
        let mut rel = String::new();
        for _ in 0..200 {
            rel.push_str("d/");
        }
        root.mkdir(&rel);
        // sun_path is 108 bytes, so the sockets sit near the top; a deep file marks the bottom.
        let top = root.socket("d/p.sock");
        root.file(&format!("{rel}bottom"));
        let result = scan(root.dir.path());
        assert_eq!(result.sockets, BTreeSet::from([top]));
        assert_eq!(result.dirs.len(), 201);
        assert_eq!(
            result.dirs.last(),
            Some(&root.path(rel.trim_end_matches('/')))
        );
    }

    #[test]
    fn go_order_differs_from_component_order_around_slash() {
        let a = Path::new("/r/a-b.sock");
        let b = Path::new("/r/a/x.sock");
        assert_eq!(go_path_cmp(a, b), Ordering::Less);
        assert_eq!(a.cmp(b), Ordering::Greater);
    }
}
