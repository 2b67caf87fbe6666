//! The fast path of decoding: a strict, hand-written scanner for the common shape of reports.
//!
//! Owns nothing of the format's rules: it mirrors the serde decoder in `decode.rs`, which
//! stays the reference. It takes only input it fully understands (well-formed JSON, no legacy
//! node fields, nothing lenient beyond the simple cases)
//! and returns `None` ("bail") on anything else, including every error; the caller then
//! decodes the document again with the serde decoder, which also produces the error text.
//! So the fast path never has to be right about rejecting a document, only about what it
//! accepts, and property tests check it against the reference on generated and mutated input.
//!
//! Why it exists: serde's per-value visitor calls cost about half of decoding time; this
//! scanner walks the bytes once and fills the model directly.

use std::borrow::Cow;

use super::arena::DecodeArena;
use super::decode::{Counter, LegacyControl, apply_counters, apply_latest_controls};
use super::model::{
    Column, Control, DnsRecord, InArena, LatestEntry, MetadataTemplate, Metric, MetricTemplate,
    Node, NodeSet, Number, PluginSpec, PluginSpecs, Sample, Samples, SortedMap, StringSet,
    TableTemplate, Topology,
};
use super::time::{QuotedTimes, Recognised, Time};
use super::{Report, Str, TopologyKind};

/// Bail out of the fast path.
type Fast<T> = Option<T>;

/// Deeper than this, leave the document to the serde decoder (and its recursion limit).
const MAX_DEPTH: u32 = 64;

/// Decodes `text` over `report` if the fast path understands all of it. On `None` the report
/// is left half-filled and the caller must start again from a fresh base.
pub(crate) fn decode<'a>(
    text: &'a str,
    report: &mut Report<'a>,
    now: Time,
    arena: Option<&'a DecodeArena>,
) -> Fast<()> {
    let mut p = Scanner::new(text, now);
    p.arena = arena;
    p.ws();
    if p.peek()? != b'{' {
        return None;
    }
    p.report(report)
    // Bytes after the first value are ignored (spec §1.7).
}

/// Index of the first `"`, `\\` or control byte in `s` (the end of a simple string), sixteen
/// bytes at a time.
#[inline]
pub(crate) fn special_byte(s: &[u8]) -> Option<usize> {
    // Two words per step, tested with one branch: node IDs and set items run to dozens of
    // bytes, and the loop's own bookkeeping cost as much as a word's test.
    let mut pairs = s.chunks_exact(16);
    let mut i = 0;
    for pair in &mut pairs {
        let (lo, hi) = pair.split_at(8);
        let lo = special_flags(u64::from_le_bytes(lo.try_into().unwrap_or_default()));
        let hi = special_flags(u64::from_le_bytes(hi.try_into().unwrap_or_default()));
        if lo | hi != 0 {
            let at = if lo != 0 {
                lo.trailing_zeros() / 8
            } else {
                8 + hi.trailing_zeros() / 8
            };
            return Some(i + at as usize);
        }
        i += 16;
    }
    let mut rest = pairs.remainder();
    if let Some((word, after)) = rest.split_first_chunk::<8>() {
        if let Some(at) = special_in_word(u64::from_le_bytes(*word)) {
            return Some(i + at);
        }
        i += 8;
        rest = after;
    }
    if rest.is_empty() {
        return None;
    }
    // Most keys and many values are shorter than a word: test the tail as one word padded
    // with spaces (never special) instead of byte by byte.
    special_in_word(space_padded_word(rest)).map(|at| i + at)
}

/// `tail` (shorter than eight bytes) as a little-endian word, padded with spaces.
///
/// Built from two overlapping loads of four, two or one bytes: a short copy of variable length
/// otherwise becomes a call to `memcpy`, which costs more than the few bytes it moves.
#[inline]
pub(crate) fn space_padded_word(tail: &[u8]) -> u64 {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let len = tail.len();
    debug_assert!(len < 8);
    let word = match len {
        0 => 0,
        1 => u64::from(tail[0]),
        2 | 3 => {
            let lo = u16::from_le_bytes([tail[0], tail[1]]);
            let hi = u16::from_le_bytes([tail[len - 2], tail[len - 1]]);
            u64::from(lo) | u64::from(hi) << (8 * (len - 2))
        }
        _ => {
            let lo = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
            let hi =
                u32::from_le_bytes([tail[len - 4], tail[len - 3], tail[len - 2], tail[len - 1]]);
            u64::from(lo) | u64::from(hi) << (8 * (len - 4))
        }
    };
    // `len < 8`, so the shift stays inside the word.
    word | SPACES.checked_shl(8 * len as u32).unwrap_or(0)
}

/// Index of the first `"`, `\\` or control byte in the little-endian `word`.
#[inline]
pub(crate) fn special_in_word(v: u64) -> Option<usize> {
    let flags = special_flags(v);
    (flags != 0).then(|| (flags.trailing_zeros() / 8) as usize)
}

/// The high bit of each byte of the little-endian `v` that may be `"`, `\\` or a control
/// byte; the lowest one set is exact (it marks the first such byte), higher ones may not be.
#[inline]
pub(crate) fn special_flags(v: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Flipping bit 1 turns `"` (0x22) into 0x20 and keeps the control bytes below 0x20 (and
    // everything else at or above 0x21), so one "below 0x21" test finds both; the backslash
    // is a zero after its own flip. A byte is flagged when its test's subtraction borrows into
    // its high bit while its own high bit is clear; the lowest flag is exact because borrows
    // only run upwards from a flagged byte.
    let quote_or_control = v ^ (ONES * 0x02);
    let slash = v ^ (ONES * u64::from(b'\\'));
    (quote_or_control.wrapping_sub(ONES * 0x21) & !quote_or_control
        | slash.wrapping_sub(ONES) & !slash)
        & HIGH
}

/// `10^0` … `10^22`: every one is exact in an `f64`, so equal to the literal.
const POW10: [f64; 23] = {
    let mut t = [1.0; 23];
    let mut i = 1;
    while i < 23 {
        t[i] = t[i - 1] * 10.0;
        i += 1;
    }
    t
};

/// A JSON number (already checked by [`Scanner::number`]) read to the very `f64` serde_json
/// reads it to, for the simple cases: at most 19 digits (so serde_json's `u64` significand
/// cannot overflow) and a decimal exponent within ±22. serde_json (without its
/// `float_roundtrip` feature) computes `significand as f64` times or divided by `10^exp` from
/// its table, which holds exactly these values; so do we. `None` for everything else.
pub(crate) fn simple_f64(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let (negative, mut i) = match b.first()? {
        b'-' => (true, 1),
        _ => (false, 0),
    };
    let mut significand: u64 = 0;
    let mut digits = 0;
    let mut exp: i32 = 0;
    let mut in_fraction = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 19 {
                    return None;
                }
                significand = significand * 10 + u64::from(c - b'0');
                if in_fraction {
                    exp -= 1;
                }
            }
            b'.' if !in_fraction => in_fraction = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        i += 1;
    }
    if let Some(rest) = text.get(i + 1..).filter(|_| i < b.len()) {
        let (sign, digits) = match rest.as_bytes().first()? {
            b'-' => (-1, rest.get(1..)?),
            b'+' => (1, rest.get(1..)?),
            _ => (1, rest),
        };
        // More than three digits is either far out of range or leading zeros; leave both.
        if digits.is_empty() || digits.len() > 3 {
            return None;
        }
        exp += sign * digits.parse::<i32>().ok()?;
    }
    let pow = *POW10.get(exp.unsigned_abs() as usize)?;
    let f = significand as f64;
    let f = if exp >= 0 { f * pow } else { f / pow };
    Some(if negative { -f } else { f })
}

/// Where the run of ASCII digits starting at `j` ends.
fn digits_end(b: &[u8], mut j: usize) -> usize {
    while let Some(word) = b.get(j..j + 8) {
        let n = leading_digits(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        j += n;
        if n < 8 {
            return j;
        }
    }
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    j
}

/// Where the number starting at `start` ends if it is plain: `-?int(.frac)?`, no exponent, at
/// most [`Number::MAX_TEXT_INT_DIGITS`] integer digits. `None` for any other spelling.
#[inline(always)]
pub(crate) fn plain_number_end(b: &[u8], start: usize) -> Option<usize> {
    let int_start = start + usize::from(b.get(start) == Some(&b'-'));
    let int_end = match b.get(int_start) {
        Some(b'0') => int_start + 1,
        Some(b'1'..=b'9') => digits_end(b, int_start + 1),
        _ => return None,
    };
    if int_end - int_start > Number::MAX_TEXT_INT_DIGITS {
        return None;
    }
    let end = match b.get(int_end) {
        Some(b'.') => {
            let end = digits_end(b, int_end + 1);
            (end > int_end + 1).then_some(end)?
        }
        _ => int_end,
    };
    (!matches!(b.get(end), Some(b'e' | b'E'))).then_some(end)
}

/// Reads the run of ASCII digits at `b[j..]` into `significand` (wrapping: callers reject runs
/// too long for it by their count). Returns the index after the run and its length.
#[inline]
fn digit_run(b: &[u8], mut j: usize, significand: &mut u64) -> (usize, u32) {
    let start = j;
    // Up to eight digits per step: sample values have up to seventeen.
    while let Some(word) = b.get(j..j + 8) {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let n = leading_digits(word);
        if n == 0 {
            return (j, (j - start) as u32);
        }
        *significand = significand
            .wrapping_mul(POW10_U64[n])
            .wrapping_add(u64::from(digits_value(word, n)));
        j += n;
        if n < 8 {
            return (j, (j - start) as u32);
        }
    }
    while let Some(c @ b'0'..=b'9') = b.get(j).copied() {
        *significand = significand
            .wrapping_mul(10)
            .wrapping_add(u64::from(c - b'0'));
        j += 1;
    }
    (j, (j - start) as u32)
}

/// `10^0` … `10^8` as integers.
const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many of the little-endian `word`'s bytes, from the first, are ASCII digits.
#[inline]
pub(crate) fn leading_digits(word: u64) -> usize {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // A byte is a digit when it is 0x3_ and still 0x3_ after adding 6. A carry out of a byte
    // (only from 0xFA..=0xFF, which UTF-8 text never holds) could only touch later bytes.
    let not_digit = ((word & HIGH_NIBBLES) ^ ZEROS)
        | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) ^ ZEROS);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1..=8) bytes of the little-endian `word`, all ASCII digits.
