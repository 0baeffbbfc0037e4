//! The write verbs that admit an object: create (generated names, ClusterIP allocation),
//! update, and patch and server-side apply on top of the same update.

use std::ops::ControlFlow::{self, Break};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde_json::{json, Value};

use crate::apiserver::body::decode_yaml;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::managed_fields::{self, ApplyError, Writer};
use crate::apiserver::patch::{apply_conflict_error, apply_patch, patch_names_resource_version};
use crate::apiserver::registry::{self, Generation, Kind};
use crate::apiserver::services::{self, NodePorts};
use crate::apiserver::strategy::Operation;
use crate::apiserver::{ApiServer, Cause};
use crate::clock::format_time;
use crate::store::{self, Object};

use super::subresource::scale_of;
use super::{again_on_conflict, retry_on_conflict};
use super::{
    changed, dry_run, field_manager, meta_mut, meta_str, query_flag, store_error, Query, Target,
};

/// The alphabet of generated name suffixes (upstream's `utilrand.String`).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How many times a generated name is retried on a clash (upstream 1.32+).
const GENERATE_NAME_RETRIES: usize = 8;

/// Whether a write records its field manager in `managedFields`.
#[derive(Debug, Clone, Copy)]
pub(in crate::apiserver) enum Record<'a> {
    /// An update through this subresource (empty: the main resource) by the request's field
    /// manager.
    Update(&'a str),
    /// Not recorded: server-side apply has recorded it, or the server writes on its own behalf
    /// (a binding, an eviction's condition), as upstream's storage writes are not.
    No,
}

/// The query of the apiserver's own writes (the initial namespaces, the `kubernetes` Service):
/// their field manager is `kube-apiserver`, as upstream's.
fn internal_query() -> Query {
    Query::from([("fieldManager".to_string(), "kube-apiserver".to_string())])
}

/// A generated name: the prefix (cut to leave room) and five characters of the upstream alphabet.
pub(in crate::apiserver) fn generate_name(base: &str) -> String {
    let base: String = base.chars().take(58).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// How `fieldValidation` treats unknown fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

fn field_validation(query: &Query) -> ApiResult<FieldValidation> {
    match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}; must be Ignore, Warn or Strict"
        ))),
    }
}

/// Apply the fieldValidation policy: an error for Strict, warnings for Warn.
fn check_unknown_fields(query: &Query, unknown: &[String]) -> ApiResult<Vec<String>> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let rendered: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match field_validation(query)? {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(rendered),
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            rendered.join(", ")
        ))),
    }
}

impl ApiServer {
    /// The response to a write: the object written, with a `Warning` header for each warning
    /// admission raised.
    fn written_response(
        &self,
        code: StatusCode,
        kind: &Kind,
        (written, warnings): (Arc<Object>, Vec<String>),
    ) -> Response {
        with_warnings(self.object_response(code, kind, &written), &warnings)
    }
}

pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

impl ApiServer {
    /// Create an object as the API would, without HTTP (the initial namespaces).
    pub(in crate::apiserver) async fn create_internal(
        &self,
        kind: &'static Kind,
        namespace: Option<String>,
        body: Value,
    ) -> ApiResult<Arc<Object>> {
        let target = Target {
            kind,
            namespace,
            name: None,
            subresource: None,
        };
        let (obj, _) = self
            .create_object(&target, body, &internal_query(), true)
            .await?;
        Ok(obj)
    }

