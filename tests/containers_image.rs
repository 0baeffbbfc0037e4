//! The containers target's image: a static kubespec built from these sources, in an image
//! `FROM scratch`, runs in Docker and says what the native binary says; building it again with
//! the same binary changes nothing; a test's container is removed even when the test fails; and
//! without a Docker Engine the error says so and how to fix it.
//!
//! These tests need a Docker Engine (they fail, with the fix in the message, without one). Those
//! that need the image compile kubespec once more, statically, into `<target dir>/static`
//! (minutes, and again after every change): they are `#[ignore]`d in a plain `cargo test` and run
//! with `cargo test --test containers_image -- --ignored`.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use kubespec::target::containers::image::{self, Image, StaticBuild};
use testcontainers::bollard::query_parameters::ListContainersOptionsBuilder;
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncReadExt;

const RUN_LABEL: &str = "kubespec.run";

/// A label value unique to this test.
fn run_id(test: &str) -> String {
    format!("containers-image-{test}-{}", uuid::Uuid::new_v4().simple())
}

async fn kubespec_image() -> Image {
    match image::build(&StaticBuild::default()).await {
        Ok(image) => image,
        Err(e) => panic!("cannot build the kubespec image: {e}"),
    }
}

/// The containers (running or not) labelled with `run`.
async fn containers_of(run: &str) -> Vec<String> {
    let docker = image::docker().await.expect("docker");
    let filters = HashMap::from([("label", vec![format!("{RUN_LABEL}={run}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Run `kubespec ARGS` in a container of `image` labelled `run` to its end; its stdout.
async fn run_to_end(image: &Image, run: &str, args: &[&str]) -> String {
    let container: ContainerAsync<GenericImage> = image
        .generic()
        .with_cmd(args.iter().copied())
        .with_label(RUN_LABEL, run)
        .start()
        .await
        .unwrap_or_else(|e| panic!("cannot start kubespec {args:?}: {e}"));
    // The followed log ends when the container exits.
    let mut stdout = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        container.stdout(true).read_to_end(&mut stdout),
    )
    .await
    .unwrap_or_else(|_| panic!("kubespec {args:?} in a container did not end within 60s"))
    .expect("container stdout");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let code = loop {
        let code = container.exit_code().await.expect("inspect container");
        if let Some(code) = code {
            break code;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubespec {args:?} closed its output but was still running 30s later"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = container.stderr_to_vec().await.unwrap_or_default();
    assert_eq!(
        code,
        0,
        "kubespec {args:?} in a container exited {code}; stderr:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).expect("utf-8 output")
}

fn native(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubespec"))
        .args(args)
        .output()
        .expect("run native kubespec");
    assert!(out.status.success(), "native kubespec {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds kubespec again, statically (minutes): cargo test --test containers_image -- --ignored"]
async fn the_image_runs_kubespec_as_the_native_binary_does_and_leaves_no_container() {
    let image = kubespec_image().await;
    assert_eq!(image.reference(), format!("kubespec:{}", image.tag));
    let run = run_id("output");
    for args in [
        &["--version"][..],
        &["component", "apiserver", "--help"][..],
    ] {
        let expected = native(args);
        assert!(
            !expected.is_empty(),
            "native kubespec {args:?} printed nothing"
        );
        assert_eq!(run_to_end(&image, &run, args).await, expected, "{args:?}");
    }
    assert_eq!(
        containers_of(&run).await,
        Vec::<String>::new(),
        "containers left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds kubespec again, statically (minutes): cargo test --test containers_image -- --ignored"]
async fn a_failing_test_still_removes_its_running_container() {
    let image = kubespec_image().await;
    let run = run_id("panic");
    let (started, on_started) = tokio::sync::oneshot::channel();
    let task = {
        let run = run.clone();
        tokio::spawn(async move {
            // A long-running component: the apiserver on the loopback of the container's own
            // network namespace (nothing is published on the host).
            let container = image
                .generic()
                .with_wait_for(WaitFor::message_on_stdout(
                    "kubespec apiserver listening on",
                ))
                .with_cmd(["component", "apiserver", "--port", "6443"])
                .with_label(RUN_LABEL, &run)
                .with_startup_timeout(Duration::from_secs(60))
                .start()
                .await
                .expect("start the apiserver container");
            let running = container.exit_code().await.expect("inspect the container");
            let _ = started.send((container.id().to_string(), running));
            panic!("this scenario fails while its container runs");
        })
    };
    let (id, exit_code) = on_started.await.expect("the container started");
    assert_eq!(exit_code, None, "the apiserver container was not running");
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()), "the task was to panic");
    let docker = image::docker().await.expect("docker");
    let inspect = docker.inspect_container(&id, None).await;
    assert!(
        inspect.is_err(),
        "container {id} is still there after the test that owned it failed: {inspect:?}"
    );
    assert_eq!(containers_of(&run).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds kubespec again, statically (minutes): cargo test --test containers_image -- --ignored"]
async fn building_again_with_the_same_binary_changes_nothing() {
    let first = kubespec_image().await;
    let docker = image::docker().await.expect("docker");
    let before = docker
        .inspect_image(&first.reference())
        .await
        .expect("inspect the image");
    let labels = before
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    assert_eq!(labels.get("kubespec").map(String::as_str), Some("1"));

    let again = image::ensure_image(&first.binary)
        .await
        .expect("ensure the image again");
    assert_eq!(again.reference(), first.reference());
    assert!(!again.built, "a second call built the image again");
    let after = docker
        .inspect_image(&first.reference())
        .await
        .expect("inspect the image");
    assert_eq!(after.id, before.id, "image ID");
    assert_eq!(after.created, before.created, "creation time");
    // A rebuild from BuildKit's cache keeps the ID and creation time; only the time the tag was
    // (re)written tells that a build ran.
    assert_eq!(
        after.metadata.and_then(|m| m.last_tag_time),
        before.metadata.and_then(|m| m.last_tag_time),
        "the image was tagged again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_native_binary_is_refused_because_scratch_has_no_loader() {
    let err = image::ensure_image(env!("CARGO_BIN_EXE_kubespec").as_ref())
        .await
        .expect_err("a dynamically linked kubespec went into a scratch image");
    let message = err.to_string();
    assert!(message.contains("dynamically linked"), "{message}");
    assert!(message.contains("+crt-static"), "{message}");
}

/// Run by `without_docker_the_error_says_how_to_fix_it` with DOCKER_HOST pointing nowhere.
#[tokio::test]
#[ignore = "run in a child process by without_docker_the_error_says_how_to_fix_it"]
async fn child_build_without_docker() {
    let started = std::time::Instant::now();
    match image::build(&StaticBuild::default()).await {
        Ok(image) => println!("BUILT {}", image.reference()),
        Err(e) => println!("ERROR after {}ms: {e}", started.elapsed().as_millis()),
    }
}

#[test]
fn without_docker_the_error_says_how_to_fix_it() {
    let socket = tempfile::tempdir().expect("tempdir");
    let host = format!("unix://{}/docker.sock", socket.path().display());
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_build_without_docker",
            "--nocapture",
        ])
        .env("DOCKER_HOST", &host)
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {out:?}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ERROR") || l.starts_with("BUILT"))
        .unwrap_or_else(|| panic!("the child printed no outcome: {stdout}"));
    assert!(line.starts_with("ERROR"), "{line}");
    for needle in [
        "no Docker Engine is reachable at DOCKER_HOST=",
        host.as_str(),
        "Start the Docker daemon",
        "set DOCKER_HOST",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from: {line}");
    }
    // The daemon is asked before anything is compiled: the answer comes in seconds.
    let millis: u64 = line
        .strip_prefix("ERROR after ")
        .and_then(|rest| rest.split("ms:").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time in: {line}"));
    assert!(
        millis < 10_000,
        "the error took {millis}ms (was cargo run before asking the daemon?)"
    );
}
