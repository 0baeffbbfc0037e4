//! The image the containers target runs: one static kubespec binary in an image `FROM scratch`.
//!
//! Nothing can be pulled on the machines this runs on, so the image is built locally from our
//! own sources: [`StaticBuild`] compiles a statically linked kubespec (`-C
//! target-feature=+crt-static`) into a target directory of its own, and [`ensure_image`] puts
//! it in an image tagged `kubespec:<the first 12 hex digits of the binary's sha256>`, built only
//! when no image has that tag yet. [`build`] does both, after checking that a Docker Engine
//! answers at all, so a missing daemon is reported in a second rather than after a compile.
//!
//! The image holds only `/kubespec` (its entrypoint) and is labelled `kubespec=1`; it has no
//! shell, no `/tmp` and no CA certificates. This module builds and finds images; it starts no
//! containers and must not know about clusters or scenarios.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::Docker;
use testcontainers::core::CopyToContainerCollection;
use testcontainers::core::{BuildImageOptions, BuildableImage, CopyToContainer};
use testcontainers::runners::AsyncBuilder;
use testcontainers::{CopyTargetOptions, GenericImage, TestcontainersError};
use tokio::io::AsyncBufReadExt;

/// The repository of every kubespec image.
pub const IMAGE_NAME: &str = "kubespec";
/// The label every kubespec image carries, as `key=value`.
pub const IMAGE_LABEL: (&str, &str) = ("kubespec", "1");
/// The binary's path inside the image (its entrypoint).
pub const BINARY_PATH: &str = "/kubespec";

/// How long a Docker Engine may take to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long building the image (sending the binary, committing one layer) may take.
const DOCKER_BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// How many of cargo's last lines of output an error quotes.
const CARGO_TAIL_LINES: usize = 40;

/// Errors building the static binary or its image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Docker Engine answered.
    #[error(
        "no Docker Engine is reachable at {host}: {source}. Start the Docker daemon \
         (`sudo systemctl start docker`, or run `dockerd`), or set DOCKER_HOST to one that runs \
         (e.g. DOCKER_HOST=unix:///var/run/docker.sock or tcp://127.0.0.1:2375)"
    )]
    NoDocker {
        /// Where the client looked (DOCKER_HOST, or the default socket).
        host: String,
        /// Why it did not answer.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Docker API call failed.
    #[error("cannot {what}: {source}")]
    Docker {
        /// What was being done.
        what: String,
        /// bollard's error.
        #[source]
        source: BollardError,
    },
    /// testcontainers could not build the image.
    #[error("cannot build image {reference}: {source}")]
    BuildImage {
        /// `kubespec:<tag>`.
        reference: String,
        /// testcontainers' error.
        #[source]
        source: TestcontainersError,
    },
    /// Building the image took too long.
    #[error("building image {reference} did not finish within {timeout:?}; is the Docker Engine overloaded?")]
    BuildImageTimeout {
        /// `kubespec:<tag>`.
        reference: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The sources to build from are not there.
    #[error(
        "cannot build a static kubespec binary: no Cargo.toml in {dir} (the sources this kubespec \
         was compiled from); point StaticBuild::manifest_dir at a kubespec checkout"
    )]
    NoSources {
        /// The directory looked in.
        dir: PathBuf,
    },
    /// cargo could not be started.
    #[error(
        "cannot run `{cargo}`: {source}; is a Rust toolchain installed and on PATH (or CARGO set)?"
    )]
    CargoSpawn {
        /// The cargo command.
        cargo: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// cargo ran and failed.
    #[error("`{command}` failed ({status}){hint}; its last output:\n{tail}")]
    CargoFailed {
        /// The command line.
        command: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What to do about a failure we recognise (may be empty).
        hint: String,
        /// cargo's last lines of output.
        tail: String,
    },
    /// cargo did not finish in time.
    #[error("`{command}` did not finish within {timeout:?}; its last output:\n{tail}")]
    CargoTimeout {
        /// The command line.
        command: String,
        /// The deadline.
        timeout: Duration,
        /// cargo's last lines of output.
        tail: String,
    },
    /// `cargo metadata` answered something we cannot read.
    #[error("cannot find cargo's target directory for {dir}: {detail}")]
    Metadata {
        /// The package directory.
        dir: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The binary cannot run in an image without a dynamic loader.
    #[error(
        "{path} cannot run in an image FROM scratch: {reason}; build it with \
         RUSTFLAGS=\"-C target-feature=+crt-static\" and --target (StaticBuild does both)"
    )]
    NotStatic {
        /// The binary.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cargo profile of the static build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// `dev`: compiles in a fraction of release's time; what tests use.
    #[default]
    Dev,
    /// `release`.
    Release,
}

