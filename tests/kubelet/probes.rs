//! Probes: liveness restarts a container with growing back-off, readiness keeps a pod out of
//! ready endpoints, and user image models that degrade as they describe.

use super::*;

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
async fn a_probe_that_takes_its_timeout_still_runs_every_period() {
    let (cluster, client, waits) = one_node().await;
    create_pod(
        &client,
        json!({"metadata": {"name": "slow-probe"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
        "livenessProbe": {"exec": {"command": ["sh", "-c", "sleep 3"]}, "timeoutSeconds": 1,
            "periodSeconds": 5, "failureThreshold": 1000}}]}}),
    )
    .await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client.clone());
    let unhealthy = waits
        .until_async(minutes(10), "eleven timed-out liveness probes", || {
            let events = events.clone();
            async move {
                let list = events
                    .list(
                        &kube::api::ListParams::default()
                            .fields("involvedObject.name=slow-probe,reason=Unhealthy"),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                match list.items.into_iter().next() {
                    Some(e) if e.count.unwrap_or(1) >= 11 => Ok(e),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
    assert_eq!(
        unhealthy.message.as_deref(),
        Some("Liveness probe failed: command \"sh -c sleep 3\" timed out")
    );
    // Eleven attempts a period apart span ten periods (50 s), not ten periods plus ten
    // timeouts (60 s). The times are whole seconds; the eleventh count may be a tick late.
    let first = unhealthy.first_timestamp.unwrap().0;
    let last = unhealthy.last_timestamp.unwrap().0;
    let count = i64::from(unhealthy.count.unwrap_or(1));
    let span = last.as_second() - first.as_second();
    let per_attempt = span as f64 / (count - 1) as f64;
    assert!(
        (4.5..=5.5).contains(&per_attempt),
        "{count} attempts in {span} s ({per_attempt:.2} s apart)"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The Warning events of pod `name` with `reason`, once there are at least `at_least` of them
/// (counting repeats), as (message, count).
async fn wait_for_events(
    waits: &Waits,
    client: &Client,
    name: &str,
    reason: &str,
    at_least: i32,
) -> Vec<(String, i32)> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client.clone());
    let selector = format!("involvedObject.name={name},reason={reason}");
    waits
        .until_async(
            minutes(10),
            &format!("{at_least} {reason} events of {name}"),
            || {
                let (events, selector) = (events.clone(), selector.clone());
                async move {
                    let list = events
                        .list(&kube::api::ListParams::default().fields(&selector))
                        .await
                        .map_err(|e| e.to_string())?;
                    let seen: Vec<(String, i32)> = list
                        .items
                        .into_iter()
                        .map(|e| (e.message.unwrap_or_default(), e.count.unwrap_or(1)))
                        .collect();
                    if seen.iter().map(|(_, c)| c).sum::<i32>() >= at_least {
                        Ok(seen)
                    } else {
                        Err(format!("{seen:?}"))
                    }
                }
            },
        )
        .await
}

async fn restart_count(client: &Client, name: &str) -> i64 {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    container_status(&pods.get(name).await.unwrap())["restartCount"]
        .as_i64()
        .unwrap_or(-1)
}

// As upstream's e2e "should be restarted with a local redirect http liveness probe" and
// "should *not* be restarted with a non-local redirect http liveness probe".
#[tokio::test]
async fn http_probes_follow_local_redirects_and_warn_about_others() {
    let (cluster, client, waits) = one_node().await;
    let pod = |name: &str, path: &str| {
        json!({"metadata": {"name": name}, "spec": {"containers": [{
            "name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53", "args": ["liveness"],
            "livenessProbe": {"httpGet": {"path": path, "port": 8080}, "initialDelaySeconds": 15, "failureThreshold": 1}}]}})
    };
    create_pod(&client, pod("local-redirect", "/redirect?loc=%2Fhealthz")).await;
    create_pod(
        &client,
        pod("remote-redirect", "/redirect?loc=http%3A%2F%2F0.0.0.0%2F"),
    )
    .await;
    // The local redirect reaches /healthz, which fails after 10 s: restarted.
    let failed = wait_for_events(&waits, &client, "local-redirect", "Unhealthy", 1).await;
    assert_eq!(
        failed[0].0,
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
    waits
        .until(minutes(10), "local-redirect restarted", |s| {
            let cs = seen::container_status(s, "local-redirect");
            if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    // The other is not followed: a warning each period, a success all the same. Three of them
    // (three probes with a failure threshold of 1) show that none failed.
    let warned = wait_for_events(&waits, &client, "remote-redirect", "ProbeWarning", 3).await;
    assert_eq!(
        warned[0].0,
        "Liveness probe warning: Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>.\n\n"
    );
    assert_eq!(restart_count(&client, "remote-redirect").await, 0);
    let events = events_for(&client, "default", "remote-redirect").await;
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("Unhealthy") || e.starts_with("Killing")),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_probe_on_an_undeclared_port_name_errs_without_restarting_or_readying() {
    let (cluster, client, waits) = one_node().await;
    let probe = json!({"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2, "failureThreshold": 1});
    create_pod(
        &client,
        json!({"metadata": {"name": "unnamed-port"}, "spec": {"containers": [{
        "name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
        "readinessProbe": probe, "livenessProbe": probe}]}}),
    )
    .await;
    let errored = wait_for_events(&waits, &client, "unnamed-port", "Unhealthy", 6).await;
    let messages: Vec<&str> = errored.iter().map(|(m, _)| m.as_str()).collect();
    for kind in ["Liveness", "Readiness"] {
        let want = format!(
            "{kind} probe errored and resulted in unknown state: strconv.Atoi: parsing \"http\": invalid syntax"
        );
        assert!(messages.contains(&want.as_str()), "{messages:?}");
    }
    // Six errors with a failure threshold of 1: an error is no failure, and no success either.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let cs = container_status(&pods.get("unnamed-port").await.unwrap());
    assert_eq!(cs["restartCount"], 0, "{cs}");
    assert_eq!(cs["ready"], false, "{cs}");
    assert!(cs["state"]["running"].is_object(), "{cs}");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

// As upstream's e2e gRPC liveness tests, which run agnhost's grpc-health-checking.
#[tokio::test]
async fn grpc_probes_call_the_health_service() {
    let (cluster, client, waits) = one_node().await;
    let pod = |name: &str, args: &[&str], probe: serde_json::Value| {
        let mut argv = vec!["grpc-health-checking"];
        argv.extend_from_slice(args);
        json!({"metadata": {"name": name}, "spec": {"containers": [{
            "name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53", "args": argv,
            "ports": [{"containerPort": 5000, "name": "grpc"}, {"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"grpc": {"port": 5000}, "periodSeconds": 2},
            "livenessProbe": probe}]}})
    };
    let liveness = |port: i32, service: Option<&str>| {
        let mut grpc = json!({"port": port});
        if let Some(s) = service {
            grpc["service"] = json!(s);
        }
        json!({"grpc": grpc, "initialDelaySeconds": 10, "timeoutSeconds": 5, "failureThreshold": 1})
    };
    create_pod(&client, pod("grpc-serving", &[], liveness(5000, None))).await;
    create_pod(&client, pod("grpc-wrong-port", &[], liveness(2333, None))).await;
    create_pod(
        &client,
        pod(
            "grpc-delayed",
            &["--delay-unhealthy-sec=20"],
            liveness(5000, None),
        ),
    )
    .await;
    create_pod(
        &client,
        pod("grpc-other-service", &[], liveness(5000, Some("other"))),
    )
    .await;
    // A SERVING answer makes the pod ready.
    waits
        .until(minutes(10), "grpc-serving ready", |s| {
            let cs = seen::container_status(s, "grpc-serving");
            if cs["ready"] == true {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    let failures = [
        (
            "grpc-wrong-port",
            "Liveness probe failed: timeout: failed to connect service \"{ip}:2333\" within 5s: context deadline exceeded".to_string(),
        ),
        (
            "grpc-delayed",
            "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")".to_string(),
        ),
        (
            "grpc-other-service",
            "Liveness probe failed: error: health rpc probe failed: rpc error: code = NotFound desc = unknown service".to_string(),
        ),
    ];
    for (name, want) in &failures {
        waits
            .until(minutes(10), &format!("{name} restarted"), |s| {
                let cs = seen::container_status(s, name);
                if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
                    Ok(())
                } else {
                    Err(cs.to_string())
                }
            })
            .await;
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let ip = pods.get(name).await.unwrap().status.and_then(|s| s.pod_ip);
        let events = events_for(&client, "default", name).await;
        let want = format!(
            "Unhealthy: {}",
            want.replace("{ip}", &ip.unwrap_or_default())
        );
        assert!(
            events.iter().any(|e| e.starts_with(&want)),
            "{name}: {events:?}, wanted {want}"
        );
    }
    // By now the serving pod's liveness probe has run for as long as the delayed one took to
    // fail: it never failed.
    assert_eq!(restart_count(&client, "grpc-serving").await, 0);
    let events = events_for(&client, "default", "grpc-serving").await;
    assert!(
        !events.iter().any(|e| e.starts_with("Unhealthy")),
        "{events:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
