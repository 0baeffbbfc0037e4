//! Services: which pods their Endpoints list as ready and not ready.

use cucumber::then;
use k8s_openapi::api::core::v1::Endpoints;

use crate::harness::params::Within;
use crate::harness::timeline::{Check, Kind, Object};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "within {duration} service {word} has {int} ready endpoint(s)",
        "within 30s service web has 3 ready endpoints",
        "Addresses in the Service's Endpoints (pods that are Ready and not terminating).",
    ),
    then(
        "within {duration} service {word} has {int} not-ready endpoint(s)",
        "within 30s service web has 1 not-ready endpoint",
        "notReadyAddresses in the Service's Endpoints.",
    ),
];

fn counts(e: &Endpoints) -> (usize, usize, Vec<String>) {
    let mut ready = 0;
    let mut not_ready = 0;
    let mut names = Vec::new();
    for subset in e.subsets.iter().flatten() {
        for a in subset.addresses.iter().flatten() {
            ready += 1;
            names.push(format!(
                "{} (ready)",
                a.target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_else(|| a.ip.clone())
            ));
        }
        for a in subset.not_ready_addresses.iter().flatten() {
            not_ready += 1;
            names.push(format!(
                "{} (not ready)",
                a.target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_else(|| a.ip.clone())
            ));
        }
    }
    (ready, not_ready, names)
}

async fn wait_endpoints(
    w: &mut World,
    within: Within,
    name: String,
    n: usize,
    ready: bool,
) -> StepResult {
    let env = w.env().await?;
    let ns = env.namespace.clone();
    let what = if ready { "ready" } else { "not-ready" };
    let clock = env.timeline.clock().clone();
    env.timeline
        .wait(within.0, &format!("service {name} to have {n} {what} endpoints"), |s| {
            let Some(Object::Endpoints(e)) = s.get(Kind::Endpoints, &ns, &name) else {
                return Check::NotYet(format!(
                    "service {name} has no Endpoints yet; the timeline shows:\n{}",
                    super::overview(s, &ns, clock.now())
                ));
            };
            let (r, nr, names) = counts(e);
            let have = if ready { r } else { nr };
            if have == n {
                Check::Done(())
            } else {
                Check::NotYet(format!(
                    "its Endpoints list {r} ready and {nr} not-ready addresses: {}\nthe timeline shows:\n{}",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") },
                    super::overview(s, &ns, clock.now())
                ))
            }
        })
        .await?;
    Ok(())
}

#[then(expr = "within {duration} service {word} has {int} ready endpoint(s)")]
async fn ready(w: &mut World, within: Within, name: String, n: usize) -> StepResult {
    wait_endpoints(w, within, name, n, true).await
}

#[then(expr = "within {duration} service {word} has {int} not-ready endpoint(s)")]
async fn not_ready(w: &mut World, within: Within, name: String, n: usize) -> StepResult {
    wait_endpoints(w, within, name, n, false).await
}
