//! User image models: a YAML file describing images of the user's own, so their manifests run
//! on the simulator the way the real images would (ports, HTTP routes and their status over
//! time, start-up delay, log lines, exit after N seconds with a code).
//!
//! The file is validated strictly: unknown keys, wrong types and impossible values are errors
//! that name the file, line and column.
//!
//! ```yaml
//! images:
//! - image: example.com/team/web     # repository; `tags` limits which tags exist
//!   tags: ["1.0", "1.1"]
//!   sizeBytes: 12345678
//!   pullSeconds: 1.5
//!   startupDelaySeconds: 2           # ports open and logs start after this
//!   logs: ["starting", "ready"]
//!   http:
//!   - port: 8080
//!     path: /healthz
//!     body: ok
//!     status:                        # status code over time since the container started
//!     - {afterSeconds: 0, code: 200}
//!     - {afterSeconds: 30, code: 500}
//!   tcpPorts: [9000]
//!   exit: {afterSeconds: 60, code: 1}
//! ```

use std::path::Path;

use serde::Deserialize;

/// The file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageModels {
    /// The models.
    pub images: Vec<ImageModel>,
}

/// One image.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageModel {
    /// Repository, normalised as a runtime does (`app` is `docker.io/library/app`).
    pub image: String,
    /// Tags that exist; any tag when absent.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Size in bytes, as Pulled events report it.
    #[serde(default = "default_size")]
    pub size_bytes: u64,
    /// Pull time in cluster seconds.
    #[serde(default = "default_pull")]
    pub pull_seconds: f64,
    /// Seconds before ports open and logs are written.
    #[serde(default)]
    pub startup_delay_seconds: f64,
    /// Lines written to stdout at start-up.
    #[serde(default)]
    pub logs: Vec<String>,
    /// HTTP routes.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// Plain TCP ports that accept connections.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// Exit after a while with a code; runs until stopped when absent.
    #[serde(default)]
    pub exit: Option<Exit>,
}

fn default_size() -> u64 {
    10_000_000
}

fn default_pull() -> f64 {
    1.0
}

/// An HTTP route.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRoute {
    /// Port.
    pub port: u16,
    /// Path (exact match).
    pub path: String,
    /// Response body.
    #[serde(default)]
    pub body: String,
    /// Status codes over time; 200 throughout when absent.
    #[serde(default)]
    pub status: Vec<StatusStep>,
}

/// From `after_seconds` on, answer `code`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusStep {
    /// Seconds since the container started.
    pub after_seconds: f64,
    /// HTTP status code.
    pub code: u16,
}

/// Exit behaviour.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exit {
    /// Seconds after start.
    pub after_seconds: f64,
    /// Exit code.
    pub code: i32,
}

impl HttpRoute {
    /// The status code `elapsed` seconds after start.
    pub fn status_at(&self, elapsed: f64) -> u16 {
        self.status
            .iter()
            .filter(|s| s.after_seconds <= elapsed)
            .last()
            .map(|s| s.code)
            .unwrap_or(200)
    }
}

/// Why a models file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid models file.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Load and validate a models file.
///
/// # Errors
/// [`ModelsError`] naming the file and line.
pub fn load(path: &Path) -> Result<ImageModels, ModelsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// Parse and validate models text (`origin` names it in errors).
///
/// # Errors
/// [`ModelsError::Invalid`] with the line and column of the problem.
pub fn parse(origin: &str, text: &str) -> Result<ImageModels, ModelsError> {
    let models: ImageModels = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        ModelsError::Invalid {
            path: origin.to_string(),
            line,
            column,
            message,
        }
    })?;
    // Semantic checks, located by the image's line in the text.
    for (i, m) in models.images.iter().enumerate() {
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                l.trim_start().starts_with("- image:") || l.trim_start().starts_with("image:")
            })
            .nth(i)
            .map(|(n, _)| n + 1)
            .unwrap_or(0);
        let invalid = |message: String| ModelsError::Invalid {
            path: origin.to_string(),
            line,
            column: 1,
            message,
        };
        if super::catalog::normalize(&m.image).is_err() {
            return Err(invalid(format!(
                "image {:?} is not a valid image reference",
                m.image
            )));
        }
        if m.pull_seconds < 0.0
            || m.startup_delay_seconds < 0.0
            || !m.pull_seconds.is_finite()
            || !m.startup_delay_seconds.is_finite()
        {
            return Err(invalid(format!(
                "image {}: durations must be zero or more seconds",
                m.image
            )));
        }
        for route in &m.http {
            if route.port == 0 || !route.path.starts_with('/') {
                return Err(invalid(format!("image {}: HTTP routes need a port above 0 and a path starting with '/' (got port {} path {:?})", m.image, route.port, route.path)));
            }
            if route
                .status
                .iter()
                .any(|s| !(100..=599).contains(&s.code) || s.after_seconds < 0.0)
            {
                return Err(invalid(format!(
                    "image {}: status steps need a code in 100..=599 and afterSeconds ≥ 0",
                    m.image
                )));
            }
        }
        if let Some(exit) = &m.exit {
            if exit.after_seconds < 0.0 || !(0..=255).contains(&exit.code) {
                return Err(invalid(format!(
                    "image {}: exit needs afterSeconds ≥ 0 and a code in 0..=255",
                    m.image
                )));
            }
        }
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "images:\n- image: example.com/team/web\n  tags: [\"1.0\"]\n  http:\n  - port: 8080\n    path: /healthz\n    status:\n    - {afterSeconds: 0, code: 200}\n    - {afterSeconds: 30, code: 500}\n  exit: {afterSeconds: 60, code: 1}\n";

    #[test]
    fn a_good_file_parses_and_routes_change_status_over_time() {
        let m = parse("images.yaml", GOOD).unwrap();
        let route = &m.images[0].http[0];
        assert_eq!(route.status_at(5.0), 200);
        assert_eq!(route.status_at(31.0), 500);
    }

    #[test]
    fn unknown_keys_name_the_file_and_line() {
        let bad = GOOD.replace("  tags:", "  tagz:");
        let err = parse("fixtures/images.yaml", &bad).unwrap_err().to_string();
        assert!(err.starts_with("fixtures/images.yaml:3:"), "{err}");
        assert!(err.contains("unknown field `tagz`"), "{err}");
    }

    #[test]
    fn impossible_values_are_refused_with_the_image_line() {
        let bad = GOOD.replace("code: 500", "code: 900");
        let err = parse("images.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "images.yaml:2:1: image example.com/team/web: status steps need a code"
            ),
            "{err}"
        );
    }
}
