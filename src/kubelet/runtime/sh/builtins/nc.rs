//! `nc`, as the busybox image builds it (the netcat 1.10 compatible one, `nc_bloaty.c`), over
//! real sockets of the container ([`Shell::connect_tcp`], [`Shell::connect_udp`],
//! [`Shell::listen_tcp`], [`Shell::listen_udp`]): `nc [OPTIONS] HOST PORT` connects and copies
//! standard input to the peer and the peer to standard output until both have ended;
//! `nc -l -p PORT` listens (on the container's addresses) for one peer; `-u` (UDP), `-z`
//! (only connect; with `-u`, busybox's probe), `-w SEC` (the connect timeout, and how long the
//! copy may stay idle: twice that and it ends), `-v`/`-vv`, `-n`, `-i SEC`, `-o FILE`
//! (hexdump of the traffic), `-k`, `-e PROG [ARGS]` (the program runs with the connection as
//! its standard input and output), with busybox 1.36's messages and exit statuses. `-s ADDR`
//! is checked but the socket is the container's either way; `-b` changes nothing.
//!
//! [`Shell::connect_tcp`]: super::super::Shell::connect_tcp
//! [`Shell::connect_udp`]: super::super::Shell::connect_udp
//! [`Shell::listen_tcp`]: super::super::Shell::listen_tcp
//! [`Shell::listen_udp`]: super::super::Shell::listen_udp

use std::net::SocketAddr;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::interp::{Fds, Interp};
use super::super::invocation::{command_name, UTILITIES};
use super::super::io::{Pipe, Sink, Source};
use super::super::{Datagram, NetStream};
use super::getopt::getopt_long;
use super::inet::{dotted, dotted_v6, is_refused, lookup_port, strerror, timed_out};

/// busybox's buffers: the most one read takes from standard input or the network.
const BIGSIZ: usize = 8192;
/// The port busybox's UDP probe connects to for its "TCP ping".
const SLEAZE_PORT: u16 = 31337;

const USAGE: &str = "Usage: nc [OPTIONS] HOST PORT  - connect\n\
nc [OPTIONS] -l -p PORT [HOST] [PORT]  - listen\n";

/// The connection the copy runs on.
enum Net {
    Tcp(Box<dyn NetStream>),
    Udp(Box<dyn Datagram>),
}

impl Net {
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; BIGSIZ];
        let n = match self {
            Net::Tcp(s) => s.read(&mut buf).await?,
            Net::Udp(d) => d.recv(&mut buf).await?,
        };
        buf.truncate(n);
        Ok(buf)
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Net::Tcp(s) => s.write_all(data).await,
            Net::Udp(d) => d.send(data).await.map(|_| ()),
        }
    }

    async fn shutdown(&mut self) {
        if let Net::Tcp(s) = self {
            let _ = s.shutdown().await;
        }
    }
}

/// The options of one run.
struct Opts {
    verbose: usize,
    wait: u32,
    interval: u32,
    udp: bool,
    zero: bool,
    hexdump: Option<String>,
    /// `-e PROG [ARGS]`.
    prog: Option<Vec<String>>,
}

/// What was copied, for `-vv` and the hexdump offsets.
#[derive(Default)]
struct Counts {
    wrote_net: u64,
    wrote_out: u64,
    /// nc died (or became `-e`'s program) before its own end, where `-vv` reports the counts.
    exited: bool,
}

/// A line of busybox's traffic hexdump (`-o`): direction, offset, 16 bytes, their text.
fn hexdump(direction: u8, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = offset;
    for chunk in data.chunks(16) {
        let mut line = vec![b' '; 61];
        line[0] = direction;
        let head = format!(" {:08x} ", offset as u32);
        line[1..11].copy_from_slice(head.as_bytes());
        for (i, &b) in chunk.iter().enumerate() {
            let hex = format!("{b:02X}");
            let hex = hex.as_bytes();
            line[11 + 3 * i] = 0x20 | hex[0];
            line[12 + 3 * i] = 0x20 | hex[1];
        }
        line[59] = b'#';
        line[60] = b' ';
        for &b in chunk {
            line.push(if (32..127).contains(&b) { b } else { b'.' });
        }
        line.push(b'\n');
        out.extend_from_slice(&line);
        offset += chunk.len() as u64;
    }
    out
}

