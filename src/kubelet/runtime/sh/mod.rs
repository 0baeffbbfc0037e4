//! A small, well-defined subset of POSIX `sh` (as busybox `ash` runs it), interpreted against a
//! simulated container: its in-memory filesystem, its environment, its standard input, output
//! and error, its processes (signals only), its user ([`Shell::credentials`]), its network
//! (connections and listening sockets the [`Shell`] opens) and the cluster clock, all reached
//! through the [`Shell`] trait. This module touches nothing else: no real processes, files or
//! wall time, and no socket but those the [`Shell`] hands it.
//!
//! # The subset
//!
//! - **Commands**: `sleep N...` (fractions, `s`/`m`/`h`/`d` suffixes, `infinity`),
//!   `touch [-c] f...`, `rm [-f] [-r|-R] f...`, `echo [-n] [-e|-E] args...`, `cat [f|-]...`,
//!   `test expr` and `[ expr ]` (`-e -f -d -s -r -w -x -z -n`, `=`, `==`, `!=`, `<`, `>`,
//!   `-eq -ne -lt -le -gt -ge`, `!`, `-a`, `-o`, `( )`), `[[ expr ]]` (ash's: the same with
//!   `&&`/`||` for `-a`/`-o`, `=`/`==`/`!=` matching a pattern, `=~` an extended regular
//!   expression; its words are expanded as a command's), `exit [N]`, `true`, `false`, `:`,
//!   `mkdir [-p] d...`, `date [-u] [-R] [-I] [+FORMAT]` (time from [`Shell::now_unix`]),
//!   `printf FORMAT args...` (`%s %b %c %d %i %u %x %X %o %f %%`, flags `-0+ `, width, precision,
//!   backslash escapes), `ls [-1aA] [path...]` (entries from [`Shell::list_dir`]),
//!   `sh|ash [-c script [arg0 args...] | -s [args...] | file [args...]]` (a nested shell, e.g. a
//!   script mounted from a ConfigMap; without a script it reads its commands from standard
//!   input), `tar` (`-c`/`-x`/`-t`, `-f FILE|-`, `-C DIR`, `-v`, `-O`, `-k`, `-z`, `-m`, `-o`,
//!   `--no-same-owner`, `--no-same-permissions`, `--strip-components N`, `--exclude NAME`,
//!   bundled `cf`/`-xmf`: see `builtins/tar.rs`), `kill [-s SIG|-SIG|-N] PID...` (a background
//!   job, or [`Shell::signal`]) and `kill -l [SIG...]`, `head [-n [-]N] [-c [-]N] [-qv]`,
//!   `tail [-n [+]N] [-c [+]N] [-f] [-s S] [-qv]`, `wc [-clwmL]`,
//!   `grep|egrep|fgrep [-qvicEFlLnoxwsHh] [-e PAT]...` (basic and extended regular expressions,
//!   without back-references), `tee [-a]`, `env [-i] [-u NAME] [NAME=V]... [command]`,
//!   `hostname [-s]` ([`Shell::hostname`]), `id [-u|-g|-G] [-n] [-r] [USER]`, `groups [USER]`
//!   and `whoami` (the user and groups of [`Shell::credentials`], named from the container's
//!   `/etc/passwd` and `/etc/group`, else the busybox image's: see `builtins/id.rs`), `pwd`,
//!   `basename NAME [SUFFIX]`, `dirname NAME`, `seq [-w] [-s SEP] [FIRST [INC]] LAST`,
//!   `sort [-nrufbs]`, `uniq [-cdui]`, `cut -b|-c|-f LIST [-d C] [-s]`, `tr [-cds] SET1 [SET2]`
//!   (ranges, escapes, `[:class:]`), `awk [-F SEP] [-v V=X] [-f FILE | PROGRAM] [FILE|V=X]...`
//!   (POSIX awk without `getline`, `system` and output pipes: see `builtins/awk.rs`),
//!   `df [-kmhPT] [-t TYPE] [PATH...]` (the mounts of [`Shell::mounts`]),
//!   `stat -c FORMAT FILE...` (`%n %N %s %F %b %B %o %h %u %g %U %G`: the filesystem has no
//!   modes, inodes or times, and a format asking for them fails), `sha256sum`, `sha1sum`,
//!   `sha512sum` (`-c` to check), `hexdump [-bcCdox] [-n N] [-s N] [-v]`,
//!   `od [-bcdosx] [-A RADIX] [-t TYPE] [-N N] [-j N] [-v]`,
//!   `wget [-cqS] [--spider] [-O FILE] [-o LOGFILE] [-P DIR] [-U AGENT] [-T SEC] [-Y on|off]
//!   [--header H] [--post-data S|--post-file F] URL...` (HTTP/1.1 over
//!   [`Shell::connect_tcp`]: redirects, chunked bodies, `http_proxy`, busybox's progress line and
//!   messages; see `builtins/wget.rs`), `nc [-nuvz] [-w SEC] [-i SEC] [-p PORT] [-o FILE]
//!   HOST PORT` and `nc -l [-k] -p PORT [-e PROG ARGS...]` (busybox's netcat 1.10 over
//!   [`Shell::connect_tcp`], [`Shell::connect_udp`], [`Shell::listen_tcp`],
//!   [`Shell::listen_udp`]; see `builtins/nc.rs`): names resolve from the container's
//!   `/etc/hosts` (and `localhost`), as without DNS; and the builtins `break [N]` /
//!   `continue [N]`, `read [-r] [NAME...]`, `export`, `readonly`, `unset`,
//!   `set -e|+e|-x|+x|-f|+f` and `set -- ARGS...`, `trap [[ACTION] SIG...]` (`-` resets, `''`
//!   ignores, signal names with or without `SIG`, numbers, `EXIT`/`0`, `ERR`; without
//!   operands it lists the traps), `cd [-|DIR]` (the current directory is the shell's; relative
//!   paths resolve against it), `shift [N]`, `eval ARGS...`, `exec [COMMAND...]` (the command
//!   replaces the shell; without one, the redirections stay), `. FILE` / `source FILE`,
//!   `wait [-n] [PID...]`, `local NAME[=V]...`, `return [N]` and `let EXPR...`. Utilities may
//!   be named by path (`/bin/sleep`). Messages and exit statuses are busybox 1.36's (without
//!   ash's `line N:` in the messages of errors). Any other command name is looked up at run
//!   time and fails like a missing binary: `sh: NAME: not found` on stderr, exit status 127.
//! - **Lists**: `;`, newlines, `&&`, `||`, `! pipeline`, `cmd &` (a background job: a subshell
//!   running alongside the script, in the same future, reading nothing; `$!` is its process ID,
//!   `wait` waits for it and `kill` ends it); `#` comments; `\`-newline continuations.
//! - **Pipelines**: `a | b | c` (newlines allowed after `|`), status of the last stage, `!`
//!   negating it. The stages run at once, each in a subshell (assignments in them do not come
//!   back), connected by in-memory pipes; unlike a kernel pipe, a write never blocks: the writer
//!   waits for its reader after each simple command (and between the 64 KiB pieces of a long
//!   output) while the pipe holds more than 64 KiB, so a pipe's buffer is bounded by 64 KiB plus
//!   one command's output. A stage writing to a pipe whose reader has finished stops as killed
//!   by SIGPIPE (status 141), as busybox's in-process applets do; standard error is not piped.
//! - **Compound commands**: `if/then/elif/else/fi`, `while`/`until ...; do ...; done`,
//!   `for x [in words]; do ...; done`, `case word in [(]pattern[|pattern]...) list ;; ... esac`,
//!   brace groups `{ list; }`, subshells `( list )`, each optionally followed by redirections;
//!   function definitions `name() command` and `function name [()] command` (called with
//!   their own positional parameters; `local` variables; `return`; they hide the utilities and
//!   regular builtins of their name, not the special builtins).
//! - **Redirections**: `> f`, `>> f`, `>| f`, `N> f`, `N>> f`, `N>&M` for N, M in {1, 2}
//!   (`2>&1`, `>&2`), `< f` and `0< f`, here-documents `<<WORD` / `<<-WORD` (expanded unless
//!   the word is quoted); `/dev/null`, `/dev/stdin`, `/dev/stdout`, `/dev/stderr` are understood.
//! - **Words**: single quotes, double quotes, backslash escapes; `$NAME`, `${NAME}`, `$0`-`$9`,
//!   `$?`, `$#`, `$@`, `$*`, `$$`, `$!`, `${#NAME}`, `${NAME:-word}`, `${NAME-word}`,
//!   `${NAME:=word}`, `${NAME=word}`, `${NAME:+word}`, `${NAME+word}`, `${NAME:?word}`,
//!   `${NAME?word}` (an unset parameter ends the shell with status 2), `${NAME#pattern}`,
//!   `${NAME##pattern}`, `${NAME%pattern}`, `${NAME%%pattern}` (the words may hold quotes and
//!   expansions); arithmetic `$((expression))` (ash's: 64-bit integers, C's operators with
//!   assignments, `?:`, `++`/`--`, variables without `$`, `0x`, `0` and `BASE#` constants; an
//!   error ends the shell with status 2); command substitution `$(list)` and `` `list` `` (a
//!   subshell; its output with trailing newlines removed, up to 16 MiB); tilde expansion (`~`,
//!   `~/...`, `~root`; also at the start of an assignment's value); unquoted expansions and
//!   substitutions are split into fields on blanks; unquoted `*`, `?` and `[...]` expand to
//!   the matching paths ([`Shell::list_dir`]; a leading `.` only explicitly; no match leaves
//!   the word as it is; `set -f` turns it off). Variables come from assignments (`X=1`) first,
//!   then from the container's environment ([`Shell::env`]).
//! - **Traps and signals**: a script run by [`run`] is its container's main process (PID 1):
//!   the signals sent to it ([`Shell::signals`]: the kubelet's SIGTERM, a `kill 1`) reach it
//!   only if it traps them, as the kernel does for PID 1 (a script also stops on an untrapped
//!   SIGINT, status 130, as ash does). A trapped signal interrupts `sleep` and `wait` (status
//!   128+signal) at once; otherwise the trap's action runs when the command that is running
//!   ends, with `$?` kept; `exit` without operand in it exits with the status from before it.
//!   The `EXIT` trap runs when the shell (or a subshell that set it) ends; a subshell does not
//!   inherit its parent's traps.
//!
//! Anything else is a [`ParseError`] naming the construct: `<&`, `<>`, `&>`, `>&-`, other
//! parameter expansions (`${X/a/b}`, `${X:1:2}` ...), and the builtins this subset lacks
//! (`umask`, `ulimit`, `getopts`, `command`, `type`, `jobs`, ...). Inside `eval`, `.` and trap
//! actions such an error is a syntax error when they run (status 2).
//!
//! # Standard input and sessions
//!
//! File descriptor 0 of a script is [`Shell::read_stdin`] (a pipe, a file or a here-document
//! once redirected). `sh` without a script reads its commands from it, running each complete
//! command as soon as its last line arrived ([`run_stdin`], and [`exec`] / [`exec_streaming`] /
//! [`run`] for `["sh"]`); the bytes it has read for that are its own, as with ash's input
//! buffer. Interactive (a terminal), it writes the prompt (`PS1`, [`DEFAULT_PS1`] for root) to
//! standard error before each command and `PS2` before continuation lines, and survives syntax
//! errors.
//!
//! # Guarantees
//!
//! Parsing and running never panic, on any input. Every loop iteration and every read of
//! standard input yields to the executor and `sleep` awaits [`Shell::sleep`], so a running
//! script is cancelled by dropping its future (the container being killed), even
//! `while true; do :; done`; the stages of a pipeline are futures of that one future, and so
//! are the connections of `wget` and `nc` (dropped with it). Their timeouts (`wget -T`,
//! `nc -w`) are [`Shell::sleep`]s of cluster time, and they hold at most a few buffers of
//! 8 KiB of a peer's data at once. Nesting
//! is bounded when parsed (compound commands, command substitutions) and while running (shells,
//! substitutions, compound commands and pipeline stages together), so a script stays within a
//! 2 MiB stack. Paths handed to the [`Shell`] are absolute and normalized (relative ones
//! resolve against `/`). The top-level directories of the busybox image (`/tmp`, `/etc`,
//! `/var`, ...) are taken to exist even when the [`Shell`]'s filesystem holds nothing under
//! them.
//!
//! # Layout
//!
//! `lexer` turns the source into tokens and `parser` the tokens into the syntax tree of `ast`;
//! `interp` runs the tree (`expand` expands its words, `io` holds file descriptors, pipes and
//! buffers, `session` reads commands from standard input) and `builtins` holds the utilities it
//! runs (`files`, `text`, `tar`, `system`, `id`, `wget`, `nc`, `test`, `printf` and `date` in
//! their own files; `inet` reads addresses and `getopt` options as glibc does);
//! `invocation` reads an `sh` or `busybox` command line. This file holds the public API and its
//! errors.

