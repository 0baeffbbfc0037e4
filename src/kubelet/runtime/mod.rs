//! The container runtime: a CRI-shaped [`Runtime`] trait and [`SimRuntime`], a simulator whose
//! containers behave like the real images in the [`catalog`]: HTTP servers listen on real sockets
//! on the pod's IP (an address in 127.0.0.0/8), shell scripts run against an in-memory
//! filesystem that volumes populate, and stdout/stderr are captured for `kubectl logs`.
//!
//! Signals follow what the real images do: pause, nginx and httpd exit 0 on SIGTERM, agnhost
//! as each subcommand handles it (`pause` exits 2, `netexec` 0, `serve-hostname` waits 60 s,
//! `liveness` dies by the signal: 143), and `sh` as PID 1 takes only the signals its script
//! traps (`trap exit TERM` ends it at once), so without a trap it is killed when the grace
//! period ends (137). agnhost lives in `agnhost` (its `mounttest` in `mounttest.rs`), the web
//! servers in `webservers`, what Go's `net/http` shows of a server or client in `gonet`, what a
//! pod's network reaches in `podnet` (the pod's loopback is its IP, other pods are reached for
//! real from it, Service IPs and the outside are unroutable: agnhost's clients and the shell's
//! `wget` and `nc` connect through it), and the filesystems in `fs`: files, directories and
//! links with modes and owners, each filesystem with a type (the image's overlay, the node's
//! ext4, tmpfs), volumes mounted whole or by subPath, read-only or not. A shell runs as the
//! container's user: its writes, new directories and removals are checked against the modes.

mod agnhost;
pub mod catalog;
mod fs;
mod gonet;
mod grpc_health;
pub mod log;
pub mod models;
mod podnet;
pub mod sh;
mod webservers;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::catalog::{Behaviour, Image, ImageError};
pub use self::fs::{
    go_file_mode, normalize_path, FileKind, Fs, FsError, FsType, Identity, Mount, Stat,
    FS_CAPACITY, NO_SPACE, S_ISGID,
};
use self::log::{Log, Stream};
use crate::clock::Clock;
use crate::netfilter::Netfilter;

/// What a container is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum ProcessState {
    /// Created, not started.
    Created,
    /// Running since.
    Running {
        /// Start time (cluster clock).
        started_at: DateTime<Utc>,
    },
    /// Exited.
    Exited {
        /// Exit code.
        code: i32,
        /// Start time.
        started_at: DateTime<Utc>,
        /// Exit time.
        finished_at: DateTime<Utc>,
    },
    /// The process could not be started (StartError).
    StartFailed {
        /// The runtime's message.
        message: String,
        /// When it was tried.
        at: DateTime<Utc>,
    },
}

/// Everything needed to create a container.
#[derive(Clone, Debug)]
pub struct ContainerConfig {
    /// The pod's host name (`spec.hostname`, else the pod's name): `HOSTNAME`, `hostname`, agnhost's
    /// hostname endpoints.
    pub pod_name: String,
    /// The pod's IP; servers listen there.
    pub pod_ip: IpAddr,
    /// Container name.
    pub name: String,
    /// The pulled image.
    pub image: Image,
    /// `command`.
    pub command: Vec<String>,
    /// `args`.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Files the volumes put in place (absolute paths; subPath mounts).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Volumes mounted (whole or a subPath of them), shared with the pod's other containers.
    pub mounts: Vec<Mount>,
    /// Who the container's processes run as (`runAsUser`, `runAsGroup`, `fsGroup`).
    pub identity: Identity,
    /// `readOnlyRootFilesystem`: writes outside the container's volumes fail.
    pub read_only_root: bool,
}

/// Runtime errors.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No container with that id.
    #[error("container {0} not found")]
    NotFound(String),
    /// The container is not running.
    #[error("cannot exec in a stopped container: container {0} is not running")]
    NotRunning(String),
    /// The command could not be started (no such program in the image).
    #[error("{0}")]
    ExecFailed(String),
}

/// Where an exec session's output goes, as the process writes it.
pub type OutputFn = Arc<dyn Fn(Stream, &[u8]) + Send + Sync>;

/// The streams of a `kubectl exec` session.
pub struct ExecIo {
    /// Standard input, when the client sends one; ends when the client closes it.
    pub stdin: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
    /// Whether the session has a terminal.
    pub tty: bool,
    /// Where output goes, as the process writes it.
    pub output: OutputFn,
    /// Cancelled when the client went away: the process is killed.
    pub cancel: CancellationToken,
}

/// A CRI-shaped container runtime.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// Pull an image (taking the image's pull time).
    async fn pull_image(&self, image: &str) -> Result<Image, ImageError>;
    /// The image if it is already on this node.
    fn local_image(&self, image: &str) -> Option<Image>;
    /// Create a container; returns its id.
    fn create_container(&self, config: ContainerConfig) -> String;
    /// Start a created container.
    async fn start_container(&self, id: &str) -> Result<(), RuntimeError>;
    /// SIGTERM, then SIGKILL after `grace` (cluster time) if it still runs.
    async fn stop_container(&self, id: &str, grace: Duration);
    /// The container's state.
    fn state(&self, id: &str) -> Option<ProcessState>;
    /// A receiver that changes whenever any container of this runtime exits.
    fn exits(&self) -> watch::Receiver<u64>;
    /// Run a command in the container: (exit code, stdout+stderr).
    async fn exec(&self, id: &str, argv: &[String]) -> Result<(i32, Vec<u8>), RuntimeError>;
    /// Run a command in a running container as `kubectl exec` does: input from `io.stdin`,
    /// output through `io.output` as it is written; the exit code, or 137 when the container
    /// stopped or the client went away first (the process is killed with it).
    async fn exec_session(
        &self,
        id: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, RuntimeError>;
    /// The container's captured output (the text of its current log file).
    fn logs(&self, id: &str) -> Option<Vec<u8>>;
    /// The container's log itself, for the kubelet to read (and to keep once the container is
    /// removed, for `logs --previous`).
    fn log(&self, id: &str) -> Option<Arc<Mutex<Log>>>;
    /// A file in the container's filesystem (termination messages).
    fn read_file(&self, id: &str, path: &str) -> Option<Vec<u8>>;
    /// The local storage the container uses: its writable layer and its log (bytes).
    fn storage_usage(&self, id: &str) -> Option<u64>;
    /// Forget a stopped container.
    fn remove_container(&self, id: &str);
    /// Running containers, for metrics.
    fn running(&self) -> usize;
}

