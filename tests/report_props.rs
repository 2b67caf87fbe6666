//! Properties of the report layer under arbitrary input:
//! - decoding arbitrary bytes, and fixture reports with bytes flipped, inserted or deleted,
//!   never panics (and whatever decodes also merges and encodes without panicking);
//! - decode → merge → encode of generated valid reports never panics, and the encoded output
//!   decodes again to an equal report (round trip) that encodes to the same bytes.

mod util;

use proptest::prelude::*;
use scope_probe::report::testing::{decode_fast_only, decode_reference};
use scope_probe::report::{
    DecodeArena, Report, Time, TopologyKind, decode_plugin_report, decode_plugin_report_in,
    decode_shortcut_report, encode, rewrite_controls,
};
use serde_json::{Map, Value, json};

fn now() -> Time {
    Time::parse("2099-01-01T00:00:00Z").expect("valid time")
}

/// Every fixture body we have: Scope's probe report, real plugin reports, plugin vector bodies
/// and a few merge vector inputs (read once).
fn fixture_bodies() -> &'static [Vec<u8>] {
    static BODIES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    BODIES.get_or_init(read_fixture_bodies)
}

fn read_fixture_bodies() -> Vec<Vec<u8>> {
    let root = util::fixtures();
    let mut bodies = vec![std::fs::read(root.join("go-probe-report.json")).expect("fixture")];
    for f in util::json_files(&root.join("real-plugins")) {
        bodies.push(std::fs::read(f).expect("fixture"));
    }
    for f in util::json_files(&root.join("vectors/plugins")) {
        let v = util::load_json(&f);
        for p in v["plugins"].as_array().into_iter().flatten() {
            if let Some(b) = p["body"].as_str() {
                bodies.push(b.as_bytes().to_vec());
            }
        }
    }
    for f in util::json_files(&root.join("vectors/merge"))
        .iter()
        .take(10)
    {
        let v = util::load_json(f);
        for input in v["inputs"].as_array().into_iter().flatten() {
            bodies.push(input.to_string().into_bytes());
        }
    }
    bodies
}

/// The fast decoding path agrees with the serde reference decoder: whatever the fast path
/// accepts, the reference accepts with an equal result (and the public decoder returns it).
fn fast_path_agrees(body: &[u8]) -> Result<(), TestCaseError> {
    if let Some(fast) = decode_fast_only(body, now()) {
        let reference = decode_reference(body, now()).map_err(|e| {
            TestCaseError::fail(format!(
                "fast path accepted what the reference rejects ({e}): {}",
                String::from_utf8_lossy(body)
            ))
        })?;
        prop_assert_eq!(&fast, &reference, "{}", String::from_utf8_lossy(body));
        // Sample values compare by value; the texts they keep must agree too.
        let (mut fast_json, mut reference_json) = (Vec::new(), Vec::new());
        encode(&fast, &mut fast_json);
        encode(&reference, &mut reference_json);
        prop_assert_eq!(fast_json, reference_json);
    }
    let public = decode_plugin_report(body, now());
    let reference = decode_reference(body, now());
    prop_assert_eq!(&public, &reference);
    // Decoding into an arena (as the probe does) gives the same report and the same bytes.
    let arena = DecodeArena::new();
    let in_arena = decode_plugin_report_in(body, now(), &arena);
    prop_assert_eq!(&in_arena, &reference);
    if let (Ok(in_arena), Ok(reference)) = (in_arena, reference) {
        let (mut arena_json, mut reference_json) = (Vec::new(), Vec::new());
        encode(&in_arena, &mut arena_json);
        encode(&reference, &mut reference_json);
        prop_assert_eq!(arena_json, reference_json);
    }
    Ok(())
}

/// Decodes, and if that works, merges into a fresh report, rewrites, tags and encodes. Must
/// not panic whatever the input.
fn exercise(body: &[u8]) {
    let arena = DecodeArena::new();
    if let Ok(r) = decode_plugin_report(body, now()) {
        let mut acc = Report::make();
        acc.merge(r.clone());
        acc.merge(r);
        // A third copy from the arena, merged with the heap-decoded ones.
        acc.merge(decode_plugin_report_in(body, now(), &arena).expect("decodes as above"));
        rewrite_controls(&mut acc, "p", now());
        acc.tag("h;<host>", now());
        let mut out = Vec::new();
        encode(&acc, &mut out);
        decode_plugin_report(&out, now()).expect("our own output decodes");
    }
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(r) = decode_shortcut_report(text, now())
    {
        let mut out = Vec::new();
        encode(&r.into_owned(), &mut out);
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(b'"'),
        Just(b'\\'),
        Just(b','),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b']'),
        Just(b':'),
        Just(b'n'),
        Just(b'0'),
        Just(b'.'),
        Just(b'Z'),
        Just(0xff),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip(i, b) => {
            let i = i % body.len();
            body[i] = b;
        }
        Mutation::Insert(i, b) => {
            let i = i % (body.len() + 1);
            body.insert(i, b);
        }
        Mutation::Delete(i) => {
            let i = i % body.len();
            body.remove(i);
        }
    }
}

