//! Scripts run against an in-memory container (files, a fake clock, probes while sleeping).

use super::*;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// An in-memory container: files (None: a directory), a fake clock that `sleep` advances at
/// once, optional exec probes run while sleeping, a standard input (queued chunks, then a
/// channel a test feeds while the script runs), processes to signal.
#[derive(Default)]
pub(super) struct Mem {
    pub(super) fs: Mutex<BTreeMap<String, Option<Vec<u8>>>>,
    pub(super) clock: Mutex<f64>,
    /// (clock at start, seconds, /tmp/healthy existed)
    pub(super) sleeps: Mutex<Vec<(f64, f64, bool)>>,
    /// Run `cat /tmp/healthy` every this many seconds while sleeping.
    pub(super) probe_every: Option<f64>,
    /// (clock, exit status) of the probes.
    pub(super) probes: Mutex<Vec<(f64, i32)>>,
    pub(super) out: Mutex<Vec<u8>>,
    pub(super) err: Mutex<Vec<u8>>,
    pub(super) env: BTreeMap<String, String>,
    /// Sleep for real (1 ms a call) instead of advancing the fake clock.
    pub(super) real_sleep: bool,
    pub(super) now: i64,
    /// Standard input chunks still to read.
    pub(super) stdin: Mutex<VecDeque<Vec<u8>>>,
    /// Then more standard input, fed by the test while the script runs.
    pub(super) stdin_rx: Option<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>>,
    /// Standard input reads so far.
    pub(super) stdin_reads: Mutex<usize>,
    /// Processes that exist (for `kill`), and the signals sent to them.
    pub(super) pids: Vec<i64>,
    pub(super) signals: Mutex<Vec<(i64, i32)>>,
    pub(super) host: Option<String>,
    /// The script runs as a container's main process: `kill 1` (or `$$`) and the test send
    /// these its signals.
    pub(super) main: Option<std::sync::Arc<Signals>>,
    /// `sleep` never ends (only a signal interrupts it).
    pub(super) sleep_forever: bool,
    /// What `df` sees.
    pub(super) mounts: Vec<Mount>,
    /// Sockets on the machine's loopback (127.0.0.0/8; other addresses never answer), and
    /// `sleep` in real time (seconds), so that timeouts race real peers.
    pub(super) net: bool,
    /// Who the script runs as (root when None).
    pub(super) creds: Option<Credentials>,
}

impl Mem {
    pub(super) fn new() -> Self {
        Mem::default()
    }
    pub(super) fn file(&self, p: &str) -> Option<Vec<u8>> {
        self.fs.lock().unwrap().get(p).cloned().flatten()
    }
    pub(super) fn put(&self, p: &str, data: &str) {
        self.put_bytes(p, data.as_bytes());
    }
    pub(super) fn put_bytes(&self, p: &str, data: &[u8]) {
        self.fs
            .lock()
            .unwrap()
            .insert(p.to_string(), Some(data.to_vec()));
    }
    pub(super) fn dir(&self, p: &str) {
        self.fs.lock().unwrap().insert(p.to_string(), None);
    }
    pub(super) fn out(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }
    pub(super) fn err(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }
    /// A shell whose standard input is `data`, in chunks of `chunk` bytes.
    pub(super) fn with_stdin(data: &[u8], chunk: usize) -> Self {
        let m = Mem::new();
        m.feed(data, chunk);
        m
    }
    pub(super) fn feed(&self, data: &[u8], chunk: usize) {
        let mut q = self.stdin.lock().unwrap();
        for c in data.chunks(chunk.max(1)) {
            q.push_back(c.to_vec());
        }
    }
}

