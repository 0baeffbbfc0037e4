//! The Deployment controller's decisions, as pure functions over k8s-openapi types.
//!
//! Nothing here performs I/O, reads a clock or spawns a task: callers pass the Deployment, the
//! ReplicaSets it controls and the current cluster time (`now`, RFC 3339), and get back what
//! upstream's deployment controller (Kubernetes 1.33, `pkg/controller/deployment`) would do in one
//! sync of that Deployment: an ordered list of writes and events ([`plan_sync`]). The I/O loop that
//! drives it (informers, work queue, API writes, event recorder) lives elsewhere and stays thin.
//!
//! # Contract for the driving loop
//! 1. Gather the ReplicaSets whose controller ownerReference points at the Deployment's uid (all
//!    of them, including ones being deleted), and whether any pod owned by one of them *other than
//!    the new one* ([`find_new_replica_set`]) is still in a non-terminal phase (not `Succeeded` /
//!    `Failed`): the Recreate strategy waits for those pods to go away.
//! 2. Call [`plan_sync`] and execute [`SyncPlan::actions`] in order, stopping at the first failed
//!    write (then requeue with rate limiting, as upstream does when a sync returns an error):
//!    - [`Action::CreateReplicaSet`]: POST. On `409 AlreadyExists`, fetch the existing object and
//!      call [`resolve_create_conflict`]; on any other error (except a terminating namespace)
//!      write [`create_failed`]'s status and record its event.
//!    - [`Action::UpdateReplicaSet`]: PUT (or merge-patch [`ReplicaSetWrite::merge_patch`]).
//!    - [`Action::DeleteReplicaSet`]: DELETE; a 404 is success.
//!    - [`Action::UpdateDeploymentStatus`]: PUT `deployments/<name>/status`. Upstream's status
//!      strategy keeps `metadata.annotations` from the request (it resets only spec and labels),
//!      and that is how the `deployment.kubernetes.io/revision` annotation reaches the Deployment.
//!    - [`Action::UpdateDeployment`]: PUT the Deployment itself (only for the deprecated
//!      rollback annotation).
//!    - [`Action::RecordEvent`]: record the event on the Deployment.
//!
//!    A write's own event ([`ReplicaSetWrite::event`]) is recorded after the write succeeds.
//!    Several actions may write the same object in one plan (upstream then re-uses the object the
//!    previous write returned); carry the resourceVersion of the previous write forward.
//! 3. If [`SyncPlan::requeue_after_seconds`] is set, sync the Deployment again after that many
//!    cluster seconds (0: now, rate limited): that is how a stuck rollout reaches
//!    `ProgressDeadlineExceeded`.
//!
//! Objects are expected to have been defaulted by the apiserver; where a field is absent it is
//! read as its apps/v1 default (replicas 1, RollingUpdate with maxSurge and maxUnavailable 25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600).
//!
//! This module must not touch the API, the store, the clock or the event recorder.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The event source component of the deployment controller.
pub const COMPONENT: &str = "deployment-controller";
/// Label added to a ReplicaSet, its selector and its pod template.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Revision of a ReplicaSet (and, copied, of its Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a re-used ReplicaSet served, comma separated.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's spec.replicas when the ReplicaSet was last scaled by it.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// spec.replicas + maxSurge when the ReplicaSet was last scaled by it.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// kubectl's client-side apply annotation, never copied between Deployment and ReplicaSet.
pub const LAST_APPLIED_CONFIG_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Round-trip annotation of the removed `spec.rollbackTo` field.
pub const DEPRECATED_ROLLBACK_TO_ANNOTATION: &str = "deprecated.deployment.rollback.to";
/// Longest revision-history annotation upstream keeps.
pub const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

/// apps/v1 defaults (applied by the apiserver; used here only when a field is absent).
pub const DEFAULT_REPLICAS: i32 = 1;
pub const DEFAULT_MAX_SURGE: &str = "25%";
pub const DEFAULT_MAX_UNAVAILABLE: &str = "25%";
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// Deployment condition types.
pub const CONDITION_AVAILABLE: &str = "Available";
pub const CONDITION_PROGRESSING: &str = "Progressing";
pub const CONDITION_REPLICA_FAILURE: &str = "ReplicaFailure";

/// Condition reasons and event reasons, spelled as upstream.
pub mod reason {
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    pub const NEW_REPLICA_SET: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const PAUSED: &str = "DeploymentPaused";
    pub const RESUMED: &str = "DeploymentResumed";
    pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    /// Event reasons.
    pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
    pub const SELECTING_ALL: &str = "SelectingAll";
    pub const ROLLBACK_REVISION_NOT_FOUND: &str = "DeploymentRollbackRevisionNotFound";
    pub const ROLLBACK_TEMPLATE_UNCHANGED: &str = "DeploymentRollbackTemplateUnchanged";
    pub const ROLLBACK_DONE: &str = "DeploymentRollback";
}

// ---------------------------------------------------------------------------------------------
// pod-template-hash
// ---------------------------------------------------------------------------------------------

/// The 27 characters upstream's `rand.SafeEncodeString` maps bytes onto (no vowels, no 0/1/3).
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// Maps every byte `b` of `s` to `SAFE_ALPHABET[b % 27]`, as upstream's `SafeEncodeString`.
pub fn safe_encode_string(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[(b as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

struct Fnv32a(u32);

impl Fnv32a {
    fn new() -> Self {
        Fnv32a(0x811c_9dc5)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// JSON with object keys sorted at every level: a canonical encoding of a value.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `pod-template-hash` of a template: FNV-32a over a canonical (sorted-key JSON) encoding of
/// the template, then, when a collision count is given, over its 32-bit little-endian value padded
/// to 8 bytes (as upstream's `ComputeHash`); the 32-bit sum is rendered in decimal and passed
/// through [`safe_encode_string`]. Deterministic; at most 10 characters from `[4-9bcdf]`.
/// Upstream hashes a Go dump of the struct instead, so values differ from a real cluster's.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut encoded = String::new();
    canonical_json(
        &serde_json::to_value(template).unwrap_or(Value::Null),
        &mut encoded,
    );
    let mut hasher = Fnv32a::new();
    hasher.write(encoded.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hasher.write(&bytes);
    }
    safe_encode_string(&hasher.0.to_string())
}

// ---------------------------------------------------------------------------------------------
// Field access with apps/v1 defaults
// ---------------------------------------------------------------------------------------------

fn empty_deployment_spec() -> &'static DeploymentSpec {
    static SPEC: OnceLock<DeploymentSpec> = OnceLock::new();
    SPEC.get_or_init(DeploymentSpec::default)
}

fn empty_deployment_status() -> &'static DeploymentStatus {
    static STATUS: OnceLock<DeploymentStatus> = OnceLock::new();
    STATUS.get_or_init(DeploymentStatus::default)
}

fn empty_template() -> &'static PodTemplateSpec {
    static TEMPLATE: OnceLock<PodTemplateSpec> = OnceLock::new();
    TEMPLATE.get_or_init(PodTemplateSpec::default)
}

fn dspec(d: &Deployment) -> &DeploymentSpec {
    d.spec.as_ref().unwrap_or_else(|| empty_deployment_spec())
}

fn dstatus(d: &Deployment) -> &DeploymentStatus {
    d.status
        .as_ref()
        .unwrap_or_else(|| empty_deployment_status())
}

fn dstatus_mut(d: &mut Deployment) -> &mut DeploymentStatus {
    d.status.get_or_insert_with(Default::default)
}

fn dname(d: &Deployment) -> &str {
    d.metadata.name.as_deref().unwrap_or("")
}

fn dtemplate(d: &Deployment) -> &PodTemplateSpec {
    &dspec(d).template
}

/// spec.replicas (default 1).
pub fn desired_replicas(d: &Deployment) -> i32 {
    dspec(d).replicas.unwrap_or(DEFAULT_REPLICAS)
}

/// spec.strategy.type (default RollingUpdate).
pub fn strategy_type(d: &Deployment) -> &str {
    dspec(d)
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Whether the strategy is RollingUpdate.
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

fn is_paused(d: &Deployment) -> bool {
    dspec(d).paused.unwrap_or(false)
}

fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or(0)
}

fn rolling_params(d: &Deployment) -> (IntOrString, IntOrString) {
    let ru = dspec(d)
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.clone())
        .unwrap_or_else(|| IntOrString::String(DEFAULT_MAX_SURGE.to_string()));
    let unavailable = ru
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or_else(|| IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string()));
    (surge, unavailable)
}

fn progress_deadline_seconds(d: &Deployment) -> i32 {
    dspec(d)
        .progress_deadline_seconds
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
}

/// Whether the Deployment reports `ProgressDeadlineExceeded` (a deadline other than MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline_seconds(d) != i32::MAX
}

fn revision_history_limit(d: &Deployment) -> i32 {
    dspec(d)
        .revision_history_limit
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
}

/// Whether old ReplicaSets are cleaned up (a limit other than MaxInt32).
pub fn has_revision_history_limit(d: &Deployment) -> bool {
    revision_history_limit(d) != i32::MAX
}

fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// A ReplicaSet's spec.replicas (default 1).
pub fn rs_spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn rs_template(rs: &ReplicaSet) -> &PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .unwrap_or_else(|| empty_template())
}

fn rs_annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn rs_min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn set_rs_replicas(rs: &mut ReplicaSet, replicas: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
}

fn nz(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

// ---------------------------------------------------------------------------------------------
// maxSurge / maxUnavailable
// ---------------------------------------------------------------------------------------------

/// An int-or-percent value against `total`: integers as they are; `"N%"` scaled, rounding up or
/// down. Upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value_from_int_or_percent(
    value: &IntOrString,
    total: i32,
    round_up: bool,
) -> Result<i32, String> {
    match value {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .to_string(),
                );
            };
            let percent: i64 = number.parse().map_err(|e| {
                format!("invalid value for IntOrString: invalid value \"{s}\": {e}")
            })?;
            let scaled = percent as f64 * f64::from(total) / 100.0;
            Ok((if round_up {
                scaled.ceil()
            } else {
                scaled.floor()
            }) as i32)
        }
    }
}

/// Resolves maxSurge (rounded up) and maxUnavailable (rounded down) against spec.replicas; when
/// both come out 0, maxUnavailable is 1. Errors on a malformed value. Does not look at the
/// strategy type (see [`max_surge`] / [`max_unavailable`] for that).
pub fn resolve_fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let (surge, unavailable) = rolling_params(d);
    let desired = desired_replicas(d);
    let surge = scaled_value_from_int_or_percent(&surge, desired, true)?;
    let mut unavailable = scaled_value_from_int_or_percent(&unavailable, desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// Pods a rolling Deployment may run above spec.replicas (0 for Recreate or a malformed value).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    resolve_fenceposts(d).map(|(s, _)| s).unwrap_or(0)
}

/// Pods a rolling Deployment may have unavailable (0 for Recreate or 0 replicas; never more than
/// spec.replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = desired_replicas(d);
    if !is_rolling_update(d) || replicas == 0 {
        return 0;
    }
    let unavailable = resolve_fenceposts(d).map(|(_, u)| u).unwrap_or(0);
    unavailable.min(replicas)
}

