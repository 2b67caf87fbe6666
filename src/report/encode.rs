//! [`Report`] → JSON that Scope's app accepts (spec §1.9–§1.12, §2–§5).
//!
//! Owns the writer: Go's key names and field order (struct order for topologies), Go's
//! `omitempty` choices, `null` for empty `sets`/`parents`/`children` like Go, RFC 3339 times
//! in Go's form and `Window` in nanoseconds. Output is deterministic: maps are written in key
//! order. Does not own compression or transport.

use super::model::{
    Column, Control, DnsRecords, LatestMap, MetadataTemplate, Metric, MetricTemplate, Node, Number,
    PluginSpec, Sample, Sets, SortedMap, StringSet, TableTemplate, Topology,
};
use super::time::{PAIRS, Time, TimeWriter};
use super::{Report, STRUCT_ORDER, Str};
use crate::sys::cache::prefetch_read;

/// Appends `report` as JSON to `out`. Writing to a `Vec` cannot fail, so there is no error.
pub fn encode(report: &Report<'_>, out: &mut Vec<u8>) {
    let mut buf = Out {
        buf: std::mem::take(out),
        times: TimeWriter::default(),
    };
    encode_report(report, &mut buf);
    *out = buf.buf;
}

/// The output buffer, with the text of recent times to reuse.
pub(crate) struct Out {
    buf: Vec<u8>,
    times: TimeWriter,
}

impl Out {
    fn push(&mut self, b: u8) {
        self.buf.push(b);
    }

    fn extend_from_slice(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }
}

fn encode_report(report: &Report<'_>, out: &mut Out) {
    let mut w = Obj::open(out);
    w.key(b"TS");
    time(w.out, &report.ts);
    for k in STRUCT_ORDER {
        // A topology's wire key needs no escaping; written as any key, the same bytes.
        w.data_key(k.wire_key());
        topology(w.out, report.topology(k));
    }
    if !report.dns.is_empty() {
        w.key(b"DNS");
        dns(w.out, &report.dns);
    }
    if !report.bug_dns.is_empty() {
        w.key(b"nodes");
        dns(w.out, &report.bug_dns);
    }
    w.key(b"Sampling");
    w.out.extend_from_slice(b"{\"Count\":");
    uint(w.out, report.sampling.count);
    w.out.extend_from_slice(b",\"Total\":");
    uint(w.out, report.sampling.total);
    w.out.push(b'}');
    w.key(b"Window");
    int(w.out, report.window_ns);
    w.key(b"Shortcut");
    w.out
        .extend_from_slice(if report.shortcut { b"true" } else { b"false" });
    w.key(b"Plugins");
    w.out.push(b'[');
    for (i, spec) in report.plugins.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        plugin_spec(w.out, spec);
    }
    w.out.push(b']');
    w.str_field(b"ID", &report.id);
    w.close();
}

/// Writes one object's `{`, commas between fields and `}`.
struct Obj<'o> {
    out: &'o mut Out,
    first: bool,
}

impl<'o> Obj<'o> {
    fn open(out: &'o mut Out) -> Obj<'o> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes `"key":` (keys are our own constants and need no escaping).
    // Inlined with the key's length known: fixed-size copies instead of a `memcpy` call, for
    // the tens of thousands of keys of a report.
    #[inline(always)]
    fn key<const N: usize>(&mut self, key: &[u8; N]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\":");
    }

