//! The client-side runtime every API client of the cluster shares (controllers, scheduler,
//! kubelet and the harness), shaped like upstream's shared informers and work queues: an
//! [`Informer`] keeps a watch-fed cache of one resource and tells subscribers what changed; a
//! [`WorkQueue`] holds object keys to reconcile, never the same key twice at once, with delayed
//! re-adds on the cluster clock.
//!
//! [`supervise`] keeps control loops alive: a sync that fails or panics on one key is logged
//! with that key and retried with back-off while the other keys go on, and a loop that dies is
//! restarted, with [`Health`] saying so meanwhile.
//!
//! It talks to the apiserver only through a kube client, and must not import any component.

mod supervise;

pub use supervise::{panic_message, reconcile, supervise, Health};

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// A change an informer saw.
#[derive(Debug)]
pub enum Change<K> {
    /// The object was added or modified (or listed again).
    Applied(Arc<K>),
    /// The object was deleted; the last state seen.
    Deleted(Arc<K>),
    /// The informer relisted; subscribers should look at everything again.
    Resync,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Applied(k) => Self::Applied(k.clone()),
            Self::Deleted(k) => Self::Deleted(k.clone()),
            Self::Resync => Self::Resync,
        }
    }
}

/// A watch-fed cache of one resource.
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            changes: self.changes.clone(),
        }
    }
}

/// The informers of one component, shared by its control loops (upstream's shared informer
/// factory): one watch and one cache per resource (and namespace), however many loops read it.
/// They run until the factory's `shutdown`; a loop that subscribes late finds the cache filled
/// (every loop starts by looking at the whole cache).
#[derive(Clone)]
pub struct Informers {
    client: kube::Client,
    shutdown: CancellationToken,
    started: Arc<Mutex<HashMap<(std::any::TypeId, String), Box<dyn std::any::Any + Send + Sync>>>>,
}

impl Informers {
    /// A factory whose informers watch through `client` until `shutdown`.
    pub fn new(client: kube::Client, shutdown: CancellationToken) -> Self {
        Self {
            client,
            shutdown,
            started: Arc::default(),
        }
    }

    /// The informer of every `K` in the cluster, started on first use.
    pub fn all<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.shared(String::new(), || Api::all(self.client.clone()))
    }

    /// The informer of every `K` (as [`Informers::all`]) and a subscription to its changes from
    /// now on: how a control loop starts, subscribing before it waits for the cache
    /// ([`Informer::ready`]) so that no change after the first list escapes it.
    pub fn subscribe_all<K>(&self) -> (Informer<K>, broadcast::Receiver<Change<K>>)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let informer = self.all::<K>();
        let changes = informer.subscribe();
        (informer, changes)
    }

    /// The informer of the `K`s in `namespace`, started on first use.
    pub fn namespaced<K>(&self, namespace: &str) -> Informer<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        self.shared(namespace.to_string(), || {
            Api::namespaced(self.client.clone(), namespace)
        })
    }

    fn shared<K>(&self, scope: String, api: impl FnOnce() -> Api<K>) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut started = self.started.lock();
        let key = (std::any::TypeId::of::<K>(), scope);
        if let Some(informer) = started
            .get(&key)
            .and_then(|i| i.downcast_ref::<Informer<K>>())
        {
            return informer.clone();
        }
        let informer = Informer::start(api(), watcher::Config::default(), self.shutdown.clone());
        started.insert(key, Box::new(informer.clone()));
        informer
    }

    /// How many informers (watches) are running.
    pub fn len(&self) -> usize {
        self.started.lock().len()
    }

    /// Whether none is running yet.
    pub fn is_empty(&self) -> bool {
        self.started.lock().is_empty()
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Start watching `api` (with `config`) until `shutdown`.
    pub fn start(api: Api<K>, config: watcher::Config, shutdown: CancellationToken) -> Self {
        let (reader, writer) = reflector::store();
        // Subscribers that fall this far behind resync from the cache instead.
        let (changes, _) = broadcast::channel(1024);
        let tx = changes.clone();
        let cache = reader.clone();
        let stream = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = stream.next() => next,
                };
                let change = match next {
                    None => break,
                    // The cache's own copy (the reflector stored it just now), so subscribers
                    // that keep the object do not hold a second one.
                    Some(Ok(Event::Apply(o))) => Change::Applied(
                        cache
                            .get(&ObjectRef::from_obj(&o))
                            .unwrap_or_else(|| Arc::new(o)),
                    ),
                    Some(Ok(Event::Delete(o))) => Change::Deleted(Arc::new(o)),
                    Some(Ok(Event::InitDone)) => Change::Resync,
                    Some(Ok(Event::Init | Event::InitApply(_))) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), cause = %e, "watch error; the watcher retries");
                        continue;
                    }
                };
                let _ = tx.send(change);
            }
        });
        Self {
            store: reader,
            changes,
        }
    }

    /// The cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    /// Wait until the first list has filled the cache.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }
}

