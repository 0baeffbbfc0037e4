//! `kubespec test`: load the features, check them before anything runs (Gherkin syntax,
//! undefined steps with the closest known ones, unknown capabilities, manifests), skip what the
//! target cannot do with the reason in every report, run the rest with cucumber, and report.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use cucumber::gherkin::{self, Feature, Scenario, Step, StepType};
use cucumber::tag::Ext as _;
use cucumber::World as _;
use cucumber::WriterExt as _;
use futures::FutureExt as _;

use super::report::{self, Report};
use super::steps::cluster::topology_of;
use super::vocabulary::{self, Phrase};
use super::world::{RunContext, World};
use crate::target::{Capability, ScenarioInfo, Target};

/// Which target to run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TargetKind {
    /// A fresh reference cluster per scenario, in this process, on an accelerated clock.
    #[default]
    Embedded,
    /// A real cluster reached through a kubeconfig; a namespace per scenario.
    Kubeconfig,
    /// A fresh reference cluster per scenario with each component in its own Docker container.
    Containers,
}

/// The default cluster seconds per wall second on the embedded target (see the README for how it
/// was chosen).
pub const DEFAULT_TIME_SCALE: f64 = 20.0;

/// The default time scale of the containers target: every component is a process of its own
/// there, each with its own runtime and client connections, so the machine has less to spare.
pub const CONTAINERS_TIME_SCALE: f64 = 10.0;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Feature files or directories (all `*.feature` below them).
    pub paths: Vec<PathBuf>,
    /// The target.
    pub target: TargetKind,
    /// The kubeconfig (kubeconfig target).
    pub kubeconfig: Option<PathBuf>,
    /// Its context.
    pub context: Option<String>,
    /// A tag expression (`@smoke and not @slow`).
    pub tags: Option<String>,
    /// A regular expression scenario names must match.
    pub name: Option<String>,
    /// Scenarios run at once.
    pub concurrency: usize,
    /// Cluster seconds per wall second (embedded target).
    pub time_scale: f64,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Write Cucumber JSON here.
    pub json: Option<PathBuf>,
    /// Failed scenarios leave their evidence here.
    pub artifacts: PathBuf,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Retry failed scenarios this many times.
    pub retry: usize,
    /// Accept new snapshots.
    pub update_snapshots: bool,
    /// Keep a failed scenario's namespace (kubeconfig target) or cluster (containers target).
    pub keep_on_failure: bool,
    /// Keep every scenario's cluster (containers target), for debugging.
    pub keep: bool,
    /// Where snapshot files live.
    pub snapshots: PathBuf,
    /// The user's image models (embedded target).
    pub image_models: Option<PathBuf>,
    /// Where progress goes.
    pub progress: report::Progress,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("features")],
            target: TargetKind::Embedded,
            kubeconfig: None,
            context: None,
            tags: None,
            name: None,
            concurrency: 8,
            time_scale: DEFAULT_TIME_SCALE,
            junit: None,
            json: None,
            artifacts: PathBuf::from("kubespec-artifacts"),
            fail_fast: false,
            retry: 0,
            update_snapshots: false,
            keep_on_failure: false,
            keep: false,
            snapshots: PathBuf::from("snapshots"),
            image_models: None,
            progress: report::Progress::Auto,
        }
    }
}

/// Errors that stop a run before (or instead of) running scenarios.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path does not exist.
    #[error("{0}: no such file or directory (give feature files or directories holding them)")]
    MissingPath(PathBuf),
    /// No feature file was found.
    #[error("no .feature files under {0}")]
    NoFeatures(String),
    /// The features have problems: each line names a file and line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A bad option.
    #[error("{0}")]
    Option(String),
    /// The target could not be set up.
    #[error("{0}")]
    Target(#[from] crate::target::Error),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios that failed.
    pub failed: usize,
    /// Scenarios skipped for a missing capability.
    pub skipped: usize,
    /// Scenario attempts that failed and were retried.
    pub retried: usize,
    /// Features that did not parse.
    pub parse_errors: usize,
}

impl Outcome {
    /// Whether everything that ran passed.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.parse_errors == 0
    }
}