    /// A data-map key, escaped.
    fn data_key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, key);
        self.out.push(b':');
    }

    fn str_field<const N: usize>(&mut self, key: &[u8; N], v: &str) {
        self.key(key);
        string(self.out, v);
    }

    /// A string field tagged `omitempty`.
    fn opt_str<const N: usize>(&mut self, key: &[u8; N], v: &str) {
        if !v.is_empty() {
            self.str_field(key, v);
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn topology(out: &mut Out, t: &Topology<'_>) {
    let mut w = Obj::open(out);
    w.opt_str(b"shape", &t.shape);
    w.opt_str(b"tag", &t.tag);
    w.opt_str(b"label", &t.label);
    w.opt_str(b"label_plural", &t.label_plural);
    if !t.nodes.is_empty() {
        w.key(b"nodes");
        // As `map`, with the node two places ahead prefetched: one ahead was too late.
        let mut m = Obj::open(w.out);
        let mut ahead = t.nodes.iter().skip(2);
        for (k, v) in t.nodes.iter() {
            if let Some((_, next)) = ahead.next() {
                prefetch_node(next);
            }
            m.data_key(k);
            node(m.out, v);
        }
        m.close();
    }
    if !t.controls.is_empty() {
        w.key(b"controls");
        map(w.out, &t.controls, control);
    }
    if !t.metadata_templates.is_empty() {
        w.key(b"metadata_templates");
        map(w.out, &t.metadata_templates, metadata_template);
    }
    if !t.metric_templates.is_empty() {
        w.key(b"metric_templates");
        map(w.out, &t.metric_templates, metric_template);
    }
    if !t.table_templates.is_empty() {
        w.key(b"table_templates");
        map(w.out, &t.table_templates, table_template);
    }
    w.close();
}

/// Starts loading what encoding `n` reads first and most: its strings, which borrow from the
/// plugins' response buffers and are cold by now, and its samples. Encoding waited on those
/// loads for most of its string-copying time.
fn prefetch_node(n: &Node<'_>) {
    prefetch_read(n.id.as_ptr());
    for (k, e) in n.latest.iter() {
        prefetch_read(k.as_ptr());
        prefetch_read(e.value.as_ptr());
    }
    for (k, set) in n.sets.iter() {
        prefetch_read(k.as_ptr());
        for item in set.iter() {
            prefetch_read(item.as_ptr());
        }
    }
    for (_, m) in n.metrics.iter() {
        if let Some(text) = m.samples.json_text() {
            // Copied in one go, so the hardware prefetcher follows it after the first line.
            prefetch_read(text.as_ptr());
            continue;
        }
        // Every cache line: a metric's samples span several.
        for line in m.samples.chunks(64 / std::mem::size_of::<Sample>().max(1)) {
            prefetch_read(line.as_ptr());
        }
    }
}

fn map<V>(out: &mut Out, m: &SortedMap<'_, V>, mut value: impl FnMut(&mut Out, &V)) {
    let mut w = Obj::open(out);
    for (k, v) in m.iter() {
        w.data_key(k);
        value(w.out, v);
    }
    w.close();
}

fn node(out: &mut Out, n: &Node<'_>) {
    let mut w = Obj::open(out);
    w.opt_str(b"id", &n.id);
    w.opt_str(b"topology", &n.topology);
    // Go never omits these struct-typed fields and writes empty ones as null (§4.1).
    w.key(b"sets");
    sets(w.out, &n.sets);
    if !n.adjacency.is_empty() {
        w.key(b"adjacency");
        string_set(w.out, &n.adjacency);
    }
    if !n.latest.is_empty() {
        w.key(b"latest");
        latest(w.out, &n.latest);
    }
    if !n.metrics.is_empty() {
        w.key(b"metrics");
        map(w.out, &n.metrics, metric);
    }
    w.key(b"parents");
    sets(w.out, &n.parents);
    w.key(b"children");
    if n.children.is_empty() {
        w.out.extend_from_slice(b"null");
    } else {
        w.out.push(b'[');
        for (i, child) in n.children.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            node(w.out, child);
        }
        w.out.push(b']');
    }
    w.close();
}

fn sets(out: &mut Out, s: &Sets<'_>) {
    if s.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        map(out, s, string_set);
    }
}

