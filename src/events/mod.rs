//! Event recorders as upstream components use them, writing through the API like any client.
//!
//! - [`Recorder::core`]: the core/v1 recorder of controllers, the kubelet and leader election
//!   (client-go `tools/record`): `source`, `firstTimestamp`/`lastTimestamp`, `count`. Every event
//!   passes the [`correlator`] first, as upstream's EventCorrelator: similar events aggregate into
//!   one `(combined from similar events): ...` event, repeats PATCH count+1, and a spam filter
//!   rations what a source writes about one object.
//! - [`Recorder::events_v1`]: the events.k8s.io/v1 recorder of the scheduler (client-go
//!   `tools/events`, which has no aggregation or spam filter): `reportingController`,
//!   `reportingInstance`, `action`, `eventTime`; repeats grow a `series`.
//!
//! Recording never fails the caller: a write that fails is logged and dropped, as upstream's
//! broadcaster does once it gives up.

pub mod correlator;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;

use crate::clock::{format_micro_time, format_time, Clock};
use correlator::{event_name, Candidate, Correlator, Outcome, Write};

/// How many distinct events the events.k8s.io/v1 recorder remembers for its series.
const SEEN_CACHE_SIZE: usize = 4096;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something to look at.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// What makes two events.k8s.io/v1 events the same (client-go `tools/events`' `getKey`): the
/// regarding reference counts whole (its resourceVersion too).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    action: String,
    reason: String,
    regarding: String,
    note: String,
}

/// An events.k8s.io/v1 event the recorder remembers.
#[derive(Clone)]
struct Seen {
    name: String,
    namespace: String,
    event_time: chrono::DateTime<chrono::Utc>,
    /// (count, lastObservedTime) once it repeated.
    series: Option<(i32, chrono::DateTime<chrono::Utc>)>,
    /// The first occurrence, to create the event again if it is gone.
    job: Arc<Job>,
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Core,
    EventsV1,
}

/// Records Events about objects on behalf of one component instance. Clones share their state.
///
/// Recording never waits for the apiserver: an event is queued (at most
/// [`MAX_QUEUED_EVENTS`], as upstream's broadcaster; more are dropped with a warning) and one
/// task per recorder writes the queue in order, as client-go's broadcaster goroutine does. The
/// event's time is taken when it is recorded.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
    queue: Arc<std::sync::OnceLock<mpsc::Sender<Job>>>,
}

/// How many events may wait to be written (client-go's `maxQueuedEvents`).
pub const MAX_QUEUED_EVENTS: usize = 1000;

/// When an events.k8s.io/v1 series counts as finished: no repeat for this long (client-go
/// `tools/events`' `finishTime`); the recorder looks this often.
const SERIES_FINISH: Duration = Duration::from_secs(6 * 60);
/// How often an events.k8s.io/v1 recorder writes the counts of its open series
/// (`refreshTime`).
const SERIES_REFRESH: Duration = Duration::from_secs(30 * 60);

struct Inner {
    client: Client,
    clock: Clock,
    component: String,
    host: String,
    flavor: Flavor,
    /// core/v1: what upstream's EventCorrelator remembers.
    correlator: Mutex<Correlator>,
    /// events.k8s.io/v1: the series so far.
    seen: Mutex<HashMap<Key, Seen>>,
}

/// One recorded event, waiting to be written.
struct Job {
    object: ObjectReference,
    namespace: String,
    type_: EventType,
    reason: String,
    action: String,
    message: String,
    at: chrono::DateTime<chrono::Utc>,
}

impl Recorder {
    /// A core/v1 recorder with `source {component, host}` (controllers, kubelet).
    pub fn core(client: Client, clock: Clock, component: &str, host: &str) -> Self {
        Self::new(client, clock, component, host, Flavor::Core)
    }

    /// An events.k8s.io/v1 recorder (scheduler): `reportingInstance` is `<component>-<host>`.
    pub fn events_v1(client: Client, clock: Clock, component: &str, host: &str) -> Self {
        Self::new(client, clock, component, host, Flavor::EventsV1)
    }

