//! Real kubectl streaming into containers as on a 1.33 cluster: 1.33 speaks WebSocket
//! (`v5.channel.k8s.io`), 1.27 speaks SPDY/3.1; the apiserver proxies either to the kubelet.
//! `exec` runs in the container's own filesystem (a mounted ConfigMap, a file the container
//! wrote), exit codes come back (`command terminated with exit code 3`), an exec that removes a
//! liveness file makes the probe fail and the container restart as on a real node, and a
//! program the image lacks fails as containerd says it. `attach` streams what the main process
//! writes from then on, until it exits; `exec -i` feeds standard input (`sh` reads its commands
//! from it); `cp` goes through `tar` in the container both ways; `port-forward` reaches the
//! pod's real socket; `kill 1` stops an nginx container as on a node.

mod support;

use support::cli::{Kubectl, Up};
use support::minutes;

const OBJECTS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello from a configmap}
---
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: [sh, -c, 'echo started > /tmp/started; touch /tmp/healthy; sleep 3600']
    volumeMounts: [{name: settings, mountPath: /etc/settings}]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 2
      failureThreshold: 1
  volumes: [{name: settings, configMap: {name: settings}}]
---
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  containers:
  - {name: a, image: busybox:1.36, command: [sh, -c, 'echo i am a > /tmp/me; sleep 3600']}
  - {name: b, image: busybox:1.36, command: [sh, -c, 'echo i am b > /tmp/me; sleep 3600']}
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:1.36
    command: [sh, -c, 'echo before; sleep 40; for i in 1 2 3; do echo tick $i; sleep 2; done; echo oops >&2']
";

/// Wait until `kubectl get pod` shows `ready` containers ready and `Running`.
fn wait_running(up: &Up, k: &Kubectl, pod: &str, ready: &str) {
    k.wait_pod(up, pod, &[(1, ready), (2, "Running")]);
}

fn exec_story(version: &str) {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "4"]);
    let k = Kubectl::new(version, &up);
    let file = k.file("objects.yaml", OBJECTS);
    k.ok(&["apply", "-f", &file]);
    wait_running(&up, &k, "box", "1/1");
    wait_running(&up, &k, "two", "2/2");

    // attach: what the main process writes from now on (not what it wrote before), until it
    // exits; stderr on its own stream.
    wait_running(&up, &k, "ticker", "1/1");
    let attached = k.run(&["attach", "ticker"]);
    assert!(attached.ok, "{}", attached.stderr);
    assert_eq!(attached.stdout, "tick 1\ntick 2\ntick 3\n");
    assert!(attached.stderr.contains("oops\n"), "{}", attached.stderr);

    // The container's filesystem: a mounted ConfigMap and a file its command wrote.
    assert_eq!(
        k.ok(&["exec", "box", "--", "cat", "/etc/settings/greeting"]),
        "hello from a configmap"
    );
    assert_eq!(
        k.ok(&["exec", "box", "--", "cat", "/tmp/started"]),
        "started\n"
    );

    // Exit codes and both streams come back.
    let out = k.run(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.starts_with("err\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{}",
        out.stderr
    );

    // Each container of a pod is its own filesystem; -c picks one.
    assert_eq!(
        k.ok(&["exec", "two", "-c", "b", "--", "cat", "/tmp/me"]),
        "i am b\n"
    );
    let defaulted = k.run(&["exec", "two", "--", "cat", "/tmp/me"]);
    assert!(defaulted.ok, "{}", defaulted.stderr);
    assert_eq!(defaulted.stdout, "i am a\n");
    assert!(
        defaulted
            .stderr
            .contains("Defaulted container \"a\" out of: a, b"),
        "{}",
        defaulted.stderr
    );

    // A program the image does not have fails to start, as containerd reports it.
    let missing = k.run(&["exec", "box", "--", "nosuchprogram"]);
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("exec: \"nosuchprogram\": executable file not found in $PATH"),
        "{}",
        missing.stderr
    );

    // Standard input: a command's, and `sh` reading its commands from it.
    let echoed = k.run_stdin(&["exec", "-i", "box", "--", "cat"], b"hello\nworld\n");
    assert!(echoed.ok, "{}", echoed.stderr);
    assert_eq!(echoed.stdout, "hello\nworld\n");
    let scripted = k.run_stdin(
        &["exec", "-i", "box", "--", "sh"],
        b"echo a | tr a b\ncat /tmp/started\nexit 4\necho never\n",
    );
    assert_eq!(scripted.code, Some(4), "{}", scripted.stderr);
    assert_eq!(scripted.stdout, "b\nstarted\n");

    // kubectl cp: a file in, through `tar -xmf -` in the container, and a directory out,
    // through `tar cf -`.
    let local = k.file("notes.txt", "line one\nline two\n");
    k.ok(&["cp", &local, "box:/tmp/notes.txt"]);
    assert_eq!(
        k.ok(&["exec", "box", "--", "cat", "/tmp/notes.txt"]),
        "line one\nline two\n"
    );
    // Into a directory that exists: kubectl asks `test -d` first and copies into it.
    k.ok(&["exec", "box", "--", "mkdir", "/tmp/inbox"]);
    k.ok(&["cp", &local, "box:/tmp/inbox"]);
    assert_eq!(
        k.ok(&["exec", "box", "--", "cat", "/tmp/inbox/notes.txt"]),
        "line one\nline two\n"
    );
    k.ok(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/out/sub && echo a > /tmp/out/a.txt && echo b > /tmp/out/sub/b.txt",
    ]);
    let dest = tempfile::tempdir().unwrap();
    let into = dest.path().join("copied");
    k.ok(&["cp", "box:/tmp/out", into.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(into.join("a.txt")).unwrap(), "a\n");
    assert_eq!(
        std::fs::read_to_string(into.join("sub/b.txt")).unwrap(),
        "b\n"
    );

    // What exec does, the container's probes see: the liveness file removed, the probe fails
    // and the kubelet restarts the container (whose command writes the file again).
    k.ok(&["exec", "box", "--", "rm", "/tmp/healthy"]);
    let watched = up.watch();
    watched.until_ok(
        minutes(10),
        "box restarted after its liveness file went",
        || {
            let restarts = k.ok(&[
                "get",
                "pod",
                "box",
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount}",
            ]);
            if restarts.trim() == "1" {
                Ok(())
            } else {
                Err(format!("restartCount {restarts}"))
            }
        },
    );
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=box,reason=Unhealthy",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(
            "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory"
        ),
        "{events}"
    );
}

