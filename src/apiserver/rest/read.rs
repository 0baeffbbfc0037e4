//! The read verbs: get, and list with selectors, pagination (continue tokens) and Tables.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::registry::Kind;
use crate::apiserver::{table, ApiServer};
use crate::store::{self, Object};

use super::{bytes_response, json_response, object_name, selectors, store_error, Query, Target};

impl ApiServer {
    pub(super) async fn get(
        &self,
        target: &Target,
        name: &str,
        query: &Query,
        as_table: bool,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let obj = self.load(target, name).await?;
        if as_table {
            let value = self.present_value(kind, &obj.value());
            let table = self.table(kind, &[&value], &obj.mod_revision.to_string(), query);
            return Ok(json_response(StatusCode::OK, &table));
        }
        Ok(self.object_response(StatusCode::OK, kind, &obj))
    }

    pub(super) async fn list(
        &self,
        target: &Target,
        query: &Query,
        as_table: bool,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let (labels, fields) = selectors(kind, query)?;
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let continue_token = query.get("continue").filter(|c| !c.is_empty());
        let (at, start) = list_position(query, continue_token)?;
        let prefix = kind.prefix(target.namespace.as_deref());
        let list = self.store.list(&prefix, at).await.map_err(|e| match e {
            store::Error::Expired { .. } if continue_token.is_some() => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ),
            other => store_error(kind, "", other),
        })?;
        let filtered = !labels.is_empty() || !fields.is_empty();
        let mut items: Vec<&Arc<Object>> = list
            .items
            .iter()
            .filter(|o| {
                start.as_deref().is_none_or(|s| {
                    let key = name_key(o);
                    key.as_str() > s
                })
            })
            .filter(|o| labels.matches(&o.attrs) && fields.matches(&o.attrs))
            .collect();
        let mut continue_out = None;
        let mut remaining = None;
        if limit > 0 && items.len() > limit {
            let rest = items.len() - limit;
            items.truncate(limit);
            let last = name_key(items[limit - 1]);
            continue_out = Some(encode_continue(list.revision, &last));
            if !filtered {
                remaining = Some(rest);
            }
        }
        let rv = list.revision.to_string();
        if as_table {
            let values: Vec<Value> = items
                .iter()
                .map(|o| self.present_value(kind, &o.value()))
                .collect();
            let refs: Vec<&Value> = values.iter().collect();
            let mut t = self.table(kind, &refs, &rv, query);
            if let Some(c) = &continue_out {
                t["metadata"]["continue"] = json!(c);
            }
            return Ok(json_response(StatusCode::OK, &t));
        }
        let mut metadata = json!({"resourceVersion": rv});
        if let Some(c) = continue_out {
            metadata["continue"] = json!(c);
        }
        if let Some(r) = remaining {
            metadata["remainingItemCount"] = json!(r);
        }
        let body = self.list_body(kind, &metadata, &items);
        Ok(bytes_response(StatusCode::OK, body))
    }

    /// Objects as a server-side Table, with as much of each object as `includeObject` asks.
    fn table(&self, kind: &Kind, rows: &[&Value], resource_version: &str, query: &Query) -> Value {
        let include = query
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        table::build_table(
            kind.resource,
            rows,
            resource_version,
            include,
            self.clock.now(),
        )
    }

    /// A list's JSON, assembled from the stored encodings; nothing is encoded twice.
    fn list_body(&self, kind: &Kind, metadata: &Value, items: &[&Arc<Object>]) -> Bytes {
        let mut out =
            Vec::with_capacity(64 + items.iter().map(|o| o.json.len() + 1).sum::<usize>());
        out.extend_from_slice(
            format!(
                "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
                kind.list_kind(),
                kind.api_version()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&serde_json::to_vec(metadata).unwrap_or_default());
        out.extend_from_slice(b",\"items\":[");
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.present(kind, o));
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

/// Where a list reads: at the revision and after the key a continue token carries, or at an
/// exact `resourceVersion` (`resourceVersionMatch=Exact`), or at the latest revision.
fn list_position(
    query: &Query,
    continue_token: Option<&String>,
) -> ApiResult<(Option<u64>, Option<String>)> {
    Ok(match continue_token {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            (Some(rv), Some(start))
        }
        None => {
            let exact = query
                .get("resourceVersionMatch")
                .is_some_and(|m| m == "Exact");
            let rv = query
                .get("resourceVersion")
                .and_then(|r| r.parse::<u64>().ok())
                .filter(|r| *r > 0);
            (if exact { rv } else { None }, None)
        }
    })
}

/// The list ordering key of an object: `<namespace>/<name>`.
fn name_key(obj: &Object) -> String {
    format!(
        "{}/{}",
        obj.attrs.fields.get(1).map(|n| &**n).unwrap_or(""),
        object_name(obj)
    )
}

fn encode_continue(revision: u64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, String)> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    Ok((rv, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "ns/web");
        assert_eq!(decode_continue(&t).unwrap(), (42, "ns/web".to_string()));
        assert_eq!(decode_continue("not-a-token").unwrap_err().code, 400);
    }
}