    fn new(client: Client, clock: Clock, component: &str, host: &str, flavor: Flavor) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                clock,
                component: component.to_string(),
                host: host.to_string(),
                flavor,
                correlator: Mutex::new(Correlator::default()),
                seen: Mutex::new(HashMap::new()),
            }),
            queue: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Record an event about `object`. `action` is used by events.k8s.io/v1 only. Returns at
    /// once: the event is written in the background, in order.
    pub async fn record(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        let namespace = object
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let job = Job {
            object: object.clone(),
            namespace,
            type_,
            reason: reason.to_string(),
            action: action.to_string(),
            message: message.to_string(),
            at: self.inner.clock.now(),
        };
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(MAX_QUEUED_EVENTS);
            tokio::spawn(self.inner.clone().write_queue(rx));
            tx
        });
        if let Err(mpsc::error::TrySendError::Full(job)) = queue.try_send(job) {
            tracing::warn!(
                reason = job.reason,
                message = job.message,
                "the events queue is full; dropping an event"
            );
        }
    }
}

impl Inner {
    /// Write queued events in order until every recorder clone is gone; an events.k8s.io/v1
    /// recorder also finishes and refreshes its series on time.
    async fn write_queue(self: Arc<Self>, mut queue: mpsc::Receiver<Job>) {
        let series = matches!(self.flavor, Flavor::EventsV1);
        let mut next_finish =
            self.clock.now() + chrono::Duration::from_std(SERIES_FINISH).unwrap_or_default();
        let mut next_refresh =
            self.clock.now() + chrono::Duration::from_std(SERIES_REFRESH).unwrap_or_default();
        loop {
            let now = self.clock.now();
            let until = |t: chrono::DateTime<chrono::Utc>| (t - now).to_std().unwrap_or_default();
            let tick = until(next_finish.min(next_refresh));
            tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => self.write(job).await,
                    None => return,
                },
                () = self.clock.sleep(tick), if series => {
                    let now = self.clock.now();
                    if now >= next_refresh {
                        self.refresh_series().await;
                        next_refresh = now + chrono::Duration::from_std(SERIES_REFRESH).unwrap_or_default();
                    }
                    if now >= next_finish {
                        self.finish_series(now).await;
                        next_finish = now + chrono::Duration::from_std(SERIES_FINISH).unwrap_or_default();
                    }
                }
            }
        }
    }

    async fn write(&self, job: Job) {
        match self.flavor {
            Flavor::Core => self.record_core(job).await,
            Flavor::EventsV1 => self.record_v1(job).await,
        }
    }

    async fn record_core(&self, job: Job) {
        let Job {
            object,
            namespace,
            type_,
            reason,
            message,
            at,
            ..
        } = job;
        let (object, namespace, reason, message) = (&object, &namespace, &reason[..], &message[..]);
        let candidate = Candidate {
            component: &self.component,
            host: &self.host,
            object,
            type_,
            reason,
            message,
        };
        let outcome = self.correlator.lock().correlate(&candidate, at);
        let Outcome::Write(write) = outcome else {
            tracing::debug!(reason, message, "event dropped by the spam filter");
            return;
        };
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(self.client.clone(), namespace);
        let result = if write.is_update() {
            // What upstream's two-way merge patch holds: the fields that change on a repeat.
            let patch = json!({
                "count": write.count,
                "lastTimestamp": format_time(write.last_timestamp),
                "message": write.message,
            });
            match api
                .patch(
                    &write.name,
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                // Gone (expired, deleted, or never written because the spam filter dropped
                // it): create it, count and all, as upstream does.
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.create_core(&api, object, namespace, type_, reason, &write)
                        .await
                }
                other => other.map(|_| ()),
            }
        } else {
            self.create_core(&api, object, namespace, type_, reason, &write)
                .await
        };
        if let Err(e) = result {
            tracing::warn!(cause = %e, reason, message, "cannot record event");
        }
    }

    async fn create_core(
        &self,
        api: &Api<k8s_openapi::api::core::v1::Event>,
        object: &ObjectReference,
        namespace: &str,
        type_: EventType,
        reason: &str,
        write: &Write,
    ) -> kube::Result<()> {
        let mut event = json!({
            "metadata": {"name": write.name, "namespace": namespace},
            "involvedObject": serde_json::to_value(object).unwrap_or_default(),
            "reason": reason,
            "message": write.message,
            "type": type_.as_str(),
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": format_time(write.first_timestamp),
            "lastTimestamp": format_time(write.last_timestamp),
            "count": write.count,
        });
        // Upstream builds the aggregate event afresh, without the reporting fields.
        if !write.combined {
            event["reportingComponent"] = json!(self.component);
            event["reportingInstance"] = json!(self.host);
        }
        let event = serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
        api.create(&PostParams::default(), &event).await.map(|_| ())
    }

    /// events.k8s.io/v1 as client-go's `tools/events` broadcaster records: the first event is
    /// created; the second like it (same action, reason, regarding object, related object and
    /// note) turns it into a series of 2 at once; later ones only count in the recorder, whose
    /// counts reach the apiserver when the series finishes (no repeat for 6 minutes, looked at
    /// every 6 minutes) or at the 30-minute refresh.
    async fn record_v1(&self, job: Job) {
        let key = Key {
            action: job.action.clone(),
            reason: job.reason.clone(),
            regarding: serde_json::to_string(&job.object).unwrap_or_default(),
            note: job.message.clone(),
        };
        let previous = self.seen.lock().get(&key).cloned();
        let seen = match previous {
            Some(mut seen) if seen.series.is_some() => {
                seen.series = Some((seen.series.map_or(2, |(c, _)| c) + 1, job.at));
                seen
            }
            Some(mut seen) => {
                seen.series = Some((2, job.at));
                if let Err(e) = self.write_series(&seen).await {
                    tracing::warn!(cause = %e, reason = job.reason, message = job.message, "cannot record event");
                    return;
                }
                seen
            }
            None => {
                let seen = Seen {
                    name: event_name(job.object.name.as_deref().unwrap_or_default(), job.at),
                    namespace: job.namespace.clone(),
                    event_time: job.at,
                    series: None,
                    job: Arc::new(job),
                };
                if let Err(e) = self.create_v1(&seen).await {
                    tracing::warn!(cause = %e, reason = seen.job.reason, message = seen.job.message, "cannot record event");
                    return;
                }
                seen
            }
        };
        let mut cache = self.seen.lock();
        // Bounded: forgetting only costs a new event instead of a series bump.
        if cache.len() >= SEEN_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key, seen);
    }

    /// Write every open series' count (client-go's `refreshExistingEventSeries`).
    async fn refresh_series(&self) {
        let open: Vec<Seen> = self
            .seen
            .lock()
            .values()
            .filter(|s| s.series.is_some())
            .cloned()
            .collect();
        for seen in open {
            if let Err(e) = self.write_series(&seen).await {
                tracing::warn!(cause = %e, "cannot refresh an event series");
            }
        }
    }

    /// Write the final count of the series that ended and forget them, and forget single
    /// events older than the finish time (client-go's `finishSeries`).
    async fn finish_series(&self, now: chrono::DateTime<chrono::Utc>) {
        let finish = chrono::Duration::from_std(SERIES_FINISH).unwrap_or_default();
        let mut ended = Vec::new();
        self.seen.lock().retain(|key, seen| match seen.series {
            Some((_, last)) if last < now - finish => {
                ended.push((key.clone(), seen.clone()));
                true
            }
            Some(_) => true,
            None => seen.event_time >= now - finish,
        });
        for (key, seen) in ended {
            match self.write_series(&seen).await {
                Ok(()) => {
                    self.seen.lock().remove(&key);
                }
                Err(e) => tracing::warn!(cause = %e, "cannot finish an event series"),
            }
        }
    }

    async fn create_v1(&self, seen: &Seen) -> kube::Result<()> {
        let job = &seen.job;
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &seen.namespace);
        let mut event = json!({
            "metadata": {"name": seen.name, "namespace": seen.namespace},
            "regarding": serde_json::to_value(&job.object).unwrap_or_default(),
            "reason": job.reason,
            "note": job.message,
            "type": job.type_.as_str(),
            "action": job.action,
            "eventTime": format_micro_time(seen.event_time),
            "reportingController": self.component,
            "reportingInstance": format!("{}-{}", self.component, self.host),
        });
        if let Some((count, last)) = seen.series {
            event["series"] = json!({"count": count, "lastObservedTime": format_micro_time(last)});
        }
        if job.message.is_empty() {
            // `note` is omitempty: an event without one (kube-proxy's Starting) has none.
            if let Some(map) = event.as_object_mut() {
                map.remove("note");
            }
        }
        let event = serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
        api.create(&PostParams::default(), &event).await.map(|_| ())
    }

    /// Patch a series' count and last time onto its event; create it (series and all) when it
    /// is gone, as upstream's `recordEvent` does.
    async fn write_series(&self, seen: &Seen) -> kube::Result<()> {
        let Some((count, last)) = seen.series else {
            return Ok(());
        };
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &seen.namespace);
        let patch =
            json!({"series": {"count": count, "lastObservedTime": format_micro_time(last)}});
        match api
            .patch(
                &seen.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => self.create_v1(seen).await,
            other => other.map(|_| ()),
        }
    }
}

/// An ObjectReference to a Kubernetes object, as events carry it.
pub fn reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
