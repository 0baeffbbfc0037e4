//! The language beyond simple lists: traps and signals, functions, brace groups and subshells,
//! `case`, arithmetic, background jobs, `[[ ]]`, pathname expansion, the `${X#pattern}` family,
//! and the builtins acting on the shell (`shift`, `eval`, `cd`, `exec`, `.`, `let`).

use super::tests::{block_on, sh, sh_on, Mem};
use super::*;
use std::sync::Arc;

/// A shell running as a container's main process.
fn main_process() -> Mem {
    Mem {
        main: Some(Signals::new()),
        ..Mem::new()
    }
}

/// Run `src` as a container's main process whose `sleep` never ends; `signal` is sent once the
/// script sleeps for the `nth` time (1-based). (status, stdout, stderr, whether the signal was
/// taken).
fn signalled(src: &str, signal: i32, nth: usize) -> (i32, String, String, bool) {
    let m = Mem {
        sleep_forever: true,
        ..main_process()
    };
    let script = Script::parse(src).unwrap();
    let signals = m.main.clone().unwrap();
    let taken = std::sync::Mutex::new(None);
    let code = block_on(async {
        let sender = async {
            while m.sleeps.lock().unwrap().len() < nth {
                tokio::task::yield_now().await;
            }
            *taken.lock().unwrap() = Some(signals.send(signal));
            std::future::pending::<()>().await;
        };
        tokio::select! {
            code = run(&script, &m) => code,
            () = sender => unreachable!(),
        }
    });
    let taken = taken.lock().unwrap().unwrap_or(false);
    (code, m.out(), m.err(), taken)
}

#[test]
fn a_trapped_sigterm_ends_the_sleep_and_runs_the_trap() {
    // Upstream's e2e InfiniteSleepCommand: it ends at once, with status 0.
    let (code, out, err, taken) = signalled("trap exit TERM; while true; do sleep 1; done", 15, 1);
    assert_eq!((code, out.as_str(), err.as_str(), taken), (0, "", "", true));
    let (code, _, _, _) = signalled("trap \"exit 0\" SIGTERM; sleep 3600", 15, 1);
    assert_eq!(code, 0);
    // The status before the trap is `exit`'s; the trap's own commands do not change it.
    let (code, out, _, _) = signalled("trap 'echo bye; exit' TERM; false; sleep 9", 15, 1);
    assert_eq!((code, out.as_str()), (0, "bye\n"));
    let (code, out, _, _) = signalled(
        "trap 'echo caught' TERM INT; sleep 5; echo next; exit 4",
        2,
        1,
    );
    assert_eq!((code, out.as_str()), (4, "caught\nnext\n"));
    // EXIT runs after the signal's trap ends the shell.
    let (code, out, _, _) = signalled(
        "trap 'echo term; exit 3' TERM; trap 'echo exit $?' EXIT; sleep 5",
        15,
        1,
    );
    assert_eq!((code, out.as_str()), (3, "term\nexit 3\n"));
    // A trap set after the signal came does not see it (PID 1 dropped it).
    let m = main_process();
    assert!(!m.main.as_ref().unwrap().send(15));
    assert_eq!(sh_on(&m, "trap 'echo late' TERM; echo set"), 0);
    assert_eq!(
        m.out(),
        "set
"
    );
}

#[test]
fn pid_1_takes_only_the_signals_it_traps() {
    let s = Signals::new();
    assert!(!s.send(15), "no trap: the kernel drops it");
    let m = main_process();
    let signals = m.main.clone().unwrap();
    sh_on(&m, "trap '' TERM; trap 'echo usr1' USR1");
    assert!(!signals.send(15), "ignored");
    assert!(signals.send(10));
    assert!(!signals.send(9), "SIGKILL never reaches PID 1 from inside");
    // A script's PID 1 takes SIGINT without a trap: it stops it (130).
    let (code, out, _, taken) = signalled("sleep 5; echo no", 2, 1);
    assert_eq!((code, out.as_str(), taken), (130, "", true));
}

