//! Real kubectl (1.27 and 1.33) reading container logs as on a 1.33 cluster: the last run of a
//! crash-looping container, `logs -f` that ends with the container, `--tail`, `--since`,
//! `--since-time`, `--timestamps` (the cluster clock's, nine fractional digits), `--limit-bytes`,
//! `-c`, `--all-containers --prefix`, `logs deploy/x`, and the apiserver's answers to options it
//! rejects.

mod support;

use chrono::{DateTime, Utc};
use support::cli::{Kubectl, Up};
use support::minutes;

const CRASH_AND_TICK: &str = "apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: [sh, -c, 'echo starting up; exit 1']
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:1.36
    command: [sh, -c, 'for i in 1 2 3; do echo tick $i; sleep 4; done']
";

const MULTI: &str = "apiVersion: v1
kind: Pod
metadata: {name: multi}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: busybox:1.36, command: [sh, -c, 'echo init done']}
  containers:
  - {name: a, image: busybox:1.36, command: [sh, -c, 'echo early; sleep 30; echo late']}
  - {name: b, image: busybox:1.36, command: [sh, -c, 'echo from b']}
";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: busybox:1.36
        command: [sh, -c, 'echo hello from web; sleep 3600']
";

/// A `--timestamps` line: the kubelet's RFC 3339 time with nine fractional digits, a space, the
/// text.
fn stamped(line: &str) -> (DateTime<Utc>, &str) {
    let (stamp, text) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp on {line:?}"));
    assert_eq!(stamp.len(), 30, "nine fractional digits: {stamp:?}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "{stamp:?}"
    );
    let time = DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("{stamp:?}: {e}"))
        .with_timezone(&Utc);
    (time, text)
}

/// A cluster with one node at 4x (the crash loop's first back-offs, 10 s and 20 s, last 2.5 s
/// and 5 s of wall time: long enough to ask for a log while the container waits), with `yaml`
/// applied.
fn cluster_with(version: &str, yaml: &str) -> (Up, Kubectl) {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "4"]);
    let k = Kubectl::new(version, &up);
    let file = k.file("objects.yaml", yaml);
    k.ok(&["apply", "-f", &file]);
    (up, k)
}

/// Wait until `kubectl get pod` shows `status`.
fn wait_status(up: &Up, k: &Kubectl, pod: &str, status: &str) {
    k.wait_pod(up, pod, &[(2, status)]);
}

fn follow_and_crash_loop_story(version: &str) {
    let (up, k) = cluster_with(version, CRASH_AND_TICK);

    // `logs -f` of a running container ends when the container does.
    wait_status(&up, &k, "ticker", "Running");
    assert_eq!(k.ok(&["logs", "-f", "ticker"]), "tick 1\ntick 2\ntick 3\n");
    assert_eq!(k.ok(&["logs", "-f", "ticker", "--tail=1"]), "tick 3\n");

    // A container waiting in CrashLoopBackOff shows its last run, as the kubelet picks the last
    // termination before the waiting reason. The log is asked for between two looks at the pod
    // that find it waiting after the same run.
    let state = || {
        k.ok(&[
            "get",
            "pod",
            "crasher",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].restartCount}",
        ])
    };
    let watched = up.watch();
    let during_back_off = watched.until_ok(minutes(10), "crasher's log while it waits", || {
        let before = state();
        if !before.starts_with("CrashLoopBackOff ") {
            return Err(before);
        }
        let logs = k.run(&["logs", "crasher"]);
        let after = state();
        if after == before {
            Ok(logs)
        } else {
            Err(format!("it restarted meanwhile: {before} -> {after}"))
        }
    });
    assert!(during_back_off.ok, "{}", during_back_off.stderr);
    assert_eq!(during_back_off.stdout, "starting up\n");
    assert_eq!(k.ok(&["logs", "crasher", "--previous"]), "starting up\n");
    assert_eq!(k.ok(&["logs", "-f", "crasher"]), "starting up\n");
}

