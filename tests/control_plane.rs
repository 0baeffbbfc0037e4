//! The control loops end to end in process: Deployments, ReplicaSets, the scheduler, garbage
//! collection, node lifecycle and leader failover, observed only through the API.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::Client;
use kubespec::cluster::Elected;
use kubespec::harness::timeline::{Change, Kind, Object, State};
use serde_json::json;
use support::seen;
use support::*;

/// The pods labelled `app=<app>`, read from the apiserver.
async fn list_pods(client: &Client, app: &str) -> Vec<Pod> {
    Api::<Pod>::default_namespaced(client.clone())
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_deployment_becomes_a_replicaset_and_three_pods_bound_across_three_nodes() {
    let cluster = cluster().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    for n in ["node-a", "node-b", "node-c"] {
        add_node(&client, n, "1").await;
    }
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 3, "nginx:1.27"))
        .await
        .unwrap();

    let pods: Vec<Pod> = waits
        .until(
            Duration::from_secs(30),
            "3 pods bound to 3 different nodes",
            |s| {
                let pods = seen::pods_of(s, "web");
                let nodes: HashSet<String> = pods
                    .iter()
                    .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                    .collect();
                if pods.len() == 3 && nodes.len() == 3 {
                    Ok(pods.into_iter().cloned().collect())
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
    let deploy_events = waits
        .until(
            Duration::from_secs(10),
            "the ScalingReplicaSet event",
            |s| {
                let e = seen::events(s, "default", "web");
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
        let events = waits
            .until(Duration::from_secs(10), "the Scheduled event", |s| {
                let e = seen::events(s, "default", &name);
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
fn census<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> (usize, usize) {
    let live: Vec<&Pod> = pods
        .into_iter()
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

/// Whether Deployment `web` has rolled out `image` to all 4 replicas.
fn rolled_out(s: &State, image: &str) -> Result<(), String> {
    let Some(d) = seen::deployment(s, "web") else {
        return Err("no deployment web".into());
    };
    let status = d.status.clone().unwrap_or_default();
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
        && status.observed_generation == d.metadata.generation
        && status.updated_replicas == Some(4)
        && status.replicas == Some(4)
        && status.available_replicas == Some(4);
    if done {
        Ok(())
    } else {
        Err(format!("{image}: {status:?}"))
    }
}

/// The census after every pod change the watches saw from entry `from` on, starting from
/// `pods`.
fn census_history(s: &State, from: usize, mut pods: HashMap<String, Pod>) -> Vec<(usize, usize)> {
    let mut history = Vec::new();
    for entry in &s.entries[from..] {
        if entry.key.kind != Kind::Pod {
            continue;
        }
        match (entry.change, entry.object.as_deref()) {
            (Change::Added | Change::Modified, Some(Object::Pod(p))) => {
                pods.insert(entry.key.name.clone(), p.clone());
            }
            (Change::Deleted | Change::DeletedWhileAway, _) => {
                pods.remove(&entry.key.name);
            }
            (Change::Relisted, _) => {
                panic!("the pods watch lost its place: the history has a gap")
            }
            _ => continue,
        }
        history.push(census(pods.values()));
    }
    history
}

#[tokio::test]
async fn a_rolling_update_never_breaks_max_surge_or_max_unavailable() {
    // 10x: ten minutes of cluster time are one of wall time.
    let cluster = cluster().time_scale(10.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
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
    waits
        .until(minutes(10), "the first rollout to complete", |s| {
            rolled_out(s, "nginx:1.27")
        })
        .await;
    // The pods' watch has caught up with the rollout: 4 pods, all ready.
    let settled = |s: &State| match census(s.pods()) {
        (4, 4) => Ok(()),
        other => Err(format!("{other:?} (live, ready)")),
    };
    waits
        .until(minutes(5), "the pods to show 4 ready", settled)
        .await;

    // Record every pod change from here on, then update the image.
    let (from, start) = waits.read(|s| {
        let pods: HashMap<String, Pod> = s
            .pods()
            .map(|p| (p.metadata.name.clone().unwrap(), p.clone()))
            .collect();
        (s.len(), pods)
    });
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}})))
        .await
        .unwrap();
    waits
        .until(minutes(20), "the rolling update to complete", |s| {
            rolled_out(s, "nginx:1.28")
        })
        .await;
    waits
        .until(
            minutes(5),
            "the recorded history to settle on 4 ready pods",
            settled,
        )
        .await;
    let history = waits.read(|s| census_history(s, from, start));
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
    let images: Vec<String> = list_pods(&client, "web")
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
    let cluster = cluster().time_scale(10.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-a", "4").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 3, "nginx:1.27"))
        .await
        .unwrap();
    let count = |n: usize| {
        move |s: &State| {
            let pods = seen::pods_of(s, "web");
            if pods.len() == n {
                Ok(())
            } else {
                Err(format!("{} pods", pods.len()))
            }
        }
    };
    waits.until(minutes(5), "3 pods", count(3)).await;
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    waits.until(minutes(5), "0 pods", count(0)).await;
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    waits.until(minutes(5), "3 pods again", count(3)).await;
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
    let cluster = cluster().time_scale(10.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    for app in ["bg", "fg", "orphan"] {
        deployments
            .create(&PostParams::default(), &deployment(app, 2, "nginx:1.27"))
            .await
            .unwrap();
    }
    for app in ["bg", "fg", "orphan"] {
        waits
            .until(minutes(5), "2 pods each", |s| {
                let n = seen::pods_of(s, app).len();
                if n == 2 {
                    Ok(())
                } else {
                    Err(format!("{app}: {n} pods"))
                }
            })
            .await;
    }
    // The ReplicaSets and pods of `app`, or what is left of them.
    let gone = |app: &'static str| {
        move |s: &State| {
            let (d, r, p) = (
                seen::deployment(s, app).is_some(),
                seen::replicasets_of(s, app).len(),
                seen::pods_of(s, app).len(),
            );
            if !d && r == 0 && p == 0 {
                Ok(())
            } else {
                Err(format!("deployment {d}, {r} replicasets, {p} pods"))
            }
        }
    };

    // Background: the Deployment goes at once, the collector removes the rest.
    deployments
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deployments.get_opt("bg").await.unwrap().is_none());
    waits
        .until(minutes(5), "bg's ReplicaSet and pods collected", gone("bg"))
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
    waits
        .until(minutes(5), "fg and all its dependents gone", gone("fg"))
        .await;

    // Orphan: the Deployment goes, its ReplicaSet stays without an owner, pods stay.
    deployments
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    waits
        .until(
            minutes(5),
            "orphan's Deployment gone",
            |s| match seen::deployment(s, "orphan") {
                None => Ok(()),
                Some(d) => Err(format!("finalizers {:?}", d.metadata.finalizers)),
            },
        )
        .await;
    // Barrier: the garbage collector has orphaned the ReplicaSet (its owner reference is gone);
    // only then does "it and its pods are still there" mean they were kept.
    waits
        .until(minutes(5), "the ReplicaSet orphaned", |s| {
            let rss = seen::replicasets_of(s, "orphan");
            let orphaned = rss.iter().all(|rs| {
                rs.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            });
            if orphaned {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    rss.iter()
                        .map(|r| &r.metadata.owner_references)
                        .collect::<Vec<_>>()
                ))
            }
        })
        .await;
    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default().labels("app=orphan"))
        .await
        .unwrap()
        .items;
    assert_eq!(rss.len(), 1);
    assert_eq!(list_pods(&client, "orphan").await.len(), 2);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_unschedulable_pod_reports_why_and_schedules_once_a_node_fits() {
    let cluster = cluster().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
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
    waits
        .until(
            Duration::from_secs(30),
            "FailedScheduling with the reason counts",
            |s| {
                let events = seen::events(s, "default", "big");
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
    // The event and the status are separate writes: wait for the condition to say it too (a
    // first attempt, before the scheduler saw the nodes, may have said "no nodes available").
    let condition = waits
        .until(
            Duration::from_secs(10),
            "PodScheduled=False with the reason counts",
            |s| {
                let c = seen::pod(s, "big")
                    .and_then(|p| p.status.as_ref()?.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
                match c {
                    Some(c) if c.status == "False" && c.message.as_deref() == Some(expected) => {
                        Ok(c.clone())
                    }
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));

    add_node(&client, "large", "4").await;
    waits
        .until(
            Duration::from_secs(30),
            "the pod bound to the new node",
            |s| match seen::pod(s, "big").and_then(|p| p.spec.as_ref()?.node_name.as_deref()) {
                Some("large") => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// Holder and transitions of the Lease `kube-system/<lease>`, read from the apiserver.
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

/// Wait until `identity`'s "became leader" event about the Lease `kube-system/<lease>` is seen.
async fn became_leader(waits: &Waits, within: Duration, lease: &str, identity: &str) {
    let expected = format!("LeaderElection: {identity} became leader");
    waits
        .until(within, &expected, |s| {
            let events = seen::events(s, "kube-system", lease);
            if events.contains(&expected) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
}

#[tokio::test]
async fn a_controller_manager_leader_that_dies_is_replaced_within_lease_plus_retry() {
    // 20x: a 15 s lease is 0.75 s of wall time.
    let cluster = cluster()
        .time_scale(20.0)
        .controller_managers(3)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let ids: Vec<String> = cluster
        .controller_managers()
        .iter()
        .map(|r| r.identity().to_string())
        .collect();
    let (leader, transitions) = waits
        .until(
            Duration::from_secs(200),
            "a controller-manager leader",
            |s| match seen::lease_holder(s, "kube-controller-manager") {
                Some((h, t)) if ids.contains(&h) => Ok((h, t)),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1.27"))
        .await
        .unwrap();
    waits
        .until(minutes(10), "1 pod", |s| {
            let n = seen::pods_of(s, "web").len();
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
    let (new_leader, new_transitions) = waits
        .until(
            Duration::from_secs(400),
            "another replica to take the lease",
            |s| match seen::lease_holder(s, "kube-controller-manager") {
                Some((h, t)) if h != leader && !h.is_empty() => Ok((h, t)),
                other => Err(format!("{other:?}")),
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
    waits
        .until(
            minutes(10),
            "the new leader to reconcile the scale change",
            |s| {
                let n = seen::pods_of(s, "web").len();
                if n == 3 {
                    Ok(())
                } else {
                    Err(format!("{n} pods"))
                }
            },
        )
        .await;
    became_leader(
        &waits,
        Duration::from_secs(400),
        "kube-controller-manager",
        &new_leader,
    )
    .await;

    // A graceful stop does not hand over early: kube-controller-manager does not release its
    // Lease on the way out (no ReleaseOnCancel upstream) and records no "stopped leading"; the
    // next leader waits out the lease as after a crash.
    let stopped_at = clock.now();
    let stopped = cluster
        .stop_leader(Elected::ControllerManager)
        .await
        .expect("the leader stops");
    assert_eq!(stopped, new_leader);
    let third = waits
        .until(
            Duration::from_secs(400),
            "a third leader",
            |s| match seen::lease_holder(s, "kube-controller-manager") {
                Some((h, _)) if h != new_leader && h != leader && !h.is_empty() => Ok(h),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
    let took = (clock.now() - stopped_at).num_milliseconds() as f64 / 1000.0;
    assert!(
        took >= 15.0 - 2.0 - 1.0,
        "the handover took only {took:.1} cluster seconds: the lease was released"
    );
    became_leader(
        &waits,
        Duration::from_secs(400),
        "kube-controller-manager",
        &third,
    )
    .await;
    // Barrier: the stopped replica has finished (stop_leader waited for it), and the watches
    // have seen every Event written in kube-system before now.
    waits.barrier().await;
    let lease_events = waits.read(|s| seen::events(s, "kube-system", "kube-controller-manager"));
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
    let cluster = cluster().time_scale(20.0).schedulers(2).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    add_node(&client, "node-a", "8").await;
    let _kubelets = FakeKubelets::start(client.clone(), cluster.clock().clone(), &["node-a"]);
    let ids: Vec<String> = cluster
        .schedulers()
        .iter()
        .map(|r| r.identity().to_string())
        .collect();
    let (leader, _) = waits
        .until(
            Duration::from_secs(200),
            "a scheduler leader",
            |s| match seen::lease_holder(s, "kube-scheduler") {
                Some((h, t)) if ids.contains(&h) => Ok((h, t)),
                other => Err(format!("{other:?}")),
            },
        )
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
    waits
        .until(
            Duration::from_secs(400),
            "the new scheduler leader to bind the pod",
            |s| match seen::pod(s, "late").and_then(|p| p.spec.as_ref()?.node_name.clone()) {
                Some(n) => Ok(n),
                None => Err(format!(
                    "unbound; lease {:?}",
                    seen::lease_holder(s, "kube-scheduler")
                )),
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
    let cluster = cluster().time_scale(100.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
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
    waits
        .until(minutes(50), "2 pods on node-a", |s| {
            let on_a = seen::pods_of(s, "web")
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
    let node: Node = waits
        .until(
            minutes(50),
            "node-a Ready=Unknown and tainted unreachable",
            |s| {
                let Some(n) = seen::node(s, "node-a") else {
                    return Err("no node-a".into());
                };
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
                    Some(c) if c.status == "Unknown" && tainted => Ok(n.clone()),
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
    let evicted: Vec<String> = waits
        .until(minutes(100), "2 Running pods on node-b", |s| {
            let pods = seen::pods_of(s, "web");
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
        })
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

/// A watch on `api` from its current state (initial ADDED events first) until an object
/// satisfies `found`, for at most `within` of cluster time. The watch is returned still open
/// (the apiserver counts it until it is dropped).
async fn watch_until<K>(
    api: &Api<K>,
    params: &WatchParams,
    clock: &kubespec::clock::Clock,
    within: Duration,
    what: &str,
    found: impl Fn(&K) -> bool,
) -> impl futures::Stream<Item = kube::Result<kube::api::WatchEvent<K>>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + 'static,
{
    use kube::api::WatchEvent;
    let mut stream = api
        .watch(&params.clone().timeout(u32::MAX), "0")
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    let wait = async {
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                WatchEvent::Added(o) | WatchEvent::Modified(o) if found(&o) => return,
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    seen.push(o.meta().name.clone().unwrap_or_default())
                }
                _ => {}
            }
        }
        panic!("the watch for {what} ended");
    };
    clock.timeout(within, wait).await.unwrap_or_else(|_| {
        panic!("timed out after {within:?} (cluster time) waiting for {what}; saw {seen:?}")
    });
    stream
}

#[tokio::test]
async fn a_controller_manager_opens_one_watch_per_resource() {
    let cluster = cluster().time_scale(20.0).schedulers(0).start().await;
    let client = cluster.client().unwrap();
    let clock = cluster.clock().clone();
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
    // Barriers: every control loop has started (each starts its informers before anything
    // else), as its work shows. The test watches for that work itself, and holds those four
    // watches open while it counts.
    let within = minutes(10);
    let all = WatchParams::default();
    let replicasets = watch_until(
        &Api::<ReplicaSet>::default_namespaced(client.clone()),
        &all,
        &clock,
        within,
        "a ReplicaSet",
        |_| true,
    )
    .await;
    let endpoints = watch_until(
        &Api::<k8s_openapi::api::core::v1::Endpoints>::default_namespaced(client.clone()),
        &all,
        &clock,
        within,
        "the Endpoints web",
        |e| e.metadata.name.as_deref() == Some("web"),
    )
    .await;
    let accounts = watch_until(
        &Api::<k8s_openapi::api::core::v1::ServiceAccount>::default_namespaced(client.clone()),
        &all,
        &clock,
        within,
        "the ServiceAccount default",
        |a| a.metadata.name.as_deref() == Some("default"),
    )
    .await;
    let root_ca = watch_until(
        &Api::<k8s_openapi::api::core::v1::ConfigMap>::default_namespaced(client.clone()),
        &all,
        &clock,
        within,
        "the ConfigMap kube-root-ca.crt",
        |c| c.metadata.name.as_deref() == Some("kube-root-ca.crt"),
    )
    .await;
    let registered = watch_until(
        &Api::<k8s_openapi::api::core::v1::Event>::default_namespaced(client.clone()),
        &WatchParams::default().fields("involvedObject.name=node-a"),
        &clock,
        within,
        "the RegisteredNode event of node-a",
        |e| {
            e.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("RegisteredNode"))
        },
    )
    .await;
    // Deployments, ReplicaSets, DaemonSets, ControllerRevisions, Jobs, Pods, Nodes, Services,
    // Endpoints, EndpointSlices, Namespaces, ServiceAccounts, ConfigMaps and node Leases: one
    // watch each, however many loops read them.
    let own = 5;
    assert_eq!(
        cluster.apiserver().open_watches(),
        14 + own,
        "14 watches of the controller-manager and the test's own {own}"
    );
    drop((replicasets, endpoints, accounts, root_ca, registered));
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

/// client-go's EventCorrelator as a real replicaset-controller runs it: 30 `Created pod:` events
/// about one ReplicaSet are 9 events of their own, then one `(combined from similar events): ...`
/// event from the 10th distinct message on, which the spam filter (burst 25 per source and
/// object) stops writing after the 25th: it shows count 16, not 21.
#[tokio::test]
async fn thirty_replicas_give_nine_created_events_and_one_combined_one() {
    let cluster = cluster().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    Api::<Deployment>::default_namespaced(client.clone())
        .create(&PostParams::default(), &deployment("web", 30, "nginx:1.27"))
        .await
        .unwrap();
    let is_rs_event = |e: &k8s_openapi::api::core::v1::Event| {
        e.involved_object.kind.as_deref() == Some("ReplicaSet")
            && e.reason.as_deref() == Some("SuccessfulCreate")
    };
    waits
        .until(
            Duration::from_secs(60),
            "30 pods and the combined event at count 16",
            |s| {
                let pods = seen::pods_of(s, "web").len();
                let combined = s
                    .of_kind(Kind::Event)
                    .filter_map(|o| match o {
                        Object::Event(e) if is_rs_event(e) => Some(e),
                        _ => None,
                    })
                    .find(|e| {
                        e.message
                            .as_deref()
                            .is_some_and(|m| m.starts_with("(combined from similar events): "))
                    })
                    .and_then(|e| e.count);
                if pods == 30 && combined == Some(16) {
                    Ok(())
                } else {
                    Err(format!("{pods} pods, combined event count {combined:?}"))
                }
            },
        )
        .await;
    // Nothing more arrives: the last five creations were dropped by the spam filter.
    cluster.clock().sleep(Duration::from_secs(5)).await;
    waits.barrier().await;
    let events: Vec<k8s_openapi::api::core::v1::Event> =
        Api::<k8s_openapi::api::core::v1::Event>::default_namespaced(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(is_rs_event)
            .collect();
    let pods: HashSet<String> = list_pods(&client, "web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let mut separate = 0;
    let mut combined = Vec::new();
    for e in &events {
        let message = e.message.clone().unwrap_or_default();
        let source = e.source.clone().unwrap_or_default();
        assert_eq!(source.component.as_deref(), Some("replicaset-controller"));
        if let Some(pod) = message.strip_prefix("(combined from similar events): Created pod: ") {
            assert!(pods.contains(pod), "{message}");
            // Upstream builds the aggregate without the reporting fields.
            assert_eq!(e.reporting_component.as_deref(), Some(""), "{e:?}");
            combined.push(e.count);
        } else {
            let pod = message.strip_prefix("Created pod: ").unwrap_or_default();
            assert!(pods.contains(pod), "{message}");
            assert_eq!(e.count, Some(1), "{e:?}");
            assert_eq!(
                e.reporting_component.as_deref(),
                Some("replicaset-controller")
            );
            separate += 1;
        }
    }
    assert_eq!(
        (separate, combined),
        (9, vec![Some(16)]),
        "{:#?}",
        describe_events(events.clone())
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