#[test]
fn kill_of_the_shells_own_pid_runs_its_trap() {
    let m = main_process();
    assert_eq!(
        sh_on(
            &m,
            "trap 'echo got; exit 7' TERM; kill -TERM $$; echo after"
        ),
        7
    );
    assert_eq!(m.out(), "got\n");
    let m = main_process();
    assert_eq!(
        sh_on(&m, "trap 'echo got $?' TERM; false; kill $$; echo after $?"),
        0
    );
    assert_eq!(m.out(), "got 0\nafter 0\n");
    let m = main_process();
    assert_eq!(sh_on(&m, "kill -INT 1; echo after"), 130);
    assert_eq!(m.out(), "");
    // `sh FILE` as the container's command, and `exec sh`, are the process: their traps count.
    let m = main_process();
    m.put(
        "/run.sh",
        "trap 'echo file; exit 4' TERM\nkill 1\necho no\n",
    );
    let script = from_command(&["sh".to_string(), "/run.sh".to_string()]).unwrap();
    assert_eq!(block_on(run(&script, &m)), 4);
    assert_eq!(m.out(), "file\n");
    let m = main_process();
    assert_eq!(
        sh_on(
            &m,
            "trap 'echo old' TERM; exec sh -c 'trap \"echo new; exit 5\" TERM; kill 1'"
        ),
        5
    );
    assert_eq!(m.out(), "new\n");
    // A utility as the command is PID 1 itself: it traps nothing.
    let m = main_process();
    let script = from_command(&["sleep".to_string(), "1".to_string()]).unwrap();
    block_on(run(&script, &m));
    assert!(!m.main.as_ref().unwrap().send(2));
}

#[test]
fn a_trap_that_signals_itself_can_be_cancelled() {
    let m = main_process();
    let script = Script::parse("trap 'kill $$' TERM; kill $$").unwrap();
    let r = block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(50), run(&script, &m)).await
    });
    assert!(r.is_err());
}

#[test]
fn exit_traps_and_listing() {
    assert_eq!(
        sh("trap 'echo bye' EXIT; echo hi"),
        (0, "hi\nbye\n".into(), "".into())
    );
    assert_eq!(sh("trap 'echo bye $?' EXIT; exit 3").1, "bye 3\n");
    assert_eq!(sh("trap 'echo bye $?' 0; false").0, 1);
    assert_eq!(sh("trap 'exit 5' EXIT; exit 3").0, 5);
    assert_eq!(sh("trap 'echo x' EXIT; trap - EXIT; echo y").1, "y\n");
    assert_eq!(sh("trap 'echo x' EXIT; trap EXIT; echo y").1, "y\n");
    // A subshell does not run its parent's EXIT trap, only its own.
    assert_eq!(
        sh("trap 'echo main' EXIT; (echo sub); (trap 'echo inner' EXIT; :); echo end").1,
        "sub\ninner\nend\nmain\n"
    );
    assert_eq!(
        sh("trap 'echo a' TERM INT; trap '' HUP; trap \"echo 'q'\" EXIT; trap").1,
        "trap -- 'echo '\"'\"'q'\"'\" EXIT\ntrap -- '' HUP\ntrap -- 'echo a' INT\ntrap -- 'echo a' TERM\nq\n"
    );
    assert_eq!(
        sh("trap 'echo t' 15 SIGusr1; trap - 15; trap").1,
        "trap -- 'echo t' USR1\n"
    );
    assert_eq!(
        sh("trap 'x' BOGUS; echo $?"),
        (
            0,
            "1\n".into(),
            "sh: trap: BOGUS: invalid signal specification\n".into()
        )
    );
    assert_eq!(
        sh("trap 'echo err $?' ERR; false; true; ! false; echo end").1,
        "err 1\nend\n"
    );
}

