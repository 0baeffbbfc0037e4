//! OpenAPI v3 documents for the served group-versions, built once from k8s-openapi's schemas.
//!
//! `kubectl explain` reads the schemas (it finds a kind by `x-kubernetes-group-version-kind`);
//! kubectl 1.33 skips client-side validation when the kind's PATCH operation declares the
//! `fieldValidation` parameter, because the server validates fields itself.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ComponentStatus, ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as EventV1;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::registry::{self, Kind};
use crate::k8s::GIT_VERSION;

/// The schema name (`io.k8s.api.apps.v1.Deployment`) of each served kind, and the generator
/// that adds it and everything it references.
pub(super) fn schema_names(
    generator: &mut schemars::SchemaGenerator,
) -> BTreeMap<(&'static str, &'static str, &'static str), String> {
    fn add<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> String {
        generator.subschema_for::<T>();
        T::schema_name().into_owned()
    }
    let mut names = BTreeMap::new();
    names.insert(("", "v1", "Pod"), add::<Pod>(generator));
    names.insert(("", "v1", "Namespace"), add::<Namespace>(generator));
    names.insert(("", "v1", "Node"), add::<Node>(generator));
    names.insert(("", "v1", "Event"), add::<Event>(generator));
    names.insert(("", "v1", "Service"), add::<Service>(generator));
    names.insert(("", "v1", "Endpoints"), add::<Endpoints>(generator));
    names.insert(("", "v1", "ConfigMap"), add::<ConfigMap>(generator));
    names.insert(("", "v1", "Secret"), add::<Secret>(generator));
    names.insert(
        ("", "v1", "ComponentStatus"),
        add::<ComponentStatus>(generator),
    );
    names.insert(
        ("", "v1", "ServiceAccount"),
        add::<ServiceAccount>(generator),
    );
    names.insert(("apps", "v1", "Deployment"), add::<Deployment>(generator));
    names.insert(("apps", "v1", "ReplicaSet"), add::<ReplicaSet>(generator));
    names.insert(("apps", "v1", "DaemonSet"), add::<DaemonSet>(generator));
    names.insert(
        ("scheduling.k8s.io", "v1", "PriorityClass"),
        add::<k8s_openapi::api::scheduling::v1::PriorityClass>(generator),
    );
    names.insert(
        ("batch", "v1", "Job"),
        add::<k8s_openapi::api::batch::v1::Job>(generator),
    );
    names.insert(
        ("apps", "v1", "ControllerRevision"),
        add::<ControllerRevision>(generator),
    );
    names.insert(
        ("coordination.k8s.io", "v1", "Lease"),
        add::<Lease>(generator),
    );
    names.insert(
        ("discovery.k8s.io", "v1", "EndpointSlice"),
        add::<EndpointSlice>(generator),
    );
    names.insert(("events.k8s.io", "v1", "Event"), add::<EventV1>(generator));
    names.insert(
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        add::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(generator),
    );
    names
}

/// The paths of one kind: enough operations for kubectl to see the server validates fields.
fn paths_for(kind: &Kind, schema_ref: &str) -> Vec<(String, Value)> {
    let collection = kind.collection_path();
    let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
    let body = json!({"content": {"application/json": {"schema": {"$ref": schema_ref}}}});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}});
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let write_params = json!([
        query("dryRun"),
        query("fieldManager"),
        query("fieldValidation")
    ]);
    let item = json!({
        "get": {"operationId": format!("read{}", kind.kind), "responses": ok, "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
        "put": {"operationId": format!("replace{}", kind.kind), "parameters": write_params, "requestBody": body, "responses": ok, "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk},
        "patch": {"operationId": format!("patch{}", kind.kind), "parameters": write_params,
            "requestBody": {"content": {"application/apply-patch+yaml": {"schema": {"type": "object"}}, "application/json-patch+json": {"schema": {"type": "object"}}, "application/merge-patch+json": {"schema": {"type": "object"}}, "application/strategic-merge-patch+json": {"schema": {"type": "object"}}}},
            "responses": ok, "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
        "delete": {"operationId": format!("delete{}", kind.kind), "responses": ok, "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk},
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
    });
    let list = json!({
        "post": {"operationId": format!("create{}", kind.kind), "parameters": write_params, "requestBody": body, "responses": ok, "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk},
    });
    let (mut list, mut item) = (list, item);
    super::openapi_v2::keep_served(kind, &mut list);
    super::openapi_v2::keep_served(kind, &mut item);
    vec![
        (collection.clone(), list),
        (format!("{collection}/{{name}}"), item),
    ]
}

/// Mark the fields strategic merge patch merges, as upstream's published schemas do; kubectl
/// 1.28+ computes `apply` patches from these (1.27 from the v2 document, which shares this), so
/// without them every list would look replaced.
pub(super) fn add_patch_extensions(definitions: &mut Map<String, Value>) {
    for (owner, field, strategy, key) in super::strategic::openapi_extensions() {
        let suffix = format!(".{owner}");
        for (name, schema) in definitions.iter_mut() {
            if !name.ends_with(&suffix) {
                continue;
            }
            if let Some(prop) = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut(field))
                .and_then(Value::as_object_mut)
            {
                prop.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
                if let Some(key) = key {
                    prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                }
            }
        }
    }
}

struct Documents {
    by_path: BTreeMap<String, Bytes>,
}

fn build() -> Documents {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let names = schema_names(&mut generator);
    let mut definitions: Map<String, Value> = generator.take_definitions(true);
    add_patch_extensions(&mut definitions);
    let mut by_path = BTreeMap::new();
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for kind in registry::KINDS {
        if !gvs.contains(&(kind.group, kind.version)) {
            gvs.push((kind.group, kind.version));
        }
    }
    for (group, version) in gvs {
        let mut schemas = definitions.clone();
        let mut paths = Map::new();
        for kind in registry::kinds_in(group, version) {
            let Some(name) = names.get(&(kind.group, kind.version, kind.kind)) else {
                continue;
            };
            if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": kind.group, "version": kind.version, "kind": kind.kind}]),
                );
            }
            for (path, item) in paths_for(kind, &format!("#/components/schemas/{name}")) {
                paths.insert(path, item);
            }
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": GIT_VERSION},
            "paths": paths,
            "components": {"schemas": schemas},
        });
        let key = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        by_path.insert(
            key,
            Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()),
        );
    }
    Documents { by_path }
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(build)
}

/// `/openapi/v3`: the index of group-version documents.
pub fn index() -> Value {
    let paths: Map<String, Value> = documents()
        .by_path
        .keys()
        .map(|k| {
            (
                k.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{k}")}),
            )
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/<path>`, if served.
pub fn document(path: &str) -> Option<Bytes> {
    documents().by_path.get(path.trim_matches('/')).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_the_kinds_and_their_references() {
        let doc: Value = serde_json::from_slice(&document("apis/apps/v1").unwrap()).unwrap();
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        let spec_ref = deployment["properties"]["spec"].to_string();
        assert!(
            spec_ref.contains("#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"),
            "{spec_ref}"
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"].is_object());
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(index()["paths"]["api/v1"]["serverRelativeURL"] == "/openapi/v3/api/v1");
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    }
}