#[inline]
pub(crate) fn digits_value(word: u64, n: usize) -> u32 {
    // Digit values in the low `n` bytes, shifted up so the missing ones read as leading zeros.
    let v = word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - n));
    // Pairs, then quads, then all eight (the SWAR reduction of fast_float's
    // `parse_eight_digits_unrolled`).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = (v & 0x0000_00FF_0000_00FF)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    v as u32
}

/// Bytes [`Scanner::push_sample_as_go_writes_it`] reads a sample in: `{"date":"`, a time of at
/// most 35 bytes and its quote, `,"value":` and `}` leave 42 for the number, which is more
/// than Go writes.
const SAMPLE_WINDOW: usize = 96;

/// What the samples of one metric share when spelt as Go writes them, learnt from one of
/// them: the bytes before the seconds (`{"date":"`, the date, hour and minute) and the bytes
/// after them up to the value (the time's tail, its quote and `,"value":`). A metric's
/// samples are a second apart, so a later one mostly repeats both: it is read by comparing
/// them as a few words and reading its two second digits instead of recognising its time
/// again (reading a sample went from about 266 instructions to 205).
#[derive(Clone, Copy)]
struct SampleFrame {
    /// Bytes 0..16 and 16..26 (under [`SampleFrame::HEAD_MASK`]) of the sample.
    head: [u128; 2],
    /// Bytes from 28 to the value, as two words under `after_mask`.
    after: [u128; 2],
    after_mask: [u128; 2],
    /// Where the value starts.
    value_at: usize,
    /// The time at second 0 of the minute, with the tail's fraction and offset.
    minute: Time,
    /// Whether the time's tail is written back as it is.
    as_written: bool,
}

impl SampleFrame {
    /// Bytes 16..26 of the head within a word of bytes 16..32.
    const HEAD_MASK: u128 = u128::MAX >> (8 * 6);

    /// The frame of a sample spelt as Go writes it at the start of `w`, whose time was read
    /// as `date` (`as_written` as [`Recognised`] says) and whose value starts at `value_at`.
    #[inline]
    fn learn(
        w: &[u8; SAMPLE_WINDOW],
        date: Time,
        value_at: usize,
        as_written: bool,
    ) -> Option<Self> {
        let second = two_digits(w[26], w[27])?;
        let after_len = value_at.checked_sub(28).filter(|&n| n <= 32)?;
        let mut after = [0u8; 32];
        after[..after_len].copy_from_slice(&w[28..value_at]);
        let mask = |n: usize| {
            u128::MAX
                .checked_shr(8 * (16 - n.min(16)) as u32)
                .unwrap_or(0)
        };
        Some(SampleFrame {
            head: [word16(w, 0), word16(w, 16) & Self::HEAD_MASK],
            after: [word16(&after, 0), word16(&after, 16)],
            after_mask: [mask(after_len), mask(after_len.saturating_sub(16))],
            value_at,
            minute: date.plus_secs(-i64::from(second)),
            as_written,
        })
    }

    /// The time of the sample at the start of `w` and where its value starts, when it is in
    /// this frame.
    #[inline(always)]
    fn read(&self, w: &[u8; SAMPLE_WINDOW]) -> Option<(Time, usize)> {
        let differs = (word16(w, 0) ^ self.head[0])
            | (word16(w, 16) ^ self.head[1]) & Self::HEAD_MASK
            | (word16(w, 28) ^ self.after[0]) & self.after_mask[0]
            | (word16(w, 44) ^ self.after[1]) & self.after_mask[1];
        if differs != 0 {
            return None;
        }
        let second = two_digits(w[26], w[27])?;
        Some((self.minute.plus_secs(i64::from(second)), self.value_at))
    }
}

/// The 16 bytes of `b` from `at` as a little-endian word.
#[inline(always)]
fn word16<const N: usize>(b: &[u8; N], at: usize) -> u128 {
    let mut word = [0u8; 16];
    if let Some(bytes) = b.get(at..at + 16) {
        word.copy_from_slice(bytes);
    }
    u128::from_le_bytes(word)
}

/// The seconds `00` to `59` spelt by the two digits `tens` and `ones`.
#[inline(always)]
fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    let (tens, ones) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    (tens < 6 && ones < 10).then(|| u32::from(tens) * 10 + u32::from(ones))
}

/// At the start of `b`: `open` (`{"key":"`), a timestamp `times` recognises, then `next`
/// (`,"value":`). Returns the time and where the value starts (see
/// [`Scanner::go_spelt_time_then`]).
#[inline(always)]
fn go_spelt_time_at_start<const N: usize>(
    times: &mut QuotedTimes,
    b: &[u8],
    open: &[u8; N],
    next: &[u8; 9],
) -> Option<(Recognised, usize)> {
    if b.get(..N)? != open.as_slice() {
        return None;
    }
    let time = times.recognise(b.get(N..)?)?;
    let value_at = N + time.len;
    (b.get(value_at..value_at + 9)? == next.as_slice()).then_some((time, value_at + 9))
}

