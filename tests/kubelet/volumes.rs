//! Volumes: a missing Secret holds a pod, an emptyDir hands data from an init container to the
//! app, local storage over its limits gets a pod evicted, and agnhost `mounttest` sees the
//! modes of a ConfigMap volume and its updates.

use super::*;

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
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "cat /data/state /etc/settings/greeting; echo; sleep 3600"],
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
            // The greeting has no newline of its own: the runtime writes a line to the log
            // once it ends (as containerd does), hence the echo.
            |l| l == "prepared\nhello\n",
        )
        .await;
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

/// The ConfigMap e2e tests' `mounttest` pod: one agnhost container with ConfigMap `name` at
/// /etc/configmap-volume (read-only), with `args`.
fn mounttest_pod(pod: &str, name: &str, optional: bool, args: &[&str]) -> serde_json::Value {
    json!({"metadata": {"name": pod}, "spec": {"restartPolicy": "Never",
        "volumes": [{"name": "configmap-volume", "configMap": {"name": name, "optional": optional}}],
        "containers": [{"name": "agnhost-container", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
            "args": args,
            "volumeMounts": [{"name": "configmap-volume", "mountPath": "/etc/configmap-volume", "readOnly": true}]}]}})
}

#[tokio::test]
async fn a_config_map_volume_shows_its_modes_and_its_updates_to_mounttest() {
    let (cluster, client, waits) = one_node().await;
    let cms = Api::<k8s_openapi::api::core::v1::ConfigMap>::default_namespaced(client.clone());
    let cm = |name: &str, value: &str| {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"data-1": value}}))
            .unwrap()
    };
    cms.create(&PostParams::default(), &cm("configmap-test-upd", "value-1"))
        .await
        .unwrap();
    // ConfigMap should be consumable from pods in volume with defaultMode set.
    let mut once = mounttest_pod(
        "pod-configmaps-mode",
        "configmap-test-upd",
        false,
        &[
            "mounttest",
            "--file_content=/etc/configmap-volume/data-1",
            "--file_mode=/etc/configmap-volume/data-1",
        ],
    );
    once["spec"]["volumes"][0]["configMap"]["defaultMode"] = json!(0o400);
    let pods = create_pod(&client, once).await;
    waits
        .until(minutes(10), "the mode pod to succeed", |s| {
            in_phase(s, "pod-configmaps-mode", "Succeeded").map(|_| ())
        })
        .await;
    let logs = pods
        .logs("pod-configmaps-mode", &Default::default())
        .await
        .unwrap();
    assert_eq!(
        logs,
        "mode of file \"/etc/configmap-volume/data-1\": -r--------\n\
         content of file \"/etc/configmap-volume/data-1\": value-1\n"
    );

    // ConfigMap updates should be reflected in volume; an optional ConfigMap that appears
    // later fills its volume.
    let loop_args = |path: &str| {
        [
            "mounttest".to_string(),
            "--break_on_expected_content=false".to_string(),
            "--retry_time=600".to_string(),
            format!("--file_content_in_loop={path}"),
        ]
    };
    let args = loop_args("/etc/configmap-volume/data-1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    create_pod(
        &client,
        mounttest_pod("pod-configmaps-upd", "configmap-test-upd", false, &args),
    )
    .await;
    create_pod(
        &client,
        mounttest_pod("pod-configmaps-create", "cm-test-opt-create", true, &args),
    )
    .await;
    waits
        .log_until(
            &pods,
            "pod-configmaps-upd",
            None,
            minutes(10),
            "value-1",
            |l| l.contains("content of file \"/etc/configmap-volume/data-1\": value-1\n"),
        )
        .await;
    waits
        .log_until(&pods, "pod-configmaps-create", None, minutes(10), "no file yet", |l| {
            l.contains("Error reading file /etc/configmap-volume/data-1: open /etc/configmap-volume/data-1: no such file or directory, retrying\n")
        })
        .await;
    let mut updated: k8s_openapi::api::core::v1::ConfigMap =
        cms.get("configmap-test-upd").await.unwrap();
    updated.data = Some([("data-1".to_string(), "value-2".to_string())].into());
    cms.replace("configmap-test-upd", &PostParams::default(), &updated)
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("cm-test-opt-create", "value-1"))
        .await
        .unwrap();
    waits
        .log_until(
            &pods,
            "pod-configmaps-upd",
            None,
            minutes(5),
            "value-2",
            |l| l.contains("content of file \"/etc/configmap-volume/data-1\": value-2\n"),
        )
        .await;
    waits
        .log_until(
            &pods,
            "pod-configmaps-create",
            None,
            minutes(5),
            "the new ConfigMap",
            |l| l.contains("content of file \"/etc/configmap-volume/data-1\": value-1\n"),
        )
        .await;
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
