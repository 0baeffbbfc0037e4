//! The utilities: `tar` as `kubectl cp` runs it, `kill`, and the text and system utilities.

use super::tests::{block_on, sh, sh_on, v, Mem};
use super::*;
use std::io::Read;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A container with /tmp/foo/{a.txt, sub/b}.
fn tree() -> Mem {
    let m = Mem {
        now: 1_700_000_000,
        ..Mem::new()
    };
    m.dir("/tmp/foo");
    m.put("/tmp/foo/a.txt", "alpha\n");
    m.dir("/tmp/foo/sub");
    m.put("/tmp/foo/sub/b", "beta");
    m
}

/// (name, is a directory, data) of each entry of an archive, read as kubectl's Go reader
/// would (long names applied).
fn entries(archive: &[u8]) -> Vec<(String, bool, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = s(&e.path_bytes());
        let dir = e.header().entry_type() == tar::EntryType::Directory;
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, dir, data));
    }
    out
}

/// An archive as Go's archive/tar writes kubectl cp's copy-in: ustar headers, names relative
/// to the destination's parent, directories without a trailing slash, PAX records for a name
/// that does not fit.
fn go_archive(files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        if name.len() > 100 {
            let rec = format!("path={name}\n");
            let mut len = rec.len() + 3;
            if format!("{len} {rec}").len() != len {
                len += 1;
            }
            let pax = format!("{len} {rec}");
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.as_ustar_mut().unwrap().name[..13].copy_from_slice(b"PaxHeaders.0/");
            h.set_size(pax.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, pax.as_bytes()).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        let short = &name.as_bytes()[..name.len().min(100)];
        h.as_ustar_mut().unwrap().name[..short.len()].copy_from_slice(short);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_mode(0o644);
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
            }
        }
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, data.unwrap_or(b"")).unwrap();
    }
    b.into_inner().unwrap()
}

/// `kubectl cp POD:/tmp/foo ./foo` runs `tar cf - /tmp/foo` (and, to resume,
/// `sh -c 'tar cf - /tmp/foo | tail -c+N'`).
#[test]
fn tar_copy_out_as_kubectl_cp_runs_it() {
    let m = tree();
    let (code, archive, err) = block_on(exec(&v(&["tar", "cf", "-", "/tmp/foo"]), &m));
    assert_eq!(code, 0);
    assert_eq!(s(&err), "tar: removing leading '/' from member names\n");
    assert_eq!(archive.len() % 512, 0);
    assert!(archive.ends_with(&[0u8; 1024]));
    let h = tar::Header::from_byte_slice(&archive[..512]);
    assert!(h.as_gnu().is_some(), "busybox writes GNU headers");
    assert_eq!(h.username().unwrap(), Some("root"));
    assert_eq!(h.mtime().unwrap(), 1_700_000_000);
    assert_eq!(
        entries(&archive),
        vec![
            ("tmp/foo/".to_string(), true, Vec::new()),
            ("tmp/foo/a.txt".to_string(), false, b"alpha\n".to_vec()),
            ("tmp/foo/sub/".to_string(), true, Vec::new()),
            ("tmp/foo/sub/b".to_string(), false, b"beta".to_vec()),
        ]
    );
    // The retry form resumes at byte N (1-based).
    let (code, rest, _) = block_on(exec(
        &v(&["sh", "-c", "tar cf - /tmp/foo | tail -c+513"]),
        &m,
    ));
    assert_eq!(code, 0);
    assert_eq!(rest, archive[512..].to_vec());
    // A single file, a relative name, -C, verbose to stderr when the archive is on stdout.
    let (code, one, err) = block_on(exec(
        &v(&["tar", "-cvf", "-", "-C", "/tmp", "foo/a.txt"]),
        &m,
    ));
    assert_eq!((code, s(&err)), (0, "foo/a.txt\n".into()));
    assert_eq!(
        entries(&one),
        vec![("foo/a.txt".into(), false, b"alpha\n".to_vec())]
    );
    // A name of 100 bytes and more goes in a GNU long name entry.
    let long = format!("/tmp/foo/{}", "n".repeat(120));
    m.put(&long, "long");
    let (_, archive, _) = block_on(exec(&v(&["tar", "cf", "-", &long]), &m));
    assert_eq!(&archive[..13], b"././@LongLink");
    assert_eq!(entries(&archive)[0].0, long[1..]);
    // A directory's name counts its `/`: 99 bytes and the slash make a long name.
    let dir99 = format!("/{}", "d".repeat(99));
    m.dir(&dir99);
    let (_, archive, _) = block_on(exec(&v(&["tar", "cf", "-", &dir99]), &m));
    assert_eq!(&archive[..13], b"././@LongLink");
    assert_eq!(
        tar::Header::from_byte_slice(&archive[..512])
            .username()
            .unwrap(),
        Some("")
    );
    assert_eq!(
        entries(&archive),
        vec![(format!("{}/", &dir99[1..]), true, Vec::new())]
    );
    // Missing operands: the archive is still written, the status is 1.
    let (code, archive, err) =
        block_on(exec(&v(&["tar", "cf", "-", "/nope", "/tmp/foo/sub/b"]), &m));
    assert_eq!(code, 1);
    assert_eq!(
        s(&err),
        "tar: /nope: No such file or directory\ntar: removing leading '/' from member names\ntar: error exit delayed from previous errors\n"
    );
    assert_eq!(entries(&archive).len(), 1);
    assert_eq!(
        block_on(exec(&v(&["tar", "cf", "-"]), &m)).2,
        b"tar: empty archive\n"
    );
}

