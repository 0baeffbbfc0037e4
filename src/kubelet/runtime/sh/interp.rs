//! The interpreter: runs a syntax tree against a [`Shell`], with lists, and-or lists, `!`,
//! compound commands, redirections, and simple commands (expansion, assignments, `exit`,
//! `break`, `continue`, then the utility or builtin).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use super::ast::{
    split_assignment, AndOr, Command, Compound, Conn, List, Pipeline, Redir, RedirTarget, Simple,
    Word,
};
use super::invocation::command_name;
use super::{Script, Shell};

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

/// Special builtins of the subset (assignments before them persist).
const SPECIAL_BUILTINS: &[&str] = &[
    ":", "exit", "break", "continue", "export", "readonly", "unset", "set",
];

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How control leaves a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Flow {
    Next,
    Break(usize),
    Continue(usize),
    Exit(i32),
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
        Flow::Exit(c) => LoopCtl::Leave(Flow::Exit(c)),
    }
}

/// Where a file descriptor writes.
#[derive(Debug, Clone, PartialEq)]
enum Sink {
    /// The script's standard output.
    Out,
    /// The script's standard error.
    Err,
    Null,
    File(String),
}

#[derive(Debug, Clone)]
pub(super) struct Fds {
    out: Sink,
    err: Sink,
}

impl Fds {
    fn base() -> Fds {
        Fds {
            out: Sink::Out,
            err: Sink::Err,
        }
    }
}

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
    pub(super) capture: Option<(Vec<u8>, Vec<u8>)>,
    /// Why the running command's output could not be written to a file (a full disk): the
    /// command then fails, as a write error fails it on a real node.
    write_error: Option<String>,
}

/// The absolute, normalized path of an operand (relative ones resolve against `/`); an empty
/// operand names nothing.
fn normalize(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    super::super::normalize_path(path)
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
        capture: Option<(Vec<u8>, Vec<u8>)>,
        nesting: usize,
    ) -> Self {
        let args = if script.args.is_empty() {
            vec!["sh".to_string()]
        } else {
            script.args.clone()
        };
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
        }
    }

    pub(super) async fn main(&mut self, script: &Script) -> i32 {
        let fds = Fds::base();
        let code = match self.list(&script.body, &fds, false).await {
            Flow::Exit(c) => c,
            _ => self.status,
        };
        code & 255
    }

    // ----- output

    fn put(&mut self, sink: &Sink, data: &[u8]) {
        match sink {
            Sink::Out => match &mut self.capture {
                Some((out, _)) => out.extend_from_slice(data),
                None => self.shell.stdout(data),
            },
            Sink::Err => match &mut self.capture {
                Some((_, err)) => err.extend_from_slice(data),
                None => self.shell.stderr(data),
            },
            Sink::Null => {}
            Sink::File(p) => {
                if let Err(why) = self.shell.write(p, data, true) {
                    self.write_error.get_or_insert(why);
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

    // ----- filesystem views

    pub(super) fn path(&self, arg: &str) -> String {
        normalize(arg)
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
                let f = self.and_or(item, fds, cond).await;
                if f != Flow::Next {
                    return f;
                }
            }
            Flow::Next
        })
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
        if self.errexit && !cond && self.status != 0 && last_ran == n && !negated {
            return Flow::Exit(self.status);
        }
        Flow::Next
    }

    async fn pipeline(&mut self, p: &Pipeline, fds: &Fds, cond: bool) -> Flow {
        let f = match &p.command {
            Command::Simple(s) => self.simple(s, fds).await,
            Command::Compound(c, redirs) => match self.redirect(redirs, fds) {
                Some(fds) => self.compound(c, &fds, cond || p.negate).await,
                None => {
                    self.status = 1;
                    Flow::Next
                }
            },
        };
        if p.negate && f == Flow::Next {
            self.status = if self.status == 0 { 1 } else { 0 };
        }
        f
    }

    /// Apply redirections; None (after saying why) when one fails.
    fn redirect(&mut self, redirs: &[Redir], fds: &Fds) -> Option<Fds> {
        let mut new = fds.clone();
        for r in redirs {
            let sink = match &r.target {
                RedirTarget::Dup(1) => new.out.clone(),
                RedirTarget::Dup(_) => new.err.clone(),
                RedirTarget::File { word, append } => {
                    let target = self.expand_string(word);
                    match target.as_str() {
                        "/dev/null" => Sink::Null,
                        "/dev/stdout" | "/dev/fd/1" => new.out.clone(),
                        "/dev/stderr" | "/dev/fd/2" => new.err.clone(),
                        _ => {
                            let p = self.path(&target);
                            let why = if p.is_empty() || !self.is_dir(parent(&p)) {
                                Some("No such file or directory".to_string())
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

    async fn compound(&mut self, c: &Compound, fds: &Fds, cond: bool) -> Flow {
        match c {
            Compound::If {
                branches,
                otherwise,
            } => {
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
            Compound::Loop {
                until,
                cond: test,
                body,
            } => {
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
                    if (self.status == 0) == *until {
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
            Compound::For { var, items, body } => {
                let values = match items {
                    Some(words) => {
                        let mut v = Vec::new();
                        for w in words {
                            self.expand_fields(w, &mut v);
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
        }
    }

    async fn simple(&mut self, cmd: &Simple, fds: &Fds) -> Flow {
        let declaration = matches!(
            cmd.words.first().and_then(Word::literal).as_deref(),
            Some("export" | "readonly")
        );
        let mut argv = Vec::new();
        for (i, w) in cmd.words.iter().enumerate() {
            if declaration && i > 0 && split_assignment(w).is_some() {
                let s = self.expand_string(w);
                argv.push(s);
            } else {
                self.expand_fields(w, &mut argv);
            }
        }
        let mut assigns = Vec::new();
        for (name, w) in &cmd.assigns {
            let v = self.expand_string(w);
            assigns.push((name.clone(), v));
        }
        let Some(name) = argv.first().cloned() else {
            for (n, v) in assigns {
                self.set_var(&n, v);
            }
            self.status = if self.redirect(&cmd.redirs, fds).is_some() {
                0
            } else {
                1
            };
            return Flow::Next;
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
        let Some(fds) = self.redirect(&cmd.redirs, fds) else {
            self.status = 1;
            return Flow::Next;
        };
        let fds = &fds;
        let cmd_name = command_name(&name);
        if SPECIAL_BUILTINS.contains(&cmd_name) {
            for (n, v) in &assigns {
                self.set_var(n, v.clone());
            }
        }
        let args = argv.get(1..).unwrap_or(&[]);
        let status = match cmd_name {
            "exit" => {
                return match args.first() {
                    None => Flow::Exit(self.status),
                    Some(a) => match a.parse::<i64>() {
                        Ok(n) if n >= 0 => Flow::Exit((n & 255) as i32),
                        _ => {
                            self.err(fds, &format!("sh: exit: Illegal number: {a}\n"));
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
            "sleep" => self.cmd_sleep(args, fds).await,
            "sh" | "ash" => self.cmd_sh(&argv, &assigns, fds).await,
            _ => self.run_sync(cmd_name, &name, args, fds),
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
        Flow::Next
    }
}
