//! `bench api`: pod writes from many clients and their delivery to many watchers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use super::{connect, exchange, list_rv, open_stream, Error, Result};
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
    /// Writes per second in all (open loop: write i is sent at i/rate s); 0 sends each write as
    /// soon as the writer's previous one is answered.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Keep the apiserver's objects in etcd at this URL (as `up --etcd`) instead of in memory.
    /// The pods go into a namespace of their own, so runs can share one etcd.
    #[arg(long)]
    pub etcd: Option<String>,
    /// After the apiserver run, write the same pods with the same number of clients straight
    /// into the etcd at this URL (through the etcd client the store uses, one put per pod), and
    /// report both: the floor an etcd-backed apiserver stands on.
    #[arg(long)]
    pub raw_etcd: Option<String>,
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
    /// Watch delivery latency p99.9.
    pub watch_p999: Duration,
    /// The slowest watch delivery.
    pub watch_max: Duration,
    /// Events delivered in all.
    pub delivered: usize,
    /// How late a thread that only sleeps 1 ms at a time woke during the write phase
    /// (p50, p99, p99.9, max): the machine's own floor under every latency above.
    pub wake_lag: [Duration; 4],
    /// Where the apiserver kept the objects: `memory`, or the etcd URL.
    pub store: String,
    /// The same writes straight into etcd (`--raw-etcd`).
    pub raw_etcd: Option<RawEtcdReport>,
}

/// The figures of the writes `bench api --raw-etcd` puts straight into etcd.
#[derive(Debug, Clone)]
pub struct RawEtcdReport {
    /// The etcd URL.
    pub url: String,
    /// Puts.
    pub writes: usize,
    /// Wall time of the puts.
    pub elapsed: Duration,
    /// Put latency p50.
    pub p50: Duration,
    /// Put latency p99.
    pub p99: Duration,
}

impl RawEtcdReport {
    /// Puts per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

impl ApiBenchReport {
    /// Writes per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for ApiBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "store:         {}", self.store)?;
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
            "watch latency: p50 {:.2?}  p99 {:.2?}  p99.9 {:.2?}  max {:.2?} (201 received -> event received)",
            self.watch_p50, self.watch_p99, self.watch_p999, self.watch_max
        )?;
        let [p50, p99, p999, max] = self.wake_lag;
        writeln!(
            f,
            "wake-up lag:   p50 {p50:.2?}  p99 {p99:.2?}  p99.9 {p999:.2?}  max {max:.2?} (a thread sleeping 1 ms at a time, same run: the machine's floor)"
        )?;
        write!(f, "watch check:   {} events delivered, every watcher saw every write exactly once, in order", self.delivered)?;
        if let Some(raw) = &self.raw_etcd {
            write!(
                f,
                "\nraw etcd:      {:.0} puts/s  p50 {:.2?}  p99 {:.2?} (the same {} pods from the same number of clients, straight into {})\nratio:         apiserver writes/s = {:.2}x raw etcd puts/s",
                raw.writes_per_sec(),
                raw.p50,
                raw.p99,
                raw.writes,
                raw.url,
                self.writes_per_sec() / raw.writes_per_sec()
            )?;
        }
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn pod_body(namespace: &str, name: &str) -> Bytes {
    // Formatted rather than built as a JSON value: the load generator shares the cores with the
    // server and should cost as little as it can.
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"bench"}}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.10"}}]}}}}"#
    ))
}

