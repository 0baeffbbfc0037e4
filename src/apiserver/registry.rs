//! The registry of kinds: one table that drives routing, discovery, storage keys, admission
//! (defaulting and validation), status strategy and field selectors for every served resource.
//!
//! Adding a resource means adding one entry here (and, if it has defaults or validation, a
//! `Strategy` impl in `strategy.rs`); no handler is written per kind.

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::strategy::{self, Admitted, Operation};
use crate::store::Draft;

/// How `metadata.generation` moves on updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The kind has no generation.
    None,
    /// Starts at 1 and bumps when the spec changes.
    Spec,
    /// Starts at 1 and bumps when the spec or the annotations change (Deployments).
    SpecOrAnnotations,
    /// Starts at 1 and bumps when anything but the metadata changes, or the labels do
    /// (EndpointSlices, which have no spec).
    AllButMetadataOrLabels,
}

/// Admission for one kind: decode into the typed object, default, validate, re-encode.
pub type AdmitFn = fn(&Kind, Operation, Value, Option<&Value>) -> ApiResult<Admitted>;

/// One served resource.
#[derive(Debug)]
pub struct Kind {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name in URLs.
    pub resource: &'static str,
    /// Singular resource name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Verbs served on the main resource; others are refused with 405.
    pub verbs: &'static [&'static str],
    /// Subresources served (`status`, `scale`, `binding`, `eviction`, `token`).
    pub subresources: &'static [&'static str],
    /// The resource name in storage keys; kinds that share objects (core and events.k8s.io
    /// Events) share this.
    pub storage: &'static str,
    /// Generation policy.
    pub generation: Generation,
    /// Field labels accepted in field selectors besides metadata.name and metadata.namespace.
    pub field_labels: &'static [&'static str],
    /// Whether DELETE answers with the deleted object (pods) rather than a Success Status.
    pub delete_returns_object: bool,
    /// Admission.
    pub admit: AdmitFn,
    /// Conversion from the served form to the stored one (events.k8s.io/v1 -> core/v1).
    pub to_storage: Option<fn(Value) -> Value>,
    /// Conversion from the stored form to the served one.
    pub from_storage: Option<fn(&Value) -> Value>,
}

