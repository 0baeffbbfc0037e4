//! Standard input, `sh` reading commands from it, pipelines, command substitution, input
//! redirections and here-documents, `read`.

use super::tests::{block_on, sh, sh_on, v, Mem};
use super::*;
use std::time::Duration;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn cat_copies_standard_input() {
    let m = Mem::with_stdin(b"hello\nworld\n", 4);
    assert_eq!(
        block_on(exec(&v(&["cat"]), &m)),
        (0, b"hello\nworld\n".to_vec(), Vec::new())
    );
    let m = Mem::with_stdin(b"in\n", 100);
    m.put("/a", "A\n");
    let (code, out, _) = block_on(exec(&v(&["cat", "/a", "-", "/a"]), &m));
    assert_eq!((code, s(&out)), (0, "A\nin\nA\n".into()));
    // Standard input is read once: a second `-` finds its end.
    let m = Mem::with_stdin(b"once\n", 100);
    assert_eq!(sh_on(&m, "cat; cat -; echo end"), 0);
    assert_eq!(m.out(), "once\nend\n");
}

#[test]
fn sh_reads_commands_from_stdin() {
    // printf 'echo a\nexit 3\necho no\n' | kubectl exec -i pod -- sh
    let m = Mem::with_stdin(b"echo a\nexit 3\necho no\n", 5);
    assert_eq!(
        block_on(exec(&v(&["sh"]), &m)),
        (3, b"a\n".to_vec(), Vec::new())
    );
    // Multi-line commands, and the last status at the end of input.
    let m = Mem::with_stdin(b"for i in 1 2\ndo echo $i\ndone\nfalse", 7);
    let (code, out, _) = block_on(exec(&v(&["/bin/sh", "-s", "x"]), &m));
    assert_eq!((code, s(&out)), (1, "1\n2\n".into()));
    // A syntax error ends a non-interactive shell with 2, after what came before it ran.
    let m = Mem::with_stdin(b"echo before\nfi\necho after\n", 100);
    let (code, out, err) = block_on(exec(&v(&["sh"]), &m));
    assert_eq!((code, s(&out)), (2, "before\n".into()));
    assert_eq!(s(&err), "sh: syntax error: unexpected \"fi\" (at byte 0)\n");
    // Input ending inside a command.
    let m = Mem::with_stdin(b"while true\n", 100);
    let (code, _, err) = block_on(exec(&v(&["sh"]), &m));
    assert_eq!(code, 2);
    assert!(s(&err).starts_with("sh: syntax error: unexpected end of file"));
    // `sh` in a pipeline reads the pipe; a container command `sh` reads standard input.
    assert_eq!(
        sh("echo 'echo piped; exit 5' | sh; echo $?").1,
        "piped\n5\n"
    );
    let m = Mem::with_stdin(b"echo main\n", 100);
    assert_eq!(block_on(run(&from_command(&v(&["sh"])).unwrap(), &m)), 0);
    assert_eq!(m.out(), "main\n");
    // Lines continued with a backslash, here-documents across lines.
    let m = Mem::with_stdin(b"echo a \\\nb\ncat <<EOF\nx\nEOF\n", 3);
    assert_eq!(block_on(exec(&v(&["sh"]), &m)).1, b"a b\nx\n");
}

/// An interactive session answers each command as soon as its line arrives, with busybox's
/// prompts on standard error, and survives a syntax error.
#[test]
fn interactive_session_answers_line_by_line() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let m = Mem {
        stdin_rx: Some(tokio::sync::Mutex::new(rx)),
        ..Mem::new()
    };
    let code = block_on(async {
        let session = run_stdin(&m, Some(DEFAULT_PS1));
        let m = &m;
        let driver = async {
            let wait_for = |want: &'static str| async move {
                for _ in 0..2000 {
                    if m.out().contains(want) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                panic!("no {want:?} in {:?}", m.out());
            };
            tx.send(b"echo one\n".to_vec()).unwrap();
            wait_for("one\n").await;
            // Answered before the next line was typed.
            assert_eq!(m.out(), "one\n");
            tx.send(b"if true\n".to_vec()).unwrap();
            tx.send(b"then echo two; fi\n".to_vec()).unwrap();
            wait_for("two\n").await;
            tx.send(b"fi\n".to_vec()).unwrap();
            tx.send(b"PS1='$ '; echo three\n".to_vec()).unwrap();
            wait_for("three\n").await;
            tx.send(b"exit 4\n".to_vec()).unwrap();
        };
        let (code, ()) = tokio::join!(session, driver);
        code
    });
    assert_eq!(code, 4);
    assert_eq!(m.out(), "one\ntwo\nthree\n");
    assert_eq!(
        m.err(),
        "/ # / # > / # sh: syntax error: unexpected \"fi\" (at byte 0)\n/ # $ "
    );
    // Through exec_streaming with a terminal, output goes to the Shell as it is written.
    let m = Mem::with_stdin(b"echo hi\n", 100);
    assert_eq!(block_on(exec_streaming(&v(&["sh"]), &m, true)), 0);
    assert_eq!((m.out(), m.err()), ("hi\n".into(), "/ # / # ".into()));
    let m = Mem::with_stdin(b"echo hi\n", 100);
    assert_eq!(block_on(exec_streaming(&v(&["sh"]), &m, false)), 0);
    assert_eq!((m.out(), m.err()), ("hi\n".into(), String::new()));
}

