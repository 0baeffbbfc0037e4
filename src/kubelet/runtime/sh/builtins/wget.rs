//! `wget`, as busybox 1.36 fetches a URL over a real TCP connection from the container
//! ([`Shell::connect_tcp`]): its options (`-c -q -S -O -o -P -Y -U -T`, `--spider`,
//! `--header`, `--post-data`, `--post-file`, `--no-check-certificate`; `-t` and `-n...`
//! ignored), its HTTP/1.1 request (`Host`, `User-Agent: Wget`, `Connection: close`,
//! credentials from the URL, `http_proxy`), redirects (at most 16), `Content-Length` and
//! chunked bodies, the progress line it writes to a standard error that is not a terminal, its
//! timeout (`-T`, 900 s by default: connecting, each line of the response head, and every
//! second without data) and its messages and exit statuses.
//!
//! Names resolve as the container resolves them without DNS (`/etc/hosts`, `localhost`).
//! An `https://` URL connects, and fails as busybox's own TLS code does against the plain-HTTP
//! servers of the simulation; an `ftp://` URL connects and reads the greeting, the simulation
//! having no FTP server. A standard error that is a terminal is not modelled (the progress
//! line is written as to a file).
//!
//! [`Shell::connect_tcp`]: super::super::Shell::connect_tcp

use std::net::SocketAddr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::interp::{Fds, Interp};
use super::super::io::MAX_BUFFER;
use super::super::NetStream;
use super::getopt::{getopt_long, Arg, LongOpt};
use super::inet::{dotted, strerror};

/// busybox's buffer (`CONFIG_FEATURE_COPYBUF_KB`): the longest line of a response head it
/// reads at once, and the largest read of a body.
const BUF: usize = 4096;
/// Redirects followed before "too many redirections".
const REDIRECTS: u32 = 16;

const KEY_HEADER: char = '\u{ff}';
const KEY_POST_DATA: char = '\u{fe}';
const KEY_SPIDER: char = '\u{fd}';
const KEY_NO_CHECK: char = '\u{fc}';
const KEY_POST_FILE: char = '\u{fb}';
const KEY_IGNORED: char = '\u{f0}';

const LONG: &[LongOpt] = &[
    ("continue", Arg::No, 'c'),
    ("quiet", Arg::No, 'q'),
    ("server-response", Arg::No, 'S'),
    ("output-document", Arg::Required, 'O'),
    ("output-file", Arg::Required, 'o'),
    ("directory-prefix", Arg::Required, 'P'),
    ("proxy", Arg::Required, 'Y'),
    ("user-agent", Arg::Required, 'U'),
    ("timeout", Arg::Required, 'T'),
    ("tries", Arg::Required, 't'),
    ("header", Arg::Required, KEY_HEADER),
    ("post-data", Arg::Required, KEY_POST_DATA),
    ("spider", Arg::No, KEY_SPIDER),
    ("no-check-certificate", Arg::No, KEY_NO_CHECK),
    ("post-file", Arg::Required, KEY_POST_FILE),
    ("passive-ftp", Arg::No, KEY_IGNORED),
    ("no-cache", Arg::No, KEY_IGNORED),
    ("no-verbose", Arg::No, KEY_IGNORED),
    ("no-clobber", Arg::No, KEY_IGNORED),
    ("no-host-directories", Arg::No, KEY_IGNORED),
    ("no-parent", Arg::No, KEY_IGNORED),
];

const USAGE: &str = "Usage: wget [-cqS] [--spider] [-O FILE] [-o LOGFILE] [--header STR]\n\
\t[--post-data STR | --post-file FILE] [-Y on/off]\n\
\t[--no-check-certificate] [-P DIR] [-U AGENT] [-T SEC] URL...\n";

/// Headers the user gave that replace wget's own.
const USER_HOST: u8 = 1;
const USER_AGENT: u8 = 2;
const USER_RANGE: u8 = 4;
const USER_CONTENT_TYPE: u8 = 8;
const USER_AUTH: u8 = 16;
const USER_PROXY_AUTH: u8 = 32;

/// A URL as busybox's `parse_url` splits it.
#[derive(Clone, Debug)]
struct Url {
    /// `http`, `https` or `ftp`.
    protocol: &'static str,
    /// The host as written, with its `:PORT` if any.
    host: String,
    /// The default port of the protocol.
    port: u16,
    /// Without the leading `/`; the query and fragment stay in it.
    path: String,
    /// `user:password`, percent-decoded.
    user: Option<String>,
}

