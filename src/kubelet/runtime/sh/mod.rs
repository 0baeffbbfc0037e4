//! A small, well-defined subset of POSIX `sh` (as busybox `ash` runs it), interpreted against a
//! simulated container: its in-memory filesystem, its environment, its stdout/stderr and the
//! cluster clock, all reached through the [`Shell`] trait. This module touches nothing else: no
//! real processes, files, sockets or wall time.
//!
//! # The subset
//!
//! - **Commands**: `sleep N...` (fractions, `s`/`m`/`h`/`d` suffixes, `infinity`),
//!   `touch [-c] f...`, `rm [-f] [-r|-R] f...`, `echo [-n] [-e|-E] args...`, `cat [f...]`,
//!   `test expr` and `[ expr ]` (`-e -f -d -s -r -w -x -z -n`, `=`, `==`, `!=`, `<`, `>`,
//!   `-eq -ne -lt -le -gt -ge`, `!`, `-a`, `-o`, `( )`), `exit [N]`, `true`, `false`, `:`,
//!   `mkdir [-p] d...`, `date [-u] [-R] [-I] [+FORMAT]` (time from [`Shell::now_unix`]),
//!   `printf FORMAT args...` (`%s %b %c %d %i %u %x %X %o %f %%`, flags `-0+ `, width, precision,
//!   backslash escapes), `ls [-1aA] [path...]` (entries from [`Shell::list_dir`]),
//!   `sh|ash [-c script [arg0 args...] | file [args...]]` (a nested shell, e.g. a script mounted
//!   from a ConfigMap), the loop builtins `break [N]` / `continue [N]`, and `export`,
//!   `readonly`, `unset`, `set -e|+e|-x|+x`. Utilities may be named by path (`/bin/sleep`).
//!   Any other command name is looked up at run time and fails like a missing binary:
//!   `sh: NAME: not found` on stderr, exit status 127.
//! - **Lists**: `;`, newlines, `&&`, `||`, `! pipeline`; `#` comments; `\`-newline continuations.
//! - **Compound commands**: `if/then/elif/else/fi`, `while`/`until ...; do ...; done`,
//!   `for x [in words]; do ...; done`, each optionally followed by output redirections.
//! - **Redirections**: `> f`, `>> f`, `>| f`, `N> f`, `N>> f`, `N>&M` for N, M in {1, 2}
//!   (`2>&1`, `>&2`); `/dev/null`, `/dev/stdout`, `/dev/stderr` are understood.
//! - **Words**: single quotes, double quotes, backslash escapes; `$NAME`, `${NAME}`, `$0`-`$9`,
//!   `$?`, `$#`, `$@`, `$*`, `$$`, `${#NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:=word}`,
//!   `${NAME=word}`, `${NAME:+word}`, `${NAME+word}` (with a plain `word`); unquoted expansions are
//!   split into fields on blanks. Variables come from assignments (`X=1`) first, then from the
//!   container's environment ([`Shell::env`]).
//!
//! Anything else is a [`ParseError`] naming the construct: command substitution (`$(...)`,
//! backquotes), arithmetic (`$((...))`), pipelines (`|`), background jobs (`&`), subshells and
//! functions (`( )`), brace groups, `case`, `[[`, input redirections and here-documents (`<`,
//! `<<`), pathname expansion (unquoted `*`, `?`), tilde expansion, other parameter expansions
//! (`${X#p}`, `${X:?}` ...), and the builtins this subset lacks (`cd`, `read`, `trap`, `eval`,
//! `exec`, `kill`, `wait`, `shift`, ...).
//!
//! # Guarantees
//!
//! Parsing and running never panic, on any input. Every loop iteration yields to the executor and
//! `sleep` awaits [`Shell::sleep`], so a running script is cancelled by dropping its future (the
//! container being killed), even `while true; do :; done`. Paths handed to the [`Shell`] are
//! absolute and normalized (relative ones resolve against `/`). The top-level directories of the
//! busybox image (`/tmp`, `/etc`, `/var`, ...) are taken to exist even when the [`Shell`]'s
//! filesystem holds nothing under them.
//!
//! # Layout
//!
//! `lexer` turns the source into tokens and `parser` the tokens into the syntax tree of `ast`;
//! `interp` runs the tree (`expand` expands its words) and `builtins` holds the utilities it
//! runs (`files`, `test`, `printf` and `date` in their own files); `invocation` reads an `sh` or
//! `busybox` command line. This file holds the public API and its errors.

mod ast;
mod builtins;
mod expand;
mod interp;
mod invocation;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use ast::{AndOr, Command, List, Pipeline, Simple, Word};
use interp::Interp;
use invocation::{
    command_name, is_shell_name, shell_file_argv, strip_busybox, ShInvocation, UTILITIES,
};
use lexer::Lexer;
use parser::Parser;

