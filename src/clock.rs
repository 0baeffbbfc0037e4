//! Cluster time.
//!
//! Every timer, timeout, backoff, lease and timestamp in the reference cluster reads this clock,
//! never wall time directly. A clock runs `scale` times faster than wall time from the moment it is
//! created, so with `--time-scale 60` a 5-minute backoff story takes 5 wall seconds. External
//! clusters run at scale 1.
//!
//! A clock started at an *epoch* ([`Clock::with_epoch`]) reads the epoch plus `scale` times
//! the wall time since then, so processes given the same epoch and scale (a cluster's
//! components in their own containers) read the same cluster time, whenever each started.
//!
//! This module must not know about the API, the store or any component.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A scaled cluster clock; cheap to clone (it is a few instants and a factor).
#[derive(Clone, Debug)]
pub struct Clock {
    start_wall: Instant,
    start_cluster: DateTime<Utc>,
    /// When cluster time read the wall time (see [`Clock::with_epoch`]).
    epoch: DateTime<Utc>,
    scale: f64,
}

impl Clock {
    /// The slowest a clock may run (cluster seconds per wall second).
    pub const MIN_SCALE: f64 = 0.01;
    /// The fastest a clock may run.
    pub const MAX_SCALE: f64 = 1000.0;

    /// Whether `scale` is one a clock can run at.
    pub fn valid_scale(scale: f64) -> bool {
        scale.is_finite() && (Self::MIN_SCALE..=Self::MAX_SCALE).contains(&scale)
    }

    /// A clock that runs `scale` times faster than wall time, starting at the current wall time.
    ///
    /// A scale that is not finite or not positive is treated as 1; others are kept within
    /// [`Self::MIN_SCALE`]..=[`Self::MAX_SCALE`].
    pub fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale.clamp(Self::MIN_SCALE, Self::MAX_SCALE)
        } else {
            1.0
        };
        let now = Utc::now();
        Self {
            start_wall: Instant::now(),
            start_cluster: now,
            epoch: now,
            scale,
        }
    }

    /// A clock that runs `scale` times faster than wall time since `epoch`, when it read
    /// `epoch`: every clock made with the same epoch and scale reads the same time. An epoch
    /// in the future (another machine's clock ahead of this one's) starts the clock at it. The scale is kept in bounds as [`Clock::new`] keeps it.
    pub fn with_epoch(scale: f64, epoch: DateTime<Utc>) -> Self {
        let scale = Self::new(scale).scale;
        let now = Instant::now();
        let since = (Utc::now() - epoch).to_std().unwrap_or_default();
        // `Instant` may not reach back that far (before the machine booted): start from now,
        // with the wall time since the epoch already counted.
        let (start_wall, counted) = match now.checked_sub(since) {
            Some(start) => (start, Duration::ZERO),
            None => (now, since),
        };
        Self {
            start_wall,
            start_cluster: add_std(epoch, counted.mul_f64(scale)),
            epoch,
            scale,
        }
    }

    /// The clock's epoch: the wall time when it started, or the one it was given. Another
    /// process's `Clock::with_epoch(scale, epoch)` agrees with this clock.
    pub fn epoch(&self) -> DateTime<Utc> {
        self.epoch
    }

    /// A clock that runs at wall-clock speed.
    pub fn real() -> Self {
        Self::new(1.0)
    }

    /// How many cluster seconds pass per wall second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The current cluster time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start_wall.elapsed().mul_f64(self.scale);
        let elapsed =
            chrono::Duration::from_std(elapsed).unwrap_or_else(|_| chrono::Duration::zero());
        self.start_cluster
            .checked_add_signed(elapsed)
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
    }

    /// The wall duration that corresponds to `cluster` of cluster time.
    /// A duration too long to represent is taken as forever ([`Duration::MAX`]).
    pub fn to_wall(&self, cluster: Duration) -> Duration {
        Duration::try_from_secs_f64(cluster.as_secs_f64() / self.scale).unwrap_or(Duration::MAX)
    }

    /// Sleep for `cluster` of cluster time.
    pub async fn sleep(&self, cluster: Duration) {
        tokio::time::sleep(self.to_wall(cluster)).await;
    }

    /// Run `fut` with a deadline of `cluster` cluster time.
    ///
    /// # Errors
    /// `Elapsed` when the deadline passes first.
    pub async fn timeout<F: std::future::Future>(
        &self,
        cluster: Duration,
        fut: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        tokio::time::timeout(self.to_wall(cluster), fut).await
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::real()
    }
}

/// `t` plus `seconds` (which may come from a user), or `None` when that is not a time chrono
/// can represent: callers decide what an overflow means instead of panicking.
pub fn add_seconds(t: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
    chrono::TimeDelta::try_seconds(seconds).and_then(|d| t.checked_add_signed(d))
}

/// `t` plus a duration of cluster time (a configured period, a back-off), saturating at the
/// latest representable time instead of overflowing.
pub fn add_std(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The latest time an RFC 3339 timestamp (and so a `metav1.Time`) can carry:
/// 9999-12-31T23:59:59Z.
pub fn latest_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Kubernetes' RFC 3339 timestamp form with second precision (`metav1.Time`).
pub fn format_time(t: DateTime<Utc>) -> String {
    // The fixed RFC 3339 writer: no format string to interpret on every write.
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A `metav1.Time` (whole seconds, as it serializes) of a cluster instant.
pub fn meta_time(t: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Kubernetes' RFC 3339 timestamp form with microsecond precision (`metav1.MicroTime`).
pub fn format_micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_on_user_durations_cannot_overflow() {
        let t = Utc::now();
        assert_eq!(add_seconds(t, i64::MAX), None);
        assert_eq!(add_seconds(t, 9_000_000_000_000), None);
        assert_eq!(add_seconds(t, 30), Some(t + chrono::Duration::seconds(30)));
        let slow = Clock::new(Clock::MIN_SCALE);
        assert_eq!(slow.to_wall(Duration::from_secs(u64::MAX)), Duration::MAX);
    }

    #[test]
    fn scaled_clock_runs_faster_than_wall_time() {
        let clock = Clock::new(1000.0);
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let advanced = clock.now() - before;
        assert!(advanced >= chrono::Duration::seconds(19), "{advanced:?}");
        assert_eq!(
            clock.to_wall(Duration::from_secs(10)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn clocks_with_one_epoch_agree_whenever_they_started() {
        let first = Clock::new(100.0);
        std::thread::sleep(Duration::from_millis(30));
        // Made 30 ms (3 cluster seconds) later, from the first clock's epoch and scale.
        let second = Clock::with_epoch(first.scale(), first.epoch());
        let (a, b) = (first.now(), second.now());
        let apart = (a - b).num_milliseconds().abs();
        assert!(apart < 500, "{a} and {b} are {apart} ms apart");
        assert!(a - first.epoch() >= chrono::Duration::seconds(3));
        assert_eq!(second.epoch(), first.epoch());
        // An epoch ahead of this machine's clock starts the clock there.
        let ahead = Utc::now() + chrono::Duration::seconds(3600);
        let started = Clock::with_epoch(1.0, ahead).now();
        assert!(started >= ahead && started < ahead + chrono::Duration::seconds(1));
    }

    #[test]
    fn invalid_scale_falls_back_to_wall_time() {
        assert_eq!(Clock::new(0.0).scale(), 1.0);
        assert_eq!(Clock::new(f64::NAN).scale(), 1.0);
    }

    #[test]
    fn timestamps_use_kubernetes_forms() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(t), "2026-01-02T03:04:05Z");
        assert_eq!(format_micro_time(t), "2026-01-02T03:04:05.123456Z");
    }
}