fn parse_url(src: &str, user: Option<String>) -> Result<Url, String> {
    let (protocol, port, rest) = match src.find("://") {
        Some(i) => {
            let scheme = &src[..i];
            let rest = &src[i + 3..];
            match scheme {
                "http" => ("http", 80, rest),
                "https" => ("https", 443, rest),
                "ftp" => ("ftp", 21, rest),
                _ => return Err(format!("not an http or ftp url: {src}")),
            }
        }
        None => ("http", 80, src),
    };
    let cut = rest.find(['/', '?', '#']);
    let (mut host, path) = match cut {
        None => (rest.to_string(), String::new()),
        Some(i) if rest.as_bytes().get(i) == Some(&b'/') => {
            (rest[..i].to_string(), rest[i + 1..].to_string())
        }
        Some(i) => (rest[..i].to_string(), rest[i + 1..].to_string()),
    };
    let mut user = user;
    if let Some(at) = host.rfind('@') {
        user = Some(percent_decode(&host[..at]));
        host = host[at + 1..].to_string();
    }
    Ok(Url {
        protocol,
        host,
        port,
        path,
        user,
    })
}

/// libbb's non-strict percent decoding (`%XX` becomes the byte; anything else stays).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// busybox's `sanitize_string`: cut at the first control character (tabs become spaces).
fn sanitize(line: &[u8]) -> String {
    let mut out = Vec::new();
    for &c in line {
        if c < b' ' {
            if c != b'\t' {
                break;
            }
            out.push(b' ');
        } else {
            out.push(c);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last component of a path, as libbb's `bb_get_last_path_component_nostrip`.
fn last_component(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// The options of one `wget` run.
struct Opts {
    quiet: bool,
    server_response: bool,
    spider: bool,
    continue_: bool,
    /// `-O FILE`; `-` is standard output.
    output: Option<String>,
    /// `-o LOGFILE` (a path): messages go there.
    log: Option<String>,
    dir_prefix: Option<String>,
    proxy: String,
    user_agent: String,
    /// Seconds; 0 is none.
    timeout: u32,
    extra_headers: String,
    user_headers: u8,
    post_data: Option<Vec<u8>>,
    post_file: Option<String>,
    /// The process environment (`http_proxy`, `COLUMNS`).
    env: Vec<(String, String)>,
}

/// Where the downloaded data goes.
#[derive(Clone, PartialEq)]
enum Output {
    Stdout,
    File(String),
}

/// The state that lives across the URLs of one run (busybox's globals).
struct Run {
    opts: Opts,
    /// The output already open (`-O FILE` stays open for every URL).
    output: Option<Output>,
}

/// busybox's progress meter (`bb_progress_t`), for a standard error that is not a terminal:
/// one line per update, at most one a second, and the last.
struct Progress {
    curfile: String,
    start: i64,
    last_update: i64,
    last_change: i64,
    last_size: u64,
    columns: u64,
}

impl Progress {
    fn new(curfile: &str, now: i64, columns: u64) -> Progress {
        // unicode_conv_to_printable_fixedwidth(curfile, 20).
        let mut name: String = curfile
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(20)
            .collect();
        while name.chars().count() < 20 {
            name.push(' ');
        }
        Progress {
            curfile: name,
            start: now,
            last_update: now,
            last_change: now,
            last_size: 0,
            columns,
        }
    }

    /// `bb_progress_update`: the line to write, if any.
    fn update(&mut self, now: i64, beg: u64, transferred: u64, total: u64) -> Option<String> {
        let since_last_update = now.saturating_sub(self.last_update);
        self.last_update = now;
        let mut transferred = transferred;
        if total != 0 && transferred >= total.saturating_sub(beg) {
            transferred = total.saturating_sub(beg);
        } else if since_last_update == 0 {
            return None;
        }
        let size = size5(beg.saturating_add(transferred));
        let (mut total_s, mut beg_s, mut tr_s) = (total, beg, transferred);
        while total_s >= 1 << 20 {
            total_s >>= 8;
            beg_s >>= 8;
            tr_s >>= 8;
        }
        let mut line = format!("{} ", self.curfile);
        let done = beg_s.saturating_add(tr_s);
        if let Some(ratio) = done.saturating_mul(100).checked_div(total_s) {
            line.push_str(&format!("{ratio:3}% "));
            let bar = self.columns as i64 - 48;
            if bar > 2 {
                let bar = bar.min(999) as u64;
                let stars = (bar.saturating_mul(done) / total_s).min(bar) as usize;
                line.push('|');
                line.push_str(&"*".repeat(stars));
                line.push_str(&" ".repeat(bar as usize - stars));
                line.push_str("| ");
            }
        }
        line.push_str(&size);
        let mut stalled = now.saturating_sub(self.last_change);
        if tr_s != self.last_size {
            self.last_change = now;
            self.last_size = tr_s;
            if stalled >= 5 {
                self.start = self.start.saturating_add(stalled);
            }
            stalled = 0;
        }
        let elapsed = now.saturating_sub(self.start);
        if stalled >= 5 {
            line.push_str("  - stalled -");
        } else if total_s == 0 || tr_s == 0 || elapsed < 0 {
            line.push_str(" --:--:-- ETA");
        } else {
            let bytes = total_s.saturating_sub(beg_s);
            let elapsed = elapsed as u64;
            let eta = (bytes.saturating_mul(elapsed) / tr_s)
                .saturating_sub(elapsed)
                .min(1000 * 60 * 60 - 1);
            let secs = eta % 3600;
            line.push_str(&format!(
                "{:3}:{:02}:{:02} ETA",
                eta / 3600,
                secs / 60,
                secs % 60
            ));
        }
        line.push('\n');
        Some(line)
    }
}

/// A size in five characters as busybox's progress meter shows it: up to 99999 bytes as they
/// are (`  615`, `12345`), then in the smallest unit of 1024 that keeps it under 100000 tenths:
/// whole units from 100 on (` 123k`, `1234M`), else with one decimal (`92.1M`, ` 9.5k`).
fn size5(n: u64) -> String {
    if n <= 99_999 {
        return format!("{n:>5}");
    }
    let mut tenths = n.saturating_mul(10);
    let mut unit = 0;
    loop {
        tenths /= 1024;
        unit += 1;
        if tenths < 100_000 {
            break;
        }
    }
    let suffix = b" kMGTPEZY".get(unit).map_or('?', |&c| char::from(c));
    let whole = tenths / 10;
    if whole >= 100 {
        format!("{whole:>4}{suffix}")
    } else {
        format!("{whole:>2}.{}{suffix}", tenths % 10)
    }
}

/// A connection with what was read from it but not used yet.
struct Conn {
    stream: Box<dyn NetStream>,
    pending: Vec<u8>,
}

impl Conn {
    /// Bytes already read, or one read of at most `max` from the peer (empty at its end).
    /// Cancel-safe.
    async fn read_some(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        if !self.pending.is_empty() {
            let n = max.min(self.pending.len());
            return Ok(self.pending.drain(..n).collect());
        }
        let mut buf = vec![0u8; max.max(1)];
        let n = self.stream.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// C's `fgets` with a buffer of [`BUF`] bytes: a line with its newline, or the first
    /// `BUF - 1` bytes of a longer one, or what is left before the end; None at the end.
    async fn fgets(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            let limit = self.pending.len().min(BUF - 1);
            if let Some(i) = self.pending[..limit].iter().position(|&b| b == b'\n') {
                return Ok(Some(self.pending.drain(..=i).collect()));
            }
            if self.pending.len() >= BUF - 1 {
                return Ok(Some(self.pending.drain(..BUF - 1).collect()));
            }
            let mut buf = vec![0u8; BUF];
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// How one URL's download ended badly: busybox's message (without `wget: `), already
/// written when None.
type Fail = Option<String>;

/// A `die` with `msg`.
fn die<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Some(msg.into()))
}

impl Interp<'_> {
    /// `wget [OPTIONS] URL...`.
    pub(super) async fn cmd_wget(
        &mut self,
        args: &[String],
        assigns: &[(String, String)],
        fds: &Fds,
    ) -> i32 {
        let parsed = match getopt_long(args, "cqSO:o:P:Y:U:T:t:n::", LONG) {
            Ok(p) => p,
            Err(e) => {
                self.err(fds, &format!("wget: {e}\n{USAGE}"));
                return 1;
            }
        };
        if parsed.operands.is_empty() || (parsed.has(KEY_POST_DATA) && parsed.has(KEY_POST_FILE)) {
            self.err(fds, USAGE);
            return 1;
        }
        let timeout = match parsed.last('T') {
            None => 900,
            Some(t) => match super::nc::xatou(t, 0, i32::MAX as u64) {
                Ok(n) => n,
                Err(e) => {
                    self.err(fds, &format!("wget: {e}\n"));
                    return 1;
                }
            },
        };
        let mut extra_headers = String::new();
        let mut user_headers = 0u8;
        for h in parsed.all(KEY_HEADER) {
            extra_headers.push_str(h);
            extra_headers.push_str("\r\n");
            for (bit, word) in [
                (USER_HOST, "Host:"),
                (USER_AGENT, "User-Agent:"),
                (USER_RANGE, "Range:"),
                (USER_CONTENT_TYPE, "Content-Type:"),
                (USER_AUTH, "Authorization:"),
                (USER_PROXY_AUTH, "Proxy-Authorization:"),
            ] {
                if h.starts_with(word) {
                    user_headers |= bit;
                    break;
                }
            }
        }
        let output = parsed.last('O').map(str::to_string);
        let opts = Opts {
            quiet: parsed.has('q'),
            server_response: parsed.has('S'),
            spider: parsed.has(KEY_SPIDER),
            continue_: parsed.has('c') && output.as_deref() != Some("-"),
            output,
            log: parsed.last('o').filter(|l| *l != "-").map(|l| self.path(l)),
            dir_prefix: parsed.last('P').map(str::to_string),
            proxy: parsed.last('Y').unwrap_or("on").to_string(),
            user_agent: parsed.last('U').unwrap_or("Wget").to_string(),
            timeout,
            extra_headers,
            user_headers,
            post_data: parsed.last(KEY_POST_DATA).map(|d| d.as_bytes().to_vec()),
            post_file: parsed.last(KEY_POST_FILE).map(str::to_string),
            env: self.environment(false, &[], assigns),
        };
        if let (Some(log), Some(named)) = (opts.log.clone(), parsed.last('o')) {
            if let Err(why) = self.create_file(&log, false) {
                self.err(fds, &format!("wget: can't open '{named}': {why}\n"));
                return 1;
            }
        }
        let mut run = Run {
            output: (opts.output.as_deref() == Some("-")).then_some(Output::Stdout),
            opts,
        };
        for url in &parsed.operands {
            match self.download(&mut run, url, fds).await {
                Ok(()) => {}
                Err(msg) => {
                    if let Some(msg) = msg {
                        self.say(&run, fds, &format!("wget: {msg}\n"));
                    }
                    return 1;
                }
            }
        }
        0
    }

    /// A message to standard error, or to the `-o` log file.
    fn say(&mut self, run: &Run, fds: &Fds, msg: &str) {
        match &run.opts.log {
            Some(log) => {
                let _ = self.shell.write(log, msg.as_bytes(), true);
            }
            None => self.err(fds, msg),
        }
    }

    /// The value of variable `name` in the process environment.
    fn run_env<'r>(run: &'r Run, name: &str) -> Option<&'r str> {
        run.opts
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// busybox's `download_one_url`.
    async fn download(&mut self, run: &mut Run, url: &str, fds: &Fds) -> Result<(), Fail> {
        let mut target = parse_url(url, None).or_else(die)?;
        let proxy_var = if target.protocol.starts_with('f') {
            "ftp_proxy"
        } else {
            "http_proxy"
        };
        let proxy = if run.opts.proxy != "off" {
            Self::run_env(run, proxy_var)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        } else {
            None
        };
        let use_proxy = proxy.is_some();
        let mut server = match &proxy {
            Some(p) => parse_url(p, None).or_else(die)?,
            None => target.clone(),
        };
        // The output file's name.
        let fname = match &run.opts.output {
            Some(o) => o.clone(),
            None => {
                let mut f = last_component(&target.path).to_string();
                if f.is_empty() {
                    f = "index.html".into();
                }
                match &run.opts.dir_prefix {
                    Some(d) if d.ends_with('/') => format!("{d}{f}"),
                    Some(d) => format!("{d}/{f}"),
                    None => f,
                }
            }
        };
        let curfile = last_component(&fname).to_string();
        let fpath = self.path(&fname);
        let mut beg_range: u64 = 0;
        if run.opts.continue_ && run.output.is_none() && self.is_file(&fpath) {
            beg_range = self.read(&fpath).map_or(0, |d| d.len() as u64);
            run.output = Some(Output::File(fpath.clone()));
        }
        let mut redirects = REDIRECTS;
        'resolve: loop {
            let addr = self.host_to_addr(&server.host, server.port).or_else(die)?;
            if !run.opts.quiet {
                self.say(
                    run,
                    fds,
                    &format!("Connecting to {} ({})\n", server.host, dotted(&addr)),
                );
            }
            'establish: loop {
                if !use_proxy && target.protocol == "ftp" {
                    let mut conn = self.open_socket(run, addr).await?;
                    return self.ftp_greeting(run, &mut conn, fds).await;
                }
                let mut conn = self.open_socket(run, addr).await?;
                if server.protocol == "https" {
                    return self.tls_hello(run, &mut conn, fds).await;
                }
                let mut request = Vec::new();
                let post = run.opts.post_data.is_some() || run.opts.post_file.is_some();
                if use_proxy {
                    request.extend_from_slice(
                        format!(
                            "GET {}://{}/{} HTTP/1.1\r\n",
                            target.protocol, target.host, target.path
                        )
                        .as_bytes(),
                    );
                } else {
                    let method = if post { "POST" } else { "GET" };
                    request.extend_from_slice(
                        format!("{method} /{} HTTP/1.1\r\n", target.path).as_bytes(),
                    );
                }
                let o = &run.opts;
                if o.user_headers & USER_HOST == 0 {
                    request.extend_from_slice(format!("Host: {}\r\n", target.host).as_bytes());
                }
                if o.user_headers & USER_AGENT == 0 {
                    request
                        .extend_from_slice(format!("User-Agent: {}\r\n", o.user_agent).as_bytes());
                }
                request.extend_from_slice(b"Connection: close\r\n");
                let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                if let Some(user) = &target.user {
                    if o.user_headers & USER_AUTH == 0 {
                        request.extend_from_slice(
                            format!("Authorization: Basic {}\r\n", b64(user)).as_bytes(),
                        );
                    }
                }
                if let (true, Some(user)) = (use_proxy, &server.user) {
                    if o.user_headers & USER_PROXY_AUTH == 0 {
                        request.extend_from_slice(
                            format!("Proxy-Authorization: Basic {}\r\n", b64(user)).as_bytes(),
                        );
                    }
                }
                if beg_range != 0 && o.user_headers & USER_RANGE == 0 {
                    request.extend_from_slice(format!("Range: bytes={beg_range}-\r\n").as_bytes());
                }
                request.extend_from_slice(o.extra_headers.as_bytes());
                let mut post_data = o.post_data.clone();
                if let Some(file) = o.post_file.clone() {
                    post_data = Some(self.post_file(&file, fds).await?);
                }
                let o = &run.opts;
                match post_data {
                    Some(mut data) => {
                        // A C string: it ends at its first NUL.
                        if let Some(nul) = data.iter().position(|&b| b == 0) {
                            data.truncate(nul);
                        }
                        if o.user_headers & USER_CONTENT_TYPE == 0 {
                            request.extend_from_slice(
                                b"Content-Type: application/x-www-form-urlencoded\r\n",
                            );
                        }
                        request.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", data.len()).as_bytes(),
                        );
                        request.extend_from_slice(&data);
                    }
                    None => request.extend_from_slice(b"\r\n"),
                }
                // A peer that has gone away: what follows fails to read its answer.
                let _ = conn.stream.write_all(&request).await;
                let _ = conn.stream.flush().await;

                // The status line (again after a 100 Continue).
                let (status, status_line) = loop {
                    let line = self.head_line(run, &mut conn, fds, true).await?;
                    let rest = line.trim_start_matches(|c: char| !c.is_ascii_whitespace());
                    let status = atoi(rest.trim_start());
                    if status == 0 || status == 100 {
                        while self.header(run, &mut conn, fds).await?.is_some() {}
                        continue;
                    }
                    break (status, line);
                };
                match status {
                    200..=204 => {
                        if beg_range != 0 {
                            self.say(run, fds, "wget: restart failed\n");
                            beg_range = 0;
                            if let Some(Output::File(p)) = &run.output {
                                let p = p.clone();
                                let _ = self.shell.write(&p, b"", false);
                            }
                        }
                    }
                    300..=303 | 307 | 308 => {}
                    206 if beg_range != 0 => {}
                    _ => return die(format!("server returned error: {status_line}")),
                }
                let mut content_len: Option<u64> = None;
                let mut chunked = false;
                while let Some((name, value)) = self.header(run, &mut conn, fds).await? {
                    match name.as_str() {
                        "content-length" => {
                            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                                return die(format!("content-length {value} is garbage"));
                            }
                            match value.parse::<u64>() {
                                Ok(n) if n <= i64::MAX as u64 => content_len = Some(n),
                                _ => return die(format!("content-length {value} is garbage")),
                            }
                        }
                        "transfer-encoding" => {
                            let lower = value.to_ascii_lowercase();
                            if lower != "chunked" {
                                return die(format!(
                                    "transfer encoding '{lower}' is not supported"
                                ));
                            }
                            chunked = true;
                        }
                        "location" if status >= 300 => {
                            redirects -= 1;
                            if redirects == 0 {
                                return die("too many redirections");
                            }
                            drop(conn);
                            if let Some(path) = value.strip_prefix('/') {
                                target.path = path.to_string();
                                continue 'establish;
                            }
                            target = parse_url(&value, target.user.take()).or_else(die)?;
                            if !use_proxy {
                                server = target.clone();
                                continue 'resolve;
                            }
                            continue 'establish;
                        }
                        _ => {}
                    }
                }
                if run.opts.spider {
                    if !run.opts.quiet {
                        self.say(run, fds, "remote file exists\n");
                    }
                    return Ok(());
                }
                if run.output.is_none() {
                    let excl = run.opts.output.is_none();
                    if let Err(why) = self.create_file(&fpath, excl) {
                        return die(format!("can't open '{fname}': {why}"));
                    }
                    run.output = Some(Output::File(fpath.clone()));
                }
                let out = run.output.clone().unwrap_or(Output::Stdout);
                let result = self
                    .retrieve(
                        run,
                        &mut conn,
                        &out,
                        &fname,
                        &curfile,
                        beg_range,
                        content_len,
                        chunked,
                        fds,
                    )
                    .await;
                if run.opts.output.is_none() {
                    run.output = None;
                }
                return result;
            }
        }
    }

    /// Connect to `addr` within the timeout (busybox's `open_socket`).
    async fn open_socket(&mut self, run: &Run, addr: SocketAddr) -> Result<Conn, Fail> {
        let shell = self.shell;
        let attempt = shell.connect_tcp(addr, 0);
        let result = if run.opts.timeout == 0 {
            attempt.await
        } else {
            tokio::select! {
                biased;
                r = attempt => r,
                () = shell.sleep(f64::from(run.opts.timeout)) => return die("download timed out"),
            }
        };
        match result {
            Ok(stream) => Ok(Conn {
                stream,
                pending: Vec::new(),
            }),
            Err(e) => match addr {
                SocketAddr::V4(v4) => die(format!(
                    "can't connect to remote host ({}): {}",
                    v4.ip(),
                    strerror(&e)
                )),
                SocketAddr::V6(_) => die(format!("can't connect to remote host: {}", strerror(&e))),
            },
        }
    }

    /// One line of the response head (`fgets_trim_sanitize`), shown with `-S`; the timeout
    /// covers the line.
    async fn head_line(
        &mut self,
        run: &Run,
        conn: &mut Conn,
        fds: &Fds,
        show: bool,
    ) -> Result<String, Fail> {
        let shell = self.shell;
        let read = conn.fgets();
        let got = if run.opts.timeout == 0 {
            read.await
        } else {
            tokio::select! {
                biased;
                r = read => r,
                () = shell.sleep(f64::from(run.opts.timeout)) => return die("download timed out"),
            }
        };
        let line = match got {
            Ok(Some(line)) => line,
            Ok(None) => return die("error getting response"),
            Err(e) => return die(format!("error getting response: {}", strerror(&e))),
        };
        let text = sanitize(&line);
        if show && run.opts.server_response {
            self.say(run, fds, &format!("  {text}\n"));
        }
        Ok(text)
    }

    /// The next header (`get_sanitized_hdr`): its name in lower case and its value; None at
    /// the blank line that ends the head.
    async fn header(
        &mut self,
        run: &Run,
        conn: &mut Conn,
        fds: &Fds,
    ) -> Result<Option<(String, String)>, Fail> {
        let line = self.head_line(run, conn, fds, true).await?;
        if line.is_empty() {
            return Ok(None);
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
            .unwrap_or(line.len());
        if line.as_bytes().get(name_end) != Some(&b':') {
            return die(format!("bad header line: {line}"));
        }
        let name: String = line[..name_end]
            .bytes()
            .map(|b| (b | 0x20) as char)
            .collect();
        let value = line[name_end + 1..]
            .trim_start_matches([' ', '\t'])
            .trim_end_matches([' ', '\t'])
            .to_string();
        // The rest of a header longer than the buffer is skipped.
        if !line.is_empty() && line.len() >= BUF - 1 {
            loop {
                match conn.fgets().await {
                    Ok(Some(rest)) if rest.last() != Some(&b'\n') => continue,
                    _ => break,
                }
            }
        }
        Ok(Some((name, value)))
    }

    /// The data of `--post-file FILE` (`-`: standard input).
    async fn post_file(&mut self, file: &str, fds: &Fds) -> Result<Vec<u8>, Fail> {
        if file == "-" {
            return match self.read_all(&fds.inp, MAX_BUFFER).await {
                Ok(d) => Ok(d),
                Err(()) => die("out of memory"),
            };
        }
        let p = self.path(file);
        if self.is_dir(&p) {
            return die("read error: Is a directory");
        }
        match self.read(&p) {
            Some(d) => Ok(d),
            None => die(format!("can't open '{file}': No such file or directory")),
        }
    }

    /// busybox's `retrieve_file_data`: the body, to the output, with the progress line.
    #[allow(clippy::too_many_arguments)]
    async fn retrieve(
        &mut self,
        run: &Run,
        conn: &mut Conn,
        out: &Output,
        fname: &str,
        curfile: &str,
        beg_range: u64,
        content_len: Option<u64>,
        chunked: bool,
        fds: &Fds,
    ) -> Result<(), Fail> {
        let shell = self.shell;
        let quiet = run.opts.quiet;
        let show_progress = !quiet && run.opts.log.is_none();
        if !quiet {
            let msg = match out {
                Output::Stdout => "writing to stdout\n".to_string(),
                Output::File(_) => format!("saving to '{fname}'\n"),
            };
            self.say(run, fds, &msg);
        }
        let columns = Self::run_env(run, "COLUMNS")
            .and_then(|c| c.trim().parse::<i64>().ok())
            .filter(|&c| c > 1 && c < 30000)
            .unwrap_or(80) as u64;
        let mut progress = Progress::new(curfile, shell.now_unix(), columns);
        let mut transferred: u64 = 0;
        let mut got_clen = content_len.is_some();
        let mut left: u64 = content_len.unwrap_or(0);
        // The total the progress line shows (0: unknown).
        let total = |got_clen: bool, chunked: bool, transferred: u64, left: u64| {
            if chunked || !got_clen {
                0
            } else {
                beg_range.saturating_add(transferred).saturating_add(left)
            }
        };
        if show_progress {
            if let Some(line) = progress.update(
                shell.now_unix(),
                beg_range,
                transferred,
                total(got_clen, chunked, transferred, left),
            ) {
                self.err(fds, &line);
            }
        }
        let mut in_chunk = !chunked;
        let mut first_chunk = true;
        loop {
            if in_chunk {
                let mut second_cnt = run.opts.timeout;
                loop {
                    let mut rdsz = BUF;
                    if got_clen && left < BUF as u64 {
                        if left == 0 {
                            break;
                        }
                        rdsz = left as usize;
                    }
                    let got = tokio::select! {
                    biased;
                            r = conn.read_some(rdsz) => Some(r),
                            () = shell.sleep(1.0) => None,
                        };
                    match got {
                        Some(Ok(data)) if !data.is_empty() => {
                            let n = data.len() as u64;
                            self.write_output(out, &data, fds).await?;
                            transferred += n;
                            if got_clen {
                                left -= n.min(left);
                                if left == 0 {
                                    break;
                                }
                            }
                            second_cnt = run.opts.timeout;
                        }
                        Some(Ok(_)) => break,
                        Some(Err(e)) => {
                            self.progress_end(
                                run,
                                &mut progress,
                                beg_range,
                                transferred,
                                left,
                                fds,
                            );
                            return die(format!("read error: {}", strerror(&e)));
                        }
                        None => {
                            if second_cnt != 0 {
                                second_cnt -= 1;
                                if second_cnt == 0 {
                                    self.progress_end(
                                        run,
                                        &mut progress,
                                        beg_range,
                                        transferred,
                                        left,
                                        fds,
                                    );
                                    return die("download timed out");
                                }
                            }
                        }
                    }
                    if show_progress {
                        if let Some(line) = progress.update(
                            shell.now_unix(),
                            beg_range,
                            transferred,
                            total(got_clen, chunked, transferred, left),
                        ) {
                            self.err(fds, &line);
                        }
                    }
                }
                if !chunked {
                    break;
                }
            }
            in_chunk = true;
            if !first_chunk {
                // Each chunk ends with "\r\n".
                self.head_line(run, conn, fds, false).await?;
            }
            first_chunk = false;
            let line = self.head_line(run, conn, fds, false).await?;
            match strtoll_hex(&line) {
                Some(0) => break,
                Some(n) => {
                    left = n;
                    got_clen = true;
                }
                None => return die(format!("bad chunk length '{line}'")),
            }
        }
        self.progress_end(run, &mut progress, beg_range, transferred, left, fds);
        if left != 0 {
            return die("connection closed prematurely");
        }
        if !quiet {
            let msg = match out {
                Output::Stdout => "written to stdout\n".to_string(),
                Output::File(_) => format!("'{fname}' saved\n"),
            };
            self.say(run, fds, &msg);
        }
        Ok(())
    }

    /// The last progress line (busybox draws the full bar even for an unknown size).
    fn progress_end(
        &mut self,
        run: &Run,
        progress: &mut Progress,
        beg_range: u64,
        transferred: u64,
        left: u64,
        fds: &Fds,
    ) {
        if run.opts.quiet || run.opts.log.is_some() {
            return;
        }
        let now = self.shell.now_unix();
        let total = beg_range.saturating_add(transferred).saturating_add(left);
        if let Some(line) = progress.update(now, beg_range, transferred, total) {
            self.err(fds, &line);
        }
    }

    async fn write_output(&mut self, out: &Output, data: &[u8], fds: &Fds) -> Result<(), Fail> {
        match out {
            Output::Stdout => {
                self.out(fds, data);
                self.drain(fds).await;
                if self.sigpipe {
                    return Err(None);
                }
                Ok(())
            }
            Output::File(p) => {
                if p == "/dev/null" {
                    return Ok(());
                }
                self.shell
                    .write(p, data, true)
                    .or_else(|why| die(format!("write error: {why}")))
            }
        }
    }

    /// An `ftp://` URL: the server's greeting (the simulation has no FTP server to go on with).
    async fn ftp_greeting(&mut self, run: &Run, conn: &mut Conn, fds: &Fds) -> Result<(), Fail> {
        loop {
            let line = self.head_line(run, conn, fds, false).await?;
            if run.opts.server_response {
                self.say(run, fds, &format!("{line}\n"));
            }
            let b = line.as_bytes();
            if b.first().is_some_and(u8::is_ascii_digit) && b.get(3) == Some(&b' ') {
                if line.starts_with("220 ") {
                    return die("ftp is not simulated");
                }
                return die(line);
            }
        }
    }

    /// An `https://` URL: busybox's TLS code sends its ClientHello and reads the server's
    /// answer; the simulation's servers speak plain HTTP, whose answer is no TLS record.
    async fn tls_hello(&mut self, run: &Run, conn: &mut Conn, fds: &Fds) -> Result<(), Fail> {
        let shell = self.shell;
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03,
        ];
        hello.extend_from_slice(&[0x5a; 32]);
        hello.extend_from_slice(&[0x00, 0x00, 0x02, 0xc0, 0x2f, 0x01, 0x00, 0x00, 0x00]);
        let _ = conn.stream.write_all(&hello).await;
        // busybox grows its input buffer to 2304 bytes for the first record.
        let mut got: Vec<u8> = Vec::new();
        while got.len() < 5 {
            let read = conn.read_some(2304 - got.len());
            let r = if run.opts.timeout == 0 {
                read.await
            } else {
                tokio::select! {
                biased;
                    r = read => r,
                    () = shell.sleep(f64::from(run.opts.timeout)) => return die("download timed out"),
                }
            };
            match r {
                Ok(d) if d.is_empty() => {
                    if got.is_empty() {
                        return die("got bad TLS record (len:0) while expecting handshake record");
                    }
                    return die(format!("short read, have only {}", got.len()));
                }
                Ok(d) => got.extend_from_slice(&d),
                Err(e) => {
                    return die(format!(
                        "short read, have only {}: {}",
                        got.len(),
                        strerror(&e)
                    ))
                }
            }
        }
        let mut dump = String::new();
        for b in got.iter().take(99) {
            dump.push_str(&format!(" {b:02x}"));
        }
        self.say(
            run,
            fds,
            &format!(
                "wget: got bad TLS record (len:{}) while expecting handshake record\n{dump}\n",
                got.len()
            ),
        );
        Err(None)
    }
}

