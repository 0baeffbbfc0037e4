//! Container restart back-off (CrashLoopBackOff) and image pull back-off, as pure state: the pod
//! worker records exits and pull failures here and asks how long to wait.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::add_std;

/// The first back-off step: 10 s.
pub(super) const INITIAL: Duration = Duration::from_secs(10);
/// The longest back-off: 300 s.
pub(super) const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long, or crashed this long after the last step, starts over: 600 s.
const RESET: Duration = Duration::from_secs(600);

/// The restart back-off of one container. The first restart is immediate; then 10 s doubling to
/// 300 s; a container that ran 10 minutes, or whose last back-off step is 10 minutes old, starts
/// over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RestartBackoff {
    /// Exits counted since the last reset.
    crashes: u32,
    /// Until when the next start waits.
    until: Option<DateTime<Utc>>,
    /// When the last back-off step was taken.
    last_step: Option<DateTime<Utc>>,
}

impl RestartBackoff {
    /// Record, at `now`, the exit of an instance that ran from `started` to `finished`; when its
    /// restart policy lets it `restart`, the next start waits out the back-off.
    pub(super) fn on_exit(
        &mut self,
        now: DateTime<Utc>,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        restart: bool,
    ) {
        self.crashes += 1;
        let ran_long = add_std(started, RESET) <= finished;
        let step_is_old = self.last_step.is_some_and(|t| add_std(t, RESET) <= now);
        if ran_long || step_is_old {
            self.crashes = 1;
        }
        if restart {
            self.until = Some(add_std(now, self.delay()));
            self.last_step = Some(now);
        }
    }

    /// The wait before the next restart after `crashes` exits.
    fn delay(&self) -> Duration {
        if self.crashes <= 1 {
            return Duration::ZERO;
        }
        let steps = (self.crashes - 2).min(10);
        (INITIAL * 2u32.pow(steps)).min(MAX)
    }

    /// While a restart still waits at `now`: until when, and the length of this back-off step
    /// (the `back-off 20s` of the kubelet's message).
    pub(super) fn waiting(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, chrono::Duration)> {
        let until = self.until.filter(|until| *until > now)?;
        let step = self.last_step.map(|s| until - s).unwrap_or_default();
        Some((until, step))
    }

    /// Whether an exit is waiting to be restarted (a start failure is observed only once).
    pub(super) fn pending(&self) -> bool {
        self.until.is_some()
    }

    /// A new instance started: the wait is over (the count stays, for the next exit).
    pub(super) fn started(&mut self) {
        self.until = None;
    }
}

/// The next image pull back-off after `previous`: 10 s, doubling to 300 s.
pub(super) fn next_pull_backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(INITIAL, |d| (d * 2).min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("a valid time")
    }

    /// A container that crashes one second after each start: the gaps between its restarts.
    #[test]
    fn crash_loop_gaps_are_immediate_then_10s_doubling_to_300s() {
        let mut b = RestartBackoff::default();
        let mut now = t(0);
        let mut gaps = Vec::new();
        for _ in 0..9 {
            let started = now;
            now += chrono::Duration::seconds(1);
            b.on_exit(now, started, now, true);
            let gap = b.waiting(now).map_or(0, |(until, step)| {
                assert_eq!(until - now, step);
                step.num_seconds()
            });
            gaps.push(gap);
            now = b.waiting(now).map_or(now, |(until, _)| until);
            assert_eq!(b.waiting(now), None, "the wait ends at its deadline");
            b.started();
        }
        assert_eq!(gaps, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_container_that_ran_ten_minutes_restarts_at_once() {
        let mut b = RestartBackoff::default();
        for i in 0..4 {
            b.on_exit(t(i), t(i), t(i), true);
        }
        assert!(b.waiting(t(3)).is_some());
        b.started();
        b.on_exit(t(700), t(100), t(700), true);
        assert_eq!(b.waiting(t(700)), None);
        // And counts from the start again.
        b.on_exit(t(701), t(700), t(701), true);
        assert_eq!(
            b.waiting(t(701)).map(|(_, step)| step.num_seconds()),
            Some(10)
        );
    }

    #[test]
    fn a_back_off_step_ten_minutes_old_starts_over() {
        let mut b = RestartBackoff::default();
        b.on_exit(t(0), t(0), t(0), true);
        b.on_exit(t(1), t(1), t(1), true);
        b.started();
        b.on_exit(t(601), t(600), t(601), true);
        assert_eq!(b.waiting(t(601)), None);
    }

    #[test]
    fn an_exit_that_may_not_restart_waits_for_nothing() {
        let mut b = RestartBackoff::default();
        b.on_exit(t(0), t(0), t(0), false);
        b.on_exit(t(1), t(0), t(1), false);
        assert!(!b.pending());
        assert_eq!(b.waiting(t(1)), None);
    }

    #[test]
    fn pull_back_off_doubles_to_five_minutes() {
        let mut d = None;
        let mut steps = Vec::new();
        for _ in 0..7 {
            let next = next_pull_backoff(d);
            steps.push(next.as_secs());
            d = Some(next);
        }
        assert_eq!(steps, [10, 20, 40, 80, 160, 300, 300]);
    }
}
