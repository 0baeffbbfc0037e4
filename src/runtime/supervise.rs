//! Supervision of control loops.
//!
//! One bad object must not stop a component: a sync that fails or panics is logged with its key
//! and the key is retried with back-off ([`reconcile`]); the other keys go on. A whole loop that
//! panics or ends while it should run is restarted with back-off ([`supervise`]); until it runs
//! again, [`Health`] reports it as failed, so `/healthz` tells the truth about a dead loop.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::WorkQueue;
use crate::clock::Clock;

/// Named health checks of one component, as its `/healthz` reports them.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Check name -> why it fails (`None`: passing).
    checks: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

impl Health {
    /// A component with no checks yet (healthy).
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` passes.
    pub fn pass(&self, name: &str) {
        self.checks.lock().insert(name.to_string(), None);
    }

    /// `name` fails, for `reason` (logged; the endpoint withholds it, as upstream's does).
    pub fn fail(&self, name: &str, reason: impl Into<String>) {
        self.checks
            .lock()
            .insert(name.to_string(), Some(reason.into()));
    }

    /// `name` no longer applies (its loop stopped on purpose).
    pub fn remove(&self, name: &str) {
        self.checks.lock().remove(name);
    }

    /// The failing checks and why.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.checks
            .lock()
            .iter()
            .filter_map(|(name, why)| why.as_ref().map(|w| (name.clone(), w.clone())))
            .collect()
    }

    /// Whether every check passes.
    pub fn healthy(&self) -> bool {
        self.failures().is_empty()
    }

    /// The body and status upstream's healthz handler answers with: `ok` when healthy (every
    /// check listed with `verbose`), otherwise every check and `healthz check failed` (500).
    pub fn report(&self, verbose: bool) -> (u16, String) {
        let checks = self.checks.lock().clone();
        let failed = checks.values().any(Option::is_some);
        if !failed && !verbose {
            return (200, "ok".into());
        }
        let mut body = String::from("[+]ping ok\n");
        for (name, why) in &checks {
            match why {
                None => body.push_str(&format!("[+]{name} ok\n")),
                Some(_) => body.push_str(&format!("[-]{name} failed: reason withheld\n")),
            }
        }
        if failed {
            body.push_str("healthz check failed\n");
            (500, body)
        } else {
            body.push_str("healthz check passed\n");
            (200, body)
        }
    }

    /// `/healthz`, `/livez` and `/readyz` (with `?verbose`) over this component's checks.
    pub fn router(&self) -> axum::Router {
        let serve = |health: Health| {
            move |query: axum::extract::RawQuery| {
                let health = health.clone();
                async move {
                    let verbose = query
                        .0
                        .is_some_and(|q| q.split('&').any(|p| p == "verbose"));
                    let (code, body) = health.report(verbose);
                    let code = axum::http::StatusCode::from_u16(code)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    (code, [("content-type", "text/plain; charset=utf-8")], body)
                }
            }
        };
        axum::Router::new()
            .route("/healthz", axum::routing::get(serve(self.clone())))
            .route("/livez", axum::routing::get(serve(self.clone())))
            .route("/readyz", axum::routing::get(serve(self.clone())))
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// How long a dead loop waits before its `restarts`-th restart (cluster time): 1 s doubling to
/// 1 min.
fn restart_delay(restarts: u32) -> Duration {
    Duration::from_secs(1u64 << restarts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Run the control loop `name` (made afresh by `start`) until `shutdown`; when it panics or ends
/// before `shutdown`, log it, mark it failed in `health`, and start it again after a back-off.
///
/// Each run gets a token of its own (a child of `shutdown`), cancelled when the run ends: what
/// a dead run started (informers, feeders) stops with it instead of running beside its
/// successor.
pub async fn supervise<F, Fut>(
    name: &str,
    health: &Health,
    clock: &Clock,
    shutdown: &CancellationToken,
    mut start: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut restarts = 0u32;
    loop {
        health.pass(name);
        let run = shutdown.child_token();
        let outcome = AssertUnwindSafe(start(run.clone())).catch_unwind().await;
        run.cancel();
        if shutdown.is_cancelled() {
            health.remove(name);
            return;
        }
        let why = match outcome {
            Ok(()) => "ended while it should run".to_string(),
            Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
        };
        restarts = restarts.saturating_add(1);
        let delay = restart_delay(restarts);
        tracing::error!(control_loop = name, cause = %why, restart_in = ?delay, "control loop died; restarting it");
        health.fail(name, why);
        tokio::select! {
            _ = shutdown.cancelled() => {
                health.remove(name);
                return;
            }
            _ = clock.sleep(delay) => {}
        }
    }
}

/// Sync one key taken from `queue` and hand it back: on success its failures are forgotten
/// (and it comes back after the delay the sync asked for); on an error or a panic it is logged
/// with the key and queued again with back-off. Either way the queue goes on with other keys.
pub async fn reconcile<T, E, Fut>(queue: &Arc<WorkQueue<T>>, key: T, controller: &str, sync: Fut)
where
    T: Clone + Eq + Hash + Send + Sync + Display + 'static,
    E: Display,
    Fut: Future<Output = Result<Option<Duration>, E>>,
{
    match AssertUnwindSafe(sync).catch_unwind().await {
        Ok(Ok(after)) => {
            queue.forget(&key);
            if let Some(after) = after {
                queue.add_after(key.clone(), after);
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(controller, key = %key, cause = %e, "sync failed; retrying with back-off");
            queue.add_rate_limited(key.clone());
        }
        Err(panic) => {
            tracing::error!(controller, key = %key, panic = %panic_message(panic.as_ref()), "sync panicked; retrying with back-off");
            queue.add_rate_limited(key.clone());
        }
    }
    queue.done(&key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_key_is_retried_and_the_others_go_on() {
        let queue = WorkQueue::new(Clock::new(1000.0));
        queue.add("bad".to_string());
        queue.add("good".to_string());
        let synced = Mutex::new(Vec::new());
        let attempts = AtomicU32::new(0);
        while synced.lock().len() < 2 {
            let key = tokio::time::timeout(Duration::from_secs(5), queue.next())
                .await
                .expect("a key within 5 s")
                .expect("queue open");
            let (synced, attempts) = (&synced, &attempts);
            reconcile(&queue, key.clone(), "test", async move {
                if key == "bad" && attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom on {key}");
                }
                synced.lock().push(key);
                Ok::<_, String>(None)
            })
            .await;
        }
        assert_eq!(*synced.lock(), vec!["good".to_string(), "bad".to_string()]);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_dead_loop_shows_in_health_until_it_runs_again() {
        let health = Health::new();
        // 1 s of back-off is 100 ms here: long enough to see the loop down.
        let clock = Clock::new(10.0);
        let first_run: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let (running_tx, mut running_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = {
            let (health, clock, shutdown, starts, first_run) = (
                health.clone(),
                clock.clone(),
                shutdown.clone(),
                starts.clone(),
                first_run.clone(),
            );
            tokio::spawn(async move {
                supervise("deployment-controller", &health, &clock, &shutdown, |run| {
                    let n = starts.fetch_add(1, Ordering::SeqCst);
                    let running_tx = running_tx.clone();
                    let first_run = first_run.clone();
                    async move {
                        if n == 0 {
                            *first_run.lock() = Some(run);
                            panic!("TimeDelta::seconds out of bounds");
                        }
                        let _ = running_tx.send(());
                        run.cancelled().await;
                    }
                })
                .await
            })
        };
        // While it is down, health says so ...
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while health.healthy() {
            assert!(
                std::time::Instant::now() < deadline,
                "health never showed the dead loop"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (code, body) = health.report(false);
        assert_eq!(code, 500);
        assert!(
            body.contains("[-]deployment-controller failed: reason withheld"),
            "{body}"
        );
        assert!(health.failures()[0]
            .1
            .contains("TimeDelta::seconds out of bounds"));
        // ... and what the dead run started was told to stop.
        assert!(first_run.lock().as_ref().is_some_and(|t| t.is_cancelled()));
        // The restarted loop runs again, and health passes.
        tokio::time::timeout(Duration::from_secs(5), running_rx.recv())
            .await
            .expect("the loop restarts");
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(health.report(false), (200, "ok".to_string()));
        shutdown.cancel();
        task.await.unwrap();
        assert!(health.healthy());
    }

    #[test]
    fn a_failing_check_is_listed_as_upstream_lists_it() {
        let health = Health::new();
        health.pass("replicaset-controller");
        assert_eq!(health.report(false), (200, "ok".into()));
        assert_eq!(
            health.report(true).1,
            "[+]ping ok\n[+]replicaset-controller ok\nhealthz check passed\n"
        );
        health.fail("deployment-controller", "panicked: boom");
        assert_eq!(
            health.report(false),
            (
                500,
                "[+]ping ok\n[-]deployment-controller failed: reason withheld\n[+]replicaset-controller ok\nhealthz check failed\n"
                    .into()
            )
        );
        assert_eq!(
            health.failures(),
            vec![("deployment-controller".into(), "panicked: boom".into())]
        );
    }

    #[test]
    fn restarts_back_off_to_a_minute() {
        assert_eq!(restart_delay(1), Duration::from_secs(1));
        assert_eq!(restart_delay(3), Duration::from_secs(4));
        assert_eq!(restart_delay(100), Duration::from_secs(60));
    }
}
