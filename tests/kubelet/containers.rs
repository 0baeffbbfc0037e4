//! Containers: image pulls, restart policies, termination within the grace period, init
//! containers and sidecars, lifecycle hooks and termination messages, configuration errors,
//! active deadlines, logs and the restart back-off.

use super::*;

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
    // Events are written after the status that follows them may be (the kubelet's recorder
    // queues them, as client-go's does): wait for them.
    waits
        .until_async(minutes(2), "the pull failure and back-off events", || async {
            let events = events_for(&client, "default", "typo").await;
            let has = |s: &str| events.iter().any(|e| e.starts_with(s));
            if has("Failed: Failed to pull image \"nginx:no-such-tag\": rpc error: code = NotFound")
                && has("Failed: Error: ErrImagePull")
                && has("BackOff: Back-off pulling image \"nginx:no-such-tag\"")
                && has("Failed: Error: ImagePullBackOff")
            {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
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
async fn a_pod_whose_sh_traps_sigterm_is_deleted_at_once() {
    let (cluster, client, waits) = one_node().await;
    // Upstream's e2e InfiniteSleepCommand, with ten minutes of grace it does not need.
    let pods = create_pod(&client, json!({"metadata": {"name": "trapper"}, "spec": {"terminationGracePeriodSeconds": 600,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "trap exit TERM; while true; do sleep 1; done"]}]}})).await;
    waits
        .until(minutes(10), "running", |s| running(s, "trapper"))
        .await;
    let clock = cluster.clock().clone();
    let asked = clock.now();
    pods.delete("trapper", &DeleteParams::default())
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod gone", |s| gone(s, "trapper"))
        .await;
    let took = (clock.now() - asked).num_milliseconds() as f64 / 1000.0;
    assert!(
        took < 60.0,
        "the trap ends it, not the 600 s grace period: termination took {took:.1} cluster seconds"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_second_deletion_with_a_shorter_grace_period_shortens_the_kill() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(&client, json!({"metadata": {"name": "patient"}, "spec": {"terminationGracePeriodSeconds": 3600,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 7200"]},
                       {"name": "web", "image": "nginx:1.27"}]}})).await;
    waits
        .until(minutes(10), "both containers running", |s| {
            let p = seen::pod_json(s, "patient");
            let statuses = p["status"]["containerStatuses"].as_array().cloned();
            let all = statuses.unwrap_or_default();
            if all.len() == 2 && all.iter().all(|c| c["state"]["running"].is_object()) {
                Ok(())
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    pods.delete("patient", &DeleteParams::default())
        .await
        .unwrap();
    // The kill is under way, with an hour's grace (sh ignores SIGTERM), before the second deletion.
    waits
        .until(minutes(10), "the kubelet stopping the container", |s| {
            let events = seen::events(s, "default", "patient");
            if events
                .iter()
                .any(|e| e == "Killing: Stopping container app")
            {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
    let clock = cluster.clock().clone();
    // nginx exits at once on SIGTERM: give it a moment of cluster time to have done so.
    clock.sleep(Duration::from_secs(5)).await;
    let asked = clock.now();
    pods.delete("patient", &DeleteParams::default().grace_period(2))
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod gone", |s| gone(s, "patient"))
        .await;
    let took = (clock.now() - asked).num_milliseconds() as f64 / 1000.0;
    assert!(
        took <= 10.0,
        "the 2 s grace period replaced the hour's: termination took {took:.1} cluster seconds"
    );
    // The pod is gone, so every event of its termination is written: the kill started over
    // for the container still running, and left alone the one already stopped.
    let events = events_for(&client, "default", "patient").await;
    let killing = |c: &str| {
        events
            .iter()
            .filter(|e| e.starts_with(&format!("Killing: Stopping container {c}")))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        killing("app"),
        ["Killing: Stopping container app (x2)"],
        "{events:?}"
    );
    assert_eq!(
        killing("web"),
        ["Killing: Stopping container web"],
        "{events:?}"
    );
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
            if events
                .iter()
                .any(|e| e == "FailedPreStopHook: PreStopHook failed")
            {
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

#[tokio::test]
async fn the_crash_loop_message_prints_go_durations() {
    let cluster = cluster().time_scale(100.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    create_pod(
        &client,
        json!({"metadata": {"name": "crasher"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}]}}),
    )
    .await;
    // The steps are 10 s, 20 s, 40 s, then 80 s, which the kubelet writes as Go does.
    let message = waits
        .until(minutes(10), "a back-off of 80 s", |s| {
            let cs = seen::container_status(s, "crasher");
            let message = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
            if message.starts_with("back-off 1m20s ") {
                Ok(message.to_string())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    assert!(
        message.starts_with("back-off 1m20s restarting failed container=app pod=crasher_default("),
        "{message}"
    );
    // The pull took whole milliseconds of the cluster clock and some wall-clock jitter; the
    // kubelet prints it truncated to milliseconds (`in 432ms (432ms including waiting)`).
    let pulled = events_for(&client, "default", "crasher")
        .await
        .into_iter()
        .find(|e| e.starts_with("Pulled: "))
        .expect("a Pulled event");
    let millis = regex::Regex::new(
        r#"^Pulled: Successfully pulled image "busybox:1.36" in (\d+ms|\d+(\.\d{1,3})?s) \((\d+ms|\d+(\.\d{1,3})?s) including waiting\)\. Image size: \d+ bytes\.$"#,
    )
    .unwrap();
    assert!(millis.is_match(&pulled), "{pulled}");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The kubelet's recorder passes client-go's spam filter: per source, object and type a burst
/// of 25 writes, then one per 5 minutes. A crash-looping pod's Normal events (Pulled, Created,
/// Started) and its Warning ones (BackOff) therefore each stop at about 25 writes plus one per
/// 5 minutes, and what the filter drops still counts: the BackOff event's `count` runs ahead of
/// the times it was written.
#[tokio::test]
async fn a_crash_looping_pods_events_stay_within_the_spam_filter() {
    // 100x: half an hour of crash loop takes 18 s of wall time.
    let cluster = cluster().time_scale(100.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let start = cluster.clock().now();
    create_pod(
        &client,
        json!({"metadata": {"name": "crasher"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}]}}),
    )
    .await;
    waits
        .until(minutes(10), "CrashLoopBackOff", |s| {
            let cs = seen::container_status(s, "crasher");
            if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    cluster.clock().sleep(minutes(30)).await;
    waits.barrier().await;
    let elapsed = (cluster.clock().now() - start).num_seconds();
    // Every write of a kubelet event about the pod, and per Event the writes and last count.
    let (writes, by_type, per_event) = waits.read(|s| {
        let mut writes = 0;
        let mut by_type: std::collections::BTreeMap<String, i64> = Default::default();
        let mut per_event: std::collections::BTreeMap<String, (String, usize, i32)> =
            Default::default();
        for (_, e) in s.event_entries() {
            let source = e.source.clone().unwrap_or_default();
            if e.involved_object.name.as_deref() != Some("crasher")
                || source.component.as_deref() != Some("kubelet")
            {
                continue;
            }
            writes += 1;
            *by_type
                .entry(e.type_.clone().unwrap_or_default())
                .or_insert(0) += 1;
            let row = per_event
                .entry(e.metadata.name.clone().unwrap_or_default())
                .or_insert_with(|| (e.reason.clone().unwrap_or_default(), 0, 0));
            row.1 += 1;
            row.2 = row.2.max(e.count.unwrap_or(1));
        }
        (writes, by_type, per_event)
    });
    let limit = 25 + elapsed / 300 + 1;
    for (type_, n) in &by_type {
        assert!(
            *n <= limit,
            "{n} {type_} kubelet event writes in {elapsed} s (limit {limit}): {per_event:#?}"
        );
    }
    assert!(
        writes >= 25,
        "{writes} kubelet event writes in {elapsed} s: {per_event:#?}"
    );
    let backoff = per_event
        .values()
        .find(|(reason, _, _)| reason == "BackOff")
        .cloned();
    let Some((_, written, count)) = backoff else {
        panic!("no BackOff event: {per_event:#?}");
    };
    assert!(
        i64::from(count) > written as i64,
        "BackOff written {written} times with count {count}: the dropped ones should count"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

// As upstream's e2e "should contain environment variables for services" and
// "should test kubelet managed /etc/hosts file".
#[tokio::test]
async fn containers_get_service_variables_a_hostname_and_a_managed_hosts_file() {
    let (cluster, client, waits) = one_node().await;
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let fooservice = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "fooservice"},
            "spec": {"selector": {"name": "srv"}, "ports": [{"port": 8765, "targetPort": 8080}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let foo_ip = fooservice.spec.unwrap().cluster_ip.unwrap();
    let kubernetes = services.get("kubernetes").await.unwrap();
    let master_ip = kubernetes.spec.unwrap().cluster_ip.unwrap();
    let pods = create_pod(&client, json!({"metadata": {"name": "client-envvars"}, "spec": {
        "restartPolicy": "Never", "hostname": "envvars", "subdomain": "sub",
        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}],
        "containers": [{"name": "env3cont", "image": "busybox:1.36",
            "env": [{"name": "FOO_URL", "value": "$(FOOSERVICE_SERVICE_HOST):$(FOOSERVICE_SERVICE_PORT)"}],
            "command": ["sh", "-c", "env; echo ---; cat /etc/hosts; echo ---; hostname"]}]}})).await;
    waits
        .until(minutes(10), "client-envvars Succeeded", |s| {
            in_phase(s, "client-envvars", "Succeeded").map(|_| ())
        })
        .await;
    let log = pods
        .logs("client-envvars", &Default::default())
        .await
        .unwrap();
    let mut parts = log.split("---\n");
    let env: Vec<&str> = parts.next().unwrap().lines().collect();
    for want in [
        format!("FOOSERVICE_SERVICE_HOST={foo_ip}"),
        "FOOSERVICE_SERVICE_PORT=8765".to_string(),
        format!("FOOSERVICE_PORT=tcp://{foo_ip}:8765"),
        format!("FOOSERVICE_PORT_8765_TCP=tcp://{foo_ip}:8765"),
        "FOOSERVICE_PORT_8765_TCP_PROTO=tcp".to_string(),
        "FOOSERVICE_PORT_8765_TCP_PORT=8765".to_string(),
        format!("FOOSERVICE_PORT_8765_TCP_ADDR={foo_ip}"),
        format!("KUBERNETES_SERVICE_HOST={master_ip}"),
        format!("FOO_URL={foo_ip}:8765"),
        "HOSTNAME=envvars".to_string(),
        "HOME=/root".to_string(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ] {
        assert!(env.contains(&want.as_str()), "{want} in {env:?}");
    }
    let pod = pods.get("client-envvars").await.unwrap();
    let ip = pod.status.unwrap().pod_ip.unwrap();
    assert_eq!(
        parts.next().unwrap(),
        format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             {ip}\tenvvars.sub.default.svc.cluster.local\tenvvars\n\n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.remote\tbar.remote\n"
        )
    );
    assert_eq!(parts.next().unwrap(), "envvars\n");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

// As upstream's e2e "should not run without a specified user ID", "should not run with an
// explicit root user ID" and "should run with an image specified user ID".
#[tokio::test]
async fn run_as_non_root_refuses_containers_that_would_run_as_root() {
    let (cluster, client, waits) = one_node().await;
    let pod = |name: &str, image: &str, sc: serde_json::Value| {
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [{
            "name": "app", "image": image, "command": ["sh", "-c", "exit 0"], "securityContext": sc}]}})
    };
    let pods = create_pod(
        &client,
        pod(
            "implicit-root",
            "busybox:1.36",
            json!({"runAsNonRoot": true}),
        ),
    )
    .await;
    create_pod(
        &client,
        pod(
            "explicit-root",
            "busybox:1.36",
            json!({"runAsNonRoot": true, "runAsUser": 0}),
        ),
    )
    .await;
    create_pod(
        &client,
        pod(
            "image-user",
            "registry.k8s.io/e2e-test-images/nonroot:1.4",
            json!({"runAsNonRoot": true}),
        ),
    )
    .await;
    create_pod(
        &client,
        pod(
            "explicit-user",
            "busybox:1.36",
            json!({"runAsNonRoot": true, "runAsUser": 1000}),
        ),
    )
    .await;
    let waiting = |s: &State, name: &str| -> Result<String, String> {
        let cs = seen::container_status(s, name);
        if cs["state"]["waiting"]["reason"] == "CreateContainerConfigError" {
            Ok(cs["state"]["waiting"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        } else {
            Err(cs.to_string())
        }
    };
    let message = waits
        .until(minutes(5), "implicit-root refused", |s| {
            waiting(s, "implicit-root")
        })
        .await;
    assert_eq!(
        message,
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"implicit-root_default({})\", container: app)",
            pods.get("implicit-root").await.unwrap().metadata.uid.unwrap()
        )
    );
    let message = waits
        .until(minutes(5), "explicit-root refused", |s| {
            waiting(s, "explicit-root")
        })
        .await;
    assert_eq!(
        message,
        format!(
            "container's runAsUser breaks non-root policy (pod: \"explicit-root_default({})\", container: app)",
            pods.get("explicit-root").await.unwrap().metadata.uid.unwrap()
        )
    );
    for name in ["image-user", "explicit-user"] {
        waits
            .until(minutes(5), &format!("{name} Succeeded"), |s| {
                in_phase(s, name, "Succeeded").map(|_| ())
            })
            .await;
    }
    let events = events_for(&client, "default", "implicit-root").await;
    assert!(
        events.iter().any(|e| e
            .starts_with("Failed: Error: container has runAsNonRoot and image will run as root")),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

// As upstream's e2e "should run the container with readonly rootfs when readOnlyRootFilesystem
// is true" and "... writable rootfs when false".
#[tokio::test]
async fn a_read_only_root_filesystem_refuses_writes_outside_volumes() {
    let (cluster, client, waits) = one_node().await;
    let pod = |name: &str, read_only: bool| {
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never",
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "app", "image": "busybox:1.36",
                "command": ["sh", "-c", "touch /data/ok && echo volume written && touch /checkfile"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "securityContext": {"readOnlyRootFilesystem": read_only}}]}})
    };
    let pods = create_pod(&client, pod("readonly-root", true)).await;
    create_pod(&client, pod("writable-root", false)).await;
    waits
        .until(minutes(5), "readonly-root Failed", |s| {
            in_phase(s, "readonly-root", "Failed").map(|_| ())
        })
        .await;
    waits
        .until(minutes(5), "writable-root Succeeded", |s| {
            in_phase(s, "writable-root", "Succeeded").map(|_| ())
        })
        .await;
    assert_eq!(
        pods.logs("readonly-root", &Default::default())
            .await
            .unwrap(),
        "volume written\ntouch: /checkfile: Read-only file system\n"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
