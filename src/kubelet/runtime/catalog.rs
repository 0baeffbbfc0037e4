//! The image catalog: which image references exist, how big they are, how long they take to pull,
//! and what their containers do — modelled on the real public images the specs use, so the same
//! manifest behaves the same on a real cluster.
//!
//! | repository | tags | behaviour |
//! |---|---|---|
//! | `docker.io/library/nginx` | `1.x`, `latest`, `stable`, `alpine`... | nginx's welcome page on :80 |
//! | `registry.k8s.io/e2e-test-images/nginx` | `1.x` | the same |
//! | `docker.io/library/busybox`, `registry.k8s.io/busybox`, `registry.k8s.io/e2e-test-images/busybox` | `1.x`... | the sh subset (`sh -c ...`, single utilities) |
//! | `registry.k8s.io/e2e-test-images/agnhost` | `2.x` | the agnhost binary (`/agnhost`, `/agnhost-2`), see `agnhost` |
//! | `registry.k8s.io/e2e-test-images/httpd` | `2.4.38-1`..`-4`, `2.4.39-1`..`-4` | Apache httpd 2.4.38/2.4.39 (stops on SIGTERM) |
//! | `docker.io/library/httpd` | `latest`, `2`, `2.4`, `2.4.N`, `-alpine` variants | Apache httpd (SIGWINCH graceful stop from 2.4.41) |
//! | `registry.k8s.io/e2e-test-images/nonroot` | `1.1`..`1.4` | busybox, as user 1234 |
//! | `registry.k8s.io/pause` | `3.x` | sleeps until stopped (as 65535) |
//! | `registry.k8s.io/kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kube-proxy` | `v1.x.y` | the component's binary idles until stopped (the real component runs outside the runtime) |
//! | `registry.k8s.io/etcd` | `3.x.y-N` | likewise |
//!
//! A command an image does not have fails to start (`StartError`), as with a real runtime; the
//! images' shells are the sh subset.

use std::time::Duration;

/// What a container of an image does when started (its entrypoint, given command and args).
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// Sleeps until killed; exits 0 on SIGTERM (registry.k8s.io/pause).
    Pause,
    /// nginx: HTTP on :80, `/` answers 200; exits 0 on SIGTERM.
    Nginx,
    /// Apache httpd (the official `httpd` image and e2e's mirror of it): HTTP on :80 serving
    /// the stock `It works!` page at `/` and `/index.html`, an access log on stdout and the
    /// error log on stderr.
    Httpd {
        /// The Apache version the image carries (`2.4.38`).
        version: String,
        /// Whether the image stops with SIGWINCH (httpd's graceful stop; the official image's
        /// `STOPSIGNAL` since 2.4.41) rather than SIGTERM (an immediate stop).
        graceful_stop: bool,
    },
    /// The agnhost binary, run with this argv (`argv[0]` as invoked: `/agnhost` or
    /// `/agnhost-2`, then the subcommand and its flags).
    Agnhost(Vec<String>),
    /// A busybox shell command line (`sh -c ...` or a single command).
    Shell(Vec<String>),
    /// An image the user modelled (see `models`).
    Model(std::sync::Arc<super::models::ImageModel>),
}

/// A resolved image reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// The fully qualified reference (`docker.io/library/nginx:1.27`).
    pub reference: String,
    /// The repository part (`docker.io/library/nginx`).
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// Size in bytes, as the Pulled event reports it.
    pub size: u64,
    /// How long a pull takes (cluster time).
    pub pull_time: Duration,
}

/// Why an image cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ImageError {
    /// The reference does not parse (InvalidImageName).
    #[error("{0}")]
    InvalidName(String),
    /// The registry has no such image (ErrImagePull).
    #[error("{0}")]
    NotFound(String),
}

struct Repo {
    repository: &'static str,
    /// Size in bytes by tag.
    size: fn(&str) -> u64,
    pull_millis: u64,
    tag_ok: fn(&str) -> bool,
}