/// Nesting limit of compound commands (`if`/`while`/`for` inside one another).
const MAX_DEPTH: usize = 32;
/// Nesting limit of `sh` run from a script.
const MAX_SH_NESTING: usize = 4;
/// Nesting limit of `!` and `( )` inside a `test` expression.
const MAX_TEST_DEPTH: usize = 64;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a script is not accepted. Byte offsets (`at`) index the script source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Valid `sh`, but outside the subset this module interprets.
    #[error("{construct} is not supported by the simulated shell (at byte {at})")]
    Unsupported {
        /// The construct, e.g. "command substitution $(...)".
        construct: String,
        /// Where it starts.
        at: usize,
    },
    /// A `'` or `"` without its closing quote.
    #[error("unterminated quoted string (the {quote} at byte {at})")]
    UnterminatedQuote {
        /// The opening quote character.
        quote: char,
        /// Where it is.
        at: usize,
    },
    /// A token where the grammar does not allow it (`done` without `do`, `then` without `if` ...).
    #[error("unexpected {token:?} (at byte {at})")]
    UnexpectedToken {
        /// The token as written (`newline` for a line break).
        token: String,
        /// Where it starts.
        at: usize,
    },
    /// The script ends inside a construct.
    #[error("unexpected end of file (expecting {expected})")]
    UnexpectedEnd {
        /// What was still expected, e.g. `"done"`.
        expected: String,
    },
    /// A malformed `${...}`.
    #[error("bad substitution {text:?} (at byte {at})")]
    BadSubstitution {
        /// The text of the substitution (possibly cut short).
        text: String,
        /// Where the `$` is.
        at: usize,
    },
    /// Compound commands nested deeper than the interpreter allows.
    #[error("compound commands nested deeper than {limit} levels (at byte {at})")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Where the level that is too deep starts.
        at: usize,
    },
    /// [`from_command`] was given an empty command line.
    #[error("empty command")]
    EmptyCommand,
    /// [`from_command`] was given a program that is neither a shell nor a command of the subset.
    #[error("{command}: not a command of the simulated shell")]
    UnknownCommand {
        /// The program (argv\[0\]).
        command: String,
    },
    /// A shell invocation this module does not model (`sh -c` without a script, `sh -i` ...).
    #[error("{reason}")]
    BadInvocation {
        /// What is wrong, as the shell would say it.
        reason: String,
    },
}

fn unsupported(construct: impl Into<String>, at: usize) -> ParseError {
    ParseError::Unsupported {
        construct: construct.into(),
        at,
    }
}

fn unexpected(token: impl Into<String>, at: usize) -> ParseError {
    ParseError::UnexpectedToken {
        token: token.into(),
        at,
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// A parsed script, ready to [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    body: List,
    /// `$0`, `$1`, ...
    args: Vec<String>,
    errexit: bool,
    xtrace: bool,
}

impl Script {
    /// Parse `src` as the subset (see the module docs); anything outside it is an error.
    pub fn parse(src: &str) -> Result<Script, ParseError> {
        let toks = Lexer::new(src).tokens()?;
        let body = Parser::new(toks, src.len()).script()?;
        Ok(Script {
            body,
            args: vec!["sh".to_string()],
            errexit: false,
            xtrace: false,
        })
    }

    /// A script running `argv` as one command, without expansion.
    fn literal(argv: &[String]) -> Script {
        let simple = Simple {
            assigns: Vec::new(),
            words: argv.iter().map(|a| Word::literal_arg(a)).collect(),
            redirs: Vec::new(),
        };
        let pipeline = Pipeline {
            negate: false,
            command: Command::Simple(simple),
        };
        Script {
            body: List {
                items: vec![AndOr {
                    first: pipeline,
                    rest: Vec::new(),
                }],
            },
            args: vec!["sh".to_string()],
            errexit: false,
            xtrace: false,
        }
    }

    fn empty() -> Script {
        Script {
            body: List::default(),
            args: vec!["sh".to_string()],
            errexit: false,
            xtrace: false,
        }
    }
}

/// What a running script can do to the outside world (the container).
#[async_trait::async_trait]
pub trait Shell: Send + Sync {
    /// Sleep for `seconds` of cluster time (fractions allowed). The interpreter passes finite
    /// values in `0..=1e9`; longer sleeps (`sleep infinity`) are several calls.
    async fn sleep(&self, seconds: f64);
    /// Read a file (None if missing). Paths are absolute; relative ones resolve against "/".
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// Write (`append`: append to) a file, creating it. The interpreter has checked that the
    /// parent directory exists and that `path` is not a directory.
    fn write(&self, path: &str, data: &[u8], append: bool) -> Result<(), String>;
    /// Remove a file, or a directory with everything under it. The interpreter has checked that
    /// it exists; the error is a reason such as "Permission denied".
    fn remove(&self, path: &str) -> Result<(), String>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &str) -> bool;
    /// Whether a regular file exists.
    fn is_file(&self, path: &str) -> bool;
    /// Whether a directory exists.
    fn is_dir(&self, path: &str) -> bool;
    /// Create one directory; the interpreter has checked that its parent is a directory and that
    /// nothing exists at `path`.
    fn mkdir(&self, path: &str) -> Result<(), String>;
    /// Data the script writes to its standard output.
    fn stdout(&self, data: &[u8]);
    /// Data the script writes to its standard error.
    fn stderr(&self, data: &[u8]);
    /// Environment variables of the container.
    fn env(&self, name: &str) -> Option<String>;
    /// Cluster time, in seconds since the Unix epoch (for `date`). Defaults to the epoch.
    fn now_unix(&self) -> i64 {
        0
    }
    /// Names of the entries of a directory (for `ls`); None when unknown. Defaults to None.
    fn list_dir(&self, _path: &str) -> Option<Vec<String>> {
        None
    }
}

