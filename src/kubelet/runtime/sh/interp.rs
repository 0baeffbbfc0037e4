//! The interpreter: runs a syntax tree against a [`Shell`], with lists, background jobs,
//! and-or lists, `!`, pipelines (their stages run at once, each in a subshell), compound
//! commands, functions, redirections, command substitutions, traps, and simple commands
//! (expansion, assignments, `exit`, `break`, `continue`, then the function, builtin or utility).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;

use super::ast::{
    split_assignment, AndOr, CaseArm, Command, Compound, Conn, List, Pipeline, Redir, RedirTarget,
    Simple, Word,
};
use super::invocation::command_name;
use super::io::{Data, Pipe, MAX_BUFFER, PIPE_HIGH_WATER};
pub(super) use super::io::{Fds, Sink, Source};
use super::jobs::{Jobs, Signals, SIGINT};
use super::{Script, Shell, MAX_RUN_DEPTH};

/// Directories of the busybox image that always exist.
const IMAGE_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/dev",
    "/etc",
    "/home",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/var",
    "/var/log",
    "/var/run",
    "/var/tmp",
];

/// Special builtins of the subset (assignments before them persist; no function hides them).
pub(super) const SPECIAL_BUILTINS: &[&str] = &[
    ":", "exit", "break", "continue", "export", "readonly", "unset", "set", "return", "eval",
    "exec", ".", "source", "shift", "trap", "local",
];

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How control leaves a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Flow {
    Next,
    Break(usize),
    Continue(usize),
    Exit(i32),
    /// `return N`: leave the function (outside one, the script) with status N.
    Return(i32),
}

/// What a loop does with a command's flow.
enum LoopCtl {
    Go,
    BreakLoop,
    ContinueLoop,
    Leave(Flow),
}

fn loop_ctl(f: Flow) -> LoopCtl {
    match f {
        Flow::Next => LoopCtl::Go,
        Flow::Break(n) if n <= 1 => LoopCtl::BreakLoop,
        Flow::Break(n) => LoopCtl::Leave(Flow::Break(n - 1)),
        Flow::Continue(n) if n <= 1 => LoopCtl::ContinueLoop,
        Flow::Continue(n) => LoopCtl::Leave(Flow::Continue(n - 1)),
        f @ (Flow::Exit(_) | Flow::Return(_)) => LoopCtl::Leave(f),
    }
}

/// Status of a subshell stopped by a write to a pipe whose reader has finished (SIGPIPE).
pub(super) const SIGPIPE_STATUS: i32 = 128 + 13;

/// The captured (stdout, stderr) of an [`exec`](super::exec), shared by the subshells of its
/// pipelines.
pub(super) type Capture = Arc<Mutex<(Vec<u8>, Vec<u8>)>>;

/// A variable made local: its name, the value to restore (None: no shell variable; Some(None):
/// unset) and whether it was exported.
pub(super) type SavedVar = (String, Option<Option<String>>, bool);

pub(super) struct Interp<'s> {
    pub(super) shell: &'s dyn Shell,
    /// Shell variables; None: unset (hiding the environment).
    pub(super) vars: BTreeMap<String, Option<String>>,
    pub(super) exported: BTreeSet<String>,
    /// `$0`, `$1`, ...
    pub(super) args: Vec<String>,
    pub(super) status: i32,
    pub(super) errexit: bool,
    pub(super) xtrace: bool,
    loops: usize,
    pub(super) nesting: usize,
    /// Captured (stdout, stderr) instead of the Shell's.
    pub(super) capture: Option<Capture>,
    /// Why the running command's output could not be written to a file (a full disk): the
    /// command then fails, as a write error fails it on a real node.
    write_error: Option<String>,
    /// A write went to a pipe whose reader has finished: this (sub)shell stops.
    pub(super) sigpipe: bool,
    /// Bytes of the Shell's standard input read but given back (by `read`), shared with
    /// subshells and nested shells.
    pub(super) stdin_pushback: Arc<Mutex<Vec<u8>>>,
    /// Status of the last command substitution of the running simple command.
    subst_status: Option<i32>,
    /// Run as a program of its own (an exec of `kill ...`), not as a shell builtin: messages
    /// name the program rather than `sh`.
    pub(super) direct: bool,
    /// The container's environment is hidden (`env -i`).
    pub(super) no_env: bool,
    /// Nesting units in use (see [`MAX_RUN_DEPTH`]), this shell's ancestors' included.
    pub(super) depth: usize,
    /// The current directory (absolute, normalized).
    pub(super) cwd: String,
    /// Functions by name.
    pub(super) functions: BTreeMap<String, Arc<Command>>,
    /// The variables made local in each running function, innermost last, with the values to
    /// restore (None: unset; the flag: exported).
    pub(super) locals: Vec<Vec<SavedVar>>,
    /// Trap actions by signal (0: EXIT); "" ignores the signal.
    pub(super) traps: BTreeMap<i32, String>,
    /// The signals this shell receives: a container's main process only.
    pub(super) signals: Option<Arc<Signals>>,
    /// While a trap action runs: the status before it (`exit` without operand uses it).
    pub(super) trap_status: Option<i32>,
    /// The background jobs of the whole script.
    pub(super) jobs: Arc<Jobs<'s>>,
    /// This shell's identity among the jobs' owners.
    pub(super) owner: u64,
    /// `$!`.
    pub(super) last_job: Option<i64>,
    /// `set -f`: no pathname expansion.
    pub(super) noglob: bool,
    /// An expansion failed (`${X?}`, arithmetic): the shell exits with status 2 once the
    /// command's expansion is done.
    pub(super) expand_failed: bool,
    /// The last exit was an error's (an interactive shell goes on).
    pub(super) raised: bool,
    /// File descriptors made permanent by `exec` without a command.
    pub(super) exec_fds: Option<Fds>,
    /// `test` runs as `[[ ]]`.
    pub(super) bash_test: bool,
    /// The `sh` this shell runs next is the process itself (`sh FILE` as a container's
    /// command, `exec sh`): it gets this shell's signals.
    pub(super) hands_signals: bool,
}