fn numeric_version(tag: &str, major: &str) -> bool {
    let Some(rest) = tag.strip_prefix(major) else {
        return false;
    };
    rest.is_empty()
        || rest.starts_with('.')
            && rest[1..]
                .split(['.', '-'])
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The Apache release of the newest official `httpd` image (its `latest`, `2`, `2.4` tags).
const HTTPD_LATEST: &str = "2.4.63";

/// The Apache version behind an `httpd` tag: e2e's mirror tags `2.4.38-4` and the official
/// image's `2.4.39-alpine`, `2.4`, `latest`... `None` when the registry has no such tag.
fn httpd_version(repository: &str, tag: &str) -> Option<String> {
    if repository == "registry.k8s.io/e2e-test-images/httpd" {
        // e2e mirrors httpd:2.4.38-alpine and httpd:2.4.39-alpine, rebuilt as -1 ... -4.
        let (version, build) = tag.rsplit_once('-')?;
        return (matches!(version, "2.4.38" | "2.4.39") && matches!(build, "1" | "2" | "3" | "4"))
            .then(|| version.to_string());
    }
    let base = tag.strip_suffix("-alpine").unwrap_or(tag);
    match base {
        "latest" | "alpine" | "2" | "2.4" => Some(HTTPD_LATEST.to_string()),
        _ => {
            let patch: u32 = base.strip_prefix("2.4.")?.parse().ok()?;
            let latest: u32 = HTTPD_LATEST.rsplit('.').next()?.parse().ok()?;
            (1..=latest)
                .contains(&patch)
                .then(|| format!("2.4.{patch}"))
        }
    }
}

/// Whether an httpd release's official image stops with SIGWINCH (graceful stop): the image
/// gained `STOPSIGNAL SIGWINCH` in August 2019, after 2.4.39 was last built.
fn httpd_graceful_stop(version: &str) -> bool {
    version
        .strip_prefix("2.4.")
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p >= 41)
}

