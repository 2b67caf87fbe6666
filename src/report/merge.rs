//! Merging reports with Scope's exact rules and tie-breaks (spec §6).
//!
//! Owns `UnsafeMerge` and every building block under it. Values are moved, never cloned: a
//! merge of decoded reports allocates vectors for merged maps but no strings (the one
//! exception is the Host `active_controls` union, which has to build a new string).
//!
//! Where Scope's result is random or it panics, we use a documented deterministic rule instead
//! (each function says so).

use std::borrow::Cow;
use std::cmp::Ordering;

use super::model::{
    Controls, DnsRecord, DnsRecords, LatestEntry, LatestMap, MetadataTemplate, MetadataTemplates,
    Metric, MetricTemplate, MetricTemplates, Metrics, Node, NodeSet, Nodes, Number, PluginSpecs,
    Sample, Sets, SortedMap, StringSet, TableTemplate, TableTemplates, Topology,
};
use super::{Report, Str};

impl<'a> PluginSpecs<'a> {
    /// `PluginSpecs.Merge` (spec §6.1.7): smaller-overwrites keyed by id; `self` is the
    /// receiver.
    pub fn merge(&mut self, other: PluginSpecs<'a>) {
        *self = merge_plugins(std::mem::take(self), other);
    }
}

impl<'a> LatestMap<'a> {
    /// `StringLatestMap.Merge` (spec §6.1.2) with Go's tie rule; `self` is the receiver.
    pub fn merge(&mut self, other: LatestMap<'a>) {
        *self = merge_latest(std::mem::take(self), other);
    }
}

impl<'a> StringSet<'a> {
    /// Sorted union (spec §6.1.1).
    pub fn merge(&mut self, other: StringSet<'a>) {
        *self = union(std::mem::take(self), other);
    }
}

impl<'a> Metric<'a> {
    /// `Metric.Merge` (spec §6.1.4); `self` is the receiver.
    pub fn merge(&mut self, other: Metric<'a>) {
        *self = merge_metric(std::mem::take(self), other);
    }
}

/// State of one [`Report::merge`] call.
#[derive(Default)]
struct MergeCx {
    /// Whether a node topology conflict was already logged (once per merge call).
    warned_conflict: bool,
}

impl<'a> Report<'a> {
    /// `r.UnsafeMerge(other)` (spec §6.2): `self` is the receiver.
    ///
    /// - `TS`: the earliest non-zero; `Window` and `Sampling`: summed (wrapping, never
    ///   panicking); `Plugins`: smaller-overwrites by id; topologies in canonical order (§6.3);
    ///   `Shortcut`, `ID` and the legacy `nodes` field: the receiver's are kept.
    /// - Fix of a Scope bug: `DNS` is a real per-address union (§6.1.8, Go can drop names).
    /// - Never panics: where Go panics on a node topology conflict (§6.4) the receiver's value
    ///   is kept and the first conflict of the call is logged; where Go panics on a nil node
    ///   map (§6.3) an empty map simply receives the nodes.
    pub fn merge(&mut self, other: Report<'a>) {
        let mut cx = MergeCx::default();
        if !other.ts.is_zero() && (self.ts.is_zero() || other.ts < self.ts) {
            self.ts = other.ts;
        }
        self.dns = merge_dns(std::mem::take(&mut self.dns), other.dns);
        self.sampling.count = self.sampling.count.wrapping_add(other.sampling.count);
        self.sampling.total = self.sampling.total.wrapping_add(other.sampling.total);
        self.window_ns = self.window_ns.wrapping_add(other.window_ns);
        self.plugins = merge_plugins(std::mem::take(&mut self.plugins), other.plugins);
        for ((_, mine), theirs) in self.topologies_mut().zip(other.topologies) {
            mine.merge_with(theirs, &mut cx);
        }
    }
}

impl<'a> Topology<'a> {
    /// `t.UnsafeMerge(other)` (spec §6.3). `self` is the receiver.
    pub fn merge(&mut self, other: Topology<'a>) {
        self.merge_with(other, &mut MergeCx::default());
    }

    fn merge_with(&mut self, other: Topology<'a>, cx: &mut MergeCx) {
        if self.shape.is_empty() {
            self.shape = other.shape;
        }
        if self.tag.is_empty() {
            self.tag = other.tag;
        }
        // The label pair moves together: an empty receiver label takes both (§6.3).
        if self.label.is_empty() {
            self.label = other.label;
            self.label_plural = other.label_plural;
        }
        // Most of a plugin report's 23 topologies hold nothing but their defaults: each map
        // merge below would give back the receiver's map unchanged.
        if other.nodes.is_empty()
            && other.controls.is_empty()
            && other.metadata_templates.is_empty()
            && other.metric_templates.is_empty()
            && other.table_templates.is_empty()
        {
            return;
        }
        self.nodes = merge_nodes(std::mem::take(&mut self.nodes), other.nodes, cx);
        self.controls = merge_controls(std::mem::take(&mut self.controls), other.controls);
        self.metadata_templates = merge_metadata_templates(
            std::mem::take(&mut self.metadata_templates),
            other.metadata_templates,
        );
        self.metric_templates = merge_metric_templates(
            std::mem::take(&mut self.metric_templates),
            other.metric_templates,
        );
        self.table_templates = merge_table_templates(
            std::mem::take(&mut self.table_templates),
            other.table_templates,
        );
    }
}

/// Topology `nodes` (§6.3): a new ID is stored as it is; a clash stores
/// `incoming.Merge(existing)`: the argument's node is the receiver of the node merge.
fn merge_nodes<'a>(mine: Nodes<'a>, theirs: Nodes<'a>, cx: &mut MergeCx) -> Nodes<'a> {
    SortedMap::from_sorted(merge_join_into(
        mine.into_entries(),
        theirs.into_entries(),
        |(k, _)| k,
        // Merged in the existing box: taking the entry out of its slot would leave a new
        // default box, an allocation, behind.
        |(_, existing), (_, incoming)| {
            **existing = incoming.merge_with(std::mem::take(&mut **existing), cx);
        },
    ))
}

