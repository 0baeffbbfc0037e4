//! The reference kubelet end to end: real images' behaviour, probes, restarts and back-off,
//! image pulls, volumes, restart policies and termination, observed only through the API.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use kubespec::harness::timeline::{Kind, Object, State};
use serde_json::json;
use support::{cluster, events_for, minutes, seen, Waits};

/// A cluster at 20x (ten minutes of cluster time are half a minute of wall time) with one node,
/// and watches on it.
async fn one_node() -> (kubespec::cluster::RunningCluster, Client, Waits) {
    let cluster = cluster().time_scale(20.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    (cluster, client, waits)
}

async fn create_pod(client: &Client, pod: serde_json::Value) -> Api<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    pods
}

fn container_status(pod: &Pod) -> serde_json::Value {
    serde_json::to_value(pod).unwrap()["status"]["containerStatuses"][0].clone()
}

/// Whether the first container of pod `name` runs; else its status.
fn running(s: &State, name: &str) -> Result<(), String> {
    let cs = seen::container_status(s, name);
    if cs["state"]["running"].is_object() {
        Ok(())
    } else {
        Err(cs.to_string())
    }
}

/// Pod `name` (as JSON) once it is in `phase`; else its status.
fn in_phase(s: &State, name: &str, phase: &str) -> Result<serde_json::Value, String> {
    let p = seen::pod_json(s, name);
    if p["status"]["phase"] == phase {
        Ok(p)
    } else {
        Err(p["status"].to_string())
    }
}

/// Whether pod `name` is gone.
fn gone(s: &State, name: &str) -> Result<(), String> {
    match seen::pod(s, name) {
        None => Ok(()),
        Some(p) => Err(format!("still there: {:?}", p.status)),
    }
}

fn ts(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or("1970-01-01T00:00:00Z"))
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

