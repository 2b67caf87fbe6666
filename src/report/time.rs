//! Go's `time.Time` as Scope puts it on the wire (spec §1.9).
//!
//! Owns: parsing RFC 3339 exactly as Go's `time.Time.UnmarshalJSON` accepts it, formatting like
//! Go's `RFC3339Nano`, and comparing as instants. It does not own clocks: the core takes `now`
//! as a parameter; [`Time::now`] exists for the command-line shell only.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const ZERO_UNIX_SECS: i64 = -62_135_596_800;

/// An instant with the UTC offset it was written with.
///
/// Equality and ordering are by instant only (Go's `Equal`/`Before`/`After`, spec §1.9), so
/// `2023-06-01T11:00:00+02:00 == 2023-06-01T09:00:00Z`. The offset only matters when the value
/// is written again.
#[derive(Clone, Copy, Debug)]
pub struct Time {
    /// Seconds since the Unix epoch.
    secs: i64,
    /// Invariant: `nanos < 1_000_000_000`.
    nanos: u32,
    /// `None` for a time written with `Z`; otherwise the `±hh:mm` offset in minutes. Go writes a
    /// zero offset as `Z` either way (its `Z07:00` layout), so the distinction never reaches the
    /// wire; it is kept so a value can say how it was written.
    offset_min: Option<i16>,
}

/// One date (`YYYY-MM-DD`) and its day number since the Unix epoch: the date of the last
/// time written, since the times of a report share a handful of dates.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DateCache {
    text: [u8; 10],
    /// `None` until a date is remembered.
    days: Option<i64>,
}

/// Recognises a JSON timestamp string by its bytes when it repeats the date and the fraction
/// and offset of recent ones, which nearly all timestamps of a report do (the times of one
/// node's metadata are equal; a metric's sample times differ only in their seconds). A hit
/// needs a date compare, the clock's six digits and a masked 16-byte compare that also finds
/// the closing quote, so the string is neither scanned for its end nor parsed again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct QuotedTimes {
    /// The date (`YYYY-MM-DD`) remembered last, and its local day number (`None` until one is).
    date: [u8; 10],
    days: Option<i64>,
    /// The two tails remembered last, the newest first: reports often alternate two fraction
    /// lengths.
    tails: [QuotedTail; 2],
}

/// The text after a time's clock (from byte 19) with the closing quote, as a little-endian
/// word under `mask`, and the nanoseconds and offset it stands for. `len == 0`: empty slot.
#[derive(Clone, Copy, Debug, Default)]
struct QuotedTail {
    bytes: u128,
    mask: u128,
    len: usize,
    nanos: u32,
    offset_min: Option<i16>,
    /// Whether the tail is spelt as [`Time::write_rfc3339`] writes it.
    as_written: bool,
}

/// A timestamp string [`QuotedTimes`] recognised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Recognised {
    pub(crate) time: Time,
    /// The length of the text with its closing quote.
    pub(crate) len: usize,
    /// Whether the text is exactly what [`Time::write_rfc3339`] writes for `time`, so that it
    /// can be copied instead of written again.
    pub(crate) as_written: bool,
}

impl QuotedTimes {
    /// `b` starts just after a string's opening quote. When the string is a time this cache
    /// recognises (remembered date and tail), returns its value and the length of its text
    /// with the closing quote. The value is the one [`Time::parse`] gives, because everything
    /// not parsed here is bytes equal to text that was parsed.
    #[cfg(test)]
    pub(crate) fn quick(&self, b: &[u8]) -> Option<Recognised> {
        let local = self.known_date_and_clock(b)?;
        self.remembered_tail(local, b)
    }

    /// The hit path of [`QuotedTimes::recognise`], once the date and clock are known to be
    /// `local`: the tail is one remembered.
    #[inline(always)]
    fn remembered_tail(&self, local: i64, b: &[u8]) -> Option<Recognised> {
        let word = u128::from_le_bytes(b.get(19..35)?.try_into().ok()?);
        let tail = self
            .tails
            .iter()
            .find(|t| t.len != 0 && (word ^ t.bytes) & t.mask == 0)?;
        let secs = local - i64::from(tail.offset_min.unwrap_or(0)) * 60;
        let time = Time {
            secs,
            nanos: tail.nanos,
            offset_min: tail.offset_min,
        };
        Some(Recognised {
            time,
            len: 19 + tail.len,
            // The date and clock are fixed-width digits, always written as they were read.
            as_written: tail.as_written,
        })
    }

    /// `b` starts just after a string's opening quote. When the string is a time on the
    /// remembered date, returns its value and the length of its text with the closing quote,
    /// and remembers its tail if it is new. The value is the one [`Time::parse`] gives: the
    /// date is bytes equal to a parsed one, a remembered tail bytes equal to a parsed one, and
    /// the clock and a new tail are checked as it checks them.
    #[inline(always)]
    pub(crate) fn recognise(&mut self, b: &[u8]) -> Option<Recognised> {
        // The date and clock are checked once for both.
        let local = self.known_date_and_clock(b)?;
        match self.remembered_tail(local, b) {
            Some(hit) => Some(hit),
            None => self.new_tail(local, b),
        }
    }

    /// The miss path of [`QuotedTimes::recognise`] alone: for a time on the remembered date,
    /// reads its tail, up to the closing quote, and remembers it.
    #[cfg(test)]
    pub(crate) fn on_known_date(&mut self, b: &[u8]) -> Option<Recognised> {
        let local = self.known_date_and_clock(b)?;
        self.new_tail(local, b)
    }

