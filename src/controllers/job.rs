//! The Job controller: runs a Job's pods to completion and reports it, as upstream's
//! pkg/controller/job does in 1.33.
//!
//! - Pods are made from the template with generateName `<job>-` (Indexed: `<job>-<index>-`,
//!   with the `batch.kubernetes.io/job-completion-index` annotation and label, hostname
//!   `<job>-<index>` and `JOB_COMPLETION_INDEX` in every container), a controller ownerReference
//!   and the `batch.kubernetes.io/job-tracking` finalizer; at most `parallelism` run at once, and
//!   no more than the completions still missing.
//! - A finished pod is counted through `status.uncountedTerminatedPods` (its uid first, then its
//!   finalizer is removed, then it moves to `succeeded` or `failed`), so no pod is counted twice
//!   or lost across restarts of the controller.
//! - After a failure a new pod waits 10 s, doubling with each further failure since the last
//!   success, at most 10 minutes.
//! - More failures than `backoffLimit` (with restartPolicy OnFailure: container restarts
//!   reaching it), or `activeDeadlineSeconds` passed since `startTime`: the Job gets
//!   FailureTarget, its pods are deleted, and once none is left, Failed (events
//!   `BackoffLimitExceeded` / `DeadlineExceeded`). Enough successes: SuccessCriteriaMet, then,
//!   once no pod is left running, Complete with `completionTime` (event `Completed`).
//! - `suspend`: active pods are deleted and the Job shows Suspended; resuming restarts the clock.
//!
//! Not yet: podFailurePolicy rules, backoffLimitPerIndex, successPolicy, podReplacementPolicy
//! `Failed` (a replacement is made once a pod is terminal or being deleted).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{reference, EventType, Recorder};
use crate::runtime::{controller_of, key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (events, logs, health checks).
pub const CONTROLLER: &str = "job-controller";

/// The finalizer that keeps a Job's pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// An Indexed Job's pod's index (annotation and label).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// The first wait after a failed pod, doubling per further failure (upstream 10 s).
const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest wait (upstream 10 minutes).
const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// The most completed indexes read from a status (a bound for a status written by hand).
const MAX_INDEXES: usize = 10_000_000;
/// Most pods one sync creates or deletes (upstream `MaxPodCreateDeletePerSync`).
const MAX_PER_SYNC: usize = 500;

/// Whether the pod has finished (Succeeded or Failed).
fn terminal(pod: &Pod) -> Option<bool> {
    match pod.status.as_ref()?.phase.as_deref()? {
        "Succeeded" => Some(true),
        "Failed" => Some(false),
        _ => None,
    }
}

/// Whether the Job counts the pod as finished, and how: a pod being deleted that did not
/// succeed counts as failed (podReplacementPolicy TerminatingOrFailed, upstream's default).
fn counted_as(pod: &Pod) -> Option<bool> {
    match terminal(pod) {
        Some(ok) => Some(ok),
        None if pod.metadata.deletion_timestamp.is_some() => Some(false),
        None => None,
    }
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn condition_true(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Whether the Job has finished: Complete or Failed.
pub fn is_finished(job: &Job) -> bool {
    condition_true(job, "Complete") || condition_true(job, "Failed")
}

/// When the Job finished (its Complete or Failed condition's transition).
pub fn finish_time(job: &Job) -> Option<DateTime<Utc>> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
}

/// The wait before the next pod after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// The index of an Indexed Job's pod.
fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// Upstream's compact index list: `1,3-5,7`.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Parse a compact index list (`1,3-5,7`) of indexes below `limit` (the Job's completions);
/// malformed parts and indexes out of range are skipped.
pub fn parse_indexes(s: &str, limit: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    // Only indexes the Job has, and never more than it has in all.
                    let (a, b) = (a.max(0), b.min(limit.saturating_sub(1)));
                    if b >= a && out.len() + ((b - a) as usize) < MAX_INDEXES {
                        out.extend(a..=b);
                    }
                }
            }
            None => {
                if let Ok(i) = part.parse::<i32>() {
                    if (0..limit).contains(&i) {
                        out.insert(i);
                    }
                }
            }
        }
    }
    out
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> JobCondition {
    let t = crate::clock::meta_time(now);
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

/// The pods that failed since the last success (by uid, so a pod seen again by a retried sync
/// counts once), and when the last one was seen failed, per Job uid.
#[derive(Default, Clone)]
struct Backoff {
    failed: BTreeSet<String>,
    last_failure: Option<DateTime<Utc>>,
}

struct Ctx {
    client: Client,
    clock: Clock,
    recorder: Recorder,
    jobs: Store<Job>,
    pods: Store<Pod>,
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Pods a sync created or deleted that the cache has not shown yet, per Job key, and since
    /// when: until they show (or 5 minutes pass) no further pods are created or deleted
    /// (upstream's expectations).
    expectations: Mutex<HashMap<String, Expectation>>,
}

/// Writes of one sync the cache has yet to show.
#[derive(Default)]
struct Expectation {
    /// Names of pods created.
    creates: BTreeSet<String>,
    /// Uids of pods deleted.
    deletes: BTreeSet<String>,
    since: Option<DateTime<Utc>>,
}

/// How long expectations may stay unmet before a sync acts anyway (upstream 5 min).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// Run the controller until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    host: String,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let (job_informer, mut job_changes) = informers.subscribe_all::<Job>();
    let (pod_informer, mut pod_changes) = informers.subscribe_all::<Pod>();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), CONTROLLER, &host),
        client,
        clock: clock.clone(),
        jobs: job_informer.store(),
        pods: pod_informer.store(),
        backoff: Mutex::new(HashMap::new()),
        expectations: Mutex::new(HashMap::new()),
    });
    let queue = WorkQueue::new(clock);
    job_informer.ready().await;
    pod_informer.ready().await;
    let all = |ctx: &Ctx, queue: &WorkQueue<String>| {
        for job in ctx.jobs.state() {
            queue.add(key_of(job.as_ref()));
        }
    };
    all(&ctx, &queue);
    // Pods of Jobs that are gone still carry the finalizer: their keys are synced too.
    for pod in ctx.pods.state() {
        if let Some(key) = job_key(&pod) {
            queue.add(key);
        }
    }
    let feeder = {
        let queue = queue.clone();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = job_changes.recv() => match change {
                        Ok(Change::Applied(job) | Change::Deleted(job)) => queue.add(key_of(job.as_ref())),
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                    change = pod_changes.recv() => match change {
                        Ok(Change::Applied(pod) | Change::Deleted(pod)) => {
                            if let Some(key) = job_key(&pod) {
                                queue.add(key);
                            }
                        }
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                }
            }
        })
    };
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => break,
            key = queue.next() => match key { Some(k) => k, None => break },
        };
        reconcile(&queue, key.clone(), CONTROLLER, sync(&ctx, &key)).await;
    }
    queue.shut_down();
    feeder.abort();
}

