//! kube-rs against the embedded apiserver: CRUD on every served resource, watch/reflector
//! consistency, and recovery from compacted watch history.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher};
use kube::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use support::{cluster, default_service_account};

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }))
    .unwrap()
}

/// Create, get, list, patch (merge), replace, delete one object, checking what a client sees.
async fn crud<K>(api: Api<K>, obj: K, name: &str)
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let meta = created.meta();
    assert_eq!(meta.name.as_deref(), Some(name));
    assert!(meta.uid.is_some(), "uid set on create");
    assert!(
        meta.creation_timestamp.is_some(),
        "creationTimestamp set on create"
    );
    let rv1 = meta.resource_version.clone().expect("resourceVersion");

    let got = api.get(name).await.expect("get");
    assert_eq!(got.meta().resource_version.as_deref(), Some(rv1.as_str()));

    let list = api.list(&ListParams::default()).await.expect("list");
    assert!(list
        .items
        .iter()
        .any(|o| o.meta().name.as_deref() == Some(name)));

    let patched = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"patched": "yes"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched
            .meta()
            .labels
            .as_ref()
            .and_then(|l| l.get("patched"))
            .map(String::as_str),
        Some("yes")
    );
    let rv2 = patched.meta().resource_version.clone().unwrap();
    assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());

    // A replace with the stale resourceVersion conflicts.
    let mut stale = got.clone();
    stale.meta_mut().annotations = Some([("k".to_string(), "v".to_string())].into());
    let err = api
        .replace(name, &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );

    let mut fresh = patched.clone();
    fresh.meta_mut().annotations = Some([("k".to_string(), "v".to_string())].into());
    let replaced = api
        .replace(name, &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_eq!(
        replaced
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get("k"))
            .map(String::as_str),
        Some("v")
    );

    api.delete(name, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    if K::kind(&()) == "Namespace" {
        // A namespace stays, Terminating, until the namespace controller has emptied it
        // (tests/namespaces.rs); this cluster runs none.
        let marked = api.get(name).await.expect("still there, terminating");
        assert!(marked.meta().deletion_timestamp.is_some());
        return;
    }
    let err = api.get(name).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn crud_on_every_served_resource() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let ns = "default";
    crud(
        Api::<Pod>::namespaced(client.clone(), ns),
        pod("p", &[("app", "web")]),
        "p",
    )
    .await;
    crud(
        Api::<Namespace>::all(client.clone()),
        serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap(),
        "team-a",
    )
    .await;
    crud(
        Api::<Node>::all(client.clone()),
        serde_json::from_value(
            json!({"metadata": {"name": "node-1"}, "status": {"capacity": {"cpu": "4"}}}),
        )
        .unwrap(),
        "node-1",
    )
    .await;
    crud(
        Api::<Service>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap(),
        "web",
    )
    .await;
    crud(
        Api::<Endpoints>::namespaced(client.clone(), ns),
        serde_json::from_value(
            json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "127.0.0.2"}]}]}),
        )
        .unwrap(),
        "web",
    )
    .await;
    crud(
        Api::<ConfigMap>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}})).unwrap(),
        "cfg",
    )
    .await;
    crud(
        Api::<Secret>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"a": "1"}}))
            .unwrap(),
        "s",
    )
    .await;
    crud(
        Api::<ServiceAccount>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap(),
        "robot",
    )
    .await;
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    crud(
        Api::<Deployment>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}})).unwrap(),
        "web",
    )
    .await;
    crud(
        Api::<ReplicaSet>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "web-1"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}})).unwrap(),
        "web-1",
    )
    .await;
    crud(
        Api::<Lease>::namespaced(client.clone(), "kube-node-lease"),
        serde_json::from_value(json!({"metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}})).unwrap(),
        "node-1",
    )
    .await;
    crud(
        Api::<Event>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Scheduled", "message": "Successfully assigned default/p to node-1", "type": "Normal"})).unwrap(),
        "p.1",
    )
    .await;
    crud(
        Api::<EventV1>::namespaced(client.clone(), ns),
        serde_json::from_value(json!({"metadata": {"name": "p.2"}, "regarding": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Scheduled", "note": "Successfully assigned default/p to node-1", "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-host", "action": "Binding"})).unwrap(),
        "p.2",
    )
    .await;
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn events_written_as_events_k8s_io_read_back_as_core_v1() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    v1.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "web.1"}, "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "reason": "FailedScheduling", "note": "0/1 nodes are available", "type": "Warning", "action": "Scheduling",
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-h"}))
        .unwrap(),
    )
    .await
    .unwrap();
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    let e = core.get("web.1").await.unwrap();
    assert_eq!(e.involved_object.name.as_deref(), Some("web"));
    assert_eq!(e.message.as_deref(), Some("0/1 nodes are available"));
    assert_eq!(e.reporting_component.as_deref(), Some("default-scheduler"));
    assert!(e.first_timestamp.is_none());
    assert!(e.event_time.is_some());
    let by_field = core
        .list(&ListParams::default().fields("involvedObject.name=web,involvedObject.kind=Pod"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);
    let by_source = core
        .list(&ListParams::default().fields("reportingComponent=default-scheduler,type=Warning"))
        .await
        .unwrap();
    assert_eq!(by_source.items.len(), 1);
    // events.k8s.io/v1 selects by its own field names, as upstream converts them ...
    let selected = v1
        .list(&ListParams::default().fields(
            "regarding.name=web,regarding.kind=Pod,reportingController=default-scheduler,reason=FailedScheduling",
        ))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let none = v1
        .list(&ListParams::default().fields("regarding.name=other"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    // ... and not by core/v1's.
    let core_names = v1
        .list(&ListParams::default().fields("involvedObject.name=web"))
        .await
        .expect_err("core field names are not events.k8s.io's");
    assert!(
        matches!(&core_names, kube::Error::Api(e) if e.code == 400 && e.message == "field label not supported: involvedObject.name"),
        "{core_names:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn subresources_status_scale_and_binding() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("p", &[]))
        .await
        .unwrap();

    // The main resource ignores status; the status subresource ignores spec.
    let ignored = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().phase.as_deref(), Some("Pending"));
    let status = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}, "spec": {"nodeName": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(status.spec.unwrap().node_name, None);

    let binding: Binding = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}}),
    )
    .unwrap();
    let raw = http::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    client.request::<serde_json::Value>(raw).await.unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let scheduled = bound.status.unwrap().conditions.unwrap();
    assert!(scheduled
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    let again = http::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    let err = client
        .request::<serde_json::Value>(again)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("is already assigned to node \"node-1\"")),
        "{err:?}"
    );

    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5));
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn graceful_delete_finalizers_and_namespace_deletion() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "scratch"}})).unwrap(),
        )
        .await
        .unwrap();
    // No controller-manager runs: the account it would make, for the ServiceAccount admission.
    default_service_account(&client, "scratch").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "scratch");
    let mut bound = pod("bound", &[]);
    bound.spec.as_mut().unwrap().node_name = Some("node-1".into());
    pods.create(&PostParams::default(), &bound).await.unwrap();

    // A scheduled pod is deleted gracefully: it stays, marked, until its kubelet finishes.
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let marked = pods.get("bound").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete("bound", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_none());

    // Finalizers hold deletion until they are removed.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "scratch");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("held", &DeleteParams::foreground())
        .await
        .unwrap();
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        held.metadata.finalizers,
        Some(vec![
            "example.com/hold".to_string(),
            "foregroundDeletion".to_string()
        ]),
        "the propagation policy is recorded as a finalizer"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer completes deletion"
    );

    // Deleting a namespace marks it Terminating; nothing new may be created in it meanwhile.
    // Emptying it is the namespace controller's work (tests/namespaces.rs): with the
    // apiserver alone its content stays, and a second delete is a Conflict until the
    // controller's finalizer is gone.
    pods.create(&PostParams::default(), &pod("left", &[]))
        .await
        .unwrap();
    let marked = namespaces
        .delete("scratch", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the namespace, marked");
    assert_eq!(
        marked.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    assert!(marked.metadata.deletion_grace_period_seconds.is_none());
    let err = pods
        .create(&PostParams::default(), &pod("late", &[]))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(ref s) => {
            assert_eq!(s.code, 403, "{err:?}");
            assert_eq!(
                s.message,
                "pods \"late\" is forbidden: unable to create new content in namespace scratch because it is being terminated"
            );
            let details = s.details.as_ref().expect("details");
            assert_eq!(details.causes[0].reason, "NamespaceTerminating");
            assert_eq!(details.causes[0].field, "metadata.namespace");
        }
        ref e => panic!("expected a 403, got {e:?}"),
    }
    assert!(pods.get_opt("left").await.unwrap().is_some());
    let again = namespaces
        .delete("scratch", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 409 && s.message.ends_with("The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.")),
        "{again:?}"
    );
    // An update keeps the finalizers; `finalize` removes them, and removing the last one of a
    // terminating namespace completes its deletion.
    let mut edited = namespaces.get("scratch").await.unwrap();
    edited.spec = None;
    let edited = namespaces
        .replace("scratch", &PostParams::default(), &edited)
        .await
        .unwrap();
    assert_eq!(
        edited.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
    let finalized: Namespace = namespaces
        .replace_subresource(
            "finalize",
            "scratch",
            &PostParams::default(),
            &json!({"metadata": {"name": "scratch"}, "spec": {"finalizers": []}}),
        )
        .await
        .unwrap();
    assert_eq!(
        finalized
            .spec
            .and_then(|s| s.finalizers)
            .unwrap_or_default(),
        Vec::<String>::new()
    );
    assert!(namespaces.get_opt("scratch").await.unwrap().is_none());
    // The namespaces every cluster has may not be deleted.
    for immortal in ["default", "kube-system", "kube-public"] {
        let err = namespaces
            .delete(immortal, &DeleteParams::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 403 && s.message == format!("namespaces \"{immortal}\" is forbidden: this namespace may not be deleted")),
            "{err:?}"
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn generate_name_and_label_selectors_and_pagination() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    for i in 0..7 {
        let mut p = pod("", &[("app", if i % 2 == 0 { "web" } else { "db" })]);
        p.metadata.name = None;
        p.metadata.generate_name = Some("web-7d4b9c8f5-".into());
        let created = pods.create(&PostParams::default(), &p).await.unwrap();
        let name = created.metadata.name.unwrap();
        assert!(
            name.starts_with("web-7d4b9c8f5-") && name.len() == "web-7d4b9c8f5-".len() + 5,
            "{name}"
        );
    }
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 4);
    let not_web = pods
        .list(&ListParams::default().labels("app notin (web)"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 3);

    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().unwrap();
    // A write between pages does not show up: pages are consistent at the first page's revision.
    let mut extra = pod("zzz-late", &[]);
    extra.metadata.generate_name = None;
    pods.create(&PostParams::default(), &extra).await.unwrap();
    let second = pods
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 4);
    assert!(second.metadata.continue_.is_none());
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_reflector_stays_in_sync_through_a_thousand_mixed_writes() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let (reader, writer) = reflector::store::<Pod>();
    // Every event the reflector applies is announced, so the wait below re-checks on each.
    let (applied, mut changes) = tokio::sync::watch::channel(0u64);
    let stream =
        reflector(writer, watcher(pods.clone(), watcher::Config::default())).for_each(move |_| {
            applied.send_modify(|n| *n += 1);
            async {}
        });
    let reflector_task = tokio::spawn(stream);
    reader.wait_until_ready().await.unwrap();

    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut seed: u64 = 42;
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..1000 {
        let live: Vec<String> = expected.keys().cloned().collect();
        match rand(3) {
            0 | 1 if live.len() > 5 && rand(2) == 0 => {
                let name = &live[rand(live.len() as u64) as usize];
                pods.delete(name, &DeleteParams::default()).await.unwrap();
                expected.remove(name);
            }
            0 if !live.is_empty() => {
                let name = &live[rand(live.len() as u64) as usize];
                let value = format!("v{i}");
                pods.patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"v": value}}})),
                )
                .await
                .unwrap();
                expected.insert(name.clone(), value);
            }
            _ => {
                let name = format!("p-{i}");
                let value = format!("v{i}");
                pods.create(&PostParams::default(), &pod(&name, &[("v", &value)]))
                    .await
                    .unwrap();
                expected.insert(name, value);
            }
        }
    }
    let within = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + cluster.clock().to_wall(within);
    let snapshot = |reader: &reflector::Store<Pod>| -> BTreeMap<String, String> {
        reader
            .state()
            .iter()
            .map(|p| {
                (
                    p.metadata.name.clone().unwrap(),
                    p.metadata.labels.as_ref().unwrap()["v"].clone(),
                )
            })
            .collect()
    };
    loop {
        let seen = snapshot(&reader);
        if seen == expected {
            break;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(r) => r.expect("the reflector runs"),
            Err(_) if snapshot(&reader) == expected => break,
            Err(_) => panic!(
                "reflector did not converge within {within:?} (cluster time): expected {} pods, reflector has {} (first difference: {:?})",
                expected.len(),
                seen.len(),
                expected.iter().find(|(k, v)| seen.get(*k) != Some(*v))
            ),
        }
    }
    reflector_task.abort();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_gets_an_in_stream_410() {
    let cluster = cluster().apiserver_only().history_limit(20).start().await;
    let client: Client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("first", &[]))
        .await
        .unwrap();
    let old_rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..50 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    // A raw watch from the old revision: 200 with one ERROR event carrying a 410 Expired Status.
    let mut stream = pods
        .watch(&kube::api::WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    let event = stream.try_next().await.unwrap();
    match event {
        Some(kube::api::WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status
                    .message
                    .starts_with(&format!("too old resource version: {old_rv} (")),
                "{}",
                status.message
            );
        }
        other => panic!("expected an ERROR event with a 410 Status, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends after the error"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_watcher_that_falls_behind_compacted_history_relists_and_converges() {
    use kube::runtime::watcher::Event as WatchEvent;
    let cluster = cluster().apiserver_only().history_limit(20).start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().unwrap());
    pods.create(&PostParams::default(), &pod("first", &[]))
        .await
        .unwrap();
    // The server ends each watch after 1 s; the watcher then resumes from its last revision.
    let mut events = watcher(pods.clone(), watcher::Config::default().timeout(1)).boxed();
    loop {
        match events.try_next().await.unwrap() {
            Some(WatchEvent::InitDone) => break,
            Some(_) => {}
            None => panic!("watcher ended before its initial list"),
        }
    }
    // While nobody polls the watcher its watch times out (after 1 s of cluster time), and 50
    // writes compact the history past the revision it will resume from.
    cluster.clock().sleep(Duration::from_millis(1500)).await;
    for i in 0..50 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    let mut saw_expired = false;
    let mut relisted = Vec::new();
    let deadline = tokio::time::Instant::now() + cluster.clock().to_wall(Duration::from_secs(30));
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the watcher relists within 30 s (cluster time)");
        match next {
            Some(Err(watcher::Error::WatchError(status))) if status.code == 410 => {
                saw_expired = true
            }
            Some(Err(e)) => panic!("unexpected watcher error {e:?}"),
            Some(Ok(WatchEvent::Init)) => relisted.clear(),
            Some(Ok(WatchEvent::InitApply(p))) => relisted.push(p.metadata.name.unwrap()),
            Some(Ok(WatchEvent::InitDone)) => break,
            Some(Ok(_)) => {}
            None => panic!("watcher ended"),
        }
    }
    assert!(saw_expired, "the resumed watch got 410 Expired");
    assert_eq!(
        relisted.len(),
        51,
        "the relist sees every pod: {relisted:?}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn services_get_unique_cluster_ips_from_the_service_range() {
    let cluster = cluster().apiserver_only().start().await;
    let services: Api<Service> = Api::default_namespaced(cluster.client().unwrap());
    let svc = |name: &str, ip: Option<&str>| -> Service {
        let mut spec = json!({"selector": {"app": name}, "ports": [{"port": 80}]});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let a = services
        .create(&PostParams::default(), &svc("a", None))
        .await
        .unwrap();
    let b = services
        .create(&PostParams::default(), &svc("b", None))
        .await
        .unwrap();
    let ip = |s: &Service| s.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    for s in [&a, &b] {
        let addr: std::net::Ipv4Addr = ip(s).parse().unwrap();
        let [o1, o2, _, _] = addr.octets();
        assert!(
            o1 == 10 && (96..112).contains(&o2),
            "{addr} is outside 10.96.0.0/12"
        );
        assert_eq!(s.spec.as_ref().unwrap().cluster_ips, Some(vec![ip(s)]));
    }
    assert_ne!(ip(&a), ip(&b));
    let err = services
        .create(&PostParams::default(), &svc("c", Some(&ip(&a))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("provided IP is already allocated")),
        "{err:?}"
    );
    let headless = services
        .create(&PostParams::default(), &svc("d", Some("None")))
        .await
        .unwrap();
    let spec = headless.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    // Headless Services keep their families too (one IPv4 slice, not one per family).
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    let mut selectorless = svc("e", Some("None"));
    selectorless.spec.as_mut().unwrap().selector = None;
    let selectorless = services
        .create(&PostParams::default(), &selectorless)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(selectorless.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(
        selectorless.ip_family_policy.as_deref(),
        Some("RequireDualStack")
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_watch_ends_at_its_timeout_even_while_writes_never_pause() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let pods = pods.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                pods.create(&PostParams::default(), &pod(&format!("flood-{i}"), &[]))
                    .await
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    let started = std::time::Instant::now();
    let mut stream = pods
        .watch(&kube::api::WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let mut events = 0;
    let ended = cluster
        .clock()
        .timeout(Duration::from_secs(20), async {
            while let Some(e) = stream.next().await {
                e.unwrap();
                events += 1;
            }
        })
        .await;
    stop.cancel();
    let written = writer.await.unwrap();
    assert!(
        ended.is_ok(),
        "a watch with timeoutSeconds=1 still open after 20 s of cluster time ({events} events, {written} writes)"
    );
    assert!(events > 0, "the watch saw none of {written} writes");
    assert!(started.elapsed() >= Duration::from_millis(900));
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// One keep-alive connection: a list, then a watch on it that sees another client's write and
/// ends at its timeout, then more requests. The server moves a streaming connection to the
/// runtime that serves watches and back; a client sees one ordinary connection throughout.
#[tokio::test]
async fn one_connection_serves_requests_before_during_and_after_a_watch() {
    use http_body_util::{BodyExt, Empty};

    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let tcp = tokio::net::TcpStream::connect(cluster.addr())
        .await
        .unwrap();
    let (mut conn, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    let driver = tokio::spawn(driver);
    let get = |path: &str| {
        hyper::Request::get(path)
            .body(Empty::<hyper::body::Bytes>::new())
            .unwrap()
    };
    let list = conn
        .send_request(get("/api/v1/namespaces/default/pods"))
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: serde_json::Value =
        serde_json::from_slice(&list.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let watch = conn
        .send_request(get(&format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=2"
        )))
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("seen-by-the-watch", &[]))
        .await
        .unwrap();
    // The whole watch: the event, then the end of the stream at the timeout.
    let body = tokio::time::timeout(Duration::from_secs(20), watch.into_body().collect())
        .await
        .expect("a watch with timeoutSeconds=2 ended within 20 s")
        .unwrap()
        .to_bytes();
    let lines: Vec<serde_json::Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["object"]["metadata"]["name"], "seen-by-the-watch");

    // The same connection goes on serving requests.
    for _ in 0..3 {
        let got = conn
            .send_request(get("/api/v1/namespaces/default/pods/seen-by-the-watch"))
            .await
            .expect("the connection still serves requests after its watch");
        assert_eq!(got.status(), 200);
        got.into_body().collect().await.unwrap();
    }
    drop(conn);
    driver.await.unwrap().unwrap();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// A PATCH that names no resourceVersion is retried on a conflicting write, as upstream's
/// GuaranteedUpdate retries: clients (kubectl, controllers) never see a 409 for it, even while
/// another writer keeps changing the object. One that names a stale resourceVersion gets the 409.
#[tokio::test]
async fn patches_without_a_resource_version_survive_concurrent_writers() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("busy", &[]))
        .await
        .unwrap();
    // A writer that keeps replacing the pod's annotations with its own version.
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let pods = pods.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.is_cancelled() {
                n += 1;
                let mut p = pods.get("busy").await.unwrap();
                p.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("writer".into(), n.to_string());
                let _ = pods.replace("busy", &PostParams::default(), &p).await;
            }
            n
        })
    };
    let mut conflicts = 0;
    for i in 0..200 {
        let patch = json!({"metadata": {"labels": {"patched": i.to_string()}}});
        let params = PatchParams::default();
        for result in [
            pods.patch("busy", &params, &Patch::Strategic(&patch)).await,
            pods.patch("busy", &params, &Patch::Merge(&patch)).await,
        ] {
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => conflicts += 1,
                Err(e) => panic!("patch {i}: {e}"),
            }
        }
    }
    stop.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 10, "the other writer ran ({writes} writes)");
    assert_eq!(conflicts, 0, "patches without a resourceVersion got 409s");

    // A stale resourceVersion in the patch is a precondition: 409.
    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}});
    let err = pods
        .patch("busy", &PatchParams::default(), &Patch::Merge(&stale))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409),
        "{err}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The store's current revision, read from a list's resourceVersion.
