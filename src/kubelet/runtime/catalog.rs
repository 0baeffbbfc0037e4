//! The image catalog: which image references exist, how big they are, how long they take to pull,
//! and what their containers do — modelled on the real public images the specs use, so the same
//! manifest behaves the same on a real cluster.

use std::time::Duration;

/// What a container of an image does when started (its entrypoint, given command and args).
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// Sleeps until killed; exits 0 on SIGTERM (registry.k8s.io/pause, agnhost pause).
    Pause,
    /// nginx: HTTP on :80, `/` answers 200; exits 0 on SIGTERM.
    Nginx,
    /// agnhost liveness: HTTP on :8080, `/healthz` answers 200 for the first 10 s, then 500.
    AgnhostLiveness,
    /// agnhost netexec: HTTP on `http_port` with `/`, `/echo`, `/hostname`, `/exit`, `/shell`.
    AgnhostNetexec {
        /// The HTTP port (`--http-port`, default 8080).
        http_port: u16,
    },
    /// agnhost serve-hostname: serves the pod name on :9376.
    AgnhostServeHostname,
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
    size: u64,
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

const REPOS: &[Repo] = &[
    Repo {
        repository: "docker.io/library/nginx",
        size: 72_195_292,
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
        size: 2_166_802,
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
        size: 1_144_547,
        pull_millis: 400,
        tag_ok: |t| matches!(t, "latest" | "1.24" | "1.27" | "1.27.2"),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/busybox",
        size: 1_374_155,
        pull_millis: 400,
        tag_ok: |t| numeric_version(t, "1"),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/agnhost",
        size: 51_245_311,
        pull_millis: 1500,
        tag_ok: |t| numeric_version(t, "2"),
    },
    Repo {
        repository: "registry.k8s.io/e2e-test-images/nginx",
        size: 7_035_064,
        pull_millis: 600,
        tag_ok: |t| numeric_version(t, "1"),
    },
    Repo {
        repository: "registry.k8s.io/pause",
        size: 320_368,
        pull_millis: 300,
        tag_ok: |t| numeric_version(t, "3"),
    },
];

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
    Ok(Image {
        reference,
        repository,
        tag,
        size: repo.size,
        pull_time: Duration::from_millis(repo.pull_millis),
    })
}

/// What a container of `image` with this command and args does.
pub fn behaviour(image: &Image, command: &[String], args: &[String]) -> Behaviour {
    let argv: Vec<String> = command.iter().chain(args).cloned().collect();
    let repo = image.repository.rsplit('/').next().unwrap_or_default();
    match repo {
        "pause" => Behaviour::Pause,
        "nginx" if command.is_empty() => Behaviour::Nginx,
        "agnhost" => {
            // The agnhost binary takes its subcommand as the first argument.
            let sub: Vec<&String> = argv
                .iter()
                .filter(|a| a.as_str() != "/agnhost" && a.as_str() != "agnhost")
                .collect();
            match sub.first().map(|s| s.as_str()) {
                Some("liveness") => Behaviour::AgnhostLiveness,
                Some("netexec") => {
                    let port = sub
                        .iter()
                        .find_map(|a| a.strip_prefix("--http-port=").and_then(|p| p.parse().ok()))
                        .unwrap_or(8080);
                    Behaviour::AgnhostNetexec { http_port: port }
                }
                Some("serve-hostname") => Behaviour::AgnhostServeHostname,
                Some("pause") | None => Behaviour::Pause,
                Some(_) => Behaviour::Shell(argv),
            }
        }
        _ if argv.is_empty() => match repo {
            // busybox's default command is `sh`, which exits at once without a terminal.
            "busybox" => Behaviour::Shell(vec!["sh".into(), "-c".into(), "exit 0".into()]),
            _ => Behaviour::Pause,
        },
        _ => Behaviour::Shell(argv),
    }
}

/// Go's `time.Duration` rendering (`1.5s`, `523ms`), as the Pulled event prints durations.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim(nanos as f64 / 1_000.0));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim(nanos as f64 / 1_000_000.0));
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return format!("{}s", trim(secs));
    }
    let m = (secs / 60.0).floor();
    format!("{}m{}s", m as u64, trim(secs - m * 60.0))
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
    fn agnhost_subcommands_pick_behaviours() {
        let agnhost = resolve("registry.k8s.io/e2e-test-images/agnhost:2.53").unwrap();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            behaviour(&agnhost, &[], &v(&["liveness"])),
            Behaviour::AgnhostLiveness
        );
        assert_eq!(
            behaviour(&agnhost, &[], &v(&["netexec", "--http-port=8081"])),
            Behaviour::AgnhostNetexec { http_port: 8081 }
        );
        let busybox = resolve("busybox").unwrap();
        assert_eq!(
            behaviour(&busybox, &v(&["sh", "-c", "sleep 1"]), &[]),
            Behaviour::Shell(v(&["sh", "-c", "sleep 1"]))
        );
    }

    #[test]
    fn durations_render_like_go() {
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(523)), "523ms");
        assert_eq!(go_duration(Duration::from_secs(75)), "1m15s");
    }
}
