//! Process and system utilities: `kill`, `env`, `hostname`, `pwd`, `basename`, `dirname` and
//! `seq`, with busybox 1.36's messages (the signal names of Linux on x86-64 with glibc).

use super::super::interp::{Fds, Interp};
use super::super::invocation::{command_name, UTILITIES};

/// Signal names by number (index), as busybox's `kill -l` lists them.
const SIGNALS: &[&str] = &[
    "EXIT", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "POLL", "PWR", "SYS",
];
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;
/// Signals are below this (glibc's NSIG).
const NSIG: u64 = 65;

/// busybox's get_signum: a number below NSIG, or a name with or without `SIG`, any case.
pub(super) fn signum(name: &str) -> Option<i32> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse::<u64>()
            .ok()
            .filter(|&n| n < NSIG)
            .map(|n| n as i32);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(i) = SIGNALS.iter().position(|s| *s == bare) {
        return Some(i as i32);
    }
    match bare {
        "IO" => return Some(29),
        "IOT" => return Some(6),
        "RTMIN" => return Some(SIGRTMIN),
        "RTMAX" => return Some(SIGRTMAX),
        _ => {}
    }
    let offset = |s: &str| s.parse::<i32>().ok().filter(|&n| n <= SIGRTMAX - SIGRTMIN);
    if let Some(n) = bare.strip_prefix("RTMIN+").and_then(offset) {
        return Some(SIGRTMIN + n);
    }
    if let Some(n) = bare.strip_prefix("RTMAX-").and_then(offset) {
        return Some(SIGRTMAX - n);
    }
    None
}

pub(super) fn signame(n: i32) -> String {
    match usize::try_from(n).ok().and_then(|i| SIGNALS.get(i)) {
        Some(s) => s.to_string(),
        None if n == SIGRTMIN => "RTMIN".into(),
        None if n == SIGRTMAX => "RTMAX".into(),
        None => n.to_string(),
    }
}

/// A pid operand as busybox's bb_strtoi reads it.
fn parse_pid(a: &str) -> Option<i64> {
    let t = a.trim_start_matches(' ');
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i32>().ok().map(i64::from)
}

