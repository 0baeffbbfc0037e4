//! The parser: tokens to the syntax tree (lists and background jobs, pipelines, `if`,
//! `while`/`until`, `for`, `case`, brace groups, subshells, function definitions, simple
//! commands and their redirections), rejecting builtins the subset lacks.

use std::sync::Arc;

use super::ast::{split_assignment, valid_name};
use super::ast::{
    AndOr, CaseArm, Command, Compound, Conn, List, Pipeline, Redir, RedirTarget, Simple, Word,
};
use super::lexer::{describe, Lexed, RedirOp, Tok, Token};
use super::{unexpected, unsupported, ParseError, MAX_DEPTH};

/// Shell builtins (and a few utilities ash runs in-process) that the subset does not model; a
/// script naming one as a command is rejected when parsed instead of failing at run time.
const UNSUPPORTED_BUILTINS: &[&str] = &[
    "alias", "unalias", "umask", "ulimit", "getopts", "command", "type", "hash", "times", "jobs",
    "fg", "bg", "declare", "typeset", "pushd", "popd",
];

/// Special builtins of ash: no function may take their names.
const SPECIAL_BUILTIN_NAMES: &[&str] = &[
    ".", ":", "break", "continue", "eval", "exec", "exit", "export", "local", "readonly", "return",
    "set", "shift", "source", "times", "trap", "unset",
];

pub(super) struct Parser {
    toks: Vec<Token>,
    heredocs: Vec<Word>,
    i: usize,
    depth: usize,
    eof: Token,
}