#[test]
fn kubectl_1_33_execs_over_websocket() {
    exec_story("1.33");
}

#[test]
fn kubectl_1_27_execs_over_spdy() {
    exec_story("1.27");
}

/// A running `kubectl port-forward`: its local port, killed when dropped.
struct Forward {
    child: std::process::Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Forward {
    fn start(k: &Kubectl, target: &str, remote: u16) -> Self {
        use std::io::BufRead;
        let mut child = k
            .command(&["port-forward", target, &format!(":{remote}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl port-forward starts");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = etx.send(line);
            }
        });
        // "Forwarding from 127.0.0.1:PORT -> REMOTE"
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("kubectl port-forward {target} printed no port within 30 s")
            });
        let port = line
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        assert!(line.ends_with(&format!("-> {remote}")), "{line}");
        Self {
            child,
            port,
            stderr: erx,
        }
    }

    /// GET / through the forward; the whole response.
    fn get(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// What kubectl wrote on stderr within `wait`.
    fn stderr_within(&self, wait: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + wait;
        let mut out = String::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    out.push_str(&line);
                    out.push('\n');
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WEB: &str = "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - {name: web, image: nginx:1.27, ports: [{containerPort: 80}]}
";

fn port_forward_story(version: &str) {
    let up = Up::start_with(&["--nodes", "1", "--time-scale", "4"]);
    let k = Kubectl::new(version, &up);
    let file = k.file("web.yaml", WEB);
    k.ok(&["apply", "-f", &file]);
    wait_running(&up, &k, "web", "1/1");

    // Every local connection is a connection to the pod's port 80: nginx answers each.
    let forward = Forward::start(&k, "pod/web", 80);
    for _ in 0..2 {
        let page = forward.get();
        assert!(
            page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
            "{page}"
        );
        assert!(page.contains("Welcome to nginx!"), "{page}");
    }
    drop(forward);

    // A port nothing listens on: the connection is refused in the pod, and kubectl says so.
    let refused = Forward::start(&k, "pod/web", 81);
    let page = refused.get();
    assert!(!page.contains("nginx"), "{page}");
    let stderr = refused.stderr_within(std::time::Duration::from_secs(5));
    assert!(
        stderr.contains("error forwarding port 81 to pod")
            && stderr.contains("connect: connection refused"),
        "{stderr}"
    );
    drop(refused);

    // `kill 1` from inside reaches the main process as on a node: nginx stops on SIGTERM, and
    // the kubelet starts the container again.
    k.ok(&["exec", "web", "--", "kill", "1"]);
    let watched = up.watch();
    watched.until_ok(minutes(10), "web restarted after kill 1", || {
        let restarts = k.ok(&[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.exitCode}",
        ]);
        if restarts.trim() == "1 0" {
            Ok(())
        } else {
            Err(format!("restartCount, last exit code: {restarts}"))
        }
    });
}

#[test]
fn kubectl_1_33_port_forwards_through_a_websocket_tunnel() {
    port_forward_story("1.33");
}

#[test]
fn kubectl_1_27_port_forwards_over_spdy() {
    port_forward_story("1.27");
}
