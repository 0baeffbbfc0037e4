//! PriorityClasses and the Priority admission with the real kubectl 1.27 and 1.33: the two
//! system classes every cluster has, a pod's priority from its class (or the global default),
//! and upstream's refusals (an unknown class, a priority that is not the class's, a second
//! global default, a `system-` name, a value above a billion).

mod support;

use support::cli::{Kubectl, Up};

fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn priority_story(version: &str) {
    let up = Up::start();
    let k = Kubectl::new(version, &up);
    let table = rows(&k.ok(&["get", "priorityclasses"]));
    assert_eq!(
        table[0],
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{version}"
    );
    let classes: Vec<(&str, &str, &str)> = table[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        classes,
        [
            ("system-cluster-critical", "2000000000", "false"),
            ("system-node-critical", "2000001000", "false"),
        ],
        "{version}"
    );
    // A pod naming a class that does not exist is refused.
    let out = k.run(&[
        "run",
        "early",
        "--image=nginx",
        r#"--overrides={"spec":{"priorityClassName":"gold"}}"#,
    ]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(
            "Error from server (Forbidden): pods \"early\" is forbidden: no PriorityClass with name gold was found"
        ),
        "{version}: {}",
        out.stderr
    );
    let created = k.ok(&[
        "create",
        "priorityclass",
        "gold",
        "--value=1000",
        "--global-default=true",
        "--description=the default",
    ]);
    assert_eq!(
        created.trim(),
        "priorityclass.scheduling.k8s.io/gold created"
    );
    // Pods without a class get the global default's, name and all.
    k.ok(&["run", "plain", "--image=nginx"]);
    let got = k.ok(&[
        "get",
        "pod",
        "plain",
        "-o",
        "jsonpath={.spec.priority} {.spec.priorityClassName} {.spec.preemptionPolicy}",
    ]);
    assert_eq!(got, "1000 gold PreemptLowerPriority", "{version}");
    // The system class by name.
    k.ok(&[
        "run",
        "critical",
        "--image=nginx",
        r#"--overrides={"spec":{"priorityClassName":"system-cluster-critical"}}"#,
    ]);
    let got = k.ok(&["get", "pod", "critical", "-o", "jsonpath={.spec.priority}"]);
    assert_eq!(got, "2000000000");
    // Refusals, in upstream's words.
    for (args, expected) in [
        (
            vec!["run", "wrong", "--image=nginx", r#"--overrides={"spec":{"priority":5}}"#],
            "pods \"wrong\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name",
        ),
        (
            vec!["create", "priorityclass", "silver", "--value=10", "--global-default=true"],
            "\"silver\" is forbidden: PriorityClass gold is already marked as default. Only one default can exist",
        ),
        (
            vec!["create", "priorityclass", "system-mine", "--value=10"],
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only",
        ),
        (
            vec!["create", "priorityclass", "huge", "--value=2000000000"],
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
        ),
    ] {
        let out = k.run(&args);
        assert!(!out.ok, "{version}: {args:?} was accepted");
        assert!(out.stderr.contains(expected), "{version}: {args:?}: {}", out.stderr);
    }
    // The value cannot change.
    let out = k.run(&[
        "patch",
        "pc",
        "gold",
        "--type=merge",
        "-p",
        r#"{"value":7}"#,
    ]);
    assert!(
        out.stderr
            .contains("value: Forbidden: may not be changed in an update."),
        "{}",
        out.stderr
    );
}

#[test]
fn kubectl_1_27_and_priority_classes() {
    priority_story("1.27");
}

#[test]
fn kubectl_1_33_and_priority_classes() {
    priority_story("1.33");
}
