//! The text filters: `head`, `tail`, `wc`, `grep`, `tee`, `sort`, `uniq`, `cut` and `tr`,
//! reading their operands or standard input, with busybox 1.36's options and messages.

use super::super::interp::{Fds, Interp};
use super::super::io::MAX_BUFFER;
use super::files::{Input, OpenStyle};

/// Options as busybox's getopt32 (glibc getopt) reads them: letters bundled (`-qv`), a letter
/// followed by `:` in the spec takes an argument (`-n 5` or `-n5`), options and operands in
/// any order, `--` ends the options, `-` is an operand.
pub(super) struct Opts {
    pub(super) list: Vec<(char, String)>,
    pub(super) operands: Vec<String>,
}

pub(super) enum OptError {
    Unknown(char),
    Missing(char),
}

impl Opts {
    pub(super) fn has(&self, c: char) -> bool {
        self.list.iter().any(|(o, _)| *o == c)
    }
    pub(super) fn last(&self, c: char) -> Option<&str> {
        self.list
            .iter()
            .rev()
            .find(|(o, _)| *o == c)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn parse_opts(args: &[String], spec: &str) -> Result<Opts, OptError> {
    let mut list = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            operands.extend(args.iter().skip(i).cloned());
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            operands.push(a.clone());
            continue;
        }
        let letters: Vec<char> = a.chars().skip(1).collect();
        let mut k = 0;
        while let Some(&c) = letters.get(k) {
            k += 1;
            let Some(pos) = spec.find(c).filter(|_| c != ':') else {
                return Err(OptError::Unknown(c));
            };
            let takes_arg = spec
                .get(pos + c.len_utf8()..)
                .is_some_and(|r| r.starts_with(':'));
            if takes_arg {
                let rest: String = letters.iter().skip(k).collect();
                let value = if !rest.is_empty() {
                    rest
                } else if let Some(next) = args.get(i) {
                    i += 1;
                    next.clone()
                } else {
                    return Err(OptError::Missing(c));
                };
                list.push((c, value));
                break;
            }
            list.push((c, String::new()));
        }
    }
    Ok(Opts { list, operands })
}

/// A number with busybox's `b`/`k`/`m` suffixes (512, 1024, 1024²); None when invalid.
fn number_sfx(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'b') => (s.get(..s.len() - 1)?, 512),
        Some(b'k') => (s.get(..s.len() - 1)?, 1024),
        Some(b'm') => (s.get(..s.len() - 1)?, 1024 * 1024),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// The lines of `data`, each with its newline (the last may lack one).
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

fn strip_nl(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// The last `n` lines of `data`.
fn last_lines(data: &[u8], n: u64) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let end = match data.last() {
        Some(b'\n') => data.len() - 1,
        _ => data.len(),
    };
    let mut seen = 0u64;
    for i in (0..end).rev() {
        if data.get(i) == Some(&b'\n') {
            seen += 1;
            if seen == n {
                return data.get(i + 1..).unwrap_or(&[]);
            }
        }
    }
    data
}

