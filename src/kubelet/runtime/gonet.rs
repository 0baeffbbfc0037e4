//! What Go's `net/http` and `net` packages show of a program, for the simulated images written
//! in Go (agnhost): an HTTP server loop on a real socket with `ServeMux`'s path cleaning, the
//! responses `http.Error`, `http.NotFound` and `http.Redirect` write, content-type sniffing,
//! `r.FormValue` query parsing, `encoding/json` strings, `time.Time.String()`, an HTTP client
//! and UDP exchanges with Go's error texts (`dial tcp 127.0.0.9:80: connect: connection
//! refused`). Apache httpd's simulation shares the server loop.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::podnet::PodNet;

/// The largest request body a simulated server reads (Go's multipart reader keeps 32 MiB in
/// memory; beyond this the request is refused rather than held).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as a handler sees it.
#[derive(Clone, Debug)]
pub(super) struct Request {
    /// `GET`, `POST`, ...
    pub(super) method: String,
    /// The request-target as sent (`/echo?msg=a%20b`).
    pub(super) target: String,
    /// The path, percent-decoded (Go's `r.URL.Path`).
    pub(super) path: String,
    /// The query, as sent (Go's `r.URL.RawQuery`).
    pub(super) raw_query: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub(super) version: &'static str,
    /// Headers as received (names lower-case).
    pub(super) headers: Vec<(String, String)>,
    /// The client's address (Go's `r.RemoteAddr`).
    pub(super) remote: SocketAddr,
    /// The body.
    pub(super) body: Bytes,
}

impl Request {
    /// A header's first value.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Go's `r.FormValue(key)`: the first value of `key` in a urlencoded POST body, else in the
    /// query; "" when absent.
    pub(super) fn form_value(&self, key: &str) -> String {
        let urlencoded = self
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if urlencoded && matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            if let Some(v) = first(&parse_query(&String::from_utf8_lossy(&self.body)), key) {
                return v;
            }
        }
        first(&parse_query(&self.raw_query), key).unwrap_or_default()
    }

    /// `r.URL.Query().Get(key)`.
    pub(super) fn query_value(&self, key: &str) -> String {
        first(&parse_query(&self.raw_query), key).unwrap_or_default()
    }
}

fn first(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// A response.
#[derive(Clone, Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    /// A response with this status and body; `Content-Type` is sniffed from a non-empty body
    /// unless a header sets it, as Go's `ResponseWriter` does.
    pub(super) fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same, with a header.
    pub(super) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// `http.Error(w, msg, code)`.
    pub(super) fn error(msg: &str, status: u16) -> Self {
        Self::new(status, format!("{msg}\n"))
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_header("X-Content-Type-Options", "nosniff")
    }

    /// `http.NotFound`.
    pub(super) fn not_found() -> Self {
        Self::error("404 page not found", 404)
    }

    /// `http.Redirect(w, r, url, code)`: a relative `url` is made absolute against the
    /// request's path; GET answers carry the short HTML body.
    pub(super) fn redirect(req: &Request, url: &str, code: u16) -> Self {
        let mut url = url.to_string();
        let has_scheme_or_host = url_has_scheme_or_host(&url);
        if !has_scheme_or_host {
            let old = if req.path.is_empty() { "/" } else { &req.path };
            if !url.starts_with('/') {
                let dir = &old[..old.rfind('/').map_or(0, |i| i + 1)];
                url = format!("{dir}{url}");
            }
            let (p, query) = match url.find('?') {
                Some(i) => (url[..i].to_string(), url[i..].to_string()),
                None => (url.clone(), String::new()),
            };
            let trailing = p.ends_with('/');
            let mut cleaned = clean_path(&p);
            if trailing && !cleaned.ends_with('/') {
                cleaned.push('/');
            }
            url = cleaned + &query;
        }
        let mut r = Self::new(code, Vec::new()).with_header("Location", hex_escape_non_ascii(&url));
        if req.method == "GET" || req.method == "HEAD" {
            r = r.with_header("Content-Type", "text/html; charset=utf-8");
        }
        if req.method == "GET" {
            let text = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            r.body = format!("<a href=\"{}\">{text}</a>.\n\n", html_escape(&url)).into_bytes();
        }
        r
    }

    fn into_hyper(self, head: bool) -> hyper::Response<Full<Bytes>> {
        let mut headers = self.headers;
        let has_ct = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if !has_ct && !self.body.is_empty() {
            headers.push(("Content-Type".into(), sniff(&self.body).into()));
        }
        let body = if head { Vec::new() } else { self.body };
        let mut builder = hyper::Response::builder().status(self.status);
        for (n, v) in headers {
            builder = builder.header(n, v);
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
    }
}

fn url_has_scheme_or_host(url: &str) -> bool {
    if url.starts_with("//") {
        return true;
    }
    match url.find(':') {
        Some(i) => {
            let scheme = &url[..i];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !url[..i].contains('/')
        }
        None => false,
    }
}

/// What a handler does with a request.
pub(super) enum Reply {
    /// Answer it.
    Send(Response),
    /// Close the connection without an answer (the handler panicked, or the process exits
    /// while serving it).
    Abort,
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Self::Send(r)
    }
}

