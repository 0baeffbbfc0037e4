//! Per-kind admission: decoding into the k8s-openapi type, upstream defaults, the
//! create-time status reset, and validation with upstream's field error wording.
//!
//! Everything here is a pure function of the request's object (and the stored one on update);
//! it must not touch the store or HTTP.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Event, Namespace, Node, Pod, PodSpec, PodTemplateSpec, Probe,
    Secret, ServiceAccount, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::containers;
use super::error::{ApiError, ApiResult, Cause};
use super::registry::Kind;
use super::validation;
use crate::k8s::default_pull_policy;
use crate::k8s::qos::qos_class;

/// Which write admission runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A create.
    Create,
    /// An update (PUT or PATCH) of the main resource or a subresource.
    Update,
}

/// An admitted object: typed, defaulted, validated, re-encoded.
#[derive(Debug)]
pub struct Admitted {
    /// The object as it will be stored.
    pub value: Value,
    /// Paths of fields in the request that the kind does not have (for fieldValidation).
    pub unknown_fields: Vec<String>,
}

/// Defaults and validation for one k8s-openapi type.
pub trait Strategy: Serialize + DeserializeOwned + schemars::JsonSchema {
    /// Upstream's defaulting (`SetDefaults_*`) and defaulting admission plugins.
    fn default(&mut self) {}
    /// What upstream's `PrepareForCreate` does (e.g. a new Pod's status is reset to Pending).
    fn prepare_for_create(&mut self) {}
    /// What upstream does to an update before validating it (`PrepareForUpdate`, and the
    /// registry's own hooks), e.g. a Service keeps the cluster IP a client left out.
    fn prepare_for_update(&mut self, _old: &Self) {}
    /// Field errors, as upstream's validation reports them.
    fn validate(&self) -> Vec<Cause> {
        Vec::new()
    }
    /// Field errors for an update, including immutable fields.
    fn validate_update(&self, _old: &Self) -> Vec<Cause> {
        self.validate()
    }
    /// The metadata.
    fn meta(&self) -> &ObjectMeta;
    /// The resource quantities the object holds, with their field paths: each must parse, as
    /// upstream's decoding requires.
    fn quantities(&self) -> Vec<(String, &Quantity)> {
        Vec::new()
    }
}

/// Admission for kind `T`.
///
/// # Errors
/// 400 when the object does not decode as `T`; 422 with causes when it is invalid.
pub fn admit<T: Strategy>(
    kind: &Kind,
    op: Operation,
    mut value: Value,
    old: Option<&Value>,
) -> ApiResult<Admitted> {
    super::go_shape::canonical_quantities::<T>(&mut value);
    // One typed decode that also reports the fields the type does not have.
    let mut unknown_fields = Vec::new();
    let mut typed: T =
        serde_ignored::deserialize(&value, |path| unknown_fields.push(render_path(&path)))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    kind.kind, kind.version, kind.kind
                ))
            })?;
    drop(value);
    // Upstream decodes quantities strictly: a malformed one is a decode error (400), before
    // any defaulting or validation.
    if typed
        .quantities()
        .iter()
        .any(|(_, q)| crate::k8s::quantity::parse_nanos(&q.0).is_none())
    {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            kind.kind,
            kind.version,
            kind.kind,
            crate::k8s::quantity::format_error()
        )));
    }
    let old: Option<T> = match old {
        Some(old) if op == Operation::Update => serde_json::from_value(old.clone()).ok(),
        _ => None,
    };
    // Upstream defaults as it decodes, before the strategy prepares the object.
    typed.default();
    match (op, &old) {
        (Operation::Create, _) => typed.prepare_for_create(),
        (Operation::Update, Some(old)) => typed.prepare_for_update(old),
        (Operation::Update, None) => {}
    }
    let mut causes = validate_meta(kind, typed.meta());
    causes.extend(match &old {
        Some(old) => typed.validate_update(old),
        None => typed.validate(),
    });
    if !causes.is_empty() {
        let name = typed.meta().name.clone().unwrap_or_default();
        return Err(ApiError::invalid(kind, &name, &causes));
    }
    let mut value = serde_json::to_value(&typed).map_err(ApiError::internal)?;
    super::go_shape::shape::<T>(&mut value);
    Ok(Admitted {
        value,
        unknown_fields,
    })
}

/// A field path as upstream's strict decoding names it: `spec.containers[0].colour`.
fn render_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_path(parent)),
        Path::Map { parent, key } => {
            let p = render_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_path(parent),
    }
}

// ---------- metadata ----------

/// Whether `s` is an RFC 1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters).
pub fn is_dns1123_label(s: &str) -> bool {
    validation::dns1123_label_errors(s).is_empty()
}

/// Whether `s` is an RFC 1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    validation::dns1123_subdomain_errors(s).is_empty()
}

/// Names that must be labels rather than subdomains.
fn name_is_label(kind: &Kind) -> bool {
    matches!(kind.resource, "namespaces" | "services")
}

/// The errors of a name that must be a label: a Service's is a DNS-1035 label (it becomes a
/// DNS name and environment variables), a namespace's an RFC 1123 one.
fn label_name_errors(kind: &Kind, name: &str) -> Vec<String> {
    if kind.resource == "services" {
        validation::dns1035_label_errors(name)
    } else {
        validation::dns1123_label_errors(name)
    }
}

/// Validate the name (required unless generated) and the namespace rules of the kind.
fn validate_meta(kind: &Kind, meta: &ObjectMeta) -> Vec<Cause> {
    let mut causes = Vec::new();
    match meta.name.as_deref() {
        None | Some("") => causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            let errors = if name_is_label(kind) {
                label_name_errors(kind, name)
            } else if kind.resource == "events" {
                // Event names carry a hex timestamp suffix; upstream only bans path segments.
                let ok = !name.contains('/') && !name.contains('%') && name != "." && name != "..";
                if ok {
                    Vec::new()
                } else {
                    vec!["may not contain '/' or '%'".to_string()]
                }
            } else {
                validation::dns1123_subdomain_errors(name)
            };
            let value = validation::go_quote(name);
            for message in errors {
                causes.push(Cause::invalid("metadata.name", &value, &message));
            }
        }
    }
    if !kind.namespaced && meta.namespace.as_deref().is_some_and(|ns| !ns.is_empty()) {
        causes.push(Cause::invalid(
            "metadata.namespace",
            &format!("\"{}\"", meta.namespace.as_deref().unwrap_or_default()),
            "not allowed on this type",
        ));
    }
    causes.extend(validation::labels_and_annotations(
        meta.labels.as_ref(),
        meta.annotations.as_ref(),
    ));
    causes
}

