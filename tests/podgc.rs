//! The pod garbage collector end to end in process: orphaned pods, terminated pods above the
//! threshold, and terminating pods nobody else finishes, observed only through the API.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use kubespec::harness::timeline::{Change, Kind, Object, State};
use serde_json::json;
use support::seen;
use support::*;

/// Create pod `default/name`, bound to `node` when given (no scheduler involved).
async fn create_pod(client: &Client, name: &str, node: Option<&str>, extra: serde_json::Value) {
    let mut pod = json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 3600,
            "containers": [{"name": "app", "image": "nginx"}]},
    });
    json_patch::merge(&mut pod, &extra);
    let pod: Pod = serde_json::from_value(pod).unwrap();
    Api::<Pod>::default_namespaced(client.clone())
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

/// Set the phase of pod `default/name` as its kubelet would.
async fn set_phase(client: &Client, name: &str, phase: &str) {
    Api::<Pod>::default_namespaced(client.clone())
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
}

/// The last state the watches saw of pod `default/name` before it was deleted, if it was.
fn deleted_pod<'a>(s: &'a State, name: &str) -> Option<&'a Pod> {
    s.entries
        .iter()
        .find_map(|e| match (e.change, e.object.as_deref()) {
            (Change::Deleted, Some(Object::Pod(p)))
                if e.key.kind == Kind::Pod
                    && e.key.namespace == "default"
                    && e.key.name == name =>
            {
                Some(p)
            }
            _ => None,
        })
}