#[test]
fn functions_groups_and_subshells() {
    assert_eq!(
        sh("f() { echo \"f:$1:$#\"; return 3; }; f a b; echo $?").1,
        "f:a:2\n3\n"
    );
    assert_eq!(
        sh("f() { local x=1; y=2; echo $x; }; x=0; f; echo $x $y").1,
        "1\n0 2\n"
    );
    assert_eq!(
        sh("f() { local x; echo \"[$x]\"; x=3; }; x=0; f; echo $x").1,
        "[]\n0\n"
    );
    assert_eq!(
        sh("fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(($1 - 1))) )); fi; }; fact 5").1,
        "120\n"
    );
    assert_eq!(
        sh("function g { echo g; }; g; function h() { echo h; }; h").1,
        "g\nh\n"
    );
    assert_eq!(sh("f() echo one; f").1, "one\n");
    assert_eq!(sh("f()\n{\n  echo nl\n}\nf").1, "nl\n");
    assert_eq!(
        sh("echo() { printf 'E:%s\\n' \"$*\"; }; echo hi; /bin/echo plain").1,
        "E:hi\nplain\n"
    );
    assert_eq!(sh("f() { echo $0 $1; }; f x").1, "sh x\n");
    assert_eq!(
        sh("f() { break; }; for i in 1 2 3; do echo $i; f; done").1,
        "1\n"
    );
    assert_eq!(
        sh("local x"),
        (2, "".into(), "sh: local: not in a function\n".into())
    );
    assert_eq!(sh("echo a; return 4; echo b"), (4, "a\n".into(), "".into()));
    assert_eq!(sh("f() { exit 6; }; f; echo no").0, 6);
    // Brace groups run in this shell; subshells in a copy.
    let m = Mem::new();
    assert_eq!(
        sh_on(
            &m,
            "{ echo a; echo b; } > /tmp/o; x=1; { x=2; }; (x=3; echo in $x); echo $x"
        ),
        0
    );
    assert_eq!(m.file("/tmp/o").unwrap(), b"a\nb\n");
    assert_eq!(m.out(), "in 3\n2\n");
    assert_eq!(sh("(exit 3); echo $?; (false) || echo or").1, "3\nor\n");
    assert_eq!(sh("( cd /tmp; pwd ); pwd").1, "/tmp\n/\n");
    // Unbounded recursion stops at the nesting limit.
    let (code, _, err) = sh("f() { f; }; f");
    assert_eq!(code, 2);
    assert!(err.contains("nested too deeply"), "{err}");
}

#[test]
fn case_patterns() {
    let c = |word: &str| {
        sh(&format!(
            "case {word} in a*) echo A;; *.log|*.txt) echo text;; \"*\") echo star;; ?) echo one;; *) echo other;; esac"
        ))
        .1
    };
    assert_eq!(c("abc"), "A\n");
    assert_eq!(c("x.txt"), "text\n");
    assert_eq!(c("'*'"), "star\n");
    assert_eq!(c("z"), "one\n");
    assert_eq!(c("zz"), "other\n");
    assert_eq!(sh("case \"$v\" in \"\") echo empty;; esac").1, "empty\n");
    assert_eq!(sh("case a in (a) echo paren;; esac").1, "paren\n");
    assert_eq!(sh("false; case a in b) ;; esac; echo $?").1, "0\n");
    assert_eq!(sh("case a in a) false;; esac; echo $?").1, "1\n");
    assert_eq!(
        sh("set -- start\ncase $1 in\n  start)\n    echo s\n    ;;\n  stop) echo t\nesac").1,
        "s\n"
    );
    assert_eq!(sh("p='a*'; case abc in $p) echo glob;; esac").1, "glob\n");
    assert_eq!(
        sh("p='a*'; case abc in \"$p\") echo no;; *) echo literal;; esac").1,
        "literal\n"
    );
    assert_eq!(sh("case b in [a-c]) echo range;; esac").1, "range\n");
    assert_eq!(
        sh("x=$(case y in y) echo in-subst;; esac); echo $x").1,
        "in-subst\n"
    );
}

#[test]
fn arithmetic_expansion_and_let() {
    assert_eq!(
        sh("echo $((1+2*3)) $((10/3)) $((10%3)) $((2**10)) $((-7/2)) $((1<<4))").1,
        "7 3 1 1024 -3 16\n"
    );
    assert_eq!(
        sh("i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i").1,
        "3\n"
    );
    assert_eq!(sh("echo $((x=5, x*2)) $x").1, "10 5\n");
    assert_eq!(
        sh("echo $(( 1 > 2 ? 10 : 20 )) $((3 == 3 && 0 || 2))").1,
        "20 1\n"
    );
    assert_eq!(
        sh("n=5; echo $((n++)) $n $((--n)) $(( n += 10 ))").1,
        "5 6 5 15\n"
    );
    assert_eq!(
        sh("echo \"$((1 + $(echo 2)))\" $(( 0x10 + 010 ))").1,
        "3 24\n"
    );
    assert_eq!(sh("x='2 + 3'; echo $((x * 2)) $(($x * 2))").1, "10 8\n");
    assert_eq!(
        sh("let x=3+4 y=x*2; echo $x $y; let 0; echo $?").1,
        "7 14\n1\n"
    );
    // `let` is a regular builtin: its error is a status.
    assert_eq!(
        sh("let 1/0; echo $?"),
        (0, "2\n".into(), "sh: let: divide by zero\n".into())
    );
    assert_eq!(
        sh("echo $((1/0)); echo after"),
        (2, "".into(), "sh: divide by zero\n".into())
    );
    assert_eq!(
        sh("echo $((1 +)); echo after"),
        (2, "".into(), "sh: arithmetic syntax error\n".into())
    );
    // An interactive-less `sh -c` inside a script: only that shell stops.
    assert_eq!(sh("sh -c 'echo $((2/0))'; echo $?").1, "2\n");
}

