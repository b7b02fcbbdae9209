//! A build's flows by name, with their types erased: what a tool needs to replay and fork runs
//! of a store without naming each flow's types (the `orchflow` command line and viewer, built
//! into an application with its flows, take one).
//!
//! Runs are matched to flows by name: a run recorded by an earlier build of a flow is replayed
//! and forked by the build's flow of the same name, whatever its fingerprint.

use crate::context::RunId;
use crate::durable::{Checkpointable, ForkError};
use crate::flow::{Driver, Flow};
use crate::replay::{ForkAt, ForkPreview, ReplayOptions, ReplayOutcome, ReplayReport, ResumeCheck};
use crate::step::bounds::StateReq;
use crate::store::{CheckpointStore, RunStatus, StoreError};
use crate::worker::Outcome;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One registered flow, its types erased.
trait Entry: Send + Sync {
    fn fingerprint(&self) -> String;
    fn steps(&self) -> Vec<String>;
    fn replay<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        options: &'a ReplayOptions,
    ) -> BoxFuture<'a, Result<ReplayReport, StoreError>>;
    fn preview_fork<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &'a ForkAt,
        input: Option<serde_json::Value>,
    ) -> BoxFuture<'a, Result<ForkPreview, ForkError>>;
    fn submit_fork<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &'a ForkAt,
        input: Option<serde_json::Value>,
    ) -> BoxFuture<'a, Result<RunId, ForkError>>;
    fn run<'a>(&'a self, store: Arc<dyn CheckpointStore>, run: RunId) -> BoxFuture<'a, Outcome>;
}

struct Typed<T, I, O, N: StateReq, P, F>(Flow<T, I, O, N, P, F>);

impl<T, I, O, N, P, F> Entry for Typed<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    N::State: Default,
    P: Checkpointable<I, O> + Send + 'static,
    F: Driver<T, I, O, P>,
    Flow<T, I, O, N, P, F>: Send + Sync + 'static,
{
    fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    fn steps(&self) -> Vec<String> {
        let graph = self.0.graph();
        graph.step_names().into_iter().map(str::to_string).collect()
    }

    fn replay<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        options: &'a ReplayOptions,
    ) -> BoxFuture<'a, Result<ReplayReport, StoreError>> {
        Box::pin(async move { self.0.durable(store).replay(run, options).await })
    }

    fn preview_fork<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &'a ForkAt,
        input: Option<serde_json::Value>,
    ) -> BoxFuture<'a, Result<ForkPreview, ForkError>> {
        Box::pin(async move { self.0.durable(store).preview_fork(run, at, input).await })
    }

    fn submit_fork<'a>(
        &'a self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &'a ForkAt,
        input: Option<serde_json::Value>,
    ) -> BoxFuture<'a, Result<RunId, ForkError>> {
        Box::pin(async move { self.0.durable(store).submit_fork(run, at, input).await })
    }

    fn run<'a>(&'a self, store: Arc<dyn CheckpointStore>, run: RunId) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match store.claim(run).await {
                Ok(claim) => crate::worker::run_claimed(&self.0, store, claim).await,
                Err(e) => Outcome::Refused(e.to_string()),
            }
        })
    }
}

/// A build's flows by name (see the [module docs](self)).
///
/// ```
/// use orchflow::registry::Registry;
/// use orchflow::replay::ReplayOptions;
/// use orchflow::{flow, step, MemoryStore};
/// use std::sync::Arc;
///
/// #[step] async fn plan(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Arc::new(MemoryStore::default());
/// let launch = flow! { #[flow(name = "launch")] plan };
/// let run = launch.durable(store.clone()).run(1).await;
/// let flows = Registry::new().register(launch);
/// assert_eq!(flows.names(), ["launch"]);
/// let report = flows.replay(store, run.run_id, &ReplayOptions::default()).await.unwrap();
/// assert!(report.is_compatible());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    flows: BTreeMap<String, Arc<dyn Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("flows", &self.names())
            .finish()
    }
}

impl Registry {
    /// A registry of no flow.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a flow; one of the same name registered before is replaced.
    pub fn register<T, I, O, N, P, F>(mut self, flow: Flow<T, I, O, N, P, F>) -> Self
    where
        T: Send + Sync + 'static,
        I: Send + Sync + 'static,
        O: Send + 'static,
        N: StateReq,
        N::State: Default,
        P: Checkpointable<I, O> + Send + 'static,
        F: Driver<T, I, O, P>,
        Flow<T, I, O, N, P, F>: Send + Sync + 'static,
    {
        self.flows
            .insert(flow.name().to_string(), Arc::new(Typed(flow)));
        self
    }

    /// The names of the flows, in order.
    pub fn names(&self) -> Vec<&str> {
        self.flows.keys().map(String::as_str).collect()
    }

    /// The fingerprint of this build's flow `name`, if it has one.
    pub fn fingerprint(&self, name: &str) -> Option<String> {
        self.flows.get(name).map(|e| e.fingerprint())
    }