mod arith;
mod ast;
mod builtins;
mod expand;
mod glob;
mod interp;
mod invocation;
mod io;
mod jobs;
mod lexer;
mod parser;
mod session;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_apps;
#[cfg(test)]
mod tests_io;
#[cfg(test)]
mod tests_lang;
#[cfg(test)]
mod tests_net;
#[cfg(test)]
mod tests_utils;

use std::net::SocketAddr;
use std::sync::Arc;

use ast::{AndOr, Command, List, Pipeline, Simple, Word};
use interp::{with_jobs, Interp};
use invocation::{
    command_name, is_shell_name, shell_file_argv, strip_busybox, ShInvocation, UTILITIES,
};
pub use jobs::Signals;
use lexer::parse_list;

/// Nesting limit of compound commands (`if`/`while`/`for` inside one another).
const MAX_DEPTH: usize = 32;
/// Nesting limit of `sh` run from a script.
const MAX_SH_NESTING: usize = 4;
/// Nesting limit of command substitutions inside one another, in a script's text.
const MAX_SUBST_DEPTH: usize = 4;
/// Nesting limit while running, in units of about one compound command's stack use: a
/// compound command or a pipeline stage takes 1, a command substitution or a nested shell 2.
/// It keeps a script within a 2 MiB stack (a debug build's) whatever it nests, and lets
/// [`MAX_SH_NESTING`] shells each nest [`MAX_DEPTH`] compound commands.
const MAX_RUN_DEPTH: usize = 140;
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
    /// A function named with something other than a name, or a special builtin's name.
    #[error("bad function name {name:?} (at byte {at})")]
    BadFunctionName {
        /// The name as written.
        name: String,
        /// Where it is.
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
    /// `sh` without a script: the commands come from standard input.
    from_stdin: bool,
    /// A utility run as a program of its own (not a builtin of a shell).
    direct: bool,
    /// `sh FILE ...` run as one command: that `sh` is the process (it gets the signals).
    shell_file: bool,
}