/// The vocabulary with each phrase's definition site, for `kubespec steps`.
pub fn steps_listing() -> String {
    let collection = World::collection_for_listing();
    let mut out = format!(
        "kubespec step vocabulary (each phrase with an example and where it is defined)\n\n{}\n",
        vocabulary::PARAMETERS
    );
    for (concept, phrases) in vocabulary::concepts() {
        out.push_str(&format!("== {concept} ==\n\n"));
        for p in phrases {
            let at = collection
                .locate(p)
                .map(|l| format!("  [{l}]"))
                .unwrap_or_default();
            out.push_str(&format!("{} {}{at}\n", p.keyword.as_str(), p.expression));
            out.push_str(&format!("    e.g. {} {}\n", p.keyword.as_str(), p.example));
            match p.argument {
                vocabulary::Argument::DocString => {
                    out.push_str("         with a \"\"\" doc string below\n")
                }
                vocabulary::Argument::Table => out.push_str("         with a | table | below\n"),
                vocabulary::Argument::None => {}
            }
            out.push_str(&format!("    {}\n", p.help));
        }
        out.push('\n');
    }
    out
}

/// Every `*.feature` under `paths`, sorted.
fn feature_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for path in paths {
        if !path.exists() {
            return Err(Error::MissingPath(path.clone()));
        }
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        let mut stack = vec![path.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::Io(format!("cannot read {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "feature") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(Error::NoFeatures(
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    Ok(files)
}

/// Parse a feature file; `Err` is `file:line:col: ...`.
fn parse_feature(path: &Path) -> Result<Feature, String> {
    use cucumber::feature::Ext as _;
    let feature =
        Feature::parse_path(path, gherkin::GherkinEnv::default()).map_err(|e| match e {
            gherkin::ParseFileError::Reading { source, .. } => {
                format!("{}: cannot read: {source}", path.display())
            }
            gherkin::ParseFileError::Parsing { source, .. } => {
                // gherkin prints "Error at <line>:<col>: <what was expected>".
                let text = source.to_string();
                match text
                    .strip_prefix("Error at ")
                    .and_then(|t| t.split_once(": "))
                {
                    Some((at, what)) => format!(
                        "{}:{at}: Gherkin syntax error: {}",
                        path.display(),
                        what.replace('"', "")
                    ),
                    None => format!("{}: Gherkin syntax error: {text}", path.display()),
                }
            }
        })?;
    feature.expand_examples().map_err(|e| {
        format!(
            "{}:{}:{}: cannot expand the Examples of {:?}",
            path.display(),
            e.pos.line,
            e.pos.col,
            e.name
        )
    })
}

/// The steps a scenario runs: the feature's background, the rule's, then its own.
fn all_steps<'a>(
    feature: &'a Feature,
    rule: Option<&'a gherkin::Rule>,
    sc: &'a Scenario,
) -> Vec<&'a Step> {
    feature
        .background
        .iter()
        .flat_map(|b| &b.steps)
        .chain(
            rule.and_then(|r| r.background.as_ref())
                .into_iter()
                .flat_map(|b| &b.steps),
        )
        .chain(&sc.steps)
        .collect()
}

fn scenarios(feature: &Feature) -> Vec<(Option<&gherkin::Rule>, &Scenario)> {
    feature
        .scenarios
        .iter()
        .map(|s| (None, s))
        .chain(
            feature
                .rules
                .iter()
                .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))),
        )
        .collect()
}

/// Check every step of every scenario; each problem as `file:line:col: ...`.
fn check(features: &[Feature]) -> Vec<String> {
    let collection = World::collection_for_listing();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in features {
        let file = f
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for (rule, sc) in scenarios(f) {
            for tag in sc
                .tags
                .iter()
                .chain(&f.tags)
                .chain(rule.iter().flat_map(|r| &r.tags))
            {
                if let Some(cap) = tag.strip_prefix("needs:") {
                    if let Err(e) = cap.parse::<Capability>() {
                        let p = format!("{file}:{}: tag @{tag}: {e}", sc.position.line);
                        if seen.insert(p.clone()) {
                            problems.push(p);
                        }
                    }
                }
            }
            let texts = all_steps(f, rule, sc).into_iter().map(|s| s.value.as_str());
            match topology_of(texts) {
                Err(e) => problems.push(format!("{file}:{}: {e}", sc.position.line)),
                Ok(t) if t.nodes == Some(0) => problems.push(format!(
                    "{file}:{}: a cluster needs at least 1 node",
                    sc.position.line
                )),
                Ok(_) => {}
            }
            for step in all_steps(f, rule, sc) {
                let at = format!("{file}:{}:{}", step.position.line, step.position.col);
                if !seen.insert(at.clone()) {
                    continue;
                }
                if let Some(problem) = collection.problem(step) {
                    problems.push(format!("{at}: {problem}"));
                    continue;
                }
                if let Some(problem) = check_manifest(&file, step) {
                    problems.push(problem);
                }
            }
        }
    }
    problems
}

