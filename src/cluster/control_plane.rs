//! The control plane as kubeadm lays it out on its first node: static pod manifests for
//! kube-apiserver, kube-controller-manager and kube-scheduler (and etcd when the cluster keeps
//! its objects in etcd), written into that node's static pod directory, so the kubelet shows
//! them as mirror pods `kube-apiserver-<node>`, ... in `kube-system`.
//!
//! The components themselves run elsewhere (in the cluster's process, or in containers of their
//! own); each pod's container idles as the component's image does not exist here, and its
//! probes are kubeadm's probes pointed at the real component's health endpoints. So the mirror
//! pods follow the components: a killed scheduler replica's pod turns unready, fails its
//! liveness probe and is restarted by the kubelet, as on a kubeadm node whose scheduler hangs.
//!
//! Differences from kubeadm, each because of what the reference serves: the probes use HTTP
//! (the reference components serve plain HTTP) and the components' actual addresses and ports
//! (several clusters share one loopback in tests); etcd's probes ask `/health` on its client URL
//! (the etcd 3.4 Debian ships has no `/livez`, `/readyz` or metrics port); the images are the
//! catalog's models of `registry.k8s.io/kube-*` and `registry.k8s.io/etcd`.

use serde_json::{json, Value};

/// The Kubernetes release the images are tagged with.
pub const IMAGE_TAG: &str = "v1.33.0";
/// The etcd image tag kubeadm 1.33 runs.
pub const ETCD_IMAGE_TAG: &str = "3.5.21-0";

/// Where a component answers its health checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address the kubelet's probes connect to.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host and port of an `http://` or `https://` URL (the scheme's port when it names
    /// none).
    pub fn of_url(url: &str) -> Option<Self> {
        let uri: http::Uri = url.parse().ok()?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        Some(Self::new(uri.host()?, port))
    }
}

/// The control plane's components, as the first node's static pods describe them.
#[derive(Clone, Debug, Default)]
pub struct ControlPlane {
    /// The apiserver (`/livez`, `/readyz`); its host is the advertised address.
    pub apiserver: Option<Endpoint>,
    /// The first controller-manager replica's health server (`/healthz`).
    pub controller_manager: Option<Endpoint>,
    /// The first scheduler replica's health server (`/livez`, `/readyz`).
    pub scheduler: Option<Endpoint>,
    /// etcd's client URL (`/health`), when etcd keeps the cluster's objects.
    pub etcd: Option<Endpoint>,
}

/// The Service IP range the reference apiserver allocates from (kubeadm's default).
const SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/12";

/// A kubeadm probe: `timeoutSeconds` 15, HTTP GET on `endpoint` at `path`.
fn probe(endpoint: &Endpoint, path: &str, fields: Value) -> Value {
    let mut probe = json!({
        "httpGet": {
            "host": endpoint.host,
            "path": path,
            "port": endpoint.port,
            "scheme": "HTTP",
        },
        "timeoutSeconds": 15,
    });
    if let (Some(p), Some(f)) = (probe.as_object_mut(), fields.as_object()) {
        p.extend(f.clone());
    }
    probe
}

/// kubeadm's liveness probe: 8 failures 10 s apart, after 10 s.
fn liveness(endpoint: &Endpoint, path: &str) -> Value {
    probe(
        endpoint,
        path,
        json!({"failureThreshold": 8, "initialDelaySeconds": 10, "periodSeconds": 10}),
    )
}

/// kubeadm's readiness probe: every second, 3 failures.
fn readiness(endpoint: &Endpoint, path: &str) -> Value {
    probe(
        endpoint,
        path,
        json!({"failureThreshold": 3, "periodSeconds": 1}),
    )
}

/// kubeadm's startup probe: 24 failures 10 s apart (its 4-minute control-plane health check
/// timeout), after 10 s.
fn startup(endpoint: &Endpoint, path: &str) -> Value {
    probe(
        endpoint,
        path,
        json!({"failureThreshold": 24, "initialDelaySeconds": 10, "periodSeconds": 10}),
    )
}

fn host_path(name: &str, path: &str, kind: &str) -> Value {
    json!({"name": name, "hostPath": {"path": path, "type": kind}})
}