    /// The miss path of [`QuotedTimes::recognise`], once the date and clock are known to be
    /// `local`: the tail is new.
    // Out of line: the hits in `recognise` stay small.
    #[inline(never)]
    fn new_tail(&mut self, local: i64, b: &[u8]) -> Option<Recognised> {
        if let Some((word, len, nanos)) = utc_fraction_tail(b) {
            // Most new tails (each node's times have their own fraction): read and remembered
            // without scanning for the quote, parsing in general or copying byte by byte.
            // Written back the same unless the fraction ends in a zero (before `Z"`).
            let as_written = b[len - 3] != b'0';
            self.remember_tail(QuotedTail {
                bytes: word,
                mask: u128::MAX >> (8 * (16 - (len - 19))),
                len: len - 19,
                nanos,
                offset_min: None,
                as_written,
            });
            let time = Time {
                secs: local,
                nanos,
                offset_min: None,
            };
            return Some(Recognised {
                time,
                len,
                as_written,
            });
        }
        let len = 19 + super::fast::special_byte(b.get(19..)?)?;
        if b.get(len) != Some(&b'"') {
            return None;
        }
        let text = b.get(..len)?;
        let (nanos, offset_min) = fraction_and_offset(text).ok()?;
        let time = Time {
            secs: local - i64::from(offset_min.unwrap_or(0)) * 60,
            nanos,
            offset_min,
        };
        let as_written = self.remember(text, time);
        Some(Recognised {
            time,
            len: len + 1,
            as_written,
        })
    }

    /// The local seconds since the epoch of the date and clock that `b` starts with, when the
    /// date is the remembered one and the clock a valid `hh:mm:ss`.
    #[inline(always)]
    fn known_date_and_clock(&self, b: &[u8]) -> Option<i64> {
        let days = self.days?;
        let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
        if head[..10] != self.date || head[10] != b'T' {
            return None;
        }
        let (hour, minute, second) = clock(head[11..].try_into().ok()?)?;
        Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
    }

    /// Remembers `text` (a time string's text, without quotes) that parsed to `t`, and tells
    /// whether its tail is spelt as [`Time::write_rfc3339`] writes it.
    pub(crate) fn remember(&mut self, text: &[u8], t: Time) -> bool {
        let (Some(date), Some(tail)) = (text.get(..10), text.get(19..)) else {
            return false;
        };
        let as_written = tail_as_written(tail, &t);
        let local = t
            .secs
            .saturating_add(i64::from(t.offset_min.unwrap_or(0)) * 60);
        self.date.copy_from_slice(date);
        self.days = Some(local.div_euclid(86_400));
        // The tail and its quote must fit the 16-byte word.
        if tail.len() >= 16 {
            return as_written;
        }
        let mut bytes = [0u8; 16];
        bytes[..tail.len()].copy_from_slice(tail);
        bytes[tail.len()] = b'"';
        let len = tail.len() + 1;
        self.remember_tail(QuotedTail {
            bytes: u128::from_le_bytes(bytes),
            mask: u128::MAX >> (8 * (16 - len)),
            len,
            nanos: t.nanos,
            offset_min: t.offset_min,
            as_written,
        });
        as_written
    }

    /// Puts `entry` first among the remembered tails.
    fn remember_tail(&mut self, entry: QuotedTail) {
        let [newest, older] = self.tails;
        let same = |t: &QuotedTail| t.len == entry.len && t.bytes == entry.bytes;
        if !same(&newest) {
            // Newest first, where `recognise` looks first: a node's latest times and its samples'
            // times alternate, and a metric's samples all have the tail learnt last.
            self.tails = [if same(&older) { older } else { entry }, newest];
        }
    }
}

/// The tail of a quoted time at the start of `b` when it is spelt `.` and one to nine digits,
/// `Z` and the closing quote (how Go writes UTC times, and so nearly every tail): the 16 bytes
/// from the tail's start as a little-endian word with the bytes after the quote cleared, the
/// length of the text with its quote, and the nanoseconds. `None` for any other tail.
#[inline]
fn utc_fraction_tail(b: &[u8]) -> Option<(u128, usize, u32)> {
    use super::fast::{digits_value, leading_digits};
    let tail: &[u8; 16] = b.get(19..35)?.try_into().ok()?;
    if tail[0] != b'.' {
        return None;
    }
    let first = u64::from_le_bytes(tail[1..9].try_into().ok()?);
    let mut digits = leading_digits(first);
    let mut value = match digits {
        0 => return None,
        n => digits_value(first, n),
    };
    if digits == 8 && tail[9].is_ascii_digit() {
        value = value * 10 + u32::from(tail[9] - b'0');
        digits = 9;
    }
    // A tenth digit is not `Z`: longer fractions go the general way.
    if tail[1 + digits] != b'Z' || tail[2 + digits] != b'"' {
        return None;
    }
    // `.`, the digits, `Z` and the quote.
    let tail_len = digits + 3;
    let word = u128::from_le_bytes(*tail) & (u128::MAX >> (8 * (16 - tail_len)));
    let nanos = value * 10u32.pow(9 - digits as u32);
    Some((word, 19 + tail_len, nanos))
}

/// Whether `tail`, the text after the clock of a time that parsed to `t`, is what
/// [`Time::write_rfc3339`] writes there: a fraction of one to nine digits without trailing
/// zeros (or none), then `Z`, or a non-zero offset with minutes below 60. Go's parser also
/// takes `,`, longer or zero-padded fractions, and `+00:00` or `+01:60`, which are written
/// differently. Having parsed, the tail is digits where these checks do not look.
fn tail_as_written(tail: &[u8], t: &Time) -> bool {
    let offset_len = if t.offset_min.is_some() { 6 } else { 1 };
    let Some(fraction_len) = tail.len().checked_sub(offset_len) else {
        return false;
    };
    let fraction_as_written = match fraction_len {
        0 => true,
        2..=10 => tail[0] == b'.' && tail[fraction_len - 1] != b'0',
        _ => false,
    };
    // Parsed offset minutes run to 60; only `60` starts with a 6.
    let offset_as_written = t
        .offset_min
        .is_none_or(|minutes| minutes != 0 && tail[tail.len() - 2] != b'6');
    fraction_as_written && offset_as_written
}

/// The hour, minute and second of a clock spelt `hh:mm:ss`, if it is one (hour below 24,
/// minute and second below 60), worked out on the eight bytes as one word: a third of the
/// instructions of six digit checks and three two-digit values, for every sample's time.
#[inline(always)]
fn clock(text: [u8; 8]) -> Option<(u32, u32, u32)> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    /// The colons' bytes, and the digits' bytes (little-endian: `h` is the lowest byte).
    const COLONS: u64 = 0x0000_FF00_00FF_0000;
    const DIGITS: u64 = !COLONS;
    let word = u64::from_le_bytes(text);
    if word & COLONS != 0x0000_3A00_003A_0000 {
        return None;
    }
    // A byte is a digit when its high nibble is 3 and adding 6 keeps it there.
    let not_digit = ((word & HIGH_NIBBLES) ^ ZEROS)
        | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) ^ ZEROS);
    if not_digit & DIGITS != 0 {
        return None;
    }
    // Every byte is now at most 10 (the colons), so neither step carries between bytes: each
    // digit pair's byte becomes tens * 10 + ones.
    let values = word - ZEROS;
    let pairs = values * 10 + (values >> 8);
    let (hour, minute, second) = (pairs & 0xFF, pairs >> 24 & 0xFF, pairs >> 48 & 0xFF);
    (hour < 24 && minute < 60 && second < 60).then_some((hour as u32, minute as u32, second as u32))
}