fn string_set(out: &mut Out, s: &StringSet<'_>) {
    out.push(b'[');
    for (i, item) in s.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

fn latest(out: &mut Out, m: &LatestMap<'_>) {
    map(out, &m.map, |out, e| {
        out.extend_from_slice(b"{\"timestamp\":");
        time(out, &e.timestamp);
        out.extend_from_slice(b",\"value\":");
        string(out, &e.value);
        out.push(b'}');
    });
}

fn metric(out: &mut Out, m: &Metric) {
    let mut w = Obj::open(out);
    if let Some(text) = m.samples.json_text() {
        w.key(b"samples");
        w.out.extend_from_slice(text);
    } else if !m.samples.is_empty() {
        w.key(b"samples");
        w.out.push(b'[');
        // Every sample is followed by a comma, and the last one becomes the closing bracket.
        for s in &m.samples {
            if !sample_in_place(w.out, s) {
                w.out.extend_from_slice(br#"{"date":""#);
                time_text(w.out, &s.date);
                w.out.extend_from_slice(br#"","value":"#);
                number(w.out, s.value);
                w.out.extend_from_slice(b"},");
            }
        }
        if let Some(last) = w.out.buf.last_mut() {
            *last = b']';
        }
    }
    w.key(b"min");
    number(w.out, m.min);
    w.key(b"max");
    number(w.out, m.max);
    w.close();
}

/// Room for a sample written by [`sample_in_place`]: `{"date":"`, a time of at most 35
/// bytes, `","value":`, a number of at most [`IN_PLACE_NUMBER`] bytes written as whole words
/// (the last one padded, and covering the closing `},`).
const SAMPLE_ROOM: usize = 9 + 35 + 10 + IN_PLACE_NUMBER + 8;
const IN_PLACE_NUMBER: usize = 24;

/// Writes `s` and a comma as [`metric`] lays samples out, when its time is in the time
/// writer's remembered minute and its value a kept text of at most [`IN_PLACE_NUMBER`] bytes
/// (nearly every sample); otherwise writes nothing and returns `false`.
// Most of a report is samples. Written piece by piece, each piece was a capacity check and a
// store of the length; here the room is made once, filled at known places and cut back.
#[inline]
fn sample_in_place(out: &mut Out, s: &Sample<'_>) -> bool {
    let (Some(number), Some(second)) = (
        s.value.json_bytes().filter(|n| n.len() <= IN_PLACE_NUMBER),
        out.times.second_if_remembered(&s.date),
    ) else {
        return false;
    };
    let start = out.buf.len();
    out.buf.resize(start + SAMPLE_ROOM, 0);
    let Some(room) = out.buf.get_mut(start..start + SAMPLE_ROOM) else {
        return false;
    };
    room[..9].copy_from_slice(br#"{"date":""#);
    let Some(time) = room
        .get_mut(9..44)
        .and_then(|t| <&mut [u8; 35]>::try_from(t).ok())
    else {
        return false;
    };
    let mut at = 9 + out.times.write_remembered(second, time);
    room[at..at + 10].copy_from_slice(br#"","value":"#);
    at += 10;
    // Whole words, the last padded, as in `short_text`.
    let mut words = number.chunks_exact(8);
    let mut to = at;
    for word in &mut words {
        room[to..to + 8].copy_from_slice(word);
        to += 8;
    }
    room[to..to + 8]
        .copy_from_slice(&super::fast::space_padded_word(words.remainder()).to_le_bytes());
    at += number.len();
    room[at..at + 2].copy_from_slice(b"},");
    out.buf.truncate(start + at + 2);
    true
}

fn control(out: &mut Out, c: &Control<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &c.id);
    w.str_field(b"human", &c.human);
    w.str_field(b"icon", &c.icon);
    w.opt_str(b"confirmation", &c.confirmation);
    w.key(b"rank");
    int(w.out, c.rank);
    w.opt_str(b"probeId", &c.probe_id);
    w.close();
}

fn metadata_template(out: &mut Out, t: &MetadataTemplate<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &t.id);
    w.opt_str(b"label", &t.label);
    if t.truncate != 0 {
        w.key(b"truncate");
        int(w.out, t.truncate);
    }
    w.opt_str(b"dataType", &t.data_type);
    if t.priority != 0.0 {
        w.key(b"priority");
        float(w.out, t.priority);
    }
    w.opt_str(b"from", &t.from);
    w.close();
}

fn metric_template(out: &mut Out, t: &MetricTemplate<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &t.id);
    w.opt_str(b"label", &t.label);
    w.opt_str(b"format", &t.format);
    w.opt_str(b"group", &t.group);
    if t.priority != 0.0 {
        w.key(b"priority");
        float(w.out, t.priority);
    }
    w.close();
}

fn table_template(out: &mut Out, t: &TableTemplate<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &t.id);
    w.str_field(b"label", &t.label);
    w.str_field(b"prefix", &t.prefix);
    w.str_field(b"type", &t.kind);
    w.key(b"columns");
    if t.columns.is_empty() {
        w.out.extend_from_slice(b"null");
    } else {
        w.out.push(b'[');
        for (i, c) in t.columns.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            column(w.out, c);
        }
        w.out.push(b']');
    }
    w.key(b"fixedRows");
    if t.fixed_rows.is_empty() {
        w.out.extend_from_slice(b"null");
    } else {
        map(w.out, &t.fixed_rows, |out, v: &Str<'_>| string(out, v));
    }
    w.close();
}

fn column(out: &mut Out, c: &Column<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &c.id);
    w.str_field(b"label", &c.label);
    w.str_field(b"dataType", &c.data_type);
    w.close();
}

