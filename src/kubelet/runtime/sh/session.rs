//! `sh` reading its commands from standard input: line by line, each complete command run as
//! soon as its last line arrived (an interactive session answers line by line), with prompts
//! when interactive.

use super::ast::List;
use super::interp::{Fds, Flow, Interp};
use super::io::MAX_BUFFER;
use super::lexer::parse_list;
use super::ParseError;

/// `PS2`: the prompt before the continuation lines of an unfinished command.
const PS2: &str = "> ";

/// Whether a parse error only says that the text typed so far stops inside a command.
fn incomplete(e: &ParseError) -> bool {
    matches!(
        e,
        ParseError::UnexpectedEnd { .. } | ParseError::UnterminatedQuote { .. }
    )
}

/// Whether `text` (ending in a newline) ends in a `\`-newline continuation.
fn continued(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

impl Interp<'_> {
    /// Read commands from `fds.inp` and run them; `prompt` (PS1's default) makes the shell
    /// interactive. The exit status, after the EXIT trap.
    pub(super) async fn read_commands(&mut self, fds: &Fds, prompt: Option<&str>) -> i32 {
        let flow = self.read_commands_inner(fds, prompt).await;
        self.finish(flow, fds).await
    }

    async fn read_commands_inner(&mut self, fds: &Fds, prompt: Option<&str>) -> Flow {
        // Bytes read but not yet used: the shell's own input buffer, as ash's (what it holds
        // is not seen by the commands it runs).
        let mut buf: Vec<u8> = Vec::new();
        let mut eof = false;
        // The lines of the command being typed.
        let mut pending = String::new();
        loop {
            tokio::task::yield_now().await;
            if let Some(ps1) = prompt {
                let p = if pending.is_empty() {
                    self.prompt_text("PS1", ps1)
                } else {
                    self.prompt_text("PS2", PS2)
                };
                self.err(fds, &p);
            }
            let line = loop {
                if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    break Some(buf.drain(..=nl).collect::<Vec<u8>>());
                }
                if eof || buf.len() > MAX_BUFFER {
                    break (!buf.is_empty()).then(|| std::mem::take(&mut buf));
                }
                match self.read_chunk(&fds.inp).await {
                    Some(c) => buf.extend_from_slice(&c),
                    None => eof = true,
                }
            };
            let Some(line) = line else {
                if !pending.is_empty() {
                    // The input ended inside a command: its syntax error.
                    if let Err(e) = parse_list(&pending, 0, false) {
                        self.err(fds, &format!("sh: syntax error: {e}\n"));
                        return Flow::Exit(2);
                    }
                    if let Some(f) = self.run_typed(&pending, fds, prompt.is_some()).await {
                        return f;
                    }
                }
                return Flow::Next;
            };
            pending.push_str(&String::from_utf8_lossy(&line));
            if continued(&pending) && !eof {
                continue;
            }
            match parse_list(&pending, 0, !eof) {
                Err(e) if incomplete(&e) && !eof => continue,
                Err(e) => {
                    pending.clear();
                    self.err(fds, &format!("sh: syntax error: {e}\n"));
                    if prompt.is_none() {
                        return Flow::Exit(2);
                    }
                    self.status = 2;
                }
                Ok(body) => {
                    pending.clear();
                    if let Some(f) = self.run_list(&body, fds, prompt.is_some()).await {
                        return f;
                    }
                }
            }
        }
    }

    /// Parse and run what was typed; Some(flow) when the shell exits.
    async fn run_typed(&mut self, text: &str, fds: &Fds, interactive: bool) -> Option<Flow> {
        match parse_list(text, 0, false) {
            Ok(body) => self.run_list(&body, fds, interactive).await,
            Err(_) => None,
        }
    }

    /// Run one complete command; Some(flow) when the shell exits (an interactive shell goes on
    /// after an error).
    async fn run_list(&mut self, body: &List, fds: &Fds, interactive: bool) -> Option<Flow> {
        match self.list(body, fds, false).await {
            Flow::Exit(_) if interactive && self.raised => {
                self.raised = false;
                None
            }
            f @ (Flow::Exit(_) | Flow::Return(_)) => Some(f),
            _ => None,
        }
    }

    /// A prompt: the variable `name` when the session set it (with busybox's `\w`, `\$`, `\u`,
    /// `\h` and `\\`), else `default`.
    fn prompt_text(&self, name: &str, default: &str) -> String {
        let Some(Some(v)) = self.vars.get(name) else {
            return default.to_string();
        };
        let host = self.shell.hostname();
        let short = host.split('.').next().unwrap_or("").to_string();
        let mut out = String::new();
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('w' | 'W') => out.push('/'),
                Some('$') => out.push('#'),
                Some('u') => out.push_str("root"),
                Some('h') => out.push_str(&short),
                Some('H') => out.push_str(&host),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        }
        out
    }
}