/// Tokens that stress the lenient rules and the edges of JSON numbers and strings.
const TRICKY: [&str; 24] = [
    "1e400",
    "-0",
    "1.5",
    "0",
    "-1",
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775808",
    "\"\\u003chost\\u003e\"",
    "\"\\ud800\"",
    "\"a\\nb\\\"c\"",
    "\"2023-06-01T00:00:00Z\"",
    "\"2023-06-01T02:00:00.123+02:00\"",
    "null",
    "true",
    "\"\"",
    "{}",
    "[]",
    "[1,\"a\",null]",
    "\"15s\"",
    "\"1\"",
    "1E2",
    "1e-2",
    "{\"dead\":true,\"timestamp\":\"2023-06-01T00:00:00Z\"}",
];

/// Replaces the scalar value after the `n`-th `:` of `body` with `token` (a token-level
/// mutation: every field meets every kind of value).
fn replace_value(body: &[u8], n: usize, token: &str) -> Vec<u8> {
    let colons: Vec<usize> = body
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == b':')
        .map(|(i, _)| i)
        .collect();
    if colons.is_empty() {
        return body.to_vec();
    }
    let start = colons[n % colons.len()] + 1;
    let mut end = start;
    match body.get(start) {
        Some(b'"') => {
            end += 1;
            while end < body.len() && body[end] != b'"' {
                end += if body[end] == b'\\' { 2 } else { 1 };
            }
            end = (end + 1).min(body.len());
        }
        Some(b'{' | b'[') => end = start,
        _ => {
            while end < body.len() && !matches!(body[end], b',' | b'}' | b']') {
                end += 1;
            }
        }
    }
    let mut out = body[..start].to_vec();
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(&body[end..]);
    out
}

// ---- generated valid reports ---------------------------------------------------------

const TIMES: [&str; 6] = [
    "2023-06-01T09:30:17Z",
    "2023-06-01T09:30:17.25Z",
    "2023-06-01T11:30:17+02:00",
    "2023-06-01T09:30:18.000000001Z",
    "0001-01-01T00:00:00Z",
    "2023-06-01T09:30:16.123456789-07:30",
];

fn time() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0..TIMES.len()).prop_map(|i| json!(TIMES[i])),
        1 => Just(Value::Null),
    ]
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("")),
        Just(json!("a")),
        Just(json!("b")),
        Just(json!("tab\tx")),
        Just(json!("日本語")),
        Just(json!("quote\"back\\slash")),
        Just(json!("host_exec;p~c")),
        Just(json!(42)),
        Just(json!(4.5e3)),
        Just(json!(true)),
        Just(Value::Null),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c;<host>".to_owned()),
        Just("".to_owned()),
        Just("é".to_owned()),
        Just("active_controls".to_owned()),
    ]
}

fn object<S: Strategy<Value = Value>>(values: S, max: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), values), 0..max).prop_map(|entries| {
        let mut m = Map::new();
        for (k, v) in entries {
            m.insert(k, v);
        }
        Value::Object(m)
    })
}

fn string_set() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(key(), 0..4).prop_map(|v| json!(v)),
        Just(Value::Null),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1.5)),
        Just(json!(-2)),
        Just(json!(100.0)),
        Just(json!(1e21)),
        Just(json!(0.1)),
        Just(json!(-0.0)),
        Just(json!(90.90740686605085)),
        Just(json!("2.5")),
        Just(Value::Null),
    ]
}

fn metric() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_set(0..TIMES.len() - 2, 0..4),
        prop::collection::vec(number(), 4),
        number(),
        number(),
    )
        .prop_map(|(dates, values, min, max)| {
            // Strictly increasing dates (the vectors' validity rule).
            let mut ordered: Vec<&str> = dates.into_iter().map(|i| TIMES[i]).collect();
            ordered.sort_by_key(|s| Time::parse(s).expect("valid time"));
            ordered.dedup_by_key(|s| Time::parse(s).expect("valid time"));
            let samples: Vec<Value> = ordered
                .iter()
                .enumerate()
                .map(|(i, d)| json!({"date": d, "value": values[i]}))
                .collect();
            json!({"samples": samples, "min": min, "max": max})
        })
}

