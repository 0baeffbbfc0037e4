//! The Docker resources of a run, by their labels: the cluster's network, and removing what a
//! scenario, an interrupted run or a crashed one leaves; old images pruned.

use std::collections::HashMap;
use std::time::Duration;

use testcontainers::bollard::models::NetworkCreateRequest;
use testcontainers::bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use testcontainers::bollard::Docker;

use super::{docker_error, image, Error, Result, KEPT_PREFIX, PID_LABEL, RUN_LABEL};

pub(super) fn label_filter(key: &str, value: Option<&str>) -> HashMap<String, Vec<String>> {
    let label = match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    };
    HashMap::from([("label".to_string(), vec![label])])
}

/// Create the cluster's network with a subnet of its own choosing (so a node cut off and
/// connected again gets its address back): a random `10.X.Y.0/24` with X in 200..=254, clear of
/// the Service range, retried while Docker finds it overlapping another network.
pub(super) async fn create_network(
    docker: &Docker,
    name: &str,
    labels: &[(&str, String)],
) -> Result<()> {
    use rand::Rng;
    let mut last = None;
    for _ in 0..20 {
        let (x, y) = {
            let mut rng = rand::rng();
            (rng.random_range(200..=254u8), rng.random_range(0..=255u8))
        };
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(testcontainers::bollard::models::Ipam {
                config: Some(vec![testcontainers::bollard::models::IpamConfig {
                    subnet: Some(format!("10.{x}.{y}.0/24")),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("overlap") => last = Some(e),
            Err(e) => return Err(docker_error(format!("create the network {name}"))(e).into()),
        }
    }
    Err(Error::Missing(format!(
        "no free 10.X.Y.0/24 subnet for the network {name} after 20 tries (last: {})",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
    .into())
}

/// Remove every container and network labelled `key=value`, kept ones too; failures are
/// logged.
pub async fn remove_labelled(docker: &Docker, key: &str, value: &str) {
    let filters = label_filter(key, Some(value));
    remove_where(docker, filters, false, |_| true).await;
}

/// Remove the containers and networks matching `filters` for which `select` holds (given their
/// labels), but kept containers (named [`KEPT_PREFIX`]...) when `spare_kept`.
pub(super) async fn remove_where(
    docker: &Docker,
    filters: HashMap<String, Vec<String>>,
    spare_kept: bool,
    select: impl Fn(&HashMap<String, String>) -> bool,
) {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "cannot list containers to remove");
            Vec::new()
        });
    let removals = containers.into_iter().filter_map(|c| {
        let labels = c.labels.unwrap_or_default();
        let id = c.id?;
        let kept = c
            .names
            .unwrap_or_default()
            .iter()
            .any(|n| n.trim_start_matches('/').starts_with(KEPT_PREFIX));
        (!(spare_kept && kept) && select(&labels)).then_some(async move {
            if let Err(e) = docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
            {
                tracing::warn!(%id, cause = %e, "cannot remove container");
            }
        })
    });
    futures::future::join_all(removals).await;
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "cannot list networks to remove");
            Vec::new()
        });
    for n in networks {
        let labels = n.labels.unwrap_or_default();
        if let (true, Some(id)) = (select(&labels), n.id) {
            // A kept cluster's network still has its containers: Docker refuses, and it stays.
            if let Err(e) = docker.remove_network(&id).await {
                tracing::debug!(%id, cause = %e, "cannot remove network");
            }
        }
    }
}

/// Remove the kubespec images of earlier binaries (each source change makes a new one, about
/// as big as the binary); one a container still uses stays, as Docker refuses.
pub(super) async fn prune_images(docker: &Docker, current: &image::Image) {
    let (key, value) = image::IMAGE_LABEL;
    let listed = docker
        .list_images(Some(
            testcontainers::bollard::query_parameters::ListImagesOptions {
                filters: Some(label_filter(key, Some(value))),
                ..Default::default()
            },
        ))
        .await;
    let Ok(images) = listed else {
        return;
    };
    for old in images.into_iter().filter(|i| i.id != current.id) {
        match docker
            .remove_image(
                &old.id,
                None::<testcontainers::bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(id = %old.id, tags = ?old.repo_tags, "removed an old kubespec image")
            }
            Err(e) => tracing::debug!(id = %old.id, cause = %e, "old kubespec image stays"),
        }
    }
}

/// Remove what runs whose process is gone left behind (they crashed or were killed).
pub(super) async fn sweep_crashed(docker: &Docker) {
    let alive = |labels: &HashMap<String, String>| {
        labels
            .get(PID_LABEL)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    remove_where(docker, label_filter(PID_LABEL, None), true, |labels| {
        let dead = !alive(labels);
        if dead {
            tracing::info!(run = ?labels.get(RUN_LABEL), "removing what a crashed run left");
        }
        dead
    })
    .await;
}

/// On Ctrl-C or SIGTERM: remove the run's containers and networks, then exit (130, as a shell
/// reports an interrupted command).
pub(super) async fn remove_on_interrupt(docker: Docker, run: String) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => if r.is_err() { return },
        () = term => {}
    }
    eprintln!("interrupted: removing this run's containers and networks ({RUN_LABEL}={run})");
    let filters = label_filter(RUN_LABEL, Some(&run));
    remove_where(&docker, filters.clone(), true, |_| true).await;
    // A container whose creation was under way when the list was taken: once more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    remove_where(&docker, filters, true, |_| true).await;
    std::process::exit(130);
}
