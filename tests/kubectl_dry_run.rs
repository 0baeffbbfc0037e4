//! Real kubectl (1.27 and 1.33) with `--dry-run=server`: the answer shows the change as the
//! cluster would make it, and the cluster keeps none of it.

mod support;

use support::cli::{Kubectl, Up};

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: nginx, image: nginx:1.27}}
"
    )
}

fn dry_run_story(version: &str) {
    let up = Up::start();
    let k = Kubectl::new(version, &up);
    let one = k.file("one.yaml", &deployment(1));
    let four = k.file("four.yaml", &deployment(4));
    k.ok(&["apply", "-f", &one]);
    let replicas = || {
        k.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    };

    let scaled = k.ok(&[
        "scale",
        "deployment/web",
        "--replicas=3",
        "--dry-run=server",
    ]);
    assert_eq!(scaled.trim(), "deployment.apps/web scaled (server dry run)");
    assert_eq!(replicas(), "1", "a dry-run scale scaled");

    let applied = k.ok(&[
        "apply",
        "-f",
        &four,
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(
        applied, "4",
        "a dry-run apply shows the object as it would be"
    );
    let labelled = k.ok(&[
        "label",
        "deployment",
        "web",
        "tier=front",
        "--dry-run=server",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ]);
    assert_eq!(
        labelled, "front",
        "a dry-run patch shows the patched object"
    );
    assert_eq!(replicas(), "1", "a dry-run apply applied");
    let labels = k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(
        !labels.contains("tier"),
        "a dry-run patch patched: {labels}"
    );

    // kubectl sends dryRun in the DeleteOptions body.
    let deleted = k.ok(&["delete", "deployment", "web", "--dry-run=server"]);
    assert_eq!(
        deleted.trim(),
        "deployment.apps \"web\" deleted (server dry run)"
    );
    let still = k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert_eq!(
        still, "",
        "a dry-run delete marked the deployment for deletion"
    );
}

#[test]
fn kubectl_1_27_server_dry_run_changes_nothing() {
    dry_run_story("1.27");
}

#[test]
fn kubectl_1_33_server_dry_run_changes_nothing() {
    dry_run_story("1.33");
}
