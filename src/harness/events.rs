//! Event checks: an expected row (type, reason, message pattern) matched against the
//! occurrences of Events about an object, in order, counted, or never.
//!
//! Upstream delivers Events best effort and aggregates repeats into one Event object whose
//! `count` (or `series.count`) grows; a check therefore counts occurrences, not Event objects.
//! An occurrence's position is where the timeline saw it: the Event's creation for the first,
//! the update that raised its count for the later ones.

use std::fmt;

use k8s_openapi::api::core::v1::Event;
use regex::Regex;

use super::describe::{event_is_about, event_line};
use super::timeline::{Object, State};

/// A message pattern: `*` matches any run of characters; `/.../` is a regular expression.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    regex: Regex,
}

impl Pattern {
    /// Compile `text`.
    ///
    /// # Errors
    /// A `/regex/` that does not compile.
    pub fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let regex = if text.len() >= 2 && text.starts_with('/') && text.ends_with('/') {
            Regex::new(&text[1..text.len() - 1]).map_err(|e| {
                format!("the message pattern {text} is not a regular expression: {e}")
            })?
        } else {
            let escaped: Vec<String> = text.split('*').map(regex::escape).collect();
            Regex::new(&format!("^{}$", escaped.join(".*")))
                .map_err(|e| format!("the message pattern {text:?}: {e}"))?
        };
        Ok(Self {
            text: text.to_string(),
            regex,
        })
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        self.regex.is_match(message.trim_end())
    }
}

/// One row of an expected-events table.
#[derive(Clone, Debug)]
pub struct Expected {
    /// `Normal` or `Warning` (any if empty).
    pub type_: String,
    /// The reason, exactly.
    pub reason: String,
    /// The message pattern (any if empty).
    pub message: Option<Pattern>,
    /// For counting checks: how many occurrences.
    pub times: Option<i32>,
}

impl Expected {
    /// Whether an occurrence matches this row.
    pub fn matches(&self, o: &Occurrence) -> bool {
        (self.type_.is_empty() || self.type_ == o.type_)
            && self.reason == o.reason
            && self.message.as_ref().is_none_or(|p| p.matches(&o.message))
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.type_.is_empty() {
            write!(f, "{} ", self.type_)?;
        }
        write!(f, "{}", self.reason)?;
        if let Some(p) = &self.message {
            write!(f, " {:?}", p.text)?;
        }
        Ok(())
    }
}

/// Read an expected-events table: a header row naming the columns (`type`, `reason`,
/// `message`, and for counting checks `times`), then one row per event.
///
/// # Errors
/// A missing `reason` column, an unknown column, a bad count or pattern.
pub fn parse_table(rows: &[Vec<String>], with_times: bool) -> Result<Vec<Expected>, String> {
    let Some((header, body)) = rows.split_first() else {
        return Err("the step needs a table: | type | reason | message |".into());
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (ty, reason, message, times) = (col("type"), col("reason"), col("message"), col("times"));
    for h in &header {
        if !["type", "reason", "message", "times"].contains(&h.as_str()) {
            return Err(format!(
                "unknown column {h:?} in the events table (columns: type, reason, message{})",
                if with_times { ", times" } else { "" }
            ));
        }
    }
    let reason = reason.ok_or("the events table needs a `reason` column")?;
    if with_times && times.is_none() {
        return Err("this events table needs a `times` column".into());
    }
    if !with_times && times.is_some() {
        return Err("a `times` column only belongs to `has events exactly:`".into());
    }
    body.iter()
        .map(|row| {
            let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).map(|s| s.trim().to_string());
            let times = match cell(times) {
                Some(t) => Some(
                    t.parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| format!("{t:?} is not a number of times"))?,
                ),
                None => None,
            };
            Ok(Expected {
                type_: cell(ty).unwrap_or_default(),
                reason: cell(Some(reason)).unwrap_or_default(),
                message: cell(message)
                    .filter(|m| !m.is_empty())
                    .map(|m| Pattern::new(&m))
                    .transpose()?,
                times,
            })
        })
        .collect()
}

/// One occurrence of an event.
#[derive(Clone, Debug)]
pub struct Occurrence {
    /// Where the timeline saw it.
    pub seq: u64,
    /// `Normal` / `Warning`.
    pub type_: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
    /// The Event object it belongs to.
    pub event: String,
    /// What it is about (`pod web-1`).
    pub about: String,
}

/// Every occurrence of an event about `object`, in the order the timeline saw them.
pub fn occurrences(state: &State, object: &Object) -> Vec<Occurrence> {
    let mut counts: std::collections::HashMap<String, i32> = Default::default();
    let mut out = Vec::new();
    for (entry, ev) in state.event_entries() {
        if !event_is_about(ev, object) {
            continue;
        }
        let name = ev.metadata.name.clone().unwrap_or_default();
        let now = super::describe::occurrences(ev);
        let before = counts.get(&name).copied().unwrap_or(0);
        for _ in before..now {
            out.push(occurrence(entry.seq, ev, &name, object));
        }
        counts.insert(name, now.max(before));
    }
    out
}

