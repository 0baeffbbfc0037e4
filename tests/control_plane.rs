//! The control loops end to end in process: Deployments, ReplicaSets, the scheduler, garbage
//! collection, node lifecycle and leader failover, observed only through the API.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Client;
use serde_json::json;
use support::*;

async fn pods_of(client: &Client, app: &str) -> Vec<Pod> {
    Api::<Pod>::default_namespaced(client.clone())
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_deployment_becomes_a_replicaset_and_three_pods_bound_across_three_nodes() {
    let cluster = cluster(1.0, 1, 1).await;
    let client = cluster.client().unwrap();
    for n in ["node-a", "node-b", "node-c"] {
        add_node(&client, n, "1").await;
    }
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 3, "nginx:1.27"))
        .await
        .unwrap();

    let pods = wait_for(
        "3 pods bound to 3 different nodes",
        Duration::from_secs(30),
        || async {
            let pods = pods_of(&client, "web").await;
            let nodes: HashSet<String> = pods
                .iter()
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            if pods.len() == 3 && nodes.len() == 3 {
                Ok(pods)
            } else {
                Err(format!("{} pods on nodes {nodes:?}", pods.len()))
            }
        },
    )
    .await;

    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let rs_name = rs.metadata.name.clone().unwrap();
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert!(
        hash.len() <= 10
            && hash
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{hash}"
    );
    assert_eq!(
        rs.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", "web", Some(true), Some(true))
    );
    assert_eq!(
        rs.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap();
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        assert_eq!(
            pod.metadata.owner_references.as_ref().unwrap()[0].name,
            rs_name
        );
    }
    let names: Vec<String> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let deploy_events = wait_for(
        "the ScalingReplicaSet event",
        Duration::from_secs(10),
        || async {
            let e = events_for(&client, "default", "web").await;
            if e.is_empty() {
                Err("none".into())
            } else {
                Ok(e)
            }
        },
    )
    .await;
    assert_eq!(
        deploy_events,
        vec![format!(
            "ScalingReplicaSet: Scaled up replica set {rs_name} from 0 to 3"
        )]
    );
    let rs_events = events_for(&client, "default", &rs_name).await;
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| format!("SuccessfulCreate: Created pod: {n}"))
        .collect();
    let mut got = rs_events.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap();
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        let events = wait_for("the Scheduled event", Duration::from_secs(10), || async {
            let e = events_for(&client, "default", &name).await;
            if e.is_empty() {
                Err("none".into())
            } else {
                Ok(e)
            }
        })
        .await;
        assert_eq!(
            events,
            vec![format!(
                "Scheduled: Successfully assigned default/{name} to {node}"
            )]
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The number of live (non-terminating) pods and of ready ones among them.
fn census(pods: &HashMap<String, Pod>) -> (usize, usize) {
    let live: Vec<&Pod> = pods
        .values()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let ready = live
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    (live.len(), ready)
}

#[tokio::test]
async fn a_rolling_update_never_breaks_max_surge_or_max_unavailable() {
    let cluster = cluster(10.0, 1, 1).await;
    let client = cluster.client().unwrap();
    for n in ["node-a", "node-b", "node-c"] {
        add_node(&client, n, "2").await;
    }
    let _kubelets = FakeKubelets::start(
        client.clone(),
        cluster.clock().clone(),
        &["node-a", "node-b", "node-c"],
    );
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let mut d = deployment("web", 4, "nginx:1.27");
    d.spec.as_mut().unwrap().strategy = Some(
        serde_json::from_value(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
        )
        .unwrap(),
    );
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let complete = |image: &'static str| {
        let deployments = deployments.clone();
        move || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await.unwrap();
                let s = d.status.clone().unwrap_or_default();
                let current_image = d
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .clone()
                    .unwrap();
                let done = current_image == image
                    && s.observed_generation == d.metadata.generation
                    && s.updated_replicas == Some(4)
                    && s.replicas == Some(4)
                    && s.available_replicas == Some(4);
                if done {
                    Ok(())
                } else {
                    Err(format!("{image}: {s:?}"))
                }
            }
        }
    };
    wait_for(
        "the first rollout to complete",
        Duration::from_secs(60),
        complete("nginx:1.27"),
    )
    .await;

    // Record every pod change from here on, then update the image.
    let pods_api: Api<Pod> = Api::default_namespaced(client.clone());
    let start = pods_api.list(&ListParams::default()).await.unwrap();
    let rv = start.metadata.resource_version.clone().unwrap();
    let mut state: HashMap<String, Pod> = start
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap(), p))
        .collect();
    let mut stream = pods_api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}})))
        .await
        .unwrap();
    let history = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let recorded = history.clone();
    let recorder = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    state.insert(p.metadata.name.clone().unwrap(), p);
                }
                WatchEvent::Deleted(p) => {
                    state.remove(&p.metadata.name.clone().unwrap());
                }
                _ => continue,
            }
            recorded.lock().push(census(&state));
        }
    });
    wait_for(
        "the rolling update to complete",
        Duration::from_secs(120),
        complete("nginx:1.28"),
    )
    .await;
    wait_for(
        "the recorded history to settle on 4 ready pods",
        Duration::from_secs(30),
        || async {
            match history.lock().last() {
                Some(&(4, 4)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    recorder.abort();
    let history = history.lock().clone();
    // 4 old pods replaced by 4 new ones: at least 4 creations, 4 readinesses, 4 terminations
    // and 4 deletions were observed.
    assert!(
        history.len() >= 16,
        "too little history to judge: {history:?}"
    );
    for (i, &(live, ready)) in history.iter().enumerate() {
        assert!(
            live <= 5,
            "step {i}: {live} live pods > replicas 4 + maxSurge 1; history {history:?}"
        );
        assert!(
            ready >= 3,
            "step {i}: {ready} ready pods < replicas 4 - maxUnavailable 1; history {history:?}"
        );
    }
    let images: Vec<String> = pods_of(&client, "web")
        .await
        .iter()
        .map(|p| {
            p.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(images, vec!["nginx:1.28"; 4]);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn scale_to_zero_and_back() {
    let cluster = cluster(10.0, 1, 1).await;
    let client = cluster.client().unwrap();
    add_node(&client, "node-a", "4").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 3, "nginx:1.27"))
        .await
        .unwrap();
    let count = |n: usize| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let pods = pods_of(&client, "web").await;
                if pods.len() == n {
                    Ok(())
                } else {
                    Err(format!("{} pods", pods.len()))
                }
            }
        }
    };
    wait_for("3 pods", Duration::from_secs(30), count(3)).await;
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    wait_for("0 pods", Duration::from_secs(30), count(0)).await;
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    wait_for("3 pods again", Duration::from_secs(30), count(3)).await;
    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rss.len(), 1, "scaling reuses the one ReplicaSet");
    let rs = rss[0].metadata.name.clone().unwrap();
    let events = events_for(&client, "default", "web").await;
    assert_eq!(
        events,
        vec![
            format!("ScalingReplicaSet: Scaled down replica set {rs} from 3 to 0"),
            // The identical scale-up was recorded again: one event, count 2.
            format!("ScalingReplicaSet: Scaled up replica set {rs} from 0 to 3 (x2)"),
        ]
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn deletion_follows_each_propagation_policy() {
    let cluster = cluster(10.0, 1, 1).await;
    let client = cluster.client().unwrap();
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let replicasets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    for app in ["bg", "fg", "orphan"] {
        deployments
            .create(&PostParams::default(), &deployment(app, 2, "nginx:1.27"))
            .await
            .unwrap();
    }
    for app in ["bg", "fg", "orphan"] {
        wait_for("2 pods each", Duration::from_secs(30), || async {
            let n = pods_of(&client, app).await.len();
            if n == 2 {
                Ok(())
            } else {
                Err(format!("{app}: {n} pods"))
            }
        })
        .await;
    }
    let rs_of = |app: &'static str| {
        let replicasets = replicasets.clone();
        async move {
            replicasets
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap()
                .items
        }
    };

    // Background: the Deployment goes at once, the collector removes the rest.
    deployments
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deployments.get_opt("bg").await.unwrap().is_none());
    wait_for(
        "bg's ReplicaSet and pods collected",
        Duration::from_secs(30),
        || async {
            let (r, p) = (rs_of("bg").await.len(), pods_of(&client, "bg").await.len());
            if r == 0 && p == 0 {
                Ok(())
            } else {
                Err(format!("{r} replicasets, {p} pods"))
            }
        },
    )
    .await;

    // Foreground: the Deployment waits (foregroundDeletion) until its dependents are gone.
    deployments
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let held = deployments.get("fg").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        held.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    wait_for(
        "fg and all its dependents gone",
        Duration::from_secs(30),
        || async {
            let d = deployments.get_opt("fg").await.unwrap().is_some();
            let (r, p) = (rs_of("fg").await.len(), pods_of(&client, "fg").await.len());
            if !d && r == 0 && p == 0 {
                Ok(())
            } else {
                Err(format!("deployment {d}, {r} replicasets, {p} pods"))
            }
        },
    )
    .await;

    // Orphan: the Deployment goes, its ReplicaSet stays without an owner, pods stay.
    deployments
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_for(
        "orphan's Deployment gone",
        Duration::from_secs(30),
        || async {
            match deployments.get_opt("orphan").await.unwrap() {
                None => Ok(()),
                Some(d) => Err(format!("finalizers {:?}", d.metadata.finalizers)),
            }
        },
    )
    .await;
    // Barrier: the garbage collector has orphaned the ReplicaSet (its owner reference is gone);
    // only then does "it and its pods are still there" mean they were kept.
    let rss = wait_for(
        "the ReplicaSet orphaned",
        Duration::from_secs(30),
        || async {
            let rss = rs_of("orphan").await;
            let orphaned = rss.iter().all(|rs| {
                rs.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            });
            if orphaned {
                Ok(rss)
            } else {
                Err(format!(
                    "{:?}",
                    rss.iter()
                        .map(|r| &r.metadata.owner_references)
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
    .await;
    assert_eq!(rss.len(), 1);
    assert_eq!(pods_of(&client, "orphan").await.len(), 2);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_unschedulable_pod_reports_why_and_schedules_once_a_node_fits() {
    let cluster = cluster(1.0, 1, 1).await;
    let client = cluster.client().unwrap();
    add_node(&client, "small", "1").await;
    // Registered cordoned (one write): a cordon patched in after registration may reach the
    // scheduler after the pod does, and the pod would rightly land there.
    let cordoned: Node = serde_json::from_value(json!({
        "metadata": {"name": "cordoned", "labels": {"kubernetes.io/hostname": "cordoned"}},
        "spec": {"unschedulable": true},
        "status": {
            "capacity": {"cpu": "8", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
        },
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &cordoned)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "big"}, "spec": {"containers": [
        {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "2"}}}]}}))
        .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let expected = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.";
    wait_for(
        "FailedScheduling with the reason counts",
        Duration::from_secs(30),
        || async {
            let events = events_for(&client, "default", "big").await;
            if events
                .iter()
                .any(|e| e == &format!("FailedScheduling: {expected}"))
            {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await;
    let condition = wait_for("PodScheduled=False", Duration::from_secs(10), || async {
        let p = pods.get("big").await.unwrap();
        let c = p
            .status
            .and_then(|s| s.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "PodScheduled"));
        match c {
            Some(c) if c.status == "False" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(condition.message.as_deref(), Some(expected));

    add_node(&client, "large", "4").await;
    wait_for(
        "the pod bound to the new node",
        Duration::from_secs(30),
        || async {
            let p = pods.get("big").await.unwrap();
            match p.spec.and_then(|s| s.node_name) {
                Some(n) if n == "large" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

async fn holder(client: &Client, lease: &str) -> Option<(String, i32)> {
    let l = Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt(lease)
        .await
        .ok()??;
    let spec = l.spec?;
    Some((
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0),
    ))
}

#[tokio::test]
async fn a_controller_manager_leader_that_dies_is_replaced_within_lease_plus_retry() {
    // 20x: a 15 s lease is 0.75 s of wall time.
    let cluster = cluster(20.0, 3, 1).await;
    let client = cluster.client().unwrap();
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let ids: Vec<String> = cluster
        .controller_managers()
        .iter()
        .map(|r| r.identity().to_string())
        .collect();
    let (leader, transitions) = wait_for(
        "a controller-manager leader",
        Duration::from_secs(10),
        || async {
            match holder(&client, "kube-controller-manager").await {
                Some((h, t)) if ids.contains(&h) => Ok((h, t)),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1.27"))
        .await
        .unwrap();
    wait_for("1 pod", Duration::from_secs(30), || async {
        let n = pods_of(&client, "web").await.len();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    })
    .await;

    // Kill the leader (no release) and change the desired state while nobody leads.
    let clock = cluster.clock().clone();
    let killed_at = clock.now();
    cluster
        .controller_managers()
        .iter()
        .find(|r| r.identity() == leader)
        .unwrap()
        .abort();
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let (new_leader, new_transitions) = wait_for(
        "another replica to take the lease",
        Duration::from_secs(20),
        || async {
            match holder(&client, "kube-controller-manager").await {
                Some((h, t)) if h != leader && !h.is_empty() => Ok((h, t)),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let took = (clock.now() - killed_at).num_milliseconds() as f64 / 1000.0;
    // leaseDuration 15 s + retryPeriod 2 s, plus one observation round trip of slack.
    assert!(
        took <= 15.0 + 2.0 + 2.0,
        "takeover took {took:.1} cluster seconds"
    );
    assert_ne!(new_leader, leader);
    assert_eq!(new_transitions, transitions + 1);
    wait_for(
        "the new leader to reconcile the scale change",
        Duration::from_secs(30),
        || async {
            let n = pods_of(&client, "web").await.len();
            if n == 3 {
                Ok(())
            } else {
                Err(format!("{n} pods"))
            }
        },
    )
    .await;
    let lease_events = events_for(&client, "kube-system", "kube-controller-manager").await;
    assert!(
        lease_events.contains(&format!("LeaderElection: {new_leader} became leader")),
        "{lease_events:?}"
    );

    // A graceful stop does not hand over early: kube-controller-manager does not release its
    // Lease on the way out (no ReleaseOnCancel upstream) and records no "stopped leading"; the
    // next leader waits out the lease as after a crash.
    let stopped_at = clock.now();
    cluster
        .controller_managers()
        .iter()
        .find(|r| r.identity() == new_leader)
        .unwrap()
        .stop();
    let third = wait_for("a third leader", Duration::from_secs(20), || async {
        match holder(&client, "kube-controller-manager").await {
            Some((h, _)) if h != new_leader && h != leader && !h.is_empty() => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let took = (clock.now() - stopped_at).num_milliseconds() as f64 / 1000.0;
    assert!(
        took >= 15.0 - 2.0 - 1.0,
        "the handover took only {took:.1} cluster seconds: the lease was released"
    );
    let lease_events = events_for(&client, "kube-system", "kube-controller-manager").await;
    assert!(
        lease_events.contains(&format!("LeaderElection: {third} became leader")),
        "{lease_events:?}"
    );
    assert!(
        !lease_events.contains(&format!("LeaderElection: {new_leader} stopped leading")),
        "{lease_events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_scheduler_leader_that_dies_is_replaced_and_the_new_one_binds() {
    let cluster = cluster(20.0, 1, 2).await;
    let client = cluster.client().unwrap();
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let ids: Vec<String> = cluster
        .schedulers()
        .iter()
        .map(|r| r.identity().to_string())
        .collect();
    let (leader, _) = wait_for("a scheduler leader", Duration::from_secs(10), || async {
        match holder(&client, "kube-scheduler").await {
            Some((h, t)) if ids.contains(&h) => Ok((h, t)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let clock = cluster.clock().clone();
    let killed_at = clock.now();
    cluster
        .schedulers()
        .iter()
        .find(|r| r.identity() == leader)
        .unwrap()
        .abort();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "late"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}})).unwrap())
        .await
        .unwrap();
    wait_for(
        "the new scheduler leader to bind the pod",
        Duration::from_secs(20),
        || async {
            match pods
                .get("late")
                .await
                .unwrap()
                .spec
                .and_then(|s| s.node_name)
            {
                Some(n) => Ok(n),
                None => Err(format!(
                    "unbound; lease {:?}",
                    holder(&client, "kube-scheduler").await
                )),
            }
        },
    )
    .await;
    let took = (clock.now() - killed_at).num_milliseconds() as f64 / 1000.0;
    assert!(
        took <= 15.0 + 2.0 + 3.0,
        "binding after failover took {took:.1} cluster seconds"
    );
    let (new_leader, _) = holder(&client, "kube-scheduler").await.unwrap();
    assert_ne!(new_leader, leader);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_silent_node_goes_unknown_is_tainted_and_its_pods_are_replaced_elsewhere() {
    // 100x: the 50 s grace is half a second, the 300 s toleration three seconds.
    let cluster = cluster(100.0, 1, 1).await;
    let client = cluster.client().unwrap();
    add_node(&client, "node-a", "8").await;
    let kubelets = FakeKubelets::start(
        client.clone(),
        cluster.clock().clone(),
        &["node-a", "node-b"],
    );
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 2, "nginx:1.27"))
        .await
        .unwrap();
    wait_for("2 pods on node-a", Duration::from_secs(30), || async {
        let pods = pods_of(&client, "web").await;
        let on_a = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-a"))
            .count();
        if on_a == 2 {
            Ok(())
        } else {
            Err(format!("{on_a}"))
        }
    })
    .await;
    add_node(&client, "node-b", "8").await;
    kubelets.silence("node-a");
    let nodes: Api<Node> = Api::all(client.clone());
    let node = wait_for(
        "node-a Ready=Unknown and tainted unreachable",
        Duration::from_secs(30),
        || async {
            let n = nodes.get("node-a").await.unwrap();
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .cloned();
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| {
                    ts.iter().any(|t| {
                        t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"
                    })
                });
            match ready {
                Some(c) if c.status == "Unknown" && tainted => Ok(n),
                other => Err(format!(
                    "ready {other:?}, taints {:?}",
                    n.spec.as_ref().and_then(|s| s.taints.clone())
                )),
            }
        },
    )
    .await;
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let node_events = events_for(&client, "default", "node-a").await;
    assert!(
        node_events.contains(&"NodeNotReady: Node node-a status is now: NodeNotReady".to_string()),
        "{node_events:?}"
    );

    // After the 300 s default toleration, the pods are marked for deletion and replaced on node-b.
    let evicted: Vec<String> = wait_for(
        "2 Running pods on node-b",
        Duration::from_secs(60),
        || async {
            let pods = pods_of(&client, "web").await;
            let live_b: Vec<String> = pods
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-b")
                })
                .map(|p| p.metadata.name.clone().unwrap())
                .collect();
            let terminating_a: Vec<String> = pods
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_some()
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-a")
                })
                .map(|p| p.metadata.name.clone().unwrap())
                .collect();
            if live_b.len() == 2 && terminating_a.len() == 2 {
                Ok(terminating_a)
            } else {
                Err(format!(
                    "node-b {live_b:?}, terminating on node-a {terminating_a:?}"
                ))
            }
        },
    )
    .await;
    for name in evicted {
        let events = events_for(&client, "default", &name).await;
        assert!(
            events.contains(&format!(
                "TaintManagerEviction: Marking for deletion Pod default/{name}"
            )),
            "{events:?}"
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_controller_manager_opens_one_watch_per_resource() {
    let cluster = cluster(20.0, 1, 0).await;
    let client = cluster.client().unwrap();
    // Barriers: every control loop has started (each starts its informers before anything else).
    add_node(&client, "node-a", "4").await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    deployments
        .create(
            &PostParams::default(),
            &support::deployment("web", 1, "nginx"),
        )
        .await
        .unwrap();
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let replicasets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::default_namespaced(client.clone());
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::default_namespaced(client.clone());
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::default_namespaced(client.clone());
    wait_for("every control loop at work", Duration::from_secs(30), || async {
        let rs = replicasets.list(&Default::default()).await.map_err(|e| e.to_string())?.items.len();
        let ep = endpoints.get_opt("web").await.map_err(|e| e.to_string())?.is_some();
        let sa = accounts.get_opt("default").await.map_err(|e| e.to_string())?.is_some();
        let registered = events_for(&client, "default", "node-a")
            .await
            .iter()
            .any(|e| e.starts_with("RegisteredNode"));
        if rs > 0 && ep && sa && registered {
            Ok(())
        } else {
            Err(format!("replicasets {rs}, endpoints {ep}, service account {sa}, node registered {registered}"))
        }
    })
    .await;
    // Deployments, ReplicaSets, Pods, Nodes, Services, Endpoints, Namespaces, ServiceAccounts
    // and node Leases: one watch each, however many loops read them.
    assert_eq!(cluster.apiserver().open_watches(), 9);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
