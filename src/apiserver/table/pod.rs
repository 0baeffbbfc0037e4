//! The pod printer: the Ready, Status and Restarts summary `kubectl get pods` shows, the wide
//! columns, and the row conditions attached to finished pods.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::format::{
    age, boolean, field, first_condition_true, int, is_deleting, keep_latest, list, name_of,
    or_default, s, since, text, timestamp, NONE,
};

fn pod_phase(pod: &Value) -> &str {
    // PrepareForCreate always records Pending, so a phase-less pod is Pending.
    or_default(text(pod, &["status", "phase"]), "Pending")
}

fn any_condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| text(c, &["type"]) == type_ && text(c, &["status"]) == "True")
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = text(terminated, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(terminated, &["exitCode"]))
    }
}

fn last_termination_time(status: &Value) -> Option<DateTime<Utc>> {
    timestamp(status, &["lastState", "terminated", "finishedAt"])
}

/// The pod's Ready, Status and Restarts cells, computed as the 1.33 printer
/// does (including restartable init containers, i.e. native sidecars).
fn pod_summary(pod: &Value, now: DateTime<Utc>) -> (String, String, String) {
    let phase = pod_phase(pod);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = or_default(status_reason, phase).to_string();

    let conditions = list(pod, &["status", "conditions"]);
    if conditions
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let containers = list(pod, &["spec", "containers"]);
    let init_specs = list(pod, &["spec", "initContainers"]);
    let mut total = containers.len() as i64;
    let mut restartable_by_name: HashMap<&str, bool> = HashMap::new();
    for spec in init_specs {
        let restartable = text(spec, &["restartPolicy"]) == "Always";
        restartable_by_name.insert(text(spec, &["name"]), restartable);
        if restartable {
            total += 1;
        }
    }

    let mut ready: i64 = 0;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let mut initializing = false;
    for (index, status) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int(status, &["restartCount"]);
        restarts += count;
        let finished = last_termination_time(status);
        keep_latest(&mut last_restart, finished);
        let restartable = restartable_by_name
            .get(text(status, &["name"]))
            .copied()
            .unwrap_or(false);
        if restartable {
            sidecar_restarts += count;
            keep_latest(&mut last_sidecar_restart, finished);
        }

        let terminated = field(status, &["state", "terminated"]);
        if let Some(t) = terminated {
            if int(t, &["exitCode"]) == 0 {
                continue;
            }
        }
        if restartable && boolean(status, &["started"]) {
            if boolean(status, &["ready"]) {
                ready += 1;
            }
            continue;
        }

        let waiting_reason = field(status, &["state", "waiting"])
            .map(|w| text(w, &["reason"]))
            .unwrap_or("");
        reason = if let Some(t) = terminated {
            terminated_reason(t, "Init:")
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", index, init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(status, &["restartCount"]);
            keep_latest(&mut last_restart, last_termination_time(status));

            let waiting_reason = field(status, &["state", "waiting"])
                .map(|w| text(w, &["reason"]))
                .unwrap_or("");
            let terminated = field(status, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if boolean(status, &["ready"]) && field(status, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but which still has a running
        // container is reported by its readiness instead of "Completed".
        if reason == "Completed" && has_running {
            reason = if any_condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if is_deleting(pod) {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    (format!("{ready}/{total}"), reason, restarts_text)
}

pub(super) fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (ready, status, restarts) = pod_summary(pod, now);

    // v1 -> internal conversion makes status.podIP authoritative over podIPs.
    let mut ip = text(pod, &["status", "podIP"]);
    if ip.is_empty() {
        ip = list(pod, &["status", "podIPs"])
            .first()
            .map(|p| text(p, &["ip"]))
            .unwrap_or("");
    }

    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        NONE.to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let satisfied = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == wanted)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", satisfied, gates.len())
    };

    vec![
        s(name_of(pod)),
        s(ready),
        s(status),
        s(restarts),
        s(age(pod, now)),
        s(or_default(ip, NONE)),
        s(or_default(text(pod, &["spec", "nodeName"]), NONE)),
        s(or_default(
            text(pod, &["status", "nominatedNodeName"]),
            NONE,
        )),
        s(readiness_gates),
    ]
}

/// Row conditions the pod printer attaches to finished pods.
pub(super) fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}
