//! kube-proxy: keeps one node's Service rules ([`Netfilter`]) in step with the cluster's
//! Services and EndpointSlices, as upstream's iptables proxier does.
//!
//! It watches Services, EndpointSlices and its own Node through the API, and after a change
//! (at most once per `min_sync_period`, upstream's `--iptables-min-sync-period`, 1 s) and every
//! `sync_period` (30 s) computes the whole [`Ruleset`] ([`rules`]) and replaces the node's rules
//! with it. Which endpoints a Service port leads to follows upstream's `CategorizeEndpoints`:
//! the ready ones; when none is ready, the ones still serving while they terminate; with
//! `internalTrafficPolicy: Local`, only those on this node (and none there: dropped). A port
//! with no endpoints at all is rejected.
//!
//! The rules live in the node's kernel. Run inside the process that simulates the node (the
//! embedded cluster), kube-proxy writes them there directly ([`Dataplane`] for
//! `Arc<Netfilter>`); run as a process of its own (`kubespec component kube-proxy`), it sends
//! them to the node's kubelet, which holds the simulated kernel ([`KubeletDataplane`]).

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{EventType, Recorder};
use crate::netfilter::{NoEndpoints, Protocol, Ruleset, ServiceRule, KUBELET_PATH};
use crate::runtime::Informer;

pub use crate::netfilter::Netfilter;

/// The component's name (its user agent and field manager).
pub const COMPONENT: &str = "kube-proxy";

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Slices kube-proxy leaves alone (upstream's informer selector): headless Services', and those
/// of Services another proxy serves.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";

/// How kube-proxy runs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The node whose rules it keeps.
    pub node_name: String,
    /// At most one sync this often (`--iptables-min-sync-period`).
    pub min_sync_period: Duration,
    /// A full sync at least this often (`--iptables-sync-period`).
    pub sync_period: Duration,
}

impl ProxyConfig {
    /// kube-proxy for `node_name` with upstream's periods.
    pub fn new(node_name: &str) -> Self {
        Self {
            node_name: node_name.to_string(),
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
        }
    }
}

/// Where kube-proxy writes a node's rules.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync {
    /// Replace all of the node's rules with `ruleset`.
    async fn program(&self, ruleset: &Ruleset) -> Result<(), String>;
}

#[async_trait::async_trait]
impl Dataplane for Arc<Netfilter> {
    async fn program(&self, ruleset: &Ruleset) -> Result<(), String> {
        Netfilter::program(self, ruleset.clone());
        Ok(())
    }
}

/// A node's rules held by its kubelet in another process, reached where the Node object says
/// its kubelet listens (its InternalIP and `daemonEndpoints.kubeletEndpoint.Port`), with the
/// kubelet's bearer token when it wants one.
pub struct KubeletDataplane {
    nodes: Api<Node>,
    node_name: String,
    token: Option<String>,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl KubeletDataplane {
    /// The kubelet of `node_name`, looked up through `client`.
    pub fn new(client: kube::Client, node_name: &str, token: Option<String>) -> Self {
        Self {
            nodes: Api::all(client),
            node_name: node_name.to_string(),
            token,
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        }
    }

    async fn kubelet(&self) -> Result<SocketAddr, String> {
        let node = self
            .nodes
            .get(&self.node_name)
            .await
            .map_err(|e| format!("cannot read node {}: {e}", self.node_name))?;
        let status = node.status.unwrap_or_default();
        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("node {} names no kubelet port yet", self.node_name))?;
        let ip = node_ips(&status.addresses.unwrap_or_default())
            .into_iter()
            .next()
            .ok_or_else(|| format!("node {} has no InternalIP yet", self.node_name))?;
        Ok(SocketAddr::new(ip, port))
    }
}

#[async_trait::async_trait]
impl Dataplane for KubeletDataplane {
    async fn program(&self, ruleset: &Ruleset) -> Result<(), String> {
        let addr = self.kubelet().await?;
        let body = serde_json::to_vec(ruleset).map_err(|e| e.to_string())?;
        let mut request = http::Request::put(format!("http://{addr}{KUBELET_PATH}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, COMPONENT);
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.http.request(request))
            .await
            .map_err(|_| format!("the kubelet at {addr} did not answer within 10s"))?
            .map_err(|e| format!("cannot reach the kubelet at {addr}: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the kubelet at {addr} refused the rules: {}",
                response.status()
            ))
        }
    }
}

