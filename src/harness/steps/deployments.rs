//! Deployments: scaling, new images, rollback, pause and resume, and what their status says.

use cucumber::gherkin::Step;
use cucumber::{then, when};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::params::Within;
use crate::harness::timeline::{Check, Kind, Object, State};
use crate::harness::vocabulary::{then, when, Phrase};
use crate::harness::{describe, Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    when(
        "I scale deployment {word} to {int} replica(s)",
        "I scale deployment web to 5 replicas",
        "Set the Deployment's scale (as kubectl scale does).",
    ),
    when(
        "I set the image of deployment {word} to {word}",
        "I set the image of deployment web to nginx:1.28",
        "Set the image of every container of the pod template (kubectl set image).",
    ),
    when(
        "I roll back deployment {word}",
        "I roll back deployment web",
        "Roll back to the previous revision (kubectl rollout undo).",
    ),
    when(
        "I pause the rollout of deployment {word}",
        "I pause the rollout of deployment web",
        "kubectl rollout pause.",
    ),
    when(
        "I resume the rollout of deployment {word}",
        "I resume the rollout of deployment web",
        "kubectl rollout resume.",
    ),
    then(
        "within {duration} deployment {word} is rolled out",
        "within 60 seconds deployment web is rolled out",
        "What kubectl rollout status waits for: the controller saw the latest spec, every replica is updated and available, no old replica is left.",
    ),
    then(
        "within {duration} deployment {word} has {int} ready replica(s)",
        "within 30s deployment web has 3 ready replicas",
        "status.readyReplicas.",
    ),
    then(
        "within {duration} deployment {word} has condition {word} {word} with reason {word}",
        "within 30s deployment web has condition Progressing True with reason NewReplicaSetAvailable",
        "A status condition's type, status and reason.",
    ),
    then(
        "within {duration} deployment {word} is at revision {int}",
        "within 30s deployment web is at revision 3",
        "The deployment.kubernetes.io/revision annotation.",
    ),
    then(
        "within {duration} deployment {word} has replica sets:",
        "within 30s deployment web has replica sets:",
        "The Deployment's ReplicaSets by image and spec.replicas: a | image | replicas | table, every ReplicaSet listed.",
    )
    .with_table(),
    then(
        "within {duration} deployment {word} has {int} pod(s)",
        "within 30s deployment web has 3 pods",
        "Pods of the Deployment that are not being deleted.",
    ),
    then(
        "within {duration} deployment {word} has {int} ready pod(s)",
        "within 60s deployment web has 3 ready pods",
        "Pods of the Deployment that are Ready and not being deleted.",
    ),
];

fn deployment<'a>(s: &'a State, ns: &str, name: &str) -> Option<&'a Deployment> {
    match s.get(Kind::Deployment, ns, name) {
        Some(Object::Deployment(d)) => Some(d),
        _ => None,
    }
}

async fn patch(w: &mut World, name: &str, body: serde_json::Value) -> StepResult {
    let env = w.env().await?;
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let d = api
        .patch(name, &PatchParams::default(), &Patch::Strategic(body))
        .await
        .map_err(|e| Failure::new(format!("cannot change deployment {name}: {e}")))?;
    seen(env, name, d.metadata.resource_version.as_deref()).await
}

/// Wait until the timeline has seen the write that left deployment `name` at `rv`.
async fn seen(env: &crate::harness::world::Env, name: &str, rv: Option<&str>) -> StepResult {
    env.timeline
        .seen(Kind::Deployment, &env.namespace, name, rv)
        .await
        .map_err(Into::into)
}