/// The first line of `data` with its newline (all of it without one).
fn findline(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| i + 1)
}

/// A number as busybox's `xatou_range` reads it (decimal digits only).
pub(super) fn xatou(s: &str, lo: u64, hi: u64) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid number '{s}'"));
    }
    match s.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        _ => Err(format!("number {s} is not in {lo}..{hi} range")),
    }
}

impl Interp<'_> {
    /// `nc [OPTIONS] HOST PORT`, `nc [OPTIONS] -l -p PORT [HOST] [PORT]`.
    pub(super) async fn cmd_nc(&mut self, args: &[String], fds: &Fds) -> i32 {
        // `-e PROG ARGS...` ends the options (also bundled: `-lke PROG`).
        let mut opt_args: Vec<String> = Vec::new();
        let mut prog: Option<Vec<String>> = None;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            i += 1;
            if a == "-e" {
                prog = Some(args.get(i..).unwrap_or(&[]).to_vec());
                break;
            }
            if let Some(opts) = a.strip_prefix('-') {
                let flags = opts.trim_start_matches(['n', 'u', 'v', 'l', 'k', 'z']);
                if flags == "e" && opts.len() > 1 {
                    opt_args.push(format!("-{}", &opts[..opts.len() - 1]));
                    prog = Some(args.get(i..).unwrap_or(&[]).to_vec());
                    break;
                }
            }
            opt_args.push(a.clone());
        }
        let parsed = match getopt_long(&opt_args, "np:s:ubvw:lki:o:z", &[]) {
            Ok(p) => p,
            Err(e) => {
                self.err(fds, &format!("nc: {e}\n{USAGE}"));
                return 1;
            }
        };
        if parsed.operands.len() > 2 || prog.as_ref().is_some_and(|p| p.is_empty()) {
            self.err(fds, USAGE);
            return 1;
        }
        let wait = match parsed.last('w').map(|w| xatou(w, 0, i32::MAX as u64)) {
            None => 0,
            Some(Ok(w)) => w,
            Some(Err(e)) => {
                self.err(fds, &format!("nc: {e}\n"));
                return 1;
            }
        };
        let interval = match parsed.last('i').map(|v| xatou(v, 1, 0xffff)) {
            None => 0,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                self.err(fds, &format!("nc: {e}\n"));
                return 1;
            }
        };
        let listen = parsed.count('l') + 2 * usize::from(parsed.has('k'));
        let opts = Opts {
            verbose: parsed.count('v'),
            wait,
            interval,
            udp: parsed.has('u'),
            zero: parsed.has('z'),
            hexdump: if prog.is_some() {
                None
            } else {
                parsed.last('o').map(|o| self.path(o))
            },
            prog,
        };
        let lport = match parsed.last('p').map(lookup_port) {
            None => 0,
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                self.err(fds, &format!("nc: {e}\n"));
                return 1;
            }
        };
        let them = match parsed.operands.first() {
            None => None,
            Some(host) => {
                let port = match parsed.operands.get(1).map(|p| lookup_port(p)) {
                    None => 0,
                    Some(Ok(p)) => p,
                    Some(Err(e)) => {
                        self.err(fds, &format!("nc: {e}\n"));
                        return 1;
                    }
                };
                match self.host_to_addr(host, port) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        self.err(fds, &format!("nc: {e}\n"));
                        return 1;
                    }
                }
            }
        };
        if let Some(local) = parsed.last('s') {
            if let Err(e) = self.host_to_addr(local, lport) {
                self.err(fds, &format!("nc: {e}\n"));
                return 1;
            }
        }
        if let Some(h) = opts.hexdump.clone() {
            if let Err(why) = self.create_file(&h, false) {
                self.err(fds, &format!("nc: can't open '{h}': {why}\n"));
                return 1;
            }
        }
        let mut counts = Counts::default();
        let status = if listen > 0 {
            self.nc_listen(&opts, listen >= 2, lport, them, &mut counts, fds)
                .await
        } else {
            match (them, parsed.operands.first()) {
                (Some(to), Some(host)) => {
                    let host = host.clone();
                    self.nc_connect(&opts, &host, to, lport, &mut counts, fds)
                        .await
                }
                _ => {
                    self.err(fds, USAGE);
                    1
                }
            }
        };
        if opts.verbose > 1 && !counts.exited {
            self.err(
                fds,
                &format!("sent {}, rcvd {}\n", counts.wrote_net, counts.wrote_out),
            );
        }
        status
    }

    /// Outbound: connect (within `-w`), then copy, or only say whether the port is open.
    async fn nc_connect(
        &mut self,
        opts: &Opts,
        host: &str,
        to: SocketAddr,
        lport: u16,
        counts: &mut Counts,
        fds: &Fds,
    ) -> i32 {
        let shell = self.shell;
        let themdotted = dotted(&to);
        let connected = if opts.udp {
            match shell.connect_udp(to, lport).await {
                Ok(d) => Ok(Net::Udp(d)),
                Err(e) => Err(e),
            }
        } else {
            let attempt = shell.connect_tcp(to, lport);
            let r = if opts.wait == 0 {
                attempt.await
            } else {
                tokio::select! {
                biased;
                    r = attempt => r,
                    () = shell.sleep(f64::from(opts.wait)) => Err(timed_out()),
                }
            };
            r.map(Net::Tcp)
        };
        let connected = match connected {
            Ok(Net::Udp(d)) if opts.zero => match self.udptest(opts, d.as_ref(), to).await {
                Ok(()) => Ok(Net::Udp(d)),
                Err(e) => Err(e),
            },
            other => other,
        };
        match connected {
            Ok(net) => {
                if opts.verbose > 0 {
                    self.err(fds, &format!("{host} ({themdotted}) open\n"));
                }
                if let Some(prog) = &opts.prog {
                    counts.exited = true;
                    return self.nc_exec(prog, net, fds).await;
                }
                if opts.zero {
                    return 0;
                }
                self.readwrite(opts, net, None, counts, fds).await
            }
            Err(e) => {
                if opts.verbose > 1 || (opts.verbose > 0 && !is_refused(&e)) {
                    self.err(
                        fds,
                        &format!("nc: {host} ({themdotted}): {}\n", strerror(&e)),
                    );
                }
                1
            }
        }
    }

    /// busybox's `udptest`: a byte, a pause (`-w`, else a TCP connect to a closed port as a
    /// round trip), another byte: the second fails when the first drew a port unreachable.
    async fn udptest(
        &mut self,
        opts: &Opts,
        d: &dyn Datagram,
        to: SocketAddr,
    ) -> std::io::Result<()> {
        let shell = self.shell;
        if let Err(e) = d.send(&[0]).await {
            let msg = format!("nc: udptest first write: {}\n", strerror(&e));
            self.err(&Fds::base(), &msg);
        }
        if opts.wait > 0 {
            shell.sleep(f64::from(opts.wait)).await;
        } else {
            let ping = shell.connect_tcp(SocketAddr::new(to.ip(), SLEAZE_PORT), 0);
            tokio::select! {
                biased;
                _ = ping => {}
                () = shell.sleep(5.0) => {}
            }
        }
        d.send(&[0]).await.map(|_| ())
    }

    /// Listen for one peer (`-l`; with `-k` and `-e`, for every peer), then copy.
    async fn nc_listen(
        &mut self,
        opts: &Opts,
        persistent: bool,
        lport: u16,
        them: Option<SocketAddr>,
        counts: &mut Counts,
        fds: &Fds,
    ) -> i32 {
        let shell = self.shell;
        let wait = |secs: u32| async move {
            if secs == 0 {
                std::future::pending::<()>().await;
            } else {
                shell.sleep(f64::from(secs)).await;
            }
        };
        if opts.udp {
            let d = match shell.listen_udp(lport).await {
                Ok(d) => d,
                Err(e) => {
                    self.err(fds, &format!("nc: bind: {}\n", strerror(&e)));
                    counts.exited = true;
                    return 1;
                }
            };
            let port = d.local_addr().map_or(lport, |a| a.port());
            if opts.verbose > 0 {
                self.err(fds, &format!("listening on [::]:{port} ...\n"));
            }
            if let Some(t) = them {
                if let Err(e) = d.connect(t).await {
                    self.err(fds, &format!("nc: connect: {}\n", strerror(&e)));
                    counts.exited = true;
                    return 1;
                }
            }
            let mut buf = vec![0u8; BIGSIZ];
            let first = tokio::select! {
                biased;
                r = d.recv_from(&mut buf) => r,
                () = wait(opts.wait) => {
                    self.err(fds, "nc: timeout\n");
                    counts.exited = true;
                    return 1;
                }
            };
            let (n, peer) = match first {
                Ok(x) => x,
                Err(e) => {
                    self.err(fds, &format!("nc: recvfrom: {}\n", strerror(&e)));
                    counts.exited = true;
                    return 1;
                }
            };
            buf.truncate(n);
            if them.is_none() {
                if let Err(e) = d.connect(peer).await {
                    self.err(fds, &format!("nc: connect: {}\n", strerror(&e)));
                    counts.exited = true;
                    return 1;
                }
            }
            if opts.verbose > 0 {
                let local = d.local_addr().ok();
                self.nc_say_connect(local, peer, fds);
            }
            let net = Net::Udp(d);
            if let Some(prog) = &opts.prog {
                counts.exited = true;
                return self.nc_exec(prog, net, fds).await;
            }
            return self.readwrite(opts, net, Some(buf), counts, fds).await;
        }
        let listener = match shell.listen_tcp(lport).await {
            Ok(l) => l,
            Err(e) => {
                self.err(fds, &format!("nc: bind: {}\n", strerror(&e)));
                counts.exited = true;
                return 1;
            }
        };
        if opts.verbose > 0 {
            let port = listener.local_addr().map_or(lport, |a| a.port());
            self.err(fds, &format!("listening on [::]:{port} ...\n"));
        }
        let mut serving = FuturesUnordered::new();
        loop {
            let accepted = tokio::select! {
                biased;
                r = listener.accept() => r,
                () = wait(opts.wait) => {
                    self.err(fds, "nc: timeout\n");
                    counts.exited = true;
                    return 1;
                }
                Some(_) = serving.next(), if !serving.is_empty() => continue,
            };
            let (stream, local, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    self.err(fds, &format!("nc: accept: {}\n", strerror(&e)));
                    counts.exited = true;
                    return 1;
                }
            };
            if let Some(t) = them {
                let port_ok = t.port() == 0 || t.port() == peer.port();
                if t.ip() != peer.ip() || !port_ok {
                    if opts.verbose > 0 {
                        let msg = format!(
                            "nc: connect from wrong ip/port {} ignored\n",
                            dotted_v6(&peer)
                        );
                        self.err(fds, &msg);
                    }
                    continue;
                }
            }
            if opts.verbose > 0 {
                self.nc_say_connect(Some(local), peer, fds);
            }
            match &opts.prog {
                Some(prog) if persistent => {
                    // A child per peer, while the listener goes on.
                    let child = self.fork();
                    serving.push(nc_exec_owned(
                        child,
                        prog.clone(),
                        Net::Tcp(stream),
                        fds.clone(),
                    ));
                }
                Some(prog) => {
                    counts.exited = true;
                    return self.nc_exec(prog, Net::Tcp(stream), fds).await;
                }
                None => {
                    return self
                        .readwrite(opts, Net::Tcp(stream), None, counts, fds)
                        .await
                }
            }
        }
    }

    fn nc_say_connect(&mut self, local: Option<SocketAddr>, peer: SocketAddr, fds: &Fds) {
        // The peer's name would come from a reverse lookup (not with -n); the simulation has
        // none, so it shows as its address either way.
        let lcl = local.map(|l| dotted_v6(&l)).unwrap_or_default();
        let rem = dotted_v6(&peer);
        self.err(fds, &format!("connect to {lcl} from {rem} ({rem})\n"));
    }

    /// `-e PROG`: the program runs with the connection as its standard input and output; its
    /// status is nc's.
    async fn nc_exec(&mut self, prog: &[String], net: Net, fds: &Fds) -> i32 {
        let child = self.fork();
        nc_exec_owned(child, prog.to_vec(), net, fds.clone()).await
    }

    /// Copy standard input to the peer and the peer to standard output until both have ended
    /// (busybox's `readwrite`); `first`: a datagram already received.
    async fn readwrite(
        &mut self,
        opts: &Opts,
        mut net: Net,
        first: Option<Vec<u8>>,
        counts: &mut Counts,
        fds: &Fds,
    ) -> i32 {
        let shell = self.shell;
        let inp = fds.inp.clone();
        let mut stdin_open = true;
        let mut net_open = true;
        let mut netretry = 2;
        let mut pending_in: Vec<u8> = Vec::new();
        let mut pending_net: Option<Vec<u8>> = first;
        if opts.interval > 0 {
            shell.sleep(f64::from(opts.interval)).await;
        }
        while stdin_open || net_open {
            enum Event {
                Net(std::io::Result<Vec<u8>>),
                Stdin(Option<Vec<u8>>),
                Timeout,
                Shovel,
            }
            let event = if let Some(d) = pending_net.take() {
                Event::Net(Ok(d))
            } else if !pending_in.is_empty() {
                Event::Shovel
            } else {
                tokio::select! {
                biased;
                    r = net.read(), if net_open => Event::Net(r),
                    c = self.read_chunk(&inp), if stdin_open => Event::Stdin(c),
                    () = shell.sleep(f64::from(opts.wait)), if opts.wait > 0 => Event::Timeout,
                    else => break,
                }
            };
            match event {
                Event::Timeout => {
                    netretry -= 1;
                    if netretry == 0 {
                        if opts.verbose > 1 {
                            self.err(fds, "net timeout\n");
                        }
                        return 0;
                    }
                }
                Event::Net(Ok(data)) if !data.is_empty() => {
                    self.nc_hexdump(opts, b'<', counts.wrote_out, &data);
                    self.out(fds, &data);
                    self.drain(fds).await;
                    if self.sigpipe {
                        // nc ignores SIGPIPE: the write fails, and it gives up.
                        self.sigpipe = false;
                        if opts.verbose > 0 {
                            self.err(fds, "nc: too many output retries\n");
                        }
                        return 1;
                    }
                    counts.wrote_out += data.len() as u64;
                }
                Event::Net(r) => {
                    if let (Err(e), true) = (&r, opts.verbose > 1) {
                        self.err(fds, &format!("nc: net read: {}\n", strerror(e)));
                    }
                    net_open = false;
                }
                Event::Stdin(Some(mut data)) => {
                    if data.len() > BIGSIZ {
                        let rest = data.split_off(BIGSIZ);
                        self.unread(&inp, rest);
                    }
                    pending_in = data;
                }
                Event::Stdin(None) => {
                    stdin_open = false;
                    net.shutdown().await;
                }
                Event::Shovel => {}
            }
            if !pending_in.is_empty() {
                let n = if opts.interval > 0 {
                    findline(&pending_in)
                } else {
                    pending_in.len()
                };
                let piece: Vec<u8> = pending_in.drain(..n).collect();
                if net.write(&piece).await.is_err() {
                    if opts.verbose > 0 {
                        self.err(fds, "nc: too many output retries\n");
                    }
                    return 1;
                }
                self.nc_hexdump(opts, b'>', counts.wrote_net, &piece);
                counts.wrote_net += piece.len() as u64;
                if opts.interval > 0 {
                    shell.sleep(f64::from(opts.interval)).await;
                }
            }
        }
        0
    }

    fn nc_hexdump(&mut self, opts: &Opts, direction: u8, offset: u64, data: &[u8]) {
        if let Some(h) = &opts.hexdump {
            let _ = self.shell.write(h, &hexdump(direction, offset, data), true);
        }
    }
}

