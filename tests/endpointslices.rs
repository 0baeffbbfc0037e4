//! EndpointSlices (discovery.k8s.io/v1) as kube-controller-manager 1.33 keeps them for Services,
//! read through the API and through real kubectl: 1.33's `describe service` shows a Service's
//! endpoints from its slices, and `get endpointslices` prints upstream's columns.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use kubespec::clock::Clock;
use serde_json::{json, Value};
use support::cli::{Kubectl, Up};
use support::{cluster, minutes};

const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Watch the EndpointSlices of Service `default/<service>` until `check` holds on them (in
/// name order), at most `within` of cluster time: `check` runs after every change the watch
/// sees. On expiry, fail with `what` and what the last check saw.
async fn slices_until<T>(
    client: &Client,
    clock: &Clock,
    service: &str,
    within: Duration,
    what: &str,
    mut check: impl FnMut(&[EndpointSlice]) -> Result<T, String>,
) -> T {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let config = watcher::Config::default().labels(&format!("{SERVICE_NAME}={service}"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let name = |s: &EndpointSlice| s.metadata.name.clone().unwrap_or_default();
    let mut seen: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut listing: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut last = "nothing yet".to_string();
    let deadline = tokio::time::Instant::now() + clock.to_wall(within);
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(e))) => {
                last = format!("a watch error: {e}");
                continue;
            }
            Ok(None) => panic!("the watch of {service}'s EndpointSlices ended"),
            Err(_) => panic!(
                "timed out after {} (cluster time): expected {what}\nlast seen: {last}",
                kubespec::harness::format_duration(within)
            ),
        };
        match event {
            Event::Init => listing.clear(),
            Event::InitApply(s) => {
                listing.insert(name(&s), s);
                continue;
            }
            Event::InitDone => seen = std::mem::take(&mut listing),
            Event::Apply(s) => {
                seen.insert(name(&s), s);
            }
            Event::Delete(s) => {
                seen.remove(&name(&s));
            }
        }
        let slices: Vec<EndpointSlice> = seen.values().cloned().collect();
        match check(&slices) {
            Ok(v) => return v,
            Err(saw) => last = saw,
        }
    }
}