struct Container {
    config: ContainerConfig,
    fs: Arc<Fs>,
    logs: Arc<Mutex<Log>>,
    state: Arc<Mutex<ProcessState>>,
    term: CancellationToken,
    /// Whether the main process stops on SIGTERM sent from inside (not `sh`).
    handles_term: bool,
    /// A main process running `sh`: where its signals go (its traps decide which it takes).
    signals: Option<Arc<sh::Signals>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The image registry the simulated nodes pull from: the built-in catalog and the user's models,
/// minus the references an operator has withdrawn (as when a registry loses a tag or becomes
/// unreachable). One registry is shared by every node of a cluster: in one process the same
/// value, across processes (nodes in containers) one `kubespec component registry` that every
/// node asks before a pull ([`Registry::remote`], [`registry_router`]).
#[derive(Debug, Default)]
pub struct Registry {
    withdrawn: Mutex<std::collections::HashSet<String>>,
    /// The registry server's URL, when the registry is a process of its own.
    remote: Option<String>,
}

/// How long a node waits for the registry server to answer.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of the registry server's image resource (`?reference=<image>`).
pub const REGISTRY_PATH: &str = "/kubespec/registry/image";

/// What the registry server says of an image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Availability {
    /// The normalized reference (`docker.io/library/nginx:1.27`).
    pub reference: String,
    /// Whether it can be pulled.
    pub available: bool,
}

impl Registry {
    /// A registry that serves every image it models.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The registry served at `url` (an `http://` URL of `kubespec component registry`).
    pub fn remote(url: &str) -> Arc<Self> {
        Arc::new(Self {
            remote: Some(url.trim_end_matches('/').to_string()),
            ..Self::default()
        })
    }

    /// Withdraw `image` (or make it available again): pulls of it fail as pulls of a reference
    /// the registry does not have. Images already on a node stay there.
    ///
    /// # Errors
    /// The image reference is not valid.
    pub fn set_available(&self, image: &str, available: bool) -> Result<String, ImageError> {
        let (repository, tag) = catalog::normalize(image)?;
        let reference = format!("{repository}:{tag}");
        let mut withdrawn = self.withdrawn.lock();
        if available {
            withdrawn.remove(&reference);
        } else {
            withdrawn.insert(reference.clone());
        }
        Ok(reference)
    }

    /// Whether `image` can be pulled from this (local) registry.
    ///
    /// # Errors
    /// The image reference is not valid.
    pub fn availability(&self, image: &str) -> Result<Availability, ImageError> {
        let (repository, tag) = catalog::normalize(image)?;
        let reference = format!("{repository}:{tag}");
        let available = !self.withdrawn.lock().contains(&reference);
        Ok(Availability {
            reference,
            available,
        })
    }

    async fn check(&self, reference: &str) -> Result<(), ImageError> {
        let not_found = || {
            ImageError::NotFound(format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
            ))
        };
        if self.withdrawn.lock().contains(reference) {
            return Err(not_found());
        }
        let Some(url) = &self.remote else {
            return Ok(());
        };
        match ask_registry(url, reference).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_found()),
            // As containerd reports a registry it cannot reach.
            Err(e) => Err(ImageError::NotFound(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {e}"
            ))),
        }
    }
}

/// Ask the registry server at `url` whether `reference` can be pulled.
async fn ask_registry(url: &str, reference: &str) -> Result<bool, String> {
    registry_request(url, http::Method::GET, reference, None)
        .await
        .map(|a| a.available)
}

/// Withdraw `image` from the registry server at `url`, or make it available again; what the
/// registry then says of it.
///
/// # Errors
/// The registry cannot be reached, or refuses (an invalid reference), in words for the user.
pub async fn set_remote_availability(
    url: &str,
    image: &str,
    available: bool,
) -> Result<Availability, String> {
    let body = serde_json::json!({ "available": available }).to_string();
    registry_request(url, http::Method::PUT, image, Some(body)).await
}

async fn registry_request(
    url: &str,
    method: http::Method,
    reference: &str,
    body: Option<String>,
) -> Result<Availability, String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("reference", reference)
        .finish();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{url}{REGISTRY_PATH}?{query}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.unwrap_or_default(),
        )))
        .map_err(|e| format!("bad registry URL {url}: {e}"))?;
    let response = tokio::time::timeout(REGISTRY_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("the registry at {url} did not answer within {REGISTRY_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot reach the registry at {url}: {e}"))?;
    let status = response.status();
    let body = tokio::time::timeout(REGISTRY_TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| format!("the registry at {url} did not finish its answer"))?
        .map_err(|e| format!("reading the registry's answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "the registry at {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("the registry at {url} answered something else: {e}"))
}

/// The registry server's routes over `registry` (`kubespec component registry`): `GET
/// REGISTRY_PATH?reference=<image>` says whether the image can be pulled; `PUT` with
/// `{"available": bool}` withdraws it or brings it back. An invalid reference is 400.
pub fn registry_router(registry: Arc<Registry>) -> axum::Router {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    #[derive(serde::Deserialize)]
    struct Params {
        reference: String,
    }
    #[derive(serde::Deserialize)]
    struct Change {
        available: bool,
    }
    fn answer(result: Result<Availability, ImageError>) -> Response {
        match result {
            Ok(a) => (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                serde_json::to_vec(&a).unwrap_or_default(),
            )
                .into_response(),
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }
    async fn get(State(r): State<Arc<Registry>>, Query(p): Query<Params>) -> Response {
        answer(r.availability(&p.reference))
    }
    async fn put(
        State(r): State<Arc<Registry>>,
        Query(p): Query<Params>,
        body: axum::body::Bytes,
    ) -> Response {
        match serde_json::from_slice::<Change>(&body) {
            Ok(change) => answer(
                r.set_available(&p.reference, change.available)
                    .and_then(|_| r.availability(&p.reference)),
            ),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"available\": true|false}}: {e}"),
            )
                .into_response(),
        }
    }
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(REGISTRY_PATH, axum::routing::get(get).put(put))
        .with_state(registry)
}

/// The simulator.
pub struct SimRuntime {
    clock: Clock,
    registry: Arc<Registry>,
    /// The node's Service rules, which its pods' connections pass through.
    netfilter: Arc<Netfilter>,
    /// Images the user modelled, consulted before the built-in catalog.
    /// By normalised repository.
    models: HashMap<String, Arc<models::ImageModel>>,
    images: Mutex<HashMap<String, Image>>,
    containers: Mutex<HashMap<String, Container>>,
    exits: watch::Sender<u64>,
    next_id: std::sync::atomic::AtomicU64,
    /// Container logs rotate at this size (`containerLogMaxSize`).
    log_max_size: std::sync::atomic::AtomicUsize,
}

impl SimRuntime {
    /// The same runtime, with the logs of containers created from now on rotated at `bytes`
    /// (upstream's `containerLogMaxSize`; 10 MiB by default).
    pub fn with_log_max_size(self: Arc<Self>, bytes: usize) -> Arc<Self> {
        self.log_max_size
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// The user's model of an image: `Ok(None)` when the user models no such repository.
    fn user_image(&self, image: &str) -> Result<Option<Image>, ImageError> {
        let (repository, tag) = catalog::normalize(image)?;
        let Some(model) = self.model_for(&repository) else {
            return Ok(None);
        };
        let reference = format!("{repository}:{tag}");
        if model.tags.as_ref().is_some_and(|tags| !tags.contains(&tag)) {
            return Err(ImageError::NotFound(format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
            )));
        }
        Ok(Some(Image {
            reference,
            repository,
            tag,
            size: model.size_bytes,
            pull_time: Duration::from_secs_f64(model.pull_seconds),
        }))
    }

