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
    let options = kubespec::harness::Options {
        progress: kubespec::harness::report::Progress::Plain,
        artifacts: "target/kubespec-artifacts".into(),
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
