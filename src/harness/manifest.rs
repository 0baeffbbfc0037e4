//! Manifests in specs: YAML documents from a doc string or a file, checked before they reach the
//! cluster (syntax, and for the kinds the harness knows, every field's name and type), then
//! applied with server-side apply in the scenario's namespace. Every error names the file and
//! line, and the field.

use std::path::Path;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// Where a manifest's text comes from.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The file (a feature file for doc strings).
    pub file: String,
    /// The file line of the text's first line (1-based).
    pub first_line: usize,
}

impl Origin {
    /// Where a step's doc string text starts: the line after its opening quotes (gherkin keeps
    /// the newline after them as the text's first character).
    pub fn doc_string(file: &str, step_line: usize, text: &str) -> Self {
        Self {
            file: file.to_string(),
            first_line: step_line + if text.starts_with('\n') { 1 } else { 2 },
        }
    }

    fn at(&self, line: usize) -> String {
        format!("{}:{}", self.file, self.first_line + line.saturating_sub(1))
    }
}

/// One YAML document of a manifest.
#[derive(Clone, Debug)]
pub struct Document {
    /// The object.
    pub value: Value,
    /// Where it starts (`file:line`).
    pub location: String,
}

impl Document {
    /// `kind/name` (or `kind/generateName*`).
    pub fn describe(&self) -> String {
        let kind = self.value["kind"].as_str().unwrap_or("object");
        let meta = &self.value["metadata"];
        match (meta["name"].as_str(), meta["generateName"].as_str()) {
            (Some(n), _) => format!("{} {n}", kind.to_ascii_lowercase()),
            (None, Some(g)) => format!("{} {g}*", kind.to_ascii_lowercase()),
            _ => kind.to_ascii_lowercase(),
        }
    }
}

/// Read a manifest file (relative paths from the current directory).
///
/// # Errors
/// The file cannot be read, or [`parse`]'s errors.
pub fn read(path: &Path) -> Result<Vec<Document>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the manifest {}: {e} (paths are relative to {})",
            path.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| ".".into())
        )
    })?;
    parse(
        &text,
        &Origin {
            file: path.display().to_string(),
            first_line: 1,
        },
    )
}

/// Split `text` into YAML documents and check each.
///
/// # Errors
/// `file:line: what is wrong` for the first bad document.
pub fn parse(text: &str, origin: &Origin) -> Result<Vec<Document>, String> {
    use serde::Deserialize;

    let mut docs = Vec::new();
    let starts = document_starts(text);
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let start = starts.get(i).copied().unwrap_or(1);
        let value = serde_yaml::Value::deserialize(de).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(start);
            format!(
                "{}: invalid YAML: {}",
                origin.at(line),
                strip_location(&e.to_string())
            )
        })?;
        if value.is_null() {
            continue;
        }
        let json: Value = serde_json::to_value(&value).map_err(|e| {
            format!(
                "{}: the document is not a Kubernetes object: {e}",
                origin.at(start)
            )
        })?;
        let location = origin.at(start);
        check(&json, text, start, origin)?;
        docs.push(Document {
            value: json,
            location,
        });
    }
    if docs.is_empty() {
        return Err(format!("{}: the manifest holds no object", origin.at(1)));
    }
    Ok(docs)
}

/// The 1-based line where each YAML document starts, one entry per document the YAML parser
/// sees: every segment between `---` lines, empty ones too, except an empty first segment
/// before the first `---`.
fn document_starts(text: &str) -> Vec<usize> {
    let mut segments: Vec<(usize, Option<usize>)> = vec![(1, None)];
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.starts_with("---") {
            segments.push((line_no + 1, None));
            continue;
        }
        let content = !line.trim().is_empty() && !line.trim_start().starts_with('#');
        if let Some(last) = segments.last_mut() {
            if content && last.1.is_none() {
                last.1 = Some(line_no);
            }
        }
    }
    if segments.len() > 1 && segments[0].1.is_none() {
        segments.remove(0);
    }
    segments
        .into_iter()
        .map(|(start, first)| first.unwrap_or(start))
        .collect()
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn check(json: &Value, text: &str, start: usize, origin: &Origin) -> Result<(), String> {
    let here = origin.at(start);
    let Some(obj) = json.as_object() else {
        return Err(format!(
            "{here}: a manifest document must be a mapping (an object)"
        ));
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str);
    let kind = obj.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(format!("{here}: the object needs apiVersion and kind"));
    };
    let meta = obj.get("metadata");
    if meta
        .and_then(|m| m.get("name").or(m.get("generateName")))
        .is_none()
    {
        return Err(format!("{here}: {kind} needs metadata.name"));
    }
    if meta.and_then(|m| m.get("namespace")).is_some() {
        return Err(format!(
            "{}: metadata.namespace must not be set: each scenario runs in a namespace of its own",
            origin.at(line_of(text, start, &["metadata", "namespace"]))
        ));
    }
    macro_rules! typed {
        ($($gv:literal, $kind:literal => $ty:ty;)*) => {
            match (api_version, kind) {
                $(($gv, $kind) => strict::<$ty>(json),)*
                _ => Ok(()),
            }
        };
    }
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};
    let result = typed! {
        "apps/v1", "Deployment" => apps::Deployment;
        "apps/v1", "ReplicaSet" => apps::ReplicaSet;
        "v1", "Pod" => core::Pod;
        "v1", "Service" => core::Service;
        "v1", "ConfigMap" => core::ConfigMap;
        "v1", "Secret" => core::Secret;
        "v1", "ServiceAccount" => core::ServiceAccount;
    };
    result.map_err(|(path, what)| {
        let segments: Vec<&str> = path
            .split('.')
            .filter(|s| !s.is_empty() && !s.starts_with('['))
            .map(|s| s.split('[').next().unwrap_or(s))
            .collect();
        format!(
            "{}: {kind} {}: {what}",
            origin.at(line_of(text, start, &segments)),
            if path.is_empty() {
                "object".to_string()
            } else {
                format!("field {path}")
            }
        )
    })
}

