//! The `kubespec` command line: run the reference cluster, one of its components, or a benchmark.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kubespec::apiserver::{self, ApiServer};
use kubespec::clock::Clock;
use kubespec::cluster::{ClusterConfig, RunningCluster};
use tracing_subscriber::EnvFilter;

// mimalloc: the apiserver's hot path allocates many small JSON maps; glibc malloc was the top
// profile entry.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A declarative test-and-conformance harness for the Kubernetes pod lifecycle.
#[derive(Parser, Debug)]
#[command(name = "kubespec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run Gherkin specs of the pod lifecycle (features/ by default) against a target.
    Test(TestArgs),
    /// Print the step vocabulary: every phrase with an example and where it is defined.
    Steps,
    /// Start the reference cluster on loopback, write a kubeconfig, and run until Ctrl-C.
    Up(UpArgs),
    /// Run one component of the reference cluster on its own.
    #[command(subcommand)]
    Component(Component),
    /// Measure the reference cluster.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Args, Debug)]
struct TestArgs {
    /// Feature files or directories of them.
    #[arg(default_value = "features")]
    paths: Vec<PathBuf>,
    /// Where scenarios run.
    #[arg(long, value_enum, default_value_t = kubespec::harness::TargetKind::Embedded)]
    target: kubespec::harness::TargetKind,
    /// The kubeconfig of the cluster (kubeconfig target; default $KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Run only scenarios whose tags match this expression, e.g. "@smoke and not @slow".
    #[arg(long)]
    tags: Option<String>,
    /// Run only scenarios whose name matches this regular expression.
    #[arg(long)]
    name: Option<String>,
    /// How many scenarios run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Cluster seconds per wall second: how fast the embedded target runs its clock (default
    /// 20; containers: 10), or how fast the kubeconfig target's cluster runs (default 1, real time; give the
    /// `--time-scale` of a `kubespec up` cluster).
    #[arg(long, value_parser = parse_time_scale)]
    time_scale: Option<f64>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a Cucumber JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Failed scenarios leave their timeline, events, objects and logs here.
    #[arg(long, default_value = "kubespec-artifacts")]
    artifacts: PathBuf,
    /// Stop after the first failed scenario.
    #[arg(long)]
    fail_fast: bool,
    /// Run a failed scenario again up to this many times.
    #[arg(long, default_value_t = 0)]
    retry: usize,
    /// Accept the snapshots this run produces (review them with `git diff snapshots/`).
    #[arg(long)]
    update_snapshots: bool,
    /// Keep the namespace (kubeconfig target) or the cluster (containers target) of a failed
    /// scenario.
    #[arg(long)]
    keep_on_failure: bool,
    /// Keep every scenario's containers and network (containers target), and print how to
    /// reach and remove them.
    #[arg(long)]
    keep: bool,
    /// Where snapshot files live.
    #[arg(long, default_value = "snapshots")]
    snapshots: PathBuf,
    /// A YAML file modelling images of your own (embedded target).
    #[arg(long)]
    image_models: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on: loopback, or (in a container of the containers target) any address
    /// of the container's, such as 0.0.0.0.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// The address pods and other machines reach the apiserver at (the `kubernetes` Service's
    /// endpoint). Default: the listening address; when that is every address (0.0.0.0), the
    /// address of the default route's interface in a container, else loopback.
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Cluster seconds per wall second (1 = wall-clock time).
    #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale)]
    time_scale: f64,
    /// When cluster time read the wall time (RFC 3339, e.g. 2026-12-05T09:00:00.5Z): give a
    /// cluster's processes the same epoch and time scale and they read the same cluster time.
    /// Default: now (printed at start).
    #[arg(long, value_parser = parse_epoch)]
    cluster_epoch: Option<chrono::DateTime<chrono::Utc>>,
    /// How many writes the store keeps for watches to resume from.
    #[arg(long, default_value_t = 100_000)]
    watch_history: usize,
    /// How many MiB of objects those writes may hold at most (older writes are forgotten first;
    /// a watch that needs them gets 410 Expired and relists).
    #[arg(long, default_value_t = 128)]
    watch_history_mib: usize,
    /// How many client connections the apiserver holds at once (more wait to be accepted).
    #[arg(long, default_value_t = kubespec::server::Limits::APISERVER)]
    max_connections: usize,
    /// The bearer token kubelets require (the apiserver presents it for logs; `up` gives it to
    /// its kubelets).
    #[arg(long)]
    kubelet_token: Option<String>,
    /// Keep the objects in etcd at this URL (e.g. http://127.0.0.1:2379; repeat or separate
    /// with commas for several members) under /registry, as kube-apiserver's `--etcd-servers`,
    /// instead of in memory. The watch history is then etcd's, compacted every 5 minutes.
    #[arg(long, alias = "etcd-servers", value_delimiter = ',')]
    etcd: Vec<String>,
    /// Where `kubectl get componentstatus` checks a component, as NAME=URL (repeatable; e.g.
    /// scheduler=http://127.0.0.1:10259/healthz, the default, with
    /// controller-manager=http://127.0.0.1:10257/healthz).
    #[arg(long, value_parser = parse_component_status)]
    component_status: Vec<(String, String)>,
}

