//! The simulated filesystems: a container's root filesystem and the volumes mounted into it.
//!
//! Each [`Fs`] holds regular files, directories and symbolic links with Unix metadata (the
//! permission bits with setuid, setgid and sticky, an owner and a group) and has a type, as
//! `statfs(2)` reports it:
//!
//! - a container's root filesystem is the image's `overlay`;
//! - an emptyDir of the default medium lives on the node's disk, which is `ext4` here, and so
//!   do configMap and downwardAPI volumes (the kubelet wraps them in such an emptyDir);
//! - an emptyDir with `medium: Memory`, secret and projected volumes are `tmpfs` mounts (whose
//!   root directory is the tmpfs default, `1777`).
//!
//! Paths resolve as the kernel resolves them: component by component, through mount points and
//! symbolic links (relative or absolute, at most 40 of them), so the `..data` layout of
//! configMap and secret volumes reads as on a node. A mount may be read-only and may expose
//! a sub-directory (or a single file) of its filesystem, as subPath mounts do.
//!
//! Writes come from an [`Identity`]: new files get its user, and its group unless the directory
//! they are made in has the setgid bit (then the directory's group, as on Linux); its umask
//! applies to the modes of what the legacy calls ([`Fs::write`], [`Fs::mkdir`]) create. The
//! calls that return an [`FsError`] also check permissions as the kernel does for the last
//! component (root may read and write anything; others need the owner, group or other bits,
//! supplementary groups included); directory search permission along the way is not checked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// How many bytes one writable filesystem (a container's, or one volume) may hold.
pub const FS_CAPACITY: usize = 64 * 1024 * 1024;

/// What a write past a filesystem's capacity fails with.
pub const NO_SPACE: &str = "No space left on device";

/// How many symbolic links one lookup follows (the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// `S_IFMT`: the type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
/// `S_IFDIR`.
pub const S_IFDIR: u32 = 0o040_000;
/// `S_IFREG`.
pub const S_IFREG: u32 = 0o100_000;
/// `S_IFLNK`.
pub const S_IFLNK: u32 = 0o120_000;
/// `S_ISUID`.
pub const S_ISUID: u32 = 0o4000;
/// `S_ISGID`.
pub const S_ISGID: u32 = 0o2000;
/// `S_ISVTX` (sticky).
pub const S_ISVTX: u32 = 0o1000;

/// The top-level directories every image has (`/tmp` with mode 1777, the others 0755).
const IMAGE_DIRS: &[&str] = &["/bin", "/dev", "/etc", "/proc", "/tmp", "/usr", "/var"];

/// The type of a filesystem, as `statfs(2)` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsType {
    /// A container image's root filesystem.
    Overlay,
    /// The node's disk.
    Ext4,
    /// Memory.
    Tmpfs,
}

impl FsType {
    /// The `f_type` magic number.
    pub fn magic(self) -> i64 {
        match self {
            Self::Overlay => 0x794c_7630,
            Self::Ext4 => 0xef53,
            Self::Tmpfs => 0x0102_1994,
        }
    }

    /// The device `df` and `mount` show for a filesystem of this type (a node's disk is
    /// `/dev/sda1`).
    pub fn device(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Ext4 => "/dev/sda1",
            Self::Tmpfs => "tmpfs",
        }
    }

    /// The name `mount` shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Ext4 => "ext4",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// Who a filesystem operation runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (a pod's `fsGroup` and `supplementalGroups`).
    pub groups: Vec<u32>,
    /// The umask the legacy calls apply.
    pub umask: u32,
}

impl Identity {
    /// root, with the usual umask 022.
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            umask: 0o022,
        }
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Whether this identity may access something of `mode` owned by `uid`:`gid` for `want`
    /// (4 read, 2 write, 1 execute/search).
    fn may(&self, st: &Stat, want: u32) -> bool {
        if self.uid == 0 {
            // CAP_DAC_OVERRIDE: everything but executing a file no one may execute.
            return want & 1 == 0 || st.kind == FileKind::Dir || st.mode & 0o111 != 0;
        }
        let bits = if self.uid == st.uid {
            st.mode >> 6
        } else if self.in_group(st.gid) {
            st.mode >> 3
        } else {
            st.mode
        } & 7;
        bits & want == want
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::root()
    }
}

/// Why a filesystem operation failed: an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// `ENOENT`.
    NotFound,
    /// `ENOTDIR`.
    NotDir,
    /// `EISDIR`.
    IsDir,
    /// `EROFS`.
    ReadOnly,
    /// `ENOSPC`.
    NoSpace,
    /// `ELOOP`.
    Loop,
    /// `EACCES`.
    Access,
    /// `EEXIST`.
    Exists,
    /// `EBUSY` (a mount point).
    Busy,
    /// `EXDEV` (a rename across filesystems).
    CrossDevice,
}

