//! What the kubelet checks of a container's security context before it creates the container
//! (upstream's `verifyRunAsNonRoot`): with `runAsNonRoot`, an explicit `runAsUser: 0`, or an
//! image that runs as root (or as a user name, which cannot be checked), is refused and the
//! container waits in `CreateContainerConfigError`. The container's own settings win over the
//! pod's, as upstream's `DetermineEffectiveSecurityContext` merges them.

use k8s_openapi::api::core::v1::{Container, Pod};

/// The user an image runs as, as the runtime reports it: a uid, or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ImageUser {
    Uid(i64),
    Name(String),
}

/// The effective `runAsNonRoot` and `runAsUser` of container `c` in `pod`.
fn effective(pod: &Pod, c: &Container) -> (Option<bool>, Option<i64>) {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod_sc.and_then(|s| s.run_as_non_root));
    let user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    (non_root, user)
}

/// Upstream's `verifyRunAsNonRoot`.
///
/// # Errors
/// Upstream's message of the refusal.
pub(super) fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    image: &ImageUser,
) -> Result<(), String> {
    let (non_root, user) = effective(pod, c);
    if non_root != Some(true) {
        return Ok(());
    }
    let pod_id = crate::k8s::go_quote(&format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    ));
    match (user, image) {
        (Some(0), _) => Err(format!(
            "container's runAsUser breaks non-root policy (pod: {pod_id}, container: {})",
            c.name
        )),
        (Some(_), _) => Ok(()),
        (None, ImageUser::Uid(0)) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod_id}, container: {})",
            c.name
        )),
        (None, ImageUser::Name(name)) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: {pod_id}, container: {})",
            c.name
        )),
        (None, ImageUser::Uid(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, c)
    }

    #[test]
    fn run_as_non_root_is_verified_as_upstream_verifies_it() {
        let root = ImageUser::Uid(0);
        let (p, c) = pod(
            serde_json::json!({"securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "nginx"}]}),
        );
        assert_eq!(
            verify_run_as_non_root(&p, &c, &root),
            Err("container has runAsNonRoot and image will run as root (pod: \"p_ns(u1)\", container: nginx)".into())
        );
        assert_eq!(
            verify_run_as_non_root(&p, &c, &ImageUser::Uid(65535)),
            Ok(())
        );
        assert_eq!(
            verify_run_as_non_root(&p, &c, &ImageUser::Name("www".into())),
            Err("container has runAsNonRoot and image has non-numeric user (www), cannot verify user is non-root (pod: \"p_ns(u1)\", container: nginx)".into())
        );
        // The container's runAsUser wins over the pod's and over the image's.
        let (p, c) = pod(
            serde_json::json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]}),
        );
        assert_eq!(
            verify_run_as_non_root(&p, &c, &ImageUser::Uid(1234)),
            Err(
                "container's runAsUser breaks non-root policy (pod: \"p_ns(u1)\", container: c)"
                    .into()
            )
        );
        let (p, c) = pod(serde_json::json!({"securityContext": {"runAsUser": 1000},
            "containers": [{"name": "c", "securityContext": {"runAsNonRoot": true}}]}));
        assert_eq!(verify_run_as_non_root(&p, &c, &root), Ok(()));
        // Without runAsNonRoot, anything goes.
        let (p, c) = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        assert_eq!(verify_run_as_non_root(&p, &c, &root), Ok(()));
    }
}
