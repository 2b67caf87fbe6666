//! The merge borrows strings from the response buffers: merging decoded reports allocates
//! memory for its maps, never for the strings in them. Shown with a counting allocator: the
//! same reports with 8-byte and with 8,000-byte strings make the merge allocate exactly the
//! same number of blocks and bytes. Decoding into a `DecodeArena` allocates no heap block for
//! a node's maps, its sets, a metric's samples or a string that had escapes either, and a node
//! that two reports share merges without a heap block for the node itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use scope_probe::report::{
    DecodeArena, Report, Time, decode_plugin_report, decode_plugin_report_in,
};

struct Counting;

thread_local! {
    /// Counting is per thread, so other tests running in parallel do not disturb it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the thread-locals may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
            let _ = BYTES.try_with(|b| b.set(b.get() + size as u64));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes allocated while `f` runs on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    ALLOCS.with(|a| a.set(0));
    BYTES.with(|b| b.set(0));
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    (result, ALLOCS.with(Cell::get), BYTES.with(Cell::get))
}

/// A probe-shaped report: `nodes` Host and Process nodes with latest entries, sets, parents,
/// metrics and templates; every string value is `len` bytes. Report `k` has newer timestamps
/// and shares half of its node IDs with the others, so the merge does real work.
fn report(k: usize, nodes: usize, len: usize) -> String {
    let text = |tag: &str| -> String {
        let mut s = format!("{tag}-");
        while s.len() < len {
            s.push('x');
        }
        s.truncate(len);
        s
    };
    let mut host_nodes = Vec::new();
    let mut process_nodes = Vec::new();
    for i in 0..nodes {
        let id = if i % 2 == 0 { i } else { 1000 * k + i };
        let ts = format!("2023-06-01T10:{:02}:{:02}.5Z", k, i % 60);
        let latest: Vec<String> = (0..6)
            .map(|j| {
                format!(
                    r#""key{j}":{{"timestamp":"{ts}","value":"{}"}}"#,
                    text(&format!("v{k}{i}{j}"))
                )
            })
            .collect();
        let node = format!(
            r#""{{ID}}":{{"id":"{{ID}}","latest":{{{}}},"sets":{{"s":["{}","{}"]}},"parents":{{"host":["{}"]}},"metrics":{{"m":{{"samples":[{{"date":"{ts}","value":{k}.5}}],"min":0,"max":100}}}}}}"#,
            latest.join(","),
            text(&format!("a{k}")),
            text(&format!("b{i}")),
            text("h"),
        );
        host_nodes.push(node.replace("{ID}", &format!("h{id};<host>")));
        process_nodes.push(node.replace("{ID}", &format!("h;{id}")));
    }
    format!(
        r#"{{"Host":{{"nodes":{{{}}},"metadata_templates":{{"key0":{{"id":"key0","label":"{}","priority":1}}}}}},"Process":{{"nodes":{{{}}}}},"Plugins":[{{"id":"p{k}","label":"{}","interfaces":["reporter"],"api_version":"1"}}]}}"#,
        host_nodes.join(","),
        text("label"),
        process_nodes.join(","),
        text("plugin"),
    )
}

/// Decodes the reports, then counts what merging them allocates.
fn merge_cost(len: usize) -> (u64, u64) {
    let bodies: Vec<String> = (1..=6).map(|k| report(k, 40, len)).collect();
    let now = Time::from_unix_nanos(1_700_000_000_000_000_000);
    let decoded: Vec<Report<'_>> = bodies
        .iter()
        .map(|b| decode_plugin_report(b.as_bytes(), now).expect("test report decodes"))
        .collect();
    let (merged, allocs, bytes) = counted(move || {
        let mut acc = Report::make();
        for r in decoded {
            acc.merge(r);
        }
        acc
    });
    let host = merged.topology(scope_probe::report::TopologyKind::Host);
    assert_eq!(host.nodes.len(), 20 + 6 * 20, "shared and own nodes merged");
    (allocs, bytes)
}

