//! Strategic merge patch (`application/strategic-merge-patch+json`), applied the way the
//! Kubernetes 1.33 apiserver applies it.
//!
//! This is the patch format `kubectl apply` (re-apply), `kubectl edit` and plain `kubectl patch`
//! send. It is JSON merge patch (RFC 7386) plus per-field knowledge taken from the
//! `patchStrategy` / `patchMergeKey` struct tags of the Go API types, plus a few directives:
//!
//! * Objects merge key by key, recursively; a `null` in the patch deletes the key.
//! * Lists tagged `merge` with a merge key (e.g. `containers` by `name`) merge element by
//!   element: a patch element whose key matches a live element is merged into it, others are
//!   appended, and `{"<key>": x, "$patch": "delete"}` removes the matching elements.
//!   Lists of scalars tagged `merge` (e.g. `metadata.finalizers`) take the union.
//!   Every other list is replaced whole.
//! * `$patch: replace` / `$patch: delete` inside an object replace it with the rest of the
//!   patch object or empty it; `{"$patch": "replace"}` as a list element makes the other
//!   patch elements replace the list.
//! * `$setElementOrder/<field>` gives the order of a merged list (precedence: that list, then
//!   the order of the patch list, then the order of the live list for server-only elements).
//! * `$deleteFromPrimitiveList/<field>` removes scalars from a list.
//! * `$retainKeys: [...]` drops every key of the live object that it does not name
//!   (used for `volumes` entries and a Deployment's `strategy`).
//!
//! Patch metadata is resolved from the kind: the [`FIELDS`] table maps (Go type, JSON field)
//! to the type of the field's value and to its strategy, so that e.g. `spec.template.spec` of
//! a Deployment is known to be a `PodSpec`. Fields not in the table are untyped: their objects
//! merge and their lists are replaced, exactly as for an untagged Go field.
//!
//! Ordering of merged lists follows the upstream algorithm to the letter, including how the
//! upstream code, working on Go slices that share storage, sees the live list after removing
//! and appending elements in place (see [`merge_list`]); the resulting orders match the
//! upstream test vectors.
//!
//! Directive keys never appear in the output. Where upstream leaves content in its
//! intermediate map that the decode into a Go struct then drops (unknown `$...` keys, `null`
//! values inside raw patch content), this module drops it directly.
//!
//! The module is pure: it knows nothing of HTTP, the store, admission, defaulting or
//! validation. The caller decodes, defaults, validates and persists the result, and can turn
//! an [`Error`] into a response status with [`Error::status_code`].

use serde_json::{Map, Value};

type Object = Map<String, Value>;

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No patch metadata is known for this kind. Upstream refuses strategic merge patches for
    /// types it has no Go struct for (custom resources) with 415 Unsupported Media Type.
    #[error("strategic merge patch is not supported for kind {0:?}")]
    UnsupportedKind(String),
    /// The object being patched is not a JSON object.
    #[error("the object to patch is not a JSON object")]
    OriginalNotObject,
    /// The patch document is not a JSON object.
    #[error("invalid JSON document: a strategic merge patch must be a JSON object")]
    PatchNotObject,
    /// A `$patch` directive has an unknown value, or a value not allowed where it appears
    /// (`merge` as a list element).
    #[error("unknown patch type: {directive}")]
    InvalidDirective {
        /// The offending directive value, as JSON.
        directive: String,
    },
    /// An element of a list merged by key lacks that key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The merge key of the list.
        key: String,
        /// The element lacking it, as JSON.
        element: String,
    },
    /// A list of objects has to be merged (strategy merge, or a deletion list) but no merge
    /// key is declared for its field.
    #[error("cannot merge lists without merge key for field {field:?}")]
    MergeKeyRequired {
        /// The JSON name of the list field.
        field: String,
    },
    /// A `$setElementOrder...` key is malformed (not `$setElementOrder/<field>`).
    #[error("invalid patch format of setElementOrder list: {0}")]
    InvalidSetElementOrder(String),
    /// The patch list holds elements missing from `$setElementOrder/<field>`, or holds them in
    /// another relative order.
    #[error("the order in patch list {patch} doesn't match $setElementOrder list {order}")]
    SetElementOrderMismatch {
        /// The patch list, as JSON.
        patch: String,
        /// The `$setElementOrder` list, as JSON.
        order: String,
    },
    /// A `$deleteFromPrimitiveList...` key is malformed.
    #[error("invalid patch format of primitive list: {0}")]
    InvalidDeleteFromPrimitiveList(String),
    /// `$retainKeys` is not a list, or the patch sets a field that `$retainKeys` does not name.
    #[error("invalid patch format of retainKeys: {0}")]
    InvalidRetainKeys(String),
    /// A value has another JSON type than the algorithm needs at that point (e.g. a
    /// `$setElementOrder` value that is not a list, or a scalar in a list merged by key).
    #[error("expected a {expected}, but received a {actual}")]
    WrongType {
        /// The JSON type needed.
        expected: &'static str,
        /// The JSON type found.
        actual: &'static str,
    },
    /// A list whose elements are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A list whose elements (live and patch together) are not all of one JSON type.
    #[error("list element types are not identical in field {field:?}")]
    MixedElementTypes {
        /// The JSON name of the list field.
        field: String,
    },
}

impl Error {
    /// The HTTP status the upstream apiserver answers with for this error: 400 for malformed
    /// directives and documents, 415 for kinds without patch metadata, 422 for lists of lists,
    /// and 500 for the rest (upstream returns those as plain errors).
    pub fn status_code(&self) -> u16 {
        match self {
            Error::UnsupportedKind(_) => 415,
            Error::PatchNotObject
            | Error::InvalidSetElementOrder(_)
            | Error::InvalidDeleteFromPrimitiveList(_)
            | Error::InvalidRetainKeys(_) => 400,
            Error::ListOfLists => 422,
            Error::OriginalNotObject
            | Error::InvalidDirective { .. }
            | Error::MissingMergeKey { .. }
            | Error::MergeKeyRequired { .. }
            | Error::SetElementOrderMismatch { .. }
            | Error::WrongType { .. }
            | Error::MixedElementTypes { .. } => 500,
        }
    }
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// Patch metadata
// ---------------------------------------------------------------------------------------------

/// How a field is patched: the `patchStrategy` / `patchMergeKey` struct tags of the Go types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// No tag. Objects merge key by key; lists are replaced whole by the patch's list.
    Plain,
    /// `patchStrategy:"replace"`: the patch value replaces the field whole, objects included.
    /// None of the 1.33 fields modelled here carries it; kept so the table can express it.
    #[allow(dead_code)]
    Replace,
    /// `patchStrategy:"retainKeys"` on an object-valued field. This only tells clients to send
    /// `$retainKeys`; applying a patch honours `$retainKeys` wherever it appears, so the field
    /// otherwise merges like [`Strategy::Plain`].
    RetainKeys,
    /// `patchStrategy:"merge"` on a list of scalars: union; `$deleteFromPrimitiveList` removes.
    MergeScalars,
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged by that key.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge,retainKeys"` with `patchMergeKey`.
    MergeByKeyRetainKeys(&'static str),
}

impl Strategy {
    fn merge_key(self) -> Option<&'static str> {
        match self {
            Strategy::MergeByKey(key) | Strategy::MergeByKeyRetainKeys(key) => Some(key),
            _ => None,
        }
    }

