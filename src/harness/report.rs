//! Reports: live progress and a summary on the terminal, JUnit XML and Cucumber JSON for CI
//! servers, and the artifacts a failed scenario leaves (its timeline, events sorted by time,
//! objects as YAML, container logs).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use cucumber::event::{
    self, Cucumber, Feature, RetryableScenario, Rule, Scenario, ScenarioFinished, StepError,
};
use cucumber::gherkin;
use cucumber::parser;
use cucumber::writer::{self, JUnit, Json};
use cucumber::Event;

use super::runner::Outcome;
use super::timeline::{Change, Kind, Object, State};
use super::world::{Env, World};

/// How to show progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// A live status line when stdout is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Plain lines.
    Plain,
    /// Nothing but the summary (tests of the harness).
    Quiet,
}

#[derive(Default)]
struct Attempt {
    started: Option<Instant>,
    failure: Option<(String, String)>,
    skipped: Option<String>,
}

/// The terminal report; it also feeds the JUnit and JSON writers.
pub struct Report {
    live: bool,
    quiet: bool,
    started: Instant,
    junit: Option<writer::Normalize<World, JUnit<World, File>>>,
    json: Option<writer::Normalize<World, Json<File>>>,
    attempts: HashMap<(String, usize), Attempt>,
    running: usize,
    outcome: Outcome,
    failures: Vec<String>,
    skips: Vec<String>,
    notes: Rc<RefCell<Vec<String>>>,
}

