//! `kubespec bench suite`, the cluster half: how long a cluster with 3 nodes takes to start (to
//! its readiness barrier: every node Ready, every leader elected; on the containers target also
//! the scenario's namespace, as a scenario gets it), and how long a 3-replica Deployment takes
//! from apply to every pod Ready. (The binary times the whole feature suite, which sits above
//! this layer.)

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;

use super::{Error, Result};
use crate::cluster::{ClusterConfig, RunningCluster};

/// Settings of `bench suite`.
#[derive(clap::Args, Debug, Clone)]
pub struct SuiteBenchArgs {
    /// How many cold starts and Deployments to time.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Cluster seconds per wall second (the harness's default unless given).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Skip timing the whole feature suite.
    #[arg(long)]
    pub no_suite: bool,
    /// Where the clusters run: `embedded` (in this process) or `containers` (each component in
    /// a Docker container of its own).
    #[arg(long, value_enum, default_value_t = crate::harness::TargetKind::Embedded)]
    pub target: crate::harness::TargetKind,
    /// How many scenarios of the suite run at once (as `kubespec test --concurrency`).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// What the cluster half measured.
#[derive(Debug)]
pub struct SuiteBenchReport {
    /// Cold starts, sorted.
    pub cold_starts: Vec<Duration>,
    /// Deployment apply -> 3 pods Ready, sorted.
    pub deployments: Vec<Duration>,
    /// The time the Deployment's pods spend in what the simulator models (sandbox start and
    /// image pull), in wall time at this time scale.
    pub modelled: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl SuiteBenchReport {
    /// The report as lines.
    pub fn render(&self) -> String {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        format!(
            "cold start, 3 nodes, to ready ({} runs): p50 {}, p99 {}, max {}\n\
             3-replica Deployment, apply -> 3 pods Ready ({} runs): p50 {}, p99 {}, max {} \
             (of which {} is the sandbox start and image pull the simulator models)",
            self.cold_starts.len(),
            ms(percentile(&self.cold_starts, 0.5)),
            ms(percentile(&self.cold_starts, 0.99)),
            ms(self.cold_starts.last().copied().unwrap_or_default()),
            self.deployments.len(),
            ms(percentile(&self.deployments, 0.5)),
            ms(percentile(&self.deployments, 0.99)),
            ms(self.deployments.last().copied().unwrap_or_default()),
            ms(self.modelled),
        )
    }
}

const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "web"},
 "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
  "template": {"metadata": {"labels": {"app": "web"}},
   "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}"#;

/// Apply the 3-replica Deployment and time it until its 3 pods are Ready.
async fn time_deployment(pods: Api<Pod>, deployments_api: Api<Deployment>) -> Result<Duration> {
    // Watch first, so no pod turns Ready unseen.
    let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
    let manifest: Deployment =
        serde_json::from_str(DEPLOYMENT).map_err(|e| Error::Args(e.to_string()))?;
    let applied = Instant::now();
    deployments_api
        .patch(
            "web",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let mut ready = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ready.len() < 3 {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| Error::Args(format!("only {} of 3 pods Ready after 60 s", ready.len())))?;
        match next {
            Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                if crate::k8s::pod_is_ready(&p) {
                    ready.insert(p.metadata.name.unwrap_or_default());
                }
            }
            Some(_) => {}
            None => return Err(Error::Http("the pod watch ended".into())),
        }
    }
    Ok(applied.elapsed())
}

/// Time cold starts and Deployments at `time_scale`.
///
/// # Errors
/// When a cluster does not start or the Deployment never gets ready (within 60 s of wall time).
pub async fn suite(args: &SuiteBenchArgs, time_scale: f64) -> Result<SuiteBenchReport> {
    if args.runs == 0 {
        return Err(Error::Args("--runs must be at least 1".into()));
    }
    let mut cold_starts = Vec::new();
    let mut deployments = Vec::new();
    let config = ClusterConfig {
        time_scale,
        nodes: 3,
        ..ClusterConfig::default()
    };
    match args.target {
        crate::harness::TargetKind::Embedded => {
            for _ in 0..args.runs {
                let started = Instant::now();
                let cluster = RunningCluster::start(config.clone()).await?;
                cold_starts.push(started.elapsed());
                let client = cluster.client()?;
                deployments.push(
                    time_deployment(
                        Api::default_namespaced(client.clone()),
                        Api::default_namespaced(client),
                    )
                    .await?,
                );
                let _ = cluster.stop(Duration::from_secs(10)).await;
            }
        }
        crate::harness::TargetKind::Containers => {
            use crate::target::{containers, ScenarioInfo, Target, Topology};
            let target =
                containers::Containers::new(time_scale, containers::ImageSource::default())
                    .await
                    .map_err(|e| Error::Args(e.to_string()))?;
            let scenario = ScenarioInfo {
                name: "bench".into(),
                location: "kubespec bench suite".into(),
            };
            let topology = Topology {
                nodes: Some(3),
                ..Topology::default()
            };
            for _ in 0..args.runs {
                let started = Instant::now();
                let cluster = target
                    .provision(&scenario, &topology)
                    .await
                    .map_err(|e| Error::Args(e.to_string()))?;
                cold_starts.push(started.elapsed());
                let client = cluster.client();
                let timed = time_deployment(
                    Api::namespaced(client.clone(), cluster.namespace()),
                    Api::namespaced(client, cluster.namespace()),
                )
                .await;
                let _ = cluster.teardown(false).await;
                deployments.push(timed?);
            }
        }
        crate::harness::TargetKind::Kubeconfig => {
            return Err(Error::Args(
                "bench suite runs on the embedded or the containers target".into(),
            ))
        }
    }
    cold_starts.sort();
    deployments.sort();
    let image = crate::kubelet::runtime::catalog::resolve("nginx:1.27")
        .map(|i| i.pull_time)
        .unwrap_or_default();
    let modelled = (config.sandbox_start + image).div_f64(time_scale);
    Ok(SuiteBenchReport {
        cold_starts,
        deployments,
        modelled,
    })
}
