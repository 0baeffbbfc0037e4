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

mod etcd;
mod memory;

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;

pub use etcd::{AttrsOf, ConnectError, EtcdStore};
pub use memory::{MemoryStore, DEFAULT_HISTORY_BYTES};

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
    /// The backend failed or did not answer (etcd down, a value it holds is not an object).
    #[error("storage is unavailable: {message}")]
    Unavailable {
        /// What the backend said.
        message: String,
    },
}

/// Result type of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What selectors match on, taken from an object when it is written so that lists and watches
/// can filter without decoding it. The store keeps it beside the object and never reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Labels, sorted by key.
    pub labels: Box<[(Box<str>, Box<str>)]>,
    /// Field values, in an order the writer defines.
    pub fields: Box<[Box<str>]>,
}

impl Attrs {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }
}

/// An object ready to be written: its JSON, in which the store fills in
/// `metadata.resourceVersion`, and its [`Attrs`].
#[derive(Debug, Clone)]
pub struct Draft {
    json: Vec<u8>,
    /// Where the digits of the resourceVersion go (between the quotes of an empty string).
    rv_at: usize,
    attrs: Attrs,
}

/// A value no writer can guess, standing in for the resourceVersion while a draft is encoded.
fn placeholder() -> &'static str {
    static PLACEHOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PLACEHOLDER.get_or_init(|| format!("kubespec-rv-{:032x}", rand::random::<u128>()))
}

impl Draft {
    /// Encode `value` for the store; its `metadata.resourceVersion` is replaced by the revision of
    /// the write.
    ///
    /// # Errors
    /// When the value cannot be encoded as JSON.
    pub fn new(mut value: Value, attrs: Attrs) -> Result<Self, serde_json::Error> {
        if !value.is_object() {
            value = Value::Object(Default::default());
        }
        if let Some(map) = value.as_object_mut() {
            let metadata = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if !metadata.is_object() {
                *metadata = Value::Object(Default::default());
            }
            if let Some(meta) = metadata.as_object_mut() {
                meta.insert(
                    "resourceVersion".into(),
                    Value::String(placeholder().to_string()),
                );
            }
        }
        let mut json = serde_json::to_vec(&value)?;
        static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
            std::sync::OnceLock::new();
        let mark = placeholder().as_bytes();
        let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(mark));
        let rv_at = finder.find(&json).unwrap_or(json.len());
        if rv_at < json.len() {
            json.drain(rv_at..rv_at + mark.len());
        }
        Ok(Self { json, rv_at, attrs })
    }

    /// The object as stored at `revision` (created at `create_revision`).
    pub fn stamp(self, create_revision: Revision, revision: Revision) -> Object {
        let digits = revision.to_string();
        let mut json = Vec::with_capacity(self.json.len() + digits.len());
        json.extend_from_slice(&self.json[..self.rv_at]);
        json.extend_from_slice(digits.as_bytes());
        json.extend_from_slice(&self.json[self.rv_at..]);
        Object {
            json: Bytes::from(json),
            attrs: self.attrs,
            rv_at: self.rv_at,
            rv_len: digits.len(),
            create_revision,
            mod_revision: revision,
        }
    }

    /// The object's JSON without `metadata.resourceVersion`: what a backend that keeps the
    /// revision beside the value (etcd) stores, as upstream's storage does.
    pub fn stored_json(&self) -> Vec<u8> {
        let mut json = self.json.clone();
        // Drop `,"resourceVersion":""` (or the leading form) so no empty version shows.
        let field = b"\"resourceVersion\":\"\"";
        let start = self.rv_at.saturating_sub(field.len() - 1);
        if json.get(start..start + field.len()) == Some(&field[..]) {
            let (from, to) = if start > 0 && json[start - 1] == b',' {
                (start - 1, start + field.len())
            } else if json.get(start + field.len()) == Some(&b',') {
                (start, start + field.len() + 1)
            } else {
                (start, start + field.len())
            };
            json.drain(from..to);
        }
        json
    }

    /// The object as it would be, but never stored (a dry run): without a resourceVersion.
    pub fn unstored(self) -> Object {
        let json = self.stored_json();
        Object {
            json: Bytes::from(json),
            attrs: self.attrs,
            rv_at: 0,
            rv_len: 0,
            create_revision: 0,
            mod_revision: 0,
        }
    }
}

