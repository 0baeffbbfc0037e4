//! `bench api`: pod writes from many clients and their delivery to many watchers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Deserialize;

use super::{connect, list_rv, Error, Result};
use crate::cluster::{ClusterConfig, RunningCluster};

/// `kubespec bench api` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiBenchArgs {
    /// How many pods to create.
    #[arg(long, default_value_t = 100_000)]
    pub writes: usize,
    /// Concurrent writers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Concurrent watchers of the namespace's pods.
    #[arg(long, default_value_t = 10)]
    pub watchers: usize,
}

/// The figures of one `bench api` run.
#[derive(Debug, Clone)]
pub struct ApiBenchReport {
    /// Pods created.
    pub writes: usize,
    /// Wall time of the write phase.
    pub elapsed: Duration,
    /// Write latency percentiles (p50, p99).
    pub write_p50: Duration,
    /// Write latency p99.
    pub write_p99: Duration,
    /// Watch delivery latency p50 (from the writer's 201 to the watcher's receipt; 0 if earlier).
    pub watch_p50: Duration,
    /// Watch delivery latency p99.
    pub watch_p99: Duration,
    /// Events delivered in all.
    pub delivered: usize,
}

impl ApiBenchReport {
    /// Writes per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for ApiBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "writes:        {} pods in {:.2?}",
            self.writes, self.elapsed
        )?;
        writeln!(f, "writes/s:      {:.0}", self.writes_per_sec())?;
        writeln!(
            f,
            "write latency: p50 {:.2?}  p99 {:.2?}",
            self.write_p50, self.write_p99
        )?;
        writeln!(
            f,
            "watch latency: p50 {:.2?}  p99 {:.2?} (201 received -> event received)",
            self.watch_p50, self.watch_p99
        )?;
        write!(f, "watch check:   {} events delivered, every watcher saw every write exactly once, in order", self.delivered)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

type Sender = super::Sender;

fn pod_body(namespace: &str, name: &str) -> Bytes {
    // Formatted rather than built as a JSON value: the load generator shares the cores with the
    // server and should cost as little as it can.
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"bench"}}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.10"}}]}}}}"#
    ))
}

#[derive(Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    type_: String,
    object: WatchObject,
}

#[derive(Deserialize)]
struct WatchObject {
    metadata: WatchMeta,
}

#[derive(Deserialize)]
struct WatchMeta {
    #[serde(default)]
    name: String,
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
}

/// Run `bench api`: start a reference apiserver, create pods from many clients, watch them from
/// many watchers, and report throughput and latencies.
///
/// # Errors
/// When the cluster does not start, a write fails, or a watcher misses, repeats or reorders an
/// event.
pub async fn api(args: ApiBenchArgs) -> Result<()> {
    let report = run_api(args).await?;
    println!("{report}");
    Ok(())
}

