//! Services as upstream admits them: `SetDefaults_Service`, the registry's update hooks
//! (`patchAllocatedValues`, `normalizeClusterIPs`, `dropTypeDependentFields`) and
//! `ValidateService` / `ValidateServiceUpdate`, cause by cause in upstream's order.
//!
//! Pure functions of the request's object and the stored one; they must not touch the store or
//! HTTP (the apiserver allocates cluster IPs itself).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::containers::{port_number, protocol};
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
