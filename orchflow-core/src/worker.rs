//! Workers: processes that take runs from a [`RunQueue`] and run them.
//!
//! A [`Worker`] knows a set of flows (its registry, keyed by name and fingerprint) and loops:
//! it claims the oldest runnable run of a flow it knows ([`RunQueue::claim_next`]), runs it to
//! its next stop (completed, suspended, failed) on a task of its own, and claims the next one,
//! with at most [`concurrency`](Worker::concurrency) runs at a time. Any number of workers, in
//! any number of processes on any number of machines, can share one store: a run is claimed by
//! one of them at a time, and every save shows the claim's fencing token, so a worker whose
//! claim passed to another (its lease lapsed while it was stalled) is refused, never merged.
//!
//! Invariants:
//! * A worker writes a run only under the claim `claim_next` gave it; the claim is released
//!   when the run stops (or lapses if the worker dies), after which the run is runnable again
//!   if it did not finish.
//! * Runs of flows the worker does not know are never touched, except for the note
//!   ([`RunQueue::mark_waiting`]) that says why they wait, written when the worker is idle.
//! * Store errors never stop a worker: they are counted, logged through `tracing`, and the
//!   worker tries again after its poll interval.
//!
//! Submitting, answering and cancelling need no worker: [`Durable::submit`](crate::Durable::submit),
//! [`Durable::submit_answer`](crate::Durable::submit_answer) and [`RunQueue::cancel`].

use crate::context::RunId;
use crate::durable::{Checkpointable, ResumeError};
use crate::error::FlowError;
use crate::flow::{Driver, Flow};
use crate::step::bounds::StateReq;
use crate::store::{CheckpointStore, Claim, FlowKey, RunQueue, RunStatus, StoreError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How one run a worker took ended (this time: a suspended run comes back when answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The run finished with an output.
    Completed,
    /// The run waits for answers to its questions.
    Suspended,
    /// A step failed for good; the run stays failed until someone resumes it.
    Failed(String),
    /// The run was cancelled while the worker ran it; the worker stopped at its next save.
    Cancelled,
    /// The worker lost the run's claim (its lease lapsed and another writer took the run, or a
    /// save failed); whoever holds the run now continues it.
    Lost(String),
    /// The run could not be started (its checkpoint does not fit the flow, or the store
    /// failed reading it).
    Refused(String),
}

/// One run a worker took, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The run.
    pub run_id: RunId,
    /// Its flow.
    pub flow: FlowKey,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a worker did, when its loop ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Runs it took.
    pub taken: u64,
    /// Runs that completed.
    pub completed: u64,
    /// Runs that suspended.
    pub suspended: u64,
    /// Runs that failed, were cancelled, lost or refused.
    pub stopped: u64,
    /// Store errors met while looking for work.
    pub store_errors: u64,
}

