//! `componentstatuses` (v1, deprecated since 1.19, still served): not stored; every get or list
//! checks the components, as upstream's registry does: the controller-manager and the scheduler
//! by an HTTP GET of their health check (`Config::component_statuses`), and `etcd-0` by a read
//! through the apiserver's own connection to etcd when etcd holds the objects.
//!
//! As upstream: each item carries one `Healthy` condition (`True` with the body, `ok`, as its
//! message; `False` with the probe's message, e.g. `Get "http://127.0.0.1:10259/healthz": dial
//! tcp 127.0.0.1:10259: connect: connection refused`; etcd's failure in `error`), the list has
//! no resourceVersion, items have no kind and a null creationTimestamp, selectors filter on the
//! names (no item has labels), and a name not checked is a 500 `Component not found`.

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::rest::{json_response, Query, Target};
use super::ApiServer;
use crate::probe::Outcome;

/// The resource name.
pub(super) const RESOURCE: &str = "componentstatuses";

/// How long upstream's component checks may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// One component's status, as upstream's `ToConditionStatus` words it.
fn item(name: &str, status: &str, message: &str, error: &str) -> Value {
    let mut condition = json!({"type": "Healthy", "status": status});
    if !message.is_empty() {
        condition["message"] = json!(message);
    }
    if !error.is_empty() {
        condition["error"] = json!(error);
    }
    json!({"metadata": {"name": name, "creationTimestamp": null}, "conditions": [condition]})
}

/// Check one HTTP component.
async fn check_http(name: &str, url: &str) -> Value {
    let checked = tokio::time::timeout(CHECK_TIMEOUT, crate::probe::http::check(url)).await;
    match checked {
        Ok((Outcome::Success, body)) => item(name, "True", &body, ""),
        Ok((Outcome::Failure(message), _)) => item(name, "False", &message, ""),
        Ok((Outcome::Warning(message), _)) => item(name, "Unknown", &message, ""),
        Ok((Outcome::Error(e), _)) => item(name, "Unknown", "", &e),
        Err(_) => item(
            name,
            "False",
            &format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
            "",
        ),
    }
}

/// Every component's status, in a fixed order (upstream's follows whichever check ends first).
async fn statuses(server: &ApiServer) -> Vec<Value> {
    let http = futures::future::join_all(
        server
            .component_statuses
            .iter()
            .map(|(name, url)| check_http(name, url)),
    );
    let store = server.store.health();
    let (mut items, store) = tokio::join!(http, store);
    match store {
        None => {}
        Some(Ok(())) => items.push(item("etcd-0", "True", "ok", "")),
        Some(Err(e)) => items.push(item("etcd-0", "False", "", &e.to_string())),
    }
    items
}

/// GET one component status or the list.
pub(super) async fn serve(
    server: &Arc<ApiServer>,
    target: &Target,
    query: &Query,
    as_table: bool,
) -> ApiResult<Response> {
    let (labels, fields) = super::rest::selectors(target.kind, query)?;
    let mut items = statuses(server).await;
    if let Some(name) = &target.name {
        let found = items
            .into_iter()
            .find(|i| i["metadata"]["name"] == json!(name))
            .ok_or_else(|| ApiError::component_not_found(name))?;
        let mut object = json!({"kind": "ComponentStatus", "apiVersion": "v1"});
        if let (Some(out), Some(fields)) = (object.as_object_mut(), found.as_object()) {
            out.extend(fields.clone());
        }
        return Ok(json_response(
            StatusCode::OK,
            &if as_table {
                table(server, &[&object], query)
            } else {
                object
            },
        ));
    }
    items.retain(|i| {
        let attrs = super::selector::attrs(target.kind, i);
        labels.matches(&attrs) && fields.matches(&attrs)
    });
    let body = if as_table {
        table(server, &items.iter().collect::<Vec<_>>(), query)
    } else {
        json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items})
    };
    Ok(json_response(StatusCode::OK, &body))
}

fn table(server: &ApiServer, rows: &[&Value], query: &Query) -> Value {
    let include = query
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("Metadata");
    super::table::build_table(RESOURCE, rows, "", include, server.clock.now())
}
