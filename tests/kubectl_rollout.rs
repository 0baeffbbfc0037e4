//! Real kubectl (1.27 and 1.33) driving Deployments through `kubespec up`'s control loops:
//! create, rollout status, scale, set image, history, undo, pause/resume, delete.
//! Until the reference kubelet lands, a stand-in makes bound pods Ready through the API.

mod support;

use std::time::Duration;

use support::cli::{Kubectl, Up, Watched};
use support::{add_node, FakeKubelets};

fn rollout_story(version: &str) {
    let up = Up::start();
    let watched = up.watch();
    let _kubelets = watched.block_on(async {
        let client = kubespec::cluster::client_for(up.url()).unwrap();
        add_node(&client, "node-1", "8").await;
        FakeKubelets::start(client, kubespec::clock::Clock::real(), &["node-1"])
    });
    let k = Kubectl::new(version, &up);

    create_and_scale(&k, &watched);
    set_image_and_undo(&k);
    pause_and_resume(&k, &watched);
    assert_eq!(
        k.ok(&["delete", "deployment", "web"]).trim(),
        "deployment.apps \"web\" deleted"
    );
    k.wait_for(
        &watched,
        Duration::from_secs(20),
        &["get", "rs,pods", "-o", "name"],
        "",
    );
}

/// `rollout status` until the rollout of `web` is complete.
fn status(k: &Kubectl) {
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(
        out.lines().last(),
        Some("deployment \"web\" successfully rolled out"),
        "{out}"
    );
}

/// The image of `web`'s template.
fn image(k: &Kubectl) -> String {
    k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

/// create, rollout status, scale.
fn create_and_scale(k: &Kubectl, watched: &Watched) {
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    status(k);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}/{.status.availableReplicas}"
        ]),
        "3/3"
    );

    assert_eq!(
        k.ok(&["scale", "deployment", "web", "--replicas=5"]).trim(),
        "deployment.apps/web scaled"
    );
    status(k);
    k.wait_for(
        watched,
        Duration::from_secs(20),
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        "5",
    );
}

/// set image, rollout history, rollout undo.
fn set_image_and_undo(k: &Kubectl) {
    assert_eq!(
        k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.28"])
            .trim(),
        "deployment.apps/web image updated"
    );
    status(k);
    assert_eq!(image(k), "nginx:1.28");
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    let lines: Vec<Vec<&str>> = history
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["deployment.apps/web"]);
    assert_eq!(lines[1], vec!["REVISION", "CHANGE-CAUSE"]);
    assert_eq!(
        lines[2..4],
        [vec!["1", "<none>"], vec!["2", "<none>"]],
        "{history}"
    );

    assert_eq!(
        k.ok(&["rollout", "undo", "deployment/web"]).trim(),
        "deployment.apps/web rolled back"
    );
    status(k);
    assert_eq!(image(k), "nginx:1.27");
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        revisions,
        ["2", "3"],
        "undo reuses revision 1's ReplicaSet as revision 3:\n{history}"
    );
}

/// A paused deployment starts no rollout until it is resumed.
fn pause_and_resume(k: &Kubectl, watched: &Watched) {
    assert_eq!(
        k.ok(&["rollout", "pause", "deployment/web"]).trim(),
        "deployment.apps/web paused"
    );
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.29"]);
    // Barrier: the controller has seen the new template (observedGeneration caught up); only
    // then can "no new ReplicaSet" mean anything.
    let generation = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    k.wait_for(
        watched,
        Duration::from_secs(20),
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.observedGeneration}",
        ],
        generation.trim(),
    );
    let rs_count = k.ok(&["get", "rs", "-o", "name"]).lines().count();
    assert_eq!(rs_count, 2, "a paused deployment starts no rollout");
    k.wait_for(
        watched,
        Duration::from_secs(20),
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
        ],
        "DeploymentPaused",
    );
    assert_eq!(
        k.ok(&["rollout", "resume", "deployment/web"]).trim(),
        "deployment.apps/web resumed"
    );
    status(k);
    assert_eq!(k.ok(&["get", "rs", "-o", "name"]).lines().count(), 3);
}

#[test]
fn kubectl_1_27_rollout_story() {
    rollout_story("1.27");
}

#[test]
fn kubectl_1_33_rollout_story() {
    rollout_story("1.33");
}
