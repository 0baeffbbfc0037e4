//! Event checks from a table: in order (others may interleave), exactly N times, never. Each
//! check applies to every object the selector means that exists now (or, when none exists any
//! more, to every one the timeline saw), counting aggregated occurrences of Events about that
//! object's uid.

use cucumber::gherkin::Step;
use cucumber::then;

use crate::harness::events::{self, Expected};
use crate::harness::params::{Selector, Within};
use crate::harness::timeline::{Check, Kind, Object, State};
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{describe, Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "within {duration} {object} has/have events in this order:",
        "within 60s the pods of deployment web have events in this order:",
        "Each object's events include these rows in this order; other events may come between. Table: | type | reason | message |, message with * wildcards or /regex/.",
    )
    .with_table(),
    then(
        "{object} has/have events exactly:",
        "deployment web has events exactly:",
        "After a barrier (everything written so far has been seen), each row occurred exactly `times` times. Table: | type | reason | message | times |.",
    )
    .with_table(),
    then(
        "{object} never has/had events:",
        "the pods of deployment web never had events:",
        "After a barrier, none of the rows ever occurred. Table: | type | reason | message |.",
    )
    .with_table(),
];

fn rows(step: &Step, with_times: bool) -> Result<Vec<Expected>, Failure> {
    let table = step
        .table
        .as_ref()
        .ok_or_else(|| Failure::new("this step needs a table: | type | reason | message |"))?;
    events::parse_table(&table.rows, with_times).map_err(Failure::new)
}

/// The objects an event check applies to.
fn subjects(s: &State, ns: &str, selector: &Selector) -> Vec<std::sync::Arc<Object>> {
    let now: Vec<String> = describe::current(s, ns, selector)
        .iter()
        .map(|o| o.uid().to_string())
        .collect();
    let ever = describe::ever(s, ns, selector);
    if now.is_empty() {
        ever
    } else {
        ever.into_iter()
            .filter(|o| now.contains(&o.uid().to_string()))
            .collect()
    }
}

fn name(o: &Object) -> String {
    format!("{} {}", o.kind().as_str().to_ascii_lowercase(), o.name())
}

#[then(expr = "within {duration} {object} has/have events in this order:")]
async fn in_order(w: &mut World, within: Within, selector: Selector, step: &Step) -> StepResult {
    let expected = rows(step, false)?;
    let env = w.env().await?;
    events_watched(env, &selector)?;
    let ns = env.namespace.clone();
    let summary = expected
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", then ");
    env.timeline
        .wait(
            within.0,
            &format!("{selector} to have events in this order: {summary}"),
            |s| {
                let objects = subjects(s, &ns, &selector);
                if objects.is_empty() {
                    return Check::NotYet(format!("no {selector} exists"));
                }
                let mut saw = String::new();
                for o in &objects {
                    let occ = events::occurrences(s, o);
                    if let Err(why) = events::in_order(&occ, &expected) {
                        saw.push_str(&format!(
                            "  {}: {why}; its events:\n{}\n",
                            name(o),
                            events::listing(&occ)
                        ));
                    }
                }
                if saw.is_empty() {
                    Check::Done(())
                } else {
                    Check::NotYet(saw.trim_end().to_string())
                }
            },
        )
        .await?;
    Ok(())
}

/// Whether the events of what `selector` means are watched: a shared cluster's node, Lease and
/// control-plane pod events belong to everyone, so only a cluster of the scenario's own has
/// them in its timeline.
fn events_watched(env: &super::super::world::Env, selector: &Selector) -> Result<(), Failure> {
    let system = match selector {
        Selector::Named {
            kind: Kind::Node | Kind::Lease,
            ..
        } => true,
        Selector::Named { pattern, .. } => pattern.contains('/'),
        Selector::PodsOf { .. } => false,
    };
    if system && !env.timeline.watches_control_plane() {
        return Err(Failure::new(format!(
            "the events of {selector} are not watched on this target (a shared cluster's node, Lease and control-plane events belong to everyone): such checks need a target that runs a cluster per scenario"
        )));
    }
    Ok(())
}

/// A barrier before a check that something did not happen (or happened exactly N times).
async fn barrier(w: &mut World, selector: &Selector) -> Result<(), Failure> {
    let env = w.env().await?;
    events_watched(env, selector)?;
    env.timeline.barrier().await.map_err(Failure::new)
}

/// After a barrier, check that each row occurred exactly `times` times for every object the
/// selector means.
async fn counts(
    w: &mut World,
    selector: &Selector,
    expected: &[Expected],
    headline: &str,
) -> StepResult {
    barrier(w, selector).await?;
    let env = w.env().await?;
    let ns = env.namespace.clone();
    env.timeline.read(|s| {
        let objects = subjects(s, &ns, selector);
        if objects.is_empty() {
            return Err(Failure::new(format!("no {selector} exists")));
        }
        let mut wrong = String::new();
        for o in &objects {
            let occ = events::occurrences(s, o);
            let mut mine = String::new();
            for row in expected {
                let want = row.times.unwrap_or(0);
                let have = events::count(&occ, row);
                if have != want {
                    mine.push_str(&format!(
                        "  {}: {row} occurred {have} times, expected {want}\n",
                        name(o)
                    ));
                }
            }
            if !mine.is_empty() {
                wrong.push_str(&mine);
                wrong.push_str(&format!(
                    "  {}'s events:\n{}\n",
                    name(o),
                    events::listing(&occ)
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(format!("{headline}:\n{}", wrong.trim_end())))
        }
    })
}

#[then(expr = "{object} has/have events exactly:")]
async fn exactly(w: &mut World, selector: Selector, step: &Step) -> StepResult {
    let expected = rows(step, true)?;
    counts(w, &selector, &expected, "event counts differ").await
}

#[then(expr = "{object} never has/had events:")]
async fn never(w: &mut World, selector: Selector, step: &Step) -> StepResult {
    let expected: Vec<Expected> = rows(step, false)?
        .into_iter()
        .map(|r| Expected {
            times: Some(0),
            ..r
        })
        .collect();
    counts(w, &selector, &expected, "events that must never occur did").await
}
