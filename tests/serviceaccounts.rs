//! Service accounts as pods see them, as Kubernetes 1.33 gives them: the cluster's CA in a
//! `kube-root-ca.crt` ConfigMap in every namespace (kept there by the root CA publisher), the
//! ServiceAccount admission's `kube-api-access-*` volume mounted in every container, the files
//! the kubelet projects there (a token the apiserver issues, `ca.crt`, the namespace), and
//! `kubectl create token`.

mod support;

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use support::*;

const ROOT_CA: &str = "kube-root-ca.crt";
const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The letters of generated name suffixes (upstream's `utilrand`).
const SUFFIX_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// Wait (at most 30 s of wall time, plenty for the controllers' reaction) until `check`
/// holds on `namespace/name`, which it sees as `None` while it does not exist.
async fn until_config_map(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(Option<&ConfigMap>) -> bool,
) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let wait =
        kube::runtime::wait::await_condition(api, name, move |cm: Option<&ConfigMap>| check(cm));
    match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(cm)) => cm,
        Ok(Err(e)) => panic!("watching {namespace}/{name}: {e}"),
        Err(_) => {
            let now = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await;
            panic!("timed out waiting for {what}; {namespace}/{name} is {now:?}")
        }
    }
}

/// The cluster's CA, as the apiserver publishes it.
async fn cluster_ca(client: &Client) -> String {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .unwrap();
    cm.data.unwrap()["client-ca-file"].clone()
}

fn published(cm: Option<&ConfigMap>, ca: &str) -> bool {
    cm.is_some_and(|cm| {
        cm.data == Some([("ca.crt".to_string(), ca.to_string())].into())
            && cm.metadata.annotations
                == Some(
                    [(
                        "kubernetes.io/description".to_string(),
                        DESCRIPTION.to_string(),
                    )]
                    .into(),
                )
    })
}

#[tokio::test]
async fn every_namespace_holds_the_cluster_ca_and_gets_it_back_when_deleted_or_changed() {
    let cluster = cluster().start().await;
    let client = cluster.client().unwrap();
    let ca = cluster_ca(&client).await;
    assert!(
        ca.starts_with("-----BEGIN CERTIFICATE-----\n")
            && ca.ends_with("-----END CERTIFICATE-----\n"),
        "{ca}"
    );
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        until_config_map(
            &client,
            ns,
            ROOT_CA,
            "the CA in an existing namespace",
            |cm| published(cm, &ca),
        )
        .await;
    }

    // A new namespace gets it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let first = until_config_map(
        &client,
        "team",
        ROOT_CA,
        "the CA in a new namespace",
        |cm| published(cm, &ca),
    )
    .await
    .unwrap();

    // Deleted, it comes back (a new object).
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.delete(ROOT_CA, &DeleteParams::default()).await.unwrap();
    let first_uid = first.metadata.uid.clone();
    until_config_map(&client, "team", ROOT_CA, "the CA made again", |cm| {
        published(cm, &ca) && cm.and_then(|c| c.metadata.uid.clone()) != first_uid
    })
    .await;

    // Changed, it is put back.
    cms.patch(
        ROOT_CA,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "tampered", "extra": "x"},
            "metadata": {"annotations": {"kubernetes.io/description": null}}})),
    )
    .await
    .unwrap();
    until_config_map(&client, "team", ROOT_CA, "the CA put back", |cm| {
        published(cm, &ca)
    })
    .await;

    // A namespace being deleted loses it with the rest of its content, and does not get it
    // again (a finalizer on another ConfigMap keeps the namespace terminating meanwhile).
    Api::<ConfigMap>::namespaced(client.clone(), "team")
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    until_config_map(
        &client,
        "team",
        ROOT_CA,
        "the CA deleted with the namespace's content",
        |cm| cm.is_none(),
    )
    .await;
    // The publisher hears of the deletion at once; give it time to (wrongly) act on it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(cms.get_opt(ROOT_CA).await.unwrap().is_none());
    let phase = namespaces.get("team").await.unwrap().status.unwrap().phase;
    assert_eq!(phase.as_deref(), Some("Terminating"));
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The API access volume the ServiceAccount admission adds, named `name`.
fn api_access_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

async fn create(pods: &Api<Pod>, pod: Value) -> kube::Result<Value> {
    let pod: Pod = serde_json::from_value(pod).unwrap();
    let created = pods.create(&PostParams::default(), &pod).await?;
    Ok(serde_json::to_value(created).unwrap())
}

