//! agnhost (`registry.k8s.io/e2e-test-images/agnhost`), the e2e tests' Swiss-army image, as its
//! 2.5x binary behaves: a cobra CLI (`/agnhost` and its symlink `/agnhost-2`, `ENTRYPOINT
//! ["/agnhost"] CMD ["pause"]`) whose subcommands the simulated runtime runs on real sockets on
//! the pod's IP.
//!
//! Modelled subcommands:
//!
//! - `pause`: prints `Paused`, sleeps; SIGTERM exits 2 (`pause/pause.go`).
//! - `entrypoint-tester`: prints its argv as Go's `%v` does (`[/agnhost-2 entrypoint-tester]`).
//! - `liveness`: HTTP on :8080; `/healthz` answers 200 `ok` while at most 10 s have passed since
//!   the start, then 500 `error: <seconds>`; `/started` the time since the start; `/redirect?loc=`
//!   a 302; anything else 404. Logs nothing; dies by SIGTERM (143).
//! - `netexec`: HTTP on `--http-port` (8080) with `/`, `/clientip`, `/header`, `/dial`, `/echo`,
//!   `/exit`, `/healthz`, `/readyz`, `/hostname`, `/hostName`, `/redirect`, `/shell` (the image's
//!   `/bin/sh -c`, i.e. the sh subset, in the container's filesystem), `/shutdown` and `/upload`;
//!   a UDP server on `--udp-port` (8081; -1 disables it) answering `hostname`, `echo X` and
//!   `clientip`; `--http-override`, `--udp-listen-addresses`, `--delay-shutdown`. `/healthz`
//!   answers 200 only once the UDP server is up (412 otherwise, so always with
//!   `--udp-port=-1`). SIGTERM exits 0 (after `--delay-shutdown` seconds; `/readyz` then
//!   answers 503). `/dial` makes real HTTP requests and UDP exchanges from the pod's IP.
//! - `serve-hostname`: the hostname over HTTP (default), raw TCP and/or UDP on `--port` (9376),
//!   `--close`; SIGTERM logs, waits 60 s and exits 0 (so the grace period decides).
//! - `test-webserver`: Go's `http.FileServer` over the container's filesystem on `--port` (80).
//! - `connect [--timeout] [--protocol tcp|udp] [--udp-data] host:port`: exit 0, or 1 with
//!   `REFUSED`, `TIMEOUT`, `DNS: ...`, `UNKNOWN: ...`, `OTHER: ...` on stderr.
//! - `grpc-health-checking`: the gRPC health service upstream's gRPC probe tests call
//!   (`grpc_health.rs`).
//! - `mounttest`: filesystem types, file modes, owners and contents of the container's
//!   filesystem and its volumes, new files of a given mode, a file read in a loop (see
//!   `mounttest.rs`).
//!
//! The binary runs under `k8s.io/component-base/cli.Run`, so everything the subcommands print
//! with Go's `log` package goes through klog to stderr with klog's header (`I0428
//! 16:44:25.432416       1 log.go:245] Started HTTP server on port 8080`), stamped with the
//! cluster clock; a command-line error prints `Error: ...` and exits 1 (`unknown command "x" for
//! "app"`, with cobra's "Did you mean this?" suggestions). Other upstream subcommands
//! (`etc-hosts`, ...) and netexec's TLS and SCTP servers
//! are not modelled: they exit 1 saying so. Usage texts are abbreviated. The simulation has no
//! cluster DNS: names other than IP literals and `localhost` do not resolve.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::catalog::{self, Image};
use super::gonet::{self, Handler, JsonValue, Reply, Request, Response};
use super::log::{Log, Stream};
use super::Fs;
use crate::clock::Clock;
use crate::k8s::go_quote;

#[path = "mounttest.rs"]
mod mounttest;

/// How much output a captured (exec'd) agnhost keeps per stream.
const CAPTURE_LIMIT: usize = 16 * 1024 * 1024;

/// The subcommands of agnhost 2.5x (and cobra's own `completion` and `help`), sorted.
const SUBCOMMANDS: &[&str] = &[
    "audit-proxy",
    "completion",
    "connect",
    "crd-conversion-webhook",
    "dns-server-list",
    "dns-suffix",
    "entrypoint-tester",
    "etc-hosts",
    "fake-gitserver",
    "grpc-health-checking",
    "guestbook",
    "help",
    "inclusterclient",
    "liveness",
    "logs-generator",
    "mounttest",
    "net",
    "netexec",
    "nettest",
    "no-snat-test",
    "no-snat-test-proxy",
    "pause",
    "port-forward-tester",
    "porter",
    "resource-consumer-controller",
    "serve-hostname",
    "tcp-reset",
    "test-service-account-issuer-discovery",
    "test-webserver",
    "webhook",
];

/// Captured (stdout, stderr).
type Captured = Arc<Mutex<(Vec<u8>, Vec<u8>)>>;

/// Where the process's output goes.
#[derive(Clone)]
pub(super) enum Out {
    /// The container's log.
    Log(Arc<Mutex<Log>>),
    /// Captured, for a process run by `kubectl exec`.
    Capture(Captured),
}

impl Out {
    fn write(&self, stream: Stream, data: &[u8]) {
        match self {
            Self::Log(log) => log.lock().write(stream, data),
            Self::Capture(c) => {
                let mut c = c.lock();
                let buf = match stream {
                    Stream::Stdout => &mut c.0,
                    Stream::Stderr => &mut c.1,
                };
                let room = CAPTURE_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }
}

/// What an agnhost process sees of its container.
pub(super) struct Ctx {
    /// The pod's IP: servers listen there, clients connect from there.
    pub(super) ip: IpAddr,
    /// The node's Service rules, which the pod's connections pass through.
    pub(super) netfilter: Arc<crate::netfilter::Netfilter>,
    /// The pod's hostname (`os.Hostname()`).
    pub(super) hostname: String,
    /// The cluster clock.
    pub(super) clock: Clock,
    /// When the process started.
    pub(super) started_at: DateTime<Utc>,
    /// stdout and stderr.
    pub(super) out: Out,
    /// SIGTERM.
    pub(super) term: CancellationToken,
    /// The container's filesystem (`/shell`, `test-webserver`, `/upload`).
    pub(super) fs: Arc<Fs>,
    /// The container's environment (`/shell`).
    pub(super) env: HashMap<String, String>,
    /// The process id klog prints (1 for a container's main process).
    pub(super) pid: u32,
    /// The image tag (`app --version`).
    pub(super) version: String,
}

impl Ctx {
    /// The pod's network, for the process's clients.
    fn net(&self) -> super::podnet::PodNet {
        super::podnet::PodNet {
            ip: self.ip,
            clock: self.clock.clone(),
            netfilter: self.netfilter.clone(),
        }
    }

    fn stdout(&self, s: &str) {
        self.out.write(Stream::Stdout, s.as_bytes());
    }

    fn stderr(&self, s: &str) {
        self.out.write(Stream::Stderr, s.as_bytes());
    }

    /// A line of Go's `log` package, which `cli.Run` sends through klog to stderr.
    pub(super) fn log(&self, msg: &str) {
        let now = self.clock.now();
        let mut line = format!(
            "I{} {:>7} log.go:245] {msg}",
            now.format("%m%d %H:%M:%S%.6f"),
            self.pid
        );
        if !line.ends_with('\n') {
            line.push('\n');
        }
        self.stderr(&line);
    }

    /// `getHostName()` in netexec: logs what it answers.
    fn hostname_logged(&self) -> String {
        self.log(&format!("hostname: {}", self.hostname));
        self.hostname.clone()
    }

    fn elapsed(&self) -> chrono::Duration {
        self.clock.now() - self.started_at
    }
}

/// The hostname of a pod named `pod_name`, as the kubelet sets it.
pub(super) fn hostname(pod_name: &str) -> String {
    crate::k8s::truncate_hostname(pod_name)
}

/// An exit status as the kernel reports `os.Exit(code)`.
fn exit_status(code: i64) -> i32 {
    (code & 0xff) as i32
}

fn not_modelled(ctx: &Ctx, what: &str) -> i32 {
    tracing::warn!(
        what,
        "an agnhost feature the simulated runtime does not model"
    );
    ctx.stderr(&format!(
        "kubespec: agnhost {what} is not modelled by the simulated runtime\n"
    ));
    1
}

// ---------------------------------------------------------------------------------------------
// Command line (cobra and pflag as agnhost's root command has them)

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Int,
    Str,
    Duration,
}

struct Flag {
    name: &'static str,
    kind: Kind,
    default: &'static str,
}

const fn flag(name: &'static str, kind: Kind, default: &'static str) -> Flag {
    Flag {
        name,
        kind,
        default,
    }
}

/// The root's persistent flags (cobra's `--help`, the logging flags `cli.Run` adds).
const GLOBAL_FLAGS: &[Flag] = &[
    flag("help", Kind::Bool, "false"),
    flag("v", Kind::Int, "0"),
    flag("vmodule", Kind::Str, ""),
    flag("log-flush-frequency", Kind::Duration, "5s"),
];

const NETEXEC_FLAGS: &[Flag] = &[
    flag("http-port", Kind::Int, "8080"),
    flag("tls-cert-file", Kind::Str, ""),
    flag("tls-private-key-file", Kind::Str, ""),
    flag("udp-port", Kind::Int, "8081"),
    flag("sctp-port", Kind::Int, "-1"),
    flag("http-override", Kind::Str, ""),
    flag("udp-listen-addresses", Kind::Str, ""),
    flag("delay-shutdown", Kind::Int, "0"),
];

const SERVE_HOSTNAME_FLAGS: &[Flag] = &[
    flag("tcp", Kind::Bool, "false"),
    flag("udp", Kind::Bool, "false"),
    flag("http", Kind::Bool, "true"),
    flag("close", Kind::Bool, "false"),
    flag("port", Kind::Int, "9376"),
];

const TEST_WEBSERVER_FLAGS: &[Flag] = &[flag("port", Kind::Int, "80")];

const GRPC_HEALTH_CHECKING_FLAGS: &[Flag] = &[
    flag("port", Kind::Int, "5000"),
    flag("http-port", Kind::Int, "8080"),
    flag("delay-unhealthy-sec", Kind::Int, "-1"),
    flag("service", Kind::Str, ""),
];

const CONNECT_FLAGS: &[Flag] = &[
    flag("timeout", Kind::Duration, "0s"),
    flag("protocol", Kind::Str, "tcp"),
    flag("udp-data", Kind::Str, "hostname"),
];

/// Parsed flags and the remaining arguments.
struct Flags {
    values: HashMap<&'static str, String>,
    args: Vec<String>,
}

impl Flags {
    fn str(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    fn int(&self, name: &str) -> i64 {
        parse_int0(&self.str(name)).unwrap_or_default()
    }

    fn bool(&self, name: &str) -> bool {
        parse_bool(&self.str(name)).unwrap_or_default()
    }

    fn duration(&self, name: &str) -> i64 {
        gonet::parse_go_duration(&self.str(name)).unwrap_or_default()
    }
}

/// `strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`, `0b` or a leading-zero octal.
fn parse_int0(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude = u64::from_str_radix(&digits, radix).map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    })?;
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    };
    if neg {
        if magnitude > i64::MAX as u64 + 1 {
            return Err(range());
        }
        Ok((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).map_err(|_| range())
    }
}

