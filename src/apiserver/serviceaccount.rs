//! The ServiceAccount admission plugin, as upstream's `plugin/pkg/admission/serviceaccount`
//! admits a pod being created:
//!
//! - a pod that names no service account runs as `default`;
//! - the service account must exist (403 otherwise). `default` is waited for a little, as the
//!   service account controller makes it right after its namespace: upstream looks it up ten
//!   times, 100-200 ms apart;
//! - unless the pod or its service account says `automountServiceAccountToken: false`, the pod
//!   gets the API access volume `kube-api-access-<5 random characters>` (a projected token,
//!   `ca.crt` from the `kube-root-ca.crt` ConfigMap, and the namespace), mounted read-only at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` in every init and app container that has
//!   nothing mounted there already;
//! - a pod without image pull secrets gets its service account's;
//! - a service account annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the
//!   secrets its pods reference to those it lists;
//! - mirror pods (a kubelet's static pods) are not changed, and may reference no service
//!   account, no secret and no projected token.
//!
//! It sees the pod as the client sent it (JSON, before defaulting and validation, which follow
//! as upstream's mutating admission precedes them); a pod too malformed to read is left to
//! decoding to refuse. It must not write anything.

use std::time::Duration;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::registry;
use super::ApiServer;
use crate::k8s::serviceaccount::{
    API_ACCESS_VOLUME_PREFIX, DEFAULT_SERVICE_ACCOUNT, INJECTED_TOKEN_EXPIRATION_SECONDS,
    ROOT_CA_CONFIGMAP, ROOT_CA_KEY, TOKEN_MOUNT_PATH,
};

/// The annotation that marks a kubelet's mirror pod.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The ServiceAccount annotation that limits its pods to the secrets it lists.
const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";

/// How many times the `default` service account is looked up before the pod is refused.
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

/// Admit the pod being created in `namespace`, changing it as the plugin does.
///
/// # Errors
/// 403 Forbidden when its service account does not exist, or it references what it may not.
///
/// `shown` is the pod's name as a refusal names it: the one the client sent (a generated name
/// is given only after admission).
pub(super) async fn admit(
    server: &ApiServer,
    namespace: &str,
    pod: &mut Value,
    shown: Option<&str>,
) -> ApiResult<()> {
    if !pod.get("spec").is_some_and(Value::is_object) {
        return Ok(());
    }
    let shown = shown.map_or_else(|| shown_name(pod), String::from);
    let forbidden = |why: &str| ApiError::forbidden(registry::core("pods"), &shown, why);
    if pod["metadata"]["annotations"]
        .get(MIRROR_POD_ANNOTATION)
        .is_some()
    {
        return match mirror_pod_violation(&pod["spec"]) {
            Some(why) => Err(forbidden(why)),
            None => Ok(()),
        };
    }
    let account_name = named_account(&pod["spec"]);
    // (`serviceAccount` is the deprecated alias, always written as the name.)
    pod["spec"]["serviceAccountName"] = json!(account_name);
    pod["spec"]["serviceAccount"] = json!(account_name);
    let Some(account) = service_account(server, namespace, &account_name).await? else {
        return Err(forbidden(&format!(
            "error looking up service account {namespace}/{account_name}: serviceaccount \"{account_name}\" not found"
        )));
    };
    if should_automount(&pod["spec"], &account) {
        mount_api_access(&mut pod["spec"]);
    }
    let has_pull_secrets = pod["spec"]["imagePullSecrets"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    let account_pull_secrets: Vec<Value> = account["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| json!({"name": s["name"].as_str().unwrap_or_default()}))
        .collect();
    if !has_pull_secrets && !account_pull_secrets.is_empty() {
        pod["spec"]["imagePullSecrets"] = Value::Array(account_pull_secrets);
    }
    if enforces_mountable_secrets(&account) {
        if let Some(why) = unlisted_secret(&pod["spec"], &account, &account_name) {
            return Err(forbidden(&why));
        }
    }
    Ok(())
}

/// The name a Forbidden answer gives the pod: its name, else its generateName (no name has been
/// generated yet), else `Unknown`, as upstream's admission names it.
pub(super) fn shown_name(pod: &Value) -> String {
    ["name", "generateName"]
        .iter()
        .find_map(|f| {
            pod["metadata"][f]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "Unknown".into())
}

/// The service account a pod names: `serviceAccountName`, else the deprecated `serviceAccount`
/// (which v1 accepts as its alias), else `default`.
fn named_account(spec: &Value) -> String {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|f| spec[f].as_str().filter(|n| !n.is_empty()).map(String::from))
        .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.into())
}

/// The service account, if it exists. `default` is looked up again a few times, 100-200 ms
/// apart: the service account controller makes it as soon as its namespace exists, and a pod
/// created right after the namespace should not lose that race. The wait is on wall time, as
/// it waits for another process, not for anything in the cluster's time.
async fn service_account(
    server: &ApiServer,
    namespace: &str,
    name: &str,
) -> ApiResult<Option<Value>> {
    let key = registry::core("serviceaccounts").key(Some(namespace), name);
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        DEFAULT_ACCOUNT_ATTEMPTS
    } else {
        1
    };
    let interval = Duration::from_millis(rand::rng().random_range(100..200));
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(interval).await;
        }
        if let Some(found) = server.store.get(&key).await.map_err(ApiError::internal)? {
            return Ok(Some(found.value()));
        }
    }
    Ok(None)
}

