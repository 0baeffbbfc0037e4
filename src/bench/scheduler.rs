//! `bench scheduler`: scheduling decisions in process, and create -> bound over the API.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;
use serde_json::json;

use super::{connect, exchange, list_rv, open_stream, Error, Result, Sender};
use crate::cluster::{ClusterConfig, RunningCluster};
use crate::scheduler::Cache;

/// `kubespec bench scheduler` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SchedulerBenchArgs {
    /// Nodes in the cluster (4 cpu, 16Gi, 110 pods each).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods to schedule (100m cpu, 128Mi each).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent clients creating pods in the end-to-end phase.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
}

fn node_json(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
        },
    })
}

fn pod_json(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": name},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    })
}

/// Run `bench scheduler` and print its figures.
///
/// # Errors
/// When the cluster does not start, a write fails, or a pod is never bound.
pub async fn scheduler(args: SchedulerBenchArgs) -> Result<()> {
    if args.nodes == 0 || args.pods == 0 || args.clients == 0 {
        return Err(Error::Args(
            "--nodes, --pods and --clients must be at least 1".into(),
        ));
    }
    // In process: the scheduling algorithm alone over a cache of nodes.
    let mut cache = Cache::new();
    for i in 0..args.nodes {
        let node: Node =
            serde_json::from_value(node_json(i)).map_err(|e| Error::Args(e.to_string()))?;
        cache.upsert_node(node);
    }
    let pods: Vec<Pod> = (0..args.pods)
        .map(|i| serde_json::from_value(pod_json(&format!("p-{i}"))))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Args(e.to_string()))?;
    let started = Instant::now();
    for pod in &pods {
        let node = cache
            .schedule(pod)
            .map_err(|e| Error::Args(format!("in-process scheduling failed: {}", e.message)))?;
        cache.place_pod(pod, &node);
    }
    let in_process = started.elapsed();
    println!(
        "in-process:  {} pods on {} nodes in {:.2?}: {:.0} scheduling decisions/s",
        args.pods,
        args.nodes,
        in_process,
        args.pods as f64 / in_process.as_secs_f64()
    );

    // End to end: pods created over the API, bound by the scheduler, seen bound by a watch.
    let config = ClusterConfig {
        controller_managers: 0,
        schedulers: 1,
        ..ClusterConfig::apiserver_only()
    };
    let cluster = RunningCluster::start(config).await?;
    let addr = cluster.addr();
    super::controller_manager_stand_in(&cluster.client()?, "default").await?;
    create_all(addr, args.clients, args.nodes, "/api/v1/nodes", |i| {
        node_json(i)
    })
    .await?;
    // Wait until the scheduler has every node: a canary that only the last node admits.
    let mut canary = pod_json("canary");
    canary["spec"]["nodeSelector"] =
        json!({"kubernetes.io/hostname": format!("node-{}", args.nodes - 1)});
    let mut watcher = connect(addr).await?;
    let rv = list_rv(&mut watcher, "/api/v1/namespaces/default/pods").await?;
    let mut sender = connect(addr).await?;
    post(&mut sender, "/api/v1/namespaces/default/pods", &canary).await?;
    let watch = tokio::spawn(watch_bound(
        watcher,
        format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"),
        args.pods + 1,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    create_all(
        addr,
        args.clients,
        args.pods,
        "/api/v1/namespaces/default/pods",
        |i| {
            let mut p = pod_json(&format!("p-{i}"));
            p["metadata"].as_object_mut().map(|m| m.remove("uid"));
            p
        },
    )
    .await?;
    let created = started.elapsed();
    let bound_at = watch.await.map_err(|e| Error::Http(e.to_string()))??;
    let end_to_end = bound_at.saturating_duration_since(started);
    let _ = cluster.stop(Duration::from_secs(10)).await;
    println!(
        "end-to-end:  {} pods created in {:.2?}, all bound after {:.2?}: {:.0} pods/s create->bound (1 scheduler, {} clients)",
        args.pods,
        created,
        end_to_end,
        args.pods as f64 / end_to_end.as_secs_f64(),
        args.clients
    );
    Ok(())
}

async fn post(sender: &mut Sender, path: &str, body: &serde_json::Value) -> Result<()> {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| Error::Http(e.to_string()))?;
    let (status, bytes) = exchange(sender, req).await?;
    if status != 201 {
        return Err(Error::Write {
            name: path.to_string(),
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    Ok(())
}

async fn create_all(
    addr: std::net::SocketAddr,
    clients: usize,
    count: usize,
    path: &'static str,
    make: impl Fn(usize) -> serde_json::Value + Send + Sync + Clone + 'static,
) -> Result<()> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut sender = connect(addr).await?;
        let next = next.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, Error>(());
                }
                post(&mut sender, path, &make(i)).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Http(e.to_string()))??;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Line {
    object: Obj,
}

#[derive(Deserialize)]
struct Obj {
    metadata: Meta,
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

/// Watch until `total` distinct pods have a node; return when the last one was seen.
async fn watch_bound(mut sender: Sender, path: String, total: usize) -> Result<Instant> {
    let mut body = open_stream(&mut sender, &path).await?;
    let mut bound: HashSet<String> = HashSet::new();
    let mut buf: Vec<u8> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while bound.len() < total {
        let frame = tokio::time::timeout_at(deadline.into(), body.frame())
            .await
            .map_err(|_| Error::Watch {
                watcher: 0,
                problem: format!("only {} of {total} pods bound after 600 s", bound.len()),
            })?
            .ok_or_else(|| Error::Watch {
                watcher: 0,
                problem: format!("watch ended with {} of {total} pods bound", bound.len()),
            })?
            .map_err(|e| Error::Http(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line: Line =
                serde_json::from_slice(&buf[start..start + pos]).map_err(|e| Error::Watch {
                    watcher: 0,
                    problem: format!("undecodable event: {e}"),
                })?;
            start += pos + 1;
            if line
                .object
                .spec
                .and_then(|s| s.node_name)
                .is_some_and(|n| !n.is_empty())
            {
                bound.insert(line.object.metadata.name);
            }
        }
        buf.drain(..start);
    }
    Ok(Instant::now())
}
