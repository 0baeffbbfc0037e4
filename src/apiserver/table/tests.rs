use super::*;
use chrono::{Duration, SecondsFormat};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ago(secs: i64) -> String {
    (now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn cell(resource: &str, obj: &Value, column: &str) -> Value {
    let cols = columns(resource);
    let idx = cols
        .iter()
        .position(|c| c.name == column)
        .unwrap_or_else(|| panic!("no column {column} for {resource}"));
    let row = cells(resource, obj, now());
    assert_eq!(
        row.len(),
        cols.len(),
        "cells/columns length mismatch for {resource}"
    );
    row[idx].clone()
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(300)},
        "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"},
        "status": status,
    })
}

#[test]
fn human_duration_boundaries() {
    let cases: &[(i64, &str)] = &[
        (-3, "<invalid>"),
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (123, "2m3s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 4 * 60, "3h4m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (5 * 86400, "5d"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
        (10 * 365 * 86400 + 40 * 86400, "10y"),
    ];
    for (secs, want) in cases {
        assert_eq!(
            human_duration(Duration::seconds(*secs)),
            *want,
            "for {secs}s"
        );
    }
    // Fractions truncate toward zero, as Go's int(d.Seconds()) does.
    assert_eq!(human_duration(Duration::milliseconds(-1900)), "0s");
    assert_eq!(human_duration(Duration::milliseconds(59_999)), "59s");
}

#[test]
fn pod_columns_match_upstream() {
    let cols = columns("pods");
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[3].type_, "string");
    assert!(cols[..5].iter().all(|c| c.priority == 0));
    assert!(cols[5..].iter().all(|c| c.priority == 1));
}

#[test]
fn crash_looping_pod() {
    let p = pod(json!({
        "phase": "Running",
        "podIP": "10.0.0.7",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{
            "name": "app", "ready": false, "restartCount": 3, "started": false,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(12)}},
        }],
    }));
    let row = cells("pods", &p, now());
    assert_eq!(row[0], json!("web"));
    assert_eq!(row[1], json!("0/1"));
    assert_eq!(row[2], json!("CrashLoopBackOff"));
    assert_eq!(row[3], json!("3 (12s ago)"));
    assert_eq!(row[4], json!("5m"));
    assert_eq!(row[5], json!("10.0.0.7"));
    assert_eq!(row[6], json!("node-1"));
    assert_eq!(row[7], json!("<none>"));
    assert_eq!(row[8], json!("<none>"));
}

#[test]
fn restarts_without_termination_time_have_no_suffix() {
    let p = pod(json!({
        "phase": "Running",
        "containerStatuses": [{
            "name": "app", "ready": true, "restartCount": 2,
            "state": {"running": {"startedAt": ago(30)}},
        }],
    }));
    assert_eq!(cell("pods", &p, "Restarts"), json!("2"));
    assert_eq!(cell("pods", &p, "Status"), json!("Running"));
    assert_eq!(cell("pods", &p, "Ready"), json!("1/1"));
}

#[test]
fn image_pull_backoff_pod() {
    let p = pod(json!({
        "phase": "Pending",
        "containerStatuses": [{
            "name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}},
        }],
    }));
    assert_eq!(cell("pods", &p, "Status"), json!("ImagePullBackOff"));
    assert_eq!(cell("pods", &p, "Restarts"), json!("0"));
    assert_eq!(cell("pods", &p, "Ready"), json!("0/1"));
}

#[test]
fn completed_pod_and_row_conditions() {
    let p = pod(json!({
        "phase": "Succeeded",
        "containerStatuses": [{
            "name": "app", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(60)}},
        }],
    }));
    assert_eq!(cell("pods", &p, "Status"), json!("Completed"));
    assert_eq!(cell("pods", &p, "Ready"), json!("0/1"));
    let table = build_table("pods", &[&p], "42", "None", now());
    assert_eq!(
        table["rows"][0]["conditions"][0]["type"],
        json!("Completed")
    );
    assert_eq!(
        table["rows"][0]["conditions"][0]["reason"],
        json!("Succeeded")
    );
    assert_eq!(table["rows"][0]["object"], Value::Null);
}

#[test]
fn terminated_without_reason_reports_exit_code_or_signal() {
    let p = pod(json!({
        "phase": "Failed",
        "containerStatuses": [{
            "name": "app", "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "signal": 9}},
        }],
    }));
    assert_eq!(cell("pods", &p, "Status"), json!("Signal:9"));
    let p = pod(json!({
        "phase": "Failed",
        "containerStatuses": [{
            "name": "app", "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}},
        }],
    }));
    assert_eq!(cell("pods", &p, "Status"), json!("ExitCode:2"));
}

