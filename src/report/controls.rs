//! The plugin host's control-ID rewriting for controller plugins (spec §7.6).
//!
//! Owns `updateAndRegisterControlsInReport`'s changes to the report. Does not own handler
//! registration: the caller gets the original control keys and registers `pluginID~key`.

use std::borrow::Cow;

use super::Report;
use super::model::{Control, Controls, SortedMap};
use super::time::Time;

/// Rewrites a controller plugin's report in place (spec §7.6) and returns the original control
/// keys of all topologies, sorted and de-duplicated.
///
/// For every topology:
/// 1. every control is re-keyed `"<plugin_id>~<key>"`, and its `id` set to the same;
/// 2. every node's `id` becomes its map key, and its `active_controls` is split on `;`: each
///    element that is a key of this topology's original controls gets the `<plugin_id>~`
///    prefix, others are kept verbatim (including `""`); the result is written again stamped
///    `now`, also for nodes that had none (they get `""`).
pub fn rewrite_controls(report: &mut Report<'_>, plugin_id: &str, now: Time) -> Vec<String> {
    let mut originals: Vec<String> = Vec::new();
    for (_, topology) in report.topologies_mut() {
        let controls = std::mem::take(&mut topology.controls);
        // The prefix is the same for every key, so key order is kept.
        let rewritten: Controls<'_> = SortedMap::from_sorted(
            controls
                .iter()
                .map(|(key, c)| {
                    let fake = format!("{plugin_id}~{key}");
                    let control = Control {
                        id: Cow::Owned(fake.clone()),
                        ..c.clone()
                    };
                    (Cow::Owned(fake), control)
                })
                .collect(),
        );
        for (key, node) in topology.nodes.iter_mut() {
            if node.id != *key {
                node.id = key.clone();
            }
            let old = node
                .latest
                .get("active_controls")
                .map(|e| e.value.as_ref())
                .unwrap_or("");
            let mut value = String::with_capacity(old.len());
            for (i, element) in old.split(';').enumerate() {
                if i > 0 {
                    value.push(';');
                }
                if controls.contains_key(element) {
                    value.push_str(plugin_id);
                    value.push('~');
                }
                value.push_str(element);
            }
            node.latest.insert("active_controls", now, value);
        }
        originals.extend(controls.keys().map(str::to_owned));
        topology.controls = rewritten;
    }
    originals.sort_unstable();
    originals.dedup();
    originals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Node, TopologyKind as K};

    fn now() -> Time {
        Time::parse("2099-01-01T00:00:00Z").unwrap()
    }

    // spec §7.6 step 1 and 3: every control re-keyed, id replaced, keys returned.
    #[test]
    fn controls_rekeyed_and_listed() {
        let mut r = Report::make();
        let host = r.topology_mut(K::Host);
        host.controls.insert(
            "reboot",
            Control {
                id: "something-else".into(),
                human: "Reboot".into(),
                rank: 1,
                ..Control::default()
            },
        );
        r.topology_mut(K::Container)
            .controls
            .insert("reboot", Control::default());
        r.topology_mut(K::Container)
            .controls
            .insert("a", Control::default());
        let keys = rewrite_controls(&mut r, "p", now());
        assert_eq!(keys, ["a", "reboot"]);
        let c = r.topology(K::Host).controls.get("p~reboot").unwrap();
        assert_eq!(c.id, "p~reboot");
        assert_eq!(c.human, "Reboot");
        assert_eq!(c.rank, 1);
        assert!(r.topology(K::Host).controls.get("reboot").is_none());
    }

    // spec §7.6 step 2 and §9.10/§9.13: ids corrected, active_controls rewritten and
    // re-stamped now, "" for nodes without one; other topologies' controls kept verbatim.
    #[test]
    fn nodes_rewritten() {
        let mut r = Report::make();
        let old = Time::parse("2023-06-01T12:00:00Z").unwrap();
        let host = r.topology_mut(K::Host);
        host.controls.insert("reboot", Control::default());
        let mut n = Node::new("wrong");
        n.latest
            .insert("active_controls", old, "reboot;host_exec;;other");
        host.nodes.insert("vm;<host>", n);
        host.nodes.insert("bare;<host>", Node::default());
        r.topology_mut(K::Container)
            .controls
            .insert("other", Control::default());
        rewrite_controls(&mut r, "ctl", now());
        let host = r.topology(K::Host);
        let n = host.nodes.get("vm;<host>").unwrap();
        assert_eq!(n.id, "vm;<host>");
        let ac = n.latest.get("active_controls").unwrap();
        assert_eq!(ac.value, "ctl~reboot;host_exec;;other");
        assert_eq!(ac.timestamp, now());
        let bare = host.nodes.get("bare;<host>").unwrap();
        assert_eq!(bare.id, "bare;<host>");
        assert_eq!(bare.latest.get("active_controls").unwrap().value, "");
        assert_eq!(bare.latest.get("active_controls").unwrap().timestamp, now());
    }
}
