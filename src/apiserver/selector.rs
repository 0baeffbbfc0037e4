//! Label and field selectors as the `labelSelector` and `fieldSelector` query parameters carry
//! them, parsed once per request and matched against the [`Attrs`] taken from each object when
//! it was written (so lists and watches never decode objects to filter them).

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::registry::Kind;
use crate::store::Attrs;

/// The fields every kind can be selected by; the kind's own field labels follow them in
/// [`Attrs::fields`].
const COMMON_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// What selectors of `kind` match on, taken from an object's JSON.
pub fn attrs(kind: &Kind, obj: &Value) -> Attrs {
    let mut labels: Vec<(Box<str>, Box<str>)> = obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let fields = COMMON_FIELDS
        .iter()
        .chain(kind.field_labels.iter())
        .map(|f| field_value(obj, f).into_boxed_str())
        .collect();
    Attrs {
        labels: labels.into_boxed_slice(),
        fields,
    }
}

/// The field labels of events.k8s.io/v1, named after its own schema, and the core/v1 Event
/// fields they select on (the form Events are stored in), as upstream converts them. The core
/// spellings (`involvedObject.name`) are not accepted there.
const EVENTS_V1_FIELDS: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
];

/// Where `field` sits in the [`Attrs::fields`] of `kind`.
pub(super) fn field_index(kind: &Kind, field: &str) -> Option<usize> {
    let field = if kind.group == "events.k8s.io" && !COMMON_FIELDS.contains(&field) {
        EVENTS_V1_FIELDS
            .iter()
            .find(|(wire, _)| *wire == field)
            .map(|(_, stored)| *stored)?
    } else {
        field
    };
    COMMON_FIELDS
        .iter()
        .chain(kind.field_labels.iter())
        .position(|f| *f == field)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    /// Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    ///
    /// # Errors
    /// 400 BadRequest naming the part that does not parse.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for part in split_top_level(s) {
            let part = part.trim();
            let bad = || {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{part}', expected: key, '!', '=', '==', '!=', 'in', 'notin', '>' or '<'"
                ))
            };
            let req = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), LabelOp::DoesNotExist)
            } else if let Some((k, v)) = part.split_once("!=") {
                (
                    k.trim().to_string(),
                    LabelOp::NotEquals(v.trim().to_string()),
                )
            } else if let Some((k, v)) = part.split_once("==") {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once('=') {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once(" notin ") {
                (
                    k.trim().to_string(),
                    LabelOp::NotIn(parse_set(v).ok_or_else(bad)?),
                )
            } else if let Some((k, v)) = part.split_once(" in ") {
                (
                    k.trim().to_string(),
                    LabelOp::In(parse_set(v).ok_or_else(bad)?),
                )
            } else if let Some((k, v)) = part.split_once('>') {
                (
                    k.trim().to_string(),
                    LabelOp::Gt(v.trim().parse().map_err(|_| bad())?),
                )
            } else if let Some((k, v)) = part.split_once('<') {
                (
                    k.trim().to_string(),
                    LabelOp::Lt(v.trim().parse().map_err(|_| bad())?),
                )
            } else {
                (part.to_string(), LabelOp::Exists)
            };
            if req.0.is_empty() || req.0.contains(char::is_whitespace) {
                return Err(bad());
            }
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object carries matching labels.
    pub fn matches(&self, obj: &Attrs) -> bool {
        self.requirements.iter().all(|(key, op)| {
            let value = obj.label(key);
            match op {
                LabelOp::Equals(v) => value == Some(v.as_str()),
                LabelOp::NotEquals(v) => value != Some(v.as_str()),
                LabelOp::In(set) => value.is_some_and(|x| set.iter().any(|s| s == x)),
                LabelOp::NotIn(set) => value.is_none_or(|x| !set.iter().any(|s| s == x)),
                LabelOp::Exists => value.is_some(),
                LabelOp::DoesNotExist => value.is_none(),
                LabelOp::Gt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::Lt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

/// A parsed field selector: `field=value`, `field==value` and `field!=value` terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (field, its index in [`Attrs::fields`], equal or not, value)
    terms: Vec<(String, usize, bool, String)>,
}

impl FieldSelector {
    /// Parse a field selector, checking each field against the kind's field labels.
    ///
    /// # Errors
    /// 400 BadRequest `field label not supported: <field>` as upstream, or for a malformed term.
    pub fn parse(kind: &Kind, s: &str) -> ApiResult<Self> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for part in s.split(',') {
            let part = part.trim();
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let Some(index) = field_index(kind, field) else {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            };
            terms.push((field.to_string(), index, equal, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value a term names, when the selector pins `field` to one value (`spec.nodeName=x`).
    pub fn pinned(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, _, eq, _)| f == field && *eq)
            .map(|(_, _, _, v)| v.as_str())
    }

    /// Whether an object matches every term.
    pub fn matches(&self, obj: &Attrs) -> bool {
        self.terms.iter().all(|(_, index, equal, want)| {
            let have = obj.fields.get(*index).map(|f| &**f).unwrap_or("");
            (have == want.as_str()) == *equal
        })
    }
}

/// The string value of a field label, as upstream's field sets render it (absent -> "").
fn field_value(obj: &Value, field: &str) -> String {
    if field == "source" {
        // Events: `source` is the reporting component.
        return obj["source"]["component"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let mut cur = obj;
    for part in field.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => match field {
            "spec.unschedulable" | "spec.hostNetwork" => "false".into(),
            _ => String::new(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::apiserver::registry;

    #[test]
    fn label_selectors_parse_and_match() {
        let obj = attrs(
            registry::core("pods"),
            &json!({"metadata": {"labels": {"app": "web", "tier": "fe", "n": "5"}}}),
        );
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (be)",
            "app",
            "!missing",
            "n>3",
            "app=web,tier in (fe)",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        let no = [
            "app=db",
            "app in (db)",
            "missing",
            "!app",
            "n<3",
            "app=web,tier=be",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors_check_supported_labels() {
        let pods = registry::core("pods");
        let sel = FieldSelector::parse(pods, "spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert!(sel.matches(&attrs(
            pods,
            &json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
        )));
        assert!(!sel.matches(&attrs(pods, &json!({"spec": {"nodeName": "n2"}}))));
        assert_eq!(sel.pinned("spec.nodeName"), Some("n1"));
        let err = FieldSelector::parse(pods, "spec.colour=red").unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "field label not supported: spec.colour")
        );
        let empty = FieldSelector::parse(pods, "spec.nodeName=").unwrap();
        assert!(empty.matches(&attrs(pods, &json!({"spec": {}}))));
        let named = FieldSelector::parse(pods, "metadata.name=p,metadata.namespace=ns").unwrap();
        assert!(named.matches(&attrs(
            pods,
            &json!({"metadata": {"name": "p", "namespace": "ns"}})
        )));
        assert!(!named.matches(&attrs(
            pods,
            &json!({"metadata": {"name": "q", "namespace": "ns"}})
        )));
    }

    #[test]
    fn event_field_selectors_use_involved_object() {
        let events = registry::core("events");
        let sel = FieldSelector::parse(
            events,
            "involvedObject.name=p,involvedObject.namespace=ns,involvedObject.uid=u",
        )
        .unwrap();
        assert!(sel.matches(&attrs(
            events,
            &json!({"involvedObject": {"name": "p", "namespace": "ns", "uid": "u"}})
        )));
    }
}
