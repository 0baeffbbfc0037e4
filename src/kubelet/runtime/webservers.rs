//! The web server images: nginx and Apache httpd (the official `httpd` image, and e2e's mirror
//! of `httpd:2.4.38-alpine` / `2.4.39-alpine`, its "webserver" image through 1.33).
//!
//! httpd as its image runs it (`httpd -D FOREGROUND`, event MPM, `ErrorLog` on stderr,
//! `CustomLog` in the common format on stdout): port 80 of the pod's IP, the stock `It works!`
//! page at `/` and `/index.html`, Apache's 404 page elsewhere; SIGTERM stops it at once
//! (`caught SIGTERM, shutting down`) and SIGWINCH — the stop signal of the official image since
//! 2.4.41 — stops it gracefully; either exits 0.

use std::net::IpAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::gonet::{self, Reply, Request, Response};
use super::log::{Log, Stream};
use crate::clock::Clock;

const NGINX_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n</body>\n</html>\n";

/// nginx: the welcome page on port 80 until `term`; exit 1, with nginx's bind error in the log,
/// when the port is taken.
pub(super) async fn run_nginx(ip: IpAddr, logs: &Arc<Mutex<Log>>, term: &CancellationToken) -> i32 {
    let router = Router::new().route(
        "/",
        get(|| async { ([("content-type", "text/html")], NGINX_PAGE) }),
    );
    match super::serve(ip, 80, router, term.clone()).await {
        Ok(()) => 0,
        Err(e) => {
            logs.lock().extend_from_slice(
                format!("nginx: [emerg] bind() to {ip}:80 failed ({e})\n").as_bytes(),
            );
            1
        }
    }
}

/// The stock `htdocs/index.html` of Apache 2.4.
pub(super) const HTTPD_PAGE: &str = "<html><body><h1>It works!</h1></body></html>\n";

/// The thread id httpd's error log shows for its main thread.
const HTTPD_TID: u64 = 139_757_355_064_136;

/// What an httpd image is.
pub(super) struct Httpd {
    /// The Apache release (`2.4.38`).
    pub(super) version: String,
    /// Whether its stop signal is SIGWINCH (graceful stop).
    pub(super) graceful_stop: bool,
}

fn error_log_time(t: DateTime<Utc>) -> String {
    t.format("%a %b %d %H:%M:%S%.6f %Y").to_string()
}

fn not_found_page(version: &str, path: &str) -> String {
    // Releases before 2.4.41 named the URL in the page; later ones leave it out.
    let patch: u32 = version
        .strip_prefix("2.4.")
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    let sentence = if patch < 41 {
        format!(
            "The requested URL {} was not found on this server.",
            gonet::html_escape(path)
        )
    } else {
        "The requested URL was not found on this server.".to_string()
    };
    format!("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>{sentence}</p>\n</body></html>\n")
}

fn httpd_answer(version: &str, req: &Request) -> Response {
    let server = format!("Apache/{version} (Unix)");
    let path = gonet::clean_path(&req.path);
    if matches!(req.method.as_str(), "GET" | "HEAD" | "POST")
        && (path == "/" || path == "/index.html")
    {
        return Response::new(200, HTTPD_PAGE)
            .with_header("Server", server)
            .with_header("Last-Modified", "Mon, 11 Jun 2007 18:53:14 GMT")
            .with_header("ETag", "\"2d-432a5e4a73a80\"")
            .with_header("Accept-Ranges", "bytes")
            .with_header("Content-Type", "text/html");
    }
    Response::new(404, not_found_page(version, &req.path))
        .with_header("Server", server)
        .with_header("Content-Type", "text/html; charset=iso-8859-1")
}