impl Interp<'_> {
    fn opt_error(&mut self, cmd: &str, e: OptError, fds: &Fds) {
        let msg = match e {
            OptError::Unknown(c) => format!("{cmd}: invalid option -- '{c}'\n"),
            OptError::Missing(c) => format!("{cmd}: option requires an argument -- '{c}'\n"),
        };
        self.err(fds, &msg);
    }

    fn operands_or_stdin(operands: Vec<String>) -> Vec<String> {
        if operands.is_empty() {
            vec!["-".to_string()]
        } else {
            operands
        }
    }

    /// `head [-n [-]N] [-c [-]N] [-qv] [FILE]...`.
    pub(super) async fn cmd_head(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut args = args.to_vec();
        let mut count: u64 = 10;
        let mut bytes = false;
        let mut negative = false;
        let mut headers: Option<bool> = None;
        // Legacy `head -N`.
        if let Some(first) = args.first().cloned() {
            if first.len() > 1
                && first.starts_with('-')
                && first.as_bytes().get(1).is_some_and(u8::is_ascii_digit)
            {
                args.remove(0);
                match number_sfx(first.get(1..).unwrap_or("")) {
                    Some(n) => count = n,
                    None => {
                        let bad = first.get(1..).unwrap_or("");
                        self.err(fds, &format!("head: invalid number '{bad}'\n"));
                        return 1;
                    }
                }
            }
        }
        let opts = match parse_opts(&args, "n:c:qv") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("head", e, fds);
                return 1;
            }
        };
        for (c, v) in &opts.list {
            match c {
                'n' | 'c' => {
                    if *c == 'c' {
                        bytes = true;
                    }
                    let (neg, num) = match v.strip_prefix('-') {
                        Some(rest) => (true, rest),
                        None => (false, v.as_str()),
                    };
                    negative = neg;
                    match number_sfx(num) {
                        Some(n) => count = n,
                        None => {
                            self.err(fds, &format!("head: invalid number '{num}'\n"));
                            return 1;
                        }
                    }
                }
                'q' => headers = Some(false),
                _ => headers = Some(true),
            }
        }
        let operands = Self::operands_or_stdin(opts.operands);
        let show_headers = headers.unwrap_or(operands.len() > 1);
        let mut status = 0;
        let mut first = true;
        for a in &operands {
            let Some(mut input) = self.open_input("head", a, fds, OpenStyle::Perror) else {
                status = 1;
                continue;
            };
            if show_headers {
                let name = if a == "-" { "standard input" } else { a };
                let sep = if first { "" } else { "\n" };
                self.out(fds, format!("{sep}==> {name} <==\n").as_bytes());
            }
            first = false;
            if negative {
                let Some(data) = self.read_input("head", input, MAX_BUFFER, fds).await else {
                    status = 1;
                    continue;
                };
                let keep = if bytes {
                    let n = usize::try_from(count).unwrap_or(usize::MAX);
                    data.get(..data.len().saturating_sub(n)).unwrap_or(&[])
                } else {
                    let tail = last_lines(&data, count).len();
                    data.get(..data.len() - tail).unwrap_or(&[])
                };
                self.out_flow(fds, keep).await;
                continue;
            }
            let mut left = count;
            while left > 0 {
                let Some(chunk) = self.next_chunk(&mut input).await else {
                    break;
                };
                let take = if bytes {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                    left -= n as u64;
                    n
                } else {
                    let mut end = chunk.len();
                    for (i, &b) in chunk.iter().enumerate() {
                        if b == b'\n' {
                            left -= 1;
                            if left == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                    }
                    end
                };
                self.out(fds, chunk.get(..take).unwrap_or(&[]));
                self.drain(fds).await;
                if self.sigpipe {
                    return 1;
                }
            }
        }
        status
    }

    /// `tail [-n [+]N] [-c [+]N] [-f] [-s SECONDS] [-qv] [FILE]...`.
    pub(super) async fn cmd_tail(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut args = args.to_vec();
        let mut count: u64 = 10;
        let mut from_top = false;
        let mut bytes = false;
        let eat = |v: &str, from_top: &mut bool| -> Option<u64> {
            let num = if let Some(r) = v.strip_prefix('+') {
                *from_top = true;
                r
            } else {
                v.strip_prefix('-').unwrap_or(v)
            };
            number_sfx(num)
        };
        if let Some(first) = args.first().cloned() {
            if first.len() > 1
                && (first.starts_with('-') || first.starts_with('+'))
                && first.as_bytes().get(1).is_some_and(u8::is_ascii_digit)
            {
                args.remove(0);
                match eat(&first, &mut from_top) {
                    Some(n) => count = n,
                    None => {
                        let bad = first.get(1..).unwrap_or("");
                        self.err(fds, &format!("tail: invalid number '{bad}'\n"));
                        return 1;
                    }
                }
            }
        }
        let opts = match parse_opts(&args, "fc:n:qs:vF") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("tail", e, fds);
                return 1;
            }
        };
        let mut headers: Option<bool> = None;
        let mut follow = false;
        let mut period = 1.0f64;
        for (c, v) in &opts.list {
            match c {
                'c' | 'n' => {
                    bytes = *c == 'c';
                    match eat(v, &mut from_top) {
                        Some(n) => count = n,
                        None => {
                            let bad = v.strip_prefix(['+', '-']).unwrap_or(v);
                            self.err(fds, &format!("tail: invalid number '{bad}'\n"));
                            return 1;
                        }
                    }
                }
                'f' | 'F' => follow = true,
                's' => match v.parse::<f64>() {
                    Ok(s) if s.is_finite() && s >= 0.0 => period = s.max(0.001),
                    _ => {
                        self.err(fds, &format!("tail: invalid number '{v}'\n"));
                        return 1;
                    }
                },
                'q' => headers = Some(false),
                _ => headers = Some(true),
            }
        }
        let operands = Self::operands_or_stdin(opts.operands);
        let mut status = 0;
        let mut opened = Vec::new();
        for a in &operands {
            match self.open_input("tail", a, fds, OpenStyle::CantOpen) {
                Some(input) => opened.push((a.clone(), input)),
                None => status = 1,
            }
        }
        if opened.is_empty() {
            self.err(fds, "tail: no files\n");
            return 1;
        }
        let show_headers = headers.unwrap_or(opened.len() > 1);
        // (path, length printed) of the files to follow.
        let mut followed: Vec<(String, String, usize)> = Vec::new();
        let mut first = true;
        for (a, mut input) in opened {
            if show_headers {
                let name = if a == "-" { "standard input" } else { &a };
                let sep = if first { "" } else { "\n" };
                self.out(fds, format!("{sep}==> {name} <==\n").as_bytes());
            }
            first = false;
            let is_file = matches!(input, Input::Data(_));
            if from_top {
                let mut seen: u64 = 1;
                let mut total = 0usize;
                while let Some(chunk) = self.next_chunk(&mut input).await {
                    total += chunk.len();
                    let mut start = 0usize;
                    if seen < count {
                        if bytes {
                            let skip = usize::try_from(count - seen).unwrap_or(usize::MAX);
                            start = skip.min(chunk.len());
                            seen = seen.saturating_add(chunk.len() as u64);
                        } else {
                            start = chunk.len();
                            for (i, &b) in chunk.iter().enumerate() {
                                if b == b'\n' {
                                    seen += 1;
                                    if seen == count {
                                        start = i + 1;
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    self.out(fds, chunk.get(start..).unwrap_or(&[]));
                    self.drain(fds).await;
                    if self.sigpipe {
                        return 1;
                    }
                }
                if is_file {
                    followed.push((a.clone(), self.path(&a), total));
                }
                continue;
            }
            let Some(data) = self.read_input("tail", input, MAX_BUFFER, fds).await else {
                status = 1;
                continue;
            };
            let out = if bytes {
                let n = usize::try_from(count).unwrap_or(usize::MAX);
                data.get(data.len().saturating_sub(n)..).unwrap_or(&[])
            } else {
                last_lines(&data, count)
            };
            self.out_flow(fds, out).await;
            if is_file {
                followed.push((a.clone(), self.path(&a), data.len()));
            }
        }
        if !follow || followed.is_empty() {
            return status;
        }
        // -f: print what is appended to the files, checking every `period` seconds.
        let mut last_shown = followed.len().saturating_sub(1);
        loop {
            tokio::task::yield_now().await;
            self.shell.sleep(period).await;
            for (i, (name, path, pos)) in followed.iter_mut().enumerate() {
                let data = self.read(path).unwrap_or_default();
                if data.len() < *pos {
                    *pos = 0;
                }
                if data.len() > *pos {
                    if show_headers && last_shown != i {
                        self.out(fds, format!("\n==> {name} <==\n").as_bytes());
                        last_shown = i;
                    }
                    self.out(fds, data.get(*pos..).unwrap_or(&[]));
                    *pos = data.len();
                }
            }
            self.drain(fds).await;
            if self.sigpipe {
                return 1;
            }
        }
    }

    /// `wc [-clwL] [FILE]...`.
    pub(super) async fn cmd_wc(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "lwmcL") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("wc", e, fds);
                return 1;
            }
        };
        // Columns in busybox's order: lines, words, chars, bytes, longest line.
        let mut show = [
            opts.has('l'),
            opts.has('w'),
            opts.has('m'),
            opts.has('c'),
            opts.has('L'),
        ];
        if !show.iter().any(|&s| s) {
            show = [true, true, false, true, false];
        }
        let from_stdin = opts.operands.is_empty();
        let operands = Self::operands_or_stdin(opts.operands);
        let single = show.iter().filter(|&&s| s).count() == 1 && operands.len() <= 1;
        let mut totals = [0u64; 5];
        let mut status = 0;
        let mut out = String::new();
        for a in &operands {
            let Some(input) = self.open_input("wc", a, fds, OpenStyle::Perror) else {
                status = 1;
                continue;
            };
            let Some(data) = self.read_input("wc", input, usize::MAX, fds).await else {
                status = 1;
                continue;
            };
            let counts = wc_counts(&data);
            for (t, c) in totals.iter_mut().zip(counts) {
                *t += c;
            }
            totals[4] = totals[4].max(counts[4]);
            let name = if from_stdin { None } else { Some(a.as_str()) };
            out.push_str(&wc_line(&counts, &show, single, name));
        }
        if operands.len() > 1 {
            out.push_str(&wc_line(&totals, &show, false, Some("total")));
        }
        self.out(fds, out.as_bytes());
        status
    }

    /// `grep [-qvicElnLoHhsxwF] [-e PATTERN]... [PATTERN] [FILE]...` (and `egrep`, `fgrep`).
    pub(super) async fn cmd_grep(&mut self, cmd: &str, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "lnqvscFiHhe:LoxwE") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error(cmd, e, fds);
                return 2;
            }
        };
        let mut operands = opts.operands.clone();
        let mut patterns: Vec<String> = opts
            .list
            .iter()
            .filter(|(c, _)| *c == 'e')
            .map(|(_, v)| v.clone())
            .collect();
        if patterns.is_empty() {
            if operands.is_empty() {
                self.err(fds, &format!("Usage: {cmd} [-HhnlLoqvsrRiwFE] [-m N] [-A|B|C N] {{ PATTERN | -e PATTERN... | -f FILE... }} [FILE]...\n"));
                return 2;
            }
            patterns.push(operands.remove(0));
        }
        let fixed = opts.has('F') || cmd == "fgrep";
        let extended = opts.has('E') || cmd == "egrep";
        let matcher = match GrepMatcher::new(
            &patterns,
            fixed,
            extended,
            opts.has('i'),
            opts.has('x'),
            opts.has('w'),
        ) {
            Ok(m) => m,
            Err(bad) => {
                self.err(
                    fds,
                    &format!("{cmd}: bad regex '{bad}': Invalid regular expression\n"),
                );
                return 2;
            }
        };
        let invert = opts.has('v');
        let quiet = opts.has('q');
        let count_only = opts.has('c');
        let list = opts.has('l');
        let list_missing = opts.has('L');
        let only = opts.has('o');
        let numbers = opts.has('n') && !(count_only || quiet || list || list_missing);
        let silent = opts.has('s');
        let mut print_name = operands.len() > 1;
        for (c, _) in &opts.list {
            match c {
                'H' => print_name = true,
                'h' => print_name = false,
                _ => {}
            }
        }
        let operands = Self::operands_or_stdin(operands);
        let mut matched_any = false;
        let mut open_errors = false;
        for a in &operands {
            let name = if a == "-" {
                "(standard input)"
            } else {
                a.as_str()
            };
            let input = if a == "-" {
                Some(Input::Stream(fds.inp.clone()))
            } else {
                let p = self.path(a);
                if self.is_dir(&p) {
                    if !silent {
                        self.err(fds, &format!("{cmd}: {a}: Is a directory\n"));
                    }
                    None
                } else {
                    match self.read(&p) {
                        Some(d) => Some(Input::Data(Some(d))),
                        None => {
                            if !silent {
                                self.err(fds, &format!("{cmd}: {a}: No such file or directory\n"));
                            }
                            open_errors = true;
                            None
                        }
                    }
                }
            };
            let Some(mut input) = input else {
                continue;
            };
            let prefix = if print_name {
                format!("{name}:")
            } else {
                String::new()
            };
            let mut count = 0u64;
            let mut lineno = 0u64;
            let mut carry: Vec<u8> = Vec::new();
            let mut done = false;
            let mut eof = false;
            while !done && !eof {
                match self.next_chunk(&mut input).await {
                    Some(chunk) => carry.extend_from_slice(&chunk),
                    None => {
                        eof = true;
                        if !carry.is_empty() {
                            carry.push(b'\n');
                        }
                    }
                }
                let mut out: Vec<u8> = Vec::new();
                let mut used = 0usize;
                for line in carry.split_inclusive(|&b| b == b'\n') {
                    if line.last() != Some(&b'\n') {
                        break;
                    }
                    used += line.len();
                    lineno += 1;
                    let text = strip_nl(line);
                    let hit = matcher.is_match(text) != invert;
                    if !hit {
                        continue;
                    }
                    count += 1;
                    matched_any = true;
                    if quiet {
                        return 0;
                    }
                    if list {
                        out.extend_from_slice(format!("{name}\n").as_bytes());
                        done = true;
                        break;
                    }
                    if count_only || list_missing {
                        continue;
                    }
                    let num = if numbers {
                        format!("{lineno}:")
                    } else {
                        String::new()
                    };
                    if only && !invert {
                        for m in matcher.find_all(text) {
                            if m.is_empty() {
                                continue;
                            }
                            out.extend_from_slice(prefix.as_bytes());
                            out.extend_from_slice(num.as_bytes());
                            out.extend_from_slice(m);
                            out.push(b'\n');
                        }
                    } else if !only {
                        out.extend_from_slice(prefix.as_bytes());
                        out.extend_from_slice(num.as_bytes());
                        out.extend_from_slice(text);
                        out.push(b'\n');
                    }
                }
                carry.drain(..used.min(carry.len()));
                if carry.len() > MAX_BUFFER {
                    // A line longer than any buffer: take it as it is.
                    carry.push(b'\n');
                }
                self.out(fds, &out);
                self.drain(fds).await;
                if self.sigpipe {
                    return 2;
                }
            }
            if count_only {
                self.out(fds, format!("{prefix}{count}\n").as_bytes());
            }
            if list_missing && count == 0 {
                self.out(fds, format!("{name}\n").as_bytes());
            }
        }
        if open_errors {
            2
        } else if matched_any {
            0
        } else {
            1
        }
    }

    /// `tee [-ai] [FILE]...`: standard input to standard output and the files.
    pub(super) async fn cmd_tee(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "ai") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("tee", e, fds);
                return 1;
            }
        };
        let append = opts.has('a');
        let mut status = 0;
        let mut files = Vec::new();
        for a in &opts.operands {
            let p = self.path(a);
            let why = if p.is_empty() || !self.is_dir(super::super::interp::parent(&p)) {
                Some("No such file or directory".to_string())
            } else if self.is_dir(&p) {
                Some("Is a directory".to_string())
            } else {
                self.shell.write(&p, b"", append).err()
            };
            match why {
                Some(why) => {
                    self.err(fds, &format!("tee: {a}: {why}\n"));
                    status = 1;
                }
                None => files.push(p),
            }
        }
        let src = fds.inp.clone();
        while let Some(chunk) = self.read_chunk(&src).await {
            for f in &files {
                if let Err(why) = self.shell.write(f, &chunk, true) {
                    self.err(fds, &format!("tee: {f}: {why}\n"));
                    status = 1;
                }
            }
            self.out(fds, &chunk);
            self.drain(fds).await;
            if self.sigpipe {
                return 1;
            }
        }
        status
    }

    /// Read every operand (or standard input) whole for `sort` and `uniq`; None after an
    /// error (they die on the first, as busybox's `xfopen_stdin`).
    async fn slurp_all(&mut self, cmd: &str, operands: &[String], fds: &Fds) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        for a in operands {
            let input = self.open_input(cmd, a, fds, OpenStyle::Perror)?;
            let mut data = self.read_input(cmd, input, MAX_BUFFER, fds).await?;
            if !data.is_empty() && data.last() != Some(&b'\n') {
                data.push(b'\n');
            }
            all.extend_from_slice(&data);
            if all.len() > MAX_BUFFER {
                self.err(fds, &format!("{cmd}: out of memory\n"));
                return None;
            }
        }
        Some(all)
    }

    /// `sort [-nrufb] [FILE]...`.
    pub(super) async fn cmd_sort(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "nrufbs") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("sort", e, fds);
                return 1;
            }
        };
        let operands = Self::operands_or_stdin(opts.operands.clone());
        let Some(data) = self.slurp_all("sort", &operands, fds).await else {
            return 1;
        };
        let numeric = opts.has('n');
        let fold = opts.has('f');
        let blanks = opts.has('b');
        let stable = opts.has('s');
        let key = |l: &[u8]| -> Vec<u8> {
            let l = if blanks {
                let skip = l.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
                l.get(skip..).unwrap_or(&[])
            } else {
                l
            };
            if fold {
                l.to_ascii_uppercase()
            } else {
                l.to_vec()
            }
        };
        let cmp = |a: &&[u8], b: &&[u8]| -> std::cmp::Ordering {
            let primary = if numeric {
                sort_number(a)
                    .partial_cmp(&sort_number(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            } else {
                key(a).cmp(&key(b))
            };
            if primary != std::cmp::Ordering::Equal || stable {
                primary
            } else {
                a.cmp(b)
            }
        };
        let mut ls: Vec<&[u8]> = lines(&data).map(strip_nl).collect();
        ls.sort_by(|a, b| cmp(a, b));
        if opts.has('r') {
            ls.reverse();
        }
        if opts.has('u') {
            ls.dedup_by(|a, b| cmp(&&**a, &&**b) == std::cmp::Ordering::Equal);
        }
        let mut out = Vec::with_capacity(data.len());
        for l in ls {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        self.out_flow(fds, &out).await;
        0
    }

    /// `uniq [-cdui] [INPUT [OUTPUT]]`.
    pub(super) async fn cmd_uniq(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "cdui") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("uniq", e, fds);
                return 1;
            }
        };
        let input = opts.operands.first().cloned().unwrap_or_else(|| "-".into());
        let Some(data) = self.slurp_all("uniq", &[input], fds).await else {
            return 1;
        };
        let ci = opts.has('i');
        let same = |a: &[u8], b: &[u8]| {
            if ci {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let mut groups: Vec<(&[u8], u64)> = Vec::new();
        for l in lines(&data).map(strip_nl) {
            match groups.last_mut() {
                Some((prev, n)) if same(prev, l) => *n += 1,
                _ => groups.push((l, 1)),
            }
        }
        let mut out = Vec::new();
        for (l, n) in groups {
            if (opts.has('d') && n < 2) || (opts.has('u') && n > 1) {
                continue;
            }
            if opts.has('c') {
                out.extend_from_slice(format!("{n:7} ").as_bytes());
            }
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        match opts.operands.get(1).filter(|o| *o != "-") {
            Some(target) => {
                let p = self.path(target);
                if let Err(why) = self.shell.write(&p, &out, false) {
                    self.err(fds, &format!("uniq: {target}: {why}\n"));
                    return 1;
                }
            }
            None => self.out_flow(fds, &out).await,
        }
        0
    }

    /// `cut -f LIST [-d DELIM] [-s] | -c LIST | -b LIST [FILE]...`.
    pub(super) async fn cmd_cut(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "b:c:f:d:O:sDn") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("cut", e, fds);
                return 1;
            }
        };
        let mode = opts
            .list
            .iter()
            .rev()
            .find(|(c, _)| matches!(c, 'b' | 'c' | 'f'))
            .cloned();
        let Some((mode, list)) = mode else {
            self.err(
                fds,
                "cut: expected a list of bytes, characters, or fields\n",
            );
            return 1;
        };
        if mode != 'f' {
            if opts.has('s') {
                self.err(fds, "cut: suppressing non-delimited lines makes sense only when operating on fields\n");
                return 1;
            }
            if opts.has('d') {
                self.err(
                    fds,
                    "cut: a delimiter may be specified only when operating on fields\n",
                );
                return 1;
            }
        }
        let ranges = match cut_ranges(&list) {
            Ok(r) => r,
            Err(msg) => {
                self.err(fds, &format!("cut: {msg}\n"));
                return 1;
            }
        };
        let delim: Vec<u8> = match opts.last('d') {
            Some(d) if !d.is_empty() => d.bytes().take(1).collect(),
            _ => vec![b'\t'],
        };
        let odelim: Vec<u8> = opts
            .last('O')
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or_else(|| delim.clone());
        let selected = |i: usize| ranges.iter().any(|&(s, e)| i >= s && i <= e);
        let operands = Self::operands_or_stdin(opts.operands.clone());
        let mut status = 0;
        for a in &operands {
            let Some(input) = self.open_input("cut", a, fds, OpenStyle::Perror) else {
                status = 1;
                continue;
            };
            let Some(data) = self.read_input("cut", input, MAX_BUFFER, fds).await else {
                status = 1;
                continue;
            };
            let mut out = Vec::new();
            for line in lines(&data).map(strip_nl) {
                if mode == 'f' {
                    let d = delim.first().copied().unwrap_or(b'\t');
                    if !line.contains(&d) {
                        if !opts.has('s') {
                            out.extend_from_slice(line);
                            out.push(b'\n');
                        }
                        continue;
                    }
                    let mut first = true;
                    for (i, field) in line.split(|&b| b == d).enumerate() {
                        if selected(i) {
                            if !first {
                                out.extend_from_slice(&odelim);
                            }
                            out.extend_from_slice(field);
                            first = false;
                        }
                    }
                } else {
                    for (i, &b) in line.iter().enumerate() {
                        if selected(i) {
                            out.push(b);
                        }
                    }
                }
                out.push(b'\n');
            }
            self.out_flow(fds, &out).await;
        }
        status
    }

    /// `tr [-cds] SET1 [SET2]`: characters, ranges `a-z`, backslash escapes and the classes
    /// `[:alpha:]`, `[:digit:]`, `[:lower:]`, `[:upper:]`, `[:space:]`, `[:alnum:]`.
    pub(super) async fn cmd_tr(&mut self, args: &[String], fds: &Fds) -> i32 {
        let opts = match parse_opts(args, "cdsCt") {
            Ok(o) => o,
            Err(e) => {
                self.opt_error("tr", e, fds);
                return 1;
            }
        };
        let delete = opts.has('d');
        let squeeze = opts.has('s');
        let complement = opts.has('c') || opts.has('C');
        let (set1, set2) = match opts.operands.as_slice() {
            [a] if delete || squeeze => (tr_set(a), None),
            [a, b] => (tr_set(a), Some(tr_set(b))),
            _ => {
                self.err(fds, "Usage: tr [-cds] STRING1 [STRING2]\n");
                return 1;
            }
        };
        let in1 = |b: u8| set1.contains(&b) != complement;
        // The translation table.
        let mut map: [u8; 256] = [0; 256];
        for (i, m) in map.iter_mut().enumerate() {
            *m = i as u8;
        }
        if let (false, Some(s2)) = (delete, &set2) {
            if let Some(&lastc) = s2.last() {
                if complement {
                    for b in 0..=255u8 {
                        if in1(b) {
                            map[b as usize] = lastc;
                        }
                    }
                } else {
                    for (i, &b) in set1.iter().enumerate() {
                        map[b as usize] = *s2.get(i).unwrap_or(&lastc);
                    }
                }
            }
        }
        let squeeze_set: Vec<u8> = match (&set2, delete) {
            (Some(s2), _) => s2.clone(),
            (None, false) => set1.clone(),
            (None, true) => Vec::new(),
        };
        let src = fds.inp.clone();
        let mut last: Option<u8> = None;
        while let Some(chunk) = self.read_chunk(&src).await {
            let mut out = Vec::with_capacity(chunk.len());
            for b in chunk {
                if delete && in1(b) {
                    continue;
                }
                let c = if delete { b } else { map[b as usize] };
                if squeeze && last == Some(c) && squeeze_set.contains(&c) {
                    continue;
                }
                last = Some(c);
                out.push(c);
            }
            self.out(fds, &out);
            self.drain(fds).await;
            if self.sigpipe {
                return 1;
            }
        }
        0
    }
}