impl Parser {
    pub(super) fn new(lexed: Lexed, len: usize) -> Self {
        Parser {
            toks: lexed.tokens,
            heredocs: lexed.heredocs,
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

    pub(super) fn script(&mut self) -> Result<List, ParseError> {
        let list = self.list(&[])?;
        if !matches!(self.peek().tok, Tok::Eof) {
            return Err(self.unexpected_here("end of file"));
        }
        Ok(list)
    }

    /// and-or lists separated by `;`, `&` or newlines, up to a reserved word of `stops`, a `)`
    /// or a `;;` (not consumed).
    fn list(&mut self, stops: &[&str]) -> Result<List, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if matches!(self.peek().tok, Tok::Eof | Tok::RParen | Tok::DSemi) {
                break;
            }
            if self.keyword().is_some_and(|k| stops.contains(&k)) {
                break;
            }
            let mut item = self.and_or()?;
            match self.peek().tok {
                Tok::Semi | Tok::Newline => self.advance(),
                Tok::Amp => {
                    self.advance();
                    item.background = true;
                }
                _ => {
                    items.push(item);
                    break;
                }
            }
            items.push(item);
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
        Ok(AndOr {
            first,
            rest,
            background: false,
        })
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut negate = false;
        while self.keyword() == Some("!") {
            negate = !negate;
            self.advance();
        }
        let mut commands = vec![self.command()?];
        while matches!(self.peek().tok, Tok::Pipe) {
            self.advance();
            self.skip_newlines();
            commands.push(self.command()?);
        }
        Ok(Pipeline { negate, commands })
    }

    /// One more level of compound commands; an error past the limit.
    fn deeper(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::TooDeep {
                limit: MAX_DEPTH,
                at,
            });
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let at = self.peek().at;
        let kw = self.keyword().map(str::to_owned);
        let compound = match kw.as_deref() {
            Some(k @ ("if" | "while" | "until" | "for" | "case" | "{")) => {
                self.deeper(at)?;
                let c = match k {
                    "if" => self.if_clause()?,
                    "for" => self.for_clause()?,
                    "case" => self.case_clause()?,
                    "{" => {
                        self.advance();
                        let body = self.nonempty_list(&["}"])?;
                        self.expect("}")?;
                        Compound::Group(body)
                    }
                    _ => self.loop_clause(k == "until")?,
                };
                self.depth -= 1;
                c
            }
            Some("function") => return self.function(at, true),
            Some(k @ ("then" | "else" | "elif" | "fi" | "do" | "done" | "esac" | "}" | "in")) => {
                return Err(unexpected(k, at))
            }
            _ => match self.peek().tok {
                Tok::LParen => {
                    self.deeper(at)?;
                    self.advance();
                    let body = self.nonempty_list(&[])?;
                    if !matches!(self.peek().tok, Tok::RParen) {
                        return Err(self.unexpected_here("\")\""));
                    }
                    self.advance();
                    self.depth -= 1;
                    Compound::Subshell(body)
                }
                Tok::Word(_)
                    if matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::LParen)) =>
                {
                    return self.function(at, false);
                }
                Tok::Word(_) | Tok::Redir { .. } => return self.simple().map(Command::Simple),
                _ => return Err(self.unexpected_here("a command")),
            },
        };
        let mut redirs = Vec::new();
        while matches!(self.peek().tok, Tok::Redir { .. }) {
            redirs.push(self.redirection()?);
        }
        Ok(Command::Compound(compound, redirs))
    }

    /// `name() command`, or (`keyword`) `function name [()] command`.
    fn function(&mut self, at: usize, keyword: bool) -> Result<Command, ParseError> {
        if keyword {
            self.advance();
        }
        let name_at = self.peek().at;
        let name = match &self.peek().tok {
            Tok::Word(w) => w.literal().unwrap_or_else(|| w.describe()),
            _ => return Err(self.unexpected_here("a function name")),
        };
        self.advance();
        let parens = matches!(self.peek().tok, Tok::LParen);
        if parens {
            self.advance();
            if !matches!(self.peek().tok, Tok::RParen) {
                return Err(self.unexpected_here("\")\""));
            }
            self.advance();
        } else if !keyword {
            return Err(self.unexpected_here("\"(\""));
        }
        if !valid_name(&name) || SPECIAL_BUILTIN_NAMES.contains(&name.as_str()) {
            return Err(ParseError::BadFunctionName { name, at: name_at });
        }
        self.skip_newlines();
        if !parens
            && !matches!(
                self.keyword(),
                Some("{" | "if" | "case" | "while" | "until" | "for")
            )
        {
            return Err(self.unexpected_here("a compound command"));
        }
        self.deeper(at)?;
        let body = self.command()?;
        self.depth -= 1;
        Ok(Command::FuncDef {
            name,
            body: Arc::new(body),
        })
    }

    fn case_clause(&mut self) -> Result<Compound, ParseError> {
        self.advance();
        let word = match &self.peek().tok {
            Tok::Word(w) => w.clone(),
            _ => return Err(self.unexpected_here("a word")),
        };
        self.advance();
        self.skip_newlines();
        self.expect("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.keyword() == Some("esac") {
                self.advance();
                break;
            }
            if matches!(self.peek().tok, Tok::LParen) {
                self.advance();
            }
            let mut patterns = Vec::new();
            loop {
                match &self.peek().tok {
                    Tok::Word(w) => patterns.push(w.clone()),
                    _ => return Err(self.unexpected_here("a pattern")),
                }
                self.advance();
                if !matches!(self.peek().tok, Tok::Pipe) {
                    break;
                }
                self.advance();
            }
            if !matches!(self.peek().tok, Tok::RParen) {
                return Err(self.unexpected_here("\")\""));
            }
            self.advance();
            let body = self.list(&["esac"])?;
            arms.push(CaseArm { patterns, body });
            match self.peek().tok {
                Tok::DSemi => self.advance(),
                _ if self.keyword() == Some("esac") => {
                    self.advance();
                    break;
                }
                _ => return Err(self.unexpected_here("\";;\"")),
            }
        }
        Ok(Compound::Case { word, arms })
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
            RedirOp::In => RedirTarget::Input(word),
            RedirOp::HereDoc { index, .. } => RedirTarget::HereDoc(
                self.heredocs
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| Word::literal_arg("")),
            ),
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
        // Inside `[[ ... ]]`, `&&` and `||` are arguments (as ash reads them).
        let mut double_brackets = false;
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
                    match w.keyword() {
                        Some("[[") => double_brackets = true,
                        Some("]]") => double_brackets = false,
                        _ => {}
                    }
                    s.words.push(w);
                }
                Tok::AndIf | Tok::OrIf if double_brackets => {
                    let op = if matches!(self.peek().tok, Tok::AndIf) {
                        "&&"
                    } else {
                        "||"
                    };
                    let at = self.peek().at;
                    self.advance();
                    s.words.push(Word {
                        at,
                        ..Word::literal_arg(op)
                    });
                }
                Tok::Redir { .. } => s.redirs.push(self.redirection()?),
                _ => break,
            }
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
                        let lit = w.literal();
                        if lit.as_deref() == Some("--") {
                            break;
                        }
                        let ok = lit.is_some_and(|a| set_option_ok(&a));
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

/// An option argument of `set` the subset models: `-e`, `-x`, `-f` and their `+` forms.
pub(super) fn set_option_ok(a: &str) -> bool {
    (a.starts_with('-') || a.starts_with('+'))
        && a.len() > 1
        && a.chars().skip(1).all(|c| matches!(c, 'e' | 'x' | 'f'))
}
