//! The only module that makes raw system calls: the file descriptors and host facts the event
//! loop needs, wrapped in small safe types.
//!
//! In scope:
//! - [`timer::TimerFd`]: one non-blocking `CLOCK_MONOTONIC` timerfd, armed to an absolute
//!   [`std::time::Instant`]; the loop arms it to the earliest deadline of the sans-IO core.
//! - [`inotify::Inotify`]: a non-blocking inotify fd and a bounds-checked parser of its
//!   variable-length event records. inotify is a hint only; the rescan is the truth (STYLE §8).
//! - [`net::local_networks`]: the host's interface networks as CIDRs (`getifaddrs`).
//! - [`host`]: hostname, kernel release and version (`uname`), random probe ids (`getrandom`).
//! - [`cache::prefetch_read`]: a cache prefetch hint for the report encoder.
//!
//! Out of scope: deciding what to do with any of it. No protocol logic lives here, and nothing
//! here blocks: the fds are `O_NONBLOCK` and reads drain until `WouldBlock` (mio's "Draining
//! readiness"). Both fd types implement [`mio::event::Source`] by delegating to
//! [`mio::unix::SourceFd`], so they register in the loop's one `Poll` like any socket.
//!
//! This is the only module allowed `unsafe`; every block carries a `// SAFETY:` comment, and
//! every raw fd is owned by an [`std::os::fd::OwnedFd`] straight after the syscall returns it.
#![allow(unsafe_code)]

pub mod cache;
pub mod host;
pub mod inotify;
pub mod net;
pub mod timer;

use std::io;

/// Turns a `-1`-on-error libc return value into an `io::Result` carrying `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
