//! Real kubectl (1.27 and 1.33) reading pods that the reference kubelet runs: `get pods`
//! READY/STATUS/RESTARTS, `logs` and `logs --previous`, `describe pod`.

mod support;

use support::cli::{Kubectl, Up};
use support::minutes;

const PODS: &str = "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - {name: nginx, image: nginx:1.27}
---
apiVersion: v1
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
metadata: {name: typo}
spec:
  containers:
  - {name: app, image: nginx:no-such-tag}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: busybox:1.36, command: [sh, -c, 'echo all good']}
---
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: busybox:1.36, command: [sh, -c, 'echo oops; exit 3']}
";

fn row(k: &Kubectl, pod: &str) -> Vec<String> {
    k.ok(&["get", "pod", pod, "--no-headers"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn pods_story(version: &str) {
    // 20x: back-offs of tens of seconds pass in about a second.
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "20"]);
    let watched = up.watch();
    let k = Kubectl::new(version, &up);
    let file = k.file("pods.yaml", PODS);
    k.ok(&["apply", "-f", &file]);

    // The row is read again after every change the watches see, for at most ten minutes of
    // cluster time (half a minute of wall time).
    let wait_row = |pod: &str, ready: &str, status: &str| {
        let what = format!("pod {pod} with READY {ready} STATUS {status}");
        watched.until_ok(minutes(10), &what, || {
            let r = row(&k, pod);
            if r.get(1).map(String::as_str) == Some(ready)
                && r.get(2).map(String::as_str) == Some(status)
            {
                Ok(r)
            } else {
                Err(format!("{r:?}"))
            }
        })
    };
    assert_eq!(wait_row("web", "1/1", "Running")[3], "0");
    let crash = wait_row("crasher", "0/1", "CrashLoopBackOff");
    assert!(
        crash[3].parse::<u32>().unwrap_or(0) >= 1,
        "RESTARTS climbs: {crash:?}"
    );
    wait_row("typo", "0/1", "ImagePullBackOff");
    wait_row("done", "0/1", "Completed");
    wait_row("broken", "0/1", "Error");

    // logs, and --previous after a restart.
    assert_eq!(k.ok(&["logs", "done"]), "all good\n");
    assert_eq!(k.ok(&["logs", "crasher", "--previous"]), "starting up\n");
    let missing = k.run(&["logs", "typo"]);
    assert!(!missing.ok);
    // The kubelet retries the pull when each back-off ends (0.5 s of wall time at 20x), so the
    // waiting reason is whichever of the two it is at that moment; the kubelet words both.
    let waiting = |why: &str| {
        format!("Error from server (BadRequest): container \"app\" in pod \"typo\" is waiting to start: {why}")
    };
    assert!(
        [
            waiting("trying and failing to pull image"),
            waiting("image can't be pulled")
        ]
        .contains(&missing.stderr.trim().to_string()),
        "{}",
        missing.stderr
    );

    // describe pod shows the container's state, restarts and the kubelet's events. At 20x the
    // container runs for an instant between back-offs, so describe until it is caught waiting.
    let wanted = [
        "State:          Waiting",
        "Reason:       CrashLoopBackOff",
        "Last State:     Terminated",
        "Exit Code:    1",
        "Restart Count:  ",
        "kubelet            Started container app",
        "Back-off restarting failed container app in pod crasher_default(",
    ];
    watched.until_ok(minutes(10), "describe pod crasher caught waiting", || {
        let describe = k.ok(&["describe", "pod", "crasher"]);
        let missing: Vec<_> = wanted.iter().filter(|w| !describe.contains(*w)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("describe pod lacks {missing:?}:\n{describe}"))
        }
    });
    let describe = k.ok(&["describe", "pod", "web"]);
    for expected in [
        "Status:           Running",
        "State:          Running",
        "Ready:          True",
        "Node:             node-1/127.0.0.1",
        "default-scheduler  Successfully assigned default/web to node-1",
        "kubelet            Created container: nginx",
    ] {
        assert!(
            describe.contains(expected),
            "describe pod lacks {expected:?}:\n{describe}"
        );
    }
}

#[test]
fn kubectl_1_27_reads_pods_the_kubelet_runs() {
    pods_story("1.27");
}

#[test]
fn kubectl_1_33_reads_pods_the_kubelet_runs() {
    pods_story("1.33");
}