/// Reads the string value that follows the first occurrence of `"key":"` in a watch line.
///
/// The watch lines are the server's own encoding of the bench's pods, whose keys are sorted and
/// which carry no other `type`, `name` or `resourceVersion` keys before the ones wanted, so a scan
/// finds the same values a full decode would, at a fraction of the load generator's CPU (which
/// shares the cores with the server being measured).
struct Scan(memchr::memmem::Finder<'static>);

impl Scan {
    fn new(key: &str) -> Self {
        Self(memchr::memmem::Finder::new(format!("\"{key}\":\"").as_bytes()).into_owned())
    }

    fn value<'a>(&self, line: &'a [u8]) -> Option<&'a str> {
        let start = self.0.find(line)? + self.0.needle().len();
        let len = memchr::memchr(b'"', &line[start..])?;
        std::str::from_utf8(&line[start..start + len]).ok()
    }
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
    config.apiserver.etcd_servers = args.etcd.iter().cloned().collect();
    // The server gets its own runtime and the watchers theirs, as separate processes would: the
    // 64 writers' tasks never queue in front of the server or of an event on its way to a watcher.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("apiserver")
        .enable_all()
        .build()
        .map_err(|e| Error::Args(format!("cannot start a runtime: {e}")))?;
    let cluster = server_rt
        .spawn(RunningCluster::start(config))
        .await
        .map_err(|e| Error::Http(e.to_string()))??;
    let addr = cluster.addr();
    // Over etcd, a namespace of the run's own: pods an earlier run left there do not collide.
    let namespace: Arc<str> = match &args.etcd {
        None => "default".into(),
        Some(_) => {
            let name = format!("bench-{}", crate::target::random_name(8));
            create_namespace(&cluster.client()?, &name).await?;
            name.into()
        }
    };
    super::controller_manager_stand_in(&cluster.client()?, &namespace).await?;
    let start_rv = {
        let mut sender = connect(addr).await?;
        list_rv(&mut sender, &format!("/api/v1/namespaces/{namespace}/pods")).await?
    };

    // Ack times of each write, in nanoseconds since `epoch` (0 = not yet acknowledged).
    let epoch = Instant::now();
    let acked: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.writes).map(|_| AtomicU64::new(0)).collect());

    let path = format!("/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={start_rv}");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watchers = {
        let acked = acked.clone();
        let (count, total) = (args.watchers, args.writes);
        on_own_thread("watchers", move || async move {
            let mut streams = Vec::new();
            for w in 0..count {
                let mut sender = connect(addr).await?;
                streams.push((w, open_stream(&mut sender, &path).await?));
            }
            let _ = ready_tx.send(());
            let results = futures::future::join_all(
                streams
                    .into_iter()
                    .map(|(w, body)| watch_all(w, body, total, acked.clone(), epoch)),
            )
            .await;
            let mut latencies = Vec::new();
            for r in results {
                latencies.extend(r?);
            }
            Ok(latencies)
        })?
    };
    // Every watch is open before the first write.
    let _ = ready_rx.await;

    let probe = WakeProbe::start()?;
    let total = args.writes as u64;
    let clients = args.clients;
    let rate = args.rate;
    let writers = on_own_thread("writers", move || async move {
        let mut senders = Vec::with_capacity(clients);
        for _ in 0..clients {
            senders.push(connect(addr).await?);
        }
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let results = futures::future::join_all(senders.into_iter().map(|mut sender| {
            let next = next.clone();
            let acked = acked.clone();
            let namespace = namespace.clone();
            async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    if rate > 0 {
                        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let name = format!("bench-{i}");
                    let req = Request::post(format!("/api/v1/namespaces/{namespace}/pods"))
                        .header("content-type", "application/json")
                        .body(Full::new(pod_body(&namespace, &name)))
                        .map_err(|e| Error::Http(e.to_string()))?;
                    let sent = Instant::now();
                    let (status, body) = exchange(&mut sender, req).await?;
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
            }
        }))
        .await;
        let elapsed = started.elapsed();
        let mut latencies = Vec::with_capacity(total as usize);
        for r in results {
            latencies.extend(r?);
        }
        Ok((latencies, elapsed))
    })?;
    let (mut write_latencies, elapsed) = join(writers).await?;
    let mut wake_lags = probe.finish().await?;
    let mut watch_latencies = join(watchers).await?;
    let _ = server_rt
        .spawn(async move { cluster.stop(Duration::from_secs(10)).await })
        .await;
    server_rt.shutdown_background();
    write_latencies.sort();
    watch_latencies.sort();
    wake_lags.sort();
    let raw_etcd = match &args.raw_etcd {
        Some(url) => Some(raw_etcd(url, args.writes, args.clients).await?),
        None => None,
    };
    Ok(ApiBenchReport {
        writes: args.writes,
        elapsed,
        write_p50: percentile(&write_latencies, 0.5),
        write_p99: percentile(&write_latencies, 0.99),
        watch_p50: percentile(&watch_latencies, 0.5),
        watch_p99: percentile(&watch_latencies, 0.99),
        watch_p999: percentile(&watch_latencies, 0.999),
        watch_max: watch_latencies.last().copied().unwrap_or_default(),
        delivered: watch_latencies.len(),
        wake_lag: [
            percentile(&wake_lags, 0.5),
            percentile(&wake_lags, 0.99),
            percentile(&wake_lags, 0.999),
            wake_lags.last().copied().unwrap_or_default(),
        ],
        store: args.etcd.clone().unwrap_or_else(|| "memory".into()),
        raw_etcd,
    })
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .map_err(|e| Error::Http(e.to_string()))?;
    kube::Api::all(client.clone())
        .create(&kube::api::PostParams::default(), &namespace)
        .await
        .map_err(|e| Error::Http(format!("cannot create namespace {name}: {e}")))?;
    Ok(())
}