    /// Read an object as the API would, without HTTP: `None` when it does not exist.
    pub(in crate::apiserver) async fn get_internal(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<Arc<Object>>> {
        self.store
            .get(&kind.key(namespace, name))
            .await
            .map_err(|e| store_error(kind, name, e))
    }

    /// Replace an object as a PUT would, without HTTP; the `current` version read before is the
    /// precondition (a conflict is a 409, as for a client).
    pub(in crate::apiserver) async fn update_internal(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        current: &Arc<Object>,
        body: Value,
    ) -> ApiResult<Arc<Object>> {
        let name = meta_str(&body, "name").unwrap_or_default().to_string();
        let target = Target {
            kind,
            namespace: namespace.map(String::from),
            name: Some(name.clone()),
            subresource: None,
        };
        let (written, _) = self
            .write_update(
                &target,
                &name,
                None,
                current,
                body,
                &internal_query(),
                Some(current.mod_revision),
                Record::Update(""),
            )
            .await?;
        Ok(written)
    }

    async fn check_namespace_accepts(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> ApiResult<()> {
        let ns_kind = registry::core("namespaces");
        let ns = self
            .store
            .get(&ns_kind.key(None, namespace))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::namespace_not_found(namespace))?;
        // Upstream's NamespaceLifecycle admission looks at the phase alone (deletion sets it).
        if ns_kind.field(&ns.attrs, "status.phase") == Some("Terminating") {
            return Err(ApiError::namespace_terminating(kind, name, namespace));
        }
        Ok(())
    }

    fn check_kind(kind: &Kind, obj: &Value) -> ApiResult<()> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let k = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if (!k.is_empty() && k != kind.kind)
            || (!api_version.is_empty() && api_version != kind.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
        Ok(())
    }

    /// Create an object; with `record`, its creator's fields are recorded as an update.
    async fn create_object(
        &self,
        target: &Target,
        mut obj: Value,
        query: &Query,
        record: bool,
    ) -> ApiResult<(Arc<Object>, Vec<String>)> {
        let kind = target.kind;
        Self::check_kind(kind, &obj)?;
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        if let Some(to_storage) = kind.to_storage {
            obj = to_storage(obj);
        }
        let namespace = if kind.namespaced {
            let url_ns = target.namespace.clone().unwrap_or_default();
            let body_ns = meta_str(&obj, "namespace").unwrap_or("").to_string();
            if !body_ns.is_empty() && !url_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns = if url_ns.is_empty() { body_ns } else { url_ns };
            if ns.is_empty() {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
            meta_mut(&mut obj).insert("namespace".into(), json!(ns));
            Some(ns)
        } else {
            None
        };
        let generate = meta_str(&obj, "generateName")
            .filter(|g| !g.is_empty())
            .map(String::from);
        let given_name = meta_str(&obj, "name")
            .filter(|n| !n.is_empty())
            .map(String::from);
        if let Some(ns) = &namespace {
            let shown = given_name
                .clone()
                .or_else(|| generate.clone())
                .unwrap_or_default();
            self.check_namespace_accepts(kind, ns, &shown).await?;
        }
        {
            let now = format_time(self.clock.now());
            let meta = meta_mut(&mut obj);
            // A version 4 uid from the thread's generator (no system call per object).
            let uid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
            meta.insert("uid".into(), json!(uid.to_string()));
            meta.insert("creationTimestamp".into(), json!(now));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(f);
            }
            if kind.generation != Generation::None {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        managed_fields::keep_reset(&mut obj);
        // What the client sent, for the kinds the server fills in after recording the
        // creator's fields (managed_fields::record_update).
        let sent = (record && matches!(kind.resource, "pods" | "namespaces" | "services"))
            .then(|| obj.clone());
        // The ServiceAccount admission, before defaulting and validation as upstream's mutating
        // admission runs; what it adds is nobody's in managedFields (upstream's field manager
        // records the creator's fields before admission), which `sent` lets the recording tell.
        if let (true, Some(ns)) = (kind.resource == "pods", &namespace) {
            crate::apiserver::serviceaccount::admit(self, ns, &mut obj, None).await?;
            let shown = crate::apiserver::serviceaccount::shown_name(&obj);
            crate::apiserver::priority::admit_pod(self, &mut obj, &shown).await?;
        }
        if kind.resource == "priorityclasses" {
            crate::apiserver::priority::admit_class(self, &obj).await?;
        }
        // A Service's addresses and node ports are allocated before admission, as upstream's
        // registry allocates them; allocation and the write it goes with happen one Service at
        // a time, so that no two Services are given the same address or node port.
        let _allocating = if kind.resource == "services" {
            let guard = self.service_allocation.lock().await;
            let stored = self.stored_services(kind).await?;
            Self::allocate_cluster_ip(kind, &mut obj, &stored)?;
            let mut in_use = NodePorts::held_by(&stored);
            services::allocate_node_ports(kind, &mut obj, None, &mut in_use)?;
            Some(guard)
        } else {
            None
        };
        let attempts = if given_name.is_none() && generate.is_some() {
            GENERATE_NAME_RETRIES
        } else {
            1
        };
        for attempt in 0..attempts {
            let name = match (&given_name, &generate) {
                (Some(n), _) => n.clone(),
                (None, Some(g)) => generate_name(g),
                (None, None) => String::new(),
            };
            meta_mut(&mut obj).insert("name".into(), json!(name));
            // Only a generated name may need another attempt (and so the object again).
            let candidate = if attempt + 1 < attempts {
                obj.clone()
            } else {
                std::mem::take(&mut obj)
            };
            let admitted = (kind.admit)(kind, Operation::Create, candidate, None)?;
            let warnings = check_unknown_fields(query, &admitted.unknown_fields)?;
            let mut value = admitted.value;
            if record {
                let writer = self.writer(kind, query, "");
                managed_fields::record_update(None, sent.as_ref(), &mut value, &writer);
            }
            if dry_run(query) {
                return Ok((Arc::new(kind.draft(value)?.unstored()), warnings));
            }
            let key = kind.key(namespace.as_deref(), &name);
            match self.store.create(&key, kind.draft(value)?).await {
                Ok(o) => return Ok((o, warnings)),
                Err(store::Error::AlreadyExists { .. }) if attempt + 1 < attempts => continue,
                Err(e) => return Err(store_error(kind, &name, e)),
            }
        }
        Err(ApiError::internal("could not generate a unique name"))
    }

    /// Give a new ClusterIP Service an address from the service range (10.96.0.0/12), unique
    /// among Services, as upstream's allocator does; a requested address must be free.
    fn allocate_cluster_ip(kind: &Kind, obj: &mut Value, services: &[Value]) -> ApiResult<()> {
        let service_type = obj["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        if service_type == "ExternalName" || !obj["spec"].is_object() {
            return Ok(());
        }
        let requested = obj["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
        if requested == "None" {
            // Headless: upstream still records the families of this single-stack IPv4
            // cluster; a headless Service without a selector requires every family it has.
            obj["spec"]["clusterIPs"] = json!(["None"]);
            if obj["spec"].get("ipFamilies").is_none_or(Value::is_null) {
                obj["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if obj["spec"].get("ipFamilyPolicy").is_none_or(Value::is_null) {
                let selector = obj["spec"]["selector"]
                    .as_object()
                    .is_some_and(|s| !s.is_empty());
                obj["spec"]["ipFamilyPolicy"] = json!(if selector {
                    "SingleStack"
                } else {
                    "RequireDualStack"
                });
            }
            return Ok(());
        }
        let taken: std::collections::HashSet<&str> = services
            .iter()
            .filter_map(|s| s["spec"]["clusterIP"].as_str())
            .collect();
        let ip = if requested.is_empty() {
            let mut rng = rand::rng();
            // The first addresses of the range are kept for the kubernetes and DNS services.
            (0..1000)
                .map(|_| {
                    let n: u32 = rng.random_range(16..(1 << 20) - 1);
                    format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
                })
                .find(|ip| !taken.contains(ip.as_str()))
                .ok_or_else(|| ApiError::internal("the service IP range is full"))?
        } else {
            if taken.contains(requested.as_str()) {
                let name = meta_str(obj, "name").unwrap_or_default().to_string();
                return Err(ApiError::invalid(
                    kind,
                    &name,
                    &[Cause::invalid(
                        "spec.clusterIPs",
                        &crate::apiserver::validation::go_slice(
                            "string",
                            Some(std::slice::from_ref(&requested)),
                        ),
                        &format!(
                            "failed to allocate IP {requested}: provided IP is already allocated"
                        ),
                    )],
                ));
            }
            requested
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
        obj["spec"]["ipFamilies"] = json!(["IPv4"]);
        obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        Ok(())
    }

    /// Every stored Service (in every namespace), for the allocators.
    async fn stored_services(&self, kind: &Kind) -> ApiResult<Vec<Value>> {
        Ok(self
            .store
            .list(&kind.prefix(None), None)
            .await
            .map_err(ApiError::internal)?
            .items
            .iter()
            .map(|o| o.value())
            .collect())
    }

    pub(super) async fn create(
        &self,
        target: &Target,
        obj: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let created = self.create_object(target, obj, query, true).await?;
        Ok(self.written_response(StatusCode::CREATED, target.kind, created))
    }

    /// Merge a requested new version with the stored one per the kind's status strategy and
    /// metadata rules, admit it, and write it (unless nothing changed).
    // The one write path every verb shares: each input is its own concern.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_update(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        current: &Arc<Object>,
        new: Value,
        query: &Query,
        precondition: Option<u64>,
        record: Record<'_>,
    ) -> ApiResult<(Arc<Object>, Vec<String>)> {
        let kind = target.kind;
        let old = &current.value();
        let mut merged = merge_update(kind, sub, old, new);
        managed_fields::keep_reset(&mut merged);
        // A Service's node ports are allocated (or kept) before admission, one Service write
        // at a time, as on create.
        let allocating = kind.resource == "services" && sub.is_none();
        let _allocating = if allocating {
            Some(self.service_allocation.lock().await)
        } else {
            None
        };
        let stored = if allocating {
            let stored = self.stored_services(kind).await?;
            let mut in_use = NodePorts::held_by(&stored);
            services::allocate_node_ports(kind, &mut merged, Some(old), &mut in_use)?;
            stored
        } else {
            Vec::new()
        };
        let admitted = (kind.admit)(kind, Operation::Update, merged, Some(old))?;
        let warnings = check_unknown_fields(query, &admitted.unknown_fields)?;
        let mut value = admitted.value;
        // A Service that comes to need a cluster IP (from ExternalName) gets one, as upstream's
        // allocator gives it on update.
        if allocating && value["spec"]["clusterIP"].as_str().unwrap_or("").is_empty() {
            Self::allocate_cluster_ip(kind, &mut value, &stored)?;
        }
        // Keep the stored generation (defaulting must not reset it), bumped if the update
        // changes what it counts.
        if let Some(g) = old["metadata"].get("generation") {
            if value["metadata"].get("generation").is_none() {
                meta_mut(&mut value).insert("generation".into(), g.clone());
            }
        }
        let mut value = bump_generation(kind, sub, old, value);
        if let Record::Update(subresource) = record {
            let writer = self.writer(kind, query, subresource);
            managed_fields::record_update(Some(old), None, &mut value, &writer);
        }
        if !changed(old, &value) {
            return Ok((current.clone(), warnings));
        }
        if dry_run(query) {
            // The object as it would be stored, at its current version: nothing is written.
            let would_be = kind
                .draft(value)?
                .stamp(current.create_revision, current.mod_revision);
            return Ok((Arc::new(would_be), warnings));
        }
        let deleting = value["metadata"]["deletionTimestamp"].is_string();
        let no_finalizers = value["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        let grace_done = value["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            == 0;
        // A namespace also waits for its own finalizers (`spec.finalizers`): the update that
        // removes the last one (the namespace controller's `finalize`) completes its deletion.
        let no_finalizers = no_finalizers
            && (!kind.has_subresource("finalize")
                || value["spec"]["finalizers"]
                    .as_array()
                    .is_none_or(Vec::is_empty));
        let key = kind.key(target.namespace.as_deref(), name);
        let expected = precondition.unwrap_or(current.mod_revision);
        if deleting && no_finalizers && grace_done {
            // The last finalizer is gone: the deletion completes, and the answer is the object
            // as this update left it.
            let draft = kind.draft(value)?;
            let gone = self
                .store
                .delete(&key, Some(expected))
                .await
                .map_err(|e| store_error(kind, name, e))?;
            let last = draft.stamp(gone.create_revision, gone.mod_revision);
            return Ok((Arc::new(last), warnings));
        }
        let written = self
            .store
            .update(&key, kind.draft(value)?, Some(expected))
            .await
            .map_err(|e| store_error(kind, name, e))?;
        Ok((written, warnings))
    }

    pub(super) async fn update(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        obj: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if sub == Some("scale") {
            return self.update_scale(target, name, obj, query).await;
        }
        if !matches!(sub, None | Some("status"))
            && !(sub == Some("finalize") && kind.has_subresource("finalize"))
        {
            return Err(ApiError::method_not_allowed());
        }
        Self::check_kind(kind, &obj)?;
        if let Some(body_name) = meta_str(&obj, "name") {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        if let (Some(body_ns), Some(url_ns)) =
            (meta_str(&obj, "namespace"), target.namespace.as_deref())
        {
            if !body_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let precondition =
            match meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty()) {
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
                None => None,
            };
        let current = self.load(target, name).await?;
        if precondition.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::conflict(kind, name));
        }
        let written = self
            .write_update(
                target,
                name,
                sub,
                &current,
                obj,
                query,
                precondition,
                Record::Update(sub.unwrap_or("")),
            )
            .await?;
        Ok(self.written_response(StatusCode::OK, kind, written))
    }

    pub(super) async fn patch(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        content_type: &str,
        body: &Bytes,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if !matches!(sub, None | Some("status") | Some("scale")) {
            return Err(ApiError::method_not_allowed());
        }
        let patch = decode_patch(content_type, body).await?;
        if content_type == "application/apply-patch+yaml" {
            if sub == Some("scale") {
                // Not modelled: upstream applies to a scale through the parent's replicas.
                return Err(ApiError::method_not_allowed());
            }
            return self.apply(target, name, sub, patch, query).await;
        }
        let patch = &patch;
        retry_on_conflict(kind, name, move || async move {
            let current = self.load(target, name).await?;
            let original = if sub == Some("scale") {
                scale_of(kind, &current.value())
            } else {
                self.present_value(kind, &current.value())
            };
            let mut patched = apply_patch(kind, content_type, &original, &patch)?;
            if sub == Some("scale") {
                if !patch_names_resource_version(content_type, &patch) {
                    if let Some(meta) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                }
                return Ok(Break(
                    self.update_scale(target, name, patched, query).await?,
                ));
            }
            // A resourceVersion is a precondition only when the patch itself names one; a
            // patch without one is retried on a conflicting write, as upstream's
            // GuaranteedUpdate does.
            let precondition = match meta_str(&patched, "resourceVersion").filter(|r| !r.is_empty())
            {
                Some(rv) if rv != current.mod_revision.to_string() => {
                    return Err(ApiError::conflict(kind, name))
                }
                Some(_) if patch_names_resource_version(content_type, &patch) => {
                    Some(current.mod_revision)
                }
                _ => None,
            };
            let written = self
                .write_update(
                    target,
                    name,
                    sub,
                    &current,
                    patched,
                    query,
                    Some(current.mod_revision),
                    Record::Update(sub.unwrap_or("")),
                )
                .await;
            let outcome = match precondition {
                Some(_) => Break(written?),
                None => again_on_conflict(written)?,
            };
            Ok(outcome.map_break(|written| self.written_response(StatusCode::OK, kind, written)))
        })
        .await
    }

    /// Server-side apply: create the object from the applied configuration, or merge the
    /// configuration into it, recording the field manager.
    async fn apply(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        config: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
            return Err(ApiError::bad_request("PATCH, application/apply-patch+yaml requires a non-empty fieldManager query parameter"));
        }
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: the applied configuration is not an object",
            ));
        }
        // The applied configuration must be of the endpoint's kind and name it (upstream's
        // version check and checkName).
        let api_version = config["apiVersion"].as_str().unwrap_or_default();
        let applied_kind = config["kind"].as_str().unwrap_or_default();
        if api_version != kind.api_version() || applied_kind != kind.kind {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            return Err(ApiError::bad_request(format!(
                "invalid object type: {group}/{version}, Kind={applied_kind}"
            )));
        }
        // A configuration without a name keeps the live object's, so only a create needs one.
        let applied_name = config["metadata"]["name"].as_str().unwrap_or_default();
        let name_mismatch = || {
            ApiError::bad_request(format!(
                "the name of the object ({applied_name}) does not match the name on the URL ({name})"
            ))
        };
        if !applied_name.is_empty() && applied_name != name {
            return Err(name_mismatch());
        }
        let applied_rv = config["metadata"]["resourceVersion"]
            .as_str()
            .filter(|rv| !rv.is_empty());
        let force = query_flag(query, "force");
        let config = &config;
        retry_on_conflict(kind, name, move || async move {
            let current = match self.load(target, name).await {
                Ok(c) => c,
                // A status is applied to an object that exists.
                Err(e) if e.code == 404 && sub.is_none() => {
                    if applied_name.is_empty() {
                        return Err(name_mismatch());
                    }
                    return self.apply_create(target, config, force, query).await;
                }
                Err(e) => return Err(e),
            };
            // A resourceVersion in the configuration is a precondition, as in an update.
            if applied_rv.is_some_and(|rv| rv != current.mod_revision.to_string()) {
                return Err(ApiError::conflict(kind, name));
            }
            let existing = self.present_value(kind, &current.value());
            // Through `status`, the configuration's status is applied (and its spec ignored).
            let writer = self.writer(kind, query, sub.unwrap_or(""));
            let merged = managed_fields::apply(Some(&existing), config, force, &writer)
                .map_err(|e| apply_error(kind, name, e))?;
            let written = self
                .write_update(
                    target,
                    name,
                    sub,
                    &current,
                    merged,
                    query,
                    Some(current.mod_revision),
                    Record::No,
                )
                .await;
            Ok(again_on_conflict(written)?
                .map_break(|written| self.written_response(StatusCode::OK, kind, written)))
        })
        .await
    }

    /// Apply to an object that does not exist: create it from the configuration. Losing the
    /// race to another create (409) means another attempt, which then merges.
    async fn apply_create(
        &self,
        target: &Target,
        config: &Value,
        force: bool,
        query: &Query,
    ) -> ApiResult<ControlFlow<Response>> {
        let kind = target.kind;
        let name = config["metadata"]["name"].as_str().unwrap_or_default();
        let writer = self.writer(kind, query, "");
        let obj = managed_fields::apply(None, config, force, &writer)
            .map_err(|e| apply_error(kind, name, e))?;
        let t = Target {
            kind,
            namespace: target.namespace.clone(),
            name: None,
            subresource: None,
        };
        match self.create_object(&t, obj, query, false).await {
            Ok(created) => Ok(Break(self.written_response(
                StatusCode::CREATED,
                kind,
                created,
            ))),
            Err(e) if e.code == 409 => Ok(ControlFlow::Continue(())),
            Err(e) => Err(e),
        }
    }

    /// Who a write is by, for its managedFields.
    fn writer<'a>(&self, kind: &'a Kind, query: &'a Query, subresource: &'a str) -> Writer<'a> {
        Writer {
            manager: field_manager(query),
            subresource,
            api_version: kind.api_version(),
            has_status: kind.has_status(),
            now: format_time(self.clock.now()),
        }
    }
}

