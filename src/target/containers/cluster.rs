//! One scenario's cluster of containers: bringing it up, its faults, keeping or removing it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use testcontainers::bollard::models::NetworkDisconnectRequest;
use testcontainers::bollard::query_parameters::{
    KillContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::resources::{create_network, remove_labelled};
use super::{
    docker_error, image, random_name, Containers, Error, APISERVER_PORT, CA_PATH,
    IMAGE_MODELS_PATH, KEPT_PREFIX, KUBECONFIG_PATH, KUBELET_PORT, MANIFESTS_DIR, PID_LABEL,
    READY_TIMEOUT, REGISTRY_PORT, RUN_LABEL, SCENARIO_LABEL, STOP_GRACE_SECONDS,
};
use crate::clock::Clock;
use crate::target::{Cluster, Elected, Fault, Result, ScenarioInfo, Topology};

/// What a container runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Apiserver,
    Registry,
    Leader(Elected),
    Node(String),
}

pub(super) fn labels(run: &str, cluster: &str, role: &Role) -> Vec<(&'static str, String)> {
    let role = match role {
        Role::Apiserver => "apiserver".to_string(),
        Role::Registry => "registry".to_string(),
        Role::Leader(e) => e.to_string(),
        Role::Node(n) => format!("node/{n}"),
    };
    vec![
        (RUN_LABEL, run.to_string()),
        (PID_LABEL, std::process::id().to_string()),
        (SCENARIO_LABEL, cluster.to_string()),
        ("io.kubespec.role", role),
    ]
}

/// The flags every component shares: the cluster's clock (its epoch and scale), so every
/// process reads the same cluster time.
pub(super) fn clock_args(clock: &Clock) -> Vec<String> {
    vec![
        "--time-scale".into(),
        clock.scale().to_string(),
        "--cluster-epoch".into(),
        clock
            .epoch()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    ]
}