/// `kubectl cp ./x POD:/tmp/x` runs `test -d /tmp/x`, then feeds Go's archive to
/// `tar -xmf - -C /tmp` (or, with --no-preserve, `tar --no-same-permissions --no-same-owner
/// -xmf - -C /tmp`).
#[test]
fn tar_copy_in_as_kubectl_cp_runs_it() {
    let long = format!("x/{}", "L".repeat(150));
    let archive = go_archive(&[
        ("x/a.txt", Some(b"hello\n")),
        ("x/sub/deep/b", Some(b"deep")),
        ("x/empty", None),
        (&long, Some(b"long name")),
    ]);
    for argv in [
        v(&["tar", "-xmf", "-", "-C", "/tmp"]),
        v(&[
            "tar",
            "--no-same-permissions",
            "--no-same-owner",
            "-xmf",
            "-",
            "-C",
            "/tmp",
        ]),
    ] {
        let m = Mem::with_stdin(&archive, 700);
        assert_eq!(block_on(exec(&v(&["test", "-d", "/tmp/x"]), &m)).0, 1);
        assert_eq!(
            block_on(exec(&argv, &m)),
            (0, Vec::new(), Vec::new()),
            "{argv:?}"
        );
        assert_eq!(m.file("/tmp/x/a.txt").unwrap(), b"hello\n");
        assert_eq!(m.file("/tmp/x/sub/deep/b").unwrap(), b"deep");
        assert!(m.is_dir("/tmp/x/empty"));
        assert_eq!(m.file(&format!("/tmp/{long}")).unwrap(), b"long name");
        assert_eq!(block_on(exec(&v(&["test", "-d", "/tmp/x"]), &m)).0, 0);
    }
    // Over an existing file; into a missing directory; from nothing; from garbage.
    let m = Mem::with_stdin(&archive, 512);
    m.put("/tmp/x/a.txt", "old");
    assert_eq!(
        block_on(exec(&v(&["tar", "xf", "-", "-C", "/tmp"]), &m)).0,
        0
    );
    assert_eq!(m.file("/tmp/x/a.txt").unwrap(), b"hello\n");
    let m = Mem::with_stdin(&archive, 512);
    let (code, _, err) = block_on(exec(&v(&["tar", "-xmf", "-", "-C", "/nope"]), &m));
    assert_eq!(
        (code, s(&err)),
        (
            1,
            "tar: can't change directory to '/nope': No such file or directory\n".into()
        )
    );
    let (code, _, err) = block_on(exec(&v(&["tar", "-xmf", "-"]), &Mem::new()));
    assert_eq!((code, s(&err)), (1, "tar: short read\n".into()));
    let m = Mem::with_stdin(&[b'x'; 1024], 512);
    let (code, _, err) = block_on(exec(&v(&["tar", "-xmf", "-"]), &m));
    assert_eq!((code, s(&err)), (1, "tar: invalid tar magic\n".into()));
    let mut bad = archive.clone();
    bad[0] ^= 1;
    let m = Mem::with_stdin(&bad, 512);
    let (code, _, err) = block_on(exec(&v(&["tar", "-xmf", "-"]), &m));
    assert_eq!(
        (code, s(&err)),
        (1, "tar: invalid tar header checksum\n".into())
    );
    let m = Mem::with_stdin(&archive[..700], 512);
    let (code, _, err) = block_on(exec(&v(&["tar", "-xmf", "-", "-C", "/tmp"]), &m));
    assert_eq!((code, s(&err)), (1, "tar: short read\n".into()));
    // Absolute and climbing names are made relative.
    let m = Mem::with_stdin(
        &go_archive(&[("/abs", Some(b"1")), ("../up", Some(b"2"))]),
        512,
    );
    let (code, _, err) = block_on(exec(&v(&["tar", "xf", "-", "-C", "/tmp"]), &m));
    assert_eq!(
        (code, s(&err)),
        (0, "tar: removing leading '/' from member names\n".into())
    );
    assert_eq!(
        (m.file("/tmp/abs"), m.file("/tmp/up")),
        (Some(b"1".to_vec()), Some(b"2".to_vec()))
    );
}

