use serde_json::json;

use super::*;

fn writer<'a>(manager: &'a str, subresource: &'a str, now: &str) -> Writer<'a> {
    Writer {
        manager,
        subresource,
        api_version: "apps/v1".into(),
        has_status: true,
        now: now.into(),
    }
}

/// A Deployment as `kubectl create deployment web --image=nginx` leaves it after defaulting.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
            "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
        "spec": {
            "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "nginx", "image": "nginx", "resources": {},
                        "imagePullPolicy": "Always", "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {}
    })
}

#[test]
fn a_create_owns_what_it_set_as_upstream_records_it() {
    let mut d = created_deployment();
    record_update(
        None,
        None,
        &mut d,
        &writer("kubectl-create", "", "2026-01-01T00:00:00Z"),
    );
    let entries = d["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["apiVersion"], "apps/v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(entry.get("subresource").is_none());
    let fields = &entry["fieldsV1"];
    assert_eq!(
        fields["f:metadata"],
        json!({"f:labels": {".": {}, "f:app": {}}}),
        "name, namespace, uid, creationTimestamp and generation are nobody's"
    );
    let spec = &fields["f:spec"];
    // A struct held by value was there before (no "."), a pointer one was added (".").
    assert_eq!(
        spec["f:strategy"],
        json!({"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}})
    );
    // An atomic struct is one leaf.
    assert_eq!(spec["f:selector"], json!({}));
    let container = &spec["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert_eq!(
        container,
        &json!({".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
            "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}})
    );
    assert_eq!(
        spec["f:template"]["f:metadata"],
        json!({"f:labels": {".": {}, "f:app": {}}}),
        "the template's null creationTimestamp was there in the zero object"
    );
    assert!(
        fields.get("f:status").is_none(),
        "the status is its subresource's"
    );
}

#[test]
fn updates_move_fields_between_managers_and_merge_per_manager() {
    let mut live = created_deployment();
    record_update(
        None,
        None,
        &mut live,
        &writer("kubectl-create", "", "2026-01-01T00:00:00Z"),
    );
    // `kubectl scale` through the main resource: replicas move to kubectl-scale.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(
        Some(&live),
        None,
        &mut scaled,
        &writer("kubectl-scale", "", "2026-01-01T00:01:00Z"),
    );
    let entries = scaled["metadata"]["managedFields"].as_array().unwrap();
    let by = |m: &str| entries.iter().find(|e| e["manager"] == m).unwrap().clone();
    assert!(by("kubectl-create")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_none());
    assert_eq!(
        by("kubectl-scale")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(by("kubectl-scale")["time"], "2026-01-01T00:01:00Z");
    // Upstream's order: same operation, older first.
    assert_eq!(entries[0]["manager"], "kubectl-create");
    // The controller's status write is its own entry, on the status subresource.
    let mut status = scaled.clone();
    status["status"] =
        json!({"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]});
    record_update(
        Some(&scaled),
        None,
        &mut status,
        &writer("kube-controller-manager", "status", "2026-01-01T00:02:00Z"),
    );
    let entries = status["metadata"]["managedFields"].as_array().unwrap();
    let kcm = entries
        .iter()
        .find(|e| e["manager"] == "kube-controller-manager")
        .unwrap();
    assert_eq!(kcm["subresource"], "status");
    assert_eq!(
        kcm["fieldsV1"],
        json!({"f:status": {"f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}})
    );
    // A write that changes nothing changes no entry.
    let mut same = status.clone();
    record_update(
        Some(&status),
        None,
        &mut same,
        &writer("someone", "", "2026-01-01T00:03:00Z"),
    );
    assert_eq!(same, status);
    // Removing a label takes it from its owner; `[{}]` clears every entry.
    let mut unlabelled = status.clone();
    // (Go's encoding leaves an empty label map out.)
    unlabelled["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    record_update(
        Some(&status),
        None,
        &mut unlabelled,
        &writer("kubectl-edit", "", "2026-01-01T00:04:00Z"),
    );
    let create = unlabelled["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubectl-create")
        .unwrap()
        .clone();
    assert!(create["fieldsV1"].get("f:metadata").is_none(), "{create}");
    let mut reset = unlabelled.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(
        Some(&unlabelled),
        None,
        &mut reset,
        &writer("kubectl-edit", "", "2026-01-01T00:05:00Z"),
    );
    assert!(
        reset["metadata"].get("managedFields").is_none(),
        "{}",
        reset["metadata"]
    );
}

fn applied(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image,
                    "ports": [{"containerPort": 80}]}]}}}})
}

#[test]
fn two_appliers_of_identical_containers_share_them_and_a_change_conflicts() {
    let live = created_deployment();
    let first = apply(
        Some(&live),
        &applied("nginx"),
        false,
        &writer("alice", "", "t1"),
    )
    .unwrap();
    // The container merged by its name: the live defaults stay, nothing is duplicated.
    let containers = first["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(containers[0]["ports"], json!([{"containerPort": 80}]));
    let second = apply(
        Some(&first),
        &applied("nginx"),
        false,
        &writer("bob", "", "t2"),
    )
    .expect("identical configurations do not conflict");
    let entries = second["metadata"]["managedFields"].as_array().unwrap();
    let bob = entries.iter().find(|e| e["manager"] == "bob").unwrap();
    assert_eq!(bob["operation"], "Apply");
    assert!(bob.get("apiVersion").is_some());
    let port = &bob["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        ["k:{\"name\":\"nginx\"}"]["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"];
    assert_eq!(
        port,
        &json!({".": {}, "f:containerPort": {}}),
        "the key's default names the item"
    );
    let Err(ApplyError::Conflicts(conflicts)) = apply(
        Some(&second),
        &applied("nginx:1.27"),
        false,
        &writer("carol", "", "t3"),
    ) else {
        panic!("a changed image owned by others must conflict");
    };
    let path = ".spec.template.spec.containers[name=\"nginx\"].image";
    assert_eq!(
        conflicts,
        vec![
            ("\"alice\"".to_string(), path.to_string()),
            ("\"bob\"".to_string(), path.to_string())
        ]
    );
    // Forced, the image moves to carol.
    let forced = apply(
        Some(&second),
        &applied("nginx:1.27"),
        true,
        &writer("carol", "", "t3"),
    )
    .unwrap();
    let entries = forced["metadata"]["managedFields"].as_array().unwrap();
    let alice = entries.iter().find(|e| e["manager"] == "alice").unwrap();
    assert!(
        alice["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_none()
    );
}

#[test]
fn an_applier_drops_what_it_no_longer_applies_unless_another_owns_it() {
    let live = created_deployment();
    let mut config = applied("nginx");
    config["metadata"]["labels"] = json!({"app": "web", "tier": "front", "team": "a"});
    let first = apply(Some(&live), &config, false, &writer("alice", "", "t1")).unwrap();
    // Bob takes shared ownership of `team`.
    let mut bob = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"}}});
    let second = apply(Some(&first), &bob, false, &writer("bob", "", "t2")).unwrap();
    config["metadata"]["labels"] = json!({"app": "web"});
    let third = apply(Some(&second), &config, false, &writer("alice", "", "t3")).unwrap();
    assert_eq!(
        third["metadata"]["labels"],
        json!({"app": "web", "team": "a"})
    );
    bob["metadata"]["labels"] = json!({});
    let fourth = apply(Some(&third), &bob, false, &writer("bob", "", "t4")).unwrap();
    assert_eq!(fourth["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn service_ports_are_keyed_by_port_and_protocol() {
    let svc = |ports: Value| {
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s"}, "spec": {"ports": ports}})
    };
    let live = svc(json!([{"port": 53, "protocol": "TCP", "targetPort": 53}]));
    let merged = apply(
        Some(&live),
        &svc(json!([{"port": 53, "protocol": "UDP"}])),
        false,
        &writer("dns", "", "t1"),
    )
    .unwrap();
    assert_eq!(
        merged["spec"]["ports"].as_array().unwrap().len(),
        2,
        "{merged}"
    );
}

#[test]
fn a_keyed_item_without_its_key_is_refused() {
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"image": "nginx"}]}});
    let Err(ApplyError::Invalid(reason)) = apply(None, &config, false, &writer("a", "", "t"))
    else {
        panic!("must be refused");
    };
    assert!(reason.contains("omits key field \"name\""), "{reason}");
}

#[test]
fn an_applied_null_map_keeps_what_others_own() {
    let mut live = created_deployment();
    live["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    let mut config = applied("nginx");
    config["metadata"]["annotations"] = Value::Null;
    let merged = apply(Some(&live), &config, false, &writer("helm", "", "t1")).unwrap();
    assert_eq!(
        merged["metadata"]["annotations"],
        json!({"deployment.kubernetes.io/revision": "1"})
    );
}

#[test]
fn owner_references_are_owned_whole() {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": "rs", "uid": "u1", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    record_update(
        None,
        None,
        &mut pod,
        &writer("kube-controller-manager", "", "t"),
    );
    assert_eq!(
        pod["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:ownerReferences"],
        json!({".": {}, "k:{\"uid\":\"u1\"}": {}})
    );
}

#[test]
fn update_entries_are_capped_at_ten_with_a_bucket_per_version() {
    let mut object =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    record_update(None, None, &mut object, &writer("m00", "", "t00"));
    for i in 1..=11 {
        let mut next = object.clone();
        next["data"][format!("k{i}")] = json!("v");
        record_update(
            Some(&object),
            None,
            &mut next,
            &writer(&format!("m{i:02}"), "", &format!("t{i:02}")),
        );
        object = next;
    }
    let managers: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    // m01..m11 wrote (m00 wrote nothing of its own); the two oldest share the bucket.
    assert_eq!(managers.len(), 10, "{managers:?}");
    assert!(managers.contains(&"ancient-changes"), "{managers:?}");
    assert!(
        !managers.contains(&"m01") && !managers.contains(&"m02"),
        "{managers:?}"
    );
    assert!(
        managers.contains(&"m03") && managers.contains(&"m11"),
        "{managers:?}"
    );
}

#[test]
fn what_the_server_fills_in_on_create_is_nobodys() {
    let sent = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30081}]}});
    let mut stored = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080},
                      {"port": 81, "protocol": "TCP", "targetPort": 81, "nodePort": 30081}]}});
    record_update(
        None,
        Some(&sent),
        &mut stored,
        &writer("kubectl-create", "", "t"),
    );
    let spec = &stored["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    for field in [
        "f:clusterIP",
        "f:clusterIPs",
        "f:ipFamilies",
        "f:ipFamilyPolicy",
    ] {
        assert!(spec.get(field).is_none(), "{field}: {spec}");
    }
    assert!(
        spec.get("f:sessionAffinity").is_some(),
        "a default is the creator's: {spec}"
    );
    let ports = &spec["f:ports"];
    assert!(
        ports["k:{\"port\":80,\"protocol\":\"TCP\"}"]
            .get("f:nodePort")
            .is_none(),
        "{ports}"
    );
    assert!(
        ports["k:{\"port\":81,\"protocol\":\"TCP\"}"]
            .get("f:nodePort")
            .is_some(),
        "{ports}"
    );
}

