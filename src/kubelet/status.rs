//! Pod status generation for the simulated kubelet.
//!
//! The kubelet turns what its container runtime and probers know about a pod into the
//! `PodStatus` it reports to the apiserver. This module reproduces that computation for
//! Kubernetes 1.33 as pure functions over k8s-openapi types; nothing here performs I/O or
//! reads the clock (the caller passes `now`).
//!
//! What is modelled (behaviour confirmed against the upstream kubelet sources):
//! - **Phase**: Pending while a regular init container is still to run, while a sidecar
//!   (restartable init container) has not started before any app container existed, or while
//!   any app container waits without a previous termination; Running once every app container
//!   has been created and one runs; when every app container has stopped: Running under
//!   `restartPolicy: Always` (and under OnFailure with a failure), Succeeded when all exited 0,
//!   Failed under Never with a failure. A failed regular init container fails the pod only under
//!   Never. A pod being torn down (deleted, or given a `terminal` verdict) whose containers have
//!   all stopped becomes Succeeded/Failed whatever its restart policy. A new terminal phase is
//!   held back while any container still runs (the status manager's rule), and terminal phases
//!   never revert.
//! - **Conditions**, in the kubelet's order after any conditions the kubelet does not own:
//!   PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled. A condition
//!   keeps its lastTransitionTime while its status stays the same.
//! - **Container statuses**: app containers sorted by name (as the kubelet sorts them), init
//!   containers in spec order; defaults for containers the runtime has not created yet
//!   (`ContainerCreating`, or `PodInitializing` when the pod has init containers); readiness and
//!   `started` as the prober manager reports them.
//! - qosClass, podIP(s), hostIP(s) and startTime.

use crate::k8s::qos::qos_class;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus,
    VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

// ---------------------------------------------------------------------------------------------
// Reason strings
// ---------------------------------------------------------------------------------------------

/// Waiting: the runtime has not created the container yet (pod without init containers).
pub const REASON_CONTAINER_CREATING: &str = "ContainerCreating";
/// Waiting: app (and not-yet-run init) containers of a pod whose init containers have not finished.
pub const REASON_POD_INITIALIZING: &str = "PodInitializing";
/// Waiting: the container exited and its restart is being delayed by the back-off.
pub const REASON_CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";
/// Waiting: the image pull failed (first failure).
pub const REASON_ERR_IMAGE_PULL: &str = "ErrImagePull";
/// Waiting: image pulls keep failing and the next one is being delayed.
pub const REASON_IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
/// Waiting: the container's configuration could not be generated (e.g. a missing ConfigMap key).
pub const REASON_CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";
/// Waiting: the runtime refused to create the container.
pub const REASON_CREATE_CONTAINER_ERROR: &str = "CreateContainerError";
/// Waiting: the image reference cannot be parsed.
pub const REASON_INVALID_IMAGE_NAME: &str = "InvalidImageName";
/// Waiting: `imagePullPolicy: Never` and the image is not on the node.
pub const REASON_ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
/// Waiting: the runtime failed to start the container.
pub const REASON_RUN_CONTAINER_ERROR: &str = "RunContainerError";
/// Waiting: a PreStart hook failed.
pub const REASON_PRE_START_HOOK_ERROR: &str = "PreStartHookError";
/// Waiting: a PostStart hook failed.
pub const REASON_POST_START_HOOK_ERROR: &str = "PostStartHookError";

/// Terminated: exit code 0.
pub const REASON_COMPLETED: &str = "Completed";
/// Terminated: non-zero exit code.
pub const REASON_ERROR: &str = "Error";
/// Terminated: killed by the OOM killer (exit code 137).
pub const REASON_OOM_KILLED: &str = "OOMKilled";
/// Terminated: the runtime could not start the process (exit code 128 with containerd).
pub const REASON_START_ERROR: &str = "StartError";
/// Terminated: the runtime could not run the container (dockershim-era and some runtimes).
pub const REASON_CONTAINER_CANNOT_RUN: &str = "ContainerCannotRun";
/// Terminated: the kubelet lost track of a container that used to run (exit code 137).
pub const REASON_CONTAINER_STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// Condition reason: the phase is Succeeded.
pub const POD_COMPLETED: &str = "PodCompleted";
/// Condition reason: the phase is Failed.
pub const POD_FAILED: &str = "PodFailed";
/// Condition reason: some app containers or sidecars are not ready.
pub const CONTAINERS_NOT_READY: &str = "ContainersNotReady";
/// Condition reason: some init containers have not completed.
pub const CONTAINERS_NOT_INITIALIZED: &str = "ContainersNotInitialized";
/// Condition reason: some readiness gates are not satisfied.
pub const READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";
/// Condition reason: no container statuses are known at all.
pub const UNKNOWN_CONTAINER_STATUSES: &str = "UnknownContainerStatuses";

/// Pod phases.
pub const PHASE_PENDING: &str = "Pending";
/// Pod phases.
pub const PHASE_RUNNING: &str = "Running";
/// Pod phases.
pub const PHASE_SUCCEEDED: &str = "Succeeded";
/// Pod phases.
pub const PHASE_FAILED: &str = "Failed";

/// Pod condition types.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// Pod condition types.
pub const POD_READY_TO_START_CONTAINERS: &str = "PodReadyToStartContainers";
/// Pod condition types.
pub const INITIALIZED: &str = "Initialized";
/// Pod condition types.
pub const CONTAINERS_READY: &str = "ContainersReady";
/// Pod condition types.
pub const READY: &str = "Ready";
/// Pod condition types (set by eviction/preemption/taint manager, shared with the kubelet).
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";

/// Condition types the kubelet owns: it regenerates them on every status computation and
/// drops whatever the apiserver had for them.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    POD_SCHEDULED,
    READY,
    INITIALIZED,
    CONTAINERS_READY,
    POD_READY_TO_START_CONTAINERS,
];

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// What the kubelet's runtime and prober know about one container.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeState {
    /// Not running. An empty `reason` reports a bare `waiting: {}` (a created, unstarted container).
    Waiting {
        reason: String,
        message: Option<String>,
    },
    /// Running since `started_at` (unix seconds).
    Running { started_at: i64 },
    /// Exited.
    Terminated {
        exit_code: i32,
        reason: String,
        message: Option<String>,
        started_at: i64,
        finished_at: i64,
    },
}

/// What the kubelet knows about one container of the pod.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    pub name: String,
    /// Image as the runtime reports it (e.g. `docker.io/library/nginx:1.27`); empty falls back
    /// to the spec's image.
    pub image: String,
    /// Image digest reference (`docker.io/library/nginx@sha256:...`); None before the pull.
    pub image_id: Option<String>,
    /// `containerd://<id>` of the newest container instance; None before one was created.
    pub container_id: Option<String>,
    pub state: RuntimeState,
    /// The previous instance's termination (a `RuntimeState::Terminated`).
    pub last_termination: Option<RuntimeState>,
    pub restart_count: i32,
    /// Readiness probe verdict (true when there is no readiness probe); only counts while running.
    pub ready: bool,
    /// Startup probe verdict; None means "no startup probe" (started as soon as it runs).
    pub started: Option<bool>,
}

