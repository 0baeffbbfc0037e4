//! How the workload controllers (ReplicaSet, DaemonSet, Job) create and delete their pods, as
//! upstream's `controller.RealPodControl` and `slowStartBatch` do: creations in batches of 1, 2,
//! 4, ... that stop at the first failing batch, and an event on the owner for every pod made or
//! deleted (`SuccessfulCreate` "Created pod: NAME", `FailedCreate` "Error creating: ...",
//! `SuccessfulDelete` "Deleted pod: NAME", `FailedDelete` "Error deleting: ...").

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};

use crate::events::{EventType, Recorder};

/// What an API error says, as upstream's event messages quote it.
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Create `pods` (each already complete, with generateName) in slow-start batches, recording an
/// event on `owner` for each; `created` is told the name of every pod made, as soon as it is
/// made. Stops at the first batch with a failure. Returns how many were created.
pub async fn create_pods(
    api: &Api<Pod>,
    recorder: &Recorder,
    owner: &ObjectReference,
    pods: Vec<Pod>,
    mut created: impl FnMut(&str),
) -> usize {
    let mut remaining = pods.into_iter();
    let mut batch = 1usize;
    let mut made = 0;
    loop {
        let now: Vec<Pod> = remaining.by_ref().take(batch).collect();
        if now.is_empty() {
            return made;
        }
        let params = PostParams::default();
        let results = futures::future::join_all(now.iter().map(|p| api.create(&params, p))).await;
        let mut failed = false;
        for result in results {
            match result {
                Ok(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    made += 1;
                    created(&name);
                    recorder
                        .record(
                            owner,
                            EventType::Normal,
                            "SuccessfulCreate",
                            "",
                            &format!("Created pod: {name}"),
                        )
                        .await;
                }
                Err(e) => {
                    failed = true;
                    recorder
                        .record(
                            owner,
                            EventType::Warning,
                            "FailedCreate",
                            "",
                            &format!("Error creating: {}", message(&e)),
                        )
                        .await;
                }
            }
        }
        if failed {
            return made;
        }
        batch = batch.saturating_mul(2);
    }
}

/// Delete the pod `name`, recording an event on `owner`. A pod already gone is no error.
/// Returns whether the pod is gone or going.
pub async fn delete_pod(
    api: &Api<Pod>,
    recorder: &Recorder,
    owner: &ObjectReference,
    name: &str,
) -> bool {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            recorder
                .record(
                    owner,
                    EventType::Normal,
                    "SuccessfulDelete",
                    "",
                    &format!("Deleted pod: {name}"),
                )
                .await;
            true
        }
        Err(kube::Error::Api(s)) if s.code == 404 => true,
        Err(e) => {
            recorder
                .record(
                    owner,
                    EventType::Warning,
                    "FailedDelete",
                    "",
                    &format!("Error deleting: {e}"),
                )
                .await;
            false
        }
    }
}
