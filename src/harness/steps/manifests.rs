//! Applying manifests (from a doc string or a file), creating configmaps and secrets, and
//! deleting objects with a propagation policy.

use std::collections::BTreeMap;

use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use kube::api::{Api, DeleteParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject};

use crate::harness::manifest::{self, Origin};
use crate::harness::params::Selector;
use crate::harness::params::Within;
use crate::harness::timeline::Check;
use crate::harness::timeline::Kind;
use crate::harness::vocabulary::{given, then, when, Phrase};
use crate::harness::{describe, Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    when(
        "I apply:",
        "I apply:",
        "Apply the YAML documents of the doc string in the scenario's namespace (server-side apply).",
    )
    .with_doc_string(),
    when(
        "I apply {word}",
        "I apply fixtures/web-deployment.yaml",
        "Apply a manifest file (path relative to the current directory).",
    ),
    given(
        "a configmap {word} with:",
        "a configmap app-config with:",
        "Create a ConfigMap from a | key | value | table.",
    )
    .with_table(),
    when(
        "I create a configmap {word} with:",
        "I create a configmap app-config with:",
        "Create a ConfigMap from a | key | value | table.",
    )
    .with_table(),
    given(
        "a secret {word} with:",
        "a secret db-credentials with:",
        "Create an Opaque Secret from a | key | value | table (values in plain text).",
    )
    .with_table(),
    when(
        "I delete {object}",
        "I delete deployment web",
        "Delete the objects (default propagation).",
    ),
    when(
        "I delete {object} with propagation policy {word}",
        "I delete deployment web with propagation policy Foreground",
        "Delete with propagation policy Foreground, Background or Orphan.",
    ),
    then(
        "within {duration} no {object} exists",
        "within 60s no pod web-* exists",
        "Every object the selector meant is gone from the API.",
    ),
    then(
        "within {duration} {object} exists/exist",
        "within 30s replicaset web-* exists",
        "At least one object the selector means exists.",
    ),
    then(
        "within {duration} {object} has/have no owner",
        "within 30s replicaset web-* has no owner",
        "The objects have no controller ownerReference (orphaned).",
    ),
    then(
        "within {duration} {object} is/are being deleted",
        "within 10s deployment web is being deleted",
        "The objects have a deletionTimestamp (finalizers hold them).",
    ),
];

fn origin(w: &World, step: &Step) -> Origin {
    let file = w
        .feature_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<feature>".into());
    Origin::doc_string(
        &file,
        step.position.line,
        step.docstring.as_deref().unwrap_or(""),
    )
}

async fn apply_docs(w: &mut World, docs: Vec<manifest::Document>) -> StepResult {
    let env = w.env().await?;
    let (client, ns) = (env.client.clone(), env.namespace.clone());
    let mut created = Vec::new();
    for doc in &docs {
        let applied = manifest::apply(&client, &ns, doc)
            .await
            .map_err(Failure::new)?;
        // Read your writes, for the kinds the timeline watches where this object lives.
        let scope = match Kind::parse(&applied.kind) {
            Some(Kind::Node) => Some((Kind::Node, "")),
            Some(Kind::Lease) | None => None,
            Some(kind) => Some((kind, ns.as_str())),
        };
        if let Some((kind, namespace)) = scope {
            let rv = applied.resource_version.as_deref();
            env.timeline
                .seen(kind, namespace, &applied.name, rv)
                .await?;
        }
        created.push(format!(
            "{}/{}",
            applied.kind.to_ascii_lowercase(),
            applied.name
        ));
    }
    w.created.extend(created);
    Ok(())
}

async fn apply_doc_string(w: &mut World, step: &Step) -> StepResult {
    let text = step.docstring.as_deref().ok_or_else(|| {
        Failure::new("this step needs the manifest in a \"\"\" doc string below it")
    })?;
    let docs = manifest::parse(text, &origin(w, step)).map_err(Failure::new)?;
    apply_docs(w, docs).await
}

#[when(expr = "I apply:")]
async fn when_apply(w: &mut World, step: &Step) -> StepResult {
    apply_doc_string(w, step).await
}

async fn apply_file(w: &mut World, path: &str) -> StepResult {
    let docs = manifest::read(std::path::Path::new(path)).map_err(Failure::new)?;
    apply_docs(w, docs).await
}

#[when(expr = "I apply {word}")]
async fn when_apply_file(w: &mut World, path: String) -> StepResult {
    apply_file(w, &path).await
}

fn table(step: &Step) -> Result<BTreeMap<String, String>, Failure> {
    let rows = &step
        .table
        .as_ref()
        .ok_or_else(|| Failure::new("this step needs a | key | value | table below it"))?
        .rows;
    let mut data = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if i == 0 && row.first().map(|c| c.trim()) == Some("key") {
            continue;
        }
        match row.as_slice() {
            [k, v] => {
                data.insert(k.trim().to_string(), v.clone());
            }
            _ => {
                return Err(Failure::new(format!(
                    "row {} of the table has {} cells; expected | key | value |",
                    i + 1,
                    row.len()
                )))
            }
        }
    }
    Ok(data)
}

async fn create_configmap(w: &mut World, name: String, step: &Step) -> StepResult {
    let data = table(step)?;
    let doc = manifest::Document {
        value: serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
        location: origin(w, step).file + &format!(":{}", step.position.line),
    };
    apply_docs(w, vec![doc]).await
}