pub(super) fn base_request(
    image: GenericImage,
    network: &str,
    name: &str,
    labels: Vec<(&'static str, String)>,
    args: Vec<String>,
) -> testcontainers::ContainerRequest<GenericImage> {
    let mut request = image
        .with_cmd(args)
        .with_container_name(name)
        // Lease identities start with the host name: this is how a leader's container is found.
        .with_hostname(name)
        .with_network(network)
        .with_env_var(crate::host::CONTAINER_ENV, "1")
        .with_startup_timeout(Duration::from_secs(60));
    for (k, v) in labels {
        request = request.with_label(k, v);
    }
    request
}

/// The node whose kubelet runs the control plane's static pods.
const FIRST_NODE: &str = "node-1";

/// Where a controller-manager container serves its health checks (upstream's port).
const CONTROLLER_MANAGER_HEALTH_PORT: u16 = 10257;
/// Where a scheduler container serves its health checks (upstream's port).
const SCHEDULER_HEALTH_PORT: u16 = 10259;

pub(super) async fn start_apiserver(
    target: &Containers,
    network: &str,
    name: &str,
    clock: &Clock,
    kubelet_token: &str,
) -> Result<ContainerAsync<GenericImage>> {
    let mut args: Vec<String> = vec!["component".into(), "apiserver".into()];
    args.extend(clock_args(clock));
    args.extend(["--kubelet-token".into(), kubelet_token.to_string()]);
    // componentstatus checks the first controller-manager and scheduler, as upstream checks
    // the ones on the apiserver's machine.
    for (component, port) in [
        ("controller-manager", CONTROLLER_MANAGER_HEALTH_PORT),
        ("scheduler", SCHEDULER_HEALTH_PORT),
    ] {
        args.extend([
            "--component-status".into(),
            format!("{component}=http://{network}-{component}-1:{port}/healthz"),
        ]);
    }
    start_published(
        target,
        network,
        name,
        Role::Apiserver,
        APISERVER_PORT,
        args,
        "kubespec apiserver listening",
    )
    .await
}

/// The cluster's image registry, which every node asks before a pull.
pub(super) async fn start_registry(
    target: &Containers,
    network: &str,
    name: &str,
) -> Result<ContainerAsync<GenericImage>> {
    let args = vec!["component".into(), "registry".into()];
    start_published(
        target,
        network,
        name,
        Role::Registry,
        REGISTRY_PORT,
        args,
        "kubespec registry listening",
    )
    .await
}

/// Start a server component (`args`, then `--address 0.0.0.0 --port <port>`) with its port
/// published on the host's loopback only, so that nothing outside this machine reaches it;
/// ready once it prints `ready_line`.
async fn start_published(
    target: &Containers,
    network: &str,
    name: &str,
    role: Role,
    port: u16,
    mut args: Vec<String>,
    ready_line: &str,
) -> Result<ContainerAsync<GenericImage>> {
    args.extend([
        "--address".into(),
        "0.0.0.0".into(),
        "--port".into(),
        port.to_string(),
    ]);
    let labels = labels(&target.run, network, &role);
    base_request(
        target
            .image
            .generic()
            .with_exposed_port(ContainerPort::Tcp(port)),
        network,
        name,
        labels,
        args,
    )
    .with_ready_conditions(vec![WaitFor::message_on_stdout(ready_line)])
    .with_host_config_modifier(move |host| {
        host.port_bindings = Some(HashMap::from([(
            format!("{port}/tcp"),
            Some(vec![testcontainers::bollard::models::PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )]));
    })
    .start()
    .await
    .map_err(|source| {
        Error::Start {
            what: name.to_string(),
            source,
        }
        .into()
    })
}

/// The host port (on 127.0.0.1) `port` of the container is published at.
async fn published_port(container: &ContainerAsync<GenericImage>, port: u16) -> Result<u16> {
    container
        .get_host_port_ipv4(ContainerPort::Tcp(port))
        .await
        .map_err(|source| {
            Error::Start {
                what: format!("{} (its published port {port})", container.id()),
                source,
            }
            .into()
        })
}

/// The container's address on `network`.
pub(super) async fn container_ip(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<IpAddr> {
    let inspect = docker
        .inspect_container(container, None)
        .await
        .map_err(docker_error(format!("inspect the container {container}")))?;
    inspect
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|e| e.ip_address)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| {
            Error::Missing(format!(
                "the container {container} has no address on the network {network}"
            ))
            .into()
        })
}

/// The cluster's CA certificate, as the apiserver publishes it: the components' CA bundle
/// (kube's client insists on one even for http).
pub(super) async fn cluster_ca(client: &kube::Client, url: &str) -> Result<String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "kube-system");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match api.get_opt("extension-apiserver-authentication").await {
            Ok(Some(cm)) => match cm.data.and_then(|mut d| d.remove("client-ca-file")) {
                Some(ca) => return Ok(ca),
                None => "the ConfigMap has no client-ca-file".to_string(),
            },
            Ok(None) => "no such ConfigMap".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(crate::target::Error::Timeout(format!(
                "the apiserver at {url} published no CA in kube-system/extension-apiserver-authentication within 30s (last: {last})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) struct Member {
    /// The container's name (and host name).
    name: String,
    role: Role,
    /// `None` once removed.
    container: Option<ManuallyDrop<ContainerAsync<GenericImage>>>,
}

/// How a node is sized.
pub(super) struct NodeSpec {
    cpu: String,
    memory: String,
}

pub(super) struct ContainersCluster {
    docker: Docker,
    image: image::Image,
    name: String,
    run: String,
    clock: Clock,
    namespace: String,
    client: kube::Client,
    /// The apiserver on the host (127.0.0.1 and the mapped port).
    host_url: String,
    /// The apiserver on the cluster's network.
    internal_url: String,
    /// The image registry on the host (127.0.0.1 and the mapped port).
    registry_host_url: String,
    /// The image registry on the cluster's network.
    registry_internal_url: String,
    kubelet_token: String,
    ca: String,
    defaults: NodeSpec,
    /// Pod ranges handed out so far (`127.<n>.0.0/16`).
    next_range: std::cell::Cell<u8>,
    members: RefCell<Vec<Member>>,
    /// The user's image models, for every node.
    image_models: Option<String>,
    /// Containers cut off the network, and the address each had on it.
    cut_off: RefCell<HashMap<String, IpAddr>>,
    torn_down: bool,
}

impl ContainersCluster {
    /// Bring a cluster up for `scenario` with `topology`; what was made goes again on a failure.
    pub(super) async fn start(
        target: &Containers,
        name: String,
        scenario: &ScenarioInfo,
        topology: &Topology,
    ) -> Result<Self> {
        let docker = target.docker.clone();
        let started = Instant::now();
        let labels = [
            (RUN_LABEL, target.run.clone()),
            (PID_LABEL, std::process::id().to_string()),
            (SCENARIO_LABEL, name.clone()),
        ];
        create_network(&docker, &name, &labels).await?;
        let result = Self::bring_up(target, &name, scenario, topology).await;
        match result {
            Ok(cluster) => {
                tracing::info!(cluster = %name, elapsed = ?started.elapsed(), "containerized cluster ready");
                Ok(cluster)
            }
            Err(e) => {
                // Whatever was made goes.
                remove_labelled(&docker, SCENARIO_LABEL, &name).await;
                Err(e)
            }
        }
    }

    async fn bring_up(
        target: &Containers,
        name: &str,
        scenario: &ScenarioInfo,
        topology: &Topology,
    ) -> Result<Self> {
        let defaults = crate::cluster::ClusterConfig::default();
        let clock = Clock::new(target.time_scale);
        let kubelet_token = random_name(32);
        let apiserver = format!("{name}-apiserver");
        let registry = format!("{name}-registry");
        let (started_apiserver, started_registry) = futures::future::join(
            start_apiserver(target, name, &apiserver, &clock, &kubelet_token),
            start_registry(target, name, &registry),
        )
        .await;
        // On an error from here on, `start` removes whatever carries the cluster's label.
        let (apiserver_container, registry_container) = (started_apiserver?, started_registry?);
        let host_port = published_port(&apiserver_container, APISERVER_PORT).await?;
        let registry_port = published_port(&registry_container, REGISTRY_PORT).await?;
        let members = vec![
            Member {
                name: apiserver.clone(),
                role: Role::Apiserver,
                container: Some(ManuallyDrop::new(apiserver_container)),
            },
            Member {
                name: registry.clone(),
                role: Role::Registry,
                container: Some(ManuallyDrop::new(registry_container)),
            },
        ];
        let host_url = format!("http://127.0.0.1:{host_port}");
        let registry_host_url = format!("http://127.0.0.1:{registry_port}");
        let client = crate::cluster::client_for(&host_url)?;
        let ca = cluster_ca(&client, &host_url).await?;
        let cluster = Self {
            docker: target.docker.clone(),
            image: target.image.clone(),
            name: name.to_string(),
            run: target.run.clone(),
            clock,
            namespace: crate::target::namespace_for(&scenario.name),
            client,
            host_url,
            // By container name, which Docker's DNS on the network resolves, as separate
            // machines would name it.
            internal_url: format!("http://{apiserver}:{APISERVER_PORT}"),
            registry_host_url,
            registry_internal_url: format!("http://{registry}:{REGISTRY_PORT}"),
            kubelet_token,
            ca,
            defaults: NodeSpec {
                cpu: topology.node_cpu.clone().unwrap_or(defaults.node_cpu),
                memory: topology.node_memory.clone().unwrap_or(defaults.node_memory),
            },
            next_range: std::cell::Cell::new(10),
            members: RefCell::new(members),
            image_models: target.image_models.clone(),
            cut_off: RefCell::default(),
            torn_down: false,
        };
        let mut starts = Vec::new();
        for i in 1..=topology.controller_managers.unwrap_or(1) {
            starts.push(cluster.component_request(
                format!("{name}-controller-manager-{i}"),
                Role::Leader(Elected::ControllerManager),
            ));
        }
        for i in 1..=topology.schedulers.unwrap_or(1) {
            starts.push(cluster.component_request(
                format!("{name}-scheduler-{i}"),
                Role::Leader(Elected::Scheduler),
            ));
        }
        for i in 1..=topology.nodes.unwrap_or(1) {
            let node = format!("node-{i}");
            let (cpu, memory) = (
                cluster.defaults.cpu.clone(),
                cluster.defaults.memory.clone(),
            );
            starts.push(cluster.node_request(&node, &cpu, &memory));
        }
        let started =
            futures::future::join_all(starts.into_iter().map(|(name, role, request)| async move {
                let what = name.clone();
                let result = request
                    .start()
                    .await
                    .map_err(|source| Error::Start { what, source });
                (name, role, result)
            }))
            .await;
        let mut first_error = None;
        for (name, role, result) in started {
            match result {
                Ok(c) => cluster.members.borrow_mut().push(Member {
                    name,
                    role,
                    container: Some(ManuallyDrop::new(c)),
                }),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(cluster.fail(e.into()).await);
        }
        if let Err(e) = cluster.ready(READY_TIMEOUT).await {
            return Err(cluster.fail(e).await);
        }
        // kubeadm's addon phase: kube-proxy's DaemonSet (each node container runs the proxy).
        if let Err(source) =
            crate::cluster::addons::install_kube_proxy(&cluster.client, &cluster.internal_url).await
        {
            let e = crate::target::Error::Api {
                what: "install the kube-proxy addon".into(),
                source,
            };
            return Err(cluster.fail(e).await);
        }
        if let Err(e) = crate::target::create_namespace(
            &cluster.client,
            &cluster.namespace,
            &[("kubespec.io/scenario", "true")],
            Duration::from_secs(30),
        )
        .await
        {
            return Err(cluster.fail(e).await);
        }
        Ok(cluster)
    }

    /// Remove the cluster after a failure to bring it up; returns the error.
    async fn fail(mut self, e: crate::target::Error) -> crate::target::Error {
        self.torn_down = true;
        self.remove_all().await;
        e
    }

    fn labels(&self, role: &Role) -> Vec<(&'static str, String)> {
        labels(&self.run, &self.name, role)
    }

    /// The flags every component shares: the cluster's clock.
    fn clock_args(&self) -> Vec<String> {
        clock_args(&self.clock)
    }

    fn base_request(
        &self,
        name: &str,
        role: &Role,
        args: Vec<String>,
    ) -> testcontainers::ContainerRequest<GenericImage> {
        base_request(
            self.image.generic(),
            &self.name,
            name,
            self.labels(role),
            args,
        )
    }

    /// A component's files: its kubeconfig and the CA bundle.
    fn with_files(
        &self,
        request: testcontainers::ContainerRequest<GenericImage>,
    ) -> testcontainers::ContainerRequest<GenericImage> {
        request
            .with_copy_to(
                KUBECONFIG_PATH,
                crate::cluster::kubeconfig_for(&self.internal_url).into_bytes(),
            )
            .with_copy_to(CA_PATH, self.ca.clone().into_bytes())
            .with_env_var("SSL_CERT_FILE", CA_PATH)
    }

    fn component_request(
        &self,
        name: String,
        role: Role,
    ) -> (String, Role, testcontainers::ContainerRequest<GenericImage>) {
        let (component, health_port) = match &role {
            Role::Leader(Elected::ControllerManager) => {
                ("controller-manager", CONTROLLER_MANAGER_HEALTH_PORT)
            }
            _ => ("scheduler", SCHEDULER_HEALTH_PORT),
        };
        let mut args: Vec<String> = vec![
            "component".into(),
            component.into(),
            "--kubeconfig".into(),
            KUBECONFIG_PATH.into(),
            "--health-port".into(),
            health_port.to_string(),
            "--health-address".into(),
            "0.0.0.0".into(),
        ];
        args.extend(self.clock_args());
        let request = self.with_files(self.base_request(&name, &role, args));
        (name, role, request)
    }

    /// The control plane the first node's static pods describe: the apiserver and the first
    /// replica of each elected component, by container name.
    fn control_plane(&self) -> crate::cluster::control_plane::ControlPlane {
        use crate::cluster::control_plane::{ControlPlane, Endpoint};
        ControlPlane {
            apiserver: Some(Endpoint::new(
                format!("{}-apiserver", self.name),
                APISERVER_PORT,
            )),
            controller_manager: Some(Endpoint::new(
                format!("{}-controller-manager-1", self.name),
                CONTROLLER_MANAGER_HEALTH_PORT,
            )),
            scheduler: Some(Endpoint::new(
                format!("{}-scheduler-1", self.name),
                SCHEDULER_HEALTH_PORT,
            )),
            etcd: None,
        }
    }

    fn node_request(
        &self,
        node: &str,
        cpu: &str,
        memory: &str,
    ) -> (String, Role, testcontainers::ContainerRequest<GenericImage>) {
        let name = format!("{}-{node}", self.name);
        let range = self.next_range.get();
        self.next_range.set(range.wrapping_add(1).max(10));
        let mut args: Vec<String> = vec![
            "component".into(),
            "kubelet".into(),
            "--kubeconfig".into(),
            KUBECONFIG_PATH.into(),
            "--node-name".into(),
            node.into(),
            "--cpu".into(),
            cpu.into(),
            "--memory".into(),
            memory.into(),
            "--port".into(),
            KUBELET_PORT.to_string(),
            "--auth-token".into(),
            self.kubelet_token.clone(),
            "--pod-cidr".into(),
            format!("127.{range}.0"),
            "--pod-manifest-path".into(),
            MANIFESTS_DIR.into(),
            "--kube-proxy".into(),
            "--overlay".into(),
            "--registry-url".into(),
            self.registry_internal_url.clone(),
        ];
        args.extend(self.clock_args());
        if self.image_models.is_some() {
            args.extend(["--image-models".into(), IMAGE_MODELS_PATH.into()]);
        }
        let role = Role::Node(node.to_string());
        let mut request = self.with_files(self.base_request(&name, &role, args));
        if let Some(models) = &self.image_models {
            request = request.with_copy_to(IMAGE_MODELS_PATH, models.clone().into_bytes());
        }
        let mut request = request
            // The manifests directory exists from the start (a dot file is never a manifest).
            .with_copy_to(format!("{MANIFESTS_DIR}/.keep"), Vec::new());
        if node == FIRST_NODE {
            // As kubeadm's first node: the control plane's static pods, probing the components'
            // containers by name on the cluster's network.
            for (file, yaml) in self.control_plane().manifests() {
                request =
                    request.with_copy_to(format!("{MANIFESTS_DIR}/{file}"), yaml.into_bytes());
            }
        }
        (name, role, request)
    }

    /// Wait until every node container's node is Ready and each elected component has a leader
    /// among this cluster's containers.
    async fn ready(&self, timeout: Duration) -> Result<()> {
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::Node;
        let nodes_api: kube::Api<Node> = kube::Api::all(self.client.clone());
        let leases: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), "kube-system");
        let deadline = Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            let listed = nodes_api.list(&Default::default()).await.ok();
            let wanted: Vec<String> = self
                .members
                .borrow()
                .iter()
                .filter_map(|m| match &m.role {
                    Role::Node(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            for node in wanted {
                let ready = listed.as_ref().is_some_and(|l| {
                    l.items.iter().any(|n| {
                        n.metadata.name.as_deref() == Some(&node) && crate::k8s::node_is_ready(n)
                    })
                });
                if !ready {
                    missing.push(format!("node {node} Ready"));
                }
            }
            for component in [Elected::ControllerManager, Elected::Scheduler] {
                let holder = leases
                    .get_opt(component.lease_name())
                    .await
                    .ok()
                    .flatten()
                    .and_then(|l| l.spec?.holder_identity)
                    .unwrap_or_default();
                if self.holder_container(&holder).is_none() {
                    missing.push(format!("a {component} leader"));
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    cluster: self.name.clone(),
                    timeout,
                    missing: missing.join(", "),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The container whose replica holds a Lease (identities are `<host name>_<uuid>`, and a
    /// container's host name is its name).
    fn holder_container(&self, holder: &str) -> Option<String> {
        let host = holder.rsplit_once('_').map(|(h, _)| h)?;
        self.members
            .borrow()
            .iter()
            .find(|m| m.name == host && matches!(m.role, Role::Leader(_)))
            .map(|m| m.name.clone())
    }

    async fn leader_container(&self, component: Elected) -> Result<(String, String)> {
        use k8s_openapi::api::coordination::v1::Lease;
        let leases: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), "kube-system");
        let holder = leases
            .get_opt(component.lease_name())
            .await
            .map_err(|source| crate::target::Error::Api {
                what: format!("read the {component} Lease"),
                source,
            })?
            .and_then(|l| l.spec?.holder_identity)
            .unwrap_or_default();
        match self.holder_container(&holder) {
            Some(container) => Ok((container, holder)),
            None => Err(Error::Missing(format!(
                "no {component} container of {} holds kube-system/{} (holder: {holder:?})",
                self.name,
                component.lease_name()
            ))
            .into()),
        }
    }

    fn node_container(&self, node: &str) -> Result<String> {
        self.members
            .borrow()
            .iter()
            .find(|m| m.role == Role::Node(node.to_string()))
            .map(|m| m.name.clone())
            .ok_or_else(|| {
                Error::Missing(format!("no node {node} in the cluster {}", self.name)).into()
            })
    }

    async fn kill(&self, container: &str) -> Result<()> {
        self.docker
            .kill_container(
                container,
                Some(KillContainerOptions {
                    signal: "SIGKILL".into(),
                }),
            )
            .await
            .map_err(docker_error(format!("kill the container {container}")))
            .map_err(Into::into)
    }

    async fn stop(&self, container: &str) -> Result<()> {
        self.docker
            .stop_container(
                container,
                Some(StopContainerOptions {
                    t: Some(STOP_GRACE_SECONDS),
                    signal: None,
                }),
            )
            .await
            .map_err(docker_error(format!("stop the container {container}")))
            .map_err(Into::into)
    }

    async fn restart(&self, container: &str) -> Result<()> {
        let running = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(docker_error(format!("inspect the container {container}")))?
            .state
            .and_then(|s| s.running)
            .unwrap_or(false);
        if running {
            self.stop(container).await?;
        }
        self.docker
            .start_container(container, None)
            .await
            .map_err(docker_error(format!("start the container {container}")))
            .map_err(Into::into)
    }

    async fn add_node(&self, node: &str, cpu: Option<&str>, memory: Option<&str>) -> Result<()> {
        if self.node_container(node).is_ok() {
            return Err(crate::cluster::Error::NodeExists(node.to_string()).into());
        }
        let (name, role, request) = self.node_request(
            node,
            cpu.unwrap_or(&self.defaults.cpu),
            memory.unwrap_or(&self.defaults.memory),
        );
        let container = request.start().await.map_err(|source| Error::Start {
            what: name.clone(),
            source,
        })?;
        self.members.borrow_mut().push(Member {
            name,
            role,
            container: Some(ManuallyDrop::new(container)),
        });
        Ok(())
    }

    async fn write_static_pod(&self, node: &str, file: &str, manifest: &str) -> Result<()> {
        let container = self.node_container(node)?;
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, file, manifest.as_bytes())
            .and_then(|()| archive.finish())
            .map_err(|source| crate::target::Error::Io {
                path: format!("{container}:{MANIFESTS_DIR}/{file}"),
                source,
            })?;
        let bytes = archive
            .into_inner()
            .map_err(|source| crate::target::Error::Io {
                path: format!("{container}:{MANIFESTS_DIR}/{file}"),
                source,
            })?;
        self.docker
            .upload_to_container(
                &container,
                Some(UploadToContainerOptions {
                    path: MANIFESTS_DIR.into(),
                    ..Default::default()
                }),
                testcontainers::bollard::body_full(bytes.into()),
            )
            .await
            .map_err(docker_error(format!(
                "write {MANIFESTS_DIR}/{file} in the container {container}"
            )))
            .map_err(Into::into)
    }

    async fn disconnect(&self, node: &str) -> Result<()> {
        let container = self.node_container(node)?;
        let ip = container_ip(&self.docker, &self.name, &container).await?;
        self.cut_off.borrow_mut().insert(container.clone(), ip);
        self.docker
            .disconnect_network(
                &self.name,
                NetworkDisconnectRequest {
                    container: container.clone(),
                    force: Some(true),
                },
            )
            .await
            .map_err(docker_error(format!(
                "disconnect {container} from the network {}",
                self.name
            )))
            .map_err(Into::into)
    }

    async fn reconnect(&self, node: &str) -> Result<()> {
        let container = self.node_container(node)?;
        // The address it had: the node's InternalIP, where its kubelet listens.
        let ip = self
            .cut_off
            .borrow_mut()
            .remove(&container)
            .ok_or_else(|| {
                Error::Missing(format!("node {node} was not cut off from the network"))
            })?;
        self.docker
            .connect_network(
                &self.name,
                testcontainers::bollard::models::NetworkConnectRequest {
                    container: container.clone(),
                    endpoint_config: Some(testcontainers::bollard::models::EndpointSettings {
                        ipam_config: Some(testcontainers::bollard::models::EndpointIpamConfig {
                            ipv4_address: Some(ip.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
            )
            .await
            .map_err(docker_error(format!(
                "connect {container} to the network {}",
                self.name
            )))
            .map_err(Into::into)
    }

    /// Leave the cluster running for the user: its containers are renamed `kept-<name>` (which
    /// the next run's sweep of crashed runs leaves alone) and a kubeconfig for it is written.
    /// Returns how to reach it and remove it.
    async fn keep(&self) -> Result<String> {
        let names: Vec<String> = self
            .members
            .borrow()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        for name in names {
            self.docker
                .rename_container(
                    &name,
                    testcontainers::bollard::query_parameters::RenameContainerOptions {
                        name: format!("{KEPT_PREFIX}{name}"),
                    },
                )
                .await
                .map_err(docker_error(format!("rename the kept container {name}")))?;
        }
        let path = std::env::temp_dir().join(format!("{}.kubeconfig", self.name));
        std::fs::write(&path, crate::cluster::kubeconfig_for(&self.host_url)).map_err(
            |source| crate::target::Error::Io {
                path: path.display().to_string(),
                source,
            },
        )?;
        Ok(format!(
            "kept the cluster {name}: `docker ps --filter label={SCENARIO_LABEL}={name}`, \
             `kubectl --kubeconfig {} get pods -A`; remove it with \
             `docker rm -f $(docker ps -aq --filter label={SCENARIO_LABEL}={name}) && docker network rm {name}`",
            path.display(),
            name = self.name,
        ))
    }

    /// Remove every container and the network of this cluster.
    async fn remove_all(&self) {
        let members: Vec<_> = self
            .members
            .borrow_mut()
            .iter_mut()
            .filter_map(|m| m.container.take())
            .collect();
        futures::future::join_all(members.into_iter().map(|c| async move {
            let id = c.id().to_string();
            if let Err(e) = ManuallyDrop::into_inner(c).rm().await {
                tracing::warn!(%id, cause = %e, "cannot remove container");
            }
        }))
        .await;
        // Anything else (a container whose start failed half-way) and the network.
        remove_labelled(&self.docker, SCENARIO_LABEL, &self.name).await;
    }
}

impl Drop for ContainersCluster {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        // Dropped without a teardown (a panic): remove in the background if a runtime is there;
        // the run's interrupt handler and the next run's sweep catch the rest.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            let name = self.name.clone();
            handle.spawn(async move { remove_labelled(&docker, SCENARIO_LABEL, &name).await });
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Cluster for ContainersCluster {
    fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn describe(&self) -> String {
        format!(
            "the containerized reference cluster {} at {} (time scale {})",
            self.name,
            self.host_url,
            self.clock.scale()
        )
    }

    async fn fault(&self, fault: &Fault) -> Result<String> {
        Ok(match fault {
            Fault::KillLeader(c) => {
                let (container, who) = self.leader_container(*c).await?;
                self.kill(&container).await?;
                format!("killed the container {container} of the leading {c} {who}")
            }
            Fault::StopLeader(c) => {
                let (container, who) = self.leader_container(*c).await?;
                self.stop(&container).await?;
                format!("stopped the container {container} of the leading {c} {who}")
            }
            Fault::StopKubelet(node) => {
                let container = self.node_container(node)?;
                self.stop(&container).await?;
                format!("stopped the container {container} of node {node}")
            }
            Fault::KillKubelet(node) => {
                let container = self.node_container(node)?;
                self.kill(&container).await?;
                format!("killed the container {container} of node {node}")
            }
            Fault::RestartKubelet(node) => {
                let container = self.node_container(node)?;
                self.restart(&container).await?;
                format!("started the container {container} of node {node} again")
            }
            Fault::AddNode { name, cpu, memory } => {
                self.add_node(name, cpu.as_deref(), memory.as_deref())
                    .await?;
                format!("added node {name} in a container of its own")
            }
            Fault::StaticPod {
                node,
                file,
                manifest,
            } => {
                self.write_static_pod(node, file, manifest).await?;
                format!("wrote the static pod manifest {file} on {node}")
            }
            Fault::DisconnectNode(node) => {
                self.disconnect(node).await?;
                format!("disconnected node {node} from the network")
            }
            Fault::ReconnectNode(node) => {
                self.reconnect(node).await?;
                format!("reconnected node {node} to the network")
            }
            Fault::PauseNode(node) => {
                let container = self.node_container(node)?;
                self.docker
                    .pause_container(&container)
                    .await
                    .map_err(docker_error(format!("pause the container {container}")))
                    .map_err(crate::target::Error::from)?;
                format!("paused the container {container} of node {node}")
            }
            Fault::ResumeNode(node) => {
                let container = self.node_container(node)?;
                self.docker
                    .unpause_container(&container)
                    .await
                    .map_err(docker_error(format!("unpause the container {container}")))
                    .map_err(crate::target::Error::from)?;
                format!("unpaused the container {container} of node {node}")
            }
            Fault::ImageAvailable { image, available } => {
                let answer = crate::kubelet::runtime::set_remote_availability(
                    &self.registry_host_url,
                    image,
                    *available,
                )
                .await
                .map_err(|e| crate::target::Error::Unsupported {
                    target: "containers",
                    what: format!("change the availability of {image:?}: {e}"),
                })?;
                format!(
                    "{} is {} in the registry",
                    answer.reference,
                    if answer.available {
                        "available"
                    } else {
                        "unavailable"
                    }
                )
            }
        })
    }

    async fn teardown(mut self: Box<Self>, keep: bool) -> Result<Option<String>> {
        self.torn_down = true;
        if keep {
            return self.keep().await.map(Some);
        }
        self.remove_all().await;
        Ok(None)
    }
}
