//! Arithmetic, as busybox 1.36's `$((...))` and `let` evaluate it: 64-bit signed integers
//! (wrapping), decimal, octal (`0`), hexadecimal (`0x`) and `BASE#digits` constants, variables
//! without `$` (an unset or empty one is 0, a value is itself evaluated as an expression), the
//! C operators by C's precedence (`, = += -= *= /= %= <<= >>= &= ^= |= ?: || && | ^ & == != <
//! <= > >= << >> + - * / % **`, unary `! ~ - +`, `++`/`--` before and after a variable) and
//! parentheses. As in ash, both sides of `&&`, `||` and `?:` are evaluated.

/// Where arithmetic reads and writes shell variables.
pub(super) trait Vars {
    fn get(&self, name: &str) -> Option<String>;
    fn set(&mut self, name: &str, value: String);
}

const SYNTAX: &str = "arithmetic syntax error";
/// Nesting limit of parentheses, unary operators and variables evaluated as expressions.
const MAX_NESTING: usize = 64;

/// Evaluate `expr`; Err with ash's message.
pub(super) fn eval(expr: &str, vars: &mut dyn Vars) -> Result<i64, String> {
    let mut names = Vec::new();
    eval_nested(expr, vars, &mut names)
}

fn eval_nested(expr: &str, vars: &mut dyn Vars, names: &mut Vec<String>) -> Result<i64, String> {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        vars,
        names,
        depth: 0,
        ternary: 0,
    };
    p.skip_ws();
    if p.i >= p.s.len() {
        return Ok(0);
    }
    let v = p.expr(1)?;
    let v = p.value(v)?;
    p.skip_ws();
    if p.i < p.s.len() {
        return Err(SYNTAX.into());
    }
    Ok(v)
}

/// An operand: a number, or a variable not yet read (it may be assigned to).
enum Operand {
    Num(i64),
    Var(String),
}

struct Parser<'x> {
    s: &'x [u8],
    i: usize,
    vars: &'x mut dyn Vars,
    /// Variables being evaluated as expressions (a loop is an error).
    names: &'x mut Vec<String>,
    depth: usize,
    /// `?` whose `:` is still to come.
    ternary: usize,
}

/// Binary operators: (text, precedence, right associative, assignment).
const BINARY: &[(&str, u8, bool, bool)] = &[
    ("<<=", 2, true, true),
    (">>=", 2, true, true),
    ("<<", 12, false, false),
    (">>", 12, false, false),
    ("||", 5, false, false),
    ("&&", 6, false, false),
    ("!=", 10, false, false),
    ("<=", 11, false, false),
    (">=", 11, false, false),
    ("==", 10, false, false),
    ("|=", 2, true, true),
    ("&=", 2, true, true),
    ("*=", 2, true, true),
    ("/=", 2, true, true),
    ("%=", 2, true, true),
    ("+=", 2, true, true),
    ("-=", 2, true, true),
    ("^=", 2, true, true),
    ("**", 15, true, false),
    ("<", 11, false, false),
    (">", 11, false, false),
    ("=", 2, true, true),
    ("|", 7, false, false),
    ("&", 9, false, false),
    ("*", 14, false, false),
    ("/", 14, false, false),
    ("%", 14, false, false),
    ("+", 13, false, false),
    ("-", 13, false, false),
    ("^", 8, false, false),
    (",", 1, false, false),
    ("?", 4, true, false),
];

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