impl WorkerStats {
    fn count(&mut self, report: &Report) {
        match report.outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Suspended => self.suspended += 1,
            Outcome::Failed(_) | Outcome::Cancelled | Outcome::Lost(_) | Outcome::Refused(_) => {
                self.stopped += 1
            }
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A registered flow, with its types erased: runs a claimed run of it.
trait Runner: Send + Sync {
    fn run(&self, store: Arc<dyn CheckpointStore>, claim: Claim) -> BoxFuture<Outcome>;
}

struct FlowRunner<T, I, O, N: StateReq, P, F> {
    flow: Arc<Flow<T, I, O, N, P, F>>,
}

impl<T, I, O, N, P, F> Runner for FlowRunner<T, I, O, N, P, F>
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
    fn run(&self, store: Arc<dyn CheckpointStore>, claim: Claim) -> BoxFuture<Outcome> {
        let flow = Arc::clone(&self.flow);
        Box::pin(async move { run_claimed(&flow, store, claim).await })
    }
}

/// Runs the run `claim` holds with `flow` to its next stop, and says how it ended (what a
/// worker does with a run it took; also [`Registry::run`](crate::registry::Registry::run)).
pub(crate) async fn run_claimed<T, I, O, N, P, F>(
    flow: &Flow<T, I, O, N, P, F>,
    store: Arc<dyn CheckpointStore>,
    claim: Claim,
) -> Outcome
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    N::State: Default,
    P: Checkpointable<I, O> + Send + 'static,
    F: Driver<T, I, O, P>,
{
    let run_id = claim.run_id();
    let result = flow.durable(Arc::clone(&store)).resume_claimed(claim).await;
    match result {
        Ok(r) if r.success => Outcome::Completed,
        Ok(r) if !r.suspended.is_empty() => Outcome::Suspended,
        Ok(r) => match r.error {
            Some(FlowError::Checkpoint(e)) => lost(&*store, run_id, e).await,
            Some(e) => Outcome::Failed(e.to_string()),
            None => Outcome::Failed("the run stopped without an output".to_string()),
        },
        Err(ResumeError::Cancelled(_)) => Outcome::Cancelled,
        Err(ResumeError::Store(e)) => lost(&*store, run_id, e).await,
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// A run whose save failed: cancelled if the store says so, else lost.
async fn lost(store: &dyn CheckpointStore, run_id: RunId, e: StoreError) -> Outcome {
    match store.load(run_id).await {
        Ok(Some(c)) if c.document.status == RunStatus::Cancelled => Outcome::Cancelled,
        _ => Outcome::Lost(e.to_string()),
    }
}

/// Takes runs of the flows it knows from a [`RunQueue`] and runs them (see the
/// [module docs](self)).
///
/// ```
/// use orchflow::human::{self, Answer};
/// use orchflow::store::{CheckpointStore, RunStatus};
/// use orchflow::worker::{Outcome, Worker};
/// use orchflow::{flow, step, MemoryStore};
///
/// #[step] async fn draft(topic: String) -> String { format!("a post about {topic}") }
/// #[step] async fn decide(a: Answer<String>) -> bool { a.text == "yes" }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ok = human::ask("ok", |d: &String| format!("publish {d}?"));
/// let publish = flow! { #[flow(name = "publish")] draft => (ok) => decide }
///     .with_input(human::Suspend);
/// let store = MemoryStore::default();
///
/// // Anyone can submit; the worker runs it until it suspends on its question.
/// let run_id = publish.durable(store.clone()).submit("rust".to_string()).await.unwrap();
/// let worker = Worker::new(store.clone()).register(publish.clone());
/// assert_eq!(worker.run_one().await.unwrap().unwrap().outcome, Outcome::Suspended);
///
/// // A person answers; the run is queued again and a worker finishes it.
/// publish.durable(store.clone()).submit_answer(run_id, None, "yes").await.unwrap();
/// assert_eq!(worker.run_one().await.unwrap().unwrap().outcome, Outcome::Completed);
/// let saved = store.load(run_id).await.unwrap().unwrap();
/// assert_eq!(saved.document.status, RunStatus::Completed);
/// assert!(worker.run_one().await.unwrap().is_none(), "nothing left to do");
/// # }
/// ```
pub struct Worker<Q: ?Sized> {
    store: Arc<Q>,
    /// The same store, as the runners take it (made once, not per run).
    runs_store: Arc<dyn CheckpointStore>,
    /// The registry, shared with the runs in flight.
    flows: Arc<BTreeMap<FlowKey, Arc<dyn Runner>>>,
    name: String,
    concurrency: usize,
    poll: Duration,
}

impl<Q: RunQueue + 'static> Worker<Q> {
    /// A worker on `store` that knows no flow yet, runs up to 16 runs at a time, looks for work
    /// every 200 ms when idle, and is named after its host and process.
    pub fn new(store: Q) -> Self {
        Worker::shared(Arc::new(store))
    }
}

impl<Q: RunQueue + ?Sized + 'static> Worker<Q> {
    /// [`new`](Worker::new) on a store shared with the rest of the process.
    pub fn shared(store: Arc<Q>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        Worker {
            runs_store: Arc::new(Arc::clone(&store)),
            store,
            flows: Arc::default(),
            name: format!("{host}:{}", std::process::id()),
            concurrency: 16,
            poll: Duration::from_millis(200),
        }
    }

    /// Teaches the worker a flow: it will run the runs of this flow's name and fingerprint, and
    /// of the earlier fingerprints it declares compatible
    /// ([`Flow::compatible_with`](crate::Flow::compatible_with)). A flow with the same name and
    /// fingerprint registered again replaces the first.
    ///
    /// Register flows whose questions suspend ([`human::Suspend`](crate::human::Suspend)): a
    /// worker has no person at hand to ask.
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
        let key = flow.key();
        // Runs of earlier fingerprints the flow declares compatible are its runs too.
        let declared: Vec<FlowKey> = flow
            .declarations()
            .map(|(fp, _)| FlowKey::new(flow.name(), fp))
            .collect();
        let runner: Arc<dyn Runner> = Arc::new(FlowRunner {
            flow: Arc::new(flow),
        });
        let flows = Arc::make_mut(&mut self.flows);
        for k in declared {
            flows.insert(k, Arc::clone(&runner));
        }
        flows.insert(key, runner);
        self
    }