#[tokio::test]
async fn agnhost_liveness_fails_its_probe_and_restarts_with_growing_back_off() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "liveness-http"}, "spec": {"containers": [{
        "name": "liveness", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53", "args": ["liveness"],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3, "periodSeconds": 3}}]}}))
    .await;
    // Record every restart: (terminated at, restarted at), as each version of the pod's status
    // the watch delivers shows them.
    let mut restarts: Vec<(i64, i64)> = Vec::new();
    let mut next = 0;
    let restarts = waits
        .until(minutes(20), "4 restarts", |s: &State| {
            for entry in &s.entries[next..] {
                let Some(Object::Pod(p)) = entry.object.as_deref() else {
                    continue;
                };
                if entry.key.kind != Kind::Pod || entry.key.name != "liveness-http" {
                    continue;
                }
                let cs = container_status(p);
                let count = cs["restartCount"].as_i64().unwrap_or(0) as usize;
                if count > restarts.len() && cs["state"]["running"].is_object() {
                    assert_eq!(count, restarts.len() + 1, "a restart went unobserved: {cs}");
                    restarts.push((
                        ts(&cs["lastState"]["terminated"]["finishedAt"]),
                        ts(&cs["state"]["running"]["startedAt"]),
                    ));
                }
            }
            next = s.entries.len();
            if restarts.len() >= 4 {
                Ok(restarts.clone())
            } else {
                Err(format!("{restarts:?}"))
            }
        })
        .await;
    // First restart at once, then 10, 20, 40 s of back-off (±10%, 1 s timestamp precision).
    let gaps: Vec<i64> = restarts.iter().map(|(end, start)| start - end).collect();
    assert!(gaps[0] <= 2, "first restart is immediate: {gaps:?}");
    for (gap, want) in gaps[1..].iter().zip([10i64, 20, 40]) {
        assert!(
            (*gap - want).abs() <= (want / 10).max(2),
            "back-off gaps {gaps:?}, wanted 0, 10, 20, 40"
        );
    }
    let events = events_for(&client, "default", "liveness-http").await;
    let has = |prefix: &str| events.iter().any(|e| e.starts_with(prefix));
    assert!(
        has("Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500"),
        "{events:?}"
    );
    assert!(
        has("Killing: Container liveness failed liveness probe, will be restarted"),
        "{events:?}"
    );
    assert!(
        has("BackOff: Back-off restarting failed container liveness in pod liveness-http_default("),
        "{events:?}"
    );
    assert!(has("Pulled: "), "{events:?}");
    assert!(has("Created: Created container: liveness"), "{events:?}");
    assert!(has("Started: Started container liveness"), "{events:?}");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn the_busybox_liveness_exec_example_restarts_after_about_thirty_seconds() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "liveness-exec"}, "spec": {"containers": [{
        "name": "liveness", "image": "registry.k8s.io/busybox:1.27.2",
        "args": ["/bin/sh", "-c", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 5, "periodSeconds": 5}}]}}))
    .await;
    let cs = waits
        .until(minutes(10), "a restart", |s| {
            let cs = seen::container_status(s, "liveness-exec");
            if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                Ok(cs)
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    // The file goes at 30 s; three failed probes 5 s apart get the container killed, and sh
    // (PID 1 ignores SIGTERM) dies when the 30 s grace period ends.
    let started = ts(&cs["lastState"]["terminated"]["startedAt"]);
    let events = Api::<k8s_openapi::api::core::v1::Event>::default_namespaced(client.clone())
        .list(
            &kube::api::ListParams::default()
                .fields("involvedObject.name=liveness-exec,reason=Killing"),
        )
        .await
        .unwrap();
    let killing = serde_json::to_value(&events.items[0]).unwrap();
    let decided = ts(&killing["firstTimestamp"]) - started;
    assert!(
        (30..=50).contains(&decided),
        "the liveness probe killed the container {decided} s after it started"
    );
    assert_eq!(
        killing["message"],
        "Container liveness failed liveness probe, will be restarted"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 137, "{cs}");
    let events = events_for(&client, "default", "liveness-exec").await;
    assert!(events.iter().any(|e| e.starts_with("Unhealthy: Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory")), "{events:?}");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_failing_readiness_probe_keeps_the_pod_out_of_ready_endpoints() {
    let (cluster, client, waits) = one_node().await;
    let services: Api<Service> = Api::default_namespaced(client.clone());
    services
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap())
        .await
        .unwrap();
    create_pod(&client, json!({"metadata": {"name": "ready", "labels": {"app": "web"}}, "spec": {"containers": [{
        "name": "nginx", "image": "nginx:1.27", "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 2}}]}})).await;
    create_pod(&client, json!({"metadata": {"name": "unready", "labels": {"app": "web"}}, "spec": {"containers": [{
        "name": "nginx", "image": "nginx:1.27", "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2}}]}})).await;
    waits
        .until(
            minutes(10),
            "ready in addresses, unready in notReadyAddresses",
            |s| {
                let Some(ep) = seen::endpoints(s, "web") else {
                    return Err("no endpoints".into());
                };
                let subsets = serde_json::to_value(&ep.subsets).unwrap();
                let names = |key: &str| -> Vec<String> {
                    subsets
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|s| s[key].as_array().cloned().unwrap_or_default())
                        .map(|a| a["targetRef"]["name"].as_str().unwrap_or("").to_string())
                        .collect()
                };
                if names("addresses") == ["ready"] && names("notReadyAddresses") == ["unready"] {
                    Ok(())
                } else {
                    Err(subsets.to_string())
                }
            },
        )
        .await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let unready = serde_json::to_value(pods.get("unready").await.unwrap()).unwrap();
    let ready_cond = unready["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready_cond["status"], "False");
    assert_eq!(ready_cond["reason"], "ContainersNotReady");
    assert_eq!(
        ready_cond["message"],
        "containers with unready status: [nginx]"
    );
    assert_eq!(unready["status"]["phase"], "Running");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_nonexistent_image_backs_off_and_recovers_once_fixed() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "typo"}, "spec": {"containers": [{"name": "app", "image": "nginx:no-such-tag"}]}})).await;
    waits
        .until(minutes(10), "ImagePullBackOff", |s| {
            let cs = seen::container_status(s, "typo");
            if cs["state"]["waiting"]["reason"] == "ImagePullBackOff" {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    let events = events_for(&client, "default", "typo").await;
    let has = |s: &str| events.iter().any(|e| e.starts_with(s));
    assert!(
        has("Failed: Failed to pull image \"nginx:no-such-tag\": rpc error: code = NotFound"),
        "{events:?}"
    );
    assert!(has("Failed: Error: ErrImagePull"), "{events:?}");
    assert!(
        has("BackOff: Back-off pulling image \"nginx:no-such-tag\""),
        "{events:?}"
    );
    assert!(has("Failed: Error: ImagePullBackOff"), "{events:?}");
    pods.patch(
        "typo",
        &PatchParams::default(),
        &Patch::Strategic(
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
        ),
    )
    .await
    .unwrap();
    waits
        .until(minutes(20), "the fixed image to run", |s| {
            running(s, "typo")
        })
        .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_missing_secret_volume_holds_the_pod_until_the_secret_exists() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "needs-secret"}, "spec": {
        "volumes": [{"name": "creds", "secret": {"secretName": "creds"}}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "cat /etc/creds/token; sleep 3600"],
            "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}]}]}}))
    .await;
    waits
        .until(minutes(10), "FailedMount", |s| {
            let events = seen::events(s, "default", "needs-secret");
            let want = "FailedMount: MountVolume.SetUp failed for volume \"creds\" : secret \"creds\" not found";
            if events.iter().any(|e| e.starts_with(want)) { Ok(()) } else { Err(format!("{events:?}")) }
        })
        .await;
    let cs = container_status(&pods.get("needs-secret").await.unwrap());
    assert_eq!(
        cs["state"]["waiting"]["reason"], "ContainerCreating",
        "{cs}"
    );
    Api::<Secret>::default_namespaced(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod to run", |s| {
            running(s, "needs-secret")
        })
        .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn restart_policies_decide_succeeded_and_failed() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "fails"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}]}})).await;
    create_pod(&client, json!({"metadata": {"name": "succeeds"}, "spec": {"restartPolicy": "OnFailure",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo done; exit 0"]}]}})).await;
    for (name, phase, reason, code) in [
        ("fails", "Failed", "Error", 1),
        ("succeeds", "Succeeded", "Completed", 0),
    ] {
        let pod = waits
            .until(minutes(10), &format!("{name} {phase}"), |s| {
                in_phase(s, name, phase)
            })
            .await;
        let t = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (t["reason"].as_str(), t["exitCode"].as_i64()),
            (Some(reason), Some(code)),
            "{pod}"
        );
        assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_deleted_pod_terminates_within_its_grace_period() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "stubborn"}, "spec": {"terminationGracePeriodSeconds": 10,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}})).await;
    waits
        .until(minutes(10), "running", |s| running(s, "stubborn"))
        .await;
    let clock = cluster.clock().clone();
    let asked = clock.now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod gone", |s| gone(s, "stubborn"))
        .await;
    let took = (clock.now() - asked).num_milliseconds() as f64 / 1000.0;
    // sh ignores SIGTERM, so it is killed when the 10 s grace period ends.
    assert!(
        (9.0..=14.0).contains(&took),
        "termination took {took:.1} cluster seconds"
    );
    let events = events_for(&client, "default", "stubborn").await;
    assert!(
        events.contains(&"Killing: Stopping container app".to_string()),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_silent_kubelet_loses_its_node_and_its_pods_move() {
    // 100x: fifty minutes of cluster time are half a minute of wall time.
    let cluster = cluster().time_scale(100.0).nodes(2).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    let d = support::deployment("web", 2, "nginx:1.27");
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let running_on = |s: &State, node: &str| {
        s.pods()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count()
    };
    // The scheduler spreads them: one on each node, so node-1's is the one that must move.
    waits
        .until(minutes(50), "1 running pod on each node", |s| {
            let (one, two) = (running_on(s, "node-1"), running_on(s, "node-2"));
            if (one, two) == (1, 1) {
                Ok(())
            } else {
                Err(format!("node-1 {one}, node-2 {two}"))
            }
        })
        .await;
    cluster.kubelets()[0].set_silent(true);
    waits
        .until(minutes(100), "both pods running on node-2", |s| {
            let n = running_on(s, "node-2");
            if n == 2 {
                Ok(())
            } else {
                Err(format!("{n} on node-2"))
            }
        })
        .await;
    let node = serde_json::to_value(
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .get("node-1")
            .await
            .unwrap(),
    )
    .unwrap();
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "Unknown");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn init_containers_run_first_and_a_failing_one_holds_or_fails_the_pod() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "ordered"}, "spec": {
        "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "echo preparing; sleep 5"]}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    let pod = waits
        .until(
            minutes(10),
            "the app container running after setup completed",
            |s| {
                let p = seen::pod_json(s, "ordered");
                if p["status"]["containerStatuses"][0]["state"]["running"].is_object() {
                    Ok(p)
                } else {
                    Err(p["status"].to_string())
                }
            },
        )
        .await;
    let init = &pod["status"]["initContainerStatuses"][0];
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{pod}");
    assert!(
        ts(&pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
            >= ts(&init["state"]["terminated"]["finishedAt"])
    );

    create_pod(&client, json!({"metadata": {"name": "blocked"}, "spec": {
        "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    let pod = waits
        .until(minutes(10), "the init container crash-looping", |s| {
            let p = seen::pod_json(s, "blocked");
            let init = &p["status"]["initContainerStatuses"][0];
            if init["restartCount"].as_i64().unwrap_or(0) >= 2 {
                Ok(p)
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    let initialized = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Initialized")
        .unwrap()
        .clone();
    assert_eq!(
        (
            initialized["status"].as_str(),
            initialized["reason"].as_str()
        ),
        (Some("False"), Some("ContainersNotInitialized"))
    );
    assert_eq!(
        initialized["message"],
        "containers with incomplete status: [setup]"
    );

    create_pod(&client, json!({"metadata": {"name": "doomed"}, "spec": {"restartPolicy": "Never",
        "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    waits
        .until(minutes(10), "the pod Failed", |s| {
            in_phase(s, "doomed", "Failed")
        })
        .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_static_pod_file_appears_as_a_mirror_pod_and_goes_with_the_file() {
    let cluster = cluster().time_scale(20.0).apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = kubespec::kubelet::KubeletConfig::new("edge-1");
    config.pod_manifest_path = Some(dir.path().to_path_buf());
    let stop = tokio_util::sync::CancellationToken::new();
    let (_handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.27\n").unwrap();
    let mirror = waits
        .until(
            minutes(10),
            "the mirror pod web-edge-1 running",
            |s| match seen::pod(s, "web-edge-1") {
                Some(p)
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") =>
                {
                    Ok(p.clone())
                }
                other => Err(format!("{:?}", other.map(|p| &p.status))),
            },
        )
        .await;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations.contains_key("kubernetes.io/config.mirror"),
        "{annotations:?}"
    );
    assert_eq!(
        annotations
            .get("kubernetes.io/config.source")
            .map(String::as_str),
        Some("file")
    );
    let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "edge-1")
    );
    std::fs::remove_file(&manifest).unwrap();
    waits
        .until(minutes(10), "the mirror pod gone", |s| {
            gone(s, "web-edge-1")
        })
        .await;
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_manifest_url_is_polled_for_static_pods() {
    let cluster = cluster().time_scale(20.0).apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    // A tiny manifest server on loopback.
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-url\nspec:\n  containers:\n  - name: pause\n    image: registry.k8s.io/pause:3.10\n";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/pods.yaml",
            axum::routing::get(move || async move { manifest }),
        );
        let _ = axum::serve(listener, app).await;
    });
    let mut config = kubespec::kubelet::KubeletConfig::new("edge-2");
    config.manifest_url = Some(format!("http://{addr}/pods.yaml"));
    let stop = tokio_util::sync::CancellationToken::new();
    let (_handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let mirror = waits
        .until(minutes(10), "the mirror pod from-url-edge-2", |s| {
            seen::pod(s, "from-url-edge-2")
                .cloned()
                .ok_or_else(|| "not yet".to_string())
        })
        .await;
    let source = mirror
        .metadata
        .annotations
        .unwrap_or_default()
        .get("kubernetes.io/config.source")
        .cloned();
    assert_eq!(source.as_deref(), Some("http"));
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn lifecycle_hooks_and_termination_messages() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "hooked"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 2; cat /tmp/hook; sleep 3600"],
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo post-start ran > /tmp/hook"]}},
                      "preStop": {"exec": {"command": ["sh", "-c", "exit 3"]}}}}]}}))
    .await;
    waits
        .log_until(
            &pods,
            "hooked",
            None,
            minutes(10),
            "the postStart hook's file in the logs",
            |l| l == "post-start ran\n",
        )
        .await;
    pods.delete("hooked", &DeleteParams::default().grace_period(2))
        .await
        .unwrap();
    waits
        .until(minutes(10), "FailedPreStopHook", |s| {
            let events = seen::events(s, "default", "hooked");
            if events.iter().any(|e| e.starts_with("FailedPreStopHook: Exec lifecycle hook ([\"sh\", \"-c\", \"exit 3\"]) for Container \"app\" in Pod \"hooked_default(")) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;

    create_pod(
        &client,
        json!({"metadata": {"name": "bad-hook"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}}}]}}),
    )
    .await;
    waits
        .until(
            minutes(10),
            "a restart after the failed postStart hook",
            |s| {
                let cs = seen::container_status(s, "bad-hook");
                let events = seen::events(s, "default", "bad-hook");
                let hook_failed = events
                    .iter()
                    .any(|e| e.starts_with("FailedPostStartHook: "));
                if hook_failed && cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                    Ok(())
                } else {
                    Err(format!("{cs} {events:?}"))
                }
            },
        )
        .await;

    create_pod(&client, json!({"metadata": {"name": "explains"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "file", "image": "busybox:1.36", "command": ["sh", "-c", "echo it broke > /dev/termination-log; exit 1"]},
        {"name": "logs", "image": "busybox:1.36", "terminationMessagePolicy": "FallbackToLogsOnError", "command": ["sh", "-c", "echo from the logs; exit 2"]}]}}))
    .await;
    let pod = waits
        .until(minutes(10), "both containers terminated", |s| {
            in_phase(s, "explains", "Failed")
        })
        .await;
    let message = |name: &str| {
        pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["state"]["terminated"]["message"]
            .clone()
    };
    assert_eq!(message("file"), "it broke\n");
    assert_eq!(message("logs"), "from the logs\n");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

async fn kubelet_get(client: &Client, node: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = serde_json::to_value(
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .get(node)
            .await
            .unwrap(),
    )
    .unwrap();
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap() as u16;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_kubelet_serves_health_pods_metrics_and_stats() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "probed"}, "spec": {"containers": [{
        "name": "nginx", "image": "nginx:1.27", "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}]}}))
    .await;
    waits
        .until(minutes(10), "the pod ready", |s| {
            let p = seen::pod_json(s, "probed");
            if p["status"]["containerStatuses"][0]["ready"] == true {
                Ok(())
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    assert_eq!(kubelet_get(&client, "node-1", "/healthz").await, "ok");
    let listed: serde_json::Value =
        serde_json::from_str(&kubelet_get(&client, "node-1", "/pods").await).unwrap();
    assert_eq!(listed["items"][0]["metadata"]["name"], "probed");
    let metrics = kubelet_get(&client, "node-1", "/metrics").await;
    assert!(metrics.contains("kubelet_running_pods 1\n"), "{metrics}");
    assert!(
        metrics.contains("kubelet_running_containers{container_state=\"running\"} 1\n"),
        "{metrics}"
    );
    let probes = kubelet_get(&client, "node-1", "/metrics/probes").await;
    assert!(
        probes.contains(
            "prober_probe_total{container=\"nginx\",namespace=\"default\",pod=\"probed\""
        ),
        "{probes}"
    );
    assert!(
        probes.contains("probe_type=\"Readiness\",result=\"successful\"}"),
        "{probes}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&kubelet_get(&client, "node-1", "/stats/summary").await).unwrap();
    assert_eq!(summary["node"]["nodeName"], "node-1");
    assert_eq!(summary["pods"][0]["containers"][0]["name"], "nginx");
    assert!(
        summary["pods"][0]["containers"][0]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_empty_dir_written_by_an_init_container_is_read_by_the_app_and_config_maps_mount() {
    let (cluster, client, waits) = one_node().await;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::default_namespaced(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "settings"}, "data": {"greeting": "hello"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let pods = create_pod(&client, json!({"metadata": {"name": "handoff"}, "spec": {
        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "settings", "configMap": {"name": "settings"}}],
        "initContainers": [{"name": "prepare", "image": "busybox:1.36", "command": ["sh", "-c", "echo prepared > /work/state"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "cat /data/state /etc/settings/greeting; sleep 3600"],
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "work", "mountPath": "/data"}, {"name": "settings", "mountPath": "/etc/settings"}]}]}}))
    .await;
    waits
        .log_until(
            &pods,
            "handoff",
            Some("app"),
            minutes(10),
            "the app's logs",
            |l| l == "prepared\nhello" || l == "prepared\nhello\n",
        )
        .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn user_image_models_run_like_the_images_they_describe() {
    let models =
        kubespec::kubelet::runtime::models::load(std::path::Path::new("fixtures/images.yaml"))
            .unwrap();
    let cluster = cluster()
        .time_scale(20.0)
        .nodes(1)
        .image_models(models.images)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods = create_pod(
        &client,
        json!({"metadata": {"name": "checkout"}, "spec": {"containers": [{
        "name": "app", "image": "example.com/shop/checkout:1.1",
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2}}]}}),
    )
    .await;
    create_pod(&client, json!({"metadata": {"name": "migrate"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "example.com/shop/migrate"}]}})).await;
    create_pod(&client, json!({"metadata": {"name": "old"}, "spec": {"containers": [{"name": "app", "image": "example.com/shop/checkout:0.9"}]}})).await;
    waits
        .until(
            minutes(20),
            "checkout ready, migrate done, old failing to pull",
            |s| {
                let ready = seen::container_status(s, "checkout")["ready"] == true;
                let migrated = seen::pod_json(s, "migrate")["status"]["phase"] == "Succeeded";
                let old = seen::container_status(s, "old")["state"]["waiting"]["reason"].clone();
                if ready && migrated && (old == "ErrImagePull" || old == "ImagePullBackOff") {
                    Ok(())
                } else {
                    Err(format!("{ready} {migrated} {old}"))
                }
            },
        )
        .await;
    assert_eq!(
        pods.logs("migrate", &Default::default()).await.unwrap(),
        "migrate: applying 3 migrations\nmigrate: done\n"
    );
    // After 120 s its /healthz answers 503, and readiness follows.
    waits
        .until(minutes(10), "checkout unready after it degrades", |s| {
            let cs = seen::container_status(s, "checkout");
            if cs["ready"] == false {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    let events = events_for(&client, "default", "checkout").await;
    assert!(
        events.iter().any(|e| e.starts_with(
            "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
        )),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn with_a_token_the_kubelet_serves_only_health_to_strangers() {
    let cluster = cluster()
        .time_scale(20.0)
        .nodes(1)
        .kubelet_token("s3cret")
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods = create_pod(&client, json!({"metadata": {"name": "talker"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"]}]}})).await;
    waits
        .until(minutes(10), "the pod done", |s| {
            in_phase(s, "talker", "Succeeded")
        })
        .await;
    assert_eq!(kubelet_get(&client, "node-1", "/healthz").await, "ok");
    assert_eq!(
        kubelet_get(&client, "node-1", "/metrics").await,
        "Unauthorized"
    );
    assert_eq!(
        kubelet_get(&client, "node-1", "/containerLogs/default/talker/app").await,
        "Unauthorized"
    );
    // The apiserver presents the token: kubectl logs still works.
    assert_eq!(
        pods.logs("talker", &Default::default()).await.unwrap(),
        "hi\n"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn config_errors_invalid_images_and_the_downward_api() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "needs-config"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}}]}]}}))
    .await;
    create_pod(&client, json!({"metadata": {"name": "shouty"}, "spec": {"containers": [{"name": "app", "image": "Nginx:1.27"}]}})).await;
    create_pod(&client, json!({"metadata": {"name": "introspect", "labels": {"tier": "web"}}, "spec": {"restartPolicy": "Never", "containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo $POD_NAME $POD_NAMESPACE $NODE; cat /etc/podinfo/labels"],
        "resources": {"limits": {"memory": "64Mi"}},
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}]}],
        "volumes": [{"name": "podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}))
    .await;
    waits
        .until(
            minutes(10),
            "CreateContainerConfigError and InvalidImageName",
            |s| {
                let config = seen::container_status(s, "needs-config")["state"]["waiting"].clone();
                let invalid = seen::container_status(s, "shouty")["state"]["waiting"].clone();
                if config["reason"] == "CreateContainerConfigError"
                    && invalid["reason"] == "InvalidImageName"
                {
                    Ok((config, invalid))
                } else {
                    Err(format!("{config} {invalid}"))
                }
            },
        )
        .await;
    let config = container_status(&pods.get("needs-config").await.unwrap());
    assert_eq!(
        config["state"]["waiting"]["message"],
        "configmap \"app-config\" not found"
    );
    let events = events_for(&client, "default", "needs-config").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Failed: Error: configmap \"app-config\" not found")),
        "{events:?}"
    );
    let logs = waits
        .log_until(
            &pods,
            "introspect",
            None,
            minutes(10),
            "introspect's output",
            |l| !l.is_empty(),
        )
        .await;
    assert_eq!(logs, "introspect default node-1\ntier=\"web\"");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn sidecars_start_before_the_app_and_active_deadlines_fail_pods() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "with-sidecar"}, "spec": {
        "initContainers": [{"name": "proxy", "image": "nginx:1.27", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    let pod = waits
        .until(minutes(10), "sidecar and app both running", |s| {
            let p = seen::pod_json(s, "with-sidecar");
            let sidecar = &p["status"]["initContainerStatuses"][0]["state"]["running"];
            let app = &p["status"]["containerStatuses"][0]["state"]["running"];
            if sidecar.is_object() && app.is_object() {
                Ok(p)
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    let sidecar_start =
        ts(&pod["status"]["initContainerStatuses"][0]["state"]["running"]["startedAt"]);
    assert!(
        sidecar_start
            <= ts(&pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    );
    assert_eq!(pod["status"]["phase"], "Running");

    create_pod(&client, json!({"metadata": {"name": "deadline"}, "spec": {"activeDeadlineSeconds": 10, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    let p = waits
        .until(minutes(10), "DeadlineExceeded", |s| {
            in_phase(s, "deadline", "Failed")
        })
        .await;
    assert_eq!(p["status"]["reason"], "DeadlineExceeded", "{p}");
    assert_eq!(
        p["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn without_registration_the_kubelet_waits_for_its_node() {
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let mut config = kubespec::kubelet::KubeletConfig::new("pre-made");
    config.register_node = false;
    let stop = tokio_util::sync::CancellationToken::new();
    let (handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    // Barrier: the kubelet has looked for its Node twice (and found none).
    let mut lookups = handle.node_lookups();
    cluster
        .clock()
        .timeout(minutes(10), lookups.wait_for(|n| *n >= 2))
        .await
        .expect("the kubelet looks for its Node twice within 10 minutes (cluster time)")
        .expect("the kubelet runs");
    assert!(
        nodes.get_opt("pre-made").await.unwrap().is_none(),
        "the kubelet must not register the node itself"
    );
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "pre-made"}})).unwrap(),
        )
        .await
        .unwrap();
    waits
        .until(minutes(10), "the kubelet to take the node over", |s| {
            let n = serde_json::to_value(seen::node(s, "pre-made")).unwrap();
            if n["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.0-kubespec"
                && n["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            {
                Ok(())
            } else {
                Err(n["status"].to_string())
            }
        })
        .await;
    // Events are recorded after the status they report is written: wait for them.
    waits
        .until(minutes(10), "the start-up events", |s| {
            let events = seen::events(s, "default", "pre-made");
            let expected = [
                "Starting: Starting kubelet.",
                "NodeHasSufficientMemory: Node pre-made status is now: NodeHasSufficientMemory",
                "NodeReady: Node pre-made status is now: NodeReady",
            ];
            if expected.iter().all(|r| events.iter().any(|e| e == r)) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn logs_follow_streams_new_output() {
    use futures::{AsyncBufReadExt, TryStreamExt};
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "chatty"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo first; sleep 10; echo second; sleep 3600"]}]}}))
    .await;
    waits
        .until(minutes(10), "running", |s| running(s, "chatty"))
        .await;
    let stream = pods
        .log_stream(
            "chatty",
            &kube::api::LogParams {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut lines = stream.lines();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = cluster
            .clock()
            .timeout(Duration::from_secs(400), lines.try_next())
            .await
            .unwrap_or_else(|_| panic!("no new log line within 400 s (cluster time); saw {seen:?}"))
            .unwrap();
        match line {
            Some(l) => seen.push(l),
            None => panic!("the log stream ended early: {seen:?}"),
        }
    }
    assert_eq!(seen, ["first", "second"]);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn back_off_starts_over_for_a_container_that_ran_ten_minutes() {
    // 100x: each 700 s run takes 7 s of wall time.
    let cluster = cluster().time_scale(100.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    create_pod(
        &client,
        json!({"metadata": {"name": "long-runner"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 700; exit 1"]}]}}),
    )
    .await;
    let cs = waits
        .until(minutes(100), "the second restart", |s| {
            let cs = seen::container_status(s, "long-runner");
            if cs["restartCount"].as_i64().unwrap_or(0) >= 2 && cs["state"]["running"].is_object() {
                Ok(cs)
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    // Without the reset the second restart would wait 10 s; after a 700 s run it is immediate.
    let gap =
        ts(&cs["state"]["running"]["startedAt"]) - ts(&cs["lastState"]["terminated"]["finishedAt"]);
    assert!(gap <= 2, "restarted {gap} s after a 700 s run: {cs}");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// Wait until the pod is Failed with reason Evicted; its status.
async fn wait_evicted(waits: &Waits, name: &str) -> serde_json::Value {
    waits
        .until(minutes(20), &format!("{name} to be evicted"), |s| {
            let status = seen::pod_json(s, name)["status"].clone();
            if status["phase"] == "Failed" && status["reason"] == "Evicted" {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        })
        .await
}

#[tokio::test]
async fn an_empty_dir_over_its_size_limit_gets_its_pod_evicted_and_a_full_disk_refuses_writes() {
    let (cluster, client, waits) = one_node().await;
    let kib = "x".repeat(1023);
    // Fills its 1Mi emptyDir a KiB at a time, and goes on.
    let fill = format!("while true; do echo {kib} >> /data/fill; done");
    let pods = create_pod(
        &client,
        json!({"metadata": {"name": "filler"}, "spec": {"nodeName": "node-1",
        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Mi"}}],
        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", fill],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}),
    )
    .await;
    let evicted = wait_evicted(&waits, "filler").await;
    assert_eq!(
        evicted["message"],
        "Usage of EmptyDir volume \"data\" exceeds the limit \"1Mi\". "
    );
    let events = events_for(&client, "default", "filler").await;
    assert!(
        events
            .iter()
            .any(|e| e == "Evicted: Usage of EmptyDir volume \"data\" exceeds the limit \"1Mi\". "),
        "{events:?}"
    );

    // A container over its ephemeral-storage limit (its writable layer and its log) is evicted.
    create_pod(&client, json!({"metadata": {"name": "scratch-filler"}, "spec": {"nodeName": "node-1",
        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", format!("while true; do echo {kib} >> /scratch; done")],
            "resources": {"limits": {"ephemeral-storage": "1Mi"}}}]}}))
    .await;
    let evicted = wait_evicted(&waits, "scratch-filler").await;
    assert_eq!(
        evicted["message"],
        "Container app exceeded its local ephemeral storage limit \"1Mi\". "
    );

    // A container that appends without end to its own filesystem fills the disk share it has
    // and then gets "No space left on device", instead of the kubelet's memory.
    create_pod(&client, json!({"metadata": {"name": "disk-filler"}, "spec": {"nodeName": "node-1",
        "restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c",
            format!("while echo {kib}{kib}{kib}{kib} >> /grow; do :; done; echo disk full; exit 3")]}]}}))
    .await;
    let status = waits
        .until(minutes(40), "the disk filler to stop on a full disk", |s| {
            let cs = seen::container_status(s, "disk-filler");
            if cs["state"]["terminated"].is_object() {
                Ok(cs)
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    assert_eq!(status["state"]["terminated"]["exitCode"], 3, "{status}");
    let logs = pods.logs("disk-filler", &Default::default()).await.unwrap();
    assert!(
        logs.contains("No space left on device") && logs.ends_with("disk full\n"),
        "{logs}"
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
