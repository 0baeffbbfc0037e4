//! The timeline: a watch-driven record of everything that happens in a scenario's scope.
//!
//! One watch per kind (pods, replicasets, deployments, jobs, services, endpoints and events of the
//! scenario's namespace; nodes; the control plane's pods in `kube-system`; with a cluster
//! of its own, the control-plane Leases and the events of them and of the mirror pods in
//! `kube-system` and node events in `default`) feeds one list of [`Entry`]s in arrival order, each with the object's
//! resourceVersion, and a map of every object's latest state. A watch that has to relist records
//! the boundary ([`Change::Relisted`]) and the deletions it missed ([`Change::DeletedWhileAway`]),
//! instead of papering over them.
//!
//! Assertions read the timeline and wait on it ([`Timeline::wait`]); nothing polls the API. Every
//! wait has a deadline in cluster time and, when it passes, says what it expected and what the
//! timeline shows.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Event, Node, Pod, Service};
use kube::api::Api;
use kube::runtime::watcher;
use kube::Resource;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::params::SYSTEM_NAMESPACE;
use crate::clock::Clock;

/// The kinds a timeline watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// core/v1 Pod.
    Pod,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 Deployment.
    Deployment,
    /// core/v1 Service.
    Service,
    /// core/v1 Endpoints.
    Endpoints,
    /// core/v1 Event.
    Event,
    /// core/v1 Node.
    Node,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// batch/v1 Job.
    Job,
}

impl Kind {
    /// The kind's name as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::ReplicaSet => "ReplicaSet",
            Self::Deployment => "Deployment",
            Self::Service => "Service",
            Self::Endpoints => "Endpoints",
            Self::Event => "Event",
            Self::Node => "Node",
            Self::Lease => "Lease",
            Self::Job => "Job",
        }
    }

    /// The kind named `s` (case-insensitive, singular or kubectl's short name).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => Self::Pod,
            "replicaset" | "replicasets" | "rs" => Self::ReplicaSet,
            "deployment" | "deployments" | "deploy" => Self::Deployment,
            "service" | "services" | "svc" => Self::Service,
            "endpoints" | "ep" => Self::Endpoints,
            "event" | "events" | "ev" => Self::Event,
            "node" | "nodes" | "no" => Self::Node,
            "lease" | "leases" => Self::Lease,
            "job" | "jobs" => Self::Job,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object the timeline holds.
#[derive(Clone, Debug)]
pub enum Object {
    /// A Pod.
    Pod(Pod),
    /// A ReplicaSet.
    ReplicaSet(ReplicaSet),
    /// A Deployment.
    Deployment(Deployment),
    /// A Service.
    Service(Service),
    /// An Endpoints.
    Endpoints(Endpoints),
    /// An Event.
    Event(Event),
    /// A Node.
    Node(Node),
    /// A Lease.
    Lease(Lease),
    /// A Job.
    Job(Job),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Pod(_) => Kind::Pod,
            Self::ReplicaSet(_) => Kind::ReplicaSet,
            Self::Deployment(_) => Kind::Deployment,
            Self::Service(_) => Kind::Service,
            Self::Endpoints(_) => Kind::Endpoints,
            Self::Event(_) => Kind::Event,
            Self::Node(_) => Kind::Node,
            Self::Lease(_) => Kind::Lease,
            Self::Job(_) => Kind::Job,
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &kube::api::ObjectMeta {
        match self {
            Self::Pod(o) => &o.metadata,
            Self::ReplicaSet(o) => &o.metadata,
            Self::Deployment(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::Endpoints(o) => &o.metadata,
            Self::Event(o) => &o.metadata,
            Self::Node(o) => &o.metadata,
            Self::Lease(o) => &o.metadata,
            Self::Job(o) => &o.metadata,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The object's uid.
    pub fn uid(&self) -> &str {
        self.meta().uid.as_deref().unwrap_or_default()
    }

    /// The object as JSON (with apiVersion and kind), for artifacts and snapshots.
    pub fn to_json(&self) -> serde_json::Value {
        fn typed<K: Resource<DynamicType = ()> + serde::Serialize>(o: &K) -> serde_json::Value {
            let mut v = serde_json::to_value(o).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("apiVersion".into(), K::api_version(&()).into());
                map.insert("kind".into(), K::kind(&()).into());
            }
            v
        }
        match self {
            Self::Pod(o) => typed(o),
            Self::ReplicaSet(o) => typed(o),
            Self::Deployment(o) => typed(o),
            Self::Service(o) => typed(o),
            Self::Endpoints(o) => typed(o),
            Self::Event(o) => typed(o),
            Self::Node(o) => typed(o),
            Self::Lease(o) => typed(o),
            Self::Job(o) => typed(o),
        }
    }
}

/// An object's identity in the timeline.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.kind.as_str().to_ascii_lowercase(),
            self.name
        )
    }
}

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The object was created (or first seen in the initial list).
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted.
    Deleted,
    /// The watch of this kind lost its place and listed again (a boundary: what happened while
    /// it was away is known only by its result).
    Relisted,
    /// The relist showed that this object was deleted while the watch was away.
    DeletedWhileAway,
}