    /// The network of a pod with IP `ip` on this node.
    fn pod_net(&self, ip: IpAddr) -> podnet::PodNet {
        podnet::PodNet {
            ip,
            clock: self.clock.clone(),
            netfilter: self.netfilter.clone(),
        }
    }

    fn model_for(&self, repository: &str) -> Option<Arc<models::ImageModel>> {
        self.models.get(repository).cloned()
    }

    /// An empty runtime (no images, no containers).
    pub fn new(clock: Clock) -> Arc<Self> {
        Self::with_models(clock, Vec::new())
    }

    /// A runtime that also knows the user's image models.
    pub fn with_models(clock: Clock, models: Vec<models::ImageModel>) -> Arc<Self> {
        Self::with_registry(clock, models, Registry::new(), Netfilter::new())
    }

    /// A simulator whose pulls go to `registry` (shared by the nodes of one cluster), on a
    /// node whose Service rules are `netfilter`.
    pub fn with_registry(
        clock: Clock,
        models: Vec<models::ImageModel>,
        registry: Arc<Registry>,
        netfilter: Arc<Netfilter>,
    ) -> Arc<Self> {
        Arc::new(Self {
            clock,
            registry,
            netfilter,
            models: models
                .into_iter()
                .filter_map(|m| {
                    let (repository, _) = catalog::normalize(&m.image).ok()?;
                    Some((repository, Arc::new(m)))
                })
                .collect(),
            images: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            exits: watch::channel(0).0,
            next_id: std::sync::atomic::AtomicU64::new(1),
            log_max_size: log::DEFAULT_MAX_SIZE.into(),
        })
    }
}

/// Run `argv` as `kubectl exec` would, in a scratch container of its own with an empty
/// filesystem and a fast clock; `(exit status, stdout, stderr)`, or `None` when it does not
/// finish within `deadline` of wall time (it is then stopped). For the fuzz targets.
#[doc(hidden)]
pub async fn exec_in_scratch(
    argv: &[String],
    deadline: Duration,
) -> Option<(i32, Vec<u8>, Vec<u8>)> {
    let shell = ContainerShell::new(
        Arc::new(Fs::default()),
        Sink::Log(Arc::new(Mutex::new(Log::default()))),
        Vec::new(),
        Clock::new(Clock::MAX_SCALE),
    );
    tokio::time::timeout(deadline, sh::exec(argv, &shell))
        .await
        .ok()
}

/// Run `argv` in a container's filesystem and environment as [`Runtime::exec`] does (the sh
/// subset: `["/bin/sh", "-c", script]` or a single command): `(exit status, stdout, stderr)`.
/// For processes of the simulated images that run commands (agnhost netexec's `/shell`).
async fn exec_in(
    fs: Arc<Fs>,
    env: HashMap<String, String>,
    net: podnet::PodNet,
    argv: &[String],
) -> (i32, Vec<u8>, Vec<u8>) {
    let clock = net.clock.clone();
    let shell = ContainerShell {
        net: Some(net),
        ..ContainerShell::new(
            fs,
            Sink::Log(Arc::new(Mutex::new(Log::default()))),
            env.into_iter().collect(),
            clock,
        )
    };
    sh::exec(argv, &shell).await
}

/// Where a script's output goes.
#[derive(Clone)]
enum Sink {
    /// The container's log (its main process, or a probe's captured output).
    Log(Arc<Mutex<Log>>),
    /// A `kubectl exec` session.
    Session(OutputFn),
}

impl Sink {
    fn write(&self, stream: Stream, data: &[u8]) {
        match self {
            Self::Log(log) => log.lock().write(stream, data),
            Self::Session(f) => f(stream, data),
        }
    }
}

/// What a running script sees of its container.
struct ContainerShell {
    fs: Arc<Fs>,
    out: Sink,
    /// The environment, in the order the container got it (a later entry wins).
    env: Vec<(String, String)>,
    clock: Clock,
    hostname: String,
    /// Standard input (a `kubectl exec -i` session's); an empty chunk is a terminal's `^D`.
    stdin: tokio::sync::Mutex<Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>>,
    /// The container's main process (PID 1), for `kill`.
    main: Option<MainProcess>,
    /// The signals this shell receives, when it is the main process.
    signals: Option<Arc<sh::Signals>>,
    /// The pod's network, where its sockets are (see `podnet`); None: no network at all.
    net: Option<podnet::PodNet>,
}

/// The container's main process as `kill` from inside the container reaches it: PID 1 gets
/// only the signals it handles (the kernel drops the rest, SIGKILL included). `sh` handles those
/// its script traps (its [`sh::Signals`] decide); the other images stop on SIGTERM and SIGINT.
#[derive(Clone)]
struct MainProcess {
    term: CancellationToken,
    handles_term: bool,
    signals: Option<Arc<sh::Signals>>,
}

impl ContainerShell {
    /// A shell on `fs` with environment `env` and nothing else of a container (no input, no
    /// main process to signal).
    fn new(fs: Arc<Fs>, out: Sink, env: Vec<(String, String)>, clock: Clock) -> Self {
        Self {
            fs,
            out,
            env,
            clock,
            hostname: "localhost".into(),
            stdin: tokio::sync::Mutex::new(None),
            main: None,
            signals: None,
            net: None,
        }
    }

    /// A shell inside container `c`.
    fn inside(c: &Container, out: Sink, clock: Clock, netfilter: &Arc<Netfilter>) -> Self {
        Self {
            hostname: agnhost::hostname(&c.config.pod_name),
            main: Some(MainProcess {
                term: c.term.clone(),
                handles_term: c.handles_term,
                signals: c.signals.clone(),
            }),
            net: Some(podnet::PodNet {
                ip: c.config.pod_ip,
                clock: clock.clone(),
                netfilter: netfilter.clone(),
            }),
            ..Self::new(c.fs.clone(), out, c.config.env.clone(), clock)
        }
    }
}