#[test]
fn background_jobs_and_wait() {
    assert_eq!(sh("sleep 1 & echo $!; wait $!; echo $?").1, "2\n0\n");
    assert_eq!(sh("(exit 3) & wait $!; echo $?").1, "3\n");
    assert_eq!(sh("false & x=$!; true & wait $x; echo $?").1, "1\n");
    assert_eq!(sh("echo a > /tmp/x & wait; cat /tmp/x").1, "a\n");
    assert_eq!(sh("echo hi | cat & wait").1, "hi\n");
    assert_eq!(sh("wait 999; echo $?; wait; echo $?").1, "127\n0\n");
    assert_eq!(
        sh("wait x; echo $?"),
        (0, "2\n".into(), "sh: wait: Illegal number: x\n".into())
    );
    assert_eq!(sh("sleep 2 & sleep 1 & wait -n; echo $?").1, "0\n");
    // A job reads nothing from standard input.
    let m = Mem::with_stdin(b"data\n", 64);
    sh_on(&m, "cat & wait; cat");
    assert_eq!(m.out(), "data\n");
    // Jobs run while the script goes on.
    let m = Mem::new();
    assert_eq!(
        sh_on(
            &m,
            "(while [ ! -f /tmp/go ]; do sleep 1; done; echo done) & sleep 1; echo main; touch /tmp/go; wait"
        ),
        0
    );
    assert_eq!(m.out(), "main\ndone\n");
    // `kill` ends a job; `wait` reports the signal.
    let m = Mem {
        sleep_forever: true,
        ..Mem::new()
    };
    sh_on(
        &m,
        "sleep 100 & kill $!; wait $!; echo $?; sleep 5 & kill -9 $!; wait $!; echo $?",
    );
    assert_eq!(m.out(), "143\n137\n");
    // Jobs meet a process limit.
    let m = Mem {
        sleep_forever: true,
        ..Mem::new()
    };
    sh_on(
        &m,
        "i=0; while [ $i -lt 1030 ]; do sleep 9 & i=$((i+1)); done; echo $?",
    );
    assert_eq!(m.out(), "0\n");
    assert_eq!(
        m.err(),
        "sh: can't fork: Resource temporarily unavailable\n".repeat(6)
    );
    // The certbot idiom: a trapped TERM interrupts `wait`.
    let (code, out, _, _) = signalled(
        "trap 'echo bye; exit' TERM; while :; do sleep 12h & wait ${!}; done",
        15,
        1,
    );
    assert_eq!((code, out.as_str()), (143, "bye\n"));
}

#[test]
fn double_brackets() {
    let t = |s: &str| sh(s).0;
    assert_eq!(t("[[ abc == a* ]]"), 0);
    assert_eq!(t("[[ abc = b* ]]"), 1);
    assert_eq!(t("[[ abc != b* ]]"), 0);
    assert_eq!(t("[[ abc =~ ^a.c$ ]]"), 0);
    assert_eq!(t("[[ abc =~ ^b ]]"), 1);
    assert_eq!(t("[[ -d /tmp && -n x ]]"), 0);
    assert_eq!(t("[[ -d /nope || -z '' ]]"), 0);
    assert_eq!(t("[[ 1 -lt 2 && 3 -gt 4 ]]"), 1);
    assert_eq!(t("[[ ! -e /nope ]]"), 0);
    assert_eq!(t("[[ x ]] && [[ '' ]]"), 1);
    assert_eq!(t("[[ a -a b ]]"), 2);
    assert_eq!(sh("[[ a =~ '(' ]]; echo $?"), (0, "2\n".into(), "".into()));
    assert_eq!(sh("[[ a = a"), (2, "".into(), "sh: missing ]]\n".into()));
    assert_eq!(sh("x='a b'; [[ $x == 'a b' ]] || echo split").1, "split\n");
}

