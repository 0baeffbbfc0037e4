//! A real etcd (the Debian `etcd-server` package's) for a test: its own data directory and
//! loopback ports, killed and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the etcd binary is: `KUBESPEC_ETCD`, else `etcd` on the PATH.
fn etcd_binary() -> PathBuf {
    std::env::var_os("KUBESPEC_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// A free loopback port (the listener is closed again at once; etcd binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One etcd member, serving clients at [`Etcd::url`].
pub struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl Etcd {
    /// Start etcd and wait (at most 20 s) until it answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for etcd");
        Self::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> Self {
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(etcd_binary())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--name", "default"])
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start etcd ({e}): these tests need etcd 3.4+ on the PATH (Debian: \
                     apt-get install etcd-server etcd-client; .ci/run installs them), or its path \
                     in KUBESPEC_ETCD"
                )
            });
        let etcd = Self { child, dir, url };
        etcd.wait_ready();
        etcd
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &self.url, "endpoint", "health"])
                .output();
            if matches!(&health, Ok(out) if out.status.success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {} did not answer within 20s: {health:?}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The client URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `etcdctl ARGS` against this etcd; its stdout (the test fails if etcdctl does).
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url])
            .args(args)
            .output()
            .expect("etcdctl runs (Debian: apt-get install etcd-client)");
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
