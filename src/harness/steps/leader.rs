//! Leader election: kill or stop the leading controller-manager or scheduler, and see who leads.

use cucumber::{then, when};
use k8s_openapi::api::coordination::v1::Lease;

use crate::harness::params::{Component, Within};
use crate::harness::timeline::{Check, Kind, Object, State};
use crate::harness::vocabulary::{then, when, Phrase};
use crate::harness::{Failure, StepResult, World};
use crate::target::Fault;

pub const PHRASES: &[Phrase] = &[
    when(
        "the leading {component} is killed",
        "the leading controller-manager is killed",
        "Kill the replica holding the component's Lease, with no chance to release it (needs @needs:kill-leader).",
    ),
    when(
        "the leading {component} is stopped",
        "the leading scheduler is stopped",
        "Stop the leading replica as on SIGTERM: kube-scheduler releases its Lease, kube-controller-manager does not (needs @needs:stop-leader).",
    ),
    then(
        "within {duration} a {component} leads",
        "within 30s a controller-manager leads",
        "Someone holds the component's Lease in kube-system.",
    ),
    then(
        "within {duration} another {component} leads",
        "within 30s another controller-manager leads",
        "Someone other than the replica last killed or stopped holds the Lease, and leaseTransitions went up.",
    ),
];

fn lease<'a>(s: &'a State, c: Component) -> Option<&'a Lease> {
    match s.get(Kind::Lease, "kube-system", c.0.lease_name()) {
        Some(Object::Lease(l)) => Some(l),
        _ => None,
    }
}

fn holder(l: &Lease) -> (String, i32) {
    let spec = l.spec.clone().unwrap_or_default();
    (
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0),
    )
}

async fn fault(w: &mut World, c: Component, kill: bool) -> StepResult {
    let env = w.env().await?;
    // Read the Lease now, not from the timeline, which may lag a renewal behind.
    let leases: kube::Api<Lease> = kube::Api::namespaced(env.client.clone(), "kube-system");
    let before = leases
        .get_opt(c.0.lease_name())
        .await
        .map_err(|e| Failure::new(format!("cannot read the Lease of the {}: {e}", c.0)))?
        .map(|l| holder(&l))
        .unwrap_or_default();
    w.fault(if kill {
        Fault::KillLeader(c.0)
    } else {
        Fault::StopLeader(c.0)
    })
    .await?;
    w.former_leaders.insert(c.0, before);
    Ok(())
}

#[when(expr = "the leading {component} is killed")]
async fn killed(w: &mut World, c: Component) -> StepResult {
    fault(w, c, true).await
}

#[when(expr = "the leading {component} is stopped")]
async fn stopped(w: &mut World, c: Component) -> StepResult {
    fault(w, c, false).await
}

#[then(expr = "within {duration} a {component} leads")]
async fn leads(w: &mut World, within: Within, c: Component) -> StepResult {
    let env = w.env().await?;
    env.timeline
        .wait(
            within.0,
            &format!("a {} to hold kube-system/{}", c.0, c.0.lease_name()),
            |s| match lease(s, c).map(holder) {
                Some((h, _)) if !h.is_empty() => Check::Done(()),
                Some(_) => Check::NotYet("the Lease has no holder".into()),
                None => Check::NotYet("there is no Lease".into()),
            },
        )
        .await?;
    Ok(())
}

#[then(expr = "within {duration} another {component} leads")]
async fn another(w: &mut World, within: Within, c: Component) -> StepResult {
    let (former, transitions) = w.former_leaders.get(&c.0).cloned().ok_or_else(|| {
        Failure::new(format!(
            "no {} leader was killed or stopped earlier in this scenario",
            c.0
        ))
    })?;
    let env = w.env().await?;
    env.timeline
        .wait(
            within.0,
            &format!(
                "a {} other than {former} to hold kube-system/{}",
                c.0,
                c.0.lease_name()
            ),
            |s| match lease(s, c).map(holder) {
                Some((h, t)) if !h.is_empty() && h != former && t > transitions => Check::Done(()),
                Some((h, t)) => Check::NotYet(format!(
                    "the Lease is held by {:?} with leaseTransitions {t} (was {transitions})",
                    h
                )),
                None => Check::NotYet("there is no Lease".into()),
            },
        )
        .await?;
    Ok(())
}