/// One stored version of an object, kept only as its JSON encoding (lists and watches to many
/// clients send it as is) and the attributes selectors match on.
#[derive(Debug)]
pub struct Object {
    /// The object as JSON, with `metadata.resourceVersion` set to `mod_revision`.
    pub json: Bytes,
    /// What selectors match on.
    pub attrs: Attrs,
    rv_at: usize,
    rv_len: usize,
    /// The revision that created the object.
    pub create_revision: Revision,
    /// The revision that last wrote the object.
    pub mod_revision: Revision,
}

impl Object {
    /// The object decoded (Null only if the stored bytes were not JSON, which the store never
    /// writes).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The same object stamped with another revision (what a delete reports).
    pub fn restamp(&self, revision: Revision) -> Object {
        let digits = revision.to_string();
        let end = (self.rv_at + self.rv_len).min(self.json.len());
        let mut json = Vec::with_capacity(self.json.len() + digits.len());
        json.extend_from_slice(&self.json[..self.rv_at.min(end)]);
        json.extend_from_slice(digits.as_bytes());
        json.extend_from_slice(&self.json[end..]);
        Object {
            json: Bytes::from(json),
            attrs: self.attrs.clone(),
            rv_at: self.rv_at,
            rv_len: digits.len(),
            create_revision: self.create_revision,
            mod_revision: revision,
        }
    }
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

    /// Create the object at `key`.
    ///
    /// # Errors
    /// `AlreadyExists` when the key holds an object.
    async fn create(&self, key: &str, draft: Draft) -> Result<Arc<Object>>;

    /// Overwrite the object at `key`; when `expected` is given the object must still be at that
    /// revision.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`.
    async fn update(
        &self,
        key: &str,
        draft: Draft,
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

    /// Forget the history before `revision`, as etcd's compaction does: afterwards a watch may
    /// start after `revision - 1` or later, and one from earlier gets `Expired` (so does a
    /// watch that was still reading the forgotten writes).
    ///
    /// # Errors
    /// `Unavailable` when the backend fails.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the latest write.
    fn current_revision(&self) -> Revision;

    /// Whether the backend answers (what `componentstatus` reports as `etcd-0`); `None` for a
    /// store that has no backend of its own (memory).
    async fn health(&self) -> Option<Result<()>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drafts_are_stamped_restamped_and_shown_unstored() {
        let draft = Draft::new(
            json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "9", "uid": "u"},
                "involvedObject": {"resourceVersion": ""}}),
            Attrs::default(),
        )
        .unwrap();
        let stored = draft.clone().stamp(3, 12);
        let v = stored.value();
        assert_eq!(v["metadata"]["resourceVersion"], "12");
        assert_eq!(v["metadata"]["uid"], "u");
        assert_eq!(v["involvedObject"]["resourceVersion"], "");
        let gone = stored.restamp(1000);
        assert_eq!(gone.value()["metadata"]["resourceVersion"], "1000");
        assert_eq!((gone.create_revision, gone.mod_revision), (3, 1000));
        assert_eq!(gone.restamp(7).value()["metadata"]["resourceVersion"], "7");
        let dry = draft.unstored().value();
        assert!(dry["metadata"].get("resourceVersion").is_none(), "{dry}");
        assert_eq!(dry["metadata"]["name"], "p");
        // Whatever the value, the draft is an object with metadata.
        let odd = Draft::new(json!([1, 2]), Attrs::default())
            .unwrap()
            .stamp(1, 1);
        assert_eq!(odd.value(), json!({"metadata": {"resourceVersion": "1"}}));
    }

    #[test]
    fn attrs_find_labels_by_key() {
        let attrs = Attrs {
            labels: vec![("a".into(), "1".into()), ("b".into(), "2".into())].into(),
            fields: Box::default(),
        };
        assert_eq!(attrs.label("b"), Some("2"));
        assert_eq!(attrs.label("c"), None);
    }
}