#[test]
fn terminating_pod() {
    let mut p = pod(json!({
        "phase": "Running",
        "containerStatuses": [{
            "name": "app", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": ago(100)}},
        }],
    }));
    p["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cell("pods", &p, "Status"), json!("Terminating"));
    assert_eq!(cell("pods", &p, "Ready"), json!("1/1"));

    // A terminal pod being deleted keeps its terminal reason.
    let mut done = pod(json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cell("pods", &done, "Status"), json!("Succeeded"));

    // NodeLost pods being deleted read Unknown.
    let mut lost = pod(json!({"phase": "Running", "reason": "NodeLost"}));
    lost["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cell("pods", &lost, "Status"), json!("Unknown"));
}

#[test]
fn init_container_progress_and_failures() {
    let mut p = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [
            {"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "init-b", "restartCount": 0, "state": {"running": {"startedAt": ago(5)}}},
        ],
        "containerStatuses": [{
            "name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}},
        }],
    }));
    p["spec"]["initContainers"] = json!([{"name": "init-a"}, {"name": "init-b"}]);
    assert_eq!(cell("pods", &p, "Status"), json!("Init:1/2"));

    p["status"]["initContainerStatuses"][1] = json!({
        "name": "init-b", "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}},
    });
    assert_eq!(cell("pods", &p, "Status"), json!("Init:CrashLoopBackOff"));
    assert_eq!(cell("pods", &p, "Restarts"), json!("4 (20s ago)"));

    p["status"]["initContainerStatuses"][1] = json!({
        "name": "init-b", "restartCount": 0,
        "state": {"terminated": {"exitCode": 3, "reason": "Error"}},
    });
    assert_eq!(cell("pods", &p, "Status"), json!("Init:Error"));
}

#[test]
fn native_sidecar_pod_is_running() {
    let mut p = pod(json!({
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "initContainerStatuses": [{
            "name": "proxy", "ready": true, "started": true, "restartCount": 1,
            "state": {"running": {"startedAt": ago(50)}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(55)}},
        }],
        "containerStatuses": [{
            "name": "app", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": ago(40)}},
        }],
    }));
    p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    assert_eq!(cell("pods", &p, "Ready"), json!("2/2"));
    assert_eq!(cell("pods", &p, "Status"), json!("Running"));
    assert_eq!(cell("pods", &p, "Restarts"), json!("1 (55s ago)"));
}

#[test]
fn completed_container_with_running_sibling_reports_readiness() {
    let p = json!({
        "metadata": {"name": "two", "creationTimestamp": ago(10)},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        },
    });
    assert_eq!(cell("pods", &p, "Status"), json!("NotReady"));
    assert_eq!(cell("pods", &p, "Ready"), json!("1/2"));
}

#[test]
fn scheduling_gated_and_readiness_gates() {
    let mut p = pod(json!({
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
            {"type": "example.com/gate", "status": "True"},
        ],
    }));
    p["spec"]["readinessGates"] = json!([
        {"conditionType": "example.com/gate"},
        {"conditionType": "example.com/other"},
    ]);
    assert_eq!(cell("pods", &p, "Status"), json!("SchedulingGated"));
    assert_eq!(cell("pods", &p, "Readiness Gates"), json!("1/2"));
}

#[test]
fn node_status_roles_and_addresses() {
    let node = json!({
        "metadata": {
            "name": "cp-1",
            "creationTimestamp": ago(3 * 86400),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"},
        },
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "cp-1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12"},
        },
    });
    let row = cells("nodes", &node, now());
    assert_eq!(row[1], json!("Ready,SchedulingDisabled"));
    assert_eq!(row[2], json!("control-plane,master"));
    assert_eq!(row[3], json!("3d"));
    assert_eq!(row[4], json!("v1.33.1"));
    assert_eq!(row[5], json!("172.18.0.2"));
    assert_eq!(row[6], json!("<none>"));
    assert_eq!(row[7], json!("Debian GNU/Linux 12"));
    assert_eq!(row[8], json!("<unknown>"));

    let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(cell("nodes", &bare, "Status"), json!("NotReady"));
    assert_eq!(cell("nodes", &bare, "Roles"), json!("<none>"));
    assert_eq!(cell("nodes", &bare, "Age"), json!("<unknown>"));
    let no_conditions = json!({"metadata": {"name": "n"}});
    assert_eq!(cell("nodes", &no_conditions, "Status"), json!("Unknown"));
}

