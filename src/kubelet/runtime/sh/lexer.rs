//! The lexer: script source to tokens (words with their quoting, `$` expansions, arithmetic
//! expansions and command substitutions, operators, redirections, here-document bodies),
//! rejecting constructs outside the subset where it first sees them.

use std::rc::Rc;

use super::ast::{List, Param, ParamOp, Part, Word};
use super::parser::Parser;
use super::{unexpected, unsupported, ParseError, MAX_SUBST_DEPTH};

/// Nesting limit of `${...}` and `$((...))` inside one another.
const MAX_EXPANSION_NESTING: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Word(Word),
    Semi,
    Newline,
    AndIf,
    OrIf,
    Pipe,
    /// `&`: the and-or list before it runs in the background.
    Amp,
    LParen,
    RParen,
    /// `;;`, ending a `case` arm.
    DSemi,
    Redir {
        fd: u8,
        op: RedirOp,
    },
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RedirOp {
    Out,
    Append,
    Dup,
    In,
    /// `<<` or `<<-`; the body is `heredocs[index]` of the [`Lexed`] source.
    HereDoc {
        index: usize,
        strip: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

/// A lexed source: its tokens and the bodies of its here-documents.
pub(super) struct Lexed {
    pub(super) tokens: Vec<Token>,
    pub(super) heredocs: Vec<Word>,
}

pub(super) fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.describe(),
        Tok::Semi => ";".into(),
        Tok::Newline => "newline".into(),
        Tok::AndIf => "&&".into(),
        Tok::OrIf => "||".into(),
        Tok::Pipe => "|".into(),
        Tok::Amp => "&".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::DSemi => ";;".into(),
        Tok::Redir { fd, op } => {
            let fd = if matches!(*fd, 0 | 1) {
                String::new()
            } else {
                fd.to_string()
            };
            let op = match op {
                RedirOp::Out => ">",
                RedirOp::Append => ">>",
                RedirOp::Dup => ">&",
                RedirOp::In => "<",
                RedirOp::HereDoc { strip: false, .. } => "<<",
                RedirOp::HereDoc { strip: true, .. } => "<<-",
            };
            format!("{fd}{op}")
        }
        Tok::Eof => "end of file".into(),
    }
}

/// Parse `src` as a list: a whole script, the text of a backquoted command substitution, or a
/// line typed so far (`partial`: an unfinished here-document is then an error, as more lines
/// may finish it). `depth` counts the command substitutions it is nested in.
pub(super) fn parse_list(src: &str, depth: usize, partial: bool) -> Result<List, ParseError> {
    let mut lexer = Lexer::new(src);
    lexer.depth = depth;
    lexer.partial = partial;
    let lexed = lexer.tokens()?;
    Parser::new(lexed, src.len()).script()
}

/// Where the lexer is in a `case` command (for a `)` inside `$(...)`: a pattern's end, not the
/// substitution's).
#[derive(Debug, Clone, Copy, PartialEq)]
enum CaseLex {
    /// After `case`: the word, then `in`.
    Subject,
    In,
    /// Reading patterns, up to `)`.
    Patterns,
    /// Reading an arm's commands, up to `;;` or `esac`.
    Body,
}