// ---------------------------------------------------------------------------------------------
// Finding the new and old ReplicaSets; revisions
// ---------------------------------------------------------------------------------------------

/// Oldest first; same timestamp: by name (upstream `ReplicaSetsByCreationTimestamp`).
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    a.metadata
        .creation_timestamp
        .cmp(&b.metadata.creation_timestamp)
        .then_with(|| rs_name(a).cmp(rs_name(b)))
}

/// Larger first; same size: older first (upstream `ReplicaSetsBySizeOlder`).
fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_spec_replicas(b)
        .cmp(&rs_spec_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Larger first; same size: newer first (upstream `ReplicaSetsBySizeNewer`).
fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_spec_replicas(b)
        .cmp(&rs_spec_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Lowest revision first; unparsable or equal revisions: by creation (`ReplicaSetsByRevision`).
fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(a), revision(b)) {
        (Ok(ra), Ok(rb)) if ra != rb => ra.cmp(&rb),
        _ => by_creation(a, b),
    }
}

/// Map-typed fields of a pod template, where upstream's semantic equality treats an empty map
/// like an absent one.
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "nodeSelector",
    "limits",
    "requests",
    "overhead",
    "volumeAttributes",
    "options",
    "matchLabels",
];

/// Drops what apimachinery's semantic DeepEqual does not distinguish from absence: nulls, empty
/// lists, and empty maps in map-typed fields.
fn normalize_for_equality(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                normalize_for_equality(child);
            }
            map.retain(|k, child| match child {
                Value::Null => false,
                Value::Array(items) => !items.is_empty(),
                Value::Object(m) => !(m.is_empty() && MAP_FIELDS.contains(&k.as_str())),
                _ => true,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_for_equality),
        _ => {}
    }
}

/// Whether two pod templates are equal once the `pod-template-hash` label is ignored
/// (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
        normalize_for_equality(&mut v);
        v
    };
    strip(a) == strip(b)
}

/// The ReplicaSet whose template matches the Deployment's (the oldest one if several do).
pub fn find_new_replica_set<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| equal_ignore_hash(rs_template(rs), dtemplate(d)))
}

/// Every ReplicaSet other than the new one, oldest first (including those scaled to zero).
pub fn find_old_replica_sets<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let new_name = find_new_replica_set(d, rss).map(rs_name);
    let mut old: Vec<&ReplicaSet> = rss
        .iter()
        .filter(|rs| Some(rs_name(rs)) != new_name)
        .collect();
    old.sort_by(|a, b| by_creation(a, b));
    old
}

/// The revision annotation of a ReplicaSet: 0 when absent, an error when not an integer.
pub fn revision(rs: &ReplicaSet) -> Result<i64, String> {
    match rs_annotation(rs, REVISION_ANNOTATION) {
        None => Ok(0),
        Some(v) => v.parse::<i64>().map_err(|e| format!("revision {v:?}: {e}")),
    }
}

/// Highest revision among the ReplicaSets (unparsable ones skipped; 0 if none).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(rs).ok())
        .fold(0, i64::max)
}

/// Second-highest revision among the ReplicaSets: the one a rollback without a revision targets.
pub fn last_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    let (mut max, mut second) = (0i64, 0i64);
    for v in rss.into_iter().filter_map(|rs| revision(rs).ok()) {
        if v >= max {
            second = max;
            max = v;
        } else if v > second {
            second = v;
        }
    }
    second
}

// ---------------------------------------------------------------------------------------------
// Annotations
// ---------------------------------------------------------------------------------------------

fn skip_copy_annotation(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED_CONFIG_ANNOTATION
            | REVISION_ANNOTATION
            | REVISION_HISTORY_ANNOTATION
            | DESIRED_REPLICAS_ANNOTATION
            | MAX_REPLICAS_ANNOTATION
            | DEPRECATED_ROLLBACK_TO_ANNOTATION
    )
}

/// Copies the Deployment's annotations (except the controller's own and kubectl's
/// last-applied-configuration) onto the ReplicaSet; true if anything changed.
fn copy_deployment_annotations_to_rs(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let target = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy_annotation(k) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Sets desired-replicas and max-replicas; true if either changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    rs_annotation(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired.to_string().as_str())
        || rs_annotation(rs, MAX_REPLICAS_ANNOTATION) != Some(max.to_string().as_str())
}

/// Upstream `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the
/// revision to `new_revision` when lower (recording the old one in revision-history, bounded to
/// `history_limit_chars`), and for a ReplicaSet about to be created sets desired/max replicas.
/// True if an annotation changed.
fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: &str,
    exists: bool,
    history_limit_chars: usize,
) -> bool {
    let mut changed = copy_deployment_annotations_to_rs(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    let old_revision = annotations.get(REVISION_ANNOTATION).cloned();
    let old_revision_int = match old_revision.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) if old_revision.as_deref() == Some("") => 0,
        Some(Err(_)) => return false,
    };
    let Ok(new_revision_int) = new_revision.parse::<i64>() else {
        return false;
    };
    if old_revision_int < new_revision_int {
        annotations.insert(REVISION_ANNOTATION.to_string(), new_revision.to_string());
        changed = true;
    }
    if let Some(old_revision) = old_revision.filter(|_| old_revision_int < new_revision_int) {
        let history = annotations
            .get(REVISION_HISTORY_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        let mut old_revisions: Vec<&str> = history.split(',').collect();
        if old_revisions[0].is_empty() {
            annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), old_revision);
        } else {
            let mut total = history.len() + old_revision.len() + 1;
            let mut start = 0;
            while total > history_limit_chars && start < old_revisions.len() {
                total -= old_revisions[start].len() + 1;
                start += 1;
            }
            if total <= history_limit_chars {
                old_revisions = old_revisions.split_off(start);
                old_revisions.push(&old_revision);
                let joined = old_revisions.join(",");
                annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), joined);
            }
        }
    }
    if !exists {
        let desired = desired_replicas(d);
        if set_replicas_annotations(rs, desired, desired + max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// Sets the Deployment's revision annotation; true if it changed.
fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
    if annotations.get(REVISION_ANNOTATION).map(String::as_str) == Some(revision) {
        return false;
    }
    annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    true
}

fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs_annotation(rs, DESIRED_REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok())
}

// ---------------------------------------------------------------------------------------------
// The new ReplicaSet
// ---------------------------------------------------------------------------------------------

/// The controller ownerReference a ReplicaSet carries to its Deployment.
pub fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "Deployment".to_string(),
        name: dname(d).to_string(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ReplicaSet skeleton for the Deployment's current template and hash, with `replicas` and
/// no annotations.
fn build_replica_set(d: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let spec = dspec(d);
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    let labels = labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", dname(d), hash)),
            namespace: d.metadata.namespace.clone(),
            owner_references: Some(vec![controller_ref(d)]),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

/// The new ReplicaSet for the Deployment's current template: name `<deployment>-<hash>` (hash of
/// the template and status.collisionCount), the hash label on its labels, selector and template,
/// a controller ownerReference (blockOwnerDeletion) to the Deployment, minReadySeconds, the
/// Deployment's copyable annotations, and revision (highest revision among `rss` + 1),
/// desired-replicas and max-replicas annotations. `rss` are the Deployment's existing
/// ReplicaSets (any that already matches the template is ignored for the revision).
pub fn new_replica_set(d: &Deployment, rss: &[ReplicaSet], initial_replicas: i32) -> ReplicaSet {
    let hash = pod_template_hash(dtemplate(d), dstatus(d).collision_count);
    let mut rs = build_replica_set(d, &hash, initial_replicas);
    let revision = max_revision(find_old_replica_sets(d, rss)) + 1;
    set_new_replica_set_annotations(
        d,
        &mut rs,
        &revision.to_string(),
        false,
        MAX_REV_HISTORY_LENGTH_IN_CHARS,
    );
    rs
}

/// How many replicas the new ReplicaSet should have now (upstream `NewRSNewReplicas`): Recreate,
/// all of them; RollingUpdate, as many as maxSurge allows over all ReplicaSets' spec.replicas,
/// never more than spec.replicas. `all` includes `new_rs`.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    let replicas = desired_replicas(d);
    match strategy_type(d) {
        "RollingUpdate" => {
            let (surge, _) = rolling_params(d);
            let surge = scaled_value_from_int_or_percent(&surge, replicas, true)?;
            let current: i32 = all.iter().map(|rs| rs_spec_replicas(rs)).sum();
            let max_total = replicas + surge;
            let new_replicas = rs_spec_replicas(new_rs);
            if current >= max_total {
                return Ok(new_replicas);
            }
            let scale_up = (max_total - current).min(replicas - new_replicas);
            Ok(new_replicas + scale_up)
        }
        "Recreate" => Ok(replicas),
        other => Err(format!("deployment type {other} isn't supported")),
    }
}

/// Whether the new ReplicaSet already owns all desired replicas, all available, and was last
/// scaled for the current spec.replicas.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = desired_replicas_annotation(rs) else {
        return false;
    };
    let replicas = desired_replicas(d);
    rs_spec_replicas(rs) == replicas && desired == replicas && rs_available(rs) == replicas
}

/// revisionHistoryLimit clean-up: the old ReplicaSets to delete, oldest revisions first. Only
/// those beyond the limit that are fully scaled down (spec and status replicas 0, status caught
/// up with generation) and not already being deleted.
pub fn replica_sets_to_delete(d: &Deployment, old_rss: &[&ReplicaSet]) -> Vec<String> {
    if !has_revision_history_limit(d) {
        return Vec::new();
    }
    let mut cleanable: Vec<&ReplicaSet> = old_rss
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = cleanable.len() as i64 - i64::from(revision_history_limit(d));
    if diff <= 0 {
        return Vec::new();
    }
    cleanable.sort_by(|a, b| by_revision(a, b));
    cleanable
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            rs_status_replicas(rs) == 0
                && rs_spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed
                && rs.metadata.deletion_timestamp.is_none()
        })
        .map(|rs| rs_name(rs).to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Status and conditions
// ---------------------------------------------------------------------------------------------

/// Parses an RFC 3339 instant; the condition timestamp is truncated to whole seconds, as
/// `metav1.Time` serializes.
fn parse_now(now: &str) -> Result<(Time, i128), String> {
    let ts: Timestamp = now
        .parse()
        .map_err(|e| format!("invalid time {now:?}: {e}"))?;
    let whole = Timestamp::from_second(ts.as_second()).map_err(|e| e.to_string())?;
    Ok((Time(whole), ts.as_nanosecond()))
}

/// The condition of that type, if any.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// A condition stamped `now` for both lastUpdateTime and lastTransitionTime.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Upstream `SetDeploymentCondition`: no-op when a condition of that type already has the same
/// status and reason; keeps lastTransitionTime when only the reason changes; otherwise replaces
/// the condition, moving it to the end of the list.
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &condition.type_.clone());
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

