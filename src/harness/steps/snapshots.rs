//! Snapshots: a Deployment's lifecycle or an object, normalized, against `snapshots/<name>.snap`.
//!
//! Events and status arrive a little after the facts they record, so a snapshot check waits
//! (at most the default deadline) until the projection equals the stored snapshot, and fails
//! with the difference if it never does. Recording a new snapshot waits until the projection
//! has stopped changing.

use std::time::Duration;

use cucumber::then;
use serde_yaml::Value;

use crate::harness::params::Selector;
use crate::harness::snapshot;
use crate::harness::timeline::{Check, State};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::world::Env;
use crate::harness::{describe, Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "the lifecycle of deployment {word} matches snapshot {word}",
        "the lifecycle of deployment web matches snapshot rolling-update",
        "The Deployment's events, its ReplicaSets (revision order) with their events, and its conditions, normalized, equal snapshots/<name>.snap.",
    ),
    then(
        "{object} matches snapshot {word}",
        "deployment web matches snapshot web-deployment",
        "The one object the selector means, normalized (no uid, resourceVersion, timestamps, IPs), equals snapshots/<name>.snap.",
    ),
];

/// How long a new snapshot's projection must stay the same before it is recorded.
const QUIET: Duration = Duration::from_secs(5);

async fn settle(
    w: &mut World,
    name: &str,
    project: impl Fn(&State, &str) -> Result<Value, String>,
) -> StepResult {
    snapshot::check_name(name).map_err(Failure::new)?;
    let run = w.run()?.clone();
    let description = w
        .scenario
        .as_ref()
        .map(|s| format!("{} ({})", s.name, s.location))
        .unwrap_or_default();
    let wait = w.default_wait();
    let env: &Env = w.env().await?;
    let ns = env.namespace.clone();
    let stored = snapshot::stored(&run.snapshots, name).filter(|_| !run.update_snapshots);
    let value = match stored {
        Some(stored) => {
            let matched = env
                .timeline
                .wait(
                    wait,
                    &format!("the projection to equal snapshot {name}"),
                    |s| match project(s, &ns) {
                        Ok(v) if snapshot::equals(&stored, &v) => Check::Done(v),
                        Ok(_) => Check::NotYet("it differs".into()),
                        Err(e) => Check::NotYet(e),
                    },
                )
                .await;
            match matched {
                Ok(v) => v,
                // Let the check below report the difference.
                Err(_) => env
                    .timeline
                    .read(|s| project(s, &ns))
                    .map_err(Failure::new)?,
            }
        }
        None => {
            // A new snapshot: record the projection once it has stopped changing.
            let clock = env.timeline.clock().clone();
            let mut last: Option<Value> = None;
            let deadline = clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
            loop {
                env.timeline.barrier().await.map_err(Failure::new)?;
                let v = env
                    .timeline
                    .read(|s| project(s, &ns))
                    .map_err(Failure::new)?;
                if last.as_ref() == Some(&v) || clock.now() > deadline {
                    break v;
                }
                last = Some(v);
                clock.sleep(QUIET).await;
            }
        }
    };
    snapshot::check(&run.snapshots, name, &value, &description).map_err(Failure::new)
}

#[then(expr = "the lifecycle of deployment {word} matches snapshot {word}")]
async fn lifecycle(w: &mut World, deployment: String, name: String) -> StepResult {
    settle(w, &name, |s, ns| {
        snapshot::lifecycle(s, ns, &deployment)
            .and_then(|l| serde_yaml::to_value(l).map_err(|e| e.to_string()))
    })
    .await
}

#[then(expr = "{object} matches snapshot {word}")]
async fn object(w: &mut World, selector: Selector, name: String) -> StepResult {
    settle(w, &name, |s, ns| {
        let objects = describe::current(s, ns, &selector);
        match objects.as_slice() {
            [one] => serde_yaml::to_value(snapshot::object(one, ns)).map_err(|e| e.to_string()),
            [] => Err(format!("there is no {selector}")),
            many => Err(format!(
                "{selector} means {} objects ({}); a snapshot needs exactly one",
                many.len(),
                many.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
            )),
        }
    })
    .await
}
