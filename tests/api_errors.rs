//! Bad input gets a Kubernetes Status with upstream's code, reason and message shape, and never
//! leaves a half-written object behind.

mod support;

use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{cluster, default_service_account};

struct Reply {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

async fn send(
    client: &kube::Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        code,
        body,
        warnings,
    }
}

fn assert_status(reply: &Reply, code: u16, reason: &str, message_start: &str) {
    assert_eq!(reply.code, code, "HTTP code; body: {}", reply.body);
    assert_eq!(reply.body["kind"], "Status", "{}", reply.body);
    assert_eq!(reply.body["apiVersion"], "v1");
    assert_eq!(reply.body["status"], "Failure");
    assert_eq!(reply.body["code"], code);
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(message_start),
        "message {message:?} should start with {message_start:?}"
    );
}

fn pod_json(name: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
    )
    .unwrap()
}

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn pod_count(client: &kube::Client) -> usize {
    let r = send(client, Method::GET, PODS, "application/json", vec![]).await;
    r.body["items"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test]
async fn malformed_body_is_400_bad_request() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        b"{\"metadata\": {".to_vec(),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "couldn't get version/kind; json parse error",
    );
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        br#"{"metadata": {"name": "p"}, "spec": {"containers": "nope"}}"#.to_vec(),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "Pod in version \"v1\" cannot be handled as a Pod:",
    );
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/yaml",
        b"metadata: [unclosed".to_vec(),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "couldn't get version/kind; yaml parse error",
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was written");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn unknown_resource_and_object_are_404() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let r = send(
        &client,
        Method::GET,
        "/api/v1/namespaces/default/widgets",
        "application/json",
        vec![],
    )
    .await;
    assert_status(
        &r,
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    let r = send(
        &client,
        Method::GET,
        &format!("{PODS}/missing"),
        "application/json",
        vec![],
    )
    .await;
    assert_status(&r, 404, "NotFound", "pods \"missing\" not found");
    assert_eq!(
        r.body["details"],
        json!({"name": "missing", "group": "", "kind": "pods"})
    );
    let r = send(
        &client,
        Method::GET,
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/json",
        vec![],
    )
    .await;
    assert_status(&r, 404, "NotFound", "deployments.apps \"web\" not found");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn unsupported_method_is_405() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let r = send(
        &client,
        Method::PUT,
        PODS,
        "application/json",
        pod_json("p"),
    )
    .await;
    assert_status(
        &r,
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    );
    let r = send(
        &client,
        Method::POST,
        "/version",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(r.code, 405);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn duplicate_create_is_409_already_exists_and_stale_update_is_409_conflict() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let first = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        pod_json("p"),
    )
    .await;
    assert_eq!(first.code, 201);
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        pod_json("p"),
    )
    .await;
    assert_status(&r, 409, "AlreadyExists", "pods \"p\" already exists");

    let mut stale = first.body.clone();
    stale["metadata"]["labels"] = json!({"a": "1"});
    let ok = send(
        &client,
        Method::PUT,
        &format!("{PODS}/p"),
        "application/json",
        serde_json::to_vec(&stale).unwrap(),
    )
    .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    stale["metadata"]["labels"] = json!({"a": "2"});
    let r = send(
        &client,
        Method::PUT,
        &format!("{PODS}/p"),
        "application/json",
        serde_json::to_vec(&stale).unwrap(),
    )
    .await;
    assert_status(
        &r,
        409,
        "Conflict",
        "Operation cannot be fulfilled on pods \"p\": the object has been modified; please apply your changes to the latest version and try again",
    );
    let now = send(
        &client,
        Method::GET,
        &format!("{PODS}/p"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(
        now.body["metadata"]["labels"],
        json!({"a": "1"}),
        "the stale write changed nothing"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_body_over_3_mib_is_413() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let mut big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}});
    big["data"] = json!({"blob": "x".repeat(3 * 1024 * 1024 + 1)});
    let r = send(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        serde_json::to_vec(&big).unwrap(),
    )
    .await;
    assert_status(
        &r,
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    let r = send(
        &client,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/big",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(r.code, 404);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_unknown_content_type_is_415() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let r = send(&client, Method::POST, PODS, "text/plain", b"hello".to_vec()).await;
    assert_status(&r, 415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
    let r = send(
        &client,
        Method::PATCH,
        &format!("{PODS}/p"),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_status(&r, 415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn invalid_objects_are_422_with_field_causes() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let no_containers = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        serde_json::to_vec(&no_containers).unwrap(),
    )
    .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "Pod \"p\" is invalid: spec.containers: Required value",
    );
    assert_eq!(
        r.body["details"]["causes"],
        json!([{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}])
    );
    assert_eq!(r.body["details"]["kind"], "Pod");

    let bad_name = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    let r = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        serde_json::to_vec(&bad_name).unwrap(),
    )
    .await;
    assert_status(&r, 422, "Invalid", "Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of");

    let mismatch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
    let r = send(
        &client,
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        "application/json",
        serde_json::to_vec(&mismatch).unwrap(),
    )
    .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
    );
    assert_eq!(r.body["details"]["group"], "apps");
    assert_eq!(pod_count(&client).await, 0);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn field_validation_strict_rejects_and_warn_warns() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"bogusField": 1, "containers": [{"name": "app", "image": "nginx"}]}}),
    )
    .unwrap();
    let r = send(
        &client,
        Method::POST,
        &format!("{PODS}?fieldValidation=Strict"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "strict decoding error: unknown field \"spec.bogusField\"",
    );
    let r = send(
        &client,
        Method::POST,
        &format!("{PODS}?fieldValidation=Warn"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(r.code, 201);
    assert_eq!(
        r.warnings,
        vec!["299 - \"unknown field \\\"spec.bogusField\\\"\"".to_string()]
    );
    assert!(
        r.body["spec"].get("bogusField").is_none(),
        "unknown fields are dropped"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn bad_selectors_are_400() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let r = send(
        &client,
        Method::GET,
        &format!("{PODS}?fieldSelector=spec.colour%3Dred"),
        "application/json",
        vec![],
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "field label not supported: spec.colour",
    );
    let r = send(
        &client,
        Method::GET,
        &format!("{PODS}?labelSelector=app%20in%20web"),
        "application/json",
        vec![],
    )
    .await;
    assert_status(&r, 400, "BadRequest", "unable to parse requirement");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_terminating_namespace_refuses_new_objects_with_403() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let ns = |phase: &str| {
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "closing"}, "status": {"phase": phase}}))
        .unwrap()
    };
    let created = send(
        &client,
        Method::POST,
        "/api/v1/namespaces",
        "application/json",
        ns("Active"),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    // No controller-manager runs: the account it would make, for the ServiceAccount admission.
    default_service_account(&client, "closing").await;
    let pods = "/api/v1/namespaces/closing/pods";
    let ok = send(
        &client,
        Method::POST,
        pods,
        "application/json",
        pod_json("first"),
    )
    .await;
    assert_eq!(ok.code, 201, "{}", ok.body);

    // The phase alone decides, as upstream's NamespaceLifecycle admission does.
    let marked = send(
        &client,
        Method::PUT,
        "/api/v1/namespaces/closing/status",
        "application/json",
        ns("Terminating"),
    )
    .await;
    assert_eq!(marked.code, 200, "{}", marked.body);
    let refused = send(
        &client,
        Method::POST,
        pods,
        "application/json",
        pod_json("second"),
    )
    .await;
    assert_eq!(refused.code, 403, "{}", refused.body);
    assert_eq!(refused.body["reason"], "Forbidden");
    assert_eq!(
        refused.body["message"],
        "pods \"second\" is forbidden: unable to create new content in namespace closing because it is being terminated"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn config_map_and_secret_keys_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let regex = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
    let body = |v: Value| serde_json::to_vec(&v).unwrap();
    let reply = send(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        body(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keys"},
            "data": {"bad key!": "x", "": "y", "good.key": "z"}}),
        ),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "ConfigMap \"keys\" is invalid: [data[]: Invalid value: \"\": a valid config key",
    );
    let causes = reply.body["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fields: Vec<&str> = causes.iter().filter_map(|c| c["field"].as_str()).collect();
    assert_eq!(fields, ["data[]", "data[bad key!]"], "{}", reply.body);
    assert_eq!(
        causes[1]["message"],
        format!("Invalid value: \"bad key!\": {regex}"),
        "{}",
        reply.body
    );

    let reply = send(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        body(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"},
            "data": {"k": "x"}, "binaryData": {"k": "eA=="}}),
        ),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "ConfigMap \"twice\" is invalid: [data[k]: Invalid value: \"k\": duplicate of key present in binaryData, binaryData[k]: Invalid value: \"k\": duplicate of key present in data]",
    );

    let reply = send(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/secrets",
        "application/json",
        body(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dots"},
            "stringData": {"..": "x"}}),
        ),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Secret \"dots\" is invalid: data[..]: Invalid value: \"..\": must not be '..'",
    );
    // Nothing was stored.
    for path in [
        "/api/v1/namespaces/default/configmaps/keys",
        "/api/v1/namespaces/default/configmaps/twice",
        "/api/v1/namespaces/default/secrets/dots",
    ] {
        let r = send(&client, Method::GET, path, "application/json", vec![]).await;
        assert_eq!(r.code, 404, "{path}: {}", r.body);
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn names_labels_and_annotations_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let create = |meta: Value| {
        let client = client.clone();
        async move {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
            send(
                &client,
                Method::POST,
                PODS,
                "application/json",
                serde_json::to_vec(&pod).unwrap(),
            )
            .await
        }
    };
    let long_value = "v".repeat(64);
    let reply = create(json!({"name": "long-label", "labels": {"tier": long_value}})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        &format!("Pod \"long-label\" is invalid: metadata.labels: Invalid value: \"{long_value}\": must be no more than 63 characters"),
    );
    let reply = create(json!({"name": "bad-key", "labels": {"a/b/c": "x"}})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"bad-key\" is invalid: metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of",
    );
    let long_name = "n".repeat(254);
    let reply = create(json!({"name": long_name})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        &format!("Pod \"{long_name}\" is invalid: metadata.name: Invalid value: \"{long_name}\": must be no more than 253 characters"),
    );
    let big = "a".repeat(256 * 1024);
    let reply = create(json!({"name": "big-notes", "annotations": {"note": big}})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"big-notes\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes",
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was stored");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn volume_mounts_and_probe_handlers_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let create = |name: &str, container: Value| {
        let client = client.clone();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [container]}});
        async move {
            send(
                &client,
                Method::POST,
                PODS,
                "application/json",
                serde_json::to_vec(&pod).unwrap(),
            )
            .await
        }
    };
    let reply = create(
        "mounts",
        json!({"name": "app", "image": "nginx", "volumeMounts": [
            {"name": "cache", "mountPath": "/cache"},
            {"name": "data", "mountPath": "/cache"}]}),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"mounts\" is invalid: [spec.containers[0].volumeMounts[0].name: Not found: \"cache\", spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/cache\": must be unique]",
    );
    assert_eq!(
        reply.body["details"]["causes"][0]["reason"],
        "FieldValueNotFound"
    );
    let reply = create(
        "probes",
        json!({"name": "app", "image": "nginx",
            "livenessProbe": {"periodSeconds": 5},
            "readinessProbe": {"exec": {"command": ["true"]}, "httpGet": {"port": 80}}}),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"probes\" is invalid: [spec.containers[0].livenessProbe: Required value: must specify a handler type, spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 handler type]",
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was stored");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn v1_endpoints_answers_carry_upstreams_deprecation_warning() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let warning =
        "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";
    let list = send(
        &client,
        Method::GET,
        "/api/v1/namespaces/default/endpoints",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(list.code, 200, "{}", list.body);
    assert_eq!(list.warnings, [warning]);
    // A failure about the resource carries it too; other resources do not.
    let missing = send(
        &client,
        Method::GET,
        "/api/v1/namespaces/default/endpoints/none",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(missing.code, 404, "{}", missing.body);
    assert_eq!(missing.warnings, [warning]);
    let pods = send(&client, Method::GET, PODS, "application/json", vec![]).await;
    assert!(pods.warnings.is_empty(), "{:?}", pods.warnings);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_pods_spec_changes_only_where_upstream_allows() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fixed"},
        "spec": {"nodeName": "node-1", "activeDeadlineSeconds": 600,
            "containers": [{"name": "app", "image": "nginx:1.27"}]}});
    let created = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        serde_json::to_vec(&pod).unwrap(),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let patch = |body: Value| {
        let client = client.clone();
        async move {
            send(
                &client,
                Method::PATCH,
                "/api/v1/namespaces/default/pods/fixed",
                "application/strategic-merge-patch+json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let forbidden = "Pod \"fixed\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    // Allowed: an image, a shorter deadline, an added toleration.
    for allowed in [
        json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}),
        json!({"spec": {"activeDeadlineSeconds": 300}}),
        json!({"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}),
    ] {
        let reply = patch(allowed.clone()).await;
        assert_eq!(reply.code, 200, "{allowed}: {}", reply.body);
    }
    // Not allowed: the node, a port, a longer deadline.
    let reply = patch(json!({"spec": {"nodeName": "node-2"}})).await;
    assert_status(&reply, 422, "Invalid", forbidden);
    let reply =
        patch(json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80}]}]}}))
            .await;
    assert_status(&reply, 422, "Invalid", forbidden);
    let reply = patch(json!({"spec": {"activeDeadlineSeconds": 900}})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"fixed\" is invalid: spec.activeDeadlineSeconds: Invalid value: 900: must be less than or equal to previous value",
    );
    let reply = send(
        &client,
        Method::GET,
        "/api/v1/namespaces/default/pods/fixed",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(reply.body["spec"]["nodeName"], "node-1");
    assert_eq!(reply.body["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(reply.body["spec"]["activeDeadlineSeconds"], 300);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn workload_selectors_are_immutable_and_shown_as_go_shows_them() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    for (path, kind) in [
        ("/apis/apps/v1/namespaces/default/deployments", "Deployment"),
        ("/apis/apps/v1/namespaces/default/replicasets", "ReplicaSet"),
    ] {
        let object = json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}});
        let created = send(
            &client,
            Method::POST,
            path,
            "application/json",
            serde_json::to_vec(&object).unwrap(),
        )
        .await;
        assert_eq!(created.code, 201, "{}", created.body);
        let patch = json!({"spec": {"selector": {"matchLabels": {"tier": "front"}}}});
        let reply = send(
            &client,
            Method::PATCH,
            &format!("{path}/web"),
            "application/merge-patch+json",
            serde_json::to_vec(&patch).unwrap(),
        )
        .await;
        let group = "apps";
        assert_status(
            &reply,
            422,
            "Invalid",
            &format!("{kind}.{group} \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{{MatchLabels:map[string]string{{\"app\":\"web\", \"tier\":\"front\"}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: field is immutable"),
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_dry_run_mode_other_than_all_is_refused_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let reply = send(
        &client,
        Method::POST,
        &format!("{PODS}?dryRun=Some"),
        "application/json",
        pod_json("dry"),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\"",
    );
    assert_eq!(reply.body["details"]["group"], "meta.k8s.io");
    assert_eq!(reply.body["details"]["kind"], "CreateOptions");
    let created = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        pod_json("dry"),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let body = serde_json::to_vec(
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["Everything"]}),
    )
    .unwrap();
    let reply = send(
        &client,
        Method::DELETE,
        &format!("{PODS}/dry"),
        "application/json",
        body,
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Everything\"}: supported values: \"All\"",
    );
    assert_eq!(pod_count(&client).await, 1, "the pod is still there");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn container_ports_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ports"},
        "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [
            {"name": "http", "containerPort": 80},
            {"name": "http", "containerPort": 0, "protocol": "HTTP"},
            {"name": "Web--", "containerPort": 8080}]}]}});
    let reply = send(
        &client,
        Method::POST,
        PODS,
        "application/json",
        serde_json::to_vec(&pod).unwrap(),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"ports\" is invalid: [spec.containers[0].ports[1].name: Duplicate value: \"http\", spec.containers[0].ports[1].containerPort: Required value, spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\", spec.containers[0].ports[2].name: Invalid value: \"Web--\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), spec.containers[0].ports[2].name: Invalid value: \"Web--\": must not contain consecutive hyphens, spec.containers[0].ports[2].name: Invalid value: \"Web--\": must not begin or end with a hyphen]",
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was stored");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

async fn create_pod(client: &kube::Client, name: &str, container: Value) -> Reply {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [container]}});
    send(
        client,
        Method::POST,
        PODS,
        "application/json",
        serde_json::to_vec(&pod).unwrap(),
    )
    .await
}