// ---------- pods ----------

fn default_probe(probe: &mut Option<Probe>) {
    if let Some(p) = probe {
        p.timeout_seconds.get_or_insert(1);
        p.period_seconds.get_or_insert(10);
        p.success_threshold.get_or_insert(1);
        p.failure_threshold.get_or_insert(3);
        if let Some(http) = &mut p.http_get {
            http.path.get_or_insert_with(|| "/".into());
            http.scheme.get_or_insert_with(|| "HTTP".into());
        }
    }
}

fn default_container(c: &mut Container) {
    if let Some(image) = &c.image {
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            c.image_pull_policy = Some(default_pull_policy(image).into());
        }
    }
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    c.resources.get_or_insert_with(Default::default);
    for port in c.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            field.api_version.get_or_insert_with(|| "v1".into());
        }
    }
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
}

fn default_pod_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.security_context.get_or_insert_with(Default::default);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = &mut v.config_map {
            cm.default_mode.get_or_insert(0o644);
        }
        if let Some(s) = &mut v.secret {
            s.default_mode.get_or_insert(0o644);
        }
        if let Some(d) = &mut v.downward_api {
            d.default_mode.get_or_insert(0o644);
        }
        if let Some(p) = &mut v.projected {
            p.default_mode.get_or_insert(0o644);
            for source in p.sources.iter_mut().flatten() {
                if let Some(t) = &mut source.service_account_token {
                    t.expiration_seconds.get_or_insert(60 * 60);
                }
            }
        }
    }
}

/// The tolerations the DefaultTolerationSeconds admission plugin adds to every pod.
fn add_default_tolerations(spec: &mut PodSpec) {
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = tolerations.iter().any(|t| {
            (t.key.as_deref() == Some(key)
                || t.key.is_none() && t.operator.as_deref() == Some("Exists"))
                && t.effect
                    .as_deref()
                    .is_none_or(|e| e == "NoExecute" || e.is_empty())
        });
        if !tolerated {
            tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
}

/// The quantities of a pod spec at `path`: container requests and limits, emptyDir size limits,
/// overhead.
fn pod_spec_quantities<'a>(spec: &'a PodSpec, path: &str) -> Vec<(String, &'a Quantity)> {
    let mut out = Vec::new();
    let lists = [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let Some(resources) = &c.resources else {
                continue;
            };
            for (which, map) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                for (name, q) in map.iter().flatten() {
                    out.push((format!("{path}.{list}[{i}].resources.{which}[{name}]"), q));
                }
            }
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
            out.push((format!("{path}.volumes[{i}].emptyDir.sizeLimit"), q));
        }
    }
    for (name, q) in spec.overhead.iter().flatten() {
        out.push((format!("{path}.overhead[{name}]"), q));
    }
    out
}

/// The largest `activeDeadlineSeconds` upstream accepts (`math.MaxInt32`).
const MAX_ACTIVE_DEADLINE_SECONDS: i64 = i32::MAX as i64;

