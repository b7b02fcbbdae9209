//! Shared by the CLI and HTTP tests: a SQLite file with real durable runs made by small flows
//! (one completed, one failed after retries, one suspended on a question).
#![allow(dead_code)]

pub mod server;

use orchflow::human::{self, Answer};
use orchflow::store::CheckpointStore;
use orchflow::{RunId, SqliteStore, flow, step};
use std::path::PathBuf;

#[step]
pub async fn double(x: u32) -> u32 {
    x * 2
}

#[step]
pub async fn describe(x: u32) -> String {
    format!("value {x}")
}

#[step(retry = 2, delay = "5ms")]
pub async fn flaky(x: u32) -> Result<u32, std::io::Error> {
    Err(std::io::Error::other(format!("down for {x}")))
}

#[step]
pub async fn decide(review: Answer<String>) -> String {
    format!("{} -> {}", review.value, review.text)
}

/// A store file with three runs.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub completed: RunId,
    pub failed: RunId,
    pub suspended: RunId,
}

impl Fixture {
    /// `sqlite:<path>`.
    pub fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

/// Makes the three runs with `store` (a SQLite store must be flushed before another process
/// reads them).
pub async fn make_runs<S>(store: &S) -> (RunId, RunId, RunId)
where
    S: CheckpointStore + Clone + 'static,
{
    let completed = flow! { #[flow(name = "pricing")] double => describe }
        .durable(store.clone())
        .run(21)
        .await;
    assert_eq!(completed.output.as_deref(), Some("value 42"));
    let failed = flow! { #[flow(name = "sync")] flaky }
        .durable(store.clone())
        .run(7)
        .await;
    assert!(failed.error.is_some());
    let review = human::ask("review", |d: &String| format!("publish {d}?"));
    let suspended = flow! { #[flow(name = "publish")] (review) => decide }
        .with_input(human::Suspend)
        .durable(store.clone())
        .run("post".to_string())
        .await;
    assert_eq!(suspended.suspended.len(), 1);
    (completed.run_id, failed.run_id, suspended.run_id)
}

/// A new store file with the three runs, every claim released (for async tests).
pub async fn fixture_async() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).expect("open");
    let (completed, failed, suspended) = make_runs(&store).await;
    store.flush().await.expect("flush");
    drop(store);
    Fixture {
        dir,
        path,
        completed,
        failed,
        suspended,
    }
}

/// [`fixture_async`] for tests that are not async.
pub fn fixture() -> Fixture {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(fixture_async())
}
