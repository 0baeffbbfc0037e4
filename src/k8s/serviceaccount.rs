//! The names that tie service accounts, their tokens and the cluster's CA together, shared by
//! the apiserver (the ServiceAccount admission, `serviceaccounts/token`, the CA it publishes),
//! the controller-manager (the root CA publisher) and the kubelet (projected volumes). Upstream
//! spells each of these once too: `plugin/pkg/admission/serviceaccount`,
//! `pkg/controller/certificates/rootcacertpublisher`, `pkg/serviceaccount`.

/// The ServiceAccount a pod that names none runs as.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The ConfigMap in every namespace that holds the cluster's CA bundle.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// The key of the CA bundle in [`ROOT_CA_CONFIGMAP`] (and the file the projected volume makes
/// of it).
pub const ROOT_CA_KEY: &str = "ca.crt";

/// The annotation the root CA publisher puts on [`ROOT_CA_CONFIGMAP`].
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";

/// The text of [`DESCRIPTION_ANNOTATION`] on [`ROOT_CA_CONFIGMAP`], as upstream's publisher
/// writes it.
pub const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the \
kube-apiserver when using internal endpoints such as the internal service IP or \
kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The ConfigMap in `kube-system` where the apiserver publishes its client CA (and so, in this
/// cluster as in kubeadm's, the cluster's CA), under [`CLIENT_CA_KEY`].
pub const AUTHENTICATION_CONFIGMAP: &str = "extension-apiserver-authentication";

/// The key of the client CA in [`AUTHENTICATION_CONFIGMAP`].
pub const CLIENT_CA_KEY: &str = "client-ca-file";

/// Where the ServiceAccount admission mounts the API access volume in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The prefix of the API access volume's name (five random characters follow).
pub const API_ACCESS_VOLUME_PREFIX: &str = "kube-api-access-";

/// The lifetime the API access volume asks for its token (upstream's
/// `WarnOnlyBoundTokenExpirationSeconds`: an hour and seven seconds, which tells the apiserver
/// the token was injected by admission).
pub const INJECTED_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;

/// The audience and issuer of the cluster's service account tokens (kube-apiserver's
/// `--service-account-issuer`, which `--api-audiences` defaults to, as kind and kubeadm set it).
pub const TOKEN_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The user name a service account's token authenticates as.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Whether `pem` holds at least one PEM `CERTIFICATE` block whose body is base64 (the check
/// upstream's `readCA` makes of `--root-ca-file`, short of parsing the certificate).
pub fn holds_pem_certificate(pem: &str) -> bool {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else {
            return false;
        };
        let body: String = after[..end].split_whitespace().collect();
        if !body.is_empty()
            && base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .is_ok()
        {
            return true;
        }
        rest = &after[end + END.len()..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_certificate_is_told_from_other_text() {
        assert!(holds_pem_certificate(
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        ));
        assert!(!holds_pem_certificate("not a certificate"));
        assert!(!holds_pem_certificate(
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"
        ));
        assert!(!holds_pem_certificate(
            "-----BEGIN CERTIFICATE-----\nMIIB\n"
        ));
    }
}
