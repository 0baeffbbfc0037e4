//! Load with faults: many writers and watchers at once, watchers that drop their connections at
//! random and resume, and watchers that read slowly. No acknowledged write may be lost, no
//! watcher may see a gap, a duplicate or a reordering, and once everyone has gone the server
//! holds no connection and no watch.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use serde_json::json;

const WRITERS: usize = 16;
const OBJECTS_PER_WRITER: usize = 25;
const UPDATES_PER_OBJECT: usize = 3;
const WATCHERS: usize = 8;
const NAMESPACE: &str = "load";

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// One writer: creates its objects, then updates each a few times and deletes half of them;
/// returns the resourceVersion of every acknowledged write.
async fn writer(client: kube::Client, w: usize) -> Vec<u64> {
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let mut acknowledged = Vec::new();
    for i in 0..OBJECTS_PER_WRITER {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("w{w}-{i}")}, "data": {"v": "0"}}),
        )
        .unwrap();
        let created = api
            .create(&PostParams::default(), &cm)
            .await
            .expect("create acknowledged");
        acknowledged.push(rv_of(&created));
    }
    for round in 1..=UPDATES_PER_OBJECT {
        for i in 0..OBJECTS_PER_WRITER {
            let patch = Patch::Merge(json!({"data": {"v": round.to_string()}}));
            let updated = api
                .patch(&format!("w{w}-{i}"), &PatchParams::default(), &patch)
                .await
                .expect("update acknowledged");
            acknowledged.push(rv_of(&updated));
        }
    }
    for i in (0..OBJECTS_PER_WRITER).step_by(2) {
        // A delete's event carries a resourceVersion of its own: take it from the watchers'
        // view below (the response is the object before deletion), so just count it.
        api.delete(&format!("w{w}-{i}"), &Default::default())
            .await
            .expect("delete acknowledged");
    }
    acknowledged
}

/// One watcher: from `start`, follows every event until it has seen `until`, dropping its
/// connection at random and resuming from the last resourceVersion it saw; slow ones pause
/// between events. Returns the resourceVersions seen, in order, with the event types.
async fn watcher(
    client: kube::Client,
    seed: u64,
    start: u64,
    done: Arc<Mutex<bool>>,
) -> Vec<(u64, String)> {
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let slow = seed.is_multiple_of(2);
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut last = start;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher {seed} did not finish in 120 s; saw {} events",
            seen.len()
        );
        let params = WatchParams::default().timeout(290);
        let stream = api
            .watch(&params, &last.to_string())
            .await
            .expect("watch starts");
        let mut stream = Box::pin(stream);
        // Drop the connection after a random number of events.
        let budget = rng.random_range(5..200);
        let mut taken = 0;
        let finished = loop {
            let next = tokio::time::timeout(Duration::from_secs(2), stream.try_next()).await;
            let event = match next {
                Ok(Ok(Some(event))) => event,
                Ok(Ok(None)) => break false,
                Ok(Err(e)) => panic!("watcher {seed}: the watch failed: {e}"),
                // Quiet: if the writers are done, so are we.
                Err(_) => break *done.lock(),
            };
            let (rv, kind) = match event {
                WatchEvent::Added(cm) => (rv_of(&cm), "ADDED"),
                WatchEvent::Modified(cm) => (rv_of(&cm), "MODIFIED"),
                WatchEvent::Deleted(cm) => (rv_of(&cm), "DELETED"),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => {
                    panic!("watcher {seed}: error event {e:?} (resuming from {last})")
                }
            };
            seen.push((rv, kind.to_string()));
            last = rv;
            taken += 1;
            if slow {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..3))).await;
            }
            if taken >= budget {
                break false; // drop the connection mid-stream
            }
        };
        drop(stream);
        if finished {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_faulty_watchers_lose_nothing_and_leave_nothing_behind() {
    let cluster = support::cluster().apiserver_only().start().await;
    let admin = cluster.client().unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .unwrap();
    let start = {
        let list = Api::<ConfigMap>::namespaced(admin.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .unwrap();
        list.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let done = Arc::new(Mutex::new(false));
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|i| {
            let client = cluster.client().unwrap();
            tokio::spawn(watcher(client, i as u64, start, done.clone()))
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = cluster.client().unwrap();
            tokio::spawn(writer(client, w))
        })
        .collect();
    let mut acknowledged = BTreeSet::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    *done.lock() = true;
    let deletes = WRITERS * OBJECTS_PER_WRITER.div_ceil(2);
    let expected_events = acknowledged.len() + deletes;
    for (i, w) in watchers.into_iter().enumerate() {
        let seen = w.await.unwrap();
        let rvs: Vec<u64> = seen.iter().map(|(rv, _)| *rv).collect();
        // In order, no duplicates (strictly increasing) ...
        assert!(
            rvs.windows(2).all(|p| p[0] < p[1]),
            "watcher {i} saw events out of order or twice"
        );
        // ... every acknowledged write, and nothing else.
        let set: BTreeSet<u64> = rvs.iter().copied().collect();
        let missing: Vec<_> = acknowledged.difference(&set).take(5).collect();
        assert!(
            missing.is_empty(),
            "watcher {i} missed acknowledged writes, e.g. {missing:?}"
        );
        assert_eq!(
            seen.len(),
            expected_events,
            "watcher {i}: every write and delete once"
        );
        assert_eq!(seen.iter().filter(|(_, k)| k == "DELETED").count(), deletes);
    }
    // The store holds exactly what the writers left.
    let left = Api::<ConfigMap>::namespaced(admin.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(left.items.len(), WRITERS * (OBJECTS_PER_WRITER / 2));
    assert!(left.items.iter().all(|cm| cm
        .data
        .as_ref()
        .and_then(|d| d.get("v"))
        .map(String::as_str)
        == Some("3")));

    // Everyone has gone: the server holds no connection (every client is dropped; their pooled
    // connections close).
    drop(admin);
    drop(namespaces);
    let server = cluster.apiserver().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.open_connections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections still open 30 s after every client went",
            server.open_connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}
