//! The Swagger 2.0 document (`/openapi/v2`, `/swagger-2.0.0.pb-v1`) for the served kinds.
//!
//! kubectl fetches it as protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! a gnostic `openapi.v2.Document`. `kubectl explain --output plaintext-openapiv2` and kubectl
//! 1.27's `apply` (which computes strategic merge patches from it) turn its definitions into
//! kube-openapi models, a strict reader: every `$ref` must name a definition, a `$ref` carries
//! no `type` or `properties`, a schema has at most one type, an array has exactly one `items`
//! schema, and primitives are `string`, `integer`, `number` or `boolean`. kubectl also looks at
//! each kind's PATCH operation: when it declares the `fieldValidation` query parameter, kubectl
//! leaves field validation to the server.
//!
//! The definitions come from k8s-openapi's schemas (through schemars), rewritten into the
//! Swagger 2.0 shapes upstream publishes (int-or-string and Quantity as typed strings, plain
//! `$ref`s with a description beside them), with the strategic merge patch extensions and the
//! `x-kubernetes-group-version-kind` of each served kind. The same document is kept as JSON
//! ([`swagger`]) and encoded to protobuf ([`document`]) from that JSON, field by field, the way
//! gnostic reads a Swagger JSON document.

use std::sync::OnceLock;

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Patch, Status};
use prost::Message as _;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::registry::{self, Kind};
use crate::k8s::GIT_VERSION;

/// Where definitions live, as `$ref`s name them.
const DEFINITIONS: &str = "#/definitions/";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

/// `/openapi/v2` as protobuf: a gnostic `openapi.v2.Document`.
pub fn document() -> Bytes {
    built().protobuf.clone()
}

/// The same document as Swagger 2.0 JSON.
pub fn swagger() -> &'static Value {
    &built().json
}

struct Built {
    json: Value,
    protobuf: Bytes,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let json = build_json();
        let protobuf = Bytes::from(to_protobuf(&json).encode_to_vec());
        Built { json, protobuf }
    })
}

// ---------------------------------------------------------------------------------------------
// The Swagger JSON.
// ---------------------------------------------------------------------------------------------

/// Add `T` and everything it references to the generator; its definition name.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

