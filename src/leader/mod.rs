//! Lease-based leader election, as upstream's client-go `leaderelection` package does it.
//!
//! A candidate trusts its own observation time, not the stored `renewTime`: a lease held by
//! another is valid until the moment this candidate last saw the record change plus
//! `leaseDuration`. Writes are PUTs carrying the resourceVersion read, so two candidates racing
//! for one lease get a 409 and only one wins. A graceful release (only with
//! [`LeaseConfig::release_on_cancel`], as kube-scheduler sets it) writes an empty holder with a
//! one-second duration so a standby takes over at once.
//!
//! Every duration is cluster time (the injected [`Clock`]). This module only talks to the API.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{reference, EventType, Recorder};

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease (`kube-system`).
    pub namespace: String,
    /// Name of the Lease (`kube-controller-manager`, `kube-scheduler`).
    pub name: String,
    /// This candidate's identity, `<hostname>_<uuid>`.
    pub identity: String,
    /// How long a non-leader waits after last seeing the record change (15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before giving up leadership (10 s).
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews (2 s).
    pub retry_period: Duration,
    /// Whether a leader that is told to stop releases the Lease (client-go's
    /// `ReleaseOnCancel`). kube-scheduler sets it; kube-controller-manager does not: it exits on
    /// SIGTERM without a word, and its successor waits out the lease.
    pub release_on_cancel: bool,
}

impl LeaseConfig {
    /// Upstream defaults (15 s / 10 s / 2 s) for a lease in kube-system.
    pub fn new(name: &str, identity: String) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: name.into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }
}

/// A fresh identity in upstream's form, `<hostname>_<uuid>`.
pub fn new_identity() -> String {
    let host = hostname();
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// This machine's host name (or `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// One candidate for one lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    clock: Clock,
    recorder: Recorder,
    /// The last record seen and when (this candidate's clock) it was first seen.
    observed: Option<(LeaseSpec, DateTime<Utc>)>,
}

fn micro(t: DateTime<Utc>) -> MicroTime {
    // Truncate to microseconds as the wire form does, so comparisons after a round trip agree.
    let micros = t.timestamp_micros();
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn same_record(a: &LeaseSpec, b: &LeaseSpec) -> bool {
    a.holder_identity == b.holder_identity
        && a.renew_time == b.renew_time
        && a.acquire_time == b.acquire_time
        && a.lease_transitions == b.lease_transitions
        && a.lease_duration_seconds == b.lease_duration_seconds
}

impl LeaderElector {
    /// A candidate that records LeaderElection events as `component`.
    pub fn new(client: Client, clock: Clock, config: LeaseConfig, component: &str) -> Self {
        let recorder = Recorder::core(client.clone(), clock.clone(), component, &hostname());
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock,
            recorder,
            observed: None,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Campaign until `shutdown`; while leading, run `work` with a token that is cancelled when
    /// leadership is lost. On shutdown a leader releases the lease gracefully. Aborting the task
    /// instead (a crash) releases nothing: the others wait out the lease.
    pub async fn run<F, Fut>(mut self, shutdown: CancellationToken, work: F)
    where
        F: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            // Candidate: try every retry period until we lead or are told to stop.
            loop {
                if self.try_acquire_or_renew().await {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.clock.sleep(self.config.retry_period) => {}
                }
            }
            tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
            self.event("became leader").await;
            let leading = CancellationToken::new();
            // The work runs inside this future, not as a task of its own: when a replica is
            // killed (this future dropped), its control loops die with it, as with a crashed
            // process; the guard also stops the watches they spawned.
            let _guard = leading.clone().drop_guard();
            let work_done = work(leading.clone());
            tokio::pin!(work_done);
            let released = {
                let renewing = self.keep_renewing(&shutdown);
                tokio::pin!(renewing);
                tokio::select! {
                    released = &mut renewing => released,
                    _ = &mut work_done => {
                        // The work ended by itself: keep the lease until told to stop or lost.
                        renewing.await
                    }
                }
            };
            leading.cancel();
            // Let the work finish its current step (it watches `leading`).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut work_done).await;
            if released {
                // Told to stop. With ReleaseOnCancel, client-go releases the lease and records
                // "stopped leading"; without it (kube-controller-manager) the process just ends.
                if self.config.release_on_cancel {
                    self.release().await;
                    self.event("stopped leading").await;
                }
                return;
            }
            self.event("stopped leading").await;
        }
    }

    /// Renew every retry period until `shutdown` (true) or until a renewal cannot succeed within
    /// the renew deadline (false: leadership lost).
    async fn keep_renewing(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return true,
                _ = self.clock.sleep(self.config.retry_period) => {}
            }
            let deadline = self.clock.now()
                + chrono::Duration::from_std(self.config.renew_deadline).unwrap_or_default();
            let mut renewed = false;
            while self.clock.now() < deadline {
                if self.try_acquire_or_renew().await {
                    renewed = true;
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.clock.sleep(self.config.retry_period / 2) => {}
                }
            }
            if shutdown.is_cancelled() {
                return true;
            }
            if !renewed {
                tracing::warn!(lease = %self.config.name, identity = %self.config.identity, "leadership lost: renew deadline exceeded");
                return false;
            }
        }
    }

    async fn event(&self, what: &str) {
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: None,
        };
        let mut object = reference(&lease);
        if let Ok(Some(current)) = self.api.get_opt(&self.config.name).await {
            object = reference(&current);
        }
        let message = format!("{} {what}", self.config.identity);
        self.recorder
            .record(&object, EventType::Normal, "LeaderElection", "", &message)
            .await;
    }

    /// One attempt to take or keep the lease; true when this candidate holds it afterwards.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let now = self.clock.now();
        let me = self.config.identity.clone();
        let duration = self.config.lease_duration.as_secs() as i32;
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(cause = %e, "cannot read the lease");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(micro(now)),
                renew_time: Some(micro(now)),
                lease_transitions: Some(0),
                ..Default::default()
            };
            let lease = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((spec, now));
                    true
                }
                Err(_) => false,
            };
        };
        let record = lease.spec.clone().unwrap_or_default();
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| !same_record(seen, &record));
        if changed {
            self.observed = Some((record.clone(), now));
        }
        let observed_at = self.observed.as_ref().map(|(_, t)| *t).unwrap_or(now);
        let holder = record.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == me;
        let held_duration = record.lease_duration_seconds.unwrap_or(duration).max(0) as i64;
        let valid_until = observed_at + chrono::Duration::seconds(held_duration);
        if !holder.is_empty() && !held_by_me && valid_until > now {
            return false;
        }
        let mut spec = record.clone();
        spec.holder_identity = Some(me);
        spec.lease_duration_seconds = Some(duration);
        spec.renew_time = Some(micro(now));
        if !held_by_me {
            spec.acquire_time = Some(micro(now));
            spec.lease_transitions = Some(record.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(spec.clone());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = Some((spec, now));
                true
            }
            Err(e) => {
                tracing::debug!(cause = %e, "lease update lost a race");
                false
            }
        }
    }

    /// Give the lease up: empty holder, one-second duration.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = micro(self.clock.now());
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(cause = %e, "cannot release the lease");
        }
    }
}