#[test]
fn pipelines() {
    assert_eq!(sh("echo hello | cat"), (0, "hello\n".into(), String::new()));
    assert_eq!(sh("printf 'a\\nb\\nc\\n' | grep -v b | wc -l").1, "2\n");
    assert_eq!(sh("false | true; echo $?").1, "0\n");
    assert_eq!(sh("true | false; echo $?").1, "1\n");
    assert_eq!(sh("! true | false; echo $?").1, "0\n");
    assert_eq!(sh("echo a |\n  cat").1, "a\n");
    // Each stage is a subshell.
    assert_eq!(
        sh("X=1; X=2 | true; echo $X; exit 3 | true; echo after").1,
        "1\nafter\n"
    );
    // Standard error is not piped.
    let (_, out, err) = sh("cat /nope 2>&1 | grep -c nope; cat /nope | wc -c");
    assert_eq!(
        (out.as_str(), err.as_str()),
        (
            "1\n0\n",
            "cat: can't open '/nope': No such file or directory\n"
        )
    );
    // Redirections of a stage, and a compound command as a stage.
    let m = Mem::new();
    sh_on(
        &m,
        "for i in 1 2 3; do echo $i; done | while read n; do echo \"<$n>\"; done > /tmp/o",
    );
    assert_eq!(m.file("/tmp/o").unwrap(), b"<1>\n<2>\n<3>\n");
    // set -e looks at the pipeline's status.
    assert_eq!(
        sh("set -e; false | true; echo ok; true | false; echo no").1,
        "ok\n"
    );
}

/// The stages run at once: a reader that stops early ends an endless writer (SIGPIPE).
#[test]
fn pipeline_stages_run_concurrently() {
    let m = Mem::new();
    let script = Script::parse("while true; do echo y; done | head -n 2; echo $?").unwrap();
    let r =
        block_on(async { tokio::time::timeout(Duration::from_secs(10), run(&script, &m)).await });
    assert_eq!(r, Ok(0));
    assert_eq!(m.out(), "y\ny\n0\n");
    // The writer's status is SIGPIPE's.
    assert_eq!(
        sh("while :; do echo y; done | head -c 1 >/dev/null; echo done").1,
        "done\n"
    );
    // A large output flows through a small pipe.
    let (code, out, _) = sh("seq 1 200000 | tail -n 1");
    assert_eq!((code, out.as_str()), (0, "200000\n"));
    // Dropping the future stops a pipeline that never ends.
    let script = Script::parse("while :; do echo x; done | cat > /dev/null").unwrap();
    let r =
        block_on(async { tokio::time::timeout(Duration::from_millis(50), run(&script, &m)).await });
    assert!(r.is_err());
}

#[test]
fn command_substitution() {
    assert_eq!(sh("echo \"[$(echo a; echo b)]\"").1, "[a\nb]\n");
    assert_eq!(
        sh("for w in $(echo 'a  b'); do echo \"<$w>\"; done").1,
        "<a>\n<b>\n"
    );
    assert_eq!(sh("echo `echo hi` \"`echo 'x  y'`\"").1, "hi x  y\n");
    assert_eq!(sh("echo $(echo $(echo nested))").1, "nested\n");
    assert_eq!(sh("X=$(printf 'a\\n\\n\\n'); echo \"[$X]\"").1, "[a]\n");
    assert_eq!(sh("X=$(exit 3); echo $?; Y=$(true); echo $?").1, "3\n0\n");
    assert_eq!(sh("$(Y=5); echo \"[$Y]\"").1, "[]\n");
    assert_eq!(sh("echo [$(true)] x$(echo)y").1, "[] xy\n");
    let (_, out, err) = sh("X=$(cat /nope); echo \"[$X]\"");
    assert_eq!(out, "[]\n");
    assert_eq!(err, "cat: can't open '/nope': No such file or directory\n");
    let m = Mem::new();
    m.put("/etc/hostname", "web-0\n");
    sh_on(
        &m,
        "H=$(cat /etc/hostname) && echo \"host=$H\" > \"/tmp/$(echo out)\"",
    );
    assert_eq!(m.file("/tmp/out").unwrap(), b"host=web-0\n");
    // A pipeline and a here-document inside.
    assert_eq!(sh("echo $(printf 'b\\na\\n' | sort | head -n 1)").1, "a\n");
    assert_eq!(sh("X=$(cat <<EOF\ninside\nEOF\n); echo $X").1, "inside\n");
    // Nesting is bounded when parsed.
    let deep = format!(
        "echo {}x{}",
        "$(echo ".repeat(MAX_SUBST_DEPTH),
        ")".repeat(MAX_SUBST_DEPTH)
    );
    assert_eq!(sh(&deep).1, "x\n");
    let too_deep = format!(
        "echo {}x{}",
        "$(echo ".repeat(MAX_SUBST_DEPTH + 1),
        ")".repeat(MAX_SUBST_DEPTH + 1)
    );
    assert!(matches!(
        Script::parse(&too_deep),
        Err(ParseError::TooDeep { .. })
    ));
    assert!(matches!(
        Script::parse("echo $(echo"),
        Err(ParseError::UnexpectedEnd { .. })
    ));
    assert!(matches!(
        Script::parse("echo `echo"),
        Err(ParseError::UnterminatedQuote { quote: '`', .. })
    ));
}