impl Profile {
    /// The profile's name for `cargo --profile`.
    pub fn cargo_name(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Release => "release",
        }
    }

    /// The directory cargo writes the profile's artifacts to.
    fn dir(self) -> &'static str {
        match self {
            Self::Dev => "debug",
            Self::Release => "release",
        }
    }
}

/// How to build the static kubespec binary.
///
/// The build goes to `<target dir>/static`, a target directory of its own: its `RUSTFLAGS`
/// differ from the normal build's, and sharing a directory would make each build undo the
/// other's. It also keeps the build clear of the lock `cargo test` holds on the normal target
/// directory while tests run (a nested cargo there would wait for ever).
#[derive(Clone, Debug)]
pub struct StaticBuild {
    /// The kubespec package: the directory of its Cargo.toml. By default the directory this
    /// library was compiled from.
    pub manifest_dir: PathBuf,
    /// Cargo's target directory. `None`: ask `cargo metadata` in `manifest_dir`, which honours
    /// CARGO_TARGET_DIR and `.cargo/config.toml` just as the user's own builds do.
    pub target_dir: Option<PathBuf>,
    /// The cargo profile.
    pub profile: Profile,
    /// How long cargo may take (a first build compiles every dependency again).
    pub timeout: Duration,
}

impl Default for StaticBuild {
    /// The sources this library was compiled from, in this build's own profile (a release
    /// kubespec puts a release build in its containers; tests a dev one).
    fn default() -> Self {
        Self {
            manifest_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            target_dir: None,
            profile: if cfg!(debug_assertions) {
                Profile::Dev
            } else {
                Profile::Release
            },
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The target triple the static binary is built for: this machine's architecture, Linux, glibc.
pub fn static_target_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

impl StaticBuild {
    /// Build the binary (a no-op for cargo when nothing changed) and return its path.
    ///
    /// Debug info is left out (`CARGO_PROFILE_<PROFILE>_DEBUG=0`): it would multiply the
    /// binary's size, and with it the image's and the time to send it to Docker; backtraces
    /// still name functions.
    ///
    /// # Errors
    /// The sources are missing, cargo cannot be run, fails, or takes longer than
    /// [`StaticBuild::timeout`]; the error quotes cargo's last lines.
    pub async fn run(&self) -> Result<PathBuf> {
        let manifest = self.manifest_dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(Error::NoSources {
                dir: self.manifest_dir.clone(),
            });
        }
        let target_dir = match &self.target_dir {
            Some(dir) => dir.clone(),
            None => target_directory(&self.manifest_dir).await?,
        };
        let static_dir = target_dir.join("static");
        let triple = static_target_triple();

        let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
        if !rustflags.is_empty() {
            rustflags.push(' ');
        }
        rustflags.push_str("-C target-feature=+crt-static");
        let debug_var = format!(
            "CARGO_PROFILE_{}_DEBUG",
            self.profile.cargo_name().to_uppercase()
        );

        let mut cmd = tokio::process::Command::new(cargo());
        cmd.current_dir(&self.manifest_dir)
            .arg("build")
            .args(["--bin", "kubespec", "--target", &triple])
            .args(["--profile", self.profile.cargo_name()])
            .arg("--target-dir")
            .arg(&static_dir)
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--color", "never"])
            // CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("RUSTFLAGS", &rustflags)
            .env(&debug_var, "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in inherited_cargo_vars() {
            cmd.env_remove(key);
        }
        let command = format!(
            "RUSTFLAGS=\"{rustflags}\" {debug_var}=0 {} build --bin kubespec --target {triple} \
             --profile {} --target-dir {}",
            cargo().to_string_lossy(),
            self.profile.cargo_name(),
            static_dir.display()
        );
        tracing::info!(%command, "building the static kubespec binary (the first build takes minutes)");
        let started = Instant::now();
        let (status, tail) = run_keeping_tail(cmd, &command, self.timeout).await?;
        if !status.success() {
            return Err(Error::CargoFailed {
                command,
                status,
                hint: cargo_hint(&tail, &triple),
                tail,
            });
        }
        let binary = static_dir
            .join(&triple)
            .join(self.profile.dir())
            .join("kubespec");
        tracing::info!(binary = %binary.display(), elapsed = ?started.elapsed(), "static kubespec binary ready");
        Ok(binary)
    }
}

/// The `cargo` to run: the one running us, if any, else the one on PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The variables cargo sets for the crate or test it runs (`cargo test`, `cargo run`), which a
/// nested cargo must not inherit: build scripts watch some of them (ring reruns when
/// CARGO_MANIFEST_DIR changes), so inheriting them would rebuild everything on every switch
/// between `cargo test` and a shell.
fn inherited_cargo_vars() -> Vec<OsString> {
    const SET_FOR_CRATES: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            let k = key.to_string_lossy();
            SET_FOR_CRATES.contains(&k.as_ref())
                || k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_EXE_")
        })
        .collect()
}

