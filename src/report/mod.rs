//! Scope's report model: decoded without copying strings, merged with Scope's exact rules and
//! encoded back (spec `report-format.md` §1–§6, §7.6, §7.9, §8).
//!
//! Owns: the [`Report`] type and everything in it, JSON decoding ([`decode_plugin_report`],
//! [`decode_shortcut_report`]), merging ([`Report::merge`]), encoding ([`encode`]), the plugin
//! host's control rewriting ([`rewrite_controls`]) and the probe taggers ([`Report::tag`]).
//! Does not own: I/O, clocks (every function that stamps takes `now`), plugin validation or
//! control registration.
//!
//! Design: strings are [`Str`] borrowed from the body being decoded (only JSON escapes force a
//! copy); maps are key-sorted `Vec`s ([`SortedMap`]), so lookups are binary searches, merges
//! are merge-joins that move values without cloning strings, and encoding is deterministic.
//! Metric sample values and bounds, which mostly pass through, keep their JSON number text
//! ([`Number`]).
//!
//! Decoding has two paths with one meaning: a strict hand-written scanner (`fast.rs`) takes
//! the common, well-formed documents; anything it does not fully understand, errors
//! included, goes to the serde decoder (`decode.rs`), which is the reference and names the
//! fault. Property tests hold the two to the same results.
//!
//! Where Scope's Go code is random, panics or loses data, this module uses a documented
//! deterministic rule instead: legacy `latestControls` join in sorted order (§4.3), DNS
//! records merge as a real union (§6.1.8), Host nodes always keep the `active_controls`
//! union (§6.5), a node topology conflict keeps the receiver's value (§6.4), and a malformed
//! part anywhere rejects the whole document (§1.8).

use std::borrow::Cow;

mod arena;
mod controls;
mod decode;
mod encode;
mod error;
mod fast;
mod merge;
mod model;
mod owned;
pub mod time;

pub use arena::DecodeArena;
pub use controls::rewrite_controls;
pub use decode::{decode_plugin_report, decode_plugin_report_in, decode_shortcut_report};
pub use encode::encode;
pub use error::DecodeError;
pub use model::{
    Column, Control, Controls, DnsRecord, DnsRecords, LatestEntry, LatestMap, MetadataTemplate,
    MetadataTemplates, Metric, MetricTemplate, MetricTemplates, Metrics, Node, NodeSet, Nodes,
    Number, PluginSpec, PluginSpecs, Sample, Samples, Sampling, Sets, SortedMap, StringSet,
    TableTemplate, TableTemplates, Topology,
};
pub use time::Time;

/// Hooks for the property tests that check the fast decoding path against the serde
/// reference decoder. Not part of the API.
#[doc(hidden)]
pub mod testing {
    pub use super::decode::{decode_fast_only, decode_reference};
}

/// A string borrowed from the decoded input, or owned when it had escapes or was built in code.
pub type Str<'a> = Cow<'a, str>;

/// The 23 topologies (spec §2.2), declared in canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants are the wire keys
pub enum TopologyKind {
    Endpoint,
    Process,
    Container,
    ContainerImage,
    Pod,
    Service,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    CronJob,
    Namespace,
    Host,
    Overlay,
    ECSTask,
    ECSService,
    SwarmService,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    VolumeSnapshot,
    VolumeSnapshotData,
    Job,
}

use TopologyKind as K;

/// Go's struct order, which is the order Go writes topologies in (spec §2.2 notes).
pub(crate) const STRUCT_ORDER: [TopologyKind; 23] = [
    K::Endpoint,
    K::Process,
    K::Container,
    K::Pod,
    K::Service,
    K::Deployment,
    K::ReplicaSet,
    K::DaemonSet,
    K::StatefulSet,
    K::CronJob,
    K::Namespace,
    K::ContainerImage,
    K::Host,
    K::ECSTask,
    K::ECSService,
    K::SwarmService,
    K::Overlay,
    K::PersistentVolume,
    K::PersistentVolumeClaim,
    K::StorageClass,
    K::VolumeSnapshot,
    K::VolumeSnapshotData,
    K::Job,
];

