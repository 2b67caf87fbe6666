//! Memory for what a decoded report cannot borrow from its body.
//!
//! Owns [`DecodeArena`]: the unescaped copies of strings that had JSON escapes, metric sample
//! lists, sets of strings and a node's maps, bump-allocated and freed all at once. A report
//! decoded with [`decode_plugin_report_in`](super::decode_plugin_report_in) borrows these from
//! the arena as it borrows everything else from its body, so it holds no heap block of its own
//! for them. Those blocks were nearly all of a report's allocations (2,618 of a 1 MB report's
//! 2,663) and their mallocs and frees a tenth of the decode + merge + encode pipeline; the probe
//! keeps one arena, resetting it for each publish interval.

use std::borrow::Cow;

use super::Str;
use super::model::{InArena, Sample};

/// Bump-allocated memory that reports decoded with
/// [`decode_plugin_report_in`](super::decode_plugin_report_in) borrow from (for their unescaped
/// strings, sample lists, sets and node maps). Everything in it is freed at once by
/// [`DecodeArena::reset`] or drop, which the borrow checker allows only once no such report is
/// left.
#[derive(Debug, Default)]
pub struct DecodeArena {
    bump: bumpalo::Bump,
}

impl DecodeArena {
    /// An empty arena; it takes memory from the heap on first use.
    pub fn new() -> DecodeArena {
        DecodeArena::default()
    }

    /// Frees everything allocated so far at once, keeping the largest block for reuse (so a
    /// steady stream of similar reports stops allocating).
    pub fn reset(&mut self) {
        self.bump.reset();
    }

    /// Bytes taken from the heap for the arena's blocks.
    pub fn allocated_bytes(&self) -> usize {
        self.bump.allocated_bytes()
    }

    /// A copy of `samples` that lives as long as the arena.
    pub(crate) fn samples<'a>(&'a self, samples: &[Sample<'a>]) -> &'a [Sample<'a>] {
        self.bump.alloc_slice_copy(samples)
    }

    /// `strings` moved into the arena (`strings` is left empty), every one borrowed: an owned
    /// one is copied into the arena, since nothing in the arena is ever dropped.
    pub(crate) fn strs<'a>(&'a self, strings: &mut Vec<Str<'a>>) -> &'a [Str<'a>] {
        self.bump
            .alloc_slice_fill_iter(strings.drain(..).map(|s| match s {
                Cow::Borrowed(s) => Cow::Borrowed(s),
                Cow::Owned(s) => Cow::Borrowed(&*self.bump.alloc_str(&s)),
            }))
    }

    /// A map's entries moved into the arena (`entries` is left empty). The arena never drops
    /// them, so their values must own no heap memory ([`InArena`]).
    pub(crate) fn entries<'a, V: InArena>(
        &'a self,
        entries: &mut Vec<(Str<'a>, V)>,
    ) -> &'a [(Str<'a>, V)] {
        self.bump.alloc_slice_fill_iter(entries.drain(..))
    }

    /// An empty string with room for `capacity` bytes, in the arena.
    pub(crate) fn string_with_capacity(&self, capacity: usize) -> bumpalo::collections::String<'_> {
        bumpalo::collections::String::with_capacity_in(capacity, &self.bump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Time;

    #[test]
    fn copies_live_in_the_arena_until_reset() {
        let mut arena = DecodeArena::new();
        assert_eq!(arena.allocated_bytes(), 0, "nothing taken before first use");
        let samples = [Sample {
            date: Time::from_unix_nanos(1),
            value: 2.5.into(),
        }];
        let copied = arena.samples(&samples);
        let mut text = arena.string_with_capacity(6);
        text.push_str("héllo");
        let text = text.into_bump_str();
        assert_eq!(copied, &samples);
        assert_eq!(text, "héllo");
        assert!(!std::ptr::eq(copied, &samples[..]), "a copy, not the input");
        let taken = arena.allocated_bytes();
        assert!(taken > 0);
        arena.reset();
        // The block is kept, so the same copies again take nothing more.
        arena.string_with_capacity(6).push_str("héllo");
        arena.samples(&samples);
        assert_eq!(arena.allocated_bytes(), taken);
    }
}
