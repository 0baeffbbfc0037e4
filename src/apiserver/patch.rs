//! Patches and server-side apply: JSON patch within upstream's limits, merge and strategic merge
//! patch (field ownership and server-side apply are in `managed_fields`).

use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::registry::Kind;
use super::strategic;

/// The most operations a JSON patch may have (upstream's `maxJSONPatchOperations`).
pub(super) const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes the `copy` operations of one JSON patch may add together (upstream's
/// `JSONPatchMaxCopyBytes`): without it a few operations that each double the object exhaust
/// memory.
pub(super) const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// The length of `value` encoded as JSON, without encoding it.
pub(super) fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Apply a JSON patch within upstream's limits. Upstream answers any failure to apply one with
/// a bare 422 (the reason is not passed on), and so does this.
pub(super) fn apply_json_patch(
    original: &Value,
    ops: &[json_patch::PatchOperation],
) -> ApiResult<Value> {
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::too_large_because(&format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    let mut doc = original.clone();
    let mut copied = 0usize;
    for op in ops {
        if let json_patch::PatchOperation::Copy(copy) = op {
            let size = doc.pointer(copy.from.as_str()).map_or(0, encoded_len);
            copied = copied.saturating_add(size);
            if copied > MAX_JSON_PATCH_COPY_BYTES {
                tracing::debug!(copied, limit = MAX_JSON_PATCH_COPY_BYTES, "JSON patch refused: Unable to complete the copy, the accumulated size increase of copy exceeds the limit");
                return Err(ApiError::rejected());
            }
        }
        // On a copy of the object: a failed operation leaves nothing half-applied to undo.
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            tracing::debug!(cause = %e, "JSON patch refused");
            ApiError::rejected()
        })?;
    }
    Ok(doc)
}

/// Apply a JSON, merge or strategic merge patch.
pub(crate) fn apply_patch(
    kind: &Kind,
    content_type: &str,
    original: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    match content_type {
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            apply_json_patch(original, &ops.0)
        }
        "application/merge-patch+json" => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        _ => strategic::apply(kind.kind, original, patch).map_err(|e| {
            ApiError::bad_request(format!("unable to apply the strategic merge patch: {e}"))
        }),
    }
}

/// The 409 of an apply that would change fields other managers own, worded as upstream words
/// it: `conflicts` are `(manager as upstream prints it, path)`, grouped by manager.
pub(super) fn apply_conflict_error(
    kind: &Kind,
    name: &str,
    conflicts: &[(String, String)],
) -> ApiError {
    let message = match conflicts {
        [(manager, path)] => {
            format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
        }
        _ => {
            let mut lines = Vec::new();
            let mut last: Option<&str> = None;
            for (manager, path) in conflicts {
                if last != Some(manager.as_str()) {
                    lines.push(format!("conflicts with {manager}:"));
                    last = Some(manager);
                }
                lines.push(format!("- {path}"));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    let mut err = ApiError::conflict_with(kind, name, "");
    err.message = message;
    err.details = Some(json!({"causes": causes}));
    err
}

/// Whether a JSON, merge or strategic merge patch sets `metadata.resourceVersion` itself.
pub(super) fn patch_names_resource_version(content_type: &str, patch: &Value) -> bool {
    if content_type == "application/json-patch+json" {
        return patch.as_array().is_some_and(|ops| {
            ops.iter()
                .any(|op| op["path"].as_str() == Some("/metadata/resourceVersion"))
        });
    }
    patch
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .is_some_and(|rv| !rv.is_null())
}
