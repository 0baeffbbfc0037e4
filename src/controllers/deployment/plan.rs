//! The plan of one sync of a Deployment, as pure functions over k8s-openapi types: [`plan_sync`]
//! simulates upstream's `syncDeployment` over an in-memory view of the Deployment's ReplicaSets
//! (its steps live in the sibling modules `sync`, `rolling`, `recreate`, `rollback` and
//! `progress`) and returns the ordered writes and events it would make.
//!
//! Nothing here performs I/O, reads a clock or spawns a task: callers pass the Deployment, the
//! ReplicaSets it controls and the current cluster time (`now`, RFC 3339), and get back what
//! upstream's deployment controller (Kubernetes 1.33, `pkg/controller/deployment`) would do in one
//! sync of that Deployment: an ordered list of writes and events ([`plan_sync`]). The I/O loop that
//! drives it (informers, work queue, API writes, event recorder) is the parent module, and stays
//! thin.
//!
//! # Contract for the driving loop
//! 1. Gather the ReplicaSets whose controller ownerReference points at the Deployment's uid (all
//!    of them, including ones being deleted), and whether any pod owned by one of them *other than
//!    the new one* ([`find_new_replica_set`]) is still in a non-terminal phase (not `Succeeded` /
//!    `Failed`): the Recreate strategy waits for those pods to go away.
//! 2. Call [`plan_sync`] and execute [`SyncPlan::actions`] in order, stopping at the first failed
//!    write (then requeue with rate limiting, as upstream does when a sync returns an error):
//!    - [`Action::CreateReplicaSet`]: POST. On `409 AlreadyExists`, fetch the existing object and
//!      call [`resolve_create_conflict`]; on any other error (except a terminating namespace)
//!      write [`create_failed`]'s status and record its event.
//!    - [`Action::UpdateReplicaSet`]: PUT (or merge-patch [`ReplicaSetWrite::merge_patch`]).
//!    - [`Action::DeleteReplicaSet`]: DELETE; a 404 is success.
//!    - [`Action::UpdateDeploymentStatus`]: PUT `deployments/<name>/status`. Upstream's status
//!      strategy keeps `metadata.annotations` from the request (it resets only spec and labels),
//!      and that is how the `deployment.kubernetes.io/revision` annotation reaches the Deployment.
//!    - [`Action::UpdateDeployment`]: PUT the Deployment itself (only for the deprecated
//!      rollback annotation).
//!    - [`Action::RecordEvent`]: record the event on the Deployment.
//!
//!    A write's own event ([`ReplicaSetWrite::event`]) is recorded after the write succeeds.
//!    Several actions may write the same object in one plan (upstream then re-uses the object the
//!    previous write returned); carry the resourceVersion of the previous write forward.
//! 3. If [`SyncPlan::requeue_after_seconds`] is set, sync the Deployment again after that many
//!    cluster seconds (0: now, rate limited): that is how a stuck rollout reaches
//!    `ProgressDeadlineExceeded`.
//!
//! Objects are expected to have been defaulted by the apiserver; where a field is absent it is
//! read as its apps/v1 default (replicas 1, RollingUpdate with maxSurge and maxUnavailable 25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600).
//!
//! This module and its siblings (all but the loop) must not touch the API, the store, the clock
//! or the event recorder.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::progress::*;
use super::rollback::rollback_to;
use super::util::*;

/// An event to record on the Deployment (source [`COMPONENT`](super::COMPONENT)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    pub(super) fn normal(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Normal",
            reason,
            message,
        }
    }
    pub(super) fn warning(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Warning",
            reason,
            message,
        }
    }
}

/// A ReplicaSet scaled from one size to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleChange {
    pub name: String,
    pub from: i32,
    pub to: i32,
}

/// A ReplicaSet to create or update.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSetWrite {
    /// The whole desired object (metadata as listed, so resourceVersion is the listed one).
    pub replica_set: ReplicaSet,
    /// spec.replicas before and after, when this write scales.
    pub scale: Option<ScaleChange>,
    /// To record once the write succeeded.
    pub event: Option<Event>,
}