    fn merges_lists(self) -> bool {
        matches!(
            self,
            Strategy::MergeScalars | Strategy::MergeByKey(_) | Strategy::MergeByKeyRetainKeys(_)
        )
    }
}

/// One row of the patch metadata table.
struct FieldSpec {
    /// The Go type (for a top-level object: its kind) that owns the field.
    owner: &'static str,
    /// The JSON name of the field.
    field: &'static str,
    /// The type of the field's value (of each element, for a list), naming the `owner` of
    /// further rows; `""` when nothing below the field needs metadata.
    ty: &'static str,
    /// How the field is patched.
    strategy: Strategy,
}

const fn f(
    owner: &'static str,
    field: &'static str,
    ty: &'static str,
    strategy: Strategy,
) -> FieldSpec {
    FieldSpec {
        owner,
        field,
        ty,
        strategy,
    }
}

use Strategy::{MergeByKey, MergeByKeyRetainKeys, MergeScalars, Plain, RetainKeys};

/// Kinds [`apply`] accepts; each is the `owner` of its top-level rows in [`FIELDS`].
const KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Service",
    "Node",
    "Namespace",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Event",
    "Lease",
    "ServiceAccount",
];

/// Patch metadata, from the struct tags of k8s.io/api core/v1, apps/v1, batch/v1 and
/// k8s.io/apimachinery meta/v1 at Kubernetes 1.33.
///
/// Only fields that carry a tag, or lead to one, need a row; rows with [`Plain`] for lists
/// are there to document that the list is replaced whole. To extend: add the kind to
/// [`KINDS`] and rows from it down to every tagged field.
const FIELDS: &[FieldSpec] = &[
    // ---- top-level kinds ----
    f("Pod", "metadata", "ObjectMeta", Plain),
    f("Pod", "spec", "PodSpec", Plain),
    f("Pod", "status", "PodStatus", Plain),
    f("PodTemplate", "metadata", "ObjectMeta", Plain),
    f("PodTemplate", "template", "PodTemplateSpec", Plain),
    f("Deployment", "metadata", "ObjectMeta", Plain),
    f("Deployment", "spec", "DeploymentSpec", Plain),
    f("Deployment", "status", "DeploymentStatus", Plain),
    f("ReplicaSet", "metadata", "ObjectMeta", Plain),
    f("ReplicaSet", "spec", "ReplicaSetSpec", Plain),
    f("ReplicaSet", "status", "ReplicaSetStatus", Plain),
    f("StatefulSet", "metadata", "ObjectMeta", Plain),
    f("StatefulSet", "spec", "StatefulSetSpec", Plain),
    f("StatefulSet", "status", "StatefulSetStatus", Plain),
    f("DaemonSet", "metadata", "ObjectMeta", Plain),
    f("DaemonSet", "spec", "DaemonSetSpec", Plain),
    f("DaemonSet", "status", "DaemonSetStatus", Plain),
    f("ReplicationController", "metadata", "ObjectMeta", Plain),
    f(
        "ReplicationController",
        "spec",
        "ReplicationControllerSpec",
        Plain,
    ),
    f(
        "ReplicationController",
        "status",
        "ReplicationControllerStatus",
        Plain,
    ),
    f("Job", "metadata", "ObjectMeta", Plain),
    f("Job", "spec", "JobSpec", Plain),
    f("Job", "status", "JobStatus", Plain),
    f("CronJob", "metadata", "ObjectMeta", Plain),
    f("CronJob", "spec", "CronJobSpec", Plain),
    f("Service", "metadata", "ObjectMeta", Plain),
    f("Service", "spec", "ServiceSpec", Plain),
    f("Service", "status", "ServiceStatus", Plain),
    f("Node", "metadata", "ObjectMeta", Plain),
    f("Node", "spec", "NodeSpec", Plain),
    f("Node", "status", "NodeStatus", Plain),
    f("Namespace", "metadata", "ObjectMeta", Plain),
    f("Namespace", "status", "NamespaceStatus", Plain),
    f("ConfigMap", "metadata", "ObjectMeta", Plain),
    f("Secret", "metadata", "ObjectMeta", Plain),
    f("Endpoints", "metadata", "ObjectMeta", Plain),
    f("Endpoints", "subsets", "", Plain),
    f("Event", "metadata", "ObjectMeta", Plain),
    f("Lease", "metadata", "ObjectMeta", Plain),
    f("ServiceAccount", "metadata", "ObjectMeta", Plain),
    f("ServiceAccount", "secrets", "", MergeByKey("name")),
    f("ServiceAccount", "imagePullSecrets", "", Plain),
    // ---- meta/v1 ObjectMeta ----
    f("ObjectMeta", "ownerReferences", "", MergeByKey("uid")),
    f("ObjectMeta", "finalizers", "", MergeScalars),
    // ---- pod templates ----
    f("PodTemplateSpec", "metadata", "ObjectMeta", Plain),
    f("PodTemplateSpec", "spec", "PodSpec", Plain),
    f("DeploymentSpec", "template", "PodTemplateSpec", Plain),
    f("DeploymentSpec", "strategy", "", RetainKeys),
    f("ReplicaSetSpec", "template", "PodTemplateSpec", Plain),
    f("StatefulSetSpec", "template", "PodTemplateSpec", Plain),
    f("DaemonSetSpec", "template", "PodTemplateSpec", Plain),
    f(
        "ReplicationControllerSpec",
        "template",
        "PodTemplateSpec",
        Plain,
    ),
    f("JobSpec", "template", "PodTemplateSpec", Plain),
    f("CronJobSpec", "jobTemplate", "JobTemplateSpec", Plain),
    f("JobTemplateSpec", "metadata", "ObjectMeta", Plain),
    f("JobTemplateSpec", "spec", "JobSpec", Plain),
    // ---- workload statuses ----
    f("DeploymentStatus", "conditions", "", MergeByKey("type")),
    f("ReplicaSetStatus", "conditions", "", MergeByKey("type")),
    f("StatefulSetStatus", "conditions", "", MergeByKey("type")),
    f("DaemonSetStatus", "conditions", "", MergeByKey("type")),
    f(
        "ReplicationControllerStatus",
        "conditions",
        "",
        MergeByKey("type"),
    ),
    f("JobStatus", "conditions", "", MergeByKey("type")),
    // ---- core/v1 PodSpec ----
    f("PodSpec", "volumes", "", MergeByKeyRetainKeys("name")),
    f("PodSpec", "initContainers", "Container", MergeByKey("name")),
    f("PodSpec", "containers", "Container", MergeByKey("name")),
    // EphemeralContainerCommon carries the same tagged fields as Container.
    f(
        "PodSpec",
        "ephemeralContainers",
        "Container",
        MergeByKey("name"),
    ),
    f("PodSpec", "imagePullSecrets", "", MergeByKey("name")),
    f("PodSpec", "hostAliases", "", MergeByKey("ip")),
    f(
        "PodSpec",
        "topologySpreadConstraints",
        "",
        MergeByKey("topologyKey"),
    ),
    f("PodSpec", "schedulingGates", "", MergeByKey("name")),
    f(
        "PodSpec",
        "resourceClaims",
        "",
        MergeByKeyRetainKeys("name"),
    ),
    f("PodSpec", "tolerations", "", Plain),
    f("PodSpec", "readinessGates", "", Plain),
    // ---- core/v1 Container ----
    f("Container", "ports", "", MergeByKey("containerPort")),
    f("Container", "env", "", MergeByKey("name")),
    f("Container", "volumeMounts", "", MergeByKey("mountPath")),
    f("Container", "volumeDevices", "", MergeByKey("devicePath")),
    f("Container", "envFrom", "", Plain),
    f("Container", "resizePolicy", "", Plain),
    // ---- core/v1 PodStatus ----
    f("PodStatus", "conditions", "", MergeByKey("type")),
    f("PodStatus", "hostIPs", "", MergeByKey("ip")),
    f("PodStatus", "podIPs", "", MergeByKey("ip")),
    f(
        "PodStatus",
        "resourceClaimStatuses",
        "",
        MergeByKeyRetainKeys("name"),
    ),
    // The status lists are replaced whole, so ContainerStatus's own tags never come into play;
    // they are listed for completeness.
    f("PodStatus", "containerStatuses", "ContainerStatus", Plain),
    f(
        "PodStatus",
        "initContainerStatuses",
        "ContainerStatus",
        Plain,
    ),
    f(
        "PodStatus",
        "ephemeralContainerStatuses",
        "ContainerStatus",
        Plain,
    ),
    f(
        "ContainerStatus",
        "volumeMounts",
        "",
        MergeByKey("mountPath"),
    ),
    f(
        "ContainerStatus",
        "allocatedResourcesStatus",
        "",
        MergeByKey("name"),
    ),
    // ---- core/v1 Service ----
    // Upstream keys service ports by `port` alone for strategic merge patch (server-side
    // apply uses port+protocol).
    f("ServiceSpec", "ports", "", MergeByKey("port")),
    f("ServiceStatus", "conditions", "", MergeByKey("type")),
    // ---- core/v1 Node ----
    f("NodeSpec", "podCIDRs", "", MergeScalars),
    f("NodeSpec", "taints", "", Plain),
    f("NodeStatus", "conditions", "", MergeByKey("type")),
    f("NodeStatus", "addresses", "", MergeByKey("type")),
    // ---- core/v1 Namespace ----
    f("NamespaceStatus", "conditions", "", MergeByKey("type")),
];