/// The key of the Job that controls `pod`.
fn job_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata).filter(|o| o.kind == "Job")?;
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    Some(format!("{ns}/{}", owner.name))
}

fn owner_ref(job: &Job) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Drop the tracking finalizer from a pod.
async fn release(api: &Api<Pod>, pod: &Pod) -> kube::Result<()> {
    let finalizers: Vec<String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": finalizers}});
    let name = pod.metadata.name.clone().unwrap_or_default();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pods `job` controls (by uid), from the cache.
fn owned_pods(ctx: &Ctx, ns: &str, job_name: &str, uid: Option<&str>) -> Vec<Arc<Pod>> {
    ctx.pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| {
            controller_of(&p.metadata).is_some_and(|o| {
                o.kind == "Job" && o.name == job_name && uid.is_none_or(|u| o.uid == u)
            })
        })
        .collect()
}

/// One sync of one Job. Returns when to look again, if a timer is needed.
async fn sync(ctx: &Ctx, key: &str) -> kube::Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let job = ctx.jobs.get(&ObjectRef::new(name).within(ns));
    let Some(job) = job.filter(|j| j.metadata.deletion_timestamp.is_none()) else {
        // The Job is gone (or going): its pods no longer wait to be counted.
        ctx.expectations.lock().remove(key);
        for pod in owned_pods(ctx, ns, name, None) {
            if has_finalizer(&pod) {
                release(&pods_api, &pod).await?;
            }
        }
        return Ok(None);
    };
    let now = ctx.clock.now();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let mut status = job.status.clone().unwrap_or_default();
    let pods = owned_pods(ctx, ns, name, Some(&uid));

    if is_finished(&job) {
        for pod in pods.iter().filter(|p| has_finalizer(p)) {
            release(&pods_api, pod).await?;
        }
        return Ok(None);
    }

    // Counting: finished pods' uids go to uncountedTerminatedPods, then their finalizers go,
    // then they move to the counters.
    let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_succeeded: BTreeSet<String> =
        uncounted.succeeded.iter().flatten().cloned().collect();
    let mut unc_failed: BTreeSet<String> = uncounted.failed.iter().flatten().cloned().collect();
    let by_uid: HashMap<String, &Arc<Pod>> = pods
        .iter()
        .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
        .collect();
    // Those whose finalizer is gone (or the pod itself) are counted now.
    let mut succeeded = status.succeeded.unwrap_or(0);
    let mut failed = status.failed.unwrap_or(0);
    let mut completed: BTreeSet<i32> = status
        .completed_indexes
        .as_deref()
        .map(|s| parse_indexes(s, spec.completions.unwrap_or(0)))
        .unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    unc_succeeded.retain(|u| {
        let keep = by_uid.get(u).is_some_and(|p| has_finalizer(p));
        if !keep {
            succeeded += 1;
            if let Some(i) = by_uid.get(u).and_then(|p| index_of(p)) {
                completed.insert(i);
            }
        }
        keep
    });
    unc_failed.retain(|u| {
        let keep = by_uid.get(u).is_some_and(|p| has_finalizer(p));
        if !keep {
            failed += 1;
        }
        keep
    });
    let mut newly_finished = Vec::new();
    {
        let mut backoffs = ctx.backoff.lock();
        let record = backoffs.entry(uid.clone()).or_default();
        for pod in &pods {
            let Some(pod_uid) = pod.metadata.uid.clone() else {
                continue;
            };
            let Some(ok) = counted_as(pod) else { continue };
            if !has_finalizer(pod)
                || unc_succeeded.contains(&pod_uid)
                || unc_failed.contains(&pod_uid)
            {
                continue;
            }
            if ok {
                unc_succeeded.insert(pod_uid);
                if let Some(i) = index_of(pod) {
                    completed.insert(i);
                }
                record.failed.clear();
            } else {
                unc_failed.insert(pod_uid.clone());
                if record.failed.insert(pod_uid) {
                    record.last_failure = Some(now);
                }
            }
            newly_finished.push(pod.clone());
        }
    }
    let total_succeeded = succeeded + unc_succeeded.len() as i32;
    let total_failed = failed + unc_failed.len() as i32;
    // Indexed: an index counts once, however many of its pods succeeded.
    if indexed {
        for u in &unc_succeeded {
            if let Some(i) = by_uid.get(u).and_then(|p| index_of(p)) {
                completed.insert(i);
            }
        }
    }

    let active: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| terminal(p).is_none() && p.metadata.deletion_timestamp.is_none())
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| terminal(p).is_none() && p.metadata.deletion_timestamp.is_some())
        .count() as i32;
    let ready = active
        .iter()
        .filter(|p| crate::k8s::pod_is_ready(p))
        .count() as i32;

    let mut conditions = status.conditions.clone().unwrap_or_default();
    let job_ref = reference(job.as_ref());
    let mut requeue: Option<Duration> = None;
    let mut to_delete: Vec<Arc<Pod>> = Vec::new();
    let mut to_create: Vec<Option<i32>> = Vec::new();

    // Suspension.
    let suspended = spec.suspend == Some(true);
    let was_suspended = conditions
        .iter()
        .any(|c| c.type_ == "Suspended" && c.status == "True");
    if suspended && !was_suspended {
        conditions.retain(|c| c.type_ != "Suspended");
        conditions.push(new_condition(
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        ));
        ctx.recorder
            .record(
                &job_ref,
                EventType::Normal,
                "Suspended",
                "",
                "Job suspended",
            )
            .await;
        status.start_time = None;
    } else if !suspended && was_suspended {
        for c in conditions.iter_mut().filter(|c| c.type_ == "Suspended") {
            *c = new_condition("Suspended", "False", "JobResumed", "Job resumed", now);
        }
        ctx.recorder
            .record(&job_ref, EventType::Normal, "Resumed", "", "Job resumed")
            .await;
        status.start_time = Some(crate::clock::meta_time(now));
    }
    if !suspended && status.start_time.is_none() {
        status.start_time = Some(crate::clock::meta_time(now));
    }

    let failure_target = conditions
        .iter()
        .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        .cloned();
    let success_met = conditions
        .iter()
        .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True");
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    let restarts: i32 = active
        .iter()
        .flat_map(|p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.container_statuses.clone())
                .into_iter()
                .flatten()
                .chain(
                    s.and_then(|s| s.init_container_statuses.clone())
                        .into_iter()
                        .flatten(),
                )
        })
        .map(|c| c.restart_count)
        .sum();
    let elapsed = status
        .start_time
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        .map(|start| now - start);
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let reached = match completions {
        Some(c) if indexed => completed.len() as i32 >= c,
        Some(c) => total_succeeded >= c,
        // A work queue: done when one succeeded and none is left running.
        None => total_succeeded > 0 && active.is_empty(),
    };

    if failure_target.is_none() && !success_met && !suspended {
        let failure = if total_failed > backoff_limit
            || (on_failure
                && ((backoff_limit == 0 && restarts > 0)
                    || (backoff_limit > 0 && restarts >= backoff_limit)))
        {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else if let (Some(deadline), Some(elapsed)) = (spec.active_deadline_seconds, elapsed) {
            if elapsed.num_seconds() >= deadline {
                Some((
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ))
            } else {
                let left = Duration::from_secs((deadline - elapsed.num_seconds()).max(0) as u64);
                requeue = Some(left);
                None
            }
        } else {
            None
        };
        if let Some((reason, message)) = failure {
            conditions.push(new_condition("FailureTarget", "True", reason, message, now));
        } else if reached {
            conditions.push(new_condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        }
    }
    let failure_target = conditions
        .iter()
        .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        .cloned();
    let success_met = conditions
        .iter()
        .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True");

    let settled = {
        let mut expectations = ctx.expectations.lock();
        let entry = expectations.entry(key.to_string()).or_default();
        entry.creates.retain(|n| {
            !pods
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(n.as_str()))
        });
        entry.deletes.retain(|u| {
            pods.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(u.as_str())
                    && p.metadata.deletion_timestamp.is_none()
            })
        });
        let expired = entry.since.is_some_and(|since| {
            now - since > chrono::Duration::from_std(EXPECTATIONS_TIMEOUT).unwrap_or_default()
        });
        if expired {
            *entry = Expectation::default();
        }
        entry.creates.is_empty() && entry.deletes.is_empty()
    };
    if !settled {
        // The cache has not shown the last sync's pods yet; their change brings us back.
    } else if failure_target.is_some() || success_met || suspended {
        // Nothing more runs.
        to_delete.extend(active.iter().map(|p| (*p).clone()));
    } else {
        // How many should run now, and which indexes.
        let want = match completions {
            Some(c) if indexed => (c - completed.len() as i32).min(parallelism),
            Some(c) => (c - total_succeeded).min(parallelism),
            None if total_succeeded > 0 => 0,
            None => parallelism,
        }
        .max(0) as usize;
        let wait = {
            let record = ctx.backoff.lock().get(&uid).cloned().unwrap_or_default();
            let delay = backoff(u32::try_from(record.failed.len()).unwrap_or(u32::MAX));
            record
                .last_failure
                .map(|at| at + chrono::Duration::from_std(delay).unwrap_or_default() - now)
                .filter(|left| *left > chrono::Duration::zero())
        };
        if active.len() > want {
            // Too many (parallelism lowered): the newest go.
            let mut extra: Vec<&Arc<Pod>> = active.clone();
            extra.sort_by_key(|p| {
                std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0))
            });
            to_delete.extend(extra.into_iter().take(active.len() - want).cloned());
        } else if active.len() < want {
            if let Some(left) = wait {
                requeue = Some(
                    left.to_std()
                        .unwrap_or_default()
                        .max(Duration::from_millis(100)),
                );
            } else if indexed {
                let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
                let c = completions.unwrap_or(0);
                to_create.extend(
                    (0..c)
                        .filter(|i| !completed.contains(i) && !running.contains(i))
                        .take((want - active.len()).min(MAX_PER_SYNC))
                        .map(Some),
                );
            } else {
                // At most a sync's worth (parallelism may be up to 2^31).
                to_create.extend(std::iter::repeat_n(
                    None,
                    (want - active.len()).min(MAX_PER_SYNC),
                ));
            }
        }
    }

    // Writes: status with the newly finished pods' uids first, so they are never lost.
    uncounted = UncountedTerminatedPods {
        succeeded: Some(unc_succeeded.iter().cloned().collect())
            .filter(|v: &Vec<String>| !v.is_empty()),
        failed: Some(unc_failed.iter().cloned().collect()).filter(|v: &Vec<String>| !v.is_empty()),
    };
    // The terminal condition waits until no pod is left running or holding its finalizer.
    let pods_left = pods.iter().any(|p| has_finalizer(p))
        || !to_delete.is_empty()
        || terminating > 0
        || !active.is_empty();
    let all_counted =
        unc_succeeded.is_empty() && unc_failed.is_empty() && newly_finished.is_empty();
    let mut finished_event = None;
    if all_counted && !pods_left {
        if let Some(target) = &failure_target {
            if !conditions.iter().any(|c| c.type_ == "Failed") {
                let reason = target.reason.clone().unwrap_or_default();
                let message = target.message.clone().unwrap_or_default();
                conditions.push(new_condition("Failed", "True", &reason, &message, now));
                finished_event = Some((EventType::Warning, reason, message));
            }
        } else if success_met && !conditions.iter().any(|c| c.type_ == "Complete") {
            conditions.push(new_condition(
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            status.completion_time = Some(crate::clock::meta_time(now));
            finished_event = Some((
                EventType::Normal,
                "Completed".into(),
                "Job completed".into(),
            ));
        }
    }
    // Pods deleted now no longer count as active (to_delete holds only active pods).
    let mut new_status = JobStatus {
        active: Some(active.len().saturating_sub(to_delete.len()) as i32),
        ready: Some(ready),
        terminating: Some(terminating),
        succeeded: Some(succeeded),
        failed: Some(failed),
        start_time: status.start_time.clone(),
        completion_time: status.completion_time.clone(),
        completed_indexes: indexed
            .then(|| format_indexes(&completed))
            .filter(|s| !s.is_empty()),
        failed_indexes: None,
        uncounted_terminated_pods: Some(uncounted),
        conditions: Some(conditions).filter(|c| !c.is_empty()),
    };
    // upstream omits zero counters (`omitempty`) but for ready and terminating.
    for v in [
        &mut new_status.active,
        &mut new_status.succeeded,
        &mut new_status.failed,
    ] {
        if *v == Some(0) {
            *v = None;
        }
    }
    if job.status.as_ref() != Some(&new_status) {
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
        let mut object = (*job).clone();
        object.status = Some(new_status);
        match api
            .replace_status(name, &PostParams::default(), &object)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                return Ok(Some(Duration::ZERO))
            }
            Err(e) => return Err(e),
        }
    }
    if let Some((type_, reason, message)) = finished_event {
        ctx.recorder
            .record(&job_ref, type_, &reason, "", &message)
            .await;
        ctx.backoff.lock().remove(&uid);
    }
    // Then the pods recorded as finished let go (again, if an earlier release failed).
    for pod in pods.iter().filter(|p| {
        has_finalizer(p)
            && p.metadata
                .uid
                .as_ref()
                .is_some_and(|u| unc_succeeded.contains(u) || unc_failed.contains(u))
    }) {
        release(&pods_api, pod).await?;
    }
    if !to_delete.is_empty() || !to_create.is_empty() {
        let mut expectations = ctx.expectations.lock();
        let entry = expectations.entry(key.to_string()).or_default();
        entry.since = Some(now);
        entry
            .deletes
            .extend(to_delete.iter().filter_map(|p| p.metadata.uid.clone()));
    }
    for pod in to_delete.iter().take(MAX_PER_SYNC) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        super::podcontrol::delete_pod(&pods_api, &ctx.recorder, &job_ref, &pod_name).await;
    }
    create_pods(ctx, &job, key, &pods_api, to_create).await;
    Ok(requeue)
}