impl ReplicaSetWrite {
    /// A JSON merge patch carrying what this update changes (spec.replicas,
    /// spec.minReadySeconds and the annotations), for loops that patch rather than PUT.
    pub fn merge_patch(&self) -> Value {
        let spec = self.replica_set.spec.as_ref();
        serde_json::json!({
            "metadata": { "annotations": self.replica_set.metadata.annotations },
            "spec": {
                "replicas": spec.and_then(|s| s.replicas),
                "minReadySeconds": spec.and_then(|s| s.min_ready_seconds),
            },
        })
    }
}

/// One write or event of a sync, in upstream's order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// POST the ReplicaSet.
    CreateReplicaSet(ReplicaSetWrite),
    /// PUT the ReplicaSet (spec.replicas and/or annotations and minReadySeconds changed).
    UpdateReplicaSet(ReplicaSetWrite),
    /// DELETE the old ReplicaSet (revisionHistoryLimit).
    DeleteReplicaSet { name: String },
    /// PUT the Deployment's status subresource with this object (status and annotations).
    UpdateDeploymentStatus(Deployment),
    /// PUT the Deployment (template, annotations) — the deprecated rollback annotation only.
    UpdateDeployment(Deployment),
    /// Record an event on the Deployment.
    RecordEvent(Event),
}

/// What one sync of a Deployment does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Writes and events, in order.
    pub actions: Vec<Action>,
    /// Sync again after this many cluster seconds (0: now, rate limited).
    pub requeue_after_seconds: Option<f64>,
    /// Upstream would return this error from the sync (after the actions): requeue with backoff.
    pub error: Option<String>,
}

impl SyncPlan {
    /// Every ReplicaSet scale in order (creations count as scaling from 0).
    pub fn scale_changes(&self) -> Vec<ScaleChange> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateReplicaSet(w) | Action::UpdateReplicaSet(w) => w.scale.clone(),
                _ => None,
            })
            .collect()
    }

    /// The ReplicaSet this plan creates, if any.
    pub fn created_replica_set(&self) -> Option<&ReplicaSet> {
        self.actions.iter().find_map(|a| match a {
            Action::CreateReplicaSet(w) => Some(&w.replica_set),
            _ => None,
        })
    }

    /// Every event of the plan, in order (write events included).
    pub fn events(&self) -> Vec<&Event> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateReplicaSet(w) | Action::UpdateReplicaSet(w) => w.event.as_ref(),
                Action::RecordEvent(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// The last Deployment status this plan writes, if any.
    pub fn final_status(&self) -> Option<&DeploymentStatus> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::UpdateDeploymentStatus(d) => d.status.as_ref(),
            _ => None,
        })
    }
}

/// What to do when creating the new ReplicaSet answered 409 AlreadyExists.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateConflict {
    /// The existing ReplicaSet is this Deployment's, with this template: a stale cache; sync again.
    Adopt,
    /// A hash collision: write this status (collisionCount + 1) and sync again.
    BumpCollisionCount(Box<Deployment>),
}

/// Upstream's handling of AlreadyExists when creating the new ReplicaSet.
pub fn resolve_create_conflict(d: &Deployment, existing: &ReplicaSet) -> CreateConflict {
    let ours = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
    if ours && equal_ignore_hash(dtemplate(d), rs_template(existing)) {
        return CreateConflict::Adopt;
    }
    let mut bumped = d.clone();
    let status = dstatus_mut(&mut bumped);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    CreateConflict::BumpCollisionCount(Box::new(bumped))
}

