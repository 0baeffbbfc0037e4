//! Upstream's string validators (apimachinery's `util/validation`) with their exact messages,
//! and Go's quoting of values in those messages, for the strategies to build field causes from.

use super::Cause;

/// The longest DNS-1123 subdomain, and so the longest ConfigMap or Secret key.
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

/// A string as Go's `%q` prints it in an error message: double quotes; `\"`, `\\` and the
/// control characters escaped; other characters as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => match c as u32 {
                n if n <= 0xffff => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
    fn go_quotes_as_go_does() {
        assert_eq!(go_quote("bad key!"), r#""bad key!""#);
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}"), r#""a\"b\\c\n\t\x01""#);
        assert_eq!(go_quote("naïve"), "\"naïve\"");
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
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