/// The absolute, normalized path of an operand (relative ones resolve against `cwd`); an empty
/// operand names nothing.
fn normalize(cwd: &str, path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    if path.starts_with('/') {
        super::super::normalize_path(path)
    } else {
        super::super::normalize_path(&format!("{cwd}/{path}"))
    }
}

pub(super) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

impl<'s> Interp<'s> {
    pub(super) fn new(
        shell: &'s dyn Shell,
        script: &Script,
        capture: Option<Capture>,
        nesting: usize,
    ) -> Self {
        let args = if script.args.is_empty() {
            vec!["sh".to_string()]
        } else {
            script.args.clone()
        };
        let jobs = Jobs::new();
        let owner = jobs.new_owner();
        Interp {
            shell,
            vars: BTreeMap::new(),
            exported: BTreeSet::new(),
            args,
            status: 0,
            errexit: script.errexit,
            xtrace: script.xtrace,
            loops: 0,
            nesting,
            capture,
            write_error: None,
            sigpipe: false,
            stdin_pushback: Arc::new(Mutex::new(Vec::new())),
            subst_status: None,
            direct: script.direct,
            no_env: false,
            depth: 0,
            cwd: "/".to_string(),
            functions: BTreeMap::new(),
            locals: Vec::new(),
            traps: BTreeMap::new(),
            signals: None,
            trap_status: None,
            jobs,
            owner,
            last_job: None,
            noglob: false,
            expand_failed: false,
            raised: false,
            exec_fds: None,
            bash_test: false,
            hands_signals: script.shell_file,
        }
    }

    /// Take `units` more nesting units; false (after saying so) past the limit.
    pub(super) fn enter(&mut self, units: usize, fds: &Fds) -> bool {
        if self.depth + units > MAX_RUN_DEPTH {
            self.err(fds, "sh: commands nested too deeply\n");
            return false;
        }
        self.depth += units;
        true
    }

