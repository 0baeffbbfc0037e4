//! The paths of the document: for each served kind, create on its collection and read,
//! replace, patch and delete on an object, named and described as upstream's operations are.

use serde_json::{json, Map, Value};

use super::{DEFINITIONS, DELETE_OPTIONS, PATCH, STATUS};
use crate::apiserver::registry::Kind;

/// The word with its first letter in upper case.
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
pub(super) fn paths_for(kind: &Kind, name: &str) -> Vec<(String, Value)> {
    let collection = kind.collection_path();
    let operations = Operations::new(kind);
    let object = json!({"$ref": format!("{DEFINITIONS}{name}")});
    let status = json!({"$ref": format!("{DEFINITIONS}{STATUS}")});
    let (scope_params, item_params) = path_parameters(kind);

    let create = operations.operation(
        "create",
        "post",
        format!("create a {}", kind.kind),
        json!({
            "consumes": ["*/*"],
            "parameters": write_params(body(object.clone())),
            "responses": responses(&["200", "201", "202"], &object),
        }),
    );
    let read = operations.operation(
        "read",
        "get",
        format!("read the specified {}", kind.kind),
        json!({"consumes": ["*/*"], "responses": responses(&["200"], &object)}),
    );
    let replace = operations.operation(
        "replace",
        "put",
        format!("replace the specified {}", kind.kind),
        json!({
            "consumes": ["*/*"],
            "parameters": write_params(body(object.clone())),
            "responses": responses(&["200", "201"], &object),
        }),
    );
    let patch = operations.patch(&object);
    let deleted = if kind.delete_returns_object {
        &object
    } else {
        &status
    };
    let delete = operations.delete(deleted);

    let mut collection_item = json!({"post": create, "parameters": scope_params});
    let mut object_item = json!({
        "get": read,
        "put": replace,
        "patch": patch,
        "delete": delete,
        "parameters": item_params,
    });
    keep_served(kind, &mut collection_item);
    keep_served(kind, &mut object_item);
    vec![
        (collection.clone(), collection_item),
        (format!("{collection}/{{name}}"), object_item),
    ]
}

/// Leave out of a path item the operations whose verbs the kind does not serve.
pub(crate) fn keep_served(kind: &Kind, item: &mut Value) {
    let Some(item) = item.as_object_mut() else {
        return;
    };
    for (method, verb) in [
        ("post", "create"),
        ("get", "get"),
        ("put", "update"),
        ("patch", "patch"),
        ("delete", "delete"),
    ] {
        if !kind.verbs.contains(&verb) {
            item.remove(method);
        }
    }
}

/// What the operations of one kind share: their tag, the parts of their ids, and the kind
/// they name.
struct Operations<'a> {
    kind: &'a Kind,
    /// `core_v1`, `apps_v1`, ...
    tag: String,
    /// `CoreV1`, `AppsV1`, ...: what follows the verb in an operation id.
    prefix: String,
    gvk: Value,
}

impl<'a> Operations<'a> {
    fn new(kind: &'a Kind) -> Self {
        let group_word = match kind.group.split('.').next() {
            Some(word) if !word.is_empty() => word,
            _ => "core",
        };
        Self {
            kind,
            tag: format!("{group_word}_{}", kind.version),
            prefix: format!("{}{}", capitalized(group_word), capitalized(kind.version)),
            gvk: json!({"group": kind.group, "kind": kind.kind, "version": kind.version}),
        }
    }

    /// One operation: what every operation says, and the `extra` of this one.
    fn operation(&self, verb: &str, action: &str, description: String, extra: Value) -> Value {
        let scope = if self.kind.namespaced {
            "Namespaced"
        } else {
            ""
        };
        let produces = json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ]);
        let mut op = json!({
            "description": description,
            "operationId": format!("{verb}{}{scope}{}", self.prefix, self.kind.kind),
            "produces": produces,
            "schemes": ["https"],
            "tags": [self.tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object()) {
            op.extend(extra.clone());
        }
        op
    }

    /// PATCH of an object, in the four patch types, with apply's `force`.
    fn patch(&self, object: &Value) -> Value {
        let mut patch_params = write_params(body(json!({"$ref": format!("{DEFINITIONS}{PATCH}")})));
        if let Some(list) = patch_params.as_array_mut() {
            list.push(query(
                "force",
                "boolean",
                "Force an apply request to take over fields other managers own.",
            ));
        }
        self.operation(
            "patch",
            "patch",
            format!("partially update the specified {}", self.kind.kind),
            json!({
                "consumes": [
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml"
                ],
                "parameters": patch_params,
                "responses": responses(&["200", "201"], object),
            }),
        )
    }

    /// DELETE of an object, answered with `deleted` (the object, or a Status).
    fn delete(&self, deleted: &Value) -> Value {
        self.operation(
            "delete",
            "delete",
            format!("delete a {}", self.kind.kind),
            json!({
                "consumes": ["*/*"],
                "parameters": [
                    body(json!({"$ref": format!("{DEFINITIONS}{DELETE_OPTIONS}")})),
                    dry_run(),
                    query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
                    query("propagationPolicy", "string", "Whether and how garbage collection is performed: Orphan, Background or Foreground."),
                ],
                "responses": responses(&["200", "202"], deleted),
            }),
        )
    }
}

/// The parameters of the collection's path (namespace, pretty) and of an object's (its name
/// as well).
fn path_parameters(kind: &Kind) -> (Vec<Value>, Vec<Value>) {
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
    (scope_params, item_params)
}

/// The responses of an operation: `schema` for each of `codes`, and 401.
fn responses(codes: &[&str], schema: &Value) -> Value {
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
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description})
}

fn body(schema: Value) -> Value {
    json!({"name": "body", "in": "body", "required": true, "schema": schema})
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "string",
        "When present, the request is validated and admitted but not persisted. The only valid value is All.",
    )
}

/// The parameters of a write: its body, dryRun, fieldManager and fieldValidation.
fn write_params(body_param: Value) -> Value {
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
    json!([body_param, dry_run(), field_manager, field_validation])
}
