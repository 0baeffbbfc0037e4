//! agnhost `grpc-health-checking` (`test/images/agnhost/grpc-health-checking`), which upstream's
//! gRPC probe tests run: `grpc.health.v1.Health` on `--port` (5000) answering `SERVING` for the
//! service named by `--service` ("" by default; another name gets `NotFound` "unknown
//! service") until `--delay-unhealthy-sec` seconds have passed (never when negative), then
//! `NOT_SERVING`; `Watch` is `Unimplemented`. An HTTP server on `--http-port` (8080) forces the
//! answer with `/make-not-serving` and `/make-serving` (each answers the time since the start as a
//! Go duration). Every call and switch is logged through klog, as the binary's `log.Printf`
//! lines are. Time is the cluster clock's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::agnhost::Ctx;
use super::gonet::{self, Reply, Response};

/// The subcommand's settings, from its flags.
pub(super) struct Settings {
    pub(super) port: i64,
    pub(super) http_port: i64,
    pub(super) delay_unhealthy_sec: i64,
    pub(super) service: String,
}

struct Checker {
    ctx: Arc<Ctx>,
    service: String,
    delay_unhealthy_sec: i64,
    /// Set by `/make-serving` (false) and `/make-not-serving` (true).
    forced_unhealthy: Arc<Mutex<Option<bool>>>,
}

/// Go's `%v` of a `time.Time` from `time.Now()`: with its monotonic reading, which a process
/// that just started has at about zero.
fn go_time(t: DateTime<Utc>) -> String {
    format!(
        "{} +0000 UTC m=+0.000000001",
        t.format("%Y-%m-%d %H:%M:%S%.9f")
    )
}

#[tonic::async_trait]
impl Health for Checker {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        self.ctx.log(&format!(
            "Serving the Check request for health check, started at {}",
            go_time(self.ctx.started_at)
        ));
        if request.get_ref().service != self.service {
            return Err(tonic::Status::not_found("unknown service"));
        }
        let elapsed = (self.ctx.clock.now() - self.ctx.started_at).num_milliseconds();
        let delayed = self.delay_unhealthy_sec >= 0
            && elapsed >= self.delay_unhealthy_sec.saturating_mul(1000);
        let status = if *self.forced_unhealthy.lock() == Some(true) || delayed {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        Ok(tonic::Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("unimplemented"))
    }
}

/// Runs until SIGTERM (which kills the Go program: 143) or a listener fails (exit 1).
pub(super) async fn run(ctx: Arc<Ctx>, settings: Settings) -> i32 {
    let forced = Arc::new(Mutex::new(None));
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();

    ctx.log(&format!(
        "Http server starting to listen on :{}",
        settings.http_port
    ));
    let http = gonet::listen_tcp(ctx.ip, settings.http_port).await;
    let listener = match http {
        Ok(l) => l,
        Err(e) => {
            // `log.Fatal` in the HTTP goroutine ends the process.
            ctx.log(&e);
            return 1;
        }
    };
    {
        let (c, f) = (ctx.clone(), forced.clone());
        let handler: gonet::Handler = Arc::new(move |req| {
            let (c, f) = (c.clone(), f.clone());
            Box::pin(async move {
                let unhealthy = match req.path.as_str() {
                    "/make-not-serving" => true,
                    "/make-serving" => false,
                    _ => return Reply::Send(Response::not_found()),
                };
                c.log(if unhealthy {
                    "Mark as unhealthy"
                } else {
                    "Mark as healthy"
                });
                *f.lock() = Some(unhealthy);
                let since = (c.clock.now() - c.started_at)
                    .num_nanoseconds()
                    .unwrap_or(i64::MAX);
                Reply::Send(Response::new(200, gonet::go_duration_string(since)))
            })
        });
        tokio::spawn(gonet::serve(
            listener,
            handler,
            CancellationToken::new(),
            kill.clone(),
        ));
    }

    let listener = match gonet::listen_tcp(ctx.ip, settings.port).await {
        Ok(l) => l,
        Err(e) => {
            ctx.log(&format!("Error while starting the listening service {e}"));
            return 1;
        }
    };
    let checker = Checker {
        ctx: ctx.clone(),
        service: settings.service,
        delay_unhealthy_sec: settings.delay_unhealthy_sec,
        forced_unhealthy: forced,
    };
    ctx.log(&format!(
        "gRPC server starting to listen on :{}",
        settings.port
    ));
    let server = tonic::transport::Server::builder()
        .add_service(HealthServer::new(checker))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            kill.clone().cancelled_owned(),
        );
    tokio::select! {
        // No signal handler: SIGTERM kills the Go program.
        _ = ctx.term.cancelled() => 143,
        result = server => {
            if let Err(e) = result {
                ctx.log(&format!("Error while starting the gRPC server on the :{} listen address {e}", settings.port));
            }
            1
        }
    }
}
