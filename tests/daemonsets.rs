//! DaemonSets with the real kubectl 1.27 and 1.33 against `kubespec up`: a daemon pod on every
//! node its nodeSelector picks (and on a node once it is labelled), none on the others; a
//! cordoned node keeps its daemon pod; a template change rolls the pods one at a time to a new
//! ControllerRevision; upstream's validation; deleting the DaemonSet deletes its pods.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::cli::{Kubectl, Up};

const DAEMON: &str = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: agent}
      containers: [{name: agent, image: registry.k8s.io/pause:3.10}]
";

/// The nodes the DaemonSet's Running pods are on, sorted (from `kubectl get pods -o json`).
fn daemon_nodes(k: &Kubectl, image: Option<&str>) -> Vec<String> {
    let pods: Value =
        serde_json::from_str(&k.ok(&["get", "pods", "-l", "app=agent", "-o", "json"])).unwrap();
    let mut nodes: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["status"]["phase"] == "Running")
        .filter(|p| image.is_none_or(|i| p["spec"]["containers"][0]["image"] == i))
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from))
        .collect();
    nodes.sort();
    nodes
}

fn daemon_story(version: &str) {
    let up = Up::start_with(&["--nodes", "3", "--time-scale", "10"]);
    let watched = up.watch();
    let k = Kubectl::new(version, &up);
    k.ok(&["label", "node", "node-1", "node-2", "role=agent"]);
    let file = k.file("ds.yaml", DAEMON);
    assert_eq!(
        k.ok(&["apply", "-f", &file]).trim(),
        "daemonset.apps/agent created"
    );
    let on = |want: &[&str], image: Option<&str>| {
        watched.until_ok(
            Duration::from_secs(120),
            &format!("agent pods Running on {want:?}"),
            || {
                let nodes = daemon_nodes(&k, image);
                if nodes == want {
                    Ok(())
                } else {
                    Err(format!("on {nodes:?}"))
                }
            },
        )
    };
    on(&["node-1", "node-2"], None);
    let status = k.ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert_eq!(
        status.trim(),
        "daemon set \"agent\" successfully rolled out",
        "{version}"
    );
    // A node labelled later gets one; a cordoned node keeps its own.
    k.ok(&["label", "node", "node-3", "role=agent"]);
    on(&["node-1", "node-2", "node-3"], None);
    k.ok(&["cordon", "node-2"]);
    k.ok(&["label", "node", "node-1", "role-"]);
    on(&["node-2", "node-3"], None);
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=DaemonSet",
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_str(&events).unwrap();
    let reasons: Vec<(String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|(r, _)| r == "SuccessfulCreate")
            .count(),
        3,
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: agent-")),
        "{reasons:?}"
    );
    // A new template rolls out pod by pod to a second ControllerRevision.
    k.ok(&[
        "set",
        "image",
        "ds/agent",
        "agent=registry.k8s.io/pause:3.9",
    ]);
    on(&["node-2", "node-3"], Some("registry.k8s.io/pause:3.9"));
    let status = k.ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(
        status.contains("successfully rolled out"),
        "{version}: {status}"
    );
    let revisions = k.ok(&["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(revisions.lines().count(), 2, "{revisions}");
    let history = k.ok(&["rollout", "history", "ds/agent"]);
    assert!(history.contains("REVISION"), "{history}");
    // Deleting it deletes its pods.
    k.ok(&["delete", "ds", "agent"]);
    watched.until_ok(Duration::from_secs(120), "the agent pods gone", || {
        let left = k.ok(&["get", "pods", "-l", "app=agent", "-o", "name"]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
}

#[test]
fn kubectl_1_27_runs_a_daemon_set() {
    daemon_story("1.27");
}

#[test]
fn kubectl_1_33_runs_a_daemon_set() {
    daemon_story("1.33");
}

#[test]
fn invalid_daemon_sets_are_refused_with_upstreams_words() {
    let up = Up::start();
    let k = Kubectl::new("1.33", &up);
    let never = DAEMON.replace(
        "      containers:",
        "      restartPolicy: Never\n      containers:",
    );
    let out = k.run(&["apply", "-f", &k.file("never.yaml", &never)]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(
            "The DaemonSet \"agent\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        ),
        "{}",
        out.stderr
    );
    let mismatched = DAEMON.replace(
        "metadata: {labels: {app: agent}}",
        "metadata: {labels: {app: other}}",
    );
    let out = k.run(&["apply", "-f", &k.file("mismatch.yaml", &mismatched)]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"),
        "{}",
        out.stderr
    );
    // Defaults as apps/v1 sets them.
    k.ok(&["apply", "-f", &k.file("ds.yaml", DAEMON)]);
    let ds: Value = serde_json::from_str(&k.ok(&["get", "ds", "agent", "-o", "json"])).unwrap();
    assert_eq!(
        ds["spec"]["updateStrategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(ds["metadata"]["generation"], 1);
}
