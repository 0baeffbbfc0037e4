//! The containers target: the feature suite passes with every component in its own container
//! (leader failover on real container kills and stops, node loss on real stops, kills and
//! network disconnects), and nothing is left behind, whether the run passes, fails, is
//! interrupted with Ctrl-C or crashes (the next run removes what a crashed one left). `--keep`
//! leaves a reachable cluster. Without a Docker Engine the run stops with the fix in the message.
//!
//! All but the last need a Docker Engine and the static build of kubespec (minutes, and again
//! after each change): they are `#[ignore]`d in a plain `cargo test` and run, one at a time, with
//! `cargo test --test containers -- --ignored` (`.ci/run` does).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubespec::harness::{Options, TargetKind};
use kubespec::target::containers::{image, PID_LABEL, SCENARIO_LABEL};
use testcontainers::bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};

/// The tests start containerized clusters: one at a time on this machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What `docker ps -a` and `docker network ls` show: container and network names.
#[derive(Debug, PartialEq, Eq)]
struct DockerState {
    containers: BTreeSet<String>,
    networks: BTreeSet<String>,
}

async fn docker_state() -> DockerState {
    let docker = image::docker().await.expect("a Docker Engine");
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .expect("list containers")
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect();
    let networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .expect("list networks")
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    DockerState {
        containers,
        networks,
    }
}

/// Containers (running or not) carrying `label=value`, by name.
async fn labelled(label: &str, value: &str) -> Vec<String> {
    let docker = image::docker().await.expect("a Docker Engine");
    let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .expect("list containers")
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect()
}

async fn networks_labelled(label: &str, value: &str) -> Vec<String> {
    let docker = image::docker().await.expect("a Docker Engine");
    let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
    docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list networks")
        .into_iter()
        .filter_map(|n| n.name)
        .collect()
}

/// A feature file in a fresh directory.
fn feature(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.feature");
    std::fs::write(&path, text).expect("write the feature");
    (dir, path)
}

const PASSES: &str = r#"Feature: A pod on the containers target
  Scenario: A pod runs to completion
    Given a cluster with 1 node
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: once
      spec:
        restartPolicy: Never
        containers:
        - name: c
          image: busybox:1.36
          command: ["sh", "-c", "echo done"]
      """
    Then within 60 seconds pod once is Succeeded
"#;

const FAILS: &str = r#"Feature: A scenario that fails on the containers target
  Scenario: A pod that never exits is waited for in vain
    Given a cluster with 2 nodes
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: forever
      spec:
        restartPolicy: Never
        containers:
        - name: c
          image: busybox:1.36
          command: ["sleep", "3600"]
      """
    Then within 60 seconds pod forever is Running
    And within 5 seconds pod forever is Succeeded
"#;

