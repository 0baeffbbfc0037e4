//! Waits on watches: the harness's timeline over a test's cluster (the `default` namespace,
//! nodes, and the control plane's Leases and events), with deadlines in cluster time. A wait
//! that runs out says what it expected and what it saw; [`super::seen`] reads what was seen.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use kube::Client;
use kubespec::clock::Clock;
use kubespec::cluster::RunningCluster;
use kubespec::harness::timeline::{Check, State, Timeline};

/// `m` minutes (of cluster time, for a deadline).
pub fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// A test's watches on its cluster; dropping it stops them.
pub struct Waits {
    timeline: Timeline,
    client: Client,
}

impl Waits {
    /// Watch `cluster` (once every watch has listed).
    pub async fn on(cluster: &RunningCluster) -> Self {
        Self::start(cluster.client().unwrap(), cluster.clock().clone()).await
    }

    /// Watch the cluster `client` reaches, whose clock runs at `clock`'s scale.
    pub async fn start(client: Client, clock: Clock) -> Self {
        let timeline = Timeline::start(client.clone(), "default", clock, true);
        timeline
            .synced()
            .await
            .unwrap_or_else(|e| panic!("the test's watches: {e}"));
        Self { timeline, client }
    }

    /// Read what the watches have seen so far.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.timeline.read(f)
    }

    /// Wait until `check` holds on what the watches have seen, at most `within` of cluster time;
    /// `check` runs now and after every change they see. On expiry, fail with `what` and what
    /// the last check saw.
    pub async fn until<T>(
        &self,
        within: Duration,
        what: &str,
        mut check: impl FnMut(&State) -> Result<T, String>,
    ) -> T {
        self.timeline
            .wait(within, what, |s| match check(s) {
                Ok(v) => Check::Done(v),
                Err(saw) => Check::NotYet(format!("last seen: {saw}")),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait until `check` succeeds, at most `within` of cluster time, for what the watches
    /// cannot see themselves (a component's /healthz, kubectl's output): it runs now and again
    /// after every change the watches see. On expiry, fail with `what` and what the last
    /// check saw.
    pub async fn until_async<T, F, Fut>(&self, within: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let clock = self.timeline.clock().clone();
        let deadline = tokio::time::Instant::now() + clock.to_wall(within);
        loop {
            let seen = self.read(State::len);
            let saw = match check().await {
                Ok(v) => return v,
                Err(saw) => saw,
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {} (cluster time): expected {what}\nlast seen: {saw}",
                    kubespec::harness::format_duration(within)
                );
            }
            // The next change (or the deadline, after which the check runs once more).
            let _ = self
                .timeline
                .wait(left.mul_f64(clock.scale()), what, |s| {
                    if s.len() > seen {
                        Check::Done(())
                    } else {
                        Check::NotYet(String::new())
                    }
                })
                .await;
        }
    }

    /// Follow the log of `container` (the first one when `None`) of pod `default/<pod>` once it
    /// has started, until `check` holds on all of it, at most `within` of cluster time; returns
    /// the log. On expiry, or if the log ends first, fail with `what` and the log.
    pub async fn log_until(
        &self,
        pods: &Api<Pod>,
        pod: &str,
        container: Option<&str>,
        within: Duration,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        use futures::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + self.timeline.clock().to_wall(within);
        // A log can be followed once its container has started.
        let started = format!("{what} (the container to start first)");
        self.until(within, &started, |s| {
            let status = super::seen::pod_json(s, pod)["status"]["containerStatuses"].clone();
            let cs = status
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| container.is_none_or(|name| c["name"] == name))
                .cloned()
                .unwrap_or_default();
            if cs["state"]["running"].is_object() || cs["state"]["terminated"].is_object() {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
        .await;
        let params = LogParams {
            follow: true,
            container: container.map(String::from),
            ..Default::default()
        };
        let mut stream = pods
            .log_stream(pod, &params)
            .await
            .unwrap_or_else(|e| panic!("cannot follow the log of {pod}: {e}"));
        let mut log = Vec::new();
        let follow = async {
            let mut buf = [0u8; 4096];
            while !check(&String::from_utf8_lossy(&log)) {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => log.extend_from_slice(&buf[..n]),
                }
            }
            true
        };
        let found = tokio::time::timeout_at(deadline, follow).await;
        let log = String::from_utf8_lossy(&log).into_owned();
        match found {
            Ok(true) => log,
            Ok(false) => panic!("the log of {pod} ended before {what}; it reads {log:?}"),
            Err(_) => panic!(
                "timed out after {} (cluster time): expected {what}\nthe log reads {log:?}",
                kubespec::harness::format_duration(within)
            ),
        }
    }

    /// A positive barrier for a check that something did not happen among the Events: the
    /// harness writes one in each namespace it watches and waits until the watches have
    /// delivered them; a watch delivers in resourceVersion order, so every Event written there
    /// before has arrived too.
    pub async fn barrier(&self) {
        self.timeline
            .barrier()
            .await
            .unwrap_or_else(|e| panic!("the barrier: {e}"));
    }
}