/// Removes the condition of that type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// Upstream `calculateStatus`: counts from the ReplicaSets (`all` includes the new one), the
/// Deployment's other conditions carried over, and Available set from
/// `availableReplicas >= replicas - maxUnavailable`. Zero counts are left out (omitempty).
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &Time,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total: i32 = all.iter().map(|rs| rs_spec_replicas(rs)).sum();
    let unavailable = (total - available).max(0);
    let old = dstatus(d);
    let mut status = DeploymentStatus {
        observed_generation: (generation(d) != 0).then_some(generation(d)),
        replicas: nz(all.iter().map(|rs| rs_status_replicas(rs)).sum()),
        updated_replicas: nz(new_rs.map(rs_status_replicas).unwrap_or(0)),
        ready_replicas: nz(all.iter().map(|rs| rs_ready(rs)).sum()),
        available_replicas: nz(available),
        unavailable_replicas: nz(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let condition = if available >= desired_replicas(d) - max_unavailable(d) {
        new_condition(
            CONDITION_AVAILABLE,
            "True",
            reason::MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    } else {
        new_condition(
            CONDITION_AVAILABLE,
            "False",
            reason::MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set_condition(&mut status, condition);
    status
}

/// All desired replicas updated and available, no old ones, generation observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = desired_replicas(d);
    status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) == replicas
        && status.observed_generation.unwrap_or(0) >= generation(d)
}

/// Progress between the Deployment's recorded status and `new_status`: more updated, ready or
/// available replicas, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new_status: &DeploymentStatus) -> bool {
    let old = dstatus(d);
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new_status.replicas.unwrap_or(0) - new_status.updated_replicas.unwrap_or(0);
    new_status.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new_status.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new_status.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn time_nanos(t: &Time) -> i128 {
    t.0.as_nanosecond()
}

/// Whether `new_status`'s Progressing condition was last updated more than
/// progressDeadlineSeconds before `now` (already timed out counts; a completed rollout never).
pub fn deployment_timed_out(d: &Deployment, new_status: &DeploymentStatus, now: &str) -> bool {
    match parse_now(now) {
        Ok((_, now_ns)) => timed_out_at(d, new_status, now_ns),
        Err(_) => false,
    }
}

fn timed_out_at(d: &Deployment, new_status: &DeploymentStatus, now_ns: i128) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(condition) = get_condition(new_status, CONDITION_PROGRESSING) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => return false,
        Some(reason::TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = condition.last_update_time.as_ref() else {
        return false;
    };
    let deadline = i128::from(progress_deadline_seconds(d)) * 1_000_000_000;
    time_nanos(from) + deadline < now_ns
}

/// Upstream `requeueStuckDeployment`: seconds until the progress deadline should be checked
/// again (0: now), or None when there is nothing to wait for.
fn requeue_stuck(d: &Deployment, status: &DeploymentStatus, now_ns: i128) -> Option<f64> {
    let condition = get_condition(status, CONDITION_PROGRESSING)?;
    if !has_progress_deadline(d) {
        return None;
    }
    if deployment_complete(d, status) || condition.reason.as_deref() == Some(reason::TIMED_OUT) {
        return None;
    }
    let from = time_nanos(condition.last_update_time.as_ref()?);
    let deadline = i128::from(progress_deadline_seconds(d)) * 1_000_000_000;
    let after = (from + deadline - now_ns) as f64 / 1e9;
    Some(if after < 1.0 { 0.0 } else { after + 1.0 })
}

fn replica_failure_condition(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let convert = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == CONDITION_REPLICA_FAILURE))
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                last_transition_time: c.last_transition_time.clone(),
                last_update_time: c.last_transition_time.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
    };
    new_rs
        .and_then(convert)
        .or_else(|| all.iter().find_map(|rs| convert(rs)))
}

/// Upstream `syncRolloutStatus`'s status: [`calculate_status`] plus the Progressing condition
/// (NewReplicaSetAvailable when complete; ReplicaSetUpdated, re-stamped, on any progress;
/// ProgressDeadlineExceeded past the deadline; removed without a deadline) and ReplicaFailure
/// copied from the ReplicaSets.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &str,
) -> Result<DeploymentStatus, String> {
    let (now_t, now_ns) = parse_now(now)?;
    Ok(rollout_status_at(d, all, new_rs, &now_t, now_ns))
}

fn rollout_status_at(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &Time,
    now_ns: i128,
) -> DeploymentStatus {
    let mut status = calculate_status(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, CONDITION_PROGRESSING);
    }
    let current = get_condition(dstatus(d), CONDITION_PROGRESSING).cloned();
    let is_complete = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(reason::NEW_RS_AVAILABLE);
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet \"{}\"", rs_name(rs)),
        None => format!("Deployment \"{}\"", dname(d)),
    };
    if has_progress_deadline(d) && !is_complete {
        if deployment_complete(d, &status) {
            let message = format!("{subject} has successfully progressed.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                reason::NEW_RS_AVAILABLE,
                &message,
                now,
            );
            set_condition(&mut status, c);
        } else if deployment_progressing(d, &status) {
            let message = format!("{subject} is progressing.");
            let mut c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                reason::REPLICA_SET_UPDATED,
                &message,
                now,
            );
            if let Some(current) = &current {
                if current.status == "True" {
                    c.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, CONDITION_PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if timed_out_at(d, &status, now_ns) {
            let message = format!("{subject} has timed out progressing.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "False",
                reason::TIMED_OUT,
                &message,
                now,
            );
            set_condition(&mut status, c);
        }
    }
    match replica_failure_condition(all, new_rs) {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, CONDITION_REPLICA_FAILURE),
    }
    status
}

// ---------------------------------------------------------------------------------------------
// The plan of one sync
// ---------------------------------------------------------------------------------------------

/// An event to record on the Deployment (source [`COMPONENT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    fn normal(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Normal",
            reason,
            message,
        }
    }
    fn warning(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Warning",
            reason,
            message,
        }
    }
}

/// A ReplicaSet scaled from one size to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleChange {
    pub name: String,
    pub from: i32,
    pub to: i32,
}

/// A ReplicaSet to create or update.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSetWrite {
    /// The whole desired object (metadata as listed, so resourceVersion is the listed one).
    pub replica_set: ReplicaSet,
    /// spec.replicas before and after, when this write scales.
    pub scale: Option<ScaleChange>,
    /// To record once the write succeeded.
    pub event: Option<Event>,
}

impl ReplicaSetWrite {
    /// A JSON merge patch carrying what this update changes (spec.replicas,
    /// spec.minReadySeconds and the annotations), for loops that patch rather than PUT.
    pub fn merge_patch(&self) -> Value {
        let spec = self.replica_set.spec.as_ref();
        serde_json::json!({
            "metadata": { "annotations": self.replica_set.metadata.annotations },
            "spec": {
                "replicas": spec.and_then(|s| s.replicas),
                "minReadySeconds": spec.and_then(|s| s.min_ready_seconds),
            },
        })
    }
}

/// One write or event of a sync, in upstream's order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// POST the ReplicaSet.
    CreateReplicaSet(ReplicaSetWrite),
    /// PUT the ReplicaSet (spec.replicas and/or annotations and minReadySeconds changed).
    UpdateReplicaSet(ReplicaSetWrite),
    /// DELETE the old ReplicaSet (revisionHistoryLimit).
    DeleteReplicaSet { name: String },
    /// PUT the Deployment's status subresource with this object (status and annotations).
    UpdateDeploymentStatus(Deployment),
    /// PUT the Deployment (template, annotations) — the deprecated rollback annotation only.
    UpdateDeployment(Deployment),
    /// Record an event on the Deployment.
    RecordEvent(Event),
}

/// What one sync of a Deployment does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Writes and events, in order.
    pub actions: Vec<Action>,
    /// Sync again after this many cluster seconds (0: now, rate limited).
    pub requeue_after_seconds: Option<f64>,
    /// Upstream would return this error from the sync (after the actions): requeue with backoff.
    pub error: Option<String>,
}

impl SyncPlan {
    /// Every ReplicaSet scale in order (creations count as scaling from 0).
    pub fn scale_changes(&self) -> Vec<ScaleChange> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateReplicaSet(w) | Action::UpdateReplicaSet(w) => w.scale.clone(),
                _ => None,
            })
            .collect()
    }

    /// The ReplicaSet this plan creates, if any.
    pub fn created_replica_set(&self) -> Option<&ReplicaSet> {
        self.actions.iter().find_map(|a| match a {
            Action::CreateReplicaSet(w) => Some(&w.replica_set),
            _ => None,
        })
    }

    /// Every event of the plan, in order (write events included).
    pub fn events(&self) -> Vec<&Event> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateReplicaSet(w) | Action::UpdateReplicaSet(w) => w.event.as_ref(),
                Action::RecordEvent(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// The last Deployment status this plan writes, if any.
    pub fn final_status(&self) -> Option<&DeploymentStatus> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::UpdateDeploymentStatus(d) => d.status.as_ref(),
            _ => None,
        })
    }
}

/// What to do when creating the new ReplicaSet answered 409 AlreadyExists.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateConflict {
    /// The existing ReplicaSet is this Deployment's, with this template: a stale cache; sync again.
    Adopt,
    /// A hash collision: write this status (collisionCount + 1) and sync again.
    BumpCollisionCount(Box<Deployment>),
}

/// Upstream's handling of AlreadyExists when creating the new ReplicaSet.
pub fn resolve_create_conflict(d: &Deployment, existing: &ReplicaSet) -> CreateConflict {
    let ours = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
    if ours && equal_ignore_hash(dtemplate(d), rs_template(existing)) {
        return CreateConflict::Adopt;
    }
    let mut bumped = d.clone();
    let status = dstatus_mut(&mut bumped);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    CreateConflict::BumpCollisionCount(Box::new(bumped))
}

/// Creating the new ReplicaSet failed with `error`: the Deployment with a False Progressing
/// `ReplicaSetCreateError` condition to write (when it has a progress deadline), and the warning
/// event `Failed to create new replica set "<name>": <error>`.
pub fn create_failed(
    d: &Deployment,
    rs_name: &str,
    error: &str,
    now: &str,
) -> (Option<Deployment>, Event) {
    let message = format!("Failed to create new replica set \"{rs_name}\": {error}");
    let mut updated = None;
    if has_progress_deadline(d) {
        if let Ok((now_t, _)) = parse_now(now) {
            let mut copy = d.clone();
            let c = new_condition(
                CONDITION_PROGRESSING,
                "False",
                reason::FAILED_RS_CREATE,
                &message,
                &now_t,
            );
            set_condition(dstatus_mut(&mut copy), c);
            updated = Some(copy);
        }
    }
    (updated, Event::warning(reason::FAILED_RS_CREATE, message))
}

/// Why a simulated sync stopped early.
enum Stop {
    /// Hash collision: collisionCount was bumped; sync again.
    Collision,
    /// Upstream's sync would return this error.
    Error(String),
}

/// One sync of one Deployment, simulated over an in-memory view of the ReplicaSets. The working
/// Deployment is mutated as upstream mutates its copy; every write is recorded as an action.
struct Sim {
    now: Time,
    now_ns: i128,
    d: Deployment,
    /// The Deployment as the last planned write left it on the server.
    written: Deployment,
    rss: Vec<ReplicaSet>,
    old_pods_running: bool,
    actions: Vec<Action>,
    requeue: Option<f64>,
}

