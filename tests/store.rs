//! The store's conformance suite: one set of tests, run against the in-memory store and against
//! etcd (a real etcd per test), so both backends keep the same promises to the apiserver:
//! revisions stamped as resourceVersions, compare-and-swap, lists at past revisions, watches
//! that resume from a revision and report every write once and in order, and `Expired` for
//! history that was compacted.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kubespec::apiserver::registry::stored_attrs;
use kubespec::store::{Draft, Error, EtcdStore, EventType, MemoryStore, Object, Store};
use serde_json::{json, Value};
use support::etcd::Etcd;

/// A store under test, and what keeps its backend alive.
struct Backend {
    store: Arc<dyn Store>,
    _etcd: Option<Etcd>,
}

async fn memory() -> Backend {
    Backend {
        store: Arc::new(MemoryStore::new(100_000)),
        _etcd: None,
    }
}

async fn etcd() -> Backend {
    let etcd = Etcd::start();
    let store = EtcdStore::connect(&[etcd.url().to_string()], Arc::new(stored_attrs))
        .await
        .expect("the store connects to etcd");
    Backend {
        store: Arc::new(store),
        _etcd: Some(etcd),
    }
}

/// The draft of `value` for `key`, with the attributes the apiserver would take from it.
fn draft(key: &str, value: Value) -> Draft {
    let attrs = stored_attrs(key, &value);
    Draft::new(value, attrs).expect("JSON")
}

fn rv(o: &Object) -> u64 {
    o.value()["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {}", o.value()))
}

fn pod(name: &str, v: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1"}, "v": v})
}

/// Run each named test against every backend.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::memory().await.store).await;
            })*
        }
        mod etcd {
            $(#[tokio::test]
            async fn $test() {
                let backend = super::etcd().await;
                super::$test(backend.store.clone()).await;
            })*
        }
    };
}

conformance!(
    writes_stamp_resource_versions_and_compare_and_swap,
    reads_give_back_the_object_its_revisions_and_selector_attributes,
    lists_by_prefix_at_current_and_past_revisions,
    lists_larger_than_a_page_are_whole_and_in_key_order,
    watches_resume_after_a_revision_and_filter_by_prefix,
    watches_report_every_write_once_in_order,
    compacted_history_expires_watches_and_lists,
    a_watch_from_a_revision_far_ahead_waits_for_it,
);

async fn writes_stamp_resource_versions_and_compare_and_swap(store: Arc<dyn Store>) {
    let key = "/registry/pods/ns/a";
    let a = store.create(key, draft(key, pod("a", 1))).await.unwrap();
    assert_eq!(rv(&a), a.mod_revision);
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(store.current_revision(), a.mod_revision);
    assert!(matches!(
        store.create(key, draft(key, pod("a", 9))).await,
        Err(Error::AlreadyExists { .. })
    ));
    let a2 = store
        .update(key, draft(key, pod("a", 2)), Some(a.mod_revision))
        .await
        .unwrap();
    assert!(rv(&a2) > rv(&a));
    assert_eq!(a2.create_revision, a.create_revision, "created once");
    match store
        .update(key, draft(key, pod("a", 3)), Some(a.mod_revision))
        .await
    {
        Err(Error::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (a.mod_revision, a2.mod_revision)),
        other => panic!("a stale update conflicts: {other:?}"),
    }
    // No expectation: the write goes in whatever the revision.
    let a3 = store
        .update(key, draft(key, pod("a", 3)), None)
        .await
        .unwrap();
    assert!(matches!(
        store.delete(key, Some(a2.mod_revision)).await,
        Err(Error::Conflict { .. })
    ));
    let gone = store.delete(key, Some(a3.mod_revision)).await.unwrap();
    assert!(
        rv(&gone) > rv(&a3),
        "a delete is stamped with its own revision"
    );
    assert_eq!(gone.value()["v"], 3, "the delete returns the last version");
    assert!(store.get(key).await.unwrap().is_none());
    for missing in [
        store.update(key, draft(key, pod("a", 4)), None).await,
        store.update(key, draft(key, pod("a", 4)), Some(1)).await,
        store.delete(key, None).await,
    ] {
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );
    }
}

