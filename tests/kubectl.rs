//! Real kubectl, the oldest and newest on the machine (1.27 and 1.33), against `kubespec up`:
//! what a user types and what a user reads.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use support::cli::{Kubectl, Up, Watched};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - name: GREETING
          value: hello
";

const NODE: &str = "apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1}
status:
  capacity: {cpu: \"4\", memory: 8Gi, pods: \"110\"}
  allocatable: {cpu: \"4\", memory: 8Gi, pods: \"110\"}
  conditions:
  - {type: Ready, status: \"True\", reason: KubeletReady, message: kubelet is posting ready status}
  addresses:
  - {type: InternalIP, address: 127.0.0.10}
  nodeInfo: {kubeletVersion: v1.33.0-kubespec, osImage: kubespec, kernelVersion: \"6.1\", containerRuntimeVersion: \"kubespec-sim://0.1\", machineID: \"\", systemUUID: \"\", bootID: \"\", kubeProxyVersion: \"\", operatingSystem: linux, architecture: amd64}
";

fn changed_manifest_with_bogus_field() -> String {
    DEPLOYMENT.replace("  replicas: 3\n", "  replicas: 3\n  bogusField: 1\n")
}

fn header(output: &str) -> Vec<String> {
    output
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn the_user_story(version: &str) {
    the_user_story_on(version, &Up::start());
}

fn the_user_story_on(version: &str, up: &Up) {
    let watched = up.watch();
    let k = Kubectl::new(version, up);

    let version: serde_json::Value =
        serde_json::from_str(&k.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.33.0-kubespec");
    assert_eq!(version["serverVersion"]["minor"], "33");
    let changed = apply_configures_and_leaves_unchanged(&k);
    validation_and_explain(&k);
    tables(&k, &watched);
    rollout_without_a_kubelet(&k, &watched);
    get_watch(&k);
    server_side_apply_and_edit(&k, &changed);
    create_scale_delete(&k);
    an_invalid_object(&k);
}

/// apply, then apply a changed manifest (the strategic merge patch path), then no change.
fn apply_configures_and_leaves_unchanged(k: &Kubectl) -> String {
    let manifest = k.file("web.yaml", DEPLOYMENT);
    assert_eq!(
        k.ok(&["apply", "-f", &manifest]).trim(),
        "deployment.apps/web created"
    );
    let changed = k.file(
        "web2.yaml",
        &DEPLOYMENT
            .replace("nginx:1.27", "nginx:1.28")
            .replace("hello", "bonjour"),
    );
    assert_eq!(
        k.ok(&["apply", "-f", &changed]).trim(),
        "deployment.apps/web configured"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &changed]).trim(),
        "deployment.apps/web unchanged"
    );
    let fields = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].value} {.metadata.generation} {.spec.replicas}"]);
    assert_eq!(fields, "nginx:1.28 bonjour 2 3");
    changed
}

/// The server validates fields (kubectl sends fieldValidation=Strict), and explain reads the
/// server's OpenAPI v3 schemas.
fn validation_and_explain(k: &Kubectl) {
    let bogus = k.file("bogus.yaml", &changed_manifest_with_bogus_field());
    let out = k.run(&["apply", "-f", &bogus]);
    assert!(!out.ok);
    assert!(
        out.stderr
            .trim_end()
            .ends_with("strict decoding error: unknown field \"spec.bogusField\""),
        "{}",
        out.stderr
    );
    let explain = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explain.contains("KIND:       Deployment") && explain.contains("FIELD: replicas <integer>"),
        "{explain}"
    );
    // The same from the Swagger 2.0 document (/openapi/v2, protobuf).
    let explain_v2 = k.ok(&[
        "explain",
        "--output",
        "plaintext-openapiv2",
        "pod.spec.containers.livenessProbe.httpGet.port",
    ]);
    assert!(
        explain_v2.contains("KIND:     Pod")
            && explain_v2.contains("FIELD:    port <string>")
            && explain_v2.contains("IntOrString"),
        "{explain_v2}"
    );
}

/// Tables as on a real cluster, with the wide columns.
fn tables(k: &Kubectl, watched: &Watched) {
    let extra = k.file("node.yaml", NODE);
    k.ok(&["apply", "-f", &extra]);
    k.ok(&["run", "solo", "--image=nginx:1.27"]);
    // The scheduler binds it to the one node.
    k.wait_for(
        watched,
        Duration::from_secs(20),
        &["get", "pod", "solo", "-o", "jsonpath={.spec.nodeName}"],
        "node-1",
    );
    let wide = k.ok(&["get", "pods,deploy,rs,nodes", "-o", "wide"]);
    let sections: Vec<&str> = wide.split("\n\n").collect();
    assert_eq!(
        sections.len(),
        4,
        "pods, deployments, replicasets and nodes:\n{wide}"
    );
    let row = |section: &str, name: &str| -> Vec<String> {
        let line = section
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in:\n{section}"));
        words(line)
    };
    assert_eq!(
        header(sections[0]),
        words("NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES")
    );
    assert!(
        row(sections[0], "pod/solo ").starts_with(&words("pod/solo 0/1 Pending 0")),
        "{wide}"
    );
    assert_eq!(
        header(sections[1]),
        words("NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR")
    );
    let deploy_row = row(sections[1], "deployment.apps/web ");
    assert_eq!(
        deploy_row[1], "0/3",
        "no pod is ready without a kubelet: {wide}"
    );
    assert_eq!(deploy_row[5..], words("nginx nginx:1.28 app=web")[..]);
    assert_eq!(
        header(sections[2]),
        words("NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR")
    );
    assert!(
        sections[2]
            .lines()
            .skip(1)
            .all(|l| l.starts_with("replicaset.apps/web-")),
        "{wide}"
    );
    assert_eq!(header(sections[3]), words("NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"));
    let node_row = row(sections[3], "node/node-1 ");
    assert_eq!(node_row[..3], words("node/node-1 Ready <none>")[..]);
    assert_eq!(node_row[4..6], words("v1.33.0-kubespec 127.0.0.10")[..]);

    // -o yaml carries what the server defaulted.
    let yaml = k.ok(&["get", "pod", "solo", "-o", "yaml"]);
    for expected in [
        "restartPolicy: Always",
        "terminationGracePeriodSeconds: 30",
        "imagePullPolicy: IfNotPresent",
        "qosClass: BestEffort",
        "phase: Pending",
        "schedulerName: default-scheduler",
    ] {
        assert!(
            yaml.contains(expected),
            "get -o yaml lacks {expected:?}:\n{yaml}"
        );
    }
}

/// Without a kubelet no pod gets ready, so the rolling update surges one new pod and waits;
/// describe shows it, with the deployment's events found by involvedObject.
fn rollout_without_a_kubelet(k: &Kubectl, watched: &Watched) {
    k.wait_for(
        watched,
        Duration::from_secs(20),
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.replicas} {.status.updatedReplicas}",
        ],
        "4 1",
    );
    let describe = k.ok(&["describe", "deployment", "web"]);
    for expected in [
        "Replicas:               3 desired | 1 updated | 4 total | 0 available | 4 unavailable",
        "Annotations:            deployment.kubernetes.io/revision: 2",
        "Progressing    True    ReplicaSetUpdated",
        "Normal  ScalingReplicaSet  ",
        "deployment-controller  Scaled up replica set web-",
    ] {
        assert!(
            describe.contains(expected),
            "describe lacks {expected:?}:\n{describe}"
        );
    }
    assert!(
        describe.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"),
        "{describe}"
    );
    let events = k.ok(&["get", "events"]);
    assert_eq!(
        header(&events),
        words("LAST SEEN TYPE REASON OBJECT MESSAGE")
    );
    let scheduled = events.lines().map(words).find(|w| {
        w.get(2).map(String::as_str) == Some("Scheduled")
            && w.get(3).map(String::as_str) == Some("pod/solo")
    });
    assert_eq!(
        scheduled.map(|w| w[1..].join(" ")),
        Some("Normal Scheduled pod/solo Successfully assigned default/solo to node-1".to_string()),
        "{events}"
    );
}

