//! `tar`: create (`-c`), extract (`-x`) and list (`-t`) archives on the
//! [`Shell`](super::super::Shell)'s filesystem as busybox 1.36's tar does, which is what
//! `kubectl cp` runs in the container (`tar cf - PATH` to copy out, `tar -xmf - [-C DIR]` or
//! `tar --no-same-permissions --no-same-owner -xmf - [-C DIR]` to copy in). Archives it writes
//! have GNU headers (magic `ustar  `, `././@LongLink` entries for names of 100 bytes and more);
//! it reads those, ustar and PAX (Go's archive/tar) and gzip-compressed ones. Regular files and
//! directories only: other entries (links, devices) are skipped. Modes, owners and times are
//! not kept (the filesystem has none): files are written 0644 and directories 0755, owned by
//! root, dated now.

use std::io::Read;

use super::super::interp::{parent, Fds, Interp};
use super::super::io::MAX_ARCHIVE;
use super::date::strftime;

const USAGE: &str = "Usage: tar c|x|t [-ZzJjahmvokO] [-f TARFILE] [-C DIR] [-T FILE] [-X FILE] [LONGOPT]... [FILE]...\n";
const BLOCK: usize = 512;

#[derive(Default)]
struct TarOpts {
    create: bool,
    extract: bool,
    list: bool,
    file: Option<String>,
    dir: Option<String>,
    verbose: u8,
    to_stdout: bool,
    keep_old: bool,
    gzip: bool,
    strip: usize,
    no_recursion: bool,
    excludes: Vec<String>,
    operands: Vec<String>,
}

/// Why tar stops: its message (without the `tar: ` prefix).
struct Die(String);

impl TarOpts {
    /// busybox's reading of tar's command line; Err(message) for a bad one (None: the usage).
    fn parse(args: &[String]) -> Result<TarOpts, Option<String>> {
        let mut args = args.to_vec();
        // `tar xf FILE`: a first argument without a dash is a bundle of options, with `f`
        // moved to its end so that it takes the next argument.
        if let Some(first) = args.first_mut() {
            if !first.is_empty() && !first.starts_with('-') {
                let mut letters: String = first.chars().filter(|&c| c != 'f').collect();
                if first.contains('f') {
                    letters.push('f');
                }
                *first = format!("-{letters}");
            }
        }
        let mut o = TarOpts::default();
        let mut i = 0;
        let mut operands = Vec::new();
        while let Some(a) = args.get(i).cloned() {
            i += 1;
            if a == "--" {
                operands.extend(args.iter().skip(i).cloned());
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let value = |i: &mut usize| -> Result<String, Option<String>> {
                    if let Some(v) = inline.clone() {
                        return Ok(v);
                    }
                    let v = args
                        .get(*i)
                        .cloned()
                        .ok_or_else(|| Some(format!("option '--{name}' requires an argument")))?;
                    *i += 1;
                    Ok(v)
                };
                match name {
                    "list" => o.list = true,
                    "extract" | "get" => o.extract = true,
                    "create" => o.create = true,
                    "directory" => o.dir = Some(value(&mut i)?),
                    "file" => o.file = Some(value(&mut i)?),
                    "to-stdout" => o.to_stdout = true,
                    "verbose" => o.verbose = o.verbose.saturating_add(1),
                    "keep-old" => o.keep_old = true,
                    "gzip" => o.gzip = true,
                    "strip-components" => {
                        let v = value(&mut i)?;
                        o.strip = v
                            .parse()
                            .map_err(|_| Some(format!("invalid number '{v}'")))?;
                    }
                    "exclude" => o.excludes.push(value(&mut i)?),
                    "no-recursion" => o.no_recursion = true,
                    "no-same-owner"
                    | "same-permissions"
                    | "no-same-permissions"
                    | "numeric-owner"
                    | "overwrite"
                    | "touch"
                    | "dereference"
                    | "auto-compress"
                    | "same-owner" => {}
                    _ => return Err(Some(format!("unrecognized option '--{name}'"))),
                }
                continue;
            }
            if a.len() < 2 || !a.starts_with('-') {
                operands.push(a);
                continue;
            }
            let letters: Vec<char> = a.chars().skip(1).collect();
            let mut k = 0;
            while let Some(&c) = letters.get(k) {
                k += 1;
                let takes_arg = matches!(c, 'C' | 'f' | 'T' | 'X');
                let mut arg = String::new();
                if takes_arg {
                    let rest: String = letters.iter().skip(k).collect();
                    k = letters.len();
                    arg = if !rest.is_empty() {
                        rest
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.clone()
                    } else {
                        return Err(Some(format!("option requires an argument -- '{c}'")));
                    };
                }
                match c {
                    't' => o.list = true,
                    'x' => o.extract = true,
                    'c' => o.create = true,
                    'C' => o.dir = Some(arg),
                    'f' => o.file = Some(arg),
                    'O' => o.to_stdout = true,
                    'v' => o.verbose = o.verbose.saturating_add(1),
                    'k' => o.keep_old = true,
                    'z' => o.gzip = true,
                    'o' | 'p' | 'm' | 'h' | 'a' => {}
                    _ => return Err(Some(format!("invalid option -- '{c}'"))),
                }
            }
        }
        // -t counts as a -v too (busybox: one -t lists names, -tv the long form).
        if o.list {
            o.verbose = o.verbose.saturating_add(1);
        }
        let modes = [o.create, o.extract, o.list].iter().filter(|&&m| m).count();
        if modes != 1 {
            return Err(None);
        }
        for op in operands {
            // A trailing `/` is dropped unless the operand is just `/`.
            let op = if op.len() > 1 && op.ends_with('/') {
                op.get(..op.len() - 1).unwrap_or("").to_string()
            } else {
                op
            };
            o.operands.push(op);
        }
        Ok(o)
    }
}

