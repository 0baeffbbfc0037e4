//! Snapshots: normalized projections of the timeline and of objects, checked against insta
//! snapshot files under `snapshots/`.
//!
//! Normalization renames what changes from run to run: uids, resourceVersions, timestamps, IPs,
//! the scenario's namespace, pull durations, and random name suffixes (ReplicaSets become
//! `web-[rs-1]`, `web-[rs-2]` in revision order; pods `web-[rs-1]-[pod]`). Projections leave out
//! what races (which node a pod lands on, the order in which sibling pods start), so the same
//! snapshot holds on every run.

use std::path::Path;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::describe;
use super::events;
use super::timeline::{Kind, Object, State};

/// Renames run-specific values.
pub struct Normalizer {
    namespace: String,
    names: Vec<(String, String)>,
    /// Names found by pattern (generated pod names), replaced with the names before any value.
    name_patterns: Vec<(Regex, String)>,
    patterns: Vec<(Regex, &'static str)>,
}

impl Normalizer {
    /// A normalizer for a scenario in `namespace`.
    pub fn new(namespace: &str) -> Self {
        let patterns = [
            (
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[uid]",
            ),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[time]",
            ),
            (r"\b(\d{1,3}\.){3}\d{1,3}\b", "[ip]"),
            (
                r"\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b( \(\d+(\.\d+)?(ns|µs|us|ms|s|m|h) including waiting\))?",
                "[duration]",
            ),
            (r"(containerd|docker)://[0-9a-f]{12,}", "[container-id]"),
        ];
        Self {
            namespace: namespace.to_string(),
            names: Vec::new(),
            name_patterns: Vec::new(),
            patterns: patterns
                .into_iter()
                .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, r)))
                .collect(),
        }
    }

    /// Rename `name` to `replacement` wherever it occurs (longest names are replaced first).
    pub fn rename(&mut self, name: &str, replacement: String) {
        if !name.is_empty() && !self.names.iter().any(|(n, _)| n == name) {
            self.names.push((name.to_string(), replacement));
            self.names.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        }
    }

    /// Rename whatever `pattern` matches to `replacement` (which may name capture groups, as
    /// `$1`), after the plain names and before the values (times, durations...): a generated
    /// name such as `web-7d4b9-4592m` is a name, not a duration.
    pub fn rename_matches(&mut self, pattern: Regex, replacement: &str) {
        self.name_patterns.push((pattern, replacement.to_string()));
    }

    /// Normalize a string.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (name, replacement) in &self.names {
            out = out.replace(name, replacement);
        }
        for (re, replacement) in &self.name_patterns {
            out = re.replace_all(&out, replacement.as_str()).into_owned();
        }
        if !self.namespace.is_empty() {
            out = out.replace(&self.namespace, "[namespace]");
        }
        for (re, replacement) in &self.patterns {
            out = re.replace_all(&out, *replacement).into_owned();
        }
        out
    }

    /// Normalize every string in a JSON value.
    pub fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.text(k), self.value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// A Deployment's story: its own events in order, its ReplicaSets in revision order with their
/// events (runs of the same event collapsed into `(xN)`), and its final conditions.
#[derive(Serialize)]
pub struct Lifecycle {
    deployment: String,
    events: Vec<String>,
    replica_sets: Vec<ReplicaSetStory>,
    conditions: Vec<String>,
}

#[derive(Serialize)]
struct ReplicaSetStory {
    name: String,
    revision: String,
    images: Vec<String>,
    replicas: i32,
    events: Vec<String>,
}

/// Project the lifecycle of deployment `name`.
///
/// # Errors
/// When the timeline never saw it.
pub fn lifecycle(s: &State, namespace: &str, name: &str) -> Result<Lifecycle, String> {
    // The latest Deployment of that name (a re-created one replaces the one before).
    let deployment = s
        .entries
        .iter()
        .rev()
        .filter_map(|e| e.object.clone())
        .find(|o| {
            o.kind() == Kind::Deployment
                && o.name() == name
                && o.meta().namespace.as_deref() == Some(namespace)
        })
        .ok_or_else(|| format!("the timeline never saw deployment {name}"))?;
    let uid = deployment.uid().to_string();
    let mut sets: Vec<std::sync::Arc<Object>> = Vec::new();
    for e in &s.entries {
        if let Some(o) = &e.object {
            if o.kind() == Kind::ReplicaSet && describe::controller_uid(o) == Some(uid.as_str()) {
                match sets.iter_mut().find(|x| x.uid() == o.uid()) {
                    Some(x) => *x = o.clone(),
                    None => sets.push(o.clone()),
                }
            }
        }
    }
    let revision = |o: &Object| -> i64 {
        o.meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    };
    sets.sort_by_key(|o| revision(o));
    let mut n = Normalizer::new(namespace);
    for (i, rs) in sets.iter().enumerate() {
        n.rename(rs.name(), format!("{name}-[rs-{}]", i + 1));
    }
    // Pods are renamed by pattern: `<rs>-<5 chars>`.
    let pod_suffix = Regex::new(r"(\[rs-\d+\])-[bcdfghjklmnpqrstvwxz2456789]{5}\b")
        .map_err(|e| e.to_string())?;
    n.rename_matches(pod_suffix, "$1-[pod]");
    let line = |o: &events::Occurrence| -> String {
        n.text(&format!(
            "{} {}: {}",
            o.type_,
            o.reason,
            o.message.trim_end()
        ))
    };
    let dep_events: Vec<String> = events::occurrences(s, &deployment)
        .iter()
        .map(line)
        .collect();
    let mut replica_sets = Vec::new();
    for rs in &sets {
        let Object::ReplicaSet(r) = rs.as_ref() else {
            continue;
        };
        let lines: Vec<String> = events::occurrences(s, rs).iter().map(line).collect();
        replica_sets.push(ReplicaSetStory {
            name: n.text(rs.name()),
            revision: revision(rs).to_string(),
            images: describe::replica_set_images(r),
            replicas: r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            events: collapse(lines),
        });
    }
    let conditions = match deployment.as_ref() {
        Object::Deployment(d) => d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                n.text(&format!(
                    "{} {} {}: {}",
                    c.type_,
                    c.status,
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                ))
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Lifecycle {
        deployment: name.to_string(),
        events: dep_events,
        replica_sets,
        conditions,
    })
}

