//! Jobs: conditions (Complete, Failed with its reason, Suspended) and the counts
//! `kubectl get jobs` shows.

use cucumber::then;
use k8s_openapi::api::batch::v1::Job;

use crate::harness::params::Within;
use crate::harness::timeline::{Check, Kind, Object, State};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "within {duration} job {word} has condition {word} {word}",
        "within 60s job pi has condition Complete True",
        "A status condition's type and status (Complete, Failed, SuccessCriteriaMet, FailureTarget, Suspended).",
    ),
    then(
        "within {duration} job {word} has condition {word} {word} with reason {word}",
        "within 2m job flaky has condition Failed True with reason BackoffLimitExceeded",
        "The same, with the condition's reason.",
    ),
    then(
        "within {duration} job {word} has {int} succeeded and {int} failed pod(s)",
        "within 60s job pi has 3 succeeded and 1 failed pod",
        "status.succeeded and status.failed: the pods the Job has counted.",
    ),
];

fn job<'a>(s: &'a State, ns: &str, name: &str) -> Option<&'a Job> {
    match s.get(Kind::Job, ns, name) {
        Some(Object::Job(j)) => Some(j),
        _ => None,
    }
}

async fn wait_job(
    w: &mut World,
    within: Within,
    name: &str,
    expected: &str,
    check: impl Fn(&Job) -> Result<(), String>,
) -> StepResult {
    let env = w.env().await?;
    let ns = env.namespace.clone();
    let clock = env.timeline.clock().clone();
    env.timeline
        .wait(within.0, &format!("job {name} {expected}"), |s| {
            let Some(j) = job(s, &ns, name) else {
                return Check::NotYet(format!(
                    "there is no job {name}; the timeline shows:\n{}",
                    super::overview(s, &ns, clock.now())
                ));
            };
            match check(j) {
                Ok(()) => Check::Done(()),
                Err(why) => Check::NotYet(format!(
                    "{why}\nthe timeline shows:\n{}",
                    super::overview(s, &ns, clock.now())
                )),
            }
        })
        .await?;
    Ok(())
}

async fn condition(
    w: &mut World,
    within: Within,
    name: String,
    type_: String,
    status: String,
    reason: Option<String>,
) -> StepResult {
    let expected = match &reason {
        Some(r) => format!("to have condition {type_}={status} ({r})"),
        None => format!("to have condition {type_}={status}"),
    };
    wait_job(w, within, &name, &expected, |j| {
        let conditions = j.status.as_ref().and_then(|s| s.conditions.as_ref());
        let c = super::find_condition(conditions, &type_);
        super::check_condition(&type_, c, &status, reason.as_deref())
    })
    .await
}

#[then(expr = "within {duration} job {word} has condition {word} {word}")]
async fn has_condition(
    w: &mut World,
    within: Within,
    name: String,
    type_: String,
    status: String,
) -> StepResult {
    condition(w, within, name, type_, status, None).await
}

#[then(expr = "within {duration} job {word} has condition {word} {word} with reason {word}")]
async fn has_condition_with_reason(
    w: &mut World,
    within: Within,
    name: String,
    type_: String,
    status: String,
    reason: String,
) -> StepResult {
    condition(w, within, name, type_, status, Some(reason)).await
}

#[then(expr = "within {duration} job {word} has {int} succeeded and {int} failed pod(s)")]
async fn counts(
    w: &mut World,
    within: Within,
    name: String,
    succeeded: i32,
    failed: i32,
) -> StepResult {
    wait_job(
        w,
        within,
        &name,
        &format!("to have {succeeded} succeeded and {failed} failed pods"),
        |j| {
            let s = j.status.clone().unwrap_or_default();
            let have = (s.succeeded.unwrap_or(0), s.failed.unwrap_or(0));
            if have == (succeeded, failed) {
                Ok(())
            } else {
                Err(format!("it has {} succeeded and {} failed", have.0, have.1))
            }
        },
    )
    .await
}