/// A request handler.
pub(super) type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Go's text for an OS error (`connection refused`, `address already in use`).
pub(super) fn errno_text(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        let text = std::io::Error::from_raw_os_error(code).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        let mut chars = text.chars();
        return match chars.next() {
            Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
            None => text,
        };
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Bind a TCP listener on the pod's IP for Go's `net.Listen("tcp", ":port")`; the error as Go
/// words it (`listen tcp :8080: bind: address already in use`).
pub(super) async fn listen_tcp(ip: IpAddr, port: i64) -> Result<TcpListener, String> {
    let port =
        u16::try_from(port).map_err(|_| format!("listen tcp: address {port}: invalid port"))?;
    TcpListener::bind((ip, port))
        .await
        .map_err(|e| format!("listen tcp :{port}: bind: {}", errno_text(&e)))
}

/// Bind a UDP socket on `ip` for Go's `net.ListenUDP("udp", ":port")`.
pub(super) async fn listen_udp(ip: IpAddr, port: i64, shown: &str) -> Result<UdpSocket, String> {
    let port =
        u16::try_from(port).map_err(|_| format!("listen udp: address {port}: invalid port"))?;
    UdpSocket::bind((ip, port))
        .await
        .map_err(|e| format!("listen udp {shown}:{port}: bind: {}", errno_text(&e)))
}

/// Serve `handler` on `listener` until `shutdown` (then finish the requests under way and
/// return) or `kill` (then drop every connection at once). Header names are written as Go and
/// Apache write them (`Content-Type`).
pub(super) async fn serve(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    kill: CancellationToken,
) {
    let limits = crate::server::Limits::new(crate::server::Limits::SMALL);
    let drain = crate::server::Drain::new();
    let mut listener = listener;
    let stop = {
        let (s, k) = (shutdown.clone(), kill.clone());
        async move {
            tokio::select! {
                () = s.cancelled() => {}
                () = k.cancelled() => {}
            }
        }
    };
    tokio::pin!(stop);
    while let Some((slot, tcp)) = limits.accept(&mut listener, stop.as_mut()).await {
        let slot = slot.map(|s| s.occupy(&limits));
        let Ok(remote) = tcp.peer_addr() else {
            continue;
        };
        let handler = handler.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    let request = read_request(req, remote).await?;
                    let head = request.method == "HEAD";
                    match handler(request).await {
                        Reply::Send(r) => Ok::<_, std::io::Error>(r.into_hyper(head)),
                        Reply::Abort => Err(std::io::Error::other("handler aborted")),
                    }
                }
            });
        let mut builder = limits.http1();
        builder.title_case_headers(true);
        let connection = drain.watch(
            builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades(),
        );
        let kill = kill.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                r = connection => {
                    if let Err(e) = r {
                        tracing::trace!(cause = %e, "simulated server connection ended");
                    }
                }
                () = kill.cancelled() => {}
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = drain.shutdown() => {}
        () = kill.cancelled() => {}
    }
}

