//! The containers target: the reference components, each in its own Docker container, so process
//! and network boundaries are real and faults are real kills.
//!
//! Per scenario: a private Docker network; one container for the apiserver (its port mapped to
//! 127.0.0.1 on the host for the harness, nowhere else), one per controller-manager replica, one
//! per scheduler replica, and one per node running `kubespec component kubelet --kube-proxy
//! --overlay` (a node machine runs its kubelet and its kube-proxy; the overlay carries pod
//! traffic between nodes). Every component reaches the apiserver by its container name on that
//! network, as separate machines would, and every process reads one cluster clock: they are
//! all given the cluster's epoch and time scale.
//!
//! Faults are Docker's: a killed leader is `docker kill`ed (SIGKILL), a stopped one `docker
//! stop`ped (SIGTERM: it shuts down as it would on a real machine), a node's kubelet is
//! stopped, killed or started again with its container, a node is frozen and thawed with
//! `docker pause`/`unpause`, and cut off the network and put back with `docker network
//! disconnect`/`connect`. The nodes pull from one image registry, a container of its own, so
//! an image withdrawn there is gone for every node.
//!
//! Every container and network carries the labels [`RUN_LABEL`] (this run), [`PID_LABEL`] (the
//! process that made it) and [`SCENARIO_LABEL`]. A scenario's are removed when it ends (unless
//! kept), a run's when it is interrupted (Ctrl-C, SIGTERM), and a crashed run's at the start of
//! the next (its process is gone).
//!
//! The image ([`image`]) is a static kubespec binary `FROM scratch`, built locally because
//! nothing can be pulled. `cluster` brings one scenario's cluster up and puts it through its
//! faults; `resources` finds and removes the run's containers and networks by their labels. This module must not know about Gherkin or the harness; it reaches
//! Docker through testcontainers and the bollard client it lends.

mod cluster;
pub mod image;
mod resources;

use std::collections::BTreeSet;
use std::time::Duration;

use testcontainers::bollard::Docker;

use self::cluster::ContainersCluster;
pub use self::resources::remove_labelled;
use self::resources::{prune_images, remove_on_interrupt, sweep_crashed};
use super::{random_name, Capability, Cluster, Result, ScenarioInfo, Target, Topology};

/// The label naming the run (one `kubespec test`) a container or network belongs to.
pub const RUN_LABEL: &str = "io.kubespec.run";
/// The label naming the process that made it (a crashed run's are swept by the next).
pub const PID_LABEL: &str = "io.kubespec.pid";
/// The label naming the scenario's cluster it belongs to.
pub const SCENARIO_LABEL: &str = "io.kubespec.cluster";

/// Kept containers' names start with this; sweeps leave them alone.
pub const KEPT_PREFIX: &str = "kept-";

/// The port the apiserver listens on inside its container.
const APISERVER_PORT: u16 = 6443;
/// The port the image registry listens on inside its container.
const REGISTRY_PORT: u16 = 5000;
/// The port of each kubelet's server inside its container (upstream's).
const KUBELET_PORT: u16 = 10250;
/// Where the components find their kubeconfig, CA bundle and static pod manifests.
const KUBECONFIG_PATH: &str = "/etc/kubespec/kubeconfig";
const CA_PATH: &str = "/etc/kubespec/ca.crt";
const MANIFESTS_DIR: &str = "/etc/kubespec/manifests";
const IMAGE_MODELS_PATH: &str = "/etc/kubespec/image-models.yaml";
/// How long a graceful stop may take before Docker kills (upstream's termination grace).
const STOP_GRACE_SECONDS: i32 = 10;
/// How long a cluster may take to come up (wall time).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The most nodes a scenario may ask of this target (each is a container).
pub const MAX_NODES: usize = 10;
/// The most replicas of a control-plane component.
pub const MAX_REPLICAS: usize = 5;

