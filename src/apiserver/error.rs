//! API errors as Kubernetes `Status` objects: code, reason, message and details shaped as
//! upstream's `k8s.io/apimachinery/pkg/api/errors` builds them.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::registry::Kind;

/// The request body limit, as upstream's apiserver (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// One field-level cause of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: &'static str,
    /// The field path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// The message as upstream's `field.Error.ErrorBody()` renders it.
    pub message: String,
}

impl Cause {
    /// A required field is missing.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message,
        }
    }

    /// A field has an invalid value; `value` is already rendered (`"x"`, `3`, `map[...]`).
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// A field has a value outside its supported set.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                supported.join(", ")
            ),
        }
    }

    /// A field may not be set (or not to this value).
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// A value names something that does not exist (`value` already Go-quoted).
    pub fn not_found(field: impl Into<String>, value: &str) -> Self {
        Self {
            reason: "FieldValueNotFound",
            field: field.into(),
            message: format!("Not found: {value}"),
        }
    }

    /// A value stands twice where it must be unique (`value` already Go-quoted).
    pub fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {value}"),
        }
    }

    /// A value is longer than `max` bytes.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    /// A field may not be changed.
    pub fn immutable(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: "Invalid value: field is immutable".into(),
        }
    }

    /// `field: message`, the form upstream joins into an Invalid status message.
    pub fn render(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// An error answered to an API client as a `Status` object.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `StatusReason`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status, when upstream sets them.
    pub details: Option<Value>,
}

