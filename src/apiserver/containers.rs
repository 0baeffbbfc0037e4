//! A pod's containers as upstream's `validateContainers`, `validateInitContainers` and
//! `validateContainerCommon` check them, cause by cause in upstream's order: name, image,
//! terminationMessagePolicy, ports, env, envFrom, volumeMounts, imagePullPolicy, resources;
//! then a unique name, and the lifecycle hooks and probes (which an init container may only
//! have with `restartPolicy: Always`).
//!
//! Pure functions of the spec; they must not touch the store or HTTP. Where upstream walks a Go
//! map (resource lists), the order here is the map's key order.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, LifecycleHandler, PodSpec, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::validation::{self, go_quote};
use super::Cause;
use crate::k8s::quantity::{self, Amount, Format};

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// The regular containers at `{path}.containers` (required), then the init containers.
pub fn validate(spec: &PodSpec, path: &str) -> Vec<Cause> {
    let mut causes = validate_regular(spec, &format!("{path}.containers"));
    causes.extend(validate_init(spec, &format!("{path}.initContainers")));
    causes
}

fn validate_regular(spec: &PodSpec, path: &str) -> Vec<Cause> {
    if spec.containers.is_empty() {
        return vec![Cause::required(path, "")];
    }
    let mut causes = Vec::new();
    let mut names = HashSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let at = format!("{path}[{i}]");
        causes.extend(validate_common(spec, c, &at));
        if !names.insert(c.name.as_str()) {
            causes.push(Cause::duplicate(format!("{at}.name"), &go_quote(&c.name)));
        }
        causes.extend(lifecycle_and_probes(c, &at));
        if c.restart_policy.is_some() {
            causes.push(Cause::forbidden(
                format!("{at}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    causes.extend(host_port_conflicts(&spec.containers, path));
    causes
}

fn validate_init(spec: &PodSpec, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names: HashSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let at = format!("{path}[{i}]");
        causes.extend(validate_common(spec, c, &at));
        let restart_always = c.restart_policy.as_deref() == Some("Always");
        if let Some(policy) = c.restart_policy.as_deref().filter(|p| *p != "Always") {
            causes.push(Cause::not_supported(
                format!("{at}.restartPolicy"),
                policy,
                &["Always"],
            ));
        }
        if names.contains(c.name.as_str()) {
            causes.push(Cause::duplicate(format!("{at}.name"), &go_quote(&c.name)));
        } else if !c.name.is_empty() {
            names.insert(&c.name);
        }
        // Init containers run one by one: their host ports clash only within one container.
        causes.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            causes.extend(lifecycle_and_probes(c, &at));
        } else {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, _) in set.iter().filter(|(_, present)| *present) {
                causes.push(Cause::forbidden(
                    format!("{at}.{field}"),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
    causes
}

/// Upstream's `validateContainerCommon` (without the security context and resize policy).
fn validate_common(spec: &PodSpec, c: &Container, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if c.name.is_empty() {
        causes.push(Cause::required(format!("{at}.name"), ""));
    } else {
        let value = go_quote(&c.name);
        for message in validation::dns1123_label_errors(&c.name) {
            causes.push(Cause::invalid(format!("{at}.name"), &value, &message));
        }
    }
    // Upstream does not trim: an image of spaces is tolerated here (pod templates rely on it).
    if c.image.as_deref().is_none_or(str::is_empty) {
        causes.push(Cause::required(format!("{at}.image"), ""));
    }
    match c.termination_message_policy.as_deref() {
        None | Some("File" | "FallbackToLogsOnError") => {}
        Some("") => causes.push(Cause::required(
            format!("{at}.terminationMessagePolicy"),
            "",
        )),
        Some(other) => causes.push(Cause::not_supported(
            format!("{at}.terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    causes.extend(ports(c, at));
    causes.extend(env(
        c.env.as_deref().unwrap_or_default(),
        &format!("{at}.env"),
    ));
    causes.extend(env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &format!("{at}.envFrom"),
    ));
    causes.extend(volume_mounts(spec, c, at));
    match c.image_pull_policy.as_deref() {
        None | Some("Always" | "IfNotPresent" | "Never") => {}
        Some("") => causes.push(Cause::required(format!("{at}.imagePullPolicy"), "")),
        Some(other) => causes.push(Cause::not_supported(
            format!("{at}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(resources) = &c.resources {
        causes.extend(resource_requirements(resources, &format!("{at}.resources")));
    }
    causes
}

/// A container's ports as upstream's `validateContainerPorts` checks them: names are IANA
/// service names, unique in the container; port numbers 1..65535 (containerPort required);
/// protocols TCP, UDP or SCTP.
fn ports(c: &Container, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names = HashSet::new();
    for (j, p) in c.ports.iter().flatten().enumerate() {
        let here = format!("{at}.ports[{j}]");
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let errors = validation::port_name_errors(name);
            let value = go_quote(name);
            if !errors.is_empty() {
                for message in errors {
                    causes.push(Cause::invalid(format!("{here}.name"), &value, &message));
                }
            } else if !names.insert(name) {
                causes.push(Cause::duplicate(format!("{here}.name"), &value));
            }
        }
        if p.container_port == 0 {
            causes.push(Cause::required(format!("{here}.containerPort"), ""));
        } else {
            causes.extend(port_number(
                format!("{here}.containerPort"),
                p.container_port,
            ));
        }
        if let Some(host) = p.host_port.filter(|h| *h != 0) {
            causes.extend(port_number(format!("{here}.hostPort"), host));
        }
        causes.extend(protocol(&format!("{here}.protocol"), p.protocol.as_deref()));
    }
    causes
}

/// apimachinery's `IsValidPortNum`.
pub fn port_number(field: String, port: i32) -> Option<Cause> {
    (!(1..=65535).contains(&port)).then(|| {
        Cause::invalid(
            field,
            &port.to_string(),
            "must be between 1 and 65535, inclusive",
        )
    })
}

/// A port's protocol: TCP, UDP or SCTP (unset is defaulted before validation).
pub fn protocol(field: &str, protocol: Option<&str>) -> Option<Cause> {
    match protocol {
        Some("") => Some(Cause::required(field, "")),
        Some(p) if !PROTOCOLS.contains(&p) => Some(Cause::not_supported(field, p, &PROTOCOLS)),
        _ => None,
    }
}

/// Upstream's `AccumulateUniqueHostPorts`: a protocol, host IP and host port taken twice.
fn host_port_conflicts(containers: &[Container], path: &str) -> Vec<Cause> {
    let mut seen = HashSet::new();
    let mut causes = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let Some(host_port) = p.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let key = format!(
                "{}/{}/{host_port}",
                p.protocol.as_deref().unwrap_or_default(),
                p.host_ip.as_deref().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                causes.push(Cause::duplicate(
                    format!("{path}[{i}].ports[{j}].hostPort"),
                    &go_quote(&key),
                ));
            }
        }
    }
    causes
}

/// Upstream's `ValidateEnv` with 1.33's relaxed names, and `validateEnvVarValueFrom`: a
/// `valueFrom` names exactly one source, and not alongside a `value`.
fn env(vars: &[EnvVar], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if var.name.is_empty() {
            causes.push(Cause::required(format!("{at}.name"), ""));
        } else {
            let value = go_quote(&var.name);
            for message in validation::env_var_name_errors(&var.name) {
                causes.push(Cause::invalid(format!("{at}.name"), &value, &message));
            }
        }
        let Some(from) = &var.value_from else {
            continue;
        };
        let at = format!("{at}.valueFrom");
        let mut sources = 0;
        if let Some(field) = &from.field_ref {
            sources += 1;
            if field.api_version.as_deref().is_none_or(str::is_empty) {
                causes.push(Cause::required(format!("{at}.fieldRef.apiVersion"), ""));
            } else if field.field_path.is_empty() {
                causes.push(Cause::required(format!("{at}.fieldRef.fieldPath"), ""));
            }
        }
        if let Some(resource) = &from.resource_field_ref {
            sources += 1;
            if resource.resource.is_empty() {
                causes.push(Cause::required(
                    format!("{at}.resourceFieldRef.resource"),
                    "",
                ));
            }
        }
        if let Some(r) = &from.config_map_key_ref {
            sources += 1;
            causes.extend(key_selector(
                &r.name,
                &r.key,
                &format!("{at}.configMapKeyRef"),
            ));
        }
        if let Some(r) = &from.secret_key_ref {
            sources += 1;
            causes.extend(key_selector(&r.name, &r.key, &format!("{at}.secretKeyRef")));
        }
        let one_of = if sources == 0 {
            Some("must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        } else if var.value.as_deref().is_some_and(|v| !v.is_empty()) {
            Some("may not be specified when `value` is not empty")
        } else if sources > 1 {
            Some("may not have more than one field specified at a time")
        } else {
            None
        };
        if let Some(message) = one_of {
            causes.push(Cause::invalid(at, "\"\"", message));
        }
    }
    causes
}

/// Upstream's `validateConfigMapKeySelector` / `validateSecretKeySelector`: a subdomain name
/// and a ConfigMap key.
fn key_selector(name: &str, key: &str, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let value = go_quote(name);
    for message in validation::dns1123_subdomain_errors(name) {
        causes.push(Cause::invalid(format!("{at}.name"), &value, &message));
    }
    if key.is_empty() {
        causes.push(Cause::required(format!("{at}.key"), ""));
    } else {
        let value = go_quote(key);
        for message in validation::config_map_key_errors(key) {
            causes.push(Cause::invalid(format!("{at}.key"), &value, &message));
        }
    }
    causes
}

/// Upstream's `ValidateEnvFrom`: a prefix is a (relaxed) variable name, and each entry names
/// exactly one source (reported at the list, as upstream does).
fn env_from(sources: &[EnvFromSource], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            let value = go_quote(prefix);
            for message in validation::env_var_name_errors(prefix) {
                causes.push(Cause::invalid(format!("{at}.prefix"), &value, &message));
            }
        }
        let refs = [
            (
                "configMapRef",
                source.config_map_ref.as_ref().map(|r| &r.name),
            ),
            ("secretRef", source.secret_ref.as_ref().map(|r| &r.name)),
        ];
        let mut count = 0;
        for (field, name) in refs {
            let Some(name) = name else { continue };
            count += 1;
            if name.is_empty() {
                causes.push(Cause::required(format!("{at}.{field}.name"), ""));
            } else {
                let value = go_quote(name);
                for message in validation::dns1123_subdomain_errors(&mask_trailing_dash(name)) {
                    causes.push(Cause::invalid(
                        format!("{at}.{field}.name"),
                        &value,
                        &message,
                    ));
                }
            }
        }
        match count {
            0 => causes.push(Cause::invalid(
                path,
                "\"\"",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => causes.push(Cause::invalid(
                path,
                "\"\"",
                "may not have more than one field specified at a time",
            )),
        }
    }
    causes
}

/// apimachinery's `maskTrailingDash`, for a name validated as a prefix: a final `-` (and the
/// character before it) stands as `a`.
fn mask_trailing_dash(name: &str) -> String {
    match name.len().checked_sub(2).and_then(|end| name.get(..end)) {
        Some(head) if name.ends_with('-') => format!("{head}a"),
        _ => name.to_string(),
    }
}

/// Upstream's `ValidateVolumeMounts`: each mount names a volume of the pod, at a distinct path.
fn volume_mounts(spec: &PodSpec, c: &Container, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let volumes: HashSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let mut mount_paths = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let here = format!("{at}.volumeMounts[{i}]");
        if m.name.is_empty() {
            causes.push(Cause::required(format!("{here}.name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            causes.push(Cause::not_found(format!("{here}.name"), &go_quote(&m.name)));
        }
        if m.mount_path.is_empty() {
            causes.push(Cause::required(format!("{here}.mountPath"), ""));
        }
        if !mount_paths.insert(m.mount_path.as_str()) {
            let value = go_quote(&m.mount_path);
            causes.push(Cause::invalid(
                format!("{here}.mountPath"),
                &value,
                "must be unique",
            ));
        }
    }
    causes
}

/// Lifecycle hooks, then liveness, readiness and startup probes: each has exactly one handler.
fn lifecycle_and_probes(c: &Container, at: &str) -> Vec<Cause> {
    let probe = |name: &str, p: Option<&Probe>| {
        p.map(|p| {
            let handlers = [
                ("exec", p.exec.is_some()),
                ("httpGet", p.http_get.is_some()),
                ("tcpSocket", p.tcp_socket.is_some()),
                ("grpc", p.grpc.is_some()),
            ];
            (name.to_string(), handlers)
        })
    };
    let hook = |name: &str, h: Option<&LifecycleHandler>| {
        h.map(|h| {
            let handlers = [
                ("exec", h.exec.is_some()),
                ("httpGet", h.http_get.is_some()),
                ("tcpSocket", h.tcp_socket.is_some()),
                ("sleep", h.sleep.is_some()),
            ];
            (format!("lifecycle.{name}"), handlers)
        })
    };
    let lifecycle = c.lifecycle.as_ref();
    let handled = [
        hook("postStart", lifecycle.and_then(|l| l.post_start.as_ref())),
        hook("preStop", lifecycle.and_then(|l| l.pre_stop.as_ref())),
        probe("livenessProbe", c.liveness_probe.as_ref()),
        probe("readinessProbe", c.readiness_probe.as_ref()),
        probe("startupProbe", c.startup_probe.as_ref()),
    ];
    handled
        .into_iter()
        .flatten()
        .flat_map(|(name, handlers)| one_handler(&format!("{at}.{name}"), &handlers))
        .collect()
}

/// Exactly one of `handlers` (in upstream's order) is set at `path`.
fn one_handler(path: &str, handlers: &[(&str, bool)]) -> Vec<Cause> {
    let mut set = handlers.iter().filter(|(_, present)| *present);
    if set.next().is_none() {
        return vec![Cause::required(path, "must specify a handler type")];
    }
    set.map(|(name, _)| {
        Cause::forbidden(
            format!("{path}.{name}"),
            "may not specify more than 1 handler type",
        )
    })
    .collect()
}

/// Upstream's `validateResourceRequirements` for a container: every limit, then every request,
/// has a container resource name and a non-negative amount (whole for extended resources, a
/// multiple of the page size for hugepages); a request is at most its limit, and equal to it
/// where overcommit is not allowed (which also needs the limit); hugepages need cpu or memory.
pub fn resource_requirements(resources: &ResourceRequirements, path: &str) -> Vec<Cause> {
    let empty = BTreeMap::new();
    let limits = resources.limits.as_ref().unwrap_or(&empty);
    let requests = resources.requests.as_ref().unwrap_or(&empty);
    let limits_path = format!("{path}.limits");
    let requests_path = format!("{path}.requests");
    let mut causes = Vec::new();
    for (name, q) in limits {
        causes.extend(resource_amount(&format!("{limits_path}[{name}]"), name, q));
    }
    for (name, q) in requests {
        let field = format!("{requests_path}[{name}]");
        causes.extend(resource_name_and_value(&field, name, q));
        let amount = parsed(q);
        match limits.get(name) {
            Some(limit) => {
                let limit = parsed(limit);
                let value = go_quote(&amount.to_string());
                if amount.nanos != limit.nanos && !validation::is_overcommit_allowed(name) {
                    let message = format!("must be equal to {name} limit of {limit}");
                    causes.push(Cause::invalid(&requests_path, &value, &message));
                } else if amount.nanos > limit.nanos {
                    let message = format!("must be less than or equal to {name} limit of {limit}");
                    causes.push(Cause::invalid(&requests_path, &value, &message));
                }
            }
            None if !validation::is_overcommit_allowed(name) => causes.push(Cause::required(
                &limits_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
        causes.extend(hugepages_multiple(&field, name, q));
    }
    let names = || limits.keys().chain(requests.keys());
    let hugepages = names().any(|n| validation::is_hugepages_resource(n));
    if hugepages && !names().any(|n| n == "cpu" || n == "memory") {
        causes.push(Cause::forbidden(path, "HugePages require cpu or memory"));
    }
    causes
}

/// A limit's name, value and (for hugepages) multiple of the page size.
fn resource_amount(field: &str, name: &str, q: &Quantity) -> Vec<Cause> {
    let mut causes = resource_name_and_value(field, name, q);
    causes.extend(hugepages_multiple(field, name, q));
    causes
}

/// A quantity that decoding already accepted (a malformed one never reaches validation).
fn parsed(q: &Quantity) -> Amount {
    quantity::parse(&q.0).unwrap_or(Amount {
        nanos: 0,
        format: Format::DecimalSI,
    })
}

/// Upstream's container resource name rules and `ValidateResourceQuantityValue`.
fn resource_name_and_value(field: &str, name: &str, q: &Quantity) -> Vec<Cause> {
    // A resource name prints unquoted: upstream's ResourceName is a fmt.Stringer.
    let mut causes: Vec<Cause> = validation::container_resource_name_errors(name)
        .into_iter()
        .map(|message| Cause::invalid(field, name, &message))
        .collect();
    let amount = parsed(q);
    if amount.nanos < 0 {
        let value = go_quote(&amount.to_string());
        causes.push(Cause::invalid(field, &value, validation::IS_NEGATIVE));
    }
    if validation::is_integer_resource(name)
        && quantity::nanos_to(amount.nanos, 1_000_000) % 1000 != 0
    {
        causes.push(Cause::invalid(
            field,
            &go_quantity_struct(&q.0),
            "must be an integer",
        ));
    }
    causes
}

/// Upstream's `IsHugePageResourceValueDivisible`: an amount of `hugepages-<size>` is a whole
/// number of pages.
fn hugepages_multiple(field: &str, name: &str, q: &Quantity) -> Option<Cause> {
    let size = name.strip_prefix("hugepages-")?;
    let bytes = quantity::parse_bytes(q).unwrap_or(0);
    let divisible = match quantity::parse_nanos(size) {
        Some(page) if page > 0 && page % quantity::NANO == 0 => {
            let page = quantity::nanos_to(page, quantity::NANO);
            bytes % page == 0
        }
        _ => false,
    };
    (!divisible).then(|| {
        let amount = parsed(q).to_string();
        let message = format!("{amount} is not positive integer multiple of {name}");
        Cause::invalid(field, &go_quote(&amount), &message)
    })
}

/// A `resource.Quantity` as Go's `%#v` prints it, which is how upstream shows a quantity that
/// must be whole: its int64 form (`value`, `scale`), the cached string (kept only when the
/// written form was already canonical) and the format.
///
/// # Caveats
/// Upstream keeps an amount its int64 form cannot hold exactly as a pointer to a big decimal,
/// printed as an address; that address is shown here as `0xc000000000`.
fn go_quantity_struct(written: &str) -> String {
    let format = parsed(&Quantity(written.to_string())).format;
    let format_name = match format {
        Format::DecimalSI => "DecimalSI",
        Format::BinarySI => "BinarySI",
        Format::DecimalExponent => "DecimalExponent",
    };
    let (int64, cached) = match int64_form(written) {
        Some((value, scale, cached)) => (
            format!("resource.int64Amount{{value:{value}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}"),
            if cached { written } else { "" },
        ),
        None => (
            "resource.int64Amount{value:0, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(0xc000000000)}".to_string(),
            "",
        ),
    };
    format!(
        "resource.Quantity{{i:{int64}, s:{}, Format:{}}}",
        go_quote(cached),
        go_quote(format_name)
    )
}

/// The int64 form upstream's `ParseQuantity` takes on its fast path, `(value, scale, whether
/// the written string is kept)`, or `None` where it falls back to a big decimal.
fn int64_form(written: &str) -> Option<(i64, i32, bool)> {
    let (negative, rest) = match written.as_bytes().first() {
        Some(b'-') => (true, &written[1..]),
        Some(b'+') => (false, &written[1..]),
        _ => (false, written),
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(digits_end);
    let (int_part, denom) = number.split_once('.').unwrap_or((number, ""));
    let num = int_part.trim_start_matches('0');
    let num = if num.is_empty() { "0" } else { num };
    let (exponent, binary): (i32, bool) = match suffix {
        "" => (0, false),
        "n" => (-9, false),
        "u" => (-6, false),
        "m" => (-3, false),
        "k" => (3, false),
        "M" => (6, false),
        "G" => (9, false),
        "T" => (12, false),
        "P" => (15, false),
        "E" => (18, false),
        "Ki" => (10, true),
        "Mi" => (20, true),
        "Gi" => (30, true),
        "Ti" => (40, true),
        "Pi" => (50, true),
        "Ei" => (60, true),
        _ => (suffix.get(1..)?.parse().ok()?, false),
    };
    let shifted = format!("{num}{denom}");
    let sign = |v: i64| if negative { -v } else { v };
    if binary {
        let precision = 15 - num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
        if !denom.is_empty() || precision < 0 {
            return None;
        }
        let value: i64 = num.parse().ok()?;
        let result = value.checked_mul(1i64 << exponent)?;
        return Some((sign(result), 0, value & 7 != 0));
    }
    let precision = 18 - num.len() as i32 - denom.len() as i32;
    let scale = exponent - denom.len() as i32;
    if precision < 0 || scale < -9 {
        return None;
    }
    let value: i64 = shifted.parse().ok()?;
    let cached = scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0');
    Some((sign(value), scale, cached))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_as_gos_struct_syntax() {
        assert_eq!(
            go_quantity_struct("1500m"),
            "resource.Quantity{i:resource.int64Amount{value:1500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1500m\", Format:\"DecimalSI\"}"
        );
        assert_eq!(
            go_quantity_struct("1.5"),
            "resource.Quantity{i:resource.int64Amount{value:15, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"\", Format:\"DecimalSI\"}"
        );
        assert_eq!(
            go_quantity_struct("500e-3"),
            "resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500e-3\", Format:\"DecimalExponent\"}"
        );
    }
}
