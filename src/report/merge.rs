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
    Controls, DnsRecord, DnsRecords, LatestEntry, LatestMap, MetadataTemplates, Metric,
    MetricTemplates, Metrics, Node, NodeSet, Nodes, PluginSpecs, Sets, SortedMap, StringSet,
    TableTemplate, TableTemplates, Topology,
};
use super::{Report, Str};

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
    SortedMap::from_sorted(merge_join(
        mine.into_entries(),
        theirs.into_entries(),
        |(k, _)| k,
        |(key, existing), (_, incoming)| (key, incoming.merge_with(existing, cx)),
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
    let entries = merge_join(
        a.map.into_entries(),
        b.map.into_entries(),
        |(k, _)| k,
        |ea, eb| {
            if ea.1.timestamp < eb.1.timestamp {
                eb
            } else {
                ea
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
    StringSet::from_sorted(merge_join(a.into_items(), b.into_items(), |s| s, |x, _| x))
}

/// Sets merge (§6.1.3): every key of both; shared keys get the union; empty sets are kept.
pub(crate) fn merge_sets<'a>(a: Sets<'a>, b: Sets<'a>) -> Sets<'a> {
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
pub(crate) fn merge_metric(m: Metric, o: Metric) -> Metric {
    if m.samples.is_empty() {
        return o;
    }
    if o.samples.is_empty() {
        return m;
    }
    let (min, max) = (m.min.min(o.min), m.max.max(o.max));
    let (m_first, m_last) = (m.samples[0].date, m.samples[m.samples.len() - 1].date);
    let (o_first, o_last) = (o.samples[0].date, o.samples[o.samples.len() - 1].date);
    let samples = if o_first > m_last {
        let mut s = m.samples;
        s.extend(o.samples);
        s
    } else if m_first > o_last {
        let mut s = o.samples;
        s.extend(m.samples);
        s
    } else {
        let mut s = Vec::with_capacity(m.samples.len() + o.samples.len());
        let mut mi = m.samples.into_iter().peekable();
        let mut oi = o.samples.into_iter().peekable();
        loop {
            let ord = match (mi.peek(), oi.peek()) {
                (Some(x), Some(y)) => x.date.cmp(&y.date),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            match ord {
                Ordering::Less => s.extend(mi.next()),
                Ordering::Greater => s.extend(oi.next()),
                Ordering::Equal => {
                    s.extend(mi.next());
                    oi.next();
                }
            }
        }
        s
    };
    Metric { samples, min, max }
}

/// The smaller-overwrites pattern (§6 intro) for maps keyed by the map key: an empty side
/// returns the other; on a clash the smaller side's entry wins, the argument's when sizes
/// are equal.
pub(crate) fn smaller_overwrites<'a, V>(
    a: SortedMap<'a, V>,
    b: SortedMap<'a, V>,
) -> SortedMap<'a, V> {
    let b_wins = b.len() <= a.len();
    SortedMap::from_sorted(merge_join(
        a.into_entries(),
        b.into_entries(),
        |(k, _)| k,
        |x, y| if b_wins { y } else { x },
    ))
}

/// Controls merge (§6.1.6).
pub(crate) fn merge_controls<'a>(a: Controls<'a>, b: Controls<'a>) -> Controls<'a> {
    smaller_overwrites(a, b)
}

/// PluginSpecs merge (§6.1.7): smaller-overwrites keyed by id.
pub(crate) fn merge_plugins<'a>(a: PluginSpecs<'a>, b: PluginSpecs<'a>) -> PluginSpecs<'a> {
    let b_wins = b.len() <= a.len();
    PluginSpecs {
        specs: merge_join(
            a.specs,
            b.specs,
            |s| &s.id,
            |x, y| if b_wins { y } else { x },
        ),
    }
}

/// NodeSet merge for `children` (§6.4 step 4): smaller-overwrites keyed by id.
fn merge_children<'a>(a: NodeSet<'a>, b: NodeSet<'a>) -> NodeSet<'a> {
    let b_wins = b.len() <= a.len();
    NodeSet {
        nodes: merge_join(
            a.nodes,
            b.nodes,
            |n| &n.id,
            |x, y| if b_wins { y } else { x },
        ),
    }
}

/// Metadata templates (§6.1.5): the bigger side is the base (the receiver on equal sizes);
/// a smaller side's entry replaces only on a strictly higher priority.
pub(crate) fn merge_metadata_templates<'a>(
    a: MetadataTemplates<'a>,
    b: MetadataTemplates<'a>,
) -> MetadataTemplates<'a> {
    let (big, small) = if b.len() > a.len() { (b, a) } else { (a, b) };
    SortedMap::from_sorted(merge_join(
        big.into_entries(),
        small.into_entries(),
        |(k, _)| k,
        |x, y| if y.1.priority > x.1.priority { y } else { x },
    ))
}

/// Metric templates (§6.1.5): same rule as metadata templates.
pub(crate) fn merge_metric_templates<'a>(
    a: MetricTemplates<'a>,
    b: MetricTemplates<'a>,
) -> MetricTemplates<'a> {
    let (big, small) = if b.len() > a.len() { (b, a) } else { (a, b) };
    SortedMap::from_sorted(merge_join(
        big.into_entries(),
        small.into_entries(),
        |(k, _)| k,
        |x, y| if y.1.priority > x.1.priority { y } else { x },
    ))
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

/// Merge-join of two key-sorted, key-unique vectors: entries of one side move over as they
/// are; on equal keys `both(a_item, b_item)` decides. An empty side returns the other without
/// copying.
fn merge_join<T, K: AsRef<str> + ?Sized>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> &K,
    mut both: impl FnMut(T, T) -> T,
) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
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
                if let (Some(x), Some(y)) = (ai.next(), bi.next()) {
                    out.push(both(x, y));
                }
            }
        }
    }
    out
}
