//! Discovery, version, health and OpenAPI documents, all derived from the registry of kinds.

use serde_json::{json, Value};

use super::registry::{self, Kind};

use crate::k8s::{go_arch, GIT_VERSION};

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": concat!("kubespec ", env!("CARGO_PKG_VERSION")),
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str) -> Value {
    let versions: Vec<Value> = registry::KINDS
        .iter()
        .filter(|k| k.group == group)
        .map(|k| k.version)
        .fold(Vec::new(), |mut acc: Vec<&str>, v| {
            if !acc.contains(&v) {
                acc.push(v);
            }
            acc
        })
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = registry::groups().into_iter().map(group_entry).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if the group is served.
pub fn group(group: &str) -> Option<Value> {
    if !registry::groups().contains(&group) {
        return None;
    }
    let mut entry = group_entry(group);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

fn resource_entries(kind: &Kind) -> Vec<Value> {
    let mut entries = vec![json!({
        "name": kind.resource,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": kind.verbs,
        "shortNames": kind.short_names,
        "categories": kind.categories,
        "storageVersionHash": "",
    })];
    for entry in entries.iter_mut() {
        let obj = entry.as_object_mut().expect("a json object literal");
        if kind.short_names.is_empty() {
            obj.remove("shortNames");
        }
        if kind.categories.is_empty() {
            obj.remove("categories");
        }
        if kind.resource == super::componentstatus::RESOURCE {
            // Not stored, so no storage version (upstream's entry has none).
            obj.remove("storageVersionHash");
        }
    }
    for sub in kind.subresources {
        let (sub_kind, group, version, verbs): (&str, Option<&str>, Option<&str>, &[&str]) =
            match *sub {
                "status" => (kind.kind, None, None, &["get", "patch", "update"]),
                "scale" => (
                    "Scale",
                    Some("autoscaling"),
                    Some("v1"),
                    &["get", "patch", "update"],
                ),
                "binding" => ("Binding", None, None, &["create"]),
                "eviction" => ("Eviction", Some("policy"), Some("v1"), &["create"]),
                "token" => (
                    "TokenRequest",
                    Some("authentication.k8s.io"),
                    Some("v1"),
                    &["create"],
                ),
                "finalize" => (kind.kind, None, None, &["update"]),
                _ => continue,
            };
        let mut e = json!({
            "name": format!("{}/{}", kind.resource, sub),
            "singularName": "",
            "namespaced": kind.namespaced,
            "kind": sub_kind,
            "verbs": verbs,
        });
        if let (Some(g), Some(v)) = (group, version) {
            e["group"] = json!(g);
            e["version"] = json!(v);
        }
        entries.push(e);
    }
    if kind.resource == "pods" {
        entries.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
        for (name, kind) in [
            ("pods/attach", "PodAttachOptions"),
            ("pods/exec", "PodExecOptions"),
            ("pods/portforward", "PodPortForwardOptions"),
        ] {
            entries.push(json!({"name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["create", "get"]}));
        }
    }
    entries
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = registry::kinds_in(group, version)
        .flat_map(resource_entries)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_every_kind_with_what_kubectl_needs() {
        let core = resource_list("", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let apps = resource_list("apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(resource_list("apps", "v2").is_none());
        let slices = resource_list("discovery.k8s.io", "v1").unwrap();
        assert_eq!(
            slices["resources"],
            json!([{"name": "endpointslices", "singularName": "endpointslice", "namespaced": true,
                "kind": "EndpointSlice", "verbs": ["create", "delete", "deletecollection", "get",
                "list", "patch", "update", "watch"], "storageVersionHash": ""}])
        );
        let groups = group_list();
        let names: Vec<_> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].clone())
            .collect();
        assert_eq!(
            names,
            vec![
                json!("apps"),
                json!("events.k8s.io"),
                json!("batch"),
                json!("apiextensions.k8s.io"),
                json!("scheduling.k8s.io"),
                json!("coordination.k8s.io"),
                json!("discovery.k8s.io"),
            ]
        );
    }
}
