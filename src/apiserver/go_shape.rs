//! The JSON shape Go's `encoding/json` gives a typed Kubernetes object, applied to every object
//! the apiserver stores (and so serves).
//!
//! k8s-openapi decodes absent and empty alike into `Option`s, so re-encoding an object loses
//! two things Go's encoding keeps, and clients notice both (the official Python client expects
//! `status` on a Deployment; specs compare `ownerReferences`):
//! - a field whose Go type is a struct value (not a pointer) is always present: an absent
//!   `status` is `{}`, an absent `metav1.Time` is `null`; required fields (in the schema's
//!   `required`, which upstream derives from the missing `omitempty`) are present with their zero
//!   value. A field upstream marks optional without `omitempty` (core Events'
//!   `reportingComponent`) cannot be told from the schema and is left as it is;
//! - an `omitempty` list or map that is empty is left out.
//!
//! One walk over the object, driven by k8s-openapi's schema of its type (which fields are
//! structs, lists, maps, times; which are required). The schema cannot say which struct fields
//! are values rather than pointers, nor which optional fields lack `omitempty`, so that one
//! fact is the table [`ALWAYS`], read from upstream's `types.go` for the served kinds.

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// Fields Go always encodes that the schema does not mark required, per definition: struct
/// fields held by value, and optional fields without `omitempty`.
const ALWAYS: &[(&str, &[&str])] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &["creationTimestamp"],
    ),
    ("io.k8s.api.core.v1.Pod", &["metadata", "spec", "status"]),
    ("io.k8s.api.core.v1.PodTemplateSpec", &["metadata", "spec"]),
    ("io.k8s.api.core.v1.Container", &["resources"]),
    ("io.k8s.api.core.v1.EphemeralContainer", &["resources"]),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        &["state", "lastState"],
    ),
    ("io.k8s.api.core.v1.ContainerStateRunning", &["startedAt"]),
    (
        "io.k8s.api.core.v1.ContainerStateTerminated",
        &["startedAt", "finishedAt"],
    ),
    (
        "io.k8s.api.core.v1.PodCondition",
        &["lastProbeTime", "lastTransitionTime"],
    ),
    (
        "io.k8s.api.core.v1.Namespace",
        &["metadata", "spec", "status"],
    ),
    (
        "io.k8s.api.core.v1.NamespaceCondition",
        &["lastTransitionTime"],
    ),
    ("io.k8s.api.core.v1.Node", &["metadata", "spec", "status"]),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &["daemonEndpoints", "nodeInfo"],
    ),
    (
        "io.k8s.api.core.v1.NodeDaemonEndpoints",
        &["kubeletEndpoint"],
    ),
    (
        "io.k8s.api.core.v1.NodeCondition",
        &["lastHeartbeatTime", "lastTransitionTime"],
    ),
    (
        "io.k8s.api.core.v1.Service",
        &["metadata", "spec", "status"],
    ),
    ("io.k8s.api.core.v1.ServiceStatus", &["loadBalancer"]),
    ("io.k8s.api.core.v1.Endpoints", &["metadata"]),
    ("io.k8s.api.core.v1.ConfigMap", &["metadata"]),
    ("io.k8s.api.core.v1.Secret", &["metadata"]),
    ("io.k8s.api.core.v1.ServiceAccount", &["metadata"]),
    (
        "io.k8s.api.core.v1.Event",
        &[
            "metadata",
            "involvedObject",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "eventTime",
            "reportingComponent",
            "reportingInstance",
        ],
    ),
    ("io.k8s.api.core.v1.EventSeries", &["lastObservedTime"]),
    ("io.k8s.api.core.v1.ContainerImage", &["names"]),
    (
        "io.k8s.api.events.v1.Event",
        &[
            "metadata",
            "regarding",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
        ],
    ),
    (
        "io.k8s.api.apps.v1.Deployment",
        &["metadata", "spec", "status"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &["template", "strategy"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentCondition",
        &["lastUpdateTime", "lastTransitionTime"],
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSet",
        &["metadata", "spec", "status"],
    ),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["template"]),
    (
        "io.k8s.api.apps.v1.ReplicaSetCondition",
        &["lastTransitionTime"],
    ),
    ("io.k8s.api.coordination.v1.Lease", &["metadata", "spec"]),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        &["metadata", "ports"],
    ),
    ("io.k8s.api.discovery.v1.Endpoint", &["conditions"]),
];

/// The definitions whose JSON is a timestamp (a zero one encodes as `null`).
const TIMES: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
];

