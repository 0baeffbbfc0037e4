//! One sync's ReplicaSet and status work (upstream `sync.go`): the new ReplicaSet (built, created
//! or brought up to date with the revision), the scaling of paused Deployments and of scaling
//! events (proportional across the active ReplicaSets), the clean-up of old ReplicaSets beyond
//! revisionHistoryLimit, pause conditions, and the Deployment's status.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::plan::{Action, Event, NewAndOld, ReplicaSetWrite, ScaleChange, Sim, Stop};
use super::progress::*;
use super::rollback::rollback_to;
use super::util::*;

// ---------------------------------------------------------------------------------------------
// The new ReplicaSet
// ---------------------------------------------------------------------------------------------

/// The controller ownerReference a ReplicaSet carries to its Deployment.
pub fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "Deployment".to_string(),
        name: dname(d).to_string(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ReplicaSet skeleton for the Deployment's current template and hash, with `replicas` and
/// no annotations.
fn build_replica_set(d: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let spec = dspec(d);
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    let labels = labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", dname(d), hash)),
            namespace: d.metadata.namespace.clone(),
            owner_references: Some(vec![controller_ref(d)]),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

/// The new ReplicaSet for the Deployment's current template: name `<deployment>-<hash>` (hash of
/// the template and status.collisionCount), the hash label on its labels, selector and template,
/// a controller ownerReference (blockOwnerDeletion) to the Deployment, minReadySeconds, the
/// Deployment's copyable annotations, and revision (highest revision among `rss` + 1),
/// desired-replicas and max-replicas annotations. `rss` are the Deployment's existing
/// ReplicaSets (any that already matches the template is ignored for the revision).
pub fn new_replica_set(d: &Deployment, rss: &[ReplicaSet], initial_replicas: i32) -> ReplicaSet {
    let hash = pod_template_hash(dtemplate(d), dstatus(d).collision_count);
    let mut rs = build_replica_set(d, &hash, initial_replicas);
    let revision = max_revision(find_old_replica_sets(d, rss)) + 1;
    set_new_replica_set_annotations(
        d,
        &mut rs,
        &revision.to_string(),
        false,
        MAX_REV_HISTORY_LENGTH_IN_CHARS,
    );
    rs
}

/// How many replicas the new ReplicaSet should have now (upstream `NewRSNewReplicas`): Recreate,
/// all of them; RollingUpdate, as many as maxSurge allows over all ReplicaSets' spec.replicas,
/// never more than spec.replicas. `all` includes `new_rs`.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    let replicas = desired_replicas(d);
    match strategy_type(d) {
        "RollingUpdate" => {
            let (surge, _) = rolling_params(d);
            let surge = scaled_value_from_int_or_percent(&surge, replicas, true)?;
            let current: i32 = all.iter().map(|rs| rs_spec_replicas(rs)).sum();
            let max_total = replicas + surge;
            let new_replicas = rs_spec_replicas(new_rs);
            if current >= max_total {
                return Ok(new_replicas);
            }
            let scale_up = (max_total - current).min(replicas - new_replicas);
            Ok(new_replicas + scale_up)
        }
        "Recreate" => Ok(replicas),
        other => Err(format!("deployment type {other} isn't supported")),
    }
}

/// Whether the new ReplicaSet already owns all desired replicas, all available, and was last
/// scaled for the current spec.replicas.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = desired_replicas_annotation(rs) else {
        return false;
    };
    let replicas = desired_replicas(d);
    rs_spec_replicas(rs) == replicas && desired == replicas && rs_available(rs) == replicas
}

