//! The module graph as ARCHITECTURE.md draws it: no component (apiserver, controllers,
//! scheduler, kubelet, proxy) uses another component's modules, and the shared layers beneath
//! them (runtime, k8s, store, clock, leader, events, labels, server, netfilter, host, probe) use no component. Read from the
//! `crate::` paths in `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const COMPONENTS: &[&str] = &["apiserver", "controllers", "scheduler", "kubelet", "proxy"];
const SHARED: &[&str] = &[
    "runtime",
    "k8s",
    "store",
    "clock",
    "leader",
    "events",
    "labels",
    "server",
    "netfilter",
    "host",
    "probe",
];

/// The top-level module a file under `src/` belongs to.
fn module_of(path: &Path, src: &Path) -> Option<String> {
    let rel = path.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Which top-level modules each top-level module names through `crate::`.
fn edges() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for file in all {
        let Some(from) = module_of(&file, &src) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                // `crate::a::b` names `a`; `crate::{a, b::c}` names `a` and `b`.
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split(['}', ','])
                        .map(|n| n.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    None => vec![rest],
                };
                for name in names {
                    let to: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !to.is_empty() && to != from {
                        let at =
                            format!("{}:{}", file.strip_prefix(&src).unwrap().display(), n + 1);
                        out.entry(from.clone()).or_default().insert((to, at));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_component_uses_another_and_shared_layers_use_none() {
    let mut wrong = Vec::new();
    for (from, targets) in edges() {
        for (to, at) in targets {
            let from_component = COMPONENTS.contains(&from.as_str());
            let to_component = COMPONENTS.contains(&to.as_str());
            if (from_component || SHARED.contains(&from.as_str())) && to_component {
                wrong.push(format!("{at}: {from} uses {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = edges()
        .into_iter()
        .map(|(from, to)| (from, to.into_iter().map(|(t, _)| t).collect()))
        .collect();
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}
