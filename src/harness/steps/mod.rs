//! Step definitions, one file per domain concept. Each file lists its phrases (`PHRASES`) next
//! to the definitions; see [`super::vocabulary`].

pub mod cluster;
mod components;
mod deployments;
mod events;
mod jobs;
mod leader;
mod manifests;
mod nodes;
mod pods;
mod probes;
mod services;
mod snapshots;
mod time;

use std::time::Duration;

use super::describe;
use super::params::Selector;
use super::timeline::{Check, Object, State};
use super::vocabulary::Phrase;
use super::world::Env;

/// The vocabulary by concept.
pub fn concepts() -> Vec<(&'static str, &'static [Phrase])> {
    vec![
        ("cluster", cluster::PHRASES),
        ("manifests", manifests::PHRASES),
        ("deployments", deployments::PHRASES),
        ("jobs", jobs::PHRASES),
        ("pods", pods::PHRASES),
        ("probes", probes::PHRASES),
        ("services", services::PHRASES),
        ("nodes", nodes::PHRASES),
        ("leader election", leader::PHRASES),
        ("component statuses", components::PHRASES),
        ("events", events::PHRASES),
        ("time", time::PHRASES),
        ("snapshots", snapshots::PHRASES),
    ]
}

/// Wait until every object the selector means now (at least one) passes `check`; on timeout,
/// report every such object with its last events.
pub(super) async fn wait_each(
    env: &Env,
    within: Duration,
    selector: &Selector,
    expected: &str,
    check: impl Fn(&State, &Object) -> Result<(), String>,
) -> Result<(), super::Failure> {
    let ns = env.namespace.clone();
    let clock = env.timeline.clock().clone();
    let expected = format!("{selector} {expected}");
    env.timeline
        .wait(within, &expected, |s: &State| {
            let objects = describe::current(s, &ns, selector);
            if objects.is_empty() {
                return Check::NotYet(format!(
                    "no {selector} exists; the timeline shows:\n{}",
                    overview(s, &ns, clock.now())
                ));
            }
            let failing: Vec<(&Object, String)> = objects
                .iter()
                .filter_map(|o| check(s, o).err().map(|why| (*o, why)))
                .collect();
            if failing.is_empty() {
                return Check::Done(());
            }
            let mut saw = String::new();
            for (o, why) in &failing {
                saw.push_str(&format!(
                    "  {} {}: {why}\n",
                    o.kind().as_str().to_ascii_lowercase(),
                    o.name()
                ));
            }
            let objs: Vec<&Object> = failing.iter().map(|(o, _)| *o).collect();
            saw.push_str("the timeline shows:\n");
            saw.push_str(&describe::objects_report(s, &objs, clock.now()));
            Check::NotYet(saw)
        })
        .await?;
    Ok(())
}

/// A condition as the check sees it: (status, reason, message).
pub(super) type Seen<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// A condition of any kind (Pod, Node, Deployment) as the checks read it.
pub(super) trait Condition {
    /// Its type and what a check compares: status, reason, message.
    fn seen(&self) -> (&str, Seen<'_>);
}

macro_rules! condition_of {
    ($($t:ty),*) => {$(
        impl Condition for $t {
            fn seen(&self) -> (&str, Seen<'_>) {
                let seen = (self.status.as_str(), self.reason.as_deref(), self.message.as_deref());
                (self.type_.as_str(), seen)
            }
        }
    )*};
}

condition_of!(
    k8s_openapi::api::core::v1::PodCondition,
    k8s_openapi::api::core::v1::NodeCondition,
    k8s_openapi::api::apps::v1::DeploymentCondition,
    k8s_openapi::api::batch::v1::JobCondition
);

/// The condition of `type_` among an object's `conditions`.
pub(super) fn find_condition<'a, C: Condition>(
    conditions: Option<&'a Vec<C>>,
    type_: &str,
) -> Option<Seen<'a>> {
    conditions?
        .iter()
        .map(C::seen)
        .find(|(t, _)| *t == type_)
        .map(|(_, seen)| seen)
}

/// Whether the condition `type_` (found as `seen`) has `status` and, if given, `reason`; if
/// not, what it is instead.
pub(super) fn check_condition(
    type_: &str,
    seen: Option<Seen<'_>>,
    status: &str,
    reason: Option<&str>,
) -> Result<(), String> {
    match seen {
        Some((s, r, _)) if s == status && reason.is_none_or(|want| r == Some(want)) => Ok(()),
        Some((s, r, m)) => Err(format!(
            "condition {type_} is {s} with reason {}{}",
            r.unwrap_or("<none>"),
            m.filter(|m| !m.is_empty())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )),
        None => Err(format!("has no condition {type_}")),
    }
}

/// A short overview of the scenario's pods and workloads.
pub(super) fn overview(s: &State, namespace: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    use super::timeline::Kind;
    let mut objects: Vec<&Object> = Vec::new();
    for kind in [Kind::Deployment, Kind::ReplicaSet, Kind::Job, Kind::Pod] {
        objects.extend(
            s.of_kind(kind)
                .filter(|o| o.meta().namespace.as_deref() == Some(namespace)),
        );
    }
    if objects.is_empty() {
        return "  (no deployments, replicasets, jobs or pods in the namespace)".into();
    }
    describe::objects_report(s, &objects, now)
}