const REPOS: &[Repo] = &[
    Repo {
        repository: "docker.io/library/nginx",
        size: |_| 72_195_292,
        pull_millis: 1800,
        tag_ok: |t| {
            matches!(
                t,
                "latest" | "stable" | "mainline" | "alpine" | "stable-alpine"
            ) || numeric_version(t.trim_end_matches("-alpine"), "1")
        },
    },
    Repo {
        repository: "docker.io/library/busybox",
        size: |_| 2_166_802,
        pull_millis: 400,
        tag_ok: |t| {
            matches!(t, "latest" | "stable" | "musl" | "glibc" | "uclibc")
                || numeric_version(
                    t.trim_end_matches("-musl")
                        .trim_end_matches("-glibc")
                        .trim_end_matches("-uclibc"),
                    "1",
                )
        },
    },
    Repo {
        // The image of the upstream documentation's liveness examples.
        repository: "registry.k8s.io/busybox",
        size: |_| 1_144_547,
        pull_millis: 400,
        tag_ok: |t| matches!(t, "latest" | "1.24" | "1.27" | "1.27.2"),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/busybox",
        size: |_| 1_374_155,
        pull_millis: 400,
        tag_ok: |t| numeric_version(t, "1"),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/agnhost",
        size: |_| 51_245_311,
        pull_millis: 1500,
        tag_ok: |t| numeric_version(t, "2"),
    },
    Repo {
        // e2e's "webserver" image until after 1.33: a mirror of httpd:2.4.38-alpine and
        // httpd:2.4.39-alpine (sizes as nodes report those).
        repository: "registry.k8s.io/e2e-test-images/httpd",
        size: |t| {
            if t.starts_with("2.4.39") {
                41_901_429
            } else {
                40_765_017
            }
        },
        pull_millis: 1300,
        tag_ok: |t| httpd_version("registry.k8s.io/e2e-test-images/httpd", t).is_some(),
    },
    Repo {
        // The official image: Debian-based, or Alpine-based for `-alpine` tags (approximate
        // sizes, but for the two Alpine releases e2e mirrors).
        repository: "docker.io/library/httpd",
        size: |t| match t {
            "2.4.38-alpine" => 40_765_017,
            "2.4.39-alpine" => 41_901_429,
            t if t.ends_with("alpine") => 22_000_000,
            _ => 58_000_000,
        },
        pull_millis: 1600,
        tag_ok: |t| httpd_version("docker.io/library/httpd", t).is_some(),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/nginx",
        size: |_| 7_035_064,
        pull_millis: 600,
        tag_ok: |t| numeric_version(t, "1"),
    },
    Repo {
        // e2e's busybox that runs as user 1234 (`USER 1234`); approximate size.
        repository: "registry.k8s.io/e2e-test-images/nonroot",
        size: |_| 1_374_155,
        pull_millis: 400,
        tag_ok: |t| matches!(t, "1.1" | "1.2" | "1.3" | "1.4"),
    },
    Repo {
        repository: "registry.k8s.io/pause",
        size: |_| 320_368,
        pull_millis: 300,
        tag_ok: |t| numeric_version(t, "3"),
    },
    // The control plane's images (distroless: the component's binary and no shell); their
    // containers idle, as the components run outside the simulated runtime. Approximate sizes.
    Repo {
        repository: "registry.k8s.io/kube-apiserver",
        size: |_| 30_071_307,
        pull_millis: 1200,
        tag_ok: kubernetes_release,
    },
    Repo {
        repository: "registry.k8s.io/kube-controller-manager",
        size: |_| 27_646_507,
        pull_millis: 1100,
        tag_ok: kubernetes_release,
    },
    Repo {
        repository: "registry.k8s.io/kube-scheduler",
        size: |_| 21_776_084,
        pull_millis: 900,
        tag_ok: kubernetes_release,
    },
    Repo {
        repository: "registry.k8s.io/kube-proxy",
        size: |_| 31_889_036,
        pull_millis: 1200,
        tag_ok: kubernetes_release,
    },
    Repo {
        repository: "registry.k8s.io/etcd",
        size: |_| 58_938_593,
        pull_millis: 2000,
        tag_ok: |t| {
            t.strip_prefix("3.")
                .and_then(|rest| rest.rsplit_once('-'))
                .is_some_and(|(version, build)| {
                    version.split('.').count() == 2
                        && version
                            .split('.')
                            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                        && !build.is_empty()
                        && build.bytes().all(|b| b.is_ascii_digit())
                })
        },
    },
];

/// A Kubernetes release tag as registry.k8s.io carries for its component images (`v1.33.0`).
fn kubernetes_release(tag: &str) -> bool {
    tag.strip_prefix("v1.").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The binary a control-plane image runs (`kube-apiserver`, `etcd`...), if `repository` is one.
pub fn control_plane_binary(repository: &str) -> Option<&'static str> {
    Some(match repository {
        "registry.k8s.io/kube-apiserver" => "kube-apiserver",
        "registry.k8s.io/kube-controller-manager" => "kube-controller-manager",
        "registry.k8s.io/kube-scheduler" => "kube-scheduler",
        "registry.k8s.io/kube-proxy" => "kube-proxy",
        "registry.k8s.io/etcd" => "etcd",
        _ => return None,
    })
}

/// Normalise a reference as the container runtime does: `nginx` -> `docker.io/library/nginx:latest`.
///
/// # Errors
/// [`ImageError::InvalidName`] with upstream's message when the reference does not parse.
pub fn normalize(image: &str) -> Result<(String, String), ImageError> {
    let invalid = |why: &str| {
        ImageError::InvalidName(format!(
            "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": invalid reference format{why}"
        ))
    };
    if image.is_empty()
        || image.contains(char::is_whitespace)
        || image.ends_with(':')
        || image.ends_with('/')
    {
        return Err(invalid(""));
    }
    let without_digest = image.split('@').next().unwrap_or(image);
    let (name, tag) = match without_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t.to_string()),
        _ => (without_digest, "latest".to_string()),
    };
    let mut parts: Vec<&str> = name.split('/').collect();
    let has_registry = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    if !has_registry {
        if parts.len() == 1 {
            parts.insert(0, "library");
        }
        parts.insert(0, "docker.io");
    }
    let repository = parts.join("/");
    let path = repository
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or_default();
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid(&format!(
            ": repository name ({path}) must be lowercase"
        )));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    {
        return Err(invalid(""));
    }
    Ok((repository, tag))
}