/// get --watch prints rows as pods come and go.
fn get_watch(k: &Kubectl) {
    let mut watch = k
        .command(&["get", "pods", "--watch", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the watch prints the header");
    assert_eq!(words(&first), words("EVENT NAME READY STATUS RESTARTS AGE"));
    k.ok(&["run", "watched", "--image=nginx:1.27"]);
    // No kubelet finishes a graceful deletion yet, so the pod is removed at once.
    k.ok(&["delete", "pod", "watched", "--grace-period=0", "--force"]);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("DELETED") && l.contains("watched"))
    {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("watch lines so far: {seen:?}"));
        seen.push(line);
    }
    assert!(
        seen.iter()
            .any(|l| words(l).starts_with(&words("ADDED watched 0/1 Pending 0"))),
        "{seen:?}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

/// Server-side apply, then edit through a non-interactive editor.
fn server_side_apply_and_edit(k: &Kubectl, changed: &str) {
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", changed]).trim(),
        "deployment.apps/web serverside-applied"
    );

    // edit through a non-interactive editor.
    let edit = k.run_with(
        &["edit", "deployment", "web"],
        &[
            ("KUBE_EDITOR", "sed -i s/nginx:1.28/nginx:1.29/"),
            ("EDITOR", ""),
        ],
    );
    assert!(edit.ok, "{}\n{}", edit.stdout, edit.stderr);
    assert_eq!(edit.stdout.trim(), "deployment.apps/web edited");
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.29"
    );
}