/// Run `prog` in `child` (a forked shell) with `net` as its standard input and output.
async fn nc_exec_owned(mut child: Interp<'_>, prog: Vec<String>, net: Net, fds: Fds) -> i32 {
    let name = prog.first().cloned().unwrap_or_default();
    let cmd = command_name(&name).to_string();
    if !UTILITIES.contains(&cmd.as_str()) {
        child.err(
            &fds,
            &format!("nc: can't execute '{name}': No such file or directory\n"),
        );
        return 127;
    }
    let to_prog = Arc::new(Pipe::new());
    let from_prog = Arc::new(Pipe::new());
    let child_fds = Fds {
        inp: Source::Pipe(Arc::clone(&to_prog)),
        out: Sink::Pipe(Arc::clone(&from_prog)),
        err: fds.err.clone(),
    };
    let (mut rd, mut wr): (Box<dyn NetRead>, Box<dyn NetWrite>) = match net {
        Net::Tcp(stream) => {
            let (r, w) = tokio::io::split(stream);
            (Box::new(TcpRead(r)), Box::new(TcpWrite(w)))
        }
        Net::Udp(d) => {
            let d: Arc<dyn Datagram> = Arc::from(d);
            (Box::new(UdpSide(Arc::clone(&d))), Box::new(UdpSide(d)))
        }
    };
    let run = async {
        let status = child.run_command(&cmd, &name, &prog, &[], &child_fds).await;
        from_prog.close_write();
        to_prog.close_read();
        status
    };
    let feed = async {
        loop {
            match rd.read().await {
                Ok(data) if !data.is_empty() => {
                    if !to_prog.write(&data) {
                        break;
                    }
                    to_prog.wait_writable().await;
                }
                _ => {
                    to_prog.close_write();
                    break;
                }
            }
        }
        std::future::pending::<()>().await;
    };
    let drain = async {
        while let Some(data) = from_prog.read().await {
            if wr.write(&data).await.is_err() {
                from_prog.close_read();
                break;
            }
        }
        wr.shutdown().await;
    };
    let (status, ()) = tokio::select! {
                biased;
        both = async { tokio::join!(run, drain) } => both,
        () = feed => (1, ()),
    };
    status
}