/// Look an image reference up as a registry would.
///
/// # Errors
/// [`ImageError::InvalidName`] or [`ImageError::NotFound`] with containerd's messages.
pub fn resolve(image: &str) -> Result<Image, ImageError> {
    let (repository, tag) = normalize(image)?;
    let reference = format!("{repository}:{tag}");
    let Some(repo) = REPOS.iter().find(|r| r.repository == repository) else {
        return Err(ImageError::NotFound(format!(
            "rpc error: code = Unknown desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
        )));
    };
    if !(repo.tag_ok)(&tag) {
        return Err(ImageError::NotFound(format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
        )));
    }
    let size = (repo.size)(&tag);
    Ok(Image {
        reference,
        repository,
        tag,
        size,
        pull_time: Duration::from_millis(repo.pull_millis),
    })
}

/// Whether `program` names the agnhost binary as a container's command or `kubectl exec` can
/// (the image has `/agnhost` and the symlink `/agnhost-2`; `/` is not on its `PATH`).
pub fn is_agnhost_program(program: &str) -> bool {
    matches!(
        program,
        "/agnhost" | "/agnhost-2" | "./agnhost" | "./agnhost-2"
    )
}

/// The default `PATH` of the catalog's Linux images (Debian's and busybox's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment an image's configuration sets (its `Env`): `PATH` for every image, and
/// httpd's own variables.
pub fn image_env(image: &Image) -> Vec<(String, String)> {
    let repo = image.repository.rsplit('/').next().unwrap_or_default();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    match repo {
        "httpd" => vec![
            pair("PATH", &format!("/usr/local/apache2/bin:{DEFAULT_PATH}")),
            pair("HTTPD_PREFIX", "/usr/local/apache2"),
        ],
        _ => vec![pair("PATH", DEFAULT_PATH)],
    }
}

/// The user an image's configuration names (its `User`): `65535:65535` for pause, `1234` for
/// e2e's nonroot image, root (empty) for the others.
pub fn image_user(image: &Image) -> &'static str {
    match image.repository.rsplit('/').next().unwrap_or_default() {
        "pause" => "65535:65535",
        "nonroot" => "1234",
        _ => "",
    }
}

/// A container process's environment as containerd and runc build it: the default `PATH`,
/// `HOSTNAME`, the image's variables, then the kubelet's (each replacing an earlier variable of
/// the same name in place), and `HOME` (root's) unless set.
pub fn process_env(
    image: &Image,
    hostname: &str,
    kubelet: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    for (k, v) in image_env(image).iter().chain(kubelet) {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), "/root".into()));
    }
    env
}