/// `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

fn check_value(f: &Flag, shown: &str, value: &str) -> Result<(), String> {
    let checked = match f.kind {
        Kind::Bool => parse_bool(value).map(|_| ()),
        Kind::Int => parse_int0(value).map(|_| ()),
        Kind::Duration => gonet::parse_go_duration(value).map(|_| ()),
        Kind::Str => Ok(()),
    };
    checked.map_err(|e| {
        format!(
            "invalid argument {} for {} flag: {e}",
            go_quote(value),
            go_quote(shown)
        )
    })
}

/// pflag's parsing (interspersed flags, `--name=value`, `--name value`, `-v 2`, `--`), with
/// cobra-from-cli.Run's name normalisation (`_` as `-`).
fn parse_flags(args: &[String], own: &[Flag]) -> Result<Flags, String> {
    let lookup = |name: &str| -> Option<&Flag> {
        let name = name.replace('_', "-");
        own.iter().chain(GLOBAL_FLAGS).find(|f| f.name == name)
    };
    let mut values: HashMap<&'static str, String> = own
        .iter()
        .chain(GLOBAL_FLAGS)
        .map(|f| (f.name, f.default.to_string()))
        .collect();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(f) = lookup(name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            let shown = if f.name == "v" {
                "-v, --v".to_string()
            } else if f.name == "help" {
                "-h, --help".to_string()
            } else {
                format!("--{}", f.name)
            };
            let value = match (inline, f.kind) {
                (Some(v), _) => v,
                (None, Kind::Bool) => "true".into(),
                (None, _) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(format!("flag needs an argument: --{name}")),
                },
            };
            check_value(f, &shown, &value)?;
            values.insert(f.name, value);
        } else if a.len() > 1 && a.starts_with('-') {
            // Shorthands: -h and -v (klog's verbosity).
            let body = &a[1..];
            for (at, c) in body.char_indices() {
                let f = match c {
                    'h' => &GLOBAL_FLAGS[0],
                    'v' => &GLOBAL_FLAGS[1],
                    _ => {
                        return Err(format!("unknown shorthand flag: '{c}' in {a}"));
                    }
                };
                let after = &body[at + c.len_utf8()..];
                if f.kind == Kind::Bool {
                    let value = match after.strip_prefix('=') {
                        Some(v) => {
                            check_value(f, "-h, --help", v)?;
                            values.insert(f.name, v.to_string());
                            break;
                        }
                        None => "true".to_string(),
                    };
                    values.insert(f.name, value);
                    continue;
                }
                let value = if let Some(v) = after.strip_prefix('=') {
                    v.to_string()
                } else if !after.is_empty() {
                    after.to_string()
                } else {
                    match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => return Err(format!("flag needs an argument: '{c}' in -{c}")),
                    }
                };
                check_value(f, "-v, --v", &value)?;
                values.insert(f.name, value);
                break;
            }
        } else {
            rest.push(a.clone());
        }
    }
    Ok(Flags { values, args: rest })
}

/// The position of the subcommand in `args` (the first argument that is not a flag), as
/// cobra finds it past the root's flags.
fn find_subcommand(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if a.len() > 1 && a.starts_with('-') {
            // A non-boolean flag without `=` takes the next argument.
            let takes_value = !a.contains('=')
                && (a == "-v" || a == "--v" || a == "--vmodule" || a == "--log-flush-frequency");
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        return Some(i);
    }
    None
}

fn usage(use_line: &str) -> String {
    format!(
        "Usage:\n  app {use_line} [flags]\n\nFlags:\n  -h, --help   help for {}\n",
        use_line.split(' ').next().unwrap_or(use_line)
    )
}

fn root_help() -> String {
    let mut s = String::from("Usage:\n  app [command]\n\nAvailable Commands:\n");
    for c in SUBCOMMANDS {
        s.push_str(&format!("  {c}\n"));
    }
    s.push_str("\nUse \"app [command] --help\" for more information about a command.\n");
    s
}

/// cobra's suggestions for a mistyped subcommand.
fn suggestions(typed: &str) -> String {
    let typed_lower = typed.to_lowercase();
    let found: Vec<&str> = SUBCOMMANDS
        .iter()
        .copied()
        .filter(|c| {
            strsim::levenshtein(&typed_lower, &c.to_lowercase()) <= 2
                || c.to_lowercase().starts_with(&typed_lower)
        })
        .collect();
    if found.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n\nDid you mean this?\n");
    for c in found {
        s.push_str(&format!("\t{c}\n"));
    }
    s
}

/// Run agnhost with `argv` (`argv[0]` the program as invoked); the exit status.
pub(super) async fn run(argv: Vec<String>, ctx: Arc<Ctx>) -> i32 {
    let args = argv.get(1..).unwrap_or_default();
    let Some(at) = find_subcommand(args) else {
        // The root alone: flags, `--version`, or the help.
        if args.iter().any(|a| a == "--version") {
            ctx.stdout(&format!("app version {}\n", ctx.version));
            return 0;
        }
        return match parse_flags(args, &[]) {
            Err(e) => {
                ctx.stderr(&format!("{}\nError: {e}\n", root_help()));
                1
            }
            Ok(_) => {
                ctx.stdout(&root_help());
                0
            }
        };
    };
    let sub = args[at].as_str();
    let rest: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, a)| a.clone())
        .collect();
    let (flags, use_line): (&[Flag], &str) = match sub {
        "pause" => (&[], "pause"),
        "entrypoint-tester" => (&[], "entrypoint-tester"),
        "liveness" => (&[], "liveness"),
        "netexec" => (NETEXEC_FLAGS, "netexec"),
        "serve-hostname" => (SERVE_HOSTNAME_FLAGS, "serve-hostname"),
        "test-webserver" => (TEST_WEBSERVER_FLAGS, "test-webserver"),
        "connect" => (CONNECT_FLAGS, "connect [host:port]"),
        "grpc-health-checking" => (GRPC_HEALTH_CHECKING_FLAGS, "grpc-health-checking"),
        "mounttest" => (mounttest::FLAGS, "mounttest"),
        "help" => {
            ctx.stdout(&root_help());
            return 0;
        }
        known if SUBCOMMANDS.contains(&known) => return not_modelled(&ctx, known),
        unknown => {
            ctx.stderr(&format!(
                "Error: unknown command {} for \"app\"{}\n",
                go_quote(unknown),
                suggestions(unknown)
            ));
            return 1;
        }
    };
    let parsed = match parse_flags(&rest, flags) {
        Ok(p) => p,
        Err(e) => {
            ctx.stderr(&format!("{}\nError: {e}\n", usage(use_line)));
            return 1;
        }
    };
    if parsed.bool("help") {
        ctx.stdout(&usage(use_line));
        return 0;
    }
    let n = parsed.args.len();
    let arity = match sub {
        "entrypoint-tester" => None,
        "connect" if n != 1 => Some(format!("accepts 1 arg(s), received {n}")),
        "connect" => None,
        _ if n > 0 => Some(format!("accepts at most 0 arg(s), received {n}")),
        _ => None,
    };
    if let Some(e) = arity {
        ctx.stderr(&format!("Error: {e}\n"));
        return 1;
    }
    match sub {
        "pause" => {
            ctx.stdout("Paused\n");
            ctx.term.cancelled().await;
            2
        }
        "entrypoint-tester" => {
            ctx.stdout(&format!("[{}]\n", argv.join(" ")));
            0
        }
        "liveness" => liveness(ctx).await,
        "netexec" => netexec(ctx, &parsed).await,
        "serve-hostname" => serve_hostname(ctx, &parsed).await,
        "test-webserver" => test_webserver(ctx, &parsed).await,
        "grpc-health-checking" => {
            let settings = super::grpc_health::Settings {
                port: parsed.int("port"),
                http_port: parsed.int("http-port"),
                delay_unhealthy_sec: parsed.int("delay-unhealthy-sec"),
                service: parsed.str("service"),
            };
            super::grpc_health::run(ctx, settings).await
        }
        "mounttest" => mounttest::run(&ctx, &parsed).await,
        _ => connect(&ctx, &parsed).await,
    }
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

