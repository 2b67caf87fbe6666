//! JSON → [`Report`] with the ugorji codec's rules (spec §1) and Scope's legacy node fields
//! (spec §4.3).
//!
//! Owns: the hand-written serde visitors that decode *over* an existing value (spec §1.4),
//! lenient scalars (§1.6), the first-value-only rule (§1.7), set normalisation (§9.7) and the
//! error path that names where a document is wrong. Does not own validation of plugin specs
//! (the plugin host does that) or anything after decoding.
//!
//! Where Go swallows an error inside a self-decoding type and carries on from the wrong place
//! (§1.8), we reject the whole document instead, as the spec recommends.
//!
//! This serde decoder is the reference. The public functions first try the hand-written
//! scanner in `fast.rs`, which takes the common well-formed documents and hands everything
//! else here; property tests hold the two to the same results.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use super::arena::DecodeArena;
use super::error::{DecodeError, message_without_position};
use super::model::{
    Column, Control, DnsRecord, LatestEntry, LatestMap, MetadataTemplate, Metric, MetricTemplate,
    Node, NodeSet, Number, PluginSpec, PluginSpecs, Sample, Sampling, SortedMap, StringSet,
    TableTemplate, Topology,
};
use super::time::Time;
use super::{Report, Str, TopologyKind};

/// Decodes a plugin's `GET /report` body over [`Report::make`] (spec §2.3, §1.4, §1.5).
///
/// `now` stamps legacy `counters` (§4.3). The body must be UTF-8 and start with a JSON object;
/// bytes after that object are ignored (§1.7). Any malformed part makes the whole document an
/// error (§1.8 recommendation).
pub fn decode_plugin_report(body: &[u8], now: Time) -> Result<Report<'_>, DecodeError> {
    let text = utf8(body)?;
    let mut report = Report::make();
    decode_over(text, &mut report, now, Report::make, First::Fast(None))?;
    Ok(report)
}

/// [`decode_plugin_report`] that puts what the report cannot borrow from `body` (strings
/// unescaped from JSON escapes, metric sample lists, sets, a node's maps) in `arena` instead of
/// a heap block each. The same report otherwise; it borrows from both. (A document the fast
/// path leaves to the serde decoder is decoded on the heap.)
pub fn decode_plugin_report_in<'a>(
    body: &'a [u8],
    now: Time,
    arena: &'a DecodeArena,
) -> Result<Report<'a>, DecodeError> {
    let text = utf8(body)?;
    let mut report = Report::make();
    decode_over(
        text,
        &mut report,
        now,
        Report::make,
        First::Fast(Some(arena)),
    )?;
    Ok(report)
}

/// Decodes a control response's `shortcutReport` over [`Report::empty`] (spec §7.9): no default
/// shapes or labels. Same rules as [`decode_plugin_report`] otherwise.
pub fn decode_shortcut_report(json: &str, now: Time) -> Result<Report<'_>, DecodeError> {
    let mut report = Report::empty();
    decode_over(json, &mut report, now, Report::empty, First::Fast(None))?;
    Ok(report)
}

/// [`decode_plugin_report`] with the serde decoder only (the reference the fast path is
/// tested against).
#[doc(hidden)]
pub fn decode_reference(body: &[u8], now: Time) -> Result<Report<'_>, DecodeError> {
    let text = utf8(body)?;
    let mut report = Report::make();
    decode_over(text, &mut report, now, Report::make, First::Reference)?;
    Ok(report)
}

/// The fast path alone over [`Report::make`]: `None` where it would hand over to the serde
/// decoder.
#[doc(hidden)]
pub fn decode_fast_only(body: &[u8], now: Time) -> Option<Report<'_>> {
    let text = utf8(body).ok()?;
    let mut report = Report::make();
    super::fast::decode(text, &mut report, now, None)?;
    Some(report)
}

/// `body` as text, or where it stops being UTF-8. (A body is checked whole before any of it
/// is read: every string the report borrows from it is then a `&str` without more checks.)
fn utf8(body: &[u8]) -> Result<&str, DecodeError> {
    simdutf8::compat::from_utf8(body).map_err(|e| DecodeError::utf8(e.valid_up_to()))
}

/// Which decoder reads a document first.
#[derive(Clone, Copy)]
enum First<'a> {
    /// The fast path, with the arena for what it cannot borrow (the heap when `None`); the
    /// serde decoder when it bails.
    Fast(Option<&'a DecodeArena>),
    /// The serde decoder alone (the reference).
    Reference,
}

fn decode_over<'a>(
    text: &'a str,
    report: &mut Report<'a>,
    now: Time,
    base: fn() -> Report<'a>,
    first: First<'a>,
) -> Result<(), DecodeError> {
    if let First::Fast(arena) = first {
        if super::fast::decode(text, report, now, arena).is_some() {
            return Ok(());
        }
        // The fast path only takes what it fully understands; everything else, errors
        // included, goes through the serde decoder from a fresh base.
        *report = base();
    }
    let times = TimeCache::default();
    let mut cx = Cx {
        now,
        raw_numbers: false,
        times: &times,
    };
    loop {
        let mut de = serde_json::Deserializer::from_str(text);
        // No `de.end()`: only the first JSON value is read (spec §1.7).
        match ReportSeed(report, cx).deserialize(&mut de) {
            Ok(()) => return Ok(()),
            // A non-integral number in a string field: its literal text is needed, which the
            // visitors cannot see. Rare, so decode once more from scratch keeping raw text.
            Err(err) if !cx.raw_numbers && err.to_string().starts_with(NEEDS_RAW) => {
                cx.raw_numbers = true;
                *report = base();
            }
            Err(err) => {
                return Err(DecodeError::from_json(
                    text,
                    &err,
                    path_of_error(text, base(), cx),
                ));
            }
        }
    }
}

/// The message of the internal error that switches decoding to raw-text mode.
const NEEDS_RAW: &str = "\u{0}scope-probe: literal number text needed";

/// The error path only: decodes again with path tracking to name where the fault is, so the
/// success path pays nothing for it.
fn path_of_error<'a>(text: &'a str, mut report: Report<'a>, cx: Cx<'_>) -> Option<String> {
    let mut track = serde_path_to_error::Track::new();
    let mut json = serde_json::Deserializer::from_str(text);
    let de = serde_path_to_error::Deserializer::new(&mut json, &mut track);
    match ReportSeed(&mut report, cx).deserialize(de) {
        Ok(()) => None,
        Err(_) => Some(format_path(&track.path())),
    }
}

