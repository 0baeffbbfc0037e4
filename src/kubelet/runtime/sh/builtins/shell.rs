//! The builtins that act on the shell itself: `trap`, `cd` (and `pwd`'s directory), `shift`,
//! `eval`, `exec`, `.`/`source`, `wait`, `local`, `return` and `let`, with busybox 1.36 ash's
//! messages and statuses (an error of a special builtin ends a script with status 2).

use super::super::arith;
use super::super::interp::{Fds, Flow, Interp};
use super::super::invocation::command_name;
use super::super::jobs::Waited;
use super::system::{signame, signum};

/// Where `.` looks for a file named without a `/` (the image's `PATH`).
const PATH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// `s` in single quotes as ash's `trap` and `export -p` print it (a `'` inside goes in double
/// quotes).
pub(super) fn single_quote(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    loop {
        let len = rest.find('\'').unwrap_or(rest.len());
        out.push('\'');
        out.push_str(rest.get(..len).unwrap_or(""));
        out.push('\'');
        rest = rest.get(len..).unwrap_or("");
        if !rest.starts_with('\'') {
            break;
        }
        let quotes = rest.len() - rest.trim_start_matches('\'').len();
        out.push('"');
        out.push_str(rest.get(..quotes).unwrap_or(""));
        out.push('"');
        rest = rest.get(quotes..).unwrap_or("");
        if rest.is_empty() {
            break;
        }
    }
    out
}

/// A numeric operand as ash's `number()` reads it (a non-negative decimal).
fn number(s: &str) -> Option<i32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// Lexical `cd`: `dir` resolved against `cwd`, `.` and `..` applied to the text.
fn resolve(cwd: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{cwd}/{dir}")
    };
    super::super::super::normalize_path(&joined)
}

