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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

/// Nesting limit of compound commands (`if`/`while`/`for` inside one another).
const MAX_DEPTH: usize = 32;
/// Nesting limit of `sh` run from a script.
const MAX_SH_NESTING: usize = 4;
/// Nesting limit of `!` and `( )` inside a `test` expression.
const MAX_TEST_DEPTH: usize = 64;
/// Longest single call to [`Shell::sleep`]; longer sleeps are made of several calls.
const MAX_SLEEP_CHUNK: f64 = 1e9;
/// Largest `printf` field width or precision honoured.
const MAX_WIDTH: usize = 1 << 20;

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

/// Utilities of the subset (may also be named by path, `/bin/NAME`).
const UTILITIES: &[&str] = &[
    "sleep", "touch", "rm", "echo", "cat", "test", "[", "true", "false", "mkdir", "date", "printf",
    "ls", "sh", "ash",
];

/// Special builtins of the subset (assignments before them persist).
const SPECIAL_BUILTINS: &[&str] = &[
    ":", "exit", "break", "continue", "export", "readonly", "unset", "set",
];

/// Shell builtins (and a few utilities ash runs in-process) that the subset does not model; a
/// script naming one as a command is rejected when parsed instead of failing at run time.
const UNSUPPORTED_BUILTINS: &[&str] = &[
    "trap", "eval", "exec", "source", ".", "read", "cd", "pwd", "wait", "kill", "shift", "local",
    "return", "alias", "unalias", "umask", "ulimit", "getopts", "command", "type", "hash", "times",
    "jobs", "fg", "bg", "let", "declare", "typeset", "pushd", "popd",
];

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
// Syntax tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
struct List {
    items: Vec<AndOr>,
}