#[async_trait::async_trait]
impl Shell for Mem {
    async fn sleep(&self, seconds: f64) {
        if self.net {
            tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 1e6))).await;
            return;
        }
        if self.real_sleep {
            tokio::time::sleep(Duration::from_millis(1)).await;
            return;
        }
        let start = *self.clock.lock().unwrap();
        let healthy = self.exists("/tmp/healthy");
        self.sleeps.lock().unwrap().push((start, seconds, healthy));
        if let Some(period) = self.probe_every {
            let mut t = (start / period).ceil() * period;
            if t <= 0.0 {
                t = period;
            }
            while t < start + seconds && t <= 700.0 {
                let (code, _, _) = exec(&v(&["cat", "/tmp/healthy"]), self).await;
                self.probes.lock().unwrap().push((t, code));
                t += period;
            }
        }
        *self.clock.lock().unwrap() = start + seconds;
        if self.sleep_forever {
            std::future::pending::<()>().await;
        }
    }
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.file(path)
    }
    fn write(&self, path: &str, data: &[u8], append: bool) -> Result<(), String> {
        let mut fs = self.fs.lock().unwrap();
        match fs
            .entry(path.to_string())
            .or_insert_with(|| Some(Vec::new()))
        {
            None => Err("Is a directory".into()),
            Some(content) => {
                if !append {
                    content.clear();
                }
                content.extend_from_slice(data);
                Ok(())
            }
        }
    }
    fn remove(&self, path: &str) -> Result<(), String> {
        let prefix = format!("{path}/");
        self.fs
            .lock()
            .unwrap()
            .retain(|k, _| k != path && !k.starts_with(&prefix));
        Ok(())
    }
    fn exists(&self, path: &str) -> bool {
        self.fs.lock().unwrap().contains_key(path)
    }
    fn is_file(&self, path: &str) -> bool {
        matches!(self.fs.lock().unwrap().get(path), Some(Some(_)))
    }
    fn is_dir(&self, path: &str) -> bool {
        matches!(self.fs.lock().unwrap().get(path), Some(None))
    }
    fn mkdir(&self, path: &str) -> Result<(), String> {
        self.fs.lock().unwrap().insert(path.to_string(), None);
        Ok(())
    }
    fn stdout(&self, data: &[u8]) {
        self.out.lock().unwrap().extend_from_slice(data);
    }
    fn stderr(&self, data: &[u8]) {
        self.err.lock().unwrap().extend_from_slice(data);
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn now_unix(&self) -> i64 {
        self.now
    }
    async fn read_stdin(&self) -> Option<Vec<u8>> {
        *self.stdin_reads.lock().unwrap() += 1;
        let queued = self.stdin.lock().unwrap().pop_front();
        if queued.is_some() {
            return queued;
        }
        match &self.stdin_rx {
            Some(rx) => rx.lock().await.recv().await,
            None => None,
        }
    }
    fn signal(&self, pid: i64, signal: i32) -> Result<(), String> {
        if let (Some(main), 1) = (&self.main, pid) {
            main.send(signal);
            return Ok(());
        }
        if self.pids.contains(&pid) {
            self.signals.lock().unwrap().push((pid, signal));
            Ok(())
        } else {
            Err("No such process".into())
        }
    }
    fn hostname(&self) -> String {
        self.host.clone().unwrap_or_else(|| "localhost".into())
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn signals(&self) -> Option<std::sync::Arc<Signals>> {
        self.main.clone()
    }
    fn mounts(&self) -> Vec<Mount> {
        self.mounts.clone()
    }
    fn credentials(&self) -> Credentials {
        self.creds.clone().unwrap_or_else(Credentials::root)
    }
    async fn connect_tcp(
        &self,
        to: SocketAddr,
        _local_port: u16,
    ) -> std::io::Result<Box<dyn NetStream>> {
        if !self.net {
            return Err(no_network());
        }
        if !matches!(to.ip(), std::net::IpAddr::V4(v4) if v4.is_loopback()) {
            std::future::pending::<()>().await;
        }
        Ok(Box::new(tokio::net::TcpStream::connect(to).await?))
    }
    async fn connect_udp(
        &self,
        to: SocketAddr,
        _local_port: u16,
    ) -> std::io::Result<Box<dyn Datagram>> {
        if !self.net {
            return Err(no_network());
        }
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(to).await?;
        Ok(Box::new(MemUdp(socket)))
    }
    async fn listen_tcp(&self, port: u16) -> std::io::Result<Box<dyn Listener>> {
        if !self.net {
            return Err(no_network());
        }
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        Ok(Box::new(MemListener(l)))
    }
    async fn listen_udp(&self, port: u16) -> std::io::Result<Box<dyn Datagram>> {
        if !self.net {
            return Err(no_network());
        }
        let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await?;
        Ok(Box::new(MemUdp(socket)))
    }
    fn list_dir(&self, path: &str) -> Option<Vec<String>> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Some(
            self.fs
                .lock()
                .unwrap()
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                .map(str::to_string)
                .collect(),
        )
    }
}

pub(super) struct MemUdp(pub(super) tokio::net::UdpSocket);

