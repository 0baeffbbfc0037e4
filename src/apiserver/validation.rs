//! Upstream's string validators (apimachinery's `util/validation`) with their exact messages,
//! and Go's quoting of values in those messages, for the strategies to build field causes from.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Cause;

/// The longest DNS-1123 subdomain, and so the longest ConfigMap or Secret key.
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

/// A string as Go's `%q` prints it in an error message (one implementation, in `k8s::go`).
pub use crate::k8s::go::quote as go_quote;

/// A string map as Go's `%#v` prints it (keys sorted, as fmt sorts them).
pub fn go_map(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".into();
    };
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

/// A string slice as Go's `%#v` prints it, with its element type (`[]string{"a", "b"}`,
/// `[]core.IPFamily{"IPv4"}`, `[]string(nil)` when absent).
pub fn go_slice(element: &str, items: Option<&[String]>) -> String {
    match items {
        None => format!("[]{element}(nil)"),
        Some(items) => {
            let items: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
            format!("[]{element}{{{}}}", items.join(", "))
        }
    }
}

/// A label selector as Go's `%#v` prints a `v1.LabelSelector` (how upstream shows one in a
/// field error, e.g. an immutable selector).
pub fn go_label_selector(selector: &LabelSelector) -> String {
    let expressions = match &selector.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match &r.values {
                        None => "[]string(nil)".to_string(),
                        Some(v) => {
                            let v: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
                            format!("[]string{{{}}}", v.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator)
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        go_map(selector.match_labels.as_ref())
    )
}

/// apimachinery's `RegexError`: what a value must look like, with examples and the regex.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let examples: String = examples
        .iter()
        .map(|e| format!("'{e}', "))
        .collect::<Vec<_>>()
        .join(" or ");
    if examples.is_empty() {
        format!("{message} (regex used for validation is '{regex}')")
    } else {
        format!("{message} (e.g. {examples}regex used for validation is '{regex}')")
    }
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// The longest RFC 1123 label, qualified name part and label value.
const LABEL_MAX_LENGTH: usize = 63;

/// apimachinery's `MaxLenError`.
fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, of any length.
fn is_label_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// apimachinery's `IsDNS1123Label`.
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > LABEL_MAX_LENGTH {
        errors.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !is_label_shaped(s) {
        errors.push(DNS1123_LABEL_MSG.into());
    }
    errors
}

/// apimachinery's `IsDNS1035Label` (Service names): a label that starts with a letter.
pub fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > LABEL_MAX_LENGTH {
        errors.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !is_label_shaped(s) || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        errors.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errors
}

/// apimachinery's `IsDNS1123Subdomain`: at most 253 characters, dot-separated labels (whose
/// length the regex does not bound).
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !s.split('.').all(is_label_shaped) {
        errors.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_REGEX: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

/// apimachinery's `IsQualifiedName` (label keys, annotation keys): `[prefix/]name`.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = value.split('/').collect();
    let mut errors = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            let regex = regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_REGEX, &examples);
            errors.push(format!(
                "a qualified name {regex} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > LABEL_MAX_LENGTH {
        errors.push(format!("name part {}", max_len_error(LABEL_MAX_LENGTH)));
    }
    if !is_qualified_name_part(name) {
        let regex = regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_REGEX, &examples);
        errors.push(format!("name part {regex}"));
    }
    errors
}

/// apimachinery's `IsValidLabelValue`: empty, or a qualified name part of at most 63
/// characters.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_MAX_LENGTH {
        errors.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// apimachinery's `IsValidPortName`: an IANA service name (at most 15 characters of a-z, 0-9
/// and '-', with a letter, no "--", not starting or ending with '-').
pub fn port_name_errors(port: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if port.len() > 15 {
        errors.push(max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errors
            .push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errors.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errors.push("must not begin or end with a hyphen".into());
    }
    errors
}

/// apimachinery's `IsNegativeErrorMsg`.
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// apimachinery's `IsRelaxedEnvVarName`, which 1.33 applies to every environment variable name
/// and envFrom prefix (the `RelaxedEnvironmentVariableValidation` gate is on by default since
/// 1.32): printable ASCII other than `=`. An empty name is the caller's `Required` error.
pub fn env_var_name_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push("environment variable name must be non-empty".into());
    }
    if name.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errors.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .into(),
        );
    }
    errors
}

