//! `kubectl get componentstatus` against `kubespec up`, with the real kubectl 1.27 and 1.33:
//! the controller-manager and the scheduler checked on every read, the deprecation warning,
//! upstream's JSON (no resourceVersion, no kind on items, null creationTimestamp), the table's
//! columns, a 500 for a component not checked, and `etcd-0` when etcd holds the objects
//! (Unhealthy, with the error, once etcd is gone).

mod support;

use serde_json::Value;
use support::cli::{Kubectl, Up};
use support::etcd::Etcd;

const WARNING: &str = "Warning: v1 ComponentStatus is deprecated in v1.19+";

fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn kubectl_shows_the_controller_manager_and_the_scheduler_healthy_with_the_warning() {
    let up = Up::start();
    for version in ["1.27", "1.33"] {
        let k = Kubectl::new(version, &up);
        let out = k.run(&["get", "componentstatuses"]);
        assert!(out.ok, "{version}: {}", out.stderr);
        assert!(out.stderr.contains(WARNING), "{version}: {}", out.stderr);
        assert_eq!(
            rows(&out.stdout),
            vec![
                vec!["NAME", "STATUS", "MESSAGE", "ERROR"],
                vec!["controller-manager", "Healthy", "ok"],
                vec!["scheduler", "Healthy", "ok"],
            ],
            "{version}"
        );
        // The short name and one component by name.
        let one = k.ok(&["get", "cs", "scheduler", "-o", "json"]);
        let one: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(one["kind"], "ComponentStatus");
        assert_eq!(
            one["conditions"],
            serde_json::json!([{"type": "Healthy", "status": "True", "message": "ok"}])
        );
        let missing = k.run(&["get", "cs", "kube-proxy"]);
        assert!(!missing.ok);
        assert!(
            missing
                .stderr
                .contains("Error from server: Component not found: kube-proxy"),
            "{version}: {}",
            missing.stderr
        );
    }
    // The raw list, as upstream encodes it.
    let k = Kubectl::new("1.33", &up);
    let raw = k.ok(&["get", "--raw", "/api/v1/componentstatuses"]);
    let list: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(list["kind"], "ComponentStatusList");
    assert_eq!(
        list["metadata"],
        serde_json::json!({}),
        "no resourceVersion"
    );
    let item = &list["items"][0];
    assert!(item.get("kind").is_none(), "{item}");
    assert_eq!(item["metadata"]["creationTimestamp"], Value::Null);
    assert!(item["metadata"].get("resourceVersion").is_none());
    // Discovery: get and list only, short name cs.
    let resources: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1"])).unwrap();
    let entry = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "componentstatuses")
        .cloned()
        .expect("componentstatuses in discovery");
    assert_eq!(entry["verbs"], serde_json::json!(["get", "list"]));
    assert_eq!(entry["shortNames"], serde_json::json!(["cs"]));
    assert_eq!(entry["namespaced"], false);
    // A write is refused.
    let delete = k.run(&["delete", "cs", "scheduler"]);
    assert!(!delete.ok, "{}", delete.stdout);
}

#[test]
fn etcd_0_is_checked_through_the_apiservers_connection_to_etcd() {
    let etcd = Etcd::start();
    let up = Up::start_with(&["--nodes", "0", "--etcd", etcd.url()]);
    let k = Kubectl::new("1.33", &up);
    let out = k.ok(&["get", "componentstatuses"]);
    assert!(
        rows(&out).contains(&vec!["etcd-0".into(), "Healthy".into(), "ok".into()]),
        "{out}"
    );
    drop(etcd);
    let out = k.run(&["get", "componentstatus", "etcd-0", "-o", "json"]);
    assert!(out.ok, "{}", out.stderr);
    let cs: Value = serde_json::from_str(&out.stdout).unwrap();
    let condition = &cs["conditions"][0];
    assert_eq!(condition["status"], "False", "{cs}");
    assert!(condition.get("message").is_none(), "{cs}");
    assert!(
        condition["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the error says why: {cs}"
    );
}