/// Creating the new ReplicaSet failed with `error`: the Deployment with a False Progressing
/// `ReplicaSetCreateError` condition to write (when it has a progress deadline), and the warning
/// event `Failed to create new replica set "<name>": <error>`.
pub fn create_failed(
    d: &Deployment,
    rs_name: &str,
    error: &str,
    now: &str,
) -> (Option<Deployment>, Event) {
    let message = format!("Failed to create new replica set \"{rs_name}\": {error}");
    let mut updated = None;
    if has_progress_deadline(d) {
        if let Ok((now_t, _)) = parse_now(now) {
            let mut copy = d.clone();
            let c = new_condition(
                CONDITION_PROGRESSING,
                "False",
                reason::FAILED_RS_CREATE,
                &message,
                &now_t,
            );
            set_condition(dstatus_mut(&mut copy), c);
            updated = Some(copy);
        }
    }
    (updated, Event::warning(reason::FAILED_RS_CREATE, message))
}

/// Why a simulated sync stopped early.
pub(super) enum Stop {
    /// Hash collision: collisionCount was bumped; sync again.
    Collision,
    /// Upstream's sync would return this error.
    Error(String),
}

/// One sync of one Deployment, simulated over an in-memory view of the ReplicaSets. The working
/// Deployment is mutated as upstream mutates its copy; every write is recorded as an action.
pub(super) struct Sim {
    pub(super) now: Time,
    pub(super) now_ns: i128,
    pub(super) d: Deployment,
    /// The Deployment as the last planned write left it on the server.
    pub(super) written: Deployment,
    pub(super) rss: Vec<ReplicaSet>,
    pub(super) old_pods_running: bool,
    pub(super) actions: Vec<Action>,
    pub(super) requeue: Option<f64>,
}

pub(super) type NewAndOld = (Option<String>, Vec<String>);

impl Sim {
    pub(super) fn idx(&self, name: &str) -> usize {
        self.rss
            .iter()
            .position(|rs| rs_name(rs) == name)
            .expect("ReplicaSet in the working view")
    }

    pub(super) fn rs(&self, name: &str) -> &ReplicaSet {
        &self.rss[self.idx(name)]
    }

    pub(super) fn event(&mut self, event: Event) {
        self.actions.push(Action::RecordEvent(event));
    }

    /// Writes the working Deployment's status (and annotations) if they differ from the server's.
    pub(super) fn flush_status(&mut self) {
        if self.d.status == self.written.status
            && self.d.metadata.annotations == self.written.metadata.annotations
        {
            return;
        }
        self.written.status = self.d.status.clone();
        self.written.metadata.annotations = self.d.metadata.annotations.clone();
        self.actions
            .push(Action::UpdateDeploymentStatus(self.d.clone()));
    }

    pub(super) fn snapshot(
        &self,
        new: &Option<String>,
        old: &[String],
    ) -> (Vec<ReplicaSet>, Option<ReplicaSet>) {
        let mut all: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
        let new_rs = new.as_ref().map(|n| self.rs(n).clone());
        all.extend(new_rs.clone());
        (all, new_rs)
    }

    /// Upstream `syncDeployment` after the Deployment and its ReplicaSets were read.
    fn run(&mut self) -> Result<(), Stop> {
        if selector_is_empty(&self.d) {
            self.event(Event::warning(
                reason::SELECTING_ALL,
                "This deployment is selecting all pods. A non-empty selector is required."
                    .to_string(),
            ));
            if dstatus(&self.d).observed_generation.unwrap_or(0) < generation(&self.d) {
                dstatus_mut(&mut self.d).observed_generation = Some(generation(&self.d));
                self.flush_status();
            }
            return Ok(());
        }
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.get_all(false)?;
            let (all, new_rs) = self.snapshot(&new, &old);
            self.sync_deployment_status(&all, new_rs.as_ref());
            return Ok(());
        }
        self.check_paused_conditions();
        if is_paused(&self.d) {
            return self.sync();
        }
        if let Some(to_revision) = rollback_to(&self.d) {
            return self.rollback(to_revision);
        }
        if self.is_scaling_event()? {
            return self.sync();
        }
        match strategy_type(&self.d) {
            "Recreate" => self.rollout_recreate(),
            "RollingUpdate" => self.rollout_rolling(),
            other => Err(Stop::Error(format!(
                "unexpected deployment strategy type: {other}"
            ))),
        }
    }
}