#[async_trait::async_trait]
trait NetRead: Send {
    async fn read(&mut self) -> std::io::Result<Vec<u8>>;
}

#[async_trait::async_trait]
trait NetWrite: Send {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    async fn shutdown(&mut self);
}

struct TcpRead(tokio::io::ReadHalf<Box<dyn NetStream>>);
struct TcpWrite(tokio::io::WriteHalf<Box<dyn NetStream>>);
struct UdpSide(Arc<dyn Datagram>);

#[async_trait::async_trait]
impl NetRead for TcpRead {
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; BIGSIZ];
        let n = self.0.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[async_trait::async_trait]
impl NetWrite for TcpWrite {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data).await
    }
    async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

#[async_trait::async_trait]
impl NetRead for UdpSide {
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; BIGSIZ];
        let n = self.0.recv(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[async_trait::async_trait]
impl NetWrite for UdpSide {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.send(data).await.map(|_| ())
    }
    async fn shutdown(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traffic_hexdump_is_busybox_s() {
        let out = hexdump(b'>', 0, b"GET / HTTP/1.0\r\n\r\n");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "> 00000000 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 30 0d 0a # GET / HTTP/1.0.."
        );
        assert_eq!(
            lines[1],
            "> 00000010 0d 0a                                           # .."
        );
        assert_eq!(findline(b"a\nb"), 2);
        assert_eq!(xatou("x", 0, 9), Err("invalid number 'x'".into()));
        assert_eq!(
            xatou("0", 1, 9),
            Err("number 0 is not in 1..9 range".into())
        );
    }
}
