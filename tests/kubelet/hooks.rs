//! How the kubelet kills containers and reports hooks, as 1.33 does: the two seconds a container
//! always gets after SIGTERM, hook failures without detail in their events, init containers'
//! events on `spec.initContainers{..}`, and a finished pod's sandbox going away.

use super::*;

/// Every version of pod `name` the watches saw, as JSON, oldest first.
fn versions(s: &State, name: &str) -> Vec<serde_json::Value> {
    s.entries
        .iter()
        .filter_map(|e| match e.object.as_deref() {
            Some(Object::Pod(p)) if p.metadata.name.as_deref() == Some(name) => {
                Some(serde_json::to_value(p).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// The events about pod `name` as `reason: message @ fieldPath`.
fn events_with_paths(s: &State, name: &str) -> Vec<String> {
    s.event_entries()
        .filter(|(_, e)| e.involved_object.name.as_deref() == Some(name))
        .map(|(_, e)| {
            format!(
                "{}: {} @ {}",
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
                e.involved_object.field_path.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_pre_stop_hook_that_uses_up_the_grace_period_still_leaves_two_seconds() {
    let (cluster, client, waits) = one_node().await;
    // sh ignores SIGTERM, and the hook outlasts the 4 s grace period: the kubelet gives up on
    // the hook after 4 s, then still waits 2 s after SIGTERM before SIGKILL.
    let pods = create_pod(&client, json!({"metadata": {"name": "slow-stop"}, "spec": {"terminationGracePeriodSeconds": 4,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
            "lifecycle": {"preStop": {"sleep": {"seconds": 60}}}}]}}))
    .await;
    waits
        .until(minutes(10), "running", |s| running(s, "slow-stop"))
        .await;
    let clock = cluster.clock().clone();
    let asked = clock.now();
    pods.delete("slow-stop", &DeleteParams::default())
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod gone", |s| gone(s, "slow-stop"))
        .await;
    let took = (clock.now() - asked).num_milliseconds() as f64 / 1000.0;
    assert!(
        (5.5..=9.0).contains(&took),
        "4 s for the hook, then 2 s after SIGTERM: termination took {took:.1} cluster seconds"
    );
    let events = events_for(&client, "default", "slow-stop").await;
    assert!(
        events.contains(&"Killing: Stopping container app".to_string()),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("FailedPreStopHook")),
        "a hook cut short by the grace period is no failure: {events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn hook_failures_keep_their_detail_out_of_events() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "bad-hook"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo oops >&2; exit 1"]}}}}]}}))
    .await;
    let uid = waits
        .until(minutes(10), "a restart after the failed hook", |s| {
            let cs = seen::container_status(s, "bad-hook");
            if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                Ok(seen::pod(s, "bad-hook")
                    .and_then(|p| p.metadata.uid.clone())
                    .unwrap_or_default())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    // The detail goes only into the container's waiting state, until the back-off takes over.
    let expected = format!(
        "Exec lifecycle hook ([sh -c echo oops >&2; exit 1]) for Container \"app\" in Pod \"bad-hook_default({uid})\" failed - error: command 'sh -c echo oops >&2; exit 1' exited with 1: oops\n, message: \"oops\\n\""
    );
    let waiting: Vec<serde_json::Value> = waits.read(|s| {
        versions(s, "bad-hook")
            .iter()
            .map(|p| p["status"]["containerStatuses"][0]["state"]["waiting"].clone())
            .filter(|w| w["reason"] == "PostStartHookError")
            .collect()
    });
    assert!(
        waiting.iter().any(|w| w["message"] == expected.as_str()),
        "expected a PostStartHookError waiting state with {expected:?}; saw {waiting:?}"
    );
    let events = events_for(&client, "default", "bad-hook").await;
    // Each restart fails its hook again: the events repeat (` (xN)`).
    let has = |s: &str| events.iter().any(|e| e.starts_with(s));
    assert!(
        has("FailedPostStartHook: PostStartHook failed"),
        "{events:?}"
    );
    assert!(has("Killing: FailedPostStartHook"), "{events:?}");
    assert!(
        !events.iter().any(|e| e.contains("lifecycle hook")),
        "no event carries the hook's detail: {events:?}"
    );

    let pods = create_pod(&client, json!({"metadata": {"name": "bad-stop"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo secret >&2; exit 3"]}}}}]}}))
    .await;
    waits
        .until(minutes(10), "running", |s| running(s, "bad-stop"))
        .await;
    pods.delete("bad-stop", &DeleteParams::default().grace_period(2))
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod gone", |s| gone(s, "bad-stop"))
        .await;
    let events = events_for(&client, "default", "bad-stop").await;
    assert!(
        events.contains(&"FailedPreStopHook: PreStopHook failed".to_string()),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("secret")),
        "no event carries the hook's output: {events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_http_hook_needs_an_answer_not_a_good_status() {
    let (cluster, client, waits) = one_node().await;
    create_pod(
        &client,
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}),
    )
    .await;
    let ip = waits
        .until(minutes(10), "web running", |s| {
            running(s, "web")?;
            let p = seen::pod_json(s, "web");
            p["status"]["podIP"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| p["status"].to_string())
        })
        .await;
    // nginx answers 404 there: upstream's handler only needs an answer.
    create_pod(
        &client,
        json!({"metadata": {"name": "not-found-is-fine"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": {"postStart": {"httpGet": {"host": ip, "port": 80, "path": "/missing"}}}}]}}),
    )
    .await;
    // Nothing listens on port 81: the hook fails, with Go's dial error in the waiting message.
    create_pod(
        &client,
        json!({"metadata": {"name": "refused"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": {"postStart": {"httpGet": {"host": ip, "port": 81, "path": "/x"}}}}]}}),
    )
    .await;
    let uid = waits
        .until(minutes(10), "refused restarted", |s| {
            let cs = seen::container_status(s, "refused");
            if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                Ok(seen::pod(s, "refused")
                    .and_then(|p| p.metadata.uid.clone())
                    .unwrap_or_default())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    let expected = format!(
        "HTTP lifecycle hook (/x) for Container \"app\" in Pod \"refused_default({uid})\" failed - error: Get \"http://{ip}:81/x\": dial tcp {ip}:81: connect: connection refused"
    );
    let waiting: Vec<serde_json::Value> = waits.read(|s| {
        versions(s, "refused")
            .iter()
            .map(|p| p["status"]["containerStatuses"][0]["state"]["waiting"].clone())
            .filter(|w| w["reason"] == "PostStartHookError")
            .collect()
    });
    assert!(
        waiting.iter().any(|w| w["message"] == expected.as_str()),
        "expected {expected:?}; saw {waiting:?}"
    );
    let pod = waits
        .until(minutes(10), "not-found-is-fine running", |s| {
            running(s, "not-found-is-fine").map(|()| seen::pod_json(s, "not-found-is-fine"))
        })
        .await;
    assert_eq!(
        pod["status"]["containerStatuses"][0]["restartCount"], 0,
        "{pod}"
    );
    let events = events_for(&client, "default", "not-found-is-fine").await;
    assert!(
        !events.iter().any(|e| e.starts_with("FailedPostStartHook")),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn init_containers_kills_are_recorded_on_their_init_containers() {
    let (cluster, client, waits) = one_node().await;
    // A regular init container still running, and a sidecar (the only init containers allowed
    // lifecycle hooks) whose preStop hook fails.
    let pods = create_pod(&client, json!({"metadata": {"name": "stuck-init"}, "spec": {
        "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    create_pod(&client, json!({"metadata": {"name": "with-sidecar"}, "spec": {
        "initContainers": [{"name": "proxy", "image": "busybox:1.36", "restartPolicy": "Always",
            "command": ["sh", "-c", "sleep 3600"],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "exit 3"]}}}}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .await;
    for name in ["stuck-init", "with-sidecar"] {
        waits
            .until(
                minutes(10),
                &format!("{name}'s init container running"),
                |s| {
                    let p = seen::pod_json(s, name);
                    if p["status"]["initContainerStatuses"][0]["state"]["running"].is_object() {
                        Ok(())
                    } else {
                        Err(p["status"].to_string())
                    }
                },
            )
            .await;
    }
    waits
        .until(minutes(10), "with-sidecar's app running", |s| {
            running(s, "with-sidecar")
        })
        .await;
    for (name, expected) in [
        (
            "stuck-init",
            &["Killing: Stopping container setup @ spec.initContainers{setup}"][..],
        ),
        (
            "with-sidecar",
            &[
                "Killing: Stopping container proxy @ spec.initContainers{proxy}",
                "FailedPreStopHook: PreStopHook failed @ spec.initContainers{proxy}",
                "Killing: Stopping container app @ spec.containers{app}",
            ][..],
        ),
    ] {
        pods.delete(name, &DeleteParams::default().grace_period(2))
            .await
            .unwrap();
        let events = waits
            .until(minutes(10), &format!("{name} gone"), |s| {
                gone(s, name).map(|()| events_with_paths(s, name))
            })
            .await;
        for e in expected {
            assert!(
                events.iter().any(|seen| seen == e),
                "expected {e:?} in {events:?}"
            );
        }
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The kubelet's conditions of a pod: `type=status(reason)`, in order.
fn conditions(p: &serde_json::Value) -> Vec<String> {
    p["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let reason = c["reason"]
                .as_str()
                .map(|r| format!("({r})"))
                .unwrap_or_default();
            format!(
                "{}={}{reason}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn condition_time(p: &serde_json::Value, type_: &str) -> i64 {
    let c = p["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or_default();
    ts(&c["lastTransitionTime"])
}

#[tokio::test]
async fn a_finished_pod_reports_its_sandbox_gone() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "done"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo done"]}]}}))
    .await;
    create_pod(&client, json!({"metadata": {"name": "broke"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 2; exit 1"]}]}}))
    .await;
    for (name, phase, reason) in [
        ("done", "Succeeded", "PodCompleted"),
        ("broke", "Failed", "PodFailed"),
    ] {
        let pod = waits
            .until(minutes(10), &format!("{name} without its sandbox"), |s| {
                let p = in_phase(s, name, phase)?;
                let ready_to_start = conditions(&p);
                if ready_to_start.contains(&"PodReadyToStartContainers=False".to_string()) {
                    Ok(p)
                } else {
                    Err(format!("{ready_to_start:?}"))
                }
            })
            .await;
        let initialized = if phase == "Succeeded" {
            "Initialized=True(PodCompleted)".to_string()
        } else {
            "Initialized=True".to_string()
        };
        assert_eq!(
            conditions(&pod),
            [
                "PodReadyToStartContainers=False".to_string(),
                initialized,
                format!("Ready=False({reason})"),
                format!("ContainersReady=False({reason})"),
                "PodScheduled=True".to_string(),
            ],
            "{pod}"
        );
        // The sandbox went once the container had finished; the pod keeps its IP.
        let finished =
            ts(&pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]);
        assert!(
            condition_time(&pod, "PodReadyToStartContainers") >= finished,
            "{pod}"
        );
        let all = waits.read(|s| versions(s, name));
        let ip = pod["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!ip.is_empty(), "{pod}");
        for version in all.iter().filter(|p| p["status"]["phase"] == phase) {
            assert_eq!(version["status"]["podIP"], ip.as_str(), "{version}");
        }
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
