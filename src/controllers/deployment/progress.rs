//! Deployment conditions and the progress deadline (upstream `progress.go` and the condition
//! helpers of `deployment/util`): the Available, Progressing and ReplicaFailure conditions of a
//! rollout, whether it completed, progressed or timed out, and when to look again at a stuck one.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::plan::Sim;
use super::sync::calculate_status;
use super::util::*;

/// Parses an RFC 3339 instant; the condition timestamp is truncated to whole seconds, as
/// `metav1.Time` serializes.
pub(super) fn parse_now(now: &str) -> Result<(Time, i128), String> {
    let ts: Timestamp = now
        .parse()
        .map_err(|e| format!("invalid time {now:?}: {e}"))?;
    let whole = Timestamp::from_second(ts.as_second()).map_err(|e| e.to_string())?;
    Ok((Time(whole), ts.as_nanosecond()))
}

/// The condition of that type, if any.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// A condition stamped `now` for both lastUpdateTime and lastTransitionTime.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Upstream `SetDeploymentCondition`: no-op when a condition of that type already has the same
/// status and reason; keeps lastTransitionTime when only the reason changes; otherwise replaces
/// the condition, moving it to the end of the list.
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &condition.type_.clone());
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

/// Removes the condition of that type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// All desired replicas updated and available, no old ones, generation observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = desired_replicas(d);
    status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) == replicas
        && status.observed_generation.unwrap_or(0) >= generation(d)
}

/// Progress between the Deployment's recorded status and `new_status`: more updated, ready or
/// available replicas, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new_status: &DeploymentStatus) -> bool {
    let old = dstatus(d);
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new_status.replicas.unwrap_or(0) - new_status.updated_replicas.unwrap_or(0);
    new_status.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new_status.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new_status.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn time_nanos(t: &Time) -> i128 {
    t.0.as_nanosecond()
}

/// Whether `new_status`'s Progressing condition was last updated more than
/// progressDeadlineSeconds before `now` (already timed out counts; a completed rollout never).
pub fn deployment_timed_out(d: &Deployment, new_status: &DeploymentStatus, now: &str) -> bool {
    match parse_now(now) {
        Ok((_, now_ns)) => timed_out_at(d, new_status, now_ns),
        Err(_) => false,
    }
}

fn timed_out_at(d: &Deployment, new_status: &DeploymentStatus, now_ns: i128) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(condition) = get_condition(new_status, CONDITION_PROGRESSING) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => return false,
        Some(reason::TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = condition.last_update_time.as_ref() else {
        return false;
    };
    let deadline = i128::from(progress_deadline_seconds(d)) * 1_000_000_000;
    time_nanos(from) + deadline < now_ns
}

/// Upstream `requeueStuckDeployment`: seconds until the progress deadline should be checked
/// again (0: now), or None when there is nothing to wait for.
fn requeue_stuck(d: &Deployment, status: &DeploymentStatus, now_ns: i128) -> Option<f64> {
    let condition = get_condition(status, CONDITION_PROGRESSING)?;
    if !has_progress_deadline(d) {
        return None;
    }
    if deployment_complete(d, status) || condition.reason.as_deref() == Some(reason::TIMED_OUT) {
        return None;
    }
    let from = time_nanos(condition.last_update_time.as_ref()?);
    let deadline = i128::from(progress_deadline_seconds(d)) * 1_000_000_000;
    let after = (from + deadline - now_ns) as f64 / 1e9;
    Some(if after < 1.0 { 0.0 } else { after + 1.0 })
}

fn replica_failure_condition(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let convert = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == CONDITION_REPLICA_FAILURE))
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                last_transition_time: c.last_transition_time.clone(),
                last_update_time: c.last_transition_time.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
    };
    new_rs
        .and_then(convert)
        .or_else(|| all.iter().find_map(|rs| convert(rs)))
}

/// Upstream `syncRolloutStatus`'s status: [`calculate_status`] plus the Progressing condition
/// (NewReplicaSetAvailable when complete; ReplicaSetUpdated, re-stamped, on any progress;
/// ProgressDeadlineExceeded past the deadline; removed without a deadline) and ReplicaFailure
/// copied from the ReplicaSets.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &str,
) -> Result<DeploymentStatus, String> {
    let (now_t, now_ns) = parse_now(now)?;
    Ok(rollout_status_at(d, all, new_rs, &now_t, now_ns))
}