/// A position in the metadata table: the Go type of the object being merged (`""` = none).
#[derive(Debug, Clone, Copy)]
struct Schema(&'static str);

const UNTYPED: Schema = Schema("");

impl Schema {
    /// The type and strategy of field `name` of this type.
    fn field(self, name: &str) -> (Schema, Strategy) {
        if self.0.is_empty() {
            return (UNTYPED, Plain);
        }
        FIELDS
            .iter()
            .find(|spec| spec.owner == self.0 && spec.field == name)
            .map_or((UNTYPED, Plain), |spec| (Schema(spec.ty), spec.strategy))
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The patch metadata as OpenAPI extensions: `(Go type, field, x-kubernetes-patch-strategy,
/// x-kubernetes-patch-merge-key)` for every tagged field, so published schemas tell clients
/// (kubectl computes apply patches from them) what this module applies.
pub fn openapi_extensions() -> impl Iterator<
    Item = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    ),
> {
    FIELDS.iter().filter_map(|spec| {
        let (strategy, key) = match spec.strategy {
            Plain => return None,
            Strategy::Replace => ("replace", None),
            RetainKeys => ("retainKeys", None),
            MergeScalars => ("merge", None),
            MergeByKey(k) => ("merge", Some(k)),
            MergeByKeyRetainKeys(k) => ("merge,retainKeys", Some(k)),
        };
        Some((spec.owner, spec.field, strategy, key))
    })
}

/// Whether [`apply`] has patch metadata for `kind`.
pub fn supports_kind(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// Apply a strategic merge patch to `original` for an object of the given kind ("Pod",
/// "Deployment", "ReplicaSet", "Service", "Node", "ConfigMap", "Secret", "Namespace",
/// "Endpoints", "Event", "Lease", "ServiceAccount"; also "StatefulSet", "DaemonSet",
/// "ReplicationController", "Job", "CronJob", "PodTemplate"). Returns the patched object.
pub fn apply(kind: &str, original: &Value, patch: &Value) -> Result<Value> {
    let root = KINDS
        .iter()
        .copied()
        .find(|known| *known == kind)
        .ok_or_else(|| Error::UnsupportedKind(kind.to_owned()))?;
    let original = original.as_object().ok_or(Error::OriginalNotObject)?;
    let patch = patch.as_object().ok_or(Error::PatchNotObject)?;
    merge_map(original.clone(), patch, Schema(root)).map(Value::Object)
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

/// Merge the patch object `patch` into the live object `original` of type `schema`.
fn merge_map(mut original: Object, patch: &Object, schema: Schema) -> Result<Object> {
    if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => Ok(sanitize_object(patch)),
            Some("delete") => Ok(Object::new()),
            _ => Err(Error::InvalidDirective {
                directive: directive.to_string(),
            }),
        };
    }

    apply_retain_keys(&mut original, patch)?;
    let ordered = apply_set_element_order(&mut original, patch, schema)?;

    // Upstream walks the patch in Go map order, i.e. at random. Ordinary fields go first here
    // and deletion lists after, which is what a client sending both for one list intends.
    let mut deletion_lists = Vec::new();
    for (key, value) in patch {
        if key.starts_with('$') {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = directive_target(key, DELETE_FROM_PRIMITIVE_LIST)
                    .ok_or_else(|| Error::InvalidDeleteFromPrimitiveList(key.clone()))?;
                deletion_lists.push((field, value));
            }
            // `$retainKeys` and `$setElementOrder/...` are handled above. Any other `$...` key
            // names no field of a Kubernetes type; the typed decode upstream drops it.
            continue;
        }
        if ordered.iter().any(|done| done == key) {
            continue;
        }
        merge_field(&mut original, key, value, schema, false)?;
    }
    for (field, value) in deletion_lists {
        merge_field(&mut original, field, value, schema, true)?;
    }
    Ok(original)
}

/// Merge one patch entry into `original`. With `deletion_list`, `value` is the content of
/// `$deleteFromPrimitiveList/<key>`.
fn merge_field(
    original: &mut Object,
    key: &str,
    value: &Value,
    schema: Schema,
    deletion_list: bool,
) -> Result<()> {
    if value.is_null() {
        remove_key(original, key);
        return Ok(());
    }
    let live_kind = original.get(key).map(JsonKind::of);
    if live_kind != Some(JsonKind::of(value)) {
        // Absent from the live object, or of another JSON type: take the patch value, minus
        // its directives and nulls. A deletion list never adds anything.
        if !deletion_list {
            match clean_added(value) {
                Some(cleaned) => {
                    original.insert(key.to_owned(), cleaned);
                }
                None => remove_key(original, key),
            }
        }
        return Ok(());
    }

    let (field_schema, strategy) = schema.field(key);
    let Some(live) = original.get_mut(key) else {
        return Ok(());
    };
    match (live, value) {
        (Value::Object(live), Value::Object(patch)) => {
            let taken = std::mem::take(live);
            *live = if strategy == Strategy::Replace {
                sanitize_object(patch)
            } else {
                merge_map(taken, patch, field_schema)?
            };
        }
        (Value::Array(live), Value::Array(patch)) => {
            let taken = std::mem::take(live);
            *live =
                merge_list_field(taken, patch, field_schema, strategy, deletion_list, key)?.merged;
        }
        (live, patch) => *live = patch.clone(),
    }
    Ok(())
}

/// Handle `$retainKeys`: check that the patch sets no field it does not name, then drop every
/// live key it does not name.
fn apply_retain_keys(original: &mut Object, patch: &Object) -> Result<()> {
    let Some(retain) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let retain = retain
        .as_array()
        .ok_or_else(|| Error::InvalidRetainKeys("$retainKeys must be a list".to_owned()))?;
    let keep = |key: &str| retain.iter().any(|name| name.as_str() == Some(key));
    for (key, value) in patch {
        if value.is_null()
            || key == RETAIN_KEYS
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep(key.as_str()) {
            return Err(Error::InvalidRetainKeys(format!(
                "the patch sets {key:?}, which $retainKeys does not list"
            )));
        }
    }
    original.retain(|key, _| keep(key.as_str()));
    Ok(())
}

/// Handle every `$setElementOrder/<field>` of `patch`: merge the field's patch list (if any)
/// into the live list, then order the result. Returns the fields done, which the caller skips.
fn apply_set_element_order(
    original: &mut Object,
    patch: &Object,
    schema: Schema,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for (key, order) in patch {
        if !key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        let field = directive_target(key, SET_ELEMENT_ORDER).ok_or_else(|| {
            Error::InvalidSetElementOrder(format!("malformed directive key {key:?}"))
        })?;
        let order = as_list(order)?;

        // Upstream never sees an empty or null live list (the typed object omits it), so
        // those count as absent.
        let live: Option<&Vec<Value>> = match original.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) if list.is_empty() => None,
            Some(other) => Some(as_list(other)?),
        };
        let patch_list: Option<&Vec<Value>> = match patch.get(field) {
            None => None,
            Some(other) => Some(as_list(other)?),
        };

        let (field_schema, strategy) = schema.field(field);
        let merge_key = strategy.merge_key();
        validate_against_order(
            patch_list.map_or(&[][..], |list| list.as_slice()),
            order,
            merge_key,
        )?;

        let (merged, server_view) = match (live, patch_list) {
            (None, None) => continue,
            (Some(live), None) => (live.clone(), live.clone()),
            (None, Some(list)) => (list.iter().filter_map(clean_added).collect(), Vec::new()),
            (Some(live), Some(list)) => {
                let out =
                    merge_list_field(live.clone(), list, field_schema, strategy, false, field)?;
                (out.merged, out.server_view)
            }
        };

        let element_kind = element_kind(
            &[
                live.map_or(&[][..], |list| list.as_slice()),
                patch_list.map_or(&[][..], |list| list.as_slice()),
            ],
            field,
        )?;
        let result = match element_kind {
            // Nothing to order (upstream would refuse an order for a list with no elements).
            None => merged,
            Some(kind) => {
                let key = match (kind == JsonKind::Object, merge_key) {
                    (true, Some(key)) => Some(key),
                    (true, None) => {
                        return Err(Error::MergeKeyRequired {
                            field: field.to_owned(),
                        })
                    }
                    (false, None) => None,
                    (false, Some(_)) => {
                        return Err(Error::WrongType {
                            expected: "object",
                            actual: kind.name(),
                        })
                    }
                };
                let (in_order, server_only) = partition(merged, order, key)?;
                normalize_element_order(in_order, server_only, order, &server_view, key)?
            }
        };
        original.insert(field.to_owned(), Value::Array(result));
        done.push(field.to_owned());
    }
    Ok(done)
}

