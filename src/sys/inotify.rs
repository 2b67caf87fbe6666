//! A non-blocking inotify fd and a safe parser for its event records.
//!
//! Plugin discovery watches every directory it entered for sockets appearing and disappearing.
//! The events are only a hint that something changed: an overflow ([`EventMask::is_overflow`])
//! or any doubtful event means "rescan", and the rescan's diff is the truth (STYLE §8, notify's
//! `Q_OVERFLOW` → `Flag::Rescan`).
//!
//! Out of scope: deciding what to watch or what an event means for the plugin set (the loop and
//! `plugins::scan` do that), and following renames across directories (cookies are exposed but
//! not paired).

use std::ffi::{CString, OsStr};
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::cvt;

/// Size of the fixed part of a kernel `struct inotify_event` (wd, mask, cookie, len).
const HEADER_LEN: usize = 16;

/// A buffer size that always holds at least one event with the longest possible name
/// (`NAME_MAX` + NUL), as inotify(7) requires: a smaller read fails with `EINVAL`.
pub const MIN_READ_BUF: usize = HEADER_LEN + 256;

/// The kernel's handle for one watch, as returned by [`Inotify::add_watch`]. Adding a second
/// watch on the same inode returns the same descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchDescriptor(i32);

impl WatchDescriptor {
    /// The raw descriptor number (`-1` on an overflow event, which belongs to no watch).
    pub fn as_raw(self) -> i32 {
        self.0
    }
}

/// Which events a watch reports (the `IN_*` bits passed to `inotify_add_watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchMask(u32);

impl WatchMask {
    /// A file or directory was created in the watched directory (includes `bind(2)` of a socket).
    pub const CREATE: Self = Self(libc::IN_CREATE);
    /// A file or directory was deleted from the watched directory.
    pub const DELETE: Self = Self(libc::IN_DELETE);
    /// An entry was renamed out of the watched directory.
    pub const MOVED_FROM: Self = Self(libc::IN_MOVED_FROM);
    /// An entry was renamed into the watched directory.
    pub const MOVED_TO: Self = Self(libc::IN_MOVED_TO);
    /// The watched directory itself was deleted.
    pub const DELETE_SELF: Self = Self(libc::IN_DELETE_SELF);
    /// The watched directory itself was moved.
    pub const MOVE_SELF: Self = Self(libc::IN_MOVE_SELF);
    /// An entry's metadata changed (permissions, ownership, link count, timestamps).
    pub const ATTRIB: Self = Self(libc::IN_ATTRIB);
    /// Fail with `ENOTDIR` unless the path is a directory.
    pub const ONLYDIR: Self = Self(libc::IN_ONLYDIR);
    /// Do not follow the path if it is a symlink.
    pub const DONT_FOLLOW: Self = Self(libc::IN_DONT_FOLLOW);

    /// What plugin discovery needs on every directory it entered: entries appearing or going
    /// away by any route, and the directory itself going away. `ONLYDIR` turns a race where
    /// the directory was replaced by a file into an error instead of a useless watch.
    pub const PLUGIN_DIR: Self = Self(
        libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_ONLYDIR,
    );