#[async_trait::async_trait]
impl Datagram for MemUdp {
    async fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        self.0.send(data).await
    }
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
    async fn connect(&self, peer: SocketAddr) -> std::io::Result<()> {
        self.0.connect(peer).await
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub(super) struct MemListener(pub(super) tokio::net::TcpListener);

#[async_trait::async_trait]
impl Listener for MemListener {
    async fn accept(&self) -> std::io::Result<(Box<dyn NetStream>, SocketAddr, SocketAddr)> {
        let (s, peer) = self.0.accept().await?;
        let local = s.local_addr()?;
        Ok((Box::new(s), local, peer))
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub(super) fn v(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

pub(super) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Run `src` on `shell`: the exit status.
pub(super) fn sh_on(shell: &Mem, src: &str) -> i32 {
    let script = Script::parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    block_on(run(&script, shell))
}

/// Run `src` on a fresh shell: (status, stdout, stderr).
pub(super) fn sh(src: &str) -> (i32, String, String) {
    let m = Mem::new();
    let code = sh_on(&m, src);
    (code, m.out(), m.err())
}

#[test]
fn liveness_exec_example() {
    let m = Mem {
        probe_every: Some(5.0),
        ..Mem::new()
    };
    let script = from_command(&v(&[
        "/bin/sh",
        "-c",
        "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600",
    ]))
    .unwrap();
    let code = block_on(run(&script, &m));
    assert_eq!(code, 0);
    assert_eq!(
        *m.sleeps.lock().unwrap(),
        vec![(0.0, 30.0, true), (30.0, 600.0, false)]
    );
    assert_eq!(*m.clock.lock().unwrap(), 630.0);
    assert!(!m.exists("/tmp/healthy"));
    let probes = m.probes.lock().unwrap().clone();
    assert!(probes.len() > 100);
    for (t, code) in probes {
        assert_eq!(code, if t < 30.0 { 0 } else { 1 }, "probe at {t}");
    }
    assert_eq!(m.out(), "");
    assert_eq!(m.err(), "");
}

#[test]
fn exit_statuses() {
    assert_eq!(sh("exit 1").0, 1);
    assert_eq!(sh("exit").0, 0);
    assert_eq!(sh("false; exit").0, 1);
    assert_eq!(sh("exit 256").0, 0);
    assert_eq!(sh("exit 3; echo no"), (3, String::new(), String::new()));
    assert_eq!(
        sh("exit abc"),
        (2, String::new(), "sh: exit: Illegal number: abc\n".into())
    );
    assert_eq!(sh("true; false").0, 1);
    assert_eq!(sh("false; true").0, 0);
    assert_eq!(sh("").0, 0);
    assert_eq!(sh("# only a comment\n").0, 0);
    assert_eq!(sh("! true").0, 1);
    assert_eq!(sh("! false").0, 0);
    assert_eq!(sh("false; echo $?; true; echo $?").1, "1\n0\n");
}

#[test]
fn test_and_or() {
    let m = Mem::new();
    assert_eq!(sh_on(&m, "test -f /tmp/x && echo yes || echo no"), 0);
    assert_eq!(m.out(), "no\n");
    m.put("/tmp/x", "");
    sh_on(&m, "test -f /tmp/x && echo yes || echo no");
    assert_eq!(m.out(), "no\nyes\n");
    sh_on(&m, "[ -e /tmp/x ] && [ ! -s /tmp/x ] && echo empty");
    assert_eq!(m.out(), "no\nyes\nempty\n");
    assert_eq!(sh("false && echo a || echo b").1, "b\n");
    assert_eq!(sh("true || echo a && echo b").1, "b\n");
    assert_eq!(sh("false || false || echo c").1, "c\n");
}

#[test]
fn test_builtin() {
    let t = |s: &str| sh(s).0;
    assert_eq!(t("[ a = a ]"), 0);
    assert_eq!(t("[ a != a ]"), 1);
    assert_eq!(t("[ a == a ]"), 0);
    assert_eq!(t("[ ! -e /nope ]"), 0);
    assert_eq!(t("[ -z '' ]"), 0);
    assert_eq!(t("[ -n '' ]"), 1);
    assert_eq!(t("[ -n ]"), 0);
    assert_eq!(t("[ ]"), 1);
    assert_eq!(t("[ 3 -lt 10 ]"), 0);
    assert_eq!(t("[ 10 -le 3 ]"), 1);
    assert_eq!(t("[ -d /tmp ]"), 0);
    assert_eq!(t("[ -d /tmp -a -f /tmp/x ]"), 1);
    assert_eq!(t("[ -d /tmp -o -f /tmp/x ]"), 0);
    assert_eq!(t("[ \\( a = b \\) -o b = b ]"), 0);
    assert_eq!(t("[ ! a = b ]"), 0);
    assert_eq!(t("test ! = x"), 1);
    assert_eq!(t("[ x -a '' ]"), 1);
    assert_eq!(
        sh("[ abc -eq 1 ]"),
        (2, String::new(), "sh: abc: bad number\n".into())
    );
    assert_eq!(sh("[ a = a"), (2, String::new(), "sh: missing ]\n".into()));
    assert_eq!(sh("[ a b ]").0, 2);
    assert_eq!(t("X=5; [ \"$X\" -gt 4 ]"), 0);
}

#[test]
fn while_and_until_loops() {
    let m = Mem::new();
    let code = sh_on(
        &m,
        "n=\nwhile [ \"$n\" != xxx ]; do\n  n=\"${n}x\"\n  echo -n x >> /tmp/count\ndone\ncat /tmp/count; echo",
    );
    assert_eq!(code, 0);
    assert_eq!(m.out(), "xxx\n");
    let m = Mem::new();
    sh_on(
        &m,
        "until [ -f /tmp/c3 ]; do if [ -f /tmp/c2 ]; then touch /tmp/c3; elif [ -f /tmp/c1 ]; then touch /tmp/c2; \
         else touch /tmp/c1; fi; echo tick >> /tmp/log; sleep 1; done",
    );
    assert_eq!(m.file("/tmp/log").unwrap(), b"tick\ntick\ntick\n");
    assert_eq!(*m.clock.lock().unwrap(), 3.0);
    // break / continue, and a loop's status.
    assert_eq!(
        sh("while true; do echo once; break; done; echo after").1,
        "once\nafter\n"
    );
    assert_eq!(
        sh("for i in 1 2 3; do for j in a b; do [ $j = b ] && continue 2; echo $i$j; done; done").1,
        "1a\n2a\n3a\n"
    );
    assert_eq!(
        sh("for i in 1 2 3; do [ $i = 2 ] && break; echo $i; done").1,
        "1\n"
    );
    assert_eq!(sh("while false; do :; done").0, 0);
    assert_eq!(sh("for i in a; do false; done").0, 1);
    assert_eq!(sh("break; continue; echo ok").1, "ok\n");
}

#[test]
fn redirections() {
    let m = Mem::new();
    sh_on(&m, "echo a > /tmp/f; echo b >> /tmp/f; cat /tmp/f");
    assert_eq!(m.out(), "a\nb\n");
    assert_eq!(m.file("/tmp/f").unwrap(), b"a\nb\n");
    sh_on(&m, "echo c > /tmp/f");
    assert_eq!(m.file("/tmp/f").unwrap(), b"c\n");
    // 2>&1 then > /dev/null: the error goes to the old stdout.
    let (code, out, err) = sh("cat /nope 2>&1 > /dev/null");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "cat: can't open '/nope': No such file or directory\n",
            ""
        )
    );
    let m = Mem::new();
    sh_on(
        &m,
        "cat /nope > /tmp/o 2>&1; echo hidden > /dev/null; echo to-err >&2; echo x 1>/dev/null",
    );
    assert_eq!(
        m.file("/tmp/o").unwrap(),
        b"cat: can't open '/nope': No such file or directory\n"
    );
    assert_eq!(m.out(), "");
    assert_eq!(m.err(), "to-err\n");
    let (code, _, err) = sh("echo x > /nodir/f");
    assert_eq!(
        (code, err.as_str()),
        (1, "sh: can't create /nodir/f: nonexistent directory\n")
    );
    let (code, _, err) = sh("echo x > /tmp");
    assert_eq!(
        (code, err.as_str()),
        (1, "sh: can't create /tmp: Is a directory\n")
    );
    // Redirection of a compound command, and of nothing.
    let m = Mem::new();
    sh_on(
        &m,
        "for i in 1 2; do echo $i; done > /tmp/l; > /tmp/empty; echo err 2>/tmp/e >&2",
    );
    assert_eq!(m.file("/tmp/l").unwrap(), b"1\n2\n");
    assert_eq!(m.file("/tmp/empty").unwrap(), b"");
    assert_eq!(m.file("/tmp/e").unwrap(), b"err\n");
    let m = Mem::new();
    sh_on(&m, "F=/tmp/v; echo hi >\"$F\"; echo 2>/dev/null quiet");
    assert_eq!(m.file("/tmp/v").unwrap(), b"hi\n");
    assert_eq!(m.out(), "quiet\n");
}

#[test]
fn quoting_and_expansion() {
    let m = Mem {
        env: [("HOME".to_string(), "/root".to_string())].into(),
        ..Mem::new()
    };
    sh_on(
        &m,
        r#"X=1; echo 'a  b' "c  $X" d\ e; echo "$UNSET"x; echo '$X' "\$X" "a\"b" "it's"; echo $HOME ${HOME}/x"#,
    );
    assert_eq!(
        m.out(),
        "a  b c  1 d e\nx\n$X $X a\"b it's\n/root /root/x\n"
    );
    assert_eq!(
        sh("X='a b'; for w in $X; do echo \"[$w]\"; done").1,
        "[a]\n[b]\n"
    );
    assert_eq!(
        sh("X='a b'; for w in \"$X\"; do echo \"[$w]\"; done").1,
        "[a b]\n"
    );
    assert_eq!(
        sh("E=; for w in $E; do echo no; done; for w in \"$E\"; do echo \"[$w]\"; done").1,
        "[]\n"
    );
    assert_eq!(sh("echo ${U:-def} ${U-d2} ${#HOME}x; X=; echo ${X:-e} [${X-f}] ${X:+g}; Y=y; echo ${Y:+alt}").1, "def d2 0x\ne []\nalt\n");
    assert_eq!(sh("echo ${Z:=zed}; echo $Z").1, "zed\nzed\n");
    assert_eq!(
        sh("echo a\\\nb; echo \"line1\nline2\"").1,
        "ab\nline1\nline2\n"
    );
    assert_eq!(sh("echo $ $5 \"$\" a$").1, "$ $ a$\n");
    assert_eq!(sh("echo a#b # comment").1, "a#b\n");
    assert_eq!(sh("X=1 Y=2; echo $X$Y").1, "12\n");
    assert_eq!(sh("echo if then do; echo done").1, "if then do\ndone\n");
    // An environment variable unset by the script.
    let m = Mem {
        env: [("A".to_string(), "env".to_string())].into(),
        ..Mem::new()
    };
    sh_on(&m, "echo $A; unset A; echo \"[$A]\"; export B=2; echo $B");
    assert_eq!(m.out(), "env\n[]\n2\n");
}

#[test]
fn positional_parameters() {
    let s = from_command(&v(&[
        "sh",
        "-c",
        "echo $0 $1 $# \"$@\"; for a; do echo \"<$a>\"; done",
        "zero",
        "one",
        "t w o",
    ]))
    .unwrap();
    let m = Mem::new();
    block_on(run(&s, &m));
    assert_eq!(m.out(), "zero one 2 one t w o\n<one>\n<t w o>\n");
    assert_eq!(sh("echo $0 $#").1, "sh 0\n");
}

#[test]
fn exec_probe() {
    let m = Mem::new();
    let (code, out, err) = block_on(exec(&v(&["cat", "/tmp/healthy"]), &m));
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "cat: can't open '/tmp/healthy': No such file or directory\n"
    );
    m.put("/tmp/healthy", "ok");
    assert_eq!(
        block_on(exec(&v(&["cat", "/tmp/healthy"]), &m)),
        (0, b"ok".to_vec(), Vec::new())
    );
    assert_eq!(block_on(exec(&v(&["/bin/cat", "/tmp/healthy"]), &m)).0, 0);
    // exec output is captured, not written to the container's log.
    assert_eq!(m.out(), "");
    // Arguments are not expanded.
    assert_eq!(
        block_on(exec(&v(&["echo", "$HOME", "*"]), &m)).1,
        b"$HOME *\n"
    );
    let (code, out, _) = block_on(exec(
        &v(&["sh", "-c", "test -f /tmp/healthy && echo up"]),
        &m,
    ));
    assert_eq!((code, out), (0, b"up\n".to_vec()));
    assert_eq!(block_on(exec(&v(&["/bin/sh", "-c", "exit 7"]), &m)).0, 7);
    assert_eq!(block_on(exec(&v(&["sh"]), &m)).0, 0);
    let (code, _, err) = block_on(exec(&v(&["sh", "-c", "echo ${X/a/b}"]), &m));
    assert_eq!(code, 2);
    assert!(String::from_utf8(err)
        .unwrap()
        .starts_with("sh: syntax error: parameter expansion ${VAR/...}"));
    let (code, _, err) = block_on(exec(&v(&["sh", "-c"]), &m));
    assert_eq!(
        (code, String::from_utf8(err).unwrap()),
        (2, "sh: sh: -c requires an argument\n".to_string())
    );
    assert_eq!(block_on(exec(&v(&["busybox", "true"]), &m)).0, 0);
}

#[test]
fn unknown_commands() {
    let m = Mem::new();
    let (code, out, err) = block_on(exec(&v(&["curl", "-s", "http://x"]), &m));
    assert_eq!(
        (code, out, String::from_utf8(err).unwrap()),
        (127, Vec::new(), "sh: curl: not found\n".to_string())
    );
    assert_eq!(block_on(exec(&v(&["exit", "1"]), &m)).0, 127);
    assert_eq!(block_on(exec(&[], &m)).0, 127);
    let (code, out, err) = sh("nosuch arg; echo $?");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "127\n", "sh: nosuch: not found\n")
    );
    assert_eq!(sh("/opt/app/run").0, 127);
    assert_eq!(sh("/bin/echo hi").1, "hi\n");
}

