//! The Recreate strategy (upstream `recreate.go`): scale every old ReplicaSet to zero, wait until
//! their pods are gone, then create or scale up the new ReplicaSet to all replicas.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::plan::{Sim, Stop};
use super::progress::deployment_complete;
use super::util::*;

impl Sim {
    /// Upstream `rolloutRecreate`.
    pub(super) fn rollout_recreate(&mut self) -> Result<(), Stop> {
        let (mut new, mut old) = self.get_all(false)?;
        let (mut all, mut new_rs) = self.snapshot(&new, &old);
        let active_old: Vec<String> = old
            .iter()
            .filter(|n| rs_spec_replicas(self.rs(n)) > 0)
            .cloned()
            .collect();
        let mut scaled_down = false;
        for name in &active_old {
            if self.scale_and_record(name, 0) {
                scaled_down = true;
            }
        }
        if scaled_down {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        let old_status_replicas: i32 = old.iter().map(|n| rs_status_replicas(self.rs(n))).sum();
        if old_status_replicas > 0 || self.old_pods_running {
            self.sync_rollout_status(&all, new_rs.as_ref());
            return Ok(());
        }
        if new.is_none() {
            (new, old) = self.get_all(true)?;
            (all, new_rs) = self.snapshot(&new, &old);
        }
        let Some(new_name) = new else {
            return Err(Stop::Error("no new ReplicaSet after creating it".into()));
        };
        self.scale_and_record(&new_name, desired_replicas(&self.d));
        if deployment_complete(&self.d, dstatus(&self.d)) {
            let old_snapshot: Vec<ReplicaSet> = old.iter().map(|n| self.rs(n).clone()).collect();
            self.cleanup(&old_snapshot);
        }
        self.sync_rollout_status(&all, new_rs.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::plan::{plan_sync, ScaleChange};
    use super::super::testing::*;
    use super::*;

    // -- recreate ----------------------------------------------------------------------------

    #[test]
    fn recreate_scales_old_to_zero_before_creating_new() {
        let mut c = Cluster::new(deployment(3, "app:v1", json!({"type": "Recreate"})));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        c.events.clear();
        set_image(&mut c.d, "app:v2");

        let plan = c.plan();
        assert!(plan.created_replica_set().is_none());
        assert_eq!(
            plan.scale_changes(),
            [ScaleChange {
                name: v1.clone(),
                from: 3,
                to: 0
            }]
        );
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages(),
            [format!("Scaled down replica set {v1} from 3 to 0")]
        );

        // Old pods still reported by the RS status: wait.
        let plan = c.plan();
        assert!(plan.created_replica_set().is_none() && plan.scale_changes().is_empty());
        c.settle();
        // Old pods still terminating according to the pod list: wait.
        let plan = plan_sync(&c.d, &c.rss, true, &c.now());
        assert!(plan.created_replica_set().is_none() && plan.scale_changes().is_empty());
        // All gone: create the new ReplicaSet at full size.
        let plan = c.plan();
        let created = plan.created_replica_set().expect("created").clone();
        assert_eq!(rs_spec_replicas(&created), 3);
        let v2 = rs_name(&created).to_string();
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages().last().unwrap(),
            &format!("Scaled up replica set {v2} from 0 to 3")
        );
        c.settle();
        c.converge(&mut no_check);
        assert_eq!(rs_spec_replicas(c.rs(&v2)), 3);
        assert_eq!(
            c.condition(CONDITION_PROGRESSING).reason.as_deref(),
            Some(reason::NEW_RS_AVAILABLE)
        );
        assert_eq!(c.condition(CONDITION_AVAILABLE).status, "True");
    }
}