#[derive(Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Controller-manager replicas (one leads at a time).
    #[arg(long, default_value_t = 1)]
    controller_managers: usize,
    /// Scheduler replicas (one leads at a time).
    #[arg(long, default_value_t = 1)]
    schedulers: usize,
    /// Nodes, each run by a reference kubelet (`node-1`, `node-2`, ...).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// A YAML file modelling images of your own for the simulated runtime.
    #[arg(long)]
    image_models: Option<PathBuf>,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "kubespec.kubeconfig")]
    write_kubeconfig: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Component {
    /// The apiserver alone, over an in-memory store or (with --etcd) etcd.
    Apiserver(ServeArgs),
    /// One controller-manager replica (deployment, replicaset, garbage collector, endpoints,
    /// node lifecycle, service account, root CA publisher and pod garbage collector
    /// controllers), campaigning for its lease.
    ControllerManager(ControllerManagerArgs),
    /// One scheduler replica, campaigning for its lease.
    Scheduler(ControlPlaneArgs),
    /// A kubelet for one node.
    Kubelet(KubeletArgs),
    /// The image registry nodes pull from (which images it holds): one for a cluster whose
    /// kubelets run in processes of their own (`component kubelet --registry-url`).
    Registry(RegistryArgs),
    /// kube-proxy for one node: keeps the node's Service rules (held by its kubelet, which
    /// simulates the node) in step with Services and EndpointSlices.
    KubeProxy(KubeProxyArgs),
}

#[derive(Args, Debug)]
struct RegistryArgs {
    /// Address to listen on (loopback; in a container of the containers target, any of its
    /// own).
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[derive(Args, Debug)]
struct KubeProxyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The node whose rules to keep; its kubelet is reached where the Node object says it
    /// listens.
    #[arg(long)]
    node_name: String,
    /// The bearer token the node's kubelet requires (its `--auth-token`).
    #[arg(long)]
    kubelet_token: Option<String>,
}

