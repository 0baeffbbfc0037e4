//! Word expansion: tilde, parameters (shell variables, then the container's environment;
//! special and positional parameters; `${NAME:-word}`, `${NAME#pattern}` and friends),
//! arithmetic, command substitution, field splitting on blanks, and pathname expansion against
//! the [`Shell`](super::Shell)'s directories.

use super::ast::{Param, ParamOp, Part, Word};
use super::glob;
use super::interp::{Fds, Interp};
use super::io::MAX_BUFFER;

type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A blank that separates fields: space, tab or newline.
pub(super) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
}

/// Most paths one pathname expansion produces.
const MAX_GLOB_RESULTS: usize = 100_000;

/// Fields being built: each with its text and, for pathname expansion, its pattern (quoted
/// characters escaped) and whether it has unquoted pattern characters.
#[derive(Default)]
struct Fields {
    done: Vec<(String, String, bool)>,
    text: String,
    pat: String,
    glob: bool,
    /// The current field exists (even if empty: `""`).
    has: bool,
}

impl Fields {
    fn quoted(&mut self, s: &str) {
        self.text.push_str(s);
        self.pat.push_str(&glob::escape(s));
        self.has = true;
    }

    /// Unquoted literal text of the word: its pattern characters are special.
    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.pat.push_str(s);
        if s.chars().any(glob::is_meta) {
            self.glob = true;
        }
        if !s.is_empty() {
            self.has = true;
        }
    }

    /// An unquoted expansion's result: split on blanks, pattern characters special.
    fn split(&mut self, s: &str) {
        for ch in s.chars() {
            if is_blank(ch) {
                self.end();
            } else {
                self.text.push(ch);
                if ch == '\\' {
                    self.pat.push('\\');
                }
                self.pat.push(ch);
                if glob::is_meta(ch) {
                    self.glob = true;
                }
                self.has = true;
            }
        }
    }

    fn end(&mut self) {
        if self.has {
            self.done.push((
                std::mem::take(&mut self.text),
                std::mem::take(&mut self.pat),
                self.glob,
            ));
        }
        self.text.clear();
        self.pat.clear();
        self.glob = false;
        self.has = false;
    }
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
            Param::LastJob => self.last_job.map(|p| p.to_string()),
        }
    }

    fn param_name(p: &Param) -> String {
        match p {
            Param::Name(n) => n.clone(),
            Param::Positional(i) => i.to_string(),
            Param::Status => "?".into(),
            Param::Count => "#".into(),
            Param::All { star: false } => "@".into(),
            Param::All { star: true } => "*".into(),
            Param::Pid => "$".into(),
            Param::LastJob => "!".into(),
        }
    }

    /// The value of a parameter expansion; an error (said, and `expand_failed` set) gives "".
    fn param_value<'a>(
        &'a mut self,
        p: &'a Param,
        op: &'a ParamOp,
        fds: &'a Fds,
    ) -> BoxFut<'a, String> {
        Box::pin(self.param_value_inner(p, op, fds))
    }

    async fn param_value_inner(&mut self, p: &Param, op: &ParamOp, fds: &Fds) -> String {
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
                    self.expand_string(word, fds).await
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Assign { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    let w = self.expand_string(word, fds).await;
                    if let Param::Name(n) = p {
                        self.set_var(n, w.clone());
                    }
                    w
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::Alt { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    String::new()
                } else {
                    self.expand_string(word, fds).await
                }
            }
            ParamOp::Error { colon, word } => {
                if unset_or_empty(*colon, &v) {
                    let msg = if word.parts.is_empty() {
                        if *colon {
                            "parameter not set or null".to_string()
                        } else {
                            "parameter not set".to_string()
                        }
                    } else {
                        self.expand_string(word, fds).await
                    };
                    let name = Self::param_name(p);
                    self.err(fds, &format!("sh: {name}: {msg}\n"));
                    self.expand_failed = true;
                    String::new()
                } else {
                    v.unwrap_or_default()
                }
            }
            ParamOp::TrimPrefix { longest, pattern } => {
                let v = v.unwrap_or_default();
                let pat = self.expand_pattern(pattern, fds).await;
                match glob::prefix_match(&pat, &v, *longest) {
                    Some(n) => v.get(n..).unwrap_or("").to_string(),
                    None => v,
                }
            }
            ParamOp::TrimSuffix { longest, pattern } => {
                let v = v.unwrap_or_default();
                let pat = self.expand_pattern(pattern, fds).await;
                match glob::suffix_match(&pat, &v, *longest) {
                    Some(n) => v.get(..n).unwrap_or("").to_string(),
                    None => v,
                }
            }
        }
    }

    /// `$((expr))`: the expression expanded, then evaluated; an error is said and fails the
    /// expansion.
    fn arith_value<'a>(&'a mut self, expr: &'a Word, fds: &'a Fds) -> BoxFut<'a, String> {
        Box::pin(async move {
            let text = self.expand_string(expr, fds).await;
            match self.arith(&text) {
                Ok(v) => v.to_string(),
                Err(e) => {
                    self.err(fds, &format!("sh: {e}\n"));
                    self.expand_failed = true;
                    String::new()
                }
            }
        })
    }

    /// The home directory `~` stands for.
    fn home(&self) -> String {
        self.var("HOME").unwrap_or_else(|| "/root".to_string())
    }

    /// A leading `~` or `~/...` (or `~root`) of an unquoted first part, expanded.
    fn tilde<'w>(&self, text: &'w str) -> Option<(String, &'w str)> {
        let rest = text.strip_prefix('~')?;
        let end = rest.find('/').unwrap_or(rest.len());
        let user = rest.get(..end)?;
        let home = match user {
            "" => self.home(),
            "root" => "/root".to_string(),
            _ => return None,
        };
        Some((home, rest.get(end..)?))
    }

    /// Expand a word into fields (unquoted expansions split on blanks, then pathname
    /// expansion). Command substitutions run with `fds` (their standard error and input).
    pub(super) async fn expand_fields(&mut self, w: &Word, fds: &Fds, out: &mut Vec<String>) {
        let mut f = Fields::default();
        let mut size = 0usize;
        for (i, part) in w.parts.iter().enumerate() {
            if self.out_of_memory(size, fds) {
                return;
            }
            match part {
                Part::Lit {
                    text,
                    quoted: false,
                } => {
                    if i == 0 {
                        if let Some((home, rest)) = self.tilde(text) {
                            f.quoted(&home);
                            f.literal(rest);
                            continue;
                        }
                    }
                    f.literal(text);
                }
                Part::Lit { text, quoted: true } => f.quoted(text),
                Part::Param {
                    param: Param::All { star: false },
                    quoted: true,
                    op: ParamOp::Plain,
                } => {
                    let args: Vec<String> = self.args.iter().skip(1).cloned().collect();
                    for (i, a) in args.iter().enumerate() {
                        if i > 0 {
                            f.end();
                        }
                        size = size.saturating_add(a.len());
                        f.quoted(a);
                    }
                }
                Part::Param {
                    param,
                    quoted: true,
                    op,
                } => {
                    let v = self.param_value(param, op, fds).await;
                    size = size.saturating_add(v.len());
                    f.quoted(&v);
                }
                Part::Subst { body, quoted: true } => {
                    let v = self.command_subst(body, fds).await;
                    size = size.saturating_add(v.len());
                    f.quoted(&v);
                }
                Part::Arith { expr, quoted: true } => {
                    let v = self.arith_value(expr, fds).await;
                    size = size.saturating_add(v.len());
                    f.quoted(&v);
                }
                Part::Param {
                    param,
                    op,
                    quoted: false,
                } => {
                    let v = self.param_value(param, op, fds).await;
                    size = size.saturating_add(v.len());
                    f.split(&v);
                }
                Part::Subst {
                    body,
                    quoted: false,
                } => {
                    let v = self.command_subst(body, fds).await;
                    size = size.saturating_add(v.len());
                    f.split(&v);
                }
                Part::Arith {
                    expr,
                    quoted: false,
                } => {
                    let v = self.arith_value(expr, fds).await;
                    size = size.saturating_add(v.len());
                    f.split(&v);
                }
            }
        }
        if self.out_of_memory(size, fds) {
            return;
        }
        f.end();
        for (text, pat, has_glob) in f.done {
            if has_glob && !self.noglob {
                let found = self.glob_paths(&pat);
                if !found.is_empty() {
                    out.extend(found);
                    continue;
                }
            }
            out.push(text);
        }
    }

    /// Expand a word into one string (redirection targets, here-documents, `case` words).
    pub(super) async fn expand_string(&mut self, w: &Word, fds: &Fds) -> String {
        let mut s = String::new();
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => s.push_str(text),
                Part::Param { param, op, .. } => {
                    let v = self.param_value(param, op, fds).await;
                    s.push_str(&v);
                }
                Part::Subst { body, .. } => {
                    let v = self.command_subst(body, fds).await;
                    s.push_str(&v);
                }
                Part::Arith { expr, .. } => {
                    let v = self.arith_value(expr, fds).await;
                    s.push_str(&v);
                }
            }
            if self.out_of_memory(s.len(), fds) {
                return String::new();
            }
        }
        s
    }

    /// Whether a word being expanded has grown past what the container's memory would hold
    /// (here [`MAX_BUFFER`]): busybox's allocation fails with "out of memory" and the
    /// expansion fails, instead of the simulation taking the machine's memory.
    fn out_of_memory(&mut self, len: usize, fds: &Fds) -> bool {
        if len <= MAX_BUFFER {
            return false;
        }
        if !self.expand_failed {
            self.err(fds, "sh: out of memory\n");
            self.expand_failed = true;
        }
        true
    }

    /// The value of an assignment `NAME=word`: one string, with a leading `~` expanded.
    pub(super) async fn expand_assignment(&mut self, w: &Word, fds: &Fds) -> String {
        if let Some(Part::Lit {
            text,
            quoted: false,
        }) = w.parts.first()
        {
            if let Some((home, rest)) = self.tilde(text) {
                let mut tail = w.clone();
                if let Some(Part::Lit { text, .. }) = tail.parts.first_mut() {
                    *text = rest.to_string();
                }
                return home + &self.expand_string(&tail, fds).await;
            }
        }
        self.expand_string(w, fds).await
    }

    /// Expand a word into a pattern: what was quoted matches literally.
    pub(super) async fn expand_pattern(&mut self, w: &Word, fds: &Fds) -> String {
        let mut s = String::new();
        for part in &w.parts {
            match part {
                Part::Lit {
                    text,
                    quoted: false,
                } => s.push_str(text),
                Part::Lit { text, quoted: true } => s.push_str(&glob::escape(text)),
                Part::Param { param, op, quoted } => {
                    let v = self.param_value(param, op, fds).await;
                    if *quoted {
                        s.push_str(&glob::escape(&v));
                    } else {
                        s.push_str(&v);
                    }
                }
                Part::Subst { body, quoted } => {
                    let v = self.command_subst(body, fds).await;
                    if *quoted {
                        s.push_str(&glob::escape(&v));
                    } else {
                        s.push_str(&v);
                    }
                }
                Part::Arith { expr, .. } => {
                    let v = self.arith_value(expr, fds).await;
                    s.push_str(&v);
                }
            }
            if self.out_of_memory(s.len(), fds) {
                return String::new();
            }
        }
        s
    }

    /// Pathname expansion: the paths matching `pattern` (relative ones against the current
    /// directory, and shown relative), sorted; none when nothing matches.
    pub(super) fn glob_paths(&self, pattern: &str) -> Vec<String> {
        let absolute = pattern.starts_with('/');
        let dirs_only = pattern.ends_with('/');
        let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        // (as shown, absolute path)
        let mut found: Vec<(String, String)> = vec![if absolute {
            ("/".to_string(), "/".to_string())
        } else {
            (String::new(), self.cwd.clone())
        }];
        let join = |base: &str, name: &str| {
            if base.is_empty() {
                name.to_string()
            } else if base.ends_with('/') {
                format!("{base}{name}")
            } else {
                format!("{base}/{name}")
            }
        };
        for comp in &comps {
            let mut next = Vec::new();
            for (shown, abs) in &found {
                if glob::has_meta(comp) {
                    let Some(mut entries) = self.shell.list_dir(abs) else {
                        continue;
                    };
                    if comp.starts_with('.') {
                        // A directory's own entries, as readdir gives them.
                        entries.push(".".into());
                        entries.push("..".into());
                    }
                    entries.sort();
                    entries.dedup();
                    for e in entries {
                        if glob::component_matches(comp, &e) {
                            next.push((join(shown, &e), join(abs, &e)));
                        }
                    }
                } else {
                    let name = glob::unescape(comp);
                    next.push((join(shown, &name), join(abs, &name)));
                }
                if next.len() > MAX_GLOB_RESULTS {
                    break;
                }
            }
            found = next;
            if found.is_empty() {
                return Vec::new();
            }
        }
        let mut out: Vec<String> = found
            .into_iter()
            .filter(|(_, abs)| {
                let p = self.path(abs);
                if dirs_only {
                    self.is_dir(&p)
                } else {
                    self.exists(&p)
                }
            })
            .map(|(shown, _)| if dirs_only { shown + "/" } else { shown })
            .collect();
        out.sort();
        out
    }
}
