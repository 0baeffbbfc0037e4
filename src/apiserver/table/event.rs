//! The event printer, reading both the core/v1 and the events.k8s.io/v1 shape.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{field, int, int_cell, name_of, or_default, s, since, text, timestamp};

/// The fields of an event the printer needs, read from either API shape.
struct EventView<'a> {
    name: &'a str,
    kind: &'a str,
    object_name: &'a str,
    field_path: &'a str,
    type_: &'a str,
    reason: &'a str,
    message: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    first_timestamp: Option<DateTime<Utc>>,
    last_timestamp: Option<DateTime<Utc>>,
    event_time: Option<DateTime<Utc>>,
    count: i64,
    series: Option<(i64, Option<DateTime<Utc>>)>,
}

impl<'a> EventView<'a> {
    fn read(ev: &'a Value) -> Self {
        let series = field(ev, &["series"])
            .map(|sr| (int(sr, &["count"]), timestamp(sr, &["lastObservedTime"])));
        if text(ev, &["apiVersion"]).starts_with("events.k8s.io/") {
            EventView {
                name: name_of(ev),
                kind: text(ev, &["regarding", "kind"]),
                object_name: text(ev, &["regarding", "name"]),
                field_path: text(ev, &["regarding", "fieldPath"]),
                type_: text(ev, &["type"]),
                reason: text(ev, &["reason"]),
                message: text(ev, &["note"]),
                source_component: text(ev, &["deprecatedSource", "component"]),
                source_host: text(ev, &["deprecatedSource", "host"]),
                reporting_controller: text(ev, &["reportingController"]),
                reporting_instance: text(ev, &["reportingInstance"]),
                first_timestamp: timestamp(ev, &["deprecatedFirstTimestamp"]),
                last_timestamp: timestamp(ev, &["deprecatedLastTimestamp"]),
                event_time: timestamp(ev, &["eventTime"]),
                count: int(ev, &["deprecatedCount"]),
                series,
            }
        } else {
            EventView {
                name: name_of(ev),
                kind: text(ev, &["involvedObject", "kind"]),
                object_name: text(ev, &["involvedObject", "name"]),
                field_path: text(ev, &["involvedObject", "fieldPath"]),
                type_: text(ev, &["type"]),
                reason: text(ev, &["reason"]),
                message: text(ev, &["message"]),
                source_component: text(ev, &["source", "component"]),
                source_host: text(ev, &["source", "host"]),
                reporting_controller: text(ev, &["reportingComponent"]),
                reporting_instance: text(ev, &["reportingInstance"]),
                first_timestamp: timestamp(ev, &["firstTimestamp"]),
                last_timestamp: timestamp(ev, &["lastTimestamp"]),
                event_time: timestamp(ev, &["eventTime"]),
                count: int(ev, &["count"]),
                series,
            }
        }
    }
}

pub(super) fn event_cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let view = EventView::read(ev);

    // First seen falls back to eventTime; last seen falls back to first seen;
    // a series overrides last seen and count; a count of 0 means a singleton.
    let first_seen = match view.first_timestamp {
        Some(t) => since(Some(t), now),
        None => since(view.event_time, now),
    };
    let mut last_seen = match view.last_timestamp {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = view.count;
    if let Some((series_count, last_observed)) = view.series {
        last_seen = since(last_observed, now);
        count = series_count;
    } else if count == 0 {
        count = 1;
    }

    let kind = view.kind.to_lowercase();
    let target = if view.object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{}", view.object_name)
    };

    let component = or_default(view.source_component, view.reporting_controller);
    let instance = or_default(view.source_host, view.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        s(last_seen),
        s(view.type_),
        s(view.reason),
        s(target),
        s(view.field_path),
        s(source),
        s(view.message.trim()),
        s(first_seen),
        int_cell(count),
        s(view.name),
    ]
}
