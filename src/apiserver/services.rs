//! Services as upstream admits them: `SetDefaults_Service`, the registry's update hooks
//! (`patchAllocatedValues`, `normalizeClusterIPs`, `dropTypeDependentFields`) and
//! `ValidateService` / `ValidateServiceUpdate`, cause by cause in upstream's order.
//!
//! Node ports are allocated here too, as upstream's registry allocates them (`initNodePorts`,
//! `updateNodePorts`, `allocHealthCheckNodePort`) before the strategy runs, from the set of node
//! ports the Services in the store hold ([`NodePorts`]).
//!
//! Pure functions of the request's object, the stored one and the ports in use; they must not
//! touch the store or HTTP (the apiserver gathers the ports in use and allocates cluster IPs
//! itself).

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{
    ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rand::Rng;
use serde_json::{json, Value};

use super::containers::{port_number, protocol};
use super::error::{ApiError, ApiResult};
use super::registry::Kind;
use super::strategy::Strategy;
use super::validation::{self, go_quote, go_slice};
use super::Cause;

/// Upstream's `DefaultClientIPServiceAffinitySeconds` (three hours).
const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;

fn type_of(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or_default()
}

fn cluster_ip(spec: &ServiceSpec) -> &str {
    spec.cluster_ip.as_deref().unwrap_or_default()
}

fn cluster_ips(spec: &ServiceSpec) -> &[String] {
    spec.cluster_ips.as_deref().unwrap_or_default()
}

/// Upstream's `isHeadlessService`: the one cluster IP is `None`.
fn is_headless(spec: &ServiceSpec) -> bool {
    cluster_ips(spec) == ["None"]
}

/// Upstream's `needsClusterIP`: every type but ExternalName.
fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    type_of(spec) != "ExternalName"
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    matches!(type_of(spec), "NodePort" | "LoadBalancer")
}

/// Upstream's `NeedsHealthCheck` (and the registry's `needsHCNodePort`): a LoadBalancer that
/// keeps external traffic on the node it arrives at.
fn needs_health_check(spec: &ServiceSpec) -> bool {
    type_of(spec) == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local")
}

/// Upstream's `shouldAllocateNodePorts`: NodePort Services always get node ports, LoadBalancers
/// unless they opt out.
fn should_allocate_node_ports(spec: &ServiceSpec) -> bool {
    match type_of(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec.allocate_load_balancer_node_ports.unwrap_or(true),
        _ => false,
    }
}

fn health_check_node_port(spec: &ServiceSpec) -> i32 {
    spec.health_check_node_port.unwrap_or(0)
}

/// Upstream's `ExternallyAccessible`.
fn externally_accessible(spec: &ServiceSpec) -> bool {
    needs_node_port(spec)
        || type_of(spec) == "ClusterIP"
            && spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty())
}

/// Upstream's `sameClusterIPs`: the singular and the plural field both unchanged.
fn same_cluster_ips(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    cluster_ip(old) == cluster_ip(new) && cluster_ips(old) == cluster_ips(new)
}