async fn revision(client: &Client) -> u64 {
    let list = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .expect("list namespaces");
    list.metadata
        .resource_version
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

#[tokio::test]
async fn server_side_dry_run_answers_with_the_would_be_object_and_changes_nothing() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(
            &PostParams::default(),
            &support::deployment("web", 1, "nginx:1.27"),
        )
        .await
        .expect("create");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let scratch: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "scratch"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &scratch)
        .await
        .expect("create a namespace");
    let before = revision(&client).await;
    let dry_patch = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let dry_post = PostParams {
        dry_run: true,
        ..Default::default()
    };

    // Patch, apply and scale answer with the object as it would be stored ...
    let patched = deployments
        .patch(
            "web",
            &dry_patch,
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("dry-run patch");
    assert_eq!(patched.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let mut applied = serde_json::to_value(support::deployment("web", 4, "nginx:1.27")).unwrap();
    applied["apiVersion"] = json!("apps/v1");
    applied["kind"] = json!("Deployment");
    let applied = deployments
        .patch(
            "web",
            &PatchParams {
                dry_run: true,
                force: true,
                field_manager: Some("kubectl".into()),
                ..Default::default()
            },
            &Patch::Apply(&applied),
        )
        .await
        .expect("dry-run apply");
    assert_eq!(applied.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let scaled = deployments
        .patch_scale(
            "web",
            &dry_patch,
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("dry-run scale");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(5));
    let mut replaced = deployments.get("web").await.expect("get");
    replaced.spec.as_mut().expect("a spec").replicas = Some(6);
    let replaced = deployments
        .replace("web", &dry_post, &replaced)
        .await
        .expect("dry-run update");
    assert_eq!(replaced.spec.as_ref().and_then(|s| s.replicas), Some(6));

    // ... deletion too, with dryRun in the DeleteOptions body as kubectl sends it.
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    deployments
        .delete("web", &dry_delete)
        .await
        .expect("dry-run delete");
    namespaces
        .delete("scratch", &dry_delete)
        .await
        .expect("dry-run namespace delete");

    // Nothing changed, and no revision was used: the next real write takes the next one.
    let stored = deployments.get("web").await.expect("still there");
    assert_eq!(stored.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let ns = namespaces.get("scratch").await.expect("still there");
    assert!(ns.metadata.deletion_timestamp.is_none(), "{ns:?}");
    assert_eq!(revision(&client).await, before);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
    let written = Api::<ConfigMap>::default_namespaced(client.clone())
        .create(&PostParams::default(), &cm)
        .await
        .expect("a real write");
    assert_eq!(
        written.metadata.resource_version,
        Some((before + 1).to_string()),
        "the dry runs consumed no revision"
    );
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_eviction_marks_the_pod_disrupted_and_deletes_it_gracefully() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let mut p = pod("evictee", &[("app", "web")]);
    p.spec.as_mut().unwrap().node_name = Some("node-1".into());
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create");

    // Discovery says where evictions go, as kubectl drain looks for it.
    let resources = client
        .list_core_api_resources("v1")
        .await
        .expect("core discovery");
    let eviction = resources
        .resources
        .iter()
        .find(|r| r.name == "pods/eviction")
        .expect("pods/eviction in discovery");
    assert_eq!(
        (
            eviction.kind.as_str(),
            eviction.group.as_deref(),
            eviction.version.as_deref()
        ),
        ("Eviction", Some("policy"), Some("v1"))
    );

    let status = pods
        .evict("evictee", &kube::api::EvictParams::default())
        .await
        .expect("evict");
    assert_eq!(status.code, 201, "{status:?}");
    let evicted = pods.get("evictee").await.expect("still there, terminating");
    assert!(evicted.metadata.deletion_timestamp.is_some(), "{evicted:?}");
    assert_eq!(evicted.metadata.deletion_grace_period_seconds, Some(30));
    let condition = evicted
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
        .cloned()
        .expect("the DisruptionTarget condition");
    assert_eq!(
        (
            condition.status.as_str(),
            condition.reason.as_deref(),
            condition.message.as_deref()
        ),
        (
            "True",
            Some("EvictionByEvictionAPI"),
            Some("Eviction API: evicting")
        )
    );
    let missing = pods
        .evict("nobody", &kube::api::EvictParams::default())
        .await
        .expect_err("no such pod");
    assert!(
        matches!(&missing, kube::Error::Api(e) if e.code == 404),
        "{missing:?}"
    );
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn quantities_are_stored_in_their_canonical_form() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sized"},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "resources": {"limits": {"cpu": "1000m", "memory": "2048Mi"},
                          "requests": {"cpu": "0.5", "memory": "1e3"}}}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let stored = pods.get("sized").await.unwrap();
    let resources = serde_json::to_value(&stored.spec.unwrap().containers[0].resources).unwrap();
    // As Go's Quantity.String() writes them back.
    assert_eq!(
        resources,
        json!({"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "500m", "memory": "1e3"}})
    );
    // The same quantity in another spelling, as `kubectl apply` sends it again in its patch
    // (the live object says `500m`, the file `0.5`), changes nothing.
    let patch = json!({"spec": {"containers": [{"name": "app",
        "resources": {"requests": {"cpu": "0.5"}, "limits": {"cpu": "1000m"}}}]}});
    let patched = pods
        .patch("sized", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("the same quantity is no forbidden pod update");
    assert_eq!(
        patched.metadata.resource_version,
        stored.metadata.resource_version
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_status_applied_through_its_subresource_is_owned_there() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    deployments
        .create(
            &PostParams::default(),
            &support::deployment("web", 1, "nginx"),
        )
        .await
        .unwrap();
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 7}, "status": {"observedGeneration": 1, "replicas": 1}});
    let applied = deployments
        .patch_status(
            "web",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
    assert_eq!(applied.status.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(
        applied.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "the spec is not applied through status"
    );
    let entry = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .expect("the applier's entry");
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(
        entry.fields_v1.unwrap().0,
        json!({"f:status": {"f:observedGeneration": {}, "f:replicas": {}}})
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