fn build_json() -> Value {
    // Plain schemars output: k8s-openapi's schemas put `description` beside `$ref` directly,
    // which is the Swagger shape; the draft-07/OpenAPI 3 transforms would wrap those in allOf.
    let mut generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.definitions_path = "/definitions".into();
            settings.meta_schema = None;
            settings.transforms.clear();
        })
        .into_generator();
    let kinds = super::openapi::schema_names(&mut generator);
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
    super::openapi::add_patch_extensions(&mut definitions);

    let mut paths = Map::new();
    for kind in registry::KINDS {
        let Some(name) = kinds.get(&(kind.group, kind.version, kind.kind)) else {
            continue;
        };
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
        for (path, item) in paths_for(kind, name) {
            paths.insert(path, item);
        }
    }

    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
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

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The paths of one kind: create on the collection; read, replace, patch and delete on an
/// object. Each operation names its kind in `x-kubernetes-group-version-kind` (a single map,
/// as upstream's operations carry it); the write operations declare `fieldValidation`.
fn paths_for(kind: &Kind, name: &str) -> Vec<(String, Value)> {
    let collection = kind.collection_path();
    let group_word = match kind.group.split('.').next() {
        Some(word) if !word.is_empty() => word,
        _ => "core",
    };
    let tag = format!("{group_word}_{}", kind.version);
    let prefix = format!("{}{}", capitalized(group_word), capitalized(kind.version));
    let scope = if kind.namespaced { "Namespaced" } else { "" };
    let operation_id = |verb: &str| format!("{verb}{prefix}{scope}{}", kind.kind);
    let gvk = json!({"group": kind.group, "kind": kind.kind, "version": kind.version});
    let object = json!({"$ref": format!("{DEFINITIONS}{name}")});
    let status = json!({"$ref": format!("{DEFINITIONS}{STATUS}")});
    let responses = |codes: &[&str], schema: &Value| {
        let mut map = Map::new();
        for code in codes {
            let description = match *code {
                "201" => "Created",
                "202" => "Accepted",
                _ => "OK",
            };
            map.insert(
                (*code).into(),
                json!({"description": description, "schema": schema}),
            );
        }
        map.insert("401".into(), json!({"description": "Unauthorized"}));
        Value::Object(map)
    };
    let query = |name: &str, ty: &str, description: &str| json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description});
    let body =
        |schema: Value| json!({"name": "body", "in": "body", "required": true, "schema": schema});
    let dry_run = query(
        "dryRun",
        "string",
        "When present, the request is validated and admitted but not persisted. The only valid value is All.",
    );
    let field_manager = query(
        "fieldManager",
        "string",
        "The name of the actor making the change, recorded in managedFields.",
    );
    let field_validation = query(
        "fieldValidation",
        "string",
        "How the server treats unknown and duplicate fields in the object: Ignore, Warn (the default) or Strict.",
    );
    let write_params = |body_param: Value| {
        json!([
            body_param,
            dry_run.clone(),
            field_manager.clone(),
            field_validation.clone()
        ])
    };
    let produces = json!([
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf"
    ]);
    let operation = |verb: &str, action: &str, description: String, extra: Value| {
        let mut op = json!({
            "description": description,
            "operationId": operation_id(verb),
            "produces": produces,
            "schemes": ["https"],
            "tags": [tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object()) {
            op.extend(extra.clone());
        }
        op
    };

    let mut scope_params = Vec::new();
    if kind.namespaced {
        scope_params.push(json!({
            "name": "namespace", "in": "path", "required": true, "type": "string", "uniqueItems": true,
            "description": "The namespace the object lives in.",
        }));
    }
    scope_params.push(query(
        "pretty",
        "string",
        "If 'true', the output is indented.",
    ));
    let mut item_params = vec![json!({
        "name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true,
        "description": format!("The name of the {}.", kind.kind),
    })];
    item_params.extend(scope_params.iter().cloned());

    let create = operation(
        "create",
        "post",
        format!("create a {}", kind.kind),
        json!({
            "consumes": ["*/*"],
            "parameters": write_params(body(object.clone())),
            "responses": responses(&["200", "201", "202"], &object),
        }),
    );
    let read = operation(
        "read",
        "get",
        format!("read the specified {}", kind.kind),
        json!({"consumes": ["*/*"], "responses": responses(&["200"], &object)}),
    );
    let replace = operation(
        "replace",
        "put",
        format!("replace the specified {}", kind.kind),
        json!({
            "consumes": ["*/*"],
            "parameters": write_params(body(object.clone())),
            "responses": responses(&["200", "201"], &object),
        }),
    );
    let mut patch_params = write_params(body(json!({"$ref": format!("{DEFINITIONS}{PATCH}")})));
    if let Some(list) = patch_params.as_array_mut() {
        list.push(query(
            "force",
            "boolean",
            "Force an apply request to take over fields other managers own.",
        ));
    }
    let patch = operation(
        "patch",
        "patch",
        format!("partially update the specified {}", kind.kind),
        json!({
            "consumes": [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml"
            ],
            "parameters": patch_params,
            "responses": responses(&["200", "201"], &object),
        }),
    );
    let deleted = if kind.delete_returns_object {
        &object
    } else {
        &status
    };
    let delete = operation(
        "delete",
        "delete",
        format!("delete a {}", kind.kind),
        json!({
            "consumes": ["*/*"],
            "parameters": [
                body(json!({"$ref": format!("{DEFINITIONS}{DELETE_OPTIONS}")})),
                dry_run.clone(),
                query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
                query("propagationPolicy", "string", "Whether and how garbage collection is performed: Orphan, Background or Foreground."),
            ],
            "responses": responses(&["200", "202"], deleted),
        }),
    );

    vec![
        (
            collection.clone(),
            json!({"post": create, "parameters": scope_params}),
        ),
        (
            format!("{collection}/{{name}}"),
            json!({
                "get": read,
                "put": replace,
                "patch": patch,
                "delete": delete,
                "parameters": item_params,
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The protobuf form: gnostic's `openapi.v2` messages, with its field numbers. Only the fields
// this document uses are declared; the others are never written.
// ---------------------------------------------------------------------------------------------

mod pb {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Document {
        #[prost(string, tag = "1")]
        pub swagger: String,
        #[prost(message, optional, tag = "2")]
        pub info: Option<Info>,
        #[prost(string, tag = "3")]
        pub host: String,
        #[prost(string, tag = "4")]
        pub base_path: String,
        #[prost(string, repeated, tag = "5")]
        pub schemes: Vec<String>,
        #[prost(string, repeated, tag = "6")]
        pub consumes: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub produces: Vec<String>,
        #[prost(message, optional, tag = "8")]
        pub paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        pub definitions: Option<Definitions>,
        #[prost(message, repeated, tag = "16")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Info {
        #[prost(string, tag = "1")]
        pub title: String,
        #[prost(string, tag = "2")]
        pub version: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(message, repeated, tag = "7")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// gnostic's `Any`: field 1 (a `google.protobuf.Any`) is never set; values travel as YAML.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Any {
        #[prost(string, tag = "2")]
        pub yaml: String,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NamedAny {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Any>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Paths {
        #[prost(message, repeated, tag = "1")]
        pub vendor_extension: Vec<NamedAny>,
        #[prost(message, repeated, tag = "2")]
        pub path: Vec<NamedPathItem>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NamedPathItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<PathItem>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PathItem {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(message, optional, tag = "2")]
        pub get: Option<Operation>,
        #[prost(message, optional, tag = "3")]
        pub put: Option<Operation>,
        #[prost(message, optional, tag = "4")]
        pub post: Option<Operation>,
        #[prost(message, optional, tag = "5")]
        pub delete: Option<Operation>,
        #[prost(message, optional, tag = "6")]
        pub options: Option<Operation>,
        #[prost(message, optional, tag = "7")]
        pub head: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        pub patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, repeated, tag = "10")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Operation {
        #[prost(string, repeated, tag = "1")]
        pub tags: Vec<String>,
        #[prost(string, tag = "2")]
        pub summary: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "5")]
        pub operation_id: String,
        #[prost(string, repeated, tag = "6")]
        pub produces: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, optional, tag = "9")]
        pub responses: Option<Responses>,
        #[prost(string, repeated, tag = "10")]
        pub schemes: Vec<String>,
        #[prost(bool, tag = "11")]
        pub deprecated: bool,
        #[prost(message, repeated, tag = "13")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ParametersItem {
        #[prost(oneof = "ParametersItemOneof", tags = "1, 2")]
        pub oneof: Option<ParametersItemOneof>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum ParametersItemOneof {
        #[prost(message, tag = "1")]
        Parameter(Box<Parameter>),
        #[prost(message, tag = "2")]
        JsonReference(JsonReference),
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct JsonReference {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Parameter {
        #[prost(oneof = "ParameterOneof", tags = "1, 2")]
        pub oneof: Option<ParameterOneof>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum ParameterOneof {
        #[prost(message, tag = "1")]
        BodyParameter(BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(NonBodyParameter),
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct BodyParameter {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub location: String,
        #[prost(bool, tag = "4")]
        pub required: bool,
        #[prost(message, optional, boxed, tag = "5")]
        pub schema: Option<Box<Schema>>,
        #[prost(message, repeated, tag = "6")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NonBodyParameter {
        #[prost(oneof = "NonBodyParameterOneof", tags = "1, 2, 3, 4")]
        pub oneof: Option<NonBodyParameterOneof>,
    }

    /// gnostic's `header_parameter_sub_schema` (1), `form_data_parameter_sub_schema` (2),
    /// `query_parameter_sub_schema` (3) and `path_parameter_sub_schema` (4). Header and path
    /// parameters share one field layout, as do query and form-data ones.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum NonBodyParameterOneof {
        #[prost(message, tag = "1")]
        Header(HeaderOrPathParameter),
        #[prost(message, tag = "2")]
        FormData(QueryOrFormParameter),
        #[prost(message, tag = "3")]
        Query(QueryOrFormParameter),
        #[prost(message, tag = "4")]
        Path(HeaderOrPathParameter),
    }

    /// `QueryParameterSubSchema` / `FormDataParameterSubSchema`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct QueryOrFormParameter {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub location: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(bool, tag = "5")]
        pub allow_empty_value: bool,
        #[prost(string, tag = "6")]
        pub type_name: String,
        #[prost(string, tag = "7")]
        pub format: String,
        #[prost(string, tag = "9")]
        pub collection_format: String,
        #[prost(message, optional, tag = "10")]
        pub default: Option<Any>,
        #[prost(bool, tag = "20")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "21")]
        pub enum_values: Vec<Any>,
        #[prost(message, repeated, tag = "23")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// `HeaderParameterSubSchema` / `PathParameterSubSchema`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct HeaderOrPathParameter {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub location: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(string, tag = "5")]
        pub type_name: String,
        #[prost(string, tag = "6")]
        pub format: String,
        #[prost(string, tag = "8")]
        pub collection_format: String,
        #[prost(message, optional, tag = "9")]
        pub default: Option<Any>,
        #[prost(bool, tag = "19")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "20")]
        pub enum_values: Vec<Any>,
        #[prost(message, repeated, tag = "22")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Responses {
        #[prost(message, repeated, tag = "1")]
        pub response_code: Vec<NamedResponseValue>,
        #[prost(message, repeated, tag = "2")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NamedResponseValue {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<ResponseValue>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ResponseValue {
        #[prost(oneof = "ResponseValueOneof", tags = "1, 2")]
        pub oneof: Option<ResponseValueOneof>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum ResponseValueOneof {
        #[prost(message, tag = "1")]
        Response(Box<Response>),
        #[prost(message, tag = "2")]
        JsonReference(JsonReference),
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Response {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(message, optional, tag = "2")]
        pub schema: Option<SchemaItem>,
        #[prost(message, repeated, tag = "5")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// `SchemaItem`: a schema (field 1) or a file schema (field 2, never used here).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SchemaItem {
        #[prost(oneof = "SchemaItemOneof", tags = "1")]
        pub oneof: Option<SchemaItemOneof>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum SchemaItemOneof {
        #[prost(message, tag = "1")]
        Schema(Box<Schema>),
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Definitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NamedSchema {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Schema>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Schema {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub format: String,
        #[prost(string, tag = "3")]
        pub title: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(message, optional, tag = "5")]
        pub default: Option<Any>,
        #[prost(double, tag = "6")]
        pub multiple_of: f64,
        #[prost(double, tag = "7")]
        pub maximum: f64,
        #[prost(bool, tag = "8")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "9")]
        pub minimum: f64,
        #[prost(bool, tag = "10")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "11")]
        pub max_length: i64,
        #[prost(int64, tag = "12")]
        pub min_length: i64,
        #[prost(string, tag = "13")]
        pub pattern: String,
        #[prost(int64, tag = "14")]
        pub max_items: i64,
        #[prost(int64, tag = "15")]
        pub min_items: i64,
        #[prost(bool, tag = "16")]
        pub unique_items: bool,
        #[prost(int64, tag = "17")]
        pub max_properties: i64,
        #[prost(int64, tag = "18")]
        pub min_properties: i64,
        #[prost(string, repeated, tag = "19")]
        pub required: Vec<String>,
        #[prost(message, repeated, tag = "20")]
        pub enum_values: Vec<Any>,
        #[prost(message, optional, tag = "21")]
        pub additional_properties: Option<AdditionalPropertiesItem>,
        #[prost(message, optional, tag = "22")]
        pub type_item: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        pub items: Option<ItemsItem>,
        #[prost(message, repeated, tag = "24")]
        pub all_of: Vec<Schema>,
        #[prost(message, optional, tag = "25")]
        pub properties: Option<Properties>,
        #[prost(string, tag = "26")]
        pub discriminator: String,
        #[prost(bool, tag = "27")]
        pub read_only: bool,
        #[prost(message, optional, tag = "30")]
        pub example: Option<Any>,
        #[prost(message, repeated, tag = "31")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct AdditionalPropertiesItem {
        #[prost(oneof = "AdditionalPropertiesOneof", tags = "1, 2")]
        pub oneof: Option<AdditionalPropertiesOneof>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum AdditionalPropertiesOneof {
        #[prost(message, tag = "1")]
        Schema(Box<Schema>),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        pub schema: Vec<Schema>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Properties {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }
}

// ---------------------------------------------------------------------------------------------
// JSON -> protobuf, keyword by keyword.
// ---------------------------------------------------------------------------------------------

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or_default()
}

fn float(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or_default()
}

fn int(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or_default()
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn texts(value: &Value, key: &str) -> Vec<String> {
    list(value, key)
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// A value as gnostic carries it: its YAML text.
fn any(value: &Value) -> pb::Any {
    pb::Any {
        yaml: serde_yaml::to_string(value).unwrap_or_default(),
    }
}

/// The `x-` keys of an object, in order.
fn extensions(value: &Value) -> Vec<pb::NamedAny> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with("x-"))
        .map(|(key, v)| pb::NamedAny {
            name: key.clone(),
            value: Some(any(v)),
        })
        .collect()
}

fn to_protobuf(doc: &Value) -> pb::Document {
    let info = doc.get("info").map(|info| pb::Info {
        title: text(info, "title"),
        version: text(info, "version"),
        description: text(info, "description"),
        vendor_extension: extensions(info),
    });
    let paths = doc.get("paths").map(|paths| pb::Paths {
        vendor_extension: extensions(paths),
        path: paths
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| !name.starts_with("x-"))
            .map(|(name, item)| pb::NamedPathItem {
                name: name.clone(),
                value: Some(path_item(item)),
            })
            .collect(),
    });
    let definitions = doc.get("definitions").map(|defs| pb::Definitions {
        additional_properties: named_schemas(defs),
    });
    pb::Document {
        swagger: text(doc, "swagger"),
        info,
        host: text(doc, "host"),
        base_path: text(doc, "basePath"),
        schemes: texts(doc, "schemes"),
        consumes: texts(doc, "consumes"),
        produces: texts(doc, "produces"),
        paths,
        definitions,
        vendor_extension: extensions(doc),
    }
}

fn named_schemas(map: &Value) -> Vec<pb::NamedSchema> {
    map.as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| pb::NamedSchema {
            name: name.clone(),
            value: Some(schema(value)),
        })
        .collect()
}

fn schema(value: &Value) -> pb::Schema {
    let additional_properties = match value.get("additionalProperties") {
        Some(Value::Bool(allowed)) => Some(pb::AdditionalPropertiesOneof::Boolean(*allowed)),
        Some(additional @ Value::Object(_)) => Some(pb::AdditionalPropertiesOneof::Schema(
            Box::new(schema(additional)),
        )),
        _ => None,
    }
    .map(|oneof| pb::AdditionalPropertiesItem { oneof: Some(oneof) });
    let type_item = match value.get("type") {
        Some(Value::String(ty)) => Some(pb::TypeItem {
            value: vec![ty.clone()],
        }),
        Some(Value::Array(_)) => Some(pb::TypeItem {
            value: texts(value, "type"),
        }),
        _ => None,
    };
    let items = match value.get("items") {
        Some(Value::Array(items)) => Some(pb::ItemsItem {
            schema: items.iter().map(schema).collect(),
        }),
        Some(item @ Value::Object(_)) => Some(pb::ItemsItem {
            schema: vec![schema(item)],
        }),
        _ => None,
    };
    let properties = value
        .get("properties")
        .filter(|p| p.is_object())
        .map(|p| pb::Properties {
            additional_properties: named_schemas(p),
        });
    pb::Schema {
        xref: text(value, "$ref"),
        format: text(value, "format"),
        title: text(value, "title"),
        description: text(value, "description"),
        default: value.get("default").map(any),
        multiple_of: float(value, "multipleOf"),
        maximum: float(value, "maximum"),
        exclusive_maximum: flag(value, "exclusiveMaximum"),
        minimum: float(value, "minimum"),
        exclusive_minimum: flag(value, "exclusiveMinimum"),
        max_length: int(value, "maxLength"),
        min_length: int(value, "minLength"),
        pattern: text(value, "pattern"),
        max_items: int(value, "maxItems"),
        min_items: int(value, "minItems"),
        unique_items: flag(value, "uniqueItems"),
        max_properties: int(value, "maxProperties"),
        min_properties: int(value, "minProperties"),
        required: texts(value, "required"),
        enum_values: list(value, "enum").map(any).collect(),
        additional_properties,
        type_item,
        items,
        all_of: list(value, "allOf").map(schema).collect(),
        properties,
        discriminator: text(value, "discriminator"),
        read_only: flag(value, "readOnly"),
        example: value.get("example").map(any),
        vendor_extension: extensions(value),
    }
}

fn path_item(value: &Value) -> pb::PathItem {
    let op = |verb: &str| value.get(verb).map(operation);
    pb::PathItem {
        xref: text(value, "$ref"),
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        options: op("options"),
        head: op("head"),
        patch: op("patch"),
        parameters: list(value, "parameters").map(parameter).collect(),
        vendor_extension: extensions(value),
    }
}

fn operation(value: &Value) -> pb::Operation {
    pb::Operation {
        tags: texts(value, "tags"),
        summary: text(value, "summary"),
        description: text(value, "description"),
        operation_id: text(value, "operationId"),
        produces: texts(value, "produces"),
        consumes: texts(value, "consumes"),
        parameters: list(value, "parameters").map(parameter).collect(),
        responses: value.get("responses").map(|responses| pb::Responses {
            response_code: responses
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(code, _)| !code.starts_with("x-"))
                .map(|(code, response)| pb::NamedResponseValue {
                    name: code.clone(),
                    value: Some(response_value(response)),
                })
                .collect(),
            vendor_extension: extensions(responses),
        }),
        schemes: texts(value, "schemes"),
        deprecated: flag(value, "deprecated"),
        vendor_extension: extensions(value),
    }
}

fn response_value(value: &Value) -> pb::ResponseValue {
    let oneof = if value.get("$ref").is_some() {
        pb::ResponseValueOneof::JsonReference(pb::JsonReference {
            xref: text(value, "$ref"),
            description: text(value, "description"),
        })
    } else {
        pb::ResponseValueOneof::Response(Box::new(pb::Response {
            description: text(value, "description"),
            schema: value.get("schema").map(|s| pb::SchemaItem {
                oneof: Some(pb::SchemaItemOneof::Schema(Box::new(schema(s)))),
            }),
            vendor_extension: extensions(value),
        }))
    };
    pb::ResponseValue { oneof: Some(oneof) }
}

fn parameter(value: &Value) -> pb::ParametersItem {
    if value.get("$ref").is_some() {
        return pb::ParametersItem {
            oneof: Some(pb::ParametersItemOneof::JsonReference(pb::JsonReference {
                xref: text(value, "$ref"),
                description: text(value, "description"),
            })),
        };
    }
    let location = text(value, "in");
    let query_or_form = || pb::QueryOrFormParameter {
        required: flag(value, "required"),
        location: location.clone(),
        description: text(value, "description"),
        name: text(value, "name"),
        allow_empty_value: flag(value, "allowEmptyValue"),
        type_name: text(value, "type"),
        format: text(value, "format"),
        collection_format: text(value, "collectionFormat"),
        default: value.get("default").map(any),
        unique_items: flag(value, "uniqueItems"),
        enum_values: list(value, "enum").map(any).collect(),
        vendor_extension: extensions(value),
    };
    let header_or_path = || pb::HeaderOrPathParameter {
        required: flag(value, "required"),
        location: location.clone(),
        description: text(value, "description"),
        name: text(value, "name"),
        type_name: text(value, "type"),
        format: text(value, "format"),
        collection_format: text(value, "collectionFormat"),
        default: value.get("default").map(any),
        unique_items: flag(value, "uniqueItems"),
        enum_values: list(value, "enum").map(any).collect(),
        vendor_extension: extensions(value),
    };
    let non_body =
        |oneof| pb::ParameterOneof::NonBodyParameter(pb::NonBodyParameter { oneof: Some(oneof) });
    let parameter = match location.as_str() {
        "body" => pb::ParameterOneof::BodyParameter(pb::BodyParameter {
            description: text(value, "description"),
            name: text(value, "name"),
            location: location.clone(),
            required: flag(value, "required"),
            schema: value.get("schema").map(|s| Box::new(schema(s))),
            vendor_extension: extensions(value),
        }),
        "header" => non_body(pb::NonBodyParameterOneof::Header(header_or_path())),
        "path" => non_body(pb::NonBodyParameterOneof::Path(header_or_path())),
        "formData" => non_body(pb::NonBodyParameterOneof::FormData(query_or_form())),
        _ => non_body(pb::NonBodyParameterOneof::Query(query_or_form())),
    };
    pb::ParametersItem {
        oneof: Some(pb::ParametersItemOneof::Parameter(Box::new(
            pb::Parameter {
                oneof: Some(parameter),
            },
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::pb::*;
    use super::*;

    fn decoded() -> Document {
        Document::decode(document()).expect("the document decodes")
    }

    fn definitions(doc: &Document) -> BTreeMap<&str, &Schema> {
        doc.definitions
            .iter()
            .flat_map(|d| &d.additional_properties)
            .filter_map(|named| Some((named.name.as_str(), named.value.as_ref()?)))
            .collect()
    }

    fn property<'a>(schema: &'a Schema, name: &str) -> Option<&'a Schema> {
        schema
            .properties
            .iter()
            .flat_map(|p| &p.additional_properties)
            .find(|named| named.name == name)
            .and_then(|named| named.value.as_ref())
    }

    fn extension<'a>(extensions: &'a [NamedAny], name: &str) -> Option<&'a str> {
        extensions
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_ref())
            .map(|v| v.yaml.as_str())
    }

    fn types(schema: &Schema) -> Vec<&str> {
        schema
            .type_item
            .iter()
            .flat_map(|t| &t.value)
            .map(String::as_str)
            .collect()
    }

    /// kube-openapi's `ParseSchema` (pkg/util/proto/document.go), as a checker: the rules under
    /// which `proto.NewOpenAPIData` rejects a document.
    fn parse(schema: &Schema, models: &BTreeMap<&str, &Schema>, path: &str) -> Result<(), String> {
        if let Some(default) = &schema.default {
            serde_yaml::from_str::<serde_yaml::Value>(&default.yaml)
                .map_err(|e| format!("{path}: default is not YAML: {e}"))?;
        }
        if !schema.xref.is_empty() {
            if schema
                .properties
                .as_ref()
                .is_some_and(|p| !p.additional_properties.is_empty())
            {
                return Err(format!("{path}: unallowed embedded type definition"));
            }
            if !types(schema).is_empty() {
                return Err(format!("{path}: definition reference can't have a type"));
            }
            let Some(name) = schema.xref.strip_prefix("#/definitions/") else {
                return Err(format!(
                    "{path}: reference to non-definition {}",
                    schema.xref
                ));
            };
            if !models.contains_key(name) {
                return Err(format!("{path}: unknown model in reference: {name:?}"));
            }
            return Ok(());
        }
        let kind = |schema: &Schema| -> Result<(), String> {
            for named in schema
                .properties
                .iter()
                .flat_map(|p| &p.additional_properties)
            {
                let field = format!("{path}.{}", named.name);
                parse(&named.value.clone().unwrap_or_default(), models, &field)?;
            }
            Ok(())
        };
        match types(schema).as_slice() {
            [] if schema.properties.is_some() => kind(schema),
            [] => Ok(()),
            ["object"] if schema.properties.is_some() => kind(schema),
            ["object"] => match schema
                .additional_properties
                .as_ref()
                .and_then(|a| a.oneof.as_ref())
            {
                Some(AdditionalPropertiesOneof::Schema(sub)) => parse(sub, models, path),
                _ => Ok(()),
            },
            ["array"] => match schema.items.as_ref().map(|i| i.schema.as_slice()) {
                Some([sub]) => parse(sub, models, path),
                _ => Err(format!("{path}: array should have exactly one sub-item")),
            },
            ["string" | "number" | "integer" | "boolean"] => Ok(()),
            [other] => Err(format!("{path}: Unknown primitive type: {other:?}")),
            _ => Err(format!(
                "{path}: definitions with multiple types aren't supported"
            )),
        }
    }

    /// Every schema in the document: definitions, body parameters and responses.
    fn all_schemas(doc: &Document) -> Vec<(String, Schema)> {
        fn walk(path: String, schema: &Schema, out: &mut Vec<(String, Schema)>) {
            out.push((path.clone(), schema.clone()));
            for named in schema
                .properties
                .iter()
                .flat_map(|p| &p.additional_properties)
            {
                if let Some(value) = &named.value {
                    walk(format!("{path}.{}", named.name), value, out);
                }
            }
            for item in schema.items.iter().flat_map(|i| &i.schema) {
                walk(format!("{path}[]"), item, out);
            }
            if let Some(AdditionalPropertiesOneof::Schema(sub)) = schema
                .additional_properties
                .as_ref()
                .and_then(|a| a.oneof.as_ref())
            {
                walk(format!("{path}{{}}"), sub, out);
            }
            for (i, sub) in schema.all_of.iter().enumerate() {
                walk(format!("{path}/allOf/{i}"), sub, out);
            }
        }
        let mut out = Vec::new();
        for (name, schema) in definitions(doc) {
            walk(name.to_owned(), schema, &mut out);
        }
        for named in doc.paths.iter().flat_map(|p| &p.path) {
            let Some(item) = &named.value else { continue };
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                for param in &op.parameters {
                    if let Some(ParametersItemOneof::Parameter(p)) = &param.oneof {
                        if let Some(ParameterOneof::BodyParameter(body)) = &p.oneof {
                            if let Some(s) = &body.schema {
                                walk(
                                    format!("{} {} body", named.name, op.operation_id),
                                    s,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
                for response in op.responses.iter().flat_map(|r| &r.response_code) {
                    if let Some(ResponseValueOneof::Response(r)) =
                        response.value.as_ref().and_then(|v| v.oneof.as_ref())
                    {
                        if let Some(SchemaItemOneof::Schema(s)) =
                            r.schema.as_ref().and_then(|s| s.oneof.as_ref())
                        {
                            walk(
                                format!("{} {} {}", named.name, op.operation_id, response.name),
                                s,
                                &mut out,
                            );
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn deployment_definition_carries_its_group_version_kind() {
        let doc = decoded();
        let defs = definitions(&doc);
        let deployment = defs["io.k8s.api.apps.v1.Deployment"];
        let yaml = extension(&deployment.vendor_extension, GVK_EXTENSION).expect("gvk extension");
        // kubectl reads it as a YAML list of maps with string group, version and kind.
        let gvks: Vec<BTreeMap<String, String>> =
            serde_yaml::from_str(yaml).expect("a list of maps");
        assert_eq!(gvks.len(), 1, "{yaml}");
        assert_eq!(gvks[0]["group"], "apps");
        assert_eq!(gvks[0]["version"], "v1");
        assert_eq!(gvks[0]["kind"], "Deployment");
        let pod: Vec<BTreeMap<String, String>> = serde_yaml::from_str(
            extension(
                &defs["io.k8s.api.core.v1.Pod"].vendor_extension,
                GVK_EXTENSION,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(pod[0]["group"], "");
        assert_eq!(pod[0]["kind"], "Pod");
    }

    #[test]
    fn every_served_kind_has_a_definition_with_its_group_version_kind() {
        let doc = decoded();
        let defs = definitions(&doc);
        let mut found = Vec::new();
        for schema in defs.values() {
            if let Some(yaml) = extension(&schema.vendor_extension, GVK_EXTENSION) {
                let gvks: Vec<BTreeMap<String, String>> = serde_yaml::from_str(yaml).unwrap();
                for gvk in gvks {
                    found.push((
                        gvk["group"].clone(),
                        gvk["version"].clone(),
                        gvk["kind"].clone(),
                    ));
                }
            }
        }
        for kind in registry::KINDS {
            let want = (
                kind.group.to_owned(),
                kind.version.to_owned(),
                kind.kind.to_owned(),
            );
            assert!(found.contains(&want), "{want:?} missing from {found:?}");
        }
    }

    #[test]
    fn every_ref_resolves_to_a_definition() {
        let doc = decoded();
        let defs = definitions(&doc);
        let mut refs = 0;
        for (path, schema) in all_schemas(&doc) {
            if schema.xref.is_empty() {
                continue;
            }
            refs += 1;
            let name = schema
                .xref
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("{path}: {}", schema.xref));
            assert!(defs.contains_key(name), "{path}: dangling {}", schema.xref);
            assert!(types(&schema).is_empty(), "{path}: a $ref with a type");
            assert!(
                schema.properties.is_none(),
                "{path}: a $ref with properties"
            );
        }
        assert!(refs > 100, "only {refs} references");
    }

    #[test]
    fn every_array_schema_has_exactly_one_items_schema() {
        let doc = decoded();
        let mut arrays = 0;
        for (path, schema) in all_schemas(&doc) {
            let types = types(&schema);
            assert!(types.len() <= 1, "{path}: several types {types:?}");
            if types == ["array"] {
                arrays += 1;
                let items = schema.items.as_ref().map_or(0, |i| i.schema.len());
                assert_eq!(items, 1, "{path}: {items} items schemas");
            }
        }
        assert!(arrays > 20, "only {arrays} arrays");
    }

    #[test]
    fn kube_openapi_parses_every_definition() {
        let doc = decoded();
        let models = definitions(&doc);
        assert!(models.len() > 50, "{} definitions", models.len());
        for (name, schema) in &models {
            parse(schema, &models, name).unwrap_or_else(|e| panic!("SchemaError({e})"));
        }
    }

    #[test]
    fn explain_finds_deployment_spec_replicas() {
        let doc = decoded();
        let defs = definitions(&doc);
        let spec = property(defs["io.k8s.api.apps.v1.Deployment"], "spec").expect("spec");
        assert_eq!(spec.xref, "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
        assert!(
            !spec.description.is_empty(),
            "the reference keeps its description"
        );
        let replicas =
            property(defs["io.k8s.api.apps.v1.DeploymentSpec"], "replicas").expect("replicas");
        assert_eq!(types(replicas), ["integer"]);
        assert_eq!(replicas.format, "int32");
        assert!(replicas.description.contains("Number of desired pods"));
        let deployment_spec = defs["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(types(deployment_spec), ["object"]);
        assert!(deployment_spec.required.contains(&"selector".to_owned()));
    }

    #[test]
    fn pod_spec_containers_carry_strategic_merge_extensions() {
        let doc = decoded();
        let defs = definitions(&doc);
        let containers =
            property(defs["io.k8s.api.core.v1.PodSpec"], "containers").expect("containers");
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-strategy").map(str::trim),
            Some("merge")
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-merge-key").map(str::trim),
            Some("name")
        );
        let item = &containers.items.as_ref().expect("items").schema[0];
        assert_eq!(item.xref, "#/definitions/io.k8s.api.core.v1.Container");
    }

    #[test]
    fn int_or_string_quantity_and_time_are_typed_as_upstream_publishes_them() {
        let doc = decoded();
        let defs = definitions(&doc);
        let int_or_string = defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(types(int_or_string), ["string"]);
        assert_eq!(int_or_string.format, "int-or-string");
        assert!(extension(
            &int_or_string.vendor_extension,
            "x-kubernetes-int-or-string"
        )
        .is_none());
        let quantity = defs[QUANTITY];
        assert_eq!(types(quantity), ["string"]);
        assert_eq!(quantity.format, "");
        let time = defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
        assert_eq!(types(time), ["string"]);
        assert_eq!(time.format, "date-time");
        let labels = property(
            defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"],
            "labels",
        )
        .unwrap();
        assert_eq!(types(labels), ["object"]);
        match labels
            .additional_properties
            .as_ref()
            .and_then(|a| a.oneof.as_ref())
        {
            Some(AdditionalPropertiesOneof::Schema(values)) => {
                assert_eq!(types(values), ["string"])
            }
            other => panic!("labels: {other:?}"),
        }
    }

    /// kubectl's QueryParamVerifier: the first path whose PATCH names the kind (a single YAML
    /// map) decides, by the query parameters of that PATCH.
    #[test]
    fn patch_operations_declare_field_validation_for_every_kind() {
        let doc = decoded();
        let paths = &doc.paths.as_ref().expect("paths").path;
        for kind in registry::KINDS {
            let patch = paths
                .iter()
                .filter_map(|p| p.value.as_ref()?.patch.as_ref())
                .find(|op| {
                    extension(&op.vendor_extension, GVK_EXTENSION)
                        .and_then(|yaml| {
                            serde_yaml::from_str::<BTreeMap<String, String>>(yaml).ok()
                        })
                        .is_some_and(|gvk| {
                            gvk["group"] == kind.group
                                && gvk["version"] == kind.version
                                && gvk["kind"] == kind.kind
                        })
                })
                .unwrap_or_else(|| panic!("no PATCH for {}", kind.kind));
            let query_names: Vec<&str> = patch
                .parameters
                .iter()
                .filter_map(|p| match &p.oneof {
                    Some(ParametersItemOneof::Parameter(p)) => match &p.oneof {
                        Some(ParameterOneof::NonBodyParameter(NonBodyParameter {
                            oneof: Some(NonBodyParameterOneof::Query(q)),
                        })) => Some(q.name.as_str()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            assert!(
                query_names.contains(&"fieldValidation"),
                "{}: {query_names:?}",
                kind.kind
            );
        }
        let deployment = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.as_ref())
            .expect("the deployment path");
        let patch = deployment.patch.as_ref().unwrap();
        assert_eq!(patch.operation_id, "patchAppsV1NamespacedDeployment");
        assert!(patch
            .consumes
            .contains(&"application/strategic-merge-patch+json".to_owned()));
    }

    #[test]
    fn protobuf_matches_the_swagger_json() {
        let doc = decoded();
        assert_eq!(doc, to_protobuf(swagger()));
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(
            doc.info.as_ref().map(|i| i.version.as_str()),
            Some(GIT_VERSION)
        );
        let json_defs = swagger()["definitions"].as_object().unwrap();
        assert_eq!(json_defs.len(), definitions(&doc).len());
        let json = swagger().to_string();
        for gone in [
            "\"nullable\"",
            "\"anyOf\"",
            "\"oneOf\"",
            "#/components/",
            "\"x-kubernetes-int-or-string\"",
        ] {
            assert!(!json.contains(gone), "{gone} in the Swagger JSON");
        }
        assert_eq!(document(), document(), "built once");
    }

    /// The wire tags of gnostic's fields (openapiv2/OpenAPIv2.proto), checked byte by byte.
    #[test]
    fn wire_tags_follow_gnostic() {
        let schema = Schema {
            xref: "r".into(),
            type_item: Some(TypeItem {
                value: vec!["t".into()],
            }),
            vendor_extension: vec![NamedAny {
                name: "x".into(),
                value: Some(Any { yaml: "y".into() }),
            }],
            ..Default::default()
        };
        assert_eq!(
            schema.encode_to_vec(),
            [
                0x0a, 1, b'r', // _ref = 1
                0xb2, 0x01, 3, 0x0a, 1, b't', // type = 22 { value = 1 }
                0xfa, 0x01, 8, 0x0a, 1, b'x', 0x12, 3, 0x12, 1,
                b'y', // vendor_extension = 31 { name = 1, value = 2 { yaml = 2 } }
            ]
        );
        let doc = Document {
            swagger: "2.0".into(),
            definitions: Some(Definitions {
                additional_properties: vec![NamedSchema {
                    name: "n".into(),
                    value: Some(Schema::default()),
                }],
            }),
            ..Default::default()
        };
        // swagger = 1 "2.0"; definitions = 9 { additional_properties = 1 { name = 1, value = 2 } }
        assert_eq!(
            doc.encode_to_vec(),
            [0x0a, 3, b'2', b'.', b'0', 0x4a, 7, 0x0a, 5, 0x0a, 1, b'n', 0x12, 0]
        );
    }
}
