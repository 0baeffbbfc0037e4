//! Cluster topology: how many nodes of what size, how many control-plane replicas. These steps
//! only shape the cluster; it starts at the first step that needs it. The runner reads them
//! before the run too ([`topology_of`]), to skip scenarios a target cannot shape.

use cucumber::given;

use crate::harness::vocabulary::{given, Phrase};
use crate::harness::{StepResult, World};
use crate::target::Topology;

pub const PHRASES: &[Phrase] = &[
    given(
        "a cluster with {int} node(s)",
        "a cluster with 3 nodes",
        "The cluster has at least this many Ready nodes (the embedded target starts exactly this many, 4 CPU and 8Gi each).",
    ),
    given(
        "a cluster with {int} node(s) of {word} CPU and {word} memory",
        "a cluster with 2 nodes of 2 CPU and 4Gi memory",
        "Nodes of this size (needs @needs:topology).",
    ),
    given(
        "{int} controller-manager replica(s) and {int} scheduler replica(s)",
        "3 controller-manager replicas and 2 scheduler replicas",
        "How many replicas of each campaign for leadership (needs @needs:topology).",
    ),
];

/// What a topology step asks for.
fn parse(text: &str) -> Option<Result<Topology, String>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let count = |w: &str| -> Result<usize, String> {
        w.parse::<usize>()
            .map_err(|_| format!("{w:?} is not a number"))
    };
    match words.as_slice() {
        ["a", "cluster", "with", n, "node" | "nodes"] => Some(count(n).map(|n| Topology {
            nodes: Some(n),
            ..Default::default()
        })),
        ["a", "cluster", "with", n, "node" | "nodes", "of", cpu, "CPU", "and", memory, "memory"] => {
            Some(count(n).map(|n| Topology {
                nodes: Some(n),
                node_cpu: Some(cpu.to_string()),
                node_memory: Some(memory.to_string()),
                ..Default::default()
            }))
        }
        [cm, "controller-manager", "replica" | "replicas", "and", s, "scheduler", "replica" | "replicas"] => {
            Some(count(cm).and_then(|cm| {
                Ok(Topology {
                    controller_managers: Some(cm),
                    schedulers: Some(count(s)?),
                    ..Default::default()
                })
            }))
        }
        _ => None,
    }
}

/// Merge what the topology steps among `texts` ask for.
///
/// # Errors
/// A topology step whose numbers do not parse.
pub fn topology_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Topology, String> {
    let mut t = Topology::default();
    for text in texts {
        if let Some(part) = parse(text) {
            merge(&mut t, part?);
        }
    }
    Ok(t)
}

fn merge(t: &mut Topology, part: Topology) {
    t.nodes = part.nodes.or(t.nodes.take());
    t.node_cpu = part.node_cpu.or(t.node_cpu.take());
    t.node_memory = part.node_memory.or(t.node_memory.take());
    t.controller_managers = part.controller_managers.or(t.controller_managers.take());
    t.schedulers = part.schedulers.or(t.schedulers.take());
}

fn shape(w: &mut World, text: &str) -> StepResult {
    let part = parse(text)
        .ok_or_else(|| crate::harness::Failure::new(format!("not a topology step: {text}")))?
        .map_err(crate::harness::Failure::new)?;
    if part.nodes == Some(0) {
        return Err(crate::harness::Failure::new(
            "a cluster needs at least 1 node",
        ));
    }
    w.shape(|t| merge(t, part))
}

#[given(expr = "a cluster with {int} node(s)")]
fn nodes(w: &mut World, _nodes: usize, step: &cucumber::gherkin::Step) -> StepResult {
    shape(w, &step.value)
}

#[given(expr = "a cluster with {int} node(s) of {word} CPU and {word} memory")]
fn sized_nodes(
    w: &mut World,
    _nodes: usize,
    _cpu: String,
    _memory: String,
    step: &cucumber::gherkin::Step,
) -> StepResult {
    shape(w, &step.value)
}

#[given(expr = "{int} controller-manager replica(s) and {int} scheduler replica(s)")]
fn replicas(
    w: &mut World,
    _controller_managers: usize,
    _schedulers: usize,
    step: &cucumber::gherkin::Step,
) -> StepResult {
    shape(w, &step.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topology_example_parses() {
        let t = topology_of(PHRASES.iter().map(|p| p.example)).unwrap();
        assert_eq!(t.nodes, Some(2));
        assert_eq!(t.node_cpu.as_deref(), Some("2"));
        assert_eq!(t.node_memory.as_deref(), Some("4Gi"));
        assert_eq!(t.controller_managers, Some(3));
        assert_eq!(t.schedulers, Some(2));
        assert!(topology_of(["When I apply:"]).unwrap() == Topology::default());
    }
}