type NewAndOld = (Option<String>, Vec<String>);

impl Sim {
    fn idx(&self, name: &str) -> usize {
        self.rss
            .iter()
            .position(|rs| rs_name(rs) == name)
            .expect("ReplicaSet in the working view")
    }

    fn rs(&self, name: &str) -> &ReplicaSet {
        &self.rss[self.idx(name)]
    }

    fn event(&mut self, event: Event) {
        self.actions.push(Action::RecordEvent(event));
    }

    /// Writes the working Deployment's status (and annotations) if they differ from the server's.
    fn flush_status(&mut self) {
        if self.d.status == self.written.status
            && self.d.metadata.annotations == self.written.metadata.annotations
        {
            return;
        }
        self.written.status = self.d.status.clone();
        self.written.metadata.annotations = self.d.metadata.annotations.clone();
        self.actions
            .push(Action::UpdateDeploymentStatus(self.d.clone()));
    }

    fn snapshot(
        &self,
        new: &Option<String>,
        old: &[String],
    ) -> (Vec<ReplicaSet>, Option<ReplicaSet>) {
        let mut all: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
        let new_rs = new.as_ref().map(|n| self.rs(n).clone());
        all.extend(new_rs.clone());
        (all, new_rs)
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision` / `getNewReplicaSet`.
    fn get_all(&mut self, create: bool) -> Result<NewAndOld, Stop> {
        self.rss.sort_by(by_creation);
        let new_name = find_new_replica_set(&self.d, &self.rss).map(|rs| rs_name(rs).to_string());
        let old: Vec<String> = self
            .rss
            .iter()
            .map(|rs| rs_name(rs).to_string())
            .filter(|n| Some(n) != new_name.as_ref())
            .collect();
        let max_old = max_revision(old.iter().map(|n| self.rs(n)));
        let new_revision = (max_old + 1).to_string();

        if let Some(name) = new_name {
            let i = self.idx(&name);
            let mut copy = self.rss[i].clone();
            let annotations_changed = set_new_replica_set_annotations(
                &self.d,
                &mut copy,
                &new_revision,
                true,
                MAX_REV_HISTORY_LENGTH_IN_CHARS,
            );
            let min_ready = dspec(&self.d).min_ready_seconds;
            if annotations_changed || rs_min_ready_seconds(&copy) != min_ready.unwrap_or(0) {
                copy.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = min_ready;
                self.rss[i] = copy.clone();
                self.actions.push(Action::UpdateReplicaSet(ReplicaSetWrite {
                    replica_set: copy,
                    scale: None,
                    event: None,
                }));
            }
            let rs_revision = rs_annotation(&self.rss[i], REVISION_ANNOTATION)
                .unwrap_or("")
                .to_string();
            let mut needs_update = set_deployment_revision(&mut self.d, &rs_revision);
            if has_progress_deadline(&self.d)
                && get_condition(dstatus(&self.d), CONDITION_PROGRESSING).is_none()
            {
                let message = format!("Found new replica set \"{name}\"");
                let c = new_condition(
                    CONDITION_PROGRESSING,
                    "True",
                    reason::FOUND_NEW_RS,
                    &message,
                    &self.now,
                );
                set_condition(dstatus_mut(&mut self.d), c);
                needs_update = true;
            }
            if needs_update {
                self.flush_status();
            }
            return Ok((Some(name), old));
        }
        if !create {
            return Ok((None, old));
        }

        let hash = pod_template_hash(dtemplate(&self.d), dstatus(&self.d).collision_count);
        let mut rs = build_replica_set(&self.d, &hash, 0);
        let name = rs_name(&rs).to_string();
        if self.rss.iter().any(|r| rs_name(r) == name) {
            // Same name, different template: a hash collision (upstream learns it from the
            // AlreadyExists answer). Bump collisionCount and try again on the next sync.
            let status = dstatus_mut(&mut self.d);
            status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
            self.flush_status();
            return Err(Stop::Collision);
        }
        let replicas = {
            let mut all: Vec<&ReplicaSet> = old.iter().map(|n| self.rs(n)).collect();
            all.push(&rs);
            new_rs_new_replicas(&self.d, &all, &rs).map_err(Stop::Error)?
        };
        set_rs_replicas(&mut rs, replicas);
        set_new_replica_set_annotations(
            &self.d,
            &mut rs,
            &new_revision,
            false,
            MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );
        let event = (replicas > 0).then(|| {
            Event::normal(
                reason::SCALING_REPLICA_SET,
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            )
        });
        self.actions.push(Action::CreateReplicaSet(ReplicaSetWrite {
            replica_set: rs.clone(),
            scale: Some(ScaleChange {
                name: name.clone(),
                from: 0,
                to: replicas,
            }),
            event,
        }));
        // The server stamps creationTimestamp; the working view needs it so that orderings by
        // age see the new ReplicaSet as the newest.
        rs.metadata.creation_timestamp = Some(self.now.clone());
        self.rss.push(rs);
        let mut needs_update = set_deployment_revision(&mut self.d, &new_revision);
        if has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{name}\"");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                reason::NEW_REPLICA_SET,
                &message,
                &self.now,
            );
            set_condition(dstatus_mut(&mut self.d), c);
            needs_update = true;
        }
        if needs_update {
            self.flush_status();
        }
        Ok((Some(name), old))
    }

    /// Upstream `scaleReplicaSet`: writes the size and the desired/max annotations when either
    /// changes; the event only for a size change. Returns whether the size changed.
    fn scale_rs(&mut self, name: &str, new_scale: i32, operation: &str) -> bool {
        let i = self.idx(name);
        let desired = desired_replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let old_scale = rs_spec_replicas(&self.rss[i]);
        let size_needs_update = old_scale != new_scale;
        if !size_needs_update && !replicas_annotations_need_update(&self.rss[i], desired, max) {
            return false;
        }
        let mut copy = self.rss[i].clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        self.rss[i] = copy.clone();
        let (scale, event) = if size_needs_update {
            (
                Some(ScaleChange {
                    name: name.to_string(),
                    from: old_scale,
                    to: new_scale,
                }),
                Some(Event::normal(
                    reason::SCALING_REPLICA_SET,
                    format!(
                        "Scaled {operation} replica set {name} from {old_scale} to {new_scale}"
                    ),
                )),
            )
        } else {
            (None, None)
        };
        self.actions.push(Action::UpdateReplicaSet(ReplicaSetWrite {
            replica_set: copy,
            scale,
            event,
        }));
        size_needs_update
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`.
    fn scale_and_record(&mut self, name: &str, new_scale: i32) -> bool {
        let current = rs_spec_replicas(self.rs(name));
        if current == new_scale {
            return false;
        }
        let operation = if current < new_scale { "up" } else { "down" };
        self.scale_rs(name, new_scale, operation)
    }

    fn cleanup(&mut self, old_snapshot: &[ReplicaSet]) {
        let refs: Vec<&ReplicaSet> = old_snapshot.iter().collect();
        for name in replica_sets_to_delete(&self.d, &refs) {
            self.rss.retain(|rs| rs_name(rs) != name);
            self.actions.push(Action::DeleteReplicaSet { name });
        }
    }

    fn sync_deployment_status(&mut self, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) {
        let refs: Vec<&ReplicaSet> = all.iter().collect();
        let status = calculate_status(&self.d, &refs, new_rs, &self.now);
        self.d.status = Some(status);
        self.flush_status();
    }

    fn sync_rollout_status(&mut self, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) {
        let refs: Vec<&ReplicaSet> = all.iter().collect();
        let status = rollout_status_at(&self.d, &refs, new_rs, &self.now, self.now_ns);
        self.requeue = requeue_stuck(&self.d, &status, self.now_ns);
        self.d.status = Some(status);
        self.flush_status();
    }

    /// Upstream `checkPausedConditions`.
    fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(&self.d) {
            return;
        }
        let current_reason =
            get_condition(dstatus(&self.d), CONDITION_PROGRESSING).and_then(|c| c.reason.clone());
        if current_reason.as_deref() == Some(reason::TIMED_OUT) {
            return;
        }
        let paused_condition_exists = current_reason.as_deref() == Some(reason::PAUSED);
        let condition = if is_paused(&self.d) && !paused_condition_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                reason::PAUSED,
                "Deployment is paused",
                &self.now,
            )
        } else if !is_paused(&self.d) && paused_condition_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed",
                &self.now,
            )
        } else {
            return;
        };
        set_condition(dstatus_mut(&mut self.d), condition);
        self.flush_status();
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last scaled for another spec.replicas.
    fn is_scaling_event(&mut self) -> Result<bool, Stop> {
        let (new, old) = self.get_all(false)?;
        let replicas = desired_replicas(&self.d);
        Ok(old.iter().chain(new.iter()).any(|n| {
            let rs = self.rs(n);
            rs_spec_replicas(rs) > 0
                && desired_replicas_annotation(rs).is_some_and(|v| v != replicas)
        }))
    }

    /// Upstream `sync`: scaling events and paused Deployments.
    fn sync(&mut self) -> Result<(), Stop> {
        let (new, old) = self.get_all(false)?;
        let (all, new_rs) = self.snapshot(&new, &old);
        let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
        self.scale(new.as_deref(), &old);
        if is_paused(&self.d) && rollback_to(&self.d).is_none() {
            self.cleanup(&old_snapshot);
        }
        self.sync_deployment_status(&all, new_rs.as_ref());
        Ok(())
    }

    /// Upstream `scale`: proportional scaling across active ReplicaSets.
    fn scale(&mut self, new: Option<&str>, old: &[String]) {
        if new.is_none() && old.is_empty() {
            return;
        }
        let replicas = desired_replicas(&self.d);
        let mut old_newest_first: Vec<String> = old.to_vec();
        old_newest_first.sort_by(|a, b| by_creation(self.rs(b), self.rs(a)));
        let active: Vec<String> = old_newest_first
            .iter()
            .map(String::as_str)
            .chain(new)
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .map(str::to_string)
            .collect();
        let active_or_latest = match active.len() {
            0 => new
                .map(str::to_string)
                .or_else(|| old_newest_first.first().cloned()),
            1 => Some(active[0].clone()),
            _ => None,
        };
        if let Some(name) = active_or_latest {
            if rs_spec_replicas(self.rs(&name)) != replicas {
                self.scale_and_record(&name, replicas);
            }
            return;
        }
        if is_saturated(&self.d, new.map(|n| self.rs(n))) {
            for name in old_newest_first {
                if rs_spec_replicas(self.rs(&name)) > 0 {
                    self.scale_and_record(&name, 0);
                }
            }
            return;
        }
        if !is_rolling_update(&self.d) {
            return;
        }
        let mut all = active;
        let all_replicas: i32 = all.iter().map(|n| rs_spec_replicas(self.rs(n))).sum();
        let allowed = if replicas > 0 {
            replicas + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - all_replicas;
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                all.sort_by(|a, b| by_size_newer(self.rs(a), self.rs(b)));
                "up"
            }
            Ordering::Less => {
                all.sort_by(|a, b| by_size_older(self.rs(a), self.rs(b)));
                "down"
            }
            Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: BTreeMap<String, i32> = BTreeMap::new();
        for name in &all {
            let rs = self.rs(name);
            let size = if to_add != 0 {
                let proportion = get_proportion(rs, &self.d, to_add, added);
                added += proportion;
                rs_spec_replicas(rs) + proportion
            } else {
                rs_spec_replicas(rs)
            };
            sizes.insert(name.clone(), size);
        }
        for (i, name) in all.iter().enumerate() {
            let mut size = sizes[name];
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_rs(name, size, operation);
        }
    }

    /// Upstream `rolloutRolling`.
    fn rollout_rolling(&mut self) -> Result<(), Stop> {
        let (new, old) = self.get_all(true)?;
        let new_name = new.clone().expect("created when missing");
        let (all, new_rs) = self.snapshot(&new, &old);
        let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();

        if self.reconcile_new_replica_set(&new_name, &old)? {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        let active_old: Vec<String> = old
            .iter()
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .cloned()
            .collect();
        if self.reconcile_old_replica_sets(&old, &active_old, &new_name) {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        if deployment_complete(&self.d, dstatus(&self.d)) {
            self.cleanup(&old_snapshot);
        }
        self.sync_rollout_status(&all, new_rs.as_ref());
        Ok(())
    }

    fn reconcile_new_replica_set(&mut self, new: &str, old: &[String]) -> Result<bool, Stop> {
        let replicas = desired_replicas(&self.d);
        let current = rs_spec_replicas(self.rs(new));
        if current == replicas {
            return Ok(false);
        }
        if current > replicas {
            return Ok(self.scale_and_record(new, replicas));
        }
        let count = {
            let mut all: Vec<&ReplicaSet> = old.iter().map(|n| self.rs(n)).collect();
            all.push(self.rs(new));
            new_rs_new_replicas(&self.d, &all, self.rs(new)).map_err(Stop::Error)?
        };
        Ok(self.scale_and_record(new, count))
    }

    fn reconcile_old_replica_sets(
        &mut self,
        old: &[String],
        active_old: &[String],
        new: &str,
    ) -> bool {
        let old_pods: i32 = active_old
            .iter()
            .map(|n| rs_spec_replicas(self.rs(n)))
            .sum();
        if old_pods == 0 {
            return false;
        }
        let all_pods: i32 = old
            .iter()
            .chain(std::iter::once(&new.to_string()))
            .map(|n| rs_spec_replicas(self.rs(n)))
            .sum();
        let min_available = desired_replicas(&self.d) - max_unavailable(&self.d);
        let new_rs = self.rs(new);
        let new_unavailable = rs_spec_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }

        // Clean up unhealthy replicas first: they do not count towards availability anyway.
        let mut active_old = active_old.to_vec();
        active_old.sort_by(|a, b| by_creation(self.rs(a), self.rs(b)));
        let mut cleaned = 0;
        for name in &active_old {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = self.rs(name);
            let (spec, available) = (rs_spec_replicas(rs), rs_available(rs));
            if spec == 0 || spec == available {
                continue;
            }
            let count = (max_scaled_down - cleaned).min(spec - available);
            if spec - count > spec {
                // Upstream refuses (status ahead of spec) and gives up scaling down this sync.
                return false;
            }
            self.scale_and_record(name, spec - count);
            cleaned += count;
        }

        // Then scale down while availability stays above replicas - maxUnavailable.
        let available: i32 = active_old
            .iter()
            .chain(std::iter::once(&new.to_string()))
            .map(|n| rs_available(self.rs(n)))
            .sum();
        let mut scaled_down = 0;
        if available > min_available {
            let total = available - min_available;
            for name in &active_old {
                if scaled_down >= total {
                    break;
                }
                let spec = rs_spec_replicas(self.rs(name));
                if spec == 0 {
                    continue;
                }
                let count = spec.min(total - scaled_down);
                self.scale_and_record(name, spec - count);
                scaled_down += count;
            }
        }
        cleaned + scaled_down > 0
    }

    /// Upstream `rolloutRecreate`.
    fn rollout_recreate(&mut self) -> Result<(), Stop> {
        let (mut new, mut old) = self.get_all(false)?;
        let (mut all, mut new_rs) = self.snapshot(&new, &old);
        let active_old: Vec<String> = old
            .iter()
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .cloned()
            .collect();
        let mut scaled_down = false;
        for name in &active_old {
            if self.scale_and_record(name, 0) {
                scaled_down = true;
            }
        }
        if scaled_down {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        let old_status_replicas: i32 = old.iter().map(|n| rs_status_replicas(self.rs(n))).sum();
        if old_status_replicas > 0 || self.old_pods_running {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        if new.is_none() {
            (new, old) = self.get_all(true)?;
            (all, new_rs) = self.snapshot(&new, &old);
        }
        let new_name = new.expect("created when missing");
        self.scale_and_record(&new_name, desired_replicas(&self.d));
        if deployment_complete(&self.d, dstatus(&self.d)) {
            let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
            self.cleanup(&old_snapshot);
        }
        self.sync_rollout_status(&all, new_rs.as_ref());
        Ok(())
    }

    /// Upstream `rollback` (deprecated `deprecated.deployment.rollback.to` annotation).
    fn rollback(&mut self, mut to_revision: i64) -> Result<(), Stop> {
        let (new, old) = self.get_all(true)?;
        let all: Vec<String> = old.iter().chain(new.iter()).cloned().collect();
        if to_revision == 0 {
            to_revision = last_revision(all.iter().map(|n| self.rs(n)));
            if to_revision == 0 {
                self.event(Event::warning(
                    reason::ROLLBACK_REVISION_NOT_FOUND,
                    "Unable to find last revision.".to_string(),
                ));
                self.clear_rollback_and_update();
                return Ok(());
            }
        }
        for name in &all {
            let rs = self.rs(name).clone();
            if revision(&rs) != Ok(to_revision) {
                continue;
            }
            let performed = !equal_ignore_hash(dtemplate(&self.d), rs_template(&rs));
            if performed {
                set_from_replica_set_template(&mut self.d, rs_template(&rs));
                set_deployment_annotations_to(&mut self.d, &rs);
            } else {
                let message = format!(
                    "The rollback revision contains the same template as current deployment \"{}\"",
                    dname(&self.d)
                );
                self.event(Event::warning(reason::ROLLBACK_TEMPLATE_UNCHANGED, message));
            }
            self.clear_rollback_and_update();
            if performed {
                let message = format!(
                    "Rolled back deployment \"{}\" to revision {to_revision}",
                    dname(&self.d)
                );
                self.event(Event::normal(reason::ROLLBACK_DONE, message));
            }
            return Ok(());
        }
        self.event(Event::warning(
            reason::ROLLBACK_REVISION_NOT_FOUND,
            "Unable to find the revision to rollback to.".to_string(),
        ));
        self.clear_rollback_and_update();
        Ok(())
    }

    fn clear_rollback_and_update(&mut self) {
        if let Some(annotations) = self.d.metadata.annotations.as_mut() {
            annotations.remove(DEPRECATED_ROLLBACK_TO_ANNOTATION);
        }
        self.written.metadata = self.d.metadata.clone();
        self.written.spec = self.d.spec.clone();
        self.actions.push(Action::UpdateDeployment(self.d.clone()));
    }

    /// Upstream `syncDeployment` after the Deployment and its ReplicaSets were read.
    fn run(&mut self) -> Result<(), Stop> {
        if selector_is_empty(&self.d) {
            self.event(Event::warning(
                reason::SELECTING_ALL,
                "This deployment is selecting all pods. A non-empty selector is required."
                    .to_string(),
            ));
            if dstatus(&self.d).observed_generation.unwrap_or(0) < generation(&self.d) {
                dstatus_mut(&mut self.d).observed_generation = Some(generation(&self.d));
                self.flush_status();
            }
            return Ok(());
        }
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.get_all(false)?;
            let (all, new_rs) = self.snapshot(&new, &old);
            self.sync_deployment_status(&all, new_rs.as_ref());
            return Ok(());
        }
        self.check_paused_conditions();
        if is_paused(&self.d) {
            return self.sync();
        }
        if let Some(to_revision) = rollback_to(&self.d) {
            return self.rollback(to_revision);
        }
        if self.is_scaling_event()? {
            return self.sync();
        }
        match strategy_type(&self.d) {
            "Recreate" => self.rollout_recreate(),
            "RollingUpdate" => self.rollout_rolling(),
            other => Err(Stop::Error(format!(
                "unexpected deployment strategy type: {other}"
            ))),
        }
    }
}

fn selector_is_empty(d: &Deployment) -> bool {
    let selector = &dspec(d).selector;
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

fn rollback_to(d: &Deployment) -> Option<i64> {
    d.metadata
        .annotations
        .as_ref()?
        .get(DEPRECATED_ROLLBACK_TO_ANNOTATION)
        .filter(|v| !v.is_empty())?
        .parse()
        .ok()
}

fn set_from_replica_set_template(d: &mut Deployment, template: &PodTemplateSpec) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.template = template.clone();
    if let Some(meta) = spec.template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
    }
}