/// create (protobuf bodies on 1.32+), scale, delete.
fn create_scale_delete(k: &Kubectl) {
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "api",
            "--image=nginx:1.27",
            "--replicas=2"
        ])
        .trim(),
        "deployment.apps/api created"
    );
    assert_eq!(
        k.ok(&["create", "configmap", "cfg", "--from-literal=a=b"])
            .trim(),
        "configmap/cfg created"
    );
    assert_eq!(k.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]), "b");
    assert_eq!(
        k.ok(&["scale", "deployment", "api", "--replicas=5"]).trim(),
        "deployment.apps/api scaled"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    assert_eq!(
        k.ok(&["delete", "deployment", "web"]).trim(),
        "deployment.apps \"web\" deleted"
    );
    let gone = k.run(&["get", "deployment", "web"]);
    assert!(!gone.ok);
    assert_eq!(
        gone.stderr.trim(),
        "Error from server (NotFound): deployments.apps \"web\" not found"
    );
}

/// An invalid object reads as on a real cluster.
fn an_invalid_object(k: &Kubectl) {
    let bad = k.file(
        "bad.yaml",
        &DEPLOYMENT
            .replace("name: web\n  labels", "name: bad\n  labels")
            .replace("      labels: {app: web}", "      labels: {app: other}"),
    );
    let out = k.run(&["create", "-f", &bad]);
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"bad\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
    );
    // A request above its limit, the amounts as upstream prints quantities.
    let greedy = k.file(
        "greedy.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: greedy
spec:
  containers:
  - name: app
    image: nginx:1.27
    resources:
      requests: {cpu: 2000m}
      limits: {cpu: 1}
",
    );
    let out = k.run(&["apply", "-f", &greedy]);
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "The Pod \"greedy\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
    );
}

#[test]
fn kubectl_1_27_user_story() {
    the_user_story("1.27");
}

#[test]
fn kubectl_1_33_user_story() {
    the_user_story("1.33");
}

/// The same story with the objects in etcd (`kubespec up --etcd`).
#[test]
fn kubectl_1_27_and_1_33_user_stories_with_etcd() {
    for version in ["1.27", "1.33"] {
        let etcd = support::etcd::Etcd::start();
        the_user_story_on(
            version,
            &Up::start_with(&["--nodes", "0", "--etcd", etcd.url()]),
        );
    }
}