#[when(expr = "I scale deployment {word} to {int} replica(s)")]
async fn scale(w: &mut World, name: String, replicas: i32) -> StepResult {
    let env = w.env().await?;
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let scale = api
        .patch_scale(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map_err(|e| Failure::new(format!("cannot scale deployment {name}: {e}")))?;
    seen(env, &name, scale.metadata.resource_version.as_deref()).await
}

#[when(expr = "I set the image of deployment {word} to {word}")]
async fn set_image(w: &mut World, name: String, image: String) -> StepResult {
    let env = w.env().await?;
    let containers: Vec<String> = env.timeline.read(|s| {
        deployment(s, &env.namespace, &name)
            .and_then(|d| d.spec.as_ref()?.template.spec.as_ref())
            .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    });
    if containers.is_empty() {
        return Err(Failure::new(format!(
            "there is no deployment {name} with containers"
        )));
    }
    let containers: Vec<_> = containers
        .iter()
        .map(|c| json!({"name": c, "image": image}))
        .collect();
    patch(
        w,
        &name,
        json!({"spec": {"template": {"spec": {"containers": containers}}}}),
    )
    .await
}

#[when(expr = "I roll back deployment {word}")]
async fn roll_back(w: &mut World, name: String) -> StepResult {
    let env = w.env().await?;
    // What kubectl rollout undo does: among the Deployment's ReplicaSets, take the one with the
    // second-highest revision and copy its pod template (without the pod-template-hash label)
    // into the Deployment.
    let template = env.timeline.read(|s| -> Result<serde_json::Value, String> {
        let d = deployment(s, &env.namespace, &name)
            .ok_or_else(|| format!("there is no deployment {name}"))?;
        let mut sets = replica_sets_of(s, d);
        sets.sort_by_key(|rs| std::cmp::Reverse(revision(&rs.metadata)));
        let previous = sets
            .get(1)
            .ok_or_else(|| format!("deployment {name} has no previous revision to roll back to"))?;
        let mut t = serde_json::to_value(&previous.spec.as_ref().map(|s| s.template.clone()))
            .map_err(|e| e.to_string())?;
        if let Some(labels) = t
            .pointer_mut("/metadata/labels")
            .and_then(|l| l.as_object_mut())
        {
            labels.remove("pod-template-hash");
        }
        Ok(t)
    });
    let template = template.map_err(Failure::new)?;
    // A JSON patch that replaces the template, as kubectl sends it.
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template}
    ]))
    .map_err(|e| Failure::new(e.to_string()))?;
    let d = api
        .patch(&name, &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .map_err(|e| Failure::new(format!("cannot roll back deployment {name}: {e}")))?;
    seen(env, &name, d.metadata.resource_version.as_deref()).await
}

