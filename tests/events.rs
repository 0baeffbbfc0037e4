//! Event recorders against the reference apiserver: the events.k8s.io/v1 recorder (the
//! scheduler's) grows series as client-go's `tools/events` does, and recording never waits for
//! the apiserver.

mod support;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kubespec::events::{EventType, Recorder};
use support::{minutes, Waits};

fn pod(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        resource_version: Some("7".into()),
        field_path: None,
    }
}

/// The series count of the event whose note is `note` (0 without a series), if it exists.
async fn series_of(events: &Api<Event>, note: &str) -> Option<i32> {
    let list = events.list(&ListParams::default()).await.ok()?;
    list.items
        .into_iter()
        .find(|e| e.note.as_deref() == Some(note))
        .map(|e| e.series.map_or(0, |s| s.count))
}

#[tokio::test]
async fn events_v1_series_are_written_as_client_go_writes_them() {
    // 100x: the recorder's 6-minute finish check comes every 3.6 s of wall time.
    let cluster = support::cluster()
        .apiserver_only()
        .time_scale(100.0)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let recorder = Recorder::events_v1(
        client.clone(),
        cluster.clock().clone(),
        "default-scheduler",
        "test-host",
    );
    let note = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
    for _ in 0..5 {
        recorder
            .record(
                &pod("stuck"),
                EventType::Warning,
                "FailedScheduling",
                "Scheduling",
                note,
            )
            .await;
    }
    // One queue, written in order: once this event exists, the five before it were handled.
    recorder
        .record(
            &pod("other"),
            EventType::Normal,
            "Scheduled",
            "Binding",
            "barrier",
        )
        .await;
    waits
        .until_async(minutes(2), "the barrier event", || async {
            series_of(&events, "barrier")
                .await
                .ok_or_else(|| "not there yet".to_string())
        })
        .await;
    // The second occurrence made a series of 2 at once; the rest only count in the recorder.
    assert_eq!(series_of(&events, note).await, Some(2));

    // Once no repeat came for 6 minutes, the final count is written.
    waits
        .until_async(minutes(20), "the series' final count, 5", || async {
            match series_of(&events, note).await {
                Some(5) => Ok(()),
                other => Err(format!("series count {other:?}")),
            }
        })
        .await;
}

#[tokio::test]
async fn kube_proxy_announces_itself_on_each_node_as_upstreams_does() {
    let cluster = support::cluster().nodes(2).start().await;
    let client = cluster.client().unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let starting = loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        let starting: Vec<Event> = list
            .items
            .into_iter()
            .filter(|e| e.reporting_controller.as_deref() == Some("kube-proxy"))
            .collect();
        if starting.len() >= 2 {
            break starting;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected a Starting event from each node's kube-proxy within 30s; saw {starting:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut nodes: Vec<String> = Vec::new();
    for e in &starting {
        let node = e.regarding.as_ref().and_then(|r| r.name.clone()).unwrap();
        assert_eq!(e.reason.as_deref(), Some("Starting"));
        assert_eq!(e.action.as_deref(), Some("StartKubeProxy"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.note, None, "no note: {e:?}");
        assert_eq!(
            e.reporting_instance.as_deref(),
            Some(format!("kube-proxy-{node}").as_str())
        );
        let regarding = e.regarding.clone().unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("Node"));
        assert_eq!(
            regarding.uid.as_deref(),
            Some(node.as_str()),
            "the name as uid"
        );
        nodes.push(node);
    }
    nodes.sort();
    assert_eq!(nodes, ["node-1", "node-2"]);
    // Through core/v1, as `kubectl get events` reads it: no message.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let listed = core.list(&ListParams::default()).await.unwrap();
    let one = listed
        .items
        .iter()
        .find(|e| e.reporting_component.as_deref() == Some("kube-proxy"))
        .expect("the event through core/v1");
    assert_eq!(one.reason.as_deref(), Some("Starting"));
    assert_eq!(one.message, None, "{one:?}");
}
