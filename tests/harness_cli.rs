//! `kubespec test` and `kubespec steps` as a user meets them: exit codes, reports that CI
//! servers read, what a failure leaves behind, and clear messages for every mistake a spec
//! writer can make. The feature files are fixtures under tests/fixtures/harness.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use support::cli::Up;

const FIXTURES: &str = "tests/fixtures/harness";

fn kubespec() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"));
    cmd.timeout(Duration::from_secs(300));
    cmd
}

fn test_cmd(dir: &Path, args: &[&str]) -> Output {
    kubespec()
        .arg("test")
        .args(args)
        .arg("--artifacts")
        .arg(dir.join("artifacts"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The tests that run scenarios take it to read; the whole-suite test takes it alone.
static SUITE: std::sync::RwLock<()> = std::sync::RwLock::new(());
#[test]
fn passing_scenarios_exit_zero_with_junit_and_cucumber_json() {
    let _shared = SUITE.read().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("reports/junit.xml");
    let json = dir.path().join("reports/cucumber.json");
    let out = test_cmd(
        dir.path(),
        &[
            &format!("{FIXTURES}/pass"),
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("2 scenarios: 2 passed, 0 failed, 0 skipped"),
        "{stdout}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2, "{xml}");
    assert!(cases.iter().any(|c| c
        .attribute("name")
        .is_some_and(|n| n.contains("A pause pod becomes ready"))));
    assert!(
        !doc.descendants().any(|n| n.has_tag_name("failure")),
        "{xml}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("Cucumber JSON");
    let scenarios = report[0]["elements"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert!(scenarios
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .all(|step| step["result"]["status"] == "passed"));
}

#[test]
fn a_failing_scenario_exits_one_says_what_it_expected_and_saw_and_leaves_its_evidence() {
    let _shared = SUITE.read().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = test_cmd(
        dir.path(),
        &[
            &format!("{FIXTURES}/fail"),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout
            .contains("timed out after 15s (cluster time): expected pod crash in phase Succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("pod crash: is Running"), "{stdout}");
    assert!(
        stdout.contains("Back-off restarting failed container app"),
        "{stdout}"
    );

    let artifacts = dir
        .path()
        .join("artifacts/wrong-2-a-crashing-pod-is-expected-to-succeed");
    let failure = std::fs::read_to_string(artifacts.join("failure.txt")).unwrap();
    assert!(
        failure.contains("expected pod crash in phase Succeeded"),
        "{failure}"
    );
    let timeline = std::fs::read_to_string(artifacts.join("timeline.txt")).unwrap();
    assert!(timeline.contains("pod crash"), "{timeline}");
    let events = std::fs::read_to_string(artifacts.join("events.txt")).unwrap();
    assert!(
        events.contains("BackOff") && events.contains("pod/crash"),
        "{events}"
    );
    let objects = std::fs::read_to_string(artifacts.join("objects.yaml")).unwrap();
    assert!(
        objects.contains("name: crash") && objects.contains("kind: Pod"),
        "{objects}"
    );
    let logs = std::fs::read_to_string(artifacts.join("logs/crash_app.previous.log")).unwrap();
    assert!(logs.contains("about to fail"), "{logs}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert!(
        failure
            .attribute("message")
            .is_some_and(|m| m.contains("expected pod crash in phase Succeeded")),
        "{xml}"
    );
}

#[test]
fn undefined_steps_fail_before_anything_runs_with_the_closest_known_steps() {
    let dir = tempfile::tempdir().unwrap();
    let out = test_cmd(dir.path(), &[&format!("{FIXTURES}/undefined")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("typo.feature:3:5: undefined step: Given a clustr with 3 nodes"),
        "{stderr}"
    );
    let first = stderr.split("typo.feature:4").next().unwrap();
    assert!(
        first.contains("Given a cluster with {int} node(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "typo.feature:4:5: undefined step: Then within 60 seconds deployment web is rolled-out"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Then within {duration} deployment {word} is rolled out"),
        "{stderr}"
    );
    assert!(!dir.path().join("artifacts").exists(), "nothing ran");
}

#[test]
fn syntax_errors_bad_manifests_and_missing_paths_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = test_cmd(dir.path(), &[&format!("{FIXTURES}/syntax")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.feature:4:"), "{stderr}");
    assert!(stderr.contains("Gherkin syntax error"), "{stderr}");

    let out = test_cmd(dir.path(), &[&format!("{FIXTURES}/manifest")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("bad.feature:14: Pod field spec.containers[0].imagePullPolcy: unknown field"),
        "{stderr}"
    );

    let out = test_cmd(dir.path(), &["no/such/features"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no/such/features: no such file or directory"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pass = format!("{FIXTURES}/pass");
    for (args, says) in [
        (
            vec![pass.as_str(), "--concurrency", "0"],
            "--concurrency must be at least 1",
        ),
        (
            vec![pass.as_str(), "--tags", "@a and"],
            "is not a tag expression",
        ),
        (
            vec![pass.as_str(), "--name", "("],
            "is not a regular expression",
        ),
        (
            vec![pass.as_str(), "--time-scale=-1"],
            "must be a positive number",
        ),
        (
            vec![pass.as_str(), "--kubeconfig", "x"],
            "only apply to --target kubeconfig",
        ),
    ] {
        let out = test_cmd(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unreachable_cluster_names_its_address_and_kubeconfig_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubespec::cluster::kubeconfig_for("http://127.0.0.1:1"),
    )
    .unwrap();
    let out = test_cmd(
        dir.path(),
        &[
            &format!("{FIXTURES}/pass"),
            "--target",
            "kubeconfig",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach the cluster at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains(kubeconfig.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("kubespec up"), "{stderr}");
}

#[test]
fn the_step_listing_comes_from_the_definitions() {
    let out = kubespec().arg("steps").output().unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Given a cluster with {int} node(s)  [src/harness/steps/cluster.rs:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    e.g. Given a cluster with 3 nodes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Then within {duration} {object} has/have events in this order:"),
        "{stdout}"
    );
    assert!(stdout.contains("== snapshots =="), "{stdout}");
}

/// The kubeconfig target end to end: `kubespec up` in a process of its own, and the whole
/// feature suite against it. Every scenario passes or is skipped for a capability it names.
#[test]
fn the_whole_suite_runs_against_kubespec_up_through_a_kubeconfig() {
    // Alone: the suite's timing windows are cluster time, and the scenario runs of the other
    // tests here would share the machine with it.
    let _alone = SUITE.write().unwrap_or_else(|e| e.into_inner());
    // Time scale 5: the suite shares this one cluster (a kube-proxy per node sees every
    // scenario's Services) while the other tests of this binary run beside it, in debug builds.
    let up = Up::start_with(&["--nodes", "2", "--time-scale", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = kubespec()
        .args([
            "test",
            "features",
            "--target",
            "kubeconfig",
            "--time-scale",
            "5",
            // As tests/features.rs runs the debug build: 4 at once.
            "--concurrency",
            "4",
        ])
        .arg("--kubeconfig")
        .arg(up.kubeconfig())
        .arg("--junit")
        .arg(&junit)
        .arg("--artifacts")
        .arg(dir.path().join("artifacts"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(" 0 failed"), "{summary}");
    for line in stdout.lines().filter(|l| l.starts_with("- skipped")) {
        assert!(
            line.contains(": needs capability ")
                && line.contains("which the kubeconfig target does not have"),
            "a skip must name its capability: {line}"
        );
    }
    assert!(
        stdout.contains("needs capability kill-leader")
            || stdout.contains("needs capability topology"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .count();
    assert!(
        skipped > 0,
        "skipped scenarios show as skipped in JUnit: {xml}"
    );
    assert!(
        !doc.descendants().any(|n| n.has_tag_name("failure")),
        "{xml}"
    );
}

#[test]
fn a_scenario_needing_a_missing_capability_is_skipped_with_its_reason_in_every_report() {
    let _shared = SUITE.read().unwrap_or_else(|e| e.into_inner());
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("cucumber.json");
    let out = test_cmd(
        dir.path(),
        &[
            &format!("{FIXTURES}/skip"),
            "--target",
            "kubeconfig",
            "--time-scale",
            "10",
            "--kubeconfig",
            up.kubeconfig().to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("- skipped tests/fixtures/harness/skip/needs.feature:3  Needs to kill a leader: needs capability kill-leader, which the kubeconfig target does not have"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 scenarios: 1 passed, 0 failed, 1 skipped"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("testcase")
                && n.attribute("name")
                    .is_some_and(|a| a.contains("Needs to kill a leader"))
        })
        .expect("the skipped scenario is a testcase");
    assert!(case.children().any(|c| c.has_tag_name("skipped")), "{xml}");
    assert!(
        xml.contains("needs capability kill-leader"),
        "the reason is in the report: {xml}"
    );
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(
        report.contains("skipped: needs capability kill-leader"),
        "{report}"
    );
}