/// Put `writes` pods (the bench's own bodies) into etcd at `url` from `clients` concurrent
/// clients, under a prefix of the run's own; the latencies of the puts.
async fn raw_etcd(url: &str, writes: usize, clients: usize) -> Result<RawEtcdReport> {
    let fail = |e: etcd_client::Error| Error::Http(format!("etcd at {url}: {e}"));
    let client = etcd_client::Client::connect([url], None)
        .await
        .map_err(fail)?;
    let prefix = format!("/kubespec-bench/{}/pods/", crate::target::random_name(8));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let results = futures::future::join_all((0..clients).map(|_| {
        let mut kv = client.kv_client();
        let (next, prefix) = (next.clone(), prefix.clone());
        async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes as u64 {
                    return Ok::<_, etcd_client::Error>(latencies);
                }
                let name = format!("bench-{i}");
                let sent = Instant::now();
                kv.put(
                    format!("{prefix}{name}"),
                    pod_body("bench", &name).to_vec(),
                    None,
                )
                .await?;
                latencies.push(sent.elapsed());
            }
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(writes);
    for r in results {
        latencies.extend(r.map_err(fail)?);
    }
    latencies.sort();
    // Leave the etcd as it was found.
    let mut kv = client.kv_client();
    let _ = kv
        .delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await;
    Ok(RawEtcdReport {
        url: url.to_string(),
        writes,
        elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    })
}

/// A thread that sleeps 1 ms at a time and records how late it wakes: what the machine's
/// scheduler (and, in a VM, its host) adds to any wake-up, measured beside the load.
struct WakeProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<Duration>>>,
}

impl WakeProbe {
    const PERIOD: Duration = Duration::from_millis(1);

    fn start() -> Result<Self> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wake-probe".into())
            .spawn(move || {
                let mut lags = Vec::new();
                while !flag.load(Ordering::Relaxed) {
                    let before = Instant::now();
                    std::thread::sleep(Self::PERIOD);
                    lags.push(before.elapsed().saturating_sub(Self::PERIOD));
                }
                Ok(lags)
            })
            .map_err(|e| Error::Args(format!("cannot start a thread: {e}")))?;
        Ok(Self { stop, thread })
    }

    async fn finish(self) -> Result<Vec<Duration>> {
        self.stop.store(true, Ordering::Relaxed);
        join(self.thread).await
    }
}

/// Run a part of the load on a thread of its own (a single-threaded runtime), as a separate
/// client process would: the server's runtime, the writers and the watchers each get their own
/// threads, and none queues behind another's tasks.
fn on_own_thread<F, Fut, T>(name: &str, make: F) -> Result<std::thread::JoinHandle<Result<T>>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Args(format!("cannot start a runtime: {e}")))?
                .block_on(make())
        })
        .map_err(|e| Error::Args(format!("cannot start a thread: {e}")))
}

/// Wait for a thread started by [`on_own_thread`] without blocking the caller's runtime.
async fn join<T: Send + 'static>(handle: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .map_err(|_| Error::Args("a load thread panicked".into()))?
}

/// Watch until `total` ADDED events arrived; check they are each write once, in order.
async fn watch_all(
    watcher: usize,
    mut body: hyper::body::Incoming,
    total: usize,
    acked: Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> Result<Vec<Duration>> {
    let mut seen = vec![false; total];
    let mut count = 0usize;
    let mut last_rv = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut latencies = Vec::with_capacity(total);
    let (type_of, rv_of, name_of) = (
        Scan::new("type"),
        Scan::new("resourceVersion"),
        Scan::new("name"),
    );
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
        while let Some(pos) = memchr::memchr(b'\n', &buf[start..]) {
            let line = &buf[start..start + pos];
            start += pos + 1;
            if !line.starts_with(b"{") || !line.ends_with(b"}") {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("undecodable event: {}", String::from_utf8_lossy(line)),
                });
            }
            let type_ = type_of.value(line).unwrap_or("");
            if type_ != "ADDED" {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("unexpected {type_:?} event"),
                });
            }
            let rv: u64 = rv_of.value(line).and_then(|r| r.parse().ok()).unwrap_or(0);
            if rv <= last_rv {
                return Err(Error::Watch {
                    watcher,
                    problem: format!("resourceVersion {rv} after {last_rv}: out of order"),
                });
            }
            last_rv = rv;
            let name = name_of.value(line).unwrap_or("");
            let idx: usize = name
                .strip_prefix("bench-")
                .and_then(|n| n.parse().ok())
                .filter(|i| *i < total)
                .ok_or_else(|| Error::Watch {
                    watcher,
                    problem: format!("unexpected object {name:?}"),
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
