//! Utilities that look at files and filesystems: `df` (the [`Shell`](super::super::Shell)'s
//! mounts and their usage), `stat -c` (what the filesystem models: sizes, names, types),
//! `sha256sum`/`sha1sum`/`sha512sum` (with `-c`), `hexdump` and `od`, with busybox 1.36's
//! formats and messages.

use super::super::interp::{Fds, Interp};
use super::super::io::MAX_BUFFER;
use super::super::Mount;
use super::files::OpenStyle;

/// busybox's make_human_readable_str: `bytes` as `df -h` shows them (one decimal and a
/// suffix from 1024 up).
fn human(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    let units = ['\0', 'K', 'M', 'G', 'T', 'P', 'E'];
    let mut val = bytes;
    let mut frac = 0u64;
    let mut u = 0usize;
    while val >= 1024 {
        u += 1;
        frac = ((val % 1024) * 10 + 512) / 1024;
        val /= 1024;
    }
    if frac >= 10 {
        val += 1;
        frac = 0;
    }
    match units.get(u) {
        Some('\0') | None => val.to_string(),
        Some(c) => format!("{val}.{frac}{c}"),
    }
}

/// (value, bytes per display unit) as df prints a count of 1 KiB blocks: rounded.
fn scaled(bytes: u64, unit: u64) -> String {
    ((bytes + unit / 2) / unit).to_string()
}