impl Kind {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as upstream error messages name resources.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `Pod` or `Deployment.apps`, as upstream Invalid messages name kinds.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The `<Kind>List` kind.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether the kind serves a subresource.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// Whether the main resource ignores status writes (the kind has a status subresource).
    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }

    /// The URL path of the kind's collection as OpenAPI documents name it, with a
    /// `{namespace}` parameter for namespaced kinds.
    pub fn collection_path(&self) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if self.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", self.resource)
        } else {
            format!("{base}/{}", self.resource)
        }
    }

    /// The storage key prefix for a namespace (or all namespaces).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/", self.storage, ns),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{}", self.prefix(namespace), name)
    }

    /// Convert a stored object into its served form.
    pub fn present(&self, stored: &Value) -> Option<Value> {
        self.from_storage.map(|f| f(stored))
    }

    /// The value of a selectable field in an object's attributes.
    pub fn field<'a>(&self, attrs: &'a crate::store::Attrs, field: &str) -> Option<&'a str> {
        super::selector::field_index(self, field)
            .and_then(|i| attrs.fields.get(i))
            .map(|v| &**v)
    }

    /// An admitted object, encoded for the store with the attributes its selectors match on.
    ///
    /// # Errors
    /// 500 if the value cannot be encoded (it always can: it came from JSON).
    pub fn draft(&self, value: Value) -> ApiResult<Draft> {
        let attrs = super::selector::attrs(self, &value);
        Draft::new(value, attrs).map_err(ApiError::internal)
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Every kind the apiserver serves.
pub static KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        resource: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: NAMESPACE_VERBS,
        subresources: &["status", "finalize"],
        storage: "namespaces",
        generation: Generation::None,
        field_labels: &["status.phase"],
        delete_returns_object: true,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Namespace>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &["status"],
        storage: "minions",
        generation: Generation::None,
        field_labels: &["spec.unschedulable"],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Node>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status", "binding", "eviction"],
        storage: "pods",
        generation: Generation::Spec,
        field_labels: POD_FIELDS,
        delete_returns_object: true,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Pod>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
        generation: Generation::None,
        field_labels: EVENT_FIELDS,
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Event>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        verbs: &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        subresources: &["status"],
        storage: "services/specs",
        generation: Generation::None,
        field_labels: &["spec.clusterIP", "spec.type"],
        delete_returns_object: true,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Service>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "services/endpoints",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Endpoints>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "componentstatuses",
        singular: "componentstatus",
        kind: "ComponentStatus",
        namespaced: false,
        short_names: &["cs"],
        categories: &[],
        verbs: &["get", "list"],
        subresources: &[],
        // Never stored: each request checks the components (see componentstatus.rs).
        storage: "componentstatuses",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::ComponentStatus>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "configmaps",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::ConfigMap>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "secrets",
        generation: Generation::None,
        field_labels: &["type"],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::Secret>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "",
        version: "v1",
        resource: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &["token"],
        storage: "serviceaccounts",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::core::v1::ServiceAccount>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "apps",
        version: "v1",
        resource: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status", "scale"],
        storage: "deployments",
        generation: Generation::SpecOrAnnotations,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::apps::v1::Deployment>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "apps",
        version: "v1",
        resource: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status", "scale"],
        storage: "replicasets",
        generation: Generation::Spec,
        field_labels: &["status.replicas"],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::apps::v1::ReplicaSet>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "apps",
        version: "v1",
        resource: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status"],
        storage: "daemonsets",
        generation: Generation::Spec,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::apps::v1::DaemonSet>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "apps",
        version: "v1",
        resource: "controllerrevisions",
        singular: "controllerrevision",
        kind: "ControllerRevision",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "controllerrevisions",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::apps::v1::ControllerRevision>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "batch",
        version: "v1",
        resource: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status"],
        storage: "jobs",
        generation: Generation::Spec,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::batch::v1::Job>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "scheduling.k8s.io",
        version: "v1",
        resource: "priorityclasses",
        singular: "priorityclass",
        kind: "PriorityClass",
        namespaced: false,
        short_names: &["pc"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "priorityclasses",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::scheduling::v1::PriorityClass>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        resource: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "leases",
        generation: Generation::None,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::coordination::v1::Lease>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        resource: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "endpointslices",
        generation: Generation::AllButMetadataOrLabels,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<k8s_openapi::api::discovery::v1::EndpointSlice>,
        to_storage: None,
        from_storage: None,
    },
    Kind {
        group: "events.k8s.io",
        version: "v1",
        resource: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
        generation: Generation::None,
        field_labels: EVENT_FIELDS,
        delete_returns_object: false,
        // Stored (and so admitted) as core/v1 Events; `to_storage` converts first.
        admit: strategy::admit::<k8s_openapi::api::core::v1::Event>,
        to_storage: Some(strategy::events_v1_to_core),
        from_storage: Some(strategy::core_event_to_v1),
    },
    // Custom resources are not served; the definitions are, read-only and empty, so clients
    // that look for CRDs (kubectl's validation of a kind it does not know) hear what a cluster
    // without any says, instead of a 404 that fails their whole request.
    Kind {
        group: "apiextensions.k8s.io",
        version: "v1",
        resource: "customresourcedefinitions",
        singular: "customresourcedefinition",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        verbs: &["get", "list", "watch"],
        subresources: &[],
        storage: "apiextensions.k8s.io/customresourcedefinitions",
        generation: Generation::Spec,
        field_labels: &[],
        delete_returns_object: false,
        admit: strategy::admit::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >,
        to_storage: None,
        from_storage: None,
    },
];

/// The order kube-apiserver lists its groups in (its group priorities), for those served.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
];

/// The API groups served, in discovery order (upstream's).
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for kind in KINDS {
        if !kind.group.is_empty() && !groups.contains(&kind.group) {
            groups.push(kind.group);
        }
    }
    groups.sort_by_key(|g| {
        GROUP_ORDER
            .iter()
            .position(|o| o == g)
            .unwrap_or(usize::MAX)
    });
    groups
}

/// The kinds of one group-version.
pub fn kinds_in<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static Kind> + 'a {
    KINDS
        .iter()
        .filter(move |k| k.group == group && k.version == version)
}

/// Look a resource up by group, version and plural name.
pub fn lookup(group: &str, version: &str, resource: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.resource == resource)
}

/// The kind whose objects live at storage `key` (for Events shared by two groups, the core
/// kind, the form they are stored in).
pub fn stored_at(key: &str) -> Option<&'static Kind> {
    let rest = key.strip_prefix("/registry/")?;
    KINDS
        .iter()
        .filter(|k| {
            rest.strip_prefix(k.storage)
                .is_some_and(|tail| tail.starts_with('/'))
        })
        .max_by_key(|k| (k.storage.len(), k.group.is_empty()))
}

/// What selectors match on for the object at storage `key`: what a store that keeps only the
/// objects (etcd) gives back with each one it reads.
pub fn stored_attrs(key: &str, value: &Value) -> crate::store::Attrs {
    match stored_at(key) {
        Some(kind) => super::selector::attrs(kind, value),
        None => crate::store::Attrs::default(),
    }
}

/// The core/v1 kind with this resource name (used internally, e.g. for namespaces).
pub fn core(resource: &str) -> &'static Kind {
    lookup("", "v1", resource).unwrap_or(&KINDS[0])
}
