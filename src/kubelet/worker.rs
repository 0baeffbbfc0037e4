//! Pod workers: one task per pod UID drives the pod's volumes, images, init and app containers,
//! restarts with back-off, probes and graceful termination, and reports its status.
//!
//! Updates to a pod arrive on a watch channel, so a burst of updates is merged into the latest;
//! a deletion (deletionTimestamp) is terminal for the worker: once it starts killing, no later
//! update brings the pod back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::backoff::{self, RestartBackoff};
use super::hooks::{self, kill_container, run_hook, KillReason};
use super::hosts;
use super::pod_state::{PodUpdate, WorkState};
use super::prober::{probe_loop, ProbeCtx, ProbeKind, ProbeNotice, ProbeResults};
use super::runtime::catalog::{self, go_duration, Image, ImageError};
use super::runtime::{ContainerConfig, ProcessState};
use super::security;
use super::status::{self, ContainerInfo, PodObservation, RuntimeState};
use super::volumes;
use super::Shared;
use crate::events::{reference, EventType};

/// How often a worker looks at its pod even when nothing happened (volume retries, deadlines).
const RESYNC: Duration = Duration::from_secs(10);

/// How often upstream's PLEG relists the runtime's pods and containers (`plegRelistPeriod`,
/// 1 s); a change it sees (a new sandbox, a container that exited) syncs the pod.
const PLEG_RELIST_PERIOD: Duration = Duration::from_secs(1);

/// One container as this worker knows it.
pub(super) struct ContainerSlot {
    name: String,
    image: String,
    image_ref: Option<Image>,
    id: Option<String>,
    state: RuntimeState,
    last_termination: Option<RuntimeState>,
    restart_count: i32,
    /// CrashLoopBackOff.
    backoff: RestartBackoff,
    /// Until when pulls back off, the current back-off, and the last pull error.
    image_backoff: Option<(DateTime<Utc>, Duration, String)>,
    probes: Arc<ProbeResults>,
    probe_stop: Option<tokio_util::sync::CancellationToken>,
    /// Previous instance's id and log, for `logs --previous`.
    previous_logs: Option<super::PreviousLog>,
    /// `terminationMessagePath`.
    termination_message_path: String,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    fallback_to_logs: bool,
}

impl ContainerSlot {
    /// A container not created yet: waiting ContainerCreating, or PodInitializing while the
    /// pod has init containers to run.
    fn for_pod(c: &Container, pod: &Pod) -> Self {
        let mut slot = Self::new(c);
        slot.state = RuntimeState::Waiting {
            reason: status::default_waiting_reason(pod).into(),
            message: None,
        };
        slot
    }

    /// The container's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The current instance's id and the previous instance's id and log.
    pub(super) fn log_state(&self) -> (Option<String>, Option<super::PreviousLog>) {
        (self.id.clone(), self.previous_logs.clone())
    }

    fn new(c: &Container) -> Self {
        Self {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_ref: None,
            id: None,
            state: RuntimeState::Waiting {
                reason: status::REASON_CONTAINER_CREATING.into(),
                message: None,
            },
            last_termination: None,
            restart_count: 0,
            backoff: RestartBackoff::default(),
            image_backoff: None,
            probes: Arc::new(ProbeResults::default()),
            probe_stop: None,
            previous_logs: None,
            termination_message_path: c
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
            fallback_to_logs: c.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, RuntimeState::Running { .. })
    }

    fn info(&self) -> ContainerInfo {
        let running = self.running();
        ContainerInfo {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: self.image_ref.as_ref().map(|i| {
                format!(
                    "{}@sha256:{:064x}",
                    i.repository,
                    super::fnv128(i.reference.as_bytes())
                )
            }),
            container_id: self.id.as_ref().map(|id| format!("containerd://{id}")),
            state: self.state.clone(),
            last_termination: self.last_termination.clone(),
            restart_count: self.restart_count,
            // As the prober manager computes it: a container is ready only once it has started
            // (its startup probe, if any, has succeeded).
            ready: running
                && self.probes.started.load(Ordering::Relaxed)
                && self.probes.ready.load(Ordering::Relaxed),
            started: Some(running && self.probes.started.load(Ordering::Relaxed)),
        }
    }
}

/// Worker state of one pod.
struct PodWorker {
    shared: Arc<Shared>,
    uid: String,
    ip: Option<IpAddr>,
    start_time: Option<i64>,
    /// Whether the pod's volumes are set up.
    volumes_ready: bool,
    /// The pod's volumes as filesystems, shared by its containers.
    volume_fs: HashMap<String, Arc<super::runtime::Fs>>,
    /// When the volumes the kubelet fills from the API are next brought up to date.
    next_volume_refresh: Option<DateTime<Utc>>,
    init: Vec<ContainerSlot>,
    app: Vec<ContainerSlot>,
    terminal: Option<(&'static str, &'static str, String)>,
    last_status: Option<PodStatus>,
    probe_tx: mpsc::UnboundedSender<ProbeNotice>,
    next_wake: Option<DateTime<Utc>>,
    /// When the pod's sandbox is ready (containers start only then).
    sandbox_ready: Option<DateTime<Utc>>,
    /// The sandbox is gone: the pod finished (Succeeded or Failed) or was killed, and the
    /// kubelet stopped it, as upstream's `SyncTerminatingPod` does. Nothing runs in it again.
    sandbox_stopped: bool,
    /// When the kubelet took the pod on: its probe workers tick from then, every period.
    admitted: DateTime<Utc>,
}