#[test]
fn pathname_expansion() {
    let m = Mem::new();
    m.dir("/d");
    for f in ["/d/a.txt", "/d/b.txt", "/d/c.log", "/d/.h"] {
        m.put(f, "");
    }
    m.dir("/d/sub");
    sh_on(
        &m,
        "echo /d/*.txt; echo /d/*.none; echo \"/d/*\"; echo /d/?.log /d/[ab].txt; echo /d/*/",
    );
    assert_eq!(
        m.out(),
        "/d/a.txt /d/b.txt\n/d/*.none\n/d/*\n/d/c.log /d/a.txt /d/b.txt\n/d/sub/\n"
    );
    let m2 = Mem::new();
    *m2.fs.lock().unwrap() = m.fs.lock().unwrap().clone();
    sh_on(
        &m2,
        "cd /d; echo *; echo .*; set -f; echo *; set +f; for f in *.txt; do echo \"[$f]\"; done; x='*.log'; echo $x \"$x\"",
    );
    assert_eq!(
        m2.out(),
        "a.txt b.txt c.log sub\n. .. .h\n*\n[a.txt]\n[b.txt]\nc.log *.log\n"
    );
    assert_eq!(sh("rm -f /nope/*; echo $?").1, "0\n");
}

#[test]
fn parameter_patterns_and_errors() {
    assert_eq!(
        sh("X=/a/b/c.tar.gz; echo ${X#*/} ${X##*/} ${X%.*} ${X%%.*} ${X#nomatch}").1,
        "a/b/c.tar.gz c.tar.gz /a/b/c.tar /a/b/c /a/b/c.tar.gz\n"
    );
    assert_eq!(
        sh("X=abc; echo ${X#\"a\"} ${X%'c'} ${X#?} \"${X%b*}\"").1,
        "bc ab bc a\n"
    );
    assert_eq!(sh("X='a*b'; echo ${X#\"a*\"} ${X#a\\*}").1, "b b\n");
    let m = Mem {
        env: [("HOME".to_string(), "/home/u".to_string())].into(),
        ..Mem::new()
    };
    sh_on(
        &m,
        "echo ${U:-$HOME} \"${U:-a  b}\" ${U:-'x y'}; y=${U:=`echo set`}; echo $U $y",
    );
    assert_eq!(m.out(), "/home/u a  b x y\nset set\n");
    assert_eq!(
        sh("echo ${U:?is unset}; echo after"),
        (2, "".into(), "sh: U: is unset\n".into())
    );
    assert_eq!(sh("echo ${U?}").2, "sh: U: parameter not set\n");
    assert_eq!(
        sh("U=; echo ${U:?}").2,
        "sh: U: parameter not set or null\n"
    );
    assert_eq!(sh("U=; echo ${U?}ok").1, "ok\n");
    assert_eq!(sh("for w in ${X:-a b}; do echo $w; done").1, "a\nb\n");
    assert_eq!(sh("echo ${X:-${Y:-deep}}").1, "deep\n");
    let m = Mem {
        env: [("HOME".to_string(), "/home/u".to_string())].into(),
        ..Mem::new()
    };
    sh_on(&m, "echo ~ ~/x ~root \"~\" a~; D=~/d; echo $D");
    assert_eq!(m.out(), "/home/u /home/u/x /root ~ a~\n/home/u/d\n");
}

