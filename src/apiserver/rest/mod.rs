//! Routing and the REST verbs. Decodes request bodies at the edge and encodes responses; every
//! kind is served by the same code, driven by its registry entry.
//!
//! As upstream's `endpoints/handlers`, the verbs live beside the dispatcher: `read` (get, list),
//! `write` (create, update, patch, apply), `delete` (delete, deletecollection) and
//! `subresource` (binding, scale, log). Every read-modify-write (patch, apply, delete, binding,
//! scale) retries through the one [`retry_on_conflict`].

mod connect;
mod delete;
mod read;
mod subresource;
mod write;

pub(in crate::apiserver) use write::generate_name;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use super::body::{content_type, decode_body};
use super::error::{ApiError, ApiResult, MAX_BODY_BYTES};
use super::registry::{self, Kind};
use super::selector::{FieldSelector, LabelSelector};
use super::{discovery, openapi, openapi_v2, watch, ApiServer, Cause};
use crate::store::{self, Object};

/// How many times a read-modify-write is retried when the object changes under it.
const CONFLICT_RETRIES: usize = 16;

const JSON: &str = "application/json";

/// The router: everything goes through one dispatcher driven by the registry.
pub fn router(server: Arc<ApiServer>) -> Router {
    Router::new().fallback(dispatch).with_state(server)
}

/// Whether reading a body failed because it is over the limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The query parameters of a request.
pub(super) type Query = HashMap<String, String>;

/// The query key under which a request's User-Agent, up to its first `/`, travels to the
/// writes that record it as their field manager (a request cannot set it: it is replaced).
const USER_AGENT_KEY: &str = "\u{0}user-agent";

/// A User-Agent's product (up to its first `/`), as upstream makes a field manager of it:
/// printable characters only, at most 128 bytes.
fn user_agent_product(agent: &[u8]) -> String {
    let agent = String::from_utf8_lossy(agent);
    let mut product = String::new();
    for c in agent.split('/').next().unwrap_or_default().chars() {
        if c.is_control() || c == char::REPLACEMENT_CHARACTER {
            continue;
        }
        if product.len() + c.len_utf8() > 128 {
            break;
        }
        product.push(c);
    }
    product
}

/// The field manager of a write: the `fieldManager` parameter, else the User-Agent's product
/// (`kubectl`, `kube-controller-manager`), as upstream names managers.
pub(super) fn field_manager(query: &Query) -> &str {
    query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .or_else(|| query.get(USER_AGENT_KEY))
        .map_or("", String::as_str)
}