#[test]
fn input_redirections_and_heredocs() {
    let m = Mem::new();
    m.put("/f", "one\ntwo words\n");
    sh_on(
        &m,
        "while read a b; do echo \"[$a|$b]\"; done < /f; cat < /f | wc -l",
    );
    assert_eq!(m.out(), "[one|]\n[two|words]\n2\n");
    let (code, _, err) = sh("cat < /nope");
    assert_eq!(
        (code, err.as_str()),
        (1, "sh: can't open /nope: no such file\n")
    );
    assert_eq!(sh("wc -c < /dev/null").1, "0\n");
    assert_eq!(
        sh("X=v; cat <<EOF\nhello $X \\$X `echo bq`\nEOF\necho next").1,
        "hello v $X bq\nnext\n"
    );
    assert_eq!(sh("X=v; cat <<'EOF'\n$X \\n\nEOF").1, "$X \\n\n");
    assert_eq!(
        sh("cat <<-END\n\t\tindented\n\tEND\necho ok").1,
        "indented\nok\n"
    );
    assert_eq!(sh("cat <<A; cat <<B\na\nA\nb\nB").1, "a\nb\n");
    let m = Mem::new();
    sh_on(&m, "cat > /tmp/conf <<EOF\nkey=value\nEOF");
    assert_eq!(m.file("/tmp/conf").unwrap(), b"key=value\n");
}

#[test]
fn read_builtin() {
    let m = Mem::with_stdin(b"first line\n  a  b  c  \nlast", 3);
    sh_on(
        &m,
        "read x; echo \"[$x]\"; read p q; echo \"[$p][$q]\"; read r; echo \"$? [$r]\"; read z; echo \"$? [$z]\"",
    );
    assert_eq!(m.out(), "[first line]\n[a][b  c]\n1 [last]\n1 []\n");
    assert_eq!(
        sh("printf 'a\\\\\\\\b\\n' | while read -r x; do echo \"$x\"; done").1,
        "a\\\\b\n"
    );
    assert_eq!(
        sh("printf 'a\\\\\\\\b\\n' | while read x; do echo \"$x\"; done").1,
        "a\\b\n"
    );
    assert_eq!(
        sh("echo hi | while read; do echo \"$REPLY\"; done").1,
        "hi\n"
    );
}

#[test]
fn new_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let m = Mem::new();
    let argv = v(&["sh"]);
    assert_send(run_stdin(&m, Some(DEFAULT_PS1)));
    assert_send(exec_streaming(&argv, &m, true));
}

/// The deepest nesting the limits allow (command substitutions inside compound commands inside
/// command substitutions ...) runs within a 2 MiB stack; past the budget, the innermost
/// subshell stops with a message instead of overflowing.
#[test]
fn deep_substitution_nesting_runs() {
    fn level(k: usize) -> String {
        let inner = if k < MAX_SUBST_DEPTH {
            format!("echo $({})", level(k + 1))
        } else {
            "echo deep".to_string()
        };
        format!(
            "{}{inner}{}",
            "if true; then ".repeat(MAX_DEPTH),
            "; fi".repeat(MAX_DEPTH)
        )
    }
    let src = level(1);
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || sh(&src))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(r, (0, "deep\n".to_string(), String::new()));
    // Inside shells nested as deep as they may, the budget runs out.
    let m = Mem::new();
    for i in 1..MAX_SH_NESTING {
        m.put(&format!("/s{i}.sh"), &format!("sh /s{}.sh", i + 1));
    }
    m.put(&format!("/s{MAX_SH_NESTING}.sh"), &level(1));
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || (sh_on(&m, "sh /s1.sh"), m.out(), m.err()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        r,
        (
            0,
            "\n".to_string(),
            "sh: commands nested too deeply\n".to_string()
        )
    );
}