/// Whether the pod gets the API access volume: the pod's say, else its service account's, else
/// yes.
fn should_automount(spec: &Value, account: &Value) -> bool {
    spec["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| account["automountServiceAccountToken"].as_bool())
        .unwrap_or(true)
}

/// The API access volume: the token, the cluster's CA and the namespace, projected.
fn api_access_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            // Set explicitly although it is the default (upstream's #104464).
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {
                    "path": "token",
                    "expirationSeconds": INJECTED_TOKEN_EXPIRATION_SECONDS,
                }},
                {"configMap": {
                    "name": ROOT_CA_CONFIGMAP,
                    "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}],
                }},
                {"downwardAPI": {
                    "items": [{
                        "path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                    }],
                }},
            ],
        },
    })
}

/// Mount the API access volume in every container that has nothing at the token path, and add
/// the volume if one of them needs it and the pod has none already.
fn mount_api_access(spec: &mut Value) {
    let existing = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with(API_ACCESS_VOLUME_PREFIX))
        .map(String::from);
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| super::rest::generate_name(API_ACCESS_VOLUME_PREFIX));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounted = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == TOKEN_MOUNT_PATH);
            if mounted {
                continue;
            }
            push(container, "volumeMounts", mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        if let Some(spec) = spec.as_object_mut() {
            push(spec, "volumes", api_access_volume(&volume_name));
        }
    }
}

/// Append `item` to the list `field` of `obj`, making the list if it is absent (or not a list,
/// which decoding refuses afterwards anyway).
fn push(obj: &mut Map<String, Value>, field: &str, item: Value) {
    match obj.get_mut(field).and_then(Value::as_array_mut) {
        Some(list) => list.push(item),
        None => {
            obj.insert(field.into(), Value::Array(vec![item]));
        }
    }
}

/// The containers of every kind, for the rules that look at all of them.
fn all_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |list| spec[list].as_array().into_iter().flatten())
}

/// Why a mirror pod may not be admitted, if it may not.
fn mirror_pod_violation(spec: &Value) -> Option<&'static str> {
    if !named_account_field(spec).is_empty() {
        return Some("a mirror pod may not reference service accounts");
    }
    if !secret_names(spec).is_empty() {
        return Some("a mirror pod may not reference secrets");
    }
    let projects_token = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v["projected"]["sources"].as_array().into_iter().flatten())
        .any(|s| s.get("serviceAccountToken").is_some_and(|t| !t.is_null()));
    projects_token.then_some("a mirror pod may not use ServiceAccountToken volume projections")
}

/// The service account the pod itself names, if any (no default).
fn named_account_field(spec: &Value) -> String {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|f| spec[f].as_str().filter(|n| !n.is_empty()).map(String::from))
        .unwrap_or_default()
}

/// Every secret a pod references (upstream's `VisitPodSecretNames`): image pull secrets,
/// containers' env and envFrom, and volumes (secret, projected secrets, and the secret
/// references of other volume plugins).
fn secret_names(spec: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |v: &Value| {
        if let Some(n) = v.as_str().filter(|n| !n.is_empty()) {
            names.push(n.to_string());
        }
    };
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        add(&s["name"]);
    }
    for c in all_containers(spec) {
        for e in c["envFrom"].as_array().into_iter().flatten() {
            add(&e["secretRef"]["name"]);
        }
        for e in c["env"].as_array().into_iter().flatten() {
            add(&e["valueFrom"]["secretKeyRef"]["name"]);
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        add(&v["secret"]["secretName"]);
        add(&v["azureFile"]["secretName"]);
        for s in v["projected"]["sources"].as_array().into_iter().flatten() {
            add(&s["secret"]["name"]);
        }
        for plugin in [
            "cephfs",
            "cinder",
            "flexVolume",
            "iscsi",
            "rbd",
            "scaleIO",
            "storageos",
        ] {
            add(&v[plugin]["secretRef"]["name"]);
        }
        add(&v["csi"]["nodePublishSecretRef"]["name"]);
    }
    names
}

/// Whether the service account limits its pods to the secrets it lists (its annotation, read
/// as Go's `ParseBool`).
fn enforces_mountable_secrets(account: &Value) -> bool {
    matches!(
        account["metadata"]["annotations"][ENFORCE_MOUNTABLE_SECRETS_ANNOTATION].as_str(),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True")
    )
}