/// A container's `ephemeral-storage` limit.
fn ephemeral_storage_limit(c: &Container) -> Option<&Quantity> {
    c.resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("ephemeral-storage")
}

/// How often the eviction manager looks at local storage (its housekeeping interval).
const EVICTION_MONITORING_SECONDS: i64 = 10;

/// The grace period of a local-storage eviction (`immediateEvictionGracePeriodSeconds`).
const EVICTION_GRACE_SECONDS: u64 = 1;

/// Whether `new` differs from `old` in its status (and the bookkeeping every write changes)
/// only.
fn status_only_change(old: &Pod, new: Option<&Pod>) -> bool {
    let Some(new) = new else {
        return false;
    };
    let (a, b) = (&old.metadata, &new.metadata);
    old.spec == new.spec
        && a.uid == b.uid
        && a.labels == b.labels
        && a.annotations == b.annotations
        && a.deletion_timestamp == b.deletion_timestamp
        && a.deletion_grace_period_seconds == b.deletion_grace_period_seconds
        && a.owner_references == b.owner_references
        && a.finalizers == b.finalizers
}

/// Run the worker of one pod until the pod is gone.
pub(super) async fn run(shared: Arc<Shared>, mut updates: watch::Receiver<Option<Arc<Pod>>>) {
    let Some(first) = updates.borrow().clone() else {
        return;
    };
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let spec = first.spec.as_ref();
    let mut w = PodWorker {
        uid: first.metadata.uid.clone().unwrap_or_default(),
        init: spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| ContainerSlot::for_pod(c, &first))
            .collect(),
        app: spec
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| ContainerSlot::for_pod(c, &first))
            .collect(),
        admitted: shared.clock.now(),
        shared: shared.clone(),
        ip: None,
        start_time: None,
        volumes_ready: false,
        volume_fs: HashMap::new(),
        next_volume_refresh: None,
        terminal: None,
        last_status: first.status.clone(),
        probe_tx,
        next_wake: None,
        sandbox_ready: None,
        sandbox_stopped: false,
    };
    drop(first);
    let mut exits = shared.runtime.exits();
    // The big steps run boxed: a worker waits most of its life, and its task should then hold
    // only what waiting needs, not room for the largest step (thousands of workers add up).
    let mut state = WorkState::Syncing;
    let mut closed = false;
    loop {
        // A closed channel: the kubelet forgot the pod, as when it is gone from the API.
        let pod = if closed {
            None
        } else {
            updates.borrow().clone()
        };
        state = state.on_update(PodUpdate::of(pod.as_deref()));
        let (WorkState::Syncing, Some(pod)) = (state, pod) else {
            break;
        };
        w.next_wake = None;
        Box::pin(w.sync(&pod)).await;
        Box::pin(w.report(&pod)).await;
        let wake = w.next_wake.map(|t| {
            let secs = (t - shared.clock.now()).num_milliseconds().max(0) as u64;
            shared.clock.to_wall(Duration::from_millis(secs))
        });
        let resync = shared.clock.to_wall(RESYNC);
        let sleep =
            tokio::time::sleep_until(Instant::now() + wake.map_or(resync, |w| w.min(resync)));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                changed = updates.changed() => {
                    closed = changed.is_err();
                    // A change of the pod's status alone (this worker's own report coming back,
                    // or a controller's condition) is no reason to sync: upstream's pod config
                    // source passes on spec, metadata and deletion changes only. An error's
                    // back-off then runs its course (ErrImagePull stays until the next sync).
                    if closed || !status_only_change(&pod, updates.borrow().as_deref()) {
                        break;
                    }
                }
                _ = exits.changed() => break,
                notice = probe_rx.recv() => {
                    if let Some(ProbeNotice::Kill { container, id, probe }) = notice {
                        Box::pin(w.kill_for_probe(&pod, &container, &id, probe)).await;
                    }
                    break;
                }
                _ = &mut sleep => break,
            }
        }
    }
    Box::pin(w.terminate(state, &mut updates, closed)).await;
}

