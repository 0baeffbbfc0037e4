//! The in-memory store: a map of current objects plus a bounded history of writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::{Draft, Error, Event, EventType, List, Object, Result, Revision, Store, WatchStream};

/// How many events a watch takes from the history under one lock.
const WATCH_BATCH: usize = 256;

/// An in-memory [`Store`] whose history keeps the last `history_limit` writes, and no more of
/// them than fit in its byte bound.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    // A plain (parking_lot) mutex: critical sections are short and never await.
    state: Mutex<State>,
    latest: watch::Sender<Revision>,
    history_limit: usize,
    /// The most bytes of objects the history holds.
    history_bytes: usize,
}

/// The default bound on the bytes of objects a history holds.
pub const DEFAULT_HISTORY_BYTES: usize = 128 * 1024 * 1024;

#[derive(Default)]
struct State {
    revision: Revision,
    objects: BTreeMap<String, Arc<Object>>,
    /// Writes with contiguous revisions, oldest first.
    history: VecDeque<Event>,
    /// The bytes of the objects in `history`.
    history_bytes: usize,
}

impl State {
    /// The oldest revision a watch may start after, or a list may be served at.
    fn oldest(&self) -> Revision {
        match self.history.front() {
            Some(first) => first.revision - 1,
            None => self.revision,
        }
    }

    /// Keep `event`, then forget the oldest writes beyond `limit` writes or `bytes` bytes (the
    /// newest write is always kept). A watch from a forgotten revision gets 410 Expired.
    ///
    /// Only each write's new object is counted: the object it replaced is shared with the
    /// write before it while that one is kept, and past the oldest kept write it is one object
    /// per key at most, so the history holds little more than `bytes` in practice (at worst,
    /// when every kept write replaced an object written before the history starts, twice).
    fn record(&mut self, event: Event, limit: usize, bytes: usize) {
        self.history_bytes = self.history_bytes.saturating_add(event.object.json.len());
        self.history.push_back(event);
        while self.history.len() > limit || (self.history_bytes > bytes && self.history.len() > 1) {
            if let Some(old) = self.history.pop_front() {
                self.history_bytes = self.history_bytes.saturating_sub(old.object.json.len());
            }
        }
    }
}

impl MemoryStore {
    /// A store that keeps the last `history_limit` writes for watches to resume from (at most
    /// [`DEFAULT_HISTORY_BYTES`] of them).
    pub fn new(history_limit: usize) -> Self {
        Self::with_limits(history_limit, DEFAULT_HISTORY_BYTES)
    }

    /// A store that keeps the last `history_limit` writes, and no more than `history_bytes`
    /// bytes of objects, for watches to resume from.
    pub fn with_limits(history_limit: usize, history_bytes: usize) -> Self {
        let (latest, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                // The history's ring is sized up front (up to a bound): growing it under the
                // lock would stall every writer and watcher while it copies.
                state: Mutex::new(State {
                    history: VecDeque::with_capacity(history_limit.clamp(1, 1 << 17)),
                    ..State::default()
                }),
                latest,
                history_limit: history_limit.max(1),
                history_bytes,
            }),
        }
    }

    fn write(
        &self,
        key: &str,
        kind: EventType,
        object: Arc<Object>,
        prev: Option<Arc<Object>>,
        state: &mut State,
    ) {
        let revision = object.mod_revision;
        state.revision = revision;
        match kind {
            EventType::Deleted => {
                state.objects.remove(key);
            }
            EventType::Added | EventType::Modified => {
                state.objects.insert(key.to_string(), object.clone());
            }
        }
        state.record(
            Event {
                revision,
                key: Arc::from(key),
                kind,
                object,
                prev,
            },
            self.inner.history_limit,
            self.inner.history_bytes,
        );
    }

    fn check_expected(key: &str, current: &Object, expected: Option<Revision>) -> Result<()> {
        match expected {
            Some(expected) if expected != current.mod_revision => Err(Error::Conflict {
                key: key.to_string(),
                expected,
                actual: current.mod_revision,
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<Object>>> {
        Ok(self.inner.state.lock().objects.get(key).cloned())
    }

    async fn list(&self, prefix: &str, revision: Option<Revision>) -> Result<List> {
        let state = self.inner.state.lock();
        let current: BTreeMap<&str, &Arc<Object>> = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let at = match revision {
            Some(r) if r < state.revision => r,
            _ => {
                return Ok(List {
                    items: current.into_values().cloned().collect(),
                    revision: state.revision,
                })
            }
        };
        if at < state.oldest() {
            return Err(Error::Expired {
                requested: at,
                oldest: state.oldest(),
            });
        }
        // Undo the writes after `at`, newest first.
        let mut items = current;
        for event in state.history.iter().rev().take_while(|e| e.revision > at) {
            if !event.key.starts_with(prefix) {
                continue;
            }
            match (&event.kind, &event.prev) {
                (EventType::Added, _) => {
                    items.remove(&*event.key);
                }
                (_, Some(prev)) => {
                    items.insert(&event.key, prev);
                }
                (_, None) => {}
            }
        }
        Ok(List {
            items: items.into_values().cloned().collect(),
            revision: at,
        })
    }

    async fn create(&self, key: &str, draft: Draft) -> Result<Arc<Object>> {
        let mut state = self.inner.state.lock();
        if state.objects.contains_key(key) {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let revision = state.revision + 1;
        let object = Arc::new(draft.stamp(revision, revision));
        self.write(key, EventType::Added, object.clone(), None, &mut state);
        drop(state);
        self.inner.latest.send_replace(revision);
        Ok(object)
    }

    async fn update(
        &self,
        key: &str,
        draft: Draft,
        expected: Option<Revision>,
    ) -> Result<Arc<Object>> {
        let mut state = self.inner.state.lock();
        let prev = state
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })?;
        Self::check_expected(key, &prev, expected)?;
        let revision = state.revision + 1;
        let object = Arc::new(draft.stamp(prev.create_revision, revision));
        self.write(
            key,
            EventType::Modified,
            object.clone(),
            Some(prev),
            &mut state,
        );
        drop(state);
        self.inner.latest.send_replace(revision);
        Ok(object)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Arc<Object>> {
        let mut state = self.inner.state.lock();
        let prev = state
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })?;
        Self::check_expected(key, &prev, expected)?;
        let revision = state.revision + 1;
        let object = Arc::new(prev.restamp(revision));
        self.write(
            key,
            EventType::Deleted,
            object.clone(),
            Some(prev),
            &mut state,
        );
        drop(state);
        self.inner.latest.send_replace(revision);
        Ok(object)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        {
            let state = self.inner.state.lock();
            if after < state.oldest() {
                return Err(Error::Expired {
                    requested: after,
                    oldest: state.oldest(),
                });
            }
        }
        let cursor = WatchCursor {
            inner: self.inner.clone(),
            latest: self.inner.latest.subscribe(),
            prefix: prefix.to_string(),
            after,
            pending: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(
            cursor,
            |mut cursor| async move {
                let item = cursor.next().await?;
                Some((item, cursor))
            },
        )))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.inner.state.lock();
        while state.history.front().is_some_and(|e| e.revision < revision) {
            if let Some(old) = state.history.pop_front() {
                state.history_bytes = state.history_bytes.saturating_sub(old.object.json.len());
            }
        }
        drop(state);
        // Wake watchers, so one still reading the forgotten writes learns it at once.
        self.inner.latest.send_modify(|_| {});
        Ok(())
    }

    fn current_revision(&self) -> Revision {
        self.inner.state.lock().revision
    }
}