    /// A subshell: a copy of this shell's state whose changes do not come back. Its traps are
    /// reset (ignored signals stay ignored) and it receives no signals.
    pub(super) fn fork(&self) -> Interp<'s> {
        Interp {
            shell: self.shell,
            vars: self.vars.clone(),
            exported: self.exported.clone(),
            args: self.args.clone(),
            status: self.status,
            errexit: self.errexit,
            xtrace: self.xtrace,
            loops: 0,
            nesting: self.nesting,
            capture: self.capture.clone(),
            write_error: None,
            sigpipe: false,
            stdin_pushback: Arc::clone(&self.stdin_pushback),
            subst_status: None,
            direct: false,
            no_env: self.no_env,
            depth: self.depth,
            cwd: self.cwd.clone(),
            functions: self.functions.clone(),
            locals: self.locals.clone(),
            traps: self
                .traps
                .iter()
                .filter(|(_, a)| a.is_empty())
                .map(|(s, a)| (*s, a.clone()))
                .collect(),
            signals: None,
            trap_status: None,
            jobs: Arc::clone(&self.jobs),
            owner: self.jobs.new_owner(),
            last_job: self.last_job,
            noglob: self.noglob,
            expand_failed: false,
            raised: false,
            exec_fds: self.exec_fds.clone(),
            bash_test: false,
            hands_signals: false,
        }
    }

    /// Run the script (this shell is the top of it: its background jobs run alongside).
    pub(super) async fn main(&mut self, script: &Script) -> i32 {
        let jobs = Arc::clone(&self.jobs);
        with_jobs(&jobs, self.main_inner(script)).await
    }

    async fn main_inner(&mut self, script: &Script) -> i32 {
        let fds = Fds::base();
        if let Some(s) = &self.signals {
            if !script.from_stdin && !script.direct {
                s.set_int_exits();
            }
        }
        if script.from_stdin {
            return self.read_commands(&fds, None).await & 255;
        }
        let flow = self.list(&script.body, &fds, false).await;
        self.finish(flow, &fds).await
    }

    /// The end of this shell (or subshell) after `flow`: its EXIT trap runs; the exit status.
    pub(super) async fn finish(&mut self, flow: Flow, fds: &Fds) -> i32 {
        let code = match flow {
            Flow::Exit(c) | Flow::Return(c) => c,
            _ => self.status,
        } & 255;
        if let Some(action) = self.traps.remove(&0) {
            if !action.is_empty() {
                self.status = code;
                self.trap_status = Some(code);
                let fds = self.exec_fds.clone().unwrap_or_else(|| fds.clone());
                let f = self.eval_string(&action, &fds).await;
                self.trap_status = None;
                if let Flow::Exit(c) = f {
                    return c & 255;
                }
            }
        }
        code
    }

    /// Act on the signals that arrived, if any.
    pub(super) async fn check_traps(&mut self, fds: &Fds) -> Flow {
        if self.signals.as_ref().is_some_and(|s| s.pending()) {
            Box::pin(self.run_traps(fds)).await
        } else {
            Flow::Next
        }
    }

    /// Act on the signals that arrived: run their traps (a SIGINT without one stops the shell).
    async fn run_traps(&mut self, fds: &Fds) -> Flow {
        let Some(signals) = self.signals.clone() else {
            return Flow::Next;
        };
        if self.trap_status.is_some() {
            return Flow::Next;
        }
        while let Some(sig) = signals.take() {
            // A trap that signals its own shell must not keep the script from being cancelled.
            tokio::task::yield_now().await;
            let action = self.traps.get(&sig).cloned();
            let Some(action) = action else {
                if sig == SIGINT {
                    self.status = 130;
                    return Flow::Exit(130);
                }
                continue;
            };
            if action.is_empty() {
                continue;
            }
            let saved = self.status;
            self.trap_status = Some(saved);
            let f = self.eval_string(&action, fds).await;
            self.trap_status = None;
            if let Flow::Exit(_) = f {
                return f;
            }
            self.status = saved;
        }
        Flow::Next
    }

    /// Parse `src` and run it in this shell (`eval`, trap actions); a syntax error ends the
    /// shell with status 2.
    pub(super) async fn eval_string(&mut self, src: &str, fds: &Fds) -> Flow {
        match super::lexer::parse_list(src, 0, false) {
            Ok(body) => {
                if !self.enter(1, fds) {
                    return Flow::Exit(2);
                }
                let f = self.list(&body, fds, false).await;
                self.depth -= 1;
                f
            }
            Err(e) => {
                self.err(fds, &format!("sh: syntax error: {e}\n"));
                self.status = 2;
                self.raised = true;
                Flow::Exit(2)
            }
        }
    }

    // ----- output

    fn put(&mut self, sink: &Sink, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match sink {
            Sink::Out => match &self.capture {
                Some(c) => c.lock().0.extend_from_slice(data),
                None => self.shell.stdout(data),
            },
            Sink::Err => match &self.capture {
                Some(c) => c.lock().1.extend_from_slice(data),
                None => self.shell.stderr(data),
            },
            Sink::Null => {}
            Sink::File(p) => {
                if let Err(why) = self.shell.write(p, data, true) {
                    self.write_error.get_or_insert(why);
                }
            }
            Sink::Pipe(pipe) => {
                if !pipe.write(data) {
                    self.sigpipe = true;
                }
            }
            Sink::Buffer(buf) => {
                let mut b = buf.lock();
                if b.len().saturating_add(data.len()) > MAX_BUFFER {
                    self.sigpipe = true;
                } else {
                    b.extend_from_slice(data);
                }
            }
        }
    }

    pub(super) fn out(&mut self, fds: &Fds, data: &[u8]) {
        self.put(&fds.out, data);
    }

    pub(super) fn err(&mut self, fds: &Fds, msg: &str) {
        self.put(&fds.err, msg.as_bytes());
    }

    /// Write a possibly long output in pieces, letting a pipe's reader keep up.
    pub(super) async fn out_flow(&mut self, fds: &Fds, data: &[u8]) {
        for piece in data.chunks(PIPE_HIGH_WATER) {
            if self.sigpipe {
                return;
            }
            self.out(fds, piece);
            self.drain(fds).await;
        }
    }

    /// Wait while the pipe standard output goes to is full.
    pub(super) async fn drain(&self, fds: &Fds) {
        if let Sink::Pipe(p) = &fds.out {
            p.wait_writable().await;
        }
    }

    // ----- input

    /// The next bytes of standard input; None at its end.
    pub(super) async fn read_chunk(&mut self, src: &Source) -> Option<Vec<u8>> {
        match src {
            Source::Stdin => {
                let pushed = std::mem::take(&mut *self.stdin_pushback.lock());
                if !pushed.is_empty() {
                    return Some(pushed);
                }
                // A Shell that always has input at hand must not keep the script from being
                // cancelled.
                tokio::task::yield_now().await;
                loop {
                    match self.shell.read_stdin().await {
                        Some(c) if c.is_empty() => tokio::task::yield_now().await,
                        other => return other,
                    }
                }
            }
            Source::Null => None,
            Source::Pipe(p) => p.read().await,
            Source::Data(d) => Source::take_data(d),
        }
    }

    /// Give back bytes of standard input read but not used.
    pub(super) fn unread(&self, src: &Source, data: Vec<u8>) {
        src.unread_into(&self.stdin_pushback, data);
    }

    /// All of standard input, up to `limit` bytes (Err past it).
    pub(super) async fn read_all(&mut self, src: &Source, limit: usize) -> Result<Vec<u8>, ()> {
        let mut all = Vec::new();
        while let Some(c) = self.read_chunk(src).await {
            if all.len().saturating_add(c.len()) > limit {
                return Err(());
            }
            all.extend_from_slice(&c);
        }
        Ok(all)
    }

    // ----- filesystem views

    pub(super) fn path(&self, arg: &str) -> String {
        normalize(&self.cwd, arg)
    }

    pub(super) fn is_dir(&self, p: &str) -> bool {
        !p.is_empty() && (IMAGE_DIRS.contains(&p) || self.shell.is_dir(p))
    }

    pub(super) fn is_file(&self, p: &str) -> bool {
        !p.is_empty() && p != "/dev/null" && self.shell.is_file(p)
    }

    pub(super) fn exists(&self, p: &str) -> bool {
        !p.is_empty()
            && (p == "/dev/null" || self.is_dir(p) || self.shell.exists(p) || self.shell.is_file(p))
    }

    pub(super) fn read(&self, p: &str) -> Option<Vec<u8>> {
        if p == "/dev/null" {
            return Some(Vec::new());
        }
        if p.is_empty() {
            return None;
        }
        self.shell.read(p)
    }

    // ----- execution

    pub(super) fn list<'a>(
        &'a mut self,
        list: &'a List,
        fds: &'a Fds,
        cond: bool,
    ) -> BoxFut<'a, Flow> {
        Box::pin(async move {
            for item in &list.items {
                let exec_fds = self.exec_fds.clone();
                let fds = exec_fds.as_ref().unwrap_or(fds);
                let f = if item.background {
                    self.spawn_job(item, fds);
                    self.check_traps(fds).await
                } else {
                    self.and_or(item, fds, cond).await
                };
                if f != Flow::Next {
                    return f;
                }
            }
            Flow::Next
        })
    }

    /// Start an and-or list in the background, in a subshell reading nothing.
    fn spawn_job(&mut self, item: &AndOr, fds: &Fds) {
        let mut child = self.fork();
        // The runner polls a job from near the top of the stack.
        child.depth = 2;
        child.exec_fds = None;
        let item = Arc::new(item.clone());
        let mut job_fds = fds.clone();
        job_fds.inp = Source::Null;
        let job = async move {
            let item = item;
            let f = child.and_or(&item, &job_fds, false).await;
            child.finish(f, &job_fds).await
        };
        match self.jobs.spawn(self.owner, Box::pin(job)) {
            Some(pid) => {
                self.last_job = Some(pid);
                self.status = 0;
            }
            None => {
                self.err(fds, "sh: can't fork: Resource temporarily unavailable\n");
                self.status = 2;
            }
        }
    }

    async fn and_or(&mut self, ao: &AndOr, fds: &Fds, cond: bool) -> Flow {
        let n = ao.rest.len();
        let f = self.pipeline(&ao.first, fds, cond || n > 0).await;
        if f != Flow::Next {
            return f;
        }
        let mut last_ran = 0;
        let mut negated = ao.first.negate;
        for (i, (conn, p)) in ao.rest.iter().enumerate() {
            let go = match conn {
                Conn::And => self.status == 0,
                Conn::Or => self.status != 0,
            };
            if !go {
                continue;
            }
            let f = self.pipeline(p, fds, cond || i + 1 < n).await;
            if f != Flow::Next {
                return f;
            }
            last_ran = i + 1;
            negated = p.negate;
        }
        if !cond && self.status != 0 && last_ran == n && !negated {
            if self.traps.contains_key(&super::builtins::ERR_TRAP) {
                let f = Box::pin(self.err_trap(fds)).await;
                if f != Flow::Next {
                    return f;
                }
            }
            if self.errexit {
                return Flow::Exit(self.status);
            }
        }
        Flow::Next
    }

    /// A command failed where `set -e` would end the shell: the ERR trap runs.
    async fn err_trap(&mut self, fds: &Fds) -> Flow {
        let err_trap = self.traps.get(&super::builtins::ERR_TRAP).cloned();
        if let Some(action) = err_trap.filter(|a| !a.is_empty()) {
            if self.trap_status.is_none() {
                let saved = self.status;
                self.trap_status = Some(saved);
                let f = self.eval_string(&action, fds).await;
                self.trap_status = None;
                if let Flow::Exit(_) = f {
                    return f;
                }
                self.status = saved;
            }
        }
        Flow::Next
    }

    async fn pipeline(&mut self, p: &Pipeline, fds: &Fds, cond: bool) -> Flow {
        let f = match p.commands.as_slice() {
            [one] => self.command(one, fds, cond || p.negate).await,
            stages => {
                self.status = Box::pin(self.run_pipeline(stages, fds)).await;
                Flow::Next
            }
        };
        if p.negate && f == Flow::Next {
            self.status = if self.status == 0 { 1 } else { 0 };
        }
        if f == Flow::Next {
            return self.check_traps(fds).await;
        }
        f
    }

    // The futures of the commands are boxed where they are made, by plain functions: a debug
    // build's poll frames then hold pointers rather than whole futures, so nesting costs a
    // few KiB of stack a level (see MAX_RUN_DEPTH).

    fn command<'a>(&'a mut self, c: &'a Command, fds: &'a Fds, cond: bool) -> BoxFut<'a, Flow> {
        match c {
            Command::Simple(s) => Box::pin(self.simple(s, fds)),
            Command::FuncDef { name, body } => {
                self.functions.insert(name.clone(), Arc::clone(body));
                self.status = 0;
                Box::pin(std::future::ready(Flow::Next))
            }
            Command::Compound(c, redirs) => {
                Box::pin(self.compound_redirected(c, redirs, fds, cond))
            }
        }
    }

    fn redirect_boxed<'a>(
        &'a mut self,
        redirs: &'a [Redir],
        fds: &'a Fds,
    ) -> BoxFut<'a, Option<Fds>> {
        Box::pin(self.redirect(redirs, fds))
    }

    async fn compound_redirected(
        &mut self,
        c: &Compound,
        redirs: &[Redir],
        fds: &Fds,
        cond: bool,
    ) -> Flow {
        let redirected = if redirs.is_empty() {
            Some(fds.clone())
        } else {
            self.redirect_boxed(redirs, fds).await
        };
        if self.expand_failed {
            return self.raise();
        }
        let Some(fds) = redirected else {
            self.status = 1;
            return Flow::Next;
        };
        if !self.enter(1, &fds) {
            self.status = 2;
            return Flow::Exit(2);
        }
        // What `exec` makes permanent inside a redirected command ends with the redirection.
        let saved = if redirs.is_empty() {
            None
        } else {
            Some(self.exec_fds.take())
        };
        let f = self.compound(c, &fds, cond).await;
        if let Some(saved) = saved {
            self.exec_fds = saved;
        }
        self.depth -= 1;
        f
    }

    /// Run the stages of a pipeline at once, each in a subshell, stage i's standard output
    /// piped to stage i+1's standard input; the status of the last stage.
    async fn run_pipeline(&mut self, stages: &[Command], fds: &Fds) -> i32 {
        if !self.enter(1, fds) {
            return 2;
        }
        self.depth -= 1;
        let pipes: Vec<Arc<Pipe>> = (1..stages.len()).map(|_| Arc::new(Pipe::new())).collect();
        let mut running: Vec<BoxFut<'_, i32>> = Vec::new();
        for (i, cmd) in stages.iter().enumerate() {
            let input = i.checked_sub(1).and_then(|j| pipes.get(j)).cloned();
            let output = pipes.get(i).cloned();
            let mut stage_fds = fds.clone();
            if let Some(p) = &input {
                stage_fds.inp = Source::Pipe(Arc::clone(p));
            }
            if let Some(p) = &output {
                stage_fds.out = Sink::Pipe(Arc::clone(p));
            }
            let mut child = self.fork();
            child.depth += 1;
            child.exec_fds = None;
            running.push(Box::pin(async move {
                let f = child.command(cmd, &stage_fds, false).await;
                let code = child.finish(f, &stage_fds).await;
                if let Some(p) = output {
                    p.close_write();
                }
                if let Some(p) = input {
                    p.close_read();
                }
                code
            }));
        }
        let codes = futures::future::join_all(running).await;
        codes.last().copied().unwrap_or(0)
    }

    /// Run `body` in a subshell for a command substitution: its output, trailing newlines
    /// removed.
    pub(super) async fn command_subst(&mut self, body: &List, fds: &Fds) -> String {
        if !self.enter(2, fds) {
            self.subst_status = Some(2);
            return String::new();
        }
        self.depth -= 2;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut sub_fds = fds.clone();
        sub_fds.out = Sink::Buffer(Arc::clone(&buf));
        let mut child = self.fork();
        child.depth += 2;
        child.exec_fds = None;
        let f = child.list(body, &sub_fds, false).await;
        let code = child.finish(f, &sub_fds).await;
        self.subst_status = Some(code & 255);
        let mut out = std::mem::take(&mut *buf.lock());
        while out.last() == Some(&b'\n') {
            out.pop();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Apply redirections; None (after saying why) when one fails.
    async fn redirect(&mut self, redirs: &[Redir], fds: &Fds) -> Option<Fds> {
        let mut new = fds.clone();
        for r in redirs {
            let sink = match &r.target {
                RedirTarget::Dup(1) => new.out.clone(),
                RedirTarget::Dup(_) => new.err.clone(),
                RedirTarget::Input(word) => {
                    let target = self.expand_string(word, fds).await;
                    new.inp = match target.as_str() {
                        "/dev/null" => Source::Null,
                        "/dev/stdin" | "/dev/fd/0" => new.inp.clone(),
                        _ => {
                            let p = self.path(&target);
                            let data = if self.is_dir(&p) {
                                Some(Vec::new())
                            } else {
                                self.read(&p)
                            };
                            match data {
                                Some(d) => Source::Data(Arc::new(Data::new(d))),
                                None => {
                                    self.err(
                                        &new,
                                        &format!("sh: can't open {target}: no such file\n"),
                                    );
                                    return None;
                                }
                            }
                        }
                    };
                    continue;
                }
                RedirTarget::HereDoc(word) => {
                    let body = self.expand_string(word, fds).await;
                    new.inp = Source::Data(Arc::new(Data::new(body.into_bytes())));
                    continue;
                }
                RedirTarget::File { word, append } => {
                    let target = self.expand_string(word, fds).await;
                    match target.as_str() {
                        "/dev/null" => Sink::Null,
                        "/dev/stdout" | "/dev/fd/1" => new.out.clone(),
                        "/dev/stderr" | "/dev/fd/2" => new.err.clone(),
                        _ => {
                            let p = self.path(&target);
                            let why = if p.is_empty() || !self.is_dir(parent(&p)) {
                                // ash says this for ENOENT and ENOTDIR.
                                Some("nonexistent directory".to_string())
                            } else if self.is_dir(&p) {
                                Some("Is a directory".to_string())
                            } else {
                                self.shell.write(&p, b"", *append).err()
                            };
                            if let Some(why) = why {
                                self.err(&new, &format!("sh: can't create {target}: {why}\n"));
                                return None;
                            }
                            Sink::File(p)
                        }
                    }
                }
            };
            if r.fd == 2 {
                new.err = sink;
            } else {
                new.out = sink;
            }
        }
        Some(new)
    }

    /// `( list )`.
    async fn subshell(&mut self, body: &List, fds: &Fds, cond: bool) -> Flow {
        let mut child = Box::new(self.fork());
        child.exec_fds = None;
        child.loops = 0;
        let f = child.list(body, fds, cond).await;
        self.status = child.finish(f, fds).await;
        if child.sigpipe {
            self.sigpipe = true;
        }
        Flow::Next
    }

    /// `case word in ... esac`.
    async fn case(&mut self, word: &Word, arms: &[CaseArm], fds: &Fds, cond: bool) -> Flow {
        let subject = self.expand_string(word, fds).await;
        if self.expand_failed {
            return self.raise();
        }
        for arm in arms {
            for pat in &arm.patterns {
                let pattern = self.expand_pattern(pat, fds).await;
                if self.expand_failed {
                    return self.raise();
                }
                if super::glob::matches(&pattern, &subject) {
                    self.status = 0;
                    return self.list(&arm.body, fds, cond).await;
                }
            }
        }
        self.status = 0;
        Flow::Next
    }

    fn compound<'a>(&'a mut self, c: &'a Compound, fds: &'a Fds, cond: bool) -> BoxFut<'a, Flow> {
        match c {
            Compound::If {
                branches,
                otherwise,
            } => Box::pin(self.if_command(branches, otherwise.as_ref(), fds, cond)),
            Compound::Loop {
                until,
                cond: test,
                body,
            } => Box::pin(self.loop_command(*until, test, body, fds, cond)),
            Compound::For { var, items, body } => {
                Box::pin(self.for_command(var, items.as_deref(), body, fds, cond))
            }
            Compound::Group(body) => self.list(body, fds, cond),
            Compound::Subshell(body) => Box::pin(self.subshell(body, fds, cond)),
            Compound::Case { word, arms } => Box::pin(self.case(word, arms, fds, cond)),
        }
    }

    async fn if_command(
        &mut self,
        branches: &[(List, List)],
        otherwise: Option<&List>,
        fds: &Fds,
        cond: bool,
    ) -> Flow {
        for (test, body) in branches {
            let f = self.list(test, fds, true).await;
            if f != Flow::Next {
                return f;
            }
            if self.status == 0 {
                return self.list(body, fds, cond).await;
            }
        }
        match otherwise {
            Some(body) => self.list(body, fds, cond).await,
            None => {
                self.status = 0;
                Flow::Next
            }
        }
    }

    async fn loop_command(
        &mut self,
        until: bool,
        test: &List,
        body: &List,
        fds: &Fds,
        cond: bool,
    ) -> Flow {
        self.loops += 1;
        let mut last = 0;
        let flow = loop {
            tokio::task::yield_now().await;
            let f = self.list(test, fds, true).await;
            match loop_ctl(f) {
                LoopCtl::Go => {}
                LoopCtl::BreakLoop => {
                    last = 0;
                    break Flow::Next;
                }
                LoopCtl::ContinueLoop => continue,
                LoopCtl::Leave(f) => break f,
            }
            if (self.status == 0) == until {
                break Flow::Next;
            }
            let f = self.list(body, fds, cond).await;
            last = self.status;
            match loop_ctl(f) {
                LoopCtl::Go | LoopCtl::ContinueLoop => {}
                LoopCtl::BreakLoop => break Flow::Next,
                LoopCtl::Leave(f) => break f,
            }
        };
        self.loops -= 1;
        self.status = last;
        flow
    }

    fn expand_fields_boxed<'a>(
        &'a mut self,
        w: &'a Word,
        fds: &'a Fds,
        out: &'a mut Vec<String>,
    ) -> BoxFut<'a, ()> {
        Box::pin(self.expand_fields(w, fds, out))
    }

    async fn for_command(
        &mut self,
        var: &str,
        items: Option<&[Word]>,
        body: &List,
        fds: &Fds,
        cond: bool,
    ) -> Flow {
        let values = match items {
            Some(words) => {
                let mut v = Vec::new();
                for w in words {
                    self.expand_fields_boxed(w, fds, &mut v).await;
                }
                if self.expand_failed {
                    return self.raise();
                }
                v
            }
            None => self.args.iter().skip(1).cloned().collect(),
        };
        self.loops += 1;
        let mut last = 0;
        let mut flow = Flow::Next;
        for value in values {
            tokio::task::yield_now().await;
            self.set_var(var, value);
            let f = self.list(body, fds, cond).await;
            last = self.status;
            match loop_ctl(f) {
                LoopCtl::Go | LoopCtl::ContinueLoop => {}
                LoopCtl::BreakLoop => break,
                LoopCtl::Leave(f) => {
                    flow = f;
                    break;
                }
            }
        }
        self.loops -= 1;
        self.status = last;
        flow
    }

    /// A simple command's words and assignments, expanded.
    async fn expand_command(
        &mut self,
        cmd: &Simple,
        fds: &Fds,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let declaration = matches!(
            cmd.words.first().and_then(Word::literal).as_deref(),
            Some("export" | "readonly" | "local")
        );
        let mut argv = Vec::new();
        for (i, w) in cmd.words.iter().enumerate() {
            if declaration && i > 0 && split_assignment(w).is_some() {
                let s = self.expand_string(w, fds).await;
                argv.push(s);
            } else {
                self.expand_fields(w, fds, &mut argv).await;
            }
        }
        let mut assigns = Vec::new();
        for (name, w) in &cmd.assigns {
            let v = self.expand_assignment(w, fds).await;
            assigns.push((name.clone(), v));
        }
        (argv, assigns)
    }

    async fn simple(&mut self, cmd: &Simple, fds: &Fds) -> Flow {
        self.subst_status = None;
        let (argv, assigns) = Box::pin(self.expand_command(cmd, fds)).await;
        if self.expand_failed {
            return self.raise();
        }
        let Some(name) = argv.first().cloned() else {
            for (n, v) in assigns {
                self.set_var(&n, v);
            }
            let redirected = self.redirect_boxed(&cmd.redirs, fds).await.is_some();
            if self.expand_failed {
                return self.raise();
            }
            self.status = if redirected {
                self.subst_status.unwrap_or(0)
            } else {
                1
            };
            return self.after_command();
        };
        if self.xtrace {
            let mut line = String::from("+");
            for (n, v) in &assigns {
                line.push_str(&format!(" {n}={v}"));
            }
            for a in &argv {
                line.push(' ');
                line.push_str(a);
            }
            line.push('\n');
            self.err(fds, &line);
        }
        let redirected = self.redirect_boxed(&cmd.redirs, fds).await;
        if self.expand_failed {
            return self.raise();
        }
        let Some(fds) = redirected else {
            self.status = 1;
            return self.after_command();
        };
        let fds = &fds;
        let cmd_name = command_name(&name);
        let special = SPECIAL_BUILTINS.contains(&cmd_name);
        if special {
            for (n, v) in &assigns {
                self.set_var(n, v.clone());
            }
        }
        let args = argv.get(1..).unwrap_or(&[]);
        let status = match cmd_name {
            "exit" => {
                return match args.first() {
                    None => Flow::Exit(self.trap_status.unwrap_or(self.status)),
                    Some(a) => match a.parse::<i64>() {
                        Ok(n) if n >= 0 => Flow::Exit((n & 255) as i32),
                        _ => {
                            self.err(fds, &format!("sh: exit: Illegal number: {a}\n"));
                            self.raised = true;
                            Flow::Exit(2)
                        }
                    },
                };
            }
            "break" | "continue" => {
                let n = match args.first() {
                    None => 1,
                    Some(a) => match a.parse::<usize>() {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            self.err(fds, &format!("sh: {cmd_name}: Illegal number: {a}\n"));
                            self.status = 1;
                            return Flow::Next;
                        }
                    },
                };
                self.status = 0;
                if self.loops == 0 {
                    return Flow::Next;
                }
                let n = n.min(self.loops);
                return if cmd_name == "break" {
                    Flow::Break(n)
                } else {
                    Flow::Continue(n)
                };
            }
            _ => {
                let function = if special || name.contains('/') {
                    None
                } else {
                    self.functions.get(&name).cloned()
                };
                if let Some(body) = function {
                    match Box::pin(self.call_function(&body, &argv, &assigns, fds)).await {
                        Flow::Next => self.status,
                        f => return f,
                    }
                } else {
                    match Box::pin(self.shell_builtin(cmd_name, &argv, fds)).await {
                        Some(Flow::Next) => self.status,
                        Some(f) => return f,
                        None => {
                            self.run_command(cmd_name, &name, &argv, &assigns, fds)
                                .await
                        }
                    }
                }
            }
        };
        let status = match self.write_error.take() {
            Some(why) => {
                self.err(fds, &format!("sh: write error: {why}\n"));
                // The message may have failed to go to the same full file: that is not the
                // next command's failure.
                self.write_error = None;
                1
            }
            None => status,
        };
        self.status = status & 255;
        self.drain(fds).await;
        self.after_command()
    }

    /// Run function `body` with `argv` (its name first) as its positional parameters and
    /// `assigns` as its local variables.
    async fn call_function(
        &mut self,
        body: &Command,
        argv: &[String],
        assigns: &[(String, String)],
        fds: &Fds,
    ) -> Flow {
        if !self.enter(1, fds) {
            self.status = 2;
            return Flow::Exit(2);
        }
        let mut args = vec![self.args.first().cloned().unwrap_or_default()];
        args.extend(argv.iter().skip(1).cloned());
        let saved_args = std::mem::replace(&mut self.args, args);
        self.locals.push(Vec::new());
        for (n, v) in assigns {
            self.make_local(n, Some(v.clone()));
            self.exported.insert(n.clone());
        }
        let f = self.command(body, fds, false).await;
        self.pop_locals();
        self.args = saved_args;
        self.depth -= 1;
        match f {
            Flow::Return(c) => {
                self.status = c & 255;
                Flow::Next
            }
            f => f,
        }
    }

    /// Make `name` local to the running function (saving its value), then set it to `value`
    /// (None: unset it, as ash's `local NAME` does).
    pub(super) fn make_local(&mut self, name: &str, value: Option<String>) {
        let saved = self.vars.get(name).cloned();
        let exported = self.exported.contains(name);
        if let Some(frame) = self.locals.last_mut() {
            if frame.iter().any(|(n, _, _)| n == name) {
                if let Some(v) = value {
                    self.vars.insert(name.to_string(), Some(v));
                }
                return;
            }
            frame.push((name.to_string(), saved, exported));
        }
        self.vars.insert(name.to_string(), value);
    }

    /// Restore the variables made local in the function that returns.
    fn pop_locals(&mut self) {
        let Some(frame) = self.locals.pop() else {
            return;
        };
        for (name, saved, exported) in frame.into_iter().rev() {
            match saved {
                Some(v) => {
                    self.vars.insert(name.clone(), v);
                }
                None => {
                    self.vars.remove(&name);
                }
            }
            if exported {
                self.exported.insert(name);
            } else {
                self.exported.remove(&name);
            }
        }
    }

    /// An expansion failed (its message said why): the shell exits with status 2.
    pub(super) fn raise(&mut self) -> Flow {
        self.expand_failed = false;
        self.status = 2;
        self.raised = true;
        Flow::Exit(2)
    }

    /// After a simple command: a write to a broken pipe stops this (sub)shell.
    fn after_command(&mut self) -> Flow {
        if self.sigpipe {
            Flow::Exit(SIGPIPE_STATUS)
        } else {
            Flow::Next
        }
    }
}

/// Run `fut` (a script's top shell) with the script's background jobs alongside: its output.
pub(super) async fn with_jobs<T>(jobs: &Jobs<'_>, fut: impl Future<Output = T>) -> T {
    tokio::pin!(fut);
    tokio::select! {
        biased;
        v = &mut fut => v,
        () = jobs.run() => fut.await,
    }
}