fn node(topology: &'static str, depth: u32) -> BoxedStrategy<Value> {
    let children = if depth == 0 {
        Just(Value::Null).boxed()
    } else {
        prop::collection::vec(node(topology, depth - 1), 0..2)
            .prop_map(Value::Array)
            .boxed()
    };
    (
        prop_oneof![Just(Value::Null), key().prop_map(Value::String)],
        prop_oneof![
            3 => Just(Value::Null),
            3 => Just(json!(topology)),
            1 => Just(json!("conflicting")),
        ],
        object(string_set(), 3),
        string_set(),
        object(
            (time(), text()).prop_map(|(t, v)| json!({"timestamp": t, "value": v})),
            4,
        ),
        object(metric(), 2),
        object(string_set(), 2),
        children,
    )
        .prop_map(
            |(id, topo, sets, adjacency, latest, metrics, parents, children)| {
                json!({"id": id, "topology": topo, "sets": sets, "adjacency": adjacency,
                   "latest": latest, "metrics": metrics, "parents": parents,
                   "children": children})
            },
        )
        .boxed()
}

fn topology(kind: TopologyKind) -> impl Strategy<Value = Value> {
    let control = (text(), text(), 0i64..5).prop_map(|(h, i, rank)| {
        json!({"id": "x", "human": h, "icon": i, "rank": rank, "confirmation": "sure?"})
    });
    let md = (text(), number()).prop_map(|(l, p)| json!({"id": "m", "label": l, "priority": p}));
    let mt = (text(), number())
        .prop_map(|(l, p)| json!({"id": "m", "label": l, "priority": p, "format": "percent"}));
    let tt = (text(), text(), 0usize..3).prop_map(|(id, p, n)| {
        let cols: Vec<Value> = (0..n).map(|i| json!({"id": format!("c{i}"), "label": "L", "dataType": ""})).collect();
        json!({"id": id, "label": "T", "prefix": p, "type": "", "columns": cols, "fixedRows": {"r": "R"}})
    });
    (
        prop_oneof![Just(Value::Null), Just(json!("")), Just(json!("circle"))],
        prop_oneof![Just(Value::Null), Just(json!("camera"))],
        prop_oneof![Just(Value::Null), Just(json!("")), Just(json!("thing"))],
        prop_oneof![Just(Value::Null), Just(json!("things"))],
        object(node(kind.internal_name(), 1), 3),
        object(control, 2),
        object(md, 2),
        object(mt, 2),
        object(tt, 2),
    )
        .prop_map(|(shape, tag, label, plural, nodes, controls, md, mt, tt)| {
            let mut m = Map::new();
            for (k, v) in [
                ("shape", shape),
                ("tag", tag),
                ("label", label),
                ("label_plural", plural),
            ] {
                if !v.is_null() {
                    m.insert(k.to_owned(), v);
                }
            }
            m.insert("nodes".to_owned(), nodes);
            m.insert("controls".to_owned(), controls);
            m.insert("metadata_templates".to_owned(), md);
            m.insert("metric_templates".to_owned(), mt);
            m.insert("table_templates".to_owned(), tt);
            Value::Object(m)
        })
}

