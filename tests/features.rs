//! The feature suite: every scenario under `features/` against the embedded reference cluster,
//! as `kubespec test` runs them (cucumber prints its own report; `harness = false`).

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    // `cargo test -- --list` (and test filters) are not cucumber's business: list nothing.
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A debug build does several times the CPU work of a release build for each simulated
    // second, so `cargo test` runs the suite at half the default time scale (a 1 s probe
    // timeout is 100 ms of wall time instead of 50) and half as many scenarios at once: on a
    // loaded 2-core machine the defaults left readiness probes timing out (README, Benchmarks).
    let options = kubespec::harness::Options {
        progress: kubespec::harness::report::Progress::Plain,
        artifacts: "target/kubespec-artifacts".into(),
        time_scale: kubespec::harness::runner::DEFAULT_TIME_SCALE / 2.0,
        concurrency: 4,
        ..Default::default()
    };
    match runtime.block_on(kubespec::harness::run(options)) {
        Ok(outcome) if outcome.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