#[derive(Args, Debug)]
struct KubeletArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The node's name.
    #[arg(long)]
    node_name: String,
    /// Register the Node; with `--register-node=false` the Node must exist already.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    register_node: bool,
    /// CPU capacity.
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory capacity.
    #[arg(long, default_value = "8Gi")]
    memory: String,
    /// Pod IP range of this node as `127.A.B` (pod IPs are 127.A.B.x and onwards); random if
    /// not given.
    #[arg(long, value_parser = parse_pod_cidr)]
    pod_cidr: Option<[u8; 3]>,
    /// A directory of static pod manifests, rescanned every 20 s.
    #[arg(long)]
    pod_manifest_path: Option<PathBuf>,
    /// An http:// URL serving static pod manifests, polled every 20 s.
    #[arg(long)]
    manifest_url: Option<String>,
    /// A YAML file modelling images of your own for the simulated runtime.
    #[arg(long)]
    image_models: Option<PathBuf>,
    /// Require this bearer token on every endpoint but /healthz.
    #[arg(long)]
    auth_token: Option<String>,
    /// The node's InternalIP, where its server listens. Default: loopback, or in a container
    /// the address of its default route's interface.
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// The port of the kubelet's server (upstream: 10250); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Run the node's kube-proxy in this process too, keeping the node's Service rules (as a
    /// node machine runs both).
    #[arg(long)]
    kube_proxy: bool,
    /// Ask the image registry served here (`kubespec component registry`) before each pull,
    /// as every node of a cluster pulls from one registry; default: this process's own model.
    #[arg(long)]
    registry_url: Option<String>,
    /// Reach other nodes' pods through tunnels between kubelets (an overlay network), for
    /// nodes that do not share one loopback (each in a container of its own).
    #[arg(long)]
    overlay: bool,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// The kubeconfig of the cluster to work on (e.g. the one `kubespec up` wrote).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Cluster seconds per wall second; must match the apiserver's.
    #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale)]
    time_scale: f64,
    /// The cluster's epoch, as the apiserver printed it (`--cluster-epoch` there); with the
    /// same time scale, this process then reads the apiserver's cluster time. Default: now.
    #[arg(long, value_parser = parse_epoch)]
    cluster_epoch: Option<chrono::DateTime<chrono::Utc>>,
}

impl ClientArgs {
    /// This process's cluster clock.
    fn clock(&self) -> Clock {
        match self.cluster_epoch {
            Some(epoch) => Clock::with_epoch(self.time_scale, epoch),
            None => Clock::new(self.time_scale),
        }
    }
}

#[derive(Args, Debug)]
struct ControlPlaneArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Serve /healthz, /livez and /readyz on this loopback port (upstream serves them on 10257
    /// for the controller-manager, 10259 for the scheduler); 0 picks a free one. A control loop
    /// that died shows there as failed until it has been restarted.
    #[arg(long)]
    health_port: Option<u16>,
    /// The address the health checks listen on: loopback, or (in a container of the
    /// containers target) any address of the container's, where the apiserver's
    /// componentstatus check reaches them.
    #[arg(long, default_value = "127.0.0.1")]
    health_address: IpAddr,
}

#[derive(Args, Debug)]
struct ControllerManagerArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// A PEM file of the CA bundle to publish as `ca.crt` in every namespace's
    /// `kube-root-ca.crt` ConfigMap; by default the cluster's CA, which the apiserver publishes
    /// in kube-system/extension-apiserver-authentication.
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
}

/// A line on standard output for a long-running command (`up`, `component ...`). A closed
/// stdout (the reader went away, as with `kubespec up | head -1`) must not stop the cluster, so
/// a failed write is ignored where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Serve `health` on `127.0.0.1:port` until the process ends; prints where.
async fn serve_health(
    health: &kubespec::runtime::Health,
    args: &ControlPlaneArgs,
) -> anyhow::Result<()> {
    let Some(port) = args.health_port else {
        return Ok(());
    };
    let address = args.health_address;
    kubespec::host::check_listen_address(address, "--health-address")
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind((address, port))
        .await
        .with_context(|| format!("cannot listen on {address}:{port} for health checks (pass another --health-port, or 0 for a free one)"))?;
    say!("health checks at http://{}/healthz", listener.local_addr()?);
    tokio::spawn(kubespec::server::serve(
        listener,
        health.router(),
        kubespec::server::Limits::new(kubespec::server::Limits::SMALL),
        std::future::pending(),
    ));
    Ok(())
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Writes and watch delivery over loopback HTTP.
    Api(kubespec::bench::ApiBenchArgs),
    /// Scheduling decisions in process, and create -> bound over the API.
    Scheduler(kubespec::bench::SchedulerBenchArgs),
    /// Many kubelets in one process: steady-state CPU and RSS, pod start latency under churn.
    Kubelet(kubespec::bench::KubeletBenchArgs),
    /// The harness: cold start of a 3-node embedded cluster, one 3-replica Deployment to Ready,
    /// and the whole feature suite.
    Suite(kubespec::bench::SuiteBenchArgs),
}