/// Everything [`pod_status`] needs to know about one pod at one instant.
pub struct PodObservation<'a> {
    /// The pod as the apiserver has it (its `status` is the API copy of the status).
    pub pod: &'a Pod,
    /// Runtime view of init containers (any order; matched by name).
    pub init_containers: Vec<ContainerInfo>,
    /// Runtime view of app containers (any order; matched by name).
    pub containers: Vec<ContainerInfo>,
    /// The pod sandbox exists, is ready and has networking configured.
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    /// When the kubelet first acknowledged the pod (unix seconds); kept once set.
    pub start_time: Option<i64>,
    /// Current cluster time (unix seconds).
    pub now: i64,
    /// A kubelet verdict that ends the pod: (phase `Failed`|`Succeeded`, reason, message), e.g.
    /// `("Failed", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")`.
    pub terminal: Option<(&'a str, &'a str, &'a str)>,
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// A `Time` from unix seconds.
pub fn time_from_unix(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The reason a runtime reports for an exited container.
pub fn terminated_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        REASON_OOM_KILLED
    } else if exit_code == 0 {
        REASON_COMPLETED
    } else {
        REASON_ERROR
    }
}

/// The waiting reason the kubelet shows for containers the runtime has not created yet.
pub fn default_waiting_reason(pod: &Pod) -> &'static str {
    if has_init_containers(pod.spec.as_ref()) {
        REASON_POD_INITIALIZING
    } else {
        REASON_CONTAINER_CREATING
    }
}

/// Whether `type_` is a condition type the kubelet owns.
pub fn is_kubelet_condition(type_: &str) -> bool {
    KUBELET_CONDITIONS.contains(&type_)
}

/// Whether a phase is terminal (Succeeded or Failed).
pub fn is_terminal_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some(PHASE_SUCCEEDED) | Some(PHASE_FAILED))
}

/// Whether the status carries Ready=True.
pub fn is_pod_ready(status: &PodStatus) -> bool {
    find_condition(status.conditions.as_deref(), READY).is_some_and(|c| c.status == "True")
}

/// Whether an init container is a sidecar (restartable init container).
pub fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn has_init_containers(spec: Option<&PodSpec>) -> bool {
    spec.and_then(|s| s.init_containers.as_ref())
        .is_some_and(|v| !v.is_empty())
}

fn find_condition<'c>(conds: Option<&'c [PodCondition]>, type_: &str) -> Option<&'c PodCondition> {
    conds.into_iter().flatten().find(|c| c.type_ == type_)
}

fn find_status<'c>(list: Option<&'c [ContainerStatus]>, name: &str) -> Option<&'c ContainerStatus> {
    list.into_iter().flatten().find(|s| s.name == name)
}

/// Go's `%s` rendering of a string slice: `[a b c]`.
fn bracket_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn state_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn state_terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.state.as_ref().and_then(|st| st.terminated.as_ref())
}

fn state_waiting(s: &ContainerStatus) -> Option<&ContainerStateWaiting> {
    s.state.as_ref().and_then(|st| st.waiting.as_ref())
}

fn last_terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.last_state.as_ref().and_then(|st| st.terminated.as_ref())
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Container statuses
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    App,
    Init,
    Sidecar,
}

fn kind_of_init(c: &Container) -> Kind {
    if is_restartable_init_container(c) {
        Kind::Sidecar
    } else {
        Kind::Init
    }
}

fn to_api_state(state: &RuntimeState, container_id: Option<&String>) -> ContainerState {
    match state {
        RuntimeState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: non_empty(reason),
                message: message.clone().filter(|m| !m.is_empty()),
            }),
            ..Default::default()
        },
        RuntimeState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time_from_unix(*started_at)),
            }),
            ..Default::default()
        },
        RuntimeState::Terminated {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: container_id.cloned(),
                exit_code: *exit_code,
                reason: non_empty(reason),
                message: message.clone().filter(|m| !m.is_empty()),
                started_at: Some(time_from_unix(*started_at)),
                finished_at: Some(time_from_unix(*finished_at)),
                signal: None,
            }),
            ..Default::default()
        },
    }
}

/// The container ID of the instance that produced `last_termination`.
fn previous_instance_id(info: &ContainerInfo, prev: Option<&ContainerStatus>) -> Option<String> {
    // While waiting (e.g. CrashLoopBackOff) the newest instance *is* the one that exited.
    if matches!(info.state, RuntimeState::Waiting { .. }) && info.container_id.is_some() {
        return info.container_id.clone();
    }
    let prev = prev?;
    match (&prev.container_id, &info.container_id) {
        (Some(old), Some(cur)) if old != cur && !old.is_empty() => Some(old.clone()),
        (Some(old), None) if !old.is_empty() => Some(old.clone()),
        _ => last_terminated(prev).and_then(|t| t.container_id.clone()),
    }
}

fn volume_mount_statuses(spec: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = spec.volume_mounts.as_ref()?;
    if mounts.is_empty() {
        return None;
    }
    Some(
        mounts
            .iter()
            .map(|m| {
                let read_only = m.read_only == Some(true);
                VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: read_only.then_some(true),
                    recursive_read_only: read_only.then(|| {
                        match m.recursive_read_only.as_deref() {
                            Some("Enabled") | Some("IfPossible") => "Enabled".to_string(),
                            _ => "Disabled".to_string(),
                        }
                    }),
                }
            })
            .collect(),
    )
}