impl Interp<'_> {
    /// `kill [-s SIG | -SIG | -N] PID...`, `kill -l [N|NAME]...`.
    pub(super) fn cmd_kill(&mut self, args: &[String], fds: &Fds) -> i32 {
        let me = if self.direct { "kill" } else { "sh" };
        let mut i = 0;
        let mut sig = 15;
        if let Some(first) = args.first().filter(|a| a.starts_with('-')) {
            if first == "-l" {
                if args.len() == 1 {
                    let mut out = String::new();
                    for (n, name) in SIGNALS.iter().enumerate().skip(1) {
                        out.push_str(&format!("{n:2}) {name}\n"));
                    }
                    out.push_str(&format!("{SIGRTMIN:2}) RTMIN\n{SIGRTMAX:2}) RTMAX\n"));
                    self.out(fds, out.as_bytes());
                    return 0;
                }
                let mut out = String::new();
                for a in args.iter().skip(1) {
                    if a.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
                        match a.parse::<u32>() {
                            Ok(n) => out.push_str(&format!("{}\n", signame((n & 0x7f) as i32))),
                            Err(_) => {
                                self.out(fds, out.as_bytes());
                                self.err(fds, &format!("{me}: unknown signal '{a}'\n"));
                                return 1;
                            }
                        }
                    } else {
                        match signum(a) {
                            Some(n) => out.push_str(&format!("{n}\n")),
                            None => {
                                self.out(fds, out.as_bytes());
                                self.err(fds, &format!("{me}: unknown signal '{a}'\n"));
                                return 1;
                            }
                        }
                    }
                }
                self.out(fds, out.as_bytes());
                return 0;
            }
            let opt = first.get(1..).unwrap_or("");
            i = 1;
            if opt == "-" {
                // `kill -- PID`.
            } else {
                let name = if opt == "s" && args.len() > 1 {
                    i = 2;
                    args.get(1).map(String::as_str).unwrap_or("")
                } else {
                    opt
                };
                match signum(name) {
                    Some(n) => sig = n,
                    None => {
                        self.err(fds, &format!("{me}: bad signal name '{name}'\n"));
                        return 1;
                    }
                }
            }
        }
        let pids = args.get(i..).unwrap_or(&[]);
        if pids.is_empty() {
            self.err(fds, &format!("{me}: you need to specify whom to kill\n"));
            return 1;
        }
        let mut errors = 0;
        for a in pids {
            if a.starts_with('%') {
                self.err(fds, &format!("{me}: can't find {a}: no such job\n"));
                errors += 1;
                continue;
            }
            let Some(pid) = parse_pid(a) else {
                self.err(fds, &format!("{me}: invalid number '{a}'\n"));
                errors += 1;
                continue;
            };
            if self.jobs.signal(pid, sig).is_some() {
                continue;
            }
            if let Err(why) = self.shell.signal(pid, sig) {
                self.err(fds, &format!("{me}: can't kill pid {pid}: {why}\n"));
                errors += 1;
            }
        }
        i32::from(errors > 0)
    }

    /// `hostname [-s]`.
    pub(super) fn cmd_hostname(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut short = false;
        for a in args {
            match a.as_str() {
                "-s" => short = true,
                "-f" | "-d" | "-i" | "-F" => {
                    self.err(fds, &format!("hostname: invalid option -- '{}'\n", &a[1..]));
                    return 1;
                }
                s if s.starts_with('-') && s.len() > 1 => {
                    let c = s.chars().nth(1).unwrap_or('-');
                    self.err(fds, &format!("hostname: invalid option -- '{c}'\n"));
                    return 1;
                }
                _ => {
                    self.err(fds, "hostname: sethostname: Operation not permitted\n");
                    return 1;
                }
            }
        }
        let mut name = self.shell.hostname();
        if short {
            name = name.split('.').next().unwrap_or("").to_string();
        }
        name.push('\n');
        self.out(fds, name.as_bytes());
        0
    }

    /// `pwd`: the current directory (`/` until `cd`).
    pub(super) fn cmd_pwd(&mut self, _args: &[String], fds: &Fds) -> i32 {
        let line = format!("{}\n", self.cwd);
        self.out(fds, line.as_bytes());
        0
    }

    /// `basename NAME [SUFFIX]`.
    pub(super) fn cmd_basename(&mut self, args: &[String], fds: &Fds) -> i32 {
        let args: Vec<&String> = args
            .iter()
            .skip(usize::from(args.first().is_some_and(|a| a == "--")))
            .collect();
        let (name, suffix) = match args.as_slice() {
            [n] => (n.as_str(), None),
            [n, s] => (n.as_str(), Some(s.as_str())),
            _ => {
                self.err(fds, "Usage: basename FILE [SUFFIX]\n");
                return 1;
            }
        };
        let trimmed = name.trim_end_matches('/');
        let mut base = if trimmed.is_empty() {
            if name.is_empty() { "" } else { "/" }.to_string()
        } else {
            trimmed.rsplit('/').next().unwrap_or("").to_string()
        };
        if let Some(s) = suffix {
            if base.len() > s.len() && base.ends_with(s) {
                base.truncate(base.len() - s.len());
            }
        }
        base.push('\n');
        self.out(fds, base.as_bytes());
        0
    }

    /// `dirname NAME`.
    pub(super) fn cmd_dirname(&mut self, args: &[String], fds: &Fds) -> i32 {
        let args: Vec<&String> = args
            .iter()
            .skip(usize::from(args.first().is_some_and(|a| a == "--")))
            .collect();
        let [name] = args.as_slice() else {
            self.err(fds, "Usage: dirname FILENAME\n");
            return 1;
        };
        let trimmed = name.trim_end_matches('/');
        let dir = if trimmed.is_empty() {
            if name.starts_with('/') { "/" } else { "." }.to_string()
        } else {
            match trimmed.rfind('/') {
                None => ".".to_string(),
                Some(i) => {
                    let d = trimmed.get(..i).unwrap_or("").trim_end_matches('/');
                    if d.is_empty() {
                        "/".to_string()
                    } else {
                        d.to_string()
                    }
                }
            }
        };
        self.out(fds, format!("{dir}\n").as_bytes());
        0
    }

    /// `seq [-w] [-s SEP] [FIRST [INC]] LAST`, written as it goes.
    pub(super) async fn cmd_seq(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut sep = "\n".to_string();
        let mut width = false;
        let mut nums: Vec<&String> = Vec::new();
        let mut i = 0;
        while let Some(a) = args.get(i) {
            i += 1;
            let is_num = a.parse::<f64>().is_ok();
            match a.as_str() {
                "-w" => width = true,
                "-s" => match args.get(i) {
                    Some(s) => {
                        sep = s.clone();
                        i += 1;
                    }
                    None => {
                        self.err(fds, "seq: option requires an argument -- 's'\n");
                        return 1;
                    }
                },
                s if s.starts_with("-s") && s.len() > 2 => sep = s[2..].to_string(),
                s if s.starts_with('-') && s.len() > 1 && !is_num => {
                    let c = s.chars().nth(1).unwrap_or('-');
                    self.err(fds, &format!("seq: invalid option -- '{c}'\n"));
                    return 1;
                }
                _ => nums.push(a),
            }
        }
        let parse = |s: &str| -> Option<f64> {
            let v = s.parse::<f64>().ok()?;
            v.is_finite().then_some(v)
        };
        let (first, inc, last) = match nums.as_slice() {
            [l] => ("1", "1", l.as_str()),
            [f, l] => (f.as_str(), "1", l.as_str()),
            [f, s, l] => (f.as_str(), s.as_str(), l.as_str()),
            _ => {
                self.err(fds, "Usage: seq [-w] [-s SEP] [FIRST [INC]] LAST\n");
                return 1;
            }
        };
        let (Some(f), Some(s), Some(l)) = (parse(first), parse(inc), parse(last)) else {
            let bad = [first, inc, last]
                .into_iter()
                .find(|x| parse(x).is_none())
                .unwrap_or("");
            self.err(fds, &format!("seq: invalid number '{bad}'\n"));
            return 1;
        };
        let decimals = |x: &str| x.split_once('.').map(|(_, d)| d.len()).unwrap_or(0);
        let prec = decimals(first).max(decimals(inc));
        let fmt = |v: f64| format!("{v:.prec$}");
        let w = if width {
            fmt(f).len().max(fmt(l).len())
        } else {
            0
        };
        let mut out = String::new();
        let mut n = 0u64;
        if s != 0.0 {
            loop {
                let v = f + s * n as f64;
                if (s > 0.0 && v > l) || (s < 0.0 && v < l) {
                    break;
                }
                if n > 0 {
                    out.push_str(&sep);
                }
                let text = fmt(v);
                if width && text.len() < w {
                    let (neg, digits) = match text.strip_prefix('-') {
                        Some(d) => ("-", d),
                        None => ("", text.as_str()),
                    };
                    out.push_str(neg);
                    out.push_str(&"0".repeat(w - text.len()));
                    out.push_str(digits);
                } else {
                    out.push_str(&text);
                }
                n += 1;
                if out.len() >= super::super::io::PIPE_HIGH_WATER {
                    self.out(fds, out.as_bytes());
                    out.clear();
                    self.drain(fds).await;
                    tokio::task::yield_now().await;
                    if self.sigpipe {
                        return 1;
                    }
                }
            }
        }
        if n > 0 {
            out.push('\n');
        }
        self.out(fds, out.as_bytes());
        0
    }

    /// `env [-i] [-u NAME]... [NAME=VALUE]... [COMMAND [ARG]...]`.
    pub(super) async fn cmd_env(
        &mut self,
        args: &[String],
        assigns: &[(String, String)],
        fds: &Fds,
    ) -> i32 {
        let mut clear = false;
        let mut unset: Vec<String> = Vec::new();
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-i" | "-" => clear = true,
                "-u" => match args.get(i + 1) {
                    Some(n) => {
                        unset.push(n.clone());
                        i += 1;
                    }
                    None => {
                        self.err(fds, "env: option requires an argument -- 'u'\n");
                        return 1;
                    }
                },
                "--" => {
                    i += 1;
                    break;
                }
                s if s.starts_with("-u") && s.len() > 2 => unset.push(s[2..].to_string()),
                s if s.starts_with('-') && s.len() > 1 => {
                    let c = s.chars().nth(1).unwrap_or('-');
                    self.err(fds, &format!("env: invalid option -- '{c}'\n"));
                    return 1;
                }
                _ => break,
            }
            i += 1;
        }
        let mut sets: Vec<(String, String)> = assigns.to_vec();
        while let Some(a) = args.get(i) {
            match a.split_once('=') {
                Some((n, v)) => sets.push((n.to_string(), v.to_string())),
                None => break,
            }
            i += 1;
        }
        let command = args.get(i..).unwrap_or(&[]);
        if command.is_empty() {
            let mut out = String::new();
            for (n, v) in self.environment(clear, &unset, &sets) {
                out.push_str(&format!("{n}={v}\n"));
            }
            self.out(fds, out.as_bytes());
            return 0;
        }
        let name = command.first().cloned().unwrap_or_default();
        let cmd = command_name(&name).to_string();
        if !UTILITIES.contains(&cmd.as_str()) {
            self.err(
                fds,
                &format!("env: can't execute '{name}': No such file or directory\n"),
            );
            return 127;
        }
        let mut child = self.fork();
        if clear {
            child.no_env = true;
            child.vars.clear();
            child.exported.clear();
        }
        for n in &unset {
            child.vars.insert(n.clone(), None);
            child.exported.remove(n);
        }
        for (n, v) in &sets {
            child.vars.insert(n.clone(), Some(v.clone()));
            child.exported.insert(n.clone());
        }
        let env_assigns: Vec<(String, String)> = sets.clone();
        let status = child
            .run_command(&cmd, &name, command, &env_assigns, fds)
            .await;
        if child.sigpipe {
            self.sigpipe = true;
        }
        status
    }

    /// The environment a program started now would see: the container's, then the exported
    /// variables (minus unset ones), then `sets`.
    pub(super) fn environment(
        &self,
        clear: bool,
        unset: &[String],
        sets: &[(String, String)],
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = if clear || self.no_env {
            Vec::new()
        } else {
            self.shell.env_vars()
        };
        let put = |env: &mut Vec<(String, String)>, n: &str, v: &str| match env
            .iter_mut()
            .find(|(k, _)| k == n)
        {
            Some(slot) => slot.1 = v.to_string(),
            None => env.push((n.to_string(), v.to_string())),
        };
        if !clear {
            for (k, v) in &self.vars {
                match v {
                    None => env.retain(|(n, _)| n != k),
                    Some(v) if self.exported.contains(k) => put(&mut env, k, v),
                    Some(v) => {
                        // A shell variable that shadows an environment variable is passed
                        // with its new value.
                        if env.iter().any(|(n, _)| n == k) {
                            put(&mut env, k, v);
                        }
                    }
                }
            }
        }
        for n in unset {
            env.retain(|(k, _)| k != n);
        }
        for (n, v) in sets {
            put(&mut env, n, v);
        }
        env
    }
}
