//! The HTTP prober as upstream's (`pkg/probe/http`): a GET with the probe's headers
//! (`User-Agent: kube-probe/1.33` and `Accept: */*` unless the probe names them, `Host` from
//! the headers), redirects followed only while they stay on the probed host and for at most 10
//! requests, the first 10 KiB of the body read. 2xx succeeds; a 3xx that is not followed is a
//! warning (the kubelet records a `ProbeWarning` event and counts it a success); anything
//! else fails with `HTTP probe failed with statuscode: N`. Transport errors read as Go's
//! `http.Client` prints them (`Get "http://...": dial tcp ...: connect: connection refused`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use url::Url;

use super::{short_io, Outcome};

/// How much of a response body the prober reads (upstream's `maxRespBodyLength`).
const MAX_BODY: usize = 10 * 1024;
/// How many requests a redirect chain may make (Go's default redirect policy).
const MAX_REQUESTS: usize = 10;

/// A probe's request, as upstream's `NewRequestForHTTPGetAction` builds it.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub url: Url,
    /// Header lines in order, names as given.
    headers: Vec<(String, String)>,
    /// The `Host` header, when the probe sets one.
    host: Option<String>,
}

impl ProbeRequest {
    /// The request for `scheme://host:port` + `path` with the handler's headers; `purpose`
    /// names the client in the default user agent (`probe`, `lifecycle`).
    pub fn new(
        purpose: &str,
        scheme: &str,
        host: &str,
        port: u16,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Self, String> {
        let scheme = scheme.to_ascii_lowercase();
        let scheme = if scheme.is_empty() {
            "http".into()
        } else {
            scheme
        };
        let authority = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]:{port}"),
            Err(_) => format!("{host}:{port}"),
        };
        let mut url = Url::parse(&format!("{scheme}://{authority}/"))
            .map_err(|e| format!("parse \"{scheme}://{authority}\": {e}"))?;
        let (path, fragment) = match path.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (path, None),
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        url.set_path(path);
        url.set_query(query);
        url.set_fragment(fragment);
        let canonical = |n: &str| crate::k8s::go::canonical_header_key(n);
        let mut lines: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (canonical(n), v.clone()))
            .collect();
        if !lines.iter().any(|(n, _)| n == "User-Agent") {
            lines.push(("User-Agent".into(), format!("kube-{purpose}/1.33")));
        }
        match lines.iter().find(|(n, _)| n == "Accept") {
            None => lines.push(("Accept".into(), "*/*".into())),
            Some((_, v)) if v.is_empty() => lines.retain(|(n, _)| n != "Accept"),
            Some(_) => {}
        }
        let host = lines
            .iter()
            .find(|(n, _)| n == "Host")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        // Go sends Host from `req.Host`, never from the header map, and no empty User-Agent.
        lines.retain(|(n, v)| n != "Host" && !(n == "User-Agent" && v.is_empty()));
        Ok(Self {
            url,
            headers: lines,
            host,
        })
    }
}

/// One answer: status, `Location`, the start of the body.
pub struct Answer {
    pub status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// A URL as Go prints the kubelet's: the port always written (`http://10.0.0.1:80/`), where the
/// `url` crate leaves a scheme's default port out.
pub fn go_string(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), authority(url));
    out.push_str(url.path());
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `host:port` of a URL, the port always written.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// A client error as Go's `http.Client` words it: `Get "http://h:p/path": ...`.
fn get_error(url: &Url, detail: &str) -> String {
    format!("Get \"{}\": {detail}", go_string(url))
}