// ---------------------------------------------------------------------------------------------
// liveness

async fn liveness(ctx: Arc<Ctx>) -> i32 {
    let listener = match gonet::listen_tcp(ctx.ip, 8080).await {
        Ok(l) => l,
        Err(e) => {
            ctx.log(&e);
            return 1;
        }
    };
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();
    let c = ctx.clone();
    let h = handler(move |req| {
        let c = c.clone();
        async move { Reply::Send(liveness_answer(&c, &req)) }
    });
    tokio::spawn(gonet::serve(
        listener,
        h,
        CancellationToken::new(),
        kill.clone(),
    ));
    // No signal handler: SIGTERM kills the Go program.
    ctx.term.cancelled().await;
    143
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, the shortest digits, in
/// exponent form below 1e-4 and from 1e6 on (`1.2345675e+06`).
fn go_float(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:e}");
    let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn liveness_answer(ctx: &Ctx, req: &Request) -> Response {
    if let Some(r) = gonet::unclean_redirect(req) {
        return r;
    }
    let elapsed = ctx.elapsed().num_nanoseconds().unwrap_or(i64::MAX);
    match req.path.as_str() {
        "/started" => Response::new(200, gonet::go_duration_string(elapsed)),
        "/healthz" => {
            let secs = (elapsed / 1_000_000_000) as f64 + (elapsed % 1_000_000_000) as f64 / 1e9;
            if secs > 10.0 {
                Response::new(500, format!("error: {}", go_float(secs)))
            } else {
                Response::new(200, "ok")
            }
        }
        "/redirect" => {
            let loc = req.query_value("loc");
            match gonet::percent_decode(&loc, true) {
                Some(l) => Response::redirect(req, &l, 302),
                None => Response::error(&format!("invalid redirect: {}", go_quote(&loc)), 400),
            }
        }
        _ => Response::not_found(),
    }
}

// ---------------------------------------------------------------------------------------------
// netexec

/// How netexec's process ends.
enum ExitRequest {
    /// `os.Exit(code)` now.
    Now(i64),
    /// Graceful shutdown within a timeout (ns), then exit.
    Graceful { code: i64, timeout: i64 },
}

struct Netexec {
    ctx: Arc<Ctx>,
    /// The UDP server is up (`serverReady`).
    ready: AtomicBool,
    /// SIGTERM was received (`/readyz` answers 503).
    sigterm: CancellationToken,
    exits: mpsc::UnboundedSender<ExitRequest>,
    http_override: String,
}

/// netexec's `parseAddresses`: `[""]` for none; each must be an IP; sorted, without
/// duplicates.
fn parse_addresses(addresses: &str) -> Result<Vec<String>, String> {
    if addresses.is_empty() {
        return Ok(vec![String::new()]);
    }
    let mut out = std::collections::BTreeSet::new();
    for a in addresses.split(',') {
        if a.parse::<IpAddr>().is_err() {
            return Err(format!("parseAddress: invalid address {a}"));
        }
        out.insert(a.to_string());
    }
    Ok(out.into_iter().collect())
}

async fn netexec(ctx: Arc<Ctx>, flags: &Flags) -> i32 {
    if !flags.str("tls-cert-file").is_empty() {
        return not_modelled(&ctx, "netexec --tls-cert-file (HTTPS)");
    }
    if flags.int("sctp-port") != -1 {
        return not_modelled(&ctx, "netexec --sctp-port (SCTP)");
    }
    let http_port = flags.int("http-port");
    let udp_port = flags.int("udp-port");
    let delay = flags.int("delay-shutdown");
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();
    let (exits, mut exit_requests) = mpsc::unbounded_channel();
    let udp_addresses = if udp_port == -1 {
        Vec::new()
    } else {
        match parse_addresses(&flags.str("udp-listen-addresses")) {
            Ok(a) => a,
            Err(e) => {
                ctx.log(&e);
                return 1;
            }
        }
    };
    let state = Arc::new(Netexec {
        ctx: ctx.clone(),
        ready: AtomicBool::new(false),
        sigterm: CancellationToken::new(),
        exits: exits.clone(),
        http_override: flags.str("http-override"),
    });
    ctx.log(&format!("Started HTTP server on port {http_port}"));
    let listener = match gonet::listen_tcp(ctx.ip, http_port).await {
        Ok(l) => l,
        Err(e) => {
            ctx.log(&e);
            return 1;
        }
    };
    for address in udp_addresses {
        tokio::spawn(udp_server(state.clone(), address, udp_port, kill.clone()));
    }
    let shutdown = CancellationToken::new();
    let st = state.clone();
    let h = handler(move |req| netexec_answer(st.clone(), req));
    let mut server = tokio::spawn(gonet::serve(listener, h, shutdown.clone(), kill.clone()));
    loop {
        tokio::select! {
            () = ctx.term.cancelled(), if !state.sigterm.is_cancelled() => {
                state.sigterm.cancel();
                let (c, tx, k) = (ctx.clone(), exits.clone(), kill.clone());
                tokio::spawn(async move {
                    if delay > 0 {
                        c.log(&format!("Sleeping {delay} seconds before terminating..."));
                        let seconds = Duration::from_secs(delay.unsigned_abs());
                        tokio::select! {
                            () = c.clock.sleep(seconds) => {}
                            () = k.cancelled() => return,
                        }
                    }
                    let _ = tx.send(ExitRequest::Now(0));
                });
            }
            Some(request) = exit_requests.recv() => match request {
                ExitRequest::Now(code) => return exit_status(code),
                ExitRequest::Graceful { code, timeout } => {
                    shutdown.cancel();
                    let drained = if timeout > 0 {
                        let t = Duration::from_nanos(timeout.unsigned_abs());
                        ctx.clock.timeout(t, &mut server).await.is_ok()
                    } else {
                        false
                    };
                    ctx.log(&format!(
                        "Graceful shutdown completed with: {}",
                        if drained { "<nil>" } else { "context deadline exceeded" }
                    ));
                    return exit_status(code);
                }
            },
        }
    }
}

async fn udp_server(st: Arc<Netexec>, address: String, port: i64, kill: CancellationToken) {
    let ctx = &st.ctx;
    let bind_ip = match address.parse::<IpAddr>() {
        Err(_) => Some(ctx.ip),
        Ok(ip) if ip.is_unspecified() || ip == ctx.ip => Some(ctx.ip),
        Ok(_) => None,
    };
    let shown = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.clone()
    };
    let socket = match bind_ip {
        Some(ip) => gonet::listen_udp(ip, port, &shown).await,
        None => Err(format!(
            "listen udp {shown}:{port}: bind: cannot assign requested address"
        )),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => {
            ctx.log(&format!(
                "Error occurred: failed to create listener for UDP address {shown}:{port}:{e}"
            ));
            let _ = st.exits.send(ExitRequest::Now(1));
            return;
        }
    };
    ctx.log(&format!("Started UDP server on port {address} {port}"));
    st.ready.store(true, Ordering::SeqCst);
    let mut buf = vec![0u8; 2048];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = kill.cancelled() => return,
        };
        let (n, from) = match received {
            Ok(r) => r,
            Err(e) => {
                // An ICMP error for an earlier answer: Go's ReadFromUDP reports it too.
                ctx.log(&format!(
                    "Error occurred: failed accepting UDP connections:read udp {}: {}",
                    socket
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    gonet::errno_text(&e)
                ));
                st.ready.store(false, Ordering::SeqCst);
                let _ = st.exits.send(ExitRequest::Now(1));
                return;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]).trim().to_lowercase();
        let from_text = gonet::go_addr(&from);
        let answer = if text == "hostname" {
            ctx.log("Sending udp hostName response");
            Some(ctx.hostname_logged())
        } else if text.starts_with("echo ") {
            let resp = text
                .split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            ctx.log(&format!("Echoing {resp} to UDP client {from_text}\n"));
            Some(resp)
        } else if text == "clientip" {
            ctx.log(&format!(
                "Sending clientip back to UDP client {from_text}\n"
            ));
            Some(from_text.clone())
        } else {
            if !text.is_empty() {
                ctx.log(&format!(
                    "Unknown UDP command received from {from_text}: {text}\n"
                ));
            }
            None
        };
        if let Some(answer) = answer {
            let _ = socket.send_to(answer.as_bytes(), from).await;
        }
    }
}

