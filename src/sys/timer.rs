//! A non-blocking `CLOCK_MONOTONIC` timerfd for the event loop.
//!
//! The sans-IO core reports its next deadline as an [`Instant`]; the loop arms this one timer to
//! it, registers the fd in its `Poll` and, on readiness, calls [`TimerFd::drain`] and then the
//! core's `handle_timeout(now)`. Spurious wakeups are harmless: the core treats an early timeout
//! as a no-op and the loop simply re-arms.
//!
//! Out of scope: keeping a table of deadlines (the core does that; this is one slot).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::cvt;

/// A one-shot monotonic timer whose expiry makes its fd readable.
///
/// Invariant: the fd is a timerfd opened `TFD_NONBLOCK | TFD_CLOEXEC` on `CLOCK_MONOTONIC`, the
/// clock std's [`Instant`] uses on Linux, so relative arming from an `Instant` is exact up to
/// the few nanoseconds between reading the clock and the syscall.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// Creates a disarmed timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes only integer arguments and returns a new fd or -1.
        let raw = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// Arms the timer to fire once at `deadline`, replacing any earlier or later arming.
    ///
    /// A deadline that is already due fires as soon as possible: the kernel reads an
    /// `it_value` of zero as "disarm", so a due deadline is armed 1 ns ahead instead.
    pub fn arm_at(&self, deadline: Instant) -> io::Result<()> {
        self.arm_after(deadline.saturating_duration_since(Instant::now()))
    }

    /// Arms the timer to fire once after `delay` (a zero delay fires as soon as possible).
    pub fn arm_after(&self, delay: Duration) -> io::Result<()> {
        let delay = if delay.is_zero() {
            Duration::from_nanos(1)
        } else {
            delay
        };
        self.settime(duration_to_timespec(delay))
    }

    /// Stops the timer; a pending, not yet drained expiry still leaves the fd readable until
    /// [`TimerFd::drain`] reads it.
    pub fn disarm(&self) -> io::Result<()> {
        self.settime(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        })
    }

    /// Reads the expiry count, clearing readiness. Returns 0 when the timer has not fired
    /// (`WouldBlock`, e.g. a spurious wakeup); retries on `EINTR`.
    pub fn drain(&self) -> io::Result<u64> {
        let mut expirations = [0u8; 8];
        loop {
            // SAFETY: the buffer is valid for writes of its full 8-byte length, the size the
            // kernel requires for a timerfd read.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            if n == 8 {
                return Ok(u64::from_ne_bytes(expirations));
            }
            if n >= 0 {
                // A timerfd read is all 8 bytes or an error; anything else is a kernel bug.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "short read from timerfd",
                ));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(err),
            }
        }
    }

    fn settime(&self, value: libc::timespec) -> io::Result<()> {
        let spec = libc::itimerspec {
            // One-shot: the loop re-arms to the core's next deadline after every wakeup.
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec for the duration of the call and the old-value
        // pointer may be null.
        cvt(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })?;
        Ok(())
    }
}

/// Converts a relative delay to a timespec, saturating at the largest representable time
/// (a deadline centuries away is as good as never).
fn duration_to_timespec(d: Duration) -> libc::timespec {
    match libc::time_t::try_from(d.as_secs()) {
        Ok(tv_sec) => libc::timespec {
            tv_sec,
            // Lossless: subsec_nanos() < 1e9 fits a c_long even where that is 32 bits.
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
        Err(_) => libc::timespec {
            tv_sec: libc::time_t::MAX,
            tv_nsec: 999_999_999,
        },
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Source for TimerFd {
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

    const TIMER: Token = Token(7);

    /// Polls until the timer has really expired (readable and `drain` counts an expiry) or
    /// `bound` has passed; returns when it was seen. Readiness alone is only a hint: a stale
    /// edge from an arming that was replaced drains 0 and is skipped, as the loop would.
    fn wait_for_timer(poll: &mut Poll, timer: &TimerFd, bound: Duration) -> Option<Instant> {
        let mut events = Events::with_capacity(8);
        let give_up = Instant::now() + bound;
        loop {
            let now = Instant::now();
            if now >= give_up {
                return None;
            }
            match poll.poll(&mut events, Some(give_up - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("poll: {e}"),
            }
            if events.iter().any(|e| e.token() == TIMER && e.is_readable()) {
                let seen = Instant::now();
                if timer.drain().expect("drain") > 0 {
                    return Some(seen);
                }
            }
        }
    }

    fn registered_timer() -> (Poll, TimerFd) {
        let poll = Poll::new().expect("poll");
        let mut timer = TimerFd::new().expect("timerfd");
        poll.registry()
            .register(&mut timer, TIMER, Interest::READABLE)
            .expect("register");
        (poll, timer)
    }

    #[test]
    fn fires_through_poll_not_before_its_deadline() {
        let (mut poll, timer) = registered_timer();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        timer.arm_at(deadline).unwrap();
        let fired = wait_for_timer(&mut poll, &timer, Duration::from_secs(5)).expect("timer fired");
        assert!(fired >= deadline, "fired {:?} early", deadline - fired);
        // Drained by the wait: no expiry left, and a spurious drain is not an error.
        assert_eq!(timer.drain().unwrap(), 0);
    }

    #[test]
    fn a_due_deadline_fires_instead_of_disarming() {
        let (mut poll, timer) = registered_timer();
        let past = Instant::now();
        std::thread::yield_now();
        timer.arm_at(past).unwrap();
        assert!(wait_for_timer(&mut poll, &timer, Duration::from_secs(5)).is_some());
        assert_eq!(timer.drain().unwrap(), 0, "one-shot: no second expiry");
    }

    #[test]
    fn rearming_earlier_wins() {
        let (mut poll, timer) = registered_timer();
        let start = Instant::now();
        timer.arm_at(start + Duration::from_secs(60)).unwrap();
        timer.arm_at(start + Duration::from_millis(20)).unwrap();
        let fired = wait_for_timer(&mut poll, &timer, Duration::from_secs(5))
            .expect("earlier arming fired");
        assert!(fired < start + Duration::from_secs(60));
        assert_eq!(timer.drain().unwrap(), 0, "one-shot: no second expiry");
    }

    #[test]
    fn rearming_later_postpones() {
        let (mut poll, timer) = registered_timer();
        let start = Instant::now();
        timer.arm_at(start + Duration::from_millis(10)).unwrap();
        let later = start + Duration::from_millis(150);
        timer.arm_at(later).unwrap();
        let fired =
            wait_for_timer(&mut poll, &timer, Duration::from_secs(5)).expect("later arming fired");
        assert!(
            fired >= later,
            "fired {:?} before the later deadline",
            later - fired
        );
        assert_eq!(timer.drain().unwrap(), 0, "one-shot: no second expiry");
    }

    #[test]
    fn disarm_stops_a_pending_timer() {
        let (mut poll, timer) = registered_timer();
        timer.arm_after(Duration::from_millis(20)).unwrap();
        timer.disarm().unwrap();
        // Wait well past the old deadline: nothing may arrive.
        assert!(wait_for_timer(&mut poll, &timer, Duration::from_millis(150)).is_none());
        assert_eq!(timer.drain().unwrap(), 0);
    }

    #[test]
    fn huge_delays_saturate_instead_of_failing() {
        let timer = TimerFd::new().unwrap();
        timer.arm_after(Duration::MAX).unwrap();
        assert_eq!(timer.drain().unwrap(), 0);
    }
}
