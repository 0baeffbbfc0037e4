//! The harness: Gherkin specs of the pod lifecycle run against any [`crate::target`].
//!
//! # Layout
//! - [`runner`]: `kubespec test`: loads the features, checks them (syntax, undefined steps with
//!   suggestions, capabilities), runs them with cucumber and reports.
//! - [`world`]: the per-scenario world (target, topology, cluster, timeline).
//! - [`timeline`]: the watch-driven record of a scenario's scope that every check reads.
//! - [`describe`]: what the timeline shows, in words, for failure messages.
//! - [`events`]: event checks (in order, counted, never) over aggregated occurrences.
//! - [`snapshot`]: normalized projections checked against insta snapshot files.
//! - [`manifest`]: manifests from doc strings and files, checked with file:line errors.
//! - [`report`]: terminal progress, JUnit and Cucumber JSON, artifacts of failed scenarios.
//! - [`vocabulary`]: the step phrases with examples (`kubespec steps`).
//! - [`params`]: the domain words of steps (durations, phases, probes, object selectors).
//! - `steps`: the step definitions, one file per domain concept.
//!
//! Steps talk to clusters only through the Kubernetes API and the target's declared faults;
//! the harness imports no controller, scheduler or kubelet code. It reads two pure pieces of
//! the reference: kubectl's printers (`apiserver::table`, for kubectl's columns) and, through
//! the embedded target, the image-model file loader.

pub mod describe;
pub mod events;
pub mod manifest;
pub mod params;
pub mod report;
pub mod runner;
pub mod snapshot;
mod steps;
pub mod timeline;
pub mod vocabulary;
pub mod world;

use std::fmt;
use std::time::Duration;

pub use runner::{run, steps_listing, Options, Outcome, TargetKind};
pub use world::World;

/// Why a step failed: the message the user reads.
#[derive(Debug, Clone)]
pub struct Failure(String);

impl Failure {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<timeline::WaitError> for Failure {
    fn from(e: timeline::WaitError) -> Self {
        Self(e.to_string())
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Self(e)
    }
}

/// What a step returns.
pub type StepResult = Result<(), Failure>;

/// A duration as people read it: `45s`, `2m`, `1m30s`, `1.5s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms % 1000 != 0 && ms < 60_000 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_people_read_them() {
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