fn selector_is_empty(d: &Deployment) -> bool {
    crate::labels::is_empty(&dspec(d).selector)
}

/// Plans one sync of `d` (upstream `syncDeployment`, 1.33): the ReplicaSets to create, scale or
/// delete, the Deployment status (and revision annotation) writes and the events, in upstream's
/// order. `replica_sets` are the ReplicaSets controlled by `d`; `old_pods_running` says whether
/// a non-terminal pod of a ReplicaSet other than the new one still exists (Recreate waits for
/// them); `now` is the cluster time, RFC 3339.
///
/// Flow: empty selector -> `SelectingAll` warning; being deleted -> status only; pause/resume
/// conditions; paused or a scaling event -> proportional scaling (upstream `scale`) and status;
/// deprecated rollback annotation -> rollback; otherwise one step of RollingUpdate or Recreate
/// and the rollout status (Progressing condition, progress deadline).
pub fn plan_sync(
    d: &Deployment,
    replica_sets: &[ReplicaSet],
    old_pods_running: bool,
    now: &str,
) -> SyncPlan {
    let (now_t, now_ns) = match parse_now(now) {
        Ok(v) => v,
        Err(e) => {
            return SyncPlan {
                error: Some(e),
                ..Default::default()
            }
        }
    };
    let mut sim = Sim {
        now: now_t,
        now_ns,
        d: d.clone(),
        written: d.clone(),
        rss: replica_sets.to_vec(),
        old_pods_running,
        actions: Vec::new(),
        requeue: None,
    };
    let result = sim.run();
    let (requeue, error) = match result {
        Ok(()) => (sim.requeue, None),
        Err(Stop::Collision) => (Some(0.0), None),
        Err(Stop::Error(e)) => (None, Some(e)),
    };
    SyncPlan {
        actions: sim.actions,
        requeue_after_seconds: requeue,
        error,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::sync::new_replica_set;
    use super::super::testing::*;
    use super::*;

    #[test]
    fn create_conflicts_and_failures() {
        let d = deployment(3, "app:v1", default_rolling());
        let ours = new_replica_set(&d, &[], 3);
        let mut owned = ours.clone();
        owned.metadata.owner_references.as_mut().unwrap()[0].uid = "uid-web".into();
        assert_eq!(resolve_create_conflict(&d, &owned), CreateConflict::Adopt);
        let mut other = ours.clone();
        other
            .spec
            .as_mut()
            .unwrap()
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("else".into());
        match resolve_create_conflict(&d, &other) {
            CreateConflict::BumpCollisionCount(bumped) => {
                assert_eq!(dstatus(&bumped).collision_count, Some(1));
                let rs = new_replica_set(&bumped, &[], 3);
                assert_ne!(rs_name(&rs), rs_name(&ours));
            }
            CreateConflict::Adopt => panic!("a collision"),
        }
        let (status, event) = create_failed(&d, "web-abc", "quota exceeded", &at(0));
        assert_eq!(
            event.message,
            "Failed to create new replica set \"web-abc\": quota exceeded"
        );
        assert_eq!(
            (event.type_, event.reason),
            ("Warning", "ReplicaSetCreateError")
        );
        let c = get_condition(dstatus(status.as_ref().unwrap()), CONDITION_PROGRESSING)
            .unwrap()
            .clone();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("ReplicaSetCreateError"))
        );
    }

    #[test]
    fn selecting_all_and_bad_input() {
        let mut d = deployment(3, "app:v1", default_rolling());
        d.spec.as_mut().unwrap().selector = Default::default();
        let plan = plan_sync(&d, &[], false, &at(0));
        assert_eq!(plan.events()[0].reason, "SelectingAll");
        assert_eq!(plan.final_status().unwrap().observed_generation, Some(1));
        assert!(plan_sync(&d, &[], false, "yesterday").error.is_some());
        let bad = deployment(3, "app:v1", rolling(json!("lots"), json!(0)));
        assert!(plan_sync(&bad, &[], false, &at(0)).error.is_some());
    }
}
