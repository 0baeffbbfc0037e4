//! The parser: tokens to the syntax tree (lists, pipelines, `if`, `while`/`until`, `for`,
//! simple commands and their redirections), rejecting builtins and expansions the subset lacks.

use super::ast::{split_assignment, valid_name};
use super::ast::{
    AndOr, Command, Compound, Conn, List, Part, Pipeline, Redir, RedirTarget, Simple, Word,
};
use super::lexer::{describe, Lexed, RedirOp, Tok, Token};
use super::{unexpected, unsupported, ParseError, MAX_DEPTH};

/// Shell builtins (and a few utilities ash runs in-process) that the subset does not model; a
/// script naming one as a command is rejected when parsed instead of failing at run time.
const UNSUPPORTED_BUILTINS: &[&str] = &[
    "trap", "eval", "exec", "source", ".", "cd", "wait", "shift", "local", "return", "alias",
    "unalias", "umask", "ulimit", "getopts", "command", "type", "hash", "times", "jobs", "fg",
    "bg", "let", "declare", "typeset", "pushd", "popd",
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
        let mut commands = vec![self.command()?];
        while matches!(self.peek().tok, Tok::Pipe) {
            self.advance();
            self.skip_newlines();
            commands.push(self.command()?);
        }
        Ok(Pipeline { negate, commands })
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

pub(super) fn set_option_ok(a: &str) -> bool {
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
