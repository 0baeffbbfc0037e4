//! agnhost `mounttest` (`test/images/agnhost/mounttest`): the e2e storage tests' probe of a
//! volume. With the umask cleared, it does what its flags ask, in this order, printing each
//! result on standard output:
//!
//! 1. `--fs_type=P`: `mount type of "P": tmpfs` for a tmpfs, else the `statfs` magic number
//!    in decimal (`61267` for the node's ext4, `2035054128` for the image's overlay);
//! 2. `--new_file_0644=P` (then `_0666`, `_0660`, `_0777`): writes `mount-tester new file\n`
//!    to P, created with that mode exactly, then prints it as `--file_content` does;
//! 3. `--file_mode=P`: `mode of file "P": -rw-r--r--` (Go's `FileMode` string of `stat(P)`,
//!    links followed: `dtrwxrwxrwx`, `dgtrwxrwxrwx`, ...);
//! 4. `--file_perm=P`: `perms of file "P": -rwxrwxrwx` (the permission bits alone);
//! 5. `--file_owner=P`: `owner UID of "P": 0` and `owner GID of "P": 123`;
//! 6. `--file_content=P`: `content of file "P": <contents>`;
//! 7. `--file_content_in_loop=P`: reads P every 2 seconds (cluster time) for `--retry_time`
//!    seconds (180), printing the contents or `Error reading file P: <error>, retrying`; with
//!    `--break_on_expected_content` (the default) it stops at the first read that finds
//!    `mount-tester new file\n` and says `Unexpected content. Expected: ...` of the others.
//!
//! A step that fails prints Go's error (`error from Stat("P"): stat P: no such file or
//! directory`, `error reading file content for "P": open P: no such file or directory`, ...)
//! and the others still run; the exit status is then 1, else 0. Nothing handles SIGTERM: the
//! process dies by it (143). Files are created as the container's user, in the group of a
//! setgid directory (an fsGroup volume) or the user's.

use std::time::Duration;

use super::super::log::Stream;
use super::super::{FsError, FsType};
use super::{flag, Ctx, Flag, Flags, Kind};
use crate::k8s::go_quote;

/// mounttest's own flags (pflag normalises `_` to `-`: `--fs_type` and `--fs-type` alike).
pub(super) const FLAGS: &[Flag] = &[
    flag("fs-type", Kind::Str, ""),
    flag("file-mode", Kind::Str, ""),
    flag("file-perm", Kind::Str, ""),
    flag("file-owner", Kind::Str, ""),
    flag("new-file-0644", Kind::Str, ""),
    flag("new-file-0666", Kind::Str, ""),
    flag("new-file-0660", Kind::Str, ""),
    flag("new-file-0777", Kind::Str, ""),
    flag("file-content", Kind::Str, ""),
    flag("file-content-in-loop", Kind::Str, ""),
    flag("retry-time", Kind::Int, "180"),
    flag("break-on-expected-content", Kind::Bool, "true"),
];

/// What `--new_file_*` writes, and what the loop waits for.
const INITIAL_CONTENT: &str = "mount-tester new file\n";

/// How long the loop waits between reads.
const LOOP_PERIOD: Duration = Duration::from_secs(2);

/// Run mounttest; the exit status.
pub(super) async fn run(ctx: &Ctx, flags: &Flags) -> i32 {
    let mut failed = fs_type(ctx, &flags.str("fs-type"));
    for (name, perm) in [
        ("new-file-0644", 0o644),
        ("new-file-0666", 0o666),
        ("new-file-0660", 0o660),
        ("new-file-0777", 0o777),
    ] {
        failed |= read_write_new_file(ctx, &flags.str(name), perm);
    }
    failed |= file_mode(ctx, &flags.str("file-mode"), false);
    failed |= file_mode(ctx, &flags.str("file-perm"), true);
    failed |= file_owner(ctx, &flags.str("file-owner"));
    failed |= read_file_content(ctx, &flags.str("file-content"));
    let looped = flags.str("file-content-in-loop");
    if !looped.is_empty() {
        let retry = flags.int("retry-time");
        let break_on = flags.bool("break-on-expected-content");
        tokio::select! {
            f = content_in_loop(ctx, &looped, retry, break_on) => failed |= f,
            // Nothing handles SIGTERM: it kills the process.
            () = ctx.term.cancelled() => return 143,
        }
    }
    i32::from(failed)
}

fn print(ctx: &Ctx, data: &[u8]) {
    ctx.out.write(Stream::Stdout, data);
}

/// `--fs_type`; true when it failed.
fn fs_type(ctx: &Ctx, path: &str) -> bool {
    if path.is_empty() {
        return false;
    }
    let q = go_quote(path);
    match ctx.fs.statfs(path) {
        Ok(FsType::Tmpfs) => ctx.stdout(&format!("mount type of {q}: tmpfs\n")),
        Ok(other) => ctx.stdout(&format!("mount type of {q}: {}\n", other.magic())),
        Err(e) => {
            ctx.stdout(&format!("error from statfs({q}): {e}\n"));
            return true;
        }
    }
    false
}