fn dns(out: &mut Out, d: &DnsRecords<'_>) {
    map(out, d, |out, r| {
        let mut w = Obj::open(out);
        if !r.forward.is_empty() {
            w.key(b"forward");
            string_set(w.out, &r.forward);
        }
        if !r.reverse.is_empty() {
            w.key(b"reverse");
            string_set(w.out, &r.reverse);
        }
        w.close();
    });
}

fn plugin_spec(out: &mut Out, s: &PluginSpec<'_>) {
    let mut w = Obj::open(out);
    w.str_field(b"id", &s.id);
    w.str_field(b"label", &s.label);
    w.opt_str(b"description", &s.description);
    w.key(b"interfaces");
    if s.interfaces.is_empty() {
        w.out.extend_from_slice(b"null");
    } else {
        w.out.push(b'[');
        for (i, x) in s.interfaces.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            string(w.out, x);
        }
        w.out.push(b']');
    }
    w.opt_str(b"api_version", &s.api_version);
    w.opt_str(b"status", &s.status);
    w.close();
}

#[inline]
fn time(out: &mut Out, t: &Time) {
    out.push(b'"');
    time_text(out, t);
    out.push(b'"');
}

/// [`time`] without the quotes.
#[inline]
fn time_text(out: &mut Out, t: &Time) {
    out.times.write(t, &mut out.buf);
}

fn int(out: &mut Out, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    uint(out, v.unsigned_abs());
}

fn uint(out: &mut Out, v: u64) {
    const E8: u64 = 100_000_000;
    // Digits go straight into the output: building them on the stack and copying them over
    // stalled on store forwarding (stores of 8 bytes read back as one of 16).
    let start = out.buf.len();
    out.buf.resize(start + 24, 0);
    let text = &mut out.buf[start..];
    let len = if v < E8 {
        leading_block(text, v as u32)
    } else if v < E8 * E8 {
        let n = leading_block(text, (v / E8) as u32);
        text[n..n + 8].copy_from_slice(&eight_digits((v % E8) as u32).to_le_bytes());
        n + 8
    } else {
        let n = leading_block(text, (v / (E8 * E8)) as u32);
        let rest = v % (E8 * E8);
        text[n..n + 8].copy_from_slice(&eight_digits((rest / E8) as u32).to_le_bytes());
        text[n + 8..n + 16].copy_from_slice(&eight_digits((rest % E8) as u32).to_le_bytes());
        n + 16
    };
    out.buf.truncate(start + len);
}

/// Writes `n < 10^8` without leading zeros at the start of `text` (at least 8 bytes);
/// returns its length.
fn leading_block(text: &mut [u8], n: u32) -> usize {
    let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    // The first digit is the lowest byte, so the leading zeros shift out to the right.
    let digits = eight_digits(n) >> (8 * (8 - len));
    text[..8].copy_from_slice(&digits.to_le_bytes());
    len
}