async fn read_request(
    req: hyper::Request<hyper::body::Incoming>,
    remote: SocketAddr,
) -> Result<Request, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_bytes();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let raw_path = parts.uri.path();
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: percent_decode(raw_path, false).unwrap_or_else(|| raw_path.to_string()),
        raw_query: parts.uri.query().unwrap_or_default().to_string(),
        target,
        version: if parts.version == http::Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        remote,
        body,
    })
}

/// `ServeMux`'s answer to a request whose path is not clean (`//x`, `/a/../b`): a permanent
/// redirect to the clean path; `None` for a clean path.
pub(super) fn unclean_redirect(req: &Request) -> Option<Response> {
    if req.method == "CONNECT" || req.path.is_empty() {
        return None;
    }
    let mut cleaned = clean_path(&req.path);
    if req.path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    if cleaned == req.path {
        return None;
    }
    let target = if req.raw_query.is_empty() {
        cleaned
    } else {
        format!("{cleaned}?{}", req.raw_query)
    };
    Some(Response::redirect(req, &target, 301))
}

/// Go's `path.Clean` of a rooted path.
pub(super) fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

fn hex_escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b >= 0x80 {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Go's `html.EscapeString` (`template.HTMLEscapeString` in redirects): `& < > " '`.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-decode (with `+` as a space when `plus`); `None` on a malformed escape, as Go's
/// `url.QueryUnescape` / `PathUnescape` refuse it.
pub(super) fn percent_decode(s: &str, plus: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| char::from(c).to_digit(16);
                let hi = b.get(i + 1).copied().and_then(hex)?;
                let lo = b.get(i + 2).copied().and_then(hex)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.ParseQuery`, keeping the pairs it accepts (it skips a pair with a `;` or a bad
/// escape).
pub(super) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Escape a path as Go's `url.URL{Path: p}.String()` does.
pub(super) fn escape_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `http.DetectContentType`, for the kinds of bodies the simulated servers write.
pub(super) fn sniff(body: &[u8]) -> &'static str {
    let data = &body[..body.len().min(512)];
    let start = data
        .iter()
        .position(|b| !b"\t\n\x0c\r ".contains(b))
        .unwrap_or(data.len());
    let trimmed = &data[start..];
    const HTML: &[&str] = &[
        "<!DOCTYPE HTML",
        "<HTML",
        "<HEAD",
        "<SCRIPT",
        "<IFRAME",
        "<H1",
        "<DIV",
        "<FONT",
        "<TABLE",
        "<A",
        "<STYLE",
        "<TITLE",
        "<B",
        "<BODY",
        "<BR",
        "<P",
        "<!--",
    ];
    for sig in HTML {
        let n = sig.len();
        if trimmed.len() > n
            && trimmed[..n].eq_ignore_ascii_case(sig.as_bytes())
            && matches!(trimmed[n], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    if data.starts_with(b"%PDF-") {
        return "application/pdf";
    }
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return "image/png";
    }
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        return "image/gif";
    }
    if data.starts_with(b"\xff\xd8\xff") {
        return "image/jpeg";
    }
    if data.starts_with(b"\x1f\x8b\x08") {
        return "application/x-gzip";
    }
    if data.starts_with(b"PK\x03\x04") {
        return "application/zip";
    }
    let binary = data.iter().any(|&b| {
        b <= 0x08 || b == 0x0b || (0x0e..=0x1a).contains(&b) || (0x1c..=0x1f).contains(&b)
    });
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// A string as Go's `encoding/json` writes it (HTML-safe: `<`, `>`, `&` escaped; invalid
/// UTF-8 as `\ufffd`).
pub(super) fn json_string(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
    out
}

/// `json.Marshal` of a `map[string]string` or `map[string][]string` (keys sorted).
pub(super) fn json_object(entries: &[(&str, JsonValue)]) -> String {
    let mut sorted: Vec<&(&str, JsonValue)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let fields: Vec<String> = sorted
        .iter()
        .map(|(k, v)| {
            let value = match v {
                JsonValue::Str(s) => json_string(s),
                JsonValue::List(l) => format!(
                    "[{}]",
                    l.iter()
                        .map(|s| json_string(s))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            format!("{}:{value}", json_string(k.as_bytes()))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A value of [`json_object`] (Go strings are bytes: invalid UTF-8 is written as `\ufffd`).
pub(super) enum JsonValue {
    /// A string.
    Str(Vec<u8>),
    /// A list of strings.
    List(Vec<Vec<u8>>),
}

/// Go's `%v` of a `map[string]string`: `map[k1:v1 k2:v2]`, keys sorted.
pub(super) fn go_map(entries: &HashMap<&str, String>) -> String {
    let mut keys: Vec<&&str> = entries.keys().collect();
    keys.sort();
    let inner: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}:{}", entries.get(**k).map(String::as_str).unwrap_or("")))
        .collect();
    format!("map[{}]", inner.join(" "))
}

/// Go's `time.Time.String()` of `time.Now()` in a UTC container: `2024-04-28 16:44:26.250831234
/// +0000 UTC m=+0.818493127` (the monotonic reading counts from the process start).
pub(super) fn go_time_string(t: DateTime<Utc>, since_start: chrono::Duration) -> String {
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let mono = since_start.num_nanoseconds().unwrap_or(i64::MAX);
    let sign = if mono < 0 { '-' } else { '+' };
    let mono = mono.unsigned_abs();
    format!(
        "{}{frac} +0000 UTC m={sign}{}.{:09}",
        t.format("%Y-%m-%d %H:%M:%S"),
        mono / 1_000_000_000,
        mono % 1_000_000_000
    )
}

/// A Go socket address (`127.0.0.1:80`, `[::1]:80`).
pub(super) fn go_addr(a: &SocketAddr) -> String {
    a.to_string()
}

/// Resolve `host` as the simulated pod sees names: IP literals, `localhost`, and an empty host
/// (the pod itself). The simulation has no cluster DNS: any other name fails as an unknown
/// host does.
pub(super) fn resolve_host(host: &str, own: IpAddr) -> Result<IpAddr, String> {
    if host.is_empty() {
        return Ok(own);
    }
    if host == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .map_err(|_| format!("lookup {host}: no such host"))
}

/// Go's `net.SplitHostPort`.
pub(super) fn split_host_port(addr: &str) -> Result<(String, String), String> {
    let missing = || format!("address {addr}: missing port in address");
    let too_many = || format!("address {addr}: too many colons in address");
    if let Some(rest) = addr.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("address {addr}: missing ']' in address"));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) if !port.contains(':') => Ok((host.to_string(), port.to_string())),
            Some(_) => Err(too_many()),
            None if after.is_empty() => Err(missing()),
            None => Err(format!("address {addr}: missing port in address")),
        };
    }
    let Some(i) = addr.rfind(':') else {
        return Err(missing());
    };
    let host = &addr[..i];
    if host.contains(':') {
        return Err(too_many());
    }
    if host.contains('[') || host.contains(']') {
        return Err(format!("address {addr}: unexpected '[' in address"));
    }
    Ok((host.to_string(), addr[i + 1..].to_string()))
}

/// Go's port lookup for `network` (`tcp`/`udp`): a number, or a well-known service name.
pub(super) fn parse_port(network: &str, port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(0);
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map_err(|_| format!("address {port}: invalid port"));
    }
    match port {
        "http" => Ok(80),
        "https" => Ok(443),
        "domain" => Ok(53),
        _ => Err(format!("lookup {network}/{port}: unknown port")),
    }
}

/// Connect to `to` from the pod (`dial tcp ...: connect: ...` on failure); `timeout` in
/// cluster time, none when `None`. What the pod reaches is `podnet`'s: its loopback is its own
/// IP, and an unroutable peer never answers.
pub(super) async fn dial_tcp(
    net: &PodNet,
    to: SocketAddr,
    timeout: Option<Duration>,
) -> Result<TcpStream, DialError> {
    let clock = &net.clock;
    let attempt = super::podnet::connect_tcp(net, to, 0);
    let result = match timeout {
        Some(t) => match clock.timeout(t, attempt).await {
            Ok(r) => r,
            Err(_) => return Err(DialError::Timeout),
        },
        None => attempt.await,
    };
    result.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => DialError::Refused,
        std::io::ErrorKind::TimedOut => DialError::TimedOut,
        _ => DialError::Other(errno_text(&e)),
    })
}