/// `--new_file_XXXX`: `os.WriteFile` with the mode, then the content as `--file_content`.
fn read_write_new_file(ctx: &Ctx, path: &str, perm: u32) -> bool {
    if path.is_empty() {
        return false;
    }
    if let Err(e) = ctx
        .fs
        .write_file(path, INITIAL_CONTENT.as_bytes(), false, perm)
    {
        ctx.stdout(&format!(
            "error writing new file {}: open {path}: {e}\n",
            go_quote(path)
        ));
        return true;
    }
    read_file_content(ctx, path)
}

/// `--file_mode` (Go's `FileMode` string) or `--file_perm` (its permission bits).
fn file_mode(ctx: &Ctx, path: &str, perm_only: bool) -> bool {
    if path.is_empty() {
        return false;
    }
    let q = go_quote(path);
    match ctx.fs.stat(path) {
        Ok(st) if perm_only => ctx.stdout(&format!("perms of file {q}: {}\n", st.go_perm())),
        Ok(st) => ctx.stdout(&format!("mode of file {q}: {}\n", st.go_mode())),
        Err(e) => {
            ctx.stdout(&format!("error from Stat({q}): stat {path}: {e}\n"));
            return true;
        }
    }
    false
}

/// `--file_owner`.
fn file_owner(ctx: &Ctx, path: &str) -> bool {
    if path.is_empty() {
        return false;
    }
    let q = go_quote(path);
    match ctx.fs.stat(path) {
        Ok(st) => {
            ctx.stdout(&format!("owner UID of {q}: {}\n", st.uid));
            ctx.stdout(&format!("owner GID of {q}: {}\n", st.gid));
            false
        }
        Err(e) => {
            ctx.stdout(&format!("error from stat({q}): {e}\n"));
            true
        }
    }
}

/// `os.ReadFile`'s error as Go prints it: the failing call and the path.
fn read_error(path: &str, e: FsError) -> String {
    let op = if e == FsError::IsDir { "read" } else { "open" };
    format!("{op} {path}: {e}")
}

/// `--file_content`.
fn read_file_content(ctx: &Ctx, path: &str) -> bool {
    if path.is_empty() {
        return false;
    }
    match ctx.fs.read_file(path) {
        Ok(content) => {
            let mut line = format!("content of file {}: ", go_quote(path)).into_bytes();
            line.extend_from_slice(&content);
            line.push(b'\n');
            print(ctx, &line);
            false
        }
        Err(e) => {
            ctx.stdout(&format!(
                "error reading file content for {}: {}\n",
                go_quote(path),
                read_error(path, e)
            ));
            true
        }
    }
}

