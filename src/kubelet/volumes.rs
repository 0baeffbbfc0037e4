//! Volumes and configuration: the filesystems a pod's volumes are (emptyDir, configMap, secret,
//! downwardAPI, projected: configMaps, secrets, downwardAPI and service account tokens the
//! apiserver issues; hostPath) and each container's environment (env, envFrom, fieldRef,
//! resourceFieldRef), read through the API like the real kubelet does.
//!
//! The kubelet puts the files of a configMap, secret, downwardAPI or projected volume in place
//! as upstream's atomic writer does: in a directory named after the time (`..2025_01_02_03_04_05.
//! 123456789`, mode 0755), with `..data` a link to it and each top-level name a link into
//! `..data` (`data-1 -> ..data/data-1`). Each file has its item's `mode`, else the volume's
//! `defaultMode` (0644). With a pod `fsGroup`, every file and directory of a volume takes that
//! group, files gain `0440` (`0660` in an emptyDir) and directories also `0110` and setgid, as
//! `SetVolumeOwnership` does. An emptyDir root is 0777 (1777 on tmpfs, which holds at most the
//! emptyDir's sizeLimit); the types are as [`super::runtime::Fs`] describes. These volumes are
//! mounted read-only.
//!
//! [`refresh`] rewrites such volumes when what they show changed (a new `..data` directory
//! swapped in at once; names that disappeared are removed; an optional source that appears
//! fills its volume), which the pod worker does every pod sync (upstream's `syncFrequency`,
//! a minute, with up to half of it as jitter). A subPath of such a volume is a copy taken when
//! the container starts, so it sees no updates, as upstream's bind mount of the file it found;
//! a subPath of an emptyDir is the directory itself (made, with the mode of the volume's root,
//! when missing). Service account tokens are issued once per volume (no rotation); a token
//! is mode 0600 and the pod's user's when the pod runs as one user or has an fsGroup.
//!
//! A hostPath volume is the node's own filesystem (one per kubelet, shared by its pods) at
//! the path, checked or made as its `type` says; the kubelet changes no ownership there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, HostPathVolumeSource, KeyToPath, Pod,
    ProjectedVolumeSource, ResourceFieldSelector, Secret, ServiceAccount,
    ServiceAccountTokenProjection, Volume,
};
use kube::api::{Api, PostParams};
use kube::Client;

use super::runtime::{normalize_path, FileKind, Fs, FsType, Identity, Mount, S_ISGID};

/// A volume that cannot be set up (the FailedMount event's message).
#[derive(Debug, Clone, PartialEq)]
pub struct MountError(pub String);

/// The node's allocatable CPU and memory: what a resourceFieldRef shows of a limit the
/// container does not set.
#[derive(Clone, Debug, Default)]
pub struct NodeAllocatable {
    /// CPU (a quantity).
    pub cpu: String,
    /// Memory (a quantity).
    pub memory: String,
}

/// One file the kubelet writes in a volume (upstream's `FileProjection`).
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// Contents.
    pub data: Vec<u8>,
    /// Mode (`07777`).
    pub mode: u32,
    /// Its owner when not root (a service account token's, for the pod's user).
    pub owner: Option<u32>,
}

impl File {
    fn new(data: Vec<u8>, mode: u32) -> Self {
        Self {
            data,
            mode,
            owner: None,
        }
    }
}

/// What the kubelet writes in a volume: files by path relative to its root.
pub type Payload = BTreeMap<String, File>;

/// A volume's `defaultMode` when it sets none.
const DEFAULT_MODE: u32 = 0o644;

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

/// How long (cluster time) a pod sync's refresh uses the kubelet's copy of a ConfigMap or
/// Secret before it reads it again.
const SOURCE_TTL_SECONDS: i64 = 10;

/// The ConfigMaps and Secrets the kubelet's volumes show, as it last read them, shared by its
/// pods: a refresh reads an object again only once its copy is [`SOURCE_TTL_SECONDS`] old, so
/// a node's pods cost one read per object, not one per pod (upstream keeps a watch on each
/// object its pods use; this is its cheap stand-in). Setting a volume up always reads.
#[derive(Debug, Default)]
pub struct SourceCache {
    config_maps: parking_lot::Mutex<Cached<ConfigMap>>,
    secrets: parking_lot::Mutex<Cached<Secret>>,
}

/// Objects by (namespace, name): when they were read, and what was there.
type Cached<T> = HashMap<(String, String), (DateTime<Utc>, Option<T>)>;

/// How the kubelet reads the sources of a pod's volumes now.
struct Sources<'a> {
    client: &'a Client,
    cache: &'a SourceCache,
    now: DateTime<Utc>,
    /// Read through to the API (setting a volume up), not from a recent copy.
    fresh: bool,
}

impl Sources<'_> {
    async fn config_map(&self, ns: &str, name: &str) -> kube::Result<Option<ConfigMap>> {
        let key = (ns.to_string(), name.to_string());
        if let Some(hit) = self.recent(&self.cache.config_maps, &key) {
            return Ok(hit);
        }
        let found = config_map(self.client, ns, name).await?;
        Self::keep(&self.cache.config_maps, key, self.now, found.clone());
        Ok(found)
    }

    async fn secret(&self, ns: &str, name: &str) -> kube::Result<Option<Secret>> {
        let key = (ns.to_string(), name.to_string());
        if let Some(hit) = self.recent(&self.cache.secrets, &key) {
            return Ok(hit);
        }
        let found = secret(self.client, ns, name).await?;
        Self::keep(&self.cache.secrets, key, self.now, found.clone());
        Ok(found)
    }

    fn recent<T: Clone>(
        &self,
        cache: &parking_lot::Mutex<Cached<T>>,
        key: &(String, String),
    ) -> Option<Option<T>> {
        if self.fresh {
            return None;
        }
        let cache = cache.lock();
        let (at, obj) = cache.get(key)?;
        let age = self.now - *at;
        (age >= chrono::Duration::zero() && age < chrono::Duration::seconds(SOURCE_TTL_SECONDS))
            .then(|| obj.clone())
    }

    fn keep<T>(
        cache: &parking_lot::Mutex<Cached<T>>,
        key: (String, String),
        now: DateTime<Utc>,
        obj: Option<T>,
    ) {
        let mut cache = cache.lock();
        // Copies no pod has asked for in a while go.
        if cache.len() >= 1024 {
            let old = now - chrono::Duration::seconds(10 * SOURCE_TTL_SECONDS);
            cache.retain(|_, (at, _)| *at > old);
        }
        cache.insert(key, (now, obj));
    }
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

