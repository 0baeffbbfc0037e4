//! The command line as a user meets it: bad flags and bad files get clear messages.

use assert_cmd::Command;

fn kubespec() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
}

#[test]
fn a_bad_image_models_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.yaml");
    std::fs::write(&file, "images:\n- image: example.com/app\n  portz: [80]\n").unwrap();
    let out = kubespec()
        .args(["up", "--port", "0", "--image-models"])
        .arg(&file)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", file.display()))
            && stderr.contains("unknown field `portz`"),
        "{stderr}"
    );
}

#[test]
fn a_non_loopback_address_and_a_bad_time_scale_are_refused() {
    let out = kubespec()
        .args(["up", "--address", "10.0.0.1"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"));
    let out = kubespec()
        .args(["up", "--time-scale", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a positive number"));
}

#[test]
fn bench_suite_refuses_a_time_scale_it_cannot_run() {
    let out = kubespec()
        .args(["bench", "suite", "--runs", "1", "--time-scale", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be a positive number between"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_component_without_a_reachable_cluster_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubespec::cluster::kubeconfig_for("http://127.0.0.1:1"),
    )
    .unwrap();
    let out = kubespec()
        .args(["component", "scheduler", "--kubeconfig"])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the cluster at http://127.0.0.1:1")
            && stderr.contains("Is the cluster running?"),
        "{stderr}"
    );
}

#[test]
fn bench_api_checks_every_watcher_saw_every_write() {
    // A small run (not timed): the benchmark starts its cluster, writes, watches and checks
    // delivery itself; both pacing modes.
    for rate in ["0", "500"] {
        let out = kubespec()
            .args([
                "bench",
                "api",
                "--writes",
                "200",
                "--clients",
                "4",
                "--watchers",
                "2",
            ])
            .args(["--rate", rate])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("writes:        200 pods in"), "{stdout}");
        assert!(
            stdout.contains("400 events delivered, every watcher saw every write exactly once"),
            "{stdout}"
        );
    }
    let out = kubespec()
        .args(["bench", "api", "--writes", "0"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--writes and --clients must be at least 1")
    );
}