/// Cargo's target directory for the package in `dir`, as cargo itself resolves it.
async fn target_directory(dir: &Path) -> Result<PathBuf> {
    let mut cmd = tokio::process::Command::new(cargo());
    cmd.current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let metadata_error = |detail: String| Error::Metadata {
        dir: dir.to_path_buf(),
        detail,
    };
    let output = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .map_err(|_| metadata_error("`cargo metadata` did not answer within 120s".into()))?
        .map_err(|source| Error::CargoSpawn {
            cargo: cargo().to_string_lossy().into_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(metadata_error(format!(
            "`cargo metadata` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| metadata_error(format!("`cargo metadata` printed no JSON: {e}")))?;
    json.get("target_directory")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| metadata_error("`cargo metadata` names no target_directory".into()))
}

/// Run `cmd` (stderr piped) to its end within `timeout`, logging its stderr and keeping the
/// last lines of it.
async fn run_keeping_tail(
    mut cmd: tokio::process::Command,
    command: &str,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String)> {
    let mut child = cmd.spawn().map_err(|source| Error::CargoSpawn {
        cargo: cargo().to_string_lossy().into_owned(),
        source,
    })?;
    let mut tail = VecDeque::with_capacity(CARGO_TAIL_LINES);
    let mut lines = child
        .stderr
        .take()
        .map(|e| tokio::io::BufReader::new(e).lines());
    let deadline = tokio::time::Instant::now() + timeout;
    let run = async {
        if let Some(lines) = lines.as_mut() {
            // A read error ends the log, not the build: the exit status still tells.
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "kubespec::cargo", "{line}");
                if tail.len() == CARGO_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        child.wait().await
    };
    let waited = tokio::time::timeout_at(deadline, run).await;
    let tail_text = |tail: &VecDeque<String>| tail.iter().cloned().collect::<Vec<_>>().join("\n");
    match waited {
        Ok(Ok(status)) => Ok((status, tail_text(&tail))),
        Ok(Err(source)) => Err(Error::CargoSpawn {
            cargo: cargo().to_string_lossy().into_owned(),
            source,
        }),
        Err(_) => {
            // kill_on_drop ends cargo when `child` goes; say so before it does.
            tracing::warn!(%command, ?timeout, "cargo timed out; killing it");
            Err(Error::CargoTimeout {
                command: command.to_string(),
                timeout,
                tail: tail_text(&tail),
            })
        }
    }
}

/// What to do about a cargo failure we recognise.
fn cargo_hint(tail: &str, triple: &str) -> String {
    if tail.contains("can't find crate for `std`") || tail.contains("target may not be installed") {
        format!(" (the {triple} standard library is missing: `rustup target add {triple}`)")
    } else if tail.contains("cannot find -lc") || tail.contains("cannot find -lm") {
        " (glibc's static libraries are missing: install libc6-dev / glibc-static)".to_string()
    } else {
        String::new()
    }
}

/// Why an ELF file needs a dynamic loader (it is not a static, 64-bit little-endian
/// executable), or `None` when it needs none.
///
/// Reads the program headers: a `PT_INTERP` entry names the loader the kernel must start, and a
/// scratch image has none.
pub fn needs_loader(elf: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Some("it is not an ELF executable".into());
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Some("it is not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let truncated = || Some("its ELF header is truncated".to_string());
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return truncated();
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return truncated();
    };
    for i in 0..usize::from(phnum) {
        let Some(at) = i
            .checked_mul(usize::from(phentsize))
            .and_then(|off| off.checked_add(phoff))
        else {
            return truncated();
        };
        let Some(kind) = elf
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
        else {
            return truncated();
        };
        if kind == PT_INTERP {
            return Some("it is dynamically linked (it names an ELF interpreter)".into());
        }
    }
    None
}

/// The tag of the image holding `binary`: the first 12 hex digits of its sha256.
pub fn content_tag(binary: &[u8]) -> String {
    let mut hex = sha256_hex(binary);
    hex.truncate(12);
    hex
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A kubespec image present in the Docker Engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Its tag ([`content_tag`] of the binary).
    pub tag: String,
    /// Docker's image ID (`sha256:...`).
    pub id: String,
    /// The binary it was made from.
    pub binary: PathBuf,
    /// Whether this call built it (`false`: an image with this tag was there already).
    pub built: bool,
}

impl Image {
    /// `kubespec:<tag>`.
    pub fn reference(&self) -> String {
        format!("{IMAGE_NAME}:{}", self.tag)
    }

    /// The image for testcontainers to run; its arguments go to `kubespec`.
    pub fn generic(&self) -> GenericImage {
        GenericImage::new(IMAGE_NAME, &self.tag)
    }
}

/// The Docker client testcontainers uses (DOCKER_HOST, `~/.testcontainers.properties`, or the
/// default socket), once its Engine has answered a ping.
///
/// # Errors
/// [`Error::NoDocker`], saying where it looked and how to fix it.
pub async fn docker() -> Result<Docker> {
    let host = std::env::var("DOCKER_HOST")
        .map(|h| format!("DOCKER_HOST={h}"))
        .unwrap_or_else(|_| "the default socket (DOCKER_HOST is not set)".into());
    let no_docker = |source: Box<dyn std::error::Error + Send + Sync>| Error::NoDocker {
        host: host.clone(),
        source,
    };
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| no_docker(Box::new(e)))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(no_docker(Box::new(e))),
        Err(_) => Err(no_docker(
            format!("it did not answer a ping within {PING_TIMEOUT:?}").into(),
        )),
    }
}

/// Build the static binary of `build` and make sure an image holds it: [`docker`], then
/// [`StaticBuild::run`], then [`ensure_image`].
///
/// # Errors
/// See those three.
pub async fn build(build: &StaticBuild) -> Result<Image> {
    docker().await?;
    let binary = build.run().await?;
    ensure_image(&binary).await
}

/// Make sure an image `kubespec:<content tag>` holds `binary`, building it only when no image
/// has that tag.
///
/// # Errors
/// No Docker Engine answers, the binary cannot be read or is not static, or the build fails.
///
/// # Caveats
/// Two processes that find the image missing at once both build it; the later one's tag wins,
/// with the same content.
pub async fn ensure_image(binary: &Path) -> Result<Image> {
    let docker = docker().await?;
    let bytes = tokio::fs::read(binary)
        .await
        .map_err(|source| Error::Read {
            path: binary.to_path_buf(),
            source,
        })?;
    if let Some(reason) = needs_loader(&bytes) {
        return Err(Error::NotStatic {
            path: binary.to_path_buf(),
            reason,
        });
    }
    let sha256 = sha256_hex(&bytes);
    let tag = content_tag(&bytes);
    let reference = format!("{IMAGE_NAME}:{tag}");
    let image = |id: String, built: bool| Image {
        tag: tag.clone(),
        id,
        binary: binary.to_path_buf(),
        built,
    };
    if let Some(id) = image_id(&docker, &reference).await? {
        tracing::debug!(%reference, %id, "image exists; not building");
        return Ok(image(id, false));
    }

    tracing::info!(%reference, bytes = bytes.len(), "building image");
    let started = Instant::now();
    let buildable = ScratchImage {
        tag: tag.clone(),
        sha256,
        binary: bytes,
    };
    // skip_if_exists serialises builds of one tag within this process.
    let options = BuildImageOptions::new().with_skip_if_exists(true);
    match tokio::time::timeout(DOCKER_BUILD_TIMEOUT, buildable.build_image_with(options)).await {
        Ok(Ok(_)) => {}
        Ok(Err(source)) => return Err(Error::BuildImage { reference, source }),
        Err(_) => {
            return Err(Error::BuildImageTimeout {
                reference,
                timeout: DOCKER_BUILD_TIMEOUT,
            })
        }
    }
    let Some(id) = image_id(&docker, &reference).await? else {
        return Err(Error::Docker {
            what: format!("find image {reference} after building it"),
            source: BollardError::DockerResponseServerError {
                status_code: 404,
                message: format!("no such image: {reference}"),
            },
        });
    };
    tracing::info!(%reference, %id, elapsed = ?started.elapsed(), "image built");
    Ok(image(id, true))
}

/// The ID of the image `reference`, or `None` when there is none.
async fn image_id(docker: &Docker, reference: &str) -> Result<Option<String>> {
    match docker.inspect_image(reference).await {
        Ok(inspect) => Ok(Some(inspect.id.unwrap_or_default())),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(Error::Docker {
            what: format!("inspect image {reference}"),
            source,
        }),
    }
}

/// The Dockerfile of every kubespec image.
fn dockerfile(sha256: &str) -> String {
    let (key, value) = IMAGE_LABEL;
    format!(
        "FROM scratch\n\
         LABEL {key}={value} kubespec.binary-sha256={sha256}\n\
         COPY kubespec {BINARY_PATH}\n\
         ENTRYPOINT [\"{BINARY_PATH}\"]\n"
    )
}

/// The build context: the Dockerfile and the very bytes that were hashed for the tag, made
/// executable. (`GenericBuildableImage` would either read the file again or, for bytes, make
/// them mode 0644, which the kernel will not execute.)
struct ScratchImage {
    tag: String,
    sha256: String,
    binary: Vec<u8>,
}

impl BuildableImage for ScratchImage {
    type Built = GenericImage;

    fn build_context(&self) -> CopyToContainerCollection {
        CopyToContainerCollection::new(vec![
            CopyToContainer::new(dockerfile(&self.sha256).into_bytes(), "Dockerfile"),
            CopyToContainer::new(
                self.binary.clone(),
                CopyTargetOptions::new("kubespec").with_mode(0o755),
            ),
        ])
    }

    fn descriptor(&self) -> String {
        format!("{IMAGE_NAME}:{}", self.tag)
    }

    fn into_image(self) -> GenericImage {
        GenericImage::new(IMAGE_NAME, &self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest ELF64 header with `phnum` program headers of the given types.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        out[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        out[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            out.extend(ph);
        }
        out
    }

    #[test]
    fn a_binary_naming_an_interpreter_needs_a_loader() {
        // PT_PHDR, PT_INTERP, PT_LOAD: a dynamically linked executable.
        let reason = needs_loader(&elf(&[6, 3, 1])).expect("dynamic");
        assert!(reason.contains("dynamically linked"), "{reason}");
        // PT_PHDR, PT_LOAD, PT_DYNAMIC: static-pie has a dynamic section but no interpreter.
        assert_eq!(needs_loader(&elf(&[6, 1, 2])), None);
    }

    #[test]
    fn what_is_not_a_whole_elf_file_is_refused_without_panicking() {
        assert!(needs_loader(b"#!/bin/sh\n").is_some());
        let mut cut = elf(&[1, 1]);
        cut.truncate(64 + 56 + 2); // the second header's type is cut short
        assert_eq!(
            needs_loader(&cut).as_deref(),
            Some("its ELF header is truncated")
        );
        let mut huge = elf(&[]);
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        huge[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        assert!(needs_loader(&huge).is_some());
    }

    #[test]
    fn the_tag_is_the_start_of_the_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(content_tag(b"abc"), "ba7816bf8f01");
    }
}