/// Why a dial failed.
#[derive(Debug)]
pub(super) enum DialError {
    /// ECONNREFUSED.
    Refused,
    /// The deadline passed.
    Timeout,
    /// The kernel gave up (`ETIMEDOUT`: no answer to its SYNs).
    TimedOut,
    /// Another OS error (its text).
    Other(String),
}

impl DialError {
    /// Go's `OpError` text for `dial tcp ADDR`.
    pub(super) fn text(&self, to: &SocketAddr) -> String {
        match self {
            Self::Refused => format!("dial tcp {}: connect: connection refused", go_addr(to)),
            Self::Timeout => format!("dial tcp {}: i/o timeout", go_addr(to)),
            Self::TimedOut => format!("dial tcp {}: connect: connection timed out", go_addr(to)),
            Self::Other(e) => format!("dial tcp {}: connect: {e}", go_addr(to)),
        }
    }
}

/// Go's `http.Client{Timeout}.Get(url)` from the pod: the body (whatever the status), or the
/// client's error text. Redirects are followed (at most 10), as Go's client does.
pub(super) async fn http_get(
    net: &PodNet,
    to: SocketAddr,
    target: &str,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut to = to;
    let mut target = target.to_string();
    let start = format!("http://{}{target}", go_addr(&to));
    let attempt = async {
        for _ in 0..=10 {
            let url = format!("http://{}{target}", go_addr(&to));
            let stream = dial_tcp(net, to, None)
                .await
                .map_err(|e| format!("Get {}: {}", crate::k8s::go_quote(&url), e.text(&to)))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("Get {}: {e}", crate::k8s::go_quote(&url)))?;
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let request = hyper::Request::get(target.as_str())
                .header("Host", go_addr(&to))
                .header("User-Agent", "Go-http-client/1.1")
                .header("Accept-Encoding", "gzip")
                .body(http_body_util::Empty::<Bytes>::new())
                .map_err(|e| format!("Get {}: {e}", crate::k8s::go_quote(&url)))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| format!("Get {}: EOF", crate::k8s::go_quote(&url)))?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| "unexpected EOF".to_string())?
                .to_bytes();
            conn.abort();
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => {
                    if let Some(rest) = loc.strip_prefix("http://") {
                        let (authority, path) = match rest.find('/') {
                            Some(i) => (&rest[..i], &rest[i..]),
                            None => (rest, "/"),
                        };
                        let (host, port) = split_host_port(authority)
                            .unwrap_or_else(|_| (authority.to_string(), "80".into()));
                        let ip = resolve_host(&host, net.ip).map_err(|e| {
                            format!("Get {}: dial tcp: {e}", crate::k8s::go_quote(&loc))
                        })?;
                        to = SocketAddr::new(ip, parse_port("tcp", &port).unwrap_or(80));
                        target = path.to_string();
                    } else if loc.starts_with('/') {
                        target = loc;
                    } else {
                        let dir = &target[..target.rfind('/').map_or(0, |i| i + 1)];
                        target = format!("{dir}{loc}");
                    }
                }
                _ => return Ok(body.to_vec()),
            }
        }
        Err(format!(
            "Get {}: stopped after 10 redirects",
            crate::k8s::go_quote(&start)
        ))
    };
    match net.clock.timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "Get {}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            crate::k8s::go_quote(&start)
        )),
    }
}