/// Writes times the way [`Time::write_rfc3339`] does, reusing the text of the last one: the
/// date, hour and minute (`YYYY-MM-DDTHH:MM:`) when the minute is the same, and the fraction
/// and offset when they are. A metric's sample times differ only in their seconds, so most
/// times are three fixed-size copies and two digits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWriter {
    /// The Unix second at which the local minute of `prefix` starts.
    minute_start: i64,
    prefix: [u8; 17],
    /// The nanoseconds and offset (see [`TimeWriter::key`]) that `tail` (of `tail_len` bytes)
    /// and `minute_start` stand for; [`TimeWriter::NONE`] until a time is remembered.
    key: u64,
    tail: [u8; 16],
    tail_len: usize,
    /// The date last written in full.
    dates: DateCache,
}

impl Default for TimeWriter {
    fn default() -> Self {
        TimeWriter {
            minute_start: 0,
            prefix: [0; 17],
            key: Self::NONE,
            tail: [0; 16],
            tail_len: 0,
            dates: DateCache::default(),
        }
    }
}

impl TimeWriter {
    /// A key no time has.
    const NONE: u64 = u64::MAX;

    /// A time's nanoseconds and offset as one word, so the hit test is one compare: the
    /// nanoseconds in the low half, the offset's bits above them with a flag for "written with
    /// an offset" (so `Z` and `+00:00` differ).
    #[inline]
    fn key(t: &Time) -> u64 {
        let offset = t.offset_min.map_or(0, |o| u64::from(o as u16) | 0x1_0000);
        u64::from(t.nanos) | offset << 32
    }

    /// Appends `t` as [`Time::write_rfc3339`] would.
    #[inline(always)]
    pub(crate) fn write(&mut self, t: &Time, out: &mut Vec<u8>) {
        if let Some(second) = self.second_if_remembered(t) {
            // Room made once, fixed-size copies and a truncate: cheaper than copies of
            // variable length. Straight into `out`: assembling the text on the stack first
            // stalled on store forwarding.
            let start = out.len();
            out.resize(start + 35, 0);
            if let Some(room) = out
                .get_mut(start..)
                .and_then(|room| <&mut [u8; 35]>::try_from(room).ok())
            {
                let len = self.write_remembered(second, room);
                out.truncate(start + len);
                return;
            }
            out.truncate(start);
        }
        if let Some(second) = self.second_in_remembered_minute(t) {
            return self.write_new_tail(t, second, out);
        }
        self.write_and_remember(t, out);
    }

    /// The second within the remembered minute when `t` is in it with the remembered offset
    /// but another fraction: each node's times have their own, in the same minute.
    #[inline]
    fn second_in_remembered_minute(&self, t: &Time) -> Option<usize> {
        let second = t.secs.wrapping_sub(self.minute_start) as u64;
        let same_offset = self.key != Self::NONE && self.key >> 32 == Self::key(t) >> 32;
        (second < 60 && same_offset).then_some(second as usize)
    }

    /// Writes `t`, whose minute and offset are the remembered ones, from the remembered
    /// minute, its `second` and its own tail, and remembers that tail: the date and clock are
    /// copied, not worked out again.
    #[inline(never)]
    fn write_new_tail(&mut self, t: &Time, second: usize, out: &mut Vec<u8>) {
        let mut buf = [0u8; 35];
        buf[..17].copy_from_slice(&self.prefix);
        buf[17..19].copy_from_slice(&PAIRS[second % 60]);
        let n = t.write_tail(&mut buf);
        let end = out.len() + n;
        out.extend_from_slice(&buf);
        out.truncate(end);
        self.remember_tail(&buf[19..n], t);
    }

    /// The second within the remembered minute when `t` is in it and has the remembered
    /// tail, so that [`TimeWriter::write_remembered`] can write it.
    #[inline(always)]
    pub(crate) fn second_if_remembered(&self, t: &Time) -> Option<usize> {
        // A subtraction and two compares, where working out the minute took divisions.
        let second = t.secs.wrapping_sub(self.minute_start) as u64;
        (second < 60 && self.key == Self::key(t)).then_some(second as usize)
    }

    /// Writes the remembered minute, `second` and the remembered tail at the start of `dst`
    /// (bytes after the text are left as they are) and returns the text's length.
    #[inline(always)]
    pub(crate) fn write_remembered(&self, second: usize, dst: &mut [u8; 35]) -> usize {
        dst[..17].copy_from_slice(&self.prefix);
        dst[17..19].copy_from_slice(&PAIRS[second % 60]);
        dst[19..].copy_from_slice(&self.tail);
        19 + self.tail_len
    }

    /// [`TimeWriter::write`] for a time outside the remembered minute or with another tail.
    // Out of line so the common case above carries no stack frame for this one.
    #[inline(never)]
    fn write_and_remember(&mut self, t: &Time, out: &mut Vec<u8>) {
        let start = out.len();
        t.write_rfc3339_cached(out, &mut self.dates);
        let text = &out[start..];
        // Only the four-digit-year layout has its fields at these places (and its seconds
        // are far from overflowing below).
        if text.len() < 20 || text[10] != b'T' || text[16] != b':' || text.len() - 19 > 16 {
            return;
        }
        let local = t
            .secs
            .saturating_add(i64::from(t.offset_min.unwrap_or(0)) * 60);
        self.prefix.copy_from_slice(&text[..17]);
        self.minute_start = t.secs - local.rem_euclid(60);
        let tail = &out[start + 19..];
        self.remember_tail(tail, t);
    }