fn collapse(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for l in lines {
        match out.last_mut() {
            Some((last, n)) if *last == l => *n += 1,
            _ => out.push((l, 1)),
        }
    }
    out.into_iter()
        .map(|(l, n)| if n > 1 { format!("{l} (x{n})") } else { l })
        .collect()
}

/// An object as a snapshot: its JSON without managedFields, resourceVersion and the like,
/// normalized.
pub fn object(o: &Object, namespace: &str) -> Value {
    let mut v = o.to_json();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generateName",
        ] {
            meta.remove(field);
        }
    }
    let mut n = Normalizer::new(namespace);
    let pod_suffix = Regex::new(r"^(.*)-[bcdfghjklmnpqrstvwxz2456789]{5}$").ok();
    if let (Some(re), Kind::Pod) = (&pod_suffix, o.kind()) {
        if let Some(c) = re.captures(o.name()) {
            n.rename(o.name(), format!("{}-[pod]", &c[1]));
        }
    }
    n.value(&v)
}

/// Whether `name` can name a snapshot file: letters, digits, `-` and `_`.
///
/// # Errors
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a snapshot name: use letters, digits, - and _"
        ))
    }
}

/// The body of an insta snapshot file: what follows its `---` header block.
fn body(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(&rest[end + 5..])
}

/// The content of the stored snapshot `name` in `dir`, if there is one.
pub fn stored(dir: &Path, name: &str) -> Option<serde_yaml::Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.snap"))).ok()?;
    serde_yaml::from_str(body(&text)?).ok()
}

/// Whether `value` equals a stored snapshot's content.
pub fn equals<T: Serialize>(stored: &serde_yaml::Value, value: &T) -> bool {
    serde_yaml::to_value(value).is_ok_and(|v| &v == stored)
}

/// Check `value` against the snapshot `name` in `dir` (insta's file format, so `cargo insta
/// review` works on what a failed check leaves).
///
/// # Errors
/// The snapshot differs or does not exist; the message says how to accept the new one.
pub fn check<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    description: &str,
) -> Result<(), String> {
    check_name(name)?;
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| {
            insta::assert_yaml_snapshot!(name.to_string(), value);
        })
    }));
    match result {
        Ok(()) => Ok(()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let file = dir.join(format!("{name}.snap"));
            let have = serde_yaml::to_string(value).unwrap_or_default();
            let before = std::fs::read_to_string(&file).ok();
            let diff = match &before {
                Some(old) => {
                    // Compare in one YAML style: insta writes its own.
                    let old_body = body(old).unwrap_or(old).trim_start();
                    let old_body = serde_yaml::from_str::<serde_yaml::Value>(old_body)
                        .ok()
                        .and_then(|v| serde_yaml::to_string(&v).ok())
                        .unwrap_or_else(|| old_body.to_string());
                    unified(&old_body, &have)
                }
                None => format!("(no snapshot yet) the projection is:\n{have}"),
            };
            Err(format!(
                "the {name} snapshot differs from {} ({}):\n{diff}\naccept the new one with `kubespec test --update-snapshots` or `cargo insta review`",
                file.display(),
                why.lines().next().unwrap_or("mismatch")
            ))
        }
    }
}

fn unified(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    diff.unified_diff()
        .context_radius(2)
        .header("snapshot", "this run")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizer_renames_what_changes_between_runs() {
        let mut n = Normalizer::new("ks-web-abcde");
        n.rename("web-7f9c6b5d4", "web-[rs-1]".into());
        let s = n.text("Successfully assigned ks-web-abcde/web-7f9c6b5d4-x2b9q to node-1 at 2026-01-02T03:04:05Z from 127.12.0.3, uid 0b5f0c0e-1a2b-4c3d-8e9f-0123456789ab; pulled in 432ms (432ms including waiting)");
        assert_eq!(
            s,
            "Successfully assigned [namespace]/web-[rs-1]-x2b9q to node-1 at [time] from [ip], uid [uid]; pulled in [duration]"
        );
    }

    #[test]
    fn a_generated_pod_name_that_looks_like_a_duration_is_still_a_pod() {
        let mut n = Normalizer::new("ns");
        n.rename("web-7f9c6b5d4", "web-[rs-2]".into());
        let pod = Regex::new(r"(\[rs-\d+\])-[bcdfghjklmnpqrstvwxz2456789]{5}\b").unwrap();
        n.rename_matches(pod, "$1-[pod]");
        assert_eq!(
            n.text("Created pod: web-7f9c6b5d4-4592m; pulled in 5m"),
            "Created pod: web-[rs-2]-[pod]; pulled in [duration]"
        );
    }

    #[test]
    fn runs_collapse() {
        assert_eq!(
            collapse(vec!["a".into(), "a".into(), "b".into(), "a".into()]),
            vec!["a (x2)", "b", "a"]
        );
    }
}
