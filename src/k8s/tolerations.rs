//! Taints and tolerations as upstream matches them (`ToleratesTaint`): used by the scheduler's
//! TaintToleration filter and the node lifecycle controller's taint-based eviction.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether one toleration tolerates a taint (upstream's `ToleratesTaint`): an empty effect or key
/// matches any; operator `Exists` ignores the value, `Equal` (or empty) compares it.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}
