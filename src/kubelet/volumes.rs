//! Volumes and configuration: the files a pod's volumes hold (emptyDir, configMap, secret,
//! downwardAPI, projected: configMaps, secrets, downwardAPI and service account tokens the
//! apiserver issues) and each container's environment (env, envFrom, fieldRef,
//! resourceFieldRef), read through the API like the real kubelet does.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Pod, ProjectedVolumeSource, Secret, ServiceAccount,
    ServiceAccountTokenProjection,
};
use kube::api::{Api, PostParams};
use kube::Client;

/// Files per volume name, by path relative to the volume root.
pub type VolumeFiles = HashMap<String, BTreeMap<String, Vec<u8>>>;

/// A volume that cannot be set up (the FailedMount event's message).
#[derive(Debug, Clone, PartialEq)]
pub struct MountError(pub String);

async fn config_map(client: &Client, ns: &str, name: &str) -> kube::Result<Option<ConfigMap>> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
}

async fn secret(client: &Client, ns: &str, name: &str) -> kube::Result<Option<Secret>> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
}

fn config_map_files(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        files.insert(k.clone(), v.0.clone());
    }
    files
}

fn secret_files(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        files.insert(k.clone(), v.clone().into_bytes());
    }
    files
}

fn select_items(
    files: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>,
) -> BTreeMap<String, Vec<u8>> {
    match items {
        None => files,
        Some(items) => items
            .iter()
            .filter_map(|i| files.get(&i.key).map(|v| (i.path.clone(), v.clone())))
            .collect(),
    }
}

fn render_map(map: Option<&BTreeMap<String, String>>) -> Vec<u8> {
    let lines: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    lines.join("\n").into_bytes()
}

fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return Some(
            m.labels
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
        );
    }
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return Some(
            m.annotations
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
        );
    }
    Some(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => String::from_utf8_lossy(&render_map(m.labels.as_ref())).into_owned(),
        "metadata.annotations" => {
            String::from_utf8_lossy(&render_map(m.annotations.as_ref())).into_owned()
        }
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.podIPs" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.hostIPs" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        _ => return None,
    })
}

