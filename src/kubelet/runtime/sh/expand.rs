//! Parameter expansion: variables (shell, then the container's environment), special and
//! positional parameters, `${NAME:-word}` and friends, command substitution, and field
//! splitting on blanks.

use super::ast::{Param, ParamOp, Part, Word};
use super::interp::{Fds, Interp};

/// A blank that separates fields: space, tab or newline.
pub(super) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
}

impl Interp<'_> {
    pub(super) fn var(&self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None if self.no_env => None,
            None => self.shell.env(name),
        }
    }

    pub(super) fn set_var(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_string(), Some(value));
    }

    fn param(&self, p: &Param) -> Option<String> {
        match p {
            Param::Name(n) => self.var(n),
            Param::Positional(i) => self.args.get(*i).cloned(),
            Param::Status => Some(self.status.to_string()),
            Param::Count => Some(self.args.len().saturating_sub(1).to_string()),
            Param::All { .. } => Some(
                self.args
                    .iter()
                    .skip(1)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Param::Pid => Some("1".to_string()),
        }
    }

    fn param_value(&mut self, p: &Param, op: &ParamOp) -> String {
        let v = self.param(p);
        let unset_or_empty = |colon: bool, v: &Option<String>| match v {
            None => true,
            Some(s) => colon && s.is_empty(),
        };
        match op {
            ParamOp::Plain => v.unwrap_or_default(),
            ParamOp::Length => v.unwrap_or_default().chars().count().to_string(),
            ParamOp::Default { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    word.clone()
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Assign { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    if let Param::Name(n) = p {
                        self.set_var(n, word.clone());
                    }
                    word.clone()
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Alt { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    String::new()
                } else {
                    word.clone()
                }
            }
        }
    }

    /// Expand a word into fields (unquoted expansions split on blanks). Command substitutions
    /// run with `fds` (their standard error and input).
    pub(super) async fn expand_fields(&mut self, w: &Word, fds: &Fds, out: &mut Vec<String>) {
        let mut cur = String::new();
        let mut has = false;
        for part in &w.parts {
            match part {
                Part::Lit { text, quoted } => {
                    cur.push_str(text);
                    if *quoted || !text.is_empty() {
                        has = true;
                    }
                }
                Part::Param {
                    param: Param::All { star: false },
                    quoted: true,
                    op: ParamOp::Plain,
                } => {
                    for (i, a) in self.args.iter().skip(1).enumerate() {
                        if i > 0 {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(a);
                        has = true;
                    }
                }
                Part::Param {
                    param,
                    quoted: true,
                    op,
                } => {
                    let v = self.param_value(param, op);
                    cur.push_str(&v);
                    has = true;
                }
                Part::Subst { body, quoted: true } => {
                    let v = self.command_subst(body, fds).await;
                    cur.push_str(&v);
                    has = true;
                }
                Part::Param { quoted: false, .. } | Part::Subst { quoted: false, .. } => {
                    let v = match part {
                        Part::Param { param, op, .. } => self.param_value(param, op),
                        Part::Subst { body, .. } => self.command_subst(body, fds).await,
                        Part::Lit { text, .. } => text.clone(),
                    };
                    for ch in v.chars() {
                        if is_blank(ch) {
                            if has {
                                out.push(std::mem::take(&mut cur));
                                has = false;
                            }
                        } else {
                            cur.push(ch);
                            has = true;
                        }
                    }
                }
            }
        }
        if has {
            out.push(cur);
        }
    }

    /// Expand a word into one string (assignments, redirection targets, here-documents).
    pub(super) async fn expand_string(&mut self, w: &Word, fds: &Fds) -> String {
        let mut s = String::new();
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { param, op, .. } => {
                    let v = self.param_value(param, op);
                    s.push_str(&v);
                }
                Part::Subst { body, .. } => {
                    let v = self.command_subst(body, fds).await;
                    s.push_str(&v);
                }
            }
        }
        s
    }
}