/// [`api`] without printing.
///
/// # Errors
/// As [`api`].
pub async fn run_api(args: ApiBenchArgs) -> Result<ApiBenchReport> {
    if args.clients == 0 || args.writes == 0 {
        return Err(Error::Args(
            "--writes and --clients must be at least 1".into(),
        ));
    }
    let mut config = ClusterConfig::apiserver_only();
    config.apiserver.history_limit = args.writes + 1000;
    let cluster = RunningCluster::start(config).await?;
    let addr = cluster.addr();
    let namespace = "default";
    let start_rv = {
        let mut sender = connect(addr).await?;
        list_rv(&mut sender, &format!("/api/v1/namespaces/{namespace}/pods")).await?
    };

    // Ack times of each write, in nanoseconds since `epoch` (0 = not yet acknowledged).
    let epoch = Instant::now();
    let acked: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.writes).map(|_| AtomicU64::new(0)).collect());

    let mut watchers = Vec::new();
    for w in 0..args.watchers {
        let sender = connect(addr).await?;
        let acked = acked.clone();
        let path =
            format!("/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={start_rv}");
        let total = args.writes;
        watchers.push(tokio::spawn(watch_all(
            w, sender, path, total, acked, epoch,
        )));
    }

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..args.clients {
        let mut sender = connect(addr).await?;
        let next = next.clone();
        let acked = acked.clone();
        let total = args.writes as u64;
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let name = format!("bench-{i}");
                let req = Request::post(format!("/api/v1/namespaces/{namespace}/pods"))
                    .header("content-type", "application/json")
                    .body(Full::new(pod_body(namespace, &name)))
                    .map_err(|e| Error::Http(e.to_string()))?;
                let sent = Instant::now();
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| Error::Http(e.to_string()))?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| Error::Http(e.to_string()))?
                    .to_bytes();
                let done = Instant::now();
                acked[i as usize].store((done - epoch).as_nanos() as u64, Ordering::Release);
                if status != 201 {
                    return Err(Error::Write {
                        name,
                        status,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                latencies.push(done - sent);
            }
            Ok::<_, Error>(latencies)
        }));
    }
    let mut write_latencies = Vec::with_capacity(args.writes);
    for w in writers {
        write_latencies.extend(w.await.map_err(|e| Error::Http(e.to_string()))??);
    }
    let elapsed = started.elapsed();
    let mut watch_latencies = Vec::new();
    for w in watchers {
        watch_latencies.extend(w.await.map_err(|e| Error::Http(e.to_string()))??);
    }
    cluster.stop().await;
    write_latencies.sort();
    watch_latencies.sort();
    Ok(ApiBenchReport {
        writes: args.writes,
        elapsed,
        write_p50: percentile(&write_latencies, 0.5),
        write_p99: percentile(&write_latencies, 0.99),
        watch_p50: percentile(&watch_latencies, 0.5),
        watch_p99: percentile(&watch_latencies, 0.99),
        delivered: watch_latencies.len(),
    })
}

/// Watch until `total` ADDED events arrived; check they are each write once, in order.
async fn watch_all(
    watcher: usize,
    mut sender: Sender,
    path: String,
    total: usize,
    acked: Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> Result<Vec<Duration>> {
    let req = Request::get(path)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let mut body = resp.into_body();
    let mut seen = vec![false; total];
    let mut count = 0usize;
    let mut last_rv = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut latencies = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(600);
    while count < total {
        let frame = tokio::time::timeout_at(deadline.into(), body.frame())
            .await
            .map_err(|_| Error::Watch {
                watcher,
                problem: format!("timed out after 600 s with {count} of {total} events"),
            })?;
        let Some(frame) = frame else {
            return Err(Error::Watch {
                watcher,
                problem: format!("stream ended after {count} of {total} events"),
            });
        };
        let frame = frame.map_err(|e| Error::Http(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = (Instant::now() - epoch).as_nanos() as u64;
        buf.extend_from_slice(&data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + pos];
            start += pos + 1;
            let event: WatchLine = serde_json::from_slice(line).map_err(|e| Error::Watch {
                watcher,
                problem: format!("undecodable event: {e}"),
            })?;
            if event.type_ != "ADDED" {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("unexpected {} event", event.type_),
                });
            }
            let rv: u64 = event.object.metadata.resource_version.parse().unwrap_or(0);
            if rv <= last_rv {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("resourceVersion {rv} after {last_rv}: out of order"),
                });
            }
            last_rv = rv;
            let idx: usize = event
                .object
                .metadata
                .name
                .strip_prefix("bench-")
                .and_then(|n| n.parse().ok())
                .filter(|i| *i < total)
                .ok_or_else(|| Error::Watch {
                    watcher,
                    problem: format!("unexpected object {}", event.object.metadata.name),
                })?;
            if std::mem::replace(&mut seen[idx], true) {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("bench-{idx} delivered twice"),
                });
            }
            count += 1;
            let ack = acked[idx].load(Ordering::Acquire);
            latencies.push(Duration::from_nanos(if ack == 0 {
                0
            } else {
                now.saturating_sub(ack)
            }));
        }
        buf.drain(..start);
    }
    Ok(latencies)
}