    /// At most `n` runs at a time (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long an idle worker waits before it looks for work again.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// The name the worker gives in the notes it writes on runs it cannot run.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The flows the worker knows, in order.
    pub fn flows(&self) -> Vec<FlowKey> {
        self.flows.keys().cloned().collect()
    }

    /// Claims one runnable run of a flow it knows and runs it to its next stop, here; `None`
    /// when there is none. Fails only when the store fails to hand out a run.
    pub async fn run_one(&self) -> Result<Option<Report>, StoreError> {
        let keys = self.flows();
        match self.store.claim_next(&keys).await? {
            Some(claim) => Ok(Some(self.start(claim).await)),
            None => Ok(None),
        }
    }

    /// Runs the run `claim` holds with its flow's runner.
    fn start(&self, claim: Claim) -> BoxFuture<Report> {
        let store = Arc::clone(&self.runs_store);
        let run_id = claim.run_id();
        let flows = Arc::clone(&self.flows);
        Box::pin(async move {
            // `claim_next` hands out only runs of known flows; the key is read back to tell
            // which one.
            let key = match store.load(run_id).await {
                Ok(Some(c)) => FlowKey::new(c.document.flow, c.document.fingerprint),
                Ok(None) => {
                    return Report {
                        run_id,
                        flow: FlowKey::new("", ""),
                        outcome: Outcome::Refused(format!("run {run_id} is gone")),
                    };
                }
                Err(e) => {
                    return Report {
                        run_id,
                        flow: FlowKey::new("", ""),
                        outcome: Outcome::Refused(e.to_string()),
                    };
                }
            };
            let outcome = match flows.get(&key) {
                Some(runner) => runner.run(store, claim).await,
                None => Outcome::Refused(format!(
                    "the store handed out run {run_id} of {key}, which this worker does not know (it knows {})",
                    flows
                        .keys()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            Report {
                run_id,
                flow: key,
                outcome,
            }
        })
    }

    /// The note a worker writes on runs of flows it does not know.
    fn waiting_note(&self) -> String {
        let known: Vec<String> = self.flows.keys().map(ToString::to_string).collect();
        format!(
            "no worker that saw this run knows its flow and fingerprint; worker {} knows: {}",
            self.name,
            if known.is_empty() {
                "no flow".to_string()
            } else {
                known.join(", ")
            }
        )
    }

    /// Runs the worker until `shutdown` completes: takes runs as they become runnable, up to
    /// its concurrency, each on a tokio task; when `shutdown` completes it takes no more runs
    /// and waits for the runs in flight to stop. `on_report` sees every run as it stops.
    /// Returns what it did. Needs a tokio runtime.
    ///
    /// Dropping the future instead stops at once: the runs in flight stop where they are, and
    /// their claims are released (or lapse, if the process dies), so another worker continues
    /// them from their last checkpoint.
    pub async fn run_until(
        &self,
        shutdown: impl Future<Output = ()>,
        mut on_report: impl FnMut(&Report),
    ) -> WorkerStats {
        let keys = self.flows();
        let note = self.waiting_note();
        let mut stats = WorkerStats::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut noted = false;
        let mut stopping = false;
        loop {
            // Take work while there is room.
            let mut idle = false;
            while !stopping && tasks.len() < self.concurrency {
                match self.store.claim_next(&keys).await {
                    Ok(Some(claim)) => {
                        stats.taken += 1;
                        noted = false;
                        tasks.spawn(self.start(claim));
                    }
                    Ok(None) => {
                        idle = true;
                        break;
                    }
                    Err(e) => {
                        stats.store_errors += 1;
                        tracing::warn!(worker = %self.name, error = %e, "could not look for work");
                        idle = true;
                        break;
                    }
                }
            }
            if idle && !noted && !stopping {
                match self.store.mark_waiting(&keys, &note).await {
                    Ok(_) => noted = true,
                    Err(e) => {
                        stats.store_errors += 1;
                        tracing::warn!(worker = %self.name, error = %e, "could not mark waiting runs");
                    }
                }
            }
            if stopping && tasks.is_empty() {
                return stats;
            }
            let full = tasks.len() >= self.concurrency;
            tokio::select! {
                () = &mut shutdown, if !stopping => stopping = true,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok(report) => {
                            stats.count(&report);
                            on_report(&report);
                        }
                        Err(e) => {
                            // A run's task panicked outside its steps (steps' panics are
                            // caught and traced): its claim was released by the unwind.
                            stats.stopped += 1;
                            tracing::error!(worker = %self.name, error = %e, "a run's task ended abnormally");
                        }
                    }
                }
                () = tokio::time::sleep(self.poll), if idle && !full && !stopping => {}
            }
        }
    }
}
