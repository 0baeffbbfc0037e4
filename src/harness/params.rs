//! The domain words of the step vocabulary, as cucumber parameter types: durations (`30s`,
//! `2m`, `60 seconds`), pod phases, probe kinds, elected components and object selectors
//! (`pod web-*`, `deployment web`, `the pods of deployment web`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use cucumber::Parameter;

use super::timeline::Kind;

/// A duration in cluster time: `30s`, `2m`, `1.5s`, `500ms`, `60 seconds`, `2 minutes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(
    name = "duration",
    regex = r"\d+(?:\.\d+)?\s?(?:ms|s|m|h|seconds?|minutes?|hours?)"
)]
pub struct Within(pub Duration);

impl FromStr for Within {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Within)
    }
}

/// Parse `30s`, `2m`, `1.5s`, `500ms`, `60 seconds`, `2 minutes`, `1 hour`.
///
/// # Errors
/// A message saying which forms are understood.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 2m, 500ms, 60 seconds)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "second" | "seconds" => value,
        "m" | "minute" | "minutes" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        other => {
            return Err(format!(
                "{other:?} is not a unit of time (use ms, s, m, h, seconds, minutes or hours)"
            ))
        }
    };
    if !seconds.is_finite() || seconds > 366.0 * 24.0 * 3600.0 {
        return Err(format!("{s:?} is too long for a scenario"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A list of durations: `0s, 10s, 20s and 40s`.
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(
    name = "durations",
    regex = r"\d+(?:\.\d+)?(?:ms|s|m)(?:, \d+(?:\.\d+)?(?:ms|s|m))*(?: and \d+(?:\.\d+)?(?:ms|s|m))?"
)]
pub struct Durations(pub Vec<Duration>);

impl FromStr for Durations {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.replace(" and ", ", ")
            .split(", ")
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()
            .map(Durations)
    }
}

/// A pod phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "phase", regex = "Pending|Running|Succeeded|Failed|Unknown")]
pub enum Phase {
    /// Pending.
    Pending,
    /// Running.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Unknown.
    Unknown,
}

impl Phase {
    /// As Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "Pending" => Self::Pending,
            "Running" => Self::Running,
            "Succeeded" => Self::Succeeded,
            "Failed" => Self::Failed,
            "Unknown" => Self::Unknown,
            other => return Err(format!("{other:?} is not a pod phase")),
        })
    }
}

/// A probe kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "probe", regex = "liveness|readiness|startup")]
pub enum ProbeKind {
    /// livenessProbe.
    Liveness,
    /// readinessProbe.
    Readiness,
    /// startupProbe.
    Startup,
}

impl ProbeKind {
    /// How the kubelet's Unhealthy events name it (`Liveness`).
    pub fn event_word(self) -> &'static str {
        match self {
            Self::Liveness => "Liveness",
            Self::Readiness => "Readiness",
            Self::Startup => "Startup",
        }
    }
}

impl FromStr for ProbeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "liveness" => Self::Liveness,
            "readiness" => Self::Readiness,
            "startup" => Self::Startup,
            other => return Err(format!("{other:?} is not a probe kind")),
        })
    }
}

/// A control-plane component elected by Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "component", regex = "controller-manager|scheduler")]
pub struct Component(pub crate::target::Elected);

impl FromStr for Component {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use crate::target::Elected;
        Ok(Component(match s {
            "controller-manager" => Elected::ControllerManager,
            "scheduler" => Elected::Scheduler,
            other => return Err(format!("{other:?} is not an elected component")),
        }))
    }
}

/// The namespace whose control-plane pods a step may name as `pod kube-system/NAME`.
pub const SYSTEM_NAMESPACE: &str = "kube-system";

/// Which objects a step is about.
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(
    name = "object",
    regex = r"the pods of (?:deployment|replicaset|job) [\w.*-]+|pod [\w.*-]+/[\w.*-]+|(?:pod|deployment|replicaset|job|node|service|endpoints|lease) [\w.*-]+"
)]
pub enum Selector {
    /// Objects of a kind whose name matches a pattern (`*` matches any run of characters),
    /// in the scenario's namespace, or `kube-system/PATTERN` for control-plane pods.
    Named {
        /// The kind.
        kind: Kind,
        /// The name pattern.
        pattern: String,
    },
    /// The pods a Deployment or ReplicaSet controls (through ReplicaSets, for a Deployment).
    PodsOf {
        /// Deployment or ReplicaSet.
        owner: Kind,
        /// The owner's name.
        name: String,
    },
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("the pods of ") {
            let (kind, name) = rest
                .split_once(' ')
                .ok_or_else(|| format!("{s:?}: expected `the pods of deployment NAME`"))?;
            let owner = Kind::parse(kind).ok_or_else(|| format!("{kind:?} is not a kind"))?;
            return Ok(Self::PodsOf {
                owner,
                name: name.to_string(),
            });
        }
        let (kind, pattern) = s
            .split_once(' ')
            .ok_or_else(|| format!("{s:?}: expected `KIND NAME`, e.g. `pod web-*`"))?;
        let kind = Kind::parse(kind).ok_or_else(|| format!("{kind:?} is not a kind"))?;
        if let Some((namespace, _)) = pattern.split_once('/') {
            if kind != Kind::Pod || namespace != SYSTEM_NAMESPACE {
                return Err(format!(
                    "{s:?}: only pods of {SYSTEM_NAMESPACE} (the control plane's, kube-proxy's) can be named with a namespace; the scenario's own objects are named without one"
                ));
            }
        }
        Ok(Self::Named {
            kind,
            pattern: pattern.to_string(),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named { kind, pattern } => {
                write!(f, "{} {pattern}", kind.as_str().to_ascii_lowercase())
            }
            Self::PodsOf { owner, name } => write!(
                f,
                "the pods of {} {name}",
                owner.as_str().to_ascii_lowercase()
            ),
        }
    }
}

/// Which pods a step is about: `pod web-*` or `the pods of deployment web`.
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(
    name = "pods",
    regex = r"the pods of (?:deployment|replicaset|job) [\w.*-]+|pod [\w.*-]+/[\w.*-]+|pod [\w.*-]+"
)]
pub struct Pods(pub Selector);

impl FromStr for Pods {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(Pods)
    }
}

/// Whether `name` matches `pattern`, in which `*` stands for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.len() >= part.len() && rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("60 seconds").unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(parse_duration("1 minute").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").unwrap_err().contains("unit"));
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("web-*", "web-7d9f-abcde"));
        assert!(!glob_match("web-*", "api-7d9f"));
        assert!(glob_match("web", "web"));
        assert!(!glob_match("web", "web-1"));
        assert!(glob_match("*-abc", "x-abc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(
            "pod web-*".parse::<Selector>().unwrap(),
            Selector::Named {
                kind: Kind::Pod,
                pattern: "web-*".into()
            }
        );
        assert_eq!(
            "the pods of deployment web".parse::<Selector>().unwrap(),
            Selector::PodsOf {
                owner: Kind::Deployment,
                name: "web".into()
            }
        );
        assert!("gizmo x".parse::<Selector>().is_err());
        assert_eq!(
            "pod kube-system/kube-scheduler-*"
                .parse::<Selector>()
                .unwrap(),
            Selector::Named {
                kind: Kind::Pod,
                pattern: "kube-system/kube-scheduler-*".into()
            }
        );
        // Only the control plane's pods are watched beyond the scenario's namespace.
        let err = "pod default/web".parse::<Selector>().unwrap_err();
        assert!(err.contains("only pods of kube-system"), "{err}");
        assert!("deployment kube-system/x".parse::<Selector>().is_err());
    }
}
