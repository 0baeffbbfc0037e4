//! The `default/kubernetes` Service and the endpoints behind it, as upstream's apiserver keeps
//! them (`pkg/controlplane/controller/kubernetesservice` with the lease endpoint reconciler and
//! its `EndpointsAdapter`): clients inside the cluster find the apiserver at the first address
//! of the service range, port 443, and the Endpoints and EndpointSlice `kubernetes` name the
//! address and port this apiserver listens on.
//!
//! The Service is created when it is missing (an existing one is left as it is, as upstream's
//! reconciler leaves it); the Endpoints and the EndpointSlice are rewritten when they differ
//! from this apiserver's address. All three are checked at start-up and every [`INTERVAL`]
//! after, so a deleted one comes back. The Service has no selector, so the endpoints and
//! EndpointSlice controllers leave its endpoints alone.
//!
//! Writes go through the same admission as a client's (`create_internal`, `update_internal`);
//! nothing here touches the store directly.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use serde_json::{json, Value};

use super::error::ApiResult;
use super::registry::{self, Kind};
use super::ApiServer;

/// How often the objects are checked (upstream's `EndpointInterval`, 10 s), in cluster time.
pub(super) const INTERVAL: Duration = Duration::from_secs(10);

const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";
/// The first address of the service range (10.96.0.0/12), which the allocator never hands out.
const SERVICE_IP: &str = "10.96.0.1";
/// The Service's port and the name of the port everywhere.
const SERVICE_PORT: i32 = 443;
const PORT_NAME: &str = "https";
/// The label that keeps the EndpointSlice mirroring controller away from these Endpoints.
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Check the objects every [`INTERVAL`] until the server shuts down.
pub(super) async fn run(server: Arc<ApiServer>, addr: SocketAddr) {
    loop {
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = server.clock.sleep(INTERVAL) => {}
        }
        reconcile(&server, addr).await;
    }
}

/// Create or repair the Service, its Endpoints and its EndpointSlice once. Failures are
/// logged; the next round tries again.
pub(super) async fn reconcile(server: &ApiServer, addr: SocketAddr) {
    // Clients reach a server listening on every address through the loopback one, unless it
    // says where to reach it.
    let ip = match server.advertise_address.unwrap_or(addr.ip()) {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let port = i32::from(addr.port());
    if let Err(e) = ensure_service(server, port).await {
        tracing::warn!(cause = %e, "cannot create the kubernetes Service");
    }
    match ensure_endpoints(server, ip, port).await {
        Ok(endpoints) => {
            if let Err(e) = ensure_slice(server, &endpoints).await {
                tracing::warn!(cause = %e, "cannot write the kubernetes EndpointSlice");
            }
        }
        Err(e) => tracing::warn!(cause = %e, "cannot write the kubernetes Endpoints"),
    }
}

fn kind(resource: &str) -> &'static Kind {
    registry::core(resource)
}

/// Upstream's `CreateOrUpdateMasterServiceIfNeeded` as its loop calls it: create when missing.
async fn ensure_service(server: &ApiServer, port: i32) -> ApiResult<()> {
    let services = kind("services");
    if server
        .get_internal(services, Some(NAMESPACE), NAME)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP", "targetPort": port}],
            "clusterIP": SERVICE_IP,
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    });
    match server
        .create_internal(services, Some(NAMESPACE.into()), service)
        .await
    {
        // Created meanwhile by another writer: it exists, which is all this asks.
        Err(e) if e.code == 409 => Ok(()),
        other => other.map(drop),
    }
}

/// The one subset the Endpoints hold: this apiserver's address and port.
fn subset(ip: IpAddr, port: i32) -> EndpointSubset {
    EndpointSubset {
        addresses: Some(vec![EndpointAddress {
            ip: ip.to_string(),
            ..Default::default()
        }]),
        not_ready_addresses: None,
        ports: Some(vec![EndpointPort {
            name: Some(PORT_NAME.into()),
            port,
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    }
}

/// The lease reconciler's `doReconcile` for one apiserver: the Endpoints carry the skip-mirror
/// label and exactly one subset with this apiserver's address and port. Returns the Endpoints
/// as they now are.
async fn ensure_endpoints(server: &ApiServer, ip: IpAddr, port: i32) -> ApiResult<Endpoints> {
    let kind = kind("endpoints");
    let wanted = subset(ip, port);
    let Some(current) = server.get_internal(kind, Some(NAMESPACE), NAME).await? else {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SKIP_MIRROR: "true"}},
            "subsets": [wanted],
        });
        let created = server
            .create_internal(kind, Some(NAMESPACE.into()), body)
            .await?;
        return decode(&created.value());
    };
    let mut endpoints: Endpoints = decode(&current.value())?;
    let labelled = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    if labelled && endpoints.subsets.as_deref() == Some(std::slice::from_ref(&wanted)) {
        return Ok(endpoints);
    }
    endpoints
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(SKIP_MIRROR.into(), "true".into());
    endpoints.subsets = Some(vec![wanted]);
    let body = encode(&endpoints, "v1", "Endpoints")?;
    let written = server
        .update_internal(kind, Some(NAMESPACE), &current, body)
        .await?;
    decode(&written.value())
}