/// Decode into `T`, rejecting unknown fields: `Err((field path, what is wrong))`.
fn strict<T: serde::de::DeserializeOwned>(json: &Value) -> Result<(), (String, String)> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(path.to_string());
    let result: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(json, &mut note));
    if let Err(e) = result {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        return Err((path, e.into_inner().to_string()));
    }
    if let Some(field) = unknown.into_iter().next() {
        return Err((
            tidy_path(&field),
            "unknown field (check its spelling and indentation)".into(),
        ));
    }
    Ok(())
}

/// serde_ignored's `spec.?.containers.?.0.name` as `spec.containers[0].name`.
fn tidy_path(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('.').filter(|s| *s != "?") {
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// The line (1-based, in `text`) of the key at `path` within the document starting at `start`,
/// found by reading keys in order; `start` when not found.
fn line_of(text: &str, start: usize, path: &[&str]) -> usize {
    let mut line = start;
    let mut found_any = false;
    for key in path {
        let needle_plain = format!("{key}:");
        let next = text
            .lines()
            .enumerate()
            .skip(line.saturating_sub(1) + usize::from(found_any))
            .find(|(_, l)| {
                let t = l.trim_start().trim_start_matches("- ");
                t.starts_with(&needle_plain) || t.starts_with(&format!("\"{key}\":"))
            });
        match next {
            Some((i, _)) => {
                line = i + 1;
                found_any = true;
            }
            None => break,
        }
    }
    line
}

/// What an apply wrote.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The object's kind.
    pub kind: String,
    /// Its name (as the cluster named it).
    pub name: String,
    /// Its resourceVersion after the write.
    pub resource_version: Option<String>,
}

/// Apply `doc` in `namespace` with server-side apply (field manager `kubespec`); objects that
/// ask for a generated name are created instead.
///
/// # Errors
/// `file:line: ...` with the cluster's answer.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    doc: &Document,
) -> Result<Applied, String> {
    let value = &doc.value;
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    let kind = value["kind"].as_str().unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| {
            format!(
                "{}: the cluster does not serve {api_version} {kind}: {e}",
                doc.location
            )
        })?;
    let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    let mut object: DynamicObject =
        serde_json::from_value(value.clone()).map_err(|e| format!("{}: {e}", doc.location))?;
    if caps.scope == kube::discovery::Scope::Namespaced {
        object.metadata.namespace = Some(namespace.to_string());
    }
    let refused = |e: kube::Error| match e {
        kube::Error::Api(s) => format!(
            "{}: the cluster refused {}: {}",
            doc.location,
            doc.describe(),
            s.message
        ),
        other => format!("{}: cannot apply {}: {other}", doc.location, doc.describe()),
    };
    let stored = match object.metadata.name.clone() {
        Some(name) => api
            .patch(
                &name,
                &PatchParams::apply("kubespec").force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(refused)?,
        None => api
            .create(&PostParams::default(), &object)
            .await
            .map_err(refused)?,
    };
    Ok(Applied {
        kind: kind.to_string(),
        name: stored.metadata.name.unwrap_or_default(),
        resource_version: stored.metadata.resource_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: "features/x.feature".into(),
            first_line: 10,
        }
    }

    #[test]
    fn documents_are_split_and_located() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";
        let docs = parse(text, &origin()).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].location, "features/x.feature:10");
        assert_eq!(docs[1].location, "features/x.feature:15");
    }

    #[test]
    fn unknown_fields_and_bad_types_name_line_and_field() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        imagePullPolcy: Always\n";
        let err = parse(text, &origin()).unwrap_err();
        assert!(err.starts_with("features/x.feature:25:"), "{err}");
        assert!(
            err.contains("field spec.template.spec.containers[0].imagePullPolcy"),
            "{err}"
        );
        assert!(err.contains("unknown field"), "{err}");

        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: lots\n  selector: {}\n  template: {}\n";
        let err = parse(text, &origin()).unwrap_err();
        assert!(err.contains("spec.replicas"), "{err}");
        assert!(err.starts_with("features/x.feature:15:"), "{err}");
    }

    #[test]
    fn empty_documents_do_not_shift_the_lines() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: x\n";
        let err = parse(text, &origin()).unwrap_err();
        assert!(err.starts_with("features/x.feature:21:"), "{err}");
    }

    #[test]
    fn syntax_errors_and_missing_parts_are_reported() {
        let err = parse("kind: [\n", &origin()).unwrap_err();
        assert!(err.contains("invalid YAML"), "{err}");
        let err = parse("kind: ConfigMap\nmetadata: {name: a}\n", &origin()).unwrap_err();
        assert!(err.contains("apiVersion and kind"), "{err}");
        let err = parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: prod\n",
            &origin(),
        )
        .unwrap_err();
        assert!(err.starts_with("features/x.feature:14:"), "{err}");
        assert!(parse("", &origin()).unwrap_err().contains("no object"));
    }
}