/// One thing the timeline saw.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Cluster time when the harness saw it.
    pub observed: DateTime<Utc>,
    /// What happened.
    pub change: Change,
    /// To which object (for [`Change::Relisted`], the kind's whole scope: the name is empty).
    pub key: Key,
    /// The object's resourceVersion (as a number where it is one).
    pub resource_version: Option<u64>,
    /// The object after the change (before it, for deletions); `None` for relist boundaries.
    pub object: Option<Arc<Object>>,
}

/// What the timeline has seen so far.
#[derive(Default)]
pub struct State {
    /// Every entry, in arrival order.
    pub entries: Vec<Entry>,
    /// The latest state of every object that exists.
    pub objects: BTreeMap<Key, Arc<Object>>,
    /// Watches whose first list has not finished.
    pending: HashSet<&'static str>,
    /// Objects seen during a relist in progress, per watch.
    relisting: BTreeMap<&'static str, HashSet<Key>>,
}

impl State {
    /// The latest objects of `kind`.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(move |(k, _)| k.kind == kind)
            .map(|(_, o)| o.as_ref())
    }

    /// The latest pods.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.of_kind(Kind::Pod).filter_map(|o| match o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
    }

    /// The latest object of `kind` named `name` in `namespace` ("" for cluster-scoped ones).
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Object> {
        self.objects
            .get(&Key {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
            .map(Arc::as_ref)
    }

    /// Events in arrival order: every version of every Event object the watches delivered.
    pub fn event_entries(&self) -> impl Iterator<Item = (&Entry, &Event)> {
        self.entries
            .iter()
            .filter_map(|e| match e.object.as_deref() {
                Some(Object::Event(ev)) if e.change != Change::Deleted && !is_barrier(ev) => {
                    Some((e, ev))
                }
                _ => None,
            })
    }

    /// The number of entries (a position other readers can wait beyond).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The reason of the Events the harness writes as barriers (see [`Timeline::barrier`]).
pub const BARRIER_REASON: &str = "KubespecBarrier";

/// Whether `ev` is one of the harness's barrier events.
pub fn is_barrier(ev: &Event) -> bool {
    ev.reason.as_deref() == Some(BARRIER_REASON)
}

/// A scenario's timeline. Dropping it stops its watches.
pub struct Timeline {
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    stop: CancellationToken,
    clock: Clock,
    client: kube::Client,
    namespace: String,
    control_plane: bool,
}

/// A wait that ran out.
#[derive(Debug)]
pub struct WaitError {
    /// What was expected.
    pub expected: String,
    /// The deadline, in cluster time.
    pub within: Duration,
    /// What the timeline showed at the end.
    pub saw: String,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {} (cluster time): expected {}\n{}",
            crate::harness::format_duration(self.within),
            self.expected,
            self.saw
        )
    }
}

impl std::error::Error for WaitError {}

/// What a check of the timeline found.
pub enum Check<T> {
    /// The expectation holds.
    Done(T),
    /// It does not hold yet; what was seen instead.
    NotYet(String),
}

