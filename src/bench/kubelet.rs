//! `bench kubelet`: many reference kubelets in one process — their steady-state CPU and memory,
//! and pod start latency (create -> Ready) under churn.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use super::{Error, Result};
use crate::clock::Clock;
use crate::cluster::{ClusterConfig, RunningCluster};

/// `kubespec bench kubelet` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct KubeletBenchArgs {
    /// Nodes, each with its own kubelet, in this process.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Pods running in the steady state (pause containers).
    #[arg(long, default_value_t = 30_000)]
    pub pods: usize,
    /// Churn: pods created (and as many deleted) per second while latency is measured.
    #[arg(long, default_value_t = 20)]
    pub churn: usize,
    /// How long churn runs, in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .unwrap_or_default()
}

/// Resident memory and total CPU seconds of this process.
fn usage() -> (u64, f64) {
    let rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.split_whitespace().collect::<Vec<_>>();
            let utime: f64 = rest.get(11)?.parse().ok()?;
            let stime: f64 = rest.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0);
    (rss_kb * 1024, cpu)
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

/// How many pods are Ready, listed a page at a time so the benchmark itself holds only a page
/// (its memory counts in the RSS it reports).
async fn count_ready(pods: &Api<Pod>) -> Result<usize> {
    let mut ready = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = pods
            .list(&params)
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        ready += page.items.iter().filter(|p| is_ready(p)).count();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(ready),
        }
    }
}

/// Run `bench kubelet` and print its figures.
///
/// # Errors
/// When the cluster does not start, a write fails, or pods never get ready.
pub async fn kubelet(args: KubeletBenchArgs) -> Result<()> {
    if args.nodes == 0 || args.pods == 0 {
        return Err(Error::Args("--nodes and --pods must be at least 1".into()));
    }
    let (cluster, client) = start_cluster(&args).await?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    fill(&pods, &args).await?;
    steady_state().await;
    churn(&pods, cluster.clock(), &args).await?;
    let _ = cluster.stop(Duration::from_secs(10)).await;
    Ok(())
}

/// Start a cluster of `args.nodes` kubelets and a scheduler, and wait until every node has
/// registered.
async fn start_cluster(args: &KubeletBenchArgs) -> Result<(RunningCluster, kube::Client)> {
    let config = ClusterConfig {
        controller_managers: 0,
        schedulers: 1,
        nodes: args.nodes,
        node_cpu: "64".into(),
        node_memory: "256Gi".into(),
        // The bench measures the kubelet's own work from create to Ready, not the sandbox
        // start-up time it models for fidelity.
        sandbox_start: Duration::ZERO,
        ..ClusterConfig::apiserver_only()
    };
    let mut config = config;
    // Enough history for watches to resume, without keeping every version of 30,000 pods.
    config.apiserver.history_limit = 50_000;
    let started = Instant::now();
    let cluster = RunningCluster::start(config).await?;
    let client = cluster.client()?;
    super::controller_manager_stand_in(&client, "default").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let wait = Instant::now() + Duration::from_secs(600);
    loop {
        let n = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::Http(e.to_string()))?
            .items
            .len();
        if n >= args.nodes {
            break;
        }
        if Instant::now() > wait {
            return Err(Error::Args(format!(
                "only {n} of {} nodes registered after 600 s",
                args.nodes
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{} kubelets registered in {:.1?}",
        args.nodes,
        started.elapsed()
    );
    Ok((cluster, client))
}

/// Fill the cluster, a few hundred pods at a time, and wait until every pod is Ready.
async fn fill(pods: &Api<Pod>, args: &KubeletBenchArgs) -> Result<()> {
    let fill = Instant::now();
    let mut created = 0;
    while created < args.pods {
        let batch = (args.pods - created).min(200);
        let results = futures::future::join_all((created..created + batch).map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(&format!("steady-{i}")))
                    .await
            }
        }))
        .await;
        for r in results {
            r.map_err(|e| Error::Http(e.to_string()))?;
        }
        created += batch;
    }
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let ready = count_ready(pods).await?;
        if ready >= args.pods {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Args(format!(
                "only {ready} of {} pods ready after 1200 s",
                args.pods
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "{} pods running on {} nodes after {:.1?}",
        args.pods,
        args.nodes,
        fill.elapsed()
    );
    Ok(())
}

/// Steady state: CPU and memory over 10 s with nothing changing but heartbeats.
async fn steady_state() {
    let (_, cpu0) = usage();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss, cpu1) = usage();
    let steady_cpu = (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    println!(
        "steady state: RSS {:.0} MiB, CPU {:.2} cores",
        rss as f64 / 1048576.0,
        steady_cpu
    );
}

/// Churn: create `churn` pods per second (and delete as many), measuring create -> Ready.
async fn churn(pods: &Api<Pod>, clock: &Clock, args: &KubeletBenchArgs) -> Result<()> {
    let rv = pods
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = pods
        .watch(
            &WatchParams::default().labels("app=bench").timeout(290),
            &rv,
        )
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .boxed();
    let created_at: std::sync::Arc<
        parking_lot::Mutex<HashMap<String, (Instant, chrono::DateTime<chrono::Utc>)>>,
    > = Default::default();
    let clock = clock.clone();
    let total = args.churn * args.seconds as usize;
    let creator = {
        let pods = pods.clone();
        let created_at = created_at.clone();
        let clock = clock.clone();
        let churn = args.churn.max(1);
        tokio::spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / churn as f64);
            for i in 0..total {
                let name = format!("churn-{i}");
                created_at
                    .lock()
                    .insert(name.clone(), (Instant::now(), clock.now()));
                let _ = pods.create(&PostParams::default(), &pod(&name)).await;
                let _ = pods
                    .delete(&format!("steady-{i}"), &DeleteParams::default())
                    .await;
                tokio::time::sleep(interval).await;
            }
        })
    };
    let mut wall = Vec::new();
    let mut cluster_time = Vec::new();
    let (_, cpu0) = usage();
    let t0 = Instant::now();
    let end = Instant::now() + Duration::from_secs(args.seconds + 120);
    while wall.len() < total {
        let Ok(Some(event)) = tokio::time::timeout_at(end.into(), stream.next()).await else {
            return Err(Error::Args(format!(
                "only {} of {total} churned pods got ready",
                wall.len()
            )));
        };
        let p = match event {
            Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) => p,
            _ => continue,
        };
        let name = p.metadata.name.clone().unwrap_or_default();
        if is_ready(&p) {
            if let Some((w, c)) = created_at.lock().remove(&name) {
                wall.push(w.elapsed());
                cluster_time.push((clock.now() - c).to_std().unwrap_or_default());
            }
        }
    }
    let _ = creator.await;
    let (rss, cpu1) = usage();
    let churn_cpu = (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    println!(
        "churn {} pods/s for {} s: pod start (create -> Ready) wall p50 {:.1?} p99 {:.1?}; cluster time p50 {:.1?} p99 {:.1?}; RSS {:.0} MiB, CPU {:.2} cores",
        args.churn,
        args.seconds,
        percentile(&mut wall, 0.5),
        percentile(&mut wall, 0.99),
        percentile(&mut cluster_time, 0.5),
        percentile(&mut cluster_time, 0.99),
        rss as f64 / 1048576.0,
        churn_cpu
    );
    Ok(())
}
