//! The real flows whose durable runs the browser tests record, and a store wrapper that tells
//! the test when each journal append was acknowledged.
//!
//! Invariants: every run here is made by `flow!`/`#[step]` code through `Durable` over a
//! `SqliteStore` file, the same file `orchflow serve` reads; nothing writes the store by hand.

use orchflow::graph::FlowGraph;
use orchflow::human::{Answer, TypedAnswer};
use orchflow::registry::Registry;
use orchflow::store::{
    Checkpoint, CheckpointStore, Claim, JournalEntry, Question, RunDocument, RunListing, RunQuery,
    StatusCounts, StoreFuture,
};
use orchflow::{RunId, SqliteStore, StepContext, StepTrace, flow, step};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

// ------------------------------------------------------------------ many small runs

#[step]
pub async fn bump(x: u32) -> u32 {
    x + 1
}

#[step]
pub async fn broken(x: u32) -> Result<u32, std::io::Error> {
    Err(std::io::Error::other(format!("broken for {x}")))
}

/// Records `completed` runs of a one-step flow that completes and `failed` runs of one that
/// fails, `concurrency` at a time; returns nothing but leaves every claim released.
pub async fn record_many(store: &SqliteStore, completed: u32, failed: u32, concurrency: usize) {
    let ok = Arc::new(flow! { #[flow(name = "bulk")] bump });
    let bad = Arc::new(flow! { #[flow(name = "bulk-broken")] broken });
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0u32;
    let total = completed + failed;
    while next < total || !tasks.is_empty() {
        while next < total && tasks.len() < concurrency {
            let i = next;
            next += 1;
            let store = store.clone();
            if i < failed {
                let bad = Arc::clone(&bad);
                tasks.spawn(async move {
                    let r = bad.durable(store).run(i).await;
                    assert!(r.error.is_some(), "run {i} of bulk-broken did not fail");
                });
            } else {
                let ok = Arc::clone(&ok);
                tasks.spawn(async move {
                    let r = ok.durable(store).run(i).await;
                    assert_eq!(r.output, Some(i + 1), "run {i} of bulk: {:?}", r.error);
                });
            }
        }
        if let Some(done) = tasks.join_next().await {
            done.expect("a recording task");
        }
    }
    store.flush().await.expect("flush the store");
}

// ------------------------------------------------------------------ retries, a group, a loop

#[step]
pub async fn prepare(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(15)).await;
    x + 1
}

/// Fails its first two attempts, succeeds on the third.
#[step(retry = 2, delay = "20ms")]
pub async fn flaky(x: u32, ctx: &StepContext) -> Result<u32, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    if ctx.attempt() < 3 {
        return Err(std::io::Error::other(format!(
            "attempt {} of 3: upstream not ready",
            ctx.attempt()
        )));
    }
    Ok(x * 2)
}

#[step]
pub async fn left(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(30)).await;
    x + 1
}

#[step]
pub async fn right(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(45)).await;
    x + 2
}

#[step]
pub async fn join(pair: (u32, u32)) -> u32 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    pair.0 + pair.1
}

#[step]
pub async fn tick(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(15)).await;
    x + 1
}

#[step]
pub async fn finish(x: u32) -> String {
    tokio::time::sleep(Duration::from_millis(10)).await;
    format!("total {x}")
}

/// Records one run of `prepare => flaky => [left, right] => join => loop(max = 3) { tick } =>
/// finish` (flaky fails twice, then succeeds) and returns its id and the flow's graph.
pub async fn record_showcase(store: &SqliteStore) -> (RunId, FlowGraph) {
    let f = flow! {
        #[flow(name = "showcase")]
        prepare => flaky => [left, right] => join => loop(max = 3) { tick } => finish
    };
    let r = f.durable(store.clone()).run(1).await;
    assert!(r.error.is_none(), "showcase failed: {:?}", r.error);
    assert_eq!(r.output.as_deref(), Some("total 14"));
    store.flush().await.expect("flush the store");
    (r.run_id, f.graph())
}

// ------------------------------------------------------------------ a long run

/// Iterations of the long run.
pub const LONG: u32 = 10_000;

#[step]
pub async fn spin(x: u32) -> u32 {
    x + 1
}

