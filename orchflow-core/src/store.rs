//! Checkpoint stores: where durable runs keep their progress.
//!
//! A run's checkpoint is two things:
//!
//! * a **document** ([`RunDocument`]): the run's identity (flow name, structural fingerprint,
//!   shape, run id), its input, and its status (running, suspended with a pending question,
//!   completed with the output, failed with the error). It is rewritten only when the status
//!   changes, atomically.
//! * a **journal** of [`JournalEntry`]s, appended after every resumable point: the point's value
//!   and the traces of the attempts since the previous entry. One append per point, so saving
//!   costs O(1) in the length of the run.
//!
//! Resuming reads the document and the journal, takes the last point (plus the parallel
//! branches and inner positions finished after it) and continues from there.

use crate::context::RunId;
use crate::trace::StepTrace;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

/// The format name written in every document.
pub const FORMAT: &str = "orchflow-checkpoint";
/// The current format version. Documents of other versions are refused with
/// [`StoreError::UnsupportedVersion`].
pub const FORMAT_VERSION: u32 = 1;

/// A boxed future, so that stores can be used as `dyn CheckpointStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (or interrupted: a crash leaves this status).
    Running,
    /// Waiting for a human answer to `pending`.
    Suspended,
    /// Finished with an output.
    Completed,
    /// Stopped by a step that failed for good; resuming retries from the last point.
    Failed,
}

/// A question a run is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInput {
    /// The step that asked.
    pub step: String,
    /// The question.
    pub prompt: String,
}

/// The document of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this version.
    pub version: u32,
    /// The run.
    pub run_id: RunId,
    /// The flow's name.
    pub flow: String,
    /// The flow's structural fingerprint, as 16 hex digits.
    pub fingerprint: String,
    /// The flow's shape, for messages when the fingerprint differs.
    pub shape: String,
    /// The flow's input as JSON.
    pub input: serde_json::Value,
    /// Where the run stands.
    pub status: RunStatus,
    /// The question a suspended run waits on.
    pub pending: Option<PendingInput>,
    /// The output of a completed run, as JSON.
    pub output: Option<serde_json::Value>,
    /// Why a failed run stopped.
    pub error: Option<String>,
    /// When the run was created.
    pub created_at: SystemTime,
    /// When the document was last written.
    pub updated_at: SystemTime,
}

/// What one journal entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointRecord {
    /// A resumable point: the generated state, as serde writes it (`{"AfterPlan": …}`).
    Point(serde_json::Value),
    /// The run stopped here (a step failed for good, or the run suspended); the entry carries the
    /// traces of the attempts since the last point.
    Stopped,
    /// A position inside the item that follows the last point: the value after a step of an
    /// `if` arm, a parallel branch or a loop body, or an iteration of a loop that is not at the
    /// top level. A resumed run replays that item and takes these values instead of running
    /// their steps again.
    Inner {
        /// The position's variant of the generated state (`Inner3AfterExecutor`).
        name: String,
        /// The iteration numbers of the loops around the position, outermost first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        path: Vec<u32>,
        /// The value, as the variant's content (`{"iteration": …, "value": …}` for a loop).
        value: serde_json::Value,
    },
    /// One finished branch of the parallel group that follows the last point.
    Branch {
        /// The group's point (`InGroup2`).
        group: String,
        /// The branch, in declaration order.
        index: usize,
        /// The branch's output.
        value: serde_json::Value,
    },
}

/// One append to a run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1 for the first entry of the run; strictly increasing.
    pub seq: u64,
    /// What was reached.
    pub record: PointRecord,
    /// The traces of the attempts that ended since the previous entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<StepTrace>,
}

/// A run as a store returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The document.
    pub document: RunDocument,
    /// The journal, in order.
    pub journal: Vec<JournalEntry>,
}

/// Why a store could not do what was asked. Every variant names the file (or run) and the
/// problem; nothing here is ever a panic, and a store never leaves a half-written document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `fsync`, `rename`, `create directory`).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape (truncated, corrupt, or not ours).
    #[error("{path} is not a valid checkpoint: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the position when known.
        reason: String,
    },
    /// A document of another format version.
    #[error("{path} has checkpoint format version {found}; this orchflow reads version {expected}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this code reads.
        expected: u32,
    },
    /// No checkpoint for this run.
    #[error("no checkpoint for run {0}")]
    NotFound(RunId),
    /// A journal append for a run that has no document.
    #[error("run {0} has no document: create it before appending to its journal")]
    NoDocument(RunId),
    /// The value could not be turned into JSON.
    #[error("cannot serialise {what}: {source}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Where durable runs keep their progress. Implementations must make every write durable
/// before its future completes (a crash after `Ok` never loses it) and never leave a partial
/// document behind.
///
/// The trait is object safe (`dyn CheckpointStore`); its futures are boxed, which is negligible
/// next to the `fsync` each write costs.
pub trait CheckpointStore: Send + Sync {
    /// Writes (creates or replaces) a run's document, atomically.
    fn put_document<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, ()>;

    /// Appends an entry to a run's journal, durably.
    fn append<'a>(&'a self, run_id: RunId, entry: &'a JournalEntry) -> StoreFuture<'a, ()>;

    /// Reads a run back: `Ok(None)` if the store has no such run.
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>>;

    /// Where a run's checkpoint lives, for messages (a file path, a table row, …).
    fn location(&self, run_id: RunId) -> String {
        format!("the checkpoint of run {run_id}")
    }
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<S> {
    fn put_document<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, ()> {
        (**self).put_document(document)
    }
    fn append<'a>(&'a self, run_id: RunId, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        (**self).append(run_id, entry)
    }
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        (**self).load(run_id)
    }
    fn location(&self, run_id: RunId) -> String {
        (**self).location(run_id)
    }
}

/// A store in memory, for tests: durable for the life of the value.
///
/// ```
/// use orchflow::{flow, step, MemoryStore};
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = std::sync::Arc::new(MemoryStore::default());
/// let f = flow! { inc => inc };
/// let run = f.durable(store.clone()).run(1).await;
/// assert_eq!(run.output, Some(3));
/// assert_eq!(store.journal_len(run.run_id), 2);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    runs: std::sync::Mutex<std::collections::BTreeMap<RunId, Checkpoint>>,
}

impl MemoryStore {
    /// How many journal entries a run has.
    pub fn journal_len(&self, run_id: RunId) -> usize {
        self.lock().get(&run_id).map_or(0, |c| c.journal.len())
    }

    /// The run ids in the store.
    pub fn runs(&self) -> Vec<RunId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<RunId, Checkpoint>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CheckpointStore for MemoryStore {
    fn put_document<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut runs = self.lock();
            match runs.get_mut(&document.run_id) {
                Some(c) => c.document = document.clone(),
                None => {
                    runs.insert(
                        document.run_id,
                        Checkpoint {
                            document: document.clone(),
                            journal: Vec::new(),
                        },
                    );
                }
            }
            Ok(())
        })
    }

    fn append<'a>(&'a self, run_id: RunId, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut runs = self.lock();
            let c = runs
                .get_mut(&run_id)
                .ok_or(StoreError::NoDocument(run_id))?;
            c.journal.push(entry.clone());
            Ok(())
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(async move { Ok(self.lock().get(&run_id).cloned()) })
    }
}