/// A mode field's value, or `default`.
fn mode_or(mode: Option<i32>, default: u32) -> u32 {
    mode.map_or(default, |m| u32::try_from(m).unwrap_or(0) & 0o7777)
}

/// The files a configMap or secret volume shows of `files`: all of them with `default_mode`,
/// or the items (a missing key fails the volume unless it is optional, with upstream's
/// message: `<missing>: <key>`).
fn select_items(
    files: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
    missing: &str,
) -> Result<Payload, String> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(files
            .iter()
            .map(|(k, v)| (k.clone(), File::new(v.clone(), default_mode)))
            .collect());
    };
    let mut out = Payload::new();
    for i in items {
        match files.get(&i.key) {
            Some(v) => {
                out.insert(
                    i.path.clone(),
                    File::new(v.clone(), mode_or(i.mode, default_mode)),
                );
            }
            None if optional => {}
            None => return Err(format!("{missing}: {}", i.key)),
        }
    }
    Ok(out)
}

const CONFIG_MAP_KEY_MISSING: &str = "configmap references non-existent config key";
const SECRET_KEY_MISSING: &str = "references non-existent secret key";

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

/// The files of downwardAPI items: fields of the pod, resources of its containers.
fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    node: &NodeAllocatable,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    for i in items {
        let value = if let Some(f) = &i.field_ref {
            field_value(pod, &f.field_path).unwrap_or_default()
        } else if let Some(r) = &i.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let spec = pod.spec.as_ref();
            let container = spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| format!("failed to find container {name:?} in pod"))?;
            resource_field(container, r, &node.cpu, &node.memory)
        } else {
            continue;
        };
        out.insert(
            i.path.clone(),
            File::new(value.into_bytes(), mode_or(i.mode, default_mode)),
        );
    }
    Ok(out)
}