/// Keys waiting to be reconciled. A key is never handed to two workers at once; a key added
/// while it is being processed is handed out again once it is done.
pub struct WorkQueue<T: Clone + Eq + Hash + Send + 'static> {
    state: Mutex<QueueState<T>>,
    notify: Notify,
    clock: Clock,
}

struct QueueState<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    /// Consecutive failures per key, for back-off.
    failures: HashMap<T, u32>,
    shut: bool,
}

/// The first retry delay after a failure; it doubles per consecutive failure (client-go's
/// default controller rate limiter: 5 ms doubling up to 1000 s).
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1000);

impl<T: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<T> {
    /// An empty queue whose delays run on `clock`.
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(QueueState {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut: false,
            }),
            notify: Notify::new(),
            clock,
        })
    }

    /// Queue `key` unless it is already waiting.
    pub fn add(&self, key: T) {
        let mut s = self.state.lock();
        if s.shut || !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queue `key` after `delay` of cluster time.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            queue.clock.sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queue `key` again after a failure, later with every consecutive failure.
    pub fn add_rate_limited(self: &Arc<Self>, key: T) {
        let failures = {
            let mut s = self.state.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.add_after(key, backoff(failures));
    }

    /// Forget `key`'s failures: its next failure starts the back-off again.
    pub fn forget(&self, key: &T) {
        self.state.lock().failures.remove(key);
    }

    /// The next key to process; `None` once the queue is shut down.
    pub async fn next(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock();
                if s.shut {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Mark `key` processed; re-queue it if it was added meanwhile.
    pub fn done(&self, key: &T) {
        let mut s = self.state.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Stop handing out keys.
    pub fn shut_down(&self) {
        self.state.lock().shut = true;
        self.notify.notify_waiters();
    }
}

/// The retry delay after `failures` consecutive failures (1 or more).
fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE
        .checked_mul(2u32.saturating_pow(failures.saturating_sub(1).min(31)))
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

/// `namespace/name` of an object, the key controllers queue.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or_default()),
        None => meta.name.clone().unwrap_or_default(),
    }
}

/// Split a `namespace/name` key.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(
    meta: &kube::api::ObjectMeta,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_never_processed_twice_at_once() {
        let q = WorkQueue::new(Clock::real());
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        let first = q.next().await.unwrap();
        assert_eq!(first, "a");
        q.add("a".to_string()); // while processing: held back
        assert_eq!(q.next().await.unwrap(), "b");
        q.done(&"b".to_string());
        q.done(&first); // re-queued now
        assert_eq!(q.next().await.unwrap(), "a");
    }

    #[tokio::test]
    async fn delayed_adds_use_the_cluster_clock() {
        let q = WorkQueue::new(Clock::new(1000.0));
        q.add_after("x".to_string(), Duration::from_secs(10)); // 10 ms of wall time
        let got = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("x"));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(12), Duration::from_millis(10_240));
        assert_eq!(backoff(30), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[tokio::test]
    async fn a_failed_key_comes_back_and_success_forgets_its_failures() {
        let q = WorkQueue::new(Clock::new(1000.0));
        q.add_rate_limited("x".to_string());
        q.add_rate_limited("x".to_string());
        assert_eq!(q.state.lock().failures.get("x"), Some(&2));
        let got = tokio::time::timeout(Duration::from_secs(2), q.next()).await;
        assert_eq!(got.unwrap().as_deref(), Some("x"));
        q.forget(&"x".to_string());
        assert!(!q.state.lock().failures.contains_key("x"));
    }

    #[test]
    fn keys_split_back() {
        assert_eq!(split_key("ns/web"), (Some("ns"), "web"));
        assert_eq!(split_key("node-1"), (None, "node-1"));
    }
}