/// `--file_content_in_loop`: true when the last read failed.
async fn content_in_loop(ctx: &Ctx, path: &str, retry_seconds: i64, break_on: bool) -> bool {
    // `--retry_time` is the user's: a value past what a duration holds loops for ever.
    let retry = chrono::Duration::try_seconds(retry_seconds).unwrap_or(chrono::Duration::MAX);
    let start = ctx.clock.now();
    let mut failed = false;
    while ctx.clock.now() - start < retry {
        match ctx.fs.read_file(path) {
            Err(e) => {
                failed = true;
                ctx.stdout(&format!(
                    "Error reading file {path}: {}, retrying\n",
                    read_error(path, e)
                ));
            }
            Ok(content) => {
                failed = false;
                let mut line = format!("content of file {}: ", go_quote(path)).into_bytes();
                line.extend_from_slice(&content);
                line.push(b'\n');
                print(ctx, &line);
                if break_on {
                    if content != INITIAL_CONTENT.as_bytes() {
                        ctx.stdout(&format!(
                            "Unexpected content. Expected: {INITIAL_CONTENT}. Retrying"
                        ));
                    } else {
                        break;
                    }
                }
            }
        }
        ctx.clock.sleep(LOOP_PERIOD).await;
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tokio_util::sync::CancellationToken;

    use super::super::super::{Fs, FsType, Identity, Mount, S_ISGID};
    use super::super::{Ctx, Out};
    use crate::clock::Clock;

    fn root() -> Identity {
        Identity::root()
    }

    fn user(uid: u32, groups: Vec<u32>) -> Identity {
        Identity {
            uid,
            gid: 0,
            groups,
            umask: 0o022,
        }
    }

    /// A container of agnhost with `volume` at /test-volume, running as `identity`.
    fn container(volume: Arc<Fs>, identity: Identity) -> Arc<Fs> {
        Arc::new(Fs::container(
            BTreeMap::new(),
            vec![Mount::new("/test-volume", volume)],
            identity,
        ))
    }

    /// Run `/agnhost` with `args` (`mounttest ...`) in `fs`: (exit status, stdout). The
    /// clock runs 1000 times faster than wall time.
    async fn agnhost(fs: Arc<Fs>, args: &[&str], term: CancellationToken) -> (i32, String) {
        let captured = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let clock = Clock::new(1000.0);
        let ctx = Arc::new(Ctx {
            netfilter: crate::netfilter::Netfilter::new(),
            ip: "127.0.0.1".parse().unwrap(),
            hostname: "pod".into(),
            started_at: clock.now(),
            clock,
            out: Out::Capture(captured.clone()),
            term,
            fs,
            env: HashMap::new(),
            pid: 1,
            version: "2.53".into(),
        });
        let argv = std::iter::once("/agnhost")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let code = super::super::run(argv, ctx).await;
        let out = String::from_utf8_lossy(&captured.lock().0).into_owned();
        (code, out)
    }

    async fn run(fs: Arc<Fs>, args: &[&str]) -> (i32, String) {
        agnhost(fs, args, CancellationToken::new()).await
    }

    fn lines(out: &str) -> Vec<&str> {
        out.lines().collect()
    }

    #[tokio::test]
    async fn a_tmpfs_empty_dir_gets_a_0644_file_as_the_e2e_test_checks_it() {
        // EmptyDir volumes should support (root,0644,tmpfs).
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let (code, out) = run(
            container(volume, root()),
            &[
                "mounttest",
                "--fs_type=/test-volume",
                "--new_file_0644=/test-volume/test-file",
                "--file_perm=/test-volume/test-file",
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            lines(&out),
            [
                "mount type of \"/test-volume\": tmpfs",
                "content of file \"/test-volume/test-file\": mount-tester new file",
                "",
                "perms of file \"/test-volume/test-file\": -rw-r--r--",
            ]
        );
    }

    #[tokio::test]
    async fn new_files_have_their_mode_whatever_the_user_and_the_medium() {
        for (flag, perms) in [
            ("--new_file_0666", "-rw-rw-rw-"),
            ("--new_file_0777", "-rwxrwxrwx"),
            ("--new_file_0660", "-rw-rw----"),
        ] {
            for medium in [FsType::Tmpfs, FsType::Ext4] {
                let volume = Arc::new(Fs::new(
                    medium,
                    if medium == FsType::Tmpfs {
                        0o1777
                    } else {
                        0o777
                    },
                ));
                let fs = container(volume, user(1001, vec![]));
                let new_file = format!("{flag}=/test-volume/test-file");
                let (code, out) = run(
                    fs.clone(),
                    &["mounttest", &new_file, "--file_perm=/test-volume/test-file"],
                )
                .await;
                assert_eq!(code, 0, "{out}");
                assert!(
                    out.contains(&format!(
                        "perms of file \"/test-volume/test-file\": {perms}\n"
                    )),
                    "{out}"
                );
                assert_eq!(fs.stat("/test-volume/test-file").unwrap().uid, 1001);
            }
        }
    }

    #[tokio::test]
    async fn a_volume_root_shows_its_mode_and_the_disk_its_magic_number() {
        // EmptyDir volumes: volume on default medium should have the correct mode.
        let disk = Arc::new(Fs::new(FsType::Ext4, 0o777));
        let (code, out) = run(
            container(disk, root()),
            &[
                "mounttest",
                "--fs_type=/test-volume",
                "--file_perm=/test-volume",
                "--file_mode=/test-volume",
            ],
        )
        .await;
        assert_eq!(code, 0);
        assert_eq!(
            lines(&out),
            [
                "mount type of \"/test-volume\": 61267",
                "mode of file \"/test-volume\": drwxrwxrwx",
                "perms of file \"/test-volume\": -rwxrwxrwx",
            ]
        );
        let (_, out) = run(Arc::new(Fs::default()), &["mounttest", "--fs_type=/"]).await;
        assert_eq!(out, "mount type of \"/\": 2035054128\n");
        let tmpfs = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let (_, out) = run(
            container(tmpfs, root()),
            &["mounttest", "--file_mode=/test-volume"],
        )
        .await;
        assert_eq!(out, "mode of file \"/test-volume\": dtrwxrwxrwx\n");
    }

    #[tokio::test]
    async fn a_file_made_in_a_setgid_volume_takes_the_fs_group() {
        // EmptyDir volumes when FSGroup is specified: new files should be created with FSGroup
        // ownership when container is non-root.
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        volume.lchown("/", 0, 123).unwrap();
        volume.chmod("/", 0o1777 | S_ISGID).unwrap();
        let (code, out) = run(
            container(volume, user(1001, vec![123])),
            &[
                "mounttest",
                "--fs_type=/test-volume",
                "--new_file_0660=/test-volume/test-file",
                "--file_perm=/test-volume/test-file",
                "--file_owner=/test-volume/test-file",
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        for want in [
            "perms of file \"/test-volume/test-file\": -rw-rw----",
            "content of file \"/test-volume/test-file\": mount-tester new file",
            "owner UID of \"/test-volume/test-file\": 1001",
            "owner GID of \"/test-volume/test-file\": 123",
            "mount type of \"/test-volume\": tmpfs",
        ] {
            assert!(out.contains(want), "{want:?} not in {out}");
        }
    }

    #[tokio::test]
    async fn failures_print_go_errors_and_exit_1_after_the_other_steps() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let (code, out) = run(
            container(volume, root()),
            &[
                "mounttest",
                "--fs_type=/nope",
                "--new_file_0644=/nope/file",
                "--file_mode=/nope",
                "--file_perm=/test-volume",
                "--file_owner=/nope",
                "--file_content=/test-volume",
            ],
        )
        .await;
        assert_eq!(code, 1);
        assert_eq!(
            lines(&out),
            [
                "error from statfs(\"/nope\"): no such file or directory",
                "error writing new file \"/nope/file\": open /nope/file: no such file or directory",
                "error from Stat(\"/nope\"): stat /nope: no such file or directory",
                "perms of file \"/test-volume\": -rwxrwxrwx",
                "error from stat(\"/nope\"): no such file or directory",
                "error reading file content for \"/test-volume\": read /test-volume: is a directory",
            ]
        );
    }

    #[tokio::test]
    async fn the_loop_retries_a_missing_file_until_its_time_is_up() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let (code, out) = run(
            container(volume, root()),
            &[
                "mounttest",
                "--break_on_expected_content=false",
                "--retry_time=10",
                "--file_content_in_loop=/test-volume/data-1",
            ],
        )
        .await;
        assert_eq!(code, 1);
        // A read every 2 seconds of cluster time (how many depends on how fast the test runs).
        let want = "Error reading file /test-volume/data-1: open /test-volume/data-1: no such file or directory, retrying";
        assert!(
            !out.is_empty() && lines(&out).iter().all(|l| *l == want),
            "{out}"
        );
    }

    #[tokio::test]
    async fn the_loop_stops_at_the_expected_content_and_says_what_it_expected_before() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        volume
            .write_file("/expected", b"mount-tester new file\n", false, 0o644)
            .unwrap();
        volume.write_file("/other", b"other", false, 0o644).unwrap();
        let fs = container(volume, root());
        let (code, out) = run(
            fs.clone(),
            &[
                "mounttest",
                "--retry_time=600",
                "--file_content_in_loop=/test-volume/expected",
            ],
        )
        .await;
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "content of file \"/test-volume/expected\": mount-tester new file\n\n"
        );
        let (code, out) = run(
            fs,
            &[
                "mounttest",
                "--retry_time=3",
                "--file_content_in_loop=/test-volume/other",
            ],
        )
        .await;
        assert_eq!(code, 0);
        // Go's message has no newline of its own.
        let once = "content of file \"/test-volume/other\": other\n\
                    Unexpected content. Expected: mount-tester new file\n. Retrying";
        let reads = out.len() / once.len();
        assert!(reads >= 1 && out == once.repeat(reads), "{out}");
    }

    #[tokio::test]
    async fn sigterm_kills_the_loop() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let term = CancellationToken::new();
        term.cancel();
        let (code, _) = agnhost(
            container(volume, root()),
            &[
                "mounttest",
                "--retry_time=100000",
                "--file_content_in_loop=/test-volume/x",
            ],
            term,
        )
        .await;
        assert_eq!(code, 143);
        // A retry time past what a duration can hold is "for ever", not a crash.
        let term = CancellationToken::new();
        term.cancel();
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let (code, _) = agnhost(
            container(volume, root()),
            &[
                "mounttest",
                "--retry_time=9223372036854775807",
                "--file_content_in_loop=/test-volume/x",
            ],
            term,
        )
        .await;
        assert_eq!(code, 143);
    }

    #[tokio::test]
    async fn flags_take_dashes_too_and_unknown_ones_are_refused() {
        let volume = Arc::new(Fs::new(FsType::Tmpfs, 0o1777));
        let fs = container(volume, root());
        let (code, out) = run(fs.clone(), &["mounttest", "--fs-type=/test-volume"]).await;
        assert_eq!(
            (code, out.as_str()),
            (0, "mount type of \"/test-volume\": tmpfs\n")
        );
        let (code, out) = run(fs.clone(), &["mounttest", "--fs_typo=/"]).await;
        assert_eq!((code, out.as_str()), (1, ""));
        let (code, _) = run(fs, &["mounttest", "extra"]).await;
        assert_eq!(code, 1);
    }
}
