//! The utilities and special builtins a simple command runs: dispatch by name, `sleep`, nested
//! `sh`, `echo`, `export`/`readonly`, `unset`, `set` and `read`; the builtins acting on the
//! shell (`trap`, `cd`, `eval`, `exec`, `wait` ...), file utilities, text filters, `tar`,
//! process and system utilities, `id`/`whoami`, the network clients `wget` and `nc` (with
//! `inet` for addresses and `getopt` for their option parsing), `test`, `printf` and `date`
//! have their own files.

mod awk;
mod date;
mod files;
mod getopt;
mod id;
mod inet;
mod inspect;
mod nc;
mod printf;
mod shell;
mod system;
mod tar;
mod test;
mod text;
mod wget;

pub(super) use shell::ERR_TRAP;

use std::future::Future;
use std::pin::Pin;

use super::ast::valid_name;
use super::interp::{Fds, Interp};
use super::invocation::ShInvocation;
use super::parser::set_option_ok;
use super::{Script, MAX_SH_NESTING};
use printf::unescape;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Longest single call to [`Shell::sleep`](super::Shell::sleep); longer sleeps are made of several calls.
const MAX_SLEEP_CHUNK: f64 = 1e9;

impl<'s> Interp<'s> {
    /// Run the utility or builtin `cmd` (`name` as written) with `argv` (its name first);
    /// `assigns` are the command's own variable assignments (its environment).
    pub(super) fn run_command<'a>(
        &'a mut self,
        cmd: &'a str,
        name: &'a str,
        argv: &'a [String],
        assigns: &'a [(String, String)],
        fds: &'a Fds,
    ) -> BoxFut<'a, i32> {
        // Each command's future is boxed here, so the caller's poll frame stays small.
        let args = argv.get(1..).unwrap_or(&[]);
        match cmd {
            "sleep" => Box::pin(self.cmd_sleep(args, fds)),
            "sh" | "ash" => Box::pin(self.cmd_sh(argv, assigns, fds)),
            "cat" => Box::pin(self.cmd_cat(args, fds)),
            "head" => Box::pin(self.cmd_head(args, fds)),
            "tail" => Box::pin(self.cmd_tail(args, fds)),
            "wc" => Box::pin(self.cmd_wc(args, fds)),
            "grep" | "egrep" | "fgrep" => Box::pin(self.cmd_grep(cmd, args, fds)),
            "tee" => Box::pin(self.cmd_tee(args, fds)),
            "sort" => Box::pin(self.cmd_sort(args, fds)),
            "uniq" => Box::pin(self.cmd_uniq(args, fds)),
            "cut" => Box::pin(self.cmd_cut(args, fds)),
            "tr" => Box::pin(self.cmd_tr(args, fds)),
            "tar" => Box::pin(self.cmd_tar(args, fds)),
            "read" => Box::pin(self.cmd_read(args, fds)),
            "env" => Box::pin(self.cmd_env(args, assigns, fds)),
            "seq" => Box::pin(self.cmd_seq(args, fds)),
            "sha256sum" | "sha1sum" | "sha512sum" => Box::pin(self.cmd_shasum(cmd, args, fds)),
            "hexdump" => Box::pin(self.cmd_hexdump(args, fds)),
            "awk" => Box::pin(self.cmd_awk(args, fds)),
            "od" => Box::pin(self.cmd_od(args, fds)),
            "wget" => Box::pin(self.cmd_wget(args, assigns, fds)),
            "nc" => Box::pin(self.cmd_nc(args, fds)),
            _ => {
                let status = self.run_sync(cmd, name, args, fds);
                Box::pin(std::future::ready(status))
            }
        }
    }

    pub(super) fn run_sync(&mut self, cmd: &str, name: &str, args: &[String], fds: &Fds) -> i32 {
        match cmd {
            "true" | ":" => 0,
            "false" => 1,
            "echo" => self.cmd_echo(args, fds),
            "printf" => self.cmd_printf(args, fds),
            "touch" => self.cmd_touch(args, fds),
            "rm" => self.cmd_rm(args, fds),
            "mkdir" => self.cmd_mkdir(args, fds),
            "test" => self.cmd_test(args, fds, false),
            "[" => self.cmd_test(args, fds, true),
            "[[" => self.cmd_test2(args, fds),
            "date" => self.cmd_date(args, fds),
            "ls" => self.cmd_ls(args, fds),
            "export" | "readonly" => self.cmd_export(cmd, args, fds),
            "unset" => self.cmd_unset(args),
            "set" => self.cmd_set(args, fds),
            "kill" => self.cmd_kill(args, fds),
            "hostname" => self.cmd_hostname(args, fds),
            "id" | "groups" => self.cmd_id(cmd, args, fds),
            "whoami" => self.cmd_whoami(args, fds),
            "pwd" => self.cmd_pwd(args, fds),
            "basename" => self.cmd_basename(args, fds),
            "dirname" => self.cmd_dirname(args, fds),
            "df" => self.cmd_df(args, fds),
            "stat" => self.cmd_stat(args, fds),
            _ => {
                self.err(fds, &format!("sh: {name}: not found\n"));
                127
            }
        }
    }

    pub(super) async fn cmd_sleep(&mut self, args: &[String], fds: &Fds) -> i32 {
        if args.is_empty() {
            self.err(fds, "sleep: missing operand\n");
            return 1;
        }
        let mut total = 0.0f64;
        for a in args {
            match parse_duration(a) {
                Some(s) => total += s,
                None => {
                    self.err(fds, &format!("sleep: invalid number '{a}'\n"));
                    return 1;
                }
            }
        }
        let mut left = total;
        let mut first = true;
        loop {
            if !first {
                tokio::task::yield_now().await;
            }
            first = false;
            let chunk = if left.is_finite() {
                left.min(MAX_SLEEP_CHUNK)
            } else {
                MAX_SLEEP_CHUNK
            };
            // A trapped signal interrupts the main shell's sleep (ash's builtin `sleep`).
            match self.signals.clone() {
                Some(signals) => {
                    tokio::select! {
                        () = self.shell.sleep(chunk.max(0.0)) => {}
                        () = signals.arrival() => return 0,
                    }
                }
                None => self.shell.sleep(chunk.max(0.0)).await,
            }
            if left.is_finite() {
                left -= chunk;
                if left <= 0.0 {
                    return 0;
                }
            }
        }
    }

    pub(super) async fn cmd_sh(
        &mut self,
        argv: &[String],
        assigns: &[(String, String)],
        fds: &Fds,
    ) -> i32 {
        if self.nesting >= MAX_SH_NESTING {
            self.err(fds, "sh: shells nested too deeply\n");
            return 2;
        }
        if !self.enter(2, fds) {
            return 2;
        }
        self.depth -= 2;
        let (script, errexit, xtrace, args) = match ShInvocation::parse(argv) {
            Err(reason) => {
                self.err(fds, &format!("sh: {reason}\n"));
                return 2;
            }
            Ok(ShInvocation::Stdin {
                args,
                errexit,
                xtrace,
                ..
            }) => {
                let script = Script::stdin(args, errexit, xtrace);
                let mut child = self.child_shell(&script, assigns);
                let code = child.read_commands(fds, None).await & 255;
                if child.sigpipe {
                    self.sigpipe = true;
                }
                return code;
            }
            Ok(ShInvocation::Command {
                script,
                args,
                errexit,
                xtrace,
            }) => (script, errexit, xtrace, args),
            Ok(ShInvocation::File {
                path,
                args,
                errexit,
                xtrace,
            }) => {
                let p = self.path(&path);
                if self.is_dir(&p) {
                    self.err(fds, &format!("sh: can't open '{path}': Is a directory\n"));
                    return 2;
                }
                match self.read(&p) {
                    Some(data) => (
                        String::from_utf8_lossy(&data).into_owned(),
                        errexit,
                        xtrace,
                        args,
                    ),
                    None => {
                        self.err(
                            fds,
                            &format!("sh: can't open '{path}': No such file or directory\n"),
                        );
                        return 2;
                    }
                }
            }
        };
        let mut parsed = match Script::parse(&script) {
            Ok(s) => s,
            Err(e) => {
                self.err(fds, &format!("sh: syntax error: {e}\n"));
                return 2;
            }
        };
        parsed.args = args;
        parsed.errexit = errexit;
        parsed.xtrace = xtrace;
        let mut child = self.child_shell(&parsed, assigns);
        let flow = child.list(&parsed.body, fds, false).await;
        child.finish(flow, fds).await
    }

    /// A new shell process started from this one: it sees the environment (exported
    /// variables, minus unset ones, plus `assigns`), shares the output and standard input.
    fn child_shell(&self, script: &Script, assigns: &[(String, String)]) -> Interp<'s> {
        let mut child = Interp::new(self.shell, script, self.capture.clone(), self.nesting + 1);
        child.depth = self.depth + 2;
        child.jobs = std::sync::Arc::clone(&self.jobs);
        if self.hands_signals {
            child.signals = self.signals.clone();
        }
        child.owner = self.jobs.new_owner();
        child.cwd = self.cwd.clone();
        child.stdin_pushback = std::sync::Arc::clone(&self.stdin_pushback);
        child.no_env = self.no_env;
        for (k, v) in &self.vars {
            if v.is_none() || self.exported.contains(k) {
                child.vars.insert(k.clone(), v.clone());
            }
        }
        child.exported = self.exported.clone();
        for (k, v) in assigns {
            child.vars.insert(k.clone(), Some(v.clone()));
            child.exported.insert(k.clone());
        }
        child
    }

    /// `read [-r] [VAR...]`: one line of standard input into variables (the last takes the
    /// rest); status 1 at the end of input.
    async fn cmd_read(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut raw = false;
        let mut names = Vec::new();
        let mut opts_done = false;
        for a in args {
            if !opts_done && a.starts_with('-') && a.len() > 1 {
                if a == "--" {
                    opts_done = true;
                    continue;
                }
                for c in a.chars().skip(1) {
                    if c == 'r' {
                        raw = true;
                    } else {
                        self.err(fds, &format!("sh: read: illegal option -{c}\n"));
                        return 2;
                    }
                }
                continue;
            }
            opts_done = true;
            if !valid_name(a) {
                self.err(fds, &format!("sh: read: '{a}': not a valid identifier\n"));
                return 2;
            }
            names.push(a.clone());
        }
        if names.is_empty() {
            names.push("REPLY".into());
        }
        // The line's bytes, with backslash escapes applied unless -r; the flag marks escaped
        // bytes (never field separators).
        let mut line: Vec<(u8, bool)> = Vec::new();
        let mut got_newline = false;
        let mut escape = false;
        'read: while let Some(chunk) = self.read_chunk(&fds.inp).await {
            for (i, &b) in chunk.iter().enumerate() {
                if escape {
                    escape = false;
                    if b != b'\n' {
                        line.push((b, true));
                    }
                    continue;
                }
                if b == b'\\' && !raw {
                    escape = true;
                    continue;
                }
                if b == b'\n' {
                    got_newline = true;
                    let rest = chunk.get(i + 1..).unwrap_or(&[]).to_vec();
                    self.unread(&fds.inp, rest);
                    break 'read;
                }
                line.push((b, false));
            }
            if line.len() > super::io::MAX_BUFFER {
                break;
            }
        }
        // Split on blanks: each name but the last gets a field, the last the rest.
        let sep = |&(b, q): &(u8, bool)| !q && matches!(b, b' ' | b'\t' | b'\n');
        let mut i = 0;
        let n = names.len();
        for (k, name) in names.iter().enumerate() {
            while line.get(i).is_some_and(sep) {
                i += 1;
            }
            let start = i;
            let end = if k + 1 == n {
                let mut end = line.len().max(start);
                while end > start && line.get(end - 1).is_some_and(sep) {
                    end -= 1;
                }
                end
            } else {
                while line.get(i).is_some_and(|x| !sep(x)) {
                    i += 1;
                }
                i
            };
            let bytes: Vec<u8> = line
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|&(b, _)| b)
                .collect();
            self.set_var(name, String::from_utf8_lossy(&bytes).into_owned());
        }
        if got_newline {
            0
        } else {
            1
        }
    }

    fn cmd_echo(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut newline = true;
        let mut escapes = false;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let opts = a
                .strip_prefix('-')
                .filter(|o| !o.is_empty() && o.chars().all(|c| matches!(c, 'n' | 'e' | 'E')));
            let Some(opts) = opts else { break };
            for c in opts.chars() {
                match c {
                    'n' => newline = false,
                    'e' => escapes = true,
                    _ => escapes = false,
                }
            }
            i += 1;
        }
        let text = args.get(i..).unwrap_or(&[]).join(" ");
        let mut out = Vec::new();
        if escapes {
            let (bytes, stop) = unescape(&text, true);
            out = bytes;
            if stop {
                newline = false;
            }
        } else {
            out.extend_from_slice(text.as_bytes());
        }
        if newline {
            out.push(b'\n');
        }
        self.out(fds, &out);
        0
    }

    fn cmd_export(&mut self, cmd: &str, args: &[String], fds: &Fds) -> i32 {
        let mut status = 0;
        for a in args {
            if a == "-p" {
                continue;
            }
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            if !valid_name(name) {
                self.err(fds, &format!("sh: {cmd}: {a}: bad variable name\n"));
                status = 1;
                continue;
            }
            if let Some(v) = value {
                self.set_var(name, v);
            }
            if cmd == "export" {
                self.exported.insert(name.to_string());
            }
        }
        status
    }

    fn cmd_unset(&mut self, args: &[String]) -> i32 {
        for a in args {
            if a == "-v" || a == "-f" {
                continue;
            }
            self.vars.insert(a.clone(), None);
            self.exported.remove(a);
        }
        0
    }

    /// `set [-efx|+efx]... [-- ARG...]`.
    fn cmd_set(&mut self, args: &[String], fds: &Fds) -> i32 {
        for (i, a) in args.iter().enumerate() {
            if a == "--" {
                let mut new = vec![self.args.first().cloned().unwrap_or_default()];
                new.extend(args.iter().skip(i + 1).cloned());
                self.args = new;
                return 0;
            }
            if !set_option_ok(a) {
                self.err(fds, &format!("sh: set: illegal option {a}\n"));
                return 2;
            }
            let on = a.starts_with('-');
            for c in a.chars().skip(1) {
                match c {
                    'e' => self.errexit = on,
                    'f' => self.noglob = on,
                    _ => self.xtrace = on,
                }
            }
        }
        0
    }
}

/// `sleep` operand: seconds (fractions allowed), with an optional s/m/h/d suffix, or infinity.
fn parse_duration(a: &str) -> Option<f64> {
    if a.eq_ignore_ascii_case("inf") || a.eq_ignore_ascii_case("infinity") {
        return Some(f64::INFINITY);
    }
    let (num, mult) = match a.chars().last() {
        Some('s') => (a.get(..a.len() - 1)?, 1.0),
        Some('m') => (a.get(..a.len() - 1)?, 60.0),
        Some('h') => (a.get(..a.len() - 1)?, 3600.0),
        Some('d') => (a.get(..a.len() - 1)?, 86400.0),
        _ => (a, 1.0),
    };
    // Only plain decimal numbers: Rust's parser would also accept "nan", "inf" and friends.
    if num.is_empty()
        || !num
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v * mult)
}