fn parse_component_status(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, url))
            if !name.is_empty() && (url.starts_with("http://") || url.starts_with("https://")) =>
        {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err(format!(
            "{s:?} is not NAME=URL (e.g. scheduler=http://127.0.0.1:10259/healthz)"
        )),
    }
}

/// The default component checks with `given` ones in place of (or beside) them.
fn component_statuses(given: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = apiserver::Config::default().component_statuses;
    for (name, url) in given {
        match all.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = url.clone(),
            None => all.push((name.clone(), url.clone())),
        }
    }
    all
}

fn parse_epoch(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    kubespec::k8s::go::parse_rfc3339(s)
        .map_err(|e| format!("{e} (an RFC 3339 time such as 2026-12-05T09:00:00.5Z)"))
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "{s} must be a positive number of cluster seconds per wall second"
        ));
    }
    if !Clock::valid_scale(v) {
        return Err(format!(
            "{s} is out of range: the cluster clock runs between {} and {} times wall speed",
            Clock::MIN_SCALE,
            Clock::MAX_SCALE
        ));
    }
    Ok(v)
}

fn parse_pod_cidr(s: &str) -> Result<[u8; 3], String> {
    let parts: Vec<&str> = s.split('.').collect();
    let octets: Option<Vec<u8>> = parts.iter().map(|p| p.parse().ok()).collect();
    match octets.as_deref() {
        Some([127, a, b]) => Ok([127, *a, *b]),
        _ => Err(format!(
            "{s:?} is not a loopback prefix of the form 127.A.B (e.g. 127.42.0)"
        )),
    }
}

fn config(args: &ServeArgs) -> anyhow::Result<ClusterConfig> {
    kubespec::host::check_listen_address(args.address, "--address").map_err(anyhow::Error::msg)?;
    let advertise_address = match args.advertise_address {
        Some(ip) => Some(ip),
        None if args.address.is_unspecified() && kubespec::host::in_container() => {
            Some(kubespec::host::default_address())
        }
        None => None,
    };
    Ok(ClusterConfig {
        addr: SocketAddr::new(args.address, args.port),
        time_scale: args.time_scale,
        epoch: args.cluster_epoch,
        apiserver: apiserver::Config {
            history_limit: args.watch_history,
            history_bytes: args.watch_history_mib.saturating_mul(1024 * 1024),
            max_connections: args.max_connections,
            kubelet_token: args.kubelet_token.clone(),
            advertise_address,
            etcd_servers: args.etcd.clone(),
            component_statuses: component_statuses(&args.component_status),
            ..Default::default()
        },
        ..ClusterConfig::default()
    })
}

/// A client for a component (whose name it sends as its User-Agent).
async fn client_from(args: &ClientArgs, component: &str) -> anyhow::Result<kube::Client> {
    let connection = kubespec::cluster::kubeconfig::connect_as(
        Some(&args.kubeconfig),
        None,
        std::time::Duration::from_secs(10),
        Some(component),
    )
    .await?;
    Ok(connection.client)
}