#[given(expr = "a configmap {word} with:")]
async fn configmap(w: &mut World, name: String, step: &Step) -> StepResult {
    create_configmap(w, name, step).await
}

#[when(expr = "I create a configmap {word} with:")]
async fn create_configmap_later(w: &mut World, name: String, step: &Step) -> StepResult {
    create_configmap(w, name, step).await
}

#[given(expr = "a secret {word} with:")]
async fn secret(w: &mut World, name: String, step: &Step) -> StepResult {
    let data = table(step)?;
    let doc = manifest::Document {
        value: serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name}, "stringData": data}),
        location: origin(w, step).file + &format!(":{}", step.position.line),
    };
    apply_docs(w, vec![doc]).await
}

fn resource_of(kind: Kind) -> ApiResource {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};
    match kind {
        Kind::Pod => ApiResource::erase::<core::Pod>(&()),
        Kind::ReplicaSet => ApiResource::erase::<apps::ReplicaSet>(&()),
        Kind::Deployment => ApiResource::erase::<apps::Deployment>(&()),
        Kind::Service => ApiResource::erase::<core::Service>(&()),
        Kind::Endpoints => ApiResource::erase::<core::Endpoints>(&()),
        Kind::Event => ApiResource::erase::<core::Event>(&()),
        Kind::Node => ApiResource::erase::<core::Node>(&()),
        Kind::Lease => ApiResource::erase::<k8s_openapi::api::coordination::v1::Lease>(&()),
        Kind::Job => ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&()),
    }
}

async fn delete(
    w: &mut World,
    selector: &Selector,
    policy: Option<PropagationPolicy>,
) -> StepResult {
    let env = w.env().await?;
    let targets: Vec<(Kind, String, String)> = env.timeline.read(|s| {
        describe::current(s, &env.namespace, selector)
            .into_iter()
            .map(|o| {
                let ns = o.meta().namespace.clone().unwrap_or_default();
                (o.kind(), ns, o.name().to_string())
            })
            .collect()
    });
    if targets.is_empty() {
        return Err(Failure::new(format!("there is no {selector} to delete")));
    }
    let params = DeleteParams {
        propagation_policy: policy,
        ..Default::default()
    };
    for (kind, ns, name) in targets {
        let resource = resource_of(kind);
        let api: Api<DynamicObject> = if ns.is_empty() {
            Api::all_with(env.client.clone(), &resource)
        } else {
            Api::namespaced_with(env.client.clone(), &ns, &resource)
        };
        match api.delete(&name, &params).await {
            Ok(either) => {
                // Read your writes: a graceful deletion leaves the object with a new version.
                if let Some(o) = either.left() {
                    let rv = o.metadata.resource_version.as_deref();
                    env.timeline.seen(kind, &ns, &name, rv).await?;
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Failure::new(format!("cannot delete {kind} {name}: {e}"))),
        }
    }
    Ok(())
}

#[when(expr = "I delete {object}")]
async fn delete_default(w: &mut World, selector: Selector) -> StepResult {
    delete(w, &selector, None).await
}

#[when(expr = "I delete {object} with propagation policy {word}")]
async fn delete_with_policy(w: &mut World, selector: Selector, policy: String) -> StepResult {
    let policy = match policy.as_str() {
        "Foreground" => PropagationPolicy::Foreground,
        "Background" => PropagationPolicy::Background,
        "Orphan" => PropagationPolicy::Orphan,
        other => {
            return Err(Failure::new(format!(
                "{other:?} is not a propagation policy (Foreground, Background or Orphan)"
            )))
        }
    };
    delete(w, &selector, Some(policy)).await
}

#[then(expr = "within {duration} no {object} exists")]
async fn gone(w: &mut World, within: Within, selector: Selector) -> StepResult {
    let env = w.env().await?;
    let ns = env.namespace.clone();
    let clock = env.timeline.clock().clone();
    env.timeline
        .wait(within.0, &format!("no {selector} to exist"), |s| {
            let left = describe::current(s, &ns, &selector);
            if left.is_empty() {
                Check::Done(())
            } else {
                Check::NotYet(format!(
                    "these still exist:\n{}",
                    describe::objects_report(s, &left, clock.now())
                ))
            }
        })
        .await?;
    Ok(())
}

#[then(expr = "within {duration} {object} exists/exist")]
async fn exists(w: &mut World, within: Within, selector: Selector) -> StepResult {
    let env = w.env().await?;
    super::wait_each(env, within.0, &selector, "to exist", |_, _| Ok(())).await
}

#[then(expr = "within {duration} {object} has/have no owner")]
async fn no_owner(w: &mut World, within: Within, selector: Selector) -> StepResult {
    let env = w.env().await?;
    super::wait_each(env, within.0, &selector, "to have no owner", |_, o| {
        match describe::controller_uid(o) {
            None => Ok(()),
            Some(uid) => Err(format!("is controlled by the object with uid {uid}")),
        }
    })
    .await
}

#[then(expr = "within {duration} {object} is/are being deleted")]
async fn being_deleted(w: &mut World, within: Within, selector: Selector) -> StepResult {
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector,
        "to be being deleted",
        |_, o| match &o.meta().deletion_timestamp {
            Some(_) => Ok(()),
            None => Err("has no deletionTimestamp".into()),
        },
    )
    .await
}