/// A connected UDP socket from the pod to `to` (its loopback is its own IP, as `podnet` says).
pub(super) async fn udp_connect(net: &PodNet, to: SocketAddr) -> std::io::Result<UdpSocket> {
    let own = net.ip;
    let to = match net.route(to, crate::netfilter::Protocol::Udp) {
        super::podnet::Route::To(real) => real,
        // Rejected (a Service without endpoints): ICMP port unreachable comes back, so a read
        // fails with "connection refused", as from a loopback port nobody listens on.
        super::podnet::Route::Refused => closed_loopback_port()?,
        // Dropped, or nowhere (UDP is never tunnelled): what is sent vanishes. Never the
        // original address: nothing leaves the machine.
        super::podnet::Route::Unroutable | super::podnet::Route::Tunnel { .. } => black_hole()?,
    };
    let local: SocketAddr =
        if to.ip().is_loopback() && own.is_loopback() && own.is_ipv4() == to.is_ipv4() {
            SocketAddr::new(own, 0)
        } else if to.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
        };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(to).await?;
    Ok(socket)
}

/// A loopback UDP address that swallows whatever is sent to it: a socket of this process that
/// is never read (once its buffer is full the kernel drops the rest, silently).
fn black_hole() -> std::io::Result<SocketAddr> {
    static SINK: std::sync::OnceLock<std::io::Result<std::net::UdpSocket>> =
        std::sync::OnceLock::new();
    match SINK.get_or_init(|| std::net::UdpSocket::bind("127.0.0.1:0")) {
        Ok(sink) => sink.local_addr(),
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    }
}

