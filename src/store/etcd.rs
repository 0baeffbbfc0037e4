//! The etcd store: objects under Kubernetes' `/registry/...` keys in an etcd v3 cluster, as
//! kube-apiserver keeps them.
//!
//! - An object's `metadata.resourceVersion` is the etcd revision that last wrote its key (its
//!   mod revision); the stored value leaves it out, as upstream's storage does, and reads stamp
//!   it in.
//! - Writes compare and swap in one etcd transaction: create on `create_revision == 0`, update
//!   and delete on the expected mod revision (or on the key existing).
//! - Watches are etcd watches from the revision after the one asked for, with the previous
//!   value (a delete reports the object it removed); a watch or list from a compacted revision
//!   gets [`Error::Expired`], which the apiserver answers with 410 "too old resource version".
//! - Values are JSON (upstream writes protobuf): `etcdctl get /registry/pods/default/p` shows
//!   the object. The selector attributes of an object read back are computed by the function
//!   the apiserver gives [`EtcdStore::connect`], since etcd holds only the value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, KvClient, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchClient, WatchOptions,
};
use futures::StreamExt;
use serde_json::Value;

use super::{Attrs, Draft, Error, Event, EventType, List, Object, Result, Revision, Store};

/// What selectors match on for the object at a key: the apiserver's rule, given to the store.
pub type AttrsOf = Arc<dyn Fn(&str, &Value) -> Attrs + Send + Sync>;

/// How long one etcd request may take before the read or write fails (a local etcd answers in
/// milliseconds; an unreachable one makes the request fail with this store's message, not hang).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a health check of etcd may take (upstream's etcd prober gives it 2 s).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connecting to etcd may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many keys one range request of a list reads (a list of many objects is read in pages
/// at one revision, as upstream's storage pages lists).
const LIST_PAGE: i64 = 5_000;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// An endpoint is not a URL the client can use.
    #[error(
        "{endpoint:?} is not an etcd client URL: give one as http://HOST:PORT (e.g. \
         http://127.0.0.1:2379; TLS to etcd is not supported)"
    )]
    BadUrl {
        /// The endpoint given.
        endpoint: String,
    },
    /// etcd did not answer.
    #[error(
        "cannot reach etcd at {endpoint}: {cause} (start one, e.g. `etcd --data-dir /tmp/etcd \
         --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls \
         http://127.0.0.1:2379`, or pass the URL of a running one)"
    )]
    Unreachable {
        /// The endpoints tried.
        endpoint: String,
        /// What went wrong.
        cause: String,
    },
}

/// A [`Store`] over etcd v3.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    attrs: AttrsOf,
    /// The latest revision any response showed.
    revision: Arc<AtomicU64>,
    /// The latest compaction revision this store knows of (its own, or one a watch reported).
    compacted: Arc<AtomicU64>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("revision", &self.revision.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An etcd failure as the store reports it.
fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        message: e.to_string(),
    }
}

/// What an etcd client error comes down to (`tcp connect error: Connection refused (os error
/// 111)`), for people.
fn root_cause(e: &etcd_client::Error) -> String {
    let (what, mut cause): (String, &dyn std::error::Error) = match e {
        etcd_client::Error::GRpcStatus(status) => (status.message().to_string(), status),
        etcd_client::Error::TransportError(transport) => (String::new(), transport),
        other => return other.to_string(),
    };
    while let Some(next) = cause.source() {
        cause = next;
    }
    match what.as_str() {
        "" => cause.to_string(),
        what if what == cause.to_string() => what.to_string(),
        what => format!("{what}: {cause}"),
    }
}

/// Whether an etcd error says the revision asked for was compacted.
fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision has been compacted")
}

/// Whether an etcd error says the revision asked for is in the future.
fn is_future(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision is a future revision")
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the keyspace.
    vec![0]
}

fn revision_of(r: i64) -> Revision {
    u64::try_from(r).unwrap_or_default()
}