#[test]
fn parse_errors() {
    let e = |s: &str| Script::parse(s).unwrap_err();
    assert_eq!(
        e("echo ${X/a/b}"),
        ParseError::Unsupported {
            construct: "parameter expansion ${VAR/...}".into(),
            at: 5
        }
    );
    assert!(e("echo \"x ${X:1}\"").to_string().contains("${VAR:...}"));
    assert!(matches!(
        e("echo `date; cat <&3`"),
        ParseError::Unsupported { at: 16, .. }
    ));
    assert_eq!(
        e("do echo; done"),
        ParseError::UnexpectedToken {
            token: "do".into(),
            at: 0
        }
    );
    assert_eq!(
        e("echo a; done"),
        ParseError::UnexpectedToken {
            token: "done".into(),
            at: 8
        }
    );
    assert_eq!(
        e("while true; echo"),
        ParseError::UnexpectedEnd {
            expected: "\"do\"".into()
        }
    );
    assert_eq!(
        e("while true; do echo"),
        ParseError::UnexpectedEnd {
            expected: "\"done\"".into()
        }
    );
    assert_eq!(
        e("if true; then echo"),
        ParseError::UnexpectedEnd {
            expected: "\"fi\"".into()
        }
    );
    assert_eq!(
        e("if true; then fi"),
        ParseError::UnexpectedToken {
            token: "fi".into(),
            at: 14
        }
    );
    assert_eq!(
        e("if; then :; fi"),
        ParseError::UnexpectedToken {
            token: ";".into(),
            at: 2
        }
    );
    assert_eq!(
        e("echo 'abc"),
        ParseError::UnterminatedQuote { quote: '\'', at: 5 }
    );
    assert_eq!(
        e("echo \"abc"),
        ParseError::UnterminatedQuote { quote: '"', at: 5 }
    );
    assert!(matches!(e("a | "), ParseError::UnexpectedEnd { .. }));
    assert!(matches!(
        e("a | | b"),
        ParseError::UnexpectedToken { at: 4, .. }
    ));
    assert!(matches!(e("cat <&3"), ParseError::Unsupported { .. }));
    assert!(matches!(e("cat 3< /x"), ParseError::Unsupported { .. }));
    assert!(matches!(e("cat <<$X"), ParseError::Unsupported { .. }));
    assert!(matches!(e("umask 022"), ParseError::Unsupported { .. }));
    assert!(matches!(
        e("echo ${X"),
        ParseError::BadSubstitution { at: 5, .. }
    ));
    assert!(matches!(e("echo ${}"), ParseError::BadSubstitution { .. }));
    assert!(matches!(e("echo a 3> /x"), ParseError::Unsupported { .. }));
    assert!(matches!(e("echo a >& /x"), ParseError::Unsupported { .. }));
    assert!(matches!(e("echo a >"), ParseError::UnexpectedEnd { .. }));
    assert!(matches!(e("&& echo"), ParseError::UnexpectedToken { .. }));
    assert!(matches!(e("echo ;;"), ParseError::UnexpectedToken { .. }));
    assert!(matches!(e("echo )"), ParseError::UnexpectedToken { .. }));
    assert!(matches!(e("( echo"), ParseError::UnexpectedEnd { .. }));
    assert!(matches!(e("{ echo; "), ParseError::UnexpectedEnd { .. }));
    assert!(matches!(
        e("sleep 1 & ;"),
        ParseError::UnexpectedToken { .. }
    ));
    assert!(matches!(
        e("exit() { :; }"),
        ParseError::BadFunctionName { .. }
    ));
    assert!(matches!(e("f() }"), ParseError::UnexpectedToken { .. }));
    assert!(matches!(
        e("case x in a) echo; esac x"),
        ParseError::UnexpectedToken { .. }
    ));
    assert!(matches!(e("echo $((1"), ParseError::UnexpectedEnd { .. }));
    assert!(matches!(e("echo $((1)"), ParseError::Unsupported { .. }));
    assert!(matches!(
        e("if true; then :; fi foo"),
        ParseError::UnexpectedToken { .. }
    ));
    assert!(matches!(e("set -u"), ParseError::Unsupported { .. }));
    assert!(matches!(
        e("for 1x in a; do :; done"),
        ParseError::UnexpectedToken { .. }
    ));
    let deep = "if true; then ".repeat(MAX_DEPTH + 1);
    assert!(matches!(e(&deep), ParseError::TooDeep { .. }));
    // Still valid: quoted globs, X=* assignments, `!` in test, keywords as arguments.
    for ok in [
        "echo '*' \"?\"",
        "X=*; echo \"$X\"",
        "[ ! -f /x ]",
        "echo done fi",
        "for x in a b\ndo echo $x\ndone",
        "if true\nthen\n:\nfi",
        "echo } {",
        "x=$(case a in a) echo b;; esac)",
        "x=$( (echo a) )",
        "echo $(( (1 + 2) * 3 ))",
    ] {
        assert!(Script::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn cancellable() {
    let m = Mem {
        real_sleep: true,
        ..Mem::new()
    };
    let script = Script::parse("while true; do sleep 1; done").unwrap();
    let r =
        block_on(async { tokio::time::timeout(Duration::from_millis(30), run(&script, &m)).await });
    assert!(r.is_err());
    // A busy loop still yields, so it can be cancelled too (the fake sleep returns at once).
    let m = Mem::new();
    for src in [
        "while true; do :; done",
        "sleep infinity",
        "until false; do echo x > /tmp/y; done",
        "for i in 1; do while :; do continue; done; done",
    ] {
        let script = Script::parse(src).unwrap();
        let r = block_on(async {
            tokio::time::timeout(Duration::from_millis(20), run(&script, &m)).await
        });
        assert!(r.is_err(), "{src}");
    }
}

#[test]
fn run_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let m = Mem::new();
    let s = Script::parse("true").unwrap();
    assert_send(run(&s, &m));
    let argv = v(&["true"]);
    assert_send(exec(&argv, &m));
}

#[test]
fn from_command_forms() {
    let m = Mem::new();
    let s = from_command(&v(&["sleep", "3600"])).unwrap();
    assert_eq!(block_on(run(&s, &m)), 0);
    assert_eq!(m.sleeps.lock().unwrap().last().map(|s| s.1), Some(3600.0));
    assert!(from_command(&v(&["cat", "/x"])).is_ok());
    assert!(from_command(&v(&["/bin/sh", "-c", "true", "extra"])).is_ok());
    assert!(from_command(&v(&["busybox", "sh", "-c", "true"])).is_ok());
    assert_eq!(from_command(&[]), Err(ParseError::EmptyCommand));
    assert_eq!(
        from_command(&v(&["nginx", "-g"])),
        Err(ParseError::UnknownCommand {
            command: "nginx".into()
        })
    );
    assert!(matches!(
        from_command(&v(&["sh", "-c"])),
        Err(ParseError::BadInvocation { .. })
    ));
    assert!(matches!(
        from_command(&v(&["sh", "-z"])),
        Err(ParseError::BadInvocation { .. })
    ));
    assert!(matches!(
        from_command(&v(&["sh", "-c", "for"])),
        Err(ParseError::UnexpectedEnd { .. })
    ));
    // sh -e: errexit.
    let m = Mem::new();
    assert_eq!(
        block_on(run(
            &from_command(&v(&["sh", "-ec", "false; echo no"])).unwrap(),
            &m
        )),
        1
    );
    assert_eq!(m.out(), "");
    // sh FILE: a script mounted into the container.
    let m = Mem::new();
    m.put("/scripts/run.sh", "#!/bin/sh\necho from file $1\nexit 4\n");
    let s = from_command(&v(&["sh", "/scripts/run.sh", "arg"])).unwrap();
    assert_eq!(block_on(run(&s, &m)), 4);
    assert_eq!(m.out(), "from file arg\n");
    let (code, _, err) = block_on(exec(&v(&["sh", "/nope.sh"]), &m));
    assert_eq!(
        (code, String::from_utf8(err).unwrap()),
        (
            2,
            "sh: can't open '/nope.sh': No such file or directory\n".into()
        )
    );
    // Empty `sh` reads an empty stdin.
    assert_eq!(block_on(run(&from_command(&v(&["sh"])).unwrap(), &m)), 0);
}

#[test]
fn set_e_and_x() {
    assert_eq!(
        sh("set -e; false; echo no"),
        (1, String::new(), String::new())
    );
    assert_eq!(sh("set -e; false || true; echo yes").1, "yes\n");
    assert_eq!(
        sh("set -e; if false; then :; fi; ! true; false && true; echo yes").1,
        "yes\n"
    );
    assert_eq!(sh("set -e; while false; do :; done; echo yes").1, "yes\n");
    assert_eq!(sh("set -e; set +e; false; echo yes").1, "yes\n");
    assert_eq!(sh("set -x; echo hi").2, "+ echo hi\n");
}

#[test]
fn nested_shell() {
    let (code, out, _) = sh("X=1; export Y=2; Z=3 sh -c 'echo \"[$X][$Y][$Z]\"; exit 5'; echo $?");
    assert_eq!((code, out.as_str()), (0, "[][2][3]\n5\n"));
    let m = Mem::new();
    m.put("/s.sh", "sh /s.sh");
    assert_eq!(sh_on(&m, "sh /s.sh"), 2);
    assert!(m.err().contains("nested too deeply"));
    let (code, _, err) = sh("sh -c 'echo ${x/a/b}'");
    assert_eq!(code, 2);
    assert!(err.starts_with("sh: syntax error:"));
    // exec captures a nested shell's output too.
    let m = Mem::new();
    let (code, out, _) = block_on(exec(
        &v(&["sh", "-c", "sh -c 'echo inner'; echo outer"]),
        &m,
    ));
    assert_eq!((code, out), (0, b"inner\nouter\n".to_vec()));
    assert_eq!(m.out(), "");
}

#[test]
fn file_commands() {
    let m = Mem::new();
    assert_eq!(sh_on(&m, "mkdir /data && mkdir -p /data/a/b && touch /data/a/b/f && [ -d /data/a/b ] && [ -f /data/a/b/f ]"), 0);
    assert_eq!(sh_on(&m, "mkdir /data"), 1);
    assert_eq!(
        m.err(),
        "mkdir: can't create directory '/data': File exists\n"
    );
    assert_eq!(sh_on(&m, "mkdir -p /data/a"), 0);
    assert_eq!(sh_on(&m, "mkdir /x/y"), 1);
    assert_eq!(sh_on(&m, "touch /nodir/f"), 1);
    assert!(m
        .err()
        .ends_with("touch: /nodir/f: No such file or directory\n"));
    assert_eq!(sh_on(&m, "rm /data/a"), 1);
    assert!(m
        .err()
        .ends_with("rm: can't remove '/data/a': Is a directory\n"));
    assert_eq!(sh_on(&m, "rm /data/nope"), 1);
    assert!(m
        .err()
        .ends_with("rm: can't remove '/data/nope': No such file or directory\n"));
    assert_eq!(sh_on(&m, "rm -f /data/nope"), 0);
    assert_eq!(sh_on(&m, "rm -rf /data/a && [ ! -e /data/a/b/f ]"), 0);
    assert_eq!(sh_on(&m, "rm -x /data"), 1);
    // Relative paths resolve against /.
    assert_eq!(sh_on(&m, "touch rel && [ -f /rel ] && cat ./rel ../rel"), 0);
    let m = Mem::new();
    sh_on(
        &m,
        "mkdir /d; touch /d/b /d/a /d/.h; ls /d; ls -a /d; ls /nope",
    );
    assert_eq!(m.out(), "a\nb\n.\n..\n.h\na\nb\n");
    assert_eq!(m.err(), "ls: /nope: No such file or directory\n");
    assert_eq!(sh("cat /tmp").2, "cat: read error: Is a directory\n");
    assert_eq!(sh("cat /dev/null; [ -e /dev/null ]").0, 0);
}

#[test]
fn echo_printf_sleep_date() {
    assert_eq!(sh("echo -n a; echo b").1, "ab\n");
    assert_eq!(
        sh("echo -e 'a\\tb\\n'; echo 'a\\tb'; echo -e 'x\\cy'; echo -n -- -n").1,
        "a\tb\n\na\\tb\nx-- -n"
    );
    assert_eq!(sh("echo -e '\\0101'").1, "A\n");
    assert_eq!(sh("printf '%s-%s\\n' a b c").1, "a-b\nc-\n");
    assert_eq!(sh("printf 'x%5sy%-3sz\\n' ab c").1, "x   abyc  z\n");
    assert_eq!(
        sh("printf '%d %05d %x %o %c %%\\n' 42 -7 255 8 hello").1,
        "42 -0007 ff 10 h %\n"
    );
    assert_eq!(sh("printf '%.2f|%b\\n' 3.14159 'a\\nb'").1, "3.14|a\nb\n");
    assert_eq!(sh("printf 'no newline'").1, "no newline");
    assert_eq!(
        sh("printf '%d\\n' abc"),
        (1, "0\n".into(), "printf: invalid number 'abc'\n".into())
    );
    assert_eq!(sh("printf '%q'").0, 1);
    assert_eq!(sh("printf '\\101\\n'").1, "A\n");
    let m = Mem::new();
    assert_eq!(sh_on(&m, "sleep 0.5 1m 2; sleep 1.5s"), 0);
    let slept: Vec<f64> = m.sleeps.lock().unwrap().iter().map(|s| s.1).collect();
    assert_eq!(slept, vec![62.5, 1.5]);
    assert_eq!(
        sh("sleep abc"),
        (1, String::new(), "sleep: invalid number 'abc'\n".into())
    );
    assert_eq!(sh("sleep nan").0, 1);
    assert_eq!(sh("sleep -1").0, 1);
    let m = Mem {
        now: 1_700_000_000,
        ..Mem::new()
    };
    sh_on(&m, "date; date +%s; date -u '+%F %T %j'; date -I");
    assert_eq!(
        m.out(),
        "Tue Nov 14 22:13:20 UTC 2023\n1700000000\n2023-11-14 22:13:20 318\n2023-11-14\n"
    );
    assert_eq!(sh("date").1, "Thu Jan  1 00:00:00 UTC 1970\n");
}

/// The deepest nesting the limits allow runs without exhausting the stack.
#[test]
fn deep_nesting_runs() {
    let depth = MAX_DEPTH;
    let body = format!(
        "{}echo deep; sh /s.sh{}",
        "if true; then ".repeat(depth),
        "; fi".repeat(depth)
    );
    let m = Mem::new();
    m.put("/s.sh", &body);
    assert_eq!(sh_on(&m, "sh /s.sh"), 2);
    assert_eq!(m.out(), "deep\n".repeat(MAX_SH_NESTING));
    let deep_test = format!(
        "[ {} x {} ]",
        "\\( ".repeat(MAX_TEST_DEPTH),
        "\\) ".repeat(MAX_TEST_DEPTH)
    );
    assert_eq!(sh(&deep_test).0, 0);
    let too_deep = format!(
        "[ {} x {} ]",
        "\\( ".repeat(MAX_TEST_DEPTH + 1),
        "\\) ".repeat(MAX_TEST_DEPTH + 1)
    );
    assert_eq!(sh(&too_deep).0, 2);
    assert_eq!(sh(&format!("[ {} x ]", "! ".repeat(10_001))).0, 1);
}

/// Arbitrary input never panics, and whatever parses runs (cancelled by a timeout).
#[test]
fn no_panics() {
    let pieces = [
        "echo",
        " ",
        "'",
        "\"",
        "$",
        "{",
        "}",
        "(",
        ")",
        ";",
        "\n",
        "&&",
        "||",
        "|",
        "&",
        ">",
        ">>",
        "2>&1",
        "<",
        "if",
        "then",
        "else",
        "fi",
        "while",
        "do",
        "done",
        "for",
        "in",
        "x",
        "[",
        "]",
        "-f",
        "!",
        "=",
        "\\",
        "#",
        "${X:-",
        "$?",
        "sleep",
        "1",
        "exit",
        "é",
        "`",
        "*",
        "break",
        "test",
        "printf",
        "%",
        "%d",
        "-e",
        "set",
        "X=",
        "rm",
        "-rf",
        "/",
        "..",
        "cat",
        "sh",
        "-c",
        "0",
        "9999999999999999999999",
        ":",
        "until",
        "elif",
        "$(",
        "<<",
        "<<-",
        "EOF",
        "0<",
        "tar",
        "cf",
        "xf",
        "-tv",
        "-C",
        "head",
        "-n",
        "tail",
        "-c+2",
        "-f",
        "grep",
        "-E",
        "[[:a",
        "\\(",
        "kill",
        "-l",
        "read",
        "wc",
        "tee",
        "sort",
        "uniq",
        "cut",
        "-d:",
        "tr",
        "a-z",
        "seq",
        "env",
        "hostname",
        "case",
        "esac",
        ";;",
        "$((",
        "))",
        "+",
        "[[",
        "]]",
        "trap",
        "TERM",
        "wait",
        "$!",
        "eval",
        "f()",
        "function",
        "local",
        "return",
        "shift",
        "cd",
        "exec",
        "${X#",
        "${X%%",
        "~",
        "?",
        "awk",
        "'{print $1}'",
        "df",
        "od",
        "hexdump",
        "-C",
        "stat",
        "sha256sum",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut parsed = 0;
    for _ in 0..4000 {
        let mut src = String::new();
        let n = (seed % 12) as usize + 1;
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            src.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            if seed.is_multiple_of(3) {
                src.push(' ');
            }
        }
        // Every prefix (by character) too.
        for (end, _) in src.char_indices() {
            let _ = Script::parse(&src[..end]);
        }
        if let Ok(script) = Script::parse(&src) {
            parsed += 1;
            let m = Mem::with_stdin(b"echo in\nx:y z\n\xff\xfe", 5);
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(2), run(&script, &m)).await
            });
        }
        let argv: Vec<String> = src.split(' ').map(str::to_string).collect();
        let m = Mem::with_stdin(src.as_bytes(), 7);
        let _ = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(2), exec(&argv, &m)).await
        });
        let _ = from_command(&argv);
    }
    assert!(parsed > 100, "only {parsed} parsed");
}