/// `--http-override`: every request is served as a GET of this path and query.
fn overridden(req: Request, target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: "GET".into(),
        target: target.to_string(),
        path: gonet::percent_decode(path, false).unwrap_or_else(|| path.to_string()),
        raw_query: query.to_string(),
        body: bytes::Bytes::new(),
        ..req
    }
}

async fn netexec_answer(st: Arc<Netexec>, req: Request) -> Reply {
    if let Some(r) = gonet::unclean_redirect(&req) {
        return r.into();
    }
    let req = if st.http_override.is_empty() {
        req
    } else {
        overridden(req, &st.http_override)
    };
    let ctx = &st.ctx;
    match req.path.as_str() {
        "/clientip" => {
            ctx.log("GET /clientip");
            Response::new(200, gonet::go_addr(&req.remote)).into()
        }
        "/header" => header_answer(ctx, &req).into(),
        "/dial" => dial_answer(ctx, &req).await.into(),
        "/echo" => echo_answer(ctx, &req),
        "/exit" => exit_answer(&st, &req).await,
        "/healthz" => {
            ctx.log("GET /healthz");
            let status = if st.ready.load(Ordering::SeqCst) {
                200
            } else {
                412
            };
            Response::new(status, Vec::new()).into()
        }
        "/readyz" => {
            ctx.log("GET /readyz");
            if st.sigterm.is_cancelled() {
                Response::new(503, "shutting down").into()
            } else if st.ready.load(Ordering::SeqCst) {
                Response::new(200, "ok").into()
            } else {
                Response::new(412, Vec::new()).into()
            }
        }
        "/hostname" => {
            ctx.log("GET /hostname");
            Response::new(200, ctx.hostname_logged()).into()
        }
        "/hostName" => {
            ctx.log("GET /hostName");
            Response::new(200, ctx.hostname_logged()).into()
        }
        "/redirect" => {
            let location = req.form_value("location");
            let code = req.form_value("code");
            ctx.log(&format!(
                "{} /redirect?msg={location}&code={code}",
                req.method
            ));
            let status = if code.is_empty() {
                302
            } else {
                match code.parse::<i64>() {
                    Ok(c) => c,
                    Err(_) => {
                        return Response::new(
                            200,
                            format!(
                                "argument 'code' must be an integer or empty, got {}\n",
                                go_quote(&code)
                            ),
                        )
                        .into()
                    }
                }
            };
            match write_header_code(ctx, &req, status) {
                Some(s) => Response::redirect(&req, &location, s).into(),
                None => Reply::Abort,
            }
        }
        "/shell" => shell_answer(ctx, &req).await.into(),
        "/upload" => upload_answer(ctx, &req).into(),
        "/shutdown" => {
            ctx.log("GET /shutdown");
            let _ = st.exits.send(ExitRequest::Now(0));
            Reply::Abort
        }
        _ => {
            ctx.log("GET /");
            Response::new(
                200,
                format!(
                    "NOW: {}",
                    gonet::go_time_string(ctx.clock.now(), ctx.elapsed())
                ),
            )
            .into()
        }
    }
}

/// `w.WriteHeader(code)`: Go panics on a code outside 100..=999 (the server logs the panic and
/// drops the connection); a 1xx is informational, and the body then goes out with 200.
fn write_header_code(ctx: &Ctx, req: &Request, code: i64) -> Option<u16> {
    if !(100..=999).contains(&code) {
        ctx.log(&format!(
            "http: panic serving {}: invalid WriteHeader code {code}",
            gonet::go_addr(&req.remote)
        ));
        return None;
    }
    let code = u16::try_from(code).ok()?;
    Some(if code < 200 { 200 } else { code })
}

fn echo_answer(ctx: &Ctx, req: &Request) -> Reply {
    let msg = req.form_value("msg");
    let code = req.form_value("code");
    ctx.log(&format!("GET /echo?msg={msg}&code={code}"));
    let mut status = 200;
    if !code.is_empty() {
        match code.parse::<i64>() {
            Ok(c) => match write_header_code(ctx, req, c) {
                Some(s) => status = s,
                None => return Reply::Abort,
            },
            Err(_) => {
                return Response::new(
                    200,
                    format!(
                        "argument 'code' must be an integer or empty, got {}\n",
                        go_quote(&code)
                    ),
                )
                .into()
            }
        }
    }
    Response::new(status, msg).into()
}

fn header_answer(ctx: &Ctx, req: &Request) -> Response {
    let key = req.form_value("key");
    if !key.is_empty() {
        ctx.log(&format!("GET /header?key={key}"));
        return Response::new(200, req.header(&key).unwrap_or_default().to_string());
    }
    ctx.log("GET /header");
    let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (n, v) in &req.headers {
        if n.eq_ignore_ascii_case("host") {
            continue;
        }
        headers
            .entry(crate::k8s::go::canonical_header_key(n))
            .or_default()
            .push(v.as_bytes().to_vec());
    }
    let entries: Vec<(&str, JsonValue)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), JsonValue::List(v.clone())))
        .collect();
    Response::new(200, gonet::json_object(&entries))
}

async fn exit_answer(st: &Netexec, req: &Request) -> Reply {
    let ctx = &st.ctx;
    let wait_s = req.form_value("wait");
    let timeout_s = req.form_value("timeout");
    let code_s = req.form_value("code");
    ctx.log(&format!(
        "GET /exit?code={code_s}&timeout={timeout_s}&wait={wait_s}"
    ));
    let bad = |what: &str, kind: &str, value: &str| -> Reply {
        Response::new(
            200,
            format!(
                "argument '{what}' must be {kind} or empty, got {}\n",
                go_quote(value)
            ),
        )
        .into()
    };
    let timeout = match gonet::parse_go_duration(&timeout_s) {
        Ok(t) => t,
        Err(_) if timeout_s.is_empty() => 0,
        Err(_) => return bad("timeout", "a valid golang duration", &timeout_s),
    };
    let wait = match gonet::parse_go_duration(&wait_s) {
        Ok(w) => w,
        Err(_) if wait_s.is_empty() => 0,
        Err(_) => return bad("wait", "a valid golang duration", &wait_s),
    };
    let code = match code_s.parse::<i64>() {
        Ok(c) => c,
        Err(_) if code_s.is_empty() => 0,
        Err(_) => return bad("code", "an integer [0-127]", &code_s),
    };
    ctx.log(&format!(
        "Will begin shutdown in {}, allowing {} for connections to close, then will exit with {code}",
        gonet::go_duration_string(wait),
        gonet::go_duration_string(timeout)
    ));
    if wait > 0 {
        ctx.clock
            .sleep(Duration::from_nanos(wait.unsigned_abs()))
            .await;
    }
    if timeout == 0 {
        let _ = st.exits.send(ExitRequest::Now(code));
        return Reply::Abort;
    }
    let _ = st.exits.send(ExitRequest::Graceful { code, timeout });
    Response::new(200, Vec::new()).into()
}

async fn shell_answer(ctx: &Ctx, req: &Request) -> Response {
    let mut cmd = req.form_value("shellCommand");
    if cmd.is_empty() {
        cmd = req.form_value("cmd");
    }
    ctx.log(&format!("GET /shell?cmd={cmd}"));
    let argv = ["/bin/sh".to_string(), "-c".to_string(), cmd];
    let (code, mut out, err) =
        super::exec_in(ctx.fs.clone(), ctx.env.clone(), ctx.net(), &argv).await;
    // CombinedOutput: both streams in one buffer.
    out.extend_from_slice(&err);
    let mut shown: HashMap<&str, String> = HashMap::new();
    let mut entries = Vec::new();
    if !out.is_empty() {
        shown.insert("output", String::from_utf8_lossy(&out).into_owned());
        entries.push(("output", JsonValue::Str(out)));
    }
    if code != 0 {
        let e = format!("exit status {code}");
        shown.insert("error", e.clone());
        entries.push(("error", JsonValue::Str(e.into_bytes())));
    }
    ctx.log(&format!("Output: {}", gonet::go_map(&shown)));
    Response::new(200, gonet::json_object(&entries))
}

