//! The gRPC prober as upstream's (`pkg/probe/grpc`): `grpc.health.v1.Health/Check` for the
//! probe's service over plaintext HTTP/2 to the pod's IP, with `kube-probe/1.33` as the user
//! agent. Like grpc-go's blocking dial, a connection that cannot be made (refused, or a server
//! that does not speak HTTP/2) is retried with grpc-go's back-off until the probe's timeout, so
//! it fails as `timeout: failed to connect service "ip:port" within 1s: context deadline
//! exceeded`. `SERVING` succeeds; any other status, an error status or an RPC that outlasts the
//! timeout fails with upstream's words.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::{go_seconds, Outcome};
use crate::clock::Clock;

/// grpc-go's connection back-off: 1 s, growing 1.6 times, at most 120 s.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// grpc-go's name of a status code (`codes.Code.String()`).
pub(in crate::kubelet) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The enum name grpc-go prints for a serving status.
fn status_name(status: i32) -> String {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Unknown) => "UNKNOWN".into(),
        Ok(ServingStatus::Serving) => "SERVING".into(),
        Ok(ServingStatus::NotServing) => "NOT_SERVING".into(),
        Ok(ServingStatus::ServiceUnknown) => "SERVICE_UNKNOWN".into(),
        Err(_) => status.to_string(),
    }
}

/// What the server said: a serving status, or an error status.
enum Answer {
    Status(i32),
    Error(tonic::Status),
}

/// One attempt at the call; `None` when no usable connection was made (to be retried).
async fn attempt(endpoint: &Endpoint, service: &str) -> Option<Answer> {
    let channel = endpoint.connect().await.ok()?;
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    match client.check(request).await {
        Ok(answer) => Some(Answer::Status(answer.into_inner().status)),
        // A status the transport made (the connection broke, the peer spoke no HTTP/2) is a
        // connection grpc-go would never have called ready; one the server sent has no source.
        Err(status) if std::error::Error::source(&status).is_some() => None,
        Err(status) => Some(Answer::Error(status)),
    }
}

/// One gRPC probe of `ip:port`.
pub(super) async fn probe(
    clock: &Clock,
    ip: IpAddr,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Outcome {
    let addr = SocketAddr::new(ip, port).to_string();
    let within = go_seconds(timeout);
    let endpoint = match Endpoint::from_shared(format!("http://{addr}"))
        .and_then(|e| e.user_agent("kube-probe/1.33"))
    {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Failure(format!(
                "error: failed to connect service at {}: {e}",
                crate::k8s::go_quote(&addr)
            ))
        }
    };
    let connected = async {
        let mut backoff = BACKOFF_BASE;
        loop {
            if let Some(answer) = attempt(&endpoint, service).await {
                return answer;
            }
            clock.sleep(backoff).await;
            backoff = backoff.mul_f64(1.6).min(BACKOFF_MAX);
        }
    };
    match clock.timeout(timeout, connected).await {
        Err(_) => Outcome::Failure(format!(
            "timeout: failed to connect service {} within {within}: context deadline exceeded",
            crate::k8s::go_quote(&addr)
        )),
        Ok(Answer::Status(s)) if s == ServingStatus::Serving as i32 => Outcome::Success,
        Ok(Answer::Status(s)) => Outcome::Failure(format!(
            "service unhealthy (responded with {})",
            crate::k8s::go_quote(&status_name(s))
        )),
        Ok(Answer::Error(status)) => Outcome::Failure(match status.code() {
            tonic::Code::Unimplemented => format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            ),
            tonic::Code::DeadlineExceeded => {
                format!("timeout: health rpc did not complete within {within}")
            }
            code => format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                code_name(code),
                status.message()
            ),
        }),
    }
}