async fn dispatch(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Some((namespace, name, sub)) = connect::target_of(parts.uri.path()) {
        // exec, attach, portforward: the connection may switch protocols, so the upgrade is
        // handed over before anything else reads the request.
        let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        return server
            .pod_connect(
                namespace,
                name,
                sub,
                &parts.method,
                parts.uri.query(),
                &parts.headers,
                on_upgrade,
            )
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let mut query: Query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    query.remove(USER_AGENT_KEY);
    if let Some(agent) = parts.headers.get(header::USER_AGENT) {
        query.insert(
            USER_AGENT_KEY.to_string(),
            user_agent_product(agent.as_bytes()),
        );
    }
    // A body that does not arrive within the request timeout is given up on, as upstream's
    // timeout filter does, instead of holding the connection for ever.
    let body = match tokio::time::timeout(
        server.request_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => return ApiError::too_large().into_response(),
        Ok(Err(e)) => {
            return ApiError::bad_request(format!("cannot read the request body: {e}"))
                .into_response()
        }
        Err(_) => return ApiError::timeout().into_response(),
    };
    let path = parts.uri.path().to_string();
    tracing::debug!(method = %parts.method, %path, "request");
    let result = route(&server, &parts.method, &path, &query, &parts.headers, body).await;
    match result {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// A parsed resource URL.
pub(super) struct Target {
    pub kind: &'static Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub(super) fn json_response(code: StatusCode, value: &Value) -> Response {
    bytes_response(
        code,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

fn bytes_response(code: StatusCode, body: Bytes) -> Response {
    let mut response = (code, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

async fn route(
    server: &Arc<ApiServer>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get_only = |value: Value| -> ApiResult<Response> {
        if method == Method::GET {
            Ok(json_response(StatusCode::OK, &value))
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segments.as_slice() {
        ["version"] => return get_only(discovery::version()),
        ["healthz" | "readyz" | "livez", ..] => {
            return Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "ok",
            )
                .into_response())
        }
        ["api"] => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            return get_only(discovery::core_versions(host));
        }
        ["apis"] => return get_only(discovery::group_list()),
        ["apis", group] => {
            return get_only(discovery::group(group).ok_or_else(ApiError::unknown_path)?)
        }
        ["api", "v1"] => {
            return get_only(discovery::resource_list("", "v1").ok_or_else(ApiError::unknown_path)?)
        }
        ["apis", group, version] => {
            return get_only(
                discovery::resource_list(group, version).ok_or_else(ApiError::unknown_path)?,
            )
        }
        ["openapi", "v2"] | ["swagger-2.0.0.pb-v1"] => {
            if method != Method::GET {
                return Err(ApiError::method_not_allowed());
            }
            // Protobuf (gnostic's Document) unless the client asks for JSON only, as upstream.
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .unwrap_or("");
            if accept.contains("application/json") && !accept.contains("protobuf") {
                return Ok(json_response(StatusCode::OK, openapi_v2::swagger()));
            }
            return Ok((
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )],
                openapi_v2::document(),
            )
                .into_response());
        }
        ["openapi", "v3"] => return get_only(openapi::index()),
        ["openapi", "v3", rest @ ..] => {
            let doc = openapi::document(&rest.join("/")).ok_or_else(ApiError::unknown_path)?;
            return if method == Method::GET {
                Ok(bytes_response(StatusCode::OK, doc))
            } else {
                Err(ApiError::method_not_allowed())
            };
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::unknown_path()),
    };
    let target = parse_target(group, version, rest)?;
    let deprecated = deprecation(target.kind);
    let result = handle(server, method, target, query, headers, body).await;
    match deprecated {
        // Every answer about a deprecated resource carries the warning, failures too.
        Some(warning) => Ok(write::with_warnings(
            result.unwrap_or_else(IntoResponse::into_response),
            &[warning.to_string()],
        )),
        None => result,
    }
}

/// The warning upstream sends with every request to a deprecated resource.
fn deprecation(kind: &Kind) -> Option<&'static str> {
    match (kind.group, kind.version, kind.resource) {
        ("", "v1", "endpoints") => {
            Some("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")
        }
        ("", "v1", "componentstatuses") => Some("v1 ComponentStatus is deprecated in v1.19+"),
        _ => None,
    }
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> ApiResult<Target> {
    let namespaced_rest = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if registry::lookup(group, version, resource).is_some_and(|k| k.namespaced) =>
        {
            Some((*ns, *resource, tail))
        }
        _ => None,
    };
    let (namespace, resource, tail) = match namespaced_rest {
        Some((ns, resource, tail)) => (Some(ns.to_string()), resource, tail),
        None => match rest {
            [resource, tail @ ..] => (None, *resource, tail),
            [] => return Err(ApiError::unknown_path()),
        },
    };
    let kind = registry::lookup(group, version, resource).ok_or_else(ApiError::unknown_path)?;
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if kind.has_subresource(sub) || (kind.resource == "pods" && *sub == "log") => {
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return Err(ApiError::unknown_path()),
    };
    if kind.namespaced && namespace.is_none() && name.is_some() {
        // A namespaced object must be addressed inside its namespace.
        return Err(ApiError::unknown_path());
    }
    Ok(Target {
        kind,
        namespace,
        name,
        subresource,
    })
}

async fn handle(
    server: &Arc<ApiServer>,
    method: &Method,
    target: Target,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let as_table = wants_table(headers);
    check_dry_run(method, query.get("dryRun").map(String::as_str))?;
    if let Some(verb) = verb_of(method, &target, query) {
        if !target.kind.verbs.contains(&verb) {
            return Err(ApiError::method_not_allowed());
        }
    }
    if target.kind.resource == super::componentstatus::RESOURCE {
        return super::componentstatus::serve(server, &target, query, as_table).await;
    }
    match (
        method.as_str(),
        target.name.as_deref(),
        target.subresource.as_deref(),
    ) {
        ("GET", None, None) => {
            if query_flag(query, "watch") {
                watch::serve(
                    server.clone(),
                    target.kind,
                    target.namespace,
                    query,
                    as_table,
                )
                .await
            } else {
                server.list(&target, query, as_table).await
            }
        }
        ("GET", Some(name), None) => server.get(&target, name, query, as_table).await,
        ("GET", Some(name), Some("scale")) => server.get_scale(&target, name).await,
        ("GET", Some(name), Some("log")) => server.pod_log(&target, name, query).await,
        ("GET", Some(name), Some("status")) => server.get(&target, name, query, false).await,
        ("POST", None, None) => {
            let obj = decode_body(headers, &body).await?;
            server.create(&target, obj, query).await
        }
        ("POST", Some(name), Some("binding")) => {
            let obj = decode_body(headers, &body).await?;
            server.bind(&target, name, obj).await
        }
        ("POST", Some(name), Some("token")) => {
            let obj = decode_body(headers, &body).await?;
            server.create_token(&target, name, obj).await
        }
        ("POST", Some(name), Some("eviction")) => {
            let obj = decode_body(headers, &body).await?;
            server.evict(&target, name, obj, query).await
        }
        ("PUT", Some(name), sub) => {
            let obj = decode_body(headers, &body).await?;
            server.update(&target, name, sub, obj, query).await
        }
        ("PATCH", Some(name), sub) => {
            let content_type = content_type(headers);
            server
                .patch(&target, name, sub, &content_type, &body, query)
                .await
        }
        ("DELETE", Some(name), None) => {
            let options = delete_options(headers, &body).await?;
            server.delete(&target, name, &options, query).await
        }
        ("DELETE", None, None) => {
            let options = delete_options(headers, &body).await?;
            server.delete_collection(&target, &options, query).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The verb a request on a kind's main resource is, as discovery names verbs.
fn verb_of(method: &Method, target: &Target, query: &Query) -> Option<&'static str> {
    if target.subresource.is_some() {
        return None;
    }
    let named = target.name.is_some();
    Some(match method.as_str() {
        "GET" if query_flag(query, "watch") => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" if !named => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        _ => return None,
    })
}

pub(super) fn query_flag(query: &Query, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub(super) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn store_error(kind: &Kind, name: &str, err: store::Error) -> ApiError {
    match err {
        store::Error::NotFound { .. } => ApiError::not_found(kind, name),
        store::Error::AlreadyExists { .. } => ApiError::already_exists(kind, name),
        store::Error::Conflict { .. } => ApiError::conflict(kind, name),
        store::Error::Expired { requested, oldest } => ApiError::expired(format!(
            "too old resource version: {requested} ({})",
            oldest + 1
        )),
        store::Error::Unavailable { message } => ApiError::internal(message),
    }
}

/// The label and field selectors of a list or deletecollection.
pub(super) fn selectors(kind: &Kind, query: &Query) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(
        kind,
        query.get("fieldSelector").map(String::as_str).unwrap_or(""),
    )?;
    Ok((labels, fields))
}

/// A DELETE's DeleteOptions body (none is fine), its `dryRun` checked as the query's is.
async fn delete_options(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let options = decode_body(headers, body).await?;
    for mode in options["dryRun"].as_array().into_iter().flatten() {
        check_dry_run(&Method::DELETE, Some(mode.as_str().unwrap_or_default()))?;
    }
    Ok(options)
}

/// Upstream's `ValidateDryRun` for a write's options: `dryRun` may only be `All`.
fn check_dry_run(method: &Method, mode: Option<&str>) -> ApiResult<()> {
    let options = match method.as_str() {
        "POST" => "CreateOptions",
        "PUT" => "UpdateOptions",
        "PATCH" => "PatchOptions",
        "DELETE" => "DeleteOptions",
        _ => return Ok(()),
    };
    match mode {
        None | Some("All") => Ok(()),
        Some(other) => Err(ApiError::invalid_options(
            options,
            &[Cause {
                reason: "FieldValueNotSupported",
                field: "dryRun".into(),
                message: format!(
                    "Unsupported value: []string{{{}}}: supported values: \"All\"",
                    super::validation::go_quote(other)
                ),
            }],
        )),
    }
}

/// `dryRun=All` in the query or in a DeleteOptions body (`kubectl delete --dry-run=server`
/// sends the body).
fn dry_run_with(query: &Query, options: &Value) -> bool {
    let in_options = options["dryRun"]
        .as_array()
        .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    dry_run(query) || in_options
}

fn dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

/// Objects differ in more than their resourceVersion and managed fields.
/// Whether an update changes anything worth a write: a change of managedFields counts (a second
/// manager applying the same configuration becomes an owner), a change of their times alone
/// does not, as upstream ignores one.
fn changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            if let Some(entries) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    entry.remove("time");
                }
            }
        }
        v
    };
    strip(old) != strip(new)
}