    /// The raw `IN_*` bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for WatchMask {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// What happened, as reported in an event record's `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMask(u32);

impl EventMask {
    /// Wraps raw `IN_*` bits from an event record.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
    /// The raw `IN_*` bits.
    pub fn bits(self) -> u32 {
        self.0
    }
    fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    /// An entry was created in a watched directory.
    pub fn is_create(self) -> bool {
        self.has(libc::IN_CREATE)
    }
    /// An entry was deleted from a watched directory.
    pub fn is_delete(self) -> bool {
        self.has(libc::IN_DELETE)
    }
    /// An entry was renamed out of a watched directory.
    pub fn is_moved_from(self) -> bool {
        self.has(libc::IN_MOVED_FROM)
    }
    /// An entry was renamed into a watched directory.
    pub fn is_moved_to(self) -> bool {
        self.has(libc::IN_MOVED_TO)
    }
    /// The entry the event names is a directory.
    pub fn is_dir(self) -> bool {
        self.has(libc::IN_ISDIR)
    }
    /// An entry's metadata changed.
    pub fn is_attrib(self) -> bool {
        self.has(libc::IN_ATTRIB)
    }
    /// The kernel's event queue overflowed and events were lost: rescan everything.
    pub fn is_overflow(self) -> bool {
        self.has(libc::IN_Q_OVERFLOW)
    }
    /// The watch was removed (explicitly, or because its directory is gone); its descriptor may
    /// be reused by a later `add_watch`.
    pub fn is_ignored(self) -> bool {
        self.has(libc::IN_IGNORED)
    }
    /// The watched directory itself was deleted.
    pub fn is_delete_self(self) -> bool {
        self.has(libc::IN_DELETE_SELF)
    }
    /// The watched directory itself was moved.
    pub fn is_move_self(self) -> bool {
        self.has(libc::IN_MOVE_SELF)
    }
    /// The filesystem holding the watched directory was unmounted.
    pub fn is_unmount(self) -> bool {
        self.has(libc::IN_UNMOUNT)
    }
}

/// One parsed event record, borrowing its name from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The watch the event belongs to (`-1` for an overflow).
    pub wd: WatchDescriptor,
    /// What happened.
    pub mask: EventMask,
    /// Pairs a `MOVED_FROM` with its `MOVED_TO`; 0 otherwise.
    pub cookie: u32,
    /// The entry's name inside the watched directory, without the kernel's NUL padding;
    /// `None` for events about the watched directory itself.
    pub name: Option<&'a OsStr>,
}

/// Parses the event records in `buf` (what one `read` of an inotify fd returned), calling `f`
/// for each, and returns how many were parsed.
///
/// Every length is bounds-checked: a truncated or inconsistent trailing record is dropped
/// (it cannot come from the kernel, which never splits records across reads) and parsing stops.
pub fn parse_events<'a>(buf: &'a [u8], mut f: impl FnMut(Event<'a>)) -> usize {
    let mut rest = buf;
    let mut count = 0;
    while let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() {
        let word = |i: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(&header[i * 4..i * 4 + 4]);
            w
        };
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(1));
        let cookie = u32::from_ne_bytes(word(2));
        let Ok(name_len) = usize::try_from(u32::from_ne_bytes(word(3))) else {
            break;
        };
        let Some((name_field, next)) = after.split_at_checked(name_len) else {
            break;
        };
        // The name is NUL-terminated and NUL-padded to an alignment boundary.
        let name_bytes = match name_field.iter().position(|&b| b == 0) {
            Some(end) => &name_field[..end],
            None => name_field,
        };
        let name = (!name_bytes.is_empty()).then(|| OsStr::from_bytes(name_bytes));
        f(Event {
            wd: WatchDescriptor(wd),
            mask: EventMask(mask),
            cookie,
            name,
        });
        count += 1;
        rest = next;
    }
    count
}

/// A non-blocking, close-on-exec inotify instance.
#[derive(Debug)]
pub struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    /// Opens a new inotify instance with no watches.
    pub fn new() -> io::Result<Self> {
        // SAFETY: inotify_init1 takes only flags and returns a new fd or -1.
        let raw = cvt(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// Starts watching `path` (or updates the mask of an existing watch on the same inode).
    pub fn add_watch(&self, path: &Path, mask: WatchMask) -> io::Result<WatchDescriptor> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the call.
        let wd = cvt(unsafe {
            libc::inotify_add_watch(self.fd.as_raw_fd(), c_path.as_ptr(), mask.bits())
        })?;
        Ok(WatchDescriptor(wd))
    }

    /// Stops a watch. The kernel then queues an `IGNORED` event for it. Fails with `EINVAL` if
    /// the watch is already gone (e.g. its directory was deleted), which callers may ignore.
    pub fn rm_watch(&self, wd: WatchDescriptor) -> io::Result<()> {
        // SAFETY: integer arguments only.
        cvt(unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd.0) })?;
        Ok(())
    }

    /// Reads and parses events until the fd would block (mio's "Draining readiness"), calling
    /// `f` for each; retries on `EINTR`. Returns the number of events seen.
    ///
    /// `buf` is scratch space of at least [`MIN_READ_BUF`] bytes (a smaller one is an
    /// `InvalidInput` error rather than the kernel's `EINVAL` loop); 4 KiB suits most loops.
    pub fn read_events(
        &mut self,
        buf: &mut [u8],
        mut f: impl FnMut(Event<'_>),
    ) -> io::Result<usize> {
        if buf.len() < MIN_READ_BUF {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "inotify read buffer smaller than one maximal event",
            ));
        }
        let mut total = 0;
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(n) {
                // An inotify fd never reports end of file; treat 0 as "nothing more" anyway.
                Ok(0) => return Ok(total),
                Ok(len) => total += parse_events(buf.get(..len).unwrap_or(&*buf), &mut f),
                Err(_) => {
                    let err = io::Error::last_os_error();
                    match err.kind() {
                        io::ErrorKind::Interrupted => continue,
                        io::ErrorKind::WouldBlock => return Ok(total),
                        _ => return Err(err),
                    }
                }
            }
        }
    }
}