fn apply(op: &str, l: i64, r: i64) -> Result<i64, String> {
    Ok(match op {
        "+" => l.wrapping_add(r),
        "-" => l.wrapping_sub(r),
        "*" => l.wrapping_mul(r),
        "/" | "%" => {
            if r == 0 {
                return Err("divide by zero".into());
            }
            if op == "/" {
                l.wrapping_div(r)
            } else {
                l.wrapping_rem(r)
            }
        }
        "<<" => l.wrapping_shl(r as u32),
        ">>" => l.wrapping_shr(r as u32),
        "&" => l & r,
        "|" => l | r,
        "^" => l ^ r,
        "&&" => i64::from(l != 0 && r != 0),
        "||" => i64::from(l != 0 || r != 0),
        "==" => i64::from(l == r),
        "!=" => i64::from(l != r),
        "<" => i64::from(l < r),
        "<=" => i64::from(l <= r),
        ">" => i64::from(l > r),
        ">=" => i64::from(l >= r),
        "**" => {
            if r < 0 {
                return Err("exponent less than 0".into());
            }
            let (mut base, mut exp, mut acc) = (l, r as u64, 1i64);
            while exp > 0 {
                if exp & 1 == 1 {
                    acc = acc.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                exp >>= 1;
            }
            acc
        }
        "," => r,
        _ => return Err(SYNTAX.into()),
    })
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        {
            self.i += 1;
        }
    }

    fn at(&self, text: &str) -> bool {
        self.s
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(text.as_bytes()))
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err("expression nested too deeply".into());
        }
        Ok(())
    }

    /// A variable's value as a number: its text evaluated as an expression.
    fn lookup(&mut self, name: &str) -> Result<i64, String> {
        let Some(text) = self.vars.get(name) else {
            return Ok(0);
        };
        if self.names.iter().any(|n| n == name) {
            return Err("expression recursion loop detected".into());
        }
        if self.names.len() >= MAX_NESTING {
            return Err("expression nested too deeply".into());
        }
        self.names.push(name.to_string());
        let v = eval_nested(&text, &mut *self.vars, &mut *self.names);
        self.names.pop();
        v
    }

    fn value(&mut self, o: Operand) -> Result<i64, String> {
        match o {
            Operand::Num(n) => Ok(n),
            Operand::Var(name) => self.lookup(&name),
        }
    }

    fn set(&mut self, name: &str, v: i64) {
        self.vars.set(name, v.to_string());
    }

    /// The binary operator at the cursor (not consumed).
    fn binary_op(&self) -> Option<(&'static str, u8, bool, bool)> {
        BINARY.iter().copied().find(|(t, ..)| self.at(t))
    }

    fn expr(&mut self, min_prec: u8) -> Result<Operand, String> {
        self.deeper()?;
        let mut lhs = self.unary()?;
        loop {
            self.skip_ws();
            if self.at(":") {
                if self.ternary > 0 {
                    break;
                }
                return Err("malformed ?: operator".into());
            }
            let Some((op, prec, right, assign)) = self.binary_op() else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.i += op.len();
            if assign {
                let Operand::Var(name) = lhs else {
                    return Err(SYNTAX.into());
                };
                let rhs = self.expr(prec)?;
                let r = self.value(rhs)?;
                let v = if op == "=" {
                    r
                } else {
                    let l = self.lookup(&name)?;
                    apply(op.trim_end_matches('='), l, r)?
                };
                self.set(&name, v);
                lhs = Operand::Num(v);
                continue;
            }
            if op == "?" {
                let cond = self.value(lhs)?;
                self.ternary += 1;
                let yes = self.expr(1);
                self.ternary -= 1;
                let yes = yes?;
                let yes = self.value(yes)?;
                self.skip_ws();
                if !self.at(":") {
                    return Err("malformed ?: operator".into());
                }
                self.i += 1;
                let no = self.expr(4)?;
                let no = self.value(no)?;
                lhs = Operand::Num(if cond != 0 { yes } else { no });
                continue;
            }
            let l = self.value(lhs)?;
            let rhs = self.expr(if right { prec } else { prec + 1 })?;
            let r = self.value(rhs)?;
            lhs = Operand::Num(apply(op, l, r)?);
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn name(&mut self) -> String {
        let start = self.i;
        while self.s.get(self.i).copied().is_some_and(is_name_char) {
            self.i += 1;
        }
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or(&[])).into_owned()
    }

    fn unary(&mut self) -> Result<Operand, String> {
        self.deeper()?;
        self.skip_ws();
        let Some(&b) = self.s.get(self.i) else {
            return Err(SYNTAX.into());
        };
        let operand = if (self.at("++") || self.at("--")) && {
            let mut j = self.i + 2;
            while self
                .s
                .get(j)
                .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n'))
            {
                j += 1;
            }
            self.s.get(j).copied().is_some_and(is_name_start)
        } {
            let inc = b == b'+';
            self.i += 2;
            self.skip_ws();
            let name = self.name();
            let v = self.lookup(&name)?;
            let v = if inc {
                v.wrapping_add(1)
            } else {
                v.wrapping_sub(1)
            };
            self.set(&name, v);
            Operand::Num(v)
        } else {
            match b {
                b'!' | b'~' | b'-' | b'+' => {
                    self.i += 1;
                    let o = self.unary()?;
                    let v = self.value(o)?;
                    Operand::Num(match b {
                        b'!' => i64::from(v == 0),
                        b'~' => !v,
                        b'-' => v.wrapping_neg(),
                        _ => v,
                    })
                }
                b'(' => {
                    self.i += 1;
                    let o = self.expr(1)?;
                    let v = self.value(o)?;
                    self.skip_ws();
                    if !self.at(")") {
                        return Err(SYNTAX.into());
                    }
                    self.i += 1;
                    Operand::Num(v)
                }
                b if b.is_ascii_digit() => Operand::Num(self.number()),
                b if is_name_start(b) => {
                    let name = self.name();
                    self.skip_ws();
                    if self.at("++") || self.at("--") {
                        let inc = self.at("++");
                        self.i += 2;
                        let v = self.lookup(&name)?;
                        let new = if inc {
                            v.wrapping_add(1)
                        } else {
                            v.wrapping_sub(1)
                        };
                        self.set(&name, new);
                        Operand::Num(v)
                    } else {
                        Operand::Var(name)
                    }
                }
                _ => return Err(SYNTAX.into()),
            }
        };
        self.depth -= 1;
        Ok(operand)
    }

    /// A constant as C's strtoull with base 0 reads it (an overflow is 0), then `BASE#digits`.
    fn number(&mut self) -> i64 {
        let s = self.s;
        let start = self.i;
        let (radix, digits_from) = if s.get(start) == Some(&b'0')
            && matches!(s.get(start + 1), Some(b'x' | b'X'))
            && s.get(start + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            (16, start + 2)
        } else if s.get(start) == Some(&b'0') {
            (8, start)
        } else {
            (10, start)
        };
        let mut j = digits_from;
        while s.get(j).is_some_and(|&c| (c as char).is_digit(radix)) {
            j += 1;
        }
        let text = String::from_utf8_lossy(s.get(digits_from..j).unwrap_or(&[])).into_owned();
        let n = u64::from_str_radix(&text, radix).unwrap_or(0) as i64;
        self.i = j;
        // BASE#digits: BASE 2..64, not starting with 0.
        if s.get(self.i) == Some(&b'#') && radix == 10 && (2..=64).contains(&n) {
            let base = n as u32;
            self.i += 1;
            let mut v: i64 = 0;
            while let Some(&c) = s.get(self.i) {
                let d = match c {
                    b'0'..=b'9' => u32::from(c - b'0'),
                    b'a'..=b'z' => u32::from(c - b'a') + 10,
                    b'A'..=b'Z' if base <= 36 => u32::from(c - b'A') + 10,
                    b'A'..=b'Z' => u32::from(c - b'A') + 36,
                    b'@' if base > 36 => 62,
                    b'_' if base > 36 => 63,
                    _ => break,
                };
                if d >= base {
                    break;
                }
                v = v.wrapping_mul(i64::from(base)).wrapping_add(i64::from(d));
                self.i += 1;
            }
            return v;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl Vars for HashMap<String, String> {
        fn get(&self, name: &str) -> Option<String> {
            HashMap::get(self, name).cloned()
        }
        fn set(&mut self, name: &str, value: String) {
            self.insert(name.to_string(), value);
        }
    }

    fn ev(s: &str) -> Result<i64, String> {
        eval(s, &mut HashMap::new())
    }

    #[test]
    fn arithmetic() {
        assert_eq!(ev("1 + 2 * 3"), Ok(7));
        assert_eq!(ev("(1 + 2) * 3"), Ok(9));
        assert_eq!(ev("2 ** 3 ** 2"), Ok(512));
        assert_eq!(ev("-2 ** 2"), Ok(4));
        assert_eq!(ev("7 / 2, 7 % 3"), Ok(1));
        assert_eq!(ev("1 < 2 && 2 >= 2 || 0"), Ok(1));
        assert_eq!(ev("!0 + ~0"), Ok(0));
        assert_eq!(ev("0x1f + 010 + 2#101 + 16#fF"), Ok(31 + 8 + 5 + 255));
        assert_eq!(ev("1 ? 2 : 3"), Ok(2));
        assert_eq!(ev("0 ? 2 : 0 ? 3 : 4"), Ok(4));
        assert_eq!(ev("1 << 4 >> 2"), Ok(4));
        assert_eq!(ev("5 & 3 | 8 ^ 1"), Ok(1 | 9));
        assert_eq!(ev(""), Ok(0));
        assert_eq!(ev("  "), Ok(0));
        assert_eq!(ev("9223372036854775807 + 1"), Ok(i64::MIN));
        assert_eq!(ev("1 / 0"), Err("divide by zero".into()));
        assert_eq!(ev("2 ** -1"), Err("exponent less than 0".into()));
        assert_eq!(ev("1 +"), Err(SYNTAX.into()));
        assert_eq!(ev("08"), Err(SYNTAX.into()));
        assert_eq!(ev("(1"), Err(SYNTAX.into()));
        assert_eq!(ev("1 ? 2"), Err("malformed ?: operator".into()));
        assert_eq!(ev("1 = 2"), Err(SYNTAX.into()));
        let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(ev(&deep).is_err());
    }

    #[test]
    fn variables() {
        let mut v: HashMap<String, String> = HashMap::new();
        v.insert("x".into(), "5".into());
        v.insert("e".into(), "x * 2".into());
        assert_eq!(eval("x + e + nope", &mut v), Ok(15));
        assert_eq!(eval("y = x++ + ++x", &mut v), Ok(12));
        assert_eq!(v["x"], "7");
        assert_eq!(v["y"], "12");
        assert_eq!(eval("x += 3, x *= 2, x", &mut v), Ok(20));
        assert_eq!(eval("a+++x", &mut v), Ok(20));
        assert_eq!(v["a"], "1");
        assert_eq!(eval("7+++x", &mut v), Ok(28));
        v.insert("p".into(), "q".into());
        v.insert("q".into(), "p".into());
        assert_eq!(
            eval("p", &mut v),
            Err("expression recursion loop detected".into())
        );
        // Both sides of || run.
        assert_eq!(eval("1 || (z = 4)", &mut v), Ok(1));
        assert_eq!(v["z"], "4");
    }
}