/// The `file` part of a multipart form, or Go's reason why there is none.
fn multipart_file(req: &Request) -> Result<Vec<u8>, String> {
    let ct = req.header("content-type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err("request Content-Type isn't multipart/form-data".into());
    }
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| "no multipart boundary param in Content-Type".to_string())?;
    let delimiter = format!("--{boundary}");
    let body = &req.body[..];
    let mut parts = memchr::memmem::find_iter(body, delimiter.as_bytes())
        .map(|i| i + delimiter.len())
        .collect::<Vec<_>>();
    parts.push(body.len());
    for pair in parts.windows(2) {
        let (start, next) = (pair[0], pair[1]);
        let end = next
            .saturating_sub(delimiter.len())
            .max(start)
            .min(body.len());
        let part = &body[start..end];
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = memchr::memmem::find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        let content = &part[split + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let disposition = head
            .lines()
            .find(|l| l.starts_with("content-disposition:"))
            .unwrap_or_default();
        if disposition.contains("name=\"file\"") && disposition.contains("filename=") {
            return Ok(content.to_vec());
        }
    }
    Err("http: no such file".into())
}

fn upload_answer(ctx: &Ctx, req: &Request) -> Response {
    ctx.log("GET /upload");
    let failed = |what: &str, why: &str, log: &str| {
        ctx.log(&format!("{log}: {why}"));
        Response::new(
            200,
            gonet::json_object(&[("error", JsonValue::Str(what.as_bytes().to_vec()))]),
        )
    };
    let data = match multipart_file(req) {
        Ok(d) => d,
        Err(why) => return failed("Unable to upload file.", &why, "Unable to upload file"),
    };
    let path = format!("/uploads/upload{}", rand::random::<u32>());
    if let Err(e) = ctx.fs.write(&path, &data, false) {
        return failed(
            "Unable to write file.",
            &format!("write {path}: {}", e.to_lowercase()),
            "Unable to write file",
        );
    }
    ctx.log(&format!("Wrote upload to {path}"));
    Response::new(
        201,
        gonet::json_object(&[("output", JsonValue::Str(path.into_bytes()))]),
    )
}

async fn dial_answer(ctx: &Ctx, req: &Request) -> Response {
    let host = req.query_value("host");
    let port = req.query_value("port");
    let request = req.query_value("request");
    let protocol = req.query_value("protocol");
    let tries_s = req.query_value("tries");
    ctx.log(&format!(
        "GET /dial?host={host}&protocol={protocol}&port={port}&request={request}&tries={tries_s}"
    ));
    let tries = if tries_s.is_empty() {
        1
    } else {
        match tries_s.parse::<i64>() {
            Ok(t) => t,
            Err(_) => {
                return Response::error(
                    &format!(
                        "tries parameter is invalid. strconv.Atoi: parsing {}: invalid syntax",
                        go_quote(&tries_s)
                    ),
                    400,
                )
            }
        }
    };
    if request.is_empty() {
        return Response::error("request parameter not specified. <nil>", 400);
    }
    let network = match protocol.to_lowercase().as_str() {
        "" | "http" => "tcp",
        "udp" => "udp",
        "sctp" => "sctp",
        _ => return Response::error(&format!("unsupported protocol. {protocol}"), 400),
    };
    let addr = match gonet::resolve_host(&host, ctx.ip).and_then(|ip| {
        gonet::parse_port(if network == "udp" { "udp" } else { "tcp" }, &port)
            .map(|p| SocketAddr::new(ip, p))
    }) {
        Ok(a) => a,
        Err(e) => return Response::error(&format!("host and/or port param are invalid. {e}"), 400),
    };
    let mut responses: Vec<Vec<u8>> = Vec::new();
    let mut errors: Vec<Vec<u8>> = Vec::new();
    let mut last = Vec::new();
    for _ in 0..tries.max(0) {
        let result = match network {
            "tcp" => {
                // Go builds "http://host:port/" + request.
                let target = format!("/{request}");
                gonet::http_get(
                    &ctx.net(),
                    addr,
                    &target.replace(' ', "%20"),
                    Duration::from_secs(5),
                )
                .await
            }
            "udp" => dial_udp(ctx, addr, &request).await,
            // No SCTP here: dials fail as on a node without the SCTP module.
            _ => Err("sctp dial failed. err:socket: protocol not supported".to_string()),
        };
        match result {
            Ok(body) => {
                last.clone_from(&body);
                responses.push(body);
            }
            Err(e) => {
                last.clear();
                errors.push(e.into_bytes());
            }
        }
    }
    let mut output = Vec::new();
    if !last.is_empty() {
        output.push(("responses", JsonValue::List(responses)));
    }
    if !errors.is_empty() {
        output.push(("errors", JsonValue::List(errors)));
    }
    Response::new(200, gonet::json_object(&output))
}

async fn dial_udp(ctx: &Ctx, to: SocketAddr, request: &str) -> Result<Vec<u8>, String> {
    let socket = gonet::udp_connect(&ctx.net(), to).await.map_err(|e| {
        format!(
            "udp dial failed. err:dial udp {}: {}",
            gonet::go_addr(&to),
            gonet::errno_text(&e)
        )
    })?;
    if let Err(e) = socket.send(request.as_bytes()).await {
        return Err(format!(
            "udp connection write failed. err:write udp {}->{}: write: {}",
            socket
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            gonet::go_addr(&to),
            gonet::errno_text(&e)
        ));
    }
    let mut buf = vec![0u8; 2048];
    match ctx
        .clock
        .timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
    {
        Ok(Ok(n)) if n > 0 => Ok(buf[..n].to_vec()),
        Ok(Ok(_)) => Err("reading from udp connection failed. err:'<nil>'".into()),
        Ok(Err(e)) => Err(format!(
            "reading from udp connection failed. err:'{}'",
            gonet::udp_read_error(&socket, &to, Some(&e))
        )),
        Err(_) => Err(format!(
            "reading from udp connection failed. err:'{}'",
            gonet::udp_read_error(&socket, &to, None)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// serve-hostname

async fn serve_hostname(ctx: Arc<Ctx>, flags: &Flags) -> i32 {
    let (tcp, udp, http, close) = (
        flags.bool("tcp"),
        flags.bool("udp"),
        flags.bool("http"),
        flags.bool("close"),
    );
    let port = flags.int("port");
    if http && (tcp || udp) {
        ctx.log("Can't serve TCP/UDP mode and HTTP mode at the same time");
        return 1;
    }
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();
    let name = ctx.hostname.clone();
    if tcp {
        let listener = match gonet::listen_tcp(ctx.ip, port).await {
            Ok(l) => l,
            Err(e) => {
                ctx.log(&format!("Error from net.Listen(): {e}"));
                return 1;
            }
        };
        let (c, k) = (ctx.clone(), kill.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = k.cancelled() => return,
                };
                let Ok((mut stream, from)) = accepted else {
                    continue;
                };
                c.log(&format!("TCP request from {}", gonet::go_addr(&from)));
                let name = c.hostname.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = stream.write_all(name.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
    }
    if udp {
        let socket = match gonet::listen_udp(ctx.ip, port, "").await {
            Ok(s) => s,
            Err(e) => {
                ctx.log(&format!("Error from ListenUDP(): {e}"));
                return 1;
            }
        };
        let (c, k) = (ctx.clone(), kill.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                let received = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    () = k.cancelled() => return,
                };
                let Ok((_, from)) = received else {
                    continue;
                };
                c.log(&format!("UDP request from {}", gonet::go_addr(&from)));
                let _ = socket.send_to(c.hostname.as_bytes(), from).await;
            }
        });
    }
    let mut http_failed = None;
    if http {
        match gonet::listen_tcp(ctx.ip, port).await {
            Ok(listener) => {
                let c = ctx.clone();
                let h = handler(move |req| {
                    let c = c.clone();
                    async move {
                        if let Some(r) = gonet::unclean_redirect(&req) {
                            return r.into();
                        }
                        c.log(&format!(
                            "HTTP request from {}",
                            gonet::go_addr(&req.remote)
                        ));
                        let mut r = Response::new(200, c.hostname.clone());
                        if close {
                            r = r.with_header("Connection", "close");
                        }
                        r.into()
                    }
                });
                tokio::spawn(gonet::serve(
                    listener,
                    h,
                    CancellationToken::new(),
                    kill.clone(),
                ));
            }
            Err(e) => http_failed = Some(e),
        }
    }
    ctx.log(&format!("Serving on port {port}.\n"));
    if let Some(e) = http_failed {
        ctx.log(&e);
        return 1;
    }
    drop(name);
    ctx.term.cancelled().await;
    ctx.log("Shutting down after receiving signal: terminated.\n");
    ctx.log("Awaiting pod deletion.\n");
    ctx.clock.sleep(Duration::from_secs(60)).await;
    0
}

// ---------------------------------------------------------------------------------------------
// test-webserver

/// The top-level directories of the agnhost image (Alpine) besides what the container's
/// filesystem holds.
const IMAGE_DIRS: &[&str] = &[
    "bin", "dev", "etc", "home", "lib", "media", "mnt", "opt", "proc", "root", "run", "sbin",
    "srv", "sys", "tmp", "uploads", "usr", "var",
];

/// The entries of a directory of the container's filesystem: (name, is a directory).
fn list_dir(fs: &Fs, dir: &str) -> BTreeMap<String, bool> {
    let full = super::normalize_path(dir);
    let mut entries = fs.entries(&full).unwrap_or_default();
    if full == "/" {
        for d in IMAGE_DIRS {
            entries.insert((*d).to_string(), true);
        }
    }
    entries
}

fn content_type_by_extension(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "text/xml; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        _ => return None,
    })
}