/// A manifest the step applies, checked before the run.
fn check_manifest(file: &str, step: &Step) -> Option<String> {
    use super::manifest;
    if step.value == "I apply:" {
        let text = step.docstring.as_deref()?;
        let origin = manifest::Origin::doc_string(file, step.position.line, text);
        return manifest::parse(text, &origin).err();
    }
    if let Some(path) = step.value.strip_prefix("I apply ") {
        return manifest::read(Path::new(path))
            .err()
            .map(|e| format!("{file}:{}: {e}", step.position.line));
    }
    None
}

/// Why `target` cannot run the scenario (`None` when it can).
fn skip_reason(
    target: &dyn Target,
    feature: &Feature,
    rule: Option<&gherkin::Rule>,
    sc: &Scenario,
) -> Option<String> {
    let have = target.capabilities();
    let tags = sc
        .tags
        .iter()
        .chain(&feature.tags)
        .chain(rule.iter().flat_map(|r| &r.tags));
    for tag in tags {
        if let Some(Ok(cap)) = tag.strip_prefix("needs:").map(str::parse::<Capability>) {
            if !have.contains(&cap) {
                return Some(format!(
                    "needs capability {cap}, which the {} target does not have",
                    target.name()
                ));
            }
        }
    }
    let texts = all_steps(feature, rule, sc)
        .into_iter()
        .map(|s| s.value.as_str());
    match topology_of(texts) {
        Ok(topology) => target.unsupported(&topology),
        Err(e) => Some(e),
    }
}

/// Replace the steps of scenarios the target cannot run with one undefined step that states
/// why: cucumber reports it as skipped in every writer, and the `allow.skipped` tag keeps it
/// from failing. Backgrounds of such features move into their other scenarios, so nothing of a
/// skipped scenario runs.
fn mark_skipped(target: &dyn Target, feature: &mut Feature) -> usize {
    let mut reasons: Vec<(Option<usize>, usize, String)> = Vec::new();
    for (i, sc) in feature.scenarios.iter().enumerate() {
        if let Some(r) = skip_reason(target, feature, None, sc) {
            reasons.push((None, i, r));
        }
    }
    for (ri, rule) in feature.rules.iter().enumerate() {
        for (i, sc) in rule.scenarios.iter().enumerate() {
            if let Some(r) = skip_reason(target, feature, Some(rule), sc) {
                reasons.push((Some(ri), i, r));
            }
        }
    }
    if reasons.is_empty() {
        return 0;
    }
    let background: Vec<Step> = feature
        .background
        .take()
        .map(|b| b.steps)
        .unwrap_or_default();
    let skip = |sc: &mut Scenario, reason: &str| {
        sc.steps = vec![Step {
            keyword: "Given ".into(),
            ty: StepType::Given,
            value: format!("skipped: {reason}"),
            docstring: None,
            table: None,
            span: sc.span,
            position: sc.position,
        }];
        sc.tags.push("allow.skipped".into());
    };
    for (i, sc) in feature.scenarios.iter_mut().enumerate() {
        match reasons.iter().find(|(r, j, _)| r.is_none() && *j == i) {
            Some((_, _, reason)) => skip(sc, reason),
            None => {
                let mut steps = background.clone();
                steps.append(&mut sc.steps);
                sc.steps = steps;
            }
        }
    }
    for (ri, rule) in feature.rules.iter_mut().enumerate() {
        let rule_background: Vec<Step> =
            rule.background.take().map(|b| b.steps).unwrap_or_default();
        for (i, sc) in rule.scenarios.iter_mut().enumerate() {
            match reasons.iter().find(|(r, j, _)| *r == Some(ri) && *j == i) {
                Some((_, _, reason)) => skip(sc, reason),
                None => {
                    let mut steps = background.clone();
                    steps.extend(rule_background.iter().cloned());
                    steps.append(&mut sc.steps);
                    sc.steps = steps;
                }
            }
        }
    }
    reasons.len()
}