impl Timeline {
    /// Start watching the scenario's scope on `client`: `namespace`'s objects, nodes, and (when
    /// `control_plane` is set, for a cluster of its own) the control-plane Leases and the events
    /// of nodes and Leases.
    pub fn start(client: kube::Client, namespace: &str, clock: Clock, control_plane: bool) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (changed, _) = watch::channel(0);
        let stop = CancellationToken::new();
        let t = Self {
            state,
            changed,
            stop,
            clock,
            client: client.clone(),
            namespace: namespace.to_string(),
            control_plane,
        };
        let ns = namespace;
        t.watch::<Pod>(
            "pods",
            Api::namespaced(client.clone(), ns),
            Object::Pod,
            |_| true,
        );
        t.watch::<ReplicaSet>(
            "replicasets",
            Api::namespaced(client.clone(), ns),
            Object::ReplicaSet,
            |_| true,
        );
        t.watch::<Deployment>(
            "deployments",
            Api::namespaced(client.clone(), ns),
            Object::Deployment,
            |_| true,
        );
        t.watch::<Service>(
            "services",
            Api::namespaced(client.clone(), ns),
            Object::Service,
            |_| true,
        );
        t.watch::<Endpoints>(
            "endpoints",
            Api::namespaced(client.clone(), ns),
            Object::Endpoints,
            |_| true,
        );
        t.watch::<Job>(
            "jobs",
            Api::namespaced(client.clone(), ns),
            Object::Job,
            |_| true,
        );
        t.watch::<Event>(
            "events",
            Api::namespaced(client.clone(), ns),
            Object::Event,
            |_| true,
        );
        t.watch::<Node>("nodes", Api::all(client.clone()), Object::Node, |_| true);
        // The control plane's pods (mirror pods, kube-proxy's), wherever the cluster has them.
        t.watch::<Pod>(
            "system-pods",
            Api::namespaced(client.clone(), SYSTEM_NAMESPACE),
            Object::Pod,
            |_| true,
        );
        if control_plane {
            t.watch::<Lease>(
                "leases",
                Api::namespaced(client.clone(), "kube-system"),
                Object::Lease,
                |_| true,
            );
            t.watch::<Event>(
                "system-events",
                Api::namespaced(client.clone(), "kube-system"),
                Object::Event,
                |ev| matches!(ev, Object::Event(e) if matches!(e.involved_object.kind.as_deref(), Some("Lease" | "Pod")) || is_barrier(e)),
            );
            t.watch::<Event>(
                "node-events",
                Api::namespaced(client, "default"),
                Object::Event,
                |ev| matches!(ev, Object::Event(e) if e.involved_object.kind.as_deref() == Some("Node") || is_barrier(e)),
            );
        }
        t
    }

    fn watch<K>(
        &self,
        name: &'static str,
        api: Api<K>,
        wrap: fn(K) -> Object,
        keep: fn(&Object) -> bool,
    ) where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
    {
        self.watch_with(name, api, watcher::Config::default(), wrap, keep);
    }

    fn watch_with<K>(
        &self,
        name: &'static str,
        api: Api<K>,
        config: watcher::Config,
        wrap: fn(K) -> Object,
        keep: fn(&Object) -> bool,
    ) where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
    {
        self.state.lock().pending.insert(name);
        let state = self.state.clone();
        let changed = self.changed.clone();
        let stop = self.stop.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            // Back off on errors as every informer does (kube's default: 800 ms doubling to 30 s
            // of wall time; a lost connection to the reference cluster reconnects at once).
            let stream =
                kube::runtime::WatchStreamExt::default_backoff(watcher::watcher(api, config));
            futures::pin_mut!(stream);
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    e = stream.next() => e,
                };
                let event = match event {
                    None => return,
                    Some(Ok(e)) => e,
                    Some(Err(e)) => {
                        tracing::debug!(watch = name, cause = %e, "timeline watch error; the watcher retries");
                        continue;
                    }
                };
                let now = clock.now();
                let mut s = state.lock();
                match event {
                    watcher::Event::Init => {
                        s.relisting.insert(name, HashSet::new());
                    }
                    watcher::Event::InitApply(o) => {
                        let o = wrap(o);
                        if keep(&o) {
                            let key = key_of(&o);
                            if let Some(seen) = s.relisting.get_mut(name) {
                                seen.insert(key.clone());
                            }
                            apply(&mut s, now, Some(o), key, false);
                        }
                    }
                    watcher::Event::InitDone => {
                        let seen = s.relisting.remove(name).unwrap_or_default();
                        let first = s.pending.remove(name);
                        if !first {
                            let kind_keys: Vec<Key> = s
                                .objects
                                .keys()
                                .filter(|k| watch_owns(name, k) && !seen.contains(k))
                                .cloned()
                                .collect();
                            let seq = s.entries.len() as u64;
                            s.entries.push(Entry {
                                seq,
                                observed: now,
                                change: Change::Relisted,
                                key: Key {
                                    kind: kind_of_watch(name),
                                    namespace: String::new(),
                                    name: String::new(),
                                },
                                resource_version: None,
                                object: None,
                            });
                            for key in kind_keys {
                                let object = s.objects.remove(&key);
                                let seq = s.entries.len() as u64;
                                s.entries.push(Entry {
                                    seq,
                                    observed: now,
                                    change: Change::DeletedWhileAway,
                                    key,
                                    resource_version: None,
                                    object,
                                });
                            }
                        }
                    }
                    watcher::Event::Apply(o) => {
                        let o = wrap(o);
                        if keep(&o) {
                            let key = key_of(&o);
                            apply(&mut s, now, Some(o), key, false);
                        }
                    }
                    watcher::Event::Delete(o) => {
                        let o = wrap(o);
                        if keep(&o) {
                            let key = key_of(&o);
                            apply(&mut s, now, Some(o), key, true);
                        }
                    }
                }
                let n = s.entries.len() as u64;
                drop(s);
                changed.send_replace(n);
            }
        });
    }

    /// The cluster clock the timeline stamps entries with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether the events of Nodes and control-plane Leases are watched (only on targets that
    /// run a cluster per scenario: on a shared cluster they belong to everyone).
    pub fn watches_control_plane(&self) -> bool {
        self.control_plane
    }

    /// The deadline of the harness's own waits (its watches listing, reading its writes,
    /// barriers): 30 s of wall time, in cluster time. They wait on the machine, not on the
    /// cluster's story, so they must not shrink as the clock speeds up.
    pub fn internal_deadline(&self) -> Duration {
        Duration::from_secs_f64(30.0 * self.clock.scale())
    }

    /// Read the state.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock())
    }

    /// Wait until every watch has finished its first list.
    ///
    /// # Errors
    /// [`WaitError`] when that takes longer than [`Self::internal_deadline`].
    pub async fn synced(&self) -> Result<(), WaitError> {
        let within = self.internal_deadline();
        self.wait(
            within,
            "the timeline's watches to list their objects",
            |s| {
                if s.pending.is_empty() {
                    Check::Done(())
                } else {
                    let mut p: Vec<_> = s.pending.iter().copied().collect();
                    p.sort_unstable();
                    Check::NotYet(format!("still listing: {}", p.join(", ")))
                }
            },
        )
        .await
    }

    /// Wait until `check` finds what it looks for, at most `within` of cluster time; the check
    /// runs now and after every change the timeline sees.
    ///
    /// # Errors
    /// [`WaitError`] with `expected` and what the last check saw.
    pub async fn wait<T>(
        &self,
        within: Duration,
        expected: &str,
        mut check: impl FnMut(&State) -> Check<T>,
    ) -> Result<T, WaitError> {
        let mut changes = self.changed.subscribe();
        let now = tokio::time::Instant::now();
        // A deadline past what the clock can hold is no deadline worth keeping apart.
        let deadline = now
            .checked_add(self.clock.to_wall(within))
            .unwrap_or_else(|| now + Duration::from_secs(366 * 24 * 3600));
        loop {
            let saw = match check(&self.state.lock()) {
                Check::Done(v) => return Ok(v),
                Check::NotYet(saw) => saw,
            };
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return Err(WaitError { expected: expected.into(), within, saw: format!("{saw}\n(the timeline stopped)") });
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // One last look: a change may have landed with the deadline.
                    return match check(&self.state.lock()) {
                        Check::Done(v) => Ok(v),
                        Check::NotYet(saw) => Err(WaitError { expected: expected.into(), within, saw }),
                    };
                }
            }
        }
    }

    /// Read your writes: wait until the timeline has seen `kind` `namespace`/`name` at
    /// resourceVersion `rv` or later (or learnt from a relist that it was deleted since), so
    /// that a check after a write sees the write.
    ///
    /// # Errors
    /// [`WaitError`] when that takes longer than [`Self::internal_deadline`].
    pub async fn seen(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        rv: Option<&str>,
    ) -> Result<(), WaitError> {
        let Some(rv) = rv.and_then(|r| r.parse::<u64>().ok()) else {
            return Ok(());
        };
        let key = Key {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let from = self.state.lock().entries.len();
        let within = self.internal_deadline();
        self.wait(
            within,
            &format!("the timeline to see {key} at resourceVersion {rv}"),
            |s| {
                let seen = s.entries.iter().rev().any(|e| {
                    e.key == key
                        && (e.resource_version.is_some_and(|r| r >= rv)
                            || (e.change == Change::DeletedWhileAway && e.seq >= from as u64))
                });
                if seen {
                    Check::Done(())
                } else {
                    Check::NotYet("its watch has not delivered the write yet".into())
                }
            },
        )
        .await
    }

    /// A positive barrier for checks that something did *not* happen: write an Event into
    /// every namespace whose events the timeline watches and wait until each has arrived. Each
    /// events watch delivers in resourceVersion order, so every Event written before the
    /// barrier has arrived too.
    ///
    /// # Errors
    /// When a barrier cannot be written or is not seen within [`Self::internal_deadline`].
    pub async fn barrier(&self) -> Result<(), String> {
        let mut namespaces = vec![self.namespace.clone()];
        if self.control_plane {
            for ns in ["kube-system", "default"] {
                // The scenario's own namespace may be one of them: one event each.
                if !namespaces.iter().any(|n| n == ns) {
                    namespaces.push(ns.to_string());
                }
            }
        }
        let name = format!("kubespec-barrier.{:x}", rand::random::<u64>());
        let now = crate::clock::format_micro_time(self.clock.now());
        for ns in &namespaces {
            let event: Event = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": "ConfigMap", "apiVersion": "v1", "namespace": ns, "name": "kubespec-barrier"},
                "reason": BARRIER_REASON,
                "message": "The harness waits until it has seen everything written before this event.",
                "type": "Normal",
                "source": {"component": "kubespec"},
                "reportingComponent": "kubespec",
                "reportingInstance": "kubespec",
                "eventTime": now,
                "action": "Barrier",
            }))
            .map_err(|e| e.to_string())?;
            Api::<Event>::namespaced(self.client.clone(), ns)
                .create(&Default::default(), &event)
                .await
                .map_err(|e| format!("cannot write the barrier event in {ns}: {e}"))?;
        }
        let result = self
            .wait(
                self.internal_deadline(),
                "the timeline to see its barrier events",
                |s| {
                    let missing: Vec<&String> = namespaces
                        .iter()
                        .filter(|ns| {
                            !s.objects.contains_key(&Key {
                                kind: Kind::Event,
                                namespace: ns.to_string(),
                                name: name.clone(),
                            })
                        })
                        .collect();
                    if missing.is_empty() {
                        Check::Done(())
                    } else {
                        Check::NotYet(format!("no barrier event yet from {missing:?}"))
                    }
                },
            )
            .await;
        for ns in &namespaces {
            let _ = Api::<Event>::namespaced(self.client.clone(), ns)
                .delete(&name, &Default::default())
                .await;
        }
        result.map_err(|e| e.to_string())
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn key_of(o: &Object) -> Key {
    let meta = o.meta();
    Key {
        kind: o.kind(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

fn kind_of_watch(watch: &str) -> Kind {
    match watch {
        "pods" => Kind::Pod,
        "replicasets" => Kind::ReplicaSet,
        "deployments" => Kind::Deployment,
        "services" => Kind::Service,
        "endpoints" => Kind::Endpoints,
        "nodes" => Kind::Node,
        "leases" => Kind::Lease,
        "jobs" => Kind::Job,
        _ => Kind::Event,
    }
}

/// Whether `key` is in the scope of the watch `name` (for deletions inferred from a relist).
fn watch_owns(name: &str, key: &Key) -> bool {
    match name {
        "system-events" => key.kind == Kind::Event && key.namespace == SYSTEM_NAMESPACE,
        "system-pods" => key.kind == Kind::Pod && key.namespace == SYSTEM_NAMESPACE,
        "pods" => key.kind == Kind::Pod && key.namespace != SYSTEM_NAMESPACE,
        "node-events" => key.kind == Kind::Event && key.namespace == "default",
        "events" => {
            key.kind == Kind::Event && key.namespace != "kube-system" && key.namespace != "default"
        }
        other => key.kind == kind_of_watch(other),
    }
}

fn apply(s: &mut State, now: DateTime<Utc>, object: Option<Object>, key: Key, deleted: bool) {
    let rv = object
        .as_ref()
        .and_then(|o| o.meta().resource_version.as_deref()?.parse().ok());
    let previous = s.objects.get(&key).cloned();
    let object = object.map(Arc::new);
    let change = if deleted {
        s.objects.remove(&key);
        Change::Deleted
    } else {
        // A relist delivers unchanged objects again: record only what changed.
        if let (Some(prev), Some(o)) = (&previous, &object) {
            if prev.meta().resource_version == o.meta().resource_version {
                return;
            }
        }
        if let Some(o) = &object {
            s.objects.insert(key.clone(), o.clone());
        }
        if previous.is_some() {
            Change::Modified
        } else {
            Change::Added
        }
    };
    let seq = s.entries.len() as u64;
    s.entries.push(Entry {
        seq,
        observed: now,
        change,
        key,
        resource_version: rv,
        object,
    });
}
