//! Fuzz targets that run on stable Rust inside `cargo test`, each for a time budget: request
//! bodies (JSON, YAML, protobuf) through decoding and admission, the three patch types and
//! server-side apply, label and field selectors, the `sh` subset, and image models.
//!
//! Each target mutates a corpus of valid inputs (built in, plus any files under
//! `tests/fuzz/<target>/`) with byte-level and token-level mutations; an input that panics is
//! saved under `target/fuzz-crashes/<target>/` and fails the test with its path (add it to
//! `tests/fuzz/<target>/` once fixed, so it is replayed for ever).
//!
//! - `KUBESPEC_FUZZ_SECONDS` (default 2): the budget per target. A long run:
//!   `KUBESPEC_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --test-threads 1`.
//! - `KUBESPEC_FUZZ_SEED`: the random seed (printed by every run) to replay a run.
//! - `KUBESPEC_FUZZ_TRACE=FILE`: write each input to FILE before running it (to catch an input
//!   that kills the process rather than panicking).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Tokens that push parsers to their edges.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"'",
    b":",
    b",",
    b"- ",
    b"\n",
    b"  ",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"~",
    b"null",
    b"-1",
    b"0",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"1e300",
    b"-1e300",
    b".inf",
    b".nan",
    b"NaN",
    b"\\u0000",
    b"\xff\xfe",
    b"$(",
    b"`",
    b"${",
    b"}",
    b"$((",
    b"))",
    b"<<",
    b">>",
    b"|",
    b"&&",
    b"||",
    b";",
    b"&",
    b"while true; do ",
    b"done",
    b"if ",
    b"then ",
    b"fi",
    b"!=",
    b"==",
    b"in (",
    b"notin (",
    b")",
    b"/metadata/labels",
    b"/spec/containers/0",
    b"/spec/containers/-",
    b"/",
    b"~1",
    b"~0",
    b"\"op\":\"copy\"",
    b"\"op\":\"move\"",
    b"\"op\":\"remove\"",
    b"\"from\":\"/spec\"",
    b"\"$patch\":\"replace\"",
    b"\"$patch\":\"delete\"",
    b"\"$retainKeys\":[\"a\"]",
    b"\"$setElementOrder/containers\":[{\"name\":\"app\"}]",
    b"\"$deleteFromPrimitiveList/finalizers\":[\"a\"]",
    b"cpu",
    b"1Mi",
    b"-1000",
    b"abc",
    b"1e18",
    b"100000000000000000000Ei",
];

fn budget() -> Duration {
    let seconds = std::env::var("KUBESPEC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("KUBESPEC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// The built-in corpus plus `tests/fuzz/<target>/*`.
fn corpus(target: &str, built_in: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut corpus = built_in;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                corpus.push(data);
            }
        }
    }
    corpus
}

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let n = rng.random_range(1..=4);
    for _ in 0..n {
        let len = input.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                input.insert(i, rng.random());
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 32));
                input.drain(i..j);
            }
            3 if len > 0 => {
                // Repeat a chunk (nesting, long strings).
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 16));
                let chunk = input[i..j].to_vec();
                let times = rng.random_range(1..=64);
                for _ in 0..times {
                    input.splice(i..i, chunk.iter().copied());
                }
            }
            4 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                let i = rng.random_range(0..=len);
                input.splice(i..i, token.iter().copied());
            }
            5 if !corpus.is_empty() => {
                // Splice in a piece of another input.
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = rng.random_range(a..=other.len());
                    let i = rng.random_range(0..=len);
                    input.splice(i..i, other[a..b].iter().copied());
                }
            }
            _ if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] = TOKENS[rng.random_range(0..TOKENS.len())][0];
            }
            _ => {}
        }
    }
    input.truncate(64 * 1024);
}

/// Run `target` on the corpus, then on mutations of it until the budget is spent.
fn fuzz(name: &str, built_in: Vec<Vec<u8>>, target: fn(&[u8])) {
    let corpus = corpus(name, built_in);
    let seed = seed();
    eprintln!(
        "fuzz {name}: seed {seed} (KUBESPEC_FUZZ_SEED={seed} replays it), budget {:?}",
        budget()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut runs = 0u64;
    // With KUBESPEC_FUZZ_TRACE=FILE each input is written there before it runs, so an input
    // that takes the process down (an abort, the OOM killer) is left behind.
    let trace = std::env::var_os("KUBESPEC_FUZZ_TRACE").map(PathBuf::from);
    let mut run = |input: &[u8]| {
        runs += 1;
        if let Some(path) = &trace {
            let _ = std::fs::write(path, input);
        }
        if std::panic::catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("../fuzz-crashes")
                .join(name);
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("crash-{seed}-{runs}"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz {name}: input #{runs} panicked; saved to {} (seed {seed})",
                path.display()
            );
        }
    };
    for input in &corpus {
        run(input);
    }
    while started.elapsed() < budget() {
        let mut input = corpus[rng.random_range(0..corpus.len())].clone();
        mutate(&mut rng, &mut input, &corpus);
        run(&input);
    }
    eprintln!(
        "fuzz {name}: {runs} inputs in {:?}, no panic",
        started.elapsed()
    );
}