/// Give every step the type of the one definition it matches. As in Cucumber for the JVM, the
/// keyword is for the reader: `And within 60s deployment web is rolled out` in a Background runs
/// the Then step of that text.
fn retype(features: &mut [Feature]) {
    let collection = World::collection_for_listing();
    let fix = |step: &mut Step| {
        if collection.matching(step.ty, &step.value).is_empty() {
            for ty in [StepType::Given, StepType::When, StepType::Then] {
                if collection.matching(ty, &step.value).len() == 1 {
                    step.ty = ty;
                    return;
                }
            }
        }
    };
    for f in features {
        let backgrounds = f
            .background
            .iter_mut()
            .chain(f.rules.iter_mut().filter_map(|r| r.background.as_mut()));
        for b in backgrounds {
            b.steps.iter_mut().for_each(fix);
        }
        for sc in f
            .scenarios
            .iter_mut()
            .chain(f.rules.iter_mut().flat_map(|r| r.scenarios.iter_mut()))
        {
            sc.steps.iter_mut().for_each(fix);
        }
    }
}

/// Feeds already parsed features to cucumber.
struct Parsed(Vec<Feature>);

impl<I> cucumber::Parser<I> for Parsed {
    type Cli = cucumber::cli::Empty;
    type Output = futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<Feature>>>;