/// Resource names that need no prefix (upstream's `standardResources`).
const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// Upstream's `IsHugePageResourceName`.
pub fn is_hugepages_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Upstream's `IsNativeResource`: unprefixed, or in the `kubernetes.io/` namespace.
pub fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream's `IsExtendedResourceName`: prefixed outside `kubernetes.io/`, not a quota name,
/// and a qualified name once `requests.` is put before it.
pub fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && qualified_name_errors(&format!("requests.{name}")).is_empty()
}

/// Upstream's `IsOvercommitAllowed`: a request may be below its limit (native resources other
/// than hugepages).
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages_resource(name)
}

/// Upstream's `IsIntegerResourceName` for a container (extended resources; the object-count
/// names are not container resources).
pub fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource(name)
}

/// What is wrong with `name` as a container's resource name (upstream's
/// `validateContainerResourceName`, which adds its own rule to `validateResourceName`'s).
pub fn container_resource_name_errors(name: &str) -> Vec<String> {
    let mut errors = qualified_name_errors(name);
    let unprefixed = !name.contains('/');
    if errors.is_empty()
        && unprefixed
        && !STANDARD_RESOURCES.contains(&name)
        && !name.starts_with("hugepages-")
        && !name.starts_with("requests.hugepages-")
    {
        errors.push("must be a standard resource type or fully qualified".into());
    }
    if unprefixed {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages_resource(name) {
            errors.push("must be a standard resource for containers".into());
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errors.push("doesn't follow extended resource name standard".into());
    }
    errors
}

/// The most all of an object's annotations may hold, keys and values (`TotalAnnotationSizeLimitB`).
pub const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

/// Causes for a label map at `path` (an object's labels, a Service's selector), as
/// apimachinery's `ValidateLabels` gives them (in key order).
pub fn labels_at(
    path: &str,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in labels.into_iter().flatten() {
        for message in qualified_name_errors(key) {
            causes.push(Cause::invalid(path, &go_quote(key), &message));
        }
        for message in label_value_errors(value) {
            causes.push(Cause::invalid(path, &go_quote(value), &message));
        }
    }
    causes
}

/// Causes for an object's labels and annotations, as apimachinery's `ValidateLabels` and
/// `ValidateAnnotations` give them (in key order).
pub fn labels_and_annotations(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<Cause> {
    let mut causes = labels_at("metadata.labels", labels);
    let mut total = 0usize;
    for (key, value) in annotations.into_iter().flatten() {
        // Case does not matter in annotation keys.
        for message in qualified_name_errors(&key.to_lowercase()) {
            causes.push(Cause::invalid(
                "metadata.annotations",
                &go_quote(key),
                &message,
            ));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATION_BYTES {
        causes.push(Cause::too_long(
            "metadata.annotations",
            MAX_ANNOTATION_BYTES,
        ));
    }
    causes
}

/// apimachinery's `IsConfigMapKey`: what is wrong with `key` as a ConfigMap or Secret key.
pub fn config_map_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if key.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters"
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if key.is_empty() || !key.chars().all(allowed) {
        errors.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    match key {
        "." => errors.push("must not be '.'".into()),
        ".." => errors.push("must not be '..'".into()),
        k if k.starts_with("..") => errors.push("must not start with '..'".into()),
        _ => {}
    }
    errors
}

/// Causes for the invalid keys among `keys` of the map at `path` (`data`, `binaryData`), in key
/// order.
pub fn config_map_keys<'a>(path: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<Cause> {
    let mut keys: Vec<&str> = keys.into_iter().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .flat_map(|key| {
            config_map_key_errors(key).into_iter().map(move |message| {
                Cause::invalid(format!("{path}[{key}]"), &go_quote(key), &message)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_as_go_prints_them() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]
        }))
        .unwrap();
        assert_eq!(
            go_label_selector(&selector),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"a":"1", "b":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"x"}}}}"#
        );
        assert_eq!(
            go_label_selector(&LabelSelector::default()),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }

    #[test]
    fn go_quotes_as_go_does() {
        assert_eq!(go_quote("bad key!"), r#""bad key!""#);
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}"), r#""a\"b\\c\n\t\x01""#);
        assert_eq!(go_quote("naïve"), "\"naïve\"");
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
    }

    #[test]
    fn names_labels_and_keys_as_upstream_words_them() {
        assert!(dns1123_subdomain_errors("a.b-c.d").is_empty());
        // The subdomain regex does not bound a part's length; the whole is at most 253.
        assert!(dns1123_subdomain_errors(&"a".repeat(100)).is_empty());
        assert_eq!(
            dns1123_subdomain_errors(&"a".repeat(254)),
            ["must be no more than 253 characters"]
        );
        assert_eq!(dns1123_subdomain_errors("Web"), [DNS1123_SUBDOMAIN_MSG]);
        assert_eq!(
            dns1123_label_errors(&"a".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert_eq!(dns1123_label_errors("a.b"), [DNS1123_LABEL_MSG]);
        assert!(qualified_name_errors("example.com/my_Name-1").is_empty());
        assert_eq!(
            qualified_name_errors("/x"),
            ["prefix part must be non-empty"]
        );
        assert_eq!(
            qualified_name_errors(&"x".repeat(64)),
            ["name part must be no more than 63 characters"]
        );
        assert_eq!(
            qualified_name_errors("-x"),
            ["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
        );
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert!(label_value_errors("").is_empty());
        assert_eq!(
            label_value_errors(&"v".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert_eq!(label_value_errors("bad value").len(), 1);
    }

    #[test]
    fn port_names_as_upstream_words_them() {
        assert!(port_name_errors("http-alt").is_empty());
        assert_eq!(
            port_name_errors("HTTP"),
            [
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)"
            ]
        );
        assert_eq!(
            port_name_errors("-a--b-"),
            [
                "must not contain consecutive hyphens",
                "must not begin or end with a hyphen"
            ]
        );
        assert_eq!(
            port_name_errors("abcdefghijklmnop"),
            ["must be no more than 15 characters"]
        );
        assert_eq!(
            port_name_errors("8080"),
            ["must contain at least one letter (a-z)"]
        );
    }

    #[test]
    fn env_var_names_as_upstream_words_them() {
        assert!(env_var_name_errors("MY_VAR.name-1").is_empty());
        // 1.33 relaxes names to printable ASCII: a leading digit or a space is fine.
        assert!(env_var_name_errors("1 two").is_empty());
        let relaxed = "a valid environment variable name must consist only of printable ASCII characters other than '='";
        assert_eq!(env_var_name_errors("A=B"), [relaxed]);
        assert_eq!(env_var_name_errors("tab\there"), [relaxed]);
        assert_eq!(env_var_name_errors("naïve"), [relaxed]);
    }

    #[test]
    fn resource_names_as_upstream_words_them() {
        for good in [
            "cpu",
            "memory",
            "ephemeral-storage",
            "hugepages-2Mi",
            "example.com/gpu",
            "kubernetes.io/anything",
        ] {
            assert!(container_resource_name_errors(good).is_empty(), "{good}");
        }
        assert_eq!(
            container_resource_name_errors("cpus"),
            [
                "must be a standard resource type or fully qualified",
                "must be a standard resource for containers"
            ]
        );
        assert_eq!(
            container_resource_name_errors("pods"),
            ["must be a standard resource for containers"]
        );
        assert_eq!(
            container_resource_name_errors("requests.example.com/x"),
            ["doesn't follow extended resource name standard"]
        );
        assert!(is_extended_resource("example.com/gpu"));
        assert!(!is_extended_resource("kubernetes.io/gpu"));
        assert!(!is_overcommit_allowed("hugepages-1Gi"));
        assert!(!is_overcommit_allowed("example.com/gpu"));
        assert!(is_overcommit_allowed("cpu"));
    }

    #[test]
    fn config_map_keys_as_upstream_words_them() {
        assert!(config_map_key_errors("key.name").is_empty());
        assert!(config_map_key_errors("KEY_NAME-1").is_empty());
        let regex = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
        assert_eq!(config_map_key_errors("bad key!"), [regex]);
        assert_eq!(config_map_key_errors(""), [regex]);
        assert_eq!(config_map_key_errors(".."), ["must not be '..'"]);
        assert_eq!(config_map_key_errors("..x"), ["must not start with '..'"]);
        assert_eq!(
            config_map_key_errors(&"k".repeat(254)),
            ["must be no more than 253 characters"]
        );
    }
}
