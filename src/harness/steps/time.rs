//! Time: let cluster time pass.

use cucumber::when;

use crate::harness::params::Within;
use crate::harness::vocabulary::{when, Phrase};
use crate::harness::{StepResult, World};

pub const PHRASES: &[Phrase] = &[when(
    "{duration} pass(es)",
    "30 seconds pass",
    "Let this much cluster time pass (fast on the embedded target, real time on a real cluster).",
)];

#[when(expr = "{duration} pass(es)")]
async fn pass(w: &mut World, d: Within) -> StepResult {
    let env = w.env().await?;
    env.cluster.clock().sleep(d.0).await;
    Ok(())
}