/// Waits a long time, so the run can be interrupted while its cluster is up.
const WAITS: &str = r#"Feature: A long wait on the containers target
  Scenario: A pod that sleeps for an hour
    Given a cluster with 2 nodes
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: sleeper
      spec:
        restartPolicy: Never
        containers:
        - name: c
          image: busybox:1.36
          command: ["sleep", "3600"]
      """
    Then within 3000 seconds pod sleeper is Succeeded
"#;

fn options(paths: Vec<PathBuf>, artifacts: &Path) -> Options {
    Options {
        paths,
        target: TargetKind::Containers,
        time_scale: kubespec::harness::runner::CONTAINERS_TIME_SCALE,
        concurrency: 4,
        artifacts: artifacts.to_path_buf(),
        progress: kubespec::harness::report::Progress::Plain,
        ..Default::default()
    }
}

/// Each scenario's status in a Cucumber JSON report, by `file:line name`: `passed` when every
/// step passed, else the first other step status.
fn statuses(json: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(json).expect("the JSON report");
    let features: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut out = BTreeMap::new();
    for feature in features.as_array().expect("an array of features") {
        let uri = feature["uri"].as_str().unwrap_or_default();
        for scenario in feature["elements"].as_array().into_iter().flatten() {
            let status = scenario["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["result"]["status"].as_str().unwrap_or("?"))
                .find(|s| *s != "passed")
                .unwrap_or("passed");
            out.insert(
                format!(
                    "{uri}:{} {}",
                    scenario["line"],
                    scenario["name"].as_str().unwrap_or_default()
                ),
                status.to_string(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn the_feature_suite_passes_on_containers_and_leaves_nothing_behind() {
    let _one = ONE_AT_A_TIME.lock().await;
    let before = docker_state().await;
    let out = tempfile::tempdir().expect("temp dir");
    let json = out.path().join("report.json");
    let mut opts = options(
        vec![PathBuf::from("features")],
        Path::new("target/kubespec-artifacts-containers"),
    );
    opts.json = Some(json.clone());
    let outcome = kubespec::harness::run(opts).await.expect("the run starts");
    let statuses = statuses(&json);
    assert!(
        outcome.success(),
        "scenarios failed on the containers target: {statuses:#?}"
    );
    // Leader failover and node loss ran for real: on container kills, stops and a network
    // disconnect, not skipped.
    for (file, at_least) in [
        ("leader-election.feature", 4),
        ("node-loss.feature", 4),
        ("cluster-ip.feature", 4),
        ("static.feature", 1),
        ("pull.feature", 3),
    ] {
        let passed = statuses
            .iter()
            .filter(|(k, v)| k.contains(file) && *v == "passed")
            .count();
        assert!(
            passed >= at_least,
            "{file}: {passed} scenarios passed, expected {at_least}: {statuses:#?}"
        );
    }
    // Every scenario runs on this target: none is skipped for a capability.
    let not_passed: Vec<_> = statuses.iter().filter(|(_, v)| *v != "passed").collect();
    assert!(
        not_passed.is_empty() && outcome.skipped == 0,
        "every scenario passes on the containers target: {not_passed:#?}"
    );
    assert_eq!(docker_state().await, before, "containers or networks left");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn a_failed_scenario_leaves_no_container_or_network() {
    let _one = ONE_AT_A_TIME.lock().await;
    let before = docker_state().await;
    let (dir, path) = feature(FAILS);
    let outcome = kubespec::harness::run(options(vec![path], &dir.path().join("artifacts")))
        .await
        .expect("the run starts");
    assert_eq!((outcome.passed, outcome.failed), (0, 1), "{outcome:?}");
    assert_eq!(docker_state().await, before, "containers or networks left");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn the_users_image_models_reach_the_node_containers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, path) = feature(
        r#"Feature: An image of the user's own on the containers target
  Scenario: The modelled image logs and exits as its model says
    Given a cluster with 2 nodes
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: own
      spec:
        restartPolicy: Never
        containers:
        - name: app
          image: example.com/team/batch:1.0
      """
    Then within 60 seconds pod own is Failed
    And the logs of container app of pod own contain "modelled batch done"
"#,
    );
    let models = dir.path().join("models.yaml");
    std::fs::write(
        &models,
        "images:\n- image: example.com/team/batch\n  logs: [\"modelled batch done\"]\n  exit: {afterSeconds: 1, code: 3}\n",
    )
    .expect("write the models");
    let mut opts = options(vec![path.clone()], &dir.path().join("artifacts"));
    opts.image_models = Some(models);
    let outcome = kubespec::harness::run(opts).await.expect("the run starts");
    assert_eq!((outcome.passed, outcome.failed), (1, 0), "{outcome:?}");
    // Without the models the image does not exist: the same scenario fails.
    let outcome = kubespec::harness::run(options(vec![path], &dir.path().join("artifacts")))
        .await
        .expect("the run starts");
    assert_eq!((outcome.passed, outcome.failed), (0, 1), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn keep_leaves_a_cluster_kubectl_can_reach() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, path) = feature(PASSES);
    let mut opts = options(vec![path], &dir.path().join("artifacts"));
    opts.keep = true;
    let outcome = kubespec::harness::run(opts).await.expect("the run starts");
    assert_eq!(outcome.passed, 1, "{outcome:?}");
    let kept = labelled(PID_LABEL, &std::process::id().to_string()).await;
    // Clean up whatever the assertions say.
    let cluster = kept
        .iter()
        .find_map(|n| n.strip_prefix("kept-")?.strip_suffix("-apiserver"))
        .map(str::to_string);
    let check = async {
        let cluster = cluster
            .clone()
            .unwrap_or_else(|| panic!("no kept apiserver container among {kept:?}"));
        assert!(
            kept.iter().all(|n| n.starts_with("kept-")),
            "kept containers are named kept-...: {kept:?}"
        );
        assert_eq!(
            kept.len(),
            5,
            "apiserver, registry, controller-manager, scheduler and one node: {kept:?}"
        );
        let kubeconfig = std::env::temp_dir().join(format!("{cluster}.kubeconfig"));
        let out = Command::new(kubectl())
            .args(["--kubeconfig"])
            .arg(&kubeconfig)
            .args(["get", "pods", "-A", "-o", "name"])
            .output()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("pod/once"),
            "kubectl on the kept cluster: {out:?}"
        );
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(check)).await;
    if let Some(cluster) = cluster {
        kubespec::target::containers::remove_labelled(
            &image::docker().await.expect("docker"),
            SCENARIO_LABEL,
            &cluster,
        )
        .await;
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn kubectl() -> PathBuf {
    let dir = std::env::var_os("KUBESPEC_KUBECTL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/google-cloud-sdk/bin"));
    dir.join("kubectl.1.33")
}