    fn parse(self, _: I, _: Self::Cli) -> Self::Output {
        futures::stream::iter(self.0.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

async fn build_target(opts: &Options) -> Result<Rc<dyn Target>, Error> {
    Ok(match opts.target {
        TargetKind::Embedded => {
            let mut t = crate::target::embedded::Embedded::new(opts.time_scale);
            if let Some(path) = &opts.image_models {
                t.image_models = crate::kubelet::runtime::models::load(path)
                    .map_err(|e| Error::Option(e.to_string()))?
                    .images;
            }
            Rc::new(t)
        }
        TargetKind::Containers => {
            // Checked here, before any Docker work, with the file's line in the message.
            let models =
                match &opts.image_models {
                    Some(path) => {
                        crate::kubelet::runtime::models::load(path)
                            .map_err(|e| Error::Option(e.to_string()))?;
                        Some(std::fs::read_to_string(path).map_err(|e| {
                            Error::Io(format!("cannot read {}: {e}", path.display()))
                        })?)
                    }
                    None => None,
                };
            let mut t = crate::target::containers::Containers::new(
                opts.time_scale,
                crate::target::containers::ImageSource::default(),
            )
            .await?;
            t.image_models = models;
            Rc::new(t)
        }
        TargetKind::Kubeconfig => Rc::new(
            crate::target::kubeconfig::Kubeconfig::connect(
                opts.kubeconfig.clone(),
                opts.context.clone(),
                opts.time_scale,
            )
            .await?,
        ),
    })
}

/// Run the features of `opts.paths`.
///
/// # Errors
/// [`Error`] when the run cannot start: a missing path, features with problems (every one is
/// listed), a bad option, an unreachable cluster.
pub async fn run(opts: Options) -> Result<Outcome, Error> {
    let (tags, name) = check_options(&opts)?;
    let (files, mut features) = load_features(&opts.paths)?;
    let target = build_target(&opts).await?;
    for f in &mut features {
        mark_skipped(target.as_ref(), f);
    }
    let snapshots = snapshots_dir(&opts)?;
    let notes: Rc<RefCell<Vec<String>>> = Rc::default();
    let ctx = Rc::new(RunContext {
        target: target.clone(),
        snapshots,
        artifacts: Some(opts.artifacts.clone()),
        keep_on_failure: opts.keep_on_failure,
        keep: opts.keep,
        default_wait: Duration::from_secs(60),
        update_snapshots: opts.update_snapshots,
    });
    let report = Report::new(
        opts.progress,
        opts.junit.as_deref(),
        opts.json.as_deref(),
        notes.clone(),
    )
    .map_err(Error::Io)?;
    report.header(&format!(
        "kubespec: {} scenarios from {} feature files on the {} target{}",
        features.iter().map(|f| scenarios(f).len()).sum::<usize>(),
        files.len(),
        target.name(),
        if opts.time_scale != 1.0 {
            format!(" (time scale {})", opts.time_scale)
        } else {
            String::new()
        }
    ));

    let before_ctx = ctx.clone();
    let after_ctx = ctx.clone();
    let after_notes = notes.clone();
    let mut cucumber = World::cucumber::<&str>()
        .with_parser(Parsed(features))
        .with_writer(report.assert_normalized())
        .fail_on_skipped_with(|_, _, sc: &Scenario| !sc.tags.iter().any(|t| t == "allow.skipped"))
        .max_concurrent_scenarios(opts.concurrency)
        .retries(opts.retry)
        .before(move |feature, _rule, scenario, world| {
            let ctx = before_ctx.clone();
            let info = ScenarioInfo {
                name: scenario.name.clone(),
                location: report::location(feature, scenario),
            };
            let path = feature.path.clone();
            async move { world.attach(ctx, info, path) }.boxed_local()
        })
        .after(move |feature, _rule, scenario, finished, world| {
            let ctx = after_ctx.clone();
            let notes = after_notes.clone();
            async move { after_scenario(&ctx, &notes, feature, scenario, finished, world).await }
                .boxed_local()
        });
    if opts.fail_fast {
        cucumber = cucumber.fail_fast();
    }
    let writer = cucumber
        .with_default_cli()
        .filter_run((), move |feature, rule, sc| {
            let all_tags = sc
                .tags
                .iter()
                .chain(&feature.tags)
                .chain(rule.into_iter().flat_map(|r| &r.tags));
            tags.as_ref().is_none_or(|t| t.eval(all_tags.clone()))
                && name.as_ref().is_none_or(|n| n.is_match(&sc.name))
        })
        .await;
    let outcome = writer.outcome();
    writer.summary();
    Ok(outcome)
}

/// Reject a time scale or concurrency the run cannot use, and parse the `--tags` and `--name`
/// filters.
fn check_options(
    opts: &Options,
) -> Result<(Option<gherkin::tagexpr::TagOperation>, Option<regex::Regex>), Error> {
    if !crate::clock::Clock::valid_scale(opts.time_scale) {
        return Err(Error::Option(format!(
            "--time-scale {} must be a positive number between {} and {}",
            opts.time_scale,
            crate::clock::Clock::MIN_SCALE,
            crate::clock::Clock::MAX_SCALE
        )));
    }
    if opts.concurrency == 0 {
        return Err(Error::Option("--concurrency must be at least 1".into()));
    }
    if opts.image_models.is_some() && opts.target == TargetKind::Kubeconfig {
        return Err(Error::Option(
            "--image-models only applies to the embedded and containers targets: a real cluster pulls real images".into(),
        ));
    }
    if opts.keep && opts.target != TargetKind::Containers {
        return Err(Error::Option(
            "--keep only applies to --target containers (use --keep-on-failure to keep a failed scenario's namespace)".into(),
        ));
    }
    let tags = opts
        .tags
        .as_deref()
        .map(|t| {
            t.parse::<gherkin::tagexpr::TagOperation>()
                .map_err(|e| Error::Option(format!("--tags {t:?} is not a tag expression: {e}")))
        })
        .transpose()?;
    let name = opts
        .name
        .as_deref()
        .map(|n| {
            regex::Regex::new(n).map_err(|e| {
                Error::Option(format!("--name {n:?} is not a regular expression: {e}"))
            })
        })
        .transpose()?;
    Ok((tags, name))
}

/// The feature files under `paths`, parsed and checked: `Error::Invalid` lists every problem
/// found (syntax, undefined steps, manifests...).
fn load_features(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Feature>), Error> {
    let files = feature_files(paths)?;
    let mut features = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        match parse_feature(file) {
            Ok(f) => features.push(f),
            Err(e) => problems.push(e),
        }
    }
    retype(&mut features);
    problems.extend(check(&features));
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok((files, features))
}

/// Create the snapshot directory and return its canonical path; with `--update-snapshots`, tell
/// insta to overwrite what differs.
fn snapshots_dir(opts: &Options) -> Result<PathBuf, Error> {
    if opts.update_snapshots {
        // insta reads this before its first assertion; nothing else runs yet.
        std::env::set_var("INSTA_UPDATE", "always");
    }
    std::fs::create_dir_all(&opts.snapshots)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", opts.snapshots.display())))?;
    let snapshots = std::fs::canonicalize(&opts.snapshots)
        .map_err(|e| Error::Io(format!("{}: {e}", opts.snapshots.display())))?;
    Ok(snapshots)
}

/// After a scenario: a failed one leaves its artifacts (when enabled), then its cluster is torn
/// down (kept on failure with `--keep-on-failure`); where the artifacts went and what teardown
/// says become notes of the summary.
async fn after_scenario(
    ctx: &RunContext,
    notes: &RefCell<Vec<String>>,
    feature: &Feature,
    scenario: &Scenario,
    finished: &cucumber::event::ScenarioFinished,
    world: Option<&mut World>,
) {
    let Some(world) = world else { return };
    let failed = !matches!(
        finished,
        cucumber::event::ScenarioFinished::StepPassed
            | cucumber::event::ScenarioFinished::StepSkipped
    );
    if failed {
        if let Some(dir) = &ctx.artifacts {
            match report::write_artifacts(dir, feature, scenario, finished, world).await {
                Ok(Some(at)) => notes.borrow_mut().push(format!(
                    "artifacts of \"{}\": {}",
                    scenario.name,
                    at.display()
                )),
                Ok(None) => {}
                Err(e) => notes.borrow_mut().push(format!(
                    "cannot write the artifacts of \"{}\": {e}",
                    scenario.name
                )),
            }
        }
    }
    if let Some(env) = world.take_env() {
        let keep = ctx.keep || (failed && ctx.keep_on_failure);
        let timeline = env.timeline;
        drop(timeline);
        match env.cluster.teardown(keep).await {
            Ok(Some(note)) => notes.borrow_mut().push(note),
            Ok(None) => {}
            Err(e) => notes
                .borrow_mut()
                .push(format!("tearing down \"{}\": {e}", scenario.name)),
        }
    }
}

/// The registered steps, for checks and listings.
pub(super) struct Collection {
    given: Vec<(cucumber::step::Location, regex::Regex)>,
    when: Vec<(cucumber::step::Location, regex::Regex)>,
    then: Vec<(cucumber::step::Location, regex::Regex)>,
}

impl World {
    pub(super) fn collection_for_listing() -> Collection {
        use cucumber::codegen::WorldInventory;
        fn list<T: cucumber::codegen::StepConstructor<World> + 'static>(
        ) -> Vec<(cucumber::step::Location, regex::Regex)>
        where
            T: cucumber::codegen::inventory::Collect,
        {
            cucumber::codegen::inventory::iter::<T>
                .into_iter()
                .map(|s| {
                    let (loc, re, _) = s.inner();
                    (loc, re())
                })
                .collect()
        }
        Collection {
            given: list::<<World as WorldInventory>::Given>(),
            when: list::<<World as WorldInventory>::When>(),
            then: list::<<World as WorldInventory>::Then>(),
        }
    }
}

impl Collection {
    fn of(&self, ty: StepType) -> &[(cucumber::step::Location, regex::Regex)] {
        match ty {
            StepType::Given => &self.given,
            StepType::When => &self.when,
            StepType::Then => &self.then,
        }
    }