/// Each endpoint of the slices as (pod, address, ready, serving, terminating), by pod.
fn endpoints(slices: &[EndpointSlice]) -> Vec<(String, String, bool, bool, bool)> {
    let mut out: Vec<_> = slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                e.target_ref
                    .as_ref()
                    .and_then(|t| t.name.clone())
                    .unwrap_or_default(),
                e.addresses.join(","),
                c.ready.unwrap_or_default(),
                c.serving.unwrap_or_default(),
                c.terminating.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A busybox pod of Service `web` whose exec readiness probe passes while `/tmp/ready` exists.
fn busybox(name: &str, script: &str, extra: Value) -> Pod {
    let mut pod = json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
        "terminationGracePeriodSeconds": 60,
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", script],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 2}}]}});
    if let (Some(c), Some(extra)) = (
        pod["spec"]["containers"][0].as_object_mut(),
        extra.as_object(),
    ) {
        c.extend(extra.clone());
    }
    serde_json::from_value(pod).unwrap()
}

#[tokio::test]
async fn slices_follow_the_pods_of_a_service_as_upstream_writes_them() {
    let cluster = cluster().time_scale(20.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let clock = cluster.clock().clone();
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let service = services
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})).unwrap())
        .await
        .unwrap();
    let uid = service.metadata.uid.clone().unwrap();
    let created = serde_json::to_value(&service.metadata.creation_timestamp).unwrap();

    // With no pods yet, one empty placeholder slice, labelled and owned as upstream's.
    let placeholder = slices_until(
        &client,
        &clock,
        "web",
        minutes(2),
        "a placeholder slice",
        |s| s.first().cloned().ok_or_else(|| "no slice".to_string()),
    )
    .await;
    let meta = serde_json::to_value(&placeholder.metadata).unwrap();
    let name = placeholder.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert_eq!(meta["generateName"], "web-");
    assert_eq!(
        meta["labels"],
        json!({"tier": "front", "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    assert_eq!(
        meta["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": uid,
            "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(
        meta["annotations"],
        json!({"endpoints.kubernetes.io/last-change-trigger-time": created}),
        "the first sync follows from the Service's creation"
    );
    assert_eq!(meta["generation"], 1);
    assert_eq!(placeholder.address_type, "IPv4");
    assert!(placeholder.endpoints.is_empty() && placeholder.ports.is_none());

    // Two pods: one ready for a minute then not, one ready until it is deleted (its preStop
    // hook keeps it terminating for 20 s).
    let flip = busybox(
        "flip",
        "touch /tmp/ready; sleep 60; rm -f /tmp/ready; sleep 3600",
        json!({}),
    );
    let steady = busybox(
        "steady",
        "touch /tmp/ready; sleep 3600",
        json!({"lifecycle": {"preStop": {"sleep": {"seconds": 20}}}}),
    );
    for pod in [flip, steady] {
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let both_ready = |s: &[EndpointSlice]| {
        let e = endpoints(s);
        if e.len() == 2
            && e.iter()
                .all(|(_, _, ready, serving, t)| *ready && *serving && !t)
        {
            Ok(s.to_vec())
        } else {
            Err(format!("{e:?}"))
        }
    };
    let slices = slices_until(
        &client,
        &clock,
        "web",
        minutes(2),
        "both pods ready",
        both_ready,
    )
    .await;
    assert_eq!(slices.len(), 1, "one slice holds both");
    let slice = &slices[0];
    assert_eq!(
        slice.metadata.name.as_deref(),
        Some(name.as_str()),
        "the placeholder is updated in place"
    );
    assert!(slice.metadata.generation.unwrap_or_default() >= 2);
    assert_eq!(
        serde_json::to_value(&slice.ports).unwrap(),
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        "the named target port resolves to the container port"
    );
    let mut shown = serde_json::to_value(&slice.endpoints).unwrap();
    let rows = shown.as_array_mut().unwrap();
    rows.sort_by_key(|e| {
        e["targetRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    for (row, pod_name) in rows.iter().zip(["flip", "steady"]) {
        let pod = pods.get(pod_name).await.unwrap();
        let status = pod.status.clone().unwrap();
        assert_eq!(
            *row,
            json!({"addresses": [status.pod_ip.clone().unwrap()],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "namespace": "default", "name": pod_name, "uid": pod.metadata.uid.clone().unwrap()}})
        );
    }
    let trigger = slice
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("endpoints.kubernetes.io/last-change-trigger-time"))
        .cloned()
        .unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&trigger).is_ok(),
        "{trigger:?}"
    );

    // flip's probe starts failing: not ready, not serving.
    let flip_unready = |s: &[EndpointSlice]| {
        let e = endpoints(s);
        match e.iter().find(|x| x.0 == "flip") {
            Some((_, _, false, false, false)) => Ok(()),
            _ => Err(format!("{e:?}")),
        }
    };
    slices_until(
        &client,
        &clock,
        "web",
        minutes(3),
        "flip not ready",
        flip_unready,
    )
    .await;

    // steady is deleted: terminating (so not ready) while its preStop hook runs, then gone.
    pods.delete("steady", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = |s: &[EndpointSlice]| {
        let e = endpoints(s);
        match e.iter().find(|x| x.0 == "steady") {
            Some((_, _, false, _, true)) => Ok(()),
            _ => Err(format!("{e:?}")),
        }
    };
    slices_until(
        &client,
        &clock,
        "web",
        minutes(1),
        "steady terminating",
        terminating,
    )
    .await;
    let only_flip = |s: &[EndpointSlice]| {
        let e = endpoints(s);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        if names == ["flip"] {
            Ok(())
        } else {
            Err(format!("{e:?}"))
        }
    };
    slices_until(
        &client,
        &clock,
        "web",
        minutes(3),
        "steady gone from the slice",
        only_flip,
    )
    .await;

    // The Service goes, and its slices with it.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    slices_until(&client, &clock, "web", minutes(2), "no slices left", |s| {
        if s.is_empty() {
            Ok(())
        } else {
            Err(format!("{} slices", s.len()))
        }
    })
    .await;
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn the_apiserver_validates_slices_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let api: Api<EndpointSlice> = Api::default_namespaced(client.clone());
    let slice = |address_type: &str| -> EndpointSlice {
        serde_json::from_value(
            json!({"metadata": {"name": "manual"}, "addressType": address_type,
            "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
        )
        .unwrap()
    };
    let created = api
        .create(&PostParams::default(), &slice("IPv4"))
        .await
        .unwrap();
    let v = serde_json::to_value(&created).unwrap();
    assert_eq!(
        v["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"}])
    );
    assert_eq!(v["metadata"]["generation"], 1);
    let err = api
        .create(&PostParams::default(), &slice("IPv5"))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "EndpointSlice.discovery.k8s.io \"manual\" is invalid: addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
    );
    let mut changed = created.clone();
    changed.address_type = "IPv6".into();
    changed.endpoints[0].addresses = vec!["fd00::1".into()];
    let kube::Error::Api(status) = api
        .replace("manual", &PostParams::default(), &changed)
        .await
        .unwrap_err()
    else {
        panic!("not an API error")
    };
    assert_eq!(
        status.message,
        "EndpointSlice.discovery.k8s.io \"manual\" is invalid: addressType: Invalid value: \"IPv6\": field is immutable"
    );
    // Anything but the metadata, or the labels, moves the generation.
    let mut relabelled = created.clone();
    relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    let relabelled = api
        .replace("manual", &PostParams::default(), &relabelled)
        .await
        .unwrap();
    assert_eq!(relabelled.metadata.generation, Some(2));
    let mut annotated = relabelled.clone();
    annotated.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
    let annotated = api
        .replace("manual", &PostParams::default(), &annotated)
        .await
        .unwrap();
    assert_eq!(annotated.metadata.generation, Some(2));
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