/// The definition of a resource quantity, which Go encodes in its canonical form.
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// What a field holds, as far as its encoding cares.
#[derive(Debug, Clone, PartialEq)]
enum Of {
    /// A resource quantity (`1000m` is written `1`).
    Quantity,
    /// A map of resource quantities (`resources.limits`).
    QuantityMap,
    /// A struct (its definition).
    Struct(String),
    /// A `metav1.Time` or `MicroTime`.
    Time,
    /// A list (of structs of this definition, if they are).
    List(Option<String>),
    /// A map (to structs of this definition, if they are).
    Map(Option<String>),
    /// A string, number or boolean, with Go's zero value.
    Scalar(Value),
    /// Anything else (free-form objects, int-or-string, quantities): left alone.
    Other,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    of: Of,
    /// Encoded even when zero: required in the schema (no `omitempty`) or a struct value.
    always: bool,
}

type Shapes = HashMap<String, Vec<Field>>;

/// k8s-openapi's schema definitions of every served type, by OpenAPI name
/// (`io.k8s.api.core.v1.Pod`).
pub(super) fn definitions() -> &'static Map<String, Value> {
    static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let mut generator = SchemaSettings::draft07()
            .with(|s| {
                s.definitions_path = "/definitions".into();
                s.meta_schema = None;
                s.transforms.clear();
            })
            .into_generator();
        super::openapi::schema_names(&mut generator);
        generator.take_definitions(false)
    })
}

fn shapes() -> &'static Shapes {
    static SHAPES: OnceLock<Shapes> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let definitions = definitions();
        definitions
            .iter()
            .map(|(name, schema)| (name.clone(), fields_of(name, schema, definitions)))
            .collect()
    })
}

/// The `$ref` target of a schema, as a definition name.
pub(super) fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
}

fn of(schema: &Value, definitions: &Map<String, Value>) -> Of {
    if let Some(name) = ref_name(schema) {
        if TIMES.contains(&name) {
            return Of::Time;
        }
        if name == QUANTITY {
            return Of::Quantity;
        }
        let target = definitions.get(name).unwrap_or(&Value::Null);
        return if target.get("properties").is_some() {
            Of::Struct(name.to_string())
        } else {
            Of::Other
        };
    }
    let struct_of = |s: Option<&Value>| match s.map(|s| of(s, definitions)) {
        Some(Of::Struct(d)) => Some(d),
        _ => None,
    };
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Of::List(struct_of(schema.get("items"))),
        Some("object") if schema.get("additionalProperties").is_some() => {
            let item = schema.get("additionalProperties");
            if item.and_then(ref_name) == Some(QUANTITY) {
                Of::QuantityMap
            } else {
                Of::Map(struct_of(item))
            }
        }
        Some("string") if schema.get("format").is_none() => Of::Scalar(Value::from("")),
        Some("integer" | "number") => Of::Scalar(Value::from(0)),
        Some("boolean") => Of::Scalar(Value::from(false)),
        _ => Of::Other,
    }
}

fn fields_of(name: &str, schema: &Value, definitions: &Map<String, Value>) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let values: &[&str] = ALWAYS
        .iter()
        .find(|(d, _)| *d == name)
        .map_or(&[], |(_, f)| f);
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(field, s)| Field {
            name: field.clone(),
            of: of(s, definitions),
            always: required.contains(&field.as_str()) || values.contains(&field.as_str()),
        })
        .collect()
}

/// Give `value`, an object of the type `T`, the shape Go's encoding of it would have.
pub fn shape<T: JsonSchema>(value: &mut Value) {
    shape_as(&T::schema_name(), value);
}

/// Write every resource quantity of `value`, an object of the type `T`, in its canonical form,
/// as decoding into Go's `resource.Quantity` does before anything compares or validates it
/// (`0.5` and `500m` are the same request). Malformed ones are left for validation to refuse.
pub fn canonical_quantities<T: JsonSchema>(value: &mut Value) {
    canonical_quantities_as(&T::schema_name(), value);
}

fn canonical_quantities_as(definition: &str, value: &mut Value) {
    let (Some(fields), Some(object)) = (shapes().get(definition), value.as_object_mut()) else {
        return;
    };
    for field in fields {
        let Some(v) = object.get_mut(&field.name) else {
            continue;
        };
        match (&field.of, v) {
            (Of::Quantity, v) => canonical_quantity(v),
            (Of::QuantityMap, Value::Object(m)) => m.values_mut().for_each(canonical_quantity),
            (Of::Struct(d), v) => canonical_quantities_as(d, v),
            (Of::List(Some(d)), Value::Array(items)) => {
                items.iter_mut().for_each(|i| canonical_quantities_as(d, i))
            }
            (Of::Map(Some(d)), Value::Object(m)) => {
                m.values_mut().for_each(|i| canonical_quantities_as(d, i))
            }
            _ => {}
        }
    }
}

