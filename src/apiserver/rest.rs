//! Routing and the REST verbs. Decodes request bodies at the edge and encodes responses; every
//! kind is served by the same code, driven by its registry entry.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::body::{content_type, decode_body, decode_yaml};
use super::error::{ApiError, ApiResult, MAX_BODY_BYTES};
use super::patch::{
    apply_conflict_error, apply_conflicts, apply_patch, disown, patch_names_resource_version,
    record_manager, strip_meta_for_apply,
};
use super::proxy::{kubelet_get, vouch_for};
use super::registry::{self, Generation, Kind};
use super::selector::{FieldSelector, LabelSelector};
use super::strategy::Operation;
use super::{discovery, openapi, openapi_v2, strategic, table, watch, ApiServer};
use crate::clock::format_time;
use crate::store::{self, Object};

/// The alphabet of generated name suffixes (upstream's `utilrand.String`).
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How many times a generated name is retried on a clash (upstream 1.32+).
const GENERATE_NAME_RETRIES: usize = 8;

/// How many times a patch is retried when the object changes under it.
const PATCH_RETRIES: usize = 16;

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

async fn dispatch(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query: Query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
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

fn json_response(code: StatusCode, value: &Value) -> Response {
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
    handle(server, method, target, query, headers, body).await
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
            let options = if body.is_empty() {
                Value::Null
            } else {
                decode_body(headers, &body).await?
            };
            server.delete(&target, name, &options, query).await
        }
        ("DELETE", None, None) => {
            let options = if body.is_empty() {
                Value::Null
            } else {
                decode_body(headers, &body).await?
            };
            server.delete_collection(&target, &options, query).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
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

/// A generated name: the prefix (cut to leave room) and five characters of the upstream alphabet.
pub fn generate_name(base: &str) -> String {
    let base: String = base.chars().take(58).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
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
    }
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

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

fn dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

/// Objects differ in more than their resourceVersion and managed fields.
fn changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
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

    async fn get(
        &self,
        target: &Target,
        name: &str,
        query: &Query,
        as_table: bool,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let key = kind.key(target.namespace.as_deref(), name);
        let obj = self
            .store
            .get(&key)
            .await
            .map_err(|e| store_error(kind, name, e))?
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        if as_table {
            let value = self.present_value(kind, &obj.value());
            let include = query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or("Metadata");
            let table = table::build_table(
                kind.resource,
                &[&value],
                &obj.mod_revision.to_string(),
                include,
                self.clock.now(),
            );
            return Ok(json_response(StatusCode::OK, &table));
        }
        Ok(self.object_response(StatusCode::OK, kind, &obj))
    }

    async fn list(&self, target: &Target, query: &Query, as_table: bool) -> ApiResult<Response> {
        let kind = target.kind;
        let labels =
            LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
        let fields = FieldSelector::parse(
            kind,
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        )?;
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let continue_token = query.get("continue").filter(|c| !c.is_empty());
        let (at, start) = match continue_token {
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
        };
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
            let include = query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or("Metadata");
            let mut t = table::build_table(kind.resource, &refs, &rv, include, self.clock.now());
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
        // Assemble the list from the stored encodings; nothing is encoded twice.
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
        out.extend_from_slice(&serde_json::to_vec(&metadata).unwrap_or_default());
        out.extend_from_slice(b",\"items\":[");
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.present(kind, o));
        }
        out.extend_from_slice(b"]}");
        Ok(bytes_response(StatusCode::OK, Bytes::from(out)))
    }

    /// Create an object as the API would, without HTTP (the initial namespaces).
    pub(super) async fn create_internal(
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
        let (obj, _) = self.create_object(&target, body, &Query::new()).await?;
        Ok(obj)
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
            return Err(ApiError::forbidden(
                kind,
                name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
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

    async fn create_object(
        &self,
        target: &Target,
        mut obj: Value,
        query: &Query,
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
        if kind.resource == "services" {
            self.allocate_cluster_ip(kind, &mut obj).await?;
        }
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
            if dry_run(query) {
                return Ok((Arc::new(kind.draft(admitted.value)?.unstored()), warnings));
            }
            let key = kind.key(namespace.as_deref(), &name);
            match self.store.create(&key, kind.draft(admitted.value)?).await {
                Ok(o) => return Ok((o, warnings)),
                Err(store::Error::AlreadyExists { .. }) if attempt + 1 < attempts => continue,
                Err(e) => return Err(store_error(kind, &name, e)),
            }
        }
        Err(ApiError::internal("could not generate a unique name"))
    }

    /// Give a new ClusterIP Service an address from the service range (10.96.0.0/12), unique
    /// among Services, as upstream's allocator does; a requested address must be free.
    async fn allocate_cluster_ip(&self, kind: &Kind, obj: &mut Value) -> ApiResult<()> {
        let service_type = obj["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        if service_type == "ExternalName" || !obj["spec"].is_object() {
            return Ok(());
        }
        let requested = obj["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
        if requested == "None" {
            obj["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let taken: std::collections::HashSet<String> = self
            .store
            .list(&kind.prefix(None), None)
            .await
            .map_err(ApiError::internal)?
            .items
            .iter()
            .filter_map(|o| o.value()["spec"]["clusterIP"].as_str().map(String::from))
            .collect();
        let ip = if requested.is_empty() {
            let mut rng = rand::rng();
            // The first addresses of the range are kept for the kubernetes and DNS services.
            (0..1000)
                .map(|_| {
                    let n: u32 = rng.random_range(16..(1 << 20) - 1);
                    format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
                })
                .find(|ip| !taken.contains(ip))
                .ok_or_else(|| ApiError::internal("the service IP range is full"))?
        } else {
            if taken.contains(&requested) {
                let name = meta_str(obj, "name").unwrap_or_default().to_string();
                return Err(ApiError::invalid(
                    kind,
                    &name,
                    &[super::Cause::invalid(
                        "spec.clusterIPs",
                        &format!("[]string{{{requested:?}}}"),
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

    async fn create(&self, target: &Target, obj: Value, query: &Query) -> ApiResult<Response> {
        let (created, warnings) = self.create_object(target, obj, query).await?;
        Ok(with_warnings(
            self.object_response(StatusCode::CREATED, target.kind, &created),
            &warnings,
        ))
    }

    /// Merge a requested new version with the stored one per the kind's status strategy and
    /// metadata rules, admit it, and write it (unless nothing changed).
    async fn write_update(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        current: &Arc<Object>,
        mut new: Value,
        query: &Query,
        precondition: Option<u64>,
    ) -> ApiResult<(Arc<Object>, Vec<String>)> {
        let kind = target.kind;
        let old = &current.value();
        new["apiVersion"] = json!(kind.api_version());
        new["kind"] = json!(kind.kind);
        if let Some(to_storage) = kind.to_storage {
            new = to_storage(new);
        }
        let mut merged = match sub {
            Some("status") => {
                let mut m = old.clone();
                m["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                for f in ["labels", "annotations"] {
                    if let Some(v) = new["metadata"].get(f) {
                        meta_mut(&mut m).insert(f.into(), v.clone());
                    }
                }
                m
            }
            _ => {
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
        if kind.generation != Generation::None && sub.is_none() {
            let spec_changed = merged.get("spec") != old.get("spec");
            let annotations_changed = kind.generation == Generation::SpecOrAnnotations
                && merged["metadata"].get("annotations") != old["metadata"].get("annotations");
            if spec_changed || annotations_changed {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                meta_mut(&mut merged).insert("generation".into(), json!(g));
            }
        }
        let admitted = (kind.admit)(kind, Operation::Update, merged, Some(old))?;
        let warnings = check_unknown_fields(query, &admitted.unknown_fields)?;
        let mut value = admitted.value;
        // Keep the generation the update computed; defaulting must not reset it.
        if let Some(g) = old["metadata"].get("generation") {
            if value["metadata"].get("generation").is_none() {
                meta_mut(&mut value).insert("generation".into(), g.clone());
            }
        }
        if !changed(old, &value) || dry_run(query) {
            return Ok((current.clone(), warnings));
        }
        let deleting = value["metadata"]["deletionTimestamp"].is_string();
        let no_finalizers = value["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        let grace_done = value["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            == 0;
        let key = kind.key(target.namespace.as_deref(), name);
        let expected = precondition.unwrap_or(current.mod_revision);
        if deleting && no_finalizers && grace_done {
            // The last finalizer is gone: the deletion completes.
            let gone = self
                .store
                .delete(&key, Some(expected))
                .await
                .map_err(|e| store_error(kind, name, e))?;
            return Ok((gone, warnings));
        }
        let written = self
            .store
            .update(&key, kind.draft(value)?, Some(expected))
            .await
            .map_err(|e| store_error(kind, name, e))?;
        Ok((written, warnings))
    }

    async fn load(&self, target: &Target, name: &str) -> ApiResult<Arc<Object>> {
        let key = target.kind.key(target.namespace.as_deref(), name);
        self.store
            .get(&key)
            .await
            .map_err(|e| store_error(target.kind, name, e))?
            .ok_or_else(|| ApiError::not_found(target.kind, name))
    }

    async fn update(
        &self,
        target: &Target,
        name: &str,
        sub: Option<&str>,
        obj: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if sub == Some("scale") {
            return self.update_scale(target, name, obj).await;
        }
        if !matches!(sub, None | Some("status")) {
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
        let (written, warnings) = self
            .write_update(target, name, sub, &current, obj, query, precondition)
            .await?;
        Ok(with_warnings(
            self.object_response(StatusCode::OK, kind, &written),
            &warnings,
        ))
    }

    async fn patch(
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
        let parse_json = |body: &[u8]| -> ApiResult<Value> {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
        };
        let patch = match content_type {
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
        };
        if content_type == "application/apply-patch+yaml" {
            return self.apply(target, name, patch, query).await;
        }
        for _ in 0..PATCH_RETRIES {
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
                return self.update_scale(target, name, patched).await;
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
            match self
                .write_update(
                    target,
                    name,
                    sub,
                    &current,
                    patched,
                    query,
                    Some(current.mod_revision),
                )
                .await
            {
                Ok((written, warnings)) => {
                    return Ok(with_warnings(
                        self.object_response(StatusCode::OK, kind, &written),
                        &warnings,
                    ));
                }
                Err(e) if e.code == 409 && e.reason == "Conflict" && precondition.is_none() => {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict(kind, name))
    }

    /// Server-side apply: create the object from the applied configuration, or merge the
    /// configuration into it, recording the field manager.
    async fn apply(
        &self,
        target: &Target,
        name: &str,
        config: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let manager = query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("PATCH, application/apply-patch+yaml requires a non-empty fieldManager query parameter")
        })?;
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
        for _ in 0..PATCH_RETRIES {
            let current = match self.load(target, name).await {
                Ok(c) => c,
                Err(e) if e.code == 404 => {
                    if applied_name.is_empty() {
                        return Err(name_mismatch());
                    }
                    let mut obj = config.clone();
                    record_manager(
                        &mut obj,
                        manager,
                        "Apply",
                        &config,
                        kind,
                        &format_time(self.clock.now()),
                    );
                    let t = Target {
                        kind,
                        namespace: target.namespace.clone(),
                        name: None,
                        subresource: None,
                    };
                    match self.create_object(&t, obj, query).await {
                        Ok((created, warnings)) => {
                            return Ok(with_warnings(
                                self.object_response(StatusCode::CREATED, kind, &created),
                                &warnings,
                            ))
                        }
                        Err(e) if e.code == 409 => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            // A resourceVersion in the configuration is a precondition, as in an update.
            if applied_rv.is_some_and(|rv| rv != current.mod_revision.to_string()) {
                return Err(ApiError::conflict(kind, name));
            }
            let mut existing = self.present_value(kind, &current.value());
            let conflicts = apply_conflicts(&existing, &config, manager);
            if !conflicts.is_empty() {
                if !force {
                    return Err(apply_conflict_error(kind, name, &conflicts));
                }
                // Forced: the fields move to this manager, out of their old owners' sets.
                disown(&mut existing, &conflicts);
            }
            let mut merged = strategic::apply(kind.kind, &existing, &strip_meta_for_apply(&config))
                .map_err(|e| ApiError::bad_request(format!("failed to apply: {e}")))?;
            record_manager(
                &mut merged,
                manager,
                "Apply",
                &config,
                kind,
                &format_time(self.clock.now()),
            );
            match self
                .write_update(
                    target,
                    name,
                    None,
                    &current,
                    merged,
                    query,
                    Some(current.mod_revision),
                )
                .await
            {
                Ok((written, warnings)) => {
                    return Ok(with_warnings(
                        self.object_response(StatusCode::OK, kind, &written),
                        &warnings,
                    ))
                }
                Err(e) if e.code == 409 && e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict(kind, name))
    }

    async fn delete(
        &self,
        target: &Target,
        name: &str,
        options: &Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let grace_param = query
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
        let precondition_uid = options["preconditions"]["uid"].as_str().map(String::from);
        let precondition_rv = options["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
        for _ in 0..PATCH_RETRIES {
            let current = self.load(target, name).await?;
            let value = &current.value();
            if let Some(uid) = &precondition_uid {
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
            if let Some(rv) = &precondition_rv {
                if *rv != current.mod_revision.to_string() {
                    return Err(ApiError::conflict_with(kind, name, &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    )));
                }
            }
            let mut next = value.clone();
            let mut finalizers: Vec<String> = next["metadata"]["finalizers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let policy = propagation.clone().or_else(|| match orphan_dependents {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            });
            match policy.as_deref() {
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
                        &[super::Cause::not_supported(
                            "propagationPolicy",
                            other,
                            &["Foreground", "Background", "Orphan"],
                        )],
                    ))
                }
            }
            let grace = self.grace_period(kind, value, grace_param);
            let already_deleting = value["metadata"]["deletionTimestamp"].is_string();
            let key = kind.key(target.namespace.as_deref(), name);
            if kind.resource == "namespaces" {
                return self.delete_namespace(target, name, current).await;
            }
            if finalizers.is_empty() && grace == 0 {
                if dry_run(query) {
                    return Ok(self.deleted_response(kind, name, &current, true));
                }
                match self.store.delete(&key, Some(current.mod_revision)).await {
                    Ok(gone) => return Ok(self.deleted_response(kind, name, &gone, true)),
                    Err(store::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(kind, name, e)),
                }
            }
            // Graceful or finalized deletion: mark the object and leave it to its owners.
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
            if !changed(value, &next) || dry_run(query) {
                return Ok(self.deleted_response(kind, name, &current, false));
            }
            match self
                .store
                .update(&key, kind.draft(next)?, Some(current.mod_revision))
                .await
            {
                Ok(marked) => return Ok(self.deleted_response(kind, name, &marked, false)),
                Err(store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(kind, name, e)),
            }
        }
        Err(ApiError::conflict(kind, name))
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

    /// Namespace deletion: mark it Terminating, delete everything in it, then remove it.
    async fn delete_namespace(
        &self,
        target: &Target,
        name: &str,
        current: Arc<Object>,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let mut marked = current.value();
        let already = marked["metadata"]["deletionTimestamp"].is_string();
        if !already {
            meta_mut(&mut marked).insert(
                "deletionTimestamp".into(),
                json!(format_time(self.clock.now())),
            );
            meta_mut(&mut marked).insert("deletionGracePeriodSeconds".into(), json!(0));
            marked["status"]["phase"] = json!("Terminating");
        }
        let key = kind.key(None, name);
        let marked = if already {
            current
        } else {
            self.store
                .update(&key, kind.draft(marked)?, Some(current.mod_revision))
                .await
                .map_err(|e| store_error(kind, name, e))?
        };
        for k in registry::KINDS
            .iter()
            .filter(|k| k.namespaced && k.to_storage.is_none())
        {
            let list = self
                .store
                .list(&k.prefix(Some(name)), None)
                .await
                .map_err(ApiError::internal)?;
            for o in list.items {
                let key = k.key(Some(name), object_name(&o));
                match self.store.delete(&key, None).await {
                    Ok(_) | Err(store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(ApiError::internal(e)),
                }
            }
        }
        match self.store.delete(&key, None).await {
            Ok(_) | Err(store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ApiError::internal(e)),
        }
        Ok(self.object_response(StatusCode::OK, kind, &marked))
    }

    async fn delete_collection(
        &self,
        target: &Target,
        options: &Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        if !kind.verbs.contains(&"deletecollection") {
            return Err(ApiError::method_not_allowed());
        }
        let labels =
            LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
        let fields = FieldSelector::parse(
            kind,
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        )?;
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

    async fn bind(&self, target: &Target, name: &str, binding: Value) -> ApiResult<Response> {
        let kind = target.kind;
        let node = binding["target"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(kind, name, &[super::Cause::required("target.name", "")])
            })?;
        let node = node.to_string();
        for _ in 0..PATCH_RETRIES {
            let current = self.load(target, name).await?;
            let mut pod = current.value();
            if pod["metadata"]["deletionTimestamp"].is_string() {
                return Err(ApiError::conflict_with(
                    kind,
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict_with(
                    kind,
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            let now = format_time(self.clock.now());
            let conditions = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conditions: Vec<Value> = conditions
                .into_iter()
                .filter(|c| c["type"] != "PodScheduled")
                .collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            pod["status"]["conditions"] = json!(conditions);
            let key = kind.key(target.namespace.as_deref(), name);
            match self
                .store
                .update(&key, kind.draft(pod)?, Some(current.mod_revision))
                .await
            {
                Ok(_) => {
                    return Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    ))
                }
                Err(store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(kind, name, e)),
            }
        }
        Err(ApiError::conflict(kind, name))
    }

    async fn get_scale(&self, target: &Target, name: &str) -> ApiResult<Response> {
        let current = self.load(target, name).await?;
        Ok(json_response(
            StatusCode::OK,
            &scale_of(target.kind, &current.value()),
        ))
    }

    async fn update_scale(&self, target: &Target, name: &str, scale: Value) -> ApiResult<Response> {
        let kind = target.kind;
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            let cause = super::Cause::invalid(
                "spec.replicas",
                &replicas.to_string(),
                "must be greater than or equal to 0",
            );
            return Err(ApiError::invalid(
                registry::lookup("autoscaling", "v1", "scale").unwrap_or(kind),
                name,
                &[cause],
            ));
        }
        for _ in 0..PATCH_RETRIES {
            let current = self.load(target, name).await?;
            if let Some(rv) = meta_str(&scale, "resourceVersion").filter(|r| !r.is_empty()) {
                if rv != current.mod_revision.to_string() {
                    return Err(ApiError::conflict(kind, name));
                }
            }
            let mut next = current.value();
            next["spec"]["replicas"] = json!(replicas);
            match self
                .write_update(
                    target,
                    name,
                    None,
                    &current,
                    next,
                    &Query::new(),
                    Some(current.mod_revision),
                )
                .await
            {
                Ok((written, _)) => {
                    return Ok(json_response(
                        StatusCode::OK,
                        &scale_of(kind, &written.value()),
                    ))
                }
                Err(e) if e.code == 409 && e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict(kind, name))
    }
}

impl ApiServer {
    /// `pods/log`: find the pod's kubelet from its Node and proxy its container log endpoint.
    async fn pod_log(&self, target: &Target, name: &str, query: &Query) -> ApiResult<Response> {
        let pod = self.load(target, name).await?.value();
        let ns = target.namespace.clone().unwrap_or_default();
        let containers: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["spec"]["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect();
        let container = match query.get("container").filter(|c| !c.is_empty()) {
            Some(c) if containers.contains(c) => c.clone(),
            Some(c) => {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                )))
            }
        };
        let previous = query_flag(query, "previous");
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["status"]["initContainerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            );
        let status = statuses
            .into_iter()
            .find(|s| s["name"] == container.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        if previous && status["lastState"]["terminated"].is_null() {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        if !previous
            && status["state"]["running"].is_null()
            && status["state"]["terminated"].is_null()
        {
            let reason = status["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        let node_name = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let node_kind = registry::core("nodes");
        let node = self
            .store
            .get(&node_kind.key(None, &node_name))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(node_kind, &node_name))?
            .value();
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| ApiError::internal(format!("node {node_name} names no kubelet port")))?;
        // Only an IP address: the apiserver resolves no names a Node's author chose.
        let ip: std::net::IpAddr = node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .unwrap_or("127.0.0.1")
            .parse()
            .map_err(|_| {
                ApiError::internal(format!(
                    "node {node_name} names no usable InternalIP address for its kubelet"
                ))
            })?;
        let kubelet = std::net::SocketAddr::new(ip, port);
        // Forwarded parameters are encoded, never spliced into the kubelet's URL.
        let params: Vec<(&str, &str)> = ["previous", "follow", "tailLines"]
            .into_iter()
            .filter_map(|key| query.get(key).map(|v| (key, v.as_str())))
            .collect();
        let encoded = serde_urlencoded::to_string(&params).map_err(ApiError::internal)?;
        let path = format!("/containerLogs/{ns}/{name}/{container}?{encoded}");
        let authorization = match &self.kubelet_token {
            Some(token) => {
                vouch_for(kubelet, &node_name, token).await?;
                Some(format!("Bearer {token}"))
            }
            None => None,
        };
        let response = kubelet_get(kubelet, &node_name, &path, authorization.as_deref()).await?;
        if !response.status().is_success() {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is not available"
            )));
        }
        let body = axum::body::Body::new(response.into_body());
        Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
    }
}

/// An autoscaling/v1 Scale for a Deployment or ReplicaSet.
fn scale_of(_kind: &Kind, obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// The name of a stored object (its first selectable field).
fn object_name(obj: &Object) -> &str {
    obj.attrs.fields.first().map(|n| &**n).unwrap_or("")
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
    fn generated_names_use_the_upstream_alphabet() {
        let name = generate_name("web-7d4b9c8f5-");
        assert_eq!(name.len(), "web-7d4b9c8f5-".len() + 5);
        assert!(name[14..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        let long = generate_name(&"a".repeat(80));
        assert_eq!(long.len(), 63);
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "ns/web");
        assert_eq!(decode_continue(&t).unwrap(), (42, "ns/web".to_string()));
        assert_eq!(decode_continue("not-a-token").unwrap_err().code, 400);
    }
}
