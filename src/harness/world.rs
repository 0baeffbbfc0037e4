//! The per-scenario world: the run's target, the topology the scenario asked for, and once the
//! first step needs it, the scenario's cluster, namespace and timeline.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use super::timeline::Timeline;
use super::Failure;
use crate::target::Elected;
use crate::target::{Cluster, Fault, ScenarioInfo, Target, Topology};

/// What every scenario of a run shares.
pub struct RunContext {
    /// Where scenarios run.
    pub target: Rc<dyn Target>,
    /// Where snapshot files live.
    pub snapshots: PathBuf,
    /// Where failed scenarios leave their evidence.
    pub artifacts: Option<PathBuf>,
    /// Keep a failed scenario's namespace (kubeconfig target).
    pub keep_on_failure: bool,
    /// Keep every scenario's cluster.
    pub keep: bool,
    /// The deadline of waits that name none, in cluster time.
    pub default_wait: Duration,
    /// Accept new snapshots instead of checking them.
    pub update_snapshots: bool,
}

/// A scenario's cluster once provisioned.
pub struct Env {
    /// The cluster.
    pub cluster: Box<dyn Cluster>,
    /// Its client.
    pub client: kube::Client,
    /// The scenario's namespace.
    pub namespace: String,
    /// What happened.
    pub timeline: Timeline,
}

/// The world of one scenario.
#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct World {
    run: Option<Rc<RunContext>>,
    /// The scenario (set by the before hook).
    pub scenario: Option<ScenarioInfo>,
    /// The feature file the scenario is in.
    pub feature_path: Option<PathBuf>,
    /// The topology the scenario's steps asked for.
    pub topology: Topology,
    env: Option<Env>,
    /// Objects the scenario applied, as `kind/name`, in order.
    pub created: Vec<String>,
    /// The leader each component had when a step last faulted it.
    pub former_leaders: HashMap<Elected, (String, i32)>,
    /// Faults and changes the scenario caused, for the artifacts.
    pub faults: Vec<String>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("scenario", &self.scenario.as_ref().map(|s| &s.location))
            .field("topology", &self.topology)
            .field("namespace", &self.env.as_ref().map(|e| &e.namespace))
            .finish_non_exhaustive()
    }
}

impl World {
    fn new() -> Self {
        Self {
            run: None,
            scenario: None,
            feature_path: None,
            topology: Topology::default(),
            env: None,
            created: Vec::new(),
            former_leaders: HashMap::new(),
            faults: Vec::new(),
        }
    }

    /// Attach the run's context (the before hook does this).
    pub fn attach(
        &mut self,
        run: Rc<RunContext>,
        scenario: ScenarioInfo,
        feature: Option<PathBuf>,
    ) {
        self.run = Some(run);
        self.scenario = Some(scenario);
        self.feature_path = feature;
    }

    /// The run's context.
    ///
    /// # Errors
    /// When the world was not attached to a run (a harness bug).
    pub fn run(&self) -> Result<&Rc<RunContext>, Failure> {
        self.run
            .as_ref()
            .ok_or_else(|| Failure::new("the scenario is not attached to a run (harness bug)"))
    }

    /// Whether the cluster has been provisioned.
    pub fn is_provisioned(&self) -> bool {
        self.env.is_some()
    }

    /// Change the topology; only before the cluster exists.
    ///
    /// # Errors
    /// When a step already provisioned the cluster.
    pub fn shape(&mut self, f: impl FnOnce(&mut Topology)) -> Result<(), Failure> {
        if self.env.is_some() {
            return Err(Failure::new(
                "the cluster has already started: put topology steps (\"Given a cluster with ...\") before every other step",
            ));
        }
        f(&mut self.topology);
        Ok(())
    }

    /// The scenario's cluster, provisioned with the topology so far on first use.
    ///
    /// # Errors
    /// When the target cannot provision it.
    pub async fn env(&mut self) -> Result<&Env, Failure> {
        if self.env.is_none() {
            let run = self.run()?.clone();
            let scenario = self.scenario.clone().unwrap_or_else(|| ScenarioInfo {
                name: "scenario".into(),
                location: String::new(),
            });
            if let Some(reason) = run.target.unsupported(&self.topology) {
                return Err(Failure::new(format!(
                    "the {} target cannot run this scenario: {reason}",
                    run.target.name()
                )));
            }
            let cluster = run
                .target
                .provision(&scenario, &self.topology)
                .await
                .map_err(|e| Failure::new(format!("cannot provision the cluster: {e}")))?;
            let client = cluster.client();
            let namespace = cluster.namespace().to_string();
            let own_cluster = run.target.name() != "kubeconfig";
            let timeline = Timeline::start(
                client.clone(),
                &namespace,
                cluster.clock().clone(),
                own_cluster,
            );
            if let Err(e) = timeline.synced().await {
                drop(timeline);
                // Do not leak what was provisioned (a namespace of a shared cluster).
                let _ = cluster.teardown(false).await;
                return Err(Failure::new(e.to_string()));
            }
            self.env = Some(Env {
                cluster,
                client,
                namespace,
                timeline,
            });
        }
        self.env
            .as_ref()
            .ok_or_else(|| Failure::new("the cluster is not provisioned (harness bug)"))
    }

    /// The provisioned cluster, if a step has provisioned it.
    pub fn env_if_provisioned(&self) -> Option<&Env> {
        self.env.as_ref()
    }

    /// Take the cluster out of the world (for the after hook's teardown).
    pub fn take_env(&mut self) -> Option<Env> {
        self.env.take()
    }

    /// Ask the cluster to undergo `fault`.
    ///
    /// # Errors
    /// When the target cannot, or the fault fails.
    pub async fn fault(&mut self, fault: Fault) -> Result<String, Failure> {
        let env = self.env().await?;
        let done = env
            .cluster
            .fault(&fault)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        let at = env.timeline.clock().now();
        self.faults
            .push(format!("{} {done}", crate::clock::format_micro_time(at)));
        Ok(done)
    }

    /// The default deadline of waits.
    pub fn default_wait(&self) -> Duration {
        self.run
            .as_ref()
            .map(|r| r.default_wait)
            .unwrap_or(Duration::from_secs(60))
    }
}
