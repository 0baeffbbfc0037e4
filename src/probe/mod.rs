//! Probes as upstream's `pkg/probe`: what the kubelet's liveness, readiness and startup probes
//! and lifecycle hooks send, and what the apiserver's componentstatus checks send, with the
//! outcomes and Go-worded messages both report.

pub mod http;

/// What one probe attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The probe succeeded.
    Success,
    /// A success with something to say (an HTTP redirect that was not followed).
    Warning(String),
    /// The probe failed, with upstream's message.
    Failure(String),
    /// The probe could not run; its result is thrown away.
    Error(String),
}

/// An I/O error as Go's `net` package ends its message (`connection refused`).
pub fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}
