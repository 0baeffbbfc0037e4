//! The lexer: script source to tokens (words with their quoting and `$` expansions, operators,
//! redirections), rejecting constructs outside the subset where it first sees them.

use super::ast::{Param, ParamOp, Part, Word};
use super::{unexpected, unsupported, ParseError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Word(Word),
    Semi,
    Newline,
    AndIf,
    OrIf,
    Redir { fd: u8, op: RedirOp },
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RedirOp {
    Out,
    Append,
    Dup,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

pub(super) fn describe(t: &Tok) -> String {
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

pub(super) struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
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

    pub(super) fn tokens(mut self) -> Result<Vec<Token>, ParseError> {
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
