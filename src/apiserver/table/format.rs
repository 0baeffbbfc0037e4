//! Helpers shared by the printers: reading fields of object JSON (a `null` reads as absent),
//! apimachinery's `HumanDuration`, timestamps and ages, and label and selector formatting.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub(super) const UNKNOWN: &str = "<unknown>";
pub(super) const NONE: &str = "<none>";

/// Upstream's HumanDuration (used for AGE etc.): e.g. 5s, 2m3s, 10m, 3h4m,
/// 5d, 2y...
///
/// Roughly two to three significant figures: seconds below two minutes,
/// minutes+seconds below ten minutes, minutes below three hours,
/// hours+minutes below eight hours, hours below two days, days+hours below
/// eight days, days below two years, years+days below eight years, then
/// years.  A duration up to one second in the past (clock skew) reads "0s";
/// anything further in the past reads "<invalid>".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds(); // truncates toward zero, like Go's int(d.Seconds())
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let rem = seconds % 60;
        return if rem == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rem}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let rem = minutes % 60;
        return if rem == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rem}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let rem = hours % 24;
        return if rem == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{rem}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let rem = days % 365;
        return if rem == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{rem}d")
        };
    }
    format!("{years}y")
}

// ---------------------------------------------------------------------------
// JSON access helpers.  A JSON `null` is treated exactly like an absent field.
// ---------------------------------------------------------------------------

pub(super) fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

pub(super) fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    field(v, path).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn int(v: &Value, path: &[&str]) -> i64 {
    field(v, path).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    field(v, path).and_then(Value::as_i64)
}

pub(super) fn boolean(v: &Value, path: &[&str]) -> bool {
    field(v, path).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    match field(v, path) {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    }
}

pub(super) fn object_len(v: &Value, path: &[&str]) -> usize {
    match field(v, path) {
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    }
}

pub(super) fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

pub(super) fn s(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

pub(super) fn int_cell(value: i64) -> Value {
    Value::from(value)
}

pub(super) fn name_of(obj: &Value) -> &str {
    text(obj, &["metadata", "name"])
}

/// Parses a `metav1.Time` / `metav1.MicroTime` field.  Go's zero time
/// (`0001-01-01T00:00:00Z`) counts as unset, like `Time.IsZero()`.
pub(super) fn timestamp(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let raw = field(v, path)?.as_str()?;
    let parsed = DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc);
    if parsed.timestamp() == GO_ZERO_TIME_UNIX && parsed.timestamp_subsec_nanos() == 0 {
        None
    } else {
        Some(parsed)
    }
}

/// Unix seconds of Go's zero `time.Time` (January 1, year 1, UTC).
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Upstream `translateTimestampSince`: "<unknown>" for an unset time, else
/// the human duration elapsed until `now`.
pub(super) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => UNKNOWN.to_string(),
    }
}

pub(super) fn age(obj: &Value, now: DateTime<Utc>) -> String {
    since(timestamp(obj, &["metadata", "creationTimestamp"]), now)
}

/// The default table's "Created At" cell: RFC 3339 in UTC, second precision.
pub(super) fn created_at_rfc3339(obj: &Value) -> String {
    match timestamp(obj, &["metadata", "creationTimestamp"]) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

pub(super) fn is_deleting(obj: &Value) -> bool {
    field(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// Keeps the latest of the recorded time and `candidate`.
pub(super) fn keep_latest(slot: &mut Option<DateTime<Utc>>, candidate: Option<DateTime<Utc>>) {
    if let Some(t) = candidate {
        if slot.is_none_or(|current| current < t) {
            *slot = Some(t);
        }
    }
}

/// Container names and images, each comma-joined in spec order.
pub(super) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, comma-joined; "<none>"
/// when empty.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = match map {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    if pairs.is_empty() {
        return NONE.to_string();
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// String form of a `metav1.LabelSelector` once converted to a label
/// selector: requirements sorted by key, set values sorted.  A missing
/// selector and an empty selector both render as "".  `Err` where the
/// conversion would fail (unknown operator, bad value counts).
pub(super) fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let selector = match selector {
        Some(sel) => sel,
        None => return Ok(String::new()),
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = field(selector, &["matchLabels"]) {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or("");
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expr in list(selector, &["matchExpressions"]) {
        let key = text(expr, &["key"]);
        let mut values: Vec<&str> = list(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let rendered = match text(expr, &["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(());
                }
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" => {
                if !values.is_empty() {
                    return Err(());
                }
                key.to_string()
            }
            "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(());
                }
                format!("!{key}")
            }
            _ => return Err(()),
        };
        requirements.push((key.to_string(), rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, rendered)| rendered)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: "<error>" on a bad selector, "<none>" when
/// it selects by nothing.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Err(()) => "<error>".to_string(),
        Ok(rendered) if rendered.is_empty() => NONE.to_string(),
        Ok(rendered) => rendered,
    }
}

pub(super) fn first_condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| text(c, &["type"]) == type_)
        .is_some_and(|c| text(c, &["status"]) == "True")
}