/// What a container of `image` with this command and args does.
pub fn behaviour(image: &Image, command: &[String], args: &[String]) -> Behaviour {
    let argv: Vec<String> = command.iter().chain(args).cloned().collect();
    let repo = image.repository.rsplit('/').next().unwrap_or_default();
    if let Some(binary) = control_plane_binary(&image.repository) {
        // The component's binary idles here (the real one runs outside the runtime); any
        // other program is not in the image.
        let runs_binary = argv
            .first()
            .is_none_or(|program| program == binary || program.rsplit('/').next() == Some(binary));
        return if runs_binary {
            Behaviour::Pause
        } else {
            Behaviour::Shell(argv)
        };
    }
    match repo {
        "pause" => Behaviour::Pause,
        "nginx" if command.is_empty() => Behaviour::Nginx,
        "agnhost" => {
            // ENTRYPOINT ["/agnhost"], CMD ["pause"]: args replace the CMD, a command replaces
            // both (and then args alone follow it).
            if command.is_empty() {
                let mut argv = vec!["/agnhost".to_string()];
                if args.is_empty() {
                    argv.push("pause".into());
                } else {
                    argv.extend(args.iter().cloned());
                }
                Behaviour::Agnhost(argv)
            } else if is_agnhost_program(&command[0]) {
                Behaviour::Agnhost(argv)
            } else {
                Behaviour::Shell(argv)
            }
        }
        "httpd" => {
            let foreground = argv.is_empty()
                || argv == ["httpd-foreground"]
                || argv == ["httpd", "-DFOREGROUND"]
                || argv == ["httpd", "-D", "FOREGROUND"];
            match httpd_version(&image.repository, &image.tag) {
                Some(version) if foreground => Behaviour::Httpd {
                    graceful_stop: image.repository == "docker.io/library/httpd"
                        && httpd_graceful_stop(&version),
                    version,
                },
                _ => Behaviour::Shell(argv),
            }
        }
        _ if argv.is_empty() => match repo {
            // busybox's default command is `sh`, which exits at once without a terminal.
            "busybox" | "nonroot" => {
                Behaviour::Shell(vec!["sh".into(), "-c".into(), "exit 0".into()])
            }
            _ => Behaviour::Pause,
        },
        _ => Behaviour::Shell(argv),
    }
}