impl Interp<'_> {
    /// Run `cmd` when it is a builtin acting on the shell: the flow (its status in
    /// `self.status`), or None for any other command.
    pub(in super::super) async fn shell_builtin(
        &mut self,
        cmd: &str,
        argv: &[String],
        fds: &Fds,
    ) -> Option<Flow> {
        let args = argv.get(1..).unwrap_or(&[]);
        let flow = match cmd {
            "trap" => self.cmd_trap(args, fds),
            "cd" | "chdir" => self.cmd_cd(args, fds),
            "shift" => self.cmd_shift(args, fds),
            "eval" => {
                let src = args.join(" ");
                self.status = 0;
                if src.trim().is_empty() {
                    Flow::Next
                } else {
                    let f = self.eval_string(&src, fds).await;
                    if let Flow::Return(c) = f {
                        self.status = c & 255;
                    }
                    f
                }
            }
            "exec" => return Some(self.cmd_exec(args, fds).await),
            "." | "source" => self.cmd_dot(args, fds).await,
            "wait" => self.cmd_wait(args, fds).await,
            "local" => self.cmd_local(args, fds),
            "return" => match args.first() {
                None => Flow::Return(self.status),
                Some(a) => match number(a) {
                    Some(n) => Flow::Return(n & 255),
                    None => self.fail(fds, &format!("sh: return: Illegal number: {a}\n")),
                },
            },
            "let" => self.cmd_let(args, fds),
            _ => return None,
        };
        Some(flow)
    }

    /// An error of a special builtin: the message, then the script ends with status 2.
    fn fail(&mut self, fds: &Fds, msg: &str) -> Flow {
        self.err(fds, msg);
        self.status = 2;
        self.raised = true;
        Flow::Exit(2)
    }

    fn done(&mut self, status: i32) -> Flow {
        self.status = status;
        Flow::Next
    }

    /// `trap [[ACTION] SIG...]`: set, ignore (`''`), reset (`-`) or list traps.
    fn cmd_trap(&mut self, args: &[String], fds: &Fds) -> Flow {
        let mut args = args;
        if let Some(first) = args.first() {
            if first == "--" {
                args = args.get(1..).unwrap_or(&[]);
            } else if first.len() > 1 && first.starts_with('-') {
                let c = first.chars().nth(1).unwrap_or('-');
                return self.fail(fds, &format!("sh: trap: illegal option -{c}\n"));
            }
        }
        if args.is_empty() {
            let mut out = String::new();
            for (sig, action) in &self.traps {
                let name = if *sig == ERR_TRAP {
                    "ERR".to_string()
                } else {
                    signame(*sig)
                };
                out.push_str(&format!("trap -- {} {name}\n", single_quote(action)));
            }
            self.out(fds, out.as_bytes());
            return self.done(0);
        }
        let (action, signals) = match args {
            [first, rest @ ..] if !rest.is_empty() && number(first).is_none() => {
                (Some(first.as_str()), rest)
            }
            _ => (None, args),
        };
        let action = action.filter(|a| *a != "-");
        let mut status = 0;
        for s in signals {
            let sig = if s == "ERR" {
                Some(ERR_TRAP)
            } else {
                signum(s)
            };
            let Some(sig) = sig else {
                self.err(
                    fds,
                    &format!("sh: trap: {s}: invalid signal specification\n"),
                );
                status = 1;
                continue;
            };
            match action {
                Some(a) => {
                    self.traps.insert(sig, a.to_string());
                }
                None => {
                    self.traps.remove(&sig);
                }
            }
            if let Some(signals) = &self.signals {
                if sig != 0 && sig != ERR_TRAP {
                    signals.set_action(sig, action);
                }
            }
        }
        self.done(status)
    }

    /// `cd [-L|-P] [DIR|-]`: HOME without an operand, OLDPWD (printed) for `-`.
    fn cmd_cd(&mut self, args: &[String], fds: &Fds) -> Flow {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-L" | "-P" => i += 1,
                "--" => {
                    i += 1;
                    break;
                }
                _ => break,
            }
        }
        let mut print = false;
        let dest = match args.get(i).map(String::as_str) {
            None => self.var("HOME").unwrap_or_default(),
            Some("-") => {
                print = true;
                self.var("OLDPWD").unwrap_or_default()
            }
            Some(d) => d.to_string(),
        };
        let dest = if dest.is_empty() {
            ".".to_string()
        } else {
            dest
        };
        let target = resolve(&self.cwd, &dest);
        if !self.is_dir(&target) {
            let why = if self.exists(&target) {
                "Not a directory"
            } else {
                "No such file or directory"
            };
            self.err(fds, &format!("sh: cd: can't cd to {dest}: {why}\n"));
            return self.done(2);
        }
        let old = std::mem::replace(&mut self.cwd, target.clone());
        self.set_var("OLDPWD", old);
        self.set_var("PWD", target.clone());
        self.exported.insert("PWD".into());
        if print {
            self.out(fds, format!("{target}\n").as_bytes());
        }
        self.done(0)
    }

    /// `shift [N]`.
    fn cmd_shift(&mut self, args: &[String], fds: &Fds) -> Flow {
        let n = match args.first() {
            None => 1,
            Some(a) => match number(a) {
                Some(n) => n as usize,
                None => return self.fail(fds, &format!("sh: shift: Illegal number: {a}\n")),
            },
        };
        let count = self.args.len().saturating_sub(1);
        if n > count {
            return self.done(1);
        }
        self.args.drain(1..=n);
        self.done(0)
    }

    /// `exec [COMMAND [ARG...]]`: the command replaces the shell (its status is the shell's);
    /// without one, the command's redirections stay for the rest of the shell.
    async fn cmd_exec(&mut self, args: &[String], fds: &Fds) -> Flow {
        let args = match args.first().map(String::as_str) {
            Some("--") => args.get(1..).unwrap_or(&[]),
            _ => args,
        };
        let Some(name) = args.first().cloned() else {
            self.exec_fds = Some(fds.clone());
            return self.done(0);
        };
        // The shell is gone: its traps with it. A shell it runs instead is the process.
        self.traps.clear();
        let cmd = command_name(&name).to_string();
        if let Some(signals) = self.signals.take() {
            for sig in 1..=64 {
                signals.set_action(sig, None);
            }
            if matches!(cmd.as_str(), "sh" | "ash") {
                self.signals = Some(signals);
                self.hands_signals = true;
            }
        }
        let status = match self.shell_builtin_for_exec(&cmd) {
            true => self.run_command(&cmd, &name, args, &[], fds).await,
            false => {
                self.err(fds, &format!("sh: exec: {name}: not found\n"));
                127
            }
        };
        Flow::Exit(status & 255)
    }

    /// Whether `exec` finds `cmd` as a program of the image.
    fn shell_builtin_for_exec(&self, cmd: &str) -> bool {
        super::super::invocation::UTILITIES.contains(&cmd)
    }

    /// `. FILE [ARG...]` / `source`: run FILE's commands in this shell.
    async fn cmd_dot(&mut self, args: &[String], fds: &Fds) -> Flow {
        let args = match args.first().map(String::as_str) {
            Some("--") => args.get(1..).unwrap_or(&[]),
            _ => args,
        };
        let Some(name) = args.first() else {
            return self.done(2);
        };
        let path = if name.contains('/') {
            self.path(name)
        } else {
            match PATH_DIRS
                .iter()
                .map(|d| format!("{d}/{name}"))
                .find(|p| self.is_file(p))
            {
                Some(p) => p,
                None => return self.fail(fds, &format!("sh: .: {name}: not found\n")),
            }
        };
        let data = if self.is_dir(&path) {
            None
        } else {
            self.read(&path)
        };
        let Some(data) = data else {
            let why = if self.is_dir(&path) {
                "Is a directory"
            } else {
                "No such file or directory"
            };
            return self.fail(fds, &format!("sh: .: can't open '{name}': {why}\n"));
        };
        let src = String::from_utf8_lossy(&data).into_owned();
        let saved = (args.len() > 1).then(|| {
            let mut new = vec![self.args.first().cloned().unwrap_or_default()];
            new.extend(args.iter().skip(1).cloned());
            std::mem::replace(&mut self.args, new)
        });
        self.status = 0;
        let f = self.eval_string(&src, fds).await;
        if let Some(saved) = saved {
            self.args = saved;
        }
        match f {
            Flow::Return(c) => self.done(c & 255),
            f => f,
        }
    }

    /// `wait [-n] [PID...]`: a trapped signal interrupts it (status 128+signal).
    async fn cmd_wait(&mut self, args: &[String], fds: &Fds) -> Flow {
        let mut any = false;
        let mut pids: &[String] = args;
        while let Some(a) = pids.first() {
            match a.as_str() {
                "-n" => any = true,
                "--" => {
                    pids = pids.get(1..).unwrap_or(&[]);
                    break;
                }
                s if s.len() > 1 && s.starts_with('-') => {
                    // A regular builtin's error: the status, and the script goes on.
                    let c = s.chars().nth(1).unwrap_or('-');
                    self.err(fds, &format!("sh: wait: illegal option -{c}\n"));
                    return self.done(2);
                }
                _ => break,
            }
            pids = pids.get(1..).unwrap_or(&[]);
        }
        let jobs = std::sync::Arc::clone(&self.jobs);
        let owner = self.owner;
        let signals = self.signals.clone();
        // A wait that a trapped signal interrupts: Err(signal).
        macro_rules! interruptible {
            ($fut:expr) => {{
                match &signals {
                    Some(s) => {
                        tokio::select! {
                            v = $fut => Ok(v),
                            () = s.arrival() => Err(()),
                        }
                    }
                    None => Ok($fut.await),
                }
            }};
        }
        let interrupted = |me: &mut Self| -> Flow {
            // The trap runs after `wait` returns; the status says which signal came.
            let sig = me.signals.as_ref().map_or(0, |s| s.peek_lowest());
            me.done(128 + sig)
        };
        if pids.is_empty() {
            if any {
                return match interruptible!(jobs.wait_one(owner, None)) {
                    Ok(Waited::Done(c)) => self.done(c),
                    Ok(Waited::Unknown) => self.done(127),
                    Err(()) => interrupted(self),
                };
            }
            return match interruptible!(jobs.wait_all(owner)) {
                Ok(()) => self.done(0),
                Err(()) => interrupted(self),
            };
        }
        let mut status = 127;
        for a in pids {
            let pid = if a.starts_with('%') {
                None
            } else {
                match number(a) {
                    Some(n) => Some(i64::from(n)),
                    None => {
                        self.err(fds, &format!("sh: wait: Illegal number: {a}\n"));
                        return self.done(2);
                    }
                }
            };
            let Some(pid) = pid else {
                self.err(fds, &format!("sh: wait: {a}: no such job\n"));
                status = 127;
                continue;
            };
            match interruptible!(jobs.wait_one(owner, Some(pid))) {
                Ok(Waited::Done(c)) => status = c,
                Ok(Waited::Unknown) => status = 127,
                Err(()) => return interrupted(self),
            }
        }
        self.done(status)
    }

    /// `local NAME[=VALUE]...`: only in a function.
    fn cmd_local(&mut self, args: &[String], fds: &Fds) -> Flow {
        if self.locals.is_empty() {
            return self.fail(fds, "sh: local: not in a function\n");
        }
        for a in args {
            match a.split_once('=') {
                Some((n, v)) => self.make_local(n, Some(v.to_string())),
                None => self.make_local(a, None),
            }
        }
        self.done(0)
    }

    /// `let EXPR...`: status 1 when the last value is 0 (an error: 2, and the script goes
    /// on: `let` is a regular builtin).
    fn cmd_let(&mut self, args: &[String], fds: &Fds) -> Flow {
        if args.is_empty() {
            self.err(fds, "sh: let: expression expected\n");
            return self.done(2);
        }
        let mut last = 0;
        for a in args {
            match self.arith(a) {
                Ok(v) => last = v,
                Err(e) => {
                    self.err(fds, &format!("sh: let: {e}\n"));
                    return self.done(2);
                }
            }
        }
        self.done(i32::from(last == 0))
    }

    /// Evaluate an arithmetic expression with this shell's variables.
    pub(in super::super) fn arith(&mut self, expr: &str) -> Result<i64, String> {
        struct V<'a, 'b>(&'a mut Interp<'b>);
        impl arith::Vars for V<'_, '_> {
            fn get(&self, name: &str) -> Option<String> {
                self.0.var(name)
            }
            fn set(&mut self, name: &str, value: String) {
                self.0.set_var(name, value);
            }
        }
        arith::eval(expr, &mut V(self))
    }
}

/// The key of the ERR trap among the signals' (ash's NTRAP_ERR).
pub(in super::super) const ERR_TRAP: i32 = 65;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_trap_listings() {
        assert_eq!(single_quote("exit"), "'exit'");
        assert_eq!(single_quote(""), "''");
        assert_eq!(single_quote("echo 'hi'"), "'echo '\"'\"'hi'\"'\"");
        assert_eq!(single_quote("a''b"), "'a'\"''\"'b'");
    }
}