#[test]
fn shift_eval_cd_exec_and_dot() {
    assert_eq!(
        sh("set -- a b c; shift; echo $@; shift 2; echo $#; shift; echo $?").1,
        "b c\n0\n1\n"
    );
    assert_eq!(sh("shift x").2, "sh: shift: Illegal number: x\n");
    assert_eq!(sh("eval 'x=1; echo $x'; eval \"echo \\$x\"").1, "1\n1\n");
    assert_eq!(
        sh("cmd='echo a  b'; eval $cmd; eval; echo $?").1,
        "a b\n0\n"
    );
    assert_eq!(sh("eval 'exit 4'; echo no").0, 4);
    assert_eq!(sh("eval 'if'; echo no").0, 2);
    let m = Mem::new();
    m.dir("/tmp");
    sh_on(
        &m,
        "cd /tmp; pwd; touch f; ls; cat ./f; cd ..; pwd; cd /nope; echo $?; cd /tmp/f; cd - ; echo $PWD $OLDPWD",
    );
    assert_eq!(m.out(), "/tmp\nf\n/\n2\n/tmp\n/tmp /\n");
    assert_eq!(
        m.err(),
        "sh: cd: can't cd to /nope: No such file or directory\nsh: cd: can't cd to /tmp/f: Not a directory\n"
    );
    assert!(m.file("/tmp/f").is_some());
    let m = Mem {
        env: [("HOME".to_string(), "/root".to_string())].into(),
        ..Mem::new()
    };
    sh_on(&m, "cd; pwd");
    assert_eq!(m.out(), "/root\n");
    assert_eq!(sh("exec echo hi; echo no"), (0, "hi\n".into(), "".into()));
    assert_eq!(sh("exec false; echo no").0, 1);
    assert_eq!(sh("trap 'echo gone' EXIT; exec true").1, "");
    assert_eq!(
        sh("exec nosuch; echo no"),
        (127, "".into(), "sh: exec: nosuch: not found\n".into())
    );
    let m = Mem::new();
    sh_on(
        &m,
        "exec >/tmp/log 2>&1; echo a; echo b >&2; if true; then echo c; fi",
    );
    assert_eq!(m.file("/tmp/log").unwrap(), b"a\nb\nc\n");
    assert_eq!(m.out(), "");
    let m = Mem::new();
    sh_on(&m, "{ exec >/tmp/in; echo a; } >/tmp/group; echo b");
    assert_eq!(m.file("/tmp/in").unwrap(), b"a\n");
    assert_eq!(m.out(), "b\n");
    let m = Mem::new();
    m.put("/s.sh", "echo \"in $1 $#\"; X=set; return 3; echo no\n");
    assert_eq!(sh_on(&m, ". /s.sh a b; echo $? $X $#"), 0);
    assert_eq!(m.out(), "in a 2\n3 set 0\n");
    assert_eq!(
        sh(". nope.sh; echo no"),
        (2, "".into(), "sh: .: nope.sh: not found\n".into())
    );
}

#[test]
fn the_new_constructs_never_panic() {
    // Odd inputs around the new syntax: parsed or rejected, and run to the end.
    for src in [
        "case",
        "case x",
        "case x in",
        "case x in a",
        "case x in a)",
        "case x in a) echo",
        "esac",
        "f()",
        "f() {",
        "function",
        "function f",
        "()",
        "( )",
        "{ }",
        "&",
        "a & & b",
        "$((",
        "$(( ))",
        "echo $(( ( ))",
        "${X#",
        "${X%%",
        "${X:?",
        "[[",
        "[[ ]]",
        "[[ && ]]",
        "trap",
        "trap -",
        "trap - -",
        "wait %1",
        "wait -z",
        "kill %1",
        "cd ''",
        "exec",
        "eval",
        ".",
        "let",
        "let '1 +'",
        "shift -1",
        "return x",
        "echo ${#}${##}",
        "echo $((2**63)) $((-(2**63) / -1)) $((1 << 65)) $((1 % 0))",
        "echo *** ? [ [! [] []] [a-]",
    ] {
        let m = main_process();
        if let Ok(script) = Script::parse(src) {
            let _ = block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(200), run(&script, &m)).await
            });
        }
    }
    let _ = Arc::new(0);
}

#[test]
fn a_word_that_outgrows_memory_fails_instead_of_taking_the_machines() {
    // Each round doubles (or multiplies) the value: busybox runs out of memory in the
    // container; the simulation says so at 16 MiB and the expansion fails.
    let (code, out, err) = sh("i=x; while true; do i=$i$i$i$i; done; echo never");
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("sh: out of memory"), "{err}");
    let (code, _, err) = sh("i=xxxxxxxx; while true; do i=$i$i; echo $i$i$i$i$i$i$i$i$i$i$i$i$i$i$i$i$i > /dev/null; done");
    assert_ne!(code, 0);
    assert!(err.contains("sh: out of memory"), "{err}");
}