/// Formats a path as `Host.nodes["vm;<host>"].latest.os.timestamp`: identifier-like keys
/// after a dot, anything else quoted in brackets.
fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let ident = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ident {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{key:?}]"));
                }
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// What every decoder needs besides its target.
#[derive(Clone, Copy)]
struct Cx<'c> {
    /// Stamps legacy counters (§4.3).
    now: Time,
    /// Whether string fields take numbers through their raw text (slower). Otherwise they
    /// handle strings, integers, booleans and null directly and stop with [`NEEDS_RAW`] on a
    /// float, whose literal text (`4.5e3`) only the raw token has.
    raw_numbers: bool,
    /// The last timestamp parsed: in probe reports most timestamps of a node are the same
    /// string, and comparing is cheaper than parsing.
    times: &'c TimeCache,
}

/// One remembered timestamp: its text and value.
#[derive(Default)]
struct TimeCache {
    last: std::cell::Cell<CachedTime>,
}

#[derive(Clone, Copy)]
struct CachedTime {
    text: [u8; 40],
    len: u8,
    time: Time,
}

impl Default for CachedTime {
    fn default() -> Self {
        CachedTime {
            text: [0; 40],
            len: 0,
            time: Time::ZERO,
        }
    }
}

impl TimeCache {
    fn parse(&self, s: &str) -> Result<Time, super::time::TimeParseError> {
        let last = self.last.get();
        // `len == 0` is the empty cache; no valid time is that short.
        if last.len != 0
            && usize::from(last.len) == s.len()
            && last.text.get(..s.len()) == Some(s.as_bytes())
        {
            return Ok(last.time);
        }
        let time = Time::parse(s)?;
        let mut text = [0u8; 40];
        if let (Some(dst), Ok(len)) = (text.get_mut(..s.len()), u8::try_from(s.len())) {
            dst.copy_from_slice(s.as_bytes());
            self.last.set(CachedTime { text, len, time });
        }
        Ok(time)
    }
}

/// A value that can be decoded over its current contents (spec §1.4: absent keys keep what
/// was there).
trait DecodeOver<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error>;
}

/// Seed that decodes into `&mut T`.
struct Over<'x, 'c, T>(&'x mut T, Cx<'c>);

impl<'de, T: DecodeOver<'de>> DeserializeSeed<'de> for Over<'_, '_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.decode_over(d, self.1)
    }
}

/// A struct with Go field names: `null` resets it to zero (§1.5), an object fills the named
/// fields over the current ones, unknown keys are skipped (§1.3).
trait Fields<'de>: Default {
    const EXPECTING: &'static str;
    /// Decodes the value of field `key` (exact, case-sensitive, §1.2). Must consume the value.
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error>;
}

struct StructVisitor<'x, 'c, T>(&'x mut T, Cx<'c>);

impl<'de, T: Fields<'de>> Visitor<'de> for StructVisitor<'_, '_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.0 = T::default();
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.0.field(&key, &mut map, self.1)?;
        }
        Ok(())
    }
}

macro_rules! struct_over {
    ($($ty:ident),*) => {$(
        impl<'de> DecodeOver<'de> for $ty<'de> {
            fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
                d.deserialize_any(StructVisitor(self, cx))
            }
        }
    )*};
}

struct_over!(
    Topology,
    LatestEntry,
    Control,
    MetadataTemplate,
    MetricTemplate,
    TableTemplate,
    Column,
    DnsRecord,
    PluginSpec
);

impl<'de> DecodeOver<'de> for Metric<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(StructVisitor(self, cx))
    }
}

impl<'de> DecodeOver<'de> for Sample<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(StructVisitor(self, cx))
    }
}

impl<'de> DecodeOver<'de> for Sampling {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(StructVisitor(self, cx))
    }
}

// ---- scalars ---------------------------------------------------------------------------

/// A map key or field name: borrowed unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Str<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str<'de>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v))
    }
}

/// A string field with ugorji's leniency (spec §1.6): a number, boolean or `null` becomes its
/// literal text (`4.5e3` → `"4.5e3"`, `null` → `""`). Strings without escapes stay borrowed.
/// The flag is [`Cx::raw_numbers`]: when set, the raw token gives the literal text.
struct LenientStr(bool);

impl<'de> DeserializeSeed<'de> for LenientStr {
    type Value = Str<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str<'de>, D::Error> {
        if self.0 {
            let raw: &'de RawValue = serde::Deserialize::deserialize(d)?;
            lenient_text(raw.get()).map_err(D::Error::custom)
        } else {
            d.deserialize_any(FastStrVisitor)
        }
    }
}

/// [`LenientStr`] without raw text. JSON integers have one spelling, so their text is
/// rebuilt exactly (`-0` and integers beyond 64 bits arrive as floats).
struct FastStrVisitor;

impl<'de> Visitor<'de> for FastStrVisitor {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Str<'de>, E> {
        Ok(Cow::Borrowed(""))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Str<'de>, E> {
        Ok(Cow::Borrowed(if v { "true" } else { "false" }))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Str<'de>, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Str<'de>, E> {
        Err(E::custom(NEEDS_RAW))
    }
}

fn lenient_text(raw: &str) -> Result<Str<'_>, String> {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let inner = raw.get(1..raw.len() - 1).unwrap_or("");
            if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
                Ok(Cow::Borrowed(inner))
            } else {
                serde_json::from_str::<String>(raw)
                    .map(Cow::Owned)
                    .map_err(|e| e.to_string())
            }
        }
        Some(b'n') => Ok(Cow::Borrowed("")),
        Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(Cow::Borrowed(raw)),
        Some(b'[') => Err("invalid type: array, expected a string".to_owned()),
        Some(b'{') => Err("invalid type: map, expected a string".to_owned()),
        _ => Err("expected a string".to_owned()),
    }
}

fn decode_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    into: &mut Str<'de>,
    cx: Cx<'_>,
) -> Result<(), A::Error> {
    *into = map.next_value_seed(LenientStr(cx.raw_numbers))?;
    Ok(())
}

/// An integer field (spec §1.6): numbers and quoted numbers; non-integral numbers and
/// booleans are errors; `null` is zero.
struct LenientInt;