/// The eight decimal digits of `n < 10^8` (leading zeros included) as ASCII bytes, the first
/// digit in the lowest byte. Computed in lanes of one register, so the steps are three
/// multiplications for all digits instead of a chain of divisions per pair.
fn eight_digits(n: u32) -> u64 {
    debug_assert!(n < 100_000_000);
    // Two 32-bit lanes: the first four digits, then the last four.
    let quads = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    // Each lane (below 10,000) divided by 100 (exact below 43,699), then split into 16-bit
    // lanes of quotient and remainder.
    let hundreds = ((quads * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let pairs = ((quads - hundreds * 100) << 16) | hundreds;
    // Each 16-bit lane (below 100) divided by 10 (exact below 179), then split into bytes.
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    let digits = ((pairs - tens * 10) << 8) | tens;
    digits | 0x3030_3030_3030_3030
}

/// Shortest text that reads back as the same `f64`. Decoded values are always finite; a
/// non-finite value built in code is written as 0 to keep the output valid JSON.
/// A sample value: kept text as it came (see [`Number`]), a float as [`float`] writes it.
#[inline]
fn number(out: &mut Out, n: Number<'_>) {
    match n.json_bytes() {
        Some(text) => short_text(out, text),
        None => float(out, n.to_f64()),
    }
}

fn float(out: &mut Out, v: f64) {
    if !v.is_finite() {
        out.push(b'0');
        return;
    }
    // Whole below 1e15: the conversions are exact there, and unlike `fract` they are single
    // instructions rather than calls into libm (x86_64's baseline has no rounding instruction).
    if v.abs() < 1e15 && (v as i64) as f64 == v {
        int(out, v as i64);
        return;
    }
    // Between 1e-4 and 1e16 Rust's `{:?}` writes plain decimals, and so does zmij (the
    // formatter serde_json uses) for the same shortest digits, at a fraction of the cost.
    // Outside that range the two pick different exponent styles; keep Rust's. They also
    // break exact ties between two shortest candidates differently, so values that could be
    // such a tie (see `no_shortest_tie`) keep Rust's formatter too.
    let abs = v.abs();
    if let Some(thousandths) = exact_thousandths(abs) {
        if v < 0.0 {
            out.push(b'-');
        }
        uint(out, thousandths / 1000);
        let mut fraction = *b".000";
        let f = (thousandths % 1000) as usize;
        fraction[1] = b'0' + (f / 100) as u8;
        fraction[2..].copy_from_slice(&PAIRS[f % 100]);
        // `f` is not zero (`v` is not whole), so a digit remains after trimming zeros.
        let len = 4 - fraction.iter().rev().take_while(|&&c| c == b'0').count();
        out.extend_from_slice(&fraction[..len]);
        return;
    }
    if (1e-4..1e16).contains(&abs) && no_shortest_tie(abs) {
        let mut buf = zmij::Buffer::new();
        let text = buf.format_finite(v);
        if !text.contains('e') {
            out.extend_from_slice(text.as_bytes());
            return;
        }
    }
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out.buf, "{v:?}");
}

/// `v * 1000` when `v` (positive, not whole) is exactly the double nearest to a decimal with at
/// most three fraction digits and at most fifteen significant digits, as most sample values
/// are (`70.6`, `760.904`). Such a decimal is then `v`'s shortest text: two decimals of at
/// most fifteen digits never read as the same double (`DBL_DIG`), so no shorter one can.
/// The test is a multiplication and, when its result is whole, one division.
fn exact_thousandths(v: f64) -> Option<u64> {
    let scaled = v * 1000.0;
    // `scaled < 1e15`: fifteen digits at most; `>= 1`: `v` is at least 0.001 (not below the
    // 1e-4 where the plain form ends). In that range the conversion to an integer and back
    // is exact exactly when `scaled` is whole (and is an instruction, not a libm call as
    // `round` is). The division is correctly rounded, so equality means the decimal reads
    // back as `v`.
    if !(1.0..1e15).contains(&scaled) {
        return None;
    }
    let whole = scaled as u64;
    let back = whole as f64;
    (back == scaled && back / 1000.0 == v).then_some(whole)
}

/// Whether no two shortest decimal candidates can be equally close to the normal, positive
/// `v` (so every correct shortest formatter writes the same digits). A tie needs the exact
/// binary value to end one decimal digit below the shortest candidates' spacing, which is
/// at least the largest power of ten not above the ulp; the exact value's last digit sits
/// at `10^e'` with `2^e'` its lowest set bit. Ties are thus only possible when `e'` is at
/// least `floor(log10(ulp)) - 1`; we keep a margin of two more digits.
fn no_shortest_tie(v: f64) -> bool {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let ulp_exp = biased - 1075;
    let last_bit_exp = ulp_exp + mantissa.trailing_zeros() as i32;
    // floor(ulp_exp * log10(2)), exact over the f64 range.
    let ulp_digit = (ulp_exp * 78_913) >> 18;
    last_bit_exp < ulp_digit - 3
}

/// Which bytes need escaping in a JSON string: 0 = none, `u` = `\u00XX`, else the letter
/// after the backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn string(out: &mut Out, s: &str) {
    use super::fast::{space_padded_word, special_flags};
    let bytes = s.as_bytes();
    // Room for the quotes and the padded last word.
    out.reserve(bytes.len() + 10);
    out.push(b'"');
    // Test and copy sixteen bytes at a time, with one branch: fixed-size copies instead of a
    // memcpy call per string, which matters because most strings are a few words long.
    let mut pairs = bytes.chunks_exact(16);
    let mut done = 0;
    for pair in &mut pairs {
        let pair: [u8; 16] = pair.try_into().unwrap_or_default();
        let (lo, hi) = (
            u64::from_le_bytes(pair[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(pair[8..].try_into().unwrap_or_default()),
        );
        if special_flags(lo) | special_flags(hi) != 0 {
            return escaped_string(out, bytes, done);
        }
        out.extend_from_slice(&pair);
        done += 16;
    }
    let mut rest = pairs.remainder();
    if let Some((word, after)) = rest.split_first_chunk::<8>() {
        if special_flags(u64::from_le_bytes(*word)) != 0 {
            return escaped_string(out, bytes, done);
        }
        out.extend_from_slice(word);
        done += 8;
        rest = after;
    }
    // Pad the tail with spaces (never special), copy the whole word and cut it back.
    let word = space_padded_word(rest);
    if special_flags(word) != 0 {
        return escaped_string(out, bytes, done);
    }
    let end = out.buf.len() + rest.len();
    out.extend_from_slice(&word.to_le_bytes());
    out.buf.truncate(end);
    out.push(b'"');
}

/// Appends `bytes` eight at a time, for short texts such as numbers: fixed-size copies and a
/// truncate instead of a call to `memcpy`.
fn short_text(out: &mut Out, bytes: &[u8]) {
    out.reserve(bytes.len() + 8);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word: [u8; 8] = chunk.try_into().unwrap_or_default();
        out.extend_from_slice(&word);
    }
    let rest = chunks.remainder();
    let end = out.buf.len() + rest.len();
    out.extend_from_slice(&super::fast::space_padded_word(rest).to_le_bytes());
    out.buf.truncate(end);
}

/// The rest of [`string`] from `bytes[start..]`, for a string with bytes to escape.
fn escaped_string(out: &mut Out, bytes: &[u8], mut start: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Jump from one byte that needs escaping to the next, eight bytes at a time.
    while let Some(at) = bytes.get(start..).and_then(super::fast::special_byte) {
        let i = start + at;
        // `special_byte` returned an index inside `bytes[start..]`.
        let b = bytes[i];
        out.extend_from_slice(&bytes[start..i]);
        match ESCAPE[b as usize] {
            b'u' => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            esc => {
                out.push(b'\\');
                out.push(esc);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Metric, Sample};
    use crate::report::{Node, Time, TopologyKind as K, decode_plugin_report};

    fn enc(r: &Report<'_>) -> String {
        let mut out = Vec::new();
        encode(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn new_out() -> Out {
        Out {
            buf: Vec::new(),
            times: TimeWriter::default(),
        }
    }

    fn node_json(n: Node<'_>) -> String {
        let mut out = new_out();
        node(&mut out, &n);
        String::from_utf8(out.buf).unwrap()
    }

    // spec §4.1: MakeNode("x") encodes with null sets/parents/children.
    #[test]
    fn make_node_encodes_like_go() {
        assert_eq!(
            node_json(Node::new("x")),
            r#"{"id":"x","sets":null,"parents":null,"children":null}"#
        );
    }

    // spec §2.1, §2.2: key order, struct order of topologies, empty topology as {},
    // Window in ns, Plugins [] and zero TS.
    #[test]
    fn report_layout() {
        let mut r = Report::empty();
        r.window_ns = 15_000_000_000;
        let s = enc(&r);
        let mut expected = String::from(r#"{"TS":"0001-01-01T00:00:00Z""#);
        for k in STRUCT_ORDER {
            expected.push_str(&format!(r#","{}":{{}}"#, k.wire_key()));
        }
        expected.push_str(
            r#","Sampling":{"Count":0,"Total":0},"Window":15000000000,"Shortcut":false,"Plugins":[],"ID":""}"#,
        );
        assert_eq!(s, expected);
        let made = enc(&Report::make());
        assert!(
            made.contains(r#""Host":{"shape":"circle","label":"host","label_plural":"hosts"}"#)
        );
        assert!(made.contains(
            r#""VolumeSnapshot":{"shape":"dottedcylinder","tag":"camera","label":"volume snapshot","label_plural":"volume snapshots"}"#
        ));
    }

    // spec §4.2: metric min/max always written, samples omitted when empty; times Go-form.
    #[test]
    fn metric_layout() {
        let mut out = new_out();
        metric(&mut out, &Metric::default());
        assert_eq!(String::from_utf8(out.buf).unwrap(), r#"{"min":0,"max":0}"#);
        let date = Time::parse("2023-06-01T09:30:17.250+02:00").unwrap();
        let m = Metric {
            samples: vec![
                Sample {
                    date,
                    value: 1.5.into(),
                },
                // A decoded plain number goes out as it came (spec §4.2, see `Number`).
                Sample {
                    date,
                    value: Number::from_json_text("-2.50").unwrap(),
                },
            ]
            .into(),
            // So does a decoded bound; a float bound is written as Go writes it.
            min: Number::from_json_text("0.250").unwrap(),
            max: 1e21.into(),
        };
        let mut out = new_out();
        metric(&mut out, &m);
        let s = String::from_utf8(out.buf).unwrap();
        assert_eq!(
            s,
            r#"{"samples":[{"date":"2023-06-01T09:30:17.25+02:00","value":1.5},{"date":"2023-06-01T09:30:17.25+02:00","value":-2.50}],"min":0.250,"max":1e21}"#
        );
    }

    // Kept number texts of every length go out whole, whatever their split into words.
    #[test]
    fn number_texts_of_any_length_are_copied_exactly() {
        let digits = "-12345678901234567890.123456789";
        for len in 1..digits.len() {
            let text = digits[..len].trim_end_matches('.');
            let Some(n) = Number::from_json_text(text) else {
                continue;
            };
            let mut out = new_out();
            out.push(b'[');
            number(&mut out, n);
            out.push(b']');
            assert_eq!(String::from_utf8(out.buf).unwrap(), format!("[{text}]"));
        }
    }

    // Samples written in place and piece by piece (times outside the remembered minute,
    // numbers too long, floats) lay out the same way.
    #[test]
    fn samples_in_place_and_piecewise_agree() {
        let digits = "-1234567890123456789012345678.5";
        let mut samples = Vec::new();
        let mut expected = Vec::new();
        for i in 0..digits.len() {
            let text = &digits[..=i];
            let value = Number::from_json_text(text).unwrap_or(Number::from(0.5));
            // Seconds step by 7: some stay in the remembered minute, some leave it.
            let date =
                Time::from_unix_nanos(1_700_000_000_000_000_000 + 7_000_000_000 * i as i64 + 250);
            let mut date_text = Vec::new();
            date.write_rfc3339(&mut date_text);
            let value_text = value.json_text().map_or("0.5".to_string(), str::to_string);
            expected.push(format!(
                r#"{{"date":"{}","value":{value_text}}}"#,
                String::from_utf8(date_text).unwrap()
            ));
            samples.push(Sample { date, value });
        }
        let m = Metric {
            samples: samples.into(),
            min: 0.0.into(),
            max: 1.0.into(),
        };
        let mut out = new_out();
        metric(&mut out, &m);
        assert_eq!(
            String::from_utf8(out.buf).unwrap(),
            format!(r#"{{"samples":[{}],"min":0,"max":1}}"#, expected.join(","))
        );
    }

    // The last-timestamp shortcut only reuses text for the same instant *and* offset.
    #[test]
    fn repeated_times_keep_their_own_offsets() {
        let mut n = Node::new("n");
        let z = Time::parse("2023-06-01T09:00:00Z").unwrap();
        let plus2 = Time::parse("2023-06-01T11:00:00+02:00").unwrap();
        n.latest.insert("a", z, "");
        n.latest.insert("b", z, "");
        n.latest.insert("c", plus2, "");
        n.latest.insert("d", Time::ZERO, "");
        let s = node_json(n);
        assert!(
            s.contains(r#""a":{"timestamp":"2023-06-01T09:00:00Z""#),
            "{s}"
        );
        assert!(
            s.contains(r#""b":{"timestamp":"2023-06-01T09:00:00Z""#),
            "{s}"
        );
        assert!(
            s.contains(r#""c":{"timestamp":"2023-06-01T11:00:00+02:00""#),
            "{s}"
        );
        assert!(
            s.contains(r#""d":{"timestamp":"0001-01-01T00:00:00Z""#),
            "{s}"
        );
    }

    // Strings are escaped so the output is valid JSON that decodes to the same text.
    #[test]
    fn strings_escaped() {
        let mut out = new_out();
        string(&mut out, "a\"b\\c\n\u{1}é<>&");
        assert_eq!(
            String::from_utf8(out.buf.clone()).unwrap(),
            r#""a\"b\\c\n\u0001é<>&""#
        );
        let back: String = serde_json::from_slice(&out.buf).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é<>&");
    }

    // Every length, and a byte to escape at every place: the word-wise copy and the escaping
    // path must meet without losing or repeating a byte.
    #[test]
    fn strings_of_any_length_round_trip() {
        for len in 0..40 {
            let plain: String = (0..len).map(|i| ['a', '~', ' ', 'é', '<'][i % 5]).collect();
            let mut cases = vec![plain.clone()];
            for (at, _) in plain.char_indices() {
                for special in ["\"", "\\", "\n", "\u{1}"] {
                    let mut s = plain.clone();
                    s.insert_str(at, special);
                    cases.push(s);
                }
            }
            for s in cases {
                let mut out = new_out();
                string(&mut out, &s);
                let back: String = serde_json::from_slice(&out.buf).unwrap();
                assert_eq!(back, s);
            }
        }
    }

    #[test]
    fn integers_as_std_writes_them() {
        let mut values = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            u64::MAX,
            u64::MAX - 1,
            i64::MAX as u64,
        ];
        for p in 1..20 {
            let ten = 10u64.pow(p);
            values.extend([ten - 1, ten, ten + 1, ten / 2 * 3 + 7]);
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Every length from 1 to 20 digits.
            values.push(seed >> (seed % 64));
        }
        for v in values {
            let mut out = new_out();
            uint(&mut out, v);
            assert_eq!(String::from_utf8(out.buf).unwrap(), v.to_string());
        }
    }

    #[test]
    fn floats_round_trip() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.1,
            1e-7,
            12.34,
            3e9,
            1e21,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut out = new_out();
            float(&mut out, v);
            let back: f64 = serde_json::from_slice(&out.buf).unwrap();
            assert_eq!(back, v, "{}", String::from_utf8_lossy(&out.buf));
        }
        let mut out = new_out();
        float(&mut out, f64::NAN);
        assert_eq!(out.buf, b"0");
    }

    /// The zmij shortcut writes exactly what `{:?}` writes, at and around the range edges
    /// and for values spread over every exponent (random bit patterns) and short decimals.
    #[test]
    fn floats_match_rust_debug_text() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            // SplitMix64: deterministic and good enough to cover every exponent.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut values = vec![
            1e-4,
            0.99e-4,
            1.5e-4,
            1e16,
            9.999999999999998e15,
            1e15 + 0.5,
            1e15,
            123456789012345.6,
            0.1 + 0.2,
            5e-324,
        ];
        for _ in 0..200_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            // Bits with an exponent inside the shortcut's range.
            let exp = 1023 - 14 + (bits >> 58) % 68;
            values.push(f64::from_bits(bits & 0x800F_FFFF_FFFF_FFFF | exp << 52));
            let digits = (next() % 100_000_000_000_000_000) as f64;
            values.push(digits / 10f64.powi((next() % 20) as i32));
            // Short decimals, as most sample values are, and their neighbours.
            let short = (next() % 1_000_000_000_000_000) as f64 / 10f64.powi((next() % 5) as i32);
            values.push(short);
            values.push(f64::from_bits(short.to_bits() + 1));
            values.push(-short);
        }
        for v in values.into_iter().filter(|v| v.is_finite()) {
            let mut out = new_out();
            float(&mut out, v);
            let text = String::from_utf8(out.buf).unwrap();
            if v.fract() != 0.0 || v.abs() >= 1e15 {
                assert_eq!(text, format!("{v:?}"), "{v:e}");
            }
        }
    }

    // Encoding Scope's own probe report and decoding it again gives the same report; the
    // encoding is deterministic.
    #[test]
    fn go_probe_report_round_trips() {
        let body = include_bytes!("../../tests/fixtures/go-probe-report.json");
        let r = decode_plugin_report(body, Time::ZERO).unwrap();
        assert!(!r.topology(K::Host).nodes.is_empty());
        let once = enc(&r);
        let again = decode_plugin_report(once.as_bytes(), Time::ZERO).unwrap();
        assert_eq!(again, r);
        assert_eq!(enc(&again), once);
    }
}
