//! Service account tokens: the `serviceaccounts/token` subresource (TokenRequest), as upstream's
//! `pkg/registry/core/serviceaccount/storage/token.go` serves it, and the issuer that signs them.
//!
//! A token is a JWT signed with the apiserver's own key (ES256, made when the apiserver starts;
//! upstream's `--service-account-signing-key-file`), carrying upstream's claims: issuer and
//! audience `https://kubernetes.default.svc.cluster.local`, subject
//! `system:serviceaccount:<namespace>:<name>`, and under `kubernetes.io` the namespace, the
//! service account and the object the token is bound to (a Pod, with its Node; a Secret; a
//! Node). Nothing here checks tokens: the reference cluster authenticates no one.

use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::BoundObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::registry;
use super::rest::Target;
use super::{ApiServer, Cause};
use crate::clock::format_time;
use crate::k8s::serviceaccount::{username, INJECTED_TOKEN_EXPIRATION_SECONDS, TOKEN_ISSUER};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";

/// A TokenRequest's lifetime when it asks for none (upstream's defaulting).
const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

/// The shortest lifetime a TokenRequest may ask for.
const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;

/// The longest lifetime a TokenRequest may ask for.
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// How long an injected token (see [`INJECTED_TOKEN_EXPIRATION_SECONDS`]) really lives, as
/// kube-apiserver's default `--service-account-extend-token-expiration` stretches it (a year),
/// warning after the hour it asked for.
const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// The DER header of a P-256 public key's SubjectPublicKeyInfo (the uncompressed point
/// follows), from which the key id is hashed as upstream hashes its PKIX encoding.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The key that signs the cluster's service account tokens.
pub struct Issuer {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Issuer {
    /// A new signing key.
    ///
    /// # Errors
    /// When the system's random number generator fails.
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| ring::error::Unspecified)?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        let key_id = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Ok(Self { key, key_id, rng })
    }

    /// The signed JWT carrying `claims`.
    ///
    /// # Errors
    /// When signing fails (the random number generator).
    pub fn sign(&self, claims: &Value) -> Result<String, ring::error::Unspecified> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(&self.rng, signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// A TokenRequest as a client sends it.
#[derive(Deserialize, Default)]
struct TokenRequest {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    expiration_seconds: Option<i64>,
    #[serde(default)]
    bound_object_ref: Option<BoundObjectReference>,
}

/// What a token is bound to, as its claims name it.
#[derive(Default)]
struct Bound {
    pod: Option<Value>,
    secret: Option<Value>,
    node: Option<Value>,
}

fn reference(obj: &Value) -> Value {
    json!({
        "name": obj["metadata"]["name"].as_str().unwrap_or_default(),
        "uid": obj["metadata"]["uid"].as_str().unwrap_or_default(),
    })
}

impl ApiServer {
    /// `POST .../serviceaccounts/<name>/token`: a token for the service account, answered as a
    /// TokenRequest with its status (the token and when it expires).
    pub(super) async fn create_token(
        &self,
        target: &Target,
        name: &str,
        body: Value,
    ) -> ApiResult<Response> {
        let namespace = target.namespace.clone().unwrap_or_default();
        let mut request: TokenRequest = serde_json::from_value(body).map_err(|e| {
            ApiError::bad_request(format!(
                "{KIND} in version \"v1\" cannot be handled as a {KIND}: {e}"
            ))
        })?;
        let invalid = |field: &str, value: &str, detail: &str, object: &str| {
            ApiError::invalid_kind(
                GROUP,
                KIND,
                object,
                &[Cause::invalid(field, &format!("\"{value}\""), detail)],
            )
        };
        if let Some(n) = request.metadata.name.as_deref().filter(|n| !n.is_empty()) {
            if n != name {
                return Err(invalid(
                    "metadata.name",
                    n,
                    "must match the service account name if specified",
                    name,
                ));
            }
        }
        if let Some(ns) = request
            .metadata
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
        {
            if ns != namespace {
                return Err(invalid(
                    "metadata.namespace",
                    ns,
                    "must match the service account namespace if specified",
                    name,
                ));
            }
        }
        let account = self.get_object(target.kind, &namespace, name).await?;
        let expiration = request
            .spec
            .expiration_seconds
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let too_short = expiration < MIN_EXPIRATION_SECONDS;
        if too_short || expiration > MAX_EXPIRATION_SECONDS {
            let detail = if too_short {
                "may not specify a duration less than 10 minutes"
            } else {
                "may not specify a duration larger than 2^32 seconds"
            };
            return Err(ApiError::invalid_kind(
                GROUP,
                KIND,
                "",
                &[Cause::invalid(
                    "spec.expirationSeconds",
                    &expiration.to_string(),
                    detail,
                )],
            ));
        }
        let audiences = match request.spec.audiences.take().filter(|a| !a.is_empty()) {
            Some(a) => a,
            None => vec![TOKEN_ISSUER.to_string()],
        };
        let bound = match &request.spec.bound_object_ref {
            Some(r) => self.bound_object(&namespace, name, r).await?,
            None => Bound::default(),
        };
        let now = self.clock.now();
        let issued = now.timestamp();
        // A pod's injected token lives a year, and warns after the hour it asked for.
        let (expires, warn_after) = if bound.pod.is_some()
            && expiration == INJECTED_TOKEN_EXPIRATION_SECONDS
            && audiences.iter().all(|a| a == TOKEN_ISSUER)
        {
            (
                issued + EXTENDED_EXPIRATION_SECONDS,
                Some(issued + expiration),
            )
        } else {
            (issued + expiration, None)
        };
        let mut private = json!({
            "namespace": namespace,
            "serviceaccount": reference(&account.value()),
        });
        for (claim, object) in [
            ("pod", &bound.pod),
            ("secret", &bound.secret),
            ("node", &bound.node),
        ] {
            if let Some(o) = object {
                private[claim] = o.clone();
            }
        }
        if let Some(w) = warn_after {
            private["warnafter"] = json!(w);
        }
        let claims = json!({
            "aud": audiences,
            "exp": expires,
            "iat": issued,
            "iss": TOKEN_ISSUER,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": private,
            "nbf": issued,
            "sub": username(&namespace, name),
        });
        let issuer = self
            .tokens
            .as_ref()
            .ok_or_else(|| ApiError::internal("failed to generate token: no signing key"))?;
        let token = issuer
            .sign(&claims)
            .map_err(|_| ApiError::internal("failed to generate token: cannot sign"))?;
        let mut metadata = serde_json::to_value(&request.metadata).unwrap_or_else(|_| json!({}));
        metadata["name"] = json!(name);
        metadata["namespace"] = json!(namespace);
        metadata["creationTimestamp"] = json!(format_time(now));
        let answer = json!({
            "kind": KIND,
            "apiVersion": format!("{GROUP}/v1"),
            "metadata": metadata,
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration,
                "boundObjectRef": request.spec.bound_object_ref,
            },
            "status": {
                "token": token,
                "expirationTimestamp": format_time(now + chrono::Duration::seconds(expiration)),
            },
        });
        Ok(super::rest::json_response(StatusCode::CREATED, &answer))
    }

    /// The object a TokenRequest binds its token to, checked as upstream checks it.
    async fn bound_object(
        &self,
        namespace: &str,
        account: &str,
        r: &BoundObjectReference,
    ) -> ApiResult<Bound> {
        let api_version = r.api_version.as_deref().unwrap_or_default();
        let kind = r.kind.as_deref().unwrap_or_default();
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let name = r.name.as_deref().unwrap_or_default();
        let mut bound = Bound::default();
        let object = match (group, kind) {
            ("", "Pod") => {
                let pod = self
                    .get_object(registry::core("pods"), namespace, name)
                    .await?
                    .value();
                if pod["spec"]["serviceAccountName"].as_str().unwrap_or("") != account {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount \"{account}\" to pod running with different serviceaccount name."
                    )));
                }
                // The pod's node goes into the claims too (by name alone when it is gone).
                if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    let nodes = registry::core("nodes");
                    bound.node = Some(match self.store.get(&nodes.key(None, node)).await {
                        Ok(Some(n)) => reference(&n.value()),
                        _ => json!({"name": node}),
                    });
                }
                bound.pod = Some(reference(&pod));
                pod
            }
            ("", "Secret") => {
                let secret = self
                    .get_object(registry::core("secrets"), namespace, name)
                    .await?
                    .value();
                bound.secret = Some(reference(&secret));
                secret
            }
            ("", "Node") => {
                let node = self
                    .get_object(registry::core("nodes"), "", name)
                    .await?
                    .value();
                bound.node = Some(reference(&node));
                node
            }
            _ => {
                let (g, v) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {g}/{v}, Kind={kind}"
                )));
            }
        };
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
        if let Some(want) = r.uid.as_deref().filter(|u| !u.is_empty()) {
            if want != uid {
                return Err(ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: format!(
                        "Operation cannot be fulfilled on {kind} \"{name}\": the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                    details: Some(json!({"name": name, "kind": kind})),
                });
            }
        }
        Ok(bound)
    }

    /// An object by kind, namespace (ignored for cluster-scoped kinds) and name; 404 if absent.
    async fn get_object(
        &self,
        kind: &'static registry::Kind,
        namespace: &str,
        name: &str,
    ) -> ApiResult<std::sync::Arc<crate::store::Object>> {
        let ns = kind.namespaced.then_some(namespace);
        self.store
            .get(&kind.key(ns, name))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_es256_jwts_with_the_key_id_of_the_signing_key() {
        let issuer = Issuer::generate().unwrap();
        let token = issuer
            .sign(&json!({"sub": "system:serviceaccount:default:default"}))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], issuer.key_id.as_str());
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:default:default");
        // The signature verifies against the issuer's public key.
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            issuer.key.public_key().as_ref(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }
}