async fn reads_give_back_the_object_its_revisions_and_selector_attributes(store: Arc<dyn Store>) {
    let key = "/registry/pods/ns/p";
    // An Event-like nested resourceVersion stays as written; only the object's own is stamped.
    let mut value = pod("p", 1);
    value["involvedObject"] = json!({"resourceVersion": "", "name": "ünïcødé"});
    let created = store.create(key, draft(key, value)).await.unwrap();
    let updated = store
        .update(key, draft(key, pod("p", 2)), None)
        .await
        .unwrap();
    let read = store.get(key).await.unwrap().expect("the object is there");
    assert_eq!(read.value(), updated.value());
    assert_eq!(
        (read.create_revision, read.mod_revision),
        (created.mod_revision, updated.mod_revision)
    );
    assert_eq!(read.attrs.label("app"), Some("web"));
    assert_eq!(
        read.attrs, updated.attrs,
        "selectors match the same on reads"
    );
    let list = store.list("/registry/pods/ns/", None).await.unwrap();
    assert_eq!(list.items[0].attrs, updated.attrs);

    let key = "/registry/events/ns/e";
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "ünïcødé", "resourceVersion": ""}, "reason": "Pulled"});
    store.create(key, draft(key, event)).await.unwrap();
    let read = store.get(key).await.unwrap().unwrap();
    assert_eq!(read.value()["involvedObject"]["resourceVersion"], "");
    assert_eq!(read.value()["involvedObject"]["name"], "ünïcødé");
    assert_eq!(rv(&read), read.mod_revision);
    assert!(store
        .get("/registry/pods/ns/nothing")
        .await
        .unwrap()
        .is_none());
}

async fn lists_by_prefix_at_current_and_past_revisions(store: Arc<dyn Store>) {
    let (x, y, z) = (
        "/registry/pods/a/x",
        "/registry/pods/ab/y",
        "/registry/pods/a/z",
    );
    store.create(x, draft(x, pod("x", 1))).await.unwrap();
    store.create(y, draft(y, pod("y", 1))).await.unwrap();
    let x2 = store.update(x, draft(x, pod("x", 2)), None).await.unwrap();
    store.create(z, draft(z, pod("z", 1))).await.unwrap();
    let gone = store.delete(x, None).await.unwrap();

    let now = store.list("/registry/pods/a/", None).await.unwrap();
    assert_eq!(now.revision, gone.mod_revision);
    let names: Vec<_> = now
        .items
        .iter()
        .map(|o| o.value()["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("z")], "only keys under the prefix");

    let past = store
        .list("/registry/pods/a/", Some(x2.mod_revision))
        .await
        .unwrap();
    assert_eq!(past.revision, x2.mod_revision);
    let values: Vec<_> = past.items.iter().map(|o| o.value()["v"].clone()).collect();
    assert_eq!(values, vec![json!(2)], "x as it was, z not yet written");
    assert_eq!(rv(&past.items[0]), x2.mod_revision);

    // A revision not written yet is served as the current one.
    let ahead = store
        .list("/registry/pods/a/", Some(gone.mod_revision + 1000))
        .await
        .unwrap();
    assert_eq!(ahead.revision, gone.mod_revision);
}

async fn lists_larger_than_a_page_are_whole_and_in_key_order(store: Arc<dyn Store>) {
    const N: usize = 5_100;
    let writes = futures::stream::iter(0..N)
        .map(|i| {
            let store = store.clone();
            async move {
                let key = format!("/registry/configmaps/ns/c{i:05}");
                let value = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i:05}"), "namespace": "ns"}});
                store.create(&key, draft(&key, value)).await.unwrap();
            }
        })
        .buffer_unordered(64);
    writes.collect::<Vec<_>>().await;
    let mid = store.current_revision();
    let extra = "/registry/configmaps/ns/zz";
    store
        .create(extra, draft(extra, json!({"metadata": {"name": "zz"}})))
        .await
        .unwrap();
    let list = store
        .list("/registry/configmaps/ns/", Some(mid))
        .await
        .unwrap();
    assert_eq!(
        list.items.len(),
        N,
        "every object at the revision, none after it"
    );
    let names: Vec<String> = list
        .items
        .iter()
        .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "in key order");
    sorted.dedup();
    assert_eq!(sorted.len(), N, "each once");
}

/// The next `n` events of a watch (at most 10 s of waiting).
async fn next_events(
    watch: &mut kubespec::store::WatchStream,
    n: usize,
) -> Vec<kubespec::store::Event> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Some(Ok(event))) => out.push(event),
            other => panic!("expected {n} events, got {} and then {other:?}", out.len()),
        }
    }
    out
}