/// The pod of `job` for `index` (Indexed) or any (NonIndexed).
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            spec.hostname.get_or_insert_with(|| format!("{name}-{i}"));
            let env = k8s_openapi::api::core::v1::EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                    field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                    }),
                    ..Default::default()
                }),
            };
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                let envs = c.env.get_or_insert_with(Vec::new);
                if !envs.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    envs.push(env.clone());
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    let mut finalizers = meta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.into());
    Pod {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels).filter(|l: &BTreeMap<String, String>| !l.is_empty()),
            annotations: Some(annotations).filter(|a: &BTreeMap<String, String>| !a.is_empty()),
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

async fn create_pods(
    ctx: &Ctx,
    job: &Arc<Job>,
    key: &str,
    api: &Api<Pod>,
    indexes: Vec<Option<i32>>,
) {
    let pods: Vec<Pod> = indexes
        .into_iter()
        .take(MAX_PER_SYNC)
        .map(|i| pod_for(job, i))
        .collect();
    super::podcontrol::create_pods(api, &ctx.recorder, &reference(job.as_ref()), pods, |name| {
        ctx.expectations
            .lock()
            .entry(key.to_string())
            .or_default()
            .creates
            .insert(name.to_string());
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_ten_seconds_to_ten_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(7), Duration::from_secs(600));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(600));
    }

    #[test]
    fn index_lists_are_compact() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7", 8), set);
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(parse_indexes("x,3,5-1", 8), [3].into());
        // Only the Job's own indexes, however large the ranges a status claims.
        assert_eq!(
            parse_indexes("-5,0-1,7,9,2-2147483647", 4),
            [0, 1, 2, 3].into()
        );
        assert_eq!(parse_indexes("0-2147483646", i32::MAX).len(), 0);
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "sq", "namespace": "default", "uid": "u"},
            "spec": {"completionMode": "Indexed", "completions": 3, "template": {
                "metadata": {"labels": {"job-name": "sq"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
        }))
        .unwrap();
        let pod = serde_json::to_value(pod_for(&job, Some(2))).unwrap();
        assert_eq!(pod["metadata"]["generateName"], "sq-2-");
        assert_eq!(pod["metadata"]["labels"][COMPLETION_INDEX], "2");
        assert_eq!(pod["metadata"]["annotations"][COMPLETION_INDEX], "2");
        assert_eq!(pod["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(pod["spec"]["hostname"], "sq-2");
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
        let plain = serde_json::to_value(pod_for(&job, None)).unwrap();
        assert_eq!(plain["metadata"]["generateName"], "sq-");
    }
}
