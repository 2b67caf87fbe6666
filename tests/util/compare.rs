//! Semantic comparison of report JSON, exactly as `vectors/README.md` §3 says.
//!
//! - Fields of Scope's fixed structs: absent, `null` and the zero value are equal.
//! - Entries of data maps must match key for key; a set value `null` equals `[]`.
//! - `sets`/`parents` values and `adjacency` compare as sorted arrays; `children` is keyed by
//!   `id`; `Plugins` by `id`; samples, interfaces and columns in order.
//! - Timestamps compare as instants; `"<now>"` in the expected side matches the given `now`.
//! - Numbers compare numerically; strings exactly.
//! - Plugin statuses follow `status_match` (`exact` or `prefix:<prefix>`).
//!
//! A failure names the JSON path of the first difference.

use std::collections::BTreeMap;

use scope_probe::report::Time;
use serde_json::{Map, Value};

/// What a comparison needs besides the two documents.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// The instant `"<now>"` stands for (plugin vectors); `None` makes `"<now>"` a mismatch.
    pub now: Option<Time>,
    /// Or the window the implementation read its clock in (a cycle run against the real
    /// clock): `"<now>"` matches any instant within it, bounds included.
    pub now_window: Option<(Time, Time)>,
    /// Plugin id → `exact` or `prefix:<prefix>` (plugin vectors' `status_match`).
    pub status_match: BTreeMap<String, String>,
}

impl CompareOptions {
    /// Options from a plugin vector's `status_match` object.
    pub fn with_status_match(now: Option<Time>, status_match: Option<&Value>) -> Self {
        let mut map = BTreeMap::new();
        if let Some(Value::Object(o)) = status_match {
            for (k, v) in o {
                if let Some(s) = v.as_str() {
                    map.insert(k.clone(), s.to_owned());
                }
            }
        }
        CompareOptions {
            now,
            now_window: None,
            status_match: map,
        }
    }
}

/// Whether `actual` satisfies the status rule (`exact`, `prefix:<p>` or none = exact) against
/// `expected` (vectors/README.md §2 `status_match`).
pub fn status_matches(rule: Option<&str>, expected: &str, actual: &str) -> bool {
    match rule.and_then(|r| r.strip_prefix("prefix:")) {
        Some(prefix) => actual.starts_with(prefix),
        None => expected == actual,
    }
}

/// Compares two whole reports (top-level objects). `Err` names the path of the first
/// difference and both values there.
pub fn compare_report(
    expected: &Value,
    actual: &Value,
    opts: &CompareOptions,
) -> Result<(), String> {
    let cx = Cx { opts };
    report(&cx, Some(expected), Some(actual), "")
}

struct Cx<'o> {
    opts: &'o CompareOptions,
}

type Cmp = fn(&Cx<'_>, Option<&Value>, Option<&Value>, &str) -> Result<(), String>;

fn norm(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "<absent>".to_owned(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 300 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}

fn diff(path: &str, what: &str, e: Option<&Value>, a: Option<&Value>) -> String {
    let path = if path.is_empty() { "<root>" } else { path };
    format!("{path}: {what}: expected {}, got {}", show(e), show(a))
}

fn field_path(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ident {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    } else {
        format!("{path}[{key:?}]")
    }
}

fn as_object<'v>(
    v: Option<&'v Value>,
    path: &str,
    side: &str,
) -> Result<Option<&'v Map<String, Value>>, String> {
    match norm(v) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(format!(
            "{}: {side} is not an object: {}",
            if path.is_empty() { "<root>" } else { path },
            show(Some(other))
        )),
    }
}

/// A fixed struct: known fields by their comparator, absent/null/zero equal; unknown fields
/// must be equal as plain JSON (absent equals null).
fn fixed(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
    fields: &[(&str, Cmp)],
) -> Result<(), String> {
    let empty = Map::new();
    let eo = as_object(e, path, "expected")?.unwrap_or(&empty);
    let ao = as_object(a, path, "actual")?.unwrap_or(&empty);
    for (name, cmp) in fields {
        cmp(cx, eo.get(*name), ao.get(*name), &field_path(path, name))?;
    }
    let known = |k: &str| fields.iter().any(|(n, _)| *n == k);
    for k in eo.keys().chain(ao.keys()) {
        if !known(k) {
            let (ev, av) = (norm(eo.get(k)), norm(ao.get(k)));
            if !json_eq(ev, av) {
                return Err(diff(&field_path(path, k), "unknown field differs", ev, av));
            }
        }
    }
    Ok(())
}