/// Result type of API handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for an object: `pods "x" not found`.
    pub fn not_found(kind: &Kind, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.qualified_resource()),
        )
        .with_details(json!({"name": name, "group": kind.group, "kind": kind.resource}))
    }

    /// 404 for a namespace that does not exist when creating in it.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    /// 404 for a path the server does not serve.
    pub fn unknown_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.qualified_resource()),
        )
        .with_details(json!({"name": name, "group": kind.group, "kind": kind.resource}))
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(kind: &Kind, name: &str) -> Self {
        Self::conflict_with(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a reason of its own.
    pub fn conflict_with(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                kind.qualified_resource()
            ),
        )
        .with_details(json!({"name": name, "group": kind.group, "kind": kind.resource}))
    }

    /// 422 Invalid with field causes.
    pub fn invalid(kind: &Kind, name: &str, causes: &[Cause]) -> Self {
        Self::invalid_as(&kind.qualified_kind(), kind.group, kind.kind, name, causes)
    }

    /// 422 Invalid for a request's options (`CreateOptions`, `DeleteOptions`, ...), which
    /// upstream names in group meta.k8s.io with no object name.
    pub fn invalid_options(options_kind: &str, causes: &[Cause]) -> Self {
        let qualified = format!("{options_kind}.meta.k8s.io");
        Self::invalid_as(&qualified, "meta.k8s.io", options_kind, "", causes)
    }

    /// 422 Invalid for a kind the registry does not hold (a subresource's own kind, such as
    /// `TokenRequest.authentication.k8s.io`).
    /// A core kind (empty `group`) is named alone (`PodLogOptions`).
    pub fn invalid_kind(group: &str, kind: &str, name: &str, causes: &[Cause]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Self::invalid_as(&qualified, group, kind, name, causes)
    }

    fn invalid_as(qualified: &str, group: &str, kind: &str, name: &str, causes: &[Cause]) -> Self {
        // The message names each distinct cause once, as upstream's ToAggregate does; the
        // causes list keeps them all.
        let mut rendered: Vec<String> = Vec::new();
        for cause in causes {
            let line = cause.render();
            if !rendered.contains(&line) {
                rendered.push(line);
            }
        }
        let summary = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// What upstream's `NewGenericServerResponse` makes of an error status a backend (a
    /// kubelet) answered a proxied request with: the code's stock message naming the resource
    /// (`the server could not find the requested resource ( pods/log web)`); the backend's own
    /// words only where upstream keeps them (403, 406, 415).
    pub fn server_response(code: u16, resource: &str, name: &str, server_message: &str) -> Self {
        let (reason, message) = match code {
            409 => ("Conflict", "the server reported a conflict".to_string()),
            404 => (
                "NotFound",
                "the server could not find the requested resource".to_string(),
            ),
            400 => (
                "BadRequest",
                "the server rejected our request for an unknown reason".to_string(),
            ),
            401 => (
                "Unauthorized",
                "the server has asked for the client to provide credentials".to_string(),
            ),
            403 => ("Forbidden", server_message.to_string()),
            406 if server_message.is_empty() || server_message == "unknown" => (
                "NotAcceptable",
                "the server was unable to respond with a content type that the client supports"
                    .to_string(),
            ),
            406 => ("NotAcceptable", server_message.to_string()),
            415 => ("UnsupportedMediaType", server_message.to_string()),
            405 => (
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource".to_string(),
            ),
            422 => (
                "Invalid",
                "the server rejected our request due to an error in our request".to_string(),
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request".to_string(),
            ),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".to_string()),
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".to_string()),
            code if code >= 500 => (
                "InternalError",
                format!(
                    "an error on the server ({}) has prevented the request from succeeding",
                    super::validation::go_quote(server_message)
                ),
            ),
            code => (
                "",
                format!("the server responded with the status code {code} but did not return more information"),
            ),
        };
        // The verb is empty here, so upstream's "(<verb> <resource> <name>)" opens with a space.
        Self::new(code, reason, format!("{message} ( {resource} {name})"))
            .with_details(json!({"name": name, "group": "", "kind": resource}))
    }

    /// 403 Forbidden.
    pub fn forbidden(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: {why}",
                kind.qualified_resource()
            ),
        )
        .with_details(json!({"name": name, "group": kind.group, "kind": kind.resource}))
    }

    /// 403 Forbidden: a create into a namespace that is being deleted (upstream's
    /// NamespaceLifecycle admission, with its `NamespaceTerminating` cause).
    pub fn namespace_terminating(kind: &Kind, name: &str, namespace: &str) -> Self {
        Self::forbidden(
            kind,
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        )
        .with_details(json!({
            "name": name,
            "group": kind.group,
            "kind": kind.resource,
            "causes": [{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {namespace} is being terminated"),
                "field": "metadata.namespace",
            }],
        }))
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// 410 Expired.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 422 with no more said, as upstream's `NewGenericServerResponse` answers a JSON patch that
    /// cannot be applied.
    pub fn rejected() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(json!({}))
    }

    /// 504 Timeout: the request did not complete in time.
    pub fn timeout() -> Self {
        Self::new(
            504,
            "Timeout",
            "Timeout: request did not complete within the allotted timeout",
        )
        .with_details(json!({}))
    }

    /// 413 RequestEntityTooLarge: the body is over [`MAX_BODY_BYTES`].
    pub fn too_large() -> Self {
        Self::too_large_because(&format!("limit is {MAX_BODY_BYTES}"))
    }

    /// 413 RequestEntityTooLarge, for `why`.
    pub fn too_large_because(why: &str) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {why}"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(json!({"causes": [{"reason": "UnexpectedHeader", "message": format!("unsupported media type {content_type:?}"), "field": "Content-Type"}]}))
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf (asked for {accept})"),
        )
    }

    /// 500 without a reason: what upstream answers for a componentstatus it does not check (a
    /// plain Go error, which its status conversion leaves unclassified).
    pub fn component_not_found(name: &str) -> Self {
        Self::new(500, "", format!("Component not found: {name}"))
    }

    /// 500 InternalError.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// The Status object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if self.reason.is_empty() {
            // `reason` is omitempty: an error upstream does not classify has none.
            if let Some(map) = status.as_object_mut() {
                map.remove("reason");
            }
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