fn container_status(
    spec: &Container,
    info: Option<&ContainerInfo>,
    prev: Option<&ContainerStatus>,
    kind: Kind,
    default_reason: &str,
    deleting: bool,
) -> ContainerStatus {
    let mut status = match info {
        None => {
            let mut s = ContainerStatus {
                name: spec.name.clone(),
                image: spec.image.clone().unwrap_or_default(),
                image_id: String::new(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(default_reason.to_string()),
                        message: None,
                    }),
                    ..Default::default()
                }),
                last_state: Some(ContainerState::default()),
                volume_mounts: volume_mount_statuses(spec),
                ..Default::default()
            };
            if let Some(p) = prev {
                if state_terminated(p).is_some() {
                    // A finished container keeps its last known status.
                    s = p.clone();
                } else {
                    s.restart_count = p.restart_count;
                    s.last_state = p
                        .last_state
                        .clone()
                        .or_else(|| Some(ContainerState::default()));
                    if state_running(p) && last_terminated(&s).is_none() {
                        // It used to run and the runtime lost it: infer a termination so the
                        // pod does not fall back to Pending.
                        s.last_state = Some(ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: 137,
                                reason: Some(REASON_CONTAINER_STATUS_UNKNOWN.to_string()),
                                message: Some(
                                    "The container could not be located when the pod was deleted.  The container used to be Running"
                                        .to_string(),
                                ),
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        if !deleting {
                            s.restart_count += 1;
                        }
                    }
                }
            }
            s
        }
        Some(info) => {
            let last_state = match &info.last_termination {
                Some(t) => Some(to_api_state(t, previous_instance_id(info, prev).as_ref())),
                None => prev.and_then(|p| p.last_state.clone()),
            }
            .or_else(|| Some(ContainerState::default()));
            ContainerStatus {
                name: spec.name.clone(),
                image: if info.image.is_empty() {
                    spec.image.clone().unwrap_or_default()
                } else {
                    info.image.clone()
                },
                image_id: info.image_id.clone().unwrap_or_default(),
                container_id: info.container_id.clone().filter(|c| !c.is_empty()),
                state: Some(to_api_state(&info.state, info.container_id.as_ref())),
                last_state,
                restart_count: info.restart_count,
                volume_mounts: volume_mount_statuses(spec),
                // The kubelet reports the allocated resources of every container the runtime
                // knows about (in-place resize is on by default in 1.33).
                resources: info
                    .container_id
                    .as_ref()
                    .map(|_| spec.resources.clone().unwrap_or_default()),
                ..Default::default()
            }
        }
    };

    // What the prober manager reports.
    let running = state_running(&status);
    let started = running && info.is_some_and(|i| i.started.unwrap_or(true));
    status.started = Some(started);
    status.ready = match kind {
        Kind::Init => state_terminated(&status).is_some_and(|t| t.exit_code == 0),
        Kind::Sidecar => running && started && info.is_some_and(|i| i.ready),
        Kind::App => running && info.is_some_and(|i| i.ready),
    };
    status
}

// ---------------------------------------------------------------------------------------------
// Phase
// ---------------------------------------------------------------------------------------------