/// `http.FileServer(http.Dir("/"))` behind `http.StripPrefix("/")`, over the container's files.
fn file_server(ctx: &Ctx, req: &Request) -> Response {
    let local_redirect = |to: &str| {
        let to = if req.raw_query.is_empty() {
            to.to_string()
        } else {
            format!("{to}?{}", req.raw_query)
        };
        Response::new(301, Vec::new()).with_header("Location", to)
    };
    let url = if req.path.starts_with('/') {
        req.path.clone()
    } else {
        format!("/{}", req.path)
    };
    let name = gonet::clean_path(&url);
    let base = |p: &str| -> String {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".into()
        } else {
            t.rsplit('/').next().unwrap_or(t).to_string()
        }
    };
    if url.ends_with("/index.html") {
        return local_redirect("./");
    }
    let serve_file = |path: &str, data: Vec<u8>| {
        let ct = content_type_by_extension(path).unwrap_or_else(|| gonet::sniff(&data));
        Response::new(200, data)
            .with_header("Accept-Ranges", "bytes")
            .with_header("Content-Type", ct)
    };
    if let Some(data) = ctx.fs.read(&name) {
        if url.ends_with('/') {
            return local_redirect(&format!("../{}", base(&url)));
        }
        return serve_file(&name, data);
    }
    if !ctx.fs.is_dir(&name) {
        return Response::not_found();
    }
    if !url.ends_with('/') {
        return local_redirect(&format!("{}/", base(&url)));
    }
    let index = format!("{}/index.html", name.trim_end_matches('/'));
    if let Some(data) = ctx.fs.read(&index) {
        return serve_file(&index, data);
    }
    let mut body = String::from(
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
    );
    for (entry, is_dir) in list_dir(&ctx.fs, &name) {
        let shown = if is_dir { format!("{entry}/") } else { entry };
        body.push_str(&format!(
            "<a href=\"{}\">{}</a>\n",
            gonet::escape_path(&shown),
            gonet::html_escape(&shown)
        ));
    }
    body.push_str("</pre>\n");
    Response::new(200, body).with_header("Content-Type", "text/html; charset=utf-8")
}

async fn test_webserver(ctx: Arc<Ctx>, flags: &Flags) -> i32 {
    let listener = match gonet::listen_tcp(ctx.ip, flags.int("port")).await {
        Ok(l) => l,
        Err(e) => {
            ctx.log(&e);
            return 1;
        }
    };
    let kill = CancellationToken::new();
    let _kill_on_exit = kill.clone().drop_guard();
    let c = ctx.clone();
    let h = handler(move |req| {
        let c = c.clone();
        async move {
            if let Some(r) = gonet::unclean_redirect(&req) {
                return r.into();
            }
            file_server(&c, &req)
                .with_header("Cache-Control", "private")
                .with_header("Access-Control-Allow-Origin", "*")
                .with_header("Access-Control-Allow-Credentials", "true")
                .with_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
                .with_header(
                    "Access-Control-Allow-Headers",
                    "DNT,X-Mx-ReqToken,Keep-Alive,User-Agent,X-Requested-With,Cache-Control,Content-Type",
                )
                .into()
        }
    });
    tokio::spawn(gonet::serve(
        listener,
        h,
        CancellationToken::new(),
        kill.clone(),
    ));
    ctx.term.cancelled().await;
    143
}

// ---------------------------------------------------------------------------------------------
// connect

