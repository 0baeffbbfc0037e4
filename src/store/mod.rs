//! The versioned key/value store behind the apiserver.
//!
//! One global revision counts every write. An object's `metadata.resourceVersion` is the revision
//! that last wrote it (the store stamps it, as upstream's etcd3 storage does with its versioner).
//! Lists are consistent at one revision, watches resume from any revision still in the bounded
//! history, and writes can compare-and-swap on the revision the writer last saw.
//!
//! Keys follow Kubernetes' etcd layout: `/registry/<resource>/<namespace>/<name>` for namespaced
//! objects and `/registry/<resource>/<name>` for cluster-scoped ones.
//!
//! This module knows no HTTP and no Kubernetes kinds; only the apiserver may use it.

mod memory;

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;

pub use memory::MemoryStore;

/// A store revision. Revision 0 means "nothing written yet".
pub type Revision = u64;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No object lives at the key.
    #[error("key {key} not found")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },
    /// An object already lives at the key (create).
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key that was written.
        key: String,
    },
    /// The object changed since the revision the writer expected.
    #[error("key {key} is at revision {actual}, not {expected}")]
    Conflict {
        /// The key that was written.
        key: String,
        /// The revision the writer expected.
        expected: Revision,
        /// The revision the object is at.
        actual: Revision,
    },
    /// The requested revision is older than the retained history.
    #[error("revision {requested} is compacted; the oldest retained is {oldest}")]
    Expired {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision a watch or list may start from.
        oldest: Revision,
    },
    /// The value could not be encoded.
    #[error("cannot encode the value at {key}")]
    Encode {
        /// The key that was written.
        key: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result type of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One stored version of an object: its JSON value and the same value encoded once, so that
/// lists and watches to many clients never encode it again.
#[derive(Debug)]
pub struct Object {
    /// The object, with `metadata.resourceVersion` set to `mod_revision`.
    pub value: Value,
    /// `value` encoded as JSON.
    pub json: Bytes,
    /// The revision that created the object.
    pub create_revision: Revision,
    /// The revision that last wrote the object.
    pub mod_revision: Revision,
}

/// What a write did, as a watch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The key was created.
    Added,
    /// The key was overwritten.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One write, as seen by a watch.
#[derive(Clone, Debug)]
pub struct Event {
    /// The revision of the write.
    pub revision: Revision,
    /// The key written.
    pub key: Arc<str>,
    /// What the write did.
    pub kind: EventType,
    /// The object after the write; for a delete, the last version stamped with the delete's
    /// revision (what a Kubernetes watch sends with DELETED).
    pub object: Arc<Object>,
    /// The object before the write (absent for a create).
    pub prev: Option<Arc<Object>>,
}

/// A consistent list.
#[derive(Debug)]
pub struct List {
    /// The objects under the prefix, ordered by key.
    pub items: Vec<Arc<Object>>,
    /// The revision the list is consistent at.
    pub revision: Revision,
}

/// A stream of watch events in revision order. It ends only when the store is dropped; it yields
/// `Error::Expired` once and ends if the watcher fell so far behind that history was compacted.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// A versioned key/value store with watch.
///
/// # Guarantees
/// - Revisions are strictly increasing; every write gets exactly one.
/// - A watch started after revision `r` yields every write with revision `> r` under its prefix,
///   exactly once and in order, or `Expired`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The object at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Arc<Object>>>;

    /// All objects whose key starts with `prefix`, at `revision` (or the current one).
    ///
    /// # Errors
    /// `Expired` when `revision` is older than the retained history.
    async fn list(&self, prefix: &str, revision: Option<Revision>) -> Result<List>;

    /// Create `value` at `key`.
    ///
    /// # Errors
    /// `AlreadyExists` when the key holds an object.
    async fn create(&self, key: &str, value: Value) -> Result<Arc<Object>>;

    /// Overwrite the object at `key`; when `expected` is given the object must still be at that
    /// revision.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`.
    async fn update(
        &self,
        key: &str,
        value: Value,
        expected: Option<Revision>,
    ) -> Result<Arc<Object>>;

    /// Delete the object at `key`; when `expected` is given the object must still be at that
    /// revision. Returns the deleted object stamped with the delete's revision.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Arc<Object>>;

    /// Watch writes under `prefix` with revisions greater than `after`.
    ///
    /// # Errors
    /// `Expired` when `after` is older than the retained history.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The revision of the latest write.
    fn current_revision(&self) -> Revision;
}