impl<'de> DeserializeSeed<'de> for LenientInt {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientInt {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("integer {v} overflows int64")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        float_to_int(v).ok_or_else(|| E::custom(format!("cannot decode non-integer {v} into int")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        if let Ok(i) = v.parse::<i64>() {
            return Ok(i);
        }
        match json_number(v) {
            Some(f) => self.visit_f64(f),
            None => Err(E::custom(format!("cannot decode {v:?} into int"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
}

/// An unsigned integer field (`Sampling`), with the same leniency.
struct LenientUint;

impl<'de> DeserializeSeed<'de> for LenientUint {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientUint {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("cannot decode negative {v} into uint")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        match float_to_int(v) {
            Some(i) => self.visit_i64(i),
            None => Err(E::custom(format!(
                "cannot decode non-integer {v} into uint"
            ))),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        if let Ok(i) = v.parse::<u64>() {
            return Ok(i);
        }
        match json_number(v) {
            Some(f) => self.visit_f64(f),
            None => Err(E::custom(format!("cannot decode {v:?} into uint"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
}

fn float_to_int(v: f64) -> Option<i64> {
    // 2^63 as f64; the range check keeps the cast exact.
    (v.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v))
        .then_some(v as i64)
}

/// Parses a quoted number: JSON number syntax only (no `inf`, `NaN`, `+1`, spaces).
fn json_number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && !s.starts_with('+');
    if !ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A float field: numbers, quoted numbers, `null` as zero.
struct LenientFloat;

impl<'de> DeserializeSeed<'de> for LenientFloat {
    type Value = f64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientFloat {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        json_number(v).ok_or_else(|| E::custom(format!("cannot decode {v:?} into float64")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
}

/// A sample value: a plain number keeps its text (see [`Number`]); other spellings are read
/// as [`LenientFloat`] reads them.
struct LenientNumber;

impl<'de> DeserializeSeed<'de> for LenientNumber {
    type Value = Number<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Number<'de>, D::Error> {
        let raw: &'de RawValue = serde::Deserialize::deserialize(d)?;
        let text = raw.get();
        if let Some(n) = Number::from_json_text(text) {
            return Ok(n);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        LenientFloat
            .deserialize(&mut de)
            .map(Number::from)
            // The position is within the token; the caller's error names where it is.
            .map_err(|e| D::Error::custom(message_without_position(&e)))
    }
}

/// A bool field: only real booleans (spec §1.6); `null` is false.
struct StrictBool;

impl<'de> DeserializeSeed<'de> for StrictBool {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictBool {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// A `time.Time` field (spec §1.9): an RFC 3339 string; `null` leaves the value as it is.
struct TimeOver<'x, 'c>(&'x mut Time, &'c TimeCache);

impl<'de> DeserializeSeed<'de> for TimeOver<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeOver<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 time string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        *self.0 = self
            .1
            .parse(v)
            .map_err(|e| E::custom(format!("invalid time {v:?}: {e}")))?;
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

// ---- collections ---------------------------------------------------------------------

/// A data map (`nodes`, `controls`, templates, …): `null` empties it; each key's value is
/// decoded over the value already under that key, so duplicates decode over earlier ones.
impl<'de, V: DecodeOver<'de> + Default + Clone> DecodeOver<'de> for SortedMap<'de, V> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(MapVisitor(self, cx))
    }
}

struct MapVisitor<'x, 'c, 'de, V>(&'x mut SortedMap<'de, V>, Cx<'c>);

impl<'de, V: DecodeOver<'de> + Default + Clone> Visitor<'de> for MapVisitor<'_, '_, 'de, V> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.clear();
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.slot(key) {
                Some(slot) => map.next_value_seed(Over(slot, self.1))?,
                // Never: a map decoded over is always writable.
                None => map.next_value::<IgnoredAny>().map(|_| ())?,
            }
        }
        Ok(())
    }
}

/// Lets `SortedMap<Str>` (`fixedRows`) and sets use the map decoder.
impl<'de> DecodeOver<'de> for Str<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        *self = LenientStr(cx.raw_numbers).deserialize(d)?;
        Ok(())
    }
}

/// A StringSet (spec §4.2): `null` is empty; sorted and de-duplicated (our §9.7 fix).
impl<'de> DecodeOver<'de> for StringSet<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        let items = d.deserialize_any(StrListVisitor(cx.raw_numbers))?;
        *self = StringSet::from_unsorted(items);
        Ok(())
    }
}

/// Reads an array of lenient strings; the flag is [`Cx::raw_numbers`].
struct StrListVisitor(bool);

impl<'de> Visitor<'de> for StrListVisitor {
    type Value = Vec<Str<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<Str<'de>>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Str<'de>>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(s) = seq.next_element_seed(LenientStr(self.0))? {
            items.push(s);
        }
        Ok(items)
    }
}

/// A JSON array of structs, each decoded into a fresh value: `null` is empty.
struct ListVisitor<'c, T>(Cx<'c>, std::marker::PhantomData<T>);

impl<'de, T: DecodeOver<'de> + Default> Visitor<'de> for ListVisitor<'_, T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let mut item = T::default();
            if seq.next_element_seed(Over(&mut item, self.0))?.is_none() {
                return Ok(items);
            }
            items.push(item);
        }
    }
}

struct ListSeed<'c, T>(Cx<'c>, std::marker::PhantomData<T>);

impl<'de, T: DecodeOver<'de> + Default> DeserializeSeed<'de> for ListSeed<'_, T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_any(ListVisitor(self.0, std::marker::PhantomData))
    }
}

fn decode_list<'de, T: DecodeOver<'de> + Default, A: MapAccess<'de>>(
    map: &mut A,
    cx: Cx<'_>,
) -> Result<Vec<T>, A::Error> {
    map.next_value_seed(ListSeed(cx, std::marker::PhantomData))
}

// ---- the report ----------------------------------------------------------------------

struct ReportSeed<'x, 'c, 'a>(&'x mut Report<'a>, Cx<'c>);

impl<'de> DeserializeSeed<'de> for ReportSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // A report must be an object; `null`, arrays and scalars are errors (an empty body is
        // an EOF error from the parser).
        d.deserialize_map(ReportVisitor(self.0, self.1))
    }
}

struct ReportVisitor<'x, 'c, 'a>(&'x mut Report<'a>, Cx<'c>);

impl<'de> Visitor<'de> for ReportVisitor<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a report object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (r, cx) = (self.0, self.1);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match &*key {
                "TS" => map.next_value_seed(TimeOver(&mut r.ts, cx.times))?,
                "DNS" => map.next_value_seed(Over(&mut r.dns, cx))?,
                "nodes" => map.next_value_seed(Over(&mut r.bug_dns, cx))?,
                "Sampling" => map.next_value_seed(Over(&mut r.sampling, cx))?,
                "Window" => r.window_ns = map.next_value_seed(LenientInt)?,
                "Shortcut" => r.shortcut = map.next_value_seed(StrictBool)?,
                "Plugins" => {
                    // An array in, keyed by id in memory: duplicates collapse, last wins (§5.5).
                    let specs: Vec<PluginSpec<'de>> = decode_list(&mut map, cx)?;
                    r.plugins = PluginSpecs::default();
                    for spec in specs {
                        r.plugins.insert(spec);
                    }
                }
                "ID" => decode_str(&mut map, &mut r.id, cx)?,
                other => match TopologyKind::from_wire_key(other) {
                    Some(k) => map.next_value_seed(Over(r.topology_mut(k), cx))?,
                    None => skip(&mut map)?,
                },
            }
        }
        Ok(())
    }
}

