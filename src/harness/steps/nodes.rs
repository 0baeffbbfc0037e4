//! Nodes: kubelets that stop, die or restart, nodes cut off the network, nodes that join, static pods, images that
//! disappear from the registry, and what node status and taints say.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use k8s_openapi::api::core::v1::Node;

use crate::harness::params::{Selector, Within};
use crate::harness::timeline::{Kind, Object};
use crate::harness::vocabulary::{given, then, when, Phrase};
use crate::harness::{Failure, StepResult, World};
use crate::target::Fault;

pub const PHRASES: &[Phrase] = &[
    when(
        "the kubelet of node {word} stops",
        "the kubelet of node node-2 stops",
        "The node's kubelet stops: no more status or Lease renewals (needs @needs:stop-node).",
    ),
    when(
        "the kubelet of node {word} is killed",
        "the kubelet of node node-2 is killed",
        "The node's kubelet dies abruptly (needs @needs:stop-node).",
    ),
    when(
        "the kubelet of node {word} restarts",
        "the kubelet of node node-2 restarts",
        "The node's kubelet starts again and re-registers (needs @needs:stop-node).",
    ),
    when(
        "node {word} is cut off from the network",
        "node node-2 is cut off from the network",
        "The node (its kubelet, kube-proxy and pods) loses its network: the apiserver and the other nodes cannot reach it, nor it them (needs @needs:partition-node).",
    ),
    when(
        "node {word} is connected to the network again",
        "node node-2 is connected to the network again",
        "A cut-off node gets its network back (needs @needs:partition-node).",
    ),
    when(
        "node {word} is paused",
        "node node-2 is paused",
        "Freeze the whole node, its kubelet, kube-proxy and pods, where they are: they neither act nor answer (needs @needs:pause-node).",
    ),
    when(
        "node {word} resumes",
        "node node-2 resumes",
        "Thaw a paused node: everything on it carries on from where it stopped (needs @needs:pause-node).",
    ),
    when(
        "a node {word} joins the cluster",
        "a node node-4 joins the cluster",
        "A new node with the cluster's node size (needs @needs:add-node).",
    ),
    when(
        "a node {word} with {word} CPU and {word} memory joins the cluster",
        "a node node-4 with 8 CPU and 16Gi memory joins the cluster",
        "A new node of this size (needs @needs:add-node).",
    ),
    given(
        "a static pod manifest {word} on node {word}:",
        "a static pod manifest static-web.yaml on node node-1:",
        "Put a pod manifest (doc string) in the node's static pod directory (needs @needs:static-pods).",
    )
    .with_doc_string(),
    when(
        "image {word} becomes unavailable",
        "image nginx:1.27 becomes unavailable",
        "Pulls of the image fail from now on, as from a registry that lost it (needs @needs:image-unavailable).",
    ),
    when(
        "image {word} becomes available again",
        "image nginx:1.27 becomes available again",
        "Pulls of the image work again (needs @needs:image-unavailable).",
    ),
    then(
        "within {duration} node {word} is ready",
        "within 30s node node-4 is ready",
        "The node's Ready condition is True.",
    ),
    then(
        "within {duration} node {word} is not ready",
        "within 1m node node-2 is not ready",
        "The node's Ready condition is not True (False or Unknown).",
    ),
    then(
        "within {duration} node {word} has condition {word} {word} with reason {word}",
        "within 1m node node-2 has condition Ready Unknown with reason NodeStatusUnknown",
        "A node condition's type, status and reason.",
    ),
    then(
        "within {duration} node {word} has taint {word}",
        "within 1m node node-2 has taint node.kubernetes.io/unreachable:NoExecute",
        "A taint written key:effect or key=value:effect.",
    ),
    then(
        "within {duration} node {word} has no taint {word}",
        "within 1m node node-2 has no taint node.kubernetes.io/unreachable:NoExecute",
        "No such taint.",
    ),
];

async fn fault(w: &mut World, f: Fault) -> StepResult {
    w.fault(f).await.map(|_| ())
}

#[when(expr = "the kubelet of node {word} stops")]
async fn stops(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::StopKubelet(node)).await
}

#[when(expr = "the kubelet of node {word} is killed")]
async fn killed(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::KillKubelet(node)).await
}

#[when(expr = "the kubelet of node {word} restarts")]
async fn restarts(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::RestartKubelet(node)).await
}

#[when(expr = "node {word} is cut off from the network")]
async fn cut_off(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::DisconnectNode(node)).await
}

#[when(expr = "node {word} is connected to the network again")]
async fn connected(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::ReconnectNode(node)).await
}

#[when(expr = "node {word} is paused")]
async fn paused(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::PauseNode(node)).await
}

#[when(expr = "node {word} resumes")]
async fn resumes(w: &mut World, node: String) -> StepResult {
    fault(w, Fault::ResumeNode(node)).await
}

#[when(expr = "a node {word} joins the cluster")]
async fn joins(w: &mut World, name: String) -> StepResult {
    fault(
        w,
        Fault::AddNode {
            name,
            cpu: None,
            memory: None,
        },
    )
    .await
}

#[when(expr = "a node {word} with {word} CPU and {word} memory joins the cluster")]
async fn joins_sized(w: &mut World, name: String, cpu: String, memory: String) -> StepResult {
    fault(
        w,
        Fault::AddNode {
            name,
            cpu: Some(cpu),
            memory: Some(memory),
        },
    )
    .await
}

