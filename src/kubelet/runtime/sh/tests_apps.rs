//! Applets that look into files and filesystems: `df`, `stat -c`, the `sha*sum` family,
//! `hexdump`, `od`, and `awk`.

use super::tests::{sh, sh_on, Mem};
use super::*;

fn container() -> Mem {
    let mut m = Mem::new();
    m.mounts = vec![
        Mount {
            device: "overlay".into(),
            mount_point: "/".into(),
            fs_type: "overlay".into(),
            size: 64 << 20,
            used: 5000,
        },
        Mount {
            device: "/dev/sda1".into(),
            mount_point: "/data".into(),
            fs_type: "ext4".into(),
            size: 64 << 20,
            used: 0,
        },
    ];
    m.dir("/data");
    m.put("/data/f", "hello\n");
    m.put("/e", "");
    m
}

#[test]
fn df_shows_the_mounts_and_their_usage() {
    let m = container();
    assert_eq!(sh_on(&m, "df; df -h /data/f; df -Pk /; df -T /nope"), 1);
    assert_eq!(
        m.out(),
        "Filesystem           1K-blocks      Used Available Use% Mounted on\n\
         overlay                  65536         5     65531   0% /\n\
         /dev/sda1                65536         0     65536   0% /data\n\
         Filesystem                Size      Used Available Use% Mounted on\n\
         /dev/sda1                64.0M         0     64.0M   0% /data\n\
         Filesystem           1024-blocks    Used Available Capacity Mounted on\n\
         overlay                  65536         5     65531   0% /\n\
         Filesystem           Type       1K-blocks      Used Available Use% Mounted on\n"
    );
    assert_eq!(m.err(), "df: /nope: can't find mount point\n");
    assert_eq!(sh_on(&m, "df -m | awk 'NR == 2 { print $4 }'"), 0);
    assert!(m.out().ends_with("64\n"), "{}", m.out());
}

#[test]
fn stat_formats_what_the_filesystem_knows() {
    let m = container();
    assert_eq!(
        sh_on(
            &m,
            "stat -c '%n %s %F' /data/f /e /data; stat -c '[%-6s]%%' /data/f"
        ),
        0
    );
    assert_eq!(
        m.out(),
        "/data/f 6 regular file\n/e 0 regular empty file\n/data 4096 directory\n[6     ]%\n"
    );
    assert_eq!(sh_on(&m, "stat -c %s /nope"), 1);
    assert_eq!(
        m.err(),
        "stat: can't stat '/nope': No such file or directory\n"
    );
    let (code, _, err) = sh("touch /x; stat -c %a /x");
    assert_eq!(code, 1);
    assert!(err.contains("%a"), "{err}");
}

#[test]
fn checksums() {
    let m = container();
    sh_on(
        &m,
        "sha256sum /data/f; printf 'hello\\n' | sha1sum; sha256sum /data/f > /sums; sha256sum -c /sums",
    );
    assert_eq!(
        m.out(),
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  /data/f\n\
         f572d396fae9206628714fb2ce00f72e94f2258f  -\n\
         /data/f: OK\n"
    );
    let m = container();
    m.put("/bad", "0000  /data/f\n");
    assert_eq!(sh_on(&m, "sha256sum -c /bad; sha256sum /nope"), 1);
    assert_eq!(m.out(), "/data/f: FAILED\n");
    assert_eq!(
        m.err(),
        "sha256sum: WARNING: 1 of 1 computed checksums did NOT match\n\
         sha256sum: can't open '/nope': No such file or directory\n"
    );
}

#[test]
fn hexdump_and_od() {
    let m = container();
    sh_on(
        &m,
        "hexdump -C /data/f; printf 'hi\\n' | od -c; od -A x -t x2 /data/f",
    );
    assert_eq!(
        m.out(),
        "00000000  68 65 6c 6c 6f 0a                                 |hello.|\n\
         00000006\n\
         0000000   h   i  \\n\n\
         0000003\n\
         000000 6568 6c6c 0a6f\n\
         000006\n"
    );
    assert_eq!(sh("printf '' | hexdump -C").1, "");
    assert_eq!(
        sh("printf 'abcdef' | hexdump -s 2 -n 3 -C").1,
        "00000002  63 64 65                                          |cde|\n00000005\n"
    );
    assert_eq!(sh("printf 'x' | od -An -tu1").1, " 120\n");
}

