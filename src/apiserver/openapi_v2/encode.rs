//! The Swagger JSON turned into gnostic's protobuf `Document`, keyword by keyword, the way
//! gnostic reads a Swagger JSON document.

use serde_json::Value;

use super::messages as pb;

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

/// The keys of an object other than its `x-` extensions, in order.
fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !key.starts_with("x-"))
}

pub(super) fn to_protobuf(doc: &Value) -> pb::Document {
    let info = doc.get("info").map(|info| pb::Info {
        title: text(info, "title"),
        version: text(info, "version"),
        description: text(info, "description"),
        vendor_extension: extensions(info),
    });
    let paths = doc.get("paths").map(|paths| pb::Paths {
        vendor_extension: extensions(paths),
        path: entries(paths)
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
            response_code: entries(responses)
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