impl TopologyKind {
    /// Every topology in canonical order (`topologyNames`, spec §2.2): the order Scope merges
    /// and tags them in.
    pub const ALL: [TopologyKind; 23] = [
        K::Endpoint,
        K::Process,
        K::Container,
        K::ContainerImage,
        K::Pod,
        K::Service,
        K::Deployment,
        K::ReplicaSet,
        K::DaemonSet,
        K::StatefulSet,
        K::CronJob,
        K::Namespace,
        K::Host,
        K::Overlay,
        K::ECSTask,
        K::ECSService,
        K::SwarmService,
        K::PersistentVolume,
        K::PersistentVolumeClaim,
        K::StorageClass,
        K::VolumeSnapshot,
        K::VolumeSnapshotData,
        K::Job,
    ];

    /// The report's JSON key (the Go field name), e.g. `ContainerImage`.
    pub fn wire_key(self) -> &'static str {
        match self {
            K::Endpoint => "Endpoint",
            K::Process => "Process",
            K::Container => "Container",
            K::ContainerImage => "ContainerImage",
            K::Pod => "Pod",
            K::Service => "Service",
            K::Deployment => "Deployment",
            K::ReplicaSet => "ReplicaSet",
            K::DaemonSet => "DaemonSet",
            K::StatefulSet => "StatefulSet",
            K::CronJob => "CronJob",
            K::Namespace => "Namespace",
            K::Host => "Host",
            K::Overlay => "Overlay",
            K::ECSTask => "ECSTask",
            K::ECSService => "ECSService",
            K::SwarmService => "SwarmService",
            K::PersistentVolume => "PersistentVolume",
            K::PersistentVolumeClaim => "PersistentVolumeClaim",
            K::StorageClass => "StorageClass",
            K::VolumeSnapshot => "VolumeSnapshot",
            K::VolumeSnapshotData => "VolumeSnapshotData",
            K::Job => "Job",
        }
    }

    /// The internal name used in `Node.topology` and `parents` keys, e.g. `container_image`.
    pub fn internal_name(self) -> &'static str {
        match self {
            K::Endpoint => "endpoint",
            K::Process => "process",
            K::Container => "container",
            K::ContainerImage => "container_image",
            K::Pod => "pod",
            K::Service => "service",
            K::Deployment => "deployment",
            K::ReplicaSet => "replica_set",
            K::DaemonSet => "daemon_set",
            K::StatefulSet => "stateful_set",
            K::CronJob => "cron_job",
            K::Namespace => "namespace",
            K::Host => "host",
            K::Overlay => "overlay",
            K::ECSTask => "ecs_task",
            K::ECSService => "ecs_service",
            K::SwarmService => "swarm_service",
            K::PersistentVolume => "persistent_volume",
            K::PersistentVolumeClaim => "persistent_volume_claim",
            K::StorageClass => "storage_class",
            K::VolumeSnapshot => "volume_snapshot",
            K::VolumeSnapshotData => "volume_snapshot_data",
            K::Job => "job",
        }
    }

    /// The topology whose wire key is exactly `key` (case-sensitive, spec §1.2).
    pub fn from_wire_key(key: &str) -> Option<TopologyKind> {
        Some(match key {
            "Endpoint" => K::Endpoint,
            "Process" => K::Process,
            "Container" => K::Container,
            "ContainerImage" => K::ContainerImage,
            "Pod" => K::Pod,
            "Service" => K::Service,
            "Deployment" => K::Deployment,
            "ReplicaSet" => K::ReplicaSet,
            "DaemonSet" => K::DaemonSet,
            "StatefulSet" => K::StatefulSet,
            "CronJob" => K::CronJob,
            "Namespace" => K::Namespace,
            "Host" => K::Host,
            "Overlay" => K::Overlay,
            "ECSTask" => K::ECSTask,
            "ECSService" => K::ECSService,
            "SwarmService" => K::SwarmService,
            "PersistentVolume" => K::PersistentVolume,
            "PersistentVolumeClaim" => K::PersistentVolumeClaim,
            "StorageClass" => K::StorageClass,
            "VolumeSnapshot" => K::VolumeSnapshot,
            "VolumeSnapshotData" => K::VolumeSnapshotData,
            "Job" => K::Job,
            _ => return None,
        })
    }

    /// `MakeReport`'s shape, tag, label and plural label (spec §2.2).
    fn defaults(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            K::Endpoint | K::Namespace => ("", "", "", ""),
            K::Process => ("square", "", "process", "processes"),
            K::Container => ("hexagon", "", "container", "containers"),
            K::ContainerImage => ("hexagon", "", "image", "images"),
            K::Pod => ("heptagon", "", "pod", "pods"),
            K::Service => ("heptagon", "", "service", "services"),
            K::Deployment => ("heptagon", "", "deployment", "deployments"),
            K::ReplicaSet => ("triangle", "", "replica set", "replica sets"),
            K::DaemonSet => ("pentagon", "", "daemonset", "daemonsets"),
            K::StatefulSet => ("octagon", "", "stateful set", "stateful sets"),
            K::CronJob => ("triangle", "", "cron job", "cron jobs"),
            K::Host => ("circle", "", "host", "hosts"),
            K::Overlay => ("circle", "", "peer", "peers"),
            K::ECSTask => ("heptagon", "", "task", "tasks"),
            K::ECSService => ("heptagon", "", "service", "services"),
            K::SwarmService => ("heptagon", "", "service", "services"),
            K::PersistentVolume => ("cylinder", "", "persistent volume", "persistent volumes"),
            K::PersistentVolumeClaim => (
                "dottedcylinder",
                "",
                "persistent volume claim",
                "persistent volume claims",
            ),
            K::StorageClass => ("sheet", "", "storage class", "storage classes"),
            K::VolumeSnapshot => (
                "dottedcylinder",
                "camera",
                "volume snapshot",
                "volume snapshots",
            ),
            K::VolumeSnapshotData => (
                "cylinder",
                "camera",
                "volume snapshot data",
                "volume snapshot data",
            ),
            K::Job => ("dottedtriangle", "", "job", "jobs"),
        }
    }
}