    /// The names of the steps this build's flow `name` calls, its nested flows' included
    /// ([`FlowGraph::step_names`](crate::graph::FlowGraph::step_names)), if it has the flow:
    /// what [`ReplayOptions::reexecute`] can name.
    ///
    /// ```
    /// use orchflow::registry::Registry;
    /// use orchflow::{flow, step};
    /// #[step] async fn plan(x: u32) -> u32 { x + 1 }
    /// let flows = Registry::new().register(flow! { #[flow(name = "launch")] plan => plan });
    /// assert_eq!(flows.steps("launch"), Some(vec!["plan".to_string()]));
    /// assert_eq!(flows.steps("other"), None);
    /// ```
    pub fn steps(&self, name: &str) -> Option<Vec<String>> {
        self.flows.get(name).map(|e| e.steps())
    }

    /// Whether the registry has no flow.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    async fn entry_of(
        &self,
        store: &dyn CheckpointStore,
        run: RunId,
    ) -> Result<(String, Option<&Arc<dyn Entry>>), StoreError> {
        let doc = store
            .document(run)
            .await?
            .ok_or(StoreError::NotFound(run))?;
        let entry = self.flows.get(&doc.flow);
        Ok((doc.flow, entry))
    }

    /// The entry of run `run`'s flow, for a fork: [`ForkError::UnknownFlow`] when this build
    /// has none, [`ForkError::NotFound`] when the store has no such run.
    async fn entry_to_fork(
        &self,
        store: &dyn CheckpointStore,
        run: RunId,
    ) -> Result<&Arc<dyn Entry>, ForkError> {
        match self.entry_of(store, run).await {
            Ok((_, Some(entry))) => Ok(entry),
            Ok((flow, None)) => Err(ForkError::UnknownFlow(flow)),
            Err(StoreError::NotFound(id)) => Err(ForkError::NotFound(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Replays run `run` with this build's flow of the run's flow name
    /// ([`Durable::replay`](crate::Durable::replay)). A run of a flow this build does not have
    /// gives a report that says so.
    ///
    /// Fails when the store fails or has no such run.
    pub async fn replay(
        &self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        options: &ReplayOptions,
    ) -> Result<ReplayReport, StoreError> {
        match self.entry_of(&*store, run).await? {
            (_, Some(entry)) => entry.replay(store, run, options).await,
            (flow, None) => {
                let doc = store
                    .document(run)
                    .await?
                    .ok_or(StoreError::NotFound(run))?;
                Ok(ReplayReport {
                    run_id: run,
                    flow: flow.clone(),
                    status: doc.status,
                    recorded_fingerprint: doc.fingerprint,
                    fingerprint: String::new(),
                    outcome: ReplayOutcome::Unreplayable {
                        reason: format!("this build has no flow `{flow}`"),
                    },
                    reused: 0,
                    reexecuted: 0,
                    continues_at: Vec::new(),
                    resume: ResumeCheck::Undeclared,
                    declared: None,
                })
            }
        }
    }

    /// [`Durable::preview_fork`](crate::Durable::preview_fork) with this build's flow of the
    /// run's flow name. Fails as it does, and with [`ForkError::UnknownFlow`].
    pub async fn preview_fork(
        &self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<ForkPreview, ForkError> {
        let entry = self.entry_to_fork(&*store, run).await?;
        entry.preview_fork(store, run, at, input).await
    }

    /// [`Durable::submit_fork`](crate::Durable::submit_fork) with this build's flow of the
    /// run's flow name: the fork is queued; [`run`](Self::run) it here, or let a worker.
    /// Fails as it does, and with [`ForkError::UnknownFlow`].
    pub async fn submit_fork(
        &self,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<RunId, ForkError> {
        let entry = self.entry_to_fork(&*store, run).await?;
        entry.submit_fork(store, run, at, input).await
    }

    /// Runs (or continues) run `run` here to its next stop, with this build's flow of its name,
    /// as a worker would. A run of a flow this build does not have, or one another writer
    /// holds, is refused.
    pub async fn run(&self, store: Arc<dyn CheckpointStore>, run: RunId) -> Outcome {
        match self.entry_of(&*store, run).await {
            Ok((_, Some(entry))) => entry.run(store, run).await,
            Ok((flow, None)) => Outcome::Refused(format!("this build has no flow `{flow}`")),
            Err(e) => Outcome::Refused(e.to_string()),
        }
    }

    /// The runs of `store` that have not finished (queued, running, suspended, failed) for
    /// each flow of this build, newest first, at most `limit` per flow.
    ///
    /// Fails when the store cannot list runs.
    pub async fn unfinished(
        &self,
        store: &dyn CheckpointStore,
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let mut runs = Vec::new();
        for name in self.flows.keys() {
            for status in [
                RunStatus::Queued,
                RunStatus::Running,
                RunStatus::Suspended,
                RunStatus::Failed,
            ] {
                let query = crate::store::RunQuery {
                    flow: Some(name.clone()),
                    status: Some(status),
                    limit: Some(limit),
                    ..crate::store::RunQuery::default()
                };
                runs.extend(
                    store
                        .list_runs(&query)
                        .await?
                        .runs
                        .into_iter()
                        .map(|d| d.run_id),
                );
            }
        }
        Ok(runs)
    }
}