fn compute_phase(
    init_specs: &[Container],
    app_specs: &[Container],
    init_statuses: &[ContainerStatus],
    app_statuses: &[ContainerStatus],
    restart_policy: &str,
    pod_is_terminal: bool,
    pod_has_initialized: bool,
) -> &'static str {
    let mut pending_regular_init = 0;
    let mut pending_sidecars = 0;
    let mut failed_init = 0;

    for c in init_specs
        .iter()
        .filter(|c| !is_restartable_init_container(c))
    {
        let Some(s) = find_status(Some(init_statuses), &c.name) else {
            pending_regular_init += 1;
            continue;
        };
        if state_running(s) {
            pending_regular_init += 1;
        } else if let Some(t) = state_terminated(s) {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state_waiting(s).is_some() {
            match last_terminated(s) {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_regular_init += 1,
            }
        } else {
            pending_regular_init += 1;
        }
    }

    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in init_specs
        .iter()
        .filter(|c| is_restartable_init_container(c))
    {
        let Some(s) = find_status(Some(init_statuses), &c.name) else {
            unknown += 1;
            continue;
        };
        if state_running(s) {
            if s.started != Some(true) {
                pending_sidecars += 1;
            }
            running += 1;
        } else if state_terminated(s).is_some() {
            // Stopped sidecars do not affect the phase.
        } else if state_waiting(s).is_some() {
            if last_terminated(s).is_none() {
                pending_sidecars += 1;
                waiting += 1;
            }
        } else {
            pending_sidecars += 1;
            unknown += 1;
        }
    }
    for c in app_specs {
        let Some(s) = find_status(Some(app_statuses), &c.name) else {
            unknown += 1;
            continue;
        };
        if state_running(s) {
            running += 1;
        } else if let Some(t) = state_terminated(s) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state_waiting(s).is_some() {
            if last_terminated(s).is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }

    if failed_init > 0 && restart_policy == "Never" {
        return PHASE_FAILED;
    }
    if pending_regular_init > 0 || (pending_sidecars > 0 && !pod_has_initialized) || waiting > 0 {
        return PHASE_PENDING;
    }
    if running > 0 && unknown == 0 {
        return PHASE_RUNNING;
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if pod_is_terminal {
            return if stopped == succeeded {
                PHASE_SUCCEEDED
            } else {
                PHASE_FAILED
            };
        }
        if restart_policy == "Always" {
            return PHASE_RUNNING;
        }
        if stopped == succeeded {
            return PHASE_SUCCEEDED;
        }
        if restart_policy == "Never" {
            return PHASE_FAILED;
        }
        return PHASE_RUNNING;
    }
    PHASE_PENDING
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

fn containers_ready_condition(
    init_specs: &[Container],
    app_specs: &[Container],
    init_statuses: &[ContainerStatus],
    app_statuses: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let mut unknown = Vec::new();
    let mut unready = Vec::new();
    let sidecars = init_specs
        .iter()
        .filter(|c| is_restartable_init_container(c))
        .map(|c| (c, init_statuses));
    let apps = app_specs.iter().map(|c| (c, app_statuses));
    for (c, list) in sidecars.chain(apps) {
        match find_status(Some(list), &c.name) {
            Some(s) if !s.ready => unready.push(c.name.clone()),
            Some(_) => {}
            None => unknown.push(c.name.clone()),
        }
    }
    if phase == PHASE_SUCCEEDED && unknown.is_empty() {
        return condition(CONTAINERS_READY, false, Some(POD_COMPLETED), None);
    }
    if phase == PHASE_FAILED {
        return condition(CONTAINERS_READY, false, Some(POD_FAILED), None);
    }
    let mut parts = Vec::new();
    if !unknown.is_empty() {
        parts.push(format!(
            "containers with unknown status: {}",
            bracket_list(&unknown)
        ));
    }
    if !unready.is_empty() {
        parts.push(format!(
            "containers with unready status: {}",
            bracket_list(&unready)
        ));
    }
    if parts.is_empty() {
        condition(CONTAINERS_READY, true, None, None)
    } else {
        condition(
            CONTAINERS_READY,
            false,
            Some(CONTAINERS_NOT_READY),
            Some(parts.join(", ")),
        )
    }
}

fn ready_condition(
    spec: Option<&PodSpec>,
    conditions_so_far: &[PodCondition],
    containers_ready: &PodCondition,
) -> PodCondition {
    if containers_ready.status != "True" {
        return PodCondition {
            type_: READY.to_string(),
            ..containers_ready.clone()
        };
    }
    let mut parts = Vec::new();
    for gate in spec
        .and_then(|s| s.readiness_gates.as_ref())
        .into_iter()
        .flatten()
    {
        match find_condition(Some(conditions_so_far), &gate.condition_type) {
            None => parts.push(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => parts.push(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if parts.is_empty() {
        condition(READY, true, None, None)
    } else {
        condition(
            READY,
            false,
            Some(READINESS_GATES_NOT_READY),
            Some(parts.join(", ")),
        )
    }
}

fn initialized_condition(
    init_specs: &[Container],
    app_specs: &[Container],
    init_statuses: &[ContainerStatus],
    app_statuses: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let mut unknown = Vec::new();
    let mut incomplete = Vec::new();
    for c in init_specs {
        let Some(s) = find_status(Some(init_statuses), &c.name) else {
            unknown.push(c.name.clone());
            continue;
        };
        let done = if is_restartable_init_container(c) {
            s.started == Some(true)
        } else {
            s.ready
        };
        if !done {
            incomplete.push(c.name.clone());
        }
    }
    if phase == PHASE_SUCCEEDED && unknown.is_empty() {
        return condition(INITIALIZED, true, Some(POD_COMPLETED), None);
    }
    // Once an app container has run, the pod was initialized (sidecars may be restarting).
    let app_started = app_specs.iter().any(|c| {
        find_status(Some(app_statuses), &c.name)
            .is_some_and(|s| state_running(s) || state_terminated(s).is_some())
    });
    if app_started {
        return condition(INITIALIZED, true, None, None);
    }
    let mut parts = Vec::new();
    if !unknown.is_empty() {
        parts.push(format!(
            "containers with unknown status: {}",
            bracket_list(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        parts.push(format!(
            "containers with incomplete status: {}",
            bracket_list(&incomplete)
        ));
    }
    if parts.is_empty() {
        condition(INITIALIZED, true, None, None)
    } else {
        condition(
            INITIALIZED,
            false,
            Some(CONTAINERS_NOT_INITIALIZED),
            Some(parts.join(", ")),
        )
    }
}

/// Sets lastTransitionTime: kept from `old` while the condition's status is unchanged.
fn stamp_transition(cond: &mut PodCondition, old: &PodStatus, now: i64) {
    let kept = find_condition(old.conditions.as_deref(), &cond.type_)
        .filter(|o| o.status == cond.status)
        .and_then(|o| o.last_transition_time.clone());
    cond.last_transition_time = Some(kept.unwrap_or_else(|| time_from_unix(now)));
}

// ---------------------------------------------------------------------------------------------
// Pod status
// ---------------------------------------------------------------------------------------------

/// What the steps of [`pod_status`] share: the observation, the pod's spec and container specs,
/// and the statuses it starts from.
struct StatusInputs<'a> {
    obs: &'a PodObservation<'a>,
    spec: Option<&'a PodSpec>,
    /// The pod's API status.
    api: &'a PodStatus,
    /// The status last computed for the pod, or the API status when there is none.
    old: &'a PodStatus,
    init_specs: &'a [Container],
    app_specs: &'a [Container],
    deleting: bool,
}

impl StatusInputs<'_> {
    /// Init container statuses in spec order, and app container statuses sorted by name.
    fn container_statuses(&self) -> (Vec<ContainerStatus>, Vec<ContainerStatus>) {
        let (obs, old, deleting) = (self.obs, self.old, self.deleting);
        let (init_specs, app_specs) = (self.init_specs, self.app_specs);
        let pod = obs.pod;
        let default_reason = default_waiting_reason(pod);

        let info_for = |list: &'_ [ContainerInfo], name: &str| -> Option<usize> {
            list.iter().position(|i| i.name == name)
        };

        let init_statuses: Vec<ContainerStatus> = init_specs
            .iter()
            .map(|c| {
                container_status(
                    c,
                    info_for(&obs.init_containers, &c.name).map(|i| &obs.init_containers[i]),
                    find_status(old.init_container_statuses.as_deref(), &c.name),
                    kind_of_init(c),
                    default_reason,
                    deleting,
                )
            })
            .collect();
        let mut app_statuses: Vec<ContainerStatus> = app_specs
            .iter()
            .map(|c| {
                container_status(
                    c,
                    info_for(&obs.containers, &c.name).map(|i| &obs.containers[i]),
                    find_status(old.container_statuses.as_deref(), &c.name),
                    Kind::App,
                    default_reason,
                    deleting,
                )
            })
            .collect();
        // The kubelet reports app containers sorted by name (init containers stay in spec order).
        app_statuses.sort_by(|a, b| a.name.cmp(&b.name));
        (init_statuses, app_statuses)
    }

    /// The phase with its reason and message: upstream's `getPhase`, terminal phases never
    /// reverting, the reason/message kept while the phase holds, and a kubelet verdict applied.
    /// `any_running` tells whether any container still runs.
    fn phase(
        &self,
        init_statuses: &[ContainerStatus],
        app_statuses: &[ContainerStatus],
        any_running: bool,
    ) -> (String, Option<String>, Option<String>) {
        let (obs, spec, api, old, deleting) =
            (self.obs, self.spec, self.api, self.old, self.deleting);
        let (init_specs, app_specs) = (self.init_specs, self.app_specs);
        let restart_policy = spec
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let pod_has_initialized = obs.containers.iter().any(|i| {
            app_specs.iter().any(|c| c.name == i.name)
                && (i.container_id.is_some()
                    || !matches!(i.state, RuntimeState::Waiting { .. })
                    || i.last_termination.is_some())
        });
        let pod_is_terminal = obs.terminal.is_some() || (deleting && !any_running);
        let mut phase: String = compute_phase(
            init_specs,
            app_specs,
            init_statuses,
            app_statuses,
            restart_policy,
            pod_is_terminal,
            pod_has_initialized,
        )
        .to_string();
        if !is_terminal_phase(Some(&phase)) {
            if is_terminal_phase(old.phase.as_deref()) {
                phase = old.phase.clone().unwrap_or_default();
            } else if is_terminal_phase(api.phase.as_deref()) {
                phase = api.phase.clone().unwrap_or_default();
            }
        }
        let (mut reason, mut message) = (None, None);
        if old.phase.as_deref() == Some(phase.as_str()) {
            reason = old
                .reason
                .clone()
                .filter(|r| !r.is_empty())
                .or_else(|| api.reason.clone());
            message = old
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| api.message.clone());
        }
        if let Some((p, r, m)) = obs.terminal {
            phase = p.to_string();
            reason = non_empty(r);
            message = non_empty(m);
        }
        if is_terminal_phase(api.phase.as_deref()) && api.phase.as_deref() != Some(phase.as_str()) {
            phase = api.phase.clone().unwrap_or_default();
        }
        (phase, reason, message)
    }

    /// The conditions the kubelet does not own, kept from the API status (DisruptionTarget from
    /// the last computed status), then the kubelet's own in its order, each keeping its
    /// lastTransitionTime while its status holds.
    fn conditions(
        &self,
        init_statuses: &[ContainerStatus],
        app_statuses: &[ContainerStatus],
        phase: &str,
    ) -> Vec<PodCondition> {
        let (obs, spec, api, old) = (self.obs, self.spec, self.api, self.old);
        let (init_specs, app_specs) = (self.init_specs, self.app_specs);
        let mut conditions: Vec<PodCondition> = api
            .conditions
            .iter()
            .flatten()
            .filter(|c| !is_kubelet_condition(&c.type_))
            .cloned()
            .collect();
        if let Some(dt) = find_condition(old.conditions.as_deref(), DISRUPTION_TARGET) {
            match conditions.iter_mut().find(|c| c.type_ == DISRUPTION_TARGET) {
                Some(existing) => *existing = dt.clone(),
                None => conditions.push(dt.clone()),
            }
        }
        let first_kubelet = conditions.len();
        conditions.push(condition(
            POD_READY_TO_START_CONTAINERS,
            obs.sandbox_ready,
            None,
            None,
        ));
        conditions.push(initialized_condition(
            init_specs,
            app_specs,
            init_statuses,
            app_statuses,
            phase,
        ));
        let containers_ready =
            containers_ready_condition(init_specs, app_specs, init_statuses, app_statuses, phase);
        let ready = ready_condition(spec, &conditions, &containers_ready);
        conditions.push(ready);
        conditions.push(containers_ready);
        conditions.push(condition(POD_SCHEDULED, true, None, None));
        for c in &mut conditions[first_kubelet..] {
            stamp_transition(c, old, obs.now);
        }
        conditions
    }

    /// hostIP(s): the observed host IP, else those of the last computed (or API) status.
    fn host_addresses(&self) -> (Option<String>, Option<Vec<HostIP>>) {
        let (obs, api, old) = (self.obs, self.api, self.old);
        match obs.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            Some(ip) => (
                Some(ip.to_string()),
                Some(vec![HostIP { ip: ip.to_string() }]),
            ),
            None => {
                let base = if old.host_ip.is_some() { old } else { api };
                (base.host_ip.clone(), base.host_ips.clone())
            }
        }
    }

    /// podIP(s): the observed pod IP, else those of the last computed (or API) status, else the
    /// host IP for a host-network pod.
    fn pod_addresses(&self, host_ip: &Option<String>) -> (Option<String>, Option<Vec<PodIP>>) {
        let (obs, spec, api, old) = (self.obs, self.spec, self.api, self.old);
        let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
        match obs.pod_ip.as_deref().filter(|ip| !ip.is_empty()) {
            Some(ip) => (
                Some(ip.to_string()),
                Some(vec![PodIP { ip: ip.to_string() }]),
            ),
            None => {
                let base = if old.pod_ip.is_some() { old } else { api };
                match (&base.pod_ip, host_network, host_ip) {
                    (Some(_), _, _) => (base.pod_ip.clone(), base.pod_ips.clone()),
                    (None, true, Some(h)) => (Some(h.clone()), Some(vec![PodIP { ip: h.clone() }])),
                    _ => (None, None),
                }
            }
        }
    }
}

/// The PodStatus the kubelet reports for `obs`.
///
/// `previous` is the status the kubelet last computed for this pod (its status-manager cache);
/// without it the pod's API status is the baseline. Phase follows upstream `getPhase` (sidecars,
/// restart policies, Pending while containers wait with no prior termination), terminal phases
/// never revert, and the phase's reason/message are kept while the phase is unchanged.
/// Conditions the kubelet does not own (DisruptionTarget, readiness-gate conditions, ...) are
/// kept from the API status ahead of PodReadyToStartContainers, Initialized, Ready,
/// ContainersReady and PodScheduled; each keeps its lastTransitionTime while its status holds.
pub fn pod_status(obs: &PodObservation<'_>, previous: Option<&PodStatus>) -> PodStatus {
    let pod = obs.pod;
    let spec = pod.spec.as_ref();
    let empty = PodStatus::default();
    let api = pod.status.as_ref().unwrap_or(&empty);
    let old = previous.unwrap_or(api);
    let inputs = StatusInputs {
        obs,
        spec,
        api,
        old,
        init_specs: spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or(&[]),
        app_specs: spec.map(|s| s.containers.as_slice()).unwrap_or(&[]),
        deleting: pod.metadata.deletion_timestamp.is_some(),
    };

    let (init_statuses, app_statuses) = inputs.container_statuses();
    let any_running = obs
        .init_containers
        .iter()
        .chain(obs.containers.iter())
        .any(|i| matches!(i.state, RuntimeState::Running { .. }));
    let (mut phase, mut reason, mut message) =
        inputs.phase(&init_statuses, &app_statuses, any_running);
    let conditions = inputs.conditions(&init_statuses, &app_statuses, &phase);
    let (host_ip, host_ips) = inputs.host_addresses();
    let (pod_ip, pod_ips) = inputs.pod_addresses(&host_ip);

    let start_time = old
        .start_time
        .clone()
        .or_else(|| api.start_time.clone())
        .or_else(|| obs.start_time.map(time_from_unix))
        .unwrap_or_else(|| time_from_unix(obs.now));

    let qos = api
        .qos_class
        .clone()
        .or_else(|| old.qos_class.clone())
        .or_else(|| spec.map(|s| qos_class(s).to_string()));

    // Like the status manager, hold back a new terminal phase while containers may still run:
    // the API keeps its phase until they have stopped (conditions already reflect the verdict).
    if is_terminal_phase(Some(&phase))
        && !is_terminal_phase(api.phase.as_deref())
        && !is_terminal_phase(old.phase.as_deref())
        && any_running
    {
        phase = api
            .phase
            .clone()
            .unwrap_or_else(|| PHASE_PENDING.to_string());
        reason = api.reason.clone();
        message = api.message.clone();
    }

    PodStatus {
        phase: Some(phase),
        reason,
        message,
        conditions: Some(conditions),
        container_statuses: (!app_statuses.is_empty()).then_some(app_statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        ephemeral_container_statuses: old.ephemeral_container_statuses.clone(),
        host_ip,
        host_ips,
        pod_ip,
        pod_ips,
        qos_class: qos,
        start_time: Some(start_time),
        nominated_node_name: api.nominated_node_name.clone(),
        resource_claim_statuses: api.resource_claim_statuses.clone(),
        ..Default::default()
    }
}

/// A status reduced to what the kubelet compares: kubelet-owned (and shared) conditions by
/// type/status/reason/message only, other conditions dropped, empty lists and strings unset.
fn comparable(s: &PodStatus) -> PodStatus {
    fn none_if_empty<T>(v: Option<Vec<T>>) -> Option<Vec<T>> {
        v.filter(|v| !v.is_empty())
    }
    let mut c = s.clone();
    let mut conds: Vec<PodCondition> = c
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|x| is_kubelet_condition(&x.type_) || x.type_ == DISRUPTION_TARGET)
        .map(|x| PodCondition {
            type_: x.type_,
            status: x.status,
            reason: x.reason.filter(|r| !r.is_empty()),
            message: x.message.filter(|m| !m.is_empty()),
            ..Default::default()
        })
        .collect();
    conds.sort_by(|a, b| a.type_.cmp(&b.type_));
    c.conditions = none_if_empty(Some(conds));
    c.container_statuses = none_if_empty(c.container_statuses);
    c.init_container_statuses = none_if_empty(c.init_container_statuses);
    c.ephemeral_container_statuses = none_if_empty(c.ephemeral_container_statuses);
    c.host_ips = none_if_empty(c.host_ips);
    c.pod_ips = none_if_empty(c.pod_ips);
    c.resource_claim_statuses = none_if_empty(c.resource_claim_statuses);
    c.reason = c.reason.filter(|r| !r.is_empty());
    c.message = c.message.filter(|m| !m.is_empty());
    c.nominated_node_name = c.nominated_node_name.filter(|n| !n.is_empty());
    c
}

/// Whether `new` differs from `old` in a way worth a PATCH. Like the kubelet's status manager,
/// this ignores condition timestamps (lastProbeTime/lastTransitionTime churn) and conditions
/// the kubelet does not own; everything else (phase, container statuses, IPs, ...) counts.
pub fn status_changed(old: &PodStatus, new: &PodStatus) -> bool {
    comparable(old) != comparable(new)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use serde_json::json;

    const T0: i64 = 1_700_000_000;

    fn pod(spec: serde_json::Value, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": spec,
            "status": status,
        }))
        .unwrap()
    }

    fn scheduled_status() -> serde_json::Value {
        json!({
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [{
                "type": "PodScheduled", "status": "True",
                "lastTransitionTime": "2023-11-14T22:13:20Z"
            }]
        })
    }

    fn obs<'a>(pod: &'a Pod, containers: Vec<ContainerInfo>) -> PodObservation<'a> {
        PodObservation {
            pod,
            init_containers: vec![],
            containers,
            sandbox_ready: true,
            pod_ip: Some("10.244.0.5".into()),
            host_ip: Some("172.18.0.2".into()),
            start_time: Some(T0 + 1),
            now: T0 + 30,
            terminal: None,
        }
    }

    fn info(name: &str, state: RuntimeState) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            image: "docker.io/library/busybox:1.36".into(),
            image_id: Some("docker.io/library/busybox@sha256:abc".into()),
            container_id: Some(format!("containerd://{name}-1")),
            state,
            last_termination: None,
            restart_count: 0,
            ready: false,
            started: None,
        }
    }

    fn terminated(exit_code: i32, at: i64) -> RuntimeState {
        RuntimeState::Terminated {
            exit_code,
            reason: terminated_reason(exit_code, false).into(),
            message: None,
            started_at: at,
            finished_at: at + 2,
        }
    }

    fn cond<'s>(s: &'s PodStatus, t: &str) -> &'s PodCondition {
        find_condition(s.conditions.as_deref(), t).unwrap_or_else(|| panic!("no {t} condition"))
    }

    fn types(s: &PodStatus) -> Vec<&str> {
        s.conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect()
    }

    fn cs<'s>(s: &'s PodStatus, name: &str) -> &'s ContainerStatus {
        find_status(s.container_statuses.as_deref(), name)
            .or_else(|| find_status(s.init_container_statuses.as_deref(), name))
            .unwrap()
    }

    fn two_containers() -> serde_json::Value {
        json!({"containers": [
            {"name": "web", "image": "nginx:1.27"},
            {"name": "app", "image": "busybox:1.36"}
        ]})
    }

    #[test]
    fn freshly_bound_pod_is_pending_with_containers_creating() {
        let p = pod(two_containers(), scheduled_status());
        let mut o = obs(&p, vec![]);
        o.sandbox_ready = false;
        o.pod_ip = None;
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            types(&s),
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "False");
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        let ready = cond(&s, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        // The message lists containers in spec order...
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [web app]")
        );
        // ...while the statuses are sorted by name.
        let names: Vec<&str> = s
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["app", "web"]);
        let web = cs(&s, "web");
        assert_eq!(
            web.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
        assert_eq!(web.image, "nginx:1.27");
        assert_eq!(web.image_id, "");
        assert_eq!(web.started, Some(false));
        assert!(!web.ready);
        assert!(web.container_id.is_none());
        assert_eq!(s.pod_ip, None);
        assert_eq!(s.host_ip.as_deref(), Some("172.18.0.2"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(s.start_time, Some(time_from_unix(T0 + 1)));
        assert!(s.init_container_statuses.is_none());
        // New conditions transition now; PodScheduled keeps the scheduler's time.
        assert_eq!(
            cond(&s, READY).last_transition_time,
            Some(time_from_unix(T0 + 30))
        );
        assert_eq!(
            cond(&s, POD_SCHEDULED).last_transition_time,
            Some(time_from_unix(T0))
        );
    }

    #[test]
    fn running_ready_pod() {
        let p = pod(two_containers(), scheduled_status());
        let mut web = info("web", RuntimeState::Running { started_at: T0 + 5 });
        web.ready = true;
        let mut app = info("app", RuntimeState::Running { started_at: T0 + 6 });
        app.ready = true;
        let s = pod_status(&obs(&p, vec![web, app]), None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        for t in [
            POD_READY_TO_START_CONTAINERS,
            INITIALIZED,
            READY,
            CONTAINERS_READY,
            POD_SCHEDULED,
        ] {
            assert_eq!(cond(&s, t).status, "True", "{t}");
            assert!(cond(&s, t).reason.is_none());
        }
        let w = cs(&s, "web");
        assert!(w.ready);
        assert_eq!(w.started, Some(true));
        assert_eq!(w.container_id.as_deref(), Some("containerd://web-1"));
        assert_eq!(w.image_id, "docker.io/library/busybox@sha256:abc");
        assert_eq!(
            w.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(time_from_unix(T0 + 5))
        );
        assert_eq!(w.last_state, Some(ContainerState::default()));
        assert_eq!(w.resources, Some(ResourceRequirements::default()));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
        assert_eq!(
            s.pod_ips,
            Some(vec![PodIP {
                ip: "10.244.0.5".into()
            }])
        );
        assert_eq!(
            s.host_ips,
            Some(vec![HostIP {
                ip: "172.18.0.2".into()
            }])
        );
    }

    #[test]
    fn running_but_unready_when_probe_fails() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        let web = info("web", RuntimeState::Running { started_at: T0 + 5 });
        let s = pod_status(&obs(&p, vec![web]), None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(
            cond(&s, CONTAINERS_READY).message.as_deref(),
            Some("containers with unready status: [web]")
        );
    }

    #[test]
    fn crash_looping_container_under_always_keeps_pod_running() {
        let p = pod(
            json!({"containers": [{"name": "app", "image": "busybox"}]}),
            scheduled_status(),
        );
        let mut app = info(
            "app",
            RuntimeState::Waiting {
                reason: REASON_CRASH_LOOP_BACK_OFF.into(),
                message: Some(
                    "back-off 10s restarting failed container=app pod=web_default(u-1)".into(),
                ),
            },
        );
        app.last_termination = Some(terminated(1, T0 + 10));
        app.restart_count = 1;
        let s = pod_status(&obs(&p, vec![app]), None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let a = cs(&s, "app");
        let w = a.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        assert_eq!(last.container_id.as_deref(), Some("containerd://app-1"));
        assert_eq!(last.finished_at, Some(time_from_unix(T0 + 12)));
        assert_eq!(a.restart_count, 1);
        assert!(!a.ready);
        assert_eq!(a.started, Some(false));
        assert_eq!(
            cond(&s, READY).reason.as_deref(),
            Some("ContainersNotReady")
        );
        assert_eq!(cond(&s, INITIALIZED).status, "True");
    }

    #[test]
    fn restarted_container_points_last_state_at_previous_instance() {
        let p = pod(
            json!({"containers": [{"name": "app", "image": "busybox"}]}),
            scheduled_status(),
        );
        let p0 = pod_status(
            &obs(
                &p,
                vec![info("app", RuntimeState::Running { started_at: T0 })],
            ),
            None,
        );
        let mut app = info(
            "app",
            RuntimeState::Running {
                started_at: T0 + 20,
            },
        );
        app.container_id = Some("containerd://app-2".into());
        app.last_termination = Some(terminated(137, T0));
        app.restart_count = 1;
        let s = pod_status(&obs(&p, vec![app]), Some(&p0));
        let last = cs(&s, "app")
            .last_state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(last.container_id.as_deref(), Some("containerd://app-1"));
        assert_eq!(
            cs(&s, "app").container_id.as_deref(),
            Some("containerd://app-2")
        );
    }

    #[test]
    fn never_with_failure_is_failed() {
        let p = pod(
            json!({"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}),
            scheduled_status(),
        );
        let s = pod_status(&obs(&p, vec![info("job", terminated(1, T0 + 3))]), None);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let t = cs(&s, "job").state.clone().unwrap().terminated.unwrap();
        assert_eq!(t.exit_code, 1);
        assert_eq!(t.reason.as_deref(), Some("Error"));
        assert_eq!(t.container_id.as_deref(), Some("containerd://job-1"));
        assert_eq!(cond(&s, READY).reason.as_deref(), Some("PodFailed"));
        assert_eq!(
            cond(&s, CONTAINERS_READY).reason.as_deref(),
            Some("PodFailed")
        );
        assert_eq!(cond(&s, READY).message, None);
    }

    #[test]
    fn on_failure_with_success_is_succeeded() {
        let p = pod(
            json!({"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox"}]}),
            scheduled_status(),
        );
        let mut o = obs(&p, vec![info("job", terminated(0, T0 + 3))]);
        o.sandbox_ready = false;
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let ready = cond(&s, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
        assert_eq!(
            cond(&s, CONTAINERS_READY).reason.as_deref(),
            Some("PodCompleted")
        );
        let init = cond(&s, INITIALIZED);
        assert_eq!(
            (init.status.as_str(), init.reason.as_deref()),
            ("True", Some("PodCompleted"))
        );
        assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "False");
        // The pod IP outlives the sandbox.
        let mut o2 = obs(&p, vec![info("job", terminated(0, T0 + 3))]);
        o2.pod_ip = None;
        let s2 = pod_status(&o2, Some(&s));
        assert_eq!(s2.pod_ip.as_deref(), Some("10.244.0.5"));
    }

    #[test]
    fn on_failure_with_failure_keeps_running() {
        let p = pod(
            json!({"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox"}]}),
            scheduled_status(),
        );
        let s = pod_status(&obs(&p, vec![info("job", terminated(2, T0 + 3))]), None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn failing_init_container_under_always_keeps_pod_pending() {
        let p = pod(
            json!({
                "initContainers": [
                    {"name": "init-a", "image": "busybox"},
                    {"name": "init-b", "image": "busybox"}
                ],
                "containers": [{"name": "web", "image": "nginx"}]
            }),
            scheduled_status(),
        );
        let mut a = info(
            "init-a",
            RuntimeState::Waiting {
                reason: REASON_CRASH_LOOP_BACK_OFF.into(),
                message: None,
            },
        );
        a.last_termination = Some(terminated(1, T0 + 4));
        a.restart_count = 2;
        let mut o = obs(&p, vec![]);
        o.init_containers = vec![a];
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = cond(&s, INITIALIZED);
        assert_eq!(init.status, "False");
        assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [init-a init-b]")
        );
        let names: Vec<&str> = s
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["init-a", "init-b"]);
        let waiting_reason = |n: &str| {
            cs(&s, n)
                .state
                .clone()
                .unwrap()
                .waiting
                .unwrap()
                .reason
                .unwrap()
        };
        assert_eq!(waiting_reason("web"), "PodInitializing");
        assert_eq!(waiting_reason("init-b"), "PodInitializing");
        assert_eq!(waiting_reason("init-a"), "CrashLoopBackOff");
        assert_eq!(
            cond(&s, READY).message.as_deref(),
            Some("containers with unready status: [web]")
        );

        // Under Never the same failure fails the pod.
        let p2 = pod(
            json!({
                "restartPolicy": "Never",
                "initContainers": [{"name": "init-a", "image": "busybox"}],
                "containers": [{"name": "web", "image": "nginx"}]
            }),
            scheduled_status(),
        );
        let mut o2 = obs(&p2, vec![]);
        o2.init_containers = vec![info("init-a", terminated(1, T0 + 4))];
        assert_eq!(pod_status(&o2, None).phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn completed_init_container_is_ready_and_pod_initialized() {
        let p = pod(
            json!({
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "web", "image": "nginx"}]
            }),
            scheduled_status(),
        );
        let mut web = info("web", RuntimeState::Running { started_at: T0 + 9 });
        web.ready = true;
        let mut o = obs(&p, vec![web]);
        o.init_containers = vec![info("init", terminated(0, T0 + 4))];
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert!(cs(&s, "init").ready);
        assert_eq!(cs(&s, "init").started, Some(false));
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        assert_eq!(cond(&s, READY).status, "True");
    }

    #[test]
    fn sidecar_counts_for_readiness_and_initialization() {
        let p = pod(
            json!({
                "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                "containers": [{"name": "web", "image": "nginx"}]
            }),
            scheduled_status(),
        );
        // Sidecar running but its startup probe has not passed: still initializing.
        let mut proxy = info("proxy", RuntimeState::Running { started_at: T0 + 2 });
        proxy.started = Some(false);
        let mut o = obs(&p, vec![]);
        o.init_containers = vec![proxy.clone()];
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            cond(&s, INITIALIZED).message.as_deref(),
            Some("containers with incomplete status: [proxy]")
        );
        // Started and app running: Running; sidecar unready makes the pod unready.
        proxy.started = Some(true);
        let mut web = info("web", RuntimeState::Running { started_at: T0 + 5 });
        web.ready = true;
        let mut o = obs(&p, vec![web]);
        o.init_containers = vec![proxy];
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        assert_eq!(
            cond(&s, READY).message.as_deref(),
            Some("containers with unready status: [proxy]")
        );
    }

    #[test]
    fn last_transition_time_is_preserved_while_status_holds() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        let mut o = obs(&p, vec![]);
        o.now = T0 + 10;
        let s1 = pod_status(&o, None);
        assert_eq!(
            cond(&s1, READY).last_transition_time,
            Some(time_from_unix(T0 + 10))
        );

        // Still not ready later: the transition time stays.
        let mut o = obs(
            &p,
            vec![info(
                "web",
                RuntimeState::Running {
                    started_at: T0 + 15,
                },
            )],
        );
        o.now = T0 + 20;
        let s2 = pod_status(&o, Some(&s1));
        assert_eq!(
            cond(&s2, READY).last_transition_time,
            Some(time_from_unix(T0 + 10))
        );
        assert_eq!(
            cond(&s2, POD_READY_TO_START_CONTAINERS).last_transition_time,
            Some(time_from_unix(T0 + 10))
        );
        // The container state changed, so this is worth a PATCH.
        assert!(status_changed(&s1, &s2));

        // Becomes ready: the transition time moves.
        let mut web = info(
            "web",
            RuntimeState::Running {
                started_at: T0 + 15,
            },
        );
        web.ready = true;
        let mut o = obs(&p, vec![web]);
        o.now = T0 + 40;
        let s3 = pod_status(&o, Some(&s2));
        assert_eq!(cond(&s3, READY).status, "True");
        assert_eq!(
            cond(&s3, READY).last_transition_time,
            Some(time_from_unix(T0 + 40))
        );
        assert_eq!(
            cond(&s3, INITIALIZED).last_transition_time,
            Some(time_from_unix(T0 + 10))
        );
        // Start time is kept from the first status.
        assert_eq!(s3.start_time, s1.start_time);
    }

    #[test]
    fn pod_scheduled_and_foreign_conditions_carry_over() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}], "readinessGates": [{"conditionType": "example.com/lb"}]}),
            json!({
                "phase": "Running",
                "qosClass": "BestEffort",
                "conditions": [
                    {"type": "example.com/lb", "status": "False", "lastTransitionTime": "2023-11-14T22:13:25Z"},
                    {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                     "message": "Eviction API: evicting", "lastTransitionTime": "2023-11-14T22:13:26Z"},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2023-11-14T22:13:21Z"}
                ]
            }),
        );
        let mut web = info("web", RuntimeState::Running { started_at: T0 });
        web.ready = true;
        let s = pod_status(&obs(&p, vec![web]), None);
        assert_eq!(
            types(&s),
            [
                "example.com/lb",
                "DisruptionTarget",
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        let sched = cond(&s, POD_SCHEDULED);
        assert_eq!(sched.status, "True");
        assert_eq!(sched.last_transition_time, Some(time_from_unix(T0)));
        assert_eq!(
            cond(&s, DISRUPTION_TARGET).reason.as_deref(),
            Some("EvictionByEvictionAPI")
        );
        let ready = cond(&s, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("the status of pod readiness gate \"example.com/lb\" is not \"True\", but False")
        );
        assert_eq!(cond(&s, CONTAINERS_READY).status, "True");
    }

    #[test]
    fn terminal_verdict_and_sticky_phase() {
        let p = pod(
            json!({"activeDeadlineSeconds": 5, "containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        let mut o = obs(&p, vec![info("web", terminated(137, T0))]);
        o.terminal = Some((
            "Failed",
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline",
        ));
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(cond(&s, READY).reason.as_deref(), Some("PodFailed"));
        // Later computations keep Failed and its reason.
        let s2 = pod_status(
            &obs(
                &p,
                vec![info(
                    "web",
                    RuntimeState::Running {
                        started_at: T0 + 50,
                    },
                )],
            ),
            Some(&s),
        );
        assert_eq!(s2.phase.as_deref(), Some("Failed"));
        assert_eq!(s2.reason.as_deref(), Some("DeadlineExceeded"));
    }

    #[test]
    fn terminal_verdict_waits_for_running_containers_to_stop() {
        let p = pod(
            json!({"activeDeadlineSeconds": 5, "containers": [{"name": "web", "image": "nginx"}]}),
            json!({"phase": "Running", "qosClass": "BestEffort"}),
        );
        let mut web = info("web", RuntimeState::Running { started_at: T0 });
        web.ready = true;
        let mut o = obs(&p, vec![web]);
        o.terminal = Some(("Failed", "DeadlineExceeded", "deadline"));
        let s = pod_status(&o, None);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.reason, None);
        assert_eq!(cond(&s, READY).reason.as_deref(), Some("PodFailed"));
    }

    #[test]
    fn deleted_pod_with_stopped_containers_goes_terminal() {
        let mut p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        p.metadata.deletion_timestamp = Some(time_from_unix(T0 + 100));
        let s = pod_status(&obs(&p, vec![info("web", terminated(0, T0))]), None);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let s = pod_status(&obs(&p, vec![info("web", terminated(143, T0))]), None);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn status_changed_ignores_timestamps_and_foreign_conditions() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        let mut web = info("web", RuntimeState::Running { started_at: T0 });
        web.ready = true;
        let s1 = pod_status(&obs(&p, vec![web.clone()]), None);
        let mut s2 = s1.clone();
        for c in s2.conditions.iter_mut().flatten() {
            c.last_probe_time = Some(time_from_unix(T0 + 99));
            c.last_transition_time = Some(time_from_unix(T0 + 99));
        }
        s2.conditions
            .as_mut()
            .unwrap()
            .push(condition("example.com/x", true, None, None));
        assert!(!status_changed(&s1, &s2));
        web.ready = false;
        let s3 = pod_status(&obs(&p, vec![web]), Some(&s1));
        assert!(status_changed(&s1, &s3));
        // A JSON round trip (what the apiserver hands back) compares equal.
        let back: PodStatus = serde_json::from_value(serde_json::to_value(&s1).unwrap()).unwrap();
        assert!(!status_changed(&back, &s1));
    }

    #[test]
    fn lost_running_container_is_inferred_terminated() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
            scheduled_status(),
        );
        let s1 = pod_status(
            &obs(
                &p,
                vec![info("web", RuntimeState::Running { started_at: T0 })],
            ),
            None,
        );
        let s2 = pod_status(&obs(&p, vec![]), Some(&s1));
        let web = cs(&s2, "web");
        let last = web.last_state.clone().unwrap().terminated.unwrap();
        assert_eq!(last.reason.as_deref(), Some("ContainerStatusUnknown"));
        assert_eq!(last.exit_code, 137);
        assert_eq!(web.restart_count, 1);
        assert_eq!(s2.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn read_only_mounts_are_reported() {
        let p = pod(
            json!({"containers": [{"name": "web", "image": "nginx", "volumeMounts": [
                {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true},
                {"name": "data", "mountPath": "/data"}
            ]}]}),
            scheduled_status(),
        );
        let s = pod_status(&obs(&p, vec![]), None);
        let mounts = cs(&s, "web").volume_mounts.clone().unwrap();
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[0].recursive_read_only.as_deref(), Some("Disabled"));
        assert_eq!(mounts[1].read_only, None);
        assert_eq!(mounts[1].recursive_read_only, None);
    }
}