impl Interp<'_> {
    /// `df [-PkmhT] [-t TYPE] [-a] [PATH...]`.
    pub(super) fn cmd_df(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut unit: Option<u64> = Some(1024);
        let (mut posix, mut types, mut all) = (false, false, false);
        let mut only_type: Option<String> = None;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if a == "--" {
                i += 1;
                break;
            }
            if a.len() < 2 || !a.starts_with('-') {
                break;
            }
            let mut chars = a.chars().skip(1);
            while let Some(c) = chars.next() {
                match c {
                    'k' => unit = Some(1024),
                    'm' => unit = Some(1024 * 1024),
                    'h' | 'H' => unit = None,
                    'P' => posix = true,
                    'T' => types = true,
                    'a' => all = true,
                    't' => {
                        let rest: String = chars.by_ref().collect();
                        let value = if rest.is_empty() {
                            i += 1;
                            args.get(i).cloned()
                        } else {
                            Some(rest)
                        };
                        match value {
                            Some(v) => only_type = Some(v),
                            None => {
                                self.err(fds, "df: option requires an argument -- 't'\n");
                                return 1;
                            }
                        }
                    }
                    c => return self.bad_option("df", c, fds),
                }
            }
            i += 1;
        }
        let _ = all;
        let operands = args.get(i..).unwrap_or(&[]);
        let mounts = self.shell.mounts();
        let header_units = match unit {
            None => "     Size".to_string(),
            Some(u) if posix => format!("{u}-blocks"),
            Some(1024) => "1K-blocks".to_string(),
            Some(_) => "1M-blocks".to_string(),
        };
        let mut out = format!(
            "Filesystem           {}{:<15}Used Available {} Mounted on\n",
            if types { "Type       " } else { "" },
            header_units,
            if posix { "Capacity" } else { "Use%" }
        );
        let mut status = 0;
        let mut rows: Vec<&Mount> = Vec::new();
        if operands.is_empty() {
            rows.extend(mounts.iter());
        } else {
            for a in operands {
                let p = self.path(a);
                let found = if self.exists(&p) {
                    mounts
                        .iter()
                        .filter(|m| {
                            p == m.mount_point
                                || m.mount_point == "/"
                                || p.starts_with(&format!("{}/", m.mount_point))
                        })
                        .max_by_key(|m| m.mount_point.len())
                } else {
                    None
                };
                match found {
                    Some(m) => rows.push(m),
                    None => {
                        self.out(fds, out.as_bytes());
                        out.clear();
                        self.err(fds, &format!("df: {a}: can't find mount point\n"));
                        status = 1;
                    }
                }
            }
        }
        for m in rows {
            if only_type.as_ref().is_some_and(|t| *t != m.fs_type) {
                continue;
            }
            // statvfs in 1 KiB fragments: what is free rounds down, so what is used rounds up.
            let blocks = m.size / 1024;
            let free = m.size.saturating_sub(m.used) / 1024;
            let used = blocks.saturating_sub(free);
            let pct = (used * 100 + blocks / 2).checked_div(blocks).unwrap_or(0);
            if m.device.len() > 20 && !posix {
                out.push_str(&format!("{}\n{:20}", m.device, ""));
            } else {
                out.push_str(&format!("{:<20}", m.device));
            }
            if types {
                out.push_str(&format!(" {:<10}", m.fs_type));
            }
            let show = |b: u64| match unit {
                None => human(b * 1024),
                Some(u) => scaled(b * 1024, u),
            };
            out.push_str(&format!(
                " {:>9} {:>9} {:>9} {:>3}% {}\n",
                show(blocks),
                show(used),
                show(free),
                pct,
                m.mount_point
            ));
        }
        self.out(fds, out.as_bytes());
        status
    }

    /// `stat [-L] -c FORMAT FILE...`: the directives the simulated filesystem can answer
    /// (`%n %N %s %F %b %B %o %h %u %g %U %G %%`).
    pub(super) fn cmd_stat(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut format: Option<String> = None;
        let mut files = Vec::new();
        let mut i = 0;
        let mut opts_done = false;
        while let Some(a) = args.get(i) {
            if !opts_done && a.len() > 1 && a.starts_with('-') {
                if a == "--" {
                    opts_done = true;
                } else if let Some(f) = a.strip_prefix("--format=") {
                    format = Some(f.to_string());
                } else {
                    let mut chars = a.chars().skip(1);
                    while let Some(c) = chars.next() {
                        match c {
                            'L' | 't' => {}
                            'c' => {
                                let rest: String = chars.by_ref().collect();
                                let value = if rest.is_empty() {
                                    i += 1;
                                    args.get(i).cloned()
                                } else {
                                    Some(rest)
                                };
                                match value {
                                    Some(v) => format = Some(v),
                                    None => {
                                        self.err(fds, "stat: option requires an argument -- 'c'\n");
                                        return 1;
                                    }
                                }
                            }
                            c => return self.bad_option("stat", c, fds),
                        }
                    }
                }
            } else {
                files.push(a.clone());
            }
            i += 1;
        }
        let Some(format) = format else {
            self.err(
                fds,
                "stat: the simulated filesystem has no modes, owners or times: use stat -c with %n %s %F\n",
            );
            return 1;
        };
        if files.is_empty() {
            self.err(fds, "stat: missing operand\n");
            return 1;
        }
        let mut status = 0;
        for f in &files {
            let p = self.path(f);
            let (is_dir, size) = if self.is_dir(&p) {
                (true, 4096u64)
            } else if p == "/dev/null" {
                (false, 0)
            } else if let Some(d) = self.read(&p) {
                (false, d.len() as u64)
            } else {
                self.err(
                    fds,
                    &format!("stat: can't stat '{f}': No such file or directory\n"),
                );
                status = 1;
                continue;
            };
            match stat_line(&format, f, &p, is_dir, size) {
                Ok(line) => self.out(fds, format!("{line}\n").as_bytes()),
                Err(d) => {
                    self.err(
                        fds,
                        &format!("stat: %{d} is not modelled by the simulated filesystem\n"),
                    );
                    return 1;
                }
            }
        }
        status
    }

    /// `sha256sum`, `sha1sum`, `sha512sum` `[-c [-s] [-w]] [FILE]...`.
    pub(super) async fn cmd_shasum(&mut self, cmd: &str, args: &[String], fds: &Fds) -> i32 {
        let (flags, operands) = match super::files::getopts(args, "scwbt") {
            Ok(x) => x,
            Err(c) => return self.bad_option(cmd, c, fds),
        };
        let operands: Vec<String> = if operands.is_empty() {
            vec!["-".into()]
        } else {
            operands.to_vec()
        };
        let check = flags.contains('c');
        let silent = flags.contains('s');
        let mut status = 0;
        for a in &operands {
            if !check {
                match self.hash_file(cmd, a, fds).await {
                    Some(h) => self.out(fds, format!("{h}  {a}\n").as_bytes()),
                    None => status = 1,
                }
                continue;
            }
            let Some(input) = self.open_input(cmd, a, fds, OpenStyle::CantOpen) else {
                status = 1;
                continue;
            };
            let Some(list) = self.read_input(cmd, input, MAX_BUFFER, fds).await else {
                status = 1;
                continue;
            };
            let text = String::from_utf8_lossy(&list).into_owned();
            let (mut total, mut failed) = (0, 0);
            for line in text.lines() {
                total += 1;
                let Some((want, name)) = line.split_once(' ') else {
                    if flags.contains('w') {
                        self.err(fds, &format!("{cmd}: invalid format\n"));
                    }
                    failed += 1;
                    status = 1;
                    continue;
                };
                let name = name
                    .strip_prefix(' ')
                    .or_else(|| name.strip_prefix('*'))
                    .unwrap_or(name);
                let got = self.hash_file(cmd, name, fds).await;
                if got.as_deref() == Some(want) {
                    if !silent {
                        self.out(fds, format!("{name}: OK\n").as_bytes());
                    }
                } else {
                    if !silent {
                        self.out(fds, format!("{name}: FAILED\n").as_bytes());
                    }
                    failed += 1;
                    status = 1;
                }
            }
            if failed > 0 && !silent {
                self.err(
                    fds,
                    &format!(
                        "{cmd}: WARNING: {failed} of {total} computed checksums did NOT match\n"
                    ),
                );
            }
            if total == 0 {
                status = 1;
                self.err(fds, &format!("{cmd}: {a}: no checksum lines found\n"));
            }
        }
        status
    }

    /// The hex digest of operand `a` for `cmd`; None after saying why it can't be read.
    async fn hash_file(&mut self, cmd: &str, a: &str, fds: &Fds) -> Option<String> {
        let input = self.open_input(cmd, a, fds, OpenStyle::CantOpen)?;
        let data = self.read_input(cmd, input, MAX_BUFFER, fds).await?;
        let alg = match cmd {
            "sha1sum" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha512sum" => &ring::digest::SHA512,
            _ => &ring::digest::SHA256,
        };
        let d = ring::digest::digest(alg, &data);
        Some(d.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// `hexdump [-bcCdox] [-n LEN] [-s OFFSET] [-v] [FILE]...`.
    pub(super) async fn cmd_hexdump(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut formats: Vec<char> = Vec::new();
        let mut length: Option<usize> = None;
        let mut skip = 0usize;
        let mut all = false;
        let mut files = Vec::new();
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if a == "--" {
                files.extend(args.iter().skip(i + 1).cloned());
                break;
            }
            if a.len() > 1 && a.starts_with('-') {
                let mut chars = a.chars().skip(1);
                while let Some(c) = chars.next() {
                    match c {
                        'b' | 'c' | 'C' | 'd' | 'o' | 'x' => formats.push(c),
                        'v' => all = true,
                        'n' | 's' => {
                            let rest: String = chars.by_ref().collect();
                            let value = if rest.is_empty() {
                                i += 1;
                                args.get(i).cloned()
                            } else {
                                Some(rest)
                            };
                            let Some(v) = value.and_then(|v| parse_size(&v)) else {
                                self.err(fds, &format!("hexdump: invalid number for -{c}\n"));
                                return 1;
                            };
                            if c == 'n' {
                                length = Some(v);
                            } else {
                                skip = v;
                            }
                        }
                        c => return self.bad_option("hexdump", c, fds),
                    }
                }
            } else {
                files.push(a.clone());
            }
            i += 1;
        }
        let Some(data) = self.dump_input("hexdump", &files, fds).await else {
            return 1;
        };
        let data = window(&data, skip, length);
        if formats.is_empty() {
            // The default: hex words without -x's wide columns.
            formats.push('w');
        }
        let out = hexdump(data, skip, &formats, all);
        self.out_flow(fds, out.as_bytes()).await;
        0
    }

    /// `od [-bcdosx] [-A RADIX] [-t TYPE]... [-N COUNT] [-j SKIP] [-v] [FILE]...`.
    pub(super) async fn cmd_od(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut types: Vec<(char, usize)> = Vec::new();
        let mut radix = 'o';
        let mut count: Option<usize> = None;
        let mut skip = 0usize;
        let mut all = false;
        let mut files = Vec::new();
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if a == "--" {
                files.extend(args.iter().skip(i + 1).cloned());
                break;
            }
            if a.len() > 1 && a.starts_with('-') {
                let mut chars = a.chars().skip(1);
                while let Some(c) = chars.next() {
                    match c {
                        'b' => types.push(('o', 1)),
                        'c' => types.push(('c', 1)),
                        'd' => types.push(('u', 2)),
                        'o' => types.push(('o', 2)),
                        's' => types.push(('d', 2)),
                        'x' => types.push(('x', 2)),
                        'v' => all = true,
                        'A' | 't' | 'N' | 'j' => {
                            let rest: String = chars.by_ref().collect();
                            let value = if rest.is_empty() {
                                i += 1;
                                args.get(i).cloned()
                            } else {
                                Some(rest)
                            };
                            let Some(v) = value else {
                                self.err(
                                    fds,
                                    &format!("od: option requires an argument -- '{c}'\n"),
                                );
                                return 1;
                            };
                            match c {
                                'A' => match v.as_str() {
                                    "d" | "o" | "x" | "n" => {
                                        radix = v.chars().next().unwrap_or('o')
                                    }
                                    _ => {
                                        self.err(
                                            fds,
                                            &format!(
                                                "od: bad output address radix '{v}'; it must be one character from [doxn]\n"
                                            ),
                                        );
                                        return 1;
                                    }
                                },
                                't' => match od_types(&v) {
                                    Some(t) => types.extend(t),
                                    None => {
                                        self.err(fds, &format!("od: invalid type string '{v}'\n"));
                                        return 1;
                                    }
                                },
                                _ => {
                                    let Some(n) = parse_size(&v) else {
                                        self.err(fds, &format!("od: invalid number '{v}'\n"));
                                        return 1;
                                    };
                                    if c == 'N' {
                                        count = Some(n);
                                    } else {
                                        skip = n;
                                    }
                                }
                            }
                        }
                        c => return self.bad_option("od", c, fds),
                    }
                }
            } else {
                files.push(a.clone());
            }
            i += 1;
        }
        let Some(data) = self.dump_input("od", &files, fds).await else {
            return 1;
        };
        let data = window(&data, skip, count);
        if types.is_empty() {
            types.push(('o', 2));
        }
        let out = od(data, skip, radix, &types, all);
        self.out_flow(fds, out.as_bytes()).await;
        0
    }

    /// The files (or standard input) a dump reads, one after the other.
    async fn dump_input(&mut self, cmd: &str, files: &[String], fds: &Fds) -> Option<Vec<u8>> {
        let operands: Vec<String> = if files.is_empty() {
            vec!["-".into()]
        } else {
            files.to_vec()
        };
        let mut all = Vec::new();
        for a in &operands {
            let input = self.open_input(cmd, a, fds, OpenStyle::Perror)?;
            let data = self.read_input(cmd, input, MAX_BUFFER, fds).await?;
            all.extend_from_slice(&data);
            if all.len() > MAX_BUFFER {
                self.err(fds, &format!("{cmd}: out of memory\n"));
                return None;
            }
        }
        Some(all)
    }
}

