//! The apiserver over etcd (`--etcd`), with a real etcd: the objects live under `/registry` in
//! upstream's layout, an apiserver killed with SIGKILL loses nothing it acknowledged and a new
//! one on the same etcd serves the same objects and resumes watches from a resourceVersion the
//! old one handed out, and a watch from history etcd compacted gets 410 Expired.
//!
//! They need etcd and etcdctl (Debian: `apt-get install etcd-server etcd-client`; `.ci/run`
//! installs them).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use support::cli::{kubectl_binary, Up};
use support::etcd::Etcd;

/// `kubespec component apiserver --etcd <etcd>` in a process of its own.
struct Apiserver {
    child: Child,
    url: String,
}

impl Apiserver {
    fn start(etcd: &Etcd) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
            .args([
                "component",
                "apiserver",
                "--port",
                "0",
                "--etcd",
                etcd.url(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubespec component apiserver starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains("listening on http://") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the apiserver prints where it listens within 30 s");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL")
            .to_string();
        Self { child, url }
    }

    fn client(&self) -> kube::Client {
        kubespec::cluster::client_for(&self.url).expect("a client")
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9 the apiserver");
        self.child.wait().expect("the apiserver exits");
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_map(name: &str, i: usize) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}))
        .expect("a ConfigMap")
}

/// The resourceVersion of every ConfigMap in `default`, by name.
async fn versions(api: &Api<ConfigMap>) -> Vec<(String, String)> {
    let mut out: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap_or_default(),
                c.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_apiserver_loses_nothing_and_its_successor_resumes_watches() {
    let etcd = Etcd::start();
    let first = Apiserver::start(&etcd);
    let api: Api<ConfigMap> = Api::namespaced(first.client(), "default");
    for i in 0..20 {
        api.create(
            &PostParams::default(),
            &config_map(&format!("before-{i}"), i),
        )
        .await
        .expect("create");
    }
    // A resourceVersion the first apiserver handed out, then writes after it.
    let handed_out = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a list resourceVersion");
    let acknowledged = futures::stream::iter(0..30)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &config_map(&format!("after-{i}"), i),
                )
                .await
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .expect("every create is acknowledged");
    let before = versions(&api).await;
    first.kill_9();

    let second = Apiserver::start(&etcd);
    let api: Api<ConfigMap> = Api::namespaced(second.client(), "default");
    assert_eq!(
        versions(&api).await,
        before,
        "the same objects at the same resourceVersions"
    );
    assert_eq!(before.len(), 50);
    // The watch resumes from the old apiserver's resourceVersion: the 30 writes after it, in
    // order, and then a live one.
    let mut watch = api
        .watch(&WatchParams::default().timeout(60), &handed_out)
        .await
        .expect("watch from the handed-out resourceVersion")
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 31 {
        if seen.len() == 30 {
            api.create(&PostParams::default(), &config_map("live", 0))
                .await
                .expect("create");
        }
        match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
            Ok(Some(Ok(WatchEvent::Added(cm)))) => seen.push(cm.metadata.name.unwrap_or_default()),
            Ok(Some(Ok(WatchEvent::Bookmark(_)))) => {}
            other => panic!("after {} events: {other:?}", seen.len()),
        }
    }
    let mut expected: Vec<String> = acknowledged
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    let mut resumed = seen[..30].to_vec();
    expected.sort();
    resumed.sort();
    assert_eq!(
        resumed, expected,
        "every write after the resourceVersion, once"
    );
    assert_eq!(seen[30], "live");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_from_history_etcd_compacted_gets_410_expired() {
    let etcd = Etcd::start();
    let apiserver = Apiserver::start(&etcd);
    let api: Api<ConfigMap> = Api::namespaced(apiserver.client(), "default");
    let old = api
        .create(&PostParams::default(), &config_map("a", 0))
        .await
        .expect("create")
        .metadata
        .resource_version
        .expect("rv");
    api.create(&PostParams::default(), &config_map("b", 1))
        .await
        .expect("create");
    let latest = api
        .create(&PostParams::default(), &config_map("c", 2))
        .await
        .expect("create")
        .metadata
        .resource_version
        .expect("rv");
    etcd.ctl(&["compact", &latest]);
    let mut watch = api
        .watch(&WatchParams::default().timeout(30), &old)
        .await
        .expect("the watch request is answered")
        .boxed();
    match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
        Ok(Some(Ok(WatchEvent::Error(e)))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
            assert_eq!(
                e.message,
                format!("too old resource version: {old} ({latest})")
            );
        }
        other => panic!("expected 410 Expired, got {other:?}"),
    }
    // From the compaction on, watching works.
    let mut watch = api
        .watch(&WatchParams::default().timeout(30), &latest)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &config_map("d", 3))
        .await
        .expect("create");
    match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
        Ok(Some(Ok(WatchEvent::Added(cm)))) => assert_eq!(cm.metadata.name.as_deref(), Some("d")),
        other => panic!("expected ADDED d, got {other:?}"),
    }
}

#[test]
fn kubespec_up_keeps_the_cluster_in_etcd_under_registry_as_upstream_lays_it_out() {
    let etcd = Etcd::start();
    let up = Up::start_with(&["--etcd", etcd.url(), "--nodes", "1"]);
    let kubectl = kubectl_binary("1.33");
    let out = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(up.kubeconfig())
        .args(["create", "deployment", "web", "--image", "nginx:1.27"])
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{out:?}");
    let keys = etcd.ctl(&["get", "/registry", "--prefix", "--keys-only"]);
    for key in [
        "/registry/namespaces/default",
        "/registry/namespaces/kube-system",
        "/registry/minions/node-1",
        "/registry/leases/kube-node-lease/node-1",
        "/registry/services/specs/default/kubernetes",
        "/registry/deployments/default/web",
        "/registry/serviceaccounts/default/default",
    ] {
        assert!(
            keys.lines().any(|k| k == key),
            "{key} is not among etcd's keys:\n{keys}"
        );
    }
    // The value is the object, without a resourceVersion (etcd's revision is that).
    let value = etcd.ctl(&[
        "get",
        "/registry/deployments/default/web",
        "--print-value-only",
    ]);
    let deployment: serde_json::Value =
        serde_json::from_str(value.trim()).expect("the stored value is JSON");
    assert_eq!(deployment["metadata"]["name"], "web");
    assert_eq!(deployment["kind"], "Deployment");
    assert!(
        deployment["metadata"].get("resourceVersion").is_none(),
        "{deployment}"
    );
    // The served resourceVersion is etcd's mod revision of the key (read while nothing wrote
    // it: the deployment controller may be writing status).
    let mod_revision = || {
        let kv = etcd.ctl(&["get", "/registry/deployments/default/web", "-w", "json"]);
        let kv: serde_json::Value = serde_json::from_str(&kv).expect("etcdctl json");
        kv["kvs"][0]["mod_revision"].to_string()
    };
    let mut tries = Vec::new();
    for _ in 0..20 {
        let before = mod_revision();
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(up.kubeconfig())
            .args([
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ])
            .output()
            .expect("kubectl runs");
        let served = String::from_utf8_lossy(&out.stdout).to_string();
        if mod_revision() == before {
            assert_eq!(
                served, before,
                "kubectl's resourceVersion is etcd's mod revision"
            );
            return;
        }
        tries.push((before, served));
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the deployment never stood still in etcd: {tries:?}");
}