    /// Remembers `tail` (at most 16 bytes: the text after the seconds) as `t`'s.
    fn remember_tail(&mut self, tail: &[u8], t: &Time) {
        let mut bytes = [0u8; 16];
        let Some(room) = bytes.get_mut(..tail.len()) else {
            return;
        };
        room.copy_from_slice(tail);
        self.tail = bytes;
        self.tail_len = tail.len();
        self.key = Self::key(t);
    }
}

/// Why a string is not an RFC 3339 time Go would accept (spec §1.9, §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeParseError {
    reason: &'static str,
}

impl fmt::Display for TimeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for TimeParseError {}

impl Time {
    /// Go's zero time, `0001-01-01T00:00:00Z`: the value of a missing timestamp.
    pub const ZERO: Time = Time {
        secs: ZERO_UNIX_SECS,
        nanos: 0,
        offset_min: None,
    };

    /// The current wall-clock time. Only the command-line shell calls this; everything else
    /// takes `now` as a parameter.
    pub fn now() -> Time {
        Time::from_system(SystemTime::now())
    }

    /// Converts a system time (UTC).
    pub fn from_system(t: SystemTime) -> Time {
        let nanos = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::from(d.as_secs()) * 1_000_000_000 + i128::from(d.subsec_nanos()),
            Err(e) => {
                let d: Duration = e.duration();
                -(i128::from(d.as_secs()) * 1_000_000_000 + i128::from(d.subsec_nanos()))
            }
        };
        Time::from_unix_nanos_wide(nanos)
    }

    /// The UTC time `nanos` nanoseconds after the Unix epoch.
    pub fn from_unix_nanos(nanos: i64) -> Time {
        Time::from_unix_nanos_wide(i128::from(nanos))
    }

    fn from_unix_nanos_wide(nanos: i128) -> Time {
        let secs = nanos.div_euclid(1_000_000_000);
        let sub = nanos.rem_euclid(1_000_000_000);
        Time {
            secs: i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX }),
            // rem_euclid keeps it in 0..1e9, which fits.
            nanos: u32::try_from(sub).unwrap_or(0),
            offset_min: None,
        }
    }

    /// Nanoseconds since the Unix epoch, saturated to the `i64` range (Go's `UnixNano` is
    /// undefined outside it).
    pub fn unix_nanos(&self) -> i64 {
        let wide = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        i64::try_from(wide).unwrap_or(if wide < 0 { i64::MIN } else { i64::MAX })
    }

    /// The same time `secs` seconds later, written with the same offset (saturating).
    pub(crate) fn plus_secs(self, secs: i64) -> Time {
        Time {
            secs: self.secs.saturating_add(secs),
            ..self
        }
    }

    /// Whether this is the zero instant (Go's `IsZero`, whatever the offset).
    pub fn is_zero(&self) -> bool {
        self.secs == ZERO_UNIX_SECS && self.nanos == 0
    }

    /// The offset it was written with, in minutes east of UTC (`None` for `Z`).
    pub fn offset_minutes(&self) -> Option<i16> {
        self.offset_min
    }

    /// Parses the RFC 3339 forms Go's `time.Time.UnmarshalJSON` accepts (spec §1.9):
    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`, upper-case `T` and `Z` only, a fraction of
    /// one or more digits introduced by `.` (or `,`, which Go also takes) and truncated to
    /// nanoseconds, and ranges checked (including the day of the month).
    pub fn parse(s: &str) -> Result<Time, TimeParseError> {
        Time::parse_full(s).map(|(t, _)| t)
    }

    /// [`Time::parse`], also returning the day number of the date.
    fn parse_full(s: &str) -> Result<(Time, i64), TimeParseError> {
        let b = s.as_bytes();
        let err = |reason| Err(TimeParseError { reason });
        if b.len() < 20 {
            return err("too short for RFC 3339");
        }
        let year = digits(b, 0, 4).ok_or(TimeParseError { reason: "bad year" })?;
        if b[4] != b'-' || b[7] != b'-' {
            return err("bad date separator");
        }
        let month = digits(b, 5, 2).ok_or(TimeParseError {
            reason: "bad month",
        })?;
        let day = digits(b, 8, 2).ok_or(TimeParseError { reason: "bad day" })?;
        if b[10] != b'T' {
            return err("expected upper-case 'T' between date and time");
        }
        let hour = digits(b, 11, 2).ok_or(TimeParseError { reason: "bad hour" })?;
        if b[13] != b':' || b[16] != b':' {
            return err("bad time separator");
        }
        let minute = digits(b, 14, 2).ok_or(TimeParseError {
            reason: "bad minute",
        })?;
        let second = digits(b, 17, 2).ok_or(TimeParseError {
            reason: "bad second",
        })?;
        if !(1..=12).contains(&month) {
            return err("month out of range");
        }
        if day < 1 || day > days_in_month(year, month) {
            return err("day out of range");
        }
        if hour > 23 {
            return err("hour out of range");
        }
        if minute > 59 {
            return err("minute out of range");
        }
        if second > 59 {
            return err("second out of range");
        }
        let (nanos, offset_min) = fraction_and_offset(b)?;
        let days = days_from_civil(i64::from(year), month, day);
        let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        let secs = local - i64::from(offset_min.unwrap_or(0)) * 60;
        Ok((
            Time {
                secs,
                nanos,
                offset_min,
            },
            days,
        ))
    }

    /// Whether both are the same instant written with the same offset (so they encode the
    /// same way; `==` compares instants only).
    pub fn same_repr(&self, other: &Time) -> bool {
        self.secs == other.secs && self.nanos == other.nanos && self.offset_min == other.offset_min
    }

    /// Appends the value the way Go's `RFC3339Nano` writes it (spec §1.9): trailing zeros of
    /// the fraction trimmed, no fraction when it is zero, `Z` for a zero offset.
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        self.write_rfc3339_cached(out, &mut DateCache::default());
    }

    /// [`Time::write_rfc3339`], taking the date's text from `dates` when it is the same day
    /// and remembering it otherwise.
    pub(crate) fn write_rfc3339_cached(&self, out: &mut Vec<u8>, dates: &mut DateCache) {
        let off = i64::from(self.offset_min.unwrap_or(0));
        let local = self.secs.saturating_add(off * 60);
        let days = local.div_euclid(86_400);
        if dates.days != Some(days) {
            let (y, m, d) = civil_from_days(days);
            if !(0..=9999).contains(&y) {
                return self.write_rfc3339_slow(out);
            }
            let y = y as usize;
            let mut text = *b"0000-00-00";
            text[..2].copy_from_slice(&PAIRS[y / 100]);
            text[2..4].copy_from_slice(&PAIRS[y % 100]);
            text[5..7].copy_from_slice(&PAIRS[m as usize]);
            text[8..10].copy_from_slice(&PAIRS[d as usize]);
            *dates = DateCache {
                text,
                days: Some(days),
            };
        }
        // The longest form: date, `T`, clock, 9 fraction digits and an offset.
        let mut buf = [0u8; 35];
        buf[..10].copy_from_slice(&dates.text);
        let sod = local.rem_euclid(86_400) as usize;
        buf[10] = b'T';
        buf[11..13].copy_from_slice(&PAIRS[sod / 3600]);
        buf[13] = b':';
        buf[14..16].copy_from_slice(&PAIRS[sod / 60 % 60]);
        buf[16] = b':';
        buf[17..19].copy_from_slice(&PAIRS[sod % 60]);
        let n = self.write_tail(&mut buf);
        // A fixed-size copy and a truncate: cheaper than a copy of variable length.
        let end = out.len() + n;
        out.extend_from_slice(&buf);
        out.truncate(end);
    }

    /// Writes the fraction and offset `write_rfc3339` puts after the clock at `buf[19..]`, and
    /// returns where the text ends.
    #[inline]
    fn write_tail(&self, buf: &mut [u8; 35]) -> usize {
        let off = i64::from(self.offset_min.unwrap_or(0));
        let mut n = 19;
        if self.nanos != 0 {
            // Invariant: nanos < 1e9, so nine digits; trailing zeros are trimmed.
            let ns = self.nanos as usize;
            buf[19] = b'.';
            buf[20] = b'0' + (ns / 100_000_000 % 10) as u8;
            buf[21..23].copy_from_slice(&PAIRS[ns / 1_000_000 % 100]);
            buf[23..25].copy_from_slice(&PAIRS[ns / 10_000 % 100]);
            buf[25..27].copy_from_slice(&PAIRS[ns / 100 % 100]);
            buf[27..29].copy_from_slice(&PAIRS[ns % 100]);
            n = 29;
            while buf[n - 1] == b'0' {
                n -= 1;
            }
        }
        if off == 0 {
            buf[n] = b'Z';
            n += 1;
        } else {
            buf[n] = if off < 0 { b'-' } else { b'+' };
            let a = off.unsigned_abs() as usize;
            // Offsets are at most ±24:60 when parsed; clamp what code might build.
            let (h, mm) = ((a / 60).min(99), a % 60);
            buf[n + 1..n + 3].copy_from_slice(&PAIRS[h]);
            buf[n + 3] = b':';
            buf[n + 4..n + 6].copy_from_slice(&PAIRS[mm]);
            n += 6;
        }
        n
    }

    /// The general writer, for years outside 0000–9999 too.
    fn write_rfc3339_slow(&self, out: &mut Vec<u8>) {
        let off = i64::from(self.offset_min.unwrap_or(0));
        let local = self.secs.saturating_add(off * 60);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 64];
        let mut n = 0;
        if (0..=9999).contains(&y) {
            let y = y as usize;
            buf[..2].copy_from_slice(&PAIRS[y / 100]);
            buf[2..4].copy_from_slice(&PAIRS[y % 100]);
            n = 4;
        } else {
            // Outside Go's four-digit range only values built in code can get here; write a
            // sign and the full number rather than something that reads like a valid year.
            let mut tmp = Vec::with_capacity(24);
            if y < 0 {
                tmp.push(b'-');
            }
            push_num(&mut tmp, y.unsigned_abs(), 4);
            out.extend_from_slice(&tmp);
        }
        let hms = [b'-', 0, 0, b'-', 0, 0, b'T', 0, 0, b':', 0, 0, b':', 0, 0];
        buf[n..n + 15].copy_from_slice(&hms);
        buf[n + 1..n + 3].copy_from_slice(&PAIRS[m as usize]);
        buf[n + 4..n + 6].copy_from_slice(&PAIRS[d as usize]);
        buf[n + 7..n + 9].copy_from_slice(&PAIRS[(sod / 3600) as usize]);
        buf[n + 10..n + 12].copy_from_slice(&PAIRS[(sod / 60 % 60) as usize]);
        buf[n + 13..n + 15].copy_from_slice(&PAIRS[(sod % 60) as usize]);
        n += 15;
        if self.nanos != 0 {
            buf[n] = b'.';
            n += 1;
            let mut frac = self.nanos;
            let mut width = 9;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            for i in (0..width).rev() {
                buf[n + i] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            n += width;
        }
        if off == 0 {
            buf[n] = b'Z';
            n += 1;
        } else {
            buf[n] = if off < 0 { b'-' } else { b'+' };
            let a = off.unsigned_abs() as usize;
            // Offsets are at most ±24:60 when parsed; clamp what code might build.
            let (h, mm) = ((a / 60).min(99), a % 60);
            buf[n + 1..n + 3].copy_from_slice(&PAIRS[h]);
            buf[n + 3] = b':';
            buf[n + 4..n + 6].copy_from_slice(&PAIRS[mm]);
            n += 6;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The optional fraction from byte 19 and the `Z` or `±hh:mm` that must end the text:
/// nanoseconds and the offset in minutes (`None` for `Z`).
fn fraction_and_offset(b: &[u8]) -> Result<(u32, Option<i16>), TimeParseError> {
    let err = |reason| Err(TimeParseError { reason });
    let mut i = 19;
    let mut nanos: u32 = 0;
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let mut n = 0;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            // Go keeps the first nine digits and drops the rest (spec §1.9).
            if n < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            n += 1;
            i += 1;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z') if b.len() == i + 1 => None,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2).ok_or(TimeParseError {
                reason: "bad offset hour",
            })?;
            let om = digits(b, i + 4, 2).ok_or(TimeParseError {
                reason: "bad offset minute",
            })?;
            // Go rejects only offsets beyond 24 hours or 60 minutes.
            if oh > 24 || om > 60 {
                return err("offset out of range");
            }
            let total = (oh * 60 + om) as i16;
            Some(if sign == b'-' { -total } else { total })
        }
        Some(b'Z') => return err("extra text after 'Z'"),
        None => return err("missing 'Z' or ±hh:mm offset"),
        _ => return err("expected 'Z' or ±hh:mm offset"),
    };
    Ok((nanos, offset_min))
}

/// `"00"` … `"99"`.
pub(crate) static PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

impl Default for Time {
    fn default() -> Time {
        Time::ZERO
    }
}

impl PartialEq for Time {
    fn eq(&self, other: &Time) -> bool {
        self.secs == other.secs && self.nanos == other.nanos
    }
}

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Time) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Time) -> Ordering {
        (self.secs, self.nanos).cmp(&(other.secs, other.nanos))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(40);
        self.write_rfc3339(&mut buf);
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads `n` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn push_num(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = buf.len() - i;
    for _ in len..width {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

fn is_leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: Time) -> String {
        t.to_string()
    }

    fn round(s: &str) -> String {
        fmt(Time::parse(s).unwrap())
    }

    // `QuotedTimes` recognises only texts equal to a remembered date and tail around a valid
    // clock, and then gives `parse`'s value and finds the closing quote.
    #[test]
    fn quoted_times_agree_with_parse() {
        let remembered = [
            "2023-06-01T10:00:00.780774697Z",
            "2023-06-01T10:00:00.5+02:00",
            "2023-06-01T10:00:00Z",
        ];
        let probes = [
            "2023-06-01T10:00:07.780774697Z",
            "2023-06-01T23:59:59.780774697Z",
            "2023-06-01T00:00:00.5+02:00",
            "2023-06-01T11:22:33Z",
            "2023-06-01T24:00:00Z",
            "2023-06-01T12:60:00Z",
            "2023-06-01T12:00:60Z",
            "2023-06-01T1a:00:00Z",
            "2023-06-01t12:00:00Z",
            "2023-06-01T12-00:00Z",
            "2023-06-02T10:00:00Z",
            "2023-06-01T10:00:00.78077469Z",
            "2023-06-01T10:00:00.7807746970Z",
            "2023-06-01T10:00:00.780774697",
            "2023-06-01T10:00:00Zx",
            // Every fraction length around the eight-digit word, and its edges.
            "2023-06-01T10:00:00.1Z",
            "2023-06-01T10:00:00.10Z",
            "2023-06-01T10:00:00.1234567Z",
            "2023-06-01T10:00:00.12345678Z",
            "2023-06-01T10:00:00.123456780Z",
            "2023-06-01T10:00:00.123456789Z",
            "2023-06-01T10:00:00.1234567891Z",
            "2023-06-01T10:00:00.000000001Z",
            "2023-06-01T10:00:00.Z",
            "2023-06-01T10:00:00.12Zx",
            "2023-06-01T10:00:00.12+01:00",
        ];
        for first in remembered {
            let mut times = QuotedTimes::default();
            let t = Time::parse(first).unwrap();
            times.remember(first.as_bytes(), t);
            for probe in std::iter::once(first).chain(probes) {
                let quoted = format!("{probe}\",\"value\":1}}]}}}}}}");
                let want = Time::parse(probe).ok();
                match times.quick(quoted.as_bytes()) {
                    Some(Recognised { time: got, len, .. }) => {
                        assert_eq!(Some(got), want, "{first} then {probe}");
                        assert!(got.same_repr(&want.unwrap()), "{first} then {probe}");
                        assert_eq!(len, probe.len() + 1, "{first} then {probe}");
                    }
                    // A miss is always allowed; the first text itself must hit.
                    None => assert_ne!(probe, first, "remembered text missed"),
                }
                // A new tail on the remembered date is read and then remembered; anything
                // else is left to the general parse.
                let mut learning = times;
                match learning.on_known_date(quoted.as_bytes()) {
                    Some(hit @ Recognised { time: got, len, .. }) => {
                        assert_eq!(Some(got), want, "{first} then {probe}");
                        assert!(got.same_repr(&want.unwrap()), "{first} then {probe}");
                        assert_eq!(len, probe.len() + 1, "{first} then {probe}");
                        assert_eq!(learning.quick(quoted.as_bytes()), Some(hit));
                    }
                    None => assert!(
                        want.is_none() || !probe.starts_with("2023-06-01T"),
                        "{first} then {probe}: a valid time on the known date missed"
                    ),
                }
            }
        }
        // Escapes and a string that does not end are left to the general path.
        let mut times = QuotedTimes::default();
        let first = "2023-06-01T10:00:00Z";
        times.remember(first.as_bytes(), Time::parse(first).unwrap());
        for text in [
            &br#"2023-06-01T10:00:00\u005a""#[..],
            b"2023-06-01T10:00:00.5",
            b"2023-06-01T10:00:00.5\x01Z\"",
        ] {
            assert_eq!(times.on_known_date(text), None, "{text:?}");
        }
        // Two tails are kept, so alternating fraction lengths both hit.
        let mut times = QuotedTimes::default();
        for text in [
            "2023-06-01T10:00:00.076932697Z",
            "2023-06-01T10:00:00.076932Z",
        ] {
            times.remember(text.as_bytes(), Time::parse(text).unwrap());
        }
        for probe in [
            "2023-06-01T10:00:00.076932697Z\"    ",
            "2023-06-01T10:00:00.076932Z\"       ",
        ] {
            let got = times.quick(probe.as_bytes()).expect(probe).time;
            assert_eq!(
                Some(got),
                Time::parse(probe.split('"').next().unwrap()).ok()
            );
        }
        // Nothing remembered, or no room for the 16-byte compare: a miss, never a guess.
        assert!(
            QuotedTimes::default()
                .quick(b"2023-06-01T10:00:00Z\"")
                .is_none()
        );
    }

    // A recognised time is flagged as written exactly when writing its value gives its text
    // back, over every fraction length, trailing zeros, both separators and offset spellings;
    // so a flagged text can be copied in place of writing the time.
    #[test]
    fn recognised_as_written_exactly_when_writing_gives_the_text_back() {
        let fractions = [
            "",
            ".5",
            ".50",
            ".05",
            ",5",
            ".123456789",
            ".123456780",
            ".1234567891",
            ".1234567890",
            ".000000001",
            ".0",
            ".100000000",
        ];
        let offsets = [
            "Z", "+00:00", "-00:00", "+02:00", "-11:30", "+01:60", "+24:00", "-00:01", "+05:07",
            "-24:60", "+00:60", "+06:06", "-16:59",
        ];
        let (mut written, mut not) = (0, 0);
        for fraction in fractions {
            for offset in offsets {
                let text = format!("2023-06-01T10:20:30{fraction}{offset}");
                let Ok(t) = Time::parse(&text) else {
                    continue;
                };
                let mut again = Vec::new();
                t.write_rfc3339(&mut again);
                let want = again == text.as_bytes();
                let quoted = format!("{text}\",\"value\":1}}]}}}}}}");
                // Learnt from a parse, then read through each recognising path.
                let mut times = QuotedTimes::default();
                assert_eq!(times.remember(text.as_bytes(), t), want, "{text}");
                if text.len() - 19 < 16 {
                    let hit = times.quick(quoted.as_bytes()).expect(&text);
                    assert_eq!(hit.as_written, want, "{text}");
                }
                let mut times = QuotedTimes::default();
                times.remember(
                    b"2023-06-01T00:00:00Z",
                    Time::parse("2023-06-01T00:00:00Z").unwrap(),
                );
                let hit = times.on_known_date(quoted.as_bytes()).expect(&text);
                assert_eq!(hit.as_written, want, "{text}");
                if want { written += 1 } else { not += 1 }
            }
        }
        assert!(written > 10 && not > 10, "{written} written, {not} not");
    }

    // The cached writers write what the general one writes, whatever they remember.
    #[test]
    fn cached_parse_and_write_agree_with_the_plain_ones() {
        let texts = [
            "2023-06-01T00:00:00Z",
            "2023-06-01T23:59:59.999999999Z",
            "2023-06-01T12:30:00.5+02:00",
            "2023-06-01T12:30:00,25-11:30",
            "2023-06-01T24:00:00Z",
            "2023-06-01T12:60:00Z",
            "2023-06-01t12:00:00Z",
            "2023-06-01T12:00:00",
            "2023-06-01T12:00:00.Z",
            "2023-06-01T12:00:00.1234567891234Z",
            "2023-06-01T12:00:00Zx",
            "2023-06-01T12:00:00+25:00",
            "2023-06-01T1a:00:00Z",
            "2023-06-01X",
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-06-0",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.1+14:00",
            "2023-06-01T00:00:00-00:00",
        ];
        let mut written = DateCache::default();
        let mut writer = TimeWriter::default();
        for round in 0..2 {
            for a in texts {
                for b in [texts[0], a] {
                    if let Ok(t) = Time::parse(b) {
                        let (mut plain, mut cached, mut reused) =
                            (Vec::new(), Vec::new(), Vec::new());
                        t.write_rfc3339_slow(&mut plain);
                        t.write_rfc3339_cached(&mut cached, &mut written);
                        writer.write(&t, &mut reused);
                        assert_eq!(cached, plain, "round {round}: {b}");
                        assert_eq!(reused, plain, "round {round}: {b}");
                    }
                }
            }
        }
        for nanos in [
            1,
            10,
            100_000_000,
            123_456_789,
            999_999_999,
            500_000_000,
            120,
        ] {
            let t = Time::from_unix_nanos(1_700_000_000_000_000_000 + nanos);
            let (mut plain, mut cached) = (Vec::new(), Vec::new());
            t.write_rfc3339_slow(&mut plain);
            t.write_rfc3339_cached(&mut cached, &mut written);
            assert_eq!(cached, plain);
        }
        let far = Time::from_unix_nanos(i64::MIN);
        let (mut plain, mut cached) = (Vec::new(), Vec::new());
        far.write_rfc3339_slow(&mut plain);
        far.write_rfc3339_cached(&mut cached, &mut written);
        assert_eq!(cached, plain);
    }

    // The writer's reuse of the last minute and tail, across minute and day boundaries,
    // before and after 1970, with and without offsets.
    #[test]
    fn time_writer_agrees_with_the_plain_writer_around_boundaries() {
        let mut writer = TimeWriter::default();
        for base in [1_700_000_000_i64, -86_400 * 400 - 1, 0] {
            for offset_min in [None, Some(0), Some(90), Some(-330)] {
                for step in 0..80_i64 {
                    let t = Time {
                        secs: base - 130 + step * 7 / 2,
                        nanos: [0, 500_000_000, 780_774_697][(step / 30 % 3) as usize],
                        offset_min,
                    };
                    let (mut plain, mut reused) = (Vec::new(), Vec::new());
                    t.write_rfc3339_slow(&mut plain);
                    writer.write(&t, &mut reused);
                    assert_eq!(
                        String::from_utf8(reused).unwrap(),
                        String::from_utf8(plain).unwrap(),
                        "{t:?}"
                    );
                }
            }
        }
        // A new fraction, or a new offset, at nearly every time of a minute (how a node's
        // latest times follow another node's).
        let offsets = [None, Some(0), Some(90), None, Some(-330)];
        for base in [1_700_000_000_i64, -86_400 * 400 - 1] {
            for step in 0..200_i64 {
                let t = Time {
                    secs: base - 100 + step,
                    nanos: [0, 500_000_000, 780_774_697, 1, 120][(step % 5) as usize],
                    offset_min: offsets[(step / 3 % 5) as usize],
                };
                let (mut plain, mut reused) = (Vec::new(), Vec::new());
                t.write_rfc3339_slow(&mut plain);
                writer.write(&t, &mut reused);
                assert_eq!(reused, plain, "{t:?}");
            }
        }
    }

    // The word-wide clock reader gives what reading each digit does, and rejects the rest.
    #[test]
    fn clock_reads_every_valid_clock_and_nothing_else() {
        fn naive(t: &[u8; 8]) -> Option<(u32, u32, u32)> {
            let digit = |i: usize| t[i].is_ascii_digit().then(|| u32::from(t[i] - b'0'));
            let pair = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
            let (h, m, s) = (pair(0)?, pair(3)?, pair(6)?);
            (t[2] == b':' && t[5] == b':' && h < 24 && m < 60 && s < 60).then_some((h, m, s))
        }
        for h in 0..100 {
            for m in (0..100).step_by(3) {
                for s in 0..100 {
                    let text: [u8; 8] = format!("{h:02}:{m:02}:{s:02}")
                        .into_bytes()
                        .try_into()
                        .unwrap();
                    assert_eq!(clock(text), naive(&text), "{text:?}");
                }
            }
        }
        for at in 0..8 {
            for junk in [
                b'/', b':', b';', b'a', b' ', 0, 0x80, 0xB9, 0xFF, b'0', b'9',
            ] {
                let mut text = *b"23:59:59";
                text[at] = junk;
                assert_eq!(clock(text), naive(&text), "{text:?}");
            }
        }
    }

    // spec §1.9: Go's zero time.
    #[test]
    fn zero_time_formats_like_go() {
        assert_eq!(fmt(Time::ZERO), "0001-01-01T00:00:00Z");
        assert!(Time::parse("0001-01-01T00:00:00Z").unwrap().is_zero());
        // Zero instant written with an offset is still zero (Go's IsZero is about the instant).
        assert!(Time::parse("0001-01-01T01:00:00+01:00").unwrap().is_zero());
        assert!(!Time::parse("0001-01-01T00:00:01Z").unwrap().is_zero());
        assert_eq!(Time::default(), Time::ZERO);
    }

    // spec §1.9: trailing zeros trimmed, zero fraction omitted, offset kept.
    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(round("2023-06-01T09:30:17Z"), "2023-06-01T09:30:17Z");
        assert_eq!(round("2023-06-01T09:30:17.250Z"), "2023-06-01T09:30:17.25Z");
        assert_eq!(round("2023-06-01T09:30:17.000Z"), "2023-06-01T09:30:17Z");
        assert_eq!(
            round("2023-06-01T09:30:20.000919Z"),
            "2023-06-01T09:30:20.000919Z"
        );
        assert_eq!(
            round("2023-06-01T11:00:00+02:00"),
            "2023-06-01T11:00:00+02:00"
        );
        assert_eq!(
            round("2023-06-01T11:00:00-05:30"),
            "2023-06-01T11:00:00-05:30"
        );
        // Go's Z07:00 writes a zero offset as Z.
        assert_eq!(round("2023-06-01T11:00:00+00:00"), "2023-06-01T11:00:00Z");
        assert_eq!(round("2023-06-01T11:00:00-00:00"), "2023-06-01T11:00:00Z");
    }

    // spec §1.9: the offset is kept but not used in comparisons.
    #[test]
    fn keeps_offset_compares_instants() {
        let a = Time::parse("2023-06-01T11:00:00+02:00").unwrap();
        let b = Time::parse("2023-06-01T09:00:00Z").unwrap();
        let c = Time::parse("2023-06-01T09:00:00+00:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.offset_minutes(), Some(120));
        assert_eq!(b.offset_minutes(), None);
        assert_eq!(c.offset_minutes(), Some(0));
        assert_eq!(b, c);
        let later = Time::parse("2023-06-01T09:00:00.000000001Z").unwrap();
        assert!(later > a);
        assert!(Time::ZERO < a);
    }

    // spec §1.9: any number of fraction digits, truncated (not rounded) to nanoseconds.
    #[test]
    fn long_fractions_truncate() {
        assert_eq!(
            round("2023-06-01T09:30:17.1234567899999Z"),
            "2023-06-01T09:30:17.123456789Z"
        );
        assert_eq!(round("2023-06-01T09:30:17.1Z"), "2023-06-01T09:30:17.1Z");
        // Go also accepts a comma before the fraction.
        assert_eq!(round("2023-06-01T09:30:17,5Z"), "2023-06-01T09:30:17.5Z");
    }

    // spec §9.1: forms Go rejects.
    #[test]
    fn rejects_invalid_forms() {
        for bad in [
            "2016-07-20T15:51:05Z01:00",
            "2016-07-20T15:51:05+0100",
            "2016-07-20 15:51:05Z",
            "2016-07-20t15:51:05Z",
            "2016-07-20T15:51:05z",
            "",
            "1468000000",
            "2016-07-20T15:51:05",
            "2016-07-20T15:51:05.Z",
            "2016-07-20T15:51:05.123",
            "16-07-20T15:51:05Z",
            "2016-7-20T15:51:05Z",
            "2016-13-20T15:51:05Z",
            "2016-00-20T15:51:05Z",
            "2016-02-30T15:51:05Z",
            "2015-02-29T15:51:05Z",
            "2016-04-31T15:51:05Z",
            "2016-07-20T24:51:05Z",
            "2016-07-20T15:60:05Z",
            "2016-07-20T15:51:60Z",
            "2016-07-20T15:51:05+01",
            "2016-07-20T15:51:05+01:00 ",
            "2016-07-20T15:51:05+1:00x",
            "+2016-07-20T15:51:05Z",
            "２016-07-20T15:51:05Z",
        ] {
            assert!(Time::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Time::parse("2016-02-29T15:51:05Z").is_ok());
        assert!(Time::parse("2000-02-29T00:00:00Z").is_ok());
        assert!(Time::parse("1900-02-29T00:00:00Z").is_err());
        assert!(Time::parse("0000-01-01T00:00:00Z").is_ok());
        assert!(Time::parse("9999-12-31T23:59:59.999999999Z").is_ok());
    }

    #[test]
    fn unix_nanos_round_trip() {
        let t = Time::parse("2023-06-01T09:30:17.25Z").unwrap();
        assert_eq!(t.unix_nanos(), 1_685_611_817_250_000_000);
        assert_eq!(Time::from_unix_nanos(t.unix_nanos()), t);
        assert_eq!(fmt(Time::from_unix_nanos(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            fmt(Time::from_unix_nanos(-1)),
            "1969-12-31T23:59:59.999999999Z"
        );
        let sys = UNIX_EPOCH + Duration::from_nanos(1_685_611_817_250_000_000);
        assert_eq!(Time::from_system(sys), t);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(fmt(Time::from_system(before)), "1969-12-31T23:59:59Z");
        assert!(Time::now() > t);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_162i64, -1, 0, 1, 10_957, 19_509, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
