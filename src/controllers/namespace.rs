//! The namespace controller: empties a namespace that is being deleted, then releases it.
//!
//! As upstream's (with 1.33's ordered namespace deletion): for a namespace with a deletion
//! timestamp it deletes the pods first and waits for them to go (they shut down within their
//! grace periods), then deletes every other namespaced resource discovery lists, reports what
//! remains in the namespace's conditions, and once nothing is left removes its `kubernetes`
//! finalizer (`namespaces/{name}/finalize`) and deletes it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceSpec, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions};
use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::runtime::{reconcile, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "namespace-controller";

/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// How long upstream assumes other controllers need to finish finalizers it finds.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// Why a pass did not finish.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The API refused or failed a request.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// Objects remain that nothing holds (upstream's wording).
    #[error("{0}")]
    Leftover(String),
}

/// Run the controller until `shutdown`.
pub async fn run(client: Client, clock: Clock, informers: &Informers, shutdown: CancellationToken) {
    let (namespaces, mut changes) = informers.subscribe_all::<Namespace>();
    namespaces.ready().await;
    let queue = WorkQueue::new(clock.clone());
    let all = |queue: &WorkQueue<String>| {
        for ns in namespaces.store().state() {
            if ns.metadata.deletion_timestamp.is_some() {
                queue.add(ns.metadata.name.clone().unwrap_or_default());
            }
        }
    };
    all(&queue);
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = changes.recv() => {
                match c {
                    Ok(Change::Applied(ns)) if ns.metadata.deletion_timestamp.is_some() => {
                        queue.add(ns.metadata.name.clone().unwrap_or_default())
                    }
                    Ok(_) => {}
                    Err(_) => all(&queue),
                }
                continue;
            }
            key = queue.next() => match key { Some(k) => k, None => return },
        };
        let synced = sync(&client, &clock, &key);
        reconcile(&queue, key.clone(), CONTROLLER, synced).await;
    }
}

/// One pass over a namespace being deleted; asks to come back while content remains.
async fn sync(client: &Client, clock: &Clock, name: &str) -> Result<Option<Duration>, Error> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(mut ns) = api.get_opt(name).await? else {
        return Ok(None);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Terminating") {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
        ns = api
            .replace_status(name, &PostParams::default(), &ns)
            .await?;
    }
    if finalized(&ns) {
        delete_namespace(&api, &ns).await?;
        return Ok(None);
    }
    let content = delete_all_content(client, name).await;
    let now = Time(
        Timestamp::from_microsecond(clock.now().timestamp_micros())
            .unwrap_or(Timestamp::UNIX_EPOCH),
    );
    let status = ns.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if update_conditions(conditions, content.conditions(), &now) {
        ns = api
            .replace_status(name, &PostParams::default(), &ns)
            .await?;
    }
    if let Some(error) = content.errors.into_iter().next().or(content.retry) {
        return Err(error);
    }
    if content.estimate > 0 {
        // Upstream comes back after half the estimate.
        let after = content.estimate / 2 + 1;
        return Ok(Some(Duration::from_secs(after.unsigned_abs())));
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect::<std::collections::BTreeSet<_>>();
    ns.spec = Some(NamespaceSpec {
        finalizers: Some(finalizers.into_iter().collect()),
    });
    let ns = match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(ns) => ns,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if finalized(&ns) {
        delete_namespace(&api, &ns).await?;
    }
    Ok(None)
}

fn finalized(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_none_or(Vec::is_empty)
}

