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

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

/// The longest duration a model may name (10 years of cluster time): anything longer means
/// "never" and is better left out.
pub const MAX_SECONDS: f64 = 315_360_000.0;

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
    // Semantic checks, located by the image's line in the text (found in one pass: the n-th
    // `image:` entry is the n-th image).
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.starts_with("- image:") || l.starts_with("image:")
        })
        .map(|(n, _)| n + 1)
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(models.images.len());
    for (i, m) in models.images.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let invalid = |message: String| ModelsError::Invalid {
            path: origin.to_string(),
            line,
            column: 1,
            message,
        };
        let Ok((repository, _)) = super::catalog::normalize(&m.image) else {
            return Err(invalid(format!(
                "image {:?} is not a valid image reference",
                m.image
            )));
        };
        if let Some(first) = seen.insert(repository.clone(), line) {
            return Err(invalid(format!(
                "image {} is modelled twice (first on line {first}): keep one model per repository and list its tags",
                m.image
            )));
        }
        let durations = [
            ("pullSeconds", Some(m.pull_seconds)),
            ("startupDelaySeconds", Some(m.startup_delay_seconds)),
            (
                "exit.afterSeconds",
                m.exit.as_ref().map(|e| e.after_seconds),
            ),
        ];
        let steps = m.http.iter().flat_map(|r| {
            r.status
                .iter()
                .map(|s| ("http[].status[].afterSeconds", Some(s.after_seconds)))
        });
        for (field, value) in durations.into_iter().chain(steps) {
            if let Some(v) = value {
                if !(0.0..=MAX_SECONDS).contains(&v) {
                    return Err(invalid(format!(
                        "image {}: {field} is {v}; durations must be between 0 and {MAX_SECONDS} seconds (10 years)",
                        m.image
                    )));
                }
            }
        }
        let mut routes = HashSet::new();
        for route in &m.http {
            if route.port == 0 || !route.path.starts_with('/') {
                return Err(invalid(format!("image {}: HTTP routes need a port above 0 and a path starting with '/' (got port {} path {:?})", m.image, route.port, route.path)));
            }
            if !route
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
            {
                return Err(invalid(format!(
                    "image {}: HTTP route path {:?} is not a URL path (printable ASCII without spaces, '?' or '#'); it is matched exactly",
                    m.image, route.path
                )));
            }
            if !routes.insert((route.port, route.path.as_str())) {
                return Err(invalid(format!(
                    "image {}: HTTP route {} on port {} is listed twice",
                    m.image, route.path, route.port
                )));
            }
            if route.status.iter().any(|s| !(100..=599).contains(&s.code)) {
                return Err(invalid(format!(
                    "image {}: status steps need a code in 100..=599",
                    m.image
                )));
            }
        }
        if let Some(exit) = &m.exit {
            if !(0..=255).contains(&exit.code) {
                return Err(invalid(format!(
                    "image {}: exit needs a code in 0..=255",
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
    fn durations_that_no_clock_can_hold_are_refused() {
        for (field, bad) in [
            ("pullSeconds", "pullSeconds: 1e300"),
            ("startupDelaySeconds", "startupDelaySeconds: 1e300"),
            ("exit.afterSeconds", "exit: {afterSeconds: .inf, code: 1}"),
            ("exit.afterSeconds", "exit: {afterSeconds: .nan, code: 1}"),
        ] {
            let text = GOOD.replace("  exit: {afterSeconds: 60, code: 1}", &format!("  {bad}"));
            let err = parse("images.yaml", &text).unwrap_err().to_string();
            assert!(
                err.starts_with("images.yaml:2:1: image example.com/team/web: "),
                "{err}"
            );
            assert!(
                err.contains(field) && err.contains("between 0 and 315360000"),
                "{err}"
            );
        }
    }

    #[test]
    fn routes_are_exact_paths_listed_once() {
        let twice = GOOD.replace("  exit:", "  - port: 8080\n    path: /healthz\n  exit:");
        let err = parse("images.yaml", &twice).unwrap_err().to_string();
        assert!(
            err.contains("HTTP route /healthz on port 8080 is listed twice"),
            "{err}"
        );
        // Route-pattern syntax is just a path here: `/{` and `/{*rest}` beside `/{a}` load.
        let patterns = GOOD.replace(
            "  exit:",
            "  - {port: 8080, path: \"/{\"}\n  - {port: 8080, path: \"/{*rest}\"}\n  - {port: 8080, path: \"/{a}\"}\n  exit:",
        );
        assert_eq!(
            parse("images.yaml", &patterns).unwrap().images[0]
                .http
                .len(),
            4
        );
        let spaced = GOOD.replace("path: /healthz", "path: \"/a b\"");
        let err = parse("images.yaml", &spaced).unwrap_err().to_string();
        assert!(err.contains("is not a URL path"), "{err}");
    }

    #[test]
    fn an_image_modelled_twice_names_both_lines() {
        let twice = format!("{GOOD}- image: example.com/team/web\n");
        let err = parse("images.yaml", &twice).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "images.yaml:11:1: image example.com/team/web is modelled twice (first on line 2)"
            ),
            "{err}"
        );
    }

    #[test]
    fn many_models_load_in_linear_time() {
        // 200,000 models: the old line search was quadratic (minutes); this is one pass.
        let mut text = String::from("images:\n");
        for i in 0..200_000 {
            text.push_str(&format!(
                "- image: example.com/team/app-{i}\n  pullSeconds: 0.5\n"
            ));
        }
        let models = parse("images.yaml", &text).unwrap();
        assert_eq!(models.images.len(), 200_000);
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