impl<'de> Fields<'de> for Topology<'de> {
    const EXPECTING: &'static str = "a topology object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "shape" => decode_str(map, &mut self.shape, cx),
            "tag" => decode_str(map, &mut self.tag, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "label_plural" => decode_str(map, &mut self.label_plural, cx),
            "nodes" => map.next_value_seed(Over(&mut self.nodes, cx)),
            "controls" => map.next_value_seed(Over(&mut self.controls, cx)),
            "metadata_templates" => map.next_value_seed(Over(&mut self.metadata_templates, cx)),
            "metric_templates" => map.next_value_seed(Over(&mut self.metric_templates, cx)),
            "table_templates" => map.next_value_seed(Over(&mut self.table_templates, cx)),
            _ => skip(map),
        }
    }
}

// ---- nodes ---------------------------------------------------------------------------

impl<'de> DecodeOver<'de> for Box<Node<'de>> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        (**self).decode_over(d, cx)
    }
}

impl<'de> DecodeOver<'de> for Node<'de> {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(NodeVisitor(self, cx))
    }
}

struct NodeVisitor<'x, 'c, 'de>(&'x mut Node<'de>, Cx<'c>);

impl<'de> Visitor<'de> for NodeVisitor<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.0 = Node::default();
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (n, cx) = (self.0, self.1);
        let mut latest_controls: SortedMap<'de, LegacyControl> = SortedMap::new();
        let mut counters: SortedMap<'de, Counter> = SortedMap::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match &*key {
                "id" => decode_str(&mut map, &mut n.id, cx)?,
                "topology" => decode_str(&mut map, &mut n.topology, cx)?,
                "sets" => map.next_value_seed(Over(&mut n.sets, cx))?,
                "adjacency" => map.next_value_seed(Over(&mut n.adjacency, cx))?,
                "latest" => map.next_value_seed(Over(&mut n.latest.map, cx))?,
                "metrics" => map.next_value_seed(Over(&mut n.metrics, cx))?,
                "parents" => map.next_value_seed(Over(&mut n.parents, cx))?,
                "children" => {
                    // Keyed by each element's id; a later element replaces an earlier one.
                    let nodes: Vec<Node<'de>> = decode_list(&mut map, cx)?;
                    n.children = NodeSet::default();
                    for child in nodes {
                        n.children.insert(child);
                    }
                }
                "latestControls" => map.next_value_seed(Over(&mut latest_controls, cx))?,
                "counters" => map.next_value_seed(Over(&mut counters, cx))?,
                _ => skip(&mut map)?,
            }
        }
        apply_latest_controls(&mut n.latest, latest_controls);
        apply_counters(&mut n.latest, counters, cx.now);
        Ok(())
    }
}

/// One legacy `latestControls` entry: `{"timestamp", "value": {"dead": bool}}` (spec §4.3).
#[derive(Clone, Default)]
pub(crate) struct LegacyControl {
    pub(crate) timestamp: Time,
    pub(crate) dead: bool,
}

impl<'de> DecodeOver<'de> for LegacyControl {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(StructVisitor(self, cx))
    }
}

impl<'de> Fields<'de> for LegacyControl {
    const EXPECTING: &'static str = "a latestControls entry";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "timestamp" => map.next_value_seed(TimeOver(&mut self.timestamp, cx.times)),
            "value" => {
                let mut v = LegacyControlValue::default();
                map.next_value_seed(Over(&mut v, cx))?;
                self.dead = v.dead;
                Ok(())
            }
            _ => skip(map),
        }
    }
}

#[derive(Default)]
struct LegacyControlValue {
    dead: bool,
}

impl<'de> DecodeOver<'de> for LegacyControlValue {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, cx: Cx<'_>) -> Result<(), D::Error> {
        d.deserialize_any(StructVisitor(self, cx))
    }
}

impl<'de> Fields<'de> for LegacyControlValue {
    const EXPECTING: &'static str = "a control state object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        _cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "dead" => self.dead = map.next_value_seed(StrictBool)?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// A legacy counter value.
#[derive(Clone, Default)]
pub(crate) struct Counter(pub(crate) i64);

impl<'de> DecodeOver<'de> for Counter {
    fn decode_over<D: Deserializer<'de>>(&mut self, d: D, _cx: Cx<'_>) -> Result<(), D::Error> {
        self.0 = LenientInt.deserialize(d)?;
        Ok(())
    }
}

/// spec §4.3: `latestControls` becomes `latest.active_controls`: the non-dead IDs joined with
/// `;`, stamped with the newest non-dead timestamp (zero when all are dead). Go joins them in
/// random map order; we use sorted order so the result is deterministic.
pub(crate) fn apply_latest_controls<'de>(
    latest: &mut LatestMap<'de>,
    controls: SortedMap<'de, LegacyControl>,
) {
    if controls.is_empty() {
        return;
    }
    let mut ids = String::new();
    let mut newest = Time::ZERO;
    for (id, c) in controls.iter().filter(|(_, c)| !c.dead) {
        if !ids.is_empty() {
            ids.push(';');
        }
        ids.push_str(id);
        newest = newest.max(c.timestamp);
    }
    latest.insert("active_controls", newest, ids);
}

/// spec §4.3: each legacy counter `k: v` becomes `latest["count_<k>"]` = v plus the integer
/// already there (if any), stamped `now`.
pub(crate) fn apply_counters<'de>(
    latest: &mut LatestMap<'de>,
    counters: SortedMap<'de, Counter>,
    now: Time,
) {
    for (k, v) in counters.iter() {
        let key = format!("count_{k}");
        let existing = latest
            .get(&key)
            .and_then(|e| e.value.parse::<i64>().ok())
            .unwrap_or(0);
        latest.insert(key, now, v.0.wrapping_add(existing).to_string());
    }
}

impl<'de> Fields<'de> for LatestEntry<'de> {
    const EXPECTING: &'static str = "a latest entry object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "timestamp" => map.next_value_seed(TimeOver(&mut self.timestamp, cx.times)),
            "value" => decode_str(map, &mut self.value, cx),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for Metric<'de> {
    const EXPECTING: &'static str = "a metric object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "samples" => self.samples = decode_list::<Sample, _>(map, cx)?.into(),
            "min" => self.min = map.next_value_seed(LenientNumber)?,
            "max" => self.max = map.next_value_seed(LenientNumber)?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl<'de> Fields<'de> for Sample<'de> {
    const EXPECTING: &'static str = "a sample object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "date" => map.next_value_seed(TimeOver(&mut self.date, cx.times))?,
            "value" => self.value = map.next_value_seed(LenientNumber)?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

// ---- other structs -------------------------------------------------------------------