/// The first reference to a secret the service account does not list, in upstream's words.
fn unlisted_secret(spec: &Value, account: &Value, account_name: &str) -> Option<String> {
    let listed = |list: &str, name: &str| {
        account[list]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == name)
    };
    let not_listed = "is not allowed because service account";
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(name) = v["secret"]["secretName"].as_str() {
            if !listed("secrets", name) {
                return Some(format!("volume with secret.secretName=\"{name}\" {not_listed} {account_name} does not reference that secret"));
            }
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in spec[list].as_array().into_iter().flatten() {
            let container = c["name"].as_str().unwrap_or_default();
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(name) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    if !listed("secrets", name) {
                        let env = e["name"].as_str().unwrap_or_default();
                        return Some(format!("{what} {container} with envVar {env} referencing secret.secretName=\"{name}\" {not_listed} {account_name} does not reference that secret"));
                    }
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(name) = e["secretRef"]["name"].as_str() {
                    if !listed("secrets", name) {
                        return Some(format!("{what} {container} with envFrom referencing secret.secretName=\"{name}\" {not_listed} {account_name} does not reference that secret"));
                    }
                }
            }
        }
    }
    for (i, s) in spec["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = s["name"].as_str().unwrap_or_default();
        if !listed("imagePullSecrets", name) {
            return Some(format!("imagePullSecrets[{i}].name=\"{name}\" {not_listed} {account_name} does not reference that imagePullSecret"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec(spec: Value) -> Value {
        spec
    }

    #[test]
    fn every_container_mounts_one_api_access_volume_added_last() {
        let mut spec = pod_spec(json!({
            "volumes": [{"name": "data", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "image": "nginx"},
            ],
        }));
        mount_api_access(&mut spec);
        let volumes = spec["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        let name = volumes[1]["name"].as_str().unwrap();
        assert!(
            name.starts_with("kube-api-access-") && name.len() == 21,
            "{name}"
        );
        assert_eq!(volumes[1], api_access_volume(name));
        assert_eq!(volumes[1]["projected"]["defaultMode"], 420);
        let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["containers"][0]["volumeMounts"][1], mount);
        assert_eq!(spec["containers"][1]["volumeMounts"], json!([mount]));
    }

    #[test]
    fn a_container_with_something_at_the_token_path_keeps_it() {
        let mut spec = json!({"containers": [{"name": "a", "volumeMounts": [
            {"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}]});
        mount_api_access(&mut spec);
        assert!(spec.get("volumes").is_none(), "{spec}");
        assert_eq!(
            spec["containers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_existing_api_access_volume_is_reused() {
        let mut spec = json!({
            "volumes": [{"name": "kube-api-access-abcde", "emptyDir": {}}],
            "containers": [{"name": "a"}],
        });
        mount_api_access(&mut spec);
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );
    }

    #[test]
    fn the_pod_then_its_account_decide_whether_the_token_is_mounted() {
        let never = json!({"automountServiceAccountToken": false});
        let always = json!({"automountServiceAccountToken": true});
        let silent = json!({});
        assert!(should_automount(&silent, &silent));
        assert!(!should_automount(&silent, &never));
        assert!(should_automount(&always, &never));
        assert!(!should_automount(&never, &always));
    }

    #[test]
    fn a_pod_runs_as_the_account_it_names_or_its_alias_or_default() {
        assert_eq!(named_account(&json!({})), "default");
        assert_eq!(named_account(&json!({"serviceAccount": "old"})), "old");
        assert_eq!(
            named_account(&json!({"serviceAccount": "old", "serviceAccountName": "new"})),
            "new"
        );
    }

    #[test]
    fn mirror_pods_may_reference_no_account_secret_or_token() {
        assert_eq!(mirror_pod_violation(&json!({"containers": []})), None);
        assert_eq!(
            mirror_pod_violation(&json!({"serviceAccountName": "x"})),
            Some("a mirror pod may not reference service accounts")
        );
        assert_eq!(
            mirror_pod_violation(
                &json!({"volumes": [{"name": "s", "secret": {"secretName": "creds"}}]})
            ),
            Some("a mirror pod may not reference secrets")
        );
        assert_eq!(
            mirror_pod_violation(&json!({"volumes": [{"name": "t", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}]}}]})),
            Some("a mirror pod may not use ServiceAccountToken volume projections")
        );
    }

    #[test]
    fn an_enforcing_account_names_the_secret_it_does_not_list() {
        let account = json!({
            "metadata": {"annotations": {ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: "true"}},
            "secrets": [{"name": "listed"}],
        });
        assert!(enforces_mountable_secrets(&account));
        let spec = json!({"containers": [{"name": "app", "env": [
            {"name": "OK", "valueFrom": {"secretKeyRef": {"name": "listed", "key": "k"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]}]});
        assert_eq!(
            unlisted_secret(&spec, &account, "robot").as_deref(),
            Some("container app with envVar PW referencing secret.secretName=\"other\" is not allowed because service account robot does not reference that secret")
        );
        assert_eq!(
            unlisted_secret(&json!({"imagePullSecrets": [{"name": "reg"}]}), &account, "robot")
                .as_deref(),
            Some("imagePullSecrets[0].name=\"reg\" is not allowed because service account robot does not reference that imagePullSecret")
        );
    }
}