impl<'a> Node<'a> {
    /// `n.Merge(other)` (spec §6.4): `self` is the receiver.
    ///
    /// - Fix of a Scope crash: when both topologies are set and differ, Go panics; we keep the
    ///   receiver's value and log a warning.
    /// - Fix of a Scope bug (§6.5): for `host` nodes the `active_controls` union always
    ///   survives, stamped with the newer timestamp, whatever the latest-map tie rule says. Its
    ///   elements are the receiver's, then the argument's new ones (Go's order is random).
    pub fn merge(self, other: Node<'a>) -> Node<'a> {
        self.merge_with(other, &mut MergeCx::default())
    }

    fn merge_with(self, other: Node<'a>, cx: &mut MergeCx) -> Node<'a> {
        let id = if self.id.is_empty() {
            other.id
        } else {
            self.id
        };
        let topology = if self.topology.is_empty() {
            other.topology
        } else {
            if !other.topology.is_empty() && other.topology != self.topology && !cx.warned_conflict
            {
                cx.warned_conflict = true;
                log::warn!(
                    "merging node {:?} with different topologies {:?} and {:?}: kept {:?}",
                    id,
                    self.topology,
                    other.topology,
                    self.topology
                );
            }
            self.topology
        };
        let host_union = if topology == "host" {
            active_controls_union(&self.latest, &other.latest)
        } else {
            None
        };
        let mut latest = merge_latest(self.latest, other.latest);
        if let Some(entry) = host_union {
            latest.map.insert("active_controls", entry);
        }
        Node {
            id,
            topology,
            sets: merge_sets(self.sets, other.sets),
            adjacency: union(self.adjacency, other.adjacency),
            latest,
            metrics: merge_metrics(self.metrics, other.metrics),
            parents: merge_sets(self.parents, other.parents),
            children: merge_children(self.children, other.children),
        }
    }
}

/// §6.5 with our fix: `None` when there is nothing to union (one side absent or equal strings,
/// where the normal latest merge already gives the right value).
fn active_controls_union<'a>(a: &LatestMap<'a>, b: &LatestMap<'a>) -> Option<LatestEntry<'a>> {
    let a = a.get("active_controls")?;
    let b = b.get("active_controls")?;
    if a.value == b.value {
        return None;
    }
    let mut elements: Vec<&str> = Vec::new();
    for e in a.value.split(';').chain(b.value.split(';')) {
        if !elements.contains(&e) {
            elements.push(e);
        }
    }
    Some(LatestEntry {
        timestamp: a.timestamp.max(b.timestamp),
        value: Cow::Owned(elements.join(";")),
    })
}

/// LatestMap merge (§6.1.2) with Go's tie rule: an empty side returns the other; otherwise
/// the sides are swapped when the argument has more keys, or the same number and the
/// receiver's first entry is strictly older; then a shared key takes the (possibly swapped)
/// argument's entry only when it is strictly newer.
pub(crate) fn merge_latest<'a>(a: LatestMap<'a>, b: LatestMap<'a>) -> LatestMap<'a> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let swap = match b.len().cmp(&a.len()) {
        Ordering::Greater => true,
        Ordering::Equal => first_ts(&a) < first_ts(&b),
        Ordering::Less => false,
    };
    let (a, b) = if swap { (b, a) } else { (a, b) };
    let entries = merge_join_into(
        a.map.into_entries(),
        b.map.into_entries(),
        |(k, _)| k,
        |ea, eb| {
            if ea.1.timestamp < eb.1.timestamp {
                *ea = eb;
            }
        },
    );
    LatestMap {
        map: SortedMap::from_sorted(entries),
    }
}

fn first_ts(m: &LatestMap<'_>) -> super::Time {
    m.iter()
        .next()
        .map(|(_, e)| e.timestamp)
        .unwrap_or_default()
}

/// StringSet union (§6.1.1): sorted, duplicate-free.
pub(crate) fn union<'a>(a: StringSet<'a>, b: StringSet<'a>) -> StringSet<'a> {
    // Reports of one interval mostly repeat a node's sets: keep one side rather than build.
    if b.is_empty() || a == b {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    StringSet::from_sorted(merge_join(a.into_items(), b.into_items(), |s| s, |x, _| x))
}

/// Sets merge (§6.1.3): every key of both; shared keys get the union; empty sets are kept.
pub(crate) fn merge_sets<'a>(a: Sets<'a>, b: Sets<'a>) -> Sets<'a> {
    // Reports of one interval mostly repeat a node's sets and parents: keep one side rather
    // than take both apart (which copies a side decoded into an arena).
    if b.is_empty() || a == b {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    SortedMap::from_sorted(merge_join(
        a.into_entries(),
        b.into_entries(),
        |(k, _)| k,
        |(k, x), (_, y)| (k, union(x, y)),
    ))
}

/// `Metrics.Merge` (§6.1.4): the side with more metrics is the receiver of each shared
/// metric's merge (the receiver when sizes are equal).
pub(crate) fn merge_metrics<'a>(a: Metrics<'a>, b: Metrics<'a>) -> Metrics<'a> {
    let (big, small) = if b.len() > a.len() { (b, a) } else { (a, b) };
    SortedMap::from_sorted(merge_join(
        big.into_entries(),
        small.into_entries(),
        |(k, _)| k,
        |(k, m), (_, o)| (k, merge_metric(m, o)),
    ))
}

/// `Metric.Merge(m, o)` (§6.1.4), `m` is the receiver: an empty side returns the other whole
/// (bounds included); disjoint ranges are concatenated; otherwise samples interleave by date
/// and on equal dates `m`'s sample is kept.
pub(crate) fn merge_metric<'a>(m: Metric<'a>, o: Metric<'a>) -> Metric<'a> {
    if m.samples.is_empty() {
        return o;
    }
    if o.samples.is_empty() {
        return m;
    }
    let (min, max) = (
        go_bound(m.min, o.min, Ordering::Less),
        go_bound(m.max, o.max, Ordering::Greater),
    );
    // Both sample lists are non-empty here.
    let (m_first, m_last) = (m.samples[0].date, m.samples[m.samples.len() - 1].date);
    let (o_first, o_last) = (o.samples[0].date, o.samples[o.samples.len() - 1].date);
    let samples = if o_first > m_last {
        let mut s = m.samples.into_vec_reserving(o.samples.len());
        s.extend_from_slice(&o.samples);
        s
    } else if m_first > o_last {
        let mut s = o.samples.into_vec_reserving(m.samples.len());
        s.extend_from_slice(&m.samples);
        s
    } else {
        let o = &o.samples;
        interleave(m.samples.into_vec_reserving(o.len()), o)
    };
    Metric {
        samples: samples.into(),
        min,
        max,
    }
}

/// Go's `math.Min` (`wins` is `Less`) or `math.Max` (`Greater`) of two finite bounds, as the
/// one of them it returns: `y` when it is strictly beyond `x` that way, else `x` (so on equal
/// values `x` keeps its text). Go orders `-0` below `0` there, as `total_cmp` does.
fn go_bound<'a>(x: Number<'a>, y: Number<'a>, wins: Ordering) -> Number<'a> {
    if !same_text(x, y) && y.to_f64().total_cmp(&x.to_f64()) == wins {
        y
    } else {
        x
    }
}

/// Whether two bounds are the same kept text, so equal without reading them (metrics of one
/// kind mostly share their bounds, such as `0` and `100` for percentages).
fn same_text(x: Number<'_>, y: Number<'_>) -> bool {
    matches!((x.json_bytes(), y.json_bytes()), (Some(a), Some(b)) if a == b)
}

/// Samples of `m` and `o` interleaved by date, `m`'s kept on equal dates: Go's forward merge.
///
/// The leading samples of `m` that come before `o`'s first stay where they are and only the
/// rest is merged, in `m`'s vector: a metric that a plugin keeps reporting overlaps the
/// accumulated one only at its end, and rebuilding the whole series on every merge made a
/// fold over many reports quadratic. Found by a linear scan, not a binary search, so that the
/// result is Go's even for samples out of order.
fn interleave<'a>(mut m: Vec<Sample<'a>>, o: &[Sample<'a>]) -> Vec<Sample<'a>> {
    let Some(o_first) = o.first().map(|s| s.date) else {
        return m;
    };
    let kept = m.iter().position(|s| s.date >= o_first).unwrap_or(m.len());
    let rest = m.split_off(kept);
    m.reserve(rest.len() + o.len());
    let (mut mi, mut oi) = (rest.into_iter().peekable(), o.iter().copied().peekable());
    loop {
        let ord = match (mi.peek(), oi.peek()) {
            (Some(x), Some(y)) => x.date.cmp(&y.date),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match ord {
            Ordering::Less => m.extend(mi.next()),
            Ordering::Greater => m.extend(oi.next()),
            Ordering::Equal => {
                m.extend(mi.next());
                oi.next();
            }
        }
    }
    m
}

/// The smaller-overwrites pattern (§6 intro) for maps keyed by the map key: an empty side
/// returns the other; on a clash the smaller side's entry wins, the argument's when sizes
/// are equal.
pub(crate) fn smaller_overwrites<'a, V: Default + Clone>(
    a: SortedMap<'a, V>,
    b: SortedMap<'a, V>,
) -> SortedMap<'a, V> {
    SortedMap::from_sorted(smaller_overwrites_by(
        a.into_entries(),
        b.into_entries(),
        |(k, _)| k,
    ))
}

/// The smaller-overwrites pattern over key-sorted vectors, keyed by `key`.
fn smaller_overwrites_by<T, K: AsRef<str> + ?Sized>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> &K,
) -> Vec<T> {
    let b_wins = b.len() <= a.len();
    merge_join_into(a, b, key, |x, y| {
        if b_wins {
            *x = y;
        }
    })
}

/// Controls merge (§6.1.6).
pub(crate) fn merge_controls<'a>(a: Controls<'a>, b: Controls<'a>) -> Controls<'a> {
    smaller_overwrites(a, b)
}

/// PluginSpecs merge (§6.1.7): smaller-overwrites keyed by id.
pub(crate) fn merge_plugins<'a>(a: PluginSpecs<'a>, b: PluginSpecs<'a>) -> PluginSpecs<'a> {
    PluginSpecs {
        specs: smaller_overwrites_by(a.specs, b.specs, |s| &s.id),
    }
}

/// NodeSet merge for `children` (§6.4 step 4): smaller-overwrites keyed by id.
fn merge_children<'a>(a: NodeSet<'a>, b: NodeSet<'a>) -> NodeSet<'a> {
    NodeSet {
        nodes: smaller_overwrites_by(a.nodes, b.nodes, |n| &n.id),
    }
}

/// A template that merges by priority (§6.1.5).
pub(crate) trait Prioritized {
    /// The template's `priority`.
    fn priority(&self) -> f64;
}

impl Prioritized for MetadataTemplate<'_> {
    fn priority(&self) -> f64 {
        self.priority
    }
}

impl Prioritized for MetricTemplate<'_> {
    fn priority(&self) -> f64 {
        self.priority
    }
}

