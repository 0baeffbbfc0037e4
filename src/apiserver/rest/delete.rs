//! Deletion: graceful and finalized deletes with preconditions and propagation, namespace
//! deletion, and deletecollection.

use std::ops::ControlFlow::{self, Break};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::registry::Kind;
use crate::apiserver::{ApiServer, Cause};
use crate::clock::format_time;
use crate::store::Object;

use super::{again_on_conflict, retry_on_conflict};
use super::{
    changed, dry_run_with, json_response, meta_mut, object_name, selectors, store_error, Query,
    Target,
};

/// The namespaces upstream's NamespaceLifecycle admission refuses to delete.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// What a delete asks for, from its query and its DeleteOptions body.
struct DeleteRequest {
    /// The grace period asked for, if any.
    grace: Option<i64>,
    /// The propagation policy: `propagationPolicy`, or what `orphanDependents` implies.
    policy: Option<String>,
    precondition_uid: Option<String>,
    precondition_rv: Option<String>,
    /// `dryRun=All`, in the query or in the DeleteOptions body (`kubectl delete
    /// --dry-run=server` sends the body): answer as if deleted, change nothing.
    dry_run: bool,
}

impl DeleteRequest {
    fn parse(options: &Value, query: &Query) -> Self {
        let grace = query
            .get("gracePeriodSeconds")
            .and_then(|g| g.parse::<i64>().ok())
            .or_else(|| options.get("gracePeriodSeconds").and_then(Value::as_i64));
        let propagation = query.get("propagationPolicy").cloned().or_else(|| {
            options
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from)
        });
        let orphan_dependents = options.get("orphanDependents").and_then(Value::as_bool);
        let policy = propagation.or_else(|| match orphan_dependents {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        });
        let precondition_uid = options["preconditions"]["uid"].as_str().map(String::from);
        let precondition_rv = options["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
        Self {
            grace,
            policy,
            precondition_uid,
            precondition_rv,
            dry_run: dry_run_with(query, options),
        }
    }

