//! The syntax tree of a parsed script: lists, and-or lists (run in the background with `&`),
//! pipelines, simple and compound commands, function definitions, redirections (here-documents
//! included), and words made of literal, parameter, arithmetic and command substitution parts.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct List {
    pub(super) items: Vec<AndOr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct AndOr {
    pub(super) first: Pipeline,
    pub(super) rest: Vec<(Conn, Pipeline)>,
    /// Ended by `&`: it runs in the background, in a subshell.
    pub(super) background: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Conn {
    And,
    Or,
}

/// `[!] command [| command]...`: one command runs in the current shell; two or more run at
/// once, each in a subshell, connected by pipes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    pub(super) negate: bool,
    pub(super) commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Command {
    Simple(Simple),
    Compound(Compound, Vec<Redir>),
    /// `name() command`: the body is shared with the functions defined from it.
    FuncDef {
        name: String,
        body: Arc<Command>,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Simple {
    pub(super) assigns: Vec<(String, Word)>,
    pub(super) words: Vec<Word>,
    pub(super) redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Compound {
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
    /// `{ list; }`.
    Group(List),
    /// `( list )`.
    Subshell(List),
    /// `case word in pattern|pattern) list ;; ... esac`.
    Case {
        word: Word,
        arms: Vec<CaseArm>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct CaseArm {
    pub(super) patterns: Vec<Word>,
    pub(super) body: List,
}

/// A redirection of file descriptor `fd` (0 for input ones).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Redir {
    pub(super) fd: u8,
    pub(super) target: RedirTarget,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum RedirTarget {
    /// `> word`, `>> word`.
    File { word: Word, append: bool },
    /// `>&N`.
    Dup(u8),
    /// `< word`.
    Input(Word),
    /// `<< DELIM` / `<<- DELIM`: the body, its parts quoted (expanded when the delimiter was
    /// not quoted, literal otherwise).
    HereDoc(Word),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Word {
    pub(super) parts: Vec<Part>,
    pub(super) at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Lit {
        text: String,
        quoted: bool,
    },
    Param {
        param: Param,
        quoted: bool,
        op: ParamOp,
    },
    /// `$(list)` or `` `list` ``: the list's output, trailing newlines removed.
    Subst {
        body: List,
        quoted: bool,
    },
    /// `$((expression))`: the expression's text once expanded, evaluated.
    Arith {
        expr: Word,
        quoted: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Name(String),
    Positional(usize),
    Status,
    Count,
    All {
        star: bool,
    },
    Pid,
    /// `$!`: the process ID of the last background job.
    LastJob,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ParamOp {
    Plain,
    Length,
    /// `-` (`:-` when `colon`): use `word` when unset (or empty).
    Default {
        colon: bool,
        word: Word,
    },
    /// `=` / `:=`: as Default, and assign it.
    Assign {
        colon: bool,
        word: Word,
    },
    /// `+` / `:+`: use `word` when set (and not empty).
    Alt {
        colon: bool,
        word: Word,
    },
    /// `?` / `:?`: fail with `word` (or a standard message) when unset (or empty).
    Error {
        colon: bool,
        word: Word,
    },
    /// `#` / `##` (`longest`): the value without the shortest (longest) prefix matching the
    /// pattern.
    TrimPrefix {
        longest: bool,
        pattern: Word,
    },
    /// `%` / `%%`: the value without the shortest (longest) matching suffix.
    TrimSuffix {
        longest: bool,
        pattern: Word,
    },
}

impl Word {
    /// A word given literally (argv of an exec): no expansion, no field splitting.
    pub(super) fn literal_arg(s: &str) -> Word {
        Word {
            parts: vec![Part::Lit {
                text: s.to_string(),
                quoted: true,
            }],
            at: 0,
        }
    }

    /// The word as a reserved word: one unquoted literal.
    pub(super) fn keyword(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit {
                text,
                quoted: false,
            }] => Some(text.as_str()),
            _ => None,
        }
    }

    /// The word's text when it has no expansions.
    pub(super) fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { .. } | Part::Subst { .. } | Part::Arith { .. } => return None,
            }
        }
        Some(s)
    }

    pub(super) fn describe(&self) -> String {
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
                    Param::LastJob => "$!".into(),
                }),
                Part::Subst { .. } => s.push_str("$(...)"),
                Part::Arith { .. } => s.push_str("$((...))"),
            }
        }
        s
    }
}

pub(super) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=value` as an assignment: the name and the value word.
pub(super) fn split_assignment(w: &Word) -> Option<(String, Word)> {
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
