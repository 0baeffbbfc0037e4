//! `awk [-F SEP] [-v VAR=VALUE]... [-f FILE | 'PROGRAM'] [FILE | VAR=VALUE]...`: a POSIX awk
//! as busybox runs it, without `getline` and output pipes.
//!
//! Programs are `BEGIN`/`END` blocks and pattern-action rules (expressions, `/regex/`, ranges
//! `p1, p2`); statements `print` and `printf` (to standard output, or `> FILE`, `>> FILE`,
//! `/dev/stderr`), expressions and assignments, `if`/`else`, `while`, `do`/`while`, `for`
//! (both forms), `break`, `continue`, `next`, `exit`, `delete`, `return` and blocks;
//! user-defined functions; numbers and strings with awk's comparison rules, fields (`$0`,
//! `$N`, assignable, `NF`), associative arrays (`in`, `SUBSEP`), regular expressions (`~`,
//! `!~`), the special variables (`NR NF FNR FS OFS ORS RS FILENAME SUBSEP RSTART RLENGTH
//! CONVFMT OFMT ENVIRON ARGC ARGV`) and the built-in functions `length substr index split sub
//! gsub match sprintf tolower toupper int sqrt exp log sin cos atan2 rand srand close fflush`.
//!
//! The interpreter runs record by record; for one record (or one `BEGIN`/`END` block) a program
//! runs at most [`MAX_STEPS`] steps (a statement or an expression), so that a loop without end
//! stops (status 1) rather than hold the script: nothing else of a script can run while one
//! record is processed.

use std::collections::HashMap;

use regex::Regex;

use super::super::interp::{Fds, Interp};
use super::super::io::{Source, MAX_BUFFER};
use super::files::{Input, OpenStyle};

/// Steps a program may take for one record (statements and expressions evaluated).
const MAX_STEPS: u64 = 5_000_000;
/// Nesting limit of expressions and statements when parsed, and of function calls.
const MAX_NESTING: usize = 100;

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
    /// Input (fields, `-v`, `ARGV`...): a string that compares as a number when it looks like
    /// one.
    StrNum(String),
    Uninit,
}