/// A loopback UDP port nobody listens on (bound and let go at once).
fn closed_loopback_port() -> std::io::Result<SocketAddr> {
    std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()
}

/// Why a UDP read failed, as Go's `OpError` prints it (`read udp L->R: i/o timeout`).
pub(super) fn udp_read_error(
    socket: &UdpSocket,
    to: &SocketAddr,
    e: Option<&std::io::Error>,
) -> String {
    let local = socket.local_addr().map(|a| go_addr(&a)).unwrap_or_default();
    match e {
        None => format!("read udp {local}->{}: i/o timeout", go_addr(to)),
        Some(e) => format!("read udp {local}->{}: read: {}", go_addr(to), errno_text(e)),
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
///
/// # Errors
/// Go's text: `time: invalid duration "x"`, `time: missing unit in duration "1"`,
/// `time: unknown unit "x" in duration "1x"`.
pub(super) fn parse_go_duration(s: &str) -> Result<i64, String> {
    let quoted = crate::k8s::go_quote(s);
    let invalid = || format!("time: invalid duration {quoted}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int = &rest[..int_end];
        rest = &rest[int_end..];
        let mut frac = "";
        if let Some(after) = rest.strip_prefix('.') {
            let end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            frac = &after[..end];
            rest = &after[end..];
            if int.is_empty() && frac.is_empty() {
                return Err(invalid());
            }
        } else if int.is_empty() {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {quoted}",
                    crate::k8s::go_quote(unit)
                ))
            }
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !frac.is_empty() {
            let digits = &frac[..frac.len().min(30)];
            let f: f64 = format!("0.{digits}").parse().map_err(|_| invalid())?;
            value += (f * scale as f64) as u128;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 {
            return Err(invalid());
        }
    }
    let total = i64::try_from(total).map_err(|_| invalid())?;
    Ok(if neg { -total } else { total })
}

/// Go's `time.Duration.String()` of a signed duration in nanoseconds.
pub(super) fn go_duration_string(nanos: i64) -> String {
    let text = super::catalog::go_duration(Duration::from_nanos(nanos.unsigned_abs()));
    if nanos < 0 {
        format!("-{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_as_go_parses_them() {
        let q = parse_query("msg=a+b%21&code=&bad=%zz&x;y=1&msg=second");
        assert_eq!(
            q,
            vec![
                ("msg".to_string(), "a b!".to_string()),
                ("code".to_string(), String::new()),
                ("msg".to_string(), "second".to_string()),
            ]
        );
    }

    #[test]
    fn durations_parse_and_print_as_go() {
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("1h2m"), Ok(3_720_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(
            parse_go_duration("5"),
            Err("time: missing unit in duration \"5\"".into())
        );
        assert_eq!(
            parse_go_duration("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".into())
        );
        assert_eq!(
            parse_go_duration("x"),
            Err("time: invalid duration \"x\"".into())
        );
        assert_eq!(go_duration_string(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration_string(-1_500_000), "-1.5ms");
        assert_eq!(go_duration_string(0), "0s");
    }

    #[test]
    fn redirects_and_errors_answer_as_net_http() {
        let req = Request {
            method: "GET".into(),
            target: "/redirect?loc=x".into(),
            path: "/a/redirect".into(),
            raw_query: String::new(),
            version: "HTTP/1.1",
            headers: Vec::new(),
            remote: "127.0.0.1:1".parse().unwrap(),
            body: Bytes::new(),
        };
        let r = Response::redirect(&req, "../healthz?x=1", 302);
        assert_eq!(
            r.headers,
            vec![
                ("Location".to_string(), "/healthz?x=1".to_string()),
                (
                    "Content-Type".to_string(),
                    "text/html; charset=utf-8".to_string()
                )
            ]
        );
        assert_eq!(r.body, b"<a href=\"/healthz?x=1\">Found</a>.\n\n");
        let r = Response::redirect(&req, "http://0.0.0.0/", 302);
        assert_eq!(r.body, b"<a href=\"http://0.0.0.0/\">Found</a>.\n\n");
        assert_eq!(Response::not_found().body, b"404 page not found\n");
        let unclean = Request {
            path: "//hostName".into(),
            ..req
        };
        let r = unclean_redirect(&unclean).unwrap();
        assert_eq!(r.status, 301);
        assert_eq!(r.headers[0].1, "/hostName");
    }

    #[test]
    fn json_and_sniffing_follow_go() {
        assert_eq!(
            json_string(b"a<b>\"\n\xff"),
            "\"a\\u003cb\\u003e\\\"\\n\\ufffd\""
        );
        assert_eq!(
            json_object(&[
                ("output", JsonValue::Str(b"x".to_vec())),
                ("error", JsonValue::Str(b"exit status 1".to_vec()))
            ]),
            "{\"error\":\"exit status 1\",\"output\":\"x\"}"
        );
        assert_eq!(sniff(b"hello"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"  <html><body>"), "text/html; charset=utf-8");
        assert_eq!(sniff(b"\x00\x01"), "application/octet-stream");
    }

    #[test]
    fn time_strings_carry_the_monotonic_reading() {
        let t = DateTime::from_timestamp(1_714_322_666, 250_831_000).unwrap();
        assert_eq!(
            go_time_string(t, chrono::Duration::milliseconds(818)),
            "2024-04-28 16:44:26.250831 +0000 UTC m=+0.818000000"
        );
    }

    #[test]
    fn host_ports_split_as_go_splits_them() {
        assert_eq!(
            split_host_port("10.0.0.1:80"),
            Ok(("10.0.0.1".into(), "80".into()))
        );
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1".into(), "80".into())));
        assert_eq!(
            split_host_port("10.0.0.1"),
            Err("address 10.0.0.1: missing port in address".into())
        );
        assert_eq!(
            parse_port("tcp", "99999"),
            Err("address 99999: invalid port".into())
        );
    }

    #[tokio::test]
    async fn udp_to_a_rejecting_service_is_refused_and_to_nowhere_vanishes_on_the_machine() {
        use crate::netfilter::{Netfilter, NoEndpoints, Protocol, Ruleset, ServiceRule};
        let net = super::super::podnet::PodNet {
            ip: "127.42.7.5".parse().unwrap(),
            clock: crate::clock::Clock::real(),
            netfilter: Netfilter::new(),
        };
        net.netfilter.program(Ruleset {
            rules: vec![ServiceRule {
                name: "ns/dns:".into(),
                protocol: Protocol::Udp,
                frontends: vec!["10.96.0.10:53".parse().unwrap()],
                endpoints: vec![],
                no_endpoints: NoEndpoints::Reject,
                affinity_seconds: None,
            }],
        });
        // No endpoints: ICMP port unreachable comes back, the read is refused.
        let rejected = udp_connect(&net, "10.96.0.10:53".parse().unwrap())
            .await
            .unwrap();
        assert!(rejected.peer_addr().unwrap().ip().is_loopback());
        rejected.send(b"q").await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), rejected.recv(&mut buf)).await;
        assert_eq!(
            read.expect("an answer within 5s").unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        // Outside the simulation: connected to a loopback sink, never to 8.8.8.8 itself; what is
        // sent vanishes and nothing answers.
        let nowhere = udp_connect(&net, "8.8.8.8:53".parse().unwrap())
            .await
            .unwrap();
        assert!(nowhere.peer_addr().unwrap().ip().is_loopback());
        nowhere.send(b"q").await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(300), nowhere.recv(&mut buf)).await;
        assert!(read.is_err(), "no answer from nowhere: {read:?}");
    }
}
