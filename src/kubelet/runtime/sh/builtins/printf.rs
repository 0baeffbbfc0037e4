//! `printf` and the backslash escapes it shares with `echo -e`: conversions `%s %b %c %d %i %u
//! %x %X %o %f %%` with flags, width and precision.

use super::super::expand::is_blank;
use super::super::interp::{Fds, Interp};

/// Largest `printf` field width or precision honoured.
const MAX_WIDTH: usize = 1 << 20;

impl Interp<'_> {
    pub(super) fn cmd_printf(&mut self, args: &[String], fds: &Fds) -> i32 {
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
}

/// Backslash escapes of `echo -e` / `%b` (`echo_style`: `\0NNN` octal) or of a printf format
/// (`\NNN` octal): the bytes, and whether `\c` asked to stop all output.
pub(super) fn unescape(s: &str, echo_style: bool) -> (Vec<u8>, bool) {
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
        let spec = Spec::parse(fmt, &mut i);
        let Some(&conv) = fmt.get(i) else {
            let spec: String = fmt.get(spec_start..).unwrap_or(&[]).iter().collect();
            return Err(format!("printf: {spec}: invalid format\n"));
        };
        i += 1;
        let text: Vec<u8> = match conv {
            '%' => b"%".to_vec(),
            's' => {
                let mut s = next_arg(ai).unwrap_or_default();
                if let Some(p) = spec.precision {
                    s = s.chars().take(p).collect();
                }
                pad(&s, spec.width, spec.left, false).into_bytes()
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
                pad(&s, spec.width, spec.left, false).into_bytes()
            }
            'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
                format_integer(conv, &next_arg(ai).unwrap_or_default(), &spec, errors).into_bytes()
            }
            'f' => format_float(&next_arg(ai).unwrap_or_default(), &spec, errors).into_bytes(),
            other => return Err(format!("printf: %{other}: invalid format\n")),
        };
        out.extend_from_slice(&text);
    }
    Ok(false)
}

/// The flags, field width and precision of one conversion (`%-08.3d`).
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
}

impl Spec {
    /// Read the flags, width and precision at `fmt[*i..]`, leaving `*i` at the conversion letter.
    fn parse(fmt: &[char], i: &mut usize) -> Spec {
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = fmt.get(*i) {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            *i += 1;
        }
        let width = decimal(fmt, i);
        let mut precision: Option<usize> = None;
        if fmt.get(*i) == Some(&'.') {
            *i += 1;
            precision = Some(decimal(fmt, i));
        }
        Spec {
            left,
            zero,
            plus,
            space,
            width,
            precision,
        }
    }

    /// The sign a number prints with: `-`, else what the `+` or ` ` flag asks for.
    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

/// The digits of a width or precision at `fmt[*i..]` (0 when there are none), capped at
/// [`MAX_WIDTH`].
fn decimal(fmt: &[char], i: &mut usize) -> usize {
    let mut n = 0usize;
    while let Some(d) = fmt.get(*i).and_then(|d| d.to_digit(10)) {
        n = n
            .saturating_mul(10)
            .saturating_add(d as usize)
            .min(MAX_WIDTH);
        *i += 1;
    }
    n
}

/// `%d %i %u %x %X %o` of argument `a` (0, reported in `errors`, when it is not a number).
fn format_integer(conv: char, a: &str, spec: &Spec, errors: &mut String) -> String {
    let n = match printf_number(a) {
        Some(n) => n,
        None => {
            errors.push_str(&format!("printf: invalid number '{a}'\n"));
            0
        }
    };
    let s = match conv {
        'd' | 'i' => {
            let sign = spec.sign(n < 0);
            format!("{sign}{}", n.unsigned_abs())
        }
        'u' => format!("{}", n as u64),
        'x' => format!("{:x}", n as u64),
        'X' => format!("{:X}", n as u64),
        _ => format!("{:o}", n as u64),
    };
    pad(&s, spec.width, spec.left, spec.zero)
}

/// `%f` of argument `a` (0, reported in `errors`, when it is not a finite number).
fn format_float(a: &str, spec: &Spec, errors: &mut String) -> String {
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
    let p = spec.precision.unwrap_or(6).min(64);
    let sign = spec.sign(v < 0.0);
    pad(
        &format!("{sign}{:.*}", p, v.abs()),
        spec.width,
        spec.left,
        spec.zero,
    )
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