    /// The steps of type `ty` whose regex matches `text`.
    pub(super) fn matching(&self, ty: StepType, text: &str) -> Vec<cucumber::step::Location> {
        self.of(ty)
            .iter()
            .filter(|(_, re)| re.is_match(text))
            .map(|(l, _)| *l)
            .collect()
    }

    /// Where the step a phrase describes is defined.
    fn locate(&self, p: &Phrase) -> Option<String> {
        let ty = match p.keyword {
            vocabulary::Keyword::Given => StepType::Given,
            vocabulary::Keyword::When => StepType::When,
            vocabulary::Keyword::Then => StepType::Then,
        };
        self.matching(ty, p.example)
            .first()
            .map(|l| format!("{}:{}", l.path, l.line))
    }

    /// What is wrong with `step`, if anything: undefined (with the closest known steps) or
    /// ambiguous.
    fn problem(&self, step: &Step) -> Option<String> {
        let found = self.matching(step.ty, &step.value);
        match found.len() {
            1 => return None,
            0 => {}
            _ => {
                return Some(format!(
                    "ambiguous step: {}{} matches the steps at {}",
                    step.keyword,
                    step.value,
                    found
                        .iter()
                        .map(|l| format!("{}:{}", l.path, l.line))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        let suggestions = suggest(&step.value, 3);
        let mut msg = format!(
            "undefined step: {}{}\n  the closest known steps are:",
            step.keyword, step.value
        );
        for p in suggestions {
            msg.push_str(&format!(
                "\n    {} {}    (e.g. {} {})",
                p.keyword.as_str(),
                p.expression,
                p.keyword.as_str(),
                p.example
            ));
        }
        msg.push_str("\n  `kubespec steps` lists every step");
        Some(msg)
    }
}

/// The `n` phrases closest to `text`.
pub fn suggest(text: &str, n: usize) -> Vec<Phrase> {
    let text = text.to_lowercase();
    let words = |s: &str| -> std::collections::HashSet<String> {
        s.split(|c: char| c.is_whitespace() || c == '/')
            .filter(|w| !w.is_empty() && !w.starts_with('{'))
            .map(str::to_string)
            .collect()
    };
    let mine = words(&text);
    let mut scored: Vec<(f64, Phrase)> = vocabulary::all()
        .into_iter()
        .map(|p| {
            let example = p.example.to_lowercase();
            let expression = p.expression.to_lowercase();
            let spelling = strsim::normalized_damerau_levenshtein(&text, &example)
                .max(strsim::normalized_damerau_levenshtein(&text, &expression));
            // Shared words count as much as spelling: a step with the right words in another
            // order or with other names is still the one meant.
            let theirs: std::collections::HashSet<String> = words(&example)
                .union(&words(&expression))
                .cloned()
                .collect();
            let shared = mine.intersection(&theirs).count() as f64;
            let overlap = shared / (mine.len().max(1) as f64);
            (spelling + overlap, p)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<Phrase> = Vec::new();
    for (_, p) in scored {
        if out.iter().any(|q| q.expression == p.expression) {
            continue;
        }
        out.push(p);
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::vocabulary::Keyword;

    fn ty(k: Keyword) -> StepType {
        match k {
            Keyword::Given => StepType::Given,
            Keyword::When => StepType::When,
            Keyword::Then => StepType::Then,
        }
    }

    #[test]
    fn every_example_matches_exactly_one_step_and_every_step_has_a_phrase() {
        let c = World::collection_for_listing();
        let phrases = vocabulary::all();
        for p in &phrases {
            let found = c.matching(ty(p.keyword), p.example);
            assert_eq!(
                found.len(),
                1,
                "the example {:?} of {:?} matches {} steps",
                p.example,
                p.expression,
                found.len()
            );
        }
        for (t, steps) in [
            (Keyword::Given, &c.given),
            (Keyword::When, &c.when),
            (Keyword::Then, &c.then),
        ] {
            for (loc, re) in steps.iter() {
                let described = phrases
                    .iter()
                    .filter(|p| p.keyword == t && re.is_match(p.example))
                    .count();
                assert_eq!(
                    described, 1,
                    "the step at {}:{} ({}) has {described} phrases in the vocabulary",
                    loc.path, loc.line, re
                );
            }
        }
    }

    #[test]
    fn suggestions_find_the_intended_step() {
        let s = suggest("a clustr with 3 nodes", 3);
        assert_eq!(s[0].expression, "a cluster with {int} node(s)");
        let s = suggest("within 60 seconds deployment web is rolled-out", 3);
        assert!(s
            .iter()
            .any(|p| p.expression == "within {duration} deployment {word} is rolled out"));
    }
}