#[test]
fn tar_list_round_trip_gzip() {
    let m = tree();
    assert_eq!(
        sh_on(
            &m,
            "tar -cf /tmp/a.tar -C /tmp foo && rm -rf /tmp/foo && tar -tf /tmp/a.tar"
        ),
        0
    );
    assert_eq!(m.out(), "foo/\nfoo/a.txt\nfoo/sub/\nfoo/sub/b\n");
    assert!(!m.exists("/tmp/foo"));
    assert_eq!(
        sh_on(
            &m,
            "tar xvf /tmp/a.tar -C /tmp foo/sub && cat /tmp/foo/sub/b"
        ),
        0
    );
    assert_eq!(
        m.out(),
        "foo/\nfoo/a.txt\nfoo/sub/\nfoo/sub/b\nfoo/sub/\nfoo/sub/b\nbeta"
    );
    assert!(!m.exists("/tmp/foo/a.txt"));
    let (code, out, _) = block_on(exec(&v(&["tar", "tvf", "/tmp/a.tar", "foo/a.txt"]), &m));
    assert_eq!(
        (code, s(&out)),
        (
            0,
            "-rw-r--r-- root/root         6 2023-11-14 22:13:20 foo/a.txt\n".into()
        )
    );
    let (code, _, err) = block_on(exec(&v(&["tar", "xf", "/tmp/a.tar", "nope"]), &m));
    assert_eq!(
        (code, s(&err)),
        (1, "tar: nope: not found in archive\n".into())
    );
    let (code, out, _) = block_on(exec(&v(&["tar", "xOf", "/tmp/a.tar", "foo/a.txt"]), &m));
    assert_eq!((code, s(&out)), (0, "alpha\n".into()));
    // gzip, by -z and by its magic.
    let plain = m.file("/tmp/a.tar").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    for argv in [v(&["tar", "-tzf", "-"]), v(&["tar", "tf", "-"])] {
        let m = Mem::with_stdin(&gz, 100);
        let (code, out, _) = block_on(exec(&argv, &m));
        assert_eq!(
            (code, s(&out)),
            (0, "foo/\nfoo/a.txt\nfoo/sub/\nfoo/sub/b\n".into())
        );
    }
    let (code, _, err) = sh("tar");
    assert_eq!(code, 1);
    assert!(err.starts_with("Usage: tar c|x|t"));
    assert_eq!(sh("tar -cx /x").0, 1);
    assert_eq!(
        sh("tar --bogus -x").2.lines().next(),
        Some("tar: unrecognized option '--bogus'")
    );
}

