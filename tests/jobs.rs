//! batch/v1 Jobs with the real kubectl 1.27 and 1.33 against `kubespec up` (time scale 10):
//! `kubectl create job` and `kubectl wait --for=condition=complete`, the generated selector and
//! labels, SuccessCriteriaMet then Complete, pods counted through the tracking finalizer, the
//! back-off between failed pods and BackoffLimitExceeded, Indexed Jobs with parallelism,
//! activeDeadlineSeconds, suspend and resume, ttlSecondsAfterFinished, upstream's validation,
//! and deletion taking the pods along.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::cli::{Kubectl, Up};

fn json(k: &Kubectl, args: &[&str]) -> Value {
    serde_json::from_str(&k.ok(args)).unwrap()
}

fn conditions(job: &Value) -> Vec<(String, String, String)> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn job_story(version: &str) {
    let up = Up::start_with(&["--nodes", "2", "--time-scale", "10"]);
    let k = Kubectl::new(version, &up);
    let created = k.ok(&[
        "create",
        "job",
        "hello",
        "--image=busybox:1.36",
        "--",
        "sh",
        "-c",
        "echo hello from a job",
    ]);
    assert_eq!(created.trim(), "job.batch/hello created");
    let waited = k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/hello",
        "--timeout=60s",
    ]);
    assert_eq!(waited.trim(), "job.batch/hello condition met", "{version}");
    assert_eq!(k.ok(&["logs", "job/hello"]).trim(), "hello from a job");
    let job = json(&k, &["get", "job", "hello", "-o", "json"]);
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        job["spec"]["selector"],
        serde_json::json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "hello");
    assert_eq!(labels["job-name"], "hello");
    assert_eq!(labels["controller-uid"], uid.as_str());
    assert_eq!(job["metadata"]["labels"]["job-name"], "hello");
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(job["spec"]["completionMode"], "NonIndexed");
    assert_eq!(
        conditions(&job),
        [
            (
                "SuccessCriteriaMet".into(),
                "True".into(),
                "CompletionsReached".into()
            ),
            (
                "Complete".into(),
                "True".into(),
                "CompletionsReached".into()
            ),
        ]
    );
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(
        job["status"]["uncountedTerminatedPods"],
        serde_json::json!({})
    );
    assert!(job["status"]["completionTime"].is_string());
    // Counted: the pod no longer carries the tracking finalizer.
    let pods = json(&k, &["get", "pods", "-l", "job-name=hello", "-o", "json"]);
    let pod = &pods["items"][0];
    assert!(pod["metadata"].get("finalizers").is_none(), "{pod}");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    assert!(pod["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("hello-"));
    let table: Vec<Vec<String>> = k
        .ok(&["get", "jobs"])
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        table[0],
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(table[1][..3], ["hello", "Complete", "1/1"]);
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Job",
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_str(&events).unwrap();
    let seen: Vec<(String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("Completed".into(), "Job completed".into())),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: hello-")),
        "{seen:?}"
    );
    // Deleting the Job takes its pod along.
    k.ok(&["delete", "job", "hello", "--wait=true", "--timeout=60s"]);
    let watched = up.watch();
    watched.until_ok(Duration::from_secs(120), "the Job's pod gone", || {
        let left = k.ok(&["get", "pods", "-l", "job-name=hello", "-o", "name"]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
}

#[test]
fn kubectl_1_27_runs_a_job_to_completion() {
    job_story("1.27");
}

#[test]
fn kubectl_1_33_runs_a_job_to_completion() {
    job_story("1.33");
}

const FAILING: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: fail}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: 'busybox:1.36', command: [sh, -c, 'exit 3']}]
";

#[test]
fn failed_pods_are_replaced_after_a_growing_back_off_until_the_limit() {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "10"]);
    let k = Kubectl::new("1.33", &up);
    k.ok(&["apply", "-f", &k.file("fail.yaml", FAILING)]);
    let waited = k.ok(&[
        "wait",
        "--for=condition=failed",
        "job/fail",
        "--timeout=120s",
    ]);
    assert_eq!(waited.trim(), "job.batch/fail condition met");
    let job = json(&k, &["get", "job", "fail", "-o", "json"]);
    assert_eq!(
        conditions(&job),
        [
            (
                "FailureTarget".into(),
                "True".into(),
                "BackoffLimitExceeded".into()
            ),
            (
                "Failed".into(),
                "True".into(),
                "BackoffLimitExceeded".into()
            ),
        ]
    );
    // More failures than backoffLimit: 3 pods for a limit of 2.
    assert_eq!(job["status"]["failed"], 3);
    let pods = json(&k, &["get", "pods", "-l", "job-name=fail", "-o", "json"]);
    let mut created: Vec<i64> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            chrono::DateTime::parse_from_rfc3339(
                p["metadata"]["creationTimestamp"].as_str().unwrap(),
            )
            .unwrap()
            .timestamp()
        })
        .collect();
    created.sort();
    assert_eq!(created.len(), 3, "{pods}");
    // 10 s, then 20 s after each failure (the pods fail at once; whole seconds).
    let gaps: Vec<i64> = created.windows(2).map(|w| w[1] - w[0]).collect();
    assert!((10..=13).contains(&gaps[0]), "{gaps:?}");
    assert!((20..=23).contains(&gaps[1]), "{gaps:?}");
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=BackoffLimitExceeded",
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert_eq!(events["items"][0]["type"], "Warning");
    assert_eq!(
        events["items"][0]["message"],
        "Job has reached the specified backoff limit"
    );
}