#[derive(Debug, Clone, PartialEq)]
struct AndOr {
    first: Pipeline,
    rest: Vec<(Conn, Pipeline)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Conn {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    negate: bool,
    command: Command,
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Simple(Simple),
    Compound(Compound, Vec<Redir>),
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Simple {
    assigns: Vec<(String, Word)>,
    words: Vec<Word>,
    redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq)]
enum Compound {
    If {
        branches: Vec<(List, List)>,
        otherwise: Option<List>,
    },
    Loop {
        until: bool,
        cond: List,
        body: List,
    },
    For {
        var: String,
        items: Option<Vec<Word>>,
        body: List,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Redir {
    fd: u8,
    target: RedirTarget,
}

#[derive(Debug, Clone, PartialEq)]
enum RedirTarget {
    File { word: Word, append: bool },
    Dup(u8),
}

#[derive(Debug, Clone, PartialEq)]
struct Word {
    parts: Vec<Part>,
    at: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit {
        text: String,
        quoted: bool,
    },
    Param {
        param: Param,
        quoted: bool,
        op: ParamOp,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Param {
    Name(String),
    Positional(usize),
    Status,
    Count,
    All { star: bool },
    Pid,
}

#[derive(Debug, Clone, PartialEq)]
enum ParamOp {
    Plain,
    Length,
    /// `-` (`:-` when `colon`): use `word` when unset (or empty).
    Default {
        colon: bool,
        word: String,
    },
    /// `=` / `:=`: as Default, and assign it.
    Assign {
        colon: bool,
        word: String,
    },
    /// `+` / `:+`: use `word` when set (and not empty).
    Alt {
        colon: bool,
        word: String,
    },
}

impl Word {
    /// A word given literally (argv of an exec): no expansion, no field splitting.
    fn literal_arg(s: &str) -> Word {
        Word {
            parts: vec![Part::Lit {
                text: s.to_string(),
                quoted: true,
            }],
            at: 0,
        }
    }

    /// The word as a reserved word: one unquoted literal.
    fn keyword(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit {
                text,
                quoted: false,
            }] => Some(text.as_str()),
            _ => None,
        }
    }

    /// The word's text when it has no expansions.
    fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { .. } => return None,
            }
        }
        Some(s)
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { param, .. } => s.push_str(&match param {
                    Param::Name(n) => format!("${n}"),
                    Param::Positional(n) => format!("${{{n}}}"),
                    Param::Status => "$?".into(),
                    Param::Count => "$#".into(),
                    Param::All { star: false } => "$@".into(),
                    Param::All { star: true } => "$*".into(),
                    Param::Pid => "$$".into(),
                }),
            }
        }
        s
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=value` as an assignment: the name and the value word.
fn split_assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit {
        text,
        quoted: false,
    }) = w.parts.first()
    else {
        return None;
    };
    let eq = text.find('=')?;
    let name = text.get(..eq)?;
    if !valid_name(name) {
        return None;
    }
    let mut parts = vec![Part::Lit {
        text: text.get(eq + 1..).unwrap_or("").to_string(),
        quoted: false,
    }];
    parts.extend(w.parts.iter().skip(1).cloned());
    Some((name.to_string(), Word { parts, at: w.at }))
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(Word),
    Semi,
    Newline,
    AndIf,
    OrIf,
    Redir { fd: u8, op: RedirOp },
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RedirOp {
    Out,
    Append,
    Dup,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    at: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.describe(),
        Tok::Semi => ";".into(),
        Tok::Newline => "newline".into(),
        Tok::AndIf => "&&".into(),
        Tok::OrIf => "||".into(),
        Tok::Redir { fd, op } => {
            let fd = if *fd == 1 {
                String::new()
            } else {
                fd.to_string()
            };
            let op = match op {
                RedirOp::Out => ">",
                RedirOp::Append => ">>",
                RedirOp::Dup => ">&",
            };
            format!("{fd}{op}")
        }
        Tok::Eof => "end of file".into(),
    }
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            i: 0,
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i.saturating_add(k)).map(|&(_, c)| c)
    }

    fn pos(&self) -> usize {
        self.chars
            .get(self.i)
            .map(|&(p, _)| p)
            .unwrap_or(self.src.len())
    }

    fn tokens(mut self) -> Result<Vec<Token>, ParseError> {
        let mut out = Vec::new();
        loop {
            loop {
                match (self.peek(0), self.peek(1)) {
                    (Some(' ' | '\t'), _) => self.i += 1,
                    (Some('\\'), Some('\n')) => self.i += 2,
                    _ => break,
                }
            }
            let at = self.pos();
            let Some(c) = self.peek(0) else {
                out.push(Token { tok: Tok::Eof, at });
                return Ok(out);
            };
            let tok = match c {
                '#' => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                    continue;
                }
                '\n' => {
                    self.i += 1;
                    Tok::Newline
                }
                ';' => {
                    if self.peek(1) == Some(';') {
                        return Err(unexpected(";;", at));
                    }
                    self.i += 1;
                    Tok::Semi
                }
                '&' => match self.peek(1) {
                    Some('&') => {
                        self.i += 2;
                        Tok::AndIf
                    }
                    Some('>') => return Err(unsupported("redirection &>", at)),
                    _ => return Err(unsupported("background job &", at)),
                },
                '|' => {
                    if self.peek(1) == Some('|') {
                        self.i += 2;
                        Tok::OrIf
                    } else {
                        return Err(unsupported("pipeline |", at));
                    }
                }
                '(' => return Err(unsupported("subshell or function definition ( )", at)),
                ')' => return Err(unexpected(")", at)),
                '<' => return Err(self.input_redirect(at)),
                '>' => self.redirect(1),
                _ => self.word()?,
            };
            out.push(Token { tok, at });
        }
    }

    fn input_redirect(&self, at: usize) -> ParseError {
        if self.peek(1) == Some('<') {
            unsupported("here-document <<", at)
        } else {
            unsupported("input redirection <", at)
        }
    }

    /// At a `>`: the redirection operator for `fd`.
    fn redirect(&mut self, fd: u8) -> Tok {
        self.i += 1;
        let op = match self.peek(0) {
            Some('>') => {
                self.i += 1;
                RedirOp::Append
            }
            Some('&') => {
                self.i += 1;
                RedirOp::Dup
            }
            Some('|') => {
                self.i += 1;
                RedirOp::Out
            }
            _ => RedirOp::Out,
        };
        Tok::Redir { fd, op }
    }

    fn word(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos();
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        fn flush(lit: &mut String, parts: &mut Vec<Part>) {
            if !lit.is_empty() {
                parts.push(Part::Lit {
                    text: std::mem::take(lit),
                    quoted: false,
                });
            }
        }
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => {
                    let io_number = (c == '<' || c == '>')
                        && parts.is_empty()
                        && !lit.is_empty()
                        && lit.chars().all(|d| d.is_ascii_digit());
                    if io_number {
                        if c == '<' {
                            return Err(self.input_redirect(self.pos()));
                        }
                        return match lit.as_str() {
                            "1" => Ok(self.redirect(1)),
                            "2" => Ok(self.redirect(2)),
                            _ => Err(unsupported(
                                format!("redirection of file descriptor {lit}"),
                                start,
                            )),
                        };
                    }
                    break;
                }
                '\\' => match self.peek(1) {
                    Some('\n') => self.i += 2,
                    Some(d) => {
                        flush(&mut lit, &mut parts);
                        parts.push(Part::Lit {
                            text: d.to_string(),
                            quoted: true,
                        });
                        self.i += 2;
                    }
                    None => {
                        lit.push('\\');
                        self.i += 1;
                    }
                },
                '\'' => {
                    flush(&mut lit, &mut parts);
                    let at = self.pos();
                    self.i += 1;
                    let mut text = String::new();
                    loop {
                        match self.peek(0) {
                            None => return Err(ParseError::UnterminatedQuote { quote: '\'', at }),
                            Some('\'') => {
                                self.i += 1;
                                break;
                            }
                            Some(c) => {
                                text.push(c);
                                self.i += 1;
                            }
                        }
                    }
                    parts.push(Part::Lit { text, quoted: true });
                }
                '"' => {
                    flush(&mut lit, &mut parts);
                    self.double_quoted(&mut parts)?;
                }
                '`' => return Err(unsupported("command substitution `...`", self.pos())),
                '$' => match self.dollar(false)? {
                    Some(p) => {
                        flush(&mut lit, &mut parts);
                        parts.push(p);
                    }
                    None => lit.push('$'),
                },
                c => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(Tok::Word(Word { parts, at: start }))
    }

    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<(), ParseError> {
        let at = self.pos();
        self.i += 1;
        let mut buf = String::new();
        let mut produced = false;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(ParseError::UnterminatedQuote { quote: '"', at });
            };
            match c {
                '"' => {
                    self.i += 1;
                    break;
                }
                '\\' => match self.peek(1) {
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        buf.push(n);
                        self.i += 2;
                    }
                    Some('\n') => self.i += 2,
                    _ => {
                        buf.push('\\');
                        self.i += 1;
                    }
                },
                '`' => return Err(unsupported("command substitution `...`", self.pos())),
                '$' => match self.dollar(true)? {
                    Some(p) => {
                        if !buf.is_empty() {
                            parts.push(Part::Lit {
                                text: std::mem::take(&mut buf),
                                quoted: true,
                            });
                        }
                        parts.push(p);
                        produced = true;
                    }
                    None => buf.push('$'),
                },
                c => {
                    buf.push(c);
                    self.i += 1;
                }
            }
        }
        if !buf.is_empty() || !produced {
            parts.push(Part::Lit {
                text: buf,
                quoted: true,
            });
        }
        Ok(())
    }

    /// At a `$`: the expansion, or None for a literal `$` (consumed either way).
    fn dollar(&mut self, quoted: bool) -> Result<Option<Part>, ParseError> {
        let at = self.pos();
        let simple = |param| {
            Ok(Some(Part::Param {
                param,
                quoted,
                op: ParamOp::Plain,
            }))
        };
        match self.peek(1) {
            Some('(') => Err(if self.peek(2) == Some('(') {
                unsupported("arithmetic expansion $((...))", at)
            } else {
                unsupported("command substitution $(...)", at)
            }),
            Some('{') => {
                self.i += 2;
                self.braced(at, quoted).map(Some)
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                self.i += 1;
                let name = self.name();
                simple(Param::Name(name))
            }
            Some(d) if d.is_ascii_digit() => {
                self.i += 2;
                simple(Param::Positional(d.to_digit(10).unwrap_or(0) as usize))
            }
            Some(c @ ('?' | '#' | '@' | '*' | '$')) => {
                self.i += 2;
                simple(match c {
                    '?' => Param::Status,
                    '#' => Param::Count,
                    '@' => Param::All { star: false },
                    '*' => Param::All { star: true },
                    _ => Param::Pid,
                })
            }
            Some('!') => Err(unsupported("$! (last background job)", at)),
            Some('-') => Err(unsupported("$- (shell option flags)", at)),
            _ => {
                self.i += 1;
                Ok(None)
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_ascii_alphanumeric() {
                name.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        name
    }

    fn bad_substitution(&self, at: usize) -> ParseError {
        let rest = self.src.get(at..).unwrap_or("");
        let mut text = String::new();
        for c in rest.chars().take(40) {
            text.push(c);
            if c == '}' {
                break;
            }
        }
        ParseError::BadSubstitution { text, at }
    }

    /// After `${`.
    fn braced(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
        let length = self.peek(0) == Some('#') && self.peek(1).is_some_and(|c| c != '}');
        if length {
            self.i += 1;
        }
        let param = match self.peek(0) {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => Param::Name(self.name()),
            Some(c) if c.is_ascii_digit() => {
                let mut digits = String::new();
                while let Some(d) = self.peek(0).filter(char::is_ascii_digit) {
                    digits.push(d);
                    self.i += 1;
                }
                Param::Positional(digits.parse().map_err(|_| self.bad_substitution(at))?)
            }
            Some(c @ ('?' | '#' | '@' | '*' | '$')) => {
                self.i += 1;
                match c {
                    '?' => Param::Status,
                    '#' => Param::Count,
                    '@' => Param::All { star: false },
                    '*' => Param::All { star: true },
                    _ => Param::Pid,
                }
            }
            _ => return Err(self.bad_substitution(at)),
        };
        let (colon, kind) = match (self.peek(0), self.peek(1)) {
            (Some('}'), _) => {
                self.i += 1;
                let op = if length {
                    ParamOp::Length
                } else {
                    ParamOp::Plain
                };
                return Ok(Part::Param { param, quoted, op });
            }
            _ if length => return Err(self.bad_substitution(at)),
            (Some(':'), Some(c @ ('-' | '=' | '+'))) => {
                self.i += 2;
                (true, c)
            }
            (Some(c @ ('-' | '=' | '+')), _) => {
                self.i += 1;
                (false, c)
            }
            (Some(':'), Some('?')) => {
                return Err(unsupported("parameter expansion ${VAR:?message}", at))
            }
            (Some('?'), _) => return Err(unsupported("parameter expansion ${VAR?message}", at)),
            (Some(c @ ('#' | '%' | '/' | ':' | '^' | ',')), _) => {
                return Err(unsupported(
                    format!("parameter expansion ${{VAR{c}...}}"),
                    at,
                ))
            }
            _ => return Err(self.bad_substitution(at)),
        };
        let mut word = String::new();
        loop {
            match self.peek(0) {
                None => return Err(self.bad_substitution(at)),
                Some('}') => {
                    self.i += 1;
                    break;
                }
                Some('$' | '`' | '\'' | '"' | '\\') => {
                    return Err(unsupported(
                        "expansion or quoting inside ${VAR-word}",
                        self.pos(),
                    ))
                }
                Some(c) => {
                    word.push(c);
                    self.i += 1;
                }
            }
        }
        let op = match kind {
            '-' => ParamOp::Default { colon, word },
            '+' => ParamOp::Alt { colon, word },
            _ => {
                if !matches!(param, Param::Name(_)) {
                    return Err(self.bad_substitution(at));
                }
                ParamOp::Assign { colon, word }
            }
        };
        Ok(Part::Param { param, quoted, op })
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    eof: Token,
}

impl Parser {
    fn new(toks: Vec<Token>, len: usize) -> Self {
        Parser {
            toks,
            i: 0,
            depth: 0,
            eof: Token {
                tok: Tok::Eof,
                at: len,
            },
        }
    }

    fn peek(&self) -> &Token {
        self.toks.get(self.i).unwrap_or(&self.eof)
    }

    fn advance(&mut self) {
        if self.i < self.toks.len() {
            self.i += 1;
        }
    }

    fn keyword(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Word(w) => w.keyword(),
            _ => None,
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek().tok, Tok::Newline) {
            self.advance();
        }
    }

    fn unexpected_here(&self, expected: &str) -> ParseError {
        let t = self.peek();
        match t.tok {
            Tok::Eof => ParseError::UnexpectedEnd {
                expected: expected.to_string(),
            },
            _ => unexpected(describe(&t.tok), t.at),
        }
    }

    fn expect(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.keyword() == Some(kw) {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected_here(&format!("\"{kw}\"")))
        }
    }

    fn script(&mut self) -> Result<List, ParseError> {
        let list = self.list(&[])?;
        if !matches!(self.peek().tok, Tok::Eof) {
            return Err(self.unexpected_here("end of file"));
        }
        Ok(list)
    }

    /// and-or lists separated by `;` or newlines, up to a reserved word of `stops` (not consumed).
    fn list(&mut self, stops: &[&str]) -> Result<List, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if matches!(self.peek().tok, Tok::Eof) {
                break;
            }
            if self.keyword().is_some_and(|k| stops.contains(&k)) {
                break;
            }
            items.push(self.and_or()?);
            match self.peek().tok {
                Tok::Semi | Tok::Newline => self.advance(),
                _ => break,
            }
        }
        Ok(List { items })
    }

    fn nonempty_list(&mut self, stops: &[&str]) -> Result<List, ParseError> {
        let list = self.list(stops)?;
        if list.items.is_empty() {
            return Err(self.unexpected_here("a command"));
        }
        Ok(list)
    }

    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek().tok {
                Tok::AndIf => Conn::And,
                Tok::OrIf => Conn::Or,
                _ => break,
            };
            self.advance();
            self.skip_newlines();
            rest.push((conn, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut negate = false;
        while self.keyword() == Some("!") {
            negate = !negate;
            self.advance();
        }
        Ok(Pipeline {
            negate,
            command: self.command()?,
        })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let at = self.peek().at;
        let kw = self.keyword().map(str::to_owned);
        match kw.as_deref() {
            Some(k @ ("if" | "while" | "until" | "for")) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(ParseError::TooDeep {
                        limit: MAX_DEPTH,
                        at,
                    });
                }
                let compound = match k {
                    "if" => self.if_clause()?,
                    "for" => self.for_clause()?,
                    _ => self.loop_clause(k == "until")?,
                };
                self.depth -= 1;
                let mut redirs = Vec::new();
                while matches!(self.peek().tok, Tok::Redir { .. }) {
                    redirs.push(self.redirection()?);
                }
                Ok(Command::Compound(compound, redirs))
            }
            Some("case") => Err(unsupported("case ... esac", at)),
            Some("{") => Err(unsupported("brace group { ...; }", at)),
            Some("[[") => Err(unsupported("[[ ... ]] (use [ ... ])", at)),
            Some("function") => Err(unsupported("function definition", at)),
            Some(k @ ("then" | "else" | "elif" | "fi" | "do" | "done" | "esac" | "}")) => {
                Err(unexpected(k, at))
            }
            _ => match self.peek().tok {
                Tok::Word(_) | Tok::Redir { .. } => self.simple().map(Command::Simple),
                _ => Err(self.unexpected_here("a command")),
            },
        }
    }

    fn if_clause(&mut self) -> Result<Compound, ParseError> {
        self.advance();
        let mut branches = Vec::new();
        loop {
            let cond = self.nonempty_list(&["then"])?;
            self.expect("then")?;
            let body = self.nonempty_list(&["elif", "else", "fi"])?;
            branches.push((cond, body));
            match self.keyword() {
                Some("elif") => self.advance(),
                Some("else") => {
                    self.advance();
                    let otherwise = self.nonempty_list(&["fi"])?;
                    self.expect("fi")?;
                    return Ok(Compound::If {
                        branches,
                        otherwise: Some(otherwise),
                    });
                }
                Some("fi") => {
                    self.advance();
                    return Ok(Compound::If {
                        branches,
                        otherwise: None,
                    });
                }
                _ => return Err(self.unexpected_here("\"fi\"")),
            }
        }
    }

    fn loop_clause(&mut self, until: bool) -> Result<Compound, ParseError> {
        self.advance();
        let cond = self.nonempty_list(&["do"])?;
        self.expect("do")?;
        let body = self.nonempty_list(&["done"])?;
        self.expect("done")?;
        Ok(Compound::Loop { until, cond, body })
    }

    fn for_clause(&mut self) -> Result<Compound, ParseError> {
        self.advance();
        let var = match &self.peek().tok {
            Tok::Word(w) => match w.keyword() {
                Some(n) if valid_name(n) => n.to_string(),
                _ => return Err(unexpected(w.describe(), self.peek().at)),
            },
            _ => return Err(self.unexpected_here("a loop variable")),
        };
        self.advance();
        self.skip_newlines();
        let items = if self.keyword() == Some("in") {
            self.advance();
            let mut words = Vec::new();
            loop {
                match &self.peek().tok {
                    Tok::Word(w) => {
                        check_expandable(w)?;
                        words.push(w.clone());
                        self.advance();
                    }
                    Tok::Semi | Tok::Newline => {
                        self.advance();
                        break;
                    }
                    _ => return Err(self.unexpected_here("\"do\"")),
                }
            }
            Some(words)
        } else {
            if matches!(self.peek().tok, Tok::Semi) {
                self.advance();
            }
            None
        };
        self.skip_newlines();
        self.expect("do")?;
        let body = self.nonempty_list(&["done"])?;
        self.expect("done")?;
        Ok(Compound::For { var, items, body })
    }

    fn redirection(&mut self) -> Result<Redir, ParseError> {
        let Token {
            tok: Tok::Redir { fd, op },
            at,
        } = self.peek().clone()
        else {
            return Err(self.unexpected_here("a redirection"));
        };
        self.advance();
        let word = match &self.peek().tok {
            Tok::Word(w) => w.clone(),
            _ => return Err(self.unexpected_here("a redirection target")),
        };
        self.advance();
        let target = match op {
            RedirOp::Out | RedirOp::Append => RedirTarget::File {
                word,
                append: op == RedirOp::Append,
            },
            RedirOp::Dup => match word.literal().as_deref() {
                Some("1") => RedirTarget::Dup(1),
                Some("2") => RedirTarget::Dup(2),
                Some("-") => return Err(unsupported("closing a file descriptor >&-", at)),
                Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
                    return Err(unsupported(
                        format!("redirection to file descriptor {s}"),
                        at,
                    ))
                }
                _ => return Err(unsupported(">& FILE (write > FILE 2>&1)", at)),
            },
        };
        Ok(Redir { fd, target })
    }

    fn simple(&mut self) -> Result<Simple, ParseError> {
        let mut s = Simple::default();
        loop {
            match &self.peek().tok {
                Tok::Word(w) => {
                    let w = w.clone();
                    self.advance();
                    if s.words.is_empty() {
                        if let Some(assign) = split_assignment(&w) {
                            s.assigns.push(assign);
                            continue;
                        }
                    }
                    s.words.push(w);
                }
                Tok::Redir { .. } => s.redirs.push(self.redirection()?),
                _ => break,
            }
        }
        for w in &s.words {
            check_expandable(w)?;
        }
        if let Some(first) = s.words.first() {
            if let Some(name) = first.literal() {
                if UNSUPPORTED_BUILTINS.contains(&name.as_str()) {
                    return Err(unsupported(format!("builtin `{name}`"), first.at));
                }
                if name == "set" {
                    if s.words.len() < 2 {
                        return Err(unsupported("set without arguments", first.at));
                    }
                    for w in s.words.iter().skip(1) {
                        let ok = w.literal().is_some_and(|a| set_option_ok(&a));
                        if !ok {
                            return Err(unsupported(format!("set {}", w.describe()), w.at));
                        }
                    }
                }
            }
        }
        Ok(s)
    }
}