/// One request over a fresh connection (the prober's transport keeps none alive).
async fn get_once(
    url: &Url,
    headers: &[(String, String)],
    host: Option<&str>,
) -> Result<Answer, String> {
    if url.scheme() != "http" {
        // No simulated server speaks TLS: the TLS handshake would meet a plain HTTP answer.
        return Err(get_error(
            url,
            "http: server gave HTTP response to HTTPS client",
        ));
    }
    let host_name = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let dial_host = host_name.trim_start_matches('[').trim_end_matches(']');
    // A name is looked up first, as Go's dialer does, and a failed lookup is worded as Go's.
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((dial_host, port))
        .await
        .map(Iterator::collect)
        .map_err(|_| get_error(url, &format!("dial tcp: lookup {dial_host}: no such host")))?;
    let stream = tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| {
            get_error(
                url,
                &format!("dial tcp {host_name}:{port}: connect: {}", short_io(&e)),
            )
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| get_error(url, &e.to_string()))?;
    let driver = tokio::spawn(conn);
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let authority = host
        .map(str::to_string)
        .unwrap_or_else(|| match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name.to_string(),
        });
    // The kubelet's transports keep no connection alive, so Go sends `Connection: close`.
    let mut request = http::Request::get(target)
        .header(http::header::HOST, authority)
        .header(http::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| get_error(url, &format!("net/http: invalid header: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| {
        let detail = if e.is_incomplete_message() || e.is_closed() {
            "EOF".to_string()
        } else if e.is_parse() {
            format!("net/http: HTTP/1.x transport connection broken: malformed HTTP response: {e}")
        } else {
            e.to_string()
        };
        get_error(url, &detail)
    })?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|l| !l.is_empty());
    let mut body = Vec::new();
    let mut stream = response.into_body();
    while body.len() < MAX_BODY {
        match stream.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            // A body cut short still counts with what arrived, as a truncated read does.
            Some(Err(_)) | None => break,
        }
    }
    driver.abort();
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// The answer to `request`, following redirects as upstream's `RedirectChecker(false)` does:
/// only while they stay on the first request's host, for at most 10 requests.
///
/// # Errors
/// What Go's `http.Client` says when a request fails (`Get "http://...": ...`).
pub async fn get(request: &ProbeRequest) -> Result<Answer, String> {
    let first_host = request.url.host_str().map(str::to_string);
    let mut url = request.url.clone();
    let mut host = request.host.clone();
    let mut requests = 0;
    loop {
        requests += 1;
        let answer = get_once(&url, &request.headers, host.as_deref()).await?;
        let followed = matches!(answer.status, 301 | 302 | 303 | 307 | 308);
        let (true, Some(location)) = (followed, answer.location.as_deref()) else {
            return Ok(answer);
        };
        let next = url.join(location).map_err(|e| {
            get_error(
                &url,
                &format!("failed to parse Location header {location:?}: {e}"),
            )
        })?;
        if next.host_str().map(str::to_string) != first_host {
            return Ok(answer);
        }
        if requests >= MAX_REQUESTS {
            return Err(format!("Get \"{location}\": stopped after 10 redirects"));
        }
        // Go keeps a Host override only across relative redirects.
        if Url::parse(location).is_ok() {
            host = None;
        }
        url = next;
    }
}

/// One probe: 2xx succeeds, an unfollowed 3xx warns, anything else fails.
pub async fn probe(request: &ProbeRequest) -> Outcome {
    match get(request).await {
        Err(e) => Outcome::Failure(e),
        Ok(answer) => outcome(&answer).0,
    }
}

/// What an answer means to a probe, and its body as text.
fn outcome(answer: &Answer) -> (Outcome, String) {
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    let outcome = match answer.status {
        200..=299 => Outcome::Success,
        300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {body}")),
        code => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    };
    (outcome, body)
}

