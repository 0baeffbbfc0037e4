//! `test`, `[` and `[[`: POSIX's rules by argument count, and a recursive parser for longer
//! expressions (`!`, `-a`, `-o`, `( )`); file tests ask the [`Shell`](super::super::Shell).
//! `[[ ]]` is ash's: the same expressions, with `&&` and `||` for `-a` and `-o`, `=`/`==`/`!=`
//! matching a pattern and `=~` an extended regular expression.

use super::super::expand::is_blank;
use super::super::glob;
use super::super::interp::{Fds, Interp};
use super::super::MAX_TEST_DEPTH;

impl Interp<'_> {
    /// `[[ EXPR ]]`.
    pub(super) fn cmd_test2(&mut self, args: &[String], fds: &Fds) -> i32 {
        let args = match args.split_last() {
            Some((last, rest)) if last == "]]" => rest,
            _ => {
                self.err(fds, "sh: missing ]]\n");
                return 2;
            }
        };
        self.bash_test = true;
        let r = self.test(args);
        self.bash_test = false;
        match r {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(msg) if msg.is_empty() => 2,
            Err(msg) => {
                self.err(fds, &format!("sh: {msg}\n"));
                2
            }
        }
    }

    pub(super) fn cmd_test(&mut self, args: &[String], fds: &Fds, bracket: bool) -> i32 {
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
                if self.is_binop(s(1)) {
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
            and: if self.bash_test { "&&" } else { "-a" },
            or: if self.bash_test { "||" } else { "-o" },
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

    /// Whether `op` is a binary operator (`[[ ]]` has `&&`, `||` and `=~` instead of `-a`
    /// and `-o`).
    fn is_binop(&self, op: &str) -> bool {
        if self.bash_test {
            matches!(op, "&&" | "||" | "=~") || (is_binary(op) && op != "-a" && op != "-o")
        } else {
            is_binary(op)
        }
    }

    fn binary(&self, l: &str, op: &str, r: &str) -> Result<bool, String> {
        if self.bash_test {
            match op {
                "=" | "==" => return Ok(glob::matches(r, l)),
                "!=" => return Ok(!glob::matches(r, l)),
                "=~" => {
                    // A bad expression fails silently with status 2.
                    let re = super::text::posix_to_regex(r, true)
                        .and_then(|re| regex::Regex::new(&re).ok())
                        .ok_or_else(String::new)?;
                    return Ok(re.is_match(l));
                }
                _ => {}
            }
        }
        Ok(match op {
            "=" | "==" => l == r,
            "!=" => l != r,
            "<" => l < r,
            ">" => l > r,
            "-a" | "&&" => !l.is_empty() && !r.is_empty(),
            "-o" | "||" => !l.is_empty() || !r.is_empty(),
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
    /// `-a` (`&&` in `[[ ]]`).
    and: &'static str,
    /// `-o` (`||` in `[[ ]]`).
    or: &'static str,
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
        while self.peek(0) == Some(self.or) {
            self.i += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek(0) == Some(self.and) {
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
            if self.interp.is_binop(op) && op != self.and && op != self.or {
                let v = self.interp.binary(t, op, r)?;
                self.i += 3;
                return Ok(v);
            }
        }
        self.i += 1;
        Ok(!t.is_empty())
    }
}