/// busybox's strip_unsafe_prefix: leading `/`s and `../`s, and everything up to a `/../`.
fn strip_unsafe(name: &str) -> (&str, &str) {
    let mut cp = name;
    loop {
        if let Some(r) = cp.strip_prefix('/') {
            cp = r;
            continue;
        }
        if let Some(r) = cp.strip_prefix("../") {
            cp = r;
            continue;
        }
        match cp.find("/../") {
            Some(i) => cp = cp.get(i + 4..).unwrap_or(""),
            None => break,
        }
    }
    let cut = name.len() - cp.len();
    (name.get(..cut).unwrap_or(""), cp)
}

/// `name` under `base` (an absolute name stays as it is).
fn join(base: &str, name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// A GNU tar header (as busybox writes them) for `name` of type `kind` and `size` bytes; the
/// name is cut to the header's 100 bytes (a long one goes before it in its own entry).
fn header(name: &[u8], kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    let field = &mut h.as_old_mut().name;
    for (dst, src) in field.iter_mut().zip(name.iter()) {
        *dst = *src;
    }
    h.set_cksum();
    h
}

/// The header of a GNU long name entry as busybox writes it: `././@LongLink`, zero mode,
/// owner and time, no user or group name.
fn long_name_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(size);
    h.set_mode(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let field = &mut h.as_old_mut().name;
    for (dst, src) in field.iter_mut().zip(b"././@LongLink".iter()) {
        *dst = *src;
    }
    h.set_cksum();
    h
}

fn push_entry(out: &mut Vec<u8>, h: &tar::Header, data: &[u8]) {
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// `drwxr-xr-x` and friends for `tar -tv`.
fn mode_string(kind: tar::EntryType, mode: u32) -> String {
    let t = match kind {
        tar::EntryType::Directory => 'd',
        tar::EntryType::Symlink => 'l',
        tar::EntryType::Char => 'c',
        tar::EntryType::Block => 'b',
        tar::EntryType::Fifo => 'p',
        _ => '-',
    };
    let mut s = String::from(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let on = mode & bit != 0;
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        s.push(match (special, on, i) {
            (true, true, 8) => 't',
            (true, false, 8) => 'T',
            (true, true, _) => 's',
            (true, false, _) => 'S',
            (false, true, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

/// An entry of an archive, read whole.
struct Member {
    /// The name as stored (long and PAX names applied).
    name: String,
    kind: tar::EntryType,
    size: u64,
    /// A regular file's data.
    content: Vec<u8>,
    mode: u32,
    user: String,
    group: String,
    mtime: i64,
    link: Option<String>,
}

/// The entries of an archive up to its end, or up to what stops it (busybox's message).
fn read_members(data: &[u8]) -> (Vec<Member>, Option<Die>) {
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(data);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(_) => return (members, Some(Die("short read".into()))),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let why = if e.to_string().contains("checksum") {
                    "invalid tar header checksum"
                } else {
                    "short read"
                };
                return (members, Some(Die(why.into())));
            }
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        let size = entry.size();
        let mut content = Vec::new();
        let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        if regular && (entry.read_to_end(&mut content).is_err() || (content.len() as u64) < size) {
            return (members, Some(Die("short read".into())));
        }
        let h = entry.header();
        let user = h
            .username()
            .ok()
            .flatten()
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| h.uid().unwrap_or(0).to_string());
        let group = h
            .groupname()
            .ok()
            .flatten()
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| h.gid().unwrap_or(0).to_string());
        let mtime = i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0);
        let mode = h.mode().unwrap_or(0);
        members.push(Member {
            name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            kind,
            size,
            content,
            mode,
            user,
            group,
            mtime,
            link: entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
        });
    }
    (members, None)
}

impl Interp<'_> {
    pub(super) async fn cmd_tar(&mut self, args: &[String], fds: &Fds) -> i32 {
        let o = match TarOpts::parse(args) {
            Ok(o) => o,
            Err(Some(msg)) => {
                self.err(fds, &format!("tar: {msg}\n{USAGE}"));
                return 1;
            }
            Err(None) => {
                self.err(fds, USAGE);
                return 1;
            }
        };
        let result = if o.create {
            self.tar_create(&o, fds).await
        } else {
            self.tar_read(&o, fds).await
        };
        match result {
            Ok(code) => code,
            Err(Die(msg)) => {
                self.err(fds, &format!("tar: {msg}\n"));
                1
            }
        }
    }

    /// The directory `-C` names (checked), or `/`.
    fn tar_base(&self, o: &TarOpts) -> Result<String, Die> {
        match &o.dir {
            None => Ok("/".to_string()),
            Some(d) => {
                let p = self.path(d);
                if self.is_dir(&p) {
                    Ok(p)
                } else {
                    let why = if self.exists(&p) {
                        "Not a directory"
                    } else {
                        "No such file or directory"
                    };
                    Err(Die(format!("can't change directory to '{d}': {why}")))
                }
            }
        }
    }

    async fn tar_create(&mut self, o: &TarOpts, fds: &Fds) -> Result<i32, Die> {
        if o.operands.is_empty() {
            return Err(Die("empty archive".into()));
        }
        let file = o.file.clone().filter(|f| f != "-");
        let mut archive_path = None;
        if let Some(f) = &file {
            let p = self.path(f);
            let why = if p.is_empty() || !self.is_dir(parent(&p)) {
                Some("No such file or directory".to_string())
            } else if self.is_dir(&p) {
                Some("Is a directory".to_string())
            } else {
                self.shell.write(&p, b"", false).err()
            };
            if let Some(why) = why {
                return Err(Die(format!("can't open '{f}': {why}")));
            }
            archive_path = Some(p);
        }
        let base = self.tar_base(o)?;
        let mtime = u64::try_from(self.shell.now_unix()).unwrap_or(0);
        let mut out = Vec::new();
        let mut failed = false;
        let mut warned = false;
        let verbose_to_err = file.is_none();
        for op in &o.operands {
            // (name as walked, absolute path)
            let mut stack = vec![(op.clone(), self.path(&join(&base, op)))];
            while let Some((name, path)) = stack.pop() {
                let is_dir = self.is_dir(&path);
                if !is_dir && !self.is_file(&path) {
                    self.err(fds, &format!("tar: {name}: No such file or directory\n"));
                    failed = true;
                    continue;
                }
                let (cut, header_name) = strip_unsafe(&name);
                if !cut.is_empty() && !warned {
                    warned = true;
                    self.err(
                        fds,
                        &format!("tar: removing leading '{cut}' from member names\n"),
                    );
                }
                let header_name = header_name.to_string();
                if o.excludes.contains(&header_name) {
                    continue;
                }
                if archive_path.as_deref() == Some(path.as_str()) {
                    self.err(
                        fds,
                        &format!("tar: {name}: file is the archive; skipping\n"),
                    );
                    continue;
                }
                if !header_name.is_empty() {
                    let (kind, data, mode) = if is_dir {
                        (tar::EntryType::Directory, Vec::new(), 0o755)
                    } else {
                        (
                            tar::EntryType::Regular,
                            self.read(&path).unwrap_or_default(),
                            0o644,
                        )
                    };
                    let mut full = header_name.clone().into_bytes();
                    if is_dir {
                        full.push(b'/');
                    }
                    if full.len() >= 100 {
                        // GNU long name: the name (a directory's with its `/`) and a NUL in
                        // an entry of its own, before the entry it names.
                        let mut long = full.clone();
                        long.push(0);
                        push_entry(&mut out, &long_name_header(long.len() as u64), &long);
                    }
                    let short = full.get(..full.len().min(100)).unwrap_or(&[]);
                    let h = header(short, kind, data.len() as u64, mode, mtime);
                    push_entry(&mut out, &h, &data);
                    if out.len() > MAX_ARCHIVE {
                        return Err(Die("out of memory".into()));
                    }
                    if o.verbose > 0 {
                        let line = format!("{header_name}{}\n", if is_dir { "/" } else { "" });
                        if verbose_to_err {
                            self.err(fds, &line);
                        } else {
                            self.out(fds, line.as_bytes());
                        }
                    }
                }
                if is_dir && !o.no_recursion {
                    let mut children = self.shell.list_dir(&path).unwrap_or_default();
                    children.sort();
                    children.dedup();
                    for c in children.into_iter().rev() {
                        if c.is_empty() || c == "." || c == ".." || c.contains('/') {
                            continue;
                        }
                        let child_name = if name.ends_with('/') {
                            format!("{name}{c}")
                        } else {
                            format!("{name}/{c}")
                        };
                        let child_path = if path == "/" {
                            format!("/{c}")
                        } else {
                            format!("{path}/{c}")
                        };
                        stack.push((child_name, child_path));
                    }
                }
                tokio::task::yield_now().await;
            }
        }
        out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        match archive_path {
            Some(p) => {
                if let Err(why) = self.shell.write(&p, &out, false) {
                    return Err(Die(format!("write error: {why}")));
                }
            }
            None => self.out_flow(fds, &out).await,
        }
        if failed {
            self.err(fds, "tar: error exit delayed from previous errors\n");
            return Ok(1);
        }
        Ok(0)
    }

    async fn tar_read(&mut self, o: &TarOpts, fds: &Fds) -> Result<i32, Die> {
        let mut data = match o.file.as_deref().filter(|f| *f != "-") {
            Some(f) => {
                let p = self.path(f);
                if self.is_dir(&p) {
                    return Err(Die("read error: Is a directory".into()));
                }
                self.read(&p)
                    .ok_or_else(|| Die(format!("can't open '{f}': No such file or directory")))?
            }
            None => {
                let src = fds.inp.clone();
                self.read_all(&src, MAX_ARCHIVE)
                    .await
                    .map_err(|()| Die("out of memory".into()))?
            }
        };
        let base = self.tar_base(o)?;
        if data.starts_with(&[0x1f, 0x8b]) || o.gzip {
            if !data.starts_with(&[0x1f, 0x8b]) {
                return Err(Die("invalid magic".into()));
            }
            let mut plain = Vec::new();
            let decoder = flate2::read::MultiGzDecoder::new(data.as_slice());
            match decoder.take(MAX_ARCHIVE as u64 + 1).read_to_end(&mut plain) {
                Ok(_) if plain.len() > MAX_ARCHIVE => return Err(Die("out of memory".into())),
                Ok(_) => data = plain,
                Err(_) => return Err(Die("corrupted data".into())),
            }
        }
        if data.is_empty() {
            self.err(fds, "tar: short read\n");
            return Ok(1);
        }
        let first = data.get(..BLOCK).ok_or_else(|| Die("short read".into()))?;
        if first.iter().any(|&b| b != 0) {
            let magic = first.get(257..262).unwrap_or(&[]);
            if magic != b"ustar" && magic != [0u8; 5] {
                return Err(Die("invalid tar magic".into()));
            }
        }
        let (members, broken) = read_members(&data);
        let mut warned = false;
        let mut seen: Vec<bool> = vec![false; o.operands.len()];
        let mut listing = String::new();
        for m in members {
            tokio::task::yield_now().await;
            let kind = m.kind;
            let (cut, stripped) = strip_unsafe(&m.name);
            if !cut.is_empty() && !warned {
                warned = true;
                self.err(
                    fds,
                    &format!("tar: removing leading '{cut}' from member names\n"),
                );
            }
            let mut name = stripped.to_string();
            if name.is_empty() {
                continue;
            }
            if o.strip > 0 {
                let mut rest = name.as_str();
                let mut ok = true;
                for _ in 0..o.strip {
                    match rest.find('/') {
                        Some(i) if rest.len() > i + 1 => rest = rest.get(i + 1..).unwrap_or(""),
                        _ => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                name = rest.to_string();
            }
            let bare = name.trim_end_matches('/');
            if o.excludes.iter().any(|x| x == bare) {
                continue;
            }
            if !o.operands.is_empty() {
                let mut accepted = false;
                for (i, op) in o.operands.iter().enumerate() {
                    let op = op.trim_end_matches('/');
                    if bare == op || bare.starts_with(&format!("{op}/")) {
                        accepted = true;
                        if let Some(s) = seen.get_mut(i) {
                            *s = true;
                        }
                    }
                }
                if !accepted {
                    continue;
                }
            }
            let is_dir = kind == tar::EntryType::Directory || name.ends_with('/');
            let is_file =
                !is_dir && matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
            let content = m.content;
            if o.list {
                if o.verbose >= 2 {
                    let when = strftime("%Y-%m-%d %H:%M:%S", m.mtime);
                    let mode = mode_string(kind, m.mode);
                    let shown_size = if is_file { m.size } else { 0 };
                    listing.push_str(&format!(
                        "{mode} {}/{} {shown_size:9} {when} {name}",
                        m.user, m.group
                    ));
                    if let Some(target) = &m.link {
                        listing.push_str(" -> ");
                        listing.push_str(target);
                    }
                    listing.push('\n');
                } else {
                    listing.push_str(&name);
                    listing.push('\n');
                }
                if listing.len() > 64 * 1024 {
                    let chunk = std::mem::take(&mut listing);
                    self.out_flow(fds, chunk.as_bytes()).await;
                }
                continue;
            }
            // Extract.
            if o.verbose > 0 {
                self.out(fds, format!("{name}\n").as_bytes());
            }
            if !is_dir && !is_file {
                tracing::debug!(name = %name, kind = ?kind, "tar: entry of a type the simulated filesystem lacks, skipped");
                continue;
            }
            if o.to_stdout {
                if is_file {
                    self.out_flow(fds, &content).await;
                }
                continue;
            }
            let dest = self.path(&join(&base, bare));
            if dest.is_empty() {
                continue;
            }
            self.tar_make_parents(&base, &dest, fds)?;
            if is_dir {
                if !self.exists(&dest) {
                    if let Err(why) = self.shell.mkdir(&dest) {
                        self.err(fds, &format!("tar: can't make dir {bare}: {why}\n"));
                    }
                }
                continue;
            }
            if self.is_dir(&dest) {
                return Err(Die(format!("can't remove old file {bare}: Is a directory")));
            }
            if o.keep_old && self.exists(&dest) {
                continue;
            }
            if let Err(why) = self.shell.write(&dest, &content, false) {
                return Err(Die(format!("can't open '{bare}': {why}")));
            }
        }
        if !listing.is_empty() {
            self.out_flow(fds, listing.as_bytes()).await;
        }
        if let Some(die) = broken {
            return Err(die);
        }
        for (op, found) in o.operands.iter().zip(seen) {
            if !found {
                return Err(Die(format!("{op}: not found in archive")));
            }
        }
        Ok(0)
    }

    /// Create the missing directories above `dest` (below `/`), as busybox's tar creates
    /// leading directories.
    fn tar_make_parents(&mut self, base: &str, dest: &str, _fds: &Fds) -> Result<(), Die> {
        let dir = parent(dest).to_string();
        if self.is_dir(&dir) {
            return Ok(());
        }
        let mut cur = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            if self.is_dir(&cur) {
                continue;
            }
            let shown = cur
                .strip_prefix(base)
                .map(|s| s.trim_start_matches('/'))
                .filter(|s| !s.is_empty())
                .unwrap_or(&cur)
                .to_string();
            if self.exists(&cur) {
                return Err(Die(format!(
                    "can't create directory '{shown}': Not a directory"
                )));
            }
            if let Err(why) = self.shell.mkdir(&cur) {
                return Err(Die(format!("can't create directory '{shown}': {why}")));
            }
        }
        Ok(())
    }
}
