//! Container restart back-off (CrashLoopBackOff) and image pull back-off, as pure state: the pod
//! worker records exits and pull failures here and asks how long to wait.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::add_std;

/// The first back-off step: 10 s.
pub(super) const INITIAL: Duration = Duration::from_secs(10);
/// The longest back-off: 300 s.
pub(super) const MAX: Duration = Duration::from_secs(300);
/// A container that exits more than this long after its last restart starts over: 600 s (twice
/// the longest back-off, upstream's `hasExpired`).
const RESET: Duration = Duration::from_secs(600);

/// The restart back-off of one container, as the kubelet's `flowcontrol.Backoff` keeps it: the
/// first restart is immediate; then 10 s doubling to 300 s, counted from the exit; a container
/// that exits more than 10 minutes after it was (re)started starts over. (How long ago the
/// previous crash was does not matter: a container that backs off 5 minutes, runs 6 and crashes
/// again waits 5 minutes again.)
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
        if add_std(started, RESET) < finished {
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
        b.on_exit(t(701), t(100), t(701), true);
        assert_eq!(b.waiting(t(701)), None);
        // And counts from the start again.
        b.on_exit(t(702), t(701), t(702), true);
        assert_eq!(
            b.waiting(t(702)).map(|(_, step)| step.num_seconds()),
            Some(10)
        );
    }

    #[test]
    fn only_a_run_of_more_than_ten_minutes_starts_over() {
        let step_after = |ran: i64| {
            let mut b = RestartBackoff::default();
            let mut now = t(0);
            // Crash quickly until the back-off is at its 300 s maximum.
            for _ in 0..8 {
                b.on_exit(now, now, now, true);
                now = b.waiting(now).map_or(now, |(until, _)| until);
                b.started();
            }
            // Then run `ran` seconds (the previous crash is long ago by then) and crash.
            let started = now;
            now += chrono::Duration::seconds(ran);
            b.on_exit(now, started, now, true);
            b.waiting(now).map_or(0, |(_, step)| step.num_seconds())
        };
        assert_eq!(
            step_after(350),
            300,
            "a crash 10 minutes after the last crash"
        );
        assert_eq!(step_after(600), 300, "exactly ten minutes is not more");
        assert_eq!(
            step_after(601),
            0,
            "more than ten minutes: restarted at once"
        );
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