/// A `kubespec test --target containers` of `feature` in a child process (killed if the test
/// ends first).
struct Run {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Build the image the spawned runs use (the static build can take many minutes on a cold
/// machine), so that the deadline for a cluster to start measures the cluster, not the build.
async fn image_built() {
    if let Err(e) = image::build(&image::StaticBuild::default()).await {
        panic!("cannot build the kubespec image: {e}");
    }
}

/// Start `kubespec test --target containers` on `text` (after [`image_built`]).
fn spawn_run(text: &str) -> Run {
    let (dir, path) = feature(text);
    let child = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args(["test", "--target", "containers", "--artifacts"])
        .arg(dir.path().join("artifacts"))
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubespec test");
    Run { child, _dir: dir }
}

/// Wait until the run's cluster is up: its node containers exist and the harness has gone on
/// to the scenario (a node container is the last started).
async fn wait_for_cluster(pid: u32) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let containers = labelled(PID_LABEL, &pid.to_string()).await;
        if containers.iter().filter(|n| n.contains("-node-")).count() == 2 {
            // The cluster comes up within seconds once its containers exist.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return labelled(PID_LABEL, &pid.to_string()).await;
        }
        assert!(
            Instant::now() < deadline,
            "the run (pid {pid}) started no 2-node cluster within 300s; it has {containers:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// No container or network made by process `pid` remains.
async fn assert_nothing_left_of(pid: u32) {
    let pid = pid.to_string();
    assert_eq!(
        labelled(PID_LABEL, &pid).await,
        Vec::<String>::new(),
        "containers of {pid}"
    );
    assert_eq!(
        networks_labelled(PID_LABEL, &pid).await,
        Vec::<String>::new(),
        "networks of {pid}"
    );
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Wait (at most 60 s) for the child to exit; its exit status.
fn wait_exit(run: &mut Run) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = run.child.try_wait().expect("wait for kubespec") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "kubespec did not exit within 60s of the signal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn ctrl_c_removes_the_runs_containers_and_networks() {
    let _one = ONE_AT_A_TIME.lock().await;
    image_built().await;
    let before = docker_state().await;
    let mut run = spawn_run(WAITS);
    let pid = run.child.id();
    let containers = wait_for_cluster(pid).await;
    assert_eq!(containers.len(), 6, "{containers:?}");
    signal(pid, "INT");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C");
    assert_nothing_left_of(pid).await;
    assert_eq!(docker_state().await, before, "containers or networks left");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the static build (minutes): cargo test --test containers -- --ignored"]
async fn the_next_run_removes_what_a_crashed_run_left() {
    let _one = ONE_AT_A_TIME.lock().await;
    image_built().await;
    let before = docker_state().await;
    let mut run = spawn_run(WAITS);
    let pid = run.child.id();
    let containers = wait_for_cluster(pid).await;
    signal(pid, "KILL");
    wait_exit(&mut run);
    // A crash removes nothing...
    assert_eq!(
        labelled(PID_LABEL, &pid.to_string()).await.len(),
        containers.len(),
        "the crashed run's containers"
    );
    assert_eq!(
        networks_labelled(PID_LABEL, &pid.to_string()).await.len(),
        1
    );
    // ...the next run does, before its own first scenario.
    let (dir, path) = feature(PASSES);
    let outcome = kubespec::harness::run(options(vec![path], &dir.path().join("artifacts")))
        .await
        .expect("the next run starts");
    assert_eq!(outcome.passed, 1, "{outcome:?}");
    assert_nothing_left_of(pid).await;
    assert_eq!(docker_state().await, before, "containers or networks left");
}

#[test]
fn without_a_docker_engine_the_run_stops_and_says_how_to_fix_it() {
    let (dir, path) = feature(PASSES);
    let out = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
        .args(["test", "--target", "containers", "--artifacts"])
        .arg(dir.path().join("artifacts"))
        .arg(&path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run kubespec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("DOCKER_HOST=unix:///nonexistent/docker.sock")
            && stderr.contains("Start the Docker daemon"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("passed"),
        "nothing ran as passed: {stdout}"
    );
}