#[tokio::test]
async fn container_resources_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let with = |resources: Value| json!({"name": "app", "image": "nginx", "resources": resources});
    // Requests above limits, values printed in their canonical form.
    let reply = create_pod(
        &client,
        "over",
        with(json!({"requests": {"cpu": "2", "memory": "1.5Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}})),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"over\" is invalid: [spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1, spec.containers[0].resources.requests: Invalid value: \"1536Mi\": must be less than or equal to memory limit of 1Gi]",
    );
    assert_eq!(
        reply.body["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"2\": must be less than or equal to cpu limit of 1", "field": "spec.containers[0].resources.requests"})
    );
    // Negative amounts, and names that are no container resource.
    let reply = create_pod(
        &client,
        "odd",
        with(
            json!({"limits": {"memory": "-0.5Gi"}, "requests": {"cpus": "1", "memory": "-0.5Gi"}}),
        ),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"odd\" is invalid: [spec.containers[0].resources.limits[memory]: Invalid value: \"-512Mi\": must be greater than or equal to 0, spec.containers[0].resources.requests[cpus]: Invalid value: cpus: must be a standard resource type or fully qualified, spec.containers[0].resources.requests[cpus]: Invalid value: cpus: must be a standard resource for containers, spec.containers[0].resources.requests[memory]: Invalid value: \"-512Mi\": must be greater than or equal to 0]",
    );
    // Extended resources are whole and not overcommitted; hugepages come in pages, with cpu or
    // memory.
    let reply = create_pod(
        &client,
        "special",
        with(json!({"requests": {"example.com/gpu": "1"}, "limits": {"example.com/fpga": "1500m", "hugepages-2Mi": "3Mi"}})),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"special\" is invalid: [spec.containers[0].resources.limits[example.com/fpga]: Invalid value: resource.Quantity{i:resource.int64Amount{value:1500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1500m\", Format:\"DecimalSI\"}: must be an integer, spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi, spec.containers[0].resources.requests[example.com/fpga]: Invalid value: resource.Quantity{i:resource.int64Amount{value:1500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1500m\", Format:\"DecimalSI\"}: must be an integer, spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources, spec.containers[0].resources.requests[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi, spec.containers[0].resources: Forbidden: HugePages require cpu or memory]",
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was stored");
    // A pod that sets only limits requests them (a Pod's defaulting), and so is Guaranteed.
    let reply = create_pod(
        &client,
        "limited",
        with(json!({"limits": {"cpu": "500m", "memory": "64Mi"}})),
    )
    .await;
    assert_eq!(reply.code, 201, "{}", reply.body);
    assert_eq!(
        reply.body["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "500m", "memory": "64Mi"})
    );
    assert_eq!(reply.body["status"]["qosClass"], "Guaranteed");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn env_vars_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let container = json!({"name": "app", "image": "nginx",
        "env": [
            {"name": "1 relaxed.name-ok", "value": "x"},
            {"name": "A=B", "value": "x"},
            {"name": "", "value": "x"},
            {"name": "NOWHERE", "valueFrom": {}},
            {"name": "BOTH", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "TWO", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "bad key"}}}],
        "envFrom": [{"prefix": "P="}]});
    let reply = create_pod(&client, "env", container).await;
    let relaxed = "a valid environment variable name must consist only of printable ASCII characters other than '='";
    assert_status(
        &reply,
        422,
        "Invalid",
        &format!("Pod \"env\" is invalid: [spec.containers[0].env[1].name: Invalid value: \"A=B\": {relaxed}, spec.containers[0].env[2].name: Required value, spec.containers[0].env[3].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`, spec.containers[0].env[4].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty, spec.containers[0].env[5].valueFrom.configMapKeyRef.key: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+'), spec.containers[0].env[5].valueFrom: Invalid value: \"\": may not have more than one field specified at a time, spec.containers[0].envFrom[0].prefix: Invalid value: \"P=\": {relaxed}, spec.containers[0].envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`]"),
    );
    assert_eq!(pod_count(&client).await, 0, "nothing was stored");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

const SERVICES: &str = "/api/v1/namespaces/default/services";

#[tokio::test]
async fn service_ports_are_validated_as_upstream() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let create = |name: &str, spec: Value| {
        let client = client.clone();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
        async move {
            send(
                &client,
                Method::POST,
                SERVICES,
                "application/json",
                serde_json::to_vec(&svc).unwrap(),
            )
            .await
        }
    };
    let reply = create("twins", json!({"ports": [{"port": 80}, {"port": 80}]})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Service \"twins\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value, spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}]",
    );
    let reply = create(
        "mixed",
        json!({"type": "ClusterIP", "ports": [
            {"name": "http", "port": 80, "protocol": "HTTP", "targetPort": "Web"},
            {"name": "http", "port": 70000, "nodePort": 30080}]}),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Service \"mixed\" is invalid: [spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\", spec.ports[0].targetPort: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), spec.ports[1].name: Duplicate value: \"http\", spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP']",
    );
    let reply = create(
        "external",
        json!({"type": "ExternalName", "externalName": "Not_A.Host"}),
    )
    .await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Service \"external\" is invalid: spec.externalName: Invalid value: \"Not_A.Host\": a lowercase RFC 1123 subdomain",
    );
    // A Service's name is a DNS-1035 label: it starts with a letter.
    let reply = create("1st", json!({"ports": [{"port": 80}]})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Service \"1st\" is invalid: metadata.name: Invalid value: \"1st\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_services_cluster_ip_stays_as_upstream_keeps_it() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let manifest = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let created = send(
        &client,
        Method::POST,
        SERVICES,
        "application/json",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let ip = created.body["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let at = format!("{SERVICES}/web");
    // The manifest again, without the allocated address: the address is kept.
    let replaced = send(
        &client,
        Method::PUT,
        &at,
        "application/json",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await;
    assert_eq!(replaced.code, 200, "{}", replaced.body);
    assert_eq!(replaced.body["spec"]["clusterIP"], ip.as_str());
    assert_eq!(replaced.body["spec"]["clusterIPs"], json!([ip]));
    let patch = |body: Value| {
        let client = client.clone();
        let at = at.clone();
        async move {
            send(
                &client,
                Method::PATCH,
                &at,
                "application/merge-patch+json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    // Another address is refused, as upstream words it.
    let reply = patch(json!({"spec": {"clusterIP": "10.96.0.99"}})).await;
    assert_status(
        &reply,
        422,
        "Invalid",
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.99\"}: may not change once set",
    );
    // Becoming an ExternalName Service releases it; becoming a ClusterIP one again gets one.
    let reply =
        patch(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}})).await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert_eq!(reply.body["spec"]["clusterIP"], Value::Null);
    assert_eq!(reply.body["spec"]["clusterIPs"], Value::Null);
    assert_eq!(reply.body["spec"]["ipFamilies"], Value::Null);
    let reply = patch(json!({"spec": {"type": "ClusterIP", "externalName": null}})).await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    let again = reply.body["spec"]["clusterIP"].as_str().unwrap_or_default();
    assert!(again.starts_with("10."), "{}", reply.body);
    assert_eq!(reply.body["spec"]["clusterIPs"], json!([again]));
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
