//! Shell patterns (`*`, `?`, `[...]` with ranges, `!`/`^` negation and `[:class:]`, `\`
//! escapes), as `case`, `[[ = ]]`, `${X#pattern}` and pathname expansion match them (fnmatch
//! without flags; pathname expansion matches one path component at a time, and a leading `.`
//! only explicitly).

/// Characters that make a word a pattern.
pub(super) fn is_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '[')
}

/// `s` with the pattern characters escaped: a pattern matching exactly `s`.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `pattern` without its escapes: the text it stands for when nothing matches it.
pub(super) fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Whether `pattern` has an unescaped `*`, `?` or `[`.
pub(super) fn has_meta(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if is_meta(c) {
            return true;
        }
    }
    false
}

/// One element of a compiled pattern.
#[derive(Debug, Clone)]
enum Elem {
    Char(char),
    Any,
    Star,
    /// A bracket expression: (negated, items).
    Class(bool, Vec<ClassItem>),
}

#[derive(Debug, Clone)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Named(String),
}

fn compile(pattern: &str) -> Vec<Elem> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some(&n) => out.push(Elem::Char(n)),
                    None => out.push(Elem::Char('\\')),
                }
                i += 2;
            }
            '*' => {
                if !matches!(out.last(), Some(Elem::Star)) {
                    out.push(Elem::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Elem::Any);
                i += 1;
            }
            '[' => match bracket(&chars, i + 1) {
                Some((elem, next)) => {
                    out.push(elem);
                    i = next;
                }
                None => {
                    out.push(Elem::Char('['));
                    i += 1;
                }
            },
            c => {
                out.push(Elem::Char(c));
                i += 1;
            }
        }
    }
    out
}

/// A bracket expression starting after its `[` at `i`: the element and where it ends; None
/// when it is not closed (the `[` is then an ordinary character).
fn bracket(chars: &[char], mut i: usize) -> Option<(Elem, usize)> {
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Elem::Class(negated, items), i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars.get(i + 2..)?.iter().collect();
            if let Some(end) = rest.find(":]") {
                items.push(ClassItem::Named(rest.get(..end)?.to_string()));
                i += 2 + end + 2;
                continue;
            }
        }
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = *chars.get(i + 1)?;
            i += 2;
            if hi == '\\' {
                hi = *chars.get(i)?;
                i += 1;
            }
            items.push(ClassItem::Range(lo, hi));
        } else {
            items.push(ClassItem::Char(lo));
        }
    }
}

fn class_has(name: &str, c: char) -> bool {
    match name {
        "alpha" => c.is_ascii_alphabetic(),
        "digit" => c.is_ascii_digit(),
        "alnum" => c.is_ascii_alphanumeric(),
        "upper" => c.is_ascii_uppercase(),
        "lower" => c.is_ascii_lowercase(),
        "space" => c.is_ascii_whitespace() || c == '\x0b',
        "blank" => c == ' ' || c == '\t',
        "punct" => c.is_ascii_punctuation(),
        "print" => (' '..='~').contains(&c),
        "graph" => ('!'..='~').contains(&c),
        "cntrl" => c.is_ascii_control(),
        "xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

fn elem_matches(e: &Elem, c: char) -> bool {
    match e {
        Elem::Char(x) => *x == c,
        Elem::Any => true,
        Elem::Star => true,
        Elem::Class(negated, items) => {
            let hit = items.iter().any(|it| match it {
                ClassItem::Char(x) => *x == c,
                ClassItem::Range(lo, hi) => (*lo..=*hi).contains(&c),
                ClassItem::Named(n) => class_has(n, c),
            });
            hit != *negated
        }
    }
}

/// Whether `text` matches `pattern` as a whole.
pub(super) fn matches(pattern: &str, text: &str) -> bool {
    let elems = compile(pattern);
    let text: Vec<char> = text.chars().collect();
    matches_compiled(&elems, &text)
}

/// The classic greedy match with one backtracking point (the last `*`): linear in practice,
/// quadratic at worst.
fn matches_compiled(elems: &[Elem], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match elems.get(p) {
            Some(Elem::Star) => {
                star = Some((p, t));
                p += 1;
            }
            Some(e) if text.get(t).is_some_and(|&c| elem_matches(e, c)) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    elems
        .get(p..)
        .unwrap_or(&[])
        .iter()
        .all(|e| matches!(e, Elem::Star))
}

/// The byte length of the shortest (`longest`: longest) prefix of `text` matching `pattern`.
pub(super) fn prefix_match(pattern: &str, text: &str, longest: bool) -> Option<usize> {
    let elems = compile(pattern);
    let chars: Vec<char> = text.chars().collect();
    let ends: Vec<usize> = std::iter::once(0)
        .chain(text.char_indices().map(|(i, c)| i + c.len_utf8()))
        .collect();
    let try_n = |n: usize| matches_compiled(&elems, chars.get(..n).unwrap_or(&[]));
    let found = if longest {
        (0..=chars.len()).rev().find(|&n| try_n(n))
    } else {
        (0..=chars.len()).find(|&n| try_n(n))
    };
    found.and_then(|n| ends.get(n).copied())
}

/// The byte offset where the shortest (`longest`: longest) suffix of `text` matching
/// `pattern` starts.
pub(super) fn suffix_match(pattern: &str, text: &str, longest: bool) -> Option<usize> {
    let elems = compile(pattern);
    let chars: Vec<char> = text.chars().collect();
    let starts: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let try_n = |n: usize| matches_compiled(&elems, chars.get(n..).unwrap_or(&[]));
    let found = if longest {
        (0..=chars.len()).find(|&n| try_n(n))
    } else {
        (0..=chars.len()).rev().find(|&n| try_n(n))
    };
    found.and_then(|n| starts.get(n).copied())
}

/// Whether a directory entry `name` matches one pattern component: a leading `.` only
/// explicitly, `.` and `..` never by a pattern.
pub(super) fn component_matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') && !pattern.starts_with("\\.") {
        return false;
    }
    matches(pattern, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "a.txt.gz"));
        assert!(matches("a?c", "abc"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("[^a-c]x", "dx"));
        assert!(matches("[[:digit:]]*", "7up"));
        assert!(matches("[]]", "]"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("[", "["));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("é?", "éa"));
        assert_eq!(prefix_match("*/", "a/b/c", false), Some(2));
        assert_eq!(prefix_match("*/", "a/b/c", true), Some(4));
        assert_eq!(prefix_match("x", "a/b/c", true), None);
        assert_eq!(suffix_match(".*", "f.tar.gz", false), Some(5));
        assert_eq!(suffix_match(".*", "f.tar.gz", true), Some(1));
        assert_eq!(suffix_match("", "abc", true), Some(3));
        assert!(!component_matches("*", ".hidden"));
        assert!(component_matches(".*", ".hidden"));
        assert_eq!(unescape(&escape("a*[b]\\")), "a*[b]\\");
        assert!(has_meta("a*") && !has_meta("a\\*"));
    }
}
