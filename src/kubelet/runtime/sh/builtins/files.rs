//! The file utilities: `cat`, `touch`, `rm`, `mkdir` and `ls` on the [`Shell`](super::super::Shell)'s
//! filesystem, with their option parsing and busybox's messages; and how the filters open their
//! operands (a file, or standard input for `-`).

use super::super::interp::{parent, Fds, Interp};
use super::super::io::Source;

/// How a utility says it cannot open an operand: busybox's `open_or_warn` ("can't open 'F':
/// ...", `cat`, `tail`) or `fopen_or_warn` ("F: ...", `head`, `wc`, `grep` ...).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum OpenStyle {
    CantOpen,
    Perror,
}

/// An opened input: a file's content (handed over whole) or a stream.
pub(super) enum Input {
    Data(Option<Vec<u8>>),
    Stream(Source),
}

impl Interp<'_> {
    pub(super) async fn cmd_cat(&mut self, args: &[String], fds: &Fds) -> i32 {
        let operands = match getopts(args, "u") {
            Ok((_, ops)) => ops,
            Err(c) => return self.bad_option("cat", c, fds),
        };
        let stdin = ["-".to_string()];
        let operands = if operands.is_empty() {
            &stdin[..]
        } else {
            operands
        };
        let mut status = 0;
        for a in operands {
            let Some(mut input) = self.open_input("cat", a, fds, OpenStyle::CantOpen) else {
                status = 1;
                continue;
            };
            while let Some(chunk) = self.next_chunk(&mut input).await {
                self.out(fds, &chunk);
                self.drain(fds).await;
                if self.sigpipe {
                    return 1;
                }
            }
        }
        status
    }

    /// Open operand `a` of `cmd` for reading (`-` and `/dev/stdin` are standard input); None
    /// after saying why not.
    pub(super) fn open_input(
        &mut self,
        cmd: &str,
        a: &str,
        fds: &Fds,
        style: OpenStyle,
    ) -> Option<Input> {
        if a == "-" || a == "/dev/stdin" || a == "/dev/fd/0" {
            return Some(Input::Stream(fds.inp.clone()));
        }
        let p = self.path(a);
        if self.is_dir(&p) {
            let msg = match style {
                OpenStyle::CantOpen => format!("{cmd}: read error: Is a directory\n"),
                OpenStyle::Perror => format!("{cmd}: {a}: Is a directory\n"),
            };
            self.err(fds, &msg);
            return None;
        }
        match self.read(&p) {
            Some(data) => Some(Input::Data(Some(data))),
            None => {
                let msg = match style {
                    OpenStyle::CantOpen => {
                        format!("{cmd}: can't open '{a}': No such file or directory\n")
                    }
                    OpenStyle::Perror => format!("{cmd}: {a}: No such file or directory\n"),
                };
                self.err(fds, &msg);
                None
            }
        }
    }

    /// The next bytes of an input; None at its end.
    pub(super) async fn next_chunk(&mut self, input: &mut Input) -> Option<Vec<u8>> {
        match input {
            Input::Data(d) => d.take().filter(|d| !d.is_empty()),
            Input::Stream(src) => {
                let src = src.clone();
                self.read_chunk(&src).await
            }
        }
    }

    /// All of an input, up to `limit` bytes (after that, an "out of memory" failure).
    pub(super) async fn read_input(
        &mut self,
        cmd: &str,
        input: Input,
        limit: usize,
        fds: &Fds,
    ) -> Option<Vec<u8>> {
        match input {
            Input::Data(d) => Some(d.unwrap_or_default()),
            Input::Stream(src) => match self.read_all(&src, limit).await {
                Ok(d) => Some(d),
                Err(()) => {
                    self.err(fds, &format!("{cmd}: out of memory\n"));
                    None
                }
            },
        }
    }

    /// Create (or truncate, or with `excl` refuse an existing) file, as `open(2)` with
    /// `O_CREAT`; the error is the reason.
    pub(super) fn create_file(&mut self, p: &str, excl: bool) -> Result<(), String> {
        if self.is_dir(p) {
            return Err("Is a directory".into());
        }
        if excl && self.exists(p) {
            return Err("File exists".into());
        }
        if p == "/dev/null" {
            return Ok(());
        }
        if p.is_empty() || !self.is_dir(parent(p)) {
            return Err("No such file or directory".into());
        }
        self.shell.write(p, b"", false)
    }

    pub(super) fn bad_option(&mut self, cmd: &str, c: char, fds: &Fds) -> i32 {
        self.err(fds, &format!("{cmd}: invalid option -- '{c}'\n"));
        1
    }

    pub(super) fn cmd_touch(&mut self, args: &[String], fds: &Fds) -> i32 {
        let (flags, operands) = match getopts(args, "cam") {
            Ok(x) => x,
            Err(c) => return self.bad_option("touch", c, fds),
        };
        if operands.is_empty() {
            self.err(fds, "touch: missing operand\n");
            return 1;
        }
        let mut status = 0;
        for a in operands {
            let p = self.path(a);
            if self.exists(&p) || flags.contains('c') {
                continue;
            }
            let result = if p.is_empty() || !self.is_dir(parent(&p)) {
                Err("No such file or directory".to_string())
            } else {
                self.shell.write(&p, b"", true)
            };
            if let Err(why) = result {
                self.err(fds, &format!("touch: {a}: {why}\n"));
                status = 1;
            }
        }
        status
    }

    pub(super) fn cmd_rm(&mut self, args: &[String], fds: &Fds) -> i32 {
        let (flags, operands) = match getopts(args, "fFrR") {
            Ok(x) => x,
            Err(c) => return self.bad_option("rm", c, fds),
        };
        let force = flags.contains('f') || flags.contains('F');
        let recursive = flags.contains('r') || flags.contains('R');
        if operands.is_empty() {
            if force {
                return 0;
            }
            self.err(fds, "rm: missing operand\n");
            return 1;
        }
        let mut status = 0;
        for a in operands {
            let last = a.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if last == "." || last == ".." {
                self.err(fds, "rm: can't remove '.' or '..'\n");
                status = 1;
                continue;
            }
            let p = self.path(a);
            if p == "/" {
                self.err(fds, &format!("rm: can't remove '{a}': Is a directory\n"));
                status = 1;
                continue;
            }
            if !self.exists(&p) {
                if !force {
                    self.err(
                        fds,
                        &format!("rm: can't remove '{a}': No such file or directory\n"),
                    );
                    status = 1;
                }
                continue;
            }
            if self.is_dir(&p) && !recursive {
                self.err(fds, &format!("rm: can't remove '{a}': Is a directory\n"));
                status = 1;
                continue;
            }
            if let Err(why) = self.shell.remove(&p) {
                self.err(fds, &format!("rm: can't remove '{a}': {why}\n"));
                status = 1;
            }
        }
        status
    }

    pub(super) fn cmd_mkdir(&mut self, args: &[String], fds: &Fds) -> i32 {
        let (flags, operands) = match getopts(args, "p") {
            Ok(x) => x,
            Err(c) => return self.bad_option("mkdir", c, fds),
        };
        if operands.is_empty() {
            self.err(fds, "mkdir: missing operand\n");
            return 1;
        }
        let parents = flags.contains('p');
        let mut status = 0;
        for a in operands {
            let p = self.path(a);
            let result = if p.is_empty() {
                Err("No such file or directory".to_string())
            } else if parents {
                let mut cur = String::new();
                let mut r = Ok(());
                for comp in p.split('/').filter(|c| !c.is_empty()) {
                    cur.push('/');
                    cur.push_str(comp);
                    if self.is_dir(&cur) {
                        continue;
                    }
                    if self.exists(&cur) {
                        r = Err(if cur == p {
                            "File exists"
                        } else {
                            "Not a directory"
                        }
                        .to_string());
                        break;
                    }
                    if let Err(e) = self.shell.mkdir(&cur) {
                        r = Err(e);
                        break;
                    }
                }
                r
            } else if self.exists(&p) {
                Err("File exists".to_string())
            } else if !self.is_dir(parent(&p)) {
                Err("No such file or directory".to_string())
            } else {
                self.shell.mkdir(&p)
            };
            if let Err(why) = result {
                self.err(
                    fds,
                    &format!("mkdir: can't create directory '{a}': {why}\n"),
                );
                status = 1;
            }
        }
        status
    }

    pub(super) fn cmd_ls(&mut self, args: &[String], fds: &Fds) -> i32 {
        let (flags, operands) = match getopts(args, "1aA") {
            Ok(x) => x,
            Err(c) => return self.bad_option("ls", c, fds),
        };
        let default = [".".to_string()];
        let operands = if operands.is_empty() {
            &default[..]
        } else {
            operands
        };
        let mut status = 0;
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for a in operands {
            let p = self.path(a);
            if self.is_dir(&p) {
                dirs.push((a.clone(), p));
            } else if self.exists(&p) {
                files.push(a.clone());
            } else {
                self.err(fds, &format!("ls: {a}: No such file or directory\n"));
                status = 1;
            }
        }
        let mut out = String::new();
        for f in &files {
            out.push_str(f);
            out.push('\n');
        }
        let headers = operands.len() > 1;
        for (i, (a, p)) in dirs.iter().enumerate() {
            if i > 0 || !files.is_empty() {
                out.push('\n');
            }
            if headers {
                out.push_str(&format!("{a}:\n"));
            }
            let mut entries = self.shell.list_dir(p).unwrap_or_default();
            if flags.contains('a') {
                entries.push(".".into());
                entries.push("..".into());
            }
            entries.sort();
            entries.dedup();
            for e in entries {
                if e.starts_with('.') && !flags.contains('a') && !flags.contains('A') {
                    continue;
                }
                out.push_str(&e);
                out.push('\n');
            }
        }
        self.out(fds, out.as_bytes());
        status
    }
}

/// Options (`-abc`, up to `--` or the first operand) among `allowed`: (flags, operands), or the
/// first unknown option letter.
pub(super) fn getopts<'x>(
    args: &'x [String],
    allowed: &str,
) -> Result<(String, &'x [String]), char> {
    let mut flags = String::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if a.len() > 1 && a.starts_with('-') {
            for c in a.chars().skip(1) {
                if !allowed.contains(c) {
                    return Err(c);
                }
                flags.push(c);
            }
            i += 1;
        } else {
            break;
        }
    }
    Ok((flags, args.get(i..).unwrap_or(&[])))
}