/// Apache httpd on port 80 until stopped; see the module documentation.
pub(super) async fn run_httpd(
    image: &Httpd,
    ip: IpAddr,
    clock: &Clock,
    logs: &Arc<Mutex<Log>>,
    term: &CancellationToken,
) -> i32 {
    let stderr = |line: String| logs.lock().write(Stream::Stderr, line.as_bytes());
    let fqdn = format!("AH00558: httpd: Could not reliably determine the server's fully qualified domain name, using {ip}. Set the 'ServerName' directive globally to suppress this message\n");
    stderr(fqdn.clone());
    stderr(fqdn);
    let listener = match tokio::net::TcpListener::bind((ip, 80)).await {
        Ok(l) => l,
        Err(e) => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            stderr(format!(
                "({}){text}: AH00072: make_sock: could not bind to address 0.0.0.0:80\n",
                e.raw_os_error().unwrap_or(0)
            ));
            stderr("no listening sockets available, shutting down\n".into());
            stderr("AH00015: Unable to open logs\n".into());
            return 1;
        }
    };
    let notice = |module: &str, text: &str| {
        format!(
            "[{}] [{module}:notice] [pid 1:tid {HTTPD_TID}] {text}\n",
            error_log_time(clock.now())
        )
    };
    stderr(notice(
        "mpm_event",
        &format!(
            "AH00489: Apache/{} (Unix) configured -- resuming normal operations",
            image.version
        ),
    ));
    stderr(notice(
        "core",
        "AH00094: Command line: 'httpd -D FOREGROUND'",
    ));
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();
    let shutdown = CancellationToken::new();
    let (version, log, c) = (image.version.clone(), logs.clone(), clock.clone());
    let handler: gonet::Handler = Arc::new(move |req: Request| {
        let response = httpd_answer(&version, &req);
        let bytes = if req.method == "HEAD" || response.body.is_empty() {
            "-".to_string()
        } else {
            response.body.len().to_string()
        };
        let line = format!(
            "{} - - [{}] \"{} {} {}\" {} {bytes}\n",
            req.remote.ip(),
            c.now().format("%d/%b/%Y:%H:%M:%S +0000"),
            req.method,
            req.target,
            req.version,
            response.status
        );
        log.lock().write(Stream::Stdout, line.as_bytes());
        Box::pin(async move { Reply::Send(response) })
    });
    let mut server = tokio::spawn(gonet::serve(
        listener,
        handler,
        shutdown.clone(),
        kill.clone(),
    ));
    tokio::select! {
        () = term.cancelled() => {}
        _ = &mut server => return 1,
    }
    if image.graceful_stop {
        stderr(notice(
            "mpm_event",
            "AH00492: caught SIGWINCH, shutting down gracefully",
        ));
        shutdown.cancel();
        let _ = server.await;
    } else {
        stderr(notice(
            "mpm_event",
            "AH00491: caught SIGTERM, shutting down",
        ));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_apache_s() {
        assert_eq!(HTTPD_PAGE.len(), 45);
        assert!(not_found_page("2.4.38", "/x<")
            .contains("<p>The requested URL /x&lt; was not found on this server.</p>"));
        assert!(not_found_page("2.4.63", "/x")
            .contains("<p>The requested URL was not found on this server.</p>"));
    }

    #[tokio::test]
    async fn httpd_serves_it_works_logs_requests_and_stops_on_sigterm() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ip: IpAddr = "127.77.8.1".parse().unwrap();
        let clock = Clock::real();
        let logs = Arc::new(Mutex::new(Log::new(1 << 20, clock.clone())));
        let term = CancellationToken::new();
        let image = Httpd {
            version: "2.4.38".into(),
            graceful_stop: false,
        };
        let (l, t, c) = (logs.clone(), term.clone(), clock.clone());
        let task = tokio::spawn(async move { run_httpd(&image, ip, &c, &l, &t).await });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let response = loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect((ip, 80)).await {
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
                    .await
                    .unwrap();
                let mut text = String::new();
                s.read_to_string(&mut text).await.unwrap();
                break text;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(response.starts_with("HTTP/1.0 200 OK\r\n"), "{response}");
        assert!(
            response.contains("Server: Apache/2.4.38 (Unix)\r\n"),
            "{response}"
        );
        assert!(response.ends_with("\r\n\r\n<html><body><h1>It works!</h1></body></html>\n"));
        term.cancel();
        let code = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 0);
        let text = String::from_utf8_lossy(&logs.lock().contents()).into_owned();
        assert!(
            text.contains("\"GET /index.html HTTP/1.0\" 200 45"),
            "{text}"
        );
        assert!(
            text.contains("AH00491: caught SIGTERM, shutting down"),
            "{text}"
        );
    }
}