/// A sample spelt `{"date":"…","value":…}` with a plain number at the start of `b`: the
/// sample, its length, and whether encoding it writes this same text.
#[inline(always)]
fn go_spelt_sample_at_start<'a>(
    times: &mut QuotedTimes,
    b: &'a [u8],
) -> Option<(Sample<'a>, usize, bool)> {
    let (date, at) = go_spelt_time_at_start(times, b, br#"{"date":""#, br#","value":"#)?;
    let (sample, len) = sample_with_value_at(b, at, date.time)?;
    Some((sample, len, date.as_written))
}

/// The sample at the start of `b` dated `date` whose plain number value starts at `at` and is
/// followed by the closing `}`, and the sample's length.
#[inline(always)]
fn sample_with_value_at(b: &[u8], at: usize, date: Time) -> Option<(Sample<'_>, usize)> {
    // In a window, a number running to its end has no `}` inside it and is not read here.
    let end = plain_number_end(b, at)?;
    let (Some(text), Some(b'}')) = (b.get(at..end), b.get(end)) else {
        return None;
    };
    let sample = Sample {
        date,
        // Kept text, written back as it is.
        value: Number::checked_text(text),
    };
    Some((sample, end + 1))
}

/// Four hex digits.
fn hex4(s: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in s {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    /// Invariant: `i <= b.len()` and `i` is on a char boundary whenever a slice is taken.
    i: usize,
    depth: u32,
    /// Recent timestamps' dates and tails: most timestamps are recognised from these.
    times: QuotedTimes,
    /// Scratch space for one metric's samples.
    samples: Vec<Sample<'a>>,
    /// The frame of the last sample read as Go writes it.
    frame: Option<SampleFrame>,
    /// Scratch space for one node's maps, each copied out once at its exact size (`sets`
    /// serves `parents` too).
    latest: SortedMap<'a, LatestEntry<'a>>,
    sets: SortedMap<'a, StringSet<'a>>,
    metrics: SortedMap<'a, Metric<'a>>,
    /// Scratch space for one string list.
    strings: Vec<Str<'a>>,
    /// Stamps legacy counters (spec §4.3).
    now: Time,
    /// Where what the report cannot borrow from the body goes (unescaped strings, sample
    /// lists, sets, a node's maps); the heap when `None`.
    arena: Option<&'a DecodeArena>,
}

/// A string being unescaped into, on the heap or in a [`DecodeArena`]: sized beforehand, so
/// neither ever grows.
trait Unescaped {
    fn push(&mut self, c: char);
    fn push_str(&mut self, s: &str);
}

impl Unescaped for String {
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

impl Unescaped for bumpalo::collections::String<'_> {
    fn push(&mut self, c: char) {
        bumpalo::collections::String::push(self, c);
    }
    fn push_str(&mut self, s: &str) {
        bumpalo::collections::String::push_str(self, s);
    }
}

/// What a scalar token is, for the lenient rules.
enum Scalar<'a> {
    /// A string (only skipped; string fields read strings directly).
    Str,
    Null,
    Bool(bool),
    /// The literal text of a number and whether it is a plain integer (no fraction,
    /// exponent, or `-0`).
    Num(&'a str, bool),
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, now: Time) -> Scanner<'a> {
        Scanner {
            text,
            b: text.as_bytes(),
            i: 0,
            depth: 0,
            times: QuotedTimes::default(),
            // Room for what a node of Scope's usually holds, so a report's first nodes do not
            // grow the scratch space step by step (a 33 kB report: 29 allocations, not 33).
            samples: Vec::with_capacity(32),
            frame: None,
            latest: SortedMap::with_capacity(16),
            sets: SortedMap::with_capacity(8),
            metrics: SortedMap::with_capacity(8),
            strings: Vec::with_capacity(16),
            now,
            arena: None,
        }
    }

    #[inline]
    fn peek(&self) -> Fast<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Fast<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Fast<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string: borrowed when it has no escapes, unescaped into an owned string otherwise.
    /// Raw control characters and bad escapes bail.
    #[inline]
    fn string(&mut self) -> Fast<Str<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = start + special_byte(self.b.get(start..)?)?;
        match *self.b.get(end)? {
            b'"' => {
                self.i = end + 1;
                // The quotes are ASCII, so both ends are char boundaries. Cut as two half-open
                // ranges: `get(start..end)` on a `str` stayed an out-of-line call.
                let text = self.text.get(..end)?.get(start..)?;
                Some(Cow::Borrowed(text))
            }
            b'\\' => self.escaped_string(start, end),
            _ => None,
        }
    }

    /// The rest of a string from its first backslash at `j`.
    fn escaped_string(&mut self, start: usize, j: usize) -> Fast<Str<'a>> {
        // Unescaping never lengthens text (`\uXXXX` is at most three UTF-8 bytes, a pair
        // four), so finding the closing quote first sizes the string once, without growing.
        let mut end = j;
        loop {
            match *self.b.get(end)? {
                b'"' => break,
                // Skipping the escaped byte is enough: `\uXXXX`'s hex digits are not special.
                b'\\' => end += 2,
                _ => return None,
            }
            end += special_byte(self.b.get(end..)?)?;
        }
        let capacity = end - start;
        let Some(arena) = self.arena else {
            let mut out = String::with_capacity(capacity);
            self.unescape_into(&mut out, start, j)?;
            return Some(Cow::Owned(out));
        };
        let mut out = arena.string_with_capacity(capacity);
        self.unescape_into(&mut out, start, j)?;
        Some(Cow::Borrowed(out.into_bump_str()))
    }

    /// Writes the string that starts at `start` and has its first backslash at `j` into `out`
    /// unescaped, and moves past its closing quote.
    fn unescape_into(&mut self, out: &mut impl Unescaped, start: usize, mut j: usize) -> Fast<()> {
        out.push_str(self.text.get(start..j)?);
        loop {
            match *self.b.get(j)? {
                b'"' => {
                    self.i = j + 1;
                    return Some(());
                }
                b'\\' => {
                    let esc = *self.b.get(j + 1)?;
                    j += 2;
                    out.push(match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = hex4(self.b.get(j..j + 4)?)?;
                            j += 4;
                            if (0xD800..0xDC00).contains(&hi) {
                                // A surrogate pair; a lone half is an error (reference path).
                                if self.b.get(j..j + 2)? != b"\\u" {
                                    return None;
                                }
                                let lo = hex4(self.b.get(j + 2..j + 6)?)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                j += 6;
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)?
                            }
                        }
                        _ => return None,
                    });
                }
                _ => return None,
            }
            let run = special_byte(self.b.get(j..)?)?;
            // `j` follows an ASCII escape, so it is a char boundary.
            out.push_str(self.text.get(j..j + run)?);
            j += run;
        }
    }

    /// A number in strict JSON grammar; returns its text and whether it is a plain integer.
    fn number(&mut self) -> Fast<(&'a str, bool)> {
        let start = self.i;
        let mut j = start;
        let at = |j: usize| self.b.get(j).copied();
        if at(j) == Some(b'-') {
            j += 1;
        }
        match at(j)? {
            b'0' => j += 1,
            b'1'..=b'9' => {
                while at(j).is_some_and(|c| c.is_ascii_digit()) {
                    j += 1;
                }
            }
            _ => return None,
        }
        let int_end = j;
        if at(j) == Some(b'.') {
            j += 1;
            if !at(j)?.is_ascii_digit() {
                return None;
            }
            while at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
        }
        if matches!(at(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !at(j)?.is_ascii_digit() {
                return None;
            }
            while at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
        }
        self.i = j;
        let text = self.text.get(start..j)?;
        // serde_json reads `-0` as a float.
        let plain_int = j == int_end && text != "-0";
        Some((text, plain_int))
    }

    fn scalar(&mut self) -> Fast<Scalar<'a>> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| Scalar::Str),
            b'n' => self.literal(b"null").map(|_| Scalar::Null),
            b't' => self.literal(b"true").map(|_| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|_| Scalar::Bool(false)),
            b'-' | b'0'..=b'9' => self.number().map(|(t, i)| Scalar::Num(t, i)),
            _ => None,
        }
    }

    /// Consumes `null` if it is next.
    fn null(&mut self) -> bool {
        self.ws();
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// Walks an object, calling `field` with each key; `field` must consume the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, Str<'a>) -> Fast<()>) -> Fast<()> {
        self.eat(b'{')?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let key = self.string()?;
                self.eat(b':')?;
                field(self, key)?;
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Walks an array, calling `item` for each element; `item` must consume it.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Fast<()>) -> Fast<()> {
        self.eat(b'[')?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Skips any well-formed value (unknown keys, spec §1.3).
    fn skip(&mut self) -> Fast<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(|p, _| p.skip()),
            b'[' => self.array(|p| p.skip()),
            _ => self.scalar().map(|_| ()),
        }
    }

    // ---- typed scalars (the lenient rules of spec §1.6, simple cases only) ----------

    fn str_value(&mut self) -> Fast<Str<'a>> {
        self.ws();
        // Strings first: they are nearly all of the values.
        match self.peek()? {
            b'"' => self.string(),
            b'n' => self.literal(b"null").map(|_| Cow::Borrowed("")),
            b't' => self.literal(b"true").map(|_| Cow::Borrowed("true")),
            b'f' => self.literal(b"false").map(|_| Cow::Borrowed("false")),
            // Only integers that fit 64 bits: their text is what the reference rebuilds.
            // Other numbers (floats, `-0`, huge or out-of-range ones) are left to it.
            b'-' | b'0'..=b'9' => match self.number()? {
                (text, true) if text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok() => {
                    Some(Cow::Borrowed(text))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn int_value(&mut self) -> Fast<i64> {
        match self.scalar()? {
            Scalar::Null => Some(0),
            Scalar::Num(text, true) => text.parse().ok(),
            _ => None,
        }
    }

    fn uint_value(&mut self) -> Fast<u64> {
        match self.scalar()? {
            Scalar::Null => Some(0),
            Scalar::Num(text, true) if !text.starts_with('-') => text.parse().ok(),
            _ => None,
        }
    }

    /// A float field. Sample values are most numbers of a report, so the common forms
    /// (`-?int(.frac)?` of at most 19 digits and at most 22 fraction digits) are read in one
    /// pass here; the rest goes through [`Scanner::float_value_general`]. Both give the
    /// reference's bits (see [`simple_f64`]).
    fn float_value(&mut self) -> Fast<f64> {
        self.ws();
        let start = self.i;
        let at = |j: usize| self.b.get(j).copied();
        let mut j = start;
        let negative = at(j) == Some(b'-');
        if negative {
            j += 1;
        }
        let mut significand: u64 = 0;
        let mut digits = 0u32;
        match at(j) {
            Some(b'0') => {
                j += 1;
                digits = 1;
            }
            Some(b'1'..=b'9') => {
                let n;
                (j, n) = digit_run(self.b, j, &mut significand);
                digits += n;
            }
            _ => return self.float_value_general(),
        }
        let mut fraction = 0u32;
        if at(j) == Some(b'.') {
            (j, fraction) = digit_run(self.b, j + 1, &mut significand);
            if fraction == 0 {
                // `1.` is malformed; the reference names the fault.
                return None;
            }
        }
        if digits + fraction > 19 || matches!(at(j), Some(b'e' | b'E')) {
            return self.float_value_general();
        }
        let value = if fraction == 0 {
            // A plain integer: the same conversion as `float_value_general` (through `i64`,
            // whose range it must fit).
            if significand > i64::MAX as u64 {
                return self.float_value_general();
            }
            significand as f64
        } else {
            let pow = *POW10.get(fraction as usize)?;
            significand as f64 / pow
        };
        self.i = j;
        Some(if negative { -value } else { value })
    }

    /// A sample value: a plain number (`-?int(.frac)?`) is kept as its text, unread (see
    /// [`Number`]); exponents, quoted numbers and `null` are read as floats.
    fn number_value(&mut self) -> Fast<Number<'a>> {
        self.ws();
        match plain_number_end(self.b, self.i) {
            Some(end) => {
                let text = self.b.get(self.i..end)?;
                self.i = end;
                Some(Number::checked_text(text))
            }
            // Malformed spellings included: the float reader bails on them as well.
            None => self.float_value().map(Number::from),
        }
    }

    fn float_value_general(&mut self) -> Fast<f64> {
        match self.scalar()? {
            Scalar::Null => Some(0.0),
            Scalar::Num(text, true) => text.parse::<i64>().ok().map(|v| v as f64),
            // The same arithmetic as the reference path's parser, so the same rounding.
            Scalar::Num(text, false) => {
                simple_f64(text).or_else(|| serde_json::from_str::<f64>(text).ok())
            }
            _ => None,
        }
    }

    fn bool_value(&mut self) -> Fast<bool> {
        match self.scalar()? {
            Scalar::Null => Some(false),
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A time field: `null` leaves it as it is (spec §1.9).
    fn time_into(&mut self, into: &mut Time) -> Fast<()> {
        if !self.null() {
            *into = self.time_string()?;
        }
        Some(())
    }

    /// A timestamp string, recognised from recent ones when it can be (see [`QuotedTimes`]).
    #[inline]
    fn time_string(&mut self) -> Fast<Time> {
        if self.peek()? != b'"' {
            return None;
        }
        if let Some(b) = self.b.get(self.i + 1..)
            && let Some(hit) = self.times.recognise(b)
        {
            self.i += 1 + hit.len;
            return Some(hit.time);
        }
        match self.string()? {
            Cow::Borrowed(s) => {
                let t = Time::parse(s).ok()?;
                self.times.remember(s.as_bytes(), t);
                Some(t)
            }
            Cow::Owned(s) => Time::parse(&s).ok(),
        }
    }

    // ---- collections -----------------------------------------------------------------

    /// A data map: `null` empties it, each key's value is decoded over the existing one.
    fn map_into<V: Default + Clone>(
        &mut self,
        map: &mut SortedMap<'a, V>,
        mut value: impl FnMut(&mut Self, &mut V) -> Fast<()>,
    ) -> Fast<()> {
        if self.null() {
            map.clear();
            return Some(());
        }
        self.object(|p, key| value(p, map.slot(key)?))
    }

    /// One of a node's maps into `target`: built in a reused map (`scratch` picks it) and
    /// then stored at its exact size, in the arena if there is one. A node's maps were a heap
    /// block each, plus the reallocations of growing into it (a latest map's seven to ten
    /// entries took two). A key that comes again decodes over the map it filled (spec §4.2).
    fn node_map<V: InArena + Default>(
        &mut self,
        target: &mut SortedMap<'a, V>,
        scratch: fn(&mut Self) -> &mut SortedMap<'a, V>,
        value: impl FnMut(&mut Self, &mut V) -> Fast<()>,
    ) -> Fast<()> {
        if !target.is_empty() {
            return self.map_into(target, value);
        }
        let mut map = std::mem::take(scratch(self));
        map.clear();
        self.map_into(&mut map, value)?;
        *target = map.drain_exact(self.arena);
        *scratch(self) = map;
        Some(())
    }

    /// The strings of a list (none for `null`) in the reused scratch vector, which the caller
    /// drains and gives back: lists are copied out at their exact size, since growing a fresh
    /// vector reallocated every list longer than four.
    fn scratch_strings(&mut self) -> Fast<Vec<Str<'a>>> {
        let mut items = std::mem::take(&mut self.strings);
        items.clear();
        if !self.null() {
            self.array(|p| {
                items.push(p.str_value()?);
                Some(())
            })?;
        }
        Some(items)
    }

    fn string_list(&mut self) -> Fast<Vec<Str<'a>>> {
        let mut items = self.scratch_strings()?;
        let mut list = Vec::with_capacity(items.len());
        list.append(&mut items);
        self.strings = items;
        Some(list)
    }

    fn string_set(&mut self) -> Fast<StringSet<'a>> {
        let mut items = self.scratch_strings()?;
        let set = StringSet::from_unsorted_scratch(&mut items, self.arena);
        self.strings = items;
        Some(set)
    }

    /// A struct: `null` resets it, an object fills the named fields.
    fn struct_into<T: Default>(
        &mut self,
        target: &mut T,
        mut field: impl FnMut(&mut Self, &mut T, &str) -> Fast<()>,
    ) -> Fast<()> {
        if self.null() {
            *target = T::default();
            return Some(());
        }
        self.object(|p, key| field(p, target, &key))
    }

    // ---- the report ------------------------------------------------------------------

    fn report(&mut self, r: &mut Report<'a>) -> Fast<()> {
        self.object(|p, key| {
            match &*key {
                "TS" => p.time_into(&mut r.ts)?,
                "DNS" => p.map_into(&mut r.dns, Self::dns_record)?,
                "nodes" => p.map_into(&mut r.bug_dns, Self::dns_record)?,
                "Sampling" => p.struct_into(&mut r.sampling, |p, s, k| {
                    match k {
                        "Count" => s.count = p.uint_value()?,
                        "Total" => s.total = p.uint_value()?,
                        _ => p.skip()?,
                    }
                    Some(())
                })?,
                "Window" => r.window_ns = p.int_value()?,
                "Shortcut" => r.shortcut = p.bool_value()?,
                "Plugins" => {
                    let mut specs = PluginSpecs::default();
                    if !p.null() {
                        p.array(|p| {
                            let mut spec = PluginSpec::default();
                            p.plugin_spec(&mut spec)?;
                            specs.insert(spec);
                            Some(())
                        })?;
                    }
                    r.plugins = specs;
                }
                "ID" => r.id = p.str_value()?,
                other => match TopologyKind::from_wire_key(other) {
                    Some(k) => p.topology(r.topology_mut(k))?,
                    None => p.skip()?,
                },
            }
            Some(())
        })
    }

    fn plugin_spec(&mut self, spec: &mut PluginSpec<'a>) -> Fast<()> {
        // A `null` element would be a default spec; leave that to the reference path.
        self.ws();
        if self.peek()? != b'{' {
            return None;
        }
        self.object(|p, key| {
            match &*key {
                "id" => spec.id = p.str_value()?,
                "label" => spec.label = p.str_value()?,
                "description" => spec.description = p.str_value()?,
                "api_version" => spec.api_version = p.str_value()?,
                "status" => spec.status = p.str_value()?,
                "interfaces" => spec.interfaces = p.string_list()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn dns_record(&mut self, d: &mut DnsRecord<'a>) -> Fast<()> {
        self.struct_into(d, |p, d, key| {
            match key {
                "forward" => d.forward = p.string_set()?,
                "reverse" => d.reverse = p.string_set()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn topology(&mut self, t: &mut Topology<'a>) -> Fast<()> {
        self.struct_into(t, |p, t, key| {
            match key {
                "shape" => t.shape = p.str_value()?,
                "tag" => t.tag = p.str_value()?,
                "label" => t.label = p.str_value()?,
                "label_plural" => t.label_plural = p.str_value()?,
                "nodes" => p.map_into(&mut t.nodes, |p, n| p.node(n))?,
                "controls" => p.map_into(&mut t.controls, Self::control)?,
                "metadata_templates" => p.map_into(&mut t.metadata_templates, Self::md_template)?,
                "metric_templates" => p.map_into(&mut t.metric_templates, Self::metric_template)?,
                "table_templates" => p.map_into(&mut t.table_templates, Self::table_template)?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn node(&mut self, n: &mut Node<'a>) -> Fast<()> {
        let mut latest_controls: SortedMap<'a, LegacyControl> = SortedMap::new();
        let mut counters: SortedMap<'a, Counter> = SortedMap::new();
        self.struct_into(n, |p, n, key| {
            // Byte patterns: inline compares instead of a memcmp call per arm.
            match key.as_bytes() {
                [b'i', b'd'] => n.id = p.str_value()?,
                [b't', b'o', b'p', b'o', b'l', b'o', b'g', b'y'] => n.topology = p.str_value()?,
                [b's', b'e', b't', b's'] => p.node_map(
                    &mut n.sets,
                    |p| &mut p.sets,
                    |p, s| {
                        *s = p.string_set()?;
                        Some(())
                    },
                )?,
                [b'a', b'd', b'j', b'a', b'c', b'e', b'n', b'c', b'y'] => {
                    n.adjacency = p.string_set()?
                }
                [b'l', b'a', b't', b'e', b's', b't'] => {
                    p.node_map(&mut n.latest.map, |p| &mut p.latest, Self::latest_entry)?
                }
                [b'm', b'e', b't', b'r', b'i', b'c', b's'] => {
                    p.node_map(&mut n.metrics, |p| &mut p.metrics, Self::metric)?
                }
                [b'p', b'a', b'r', b'e', b'n', b't', b's'] => p.node_map(
                    &mut n.parents,
                    |p| &mut p.sets,
                    |p, s| {
                        *s = p.string_set()?;
                        Some(())
                    },
                )?,
                [b'c', b'h', b'i', b'l', b'd', b'r', b'e', b'n'] => {
                    let mut children = NodeSet::default();
                    if !p.null() {
                        p.array(|p| {
                            p.ws();
                            if p.peek()? != b'{' {
                                return None;
                            }
                            let mut child = Node::default();
                            p.node(&mut child)?;
                            children.insert(child);
                            Some(())
                        })?;
                    }
                    n.children = children;
                }
                [
                    b'l',
                    b'a',
                    b't',
                    b'e',
                    b's',
                    b't',
                    b'C',
                    b'o',
                    b'n',
                    b't',
                    b'r',
                    b'o',
                    b'l',
                    b's',
                ] => p.map_into(&mut latest_controls, Self::legacy_control)?,
                [b'c', b'o', b'u', b'n', b't', b'e', b'r', b's'] => {
                    p.map_into(&mut counters, |p, c| {
                        c.0 = p.int_value()?;
                        Some(())
                    })?
                }
                _ => p.skip()?,
            }
            Some(())
        })?;
        // Legacy fields (spec §4.3), converted exactly as the reference path does.
        apply_latest_controls(&mut n.latest, latest_controls);
        apply_counters(&mut n.latest, counters, self.now);
        Some(())
    }

    fn legacy_control(&mut self, c: &mut LegacyControl) -> Fast<()> {
        self.struct_into(c, |p, c, key| {
            match key {
                "timestamp" => p.time_into(&mut c.timestamp)?,
                "value" => {
                    let mut dead = false;
                    if !p.null() {
                        p.object(|p, key| {
                            match &*key {
                                "dead" => dead = p.bool_value()?,
                                _ => p.skip()?,
                            }
                            Some(())
                        })?;
                    }
                    c.dead = dead;
                }
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn latest_entry(&mut self, e: &mut LatestEntry<'a>) -> Fast<()> {
        self.ws();
        if let Some(entry) = self.latest_as_go_writes_it() {
            // Both fields are present, so this is what decoding over `e` gives.
            *e = entry;
            return Some(());
        }
        self.struct_into(e, |p, e, key| {
            // As for samples: inline compares for the keys of every latest entry.
            match key.as_bytes() {
                [b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p'] => {
                    p.time_into(&mut e.timestamp)?
                }
                [b'v', b'a', b'l', b'u', b'e'] => e.value = p.str_value()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn metric(&mut self, m: &mut Metric<'a>) -> Fast<()> {
        self.struct_into(m, |p, m, key| {
            // Byte patterns, as in `node`.
            match key.as_bytes() {
                [b's', b'a', b'm', b'p', b'l', b'e', b's'] => {
                    // Collected in a reused buffer, then copied once at the exact size: growing
                    // a fresh vector cost three allocations per metric.
                    let mut samples = std::mem::take(&mut p.samples);
                    samples.clear();
                    let mut text = None;
                    if !p.null() {
                        p.ws();
                        let open = p.i;
                        if p.samples_into(&mut samples)? {
                            text = p.b.get(open..p.i);
                        }
                    }
                    let items = match p.arena {
                        Some(arena) => Samples::in_arena(arena.samples(&samples)),
                        None => Samples::from(samples.as_slice().to_vec()),
                    };
                    m.samples = match text {
                        Some(text) if !items.is_empty() => items.and_text(text),
                        _ => items,
                    };
                    p.samples = samples;
                }
                [b'm', b'i', b'n'] => m.min = p.number_value()?,
                [b'm', b'a', b'x'] => m.max = p.number_value()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    /// The start of a sample or latest entry spelt exactly as Go writes it: `open` (`{"key":"`),
    /// a timestamp [`QuotedTimes`] recognises, then `next` (`,"value":`). Returns the time
    /// (and whether its text is as written) and where the value starts; consumes nothing.
    /// Samples are most of a report's bytes, and these entries are read without walking their
    /// keys.
    #[inline(always)]
    fn go_spelt_time_then<const N: usize>(
        &mut self,
        open: &[u8; N],
        next: &[u8; 9],
    ) -> Option<(Recognised, usize)> {
        let (time, value_at) =
            go_spelt_time_at_start(&mut self.times, self.b.get(self.i..)?, open, next)?;
        Some((time, self.i + value_at))
    }

    /// Reads a value at `at` with `value` and the closing `}` of an entry that began at `self.i`;
    /// on any other spelling, restores `self.i` and returns `None` (the object walk then reads
    /// the entry, and bails if it is malformed).
    #[inline]
    fn close_go_spelt<T>(
        &mut self,
        at: usize,
        value: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let start = self.i;
        self.i = at;
        match value(self) {
            Some(v) if self.peek() == Some(b'}') => {
                self.i += 1;
                Some(v)
            }
            _ => {
                self.i = start;
                None
            }
        }
    }

    /// A sample spelt `{"date":"…","value":…}` with a plain number (see
    /// [`Scanner::go_spelt_time_then`]), pushed onto `samples`, and whether encoding it writes
    /// this same text; `None` (consuming nothing) for any other spelling. A sample in the
    /// frame of the one read before (see [`SampleFrame`]) is read by that; any other teaches
    /// the frame.
    // Pushes rather than returns, with its reader inlined: returned through memory, a sample
    // was copied across the stack by loads that straddled the narrower stores that wrote it,
    // and these stalled store-to-load forwards cost more than reading the sample.
    #[inline(always)]
    fn push_sample_as_go_writes_it(&mut self, samples: &mut Vec<Sample<'a>>) -> Option<bool> {
        let rest = self.b.get(self.i..)?;
        // Read in a window of known size wherever the body has room for one, so the parts at
        // fixed places need no bounds checks.
        let (sample, len, as_written) = match rest.first_chunk::<SAMPLE_WINDOW>() {
            Some(window) => match self.frame.and_then(|f| f.read(window).map(|hit| (f, hit))) {
                Some((frame, (date, at))) => {
                    let (sample, len) = sample_with_value_at(window, at, date)?;
                    (sample, len, frame.as_written)
                }
                // Not `go_spelt_sample_at_start`, whose value start this needs as well:
                // returning it through that made the loop 0.8 % more instructions.
                None => {
                    let (date, at) = go_spelt_time_at_start(
                        &mut self.times,
                        window,
                        br#"{"date":""#,
                        br#","value":"#,
                    )?;
                    let (sample, len) = sample_with_value_at(window, at, date.time)?;
                    self.frame = SampleFrame::learn(window, date.time, at, date.as_written);
                    (sample, len, date.as_written)
                }
            },
            None => go_spelt_sample_at_start(&mut self.times, rest)?,
        };
        samples.push(sample);
        self.i += len;
        Some(as_written)
    }

    /// A samples array, read onto `samples`; returns whether encoding them writes the array's
    /// text as it is (every sample and separator as Go writes them, every date as written).
    // Go's spelling is read by a loop with no calls, which keeps its few values in registers
    // (inside `array`'s closure they were spilled and reloaded around every sample); a sample
    // or separator spelt otherwise is read out of line, and the loop goes on after it. Out of
    // line itself for the same reason: inlined into `metric`, its state competed with the
    // object walk's.
    #[inline(never)]
    fn samples_into(&mut self, samples: &mut Vec<Sample<'a>>) -> Fast<bool> {
        self.eat(b'[')?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let mut at_start = true;
        let mut as_written = true;
        loop {
            let after_sample = loop {
                let Some(sample_as_written) = self.push_sample_as_go_writes_it(samples) else {
                    break false;
                };
                as_written &= sample_as_written;
                at_start = false;
                match self.b.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        self.depth -= 1;
                        return Some(as_written);
                    }
                    _ => break true,
                }
            };
            // Spelt otherwise (an empty array too, which encoding omits anyway).
            as_written = false;
            if self.sample_step_in_any_spelling(samples, after_sample, at_start)? {
                self.depth -= 1;
                return Some(as_written);
            }
            at_start = false;
        }
    }

    /// One step of [`Scanner::samples_into`] in any spelling: a sample (unless
    /// `after_sample`) and the separator after it. An empty array's `]` is taken `at_start`.
    /// Returns whether the array ended; otherwise the next sample starts at `self.i`.
    #[inline(never)]
    fn sample_step_in_any_spelling(
        &mut self,
        samples: &mut Vec<Sample<'a>>,
        after_sample: bool,
        at_start: bool,
    ) -> Fast<bool> {
        self.ws();
        if !after_sample {
            if at_start && self.peek()? == b']' {
                self.i += 1;
                return Some(true);
            }
            if self.push_sample_as_go_writes_it(samples).is_none() {
                self.sample_in_any_spelling(samples)?;
            }
            self.ws();
        }
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(false)
            }
            b']' => {
                self.i += 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// One sample in any spelling, pushed onto `samples`.
    fn sample_in_any_spelling(&mut self, samples: &mut Vec<Sample<'a>>) -> Fast<()> {
        if self.peek()? != b'{' {
            return None;
        }
        let mut s = Sample::default();
        self.object(|p, key| {
            // Byte patterns compile to inline compares, not memcmp calls.
            match key.as_bytes() {
                [b'd', b'a', b't', b'e'] => p.time_into(&mut s.date)?,
                [b'v', b'a', b'l', b'u', b'e'] => s.value = p.number_value()?,
                _ => p.skip()?,
            }
            Some(())
        })?;
        samples.push(s);
        Some(())
    }

    /// A latest entry spelt `{"timestamp":"…","value":"…"}` (see
    /// [`Scanner::go_spelt_time_then`]).
    #[inline]
    fn latest_as_go_writes_it(&mut self) -> Option<LatestEntry<'a>> {
        let (time, at) = self.go_spelt_time_then(br#"{"timestamp":""#, br#","value":"#)?;
        self.close_go_spelt(at, |p| {
            p.string().map(|value| LatestEntry {
                timestamp: time.time,
                value,
            })
        })
    }

    fn control(&mut self, c: &mut Control<'a>) -> Fast<()> {
        self.struct_into(c, |p, c, key| {
            match key {
                "id" => c.id = p.str_value()?,
                "human" => c.human = p.str_value()?,
                "icon" => c.icon = p.str_value()?,
                "confirmation" => c.confirmation = p.str_value()?,
                "rank" => c.rank = p.int_value()?,
                "probeId" => c.probe_id = p.str_value()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn md_template(&mut self, t: &mut MetadataTemplate<'a>) -> Fast<()> {
        self.struct_into(t, |p, t, key| {
            match key {
                "id" => t.id = p.str_value()?,
                "label" => t.label = p.str_value()?,
                "truncate" => t.truncate = p.int_value()?,
                "dataType" => t.data_type = p.str_value()?,
                "priority" => t.priority = p.float_value()?,
                "from" => t.from = p.str_value()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn metric_template(&mut self, t: &mut MetricTemplate<'a>) -> Fast<()> {
        self.struct_into(t, |p, t, key| {
            match key {
                "id" => t.id = p.str_value()?,
                "label" => t.label = p.str_value()?,
                "format" => t.format = p.str_value()?,
                "group" => t.group = p.str_value()?,
                "priority" => t.priority = p.float_value()?,
                _ => p.skip()?,
            }
            Some(())
        })
    }

    fn table_template(&mut self, t: &mut TableTemplate<'a>) -> Fast<()> {
        self.struct_into(t, |p, t, key| {
            match key {
                "id" => t.id = p.str_value()?,
                "label" => t.label = p.str_value()?,
                "prefix" => t.prefix = p.str_value()?,
                "type" => t.kind = p.str_value()?,
                "columns" => {
                    let mut columns = Vec::new();
                    if !p.null() {
                        p.array(|p| {
                            p.ws();
                            if p.peek()? != b'{' {
                                return None;
                            }
                            let mut c = Column::default();
                            p.object(|p, key| {
                                match &*key {
                                    "id" => c.id = p.str_value()?,
                                    "label" => c.label = p.str_value()?,
                                    "dataType" => c.data_type = p.str_value()?,
                                    _ => p.skip()?,
                                }
                                Some(())
                            })?;
                            columns.push(c);
                            Some(())
                        })?;
                    }
                    t.columns = columns;
                }
                "fixedRows" => p.map_into(&mut t.fixed_rows, |p, v| {
                    *v = p.str_value()?;
                    Some(())
                })?,
                _ => p.skip()?,
            }
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::decode::{decode_fast_only, decode_reference};

    fn now() -> Time {
        Time::parse("2099-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn space_padded_word_is_the_tail_then_spaces() {
        let bytes = b"\x01\"a\\\xff7z";
        for len in 0..8 {
            let tail = &bytes[..len];
            let mut expected = [b' '; 8];
            expected[..len].copy_from_slice(tail);
            assert_eq!(
                space_padded_word(tail).to_le_bytes(),
                expected,
                "{len} bytes"
            );
            assert_eq!(
                special_byte(tail),
                tail.iter()
                    .position(|&b| b < 0x20 || b == b'"' || b == b'\\'),
                "{len} bytes"
            );
        }
    }

    /// Whatever the fast path accepts, the reference accepts with the same result; and it
    /// accepts nothing the reference rejects.
    fn agree(doc: &str) -> bool {
        let fast = decode_fast_only(doc.as_bytes(), now());
        let reference = decode_reference(doc.as_bytes(), now());
        match (&fast, &reference) {
            (Some(f), Ok(r)) => {
                assert_eq!(f, r, "{doc}");
                // Equality of sample values is by value; the kept texts must agree as well.
                let (mut f_json, mut r_json) = (Vec::new(), Vec::new());
                crate::report::encode(f, &mut f_json);
                crate::report::encode(r, &mut r_json);
                assert_eq!(f_json, r_json, "{doc}");
            }
            (Some(_), Err(e)) => {
                panic!("fast path accepted {doc} which the reference rejects: {e}")
            }
            (None, _) => {}
        }
        fast.is_some()
    }

    // The word-at-a-time digit reader gives the byte-at-a-time value and length for every run
    // length around the word size, followed by every kind of byte.
    #[test]
    fn digit_runs_read_like_one_digit_at_a_time() {
        for len in 0..=24usize {
            for after in ["", ".", "e", "}", "/", ":", " ", "\u{e9}"] {
                let digits: String = (0..len)
                    .map(|i| char::from(b'0' + (i * 7 + 3) as u8 % 10))
                    .collect();
                let text = format!("x{digits}{after}");
                let (mut got, mut want) = (0u64, 0u64);
                for c in digits.bytes() {
                    want = want.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                }
                let (end, n) = digit_run(text.as_bytes(), 1, &mut got);
                assert_eq!((got, end, n), (want, 1 + len, len as u32), "{text:?}");
                assert_eq!(digits_end(text.as_bytes(), 1), 1 + len, "{text:?}");
            }
        }
        assert_eq!(leading_digits(u64::from_le_bytes(*b"0123456/")), 7);
        assert_eq!(leading_digits(u64::from_le_bytes(*b"9:012345")), 1);
        assert_eq!(
            digits_value(u64::from_le_bytes(*b"90740686"), 8),
            90_740_686
        );
        assert_eq!(digits_value(u64::from_le_bytes(*b"605085}x"), 6), 605_085);
    }

    // Samples spelt as Go writes them are read without the object walk; any other spelling
    // falls back to it, with the same result as the reference either way.
    #[test]
    fn samples_in_any_spelling_read_like_the_reference() {
        let date = "2023-06-01T10:00:00.780774697Z";
        let later = "2023-06-01T10:00:01.780774697Z";
        for sample in [
            format!(r#"{{"date":"{later}","value":90.90740686605085}}"#),
            format!(r#"{{"date":"{later}","value":-0.5}}"#),
            format!(r#"{{"date":"{later}","value":35}}"#),
            format!(r#"{{"date":"{later}","value": 1e3 }}"#),
            format!(r#"{{"date":"{later}","value":null}}"#),
            format!(r#"{{"date":"{later}","value":1,"x":2}}"#),
            format!(r#"{{"date":"{later}", "value":1}}"#),
            format!(r#"{{"value":2,"date":"{later}"}}"#),
            format!(r#"{{ "date":"{later}","value":3}}"#),
            r#"{"date":"2023-06-01T10:00:01.5Z","value":4}"#.to_string(),
            r#"{"date":"2023-06-01T10:00:61.780774697Z","value":4}"#.to_string(),
            format!(r#"{{"date":"{later}","value":"5"}}"#),
            format!(r#"{{"date":"{later}","value":1.}}"#),
            format!(r#"{{"date":"{later}","value":1.50}}"#),
            format!(r#"{{"date":"{later}","value":-0}}"#),
            format!(r#"{{"date":"{later}","value":1E3}}"#),
            format!(r#"{{"date":"{later}","value":2.5e-3}}"#),
            format!(r#"{{"date":"{later}","value":01}}"#),
            format!(r#"{{"date":"{later}","value":-}}"#),
            format!(r#"{{"date":"{later}","value":0.000001}}"#),
            format!(r#"{{"date":"{later}","value":123456789012345678901234567890.5}}"#),
            format!(r#"{{"date":"{later}","value":{}}}"#, "9".repeat(308)),
            format!(r#"{{"date":"{later}","value":{}}}"#, "9".repeat(309)),
            format!(r#"{{"date":"{later}","value":{}}}"#, "9".repeat(400)),
            format!(r#"{{"date":"{later}","value":true}}"#),
        ] {
            let first = format!(r#"{{"date":"{date}","value":1}}"#);
            let last = r#"{"date":"2023-06-01T10:00:02.780774697Z","value":2}"#;
            // The odd sample first, in the middle and last: the whole-array fast path must
            // give way wherever it is.
            for samples in [
                format!("{first},{sample}"),
                format!("{sample},{last}"),
                format!("{first},{sample},{last}"),
            ] {
                for doc in metric_docs(&samples) {
                    agree(&doc);
                }
            }
        }
        // Numbers whose `}` falls on either side of the end of the fast path's window: read
        // there or by the object walk, but never by the reference decoder.
        let boundary = (40..=50)
            .map(|n| "9".repeat(n))
            .chain((36..=48).map(|n| format!("-0.{}1", "0".repeat(n))));
        for number in boundary {
            let sample = format!(r#"{{"date":"{later}","value":{number}}}"#);
            for doc in metric_docs(&format!("{sample},{sample}")) {
                assert!(agree(&doc), "{doc}");
            }
        }
        // Separators and brackets other than Go's.
        let (a, b) = (
            r#"{"date":"2023-06-01T10:00:00.780774697Z","value":1}"#,
            r#"{"date":"2023-06-01T10:00:01.780774697Z","value":2.5}"#,
        );
        assert!(
            metric_docs(&format!("{a},{b}"))
                .iter()
                .all(|doc| agree(doc))
        );
        for samples in [
            format!("{a}, {b}"),
            format!("{a} ,{b}"),
            format!(" {a},{b} "),
            format!("{a},{b},"),
            format!("{a}{b}"),
            format!("{a},,{b}"),
            String::new(),
            " ".to_string(),
        ] {
            for doc in metric_docs(&samples) {
                agree(&doc);
            }
        }
        agree(r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"samples":null}}}}}}"#);
        for doc in metric_docs(a) {
            agree(&doc.replace("[", "[[").replace("]", "]]"));
        }
    }

    // A sample that repeats all but the seconds of the one before is read by comparing bytes
    // (`SampleFrame`); one that differs anywhere else, or has no valid seconds, is not.
    #[test]
    fn samples_in_one_frame_read_like_the_reference() {
        let first = r#"{"date":"2023-06-01T10:20:30.780774697Z","value":1}"#;
        let mut dates: Vec<String> = (0..=61)
            .map(|s| format!("2023-06-01T10:20:{s:02}.780774697Z"))
            .collect();
        dates.extend(
            [
                "2023-06-01T10:21:30.780774697Z",
                "2023-06-01T11:20:30.780774697Z",
                "2023-06-02T10:20:30.780774697Z",
                "2024-06-01T10:20:30.780774697Z",
                "2023-06-01T10:20:31.780774698Z",
                "2023-06-01T10:20:31.78077469Z",
                "2023-06-01T10:20:31.7807746970Z",
                "2023-06-01T10:20:31.780774697+01:00",
                "2023-06-01T10:20:31Z",
                "2023-06-01T10:20:3a.780774697Z",
                "2023-06-01T10:20:a1.780774697Z",
                "2023-06-01T10:20:-1.780774697Z",
                "2023-06-01T10:20:3.780774697Z",
                "2023-06-01T10:20:31.780774697z",
            ]
            .map(String::from),
        );
        let mut took = 0;
        for date in &dates {
            for value in ["2", "-0.25", "1e3", "\"x\""] {
                let probe = format!(r#"{{"date":"{date}","value":{value}}}"#);
                let spelt = [
                    probe.clone(),
                    probe.replace(r#","value""#, r#", "value""#),
                    probe.replace(r#"{"date""#, r#"{"data""#),
                    // Past the first sixteen bytes after the seconds.
                    probe.replace(r#""value""#, r#""valuf""#),
                ];
                for probe in spelt {
                    // The probe after the first, and twice, so that it is also read in a frame
                    // learnt from itself; a last sample keeps the window away from the end.
                    let last = r#"{"date":"2023-06-01T10:20:59.780774697Z","value":9}"#;
                    let samples = format!("{first},{probe},{probe},{last}");
                    for doc in metric_docs(&samples) {
                        took += usize::from(agree(&doc));
                    }
                }
            }
        }
        assert!(
            took > dates.len(),
            "the fast path took only {took} documents"
        );
    }

    // A samples array keeps its text, to be copied when encoding, exactly when encoding its
    // samples writes that text: every sample and separator as Go writes them and every date
    // as `Time::write_rfc3339` writes it (`agree` checks the encodings match either way).
    #[test]
    fn samples_keep_their_text_only_when_encoding_writes_it() {
        let first = r#"{"date":"2023-06-01T10:00:00.5Z","value":1}"#;
        let (mut kept, mut dropped) = (0, 0);
        for tail in [
            "Z",
            ".5Z",
            ".50Z",
            ",5Z",
            ".123456789-11:30",
            ".1234567891Z",
            "+02:00",
            "+00:00",
            "-00:00",
            "+01:60",
        ] {
            let date = format!("2023-06-01T10:00:01{tail}");
            let mut written = Vec::new();
            Time::parse(&date).unwrap().write_rfc3339(&mut written);
            let sample = format!(r#"{{"date":"{date}","value":2.50}}"#);
            for samples in [
                sample.clone(),
                format!("{first},{sample}"),
                format!("{sample},{first}"),
                format!("{first}, {sample}"),
            ] {
                for doc in metric_docs(&samples) {
                    assert!(agree(&doc), "{doc}");
                    let report = decode_fast_only(doc.as_bytes(), now()).unwrap();
                    let node = report.topology(TopologyKind::Host).nodes.get("a").unwrap();
                    let text = node.metrics.get("m").unwrap().samples.json_text();
                    let go_spelt = !samples.contains(' ');
                    if written == date.as_bytes() && go_spelt {
                        assert_eq!(text, Some(format!("[{samples}]").as_bytes()), "{samples}");
                        kept += 1;
                    } else {
                        assert_eq!(text, None, "{samples}");
                        dropped += 1;
                    }
                }
            }
        }
        assert!(
            kept >= 12 && dropped >= 12,
            "{kept} kept, {dropped} dropped"
        );
    }

    /// A report whose metric `m` has `samples` between the brackets, as it is and with a
    /// skipped field after them, so that its last samples are read both near the end of the
    /// body and in the fast path's window. A metric before it makes its times known, as the
    /// fast paths need.
    fn metric_docs(samples: &str) -> [String; 2] {
        let known = r#""l":{"samples":[{"date":"2023-06-01T09:59:59.780774697Z","value":0}]}"#;
        let doc = |pad: &str| {
            format!(
                r#"{{"Host":{{"nodes":{{"a":{{"metrics":{{{known},"m":{{"samples":[{samples}],"min":0,"max":1{pad}}}}}}}}}}}}}"#
            )
        };
        let pad = format!(r#","pad":"{}""#, "x".repeat(SAMPLE_WINDOW));
        [doc(""), doc(&pad)]
    }

    // Latest entries spelt as Go writes them are read without the object walk; any other
    // spelling falls back to it, with the same result as the reference either way.
    #[test]
    fn latest_entries_in_any_spelling_read_like_the_reference() {
        let ts = "2023-06-01T10:00:00.076932697Z";
        for entry in [
            format!(r#"{{"timestamp":"{ts}","value":"nginx -g \"daemon off;\""}}"#),
            format!(r#"{{"timestamp":"{ts}","value":"host;\u003chost\u003e"}}"#),
            format!(r#"{{"timestamp":"{ts}","value":""}}"#),
            format!(r#"{{"timestamp":"{ts}","value":7}}"#),
            format!(r#"{{"timestamp":"{ts}","value":null}}"#),
            format!(r#"{{"timestamp":"{ts}","value":"x","extra":1}}"#),
            format!(r#"{{"timestamp":"{ts}", "value":"x"}}"#),
            format!(r#"{{"value":"x","timestamp":"{ts}"}}"#),
            format!(r#"{{"timestamp":"{ts}"}}"#),
            format!(r#"{{"timestamp":"{ts}","value":"x"}}"#),
            r#"{"timestamp":"2023-06-01T10:00:00.076932697+01:00","value":"x"}"#.to_string(),
            r#"{"timestamp":"2023-06-01T10:00:00.1Z","value":"x"}"#.to_string(),
        ] {
            // The first entry teaches the timestamp; the duplicate key `k` is decoded over it.
            let doc = format!(
                r#"{{"Host":{{"nodes":{{"a":{{"latest":{{"a":{{"timestamp":"{ts}","value":"v"}},"k":{{"timestamp":"{ts}","value":"old"}},"k":{entry}}}}}}}}}}}"#
            );
            agree(&doc);
        }
    }

    #[test]
    fn takes_the_common_shapes() {
        for doc in [
            "{}",
            " {\n\t\"ID\" : \"x\" } trailing",
            r#"{"Host":{"nodes":{"vm;\u003chost\u003e":{"latest":{"k":{"timestamp":"2023-06-01T00:00:00.5+02:00","value":"tab\tq\"b\\s\/é\ud83d\ude00"}}}}}}"#,
            r#"{"Host":null,"Process":{"nodes":null},"TS":null,"Plugins":null,"Window":null}"#,
            r#"{"ID":42,"Host":{"label":-7,"shape":true,"tag":null,"nodes":{"a":{"id":18446744073709551615,"sets":{"s":[1,null,"x"]}}}}}"#,
            r#"{"Window":-15,"Shortcut":true,"Sampling":{"Count":3,"Total":0}}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"samples":[{"date":"2023-06-01T00:00:00Z","value":1.5e-3}],"min":-0,"max":1E21}}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"samples":[{"value":50.61540404448146},{"value":-12},{"value":0.000123},{"value":-0.0},{"value":-0},{"value":9223372036854775807},{"value":-9223372036854775808},{"value":1234567890.123456789},{"value":0.1234567890123456789},{"value":3e2}],"min":0.30000000000000004,"max":null}}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"latestControls":{"c":{"timestamp":"2023-06-01T00:00:00Z","value":{"dead":false}}},"counters":{"x":2}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"children":[{"id":"c"},{"id":"c","topology":"x"}]}}}}"#,
            r#"{"unknown":{"a":[1,2.5,{"b":null}],"c":"\u0041"},"Host":{"nodes":{"a":{"z":[true,false]}}}}"#,
            r#"{"Host":{"table_templates":{"t":{"columns":[{"id":"c"}],"fixedRows":{"r":"R"},"type":"x"}},"controls":{"c":{"rank":7}}}}"#,
            r#"{"Plugins":[{"id":"a","interfaces":["reporter"]},{"id":"a","label":"2"}]}"#,
            r#"{"DNS":{"1.1.1.1":{"forward":["b","a"]}},"nodes":{"2.2.2.2":null}}"#,
        ] {
            assert!(agree(doc), "fast path should take {doc}");
        }
    }

    #[test]
    fn bails_on_what_the_reference_rejects() {
        for doc in [
            "",
            "null",
            "[]",
            r#"{"ID":01}"#,
            r#"{"ID":1.}"#,
            r#"{"ID":-}"#,
            r#"{"ID":1e}"#,
            r#"{"ID":.5}"#,
            r#"{"ID":tru}"#,
            r#"{"ID":nul}"#,
            "{\"ID\":\"raw\u{1}control\"}",
            r#"{"ID":"\ud800"}"#,
            r#"{"ID":"\udc00x"}"#,
            r#"{"ID":"\ud800\u0041"}"#,
            r#"{"ID":"\x"}"#,
            r#"{"ID":"\u00g1"}"#,
            r#"{"ID":"x",}"#,
            r#"{"ID":"x""#,
            r#"{"ID" "x"}"#,
            r#"{"Plugins":[{"id":"a",}]}"#,
            r#"{"Plugins":[1]}"#,
            r#"{"Host":{"nodes":{"a":{"latest":{"k":{"timestamp":"2016-07-20T15:51:05Z01:00"}}}}}}"#,
            r#"{"Window":1.5}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"min":1.}}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"min":01}}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"min":-}}}}}}"#,
            r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"min":1.5.5}}}}}}"#,
            r#"{"Window":99999999999999999999}"#,
            r#"{"Shortcut":"true"}"#,
            r#"{"Sampling":{"Count":-1}}"#,
            r#"{"Host":{"nodes":[]}}"#,
            r#"{"ID":[1]}"#,
            r#"{"ID":1e400}"#,
            r#"{"ID":-0}"#,
            r#"{"ID":4.5e3}"#,
        ] {
            assert!(!agree(doc), "fast path should bail on {doc}");
        }
    }

    // Numbers the reference cannot read as f64 are errors there even in string fields (its
    // fast path parses them); the fast path must not accept them either.
    #[test]
    fn huge_numbers_in_string_fields() {
        let huge = format!(r#"{{"ID":{}}}"#, "9".repeat(400));
        assert!(!agree(&huge));
        assert!(decode_reference(huge.as_bytes(), now()).is_err());
        assert!(!agree(r#"{"ID":1e400}"#));
        let big = format!(r#"{{"ID":{}}}"#, "9".repeat(30));
        assert!(!agree(&big));
        assert_eq!(
            decode_reference(big.as_bytes(), now()).unwrap().id,
            "9".repeat(30)
        );
        // Unknown keys skip any well-formed number.
        assert!(agree(&format!(
            r#"{{"x":{}e999,"ID":"a"}}"#,
            "9".repeat(400)
        )));
    }

    #[test]
    fn deep_nesting_is_left_to_the_reference() {
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(!agree(&deep));
        // Deep nodes (children) are rejected by the reference's recursion limit, not by a
        // stack overflow.
        let mut nested = String::from("{}");
        for _ in 0..300 {
            nested = format!(r#"{{"id":"x","children":[{nested}]}}"#);
        }
        let doc = format!(r#"{{"Host":{{"nodes":{{"a":{nested}}}}}}}"#);
        assert!(!agree(&doc));
        assert!(decode_reference(doc.as_bytes(), now()).is_err());
    }

    // The simple float reader gives serde_json's bits, or leaves the number to it.
    #[test]
    fn simple_f64_reads_what_serde_json_reads() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut texts: Vec<String> = [
            "0.0",
            "-0.0",
            "1.5",
            "1e3",
            "1E+3",
            "2.5e-3",
            "-7.25E-22",
            "9.999e22",
            "1e23",
            "0.1",
            "0.30000000000000004",
            "50.61540404448146",
            "3.355319044008942",
            "18446744073709551615.0",
            "9999999999999999999.5",
            "1.0e0005",
            "1.0e-000",
            "123456789012345678.9",
            "0.000000000000000000001",
            "4.5e3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            let v = f64::from_bits(next() >> 2 | 0x3000_0000_0000_0000);
            texts.push(format!("{v:?}"));
            let digits = next() % 10_000_000_000_000_000_000;
            let point = (next() % 21) as usize;
            let mut t = digits.to_string();
            if point > 0 && point < t.len() {
                t.insert(t.len() - point, '.');
                if t.starts_with('.') {
                    t.insert(0, '0');
                }
            }
            texts.push(t.clone());
            texts.push(format!("-{t}e{}", next() % 9));
            texts.push(format!("{t}e-{}", next() % 30));
        }
        let mut simple = 0;
        for text in &texts {
            let reference: Option<f64> = serde_json::from_str(text).ok();
            if let Some(v) = simple_f64(text) {
                simple += 1;
                assert_eq!(Some(v.to_bits()), reference.map(f64::to_bits), "{text}");
            }
        }
        assert!(simple > texts.len() / 2, "only {simple} of {}", texts.len());
        assert_eq!(simple_f64("1e23"), None);
        assert_eq!(simple_f64("12345678901234567890.5"), None);
    }

    #[test]
    fn special_byte_finds_the_first() {
        assert_eq!(special_byte(b"abc\"def"), Some(3));
        assert_eq!(special_byte(b"abcdefghij\\k\""), Some(10));
        assert_eq!(special_byte(b"abcdefgh\x1f"), Some(8));
        assert_eq!(special_byte("é日本\"".as_bytes()), Some(8));
        assert_eq!(special_byte(b"\x7f\x80\xff\xa0\x20\x21 xyz\""), Some(10));
        assert_eq!(special_byte(b"abcdefghijklmnop"), None);
        assert_eq!(special_byte(b""), None);
        // Whatever the length, wherever the first special byte, and whatever follows it.
        let naive = |s: &[u8]| s.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b"a~ !#[]\x7f\x80\xff"[i % 10]).collect();
            assert_eq!(special_byte(&plain), None, "{plain:?}");
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut s = plain.clone();
                    s[at] = special;
                    // A second special byte later must not move the answer.
                    if at + 3 < len {
                        s[at + 3] = b'"';
                    }
                    assert_eq!(special_byte(&s), naive(&s), "{s:?}");
                }
            }
        }
    }

    /// An escaped string is unescaped into one allocation sized by its escaped length, and
    /// a raw control byte after an escape still bails.
    #[test]
    fn escaped_strings_are_sized_once() {
        let scan = |text: &'static str| {
            let mut p = Scanner::new(text, now());
            let s = p.string();
            (s, p.i)
        };
        let text = r#""host;\u003ccontainer-0123456789abcdef\u003e \" \ud83d\ude00 \\ tail"!"#;
        let (s, end) = scan(text);
        let Some(Cow::Owned(s)) = s else {
            panic!("not unescaped: {s:?}");
        };
        assert_eq!(s, "host;<container-0123456789abcdef> \" \u{1f600} \\ tail");
        assert_eq!(end, text.len() - 1);
        assert_eq!(s.capacity(), text.len() - 3);
        assert_eq!(scan("\"a\\nb\u{1}c\"").0, None);
        assert_eq!(scan("\"a\\nbc").0, None);
        assert_eq!(scan("\"a\\").0, None);
    }

    /// Every byte value at every position within and across three words, on fillers next to
    /// the special values, with and without a later special byte, agrees with a byte loop.
    #[test]
    fn special_byte_agrees_with_a_byte_loop_everywhere() {
        let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let fillers = [
            b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ];
        let mut buf = Vec::new();
        for len in 0..=24 {
            for &filler in &fillers {
                buf.clear();
                buf.resize(len, filler);
                assert_eq!(special_byte(&buf), None, "{buf:?}");
                for at in 0..len {
                    for b in 0..=255u8 {
                        buf.fill(filler);
                        buf[at] = b;
                        assert_eq!(special_byte(&buf), naive(&buf), "{buf:?}");
                        if let Some(later) = buf.get_mut(at + 3) {
                            *later = b'"';
                            assert_eq!(special_byte(&buf), naive(&buf), "{buf:?}");
                        }
                    }
                }
            }
        }
    }
}