impl Script {
    /// Parse `src` as the subset (see the module docs); anything outside it is an error.
    pub fn parse(src: &str) -> Result<Script, ParseError> {
        Ok(Script::with_body(parse_list(src, 0, false)?))
    }

    fn with_body(body: List) -> Script {
        Script {
            body,
            args: vec!["sh".to_string()],
            errexit: false,
            xtrace: false,
            from_stdin: false,
            direct: false,
            shell_file: false,
        }
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
            commands: vec![Command::Simple(simple)],
        };
        let mut s = Script::with_body(List {
            items: vec![AndOr {
                first: pipeline,
                rest: Vec::new(),
                background: false,
            }],
        });
        s.direct = !argv.first().is_some_and(|a| is_shell_name(a));
        s.shell_file = !s.direct;
        s
    }

    /// `sh` reading its commands from standard input.
    fn stdin(args: Vec<String>, errexit: bool, xtrace: bool) -> Script {
        let mut s = Script::with_body(List::default());
        if !args.is_empty() {
            s.args = args;
        }
        s.errexit = errexit;
        s.xtrace = xtrace;
        s.from_stdin = true;
        s
    }
}

/// A mounted filesystem, as `df` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// What is mounted (`overlay`, a device, `tmpfs`).
    pub device: String,
    /// Where (an absolute path).
    pub mount_point: String,
    /// Its type (`overlay`, `ext4`, `tmpfs` ...).
    pub fs_type: String,
    /// Its capacity, in bytes.
    pub size: u64,
    /// The bytes in use.
    pub used: u64,
}