/// Ctrl-C (SIGINT) or SIGTERM, which `docker stop` and `kill` send: either stops a long-running
/// command gracefully. (In a container the process is PID 1, which the kernel does not kill on
/// a signal it does not handle.)
async fn ctrl_c() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(cause = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::error!(cause = %e, "cannot listen for Ctrl-C; stopping");
            }
        }
        () = term => {}
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut cfg = config(&args.serve)?;
    cfg.controller_managers = args.controller_managers;
    cfg.schedulers = args.schedulers;
    cfg.nodes = args.nodes;
    if let Some(path) = &args.image_models {
        cfg.image_models = kubespec::kubelet::runtime::models::load(path)?.images;
    }
    let cluster = RunningCluster::start(cfg).await?;
    cluster.write_kubeconfig(&args.write_kubeconfig)?;
    say!(
        "kubespec reference cluster ready at {} (kubeconfig: {}; e.g. kubectl --kubeconfig {} get ns)",
        cluster.url(),
        args.write_kubeconfig.display(),
        args.write_kubeconfig.display()
    );
    say!(
        "components you attach need --cluster-epoch {} --time-scale {}",
        epoch_text(cluster.clock()),
        cluster.clock().scale()
    );
    ctrl_c().await;
    cluster.stop(std::time::Duration::from_secs(10)).await?;
    say!("kubespec reference cluster stopped");
    Ok(())
}

async fn component_apiserver(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (pass another --port, or 0 for a free one)",
                cfg.addr
            )
        })?;
    let addr = listener.local_addr()?;
    let clock = match cfg.epoch {
        Some(epoch) => Clock::with_epoch(cfg.time_scale, epoch),
        None => Clock::new(cfg.time_scale),
    };
    let server = ApiServer::open(&cfg.apiserver, clock.clone()).await?;
    say!(
        "kubespec apiserver listening on http://{addr} (cluster epoch {}, time scale {}: give components --cluster-epoch {} --time-scale {})",
        epoch_text(&clock),
        clock.scale(),
        epoch_text(&clock),
        clock.scale()
    );
    apiserver::serve(listener, server, ctrl_c()).await?;
    Ok(())
}

/// A clock's epoch as `--cluster-epoch` takes it.
fn epoch_text(clock: &Clock) -> String {
    clock
        .epoch()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn stop_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        ctrl_c().await;
        t.cancel();
    });
    token
}

async fn component_controller_manager(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let mut config = kubespec::controllers::ControllerManagerConfig::new();
    if let Some(path) = &args.root_ca_file {
        // Checked before anything starts, as upstream refuses a bad --root-ca-file.
        let ca = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|ca| {
                if kubespec::k8s::serviceaccount::holds_pem_certificate(&ca) {
                    Ok(ca)
                } else {
                    Err("data does not contain any valid RSA or ECDSA certificates".into())
                }
            })
            .map_err(|e| {
                anyhow::anyhow!("error parsing root-ca-file at {}: {e}", path.display())
            })?;
        config.root_ca = Some(ca);
    }
    let args = args.control_plane;
    let client = client_from(&args.client, kubespec::controllers::COMPONENT).await?;
    serve_health(&config.health, &args).await?;
    say!(
        "kubespec controller-manager {} campaigning for kube-system/kube-controller-manager",
        config.lease.identity
    );
    kubespec::controllers::run(client, args.client.clock(), config, stop_on_ctrl_c()).await;
    Ok(())
}

async fn component_scheduler(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let client = client_from(&args.client, kubespec::scheduler::COMPONENT).await?;
    let health = kubespec::runtime::Health::new();
    serve_health(&health, &args).await?;
    let lease = kubespec::leader::LeaseConfig::new(
        kubespec::scheduler::LEASE_NAME,
        kubespec::leader::new_identity(),
    );
    say!(
        "kubespec scheduler {} campaigning for kube-system/kube-scheduler",
        lease.identity
    );
    kubespec::scheduler::run_replica(client, args.client.clock(), lease, health, stop_on_ctrl_c())
        .await;
    Ok(())
}