#[test]
fn an_empty_managed_fields_list_resets_them() {
    let mut live = created_deployment();
    record_update(None, None, &mut live, &writer("kubectl-create", "", "t1"));
    let mut next = live.clone();
    next["metadata"]["managedFields"] = json!([]);
    keep_reset(&mut next);
    record_update(
        Some(&live),
        None,
        &mut next,
        &writer("kubectl-patch", "", "t2"),
    );
    assert!(
        next["metadata"].get("managedFields").is_none(),
        "{}",
        next["metadata"]
    );
}

#[test]
fn conflicts_list_a_level_before_what_lies_under_it() {
    let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
    let first = apply(Some(&live), &live, false, &writer("alice", "", "t1")).unwrap();
    let change = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "b"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 81}]}});
    let Err(ApplyError::Conflicts(conflicts)) =
        apply(Some(&first), &change, false, &writer("bob", "", "t2"))
    else {
        panic!("must conflict");
    };
    let paths: Vec<&str> = conflicts.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".spec.selector",
            ".spec.ports[port=80,protocol=\"TCP\"].targetPort"
        ]
    );
    let mut with_fields = change.clone();
    with_fields["metadata"]["managedFields"] = json!([]);
    assert!(matches!(
        apply(Some(&first), &with_fields, false, &writer("bob", "", "t2")),
        Err(ApplyError::BadRequest(m)) if m == "metadata.managedFields must be nil"
    ));
}