impl Report {
    /// A report; `junit` and `json` are files to write.
    ///
    /// # Errors
    /// A report file cannot be created.
    pub fn new(
        progress: Progress,
        junit: Option<&Path>,
        json: Option<&Path>,
        notes: Rc<RefCell<Vec<String>>>,
    ) -> Result<Self, String> {
        let create = |p: &Path| -> Result<File, String> {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))
        };
        Ok(Self {
            live: progress == Progress::Auto && std::io::stdout().is_terminal(),
            quiet: progress == Progress::Quiet,
            started: Instant::now(),
            junit: junit.map(create).transpose()?.map(|f| JUnit::new(f, 0)),
            json: json.map(create).transpose()?.map(Json::new),
            attempts: HashMap::new(),
            running: 0,
            outcome: Outcome::default(),
            failures: Vec::new(),
            skips: Vec::new(),
            notes,
        })
    }

    /// Print the run's first line.
    pub fn header(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }

    /// What the run did.
    pub fn outcome(&self) -> Outcome {
        self.outcome.clone()
    }

    fn status_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped, {} running ({:.1}s)",
            self.outcome.passed,
            self.outcome.failed,
            self.outcome.skipped,
            self.running,
            self.started.elapsed().as_secs_f64()
        )
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.live {
            let _ = write!(out, "\r\x1b[2K{text}\n{}", self.status_line());
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// Print the summary: failures with their messages, skips with their reasons, counts.
    pub fn summary(&self) {
        let mut out = std::io::stdout().lock();
        if self.live {
            let _ = write!(out, "\r\x1b[2K");
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nFailures:\n");
            for f in &self.failures {
                let _ = writeln!(out, "{f}\n");
            }
        }
        if !self.skips.is_empty() && !self.quiet {
            let _ = writeln!(out, "Skipped:");
            for s in &self.skips {
                let _ = writeln!(out, "  {s}");
            }
            let _ = writeln!(out);
        }
        for n in self.notes.borrow().iter() {
            let _ = writeln!(out, "{n}");
        }
        let o = &self.outcome;
        let _ = writeln!(
            out,
            "{} scenarios: {} passed, {} failed, {} skipped{}{} in {:.1}s",
            o.passed + o.failed + o.skipped,
            o.passed,
            o.failed,
            o.skipped,
            if o.retried > 0 {
                format!(", {} retried", o.retried)
            } else {
                String::new()
            },
            if o.parse_errors > 0 {
                format!(", {} parse errors", o.parse_errors)
            } else {
                String::new()
            },
            self.started.elapsed().as_secs_f64()
        );
    }

    fn scenario(
        &mut self,
        feature: &gherkin::Feature,
        sc: &gherkin::Scenario,
        ev: &RetryableScenario<World>,
    ) {
        let file = feature
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let key = (file.clone(), sc.position.line);
        let location = format!("{file}:{}", sc.position.line);
        match &ev.event {
            Scenario::Started => {
                self.running += 1;
                self.attempts.insert(
                    key,
                    Attempt {
                        started: Some(Instant::now()),
                        ..Default::default()
                    },
                );
            }
            Scenario::Step(step, e) | Scenario::Background(step, e) => {
                let a = self.attempts.entry(key).or_default();
                match e {
                    event::Step::Failed(_, _, _, err) => {
                        a.failure.get_or_insert_with(|| {
                            (format!("{}{}", step.keyword, step.value), error_text(err))
                        });
                    }
                    event::Step::Skipped => {
                        if let Some(reason) = step.value.strip_prefix("skipped: ") {
                            a.skipped = Some(reason.to_string());
                        }
                    }
                    _ => {}
                }
            }
            Scenario::Hook(kind, event::Hook::Failed(_, info)) => {
                let a = self.attempts.entry(key).or_default();
                a.failure
                    .get_or_insert_with(|| (format!("{kind:?} hook"), panic_text(info)));
            }
            Scenario::Finished => {
                self.running = self.running.saturating_sub(1);
                let a = self.attempts.remove(&key).unwrap_or_default();
                let took = a
                    .started
                    .map(|s| format!(" ({:.1}s)", s.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                let retrying = ev.retries.is_some_and(|r| r.left > 0);
                match (a.failure, a.skipped) {
                    (Some((step, message)), _) if retrying => {
                        self.outcome.retried += 1;
                        self.line(&format!(
                            "↻ retry   {location}  {}{took}: {}",
                            sc.name,
                            message.lines().next().unwrap_or("")
                        ));
                        let _ = step;
                    }
                    (Some((step, message)), _) => {
                        self.outcome.failed += 1;
                        self.line(&format!("✘ failed  {location}  {}{took}", sc.name));
                        self.failures.push(format!(
                            "✘ {location}  {}\n  step: {step}\n  {}",
                            sc.name,
                            message.replace('\n', "\n  ")
                        ));
                    }
                    (None, Some(reason)) => {
                        self.outcome.skipped += 1;
                        self.line(&format!("- skipped {location}  {}: {reason}", sc.name));
                        self.skips
                            .push(format!("{location}  {}: {reason}", sc.name));
                    }
                    (None, None) => {
                        self.outcome.passed += 1;
                        self.line(&format!("✔ passed  {location}  {}{took}", sc.name));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Where a scenario is: `features/x.feature:12`.
pub fn location(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> String {
    format!(
        "{}:{}",
        feature
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        scenario.position.line
    )
}

fn panic_text(info: &event::Info) -> String {
    info.downcast_ref::<String>()
        .cloned()
        .or_else(|| info.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn error_text(e: &StepError) -> String {
    match e {
        StepError::Panic(info) => panic_text(info),
        StepError::NotFound => {
            "undefined step: no step definition matches it (`kubespec steps` lists them)".into()
        }
        other => other.to_string(),
    }
}

impl cucumber::Writer<World> for Report {
    type Cli = cucumber::cli::Empty;

    async fn handle_event(&mut self, ev: parser::Result<Event<Cucumber<World>>>, _: &Self::Cli) {
        if let Some(j) = &mut self.junit {
            j.handle_event(ev.clone(), &writer::junit::Cli::default())
                .await;
        }
        if let Some(j) = &mut self.json {
            j.handle_event(ev.clone(), &cucumber::cli::Empty).await;
        }
        match ev.map(Event::into_inner) {
            Err(e) => {
                self.outcome.parse_errors += 1;
                self.line(&format!("✘ {e}"));
                self.failures.push(format!("✘ {e}"));
            }
            Ok(Cucumber::Feature(f, Feature::Scenario(sc, ev))) => self.scenario(&f, &sc, &ev),
            Ok(Cucumber::Feature(f, Feature::Rule(_, Rule::Scenario(sc, ev)))) => {
                self.scenario(&f, &sc, &ev)
            }
            Ok(_) => {}
        }
    }
}

/// Write what a failed scenario leaves: `failure.txt`, `timeline.txt`, `events.txt`,
/// `objects.yaml`, `faults.txt` and `logs/<pod>_<container>[.previous].log` under
/// `<dir>/<feature>-<line>-<scenario>/`. Returns the directory (`None` when the scenario never
/// provisioned a cluster and there is nothing to show but the failure).
///
/// # Errors
/// The directory cannot be written.
pub async fn write_artifacts(
    dir: &Path,
    feature: &gherkin::Feature,
    scenario: &gherkin::Scenario,
    finished: &ScenarioFinished,
    world: &World,
) -> Result<Option<PathBuf>, String> {
    let out = dir.join(artifact_dir_name(feature, scenario));
    let write = |name: &str, text: &str| write_file(&out, name, text);
    let failure = match finished {
        ScenarioFinished::StepFailed(_, _, err) => error_text(err),
        ScenarioFinished::BeforeHookFailed(info) => panic_text(info),
        _ => String::new(),
    };
    write(
        "failure.txt",
        &format!(
            "{}\n{}\n\n{failure}\n",
            scenario.name,
            location(feature, scenario)
        ),
    )?;
    let Some(env) = world.env_if_provisioned() else {
        return Ok(Some(out));
    };
    write("faults.txt", &(world.faults.join("\n") + "\n"))?;
    let (timeline, events, objects, pods) = env.timeline.read(|s| {
        (
            timeline_text(s),
            events_text(s),
            objects_yaml(s),
            pod_containers(s),
        )
    });
    write("timeline.txt", &timeline)?;
    write("events.txt", &events)?;
    write("objects.yaml", &objects)?;
    write_container_logs(env, pods, &out).await?;
    Ok(Some(out))
}

/// `<feature file stem>-<line>-<scenario name as a slug>`.
fn artifact_dir_name(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> String {
    let stem = feature
        .path
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "feature".into());
    let slug: String = scenario
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{stem}-{}-{slug}", scenario.position.line)
}

/// Write `text` to `<out>/<name>`, creating the directories it needs.
fn write_file(out: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = out.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `timeline.txt`: every change the timeline recorded, in order, with a one-line summary.
fn timeline_text(s: &State) -> String {
    let mut timeline = String::from(
        "SEQ  OBSERVED (cluster)            CHANGE              OBJECT  RV  SUMMARY\n",
    );
    for e in &s.entries {
        let summary = e.object.as_deref().map(summarize).unwrap_or_default();
        timeline.push_str(&format!(
            "{:<4} {:<30} {:<19} {} {} {}\n",
            e.seq,
            crate::clock::format_micro_time(e.observed),
            format!("{:?}", e.change),
            if e.change == Change::Relisted {
                format!("(all {}s)", e.key.kind)
            } else {
                e.key.to_string()
            },
            e.resource_version
                .map(|r| r.to_string())
                .unwrap_or_default(),
            summary
        ));
    }
    timeline
}

/// `events.txt`: the events (barriers left out), sorted by the time they were last seen.
fn events_text(s: &State) -> String {
    let mut evs: Vec<&k8s_openapi::api::core::v1::Event> = s
        .of_kind(Kind::Event)
        .filter_map(|o| match o {
            Object::Event(e) if !super::timeline::is_barrier(e) => Some(e),
            _ => None,
        })
        .collect();
    evs.sort_by_key(|e| event_time(e));
    let mut events = String::from("LAST SEEN (cluster)             TYPE     REASON                OBJECT                         MESSAGE\n");
    for e in evs {
        events.push_str(&format!(
            "{:<31} {:<8} {:<21} {:<30} {}{}\n",
            event_time(e),
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .as_deref()
                    .unwrap_or("")
                    .to_ascii_lowercase(),
                e.involved_object.name.as_deref().unwrap_or("")
            ),
            e.message.as_deref().unwrap_or("").trim_end(),
            match super::describe::occurrences(e) {
                1 => String::new(),
                n => format!(" (x{n})"),
            }
        ));
    }
    events
}

/// `objects.yaml`: every object but events, as YAML documents without managed fields.
fn objects_yaml(s: &State) -> String {
    let mut objects = String::new();
    for o in s.objects.values() {
        if o.kind() == Kind::Event {
            continue;
        }
        let mut v = o.to_json();
        if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("managedFields");
        }
        objects.push_str("---\n");
        objects.push_str(&serde_yaml::to_string(&v).unwrap_or_default());
    }
    objects
}

/// Each pod's name with its (init and app) containers' names and restart counts.
fn pod_containers(s: &State) -> Vec<(String, Vec<(String, i32)>)> {
    let pods: Vec<(String, Vec<(String, i32)>)> = s
        .pods()
        .map(|p| {
            let statuses = p
                .status
                .iter()
                .flat_map(|st| {
                    st.init_container_statuses
                        .iter()
                        .flatten()
                        .chain(st.container_statuses.iter().flatten())
                })
                .map(|c| (c.name.clone(), c.restart_count))
                .collect();
            (p.metadata.name.clone().unwrap_or_default(), statuses)
        })
        .collect();
    pods
}

/// `logs/<pod>_<container>.log` for every container, and `<...>.previous.log` for those that
/// restarted; a log that cannot be fetched within 5 s is written as the reason.
async fn write_container_logs(
    env: &Env,
    pods: Vec<(String, Vec<(String, i32)>)>,
    out: &Path,
) -> Result<(), String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    for (pod, containers) in pods {
        for (container, restarts) in containers {
            for previous in [false, true] {
                if previous && restarts == 0 {
                    continue;
                }
                let params = kube::api::LogParams {
                    container: Some(container.clone()),
                    previous,
                    ..Default::default()
                };
                let text = match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    api.logs(&pod, &params),
                )
                .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => format!("(no logs: {e})\n"),
                    Err(_) => "(no logs: the request timed out)\n".into(),
                };
                let suffix = if previous { ".previous" } else { "" };
                write_file(out, &format!("logs/{pod}_{container}{suffix}.log"), &text)?;
            }
        }
    }
    Ok(())
}

fn event_time(e: &k8s_openapi::api::core::v1::Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default()
}

fn summarize(o: &Object) -> String {
    match o {
        Object::Pod(p) => {
            let st = p.status.as_ref();
            format!(
                "phase={} node={} ready={}{}",
                st.and_then(|s| s.phase.as_deref()).unwrap_or(""),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or(""),
                crate::k8s::pod_is_ready(p),
                if p.metadata.deletion_timestamp.is_some() {
                    " deleting"
                } else {
                    ""
                }
            )
        }
        Object::Event(e) => super::describe::event_line(e),
        Object::Deployment(d) => {
            let st = d.status.clone().unwrap_or_default();
            format!(
                "replicas={} updated={} ready={} available={}",
                st.replicas.unwrap_or(0),
                st.updated_replicas.unwrap_or(0),
                st.ready_replicas.unwrap_or(0),
                st.available_replicas.unwrap_or(0)
            )
        }
        Object::ReplicaSet(r) => format!(
            "spec.replicas={} ready={}",
            r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            r.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        ),
        Object::Node(n) => format!("ready={}", crate::k8s::node_is_ready(n)),
        Object::Lease(l) => format!(
            "holder={}",
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .unwrap_or("")
        ),
        _ => String::new(),
    }
}
