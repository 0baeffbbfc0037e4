//! `kubespec up` as a user runs it, real kubectl binaries pointed at it, and the test's watches
//! on it.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kubespec::harness::timeline::State;

use super::Waits;

const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// The kubectl binary of a version (`1.27`), or a failure saying how to get it.
pub fn kubectl_binary(version: &str) -> PathBuf {
    let dir = std::env::var("KUBESPEC_KUBECTL_DIR").unwrap_or_else(|_| KUBECTL_DIR.to_string());
    let path = Path::new(&dir).join(format!("kubectl.{version}"));
    assert!(
        path.exists(),
        "kubectl {version} is missing at {}: these tests need the real kubectl binaries that the \
         google-cloud-cli Debian package ships side by side (kubectl.1.27 ... kubectl.1.33); install \
         google-cloud-cli with the 'kubectl' component, or set KUBESPEC_KUBECTL_DIR to a directory \
         holding kubectl.<version> binaries",
        path.display()
    );
    path
}

/// `kubespec up` as a user runs it, stopped when dropped.
pub struct Up {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    time_scale: f64,
}

impl Up {
    /// `kubespec up` with no nodes (the control plane alone).
    pub fn start() -> Self {
        Self::start_with(&["--nodes", "0"])
    }

    /// `kubespec up` with extra flags.
    pub fn start_with(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("kubespec"))
            .args(["up", "--port", "0"])
            .args(flags)
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubespec up starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("kubespec up prints its ready line within 30 s");
        assert!(
            line.starts_with("kubespec reference cluster ready at http://127.0.0.1:"),
            "{line}"
        );
        assert!(
            line.contains(&kubeconfig.display().to_string()),
            "the ready line names the kubeconfig: {line}"
        );
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(String::from)
            .expect("the ready line carries the URL");
        let time_scale = flags
            .iter()
            .position(|f| *f == "--time-scale")
            .and_then(|i| flags.get(i + 1)?.parse().ok())
            .unwrap_or(1.0);
        Self {
            child,
            dir,
            url,
            time_scale,
        }
    }

    /// The apiserver URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Watches on this cluster, on a runtime of their own.
    pub fn watch(&self) -> Watched {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let clock = kubespec::clock::Clock::new(self.time_scale);
        let waits = runtime.block_on(async {
            let client = kubespec::cluster::client_for(self.url()).unwrap();
            Waits::start(client, clock).await
        });
        Watched { runtime, waits }
    }
}

/// A synchronous test's watches on a `kubespec up` cluster (see [`Waits`]), with the runtime
/// they run on.
pub struct Watched {
    runtime: tokio::runtime::Runtime,
    waits: Waits,
}

impl Watched {
    /// Run `f` on the watches' runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// [`Waits::until`].
    pub fn until<T>(
        &self,
        within: Duration,
        what: &str,
        check: impl FnMut(&State) -> Result<T, String>,
    ) -> T {
        self.block_on(self.waits.until(within, what, check))
    }

    /// Wait until `check` succeeds (it may run kubectl): it runs now and again after every
    /// change the watches see, at most `within` of cluster time ([`Waits::until_async`]).
    pub fn until_ok<T>(
        &self,
        within: Duration,
        what: &str,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        self.block_on(
            self.waits
                .until_async(within, what, || std::future::ready(check())),
        )
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One kubectl version pointed at one cluster, with its own discovery cache.
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

pub struct Output {
    pub ok: bool,
    /// The exit code.
    #[allow(dead_code)]
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(version: &str, up: &Up) -> Self {
        Self {
            binary: kubectl_binary(version),
            kubeconfig: up.kubeconfig(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        self.run_full(args, envs, None)
    }

    /// Run with `stdin` as kubectl's standard input.
    #[allow(dead_code)]
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_full(args, &[], Some(stdin))
    }

    fn run_full(&self, args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        // Every kubectl run has a deadline: a command that hangs fails the test, it never stalls it.
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(Duration::from_secs(60));
        if let Some(stdin) = stdin {
            cmd.write_stdin(stdin.to_vec());
        }
        let out = cmd.output().expect("kubectl runs");
        if out.status.code().is_none() {
            panic!(
                "kubectl {} did not finish within 60 s (killed)",
                args.join(" ")
            );
        }
        Output {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.ok,
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Run now and after every change `watched` sees until stdout equals `expected`, at most
    /// `within` of cluster time.
    pub fn wait_for(&self, watched: &Watched, within: Duration, args: &[&str], expected: &str) {
        let what = format!("kubectl {} to print {expected:?}", args.join(" "));
        watched.until_ok(within, &what, || {
            let out = self.ok(args);
            if out.trim() == expected {
                Ok(())
            } else {
                Err(format!("it prints {out:?}"))
            }
        });
    }

    /// Wait (at most 10 minutes of cluster time) until `kubectl get pod <pod> --no-headers`
    /// shows each `(column, value)` of `want` (column 1 is READY, 2 STATUS).
    #[allow(dead_code)]
    pub fn wait_pod(&self, up: &Up, pod: &str, want: &[(usize, &str)]) {
        let watched = up.watch();
        let what = format!("pod {pod} with columns {want:?}");
        watched.until_ok(Duration::from_secs(600), &what, || {
            let row = self.ok(&["get", "pod", pod, "--no-headers"]);
            let cols: Vec<&str> = row.split_whitespace().collect();
            if want.iter().all(|(i, v)| cols.get(*i) == Some(v)) {
                Ok(())
            } else {
                Err(row)
            }
        });
    }

    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
}
