//! The addons kubeadm installs through the API once the control plane answers: kube-proxy as a
//! DaemonSet in `kube-system` (with its ServiceAccount and ConfigMap), so every node shows a
//! `kube-proxy-xxxxx` pod. As with the control plane's static pods, the proxy itself runs
//! outside the pod (one per node, beside its kubelet); the pod's container idles.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::Client;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::control_plane::IMAGE_TAG;

/// The kube-proxy addon's objects, as kubeadm makes them, for a cluster whose apiserver clients
/// inside it reach at `server`.
pub fn kube_proxy(server: &str) -> (Value, Value, Value) {
    let service_account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
    });
    let config = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
        bindAddress: 0.0.0.0\n\
        clientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n\
        clusterCIDR: \"\"\n\
        kind: KubeProxyConfiguration\n\
        mode: iptables\n";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: {server}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
    );
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": config, "kubeconfig.conf": kubeconfig},
    });
    let labels = json!({"k8s-app": "kube-proxy"});
    let daemon_set = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "kube-proxy",
                        "image": format!("registry.k8s.io/kube-proxy:{IMAGE_TAG}"),
                        "imagePullPolicy": "IfNotPresent",
                        "command": [
                            "/usr/local/bin/kube-proxy",
                            "--config=/var/lib/kube-proxy/config.conf",
                            "--hostname-override=$(NODE_NAME)",
                        ],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"name": "kube-proxy", "mountPath": "/var/lib/kube-proxy"},
                            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                            {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true},
                        ],
                    }],
                    "hostNetwork": true,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    ],
                },
            },
        },
    });
    (service_account, config_map, daemon_set)
}

async fn create<K>(client: &Client, value: Value) -> kube::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
    let api: Api<K> = Api::namespaced(client.clone(), "kube-system");
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        // Already there (an apiserver restarted on the same etcd): kubeadm leaves it.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Install the kube-proxy addon (`server`: the apiserver as the cluster's pods reach it).
///
/// # Errors
/// The apiserver refused or did not answer a create.
pub async fn install_kube_proxy(client: &Client, server: &str) -> kube::Result<()> {
    let (service_account, config_map, daemon_set) = kube_proxy(server);
    create::<ServiceAccount>(client, service_account).await?;
    create::<ConfigMap>(client, config_map).await?;
    create::<DaemonSet>(client, daemon_set).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kube_proxy_addon_is_kubeadms_daemon_set() {
        let (sa, cm, ds) = kube_proxy("http://10.0.0.1:6443");
        assert_eq!(sa["metadata"]["name"], "kube-proxy");
        assert!(cm["data"]["kubeconfig.conf"]
            .as_str()
            .unwrap()
            .contains("server: http://10.0.0.1:6443"));
        let typed: DaemonSet = serde_json::from_value(ds.clone()).unwrap();
        let spec = typed.spec.unwrap();
        assert_eq!(spec.selector.match_labels.unwrap()["k8s-app"], "kube-proxy");
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.service_account_name.as_deref(), Some("kube-proxy"));
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("registry.k8s.io/kube-proxy:v1.33.0")
        );
    }
}
