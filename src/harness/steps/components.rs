//! Component statuses: what `kubectl get componentstatus` shows for the controller-manager, the
//! scheduler and etcd. The apiserver checks them on every read (they cannot be watched), so
//! the step reads again until the deadline.

use std::time::Duration;

use cucumber::then;
use k8s_openapi::api::core::v1::ComponentStatus;

use crate::harness::params::{glob_match, Within};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "within {duration} componentstatus {word} is {word}",
        "within 30s componentstatus scheduler is Healthy",
        "kubectl get componentstatus shows the component with STATUS Healthy or Unhealthy.",
    ),
    then(
        "within {duration} componentstatus {word} is {word} with message {string}",
        r#"within 30s componentstatus scheduler is Unhealthy with message 'Get "*": dial tcp *: connect: connection refused'"#,
        "The same, with the MESSAGE column matching the pattern (`*` is any text; quote it with ' when it holds \").",
    ),
];

/// How often the status is read again.
const EVERY: Duration = Duration::from_secs(1);

/// STATUS and MESSAGE as `kubectl get componentstatus` prints them (upstream's printer).
fn shown(cs: &ComponentStatus) -> (String, String) {
    let healthy = cs
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Healthy");
    let status = match healthy.map(|c| c.status.as_str()) {
        None => "Unknown",
        Some("True") => "Healthy",
        Some(_) => "Unhealthy",
    };
    let message = healthy.and_then(|c| c.message.clone()).unwrap_or_default();
    (status.to_string(), message)
}

async fn wait(
    w: &mut World,
    within: Within,
    name: &str,
    status: &str,
    message: Option<&str>,
) -> StepResult {
    if !matches!(status, "Healthy" | "Unhealthy" | "Unknown") {
        return Err(Failure::new(format!(
            "a componentstatus is Healthy, Unhealthy or Unknown, not {status:?}"
        )));
    }
    let env = w.env().await?;
    let api: kube::Api<ComponentStatus> = kube::Api::all(env.client.clone());
    let clock = env.timeline.clock().clone();
    let deadline = clock.now() + chrono::Duration::from_std(within.0).unwrap_or_default();
    let expected = match message {
        Some(m) => format!("componentstatus {name} to be {status} with message {m:?}"),
        None => format!("componentstatus {name} to be {status}"),
    };
    loop {
        let seen = match api.get(name).await {
            Ok(cs) => {
                let (s, m) = shown(&cs);
                if s == status && message.is_none_or(|p| glob_match(p, &m)) {
                    return Ok(());
                }
                format!("it is {s} with message {m:?}")
            }
            Err(e) => format!("reading it fails: {e}"),
        };
        if clock.now() >= deadline {
            return Err(Failure::new(format!(
                "expected within {:?} {expected}; {seen}",
                within.0
            )));
        }
        clock.sleep(EVERY).await;
    }
}

#[then(expr = "within {duration} componentstatus {word} is {word}")]
async fn is(w: &mut World, within: Within, name: String, status: String) -> StepResult {
    wait(w, within, &name, &status, None).await
}

#[then(expr = "within {duration} componentstatus {word} is {word} with message {string}")]
async fn is_with_message(
    w: &mut World,
    within: Within,
    name: String,
    status: String,
    message: String,
) -> StepResult {
    wait(w, within, &name, &status, Some(&message)).await
}