async fn component_kubelet(args: KubeletArgs) -> anyhow::Result<()> {
    let client = client_from(&args.client, "kubelet").await?;
    let mut config = kubespec::kubelet::KubeletConfig::new(&args.node_name);
    config.register_node = args.register_node;
    config.cpu = args.cpu;
    config.memory = args.memory;
    if let Some(cidr) = args.pod_cidr {
        config.pod_cidr = cidr;
    }
    if let Some(dir) = &args.pod_manifest_path {
        if !dir.is_dir() {
            anyhow::bail!("--pod-manifest-path {} is not a directory", dir.display());
        }
    }
    config.pod_manifest_path = args.pod_manifest_path;
    config.manifest_url = args.manifest_url;
    config.auth_token = args.auth_token;
    config.node_ip = match args.node_ip {
        Some(ip) => {
            kubespec::host::check_listen_address(ip, "--node-ip").map_err(anyhow::Error::msg)?;
            ip
        }
        None if kubespec::host::in_container() => kubespec::host::default_address(),
        None => config.node_ip,
    };
    config.port = args.port;
    config.overlay = args.overlay;
    if let Some(url) = &args.registry_url {
        if !url.starts_with("http://") {
            anyhow::bail!(
                "--registry-url {url:?} must be an http:// URL of `kubespec component registry`"
            );
        }
        config.registry = kubespec::kubelet::runtime::Registry::remote(url);
    }
    if let Some(path) = &args.image_models {
        config.image_models = kubespec::kubelet::runtime::models::load(path)?.images;
    }
    say!(
        "kubespec kubelet for node {} starting (node IP {})",
        args.node_name,
        config.node_ip
    );
    let stop = stop_on_ctrl_c();
    if args.kube_proxy {
        let proxy_client = client_from(&args.client, kubespec::proxy::COMPONENT).await?;
        say!("kubespec kube-proxy for node {} starting", args.node_name);
        tokio::spawn(kubespec::proxy::run(
            proxy_client,
            args.client.clock(),
            kubespec::proxy::ProxyConfig::new(&args.node_name),
            std::sync::Arc::new(config.netfilter.clone()),
            stop.clone(),
        ));
    }
    kubespec::kubelet::run(client, args.client.clock(), config, stop).await;
    Ok(())
}

async fn component_registry(args: RegistryArgs) -> anyhow::Result<()> {
    kubespec::host::check_listen_address(args.address, "--address").map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind((args.address, args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (pass another --port, or 0 for a free one)",
                args.address, args.port
            )
        })?;
    say!(
        "kubespec registry listening on http://{}",
        listener.local_addr()?
    );
    let registry = kubespec::kubelet::runtime::Registry::new();
    kubespec::server::serve(
        listener,
        kubespec::kubelet::runtime::registry_router(registry),
        kubespec::server::Limits::new(kubespec::server::Limits::SMALL),
        ctrl_c(),
    )
    .await;
    Ok(())
}

async fn component_kube_proxy(args: KubeProxyArgs) -> anyhow::Result<()> {
    let client = client_from(&args.client, kubespec::proxy::COMPONENT).await?;
    let dataplane =
        kubespec::proxy::KubeletDataplane::new(client.clone(), &args.node_name, args.kubelet_token);
    say!("kubespec kube-proxy for node {} starting", args.node_name);
    kubespec::proxy::run(
        client,
        args.client.clock(),
        kubespec::proxy::ProxyConfig::new(&args.node_name),
        std::sync::Arc::new(dataplane),
        stop_on_ctrl_c(),
    )
    .await;
    Ok(())
}