#[test]
fn merging_allocates_for_maps_never_for_strings() {
    let (short_allocs, short_bytes) = merge_cost(8);
    let (long_allocs, long_bytes) = merge_cost(8000);
    assert!(
        short_allocs > 0,
        "the merge builds maps, so it does allocate"
    );
    assert_eq!(
        (short_allocs, short_bytes),
        (long_allocs, long_bytes),
        "string length changed what the merge allocated: strings were copied"
    );
}

/// Heap allocations that decoding `body` makes, on the heap alone and into `arena` (reset
/// first, so its block is reused).
fn decode_cost(body: &str, arena: &mut DecodeArena) -> (u64, u64) {
    let now = Time::from_unix_nanos(1_700_000_000_000_000_000);
    let (_, heap, _) = counted(|| decode_plugin_report(body.as_bytes(), now).expect("decodes"));
    arena.reset();
    let (_, in_arena, _) =
        counted(|| decode_plugin_report_in(body.as_bytes(), now, arena).expect("decodes"));
    (heap, in_arena)
}

#[test]
fn decoding_into_an_arena_allocates_nothing_per_node_map_set_sample_list_or_escaped_string() {
    let plain = report(1, 40, 24);
    // Every `x` spelt as a JSON escape: the same report, but no value can be borrowed as is.
    let escaped = plain.replace('x', "\\u0078");
    let now = Time::from_unix_nanos(1_700_000_000_000_000_000);
    assert_eq!(
        decode_plugin_report(plain.as_bytes(), now).expect("decodes"),
        decode_plugin_report(escaped.as_bytes(), now).expect("decodes"),
    );
    let mut arena = DecodeArena::new();
    // Warm-up: a reset keeps the arena's last block only, which holds the whole report from
    // the second round on.
    decode_cost(&escaped, &mut arena);
    decode_cost(&escaped, &mut arena);

    let (plain_heap, plain_arena) = decode_cost(&plain, &mut arena);
    let (escaped_heap, escaped_arena) = decode_cost(&escaped, &mut arena);
    // 80 nodes, each with four maps (latest, sets, parents, metrics), one sample list and one
    // two-string set: six blocks each on the heap path only.
    assert_eq!(
        plain_heap - plain_arena,
        6 * 80,
        "node maps, sample lists and sets"
    );
    assert!(
        escaped_heap > plain_heap + 80 * 8,
        "on the heap, each escaped string is a block of its own"
    );
    assert_eq!(
        escaped_arena, plain_arena,
        "escaped strings took heap blocks"
    );
}

/// A node that both reports hold merges inside the receiver's box: the merge makes no heap
/// block for the node itself (taking a boxed node out of its slot left a new default box
/// behind, one allocation per shared node).
#[test]
fn merging_a_shared_node_allocates_nothing_for_the_node() {
    let body = |k: u32| {
        format!(
            r#"{{"Host":{{"nodes":{{"h;<host>":{{"id":"h;<host>","latest":{{"a":{{"timestamp":"2023-06-01T10:00:0{k}Z","value":"v{k}"}}}}}}}}}}}}"#
        )
    };
    let (first, second) = (body(1), body(2));
    let now = Time::from_unix_nanos(1_700_000_000_000_000_000);
    let mut acc = decode_plugin_report(first.as_bytes(), now).expect("decodes");
    let other = decode_plugin_report(second.as_bytes(), now).expect("decodes");
    let ((), allocs, _) = counted(|| acc.merge(other));
    assert_eq!(allocs, 0, "merging a shared node allocated");
    let host = acc.topology(scope_probe::report::TopologyKind::Host);
    let node = host.nodes.get("h;<host>").expect("the shared node");
    assert_eq!(
        node.latest.get("a").map(|e| &*e.value),
        Some("v2"),
        "the newer entry"
    );
}