impl ApiServer {
    fn present(&self, kind: &Kind, obj: &Object) -> Bytes {
        if kind.from_storage.is_none() {
            return obj.json.clone();
        }
        match kind.present(&obj.value()) {
            Some(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            None => obj.json.clone(),
        }
    }

    fn present_value(&self, kind: &Kind, value: &Value) -> Value {
        kind.present(value).unwrap_or_else(|| value.clone())
    }

    fn object_response(&self, code: StatusCode, kind: &Kind, obj: &Object) -> Response {
        bytes_response(code, self.present(kind, obj))
    }

    async fn load(&self, target: &Target, name: &str) -> ApiResult<Arc<Object>> {
        let key = target.kind.key(target.namespace.as_deref(), name);
        self.store
            .get(&key)
            .await
            .map_err(|e| store_error(target.kind, name, e))?
            .ok_or_else(|| ApiError::not_found(target.kind, name))
    }
}

/// The name of a stored object (its first selectable field).
fn object_name(obj: &Object) -> &str {
    obj.attrs.fields.first().map(|n| &**n).unwrap_or("")
}

/// Run a read-modify-write until no other write beats it, as upstream's `GuaranteedUpdate`
/// does: each attempt reads the object afresh and either finishes (`Break`) or, having lost
/// the race, asks to go again (`Continue`). After [`CONFLICT_RETRIES`] lost races the object
/// is reported as modified (409 Conflict). An attempt is a `move || async move { .. }` over
/// references, so that each attempt is a future of its own.
async fn retry_on_conflict<T, Attempt>(
    kind: &Kind,
    name: &str,
    mut attempt: impl FnMut() -> Attempt,
) -> ApiResult<T>
where
    Attempt: std::future::Future<Output = ApiResult<ControlFlow<T>>>,
{
    for _ in 0..CONFLICT_RETRIES {
        if let ControlFlow::Break(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(ApiError::conflict(kind, name))
}

/// A write's outcome inside [`retry_on_conflict`]: a Conflict (another write got there first)
/// means another attempt; anything else is final.
fn again_on_conflict<T>(written: ApiResult<T>) -> ApiResult<ControlFlow<T>> {
    match written {
        Ok(done) => Ok(ControlFlow::Break(done)),
        Err(e) if e.code == 409 && e.reason == "Conflict" => Ok(ControlFlow::Continue(())),
        Err(e) => Err(e),
    }
}