#[async_trait::async_trait]
impl sh::Shell for ContainerShell {
    async fn sleep(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.clock
                .sleep(Duration::from_secs_f64(seconds.min(1e9)))
                .await;
        } else if seconds.is_infinite() {
            std::future::pending::<()>().await;
        }
    }
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.fs.read(path)
    }
    fn write(&self, path: &str, data: &[u8], append: bool) -> Result<(), String> {
        if path == "/dev/null" {
            return Ok(());
        }
        // open(2) with O_CREAT as the container's user: a file it may not write, or a new
        // one in a directory it may not write, is "Permission denied".
        let mode = 0o666 & !self.fs.identity().umask;
        match self.fs.write_file(path, data, append, mode) {
            Ok(()) => Ok(()),
            // Under a directory of the image the filesystem does not hold (`/root`, `/home`).
            Err(FsError::NotFound) => self.fs.write(path, data, append).map_err(str::to_string),
            Err(e) => Err(e.libc().to_string()),
        }
    }
    fn remove(&self, path: &str) -> Result<(), String> {
        // unlink(2) needs write and search permission on the directory; in a sticky one
        // (`/tmp`) only the owner of the file or of the directory may remove it.
        let dir = parent_dir(path);
        if self.fs.is_dir(dir) {
            self.fs.access(dir, 3).map_err(|e| e.libc().to_string())?;
            let id = self.fs.identity();
            if let (Ok(d), Ok(f)) = (self.fs.stat(dir), self.fs.lstat(path)) {
                if d.mode & 0o1000 != 0 && id.uid != 0 && id.uid != f.uid && id.uid != d.uid {
                    return Err("Operation not permitted".into());
                }
            }
        }
        self.fs.remove_path(path).map_err(|e| e.libc().to_string())
    }
    fn exists(&self, path: &str) -> bool {
        self.fs.is_file(path) || self.fs.is_dir(path)
    }
    fn is_file(&self, path: &str) -> bool {
        self.fs.is_file(path)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.fs.is_dir(path)
    }
    fn mkdir(&self, path: &str) -> Result<(), String> {
        let mode = 0o777 & !self.fs.identity().umask;
        let dir = parent_dir(path);
        if self.fs.is_dir(dir) {
            // mkdir(2) needs write and search permission on the directory.
            self.fs.access(dir, 3).map_err(|e| e.libc().to_string())?;
        }
        match self.fs.mkdir_mode(path, mode) {
            // Under a directory of the image the filesystem does not hold (`/root`, `/home`).
            Err(FsError::NotFound) => {
                self.fs.mkdir(path);
                Ok(())
            }
            other => other.map_err(|e| e.libc().to_string()),
        }
    }
    fn stdout(&self, data: &[u8]) {
        self.out.write(Stream::Stdout, data);
    }
    fn stderr(&self, data: &[u8]) {
        self.out.write(Stream::Stderr, data);
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        // Each name once, at its first place, with its last value.
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.env {
            match out.iter_mut().find(|(n, _)| n == k) {
                Some(entry) => entry.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }
    fn now_unix(&self) -> i64 {
        self.clock.now().timestamp()
    }
    fn list_dir(&self, path: &str) -> Option<Vec<String>> {
        self.fs.list_dir(path)
    }
    fn file_mode(&self, path: &str) -> Option<u32> {
        self.fs.lstat(path).ok().map(|st| st.st_mode())
    }
    fn file_owner(&self, path: &str) -> Option<(u32, u32)> {
        self.fs.lstat(path).ok().map(|st| (st.uid, st.gid))
    }
    async fn read_stdin(&self) -> Option<Vec<u8>> {
        let mut stdin = self.stdin.lock().await;
        let rx = stdin.as_mut()?;
        match rx.recv().await {
            Some(chunk) if chunk.is_empty() => None,
            Some(chunk) => Some(chunk.to_vec()),
            None => {
                *stdin = None;
                None
            }
        }
    }
    fn signal(&self, pid: i64, signal: i32) -> Result<(), String> {
        const SIGINT: i32 = 2;
        const SIGTERM: i32 = 15;
        match (&self.main, pid) {
            (Some(main), 1) => {
                if let Some(signals) = &main.signals {
                    signals.send(signal);
                } else if main.handles_term && (signal == SIGTERM || signal == SIGINT) {
                    main.term.cancel();
                }
                Ok(())
            }
            _ => Err("No such process".into()),
        }
    }
    fn hostname(&self) -> String {
        self.hostname.clone()
    }
    fn signals(&self) -> Option<Arc<sh::Signals>> {
        self.signals.clone()
    }
    fn credentials(&self) -> sh::Credentials {
        let id = self.fs.identity();
        sh::Credentials {
            uid: id.uid,
            gid: id.gid,
            groups: id.groups.clone(),
        }
    }
    async fn connect_tcp(
        &self,
        to: std::net::SocketAddr,
        local_port: u16,
    ) -> std::io::Result<Box<dyn sh::NetStream>> {
        let net = self.net.as_ref().ok_or_else(sh::no_network)?;
        let stream = podnet::connect_tcp(net, to, local_port).await?;
        Ok(Box::new(stream))
    }
    async fn connect_udp(
        &self,
        to: std::net::SocketAddr,
        local_port: u16,
    ) -> std::io::Result<Box<dyn sh::Datagram>> {
        let net = self.net.as_ref().ok_or_else(sh::no_network)?;
        let socket = podnet::PodUdp::bind(net, local_port).await?;
        sh::Datagram::connect(&socket, to).await?;
        Ok(Box::new(socket))
    }
    async fn listen_tcp(&self, port: u16) -> std::io::Result<Box<dyn sh::Listener>> {
        let own = self.net.as_ref().ok_or_else(sh::no_network)?.ip;
        let listener = tokio::net::TcpListener::bind((own, port)).await?;
        Ok(Box::new(podnet::PodListener(listener)))
    }
    async fn listen_udp(&self, port: u16) -> std::io::Result<Box<dyn sh::Datagram>> {
        let net = self.net.as_ref().ok_or_else(sh::no_network)?;
        Ok(Box::new(podnet::PodUdp::bind(net, port).await?))
    }
    fn mounts(&self) -> Vec<sh::Mount> {
        // The container's writable layer, then its volumes by mount point.
        let entry = |point: &str, fs: &Fs| sh::Mount {
            device: fs.fs_type().device().into(),
            mount_point: point.to_string(),
            fs_type: fs.fs_type().name().into(),
            size: fs.capacity() as u64,
            used: fs.used_bytes() as u64,
        };
        let mut out = vec![entry("/", &self.fs)];
        let mut volumes: Vec<&fs::Mount> = self.fs.mount_table().iter().collect();
        volumes.sort_by(|a, b| a.path.cmp(&b.path));
        out.extend(volumes.into_iter().map(|m| entry(&m.path, &m.fs)));
        out
    }
}

/// The directory holding `path` (absolute, normalized).
fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Run a user-modelled image: start-up delay, log lines, HTTP routes and TCP ports, and an exit
/// after a while (or until SIGTERM, which it obeys with 0).
async fn run_model(
    model: &models::ImageModel,
    ip: IpAddr,
    clock: &Clock,
    started_at: DateTime<Utc>,
    logs: &Arc<Mutex<Log>>,
    term: &CancellationToken,
) -> i32 {
    tokio::select! {
        _ = term.cancelled() => return 0,
        _ = clock.sleep(Duration::from_secs_f64(model.startup_delay_seconds)) => {}
    }
    for line in &model.logs {
        logs.lock()
            .extend_from_slice(format!("{line}\n").as_bytes());
    }
    let mut ports: std::collections::BTreeMap<u16, Vec<models::HttpRoute>> =
        std::collections::BTreeMap::new();
    for route in &model.http {
        ports.entry(route.port).or_default().push(route.clone());
    }
    let stop = CancellationToken::new();
    for (port, routes) in ports {
        // Paths match exactly (not as route patterns), so any path the model names is served
        // as written.
        let routes: Arc<HashMap<String, models::HttpRoute>> =
            Arc::new(routes.into_iter().map(|r| (r.path.clone(), r)).collect());
        let c = clock.clone();
        let router = Router::new().fallback(move |uri: axum::http::Uri| {
            let route = routes.get(uri.path()).cloned();
            let elapsed = (c.now() - started_at).num_milliseconds() as f64 / 1000.0;
            async move {
                match route {
                    Some(route) => {
                        let code = axum::http::StatusCode::from_u16(route.status_at(elapsed))
                            .unwrap_or(axum::http::StatusCode::OK);
                        (code, route.body)
                    }
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        "404 page not found\n".into(),
                    ),
                }
            }
        });
        let s = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(ip, port, router, s).await {
                tracing::debug!(cause = %e, "a modelled image could not listen");
            }
        });
    }
    for port in model.tcp_ports.clone() {
        let s = stop.clone();
        tokio::spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::bind((ip, port)).await else {
                return;
            };
            loop {
                tokio::select! {
                    _ = s.cancelled() => return,
                    accepted = listener.accept() => drop(accepted),
                }
            }
        });
    }
    let code = match &model.exit {
        Some(exit) => tokio::select! {
            _ = term.cancelled() => 0,
            _ = clock.sleep(Duration::from_secs_f64(exit.after_seconds.max(0.0))) => exit.code,
        },
        None => {
            term.cancelled().await;
            0
        }
    };
    stop.cancel();
    code
}