impl FsError {
    /// The message as Go's `syscall.Errno` prints it.
    pub fn go(self) -> &'static str {
        match self {
            Self::NotFound => "no such file or directory",
            Self::NotDir => "not a directory",
            Self::IsDir => "is a directory",
            Self::ReadOnly => "read-only file system",
            Self::NoSpace => "no space left on device",
            Self::Loop => "too many levels of symbolic links",
            Self::Access => "permission denied",
            Self::Exists => "file exists",
            Self::Busy => "device or resource busy",
            Self::CrossDevice => "invalid cross-device link",
        }
    }

    /// The message as C's `strerror` (musl, glibc) prints it.
    pub fn libc(self) -> &'static str {
        match self {
            Self::NotFound => "No such file or directory",
            Self::NotDir => "Not a directory",
            Self::IsDir => "Is a directory",
            Self::ReadOnly => "Read-only file system",
            Self::NoSpace => NO_SPACE,
            Self::Loop => "Symbolic link loop",
            Self::Access => "Permission denied",
            Self::Exists => "File exists",
            Self::Busy => "Resource busy",
            Self::CrossDevice => "Cross-device link",
        }
    }
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.go())
    }
}

impl std::error::Error for FsError {}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// What `stat(2)` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The type.
    pub kind: FileKind,
    /// Permission bits with setuid, setgid and sticky (`07777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (a symbolic link's: its target's length; a directory's: 4096).
    pub size: u64,
}

impl Stat {
    /// `st_mode`: type and mode bits.
    pub fn st_mode(&self) -> u32 {
        let kind = match self.kind {
            FileKind::File => S_IFREG,
            FileKind::Dir => S_IFDIR,
            FileKind::Symlink => S_IFLNK,
        };
        kind | (self.mode & 0o7777)
    }

    /// Go's `FileMode.String()` of it (`-rw-r--r--`, `dtrwxrwxrwx`, `Lrwxrwxrwx`).
    pub fn go_mode(&self) -> String {
        go_file_mode(self.st_mode())
    }

    /// Go's `FileMode.Perm().String()` of it (`-rwxrwxrwx` for any directory of mode 777).
    pub fn go_perm(&self) -> String {
        go_file_mode(self.mode & 0o777)
    }
}

/// Go's `os.FileMode.String()` for a Unix `st_mode`: the type and special bits as letters
/// (`d` directory, `L` symbolic link, `u` setuid, `g` setgid, `t` sticky, ...; `-` when none),
/// then `rwxrwxrwx`.
pub fn go_file_mode(st_mode: u32) -> String {
    let mut out = String::new();
    let kind = st_mode & S_IFMT;
    // Go's letters in its bit order: d a l T L D p S u g c t ?
    let letters: [(bool, char); 8] = [
        (kind == S_IFDIR, 'd'),
        (kind == S_IFLNK, 'L'),
        (kind == 0o060_000 || kind == 0o020_000, 'D'),
        (kind == 0o010_000, 'p'),
        (kind == 0o140_000, 'S'),
        (st_mode & S_ISUID != 0, 'u'),
        (st_mode & S_ISGID != 0, 'g'),
        (kind == 0o020_000, 'c'),
    ];
    for (set, c) in letters {
        if set {
            out.push(c);
        }
    }
    if st_mode & S_ISVTX != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if st_mode & (1 << (8 - i)) != 0 {
            c
        } else {
            '-'
        });
    }
    out
}

/// What a path holds in one filesystem.
#[derive(Clone, Debug)]
enum Data {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

#[derive(Clone, Debug)]
struct Node {
    data: Data,
    /// `07777`.
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Node {
    fn dir(mode: u32, uid: u32, gid: u32) -> Self {
        Self {
            data: Data::Dir,
            mode,
            uid,
            gid,
        }
    }

    fn stat(&self) -> Stat {
        let (kind, size) = match &self.data {
            Data::File(d) => (FileKind::File, d.len() as u64),
            Data::Dir => (FileKind::Dir, 4096),
            Data::Symlink(t) => (FileKind::Symlink, t.len() as u64),
        };
        Stat {
            kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size,
        }
    }

    fn bytes(&self) -> usize {
        match &self.data {
            Data::File(d) => d.len(),
            _ => 0,
        }
    }
}

/// A filesystem mounted into another one.
#[derive(Clone, Debug)]
pub struct Mount {
    /// Where (an absolute path of the outer filesystem).
    pub path: String,
    /// What.
    pub fs: Arc<Fs>,
    /// The directory (or file) of `fs` that appears there: `/`, or a subPath.
    pub root: String,
    /// Whether writes through it fail with `EROFS`.
    pub read_only: bool,
}

impl Mount {
    /// All of `fs`, writable, at `path`.
    pub fn new(path: &str, fs: Arc<Fs>) -> Self {
        Self {
            path: normalize_path(path),
            fs,
            root: "/".into(),
            read_only: false,
        }
    }