/// A size operand: decimal, `0x` hex or `0` octal, with an optional b/k/m suffix.
fn parse_size(s: &str) -> Option<usize> {
    let (num, mult) = match s.chars().last() {
        Some('b') if !s.starts_with("0x") => (&s[..s.len() - 1], 512),
        Some('k') => (&s[..s.len() - 1], 1024),
        Some('m') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let v = if let Some(h) = num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        usize::from_str_radix(h, 16).ok()?
    } else if num.len() > 1 && num.starts_with('0') {
        usize::from_str_radix(&num[1..], 8).ok()?
    } else {
        num.parse().ok()?
    };
    v.checked_mul(mult)
}

fn window(data: &[u8], skip: usize, len: Option<usize>) -> &[u8] {
    let rest = data.get(skip.min(data.len())..).unwrap_or(&[]);
    match len {
        Some(n) => rest.get(..n.min(rest.len())).unwrap_or(&[]),
        None => rest,
    }
}

/// One line of `stat -c FORMAT` for `name`, or the directive it can't answer.
fn stat_line(
    format: &str,
    name: &str,
    path: &str,
    is_dir: bool,
    size: u64,
) -> Result<String, char> {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&f) = chars.get(i).filter(|f| "-+ #0123456789.".contains(**f)) {
            spec.push(f);
            i += 1;
        }
        let Some(&d) = chars.get(i) else {
            out.push('%');
            out.push_str(&spec);
            break;
        };
        i += 1;
        let left = spec.starts_with('-');
        let width: usize = spec
            .trim_start_matches(['-', '+', ' ', '#', '0'])
            .split('.')
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0usize)
            .min(1 << 20);
        let pad = |s: String| {
            if left {
                format!("{s:<width$}")
            } else {
                format!("{s:>width$}")
            }
        };
        let blocks = size.div_ceil(4096) * 8;
        let text = match d {
            '%' => "%".to_string(),
            'n' | 'N' => {
                if d == 'N' {
                    format!("'{name}'")
                } else {
                    name.to_string()
                }
            }
            's' => size.to_string(),
            'F' => if is_dir {
                "directory"
            } else if path == "/dev/null" {
                "character special file"
            } else if size == 0 {
                "regular empty file"
            } else {
                "regular file"
            }
            .to_string(),
            'b' => blocks.to_string(),
            'B' => "512".to_string(),
            'o' => "4096".to_string(),
            'h' => if is_dir { "2" } else { "1" }.to_string(),
            'u' | 'g' => "0".to_string(),
            'U' | 'G' => "root".to_string(),
            'a' | 'A' | 'f' | 'i' | 'd' | 'D' | 't' | 'T' | 'x' | 'X' | 'y' | 'Y' | 'z' | 'Z'
            | 'C' | 'm' | 'W' | 'w' => return Err(d),
            other => other.to_string(),
        };
        out.push_str(&pad(text));
    }
    Ok(out)
}