/// The message of a terminated container: its terminationMessagePath file (at most 4096 bytes),
/// or with FallbackToLogsOnError and a failure, the end of its logs (80 lines, 2048 bytes).
fn termination_message(
    runtime: &dyn super::runtime::Runtime,
    slot: &ContainerSlot,
    id: &str,
    code: i32,
) -> Option<String> {
    let from_file = runtime
        .read_file(id, &slot.termination_message_path)
        .filter(|m| !m.is_empty());
    if let Some(mut m) = from_file {
        m.truncate(4096);
        return Some(String::from_utf8_lossy(&m).into_owned());
    }
    if slot.fallback_to_logs && code != 0 {
        let logs = runtime.logs(id).unwrap_or_default();
        let text = String::from_utf8_lossy(&logs).into_owned();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut tail = lines[lines.len().saturating_sub(80)..].concat();
        if tail.len() > 2048 {
            let cut = tail.len() - 2048;
            let cut = (cut..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(tail.len());
            tail = tail[cut..].to_string();
        }
        return (!tail.is_empty()).then_some(tail);
    }
    None
}

/// The grace period of a kill the kubelet decides on its own (an active deadline): the pod's
/// `terminationGracePeriodSeconds` (30 s by default), or its deletion grace period.
fn termination_grace(pod: &Pod) -> Duration {
    let seconds = hooks::grace_period(pod, None, KillReason::Other);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn restart_allowed(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

impl PodWorker {
    fn pod_ref(pod: &Pod) -> ObjectReference {
        reference(pod)
    }

    fn container_ref(pod: &Pod, name: &str, init: bool) -> ObjectReference {
        let mut r = reference(pod);
        let list = if init { "initContainers" } else { "containers" };
        r.field_path = Some(format!("spec.{list}{{{name}}}"));
        r
    }

    async fn event(&self, r: &ObjectReference, t: EventType, reason: &str, message: &str) {
        self.shared.recorder.record(r, t, reason, "", message).await;
    }

    /// The kubelet's `Failed` event: `Error: <what>`.
    /// A container whose configuration cannot be made: `Failed` `Error: <message>`, waiting in
    /// CreateContainerConfigError, and another try in 2 s.
    async fn config_error(
        &mut self,
        cref: &ObjectReference,
        init: bool,
        index: usize,
        message: String,
    ) {
        self.failed(cref, &message).await;
        self.slot_mut(init, index).state = RuntimeState::Waiting {
            reason: status::REASON_CREATE_CONTAINER_CONFIG_ERROR.into(),
            message: Some(message),
        };
        let now = self.shared.clock.now();
        self.wake_at(now + chrono::Duration::seconds(2));
    }

    async fn failed(&self, r: &ObjectReference, what: &str) {
        let message = format!("Error: {what}");
        self.event(r, EventType::Warning, "Failed", &message).await;
    }

    fn wake_at(&mut self, t: DateTime<Utc>) {
        self.next_wake = Some(self.next_wake.map_or(t, |w| w.min(t)));
    }

    /// Observe exits the runtime reported, and decide restarts.
    fn observe_exits(&mut self, policy: &str, init_phase: bool) {
        let now = self.shared.clock.now();
        let runtime = self.shared.runtime.clone();
        let slots: &mut Vec<ContainerSlot> = if init_phase {
            &mut self.init
        } else {
            &mut self.app
        };
        for slot in slots.iter_mut() {
            let Some(id) = slot.id.clone() else { continue };
            let (code, started, finished, reason, message) = match runtime.state(&id) {
                Some(ProcessState::Exited {
                    code,
                    started_at,
                    finished_at,
                }) if slot.running() => {
                    let reason = if code == 0 {
                        status::REASON_COMPLETED
                    } else {
                        status::REASON_ERROR
                    };
                    (
                        code,
                        started_at,
                        finished_at,
                        reason,
                        termination_message(runtime.as_ref(), slot, &id, code),
                    )
                }
                Some(ProcessState::StartFailed { message, at })
                    if !matches!(slot.state, RuntimeState::Terminated { .. })
                        && !slot.backoff.pending() =>
                {
                    (128, at, at, status::REASON_START_ERROR, Some(message))
                }
                _ => continue,
            };
            if let Some(stop) = slot.probe_stop.take() {
                stop.cancel();
            }
            slot.probes.ready.store(false, Ordering::Relaxed);
            slot.probes.started.store(false, Ordering::Relaxed);
            slot.state = RuntimeState::Terminated {
                exit_code: code,
                reason: reason.into(),
                message,
                started_at: started.timestamp(),
                finished_at: finished.timestamp(),
            };
            slot.backoff
                .on_exit(now, started, finished, restart_allowed(policy, code));
        }
    }

    /// How often the pod's volumes are brought up to date: the kubelet's `syncFrequency` (a
    /// minute) and the pod worker's jitter (up to half of it; fixed per pod here).
    fn volume_sync_period(&self) -> chrono::Duration {
        let jitter = super::fnv128(self.uid.as_bytes()) % 30_000;
        chrono::Duration::milliseconds(60_000 + jitter as i64)
    }

    /// Whether any emptyDir volume or container of the pod has a local storage limit.
    fn has_storage_limits(&self, spec: &PodSpec) -> bool {
        let volumes = spec.volumes.iter().flatten();
        volumes
            .into_iter()
            .any(|v| v.empty_dir.as_ref().is_some_and(|e| e.size_limit.is_some()))
            || spec
                .containers
                .iter()
                .any(|c| ephemeral_storage_limit(c).is_some())
    }

    /// The eviction message for the first local storage limit exceeded (emptyDir size limits
    /// first, then containers' ephemeral-storage limits, as upstream's eviction manager checks
    /// them), worded as upstream words it.
    fn storage_limit_exceeded(&self, spec: &PodSpec) -> Option<String> {
        // Only a positive limit counts, as upstream's `size.Sign() == 1`.
        let over = |used: u64, limit: &Quantity| {
            crate::k8s::quantity::parse_bytes(limit)
                .is_some_and(|bytes| bytes > 0 && i64::try_from(used).unwrap_or(i64::MAX) > bytes)
        };
        let volume = spec.volumes.iter().flatten().find_map(|v| {
            let limit = v.empty_dir.as_ref()?.size_limit.as_ref()?;
            let used = self.volume_fs.get(&v.name)?.used_bytes() as u64;
            over(used, limit).then(|| {
                format!(
                    "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                    v.name, limit.0
                )
            })
        });
        volume.or_else(|| {
            spec.containers.iter().find_map(|c| {
                let limit = ephemeral_storage_limit(c)?;
                let slot = self.app.iter().find(|s| s.name == c.name)?;
                let used = self.shared.runtime.storage_usage(slot.id.as_deref()?)?;
                over(used, limit).then(|| {
                    format!(
                        "Container {} exceeded its local ephemeral storage limit {:?}. ",
                        c.name, limit.0
                    )
                })
            })
        })
    }

    /// Evict the pod as the eviction manager does: a Warning `Evicted` event, its containers
    /// stopped with a one-second grace period, and the pod Failed with reason `Evicted`.
    async fn evict(&mut self, pod: &Pod, message: String) {
        self.event(&Self::pod_ref(pod), EventType::Warning, "Evicted", &message)
            .await;
        self.kill_all(Some(pod), Duration::from_secs(EVICTION_GRACE_SECONDS))
            .await;
        self.terminal = Some(("Failed", "Evicted", message));
    }

    async fn sync(&mut self, pod: &Pod) {
        if self.terminal.is_some() || self.sandbox_stopped {
            return;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let now = self.shared.clock.now();
        if self.ip.is_none() {
            self.ip = Some(self.shared.allocate_ip());
            self.start_time = Some(now.timestamp());
        }
        // activeDeadlineSeconds.
        if let (Some(ads), Some(start)) = (spec.active_deadline_seconds, self.start_time) {
            if now.timestamp() >= start.saturating_add(ads) {
                self.event(
                    &Self::pod_ref(pod),
                    EventType::Normal,
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline",
                )
                .await;
                self.kill_all(Some(pod), termination_grace(pod)).await;
                self.terminal = Some((
                    "Failed",
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline".into(),
                ));
                return;
            }
            if let Some(deadline) = DateTime::from_timestamp(start.saturating_add(ads), 0) {
                self.wake_at(deadline);
            }
        }
        // Local storage limits, as the eviction manager checks them (every 10 s).
        if let Some(message) = self.storage_limit_exceeded(&spec) {
            self.evict(pod, message).await;
            return;
        }
        if self.has_storage_limits(&spec) {
            self.wake_at(now + chrono::Duration::seconds(EVICTION_MONITORING_SECONDS));
        }
        // Volumes.
        let node = volumes::NodeAllocatable {
            cpu: self.shared.config.cpu.clone(),
            memory: self.shared.config.memory.clone(),
        };
        if !self.volumes_ready {
            let sources = &self.shared.volume_sources;
            let host = &self.shared.host_fs;
            match volumes::mount(&self.shared.client, sources, host, pod, &node, now).await {
                Ok(v) => {
                    self.volume_fs = v;
                    self.volumes_ready = true;
                    if volumes::has_api_volumes(pod) {
                        self.next_volume_refresh = Some(now + self.volume_sync_period());
                    }
                }
                Err(volumes::MountError(message)) => {
                    self.event(
                        &Self::pod_ref(pod),
                        EventType::Warning,
                        "FailedMount",
                        &message,
                    )
                    .await;
                    self.wake_at(now + chrono::Duration::seconds(2));
                    return;
                }
            }
        }
        // Each pod sync remounts the volumes the kubelet fills from the API: what changed in
        // their sources (or in the pod's labels and annotations) shows in them.
        if let Some(at) = self.next_volume_refresh {
            if now >= at {
                let errors = volumes::refresh(
                    &self.shared.client,
                    &self.shared.volume_sources,
                    pod,
                    &node,
                    &self.volume_fs,
                    now,
                )
                .await;
                for volumes::MountError(message) in errors {
                    self.event(
                        &Self::pod_ref(pod),
                        EventType::Warning,
                        "FailedMount",
                        &message,
                    )
                    .await;
                }
                self.next_volume_refresh = Some(now + self.volume_sync_period());
            }
            if let Some(at) = self.next_volume_refresh {
                self.wake_at(at);
            }
        }
        // The pod sandbox (pause container and network) takes its time before any container
        // starts, as RunPodSandbox does on a real node.
        let ready = *self
            .sandbox_ready
            .get_or_insert_with(|| crate::clock::add_std(now, self.shared.config.sandbox_start));
        if now < ready {
            self.wake_at(ready);
            return;
        }
        // Init containers, one after another.
        self.observe_exits(&policy, true);
        for i in 0..self.init.len() {
            let c = &spec
                .init_containers
                .as_ref()
                .map(|v| v[i].clone())
                .unwrap_or_default();
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            let done = match &self.init[i].state {
                RuntimeState::Terminated { exit_code: 0, .. } if !sidecar => true,
                RuntimeState::Running { .. } if sidecar => {
                    self.init[i].probes.started.load(Ordering::Relaxed) || c.startup_probe.is_none()
                }
                RuntimeState::Terminated { exit_code, .. }
                    if !restart_allowed(if sidecar { "Always" } else { &policy }, *exit_code) =>
                {
                    // An init container that failed under restartPolicy Never fails the pod.
                    self.terminal = Some(("Failed", "", String::new()));
                    return;
                }
                _ => false,
            };
            if done {
                continue;
            }
            if !self.init[i].running() {
                self.start_container(pod, c, true, i).await;
            }
            if !(sidecar && self.init[i].running()) {
                // Pending init container: app containers wait (PodInitializing).
                return;
            }
        }
        // App containers.
        self.observe_exits(&policy, false);
        for i in 0..self.app.len() {
            let c = spec.containers[i].clone();
            let slot = &self.app[i];
            let needs_start = match &slot.state {
                RuntimeState::Waiting { .. } => true,
                RuntimeState::Terminated { exit_code, .. } => restart_allowed(&policy, *exit_code),
                RuntimeState::Running { .. } => false,
            };
            if needs_start {
                self.start_container(pod, &c, false, i).await;
            }
        }
    }

    /// Start (or restart) one container: back-off, image, config, create, start, probes.
    async fn start_container(&mut self, pod: &Pod, c: &Container, init: bool, index: usize) {
        let cref = Self::container_ref(pod, &c.name, init);
        let image = c.image.clone().unwrap_or_default();
        // Leaving a termination (for a back-off wait or a restart): it becomes lastState.
        {
            let slot = self.slot_mut(init, index);
            if matches!(slot.state, RuntimeState::Terminated { .. }) {
                slot.last_termination = Some(slot.state.clone());
            }
        }
        if self.backing_off(pod, c, init, index, &cref).await {
            return;
        }
        // A container that had an instance before is being restarted.
        let restarting = self.slot(init, index).id.is_some();
        // Image.
        let Some(resolved) = self.ensure_image(pod, c, init, index, &cref, &image).await else {
            return;
        };
        // Configuration.
        let services = match self.shared.services().await {
            Ok(services) => super::service_env::for_pod(pod, services.iter().map(|s| &**s)),
            Err(message) => return self.config_error(&cref, init, index, message).await,
        };
        let env = match volumes::env(
            &self.shared.client,
            pod,
            c,
            &self.shared.config.cpu,
            &self.shared.config.memory,
            &services,
        )
        .await
        {
            Ok(env) => env,
            Err(message) => return self.config_error(&cref, init, index, message).await,
        };
        let image_user = match catalog::image_user(&resolved) {
            "" => security::ImageUser::Uid(0),
            user => {
                let name = user.split(':').next().unwrap_or_default();
                name.parse()
                    .map(security::ImageUser::Uid)
                    .unwrap_or_else(|_| security::ImageUser::Name(name.to_string()))
            }
        };
        if let Err(message) = security::verify_run_as_non_root(pod, c, &image_user) {
            return self.config_error(&cref, init, index, message).await;
        }
        let mounts = volumes::container_mounts(c, pod, &self.volume_fs);
        let mut files = std::collections::BTreeMap::new();
        if let (Some(ip), true) = (self.ip, hosts::mounted_in(c)) {
            files.insert(hosts::PATH.to_string(), hosts::content(pod, ip));
        }
        let config = ContainerConfig {
            pod_name: crate::k8s::pod_hostname_and_domain(pod).0,
            pod_ip: self.ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            name: c.name.clone(),
            image: resolved.clone(),
            command: c.command.clone().unwrap_or_default(),
            args: c.args.clone().unwrap_or_default(),
            env,
            files,
            mounts,
            identity: volumes::identity(pod, c, catalog::image_user(&resolved)),
            read_only_root: c
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false),
        };
        let runtime = self.shared.runtime.clone();
        if let Some(old) = self.slot(init, index).id.clone() {
            let previous = runtime.log(&old).map(|log| (old.clone(), log));
            runtime.remove_container(&old);
            self.slot_mut(init, index).previous_logs = previous;
        }
        let id = runtime.create_container(config);
        self.event(
            &cref,
            EventType::Normal,
            "Created",
            &format!("Created container: {}", c.name),
        )
        .await;
        let _ = runtime.start_container(&id).await;
        // The container started now, after its image and configuration were ready.
        let now = self.shared.clock.now();
        {
            let slot = self.slot_mut(init, index);
            if restarting {
                slot.restart_count += 1;
            }
            slot.id = Some(id.clone());
            slot.image_ref = Some(resolved);
            slot.backoff.started();
            slot.probes = Arc::new(ProbeResults::default());
        }
        match runtime.state(&id) {
            Some(ProcessState::StartFailed { message, .. }) => {
                self.failed(&cref, &message).await;
                // observe_exits turns it into a StartError termination on the next pass.
                self.slot_mut(init, index).state = RuntimeState::Running {
                    started_at: now.timestamp(),
                };
                self.observe_exits(
                    &pod.spec
                        .as_ref()
                        .and_then(|s| s.restart_policy.clone())
                        .unwrap_or_else(|| "Always".into()),
                    init,
                );
                return;
            }
            _ => {
                self.slot_mut(init, index).state = RuntimeState::Running {
                    started_at: now.timestamp(),
                };
            }
        }
        self.event(
            &cref,
            EventType::Normal,
            "Started",
            &format!("Started container {}", c.name),
        )
        .await;
        let Some(message) = self.post_start(pod, c, &cref, &id).await else {
            self.start_probes(pod, c, init, index, &id, now);
            return;
        };
        // Killed for its hook: until the next sync decides its restart, a container that will
        // restart waits with PostStartHookError and the hook's message (upstream's reason
        // cache); one that will not stays terminated.
        let pod_policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        self.observe_exits(&pod_policy, init);
        let policy = if init && status::is_restartable_init_container(c) {
            "Always"
        } else {
            pod_policy.as_str()
        };
        let slot = self.slot_mut(init, index);
        if let RuntimeState::Terminated { exit_code, .. } = slot.state {
            if restart_allowed(policy, exit_code) {
                slot.last_termination = Some(slot.state.clone());
                slot.state = RuntimeState::Waiting {
                    reason: status::REASON_POST_START_HOOK_ERROR.into(),
                    message: Some(message),
                };
            }
        }
    }

    /// Run the container's postStart hook, if any. A failed hook is a `FailedPostStartHook`
    /// event without detail, and kills the container as upstream's `startContainer` does (its
    /// restart policy decides the rest): the hook's message then, for the container's waiting
    /// state.
    async fn post_start(
        &self,
        pod: &Pod,
        c: &Container,
        cref: &ObjectReference,
        id: &str,
    ) -> Option<String> {
        let hook = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())?;
        let Err(message) = run_hook(&self.shared, self.ip, pod, c, id, hook).await else {
            return None;
        };
        self.event(
            cref,
            EventType::Warning,
            "FailedPostStartHook",
            hooks::POST_START_HOOK_FAILED,
        )
        .await;
        kill_container(
            self.shared.clone(),
            self.ip,
            Some(pod.clone()),
            c.name.clone(),
            id.to_string(),
            Some("FailedPostStartHook".into()),
            hooks::grace_period(pod, Some(c), KillReason::FailedPostStartHook),
        )
        .await;
        Some(message)
    }

    /// While the container's restart back-off lasts: CrashLoopBackOff, with the kubelet's
    /// BackOff event, and a wake-up when it ends. True when the start must wait.
    async fn backing_off(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        index: usize,
        cref: &ObjectReference,
    ) -> bool {
        let now = self.shared.clock.now();
        let Some((until, step)) = self.slot(init, index).backoff.waiting(now) else {
            return false;
        };
        let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let uid = &self.uid;
        // Go's rendering of the step: `back-off 1m20s`, `back-off 5m0s`.
        let step = go_duration(step.to_std().unwrap_or_default());
        let message = format!(
            "back-off {step} restarting failed container={} pod={pod_name}_{ns}({uid})",
            c.name
        );
        let event = format!(
            "Back-off restarting failed container {} in pod {pod_name}_{ns}({uid})",
            c.name
        );
        self.slot_mut(init, index).state = RuntimeState::Waiting {
            reason: status::REASON_CRASH_LOOP_BACK_OFF.into(),
            message: Some(message),
        };
        self.event(cref, EventType::Warning, "BackOff", &event)
            .await;
        self.wake_at(until);
        true
    }

    async fn ensure_image(
        &mut self,
        _pod: &Pod,
        c: &Container,
        init: bool,
        index: usize,
        cref: &ObjectReference,
        image: &str,
    ) -> Option<Image> {
        let now = self.shared.clock.now();
        let runtime = self.shared.runtime.clone();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| crate::k8s::default_pull_policy(image).into());
        if let Err(ImageError::InvalidName(message)) = super::runtime::catalog::normalize(image) {
            let detail = Some((EventType::Warning, "InspectFailed", message.as_str()));
            self.cannot_start(
                cref,
                init,
                index,
                detail,
                status::REASON_INVALID_IMAGE_NAME,
                message.clone(),
            )
            .await;
            return None;
        }
        let local = runtime.local_image(image);
        if policy != "Always" {
            if let Some(found) = local {
                self.event(
                    cref,
                    EventType::Normal,
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                )
                .await;
                return Some(found);
            }
            if policy == "Never" {
                let message =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                let detail = Some((EventType::Warning, "ErrImageNeverPull", message.as_str()));
                self.cannot_start(
                    cref,
                    init,
                    index,
                    detail,
                    status::REASON_ERR_IMAGE_NEVER_PULL,
                    message.clone(),
                )
                .await;
                return None;
            }
        }
        if let Some((until, _, error)) = self.slot(init, index).image_backoff.clone() {
            if until > now {
                let back_off = format!("Back-off pulling image \"{image}\"");
                let message = format!("{back_off}: ErrImagePull: {error}");
                let detail = Some((EventType::Normal, "BackOff", back_off.as_str()));
                self.cannot_start(
                    cref,
                    init,
                    index,
                    detail,
                    status::REASON_IMAGE_PULL_BACK_OFF,
                    message,
                )
                .await;
                self.wake_at(until);
                return None;
            }
        }
        self.event(
            cref,
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        )
        .await;
        let started = self.shared.clock.now();
        match runtime.pull_image(image).await {
            Ok(pulled) => {
                let took = (self.shared.clock.now() - started)
                    .to_std()
                    .unwrap_or_default();
                // Truncated to whole milliseconds, as the kubelet prints it (`in 432ms`).
                let d = go_duration(Duration::from_millis(
                    u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                ));
                self.event(cref, EventType::Normal, "Pulled", &format!("Successfully pulled image \"{image}\" in {d} ({d} including waiting). Image size: {} bytes.", pulled.size)).await;
                self.slot_mut(init, index).image_backoff = None;
                Some(pulled)
            }
            Err(e) => {
                let message = e.to_string();
                let failed = format!("Failed to pull image \"{image}\": {message}");
                let detail = Some((EventType::Warning, "Failed", failed.as_str()));
                self.cannot_start(
                    cref,
                    init,
                    index,
                    detail,
                    status::REASON_ERR_IMAGE_PULL,
                    message.clone(),
                )
                .await;
                let now = self.shared.clock.now();
                let slot = self.slot_mut(init, index);
                let first_failure = slot.image_backoff.is_none();
                let next = backoff::next_pull_backoff(slot.image_backoff.as_ref().map(|b| b.1));
                let until = crate::clock::add_std(now, next);
                slot.image_backoff = Some((until, next, message));
                self.wake_at(until);
                // The pod's sandbox started just before this first pull: the PLEG's relist
                // after it notices the sandbox and syncs the pod again (at once if this sync
                // outlasted the relist), which finds the pull backing off (ImagePullBackOff, the
                // BackOff event), as on a real node a second or so after ErrImagePull.
                if let (true, Some(ready)) = (first_failure, self.sandbox_ready) {
                    let relist = crate::clock::add_std(ready, PLEG_RELIST_PERIOD);
                    self.wake_at(relist.max(now));
                }
                None
            }
        }
    }

    /// A container that cannot start yet: the kubelet's detail event (if any), then
    /// `Failed: Error: <reason>`, and the container waiting with that reason.
    async fn cannot_start(
        &mut self,
        cref: &ObjectReference,
        init: bool,
        index: usize,
        detail: Option<(EventType, &str, &str)>,
        reason: &str,
        message: String,
    ) {
        if let Some((t, event_reason, event_message)) = detail {
            self.event(cref, t, event_reason, event_message).await;
        }
        self.failed(cref, reason).await;
        self.slot_mut(init, index).state = RuntimeState::Waiting {
            reason: reason.into(),
            message: Some(message),
        };
    }

    fn slot(&self, init: bool, index: usize) -> &ContainerSlot {
        if init {
            &self.init[index]
        } else {
            &self.app[index]
        }
    }

    fn slot_mut(&mut self, init: bool, index: usize) -> &mut ContainerSlot {
        if init {
            &mut self.init[index]
        } else {
            &mut self.app[index]
        }
    }

    /// Start the probe workers of a container instance that started at `started_at`.
    fn start_probes(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        index: usize,
        id: &str,
        started_at: DateTime<Utc>,
    ) {
        let stop = tokio_util::sync::CancellationToken::new();
        let slot = self.slot_mut(init, index);
        if let Some(old) = slot.probe_stop.replace(stop.clone()) {
            old.cancel();
        }
        let results = slot.probes.clone();
        if c.startup_probe.is_none() {
            results.started.store(true, Ordering::Relaxed);
        }
        if c.readiness_probe.is_none() {
            results.ready.store(true, Ordering::Relaxed);
        }
        let ip = self.ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let ctx = ProbeCtx {
            ticks_from: self.admitted,
            started_at,
            shared: self.shared.clone(),
            pod_ref: Self::container_ref(pod, &c.name, init),
            container: c.clone(),
            id: id.to_string(),
            ip,
            results,
            notify: self.probe_tx.clone(),
            stop,
        };
        let ctx = Arc::new(ctx);
        for kind in [
            ProbeKind::Startup,
            ProbeKind::Liveness,
            ProbeKind::Readiness,
        ] {
            let probe = match kind {
                ProbeKind::Startup => c.startup_probe.clone(),
                ProbeKind::Liveness => c.liveness_probe.clone(),
                ProbeKind::Readiness => c.readiness_probe.clone(),
            };
            if let Some(probe) = probe {
                tokio::spawn(probe_loop(ctx.clone(), kind, probe));
            }
        }
    }

    async fn kill_for_probe(&mut self, pod: &Pod, container: &str, id: &str, probe: &'static str) {
        let Some(slot) = self
            .app
            .iter()
            .chain(self.init.iter())
            .find(|s| s.name == container && s.id.as_deref() == Some(id))
        else {
            return;
        };
        if !slot.running() {
            return;
        }
        let spec = pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .find(|c| c.name == container)
        });
        let reason = if probe == "startup" {
            KillReason::StartupProbe
        } else {
            KillReason::LivenessProbe
        };
        kill_container(
            self.shared.clone(),
            self.ip,
            Some(pod.clone()),
            container.to_string(),
            id.to_string(),
            Some(format!(
                "Container {container} failed {probe} probe, will be restarted"
            )),
            hooks::grace_period(pod, spec, reason),
        )
        .await;
    }

    /// Stop every running container within `grace`, each as upstream's `killContainer` does
    /// (its `Killing` event, its preStop hook, at least two seconds after SIGTERM). Only what the
    /// runtime still runs is stopped: a kill started over with a shorter grace period leaves
    /// alone the containers the first one already stopped (no second Killing event, no second
    /// preStop hook).
    async fn kill_all(&mut self, pod: Option<&Pod>, grace: Duration) {
        let mut stops = Vec::new();
        let runtime = self.shared.runtime.clone();
        let still_runs = |id: &str| matches!(runtime.state(id), Some(ProcessState::Running { .. }));
        let grace_seconds = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        for slot in self.app.iter_mut().chain(self.init.iter_mut()) {
            if let Some(stop) = slot.probe_stop.take() {
                stop.cancel();
            }
            let running = slot.running() && slot.id.as_deref().is_some_and(still_runs);
            if let (true, Some(id)) = (running, slot.id.clone()) {
                stops.push(kill_container(
                    self.shared.clone(),
                    self.ip,
                    pod.cloned(),
                    slot.name.clone(),
                    id,
                    None,
                    grace_seconds,
                ));
            }
        }
        futures::future::join_all(stops).await;
        let policy_never = "Never";
        self.observe_exits(policy_never, true);
        self.observe_exits(policy_never, false);
    }

    fn cleanup(&mut self) {
        for slot in self.app.iter().chain(self.init.iter()) {
            if let Some(id) = &slot.id {
                self.shared.runtime.remove_container(id);
            }
        }
        self.shared.forget_logs(&self.uid);
    }

    /// Termination, from `state` (terminating) on: stop every container within the grace period,
    /// starting over when a later update shortens it; then report and remove the pod from the
    /// API for good. A pod already gone from the API is only cleaned up.
    async fn terminate(
        &mut self,
        mut state: WorkState,
        updates: &mut watch::Receiver<Option<Arc<Pod>>>,
        mut closed: bool,
    ) {
        let mut gone = true;
        while let WorkState::Terminating {
            grace,
            gone: now_gone,
        } = state
        {
            gone = now_gone;
            let pod = if gone { None } else { updates.borrow().clone() };
            let kill = self.kill_all(pod.as_deref(), grace);
            tokio::pin!(kill);
            state = loop {
                tokio::select! {
                    _ = &mut kill => break state.killed(),
                    changed = updates.changed(), if !closed => {
                        closed = changed.is_err();
                        let update = if closed {
                            PodUpdate::Gone
                        } else {
                            PodUpdate::of(updates.borrow().as_deref())
                        };
                        let next = state.on_update(update);
                        if state.shortens_kill(next) {
                            break next;
                        }
                        state = next;
                    }
                }
            };
        }
        // Every container has stopped: the sandbox goes too, before the last status.
        self.sandbox_stopped = true;
        let pod = updates.borrow().clone();
        if let (false, Some(pod)) = (gone, pod) {
            self.report(&pod).await;
            self.delete_for_good(&pod).await;
        }
        self.cleanup();
    }

    /// Remove a terminated pod from the API (grace period 0, only this incarnation).
    async fn delete_for_good(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(&name, &params).await {
            tracing::debug!(pod = %name, cause = %e, "final delete failed");
        }
    }

    /// Report the pod's status when it changed. Once the pod has finished (a terminal phase, no
    /// container running), the kubelet stops its sandbox and reports again, as upstream's
    /// `SyncTerminatingPod` does: PodReadyToStartContainers turns False (the pod keeps its IPs).
    async fn report(&mut self, pod: &Pod) {
        self.report_once(pod).await;
        let finished = self
            .last_status
            .as_ref()
            .is_some_and(|s| status::is_terminal_phase(s.phase.as_deref()))
            && !self
                .app
                .iter()
                .chain(self.init.iter())
                .any(ContainerSlot::running);
        if finished && !self.sandbox_stopped {
            self.sandbox_stopped = true;
            self.report_once(pod).await;
        }
    }

    async fn report_once(&mut self, pod: &Pod) {
        self.shared
            .remember_logs(&self.uid, pod, &self.app, &self.init);
        let init: Vec<ContainerInfo> = self.init.iter().map(ContainerSlot::info).collect();
        let app: Vec<ContainerInfo> = self.app.iter().map(ContainerSlot::info).collect();
        // The pod gets its IP with its sandbox.
        let sandbox = !self.sandbox_stopped
            && self.ip.is_some()
            && self
                .sandbox_ready
                .is_some_and(|t| self.shared.clock.now() >= t);
        let obs = PodObservation {
            pod,
            init_containers: init,
            containers: app,
            sandbox_ready: sandbox,
            pod_ip: self.ip.filter(|_| sandbox).map(|ip| ip.to_string()),
            host_ip: Some(self.shared.config.node_ip.to_string()),
            start_time: self.start_time,
            now: self.shared.clock.now().timestamp(),
            terminal: self
                .terminal
                .as_ref()
                .map(|(phase, reason, message)| (*phase, *reason, message.as_str())),
        };
        let previous = self.last_status.clone().or_else(|| pod.status.clone());
        let next = status::pod_status(&obs, previous.as_ref());
        self.shared.remember_status(&self.uid, &next);
        if previous
            .as_ref()
            .is_some_and(|p| !status::status_changed(p, &next))
        {
            return;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &ns);
        let patch = json!({"metadata": {"uid": self.uid}, "status": next});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => self.last_status = Some(next),
            Err(e) => tracing::debug!(pod = %name, cause = %e, "cannot report pod status"),
        }
    }
}