    /// The same mount, read-only or not.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The same mount, exposing `root` of its filesystem instead of all of it.
    #[must_use]
    pub fn sub_path(mut self, root: &str) -> Self {
        self.root = normalize_path(root);
        self
    }
}

/// A filesystem, with other filesystems mounted into it: a volume's filesystem is shared by
/// every container that mounts it (an emptyDir written by an init container is seen by the app
/// container).
///
/// Each filesystem has a capacity (the node's disk, as far as this filesystem may use it): a
/// write past it fails with "No space left on device", so a container appending to a file
/// without end holds at most [`FS_CAPACITY`] of the kubelet's memory (per filesystem: a node
/// running many such containers still adds them up).
#[derive(Debug)]
pub struct Fs {
    /// By absolute path inside this filesystem; `/` is the root directory.
    nodes: Mutex<BTreeMap<String, Node>>,
    /// Longest mount point first.
    mounts: Vec<Mount>,
    /// Bytes held by regular files.
    used: AtomicUsize,
    capacity: usize,
    fs_type: FsType,
    /// Who creates what is written through this filesystem.
    identity: Identity,
    /// Writes to this filesystem itself (not to what is mounted on it) fail with `EROFS`: a
    /// container's `readOnlyRootFilesystem`.
    read_only: bool,
}

impl Default for Fs {
    fn default() -> Self {
        Self::with_files(BTreeMap::new())
    }
}

/// A path made absolute and lexically clean (`.`, `..` and repeated slashes resolved).
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent_of(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The prefix every path strictly under `dir` has.
fn under(dir: &str) -> String {
    if dir == "/" {
        "/".into()
    } else {
        format!("{dir}/")
    }
}

/// Where a path lands: the filesystem holding it, the path inside that filesystem, whether
/// the mount it came through is read-only, and the path as the outer filesystem sees it
/// (symbolic links resolved).
struct Place<'a> {
    fs: &'a Fs,
    inner: String,
    read_only: bool,
    full: String,
}

impl Fs {
    /// An empty filesystem of `fs_type` whose root directory has `root_mode`, owned by root:
    /// what the kubelet sets up for a volume.
    pub fn new(fs_type: FsType, root_mode: u32) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node::dir(root_mode & 0o7777, 0, 0));
        Self {
            nodes: Mutex::new(nodes),
            mounts: Vec::new(),
            used: AtomicUsize::new(0),
            capacity: FS_CAPACITY,
            fs_type,
            identity: Identity::root(),
            read_only: false,
        }
    }

    /// A node's own filesystem (its disk): the usual top-level directories, `/tmp` with mode
    /// 1777. hostPath volumes are views of it ([`Fs::view`]).
    pub fn node() -> Self {
        let fs = Self::new(FsType::Ext4, 0o755);
        {
            let mut nodes = fs.nodes.lock();
            for d in [
                "/bin", "/dev", "/etc", "/home", "/mnt", "/opt", "/proc", "/root", "/run", "/srv",
                "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log",
            ] {
                let mode = if d == "/tmp" { 0o1777 } else { 0o755 };
                nodes.insert(d.to_string(), Node::dir(mode, 0, 0));
            }
        }
        fs
    }

    /// A filesystem that is `root` of `fs` (a directory, or a file): what a hostPath volume
    /// shows of the node's filesystem.
    pub fn view(fs: Arc<Fs>, root: &str) -> Self {
        let mut view = Self::new(fs.fs_type, 0o755);
        view.mounts = vec![Mount::new("/", fs).sub_path(root)];
        view
    }