/// `hexdump`'s output for `data` starting at `base`: each of `formats` (`C` canonical, `w` the
/// default hex words, `x` hex words, `d` decimal words, `o` octal words, `b` octal bytes, `c`
/// characters) per 16-byte line, identical lines after the first shown as `*` (unless `all`).
/// Each field is written with the blanks before it; missing units are blanks as wide.
fn hexdump(data: &[u8], base: usize, formats: &[char], all: bool) -> String {
    let mut out = String::new();
    if data.is_empty() {
        return out;
    }
    let mut prev: Option<&[u8]> = None;
    let mut starred = false;
    for (n, line) in data.chunks(16).enumerate() {
        let addr = base + n * 16;
        if !all && line.len() == 16 && prev == Some(line) {
            if !starred {
                out.push_str("*\n");
                starred = true;
            }
            continue;
        }
        starred = false;
        prev = Some(line);
        for &f in formats {
            if f == 'C' {
                out.push_str(&format!("{addr:08x}  "));
                for i in 0..16 {
                    let last_of_group = i == 7 || i == 15;
                    match line.get(i) {
                        Some(b) => out.push_str(&format!("{b:02x}")),
                        None => out.push_str("  "),
                    }
                    if !last_of_group {
                        out.push(' ');
                    }
                    if i == 7 {
                        out.push_str("  ");
                    }
                }
                out.push_str("  |");
                for &b in line {
                    out.push(if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    });
                }
                out.push_str("|\n");
                continue;
            }
            out.push_str(&format!("{addr:07x}"));
            let (per, width) = match f {
                'b' | 'c' => (1, 4),
                'w' => (2, 5),
                _ => (2, 8),
            };
            let units = 16 / per;
            for u in 0..units {
                let i = u * per;
                let field = if i < line.len() {
                    let v = if per == 2 {
                        u16::from_le_bytes([
                            line.get(i).copied().unwrap_or(0),
                            line.get(i + 1).copied().unwrap_or(0),
                        ]) as u32
                    } else {
                        line.get(i).copied().unwrap_or(0) as u32
                    };
                    match f {
                        'b' => format!(" {v:03o}"),
                        'c' => format!(" {:>3}", char_name(v as u8)),
                        'd' => format!("   {v:05}"),
                        'o' => format!("  {v:06o}"),
                        'w' => format!(" {v:04x}"),
                        _ => format!("    {v:04x}"),
                    }
                } else {
                    " ".repeat(width)
                };
                out.push_str(&field);
            }
            out.push('\n');
        }
    }
    let end = base + data.len();
    // The last format given decides how the end address looks.
    if formats.last() == Some(&'C') {
        out.push_str(&format!("{end:08x}\n"));
    } else {
        out.push_str(&format!("{end:07x}\n"));
    }
    out
}

