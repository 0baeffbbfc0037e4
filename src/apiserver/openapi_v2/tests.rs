//! The document as kubectl and kube-openapi read it: decoded from protobuf and checked
//! against their rules.

use std::collections::BTreeMap;

use super::encode::to_protobuf;
use super::messages::*;
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
    let gvks: Vec<BTreeMap<String, String>> = serde_yaml::from_str(yaml).expect("a list of maps");
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
    for kind in registry::KINDS
        .iter()
        .filter(|k| k.verbs.contains(&"patch"))
    {
        let patch = paths
            .iter()
            .filter_map(|p| p.value.as_ref()?.patch.as_ref())
            .find(|op| {
                extension(&op.vendor_extension, GVK_EXTENSION)
                    .and_then(|yaml| serde_yaml::from_str::<BTreeMap<String, String>>(yaml).ok())
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
    // JSONSchemaProps (in CustomResourceDefinition) has properties named after these keywords;
    // they are data there, not keywords.
    let mut keywords_only = swagger().clone();
    if let Some(defs) = keywords_only["definitions"].as_object_mut() {
        defs.retain(|name, _| !name.ends_with(".JSONSchemaProps"));
    }
    let json = keywords_only.to_string();
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