async fn connect(ctx: &Ctx, flags: &Flags) -> i32 {
    let dest = flags.args.first().cloned().unwrap_or_default();
    let timeout = flags.duration("timeout");
    let timeout = (timeout > 0).then(|| Duration::from_nanos(timeout.unsigned_abs()));
    let fail = |text: String| {
        ctx.stderr(&text);
        1
    };
    match flags.str("protocol").as_str() {
        "" | "tcp" => {
            let (host, port) = match gonet::split_host_port(&dest) {
                Ok(hp) => hp,
                Err(e) => return fail(format!("UNKNOWN: {e}\n")),
            };
            let to = match gonet::resolve_host(&host, ctx.ip)
                .and_then(|ip| gonet::parse_port("tcp", &port).map(|p| SocketAddr::new(ip, p)))
            {
                Ok(a) => a,
                Err(e) => return fail(format!("DNS: {e}\n")),
            };
            match gonet::dial_tcp(&ctx.net(), to, timeout).await {
                Ok(_) => 0,
                // Go's OpError.Timeout() holds for a deadline and for ETIMEDOUT alike.
                Err(gonet::DialError::Timeout | gonet::DialError::TimedOut) => {
                    fail("TIMEOUT\n".into())
                }
                Err(gonet::DialError::Refused) => fail("REFUSED\n".into()),
                Err(e) => fail(format!("OTHER: {}\n", e.text(&to))),
            }
        }
        "udp" => {
            let to = match gonet::split_host_port(&dest).and_then(|(host, port)| {
                let ip = gonet::resolve_host(&host, ctx.ip)?;
                gonet::parse_port("udp", &port).map(|p| SocketAddr::new(ip, p))
            }) {
                Ok(a) => a,
                Err(e) => return fail(format!("DNS: {e}\n")),
            };
            let socket = match gonet::udp_connect(&ctx.net(), to).await {
                Ok(s) => s,
                Err(e) => {
                    return fail(format!(
                        "OTHER: dial udp {}: {}\n",
                        gonet::go_addr(&to),
                        gonet::errno_text(&e)
                    ))
                }
            };
            let data = format!("{}\n", flags.str("udp-data"));
            if let Err(e) = socket.send(data.as_bytes()).await {
                let text = gonet::errno_text(&e);
                let kind = if text.contains("connection refused") {
                    "REFUSED"
                } else {
                    "UNKNOWN"
                };
                return fail(format!(
                    "{kind}: write udp {}->{}: write: {text}\n",
                    socket
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    gonet::go_addr(&to)
                ));
            }
            let mut buf = vec![0u8; 1024];
            let read = async { socket.recv(&mut buf).await };
            let result = match timeout {
                Some(t) => ctx.clock.timeout(t, read).await.ok(),
                None => Some(read.await),
            };
            match result {
                None => fail(format!(
                    "TIMEOUT: {}\n",
                    gonet::udp_read_error(&socket, &to, None)
                )),
                Some(Err(e)) => {
                    let text = gonet::udp_read_error(&socket, &to, Some(&e));
                    let kind = if text.contains("connection refused") {
                        "REFUSED"
                    } else {
                        "UNKNOWN"
                    };
                    fail(format!("{kind}: {text}\n"))
                }
                Some(Ok(0)) => fail("OTHER: No data received from the server. Cannot guarantee the server received the request.\n".into()),
                Some(Ok(_)) => 0,
            }
        }
        "sctp" => not_modelled(ctx, "connect --protocol=sctp"),
        other => {
            ctx.stderr(&format!("Unsupported protocol\n{other}"));
            1
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One-shot runs for `kubectl exec`

/// What an agnhost run by `kubectl exec` sees of its container.
pub(super) struct ToolCtx {
    /// The container's image.
    pub(super) image: Image,
    /// The pod's IP.
    pub(super) ip: IpAddr,
    /// The node's Service rules.
    pub(super) netfilter: Arc<crate::netfilter::Netfilter>,
    /// The pod's name (its hostname).
    pub(super) pod_name: String,
    /// The cluster clock.
    pub(super) clock: Clock,
    /// The container's filesystem.
    pub(super) fs: Arc<Fs>,
    /// The container's environment.
    pub(super) env: HashMap<String, String>,
    /// Cancelled when the session ends: the process is killed (137).
    pub(super) cancel: CancellationToken,
}

/// Process ids of exec'd agnhost processes (the container's main process is 1).
static NEXT_PID: AtomicU32 = AtomicU32::new(7);

/// Run `argv` as `kubectl exec` would when it names the agnhost binary (`/agnhost connect
/// host:port`, `/agnhost-2 entrypoint-tester x`) in an agnhost container: `(exit status,
/// stdout, stderr)` once the process ends (a server subcommand runs until `ctx.cancel`).
/// `None` when `argv` is not agnhost in an agnhost image.
#[cfg_attr(not(test), allow(dead_code))] // wired into `kubectl exec` by the runtime's exec path
pub(super) async fn agnhost_tool(argv: &[String], ctx: ToolCtx) -> Option<(i32, Vec<u8>, Vec<u8>)> {
    let program = argv.first()?;
    let agnhost_image = ctx.image.repository.rsplit('/').next() == Some("agnhost");
    if !agnhost_image || !catalog::is_agnhost_program(program) {
        return None;
    }
    let captured = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let process = Arc::new(Ctx {
        ip: ctx.ip,
        netfilter: ctx.netfilter,
        hostname: hostname(&ctx.pod_name),
        started_at: ctx.clock.now(),
        clock: ctx.clock,
        out: Out::Capture(captured.clone()),
        term: CancellationToken::new(),
        fs: ctx.fs,
        env: ctx.env,
        pid: NEXT_PID.fetch_add(1, Ordering::Relaxed),
        version: ctx.image.tag.clone(),
    });
    let code = tokio::select! {
        code = run(argv.to_vec(), process) => code,
        () = ctx.cancel.cancelled() => 137,
    };
    let (out, err) = std::mem::take(&mut *captured.lock());
    Some((code, out, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn ctx(ip: &str, clock: Clock) -> (Arc<Ctx>, Captured) {
        let captured = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let ctx = Arc::new(Ctx {
            netfilter: crate::netfilter::Netfilter::new(),
            ip: ip.parse().unwrap(),
            hostname: "pod-a".into(),
            started_at: clock.now(),
            clock,
            out: Out::Capture(captured.clone()),
            term: CancellationToken::new(),
            fs: Arc::new(Fs::default()),
            env: HashMap::new(),
            pid: 1,
            version: "2.53".into(),
        });
        (ctx, captured)
    }

    fn stderr(c: &Captured) -> String {
        String::from_utf8_lossy(&c.lock().1).into_owned()
    }

    /// GET `target` from `ip:port` with a raw HTTP/1.0 request, retrying until the server
    /// listens (deadline 10 s): (status, body).
    async fn get(ip: &str, port: u16, target: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect((ip, port)).await {
                s.write_all(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut text = String::new();
                s.read_to_string(&mut text).await.unwrap();
                let status = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                return (status, body.to_string());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing listens on {ip}:{port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn flags_parse_as_pflag_parses_them() {
        let f = parse_flags(
            &v(&["--http-port", "80", "--udp-port=-1", "x", "--v=2"]),
            NETEXEC_FLAGS,
        )
        .unwrap();
        assert_eq!((f.int("http-port"), f.int("udp-port")), (80, -1));
        assert_eq!(f.args, v(&["x"]));
        assert_eq!(
            parse_flags(&v(&["--http-port=abc"]), NETEXEC_FLAGS).err().unwrap(),
            "invalid argument \"abc\" for \"--http-port\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse_flags(&v(&["--bogus"]), NETEXEC_FLAGS).err().unwrap(),
            "unknown flag: --bogus"
        );
        assert_eq!(
            parse_flags(&v(&["--http-port"]), NETEXEC_FLAGS)
                .err()
                .unwrap(),
            "flag needs an argument: --http-port"
        );
        let f = parse_flags(
            &v(&["--http=false", "--tcp", "--udp"]),
            SERVE_HOSTNAME_FLAGS,
        )
        .unwrap();
        assert!(!f.bool("http") && f.bool("tcp") && f.bool("udp"));
        assert_eq!(parse_int0("0x10"), Ok(16));
        assert_eq!(parse_int0("010"), Ok(8));
    }

    #[test]
    fn go_floats_print_as_fmt_v() {
        assert_eq!(go_float(10.5), "10.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.5), "1.2345675e+06");
        assert_eq!(go_float(1e-5), "1e-05");
    }

    #[test]
    fn hostnames_are_cut_as_the_kubelet_cuts_them() {
        assert_eq!(hostname("web-0"), "web-0");
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(hostname(&long), "a".repeat(62));
    }

    #[tokio::test]
    async fn unknown_subcommands_fail_as_cli_run_reports_them() {
        let (c, out) = ctx("127.0.0.1", Clock::real());
        assert_eq!(run(v(&["/agnhost", "netexe"]), c).await, 1);
        assert_eq!(
            stderr(&out),
            "Error: unknown command \"netexe\" for \"app\"\n\nDid you mean this?\n\tnetexec\n\n"
        );
        let (c, out) = ctx("127.0.0.1", Clock::real());
        assert_eq!(run(v(&["/agnhost", "pause", "extra"]), c).await, 1);
        assert_eq!(
            stderr(&out),
            "Error: accepts at most 0 arg(s), received 1\n"
        );
    }

    #[tokio::test]
    async fn entrypoint_tester_prints_its_argv() {
        let (c, out) = ctx("127.0.0.1", Clock::real());
        let code = run(
            v(&["/agnhost-2", "entrypoint-tester", "override", "arguments"]),
            c,
        )
        .await;
        assert_eq!(code, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.lock().0),
            "[/agnhost-2 entrypoint-tester override arguments]\n"
        );
    }

    #[tokio::test]
    async fn pause_prints_paused_and_exits_2_on_sigterm() {
        let (c, out) = ctx("127.0.0.1", Clock::real());
        let term = c.term.clone();
        let task = tokio::spawn(run(v(&["/agnhost", "pause"]), c));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while out.lock().0.is_empty() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        term.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            2
        );
        assert_eq!(String::from_utf8_lossy(&out.lock().0), "Paused\n");
    }

    #[tokio::test]
    async fn liveness_turns_unhealthy_after_ten_seconds_and_redirects() {
        // 100x: ten cluster seconds are a tenth of a wall second.
        let (c, out) = ctx("127.77.1.1", Clock::new(100.0));
        let term = c.term.clone();
        let task = tokio::spawn(run(v(&["/agnhost", "liveness"]), c));
        let (status, body) = get("127.77.1.1", 8080, "/redirect?loc=%2Fhealthz").await;
        assert_eq!(
            (status, body.as_str()),
            (302, "<a href=\"/healthz\">Found</a>.\n\n")
        );
        let (status, _) = get("127.77.1.1", 8080, "/nope").await;
        assert_eq!(status, 404);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body) = get("127.77.1.1", 8080, "/healthz").await;
        assert_eq!(status, 500);
        let secs: f64 = body.strip_prefix("error: ").unwrap().parse().unwrap();
        assert!(secs > 10.0, "{body}");
        term.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            143
        );
        assert!(
            out.lock().1.is_empty(),
            "liveness logs nothing: {}",
            stderr(&out)
        );
    }

    #[tokio::test]
    async fn grpc_health_checking_serves_the_health_service() {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::HealthCheckRequest;
        let (c, out) = ctx("127.77.1.2", Clock::real());
        let term = c.term.clone();
        let task = tokio::spawn(run(
            v(&["/agnhost", "grpc-health-checking", "--service=shop"]),
            c,
        ));
        // The HTTP side listens first; once it answers, the gRPC side is about to.
        let (status, _) = get("127.77.1.2", 8080, "/nope").await;
        assert_eq!(status, 404);
        let mut client = loop {
            match tonic::transport::Endpoint::from_static("http://127.77.1.2:5000")
                .connect()
                .await
            {
                Ok(channel) => break HealthClient::new(channel),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let check = |service: &str| HealthCheckRequest {
            service: service.into(),
        };
        let status = client
            .check(check("shop"))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "SERVING");
        let other = client.check(check("")).await.unwrap_err();
        assert_eq!(
            (other.code(), other.message()),
            (tonic::Code::NotFound, "unknown service")
        );
        let watch = client.watch(check("shop")).await.unwrap_err();
        assert_eq!(watch.code(), tonic::Code::Unimplemented);
        let (status, body) = get("127.77.1.2", 8080, "/make-not-serving").await;
        assert_eq!(status, 200);
        assert!(body.ends_with('s'), "a Go duration: {body}");
        let status = client
            .check(check("shop"))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 2, "NOT_SERVING");
        get("127.77.1.2", 8080, "/make-serving").await;
        let status = client
            .check(check("shop"))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "SERVING again");
        term.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            143
        );
        let log = stderr(&out);
        for line in [
            "log.go:245] Http server starting to listen on :8080",
            "log.go:245] gRPC server starting to listen on :5000",
            "log.go:245] Serving the Check request for health check, started at ",
            "log.go:245] Mark as unhealthy",
            "log.go:245] Mark as healthy",
        ] {
            assert!(log.contains(line), "{line} in {log}");
        }
    }

    #[tokio::test]
    async fn netexec_serves_its_endpoints_and_logs_each_request() {
        let (c, out) = ctx("127.77.2.1", Clock::real());
        let term = c.term.clone();
        let task = tokio::spawn(run(v(&["/agnhost", "netexec", "--http-port=8080"]), c));
        let (status, body) = get("127.77.2.1", 8080, "/echo?msg=poststart").await;
        assert_eq!((status, body.as_str()), (200, "poststart"));
        assert_eq!(get("127.77.2.1", 8080, "/echo?msg=x&code=503").await.0, 503);
        assert_eq!(get("127.77.2.1", 8080, "/hostName").await.1, "pod-a");
        let (_, ip) = get("127.77.2.1", 8080, "/clientip").await;
        assert!(ip.starts_with("127.0.0.1:"), "{ip}");
        // Any other path is the root handler.
        assert!(get("127.77.2.1", 8080, "/no-such-path")
            .await
            .1
            .starts_with("NOW: "));
        // The UDP server answers, and /healthz with it.
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(b"echo Hello", "127.77.2.1:8081").await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), udp.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(get("127.77.2.1", 8080, "/healthz").await.0, 200);
        let (_, shell) = get("127.77.2.1", 8080, "/shell?cmd=echo%20hi%3B%20exit%203").await;
        assert_eq!(shell, "{\"error\":\"exit status 3\",\"output\":\"hi\\n\"}");
        let log = stderr(&out);
        for line in [
            "] Started HTTP server on port 8080\n",
            "] Started UDP server on port  8081\n",
            "] GET /echo?msg=poststart&code=\n",
            "] GET /hostName\n",
            "] hostname: pod-a\n",
            "] Echoing hello to UDP client 127.0.0.1:",
            "] GET /shell?cmd=echo hi; exit 3\n",
        ] {
            assert!(log.contains(line), "{line:?} missing from\n{log}");
        }
        assert!(
            log.starts_with('I') && log.contains("       1 log.go:245] "),
            "{log}"
        );
        term.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn netexec_without_udp_is_never_healthy_and_exit_ends_it() {
        let (c, _) = ctx("127.77.3.1", Clock::real());
        let task = tokio::spawn(run(
            v(&["/agnhost", "netexec", "--http-port=8080", "--udp-port=-1"]),
            c,
        ));
        assert_eq!(get("127.77.3.1", 8080, "/healthz").await.0, 412);
        let (status, _) = get("127.77.3.1", 8080, "/exit?code=3&timeout=1s").await;
        assert_eq!(status, 200);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn netexec_dials_another_netexec_over_http_and_udp() {
        let (a, _) = ctx("127.77.4.1", Clock::real());
        let (b, _) = ctx("127.77.4.2", Clock::real());
        let b = Arc::new(Ctx {
            netfilter: crate::netfilter::Netfilter::new(),
            hostname: "pod-b".into(),
            ip: b.ip,
            clock: b.clock.clone(),
            started_at: b.started_at,
            out: b.out.clone(),
            term: b.term.clone(),
            fs: b.fs.clone(),
            env: HashMap::new(),
            pid: 1,
            version: "2.53".into(),
        });
        let ta = tokio::spawn(run(v(&["/agnhost", "netexec"]), a));
        let tb = tokio::spawn(run(v(&["/agnhost", "netexec"]), b));
        assert_eq!(get("127.77.4.2", 8080, "/healthz").await.0, 200);
        let (status, body) = get(
            "127.77.4.1",
            8080,
            "/dial?request=hostName&protocol=http&host=127.77.4.2&port=8080&tries=2",
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, "{\"responses\":[\"pod-b\",\"pod-b\"]}")
        );
        let (_, body) = get(
            "127.77.4.1",
            8080,
            "/dial?request=hostname&protocol=udp&host=127.77.4.2&port=8081",
        )
        .await;
        assert_eq!(body, "{\"responses\":[\"pod-b\"]}");
        let (_, body) = get(
            "127.77.4.1",
            8080,
            "/dial?request=hostName&protocol=http&host=127.77.4.3&port=8080",
        )
        .await;
        assert_eq!(
            body,
            "{\"errors\":[\"Get \\\"http://127.77.4.3:8080/hostName\\\": dial tcp 127.77.4.3:8080: connect: connection refused\"]}"
        );
        let (status, body) = get("127.77.4.1", 8080, "/dial?host=x&port=1").await;
        assert_eq!(
            (status, body.as_str()),
            (400, "request parameter not specified. <nil>\n")
        );
        ta.abort();
        tb.abort();
    }

    #[tokio::test]
    async fn serve_hostname_serves_tcp_and_udp_and_outlives_sigterm() {
        let (c, out) = ctx("127.77.5.1", Clock::new(100.0));
        let term = c.term.clone();
        let task = tokio::spawn(run(
            v(&[
                "/agnhost",
                "serve-hostname",
                "--http=false",
                "--tcp",
                "--udp",
                "--port=9376",
            ]),
            c,
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            if let Ok(s) = tokio::net::TcpStream::connect("127.77.5.1:9376").await {
                break s;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut name = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut name)
            .await
            .unwrap();
        assert_eq!(name, "pod-a");
        term.cancel();
        // It sleeps 60 cluster seconds (0.6 s here) before exiting 0.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!task.is_finished());
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            0
        );
        let log = stderr(&out);
        assert!(log.contains("] Serving on port 9376.\n"), "{log}");
        assert!(log.contains("] TCP request from 127.0.0.1:"), "{log}");
        assert!(
            log.contains("] Shutting down after receiving signal: terminated.\n"),
            "{log}"
        );
        let (c, out) = ctx("127.77.5.2", Clock::real());
        assert_eq!(run(v(&["/agnhost", "serve-hostname", "--tcp"]), c).await, 1);
        assert!(
            stderr(&out).ends_with("] Can't serve TCP/UDP mode and HTTP mode at the same time\n")
        );
    }

    #[tokio::test]
    async fn test_webserver_lists_and_serves_the_filesystem() {
        let (c, _) = ctx("127.77.6.1", Clock::real());
        c.fs.write("/results/a.txt", b"OK", false).unwrap();
        let term = c.term.clone();
        let task = tokio::spawn(run(v(&["/agnhost", "test-webserver"]), c));
        let (status, body) = get("127.77.6.1", 80, "/").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("<a href=\"results/\">results/</a>\n"),
            "{body}"
        );
        assert_eq!(
            get("127.77.6.1", 80, "/results/a.txt").await,
            (200, "OK".to_string())
        );
        assert_eq!(get("127.77.6.1", 80, "/results").await.0, 301);
        assert_eq!(get("127.77.6.1", 80, "/missing").await.0, 404);
        term.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap(),
            143
        );
    }

    #[tokio::test]
    async fn connect_reports_refused_and_success_as_a_tool() {
        let listener = tokio::net::TcpListener::bind("127.77.7.2:7000")
            .await
            .unwrap();
        let tool = |argv: &[&str]| {
            let argv = v(argv);
            async move {
                agnhost_tool(
                    &argv,
                    ToolCtx {
                        image: catalog::resolve("registry.k8s.io/e2e-test-images/agnhost:2.53")
                            .unwrap(),
                        ip: "127.77.7.1".parse().unwrap(),
                        netfilter: crate::netfilter::Netfilter::new(),
                        pod_name: "exec-pod".into(),
                        clock: Clock::real(),
                        fs: Arc::new(Fs::default()),
                        env: HashMap::new(),
                        cancel: CancellationToken::new(),
                    },
                )
                .await
            }
        };
        let (code, _, err) = tool(&["/agnhost", "connect", "--timeout=3s", "127.77.7.2:7001"])
            .await
            .unwrap();
        assert_eq!((code, err.as_slice()), (1, &b"REFUSED\n"[..]));
        let (code, _, err) = tool(&["/agnhost", "connect", "127.77.7.2:7000"])
            .await
            .unwrap();
        assert_eq!((code, err.as_slice()), (0, &b""[..]));
        let (code, _, err) = tool(&["/agnhost", "connect", "nohost"]).await.unwrap();
        assert_eq!(
            (code, String::from_utf8_lossy(&err).into_owned()),
            (
                1,
                "UNKNOWN: address nohost: missing port in address\n".to_string()
            )
        );
        let (code, out, _) = tool(&["/agnhost", "entrypoint-tester", "a"]).await.unwrap();
        assert_eq!(
            (code, out.as_slice()),
            (0, &b"[/agnhost entrypoint-tester a]\n"[..])
        );
        assert!(tool(&["sh", "-c", "true"]).await.is_none());
        drop(listener);
    }
}