/// A byte as `od -c` / `hexdump -c` show it.
fn char_name(b: u8) -> String {
    match b {
        0 => "\\0".into(),
        7 => "\\a".into(),
        8 => "\\b".into(),
        9 => "\\t".into(),
        10 => "\\n".into(),
        11 => "\\v".into(),
        12 => "\\f".into(),
        13 => "\\r".into(),
        0x20..=0x7e => (b as char).to_string(),
        _ => format!("{b:03o}"),
    }
}

/// `od -t` type letters and sizes.
fn od_types(spec: &str) -> Option<Vec<(char, usize)>> {
    let mut out = Vec::new();
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            'a' | 'c' => out.push((c, 1)),
            'd' | 'o' | 'u' | 'x' => {
                let mut size = 4;
                match chars.get(i) {
                    Some('C') => {
                        size = 1;
                        i += 1;
                    }
                    Some('S') => {
                        size = 2;
                        i += 1;
                    }
                    Some('I') => {
                        size = 4;
                        i += 1;
                    }
                    Some('L') => {
                        size = 8;
                        i += 1;
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let mut n = String::new();
                        while let Some(&d) = chars.get(i).filter(|d| d.is_ascii_digit()) {
                            n.push(d);
                            i += 1;
                        }
                        size = n.parse().ok()?;
                        if ![1, 2, 4, 8].contains(&size) {
                            return None;
                        }
                    }
                    _ => {}
                }
                out.push((c, size));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The digits of one `od` field of type `t` and `size` bytes.
fn od_digits(t: char, size: usize) -> usize {
    match (t, size) {
        ('c' | 'a', _) => 3,
        ('x', s) => s * 2,
        ('o', 1) => 3,
        ('o', 2) => 6,
        ('o', 4) => 11,
        ('o', _) => 22,
        ('u', 1) => 3,
        ('u', 2) => 5,
        ('u', 4) => 10,
        ('u', _) => 20,
        ('d', 1) => 4,
        ('d', 2) => 6,
        ('d', 4) => 11,
        _ => 20,
    }
}

/// GNU od's output (busybox builds it with its desktop features) for `data` from `base`: with
/// several types, the columns line up (each byte as wide as the widest type needs).
fn od(data: &[u8], base: usize, radix: char, types: &[(char, usize)], all: bool) -> String {
    let addr = |a: usize| match radix {
        'd' => format!("{a:07}"),
        'x' => format!("{a:06x}"),
        'n' => String::new(),
        _ => format!("{a:07o}"),
    };
    // GNU od's widths: each type's fields fill the same width per 16 bytes, the widest
    // type's (a blank and the digits per field); the others are padded, the padding spread
    // over their fields.
    let block = types
        .iter()
        .map(|&(t, s)| (od_digits(t, s) + 1) * (16 / s))
        .max()
        .unwrap_or(16);
    let mut out = String::new();
    let mut prev: Option<&[u8]> = None;
    let mut starred = false;
    for (n, line) in data.chunks(16).enumerate() {
        let a = base + n * 16;
        if !all && line.len() == 16 && prev == Some(line) {
            if !starred {
                out.push_str("*\n");
                starred = true;
            }
            continue;
        }
        starred = false;
        prev = Some(line);
        for (k, &(t, size)) in types.iter().enumerate() {
            if k == 0 {
                out.push_str(&addr(a));
            } else {
                out.push_str(&" ".repeat(addr(a).len()));
            }
            let digits = od_digits(t, size);
            let fields = 16 / size;
            let pad = block - digits * fields;
            for (fi, unit) in line.chunks(size).enumerate() {
                let mut bytes = [0u8; 8];
                for (j, b) in unit.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(j) {
                        *slot = *b;
                    }
                }
                let v = u64::from_le_bytes(bytes);
                let bits = size * 8;
                let signed = if bits >= 64 {
                    v as i64
                } else {
                    ((v << (64 - bits)) as i64) >> (64 - bits)
                };
                let first = unit.first().copied().unwrap_or(0);
                let text = match t {
                    'c' => char_name(first),
                    'a' => ascii_name(first),
                    'x' => format!("{v:0digits$x}"),
                    'o' => format!("{v:0digits$o}"),
                    'u' => v.to_string(),
                    _ => signed.to_string(),
                };
                let w = digits + pad * (fi + 1) / fields - pad * fi / fields;
                out.push_str(&format!("{text:>w$}"));
            }
            out.push('\n');
        }
    }
    if radix != 'n' {
        out.push_str(&addr(base + data.len()));
        out.push('\n');
    }
    out
}

/// A byte as `od -t a` names it.
fn ascii_name(b: u8) -> String {
    const NAMES: [&str; 33] = [
        "nul", "soh", "stx", "etx", "eot", "enq", "ack", "bel", "bs", "ht", "nl", "vt", "ff", "cr",
        "so", "si", "dle", "dc1", "dc2", "dc3", "dc4", "nak", "syn", "etb", "can", "em", "sub",
        "esc", "fs", "gs", "rs", "us", "sp",
    ];
    let b = b & 0x7f;
    match NAMES.get(b as usize) {
        Some(n) => n.to_string(),
        None if b == 0x7f => "del".into(),
        None => (b as char).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0");
        assert_eq!(human(512), "512");
        assert_eq!(human(64 * 1024 * 1024), "64.0M");
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(1023 * 1024 + 1000), "1024.0K");
    }

    #[test]
    fn dumps() {
        assert_eq!(
            hexdump(b"hello\n", 0, &['C'], false),
            "00000000  68 65 6c 6c 6f 0a                                 |hello.|\n00000006\n"
        );
        assert_eq!(
            hexdump(b"hello\n", 0, &['w'], false),
            format!("0000000 6568 6c6c 0a6f{}\n0000006\n", " ".repeat(25))
        );
        assert_eq!(
            hexdump(&[0u8; 48], 0, &['C'], false),
            "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n00000030\n"
        );
        assert_eq!(
            od(b"hi\n", 0, 'o', &[('c', 1)], false),
            "0000000   h   i  \\n\n0000003\n"
        );
        assert_eq!(
            od(b"hello\n", 0, 'o', &[('o', 2)], false),
            "0000000 062550 066154 005157\n0000006\n"
        );
        assert_eq!(
            od(&[1, 255], 0, 'n', &[('x', 1), ('d', 1)], false),
            "   01   ff\n    1   -1\n"
        );
        assert_eq!(
            hexdump(b"AB", 0, &['x', 'c'], false),
            format!(
                "0000000    4241{}\n0000000   A   B{}\n0000002\n",
                " ".repeat(56),
                " ".repeat(56)
            )
        );
    }
}