/// C's `atoi`: leading digits (after an optional sign); 0 without any.
fn atoi(s: &str) -> i64 {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// A chunk size as `strtoll(line, NULL, 16)` reads it; None when negative or too large.
fn strtoll_hex(line: &str) -> Option<u64> {
    let t = line.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .filter(|r| r.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()))
        .unwrap_or(t);
    let mut n: u64 = 0;
    for b in t.bytes() {
        let Some(d) = (b as char).to_digit(16) else {
            break;
        };
        n = n.checked_mul(16)?.checked_add(u64::from(d))?;
        if n > i64::MAX as u64 {
            return None;
        }
    }
    if neg && n != 0 {
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_five_characters() {
        assert_eq!(size5(0), "    0");
        assert_eq!(size5(615), "  615");
        assert_eq!(size5(99_999), "99999");
        assert_eq!(size5(100_000), "97.6k");
        assert_eq!(size5(1_048_576), "1024k");
    }

    #[test]
    fn the_progress_line_of_a_file() {
        let mut p = Progress::new("index.html", 100, 80);
        assert_eq!(p.update(100, 0, 0, 615), None);
        assert_eq!(
            p.update(100, 0, 615, 615).as_deref(),
            Some(
                "index.html           100% |********************************|   615  0:00:00 ETA\n"
            )
        );
        let mut p = Progress::new("-", 0, 80);
        assert_eq!(p.update(0, 0, 0, 0).as_deref(), None,);
        assert_eq!(
            p.update(1, 0, 0, 0).as_deref(),
            Some("-                        0 --:--:-- ETA\n")
        );
    }

    #[test]
    fn urls_split_as_busybox_splits_them() {
        let u = parse_url("http://user:p%20w@10.0.0.1:8080/a/b?x=1", None).unwrap();
        assert_eq!(
            (
                u.protocol,
                u.host.as_str(),
                u.port,
                u.path.as_str(),
                u.user.as_deref()
            ),
            ("http", "10.0.0.1:8080", 80, "a/b?x=1", Some("user:p w"))
        );
        let u = parse_url("10.0.0.1?q", None).unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("10.0.0.1", "q"));
        assert_eq!(
            parse_url("gopher://x/", None).unwrap_err(),
            "not an http or ftp url: gopher://x/"
        );
        assert_eq!(strtoll_hex("1a;ext"), Some(26));
        assert_eq!(strtoll_hex("-5"), None);
        assert_eq!(strtoll_hex("zz"), Some(0));
        assert_eq!(atoi("404 Not Found"), 404);
    }
}