/// A node's addresses where NodePorts listen: its InternalIPs, then its ExternalIPs.
fn node_ips(addresses: &[k8s_openapi::api::core::v1::NodeAddress]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for kind in ["InternalIP", "ExternalIP"] {
        for a in addresses.iter().filter(|a| a.type_ == kind) {
            if let Ok(ip) = a.address.parse::<IpAddr>() {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// One endpoint of a Service port as kube-proxy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Endpoint {
    addr: SocketAddr,
    ready: bool,
    serving: bool,
    terminating: bool,
    local: bool,
}

/// upstream's `filterEndpoints` for one set: the ready ones; when none is ready, the ones
/// serving while terminating.
fn usable(endpoints: &[Endpoint], keep: impl Fn(&Endpoint) -> bool) -> Vec<SocketAddr> {
    let candidates: Vec<&Endpoint> = endpoints.iter().filter(|e| keep(e)).collect();
    let ready: Vec<SocketAddr> = candidates
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.addr)
        .collect();
    if !ready.is_empty() {
        return ready;
    }
    candidates
        .iter()
        .filter(|e| e.serving && e.terminating)
        .map(|e| e.addr)
        .collect()
}

/// `namespace/name` and, for a named port, `:port` (upstream's `ServicePortName`).
fn port_name(namespace: &str, name: &str, port: &str) -> String {
    if port.is_empty() {
        format!("{namespace}/{name}")
    } else {
        format!("{namespace}/{name}:{port}")
    }
}

/// The endpoints of every port of every Service, from the slices: by (namespace, Service name,
/// port name, protocol).
type EndpointMap = BTreeMap<(String, String, String, Protocol), Vec<Endpoint>>;

fn endpoint_map(node_name: &str, slices: &[Arc<EndpointSlice>]) -> EndpointMap {
    let mut out: EndpointMap = BTreeMap::new();
    for slice in slices {
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        if labels.contains_key(HEADLESS_LABEL) || labels.contains_key(SERVICE_PROXY_NAME_LABEL) {
            continue;
        }
        let (Some(service), Some(namespace)) = (
            labels.get(SERVICE_NAME_LABEL),
            slice.metadata.namespace.as_ref(),
        ) else {
            continue;
        };
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        for port in slice.ports.as_deref().unwrap_or_default() {
            let (Some(number), Some(protocol)) = (
                port.port.and_then(|p| u16::try_from(p).ok()),
                Protocol::parse(port.protocol.as_deref()),
            ) else {
                continue;
            };
            let key = (
                namespace.clone(),
                service.clone(),
                port.name.clone().unwrap_or_default(),
                protocol,
            );
            let list = out.entry(key).or_default();
            for e in &slice.endpoints {
                // kube-proxy takes an endpoint's first address.
                let Some(ip) = e.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let conditions = e.conditions.clone().unwrap_or_default();
                let ready = conditions.ready.unwrap_or(true);
                let endpoint = Endpoint {
                    addr: SocketAddr::new(ip, number),
                    ready,
                    serving: conditions.serving.unwrap_or(ready),
                    terminating: conditions.terminating.unwrap_or(false),
                    local: e.node_name.as_deref() == Some(node_name),
                };
                if !list.iter().any(|x| x.addr == endpoint.addr) {
                    list.push(endpoint);
                }
            }
        }
    }
    out
}

/// The rules of node `node_name` (whose NodePorts are on `node_ips`) for `services` and
/// their `slices`.
pub fn rules(
    node_name: &str,
    node_ips: &[IpAddr],
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
) -> Ruleset {
    let endpoints = endpoint_map(node_name, slices);
    let mut out = Vec::new();
    let mut taken: HashSet<(Protocol, SocketAddr)> = HashSet::new();
    let mut sorted: Vec<&Arc<Service>> = services.iter().collect();
    sorted.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    for service in sorted {
        let (Some(spec), Some(namespace), Some(name)) = (
            service.spec.as_ref(),
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ips: Vec<IpAddr> = spec
            .cluster_ips
            .clone()
            .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        // Headless: no virtual IP, nothing to proxy.
        if cluster_ips.is_empty() {
            continue;
        }
        let external_ips: Vec<IpAddr> = spec
            .external_ips
            .iter()
            .flatten()
            .chain(
                service
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip.as_ref()),
            )
            .filter_map(|ip| ip.parse().ok())
            .collect();
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10_800)
        });
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        for port in spec.ports.as_deref().unwrap_or_default() {
            let (Some(protocol), Ok(number)) = (
                Protocol::parse(port.protocol.as_deref()),
                u16::try_from(port.port),
            ) else {
                continue;
            };
            let port_label = port.name.clone().unwrap_or_default();
            let all = endpoints
                .get(&(
                    namespace.to_string(),
                    name.to_string(),
                    port_label.clone(),
                    protocol,
                ))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let cluster = usable(all, |_| true);
            let no_endpoints = if all.is_empty() {
                NoEndpoints::Reject
            } else {
                NoEndpoints::Drop
            };
            let internal = if internal_local {
                usable(all, |e| e.local)
            } else {
                cluster.clone()
            };
            let rule_name = port_name(namespace, name, &port_label);
            let mut add = |frontends: Vec<SocketAddr>, endpoints: Vec<SocketAddr>| {
                let frontends: Vec<SocketAddr> = frontends
                    .into_iter()
                    .filter(|f| taken.insert((protocol, *f)))
                    .collect();
                if !frontends.is_empty() {
                    out.push(ServiceRule {
                        name: rule_name.clone(),
                        protocol,
                        frontends,
                        no_endpoints: if endpoints.is_empty() && !all.is_empty() {
                            no_endpoints
                        } else {
                            NoEndpoints::Reject
                        },
                        endpoints,
                        affinity_seconds,
                    });
                }
            };
            add(
                cluster_ips
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, number))
                    .collect(),
                internal,
            );
            // External addresses. Every connection here comes from a pod, and upstream sends
            // pods' traffic to external addresses to all the Service's endpoints whatever the
            // externalTrafficPolicy (it short-circuits `Local` for cluster-internal sources).
            let mut external: Vec<SocketAddr> = external_ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, number))
                .collect();
            if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) {
                if node_port != 0 {
                    external.extend(node_ips.iter().map(|ip| SocketAddr::new(*ip, node_port)));
                }
            }
            add(external, cluster.clone());
        }
    }
    Ruleset { rules: out }
}

