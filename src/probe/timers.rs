//! Every deadline of the event loop in one structure.
//!
//! The loop arms its one timerfd to [`Timers::next_deadline`] after every turn and calls
//! [`Timers::pop_expired`] when it wakes. Entries are never removed eagerly: a connection that
//! finished early leaves its deadline behind, and the stale entry is recognised by its
//! generation when it fires (see [`Timer::ConnDeadline`]), which keeps cancelling O(1).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Time to poll every plugin (the spy interval).
    SpyTick,
    /// Time to publish the merged spy reports (the publish interval).
    Publish,
    /// Time for the safety-net full rescan of the plugin root.
    Rescan,
    /// Sockets that inotify just announced are polled (after a short grace period).
    PollNew,
    /// The publishing layer needs the clock (backoff, re-resolution, websocket retry).
    Apps,
    /// A plugin or app connection's deadline. Stale when the slot's generation moved on.
    ConnDeadline {
        /// Slot of the connection.
        slot: usize,
        /// Generation the slot had when the deadline was set.
        generation: u64,
    },
}

/// A min-heap of `(deadline, timer)`; spurious and stale entries are the caller's no-ops.
#[derive(Default, Debug)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `timer` to fire at `at`.
    pub fn set(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The earliest deadline, if any: what the timerfd must be armed to.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }

    /// Pops entries off the front while `is_stale` says they are no-ops, so the timerfd is
    /// armed to a deadline that matters. Stale entries deeper in the heap wait their turn.
    pub fn drop_stale_front(&mut self, mut is_stale: impl FnMut(&Timer) -> bool) {
        while let Some(Reverse((_, timer))) = self.heap.peek() {
            if !is_stale(timer) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Number of pending entries, stale ones included (for tests and metrics).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no deadline is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set(t0 + Duration::from_millis(30), Timer::Publish);
        timers.set(t0 + Duration::from_millis(10), Timer::SpyTick);
        timers.set(t0 + Duration::from_millis(20), Timer::Rescan);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_expired(t0), None);
        let now = t0 + Duration::from_millis(25);
        assert_eq!(timers.pop_expired(now), Some(Timer::SpyTick));
        assert_eq!(timers.pop_expired(now), Some(Timer::Rescan));
        assert_eq!(timers.pop_expired(now), None);
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn stale_entries_at_the_front_are_dropped_and_live_ones_kept() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for slot in 0..4 {
            let at = t0 + Duration::from_millis(slot as u64);
            timers.set(
                at,
                Timer::ConnDeadline {
                    slot,
                    generation: 1,
                },
            );
        }
        timers.set(t0 + Duration::from_millis(2), Timer::Publish);
        // Slots 0 and 1 finished; 2 and 3 are live.
        timers.drop_stale_front(|t| matches!(t, Timer::ConnDeadline { slot, .. } if *slot < 2));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(2)));
    }
}