async fn bench_suite(args: kubespec::bench::SuiteBenchArgs) -> anyhow::Result<()> {
    let scale = args.time_scale.unwrap_or(match args.target {
        kubespec::harness::TargetKind::Containers => {
            kubespec::harness::runner::CONTAINERS_TIME_SCALE
        }
        _ => kubespec::harness::runner::DEFAULT_TIME_SCALE,
    });
    if !Clock::valid_scale(scale) {
        bail!(
            "--time-scale {scale} must be a positive number between {} and {}",
            Clock::MIN_SCALE,
            Clock::MAX_SCALE
        );
    }
    let report = kubespec::bench::suite(&args, scale).await?;
    println!("{:?} target, time scale {scale}", args.target);
    println!("{}", report.render());
    if !args.no_suite {
        let started = std::time::Instant::now();
        let outcome = kubespec::harness::run(kubespec::harness::Options {
            time_scale: scale,
            target: args.target,
            concurrency: args.concurrency,
            progress: kubespec::harness::report::Progress::Quiet,
            ..Default::default()
        })
        .await?;
        println!(
            "whole feature suite (features/, {} scenarios): {:.2} s wall{}",
            outcome.passed + outcome.failed + outcome.skipped,
            started.elapsed().as_secs_f64(),
            if outcome.success() {
                ""
            } else {
                " (SOME SCENARIOS FAILED)"
            }
        );
        if !outcome.success() {
            bail!("the suite failed: its timing does not count");
        }
    }
    Ok(())
}

async fn test(args: TestArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.target != kubespec::harness::TargetKind::Kubeconfig
        && (args.kubeconfig.is_some() || args.context.is_some())
    {
        bail!("--kubeconfig and --context only apply to --target kubeconfig");
    }
    let options = kubespec::harness::Options {
        paths: args.paths,
        target: args.target,
        kubeconfig: args.kubeconfig,
        context: args.context,
        tags: args.tags,
        name: args.name,
        concurrency: args.concurrency,
        time_scale: args.time_scale.unwrap_or(match args.target {
            kubespec::harness::TargetKind::Embedded => {
                kubespec::harness::runner::DEFAULT_TIME_SCALE
            }
            kubespec::harness::TargetKind::Containers => {
                kubespec::harness::runner::CONTAINERS_TIME_SCALE
            }
            kubespec::harness::TargetKind::Kubeconfig => 1.0,
        }),
        junit: args.junit,
        json: args.json,
        artifacts: args.artifacts,
        fail_fast: args.fail_fast,
        retry: args.retry,
        update_snapshots: args.update_snapshots,
        keep_on_failure: args.keep_on_failure,
        keep: args.keep,
        snapshots: args.snapshots,
        image_models: args.image_models,
        progress: Default::default(),
    };
    let outcome = kubespec::harness::run(options).await?;
    Ok(if outcome.success() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `test` and `bench suite` start and stop a cluster per scenario: the components' warnings
    // about requests cut short by a stop are noise there (RUST_LOG still decides).
    let quiet = matches!(
        cli.command,
        Command::Test(_) | Command::Bench(Bench::Suite(_))
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(if quiet { "error" } else { "warn" })),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Test(args) => {
            return match test(args).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::ExitCode::from(2)
                }
            }
        }
        Command::Steps => {
            print!("{}", kubespec::harness::steps_listing());
            Ok(())
        }
        Command::Up(args) => up(args).await,
        Command::Component(Component::Apiserver(args)) => component_apiserver(args).await,
        Command::Component(Component::ControllerManager(args)) => {
            component_controller_manager(args).await
        }
        Command::Component(Component::Scheduler(args)) => component_scheduler(args).await,
        Command::Component(Component::Kubelet(args)) => component_kubelet(args).await,
        Command::Component(Component::KubeProxy(args)) => component_kube_proxy(args).await,
        Command::Component(Component::Registry(args)) => component_registry(args).await,
        Command::Bench(Bench::Api(args)) => kubespec::bench::api(args).await.map_err(Into::into),
        Command::Bench(Bench::Scheduler(args)) => {
            kubespec::bench::scheduler(args).await.map_err(Into::into)
        }
        Command::Bench(Bench::Kubelet(args)) => {
            kubespec::bench::kubelet(args).await.map_err(Into::into)
        }
        Command::Bench(Bench::Suite(args)) => bench_suite(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
