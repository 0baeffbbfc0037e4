//! Printers of the workload controllers' objects: deployments, replica sets, replication
//! controllers, stateful sets, daemon sets, jobs and cron jobs.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{
    age, boolean, container_cells, field, first_condition_true, format_label_selector,
    format_labels, human_duration, int, int_cell, is_deleting, label_selector_string, list,
    name_of, opt_int, or_default, s, since, text, timestamp, NONE,
};

fn template_containers(obj: &Value) -> &[Value] {
    list(obj, &["spec", "template", "spec", "containers"])
}

pub(super) fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(template_containers(obj));
    let selector = label_selector_string(field(obj, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        s(name_of(obj)),
        s(format!("{ready}/{desired}")),
        int_cell(int(obj, &["status", "updatedReplicas"])),
        int_cell(int(obj, &["status", "availableReplicas"])),
        s(age(obj, now)),
        s(names),
        s(images),
        s(selector),
    ]
}

pub(super) fn replicaset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    replica_cells(
        obj,
        now,
        format_label_selector(field(obj, &["spec", "selector"])),
    )
}

/// A replication controller's selector is a plain label map, not a `LabelSelector`.
pub(super) fn replication_controller_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    replica_cells(obj, now, format_labels(field(obj, &["spec", "selector"])))
}

/// The cells replica sets and replication controllers share, with the selector already
/// rendered.
fn replica_cells(obj: &Value, now: DateTime<Utc>, selector: String) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        int_cell(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int_cell(int(obj, &["status", "replicas"])),
        int_cell(int(obj, &["status", "readyReplicas"])),
        s(age(obj, now)),
        s(names),
        s(images),
        s(selector),
    ]
}

pub(super) fn statefulset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        s(format!("{ready}/{desired}")),
        s(age(obj, now)),
        s(names),
        s(images),
    ]
}

pub(super) fn daemonset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        int_cell(int(obj, &["status", "desiredNumberScheduled"])),
        int_cell(int(obj, &["status", "currentNumberScheduled"])),
        int_cell(int(obj, &["status", "numberReady"])),
        int_cell(int(obj, &["status", "updatedNumberScheduled"])),
        int_cell(int(obj, &["status", "numberAvailable"])),
        s(format_labels(field(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(obj, &["spec", "selector"]))),
    ]
}

pub(super) fn job_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(obj, &["status", "succeeded"]);
    // Defaulting: with neither set both become 1; parallelism defaults to 1.
    let (completions, parallelism) = match (
        opt_int(obj, &["spec", "completions"]),
        opt_int(obj, &["spec", "parallelism"]),
    ) {
        (None, None) => (Some(1), 1),
        (c, p) => (c, p.unwrap_or(1)),
    };
    let completions = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };

    let duration = match (
        timestamp(obj, &["status", "startTime"]),
        timestamp(obj, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(done)) => human_duration(done - start),
    };

    let conditions = list(obj, &["status", "conditions"]);
    let status = if first_condition_true(conditions, "Complete") {
        "Complete"
    } else if first_condition_true(conditions, "Failed") {
        "Failed"
    } else if is_deleting(obj) {
        "Terminating"
    } else if first_condition_true(conditions, "Suspended") {
        "Suspended"
    } else if first_condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };

    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        s(status),
        s(completions),
        s(duration),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(obj, &["spec", "selector"]))),
    ]
}

pub(super) fn cronjob_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match timestamp(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None => NONE.to_string(),
    };
    // suspend defaults to false.
    let suspend = if boolean(obj, &["spec", "suspend"]) {
        "True"
    } else {
        "False"
    };
    let (names, images) = container_cells(list(
        obj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    ));
    vec![
        s(name_of(obj)),
        s(text(obj, &["spec", "schedule"])),
        s(or_default(text(obj, &["spec", "timeZone"]), NONE)),
        s(suspend),
        int_cell(list(obj, &["status", "active"]).len() as i64),
        s(last_schedule),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(
            obj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}