fn set_deployment_annotations_to(d: &mut Deployment, rs: &ReplicaSet) {
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| skip_copy_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !skip_copy_annotation(k) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    d.metadata.annotations = Some(annotations);
}

/// Plans one sync of `d` (upstream `syncDeployment`, 1.33): the ReplicaSets to create, scale or
/// delete, the Deployment status (and revision annotation) writes and the events, in upstream's
/// order. `replica_sets` are the ReplicaSets controlled by `d`; `old_pods_running` says whether
/// a non-terminal pod of a ReplicaSet other than the new one still exists (Recreate waits for
/// them); `now` is the cluster time, RFC 3339.
///
/// Flow: empty selector -> `SelectingAll` warning; being deleted -> status only; pause/resume
/// conditions; paused or a scaling event -> proportional scaling (upstream `scale`) and status;
/// deprecated rollback annotation -> rollback; otherwise one step of RollingUpdate or Recreate
/// and the rollout status (Progressing condition, progress deadline).
pub fn plan_sync(
    d: &Deployment,
    replica_sets: &[ReplicaSet],
    old_pods_running: bool,
    now: &str,
) -> SyncPlan {
    let (now_t, now_ns) = match parse_now(now) {
        Ok(v) => v,
        Err(e) => {
            return SyncPlan {
                error: Some(e),
                ..Default::default()
            }
        }
    };
    let mut sim = Sim {
        now: now_t,
        now_ns,
        d: d.clone(),
        written: d.clone(),
        rss: replica_sets.to_vec(),
        old_pods_running,
        actions: Vec::new(),
        requeue: None,
    };
    let result = sim.run();
    let (requeue, error) = match result {
        Ok(()) => (sim.requeue, None),
        Err(Stop::Collision) => (Some(0.0), None),
        Err(Stop::Error(e)) => (None, Some(e)),
    };
    SyncPlan {
        actions: sim.actions,
        requeue_after_seconds: requeue,
        error,
    }
}