fn json_eq(e: Option<&Value>, a: Option<&Value>) -> bool {
    match (e, a) {
        (None, None) => true,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn string(_: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<String, String> {
        match norm(v) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(diff(path, "not a string", None, Some(other))),
        }
    };
    if get(e)? != get(a)? {
        return Err(diff(path, "strings differ", e, a));
    }
    Ok(())
}

fn number(_: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<f64, String> {
        match norm(v) {
            None => Ok(0.0),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| diff(path, "bad number", None, v)),
            Some(other) => Err(diff(path, "not a number", None, Some(other))),
        }
    };
    if get(e)? != get(a)? {
        return Err(diff(path, "numbers differ", e, a));
    }
    Ok(())
}

fn boolean(_: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<bool, String> {
        match norm(v) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(diff(path, "not a boolean", None, Some(other))),
        }
    };
    if get(e)? != get(a)? {
        return Err(diff(path, "booleans differ", e, a));
    }
    Ok(())
}

/// A timestamp: compared as an instant; absent/null is the zero time; `"<now>"` on the
/// expected side matches `opts.now`.
fn time(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let parse = |v: Option<&Value>, side: &str| -> Result<Time, String> {
        match norm(v) {
            None => Ok(Time::ZERO),
            Some(Value::String(s)) => {
                Time::parse(s).map_err(|err| format!("{path}: {side} time {s:?} invalid: {err}"))
            }
            Some(other) => Err(diff(path, "time is not a string", None, Some(other))),
        }
    };
    let actual = parse(a, "actual")?;
    if let Some(Value::String(s)) = norm(e)
        && s == "<now>"
    {
        if let Some((from, to)) = cx.opts.now_window {
            return if from <= actual && actual <= to {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected <now> in [{from}, {to}], got {}",
                    show(a)
                ))
            };
        }
        return match cx.opts.now {
            Some(now) if now == actual => Ok(()),
            Some(now) => Err(format!("{path}: expected <now> ({now}), got {}", show(a))),
            None => Err(format!("{path}: expected <now> but no now was given")),
        };
    }
    if parse(e, "expected")? != actual {
        return Err(diff(path, "times differ", e, a));
    }
    Ok(())
}

/// A StringSet / IDList: compared sorted; null equals [].
fn set(_: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<Vec<String>, String> {
        match norm(v) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            return Err(diff(path, "set element not a string", None, Some(other)));
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Some(other) => Err(diff(path, "set is not an array", None, Some(other))),
        }
    };
    if get(e)? != get(a)? {
        return Err(diff(path, "sets differ", e, a));
    }
    Ok(())
}

/// A data map: keys must match exactly; values compared by `value`.
fn data_map(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
    value: Cmp,
) -> Result<(), String> {
    let empty = Map::new();
    let eo = as_object(e, path, "expected")?.unwrap_or(&empty);
    let ao = as_object(a, path, "actual")?.unwrap_or(&empty);
    for k in eo.keys() {
        if !ao.contains_key(k) {
            return Err(diff(&field_path(path, k), "key missing", eo.get(k), None));
        }
    }
    for k in ao.keys() {
        if !eo.contains_key(k) {
            return Err(diff(
                &field_path(path, k),
                "unexpected key",
                None,
                ao.get(k),
            ));
        }
    }
    for (k, ev) in eo {
        value(cx, Some(ev), ao.get(k), &field_path(path, k))?;
    }
    Ok(())
}

/// An array compared element by element, in order.
fn ordered(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
    elem: Cmp,
) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<Vec<Value>, String> {
        match norm(v) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(other) => Err(diff(path, "not an array", None, Some(other))),
        }
    };
    let (ev, av) = (get(e)?, get(a)?);
    if ev.len() != av.len() {
        return Err(diff(path, "array lengths differ", e, a));
    }
    for (i, (x, y)) in ev.iter().zip(&av).enumerate() {
        elem(cx, Some(x), Some(y), &format!("{path}[{i}]"))?;
    }
    Ok(())
}

/// An array of objects that is a set keyed by `id`.
fn keyed_by_id(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
    elem: Cmp,
) -> Result<(), String> {
    let get = |v: Option<&Value>| -> Result<BTreeMap<String, Value>, String> {
        let mut out = BTreeMap::new();
        match norm(v) {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let id = item
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    out.insert(id, item.clone());
                }
            }
            Some(other) => return Err(diff(path, "not an array", None, Some(other))),
        }
        Ok(out)
    };
    let (em, am) = (get(e)?, get(a)?);
    let ek: Vec<&String> = em.keys().collect();
    let ak: Vec<&String> = am.keys().collect();
    if ek != ak {
        return Err(format!("{path}: ids differ: expected {ek:?}, got {ak:?}"));
    }
    for (id, ev) in &em {
        elem(cx, Some(ev), am.get(id), &format!("{path}[id={id:?}]"))?;
    }
    Ok(())
}

// ---- Scope's types -------------------------------------------------------------------