/// Check that the patch list (deletions and other directive elements aside) holds only
/// elements of `order`, in the same relative order.
fn validate_against_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch_list.len());
    for element in patch_list {
        if merge_key.is_some() {
            let object = element
                .as_object()
                .ok_or_else(|| wrong_type("object", element))?;
            if object.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        kept.push(element);
    }
    let (mut in_patch, mut in_order) = (0, 0);
    while in_patch < kept.len() && in_order < order.len() {
        if kept[in_patch].get(PATCH_DIRECTIVE).is_some() {
            in_patch += 1;
            continue;
        }
        if same_element(kept[in_patch], &order[in_order], merge_key)? {
            in_patch += 1;
        }
        in_order += 1;
    }
    if in_patch < kept.len() && in_order >= order.len() {
        return Err(Error::SetElementOrderMismatch {
            patch: Value::Array(patch_list.to_vec()).to_string(),
            order: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

/// Whether two list elements are the same: equal scalars, or objects with equal merge keys.
fn same_element(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    let left_key = merge_key_of(left, key)?;
    let right_key = merge_key_of(right, key)?;
    Ok(left_key == right_key)
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/// A merged list, with the live list as the upstream code sees it afterwards.
struct ListMerge {
    merged: Vec<Value>,
    /// The live list after upstream's in-place edits (see [`merge_list`]); `$setElementOrder`
    /// orders server-only elements by it.
    server_view: Vec<Value>,
}

/// Merge a patch list into a live list according to the field's strategy.
fn merge_list_field(
    live: Vec<Value>,
    patch: &[Value],
    schema: Schema,
    strategy: Strategy,
    deletion_list: bool,
    field: &str,
) -> Result<ListMerge> {
    if strategy.merges_lists() || deletion_list {
        merge_list(
            live,
            patch,
            schema,
            strategy.merge_key(),
            deletion_list,
            field,
        )
    } else {
        Ok(ListMerge {
            merged: patch.iter().map(sanitize).collect(),
            server_view: live,
        })
    }
}

/// Merge `patch` into the live list `live` (strategy merge, or a deletion list).
///
/// Upstream edits the live Go slice in place: removing an element shifts the rest left inside
/// the same storage (leaving the last slot as it was) and appending fills the freed slots.
/// `$setElementOrder` then orders server-only elements by that edited storage, not by the
/// untouched live list, and the upstream test vectors depend on it; `server_view` reproduces it.
fn merge_list(
    live: Vec<Value>,
    patch: &[Value],
    schema: Schema,
    merge_key: Option<&'static str>,
    deletion_list: bool,
    field: &str,
) -> Result<ListMerge> {
    if live.is_empty() && patch.is_empty() {
        return Ok(ListMerge {
            merged: Vec::new(),
            server_view: Vec::new(),
        });
    }
    let kind = element_kind(&[live.as_slice(), patch], field)?;

    if kind != Some(JsonKind::Object) {
        if deletion_list {
            let merged = live
                .iter()
                .filter(|value| !patch.contains(value))
                .cloned()
                .collect();
            return Ok(ListMerge {
                merged,
                server_view: live,
            });
        }
        if merge_key.is_some() {
            let actual = kind.map_or("null", JsonKind::name);
            return Err(Error::WrongType {
                expected: "object",
                actual,
            });
        }
        let mut merged: Vec<Value> = Vec::with_capacity(live.len() + patch.len());
        for value in live.iter().chain(patch) {
            if !merged.contains(value) {
                merged.push(value.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, patch, None)?;
        let merged = normalize_element_order(in_patch, server_only, patch, &live, None)?;
        return Ok(ListMerge {
            merged,
            server_view: live,
        });
    }

    let Some(key) = merge_key else {
        return Err(Error::MergeKeyRequired {
            field: field.to_owned(),
        });
    };

    // `storage` is the live slice's storage, its first `len` slots the live list.
    let live_len = live.len();
    let mut storage = live;
    let mut len = live_len;
    let mut replace = false;
    let mut rest: Vec<&Value> = Vec::with_capacity(patch.len());
    for element in patch {
        let object = element
            .as_object()
            .ok_or_else(|| wrong_type("object", element))?;
        let Some(directive) = object.get(PATCH_DIRECTIVE) else {
            rest.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let wanted = object.get(key).ok_or_else(|| missing_key(key, element))?;
                while let Some(at) = find_by_key(&storage[..len], key, wanted)? {
                    for slot in at..len - 1 {
                        storage[slot] = storage[slot + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some("replace") => replace = true,
            _ => {
                return Err(Error::InvalidDirective {
                    directive: directive.to_string(),
                })
            }
        }
    }

    let (mut working, rest): (Vec<Value>, Vec<&Value>) = if replace {
        (
            rest.iter().map(|element| sanitize(element)).collect(),
            Vec::<&Value>::new(),
        )
    } else {
        (storage[..len].to_vec(), rest)
    };
    let server_order = working.clone();

    let mut filled = len;
    for element in &rest {
        let Some(object) = element.as_object() else {
            return Err(wrong_type("object", element));
        };
        let wanted = object.get(key).ok_or_else(|| missing_key(key, element))?;
        match find_by_key(&working, key, wanted)? {
            Some(at) => {
                let live_element = match std::mem::take(&mut working[at]) {
                    Value::Object(live_element) => live_element,
                    other => return Err(wrong_type("object", &other)),
                };
                working[at] = Value::Object(merge_map(live_element, object, schema)?);
            }
            None => {
                let added = sanitize(element);
                if !replace && filled < live_len {
                    storage[filled] = added.clone();
                    filled += 1;
                }
                working.push(added);
            }
        }
    }

    let order: Vec<Value> = rest.iter().map(|element| (*element).clone()).collect();
    let (in_patch, server_only) = partition(working, &order, Some(key))?;
    let merged = normalize_element_order(in_patch, server_only, &order, &server_order, Some(key))?;
    Ok(ListMerge {
        merged,
        server_view: storage,
    })
}

/// Order a merged list: the elements named by the patch (or order list) in that order, the
/// server-only ones in live order, interleaved where the live order relates them.
fn normalize_element_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>> {
    let in_patch = sort_by_order(in_patch, patch_order, key)?;
    let server_only = sort_by_order(server_only, server_order, key)?;
    Ok(interleave(server_only, in_patch, server_order, key))
}

/// Stable sort of `items` by their first position in `order` (absent ones last).
fn sort_by_order(items: Vec<Value>, order: &[Value], key: Option<&str>) -> Result<Vec<Value>> {
    if let Some(key) = key {
        for value in items.iter().chain(order) {
            merge_key_of(value, key)?;
        }
    }
    let mut ranked: Vec<(usize, Value)> = items
        .into_iter()
        .map(|value| (position(order, &value, key).unwrap_or(usize::MAX), value))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    Ok(ranked.into_iter().map(|(_, value)| value).collect())
}

/// Merge the sorted server-only list into the sorted patch list: at each step the next
/// server-only element goes first only if both it and the next patch element are in the live
/// list and it comes earlier there; otherwise the patch element goes first.
fn interleave(
    server_only: Vec<Value>,
    in_patch: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + in_patch.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, key), position(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

/// Split `merged` into the elements present in `by` and the others, keeping relative order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for value in merged {
        let present = match key {
            None => by.contains(&value),
            Some(key) => {
                let wanted = merge_key_of(&value, key)?;
                find_by_key(by, key, wanted)?.is_some()
            }
        };
        if present {
            inside.push(value);
        } else {
            outside.push(value);
        }
    }
    Ok((inside, outside))
}

/// First position of `item` in `list`: by merge key for objects, by value for scalars.
fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        Some(key) => {
            let wanted = item.get(key);
            list.iter().position(|value| value.get(key) == wanted)
        }
        None => list.iter().position(|value| value == item),
    }
}

/// Index of the first object of `list` whose `key` equals `wanted`.
fn find_by_key(list: &[Value], key: &str, wanted: &Value) -> Result<Option<usize>> {
    for (at, value) in list.iter().enumerate() {
        let object = value
            .as_object()
            .ok_or_else(|| wrong_type("object", value))?;
        if object.get(key) == Some(wanted) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// The merge key value of a list element, which must be an object holding it.
fn merge_key_of<'v>(value: &'v Value, key: &str) -> Result<&'v Value> {
    let object = value
        .as_object()
        .ok_or_else(|| wrong_type("object", value))?;
    object.get(key).ok_or_else(|| missing_key(key, value))
}

/// The common JSON type of the elements of `lists`, `None` when they hold none.
fn element_kind(lists: &[&[Value]], field: &str) -> Result<Option<JsonKind>> {
    let mut seen: Option<JsonKind> = None;
    for value in lists.iter().flat_map(|list| list.iter()) {
        let kind = JsonKind::of(value);
        match seen {
            None if kind == JsonKind::Array => return Err(Error::ListOfLists),
            None => seen = Some(kind),
            Some(previous) if previous != kind => {
                return Err(Error::MixedElementTypes {
                    field: field.to_owned(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(seen)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The JSON type of a value (upstream compares Go dynamic types the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    fn of(value: &Value) -> JsonKind {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }

    fn name(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "boolean",
            JsonKind::Number => "number",
            JsonKind::String => "string",
            JsonKind::Array => "list",
            JsonKind::Object => "object",
        }
    }
}

fn wrong_type(expected: &'static str, value: &Value) -> Error {
    Error::WrongType {
        expected,
        actual: JsonKind::of(value).name(),
    }
}

fn missing_key(key: &str, element: &Value) -> Error {
    Error::MissingMergeKey {
        key: key.to_owned(),
        element: element.to_string(),
    }
}

fn as_list(value: &Value) -> Result<&Vec<Value>> {
    value.as_array().ok_or_else(|| wrong_type("list", value))
}

/// `<prefix>/<field>` -> `<field>`.
fn directive_target<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?.strip_prefix('/')
}

/// Remove `key`, keeping the order of the other keys.
fn remove_key(object: &mut Object, key: &str) {
    object.retain(|existing, _| existing != key);
}

/// Patch content that lands where the live object had nothing (or a value of another type):
/// `null` entries are dropped, objects carrying `$patch` are dropped whole (so is the list
/// element or field holding one), and other directive keys are stripped.
/// `None` when the value itself is dropped.
fn clean_added(value: &Value) -> Option<Value> {
    match value {
        Value::Object(object) => {
            if object
                .get(PATCH_DIRECTIVE)
                .is_some_and(|directive| !directive.is_null())
            {
                return None;
            }
            let mut out = Object::new();
            for (key, value) in object {
                if value.is_null() || key.starts_with('$') {
                    continue;
                }
                if let Some(value) = clean_added(value) {
                    out.insert(key.clone(), value);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(list) => Some(Value::Array(list.iter().filter_map(clean_added).collect())),
        other => Some(other.clone()),
    }
}

/// Patch content taken as it is (replacing lists, appended list elements, `$patch: replace`):
/// strip directive keys and `null` entries, which the typed decode drops upstream.
fn sanitize(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(sanitize_object(object)),
        Value::Array(list) => Value::Array(list.iter().map(sanitize).collect()),
        other => other.clone(),
    }
}

fn sanitize_object(object: &Object) -> Object {
    object
        .iter()
        .filter(|(key, value)| !key.starts_with('$') && !value.is_null())
        .map(|(key, value)| (key.clone(), sanitize(value)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_no_directives(value: &Value) {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    assert!(
                        !key.starts_with('$'),
                        "directive key {key} leaked into {value}"
                    );
                    assert_no_directives(value);
                }
            }
            Value::Array(list) => list.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn patched(kind: &str, original: Value, patch: Value) -> Value {
        let out = apply(kind, &original, &patch).expect("patch applies");
        assert_no_directives(&out);
        out
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                            },
                            {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}
                        ],
                        "tolerations": [
                            {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
                        ]
                    }
                }
            }
        })
    }

    fn pod_spec(value: &Value) -> &Value {
        &value["spec"]["template"]["spec"]
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|element| element["name"].as_str().expect("a name"))
            .collect()
    }

    #[test]
    fn image_change_with_set_element_order() {
        // What `kubectl apply` sends after the image in the manifest changes.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.26", "name": "web"}]
        }}}});
        let out = patched("Deployment", deployment(), patch);
        let containers = &pod_spec(&out)["containers"];
        assert_eq!(names(containers), ["web", "sidecar"]);
        assert_eq!(containers[0]["image"], "nginx:1.26");
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(containers[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            containers[1],
            deployment()["spec"]["template"]["spec"]["containers"][1]
        );
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn adding_env_var_in_the_middle() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
                "env": [{"name": "C", "value": "3"}],
                "name": "web"
            }]
        }}}});
        let out = patched("Deployment", deployment(), patch);
        let env = &pod_spec(&out)["containers"][0]["env"];
        assert_eq!(
            env,
            &json!([
                {"name": "A", "value": "1"},
                {"name": "C", "value": "3"},
                {"name": "B", "value": "2"}
            ])
        );
    }

    #[test]
    fn changing_env_var_value_merges_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "B", "value": "20"}]}
        ]}}}});
        let out = patched("Deployment", deployment(), patch);
        let env = &pod_spec(&out)["containers"][0]["env"];
        // A is server-only and comes before B in the live list, so it stays first.
        assert_eq!(
            env,
            &json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}])
        );
    }

    #[test]
    fn new_elements_without_order_go_first() {
        // Upstream puts patch elements the live list lacks ahead of the server-only ones when
        // no $setElementOrder is sent (kubectl always sends one).
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "Z", "value": "26"}]}
        ]}}}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(
            names(&pod_spec(&out)["containers"][0]["env"]),
            ["Z", "A", "B"]
        );
    }

    #[test]
    fn deleting_a_container() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"$patch": "delete", "name": "sidecar"}]
        }}}});
        let out = patched("Deployment", deployment(), patch);
        let containers = &pod_spec(&out)["containers"];
        assert_eq!(names(containers), ["web"]);
        assert_eq!(containers[0]["image"], "nginx:1.25");
    }

    #[test]
    fn deleting_a_missing_element_is_a_no_op() {
        let patch = json!({"spec": {"template": {"spec": {
            "containers": [{"$patch": "delete", "name": "nope"}]
        }}}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(names(&pod_spec(&out)["containers"]), ["web", "sidecar"]);
    }

    #[test]
    fn null_deletes_a_label() {
        let patch = json!({"metadata": {"labels": {"tier": null, "track": "stable"}}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "track": "stable"})
        );
        // A null for a key that is not there is ignored, not stored.
        let out = patched(
            "ConfigMap",
            json!({"metadata": {"name": "c"}}),
            json!({"metadata": {"labels": {"x": null}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
    }

    #[test]
    fn tolerations_are_replaced_whole() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]}}}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(
            pod_spec(&out)["tolerations"],
            json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
        );
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "c"}], "tolerations": [{"key": "a", "operator": "Exists"}]}});
        let out = patched(
            "Pod",
            pod,
            json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
    }

    #[test]
    fn finalizers_union_order_and_delete() {
        let cm = json!({"metadata": {"name": "c", "finalizers": ["a", "b"]}});
        // Plain union: "c" is new and "a" named by the patch, so both go before server-only "b".
        let out = patched(
            "ConfigMap",
            cm.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        // What kubectl apply sends when a finalizer is added at the end.
        let out = patched(
            "ConfigMap",
            cm.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": ["a", "b", "c"], "finalizers": ["c"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        // And when one is removed.
        let out = patched(
            "ConfigMap",
            cm,
            json!({"metadata": {"$setElementOrder/finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn delete_from_primitive_list_never_adds() {
        let cm = json!({"metadata": {"name": "c"}});
        let out = patched(
            "ConfigMap",
            cm,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert!(out["metadata"].get("finalizers").is_none());
        // Lists without a merge strategy honour deletion lists too.
        let pod = json!({"spec": {"containers": [{"name": "c", "args": ["1", "2", "3"]}]}});
        let out = patched(
            "Pod",
            pod,
            json!({"spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["2"]}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["1", "3"]));
    }

    #[test]
    fn retain_keys_switches_strategy_to_recreate() {
        // kubectl apply, manifest changed from RollingUpdate (with parameters) to Recreate.
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "rollingUpdate": null,
            "type": "Recreate"
        }}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // rollingUpdate came from defaulting, so kubectl does not send a null for it.
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = patched("Deployment", deployment(), patch);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_rejects_fields_it_does_not_list() {
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1}
        }}});
        let err = apply("Deployment", &deployment(), &patch).unwrap_err();
        assert!(matches!(err, Error::InvalidRetainKeys(_)), "{err}");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn volume_source_switch_with_retain_keys() {
        let pod = json!({"spec": {
            "containers": [{"name": "c"}],
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "a"}}
            ]
        }});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/srv"}, "name": "data"}]
        }});
        let out = patched("Pod", pod, patch);
        assert_eq!(
            out["spec"]["volumes"],
            json!([
                {"name": "data", "hostPath": {"path": "/srv"}},
                {"name": "cfg", "configMap": {"name": "a"}}
            ])
        );
    }

    #[test]
    fn added_elements_lose_their_directives() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}, {"name": "new"}],
            "containers": [{
                "name": "new",
                "image": "redis",
                "$setElementOrder/env": [{"name": "X"}],
                "env": [{"name": "X", "value": "1"}],
                "command": null
            }],
            "$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"$retainKeys": ["emptyDir", "name"], "name": "v", "emptyDir": {}}]
        }}}});
        let out = patched("Deployment", deployment(), patch);
        let spec = pod_spec(&out);
        assert_eq!(names(&spec["containers"]), ["web", "sidecar", "new"]);
        assert_eq!(
            spec["containers"][2],
            json!({"name": "new", "image": "redis", "env": [{"name": "X", "value": "1"}]})
        );
        assert_eq!(spec["volumes"], json!([{"name": "v", "emptyDir": {}}]));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
            "ports": [{"port": 443, "targetPort": 9443}]
        }});
        let out = patched("Service", svc, patch);
        assert_eq!(
            out["spec"]["ports"][1],
            json!({"name": "https", "port": 443, "targetPort": 9443, "protocol": "TCP"})
        );
        assert_eq!(out["spec"]["ports"][0]["targetPort"], 8080);
    }

    #[test]
    fn node_status_conditions_merge_by_type_and_taints_replace() {
        let node = json!({
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "MemoryPressure", "status": "False"}
                ],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
            }
        });
        let patch = json!({
            "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"}]
            }
        });
        let out = patched("Node", node, patch);
        assert_eq!(
            out["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
        );
        assert_eq!(
            out["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}])
        );
    }

    #[test]
    fn endpoints_subsets_replace() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        let patch = json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]});
        let out = patched("Endpoints", ep, patch);
        assert_eq!(out["subsets"], json!([{"addresses": [{"ip": "10.0.0.2"}]}]));
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let rs = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "Deployment"}]}});
        let patch = json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}]}});
        let out = patched("ReplicaSet", rs, patch);
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "1", "name": "a", "kind": "Deployment", "controller": true}])
        );
    }

    // Vectors from the upstream test suite (results compared exactly, list order included).

    fn pod_with(names: &[(&str, Option<&str>)]) -> Value {
        let containers: Vec<Value> = names
            .iter()
            .map(|(name, image)| match image {
                Some(image) => json!({"name": name, "image": image}),
                None => json!({"name": name}),
            })
            .collect();
        json!({"spec": {"containers": containers}})
    }

    #[test]
    fn upstream_add_and_delete_with_order() {
        let pod = pod_with(&[("1", None), ("2", Some("b")), ("4", Some("c"))]);
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]
        }});
        let out = patched("Pod", pod, patch);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "2", "image": "b"}, {"name": "4", "image": "c"}, {"name": "3"}])
        );
    }

    #[test]
    fn upstream_order_with_server_only_items() {
        let pod = pod_with(&[
            ("1", None),
            ("2", Some("2")),
            ("9", None),
            ("3", Some("3")),
            ("4", Some("4")),
        ]);
        let patch = json!({"spec": {"$setElementOrder/containers": [
            {"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}
        ]}});
        let out = patched("Pod", pod, patch);
        assert_eq!(names(&out["spec"]["containers"]), ["2", "1", "9", "4", "3"]);

        let pod = pod_with(&[
            ("1", None),
            ("2", None),
            ("7", None),
            ("9", None),
            ("8", None),
            ("3", None),
            ("4", None),
        ]);
        let patch = json!({"spec": {"$setElementOrder/containers": [
            {"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}
        ]}});
        let out = patched("Pod", pod, patch);
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["2", "1", "7", "9", "8", "4", "3"]
        );
    }

    #[test]
    fn upstream_merge_scalars_with_order() {
        let node = json!({"spec": {"podCIDRs": ["1", "2", "4"]}});
        let patch =
            json!({"spec": {"$setElementOrder/podCIDRs": ["1", "2", "3"], "podCIDRs": ["3"]}});
        let out = patched("Node", node, patch);
        assert_eq!(out["spec"]["podCIDRs"], json!(["1", "2", "3", "4"]));
    }

    #[test]
    fn upstream_order_with_duplicates() {
        let node = json!({"spec": {"podCIDRs": ["1", "2", "3", "2", "4"]}});
        let patch = json!({"spec": {"$setElementOrder/podCIDRs": ["2", "1", "4", "3", "2"]}});
        let out = patched("Node", node, patch);
        assert_eq!(out["spec"]["podCIDRs"], json!(["2", "2", "1", "4", "3"]));
    }

    #[test]
    fn order_mismatch_is_rejected() {
        let pod = pod_with(&[("1", None), ("3", None), ("2", None)]);
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]
        }});
        let err = apply("Pod", &pod, &patch).unwrap_err();
        assert!(
            matches!(err, Error::SetElementOrderMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_merge_key_is_rejected() {
        let pod = pod_with(&[("1", Some("a"))]);
        let err = apply(
            "Pod",
            &pod,
            &json!({"spec": {"containers": [{"image": "b"}]}}),
        )
        .unwrap_err();
        assert!(matches!(err, Error::MissingMergeKey { .. }), "{err}");
    }

    #[test]
    fn list_replace_directive() {
        let pod = pod_with(&[("1", Some("a")), ("2", Some("b"))]);
        let patch =
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "3", "image": "c"}]}});
        let out = patched("Pod", pod, patch);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "3", "image": "c"}])
        );
    }

    #[test]
    fn map_replace_and_delete_directives() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "resources": {"$patch": "replace", "limits": {"memory": "1Gi"}}}]}});
        let out = patched("Pod", pod.clone(), patch);
        assert_eq!(
            out["spec"]["containers"][0]["resources"],
            json!({"limits": {"memory": "1Gi"}})
        );

        let patch =
            json!({"spec": {"containers": [{"name": "c", "resources": {"$patch": "delete"}}]}});
        let out = patched("Pod", pod, patch);
        assert_eq!(out["spec"]["containers"][0]["resources"], json!({}));

        // Upstream drops a field whose patch object carries `$patch` when the live object
        // does not have the field yet.
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let patch = json!({"spec": {"securityContext": {"$patch": "replace", "runAsUser": 1}}});
        let out = patched("Pod", pod, patch);
        assert!(out["spec"].get("securityContext").is_none());
    }

    #[test]
    fn bad_directive_and_bad_input() {
        let pod = pod_with(&[("1", None)]);
        let err = apply("Pod", &pod, &json!({"spec": {"$patch": "frobnicate"}})).unwrap_err();
        assert!(matches!(err, Error::InvalidDirective { .. }), "{err}");
        let err = apply(
            "Pod",
            &pod,
            &json!({"spec": {"containers": [{"name": "1", "$patch": "merge"}]}}),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidDirective { .. }), "{err}");
        let err = apply("Pod", &pod, &json!(["not", "an", "object"])).unwrap_err();
        assert!(matches!(err, Error::PatchNotObject));
        assert_eq!(err.status_code(), 400);
        let err = apply("Widget", &pod, &json!({})).unwrap_err();
        assert!(matches!(err, Error::UnsupportedKind(_)));
        assert_eq!(err.status_code(), 415);
        assert!(supports_kind("Lease") && !supports_kind("Widget"));
    }

    #[test]
    fn unmodelled_kinds_fields_are_plain() {
        // A Lease has no tagged fields: scalars replace, objects merge.
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
        let out = patched("Lease", lease, json!({"spec": {"holderIdentity": "b"}}));
        assert_eq!(
            out["spec"],
            json!({"holderIdentity": "b", "leaseDurationSeconds": 15})
        );
    }
}
