//! Probes: how often a probe has failed, as the kubelet's Unhealthy events count it.

use cucumber::then;

use crate::harness::events::{self, Expected, Pattern};
use crate::harness::params::{Pods, ProbeKind, Within};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[then(
    "within {duration} the {probe} probe of {pods} has failed at least {int} time(s)",
    "within 1m the liveness probe of pod web-* has failed at least 3 times",
    "Occurrences of the kubelet's Warning Unhealthy \"<Kind> probe failed: ...\" events about the pod.",
)];

#[then(expr = "within {duration} the {probe} probe of {pods} has failed at least {int} time(s)")]
async fn failed(w: &mut World, within: Within, probe: ProbeKind, pods: Pods, n: i32) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    let row = Expected {
        type_: "Warning".into(),
        reason: "Unhealthy".into(),
        message: Some(
            Pattern::new(&format!("{} probe failed*", probe.event_word())).map_err(Failure::new)?,
        ),
        times: None,
    };
    let kind = probe.event_word().to_lowercase();
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("to have failed its {kind} probe at least {n} times"),
        |s, o| {
            let occ = events::occurrences(s, o);
            let c = events::count(&occ, &row);
            if c >= n {
                Ok(())
            } else {
                Err(format!(
                    "{c} {kind} probe failures so far; its events:\n{}",
                    events::listing(&occ)
                ))
            }
        },
    )
    .await
}