/// The files of a projected volume: each source's, in order. A source that cannot be read
/// (a missing ConfigMap or Secret that is not optional, a token the apiserver will not issue)
/// fails the volume; every such failure is reported.
async fn projected_files(
    client: &Client,
    pod: &Pod,
    p: &ProjectedVolumeSource,
) -> Result<BTreeMap<String, Vec<u8>>, Vec<String>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut files = BTreeMap::new();
    let mut errors = Vec::new();
    for source in p.sources.iter().flatten() {
        if let Some(cm) = &source.config_map {
            match config_map(client, &ns, &cm.name).await {
                Ok(Some(found)) => {
                    files.extend(select_items(config_map_files(&found), cm.items.as_ref()))
                }
                Ok(None) if cm.optional == Some(true) => {}
                Ok(None) => errors.push(format!("configmap \"{}\" not found", cm.name)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(s) = &source.secret {
            match secret(client, &ns, &s.name).await {
                Ok(Some(found)) => {
                    files.extend(select_items(secret_files(&found), s.items.as_ref()))
                }
                Ok(None) if s.optional == Some(true) => {}
                Ok(None) => errors.push(format!("secret \"{}\" not found", s.name)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(d) = &source.downward_api {
            for item in d.items.iter().flatten() {
                if let Some(value) = item
                    .field_ref
                    .as_ref()
                    .and_then(|f| field_value(pod, &f.field_path))
                {
                    files.insert(item.path.clone(), value.into_bytes());
                }
            }
        }
        if let Some(t) = &source.service_account_token {
            match service_account_token(client, pod, t).await {
                Ok(token) => {
                    files.insert(t.path.clone(), token.into_bytes());
                }
                Err(e) => errors.push(format!("failed to fetch token: {e}")),
            }
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// A token for the pod's service account, bound to the pod, from the apiserver's TokenRequest
/// API (`serviceaccounts/<name>/token`), as the kubelet's token manager asks for it.
async fn service_account_token(
    client: &Client,
    pod: &Pod,
    projection: &ServiceAccountTokenProjection,
) -> Result<String, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_default();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: projection.audience.iter().cloned().collect(),
            expiration_seconds: projection.expiration_seconds,
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let issued: TokenRequest = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create_subresource("token", &account, &PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        })?;
    Ok(issued.status.map(|s| s.token).unwrap_or_default())
}

/// Set up every volume of the pod.
///
/// # Errors
/// The first volume that cannot be set up, with upstream's FailedMount message.
pub async fn mount(client: &Client, pod: &Pod) -> Result<VolumeFiles, MountError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = VolumeFiles::new();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let fail = |what: &str, name: &str| {
            MountError(format!(
                "MountVolume.SetUp failed for volume \"{}\" : {what} \"{name}\" not found",
                v.name
            ))
        };
        let files = if let Some(cm) = &v.config_map {
            match config_map(client, &ns, &cm.name)
                .await
                .map_err(|e| MountError(e.to_string()))?
            {
                Some(found) => select_items(config_map_files(&found), cm.items.as_ref()),
                None if cm.optional == Some(true) => BTreeMap::new(),
                None => return Err(fail("configmap", &cm.name)),
            }
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            match secret(client, &ns, &name)
                .await
                .map_err(|e| MountError(e.to_string()))?
            {
                Some(found) => select_items(secret_files(&found), s.items.as_ref()),
                None if s.optional == Some(true) => BTreeMap::new(),
                None => return Err(fail("secret", &name)),
            }
        } else if let Some(d) = &v.downward_api {
            d.items
                .iter()
                .flatten()
                .filter_map(|i| {
                    let value = field_value(pod, &i.field_ref.as_ref()?.field_path)?;
                    Some((i.path.clone(), value.into_bytes()))
                })
                .collect()
        } else if let Some(p) = &v.projected {
            projected_files(client, pod, p).await.map_err(|errors| {
                // Every source's failure, aggregated as upstream's projected volume reports them.
                let why = match errors.as_slice() {
                    [one] => one.clone(),
                    many => format!("[{}]", many.join(", ")),
                };
                MountError(format!(
                    "MountVolume.SetUp failed for volume \"{}\" : {why}",
                    v.name
                ))
            })?
        } else {
            BTreeMap::new()
        };
        out.insert(v.name.clone(), files);
    }
    Ok(out)
}

/// One filesystem per volume of a pod, shared by the containers that mount it.
pub fn volume_filesystems(
    volumes: &VolumeFiles,
) -> HashMap<String, std::sync::Arc<super::runtime::Fs>> {
    volumes
        .iter()
        .map(|(name, files)| {
            let files = files
                .iter()
                .map(|(p, d)| (format!("/{p}"), d.clone()))
                .collect();
            (
                name.clone(),
                std::sync::Arc::new(super::runtime::Fs::with_files(files)),
            )
        })
        .collect()
}

/// What a container's volume mounts put in its filesystem: subPath files (copied) and whole
/// volumes (mounted, shared).
pub fn container_mounts(
    container: &Container,
    volumes: &VolumeFiles,
    filesystems: &HashMap<String, std::sync::Arc<super::runtime::Fs>>,
) -> (
    BTreeMap<String, Vec<u8>>,
    Vec<(String, std::sync::Arc<super::runtime::Fs>)>,
) {
    let mut files = BTreeMap::new();
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let root = m.mount_path.trim_end_matches('/');
        match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                if let Some(data) = volumes.get(&m.name).and_then(|v| v.get(sub)) {
                    files.insert(root.to_string(), data.clone());
                }
            }
            None => {
                if let Some(fs) = filesystems.get(&m.name) {
                    mounts.push((root.to_string(), fs.clone()));
                }
            }
        }
    }
    (files, mounts)
}

/// Kubernetes' `$(VAR)` expansion of env values against earlier variables.
fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                let name = &after[..j];
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 3 + j]),
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A resourceFieldRef value: the quantity in units of the divisor, rounded up as upstream does.
fn quantity_value(resource: &str, q: &str, divisor: &str) -> String {
    use crate::k8s::quantity::{parse_bytes, parse_cpu_millis};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let divisor = if divisor.is_empty() { "1" } else { divisor };
    let (value, unit) = if resource == "cpu" {
        (
            parse_cpu_millis(&Quantity(q.into())),
            parse_cpu_millis(&Quantity(divisor.into())),
        )
    } else {
        (
            parse_bytes(&Quantity(q.into())),
            parse_bytes(&Quantity(divisor.into())),
        )
    };
    match (value, unit) {
        (Some(v), Some(u)) if u > 0 => ((v + u - 1) / u).to_string(),
        _ => "0".into(),
    }
}