/// Metadata and metric templates (§6.1.5): the bigger side is the base (the receiver on equal
/// sizes); a smaller side's entry replaces only on a strictly higher priority.
pub(crate) fn merge_by_priority<'a, T: Prioritized + Default + Clone>(
    a: SortedMap<'a, T>,
    b: SortedMap<'a, T>,
) -> SortedMap<'a, T> {
    let (big, small) = if b.len() > a.len() { (b, a) } else { (a, b) };
    SortedMap::from_sorted(merge_join_into(
        big.into_entries(),
        small.into_entries(),
        |(k, _)| k,
        |x, y| {
            if y.1.priority() > x.1.priority() {
                *x = y;
            }
        },
    ))
}

/// Metadata templates (§6.1.5).
pub(crate) fn merge_metadata_templates<'a>(
    a: MetadataTemplates<'a>,
    b: MetadataTemplates<'a>,
) -> MetadataTemplates<'a> {
    merge_by_priority(a, b)
}

/// Metric templates (§6.1.5): the same rule as metadata templates.
pub(crate) fn merge_metric_templates<'a>(
    a: MetricTemplates<'a>,
    b: MetricTemplates<'a>,
) -> MetricTemplates<'a> {
    merge_by_priority(a, b)
}

/// Table templates (§6.1.5): the bigger side is the base; a shared key stores
/// `small[k].Merge(big[k])`.
pub(crate) fn merge_table_templates<'a>(
    a: TableTemplates<'a>,
    b: TableTemplates<'a>,
) -> TableTemplates<'a> {
    let (big, small) = if b.len() > a.len() { (b, a) } else { (a, b) };
    SortedMap::from_sorted(merge_join(
        big.into_entries(),
        small.into_entries(),
        |(k, _)| k,
        |(k, big), (_, small)| (k, merge_table_template(small, big)),
    ))
}

/// `TableTemplate.Merge(t, o)` (§6.1.5): strings take the lexicographically greater value;
/// `columns` the longer list and `fixedRows` the bigger map, `t`'s on a tie.
fn merge_table_template<'a>(t: TableTemplate<'a>, o: TableTemplate<'a>) -> TableTemplate<'a> {
    fn greater<'a>(x: Str<'a>, y: Str<'a>) -> Str<'a> {
        if y > x { y } else { x }
    }
    TableTemplate {
        id: greater(t.id, o.id),
        label: greater(t.label, o.label),
        prefix: greater(t.prefix, o.prefix),
        kind: greater(t.kind, o.kind),
        columns: if o.columns.len() > t.columns.len() {
            o.columns
        } else {
            t.columns
        },
        fixed_rows: if o.fixed_rows.len() > t.fixed_rows.len() {
            o.fixed_rows
        } else {
            t.fixed_rows
        },
    }
}

/// DNS records: fix of a Scope bug (§6.1.8, Go can drop names): a real per-address union of
/// `forward` and of `reverse`.
pub(crate) fn merge_dns<'a>(a: DnsRecords<'a>, b: DnsRecords<'a>) -> DnsRecords<'a> {
    SortedMap::from_sorted(merge_join(
        a.into_entries(),
        b.into_entries(),
        |(k, _)| k,
        |(k, x), (_, y)| {
            (
                k,
                DnsRecord {
                    forward: union(x.forward, y.forward),
                    reverse: union(x.reverse, y.reverse),
                },
            )
        },
    ))
}

/// Up to this many entries a side is merged into a larger one in place. Sixteen covers a
/// node's latest map (seven to ten entries, merged for every node plugins keep reporting).
const SMALL_SIDE: usize = 16;

/// Merge-join of two key-sorted, key-unique vectors: entries of one side move over as they
/// are; on equal keys `both(a_item, b_item)` decides. An empty side returns the other without
/// copying. ([`merge_join_into`] with the pair combined by value.)
fn merge_join<T: Default, K: AsRef<str> + ?Sized>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> &K,
    mut both: impl FnMut(T, T) -> T,
) -> Vec<T> {
    merge_join_into(a, b, key, |x, y| *x = both(std::mem::take(x), y))
}