fn options_story(version: &str) {
    let (up, k) = cluster_with(version, &format!("{MULTI}---\n{WEB}"));

    // A finished pod: every container's log, each line named by --prefix, and -f returns.
    wait_status(&up, &k, "multi", "Completed");
    let mut all: Vec<String> = k
        .ok(&["logs", "multi", "--all-containers", "--prefix", "-f"])
        .lines()
        .map(String::from)
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            "[pod/multi/a] early",
            "[pod/multi/a] late",
            "[pod/multi/b] from b",
            "[pod/multi/setup] init done"
        ]
    );
    assert_eq!(k.ok(&["logs", "multi", "-c", "b"]), "from b\n");
    assert_eq!(k.ok(&["logs", "multi", "-c", "setup"]), "init done\n");
    assert_eq!(k.ok(&["logs", "multi", "-c", "a", "--tail=1"]), "late\n");
    assert_eq!(
        k.ok(&["logs", "multi", "-c", "a", "--limit-bytes=7"]),
        "early\nl"
    );
    assert_eq!(
        k.ok(&["logs", "multi", "-c", "a", "-f", "--limit-bytes=7"]),
        "early\nl"
    );

    // Timestamps are the cluster clock's: the container slept 30 s of cluster time (7.5 s of
    // wall time) between its lines.
    let out = k.ok(&["logs", "multi", "-c", "a", "--timestamps"]);
    let lines: Vec<(DateTime<Utc>, &str)> = out.lines().map(stamped).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!((lines[0].1, lines[1].1), ("early", "late"));
    let slept = (lines[1].0 - lines[0].0).num_milliseconds();
    assert!((30_000..40_000).contains(&slept), "{out}");
    // --since-time (whole seconds, as the apiserver forwards it) and --since select by them.
    let late = lines[1].0;
    let since_time = late.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        k.ok(&[
            "logs",
            "multi",
            "-c",
            "a",
            &format!("--since-time={since_time}")
        ]),
        "late\n"
    );
    // The cluster's "now": a new object's creation time.
    k.ok(&["create", "configmap", "clock"]);
    let now = k.ok(&[
        "get",
        "configmap",
        "clock",
        "-o",
        "jsonpath={.metadata.creationTimestamp}",
    ]);
    let now = DateTime::parse_from_rfc3339(now.trim())
        .unwrap()
        .with_timezone(&Utc);
    let since = (now - late).num_seconds() + 10;
    assert_eq!(
        k.ok(&["logs", "multi", "-c", "a", &format!("--since={since}s")]),
        "late\n"
    );
    assert_eq!(
        k.ok(&["logs", "multi", "-c", "a", "--since=1s"]),
        "",
        "nothing was written in the last second"
    );

    // logs of a Deployment: its pod's.
    let watched = up.watch();
    let web = watched.until_ok(minutes(10), "the web deployment's log", || {
        let out = k.run(&["logs", "deploy/web", "--timestamps"]);
        if out.ok && !out.stdout.is_empty() {
            Ok(out.stdout)
        } else {
            Err(out.stderr)
        }
    });
    let web: Vec<(DateTime<Utc>, &str)> = web.lines().map(stamped).collect();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].1, "hello from web");
}

fn rejected_options_story(version: &str) {
    let (_up, k) = cluster_with(version, MULTI);
    // The apiserver decodes and validates the options as upstream does: a value Go's conversion
    // rejects is a 400, an invalid combination a 422 naming PodLogOptions (kubectl checks its
    // own flags first, so these go through --raw).
    let raw = |query: &str| {
        let out = k.run(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/multi/log?{query}"),
        ]);
        assert!(!out.ok, "{query}: {}", out.stdout);
        out.stderr.trim().to_string()
    };
    assert_eq!(
        raw("container=a&tailLines=-1"),
        "The PodLogOptions \"multi\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(
        raw("container=a&limitBytes=0"),
        "The PodLogOptions \"multi\" is invalid: limitBytes: Invalid value: 0: must be greater than 0"
    );
    assert_eq!(
        raw("container=a&sinceSeconds=10&sinceTime=2025-01-01T00:00:00Z"),
        "The PodLogOptions \"multi\" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
    );
    assert_eq!(
        raw("container=a&tailLines=ten"),
        "Error from server (BadRequest): strconv.ParseInt: parsing \"ten\": invalid syntax"
    );
    assert_eq!(
        raw("container=a&sinceTime=yesterday"),
        "Error from server (BadRequest): parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" as \"2006\""
    );
    assert_eq!(
        raw("timestamps=true"),
        "Error from server (BadRequest): a container name must be specified for pod multi, choose one of: [setup a b]"
    );
}

#[test]
fn kubectl_1_27_follows_until_the_container_stops_and_reads_a_crash_loops_last_run() {
    follow_and_crash_loop_story("1.27");
}

#[test]
fn kubectl_1_33_follows_until_the_container_stops_and_reads_a_crash_loops_last_run() {
    follow_and_crash_loop_story("1.33");
}

#[test]
fn kubectl_1_27_log_options_select_cut_and_stamp_lines() {
    options_story("1.27");
}

#[test]
fn kubectl_1_33_log_options_select_cut_and_stamp_lines() {
    options_story("1.33");
}

#[test]
fn kubectl_1_27_sees_the_apiserver_reject_log_options_as_upstream() {
    rejected_options_story("1.27");
}

#[test]
fn kubectl_1_33_sees_the_apiserver_reject_log_options_as_upstream() {
    rejected_options_story("1.33");
}