/// Errors of the containers target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image could not be had.
    #[error(transparent)]
    Image(#[from] image::Error),
    /// Docker refused a request.
    #[error("cannot {what}: {source}")]
    Docker {
        /// What was being done.
        what: String,
        /// Docker's answer.
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
    /// A container did not start.
    #[error("cannot start the {what} container: {source}")]
    Start {
        /// Which.
        what: String,
        /// testcontainers' error.
        #[source]
        source: testcontainers::TestcontainersError,
    },
    /// The cluster did not come up.
    #[error("the containerized cluster {cluster} was not ready within {timeout:?}: still missing {missing}")]
    NotReady {
        /// The cluster's name.
        cluster: String,
        /// How long it had.
        timeout: Duration,
        /// What was missing.
        missing: String,
    },
    /// A node or component the fault names is not there.
    #[error("{0}")]
    Missing(String),
}

impl From<Error> for super::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::NotReady { .. } => super::Error::Timeout(e.to_string()),
            other => super::Error::Containers(Box::new(other)),
        }
    }
}

fn docker_error(
    what: impl Into<String>,
) -> impl FnOnce(testcontainers::bollard::errors::Error) -> Error {
    let what = what.into();
    move |source| Error::Docker { what, source }
}

/// Settings and state of the containers target for one run.
pub struct Containers {
    /// The user's image models (the YAML of `--image-models`, already validated), given to every
    /// node.
    pub image_models: Option<String>,
    time_scale: f64,
    image: image::Image,
    docker: Docker,
    run: String,
    clusters: std::cell::Cell<usize>,
    interrupt: tokio::task::JoinHandle<()>,
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.interrupt.abort();
    }
}

/// Where the image's binary comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// This very executable, when it is static (a `kubespec` built with `+crt-static`).
    CurrentExe,
    /// Build the static binary from sources (needs cargo and the kubespec sources).
    Build(image::StaticBuild),
}

impl Default for ImageSource {
    /// This executable when it is static, else a build from the sources it was compiled from.
    fn default() -> Self {
        match std::env::current_exe()
            .ok()
            .and_then(|exe| std::fs::read(exe).ok())
        {
            Some(bytes) if image::needs_loader(&bytes).is_none() => Self::CurrentExe,
            _ => Self::Build(image::StaticBuild::default()),
        }
    }
}

impl Containers {
    /// Reach Docker, sweep what crashed runs left, and make sure the image exists (building the
    /// static binary when needed: minutes the first time). Interrupting the process (Ctrl-C,
    /// SIGTERM) removes this run's containers and networks before it exits.
    ///
    /// # Errors
    /// No Docker Engine answers (the message says how to fix it), or the image cannot be
    /// built.
    pub async fn new(time_scale: f64, source: ImageSource) -> Result<Self> {
        let docker = image::docker().await.map_err(Error::from)?;
        sweep_crashed(&docker).await;
        let image = match source {
            ImageSource::CurrentExe => {
                let exe = std::env::current_exe().map_err(|source| super::Error::Io {
                    path: "the current executable".into(),
                    source,
                })?;
                image::ensure_image(&exe).await
            }
            ImageSource::Build(build) => image::build(&build).await,
        }
        .map_err(Error::from)?;
        prune_images(&docker, &image).await;
        let run = random_name(8);
        let interrupt = tokio::spawn(remove_on_interrupt(docker.clone(), run.clone()));
        Ok(Self {
            image_models: None,
            time_scale,
            image,
            docker,
            run,
            clusters: std::cell::Cell::new(0),
            interrupt,
        })
    }

    /// This run's name (the value of [`RUN_LABEL`]).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The image the containers run.
    pub fn image(&self) -> &image::Image {
        &self.image
    }
}

#[async_trait::async_trait(?Send)]
impl Target for Containers {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn capabilities(&self) -> BTreeSet<Capability> {
        use Capability::*;
        [
            AcceleratedTime,
            Topology,
            KillLeader,
            StopLeader,
            StopNode,
            AddNode,
            StaticPods,
            ImageUnavailable,
            PartitionNode,
            PauseNode,
            ControlPlanePods,
        ]
        .into_iter()
        .collect()
    }

    fn unsupported(&self, topology: &Topology) -> Option<String> {
        topology.beyond(self.name(), MAX_NODES, MAX_REPLICAS)
    }

    fn time_scale(&self) -> f64 {
        self.time_scale
    }

    async fn provision(
        &self,
        scenario: &ScenarioInfo,
        topology: &Topology,
    ) -> Result<Box<dyn Cluster>> {
        let n = self.clusters.get();
        self.clusters.set(n + 1);
        let name = format!("ks-{}-{n}", self.run);
        let cluster = ContainersCluster::start(self, name, scenario, topology).await?;
        Ok(Box::new(cluster))
    }
}
