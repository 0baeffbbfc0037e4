//! The definitions of the document: k8s-openapi's schemas (through schemars) rewritten into
//! the Swagger 2.0 subset kube-openapi reads, with the strategic merge patch extensions and
//! the group-version-kind of each served kind.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Patch, Status};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{DEFINITIONS, GVK_EXTENSION, QUANTITY};
use crate::apiserver::openapi;
use crate::apiserver::registry::Kind;

/// Add `T` and everything it references to the generator; its definition name.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The definitions, and the definition name of each served kind (by group, version, kind).
pub(super) fn definitions() -> (
    Map<String, Value>,
    BTreeMap<(&'static str, &'static str, &'static str), String>,
) {
    // Plain schemars output: k8s-openapi's schemas put `description` beside `$ref` directly,
    // which is the Swagger shape; the draft-07/OpenAPI 3 transforms would wrap those in allOf.
    let mut generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.definitions_path = "/definitions".into();
            settings.meta_schema = None;
            settings.transforms.clear();
        })
        .into_generator();
    let kinds = openapi::schema_names(&mut generator);
    add::<Status>(&mut generator);
    add::<Patch>(&mut generator);
    add::<DeleteOptions>(&mut generator);
    let mut definitions = generator.take_definitions(false);
    for schema in definitions.values_mut() {
        to_swagger(schema);
    }
    // Upstream publishes Quantity as a bare string (IntOrString keeps `format: int-or-string`).
    if let Some(quantity) = definitions.get_mut(QUANTITY).and_then(Value::as_object_mut) {
        quantity.remove("format");
    }
    openapi::add_patch_extensions(&mut definitions);
    (definitions, kinds)
}

/// Name a served kind in its definition's `x-kubernetes-group-version-kind`.
pub(super) fn mark_kind(definitions: &mut Map<String, Value>, kind: &Kind, name: &str) {
    if let Some(schema) = definitions.get_mut(name).and_then(Value::as_object_mut) {
        let entry = schema
            .entry(GVK_EXTENSION)
            .or_insert_with(|| Value::Array(Vec::new()));
        let gvk = json!({"group": kind.group, "kind": kind.kind, "version": kind.version});
        if let Some(list) = entry.as_array_mut() {
            if !list.contains(&gvk) {
                list.push(gvk);
            }
        }
    }
}

/// JSON Schema keywords Swagger 2.0 has no place for (gnostic's `Schema` lacks them, and
/// kube-openapi could not read them).
const UNSUPPORTED: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$comment",
    "definitions",
    "nullable",
    "oneOf",
    "anyOf",
    "not",
    "if",
    "then",
    "else",
    "examples",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "propertyNames",
    "contains",
    "dependentRequired",
    "dependentSchemas",
    "deprecated",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
];

/// Rewrite one schema (recursively) into the Swagger 2.0 subset kube-openapi reads.
fn to_swagger(schema: &mut Value) {
    let Value::Object(obj) = schema else {
        // `true` (anything) and `false` have no Swagger form; an empty schema is "anything".
        *schema = Value::Object(Map::new());
        return;
    };
    if let Some(value) = obj.remove("const") {
        obj.entry("enum")
            .or_insert_with(|| Value::Array(vec![value]));
    }
    for key in UNSUPPORTED {
        obj.remove(*key);
    }

    // One type, never "null".
    if let Some(ty) = obj.remove("type") {
        let types: Vec<&str> = match &ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        if let [single] = types.as_slice() {
            obj.insert("type".into(), json!(single));
        }
    }

    // Swagger 2.0 spells int-or-string as a formatted string.
    let int_or_string = obj.remove("x-kubernetes-int-or-string") == Some(Value::Bool(true));
    if int_or_string && !obj.contains_key("type") && !obj.contains_key("$ref") {
        obj.insert("type".into(), json!("string"));
        obj.entry("format")
            .or_insert_with(|| json!("int-or-string"));
    }

    // `allOf: [{$ref}]` beside a description is how JSON Schema drafts spell a described
    // reference; Swagger puts the description beside the `$ref` itself.
    let single_ref = match obj.get("allOf") {
        Some(Value::Array(all)) if all.len() == 1 => all[0]
            .get("$ref")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    if let Some(reference) = single_ref {
        if !obj.contains_key("$ref") && !obj.contains_key("properties") {
            obj.remove("allOf");
            obj.insert("$ref".into(), json!(reference));
        }
    }

    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let name = ["#/definitions/", "#/components/schemas/", "#/$defs/"]
            .iter()
            .find_map(|prefix| reference.strip_prefix(prefix))
            .unwrap_or(reference);
        let reference = format!("{DEFINITIONS}{name}");
        obj.insert("$ref".into(), json!(reference));
        // A reference stands for its definition: kube-openapi rejects a type or properties
        // beside it, and Swagger ignores the rest.
        for key in [
            "type",
            "properties",
            "items",
            "additionalProperties",
            "allOf",
        ] {
            obj.remove(key);
        }
        return;
    }

    match obj.get_mut("properties") {
        Some(Value::Object(properties)) => properties.values_mut().for_each(to_swagger),
        Some(_) => {
            obj.remove("properties");
        }
        None => {}
    }
    match obj.get_mut("additionalProperties") {
        Some(Value::Object(_)) => {
            if let Some(additional) = obj.get_mut("additionalProperties") {
                to_swagger(additional);
            }
        }
        Some(Value::Bool(_)) | None => {}
        Some(_) => {
            obj.remove("additionalProperties");
        }
    }
    match obj.remove("items") {
        // Tuple items: Swagger has a single items schema; the first is the closest.
        Some(Value::Array(mut tuple)) => {
            let mut first = if tuple.is_empty() {
                Value::Object(Map::new())
            } else {
                tuple.swap_remove(0)
            };
            to_swagger(&mut first);
            obj.insert("items".into(), first);
        }
        Some(mut items) => {
            to_swagger(&mut items);
            obj.insert("items".into(), items);
        }
        None => {}
    }
    if obj.get("type").and_then(Value::as_str) == Some("array") && !obj.contains_key("items") {
        obj.insert("items".into(), Value::Object(Map::new()));
    }
    match obj.get_mut("allOf") {
        Some(Value::Array(all)) => all.iter_mut().for_each(to_swagger),
        Some(_) => {
            obj.remove("allOf");
        }
        None => {}
    }
}