fn set_option_ok(a: &str) -> bool {
    (a.starts_with('-') || a.starts_with('+'))
        && a.len() > 1
        && a.chars().skip(1).all(|c| c == 'e' || c == 'x')
}

/// Reject pathname and tilde expansion in a word that would undergo them.
fn check_expandable(w: &Word) -> Result<(), ParseError> {
    if let Some(Part::Lit {
        text,
        quoted: false,
    }) = w.parts.first()
    {
        if text.starts_with('~') {
            return Err(unsupported("tilde expansion ~", w.at));
        }
    }
    for p in &w.parts {
        if let Part::Lit {
            text,
            quoted: false,
        } = p
        {
            if text.contains(['*', '?']) {
                return Err(unsupported(
                    format!("pathname expansion (glob) in {:?}", w.describe()),
                    w.at,
                ));
            }
        }
    }
    Ok(())
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

/// `busybox NAME args...` is `NAME args...`.
fn strip_busybox(argv: &[String]) -> (&[String], &str) {
    let name = argv.first().map(String::as_str).unwrap_or("");
    if matches!(name, "busybox" | "/bin/busybox") && argv.len() > 1 {
        let rest = argv.get(1..).unwrap_or(&[]);
        return (rest, rest.first().map(String::as_str).unwrap_or(""));
    }
    (argv, name)
}

fn is_shell_name(name: &str) -> bool {
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
fn shell_file_argv(argv: &[String]) -> Vec<String> {
    let mut v = vec!["sh".to_string()];
    v.extend(argv.iter().skip(1).cloned());
    v
}

/// `/bin/NAME` (and friends) names the utility NAME.
fn command_name(name: &str) -> &str {
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
enum ShInvocation {
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
    Stdin,
}

impl ShInvocation {
    /// `argv[0]` is the shell.
    fn parse(argv: &[String]) -> Result<ShInvocation, String> {
        let sh = argv.first().cloned().unwrap_or_else(|| "sh".into());
        let (mut c, mut errexit, mut xtrace) = (false, false, false);
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
        } else if let Some(path) = rest.first() {
            Ok(ShInvocation::File {
                path: path.clone(),
                args: rest.to_vec(),
                errexit,
                xtrace,
            })
        } else {
            Ok(ShInvocation::Stdin)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interpreter
// ---------------------------------------------------------------------------------------------

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How control leaves a command.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flow {
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
struct Fds {
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

struct Interp<'s> {
    shell: &'s dyn Shell,
    /// Shell variables; None: unset (hiding the environment).
    vars: BTreeMap<String, Option<String>>,
    exported: BTreeSet<String>,
    /// `$0`, `$1`, ...
    args: Vec<String>,
    status: i32,
    errexit: bool,
    xtrace: bool,
    loops: usize,
    nesting: usize,
    /// Captured (stdout, stderr) instead of the Shell's.
    capture: Option<(Vec<u8>, Vec<u8>)>,
    /// Why the running command's output could not be written to a file (a full disk): the
    /// command then fails, as a write error fails it on a real node.
    write_error: Option<String>,
}

fn normalize(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
}

impl<'s> Interp<'s> {
    fn new(
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

    async fn main(&mut self, script: &Script) -> i32 {
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

    fn out(&mut self, fds: &Fds, data: &[u8]) {
        self.put(&fds.out, data);
    }

    fn err(&mut self, fds: &Fds, msg: &str) {
        self.put(&fds.err, msg.as_bytes());
    }

    // ----- filesystem views

    fn path(&self, arg: &str) -> String {
        normalize(arg)
    }

    fn is_dir(&self, p: &str) -> bool {
        !p.is_empty() && (IMAGE_DIRS.contains(&p) || self.shell.is_dir(p))
    }

    fn is_file(&self, p: &str) -> bool {
        !p.is_empty() && p != "/dev/null" && self.shell.is_file(p)
    }

    fn exists(&self, p: &str) -> bool {
        !p.is_empty()
            && (p == "/dev/null" || self.is_dir(p) || self.shell.exists(p) || self.shell.is_file(p))
    }

    fn read(&self, p: &str) -> Option<Vec<u8>> {
        if p == "/dev/null" {
            return Some(Vec::new());
        }
        if p.is_empty() {
            return None;
        }
        self.shell.read(p)
    }

    // ----- variables and expansion

    fn var(&self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None => self.shell.env(name),
        }
    }

    fn set_var(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_string(), Some(value));
    }

    fn param(&self, p: &Param) -> Option<String> {
        match p {
            Param::Name(n) => self.var(n),
            Param::Positional(i) => self.args.get(*i).cloned(),
            Param::Status => Some(self.status.to_string()),
            Param::Count => Some(self.args.len().saturating_sub(1).to_string()),
            Param::All { .. } => Some(
                self.args
                    .iter()
                    .skip(1)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Param::Pid => Some("1".to_string()),
        }
    }

    fn param_value(&mut self, p: &Param, op: &ParamOp) -> String {
        let v = self.param(p);
        let unset_or_empty = |colon: bool, v: &Option<String>| match v {
            None => true,
            Some(s) => colon && s.is_empty(),
        };
        match op {
            ParamOp::Plain => v.unwrap_or_default(),
            ParamOp::Length => v.unwrap_or_default().chars().count().to_string(),
            ParamOp::Default { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    word.clone()
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Assign { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    if let Param::Name(n) = p {
                        self.set_var(n, word.clone());
                    }
                    word.clone()
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Alt { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    String::new()
                } else {
                    word.clone()
                }
            }
        }
    }

    /// Expand a word into fields (unquoted expansions split on blanks).
    fn expand_fields(&mut self, w: &Word, out: &mut Vec<String>) {
        let mut cur = String::new();
        let mut has = false;
        for part in &w.parts {
            match part {
                Part::Lit { text, quoted } => {
                    cur.push_str(text);
                    if *quoted || !text.is_empty() {
                        has = true;
                    }
                }
                Part::Param {
                    param: Param::All { star: false },
                    quoted: true,
                    op: ParamOp::Plain,
                } => {
                    for (i, a) in self.args.iter().skip(1).enumerate() {
                        if i > 0 {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(a);
                        has = true;
                    }
                }
                Part::Param {
                    param,
                    quoted: true,
                    op,
                } => {
                    let v = self.param_value(param, op);
                    cur.push_str(&v);
                    has = true;
                }
                Part::Param {
                    param,
                    quoted: false,
                    op,
                } => {
                    let v = self.param_value(param, op);
                    for ch in v.chars() {
                        if is_blank(ch) {
                            if has {
                                out.push(std::mem::take(&mut cur));
                                has = false;
                            }
                        } else {
                            cur.push(ch);
                            has = true;
                        }
                    }
                }
            }
        }
        if has {
            out.push(cur);
        }
    }

    /// Expand a word into one string (assignments, redirection targets).
    fn expand_string(&mut self, w: &Word) -> String {
        let mut s = String::new();
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { param, op, .. } => {
                    let v = self.param_value(param, op);
                    s.push_str(&v);
                }
            }
        }
        s
    }

    // ----- execution

    fn list<'a>(&'a mut self, list: &'a List, fds: &'a Fds, cond: bool) -> BoxFut<'a, Flow> {
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

    fn run_sync(&mut self, cmd: &str, name: &str, args: &[String], fds: &Fds) -> i32 {
        match cmd {
            "true" | ":" => 0,
            "false" => 1,
            "echo" => self.cmd_echo(args, fds),
            "printf" => self.cmd_printf(args, fds),
            "cat" => self.cmd_cat(args, fds),
            "touch" => self.cmd_touch(args, fds),
            "rm" => self.cmd_rm(args, fds),
            "mkdir" => self.cmd_mkdir(args, fds),
            "test" => self.cmd_test(args, fds, false),
            "[" => self.cmd_test(args, fds, true),
            "date" => self.cmd_date(args, fds),
            "ls" => self.cmd_ls(args, fds),
            "export" | "readonly" => self.cmd_export(cmd, args, fds),
            "unset" => self.cmd_unset(args),
            "set" => self.cmd_set(args, fds),
            _ => {
                self.err(fds, &format!("sh: {name}: not found\n"));
                127
            }
        }
    }

    // ----- builtins

    async fn cmd_sleep(&mut self, args: &[String], fds: &Fds) -> i32 {
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
            self.shell.sleep(chunk.max(0.0)).await;
            if left.is_finite() {
                left -= chunk;
                if left <= 0.0 {
                    return 0;
                }
            }
        }
    }

    async fn cmd_sh(&mut self, argv: &[String], assigns: &[(String, String)], fds: &Fds) -> i32 {
        if self.nesting >= MAX_SH_NESTING {
            self.err(fds, "sh: shells nested too deeply\n");
            return 2;
        }
        let (script, errexit, xtrace, args) = match ShInvocation::parse(argv) {
            Err(reason) => {
                self.err(fds, &format!("sh: {reason}\n"));
                return 2;
            }
            Ok(ShInvocation::Stdin) => return 0,
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
        let mut child = Interp::new(self.shell, &parsed, self.capture.take(), self.nesting + 1);
        // The child sees the environment: exported variables, minus unset ones.
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
        let flow = child.list(&parsed.body, fds, false).await;
        self.capture = child.capture.take();
        match flow {
            Flow::Exit(c) => c & 255,
            _ => child.status & 255,
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

    fn cmd_printf(&mut self, args: &[String], fds: &Fds) -> i32 {
        let Some(format) = args.first() else {
            self.err(fds, "printf: missing format\n");
            return 1;
        };
        let rest = args.get(1..).unwrap_or(&[]);
        let fmt: Vec<char> = format.chars().collect();
        let mut out = Vec::new();
        let mut errors = String::new();
        let mut status = 0;
        let mut ai = 0;
        loop {
            let before = ai;
            match printf_once(&fmt, rest, &mut ai, &mut out, &mut errors) {
                Ok(stop) => {
                    if !errors.is_empty() {
                        status = 1;
                    }
                    if stop || ai >= rest.len() || ai == before {
                        break;
                    }
                }
                Err(msg) => {
                    errors.push_str(&msg);
                    status = 1;
                    break;
                }
            }
        }
        self.out(fds, &out);
        if !errors.is_empty() {
            self.err(fds, &errors);
        }
        status
    }

    fn cmd_cat(&mut self, args: &[String], fds: &Fds) -> i32 {
        let operands = match getopts(args, "u") {
            Ok((_, ops)) => ops,
            Err(c) => return self.bad_option("cat", c, fds),
        };
        let mut status = 0;
        for a in operands {
            if a == "-" {
                continue; // standard input is empty
            }
            let p = self.path(a);
            if self.is_dir(&p) {
                self.err(fds, "cat: read error: Is a directory\n");
                status = 1;
                continue;
            }
            match self.read(&p) {
                Some(data) => self.out(fds, &data),
                None => {
                    self.err(
                        fds,
                        &format!("cat: can't open '{a}': No such file or directory\n"),
                    );
                    status = 1;
                }
            }
        }
        status
    }

    fn bad_option(&mut self, cmd: &str, c: char, fds: &Fds) -> i32 {
        self.err(fds, &format!("{cmd}: invalid option -- '{c}'\n"));
        1
    }

    fn cmd_touch(&mut self, args: &[String], fds: &Fds) -> i32 {
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

    fn cmd_rm(&mut self, args: &[String], fds: &Fds) -> i32 {
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

    fn cmd_mkdir(&mut self, args: &[String], fds: &Fds) -> i32 {
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

    fn cmd_test(&mut self, args: &[String], fds: &Fds, bracket: bool) -> i32 {
        let args = if bracket {
            match args.split_last() {
                Some((last, rest)) if last == "]" => rest,
                _ => {
                    self.err(fds, "sh: missing ]\n");
                    return 2;
                }
            }
        } else {
            args
        };
        match self.test(args) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(msg) => {
                self.err(fds, &format!("sh: {msg}\n"));
                2
            }
        }
    }

    fn test(&self, a: &[String]) -> Result<bool, String> {
        let s = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
        match a.len() {
            0 => Ok(false),
            1 => Ok(!s(0).is_empty()),
            2 => {
                if s(0) == "!" {
                    Ok(s(1).is_empty())
                } else if is_unary(s(0)) {
                    self.unary(s(0), s(1))
                } else {
                    Err(format!("{}: unknown operand", s(0)))
                }
            }
            3 => {
                if is_binary(s(1)) {
                    self.binary(s(0), s(1), s(2))
                } else if s(0) == "!" {
                    Ok(!self.test(a.get(1..).unwrap_or(&[]))?)
                } else if s(0) == "(" && s(2) == ")" {
                    Ok(!s(1).is_empty())
                } else {
                    self.test_general(a)
                }
            }
            4 => {
                if s(0) == "!" {
                    Ok(!self.test(a.get(1..).unwrap_or(&[]))?)
                } else if s(0) == "(" && s(3) == ")" {
                    self.test(a.get(1..3).unwrap_or(&[]))
                } else {
                    self.test_general(a)
                }
            }
            _ => self.test_general(a),
        }
    }

    fn test_general(&self, a: &[String]) -> Result<bool, String> {
        let mut p = TestParser {
            interp: self,
            a,
            i: 0,
            depth: 0,
        };
        let v = p.or()?;
        match a.get(p.i) {
            None => Ok(v),
            Some(extra) => Err(format!("{extra}: unknown operand")),
        }
    }

    fn unary(&self, op: &str, operand: &str) -> Result<bool, String> {
        let p = || self.path(operand);
        Ok(match op {
            "-z" => operand.is_empty(),
            "-n" => !operand.is_empty(),
            "-e" | "-r" | "-w" | "-x" => self.exists(&p()),
            "-f" => self.is_file(&p()),
            "-d" => self.is_dir(&p()),
            "-s" => {
                let p = p();
                self.is_dir(&p)
                    || (self.is_file(&p) && self.read(&p).is_some_and(|d| !d.is_empty()))
            }
            "-c" => p() == "/dev/null",
            // Links, sockets, pipes, block devices and terminals do not exist here.
            _ => false,
        })
    }

    fn binary(&self, l: &str, op: &str, r: &str) -> Result<bool, String> {
        Ok(match op {
            "=" | "==" => l == r,
            "!=" => l != r,
            "<" => l < r,
            ">" => l > r,
            "-a" => !l.is_empty() && !r.is_empty(),
            "-o" => !l.is_empty() || !r.is_empty(),
            "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => {
                let (x, y) = (test_number(l)?, test_number(r)?);
                match op {
                    "-eq" => x == y,
                    "-ne" => x != y,
                    "-lt" => x < y,
                    "-le" => x <= y,
                    "-gt" => x > y,
                    _ => x >= y,
                }
            }
            // No modification times or inodes: -nt, -ot, -ef are false.
            _ => false,
        })
    }

    fn cmd_date(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut format = "%a %b %e %H:%M:%S %Z %Y".to_string();
        for a in args {
            if let Some(f) = a.strip_prefix('+') {
                format = f.to_string();
            } else if a == "-u" || a == "--utc" {
            } else if a == "-R" {
                format = "%a, %d %b %Y %H:%M:%S +0000".to_string();
            } else if a == "-I" {
                format = "%Y-%m-%d".to_string();
            } else {
                self.err(fds, &format!("date: invalid date '{a}'\n"));
                return 1;
            }
        }
        let mut line = strftime(&format, self.shell.now_unix());
        line.push('\n');
        self.out(fds, line.as_bytes());
        0
    }

    fn cmd_ls(&mut self, args: &[String], fds: &Fds) -> i32 {
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

    fn cmd_set(&mut self, args: &[String], fds: &Fds) -> i32 {
        for a in args {
            if !set_option_ok(a) {
                self.err(fds, &format!("sh: set: illegal option {a}\n"));
                return 2;
            }
            let on = a.starts_with('-');
            for c in a.chars().skip(1) {
                if c == 'e' {
                    self.errexit = on;
                } else {
                    self.xtrace = on;
                }
            }
        }
        0
    }
}

/// Options (`-abc`, up to `--` or the first operand) among `allowed`: (flags, operands), or the
/// first unknown option letter.
fn getopts<'x>(args: &'x [String], allowed: &str) -> Result<(String, &'x [String]), char> {
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

fn is_unary(op: &str) -> bool {
    matches!(
        op,
        "-e" | "-f"
            | "-d"
            | "-s"
            | "-z"
            | "-n"
            | "-r"
            | "-w"
            | "-x"
            | "-L"
            | "-h"
            | "-b"
            | "-c"
            | "-p"
            | "-S"
            | "-t"
            | "-g"
            | "-u"
            | "-k"
            | "-O"
            | "-G"
    )
}

fn is_binary(op: &str) -> bool {
    matches!(
        op,
        "=" | "=="
            | "!="
            | "<"
            | ">"
            | "-eq"
            | "-ne"
            | "-lt"
            | "-le"
            | "-gt"
            | "-ge"
            | "-a"
            | "-o"
            | "-nt"
            | "-ot"
            | "-ef"
    )
}

fn test_number(s: &str) -> Result<i64, String> {
    let t = s.trim_start_matches(is_blank).trim_end_matches(is_blank);
    t.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "out of range"
            }
            _ => "bad number",
        };
        format!("{s}: {why}")
    })
}

/// `test` expressions of more than four arguments (and odd shorter ones).
struct TestParser<'x, 's> {
    interp: &'x Interp<'s>,
    a: &'x [String],
    i: usize,
    depth: usize,
}

impl<'x> TestParser<'x, '_> {
    fn peek(&self, k: usize) -> Option<&'x str> {
        self.a.get(self.i + k).map(String::as_str)
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek(0) == Some("-o") {
            self.i += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek(0) == Some("-a") {
            self.i += 1;
            let r = self.not()?;
            v = v && r;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        let mut negate = false;
        while self.peek(0) == Some("!") && self.peek(1).is_some() {
            negate = !negate;
            self.i += 1;
        }
        Ok(self.primary()? != negate)
    }

    fn primary(&mut self) -> Result<bool, String> {
        let Some(t) = self.peek(0) else {
            return Err("argument expected".into());
        };
        if t == "(" && self.peek(1).is_some() {
            self.depth += 1;
            if self.depth > MAX_TEST_DEPTH {
                return Err("expression nested too deeply".into());
            }
            self.i += 1;
            let v = self.or()?;
            if self.peek(0) != Some(")") {
                return Err("missing )".into());
            }
            self.i += 1;
            self.depth -= 1;
            return Ok(v);
        }
        if is_unary(t) {
            if let Some(operand) = self.peek(1) {
                let v = self.interp.unary(t, operand)?;
                self.i += 2;
                return Ok(v);
            }
        }
        if let (Some(op), Some(r)) = (self.peek(1), self.peek(2)) {
            if is_binary(op) && op != "-a" && op != "-o" {
                let v = self.interp.binary(t, op, r)?;
                self.i += 3;
                return Ok(v);
            }
        }
        self.i += 1;
        Ok(!t.is_empty())
    }
}

/// Backslash escapes of `echo -e` / `%b` (`echo_style`: `\0NNN` octal) or of a printf format
/// (`\NNN` octal): the bytes, and whether `\c` asked to stop all output.
fn unescape(s: &str, echo_style: bool) -> (Vec<u8>, bool) {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i += 1;
            continue;
        }
        let (bytes, used, stop) = escape_at(&chars, i + 1, echo_style);
        out.extend_from_slice(&bytes);
        if stop {
            return (out, true);
        }
        i += 1 + used;
    }
    (out, false)
}

/// The escape after a backslash at `chars[i..]`: (bytes, chars used, `\c`).
fn escape_at(chars: &[char], i: usize, echo_style: bool) -> (Vec<u8>, usize, bool) {
    let Some(&c) = chars.get(i) else {
        return (b"\\".to_vec(), 0, false);
    };
    let simple = |b: u8| (vec![b], 1, false);
    match c {
        'n' => simple(b'\n'),
        't' => simple(b'\t'),
        'r' => simple(b'\r'),
        'a' => simple(7),
        'b' => simple(8),
        'f' => simple(12),
        'v' => simple(11),
        '\\' => simple(b'\\'),
        'c' => (Vec::new(), 1, true),
        '"' if !echo_style => simple(b'"'),
        '0'..='7' => {
            // echo: \0 then up to three octal digits; printf: up to three octal digits.
            let (start, max) = if echo_style {
                if c != '0' {
                    return (format!("\\{c}").into_bytes(), 1, false);
                }
                (i + 1, 3)
            } else {
                (i, 3)
            };
            let mut v: u32 = 0;
            let mut n = 0;
            while n < max {
                match chars.get(start + n).and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        n += 1;
                    }
                    None => break,
                }
            }
            (vec![(v & 0xff) as u8], start - i + n, false)
        }
        other => (format!("\\{other}").into_bytes(), 1, false),
    }
}

/// One pass of a printf format over the arguments from `*ai`: Ok(true) when `\c` stopped output,
/// Err on an invalid conversion. Bad numbers are reported in `errors` and print as 0.
fn printf_once(
    fmt: &[char],
    args: &[String],
    ai: &mut usize,
    out: &mut Vec<u8>,
    errors: &mut String,
) -> Result<bool, String> {
    let mut i = 0;
    let next_arg = |ai: &mut usize| -> Option<String> {
        let a = args.get(*ai).cloned();
        if a.is_some() {
            *ai += 1;
        }
        a
    };
    while let Some(&c) = fmt.get(i) {
        if c == '\\' {
            let (bytes, used, stop) = escape_at(fmt, i + 1, false);
            out.extend_from_slice(&bytes);
            if stop {
                return Ok(true);
            }
            i += 1 + used;
            continue;
        }
        if c != '%' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i += 1;
            continue;
        }
        let spec_start = i;
        i += 1;
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = fmt.get(i) {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(d) = fmt.get(i).and_then(|d| d.to_digit(10)) {
            width = width
                .saturating_mul(10)
                .saturating_add(d as usize)
                .min(MAX_WIDTH);
            i += 1;
        }
        let mut precision: Option<usize> = None;
        if fmt.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0usize;
            while let Some(d) = fmt.get(i).and_then(|d| d.to_digit(10)) {
                p = p
                    .saturating_mul(10)
                    .saturating_add(d as usize)
                    .min(MAX_WIDTH);
                i += 1;
            }
            precision = Some(p);
        }
        let Some(&conv) = fmt.get(i) else {
            let spec: String = fmt.get(spec_start..).unwrap_or(&[]).iter().collect();
            return Err(format!("printf: {spec}: invalid format\n"));
        };
        i += 1;
        let text: Vec<u8> = match conv {
            '%' => b"%".to_vec(),
            's' => {
                let mut s = next_arg(ai).unwrap_or_default();
                if let Some(p) = precision {
                    s = s.chars().take(p).collect();
                }
                pad(&s, width, left, false).into_bytes()
            }
            'b' => {
                let (bytes, stop) = unescape(&next_arg(ai).unwrap_or_default(), true);
                out.extend_from_slice(&bytes);
                if stop {
                    return Ok(true);
                }
                Vec::new()
            }
            'c' => {
                let s: String = next_arg(ai).unwrap_or_default().chars().take(1).collect();
                pad(&s, width, left, false).into_bytes()
            }
            'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
                let a = next_arg(ai).unwrap_or_default();
                let n = match printf_number(&a) {
                    Some(n) => n,
                    None => {
                        errors.push_str(&format!("printf: invalid number '{a}'\n"));
                        0
                    }
                };
                let s = match conv {
                    'd' | 'i' => {
                        let sign = if n < 0 {
                            "-"
                        } else if plus {
                            "+"
                        } else if space {
                            " "
                        } else {
                            ""
                        };
                        format!("{sign}{}", n.unsigned_abs())
                    }
                    'u' => format!("{}", n as u64),
                    'x' => format!("{:x}", n as u64),
                    'X' => format!("{:X}", n as u64),
                    _ => format!("{:o}", n as u64),
                };
                pad(&s, width, left, zero).into_bytes()
            }
            'f' => {
                let a = next_arg(ai).unwrap_or_default();
                let v = if a.trim().is_empty() {
                    0.0
                } else {
                    match a.trim().parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            errors.push_str(&format!("printf: invalid number '{a}'\n"));
                            0.0
                        }
                    }
                };
                let p = precision.unwrap_or(6).min(64);
                let sign = if v < 0.0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                pad(&format!("{sign}{:.*}", p, v.abs()), width, left, zero).into_bytes()
            }
            other => return Err(format!("printf: %{other}: invalid format\n")),
        };
        out.extend_from_slice(&text);
    }
    Ok(false)
}