#[test]
fn what_the_service_account_admission_adds_is_nobodys() {
    let sent = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}});
    let token = "/var/run/secrets/kubernetes.io/serviceaccount";
    let mut stored = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "default", "serviceAccount": "default",
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "kube-api-access-x2b4c", "projected": {"defaultMode": 420}}],
            "containers": [{"name": "c", "image": "nginx", "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "kube-api-access-x2b4c", "mountPath": token, "readOnly": true}]}]}});
    record_update(
        None,
        Some(&sent),
        &mut stored,
        &writer("kubectl-run", "", "t"),
    );
    let spec = &stored["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert!(
        spec.get("f:serviceAccountName").is_none() && spec.get("f:serviceAccount").is_none(),
        "{spec}"
    );
    let volumes = spec["f:volumes"].as_object().unwrap();
    assert!(volumes.contains_key("k:{\"name\":\"data\"}"), "{spec}");
    assert!(
        !volumes.keys().any(|k| k.contains("kube-api-access")),
        "{spec}"
    );
    let mounts = spec["f:containers"]["k:{\"name\":\"c\"}"]["f:volumeMounts"]
        .as_object()
        .unwrap();
    assert!(mounts.contains_key("k:{\"mountPath\":\"/data\"}"), "{spec}");
    assert!(
        !mounts.keys().any(|k| k.contains("serviceaccount")),
        "{spec}"
    );
}