/// An apply the field manager refused: a conflict (409) or a configuration that does not fit
/// the schema (upstream answers those as an internal error of building the typed object).
fn apply_error(kind: &Kind, name: &str, error: ApplyError) -> ApiError {
    match error {
        ApplyError::Conflicts(conflicts) => apply_conflict_error(kind, name, &conflicts),
        ApplyError::Invalid(reason) => {
            ApiError::internal(format!("failed to create typed patch object: {reason}"))
        }
        ApplyError::BadRequest(reason) => ApiError::bad_request(reason),
    }
}

/// The object an update writes, before admission: the request's new version merged with the
/// stored one as the subresource says (`status` takes only the status, labels and annotations;
/// the main resource keeps the stored status), with the metadata the server owns kept.
fn merge_update(kind: &Kind, sub: Option<&str>, old: &Value, mut new: Value) -> Value {
    new["apiVersion"] = json!(kind.api_version());
    new["kind"] = json!(kind.kind);
    if let Some(to_storage) = kind.to_storage {
        new = to_storage(new);
    }
    let mut merged = match sub {
        Some("status") => {
            let mut m = old.clone();
            m["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            // (The managedFields a status write ends with are the live ones updated by the
            // field manager: a client's own are never taken through a subresource.)
            for f in ["labels", "annotations", "managedFields"] {
                if let Some(v) = new["metadata"].get(f) {
                    meta_mut(&mut m).insert(f.into(), v.clone());
                }
            }
            m
        }
        // A namespace's `finalize` writes its spec's finalizers (and metadata), and keeps its
        // status; its other writes keep the finalizers.
        _ => {
            if kind.has_subresource("finalize") && sub != Some("finalize") {
                if new.get("spec").is_none_or(Value::is_null) {
                    new["spec"] = json!({});
                }
                // A spec that is not an object fails admission's decode later.
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    match old["spec"].get("finalizers") {
                        Some(f) => spec.insert("finalizers".into(), f.clone()),
                        None => spec.remove("finalizers"),
                    };
                }
            }
            if kind.has_status() {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            new
        }
    };
    {
        let meta = meta_mut(&mut merged);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generation",
        ] {
            match old["metadata"].get(f) {
                Some(v) => {
                    meta.insert(f.into(), v.clone());
                }
                None => {
                    meta.remove(f);
                }
            }
        }
        meta.remove("resourceVersion");
    }
    merged
}