/// Give `value`, an object of the definition `definition`, the shape Go's encoding gives it.
pub(super) fn shape_as(definition: &str, value: &mut Value) {
    let Some(fields) = shapes().get(definition) else {
        return;
    };
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in fields {
        let Some(v) = object.get_mut(&field.name) else {
            if field.always {
                if let Some(mut zero) = zero(&field.of) {
                    shape_field(&field.of, &mut zero);
                    object.insert(field.name.clone(), zero);
                }
            }
            continue;
        };
        let empty = match v {
            Value::Array(a) => a.is_empty() && matches!(field.of, Of::List(_)),
            Value::Object(m) => m.is_empty() && matches!(field.of, Of::Map(_) | Of::QuantityMap),
            _ => false,
        };
        if empty && !field.always {
            object.remove(&field.name);
        } else {
            shape_field(&field.of, v);
        }
    }
}

fn shape_field(of: &Of, v: &mut Value) {
    match (of, v) {
        (Of::Struct(d), v) => shape_as(d, v),
        (Of::List(Some(d)), Value::Array(items)) => items.iter_mut().for_each(|i| shape_as(d, i)),
        (Of::Map(Some(d)), Value::Object(m)) => m.values_mut().for_each(|i| shape_as(d, i)),
        (Of::Quantity, v) => canonical_quantity(v),
        (Of::QuantityMap, Value::Object(m)) => m.values_mut().for_each(canonical_quantity),
        _ => {}
    }
}

/// A quantity as Go writes it: its canonical form, always a string (a number in a request is a
/// quantity too). Anything that is not a quantity is left for validation to name.
fn canonical_quantity(v: &mut Value) {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return,
    };
    if let Some(canonical) = crate::k8s::quantity::canonical(&text) {
        *v = Value::String(canonical);
    }
}

/// Go's encoding of a zero value of this kind of field, where it has one worth writing.
fn zero(of: &Of) -> Option<Value> {
    match of {
        Of::Struct(_) => Some(Value::Object(Map::new())),
        Of::Time | Of::List(_) | Of::Map(_) | Of::QuantityMap => Some(Value::Null),
        Of::Scalar(z) => Some(z.clone()),
        Of::Other | Of::Quantity => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Event, Pod, Service};
    use serde_json::json;

    #[test]
    fn value_structs_are_present_and_empty_optional_lists_and_maps_are_not() {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "ownerReferences": [], "labels": {}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx", "env": []}]}}},
        });
        shape::<Deployment>(&mut d);
        assert_eq!(d["status"], json!({}));
        assert!(d["metadata"].get("ownerReferences").is_none(), "{d}");
        assert!(d["metadata"].get("labels").is_none(), "{d}");
        assert_eq!(d["spec"]["strategy"], json!({}));
        assert_eq!(
            d["spec"]["template"]["metadata"]["creationTimestamp"],
            Value::Null
        );
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["resources"], json!({}));
        assert!(container.get("env").is_none());
        // Required lists stay, empty or not.
        let mut empty = json!({"spec": {"containers": []}});
        shape::<Pod>(&mut empty);
        assert_eq!(empty["spec"]["containers"], json!([]));
    }

    #[test]
    fn required_fields_and_times_get_go_zero_values() {
        let mut pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "state": {"running": {}}}]},
        });
        shape::<Pod>(&mut pod);
        assert_eq!(pod["status"]["conditions"][0]["lastProbeTime"], Value::Null);
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], json!(false));
        assert_eq!(status["restartCount"], json!(0));
        assert_eq!(status["image"], json!(""));
        assert_eq!(status["lastState"], json!({}));
        assert_eq!(status["state"]["running"]["startedAt"], Value::Null);

        let mut svc = json!({"metadata": {"name": "s"}, "spec": {}});
        shape::<Service>(&mut svc);
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));

        let mut event = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod"}});
        shape::<Event>(&mut event);
        assert_eq!(event["source"], json!({}));
        assert_eq!(event["eventTime"], Value::Null);
        assert_eq!(event["firstTimestamp"], Value::Null);
        // Optional without omitempty: always there.
        assert_eq!(event["reportingComponent"], json!(""));
        assert_eq!(event["reportingInstance"], json!(""));
    }

    #[test]
    fn every_field_in_the_table_is_real() {
        let shapes = shapes();
        for (definition, fields) in ALWAYS {
            let known = shapes
                .get(*definition)
                .unwrap_or_else(|| panic!("{definition} is not a served definition"));
            for f in *fields {
                let field = known
                    .iter()
                    .find(|k| k.name == *f)
                    .unwrap_or_else(|| panic!("{definition} has no field {f}"));
                assert!(
                    !matches!(field.of, Of::Other),
                    "{definition}.{f} is neither a struct, a time, a list nor a scalar"
                );
            }
        }
    }
}