const TOPOLOGIES: [&str; 23] = [
    "Endpoint",
    "Process",
    "Container",
    "ContainerImage",
    "Pod",
    "Service",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "CronJob",
    "Namespace",
    "Host",
    "Overlay",
    "ECSTask",
    "ECSService",
    "SwarmService",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "VolumeSnapshot",
    "VolumeSnapshotData",
    "Job",
];

fn report(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    let mut fields: Vec<(&str, Cmp)> = vec![
        ("TS", time),
        ("DNS", |c, e, a, p| data_map(c, e, a, p, dns_record)),
        ("nodes", |c, e, a, p| data_map(c, e, a, p, dns_record)),
        ("Sampling", |c, e, a, p| {
            fixed(c, e, a, p, &[("Count", number), ("Total", number)])
        }),
        ("Window", number),
        ("Shortcut", boolean),
        ("Plugins", |c, e, a, p| keyed_by_id(c, e, a, p, plugin_spec)),
        ("ID", string),
    ];
    for t in TOPOLOGIES {
        fields.push((t, topology));
    }
    fixed(cx, e, a, path, &fields)
}

fn topology(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("shape", string),
            ("tag", string),
            ("label", string),
            ("label_plural", string),
            ("nodes", |c, e, a, p| data_map(c, e, a, p, node)),
            ("controls", |c, e, a, p| data_map(c, e, a, p, control)),
            ("metadata_templates", |c, e, a, p| {
                data_map(c, e, a, p, metadata_template)
            }),
            ("metric_templates", |c, e, a, p| {
                data_map(c, e, a, p, metric_template)
            }),
            ("table_templates", |c, e, a, p| {
                data_map(c, e, a, p, table_template)
            }),
        ],
    )
}

fn node(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("topology", string),
            ("sets", |c, e, a, p| data_map(c, e, a, p, set)),
            ("adjacency", set),
            ("latest", |c, e, a, p| data_map(c, e, a, p, latest_entry)),
            ("metrics", |c, e, a, p| data_map(c, e, a, p, metric)),
            ("parents", |c, e, a, p| data_map(c, e, a, p, set)),
            ("children", |c, e, a, p| keyed_by_id(c, e, a, p, node)),
        ],
    )
}

fn latest_entry(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
) -> Result<(), String> {
    fixed(cx, e, a, path, &[("timestamp", time), ("value", string)])
}

fn metric(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("samples", |c, e, a, p| {
                ordered(c, e, a, p, |c, e, a, p| {
                    fixed(c, e, a, p, &[("date", time), ("value", number)])
                })
            }),
            ("min", number),
            ("max", number),
        ],
    )
}

fn control(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("human", string),
            ("icon", string),
            ("confirmation", string),
            ("rank", number),
            ("probeId", string),
        ],
    )
}

fn metadata_template(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("label", string),
            ("truncate", number),
            ("dataType", string),
            ("priority", number),
            ("from", string),
        ],
    )
}

fn metric_template(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("label", string),
            ("format", string),
            ("group", string),
            ("priority", number),
        ],
    )
}

fn table_template(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("label", string),
            ("prefix", string),
            ("type", string),
            ("columns", |c, e, a, p| {
                ordered(c, e, a, p, |c, e, a, p| {
                    fixed(
                        c,
                        e,
                        a,
                        p,
                        &[("id", string), ("label", string), ("dataType", string)],
                    )
                })
            }),
            ("fixedRows", |c, e, a, p| data_map(c, e, a, p, string)),
        ],
    )
}

fn dns_record(cx: &Cx<'_>, e: Option<&Value>, a: Option<&Value>, path: &str) -> Result<(), String> {
    fixed(cx, e, a, path, &[("forward", set), ("reverse", set)])
}

fn plugin_spec(
    cx: &Cx<'_>,
    e: Option<&Value>,
    a: Option<&Value>,
    path: &str,
) -> Result<(), String> {
    fixed(
        cx,
        e,
        a,
        path,
        &[
            ("id", string),
            ("label", string),
            ("description", string),
            ("api_version", string),
            ("interfaces", |c, e, a, p| ordered(c, e, a, p, string)),
            ("status", |_, _, _, _| Ok(())),
        ],
    )?;
    // Status: the vector's status_match rule for this plugin id.
    let id = norm(e)
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let get = |v: Option<&Value>| {
        norm(v)
            .and_then(|v| v.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (es, as_) = (get(e), get(a));
    let rule = cx.opts.status_match.get(id).map(String::as_str);
    if !status_matches(rule, &es, &as_) {
        return Err(format!(
            "{}: status {as_:?} does not match {es:?} (rule {rule:?})",
            field_path(path, "status")
        ));
    }
    Ok(())
}
