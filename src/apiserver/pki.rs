//! The cluster's certificate authority.
//!
//! The reference cluster speaks plain HTTP, yet workloads expect the CA that vouches for the
//! apiserver beside their token (`ca.crt` from the `kube-root-ca.crt` ConfigMap). So, once per
//! cluster, the apiserver makes a real self-signed CA (as kubeadm's `ca.crt`: `CN=kubernetes`,
//! allowed to sign certificates, ten years) and publishes it where upstream's apiserver
//! publishes its client CA, `kube-system/extension-apiserver-authentication` under
//! `client-ca-file`. Every component reads it there over the API, so it works the same whether
//! the components share a process, run as processes of their own, or sit in containers with no
//! file in common; the controller-manager's `--root-ca-file` still overrides it, as upstream's
//! does.
//!
//! "Once per cluster": an apiserver that starts over a store that already holds the ConfigMap
//! keeps the CA it finds there.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

use super::registry;
use super::ApiServer;
use crate::k8s::serviceaccount::{AUTHENTICATION_CONFIGMAP, CLIENT_CA_KEY};

/// How long the CA is valid (kubeadm's CA lifetime).
const CA_YEARS: i32 = 10;

/// A new self-signed CA certificate, in PEM, valid from the day of `now` for ten years.
///
/// # Errors
/// rcgen's, when the key cannot be generated or the certificate signed.
pub fn self_signed_ca(now: DateTime<Utc>) -> Result<String, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    // Whole days, so that no clock skew between components makes it "not yet valid".
    let (year, month, day) = (now.year(), now.month() as u8, now.day() as u8);
    params.not_before = rcgen::date_time_ymd(year, month, day.min(28));
    params.not_after = rcgen::date_time_ymd(year + CA_YEARS, month, day.min(28));
    params.serial_number = Some(rcgen::SerialNumber::from(rand::random::<u64>() >> 1));
    let key = rcgen::KeyPair::generate()?;
    Ok(params.self_signed(&key)?.pem())
}

/// Publish the cluster's CA in `kube-system/extension-apiserver-authentication`, making one
/// unless the store already holds it.
pub(super) async fn publish_cluster_ca(server: &Arc<ApiServer>) {
    let kind = registry::core("configmaps");
    let key = kind.key(Some("kube-system"), AUTHENTICATION_CONFIGMAP);
    if matches!(server.store.get(&key).await, Ok(Some(_))) {
        return;
    }
    let ca = match self_signed_ca(server.clock.now()) {
        Ok(ca) => ca,
        Err(e) => {
            tracing::error!(cause = %e, "cannot make the cluster's CA; kube-root-ca.crt stays unpublished");
            return;
        }
    };
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": AUTHENTICATION_CONFIGMAP, "namespace": "kube-system"},
        "data": {CLIENT_CA_KEY: ca},
    });
    match server
        .create_internal(kind, Some("kube-system".into()), body)
        .await
    {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => tracing::error!(cause = %e, "cannot publish the cluster's CA"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_ca_is_a_pem_certificate() {
        let now = DateTime::parse_from_rfc3339("2025-01-31T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let pem = self_signed_ca(now).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"), "{pem}");
        assert!(crate::k8s::serviceaccount::holds_pem_certificate(&pem));
        assert_ne!(
            pem,
            self_signed_ca(now).unwrap(),
            "each cluster has its own"
        );
    }
}