#[test]
fn kill_signals_processes() {
    let m = Mem {
        pids: vec![1, 42],
        ..Mem::new()
    };
    assert_eq!(
        sh_on(
            &m,
            "kill 42 && kill -9 1 && kill -s HUP 42 && kill -SIGUSR1 1 && kill -0 42 && kill -- 1"
        ),
        0
    );
    assert_eq!(
        *m.signals.lock().unwrap(),
        vec![(42, 15), (1, 9), (42, 1), (1, 10), (42, 0), (1, 15)]
    );
    assert_eq!(sh_on(&m, "kill 7"), 1);
    assert_eq!(m.err(), "sh: can't kill pid 7: No such process\n");
    let (code, _, err) = block_on(exec(&v(&["kill", "-TERM", "7", "42"]), &m));
    assert_eq!(
        (code, s(&err)),
        (1, "kill: can't kill pid 7: No such process\n".into())
    );
    assert_eq!(m.signals.lock().unwrap().last(), Some(&(42, 15)));
    let (code, _, err) = sh("kill -FOO 1; kill; kill abc");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "sh: bad signal name 'FOO'\nsh: you need to specify whom to kill\nsh: invalid number 'abc'\n"
    );
    let (code, out, _) = sh("kill -l");
    assert_eq!(code, 0);
    assert!(out.starts_with(" 1) HUP\n 2) INT\n"), "{out}");
    assert!(out.contains("\n 9) KILL\n10) USR1\n") && out.contains("\n15) TERM\n16) STKFLT\n"));
    assert!(out.ends_with("31) SYS\n34) RTMIN\n64) RTMAX\n"));
    assert_eq!(sh("kill -l 9 TERM 137").1, "KILL\n15\nKILL\n");
    // The default Shell has no processes.
    struct Bare;
    #[async_trait::async_trait]
    impl Shell for Bare {
        async fn sleep(&self, _: f64) {}
        fn read(&self, _: &str) -> Option<Vec<u8>> {
            None
        }
        fn write(&self, _: &str, _: &[u8], _: bool) -> Result<(), String> {
            Ok(())
        }
        fn remove(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn exists(&self, _: &str) -> bool {
            false
        }
        fn is_file(&self, _: &str) -> bool {
            false
        }
        fn is_dir(&self, _: &str) -> bool {
            false
        }
        fn mkdir(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn stdout(&self, _: &[u8]) {}
        fn stderr(&self, _: &[u8]) {}
        fn env(&self, _: &str) -> Option<String> {
            None
        }
    }
    let (code, out, err) = block_on(exec(&v(&["sh", "-c", "kill 1; hostname; cat"]), &Bare));
    assert_eq!(
        (code, s(&out), s(&err)),
        (
            0,
            "localhost\n".into(),
            "sh: can't kill pid 1: No such process\n".into()
        )
    );
}

#[test]
fn head_and_tail() {
    let m = Mem::new();
    let run_src = |src: &str| {
        let before = m.out().len();
        let code = sh_on(&m, src);
        (code, m.out()[before..].to_string())
    };
    m.put(
        "/n",
        &(1..=15).map(|i| format!("{i}\n")).collect::<String>(),
    );
    let run = run_src;
    assert_eq!(run("head -n 2 /n"), (0, "1\n2\n".into()));
    assert_eq!(run("head -3 /n | tail -n 1"), (0, "3\n".into()));
    assert_eq!(run("head -c 5 /n"), (0, "1\n2\n3".into()));
    assert_eq!(run("head -n -13 /n"), (0, "1\n2\n".into()));
    assert_eq!(run("head /n | wc -l"), (0, "10\n".into()));
    assert_eq!(run("tail -n 2 /n"), (0, "14\n15\n".into()));
    assert_eq!(run("tail -n +14 /n"), (0, "14\n15\n".into()));
    assert_eq!(run("tail -c 3 /n"), (0, "15\n".into()));
    assert_eq!(run("tail -c+31 /n"), (0, "14\n15\n".into()));
    assert_eq!(run("tail -2 /n"), (0, "14\n15\n".into()));
    assert_eq!(run("printf 'a\\nb' | tail -n 1"), (0, "b".into()));
    assert_eq!(
        run("head -n 1 /n /n"),
        (0, "==> /n <==\n1\n\n==> /n <==\n1\n".into())
    );
    assert_eq!(
        sh("head -n x /n"),
        (1, String::new(), "head: invalid number 'x'\n".into())
    );
    assert_eq!(
        sh("head /nope").2,
        "head: /nope: No such file or directory\n"
    );
    assert_eq!(
        sh("tail /nope"),
        (
            1,
            String::new(),
            "tail: can't open '/nope': No such file or directory\ntail: no files\n".into()
        )
    );
    assert_eq!(sh("head -z").2, "head: invalid option -- 'z'\n");
    // tail -f prints what is appended, until killed.
    let m = Mem::new();
    m.put("/log", "a\n");
    let script = Script::parse("tail -f /log").unwrap();
    let r = block_on(async {
        let follow = super::run(&script, &m);
        let writer = async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            m.put("/log", "a\nb\n");
            for _ in 0..2000 {
                if m.out() == "a\nb\n" {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = follow => "ended",
            _ = writer => "followed",
        }
    });
    assert_eq!((r, m.out()), ("followed", "a\nb\n".to_string()));
}

#[test]
fn wc_grep_tee() {
    let m = Mem::new();
    m.put("/t", "hello world\nfoo bar baz\n\nlast");
    let run = |src: &str| {
        let before = m.out().len();
        let code = sh_on(&m, src);
        (code, m.out()[before..].to_string())
    };
    assert_eq!(
        run("wc /t"),
        (0, "        3         6        29 /t\n".into())
    );
    assert_eq!(run("wc -l /t"), (0, "3 /t\n".into()));
    assert_eq!(run("wc -w < /t"), (0, "6\n".into()));
    assert_eq!(run("cat /t | wc -c"), (0, "29\n".into()));
    assert_eq!(
        run("wc -lc /t /t"),
        (
            0,
            "        3        29 /t\n        3        29 /t\n        6        58 total\n".into()
        )
    );
    assert_eq!(run("grep o /t"), (0, "hello world\nfoo bar baz\n".into()));
    assert_eq!(run("grep -c o /t"), (0, "2\n".into()));
    assert_eq!(run("grep -v o /t"), (0, "\nlast\n".into()));
    assert_eq!(run("grep -n -i HELLO /t"), (0, "1:hello world\n".into()));
    assert_eq!(run("grep -o 'ba.' /t"), (0, "bar\nbaz\n".into()));
    assert_eq!(
        run("grep -E 'wor|ba(r|z)$' /t"),
        (0, "hello world\nfoo bar baz\n".into())
    );
    assert_eq!(run("grep 'ba\\(r\\|z\\)$' /t"), (0, "foo bar baz\n".into()));
    assert_eq!(run("grep -F 'a.' /t; echo $?"), (0, "1\n".into()));
    assert_eq!(
        run("grep -e foo -e last /t"),
        (0, "foo bar baz\nlast\n".into())
    );
    assert_eq!(run("grep -x last /t"), (0, "last\n".into()));
    assert_eq!(run("grep -w ba /t; echo $?"), (0, "1\n".into()));
    assert_eq!(run("grep -q world /t && echo yes"), (0, "yes\n".into()));
    assert_eq!(run("grep -l o /t /t"), (0, "/t\n/t\n".into()));
    assert_eq!(
        run("grep '^[[:alpha:]]* b' /t"),
        (0, "foo bar baz\n".into())
    );
    assert_eq!(run("echo 'a+b' | grep 'a+b'"), (0, "a+b\n".into()));
    assert_eq!(
        sh("grep x /nope"),
        (
            2,
            String::new(),
            "grep: /nope: No such file or directory\n".into()
        )
    );
    assert_eq!(sh("grep '\\(' /t").0, 2);
    assert_eq!(sh("echo hi | grep -q hi /nope -").0, 0);
    assert_eq!(run("echo in | tee /tmp/t1 /tmp/t2 && cat /tmp/t1 && echo more | tee -a /tmp/t2 >/dev/null && cat /tmp/t2"), (0, "in\nin\nin\nmore\n".into()));
    assert_eq!(
        sh("echo x | tee /nodir/f"),
        (
            1,
            "x\n".into(),
            "tee: /nodir/f: No such file or directory\n".into()
        )
    );
}

#[test]
fn system_utilities() {
    let m = Mem {
        host: Some("web-0.web.default.svc.cluster.local".into()),
        env: [
            ("PATH".to_string(), "/bin".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ]
        .into(),
        ..Mem::new()
    };
    sh_on(&m, "hostname; hostname -s; id; id -u; id -un; pwd; basename /a/b.txt .txt; dirname /a/b/; dirname b");
    assert_eq!(
        m.out(),
        "web-0.web.default.svc.cluster.local\nweb-0\nuid=0(root) gid=0(root) groups=0(root),10(wheel)\n0\nroot\n/\nb\n/a\n.\n"
    );
    let m2 = Mem {
        env: m.env.clone(),
        ..Mem::new()
    };
    sh_on(&m2, "export A=1; B=2; HOME=/x; unset PATH; env; C=3 env -u A | grep C; env -i Z=9 env; env X=1 sh -c 'echo $X'");
    assert_eq!(m2.out(), "HOME=/x\nA=1\nC=3\nZ=9\n1\n");
    assert_eq!(sh("env nosuch").0, 127);
    assert_eq!(
        sh("hostname newname").2,
        "hostname: sethostname: Operation not permitted\n"
    );
}

#[test]
fn seq_sort_uniq_cut_tr() {
    assert_eq!(sh("seq 3").1, "1\n2\n3\n");
    assert_eq!(sh("seq 2 2 7").1, "2\n4\n6\n");
    assert_eq!(sh("seq -s , 3 1").1, "");
    assert_eq!(sh("seq -s, 1 3").1, "1,2,3\n");
    assert_eq!(sh("seq -w 8 10").1, "08\n09\n10\n");
    assert_eq!(sh("seq 1 0.5 2").1, "1.0\n1.5\n2.0\n");
    assert_eq!(sh("seq x").2, "seq: invalid number 'x'\n");
    assert_eq!(sh("printf 'b\\na\\nc\\na\\n' | sort").1, "a\na\nb\nc\n");
    assert_eq!(sh("printf 'b\\na\\nc\\na\\n' | sort -ru").1, "c\nb\na\n");
    assert_eq!(sh("printf '10\\n9\\n-1\\n' | sort -n").1, "-1\n9\n10\n");
    assert_eq!(
        sh("printf 'a\\na\\nb\\na\\n' | uniq -c").1,
        "      2 a\n      1 b\n      1 a\n"
    );
    assert_eq!(sh("printf 'a\\na\\nb\\n' | uniq -d").1, "a\n");
    assert_eq!(sh("printf 'a\\na\\nb\\n' | uniq -u").1, "b\n");
    assert_eq!(sh("echo 'a:b:c:d' | cut -d: -f2,4").1, "b:d\n");
    assert_eq!(sh("echo 'a:b:c:d' | cut -d : -f 2-").1, "b:c:d\n");
    assert_eq!(
        sh("printf 'nodelim\\nx\\ty\\n' | cut -f2").1,
        "nodelim\ny\n"
    );
    assert_eq!(sh("printf 'nodelim\\n' | cut -s -f2").1, "");
    assert_eq!(sh("echo hello | cut -c 2-4").1, "ell\n");
    assert_eq!(
        sh("cut /x").2,
        "cut: expected a list of bytes, characters, or fields\n"
    );
    assert_eq!(sh("echo hello | tr a-z A-Z").1, "HELLO\n");
    assert_eq!(sh("echo hello | tr -d l").1, "heo\n");
    assert_eq!(sh("echo 'a  b   c' | tr -s ' '").1, "a b c\n");
    assert_eq!(sh("echo 'a b' | tr ' ' '\\n'").1, "a\nb\n");
    assert_eq!(sh("echo abc1 | tr -cd '[:alpha:]'").1, "abc");
    assert_eq!(sh("echo 'x.y' | tr '[:lower:].' '[:upper:]_'").1, "X_Y\n");
}

/// Every utility, with arbitrary arguments and input, returns without panicking.
#[test]
fn utilities_never_panic() {
    let args = [
        "-",
        "--",
        "-n",
        "-c",
        "-f",
        "-d",
        "-s",
        "-C",
        "-x",
        "-t",
        "-v",
        "-z",
        "-e",
        "-o",
        "-i",
        "-l",
        "-u",
        "-r",
        "-w",
        "-k",
        "-0",
        "-9",
        "-KILL",
        "+3",
        "-3",
        "0",
        "1",
        "-1",
        "99999999999",
        "1k",
        "2m",
        "x",
        "",
        "a-z",
        "[:upper:]",
        "\\",
        "[",
        "a\\(b",
        "(",
        "*",
        "^$",
        "1,3-",
        "-5-",
        "/",
        "/tmp",
        "/tmp/f",
        "/nope",
        "/dev/null",
        "--no-same-owner",
        "--directory=/tmp",
        "--strip-components",
        "cf",
        "xvf",
        "tf",
        "-xmf",
        ":",
        "%d",
        "é",
        "\u{0}",
    ];
    let inputs: [&[u8]; 4] = [
        b"",
        b"a b\nc:d\n\n",
        &[0u8; 1024],
        b"\xff\xfe\x1f\x8b\x08garbage",
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let util = invocation::UTILITIES[(seed % invocation::UTILITIES.len() as u64) as usize];
        let mut argv = vec![util.to_string()];
        for k in 0..(seed % 5) {
            let pick = (seed >> (8 * k + 8)) as usize % args.len();
            argv.push(args[pick].to_string());
        }
        let m = Mem::with_stdin(inputs[round % inputs.len()], 100);
        m.dir("/tmp");
        m.put("/tmp/f", "line one\nline two\n");
        let _ = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(20), exec(&argv, &m)).await
        });
    }
}