/// The event upstream's kube-proxy records once it runs ("birth cry"): `Starting`, about its
/// Node (referred to by name, with the name as its uid, as upstream's `NodeRef`), without a
/// note, reported by `kube-proxy` from instance `kube-proxy-<host>`.
async fn birth_cry(recorder: &Recorder, node: &str) {
    let node_ref = k8s_openapi::api::core::v1::ObjectReference {
        kind: Some("Node".into()),
        name: Some(node.to_string()),
        uid: Some(node.to_string()),
        ..Default::default()
    };
    recorder
        .record(
            &node_ref,
            EventType::Normal,
            "Starting",
            "StartKubeProxy",
            "",
        )
        .await;
}

/// Run kube-proxy for `config.node_name` until `shutdown`, writing the node's rules to
/// `dataplane`.
pub async fn run(
    client: kube::Client,
    clock: Clock,
    config: ProxyConfig,
    dataplane: Arc<dyn Dataplane>,
    shutdown: CancellationToken,
) {
    let stop = shutdown.child_token();
    let _stop_informers = stop.clone().drop_guard();
    let services: Informer<Service> = Informer::start(
        Api::all(client.clone()),
        watcher::Config::default(),
        stop.clone(),
    );
    let slices: Informer<EndpointSlice> = Informer::start(
        Api::all(client.clone()),
        watcher::Config::default()
            .labels(&format!("!{HEADLESS_LABEL},!{SERVICE_PROXY_NAME_LABEL}")),
        stop.clone(),
    );
    let recorder = Recorder::events_v1(client.clone(), clock.clone(), COMPONENT, &config.node_name);
    let nodes: Informer<Node> = Informer::start(
        Api::all(client),
        watcher::Config::default().fields(&format!("metadata.name={}", config.node_name)),
        stop.clone(),
    );
    let mut changes = (services.subscribe(), slices.subscribe(), nodes.subscribe());
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = async { services.ready().await; slices.ready().await; } => {}
    }
    tracing::info!(node = %config.node_name, "kube-proxy synced its caches");
    birth_cry(&recorder, &config.node_name).await;
    let mut last: Option<Ruleset> = None;
    let mut last_full = clock.now();
    loop {
        let node_ips = nodes
            .store()
            .state()
            .first()
            .map(|n| {
                node_ips(
                    n.status
                        .as_ref()
                        .and_then(|s| s.addresses.as_deref())
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        let ruleset = rules(
            &config.node_name,
            &node_ips,
            &services.store().state(),
            &slices.store().state(),
        );
        let due = (clock.now() - last_full)
            .to_std()
            .is_ok_and(|age| age >= config.sync_period);
        if last.as_ref() != Some(&ruleset) || due {
            match dataplane.program(&ruleset).await {
                Ok(()) => {
                    tracing::debug!(node = %config.node_name, rules = ruleset.rules.len(), "kube-proxy synced the node's rules");
                    last = Some(ruleset);
                    last_full = clock.now();
                }
                Err(e) => {
                    tracing::warn!(node = %config.node_name, cause = %e, "kube-proxy could not write the node's rules; retrying");
                    last = None;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = clock.sleep(config.min_sync_period) => {}
        }
        // Wait for a change, or for the next full sync (or a retry after a failure).
        let wait = if last.is_some() {
            config.sync_period
        } else {
            config.min_sync_period
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = clock.sleep(wait) => {}
            _ = changes.0.recv() => {}
            _ = changes.1.recv() => {}
            _ = changes.2.recv() => {}
        }
        // Take what else arrived meanwhile into the same sync.
        while changes.0.try_recv().is_ok() {}
        while changes.1.try_recv().is_ok() {}
        while changes.2.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests;