    /// A filesystem holding `files` (absolute paths), as an image's: the usual top-level
    /// directories exist.
    pub fn with_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        Self::container(files, Vec::new(), Identity::root())
    }

    /// A filesystem holding `files`, with other filesystems mounted (whole and writable) at
    /// the given paths.
    pub fn with_mounts(files: BTreeMap<String, Vec<u8>>, mounts: Vec<(String, Arc<Fs>)>) -> Self {
        let mounts = mounts
            .into_iter()
            .map(|(p, fs)| Mount::new(&p, fs))
            .collect();
        Self::container(files, mounts, Identity::root())
    }

    /// A container's root filesystem: the image's directories, `files` (mode 0644, root's),
    /// `mounts`, and `identity` as the creator of what the container writes.
    pub fn container(
        files: BTreeMap<String, Vec<u8>>,
        mounts: Vec<Mount>,
        identity: Identity,
    ) -> Self {
        let mut fs = Self::new(FsType::Overlay, 0o755);
        {
            let nodes = fs.nodes.get_mut();
            for d in IMAGE_DIRS {
                let mode = if *d == "/tmp" { 0o1777 } else { 0o755 };
                nodes.insert((*d).to_string(), Node::dir(mode, 0, 0));
            }
        }
        let root = Identity::root();
        let mut used = 0;
        for (path, data) in files {
            let p = normalize_path(&path);
            if p == "/" {
                continue;
            }
            let nodes = fs.nodes.get_mut();
            make_parents(nodes, &p, &root);
            used += data.len();
            nodes.insert(
                p,
                Node {
                    data: Data::File(data),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            );
        }
        // The runtime makes the directories mount points live in.
        for m in &mounts {
            let nodes = fs.nodes.get_mut();
            if m.path != "/" {
                make_parents(nodes, &m.path, &root);
            }
        }
        let mut mounts = mounts;
        mounts.sort_by_key(|m| std::cmp::Reverse(m.path.len()));
        fs.mounts = mounts;
        fs.used = AtomicUsize::new(used);
        fs.identity = identity;
        fs
    }

    /// The same filesystem, read-only itself (a container's `readOnlyRootFilesystem`); what is
    /// mounted on it keeps its own mode.
    #[must_use]
    pub fn read_only_root(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The same filesystem, holding at most `bytes` (and never more than [`FS_CAPACITY`]): a
    /// tmpfs mounted with `size=`.
    #[must_use]
    pub fn with_capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.min(FS_CAPACITY);
        self
    }

    /// How many bytes the filesystem may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// What is mounted on this filesystem, longest mount point first.
    pub fn mount_table(&self) -> &[Mount] {
        &self.mounts
    }

    /// The filesystem's type.
    pub fn fs_type(&self) -> FsType {
        self.fs_type
    }

    /// Who writes through this filesystem.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Bytes of files held by this filesystem (not by what is mounted into it).
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    // -----------------------------------------------------------------------------------------
    // Lookup

    /// The filesystem that holds `full` (normalised), by mount points alone.
    fn route(&self, full: &str) -> (&Fs, String, bool) {
        for m in &self.mounts {
            let rest = if full == m.path {
                Some("")
            } else if m.path == "/" {
                Some(full)
            } else {
                full.strip_prefix(m.path.as_str())
                    .filter(|r| r.starts_with('/'))
            };
            if let Some(rest) = rest {
                let inner = normalize_path(&format!("{}/{rest}", m.root));
                let (fs, p, ro) = m.fs.route(&inner);
                return (fs, p, ro || m.read_only);
            }
        }
        (self, full.to_string(), self.read_only)
    }

    /// The node's kind at `inner`, without its data.
    fn look(&self, inner: &str) -> Option<Data> {
        self.nodes.lock().get(inner).map(|n| match &n.data {
            Data::File(_) => Data::File(Vec::new()),
            Data::Dir => Data::Dir,
            Data::Symlink(t) => Data::Symlink(t.clone()),
        })
    }

    /// Resolve `path` component by component through mount points and symbolic links (the
    /// last one too when `follow`). The last component need not exist; the others must be
    /// directories.
    fn resolve(&self, path: &str, follow: bool) -> Result<Place<'_>, FsError> {
        let mut full = normalize_path(path);
        let mut hops = 0;
        'restart: loop {
            let comps: Vec<String> = full
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let mut cur = "/".to_string();
            for (i, c) in comps.iter().enumerate() {
                let next = join(&cur, c);
                let last = i + 1 == comps.len();
                let (fs, inner, _) = self.route(&next);
                match fs.look(&inner) {
                    None if !last => return Err(FsError::NotFound),
                    Some(Data::File(_)) if !last => return Err(FsError::NotDir),
                    Some(Data::Symlink(target)) if !last || follow => {
                        hops += 1;
                        if hops > MAX_SYMLINKS {
                            return Err(FsError::Loop);
                        }
                        let rest = comps[i + 1..].join("/");
                        let base = if target.starts_with('/') {
                            target
                        } else {
                            format!("{cur}/{target}")
                        };
                        full = normalize_path(&format!("{base}/{rest}"));
                        continue 'restart;
                    }
                    _ => {}
                }
                cur = next;
            }
            let (fs, inner, read_only) = self.route(&cur);
            return Ok(Place {
                fs,
                inner,
                read_only,
                full: cur,
            });
        }
    }

    /// `stat(2)`: metadata, following symbolic links.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `ELOOP`.
    pub fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let place = self.resolve(path, true)?;
        let st = place.fs.nodes.lock().get(&place.inner).map(Node::stat);
        st.ok_or(FsError::NotFound)
    }

    /// `lstat(2)`: metadata of the path itself (a symbolic link is not followed).
    ///
    /// # Errors
    /// As [`Fs::stat`].
    pub fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        let place = self.resolve(path, false)?;
        let st = place.fs.nodes.lock().get(&place.inner).map(Node::stat);
        st.ok_or(FsError::NotFound)
    }

    /// `statfs(2)`: the type of the filesystem holding `path`.
    ///
    /// # Errors
    /// As [`Fs::stat`].
    pub fn statfs(&self, path: &str) -> Result<FsType, FsError> {
        let place = self.resolve(path, true)?;
        let exists = place.fs.nodes.lock().contains_key(&place.inner);
        if exists {
            Ok(place.fs.fs_type)
        } else {
            Err(FsError::NotFound)
        }
    }

    /// The kernel's `inode_permission` as this filesystem's identity: whether it may read (4),
    /// write (2) and/or search or execute (1) what `path` names: not write on a read-only
    /// mount, and as its mode bits say (root may do all but execute a file no one may
    /// execute).
    ///
    /// # Errors
    /// `EROFS`, then `EACCES`; as [`Fs::stat`] when nothing is there.
    pub fn access(&self, path: &str, want: u32) -> Result<(), FsError> {
        let place = self.resolve(path, true)?;
        let st = place
            .fs
            .nodes
            .lock()
            .get(&place.inner)
            .map(Node::stat)
            .ok_or(FsError::NotFound)?;
        if want & 2 != 0 && place.read_only {
            return Err(FsError::ReadOnly);
        }
        if self.identity.may(&st, want) {
            Ok(())
        } else {
            Err(FsError::Access)
        }
    }

    /// `readlink(2)`.
    ///
    /// # Errors
    /// `ENOENT`; `EINVAL` is reported as `ENOENT` too (not a link).
    pub fn readlink(&self, path: &str) -> Result<String, FsError> {
        let place = self.resolve(path, false)?;
        match place.fs.look(&place.inner) {
            Some(Data::Symlink(t)) => Ok(t),
            _ => Err(FsError::NotFound),
        }
    }

    /// A file's contents (symbolic links followed); `None` for anything else.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let place = self.resolve(path, true).ok()?;
        let nodes = place.fs.nodes.lock();
        match &nodes.get(&place.inner)?.data {
            Data::File(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// Open a file for reading as this filesystem's identity and read all of it, as Go's
    /// `os.ReadFile` does.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `ELOOP`, `EACCES`, `EISDIR` (reading a directory).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let place = self.resolve(path, true)?;
        let nodes = place.fs.nodes.lock();
        let node = nodes.get(&place.inner).ok_or(FsError::NotFound)?;
        if !self.identity.may(&node.stat(), 4) {
            return Err(FsError::Access);
        }
        match &node.data {
            Data::File(d) => Ok(d.clone()),
            _ => Err(FsError::IsDir),
        }
    }

    /// Whether `path` is a regular file (symbolic links followed).
    pub fn is_file(&self, path: &str) -> bool {
        self.stat(path).is_ok_and(|s| s.kind == FileKind::File)
    }

    /// Whether `path` is a directory (symbolic links followed; a mount point of a directory
    /// is one).
    pub fn is_dir(&self, path: &str) -> bool {
        self.stat(path).is_ok_and(|s| s.kind == FileKind::Dir)
    }

    /// The names of a directory's entries (files, directories, links, mount points), sorted;
    /// `None` when `path` is not a directory.
    pub fn list_dir(&self, path: &str) -> Option<Vec<String>> {
        self.entries(path).map(|e| e.into_keys().collect())
    }

    /// A directory's entries, sorted, each with whether it is a directory (links followed);
    /// `None` when `path` is not a directory.
    pub fn entries(&self, path: &str) -> Option<BTreeMap<String, bool>> {
        let place = self.resolve(path, true).ok()?;
        let mut names: Vec<String> = Vec::new();
        {
            let nodes = place.fs.nodes.lock();
            if !matches!(nodes.get(&place.inner)?.data, Data::Dir) {
                return None;
            }
            let prefix = under(&place.inner);
            for (key, _) in nodes.range(prefix.clone()..) {
                let Some(rest) = key.strip_prefix(&prefix) else {
                    break;
                };
                if !rest.is_empty() && !rest.contains('/') {
                    names.push(rest.to_string());
                }
            }
        }
        let full_prefix = under(&place.full);
        for m in &self.mounts {
            if let Some(first) = m
                .path
                .strip_prefix(&full_prefix)
                .and_then(|rest| rest.split('/').next())
                .filter(|f| !f.is_empty())
            {
                names.push(first.to_string());
            }
        }
        Some(
            names
                .into_iter()
                .map(|n| {
                    let dir = self.is_dir(&join(&place.full, &n));
                    (n, dir)
                })
                .collect(),
        )
    }

    /// Every path under `dir` (itself included), sorted, without following links: for walks
    /// over a filesystem without mounts (the kubelet's over a volume).
    pub fn walk(&self, dir: &str) -> Vec<String> {
        let dir = normalize_path(dir);
        let prefix = under(&dir);
        let nodes = self.nodes.lock();
        let mut out: Vec<String> = nodes
            .contains_key(&dir)
            .then(|| dir.clone())
            .into_iter()
            .collect();
        out.extend(
            nodes
                .range(prefix.clone()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(&prefix))
                .filter(|k| **k != dir)
                .cloned(),
        );
        out
    }

    // -----------------------------------------------------------------------------------------
    // Changes

    /// Write (or append to) a file as this filesystem's identity, creating it (mode 0666
    /// less the umask) and any missing parent directory.
    ///
    /// # Errors
    /// [`NO_SPACE`] when the filesystem holding `path` would go past its capacity (nothing is
    /// written); "Read-only file system", "Is a directory", "Not a directory", ... as C's
    /// `strerror` words them.
    pub fn write(&self, path: &str, data: &[u8], append: bool) -> Result<(), &'static str> {
        let mode = 0o666 & !self.identity.umask;
        self.put(path, data, append, mode, true, false)
            .map_err(FsError::libc)
    }

    /// Write (or append to) a file as `open(2)` with `O_CREAT` does: an existing file keeps
    /// its mode and owner, a new one gets `mode` (no umask applied: the caller applies its
    /// own) and this filesystem's identity. The directory must exist.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `EISDIR`, `EROFS`, `EACCES`, `ENOSPC`, `ELOOP`.
    pub fn write_file(
        &self,
        path: &str,
        data: &[u8],
        append: bool,
        mode: u32,
    ) -> Result<(), FsError> {
        self.put(path, data, append, mode, false, true)
    }

    fn put(
        &self,
        path: &str,
        data: &[u8],
        append: bool,
        mode: u32,
        make_dirs: bool,
        check: bool,
    ) -> Result<(), FsError> {
        if make_dirs {
            let p = normalize_path(path);
            if !self.is_dir(parent_of(&p)) {
                self.mkdir_all(parent_of(&p), 0o777 & !self.identity.umask);
            }
        }
        let place = self.resolve(path, true)?;
        let fs = place.fs;
        let mut nodes = fs.nodes.lock();
        let parent = nodes
            .get(parent_of(&place.inner))
            .map(Node::stat)
            .ok_or(FsError::NotFound)?;
        if parent.kind != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        let existing = nodes.get(&place.inner).map(|n| (n.stat(), n.bytes()));
        match &existing {
            Some((st, _)) if st.kind == FileKind::Dir => return Err(FsError::IsDir),
            _ => {}
        }
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        if check {
            let allowed = match &existing {
                Some((st, _)) => self.identity.may(st, 2),
                None => self.identity.may(&parent, 3),
            };
            if !allowed {
                return Err(FsError::Access);
            }
        }
        let old = existing.as_ref().map_or(0, |(_, b)| *b);
        let new = if append { old + data.len() } else { data.len() };
        let used = fs.used.load(Ordering::Relaxed);
        let after = used.saturating_sub(old).saturating_add(new);
        if new > old && after > fs.capacity {
            return Err(FsError::NoSpace);
        }
        let id = &self.identity;
        let node = nodes.entry(place.inner).or_insert_with(|| Node {
            data: Data::File(Vec::new()),
            mode: mode & 0o7777,
            uid: id.uid,
            gid: if parent.mode & S_ISGID != 0 {
                parent.gid
            } else {
                id.gid
            },
        });
        if let Data::File(d) = &mut node.data {
            if !append {
                d.clear();
            }
            d.extend_from_slice(data);
        }
        fs.used.store(after, Ordering::Relaxed);
        Ok(())
    }

    /// Remove a file, a link or a directory tree; false if nothing was there (or it cannot be
    /// removed: a mount point, a read-only mount).
    pub fn remove(&self, path: &str) -> bool {
        self.remove_path(path).is_ok()
    }

    /// Remove a file, a link (not what it points to) or a directory tree.
    ///
    /// # Errors
    /// `ENOENT`, `EROFS`, `EBUSY` (a mount point or `/`).
    pub fn remove_path(&self, path: &str) -> Result<(), FsError> {
        let place = self.resolve(path, false)?;
        if place.full == "/" || self.mounts.iter().any(|m| m.path == place.full) {
            return Err(FsError::Busy);
        }
        if place.inner == "/" {
            return Err(FsError::Busy);
        }
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        let fs = place.fs;
        let prefix = under(&place.inner);
        let mut nodes = fs.nodes.lock();
        if !nodes.contains_key(&place.inner) {
            return Err(FsError::NotFound);
        }
        let doomed: Vec<String> = std::iter::once(place.inner.clone())
            .chain(
                nodes
                    .range(prefix.clone()..)
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(&prefix))
                    .cloned(),
            )
            .collect();
        let mut freed = 0;
        for k in doomed {
            if let Some(n) = nodes.remove(&k) {
                freed += n.bytes();
            }
        }
        fs.used.fetch_sub(freed, Ordering::Relaxed);
        Ok(())
    }

    /// Make a directory and any missing parent (`mkdir -p`, mode 0777 less the umask).
    pub fn mkdir(&self, path: &str) {
        self.mkdir_all(path, 0o777 & !self.identity.umask);
    }

    /// `mkdir -p` with `mode` for what it makes; a directory made in a setgid directory
    /// takes its group and its setgid bit, as on Linux.
    fn mkdir_all(&self, path: &str, mode: u32) {
        let full = normalize_path(path);
        let mut cur = "/".to_string();
        for c in full.split('/').filter(|c| !c.is_empty()) {
            cur = join(&cur, c);
            if self.mkdir_mode(&cur, mode).is_err() && !self.is_dir(&cur) {
                return;
            }
        }
    }

    /// `mkdir(2)`: one directory with `mode` exactly (no umask), owned by this filesystem's
    /// identity (the group and setgid bit of a setgid parent).
    ///
    /// # Errors
    /// `EEXIST`, `ENOENT`, `ENOTDIR`, `EROFS`.
    pub fn mkdir_mode(&self, path: &str, mode: u32) -> Result<(), FsError> {
        let place = self.resolve(path, false)?;
        let mut nodes = place.fs.nodes.lock();
        if nodes.contains_key(&place.inner) {
            return Err(FsError::Exists);
        }
        let parent = nodes
            .get(parent_of(&place.inner))
            .map(Node::stat)
            .ok_or(FsError::NotFound)?;
        if parent.kind != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        let setgid = parent.mode & S_ISGID != 0;
        nodes.insert(
            place.inner,
            Node::dir(
                (mode & 0o7777) | if setgid { S_ISGID } else { 0 },
                self.identity.uid,
                if setgid {
                    parent.gid
                } else {
                    self.identity.gid
                },
            ),
        );
        Ok(())
    }

    /// `symlink(2)`: `path` pointing at `target`.
    ///
    /// # Errors
    /// `EEXIST`, `ENOENT`, `ENOTDIR`, `EROFS`.
    pub fn symlink(&self, target: &str, path: &str) -> Result<(), FsError> {
        let place = self.resolve(path, false)?;
        let mut nodes = place.fs.nodes.lock();
        if nodes.contains_key(&place.inner) {
            return Err(FsError::Exists);
        }
        match nodes.get(parent_of(&place.inner)).map(Node::stat) {
            None => return Err(FsError::NotFound),
            Some(p) if p.kind != FileKind::Dir => return Err(FsError::NotDir),
            Some(_) => {}
        }
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        nodes.insert(
            place.inner,
            Node {
                data: Data::Symlink(target.to_string()),
                mode: 0o777,
                uid: self.identity.uid,
                gid: self.identity.gid,
            },
        );
        Ok(())
    }

    /// `rename(2)` within one filesystem: `to` (a file or a link, or an empty directory) is
    /// replaced at once, so a reader sees the old or the new, never neither.
    ///
    /// # Errors
    /// `ENOENT`, `EXDEV`, `EROFS`, `EISDIR`, `EBUSY`.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FsError> {
        let a = self.resolve(from, false)?;
        let b = self.resolve(to, false)?;
        if !std::ptr::eq(a.fs, b.fs) {
            return Err(FsError::CrossDevice);
        }
        if a.read_only || b.read_only {
            return Err(FsError::ReadOnly);
        }
        if a.inner == "/" || b.inner == "/" {
            return Err(FsError::Busy);
        }
        let mut nodes = a.fs.nodes.lock();
        let moving = nodes.get(&a.inner).ok_or(FsError::NotFound)?.clone();
        let moving_dir = matches!(moving.data, Data::Dir);
        if let Some(target) = nodes.get(&b.inner) {
            let target_dir = matches!(target.data, Data::Dir);
            if target_dir && !moving_dir {
                return Err(FsError::IsDir);
            }
            if target_dir {
                let prefix = under(&b.inner);
                if nodes
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix))
                {
                    return Err(FsError::Exists);
                }
            }
        }
        let from_prefix = under(&a.inner);
        let children: Vec<String> = if moving_dir {
            nodes
                .range(from_prefix.clone()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(&from_prefix))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if let Some(old) = nodes.insert(b.inner.clone(), moving) {
            a.fs.used.fetch_sub(old.bytes(), Ordering::Relaxed);
        }
        nodes.remove(&a.inner);
        let to_prefix = under(&b.inner);
        for k in children {
            if let Some(n) = nodes.remove(&k) {
                let rest = &k[from_prefix.len()..];
                nodes.insert(format!("{to_prefix}{rest}"), n);
            }
        }
        Ok(())
    }

    /// `chmod(2)` (links followed): the mode bits (`07777`).
    ///
    /// # Errors
    /// `ENOENT`, `EROFS`.
    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), FsError> {
        let place = self.resolve(path, true)?;
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        let mut nodes = place.fs.nodes.lock();
        let node = nodes.get_mut(&place.inner).ok_or(FsError::NotFound)?;
        node.mode = mode & 0o7777;
        Ok(())
    }

    /// `lchown(2)`: owner and group of the path itself.
    ///
    /// # Errors
    /// `ENOENT`, `EROFS`.
    pub fn lchown(&self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        let place = self.resolve(path, false)?;
        if place.read_only {
            return Err(FsError::ReadOnly);
        }
        let mut nodes = place.fs.nodes.lock();
        let node = nodes.get_mut(&place.inner).ok_or(FsError::NotFound)?;
        node.uid = uid;
        node.gid = gid;
        Ok(())
    }

    /// A copy of what `path` names (links followed; a directory with all it holds) in a
    /// filesystem of its own of the same type, at `/data`: what a subPath mount of a volume
    /// the kubelet rewrites pins (the bind mount keeps the file it found, later updates
    /// replace other files).
    ///
    /// # Errors
    /// As [`Fs::stat`].
    pub fn snapshot(&self, path: &str) -> Result<(Fs, String), FsError> {
        let place = self.resolve(path, true)?;
        let copy = Fs::new(place.fs.fs_type, 0o755);
        let nodes = place.fs.nodes.lock();
        let top = nodes.get(&place.inner).ok_or(FsError::NotFound)?.clone();
        let mut used = top.bytes();
        let mut out = copy.nodes.lock();
        out.insert("/data".into(), top);
        let prefix = under(&place.inner);
        for (k, n) in nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            used += n.bytes();
            out.insert(format!("/data/{}", &k[prefix.len()..]), n.clone());
        }
        drop(out);
        copy.used.store(used, Ordering::Relaxed);
        Ok((copy, "/data".into()))
    }
}