impl<'de> Fields<'de> for Control<'de> {
    const EXPECTING: &'static str = "a control object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "human" => decode_str(map, &mut self.human, cx),
            "icon" => decode_str(map, &mut self.icon, cx),
            "confirmation" => decode_str(map, &mut self.confirmation, cx),
            "rank" => {
                self.rank = map.next_value_seed(LenientInt)?;
                Ok(())
            }
            "probeId" => decode_str(map, &mut self.probe_id, cx),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for MetadataTemplate<'de> {
    const EXPECTING: &'static str = "a metadata template object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "truncate" => {
                self.truncate = map.next_value_seed(LenientInt)?;
                Ok(())
            }
            "dataType" => decode_str(map, &mut self.data_type, cx),
            "priority" => {
                self.priority = map.next_value_seed(LenientFloat)?;
                Ok(())
            }
            "from" => decode_str(map, &mut self.from, cx),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for MetricTemplate<'de> {
    const EXPECTING: &'static str = "a metric template object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "format" => decode_str(map, &mut self.format, cx),
            "group" => decode_str(map, &mut self.group, cx),
            "priority" => {
                self.priority = map.next_value_seed(LenientFloat)?;
                Ok(())
            }
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for TableTemplate<'de> {
    const EXPECTING: &'static str = "a table template object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "prefix" => decode_str(map, &mut self.prefix, cx),
            "type" => decode_str(map, &mut self.kind, cx),
            "columns" => {
                self.columns = decode_list(map, cx)?;
                Ok(())
            }
            "fixedRows" => map.next_value_seed(Over(&mut self.fixed_rows, cx)),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for Column<'de> {
    const EXPECTING: &'static str = "a column object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "dataType" => decode_str(map, &mut self.data_type, cx),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for DnsRecord<'de> {
    const EXPECTING: &'static str = "a DNS record object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "forward" => map.next_value_seed(Over(&mut self.forward, cx)),
            "reverse" => map.next_value_seed(Over(&mut self.reverse, cx)),
            _ => skip(map),
        }
    }
}

impl<'de> Fields<'de> for Sampling {
    const EXPECTING: &'static str = "a sampling object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        _cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "Count" => self.count = map.next_value_seed(LenientUint)?,
            "Total" => self.total = map.next_value_seed(LenientUint)?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl<'de> Fields<'de> for PluginSpec<'de> {
    const EXPECTING: &'static str = "a plugin spec object";
    fn field<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: Cx<'_>,
    ) -> Result<(), A::Error> {
        match key {
            "id" => decode_str(map, &mut self.id, cx),
            "label" => decode_str(map, &mut self.label, cx),
            "description" => decode_str(map, &mut self.description, cx),
            "api_version" => decode_str(map, &mut self.api_version, cx),
            "status" => decode_str(map, &mut self.status, cx),
            "interfaces" => {
                self.interfaces = map.next_value_seed(StrList(cx.raw_numbers))?;
                Ok(())
            }
            _ => skip(map),
        }
    }
}

/// An array of strings kept in order (`interfaces`); the flag is [`Cx::raw_numbers`].
struct StrList(bool);

impl<'de> DeserializeSeed<'de> for StrList {
    type Value = Vec<Str<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Str<'de>>, D::Error> {
        d.deserialize_any(StrListVisitor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TopologyKind as K;

    fn t(s: &str) -> Time {
        Time::parse(s).unwrap()
    }

    /// Decodes with the public decoder (fast path first) and checks the serde reference
    /// gives the same report.
    fn dec(json: &str) -> Report<'_> {
        let now = t("2099-01-01T00:00:00Z");
        let r =
            decode_plugin_report(json.as_bytes(), now).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(
            decode_reference(json.as_bytes(), now).as_ref(),
            Ok(&r),
            "{json}"
        );
        r
    }

    fn dec_err(json: &str) -> String {
        assert!(
            decode_reference(json.as_bytes(), Time::ZERO).is_err(),
            "{json}"
        );
        match decode_plugin_report(json.as_bytes(), Time::ZERO) {
            Ok(_) => panic!("{json} should not decode"),
            Err(e) => e.to_string(),
        }
    }

    fn host_node<'r, 'a>(r: &'r Report<'a>, id: &str) -> &'r Node<'a> {
        r.topology(K::Host).nodes.get(id).unwrap()
    }

    // spec §1.2: keys are exact and case-sensitive.
    #[test]
    fn keys_are_case_sensitive() {
        let r = dec(r#"{"host":{"nodes":{"a":{}}},"endpoint":{"label":"x"},
            "plugins":[{"id":"p"}],"ts":"2023-06-01T00:00:00Z","Host":{"Label":"x","nodes":{"b":{"ID":"c"}}}}"#);
        assert_eq!(r.topology(K::Host).nodes.len(), 1);
        assert_eq!(host_node(&r, "b").id, "");
        assert_eq!(r.topology(K::Host).label, "host");
        assert_eq!(r.topology(K::Endpoint).label, "");
        assert!(r.plugins.is_empty());
        assert!(r.ts.is_zero());
    }

