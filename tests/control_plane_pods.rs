//! The control plane as pods, as on a kubeadm node, seen with the real kubectl 1.27 and 1.33:
//! `kubespec up` puts kubeadm's static pod manifests on the first node, so `kube-system` shows
//! `kube-apiserver-node-1`, `kube-controller-manager-node-1` and `kube-scheduler-node-1` (and
//! `etcd-node-1` when etcd holds the objects) as ready mirror pods. (That their probes follow
//! the real components is shown by `features/control-plane/pods.feature`.)

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use support::cli::{Kubectl, Up};
use support::etcd::Etcd;

/// The ready mirror pods of the control plane, by name, once `names` are all there and ready.
fn wait_ready(up: &Up, names: &[&str]) {
    let watched = up.watch();
    watched.until(
        Duration::from_secs(120),
        &format!("{names:?} to be ready mirror pods in kube-system"),
        |s| {
            let ready: Vec<String> = s
                .pods()
                .filter(|p| p.metadata.namespace.as_deref() == Some("kube-system"))
                .filter(|p| is_ready(p))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if names.iter().all(|n| ready.iter().any(|r| r == n)) {
                Ok(())
            } else {
                Err(format!("ready in kube-system: {ready:?}"))
            }
        },
    );
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

const CONTROL_PLANE: [&str; 3] = [
    "kube-apiserver-node-1",
    "kube-controller-manager-node-1",
    "kube-scheduler-node-1",
];

#[test]
fn kube_system_shows_the_control_plane_as_mirror_pods_on_the_first_node() {
    let up = Up::start_with(&["--nodes", "2", "--time-scale", "10"]);
    wait_ready(&up, &CONTROL_PLANE);
    for version in ["1.27", "1.33"] {
        let k = Kubectl::new(version, &up);
        let table = rows(&k.ok(&["get", "pods", "-n", "kube-system", "-o", "wide"]));
        assert_eq!(
            table[0][..7],
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
            "{version}: {table:?}"
        );
        let (proxies, mirrors): (Vec<&Vec<String>>, Vec<&Vec<String>>) = table[1..]
            .iter()
            .partition(|r| r[0].starts_with("kube-proxy-"));
        let names: Vec<&str> = mirrors.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, CONTROL_PLANE, "{version}");
        for row in &mirrors {
            assert_eq!(row[1..4], ["1/1", "Running", "0"], "{version}: {row:?}");
            assert_eq!(row[6], "node-1", "{version}: only the first node: {row:?}");
        }
        // kube-proxy's DaemonSet: one pod per node, named as generateName names them.
        let mut nodes: Vec<&str> = proxies.iter().map(|r| r[6].as_str()).collect();
        nodes.sort();
        assert_eq!(nodes, ["node-1", "node-2"], "{version}: {table:?}");
        for row in &proxies {
            let suffix = &row[0]["kube-proxy-".len()..];
            assert!(
                suffix.len() == 5
                    && suffix
                        .chars()
                        .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
                "{version}: {row:?}"
            );
            assert_eq!(row[1..3], ["1/1", "Running"], "{version}: {row:?}");
        }
        let rollout = k.ok(&[
            "rollout",
            "status",
            "daemonset/kube-proxy",
            "-n",
            "kube-system",
        ]);
        assert_eq!(
            rollout.trim(),
            "daemon set \"kube-proxy\" successfully rolled out"
        );
        let ds = rows(&k.ok(&["get", "ds", "-n", "kube-system"]));
        assert_eq!(
            ds[0],
            [
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE",
                "SELECTOR",
                "AGE"
            ],
            "{version}"
        );
        assert_eq!(ds.len(), 2, "{version}: {ds:?}");
        assert_eq!(
            ds[1][..7],
            [
                "kube-proxy",
                "2",
                "2",
                "2",
                "2",
                "2",
                "kubernetes.io/os=linux"
            ]
        );
        // kubeadm's labels select them.
        let selected = k.ok(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "tier=control-plane,component=kube-scheduler",
            "-o",
            "name",
        ]);
        assert_eq!(selected.trim(), "pod/kube-scheduler-node-1", "{version}");
    }
    let k = Kubectl::new("1.33", &up);
    let pod: Value = serde_json::from_str(&k.ok(&[
        "get",
        "pod",
        "-n",
        "kube-system",
        "kube-scheduler-node-1",
        "-o",
        "json",
    ]))
    .unwrap();
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    assert_eq!(
        annotations["kubernetes.io/config.mirror"],
        annotations["kubernetes.io/config.hash"]
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["name"], "node-1");
    assert_eq!(pod["spec"]["priority"], 2_000_001_000);
    assert_eq!(pod["spec"]["priorityClassName"], "system-node-critical");
    assert_eq!(pod["spec"]["hostNetwork"], true);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.k8s.io/kube-scheduler:v1.33.0");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The Priority admission gives daemon pods their class's value.
    let proxy: Value = serde_json::from_str(&k.ok(&[
        "get",
        "pods",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=kube-proxy",
        "-o",
        "json",
    ]))
    .unwrap();
    let proxy = &proxy["items"][0];
    assert_eq!(proxy["spec"]["priority"], 2_000_001_000);
    assert_eq!(proxy["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert_eq!(proxy["metadata"]["labels"]["pod-template-generation"], "1");
    // The apiserver's pod names where it is advertised.
    let apiserver: Value = serde_json::from_str(&k.ok(&[
        "get",
        "pod",
        "-n",
        "kube-system",
        "kube-apiserver-node-1",
        "-o",
        "json",
    ]))
    .unwrap();
    let endpoint = up.url().trim_start_matches("http://");
    assert_eq!(
        apiserver["metadata"]["annotations"]
            ["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
        endpoint
    );
}

#[test]
fn with_etcd_the_first_node_runs_an_etcd_pod_too() {
    let etcd = Etcd::start();
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "10", "--etcd", etcd.url()]);
    let mut names = vec!["etcd-node-1"];
    names.extend(CONTROL_PLANE);
    wait_ready(&up, &names);
    let k = Kubectl::new("1.33", &up);
    let table = rows(&k.ok(&["get", "pods", "-n", "kube-system"]));
    let listed: Vec<&str> = table[1..]
        .iter()
        .map(|r| r[0].as_str())
        .filter(|n| !n.starts_with("kube-proxy-"))
        .collect();
    assert_eq!(listed, names);
    let pod: Value = serde_json::from_str(&k.ok(&[
        "get",
        "pod",
        "-n",
        "kube-system",
        "etcd-node-1",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "registry.k8s.io/etcd:3.5.21-0"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["kubeadm.kubernetes.io/etcd.advertise-client-urls"],
        etcd.url()
    );
}