#[test]
fn event_columns_and_cells() {
    let names: Vec<&str> = columns("events").iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17f", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(30),
        "count": 7,
    });
    let row = cells("events", &ev, now());
    assert_eq!(row[0], json!("30s"));
    assert_eq!(row[1], json!("Warning"));
    assert_eq!(row[2], json!("BackOff"));
    assert_eq!(row[3], json!("pod/web"));
    assert_eq!(row[4], json!("spec.containers{app}"));
    assert_eq!(row[5], json!("kubelet, node-1"));
    assert_eq!(row[6], json!("Back-off restarting failed container"));
    assert_eq!(row[7], json!("10m"));
    assert_eq!(row[8], json!(7));
    assert_eq!(row[9], json!("web.17f"));
}

#[test]
fn event_time_fallbacks() {
    // New-style event: no legacy timestamps, no count, no series.
    let ev = json!({
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "eventTime": "2025-06-01T11:59:15.123456Z",
        "reportingComponent": "scheduler",
        "reportingInstance": "scheduler-1",
        "type": "Normal",
        "reason": "Scheduled",
    });
    let row = cells("events", &ev, now());
    assert_eq!(row[0], json!("44s"));
    assert_eq!(row[3], json!("node"));
    assert_eq!(row[5], json!("scheduler, scheduler-1"));
    assert_eq!(row[7], json!("44s"));
    assert_eq!(row[8], json!(1));

    // A series overrides last seen and count.
    let mut series = ev.clone();
    series["series"] = json!({"count": 5, "lastObservedTime": "2025-06-01T11:59:55.000000Z"});
    let row = cells("events", &series, now());
    assert_eq!(row[0], json!("5s"));
    assert_eq!(row[8], json!(5));

    // Nothing at all: unknown.
    let empty = json!({"metadata": {"name": "x"}});
    let row = cells("events", &empty, now());
    assert_eq!(row[0], json!("<unknown>"));
    assert_eq!(row[7], json!("<unknown>"));

    // events.k8s.io/v1 shape.
    let v1 = json!({
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "y"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up",
        "deprecatedCount": 2,
        "deprecatedLastTimestamp": ago(3),
        "deprecatedFirstTimestamp": ago(90),
        "reportingController": "deployment-controller",
    });
    let row = cells("events", &v1, now());
    assert_eq!(row[0], json!("3s"));
    assert_eq!(row[3], json!("deployment/web"));
    assert_eq!(row[5], json!("deployment-controller"));
    assert_eq!(row[6], json!("Scaled up"));
    assert_eq!(row[8], json!(2));
}

#[test]
fn deployment_and_replicaset_cells() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(7200)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "busybox"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    let row = cells("deployments", &d, now());
    assert_eq!(
        row,
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("120m"),
            json!("app,side"),
            json!("nginx:1,busybox"),
            json!("app=web,tier in (a,b)"),
        ]
    );
    let rs = json!({
        "metadata": {"name": "web-abc"},
        "spec": {"selector": {}, "template": {"spec": {"containers": []}}},
        "status": {"replicas": 1},
    });
    let row = cells("replicasets", &rs, now());
    assert_eq!(row[1], json!(1));
    assert_eq!(row[2], json!(1));
    assert_eq!(row[3], json!(0));
    assert_eq!(row[4], json!("<unknown>"));
    assert_eq!(row[7], json!("<none>"));
}

#[test]
fn small_resources() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(cells("configmaps", &cm, now())[1], json!(3));
    let sec = json!({"metadata": {"name": "s"}, "data": {"a": "MQ=="}});
    assert_eq!(cells("secrets", &sec, now())[1], json!("Opaque"));
    assert_eq!(cells("secrets", &sec, now())[2], json!(1));
    let sa = json!({"metadata": {"name": "default"}, "secrets": []});
    assert_eq!(cells("serviceaccounts", &sa, now())[1], json!(0));
    let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
    assert_eq!(cells("leases", &lease, now())[1], json!("node-1"));
    let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
    assert_eq!(cells("namespaces", &ns, now())[1], json!("Active"));
}