/// Merge-join of two key-sorted, key-unique vectors: entries of one side move over as they
/// are; on equal keys `combine(a_item, b_item)` turns `a_item` into the result. An empty side
/// returns the other without copying.
///
/// In place because most merges of equal keys keep one side (the newer latest entry, the
/// higher-priority template, the smaller side's control): combined by value, each kept
/// template was moved out of its slot, through the closure and back, three copies of a
/// hundred bytes and more.
///
/// When one side is small and the other larger (folding one plugin's report into the report
/// of a thousand, or a node's few new latest entries into its map), the small side's entries
/// are searched into the larger vector in place instead of rebuilding it: rebuilding made
/// such a fold quadratic, and cost an allocation per merge of small maps. The result is the
/// same either way.
fn merge_join_into<T, K: AsRef<str> + ?Sized>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> &K,
    mut combine: impl FnMut(&mut T, T),
) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    if b.len() <= SMALL_SIDE && a.len() > SMALL_SIDE {
        return merge_in_place(a, b, &key, &mut combine);
    }
    if a.len() <= SMALL_SIDE && b.len() > SMALL_SIDE {
        // `b`'s entry sits in the slot; `a`'s must be the one combined into.
        return merge_in_place(b, a, &key, |slot, a_item| {
            let b_item = std::mem::replace(slot, a_item);
            combine(slot, b_item);
        });
    }
    if keys_contained(&b, &a, &key) {
        return combine_in_place(a, b, &key, combine);
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut ai = a.into_iter().peekable();
    let mut bi = b.into_iter().peekable();
    loop {
        let ord = match (ai.peek(), bi.peek()) {
            (Some(x), Some(y)) => key(x).as_ref().cmp(key(y).as_ref()),
            (Some(_), None) => {
                out.extend(ai);
                break;
            }
            (None, _) => {
                out.extend(bi);
                break;
            }
        };
        match ord {
            Ordering::Less => out.extend(ai.next()),
            Ordering::Greater => out.extend(bi.next()),
            Ordering::Equal => {
                if let (Some(mut x), Some(y)) = (ai.next(), bi.next()) {
                    combine(&mut x, y);
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Whether every key of `small` is a key of `big` (both sorted by key). The usual case once
/// a report holds what plugins keep sending (templates, shared nodes, their maps); stops at
/// the first key missing, so disjoint maps cost a comparison or two.
fn keys_contained<T, K: AsRef<str> + ?Sized>(
    small: &[T],
    big: &[T],
    key: &impl Fn(&T) -> &K,
) -> bool {
    if small.len() > big.len() {
        return false;
    }
    let mut at = 0;
    small.iter().all(|item| {
        let wanted = key(item).as_ref();
        while let Some(probe) = big.get(at) {
            at += 1;
            match key(probe).as_ref().cmp(wanted) {
                Ordering::Less => continue,
                Ordering::Equal => return true,
                Ordering::Greater => return false,
            }
        }
        false
    })
}

/// [`merge_join_into`] when every key of `small` is in `big`: combines each pair in `big`'s
/// slot with `combine(big_item, small_item)`, without building a new vector.
fn combine_in_place<T, K: AsRef<str> + ?Sized>(
    mut big: Vec<T>,
    small: Vec<T>,
    key: &impl Fn(&T) -> &K,
    mut combine: impl FnMut(&mut T, T),
) -> Vec<T> {
    let mut at = 0;
    for item in small {
        while big
            .get(at)
            .is_some_and(|probe| key(probe).as_ref() != key(&item).as_ref())
        {
            at += 1;
        }
        // `keys_contained` guarantees the slot; were it missing, the entry would only be lost.
        debug_assert!(at < big.len(), "combine_in_place: key not found");
        if let Some(slot) = big.get_mut(at) {
            combine(slot, item);
        }
        at += 1;
    }
    big
}

/// Inserts every entry of `small` into `big` at its sorted place, combining equal keys with
/// `combine(big_item, small_item)`.
fn merge_in_place<T, K: AsRef<str> + ?Sized>(
    mut big: Vec<T>,
    small: Vec<T>,
    key: &impl Fn(&T) -> &K,
    mut combine: impl FnMut(&mut T, T),
) -> Vec<T> {
    big.reserve(small.len());
    // `small` is sorted, so each entry's place is at or after the previous one's: gallop
    // from there (1, 2, 4, … ahead) before the binary search. Entries a plugin sends every
    // time sit next to each other, so most searches end within a step or two.
    let mut from = 0;
    for item in small {
        let wanted = key(&item).as_ref();
        let mut span = 1;
        while from + span <= big.len() && key(&big[from + span - 1]).as_ref() < wanted {
            from += span;
            span *= 2;
        }
        let end = (from + span).min(big.len());
        let found = big[from..end].binary_search_by(|probe| key(probe).as_ref().cmp(wanted));
        match found {
            Ok(at) => {
                // Combine in the slot: removing and re-inserting moved the whole tail twice.
                let pos = from + at;
                combine(&mut big[pos], item);
                from = pos + 1;
            }
            Err(at) => {
                big.insert(from + at, item);
                from += at + 1;
            }
        }
    }
    big
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place path gives exactly what the full merge-join gives, on both sides.
    #[test]
    fn in_place_merge_equals_merge_join() {
        // Sizes that take the binary-search path (100) and the linear ones (6), with small
        // sides whose keys are all in the big side (combined in place) or not.
        for (size, small_keys) in [
            (100, vec!["a", "k050", "z"]),
            (100, vec!["k000", "k099"]),
            (100, vec!["k0505"]),
            (6, vec!["k000", "k001", "k002", "k003", "k004", "k005"]),
            (6, vec!["k001", "k005"]),
            (6, vec!["k001", "k0015", "k005"]),
            (6, vec!["k005", "k006"]),
            (6, vec!["a", "k000", "k001", "k002", "k003", "k004", "k005"]),
        ] {
            let big: Vec<(String, u32)> = (0..size).map(|i| (format!("k{i:03}"), i)).collect();
            let small: Vec<(String, u32)> =
                small_keys.iter().map(|k| (k.to_string(), 1000)).collect();
            let join = |a: Vec<(String, u32)>, b: Vec<(String, u32)>| {
                // Force the full merge-join by joining through the general path.
                let mut out: Vec<(String, u32)> = Vec::new();
                let (mut ai, mut bi) = (a.into_iter().peekable(), b.into_iter().peekable());
                loop {
                    match (ai.peek(), bi.peek()) {
                        (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                            Ordering::Less => out.extend(ai.next()),
                            Ordering::Greater => out.extend(bi.next()),
                            Ordering::Equal => {
                                let (x, y) = (ai.next().unwrap(), bi.next().unwrap());
                                out.push((x.0, x.1 * 10 + y.1));
                            }
                        },
                        (Some(_), None) => out.extend(ai.by_ref()),
                        (None, _) => {
                            out.extend(bi.by_ref());
                            break;
                        }
                    }
                }
                out
            };
            let combine = |(k, x): (String, u32), (_, y): (String, u32)| (k, x * 10 + y);
            let expected = join(big.clone(), small.clone());
            assert_eq!(
                merge_join(big.clone(), small.clone(), |e| &e.0, combine),
                expected
            );
            let expected_rev = join(small.clone(), big.clone());
            assert_eq!(
                merge_join(small.clone(), big.clone(), |e| &e.0, combine),
                expected_rev
            );
        }
    }

    /// A deterministic xorshift generator of numbers below `n`, for randomized tests.
    fn below(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// The galloping search of `merge_in_place` finds every place: small sides spread over,
    /// bunched in and beyond big ones of many sizes give what a map-based merge gives.
    #[test]
    fn in_place_merge_finds_every_place() {
        use std::collections::BTreeMap;
        let mut next = below(0x1234_5678_9abc_def1);
        for _ in 0..3000 {
            let (big_len, small_len, spread) = (next(200) + 33, next(8) + 1, next(400) + 1);
            let mut keys = |len: u64, tag: u32| -> Vec<(String, u32)> {
                let map: BTreeMap<String, u32> = (0..len)
                    .map(|_| (format!("k{:04}", next(spread)), tag))
                    .collect();
                map.into_iter().collect()
            };
            let big = keys(big_len, 1);
            let small = keys(small_len, 2);
            let mut expected: BTreeMap<String, u32> = big.iter().cloned().collect();
            for (k, v) in &small {
                expected
                    .entry(k.clone())
                    .and_modify(|x| *x += v * 10)
                    .or_insert(*v);
            }
            let got = merge_in_place(
                big,
                small,
                &|e: &(String, u32)| &e.0,
                |(_, x): &mut (String, u32), (_, y)| *x += y * 10,
            );
            assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
        }
    }

    use crate::report::model::{
        Control, DnsRecord, MetadataTemplate, MetricTemplate, Number, PluginSpec, Sample, Samples,
    };
    use crate::report::{Time, TopologyKind as K};

    fn t(s: u32) -> Time {
        Time::from_unix_nanos(1_685_600_000_000_000_000 + i64::from(s) * 1_000_000_000)
    }

    fn latest(entries: &[(&'static str, u32, &'static str)]) -> LatestMap<'static> {
        let mut m = LatestMap::new();
        for &(k, ts, v) in entries {
            m.insert(k, t(ts), v);
        }
        m
    }

    fn value<'a>(m: &'a LatestMap<'_>, k: &str) -> &'a str {
        &m.get(k).unwrap().value
    }

    fn set(items: &[&'static str]) -> StringSet<'static> {
        StringSet::from_unsorted(items.iter().map(|s| Cow::Borrowed(*s)).collect())
    }

    fn metric(samples: &[(u32, f64)], min: f64, max: f64) -> Metric<'static> {
        Metric {
            samples: samples
                .iter()
                .map(|&(d, v)| Sample {
                    date: t(d),
                    value: v.into(),
                })
                .collect(),
            min: min.into(),
            max: max.into(),
        }
    }

    fn values(m: &Metric) -> Vec<f64> {
        m.samples.iter().map(|s| s.value.to_f64()).collect()
    }

    // spec §6.1.1: sorted union without duplicates.
    #[test]
    fn string_set_union() {
        let u = union(set(&["a", "c"]), set(&["b", "c", "d"]));
        assert_eq!(u.iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(union(set(&[]), set(&["x"])).len(), 1);
        // §9.7: unsorted input is normalised on decode, so the union is right.
        let u = union(set(&["b", "a"]), set(&["a", "c"]));
        assert_eq!(u.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    // spec §6.1.2: strictly newer wins; the three verified tie cases.
    #[test]
    fn latest_newer_wins_and_go_ties() {
        let m = merge_latest(latest(&[("a", 1, "x")]), latest(&[("a", 2, "y")]));
        assert_eq!(value(&m, "a"), "y");
        let m = merge_latest(latest(&[("a", 2, "x")]), latest(&[("a", 1, "y")]));
        assert_eq!(value(&m, "a"), "x");
        // {a:(t,x)}.Merge({a:(t,y)}) → x
        let m = merge_latest(latest(&[("a", 1, "x")]), latest(&[("a", 1, "y")]));
        assert_eq!(value(&m, "a"), "x");
        // {a:(t,x)}.Merge({a:(t,y), b:…}) → y: a tie goes to the map with more keys.
        let m = merge_latest(
            latest(&[("a", 1, "x")]),
            latest(&[("a", 1, "y"), ("b", 1, "")]),
        );
        assert_eq!(value(&m, "a"), "y");
        assert_eq!(m.len(), 2);
        // {a:(t,x), b:…}.Merge({a:(t,y)}) → x
        let m = merge_latest(
            latest(&[("a", 1, "x"), ("b", 1, "")]),
            latest(&[("a", 1, "y")]),
        );
        assert_eq!(value(&m, "a"), "x");
        // Equal sizes: the side whose first entry is strictly newer wins ties.
        let m = merge_latest(
            latest(&[("a", 1, "x"), ("k", 5, "x")]),
            latest(&[("a", 2, "y"), ("k", 5, "y")]),
        );
        assert_eq!(value(&m, "k"), "y");
        let m = merge_latest(
            latest(&[("a", 2, "x"), ("k", 5, "x")]),
            latest(&[("a", 1, "y"), ("k", 5, "y")]),
        );
        assert_eq!(value(&m, "k"), "x");
        // Empty sides.
        assert_eq!(
            merge_latest(LatestMap::new(), latest(&[("a", 1, "y")])).len(),
            1
        );
        assert_eq!(
            merge_latest(latest(&[("a", 1, "y")]), LatestMap::new()).len(),
            1
        );
    }

    // spec §6.1.3, §6.6: every key of both sides; shared keys unioned; empty sets kept.
    #[test]
    fn sets_merge() {
        let mut a = Sets::new();
        a.insert("k", set(&["a"]));
        a.insert("empty", set(&[]));
        let mut b = Sets::new();
        b.insert("k", set(&["b"]));
        b.insert("other", set(&["c"]));
        let m = merge_sets(a, b);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["empty", "k", "other"]);
        assert_eq!(m.get("k").unwrap().iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(m.get("empty").unwrap().is_empty());
    }

    // spec §6.1.4, §9.19: an empty side returns the other whole, bounds included.
    #[test]
    fn metric_empty_side_returns_other() {
        let m = merge_metric(metric(&[], -5.0, 500.0), metric(&[(1, 1.0)], 0.0, 100.0));
        assert_eq!(
            (m.min.to_f64(), m.max.to_f64(), values(&m)),
            (0.0, 100.0, vec![1.0])
        );
        let m = merge_metric(metric(&[(1, 1.0)], 0.0, 100.0), metric(&[], -5.0, 500.0));
        assert_eq!((m.min.to_f64(), m.max.to_f64()), (0.0, 100.0));
    }

    // spec §6.1.4 step 5: the bounds are Go's `math.Min` and `math.Max`, and a bound that
    // came as text keeps it (so it is written back as the plugin sent it).
    #[test]
    fn metric_bounds_are_gos_min_and_max() {
        let text = |t: &'static str| Number::from_json_text(t).unwrap();
        let bounds = |m: Metric<'static>, o: Metric<'static>| {
            let m = merge_metric(m, o);
            (m.min.json_text(), m.max.json_text())
        };
        let with = |min, max| Metric {
            samples: vec![Sample::default()].into(),
            min,
            max,
        };
        assert_eq!(
            bounds(
                with(text("0.50"), text("100")),
                with(text("1"), text("99.5"))
            ),
            (Some("0.50"), Some("100"))
        );
        assert_eq!(
            bounds(
                with(text("1"), text("99.5")),
                with(text("0.50"), text("100.0"))
            ),
            (Some("0.50"), Some("100.0"))
        );
        // Equal values keep the receiver's text.
        assert_eq!(
            bounds(with(text("1.0"), text("2")), with(text("1"), text("2.00"))),
            (Some("1.0"), Some("2"))
        );
        // Go's zeros: Min(0, -0) = -0 and Max(-0, 0) = 0, whichever side they are on.
        for (m, o) in [("0", "-0"), ("-0", "0")] {
            assert_eq!(
                bounds(with(text(m), text(m)), with(text(o), text(o))),
                (Some("-0"), Some("0")),
                "{m} {o}"
            );
        }
        // A bound read as a float compares by value with kept text.
        let m = merge_metric(with(2.5.into(), 3.0.into()), with(text("2.4"), text("3")));
        assert_eq!((m.min.json_text(), m.max.to_f64()), (Some("2.4"), 3.0));
    }

    // spec §6.1.4 steps 2–5: concatenation, interleaving, equal dates keep the receiver's.
    #[test]
    fn metric_samples_merge() {
        let m = merge_metric(
            metric(&[(1, 1.0), (2, 2.0)], 0.0, 10.0),
            metric(&[(3, 3.0)], -1.0, 5.0),
        );
        assert_eq!(values(&m), [1.0, 2.0, 3.0]);
        assert_eq!((m.min.to_f64(), m.max.to_f64()), (-1.0, 10.0));
        let m = merge_metric(
            metric(&[(5, 5.0)], 0.0, 1.0),
            metric(&[(1, 1.0), (2, 2.0)], 0.0, 1.0),
        );
        assert_eq!(values(&m), [1.0, 2.0, 5.0]);
        let m = merge_metric(
            metric(&[(1, 1.0), (3, 3.0), (5, 5.0)], 0.0, 1.0),
            metric(&[(2, 20.0), (3, 30.0), (6, 60.0)], 0.0, 1.0),
        );
        assert_eq!(values(&m), [1.0, 20.0, 3.0, 5.0, 60.0]);
    }

    /// Go's forward merge, sample by sample: what `interleave` must equal.
    fn forward_merge(m: &[Sample<'static>], o: &[Sample<'static>]) -> Vec<Sample<'static>> {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < m.len() || j < o.len() {
            let ord = match (m.get(i), o.get(j)) {
                (Some(x), Some(y)) => x.date.cmp(&y.date),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match ord {
                Ordering::Less => (out.push(m[i]), i += 1),
                Ordering::Greater => (out.push(o[j]), j += 1),
                Ordering::Equal => (out.push(m[i]), (i, j) = (i + 1, j + 1)),
            };
        }
        out
    }

    // A metric's kept sample text survives a merge only where its samples pass through
    // unchanged (an empty other side); combined samples are written one by one again.
    #[test]
    fn merged_samples_keep_text_only_when_unchanged() {
        // Each text is what encoding its samples writes, as the decoder guarantees.
        let kept = [
            (&br#"[{"date":"2023-06-01T10:00:00Z","value":1}]"#[..], &[("10:00:00", "1")][..]),
            (
                br#"[{"date":"2023-06-01T10:00:01Z","value":2},{"date":"2023-06-01T10:00:02Z","value":3}]"#,
                &[("10:00:01", "2"), ("10:00:02", "3")],
            ),
        ];
        let with_text = |i: usize| {
            let (text, samples) = kept[i];
            let items: Vec<Sample> = samples
                .iter()
                .map(|&(clock, value)| Sample {
                    date: Time::parse(&format!("2023-06-01T{clock}Z")).unwrap(),
                    value: Number::from_json_text(value).unwrap(),
                })
                .collect();
            Metric {
                samples: Samples::from(items).and_text(text),
                min: 0.0.into(),
                max: 1.0.into(),
            }
        };
        for (i, (text, _)) in kept.iter().enumerate() {
            let alone = merge_metric(with_text(i), Metric::default());
            assert_eq!(alone.samples.json_text(), Some(*text));
            let alone = merge_metric(Metric::default(), with_text(i));
            assert_eq!(alone.samples.json_text(), Some(*text));
        }
        for (a, b, want) in [
            (0, 1, &[1.0, 2.0, 3.0][..]),
            (1, 0, &[1.0, 2.0, 3.0]),
            (1, 1, &[2.0, 3.0]),
        ] {
            let merged = merge_metric(with_text(a), with_text(b));
            assert_eq!(merged.samples.json_text(), None, "{a} and {b}");
            assert_eq!(values(&merged), want, "{a} and {b}");
        }
        let mut changed = with_text(1);
        changed.samples[0].value = 5.0.into();
        assert_eq!(changed.samples.json_text(), None);
        assert_eq!(values(&changed), [5.0, 3.0]);
    }

    // spec §6.1.4: merging only the overlapping end in place gives Go's result, also for
    // samples out of order (which Scope does not check either).
    #[test]
    fn interleave_equals_forward_merge() {
        let mut below = below(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: u64| below(n) as u32;
        for round in 0..2000 {
            let mut series = |sorted: bool| {
                let len = next(20);
                let mut dates: Vec<u32> = (0..len).map(|_| next(40)).collect();
                if sorted {
                    dates.sort_unstable();
                    dates.dedup();
                }
                let values: Vec<(u32, f64)> =
                    dates.iter().map(|&d| (d, f64::from(next(1000)))).collect();
                metric(&values, 0.0, 1.0).samples.into_vec()
            };
            let sorted = round % 4 != 0;
            let m = series(sorted);
            let o = series(sorted);
            assert_eq!(
                interleave(m.clone(), &o),
                forward_merge(&m, &o),
                "m = {m:?}, o = {o:?}"
            );
        }
    }

    // spec §6.1.4: the side with more metrics is the receiver of shared metric merges.
    #[test]
    fn metrics_bigger_side_is_receiver() {
        let mut a = Metrics::new();
        a.insert("m", metric(&[(1, 1.0)], 0.0, 1.0));
        let mut b = Metrics::new();
        b.insert("m", metric(&[(1, 2.0)], 0.0, 1.0));
        b.insert("n", metric(&[], 0.0, 1.0));
        let m = merge_metrics(a.clone(), b.clone());
        assert_eq!(values(m.get("m").unwrap()), [2.0]);
        let m = merge_metrics(b, a);
        assert_eq!(values(m.get("m").unwrap()), [2.0]);
        let mut c = Metrics::new();
        c.insert("m", metric(&[(1, 3.0)], 0.0, 1.0));
        let mut d = Metrics::new();
        d.insert("m", metric(&[(1, 4.0)], 0.0, 1.0));
        assert_eq!(values(merge_metrics(c, d).get("m").unwrap()), [3.0]);
    }

    fn md(priority: f64, label: &'static str) -> MetadataTemplate<'static> {
        MetadataTemplate {
            priority,
            label: label.into(),
            ..MetadataTemplate::default()
        }
    }

    // spec §6.1.5: higher priority wins; a tie keeps the bigger map's (receiver's on equal
    // sizes) entry.
    #[test]
    fn metadata_and_metric_templates() {
        let mut a = MetadataTemplates::new();
        a.insert("k", md(1.0, "a"));
        let mut b = MetadataTemplates::new();
        b.insert("k", md(1.0, "b"));
        assert_eq!(
            merge_metadata_templates(a.clone(), b.clone())
                .get("k")
                .unwrap()
                .label,
            "a"
        );
        b.insert("k", md(2.0, "b"));
        assert_eq!(
            merge_metadata_templates(a.clone(), b.clone())
                .get("k")
                .unwrap()
                .label,
            "b"
        );
        // Bigger argument becomes the base: its tie wins.
        let mut big = MetadataTemplates::new();
        big.insert("k", md(1.0, "big"));
        big.insert("z", md(0.0, "z"));
        assert_eq!(
            merge_metadata_templates(a, big).get("k").unwrap().label,
            "big"
        );

        let mt = |p: f64, l: &'static str| MetricTemplate {
            priority: p,
            label: l.into(),
            ..MetricTemplate::default()
        };
        let mut a = MetricTemplates::new();
        a.insert("k", mt(3.0, "a"));
        let mut b = MetricTemplates::new();
        b.insert("k", mt(2.0, "b"));
        assert_eq!(merge_metric_templates(a, b).get("k").unwrap().label, "a");
    }

    // spec §6.1.5: TableTemplate.Merge field by field; small[k].Merge(big[k]).
    #[test]
    fn table_templates() {
        use crate::report::model::Column;
        let col = |id: &'static str| Column {
            id: id.into(),
            ..Column::default()
        };
        let small = TableTemplate {
            id: "b".into(),
            label: "A".into(),
            prefix: "p".into(),
            kind: "".into(),
            columns: vec![col("s1"), col("s2")],
            fixed_rows: SortedMap::new(),
        };
        let mut rows = SortedMap::new();
        rows.insert("r", Cow::Borrowed("R"));
        let big_t = TableTemplate {
            id: "a".into(),
            label: "B".into(),
            prefix: "".into(),
            kind: "multicolumn-table".into(),
            columns: vec![col("b1"), col("b2")],
            fixed_rows: rows,
        };
        let mut a = TableTemplates::new();
        a.insert("t", small);
        let mut b = TableTemplates::new();
        b.insert("t", big_t);
        b.insert("u", TableTemplate::default());
        let m = merge_table_templates(a, b);
        let tt = m.get("t").unwrap();
        assert_eq!(
            (&*tt.id, &*tt.label, &*tt.prefix, &*tt.kind),
            ("b", "B", "p", "multicolumn-table")
        );
        // Equal column counts: t's (the smaller map's) columns.
        assert_eq!(tt.columns[0].id, "s1");
        assert_eq!(tt.fixed_rows.len(), 1);
    }

    fn ctl(human: &'static str) -> Control<'static> {
        Control {
            human: human.into(),
            ..Control::default()
        }
    }

    // spec §6.1.6: smaller-overwrites: the smaller side wins a clash, the argument on equal
    // sizes.
    #[test]
    fn controls_smaller_overwrites() {
        let mut a = Controls::new();
        a.insert("c", ctl("a"));
        let mut b = Controls::new();
        b.insert("c", ctl("b"));
        assert_eq!(
            merge_controls(a.clone(), b.clone()).get("c").unwrap().human,
            "b"
        );
        a.insert("d", ctl("a"));
        assert_eq!(
            merge_controls(a.clone(), b.clone()).get("c").unwrap().human,
            "b"
        );
        assert_eq!(merge_controls(b, a).get("c").unwrap().human, "b");
    }

    // spec §6.1.7: plugin specs by id, smaller overwrites.
    #[test]
    fn plugins_smaller_overwrites() {
        let spec = |id: &'static str, label: &'static str| PluginSpec {
            id: id.into(),
            label: label.into(),
            ..PluginSpec::default()
        };
        let mut acc = PluginSpecs::new();
        acc.insert(spec("a", "old"));
        acc.insert(spec("b", "b"));
        let mut one = PluginSpecs::new();
        one.insert(spec("a", "new"));
        let m = merge_plugins(acc.clone(), one.clone());
        assert_eq!(m.get("a").unwrap().label, "new");
        assert_eq!(merge_plugins(one, acc).get("a").unwrap().label, "new");
    }

    // spec §6.1.8, §9.17, fixed: a real union, no names dropped.
    #[test]
    fn dns_real_union() {
        let rec = |f: &[&'static str]| DnsRecord {
            forward: set(f),
            reverse: StringSet::new(),
        };
        let mut big = DnsRecords::new();
        big.insert("1.1.1.1", rec(&["a"]));
        big.insert("2.2.2.2", rec(&["z"]));
        let mut small = DnsRecords::new();
        small.insert("1.1.1.1", rec(&["a", "b"]));
        for m in [merge_dns(big.clone(), small.clone()), merge_dns(small, big)] {
            assert_eq!(
                m.get("1.1.1.1").unwrap().forward.iter().collect::<Vec<_>>(),
                ["a", "b"]
            );
            assert_eq!(m.len(), 2);
        }
    }

    // spec §6.2, §9.16: TS earliest non-zero; Window, Sampling summed; Shortcut, ID and the
    // legacy nodes field kept from the receiver.
    #[test]
    fn report_fields() {
        let mut r = Report::make();
        r.window_ns = 5;
        r.sampling.count = 1;
        r.id = "mine".into();
        let mut o = Report::make();
        o.ts = t(10);
        o.window_ns = 7;
        o.sampling.count = 2;
        o.sampling.total = 3;
        o.shortcut = true;
        o.id = "theirs".into();
        o.bug_dns.insert("1.1.1.1", DnsRecord::default());
        r.merge(o);
        assert_eq!(r.ts, t(10));
        assert_eq!(
            (r.window_ns, r.sampling.count, r.sampling.total),
            (12, 3, 3)
        );
        assert!(!r.shortcut);
        assert_eq!(r.id, "mine");
        assert!(r.bug_dns.is_empty());
        // An older plugin TS pulls the report back; a zero one is ignored.
        let mut o = Report::make();
        o.ts = t(3);
        r.merge(o);
        assert_eq!(r.ts, t(3));
        r.merge(Report::make());
        assert_eq!(r.ts, t(3));
        let mut o = Report::make();
        o.ts = t(9);
        r.merge(o);
        assert_eq!(r.ts, t(3));
        // Sums wrap instead of panicking.
        let mut o = Report::make();
        o.window_ns = i64::MAX;
        r.merge(o);
    }

    // spec §6.3: shape/tag fill when empty; label and label_plural move as a pair.
    #[test]
    fn topology_labels() {
        let mut a = Topology {
            label_plural: "keep?".into(),
            ..Topology::default()
        };
        let b = Topology {
            shape: "circle".into(),
            tag: "camera".into(),
            label: "l".into(),
            ..Topology::default()
        };
        a.merge(b);
        assert_eq!(
            (&*a.shape, &*a.tag, &*a.label, &*a.label_plural),
            ("circle", "camera", "l", "")
        );
        let mut a = Topology {
            shape: "square".into(),
            label: "mine".into(),
            ..Topology::default()
        };
        a.merge(Topology {
            shape: "circle".into(),
            label: "theirs".into(),
            label_plural: "theirs".into(),
            ..Topology::default()
        });
        assert_eq!(
            (&*a.shape, &*a.label, &*a.label_plural),
            ("square", "mine", "")
        );
    }

    // spec §6.3: on a clash the incoming node is the receiver: incoming.Merge(existing).
    #[test]
    fn nodes_incoming_is_receiver() {
        let mut mine = Topology::default();
        let mut n = Node::new("n");
        n.latest = latest(&[("a", 1, "existing")]);
        mine.nodes.insert("n", n);
        mine.nodes.insert("only-mine", Node::new("only-mine"));
        let mut theirs = Topology::default();
        let mut n = Node::new("n");
        n.latest = latest(&[("a", 1, "incoming")]);
        theirs.nodes.insert("n", n);
        theirs.nodes.insert("only-theirs", Node::new("only-theirs"));
        mine.merge(theirs);
        assert_eq!(mine.nodes.len(), 3);
        // Equal sizes, equal first timestamps: the receiver (incoming) wins the tie.
        assert_eq!(value(&mine.nodes.get("n").unwrap().latest, "a"), "incoming");
    }

    // spec §6.4, §9.8: id and topology fill; a conflict keeps the receiver's and never
    // panics; children merge smaller-overwrites.
    #[test]
    fn node_merge_fields() {
        let mut a = Node::new("");
        a.topology = "Host".into();
        a.adjacency = set(&["x"]);
        a.children.insert(Node::new("c"));
        let mut b = Node::new("id");
        b.topology = "host".into();
        b.adjacency = set(&["y"]);
        let mut child = Node::new("c");
        child.topology = "from-b".into();
        b.children.insert(child);
        let m = a.merge(b);
        assert_eq!((&*m.id, &*m.topology), ("id", "Host"));
        assert_eq!(m.adjacency.iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(m.children.get("c").unwrap().topology, "from-b");
        let mut e = Node::new("");
        e.topology = "".into();
        let mut f = Node::new("");
        f.topology = "pod".into();
        assert_eq!(e.merge(f).topology, "pod");
    }

    // spec §6.5, §9.11, fixed: Host nodes always keep the active_controls union, stamped with
    // the newer time, whatever the map sizes.
    #[test]
    fn host_active_controls_union() {
        let host = |entries: &[(&'static str, u32, &'static str)]| {
            let mut n = Node::new("h;<host>");
            n.topology = "host".into();
            n.latest = latest(entries);
            n
        };
        let probe = host(&[
            ("active_controls", 5, "host_exec"),
            ("b", 1, ""),
            ("c", 1, ""),
        ]);
        let plugin = host(&[("active_controls", 5, "p~c;host_exec")]);
        for m in [
            probe.clone().merge(plugin.clone()),
            plugin.clone().merge(probe.clone()),
        ] {
            let ac = m.latest.get("active_controls").unwrap();
            assert!(
                ac.value == "host_exec;p~c" || ac.value == "p~c;host_exec",
                "{}",
                ac.value
            );
            assert_eq!(ac.timestamp, t(5));
        }
        let newer = host(&[("active_controls", 9, "x")]);
        let m = probe.clone().merge(newer);
        let ac = m.latest.get("active_controls").unwrap();
        assert_eq!((ac.value.as_ref(), ac.timestamp), ("host_exec;x", t(9)));
        // Absent on one side: the normal latest merge.
        let m = probe.clone().merge(host(&[("z", 1, "")]));
        assert_eq!(value(&m.latest, "active_controls"), "host_exec");
        // Not a host node: no union, the newer string wins.
        let mut c1 = probe.clone();
        c1.topology = "container".into();
        let mut c2 = host(&[("active_controls", 9, "x")]);
        c2.topology = "container".into();
        assert_eq!(value(&c1.merge(c2).latest, "active_controls"), "x");
    }

    // Merging moves strings: a decoded report's borrowed strings stay borrowed.
    #[test]
    fn merge_keeps_strings_borrowed() {
        let body = r#"{"Host":{"nodes":{"a":{"id":"a","latest":{"k":{"timestamp":"2023-06-01T00:00:00Z","value":"v"}}}}}}"#;
        let body2 = r#"{"Host":{"nodes":{"a":{"id":"a","latest":{"k":{"timestamp":"2023-06-01T00:00:01Z","value":"w"}}}}}}"#;
        let mut acc = Report::make();
        acc.merge(crate::report::decode_plugin_report(body.as_bytes(), Time::ZERO).unwrap());
        acc.merge(crate::report::decode_plugin_report(body2.as_bytes(), Time::ZERO).unwrap());
        let n = acc.topology(K::Host).nodes.get("a").unwrap();
        assert!(matches!(
            n.latest.get("k").unwrap().value,
            Cow::Borrowed("w")
        ));
        assert!(matches!(n.id, Cow::Borrowed("a")));
    }
}

#[cfg(test)]
mod wrapper_tests {
    use super::*;
    use crate::report::Time;
    use crate::report::model::PluginSpec;

    // The public in-place wrappers apply the same rules as the building blocks.
    #[test]
    fn in_place_merges() {
        let t = Time::from_unix_nanos;
        let mut a = LatestMap::new();
        a.insert("k", t(1), "old");
        let mut b = LatestMap::new();
        b.insert("k", t(2), "new");
        a.merge(b);
        assert_eq!(a.get("k").unwrap().value, "new");

        let mut s = StringSet::from_unsorted(vec!["b".into()]);
        s.merge(StringSet::from_unsorted(vec!["a".into()]));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "b"]);

        let mut m = Metric::default();
        m.merge(Metric {
            min: 1.0.into(),
            ..Metric::default()
        });
        assert_eq!(m.min, 1.0);

        let mut p = PluginSpecs::new();
        p.insert(PluginSpec {
            id: "x".into(),
            label: "1".into(),
            ..PluginSpec::default()
        });
        let mut q = PluginSpecs::new();
        q.insert(PluginSpec {
            id: "x".into(),
            label: "2".into(),
            ..PluginSpec::default()
        });
        p.merge(q);
        assert_eq!(p.get("x").unwrap().label, "2");
    }
}
