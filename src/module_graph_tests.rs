//! The top-level module graph stays a DAG (issue 9): `scripts/module-graph.sh` lists the edges
//! between top-level modules, and a cycle among them fails this test, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The edges the script prints, as `from -> {to}`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/module-graph.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().take_while(|l| !l.starts_with('#')) {
        let (from, to) = line
            .split_once(" -> ")
            .unwrap_or_else(|| panic!("not an edge line: {line:?}"));
        graph.entry(from.into()).or_default().insert(to.into());
    }
    graph
}

/// Every cycle reachable in `graph`, each as the path that closes it (`a b c a`), found by a
/// depth-first search; a cycle may be reported once per entry point.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            found.push(cycle);
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c", "a"]]);
    if let Some(s) = g.get_mut("c") {
        s.remove("a");
    }
    assert!(cycles(&g).is_empty());
}

#[test]
fn top_level_modules_form_a_dag() {
    let graph = edges();
    // The script read the tree: the lifecycle's own edges are there.
    for (from, to) in [
        ("runner", "judge"),
        ("daemon", "runner"),
        ("policy", "spec"),
    ] {
        assert!(
            graph.get(from).is_some_and(|t| t.contains(to)),
            "scripts/module-graph.sh lists no {from} -> {to}; does it still read src/? {graph:?}"
        );
    }
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "the top-level modules import each other in a circle: {}; move what both sides need \
         into a leaf module (see docs/DESIGN.md's module map; `bash scripts/module-graph.sh` \
         lists the edges)",
        found
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