fn etcd_revision(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

impl EtcdStore {
    /// Connect to etcd at `endpoints` (URLs such as `http://127.0.0.1:2379`) and check that it
    /// answers.
    ///
    /// # Errors
    /// When no endpoint answers a read.
    pub async fn connect(endpoints: &[String], attrs: AttrsOf) -> Result<Self, ConnectError> {
        let endpoint = endpoints.join(",");
        let fail = |cause: String| ConnectError::Unreachable {
            endpoint: endpoint.clone(),
            cause,
        };
        if let Some(bad) = endpoints.iter().find(|e| {
            !e.strip_prefix("http://")
                .is_some_and(|rest| !rest.is_empty() && !rest.trim_end_matches('/').contains('/'))
        }) {
            return Err(ConnectError::BadUrl {
                endpoint: bad.clone(),
            });
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
        let client =
            tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(endpoints, Some(options)))
                .await
                .map_err(|_| fail(format!("no answer within {CONNECT_TIMEOUT:?}")))?
                .map_err(|e| fail(root_cause(&e)))?;
        let store = Self {
            kv: client.kv_client().max_decoding_message_size(usize::MAX),
            watch: client.watch_client().max_decoding_message_size(usize::MAX),
            attrs,
            revision: Arc::default(),
            compacted: Arc::default(),
        };
        // One read: etcd answers, and its revision is where this store starts.
        let mut kv = store.kv.clone();
        let response = tokio::time::timeout(
            CONNECT_TIMEOUT,
            kv.get("/registry/", Some(GetOptions::new().with_count_only())),
        )
        .await
        .map_err(|_| fail(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| fail(root_cause(&e)))?;
        store.saw(response.header());
        Ok(store)
    }

    /// Note the revision a response was served at.
    fn saw(&self, header: Option<&etcd_client::ResponseHeader>) -> Revision {
        let revision = header.map_or(0, |h| revision_of(h.revision()));
        self.revision.fetch_max(revision, Ordering::Relaxed);
        revision
    }

    /// The object an etcd key-value holds, stamped with its revisions.
    fn object(&self, kv: &KeyValue) -> Result<Object> {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let corrupt = |cause: String| Error::Unavailable {
            message: format!("the value at {key} is not a JSON object: {cause}"),
        };
        let value: Value =
            serde_json::from_slice(kv.value()).map_err(|e| corrupt(e.to_string()))?;
        if !value.is_object() {
            return Err(corrupt("not an object".into()));
        }
        let attrs = (self.attrs)(&key, &value);
        let draft = Draft::new(value, attrs).map_err(|e| corrupt(e.to_string()))?;
        Ok(draft.stamp(
            revision_of(kv.create_revision()),
            revision_of(kv.mod_revision()),
        ))
    }

    /// Run one request with the store's deadline.
    async fn request<T>(
        fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable(format!(
                "etcd did not answer within {REQUEST_TIMEOUT:?}"
            ))),
        }
    }

    /// The error for a read or watch from `requested`, which etcd has compacted.
    fn expired(&self, requested: Revision) -> Error {
        let compacted = self
            .compacted
            .load(Ordering::Relaxed)
            .max(requested.saturating_add(1));
        Error::Expired {
            requested,
            oldest: compacted.saturating_sub(1),
        }
    }

    /// A write failed its comparison: the key is missing, or at another revision.
    fn not_written(
        &self,
        key: &str,
        expected: Option<Revision>,
        responses: &[TxnOpResponse],
    ) -> Error {
        let current = responses.iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(KeyValue::mod_revision),
            _ => None,
        });
        match (current, expected) {
            (Some(actual), Some(expected)) => Error::Conflict {
                key: key.to_string(),
                expected,
                actual: revision_of(actual),
            },
            _ => Error::NotFound {
                key: key.to_string(),
            },
        }
    }

    /// Run `op` on `key` if it exists (at revision `expected`, when given), in one transaction;
    /// the revision of the write and the operation's responses.
    async fn write_existing(
        &self,
        key: &str,
        expected: Option<Revision>,
        op: TxnOp,
    ) -> Result<(Revision, Vec<TxnOpResponse>)> {
        let mut kv = self.kv.clone();
        let txn = Txn::new()
            .when([Self::precondition(key, expected)])
            .and_then([op])
            .or_else([TxnOp::get(key, None)]);
        let response = Self::request(kv.txn(txn)).await?;
        let responses = response.op_responses();
        if !response.succeeded() {
            return Err(self.not_written(key, expected, &responses));
        }
        Ok((self.saw(response.header()), responses))
    }

    /// What a write of `key` compares: the expected mod revision, or that the key exists.
    fn precondition(key: &str, expected: Option<Revision>) -> Compare {
        match expected {
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, etcd_revision(rev)),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        }
    }

    /// A watch response that cancelled the watch because its start was compacted: the
    /// compaction revision.
    async fn compaction_of(stream: &mut etcd_client::WatchStream) -> Option<Revision> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Ok(Some(response))) = tokio::time::timeout_at(deadline, stream.message()).await
        {
            if response.canceled() {
                return Some(revision_of(response.compact_revision()));
            }
        }
        None
    }
}

