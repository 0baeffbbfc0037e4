//! Patches and server-side apply: JSON patch within upstream's limits, merge and strategic merge
//! patch, and the field ownership (managedFields) that apply keeps.

use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::registry::Kind;
use super::rest::meta_mut;
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

pub(super) fn strip_meta_for_apply(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    c
}

/// Paths of the leaf fields an applied configuration sets (`.spec.replicas`), the way
/// managedFields `fieldsV1` records them, flattened.
pub(super) fn applied_paths(config: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match config {
        Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if prefix == ".metadata"
                    && matches!(
                        k.as_str(),
                        "name" | "namespace" | "managedFields" | "resourceVersion"
                    )
                {
                    continue;
                }
                applied_paths(v, &format!("{prefix}.{k}"), out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

pub(super) fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Fields the configuration would change that another manager owns.
pub(crate) fn apply_conflicts(
    existing: &Value,
    config: &Value,
    manager: &str,
) -> Vec<(String, String)> {
    let managers = existing["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut paths = Vec::new();
    applied_paths(config, "", &mut paths);
    let mut conflicts = Vec::new();
    for (path, value) in paths {
        let Some(current) = value_at(existing, &path) else {
            continue;
        };
        if *current == value {
            continue;
        }
        for entry in &managers {
            let owner = entry["manager"].as_str().unwrap_or("");
            if owner == manager {
                continue;
            }
            let owned = entry["fieldsV1"]["f:paths"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p == &json!(path)))
                || owns_path(&entry["fieldsV1"], &path);
            if owned {
                conflicts.push((owner.to_string(), path.clone()));
            }
        }
    }
    conflicts
}

/// Take each `(manager, path)` out of that manager's managed fields; a manager left owning
/// nothing is dropped, as upstream drops it.
pub(crate) fn disown(obj: &mut Value, conflicts: &[(String, String)]) {
    let Some(entries) = obj["metadata"]["managedFields"].as_array_mut() else {
        return;
    };
    for (manager, path) in conflicts {
        for entry in entries
            .iter_mut()
            .filter(|e| e["manager"] == manager.as_str())
        {
            let paths = entry.get_mut("fieldsV1").and_then(|f| f.get_mut("f:paths"));
            if let Some(paths) = paths.and_then(Value::as_array_mut) {
                paths.retain(|p| p != path.as_str());
            }
            let parts: Vec<String> = path
                .trim_start_matches('.')
                .split('.')
                .map(|p| format!("f:{p}"))
                .collect();
            remove_leaf(&mut entry["fieldsV1"], &parts);
        }
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_none_or(|f| !f.is_empty()));
}

/// Remove the leaf at `parts` from a fieldsV1 tree, and the parents it leaves empty.
pub(super) fn remove_leaf(tree: &mut Value, parts: &[String]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Some(map) = tree.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        map.remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove_leaf(child, rest);
        if child.as_object().is_some_and(|c| c.is_empty()) {
            map.remove(first);
        }
    }
}

/// Whether a fieldsV1 tree (`{"f:spec":{"f:replicas":{}}}`) contains a leaf path.
pub(super) fn owns_path(fields: &Value, path: &str) -> bool {
    let mut cur = fields;
    for part in path.trim_start_matches('.').split('.') {
        match cur.get(format!("f:{part}")) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

pub(super) fn fields_v1(config: &Value) -> Value {
    match config {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if matches!(
                    k.as_str(),
                    "apiVersion"
                        | "kind"
                        | "managedFields"
                        | "resourceVersion"
                        | "name"
                        | "namespace"
                        | "status"
                ) {
                    continue;
                }
                out.insert(format!("f:{k}"), fields_v1(v));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

pub(super) fn apply_conflict_error(
    kind: &Kind,
    name: &str,
    conflicts: &[(String, String)],
) -> ApiError {
    let mut msg = if conflicts.len() == 1 {
        "Apply failed with 1 conflict:".to_string()
    } else {
        format!("Apply failed with {} conflicts:", conflicts.len())
    };
    let api_version = kind.api_version();
    let parts: Vec<String> = conflicts
        .iter()
        .map(|(m, p)| format!(" conflict with \"{m}\" using {api_version}: {p}"))
        .collect();
    msg.push_str(&parts.join("\n"));
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {api_version}"), "field": p}))
        .collect();
    let mut err = ApiError::conflict_with(kind, name, "");
    err.message = msg;
    err.details = Some(json!({"causes": causes}));
    err
}

/// Record (or replace) a manager's entry in managedFields.
pub(super) fn record_manager(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    config: &Value,
    kind: &Kind,
    now: &str,
) {
    let mut entries = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries.retain(|e| !(e["manager"] == manager && e["operation"] == operation));
    let mut fields = fields_v1(config);
    if let Some(meta) = fields.get_mut("f:metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| k == "f:labels" || k == "f:annotations");
    }
    entries.push(json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": kind.api_version(),
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }));
    meta_mut(obj).insert("managedFields".into(), json!(entries));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_conflicts_name_the_other_manager() {
        let existing = json!({"metadata": {"managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}, "spec": {"replicas": 3}});
        let config =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 5}});
        let conflicts = apply_conflicts(&existing, &config, "kubectl");
        assert_eq!(
            conflicts,
            vec![(
                "kubectl-client-side-apply".to_string(),
                ".spec.replicas".to_string()
            )]
        );
        assert!(apply_conflicts(&existing, &config, "kubectl-client-side-apply").is_empty());
    }

    #[test]
    fn a_forced_apply_takes_the_field_from_its_old_manager() {
        let mut existing = json!({"metadata": {"managedFields": [
            {"manager": "old", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:paused": {}}}},
            {"manager": "gone", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}});
        let conflicts = vec![
            ("old".to_string(), ".spec.replicas".to_string()),
            ("gone".to_string(), ".spec.replicas".to_string()),
        ];
        disown(&mut existing, &conflicts);
        assert_eq!(
            existing["metadata"]["managedFields"],
            json!([{"manager": "old", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}])
        );
    }
}