#[tokio::test]
async fn a_created_pod_gets_the_api_access_volume_mounted_in_every_container() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = create(
        &pods,
        json!({"metadata": {"name": "web"}, "spec": {
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "own", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "app", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "side", "image": "nginx", "volumeMounts": [{"name": "own", "mountPath": MOUNT}]},
            ]}}),
    )
    .await
    .unwrap();
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volumes = spec["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    let name = volumes[2]["name"].as_str().unwrap().to_string();
    let suffix = name.strip_prefix("kube-api-access-").unwrap_or("");
    assert!(
        suffix.len() == 5 && suffix.chars().all(|c| SUFFIX_ALPHABET.contains(c)),
        "{name}"
    );
    assert_eq!(volumes[2], api_access_volume(&name));
    let mount = json!({"mountPath": MOUNT, "name": name, "readOnly": true});
    assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"mountPath": "/data", "name": "data"}, mount])
    );
    // A container with something mounted at the token path already keeps it.
    assert_eq!(
        spec["containers"][1]["volumeMounts"],
        json!([{"mountPath": MOUNT, "name": "own"}])
    );
    // Only creates are admitted so: the pod keeps its volume as it is updated.
    let relabelled = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    let relabelled = serde_json::to_value(relabelled).unwrap();
    assert_eq!(relabelled["spec"]["volumes"], pod["spec"]["volumes"]);
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn automount_false_on_the_pod_or_its_account_leaves_the_token_out() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let containers = json!([{"name": "app", "image": "nginx"}]);
    let api_volumes = |pod: &Value| -> usize {
        pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| {
                v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-api-access-"))
            })
            .count()
    };

    let pod = create(
        &pods,
        json!({"metadata": {"name": "no-token"}, "spec": {
            "automountServiceAccountToken": false, "containers": containers}}),
    )
    .await
    .unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"].get("volumes"), None, "{pod}");
    assert_eq!(pod["spec"]["containers"][0].get("volumeMounts"), None);

    Api::<ServiceAccount>::default_namespaced(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "quiet"},
                "automountServiceAccountToken": false, "imagePullSecrets": [{"name": "registry"}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    let pod = create(
        &pods,
        json!({"metadata": {"name": "quiet-pod"}, "spec": {
            "serviceAccountName": "quiet", "containers": containers}}),
    )
    .await
    .unwrap();
    assert_eq!(api_volumes(&pod), 0, "{pod}");
    // The account's image pull secrets come with it.
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        json!([{"name": "registry"}])
    );

    // The pod's say wins over its account's.
    let pod = create(
        &pods,
        json!({"metadata": {"name": "loud-pod"}, "spec": {"serviceAccountName": "quiet",
            "automountServiceAccountToken": true, "containers": containers}}),
    )
    .await
    .unwrap();
    assert_eq!(api_volumes(&pod), 1, "{pod}");
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_pod_whose_service_account_does_not_exist_is_forbidden() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let containers = json!([{"name": "app", "image": "nginx"}]);
    let refusal = |e: kube::Error| match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("{other}"),
    };
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let e = create(
        &pods,
        json!({"metadata": {"name": "lonely"}, "spec": {
            "serviceAccountName": "robot", "containers": containers}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(e),
        (403, "Forbidden".into(), "pods \"lonely\" is forbidden: error looking up service account default/robot: serviceaccount \"robot\" not found".into())
    );
    // A generated name is not made yet: the refusal names the prefix.
    let e = create(
        &pods,
        json!({"metadata": {"generateName": "lonely-"}, "spec": {
            "serviceAccountName": "robot", "containers": containers}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(e).2,
        "pods \"lonely-\" is forbidden: error looking up service account default/robot: serviceaccount \"robot\" not found"
    );
    // No controller-manager makes `default` in a new namespace: after waiting for it a while,
    // as upstream does, the pod is refused too.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "fresh"}})).unwrap(),
        )
        .await
        .unwrap();
    let e = create(
        &Api::namespaced(client.clone(), "fresh"),
        json!({"metadata": {"name": "early"}, "spec": {"containers": containers}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(e).2,
        "pods \"early\" is forbidden: error looking up service account fresh/default: serviceaccount \"default\" not found"
    );
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

/// The claims of a JWT.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("{token:?} is no JWT: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_container_reads_its_namespace_token_and_ca_where_they_are_mounted() {
    let cluster = cluster().time_scale(20.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let script = format!(
        "cat {MOUNT}/namespace; echo; cat {MOUNT}/token; echo; cat {MOUNT}/ca.crt; sleep 3600"
    );
    create(
        &pods,
        json!({"metadata": {"name": "reader"}, "spec": {"containers": [{
            "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", script],
            "readinessProbe": {"exec": {"command": ["cat", format!("{MOUNT}/namespace")]},
                "periodSeconds": 1}}]}}),
    )
    .await
    .unwrap();
    let ca = cluster_ca(&client).await;
    let log = waits
        .log_until(
            &pods,
            "reader",
            Some("app"),
            minutes(10),
            "the namespace, the token and the CA in the app's log",
            |l| l.contains("-----END CERTIFICATE-----"),
        )
        .await;
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("default"), "{log}");
    let token = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    assert_eq!(format!("{}\n", rest.join("\n")), ca, "{log}");
    let pod = pods.get("reader").await.unwrap();
    let claims = claims(token);
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(
        claims["aud"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(claims["kubernetes.io"]["namespace"], "default");
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "reader", "uid": pod.metadata.uid})
    );
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "node-1");
    // The exec probe reads the namespace file too, so the pod turns Ready.
    waits
        .until(minutes(10), "the reader Ready", |s| {
            let p = seen::pod_json(s, "reader");
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready {
                Ok(())
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_missing_kube_root_ca_crt_holds_the_pod_with_failed_mount_until_it_exists() {
    // No controller-manager publishes the CA: the kubelet waits for the ConfigMap, as upstream's.
    let cluster = cluster()
        .apiserver_only()
        .time_scale(20.0)
        .nodes(1)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = create(
        &pods,
        json!({"metadata": {"name": "early"}, "spec": {"nodeName": "node-1",
            "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}),
    )
    .await
    .unwrap();
    let volume = pod["spec"]["volumes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let want = format!("FailedMount: MountVolume.SetUp failed for volume \"{volume}\" : configmap \"kube-root-ca.crt\" not found");
    waits
        .until(minutes(10), "FailedMount", |s| {
            let events = seen::events(s, "default", "early");
            if events.iter().any(|e| e.starts_with(&want)) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
    let status = serde_json::to_value(pods.get("early").await.unwrap().status).unwrap();
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating",
        "{status}"
    );
    let ca = cluster_ca(&client).await;
    Api::<ConfigMap>::default_namespaced(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ROOT_CA}, "data": {"ca.crt": ca}}))
                .unwrap(),
        )
        .await
        .unwrap();
    waits
        .until(minutes(10), "the pod to run", |s| {
            let cs = seen::container_status(s, "early");
            if cs["state"]["running"].is_object() {
                Ok(())
            } else {
                Err(cs.to_string())
            }
        })
        .await;
    cluster
        .stop(Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[test]
fn kubectl_create_token_issues_a_token_for_the_service_account() {
    use support::cli::{Kubectl, Up};
    let up = Up::start();
    let watched = up.watch();
    for version in ["1.33", "1.27"] {
        let k = Kubectl::new(version, &up);
        // The service account controller makes `default` soon after start.
        watched.until_ok(minutes(1), "the default ServiceAccount", || {
            let out = k.run(&["get", "serviceaccount", "default", "-o", "name"]);
            if out.ok {
                Ok(())
            } else {
                Err(out.stderr)
            }
        });
        let token = k.ok(&["create", "token", "default"]);
        let claims = claims(token.trim());
        assert_eq!(claims["sub"], "system:serviceaccount:default:default");
        assert_eq!(
            claims["iss"],
            "https://kubernetes.default.svc.cluster.local"
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "default");

        let token = k.ok(&[
            "create",
            "token",
            "default",
            "--duration=2h",
            "--audience=vault",
        ]);
        let vault = self::claims(token.trim());
        assert_eq!(vault["aud"], json!(["vault"]));
        assert_eq!(
            vault["exp"].as_i64().unwrap() - vault["iat"].as_i64().unwrap(),
            7200
        );

        let out = k.run(&["create", "token", "default", "--duration=5m"]);
        assert!(!out.ok);
        assert_eq!(
            out.stderr,
            "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes\n"
        );
        let out = k.run(&["create", "token", "nobody"]);
        assert!(!out.ok);
        assert_eq!(
            out.stderr,
            "error: failed to create token: serviceaccounts \"nobody\" not found\n"
        );
    }
}