    // spec §1.3: unknown keys are skipped at every level, whatever their value.
    #[test]
    fn unknown_keys_skipped_everywhere() {
        let r = dec(
            r#"{"x":{"deep":[1,{"a":null}]},"Host":{"y":[1],"nodes":{"a":{"z":{},
            "controls":{"timestamp":"bad","controls":["c"]},
            "latest":{"k":{"timestamp":"2023-06-01T00:00:00Z","value":"v","extra":[true]}}}}},
            "Plugins":[{"id":"p","label":"P","q":1}],"Sampling":{"Count":1,"Other":2}}"#,
        );
        assert_eq!(host_node(&r, "a").latest.get("k").unwrap().value, "v");
        assert_eq!(r.plugins.get("p").unwrap().label, "P");
        assert_eq!(r.sampling.count, 1);
    }

    // spec §1.4, §2.3: decoding over MakeReport keeps defaults for absent keys; an explicit
    // "" replaces a default.
    #[test]
    fn absent_keys_keep_defaults() {
        let r = dec(
            r#"{"Host":{"nodes":{}},"Pod":{"label":""},"Container":{"shape":"square"},
            "Endpoint":{"label":"ep"}}"#,
        );
        let host = r.topology(K::Host);
        assert_eq!(
            (&*host.shape, &*host.label, &*host.label_plural),
            ("circle", "host", "hosts")
        );
        assert_eq!(r.topology(K::Pod).label, "");
        assert_eq!(r.topology(K::Pod).label_plural, "pods");
        assert_eq!(r.topology(K::Container).shape, "square");
        assert_eq!(r.topology(K::Container).label, "container");
        assert_eq!(r.topology(K::Endpoint).label, "ep");
        assert_eq!(r.topology(K::Process), Report::make().topology(K::Process));
    }

    // spec §1.5: null resets struct-typed fields and empties maps/slices; a null time is
    // left as it is; a null latest entry is {zero, ""}.
    #[test]
    fn null_handling() {
        let r = dec(
            r#"{"Host":null,"TS":null,"Process":{"nodes":null,"controls":null},
            "Container":{"nodes":{"c":{"sets":null,"parents":null,"children":null,"adjacency":null,
            "latest":{"a":null,"b":{"timestamp":null,"value":null}},
            "metrics":{"m":{"samples":null,"min":null,"max":2}}}}},
            "Plugins":null,"Sampling":null,"ID":null,"Window":null,"Shortcut":null}"#,
        );
        assert_eq!(r.topology(K::Host), &Topology::default());
        assert!(r.ts.is_zero());
        assert_eq!(r.topology(K::Process).label, "process");
        let c = r.topology(K::Container).nodes.get("c").unwrap();
        assert!(c.sets.is_empty() && c.parents.is_empty() && c.children.is_empty());
        assert_eq!(c.latest.get("a"), Some(&LatestEntry::default()));
        assert_eq!(c.latest.get("b"), Some(&LatestEntry::default()));
        let m = c.metrics.get("m").unwrap();
        assert_eq!(
            (m.samples.len(), m.min.to_f64(), m.max.to_f64()),
            (0, 0.0, 2.0)
        );
        assert!(r.plugins.is_empty());
        assert_eq!(r.id, "");
    }

    // spec §1.5: a null time leaves the earlier value (seen through a duplicate latest key).
    #[test]
    fn null_time_leaves_value() {
        let r = dec(r#"{"Host":{"nodes":{"a":{"latest":{
            "k":{"timestamp":"2023-06-01T00:00:00Z","value":"v"},
            "k":{"timestamp":null}}}}}}"#);
        let e = host_node(&r, "a").latest.get("k").unwrap();
        assert_eq!(e.timestamp, t("2023-06-01T00:00:00Z"));
        assert_eq!(e.value, "v");
    }

    // spec §1.6: lenient scalars into string fields keep their literal text.
    #[test]
    fn lenient_strings() {
        let r = dec(
            r#"{"ID":4.5e3,"Host":{"label":42,"shape":true,"tag":null,"nodes":{"a":{
            "id":-0,"topology":false,"latest":{"k":{"value":1.50}},
            "sets":{"s":[1,"a",null,true]}}}}}"#,
        );
        assert_eq!(r.id, "4.5e3");
        let host = r.topology(K::Host);
        assert_eq!((&*host.label, &*host.shape, &*host.tag), ("42", "true", ""));
        let a = host_node(&r, "a");
        assert_eq!((&*a.id, &*a.topology), ("-0", "false"));
        assert_eq!(a.latest.get("k").unwrap().value, "1.50");
        let s: Vec<&str> = a.sets.get("s").unwrap().iter().collect();
        assert_eq!(s, ["", "1", "a", "true"]);
        assert!(dec_err(r#"{"ID":[1]}"#).contains("expected a string"));
        assert!(dec_err(r#"{"ID":{}}"#).contains("expected a string"));
        // The raw-text path (taken once a float is seen) rejects them too.
        assert!(
            dec_err(r#"{"Window":1,"TS":null,"ID":1.5,"Host":{"label":[1]}}"#).contains("array")
        );
        assert!(dec_err(r#"{"ID":1.5,"Host":{"label":{}}}"#).contains("map"));
    }

    // spec §1.6: quoted numbers into numeric fields; non-integral into int and string
    // booleans are errors.
    #[test]
    fn lenient_numbers() {
        let r = dec(r#"{"Window":"15","Sampling":{"Count":"3","Total":4.0},
            "Host":{"controls":{"c":{"rank":"1"}},"metadata_templates":{"m":{"priority":"2.5","truncate":3}},
            "nodes":{"a":{"metrics":{"m":{"min":"-1.5","max":"1e2"}}}}}}"#);
        assert_eq!(r.window_ns, 15);
        assert_eq!((r.sampling.count, r.sampling.total), (3, 4));
        assert_eq!(r.topology(K::Host).controls.get("c").unwrap().rank, 1);
        let m = r.topology(K::Host).metadata_templates.get("m").unwrap();
        assert_eq!((m.priority, m.truncate), (2.5, 3));
        let metric = host_node(&r, "a").metrics.get("m").unwrap();
        assert_eq!((metric.min.to_f64(), metric.max.to_f64()), (-1.5, 100.0));
        assert!(dec_err(r#"{"Window":1.5}"#).contains("non-integer 1.5"));
        assert!(dec_err(r#"{"Shortcut":"true"}"#).contains("expected a boolean"));
        assert!(dec_err(r#"{"Sampling":{"Count":-1}}"#).contains("negative"));
        assert!(dec_err(r#"{"Host":{"controls":{"c":{"rank":true}}}}"#).contains("integer"));
        assert!(
            dec_err(r#"{"Host":{"nodes":{"a":{"metrics":{"m":{"min":"NaN"}}}}}}"#)
                .contains("float64")
        );
        let r = dec(r#"{"Shortcut":true}"#);
        assert!(r.shortcut);
    }

    // spec §9.21: Window is integer nanoseconds; "15s" and 1.5 are errors.
    #[test]
    fn window_is_integer_nanoseconds() {
        assert_eq!(dec(r#"{"Window":15000000000}"#).window_ns, 15_000_000_000);
        assert!(dec_err(r#"{"Window":"15s"}"#).contains("\"15s\""));
        assert!(dec_err(r#"{"Window":1.5}"#).starts_with("cannot decode non-integer"));
    }

    // spec §1.7: only the first JSON value is read.
    #[test]
    fn trailing_bytes_ignored() {
        let r = dec(r#"{"ID":"x"} trailing garbage {"#);
        assert_eq!(r.id, "x");
        assert_eq!(dec("{}\n{}").id, "");
    }

    // spec §1.8 (recommendation), §9.2: any malformed part rejects the whole document.
    #[test]
    fn malformed_anywhere_is_an_error() {
        dec_err(r#"{"Plugins":[{"id":"p","api_version":"1",}]}"#);
        dec_err(r#"{"Host":{"nodes":{"a":{"latest":{"k":{"timestamp":"x"}}}}}}"#);
        dec_err(r#"{"Host":{"nodes":{"a":{"sets":{"k":"notalist"}}}}}"#);
        dec_err(r#"{"Host":{"nodes":{"a":{"adjacency":[{}]}}}}"#);
        dec_err(r#"{"Host":{"nodes":{"a":{"children":[1]}}}}"#);
        dec_err(r#"{"Host":{"nodes":[]}}"#);
        dec_err(r#"{"Host":"x"}"#);
        dec_err(r#"{"ID":"x""#);
    }

    // Decoding an empty body or a non-object is an error (spec §7.4 step 4).
    #[test]
    fn empty_or_non_object_is_an_error() {
        for body in ["", " ", "null", "[]", "1", "\"x\"", "notJSON", "true"] {
            dec_err(body);
        }
    }

    // spec §1.9, §9.1: timestamps must be Go's RFC 3339; any invalid one is an error.
    #[test]
    fn invalid_timestamps_rejected() {
        for bad in [
            "\"2016-07-20T15:51:05Z01:00\"",
            "\"2016-07-20T15:51:05+0100\"",
            "\"2016-07-20t15:51:05Z\"",
            "\"2016-07-20T15:51:05z\"",
            "\"\"",
            "1468000000",
            "\"2016-07-20 15:51:05Z\"",
        ] {
            let latest = format!(
                r#"{{"Host":{{"nodes":{{"a":{{"latest":{{"k":{{"timestamp":{bad}}}}}}}}}}}}}"#
            );
            assert!(dec_err(&latest).contains("timestamp"), "{latest}");
            let sample = format!(
                r#"{{"Host":{{"nodes":{{"a":{{"metrics":{{"m":{{"samples":[{{"date":{bad}}}]}}}}}}}}}}}}"#
            );
            assert!(dec_err(&sample).contains("date"), "{sample}");
            let legacy = format!(
                r#"{{"Host":{{"nodes":{{"a":{{"latestControls":{{"c":{{"timestamp":{bad}}}}}}}}}}}}}"#
            );
            dec_err(&legacy);
            dec_err(&format!(r#"{{"TS":{bad}}}"#));
        }
        let r = dec(r#"{"TS":"2023-06-01T11:00:00.5+02:00"}"#);
        assert_eq!(r.ts, t("2023-06-01T09:00:00.5Z"));
    }

    // spec §4.2: a duplicate latest key is decoded over the earlier entry field by field.
    #[test]
    fn latest_duplicates_decode_over() {
        let r = dec(r#"{"Host":{"nodes":{"a":{"latest":{
            "k":{"timestamp":"2023-06-01T00:00:00Z","value":"first"},
            "j":{"value":"j"},
            "k":{"timestamp":"2022-01-01T00:00:00Z"}}}}}}"#);
        let a = host_node(&r, "a");
        let k = a.latest.get("k").unwrap();
        assert_eq!(k.value, "first");
        assert_eq!(k.timestamp, t("2022-01-01T00:00:00Z"));
        assert_eq!(
            a.latest.iter().map(|(k, _)| &**k).collect::<Vec<_>>(),
            ["j", "k"]
        );
        assert!(a.latest.get("j").unwrap().timestamp.is_zero());
    }

    // spec §4.2, §9.7: sets and adjacency are sorted and de-duplicated on decode; a null set
    // value keeps its key; the last duplicate set key wins.
    #[test]
    fn sets_normalised() {
        let r = dec(
            r#"{"Host":{"nodes":{"a":{"sets":{"b":["b","a","a"],"e":null,"d":[],"b2":["x"],"b2":["y"]},
            "adjacency":["z","y","z"],"parents":{"host":["h2","h1"]}}}}}"#,
        );
        let a = host_node(&r, "a");
        assert_eq!(
            a.sets.get("b").unwrap().iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(a.sets.get("e").unwrap().is_empty());
        assert!(a.sets.get("d").unwrap().is_empty());
        assert_eq!(a.sets.get("b2").unwrap().iter().collect::<Vec<_>>(), ["y"]);
        assert_eq!(a.adjacency.iter().collect::<Vec<_>>(), ["y", "z"]);
        assert_eq!(
            a.parents.get("host").unwrap().iter().collect::<Vec<_>>(),
            ["h1", "h2"]
        );
    }

    // spec §4.2: children are keyed by id, a later element replaces an earlier one.
    #[test]
    fn children_keyed_by_id() {
        let r = dec(r#"{"Host":{"nodes":{"a":{"children":[
            {"id":"c2","topology":"x"},{"id":"c1"},{"id":"c2","topology":"y"},{"topology":"z"}]}}}}"#);
        let kids = &host_node(&r, "a").children;
        assert_eq!(
            kids.iter().map(|n| &*n.id).collect::<Vec<_>>(),
            ["", "c1", "c2"]
        );
        assert_eq!(kids.get("c2").unwrap().topology, "y");
    }

    // spec §4.3, §9.5: latestControls becomes active_controls (sorted non-dead ids, newest
    // non-dead timestamp), replacing any active_controls; node-level "controls" is dropped.
    #[test]
    fn legacy_latest_controls() {
        let r = dec(r#"{"Host":{"nodes":{"a":{
            "latest":{"active_controls":{"timestamp":"2030-01-01T00:00:00Z","value":"old"}},
            "latestControls":{
              "c3":{"timestamp":"2023-06-01T00:00:03Z","value":{"dead":false}},
              "c2":{"timestamp":"2023-06-01T00:00:09Z","value":{"dead":true}},
              "c1":{"timestamp":"2023-06-01T00:00:01Z","value":{"dead":false}}}},
            "b":{"latestControls":{"c":{"timestamp":"2023-06-01T00:00:01Z","value":{"dead":true}}}},
            "c":{"latestControls":{},"controls":{"timestamp":"2023-06-01T00:00:01Z","controls":["x"]}}}}}"#);
        let a = host_node(&r, "a").latest.get("active_controls").unwrap();
        assert_eq!(a.value, "c1;c3");
        assert_eq!(a.timestamp, t("2023-06-01T00:00:03Z"));
        let b = host_node(&r, "b").latest.get("active_controls").unwrap();
        assert_eq!((b.value.as_ref(), b.timestamp), ("", Time::ZERO));
        assert!(host_node(&r, "c").latest.is_empty());
    }

    // spec §4.3: counters become count_<k> = v + existing integer, stamped now.
    #[test]
    fn legacy_counters() {
        let r = dec(r#"{"Host":{"nodes":{"a":{
            "latest":{"count_x":{"timestamp":"2023-06-01T00:00:00Z","value":"5"},
                      "count_y":{"timestamp":"2023-06-01T00:00:00Z","value":"nan"}},
            "counters":{"x":2,"y":3,"z":"4"}}}}}"#);
        let a = host_node(&r, "a");
        let now = t("2099-01-01T00:00:00Z");
        for (k, v) in [("count_x", "7"), ("count_y", "3"), ("count_z", "4")] {
            let e = a.latest.get(k).unwrap();
            assert_eq!((e.value.as_ref(), e.timestamp), (v, now), "{k}");
        }
    }

    // spec §5.5, §9.14: Plugins duplicates collapse, the last one wins.
    #[test]
    fn plugin_duplicates_collapse() {
        let r = dec(
            r#"{"Plugins":[{"id":"b","label":"first"},{"id":"a"},{"id":"b","label":"second",
            "interfaces":["reporter",7],"api_version":1,"description":"d","status":"s"}]}"#,
        );
        assert_eq!(r.plugins.len(), 2);
        let b = r.plugins.get("b").unwrap();
        assert_eq!(b.label, "second");
        assert_eq!(b.interfaces, ["reporter", "7"]);
        assert_eq!(
            (&*b.api_version, &*b.description, &*b.status),
            ("1", "d", "s")
        );
    }

    // spec §9.3, §1.2: only exact keys count; `shortcut`/`ShortcutReport` are unknown keys of a
    // report and change nothing.
    #[test]
    fn shortcut_spellings() {
        let r =
            dec(r#"{"shortcut":true,"ShortcutReport":{"Host":{}},"shortcutReport":{"ID":"x"}}"#);
        assert!(!r.shortcut);
        assert_eq!(r.id, "");
        assert_eq!(r, Report::make());
    }

    // spec §9.4: the exact spellings.
    #[test]
    fn exact_spellings() {
        let r = dec(r#"{"Host":{"labelPlural":"no","label_plural":"yes",
            "controls":{"c":{"probeId":"p","probeID":"no"}},
            "metadata_templates":{"m":{"dataType":"number","datatype":"no"}},
            "table_templates":{"t":{"type":"multicolumn-table","columns":[{"id":"c","dataType":"ip"}],
              "fixedRows":{"r":"R"}}}},
            "Sampling":{"count":9,"Count":1,"Total":2}}"#);
        let h = r.topology(K::Host);
        assert_eq!(h.label_plural, "yes");
        assert_eq!(h.controls.get("c").unwrap().probe_id, "p");
        assert_eq!(h.metadata_templates.get("m").unwrap().data_type, "number");
        let tt = h.table_templates.get("t").unwrap();
        assert_eq!(tt.kind, "multicolumn-table");
        assert_eq!(tt.columns[0].data_type, "ip");
        assert_eq!(tt.fixed_rows.get("r").map(|s| s.as_ref()), Some("R"));
        assert_eq!((r.sampling.count, r.sampling.total), (1, 2));
    }

    // spec §9.6, §9.13: map keys and id fields are kept as sent, even when they differ.
    #[test]
    fn ids_kept_as_sent() {
        let r = dec(
            r#"{"Host":{"metric_templates":{"metric-template-id":{"id":"metric-id"}},
            "nodes":{"key":{"id":"other"}}}}"#,
        );
        let h = r.topology(K::Host);
        assert_eq!(
            h.metric_templates.get("metric-template-id").unwrap().id,
            "metric-id"
        );
        assert_eq!(h.nodes.get("key").unwrap().id, "other");
    }

    // Zero-copy: plain strings are borrowed from the body; only escapes allocate.
    #[test]
    fn strings_borrowed_unless_escaped() {
        let r = dec(r#"{"ID":"plain","Host":{"label":"tab\tx","nodes":{"k\u0041":{"id":"v"}}}}"#);
        assert!(matches!(r.id, Cow::Borrowed("plain")));
        assert!(matches!(r.topology(K::Host).label, Cow::Owned(ref s) if s == "tab\tx"));
        let (k, n) = r.topology(K::Host).nodes.iter().next().unwrap();
        assert_eq!(k, "kA");
        assert!(matches!(n.id, Cow::Borrowed("v")));
    }

    // spec §7.9: shortcut reports are decoded over a zero report (no defaults).
    #[test]
    fn shortcut_has_no_defaults() {
        let r = decode_shortcut_report(r#"{"Host":{"nodes":{"a":{}}}}"#, Time::ZERO).unwrap();
        assert_eq!(r.topology(K::Host).label, "");
        assert_eq!(r.topology(K::Process), &Topology::default());
        assert!(decode_shortcut_report("", Time::ZERO).is_err());
    }

    // spec §1.6: a JSON string with escapes is unescaped; malformed escapes are errors.
    #[test]
    fn escapes() {
        let r = dec(r#"{"ID":"a\"b\\c\u00e9\ud83d\ude00"}"#);
        assert_eq!(r.id, "a\"b\\cé😀");
        dec_err(r#"{"ID":"\x"}"#);
        dec_err(r#"{"ID":"\ud800"}"#);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    // The timestamp cache returns the same values as parsing each one.
    #[test]
    fn repeated_and_changing_timestamps() {
        let body = r#"{"Host":{"nodes":{"a":{"latest":{
            "a":{"timestamp":"2023-06-01T00:00:00Z"},"b":{"timestamp":"2023-06-01T00:00:00Z"},
            "c":{"timestamp":"2023-06-01T00:00:01Z"},"d":{"timestamp":"2023-06-01T00:00:00Z"}}}}}}"#;
        let r = decode_plugin_report(body.as_bytes(), Time::ZERO).unwrap();
        let n = r.topology(TopologyKind::Host).nodes.get("a").unwrap();
        let ts: Vec<String> = n
            .latest
            .iter()
            .map(|(_, e)| e.timestamp.to_string())
            .collect();
        assert_eq!(
            ts,
            [
                "2023-06-01T00:00:00Z",
                "2023-06-01T00:00:00Z",
                "2023-06-01T00:00:01Z",
                "2023-06-01T00:00:00Z"
            ]
        );
        let cache = TimeCache::default();
        assert!(cache.parse("").is_err());
        assert!(cache.parse("2023-06-01T00:00:00Z").is_ok());
        assert!(cache.parse("").is_err());
        let long = "2023-06-01T00:00:00.1234567890123456789012345+02:00";
        assert_eq!(cache.parse(long).unwrap(), Time::parse(long).unwrap());
        assert_eq!(cache.parse(long).unwrap(), Time::parse(long).unwrap());
    }

    // The visitors fall back to raw text for floats anywhere in the document.
    #[test]
    fn float_in_string_field_late_in_document() {
        let body =
            r#"{"ID":"x","Host":{"nodes":{"a":{"latest":{"k":{"value":1e3},"j":{"value":7}}}}}}"#;
        let r = decode_plugin_report(body.as_bytes(), Time::ZERO).unwrap();
        let n = r.topology(TopologyKind::Host).nodes.get("a").unwrap();
        assert_eq!(n.latest.get("k").unwrap().value, "1e3");
        assert_eq!(n.latest.get("j").unwrap().value, "7");
        assert_eq!(r.id, "x");
        let e = decode_plugin_report(br#"{"ID":1.5,"Window":true}"#, Time::ZERO).unwrap_err();
        assert!(e.to_string().contains("Window"), "{e}");
    }
}
