//! PriorityClasses and the Priority admission plugin, as upstream's (plugin/pkg/admission/
//! priority and the `scheduling/bootstrap-system-priority-classes` post-start hook):
//!
//! - the apiserver makes `system-node-critical` (2000001000) and `system-cluster-critical`
//!   (2000000000) when it starts;
//! - a pod naming a class gets its value as `priority` and its `preemptionPolicy`; a pod naming
//!   none gets the global default class's (name too), or 0 and `PreemptLowerPriority`; a class
//!   that does not exist, or a priority or policy in the pod that differs from its class's, is
//!   refused (403);
//! - at most one class is the global default.

use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::registry;
use super::strategy::SYSTEM_PRIORITY_CLASSES;
use super::ApiServer;

fn kind() -> &'static registry::Kind {
    registry::lookup("scheduling.k8s.io", "v1", "priorityclasses").unwrap_or(registry::core("pods"))
}

/// Every PriorityClass, from the store.
async fn classes(server: &ApiServer) -> ApiResult<Vec<Value>> {
    let listed = server
        .store
        .list(&kind().prefix(None), None)
        .await
        .map_err(ApiError::internal)?;
    Ok(listed.items.iter().map(|o| o.value()).collect())
}

/// The global default class: the one with the lowest value among those marked (upstream's
/// rule when several are).
fn global_default(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c["globalDefault"] == true)
        .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
}

/// Make the system classes (if missing), as the post-start hook does.
pub(super) async fn bootstrap(server: &ApiServer) {
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        let body = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        match server.create_internal(kind(), None, body).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::error!(class = name, cause = %e, "cannot create a system PriorityClass")
            }
        }
    }
}

/// The Priority admission of a pod being created (`shown`: its name as errors show it).
pub(super) async fn admit_pod(server: &ApiServer, pod: &mut Value, shown: &str) -> ApiResult<()> {
    if !pod.get("spec").is_some_and(Value::is_object) {
        return Ok(());
    }
    let forbidden = |why: String| ApiError::forbidden(registry::core("pods"), shown, &why);
    let named = pod["spec"]["priorityClassName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(String::from);
    let all = classes(server).await?;
    let (name, value, policy) = match &named {
        Some(name) => {
            let Some(class) = all.iter().find(|c| c["metadata"]["name"] == name.as_str()) else {
                return Err(forbidden(format!(
                    "no PriorityClass with name {name} was found"
                )));
            };
            (
                Some(name.clone()),
                class["value"].as_i64().unwrap_or(0),
                policy_of(class),
            )
        }
        None => match global_default(&all) {
            Some(class) => (
                class["metadata"]["name"].as_str().map(String::from),
                class["value"].as_i64().unwrap_or(0),
                policy_of(class),
            ),
            None => (None, 0, "PreemptLowerPriority".to_string()),
        },
    };
    if let Some(given) = pod["spec"]["priority"].as_i64() {
        if given != value {
            return Err(forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            )));
        }
    }
    if let Some(given) = pod["spec"]["preemptionPolicy"].as_str() {
        if given != policy {
            return Err(forbidden(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
    }
    if let Some(name) = name {
        pod["spec"]["priorityClassName"] = json!(name);
    }
    pod["spec"]["priority"] = json!(value);
    pod["spec"]["preemptionPolicy"] = json!(policy);
    Ok(())
}

fn policy_of(class: &Value) -> String {
    class["preemptionPolicy"]
        .as_str()
        .unwrap_or("PreemptLowerPriority")
        .to_string()
}

/// The Priority admission of a PriorityClass being created: at most one global default.
pub(super) async fn admit_class(server: &ApiServer, class: &Value) -> ApiResult<()> {
    if class["globalDefault"] != true {
        return Ok(());
    }
    let name = class["metadata"]["name"].as_str().unwrap_or_default();
    let all = classes(server).await?;
    if let Some(other) = all
        .iter()
        .filter(|c| c["metadata"]["name"] != name)
        .find(|c| c["globalDefault"] == true)
    {
        let other = other["metadata"]["name"].as_str().unwrap_or_default();
        return Err(ApiError::forbidden(
            kind(),
            name,
            &format!(
                "PriorityClass {other} is already marked as default. Only one default can exist"
            ),
        ));
    }
    Ok(())
}