/// Upstream's `ValidatePodSpec` (the parts modelled here), in its order: containers and init
/// containers, restartPolicy, activeDeadlineSeconds; then what a workload's template may not
/// have.
fn validate_pod_spec(spec: &PodSpec, path: &str, template: bool) -> Vec<Cause> {
    let mut causes = containers::validate(spec, path);
    let restart_policy = spec.restart_policy.as_deref();
    if let Some(policy) = restart_policy {
        let supported = ["Always", "OnFailure", "Never"];
        if !supported.contains(&policy) {
            causes.push(Cause::not_supported(
                format!("{path}.restartPolicy"),
                policy,
                &supported,
            ));
        }
    }
    if let Some(ads) = spec.active_deadline_seconds {
        if !(1..=MAX_ACTIVE_DEADLINE_SECONDS).contains(&ads) {
            causes.push(Cause::invalid(
                format!("{path}.activeDeadlineSeconds"),
                &ads.to_string(),
                &format!("must be between 1 and {MAX_ACTIVE_DEADLINE_SECONDS}, inclusive"),
            ));
        }
    }
    if let Some(grace) = spec.termination_grace_period_seconds {
        if grace < 0 {
            causes.push(Cause::invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                &grace.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    // Upstream's ReplicaSet (and so Deployment) template validation, after the pod spec's.
    if template {
        if let Some(policy) = restart_policy.filter(|p| *p != "Always") {
            causes.push(Cause::not_supported(
                format!("{path}.restartPolicy"),
                policy,
                &["Always"],
            ));
        }
    }
    if template && spec.active_deadline_seconds.is_some() {
        causes.push(Cause::forbidden(
            format!("{path}.activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    causes
}

/// Upstream's `SetDefaults_Pod` (a Pod's, not a template's): a container that sets a limit but
/// no request for a resource requests its limit.
fn default_requests_to_limits(spec: &mut PodSpec) {
    let all = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in all {
        let Some(resources) = c.resources.as_mut() else {
            continue;
        };
        let Some(limits) = &resources.limits else {
            continue;
        };
        let requests = resources.requests.get_or_insert_with(Default::default);
        for (name, limit) in limits {
            requests
                .entry(name.clone())
                .or_insert_with(|| limit.clone());
        }
    }
}

impl Strategy for Pod {
    fn default(&mut self) {
        if let Some(spec) = &mut self.spec {
            default_pod_spec(spec);
            default_requests_to_limits(spec);
            add_default_tolerations(spec);
            // v1's deprecated `serviceAccount` is an alias of `serviceAccountName`: read when
            // the name is not given, and always written back as it. (A pod that names no
            // account is given `default` by the ServiceAccount admission, on create.)
            if spec
                .service_account_name
                .as_deref()
                .unwrap_or("")
                .is_empty()
            {
                spec.service_account_name = spec.service_account.take();
            }
            spec.service_account_name = spec.service_account_name.take().filter(|n| !n.is_empty());
            spec.service_account = spec.service_account_name.clone();
            // The Priority admission has set these from the pod's class (see
            // `apiserver::priority`); a pod written without it counts as of no class.
            spec.priority.get_or_insert(0);
            spec.enable_service_links.get_or_insert(true);
            spec.preemption_policy
                .get_or_insert_with(|| "PreemptLowerPriority".into());
        }
        if self.metadata.generation.is_none() {
            self.metadata.generation = Some(1);
        }
    }

    fn prepare_for_create(&mut self) {
        let qos = self.spec.as_ref().map(qos_class).unwrap_or("BestEffort");
        self.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos.into()),
            ..Default::default()
        });
    }

    fn validate(&self) -> Vec<Cause> {
        match &self.spec {
            Some(spec) => validate_pod_spec(spec, "spec", false),
            None => vec![Cause::required("spec.containers", "")],
        }
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        self.spec
            .as_ref()
            .map(|s| pod_spec_quantities(s, "spec"))
            .unwrap_or_default()
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            causes.extend(validate_pod_spec_update(new, old));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// What upstream's `ValidatePodUpdate` allows of a pod's spec: only the images of containers,
/// a shorter (or new) activeDeadlineSeconds, added tolerations, and a terminationGracePeriodSeconds
/// of 1 where it was negative. Everything else (the node a pod is bound to, its volumes, ports,
/// resources...) is fixed once the pod exists.
fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<Cause> {
    if new.containers.len() != old.containers.len() {
        return vec![Cause::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        )];
    }
    let mut causes = Vec::new();
    let mut munged = new.clone();
    for (n, o) in munged.containers.iter_mut().zip(&old.containers) {
        n.image.clone_from(&o.image);
    }
    if let (Some(new_init), Some(old_init)) =
        (munged.init_containers.as_mut(), &old.init_containers)
    {
        for (n, o) in new_init.iter_mut().zip(old_init) {
            n.image.clone_from(&o.image);
        }
    }
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), Some(o)) if n > o => {
            return vec![Cause::invalid(
                "spec.activeDeadlineSeconds",
                &n.to_string(),
                "must be less than or equal to previous value",
            )];
        }
        (None, Some(_)) => causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            "\"null\"",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    let old_tolerations = old.tolerations.as_deref().unwrap_or_default();
    let new_tolerations = new.tolerations.as_deref().unwrap_or_default();
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        munged.tolerations.clone_from(&old.tolerations);
    }
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && new.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if munged != *old {
        // Upstream appends a Go diff of the two specs; that text is Go's own and is left out.
        causes.push(Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    causes
}

// ---------- workloads ----------

fn default_template(template: &mut PodTemplateSpec) {
    if let Some(spec) = &mut template.spec {
        default_pod_spec(spec);
    }
}

fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    crate::labels::matches(selector, labels)
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    crate::labels::is_empty(selector)
}

/// Validation shared by Deployments and ReplicaSets.
fn validate_workload(
    replicas: Option<i32>,
    selector: &LabelSelector,
    template: Option<&PodTemplateSpec>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(r) = replicas {
        if r < 0 {
            causes.push(Cause::invalid(
                "spec.replicas",
                &r.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    if selector_is_empty(selector) {
        causes.push(Cause::required("spec.selector", ""));
        causes.push(Cause::invalid("spec.selector", "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}", "empty selector is invalid for deployment"));
    }
    match template {
        None => causes.push(Cause::required("spec.template", "")),
        Some(template) => {
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            if !selector_is_empty(selector) && !selector_matches(selector, &labels) {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &validation::go_map(Some(&labels)),
                    "`selector` does not match template `labels`",
                ));
            }
            match &template.spec {
                Some(spec) => causes.extend(validate_pod_spec(spec, "spec.template.spec", true)),
                None => causes.push(Cause::required("spec.template.spec.containers", "")),
            }
        }
    }
    causes
}

fn template_quantities(template: Option<&PodTemplateSpec>) -> Vec<(String, &Quantity)> {
    template
        .and_then(|t| t.spec.as_ref())
        .map(|s| pod_spec_quantities(s, "spec.template.spec"))
        .unwrap_or_default()
}

fn default_int_or_percent(v: &mut Option<IntOrString>, default: &str) {
    v.get_or_insert_with(|| IntOrString::String(default.into()));
}

impl Strategy for Deployment {
    fn default(&mut self) {
        if let Some(spec) = &mut self.spec {
            spec.replicas.get_or_insert(1);
            spec.revision_history_limit.get_or_insert(10);
            spec.progress_deadline_seconds.get_or_insert(600);
            let strategy = spec.strategy.get_or_insert_with(Default::default);
            strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
            if strategy.type_.as_deref() == Some("RollingUpdate") {
                let ru = strategy.rolling_update.get_or_insert_with(Default::default);
                default_int_or_percent(&mut ru.max_surge, "25%");
                default_int_or_percent(&mut ru.max_unavailable, "25%");
            }
            default_template(&mut spec.template);
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = None;
        self.metadata.generation = Some(1);
    }

    fn validate(&self) -> Vec<Cause> {
        let Some(spec) = &self.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut causes = validate_workload(spec.replicas, &spec.selector, Some(&spec.template));
        if let Some(strategy) = &spec.strategy {
            match strategy.type_.as_deref() {
                Some("Recreate") if strategy.rolling_update.is_some() => causes.push(Cause {
                    reason: "FieldValueForbidden",
                    field: "spec.strategy.rollingUpdate".into(),
                    message: "Forbidden: may not be specified when strategy `type` is 'Recreate'"
                        .into(),
                }),
                Some("Recreate" | "RollingUpdate") | None => {}
                Some(other) => causes.push(Cause::not_supported(
                    "spec.strategy.type",
                    other,
                    &["Recreate", "RollingUpdate"],
                )),
            }
        }
        causes
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            if new.selector != old.selector {
                causes.push(selector_is_immutable(&new.selector));
            }
        }
        causes
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        template_quantities(self.spec.as_ref().map(|s| &s.template))
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// A workload's selector may not change (apps/v1), shown as Go shows the new one.
fn selector_is_immutable(selector: &LabelSelector) -> Cause {
    let value = validation::go_label_selector(selector);
    Cause::invalid("spec.selector", &value, "field is immutable")
}

impl Strategy for ReplicaSet {
    fn default(&mut self) {
        if let Some(spec) = &mut self.spec {
            spec.replicas.get_or_insert(1);
            if let Some(t) = &mut spec.template {
                default_template(t);
            }
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
        self.metadata.generation = Some(1);
    }

    fn validate(&self) -> Vec<Cause> {
        match &self.spec {
            Some(spec) => validate_workload(spec.replicas, &spec.selector, spec.template.as_ref()),
            None => vec![Cause::required("spec", "")],
        }
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            if new.selector != old.selector {
                causes.push(selector_is_immutable(&new.selector));
            }
        }
        causes
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        template_quantities(self.spec.as_ref().and_then(|s| s.template.as_ref()))
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl Strategy for DaemonSet {
    fn default(&mut self) {
        if let Some(spec) = &mut self.spec {
            spec.revision_history_limit.get_or_insert(10);
            let strategy = spec.update_strategy.get_or_insert_with(Default::default);
            strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
            if strategy.type_.as_deref() == Some("RollingUpdate") {
                let ru = strategy.rolling_update.get_or_insert_with(Default::default);
                ru.max_unavailable.get_or_insert(IntOrString::Int(1));
                ru.max_surge.get_or_insert(IntOrString::Int(0));
            }
            default_template(&mut spec.template);
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
        self.metadata.generation = Some(1);
    }

    fn validate(&self) -> Vec<Cause> {
        let Some(spec) = &self.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut causes = Vec::new();
        if selector_is_empty(&spec.selector) {
            causes.push(Cause::required("spec.selector", ""));
            causes.push(Cause::invalid(
                "spec.selector",
                &validation::go_label_selector(&spec.selector),
                "empty selector is invalid for daemonset",
            ));
        }
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if !selector_is_empty(&spec.selector) && !selector_matches(&spec.selector, &labels) {
            causes.push(Cause::invalid(
                "spec.template.metadata.labels",
                &validation::go_map(Some(&labels)),
                "`selector` does not match template `labels`",
            ));
        }
        match &spec.template.spec {
            // A workload template: daemon pods run for ever (restartPolicy Always only).
            Some(pod) => causes.extend(validate_pod_spec(pod, "spec.template.spec", true)),
            None => causes.push(Cause::required("spec.template.spec.containers", "")),
        }
        for (field, value) in [
            ("spec.minReadySeconds", spec.min_ready_seconds),
            ("spec.revisionHistoryLimit", spec.revision_history_limit),
        ] {
            if let Some(v) = value.filter(|v| *v < 0) {
                causes.push(Cause::invalid(
                    field,
                    &v.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        if let Some(strategy) = &spec.update_strategy {
            match strategy.type_.as_deref() {
                Some("OnDelete" | "RollingUpdate") | None => {}
                Some(other) => causes.push(Cause::not_supported(
                    "spec.updateStrategy.type",
                    other,
                    &["OnDelete", "RollingUpdate"],
                )),
            }
        }
        causes
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            if new.selector != old.selector {
                causes.push(selector_is_immutable(&new.selector));
            }
        }
        causes
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        template_quantities(self.spec.as_ref().map(|s| &s.template))
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// The most parallelism an Indexed Job may have (upstream `maxParallelismForIndexedJob`).
const MAX_INDEXED_JOB_PARALLELISM: i32 = 100_000;

/// The labels the apiserver puts on a Job's pod template (and its own metadata) when it
/// generates the selector.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The selector's label: the Job's uid.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

impl Strategy for Job {
    fn default(&mut self) {
        let Some(spec) = &mut self.spec else { return };
        match (spec.completions, spec.parallelism) {
            (None, None) => {
                spec.completions = Some(1);
                spec.parallelism = Some(1);
            }
            (_, None) => spec.parallelism = Some(1),
            _ => {}
        }
        spec.backoff_limit
            .get_or_insert(if spec.backoff_limit_per_index.is_some() {
                i32::MAX
            } else {
                6
            });
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        spec.manual_selector.get_or_insert(false);
        spec.pod_replacement_policy.get_or_insert_with(|| {
            if spec.pod_failure_policy.is_some() {
                "Failed".into()
            } else {
                "TerminatingOrFailed".into()
            }
        });
        for rule in spec
            .pod_failure_policy
            .iter_mut()
            .flat_map(|p| p.rules.iter_mut())
        {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if pattern.status.is_empty() {
                    pattern.status = "True".into();
                }
            }
        }
        default_template(&mut spec.template);
        copy_template_labels(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
        self.metadata.generation = Some(1);
        // The generated selector (unless the client chose its own with manualSelector).
        let name = self.metadata.name.clone().unwrap_or_default();
        let uid = self.metadata.uid.clone().unwrap_or_default();
        if let Some(spec) = &mut self.spec {
            if spec.manual_selector != Some(true) {
                let labels = spec
                    .template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels
                    .get_or_insert_with(Default::default);
                for (key, value) in [
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &name),
                    ("controller-uid", &uid),
                    ("job-name", &name),
                ] {
                    labels.entry(key.into()).or_insert_with(|| value.clone());
                }
                let selector = spec.selector.get_or_insert_with(Default::default);
                let match_labels = selector.match_labels.get_or_insert_with(Default::default);
                match_labels
                    .entry(JOB_CONTROLLER_UID_LABEL.into())
                    .or_insert(uid);
            }
        }
        copy_template_labels(self);
    }

    fn validate(&self) -> Vec<Cause> {
        let Some(spec) = &self.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut causes = Vec::new();
        for (field, value) in [
            ("spec.parallelism", spec.parallelism),
            ("spec.completions", spec.completions),
            ("spec.backoffLimit", spec.backoff_limit),
            (
                "spec.ttlSecondsAfterFinished",
                spec.ttl_seconds_after_finished,
            ),
            ("spec.backoffLimitPerIndex", spec.backoff_limit_per_index),
            ("spec.maxFailedIndexes", spec.max_failed_indexes),
        ] {
            if let Some(v) = value.filter(|v| *v < 0) {
                causes.push(Cause::invalid(
                    field,
                    &v.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        if let Some(ads) = spec.active_deadline_seconds.filter(|v| *v < 0) {
            causes.push(Cause::invalid(
                "spec.activeDeadlineSeconds",
                &ads.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        match spec.completion_mode.as_deref() {
            Some("NonIndexed") | None => {}
            Some("Indexed") => {
                if spec.completions.is_none() {
                    causes.push(Cause::required(
                        "spec.completions",
                        "when completion mode is Indexed",
                    ));
                }
                // Upstream's bound, which caps the length of completedIndexes.
                if let Some(v) = spec
                    .parallelism
                    .filter(|v| *v > MAX_INDEXED_JOB_PARALLELISM)
                {
                    causes.push(Cause::invalid(
                        "spec.parallelism",
                        &v.to_string(),
                        &format!(
                            "must be less than or equal to {MAX_INDEXED_JOB_PARALLELISM} when completion mode is Indexed"
                        ),
                    ));
                }
            }
            Some(other) => causes.push(Cause::not_supported(
                "spec.completionMode",
                other,
                &["NonIndexed", "Indexed"],
            )),
        }
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        match &spec.selector {
            None => causes.push(Cause::required("spec.selector", "")),
            Some(selector) => {
                // Without manualSelector the selector is the generated one, exactly.
                let uid = self.metadata.uid.clone().unwrap_or_default();
                let generated = LabelSelector {
                    match_labels: Some([(JOB_CONTROLLER_UID_LABEL.to_string(), uid)].into()),
                    match_expressions: None,
                };
                if spec.manual_selector != Some(true) && *selector != generated {
                    causes.push(Cause::invalid(
                        "spec.selector",
                        &validation::go_label_selector(selector),
                        "`selector` not auto-generated",
                    ));
                } else if !selector_matches(selector, &labels) {
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &validation::go_map(Some(&labels)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
        match &spec.template.spec {
            Some(pod) => {
                causes.extend(validate_pod_spec(pod, "spec.template.spec", false));
                match pod.restart_policy.as_deref() {
                    Some("OnFailure" | "Never") => {}
                    None | Some("Always") => causes.push(Cause::required(
                        "spec.template.spec.restartPolicy",
                        "valid values: \"OnFailure\", \"Never\"",
                    )),
                    // Other values are refused by the pod spec's own check.
                    Some(_) => {}
                }
            }
            None => causes.push(Cause::required("spec.template.spec.containers", "")),
        }
        causes
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            if new.selector != old.selector {
                if let Some(selector) = &new.selector {
                    causes.push(selector_is_immutable(selector));
                }
            }
            if new.template != old.template {
                causes.push(Cause::invalid(
                    "spec.template",
                    "core.PodTemplateSpec{...}",
                    "field is immutable",
                ));
            }
            if new.completion_mode != old.completion_mode {
                causes.push(Cause::invalid(
                    "spec.completionMode",
                    new.completion_mode.as_deref().unwrap_or(""),
                    "field is immutable",
                ));
            }
        }
        causes
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        template_quantities(self.spec.as_ref().map(|s| &s.template))
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// A Job without labels of its own takes its template's (upstream `SetDefaults_Job`).
fn copy_template_labels(job: &mut Job) {
    if job.metadata.labels.as_ref().is_some_and(|l| !l.is_empty()) {
        return;
    }
    let labels = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .filter(|l| !l.is_empty());
    if labels.is_some() {
        job.metadata.labels = labels;
    }
}

/// The highest priority a user's PriorityClass may have (upstream
/// `HighestUserDefinablePriority`).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;

/// The PriorityClasses every cluster has (upstream `SystemPriorityClasses`): name, value,
/// description.
pub const SYSTEM_PRIORITY_CLASSES: [(&str, i32, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

impl Strategy for k8s_openapi::api::scheduling::v1::PriorityClass {
    fn default(&mut self) {
        self.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn validate(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        let name = self.metadata.name.as_deref().unwrap_or_default();
        if name.starts_with("system-") {
            let known = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _, _)| *n == name);
            let why = match known {
                None => Some(format!("{name} is not a known system priority class")),
                Some((_, value, _)) if *value != self.value => {
                    Some(format!("value of {name} PriorityClass must be {value}"))
                }
                Some(_) if self.global_default == Some(true) => Some(format!(
                    "globalDefault of {name} PriorityClass must be false"
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                causes.push(Cause::forbidden(
                    "metadata.name",
                    &format!(
                        "priority class names with 'system-' prefix are reserved for system use only. error: {why}"
                    ),
                ));
            }
        } else if self.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            causes.push(Cause::forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                ),
            ));
        }
        if let Some(policy) = self.preemption_policy.as_deref() {
            if !matches!(policy, "Never" | "PreemptLowerPriority") {
                causes.push(Cause::not_supported(
                    "preemptionPolicy",
                    policy,
                    &["Never", "PreemptLowerPriority"],
                ));
            }
        }
        causes
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if self.value != old.value {
            causes.push(Cause::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        if self.preemption_policy != old.preemption_policy {
            causes.push(Cause::invalid(
                "preemptionPolicy",
                self.preemption_policy.as_deref().unwrap_or(""),
                "field is immutable",
            ));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// A workload's history entry (the DaemonSet controller's, here).
impl Strategy for ControllerRevision {
    fn validate(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        if self.revision < 0 {
            causes.push(Cause::invalid(
                "revision",
                &self.revision.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

// ---------- the rest ----------

impl Strategy for Namespace {
    fn default(&mut self) {
        let name = self.metadata.name.clone().unwrap_or_default();
        self.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }

    fn prepare_for_create(&mut self) {
        self.spec = Some(k8s_openapi::api::core::v1::NamespaceSpec {
            finalizers: Some(vec!["kubernetes".into()]),
        });
        self.status = Some(k8s_openapi::api::core::v1::NamespaceStatus {
            phase: Some("Active".into()),
            conditions: None,
        });
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// Never admitted (componentstatuses serve get and list only); here so the registry's entry has
/// an admission like every other.
impl Strategy for k8s_openapi::api::core::v1::ComponentStatus {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl Strategy for Secret {
    fn default(&mut self) {
        self.type_.get_or_insert_with(|| "Opaque".into());
    }

    fn validate(&self) -> Vec<Cause> {
        // stringData is merged into data first (its keys win), as upstream converts it.
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, v) in self.data.iter().flatten() {
            sizes.insert(k, v.0.len());
        }
        for (k, v) in self.string_data.iter().flatten() {
            sizes.insert(k, v.len());
        }
        let mut causes = validation::config_map_keys("data", sizes.keys().copied());
        if sizes.values().fold(0usize, |a, b| a.saturating_add(*b)) > MAX_DATA_BYTES {
            causes.push(Cause::too_long("data", MAX_DATA_BYTES));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

macro_rules! plain_strategy {
    ($($t:ty),*) => {$(
        impl Strategy for $t {
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    )*};
}

plain_strategy!(
    ServiceAccount,
    Endpoints,
    Lease,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
);

impl Strategy for Node {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn quantities(&self) -> Vec<(String, &Quantity)> {
        let status = self.status.as_ref();
        let maps = [
            ("status.capacity", status.and_then(|s| s.capacity.as_ref())),
            (
                "status.allocatable",
                status.and_then(|s| s.allocatable.as_ref()),
            ),
        ];
        maps.into_iter()
            .flat_map(|(path, map)| {
                map.into_iter()
                    .flatten()
                    .map(move |(name, q)| (format!("{path}[{name}]"), q))
            })
            .collect()
    }
}

/// The most a ConfigMap's or Secret's data may hold (`MaxSecretSize`, 1 MiB).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

impl Strategy for ConfigMap {
    fn validate(&self) -> Vec<Cause> {
        let data = self.data.as_ref();
        let binary = self.binary_data.as_ref();
        let mut causes = validation::config_map_keys(
            "data",
            data.into_iter().flatten().map(|(k, _)| k.as_str()),
        );
        causes.extend(validation::config_map_keys(
            "binaryData",
            binary.into_iter().flatten().map(|(k, _)| k.as_str()),
        ));
        // A key may stand in one of the two maps only.
        for (key, _) in data.into_iter().flatten() {
            if binary.is_some_and(|b| b.contains_key(key)) {
                let value = validation::go_quote(key);
                let duplicate = |path: &str, other: &str| {
                    let message = format!("duplicate of key present in {other}");
                    Cause::invalid(format!("{path}[{key}]"), &value, &message)
                };
                causes.push(duplicate("data", "binaryData"));
                causes.push(duplicate("binaryData", "data"));
            }
        }
        let text = data.into_iter().flatten().map(|(_, v)| v.len());
        let bytes = binary.into_iter().flatten().map(|(_, v)| v.0.len());
        if text.chain(bytes).fold(0usize, usize::saturating_add) > MAX_DATA_BYTES {
            causes.push(Cause::too_long("[]", MAX_DATA_BYTES));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl Strategy for Event {
    fn validate(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        if self.involved_object.kind.is_none() && self.involved_object.name.is_none() {
            causes.push(Cause::required("involvedObject", ""));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

// ---------- events.k8s.io/v1 <-> core/v1 ----------

fn move_field(from: &mut Map<String, Value>, to: &mut Map<String, Value>, src: &str, dst: &str) {
    if let Some(v) = from.remove(src) {
        if !v.is_null() {
            to.insert(dst.into(), v);
        }
    }
}

/// Convert an events.k8s.io/v1 Event into the core/v1 form it is stored in.
pub fn events_v1_to_core(value: Value) -> Value {
    let Value::Object(mut v1) = value else {
        return value;
    };
    let mut core = Map::new();
    core.insert("apiVersion".into(), json!("v1"));
    core.insert("kind".into(), json!("Event"));
    for (src, dst) in [
        ("metadata", "metadata"),
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("note", "message"),
        ("reason", "reason"),
        ("type", "type"),
        ("action", "action"),
        ("eventTime", "eventTime"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ] {
        move_field(&mut v1, &mut core, src, dst);
    }
    if let Some(Value::Object(series)) = v1.remove("series") {
        core.insert(
            "series".into(),
            json!({"count": series.get("count"), "lastObservedTime": series.get("lastObservedTime")}),
        );
    }
    core.entry("involvedObject").or_insert_with(|| json!({}));
    Value::Object(core)
}

/// Convert a stored core/v1 Event into its events.k8s.io/v1 form.
pub fn core_event_to_v1(core: &Value) -> Value {
    let Value::Object(core) = core.clone() else {
        return core.clone();
    };
    let mut core = core;
    let mut v1 = Map::new();
    v1.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    v1.insert("kind".into(), json!("Event"));
    for (src, dst) in [
        ("metadata", "metadata"),
        ("involvedObject", "regarding"),
        ("related", "related"),
        ("message", "note"),
        ("reason", "reason"),
        ("type", "type"),
        ("action", "action"),
        ("eventTime", "eventTime"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
        ("series", "series"),
    ] {
        move_field(&mut core, &mut v1, src, dst);
    }
    let mut v1 = Value::Object(v1);
    super::go_shape::shape::<k8s_openapi::api::events::v1::Event>(&mut v1);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::registry;

    #[test]
    fn pull_policy_defaults_follow_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(
            default_pull_policy("registry.k8s.io/pause:3.10"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn names_are_checked_as_upstream() {
        assert!(is_dns1123_label("web-1"));
        assert!(!is_dns1123_label("Web"));
        assert!(!is_dns1123_label("-web"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(validation::qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(!validation::qualified_name_errors("-bad").is_empty());
    }

    #[test]
    fn pods_are_defaulted_and_reset_to_pending() {
        let kind = registry::core("pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "livenessProbe": {"httpGet": {"port": 80}}}]},
            "status": {"phase": "Running"}});
        let admitted = admit::<Pod>(kind, Operation::Create, pod, None).unwrap();
        let v = admitted.value;
        assert_eq!(
            v["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(v["spec"]["restartPolicy"], "Always");
        assert_eq!(v["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            v["spec"]["containers"][0]["livenessProbe"]["periodSeconds"],
            10
        );
        assert_eq!(
            v["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"],
            "/"
        );
        assert_eq!(v["spec"]["tolerations"].as_array().unwrap().len(), 2);
        // The account is the ServiceAccount admission's to give, not defaulting's.
        assert_eq!(v["spec"].get("serviceAccountName"), None);
        assert_eq!(v["spec"].get("serviceAccount"), None);
        assert!(admitted.unknown_fields.is_empty());
    }

    #[test]
    fn the_deprecated_service_account_field_is_an_alias_of_the_name() {
        let kind = registry::core("pods");
        let account = |spec: Value| {
            let pod = json!({"metadata": {"name": "p"}, "spec": spec});
            let v = admit::<Pod>(kind, Operation::Create, pod, None)
                .unwrap()
                .value;
            (
                v["spec"]["serviceAccountName"].clone(),
                v["spec"]["serviceAccount"].clone(),
            )
        };
        let containers = json!([{"name": "c", "image": "nginx"}]);
        assert_eq!(
            account(json!({"containers": containers, "serviceAccount": "old"})),
            (json!("old"), json!("old"))
        );
        assert_eq!(
            account(
                json!({"containers": containers, "serviceAccount": "old", "serviceAccountName": "new"})
            ),
            (json!("new"), json!("new"))
        );
    }

    #[test]
    fn unknown_fields_are_reported_with_their_paths() {
        let kind = registry::core("pods");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"bogus": 1, "containers": [{"name": "c", "image": "x", "colour": "red"}]}});
        let admitted = admit::<Pod>(kind, Operation::Create, pod, None).unwrap();
        assert_eq!(
            admitted.unknown_fields,
            vec!["spec.bogus", "spec.containers[0].colour"]
        );
    }

    #[test]
    fn invalid_pods_name_their_fields() {
        let kind = registry::core("pods");
        let err = admit::<Pod>(
            kind,
            Operation::Create,
            json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with("Pod \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", err.message);
        assert!(
            err.message.contains("spec.containers: Required value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_deployment_whose_selector_misses_its_template_is_invalid() {
        let kind = registry::lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let err = admit::<Deployment>(kind, Operation::Create, d, None).unwrap_err();
        assert_eq!(
            err.message,
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn deployments_get_upstream_defaults() {
        let kind = registry::lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}});
        let v = admit::<Deployment>(kind, Operation::Create, d, None)
            .unwrap()
            .value;
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(
            v["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(v["metadata"]["generation"], 1);
    }

    #[test]
    fn events_convert_both_ways() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "m", "reason": "R", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 2});
        let v1 = core_event_to_v1(&core);
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "m");
        assert_eq!(v1["deprecatedCount"], 2);
        let back = events_v1_to_core(v1);
        assert_eq!(back["involvedObject"], core["involvedObject"]);
        assert_eq!(back["source"], core["source"]);
    }
}

// ---------- endpoint slices ----------

/// The address types an EndpointSlice may carry, as upstream lists them (sorted).
const ENDPOINT_SLICE_ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
/// The protocols an EndpointSlice port may name.
const ENDPOINT_SLICE_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// At most this many endpoints in one slice, addresses in one endpoint, ports in one slice.
const MAX_SLICE_ENDPOINTS: usize = 1000;
const MAX_ENDPOINT_ADDRESSES: usize = 100;
const MAX_SLICE_PORTS: usize = 100;

/// apimachinery's `field.TooMany`.
fn too_many(field: String, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        field,
        message: format!("Too many: {actual}: must have at most {max} items"),
    }
}

/// apimachinery's `IsFullyQualifiedDomainName`.
fn fqdn_errors(field: &str, value: &str) -> Vec<Cause> {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        return vec![Cause::required(field, "")];
    }
    let errors = validation::dns1123_subdomain_errors(name);
    if !errors.is_empty() {
        let quoted = validation::go_quote(name);
        return errors
            .iter()
            .map(|m| Cause::invalid(field, &quoted, m))
            .collect();
    }
    if !name.contains('.') {
        return vec![Cause::invalid(
            field,
            &validation::go_quote(name),
            "should be a domain with at least two segments separated by dots",
        )];
    }
    Vec::new()
}

/// An address of an endpoint, checked against its slice's address type (unknown types are
/// not checked, as upstream). Upstream also refuses loopback and other special addresses in
/// IPv4 and IPv6 slices; the reference cluster's pod IPs are loopback addresses, so that rule
/// is left out.
fn endpoint_address_errors(field: &str, address_type: &str, address: &str) -> Vec<Cause> {
    let quoted = || validation::go_quote(address);
    match address_type {
        "IPv4" if address.parse::<std::net::Ipv4Addr>().is_err() => vec![Cause::invalid(
            field,
            &quoted(),
            "must be a valid IPv4 address",
        )],
        "IPv6"
            if address
                .parse::<std::net::Ipv6Addr>()
                .map_or(true, |ip| ip.to_ipv4_mapped().is_some()) =>
        {
            vec![Cause::invalid(
                field,
                &quoted(),
                "must be a valid IPv6 address",
            )]
        }
        "FQDN" => fqdn_errors(field, address),
        _ => Vec::new(),
    }
}

impl Strategy for k8s_openapi::api::discovery::v1::EndpointSlice {
    /// `SetDefaults_EndpointPort`: a port's name defaults to "" and its protocol to TCP.
    fn default(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            port.name.get_or_insert_with(String::new);
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    /// A v1 create clears the deprecated topology of every endpoint.
    fn prepare_for_create(&mut self) {
        for endpoint in &mut self.endpoints {
            endpoint.deprecated_topology = None;
        }
    }

    fn validate(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        if self.address_type.is_empty() {
            causes.push(Cause::required("addressType", ""));
        } else if !ENDPOINT_SLICE_ADDRESS_TYPES.contains(&self.address_type.as_str()) {
            causes.push(Cause::not_supported(
                "addressType",
                &self.address_type,
                ENDPOINT_SLICE_ADDRESS_TYPES,
            ));
        }
        if self.endpoints.len() > MAX_SLICE_ENDPOINTS {
            causes.push(too_many(
                "endpoints".into(),
                self.endpoints.len(),
                MAX_SLICE_ENDPOINTS,
            ));
        } else {
            for (i, endpoint) in self.endpoints.iter().enumerate() {
                let at = format!("endpoints[{i}]");
                let addresses = format!("{at}.addresses");
                if endpoint.addresses.is_empty() {
                    causes.push(Cause::required(
                        addresses.clone(),
                        "must contain at least 1 address",
                    ));
                } else if endpoint.addresses.len() > MAX_ENDPOINT_ADDRESSES {
                    causes.push(too_many(
                        addresses.clone(),
                        endpoint.addresses.len(),
                        MAX_ENDPOINT_ADDRESSES,
                    ));
                }
                for (j, address) in endpoint.addresses.iter().enumerate() {
                    causes.extend(endpoint_address_errors(
                        &format!("{addresses}[{j}]"),
                        &self.address_type,
                        address,
                    ));
                }
                if let Some(hostname) = &endpoint.hostname {
                    for m in validation::dns1123_label_errors(hostname) {
                        causes.push(Cause::invalid(
                            format!("{at}.hostname"),
                            &validation::go_quote(hostname),
                            &m,
                        ));
                    }
                }
            }
        }
        let ports = self.ports.as_deref().unwrap_or_default();
        if ports.len() > MAX_SLICE_PORTS {
            causes.push(too_many("ports".into(), ports.len(), MAX_SLICE_PORTS));
            return causes;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let at = format!("ports[{i}]");
            let name = port.name.as_deref().unwrap_or_default();
            for m in (!name.is_empty())
                .then(|| validation::dns1123_label_errors(name))
                .unwrap_or_default()
            {
                causes.push(Cause::invalid(
                    format!("{at}.name"),
                    &validation::go_quote(name),
                    &m,
                ));
            }
            if !names.insert(name) {
                causes.push(Cause::duplicate(
                    format!("{at}.name"),
                    &validation::go_quote(name),
                ));
            }
            match port.protocol.as_deref() {
                None => causes.push(Cause::required(format!("{at}.protocol"), "")),
                Some(p) if !ENDPOINT_SLICE_PROTOCOLS.contains(&p) => causes.push(
                    Cause::not_supported(format!("{at}.protocol"), p, ENDPOINT_SLICE_PROTOCOLS),
                ),
                Some(_) => {}
            }
            if let Some(app_protocol) = &port.app_protocol {
                for m in validation::qualified_name_errors(app_protocol) {
                    causes.push(Cause::invalid(
                        format!("{at}.appProtocol"),
                        &validation::go_quote(app_protocol),
                        &m,
                    ));
                }
            }
        }
        causes
    }

    fn validate_update(&self, old: &Self) -> Vec<Cause> {
        let mut causes = self.validate();
        if self.address_type != old.address_type {
            causes.push(Cause::invalid(
                "addressType",
                &validation::go_quote(&self.address_type),
                "field is immutable",
            ));
        }
        causes
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

#[cfg(test)]
mod endpoint_slice_tests {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    use super::*;
    use crate::apiserver::registry;

    fn kind() -> &'static Kind {
        registry::lookup("discovery.k8s.io", "v1", "endpointslices").unwrap()
    }

    #[test]
    fn ports_are_defaulted_and_the_address_type_is_required() {
        let slice = json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]});
        let v = admit::<EndpointSlice>(kind(), Operation::Create, slice, None)
            .unwrap()
            .value;
        assert_eq!(
            v["ports"],
            json!([{"name": "", "port": 80, "protocol": "TCP"}])
        );

        let err = admit::<EndpointSlice>(
            kind(),
            Operation::Create,
            json!({"metadata": {"name": "s"}, "endpoints": []}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "EndpointSlice.discovery.k8s.io \"s\" is invalid: addressType: Required value"
        );
        let err = admit::<EndpointSlice>(
            kind(),
            Operation::Create,
            json!({"metadata": {"name": "s"}, "addressType": "IP", "endpoints": [{"addresses": []}]}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "EndpointSlice.discovery.k8s.io \"s\" is invalid: [addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\", endpoints[0].addresses: Required value: must contain at least 1 address]"
        );
    }

    #[test]
    fn the_address_type_is_immutable_and_addresses_match_it() {
        let old = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": []});
        let new = json!({"metadata": {"name": "s"}, "addressType": "IPv6",
            "endpoints": [{"addresses": ["10.0.0.1"]}]});
        let err = admit::<EndpointSlice>(kind(), Operation::Update, new, Some(&old)).unwrap_err();
        assert_eq!(
            err.message,
            "EndpointSlice.discovery.k8s.io \"s\" is invalid: [endpoints[0].addresses[0]: Invalid value: \"10.0.0.1\": must be a valid IPv6 address, addressType: Invalid value: \"IPv6\": field is immutable]"
        );
    }
}