fn occurrence(seq: u64, ev: &Event, name: &str, object: &Object) -> Occurrence {
    Occurrence {
        seq,
        type_: ev.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: ev.reason.clone().unwrap_or_default(),
        message: ev.message.clone().unwrap_or_default(),
        event: name.to_string(),
        about: format!(
            "{} {}",
            object.kind().as_str().to_ascii_lowercase(),
            object.name()
        ),
    }
}

/// Check that `expected` occur in this order (others may interleave); `Err` says how far the
/// match got.
pub fn in_order(occurrences: &[Occurrence], expected: &[Expected]) -> Result<(), String> {
    let mut at = 0;
    for (i, row) in expected.iter().enumerate() {
        match occurrences[at..].iter().position(|o| row.matches(o)) {
            Some(p) => at += p + 1,
            None => {
                let earlier = occurrences[..at].iter().filter(|o| row.matches(o)).count();
                return Err(format!(
                    "row {} ({row}) {}",
                    i + 1,
                    if earlier == 0 {
                        "never occurred".to_string()
                    } else {
                        format!(
                            "occurred {earlier} time(s), but not after the match of row {} ({})",
                            i,
                            expected[i - 1]
                        )
                    }
                ));
            }
        }
    }
    Ok(())
}

/// How many occurrences match `row`.
pub fn count(occurrences: &[Occurrence], row: &Expected) -> i32 {
    occurrences.iter().filter(|o| row.matches(o)).count() as i32
}

/// The occurrences as lines, for failure messages.
pub fn listing(occurrences: &[Occurrence]) -> String {
    if occurrences.is_empty() {
        return "      (no events)".into();
    }
    let mut out = Vec::new();
    let mut last: Option<(&str, String)> = None;
    let mut repeat = 0;
    for o in occurrences {
        let line = format!("{} {}: {}", o.type_, o.reason, o.message.trim_end());
        if last
            .as_ref()
            .is_some_and(|(e, l)| *e == o.event && *l == line)
        {
            repeat += 1;
            continue;
        }
        if let Some((_, l)) = last.take() {
            out.push(with_repeat(&l, repeat));
        }
        last = Some((&o.event, line));
        repeat = 1;
    }
    if let Some((_, l)) = last {
        out.push(with_repeat(&l, repeat));
    }
    out.into_iter()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn with_repeat(line: &str, n: usize) -> String {
    if n > 1 {
        format!("{line} (x{n})")
    } else {
        line.to_string()
    }
}

/// Lines of the events of an Event list (for artifacts).
pub fn table_line(ev: &Event) -> String {
    event_line(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(reason: &str, message: &str) -> Occurrence {
        Occurrence {
            seq: 0,
            type_: "Normal".into(),
            reason: reason.into(),
            message: message.into(),
            event: reason.into(),
            about: "pod p".into(),
        }
    }

    fn row(reason: &str, message: &str) -> Expected {
        Expected {
            type_: String::new(),
            reason: reason.into(),
            message: Some(Pattern::new(message).unwrap()),
            times: None,
        }
    }

    #[test]
    fn patterns_glob_or_regex() {
        assert!(Pattern::new("Created pod: web-*")
            .unwrap()
            .matches("Created pod: web-abc"));
        assert!(!Pattern::new("Created pod: web-*")
            .unwrap()
            .matches("Deleted pod: web-abc"));
        assert!(Pattern::new("/^Back-off \\d+s/")
            .unwrap()
            .matches("Back-off 10s x"));
        assert!(Pattern::new("a (b) [c]").unwrap().matches("a (b) [c]"));
        assert!(Pattern::new("/(/").is_err());
    }

    #[test]
    fn order_allows_interleaving_but_not_reordering() {
        let seen = vec![
            occ("Scheduled", "x"),
            occ("Pulling", "y"),
            occ("Pulled", "z"),
            occ("Started", "w"),
        ];
        assert!(in_order(&seen, &[row("Scheduled", "*"), row("Started", "*")]).is_ok());
        let err = in_order(&seen, &[row("Started", "*"), row("Pulled", "*")]).unwrap_err();
        assert!(err.contains("not after the match of row 1"), "{err}");
        let err = in_order(&seen, &[row("Killing", "*")]).unwrap_err();
        assert!(err.contains("never occurred"), "{err}");
        assert_eq!(count(&seen, &row("Pulled", "z")), 1);
    }

    #[test]
    fn tables_need_known_columns() {
        let t = |rows: &[&[&str]]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect()
        };
        let ok = parse_table(
            &t(&[&["type", "reason", "message"], &["Normal", "Pulled", "*"]]),
            false,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert!(parse_table(&t(&[&["kind", "reason"]]), false)
            .unwrap_err()
            .contains("unknown column"));
        assert!(
            parse_table(&t(&[&["reason", "times"], &["X", "many"]]), true)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_table(&t(&[&["reason"]]), true)
            .unwrap_err()
            .contains("times"));
    }
}