/// Serve `router` on the pod IP until `term`; `Err` with the bind error.
async fn serve(
    ip: IpAddr,
    port: u16,
    router: Router,
    term: CancellationToken,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind((ip, port))
        .await
        .map_err(|e| format!("listen tcp {ip}:{port}: bind: {e}"))?;
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(async move { term.cancelled().await })
        .await;
    Ok(())
}

/// The script a shell behaviour runs (`None` for the other behaviours), or `Err` with the state
/// the container ends in when it cannot run: a direct command the image does not have fails to
/// start, as with a real runtime, and a shell syntax error (logged) exits 2.
fn shell_script(
    behaviour: &Behaviour,
    logs: &Mutex<Log>,
    started_at: DateTime<Utc>,
) -> Result<Option<sh::Script>, ProcessState> {
    let Behaviour::Shell(argv) = behaviour else {
        return Ok(None);
    };
    match sh::from_command(argv) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let first = argv.first().cloned().unwrap_or_default();
            if matches!(first.as_str(), "sh" | "/bin/sh" | "bash" | "/bin/bash") {
                logs.lock()
                    .extend_from_slice(format!("sh: syntax error: {e}\n").as_bytes());
                Err(ProcessState::Exited {
                    code: 2,
                    started_at,
                    finished_at: started_at,
                })
            } else {
                Err(ProcessState::StartFailed {
                    message: format!(
                        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{first}\": executable file not found in $PATH: unknown"
                    ),
                    at: started_at,
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl Runtime for SimRuntime {
    async fn pull_image(&self, image: &str) -> Result<Image, ImageError> {
        let resolved = match self.user_image(image)? {
            Some(found) => found,
            None => catalog::resolve(image)?,
        };
        self.registry.check(&resolved.reference).await?;
        self.clock.sleep(resolved.pull_time).await;
        self.images
            .lock()
            .insert(resolved.reference.clone(), resolved.clone());
        Ok(resolved)
    }

    fn local_image(&self, image: &str) -> Option<Image> {
        // User images and built-ins are cached alike once pulled.
        let (repo, tag) = catalog::normalize(image).ok()?;
        self.images.lock().get(&format!("{repo}:{tag}")).cloned()
    }

    fn create_container(&self, mut config: ContainerConfig) -> String {
        config.env = catalog::process_env(
            &config.image,
            &agnhost::hostname(&config.pod_name),
            &config.env,
        );
        let id = format!(
            "{:064x}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128
                * 0x9e37_79b9_7f4a_7c15
        );
        let fs = Arc::new(
            Fs::container(
                config.files.clone(),
                config.mounts.clone(),
                config.identity.clone(),
            )
            .read_only_root(config.read_only_root),
        );
        self.containers.lock().insert(
            id.clone(),
            Container {
                config,
                fs,
                logs: Arc::new(Mutex::new(Log::new(
                    self.log_max_size.load(std::sync::atomic::Ordering::Relaxed),
                    self.clock.clone(),
                ))),
                state: Arc::new(Mutex::new(ProcessState::Created)),
                term: CancellationToken::new(),
                handles_term: false,
                signals: None,
                task: None,
            },
        );
        id
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let (config, fs, logs, state, term) = {
            let containers = self.containers.lock();
            let c = containers
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
            (
                c.config.clone(),
                c.fs.clone(),
                c.logs.clone(),
                c.state.clone(),
                c.term.clone(),
            )
        };
        let clock = self.clock.clone();
        let started_at = clock.now();
        let behaviour = match self.model_for(&config.image.repository) {
            Some(model) => Behaviour::Model(model),
            None => catalog::behaviour(&config.image, &config.command, &config.args),
        };
        // A direct command the image does not have fails to start, as with a real runtime.
        let script = match shell_script(&behaviour, &logs, started_at) {
            Ok(script) => script,
            Err(ended) => {
                logs.lock().close();
                *state.lock() = ended;
                self.exits.send_modify(|n| *n += 1);
                return Ok(());
            }
        };
        *state.lock() = ProcessState::Running { started_at };
        let exits = self.exits.clone();
        let env: HashMap<String, String> = config.env.iter().cloned().collect();
        let env_list = config.env.clone();
        let handles_term = !matches!(behaviour, Behaviour::Shell(_));
        let signals = script.as_ref().map(|_| sh::Signals::new());
        if let Some(c) = self.containers.lock().get_mut(id) {
            c.handles_term = handles_term;
            c.signals = signals.clone();
        }
        let ip = config.pod_ip;
        let net = self.pod_net(ip);
        let pod_name = config.pod_name.clone();
        let image_tag = config.image.tag.clone();
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            let code: i32 = match behaviour {
                Behaviour::Pause => {
                    term.cancelled().await;
                    0
                }
                Behaviour::Nginx => webservers::run_nginx(ip, &logs, &term).await,
                Behaviour::Httpd {
                    version,
                    graceful_stop,
                } => {
                    let image = webservers::Httpd {
                        version,
                        graceful_stop,
                    };
                    webservers::run_httpd(&image, ip, &clock, &logs, &term).await
                }
                Behaviour::Agnhost(argv) => {
                    let process = Arc::new(agnhost::Ctx {
                        ip,
                        netfilter: net.netfilter.clone(),
                        hostname: agnhost::hostname(&pod_name),
                        clock: clock.clone(),
                        started_at,
                        out: agnhost::Out::Log(logs.clone()),
                        term: term.clone(),
                        fs,
                        env,
                        pid: 1,
                        version: image_tag,
                    });
                    agnhost::run(argv, process).await
                }
                Behaviour::Model(model) => {
                    run_model(&model, ip, &clock, started_at, &logs, &term).await
                }
                Behaviour::Shell(_) => {
                    let shell = ContainerShell {
                        hostname: agnhost::hostname(&pod_name),
                        main: Some(MainProcess {
                            term: term.clone(),
                            handles_term: false,
                            signals: signals.clone(),
                        }),
                        signals,
                        net: Some(net),
                        ..ContainerShell::new(fs, Sink::Log(logs.clone()), env_list, clock.clone())
                    };
                    match script {
                        // PID 1 sh takes the signals its script traps; without a trap, only
                        // the end of the grace period stops it.
                        Some(script) => sh::run(&script, &shell).await,
                        None => 2,
                    }
                }
            };
            // The runtime writes out what the process left without a newline before it
            // reports the exit.
            logs.lock().close();
            let mut st = task_state.lock();
            if matches!(*st, ProcessState::Running { .. }) {
                *st = ProcessState::Exited {
                    code,
                    started_at,
                    finished_at: clock.now(),
                };
            }
            drop(st);
            exits.send_modify(|n| *n += 1);
        });
        if let Some(c) = self.containers.lock().get_mut(id) {
            c.task = Some(task);
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, grace: Duration) {
        let (term, state, logs, signals) = {
            let containers = self.containers.lock();
            let Some(c) = containers.get(id) else { return };
            (
                c.term.clone(),
                c.state.clone(),
                c.logs.clone(),
                c.signals.clone(),
            )
        };
        if !matches!(*state.lock(), ProcessState::Running { .. }) {
            return;
        }
        term.cancel();
        if let Some(signals) = signals {
            // SIGTERM: a script that traps it acts on it; otherwise PID 1 drops it.
            signals.send(15);
        }
        let mut exits = self.exits.subscribe();
        let stopped = self
            .clock
            .timeout(grace, async {
                while matches!(*state.lock(), ProcessState::Running { .. }) {
                    if exits.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        if stopped.is_err() {
            // SIGKILL.
            let task = self
                .containers
                .lock()
                .get_mut(id)
                .and_then(|c| c.task.take());
            if let Some(task) = task {
                task.abort();
            }
            logs.lock().close();
            let mut st = state.lock();
            if let ProcessState::Running { started_at } = *st {
                *st = ProcessState::Exited {
                    code: 137,
                    started_at,
                    finished_at: self.clock.now(),
                };
            }
            drop(st);
            self.exits.send_modify(|n| *n += 1);
        }
    }

    fn state(&self, id: &str) -> Option<ProcessState> {
        self.containers
            .lock()
            .get(id)
            .map(|c| c.state.lock().clone())
    }

    fn exits(&self) -> watch::Receiver<u64> {
        self.exits.subscribe()
    }

    async fn exec(&self, id: &str, argv: &[String]) -> Result<(i32, Vec<u8>), RuntimeError> {
        let shell = {
            let containers = self.containers.lock();
            let c = containers
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
            ContainerShell::inside(
                c,
                Sink::Log(Arc::new(Mutex::new(Log::default()))),
                self.clock.clone(),
                &self.netfilter,
            )
        };
        let (code, mut out, err) = sh::exec(argv, &shell).await;
        out.extend_from_slice(&err);
        Ok((code, out))
    }

    async fn exec_session(
        &self,
        id: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, RuntimeError> {
        let (shell, state, tool) = {
            let containers = self.containers.lock();
            let c = containers
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
            let shell = ContainerShell::inside(
                c,
                Sink::Session(io.output.clone()),
                self.clock.clone(),
                &self.netfilter,
            );
            let tool = agnhost::ToolCtx {
                image: c.config.image.clone(),
                ip: c.config.pod_ip,
                netfilter: self.netfilter.clone(),
                pod_name: c.config.pod_name.clone(),
                clock: self.clock.clone(),
                fs: c.fs.clone(),
                env: c.config.env.iter().cloned().collect(),
                cancel: io.cancel.clone(),
            };
            (shell, c.state.clone(), tool)
        };
        *shell.stdin.lock().await = io.stdin;
        let running = || matches!(*state.lock(), ProcessState::Running { .. });
        if !running() {
            return Err(RuntimeError::NotRunning(id.into()));
        }
        let program = argv.first().cloned().unwrap_or_default();
        let image = tool.image.repository.rsplit('/').next().unwrap_or_default();
        let agnhost = image == "agnhost" && catalog::is_agnhost_program(&program);
        // The pause image holds one program, /pause, and the control plane's images their
        // component's binary; the others have a shell and utilities.
        let missing = !agnhost
            && (image == "pause"
                || catalog::control_plane_binary(&tool.image.repository).is_some()
                || matches!(
                    sh::from_command(argv),
                    Err(sh::ParseError::UnknownCommand { .. } | sh::ParseError::EmptyCommand)
                ));
        if missing {
            // As containerd answers for a program the image does not have.
            return Err(RuntimeError::ExecFailed(format!(
                "failed to exec in container: failed to start exec \"{id}\": OCI runtime exec failed: exec failed: unable to start container process: exec: {}: executable file not found in $PATH: unknown",
                crate::k8s::go_quote(&program)
            )));
        }
        let mut exits = self.exits.subscribe();
        let stopped = async {
            while running() {
                if exits.changed().await.is_err() {
                    break;
                }
            }
        };
        let session = async {
            if agnhost {
                let (code, out, err) = agnhost::agnhost_tool(argv, tool).await.unwrap_or((
                    127,
                    Vec::new(),
                    Vec::new(),
                ));
                sh::Shell::stdout(&shell, &out);
                sh::Shell::stderr(&shell, &err);
                return code;
            }
            sh::exec_streaming(argv, &shell, io.tty).await
        };
        tokio::select! {
            code = session => Ok(code),
            () = stopped => Ok(137),
            () = io.cancel.cancelled() => Ok(137),
        }
    }

    fn logs(&self, id: &str) -> Option<Vec<u8>> {
        self.containers
            .lock()
            .get(id)
            .map(|c| c.logs.lock().contents())
    }

    fn log(&self, id: &str) -> Option<Arc<Mutex<Log>>> {
        self.containers.lock().get(id).map(|c| c.logs.clone())
    }

    fn storage_usage(&self, id: &str) -> Option<u64> {
        let containers = self.containers.lock();
        let c = containers.get(id)?;
        let log = c.logs.lock().len();
        Some((c.fs.used_bytes() + log) as u64)
    }

    fn read_file(&self, id: &str, path: &str) -> Option<Vec<u8>> {
        self.containers.lock().get(id).and_then(|c| c.fs.read(path))
    }

    fn remove_container(&self, id: &str) {
        if let Some(mut c) = self.containers.lock().remove(id) {
            c.term.cancel();
            if let Some(t) = c.task.take() {
                t.abort();
            }
        }
    }

    fn running(&self) -> usize {
        self.containers
            .lock()
            .values()
            .filter(|c| matches!(*c.state.lock(), ProcessState::Running { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(image: &str, command: &[&str], ip: IpAddr) -> ContainerConfig {
        ContainerConfig {
            pod_name: "p".into(),
            pod_ip: ip,
            name: "c".into(),
            image: catalog::resolve(image).unwrap(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: vec![],
            env: vec![],
            files: BTreeMap::new(),
            mounts: Vec::new(),
            identity: Identity::root(),
            read_only_root: false,
        }
    }

    #[test]
    fn mounted_volumes_are_shared_between_filesystems() {
        let shared = Arc::new(Fs::default());
        let a = Fs::with_mounts(BTreeMap::new(), vec![("/work".into(), shared.clone())]);
        let b = Fs::with_mounts(BTreeMap::new(), vec![("/data/".into(), shared)]);
        a.write("/work/ready", b"yes", false).unwrap();
        assert_eq!(b.read("/data/ready").as_deref(), Some(&b"yes"[..]));
        assert!(b.is_dir("/data") && !a.is_file("/data/ready"));
        assert!(b.remove("/data/ready"));
        assert!(!a.is_file("/work/ready"));
    }

    #[tokio::test]
    async fn a_read_only_volume_refuses_the_shell_s_changes() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        volume.write_file("/key", b"v", false, 0o644).unwrap();
        let rt = SimRuntime::new(Clock::new(1000.0));
        let mut c = config(
            "busybox",
            &["sh", "-c", "sleep 3600"],
            "127.0.0.1".parse().unwrap(),
        );
        c.mounts = vec![Mount::new("/etc/cm", volume).read_only(true)];
        let id = rt.create_container(c);
        rt.start_container(&id).await.unwrap();
        let sh = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let (code, out) = rt
            .exec(
                &id,
                &sh("rm /etc/cm/key; mkdir /etc/cm/d; echo x > /etc/cm/new; cat /etc/cm/key"),
            )
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("rm: can't remove '/etc/cm/key': Read-only file system\n"),
            "{out}"
        );
        assert!(
            out.contains("mkdir: can't create directory '/etc/cm/d': Read-only file system\n"),
            "{out}"
        );
        assert!(
            out.contains("sh: can't create /etc/cm/new: Read-only file system\n"),
            "{out}"
        );
        // exec's output: stdout, then stderr.
        assert!(out.starts_with("vrm:"), "{out}");
        rt.stop_container(&id, Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_shell_container_runs_its_script_and_reports_its_exit_code() {
        let rt = SimRuntime::new(Clock::new(1000.0));
        let id = rt.create_container(config(
            "busybox",
            &["sh", "-c", "echo hello; sleep 1; exit 3"],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        let mut exits = rt.exits();
        while !matches!(rt.state(&id), Some(ProcessState::Exited { .. })) {
            exits.changed().await.unwrap();
        }
        assert!(matches!(
            rt.state(&id),
            Some(ProcessState::Exited { code: 3, .. })
        ));
        assert_eq!(rt.logs(&id).unwrap(), b"hello\n");
    }

    #[tokio::test]
    async fn a_container_that_writes_without_end_holds_one_log_file() {
        let rt = SimRuntime::new(Clock::new(1000.0)).with_log_max_size(64 * 1024);
        let id = rt.create_container(config(
            "busybox",
            &["sh", "-c", "while true; do echo spam spam spam spam; done"],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        // Barrier: it has written more than several files' worth.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let written = rt.log(&id).unwrap().lock().end();
            if written > 5 * 64 * 1024 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loop wrote only {written} bytes in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let logs = rt.logs(&id).unwrap();
        assert!(logs.len() <= 64 * 1024, "{}", logs.len());
        // The tail is whole lines of it (one, just after a rotation; two otherwise).
        let tail = {
            let log = rt.log(&id).unwrap();
            let log = log.lock();
            let (chunk, _) = log.read_from(log.tail_offset(Some(2)));
            let mut out = Vec::new();
            log::Writer::new(None, false, None).write(&chunk, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert!(
            !tail.is_empty() && tail.lines().all(|l| l == "spam spam spam spam"),
            "{tail:?}"
        );
        rt.stop_container(&id, Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn sh_ignores_sigterm_and_is_killed_after_the_grace_period() {
        let rt = SimRuntime::new(Clock::new(1000.0));
        let id = rt.create_container(config(
            "busybox",
            &["sh", "-c", "sleep 3600"],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        rt.stop_container(&id, Duration::from_secs(30)).await;
        assert!(matches!(
            rt.state(&id),
            Some(ProcessState::Exited { code: 137, .. })
        ));
        let pause = rt.create_container(config(
            "registry.k8s.io/pause:3.10",
            &[],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&pause).await.unwrap();
        rt.stop_container(&pause, Duration::from_secs(30)).await;
        assert!(matches!(
            rt.state(&pause),
            Some(ProcessState::Exited { code: 0, .. })
        ));
    }

    /// Wait until container `id` has logged `text` (its script got that far).
    async fn logged(rt: &SimRuntime, id: &str, text: &str) {
        while !String::from_utf8_lossy(&rt.logs(id).unwrap()).contains(text) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn sh_that_traps_sigterm_stops_at_once() {
        let rt = SimRuntime::new(Clock::new(1000.0));
        // Upstream's e2e InfiniteSleepCommand (with a line saying the trap is set: a signal
        // that comes before is dropped, as by a real PID 1).
        let id = rt.create_container(config(
            "busybox:1.36",
            &[
                "sh",
                "-c",
                "trap exit TERM; echo trapped; while true; do sleep 1; done",
            ],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        logged(&rt, &id, "trapped").await;
        let started = match rt.state(&id) {
            Some(ProcessState::Running { started_at }) => started_at,
            other => panic!("{other:?}"),
        };
        // An hour's grace: only the trap can end it before the SIGKILL's 137.
        rt.stop_container(&id, Duration::from_secs(3600)).await;
        match rt.state(&id) {
            Some(ProcessState::Exited {
                code, finished_at, ..
            }) => {
                assert_eq!(code, 0);
                assert!(finished_at - started < chrono::Duration::seconds(3600));
            }
            other => panic!("{other:?}"),
        }
        // A trap that exits with a status of its own, and `kill 1` from an exec reaching it.
        let id = rt.create_container(config(
            "busybox:1.36",
            &[
                "sh",
                "-c",
                "trap 'echo stopping; exit 3' TERM; echo trapped; sleep 3600 & wait",
            ],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        logged(&rt, &id, "trapped").await;
        let (code, _) = rt.exec(&id, &["kill".into(), "1".into()]).await.unwrap();
        assert_eq!(code, 0);
        let mut exits = rt.exits();
        while !matches!(rt.state(&id), Some(ProcessState::Exited { .. })) {
            exits.changed().await.unwrap();
        }
        assert!(matches!(
            rt.state(&id),
            Some(ProcessState::Exited { code: 3, .. })
        ));
        assert_eq!(rt.logs(&id).unwrap(), b"trapped\nstopping\n");
    }

    #[tokio::test]
    async fn an_unknown_binary_fails_to_start() {
        let rt = SimRuntime::new(Clock::real());
        let id = rt.create_container(config(
            "busybox",
            &["python", "app.py"],
            "127.0.0.1".parse().unwrap(),
        ));
        rt.start_container(&id).await.unwrap();
        match rt.state(&id) {
            Some(ProcessState::StartFailed { message, .. }) => assert!(
                message.contains("exec: \"python\": executable file not found in $PATH"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// Wait (a little wall time) until something listens on `ip:port`.
    async fn listening(ip: IpAddr, port: u16) {
        for _ in 0..500 {
            if tokio::net::TcpStream::connect((ip, port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("nothing listens on {ip}:{port}");
    }

    async fn exec_text(rt: &SimRuntime, id: &str, script: &str) -> (i32, String) {
        let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let (code, out) = rt.exec(id, &argv).await.unwrap();
        (code, String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn a_shell_reaches_other_pods_from_its_own_ip_and_nothing_else() {
        let rt = SimRuntime::new(Clock::new(1000.0));
        let web: IpAddr = "127.77.9.1".parse().unwrap();
        let netexec: IpAddr = "127.77.9.2".parse().unwrap();
        let client: IpAddr = "127.77.9.3".parse().unwrap();
        let nginx = rt.create_container(config("nginx", &[], web));
        rt.start_container(&nginx).await.unwrap();
        let mut c = config("registry.k8s.io/e2e-test-images/agnhost:2.53", &[], netexec);
        c.pod_name = "netexec".into();
        c.args = vec![
            "netexec".into(),
            "--http-port=8080".into(),
            "--udp-port=8081".into(),
        ];
        let agnhost = rt.create_container(c);
        rt.start_container(&agnhost).await.unwrap();
        let shell = rt.create_container(config("busybox", &["sleep", "3600"], client));
        rt.start_container(&shell).await.unwrap();
        listening(web, 80).await;
        listening(netexec, 8080).await;
        let (code, out) = exec_text(
            &rt,
            &shell,
            "wget -q -O - http://127.77.9.1/ | grep '<h1>'
             wget -q -O - http://127.77.9.2:8080/clientip; echo
             wget -q -O - http://127.77.9.2:8080/hostname; echo
             nc -z -w 1 127.77.9.2 8080; echo open $?
             nc -z -w 1 127.77.9.2 8079; echo closed $?
             echo hostname | nc -u -w 1 127.77.9.2 8081; echo
             wget -T 1 -q -O - http://10.96.0.1/; echo clusterip $?
             nc -w 2 10.96.0.1 80 </dev/null; echo clusterip $?",
        )
        .await;
        assert_eq!(code, 0, "{out}");
        // exec's output: stdout, then stderr.
        let (first, rest) = out.split_at(out.find("netexec\n").unwrap_or(0));
        assert!(
            first.starts_with("<h1>Welcome to nginx!</h1>\n127.77.9.3:"),
            "{out}"
        );
        assert_eq!(
            rest,
            "netexec\nopen 0\nclosed 1\nnetexec\nclusterip 1\nclusterip 1\nwget: download timed out\n"
        );
        // In the web server's own container, localhost is its pod.
        let (code, out) = exec_text(&rt, &nginx, "wget -qO- localhost | grep '<title>'").await;
        assert_eq!(
            (code, out.as_str()),
            (0, "<title>Welcome to nginx!</title>\n")
        );
        for id in [&nginx, &agnhost, &shell] {
            rt.stop_container(id, Duration::from_secs(1)).await;
        }
    }

    #[tokio::test]
    async fn a_shell_runs_as_the_container_s_user() {
        let rt = SimRuntime::new(Clock::new(1000.0));
        let mut c = config("busybox", &["sleep", "3600"], "127.77.9.4".parse().unwrap());
        c.files.insert("/etc/motd".into(), b"hi\n".to_vec());
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o755));
        volume.write_file("/key", b"v", false, 0o644).unwrap();
        c.mounts = vec![Mount::new("/etc/cm", volume).read_only(true)];
        c.identity = Identity {
            uid: 1000,
            gid: 3000,
            groups: vec![4000, 2000],
            umask: 0o022,
        };
        let id = rt.create_container(c);
        rt.start_container(&id).await.unwrap();
        let (code, out) = exec_text(
            &rt,
            &id,
            "id; whoami; echo x >> /etc/motd; touch /new; mkdir /dir; rm /etc/motd; rm /etc/cm/key
             touch /tmp/mine && echo x > /tmp/mine && cat /tmp/mine && rm /tmp/mine && echo done",
        )
        .await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out,
            "uid=1000 gid=3000 groups=2000,3000,4000\nx\ndone\n\
             whoami: unknown uid 1000\n\
             sh: can't create /etc/motd: Permission denied\n\
             touch: /new: Permission denied\n\
             mkdir: can't create directory '/dir': Permission denied\n\
             rm: can't remove '/etc/motd': Permission denied\n\
             rm: can't remove '/etc/cm/key': Read-only file system\n"
        );
        rt.stop_container(&id, Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn agnhost_liveness_serves_healthz_on_the_pod_ip() {
        let rt = SimRuntime::new(Clock::new(1.0));
        let ip: IpAddr = "127.77.0.5".parse().unwrap();
        let mut c = config("registry.k8s.io/e2e-test-images/agnhost:2.53", &[], ip);
        c.args = vec!["liveness".into()];
        let id = rt.create_container(c);
        rt.start_container(&id).await.unwrap();
        let mut body = String::new();
        for _ in 0..50 {
            if let Ok(mut s) = tokio::net::TcpStream::connect((ip, 8080)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
                s.read_to_string(&mut body).await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(body.starts_with("HTTP/1.0 200"), "{body}");
        rt.stop_container(&id, Duration::from_secs(1)).await;
    }

    /// A registry served by `registry_router`, as `kubespec component registry` serves it.
    async fn served_registry() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(crate::server::serve(
            listener,
            registry_router(Registry::new()),
            crate::server::Limits::new(crate::server::Limits::SMALL),
            std::future::pending(),
        ));
        (url, task)
    }

    #[tokio::test]
    async fn a_node_pulls_only_what_the_registry_process_still_holds() {
        let (url, server) = served_registry().await;
        let node = SimRuntime::with_registry(
            Clock::new(1000.0),
            Vec::new(),
            Registry::remote(&url),
            Netfilter::new(),
        );
        node.pull_image("busybox:1.36")
            .await
            .expect("pulls while available");
        let answer = set_remote_availability(&url, "busybox:1.36", false)
            .await
            .expect("withdraw");
        assert_eq!(answer.reference, "docker.io/library/busybox:1.36");
        assert!(!answer.available);
        let err = node
            .pull_image("busybox:1.36")
            .await
            .expect_err("withdrawn");
        assert!(
            err.to_string()
                .contains("docker.io/library/busybox:1.36: not found"),
            "{err}"
        );
        // Other images are untouched, and the image comes back.
        node.pull_image("nginx:1.27").await.expect("another image");
        set_remote_availability(&url, "busybox:1.36", true)
            .await
            .expect("bring back");
        node.pull_image("busybox:1.36")
            .await
            .expect("available again");
        // An invalid reference is refused with the reason.
        let bad = set_remote_availability(&url, "UPPER/case", false)
            .await
            .expect_err("invalid reference");
        assert!(bad.contains("400"), "{bad}");
        server.abort();
        let _ = server.await;
        let err = node
            .pull_image("busybox:1.36")
            .await
            .expect_err("no registry");
        assert!(
            err.to_string().contains("cannot reach the registry"),
            "{err}"
        );
    }
}
