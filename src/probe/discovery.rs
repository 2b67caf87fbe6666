//! Finding plugin sockets: inotify as the hint, a full scan as the truth.
//!
//! Every inotify event (an overflow included) only says "something changed"; the loop answers
//! with one full scan per turn, whatever the number of events, and the registry diffs the
//! scan against what it knows (spec §7.1; STYLE rule 8). A scan of a local directory tree is a
//! handful of `readdir`/`stat` calls, cheap enough to run on the loop even with a thousand
//! sockets, and it can never disagree with the file system the way an event-by-event model
//! can (missed events, renames across directories, a root deleted and recreated).
//!
//! Watches: the root and every directory the scan entered. While the root is missing, the
//! nearest existing ancestor is watched instead, so the root is picked up the moment it (or
//! the next path component) appears.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use mio::{Interest, Token};

use crate::plugins::scan;
use crate::sys::inotify::{Inotify, WatchDescriptor, WatchMask};

/// The plugin root's watcher and scanner.
#[derive(Debug)]
pub struct Discovery {
    root: PathBuf,
    inotify: Inotify,
    /// Directories watched now, by path.
    watches: HashMap<PathBuf, WatchDescriptor>,
    buf: Box<[u8]>,
    /// Whether the root was missing at the last scan (to log the change once).
    root_missing: bool,
    /// Sub-paths whose scan error was logged, so each is logged once while it persists.
    logged_errors: HashSet<PathBuf>,
}

impl Discovery {
    /// Opens inotify and registers it with the loop. Scanning starts with [`Discovery::rescan`].
    pub fn new(root: PathBuf, registry: &mio::Registry, token: Token) -> io::Result<Discovery> {
        let mut inotify = Inotify::new()?;
        registry.register(&mut inotify, token, Interest::READABLE)?;
        Ok(Discovery {
            root,
            inotify,
            watches: HashMap::new(),
            buf: vec![0; 4096].into_boxed_slice(),
            root_missing: false,
            logged_errors: HashSet::new(),
        })
    }

    /// Drains inotify; returns whether anything happened that calls for a rescan.
    pub fn handle_events(&mut self) -> bool {
        let mut changed = false;
        let result = self.inotify.read_events(&mut self.buf, |event| {
            if event.mask.is_overflow() {
                log::debug!("plugins: inotify queue overflowed; rescanning");
            }
            changed = true;
        });
        if let Err(e) = result {
            log::warn!("plugins: reading inotify events failed: {e}; rescanning");
            changed = true;
        }
        changed
    }

    /// Scans the whole tree, re-aims the watches, and returns every socket found.
    pub fn rescan(&mut self) -> BTreeSet<PathBuf> {
        let result = scan::scan(&self.root);
        let root_missing = result.root_missing();
        if root_missing != self.root_missing {
            if root_missing {
                log::warn!(
                    "plugins: root {} does not exist; watching for it to appear",
                    self.root.display()
                );
            } else {
                log::info!("plugins: root {} is present", self.root.display());
            }
            self.root_missing = root_missing;
        }
        let mut failed: HashSet<PathBuf> = HashSet::new();
        if let (Some(e), false) = (&result.root_error, root_missing) {
            if self.logged_errors.insert(self.root.clone()) {
                log::warn!("plugins: cannot scan root {}: {e}", self.root.display());
            }
            failed.insert(self.root.clone());
        }
        for (path, e) in &result.errors {
            if self.logged_errors.insert(path.clone()) {
                log::warn!("plugins: scanning {}: {e}", path.display());
            }
            failed.insert(path.clone());
        }
        self.logged_errors.retain(|p| failed.contains(p));

        let wanted: Vec<PathBuf> = if root_missing {
            nearest_existing_ancestor(&self.root).into_iter().collect()
        } else {
            result.dirs
        };
        self.aim_watches(&wanted);
        result.sockets
    }

    /// Watches exactly `wanted`. Adding a watch that exists is a cheap no-op for the kernel,
    /// and re-adding every time also covers a directory deleted and recreated at the same path
    /// (its old watch died with the old inode).
    fn aim_watches(&mut self, wanted: &[PathBuf]) {
        let wanted_set: HashSet<&Path> = wanted.iter().map(|p| p.as_path()).collect();
        let stale: Vec<PathBuf> = self
            .watches
            .keys()
            .filter(|p| !wanted_set.contains(p.as_path()))
            .cloned()
            .collect();
        for path in stale {
            if let Some(wd) = self.watches.remove(&path) {
                // EINVAL means the kernel already dropped it (directory deleted).
                let _ = self.inotify.rm_watch(wd);
            }
        }
        for dir in wanted {
            match self.inotify.add_watch(dir, WatchMask::PLUGIN_DIR) {
                Ok(wd) => {
                    self.watches.insert(dir.clone(), wd);
                }
                Err(e) => {
                    // Gone between the scan and now: the next event or rescan sorts it out.
                    log::debug!("plugins: cannot watch {}: {e}", dir.display());
                    self.watches.remove(dir);
                }
            }
        }
    }
}

/// The deepest ancestor of `path` that exists as a directory.
fn nearest_existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_ancestor_of_missing_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("a/b/c");
        assert_eq!(
            nearest_existing_ancestor(&missing).as_deref(),
            Some(dir.path())
        );
    }
}