/// lines, words, chars, bytes, longest line: busybox's counting.
fn wc_counts(data: &[u8]) -> [u64; 5] {
    let mut c = [0u64; 5];
    let mut linepos = 0u64;
    let mut in_word = false;
    let iter = data.iter().copied().map(Some).chain(std::iter::once(None));
    for next in iter {
        if let Some(b) = next {
            c[3] += 1;
            if b & 0xc0 != 0x80 {
                c[2] += 1;
            }
            if (0x20..0x7f).contains(&b) {
                linepos += 1;
                if b != b' ' {
                    in_word = true;
                    continue;
                }
            } else if (9..=13).contains(&b) {
                if b == b'\t' {
                    linepos = (linepos | 7) + 1;
                } else {
                    c[4] = c[4].max(linepos);
                    if b == b'\n' {
                        c[0] += 1;
                    }
                    if b != 0x0b {
                        linepos = 0;
                    }
                }
            } else {
                continue;
            }
        } else {
            c[4] = c[4].max(linepos);
        }
        if in_word {
            c[1] += 1;
        }
        in_word = false;
        if next.is_none() {
            break;
        }
    }
    c
}

fn wc_line(counts: &[u64; 5], show: &[bool; 5], single: bool, name: Option<&str>) -> String {
    let mut s = String::new();
    let mut first = true;
    for (n, on) in counts.iter().zip(show) {
        if !on {
            continue;
        }
        if first && single {
            s.push_str(&n.to_string());
        } else if first {
            s.push_str(&format!("{n:9}"));
        } else {
            s.push_str(&format!(" {n:9}"));
        }
        first = false;
    }
    match name {
        Some(n) => {
            s.push(' ');
            s.push_str(n);
            s.push('\n');
        }
        None => s.push('\n'),
    }
    s
}