/// Run a script; returns the exit status (0-255). Dropping the future kills the "process".
pub async fn run(script: &Script, shell: &dyn Shell) -> i32 {
    let mut interp = Interp::new(shell, script, None, 0);
    interp.main(script).await
}

/// Run `argv` as an exec probe / `kubectl exec` would (argv\[0\] a command name of the subset, or
/// "sh" "-c" "<script>", or "/bin/sh" "-c" ...): returns (exit status, stdout, stderr). Unknown
/// commands exit 127 with "sh: <cmd>: not found" on stderr as busybox does. A script outside the
/// subset exits 2 with "sh: syntax error: <why>" on stderr.
pub async fn exec(argv: &[String], shell: &dyn Shell) -> (i32, Vec<u8>, Vec<u8>) {
    let Some(first) = argv.first() else {
        return (127, Vec::new(), b"sh: : not found\n".to_vec());
    };
    let (argv, name) = strip_busybox(argv);
    let script = if is_shell_name(name) {
        match ShInvocation::parse(argv) {
            Err(reason) => return (2, Vec::new(), format!("sh: {reason}\n").into_bytes()),
            Ok(ShInvocation::Stdin) => return (0, Vec::new(), Vec::new()),
            Ok(ShInvocation::Command {
                script,
                args,
                errexit,
                xtrace,
            }) => match Script::parse(&script) {
                Ok(mut s) => {
                    s.args = args;
                    s.errexit = errexit;
                    s.xtrace = xtrace;
                    s
                }
                Err(e) => {
                    return (
                        2,
                        Vec::new(),
                        format!("sh: syntax error: {e}\n").into_bytes(),
                    )
                }
            },
            Ok(ShInvocation::File { .. }) => Script::literal(&shell_file_argv(argv)),
        }
    } else if UTILITIES.contains(&command_name(name)) {
        Script::literal(argv)
    } else {
        return (
            127,
            Vec::new(),
            format!("sh: {first}: not found\n").into_bytes(),
        );
    };
    let mut interp = Interp::new(shell, &script, Some((Vec::new(), Vec::new())), 0);
    let code = interp.main(&script).await;
    let (out, err) = interp.capture.take().unwrap_or_default();
    (code, out, err)
}

/// Parse a container's command+args into a Script when they are a shell invocation
/// (["sh","-c",s], ["/bin/sh","-c",s], ["sh","-c",s, arg0, args...], ["sh", file, args...], with
/// `ash`, `bash` or a `busybox` prefix alike) or a single supported command (["sleep","3600"],
/// ["cat","/x"]...). A command the subset lacks is [`ParseError::UnknownCommand`].
pub fn from_command(argv: &[String]) -> Result<Script, ParseError> {
    if argv.is_empty() {
        return Err(ParseError::EmptyCommand);
    }
    let (argv, name) = strip_busybox(argv);
    if is_shell_name(name) {
        return match ShInvocation::parse(argv)
            .map_err(|reason| ParseError::BadInvocation { reason })?
        {
            ShInvocation::Stdin => Ok(Script::empty()),
            ShInvocation::Command {
                script,
                args,
                errexit,
                xtrace,
            } => {
                let mut s = Script::parse(&script)?;
                s.args = args;
                s.errexit = errexit;
                s.xtrace = xtrace;
                Ok(s)
            }
            ShInvocation::File { .. } => Ok(Script::literal(&shell_file_argv(argv))),
        };
    }
    let cmd = command_name(name);
    if UTILITIES.contains(&cmd) {
        Ok(Script::literal(argv))
    } else {
        Err(ParseError::UnknownCommand {
            command: argv.first().cloned().unwrap_or_default(),
        })
    }
}
