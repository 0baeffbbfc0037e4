//! Event recorders as upstream components use them, writing through the API like any client.
//!
//! - [`Recorder::core`]: the core/v1 recorder of controllers and the kubelet (`source`,
//!   `firstTimestamp`/`lastTimestamp`, `count`; an identical repeat is PATCHed with count+1).
//! - [`Recorder::events_v1`]: the events.k8s.io/v1 recorder of the scheduler (`reportingController`,
//!   `reportingInstance`, `action`, `eventTime`; repeats grow a `series`).
//!
//! Recording never fails the caller: a write that fails is logged and dropped, as upstream's
//! broadcaster does.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;

use crate::clock::{format_micro_time, format_time, Clock};

/// How many distinct events a recorder remembers for aggregation.
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

/// Records Events about objects on behalf of one component instance.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    clock: Clock,
    component: String,
    host: String,
    flavor: Flavor,
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
            Some(seen) => self.repeat(&seen, now).await.map(|_| Seen {
                count: seen.count + 1,
                ..seen
            }),
            None => {
                let name = format!(
                    "{}.{:x}",
                    key.name,
                    now.timestamp_nanos_opt().unwrap_or_default()
                );
                self.create(
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
                // Bounded, like upstream's LRU of 4096 events: forgetting only costs a new event
                // instead of a count bump.
                if cache.len() >= SEEN_CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(key, seen);
            }
            Err(e) => tracing::warn!(cause = %e, reason, message, "cannot record event"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create(
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
        let regarding = serde_json::to_value(object).unwrap_or_default();
        match self.flavor {
            Flavor::Core => {
                let api: Api<k8s_openapi::api::core::v1::Event> =
                    Api::namespaced(self.client.clone(), namespace);
                let event = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": regarding,
                    "reason": reason,
                    "message": message,
                    "type": type_.as_str(),
                    "source": {"component": self.component, "host": self.host},
                    "firstTimestamp": format_time(now),
                    "lastTimestamp": format_time(now),
                    "count": 1,
                    "reportingComponent": self.component,
                    "reportingInstance": self.host,
                }))
                .map_err(kube::Error::SerdeError)?;
                api.create(&PostParams::default(), &event).await.map(|_| ())
            }
            Flavor::EventsV1 => {
                let api: Api<k8s_openapi::api::events::v1::Event> =
                    Api::namespaced(self.client.clone(), namespace);
                let event = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": namespace},
                    "regarding": regarding,
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
        }
    }

    async fn repeat(&self, seen: &Seen, now: chrono::DateTime<chrono::Utc>) -> kube::Result<()> {
        let params = PatchParams::default();
        match self.flavor {
            Flavor::Core => {
                let api: Api<k8s_openapi::api::core::v1::Event> =
                    Api::namespaced(self.client.clone(), &seen.namespace);
                let patch = json!({"count": seen.count + 1, "lastTimestamp": format_time(now)});
                api.patch(&seen.name, &params, &Patch::Strategic(patch))
                    .await
                    .map(|_| ())
            }
            Flavor::EventsV1 => {
                let api: Api<k8s_openapi::api::events::v1::Event> =
                    Api::namespaced(self.client.clone(), &seen.namespace);
                let patch = json!({"series": {"count": seen.count + 1, "lastObservedTime": format_micro_time(now)}});
                api.patch(&seen.name, &params, &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
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