/// The watch events of one etcd watch response.
fn events_of(store: &EtcdStore, response: &etcd_client::WatchResponse) -> Vec<Result<Event>> {
    let mut out = Vec::with_capacity(response.events().len());
    for event in response.events() {
        let Some(kv) = event.kv() else { continue };
        let key: Arc<str> = Arc::from(String::from_utf8_lossy(kv.key()).as_ref());
        let revision = revision_of(kv.mod_revision());
        let prev = match event.prev_kv().map(|p| store.object(p)).transpose() {
            Ok(prev) => prev.map(Arc::new),
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let written = match event.event_type() {
            etcd_client::EventType::Put => store.object(kv).map(|object| {
                let kind = if kv.create_revision() == kv.mod_revision() {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                (kind, Arc::new(object))
            }),
            etcd_client::EventType::Delete => match &prev {
                Some(prev) => Ok((EventType::Deleted, Arc::new(prev.restamp(revision)))),
                None => Err(Error::Unavailable {
                    message: format!(
                        "etcd reported the delete of {key} at revision {revision} without the \
                         object it removed"
                    ),
                }),
            },
        };
        out.push(written.map(|(kind, object)| Event {
            revision,
            key,
            kind,
            object,
            prev: if kind == EventType::Added { None } else { prev },
        }));
    }
    out
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<Object>>> {
        let mut kv = self.kv.clone();
        let response = Self::request(kv.get(key, None)).await?;
        self.saw(response.header());
        response
            .kvs()
            .first()
            .map(|kv| self.object(kv).map(Arc::new))
            .transpose()
    }

    async fn list(&self, prefix: &str, revision: Option<Revision>) -> Result<List> {
        let mut kv = self.kv.clone();
        let end = prefix_end(prefix);
        let mut at = revision.filter(|r| *r > 0);
        let mut from = prefix.as_bytes().to_vec();
        let mut items = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if let Some(r) = at {
                options = options.with_revision(etcd_revision(r));
            }
            let response =
                match tokio::time::timeout(REQUEST_TIMEOUT, kv.get(from.clone(), Some(options)))
                    .await
                {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) if is_compacted(&e) => {
                        return Err(self.expired(at.unwrap_or_default()))
                    }
                    // A revision not written yet: the list is served at the latest one (as the
                    // memory store does).
                    Ok(Err(e)) if is_future(&e) && items.is_empty() => {
                        at = None;
                        continue;
                    }
                    Ok(Err(e)) => return Err(unavailable(e)),
                    Err(_) => {
                        return Err(unavailable(format!(
                            "etcd did not answer within {REQUEST_TIMEOUT:?}"
                        )))
                    }
                };
            let served = self.saw(response.header());
            let at_revision = *at.get_or_insert(served);
            for kv in response.kvs() {
                items.push(Arc::new(self.object(kv)?));
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => {
                    return Ok(List {
                        items,
                        revision: at_revision,
                    })
                }
            }
        }
    }

    async fn create(&self, key: &str, draft: Draft) -> Result<Arc<Object>> {
        let mut kv = self.kv.clone();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, draft.stored_json(), None)]);
        let response = Self::request(kv.txn(txn)).await?;
        if !response.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let revision = self.saw(response.header());
        Ok(Arc::new(draft.stamp(revision, revision)))
    }

    async fn update(
        &self,
        key: &str,
        draft: Draft,
        expected: Option<Revision>,
    ) -> Result<Arc<Object>> {
        let put = TxnOp::put(
            key,
            draft.stored_json(),
            Some(PutOptions::new().with_prev_key()),
        );
        let (revision, responses) = self.write_existing(key, expected, put).await?;
        let created = responses
            .iter()
            .find_map(|r| match r {
                TxnOpResponse::Put(put) => put.prev_key().map(KeyValue::create_revision),
                _ => None,
            })
            .map_or(revision, revision_of);
        Ok(Arc::new(draft.stamp(created, revision)))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Arc<Object>> {
        let delete = TxnOp::delete(key, Some(etcd_client::DeleteOptions::new().with_prev_key()));
        let (revision, responses) = self.write_existing(key, expected, delete).await?;
        let prev = responses.iter().find_map(|r| match r {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
            _ => None,
        });
        match prev {
            Some(prev) => Ok(Arc::new(self.object(&prev)?.restamp(revision))),
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<super::WatchStream> {
        let mut client = self.watch.clone();
        let options = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_start_revision(etcd_revision(after.saturating_add(1)))
            .with_prev_key();
        let mut stream = Self::request(client.watch(prefix, Some(options))).await?;
        // A start etcd has compacted: etcd cancels the watch (soon after creating it) with the
        // compaction revision; a read at the start revision tells at once whether it will.
        let mut kv = self.kv.clone();
        let probe = tokio::time::timeout(
            REQUEST_TIMEOUT,
            kv.get(
                prefix,
                Some(
                    GetOptions::new()
                        .with_count_only()
                        .with_revision(etcd_revision(after.saturating_add(1))),
                ),
            ),
        )
        .await;
        if let Ok(Err(e)) = &probe {
            if is_compacted(e) {
                if let Some(compacted) = Self::compaction_of(&mut stream).await {
                    self.compacted.fetch_max(compacted, Ordering::Relaxed);
                }
                return Err(self.expired(after));
            }
        }
        let store = self.clone();
        let state = (stream, std::collections::VecDeque::new(), after, false);
        Ok(Box::pin(
            futures::stream::unfold(state, move |(mut stream, mut pending, mut last, done)| {
                let store = store.clone();
                async move {
                    loop {
                        if let Some(item) = pending.pop_front() {
                            if let Ok(Event { revision, .. }) = &item {
                                last = *revision;
                            }
                            return Some((item, (stream, pending, last, done)));
                        }
                        if done {
                            return None;
                        }
                        match stream.message().await {
                            Ok(Some(response)) if response.canceled() => {
                                let compacted = revision_of(response.compact_revision());
                                let item = if compacted > 0 {
                                    store.compacted.fetch_max(compacted, Ordering::Relaxed);
                                    Err(store.expired(last))
                                } else {
                                    Err(unavailable(format!(
                                        "etcd cancelled the watch: {}",
                                        response.cancel_reason()
                                    )))
                                };
                                return Some((item, (stream, pending, last, true)));
                            }
                            Ok(Some(response)) => {
                                store.saw(response.header());
                                pending.extend(events_of(&store, &response));
                            }
                            Ok(None) => return None,
                            Err(e) => {
                                return Some((Err(unavailable(e)), (stream, pending, last, true)))
                            }
                        }
                    }
                }
            })
            .boxed(),
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut kv = self.kv.clone();
        match Self::request(kv.compact(etcd_revision(revision), None)).await {
            Ok(_) => {}
            // Compacted already (by another apiserver, or an earlier call): nothing to do.
            Err(Error::Unavailable { message }) if message.contains("compacted") => {}
            Err(e) => return Err(e),
        }
        self.compacted.fetch_max(revision, Ordering::Relaxed);
        Ok(())
    }

    fn current_revision(&self) -> Revision {
        self.revision.load(Ordering::Relaxed)
    }

    async fn health(&self) -> Option<Result<()>> {
        // A read of one key, as upstream's etcd prober does; a short deadline, since a
        // componentstatus list waits for it.
        let mut kv = self.kv.clone();
        Some(
            match tokio::time::timeout(HEALTH_TIMEOUT, kv.get("health", None)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(unavailable(root_cause(&e))),
                Err(_) => Err(unavailable("context deadline exceeded")),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_at_its_successor() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80");
    }
}
