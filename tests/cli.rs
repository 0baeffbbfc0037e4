//! The command line as a user meets it: bad flags and bad files get clear messages.

mod support;

use assert_cmd::Command;

fn kubespec() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
}

#[test]
fn a_bad_image_models_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.yaml");
    std::fs::write(&file, "images:\n- image: example.com/app\n  portz: [80]\n").unwrap();
    let out = kubespec()
        .args(["up", "--port", "0", "--image-models"])
        .arg(&file)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", file.display()))
            && stderr.contains("unknown field `portz`"),
        "{stderr}"
    );
}

#[test]
fn test_options_that_do_not_apply_to_the_target_are_refused() {
    for (args, expected) in [
        (
            &["--target", "kubeconfig", "--image-models", "models.yaml"][..],
            "--image-models only applies to the embedded and containers targets",
        ),
        (
            &["--keep"][..],
            "--keep only applies to --target containers",
        ),
    ] {
        let out = kubespec()
            .arg("test")
            .args(args)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_non_loopback_address_and_a_bad_time_scale_are_refused() {
    let out = kubespec()
        .args(["up", "--address", "10.0.0.1"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"));
    let out = kubespec()
        .args(["up", "--time-scale", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a positive number"));
}

#[test]
fn bench_suite_refuses_a_time_scale_it_cannot_run() {
    let out = kubespec()
        .args(["bench", "suite", "--runs", "1", "--time-scale", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be a positive number between"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_or_malformed_etcd_is_refused_with_how_to_fix_it() {
    for (args, says) in [
        (
            &["up", "--nodes", "0", "--etcd", "http://127.0.0.1:1"][..],
            "cannot reach etcd at http://127.0.0.1:1: tcp connect error: Connection refused",
        ),
        (
            &["component", "apiserver", "--etcd", "127.0.0.1:2379"][..],
            "\"127.0.0.1:2379\" is not an etcd client URL: give one as http://HOST:PORT",
        ),
    ] {
        let out = kubespec()
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn a_component_without_a_reachable_cluster_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubespec::cluster::kubeconfig_for("http://127.0.0.1:1"),
    )
    .unwrap();
    let out = kubespec()
        .args(["component", "scheduler", "--kubeconfig"])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the cluster at http://127.0.0.1:1")
            && stderr.contains("Is the cluster running?"),
        "{stderr}"
    );
}

#[test]
fn bench_api_checks_every_watcher_saw_every_write() {
    // A small run (not timed): the benchmark starts its cluster, writes, watches and checks
    // delivery itself; both pacing modes.
    for rate in ["0", "500"] {
        let out = kubespec()
            .args([
                "bench",
                "api",
                "--writes",
                "200",
                "--clients",
                "4",
                "--watchers",
                "2",
            ])
            .args(["--rate", rate])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("writes:        200 pods in"), "{stdout}");
        assert!(
            stdout.contains("400 events delivered, every watcher saw every write exactly once"),
            "{stdout}"
        );
    }
    let out = kubespec()
        .args(["bench", "api", "--writes", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--writes and --clients must be at least 1")
    );
}

/// GET `path` from `addr` over plain HTTP/1.0; the status code and body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_manager_serves_the_health_of_its_loops() {
    use std::io::BufRead;
    let cluster = support::cluster().apiserver_only().start().await;
    let waits = support::Waits::on(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args([
            "component",
            "controller-manager",
            "--health-port",
            "0",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read its output to the end (a closed pipe would stop it), passing on the health address.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(a) = line
                .strip_prefix("health checks at http://")
                .and_then(|a| a.strip_suffix("/healthz"))
            {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let addr =
        tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the controller-manager prints where its health is served");
    // Once it leads, every control loop is listed as passing: asked again after every change
    // the watches see (its Lease renewals among them), since the loops start one by one.
    let loops = [
        "deployment-controller",
        "replicaset-controller",
        "garbage-collector-controller",
        "endpoints-controller",
        "endpointslice-controller",
        "node-lifecycle-controller",
        "serviceaccount-controller",
        "pod-garbage-collector-controller",
        "root-ca-certificate-publisher-controller",
    ];
    let verbose = waits
        .until_async(
            std::time::Duration::from_secs(30),
            "healthz to list every control loop as passing",
            || {
                let a = addr.clone();
                async move {
                    let (code, body) =
                        tokio::task::spawn_blocking(move || http_get(&a, "/healthz?verbose"))
                            .await
                            .unwrap();
                    if code == 200 && loops.iter().all(|l| body.contains(&format!("[+]{l} ok"))) {
                        Ok(body)
                    } else {
                        Err(format!("{code} {body}"))
                    }
                }
            },
        )
        .await;
    assert!(verbose.ends_with("healthz check passed\n"), "{verbose}");
    let a = addr.clone();
    let (code, body) = tokio::task::spawn_blocking(move || http_get(&a, "/healthz"))
        .await
        .unwrap();
    assert_eq!((code, body.as_str()), (200, "ok"));
    let _ = child.kill();
    let _ = child.wait();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .unwrap();
}

/// Lines a child writes to `out`, as they come.
fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn up_stops_within_its_deadline_while_a_log_on_an_external_kubelet_is_followed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut up = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args(["up", "--port", "0", "--nodes", "0", "--write-kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up_out = lines_of(up.stdout.take().unwrap());
    let up_err = lines_of(up.stderr.take().unwrap());
    let ready = up_out.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        ready.starts_with("kubespec reference cluster ready"),
        "{ready}"
    );
    // The cluster's only node is a kubelet of its own process.
    let mut kubelet = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args([
            "component",
            "kubelet",
            "--node-name",
            "ext-1",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let kubectl = |args: &[&str]| {
        Command::new(support::cli::kubectl_binary("1.33"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let run = kubectl(&[
        "run",
        "talker",
        "--image=busybox:1.36",
        "--",
        "sh",
        "-c",
        "while true; do echo hi; sleep 1; done",
    ]);
    assert!(run.status.success(), "{run:?}");
    let wait = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/talker",
        "--timeout=90s",
    ]);
    assert!(wait.status.success(), "{wait:?}");
    // A follow through the apiserver to the external kubelet, streaming when the stop comes.
    let mut follow = Command::new(support::cli::kubectl_binary("1.33"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let followed = lines_of(follow.stdout.take().unwrap());
    assert_eq!(
        followed.recv_timeout(Duration::from_secs(30)).as_deref(),
        Ok("hi")
    );
    // Ctrl-C.
    let asked = Instant::now();
    let interrupt = Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break Some(status);
        }
        if asked.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = asked.elapsed();
    let _ = up.kill();
    let _ = kubelet.kill();
    let _ = follow.kill();
    let _ = kubelet.wait();
    let _ = follow.wait();
    let out: Vec<String> = up_out.try_iter().collect();
    let err: Vec<String> = up_err.try_iter().collect();
    let status = status.expect("kubespec up exits after Ctrl-C");
    assert!(
        status.success()
            && out
                .iter()
                .any(|l| l == "kubespec reference cluster stopped"),
        "{status:?} {out:?} {err:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "every component stops well within the 10 s deadline: took {took:?}; {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_given_the_cluster_epoch_reads_the_apiservers_cluster_time() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut up = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args(["up", "--port", "0", "--nodes", "0", "--time-scale", "100"])
        .arg("--write-kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines_of(up.stdout.take().unwrap());
    let flags = loop {
        let line = out.recv_timeout(Duration::from_secs(30)).unwrap();
        if let Some(flags) = line.strip_prefix("components you attach need ") {
            break flags.to_string();
        }
    };
    let flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
    assert_eq!(flags[0], "--cluster-epoch", "{flags:?}");
    assert_eq!(flags[2..], ["--time-scale", "100"], "{flags:?}");
    // A second later (100 s of cluster time), a kubelet in its own process joins: without the
    // epoch its clock would start at the wall time, 99 s behind the apiserver's.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut kubelet = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args([
            "component",
            "kubelet",
            "--node-name",
            "epoch-1",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(&flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = kubespec::cluster::kubeconfig::connect_as(
        Some(&kubeconfig),
        None,
        Duration::from_secs(10),
        None,
    )
    .await
    .unwrap()
    .client;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "kube-node-lease");
    let configmaps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "default");
    let mut renewals = 0;
    let mut last_renewal = None;
    for i in 0..200 {
        // The kubelet's renewal time (its clock) against a creation time (the apiserver's).
        let renewed = leases
            .get_opt("epoch-1")
            .await
            .unwrap()
            .and_then(|l| l.spec?.renew_time)
            .map(|t| t.0);
        let probe = configmaps
            .create(
                &Default::default(),
                &serde_json::from_value(
                    serde_json::json!({"metadata": {"name": format!("now-{i}")}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let now = probe.metadata.creation_timestamp.unwrap().0;
        if let Some(renewed) = renewed {
            if last_renewal != Some(renewed) {
                renewals += 1;
                last_renewal = Some(renewed);
            }
            // Renewals come every 10 s of cluster time; the creation time has whole seconds.
            let behind = now.as_second() - renewed.as_second();
            assert!(
                (-2..=15).contains(&behind),
                "the kubelet's renewal at {renewed} is {behind} s behind the apiserver's {now}"
            );
            if renewals >= 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewals >= 3, "{renewals} lease renewals seen");
    let _ = kubelet.kill();
    let _ = kubelet.wait();
    let _ = up.kill();
    let _ = up.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_keeps_serving_when_its_output_is_closed() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // As `kubespec up | head -1` once head has exited: nobody reads what up prints.
    let mut up = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args(["up", "--port", "0", "--nodes", "0", "--write-kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(up.stdout.take());
    let mut waited = 0;
    while !kubeconfig.exists() {
        assert!(waited < 300, "up wrote no kubeconfig within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    // It printed its ready lines into the closed pipe by now; it still serves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = kubespec::cluster::kubeconfig::connect_as(
        Some(&kubeconfig),
        None,
        Duration::from_secs(10),
        None,
    )
    .await
    .unwrap()
    .client;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .expect("up still serves")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    assert_eq!(up.try_wait().unwrap(), None, "up is still running");
    let _ = up.kill();
    let _ = up.wait();
}

/// A child process that is killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kube_proxy_in_its_own_process_routes_a_cluster_ip_on_a_kubelet_of_another() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut up = Child(
        Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
            .args([
                "up",
                "--port",
                "0",
                "--nodes",
                "0",
                "--kubelet-token",
                "s3cret",
            ])
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up_out = lines_of(up.0.stdout.take().unwrap());
    let ready = up_out.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        ready.starts_with("kubespec reference cluster ready"),
        "{ready}"
    );
    let component = |args: &[&str]| {
        Child(
            Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
                .arg("component")
                .args(args)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // The node's kubelet wants a token; its kube-proxy, a process of its own, has it.
    let _kubelet = component(&["kubelet", "--node-name", "ext-1", "--auth-token", "s3cret"]);
    let _proxy = component(&[
        "kube-proxy",
        "--node-name",
        "ext-1",
        "--kubelet-token",
        "s3cret",
    ]);
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(support::cli::kubectl_binary("1.33"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    };
    let apply = kubectl(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: backend, labels: {app: backend}}
spec:
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
"#,
        ),
    );
    assert!(apply.status.success(), "{apply:?}");
    // The client asks until the Service answers (the positive barrier), then once more.
    let client = kubectl(
        &[
            "run",
            "client",
            "--restart=Never",
            "--image=busybox:1.36",
            "--",
            "sh",
            "-c",
            "until wget -q -T 2 -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname; do sleep 1; done; echo; wget -q -O - http://$BACKEND_SERVICE_HOST/hostname",
        ],
        None,
    );
    assert!(client.status.success(), "{client:?}");
    let done = kubectl(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/client",
            "--timeout=90s",
        ],
        None,
    );
    let logs = kubectl(&["logs", "client"], None);
    // The rules, read from the kubelet that holds them (with its token).
    let port = kubectl(
        &[
            "get",
            "node",
            "ext-1",
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
        ],
        None,
    );
    let port = String::from_utf8_lossy(&port.stdout).trim().to_string();
    let rules = {
        use std::io::{Read, Write};
        let mut kubelet = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        kubelet
            .write_all(b"GET /kubespec/netfilter HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        kubelet.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(
        done.status.success(),
        "{done:?}\nclient logs: {logs:?}\nrules: {rules:?}"
    );
    // Refused while the Service had no endpoint yet, then answered by the backend pod.
    assert!(
        String::from_utf8_lossy(&logs.stdout).ends_with("\nbackend\nbackend"),
        "{logs:?}"
    );
    // The rules as the kubelet holds them: the Service's cluster IP to the pod's port 8080.
    let body = rules.split("\r\n\r\n").nth(1).unwrap_or_default();
    let rules: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {rules}"));
    let backend = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.ends_with("/backend")))
        .unwrap_or_else(|| panic!("no rule for the backend Service in {rules}"));
    assert_eq!(backend["protocol"], "TCP");
    assert!(
        backend["endpoints"][0]
            .as_str()
            .is_some_and(|e| e.ends_with(":8080")),
        "{backend}"
    );
    let _ = up.0.kill();
}