fn mount(name: &str, path: &str) -> Value {
    json!({"name": name, "mountPath": path, "readOnly": true})
}

/// A control-plane pod as kubeadm's `ComponentPod` builds it.
fn component_pod(name: &str, annotations: Value, container: Value, volumes: Vec<Value>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": {"component": name, "tier": "control-plane"},
        },
        "spec": {
            "containers": [container],
            "hostNetwork": true,
            // kubeadm writes the class's value too (the Priority admission accepts it when it
            // matches).
            "priority": 2_000_001_000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes,
        },
    });
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        pod["metadata"]["annotations"] = annotations;
    }
    pod
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    let mut flags: Vec<String> = pairs.iter().map(|(k, v)| format!("--{k}={v}")).collect();
    // kubeadm writes the flags sorted by name.
    flags.sort();
    flags
}

fn command(binary: &str, pairs: &[(&str, String)]) -> Vec<String> {
    std::iter::once(binary.to_string())
        .chain(flags(pairs))
        .collect()
}

const PKI: &str = "/etc/kubernetes/pki";

impl ControlPlane {
    /// The static pod manifests, as (file name, YAML), in kubeadm's file names.
    pub fn manifests(&self) -> Vec<(String, String)> {
        let mut pods = Vec::new();
        if let Some(etcd) = &self.etcd {
            pods.push(self.etcd_pod(etcd));
        }
        if let Some(apiserver) = &self.apiserver {
            pods.push(self.apiserver_pod(apiserver));
        }
        if let Some(cm) = &self.controller_manager {
            pods.push(controller_manager_pod(cm));
        }
        if let Some(scheduler) = &self.scheduler {
            pods.push(scheduler_pod(scheduler));
        }
        pods.into_iter()
            .map(|pod| {
                let name = pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or("pod")
                    .to_string();
                let yaml = serde_yaml::to_string(&pod).unwrap_or_default();
                (format!("{name}.yaml"), yaml)
            })
            .collect()
    }

