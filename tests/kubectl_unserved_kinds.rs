//! Real kubectl (1.27 and 1.33) applying a file that holds a kind the reference cluster does not
//! serve: as against a cluster without that kind, kubectl says it knows no such kind and still
//! applies the rest of the file. (kubectl's validation looks the kind up among the
//! CustomResourceDefinitions first; the reference answers that there are none.)

mod support;

use support::cli::{Kubectl, Up};

const MIXED: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: before
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: after
";

fn apply_a_file_with_an_unserved_kind(version: &str) {
    let up = Up::start();
    let k = Kubectl::new(version, &up);
    let file = k.file("mixed.yaml", MIXED);
    let out = k.run(&["apply", "-f", &file]);
    assert!(!out.ok, "the StatefulSet cannot be applied: {}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "resource mapping not found for name: \"db\" namespace: \"\" from \"{file}\": no matches for kind \"StatefulSet\" in version \"apps/v1\""
        )),
        "kubectl {version}: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("ensure CRDs are installed first"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stdout, "configmap/before created\nconfigmap/after created\n",
        "the rest of the file is applied"
    );
    assert_eq!(
        k.ok(&["get", "configmaps", "before", "after", "-o", "name"]),
        "configmap/before\nconfigmap/after\n"
    );
    // There are no CRDs, and none can be made here.
    let crds = k.run(&["get", "crd"]);
    assert!(crds.ok, "{}", crds.stderr);
    assert_eq!(crds.stderr, "No resources found\n");
    let create = k.run(&[
        "create",
        "-f",
        &k.file(
            "crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
",
        ),
    ]);
    assert!(!create.ok);
    assert!(
        create
            .stderr
            .contains("the server does not allow this method on the requested resource"),
        "{}",
        create.stderr
    );
}

#[test]
fn kubectl_1_27_applies_the_rest_of_a_file_with_an_unserved_kind() {
    apply_a_file_with_an_unserved_kind("1.27");
}

#[test]
fn kubectl_1_33_applies_the_rest_of_a_file_with_an_unserved_kind() {
    apply_a_file_with_an_unserved_kind("1.33");
}
