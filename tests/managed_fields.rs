//! Field ownership as real kubectl (1.27 and 1.33) sees it: every write records its field
//! manager in `managedFields` (creates and updates as `Update`, controllers by their component
//! name, status writes with their subresource), and server-side apply merges lists by their
//! keys, so two managers applying the same containers share them and a change to a field
//! another manager owns is a conflict, as on a real cluster.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::cli::{Kubectl, Up};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: nginx
        image: IMAGE
        ports: [{containerPort: 80}]
";

fn managers(k: &Kubectl, name: &str) -> Vec<Value> {
    let out = k.ok(&[
        "get",
        "deployment",
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let object: Value = serde_json::from_str(&out).unwrap();
    object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn describe(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            format!(
                "{}/{}/{}",
                e["manager"].as_str().unwrap_or(""),
                e["operation"].as_str().unwrap_or(""),
                e["subresource"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn ownership_as_kubectl_sees_it(version: &str) {
    let up = Up::start();
    let watched = up.watch();
    let k = Kubectl::new(version, &up);

    // A create is an Update by kubectl-create; the controller's status write is its own entry.
    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    let entries = watched.until_ok(
        Duration::from_secs(60),
        "the controller's status entry",
        || {
            let entries = managers(&k, "web");
            let described = describe(&entries);
            if described.contains(&"kube-controller-manager/Update/status".to_string()) {
                Ok(entries)
            } else {
                Err(format!("managers are {described:?}"))
            }
        },
    );
    let creator = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-create")
        .unwrap_or_else(|| panic!("no kubectl-create entry: {entries:?}"));
    assert_eq!(creator["operation"], "Update");
    assert_eq!(creator["apiVersion"], "apps/v1");
    assert!(creator.get("subresource").is_none(), "{creator}");
    let created = &creator["fieldsV1"];
    assert_eq!(
        created["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            ["f:image"],
        serde_json::json!({}),
        "containers are owned item by item, by name: {created}"
    );
    assert!(created.get("f:status").is_none(), "{created}");
    let status = entries
        .iter()
        .find(|e| e["subresource"] == "status")
        .unwrap();
    assert!(
        status["fieldsV1"]["f:status"].get("f:replicas").is_some(),
        "{status}"
    );

    // Two managers applying the same containers share them.
    let file = k.file("api.yaml", &DEPLOYMENT.replace("IMAGE", "nginx"));
    for manager in ["alice", "bob"] {
        let out = k.ok(&[
            "apply",
            "--server-side",
            &format!("--field-manager={manager}"),
            "-f",
            &file,
        ]);
        assert_eq!(out, "deployment.apps/api serverside-applied\n", "{manager}");
    }
    let entries = managers(&k, "api");
    let described = describe(&entries);
    assert!(
        described.starts_with(&["bob/Apply/".to_string(), "alice/Apply/".to_string()]),
        "appliers come first, bob's apply (which changed nothing, so has no time) first: {described:?}"
    );
    assert!(entries[0].get("time").is_none(), "{entries:?}");

    // A third changing the image conflicts with both, in upstream's words.
    let changed = k.file("api2.yaml", &DEPLOYMENT.replace("IMAGE", "nginx:1.27"));
    let out = k.run(&[
        "apply",
        "--server-side",
        "--field-manager=carol",
        "-f",
        &changed,
    ]);
    assert!(!out.ok);
    let path = ".spec.template.spec.containers[name=\"nginx\"].image";
    assert!(
        out.stderr.contains(&format!(
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- {path}\nconflicts with \"bob\":\n- {path}"
        )),
        "kubectl {version}: {}",
        out.stderr
    );
    // Forced, the image moves to carol.
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=carol",
        "--force-conflicts",
        "-f",
        &changed,
    ]);
    let entries = managers(&k, "api");
    let owns_image = |manager: &str| {
        entries.iter().any(|e| {
            e["manager"] == manager
                && e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                    ["k:{\"name\":\"nginx\"}"]
                    .get("f:image")
                    .is_some()
        })
    };
    assert!(
        owns_image("carol") && !owns_image("alice") && !owns_image("bob"),
        "{entries:?}"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deployment",
            "api",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image} {.spec.template.spec.containers[*].ports[*].protocol}"
        ]),
        "nginx:1.27 TCP"
    );
}

#[test]
fn ownership_as_kubectl_1_27_sees_it() {
    ownership_as_kubectl_sees_it("1.27");
}

#[test]
fn ownership_as_kubectl_1_33_sees_it() {
    ownership_as_kubectl_sees_it("1.33");
}