/// Go's `time.Duration` rendering (`1.5s`, `523ms`, `1h2m3s`), as the Pulled event and
/// agnhost's logs print durations.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim(nanos as f64 / 1_000.0));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim(nanos as f64 / 1_000_000.0));
    }
    let whole = d.as_secs();
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    let secs = format!(
        "{}s",
        trim(s as f64 + f64::from(d.subsec_nanos()) / 1_000_000_000.0)
    );
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_the_runtime() {
        assert_eq!(
            normalize("nginx").unwrap(),
            ("docker.io/library/nginx".into(), "latest".into())
        );
        assert_eq!(
            normalize("busybox:1.36").unwrap(),
            ("docker.io/library/busybox".into(), "1.36".into())
        );
        assert_eq!(
            normalize("registry.k8s.io/e2e-test-images/agnhost:2.53").unwrap(),
            (
                "registry.k8s.io/e2e-test-images/agnhost".into(),
                "2.53".into()
            )
        );
        let err = normalize("Nginx").unwrap_err().to_string();
        assert!(
            err.ends_with(
                "invalid reference format: repository name (library/Nginx) must be lowercase"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_images_and_tags_fail_as_a_registry_would() {
        assert!(resolve("nginx:1.27").is_ok());
        assert!(resolve("registry.k8s.io/pause:3.10").is_ok());
        let tag = resolve("nginx:no-such-tag").unwrap_err().to_string();
        assert!(tag.starts_with("rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:no-such-tag\""), "{tag}");
        let repo = resolve("example.com/nope/app:1").unwrap_err().to_string();
        assert!(
            repo.contains("pull access denied, repository does not exist"),
            "{repo}"
        );
    }

    #[test]
    fn agnhost_runs_its_entrypoint_with_args_or_the_given_command() {
        let agnhost = resolve("registry.k8s.io/e2e-test-images/agnhost:2.53").unwrap();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // ENTRYPOINT ["/agnhost"], CMD ["pause"].
        assert_eq!(
            behaviour(&agnhost, &[], &[]),
            Behaviour::Agnhost(v(&["/agnhost", "pause"]))
        );
        assert_eq!(
            behaviour(&agnhost, &[], &v(&["netexec", "--http-port=8081"])),
            Behaviour::Agnhost(v(&["/agnhost", "netexec", "--http-port=8081"]))
        );
        // A command replaces both; /agnhost-2 is the same binary.
        assert_eq!(
            behaviour(&agnhost, &v(&["/agnhost-2"]), &v(&["entrypoint-tester"])),
            Behaviour::Agnhost(v(&["/agnhost-2", "entrypoint-tester"]))
        );
        assert_eq!(
            behaviour(&agnhost, &v(&["/bin/sh", "-c", "sleep 1"]), &[]),
            Behaviour::Shell(v(&["/bin/sh", "-c", "sleep 1"]))
        );
        // `/` is not on the image's PATH.
        assert_eq!(
            behaviour(&agnhost, &v(&["agnhost", "pause"]), &[]),
            Behaviour::Shell(v(&["agnhost", "pause"]))
        );
        let busybox = resolve("busybox").unwrap();
        assert_eq!(
            behaviour(&busybox, &v(&["sh", "-c", "sleep 1"]), &[]),
            Behaviour::Shell(v(&["sh", "-c", "sleep 1"]))
        );
    }

    #[test]
    fn httpd_images_exist_with_their_sizes_and_stop_signals() {
        let e2e = resolve("registry.k8s.io/e2e-test-images/httpd:2.4.38-4").unwrap();
        assert_eq!(e2e.size, 40_765_017);
        assert_eq!(
            resolve("registry.k8s.io/e2e-test-images/httpd:2.4.39-4")
                .unwrap()
                .size,
            41_901_429
        );
        assert!(resolve("registry.k8s.io/e2e-test-images/httpd:2.4.40-4").is_err());
        assert_eq!(
            behaviour(&e2e, &[], &[]),
            Behaviour::Httpd {
                version: "2.4.38".into(),
                graceful_stop: false
            }
        );
        let latest = resolve("httpd:2.4").unwrap();
        assert_eq!(
            behaviour(&latest, &[], &[]),
            Behaviour::Httpd {
                version: "2.4.63".into(),
                graceful_stop: true
            }
        );
        assert!(resolve("httpd:2.4.39-alpine").is_ok());
        assert!(resolve("httpd:3.0").is_err());
    }

    #[test]
    fn the_control_planes_images_idle_and_hold_only_their_binary() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for (reference, binary) in [
            ("registry.k8s.io/kube-apiserver:v1.33.0", "kube-apiserver"),
            ("registry.k8s.io/kube-scheduler:v1.32.4", "kube-scheduler"),
            ("registry.k8s.io/kube-proxy:v1.33.0", "kube-proxy"),
            ("registry.k8s.io/etcd:3.5.21-0", "etcd"),
        ] {
            let image = resolve(reference).unwrap();
            assert_eq!(behaviour(&image, &[], &[]), Behaviour::Pause, "{reference}");
            assert_eq!(
                behaviour(&image, &v(&[binary, "--leader-elect=true"]), &[]),
                Behaviour::Pause,
                "{reference}"
            );
            assert_eq!(
                behaviour(&image, &v(&[&format!("/usr/local/bin/{binary}")]), &[]),
                Behaviour::Pause
            );
            assert_eq!(
                behaviour(&image, &v(&["sleep", "1"]), &[]),
                Behaviour::Shell(v(&["sleep", "1"]))
            );
            assert_eq!(control_plane_binary(&image.repository), Some(binary));
        }
        for missing in [
            "registry.k8s.io/kube-apiserver:latest",
            "registry.k8s.io/kube-apiserver:v1.33",
            "registry.k8s.io/kube-scheduler:1.33.0",
            "registry.k8s.io/etcd:3.5.21",
            "registry.k8s.io/etcd:3.5.21-",
        ] {
            assert!(
                matches!(resolve(missing), Err(ImageError::NotFound(_))),
                "{missing}"
            );
        }
        assert_eq!(
            resolve("registry.k8s.io/kube-apiserver:v1.33.0")
                .unwrap()
                .size,
            30_071_307
        );
    }

    #[test]
    fn durations_render_like_go() {
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(523)), "523ms");
        assert_eq!(go_duration(Duration::from_secs(75)), "1m15s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_nanos(42)), "42ns");
    }
}