/// A health check as upstream's componentstatus makes one (`pkg/probe/http` on a URL, no
/// headers of its own): the outcome, with the response body as a success's message (`ok`).
pub async fn check(url: &str) -> (Outcome, String) {
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return (Outcome::Error(format!("parse {url:?}: {e}")), String::new()),
    };
    let request = match ProbeRequest::new(
        "probe",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(80),
        &match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        },
        &[],
    ) {
        Ok(r) => r,
        Err(e) => return (Outcome::Error(e), String::new()),
    };
    match get(&request).await {
        Err(e) => (Outcome::Failure(e), String::new()),
        Ok(answer) => outcome(&answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on 127.0.0.1 answering each connection with the next of `answers`, handing
    /// each request's head to the test.
    async fn server(answers: Vec<String>) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for answer in answers.into_iter().cycle() {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        (port, rx)
    }

    fn answer(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn request(port: u16, path: &str, headers: &[(&str, &str)]) -> ProbeRequest {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        ProbeRequest::new("probe", "HTTP", "127.0.0.1", port, path, &headers).unwrap()
    }

    #[tokio::test]
    async fn requests_carry_upstreams_default_and_given_headers() {
        let (port, mut heads) = server(vec![answer("200 OK", "", "ok")]).await;
        let outcome = probe(&request(port, "/healthz?x=1", &[])).await;
        assert_eq!(outcome, Outcome::Success);
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("GET /healthz?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
        assert!(head.contains("User-Agent: kube-probe/1.33\r\n"), "{head}");
        assert!(head.contains("Accept: */*\r\n"), "{head}");
        // Given headers: a Host overrides the authority, an empty Accept removes it, a
        // User-Agent replaces the kubelet's.
        let given = request(
            port,
            "healthz",
            &[
                ("host", "example.com"),
                ("accept", ""),
                ("user-agent", "mine"),
            ],
        );
        assert_eq!(
            given.url.as_str(),
            format!("http://127.0.0.1:{port}/healthz")
        );
        assert_eq!(probe(&given).await, Outcome::Success);
        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.contains("host: example.com\r\n"), "{head}");
        assert!(head.contains("user-agent: mine\r\n"), "{head}");
        assert!(!head.contains("accept:"), "{head}");
    }

    #[test]
    fn urls_join_host_port_and_path_as_go_does() {
        let url = |host: &str, path: &str| {
            ProbeRequest::new("probe", "HTTP", host, 8080, path, &[])
                .unwrap()
                .url
                .to_string()
        };
        assert_eq!(url("10.0.0.1", "/x?y=1"), "http://10.0.0.1:8080/x?y=1");
        assert_eq!(url("10.0.0.1", "x"), "http://10.0.0.1:8080/x");
        assert_eq!(url("::1", "/x"), "http://[::1]:8080/x");
        let https = ProbeRequest::new("lifecycle", "HTTPS", "10.0.0.1", 443, "/", &[]).unwrap();
        assert_eq!(go_string(&https.url), "https://10.0.0.1:443/");
        let http = ProbeRequest::new("probe", "HTTP", "10.0.0.1", 80, "/", &[]).unwrap();
        assert_eq!(go_string(&http.url), "http://10.0.0.1:80/");
    }

    #[tokio::test]
    async fn status_codes_decide_as_upstream() {
        let (port, _heads) = server(vec![answer("500 Internal Server Error", "", "no")]).await;
        assert_eq!(
            probe(&request(port, "/", &[])).await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        let (port, _heads) = server(vec![answer("304 Not Modified", "", "")]).await;
        assert_eq!(
            probe(&request(port, "/", &[])).await,
            Outcome::Warning("Probe terminated redirects, Response body: ".into())
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = listener.local_addr().unwrap().port();
        drop(listener);
        assert_eq!(
            probe(&request(closed, "/x", &[])).await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{closed}/x\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn redirects_are_followed_on_the_same_host_only() {
        let (port, mut heads) = server(vec![
            answer("302 Found", "Location: /next\r\n", "moved"),
            answer("200 OK", "", "ok"),
        ])
        .await;
        assert_eq!(probe(&request(port, "/", &[])).await, Outcome::Success);
        heads.recv().await.unwrap();
        assert!(heads
            .recv()
            .await
            .unwrap()
            .starts_with("GET /next HTTP/1.1"));

        let (port, _heads) = server(vec![answer(
            "301 Moved Permanently",
            "Location: http://0.0.0.0/\r\n",
            "<a href=\"http://0.0.0.0/\">Moved Permanently</a>.\n\n",
        )])
        .await;
        assert_eq!(
            probe(&request(port, "/", &[])).await,
            Outcome::Warning(
                "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Moved Permanently</a>.\n\n"
                    .into()
            )
        );

        let (port, mut heads) = server(vec![answer(
            "307 Temporary Redirect",
            "Location: /again\r\n",
            "",
        )])
        .await;
        assert_eq!(
            probe(&request(port, "/", &[])).await,
            Outcome::Failure("Get \"/again\": stopped after 10 redirects".into())
        );
        let mut requests = 0;
        while heads.try_recv().is_ok() {
            requests += 1;
        }
        assert_eq!(requests, 10);
    }

    #[tokio::test]
    async fn only_the_first_ten_kibibytes_of_a_body_are_read() {
        let long = "x".repeat(20 * 1024);
        let (port, _heads) = server(vec![answer("300 Multiple Choices", "", &long)]).await;
        let Outcome::Warning(w) = probe(&request(port, "/", &[])).await else {
            panic!("a warning")
        };
        assert_eq!(
            w.len(),
            "Probe terminated redirects, Response body: ".len() + MAX_BODY
        );
    }

    #[tokio::test]
    async fn a_health_check_reports_the_body_or_what_went_wrong() {
        let (port, _heads) = server(vec![answer("200 OK", "", "ok")]).await;
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert_eq!(check(&url).await, (Outcome::Success, "ok".to_string()));

        let (port, _heads) = server(vec![answer("500 Internal Server Error", "", "bad")]).await;
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert_eq!(
            check(&url).await.0,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );

        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert_eq!(
            check(&url).await.0,
            Outcome::Failure(format!(
                "Get \"{url}\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        assert!(matches!(check("not a url").await.0, Outcome::Error(_)));
    }
}