#[test]
fn services_and_endpoints() {
    let svc = json!({
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"},
        },
    });
    let row = cells("services", &svc, now());
    assert_eq!(row[1], json!("NodePort"));
    assert_eq!(row[2], json!("10.96.0.10"));
    assert_eq!(row[3], json!("<none>"));
    assert_eq!(row[4], json!("80:30080/TCP,53/UDP"));
    assert_eq!(row[6], json!("app=web"));

    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
    assert_eq!(cells("services", &lb, now())[3], json!("<pending>"));
    assert_eq!(cells("services", &lb, now())[2], json!("<none>"));

    let ep = json!({
        "metadata": {"name": "web"},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 8080}],
        }],
    });
    assert_eq!(
        cells("endpoints", &ep, now())[1],
        json!("10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more...")
    );
    let empty = json!({"metadata": {"name": "none"}});
    assert_eq!(cells("endpoints", &empty, now())[1], json!("<none>"));
}

#[test]
fn endpoint_slices() {
    let names: Vec<&str> = columns("endpointslices").iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "AddressType", "Ports", "Endpoints", "Age"]);
    let slice = json!({
        "metadata": {"name": "web-x7k2p", "creationTimestamp": ago(90)},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
            {"addresses": ["10.0.0.3", "10.0.0.4"]},
        ],
        "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}],
    });
    assert_eq!(
        cells("endpointslices", &slice, now()),
        vec![
            json!("web-x7k2p"),
            json!("IPv4"),
            json!("80,metrics,*"),
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
            json!("90s"),
        ]
    );
    let placeholder =
        json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4", "endpoints": null});
    let row = cells("endpointslices", &placeholder, now());
    assert_eq!((&row[2], &row[3]), (&json!("<unset>"), &json!("<unset>")));
}

#[test]
fn default_table_and_include_object() {
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "default", "creationTimestamp": "2024-03-04T05:06:07Z"},
        "rules": [],
    });
    let cols = columns("roles");
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[1].name, "Created At");
    assert_eq!(cols[1].type_, "date");
    assert_eq!(
        cells("roles", &role, now()),
        vec![json!("r"), json!("2024-03-04T05:06:07Z")]
    );

    let table = build_table("roles", &[&role], "7", "", now());
    assert_eq!(table["kind"], json!("Table"));
    assert_eq!(table["apiVersion"], json!("meta.k8s.io/v1"));
    assert_eq!(table["metadata"]["resourceVersion"], json!("7"));
    assert_eq!(table["columnDefinitions"][0]["name"], json!("Name"));
    assert_eq!(table["columnDefinitions"][0]["format"], json!("name"));
    assert_eq!(table["columnDefinitions"][1]["priority"], json!(0));
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], json!("PartialObjectMetadata"));
    assert_eq!(object["apiVersion"], json!("meta.k8s.io/v1"));
    assert_eq!(object["metadata"]["name"], json!("r"));

    let full = build_table("roles", &[&role], "7", "Object", now());
    assert_eq!(full["rows"][0]["object"], role);

    let empty = build_table("roles", &[], "", "Metadata", now());
    assert_eq!(empty["rows"], Value::Null);
    assert_eq!(empty["metadata"], json!({}));
    let empty_pods = build_table("pods", &[], "9", "Metadata", now());
    assert_eq!(empty_pods["rows"], json!([]));

    assert!(is_valid_include_object(""));
    assert!(is_valid_include_object("None"));
    assert!(!is_valid_include_object("metadata"));
}

#[test]
fn every_printer_has_matching_cell_count() {
    let obj = json!({"metadata": {"name": "x"}});
    for resource in [
        "pods",
        "deployments",
        "replicasets",
        "replicationcontrollers",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
        "nodes",
        "events",
        "leases",
        "namespaces",
        "services",
        "endpoints",
        "endpointslices",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "widgets",
    ] {
        assert_eq!(
            cells(resource, &obj, now()).len(),
            columns(resource).len(),
            "{resource}"
        );
    }
}

#[test]
fn jobs_and_cronjobs() {
    let job = json!({
        "metadata": {"name": "j", "creationTimestamp": ago(400)},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {
            "succeeded": 1,
            "startTime": ago(400),
            "completionTime": ago(280),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    });
    let row = cells("jobs", &job, now());
    assert_eq!(row[1], json!("Complete"));
    assert_eq!(row[2], json!("1/1"));
    assert_eq!(row[3], json!("2m"));
    assert_eq!(row[7], json!("<none>"));

    let cj = json!({
        "metadata": {"name": "cj"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
    });
    let row = cells("cronjobs", &cj, now());
    assert_eq!(row[1], json!("*/5 * * * *"));
    assert_eq!(row[2], json!("<none>"));
    assert_eq!(row[3], json!("False"));
    assert_eq!(row[4], json!(0));
    assert_eq!(row[5], json!("<none>"));
}