/// The names of the pods that exist now, sorted.
fn pod_names(s: &State) -> Vec<String> {
    let mut names: Vec<String> = s
        .pods()
        .filter(|p| p.metadata.namespace.as_deref() == Some("default"))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_pod_bound_to_a_node_that_does_not_exist_is_failed_and_force_deleted() {
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-1", "4").await;
    create_pod(&client, "kept", Some("node-1"), json!({})).await;
    create_pod(&client, "orphan", Some("node-gone"), json!({})).await;
    // Quarantined for 40 s, checked on a 20 s period: gone within about a minute.
    let last = waits
        .until(minutes(3), "the orphan to be deleted", |s| {
            deleted_pod(s, "orphan")
                .cloned()
                .ok_or_else(|| seen::pod_json(s, "orphan").to_string())
        })
        .await;
    let status = serde_json::to_value(&last.status).unwrap();
    assert_eq!(status["phase"], "Failed", "{status}");
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let target = conditions
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap_or_else(|| panic!("no DisruptionTarget condition: {status}"));
    assert_eq!(target["status"], "True");
    assert_eq!(target["reason"], "DeletionByPodGC");
    assert_eq!(target["message"], "PodGC: node no longer exists");
    assert!(target["lastTransitionTime"].is_string(), "{target}");
    // The status was written before the delete, which came with no grace period: the
    // orphan never showed a deletionTimestamp it would wait on.
    let marked = waits.read(|s| {
        s.entries.iter().any(|e| {
            e.change == Change::Modified
                && e.key.kind == Kind::Pod
                && e.key.name == "orphan"
                && matches!(e.object.as_deref(), Some(Object::Pod(p))
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        })
    });
    assert!(marked, "the Failed status was seen before the deletion");
    // The pod on a node that exists is untouched (checked after the orphan's deletion).
    waits.read(|s| {
        let kept = seen::pod(s, "kept").expect("the pod on node-1 is still there");
        let phase = kept.status.as_ref().and_then(|s| s.phase.as_deref());
        assert_eq!(phase, Some("Pending"));
        assert!(kept.metadata.deletion_timestamp.is_none());
    });
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_node_that_shows_up_within_the_quarantine_keeps_its_pods() {
    let cluster = cluster().time_scale(10.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    create_pod(&client, "early", Some("node-late"), json!({})).await;
    create_pod(&client, "orphan", Some("node-gone"), json!({})).await;
    // A pass (every 20 s) has seen both nodes missing by now; their 40 s of quarantine end
    // 10 s later at the earliest, and node-late is there by then.
    cluster.clock().sleep(Duration::from_secs(30)).await;
    add_node(&client, "node-late", "4").await;
    waits
        .until(minutes(3), "the orphan to be deleted", |s| {
            deleted_pod(s, "orphan")
                .map(|_| ())
                .ok_or_else(|| seen::pod_json(s, "orphan").to_string())
        })
        .await;
    waits.read(|s| assert_eq!(pod_names(s), ["early"]));
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn terminated_pods_above_the_threshold_are_deleted_oldest_first() {
    let cluster = cluster()
        .time_scale(20.0)
        .terminated_pod_gc_threshold(2)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let clock = cluster.clock().clone();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-1", "4").await;
    // Created a few seconds apart, in the reverse of name order: the oldest go first, not
    // the first by name.
    create_pod(&client, "running", Some("node-1"), json!({})).await;
    set_phase(&client, "running", "Running").await;
    for (name, phase) in [("z1", "Succeeded"), ("y2", "Failed"), ("x3", "Succeeded")] {
        clock.sleep(Duration::from_secs(2)).await;
        create_pod(&client, name, Some("node-1"), json!({})).await;
        set_phase(&client, name, phase).await;
    }
    clock.sleep(Duration::from_secs(2)).await;
    create_pod(&client, "w4", Some("node-1"), json!({})).await;
    set_phase(&client, "w4", "Failed").await;
    waits
        .until(minutes(3), "z1 and y2 to be deleted", |s| {
            if deleted_pod(s, "z1").is_some() && deleted_pod(s, "y2").is_some() {
                Ok(())
            } else {
                Err(format!("{:?}", pod_names(s)))
            }
        })
        .await;
    waits.read(|s| assert_eq!(pod_names(s), ["running", "w4", "x3"]));
    // A fifth terminated pod: the next pass deletes the oldest of the three again.
    clock.sleep(Duration::from_secs(2)).await;
    create_pod(&client, "v5", Some("node-1"), json!({})).await;
    set_phase(&client, "v5", "Succeeded").await;
    waits
        .until(minutes(3), "x3 to be deleted", |s| {
            deleted_pod(s, "x3")
                .map(|_| ())
                .ok_or_else(|| format!("{:?}", pod_names(s)))
        })
        .await;
    waits.read(|s| assert_eq!(pod_names(s), ["running", "v5", "w4"]));
    // A terminated pod keeps its status: it is deleted as it finished.
    let z1 = waits.read(|s| deleted_pod(s, "z1").cloned()).unwrap();
    let status = z1.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    assert!(status
        .conditions
        .unwrap_or_default()
        .iter()
        .all(|c| c.type_ != "DisruptionTarget"));
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_terminating_pod_on_a_not_ready_out_of_service_node_is_force_deleted() {
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-1", "4").await;
    add_node(&client, "node-down", "4").await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            "node-down",
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}})),
        )
        .await
        .unwrap();
    nodes
        .patch(
            "node-down",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [
                {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}]}})),
        )
        .await
        .unwrap();
    // Both terminating with an hour's grace period and no kubelet to finish them; and one
    // pending pod on the out-of-service node that nobody deletes. The NoExecute taint would
    // have the taint manager evict an intolerant pod, so it tolerates it.
    let tolerate = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/out-of-service", "operator": "Exists"}]}});
    create_pod(&client, "stuck", Some("node-down"), tolerate.clone()).await;
    create_pod(&client, "alive", Some("node-down"), tolerate).await;
    create_pod(&client, "healthy-node", Some("node-1"), json!({})).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for name in ["stuck", "healthy-node"] {
        set_phase(&client, name, "Running").await;
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let last = waits
        .until(minutes(3), "the pod on node-down to be deleted", |s| {
            deleted_pod(s, "stuck")
                .cloned()
                .ok_or_else(|| seen::pod_json(s, "stuck").to_string())
        })
        .await;
    let status = last.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    waits.read(|s| {
        assert_eq!(pod_names(s), ["alive", "healthy-node"]);
        let terminating = seen::pod(s, "healthy-node").unwrap();
        assert!(terminating.metadata.deletion_timestamp.is_some());
    });
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_terminating_pod_that_was_never_scheduled_is_marked_failed() {
    // No scheduler: the pod stays unbound. A finalizer keeps it terminating once deleted,
    // as a Job's tracking finalizer does; the collector marks it Failed and deletes it again.
    let cluster = cluster().time_scale(20.0).schedulers(0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    create_pod(
        &client,
        "unbound",
        None,
        json!({"metadata": {"finalizers": ["example.com/hold"]}}),
    )
    .await;
    create_pod(&client, "waiting", None, json!({})).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.delete("unbound", &DeleteParams::default())
        .await
        .unwrap();
    let status = waits
        .until(
            minutes(3),
            "the unscheduled terminating pod to be Failed",
            |s| {
                let pod = seen::pod_json(s, "unbound");
                if pod["status"]["phase"] == "Failed" {
                    Ok(pod["status"].clone())
                } else {
                    Err(pod.to_string())
                }
            },
        )
        .await;
    assert!(
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| c["type"] != "DisruptionTarget"),
        "{status}"
    );
    waits.read(|s| {
        let waiting = seen::pod(s, "waiting").expect("the pod not deleted is left alone");
        let phase = waiting.status.as_ref().and_then(|s| s.phase.as_deref());
        assert_eq!(phase, Some("Pending"));
    });
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