fn report() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::subsequence(TopologyKind::ALL.to_vec(), 0..4);
    (
        kinds.prop_flat_map(|ks| {
            let strategies: Vec<_> = ks
                .into_iter()
                .map(|k| topology(k).prop_map(move |t| (k, t)))
                .collect();
            strategies
        }),
        time(),
        0i64..1_000_000,
        prop::collection::vec(
            (key(), text()).prop_map(|(id, label)| {
                json!({"id": id, "label": label, "interfaces": ["reporter"], "api_version": "1"})
            }),
            0..3,
        ),
        object(
            (string_set(), string_set()).prop_map(|(f, r)| json!({"forward": f, "reverse": r})),
            2,
        ),
        any::<bool>(),
    )
        .prop_map(|(topologies, ts, window, plugins, dns, shortcut)| {
            let mut m = Map::new();
            for (k, t) in topologies {
                m.insert(k.wire_key().to_owned(), t);
            }
            m.insert("TS".to_owned(), ts);
            m.insert("Window".to_owned(), json!(window));
            m.insert("Plugins".to_owned(), Value::Array(plugins));
            m.insert("DNS".to_owned(), dns);
            m.insert("Shortcut".to_owned(), json!(shortcut));
            m.insert("Sampling".to_owned(), json!({"Count": 1, "Total": 2}));
            m.insert("ID".to_owned(), json!("id"));
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&body);
        fast_path_agrees(&body)?;
    }

    #[test]
    fn arbitrary_text_never_panics(body in "[{}\\[\\]\":,0-9a-zA-Z.+\\-\\\\ ]{0,200}") {
        exercise(body.as_bytes());
        fast_path_agrees(body.as_bytes())?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut body = which.get(fixture_bodies()).clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        exercise(&body);
        fast_path_agrees(&body)?;
    }

    #[test]
    fn token_substitution_agrees_with_reference(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), 0..TRICKY.len()), 1..4),
    ) {
        let mut body = which.get(fixture_bodies()).clone();
        for (n, t) in edits {
            body = replace_value(&body, n, TRICKY[t]);
        }
        exercise(&body);
        fast_path_agrees(&body)?;
    }

    #[test]
    fn generated_reports_merge_encode_and_round_trip(
        inputs in prop::collection::vec(report(), 1..4),
    ) {
        let bodies: Vec<String> = inputs.iter().map(Value::to_string).collect();
        for body in &bodies {
            fast_path_agrees(body.as_bytes())?;
        }
        let mut acc = Report::make();
        for body in &bodies {
            let r = decode_plugin_report(body.as_bytes(), now())
                .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
            acc.merge(r);
        }
        let mut out = Vec::new();
        encode(&acc, &mut out);
        let again = decode_plugin_report(&out, now())
            .map_err(|e| TestCaseError::fail(format!("re-decode: {e}")))?;
        prop_assert_eq!(&again, &acc);
        let mut out2 = Vec::new();
        encode(&again, &mut out2);
        prop_assert_eq!(out2, out);
        // Owned copies are equal too.
        prop_assert_eq!(acc.clone().into_owned(), acc);
    }
}

/// The fast path really takes Scope's own reports and the real plugins' reports (it must not
/// silently hand everything to the slower decoder).
#[test]
fn fast_path_takes_real_reports() {
    let root = util::fixtures();
    let mut files = vec![root.join("go-probe-report.json")];
    files.extend(
        util::json_files(&root.join("real-plugins"))
            .into_iter()
            .filter(|f| std::fs::metadata(f).map(|m| m.len() > 10).unwrap_or(false)),
    );
    for f in files {
        let body = std::fs::read(&f).expect("fixture");
        let fast = decode_fast_only(&body, now());
        assert!(
            fast.is_some(),
            "{} is not taken by the fast path",
            f.display()
        );
        assert_eq!(fast, decode_reference(&body, now()).ok(), "{}", f.display());
    }
    // Merge vector inputs (Go-encoded) too, except the ones with escapes.
    let mut taken = 0;
    for f in util::json_files(&root.join("vectors/merge")) {
        let v = util::load_json(&f);
        for input in v["inputs"].as_array().into_iter().flatten() {
            let body = input.to_string();
            if let Some(fast) = decode_fast_only(body.as_bytes(), now()) {
                taken += 1;
                assert_eq!(Some(fast), decode_reference(body.as_bytes(), now()).ok());
            }
        }
    }
    assert!(taken > 100, "fast path took only {taken} merge inputs");
}

/// Regression: a digit run longer than 19 digits in a float field overflowed the fast path's
/// significand (a panic in debug builds); it must fall back and agree with the reference.
#[test]
fn long_digit_runs_in_float_fields_never_panic() {
    let now = Time::from_unix_nanos(1_700_000_000_000_000_000);
    for value in [
        "123456789012345678901234567890",
        "99999999999999999999.5",
        "0.1234567890123456789012345",
        "-18446744073709551616",
    ] {
        let body = format!(
            r#"{{"Host":{{"nodes":{{"h;<host>":{{"metrics":{{"m":{{"samples":[{{"date":"2023-06-01T09:00:00Z","value":{value}}}],"min":{value},"max":1}}}}}}}}}}}}"#
        );
        let fast = decode_fast_only(body.as_bytes(), now);
        let reference = decode_reference(body.as_bytes(), now);
        let public = decode_plugin_report(body.as_bytes(), now);
        assert!(reference.is_ok(), "{value}: reference decodes");
        assert!(public.is_ok(), "{value}: decodes");
        if let (Some(fast), Ok(reference)) = (fast, reference) {
            assert_eq!(fast, reference, "{value}");
        }
    }
}