impl Strategy for Service {
    fn default(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        let affinity = spec.session_affinity.get_or_insert_with(|| "None".into());
        if affinity == "None" {
            spec.session_affinity_config = None;
        }
        if affinity == "ClientIP"
            && spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_none()
        {
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                }),
            });
        }
        if spec.type_.as_deref().is_none_or(str::is_empty) {
            spec.type_ = Some("ClusterIP".into());
        }
        for port in spec.ports.iter_mut().flatten() {
            if port.protocol.as_deref().is_none_or(str::is_empty) {
                port.protocol = Some("TCP".into());
            }
            let unset = match &port.target_port {
                None => true,
                Some(IntOrString::Int(n)) => *n == 0,
                Some(IntOrString::String(s)) => s.is_empty(),
            };
            if unset {
                port.target_port = Some(IntOrString::Int(port.port));
            }
        }
        if externally_accessible(spec)
            && spec
                .external_traffic_policy
                .as_deref()
                .is_none_or(str::is_empty)
        {
            spec.external_traffic_policy = Some("Cluster".into());
        }
        if spec.internal_traffic_policy.is_none()
            && matches!(type_of(spec), "ClusterIP" | "NodePort" | "LoadBalancer")
        {
            spec.internal_traffic_policy = Some("Cluster".into());
        }
        if type_of(spec) == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
        // normalizeClusterIPs on create: a client that names only `clusterIP` gets the plural.
        if let Some(spec) = &mut self.spec {
            if !cluster_ip(spec).is_empty() && cluster_ips(spec).is_empty() {
                spec.cluster_ips = Some(vec![cluster_ip(spec).to_string()]);
            }
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if let (Some(new), Some(old)) = (self.spec.as_mut(), old.spec.as_ref()) {
            patch_allocated_values(new, old);
            normalize_cluster_ips(new, old);
            drop_type_dependent_fields(new, old);
        }
    }

    fn validate(&self) -> Vec<Cause> {
        self.spec.as_ref().map(validate_spec).unwrap_or_default()
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = Vec::new();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            causes.extend(cluster_ips_update(new, old));
            causes.extend(ip_families_update(new, old));
            // Upstream's `validateServiceExternalTrafficFieldsUpdate`.
            if needs_health_check(old)
                && needs_health_check(new)
                && health_check_node_port(new) != health_check_node_port(old)
            {
                causes.push(Cause::forbidden(
                    "spec.healthCheckNodePort",
                    "field is immutable",
                ));
            }
        }
        causes.extend(self.validate());
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// Upstream's `patchAllocatedValues`: a client that resubmits its manifest (without the
/// allocated cluster IPs or node ports) keeps them.
fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if cluster_ip(new).is_empty() {
            new.cluster_ip.clone_from(&old.cluster_ip);
        }
        if cluster_ips(new).is_empty() && !cluster_ips(old).is_empty() {
            new.cluster_ips.clone_from(&old.cluster_ips);
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let node_ports = |spec: &ServiceSpec| -> HashSet<i32> {
            spec.ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port.filter(|n| *n != 0))
                .collect()
        };
        let used: HashSet<i32> = node_ports(old)
            .intersection(&node_ports(new))
            .copied()
            .collect();
        let by_name: std::collections::HashMap<&str, i32> = old
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.as_deref().unwrap_or_default(),
                    p.node_port.unwrap_or(0),
                )
            })
            .collect();
        for port in new.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) == 0 {
                let old_port = by_name
                    .get(port.name.as_deref().unwrap_or_default())
                    .copied()
                    .unwrap_or(0);
                if old_port != 0 && !used.contains(&old_port) {
                    port.node_port = Some(old_port);
                }
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && health_check_node_port(new) == 0 {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// Upstream's `normalizeClusterIPs` on update: keep `clusterIP` and `clusterIPs` in step for a
/// client that sets only the singular field (the registry's `sameClusterIPs` there compares
/// the plural field alone).
fn normalize_cluster_ips(new: &mut ServiceSpec, old: &ServiceSpec) {
    let same_plural = |old: &ServiceSpec, new: &ServiceSpec| cluster_ips(old) == cluster_ips(new);
    if !cluster_ips(old).is_empty()
        && cluster_ips(new).is_empty()
        && cluster_ip(old) == cluster_ip(new)
    {
        new.cluster_ips.clone_from(&old.cluster_ips);
    }
    if cluster_ip(old) != cluster_ip(new) {
        if !cluster_ip(old).is_empty() && cluster_ip(new).is_empty() {
            if same_plural(old, new) {
                new.cluster_ips = None;
            }
        } else if same_plural(old, new) {
            new.cluster_ips = Some(vec![cluster_ip(new).to_string()]);
        }
    }
}

/// Upstream's `dropTypeDependentFields`: moving to a type that does not use a field clears it,
/// where the client left it as it was.
fn drop_type_dependent_fields(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same_cluster_ips(old, new) {
            new.cluster_ip = None;
            new.cluster_ips = None;
        }
        if new.ip_families == old.ip_families {
            new.ip_families = None;
        }
        if new.ip_family_policy == old.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(new) {
        let node_ports = |spec: &ServiceSpec| -> Vec<i32> {
            spec.ports
                .iter()
                .flatten()
                .map(|p| p.node_port.unwrap_or(0))
                .collect()
        };
        if node_ports(old) == node_ports(new) {
            for port in new.ports.iter_mut().flatten() {
                port.node_port = None;
            }
        }
    }
    if needs_health_check(old)
        && !needs_health_check(new)
        && health_check_node_port(old) == health_check_node_port(new)
    {
        new.health_check_node_port = None;
    }
    if type_of(old) == "LoadBalancer"
        && type_of(new) != "LoadBalancer"
        && new.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports
    {
        new.allocate_load_balancer_node_ports = None;
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && new.external_traffic_policy == old.external_traffic_policy
    {
        new.external_traffic_policy = None;
    }
}

/// Upstream's `ValidateService` (the parts modelled here).
fn validate_spec(spec: &ServiceSpec) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && type_of(spec) != "ExternalName" {
        causes.push(Cause::required("spec.ports", ""));
    }
    match type_of(spec) {
        kind @ ("LoadBalancer" | "NodePort") if headless => causes.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &go_quote("None"),
            &format!("may not be set to 'None' for {kind} services"),
        )),
        "ExternalName" => {
            let forbidden = "may not be set for ExternalName services";
            if !cluster_ips(spec).is_empty() {
                causes.push(Cause::forbidden("spec.clusterIPs", forbidden));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                causes.push(Cause::forbidden("spec.ipFamilies", forbidden));
            }
            if spec.ip_family_policy.is_some() {
                causes.push(Cause::forbidden("spec.ipFamilyPolicy", forbidden));
            }
            // A CNAME may end in a dot.
            let name = spec.external_name.as_deref().unwrap_or_default();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                causes.push(Cause::required("spec.externalName", ""));
            } else {
                let value = go_quote(cname);
                for message in validation::dns1123_subdomain_errors(cname) {
                    causes.push(Cause::invalid("spec.externalName", &value, &message));
                }
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        causes.extend(service_port(port, ports.len() > 1, &mut names, i));
    }
    causes.extend(validation::labels_at(
        "spec.selector",
        spec.selector.as_ref(),
    ));
    match spec.session_affinity.as_deref() {
        None | Some("ClientIP" | "None") => {}
        Some("") => causes.push(Cause::required("spec.sessionAffinity", "")),
        Some(other) => causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    match spec.type_.as_deref() {
        None | Some("ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort") => {}
        Some("") => causes.push(Cause::required("spec.type", "")),
        Some(other) => causes.push(Cause::not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if type_of(spec) == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                causes.push(Cause::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let Some(node_port) = port.node_port.filter(|n| *n != 0) else {
            continue;
        };
        if !node_ports.insert((port.protocol.as_deref().unwrap_or_default(), node_port)) {
            causes.push(Cause::duplicate(
                format!("spec.ports[{i}].nodePort"),
                &node_port.to_string(),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or_default();
        if !seen.insert((protocol, port.port)) {
            // Upstream shows the (protocol, port) key as the Go struct it is.
            let key = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                go_quote(protocol),
                port.port
            );
            causes.push(Cause::duplicate(format!("spec.ports[{i}]"), &key));
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && type_of(spec) != "LoadBalancer" {
        causes.push(Cause::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    causes.extend(external_traffic_policy(spec));
    causes
}

/// Upstream's `validateServiceExternalTrafficPolicy`: the policy belongs to externally
/// accessible Services, the health check node port to LoadBalancers with the `Local` policy.
fn external_traffic_policy(spec: &ServiceSpec) -> Vec<Cause> {
    let mut causes = Vec::new();
    let policy = spec.external_traffic_policy.as_deref().unwrap_or_default();
    if !externally_accessible(spec) {
        if !policy.is_empty() {
            causes.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                &go_quote(policy),
                "may only be set for externally-accessible services",
            ));
        }
    } else if policy.is_empty() {
        causes.push(Cause::required("spec.externalTrafficPolicy", ""));
    } else if !matches!(policy, "Cluster" | "Local") {
        causes.push(Cause::not_supported(
            "spec.externalTrafficPolicy",
            policy,
            &["Cluster", "Local"],
        ));
    }
    let health_check = health_check_node_port(spec);
    if !needs_health_check(spec) {
        if health_check != 0 {
            causes.push(Cause::invalid(
                "spec.healthCheckNodePort",
                &health_check.to_string(),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if health_check == 0 {
        causes.push(Cause::required("spec.healthCheckNodePort", ""));
    } else {
        causes.extend(port_number("spec.healthCheckNodePort".into(), health_check));
    }
    causes
}

/// Upstream's `validateServicePort`: a name (required when there are several ports), a port,
/// a protocol, a target port and an application protocol.
fn service_port<'a>(
    port: &'a ServicePort,
    require_name: bool,
    names: &mut HashSet<&'a str>,
    i: usize,
) -> Vec<Cause> {
    let at = format!("spec.ports[{i}]");
    let mut causes = Vec::new();
    let name = port.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        causes.push(Cause::required(format!("{at}.name"), ""));
    } else if !name.is_empty() {
        let value = go_quote(name);
        for message in validation::dns1123_label_errors(name) {
            causes.push(Cause::invalid(format!("{at}.name"), &value, &message));
        }
        if !names.insert(name) {
            causes.push(Cause::duplicate(format!("{at}.name"), &value));
        }
    }
    causes.extend(port_number(format!("{at}.port"), port.port));
    causes.extend(protocol(
        &format!("{at}.protocol"),
        port.protocol.as_deref(),
    ));
    match &port.target_port {
        Some(IntOrString::Int(n)) => causes.extend(port_number(format!("{at}.targetPort"), *n)),
        Some(IntOrString::String(s)) => {
            let value = go_quote(s);
            for message in validation::port_name_errors(s) {
                causes.push(Cause::invalid(format!("{at}.targetPort"), &value, &message));
            }
        }
        None => {}
    }
    if let Some(app) = &port.app_protocol {
        let value = go_quote(app);
        for message in validation::qualified_name_errors(app) {
            causes.push(Cause::invalid(
                format!("{at}.appProtocol"),
                &value,
                &message,
            ));
        }
    }
    causes
}

/// Upstream's `validateUpgradeDowngradeClusterIPs`: the primary cluster IP never changes (a
/// secondary one may be added, or released with `SingleStack`), unless the Service is, or
/// becomes, an ExternalName one.
fn cluster_ips_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<Cause> {
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) || is_headless(new) && is_headless(old) {
        return Vec::new();
    }
    let (new_ips, old_ips) = (cluster_ips(new), cluster_ips(old));
    let shown = go_slice("string", new.cluster_ips.as_deref());
    let changed = |i: usize| {
        Cause::invalid(
            format!("spec.clusterIPs[{i}]"),
            &shown,
            "may not change once set",
        )
    };
    let mut causes = Vec::new();
    if old_ips.len() == new_ips.len() {
        for (i, (o, n)) in old_ips.iter().zip(new_ips).enumerate() {
            if o != n {
                causes.push(changed(i));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &shown,
                "primary clusterIP can not be unset",
            ));
        }
        if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
            causes.push(changed(0));
        }
        if new_ips.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            causes.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &go_quote(new.ip_family_policy.as_deref().unwrap_or("null")),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        causes.push(changed(0));
    }
    causes
}

/// Upstream's `validateUpgradeDowngradeIPFamilies`, with its habit of showing the cluster IPs
/// where a family changed in a list of another length.
fn ip_families_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<Cause> {
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) || is_headless(new) || is_headless(old) {
        return Vec::new();
    }
    let families = |spec: &ServiceSpec| spec.ip_families.as_deref().unwrap_or_default().to_vec();
    let (new_families, old_families) = (families(new), families(old));
    let shown_families = go_slice("core.IPFamily", new.ip_families.as_deref());
    let shown_ips = go_slice("string", new.cluster_ips.as_deref());
    let mut causes = Vec::new();
    let at = "spec.ipFamilies[0]";
    if old_families.len() == new_families.len() {
        for (o, n) in old_families.iter().zip(&new_families) {
            if o != n {
                causes.push(Cause::invalid(
                    at,
                    &shown_families,
                    "may not change once set",
                ));
            }
        }
    } else if old_families.len() > new_families.len() {
        if cluster_ips(new).is_empty() {
            causes.push(Cause::invalid(
                at,
                &shown_families,
                "primary ipFamily can not be unset",
            ));
        }
        if !new_families.is_empty() && new_families[0] != old_families[0] {
            causes.push(Cause::invalid(at, &shown_ips, "may not change once set"));
        }
        if new_families.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            causes.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &go_quote(new.ip_family_policy.as_deref().unwrap_or("null")),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !old_families.is_empty() && new_families[0] != old_families[0] {
        causes.push(Cause::invalid(at, &shown_ips, "may not change once set"));
    }
    causes
}

/// The lowest node port (upstream's `--service-node-port-range` default, 30000-32767).
const NODE_PORT_BASE: i32 = 30000;
/// The highest node port.
const NODE_PORT_LAST: i32 = 32767;
/// How many of the lowest node ports are kept for ports that clients ask for by number: the
/// allocator hands them out only when the rest of the range is full (upstream's
/// `calculateRangeOffset`, `min(max(16, size/32), 128)`).
const NODE_PORT_STATIC_BAND: i32 = {
    let size = NODE_PORT_LAST - NODE_PORT_BASE + 1;
    let step = size / 32;
    if step < 16 {
        16
    } else if step > 128 {
        128
    } else {
        step
    }
};

/// The node ports in use across the cluster, as upstream's port allocator holds them: every
/// Service's `ports[].nodePort` and `healthCheckNodePort`. Built from the stored Services, so
/// that deleting a Service, or an update that drops its node ports, releases them, and a
/// dry-run (which stores nothing) consumes nothing.
#[derive(Debug, Default)]
pub(super) struct NodePorts {
    taken: HashSet<i32>,
}

impl NodePorts {
    /// The node ports the given Services (as stored) hold.
    pub(super) fn held_by<'a>(services: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut taken = HashSet::new();
        for service in services {
            let spec = &service["spec"];
            let ports = spec["ports"].as_array().into_iter().flatten();
            let numbers = ports
                .map(|p| &p["nodePort"])
                .chain([&spec["healthCheckNodePort"]]);
            taken.extend(
                numbers
                    .filter_map(Value::as_i64)
                    .filter_map(|n| i32::try_from(n).ok())
                    .filter(|n| *n != 0),
            );
        }
        Self { taken }
    }

    /// Reserve a port a client asked for (upstream's `PortAllocator.Allocate` and its errors).
    fn allocate(&mut self, port: i32) -> Result<(), String> {
        if !(NODE_PORT_BASE..=NODE_PORT_LAST).contains(&port) {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {NODE_PORT_BASE}-{NODE_PORT_LAST}"
            ));
        }
        if !self.taken.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Reserve any free port: from a random place in the upper part of the range, scanning on,
    /// and from the static band only when the upper part is full (upstream's
    /// `randomScanStrategyWithOffset`).
    fn allocate_next(&mut self) -> Result<i32, String> {
        let bands = [
            (NODE_PORT_BASE + NODE_PORT_STATIC_BAND, NODE_PORT_LAST),
            (NODE_PORT_BASE, NODE_PORT_BASE + NODE_PORT_STATIC_BAND - 1),
        ];
        let mut rng = rand::rng();
        for (first, last) in bands {
            let size = last - first + 1;
            let start = rng.random_range(0..size);
            let free = (0..size)
                .map(|i| first + (start + i) % size)
                .find(|p| !self.taken.contains(p));
            if let Some(port) = free {
                self.taken.insert(port);
                return Ok(port);
            }
        }
        Err("range is full".into())
    }
}

/// Allocate the node ports (and health check node port) of a Service being created (`old` is
/// `None`) or updated, as upstream's registry does before admission: on create
/// `initNodePorts` (ports that share a port number share a node port), on update
/// `updateNodePorts` (a node port the Service already held is kept, any other is allocated),
/// and `allocHealthCheckNodePort` when the Service comes to need one. Requested ports must be in
/// the range and free (422 on `spec.ports[i].nodePort`).
///
/// `obj` is the request's object as JSON: only the allocated numbers are written into it, so
/// everything else (unknown fields included) reaches admission as the client sent it. An object
/// that does not decode as a Service is left to admission to reject.
///
/// # Errors
/// 422 for a requested node port that is out of range or taken; 500 when the range is full or
/// a requested health check node port cannot be had, as upstream.
pub(super) fn allocate_node_ports(
    kind: &Kind,
    obj: &mut Value,
    old: Option<&Value>,
    in_use: &mut NodePorts,
) -> ApiResult<()> {
    let Ok(mut service) = serde_json::from_value::<Service>(obj.clone()) else {
        return Ok(());
    };
    // Upstream allocates what the decoded (so defaulted) object asks for.
    service.default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let Some(spec) = service.spec.as_mut() else {
        return Ok(());
    };
    let old_spec = old
        .and_then(|o| serde_json::from_value::<Service>(o.clone()).ok())
        .and_then(|o| o.spec);
    let invalid = |i: usize, port: i32, message: String| {
        ApiError::invalid(
            kind,
            &name,
            &[Cause::invalid(
                format!("spec.ports[{i}].nodePort"),
                &port.to_string(),
                &message,
            )],
        )
    };
    let full = |e: String| ApiError::internal(format!("failed to allocate a nodePort: {e}"));
    match &old_spec {
        None => {
            if needs_node_port(spec) {
                init_node_ports(spec, in_use, invalid, full)?;
            }
            if needs_health_check(spec) {
                allocate_health_check(spec, in_use)?;
            }
        }
        Some(old) => {
            patch_allocated_values(spec, old);
            if needs_node_port(spec) {
                update_node_ports(spec, old, in_use, invalid, full)?;
            }
            if !needs_health_check(old) && needs_health_check(spec) {
                allocate_health_check(spec, in_use)?;
            }
        }
    }
    write_allocated(obj, spec);
    Ok(())
}

/// Upstream's `initNodePorts`: each port gets the node port it asks for, or the one another
/// port with the same number asked for or was given, or a new one.
fn init_node_ports(
    spec: &mut ServiceSpec,
    in_use: &mut NodePorts,
    invalid: impl Fn(usize, i32, String) -> ApiError,
    full: impl Fn(String) -> ApiError,
) -> ApiResult<()> {
    let allocate_new = should_allocate_node_ports(spec);
    let ports = spec.ports.as_deref_mut().unwrap_or_default();
    let mut by_number: HashMap<i32, i32> = HashMap::new();
    for i in 0..ports.len() {
        let requested = ports[i].node_port.unwrap_or(0);
        if requested == 0 && !allocate_new {
            continue;
        }
        match by_number.get(&ports[i].port).copied() {
            None => {
                // The first port with this number: a node port any port with the number
                // asks for (scanning forward), else a new one.
                let number = ports[i].port;
                let asked = ports[i..]
                    .iter()
                    .find(|p| p.port == number && p.node_port.unwrap_or(0) != 0)
                    .and_then(|p| p.node_port);
                let node_port = match asked {
                    Some(n) => {
                        in_use.allocate(n).map_err(|e| invalid(i, n, e))?;
                        n
                    }
                    None => in_use.allocate_next().map_err(&full)?,
                };
                ports[i].node_port = Some(node_port);
                by_number.insert(number, node_port);
            }
            Some(shared) if requested != shared => {
                if requested == 0 {
                    ports[i].node_port = Some(shared);
                } else {
                    in_use
                        .allocate(requested)
                        .map_err(|e| invalid(i, requested, e))?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Upstream's `updateNodePorts`: a node port the Service held before is kept, any other
/// requested one is allocated, and a port without one gets a new one.
fn update_node_ports(
    spec: &mut ServiceSpec,
    old: &ServiceSpec,
    in_use: &mut NodePorts,
    invalid: impl Fn(usize, i32, String) -> ApiError,
    full: impl Fn(String) -> ApiError,
) -> ApiResult<()> {
    let allocate_new = should_allocate_node_ports(spec);
    let held: HashSet<i32> = old
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port.filter(|n| *n != 0))
        .collect();
    let mut allocated_now = HashSet::new();
    let mut seen: Vec<(String, i32)> = Vec::new();
    for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
        let requested = port.node_port.unwrap_or(0);
        if requested == 0 && !allocate_new {
            continue;
        }
        let node_port = if requested != 0 {
            if !held.contains(&requested) && !allocated_now.contains(&requested) {
                in_use
                    .allocate(requested)
                    .map_err(|e| invalid(i, requested, e))?;
                allocated_now.insert(requested);
            }
            requested
        } else {
            let n = in_use.allocate_next().map_err(&full)?;
            port.node_port = Some(n);
            n
        };
        let key = (port.protocol.clone().unwrap_or_default(), node_port);
        if seen.contains(&key) {
            // Upstream answers with a plain error here, which its apiserver turns into a 500.
            return Err(ApiError::internal(format!(
                "duplicate nodePort: {{{} {}}}",
                key.0, key.1
            )));
        }
        seen.push(key);
    }
    Ok(())
}

/// Upstream's `allocHealthCheckNodePort`: the requested health check node port, or a new one.
fn allocate_health_check(spec: &mut ServiceSpec, in_use: &mut NodePorts) -> ApiResult<()> {
    let requested = health_check_node_port(spec);
    if requested != 0 {
        in_use.allocate(requested).map_err(|e| {
            ApiError::internal(format!(
                "failed to allocate requested HealthCheck NodePort {requested}: {e}"
            ))
        })?;
    } else {
        let port = in_use.allocate_next().map_err(|e| {
            ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
        })?;
        spec.health_check_node_port = Some(port);
    }
    Ok(())
}

/// Write the node ports of `spec` into the request's object, port by port.
fn write_allocated(obj: &mut Value, spec: &ServiceSpec) {
    if let Some(raw_ports) = obj["spec"].get_mut("ports").and_then(Value::as_array_mut) {
        for (raw, port) in raw_ports.iter_mut().zip(spec.ports.iter().flatten()) {
            if let (Some(raw), Some(n)) = (raw.as_object_mut(), port.node_port.filter(|n| *n != 0))
            {
                raw.insert("nodePort".into(), json!(n));
            }
        }
    }
    let health_check = health_check_node_port(spec);
    if health_check != 0 {
        if let Some(raw_spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            raw_spec.insert("healthCheckNodePort".into(), json!(health_check));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})
    }

    fn kind() -> &'static Kind {
        super::super::registry::core("services")
    }

    fn node_ports(obj: &Value) -> Vec<i64> {
        obj["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["nodePort"].as_i64().unwrap_or(0))
            .collect()
    }

    #[test]
    fn the_static_band_is_upstreams_for_the_default_range() {
        assert_eq!(NODE_PORT_STATIC_BAND, 86);
    }

    #[test]
    fn new_node_ports_come_from_above_the_static_band_and_are_unique() {
        let mut in_use = NodePorts::default();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let port = in_use.allocate_next().unwrap();
            assert!((30086..=32767).contains(&port), "{port}");
            assert!(seen.insert(port));
        }
    }

    #[test]
    fn the_static_band_serves_once_the_rest_is_full() {
        let mut in_use = NodePorts {
            taken: (30086..=32767).collect(),
        };
        let port = in_use.allocate_next().unwrap();
        assert!((30000..30086).contains(&port), "{port}");
        let mut all = NodePorts {
            taken: (30000..=32767).collect(),
        };
        assert_eq!(all.allocate_next().unwrap_err(), "range is full");
    }

    #[test]
    fn ports_sharing_a_number_share_a_node_port_on_create() {
        let mut obj = service(json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80}]}));
        allocate_node_ports(kind(), &mut obj, None, &mut NodePorts::default()).unwrap();
        let ports = node_ports(&obj);
        assert_eq!(ports[0], ports[1]);
        assert_ne!(ports[0], ports[2]);
        // A requested one is shared the same way, whichever of the ports names it.
        let mut obj = service(json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053}]}));
        allocate_node_ports(kind(), &mut obj, None, &mut NodePorts::default()).unwrap();
        assert_eq!(node_ports(&obj), [30053, 30053]);
    }

    #[test]
    fn requested_node_ports_must_be_free_and_in_range() {
        let held = service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        let mut in_use = NodePorts::held_by([&held]);
        let mut taken =
            service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        let err = allocate_node_ports(kind(), &mut taken, None, &mut in_use).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(err.message, "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated");
        let mut outside =
            service(json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 8080}]}));
        let err = allocate_node_ports(kind(), &mut outside, None, &mut in_use).unwrap_err();
        assert_eq!(err.message, "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767");
    }

    #[test]
    fn an_update_keeps_its_own_node_ports_and_a_cluster_ip_service_gets_none() {
        let old = service(
            json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        );
        let mut in_use = NodePorts::held_by([&old]);
        // A client that resubmits its manifest without the node port keeps it.
        let mut new = service(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        allocate_node_ports(kind(), &mut new, Some(&old), &mut in_use).unwrap();
        assert_eq!(node_ports(&new), [30080]);
        let mut cluster_ip = service(json!({"ports": [{"port": 80}]}));
        allocate_node_ports(kind(), &mut cluster_ip, Some(&old), &mut in_use).unwrap();
        assert_eq!(node_ports(&cluster_ip), [0]);
    }

    #[test]
    fn load_balancers_may_opt_out_and_local_ones_get_a_health_check_port() {
        let mut none = service(
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}]}),
        );
        allocate_node_ports(kind(), &mut none, None, &mut NodePorts::default()).unwrap();
        assert_eq!(node_ports(&none), [0]);
        let mut local = service(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"port": 80}]}),
        );
        allocate_node_ports(kind(), &mut local, None, &mut NodePorts::default()).unwrap();
        let health = local["spec"]["healthCheckNodePort"].as_i64().unwrap();
        assert!((30000..=32767).contains(&health));
        assert_ne!(health, node_ports(&local)[0]);
    }
}