    /// A Conflict when the object is not the one the preconditions name.
    fn check_preconditions(&self, kind: &Kind, name: &str, current: &Object) -> ApiResult<()> {
        let value = &current.value();
        if let Some(uid) = &self.precondition_uid {
            if value["metadata"]["uid"].as_str() != Some(uid) {
                return Err(ApiError::conflict_with(
                    kind,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        value["metadata"]["uid"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(rv) = &self.precondition_rv {
            if *rv != current.mod_revision.to_string() {
                return Err(ApiError::conflict_with(kind, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                )));
            }
        }
        Ok(())
    }

    /// The object's finalizers, with the one the propagation policy adds.
    fn finalizers(&self, kind: &Kind, name: &str, value: &Value) -> ApiResult<Vec<String>> {
        let mut finalizers: Vec<String> = value["metadata"]["finalizers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        match self.policy.as_deref() {
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            Some("Orphan" | "Foreground" | "Background") | None => {}
            Some(other) => {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    &[Cause::not_supported(
                        "propagationPolicy",
                        other,
                        &["Foreground", "Background", "Orphan"],
                    )],
                ))
            }
        }
        Ok(finalizers)
    }
}

impl ApiServer {
    pub(super) async fn delete(
        &self,
        target: &Target,
        name: &str,
        options: &Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let request = &DeleteRequest::parse(options, query);
        retry_on_conflict(kind, name, move || async move {
            let current = self.load(target, name).await?;
            let value = &current.value();
            request.check_preconditions(kind, name, &current)?;
            let finalizers = request.finalizers(kind, name, value)?;
            let grace = self.grace_period(kind, value, request.grace);
            let key = kind.key(target.namespace.as_deref(), name);
            if kind.resource == "namespaces" {
                return self.delete_namespace(target, name, current, request).await;
            }
            if finalizers.is_empty() && grace == 0 {
                if request.dry_run {
                    return Ok(Break(self.deleted_response(kind, name, &current, true)));
                }
                let gone = self
                    .store
                    .delete(&key, Some(current.mod_revision))
                    .await
                    .map_err(|e| store_error(kind, name, e));
                return Ok(again_on_conflict(gone)?
                    .map_break(|gone| self.deleted_response(kind, name, &gone, true)));
            }
            // Graceful or finalized deletion: mark the object and leave it to its owners.
            let next = self.mark_deleting(value, grace, finalizers);
            if !changed(value, &next) {
                return Ok(Break(self.deleted_response(kind, name, &current, false)));
            }
            if request.dry_run {
                // The object as the deletion would mark it, at its current version.
                let marked = kind
                    .draft(next)?
                    .stamp(current.create_revision, current.mod_revision);
                return Ok(Break(self.deleted_response(kind, name, &marked, false)));
            }
            let marked = self
                .store
                .update(&key, kind.draft(next)?, Some(current.mod_revision))
                .await
                .map_err(|e| store_error(kind, name, e));
            Ok(again_on_conflict(marked)?
                .map_break(|marked| self.deleted_response(kind, name, &marked, false)))
        })
        .await
    }

    /// The object marked for a graceful or finalized deletion: its deletion timestamp and
    /// grace period (unless an earlier deletion already set a shorter one), and finalizers.
    fn mark_deleting(&self, value: &Value, grace: i64, finalizers: Vec<String>) -> Value {
        let mut next = value.clone();
        let already_deleting = value["metadata"]["deletionTimestamp"].is_string();
        let now = self.clock.now();
        let current_grace = value["metadata"]["deletionGracePeriodSeconds"].as_i64();
        let shorter = current_grace.is_none_or(|g| grace < g);
        let meta = meta_mut(&mut next);
        if !already_deleting || shorter {
            // Any grace period is accepted; one that reaches past what a timestamp can
            // say is marked with the latest timestamp instead of overflowing.
            let at = crate::clock::add_seconds(now, grace)
                .filter(|at| *at <= crate::clock::latest_time())
                .unwrap_or_else(crate::clock::latest_time);
            meta.insert("deletionTimestamp".into(), json!(format_time(at)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), json!(finalizers));
        }
        next
    }

    /// The grace period a delete uses: pods that never ran or already finished go at once.
    fn grace_period(&self, kind: &Kind, value: &Value, requested: Option<i64>) -> i64 {
        if kind.resource != "pods" {
            return 0;
        }
        let unscheduled = value["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
        let terminal = matches!(
            value["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        if unscheduled || terminal {
            return 0;
        }
        let grace = requested
            .or_else(|| value["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30);
        // Upstream turns a negative grace period into 1 (and a requested 0 into 1 unless
        // forced; the kubelet then deletes with 0).
        if grace < 0 {
            1
        } else {
            grace
        }
    }

    fn deleted_response(&self, kind: &Kind, name: &str, obj: &Object, gone: bool) -> Response {
        let code = if gone {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        if !gone || kind.delete_returns_object {
            return self.object_response(code, kind, obj);
        }
        json_response(
            code,
            &json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": kind.group, "kind": kind.resource, "uid": obj.value()["metadata"]["uid"]},
            }),
        )
    }

    /// Namespace deletion, as upstream's namespace storage does it: the first delete marks the
    /// namespace (deletion timestamp, phase Terminating) and leaves the namespace controller to
    /// remove its content and then its `kubernetes` finalizer; a delete of a marked namespace
    /// removes it once `spec.finalizers` is empty, and is a Conflict before.
    async fn delete_namespace(
        &self,
        target: &Target,
        name: &str,
        current: Arc<Object>,
        request: &DeleteRequest,
    ) -> ApiResult<ControlFlow<Response>> {
        let kind = target.kind;
        let key = kind.key(None, name);
        let value = current.value();
        if IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                kind,
                name,
                "this namespace may not be deleted",
            ));
        }
        if !value["metadata"]["deletionTimestamp"].is_string() {
            let mut marked = value;
            meta_mut(&mut marked).insert(
                "deletionTimestamp".into(),
                json!(format_time(self.clock.now())),
            );
            marked["status"]["phase"] = json!("Terminating");
            if request.dry_run {
                let marked = kind
                    .draft(marked)?
                    .stamp(current.create_revision, current.mod_revision);
                return Ok(Break(self.object_response(StatusCode::OK, kind, &marked)));
            }
            let marked = self
                .store
                .update(&key, kind.draft(marked)?, Some(current.mod_revision))
                .await
                .map_err(|e| store_error(kind, name, e));
            return Ok(again_on_conflict(marked)?
                .map_break(|marked| self.object_response(StatusCode::OK, kind, &marked)));
        }
        let finalizing = value["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if finalizing {
            return Err(ApiError::conflict_with(
                kind,
                name,
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        let held = value["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if held || request.dry_run {
            return Ok(Break(self.object_response(StatusCode::OK, kind, &current)));
        }
        let gone = self
            .store
            .delete(&key, Some(current.mod_revision))
            .await
            .map_err(|e| store_error(kind, name, e));
        Ok(again_on_conflict(gone)?
            .map_break(|gone| self.deleted_response(kind, name, &gone, true)))
    }

    pub(super) async fn delete_collection(
        &self,
        target: &Target,
        options: &Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if !kind.verbs.contains(&"deletecollection") {
            return Err(ApiError::method_not_allowed());
        }
        let (labels, fields) = selectors(kind, query)?;
        let list = self
            .store
            .list(&kind.prefix(target.namespace.as_deref()), None)
            .await
            .map_err(ApiError::internal)?;
        let mut deleted = Vec::new();
        for o in list
            .items
            .iter()
            .filter(|o| labels.matches(&o.attrs) && fields.matches(&o.attrs))
        {
            let name = object_name(o).to_string();
            let ns = o
                .attrs
                .fields
                .get(1)
                .filter(|n| !n.is_empty())
                .map(|n| n.to_string());
            let t = Target {
                kind,
                namespace: ns,
                name: Some(name.clone()),
                subresource: None,
            };
            match self.delete(&t, &name, options, query).await {
                Ok(_) => deleted.push(self.present_value(kind, &o.value())),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let list = json!({
            "kind": kind.list_kind(),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": self.store.current_revision().to_string()},
            "items": deleted,
        });
        Ok(json_response(StatusCode::OK, &list))
    }
}