fn rollout_status_at(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &Time,
    now_ns: i128,
) -> DeploymentStatus {
    let mut status = calculate_status(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, CONDITION_PROGRESSING);
    }
    let current = get_condition(dstatus(d), CONDITION_PROGRESSING).cloned();
    let is_complete = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(reason::NEW_RS_AVAILABLE);
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet \"{}\"", rs_name(rs)),
        None => format!("Deployment \"{}\"", dname(d)),
    };
    if has_progress_deadline(d) && !is_complete {
        if deployment_complete(d, &status) {
            let message = format!("{subject} has successfully progressed.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                reason::NEW_RS_AVAILABLE,
                &message,
                now,
            );
            set_condition(&mut status, c);
        } else if deployment_progressing(d, &status) {
            let message = format!("{subject} is progressing.");
            let mut c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                reason::REPLICA_SET_UPDATED,
                &message,
                now,
            );
            if let Some(current) = &current {
                if current.status == "True" {
                    c.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, CONDITION_PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if timed_out_at(d, &status, now_ns) {
            let message = format!("{subject} has timed out progressing.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "False",
                reason::TIMED_OUT,
                &message,
                now,
            );
            set_condition(&mut status, c);
        }
    }
    match replica_failure_condition(all, new_rs) {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, CONDITION_REPLICA_FAILURE),
    }
    status
}

impl Sim {
    pub(super) fn sync_rollout_status(&mut self, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) {
        let refs: Vec<&ReplicaSet> = all.iter().collect();
        let status = rollout_status_at(&self.d, &refs, new_rs, &self.now, self.now_ns);
        self.requeue = requeue_stuck(&self.d, &status, self.now_ns);
        self.d.status = Some(status);
        self.flush_status();
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn progress_deadline_exceeded_after_no_progress() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        set_image(&mut c.d, "broken:v2");
        let start = c.clock;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        // The new pod never becomes available; the old ones stay.
        let v2 = rs_name(c.new_rs()).to_string();
        for rs in &mut c.rss {
            let n = rs_spec_replicas(rs);
            let available = if rs_name(rs) == v2 { 0 } else { n };
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: nz(available),
                available_replicas: nz(available),
                observed_generation: rs.metadata.generation,
                ..Default::default()
            });
        }
        c.clock = start + 1;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(reason::REPLICA_SET_UPDATED)
        );
        assert_eq!(
            progressing.message,
            Some(format!("ReplicaSet \"{v2}\" is progressing."))
        );
        let updated_at = start + 1;
        assert_eq!(progressing.last_update_time, Some(time(updated_at)));

        // Nothing moves: no write, and a requeue for when the deadline passes.
        c.clock = updated_at + 300;
        let plan = c.plan();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.requeue_after_seconds, Some(301.0));
        c.clock = updated_at + 600;
        assert!(c.plan().actions.is_empty());

        c.clock = updated_at + 601;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_deref()),
            ("False", Some(reason::TIMED_OUT))
        );
        assert_eq!(
            progressing.message,
            Some(format!("ReplicaSet \"{v2}\" has timed out progressing."))
        );
        assert_eq!(plan.requeue_after_seconds, None);
        assert!(deployment_timed_out(&c.d, dstatus(&c.d), &c.now()));
        // Availability is still fine: the old pods serve.
        assert_eq!(c.condition(CONDITION_AVAILABLE).status, "True");
    }

    #[test]
    fn set_condition_semantics() {
        let mut status = DeploymentStatus::default();
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "A", "a", &time(0)),
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "A", "changed", &time(5)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(
            (c.message.as_deref(), c.last_update_time.clone()),
            (Some("a"), Some(time(0)))
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "True", "B", "b", &time(6)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(
            (c.last_transition_time.clone(), c.last_update_time.clone()),
            (Some(time(0)), Some(time(6)))
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "False", "C", "c", &time(7)),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(c.last_transition_time, Some(time(7)));
        remove_condition(&mut status, "Progressing");
        assert!(status.conditions.is_none());
    }
}