/// A container's environment.
///
/// # Errors
/// The CreateContainerConfigError message when a referenced ConfigMap, Secret or key is missing.
pub async fn env(
    client: &Client,
    pod: &Pod,
    container: &Container,
    node_cpu: &str,
    node_memory: &str,
    services: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match config_map(client, &ns, &r.name)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(cm) => env.extend(
                    cm.data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
                ),
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match secret(client, &ns, &r.name)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(s) => env.extend(secret_files(&s).into_iter().map(|(k, v)| {
                    (
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })),
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => {
                // Declared variables first, then the Service variables.
                let scope: Vec<(String, String)> =
                    services.iter().chain(env.iter()).cloned().collect();
                expand(v, &scope)
            }
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path).unwrap_or_default()
                } else if let Some(r) = &from.resource_field_ref {
                    let resources = container.resources.clone().unwrap_or_default();
                    let resource = r.resource.as_str();
                    let (kind, name) = resource.split_once('.').unwrap_or(("limits", resource));
                    let map = if kind == "requests" {
                        resources.requests
                    } else {
                        resources.limits
                    };
                    let default = if name == "cpu" { node_cpu } else { node_memory };
                    let q = map
                        .as_ref()
                        .and_then(|m| m.get(name))
                        .map(|q| q.0.clone())
                        .unwrap_or_else(|| {
                            if kind == "requests" {
                                "0".into()
                            } else {
                                default.to_string()
                            }
                        });
                    quantity_value(
                        name,
                        &q,
                        r.divisor.as_ref().map(|d| d.0.as_str()).unwrap_or(""),
                    )
                } else if let Some(k) = &from.config_map_key_ref {
                    match config_map(client, &ns, &k.name)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&k.key)) {
                            Some(v) => v.clone(),
                            None if k.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    k.key, k.name
                                ))
                            }
                        },
                        None if k.optional == Some(true) => continue,
                        None => return Err(format!("configmap \"{}\" not found", k.name)),
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    match secret(client, &ns, &k.name)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        Some(s) => match secret_files(&s).get(&k.key) {
                            Some(v) => String::from_utf8_lossy(v).into_owned(),
                            None if k.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    k.key, k.name
                                ))
                            }
                        },
                        None if k.optional == Some(true) => continue,
                        None => return Err(format!("secret \"{}\" not found", k.name)),
                    }
                } else {
                    String::new()
                }
            }
            (None, None) => String::new(),
        };
        env.push((e.name.clone(), value));
    }
    // The Service variables the container does not declare itself.
    let declared: std::collections::HashSet<String> = env.iter().map(|(k, _)| k.clone()).collect();
    env.extend(
        services
            .iter()
            .filter(|(k, _)| !declared.contains(k))
            .cloned(),
    );
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_earlier_variables() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)", &env), "x-$(B)");
        assert_eq!(expand("plain", &env), "plain");
    }

    #[test]
    fn resource_fields_round_up_to_the_divisor() {
        assert_eq!(quantity_value("cpu", "250m", ""), "1");
        assert_eq!(quantity_value("cpu", "250m", "1m"), "250");
        assert_eq!(quantity_value("memory", "64Mi", "1Mi"), "64");
        assert_eq!(quantity_value("memory", "1Gi", ""), "1073741824");
    }
}
