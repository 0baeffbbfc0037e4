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

/// Where a candidate stands between two attempts on the lease, as client-go's elector moves
/// from acquiring to renewing. The loops in [`LeaderElector`] only wait and talk to the API;
/// every decision is one of the pure steps below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Not leading: try every retry period.
    Candidate,
    /// Leading, the last renewal round succeeded: the next round starts a retry period later.
    Leading,
    /// Leading, inside a renewal round that must succeed before `deadline`; a failed attempt is
    /// tried again half a retry period later.
    Renewing { deadline: DateTime<Utc> },
}

/// What a step tells the loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transition {
    Unchanged,
    BecameLeader,
    LostLeadership,
}

impl Role {
    /// How long to wait before the next attempt.
    fn pause(self, config: &LeaseConfig) -> Duration {
        match self {
            Role::Candidate | Role::Leading => config.retry_period,
            Role::Renewing { .. } => config.retry_period / 2,
        }
    }

    /// About to attempt at `now`: a leader opens a renewal round with the renew deadline; a round
    /// whose deadline has passed has lost the lease.
    fn before_attempt(self, now: DateTime<Utc>, config: &LeaseConfig) -> (Role, Transition) {
        match self {
            Role::Leading => {
                let deadline = crate::clock::add_std(now, config.renew_deadline);
                (Role::Renewing { deadline }, Transition::Unchanged)
            }
            Role::Renewing { deadline } if now >= deadline => {
                (Role::Candidate, Transition::LostLeadership)
            }
            role => (role, Transition::Unchanged),
        }
    }

    /// After an attempt that did (`held`) or did not leave this candidate holding the lease.
    fn after_attempt(self, held: bool) -> (Role, Transition) {
        match (self, held) {
            (Role::Candidate, true) => (Role::Leading, Transition::BecameLeader),
            (Role::Candidate, false) => (Role::Candidate, Transition::Unchanged),
            // A round ends with its first success; failures stay in the round until its deadline.
            (Role::Renewing { .. }, true) | (Role::Leading, _) => {
                (Role::Leading, Transition::Unchanged)
            }
            (round @ Role::Renewing { .. }, false) => (round, Transition::Unchanged),
        }
    }
}

/// The record a candidate writes when there is no Lease yet.
fn new_record(me: &str, duration: i32, now: DateTime<Utc>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration),
        acquire_time: Some(micro(now)),
        renew_time: Some(micro(now)),
        lease_transitions: Some(0),
        ..Default::default()
    }
}