/// A printf integer argument (decimal, 0x hex, 0 octal, 'c character); None when invalid.
fn printf_number(a: &str) -> Option<i64> {
    let t = a.trim_start_matches(is_blank);
    if t.is_empty() {
        return Some(0);
    }
    if let Some(rest) = t.strip_prefix('\'').or_else(|| t.strip_prefix('"')) {
        return Some(rest.chars().next().map(|c| c as i64).unwrap_or(0));
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(body.get(1..)?, 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { v.checked_neg()? } else { v })
}

fn pad(s: &str, width: usize, left: bool, zero: bool) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    let fill = width - n;
    if left {
        format!("{s}{}", " ".repeat(fill))
    } else if zero {
        let (sign, digits) = match s.chars().next() {
            Some('-' | '+' | ' ') => s.split_at(1),
            _ => ("", s),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

// ----- date

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month 1-12, day 1-31, weekday 0=Sunday, day of year 1-366, seconds of the day).
fn civil(ts: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = ts.div_euclid(86400);
    let secs = ts.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let weekday = (days + 4).rem_euclid(7);
    let yday = days - days_from_civil(y, 1, 1) + 1;
    (y, m, d, weekday, yday, secs)
}

/// A `date +FORMAT` rendering, in UTC.
fn strftime(fmt: &str, ts: i64) -> String {
    // Keep the arithmetic far from overflow: years beyond +-10^11 are not dates anyone prints.
    let ts = ts.clamp(-(1i64 << 52), 1i64 << 52);
    let (y, m, d, wd, yday, secs) = civil(ts);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let month = MONTHS
        .get((m - 1).clamp(0, 11) as usize)
        .copied()
        .unwrap_or("January");
    let weekday = WEEKDAYS
        .get(wd.clamp(0, 6) as usize)
        .copied()
        .unwrap_or("Sunday");
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", if hh % 12 == 0 { 12 } else { hh % 12 })),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('s') => out.push_str(&ts.to_string()),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('T') => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            Some('R') => out.push_str(&format!("{hh:02}:{mm:02}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y.rem_euclid(100))),
            Some('a') => out.push_str(weekday.get(..3).unwrap_or(weekday)),
            Some('A') => out.push_str(weekday),
            Some('b' | 'h') => out.push_str(month.get(..3).unwrap_or(month)),
            Some('B') => out.push_str(month),
            Some('u') => out.push_str(&(if wd == 0 { 7 } else { wd }).to_string()),
            Some('w') => out.push_str(&wd.to_string()),
            Some('Z') => out.push_str("UTC"),
            Some('z') => out.push_str("+0000"),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// An in-memory container: files (None: a directory), a fake clock that `sleep` advances at
    /// once, and optional exec probes run while sleeping.
    #[derive(Default)]
    struct Mem {
        fs: Mutex<BTreeMap<String, Option<Vec<u8>>>>,
        clock: Mutex<f64>,
        /// (clock at start, seconds, /tmp/healthy existed)
        sleeps: Mutex<Vec<(f64, f64, bool)>>,
        /// Run `cat /tmp/healthy` every this many seconds while sleeping.
        probe_every: Option<f64>,
        /// (clock, exit status) of the probes.
        probes: Mutex<Vec<(f64, i32)>>,
        out: Mutex<Vec<u8>>,
        err: Mutex<Vec<u8>>,
        env: BTreeMap<String, String>,
        /// Sleep for real (1 ms a call) instead of advancing the fake clock.
        real_sleep: bool,
        now: i64,
    }

    impl Mem {
        fn new() -> Self {
            Mem::default()
        }
        fn file(&self, p: &str) -> Option<Vec<u8>> {
            self.fs.lock().unwrap().get(p).cloned().flatten()
        }
        fn put(&self, p: &str, data: &str) {
            self.fs
                .lock()
                .unwrap()
                .insert(p.to_string(), Some(data.as_bytes().to_vec()));
        }
        fn out(&self) -> String {
            String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
        }
        fn err(&self) -> String {
            String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
        }
    }

    #[async_trait::async_trait]
    impl Shell for Mem {
        async fn sleep(&self, seconds: f64) {
            if self.real_sleep {
                tokio::time::sleep(Duration::from_millis(1)).await;
                return;
            }
            let start = *self.clock.lock().unwrap();
            let healthy = self.exists("/tmp/healthy");
            self.sleeps.lock().unwrap().push((start, seconds, healthy));
            if let Some(period) = self.probe_every {
                let mut t = (start / period).ceil() * period;
                if t <= 0.0 {
                    t = period;
                }
                while t < start + seconds && t <= 700.0 {
                    let (code, _, _) = exec(&v(&["cat", "/tmp/healthy"]), self).await;
                    self.probes.lock().unwrap().push((t, code));
                    t += period;
                }
            }
            *self.clock.lock().unwrap() = start + seconds;
        }
        fn read(&self, path: &str) -> Option<Vec<u8>> {
            self.file(path)
        }
        fn write(&self, path: &str, data: &[u8], append: bool) -> Result<(), String> {
            let mut fs = self.fs.lock().unwrap();
            match fs
                .entry(path.to_string())
                .or_insert_with(|| Some(Vec::new()))
            {
                None => Err("Is a directory".into()),
                Some(content) => {
                    if !append {
                        content.clear();
                    }
                    content.extend_from_slice(data);
                    Ok(())
                }
            }
        }
        fn remove(&self, path: &str) -> Result<(), String> {
            let prefix = format!("{path}/");
            self.fs
                .lock()
                .unwrap()
                .retain(|k, _| k != path && !k.starts_with(&prefix));
            Ok(())
        }
        fn exists(&self, path: &str) -> bool {
            self.fs.lock().unwrap().contains_key(path)
        }
        fn is_file(&self, path: &str) -> bool {
            matches!(self.fs.lock().unwrap().get(path), Some(Some(_)))
        }
        fn is_dir(&self, path: &str) -> bool {
            matches!(self.fs.lock().unwrap().get(path), Some(None))
        }
        fn mkdir(&self, path: &str) -> Result<(), String> {
            self.fs.lock().unwrap().insert(path.to_string(), None);
            Ok(())
        }
        fn stdout(&self, data: &[u8]) {
            self.out.lock().unwrap().extend_from_slice(data);
        }
        fn stderr(&self, data: &[u8]) {
            self.err.lock().unwrap().extend_from_slice(data);
        }
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).cloned()
        }
        fn now_unix(&self) -> i64 {
            self.now
        }
        fn list_dir(&self, path: &str) -> Option<Vec<String>> {
            let prefix = if path == "/" {
                "/".to_string()
            } else {
                format!("{path}/")
            };
            Some(
                self.fs
                    .lock()
                    .unwrap()
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                    .map(str::to_string)
                    .collect(),
            )
        }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Run `src` on `shell`: the exit status.
    fn sh_on(shell: &Mem, src: &str) -> i32 {
        let script = Script::parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
        block_on(run(&script, shell))
    }

    /// Run `src` on a fresh shell: (status, stdout, stderr).
    fn sh(src: &str) -> (i32, String, String) {
        let m = Mem::new();
        let code = sh_on(&m, src);
        (code, m.out(), m.err())
    }

    #[test]
    fn liveness_exec_example() {
        let m = Mem {
            probe_every: Some(5.0),
            ..Mem::new()
        };
        let script = from_command(&v(&[
            "/bin/sh",
            "-c",
            "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600",
        ]))
        .unwrap();
        let code = block_on(run(&script, &m));
        assert_eq!(code, 0);
        assert_eq!(
            *m.sleeps.lock().unwrap(),
            vec![(0.0, 30.0, true), (30.0, 600.0, false)]
        );
        assert_eq!(*m.clock.lock().unwrap(), 630.0);
        assert!(!m.exists("/tmp/healthy"));
        let probes = m.probes.lock().unwrap().clone();
        assert!(probes.len() > 100);
        for (t, code) in probes {
            assert_eq!(code, if t < 30.0 { 0 } else { 1 }, "probe at {t}");
        }
        assert_eq!(m.out(), "");
        assert_eq!(m.err(), "");
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(sh("exit 1").0, 1);
        assert_eq!(sh("exit").0, 0);
        assert_eq!(sh("false; exit").0, 1);
        assert_eq!(sh("exit 256").0, 0);
        assert_eq!(sh("exit 3; echo no"), (3, String::new(), String::new()));
        assert_eq!(
            sh("exit abc"),
            (2, String::new(), "sh: exit: Illegal number: abc\n".into())
        );
        assert_eq!(sh("true; false").0, 1);
        assert_eq!(sh("false; true").0, 0);
        assert_eq!(sh("").0, 0);
        assert_eq!(sh("# only a comment\n").0, 0);
        assert_eq!(sh("! true").0, 1);
        assert_eq!(sh("! false").0, 0);
        assert_eq!(sh("false; echo $?; true; echo $?").1, "1\n0\n");
    }

    #[test]
    fn test_and_or() {
        let m = Mem::new();
        assert_eq!(sh_on(&m, "test -f /tmp/x && echo yes || echo no"), 0);
        assert_eq!(m.out(), "no\n");
        m.put("/tmp/x", "");
        sh_on(&m, "test -f /tmp/x && echo yes || echo no");
        assert_eq!(m.out(), "no\nyes\n");
        sh_on(&m, "[ -e /tmp/x ] && [ ! -s /tmp/x ] && echo empty");
        assert_eq!(m.out(), "no\nyes\nempty\n");
        assert_eq!(sh("false && echo a || echo b").1, "b\n");
        assert_eq!(sh("true || echo a && echo b").1, "b\n");
        assert_eq!(sh("false || false || echo c").1, "c\n");
    }

    #[test]
    fn test_builtin() {
        let t = |s: &str| sh(s).0;
        assert_eq!(t("[ a = a ]"), 0);
        assert_eq!(t("[ a != a ]"), 1);
        assert_eq!(t("[ a == a ]"), 0);
        assert_eq!(t("[ ! -e /nope ]"), 0);
        assert_eq!(t("[ -z '' ]"), 0);
        assert_eq!(t("[ -n '' ]"), 1);
        assert_eq!(t("[ -n ]"), 0);
        assert_eq!(t("[ ]"), 1);
        assert_eq!(t("[ 3 -lt 10 ]"), 0);
        assert_eq!(t("[ 10 -le 3 ]"), 1);
        assert_eq!(t("[ -d /tmp ]"), 0);
        assert_eq!(t("[ -d /tmp -a -f /tmp/x ]"), 1);
        assert_eq!(t("[ -d /tmp -o -f /tmp/x ]"), 0);
        assert_eq!(t("[ \\( a = b \\) -o b = b ]"), 0);
        assert_eq!(t("[ ! a = b ]"), 0);
        assert_eq!(t("test ! = x"), 1);
        assert_eq!(t("[ x -a '' ]"), 1);
        assert_eq!(
            sh("[ abc -eq 1 ]"),
            (2, String::new(), "sh: abc: bad number\n".into())
        );
        assert_eq!(sh("[ a = a"), (2, String::new(), "sh: missing ]\n".into()));
        assert_eq!(sh("[ a b ]").0, 2);
        assert_eq!(t("X=5; [ \"$X\" -gt 4 ]"), 0);
    }

    #[test]
    fn while_and_until_loops() {
        let m = Mem::new();
        let code = sh_on(
            &m,
            "n=\nwhile [ \"$n\" != xxx ]; do\n  n=\"${n}x\"\n  echo -n x >> /tmp/count\ndone\ncat /tmp/count; echo",
        );
        assert_eq!(code, 0);
        assert_eq!(m.out(), "xxx\n");
        let m = Mem::new();
        sh_on(
            &m,
            "until [ -f /tmp/c3 ]; do if [ -f /tmp/c2 ]; then touch /tmp/c3; elif [ -f /tmp/c1 ]; then touch /tmp/c2; \
             else touch /tmp/c1; fi; echo tick >> /tmp/log; sleep 1; done",
        );
        assert_eq!(m.file("/tmp/log").unwrap(), b"tick\ntick\ntick\n");
        assert_eq!(*m.clock.lock().unwrap(), 3.0);
        // break / continue, and a loop's status.
        assert_eq!(
            sh("while true; do echo once; break; done; echo after").1,
            "once\nafter\n"
        );
        assert_eq!(
            sh("for i in 1 2 3; do for j in a b; do [ $j = b ] && continue 2; echo $i$j; done; done").1,
            "1a\n2a\n3a\n"
        );
        assert_eq!(
            sh("for i in 1 2 3; do [ $i = 2 ] && break; echo $i; done").1,
            "1\n"
        );
        assert_eq!(sh("while false; do :; done").0, 0);
        assert_eq!(sh("for i in a; do false; done").0, 1);
        assert_eq!(sh("break; continue; echo ok").1, "ok\n");
    }

    #[test]
    fn redirections() {
        let m = Mem::new();
        sh_on(&m, "echo a > /tmp/f; echo b >> /tmp/f; cat /tmp/f");
        assert_eq!(m.out(), "a\nb\n");
        assert_eq!(m.file("/tmp/f").unwrap(), b"a\nb\n");
        sh_on(&m, "echo c > /tmp/f");
        assert_eq!(m.file("/tmp/f").unwrap(), b"c\n");
        // 2>&1 then > /dev/null: the error goes to the old stdout.
        let (code, out, err) = sh("cat /nope 2>&1 > /dev/null");
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                1,
                "cat: can't open '/nope': No such file or directory\n",
                ""
            )
        );
        let m = Mem::new();
        sh_on(
            &m,
            "cat /nope > /tmp/o 2>&1; echo hidden > /dev/null; echo to-err >&2; echo x 1>/dev/null",
        );
        assert_eq!(
            m.file("/tmp/o").unwrap(),
            b"cat: can't open '/nope': No such file or directory\n"
        );
        assert_eq!(m.out(), "");
        assert_eq!(m.err(), "to-err\n");
        let (code, _, err) = sh("echo x > /nodir/f");
        assert_eq!(
            (code, err.as_str()),
            (1, "sh: can't create /nodir/f: No such file or directory\n")
        );
        let (code, _, err) = sh("echo x > /tmp");
        assert_eq!(
            (code, err.as_str()),
            (1, "sh: can't create /tmp: Is a directory\n")
        );
        // Redirection of a compound command, and of nothing.
        let m = Mem::new();
        sh_on(
            &m,
            "for i in 1 2; do echo $i; done > /tmp/l; > /tmp/empty; echo err 2>/tmp/e >&2",
        );
        assert_eq!(m.file("/tmp/l").unwrap(), b"1\n2\n");
        assert_eq!(m.file("/tmp/empty").unwrap(), b"");
        assert_eq!(m.file("/tmp/e").unwrap(), b"err\n");
        let m = Mem::new();
        sh_on(&m, "F=/tmp/v; echo hi >\"$F\"; echo 2>/dev/null quiet");
        assert_eq!(m.file("/tmp/v").unwrap(), b"hi\n");
        assert_eq!(m.out(), "quiet\n");
    }

    #[test]
    fn quoting_and_expansion() {
        let m = Mem {
            env: [("HOME".to_string(), "/root".to_string())].into(),
            ..Mem::new()
        };
        sh_on(
            &m,
            r#"X=1; echo 'a  b' "c  $X" d\ e; echo "$UNSET"x; echo '$X' "\$X" "a\"b" "it's"; echo $HOME ${HOME}/x"#,
        );
        assert_eq!(
            m.out(),
            "a  b c  1 d e\nx\n$X $X a\"b it's\n/root /root/x\n"
        );
        assert_eq!(
            sh("X='a b'; for w in $X; do echo \"[$w]\"; done").1,
            "[a]\n[b]\n"
        );
        assert_eq!(
            sh("X='a b'; for w in \"$X\"; do echo \"[$w]\"; done").1,
            "[a b]\n"
        );
        assert_eq!(
            sh("E=; for w in $E; do echo no; done; for w in \"$E\"; do echo \"[$w]\"; done").1,
            "[]\n"
        );
        assert_eq!(sh("echo ${U:-def} ${U-d2} ${#HOME}x; X=; echo ${X:-e} [${X-f}] ${X:+g}; Y=y; echo ${Y:+alt}").1, "def d2 0x\ne []\nalt\n");
        assert_eq!(sh("echo ${Z:=zed}; echo $Z").1, "zed\nzed\n");
        assert_eq!(
            sh("echo a\\\nb; echo \"line1\nline2\"").1,
            "ab\nline1\nline2\n"
        );
        assert_eq!(sh("echo $ $5 \"$\" a$").1, "$ $ a$\n");
        assert_eq!(sh("echo a#b # comment").1, "a#b\n");
        assert_eq!(sh("X=1 Y=2; echo $X$Y").1, "12\n");
        assert_eq!(sh("echo if then do; echo done").1, "if then do\ndone\n");
        // An environment variable unset by the script.
        let m = Mem {
            env: [("A".to_string(), "env".to_string())].into(),
            ..Mem::new()
        };
        sh_on(&m, "echo $A; unset A; echo \"[$A]\"; export B=2; echo $B");
        assert_eq!(m.out(), "env\n[]\n2\n");
    }

    #[test]
    fn positional_parameters() {
        let s = from_command(&v(&[
            "sh",
            "-c",
            "echo $0 $1 $# \"$@\"; for a; do echo \"<$a>\"; done",
            "zero",
            "one",
            "t w o",
        ]))
        .unwrap();
        let m = Mem::new();
        block_on(run(&s, &m));
        assert_eq!(m.out(), "zero one 2 one t w o\n<one>\n<t w o>\n");
        assert_eq!(sh("echo $0 $#").1, "sh 0\n");
    }

    #[test]
    fn exec_probe() {
        let m = Mem::new();
        let (code, out, err) = block_on(exec(&v(&["cat", "/tmp/healthy"]), &m));
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "cat: can't open '/tmp/healthy': No such file or directory\n"
        );
        m.put("/tmp/healthy", "ok");
        assert_eq!(
            block_on(exec(&v(&["cat", "/tmp/healthy"]), &m)),
            (0, b"ok".to_vec(), Vec::new())
        );
        assert_eq!(block_on(exec(&v(&["/bin/cat", "/tmp/healthy"]), &m)).0, 0);
        // exec output is captured, not written to the container's log.
        assert_eq!(m.out(), "");
        // Arguments are not expanded.
        assert_eq!(
            block_on(exec(&v(&["echo", "$HOME", "*"]), &m)).1,
            b"$HOME *\n"
        );
        let (code, out, _) = block_on(exec(
            &v(&["sh", "-c", "test -f /tmp/healthy && echo up"]),
            &m,
        ));
        assert_eq!((code, out), (0, b"up\n".to_vec()));
        assert_eq!(block_on(exec(&v(&["/bin/sh", "-c", "exit 7"]), &m)).0, 7);
        assert_eq!(block_on(exec(&v(&["sh"]), &m)).0, 0);
        let (code, _, err) = block_on(exec(&v(&["sh", "-c", "echo $(date)"]), &m));
        assert_eq!(code, 2);
        assert!(String::from_utf8(err)
            .unwrap()
            .starts_with("sh: syntax error: command substitution $(...)"));
        let (code, _, err) = block_on(exec(&v(&["sh", "-c"]), &m));
        assert_eq!(
            (code, String::from_utf8(err).unwrap()),
            (2, "sh: sh: -c requires an argument\n".to_string())
        );
        assert_eq!(block_on(exec(&v(&["busybox", "true"]), &m)).0, 0);
    }

    #[test]
    fn unknown_commands() {
        let m = Mem::new();
        let (code, out, err) = block_on(exec(&v(&["wget", "-q", "http://x"]), &m));
        assert_eq!(
            (code, out, String::from_utf8(err).unwrap()),
            (127, Vec::new(), "sh: wget: not found\n".to_string())
        );
        assert_eq!(block_on(exec(&v(&["exit", "1"]), &m)).0, 127);
        assert_eq!(block_on(exec(&[], &m)).0, 127);
        let (code, out, err) = sh("nosuch arg; echo $?");
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "127\n", "sh: nosuch: not found\n")
        );
        assert_eq!(sh("/opt/app/run").0, 127);
        assert_eq!(sh("/bin/echo hi").1, "hi\n");
    }

    #[test]
    fn parse_errors() {
        let e = |s: &str| Script::parse(s).unwrap_err();
        assert_eq!(
            e("echo $(date)"),
            ParseError::Unsupported {
                construct: "command substitution $(...)".into(),
                at: 5
            }
        );
        assert!(e("echo \"x $(date)\"").to_string().contains("$(...)"));
        assert!(matches!(
            e("echo `date`"),
            ParseError::Unsupported { at: 5, .. }
        ));
        assert!(
            matches!(e("echo $((1+2))"), ParseError::Unsupported { ref construct, .. } if construct.contains("arithmetic"))
        );
        assert_eq!(
            e("do echo; done"),
            ParseError::UnexpectedToken {
                token: "do".into(),
                at: 0
            }
        );
        assert_eq!(
            e("echo a; done"),
            ParseError::UnexpectedToken {
                token: "done".into(),
                at: 8
            }
        );
        assert_eq!(
            e("while true; echo"),
            ParseError::UnexpectedEnd {
                expected: "\"do\"".into()
            }
        );
        assert_eq!(
            e("while true; do echo"),
            ParseError::UnexpectedEnd {
                expected: "\"done\"".into()
            }
        );
        assert_eq!(
            e("if true; then echo"),
            ParseError::UnexpectedEnd {
                expected: "\"fi\"".into()
            }
        );
        assert_eq!(
            e("if true; then fi"),
            ParseError::UnexpectedToken {
                token: "fi".into(),
                at: 14
            }
        );
        assert_eq!(
            e("if; then :; fi"),
            ParseError::UnexpectedToken {
                token: ";".into(),
                at: 2
            }
        );
        assert_eq!(
            e("echo 'abc"),
            ParseError::UnterminatedQuote { quote: '\'', at: 5 }
        );
        assert_eq!(
            e("echo \"abc"),
            ParseError::UnterminatedQuote { quote: '"', at: 5 }
        );
        assert!(matches!(e("a | b"), ParseError::Unsupported { at: 2, .. }));
        assert!(matches!(
            e("sleep 1 &"),
            ParseError::Unsupported { at: 8, .. }
        ));
        assert!(matches!(e("(echo)"), ParseError::Unsupported { .. }));
        assert!(matches!(e("cat < /x"), ParseError::Unsupported { .. }));
        assert!(matches!(e("cat <<EOF"), ParseError::Unsupported { .. }));
        assert!(matches!(
            e("case x in esac"),
            ParseError::Unsupported { .. }
        ));
        assert!(matches!(e("rm /tmp/*"), ParseError::Unsupported { .. }));
        assert!(matches!(e("cd /tmp"), ParseError::Unsupported { .. }));
        assert!(matches!(e("echo ${X#a}"), ParseError::Unsupported { .. }));
        assert!(matches!(
            e("echo ${X"),
            ParseError::BadSubstitution { at: 5, .. }
        ));
        assert!(matches!(e("echo ${}"), ParseError::BadSubstitution { .. }));
        assert!(matches!(e("echo a 3> /x"), ParseError::Unsupported { .. }));
        assert!(matches!(e("echo a >& /x"), ParseError::Unsupported { .. }));
        assert!(matches!(e("echo a >"), ParseError::UnexpectedEnd { .. }));
        assert!(matches!(e("&& echo"), ParseError::UnexpectedToken { .. }));
        assert!(matches!(e("echo ;;"), ParseError::UnexpectedToken { .. }));
        assert!(matches!(
            e("if true; then :; fi foo"),
            ParseError::UnexpectedToken { .. }
        ));
        assert!(matches!(e("set -u"), ParseError::Unsupported { .. }));
        assert!(matches!(
            e("for 1x in a; do :; done"),
            ParseError::UnexpectedToken { .. }
        ));
        let deep = "if true; then ".repeat(MAX_DEPTH + 1);
        assert!(matches!(e(&deep), ParseError::TooDeep { .. }));
        // Still valid: quoted globs, X=* assignments, `!` in test, keywords as arguments.
        for ok in [
            "echo '*' \"?\"",
            "X=*; echo \"$X\"",
            "[ ! -f /x ]",
            "echo done fi",
            "for x in a b\ndo echo $x\ndone",
            "if true\nthen\n:\nfi",
        ] {
            assert!(Script::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn cancellable() {
        let m = Mem {
            real_sleep: true,
            ..Mem::new()
        };
        let script = Script::parse("while true; do sleep 1; done").unwrap();
        let r = block_on(async {
            tokio::time::timeout(Duration::from_millis(30), run(&script, &m)).await
        });
        assert!(r.is_err());
        // A busy loop still yields, so it can be cancelled too (the fake sleep returns at once).
        let m = Mem::new();
        for src in [
            "while true; do :; done",
            "sleep infinity",
            "until false; do echo x > /tmp/y; done",
            "for i in 1; do while :; do continue; done; done",
        ] {
            let script = Script::parse(src).unwrap();
            let r = block_on(async {
                tokio::time::timeout(Duration::from_millis(20), run(&script, &m)).await
            });
            assert!(r.is_err(), "{src}");
        }
    }

    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let m = Mem::new();
        let s = Script::parse("true").unwrap();
        assert_send(run(&s, &m));
        let argv = v(&["true"]);
        assert_send(exec(&argv, &m));
    }

    #[test]
    fn from_command_forms() {
        let m = Mem::new();
        let s = from_command(&v(&["sleep", "3600"])).unwrap();
        assert_eq!(block_on(run(&s, &m)), 0);
        assert_eq!(m.sleeps.lock().unwrap().last().map(|s| s.1), Some(3600.0));
        assert!(from_command(&v(&["cat", "/x"])).is_ok());
        assert!(from_command(&v(&["/bin/sh", "-c", "true", "extra"])).is_ok());
        assert!(from_command(&v(&["busybox", "sh", "-c", "true"])).is_ok());
        assert_eq!(from_command(&[]), Err(ParseError::EmptyCommand));
        assert_eq!(
            from_command(&v(&["nginx", "-g"])),
            Err(ParseError::UnknownCommand {
                command: "nginx".into()
            })
        );
        assert!(matches!(
            from_command(&v(&["sh", "-c"])),
            Err(ParseError::BadInvocation { .. })
        ));
        assert!(matches!(
            from_command(&v(&["sh", "-i"])),
            Err(ParseError::BadInvocation { .. })
        ));
        assert!(matches!(
            from_command(&v(&["sh", "-c", "for"])),
            Err(ParseError::UnexpectedEnd { .. })
        ));
        // sh -e: errexit.
        let m = Mem::new();
        assert_eq!(
            block_on(run(
                &from_command(&v(&["sh", "-ec", "false; echo no"])).unwrap(),
                &m
            )),
            1
        );
        assert_eq!(m.out(), "");
        // sh FILE: a script mounted into the container.
        let m = Mem::new();
        m.put("/scripts/run.sh", "#!/bin/sh\necho from file $1\nexit 4\n");
        let s = from_command(&v(&["sh", "/scripts/run.sh", "arg"])).unwrap();
        assert_eq!(block_on(run(&s, &m)), 4);
        assert_eq!(m.out(), "from file arg\n");
        let (code, _, err) = block_on(exec(&v(&["sh", "/nope.sh"]), &m));
        assert_eq!(
            (code, String::from_utf8(err).unwrap()),
            (
                2,
                "sh: can't open '/nope.sh': No such file or directory\n".into()
            )
        );
        // Empty `sh` reads an empty stdin.
        assert_eq!(block_on(run(&from_command(&v(&["sh"])).unwrap(), &m)), 0);
    }

    #[test]
    fn set_e_and_x() {
        assert_eq!(
            sh("set -e; false; echo no"),
            (1, String::new(), String::new())
        );
        assert_eq!(sh("set -e; false || true; echo yes").1, "yes\n");
        assert_eq!(
            sh("set -e; if false; then :; fi; ! true; false && true; echo yes").1,
            "yes\n"
        );
        assert_eq!(sh("set -e; while false; do :; done; echo yes").1, "yes\n");
        assert_eq!(sh("set -e; set +e; false; echo yes").1, "yes\n");
        assert_eq!(sh("set -x; echo hi").2, "+ echo hi\n");
    }

    #[test]
    fn nested_shell() {
        let (code, out, _) =
            sh("X=1; export Y=2; Z=3 sh -c 'echo \"[$X][$Y][$Z]\"; exit 5'; echo $?");
        assert_eq!((code, out.as_str()), (0, "[][2][3]\n5\n"));
        let m = Mem::new();
        m.put("/s.sh", "sh /s.sh");
        assert_eq!(sh_on(&m, "sh /s.sh"), 2);
        assert!(m.err().contains("nested too deeply"));
        let (code, _, err) = sh("sh -c 'echo $(x)'");
        assert_eq!(code, 2);
        assert!(err.starts_with("sh: syntax error:"));
        // exec captures a nested shell's output too.
        let m = Mem::new();
        let (code, out, _) = block_on(exec(
            &v(&["sh", "-c", "sh -c 'echo inner'; echo outer"]),
            &m,
        ));
        assert_eq!((code, out), (0, b"inner\nouter\n".to_vec()));
        assert_eq!(m.out(), "");
    }

    #[test]
    fn file_commands() {
        let m = Mem::new();
        assert_eq!(sh_on(&m, "mkdir /data && mkdir -p /data/a/b && touch /data/a/b/f && [ -d /data/a/b ] && [ -f /data/a/b/f ]"), 0);
        assert_eq!(sh_on(&m, "mkdir /data"), 1);
        assert_eq!(
            m.err(),
            "mkdir: can't create directory '/data': File exists\n"
        );
        assert_eq!(sh_on(&m, "mkdir -p /data/a"), 0);
        assert_eq!(sh_on(&m, "mkdir /x/y"), 1);
        assert_eq!(sh_on(&m, "touch /nodir/f"), 1);
        assert!(m
            .err()
            .ends_with("touch: /nodir/f: No such file or directory\n"));
        assert_eq!(sh_on(&m, "rm /data/a"), 1);
        assert!(m
            .err()
            .ends_with("rm: can't remove '/data/a': Is a directory\n"));
        assert_eq!(sh_on(&m, "rm /data/nope"), 1);
        assert!(m
            .err()
            .ends_with("rm: can't remove '/data/nope': No such file or directory\n"));
        assert_eq!(sh_on(&m, "rm -f /data/nope"), 0);
        assert_eq!(sh_on(&m, "rm -rf /data/a && [ ! -e /data/a/b/f ]"), 0);
        assert_eq!(sh_on(&m, "rm -x /data"), 1);
        // Relative paths resolve against /.
        assert_eq!(sh_on(&m, "touch rel && [ -f /rel ] && cat ./rel ../rel"), 0);
        let m = Mem::new();
        sh_on(
            &m,
            "mkdir /d; touch /d/b /d/a /d/.h; ls /d; ls -a /d; ls /nope",
        );
        assert_eq!(m.out(), "a\nb\n.\n..\n.h\na\nb\n");
        assert_eq!(m.err(), "ls: /nope: No such file or directory\n");
        assert_eq!(sh("cat /tmp").2, "cat: read error: Is a directory\n");
        assert_eq!(sh("cat /dev/null; [ -e /dev/null ]").0, 0);
    }

    #[test]
    fn echo_printf_sleep_date() {
        assert_eq!(sh("echo -n a; echo b").1, "ab\n");
        assert_eq!(
            sh("echo -e 'a\\tb\\n'; echo 'a\\tb'; echo -e 'x\\cy'; echo -n -- -n").1,
            "a\tb\n\na\\tb\nx-- -n"
        );
        assert_eq!(sh("echo -e '\\0101'").1, "A\n");
        assert_eq!(sh("printf '%s-%s\\n' a b c").1, "a-b\nc-\n");
        assert_eq!(sh("printf 'x%5sy%-3sz\\n' ab c").1, "x   abyc  z\n");
        assert_eq!(
            sh("printf '%d %05d %x %o %c %%\\n' 42 -7 255 8 hello").1,
            "42 -0007 ff 10 h %\n"
        );
        assert_eq!(sh("printf '%.2f|%b\\n' 3.14159 'a\\nb'").1, "3.14|a\nb\n");
        assert_eq!(sh("printf 'no newline'").1, "no newline");
        assert_eq!(
            sh("printf '%d\\n' abc"),
            (1, "0\n".into(), "printf: invalid number 'abc'\n".into())
        );
        assert_eq!(sh("printf '%q'").0, 1);
        assert_eq!(sh("printf '\\101\\n'").1, "A\n");
        let m = Mem::new();
        assert_eq!(sh_on(&m, "sleep 0.5 1m 2; sleep 1.5s"), 0);
        let slept: Vec<f64> = m.sleeps.lock().unwrap().iter().map(|s| s.1).collect();
        assert_eq!(slept, vec![62.5, 1.5]);
        assert_eq!(
            sh("sleep abc"),
            (1, String::new(), "sleep: invalid number 'abc'\n".into())
        );
        assert_eq!(sh("sleep nan").0, 1);
        assert_eq!(sh("sleep -1").0, 1);
        let m = Mem {
            now: 1_700_000_000,
            ..Mem::new()
        };
        sh_on(&m, "date; date +%s; date -u '+%F %T %j'; date -I");
        assert_eq!(
            m.out(),
            "Tue Nov 14 22:13:20 UTC 2023\n1700000000\n2023-11-14 22:13:20 318\n2023-11-14\n"
        );
        assert_eq!(sh("date").1, "Thu Jan  1 00:00:00 UTC 1970\n");
        assert_eq!(strftime("%F %a", 951_782_400), "2000-02-29 Tue");
        assert_eq!(strftime("%F %T", -1), "1969-12-31 23:59:59");
    }

    /// The deepest nesting the limits allow runs without exhausting the stack.
    #[test]
    fn deep_nesting_runs() {
        let depth = MAX_DEPTH;
        let body = format!(
            "{}echo deep; sh /s.sh{}",
            "if true; then ".repeat(depth),
            "; fi".repeat(depth)
        );
        let m = Mem::new();
        m.put("/s.sh", &body);
        assert_eq!(sh_on(&m, "sh /s.sh"), 2);
        assert_eq!(m.out(), "deep\n".repeat(MAX_SH_NESTING));
        let deep_test = format!(
            "[ {} x {} ]",
            "\\( ".repeat(MAX_TEST_DEPTH),
            "\\) ".repeat(MAX_TEST_DEPTH)
        );
        assert_eq!(sh(&deep_test).0, 0);
        let too_deep = format!(
            "[ {} x {} ]",
            "\\( ".repeat(MAX_TEST_DEPTH + 1),
            "\\) ".repeat(MAX_TEST_DEPTH + 1)
        );
        assert_eq!(sh(&too_deep).0, 2);
        assert_eq!(sh(&format!("[ {} x ]", "! ".repeat(10_001))).0, 1);
    }

    /// Arbitrary input never panics, and whatever parses runs (cancelled by a timeout).
    #[test]
    fn no_panics() {
        let pieces = [
            "echo",
            " ",
            "'",
            "\"",
            "$",
            "{",
            "}",
            "(",
            ")",
            ";",
            "\n",
            "&&",
            "||",
            "|",
            "&",
            ">",
            ">>",
            "2>&1",
            "<",
            "if",
            "then",
            "else",
            "fi",
            "while",
            "do",
            "done",
            "for",
            "in",
            "x",
            "[",
            "]",
            "-f",
            "!",
            "=",
            "\\",
            "#",
            "${X:-",
            "$?",
            "sleep",
            "1",
            "exit",
            "é",
            "`",
            "*",
            "break",
            "test",
            "printf",
            "%",
            "%d",
            "-e",
            "set",
            "X=",
            "rm",
            "-rf",
            "/",
            "..",
            "cat",
            "sh",
            "-c",
            "0",
            "9999999999999999999999",
            ":",
            "until",
            "elif",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut parsed = 0;
        for _ in 0..4000 {
            let mut src = String::new();
            let n = (seed % 12) as usize + 1;
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                src.push_str(pieces[(seed % pieces.len() as u64) as usize]);
                if seed.is_multiple_of(3) {
                    src.push(' ');
                }
            }
            // Every prefix (by character) too.
            for (end, _) in src.char_indices() {
                let _ = Script::parse(&src[..end]);
            }
            if let Ok(script) = Script::parse(&src) {
                parsed += 1;
                let m = Mem::new();
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(2), run(&script, &m)).await
                });
            }
            let argv: Vec<String> = src.split(' ').map(str::to_string).collect();
            let m = Mem::new();
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(2), exec(&argv, &m)).await
            });
            let _ = from_command(&argv);
        }
        assert!(parsed > 100, "only {parsed} parsed");
    }
}
