//! Request bodies: the content type, and decoding JSON, YAML (bounded in depth, off the
//! connection threads) and protobuf into a JSON value.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::protobuf;

/// The request's content type without parameters, lowercased (JSON when absent).
pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("application/json")
        .trim()
        .to_ascii_lowercase()
}

pub(super) const ACCEPTED_BODIES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The deepest flow nesting (`[`, `{`) a YAML body may have. Scanning a YAML document costs
/// time quadratic in its flow depth, and no object is deeper than the decoder's recursion
/// limit (128) anyway, so deeper bodies are refused before they are parsed.
pub(super) const MAX_YAML_DEPTH: usize = 1000;

/// How long decoding one YAML body may take before the request is refused.
pub(super) const YAML_DECODE_DEADLINE: Duration = Duration::from_secs(10);

/// The deepest flow nesting in `text`, counting brackets outside quoted scalars and comments,
/// stopping as soon as it passes `limit`. A quote opens a quoted scalar only where a scalar
/// starts (at a line's start or after `:`, `-`, `?`, `,`, `[`, `{`); elsewhere (`a: b'c`) it is
/// part of a plain scalar, as YAML reads it.
pub(super) fn yaml_flow_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut single, mut double, mut comment, mut escaped) = (false, false, false, false);
    let mut previous = b'\n';
    // The last byte that was not a space or a tab (a newline counts: a line's start).
    let mut significant = b'\n';
    for &b in text {
        if comment {
            comment = b != b'\n';
        } else if double {
            double = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if single {
            single = b != b'\'';
        } else {
            let scalar_start =
                matches!(significant, b'\n' | b':' | b'-' | b'?' | b',' | b'[' | b'{');
            match b {
                b'"' if scalar_start => double = true,
                b'\'' if scalar_start => single = true,
                b'#' if previous.is_ascii_whitespace() => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                    if deepest > limit {
                        return deepest;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = b;
        if b != b' ' && b != b'\t' {
            significant = b;
        }
    }
    deepest
}

/// Decode a YAML body where it is: over-deep documents are refused before they are parsed.
pub(crate) fn decode_yaml_here(body: &[u8]) -> Result<Value, String> {
    if yaml_flow_depth(body, MAX_YAML_DEPTH) > MAX_YAML_DEPTH {
        return Err(format!("yaml: exceeded max depth of {MAX_YAML_DEPTH}"));
    }
    serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string())
}

/// Decode a YAML body on a blocking thread (never on the threads that serve connections),
/// answering after [`YAML_DECODE_DEADLINE`] at the latest (the depth bound keeps the thread's
/// work bounded, so it finishes soon after).
pub(super) async fn decode_yaml(body: &Bytes) -> Result<Value, String> {
    let body = body.clone();
    let decode = tokio::task::spawn_blocking(move || decode_yaml_here(&body));
    match tokio::time::timeout(YAML_DECODE_DEADLINE, decode).await {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(e)) => {
            tracing::error!(cause = %e, "the YAML decoder failed");
            Err(format!("the YAML decoder failed: {e}"))
        }
        Err(_) => Err(format!(
            "the YAML body took longer than {YAML_DECODE_DEADLINE:?} to decode"
        )),
    }
}

/// Decode a request body by its Content-Type.
pub(super) async fn decode_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let ct = content_type(headers);
    let value = match ct.as_str() {
        "application/json" | "" => serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" => decode_yaml(body).await.map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
        })?,
        "application/vnd.kubernetes.protobuf" => protobuf::decode_object(body)
            .map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other, ACCEPTED_BODIES)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the request body is not a JSON object",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_depth_counts_brackets_outside_quoted_scalars_only() {
        assert_eq!(yaml_flow_depth(b"a: [[1], {b: [2]}]", 1000), 3);
        assert_eq!(yaml_flow_depth(b"a: '[[[['\nb: \"{{{\\\"{\"", 1000), 0);
        assert_eq!(yaml_flow_depth(b"a: 1 # [[[[\n", 1000), 0);
        // A quote inside a plain scalar opens nothing: the brackets after it count.
        assert_eq!(yaml_flow_depth(b"a: b'c [[[[[", 1000), 5);
        assert_eq!(yaml_flow_depth(&[b'['; 5000], 1000), 1001);
    }
}