impl AsFd for Inotify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Source for Inotify {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::ffi::OsString;
    use std::os::unix::net::UnixListener;
    use std::time::{Duration, Instant};

    const INOTIFY: Token = Token(3);

    /// An owned copy of an event, so tests can collect across reads.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        wd: WatchDescriptor,
        mask: EventMask,
        cookie: u32,
        name: Option<OsString>,
    }

    fn record(wd: i32, mask: u32, cookie: u32, name: &[u8], padded_len: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&wd.to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&cookie.to_ne_bytes());
        v.extend_from_slice(&padded_len.to_ne_bytes());
        v.extend_from_slice(name);
        v.resize(HEADER_LEN + padded_len as usize, 0);
        v
    }

    fn parse_all(buf: &[u8]) -> Vec<Seen> {
        let mut seen = Vec::new();
        parse_events(buf, |e| {
            seen.push(Seen {
                wd: e.wd,
                mask: e.mask,
                cookie: e.cookie,
                name: e.name.map(OsStr::to_os_string),
            })
        });
        seen
    }

    #[test]
    fn parses_an_overflow_record_without_a_name() {
        let buf = record(-1, libc::IN_Q_OVERFLOW, 0, b"", 0);
        let seen = parse_all(&buf);
        assert_eq!(seen.len(), 1);
        assert!(seen[0].mask.is_overflow());
        assert!(!seen[0].mask.is_create());
        assert_eq!(seen[0].wd.as_raw(), -1);
        assert_eq!(seen[0].name, None);
    }

    #[test]
    fn parses_padded_names_and_consecutive_records() {
        let mut buf = record(1, libc::IN_CREATE, 0, b"a.sock", 16);
        buf.extend(record(1, libc::IN_CREATE | libc::IN_ISDIR, 0, b"sub", 16));
        buf.extend(record(2, libc::IN_MOVED_FROM, 42, b"x", 4));
        buf.extend(record(2, libc::IN_IGNORED, 0, b"", 0));
        let seen = parse_all(&buf);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].name.as_deref(), Some(OsStr::new("a.sock")));
        assert!(seen[0].mask.is_create() && !seen[0].mask.is_dir());
        assert!(seen[1].mask.is_create() && seen[1].mask.is_dir());
        assert_eq!(seen[1].name.as_deref(), Some(OsStr::new("sub")));
        assert!(seen[2].mask.is_moved_from());
        assert_eq!(seen[2].cookie, 42);
        assert_eq!(seen[2].wd.as_raw(), 2);
        assert!(seen[3].mask.is_ignored());
        assert_eq!(seen[3].name, None);
    }

    #[test]
    fn truncated_records_are_dropped_without_panicking() {
        let full = record(1, libc::IN_DELETE, 0, b"gone.sock", 16);
        for cut in 0..full.len() {
            let mut buf = record(5, libc::IN_CREATE, 0, b"ok", 4);
            let whole = buf.len();
            buf.extend_from_slice(&full[..cut]);
            let seen = parse_all(&buf);
            assert_eq!(seen.len(), 1, "cut at {cut} of {whole}+{}", full.len());
            assert_eq!(seen[0].name.as_deref(), Some(OsStr::new("ok")));
        }
        // A length field far beyond the buffer, including u32::MAX.
        let mut buf = record(1, libc::IN_CREATE, 0, b"", 0);
        buf[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_all(&buf).is_empty());
    }

    #[test]
    fn a_name_without_nul_uses_the_whole_field() {
        let buf = record(1, libc::IN_CREATE, 0, b"abcd", 4);
        assert_eq!(parse_all(&buf)[0].name.as_deref(), Some(OsStr::new("abcd")));
    }

    #[test]
    fn read_buffer_too_small_is_rejected() {
        let mut ino = Inotify::new().unwrap();
        let mut small = [0u8; MIN_READ_BUF - 1];
        let err = ino.read_events(&mut small, |_| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// Polls and drains until `done(events so far)` or the bound passes.
    fn collect_until(
        poll: &mut Poll,
        ino: &mut Inotify,
        seen: &mut Vec<Seen>,
        done: impl Fn(&[Seen]) -> bool,
    ) {
        let mut events = Events::with_capacity(8);
        let mut buf = [0u8; 4096];
        let give_up = Instant::now() + Duration::from_secs(5);
        while !done(seen) {
            let now = Instant::now();
            assert!(now < give_up, "events never arrived; saw {seen:?}");
            match poll.poll(&mut events, Some(give_up - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("poll: {e}"),
            }
            if events.iter().any(|e| e.token() == INOTIFY) {
                ino.read_events(&mut buf, |e| {
                    seen.push(Seen {
                        wd: e.wd,
                        mask: e.mask,
                        cookie: e.cookie,
                        name: e.name.map(OsStr::to_os_string),
                    })
                })
                .unwrap();
            }
        }
    }

    fn named<'s>(seen: &'s [Seen], name: &str) -> impl Iterator<Item = &'s Seen> {
        seen.iter()
            .filter(move |s| s.name.as_deref() == Some(OsStr::new(name)))
    }

    #[test]
    fn sees_create_move_and_delete_through_mio() {
        let dir = tempfile::tempdir().unwrap();
        let mut poll = Poll::new().unwrap();
        let mut ino = Inotify::new().unwrap();
        poll.registry()
            .register(&mut ino, INOTIFY, Interest::READABLE)
            .unwrap();
        let wd = ino.add_watch(dir.path(), WatchMask::PLUGIN_DIR).unwrap();
        let mut seen = Vec::new();

        let sock = dir.path().join("p.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        collect_until(&mut poll, &mut ino, &mut seen, |s| {
            named(s, "p.sock").any(|e| e.mask.is_create())
                && named(s, "sub").any(|e| e.mask.is_create())
        });
        assert!(named(&seen, "sub").any(|e| e.mask.is_dir()));
        assert!(named(&seen, "p.sock").all(|e| !e.mask.is_dir() && e.wd == wd));

        std::fs::rename(&sock, dir.path().join("q.sock")).unwrap();
        collect_until(&mut poll, &mut ino, &mut seen, |s| {
            named(s, "q.sock").any(|e| e.mask.is_moved_to())
        });
        let from = named(&seen, "p.sock")
            .find(|e| e.mask.is_moved_from())
            .unwrap();
        let to = named(&seen, "q.sock")
            .find(|e| e.mask.is_moved_to())
            .unwrap();
        assert_eq!(from.cookie, to.cookie);
        assert_ne!(from.cookie, 0);

        drop(listener);
        std::fs::remove_file(dir.path().join("q.sock")).unwrap();
        collect_until(&mut poll, &mut ino, &mut seen, |s| {
            named(s, "q.sock").any(|e| e.mask.is_delete())
        });

        ino.rm_watch(wd).unwrap();
        collect_until(&mut poll, &mut ino, &mut seen, |s| {
            s.iter().any(|e| e.wd == wd && e.mask.is_ignored())
        });
    }

    #[test]
    fn sees_its_directory_deleted() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("watched");
        std::fs::create_dir(&dir).unwrap();
        let mut poll = Poll::new().unwrap();
        let mut ino = Inotify::new().unwrap();
        poll.registry()
            .register(&mut ino, INOTIFY, Interest::READABLE)
            .unwrap();
        let wd = ino.add_watch(&dir, WatchMask::PLUGIN_DIR).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let mut seen = Vec::new();
        collect_until(&mut poll, &mut ino, &mut seen, |s| {
            s.iter().any(|e| e.mask.is_ignored())
        });
        assert!(seen.iter().any(|e| e.wd == wd && e.mask.is_delete_self()));
        // The watch is gone with its directory.
        assert!(ino.rm_watch(wd).is_err());
    }

    #[test]
    fn onlydir_refuses_a_file_and_missing_paths_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let ino = Inotify::new().unwrap();
        let err = ino.add_watch(&file, WatchMask::PLUGIN_DIR).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        let err = ino
            .add_watch(&dir.path().join("missing"), WatchMask::PLUGIN_DIR)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