/// Upstream's `endpointSliceFromEndpoints`: a slice of the same name, labelled with the
/// Service's name, IPv4 unless every address is IPv6, one ready endpoint per address.
fn slice_of(endpoints: &Endpoints) -> EndpointSlice {
    let subset = endpoints.subsets.iter().flatten().next();
    let addresses: Vec<&EndpointAddress> = subset
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .collect();
    let all_v6 = !addresses.is_empty()
        && addresses
            .iter()
            .all(|a| a.ip.parse::<std::net::Ipv6Addr>().is_ok());
    let address_type = if all_v6 { "IPv6" } else { "IPv4" };
    let endpoints_of = addresses
        .iter()
        .filter(|a| a.ip.parse::<std::net::Ipv6Addr>().is_ok() == all_v6)
        .map(|a| discovery::Endpoint {
            addresses: vec![a.ip.clone()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(true),
                ..Default::default()
            }),
            node_name: a.node_name.clone(),
            target_ref: a.target_ref.clone(),
            ..Default::default()
        })
        .collect();
    let ports = subset.and_then(|s| s.ports.as_ref()).map(|ports| {
        ports
            .iter()
            .map(|p| discovery::EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: None,
            })
            .collect()
    });
    EndpointSlice {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(SERVICE_NAME.into(), NAME.into())])),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: endpoints_of,
        ports,
    }
}

/// Upstream's `EnsureEndpointSliceFromEndpoints`: create the slice, or rewrite its endpoints,
/// ports and labels when they differ.
async fn ensure_slice(server: &ApiServer, endpoints: &Endpoints) -> ApiResult<()> {
    let Some(kind) = registry::lookup("discovery.k8s.io", "v1", "endpointslices") else {
        return Ok(());
    };
    let wanted = slice_of(endpoints);
    let Some(current) = server.get_internal(kind, Some(NAMESPACE), NAME).await? else {
        let body = encode(&wanted, "discovery.k8s.io/v1", "EndpointSlice")?;
        return server
            .create_internal(kind, Some(NAMESPACE.into()), body)
            .await
            .map(drop);
    };
    let mut slice: EndpointSlice = decode(&current.value())?;
    if slice.address_type != wanted.address_type {
        // The address type is immutable; upstream deletes and recreates the slice. Only a
        // hand-edited slice gets here.
        tracing::warn!(
            found = %slice.address_type,
            wanted = %wanted.address_type,
            "the kubernetes EndpointSlice has another address type; leaving it"
        );
        return Ok(());
    }
    if slice.endpoints == wanted.endpoints
        && slice.ports == wanted.ports
        && slice.metadata.labels == wanted.metadata.labels
    {
        return Ok(());
    }
    slice.endpoints = wanted.endpoints;
    slice.ports = wanted.ports;
    slice.metadata.labels = wanted.metadata.labels;
    let body = encode(&slice, "discovery.k8s.io/v1", "EndpointSlice")?;
    server
        .update_internal(kind, Some(NAMESPACE), &current, body)
        .await
        .map(drop)
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> ApiResult<T> {
    serde_json::from_value(value.clone()).map_err(super::ApiError::internal)
}

fn encode<T: serde::Serialize>(object: &T, api_version: &str, kind: &str) -> ApiResult<Value> {
    let mut value = serde_json::to_value(object).map_err(super::ApiError::internal)?;
    value["apiVersion"] = json!(api_version);
    value["kind"] = json!(kind);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_mirrors_the_endpoints_as_upstreams_adapter_does() {
        let endpoints = Endpoints {
            subsets: Some(vec![subset("127.0.0.1".parse().unwrap(), 6443)]),
            ..Default::default()
        };
        let slice = serde_json::to_value(slice_of(&endpoints)).unwrap();
        assert_eq!(
            slice,
            json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
            })
        );
        let v6 = Endpoints {
            subsets: Some(vec![subset("::1".parse().unwrap(), 6443)]),
            ..Default::default()
        };
        assert_eq!(slice_of(&v6).address_type, "IPv6");
    }
}
