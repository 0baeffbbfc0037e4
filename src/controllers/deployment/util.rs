//! Helpers of the Deployment controller, as upstream's `deployment/util` package: the names it
//! writes (labels, annotations, condition types and reasons), the apps/v1 defaults of absent
//! fields, maxSurge and maxUnavailable, finding the new and old ReplicaSets and their revisions,
//! the annotations the controller copies and keeps, proportional shares, and the
//! pod-template-hash. Pure functions over k8s-openapi types.

use std::cmp::Ordering;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

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

pub(super) fn dspec(d: &Deployment) -> &DeploymentSpec {
    d.spec.as_ref().unwrap_or_else(|| empty_deployment_spec())
}

pub(super) fn dstatus(d: &Deployment) -> &DeploymentStatus {
    d.status
        .as_ref()
        .unwrap_or_else(|| empty_deployment_status())
}

pub(super) fn dstatus_mut(d: &mut Deployment) -> &mut DeploymentStatus {
    d.status.get_or_insert_with(Default::default)
}

pub(super) fn dname(d: &Deployment) -> &str {
    d.metadata.name.as_deref().unwrap_or("")
}

pub(super) fn dtemplate(d: &Deployment) -> &PodTemplateSpec {
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

pub(super) fn is_paused(d: &Deployment) -> bool {
    dspec(d).paused.unwrap_or(false)
}

pub(super) fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or(0)
}

pub(super) fn rolling_params(d: &Deployment) -> (IntOrString, IntOrString) {
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

pub(super) fn progress_deadline_seconds(d: &Deployment) -> i32 {
    dspec(d)
        .progress_deadline_seconds
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
}

/// Whether the Deployment reports `ProgressDeadlineExceeded` (a deadline other than MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline_seconds(d) != i32::MAX
}

pub(super) fn revision_history_limit(d: &Deployment) -> i32 {
    dspec(d)
        .revision_history_limit
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
}

/// Whether old ReplicaSets are cleaned up (a limit other than MaxInt32).
pub fn has_revision_history_limit(d: &Deployment) -> bool {
    revision_history_limit(d) != i32::MAX
}

pub(super) fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// A ReplicaSet's spec.replicas (default 1).
pub fn rs_spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(super) fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub(super) fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub(super) fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub(super) fn rs_template(rs: &ReplicaSet) -> &PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .unwrap_or_else(|| empty_template())
}

pub(super) fn rs_annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub(super) fn rs_min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub(super) fn set_rs_replicas(rs: &mut ReplicaSet, replicas: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
}

pub(super) fn nz(v: i32) -> Option<i32> {
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
pub(super) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    a.metadata
        .creation_timestamp
        .cmp(&b.metadata.creation_timestamp)
        .then_with(|| rs_name(a).cmp(rs_name(b)))
}

/// Larger first; same size: older first (upstream `ReplicaSetsBySizeOlder`).
pub(super) fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_spec_replicas(b)
        .cmp(&rs_spec_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Larger first; same size: newer first (upstream `ReplicaSetsBySizeNewer`).
pub(super) fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_spec_replicas(b)
        .cmp(&rs_spec_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Lowest revision first; unparsable or equal revisions: by creation (`ReplicaSetsByRevision`).
pub(super) fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
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

pub(super) fn skip_copy_annotation(key: &str) -> bool {
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
pub(super) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
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

pub(super) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    rs_annotation(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired.to_string().as_str())
        || rs_annotation(rs, MAX_REPLICAS_ANNOTATION) != Some(max.to_string().as_str())
}

/// Upstream `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the
/// revision to `new_revision` when lower (recording the old one in revision-history, bounded to
/// `history_limit_chars`), and for a ReplicaSet about to be created sets desired/max replicas.
/// True if an annotation changed.
pub(super) fn set_new_replica_set_annotations(
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
pub(super) fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
    if annotations.get(REVISION_ANNOTATION).map(String::as_str) == Some(revision) {
        return false;
    }
    annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    true
}

pub(super) fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs_annotation(rs, DESIRED_REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok())
}

// ---------------------------------------------------------------------------------------------
// Proportional scaling
// ---------------------------------------------------------------------------------------------

/// Upstream `GetProportion`: how many replicas to add to (or remove from) one ReplicaSet when
/// `to_add` are distributed proportionally, `added` having been handed out already.
pub(super) fn get_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
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
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::super::testing::*;
    use super::*;

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
}
