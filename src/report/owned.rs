//! [`Report::into_owned`](super::Report::into_owned): copies every borrowed string, and turns
//! sample values kept as text into their floats, so a report can outlive the body it was
//! decoded from. Owns nothing else.

use std::borrow::Cow;

use super::model::{
    Column, Control, DnsRecord, LatestEntry, LatestMap, MetadataTemplate, Metric, MetricTemplate,
    Node, NodeSet, PluginSpec, PluginSpecs, Sample, SortedMap, StringSet, TableTemplate, Topology,
};
use super::{Report, Str};

fn s(v: Str<'_>) -> Str<'static> {
    Cow::Owned(v.into_owned())
}

fn keys<V: Clone, W>(m: SortedMap<'_, V>, mut f: impl FnMut(V) -> W) -> SortedMap<'static, W> {
    m.map_entries(|k, v| (s(k), f(v)))
}

fn set(v: StringSet<'_>) -> StringSet<'static> {
    StringSet::from_sorted(v.into_items().into_iter().map(s).collect())
}

pub(crate) fn report(r: Report<'_>) -> Report<'static> {
    let Report {
        ts,
        topologies,
        dns,
        bug_dns,
        sampling,
        window_ns,
        shortcut,
        plugins,
        id,
    } = r;
    Report {
        ts,
        topologies: topologies.map(topology),
        dns: keys(dns, dns_record),
        bug_dns: keys(bug_dns, dns_record),
        sampling,
        window_ns,
        shortcut,
        plugins: PluginSpecs {
            specs: plugins.specs.into_iter().map(plugin_spec).collect(),
        },
        id: s(id),
    }
}

fn dns_record(d: DnsRecord<'_>) -> DnsRecord<'static> {
    DnsRecord {
        forward: set(d.forward),
        reverse: set(d.reverse),
    }
}

fn plugin_spec(p: PluginSpec<'_>) -> PluginSpec<'static> {
    PluginSpec {
        id: s(p.id),
        label: s(p.label),
        description: s(p.description),
        api_version: s(p.api_version),
        status: s(p.status),
        interfaces: p.interfaces.into_iter().map(s).collect(),
    }
}

fn topology(t: Topology<'_>) -> Topology<'static> {
    Topology {
        shape: s(t.shape),
        tag: s(t.tag),
        label: s(t.label),
        label_plural: s(t.label_plural),
        nodes: keys(t.nodes, |n| Box::new(node(*n))),
        controls: keys(t.controls, control),
        metadata_templates: keys(t.metadata_templates, |m| MetadataTemplate {
            id: s(m.id),
            label: s(m.label),
            truncate: m.truncate,
            data_type: s(m.data_type),
            priority: m.priority,
            from: s(m.from),
        }),
        metric_templates: keys(t.metric_templates, |m| MetricTemplate {
            id: s(m.id),
            label: s(m.label),
            format: s(m.format),
            group: s(m.group),
            priority: m.priority,
        }),
        table_templates: keys(t.table_templates, |t| TableTemplate {
            id: s(t.id),
            label: s(t.label),
            prefix: s(t.prefix),
            kind: s(t.kind),
            columns: t
                .columns
                .into_iter()
                .map(|c| Column {
                    id: s(c.id),
                    label: s(c.label),
                    data_type: s(c.data_type),
                })
                .collect(),
            fixed_rows: keys(t.fixed_rows, s),
        }),
    }
}

fn control(c: Control<'_>) -> Control<'static> {
    Control {
        id: s(c.id),
        human: s(c.human),
        icon: s(c.icon),
        confirmation: s(c.confirmation),
        rank: c.rank,
        probe_id: s(c.probe_id),
    }
}

fn metric(m: Metric<'_>) -> Metric<'static> {
    Metric {
        samples: m
            .samples
            .into_vec()
            .into_iter()
            .map(|sample| Sample {
                date: sample.date,
                value: sample.value.into_owned(),
            })
            .collect(),
        min: m.min.into_owned(),
        max: m.max.into_owned(),
    }
}

fn node(n: Node<'_>) -> Node<'static> {
    Node {
        id: s(n.id),
        topology: s(n.topology),
        sets: keys(n.sets, set),
        adjacency: set(n.adjacency),
        latest: LatestMap {
            map: keys(n.latest.map, |e| LatestEntry {
                timestamp: e.timestamp,
                value: s(e.value),
            }),
        },
        metrics: keys(n.metrics, metric),
        parents: keys(n.parents, set),
        children: NodeSet {
            nodes: n.children.nodes.into_iter().map(node).collect(),
        },
    }
}

impl PluginSpec<'_> {
    /// Copies the borrowed strings so the spec can outlive the body it was decoded from.
    pub fn into_owned(self) -> PluginSpec<'static> {
        plugin_spec(self)
    }
}