async fn delete_namespace(api: &Api<Namespace>, ns: &Namespace) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: ns.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api
        .delete(ns.metadata.name.as_deref().unwrap_or(""), &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// What one pass over a namespace's content found.
#[derive(Debug, Default)]
struct Content {
    /// Seconds until the remaining content is expected to be gone.
    estimate: i64,
    /// Remaining objects per resource (`pods.`, `deployments.apps`).
    remaining: BTreeMap<String, usize>,
    /// Remaining objects per finalizer they carry.
    finalizers: BTreeMap<String, usize>,
    /// Discovery failed (the message).
    discovery_failed: Option<String>,
    /// Why the pass must be retried, besides failed deletions.
    retry: Option<Error>,
    /// Deletions that failed.
    errors: Vec<Error>,
}

impl Content {
    fn absorb(&mut self, resource: &ApiResource, outcome: Result<Remaining, Error>) {
        match outcome {
            Ok(r) => {
                self.estimate = self.estimate.max(r.estimate);
                if r.count > 0 {
                    let key = format!("{}.{}", resource.plural, resource.group);
                    *self.remaining.entry(key).or_default() += r.count;
                }
                for (f, n) in r.finalizers {
                    *self.finalizers.entry(f).or_default() += n;
                }
            }
            Err(e) => self.errors.push(e),
        }
    }

    /// The conditions this pass reports; those not named are reported as fine.
    fn conditions(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        if let Some(message) = &self.discovery_failed {
            out.push((
                "NamespaceDeletionDiscoveryFailure",
                "DiscoveryFailed",
                message.clone(),
            ));
        }
        if !self.errors.is_empty() {
            let mut messages: Vec<String> = self.errors.iter().map(go_error).collect();
            messages.sort();
            out.push((
                "NamespaceDeletionContentFailure",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    messages.len(),
                    messages.join(", ")
                ),
            ));
        }
        if !self.remaining.is_empty() {
            let parts: Vec<String> = self
                .remaining
                .iter()
                .map(|(r, n)| format!("{r} has {n} resource instances"))
                .collect();
            out.push((
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
            ));
        }
        if !self.finalizers.is_empty() {
            let parts: Vec<String> = self
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            out.push((
                "NamespaceFinalizersRemaining",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            ));
        }
        out
    }
}

/// An error as a Go client prints it: the API's message alone.
fn go_error(e: &Error) -> String {
    match e {
        Error::Api(kube::Error::Api(s)) => s.message.clone(),
        e => e.to_string(),
    }
}

/// The condition types the controller keeps, with what each says when all is well.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// Bring the namespace's conditions up to date with what a pass found (`failing`: type, reason,
/// message of each condition that is True); the others are set False with their all-well
/// reason. A condition's transition time moves only when its status does. Whether anything
/// changed.
fn update_conditions(
    conditions: &mut Vec<NamespaceCondition>,
    failing: Vec<(&'static str, &'static str, String)>,
    now: &Time,
) -> bool {
    let mut changed = false;
    for (type_, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match failing.iter().find(|(t, _, _)| *t == type_) {
            Some((_, reason, message)) => ("True", *reason, message.clone()),
            None => ("False", ok_reason, ok_message.to_string()),
        };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(NamespaceCondition {
                    type_: type_.into(),
                    status: status.into(),
                    reason: Some(reason.into()),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) => {
                if c.status != status
                    || c.reason.as_deref() != Some(reason)
                    || c.message.as_deref() != Some(message.as_str())
                {
                    if c.status != status {
                        c.last_transition_time = Some(now.clone());
                    }
                    c.status = status.into();
                    c.reason = Some(reason.into());
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed
}

/// Delete the namespace's content: pods first, and everything else once they are gone.
async fn delete_all_content(client: &Client, namespace: &str) -> Content {
    let mut content = Content::default();
    let pods = ApiResource::erase::<Pod>(&());
    let outcome = delete_resource(client, namespace, &pods, None).await;
    content.absorb(&pods, outcome);
    if !content.remaining.is_empty() || !content.errors.is_empty() {
        return content;
    }
    let discovery = match Discovery::new(client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            let e = Error::from(e);
            content.discovery_failed = Some(go_error(&e));
            content.retry = Some(e);
            return content;
        }
    };
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let deletable = caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::DELETE)
                && caps.supports_operation(verbs::LIST);
            if !deletable || (resource.group.is_empty() && resource.plural == "pods") {
                continue;
            }
            let outcome = delete_resource(client, namespace, &resource, Some(&caps)).await;
            content.absorb(&resource, outcome);
        }
    }
    content
}

/// What is left of one resource after deleting it.
#[derive(Debug, Default)]
struct Remaining {
    count: usize,
    finalizers: BTreeMap<String, usize>,
    estimate: i64,
}