/// Upstream `GetProportion`: how many replicas to add to (or remove from) one ReplicaSet when
/// `to_add` are distributed proportionally, `added` having been handed out already.
fn get_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// Upstream `getReplicaSetFraction`: the ReplicaSet's share of the new total
/// (spec.replicas + maxSurge), relative to the max-replicas it was last scaled for.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let spec = rs_spec_replicas(rs);
    if desired_replicas(d) == 0 {
        return -spec;
    }
    let deployment_replicas = desired_replicas(d) + max_surge(d);
    let annotated = rs_annotation(rs, MAX_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or_else(|| dstatus(d).replicas.unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let new_size = f64::from(spec * deployment_replicas) / f64::from(annotated);
    new_size.round() as i32 - spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;
    use serde_json::json;

    /// A ReplicaSet status with every replica created, ready and available.
    fn settled_status(rs: &ReplicaSet) -> ReplicaSetStatus {
        let n = rs_spec_replicas(rs);
        ReplicaSetStatus {
            replicas: n,
            ready_replicas: nz(n),
            available_replicas: nz(n),
            fully_labeled_replicas: nz(n),
            observed_generation: rs.metadata.generation,
            ..Default::default()
        }
    }

    const T0: i64 = 1_750_000_000;

    fn at(secs: i64) -> String {
        Timestamp::from_second(T0 + secs).unwrap().to_string()
    }

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(T0 + secs).unwrap())
    }

    fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-web", "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": image}]}
                },
                "strategy": strategy,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            }
        }))
        .unwrap()
    }

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    fn default_rolling() -> Value {
        rolling(json!("25%"), json!("25%"))
    }

    fn set_image(d: &mut Deployment, image: &str) {
        let spec = d.spec.as_mut().unwrap();
        spec.template.spec.as_mut().unwrap().containers[0].image = Some(image.to_string());
        d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
    }

    fn set_replicas(d: &mut Deployment, replicas: i32) {
        d.spec.as_mut().unwrap().replicas = Some(replicas);
        d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
    }

    /// A toy apiserver + ReplicaSet controller: applies plans, makes pods available on demand.
    struct Cluster {
        d: Deployment,
        rss: Vec<ReplicaSet>,
        events: Vec<Event>,
        clock: i64,
        next_uid: u32,
    }

    impl Cluster {
        fn new(d: Deployment) -> Self {
            Cluster {
                d,
                rss: Vec::new(),
                events: Vec::new(),
                clock: 0,
                next_uid: 0,
            }
        }

        fn now(&self) -> String {
            at(self.clock)
        }

        fn rs(&self, name: &str) -> &ReplicaSet {
            self.rss.iter().find(|r| rs_name(r) == name).unwrap()
        }

        fn plan(&self) -> SyncPlan {
            plan_sync(&self.d, &self.rss, false, &self.now())
        }

        /// Applies the plan's actions one by one, calling `check` after each.
        fn apply(&mut self, plan: &SyncPlan, check: &mut dyn FnMut(&Cluster)) {
            assert_eq!(plan.error, None);
            for action in &plan.actions {
                match action {
                    Action::CreateReplicaSet(w) => {
                        assert!(self
                            .rss
                            .iter()
                            .all(|r| rs_name(r) != rs_name(&w.replica_set)));
                        let mut rs = w.replica_set.clone();
                        self.next_uid += 1;
                        rs.metadata.uid = Some(format!("rs-uid-{}", self.next_uid));
                        rs.metadata.creation_timestamp = Some(time(self.clock));
                        rs.metadata.generation = Some(1);
                        rs.status = Some(ReplicaSetStatus::default());
                        self.rss.push(rs);
                        self.events.extend(w.event.clone());
                    }
                    Action::UpdateReplicaSet(w) => {
                        let name = rs_name(&w.replica_set).to_string();
                        let existing = self.rss.iter_mut().find(|r| rs_name(r) == name).unwrap();
                        if existing.spec != w.replica_set.spec {
                            existing.metadata.generation =
                                Some(existing.metadata.generation.unwrap_or(0) + 1);
                        }
                        existing.spec = w.replica_set.spec.clone();
                        existing.metadata.annotations = w.replica_set.metadata.annotations.clone();
                        self.events.extend(w.event.clone());
                    }
                    Action::DeleteReplicaSet { name } => self.rss.retain(|r| rs_name(r) != name),
                    Action::UpdateDeploymentStatus(d) => {
                        self.d.status = d.status.clone();
                        self.d.metadata.annotations = d.metadata.annotations.clone();
                    }
                    Action::UpdateDeployment(d) => {
                        if self.d.spec != d.spec {
                            self.d.metadata.generation =
                                Some(self.d.metadata.generation.unwrap_or(0) + 1);
                        }
                        self.d.spec = d.spec.clone();
                        self.d.metadata.annotations = d.metadata.annotations.clone();
                    }
                    Action::RecordEvent(e) => self.events.push(e.clone()),
                }
                check(self);
            }
        }

        /// The ReplicaSet controller catches up and every pod becomes available at once.
        fn settle(&mut self) {
            for rs in &mut self.rss {
                rs.status = Some(settled_status(rs));
            }
        }

        /// Runs sync / settle rounds until a sync has nothing to do. Returns the rounds used.
        fn converge(&mut self, check: &mut dyn FnMut(&Cluster)) -> usize {
            for round in 0..60 {
                let plan = self.plan();
                if plan.actions.is_empty() {
                    return round;
                }
                self.apply(&plan, check);
                self.settle();
                check(self);
                self.clock += 1;
            }
            panic!("no convergence: {:#?}", self.rss);
        }

        fn new_rs(&self) -> &ReplicaSet {
            find_new_replica_set(&self.d, &self.rss).expect("new RS")
        }

        fn condition(&self, type_: &str) -> DeploymentCondition {
            get_condition(dstatus(&self.d), type_)
                .cloned()
                .expect("condition")
        }

        fn messages(&self) -> Vec<String> {
            self.events.iter().map(|e| e.message.clone()).collect()
        }
    }

    fn no_check(_: &Cluster) {}

    // -- hash ------------------------------------------------------------------------------

    #[test]
    fn hash_is_deterministic_and_shaped_like_upstream() {
        let d = deployment(3, "nginx:1", default_rolling());
        let t = dtemplate(&d);
        let h = pod_template_hash(t, None);
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");

        let mut d2 = d.clone();
        set_image(&mut d2, "nginx:2");
        assert_ne!(pod_template_hash(dtemplate(&d2), None), h);
        assert_ne!(pod_template_hash(t, Some(1)), h);
        assert_ne!(pod_template_hash(t, Some(1)), pod_template_hash(t, Some(2)));
        // Upstream writes the count even when it is 0.
        assert_ne!(pod_template_hash(t, Some(0)), h);
        // Key order of the encoding does not matter: a round trip through JSON keeps the hash.
        let round: PodTemplateSpec =
            serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap();
        assert_eq!(pod_template_hash(&round, None), h);
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
    }

    // -- fenceposts ------------------------------------------------------------------------

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        assert_eq!(
            resolve_fenceposts(&deployment(3, "x", default_rolling())),
            Ok((1, 0))
        );
        assert_eq!(
            resolve_fenceposts(&deployment(10, "x", default_rolling())),
            Ok((3, 2))
        );
        assert_eq!(
            resolve_fenceposts(&deployment(4, "x", default_rolling())),
            Ok((1, 1))
        );
        // Both zero: one may be unavailable.
        let both_zero = deployment(3, "x", rolling(json!(0), json!("25%")));
        assert_eq!(resolve_fenceposts(&both_zero), Ok((0, 1)));
        assert_eq!(max_unavailable(&both_zero), 1);
        let ints = deployment(10, "x", rolling(json!(3), json!(2)));
        assert_eq!(resolve_fenceposts(&ints), Ok((3, 2)));
        // Defaults when the strategy is absent.
        let mut bare = deployment(10, "x", default_rolling());
        bare.spec.as_mut().unwrap().strategy = None;
        assert_eq!(resolve_fenceposts(&bare), Ok((3, 2)));
        // Recreate: no surge, no unavailability.
        let recreate = deployment(10, "x", json!({"type": "Recreate"}));
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
        // Malformed percentages.
        for bad in ["25", "abc%", "%", "2.5%"] {
            let d = deployment(3, "x", rolling(json!(bad), json!("25%")));
            assert!(resolve_fenceposts(&d).is_err(), "{bad}");
        }
    }

    // -- creation --------------------------------------------------------------------------

    #[test]
    fn new_replica_set_shape() {
        let mut d = deployment(3, "nginx:1", default_rolling());
        d.metadata.annotations = Some(BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (LAST_APPLIED_CONFIG_ANNOTATION.to_string(), "{}".to_string()),
            (REVISION_ANNOTATION.to_string(), "7".to_string()),
        ]));
        let rs = new_replica_set(&d, &[], 3);
        let hash = pod_template_hash(dtemplate(&d), None);
        assert_eq!(rs_name(&rs), format!("web-{hash}"));
        assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
        let labels = rs.metadata.labels.clone().unwrap();
        assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.selector
                .match_labels
                .as_ref()
                .unwrap()
                .get(POD_TEMPLATE_HASH_LABEL),
            Some(&hash)
        );
        let tlabels = spec
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(tlabels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Deployment", "web", "uid-web")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let ann = rs.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann.get(REVISION_ANNOTATION).map(String::as_str), Some("1"));
        assert_eq!(
            ann.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str),
            Some("3")
        );
        assert_eq!(
            ann.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
            Some("4")
        );
        assert_eq!(ann.get("team").map(String::as_str), Some("a"));
        assert!(!ann.contains_key(LAST_APPLIED_CONFIG_ANNOTATION));
        // The RS template matches the Deployment's once the hash label is ignored.
        assert!(equal_ignore_hash(rs_template(&rs), dtemplate(&d)));
        let list = vec![rs.clone()];
        assert_eq!(
            find_new_replica_set(&d, &list).map(rs_name),
            Some(rs_name(&rs))
        );
        let mut d2 = d.clone();
        set_image(&mut d2, "nginx:2");
        assert!(find_new_replica_set(&d2, &list).is_none());
        assert_eq!(find_old_replica_sets(&d2, &list).len(), 1);
        // The next revision counts the old ones.
        let rs2 = new_replica_set(&d2, &list, 0);
        assert_eq!(rs_annotation(&rs2, REVISION_ANNOTATION), Some("2"));
    }

    #[test]
    fn first_sync_creates_the_replica_set_and_then_reports_progress() {
        let mut c = Cluster::new(deployment(3, "nginx:1", default_rolling()));
        let plan = c.plan();
        let created = plan.created_replica_set().expect("created").clone();
        assert_eq!(rs_spec_replicas(&created), 3);
        let name = rs_name(&created).to_string();
        assert_eq!(
            plan.events()[0].message,
            format!("Scaled up replica set {name} from 0 to 3")
        );
        assert_eq!(plan.events()[0].reason, "ScalingReplicaSet");
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.d.metadata
                .annotations
                .as_ref()
                .unwrap()
                .get(REVISION_ANNOTATION)
                .map(String::as_str),
            Some("1")
        );
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(reason::NEW_REPLICA_SET));
        assert_eq!(
            progressing.message,
            Some(format!("Created new replica set \"{name}\""))
        );
        let available = c.condition(CONDITION_AVAILABLE);
        assert_eq!(available.status, "False");
        assert_eq!(
            available.message.as_deref(),
            Some("Deployment does not have minimum availability.")
        );
        assert_eq!(dstatus(&c.d).observed_generation, Some(1));

        c.settle();
        c.clock += 5;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let status = dstatus(&c.d).clone();
        assert_eq!(
            (
                status.replicas,
                status.updated_replicas,
                status.ready_replicas,
                status.available_replicas
            ),
            (Some(3), Some(3), Some(3), Some(3))
        );
        assert_eq!(status.unavailable_replicas, None);
        let available = c.condition(CONDITION_AVAILABLE);
        assert_eq!(
            (available.status.as_str(), available.reason.as_deref()),
            ("True", Some(reason::MINIMUM_REPLICAS_AVAILABLE))
        );
        assert_eq!(
            available.message.as_deref(),
            Some("Deployment has minimum availability.")
        );
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(
            progressing.message,
            Some(format!(
                "ReplicaSet \"{name}\" has successfully progressed."
            ))
        );
        // Same status True: the transition time is kept, the update time moves.
        assert_eq!(progressing.last_transition_time, Some(time(0)));
        assert_eq!(progressing.last_update_time, Some(time(5)));
        // Conditions in upstream's order.
        let types: Vec<String> = status
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Available", "Progressing"]);
        assert!(c.plan().actions.is_empty());
    }

    // -- rolling update ----------------------------------------------------------------------

    fn rolling_update_never_exceeds_budget(replicas: i32, strategy: Value) {
        let mut c = Cluster::new(deployment(replicas, "app:v1", strategy));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        let (surge, unavailable) = (max_surge(&c.d), max_unavailable(&c.d));

        set_image(&mut c.d, "app:v2");
        let mut steps = 0;
        let mut check = |c: &Cluster| {
            steps += 1;
            let total: i32 = c.rss.iter().map(rs_spec_replicas).sum();
            // Pods that exist and are available: a scale-down removes pods at once.
            let available: i32 = c
                .rss
                .iter()
                .map(|r| rs_spec_replicas(r).min(rs_available(r)))
                .sum();
            assert!(total <= replicas + surge, "surge exceeded: {total} pods");
            assert!(
                available >= replicas - unavailable,
                "too many unavailable: {available} available"
            );
        };
        let rounds = c.converge(&mut check);
        assert!(rounds > 1 && steps > 2);

        let new = c.new_rs().clone();
        assert_ne!(rs_name(&new), v1);
        assert_eq!(
            (rs_spec_replicas(&new), rs_available(&new)),
            (replicas, replicas)
        );
        assert_eq!(rs_spec_replicas(c.rs(&v1)), 0);
        assert_eq!(rs_annotation(&new, REVISION_ANNOTATION), Some("2"));
        assert_eq!(
            c.d.metadata
                .annotations
                .as_ref()
                .unwrap()
                .get(REVISION_ANNOTATION)
                .map(String::as_str),
            Some("2")
        );
        let status = dstatus(&c.d);
        assert_eq!(status.updated_replicas, Some(replicas));
        assert_eq!(status.available_replicas, Some(replicas));
        assert_eq!(status.observed_generation, Some(2));
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(
            progressing.message,
            Some(format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                rs_name(&new)
            ))
        );
        let prefix = format!("Scaled down replica set {v1} from ");
        assert!(c.messages().iter().any(|m| m.starts_with(&prefix)));
    }

    #[test]
    fn rolling_update_from_three_replicas() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        c.events.clear();
        set_image(&mut c.d, "app:v2");
        // Surge 1, unavailable 0: one new pod, then one old pod less, three times.
        let mut check = |c: &Cluster| {
            let total: i32 = c.rss.iter().map(rs_spec_replicas).sum();
            let available: i32 = c
                .rss
                .iter()
                .map(|r| rs_spec_replicas(r).min(rs_available(r)))
                .sum();
            assert!(total <= 4, "{total}");
            assert!(available >= 3, "{available}");
        };
        c.converge(&mut check);
        let v2 = rs_name(c.new_rs()).to_string();
        let scaling: Vec<String> = c
            .events
            .iter()
            .filter(|e| e.reason == reason::SCALING_REPLICA_SET)
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(
            scaling,
            [
                format!("Scaled up replica set {v2} from 0 to 1"),
                format!("Scaled down replica set {v1} from 3 to 2"),
                format!("Scaled up replica set {v2} from 1 to 2"),
                format!("Scaled down replica set {v1} from 2 to 1"),
                format!("Scaled up replica set {v2} from 2 to 3"),
                format!("Scaled down replica set {v1} from 1 to 0"),
            ]
        );
        // The old ReplicaSet's annotations follow each scale.
        assert_eq!(
            rs_annotation(c.rs(&v1), DESIRED_REPLICAS_ANNOTATION),
            Some("3")
        );
        assert_eq!(rs_annotation(c.rs(&v1), MAX_REPLICAS_ANNOTATION), Some("4"));
    }

    #[test]
    fn rolling_updates_respect_budgets_for_several_shapes() {
        rolling_update_never_exceeds_budget(3, default_rolling());
        rolling_update_never_exceeds_budget(10, default_rolling());
        rolling_update_never_exceeds_budget(10, rolling(json!(3), json!(2)));
        rolling_update_never_exceeds_budget(5, rolling(json!(0), json!(1)));
        rolling_update_never_exceeds_budget(4, rolling(json!("100%"), json!(0)));
        rolling_update_never_exceeds_budget(1, default_rolling());
    }

    #[test]
    fn unhealthy_old_replicas_are_cleaned_up_first() {
        let mut c = Cluster::new(deployment(10, "app:v1", rolling(json!(3), json!(2))));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        // Two old pods crash.
        let old = c.rss.iter_mut().find(|r| rs_name(r) == v1).unwrap();
        old.status.as_mut().unwrap().available_replicas = Some(8);
        set_image(&mut c.d, "app:v2");
        let plan = c.plan();
        let v2 = rs_name(plan.created_replica_set().unwrap()).to_string();
        // New RS at 3 (surge); cleanup removes the 2 unhealthy (13 - 8 - 3 = 2 allowed).
        assert_eq!(
            plan.scale_changes(),
            [
                ScaleChange {
                    name: v2.clone(),
                    from: 0,
                    to: 3
                },
                ScaleChange {
                    name: v1.clone(),
                    from: 10,
                    to: 8
                },
            ]
        );
    }

    // -- recreate ----------------------------------------------------------------------------

    #[test]
    fn recreate_scales_old_to_zero_before_creating_new() {
        let mut c = Cluster::new(deployment(3, "app:v1", json!({"type": "Recreate"})));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        c.events.clear();
        set_image(&mut c.d, "app:v2");

        let plan = c.plan();
        assert!(plan.created_replica_set().is_none());
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1.clone(),
                from: 3,
                to: 0
            }]
        );
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages(),
            [format!("Scaled down replica set {v1} from 3 to 0")]
        );

        // Old pods still reported by the RS status: wait.
        let plan = c.plan();
        assert!(plan.created_replica_set().is_none() && plan.scale_changes().is_empty());
        c.settle();
        // Old pods still terminating according to the pod list: wait.
        let plan = plan_sync(&c.d, &c.rss, true, &c.now());
        assert!(plan.created_replica_set().is_none() && plan.scale_changes().is_empty());
        // All gone: create the new ReplicaSet at full size.
        let plan = c.plan();
        let created = plan.created_replica_set().expect("created").clone();
        assert_eq!(rs_spec_replicas(&created), 3);
        let v2 = rs_name(&created).to_string();
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages().last().unwrap(),
            &format!("Scaled up replica set {v2} from 0 to 3")
        );
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(rs_spec_replicas(c.rs(&v2)), 3);
        assert_eq!(
            c.condition(CONDITION_PROGRESSING).reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(c.condition(CONDITION_AVAILABLE).status, "True");
    }

    // -- history -----------------------------------------------------------------------------

    #[test]
    fn revision_history_limit_deletes_oldest_scaled_down_replica_sets() {
        let mut d = deployment(2, "app:v1", default_rolling());
        d.spec.as_mut().unwrap().revision_history_limit = Some(1);
        let mut c = Cluster::new(d);
        c.converge(&mut no_check);
        let mut names = vec![rs_name(c.new_rs()).to_string()];
        for v in ["app:v2", "app:v3", "app:v4"] {
            set_image(&mut c.d, v);
            c.converge(&mut no_check);
            names.push(rs_name(c.new_rs()).to_string());
        }
        let mut left: Vec<String> = c.rss.iter().map(|r| rs_name(r).to_string()).collect();
        left.sort();
        let mut expected = vec![names[2].clone(), names[3].clone()];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            rs_annotation(c.rs(&names[3]), REVISION_ANNOTATION),
            Some("4")
        );
    }

    #[test]
    fn history_cleanup_picks_lowest_revisions_that_are_fully_scaled_down() {
        let d = {
            let mut d = deployment(1, "x", default_rolling());
            d.spec.as_mut().unwrap().revision_history_limit = Some(2);
            d
        };
        let rs = |name: &str, rev: &str, spec: i32, status: i32| -> ReplicaSet {
            serde_json::from_value(json!({
                "metadata": {"name": name, "generation": 1, "annotations": {REVISION_ANNOTATION: rev}},
                "spec": {"replicas": spec, "selector": {}},
                "status": {"replicas": status, "observedGeneration": 1}
            }))
            .unwrap()
        };
        let olds = [
            rs("a", "3", 0, 0),
            rs("b", "1", 0, 0),
            rs("c", "2", 0, 1),
            rs("d", "4", 0, 0),
            rs("e", "5", 1, 1),
        ];
        let refs: Vec<&ReplicaSet> = olds.iter().collect();
        // 5 old, limit 2: the 3 lowest revisions are candidates (b=1, c=2, a=3); c still has a pod.
        assert_eq!(replica_sets_to_delete(&d, &refs), ["b", "a"]);
        let mut unlimited = d.clone();
        unlimited.spec.as_mut().unwrap().revision_history_limit = Some(i32::MAX);
        assert!(replica_sets_to_delete(&unlimited, &refs).is_empty());
    }

    // -- scaling -----------------------------------------------------------------------------

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let mk = |name: &str, image: &str, replicas: i32, secs: i64| -> ReplicaSet {
            let mut d = deployment(10, image, rolling(json!(3), json!(2)));
            d.metadata.annotations = None;
            let mut rs = build_replica_set(&d, &pod_template_hash(dtemplate(&d), None), replicas);
            rs.metadata.name = Some(name.to_string());
            rs.metadata.creation_timestamp = Some(time(secs));
            rs.metadata.generation = Some(1);
            rs.metadata.annotations = Some(BTreeMap::from([
                (DESIRED_REPLICAS_ANNOTATION.to_string(), "10".to_string()),
                (MAX_REPLICAS_ANNOTATION.to_string(), "13".to_string()),
                (
                    REVISION_ANNOTATION.to_string(),
                    if image == "app:v1" { "1" } else { "2" }.to_string(),
                ),
            ]));
            rs.status = Some(settled_status(&rs));
            rs
        };
        let old = mk("web-old", "app:v1", 8, 0);
        let new = mk("web-new", "app:v2", 5, 10);
        let mut d = deployment(10, "app:v2", rolling(json!(3), json!(2)));
        set_replicas(&mut d, 15);
        let plan = plan_sync(&d, &[old, new], false, &at(20));
        // allowed 15 + 3 = 18, 13 running: +5, shared 8*18/13 -> +3 and 5*18/13 -> +2.
        assert_eq!(
            plan.scale_changes(),
            [
                ScaleChange {
                    name: "web-old".into(),
                    from: 8,
                    to: 11
                },
                ScaleChange {
                    name: "web-new".into(),
                    from: 5,
                    to: 7
                },
            ]
        );
        let messages: Vec<&str> = plan.events().iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Scaled up replica set web-old from 8 to 11",
                "Scaled up replica set web-new from 5 to 7"
            ]
        );
        for action in &plan.actions {
            if let Action::UpdateReplicaSet(w) = action {
                assert_eq!(
                    rs_annotation(&w.replica_set, DESIRED_REPLICAS_ANNOTATION),
                    Some("15")
                );
                assert_eq!(
                    rs_annotation(&w.replica_set, MAX_REPLICAS_ANNOTATION),
                    Some("18")
                );
            }
        }

        // Scaling down to 5: allowed 5 + 3 = 8, so 5 fewer, shared 8*8/13 -> -3 and 5*8/13 -> -2.
        let old = mk("web-old", "app:v1", 8, 0);
        let new = mk("web-new", "app:v2", 5, 10);
        let mut d = deployment(10, "app:v2", rolling(json!(3), json!(2)));
        set_replicas(&mut d, 5);
        let plan = plan_sync(&d, &[old, new], false, &at(20));
        let changes = plan.scale_changes();
        let total: i32 = changes.iter().map(|c| c.to).sum();
        assert_eq!(total, 8);
        assert!(plan
            .events()
            .iter()
            .all(|e| e.message.starts_with("Scaled down replica set ")));
    }

    #[test]
    fn plain_scale_changes_the_only_active_replica_set() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        set_replicas(&mut c.d, 5);
        let plan = c.plan();
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1.clone(),
                from: 3,
                to: 5
            }]
        );
        assert_eq!(
            plan.events()[0].message,
            format!("Scaled up replica set {v1} from 3 to 5")
        );
        c.apply(&plan, &mut no_check);
        assert_eq!(
            rs_annotation(c.rs(&v1), DESIRED_REPLICAS_ANNOTATION),
            Some("5")
        );
        assert_eq!(rs_annotation(c.rs(&v1), MAX_REPLICAS_ANNOTATION), Some("7"));
    }

    // -- pause, deadline -----------------------------------------------------------------------

    #[test]
    fn paused_deployment_only_scales_and_reports_paused_then_resumed() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        c.d.spec.as_mut().unwrap().paused = Some(true);
        set_image(&mut c.d, "app:v2");
        set_replicas(&mut c.d, 4);
        c.clock += 10;
        let plan = c.plan();
        assert!(plan.created_replica_set().is_none());
        let v1 = rs_name(&c.rss[0]).to_string();
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1,
                from: 3,
                to: 4
            }]
        );
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            (
                progressing.status.as_str(),
                progressing.reason.as_deref(),
                progressing.message.as_deref()
            ),
            (
                "Unknown",
                Some(reason::PAUSED),
                Some("Deployment is paused")
            )
        );
        assert_eq!(progressing.last_transition_time, Some(time(c.clock)));
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(c.rss.len(), 1);

        c.d.spec.as_mut().unwrap().paused = Some(false);
        c.clock += 10;
        let resumed_at = c.clock;
        let plan = c.plan();
        assert!(plan.created_replica_set().is_some());
        let first_status = plan
            .actions
            .iter()
            .find_map(|a| match a {
                Action::UpdateDeploymentStatus(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap();
        let first = get_condition(dstatus(&first_status), CONDITION_PROGRESSING).unwrap();
        assert_eq!(
            (first.reason.as_deref(), first.message.as_deref()),
            (Some(reason::RESUMED), Some("Deployment is resumed"))
        );
        // Unknown -> Unknown: the transition time stays the pause's.
        assert_ne!(first.last_transition_time, Some(time(resumed_at)));
        c.apply(&plan, &mut no_check);
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(
            c.condition(CONDITION_PROGRESSING).reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(rs_spec_replicas(c.new_rs()), 4);
    }

    #[test]
    fn progress_deadline_exceeded_after_no_progress() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        set_image(&mut c.d, "broken:v2");
        let start = c.clock;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        // The new pod never becomes available; the old ones stay.
        let v2 = rs_name(c.new_rs()).to_string();
        for rs in &mut c.rss {
            let n = rs_spec_replicas(rs);
            let available = if rs_name(rs) == v2 { 0 } else { n };
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: nz(available),
                available_replicas: nz(available),
                observed_generation: rs.metadata.generation,
                ..Default::default()
            });
        }
        c.clock = start + 1;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(reason::REPLICA_SET_UPDATED)
        );
        assert_eq!(
            progressing.message,
            Some(format!("ReplicaSet \"{v2}\" is progressing."))
        );
        let updated_at = start + 1;
        assert_eq!(progressing.last_update_time, Some(time(updated_at)));

        // Nothing moves: no write, and a requeue for when the deadline passes.
        c.clock = updated_at + 300;
        let plan = c.plan();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.requeue_after_seconds, Some(301.0));
        c.clock = updated_at + 600;
        assert!(c.plan().actions.is_empty());

        c.clock = updated_at + 601;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_deref()),
            ("False", Some(reason::TIMED_OUT))
        );
        assert_eq!(
            progressing.message,
            Some(format!("ReplicaSet \"{v2}\" has timed out progressing."))
        );
        assert_eq!(plan.requeue_after_seconds, None);
        assert!(deployment_timed_out(&c.d, dstatus(&c.d), &c.now()));
        // Availability is still fine: the old pods serve.
        assert_eq!(c.condition(CONDITION_AVAILABLE).status, "True");
    }

    #[test]
    fn create_conflicts_and_failures() {
        let d = deployment(3, "app:v1", default_rolling());
        let ours = new_replica_set(&d, &[], 3);
        let mut owned = ours.clone();
        owned.metadata.owner_references.as_mut().unwrap()[0].uid = "uid-web".into();
        assert_eq!(resolve_create_conflict(&d, &owned), CreateConflict::Adopt);
        let mut other = ours.clone();
        other
            .spec
            .as_mut()
            .unwrap()
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("else".into());
        match resolve_create_conflict(&d, &other) {
            CreateConflict::BumpCollisionCount(bumped) => {
                assert_eq!(dstatus(&bumped).collision_count, Some(1));
                let rs = new_replica_set(&bumped, &[], 3);
                assert_ne!(rs_name(&rs), rs_name(&ours));
            }
            CreateConflict::Adopt => panic!("a collision"),
        }
        let (status, event) = create_failed(&d, "web-abc", "quota exceeded", &at(0));
        assert_eq!(
            event.message,
            "Failed to create new replica set \"web-abc\": quota exceeded"
        );
        assert_eq!(
            (event.type_, event.reason),
            ("Warning", "ReplicaSetCreateError")
        );
        let c = get_condition(dstatus(status.as_ref().unwrap()), CONDITION_PROGRESSING)
            .unwrap()
            .clone();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("ReplicaSetCreateError"))
        );
    }

    #[test]
    fn selecting_all_and_bad_input() {
        let mut d = deployment(3, "app:v1", default_rolling());
        d.spec.as_mut().unwrap().selector = Default::default();
        let plan = plan_sync(&d, &[], false, &at(0));
        assert_eq!(plan.events()[0].reason, "SelectingAll");
        assert_eq!(plan.final_status().unwrap().observed_generation, Some(1));
        assert!(plan_sync(&d, &[], false, "yesterday").error.is_some());
        let bad = deployment(3, "app:v1", rolling(json!("lots"), json!(0)));
        assert!(plan_sync(&bad, &[], false, &at(0)).error.is_some());
    }

    #[test]
    fn set_condition_semantics() {
        let mut status = DeploymentStatus::default();
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "A", "a", &time(0)),
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "A", "changed", &time(5)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(
            (c.message.as_deref(), c.last_update_time.clone()),
            (Some("a"), Some(time(0)))
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "B", "b", &time(6)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(
            (c.last_transition_time.clone(), c.last_update_time.clone()),
            (Some(time(0)), Some(time(6)))
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "False", "C", "c", &time(7)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(c.last_transition_time, Some(time(7)));
        remove_condition(&mut status, "Progressing");
        assert!(status.conditions.is_none());
    }

    #[test]
    fn revisions() {
        let rs = |rev: Option<&str>| -> ReplicaSet {
            let mut rs = ReplicaSet::default();
            if let Some(rev) = rev {
                rs.metadata.annotations = Some(BTreeMap::from([(
                    REVISION_ANNOTATION.to_string(),
                    rev.to_string(),
                )]));
            }
            rs
        };
        let list = [
            rs(Some("3")),
            rs(Some("x")),
            rs(None),
            rs(Some("5")),
            rs(Some("4")),
        ];
        assert_eq!(max_revision(&list), 5);
        assert_eq!(last_revision(&list), 4);
        // Re-using an old ReplicaSet records its earlier revision.
        let d = deployment(1, "x", default_rolling());
        let mut old = rs(Some("1"));
        assert!(set_new_replica_set_annotations(
            &d,
            &mut old,
            "3",
            true,
            MAX_REV_HISTORY_LENGTH_IN_CHARS
        ));
        assert_eq!(rs_annotation(&old, REVISION_HISTORY_ANNOTATION), Some("1"));
        assert!(set_new_replica_set_annotations(
            &d,
            &mut old,
            "5",
            true,
            MAX_REV_HISTORY_LENGTH_IN_CHARS
        ));
        assert_eq!(
            rs_annotation(&old, REVISION_HISTORY_ANNOTATION),
            Some("1,3")
        );
        assert_eq!(rs_annotation(&old, REVISION_ANNOTATION), Some("5"));
        assert!(!set_new_replica_set_annotations(
            &d,
            &mut old,
            "4",
            true,
            MAX_REV_HISTORY_LENGTH_IN_CHARS
        ));
    }

    #[test]
    fn rollback_annotation_restores_an_old_template() {
        let mut c = Cluster::new(deployment(2, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        set_image(&mut c.d, "app:v2");
        c.converge(&mut no_check);
        c.d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(DEPRECATED_ROLLBACK_TO_ANNOTATION.into(), "0".into());
        c.events.clear();
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages(),
            ["Rolled back deployment \"web\" to revision 1"]
        );
        assert!(rollback_to(&c.d).is_none());
        c.converge(&mut no_check);
        assert_eq!(rs_name(c.new_rs()), v1);
        assert_eq!(rs_annotation(c.rs(&v1), REVISION_ANNOTATION), Some("3"));
        assert_eq!(
            rs_annotation(c.rs(&v1), REVISION_HISTORY_ANNOTATION),
            Some("1")
        );
    }
}
