//! Rollback through the deprecated `deprecated.deployment.rollback.to` annotation (upstream
//! `rollback.go`): restore the template and annotations of an earlier revision's ReplicaSet, and
//! clear the annotation.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::plan::{Action, Event, Sim, Stop};
use super::util::*;

impl Sim {
    /// Upstream `rollback` (deprecated `deprecated.deployment.rollback.to` annotation).
    pub(super) fn rollback(&mut self, mut to_revision: i64) -> Result<(), Stop> {
        let (new, old) = self.get_all(true)?;
        let all: Vec<String> = old.iter().chain(new.iter()).cloned().collect();
        if to_revision == 0 {
            to_revision = last_revision(all.iter().map(|n| self.rs(n)));
            if to_revision == 0 {
                self.event(Event::warning(
                    reason::ROLLBACK_REVISION_NOT_FOUND,
                    "Unable to find last revision.".to_string(),
                ));
                self.clear_rollback_and_update();
                return Ok(());
            }
        }
        for name in &all {
            let rs = self.rs(name).clone();
            if revision(&rs) != Ok(to_revision) {
                continue;
            }
            let performed = !equal_ignore_hash(dtemplate(&self.d), rs_template(&rs));
            if performed {
                set_from_replica_set_template(&mut self.d, rs_template(&rs));
                set_deployment_annotations_to(&mut self.d, &rs);
            } else {
                let message = format!(
                    "The rollback revision contains the same template as current deployment \"{}\"",
                    dname(&self.d)
                );
                self.event(Event::warning(reason::ROLLBACK_TEMPLATE_UNCHANGED, message));
            }
            self.clear_rollback_and_update();
            if performed {
                let message = format!(
                    "Rolled back deployment \"{}\" to revision {to_revision}",
                    dname(&self.d)
                );
                self.event(Event::normal(reason::ROLLBACK_DONE, message));
            }
            return Ok(());
        }
        self.event(Event::warning(
            reason::ROLLBACK_REVISION_NOT_FOUND,
            "Unable to find the revision to rollback to.".to_string(),
        ));
        self.clear_rollback_and_update();
        Ok(())
    }

    fn clear_rollback_and_update(&mut self) {
        if let Some(annotations) = self.d.metadata.annotations.as_mut() {
            annotations.remove(DEPRECATED_ROLLBACK_TO_ANNOTATION);
        }
        self.written.metadata = self.d.metadata.clone();
        self.written.spec = self.d.spec.clone();
        self.actions.push(Action::UpdateDeployment(self.d.clone()));
    }
}

pub(super) fn rollback_to(d: &Deployment) -> Option<i64> {
    d.metadata
        .annotations
        .as_ref()?
        .get(DEPRECATED_ROLLBACK_TO_ANNOTATION)
        .filter(|v| !v.is_empty())?
        .parse()
        .ok()
}

fn set_from_replica_set_template(d: &mut Deployment, template: &PodTemplateSpec) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.template = template.clone();
    if let Some(meta) = spec.template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
    }
}

fn set_deployment_annotations_to(d: &mut Deployment, rs: &ReplicaSet) {
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| skip_copy_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !skip_copy_annotation(k) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    d.metadata.annotations = Some(annotations);
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn rollback_annotation_restores_an_old_template() {
        let mut c = Cluster::new(deployment(2, "app:v1", default_rolling()));
        c.converge(&mut no_check);
        let v1 = rs_name(c.new_rs()).to_string();
        set_image(&mut c.d, "app:v2");
        c.converge(&mut no_check);
        c.d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(DEPRECATED_ROLLBACK_TO_ANNOTATION.into(), "0".into());
        c.events.clear();
        let plan = c.plan();
        c.apply(&plan, &mut no_check);
        assert_eq!(
            c.messages(),
            ["Rolled back deployment \"web\" to revision 1"]
        );
        assert!(rollback_to(&c.d).is_none());
        c.converge(&mut no_check);
        assert_eq!(rs_name(c.new_rs()), v1);
        assert_eq!(rs_annotation(c.rs(&v1), REVISION_ANNOTATION), Some("3"));
        assert_eq!(
            rs_annotation(c.rs(&v1), REVISION_HISTORY_ANNOTATION),
            Some("1")
        );
    }
}