/// revisionHistoryLimit clean-up: the old ReplicaSets to delete, oldest revisions first. Only
/// those beyond the limit that are fully scaled down (spec and status replicas 0, status caught
/// up with generation) and not already being deleted.
pub fn replica_sets_to_delete(d: &Deployment, old_rss: &[&ReplicaSet]) -> Vec<String> {
    if !has_revision_history_limit(d) {
        return Vec::new();
    }
    let mut cleanable: Vec<&ReplicaSet> = old_rss
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = cleanable.len() as i64 - i64::from(revision_history_limit(d));
    if diff <= 0 {
        return Vec::new();
    }
    cleanable.sort_by(|a, b| by_revision(a, b));
    cleanable
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            rs_status_replicas(rs) == 0
                && rs_spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed
                && rs.metadata.deletion_timestamp.is_none()
        })
        .map(|rs| rs_name(rs).to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/// Upstream `calculateStatus`: counts from the ReplicaSets (`all` includes the new one), the
/// Deployment's other conditions carried over, and Available set from
/// `availableReplicas >= replicas - maxUnavailable`. Zero counts are left out (omitempty).
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &Time,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total: i32 = all.iter().map(|rs| rs_spec_replicas(rs)).sum();
    let unavailable = (total - available).max(0);
    let old = dstatus(d);
    let mut status = DeploymentStatus {
        observed_generation: (generation(d) != 0).then_some(generation(d)),
        replicas: nz(all.iter().map(|rs| rs_status_replicas(rs)).sum()),
        updated_replicas: nz(new_rs.map(rs_status_replicas).unwrap_or(0)),
        ready_replicas: nz(all.iter().map(|rs| rs_ready(rs)).sum()),
        available_replicas: nz(available),
        unavailable_replicas: nz(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let condition = if available >= desired_replicas(d) - max_unavailable(d) {
        new_condition(
            CONDITION_AVAILABLE,
            "True",
            reason::MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    } else {
        new_condition(
            CONDITION_AVAILABLE,
            "False",
            reason::MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set_condition(&mut status, condition);
    status
}

impl Sim {
    /// Upstream `getAllReplicaSetsAndSyncRevision` / `getNewReplicaSet`.
    pub(super) fn get_all(&mut self, create: bool) -> Result<NewAndOld, Stop> {
        self.rss.sort_by(by_creation);
        let new_name = find_new_replica_set(&self.d, &self.rss).map(|rs| rs_name(rs).to_string());
        let old: Vec<String> = self
            .rss
            .iter()
            .map(|rs| rs_name(rs).to_string())
            .filter(|n| Some(n) != new_name.as_ref())
            .collect();
        let max_old = max_revision(old.iter().map(|n| self.rs(n)));
        let new_revision = (max_old + 1).to_string();

        if let Some(name) = new_name {
            let i = self.idx(&name);
            let mut copy = self.rss[i].clone();
            let annotations_changed = set_new_replica_set_annotations(
                &self.d,
                &mut copy,
                &new_revision,
                true,
                MAX_REV_HISTORY_LENGTH_IN_CHARS,
            );
            let min_ready = dspec(&self.d).min_ready_seconds;
            if annotations_changed || rs_min_ready_seconds(&copy) != min_ready.unwrap_or(0) {
                copy.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = min_ready;
                self.rss[i] = copy.clone();
                self.actions.push(Action::UpdateReplicaSet(ReplicaSetWrite {
                    replica_set: copy,
                    scale: None,
                    event: None,
                }));
            }
            let rs_revision = rs_annotation(&self.rss[i], REVISION_ANNOTATION)
                .unwrap_or("")
                .to_string();
            let mut needs_update = set_deployment_revision(&mut self.d, &rs_revision);
            if has_progress_deadline(&self.d)
                && get_condition(dstatus(&self.d), CONDITION_PROGRESSING).is_none()
            {
                let message = format!("Found new replica set \"{name}\"");
                self.set_progressing(reason::FOUND_NEW_RS, &message);
                needs_update = true;
            }
            if needs_update {
                self.flush_status();
            }
            return Ok((Some(name), old));
        }
        if !create {
            return Ok((None, old));
        }

        let hash = pod_template_hash(dtemplate(&self.d), dstatus(&self.d).collision_count);
        let mut rs = build_replica_set(&self.d, &hash, 0);
        let name = rs_name(&rs).to_string();
        if self.rss.iter().any(|r| rs_name(r) == name) {
            // Same name, different template: a hash collision (upstream learns it from the
            // AlreadyExists answer). Bump collisionCount and try again on the next sync.
            let status = dstatus_mut(&mut self.d);
            status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
            self.flush_status();
            return Err(Stop::Collision);
        }
        let replicas = {
            let mut all: Vec<&ReplicaSet> = old.iter().map(|n| self.rs(n)).collect();
            all.push(&rs);
            new_rs_new_replicas(&self.d, &all, &rs).map_err(Stop::Error)?
        };
        set_rs_replicas(&mut rs, replicas);
        set_new_replica_set_annotations(
            &self.d,
            &mut rs,
            &new_revision,
            false,
            MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );
        let event = (replicas > 0).then(|| {
            Event::normal(
                reason::SCALING_REPLICA_SET,
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            )
        });
        self.actions.push(Action::CreateReplicaSet(ReplicaSetWrite {
            replica_set: rs.clone(),
            scale: Some(ScaleChange {
                name: name.clone(),
                from: 0,
                to: replicas,
            }),
            event,
        }));
        // The server stamps creationTimestamp; the working view needs it so that orderings by
        // age see the new ReplicaSet as the newest.
        rs.metadata.creation_timestamp = Some(self.now.clone());
        self.rss.push(rs);
        let mut needs_update = set_deployment_revision(&mut self.d, &new_revision);
        if has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{name}\"");
            self.set_progressing(reason::NEW_REPLICA_SET, &message);
            needs_update = true;
        }
        if needs_update {
            self.flush_status();
        }
        Ok((Some(name), old))
    }

    /// Sets a True Progressing condition, stamped now, on the working Deployment.
    fn set_progressing(&mut self, reason: &str, message: &str) {
        let c = new_condition(CONDITION_PROGRESSING, "True", reason, message, &self.now);
        set_condition(dstatus_mut(&mut self.d), c);
    }

    /// Upstream `scaleReplicaSet`: writes the size and the desired/max annotations when either
    /// changes; the event only for a size change. Returns whether the size changed.
    fn scale_rs(&mut self, name: &str, new_scale: i32, operation: &str) -> bool {
        let i = self.idx(name);
        let desired = desired_replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let old_scale = rs_spec_replicas(&self.rss[i]);
        let size_needs_update = old_scale != new_scale;
        if !size_needs_update && !replicas_annotations_need_update(&self.rss[i], desired, max) {
            return false;
        }
        let mut copy = self.rss[i].clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        self.rss[i] = copy.clone();
        let (scale, event) = if size_needs_update {
            (
                Some(ScaleChange {
                    name: name.to_string(),
                    from: old_scale,
                    to: new_scale,
                }),
                Some(Event::normal(
                    reason::SCALING_REPLICA_SET,
                    format!(
                        "Scaled {operation} replica set {name} from {old_scale} to {new_scale}"
                    ),
                )),
            )
        } else {
            (None, None)
        };
        self.actions.push(Action::UpdateReplicaSet(ReplicaSetWrite {
            replica_set: copy,
            scale,
            event,
        }));
        size_needs_update
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`.
    pub(super) fn scale_and_record(&mut self, name: &str, new_scale: i32) -> bool {
        let current = rs_spec_replicas(self.rs(name));
        if current == new_scale {
            return false;
        }
        let operation = if current < new_scale { "up" } else { "down" };
        self.scale_rs(name, new_scale, operation)
    }

    pub(super) fn cleanup(&mut self, old_snapshot: &[ReplicaSet]) {
        let refs: Vec<&ReplicaSet> = old_snapshot.iter().collect();
        for name in replica_sets_to_delete(&self.d, &refs) {
            self.rss.retain(|rs| rs_name(rs) != name);
            self.actions.push(Action::DeleteReplicaSet { name });
        }
    }

    pub(super) fn sync_deployment_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) {
        let refs: Vec<&ReplicaSet> = all.iter().collect();
        let status = calculate_status(&self.d, &refs, new_rs, &self.now);
        self.d.status = Some(status);
        self.flush_status();
    }

    /// Upstream `checkPausedConditions`.
    pub(super) fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(&self.d) {
            return;
        }
        let current_reason =
            get_condition(dstatus(&self.d), CONDITION_PROGRESSING).and_then(|c| c.reason.clone());
        if current_reason.as_deref() == Some(reason::TIMED_OUT) {
            return;
        }
        let paused_condition_exists = current_reason.as_deref() == Some(reason::PAUSED);
        let condition = if is_paused(&self.d) && !paused_condition_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                reason::PAUSED,
                "Deployment is paused",
                &self.now,
            )
        } else if !is_paused(&self.d) && paused_condition_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed",
                &self.now,
            )
        } else {
            return;
        };
        set_condition(dstatus_mut(&mut self.d), condition);
        self.flush_status();
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last scaled for another spec.replicas.
    pub(super) fn is_scaling_event(&mut self) -> Result<bool, Stop> {
        let (new, old) = self.get_all(false)?;
        let replicas = desired_replicas(&self.d);
        Ok(old.iter().chain(new.iter()).any(|n| {
            let rs = self.rs(n);
            rs_spec_replicas(rs) > 0
                && desired_replicas_annotation(rs).is_some_and(|v| v != replicas)
        }))
    }

    /// Upstream `sync`: scaling events and paused Deployments.
    pub(super) fn sync(&mut self) -> Result<(), Stop> {
        let (new, old) = self.get_all(false)?;
        let (all, new_rs) = self.snapshot(&new, &old);
        let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
        self.scale(new.as_deref(), &old);
        if is_paused(&self.d) && rollback_to(&self.d).is_none() {
            self.cleanup(&old_snapshot);
        }
        self.sync_deployment_status(&all, new_rs.as_ref());
        Ok(())
    }

    /// Upstream `scale`: proportional scaling across active ReplicaSets.
    fn scale(&mut self, new: Option<&str>, old: &[String]) {
        if new.is_none() && old.is_empty() {
            return;
        }
        let replicas = desired_replicas(&self.d);
        let mut old_newest_first: Vec<String> = old.to_vec();
        old_newest_first.sort_by(|a, b| by_creation(self.rs(b), self.rs(a)));
        let active: Vec<String> = old_newest_first
            .iter()
            .map(String::as_str)
            .chain(new)
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .map(str::to_string)
            .collect();
        let active_or_latest = match active.len() {
            0 => new
                .map(str::to_string)
                .or_else(|| old_newest_first.first().cloned()),
            1 => Some(active[0].clone()),
            _ => None,
        };
        if let Some(name) = active_or_latest {
            if rs_spec_replicas(self.rs(&name)) != replicas {
                self.scale_and_record(&name, replicas);
            }
            return;
        }
        if is_saturated(&self.d, new.map(|n| self.rs(n))) {
            for name in old_newest_first {
                if rs_spec_replicas(self.rs(&name)) > 0 {
                    self.scale_and_record(&name, 0);
                }
            }
            return;
        }
        if !is_rolling_update(&self.d) {
            return;
        }
        let mut all = active;
        let all_replicas: i32 = all.iter().map(|n| rs_spec_replicas(self.rs(n))).sum();
        let allowed = if replicas > 0 {
            replicas + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - all_replicas;
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                all.sort_by(|a, b| by_size_newer(self.rs(a), self.rs(b)));
                "up"
            }
            Ordering::Less => {
                all.sort_by(|a, b| by_size_older(self.rs(a), self.rs(b)));
                "down"
            }
            Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: BTreeMap<String, i32> = BTreeMap::new();
        for name in &all {
            let rs = self.rs(name);
            let size = if to_add != 0 {
                let proportion = get_proportion(rs, &self.d, to_add, added);
                added += proportion;
                rs_spec_replicas(rs) + proportion
            } else {
                rs_spec_replicas(rs)
            };
            sizes.insert(name.clone(), size);
        }
        for (i, name) in all.iter().enumerate() {
            let mut size = sizes[name];
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_rs(name, size, operation);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::plan::plan_sync;
    use super::super::testing::*;
    use super::*;

    // -- creation --------------------------------------------------------------------------

    #[test]
    fn new_replica_set_shape() {
        let mut d = deployment(3, "nginx:1", default_rolling());
        d.metadata.annotations = Some(BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (LAST_APPLIED_CONFIG_ANNOTATION.to_string(), "{}".to_string()),
            (REVISION_ANNOTATION.to_string(), "7".to_string()),
        ]));
        let rs = new_replica_set(&d, &[], 3);
        let hash = pod_template_hash(dtemplate(&d), None);
        assert_eq!(rs_name(&rs), format!("web-{hash}"));
        assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
        let labels = rs.metadata.labels.clone().unwrap();
        assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.selector
                .match_labels
                .as_ref()
                .unwrap()
                .get(POD_TEMPLATE_HASH_LABEL),
            Some(&hash)
        );
        let tlabels = spec
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(tlabels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Deployment", "web", "uid-web")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let ann = rs.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann.get(REVISION_ANNOTATION).map(String::as_str), Some("1"));
        assert_eq!(
            ann.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str),
            Some("3")
        );
        assert_eq!(
            ann.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
            Some("4")
        );
        assert_eq!(ann.get("team").map(String::as_str), Some("a"));
        assert!(!ann.contains_key(LAST_APPLIED_CONFIG_ANNOTATION));
        // The RS template matches the Deployment's once the hash label is ignored.
        assert!(equal_ignore_hash(rs_template(&rs), dtemplate(&d)));
        let list = vec![rs.clone()];
        assert_eq!(
            find_new_replica_set(&d, &list).map(rs_name),
            Some(rs_name(&rs))
        );
        let mut d2 = d.clone();
        set_image(&mut d2, "nginx:2");
        assert!(find_new_replica_set(&d2, &list).is_none());
        assert_eq!(find_old_replica_sets(&d2, &list).len(), 1);
        // The next revision counts the old ones.
        let rs2 = new_replica_set(&d2, &list, 0);
        assert_eq!(rs_annotation(&rs2, REVISION_ANNOTATION), Some("2"));
    }

    #[test]
    fn first_sync_creates_the_replica_set_and_then_reports_progress() {
        let mut c = Cluster::new(deployment(3, "nginx:1", default_rolling()));
        let plan = c.plan();
        let created = plan.created_replica_set().expect("created").clone();
        assert_eq!(rs_spec_replicas(&created), 3);
        let name = rs_name(&created).to_string();
        assert_eq!(
            plan.events()[0].message,
            format!("Scaled up replica set {name} from 0 to 3")
        );
        assert_eq!(plan.events()[0].reason, "ScalingReplicaSet");
        c.apply(&plan, &mut no_check);
        assert_eq!(c.revision(), Some("1"));
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(reason::NEW_REPLICA_SET));
        assert_eq!(
            progressing.message,
            Some(format!("Created new replica set \"{name}\""))
        );
        let available = c.condition(CONDITION_AVAILABLE);
        assert_eq!(available.status, "False");
        assert_eq!(
            available.message.as_deref(),
            Some("Deployment does not have minimum availability.")
        );
        assert_eq!(dstatus(&c.d).observed_generation, Some(1));

        c.settle();
        c.clock += 5;
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        let status = dstatus(&c.d).clone();
        assert_eq!(
            (
                status.replicas,
                status.updated_replicas,
                status.ready_replicas,
                status.available_replicas
            ),
            (Some(3), Some(3), Some(3), Some(3))
        );
        assert_eq!(status.unavailable_replicas, None);
        let available = c.condition(CONDITION_AVAILABLE);
        assert_eq!(
            (available.status.as_str(), available.reason.as_deref()),
            ("True", Some(reason::MINIMUM_REPLICAS_AVAILABLE))
        );
        assert_eq!(
            available.message.as_deref(),
            Some("Deployment has minimum availability.")
        );
        let progressing = c.assert_progressed(&name);
        // Same status True: the transition time is kept, the update time moves.
        assert_eq!(progressing.last_transition_time, Some(time(0)));
        assert_eq!(progressing.last_update_time, Some(time(5)));
        // Conditions in upstream's order.
        let types: Vec<String> = status
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Available", "Progressing"]);
        assert!(c.plan().actions.is_empty());
    }

    // -- history -----------------------------------------------------------------------------

    #[test]
    fn revision_history_limit_deletes_oldest_scaled_down_replica_sets() {
        let mut d = deployment(2, "app:v1", default_rolling());
        d.spec.as_mut().unwrap().revision_history_limit = Some(1);
        let mut c = Cluster::new(d);
        c.converge(&mut no_check);
        let mut names = vec![rs_name(c.new_rs()).to_string()];
        for v in ["app:v2", "app:v3", "app:v4"] {
            set_image(&mut c.d, v);
            c.converge(&mut no_check);
            names.push(rs_name(c.new_rs()).to_string());
        }
        let mut left: Vec<String> = c.rss.iter().map(|r| rs_name(r).to_string()).collect();
        left.sort();
        let mut expected = vec![names[2].clone(), names[3].clone()];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            rs_annotation(c.rs(&names[3]), REVISION_ANNOTATION),
            Some("4")
        );
    }

    #[test]
    fn history_cleanup_picks_lowest_revisions_that_are_fully_scaled_down() {
        let d = {
            let mut d = deployment(1, "x", default_rolling());
            d.spec.as_mut().unwrap().revision_history_limit = Some(2);
            d
        };
        let rs = |name: &str, rev: &str, spec: i32, status: i32| -> ReplicaSet {
            serde_json::from_value(json!({
                "metadata": {"name": name, "generation": 1, "annotations": {REVISION_ANNOTATION: rev}},
                "spec": {"replicas": spec, "selector": {}},
                "status": {"replicas": status, "observedGeneration": 1}
            }))
            .unwrap()
        };
        let olds = [
            rs("a", "3", 0, 0),
            rs("b", "1", 0, 0),
            rs("c", "2", 0, 1),
            rs("d", "4", 0, 0),
            rs("e", "5", 1, 1),
        ];
        let refs: Vec<&ReplicaSet> = olds.iter().collect();
        // 5 old, limit 2: the 3 lowest revisions are candidates (b=1, c=2, a=3); c still has a pod.
        assert_eq!(replica_sets_to_delete(&d, &refs), ["b", "a"]);
        let mut unlimited = d.clone();
        unlimited.spec.as_mut().unwrap().revision_history_limit = Some(i32::MAX);
        assert!(replica_sets_to_delete(&unlimited, &refs).is_empty());
    }

    // -- scaling -----------------------------------------------------------------------------

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let mk = |name: &str, image: &str, replicas: i32, secs: i64| -> ReplicaSet {
            let mut d = deployment(10, image, rolling(json!(3), json!(2)));
            d.metadata.annotations = None;
            let mut rs = build_replica_set(&d, &pod_template_hash(dtemplate(&d), None), replicas);
            rs.metadata.name = Some(name.to_string());
            rs.metadata.creation_timestamp = Some(time(secs));
            rs.metadata.generation = Some(1);
            rs.metadata.annotations = Some(BTreeMap::from([
                (DESIRED_REPLICAS_ANNOTATION.to_string(), "10".to_string()),
                (MAX_REPLICAS_ANNOTATION.to_string(), "13".to_string()),
                (
                    REVISION_ANNOTATION.to_string(),
                    if image == "app:v1" { "1" } else { "2" }.to_string(),
                ),
            ]));
            rs.status = Some(settled_status(&rs));
            rs
        };
        let old = mk("web-old", "app:v1", 8, 0);
        let new = mk("web-new", "app:v2", 5, 10);
        let mut d = deployment(10, "app:v2", rolling(json!(3), json!(2)));
        set_replicas(&mut d, 15);
        let plan = plan_sync(&d, &[old, new], false, &at(20));
        // allowed 15 + 3 = 18, 13 running: +5, shared 8*18/13 -> +3 and 5*18/13 -> +2.
        assert_eq!(
            plan.scale_changes(),
            [
                ScaleChange {
                    name: "web-old".into(),
                    from: 8,
                    to: 11
                },
                ScaleChange {
                    name: "web-new".into(),
                    from: 5,
                    to: 7
                },
            ]
        );
        let messages: Vec<&str> = plan.events().iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Scaled up replica set web-old from 8 to 11",
                "Scaled up replica set web-new from 5 to 7"
            ]
        );
        for action in &plan.actions {
            if let Action::UpdateReplicaSet(w) = action {
                assert_eq!(
                    rs_annotation(&w.replica_set, DESIRED_REPLICAS_ANNOTATION),
                    Some("15")
                );
                assert_eq!(
                    rs_annotation(&w.replica_set, MAX_REPLICAS_ANNOTATION),
                    Some("18")
                );
            }
        }

        // Scaling down to 5: allowed 5 + 3 = 8, so 5 fewer, shared 8*8/13 -> -3 and 5*8/13 -> -2.
        let old = mk("web-old", "app:v1", 8, 0);
        let new = mk("web-new", "app:v2", 5, 10);
        let mut d = deployment(10, "app:v2", rolling(json!(3), json!(2)));
        set_replicas(&mut d, 5);
        let plan = plan_sync(&d, &[old, new], false, &at(20));
        let changes = plan.scale_changes();
        let total: i32 = changes.iter().map(|c| c.to).sum();
        assert_eq!(total, 8);
        assert!(plan
            .events()
            .iter()
            .all(|e| e.message.starts_with("Scaled down replica set ")));
    }

    #[test]
    fn plain_scale_changes_the_only_active_replica_set() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        set_replicas(&mut c.d, 5);
        let plan = c.plan();
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1.clone(),
                from: 3,
                to: 5
            }]
        );
        assert_eq!(
            plan.events()[0].message,
            format!("Scaled up replica set {v1} from 3 to 5")
        );
        c.apply(&plan, &mut no_check);
        c.assert_scaled_for(&v1, "5", "7");
    }

    #[test]
    fn paused_deployment_only_scales_and_reports_paused_then_resumed() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        c.d.spec.as_mut().unwrap().paused = Some(true);
        set_image(&mut c.d, "app:v2");
        set_replicas(&mut c.d, 4);
        c.clock += 10;
        let plan = c.plan();
        assert!(plan.created_replica_set().is_none());
        let v1 = rs_name(&c.rss[0]).to_string();
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1,
                from: 3,
                to: 4
            }]
        );
        c.apply(&plan, &mut no_check);
        let progressing = c.condition(CONDITION_PROGRESSING);
        assert_eq!(
            (
                progressing.status.as_str(),
                progressing.reason.as_deref(),
                progressing.message.as_deref()
            ),
            (
                "Unknown",
                Some(reason::PAUSED),
                Some("Deployment is paused")
            )
        );
        assert_eq!(progressing.last_transition_time, Some(time(c.clock)));
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(c.rss.len(), 1);

        c.d.spec.as_mut().unwrap().paused = Some(false);
        c.clock += 10;
        let resumed_at = c.clock;
        let plan = c.plan();
        assert!(plan.created_replica_set().is_some());
        let first_status = plan
            .actions
            .iter()
            .find_map(|a| match a {
                Action::UpdateDeploymentStatus(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap();
        let first = get_condition(dstatus(&first_status), CONDITION_PROGRESSING).unwrap();
        assert_eq!(
            (first.reason.as_deref(), first.message.as_deref()),
            (Some(reason::RESUMED), Some("Deployment is resumed"))
        );
        // Unknown -> Unknown: the transition time stays the pause's.
        assert_ne!(first.last_transition_time, Some(time(resumed_at)));
        c.apply(&plan, &mut no_check);
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(
            c.condition(CONDITION_PROGRESSING).reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(rs_spec_replicas(c.new_rs()), 4);
    }
}
