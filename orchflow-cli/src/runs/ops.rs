//! The operations that change a run (answering, requeueing) and the reads that need the
//! store's newer tables (a flow's graph), shared by the CLI and the server.
//!
//! Invariants: answers and requeues go through `orchflow::store::ops`, the same code
//! `Durable::submit_answer` uses, never by writing journal entries here; a refusal keeps its
//! kind ([`OpError`]) so that the server can answer 400, 404 or 409.

use crate::store::Store;
use orchflow::ResumeError;
use orchflow::RunId;
use orchflow::graph::FlowGraph;
use orchflow::store::{CheckpointStore, RunStatus, StoreError, ops};

/// Why answering or requeueing a run was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such run.
    #[error("no run {run_id} in {location}")]
    NotFound {
        /// The run.
        run_id: RunId,
        /// The store.
        location: String,
    },
    /// The request names something the run does not have (an unknown or ambiguous question).
    #[error("{0}")]
    BadRequest(String),
    /// The run is not in a state that allows it (not suspended, finished, cancelled, busy).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpError {
    fn of(store: &Store, error: ResumeError) -> OpError {
        match error {
            ResumeError::NotFound(run_id) => OpError::NotFound {
                run_id,
                location: store.location().to_string(),
            },
            e @ (ResumeError::UnknownQuestion { .. } | ResumeError::AmbiguousAnswer { .. }) => {
                OpError::BadRequest(e.to_string())
            }
            ResumeError::Store(e @ StoreError::RunBusy { .. }) => OpError::Conflict(e.to_string()),
            ResumeError::Store(StoreError::NotFound(run_id)) => OpError::NotFound {
                run_id,
                location: store.location().to_string(),
            },
            ResumeError::Store(e) => OpError::Store(e),
            other => OpError::Conflict(other.to_string()),
        }
    }
}

/// Answers `question` (or the only pending question) of a suspended run with `text`; the run
/// is queued for a worker. Returns its new status. Fails with [`OpError`].
pub async fn answer(
    store: &Store,
    run_id: RunId,
    question: Option<&str>,
    text: &str,
) -> Result<RunStatus, OpError> {
    ops::answer(store.checkpoints().as_ref(), run_id, question, text)
        .await
        .map_err(|e| OpError::of(store, e))
}

/// Queues a failed (or answered, or abandoned) run for a worker to continue. Returns its new
/// status. Fails with [`OpError`] (a completed or cancelled run, a run with questions waiting).
pub async fn requeue(store: &Store, run_id: RunId) -> Result<RunStatus, OpError> {
    ops::requeue(store.checkpoints().as_ref(), run_id)
        .await
        .map_err(|e| OpError::of(store, e))
}

/// The graph of the flow with `fingerprint`, when the store has it. Fails with the store's
/// error.
pub async fn graph(store: &Store, fingerprint: &str) -> Result<Option<FlowGraph>, StoreError> {
    store.checkpoints().graph(fingerprint).await
}