fn looks_numeric(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c| c == ' ' || c == '\t' || c == '\n');
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut any = i > digits_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let f = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        any |= i > f;
    }
    if !any {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > e {
            i = j;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse().ok()
}

/// The leading number of a string, as awk's string-to-number conversion reads it.
fn str_to_num(s: &str) -> f64 {
    let t = s.trim_start_matches([' ', '\t', '\n']);
    let b = t.as_bytes();
    // Hexadecimal is not taken (POSIX awk); nor are inf/nan words.
    let mut end = 0;
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let ds = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut any = i > ds;
    if any {
        end = i;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let f = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i > f || any {
            any = true;
            end = i;
        }
    }
    if any && matches!(b.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > e {
            end = j;
        }
    }
    if !any {
        return 0.0;
    }
    t.get(..end).and_then(|n| n.parse().ok()).unwrap_or(0.0)
}

/// C's `%.Pg`.
fn fmt_g(v: f64, prec: usize, upper: bool, alt: bool) -> String {
    if v.is_nan() {
        return if upper { "NAN" } else { "nan" }.into();
    }
    if v.is_infinite() {
        let s = if v < 0.0 { "-inf" } else { "inf" };
        return if upper { s.to_uppercase() } else { s.into() };
    }
    let p = prec.max(1);
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut s = if exp < -4 || exp >= p as i32 {
        let mut m = mant.to_string();
        if !alt && m.contains('.') {
            m = m.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        format!(
            "{m}{}{}{:02}",
            if upper { 'E' } else { 'e' },
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let mut f = format!("{:.*}", decimals, v);
        if !alt && f.contains('.') {
            f = f.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        f
    };
    if upper {
        s = s.to_uppercase();
    }
    s
}

fn num_to_str(v: f64, convfmt: &str) -> String {
    if v == v.trunc() && v.abs() < 1e16 {
        if v == 0.0 {
            return "0".into();
        }
        return format!("{}", v as i64);
    }
    sprintf(convfmt, &[Val::Num(v)], convfmt)
}

impl Val {
    fn num(&self) -> f64 {
        match self {
            Val::Num(n) => *n,
            Val::Str(s) | Val::StrNum(s) => str_to_num(s),
            Val::Uninit => 0.0,
        }
    }
    fn str(&self, convfmt: &str) -> String {
        match self {
            Val::Num(n) => num_to_str(*n, convfmt),
            Val::Str(s) | Val::StrNum(s) => s.clone(),
            Val::Uninit => String::new(),
        }
    }
    fn truthy(&self) -> bool {
        match self {
            Val::Num(n) => *n != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::StrNum(s) => match looks_numeric(s) {
                Some(n) => n != 0.0,
                None => !s.is_empty(),
            },
            Val::Uninit => false,
        }
    }
    /// The number it compares as, if it compares as one.
    fn cmp_num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::StrNum(s) => looks_numeric(s),
            Val::Uninit => Some(0.0),
            Val::Str(_) => None,
        }
    }
}

/// awk's `sprintf`: `%c %d %i %o %x %X %u %e %E %f %F %g %G %s %%` with flags, width and
/// precision (`*` takes an argument).
fn sprintf(fmt: &str, args: &[Val], convfmt: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut next = 0;
    let arg = |next: &mut usize| {
        let v = args.get(*next).cloned().unwrap_or(Val::Uninit);
        *next += 1;
        v
    };
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.get(i).filter(|f| "-+ #0".contains(**f)) {
            flags.push(f);
            i += 1;
        }
        let mut width: Option<usize> = None;
        if chars.get(i) == Some(&'*') {
            i += 1;
            let w = arg(&mut next).num() as i64;
            if w < 0 {
                flags.push('-');
            }
            width = Some(w.unsigned_abs() as usize);
        } else {
            let mut w = String::new();
            while let Some(&d) = chars.get(i).filter(|d| d.is_ascii_digit()) {
                w.push(d);
                i += 1;
            }
            width = w.parse().ok().or(width);
        }
        // A width or precision past this is taken as this (no output of gigabytes).
        const MAX_WIDTH: usize = 1 << 20;
        width = width.map(|w| w.min(MAX_WIDTH));
        let mut prec: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                i += 1;
                prec = Some(arg(&mut next).num().max(0.0) as usize);
            } else {
                let mut p = String::new();
                while let Some(&d) = chars.get(i).filter(|d| d.is_ascii_digit()) {
                    p.push(d);
                    i += 1;
                }
                prec = Some(p.parse().unwrap_or(0));
            }
        }
        prec = prec.map(|p| p.min(MAX_WIDTH));
        // Length modifiers mean nothing here.
        while matches!(chars.get(i), Some('h' | 'l' | 'L' | 'q' | 'j' | 'z' | 't')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            out.push('%');
            out.push_str(&flags);
            break;
        };
        i += 1;
        let left = flags.contains('-');
        let zero = flags.contains('0') && !left;
        let plus = flags.contains('+');
        let space = flags.contains(' ');
        let alt = flags.contains('#');
        let pad = |body: String, numeric: bool| -> String {
            let w = width.unwrap_or(0);
            let len = body.chars().count();
            if len >= w {
                return body;
            }
            if left {
                format!("{body}{}", " ".repeat(w - len))
            } else if zero && numeric {
                let (sign, digits) = match body.chars().next() {
                    Some(s @ ('-' | '+' | ' ')) => (s.to_string(), body[1..].to_string()),
                    _ => (String::new(), body.clone()),
                };
                format!("{sign}{}{digits}", "0".repeat(w - len))
            } else {
                format!("{}{body}", " ".repeat(w - len))
            }
        };
        let sign = |neg: bool| {
            if neg {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        match conv {
            '%' => out.push('%'),
            'c' => {
                let v = arg(&mut next);
                let s = match v {
                    Val::Num(n) => char::from_u32(n as u32)
                        .map(String::from)
                        .unwrap_or_default(),
                    other => other
                        .str(convfmt)
                        .chars()
                        .next()
                        .map(String::from)
                        .unwrap_or_default(),
                };
                out.push_str(&pad(s, false));
            }
            's' => {
                let mut s = arg(&mut next).str(convfmt);
                if let Some(p) = prec {
                    s = s.chars().take(p).collect();
                }
                out.push_str(&pad(s, false));
            }
            'd' | 'i' => {
                let v = arg(&mut next).num();
                let n = if v.is_finite() { v.trunc() as i64 } else { 0 };
                let mut digits = n.unsigned_abs().to_string();
                if let Some(p) = prec {
                    if digits.len() < p {
                        digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                    }
                    if p == 0 && n == 0 {
                        digits.clear();
                    }
                }
                let body = format!("{}{digits}", sign(n < 0));
                out.push_str(&pad(body, prec.is_none()));
            }
            'o' | 'x' | 'X' | 'u' => {
                let v = arg(&mut next).num();
                let n = if v.is_finite() {
                    v.trunc() as i64 as u64
                } else {
                    0
                };
                let mut digits = match conv {
                    'o' => format!("{n:o}"),
                    'x' => format!("{n:x}"),
                    'X' => format!("{n:X}"),
                    _ => n.to_string(),
                };
                if let Some(p) = prec {
                    if digits.len() < p {
                        digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                    }
                }
                if alt && n != 0 {
                    digits = match conv {
                        'o' if !digits.starts_with('0') => format!("0{digits}"),
                        'x' => format!("0x{digits}"),
                        'X' => format!("0X{digits}"),
                        _ => digits,
                    };
                }
                out.push_str(&pad(digits, prec.is_none()));
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                let v = arg(&mut next).num();
                let p = prec.unwrap_or(6);
                let body = match conv {
                    'f' | 'F' => {
                        if v.is_finite() {
                            let s = format!("{:.*}", p, v.abs());
                            let s = if alt && p == 0 { format!("{s}.") } else { s };
                            format!("{}{s}", sign(v.is_sign_negative() && v != 0.0 || v < 0.0))
                        } else {
                            fmt_g(v, p, conv == 'F', false)
                        }
                    }
                    'e' | 'E' => {
                        if v.is_finite() {
                            let s = format!("{:.*e}", p, v.abs());
                            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                            let e: i32 = e.parse().unwrap_or(0);
                            let s = format!(
                                "{m}{}{}{:02}",
                                if conv == 'E' { 'E' } else { 'e' },
                                if e < 0 { '-' } else { '+' },
                                e.abs()
                            );
                            format!("{}{s}", sign(v < 0.0))
                        } else {
                            fmt_g(v, p, conv == 'E', false)
                        }
                    }
                    _ => {
                        let s = fmt_g(v.abs(), if p == 0 { 1 } else { p }, conv == 'G', alt);
                        format!("{}{s}", sign(v < 0.0))
                    }
                };
                out.push_str(&pad(body, v.is_finite()));
            }
            other => {
                out.push('%');
                out.push_str(&flags);
                out.push(other);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Regex(String),
    Name(String),
    /// A name directly followed by `(`: a function call.
    FuncName(String),
    Builtin(String),
    Kw(&'static str),
    Op(&'static str),
    Newline,
    Eof,
}

const KEYWORDS: &[&str] = &[
    "BEGIN", "END", "function", "func", "if", "else", "while", "for", "do", "break", "continue",
    "next", "nextfile", "exit", "return", "delete", "in", "print", "printf", "getline",
];

const BUILTINS: &[&str] = &[
    "length", "substr", "index", "split", "sub", "gsub", "match", "sprintf", "tolower", "toupper",
    "int", "sqrt", "exp", "log", "sin", "cos", "atan2", "rand", "srand", "close", "fflush",
    "system",
];

const OPS: &[&str] = &[
    "+=", "-=", "*=", "/=", "%=", "^=", "**=", "**", "==", "<=", ">=", "!=", "++", "--", "&&",
    "||", ">>", "!~", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!",
    ">", "<", "|", "?", ":", "~", "$", "=",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        // Whether a `/` here starts a regular expression (no operand just before).
        let regex_ok = !matches!(
            out.last(),
            Some(Tok::Num(_) | Tok::Str(_) | Tok::Name(_) | Tok::Builtin(_) | Tok::Regex(_))
                | Some(Tok::Op(")" | "]" | "$" | "++" | "--"))
        );
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '\\' if chars.get(i + 1) == Some(&'\r') && chars.get(i + 2) == Some(&'\n') => i += 3,
            '\n' => {
                out.push(Tok::Newline);
                i += 1;
            }
            '#' => {
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None | Some('\n') => return Err("Unexpected end of string".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            i += 1;
                            let (ch, used) = escape(&chars, i);
                            if let Some(ch) = ch {
                                s.push(ch);
                            }
                            i += used;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '/' if regex_ok => {
                i += 1;
                let mut s = String::new();
                let mut in_class = false;
                loop {
                    match chars.get(i) {
                        None | Some('\n') => return Err("Unexpected end of string".into()),
                        Some('/') if !in_class => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('/') => s.push('/'),
                                Some(&n) => {
                                    s.push('\\');
                                    s.push(n);
                                }
                                None => s.push('\\'),
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            if ch == '[' {
                                in_class = true;
                            } else if ch == ']' {
                                in_class = false;
                            }
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Regex(s));
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) {
                    i += 2;
                    while chars.get(i).is_some_and(char::is_ascii_hexdigit) {
                        i += 1;
                    }
                    let h: String = chars.get(start + 2..i).unwrap_or(&[]).iter().collect();
                    out.push(Tok::Num(u64::from_str_radix(&h, 16).unwrap_or(0) as f64));
                    continue;
                }
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                if chars.get(i) == Some(&'.') {
                    i += 1;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let mut j = i + 1;
                    if matches!(chars.get(j), Some('+' | '-')) {
                        j += 1;
                    }
                    if chars.get(j).is_some_and(char::is_ascii_digit) {
                        while chars.get(j).is_some_and(char::is_ascii_digit) {
                            j += 1;
                        }
                        i = j;
                    }
                }
                let text: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                out.push(Tok::Num(text.parse().unwrap_or(0.0)));
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&c| c == '_' || c.is_ascii_alphanumeric())
                {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                    out.push(Tok::Kw(k));
                } else if BUILTINS.contains(&word.as_str()) {
                    out.push(Tok::Builtin(word));
                } else if chars.get(i) == Some(&'(') {
                    out.push(Tok::FuncName(word));
                } else {
                    out.push(Tok::Name(word));
                }
            }
            _ => {
                let rest: String = chars.get(i..i + 3).unwrap_or(&chars[i..]).iter().collect();
                let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
                    return Err("Unexpected token".into());
                };
                i += op.chars().count();
                out.push(Tok::Op(op));
            }
        }
    }
    out.push(Tok::Eof);
    Ok(out)
}

/// A backslash escape at `chars[i]` (after the `\`): the character (None: nothing) and how
/// many characters it took.
fn escape(chars: &[char], i: usize) -> (Option<char>, usize) {
    match chars.get(i) {
        None => (Some('\\'), 0),
        Some('n') => (Some('\n'), 1),
        Some('t') => (Some('\t'), 1),
        Some('r') => (Some('\r'), 1),
        Some('\\') => (Some('\\'), 1),
        Some('"') => (Some('"'), 1),
        Some('/') => (Some('/'), 1),
        Some('a') => (Some('\x07'), 1),
        Some('b') => (Some('\x08'), 1),
        Some('f') => (Some('\x0c'), 1),
        Some('v') => (Some('\x0b'), 1),
        Some('\n') => (None, 1),
        Some(d) if ('0'..='7').contains(d) => {
            let mut v = 0u32;
            let mut n = 0;
            while n < 3 {
                match chars.get(i + n).and_then(|c| c.to_digit(8)) {
                    Some(d) => v = v * 8 + d,
                    None => break,
                }
                n += 1;
            }
            (char::from_u32(v), n)
        }
        // An unknown escape keeps its backslash.
        Some(_) => (Some('\\'), 0),
    }
}

#[derive(Debug, Clone)]
enum LValue {
    Var(String),
    Field(Box<Expr>),
    Index(String, Vec<Expr>),
}

#[derive(Debug, Clone)]
enum Expr {
    Num(f64),
    Str(String),
    /// A bare `/re/`: `$0 ~ /re/`.
    Regex(String),
    Lv(LValue),
    Assign(Box<LValue>, Option<&'static str>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    In(Vec<Expr>, String),
    Match(bool, Box<Expr>, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Compare(&'static str, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Plus(Box<Expr>),
    IncDec(bool, bool, Box<LValue>),
    Builtin(String, Vec<Expr>),
    Call(String, Vec<Expr>),
    /// `(expr)`, kept for `print (a, b)` and `(a) > b`.
    Group(Vec<Expr>),
}

#[derive(Debug, Clone)]
enum Redirect {
    Truncate(Expr),
    Append(Expr),
}

#[derive(Debug, Clone)]
enum Stmt {
    Print(Vec<Expr>, Option<Redirect>),
    Printf(Vec<Expr>, Option<Redirect>),
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    Do(Box<Stmt>, Expr),
    For(
        Option<Box<Stmt>>,
        Option<Expr>,
        Option<Box<Stmt>>,
        Box<Stmt>,
    ),
    ForIn(String, String, Box<Stmt>),
    Block(Vec<Stmt>),
    Next,
    Exit(Option<Expr>),
    Break,
    Continue,
    Return(Option<Expr>),
    Delete(String, Option<Vec<Expr>>),
}

#[derive(Debug, Clone)]
enum Pattern {
    All,
    Expr(Expr),
    Range(Expr, Expr),
}

#[derive(Debug, Clone)]
struct Func {
    params: Vec<String>,
    body: Vec<Stmt>,
}

#[derive(Debug, Default)]
struct Program {
    begin: Vec<Vec<Stmt>>,
    end: Vec<Vec<Stmt>>,
    rules: Vec<(Pattern, Option<Vec<Stmt>>)>,
    funcs: HashMap<String, Func>,
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    depth: usize,
    /// Inside `print`'s expression list: `>` redirects, `in` of a `for (x in a)` ...
    no_gt: bool,
    no_in: bool,
}

type PResult<T> = Result<T, String>;

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.i).unwrap_or(&Tok::Eof)
    }
    fn peek_at(&self, k: usize) -> &Tok {
        self.toks.get(self.i + k).unwrap_or(&Tok::Eof)
    }
    fn advance(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Kw(k) if *k == kw)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, op: &str) -> PResult<()> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }
    fn unexpected(&self) -> String {
        match self.peek() {
            Tok::Eof => "Unexpected end of string".into(),
            _ => "Unexpected token".into(),
        }
    }

    /// The program line the parser is at (1-based).
    fn line(&self) -> usize {
        1 + self
            .toks
            .get(..self.i.min(self.toks.len()))
            .unwrap_or(&[])
            .iter()
            .filter(|t| matches!(t, Tok::Newline))
            .count()
    }
    fn newlines(&mut self) {
        while matches!(self.peek(), Tok::Newline) {
            self.i += 1;
        }
    }
    fn terminators(&mut self) {
        while matches!(self.peek(), Tok::Newline) || self.is_op(";") {
            self.i += 1;
        }
    }
    fn deeper(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err("program nested too deeply".into());
        }
        Ok(())
    }

    fn program(&mut self) -> PResult<Program> {
        let mut p = Program::default();
        loop {
            self.terminators();
            match self.peek().clone() {
                Tok::Eof => break,
                Tok::Kw("BEGIN") => {
                    self.advance();
                    self.newlines();
                    p.begin.push(self.block()?);
                }
                Tok::Kw("END") => {
                    self.advance();
                    self.newlines();
                    p.end.push(self.block()?);
                }
                Tok::Kw("function" | "func") => {
                    self.advance();
                    let name = match self.advance() {
                        Tok::Name(n) | Tok::FuncName(n) => n,
                        _ => return Err("bad function name".into()),
                    };
                    self.expect_op("(")?;
                    let mut params = Vec::new();
                    while !self.is_op(")") {
                        match self.advance() {
                            Tok::Name(n) => params.push(n),
                            _ => return Err(self.unexpected()),
                        }
                        self.newlines();
                        if !self.eat_op(",") {
                            break;
                        }
                        self.newlines();
                    }
                    self.expect_op(")")?;
                    self.newlines();
                    let body = self.block()?;
                    p.funcs.insert(name, Func { params, body });
                }
                _ => {
                    let pattern = if self.is_op("{") {
                        Pattern::All
                    } else {
                        let a = self.expr()?;
                        if self.eat_op(",") {
                            self.newlines();
                            Pattern::Range(a, self.expr()?)
                        } else {
                            Pattern::Expr(a)
                        }
                    };
                    let action = if self.is_op("{") {
                        Some(self.block()?)
                    } else {
                        None
                    };
                    p.rules.push((pattern, action));
                }
            }
        }
        Ok(p)
    }

    fn block(&mut self) -> PResult<Vec<Stmt>> {
        self.expect_op("{")?;
        self.deeper()?;
        let mut out = Vec::new();
        loop {
            self.terminators();
            if self.eat_op("}") {
                break;
            }
            out.push(self.stmt()?);
        }
        self.depth -= 1;
        Ok(out)
    }

    /// A simple statement's end: `;`, a newline, or before `}`.
    fn end_simple(&mut self) -> PResult<()> {
        if self.eat_op(";") || matches!(self.peek(), Tok::Newline) {
            self.newlines();
            return Ok(());
        }
        if self.is_op("}") || matches!(self.peek(), Tok::Eof) {
            return Ok(());
        }
        Err(self.unexpected())
    }

    /// A statement as the body of `if`/`while`/`for` (after optional newlines).
    fn body(&mut self) -> PResult<Stmt> {
        self.newlines();
        if self.eat_op(";") {
            return Ok(Stmt::Block(Vec::new()));
        }
        self.stmt()
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        self.deeper()?;
        let s = self.stmt_inner();
        self.depth -= 1;
        s
    }

    fn stmt_inner(&mut self) -> PResult<Stmt> {
        if self.is_op("{") {
            return Ok(Stmt::Block(self.block()?));
        }
        let kw = match self.peek() {
            Tok::Kw(k) => Some(*k),
            _ => None,
        };
        match kw {
            Some("if") => {
                self.advance();
                self.expect_op("(")?;
                let c = self.expr()?;
                self.expect_op(")")?;
                let then = self.body()?;
                // `else` may follow newlines and `;`.
                let save = self.i;
                self.terminators();
                if self.is_kw("else") {
                    self.advance();
                    let other = self.body()?;
                    return Ok(Stmt::If(c, Box::new(then), Some(Box::new(other))));
                }
                self.i = save;
                Ok(Stmt::If(c, Box::new(then), None))
            }
            Some("while") => {
                self.advance();
                self.expect_op("(")?;
                let c = self.expr()?;
                self.expect_op(")")?;
                if self.is_op(";") {
                    self.advance();
                    return Ok(Stmt::While(c, Box::new(Stmt::Block(Vec::new()))));
                }
                let b = self.body()?;
                Ok(Stmt::While(c, Box::new(b)))
            }
            Some("do") => {
                self.advance();
                let b = self.body()?;
                self.terminators();
                if !self.is_kw("while") {
                    return Err(self.unexpected());
                }
                self.advance();
                self.expect_op("(")?;
                let c = self.expr()?;
                self.expect_op(")")?;
                self.end_simple()?;
                Ok(Stmt::Do(Box::new(b), c))
            }
            Some("for") => {
                self.advance();
                self.expect_op("(")?;
                if let (Tok::Name(v), Tok::Kw("in"), Tok::Name(a), Tok::Op(")")) = (
                    self.peek().clone(),
                    self.peek_at(1).clone(),
                    self.peek_at(2).clone(),
                    self.peek_at(3).clone(),
                ) {
                    self.i += 4;
                    let b = self.body()?;
                    return Ok(Stmt::ForIn(v, a, Box::new(b)));
                }
                let init = if self.is_op(";") {
                    None
                } else {
                    Some(Box::new(self.simple_stmt()?))
                };
                self.expect_op(";")?;
                self.newlines();
                let cond = if self.is_op(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect_op(";")?;
                self.newlines();
                let step = if self.is_op(")") {
                    None
                } else {
                    Some(Box::new(self.simple_stmt()?))
                };
                self.expect_op(")")?;
                let b = self.body()?;
                Ok(Stmt::For(init, cond, step, Box::new(b)))
            }
            Some("break") => {
                self.advance();
                self.end_simple()?;
                Ok(Stmt::Break)
            }
            Some("continue") => {
                self.advance();
                self.end_simple()?;
                Ok(Stmt::Continue)
            }
            Some("next") => {
                self.advance();
                self.end_simple()?;
                Ok(Stmt::Next)
            }
            Some("nextfile") => Err("nextfile is not supported".into()),
            Some("getline") => Err("getline is not supported".into()),
            Some("exit") => {
                self.advance();
                let e = if self.at_simple_end() {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.end_simple()?;
                Ok(Stmt::Exit(e))
            }
            Some("return") => {
                self.advance();
                let e = if self.at_simple_end() {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.end_simple()?;
                Ok(Stmt::Return(e))
            }
            _ => {
                let s = self.simple_stmt()?;
                self.end_simple()?;
                Ok(s)
            }
        }
    }

    fn at_simple_end(&self) -> bool {
        matches!(self.peek(), Tok::Newline | Tok::Eof) || self.is_op(";") || self.is_op("}")
    }

    /// `print`, `printf`, `delete` or an expression.
    fn simple_stmt(&mut self) -> PResult<Stmt> {
        match self.peek().clone() {
            Tok::Kw(k @ ("print" | "printf")) => {
                self.advance();
                let mut args = Vec::new();
                if !self.at_simple_end()
                    && !self.is_op(">")
                    && !self.is_op(">>")
                    && !self.is_op("|")
                {
                    self.no_gt = true;
                    let r = self.expr_list();
                    self.no_gt = false;
                    args = r?;
                    // `print (a, b)`: the grouped list is the arguments.
                    if args.len() == 1 {
                        if let Some(Expr::Group(items)) = args.first() {
                            if items.len() > 1 {
                                args = items.clone();
                            }
                        }
                    }
                }
                let redirect = if self.eat_op(">") {
                    Some(Redirect::Truncate(self.concat_expr()?))
                } else if self.eat_op(">>") {
                    Some(Redirect::Append(self.concat_expr()?))
                } else if self.is_op("|") {
                    return Err("output to a command is not supported".into());
                } else {
                    None
                };
                if k == "print" {
                    Ok(Stmt::Print(args, redirect))
                } else {
                    if args.is_empty() {
                        return Err("printf: no format".into());
                    }
                    Ok(Stmt::Printf(args, redirect))
                }
            }
            Tok::Kw("delete") => {
                self.advance();
                let name = match self.advance() {
                    Tok::Name(n) => n,
                    _ => return Err(self.unexpected()),
                };
                if self.eat_op("[") {
                    let idx = self.expr_list()?;
                    self.expect_op("]")?;
                    Ok(Stmt::Delete(name, Some(idx)))
                } else {
                    Ok(Stmt::Delete(name, None))
                }
            }
            _ => Ok(Stmt::Expr(self.expr()?)),
        }
    }

    fn expr_list(&mut self) -> PResult<Vec<Expr>> {
        let mut v = vec![self.expr()?];
        while self.eat_op(",") {
            self.newlines();
            v.push(self.expr()?);
        }
        Ok(v)
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.deeper()?;
        let e = self.ternary();
        self.depth -= 1;
        e
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let c = self.or()?;
        if self.eat_op("?") {
            self.newlines();
            let a = self.ternary()?;
            self.newlines();
            self.expect_op(":")?;
            self.newlines();
            let b = self.ternary()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        // Assignment: the left side must be an lvalue.
        let op = match self.peek() {
            Tok::Op(o @ ("=" | "+=" | "-=" | "*=" | "/=" | "%=" | "^=" | "**=")) => Some(*o),
            _ => None,
        };
        if let Some(op) = op {
            if let Expr::Lv(lv) = c {
                self.advance();
                self.newlines();
                let rhs = self.ternary()?;
                let bin = match op {
                    "=" => None,
                    "**=" => Some("^"),
                    o => Some(o.trim_end_matches('=')),
                };
                let bin: Option<&'static str> = bin.map(|b| match b {
                    "+" => "+",
                    "-" => "-",
                    "*" => "*",
                    "/" => "/",
                    "%" => "%",
                    _ => "^",
                });
                return Ok(Expr::Assign(Box::new(lv), bin, Box::new(rhs)));
            }
            return Err(self.unexpected());
        }
        Ok(c)
    }

    fn or(&mut self) -> PResult<Expr> {
        let mut l = self.and()?;
        while self.eat_op("||") {
            self.newlines();
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> PResult<Expr> {
        let mut l = self.in_expr()?;
        while self.eat_op("&&") {
            self.newlines();
            let r = self.in_expr()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn in_expr(&mut self) -> PResult<Expr> {
        let mut l = self.matching()?;
        while !self.no_in && self.is_kw("in") {
            self.advance();
            let name = match self.advance() {
                Tok::Name(n) => n,
                _ => return Err(self.unexpected()),
            };
            let keys = match l {
                Expr::Group(items) => items,
                other => vec![other],
            };
            l = Expr::In(keys, name);
        }
        Ok(l)
    }

    fn matching(&mut self) -> PResult<Expr> {
        let mut l = self.comparison()?;
        loop {
            let neg = if self.is_op("~") {
                false
            } else if self.is_op("!~") {
                true
            } else {
                break;
            };
            self.advance();
            let r = self.comparison()?;
            l = Expr::Match(neg, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let l = self.concat_expr()?;
        let op = match self.peek() {
            Tok::Op(o @ ("<" | "<=" | "==" | "!=" | ">=")) => Some(*o),
            Tok::Op(">") if !self.no_gt => Some(">"),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let r = self.concat_expr()?;
            return Ok(Expr::Compare(op, Box::new(l), Box::new(r)));
        }
        Ok(l)
    }

    /// Whether the next token can start an operand of a concatenation.
    fn starts_operand(&self) -> bool {
        match self.peek() {
            Tok::Num(_) | Tok::Str(_) | Tok::Regex(_) | Tok::Name(_) | Tok::FuncName(_) => true,
            Tok::Builtin(_) => true,
            Tok::Op(o) => matches!(*o, "$" | "!" | "(" | "-" | "+" | "++" | "--"),
            Tok::Kw(k) => *k == "getline",
            _ => false,
        }
    }

    fn concat_expr(&mut self) -> PResult<Expr> {
        let mut l = self.additive()?;
        while self.starts_operand() && !self.is_op("!") {
            // `a -1` is a subtraction, handled by additive; a leading `-`/`+` here is too.
            if self.is_op("-") || self.is_op("+") {
                break;
            }
            let r = self.additive()?;
            l = Expr::Concat(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn additive(&mut self) -> PResult<Expr> {
        let mut l = self.multiplicative()?;
        loop {
            let op = if self.is_op("+") {
                "+"
            } else if self.is_op("-") {
                "-"
            } else {
                break;
            };
            self.advance();
            let r = self.multiplicative()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn multiplicative(&mut self) -> PResult<Expr> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => "*",
                Tok::Op("/") => "/",
                Tok::Op("%") => "%",
                _ => break,
            };
            self.advance();
            let r = self.unary()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.deeper()?;
        let e = if self.eat_op("!") {
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat_op("-") {
            Expr::Neg(Box::new(self.unary()?))
        } else if self.eat_op("+") {
            Expr::Plus(Box::new(self.unary()?))
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn power(&mut self) -> PResult<Expr> {
        let base = self.postfix()?;
        if self.eat_op("^") || self.eat_op("**") {
            // Right associative, and binds tighter than unary minus on its left only.
            let exp = self.unary()?;
            return Ok(Expr::Binary("^", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let e = self.primary()?;
        if let Expr::Lv(lv) = &e {
            if self.is_op("++") || self.is_op("--") {
                let inc = self.is_op("++");
                self.advance();
                return Ok(Expr::IncDec(false, inc, Box::new(lv.clone())));
            }
        }
        Ok(e)
    }

    fn lvalue(&mut self) -> PResult<LValue> {
        match self.primary()? {
            Expr::Lv(lv) => Ok(lv),
            _ => Err("expected a variable".into()),
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.deeper()?;
        let t = self.advance();
        let e = match t {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Regex(r) => Expr::Regex(r),
            Tok::Op("$") => {
                let e = if self.is_op("++") || self.is_op("--") {
                    let inc = self.is_op("++");
                    self.advance();
                    Expr::IncDec(true, inc, Box::new(self.lvalue()?))
                } else if self.eat_op("-") {
                    Expr::Neg(Box::new(self.primary()?))
                } else {
                    self.primary()?
                };
                Expr::Lv(LValue::Field(Box::new(e)))
            }
            Tok::Op(o @ ("++" | "--")) => {
                let lv = self.lvalue()?;
                Expr::IncDec(true, o == "++", Box::new(lv))
            }
            Tok::Op("(") => {
                let save_gt = self.no_gt;
                let save_in = self.no_in;
                self.no_gt = false;
                self.no_in = false;
                self.newlines();
                let list = self.expr_list();
                self.no_gt = save_gt;
                self.no_in = save_in;
                let list = list?;
                self.newlines();
                self.expect_op(")")?;
                Expr::Group(list)
            }
            Tok::Name(n) => {
                if self.eat_op("[") {
                    let idx = self.expr_list()?;
                    self.expect_op("]")?;
                    Expr::Lv(LValue::Index(n, idx))
                } else {
                    Expr::Lv(LValue::Var(n))
                }
            }
            Tok::FuncName(n) => {
                self.expect_op("(")?;
                let args = self.call_args()?;
                Expr::Call(n, args)
            }
            Tok::Builtin(b) => {
                let args = if self.eat_op("(") {
                    self.call_args()?
                } else if b == "length" {
                    Vec::new()
                } else {
                    return Err(self.unexpected());
                };
                if b == "system" {
                    return Err("system() is not supported".into());
                }
                Expr::Builtin(b, args)
            }
            Tok::Kw("getline") => return Err("getline is not supported".into()),
            Tok::Op("-") => Expr::Neg(Box::new(self.primary()?)),
            Tok::Op("!") => Expr::Not(Box::new(self.primary()?)),
            other => {
                self.i = self.i.saturating_sub(1);
                let _ = other;
                return Err(self.unexpected());
            }
        };
        self.depth -= 1;
        Ok(e)
    }

    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        self.newlines();
        if self.eat_op(")") {
            return Ok(args);
        }
        let save_gt = self.no_gt;
        self.no_gt = false;
        loop {
            self.newlines();
            args.push(self.expr()?);
            self.newlines();
            if self.eat_op(",") {
                continue;
            }
            break;
        }
        self.no_gt = save_gt;
        self.expect_op(")")?;
        Ok(args)
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// How control leaves a statement.
enum Ctl {
    Go,
    Next,
    Exit,
    Break,
    Continue,
    Return(Val),
}

/// A function call's locals: scalars, and arrays by the global name they stand for.
#[derive(Default)]
struct Frame {
    scalars: HashMap<String, Val>,
    arrays: HashMap<String, String>,
}

struct Awk<'p> {
    prog: &'p Program,
    vars: HashMap<String, Val>,
    arrays: HashMap<String, HashMap<String, Val>>,
    frames: Vec<Frame>,
    fields: Vec<String>,
    record: String,
    /// $0 must be rebuilt from the fields.
    dirty: bool,
    nf: usize,
    regexes: HashMap<String, Option<Regex>>,
    range_on: Vec<bool>,
    out: Vec<u8>,
    err: Vec<u8>,
    /// Output to files: (path, data, append) in order.
    files: Vec<(String, Vec<u8>, bool)>,
    opened: Vec<String>,
    exit_code: i32,
    steps: u64,
    rand_seed: u64,
    prev_seed: f64,
    local_arrays: usize,
    /// A fatal error's message.
    fatal: Option<String>,
}

type RResult<T> = Result<T, String>;

impl<'p> Awk<'p> {
    fn new(prog: &'p Program) -> Self {
        let mut vars = HashMap::new();
        for (k, v) in [
            ("FS", " "),
            ("OFS", " "),
            ("ORS", "\n"),
            ("RS", "\n"),
            ("SUBSEP", "\x1c"),
            ("CONVFMT", "%.6g"),
            ("OFMT", "%.6g"),
            ("FILENAME", ""),
        ] {
            vars.insert(k.to_string(), Val::Str(v.to_string()));
        }
        for k in ["NR", "FNR", "RSTART", "RLENGTH"] {
            vars.insert(k.to_string(), Val::Num(0.0));
        }
        Awk {
            prog,
            vars,
            arrays: HashMap::new(),
            frames: Vec::new(),
            fields: Vec::new(),
            record: String::new(),
            dirty: false,
            nf: 0,
            regexes: HashMap::new(),
            range_on: vec![false; prog.rules.len()],
            out: Vec::new(),
            err: Vec::new(),
            files: Vec::new(),
            opened: Vec::new(),
            exit_code: 0,
            steps: 0,
            rand_seed: 0x2545_f491_4f6c_dd1d,
            prev_seed: 0.0,
            local_arrays: 0,
            fatal: None,
        }
    }

    fn step(&mut self) -> RResult<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!(
                "the simulated awk stops after {MAX_STEPS} steps (a loop without end?)"
            ));
        }
        Ok(())
    }

    /// Charge the work of going over `bytes` bytes (one step per 16).
    fn charge(&mut self, bytes: usize) -> RResult<()> {
        self.steps += (bytes / 16) as u64;
        self.step()
    }

    fn convfmt(&self) -> String {
        self.get_var("CONVFMT").str("%.6g")
    }

    fn get_var(&self, name: &str) -> Val {
        if name == "NF" {
            return Val::Num(self.nf as f64);
        }
        if let Some(f) = self.frames.last() {
            if let Some(v) = f.scalars.get(name) {
                return v.clone();
            }
        }
        self.vars.get(name).cloned().unwrap_or(Val::Uninit)
    }

    fn set_var(&mut self, name: &str, v: Val) {
        if name == "NF" {
            self.set_nf(v.num().max(0.0) as usize);
            return;
        }
        if let Some(f) = self.frames.last_mut() {
            if f.scalars.contains_key(name) {
                f.scalars.insert(name.to_string(), v);
                return;
            }
        }
        self.vars.insert(name.to_string(), v);
    }

    /// The global name of array `name` (a function's array parameter stands for another).
    fn array_name(&mut self, name: &str) -> String {
        if let Some(f) = self.frames.last() {
            if let Some(real) = f.arrays.get(name) {
                return real.clone();
            }
            if f.scalars.get(name) == Some(&Val::Uninit) {
                // An unused parameter used as an array: a local array.
                self.local_arrays += 1;
                let real = format!("\0local{}", self.local_arrays);
                if let Some(f) = self.frames.last_mut() {
                    f.scalars.remove(name);
                    f.arrays.insert(name.to_string(), real.clone());
                }
                return real;
            }
        }
        name.to_string()
    }

    fn regex(&mut self, src: &str) -> RResult<Regex> {
        if let Some(r) = self.regexes.get(src) {
            return r.clone().ok_or_else(|| format!("bad regex '{src}'"));
        }
        let compiled = super::text::posix_to_regex(src, true).and_then(|p| Regex::new(&p).ok());
        if self.regexes.len() > 1000 {
            self.regexes.clear();
        }
        self.regexes.insert(src.to_string(), compiled.clone());
        compiled.ok_or_else(|| format!("bad regex '{src}'"))
    }

    // ----- records and fields

    fn set_record(&mut self, rec: String) {
        self.record = rec;
        self.dirty = false;
        self.split_record();
    }

    fn split_record(&mut self) {
        let fs = self.get_var("FS").str("%.6g");
        let rec = self.record.clone();
        self.fields = match self.split_with(&rec, &fs) {
            Ok(f) => f,
            Err(e) => {
                self.fatal.get_or_insert(e);
                Vec::new()
            }
        };
        self.nf = self.fields.len();
    }

    fn split_with(&mut self, s: &str, fs: &str) -> RResult<Vec<String>> {
        if s.is_empty() {
            return Ok(Vec::new());
        }
        if fs == " " {
            return Ok(s
                .split([' ', '\t', '\n'])
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect());
        }
        let mut chars = fs.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if c != '\\' {
                return Ok(s.split(c).map(str::to_string).collect());
            }
        }
        let re = self.regex(fs)?;
        Ok(re.split(s).map(str::to_string).collect())
    }

    fn field(&self, i: usize) -> String {
        if i == 0 {
            return self.record.clone();
        }
        self.fields.get(i - 1).cloned().unwrap_or_default()
    }

    fn rebuild(&mut self) {
        let ofs = self.get_var("OFS").str("%.6g");
        self.record = self.fields.join(&ofs);
        self.dirty = false;
    }

    fn set_field(&mut self, i: usize, v: String) {
        if i == 0 {
            self.set_record(v);
            return;
        }
        if i > 100_000 {
            self.fatal.get_or_insert("field number too large".into());
            return;
        }
        if self.fields.len() < i {
            self.fields.resize(i, String::new());
        }
        if let Some(slot) = self.fields.get_mut(i - 1) {
            *slot = v;
        }
        self.nf = self.fields.len();
        self.rebuild();
    }

    fn set_nf(&mut self, n: usize) {
        let n = n.min(100_000);
        self.fields.resize(n, String::new());
        self.nf = n;
        self.rebuild();
    }

    // ----- evaluation

    fn get_lv(&mut self, lv: &LValue) -> RResult<Val> {
        match lv {
            LValue::Var(n) => Ok(self.get_var(n)),
            LValue::Field(e) => {
                let i = self.eval(e)?.num();
                if i < 0.0 {
                    return Err("Access to negative field".into());
                }
                Ok(Val::StrNum(self.field(i as usize)))
            }
            LValue::Index(n, idx) => {
                let key = self.key(idx)?;
                let real = self.array_name(n);
                let arr = self.arrays.entry(real).or_default();
                Ok(arr.entry(key).or_insert(Val::Uninit).clone())
            }
        }
    }

    fn set_lv(&mut self, lv: &LValue, v: Val) -> RResult<()> {
        match lv {
            LValue::Var(n) => {
                if self.frames.last().is_some_and(|f| f.arrays.contains_key(n))
                    || self.arrays.contains_key(n)
                {
                    return Err(format!("can't assign to {n}; it's an array name."));
                }
                self.set_var(n, v);
            }
            LValue::Field(e) => {
                let i = self.eval(e)?.num();
                if i < 0.0 {
                    return Err("Access to negative field".into());
                }
                let s = v.str(&self.convfmt());
                self.set_field(i as usize, s);
            }
            LValue::Index(n, idx) => {
                let key = self.key(idx)?;
                let real = self.array_name(n);
                self.arrays.entry(real).or_default().insert(key, v);
            }
        }
        Ok(())
    }

    fn key(&mut self, idx: &[Expr]) -> RResult<String> {
        let subsep = self.get_var("SUBSEP").str("%.6g");
        let convfmt = self.convfmt();
        let mut parts = Vec::new();
        for e in idx {
            parts.push(self.eval(e)?.str(&convfmt));
        }
        Ok(parts.join(&subsep))
    }

    fn eval(&mut self, e: &Expr) -> RResult<Val> {
        self.step()?;
        Ok(match e {
            Expr::Num(n) => Val::Num(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Regex(r) => {
                let re = self.regex(r)?;
                let rec = self.field(0);
                Val::Num(f64::from(u8::from(re.is_match(&rec))))
            }
            Expr::Lv(lv) => self.get_lv(lv)?,
            Expr::Group(items) => match items.as_slice() {
                [one] => self.eval(one)?,
                _ => {
                    // (a, b) outside `in` and print: the concatenation with SUBSEP.
                    Val::Str(self.key(items)?)
                }
            },
            Expr::Assign(lv, op, rhs) => {
                let r = self.eval(rhs)?;
                let v = match op {
                    None => match r {
                        Val::Uninit => Val::Uninit,
                        other => other,
                    },
                    Some(op) => {
                        let l = self.get_lv(lv)?.num();
                        Val::Num(arith(op, l, r.num())?)
                    }
                };
                self.set_lv(lv, v.clone())?;
                v
            }
            Expr::Cond(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::And(a, b) => {
                let v = self.eval(a)?.truthy() && self.eval(b)?.truthy();
                Val::Num(f64::from(u8::from(v)))
            }
            Expr::Or(a, b) => {
                let v = self.eval(a)?.truthy() || self.eval(b)?.truthy();
                Val::Num(f64::from(u8::from(v)))
            }
            Expr::Not(a) => Val::Num(f64::from(u8::from(!self.eval(a)?.truthy()))),
            Expr::In(keys, name) => {
                let key = self.key(keys)?;
                let real = self.array_name(name);
                let has = self.arrays.get(&real).is_some_and(|a| a.contains_key(&key));
                Val::Num(f64::from(u8::from(has)))
            }
            Expr::Match(neg, l, r) => {
                let s = self.eval(l)?.str(&self.convfmt());
                let pat = match r.as_ref() {
                    Expr::Regex(p) => p.clone(),
                    other => {
                        let v = self.eval(other)?;
                        v.str(&self.convfmt())
                    }
                };
                let re = self.regex(&pat)?;
                Val::Num(f64::from(u8::from(re.is_match(&s) != *neg)))
            }
            Expr::Binary(op, l, r) => {
                let a = self.eval(l)?.num();
                let b = self.eval(r)?.num();
                Val::Num(arith(op, a, b)?)
            }
            Expr::Compare(op, l, r) => {
                let a = self.eval(l)?;
                let b = self.eval(r)?;
                let ord = match (a.cmp_num(), b.cmp_num()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => {
                        let c = self.convfmt();
                        Some(a.str(&c).cmp(&b.str(&c)))
                    }
                };
                use std::cmp::Ordering::*;
                let v = match (*op, ord) {
                    (_, None) => *op == "!=",
                    ("<", Some(o)) => o == Less,
                    ("<=", Some(o)) => o != Greater,
                    ("==", Some(o)) => o == Equal,
                    ("!=", Some(o)) => o != Equal,
                    (">=", Some(o)) => o != Less,
                    (_, Some(o)) => o == Greater,
                };
                Val::Num(f64::from(u8::from(v)))
            }
            Expr::Concat(l, r) => {
                let c = self.convfmt();
                let mut s = self.eval(l)?.str(&c);
                s.push_str(&self.eval(r)?.str(&c));
                if s.len() > MAX_BUFFER {
                    return Err("string too long".into());
                }
                self.charge(s.len())?;
                Val::Str(s)
            }
            Expr::Neg(a) => Val::Num(-self.eval(a)?.num()),
            Expr::Plus(a) => Val::Num(self.eval(a)?.num()),
            Expr::IncDec(pre, inc, lv) => {
                let old = self.get_lv(lv)?.num();
                let new = if *inc { old + 1.0 } else { old - 1.0 };
                self.set_lv(lv, Val::Num(new))?;
                Val::Num(if *pre { new } else { old })
            }
            Expr::Builtin(name, args) => self.builtin(name, args)?,
            Expr::Call(name, args) => self.call(name, args)?,
        })
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> RResult<Val> {
        let prog = self.prog;
        let Some(f) = prog.funcs.get(name) else {
            return Err("Call to undefined function".into());
        };
        if self.frames.len() >= MAX_NESTING {
            return Err("function calls nested too deeply".into());
        }
        if args.len() > f.params.len() {
            return Err(format!("too many arguments to '{name}'"));
        }
        let mut frame = Frame::default();
        for (i, p) in f.params.iter().enumerate() {
            match args.get(i) {
                // An array argument goes by reference.
                Some(Expr::Lv(LValue::Var(a)))
                    if self.arrays.contains_key(a)
                        || self
                            .frames
                            .last()
                            .is_some_and(|fr| fr.arrays.contains_key(a))
                        || f.body_uses_array(p) =>
                {
                    let real = self.array_name(a);
                    frame.arrays.insert(p.clone(), real);
                }
                Some(e) => {
                    let v = self.eval(e)?;
                    frame.scalars.insert(p.clone(), v);
                }
                None => {
                    frame.scalars.insert(p.clone(), Val::Uninit);
                }
            }
        }
        self.frames.push(frame);
        let r = self.run_block(&f.body);
        self.frames.pop();
        match r? {
            Ctl::Return(v) => Ok(v),
            Ctl::Exit => Err(String::new()),
            Ctl::Next => Err("next used in a function".into()),
            _ => Ok(Val::Uninit),
        }
    }

    fn builtin(&mut self, name: &str, args: &[Expr]) -> RResult<Val> {
        let c = self.convfmt();
        let arg_str = |me: &mut Self, i: usize| -> RResult<String> {
            match args.get(i) {
                Some(e) => Ok(me.eval(e)?.str(&c)),
                None => Ok(String::new()),
            }
        };
        let arg_num = |me: &mut Self, i: usize| -> RResult<f64> {
            match args.get(i) {
                Some(e) => Ok(me.eval(e)?.num()),
                None => Ok(0.0),
            }
        };
        Ok(match name {
            "length" => match args.first() {
                None => Val::Num(self.field(0).len() as f64),
                Some(Expr::Lv(LValue::Var(n)))
                    if self.arrays.contains_key(n)
                        || self.frames.last().is_some_and(|f| f.arrays.contains_key(n)) =>
                {
                    let real = self.array_name(n);
                    Val::Num(self.arrays.get(&real).map_or(0, HashMap::len) as f64)
                }
                Some(_) => Val::Num(arg_str(self, 0)?.len() as f64),
            },
            "substr" => {
                // busybox: bytes; the start and length are truncated to integers; a start
                // before the string counts from its beginning.
                let s: Vec<u8> = arg_str(self, 0)?.into_bytes();
                let m = arg_num(self, 1)?;
                let len = s.len() as i64;
                let start = ((m - 1.0).trunc() as i64).clamp(0, len);
                let n = if args.len() > 2 {
                    (arg_num(self, 2)?.trunc() as i64).max(0)
                } else {
                    len - start
                };
                let end = start.saturating_add(n).min(len);
                Val::Str(
                    String::from_utf8_lossy(s.get(start as usize..end as usize).unwrap_or(&[]))
                        .into_owned(),
                )
            }
            "index" => {
                let s = arg_str(self, 0)?;
                let t = arg_str(self, 1)?;
                Val::Num(match s.find(&t) {
                    Some(b) => (b + 1) as f64,
                    None => 0.0,
                })
            }
            "split" => {
                let s = arg_str(self, 0)?;
                let Some(Expr::Lv(LValue::Var(arr))) = args.get(1) else {
                    return Err("split: second argument is not an array".into());
                };
                let fs = match args.get(2) {
                    Some(Expr::Regex(r)) => r.clone(),
                    Some(e) => self.eval(e)?.str(&c),
                    None => self.get_var("FS").str(&c),
                };
                self.charge(s.len())?;
                let parts = self.split_with(&s, &fs)?;
                let real = self.array_name(arr);
                let a = self.arrays.entry(real).or_default();
                a.clear();
                for (i, p) in parts.iter().enumerate() {
                    a.insert((i + 1).to_string(), Val::StrNum(p.clone()));
                }
                Val::Num(parts.len() as f64)
            }
            "sub" | "gsub" => {
                let pat = match args.first() {
                    Some(Expr::Regex(r)) => r.clone(),
                    Some(e) => self.eval(e)?.str(&c),
                    None => return Err(format!("{name}: missing arguments")),
                };
                let repl = arg_str(self, 1)?;
                let target = args
                    .get(2)
                    .cloned()
                    .unwrap_or(Expr::Lv(LValue::Field(Box::new(Expr::Num(0.0)))));
                let Expr::Lv(lv) = &target else {
                    return Err(format!("{name}: third argument is not a variable"));
                };
                let s = self.get_lv(lv)?.str(&c);
                self.charge(s.len())?;
                let re = self.regex(&pat)?;
                let (out, n) = substitute(&re, &s, &repl, name == "gsub");
                if out.len() > MAX_BUFFER {
                    return Err("string too long".into());
                }
                if n > 0 {
                    self.set_lv(lv, Val::Str(out))?;
                }
                Val::Num(n as f64)
            }
            "match" => {
                let s = arg_str(self, 0)?;
                let pat = match args.get(1) {
                    Some(Expr::Regex(r)) => r.clone(),
                    Some(e) => self.eval(e)?.str(&c),
                    None => String::new(),
                };
                let re = self.regex(&pat)?;
                let (start, len) = match re.find(&s) {
                    Some(m) => (m.start() as f64 + 1.0, m.as_str().len() as f64),
                    None => (0.0, -1.0),
                };
                self.vars.insert("RSTART".into(), Val::Num(start));
                self.vars.insert("RLENGTH".into(), Val::Num(len));
                Val::Num(start)
            }
            "sprintf" => {
                let mut vals = Vec::new();
                for e in args {
                    vals.push(self.eval(e)?);
                }
                let fmt = vals.first().map(|v| v.str(&c)).unwrap_or_default();
                let out = sprintf(&fmt, vals.get(1..).unwrap_or(&[]), &c);
                self.charge(out.len())?;
                Val::Str(out)
            }
            "tolower" => Val::Str(arg_str(self, 0)?.to_ascii_lowercase()),
            "toupper" => Val::Str(arg_str(self, 0)?.to_ascii_uppercase()),
            "int" => Val::Num(arg_num(self, 0)?.trunc()),
            "sqrt" => Val::Num(arg_num(self, 0)?.sqrt()),
            "exp" => Val::Num(arg_num(self, 0)?.exp()),
            "log" => Val::Num(arg_num(self, 0)?.ln()),
            "sin" => Val::Num(arg_num(self, 0)?.sin()),
            "cos" => Val::Num(arg_num(self, 0)?.cos()),
            "atan2" => {
                let y = arg_num(self, 0)?;
                let x = arg_num(self, 1)?;
                Val::Num(y.atan2(x))
            }
            "rand" => {
                self.rand_seed ^= self.rand_seed << 13;
                self.rand_seed ^= self.rand_seed >> 7;
                self.rand_seed ^= self.rand_seed << 17;
                Val::Num((self.rand_seed >> 11) as f64 / (1u64 << 53) as f64)
            }
            "srand" => {
                let prev = self.prev_seed;
                let seed = if args.is_empty() {
                    0.0
                } else {
                    arg_num(self, 0)?
                };
                self.prev_seed = seed;
                self.rand_seed = (seed.to_bits() | 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                Val::Num(prev)
            }
            "close" | "fflush" => {
                for e in args {
                    self.eval(e)?;
                }
                Val::Num(0.0)
            }
            _ => return Err(format!("{name} is not supported")),
        })
    }

    // ----- statements

    fn run_block(&mut self, stmts: &[Stmt]) -> RResult<Ctl> {
        for s in stmts {
            match self.run(s)? {
                Ctl::Go => {}
                other => return Ok(other),
            }
        }
        Ok(Ctl::Go)
    }

    fn output(&mut self, redirect: &Option<Redirect>, data: String) -> RResult<()> {
        let target = match redirect {
            None => {
                self.out.extend_from_slice(data.as_bytes());
                return Ok(());
            }
            Some(Redirect::Truncate(e)) => (self.eval(e)?.str(&self.convfmt()), false),
            Some(Redirect::Append(e)) => (self.eval(e)?.str(&self.convfmt()), true),
        };
        match target.0.as_str() {
            "/dev/stdout" | "-" => self.out.extend_from_slice(data.as_bytes()),
            "/dev/stderr" => self.err.extend_from_slice(data.as_bytes()),
            path => {
                // `>` truncates the file when it is first opened, then appends.
                let append = target.1 || self.opened.iter().any(|p| p == path);
                if !self.opened.iter().any(|p| p == path) {
                    self.opened.push(path.to_string());
                }
                self.files
                    .push((path.to_string(), data.into_bytes(), append));
            }
        }
        Ok(())
    }

    fn run(&mut self, s: &Stmt) -> RResult<Ctl> {
        self.step()?;
        match s {
            Stmt::Print(args, redirect) => {
                let ofmt = self.get_var("OFMT").str("%.6g");
                let mut line = String::new();
                if args.is_empty() {
                    line = self.field(0);
                } else {
                    let ofs = self.get_var("OFS").str("%.6g");
                    for (i, e) in args.iter().enumerate() {
                        if i > 0 {
                            line.push_str(&ofs);
                        }
                        let v = self.eval(e)?;
                        line.push_str(&match v {
                            Val::Num(n) => num_to_str(n, &ofmt),
                            other => other.str(&ofmt),
                        });
                    }
                }
                line.push_str(&self.get_var("ORS").str("%.6g"));
                self.output(redirect, line)?;
            }
            Stmt::Printf(args, redirect) => {
                let c = self.convfmt();
                let mut vals = Vec::new();
                for e in args {
                    vals.push(self.eval(e)?);
                }
                let fmt = vals.first().map(|v| v.str(&c)).unwrap_or_default();
                let text = sprintf(&fmt, vals.get(1..).unwrap_or(&[]), &c);
                self.output(redirect, text)?;
            }
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::If(c, a, b) => {
                if self.eval(c)?.truthy() {
                    return self.run(a);
                } else if let Some(b) = b {
                    return self.run(b);
                }
            }
            Stmt::While(c, body) => {
                while self.eval(c)?.truthy() {
                    match self.run(body)? {
                        Ctl::Break => break,
                        Ctl::Go | Ctl::Continue => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Do(body, c) => loop {
                match self.run(body)? {
                    Ctl::Break => break,
                    Ctl::Go | Ctl::Continue => {}
                    other => return Ok(other),
                }
                if !self.eval(c)?.truthy() {
                    break;
                }
            },
            Stmt::For(init, cond, step, body) => {
                if let Some(i) = init {
                    self.run(i)?;
                }
                loop {
                    if let Some(c) = cond {
                        if !self.eval(c)?.truthy() {
                            break;
                        }
                    }
                    match self.run(body)? {
                        Ctl::Break => break,
                        Ctl::Go | Ctl::Continue => {}
                        other => return Ok(other),
                    }
                    if let Some(s) = step {
                        self.run(s)?;
                    }
                }
            }
            Stmt::ForIn(var, arr, body) => {
                let real = self.array_name(arr);
                let mut keys: Vec<String> = self
                    .arrays
                    .get(&real)
                    .map(|a| a.keys().cloned().collect())
                    .unwrap_or_default();
                // Numeric keys in order, then the others: a stable, plausible order.
                keys.sort_by(|a, b| match (looks_numeric(a), looks_numeric(b)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.cmp(b),
                });
                for k in keys {
                    self.set_var(var, Val::StrNum(k));
                    match self.run(body)? {
                        Ctl::Break => break,
                        Ctl::Go | Ctl::Continue => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Block(b) => return self.run_block(b),
            Stmt::Next => return Ok(Ctl::Next),
            Stmt::Exit(e) => {
                if let Some(e) = e {
                    self.exit_code = self.eval(e)?.num() as i32 & 255;
                }
                return Ok(Ctl::Exit);
            }
            Stmt::Break => return Ok(Ctl::Break),
            Stmt::Continue => return Ok(Ctl::Continue),
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Val::Uninit,
                };
                return Ok(Ctl::Return(v));
            }
            Stmt::Delete(name, idx) => {
                let key = match idx {
                    Some(idx) => Some(self.key(idx)?),
                    None => None,
                };
                let real = self.array_name(name);
                let a = self.arrays.entry(real).or_default();
                match key {
                    Some(k) => {
                        a.remove(&k);
                    }
                    None => a.clear(),
                }
            }
        }
        Ok(Ctl::Go)
    }

    /// The rules for the current record: false once `exit` ran.
    fn record_rules(&mut self) -> RResult<bool> {
        let prog = self.prog;
        for (i, (pattern, action)) in prog.rules.iter().enumerate() {
            let hit = match pattern {
                Pattern::All => true,
                Pattern::Expr(e) => self.eval(e)?.truthy(),
                Pattern::Range(a, b) => {
                    let on = self.range_on.get(i).copied().unwrap_or(false);
                    if on {
                        if self.eval(b)?.truthy() {
                            if let Some(r) = self.range_on.get_mut(i) {
                                *r = false;
                            }
                        }
                        true
                    } else if self.eval(a)?.truthy() {
                        if !self.eval(b)?.truthy() {
                            if let Some(r) = self.range_on.get_mut(i) {
                                *r = true;
                            }
                        }
                        true
                    } else {
                        false
                    }
                }
            };
            if !hit {
                continue;
            }
            let ctl = match action {
                Some(stmts) => self.run_block(stmts)?,
                None => {
                    let mut line = self.field(0);
                    line.push_str(&self.get_var("ORS").str("%.6g"));
                    self.out.extend_from_slice(line.as_bytes());
                    Ctl::Go
                }
            };
            match ctl {
                Ctl::Next => return Ok(true),
                Ctl::Exit => return Ok(false),
                _ => {}
            }
        }
        Ok(true)
    }
}

impl Func {
    /// Whether the body uses parameter `p` as an array (so an unset argument goes by
    /// reference).
    fn body_uses_array(&self, p: &str) -> bool {
        fn in_expr(e: &Expr, p: &str) -> bool {
            match e {
                Expr::Lv(LValue::Index(n, idx)) => n == p || idx.iter().any(|i| in_expr(i, p)),
                Expr::In(keys, n) => n == p || keys.iter().any(|k| in_expr(k, p)),
                Expr::Builtin(_, args) | Expr::Call(_, args) | Expr::Group(args) => {
                    args.iter().any(|a| in_expr(a, p))
                }
                Expr::Assign(lv, _, r) => in_lv(lv, p) || in_expr(r, p),
                Expr::Cond(a, b, c) => in_expr(a, p) || in_expr(b, p) || in_expr(c, p),
                Expr::And(a, b)
                | Expr::Or(a, b)
                | Expr::Match(_, a, b)
                | Expr::Binary(_, a, b)
                | Expr::Compare(_, a, b)
                | Expr::Concat(a, b) => in_expr(a, p) || in_expr(b, p),
                Expr::Not(a) | Expr::Neg(a) | Expr::Plus(a) => in_expr(a, p),
                Expr::IncDec(_, _, lv) => in_lv(lv, p),
                Expr::Lv(lv) => in_lv(lv, p),
                _ => false,
            }
        }
        fn in_lv(lv: &LValue, p: &str) -> bool {
            match lv {
                LValue::Index(n, idx) => n == p || idx.iter().any(|i| in_expr(i, p)),
                LValue::Field(e) => in_expr(e, p),
                LValue::Var(_) => false,
            }
        }
        fn in_stmt(s: &Stmt, p: &str) -> bool {
            match s {
                Stmt::Print(a, _) | Stmt::Printf(a, _) => a.iter().any(|e| in_expr(e, p)),
                Stmt::Expr(e) => in_expr(e, p),
                Stmt::If(c, a, b) => {
                    in_expr(c, p) || in_stmt(a, p) || b.as_ref().is_some_and(|b| in_stmt(b, p))
                }
                Stmt::While(c, b) | Stmt::Do(b, c) => in_expr(c, p) || in_stmt(b, p),
                Stmt::For(i, c, s, b) => {
                    i.as_ref().is_some_and(|i| in_stmt(i, p))
                        || c.as_ref().is_some_and(|c| in_expr(c, p))
                        || s.as_ref().is_some_and(|s| in_stmt(s, p))
                        || in_stmt(b, p)
                }
                Stmt::ForIn(_, a, b) => a == p || in_stmt(b, p),
                Stmt::Block(b) => b.iter().any(|s| in_stmt(s, p)),
                Stmt::Delete(n, _) => n == p,
                Stmt::Exit(Some(e)) | Stmt::Return(Some(e)) => in_expr(e, p),
                _ => false,
            }
        }
        self.body.iter().any(|s| in_stmt(s, p))
    }
}

fn arith(op: &str, a: f64, b: f64) -> RResult<f64> {
    Ok(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => {
            if b == 0.0 {
                return Err("Division by zero".into());
            }
            a / b
        }
        "%" => {
            if b == 0.0 {
                return Err("Division by zero".into());
            }
            a % b
        }
        _ => a.powf(b),
    })
}

/// `sub`/`gsub`: `&` in the replacement is the match, `\&` a literal `&`. An empty match
/// right after a previous match does not count.
fn substitute(re: &Regex, s: &str, repl: &str, global: bool) -> (String, usize) {
    let mut out = String::new();
    let mut n = 0;
    let mut pos = 0;
    let mut after_match: Option<usize> = None;
    let char_len = |at: usize| {
        s.get(at..)
            .and_then(|r| r.chars().next())
            .map_or(1, char::len_utf8)
    };
    while pos <= s.len() {
        let Some(m) = re.find_at(s, pos) else {
            break;
        };
        if m.start() == m.end() && after_match == Some(m.start()) {
            if m.start() >= s.len() {
                break;
            }
            let l = char_len(m.start());
            out.push_str(s.get(pos..m.start() + l).unwrap_or(""));
            pos = m.start() + l;
            after_match = None;
            continue;
        }
        out.push_str(s.get(pos..m.start()).unwrap_or(""));
        let mut chars = repl.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some('&')) => {
                    chars.next();
                    out.push('&');
                }
                '\\' if matches!(chars.peek(), Some('\\')) => {
                    chars.next();
                    out.push('\\');
                }
                '&' => out.push_str(m.as_str()),
                c => out.push(c),
            }
        }
        n += 1;
        if m.end() > m.start() {
            pos = m.end();
            after_match = Some(m.end());
        } else if m.start() < s.len() {
            let l = char_len(m.start());
            out.push_str(s.get(m.start()..m.start() + l).unwrap_or(""));
            pos = m.start() + l;
            after_match = None;
        } else {
            pos = s.len() + 1;
        }
        if !global {
            break;
        }
    }
    if let Some(rest) = s.get(pos..) {
        out.push_str(rest);
    }
    (out, n)
}

/// Records of `buf` by `RS`: complete ones (consumed), and at the end (`eof`) the rest.
fn next_record(buf: &mut String, rs: &str, eof: bool) -> Option<String> {
    if rs.is_empty() {
        // Paragraph mode: records end at blank lines; leading newlines are skipped.
        let trimmed = buf.trim_start_matches('\n').len();
        let skip = buf.len() - trimmed;
        buf.drain(..skip);
        if let Some(at) = buf.find("\n\n") {
            let rec = buf[..at].to_string();
            let mut end = at;
            while buf[end..].starts_with('\n') {
                end += 1;
            }
            buf.drain(..end);
            return Some(rec);
        }
        if eof && !buf.is_empty() {
            let rec = buf.trim_end_matches('\n').to_string();
            buf.clear();
            return Some(rec);
        }
        return None;
    }
    let sep = rs.chars().next().unwrap_or('\n');
    if let Some(at) = buf.find(sep) {
        let rec = buf[..at].to_string();
        buf.drain(..at + sep.len_utf8());
        return Some(rec);
    }
    if eof && !buf.is_empty() {
        return Some(std::mem::take(buf));
    }
    None
}

/// `-v` and operand assignments: the value with escapes processed.
fn unescape_value(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == '\\' {
            let (ch, used) = escape(&chars, i);
            if let Some(ch) = ch {
                out.push(ch);
            }
            i += used;
        } else {
            out.push(c);
        }
    }
    out
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Interp<'_> {
    /// `awk`.
    pub(super) async fn cmd_awk(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut fs: Option<String> = None;
        let mut assigns: Vec<(String, String)> = Vec::new();
        let mut src: Option<String> = None;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if a == "--" {
                i += 1;
                break;
            }
            if a.len() < 2 || !a.starts_with('-') {
                break;
            }
            let opt = a.chars().nth(1).unwrap_or('-');
            let inline: String = a.chars().skip(2).collect();
            let mut value = || {
                if inline.is_empty() {
                    i += 1;
                    args.get(i).cloned()
                } else {
                    Some(inline.clone())
                }
            };
            match opt {
                'F' => match value() {
                    Some(v) => {
                        fs = Some(if v == "t" {
                            "\t".into()
                        } else {
                            unescape_value(&v)
                        })
                    }
                    None => {
                        self.err(fds, "awk: option requires an argument -- 'F'\n");
                        return 1;
                    }
                },
                'v' => match value().and_then(|v| {
                    v.split_once('=')
                        .map(|(n, val)| (n.to_string(), val.to_string()))
                }) {
                    Some((n, v)) if valid_name(&n) => assigns.push((n, unescape_value(&v))),
                    _ => {
                        self.err(fds, "awk: -v: bad variable assignment\n");
                        return 1;
                    }
                },
                'f' => match value() {
                    Some(f) => {
                        let p = self.path(&f);
                        match self.read(&p) {
                            Some(d) => {
                                let mut s = src.take().unwrap_or_default();
                                s.push_str(&String::from_utf8_lossy(&d));
                                s.push('\n');
                                src = Some(s);
                            }
                            None => {
                                self.err(
                                    fds,
                                    &format!("awk: can't open '{f}': No such file or directory\n"),
                                );
                                return 1;
                            }
                        }
                    }
                    None => {
                        self.err(fds, "awk: option requires an argument -- 'f'\n");
                        return 1;
                    }
                },
                c => return self.bad_option("awk", c, fds),
            }
            i += 1;
        }
        let mut operands: Vec<String> = args.get(i..).unwrap_or(&[]).to_vec();
        let src = match src {
            Some(s) => s,
            None => {
                if operands.is_empty() {
                    self.err(fds, "awk: no program\n");
                    return 1;
                }
                operands.remove(0)
            }
        };
        let parsed = match lex(&src) {
            Ok(toks) => {
                let mut p = Parser {
                    toks,
                    i: 0,
                    depth: 0,
                    no_gt: false,
                    no_in: false,
                };
                p.program().map_err(|e| (e, p.line()))
            }
            Err(e) => Err((e, 1 + src.matches('\n').count())),
        };
        let prog = match parsed {
            Ok(p) => p,
            Err((e, line)) => {
                self.err(fds, &format!("awk: cmd. line:{line}: {e}\n"));
                return 1;
            }
        };
        let mut awk = Awk::new(&prog);
        if let Some(fs) = fs {
            awk.vars.insert("FS".into(), Val::Str(fs));
        }
        for (n, v) in assigns {
            awk.vars.insert(n, Val::StrNum(v));
        }
        let mut env = HashMap::new();
        for (k, v) in self.shell.env_vars() {
            env.insert(k, Val::StrNum(v));
        }
        for (k, v) in &self.vars {
            match v {
                Some(v) if self.exported.contains(k) => {
                    env.insert(k.clone(), Val::StrNum(v.clone()));
                }
                None => {
                    env.remove(k);
                }
                _ => {}
            }
        }
        awk.arrays.insert("ENVIRON".into(), env);
        let mut argv = HashMap::new();
        argv.insert("0".to_string(), Val::Str("awk".into()));
        for (k, o) in operands.iter().enumerate() {
            argv.insert((k + 1).to_string(), Val::StrNum(o.clone()));
        }
        awk.arrays.insert("ARGV".into(), argv);
        awk.vars
            .insert("ARGC".into(), Val::Num((operands.len() + 1) as f64));

        self.awk_run(&mut awk, &operands, fds).await
    }

    /// Flush what the program wrote.
    fn awk_flush(&mut self, awk: &mut Awk<'_>, fds: &Fds) {
        let out = std::mem::take(&mut awk.out);
        self.out(fds, &out);
        let err = std::mem::take(&mut awk.err);
        self.put_err_bytes(fds, &err);
        for (path, data, append) in std::mem::take(&mut awk.files) {
            let p = self.path(&path);
            if let Err(why) = self.shell.write(&p, &data, append) {
                self.err(fds, &format!("awk: can't open '{path}': {why}\n"));
            }
        }
    }

    fn put_err_bytes(&mut self, fds: &Fds, data: &[u8]) {
        if !data.is_empty() {
            let s = String::from_utf8_lossy(data).into_owned();
            self.err(fds, &s);
        }
    }

    async fn awk_run(&mut self, awk: &mut Awk<'_>, operands: &[String], fds: &Fds) -> i32 {
        macro_rules! fail {
            ($e:expr) => {{
                let e: String = $e;
                self.awk_flush(awk, fds);
                self.err(fds, &format!("awk: cmd. line:1: {e}\n"));
                return 1;
            }};
        }
        let prog = awk.prog;
        let mut exited = false;
        for b in &prog.begin {
            awk.steps = 0;
            match awk.run_block(b) {
                Ok(Ctl::Exit) => {
                    exited = true;
                    break;
                }
                Ok(_) => {}
                // `exit` in a function.
                Err(e) if e.is_empty() => {
                    exited = true;
                    break;
                }
                Err(e) => fail!(e),
            }
        }
        self.awk_flush(awk, fds);
        if !exited && (!prog.rules.is_empty() || !prog.end.is_empty()) {
            let files: Vec<String> = operands.to_vec();
            let mut any_file = false;
            let mut list: Vec<String> = Vec::new();
            for f in files {
                if let Some((n, v)) = f.split_once('=').filter(|(n, _)| valid_name(n)) {
                    list.push(format!("\0{n}={v}"));
                } else {
                    any_file = true;
                    list.push(f);
                }
            }
            if !any_file {
                list.push("-".into());
            }
            'files: for f in list {
                if let Some(assign) = f.strip_prefix('\0') {
                    if let Some((n, v)) = assign.split_once('=') {
                        awk.vars
                            .insert(n.to_string(), Val::StrNum(unescape_value(v)));
                    }
                    continue;
                }
                // A file that can't be opened ends awk (busybox's xfopen).
                let Some(mut input) = self.open_input("awk", &f, fds, OpenStyle::CantOpen) else {
                    return 1;
                };
                awk.vars.insert("FILENAME".into(), Val::Str(f.clone()));
                awk.vars.insert("FNR".into(), Val::Num(0.0));
                let mut buf = String::new();
                let mut eof = false;
                let mut pending: Vec<u8> = Vec::new();
                loop {
                    let rs = awk.get_var("RS").str("%.6g");
                    if let Some(rec) = next_record(&mut buf, &rs, eof) {
                        for v in ["NR", "FNR"] {
                            let n = awk.get_var(v).num() + 1.0;
                            awk.vars.insert(v.into(), Val::Num(n));
                        }
                        awk.set_record(rec);
                        if let Some(e) = awk.fatal.take() {
                            fail!(e);
                        }
                        awk.steps = 0;
                        let go = match awk.record_rules() {
                            Ok(go) => go,
                            Err(e) if e.is_empty() => false,
                            Err(e) => fail!(e),
                        };
                        if let Some(e) = awk.fatal.take() {
                            fail!(e);
                        }
                        self.awk_flush(awk, fds);
                        self.drain(fds).await;
                        tokio::task::yield_now().await;
                        if self.sigpipe {
                            return 1;
                        }
                        if !go {
                            exited = true;
                            break 'files;
                        }
                        continue;
                    }
                    if eof {
                        break;
                    }
                    let chunk = match &mut input {
                        Input::Data(d) => d.take(),
                        Input::Stream(src) => {
                            let src: Source = src.clone();
                            self.read_chunk(&src).await
                        }
                    };
                    match chunk {
                        Some(c) => {
                            pending.extend_from_slice(&c);
                            // Whole UTF-8 characters only; the rest waits for more.
                            let valid = match std::str::from_utf8(&pending) {
                                Ok(_) => pending.len(),
                                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                                Err(_) => pending.len(),
                            };
                            let text: Vec<u8> = pending.drain(..valid).collect();
                            buf.push_str(&String::from_utf8_lossy(&text));
                            if buf.len() > MAX_BUFFER {
                                self.err(fds, "awk: out of memory\n");
                                return 1;
                            }
                        }
                        None => {
                            if !pending.is_empty() {
                                buf.push_str(&String::from_utf8_lossy(&pending));
                                pending.clear();
                            }
                            eof = true;
                        }
                    }
                }
            }
        }
        let _ = exited;
        // END runs after `exit` in BEGIN or a rule too (an `exit` in END stops it).
        for b in &prog.end {
            awk.steps = 0;
            match awk.run_block(b) {
                Ok(Ctl::Exit) => break,
                Ok(_) => {}
                Err(e) if e.is_empty() => break,
                Err(e) => fail!(e),
            }
        }
        self.awk_flush(awk, fds);
        awk.exit_code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(num_to_str(3.0, "%.6g"), "3");
        assert_eq!(num_to_str(0.1 + 0.2, "%.6g"), "0.3");
        assert_eq!(num_to_str(1e20, "%.6g"), "1e+20");
        assert_eq!(num_to_str(-2.5, "%.6g"), "-2.5");
        assert_eq!(num_to_str(123456789.5, "%.6g"), "1.23457e+08");
        assert_eq!(fmt_g(0.0001234, 6, false, false), "0.0001234");
        assert_eq!(
            sprintf(
                "%5.2f|%-4d|%03d|%x|%c|%s|%%|%e",
                &[
                    Val::Num(2.5),
                    Val::Num(7.0),
                    Val::Num(5.0),
                    Val::Num(255.0),
                    Val::Num(65.0),
                    Val::Str("s".into()),
                    Val::Num(12345.678),
                ],
                "%.6g"
            ),
            " 2.50|7   |005|ff|A|s|%|1.234568e+04"
        );
        assert_eq!(str_to_num("  12abc"), 12.0);
        assert_eq!(str_to_num(".5"), 0.5);
        assert_eq!(str_to_num("x"), 0.0);
        assert_eq!(looks_numeric(" 1e3 "), Some(1000.0));
        assert_eq!(looks_numeric("1e"), None);
    }

    #[test]
    fn substitutions() {
        let re = Regex::new("o").unwrap();
        assert_eq!(substitute(&re, "foo boo", "0", true), ("f00 b00".into(), 4));
        assert_eq!(substitute(&re, "foo", "[&]", false), ("f[o]o".into(), 1));
        let empty = Regex::new("x*").unwrap();
        assert_eq!(substitute(&empty, "abc", "-", true), ("-a-b-c-".into(), 4));
    }
}
