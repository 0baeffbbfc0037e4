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

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;

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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    name: String,
    namespace: String,
    field_path: String,
    type_: EventType,
    reason: String,
    message: String,
}

#[derive(Clone, Debug)]
struct Seen {
    name: String,
    namespace: String,
    count: i32,
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Core,
    EventsV1,
}

/// Records Events about objects on behalf of one component instance. Clones share their state.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    clock: Clock,
    component: String,
    host: String,
    flavor: Flavor,
    /// core/v1: what upstream's EventCorrelator remembers.
    correlator: Arc<Mutex<Correlator>>,
    /// core/v1: one write at a time, in the order the correlator saw the events, as upstream's
    /// broadcaster writes them (else a count bump could overtake the write it follows).
    turn: Arc<tokio::sync::Mutex<()>>,
    /// events.k8s.io/v1: the series so far.
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
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
            client,
            clock,
            component: component.to_string(),
            host: host.to_string(),
            flavor,
            correlator: Arc::new(Mutex::new(Correlator::default())),
            turn: Arc::new(tokio::sync::Mutex::new(())),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Record an event about `object`. `action` is used by events.k8s.io/v1 only.
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
        match self.flavor {
            Flavor::Core => {
                self.record_core(object, &namespace, type_, reason, message)
                    .await
            }
            Flavor::EventsV1 => {
                self.record_v1(object, namespace, type_, reason, action, message)
                    .await
            }
        }
    }

    async fn record_core(
        &self,
        object: &ObjectReference,
        namespace: &str,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let _turn = self.turn.lock().await;
        let candidate = Candidate {
            component: &self.component,
            host: &self.host,
            object,
            type_,
            reason,
            message,
        };
        let outcome = self
            .correlator
            .lock()
            .correlate(&candidate, self.clock.now());
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

    async fn record_v1(
        &self,
        object: &ObjectReference,
        namespace: String,
        type_: EventType,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        let key = Key {
            uid: object.uid.clone().unwrap_or_default(),
            name: object.name.clone().unwrap_or_default(),
            namespace: namespace.clone(),
            field_path: object.field_path.clone().unwrap_or_default(),
            type_,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let now = self.clock.now();
        let previous = self.seen.lock().get(&key).cloned();
        let result = match previous {
            Some(seen) => self.repeat_v1(&seen, now).await.map(|_| Seen {
                count: seen.count + 1,
                ..seen
            }),
            None => {
                let name = event_name(&key.name, now);
                self.create_v1(
                    &name, &namespace, object, type_, reason, action, message, now,
                )
                .await
                .map(|_| Seen {
                    name,
                    namespace,
                    count: 1,
                })
            }
        };
        match result {
            Ok(seen) => {
                let mut cache = self.seen.lock();
                // Bounded: forgetting only costs a new event instead of a series bump.
                if cache.len() >= SEEN_CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(key, seen);
            }
            Err(e) => tracing::warn!(cause = %e, reason, message, "cannot record event"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_v1(
        &self,
        name: &str,
        namespace: &str,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        message: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> kube::Result<()> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), namespace);
        let event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "regarding": serde_json::to_value(object).unwrap_or_default(),
            "reason": reason,
            "note": message,
            "type": type_.as_str(),
            "action": action,
            "eventTime": format_micro_time(now),
            "reportingController": self.component,
            "reportingInstance": format!("{}-{}", self.component, self.host),
        }))
        .map_err(kube::Error::SerdeError)?;
        api.create(&PostParams::default(), &event).await.map(|_| ())
    }

    async fn repeat_v1(&self, seen: &Seen, now: chrono::DateTime<chrono::Utc>) -> kube::Result<()> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &seen.namespace);
        let patch = json!({"series": {"count": seen.count + 1, "lastObservedTime": format_micro_time(now)}});
        api.patch(&seen.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
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