/// Bump the generation of an admitted update when its spec (or, for some kinds, its
/// annotations or whole body) differs from the stored object's: compared after admission, as
/// upstream compares decoded and defaulted objects, so a client that leaves out what the server
/// fills in (a `null` timestamp, a default) does not look like a change.
fn bump_generation(kind: &Kind, sub: Option<&str>, old: &Value, mut merged: Value) -> Value {
    if kind.generation != Generation::None && sub.is_none() {
        let spec_changed = if kind.generation == Generation::AllButMetadataOrLabels {
            let body = |v: &Value| -> Value {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    for f in ["metadata", "apiVersion", "kind"] {
                        o.remove(f);
                    }
                }
                v
            };
            body(&merged) != body(old)
                || merged["metadata"].get("labels") != old["metadata"].get("labels")
        } else {
            merged.get("spec") != old.get("spec")
        };
        let annotations_changed = kind.generation == Generation::SpecOrAnnotations
            && merged["metadata"].get("annotations") != old["metadata"].get("annotations");
        if spec_changed || annotations_changed {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut merged).insert("generation".into(), json!(g));
        }
    }
    merged
}

/// A PATCH body, decoded as its content type says.
async fn decode_patch(content_type: &str, body: &Bytes) -> ApiResult<Value> {
    let parse_json = |body: &[u8]| -> ApiResult<Value> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    Ok(match content_type {
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => parse_json(body)?,
        "application/apply-patch+yaml" => decode_yaml(body)
            .await
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        other => {
            return Err(ApiError::unsupported_media_type(
                other,
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                    "application/strategic-merge-patch+json",
                ],
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_use_the_upstream_alphabet() {
        let name = generate_name("web-7d4b9c8f5-");
        assert_eq!(name.len(), "web-7d4b9c8f5-".len() + 5);
        assert!(name[14..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        let long = generate_name(&"a".repeat(80));
        assert_eq!(long.len(), 63);
    }
}