/// The record `me` writes at `now` over `stored`, or `None` while another holder's lease is
/// still valid. Validity runs from when this candidate first saw the record as it is (kept in
/// `observed`, on this candidate's clock), not from the stored `renewTime`: clocks of holders
/// are not trusted. Taking the lease over counts a transition; renewing keeps the acquire time.
fn claim(
    observed: &mut Option<(LeaseSpec, DateTime<Utc>)>,
    stored: &LeaseSpec,
    me: &str,
    duration: i32,
    now: DateTime<Utc>,
) -> Option<LeaseSpec> {
    if observed
        .as_ref()
        .is_none_or(|(seen, _)| !same_record(seen, stored))
    {
        *observed = Some((stored.clone(), now));
    }
    let observed_at = observed.as_ref().map_or(now, |(_, t)| *t);
    let holder = stored.holder_identity.as_deref().unwrap_or_default();
    let held_by_me = holder == me;
    let held_for = stored.lease_duration_seconds.unwrap_or(duration).max(0);
    let valid_until = observed_at + chrono::Duration::seconds(i64::from(held_for));
    if !holder.is_empty() && !held_by_me && valid_until > now {
        return None;
    }
    let mut spec = stored.clone();
    spec.holder_identity = Some(me.to_string());
    spec.lease_duration_seconds = Some(duration);
    spec.renew_time = Some(micro(now));
    if !held_by_me {
        spec.acquire_time = Some(micro(now));
        spec.lease_transitions = Some(stored.lease_transitions.unwrap_or(0) + 1);
    }
    Some(spec)
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
            if !self.campaign(&shutdown).await {
                return;
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

    /// Try at once, then every retry period, until this candidate leads (true) or is told to
    /// stop (false).
    async fn campaign(&mut self, shutdown: &CancellationToken) -> bool {
        let mut role = Role::Candidate;
        loop {
            let held = self.try_acquire_or_renew().await;
            let (next, transition) = role.after_attempt(held);
            role = next;
            if transition == Transition::BecameLeader {
                return true;
            }
            if !self.pause(role, shutdown).await {
                return false;
            }
        }
    }

    /// Renew every retry period until `shutdown` (true) or until a renewal round cannot succeed
    /// within the renew deadline (false: leadership lost).
    async fn keep_renewing(&mut self, shutdown: &CancellationToken) -> bool {
        let mut role = Role::Leading;
        loop {
            if !self.pause(role, shutdown).await {
                return true;
            }
            let (next, transition) = role.before_attempt(self.clock.now(), &self.config);
            if transition == Transition::LostLeadership {
                tracing::warn!(lease = %self.config.name, identity = %self.config.identity, "leadership lost: renew deadline exceeded");
                return false;
            }
            let held = self.try_acquire_or_renew().await;
            role = next.after_attempt(held).0;
        }
    }

    /// Wait the pause `role` calls for; false when told to stop meanwhile.
    async fn pause(&self, role: Role, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = self.clock.sleep(role.pause(&self.config)) => true,
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
        let me = self.config.identity.as_str();
        let duration = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(cause = %e, "cannot read the lease");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let spec = new_record(me, duration, now);
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
        let stored = lease.spec.clone().unwrap_or_default();
        let Some(spec) = claim(&mut self.observed, &stored, me, duration, now) else {
            return false;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("a valid time")
    }

    fn config() -> LeaseConfig {
        LeaseConfig::new("kube-scheduler", "me".into())
    }

    fn held_by(holder: &str, renewed: DateTime<Utc>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro(t(-100))),
            renew_time: Some(micro(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    #[test]
    fn a_candidate_leads_after_its_first_successful_attempt() {
        assert_eq!(
            Role::Candidate.after_attempt(false),
            (Role::Candidate, Transition::Unchanged)
        );
        assert_eq!(
            Role::Candidate.after_attempt(true),
            (Role::Leading, Transition::BecameLeader)
        );
        assert_eq!(Role::Candidate.pause(&config()), Duration::from_secs(2));
    }

    #[test]
    fn a_lease_is_lost_when_renewals_fail_until_the_renew_deadline() {
        let config = config();
        // A round opens 2 s after the last renewal, with a 10 s deadline.
        let (mut role, transition) = Role::Leading.before_attempt(t(2), &config);
        assert_eq!(transition, Transition::Unchanged);
        assert_eq!(role, Role::Renewing { deadline: t(12) });
        // Failed attempts every second stay in the round while the deadline holds...
        let mut now = t(2);
        loop {
            role = role.after_attempt(false).0;
            assert_eq!(role.pause(&config), Duration::from_secs(1));
            now += chrono::Duration::seconds(1);
            let (next, transition) = role.before_attempt(now, &config);
            if now < t(12) {
                assert_eq!(transition, Transition::Unchanged, "at {now}");
                role = next;
            } else {
                // ... and the first attempt at the deadline is not made: leadership is lost.
                assert_eq!(
                    (next, transition),
                    (Role::Candidate, Transition::LostLeadership)
                );
                break;
            }
        }
    }

    #[test]
    fn a_renewal_within_the_deadline_keeps_the_lease() {
        let config = config();
        let (role, _) = Role::Leading.before_attempt(t(2), &config);
        let role = role.after_attempt(false).0;
        let (role, transition) = role.before_attempt(t(11), &config);
        assert_eq!(transition, Transition::Unchanged);
        assert_eq!(
            role.after_attempt(true),
            (Role::Leading, Transition::Unchanged)
        );
        // The next round has a deadline of its own.
        assert_eq!(
            Role::Leading.before_attempt(t(13), &config).0,
            Role::Renewing { deadline: t(23) }
        );
    }

    #[test]
    fn another_holders_lease_runs_from_when_it_was_observed_not_from_its_renew_time() {
        let mut observed = None;
        // The holder's clock says it renewed an hour ago; this candidate only now sees the record.
        let stored = held_by("other", t(-3600), 3);
        assert_eq!(claim(&mut observed, &stored, "me", 15, t(0)), None);
        assert_eq!(claim(&mut observed, &stored, "me", 15, t(14)), None);
        let taken = claim(&mut observed, &stored, "me", 15, t(15)).expect("expired");
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(micro(t(15))));
        assert_eq!(taken.renew_time, Some(micro(t(15))));
    }

    #[test]
    fn a_changed_record_restarts_the_wait() {
        let mut observed = None;
        assert_eq!(
            claim(&mut observed, &held_by("other", t(0), 1), "me", 15, t(0)),
            None
        );
        // The holder renews at 10 s: its lease is valid for 15 s from this sighting.
        let renewed = held_by("other", t(10), 1);
        assert_eq!(claim(&mut observed, &renewed, "me", 15, t(10)), None);
        assert_eq!(claim(&mut observed, &renewed, "me", 15, t(24)), None);
        assert!(claim(&mut observed, &renewed, "me", 15, t(25)).is_some());
    }

    #[test]
    fn renewing_keeps_acquire_time_and_transitions_and_a_released_lease_is_free() {
        let mut observed = None;
        let mine = held_by("me", t(0), 2);
        let renewed = claim(&mut observed, &mine, "me", 15, t(2)).expect("mine to renew");
        assert_eq!(renewed.acquire_time, mine.acquire_time);
        assert_eq!(renewed.lease_transitions, Some(2));
        assert_eq!(renewed.renew_time, Some(micro(t(2))));
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            ..held_by("", t(0), 2)
        };
        let taken = claim(&mut None, &released, "me", 15, t(0)).expect("free");
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.lease_duration_seconds, Some(15));
    }

    #[test]
    fn the_first_record_has_no_transitions() {
        let spec = new_record("me", 15, t(0));
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, spec.renew_time);
    }
}
