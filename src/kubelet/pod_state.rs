//! The life of one pod worker as explicit state, as upstream's pod workers keep it: a pod is
//! synced until it is deleted, then terminating (its containers stopped within a grace period
//! that can only get shorter), then terminated, and nothing brings it back. These are the pure
//! steps; `worker.rs` carries them out.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// Where a pod worker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WorkState {
    /// Running the pod: volumes, images, containers, probes, status.
    Syncing,
    /// Stopping every container within `grace`. `gone`: the pod is no longer in the API (a forced
    /// deletion), so there is no status to report and nothing left to delete.
    Terminating { grace: Duration, gone: bool },
    /// Every container stopped; the worker only cleans up and ends.
    Terminated,
}

/// What the latest version of the pod says, as far as the worker's state goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PodUpdate {
    /// The pod, not being deleted.
    Present,
    /// The pod carries a deletionTimestamp, with this grace period.
    Deleted { grace: Duration },
    /// The pod was removed from the API.
    Gone,
}

impl PodUpdate {
    /// Classify the latest version of a pod (`None`: removed from the API).
    pub(super) fn of(pod: Option<&Pod>) -> Self {
        let Some(pod) = pod else {
            return PodUpdate::Gone;
        };
        if pod.metadata.deletion_timestamp.is_none() {
            return PodUpdate::Present;
        }
        let seconds = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        PodUpdate::Deleted {
            grace: Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        }
    }
}

impl WorkState {
    /// The state after `update`. Deletion starts termination; once terminating, an update can
    /// only shorten the grace period (a pending kill is never replaced by a sync or a longer
    /// grace), and a terminated worker stays terminated.
    pub(super) fn on_update(self, update: PodUpdate) -> WorkState {
        match (self, update) {
            (WorkState::Terminated, _) => WorkState::Terminated,
            (_, PodUpdate::Gone) => WorkState::Terminating {
                grace: Duration::ZERO,
                gone: true,
            },
            (WorkState::Syncing, PodUpdate::Present) => WorkState::Syncing,
            (WorkState::Syncing, PodUpdate::Deleted { grace }) => {
                WorkState::Terminating { grace, gone: false }
            }
            (WorkState::Terminating { grace, gone }, PodUpdate::Deleted { grace: new }) => {
                WorkState::Terminating {
                    grace: grace.min(new),
                    gone,
                }
            }
            (terminating @ WorkState::Terminating { .. }, PodUpdate::Present) => terminating,
        }
    }

    /// Whether going from `self` to `next` must restart a kill in progress: the grace period
    /// got shorter.
    pub(super) fn shortens_kill(self, next: WorkState) -> bool {
        match (self, next) {
            (WorkState::Terminating { grace, .. }, WorkState::Terminating { grace: new, .. }) => {
                new < grace
            }
            _ => false,
        }
    }

    /// The kill finished: every container is stopped.
    pub(super) fn killed(self) -> WorkState {
        match self {
            WorkState::Terminating { .. } => WorkState::Terminated,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn deleted(seconds: u64) -> PodUpdate {
        PodUpdate::Deleted {
            grace: SECOND * seconds as u32,
        }
    }

    #[test]
    fn a_pod_syncs_until_deleted() {
        let s = WorkState::Syncing.on_update(PodUpdate::Present);
        assert_eq!(s, WorkState::Syncing);
        assert_eq!(
            s.on_update(deleted(30)),
            WorkState::Terminating {
                grace: SECOND * 30,
                gone: false
            }
        );
    }

    #[test]
    fn a_pending_kill_is_never_overwritten() {
        let terminating = WorkState::Syncing.on_update(deleted(30));
        // A stale update without the deletion does not bring the pod back ...
        assert_eq!(terminating.on_update(PodUpdate::Present), terminating);
        // ... nor does a longer grace period lengthen the kill.
        let longer = terminating.on_update(deleted(60));
        assert_eq!(longer, terminating);
        assert!(!terminating.shortens_kill(longer));
        // A shorter one shortens it, and restarts the kill.
        let shorter = terminating.on_update(deleted(5));
        assert_eq!(
            shorter,
            WorkState::Terminating {
                grace: SECOND * 5,
                gone: false
            }
        );
        assert!(terminating.shortens_kill(shorter));
    }

    #[test]
    fn a_forced_deletion_kills_at_once_and_stays_gone() {
        let terminating = WorkState::Syncing.on_update(deleted(30));
        let gone = terminating.on_update(PodUpdate::Gone);
        assert_eq!(
            gone,
            WorkState::Terminating {
                grace: Duration::ZERO,
                gone: true
            }
        );
        assert!(terminating.shortens_kill(gone));
        assert_eq!(gone.on_update(deleted(30)), gone);
        assert_eq!(
            WorkState::Syncing.on_update(PodUpdate::Gone),
            gone,
            "a pod removed while running is killed without a grace period"
        );
    }

    #[test]
    fn a_terminated_worker_stays_terminated() {
        let done = WorkState::Syncing.on_update(deleted(0)).killed();
        assert_eq!(done, WorkState::Terminated);
        for update in [PodUpdate::Present, deleted(1), PodUpdate::Gone] {
            assert_eq!(done.on_update(update), WorkState::Terminated);
        }
        assert_eq!(WorkState::Syncing.killed(), WorkState::Syncing);
    }

    #[test]
    fn the_grace_period_comes_from_the_deletion_then_the_spec() {
        let mut pod = Pod::default();
        assert_eq!(PodUpdate::of(None), PodUpdate::Gone);
        assert_eq!(PodUpdate::of(Some(&pod)), PodUpdate::Present);
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(PodUpdate::of(Some(&pod)), deleted(30));
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            termination_grace_period_seconds: Some(7),
            ..Default::default()
        });
        assert_eq!(PodUpdate::of(Some(&pod)), deleted(7));
        pod.metadata.deletion_grace_period_seconds = Some(2);
        assert_eq!(PodUpdate::of(Some(&pod)), deleted(2));
        pod.metadata.deletion_grace_period_seconds = Some(-5);
        assert_eq!(PodUpdate::of(Some(&pod)), deleted(0));
    }
}