/// `sort -n`'s number at the start of a line (0 when there is none).
fn sort_number(l: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(l);
    let t = text.trim_start();
    let mut end = 0;
    for (i, c) in t.char_indices() {
        let ok = c.is_ascii_digit() || (c == '-' && i == 0) || c == '.';
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    t.get(..end)
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// `cut`'s LIST: 0-based inclusive ranges.
fn cut_ranges(list: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    let num = |s: &str| -> Result<usize, String> {
        s.parse::<usize>()
            .map_err(|_| format!("invalid number '{s}'"))
    };
    for part in list.split(',') {
        if part.is_empty() {
            continue;
        }
        let (s, e) = match part.split_once('-') {
            None => {
                let n = num(part)?;
                let s = n.saturating_sub(1);
                (s, s)
            }
            Some((a, b)) => {
                let s = if a.is_empty() {
                    0
                } else {
                    num(a)?.saturating_sub(1)
                };
                let e = if b.is_empty() {
                    usize::MAX
                } else {
                    let e = num(b)?;
                    if e.saturating_sub(1) < s || e == 0 {
                        return Err(format!("{}<{}", e, s));
                    }
                    e - 1
                };
                (s, e)
            }
        };
        out.push((s, e));
    }
    if out.is_empty() {
        return Err("missing list of positions".into());
    }
    Ok(out)
}

/// A `tr` set: its bytes in order.
fn tr_set(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let class = |name: &str| -> Option<Vec<u8>> {
        let pick = |f: fn(&u8) -> bool| (0..=255u8).filter(f).collect::<Vec<u8>>();
        Some(match name {
            "alpha" => pick(u8::is_ascii_alphabetic),
            "digit" => pick(u8::is_ascii_digit),
            "lower" => pick(u8::is_ascii_lowercase),
            "upper" => pick(u8::is_ascii_uppercase),
            "alnum" => pick(u8::is_ascii_alphanumeric),
            "space" => pick(u8::is_ascii_whitespace),
            "blank" => vec![b' ', b'\t'],
            "punct" => pick(u8::is_ascii_punctuation),
            "xdigit" => pick(u8::is_ascii_hexdigit),
            "cntrl" => pick(u8::is_ascii_control),
            _ => return None,
        })
    };
    let escaped = |b: &[u8], i: &mut usize| -> u8 {
        let c = b.get(*i).copied().unwrap_or(0);
        *i += 1;
        if c != b'\\' {
            return c;
        }
        let Some(&n) = b.get(*i) else {
            return b'\\';
        };
        *i += 1;
        match n {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'\\' => b'\\',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'0'..=b'7' => {
                let mut v = u32::from(n - b'0');
                for _ in 0..2 {
                    match b.get(*i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            *i += 1;
                        }
                        _ => break,
                    }
                }
                (v & 255) as u8
            }
            other => other,
        }
    };
    while i < b.len() {
        if b.get(i) == Some(&b'[') && b.get(i + 1) == Some(&b':') {
            if let Some(end) = s.get(i + 2..).and_then(|r| r.find(":]")) {
                if let Some(set) = s.get(i + 2..i + 2 + end).and_then(class) {
                    out.extend(set);
                    i += end + 4;
                    continue;
                }
            }
        }
        let c = escaped(b, &mut i);
        if b.get(i) == Some(&b'-') && i + 1 < b.len() {
            i += 1;
            let hi = escaped(b, &mut i);
            if hi >= c {
                out.extend(c..=hi);
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// grep's patterns compiled into one regex.
struct GrepMatcher {
    re: regex::bytes::Regex,
}

impl GrepMatcher {
    /// Err(the pattern that does not compile).
    fn new(
        patterns: &[String],
        fixed: bool,
        extended: bool,
        icase: bool,
        whole_line: bool,
        word: bool,
    ) -> Result<GrepMatcher, String> {
        let mut alts = Vec::new();
        for p in patterns {
            for one in p.split('\n') {
                let re = if fixed {
                    regex::escape(one)
                } else {
                    posix_to_regex(one, extended).ok_or_else(|| one.to_string())?
                };
                if regex::bytes::Regex::new(&re).is_err() {
                    return Err(one.to_string());
                }
                alts.push(format!("(?:{re})"));
            }
        }
        let mut re = alts.join("|");
        if whole_line {
            re = format!("^(?:{re})$");
        } else if word {
            re = format!(r"(?:^|\b)(?:{re})(?:\b|$)");
        }
        let re = regex::bytes::RegexBuilder::new(&re)
            .case_insensitive(icase)
            .size_limit(1 << 22)
            .build()
            .map_err(|_| patterns.join("\n"))?;
        Ok(GrepMatcher { re })
    }

    fn is_match(&self, line: &[u8]) -> bool {
        self.re.is_match(line)
    }

    fn find_all<'l>(&self, line: &'l [u8]) -> Vec<&'l [u8]> {
        self.re.find_iter(line).map(|m| m.as_bytes()).collect()
    }
}

/// A POSIX basic (or, `extended`, extended) regular expression in the syntax of the `regex`
/// crate; None for what it cannot express (back-references).
pub(super) fn posix_to_regex(p: &str, extended: bool) -> Option<String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // Whether a `*` here would repeat nothing (so is literal in a BRE).
    let mut at_start = true;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let was_start = at_start;
        at_start = false;
        match c {
            '\\' => {
                let Some(&n) = chars.get(i) else {
                    out.push_str(r"\\");
                    break;
                };
                i += 1;
                match n {
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                        out.push(n);
                        at_start = matches!(n, '(' | '|');
                    }
                    '<' | '>' => out.push_str(r"\b"),
                    'b' | 'B' | 'w' | 'W' | 's' | 'S' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '1'..='9' => return None,
                    'n' => out.push_str(r"\n"),
                    't' => out.push_str(r"\t"),
                    other => out.push_str(&regex::escape(&other.to_string())),
                }
            }
            '(' | ')' | '|' | '+' | '?' | '{' | '}' if !extended => {
                out.push('\\');
                out.push(c);
            }
            '(' | '|' if extended => {
                out.push(c);
                at_start = true;
            }
            ')' | '+' | '?' | '{' | '}' => out.push(c),
            '*' if was_start => out.push_str(r"\*"),
            '^' => {
                if was_start || extended {
                    out.push('^');
                    at_start = true;
                } else {
                    out.push_str(r"\^");
                }
            }
            '$' => {
                let at_end = i == chars.len()
                    || (!extended
                        && chars.get(i) == Some(&'\\')
                        && matches!(chars.get(i + 1), Some(')' | '|')))
                    || (extended && matches!(chars.get(i), Some(')' | '|')));
                if at_end || extended {
                    out.push('$');
                } else {
                    out.push_str(r"\$");
                }
            }
            '[' => {
                // A bracket expression, up to its `]` (a `]` first is a member).
                let mut set = String::from("[");
                let mut j = i;
                if chars.get(j) == Some(&'^') {
                    set.push('^');
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    set.push_str(r"\]");
                    j += 1;
                }
                let mut closed = false;
                while let Some(&d) = chars.get(j) {
                    j += 1;
                    match d {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '[' if matches!(chars.get(j), Some(':' | '.' | '=')) => {
                            let kind = chars.get(j).copied().unwrap_or(':');
                            let rest: String = chars.iter().skip(j + 1).collect();
                            let close = format!("{kind}]");
                            let end = rest.find(&close)?;
                            let name: String = rest.chars().take(end).collect();
                            if kind == ':' {
                                set.push_str(&format!("[:{name}:]"));
                            } else {
                                set.push_str(&regex::escape(&name));
                            }
                            j += 1 + name.chars().count() + 2;
                        }
                        '\\' | '[' | '&' | '~' => {
                            set.push('\\');
                            set.push(d);
                        }
                        '-' if chars.get(j) == Some(&'-') => set.push_str(r"\-"),
                        d => set.push(d),
                    }
                }
                if !closed {
                    return None;
                }
                set.push(']');
                out.push_str(&set);
                i = j;
            }
            '.' | '*' => out.push(c),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    Some(out)
}
