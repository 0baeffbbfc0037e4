//! Namespace deletion end to end, as upstream does it: the namespace turns Terminating and
//! refuses new content, its pods shut down within their grace periods before anything else in
//! it goes, its conditions say what remains, and then it is gone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;
use support::cli::kubectl_binary;
use support::*;

const NS: &str = "shop";

/// One change a watch saw.
#[derive(Clone, Debug)]
enum Saw {
    Applied(serde_json::Value),
    Deleted(serde_json::Value),
}

/// What the test's watches saw, in order: `("pod" | "configmap" | "namespace", change)`.
type Seen = Arc<Mutex<Vec<(&'static str, Saw)>>>;

/// Watch `api`'s objects into `seen` (as JSON, tagged `what`) until the test ends.
fn record<K>(api: Api<K>, what: &'static str, seen: &Seen)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
    K: Send + 'static,
{
    let seen = seen.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(e)) = events.next().await {
            let saw = match e {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    Saw::Applied(serde_json::to_value(o).unwrap_or_default())
                }
                watcher::Event::Delete(o) => {
                    Saw::Deleted(serde_json::to_value(o).unwrap_or_default())
                }
                _ => continue,
            };
            seen.lock().push((what, saw));
        }
    });
}

/// Wait until `check` holds on what was seen, at most `within` of cluster time.
async fn until<T>(
    cluster: &kubespec::cluster::RunningCluster,
    seen: &Seen,
    within: Duration,
    what: &str,
    check: impl Fn(&[(&'static str, Saw)]) -> Result<T, String>,
) -> T {
    let deadline = tokio::time::Instant::now() + cluster.clock().to_wall(within);
    loop {
        let saw = match check(&seen.lock()) {
            Ok(v) => return v,
            Err(saw) => saw,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} (cluster time): expected {what}\nlast seen: {saw}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn deleted<'a>(seen: &'a [(&'static str, Saw)], what: &str) -> Vec<&'a serde_json::Value> {
    seen.iter()
        .filter(|(w, _)| *w == what)
        .filter_map(|(_, e)| match e {
            Saw::Deleted(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn applied<'a>(seen: &'a [(&'static str, Saw)], what: &str) -> Vec<&'a serde_json::Value> {
    seen.iter()
        .filter(|(w, _)| *w == what)
        .filter_map(|(_, e)| match e {
            Saw::Applied(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn revision(o: &serde_json::Value) -> u64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

async fn create_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .expect("the namespace is created");
}

#[tokio::test]
async fn a_deleted_namespace_stops_its_pods_gracefully_first_then_empties_and_goes() {
    let cluster = cluster().nodes(1).time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    create_namespace(&client, NS).await;
    let seen: Seen = Default::default();
    record(Api::<Pod>::namespaced(client.clone(), NS), "pod", &seen);
    record(
        Api::<ConfigMap>::namespaced(client.clone(), NS),
        "configmap",
        &seen,
    );
    record(Api::<Namespace>::all(client.clone()), "namespace", &seen);

    // Two pods whose shutdown takes ten seconds (a preStop hook), and a ConfigMap.
    let mut web = deployment("web", 2, "nginx:1.27");
    let template = web.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    template.containers[0].lifecycle = Some(
        serde_json::from_value(json!({"preStop": {"exec": {"command": ["sleep", "10"]}}})).unwrap(),
    );
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &web)
        .await
        .unwrap();
    let configmaps = Api::<ConfigMap>::namespaced(client.clone(), NS);
    configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap(),
        )
        .await
        .unwrap();
    until(&cluster, &seen, minutes(2), "2 running pods", |s| {
        let running: std::collections::BTreeSet<_> = applied(s, "pod")
            .into_iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        if running.len() == 2 {
            Ok(())
        } else {
            Err(format!("running: {running:?}"))
        }
    })
    .await;

    // The delete answers with the namespace, now Terminating and still there.
    let namespaces = Api::<Namespace>::all(client.clone());
    let answer = namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .expect("the delete is accepted");
    let marked = answer.left().expect("the namespace itself, not a Status");
    assert_eq!(
        marked.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.spec.as_ref().and_then(|s| s.finalizers.clone()),
        Some(vec!["kubernetes".to_string()]),
        "the namespace controller's finalizer holds it"
    );

    // Nothing new may be created in it meanwhile.
    let late = configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap(),
        )
        .await
        .expect_err("creating into a terminating namespace is refused");
    match late {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert_eq!(
                s.message,
                "configmaps \"late\" is forbidden: unable to create new content in namespace shop because it is being terminated"
            );
        }
        e => panic!("expected a 403, got {e:?}"),
    }

    // Its conditions say the pods remain while they shut down.
    until(
        &cluster,
        &seen,
        minutes(1),
        "the namespace reporting its remaining pods",
        |s| {
            let last = applied(s, "namespace")
                .into_iter()
                .rfind(|n| n["metadata"]["name"] == NS)
                .cloned()
                .unwrap_or_default();
            let remaining = last["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "NamespaceContentRemaining")
                .cloned()
                .unwrap_or_default();
            if remaining["status"] == "True"
                && remaining["reason"] == "SomeResourcesRemain"
                && remaining["message"]
                    == "Some resources are remaining: pods. has 2 resource instances"
            {
                Ok(())
            } else {
                Err(format!("{}", last["status"]))
            }
        },
    )
    .await;

    // Then it is gone, and so is everything in it.
    let gone = until(&cluster, &seen, minutes(3), "the namespace gone", |s| {
        deleted(s, "namespace")
            .into_iter()
            .find(|n| n["metadata"]["name"] == NS)
            .cloned()
            .ok_or_else(|| format!("{} namespace events", applied(s, "namespace").len()))
    })
    .await;
    assert_eq!(gone["status"]["phase"], "Terminating");
    let seen = seen.lock().clone();

    // Every pod was stopped gracefully (marked with its 30 s grace period, then removed by
    // its kubelet), and the ConfigMap went only after the last pod had gone.
    let pods_gone = deleted(&seen, "pod");
    assert_eq!(pods_gone.len(), 2, "{pods_gone:?}");
    for pod in &pods_gone {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let graceful = applied(&seen, "pod").into_iter().any(|p| {
            p["metadata"]["name"] == name
                && p["metadata"]["deletionGracePeriodSeconds"] == 30
                && p["metadata"]["deletionTimestamp"].is_string()
        });
        assert!(graceful, "pod {name} was not deleted gracefully");
    }
    let settings_gone = deleted(&seen, "configmap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "settings")
        .expect("the ConfigMap was deleted");
    let last_pod = pods_gone.iter().map(|p| revision(p)).max().unwrap_or(0);
    assert!(
        revision(settings_gone) > last_pod,
        "the ConfigMap went (revision {}) before the last pod (revision {last_pod})",
        revision(settings_gone)
    );
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The namespace's last-seen conditions, as `type status reason: message` lines.
fn conditions_of(seen: &[(&'static str, Saw)], namespace: &str) -> Vec<String> {
    let last = applied(seen, "namespace")
        .into_iter()
        .rfind(|n| n["metadata"]["name"] == namespace)
        .cloned()
        .unwrap_or_default();
    last["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {} {}: {}",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_pod_that_outlives_its_grace_period_keeps_the_namespace_and_its_content() {
    // No node: a pod bound to a node that does not exist is never stopped by a kubelet.
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    create_namespace(&client, NS).await;
    let seen: Seen = Default::default();
    record(Api::<Namespace>::all(client.clone()), "namespace", &seen);
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "stuck"}, "spec": {
            "nodeName": "gone", "terminationGracePeriodSeconds": 10,
            "containers": [{"name": "c", "image": "nginx"}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let configmaps = Api::<ConfigMap>::namespaced(client.clone(), NS);
    configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<Namespace>::all(client.clone())
        .delete(NS, &DeleteParams::default())
        .await
        .unwrap();
    until(&cluster, &seen, minutes(1), "the pod reported as remaining", |s| {
        let conditions = conditions_of(s, NS);
        if conditions.contains(&"NamespaceContentRemaining True SomeResourcesRemain: Some resources are remaining: pods. has 1 resource instances".to_string()) {
            Ok(())
        } else {
            Err(format!("{conditions:?}"))
        }
    })
    .await;
    // Well past its grace period (the controller looks again every 6 s of it), the pod is
    // still there, and so is the namespace with the rest of its content.
    tokio::time::sleep(cluster.clock().to_wall(Duration::from_secs(40))).await;
    let ns = Api::<Namespace>::all(client.clone())
        .get(NS)
        .await
        .expect("the namespace waits for its pod");
    assert_eq!(
        ns.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
    assert!(configmaps.get_opt("settings").await.unwrap().is_some());
    assert!(pods.get_opt("stuck").await.unwrap().is_some());
    // Once it is gone, so is everything else.
    pods.delete("stuck", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    until(&cluster, &seen, minutes(1), "the namespace gone", |s| {
        deleted(s, "namespace")
            .into_iter()
            .find(|n| n["metadata"]["name"] == NS)
            .map(|_| ())
            .ok_or_else(|| format!("{:?}", conditions_of(s, NS)))
    })
    .await;
    assert!(configmaps.get_opt("settings").await.unwrap().is_none());
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn kubectl_delete_namespace_waits_until_it_is_gone() {
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    cluster.write_kubeconfig(kubeconfig.path()).unwrap();
    for version in ["1.27", "1.33"] {
        create_namespace(&client, "scratch").await;
        let seen: Seen = Default::default();
        record(Api::<Namespace>::all(client.clone()), "namespace", &seen);
        // A ConfigMap that a finalizer holds keeps the namespace until the finalizer goes.
        let configmaps = Api::<ConfigMap>::namespaced(client.clone(), "scratch");
        configmaps
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let mut kubectl = std::process::Command::new(kubectl_binary(version));
        kubectl.arg("--kubeconfig").arg(kubeconfig.path()).args([
            "delete",
            "namespace",
            "scratch",
            "--timeout=60s",
        ]);
        // kubectl blocks; the cluster runs on this test's runtime meanwhile.
        let kubectl = tokio::task::spawn_blocking(move || kubectl.output());
        until(
            &cluster,
            &seen,
            minutes(1),
            "the namespace waiting on the finalizer",
            |s| {
                let conditions = conditions_of(s, "scratch");
                if conditions.contains(&"NamespaceFinalizersRemaining True SomeFinalizersRemain: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".to_string()) {
                    Ok(())
                } else {
                    Err(format!("{conditions:?}"))
                }
            },
        )
        .await;
        assert!(
            !kubectl.is_finished(),
            "kubectl {version} returned while the namespace was still there"
        );
        configmaps
            .patch(
                "held",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        let out = kubectl.await.unwrap().expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "namespace \"scratch\" deleted\n"
        );
        assert!(
            Api::<Namespace>::all(client.clone())
                .get_opt("scratch")
                .await
                .unwrap()
                .is_none(),
            "kubectl {version} returned before the namespace was gone"
        );
    }
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