/// The files of a projected volume: each source's, in order. A source that cannot be read
/// (a missing ConfigMap or Secret that is not optional, a token the apiserver will not issue)
/// fails the volume; every such failure is reported. A token already in `previous` (the
/// volume as it is) is kept.
async fn projected_files(
    sources: &Sources<'_>,
    pod: &Pod,
    p: &ProjectedVolumeSource,
    node: &NodeAllocatable,
    previous: Option<&Fs>,
) -> Result<Payload, Vec<String>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let default_mode = mode_or(p.default_mode, DEFAULT_MODE);
    let mut files = Payload::new();
    let mut errors = Vec::new();
    for source in p.sources.iter().flatten() {
        if let Some(cm) = &source.config_map {
            let optional = cm.optional == Some(true);
            match sources.config_map(&ns, &cm.name).await {
                Ok(found) if found.is_some() || optional => {
                    let data = found.as_ref().map(config_map_files).unwrap_or_default();
                    let items = cm.items.as_ref();
                    match select_items(&data, items, default_mode, optional, CONFIG_MAP_KEY_MISSING)
                    {
                        Ok(selected) => files.extend(selected),
                        Err(e) => errors.push(e),
                    }
                }
                Ok(_) => errors.push(format!("configmap \"{}\" not found", cm.name)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(s) = &source.secret {
            let optional = s.optional == Some(true);
            match sources.secret(&ns, &s.name).await {
                Ok(found) if found.is_some() || optional => {
                    let data = found.as_ref().map(secret_files).unwrap_or_default();
                    match select_items(
                        &data,
                        s.items.as_ref(),
                        default_mode,
                        optional,
                        SECRET_KEY_MISSING,
                    ) {
                        Ok(selected) => files.extend(selected),
                        Err(e) => errors.push(e),
                    }
                }
                Ok(_) => errors.push(format!("secret \"{}\" not found", s.name)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(d) = &source.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            match downward_files(pod, items, default_mode, node) {
                Ok(found) => files.extend(found),
                Err(e) => errors.push(e),
            }
        }
        if let Some(t) = &source.service_account_token {
            let kept = previous.and_then(|fs| fs.read(&format!("/..data/{}", t.path)));
            let token = match kept {
                Some(token) => Ok(token),
                None => service_account_token(sources.client, pod, t)
                    .await
                    .map(String::into_bytes),
            };
            match token {
                Ok(token) => {
                    // Only the pod's user (and its fsGroup) may read a token.
                    let user = fs_user(pod);
                    let mode = if user.is_some() || fs_group(pod).is_some() {
                        0o600
                    } else {
                        default_mode
                    };
                    files.insert(
                        t.path.clone(),
                        File {
                            data: token,
                            mode,
                            owner: user,
                        },
                    );
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

/// Whether the kubelet writes `v`'s contents from the API (and keeps them up to date).
fn is_api_volume(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
}

/// What volume `v` shows now: `None` for a volume the kubelet does not fill (an emptyDir).
///
/// # Errors
/// Why the volume cannot be set up (the end of the FailedMount message).
async fn payload(
    sources: &Sources<'_>,
    pod: &Pod,
    v: &Volume,
    node: &NodeAllocatable,
    previous: Option<&Fs>,
) -> Result<Option<Payload>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(cm) = &v.config_map {
        let optional = cm.optional == Some(true);
        let default_mode = mode_or(cm.default_mode, DEFAULT_MODE);
        let found = sources
            .config_map(&ns, &cm.name)
            .await
            .map_err(|e| e.to_string())?;
        if found.is_none() && !optional {
            return Err(format!("configmap \"{}\" not found", cm.name));
        }
        let data = found.as_ref().map(config_map_files).unwrap_or_default();
        return select_items(
            &data,
            cm.items.as_ref(),
            default_mode,
            optional,
            CONFIG_MAP_KEY_MISSING,
        )
        .map(Some);
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let optional = s.optional == Some(true);
        let default_mode = mode_or(s.default_mode, DEFAULT_MODE);
        let found = sources
            .secret(&ns, &name)
            .await
            .map_err(|e| e.to_string())?;
        if found.is_none() && !optional {
            return Err(format!("secret \"{name}\" not found"));
        }
        let data = found.as_ref().map(secret_files).unwrap_or_default();
        return select_items(
            &data,
            s.items.as_ref(),
            default_mode,
            optional,
            SECRET_KEY_MISSING,
        )
        .map(Some);
    }
    if let Some(d) = &v.downward_api {
        let default_mode = mode_or(d.default_mode, DEFAULT_MODE);
        let items = d.items.as_deref().unwrap_or_default();
        return downward_files(pod, items, default_mode, node).map(Some);
    }
    if let Some(p) = &v.projected {
        // Every source's failure, aggregated as upstream's projected volume reports them.
        return projected_files(sources, pod, p, node, previous)
            .await
            .map(Some)
            .map_err(|errors| match errors.as_slice() {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            });
    }
    Ok(None)
}

/// The filesystem the kubelet sets up for volume `v`: tmpfs for a memory emptyDir, a secret,
/// downwardAPI or projected volume; the node's disk for the others.
fn new_volume_fs(v: &Volume) -> Fs {
    let memory = v
        .empty_dir
        .as_ref()
        .is_some_and(|e| e.medium.as_deref() == Some("Memory"))
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some();
    if memory {
        // A tmpfs mount's root directory has the tmpfs default mode; a memory emptyDir's
        // tmpfs is as large as its sizeLimit.
        let fs = Fs::new(FsType::Tmpfs, 0o1777);
        let limit = v
            .empty_dir
            .as_ref()
            .and_then(|e| e.size_limit.as_ref())
            .and_then(crate::k8s::quantity::parse_bytes)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|b| *b > 0);
        match limit {
            Some(bytes) => fs.with_capacity(bytes),
            None => fs,
        }
    } else {
        // emptyDir's `setupDir`.
        Fs::new(FsType::Ext4, 0o777)
    }
}

/// The user every container of the pod runs as, when they all set one and it is the same
/// (upstream's `FsUserFrom`).
/// A hostPath volume: the node's `path`, checked (and made) as its `type` says.
fn host_path(host: &Arc<Fs>, hp: &HostPathVolumeSource) -> Result<Fs, String> {
    let path = normalize_path(&hp.path);
    let found = host.stat(&path).ok().map(|s| s.kind);
    let not = |what: &str| format!("hostPath type check failed: {path} is not {what}");
    match (hp.type_.as_deref().unwrap_or_default(), found) {
        // Unchecked: the runtime makes a missing directory, as containerd does.
        ("" | "DirectoryOrCreate", None) => host.mkdir(&path),
        ("DirectoryOrCreate" | "Directory", Some(FileKind::Dir)) | ("", _) => {}
        ("DirectoryOrCreate" | "Directory", _) => return Err(not("a directory")),
        ("FileOrCreate", None) => host.write(&path, b"", true).map_err(str::to_string)?,
        ("FileOrCreate" | "File", Some(FileKind::File)) => {}
        ("FileOrCreate" | "File", _) => return Err(not("a file")),
        ("Socket", _) => return Err(not("a socket file")),
        ("CharDevice", _) => return Err(not("a character device")),
        ("BlockDevice", _) => return Err(not("a block device")),
        (other, _) => return Err(format!("invalid HostPathType: {other}")),
    }
    Ok(Fs::view(host.clone(), &path))
}

fn fs_user(pod: &Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let mut user = None;
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        let own = c.security_context.as_ref().and_then(|s| s.run_as_user);
        let effective = own.or(pod_user)?;
        if user.is_some_and(|u| u != effective) {
            return None;
        }
        user = Some(effective);
    }
    user.and_then(|u| u32::try_from(u).ok())
}

fn fs_group(pod: &Pod) -> Option<u32> {
    let group = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(group).ok()
}

fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
}

fn mount_error(volume: &str, why: &str) -> MountError {
    MountError(format!(
        "MountVolume.SetUp failed for volume \"{volume}\" : {why}"
    ))
}

/// Set up every volume of the pod: one filesystem each, shared by the containers that mount
/// it.
///
/// # Errors
/// The first volume that cannot be set up, with upstream's FailedMount message.
pub async fn mount(
    client: &Client,
    cache: &SourceCache,
    host: &Arc<Fs>,
    pod: &Pod,
    node: &NodeAllocatable,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Arc<Fs>>, MountError> {
    let sources = Sources {
        client,
        cache,
        now,
        fresh: true,
    };
    let group = fs_group(pod);
    let mut out = HashMap::new();
    for v in pod_volumes(pod) {
        let payload = payload(&sources, pod, v, node, None)
            .await
            .map_err(|why| mount_error(&v.name, &why))?;
        if let Some(hp) = &v.host_path {
            // The kubelet manages no ownership of the node's files.
            let fs = host_path(host, hp).map_err(|why| mount_error(&v.name, &why))?;
            out.insert(v.name.clone(), Arc::new(fs));
            continue;
        }
        let fs = new_volume_fs(v);
        if let Some(payload) = &payload {
            write_atomically(&fs, payload, now).map_err(|why| mount_error(&v.name, &why))?;
        }
        set_ownership(&fs, group, payload.is_some());
        out.insert(v.name.clone(), Arc::new(fs));
    }
    Ok(out)
}

/// Bring the volumes the kubelet fills from the API up to date (a pod sync's remount):
/// changed contents are swapped in, names gone are removed. A volume that cannot be read now
/// keeps what it shows.
///
/// # Errors
/// Each volume that could not be refreshed, with upstream's FailedMount message.
pub async fn refresh(
    client: &Client,
    cache: &SourceCache,
    pod: &Pod,
    node: &NodeAllocatable,
    filesystems: &HashMap<String, Arc<Fs>>,
    now: DateTime<Utc>,
) -> Vec<MountError> {
    let sources = Sources {
        client,
        cache,
        now,
        fresh: false,
    };
    let group = fs_group(pod);
    let mut errors = Vec::new();
    for v in pod_volumes(pod).filter(|v| is_api_volume(v)) {
        let Some(fs) = filesystems.get(&v.name) else {
            continue;
        };
        let written = match payload(&sources, pod, v, node, Some(fs)).await {
            Ok(Some(payload)) => write_atomically(fs, &payload, now),
            Ok(None) => Ok(false),
            Err(why) => Err(why),
        };
        match written {
            Ok(true) => set_ownership(fs, group, true),
            Ok(false) => {}
            Err(why) => errors.push(mount_error(&v.name, &why)),
        }
    }
    errors
}

/// Whether the pod has volumes [`refresh`] updates.
pub fn has_api_volumes(pod: &Pod) -> bool {
    pod_volumes(pod).any(is_api_volume)
}

/// A payload path as upstream's atomic writer accepts it.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if p.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if p.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!("invalid path: must not contain '..': {p}"));
    }
    Ok(())
}

/// The random part of a data directory's name (`os.MkdirTemp`'s).
fn random_suffix(now: DateTime<Utc>) -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0x9e37_79b9);
    let n = NEXT.fetch_add(0x6d2b_79f5, Ordering::Relaxed);
    n ^ now.timestamp_subsec_nanos().wrapping_mul(0x85eb_ca6b)
}

/// Upstream's `AtomicWriter.Write`: `payload` in a new data directory, `..data` switched to it
/// at once, a link for each top-level name, names no longer in the payload removed, the old
/// directory removed. Nothing is written when the files are as they are already; true when
/// something changed.
fn write_atomically(fs: &Fs, payload: &Payload, now: DateTime<Utc>) -> Result<bool, String> {
    let mut clean = Payload::new();
    for (path, file) in payload {
        check_path(path)?;
        clean.insert(normalize_path(path)[1..].to_string(), file.clone());
    }
    let io = |e: super::runtime::FsError| e.to_string();
    let old = fs.readlink("/..data").ok();
    // Every path of the old data directory the new payload does not have.
    let old_paths: BTreeSet<String> = old
        .as_ref()
        .map(|dir| {
            let prefix = format!("/{dir}/");
            fs.walk(&format!("/{dir}"))
                .into_iter()
                .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut new_paths = BTreeSet::new();
    for path in clean.keys() {
        let mut p = path.as_str();
        loop {
            new_paths.insert(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    let gone: Vec<&String> = old_paths.difference(&new_paths).collect();
    let changed = match &old {
        None => true,
        Some(dir) => {
            !gone.is_empty()
                || clean.iter().any(|(p, f)| {
                    fs.read(&format!("/{dir}/{p}")).as_deref() != Some(f.data.as_slice())
                })
        }
    };
    if changed {
        let dir = loop {
            let name = format!(
                "..{}.{}",
                now.format("%Y_%m_%d_%H_%M_%S"),
                random_suffix(now)
            );
            match fs.mkdir_mode(&format!("/{name}"), 0o755) {
                Ok(()) => break name,
                Err(super::runtime::FsError::Exists) => continue,
                Err(e) => return Err(io(e)),
            }
        };
        fs.chmod(&format!("/{dir}"), 0o755).map_err(io)?;
        for (path, file) in &clean {
            let full = format!("/{dir}/{path}");
            // Directories of nested paths: `MkdirAll(0777)` under the kubelet's umask.
            let mut cur = format!("/{dir}");
            let parents: Vec<&str> = path.split('/').collect();
            for c in &parents[..parents.len() - 1] {
                cur = format!("{cur}/{c}");
                if !fs.is_dir(&cur) {
                    fs.mkdir_mode(&cur, 0o755).map_err(io)?;
                }
            }
            fs.write_file(&full, &file.data, false, file.mode)
                .map_err(io)?;
            fs.chmod(&full, file.mode).map_err(io)?;
            if let Some(uid) = file.owner {
                fs.lchown(&full, uid, fs.lstat(&full).map_err(io)?.gid)
                    .map_err(io)?;
            }
        }
        let _ = fs.remove_path("/..data_tmp");
        fs.symlink(&dir, "/..data_tmp").map_err(io)?;
        fs.rename("/..data_tmp", "/..data").map_err(io)?;
    }
    // The user-visible links (made even when nothing changed, should one be missing).
    for path in clean.keys() {
        let top = path.split('/').next().unwrap_or(path);
        let link = format!("/{top}");
        if fs.lstat(&link).is_err() {
            fs.symlink(&format!("..data/{top}"), &link).map_err(io)?;
        }
    }
    if changed {
        for p in gone.iter().filter(|p| !p.contains('/')) {
            let _ = fs.remove_path(&format!("/{p}"));
        }
        if let Some(dir) = old {
            let _ = fs.remove_path(&format!("/{dir}"));
        }
    }
    Ok(changed)
}

/// Upstream's `SetVolumeOwnership`: with an fsGroup, everything in the volume takes that group;
/// files gain read (and write, unless the volume is read-only) for the group, directories
/// also search and setgid. Links keep their mode.
fn set_ownership(fs: &Fs, fs_group: Option<u32>, read_only: bool) {
    let Some(gid) = fs_group else {
        return;
    };
    for p in fs.walk("/") {
        let Ok(st) = fs.lstat(&p) else {
            continue;
        };
        let _ = fs.lchown(&p, st.uid, gid);
        if st.kind == FileKind::Symlink {
            continue;
        }
        let mut mask = if read_only { 0o440 } else { 0o660 };
        if st.kind == FileKind::Dir {
            mask |= S_ISGID | 0o110;
        }
        let _ = fs.chmod(&p, st.mode | mask);
    }
}

/// Make the directories of a subPath that are missing, as the kubelet does before it mounts
/// it: each with the mode of the volume's root (setgid and sticky included), in the group of
/// a setgid parent.
fn make_sub_path(fs: &Fs, sub: &str) -> Result<(), super::runtime::FsError> {
    let mode = fs.stat("/")?.mode;
    let mut cur = String::new();
    for c in normalize_path(sub).split('/').filter(|c| !c.is_empty()) {
        cur = format!("{cur}/{c}");
        if fs.lstat(&cur).is_err() {
            fs.mkdir_mode(&cur, mode)?;
            fs.chmod(&cur, mode)?;
        }
    }
    Ok(())
}

/// A container's volume mounts: whole volumes (shared with the pod's other containers), or a
/// subPath of them. Volumes the kubelet fills from the API are mounted read-only.
pub fn container_mounts(
    container: &Container,
    pod: &Pod,
    filesystems: &HashMap<String, Arc<Fs>>,
) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let Some(fs) = filesystems.get(&m.name) else {
            continue;
        };
        let api = pod_volumes(pod).any(|v| v.name == m.name && is_api_volume(v));
        let read_only = m.read_only == Some(true) || api;
        let mount = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => Mount::new(&m.mount_path, fs.clone()),
            Some(sub) if api => match fs.snapshot(sub) {
                Ok((copy, root)) => Mount::new(&m.mount_path, Arc::new(copy)).sub_path(&root),
                Err(_) => continue,
            },
            Some(sub) => {
                if make_sub_path(fs, sub).is_err() {
                    continue;
                }
                Mount::new(&m.mount_path, fs.clone()).sub_path(sub)
            }
        };
        mounts.push(mount.read_only(read_only));
    }
    mounts
}

/// Who a container's processes run as: `runAsUser` and `runAsGroup` (the container's, else
/// the pod's; else the image's `User`, `UID[:GID]`, as `image_user` gives it: root when empty),
/// with the pod's `fsGroup` and `supplementalGroups` as supplementary groups.
pub fn identity(pod: &Pod, container: &Container, image_user: &str) -> Identity {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = container.security_context.as_ref();
    let id = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    let uid = id(sc.and_then(|s| s.run_as_user)).or(id(pod_sc.and_then(|s| s.run_as_user)));
    let gid = id(sc.and_then(|s| s.run_as_group)).or(id(pod_sc.and_then(|s| s.run_as_group)));
    let mut groups: Vec<u32> = pod_sc
        .and_then(|s| s.supplemental_groups.clone())
        .into_iter()
        .flatten()
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    groups.extend(fs_group(pod));
    // The image's numeric user (and group); a name would come from its /etc/passwd.
    let (image_uid, image_gid) = match image_user.split_once(':') {
        Some((u, g)) => (u.parse().ok(), g.parse().ok()),
        None => (image_user.parse().ok(), None),
    };
    Identity {
        uid: uid.or(image_uid).unwrap_or(0),
        gid: gid
            .or(if uid.is_none() { image_gid } else { None })
            .unwrap_or(0),
        groups,
        umask: 0o022,
    }
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

/// A resourceFieldRef's value for `container`: its request or limit (a limit it does not set
/// is the node's allocatable), in units of the divisor.
fn resource_field(
    container: &Container,
    r: &ResourceFieldSelector,
    node_cpu: &str,
    node_memory: &str,
) -> String {
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
            (Some(v), _) if v.contains("$(") => {
                // Declared variables first, then the Service variables.
                let scope: Vec<(String, String)> =
                    services.iter().chain(env.iter()).cloned().collect();
                expand(v, &scope)
            }
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path).unwrap_or_default()
                } else if let Some(r) = &from.resource_field_ref {
                    resource_field(container, r, node_cpu, node_memory)
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
    use crate::clock::Clock;
    use crate::kubelet::runtime::{
        catalog, ContainerConfig, FsError, ProcessState, Runtime, SimRuntime,
    };

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}),
        )
        .unwrap()
    }

    /// A volume as the kubelet sets it up for `pod`'s volume `name` from `payload`.
    fn set_up(pod: &Pod, name: &str, payload: &Payload) -> Arc<Fs> {
        let v = pod_volumes(pod).find(|v| v.name == name).unwrap();
        let fs = new_volume_fs(v);
        if is_api_volume(v) {
            assert!(write_atomically(&fs, payload, at(0)).unwrap());
        }
        set_ownership(&fs, fs_group(pod), is_api_volume(v));
        Arc::new(fs)
    }

    /// Run the pod's first container (agnhost) with its volume mounts over `volumes` until it
    /// exits: (exit status, log).
    async fn run(pod: &Pod, volumes: &HashMap<String, Arc<Fs>>) -> (i32, String) {
        let rt = SimRuntime::new(Clock::new(1000.0));
        let id = start(&rt, pod, volumes).await;
        let mut exits = rt.exits();
        loop {
            if let Some(ProcessState::Exited { code, .. }) = rt.state(&id) {
                let log = String::from_utf8_lossy(&rt.logs(&id).unwrap()).into_owned();
                return (code, log);
            }
            exits.changed().await.unwrap();
        }
    }

    async fn start(rt: &SimRuntime, pod: &Pod, volumes: &HashMap<String, Arc<Fs>>) -> String {
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let id = rt.create_container(ContainerConfig {
            pod_name: "p".into(),
            pod_ip: "127.0.0.1".parse().unwrap(),
            name: c.name.clone(),
            image: catalog::resolve("registry.k8s.io/e2e-test-images/agnhost:2.53").unwrap(),
            command: Vec::new(),
            args: c.args.clone().unwrap_or_default(),
            env: Vec::new(),
            files: BTreeMap::new(),
            mounts: container_mounts(c, pod, volumes),
            identity: identity(pod, c, ""),
            read_only_root: false,
        });
        rt.start_container(&id).await.unwrap();
        id
    }

    fn agnhost(args: &[&str], mounts: serde_json::Value) -> serde_json::Value {
        serde_json::json!([{"name": "c", "image": "agnhost", "args": args, "volumeMounts": mounts}])
    }

    /// The e2e ConfigMap's data.
    fn config_map_data() -> BTreeMap<String, Vec<u8>> {
        files(&[
            ("data-1", "value-1"),
            ("data-2", "value-2"),
            ("data-3", "value-3"),
        ])
    }

    #[tokio::test]
    async fn a_config_map_volume_is_laid_out_as_the_atomic_writer_does_with_default_modes() {
        // ConfigMap should be consumable from pods in volume (as non-root).
        let pod = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000},
            "volumes": [{"name": "configmap-volume", "configMap": {"name": "cm"}}],
            "containers": agnhost(
                &["mounttest", "--file_content=/etc/configmap-volume/data-1", "--file_mode=/etc/configmap-volume/data-1"],
                serde_json::json!([{"name": "configmap-volume", "mountPath": "/etc/configmap-volume"}]))}));
        let payload = select_items(&config_map_data(), None, DEFAULT_MODE, false, "").unwrap();
        let fs = set_up(&pod, "configmap-volume", &payload);
        let names = fs.list_dir("/").unwrap();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names[0].starts_with("..2023_11_14_22_13_20."), "{names:?}");
        assert_eq!(names[1..], ["..data", "data-1", "data-2", "data-3"]);
        assert_eq!(fs.readlink("/..data").unwrap(), names[0]);
        assert_eq!(fs.readlink("/data-1").unwrap(), "..data/data-1");
        assert_eq!(
            fs.lstat(&format!("/{}", names[0])).unwrap().go_mode(),
            "drwxr-xr-x"
        );
        assert_eq!(fs.stat("/").unwrap().go_mode(), "drwxrwxrwx");
        assert_eq!(fs.fs_type(), FsType::Ext4);
        let volumes = HashMap::from([("configmap-volume".to_string(), fs)]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "mode of file \"/etc/configmap-volume/data-1\": -rw-r--r--\n\
             content of file \"/etc/configmap-volume/data-1\": value-1\n"
        );
    }

    #[tokio::test]
    async fn a_secret_with_default_mode_and_fs_group_is_readable_by_the_group() {
        // Secrets should be consumable from pods in volume as non-root with defaultMode and
        // fsGroup set.
        let pod = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000, "fsGroup": 1001},
            "volumes": [{"name": "secret-volume", "secret": {"secretName": "s", "defaultMode": 0o440}}],
            "containers": agnhost(
                &["mounttest", "--file_content=/etc/secret-volume/data-1", "--file_mode=/etc/secret-volume/data-1",
                  "--file_owner=/etc/secret-volume/data-1", "--fs_type=/etc/secret-volume"],
                serde_json::json!([{"name": "secret-volume", "mountPath": "/etc/secret-volume"}]))}));
        let payload =
            select_items(&files(&[("data-1", "value-1\n")]), None, 0o440, false, "").unwrap();
        let fs = set_up(&pod, "secret-volume", &payload);
        assert_eq!(fs.stat("/").unwrap().go_mode(), "dgtrwxrwxrwx");
        let volumes = HashMap::from([("secret-volume".to_string(), fs)]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "mount type of \"/etc/secret-volume\": tmpfs\n\
             mode of file \"/etc/secret-volume/data-1\": -r--r-----\n\
             owner UID of \"/etc/secret-volume/data-1\": 0\n\
             owner GID of \"/etc/secret-volume/data-1\": 1001\n\
             content of file \"/etc/secret-volume/data-1\": value-1\n\n"
        );
    }

    #[tokio::test]
    async fn a_0400_secret_is_root_s_alone() {
        let pod = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000},
            "volumes": [{"name": "secret-volume", "secret": {"secretName": "s", "defaultMode": 0o400}}],
            "containers": agnhost(
                &["mounttest", "--file_content=/etc/secret-volume/data-1"],
                serde_json::json!([{"name": "secret-volume", "mountPath": "/etc/secret-volume"}]))}));
        let payload = select_items(&files(&[("data-1", "v")]), None, 0o400, false, "").unwrap();
        let fs = set_up(&pod, "secret-volume", &payload);
        let volumes = HashMap::from([("secret-volume".to_string(), fs)]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 1);
        assert_eq!(
            log,
            "error reading file content for \"/etc/secret-volume/data-1\": open /etc/secret-volume/data-1: permission denied\n"
        );
    }

    #[tokio::test]
    async fn an_item_mapped_to_a_nested_path_has_its_mode() {
        // ConfigMap should be consumable from pods in volume with mappings and Item mode set.
        let pod = pod(serde_json::json!({
            "volumes": [{"name": "configmap-volume", "configMap": {"name": "cm"}}],
            "containers": agnhost(
                &["mounttest", "--file_content=/etc/configmap-volume/path/to/data-2", "--file_mode=/etc/configmap-volume/path/to/data-2"],
                serde_json::json!([{"name": "configmap-volume", "mountPath": "/etc/configmap-volume", "readOnly": true}]))}));
        let items = vec![KeyToPath {
            key: "data-2".into(),
            path: "path/to/data-2".into(),
            mode: Some(0o400),
        }];
        let payload =
            select_items(&config_map_data(), Some(&items), DEFAULT_MODE, false, "").unwrap();
        let fs = set_up(&pod, "configmap-volume", &payload);
        assert_eq!(fs.readlink("/path").unwrap(), "..data/path");
        let volumes = HashMap::from([("configmap-volume".to_string(), fs)]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "mode of file \"/etc/configmap-volume/path/to/data-2\": -r--------\n\
             content of file \"/etc/configmap-volume/path/to/data-2\": value-2\n"
        );
    }

    #[tokio::test]
    async fn a_refresh_reuses_a_copy_of_a_source_for_ten_seconds() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let cache = SourceCache::default();
        let sources = |now, fresh| Sources {
            client: &client,
            cache: &cache,
            now,
            fresh,
        };
        let key = ("ns".to_string(), "cm".to_string());
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"data": {"a": "1"}})).unwrap();
        Sources::keep(&cache.config_maps, key.clone(), at(0), Some(cm.clone()));
        let hit = |now, fresh| sources(now, fresh).recent(&cache.config_maps, &key);
        assert_eq!(hit(at(9), false), Some(Some(cm)));
        assert_eq!(hit(at(10), false), None);
        assert_eq!(hit(at(5), true), None);
        // Nothing is read from the API while the copy is recent.
        let found = sources(at(1), false).config_map("ns", "cm").await.unwrap();
        assert_eq!(found.and_then(|c| c.data).unwrap()["a"], "1");
    }

    #[tokio::test]
    async fn a_token_is_the_pod_user_s_alone_when_it_has_one_or_an_fs_group() {
        // ServiceAccounts should set ownership and permission when RunAsUser or FsGroup is
        // present.
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let cache = SourceCache::default();
        let sources = Sources {
            client: &client,
            cache: &cache,
            now: at(0),
            fresh: true,
        };
        // The token the volume holds already (so that no TokenRequest is made).
        let previous = Fs::new(FsType::Tmpfs, 0o1777);
        let token = select_items(&files(&[("token", "a.b.c")]), None, 0o644, false, "").unwrap();
        write_atomically(&previous, &token, at(0)).unwrap();
        for (sc, perms, uid, gid) in [
            (
                serde_json::json!({"runAsUser": 1000}),
                "-rw-------",
                1000,
                0,
            ),
            (
                serde_json::json!({"fsGroup": 10000}),
                "-rw-r-----",
                0,
                10000,
            ),
            (
                serde_json::json!({"runAsUser": 1000, "fsGroup": 10000}),
                "-rw-r-----",
                1000,
                10000,
            ),
            (serde_json::json!({}), "-rw-r--r--", 0, 0),
        ] {
            let pod = pod(serde_json::json!({
                "securityContext": sc,
                "volumes": [{"name": "test-volume", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}],
                "containers": agnhost(
                    &["mounttest", "--file_perm=/test-volume/token", "--file_owner=/test-volume/token", "--file_content=/test-volume/token"],
                    serde_json::json!([{"name": "test-volume", "mountPath": "/test-volume", "readOnly": true}]))}));
            let v = pod_volumes(&pod).next().unwrap();
            let projected = v.projected.as_ref().unwrap();
            let node = NodeAllocatable::default();
            let payload = projected_files(&sources, &pod, projected, &node, Some(&previous))
                .await
                .unwrap();
            let fs = set_up(&pod, "test-volume", &payload);
            let volumes = HashMap::from([("test-volume".to_string(), fs)]);
            let (code, log) = run(&pod, &volumes).await;
            assert_eq!(code, 0, "{log}");
            assert_eq!(
                log,
                format!(
                    "perms of file \"/test-volume/token\": {perms}\n\
                     owner UID of \"/test-volume/token\": {uid}\n\
                     owner GID of \"/test-volume/token\": {gid}\n\
                     content of file \"/test-volume/token\": a.b.c\n"
                )
            );
        }
    }

    #[tokio::test]
    async fn host_path_volumes_share_the_node_s_files_between_pods() {
        // HostPath should give a volume the correct mode, support r/w, support subPath.
        let host = Arc::new(Fs::node());
        let volume = serde_json::json!([{"name": "test-volume", "hostPath": {"path": "/tmp"}}]);
        let mounts = |sub: Option<&str>| match sub {
            Some(sub) => {
                serde_json::json!([{"name": "test-volume", "mountPath": "/test-volume", "subPath": sub}])
            }
            None => serde_json::json!([{"name": "test-volume", "mountPath": "/test-volume"}]),
        };
        let pod_running = |args: &[&str], sub: Option<&str>| {
            pod(serde_json::json!({"volumes": volume, "containers": agnhost(args, mounts(sub))}))
        };
        let volumes = |pod: &Pod| {
            let v = pod_volumes(pod).next().unwrap();
            let fs = host_path(&host, v.host_path.as_ref().unwrap()).unwrap();
            HashMap::from([("test-volume".to_string(), Arc::new(fs))])
        };
        let mode = pod_running(
            &[
                "mounttest",
                "--fs_type=/test-volume",
                "--file_mode=/test-volume",
            ],
            None,
        );
        let (code, log) = run(&mode, &volumes(&mode)).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "mount type of \"/test-volume\": 61267\nmode of file \"/test-volume\": dtrwxrwxrwx\n"
        );
        let writer = pod_running(
            &[
                "mounttest",
                "--new_file_0644=/test-volume/test-file",
                "--file_mode=/test-volume/test-file",
            ],
            Some("sub-path"),
        );
        let (code, log) = run(&writer, &volumes(&writer)).await;
        assert_eq!(code, 0, "{log}");
        let reader = pod_running(
            &[
                "mounttest",
                "--file_content_in_loop=/test-volume/sub-path/test-file",
                "--retry_time=180",
            ],
            None,
        );
        let (code, log) = run(&reader, &volumes(&reader)).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "content of file \"/test-volume/sub-path/test-file\": mount-tester new file\n\n"
        );
        assert_eq!(host.stat("/tmp/sub-path").unwrap().go_mode(), "dtrwxrwxrwx");
        let typed = |path: &str, kind: &str| {
            let hp = HostPathVolumeSource {
                path: path.into(),
                type_: Some(kind.into()),
            };
            host_path(&host, &hp).map(|_| ())
        };
        assert_eq!(
            typed("/nope", "Directory"),
            Err("hostPath type check failed: /nope is not a directory".into())
        );
        assert_eq!(
            typed("/tmp", "File"),
            Err("hostPath type check failed: /tmp is not a file".into())
        );
        assert_eq!(typed("/var/lib/data", "DirectoryOrCreate"), Ok(()));
        assert!(host.is_dir("/var/lib/data"));
    }

    #[test]
    fn a_memory_empty_dir_is_as_large_as_its_size_limit() {
        let pod = pod(serde_json::json!({"volumes": [
            {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}}]}));
        let fs = new_volume_fs(pod_volumes(&pod).next().unwrap());
        assert_eq!(fs.write_file("/a", &[0; 1024], false, 0o644), Ok(()));
        assert_eq!(
            fs.write_file("/b", b"x", false, 0o644),
            Err(FsError::NoSpace)
        );
    }

    #[test]
    fn a_missing_key_fails_the_volume_unless_it_is_optional() {
        let items = vec![KeyToPath {
            key: "data_4".into(),
            path: "value-4".into(),
            mode: None,
        }];
        let data = config_map_data();
        assert_eq!(
            select_items(
                &data,
                Some(&items),
                DEFAULT_MODE,
                false,
                CONFIG_MAP_KEY_MISSING
            ),
            Err("configmap references non-existent config key: data_4".into())
        );
        assert_eq!(
            select_items(&data, Some(&items), DEFAULT_MODE, false, SECRET_KEY_MISSING),
            Err("references non-existent secret key: data_4".into())
        );
        assert_eq!(
            select_items(&data, Some(&items), DEFAULT_MODE, true, ""),
            Ok(Payload::new())
        );
    }

    #[test]
    fn an_update_swaps_the_data_directory_and_prunes_what_is_gone() {
        let fs = Fs::new(FsType::Ext4, 0o777);
        let first = select_items(&config_map_data(), None, DEFAULT_MODE, false, "").unwrap();
        assert!(write_atomically(&fs, &first, at(0)).unwrap());
        let old = fs.readlink("/..data").unwrap();
        assert!(!write_atomically(&fs, &first, at(60)).unwrap());
        assert_eq!(fs.readlink("/..data").unwrap(), old);
        let second = select_items(
            &files(&[
                ("data-1", "value-2"),
                ("data-3", "value-3"),
                ("data-4", "new"),
            ]),
            None,
            DEFAULT_MODE,
            false,
            "",
        )
        .unwrap();
        assert!(write_atomically(&fs, &second, at(120)).unwrap());
        let new = fs.readlink("/..data").unwrap();
        assert!(new.starts_with("..2023_11_14_22_15_20."), "{new}");
        assert_eq!(
            fs.list_dir("/").unwrap(),
            [new.as_str(), "..data", "data-1", "data-3", "data-4"]
        );
        assert_eq!(fs.read("/data-1").as_deref(), Some(&b"value-2"[..]));
        assert_eq!(fs.read_file("/data-2"), Err(FsError::NotFound));
        // An optional source that disappeared: an empty volume.
        assert!(write_atomically(&fs, &Payload::new(), at(180)).unwrap());
        let names = fs.list_dir("/").unwrap();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[1], "..data");
    }

    #[test]
    fn paths_that_leave_the_volume_are_refused() {
        let fs = Fs::new(FsType::Ext4, 0o777);
        for bad in ["/abs", "../up", "a/../../b", "..x"] {
            let payload = Payload::from([(bad.to_string(), File::new(Vec::new(), 0o644))]);
            assert!(write_atomically(&fs, &payload, at(0)).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_file_read_in_a_loop_shows_an_update() {
        // ConfigMap updates should be reflected in volume.
        let pod = pod(serde_json::json!({
            "volumes": [{"name": "configmap-volume", "configMap": {"name": "cm"}}],
            "containers": agnhost(
                &["mounttest", "--break_on_expected_content=false", "--retry_time=100000", "--file_content_in_loop=/etc/configmap-volume/data-1"],
                serde_json::json!([{"name": "configmap-volume", "mountPath": "/etc/configmap-volume"}]))}));
        let payload = select_items(
            &files(&[("data-1", "value-1")]),
            None,
            DEFAULT_MODE,
            false,
            "",
        )
        .unwrap();
        let fs = set_up(&pod, "configmap-volume", &payload);
        let volumes = HashMap::from([("configmap-volume".to_string(), fs.clone())]);
        let rt = SimRuntime::new(Clock::new(1000.0));
        let id = start(&rt, &pod, &volumes).await;
        let log = || String::from_utf8_lossy(&rt.logs(&id).unwrap()).into_owned();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while !log().contains("value-1") {
            assert!(tokio::time::Instant::now() < deadline, "{}", log());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let update = select_items(
            &files(&[("data-1", "value-2")]),
            None,
            DEFAULT_MODE,
            false,
            "",
        )
        .unwrap();
        assert!(write_atomically(&fs, &update, at(60)).unwrap());
        while !log().contains("value-2") {
            assert!(tokio::time::Instant::now() < deadline, "{}", log());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        rt.stop_container(&id, std::time::Duration::from_secs(1))
            .await;
        assert!(log()
            .lines()
            .all(|l| l.starts_with("content of file \"/etc/configmap-volume/data-1\": value-")));
    }

    #[tokio::test]
    async fn writes_to_a_config_map_volume_fail_read_only() {
        let pod = pod(serde_json::json!({
            "volumes": [{"name": "configmap-volume", "configMap": {"name": "cm"}}],
            "containers": agnhost(
                &["mounttest", "--new_file_0644=/etc/configmap-volume/x"],
                serde_json::json!([{"name": "configmap-volume", "mountPath": "/etc/configmap-volume"}]))}));
        let fs = set_up(&pod, "configmap-volume", &Payload::new());
        let volumes = HashMap::from([("configmap-volume".to_string(), fs)]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 1);
        assert_eq!(
            log,
            "error writing new file \"/etc/configmap-volume/x\": open /etc/configmap-volume/x: read-only file system\n"
        );
    }

    #[tokio::test]
    async fn a_missing_empty_dir_sub_path_is_made_like_the_volume_root() {
        // EmptyDir volumes when FSGroup is specified: nonexistent volume subPath should have the
        // correct mode and owner using FSGroup.
        let pod = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1001, "fsGroup": 123},
            "volumes": [{"name": "test-volume", "emptyDir": {"medium": "Memory"}}],
            "containers": agnhost(
                &["mounttest", "--fs_type=/test-volume", "--file_perm=/test-volume", "--file_owner=/test-volume", "--file_mode=/test-volume"],
                serde_json::json!([{"name": "test-volume", "mountPath": "/test-volume", "subPath": "test-sub"}]))}));
        let fs = set_up(&pod, "test-volume", &Payload::new());
        let volumes = HashMap::from([("test-volume".to_string(), fs.clone())]);
        let (code, log) = run(&pod, &volumes).await;
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            log,
            "mount type of \"/test-volume\": tmpfs\n\
             mode of file \"/test-volume\": dgtrwxrwxrwx\n\
             perms of file \"/test-volume\": -rwxrwxrwx\n\
             owner UID of \"/test-volume\": 0\n\
             owner GID of \"/test-volume\": 123\n"
        );
        assert!(fs.is_dir("/test-sub"));
    }

    #[tokio::test]
    async fn a_config_map_sub_path_keeps_the_file_it_found() {
        let pod = pod(serde_json::json!({
            "volumes": [{"name": "cm", "configMap": {"name": "cm"}}],
            "containers": agnhost(
                &["mounttest", "--file_content=/etc/one", "--file_mode=/etc/one"],
                serde_json::json!([{"name": "cm", "mountPath": "/etc/one", "subPath": "data-1"}]))}));
        let payload = select_items(&config_map_data(), None, 0o600, false, "").unwrap();
        let fs = set_up(&pod, "cm", &payload);
        let volumes = HashMap::from([("cm".to_string(), fs.clone())]);
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let mounts = container_mounts(c, &pod, &volumes);
        let update =
            select_items(&files(&[("data-1", "changed")]), None, 0o600, false, "").unwrap();
        assert!(write_atomically(&fs, &update, at(60)).unwrap());
        let root = Fs::container(BTreeMap::new(), mounts, Identity::root());
        assert_eq!(root.read("/etc/one").as_deref(), Some(&b"value-1"[..]));
        assert_eq!(root.stat("/etc/one").unwrap().go_mode(), "-rw-------");
        assert_eq!(fs.read("/data-1").as_deref(), Some(&b"changed"[..]));
    }

    #[test]
    fn downward_api_files_show_resources_in_units_of_their_divisor() {
        // Downward API volume should provide container's cpu limit, memory limit, cpu request,
        // memory request, node allocatable as the default limits.
        let field = |path: &str, container: &str, resource: &str| serde_json::json!({"path": path, "resourceFieldRef": {"containerName": container, "resource": resource}});
        let pod = pod(serde_json::json!({
            "containers": [
                {"name": "client-container", "image": "agnhost", "resources": {
                    "requests": {"cpu": "250m", "memory": "32Mi"},
                    "limits": {"cpu": "1250m", "memory": "128Mi"}}},
                {"name": "bare", "image": "agnhost"}]}));
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
            field("cpu_limit", "client-container", "limits.cpu"),
            field("cpu_request", "client-container", "requests.cpu"),
            field("memory_limit", "client-container", "limits.memory"),
            field("memory_request", "client-container", "requests.memory"),
            field("default_cpu_limit", "bare", "limits.cpu"),
            field("default_memory_limit", "bare", "limits.memory"),
        ]))
        .unwrap();
        let node = NodeAllocatable {
            cpu: "4".into(),
            memory: "8Gi".into(),
        };
        let payload = downward_files(&pod, &items, DEFAULT_MODE, &node).unwrap();
        let shown: Vec<(&str, &str, u32)> = payload
            .iter()
            .map(|(k, f)| (k.as_str(), std::str::from_utf8(&f.data).unwrap(), f.mode))
            .collect();
        assert_eq!(
            shown,
            [
                ("cpu_limit", "2", 0o644),
                ("cpu_request", "1", 0o644),
                ("default_cpu_limit", "4", 0o644),
                ("default_memory_limit", "8589934592", 0o644),
                ("memory_limit", "134217728", 0o644),
                ("memory_request", "33554432", 0o644),
                ("podname", "p", 0o400),
            ]
        );
    }

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