    fn apiserver_pod(&self, at: &Endpoint) -> Value {
        let etcd_servers = match &self.etcd {
            Some(e) => format!("http://{}:{}", e.host, e.port),
            None => "https://127.0.0.1:2379".to_string(),
        };
        let pairs = [
            ("advertise-address", at.host.clone()),
            ("allow-privileged", "true".into()),
            ("authorization-mode", "Node,RBAC".into()),
            ("client-ca-file", format!("{PKI}/ca.crt")),
            ("enable-admission-plugins", "NodeRestriction".into()),
            ("enable-bootstrap-token-auth", "true".into()),
            ("etcd-servers", etcd_servers),
            ("secure-port", at.port.to_string()),
            (
                "service-account-issuer",
                "https://kubernetes.default.svc.cluster.local".into(),
            ),
            ("service-account-key-file", format!("{PKI}/sa.pub")),
            ("service-account-signing-key-file", format!("{PKI}/sa.key")),
            ("service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE.into()),
            ("tls-cert-file", format!("{PKI}/apiserver.crt")),
            ("tls-private-key-file", format!("{PKI}/apiserver.key")),
        ];
        let container = json!({
            "name": "kube-apiserver",
            "image": format!("registry.k8s.io/kube-apiserver:{IMAGE_TAG}"),
            "imagePullPolicy": "IfNotPresent",
            "command": command("kube-apiserver", &pairs),
            "livenessProbe": liveness(at, "/livez"),
            "readinessProbe": readiness(at, "/readyz"),
            "startupProbe": startup(at, "/livez"),
            "resources": {"requests": {"cpu": "250m"}},
            "volumeMounts": [mount("ca-certs", "/etc/ssl/certs"), mount("k8s-certs", PKI)],
        });
        component_pod(
            "kube-apiserver",
            json!({
                "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint":
                    format!("{}:{}", at.host, at.port),
            }),
            container,
            vec![
                host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
                host_path("k8s-certs", PKI, "DirectoryOrCreate"),
            ],
        )
    }

    fn etcd_pod(&self, at: &Endpoint) -> Value {
        let client_url = format!("http://{}:{}", at.host, at.port);
        let pairs = [
            ("advertise-client-urls", client_url.clone()),
            ("data-dir", "/var/lib/etcd".into()),
            ("listen-client-urls", client_url.clone()),
            ("name", "etcd".into()),
            ("snapshot-count", "10000".into()),
        ];
        let container = json!({
            "name": "etcd",
            "image": format!("registry.k8s.io/etcd:{ETCD_IMAGE_TAG}"),
            "imagePullPolicy": "IfNotPresent",
            "command": command("etcd", &pairs),
            // kubeadm 1.33 probes etcd 3.5's /livez and /readyz on its metrics port (2381);
            // etcd 3.4 (Debian's) answers only /health, on its client URL.
            "livenessProbe": liveness(at, "/health"),
            "readinessProbe": readiness(at, "/health"),
            "startupProbe": startup(at, "/health"),
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
            "volumeMounts": [
                json!({"name": "etcd-data", "mountPath": "/var/lib/etcd"}),
                mount("etcd-certs", "/etc/kubernetes/pki/etcd"),
            ],
        });
        component_pod(
            "etcd",
            json!({"kubeadm.kubernetes.io/etcd.advertise-client-urls": client_url}),
            container,
            vec![
                host_path(
                    "etcd-certs",
                    "/etc/kubernetes/pki/etcd",
                    "DirectoryOrCreate",
                ),
                host_path("etcd-data", "/var/lib/etcd", "DirectoryOrCreate"),
            ],
        )
    }
}

fn controller_manager_pod(at: &Endpoint) -> Value {
    let kubeconfig = "/etc/kubernetes/controller-manager.conf".to_string();
    let pairs = [
        ("authentication-kubeconfig", kubeconfig.clone()),
        ("authorization-kubeconfig", kubeconfig.clone()),
        ("bind-address", at.host.clone()),
        ("client-ca-file", format!("{PKI}/ca.crt")),
        ("cluster-name", "kubernetes".into()),
        ("cluster-signing-cert-file", format!("{PKI}/ca.crt")),
        ("cluster-signing-key-file", format!("{PKI}/ca.key")),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
        ("kubeconfig", kubeconfig.clone()),
        ("leader-elect", "true".into()),
        ("root-ca-file", format!("{PKI}/ca.crt")),
        ("secure-port", at.port.to_string()),
        ("service-account-private-key-file", format!("{PKI}/sa.key")),
        ("use-service-account-credentials", "true".into()),
    ];
    let container = json!({
        "name": "kube-controller-manager",
        "image": format!("registry.k8s.io/kube-controller-manager:{IMAGE_TAG}"),
        "imagePullPolicy": "IfNotPresent",
        "command": command("kube-controller-manager", &pairs),
        "livenessProbe": liveness(at, "/healthz"),
        "startupProbe": startup(at, "/healthz"),
        "resources": {"requests": {"cpu": "200m"}},
        "volumeMounts": [
            mount("ca-certs", "/etc/ssl/certs"),
            mount("k8s-certs", PKI),
            mount("kubeconfig", &kubeconfig),
        ],
    });
    component_pod(
        "kube-controller-manager",
        json!({}),
        container,
        vec![
            host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
            host_path("k8s-certs", PKI, "DirectoryOrCreate"),
            host_path("kubeconfig", &kubeconfig, "FileOrCreate"),
        ],
    )
}

fn scheduler_pod(at: &Endpoint) -> Value {
    let kubeconfig = "/etc/kubernetes/scheduler.conf".to_string();
    let pairs = [
        ("authentication-kubeconfig", kubeconfig.clone()),
        ("authorization-kubeconfig", kubeconfig.clone()),
        ("bind-address", at.host.clone()),
        ("kubeconfig", kubeconfig.clone()),
        ("leader-elect", "true".into()),
        ("secure-port", at.port.to_string()),
    ];
    let container = json!({
        "name": "kube-scheduler",
        "image": format!("registry.k8s.io/kube-scheduler:{IMAGE_TAG}"),
        "imagePullPolicy": "IfNotPresent",
        "command": command("kube-scheduler", &pairs),
        "livenessProbe": liveness(at, "/livez"),
        "readinessProbe": readiness(at, "/readyz"),
        "startupProbe": startup(at, "/livez"),
        "resources": {"requests": {"cpu": "100m"}},
        "volumeMounts": [mount("kubeconfig", &kubeconfig)],
    });
    component_pod(
        "kube-scheduler",
        json!({}),
        container,
        vec![host_path("kubeconfig", &kubeconfig, "FileOrCreate")],
    )
}

/// Write the manifests into `dir` (made if missing), as kubeadm writes
/// `/etc/kubernetes/manifests`.
///
/// # Errors
/// The path and the file system's error when the directory or a file cannot be written.
pub fn write(plane: &ControlPlane, dir: &std::path::Path) -> Result<(), (String, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.display().to_string(), e))?;
    for (file, yaml) in plane.manifests() {
        let path = dir.join(file);
        std::fs::write(&path, yaml).map_err(|e| (path.display().to_string(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane() -> ControlPlane {
        ControlPlane {
            apiserver: Some(Endpoint::new("127.0.0.1", 6443)),
            controller_manager: Some(Endpoint::new("127.0.0.1", 10257)),
            scheduler: Some(Endpoint::new("127.0.0.1", 10259)),
            etcd: None,
        }
    }

    fn pod(manifests: &[(String, String)], file: &str) -> Value {
        let (_, yaml) = manifests
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("no {file} in {manifests:?}"));
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_manifests_are_kubeadms_pods_with_probes_on_the_components() {
        let manifests = plane().manifests();
        let names: Vec<&str> = manifests.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "kube-apiserver.yaml",
                "kube-controller-manager.yaml",
                "kube-scheduler.yaml"
            ]
        );
        let scheduler = pod(&manifests, "kube-scheduler.yaml");
        assert_eq!(scheduler["metadata"]["namespace"], "kube-system");
        assert_eq!(
            scheduler["metadata"]["labels"],
            json!({"component": "kube-scheduler", "tier": "control-plane"})
        );
        assert_eq!(scheduler["spec"]["hostNetwork"], true);
        assert_eq!(
            scheduler["spec"]["priorityClassName"],
            "system-node-critical"
        );
        let c = &scheduler["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.k8s.io/kube-scheduler:v1.33.0");
        assert_eq!(c["command"][0], "kube-scheduler");
        assert_eq!(
            c["livenessProbe"]["httpGet"],
            json!({"host": "127.0.0.1", "path": "/livez", "port": 10259, "scheme": "HTTP"})
        );
        assert_eq!(c["livenessProbe"]["failureThreshold"], 8);
        assert_eq!(c["readinessProbe"]["periodSeconds"], 1);
        assert_eq!(c["startupProbe"]["failureThreshold"], 24);
        assert_eq!(c["resources"]["requests"]["cpu"], "100m");
        let cm = pod(&manifests, "kube-controller-manager.yaml");
        let c = &cm["spec"]["containers"][0];
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert!(c.get("readinessProbe").is_none());
        let apiserver = pod(&manifests, "kube-apiserver.yaml");
        assert_eq!(
            apiserver["metadata"]["annotations"]
                ["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
            "127.0.0.1:6443"
        );
        assert_eq!(
            apiserver["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
            "/readyz"
        );
    }

    #[test]
    fn endpoints_come_from_urls() {
        assert_eq!(
            Endpoint::of_url("http://127.0.0.1:2379"),
            Some(Endpoint::new("127.0.0.1", 2379))
        );
        assert_eq!(
            Endpoint::of_url("http://etcd"),
            Some(Endpoint::new("etcd", 80))
        );
        assert_eq!(Endpoint::of_url("not a url"), None);
    }

    #[test]
    fn etcd_gets_a_pod_only_when_it_keeps_the_objects() {
        let mut plane = plane();
        plane.etcd = Some(Endpoint::new("127.0.0.1", 2379));
        let manifests = plane.manifests();
        let etcd = pod(&manifests, "etcd.yaml");
        assert_eq!(
            etcd["spec"]["containers"][0]["image"],
            "registry.k8s.io/etcd:3.5.21-0"
        );
        let apiserver = pod(&manifests, "kube-apiserver.yaml");
        let command = apiserver["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap()
            .clone();
        assert!(command.contains(&json!("--etcd-servers=http://127.0.0.1:2379")));
    }
}