/// A here-document waiting for its body (after the next newline).
struct PendingHereDoc {
    delim: String,
    quoted: bool,
    strip: bool,
    index: usize,
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    chars: Rc<Vec<(usize, char)>>,
    i: usize,
    /// Command substitutions this source is nested in.
    depth: usize,
    /// Inside `$(`: an unmatched `)` ends the tokens.
    in_subst: bool,
    partial: bool,
    pending: Vec<PendingHereDoc>,
    heredocs: Vec<Word>,
    /// `${...}` and `$((...))` this source is nested in.
    nest: usize,
    /// `(` not yet closed.
    parens: usize,
    /// The `case` commands being read, innermost last.
    cases: Vec<CaseLex>,
    /// The next word would start a command.
    command_start: bool,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            chars: Rc::new(src.char_indices().collect()),
            i: 0,
            depth: 0,
            in_subst: false,
            partial: false,
            pending: Vec::new(),
            heredocs: Vec::new(),
            nest: 0,
            parens: 0,
            cases: Vec::new(),
            command_start: true,
        }
    }

    /// Follow `case` commands and parentheses as tokens go by.
    fn track(&mut self, tok: &Tok) {
        let top = self.cases.last().copied();
        match tok {
            Tok::Word(w) => {
                let kw = w.keyword();
                match (top, kw) {
                    (Some(CaseLex::Subject), _) => {
                        self.cases.pop();
                        self.cases.push(CaseLex::In);
                    }
                    (Some(CaseLex::In), Some("in")) => {
                        self.cases.pop();
                        self.cases.push(CaseLex::Patterns);
                    }
                    (Some(CaseLex::Patterns), Some("esac")) => {
                        self.cases.pop();
                    }
                    (Some(CaseLex::Body), Some("esac")) if self.command_start => {
                        self.cases.pop();
                    }
                    (_, Some("case")) if self.command_start => self.cases.push(CaseLex::Subject),
                    _ => {}
                }
                self.command_start = matches!(
                    kw,
                    Some(
                        "then"
                            | "do"
                            | "else"
                            | "elif"
                            | "if"
                            | "while"
                            | "until"
                            | "{"
                            | "}"
                            | "!"
                            | "esac"
                            | "fi"
                            | "done"
                    )
                );
            }
            Tok::RParen => {
                if top == Some(CaseLex::Patterns) {
                    self.cases.pop();
                    self.cases.push(CaseLex::Body);
                } else {
                    self.parens = self.parens.saturating_sub(1);
                }
                self.command_start = true;
            }
            Tok::LParen => {
                if top != Some(CaseLex::Patterns) {
                    self.parens += 1;
                }
                self.command_start = true;
            }
            Tok::DSemi => {
                if top == Some(CaseLex::Body) {
                    self.cases.pop();
                    self.cases.push(CaseLex::Patterns);
                }
                self.command_start = true;
            }
            Tok::Redir { .. } => {}
            _ => self.command_start = true,
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

    pub(super) fn tokens(&mut self) -> Result<Lexed, ParseError> {
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
                if self.in_subst {
                    return Err(ParseError::UnexpectedEnd {
                        expected: "\")\"".into(),
                    });
                }
                self.finish_heredocs_at_end()?;
                out.push(Token { tok: Tok::Eof, at });
                return Ok(Lexed {
                    tokens: out,
                    heredocs: std::mem::take(&mut self.heredocs),
                });
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
                    self.track(&Tok::Newline);
                    out.push(Token {
                        tok: Tok::Newline,
                        at,
                    });
                    self.read_heredoc_bodies()?;
                    continue;
                }
                ';' => {
                    if self.peek(1) == Some(';') {
                        self.i += 2;
                        Tok::DSemi
                    } else {
                        self.i += 1;
                        Tok::Semi
                    }
                }
                '&' => match self.peek(1) {
                    Some('&') => {
                        self.i += 2;
                        Tok::AndIf
                    }
                    Some('>') => return Err(unsupported("redirection &>", at)),
                    _ => {
                        self.i += 1;
                        Tok::Amp
                    }
                },
                '|' => {
                    if self.peek(1) == Some('|') {
                        self.i += 2;
                        Tok::OrIf
                    } else {
                        self.i += 1;
                        Tok::Pipe
                    }
                }
                '(' => {
                    self.i += 1;
                    Tok::LParen
                }
                ')' => {
                    let ends_subst = self.in_subst
                        && self.parens == 0
                        && self.cases.last() != Some(&CaseLex::Patterns);
                    if ends_subst {
                        if !self.pending.is_empty() {
                            return Err(unsupported(
                                "here-document inside $(...) without a newline before )",
                                at,
                            ));
                        }
                        self.i += 1;
                        out.push(Token { tok: Tok::Eof, at });
                        return Ok(Lexed {
                            tokens: out,
                            heredocs: std::mem::take(&mut self.heredocs),
                        });
                    }
                    self.i += 1;
                    Tok::RParen
                }
                '<' => {
                    self.input_redirect(at, &mut out)?;
                    continue;
                }
                '>' => self.redirect(1),
                _ => match self.word()? {
                    WordOr::Word(t) => t,
                    WordOr::InputRedirect => {
                        self.input_redirect(self.pos(), &mut out)?;
                        continue;
                    }
                },
            };
            self.track(&tok);
            out.push(Token { tok, at });
        }
    }

    /// At a `<` (of fd 0): `<`, or `<<`/`<<-` with its delimiter word.
    fn input_redirect(&mut self, at: usize, out: &mut Vec<Token>) -> Result<(), ParseError> {
        match self.peek(1) {
            Some('<') => {
                let strip = self.peek(2) == Some('-');
                self.i += if strip { 3 } else { 2 };
                self.heredoc(at, strip, out)
            }
            Some('&') => Err(unsupported("redirection <&", at)),
            Some('>') => Err(unsupported("redirection <>", at)),
            _ => {
                self.i += 1;
                out.push(Token {
                    tok: Tok::Redir {
                        fd: 0,
                        op: RedirOp::In,
                    },
                    at,
                });
                Ok(())
            }
        }
    }

    /// After `<<` / `<<-`: the operator and its delimiter word; the body comes after the next
    /// newline.
    fn heredoc(&mut self, at: usize, strip: bool, out: &mut Vec<Token>) -> Result<(), ParseError> {
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.i += 1;
        }
        let word_at = self.pos();
        let word = match self.peek(0) {
            None => {
                return Err(ParseError::UnexpectedEnd {
                    expected: "a here-document delimiter".into(),
                })
            }
            Some('\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>') => {
                let t = if self.peek(0) == Some('\n') {
                    "newline".to_string()
                } else {
                    self.peek(0).map(String::from).unwrap_or_default()
                };
                return Err(unexpected(t, word_at));
            }
            Some(_) => match self.word()? {
                WordOr::Word(Tok::Word(w)) => w,
                _ => return Err(unexpected("<", self.pos())),
            },
        };
        let mut delim = String::new();
        let mut quoted = false;
        for p in &word.parts {
            match p {
                Part::Lit { text, quoted: q } => {
                    delim.push_str(text);
                    quoted |= *q;
                }
                _ => {
                    return Err(unsupported(
                        "an expansion in a here-document delimiter",
                        word_at,
                    ))
                }
            }
        }
        let index = self.heredocs.len();
        self.heredocs.push(Word {
            parts: Vec::new(),
            at: word_at,
        });
        self.pending.push(PendingHereDoc {
            delim,
            quoted,
            strip,
            index,
        });
        out.push(Token {
            tok: Tok::Redir {
                fd: 0,
                op: RedirOp::HereDoc { index, strip },
            },
            at,
        });
        out.push(Token {
            tok: Tok::Word(word),
            at: word_at,
        });
        Ok(())
    }

    /// After a newline: the bodies of the here-documents of the line, in order.
    fn read_heredoc_bodies(&mut self) -> Result<(), ParseError> {
        for doc in std::mem::take(&mut self.pending) {
            let start = self.pos();
            let mut body = String::new();
            let mut ended = false;
            while self.peek(0).is_some() {
                let mut line = String::new();
                while let Some(c) = self.peek(0) {
                    self.i += 1;
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                let line = if doc.strip {
                    line.trim_start_matches('\t').to_string()
                } else {
                    line
                };
                if line == doc.delim {
                    ended = true;
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if !ended && self.partial {
                return Err(ParseError::UnexpectedEnd {
                    expected: format!("\"{}\"", doc.delim),
                });
            }
            let word = if doc.quoted {
                Word {
                    parts: vec![Part::Lit {
                        text: body,
                        quoted: true,
                    }],
                    at: start,
                }
            } else {
                let mut sub = Lexer::new(&body);
                sub.depth = self.depth;
                let mut parts = Vec::new();
                sub.quoted(&mut parts, None)
                    .map_err(|e| shift_error(e, start))?;
                Word { parts, at: start }
            };
            if let Some(slot) = self.heredocs.get_mut(doc.index) {
                *slot = word;
            }
        }
        Ok(())
    }

    /// At the end of the source with here-documents still waiting for their bodies: they are
    /// empty, or, for a partial source, more is needed.
    fn finish_heredocs_at_end(&mut self) -> Result<(), ParseError> {
        if let Some(doc) = self.pending.first() {
            if self.partial {
                return Err(ParseError::UnexpectedEnd {
                    expected: format!("\"{}\"", doc.delim),
                });
            }
        }
        for doc in std::mem::take(&mut self.pending) {
            if let Some(slot) = self.heredocs.get_mut(doc.index) {
                slot.parts = vec![Part::Lit {
                    text: String::new(),
                    quoted: true,
                }];
            }
        }
        Ok(())
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

    fn word(&mut self) -> Result<WordOr, ParseError> {
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
                        return match (c, lit.as_str()) {
                            ('<', "0") => Ok(WordOr::InputRedirect),
                            ('>', "1") => Ok(WordOr::Word(self.redirect(1))),
                            ('>', "2") => Ok(WordOr::Word(self.redirect(2))),
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
                '`' => {
                    flush(&mut lit, &mut parts);
                    let p = self.backquote(false, false)?;
                    parts.push(p);
                }
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
        Ok(WordOr::Word(Tok::Word(Word { parts, at: start })))
    }

    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<(), ParseError> {
        self.quoted(parts, Some('"'))
    }

    /// Quoted text: up to `end` (after the opening `"`), or to the end of the source (a
    /// here-document body). Backslash escapes only `$`, `` ` ``, `\`, a newline and (inside
    /// double quotes) `"`; `$` expansions and command substitutions are parts of their own.
    fn quoted(&mut self, parts: &mut Vec<Part>, end: Option<char>) -> Result<(), ParseError> {
        let at = self.pos();
        if end.is_some() {
            self.i += 1;
        }
        let mut buf = String::new();
        let mut produced = false;
        loop {
            let Some(c) = self.peek(0) else {
                if let Some(quote) = end {
                    return Err(ParseError::UnterminatedQuote { quote, at });
                }
                break;
            };
            match c {
                c if Some(c) == end => {
                    self.i += 1;
                    break;
                }
                '\\' => match self.peek(1) {
                    Some(n @ ('$' | '`' | '\\')) => {
                        buf.push(n);
                        self.i += 2;
                    }
                    Some('"') if end.is_some() => {
                        buf.push('"');
                        self.i += 2;
                    }
                    Some('\n') => self.i += 2,
                    _ => {
                        buf.push('\\');
                        self.i += 1;
                    }
                },
                '`' | '$' => {
                    let part = if c == '`' {
                        Some(self.backquote(end.is_some(), true)?)
                    } else {
                        self.dollar(true)?
                    };
                    match part {
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
                    }
                }
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

    /// At a `` ` ``: the command substitution up to the closing one. Inside it a backslash
    /// escapes `$`, `` ` ``, `\` (and `"` when the backquotes are inside double quotes).
    fn backquote(&mut self, in_dq: bool, quoted: bool) -> Result<Part, ParseError> {
        let at = self.pos();
        self.i += 1;
        let inner_start = self.pos();
        let mut inner = String::new();
        loop {
            match self.peek(0) {
                None => return Err(ParseError::UnterminatedQuote { quote: '`', at }),
                Some('`') => {
                    self.i += 1;
                    break;
                }
                Some('\\') => match self.peek(1) {
                    Some(c @ ('$' | '`' | '\\')) => {
                        inner.push(c);
                        self.i += 2;
                    }
                    Some('"') if in_dq => {
                        inner.push('"');
                        self.i += 2;
                    }
                    _ => {
                        inner.push('\\');
                        self.i += 1;
                    }
                },
                Some(c) => {
                    inner.push(c);
                    self.i += 1;
                }
            }
        }
        if self.depth >= MAX_SUBST_DEPTH {
            return Err(ParseError::TooDeep {
                limit: MAX_SUBST_DEPTH,
                at,
            });
        }
        let body = parse_list(&inner, self.depth + 1, self.partial)
            .map_err(|e| shift_error(e, inner_start))?;
        Ok(Part::Subst { body, quoted })
    }

    /// At `$(` (not `$((`): the command substitution up to the matching `)`.
    fn command_subst(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
        if self.depth >= MAX_SUBST_DEPTH {
            return Err(ParseError::TooDeep {
                limit: MAX_SUBST_DEPTH,
                at,
            });
        }
        let mut sub = Lexer {
            src: self.src,
            chars: Rc::clone(&self.chars),
            i: self.i + 2,
            depth: self.depth + 1,
            in_subst: true,
            partial: self.partial,
            pending: Vec::new(),
            heredocs: Vec::new(),
            nest: self.nest,
            parens: 0,
            cases: Vec::new(),
            command_start: true,
        };
        // The sub-lexer stops just past the `)`; its end-of-file token stands where the `)` is.
        let lexed = sub.tokens()?;
        self.i = sub.i;
        let end = lexed.tokens.last().map(|t| t.at).unwrap_or(self.src.len());
        let body = Parser::new(lexed, end).script()?;
        Ok(Part::Subst { body, quoted })
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
            Some('(') => {
                if self.peek(2) == Some('(') {
                    self.arith(at, quoted).map(Some)
                } else {
                    self.command_subst(at, quoted).map(Some)
                }
            }
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
            Some('!') => {
                self.i += 2;
                simple(Param::LastJob)
            }
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

    /// Enter one more `${...}` or `$((...))`; an error past the limit.
    fn nest_in(&mut self, at: usize) -> Result<(), ParseError> {
        if self.nest >= MAX_EXPANSION_NESTING {
            return Err(ParseError::TooDeep {
                limit: MAX_EXPANSION_NESTING,
                at,
            });
        }
        self.nest += 1;
        Ok(())
    }

    /// After `${`.
    fn braced(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
        self.nest_in(at)?;
        let part = self.braced_inner(at, quoted);
        self.nest -= 1;
        part
    }

    fn braced_inner(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
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
            Some(c @ ('?' | '#' | '@' | '*' | '$' | '!')) => {
                self.i += 1;
                match c {
                    '?' => Param::Status,
                    '#' => Param::Count,
                    '@' => Param::All { star: false },
                    '*' => Param::All { star: true },
                    '!' => Param::LastJob,
                    _ => Param::Pid,
                }
            }
            _ => return Err(self.bad_substitution(at)),
        };
        let kind = match (self.peek(0), self.peek(1)) {
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
            (Some(':'), Some(c @ ('-' | '=' | '+' | '?'))) => {
                self.i += 2;
                (true, c)
            }
            (Some(c @ ('-' | '=' | '+' | '?')), _) => {
                self.i += 1;
                (false, c)
            }
            (Some(c @ ('#' | '%')), next) => {
                let longest = next == Some(c);
                self.i += if longest { 2 } else { 1 };
                (longest, c)
            }
            (Some(c @ ('/' | ':' | '^' | ',')), _) => {
                return Err(unsupported(
                    format!("parameter expansion ${{VAR{c}...}}"),
                    at,
                ))
            }
            _ => return Err(self.bad_substitution(at)),
        };
        let word = self.param_word(at)?;
        let (flag, c) = kind;
        let colon = flag;
        let op = match c {
            '-' => ParamOp::Default { colon, word },
            '+' => ParamOp::Alt { colon, word },
            '?' => ParamOp::Error { colon, word },
            '#' => ParamOp::TrimPrefix {
                longest: flag,
                pattern: word,
            },
            '%' => ParamOp::TrimSuffix {
                longest: flag,
                pattern: word,
            },
            _ => {
                if !matches!(param, Param::Name(_)) {
                    return Err(self.bad_substitution(at));
                }
                ParamOp::Assign { colon, word }
            }
        };
        Ok(Part::Param { param, quoted, op })
    }

    /// The word of `${VAR-word}` (and of the other operators), up to the closing `}`: quotes,
    /// escapes and expansions as in an unquoted word; its bare characters are unquoted (a
    /// pattern's `*` matches even inside double quotes).
    fn param_word(&mut self, at: usize) -> Result<Word, ParseError> {
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
        loop {
            match self.peek(0) {
                None => return Err(self.bad_substitution(at)),
                Some('}') => {
                    self.i += 1;
                    break;
                }
                Some('\\') => {
                    let Some(c) = self.peek(1) else {
                        return Err(self.bad_substitution(at));
                    };
                    flush(&mut lit, &mut parts);
                    self.i += 2;
                    if c != '\n' {
                        parts.push(Part::Lit {
                            text: c.to_string(),
                            quoted: true,
                        });
                    }
                }
                Some('\'') => {
                    flush(&mut lit, &mut parts);
                    let q = self.pos();
                    self.i += 1;
                    let mut text = String::new();
                    loop {
                        match self.peek(0) {
                            None => {
                                return Err(ParseError::UnterminatedQuote { quote: '\'', at: q })
                            }
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
                Some('"') => {
                    flush(&mut lit, &mut parts);
                    self.double_quoted(&mut parts)?;
                }
                Some('`') => {
                    flush(&mut lit, &mut parts);
                    let p = self.backquote(false, true)?;
                    parts.push(p);
                }
                Some('$') => match self.dollar(true)? {
                    Some(p) => {
                        flush(&mut lit, &mut parts);
                        parts.push(p);
                    }
                    None => lit.push('$'),
                },
                Some(c) => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(Word { parts, at: start })
    }

    /// At `$((`: the arithmetic expansion up to the matching `))`. Its text is expanded as in
    /// double quotes (parameters, command substitutions), then evaluated when run.
    fn arith(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
        self.nest_in(at)?;
        let part = self.arith_inner(at, quoted);
        self.nest -= 1;
        part
    }

    fn arith_inner(&mut self, at: usize, quoted: bool) -> Result<Part, ParseError> {
        let start = self.i + 3;
        let mut j = start;
        let mut depth = 0usize;
        let end = loop {
            match self.chars.get(j).map(|&(_, c)| c) {
                None => {
                    return Err(ParseError::UnexpectedEnd {
                        expected: "\"))\"".into(),
                    })
                }
                Some('(') => depth += 1,
                Some(')') if depth > 0 => depth -= 1,
                Some(')') => {
                    if self.chars.get(j + 1).map(|&(_, c)| c) == Some(')') {
                        break j;
                    }
                    return Err(unsupported(
                        "$(( not closed by )) (a command substitution starting with a subshell needs a space: $( (",
                        at,
                    ));
                }
                Some(_) => {}
            }
            j += 1;
        };
        let inner: String = self
            .chars
            .get(start..end)
            .unwrap_or(&[])
            .iter()
            .map(|&(_, c)| c)
            .collect();
        let inner_at = self
            .chars
            .get(start)
            .map(|&(p, _)| p)
            .unwrap_or(self.src.len());
        self.i = end + 2;
        let mut sub = Lexer::new(&inner);
        sub.depth = self.depth;
        sub.nest = self.nest;
        sub.partial = self.partial;
        let mut parts = Vec::new();
        sub.quoted(&mut parts, None)
            .map_err(|e| shift_error(e, inner_at))?;
        Ok(Part::Arith {
            expr: Word {
                parts,
                at: inner_at,
            },
            quoted,
        })
    }
}

/// What [`Lexer::word`] found: a token, or a `0<` input redirection to lex next.
enum WordOr {
    Word(Tok),
    InputRedirect,
}

/// A parse error of a nested source (a backquoted command, a here-document body) with its
/// offsets moved to where that source starts in the script.
fn shift_error(e: ParseError, base: usize) -> ParseError {
    match e {
        ParseError::Unsupported { construct, at } => ParseError::Unsupported {
            construct,
            at: at.saturating_add(base),
        },
        ParseError::UnterminatedQuote { quote, at } => ParseError::UnterminatedQuote {
            quote,
            at: at.saturating_add(base),
        },
        ParseError::UnexpectedToken { token, at } => ParseError::UnexpectedToken {
            token,
            at: at.saturating_add(base),
        },
        ParseError::BadSubstitution { text, at } => ParseError::BadSubstitution {
            text,
            at: at.saturating_add(base),
        },
        ParseError::TooDeep { limit, at } => ParseError::TooDeep {
            limit,
            at: at.saturating_add(base),
        },
        ParseError::BadFunctionName { name, at } => ParseError::BadFunctionName {
            name,
            at: at.saturating_add(base),
        },
        other => other,
    }
}