/// Records one run of `loop(max = LONG) { spin }` (10,000 attempts) and returns its id and
/// the flow's graph.
pub async fn record_long(store: &SqliteStore) -> (RunId, FlowGraph) {
    let f = flow! { #[flow(name = "long")] loop(max = LONG) { spin } };
    let r = f.durable(store.clone()).run(0).await;
    assert_eq!(r.output, Some(LONG), "the long run: {:?}", r.error);
    store.flush().await.expect("flush the store");
    (r.run_id, f.graph())
}

// ------------------------------------------------------------------ replay and fork

#[step]
pub async fn outline(topic: String) -> u32 {
    u32::try_from(topic.len()).unwrap_or(u32::MAX)
}

#[step]
pub async fn polish(x: u32) -> u32 {
    x * 2 + 1
}

#[step]
pub async fn review(x: u32) -> u32 {
    x
}

#[step]
pub async fn release(x: u32) -> String {
    format!("v{x}")
}

/// The flows of the build the replay/fork browser test serves: `launch`, the same code that
/// recorded its runs, and `changed`, which since its runs were recorded calls `review` before
/// `release`.
pub fn replay_build() -> Registry {
    Registry::new()
        .register(flow! {
            #[flow(name = "launch")]
            outline => loop(max = 3) { polish } => release
        })
        .register(flow! {
            #[flow(name = "changed")]
            outline => loop(max = 3) { polish } => review => release
        })
}

/// Records one run of `launch` and one of `changed` (before its change), both
/// `outline => loop(max = 3) { polish } => release` over "rust" (output "v39"), and returns
/// their ids.
pub async fn record_replayable(store: &SqliteStore) -> (RunId, RunId) {
    let launch = flow! { #[flow(name = "launch")] outline => loop(max = 3) { polish } => release };
    let before = flow! { #[flow(name = "changed")] outline => loop(max = 3) { polish } => release };
    let a = launch.durable(store.clone()).run("rust".to_string()).await;
    assert_eq!(a.output.as_deref(), Some("v39"), "launch: {:?}", a.error);
    let b = before.durable(store.clone()).run("rust".to_string()).await;
    assert_eq!(b.output.as_deref(), Some("v39"), "changed: {:?}", b.error);
    store.flush().await.expect("flush the store");
    (a.run_id, b.run_id)
}

// ------------------------------------------------------------------ a question

#[step]
pub async fn decide(review: Answer<String>) -> String {
    format!("{} -> {}", review.value, review.text)
}

/// The flow that asks "review" (suspending the run until it is answered), then decides.
#[macro_export]
macro_rules! review_flow {
    () => {{
        let review = orchflow::human::ask("review", |d: &String| format!("publish {d}?"));
        orchflow::flow! { #[flow(name = "publish")] (review) => decide }
            .with_input(orchflow::human::Suspend)
    }};
}

/// The answer the typed question asks for: a form is made from its JSON Schema.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Release {
    /// The version to ship.
    pub version: String,
    /// How many replicas run it.
    pub replicas: u32,
}

#[step]
pub async fn ship(release: TypedAnswer<String, Release>) -> String {
    format!(
        "{} {} x{}",
        release.value, release.answer.version, release.answer.replicas
    )
}

/// The flow that asks "release" for a [`Release`] (suspending until answered), then ships.
#[macro_export]
macro_rules! release_flow {
    () => {{
        let release = orchflow::human::ask_typed::<Release, _, _>("release", |d: &String| {
            format!("release {d}: which version, how many replicas?")
        });
        orchflow::flow! { #[flow(name = "release")] (release) => ship }
            .with_input(orchflow::human::Suspend)
    }};
}

// ------------------------------------------------------------------ a live run

/// The shared state of the live flow: each step waits for one permit the test gives.
#[derive(Clone)]
pub struct Gate(pub Arc<Semaphore>);

async fn pass(ctx: &StepContext<Gate>) {
    ctx.state()
        .0
        .acquire()
        .await
        .expect("the gate is never closed")
        .forget();
}

#[step]
pub async fn fetch(x: u32, ctx: &StepContext<Gate>) -> u32 {
    pass(ctx).await;
    x + 1
}

#[step]
pub async fn check(x: u32, ctx: &StepContext<Gate>) -> u32 {
    pass(ctx).await;
    x + 10
}

#[step]
pub async fn publish(x: u32, ctx: &StepContext<Gate>) -> u32 {
    pass(ctx).await;
    x + 100
}

// ------------------------------------------------------------------ acknowledged appends

/// A store that forwards everything to a `SqliteStore` and, once an append has been
/// acknowledged by it (durable in the file), sends the entry's `seq` and the instant.
#[derive(Clone)]
pub struct AckStore {
    pub inner: SqliteStore,
    pub acks: mpsc::UnboundedSender<(u64, Instant)>,
}

impl CheckpointStore for AckStore {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        self.inner.create(document)
    }
    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        self.inner.claim(run_id)
    }
    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        self.inner.put_document(claim, document)
    }
    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.append(claim, entry).await?;
            let _ = self.acks.send((entry.seq, Instant::now()));
            Ok(())
        })
    }
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        self.inner.load(run_id)
    }
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        self.inner.list_runs(query)
    }
    fn journal<'a>(
        &'a self,
        run_id: RunId,
        after: u64,
    ) -> StoreFuture<'a, Option<Vec<JournalEntry>>> {
        self.inner.journal(run_id, after)
    }
    fn traces<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Vec<StepTrace>>> {
        self.inner.traces(run_id)
    }
    fn questions<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, Vec<Question>> {
        self.inner.questions(query)
    }
    fn count_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, StatusCounts> {
        self.inner.count_runs(query)
    }
    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        self.inner.put_graph(graph)
    }
    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        self.inner.graph(fingerprint)
    }
    fn location(&self, run_id: RunId) -> String {
        self.inner.location(run_id)
    }
}
