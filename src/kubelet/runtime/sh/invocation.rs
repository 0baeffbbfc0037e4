//! How a command line reaches the shell: `busybox` prefixes, utilities named by path, and the
//! options and operands of an `sh` invocation (`-c script`, a script file, `-e`, `-x`).

/// Utilities of the subset (may also be named by path, `/bin/NAME`).
pub(super) const UTILITIES: &[&str] = &[
    "sleep",
    "touch",
    "rm",
    "echo",
    "cat",
    "test",
    "[",
    "true",
    "false",
    "mkdir",
    "date",
    "printf",
    "ls",
    "sh",
    "ash",
    "tar",
    "kill",
    "head",
    "tail",
    "wc",
    "grep",
    "egrep",
    "fgrep",
    "tee",
    "env",
    "hostname",
    "id",
    "pwd",
    "basename",
    "dirname",
    "seq",
    "sort",
    "uniq",
    "cut",
    "tr",
    "awk",
    "df",
    "stat",
    "hexdump",
    "od",
    "sha256sum",
    "sha1sum",
    "sha512sum",
    "groups",
    "whoami",
    "wget",
    "nc",
];

/// `busybox NAME args...` is `NAME args...`.
pub(super) fn strip_busybox(argv: &[String]) -> (&[String], &str) {
    let name = argv.first().map(String::as_str).unwrap_or("");
    if matches!(name, "busybox" | "/bin/busybox") && argv.len() > 1 {
        let rest = argv.get(1..).unwrap_or(&[]);
        return (rest, rest.first().map(String::as_str).unwrap_or(""));
    }
    (argv, name)
}

pub(super) fn is_shell_name(name: &str) -> bool {
    matches!(
        name,
        "sh" | "/bin/sh"
            | "/usr/bin/sh"
            | "ash"
            | "/bin/ash"
            | "bash"
            | "/bin/bash"
            | "/usr/bin/bash"
    )
}

/// A shell invocation running a script file, as the literal command `sh ...` of the subset.
pub(super) fn shell_file_argv(argv: &[String]) -> Vec<String> {
    let mut v = vec!["sh".to_string()];
    v.extend(argv.iter().skip(1).cloned());
    v
}

/// `/bin/NAME` (and friends) names the utility NAME.
pub(super) fn command_name(name: &str) -> &str {
    for prefix in [
        "/bin/",
        "/usr/bin/",
        "/sbin/",
        "/usr/sbin/",
        "/usr/local/bin/",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if UTILITIES.contains(&rest) {
                return rest;
            }
        }
    }
    name
}

/// How `sh` was asked to run.
pub(super) enum ShInvocation {
    Command {
        script: String,
        args: Vec<String>,
        errexit: bool,
        xtrace: bool,
    },
    File {
        path: String,
        args: Vec<String>,
        errexit: bool,
        xtrace: bool,
    },
    /// No script: commands come from standard input (`-s` passes positional parameters,
    /// `-i` makes the shell interactive).
    Stdin {
        args: Vec<String>,
        errexit: bool,
        xtrace: bool,
        interactive: bool,
    },
}

impl ShInvocation {
    /// `argv[0]` is the shell.
    pub(super) fn parse(argv: &[String]) -> Result<ShInvocation, String> {
        let sh = argv.first().cloned().unwrap_or_else(|| "sh".into());
        let (mut c, mut errexit, mut xtrace) = (false, false, false);
        let (mut s, mut interactive) = (false, false);
        let mut i = 1;
        while let Some(a) = argv.get(i) {
            if a == "--" || a == "-" {
                i += 1;
                break;
            }
            let on = a.starts_with('-');
            if !(on || a.starts_with('+')) || a.len() < 2 {
                break;
            }
            for ch in a.chars().skip(1) {
                match ch {
                    'c' if on => c = true,
                    's' if on => s = true,
                    'i' => interactive = on,
                    'e' => errexit = on,
                    'x' => xtrace = on,
                    _ => {
                        return Err(format!(
                            "{sh}: illegal option {}{ch}",
                            if on { '-' } else { '+' }
                        ))
                    }
                }
            }
            i += 1;
        }
        let rest = argv.get(i..).unwrap_or(&[]);
        if c {
            let Some(script) = rest.first() else {
                return Err(format!("{sh}: -c requires an argument"));
            };
            let mut args: Vec<String> = rest.iter().skip(1).cloned().collect();
            if args.is_empty() {
                args.push(sh);
            }
            Ok(ShInvocation::Command {
                script: script.clone(),
                args,
                errexit,
                xtrace,
            })
        } else if s || rest.is_empty() {
            let mut args = vec![sh];
            args.extend(rest.iter().cloned());
            Ok(ShInvocation::Stdin {
                args,
                errexit,
                xtrace,
                interactive,
            })
        } else if let Some(path) = rest.first() {
            Ok(ShInvocation::File {
                path: path.clone(),
                args: rest.to_vec(),
                errexit,
                xtrace,
            })
        } else {
            Err(format!("{sh}: no script"))
        }
    }
}
