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