const WEB: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 80}
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 2
";

#[test]
fn kubectl_describe_service_and_get_endpointslices_show_the_slices() {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "20"]);
    let watched = up.watch();
    let k33 = Kubectl::new("1.33", &up);
    let k27 = Kubectl::new("1.27", &up);
    let file = k33.file("web.yaml", WEB);
    k33.ok(&["apply", "-f", &file]);

    let (slice, ips) = watched.block_on(async {
        // A client lives on the runtime it was made on.
        let client = kubespec::cluster::client_for(up.url()).unwrap();
        let clock = Clock::new(20.0);
        slices_until(
            &client,
            &clock,
            "web",
            minutes(5),
            "two ready endpoints",
            |s| {
                let e = endpoints(s);
                if s.len() == 1 && e.len() == 2 && e.iter().all(|x| x.2) {
                    Ok((s[0].clone(), e.into_iter().map(|x| x.1).collect::<Vec<_>>()))
                } else {
                    Err(format!("{e:?}"))
                }
            },
        )
        .await
    });
    let name = slice.metadata.name.clone().unwrap();

    // 1.33 reads a Service's endpoints from its EndpointSlices.
    let describe = k33.ok(&["describe", "svc", "web"]);
    let line = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_else(|| panic!("no Endpoints line:\n{describe}"));
    let shown: BTreeSet<&str> = line["Endpoints:".len()..].trim().split(',').collect();
    let expected: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:80")).collect();
    assert_eq!(
        shown,
        expected.iter().map(String::as_str).collect(),
        "{describe}"
    );

    for k in [&k33, &k27] {
        let out = k.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ]);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
            "{out}"
        );
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[1][..3], [name.as_str(), "IPv4", "80"], "{out}");
        let addresses: BTreeSet<&str> = lines[1][3].split(',').collect();
        assert_eq!(addresses, ips.iter().map(String::as_str).collect(), "{out}");
    }
}