/// Delete one resource's objects in the namespace (as a collection where it can be) and see
/// what is left.
async fn delete_resource(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    caps: Option<&ApiCapabilities>,
) -> Result<Remaining, Error> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
    let estimate = if resource.group.is_empty() && resource.plural == "pods" {
        pod_termination_estimate(client, namespace).await?
    } else {
        0
    };
    let background = DeleteParams::background();
    if caps.is_none_or(|c| c.supports_operation(verbs::DELETE_COLLECTION)) {
        api.delete_collection(&background, &ListParams::default())
            .await?;
    } else {
        for item in api.list(&ListParams::default()).await?.items {
            let name = item.metadata.name.unwrap_or_default();
            match api.delete(&name, &background).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let left = api.list(&ListParams::default()).await?.items;
    if left.is_empty() {
        return Ok(Remaining::default());
    }
    let mut finalizers = BTreeMap::new();
    for item in &left {
        for f in item.metadata.finalizers.iter().flatten() {
            *finalizers.entry(f.clone()).or_default() += 1;
        }
    }
    let estimate = if estimate > 0 {
        estimate
    } else if !finalizers.is_empty() {
        FINALIZER_ESTIMATE_SECONDS
    } else {
        // Nothing holds them, yet they are there: not done, and said so in the conditions.
        return Err(Error::Leftover(format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {}/{}, Resource={}",
            resource.group, resource.version, resource.plural
        )));
    };
    Ok(Remaining {
        count: left.len(),
        finalizers,
        estimate,
    })
}

/// How long the namespace's running pods may take to shut down: the longest termination grace
/// period among them.
async fn pod_termination_estimate(client: &Client, namespace: &str) -> Result<i64, kube::Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let longest = pods
        .items
        .iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| p.spec.as_ref()?.termination_grace_period_seconds)
        .max()
        .unwrap_or(0);
    // The whole grace period, as upstream returns it (it computes what is left of it since the
    // namespace's deletion and then does not use that): a pod that outlives it keeps the
    // namespace waiting, re-checked every half period, never finalized around it.
    Ok(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse().expect("a timestamp"))
    }

    #[test]
    fn conditions_report_what_remains_and_only_move_on_a_status_change() {
        let mut conditions = Vec::new();
        let content = Content {
            remaining: BTreeMap::from([("pods.".to_string(), 2)]),
            ..Default::default()
        };
        assert!(update_conditions(
            &mut conditions,
            content.conditions(),
            &at("2026-01-01T00:00:00Z")
        ));
        assert_eq!(conditions.len(), 5);
        let remaining = conditions
            .iter()
            .find(|c| c.type_ == "NamespaceContentRemaining")
            .expect("the condition");
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some("Some resources are remaining: pods. has 2 resource instances")
        );
        let discovery = &conditions[0];
        assert_eq!(
            (
                discovery.type_.as_str(),
                discovery.status.as_str(),
                discovery.reason.as_deref()
            ),
            (
                "NamespaceDeletionDiscoveryFailure",
                "False",
                Some("ResourcesDiscovered")
            )
        );

        // The same findings change nothing; fewer pods change the message, not the time.
        assert!(!update_conditions(
            &mut conditions,
            content.conditions(),
            &at("2026-01-01T00:00:05Z")
        ));
        let fewer = Content {
            remaining: BTreeMap::from([("pods.".to_string(), 1)]),
            ..Default::default()
        };
        assert!(update_conditions(
            &mut conditions,
            fewer.conditions(),
            &at("2026-01-01T00:00:10Z")
        ));
        let remaining = &conditions[3];
        assert_eq!(
            remaining.last_transition_time,
            Some(at("2026-01-01T00:00:00Z"))
        );
        // All gone: False with the all-well reason, and a new transition time.
        assert!(update_conditions(
            &mut conditions,
            Content::default().conditions(),
            &at("2026-01-01T00:00:20Z")
        ));
        let remaining = &conditions[3];
        assert_eq!(remaining.status, "False");
        assert_eq!(remaining.reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(
            remaining.last_transition_time,
            Some(at("2026-01-01T00:00:20Z"))
        );
    }
}