async fn watches_resume_after_a_revision_and_filter_by_prefix(store: Arc<dyn Store>) {
    let (a, b, other) = (
        "/registry/pods/ns/a",
        "/registry/pods/ns/b",
        "/registry/pods/other/c",
    );
    let start = store.create(a, draft(a, pod("a", 1))).await.unwrap();
    let a2 = store.update(a, draft(a, pod("a", 2)), None).await.unwrap();
    store
        .create(other, draft(other, pod("c", 1)))
        .await
        .unwrap();
    // From history: everything after `start` under the prefix.
    let mut watch = store
        .watch("/registry/pods/ns/", start.mod_revision)
        .await
        .unwrap();
    let first = next_events(&mut watch, 1).await.remove(0);
    assert_eq!((first.kind, &*first.key), (EventType::Modified, a));
    assert_eq!(first.revision, a2.mod_revision);
    assert_eq!(first.object.value()["v"], 2);
    assert_eq!(
        first.prev.as_ref().map(|p| p.value()["v"].clone()),
        Some(json!(1))
    );
    // Live: a create, then a delete that carries the last version at the delete's revision.
    let created = store.create(b, draft(b, pod("b", 1))).await.unwrap();
    let deleted = store.delete(b, None).await.unwrap();
    let events = next_events(&mut watch, 2).await;
    assert_eq!((events[0].kind, &*events[0].key), (EventType::Added, b));
    assert_eq!(events[0].revision, created.mod_revision);
    assert!(events[0].prev.is_none());
    assert_eq!(events[1].kind, EventType::Deleted);
    assert_eq!(events[1].revision, deleted.mod_revision);
    assert_eq!(rv(&events[1].object), deleted.mod_revision);
    assert_eq!(events[1].object.value()["v"], 1);
    assert_eq!(events[1].object.attrs.label("app"), Some("web"));
}

async fn watches_report_every_write_once_in_order(store: Arc<dyn Store>) {
    const WRITES: usize = 300;
    let base = store.current_revision();
    let mut watch = store.watch("/registry/pods/", base).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..WRITES {
                let key = format!("/registry/pods/ns/p{}", i % 7);
                let value = pod(&format!("p{}", i % 7), i as i64);
                if store.get(&key).await.unwrap().is_some() {
                    store.update(&key, draft(&key, value), None).await.unwrap();
                } else {
                    store.create(&key, draft(&key, value)).await.unwrap();
                }
            }
        })
    };
    let events = next_events(&mut watch, WRITES).await;
    writer.await.unwrap();
    let values: Vec<i64> = events
        .iter()
        .map(|e| e.object.value()["v"].as_i64().unwrap())
        .collect();
    assert_eq!(values, (0..WRITES as i64).collect::<Vec<_>>());
    assert!(events.windows(2).all(|w| w[0].revision < w[1].revision));
}

async fn compacted_history_expires_watches_and_lists(store: Arc<dyn Store>) {
    let mut revisions = Vec::new();
    for i in 0..5 {
        let key = format!("/registry/pods/ns/p{i}");
        revisions.push(
            store
                .create(&key, draft(&key, pod("p", i)))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let at = revisions[3];
    store.compact(at).await.unwrap();
    // From the compaction revision on, history is there.
    let mut watch = store.watch("/registry/pods/", at - 1).await.unwrap();
    let seen: Vec<u64> = next_events(&mut watch, 2)
        .await
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(seen, revisions[3..].to_vec());
    // Before it: Expired, saying what is left.
    match store.watch("/registry/pods/", revisions[1]).await {
        Err(Error::Expired { requested, oldest }) => {
            assert_eq!((requested, oldest), (revisions[1], at - 1))
        }
        Ok(_) => panic!("a watch from compacted history starts"),
        Err(e) => panic!("{e}"),
    }
    assert!(matches!(
        store.list("/registry/pods/", Some(revisions[1])).await,
        Err(Error::Expired { .. })
    ));
    assert!(store.list("/registry/pods/", Some(at)).await.is_ok());
}

async fn a_watch_from_a_revision_far_ahead_waits_for_it(store: Arc<dyn Store>) {
    // A client may send any resourceVersion; the largest one must neither crash the store nor
    // replay history.
    let key = "/registry/pods/ns/early";
    store
        .create(key, draft(key, pod("early", 1)))
        .await
        .unwrap();
    let mut ahead = store.watch("/registry/pods/", u64::MAX).await.unwrap();
    let mut barrier = store
        .watch("/registry/pods/", store.current_revision())
        .await
        .unwrap();
    let key = "/registry/pods/ns/late";
    store.create(key, draft(key, pod("late", 1))).await.unwrap();
    // Once a watch from now has the write, the one from far ahead has had its chance.
    assert_eq!(&*next_events(&mut barrier, 1).await[0].key, key);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        futures::FutureExt::now_or_never(ahead.next()).is_none(),
        "a watch from revision u64::MAX delivered an event"
    );
}
