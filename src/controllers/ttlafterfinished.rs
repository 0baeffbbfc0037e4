//! The TTL-after-finished controller: deletes a finished Job (Complete or Failed) once
//! `ttlSecondsAfterFinished` has passed since it finished, with foreground propagation (its pods
//! go first) and the Job's uid as precondition, as upstream's does.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use tokio_util::sync::CancellationToken;

use super::job::{finish_time, is_finished};
use crate::clock::Clock;
use crate::runtime::{key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it.
pub const CONTROLLER: &str = "ttl-after-finished-controller";

/// Run the controller until `shutdown`.
pub async fn run(client: Client, clock: Clock, informers: &Informers, shutdown: CancellationToken) {
    let (informer, mut changes) = informers.subscribe_all::<Job>();
    let jobs = informer.store();
    let queue = WorkQueue::new(clock.clone());
    informer.ready().await;
    for job in jobs.state() {
        queue.add(key_of(job.as_ref()));
    }
    let feeder = {
        let queue = queue.clone();
        let jobs = jobs.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = changes.recv() => match change {
                        Ok(Change::Applied(job)) => queue.add(key_of(job.as_ref())),
                        Ok(Change::Deleted(_)) => {}
                        Ok(Change::Resync) | Err(_) => for job in jobs.state() { queue.add(key_of(job.as_ref())) },
                    },
                }
            }
        })
    };
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => break,
            key = queue.next() => match key { Some(k) => k, None => break },
        };
        reconcile(
            &queue,
            key.clone(),
            CONTROLLER,
            sync(&client, &clock, &jobs, &key),
        )
        .await;
    }
    queue.shut_down();
    feeder.abort();
}

async fn sync(
    client: &Client,
    clock: &Clock,
    jobs: &Store<Job>,
    key: &str,
) -> kube::Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let Some(job): Option<Arc<Job>> = jobs.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(None);
    };
    let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
    let (Some(ttl), true, None) = (ttl, is_finished(&job), &job.metadata.deletion_timestamp) else {
        return Ok(None);
    };
    let Some(finished) = finish_time(&job) else {
        return Ok(None);
    };
    let expires = crate::clock::add_seconds(finished, i64::from(ttl.max(0)))
        .unwrap_or_else(crate::clock::latest_time);
    let now = clock.now();
    if now < expires {
        return Ok(Some((expires - now).to_std().unwrap_or_default()));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match Api::<Job>::namespaced(client.clone(), ns)
        .delete(name, &params)
        .await
    {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}
