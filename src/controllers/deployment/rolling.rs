//! The RollingUpdate strategy (upstream `rolling.go`): scale the new ReplicaSet up as far as
//! maxSurge allows and the old ones down as far as maxUnavailable allows, unhealthy old replicas
//! first.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::plan::{Sim, Stop};
use super::progress::deployment_complete;
use super::sync::new_rs_new_replicas;
use super::util::*;

impl Sim {
    /// Upstream `rolloutRolling`.
    pub(super) fn rollout_rolling(&mut self) -> Result<(), Stop> {
        let (new, old) = self.get_all(true)?;
        let Some(new_name) = new.clone() else {
            return Err(Stop::Error("no new ReplicaSet after creating it".into()));
        };
        let (all, new_rs) = self.snapshot(&new, &old);
        let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();

        if self.reconcile_new_replica_set(&new_name, &old)? {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        let active_old: Vec<String> = old
            .iter()
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .cloned()
            .collect();
        if self.reconcile_old_replica_sets(&old, &active_old, &new_name) {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        if deployment_complete(&self.d, dstatus(&self.d)) {
            self.cleanup(&old_snapshot);
        }
        self.sync_rollout_status(&all, new_rs.as_ref());
        Ok(())
    }

    fn reconcile_new_replica_set(&mut self, new: &str, old: &[String]) -> Result<bool, Stop> {
        let replicas = desired_replicas(&self.d);
        let current = rs_spec_replicas(self.rs(new));
        if current == replicas {
            return Ok(false);
        }
        if current > replicas {
            return Ok(self.scale_and_record(new, replicas));
        }
        let count = {
            let mut all: Vec<&ReplicaSet> = old.iter().map(|n| self.rs(n)).collect();
            all.push(self.rs(new));
            new_rs_new_replicas(&self.d, &all, self.rs(new)).map_err(Stop::Error)?
        };
        Ok(self.scale_and_record(new, count))
    }

    fn reconcile_old_replica_sets(
        &mut self,
        old: &[String],
        active_old: &[String],
        new: &str,
    ) -> bool {
        let old_pods: i32 = active_old
            .iter()
            .map(|n| rs_spec_replicas(self.rs(n)))
            .sum();
        if old_pods == 0 {
            return false;
        }
        let all_pods: i32 = old
            .iter()
            .chain(std::iter::once(&new.to_string()))
            .map(|n| rs_spec_replicas(self.rs(n)))
            .sum();
        let min_available = desired_replicas(&self.d) - max_unavailable(&self.d);
        let new_rs = self.rs(new);
        let new_unavailable = rs_spec_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }

        // Clean up unhealthy replicas first: they do not count towards availability anyway.
        let mut active_old = active_old.to_vec();
        active_old.sort_by(|a, b| by_creation(self.rs(a), self.rs(b)));
        let mut cleaned = 0;
        for name in &active_old {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = self.rs(name);
            let (spec, available) = (rs_spec_replicas(rs), rs_available(rs));
            if spec == 0 || spec == available {
                continue;
            }
            let count = (max_scaled_down - cleaned).min(spec - available);
            if spec - count > spec {
                // Upstream refuses (status ahead of spec) and gives up scaling down this sync.
                return false;
            }
            self.scale_and_record(name, spec - count);
            cleaned += count;
        }

        // Then scale down while availability stays above replicas - maxUnavailable.
        let available: i32 = active_old
            .iter()
            .chain(std::iter::once(&new.to_string()))
            .map(|n| rs_available(self.rs(n)))
            .sum();
        let mut scaled_down = 0;
        if available > min_available {
            let total = available - min_available;
            for name in &active_old {
                if scaled_down >= total {
                    break;
                }
                let spec = rs_spec_replicas(self.rs(name));
                if spec == 0 {
                    continue;
                }
                let count = spec.min(total - scaled_down);
                self.scale_and_record(name, spec - count);
                scaled_down += count;
            }
        }
        cleaned + scaled_down > 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::plan::ScaleChange;
    use super::super::testing::*;
    use super::*;

    // -- rolling update ----------------------------------------------------------------------

    fn rolling_update_never_exceeds_budget(replicas: i32, strategy: Value) {
        let mut c = Cluster::new(deployment(replicas, "app:v1", strategy));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        let (surge, unavailable) = (max_surge(&c.d), max_unavailable(&c.d));

        set_image(&mut c.d, "app:v2");
        let mut steps = 0;
        let mut check = |c: &Cluster| {
            steps += 1;
            let (total, available) = c.pods();
            assert!(total <= replicas + surge, "surge exceeded: {total} pods");
            assert!(
                available >= replicas - unavailable,
                "too many unavailable: {available} available"
            );
        };
        let rounds = c.converge(&mut check);
        assert!(rounds > 1 && steps > 2);

        let new = c.new_rs().clone();
        assert_ne!(rs_name(&new), v1);
        assert_eq!(
            (rs_spec_replicas(&new), rs_available(&new)),
            (replicas, replicas)
        );
        assert_eq!(rs_spec_replicas(c.rs(&v1)), 0);
        assert_eq!(rs_annotation(&new, REVISION_ANNOTATION), Some("2"));
        assert_eq!(c.revision(), Some("2"));
        let status = dstatus(&c.d);
        assert_eq!(status.updated_replicas, Some(replicas));
        assert_eq!(status.available_replicas, Some(replicas));
        assert_eq!(status.observed_generation, Some(2));
        c.assert_progressed(rs_name(&new));
        let prefix = format!("Scaled down replica set {v1} from ");
        assert!(c.messages().iter().any(|m| m.starts_with(&prefix)));
    }

    #[test]
    fn rolling_update_from_three_replicas() {
        let mut c = Cluster::new(deployment(3, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        c.events.clear();
        set_image(&mut c.d, "app:v2");
        // Surge 1, unavailable 0: one new pod, then one old pod less, three times.
        let mut check = |c: &Cluster| {
            let (total, available) = c.pods();
            assert!(total <= 4, "{total}");
            assert!(available >= 3, "{available}");
        };
        c.converge(&mut check);
        let v2 = rs_name(c.new_rs()).to_string();
        let scaling: Vec<String> = c
            .events
            .iter()
            .filter(|e| e.reason == reason::SCALING_REPLICA_SET)
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(
            scaling,
            [
                format!("Scaled up replica set {v2} from 0 to 1"),
                format!("Scaled down replica set {v1} from 3 to 2"),
                format!("Scaled up replica set {v2} from 1 to 2"),
                format!("Scaled down replica set {v1} from 2 to 1"),
                format!("Scaled up replica set {v2} from 2 to 3"),
                format!("Scaled down replica set {v1} from 1 to 0"),
            ]
        );
        // The old ReplicaSet's annotations follow each scale.
        c.assert_scaled_for(&v1, "3", "4");
    }

    #[test]
    fn rolling_updates_respect_budgets_for_several_shapes() {
        rolling_update_never_exceeds_budget(3, default_rolling());
        rolling_update_never_exceeds_budget(10, default_rolling());
        rolling_update_never_exceeds_budget(10, rolling(json!(3), json!(2)));
        rolling_update_never_exceeds_budget(5, rolling(json!(0), json!(1)));
        rolling_update_never_exceeds_budget(4, rolling(json!("100%"), json!(0)));
        rolling_update_never_exceeds_budget(1, default_rolling());
    }

    #[test]
    fn unhealthy_old_replicas_are_cleaned_up_first() {
        let mut c = Cluster::new(deployment(10, "app:v1", rolling(json!(3), json!(2))));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        // Two old pods crash.
        let old = c.rss.iter_mut().find(|r| rs_name(r) == v1).unwrap();
        old.status.as_mut().unwrap().available_replicas = Some(8);
        set_image(&mut c.d, "app:v2");
        let plan = c.plan();
        let v2 = rs_name(plan.created_replica_set().unwrap()).to_string();
        // New RS at 3 (surge); cleanup removes the 2 unhealthy (13 - 8 - 3 = 2 allowed).
        assert_eq!(
            plan.scale_changes(),
            [
                ScaleChange {
                    name: v2.clone(),
                    from: 0,
                    to: 3
                },
                ScaleChange {
                    name: v1.clone(),
                    from: 10,
                    to: 8
                },
            ]
        );
    }
}