/// A whole report (spec §2).
#[derive(Clone, Debug, PartialEq)]
pub struct Report<'a> {
    /// `TS`: when the report was generated.
    pub ts: Time,
    /// Indexed by `TopologyKind as usize` (canonical order).
    topologies: [Topology<'a>; 23],
    /// `DNS`: IP → names.
    pub dns: DnsRecords<'a>,
    /// `nodes`: legacy DNS records under the wrong key (`BugDNS`); decoded and written, never
    /// merged (spec §2.1).
    pub bug_dns: DnsRecords<'a>,
    /// `Sampling`.
    pub sampling: Sampling,
    /// `Window` in nanoseconds.
    pub window_ns: i64,
    /// `Shortcut`: publish right away.
    pub shortcut: bool,
    /// `Plugins`.
    pub plugins: PluginSpecs<'a>,
    /// `ID`.
    pub id: Str<'a>,
}

impl<'a> Report<'a> {
    /// Go's `MakeReport()` (spec §2.2): default shapes, tags and labels, everything else empty.
    /// The ID is left empty (Go's is random and never merged).
    pub fn make() -> Report<'a> {
        let mut r = Report::empty();
        for k in TopologyKind::ALL {
            let (shape, tag, label, plural) = k.defaults();
            let t = r.topology_mut(k);
            t.shape = Cow::Borrowed(shape);
            t.tag = Cow::Borrowed(tag);
            t.label = Cow::Borrowed(label);
            t.label_plural = Cow::Borrowed(plural);
        }
        r
    }

    /// The zero `Report` (what shortcut reports are decoded over, spec §7.9): no defaults.
    pub fn empty() -> Report<'a> {
        Report {
            ts: Time::ZERO,
            topologies: std::array::from_fn(|_| Topology::default()),
            dns: DnsRecords::new(),
            bug_dns: DnsRecords::new(),
            sampling: Sampling::default(),
            window_ns: 0,
            shortcut: false,
            plugins: PluginSpecs::new(),
            id: Cow::Borrowed(""),
        }
    }

    /// One topology.
    pub fn topology(&self, k: TopologyKind) -> &Topology<'a> {
        &self.topologies[k as usize]
    }

    /// One topology, mutable.
    pub fn topology_mut(&mut self, k: TopologyKind) -> &mut Topology<'a> {
        &mut self.topologies[k as usize]
    }

    /// All topologies with their kinds, in canonical order.
    pub fn topologies(&self) -> impl ExactSizeIterator<Item = (TopologyKind, &Topology<'a>)> {
        TopologyKind::ALL.into_iter().zip(self.topologies.iter())
    }

    /// All topologies with their kinds, mutable, in canonical order.
    pub fn topologies_mut(
        &mut self,
    ) -> impl ExactSizeIterator<Item = (TopologyKind, &mut Topology<'a>)> {
        TopologyKind::ALL
            .into_iter()
            .zip(self.topologies.iter_mut())
    }

    /// `-probe.no-controls` (spec §8): clears every topology's `controls`.
    pub fn strip_controls(&mut self) {
        for t in &mut self.topologies {
            t.controls.clear();
        }
    }

    /// The probe's taggers (spec §8, app-protocol §3): every node's `topology` becomes its
    /// topology's internal name; Process, Container, ContainerImage and Host nodes get
    /// `latest.host_node_id = host_node_id` stamped `now` and `host_node_id` added to
    /// `parents.host`. Only top-level nodes are tagged, like Go.
    pub fn tag(&mut self, host_node_id: &str, now: Time) {
        for (kind, t) in self.topologies_mut() {
            let host_tagged = matches!(
                kind,
                K::Process | K::Container | K::ContainerImage | K::Host
            );
            for (_, node) in t.nodes.iter_mut() {
                if node.topology != kind.internal_name() {
                    node.topology = Cow::Borrowed(kind.internal_name());
                }
                if host_tagged {
                    node.latest
                        .insert("host_node_id", now, host_node_id.to_owned());
                    if let Some(parents) = node.parents.slot(Cow::Borrowed("host"))
                        && !parents.contains(host_node_id)
                    {
                        parents.insert(host_node_id.to_owned());
                    }
                }
            }
        }
    }

    /// Copies every borrowed string (sample values kept as text become their floats) so the
    /// report outlives its input.
    pub fn into_owned(self) -> Report<'static> {
        owned::report(self)
    }
}