/// The prompt busybox `ash` shows root in `/` (`PS1` defaults to `\w \$ `).
pub const DEFAULT_PS1: &str = "/ # ";

/// Who a script runs as: its user, its primary group and the supplementary groups the
/// container's runtime set (a pod's `supplementalGroups` and `fsGroup`), as `id` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user ID.
    pub uid: u32,
    /// The primary group ID.
    pub gid: u32,
    /// Supplementary groups given to the container (not those of the image's `/etc/group`).
    pub groups: Vec<u32>,
}

impl Credentials {
    /// root, as the images run by default.
    pub fn root() -> Self {
        Credentials {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        }
    }
}

/// A connected TCP stream a script opened through [`Shell::connect_tcp`] or accepted through a
/// [`Listener`]: dropping it closes the connection.
pub trait NetStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> NetStream for T {}

/// A UDP socket a script opened ([`Shell::connect_udp`], [`Shell::listen_udp`]).
#[async_trait::async_trait]
pub trait Datagram: Send + Sync {
    /// Send one datagram to the peer the socket is connected to.
    async fn send(&self, data: &[u8]) -> std::io::Result<usize>;
    /// Receive one datagram (cut to `buf`'s size) from the connected peer.
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Receive one datagram from anyone, with the sender's address.
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)>;
    /// Talk to `peer` only from now on (`connect(2)`).
    async fn connect(&self, peer: SocketAddr) -> std::io::Result<()>;
    /// The socket's own address.
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
}