fn revision(meta: &kube::api::ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

#[when(expr = "I pause the rollout of deployment {word}")]
async fn pause(w: &mut World, name: String) -> StepResult {
    patch(w, &name, json!({"spec": {"paused": true}})).await
}

#[when(expr = "I resume the rollout of deployment {word}")]
async fn resume(w: &mut World, name: String) -> StepResult {
    patch(w, &name, json!({"spec": {"paused": null}})).await
}

/// Wait until `check` holds for deployment `name`; on timeout report it, its ReplicaSets and pods.
async fn wait_deployment(
    w: &mut World,
    within: Within,
    name: &str,
    expected: &str,
    check: impl Fn(&State, &Deployment) -> Result<(), String>,
) -> StepResult {
    let env = w.env().await?;
    let ns = env.namespace.clone();
    let clock = env.timeline.clock().clone();
    env.timeline
        .wait(within.0, &format!("deployment {name} {expected}"), |s| {
            let Some(d) = deployment(s, &ns, name) else {
                return Check::NotYet(format!(
                    "there is no deployment {name}; the timeline shows:\n{}",
                    super::overview(s, &ns, clock.now())
                ));
            };
            match check(s, d) {
                Ok(()) => Check::Done(()),
                Err(why) => Check::NotYet(format!(
                    "{why}\nthe timeline shows:\n{}",
                    super::overview(s, &ns, clock.now())
                )),
            }
        })
        .await?;
    Ok(())
}

#[then(expr = "within {duration} deployment {word} is rolled out")]
async fn rolled_out(w: &mut World, within: Within, name: String) -> StepResult {
    wait_deployment(w, within, &name, "to be rolled out", |s, d| {
        rollout_status(s, d)
    })
    .await
}

/// kubectl rollout status's verdict.
fn rollout_status(s: &State, d: &Deployment) -> Result<(), String> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Err("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
    {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Err(format!(
                "deployment {name:?} exceeded its progress deadline"
            ));
        }
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Err(format!(
            "{updated} out of {want} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return Err(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Err(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    let _ = s;
    Ok(())
}

#[then(expr = "within {duration} deployment {word} has {int} ready replica(s)")]
async fn ready_replicas(w: &mut World, within: Within, name: String, n: i32) -> StepResult {
    wait_deployment(
        w,
        within,
        &name,
        &format!("to have {n} ready replicas"),
        |_, d| {
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if ready == n {
                Ok(())
            } else {
                Err(format!("status.readyReplicas is {ready}"))
            }
        },
    )
    .await
}

#[then(expr = "within {duration} deployment {word} has condition {word} {word} with reason {word}")]
async fn condition(
    w: &mut World,
    within: Within,
    name: String,
    type_: String,
    status: String,
    reason: String,
) -> StepResult {
    wait_deployment(
        w,
        within,
        &name,
        &format!("to have condition {type_}={status} ({reason})"),
        |_, d| {
            let conditions = d.status.as_ref().and_then(|s| s.conditions.as_ref());
            let c = super::find_condition(conditions, &type_);
            super::check_condition(&type_, c, &status, Some(&reason))
        },
    )
    .await
}

#[then(expr = "within {duration} deployment {word} is at revision {int}")]
async fn at_revision(w: &mut World, within: Within, name: String, rev: i64) -> StepResult {
    wait_deployment(
        w,
        within,
        &name,
        &format!("to be at revision {rev}"),
        |_, d| {
            let r = revision(&d.metadata);
            if r == rev {
                Ok(())
            } else {
                Err(format!("it is at revision {r}"))
            }
        },
    )
    .await
}

fn replica_sets_of<'a>(s: &'a State, d: &Deployment) -> Vec<&'a ReplicaSet> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    s.of_kind(Kind::ReplicaSet)
        .filter(|o| describe::controller_uid(o) == Some(uid.as_str()))
        .filter_map(|o| match o {
            Object::ReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .collect()
}

fn image_of(rs: &ReplicaSet) -> String {
    describe::replica_set_images(rs).join(",")
}

#[then(expr = "within {duration} deployment {word} has replica sets:")]
async fn replica_sets(w: &mut World, within: Within, name: String, step: &Step) -> StepResult {
    let rows = step
        .table
        .as_ref()
        .ok_or_else(|| Failure::new("this step needs a | image | replicas | table"))?
        .rows
        .clone();
    let mut want: Vec<(String, i32)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if i == 0 {
            if row.iter().map(|c| c.trim()).collect::<Vec<_>>() != ["image", "replicas"] {
                return Err(Failure::new(
                    "the table's header must be | image | replicas |",
                ));
            }
            continue;
        }
        let [image, n] = row.as_slice() else {
            return Err(Failure::new(format!("row {} needs two cells", i + 1)));
        };
        let n = n
            .trim()
            .parse::<i32>()
            .map_err(|_| Failure::new(format!("{n:?} is not a number of replicas")))?;
        want.push((image.trim().to_string(), n));
    }
    want.sort();
    let expected = want
        .iter()
        .map(|(i, n)| format!("{i}={n}"))
        .collect::<Vec<_>>()
        .join(", ");
    wait_deployment(
        w,
        within,
        &name,
        &format!("to have replica sets {expected}"),
        |s, d| {
            let mut have: Vec<(String, i32)> = replica_sets_of(s, d)
                .iter()
                .map(|rs| {
                    (
                        image_of(rs),
                        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )
                })
                .collect();
            have.sort();
            if have == want {
                Ok(())
            } else {
                Err(format!(
                    "its replica sets are {}",
                    have.iter()
                        .map(|(i, n)| format!("{i}={n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        },
    )
    .await
}

fn live_pods_of(s: &State, ns: &str, name: &str) -> Vec<k8s_openapi::api::core::v1::Pod> {
    let selector = crate::harness::params::Selector::PodsOf {
        owner: Kind::Deployment,
        name: name.to_string(),
    };
    describe::current(s, ns, &selector)
        .into_iter()
        .filter_map(|o| match o {
            Object::Pod(p) if p.metadata.deletion_timestamp.is_none() => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[then(expr = "within {duration} deployment {word} has {int} pod(s)")]
async fn pods(w: &mut World, within: Within, name: String, n: usize) -> StepResult {
    let ns = w.env().await?.namespace.clone();
    wait_deployment(w, within, &name, &format!("to have {n} pods"), |s, _| {
        let have = live_pods_of(s, &ns, &name).len();
        if have == n {
            Ok(())
        } else {
            Err(format!("it has {have} pods"))
        }
    })
    .await
}

#[then(expr = "within {duration} deployment {word} has {int} ready pod(s)")]
async fn ready_pods(w: &mut World, within: Within, name: String, n: usize) -> StepResult {
    let ns = w.env().await?.namespace.clone();
    wait_deployment(
        w,
        within,
        &name,
        &format!("to have {n} ready pods"),
        |s, _| {
            let pods = live_pods_of(s, &ns, &name);
            let ready = pods.iter().filter(|p| crate::k8s::pod_is_ready(p)).count();
            if ready == n && pods.len() == n {
                Ok(())
            } else {
                Err(format!("it has {} pods, {ready} ready", pods.len()))
            }
        },
    )
    .await
}