#[given(expr = "a static pod manifest {word} on node {word}:")]
async fn static_pod(w: &mut World, file: String, node: String, step: &Step) -> StepResult {
    let plain = !file.is_empty()
        && file != "."
        && file != ".."
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !plain {
        return Err(Failure::new(format!(
            "{file:?} is not a file name: use letters, digits, '.', '-' and '_' (e.g. static-web.yaml)"
        )));
    }
    let text = step
        .docstring
        .clone()
        .ok_or_else(|| Failure::new("this step needs the pod manifest in a \"\"\" doc string"))?;
    let feature = w
        .feature_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<feature>".into());
    let origin = crate::harness::manifest::Origin::doc_string(&feature, step.position.line, &text);
    // Check it as a manifest (the namespace is the scenario's, set below).
    crate::harness::manifest::parse(&text, &origin).map_err(Failure::new)?;
    let namespace = w.env().await?.namespace.clone();
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| Failure::new(e.to_string()))?;
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_mapping_mut()) {
        meta.insert("namespace".into(), namespace.into());
    }
    let manifest = serde_yaml::to_string(&value).map_err(|e| Failure::new(e.to_string()))?;
    fault(
        w,
        Fault::StaticPod {
            node,
            file,
            manifest,
        },
    )
    .await
}

#[when(expr = "image {word} becomes unavailable")]
async fn unavailable(w: &mut World, image: String) -> StepResult {
    fault(
        w,
        Fault::ImageAvailable {
            image,
            available: false,
        },
    )
    .await
}

#[when(expr = "image {word} becomes available again")]
async fn available(w: &mut World, image: String) -> StepResult {
    fault(
        w,
        Fault::ImageAvailable {
            image,
            available: true,
        },
    )
    .await
}

fn node(o: &Object) -> Result<&Node, String> {
    match o {
        Object::Node(n) => Ok(n),
        other => Err(format!("is a {}", other.kind())),
    }
}

fn ready_condition(n: &Node) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("Ready={} ({})", c.status, c.reason.as_deref().unwrap_or("")))
        .unwrap_or_else(|| "no Ready condition".into())
}

fn selector(name: &str) -> Selector {
    Selector::Named {
        kind: Kind::Node,
        pattern: name.to_string(),
    }
}

#[then(expr = "within {duration} node {word} is ready")]
async fn is_ready(w: &mut World, within: Within, name: String) -> StepResult {
    let env = w.env().await?;
    super::wait_each(env, within.0, &selector(&name), "to be ready", |_, o| {
        let n = node(o)?;
        if crate::k8s::node_is_ready(n) {
            Ok(())
        } else {
            Err(ready_condition(n))
        }
    })
    .await
}

#[then(expr = "within {duration} node {word} is not ready")]
async fn is_not_ready(w: &mut World, within: Within, name: String) -> StepResult {
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector(&name),
        "not to be ready",
        |_, o| {
            let n = node(o)?;
            if crate::k8s::node_is_ready(n) {
                Err(ready_condition(n))
            } else {
                Ok(())
            }
        },
    )
    .await
}

#[then(expr = "within {duration} node {word} has condition {word} {word} with reason {word}")]
async fn condition(
    w: &mut World,
    within: Within,
    name: String,
    type_: String,
    status: String,
    reason: String,
) -> StepResult {
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector(&name),
        &format!("to have condition {type_}={status} ({reason})"),
        |_, o| {
            let conditions = node(o)?.status.as_ref().and_then(|s| s.conditions.as_ref());
            let c = super::find_condition(conditions, &type_);
            super::check_condition(&type_, c, &status, Some(&reason))
        },
    )
    .await
}

/// `key:effect` or `key=value:effect`.
fn parse_taint(t: &str) -> Result<(String, Option<String>, String), Failure> {
    let (kv, effect) = t.rsplit_once(':').ok_or_else(|| {
        Failure::new(format!(
            "{t:?} is not a taint: write key:effect or key=value:effect"
        ))
    })?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), None),
    };
    Ok((key, value, effect.to_string()))
}

fn taints(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| match &t.value {
            Some(v) => format!("{}={v}:{}", t.key, t.effect),
            None => format!("{}:{}", t.key, t.effect),
        })
        .collect()
}

fn has_taint(n: &Node, key: &str, value: &Option<String>, effect: &str) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .any(|t| t.key == key && t.effect == effect && (value.is_none() || &t.value == value))
}

#[then(expr = "within {duration} node {word} has taint {word}")]
async fn has_taint_step(w: &mut World, within: Within, name: String, taint: String) -> StepResult {
    let (key, value, effect) = parse_taint(&taint)?;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector(&name),
        &format!("to have taint {taint}"),
        |_, o| {
            let n = node(o)?;
            if has_taint(n, &key, &value, &effect) {
                Ok(())
            } else {
                Err(format!("its taints are [{}]", taints(n).join(", ")))
            }
        },
    )
    .await
}

#[then(expr = "within {duration} node {word} has no taint {word}")]
async fn no_taint(w: &mut World, within: Within, name: String, taint: String) -> StepResult {
    let (key, value, effect) = parse_taint(&taint)?;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector(&name),
        &format!("not to have taint {taint}"),
        |_, o| {
            let n = node(o)?;
            if has_taint(n, &key, &value, &effect) {
                Err(format!("its taints are [{}]", taints(n).join(", ")))
            } else {
                Ok(())
            }
        },
    )
    .await
}