impl Default for Report<'_> {
    fn default() -> Self {
        Report::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec §2.2: canonical order, wire keys and internal names.
    #[test]
    fn topology_kinds_round_trip() {
        for (i, k) in TopologyKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(TopologyKind::from_wire_key(k.wire_key()), Some(k));
        }
        assert_eq!(TopologyKind::from_wire_key("host"), None);
        assert_eq!(K::DaemonSet.internal_name(), "daemon_set");
        let mut struct_sorted = STRUCT_ORDER;
        struct_sorted.sort();
        assert_eq!(struct_sorted, TopologyKind::ALL);
    }

    // spec §2.2: MakeReport defaults.
    #[test]
    fn make_sets_defaults() {
        let r = Report::make();
        assert_eq!(r.topology(K::Host).shape, "circle");
        assert_eq!(r.topology(K::Host).label_plural, "hosts");
        assert_eq!(r.topology(K::VolumeSnapshot).tag, "camera");
        assert_eq!(r.topology(K::Endpoint), &Topology::default());
        assert_eq!(r.id, "");
        assert!(
            Report::empty()
                .topologies()
                .all(|(_, t)| t == &Topology::default())
        );
    }

    // spec §8: taggers.
    #[test]
    fn tag_sets_topology_and_host() {
        let mut r = Report::make();
        let now = Time::parse("2023-06-01T00:00:00Z").unwrap();
        r.topology_mut(K::Host)
            .nodes
            .insert("h;<host>", Node::new("h;<host>"));
        r.topology_mut(K::Pod)
            .nodes
            .insert("p;<pod>", Node::new("p;<pod>"));
        r.tag("h;<host>", now);
        let h = r.topology(K::Host).nodes.get("h;<host>").unwrap();
        assert_eq!(h.topology, "host");
        assert_eq!(h.latest.get("host_node_id").unwrap().value, "h;<host>");
        assert_eq!(h.latest.get("host_node_id").unwrap().timestamp, now);
        assert!(h.parents.get("host").unwrap().contains("h;<host>"));
        let p = r.topology(K::Pod).nodes.get("p;<pod>").unwrap();
        assert_eq!(p.topology, "pod");
        assert!(p.latest.is_empty());
        assert!(p.parents.is_empty());
    }

    #[test]
    fn strip_controls_clears_all() {
        let mut r = Report::make();
        r.topology_mut(K::Container)
            .controls
            .insert("c", Control::default());
        r.strip_controls();
        assert!(r.topologies().all(|(_, t)| t.controls.is_empty()));
    }
}