/// A listening TCP socket ([`Shell::listen_tcp`]).
#[async_trait::async_trait]
pub trait Listener: Send + Sync {
    /// The next connection: the stream, its address on this side and the peer's.
    async fn accept(&self) -> std::io::Result<(Box<dyn NetStream>, SocketAddr, SocketAddr)>;
    /// The address the socket listens on.
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
}

/// `ENETUNREACH`: what the network calls of a [`Shell`] without a network answer.
pub fn no_network() -> std::io::Error {
    std::io::Error::from_raw_os_error(101)
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
    /// Names of the entries of a directory (for `ls`, `tar -c`); None when unknown. Defaults
    /// to None.
    fn list_dir(&self, _path: &str) -> Option<Vec<String>> {
        None
    }
    /// The `st_mode` of `path` as `lstat(2)` reports it (for `ls -l`, `stat`): the type bits
    /// (`S_IFDIR`, `S_IFREG`, `S_IFLNK`) and the mode bits (`07777`); None when nothing is there
    /// or the filesystem keeps no metadata. Defaults to None.
    fn file_mode(&self, _path: &str) -> Option<u32> {
        None
    }
    /// The owner and group of `path` (`lstat(2)`), None as for [`Shell::file_mode`].
    /// Defaults to None.
    fn file_owner(&self, _path: &str) -> Option<(u32, u32)> {
        None
    }
    /// The next chunk of the process's standard input, waiting for it; None at its end. A
    /// closed stream keeps answering None; a terminal may answer None once for a `^D` typed at
    /// the start of a line and go on with what is typed next. A chunk is whatever arrived (a
    /// terminal in canonical mode hands over one line at a time). Defaults to None (no input).
    async fn read_stdin(&self) -> Option<Vec<u8>> {
        None
    }
    /// Send signal `signal` (a Linux number; 0 only checks that the process exists) to process
    /// `pid` of the container (`kill`); the error is the reason, as strerror words it ("No such
    /// process", "Operation not permitted"). Defaults to Err("No such process").
    fn signal(&self, _pid: i64, _signal: i32) -> Result<(), String> {
        Err("No such process".to_string())
    }
    /// The container's host name (`hostname`; the pod's name on a real node). Defaults to
    /// "localhost".
    fn hostname(&self) -> String {
        "localhost".to_string()
    }
    /// All environment variables of the container in their order (for `env`); [`Shell::env`]
    /// must agree with it. Defaults to none.
    fn env_vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The signals this shell receives when it runs as [`run`] (a container's main process):
    /// whoever signals the process sends them there ([`Signals::send`]), and the script's
    /// traps decide which it takes. Defaults to None (no signals).
    fn signals(&self) -> Option<Arc<Signals>> {
        None
    }
    /// The container's mounted filesystems in mount order, the root (`/`) first (for `df`).
    /// Defaults to none.
    fn mounts(&self) -> Vec<Mount> {
        Vec::new()
    }
    /// Who the script runs as (`id`, `whoami`). Defaults to root.
    fn credentials(&self) -> Credentials {
        Credentials::root()
    }
    /// Open a TCP connection from the container to `to` (from local port `local_port`, any
    /// when 0), as `connect(2)` does: the error is the OS's (`ECONNREFUSED`, `ETIMEDOUT` when
    /// no answer ever comes ...). `127.0.0.1`, `::1` and `0.0.0.0` are the container's own
    /// network namespace. The caller bounds the wait with its own timeout (dropping the
    /// future abandons the attempt). Defaults to `ENETUNREACH` (no network).
    async fn connect_tcp(
        &self,
        _to: SocketAddr,
        _local_port: u16,
    ) -> std::io::Result<Box<dyn NetStream>> {
        Err(no_network())
    }
    /// A UDP socket of the container connected to `to` (from `local_port`, any when 0).
    /// Defaults to `ENETUNREACH`.
    async fn connect_udp(
        &self,
        _to: SocketAddr,
        _local_port: u16,
    ) -> std::io::Result<Box<dyn Datagram>> {
        Err(no_network())
    }
    /// Listen for TCP connections on `port` of the container's addresses (any free port when
    /// 0). Defaults to `ENETUNREACH`.
    async fn listen_tcp(&self, _port: u16) -> std::io::Result<Box<dyn Listener>> {
        Err(no_network())
    }
    /// A UDP socket bound to `port` of the container's addresses (any when 0), not connected.
    /// Defaults to `ENETUNREACH`.
    async fn listen_udp(&self, _port: u16) -> std::io::Result<Box<dyn Datagram>> {
        Err(no_network())
    }
}

/// Run a script; returns the exit status (0-255). Dropping the future kills the "process". A
/// script from `sh` without a script reads its commands from [`Shell::read_stdin`] (no prompt).
pub async fn run(script: &Script, shell: &dyn Shell) -> i32 {
    let mut interp = Interp::new(shell, script, None, 0);
    interp.signals = shell.signals();
    interp.main(script).await
}

/// Run `sh` reading its commands from [`Shell::read_stdin`], each complete command as soon as
/// its line(s) arrived, its output going to [`Shell::stdout`] / [`Shell::stderr`] as it is
/// written: `kubectl exec -i POD -- sh`. With `prompt` the shell is interactive (a terminal):
/// it writes the prompt to standard error (where a terminal shows it) before each command
/// (`PS1` once a script sets it; `PS2`, "> ", before the continuation lines of an unfinished
/// command), and a syntax error does not end it. Returns the exit status: `exit N`'s, or the
/// last command's at the end of input. Busybox's prompt for root is [`DEFAULT_PS1`].
pub async fn run_stdin(shell: &dyn Shell, prompt: Option<&str>) -> i32 {
    let script = Script::stdin(Vec::new(), false, false);
    let mut interp = Interp::new(shell, &script, None, 0);
    let jobs = Arc::clone(&interp.jobs);
    with_jobs(&jobs, interp.read_commands(&interp::Fds::base(), prompt)).await & 255
}

/// Run `argv` as an exec probe / `kubectl exec` would (argv\[0\] a command name of the subset, or
/// "sh" "-c" "<script>", or "/bin/sh" "-c" ...): returns (exit status, stdout, stderr). Unknown
/// commands exit 127 with "sh: <cmd>: not found" on stderr as busybox does. A script outside the
/// subset exits 2 with "sh: syntax error: <why>" on stderr. Standard input is
/// [`Shell::read_stdin`]; `sh` without a script reads its commands from it (no prompt).
pub async fn exec(argv: &[String], shell: &dyn Shell) -> (i32, Vec<u8>, Vec<u8>) {
    let capture: interp::Capture = Arc::default();
    let code = exec_with(argv, shell, Some(Arc::clone(&capture)), false).await;
    let (out, err) = std::mem::take(&mut *capture.lock());
    (code, out, err)
}

/// [`exec`], with the output going to [`Shell::stdout`] / [`Shell::stderr`] as it is written
/// instead of being returned: a `kubectl exec` session. With `tty` (the exec has a terminal)
/// `sh` without a script (or `sh -i`) is interactive as in [`run_stdin`], with the prompt
/// [`DEFAULT_PS1`]; a terminal merges standard error into its output, so the caller should send
/// both to the same stream then.
pub async fn exec_streaming(argv: &[String], shell: &dyn Shell, tty: bool) -> i32 {
    exec_with(argv, shell, None, tty).await
}

async fn exec_with(
    argv: &[String],
    shell: &dyn Shell,
    capture: Option<interp::Capture>,
    tty: bool,
) -> i32 {
    let say = |msg: String| match &capture {
        Some(c) => c.lock().1.extend_from_slice(msg.as_bytes()),
        None => shell.stderr(msg.as_bytes()),
    };
    let Some(first) = argv.first() else {
        say("sh: : not found\n".to_string());
        return 127;
    };
    let (argv, name) = strip_busybox(argv);
    let mut prompt = None;
    let script = if is_shell_name(name) {
        match ShInvocation::parse(argv) {
            Err(reason) => {
                say(format!("sh: {reason}\n"));
                return 2;
            }
            Ok(ShInvocation::Stdin {
                args,
                errexit,
                xtrace,
                interactive,
            }) => {
                if tty || interactive {
                    prompt = Some(DEFAULT_PS1);
                }
                Script::stdin(args, errexit, xtrace)
            }
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
                    say(format!("sh: syntax error: {e}\n"));
                    return 2;
                }
            },
            Ok(ShInvocation::File { .. }) => Script::literal(&shell_file_argv(argv)),
        }
    } else if UTILITIES.contains(&command_name(name)) {
        Script::literal(argv)
    } else {
        say(format!("sh: {first}: not found\n"));
        return 127;
    };
    let mut interp = Interp::new(shell, &script, capture, 0);
    if script.from_stdin {
        let jobs = Arc::clone(&interp.jobs);
        return with_jobs(&jobs, interp.read_commands(&interp::Fds::base(), prompt)).await & 255;
    }
    interp.main(&script).await
}

/// Parse a container's command+args into a Script when they are a shell invocation
/// (["sh","-c",s], ["/bin/sh","-c",s], ["sh","-c",s, arg0, args...], ["sh", file, args...], with
/// `ash`, `bash` or a `busybox` prefix alike; ["sh"] alone reads its commands from standard
/// input) or a single supported command (["sleep","3600"], ["cat","/x"]...). A command the
/// subset lacks is [`ParseError::UnknownCommand`].
pub fn from_command(argv: &[String]) -> Result<Script, ParseError> {
    if argv.is_empty() {
        return Err(ParseError::EmptyCommand);
    }
    let (argv, name) = strip_busybox(argv);
    if is_shell_name(name) {
        return match ShInvocation::parse(argv)
            .map_err(|reason| ParseError::BadInvocation { reason })?
        {
            ShInvocation::Stdin {
                args,
                errexit,
                xtrace,
                ..
            } => Ok(Script::stdin(args, errexit, xtrace)),
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