fn with_pick(pick: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![pick];
    v.extend_from_slice(payload);
    v
}

fn protobuf_pod() -> Vec<u8> {
    use k8s_pb::api::core::v1 as core;
    let pod = core::Pod {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: Some("app".into()),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
        }),
        raw: Some(pod.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

#[test]
fn request_bodies() {
    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"activeDeadlineSeconds":30,"containers":[{"name":"app","image":"nginx","resources":{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"cpu":"1"}},"ports":[{"containerPort":80}],"livenessProbe":{"httpGet":{"path":"/","port":80}}}],"volumes":[{"name":"d","emptyDir":{"sizeLimit":"1Mi"}}],"tolerations":[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]}}"#;
    let deployment = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxSurge":"25%"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}"#;
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations: {a: b}\ndata:\n  k: v\n  list: |\n    line\nbinaryData:\n  b: aGVsbG8=\n";
    fuzz(
        "request_bodies",
        vec![
            with_pick(0, pod),
            with_pick(0, deployment),
            with_pick(1, yaml),
            with_pick(1, pod),
            with_pick(2, &protobuf_pod()),
        ],
        kubespec::fuzz::body,
    );
}

#[test]
fn patches_and_apply() {
    let json_patch = br#"[{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"copy","from":"/spec","path":"/metadata/annotations"},{"op":"replace","path":"/spec/containers/0/image","value":"nginx:1.27"},{"op":"remove","path":"/spec/tolerations/0"},{"op":"test","path":"/kind","value":"Pod"},{"op":"move","from":"/metadata/labels","path":"/metadata/annotations"}]"#;
    let merge = br#"{"metadata":{"labels":{"app":null,"tier":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}"#;
    let strategic = br#"{"metadata":{"finalizers":["a"],"$deleteFromPrimitiveList/finalizers":["b"]},"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"name":"app","image":"nginx:1.27","env":[{"name":"A","$patch":"delete"}],"ports":[{"containerPort":80,"$patch":"replace"}]}],"$retainKeys":["containers"]}}"#;
    fuzz(
        "patches_and_apply",
        vec![
            with_pick(0, json_patch),
            with_pick(1, merge),
            with_pick(2, strategic),
            with_pick(2, merge),
        ],
        kubespec::fuzz::patch,
    );
}

#[test]
fn selectors() {
    fuzz(
        "selectors",
        vec![
            b"app=web,tier!=db".to_vec(),
            b"environment in (production, qa),!canary,track notin (a,b),x".to_vec(),
            b"metadata.name=web,status.phase!=Running,spec.nodeName==node-1".to_vec(),
            b"metadata.namespace=default,spec.schedulerName=default-scheduler".to_vec(),
        ],
        kubespec::fuzz::selectors,
    );
}

#[test]
fn shell_scripts() {
    fuzz(
        "shell_scripts",
        vec![
            b"echo ok > /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600".to_vec(),
            b"i=0; while [ \"$i\" != 3 ]; do echo $i; i=x$i; done; cat /tmp/healthy || echo missing".to_vec(),
            b"trap 'echo bye' TERM; for a in 1 2 3; do printf '%s-%d\\n' \"$a\" 7; done; exit 3".to_vec(),
            b"if test -f /etc/hostname; then echo yes; else echo no >&2; fi; set -e; false; echo never".to_vec(),
            b"mkdir -p /data && touch /data/x && ls /data; echo \"${HOSTNAME:-none}\" | cat".to_vec(),
            b"f() { local n=$1; case $n in 0) return 0;; *) echo $((n * 2)); f $((n - 1));; esac; }; f 3 & wait $!; [[ -d /data && x == x* ]] && cd /data && echo * ${PWD##*/}".to_vec(),
            b"trap 'echo bye' EXIT TERM; for f in /etc/*; do echo \"$f\"; done | awk -F/ '{ n++ } END { print n }'; df -h / | od -c | head -n 2".to_vec(),
            b"wget -q -O - http://127.0.0.1:8080/x?y=1 || wget -S --spider -T 1 -U a --header 'Host: h' --post-data 'a=b' localhost:80/; echo $?; wget -qO- https://[::1]/ ftp://u:p@h/f".to_vec(),
            b"echo hostname | nc -u -w 1 10.0.0.1 8081; nc -zv -w1 127.1 80; nc -lk -p 0 -e cat; id -Gn; id -u root; whoami; groups".to_vec(),
        ],
        kubespec::fuzz::sh,
    );
}

#[test]
fn image_models() {
    fuzz(
        "image_models",
        vec![
            b"images:\n- image: example.com/team/web\n  tags: [\"1.0\"]\n  sizeBytes: 1234\n  pullSeconds: 1.5\n  startupDelaySeconds: 2\n  logs: [starting]\n  http:\n  - port: 8080\n    path: /healthz\n    body: ok\n    status:\n    - {afterSeconds: 0, code: 200}\n    - {afterSeconds: 30, code: 500}\n  tcpPorts: [9000]\n  exit: {afterSeconds: 60, code: 1}\n".to_vec(),
            b"images: []\n".to_vec(),
        ],
        kubespec::fuzz::image_models,
    );
}