#[test]
fn awk_programs() {
    let a = |input: &str, prog: &str| {
        let m = Mem::with_stdin(input.as_bytes(), 7);
        let code = sh_on(&m, &format!("awk {prog}"));
        (code, m.out(), m.err())
    };
    let out = |input: &str, prog: &str| a(input, prog).1;
    assert_eq!(out("a b c\nd e f\n", "'{print $1}'"), "a\nd\n");
    assert_eq!(out("  a   b  \n", "'{print $2, NF}'"), "b 2\n");
    assert_eq!(out("x:y:z\n", "-F: '{print $2}'"), "y\n");
    assert_eq!(out("x:y:z\n", "-F ':' '{print $NF, $(NF-1)}'"), "z y\n");
    assert_eq!(out("1\n2\n3\n", "'NR==2'"), "2\n");
    assert_eq!(
        out("1\n2\n3\n", "'NR>1 {print NR\": \"$0}'"),
        "2: 2\n3: 3\n"
    );
    assert_eq!(
        out(
            "a 10\nb 5\nc 30\n",
            "'{ s += $2 } $2 > 8 { print $1 } END { print s, s/NR }'"
        ),
        "a\nc\n45 15\n"
    );
    assert_eq!(out("foo\nbar\nfood\n", "'/^fo/'"), "foo\nfood\n");
    assert_eq!(
        out("foo\nbar\n", "'!/foo/ { print \"no:\" $0 }'"),
        "no:bar\n"
    );
    assert_eq!(
        out(
            "ab 7\n",
            "'{ printf \"%-5s|%3d|%05.1f|%x\\n\", $1, $2, $2 / 3, 255 }'"
        ),
        "ab   |  7|002.3|ff\n"
    );
    assert_eq!(
        out("a b c\n", "'{ $2 = \"X\"; print; print NF }'"),
        "a X c\n3\n"
    );
    assert_eq!(
        out(
            "a b c\n",
            "'BEGIN { OFS = \"-\" } { $1 = $1; print; NF = 2; print }'"
        ),
        "a-b-c\na-b\n"
    );
    assert_eq!(
        out("1,2,3\n", "'{ n = split($0, a, \",\"); for (i = n; i > 0; i--) printf \"%s \", a[i]; print \"\" }'"),
        "3 2 1 \n"
    );
    assert_eq!(
        out(
            "foo boo\n",
            "'{ gsub(/o/, \"0\"); print; sub(/f/, \"[&]\"); print }'"
        ),
        "f00 b00\n[f]00 b00\n"
    );
    assert_eq!(
        a("", "'BEGIN { print length(\"héllo\"), substr(\"hello\", 2, 3), substr(\"hello\", 0, 2), index(\"hello\", \"ll\"), toupper(\"a\"), int(-3.7) }'").1,
        "6 ell he 3 A -3\n"
    );
    assert_eq!(
        out(
            "b\na\nb\n",
            "'{ c[$1]++ } END { for (k in c) print k, c[k] }'"
        ),
        "a 1\nb 2\n"
    );
    assert_eq!(
        a("", "-v x=5 'BEGIN { print x * 2, (\"k\" in ENVIRON) }'").1,
        "10 0\n"
    );
    assert_eq!(
        a("", "'function f(a) { return a * 2 } function fill(arr) { arr[1] = \"one\" } BEGIN { print f(21); fill(z); print z[1] }'").1,
        "42\none\n"
    );
    assert_eq!(
        a(
            "1\n2\n",
            "'{ print } NR == 1 { exit 3 } END { print \"end\" }'"
        ),
        (3, "1\nend\n".into(), "".into())
    );
    assert_eq!(
        a(
            "",
            "'BEGIN { if (\"10\" < \"9\") print \"str\"; if (10 < 9) print \"num\" }'"
        )
        .1,
        "str\n"
    );
    assert_eq!(
        out("10 9\n", "'{ print ($1 < $2), ($1 < \"9\") }'"),
        "0 1\n"
    );
    assert_eq!(
        a("", "'BEGIN { printf \"%d %s %.2f\\n\", \"3x\", 1/3, 2/3 }'").1,
        "3 0.333333 0.67\n"
    );
    assert_eq!(
        a(
            "",
            "'BEGIN { match(\"foobar\", /ob/); print RSTART, RLENGTH }'"
        )
        .1,
        "3 2\n"
    );
    assert_eq!(
        out("one\ntwo\n", "'/one/,/two/ { print \"r:\" $0 }'"),
        "r:one\nr:two\n"
    );
    assert_eq!(
        out(
            "a\n\nb\nc\n",
            "'BEGIN { RS = \"\" } { print NR \": \" $1 \"+\" $2 }'"
        ),
        "1: a+\n2: b+c\n"
    );
    let m = Mem::with_stdin(b"x\ny\n", 64);
    assert_eq!(
        sh_on(
            &m,
            "awk '{ print > \"/tmp/out\"; print \"e:\" $0 > \"/dev/stderr\" }'; cat /tmp/out"
        ),
        0
    );
    assert_eq!(m.out(), "x\ny\n");
    assert_eq!(m.err(), "e:x\ne:y\n");
    // Files and assignments as operands; a missing file ends awk.
    let m = Mem::new();
    m.put("/f", "1 2\n");
    sh_on(
        &m,
        "awk '{ print v, $2 }' v=a /f v=b /f; awk '{ print }' /nope; echo $?",
    );
    assert_eq!(m.out(), "a 2\nb 2\n1\n");
    assert_eq!(
        m.err(),
        "awk: can't open '/nope': No such file or directory\n"
    );
    // Errors.
    assert_eq!(
        a("", "'BEGIN { print 1 / 0 }'"),
        (1, "".into(), "awk: cmd. line:1: Division by zero\n".into())
    );
    assert_eq!(
        a("", "'BEGIN { print (1 }'"),
        (1, "".into(), "awk: cmd. line:1: Unexpected token\n".into())
    );
    let (code, _, err) = a("", "'BEGIN { while (1) x++ }'");
    assert_eq!(code, 1);
    assert!(err.contains("steps"), "{err}");
    // A pipeline of the kind upstream's e2e tests run.
    let m = Mem::new();
    m.put(
        "/proc/mounts",
        "overlay / overlay rw 0 0\ntmpfs /dev tmpfs rw 0 0\n",
    );
    sh_on(&m, "cat /proc/mounts | awk '$2 == \"/dev\" {print $3}'; echo a b | awk '{print $1}' | tr a-z A-Z");
    assert_eq!(m.out(), "tmpfs\nA\n");
}