/// The state of one watch: the last revision it has looked at and events it has yet to yield.
struct WatchCursor {
    inner: Arc<Inner>,
    latest: watch::Receiver<Revision>,
    prefix: String,
    after: Revision,
    pending: VecDeque<Event>,
    done: bool,
}

impl WatchCursor {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            // Mark the latest revision seen *before* scanning, so a write that lands after the
            // scan wakes `changed()` below.
            self.latest.borrow_and_update();
            {
                let state = self.inner.state.lock();
                if self.after < state.oldest() {
                    self.done = true;
                    return Some(Err(Error::Expired {
                        requested: self.after,
                        oldest: state.oldest(),
                    }));
                }
                if let Some(first) = state.history.front() {
                    let start =
                        self.after.saturating_add(1).saturating_sub(first.revision) as usize;
                    for event in state.history.iter().skip(start).take(WATCH_BATCH) {
                        self.after = event.revision;
                        if event.key.starts_with(&self.prefix) {
                            self.pending.push_back(event.clone());
                        }
                    }
                }
            }
            if self.pending.is_empty() && self.latest.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// What every store promises is tested against each backend in tests/store.rs; these are the
/// memory store's own bounds.
#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::store::Attrs;

    fn d(value: serde_json::Value) -> Draft {
        Draft::new(value, Attrs::default()).unwrap()
    }

    #[tokio::test]
    async fn watch_resumes_from_history_and_expires_when_compacted() {
        let store = MemoryStore::new(3);
        for i in 0..5 {
            store
                .create(&format!("/registry/pods/ns/p{i}"), d(json!({})))
                .await
                .unwrap();
        }
        // History holds revisions 3..=5, so a watch may start after 2.
        let mut w = store.watch("/registry/pods/", 2).await.unwrap();
        let mut seen = vec![];
        for _ in 0..3 {
            seen.push(w.next().await.unwrap().unwrap().revision);
        }
        assert_eq!(seen, vec![3, 4, 5]);
        assert!(matches!(
            store.watch("/registry/pods/", 1).await,
            Err(Error::Expired {
                requested: 1,
                oldest: 2
            })
        ));
        assert!(matches!(
            store.list("/registry/pods/", Some(1)).await,
            Err(Error::Expired { .. })
        ));
    }

    #[tokio::test]
    async fn the_history_is_bounded_in_bytes_too() {
        // Room for 100 writes but only ~3 objects of 1 KiB: big writes push old ones out.
        let store = MemoryStore::with_limits(100, 3 * 1024 + 512);
        let big = "x".repeat(1024);
        for i in 0..10 {
            store
                .create(
                    &format!("/registry/configmaps/ns/c{i}"),
                    d(json!({"data": big})),
                )
                .await
                .unwrap();
        }
        let state = store.inner.state.lock();
        assert_eq!(state.history.len(), 3, "{}", state.history_bytes);
        assert!(state.history_bytes <= 3 * 1024 + 512);
        drop(state);
        assert!(matches!(
            store.watch("/registry/configmaps/", 5).await,
            Err(Error::Expired { .. })
        ));
        assert!(store.watch("/registry/configmaps/", 7).await.is_ok());
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_gets_expired() {
        let store = MemoryStore::new(2);
        let mut w = store.watch("/registry/", 0).await.unwrap();
        for i in 0..5 {
            store
                .create(&format!("/registry/x/{i}"), d(json!({})))
                .await
                .unwrap();
        }
        assert!(matches!(w.next().await, Some(Err(Error::Expired { .. }))));
        assert!(w.next().await.is_none());
    }
}