/// Make the missing parents of `p` (0755, `id`'s).
fn make_parents(nodes: &mut BTreeMap<String, Node>, p: &str, id: &Identity) {
    let mut missing = Vec::new();
    let mut cur = parent_of(p).to_string();
    while cur != "/" && !nodes.contains_key(&cur) {
        missing.push(cur.clone());
        cur = parent_of(&cur).to_string();
    }
    for d in missing.into_iter().rev() {
        nodes.insert(d, Node::dir(0o755, id.uid, id.gid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_print_as_go_prints_them() {
        assert_eq!(go_file_mode(S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(go_file_mode(S_IFREG | 0o400), "-r--------");
        assert_eq!(go_file_mode(S_IFDIR | 0o777), "drwxrwxrwx");
        assert_eq!(go_file_mode(S_IFDIR | 0o1777), "dtrwxrwxrwx");
        assert_eq!(go_file_mode(S_IFDIR | 0o3777), "dgtrwxrwxrwx");
        assert_eq!(go_file_mode(S_IFDIR | 0o2755), "dgrwxr-xr-x");
        assert_eq!(go_file_mode(S_IFLNK | 0o777), "Lrwxrwxrwx");
        assert_eq!(go_file_mode(S_IFREG | 0o4755), "urwxr-xr-x");
        // Perm() drops the type and the special bits.
        assert_eq!(go_file_mode(0o777), "-rwxrwxrwx");
        assert_eq!(go_file_mode(0), "----------");
    }

    #[test]
    fn links_resolve_through_mounts_and_relative_targets() {
        let vol = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        vol.mkdir_mode("/..2024_01_01", 0o755).unwrap();
        vol.write_file("/..2024_01_01/key", b"v", false, 0o400)
            .unwrap();
        vol.symlink("..2024_01_01", "/..data").unwrap();
        vol.symlink("..data/key", "/key").unwrap();
        let root = Fs::container(
            BTreeMap::new(),
            vec![Mount::new("/etc/vol", vol).read_only(true)],
            Identity::root(),
        );
        assert_eq!(root.read("/etc/vol/key").as_deref(), Some(&b"v"[..]));
        assert_eq!(root.stat("/etc/vol/key").unwrap().go_mode(), "-r--------");
        assert_eq!(root.lstat("/etc/vol/key").unwrap().go_mode(), "Lrwxrwxrwx");
        assert_eq!(root.stat("/etc/vol").unwrap().go_mode(), "dtrwxrwxrwx");
        assert_eq!(root.statfs("/etc/vol/key"), Ok(FsType::Tmpfs));
        assert_eq!(root.statfs("/etc"), Ok(FsType::Overlay));
        assert_eq!(
            root.list_dir("/etc/vol").unwrap(),
            ["..2024_01_01", "..data", "key"]
        );
        assert!(root.is_dir("/etc") && root.list_dir("/etc").unwrap() == ["vol"]);
        assert_eq!(
            root.write_file("/etc/vol/new", b"x", false, 0o644),
            Err(FsError::ReadOnly)
        );
        assert_eq!(root.read_file("/etc/vol/nope"), Err(FsError::NotFound));
        assert_eq!(root.read_file("/etc/vol"), Err(FsError::IsDir));
    }

    #[test]
    fn a_link_loop_fails_with_eloop() {
        let fs = Fs::default();
        fs.symlink("/tmp/b", "/tmp/a").unwrap();
        fs.symlink("/tmp/a", "/tmp/b").unwrap();
        assert_eq!(fs.stat("/tmp/a"), Err(FsError::Loop));
    }

    #[test]
    fn new_files_take_the_group_of_a_setgid_directory_and_the_umask() {
        let vol = Arc::new(Fs::new(FsType::Ext4, 0o777 | S_ISGID));
        vol.lchown("/", 0, 123).unwrap();
        let id = Identity {
            uid: 1001,
            gid: 0,
            groups: vec![123],
            umask: 0o022,
        };
        let root = Fs::container(BTreeMap::new(), vec![Mount::new("/v", vol.clone())], id);
        root.write("/v/a", b"x", false).unwrap();
        let a = root.stat("/v/a").unwrap();
        assert_eq!((a.mode, a.uid, a.gid), (0o644, 1001, 123));
        root.write_file("/v/b", b"x", false, 0o660).unwrap();
        assert_eq!(root.stat("/v/b").unwrap().go_mode(), "-rw-rw----");
        root.write("/tmp/c", b"x", false).unwrap();
        assert_eq!(root.stat("/tmp/c").unwrap().gid, 0);
        root.mkdir("/v/d/e");
        assert_eq!(root.stat("/v/d/e").unwrap().go_mode(), "dgrwxr-xr-x");
    }

    #[test]
    fn permissions_are_checked_for_the_last_component() {
        let fs = Arc::new(Fs::new(FsType::Tmpfs, 0o755));
        fs.write_file("/secret", b"s", false, 0o400).unwrap();
        fs.write_file("/shared", b"s", false, 0o440).unwrap();
        fs.lchown("/shared", 0, 2000).unwrap();
        let user = |groups: Vec<u32>| {
            Fs::container(
                BTreeMap::new(),
                vec![Mount::new("/m", fs.clone())],
                Identity {
                    uid: 1000,
                    gid: 1000,
                    groups,
                    umask: 0o022,
                },
            )
        };
        assert_eq!(user(vec![]).read_file("/m/secret"), Err(FsError::Access));
        assert_eq!(user(vec![]).read_file("/m/shared"), Err(FsError::Access));
        assert_eq!(
            user(vec![2000]).read_file("/m/shared").as_deref(),
            Ok(&b"s"[..])
        );
        assert_eq!(
            user(vec![]).write_file("/m/new", b"", false, 0o644),
            Err(FsError::Access)
        );
    }

    #[test]
    fn a_rename_replaces_a_link_at_once_and_moves_a_tree() {
        let fs = Fs::new(FsType::Tmpfs, 0o1777);
        fs.mkdir_mode("/a", 0o755).unwrap();
        fs.write_file("/a/f", b"1", false, 0o644).unwrap();
        fs.symlink("a", "/..data").unwrap();
        fs.symlink("b", "/..data_tmp").unwrap();
        fs.rename("/..data_tmp", "/..data").unwrap();
        assert_eq!(fs.readlink("/..data").unwrap(), "b");
        assert!(fs.lstat("/..data_tmp").is_err());
        fs.rename("/a", "/b").unwrap();
        assert_eq!(fs.read("/..data/f").as_deref(), Some(&b"1"[..]));
        assert_eq!(fs.used_bytes(), 1);
        assert!(fs.remove("/b"));
        assert_eq!(fs.used_bytes(), 0);
    }
}