const INDEXED: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completionMode: Indexed
  completions: 4
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: 'busybox:1.36', command: [sh, -c, 'echo index $JOB_COMPLETION_INDEX']}]
";

#[test]
fn an_indexed_job_runs_every_index_two_at_a_time() {
    let up = Up::start_with(&["--nodes", "2", "--time-scale", "10"]);
    let k = Kubectl::new("1.33", &up);
    k.ok(&["apply", "-f", &k.file("idx.yaml", INDEXED)]);
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/idx",
        "--timeout=60s",
    ]);
    let job = json(&k, &["get", "job", "idx", "-o", "json"]);
    assert_eq!(job["status"]["completedIndexes"], "0-3");
    assert_eq!(job["status"]["succeeded"], 4);
    let logs = k.ok(&["logs", "-l", "job-name=idx", "--prefix"]);
    let mut lines: Vec<String> = logs
        .lines()
        .map(|l| {
            l.split_once("] ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_default()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, ["index 0", "index 1", "index 2", "index 3"]);
    let pods = json(&k, &["get", "pods", "-l", "job-name=idx", "-o", "json"]);
    for pod in pods["items"].as_array().unwrap() {
        let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap();
        assert!(pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("idx-{index}-")));
        assert_eq!(pod["spec"]["hostname"], format!("idx-{index}"));
    }
}

#[test]
fn deadlines_suspension_and_ttl() {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "10"]);
    let k = Kubectl::new("1.33", &up);
    let slow = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: slow}\nspec:\n  activeDeadlineSeconds: 5\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: 'busybox:1.36', command: [sleep, '600']}]\n";
    k.ok(&["apply", "-f", &k.file("slow.yaml", slow)]);
    k.ok(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=60s",
    ]);
    let job = json(&k, &["get", "job", "slow", "-o", "json"]);
    assert_eq!(
        conditions(&job),
        [
            (
                "FailureTarget".into(),
                "True".into(),
                "DeadlineExceeded".into()
            ),
            ("Failed".into(), "True".into(), "DeadlineExceeded".into()),
        ]
    );
    assert_eq!(
        job["status"]["conditions"][1]["message"],
        "Job was active longer than specified deadline"
    );
    // Suspended from the start: no pod until it is resumed.
    let held = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: held}\nspec:\n  suspend: true\n  ttlSecondsAfterFinished: 5\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: 'busybox:1.36', command: [sh, -c, 'echo done']}]\n";
    k.ok(&["apply", "-f", &k.file("held.yaml", held)]);
    k.ok(&[
        "wait",
        "--for=condition=suspended",
        "job/held",
        "--timeout=30s",
    ]);
    let table = k.ok(&["get", "job", "held"]);
    assert!(
        table.lines().nth(1).unwrap().contains("Suspended"),
        "{table}"
    );
    assert_eq!(
        k.ok(&["get", "pods", "-l", "job-name=held", "-o", "name"])
            .trim(),
        ""
    );
    k.ok(&[
        "patch",
        "job",
        "held",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/held",
        "--timeout=60s",
    ]);
    let reasons = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=held",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(
        reasons.contains("Suspended") && reasons.contains("Resumed"),
        "{reasons}"
    );
    // Five seconds after it finished the TTL controller deletes it, pods and all.
    let watched = up.watch();
    watched.until_ok(
        Duration::from_secs(120),
        "the finished Job deleted by its TTL",
        || {
            let out = k.run(&["get", "job", "held"]);
            if !out.ok && out.stderr.contains("not found") {
                Ok(())
            } else {
                Err(out.stdout)
            }
        },
    );
}

#[test]
fn invalid_jobs_are_refused_with_upstreams_words() {
    let up = Up::start();
    let k = Kubectl::new("1.33", &up);
    let always = FAILING.replace("restartPolicy: Never", "restartPolicy: Always");
    let out = k.run(&["apply", "-f", &k.file("always.yaml", &always)]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""),
        "{}",
        out.stderr
    );
    let negative = FAILING.replace("backoffLimit: 2", "backoffLimit: -1");
    let out = k.run(&["apply", "-f", &k.file("negative.yaml", &negative)]);
    assert!(
        out.stderr
            .contains("spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
        "{}",
        out.stderr
    );
    let wide = INDEXED.replace("parallelism: 2", "parallelism: 100001");
    let out = k.run(&["apply", "-f", &k.file("wide.yaml", &wide)]);
    assert!(
        out.stderr.contains("spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"),
        "{}",
        out.stderr
    );
    // The template cannot change once created.
    k.ok(&["apply", "-f", &k.file("fail.yaml", FAILING)]);
    let out = k.run(&["set", "image", "job/fail", "c=busybox:1.37"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("spec.template: Invalid value:")
            && out.stderr.contains("field is immutable"),
        "{}",
        out.stderr
    );
}
