//! Real kubectl (1.27 and 1.33) draining a node of the reference cluster: it cordons the node,
//! evicts its pods through `pods/eviction`, and the Deployment's pods come back on the other node.

mod support;

use support::cli::{Kubectl, Up};
use support::minutes;

fn drain_story(version: &str) {
    let up = Up::start_with(&["--nodes", "2", "--time-scale", "20"]);
    let watched = up.watch();
    let k = Kubectl::new(version, &up);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    let nodes_of_running_pods = || {
        k.ok(&[
            "get",
            "pods",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
        ])
    };
    let running = watched.until_ok(minutes(10), "two web pods running", || {
        let nodes = nodes_of_running_pods();
        if nodes.lines().count() == 2 {
            Ok(nodes)
        } else {
            Err(format!("running on {nodes:?}"))
        }
    });
    // Drain a node that runs a web pod; the other one takes them all.
    let node = running.lines().next().unwrap_or("node-1").to_string();
    let other = if node == "node-1" { "node-2" } else { "node-1" };
    let on_node = format!("--field-selector=spec.nodeName={node}");
    let evictees = k.ok(&["get", "pods", &on_node, "-o", "name"]);
    assert!(!evictees.trim().is_empty(), "no pod on {node}");

    let drained = k.ok(&["drain", &node, "--ignore-daemonsets", "--timeout=120s"]);
    assert!(
        drained.contains(&format!("node/{node} cordoned")),
        "{drained}"
    );
    for pod in evictees.lines() {
        assert!(
            drained.contains(&format!("{pod} evicted")),
            "{pod}: {drained}"
        );
    }
    assert!(
        drained
            .trim_end()
            .ends_with(&format!("node/{node} drained")),
        "{drained}"
    );
    let unschedulable = k.ok(&["get", "node", &node, "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(unschedulable, "true");

    // The ReplicaSet replaces what was evicted, on the node still schedulable.
    watched.until_ok(
        minutes(10),
        "both web pods running on the other node",
        || {
            let nodes = nodes_of_running_pods();
            if nodes.lines().count() == 2 && nodes.lines().all(|n| n == other) {
                Ok(())
            } else {
                Err(format!("running on {nodes:?}"))
            }
        },
    );
}

#[test]
fn kubectl_1_27_drains_a_node() {
    drain_story("1.27");
}

#[test]
fn kubectl_1_33_drains_a_node() {
    drain_story("1.33");
}
