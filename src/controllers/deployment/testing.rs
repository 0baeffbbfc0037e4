//! Fixtures of the Deployment controller's unit tests: Deployments to start from, and a toy
//! apiserver plus ReplicaSet controller ([`Cluster`]) that applies plans and makes pods available
//! on demand.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::plan::{plan_sync, Action, Event, SyncPlan};
use super::progress::get_condition;
use super::util::*;

/// A ReplicaSet status with every replica created, ready and available.
pub(super) fn settled_status(rs: &ReplicaSet) -> ReplicaSetStatus {
    let n = rs_spec_replicas(rs);
    ReplicaSetStatus {
        replicas: n,
        ready_replicas: nz(n),
        available_replicas: nz(n),
        fully_labeled_replicas: nz(n),
        observed_generation: rs.metadata.generation,
        ..Default::default()
    }
}

const T0: i64 = 1_750_000_000;

pub(super) fn at(secs: i64) -> String {
    Timestamp::from_second(T0 + secs).unwrap().to_string()
}

pub(super) fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(T0 + secs).unwrap())
}

pub(super) fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            },
            "strategy": strategy,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        }
    }))
    .unwrap()
}

pub(super) fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

pub(super) fn default_rolling() -> Value {
    rolling(json!("25%"), json!("25%"))
}

pub(super) fn set_image(d: &mut Deployment, image: &str) {
    let spec = d.spec.as_mut().unwrap();
    spec.template.spec.as_mut().unwrap().containers[0].image = Some(image.to_string());
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
}

pub(super) fn set_replicas(d: &mut Deployment, replicas: i32) {
    d.spec.as_mut().unwrap().replicas = Some(replicas);
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
}

/// A toy apiserver + ReplicaSet controller: applies plans, makes pods available on demand.
pub(super) struct Cluster {
    pub(super) d: Deployment,
    pub(super) rss: Vec<ReplicaSet>,
    pub(super) events: Vec<Event>,
    pub(super) clock: i64,
    next_uid: u32,
}

impl Cluster {
    pub(super) fn new(d: Deployment) -> Self {
        Cluster {
            d,
            rss: Vec::new(),
            events: Vec::new(),
            clock: 0,
            next_uid: 0,
        }
    }

    pub(super) fn now(&self) -> String {
        at(self.clock)
    }

    pub(super) fn rs(&self, name: &str) -> &ReplicaSet {
        self.rss.iter().find(|r| rs_name(r) == name).unwrap()
    }

    pub(super) fn plan(&self) -> SyncPlan {
        plan_sync(&self.d, &self.rss, false, &self.now())
    }

    /// Applies the plan's actions one by one, calling `check` after each.
    pub(super) fn apply(&mut self, plan: &SyncPlan, check: &mut dyn FnMut(&Cluster)) {
        assert_eq!(plan.error, None);
        for action in &plan.actions {
            match action {
                Action::CreateReplicaSet(w) => {
                    assert!(self
                        .rss
                        .iter()
                        .all(|r| rs_name(r) != rs_name(&w.replica_set)));
                    let mut rs = w.replica_set.clone();
                    self.next_uid += 1;
                    rs.metadata.uid = Some(format!("rs-uid-{}", self.next_uid));
                    rs.metadata.creation_timestamp = Some(time(self.clock));
                    rs.metadata.generation = Some(1);
                    rs.status = Some(ReplicaSetStatus::default());
                    self.rss.push(rs);
                    self.events.extend(w.event.clone());
                }
                Action::UpdateReplicaSet(w) => {
                    let name = rs_name(&w.replica_set).to_string();
                    let existing = self.rss.iter_mut().find(|r| rs_name(r) == name).unwrap();
                    if existing.spec != w.replica_set.spec {
                        existing.metadata.generation =
                            Some(existing.metadata.generation.unwrap_or(0) + 1);
                    }
                    existing.spec = w.replica_set.spec.clone();
                    existing.metadata.annotations = w.replica_set.metadata.annotations.clone();
                    self.events.extend(w.event.clone());
                }
                Action::DeleteReplicaSet { name } => self.rss.retain(|r| rs_name(r) != name),
                Action::UpdateDeploymentStatus(d) => {
                    self.d.status = d.status.clone();
                    self.d.metadata.annotations = d.metadata.annotations.clone();
                }
                Action::UpdateDeployment(d) => {
                    if self.d.spec != d.spec {
                        self.d.metadata.generation =
                            Some(self.d.metadata.generation.unwrap_or(0) + 1);
                    }
                    self.d.spec = d.spec.clone();
                    self.d.metadata.annotations = d.metadata.annotations.clone();
                }
                Action::RecordEvent(e) => self.events.push(e.clone()),
            }
            check(self);
        }
    }

    /// The ReplicaSet controller catches up and every pod becomes available at once.
    pub(super) fn settle(&mut self) {
        for rs in &mut self.rss {
            rs.status = Some(settled_status(rs));
        }
    }

    /// Runs sync / settle rounds until a sync has nothing to do. Returns the rounds used.
    pub(super) fn converge(&mut self, check: &mut dyn FnMut(&Cluster)) -> usize {
        for round in 0..60 {
            let plan = self.plan();
            if plan.actions.is_empty() {
                return round;
            }
            self.apply(&plan, check);
            self.settle();
            check(self);
            self.clock += 1;
        }
        panic!("no convergence: {:#?}", self.rss);
    }

    pub(super) fn new_rs(&self) -> &ReplicaSet {
        find_new_replica_set(&self.d, &self.rss).expect("new RS")
    }

    pub(super) fn condition(&self, type_: &str) -> DeploymentCondition {
        get_condition(dstatus(&self.d), type_)
            .cloned()
            .expect("condition")
    }

    pub(super) fn messages(&self) -> Vec<String> {
        self.events.iter().map(|e| e.message.clone()).collect()
    }

    /// The Deployment's revision annotation.
    pub(super) fn revision(&self) -> Option<&str> {
        self.d
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(REVISION_ANNOTATION)
            .map(String::as_str)
    }

    /// Pods in all ReplicaSets, and those of them that are available (pods that exist and are
    /// available: a scale-down removes pods at once).
    pub(super) fn pods(&self) -> (i32, i32) {
        let total: i32 = self.rss.iter().map(rs_spec_replicas).sum();
        let available: i32 = self
            .rss
            .iter()
            .map(|r| rs_spec_replicas(r).min(rs_available(r)))
            .sum();
        (total, available)
    }

    /// Asserts that the rollout completed with the new ReplicaSet `name`, and returns the
    /// Progressing condition.
    pub(super) fn assert_progressed(&self, name: &str) -> DeploymentCondition {
        let progressing = self.condition(CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(
            progressing.message,
            Some(format!(
                "ReplicaSet \"{name}\" has successfully progressed."
            ))
        );
        progressing
    }

    /// Asserts the desired-replicas and max-replicas annotations the ReplicaSet `name` was last
    /// scaled with.
    pub(super) fn assert_scaled_for(&self, name: &str, desired: &str, max: &str) {
        assert_eq!(
            rs_annotation(self.rs(name), DESIRED_REPLICAS_ANNOTATION),
            Some(desired)
        );
        assert_eq!(
            rs_annotation(self.rs(name), MAX_REPLICAS_ANNOTATION),
            Some(max)
        );
    }
}

pub(super) fn no_check(_: &Cluster) {}
