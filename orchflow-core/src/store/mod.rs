//! Checkpoint stores: where durable runs keep their progress.
//!
//! A run's checkpoint is two things:
//!
//! * a **document** ([`RunDocument`]): the run's identity (flow name, structural fingerprint,
//!   shape, run id), its input, and its status (running, suspended with its pending questions,
//!   completed with the output, failed with the error). It is rewritten only when the status
//!   changes, atomically.
//! * a **journal** of [`JournalEntry`]s, appended after every resumable point: the point's value
//!   and the traces of the attempts since the previous entry. One append per point, so saving
//!   costs O(1) in the length of the run.
//!
//! Resuming reads the document and the journal, takes the last point (plus the parallel
//! branches and inner positions finished after it) and continues from there.
//!
//! Beside its runs, a store keeps each flow's [graph](crate::graph::FlowGraph) under its
//! fingerprint ([`CheckpointStore::put_graph`], written before the flow's first run is
//! created), so that tools without the flow's code (the `orchflow` CLI and viewer) can draw
//! its runs; [`ops`] answers and requeues runs without the flow's code.
//!
//! # One writer per run: claims
//!
//! A run has exactly one writer at a time. Before it writes anything, a writer takes the run's
//! [`Claim`] ([`CheckpointStore::create`] for a new run, [`CheckpointStore::claim`] for an
//! existing one); every write ([`put_document`](CheckpointStore::put_document),
//! [`append`](CheckpointStore::append)) shows the claim, and the store refuses a write whose
//! claim it no longer honours ([`StoreError::ClaimLost`]) or whose `seq` does not follow the
//! journal's last ([`StoreError::OutOfSequence`]). A second writer gets [`StoreError::RunBusy`]
//! before anything runs. Dropping the claim releases the run.
//!
//! A claim carries a **fencing token** that grows with every claim of the run. Stores where a
//! claim is a lease that can expire (a database shared by many machines) check the token on
//! every write, so that a writer whose lease passed to another is refused, never merged. The
//! stores here tie a claim to the life of the handle that took it: [`MemoryStore`] to the
//! value, [`JsonCheckpointStore`] to the process (an OS file lock
//! that the kernel drops when the process dies).

use crate::context::RunId;
use crate::graph::FlowGraph;
use crate::trace::StepTrace;
use serde::{Deserialize, Deserializer, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

#[doc(hidden)]
pub mod conformance;
mod json;
mod lineage;
mod memory;
pub mod ops;
mod query;
mod queue;

pub use json::JsonCheckpointStore;
pub use lineage::{ForkAt, ForkOrigin, Lineage};
pub use memory::MemoryStore;
pub use query::{Question, RunCursor, RunListing, RunQuery, StatusCounts};
pub use queue::{FlowKey, RunQueue, runnable};

/// The format name written in every document.
pub const FORMAT: &str = "orchflow-checkpoint";
/// The format version written. Version 1 documents (a single `pending` question or `null`) are
/// still read; documents of other versions are refused with [`StoreError::UnsupportedVersion`].
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version read.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// A boxed future, so that stores can be used as `dyn CheckpointStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Submitted (or answered) and waiting for a worker to run it
    /// ([`RunQueue`]).
    Queued,
    /// Started and not finished (or interrupted: a crash leaves this status).
    Running,
    /// Waiting for human answers to its `pending` questions.
    Suspended,
    /// Finished with an output.
    Completed,
    /// Stopped by a step that failed for good; resuming retries from the last point.
    Failed,
    /// Cancelled ([`RunQueue::cancel`]): never run again.
    Cancelled,
}

impl RunStatus {
    /// The status as written in documents and databases (`queued`, `running`, `suspended`,
    /// `completed`, `failed`, `cancelled`).
    ///
    /// ```
    /// use orchflow::store::RunStatus;
    /// assert_eq!(RunStatus::Suspended.as_str(), "suspended");
    /// assert_eq!("suspended".parse::<RunStatus>(), Ok(RunStatus::Suspended));
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Suspended => "suspended",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    /// Reads what [`RunStatus::as_str`] writes; the error names the text and the statuses.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "suspended" => RunStatus::Suspended,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            other => {
                return Err(format!(
                    "unknown run status {other:?} (one of queued, running, suspended, completed, failed, cancelled)"
                ));
            }
        })
    }
}

/// A question a run is waiting on.
///
/// `question` says where the question stands in the flow: the names of the nested flows
/// around it and the index of each parallel branch it is in, then the asking step's name,
/// joined by `/` (`review` for a question at the top level, `1/review` in a group's second
/// branch, `legal/0/sign` in the first branch of a group in the nested flow `legal`). An answer
/// names it (or, when no other pending question has the same step, just the step).
///
/// ```
/// use orchflow::store::PendingInput;
/// let p = PendingInput::new("1/review", "review", "publish?");
/// assert_eq!(p.question, "1/review");
/// assert!(p.is_named("review") && p.is_named("1/review") && !p.is_named("0/review"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInput {
    /// Where the question stands (see above); unique among a run's pending questions.
    #[serde(default)]
    pub question: String,
    /// The step that asked.
    pub step: String,
    /// The question.
    pub prompt: String,
    /// The JSON Schema of the answer's type, for a question that asks for a typed answer
    /// ([`human::ask_typed`](crate::human::ask_typed)): its answer is JSON text of that type.
    /// `None` for a free-text answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<serde_json::Value>>,
    /// Why the last answer given to this question was refused (it did not deserialise into the
    /// answer's type): the question was asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<str>>,
}

impl PendingInput {
    /// A pending question.
    pub fn new(
        question: impl Into<String>,
        step: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        PendingInput {
            question: question.into(),
            step: step.into(),
            prompt: prompt.into(),
            schema: None,
            error: None,
        }
    }

    /// Whether `name` names this question: its full `question` path, or its step's name.
    pub fn is_named(&self, name: &str) -> bool {
        self.question == name || self.step == name
    }
}

/// Reads `pending` as a list; a version 1 document has one question or `null`.
fn pending_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PendingInput>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Pending {
        List(Vec<PendingInput>),
        One(PendingInput),
    }
    Ok(match Option::<Pending>::deserialize(d)? {
        None => Vec::new(),
        Some(Pending::List(list)) => list,
        Some(Pending::One(one)) => vec![one],
    })
    .map(|mut list: Vec<PendingInput>| {
        for p in &mut list {
            if p.question.is_empty() {
                p.question.clone_from(&p.step);
            }
        }
        list
    })
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
    /// The questions a suspended run waits on (empty otherwise).
    #[serde(default, deserialize_with = "pending_list")]
    pub pending: Vec<PendingInput>,
    /// The output of a completed run, as JSON.
    pub output: Option<serde_json::Value>,
    /// Why a failed run stopped.
    pub error: Option<String>,
    /// When the run was created.
    #[serde(with = "crate::json::instant")]
    pub created_at: SystemTime,
    /// When the document was last written.
    #[serde(with = "crate::json::instant")]
    pub updated_at: SystemTime,
    /// Why a runnable run has not started: written by a worker that does not know its flow
    /// ([`RunQueue::mark_waiting`]), cleared when a worker claims it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Where the run was forked from, and the runs forked from it ([`crate::replay`]).
    #[serde(default, skip_serializing_if = "Lineage::is_empty")]
    pub lineage: Lineage,
}

impl RunDocument {
    /// Whether the document says the run made progress since it was created: it stopped
    /// (suspended, completed or failed) or was resumed. Such a run has journal entries, so a
    /// store that finds no journal for it reports [`StoreError::MissingJournal`] rather than
    /// restart the run from its input.
    pub fn made_progress(&self) -> bool {
        self.status != RunStatus::Running || self.updated_at != self.created_at
    }
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
    /// An answer to a pending question, given to a suspended run. The question takes it when
    /// it is asked again on replay; the entry whose `answered` names the question retires it.
    Answer {
        /// The question answered ([`PendingInput::question`]).
        question: String,
        /// The answer.
        text: String,
    },
}

/// One append to a run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1 for the first entry of the run; each entry's is the previous one's plus one.
    pub seq: u64,
    /// What was reached.
    pub record: PointRecord,
    /// The traces of the attempts that ended since the previous entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<StepTrace>,
    /// The questions whose answers were used by steps whose outputs this entry (or an earlier
    /// one) saves: their [`PointRecord::Answer`]s are not handed out again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answered: Vec<String>,
    /// The run's shared state at this entry, when the run saves it
    /// ([`Durable::saving_state`](crate::Durable::saving_state)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
}

impl JournalEntry {
    /// An entry with no traces and no answered questions.
    pub fn new(seq: u64, record: PointRecord) -> Self {
        JournalEntry {
            seq,
            record,
            traces: Vec::new(),
            answered: Vec::new(),
            state: None,
        }
    }
}

/// A run as a store returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The document.
    pub document: RunDocument,
    /// The journal, in order.
    pub journal: Vec<JournalEntry>,
}

/// Why a store could not do what was asked. Every variant names where (its `location`: a file
/// path for [`JsonCheckpointStore`], a database URL with the run for a database store, or the
/// run) and the problem; nothing here is ever a panic, and a store never leaves a half-written
/// document.
///
/// A `location` is text, not a path, so that stores that are not files fit: it is written as
/// the store's users know the place (`/var/runs/<run_id>.json`,
/// `sqlite:/var/runs.db (run <run_id>, journal)`), and every message starts with it or with
/// the operation on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the storage failed (a file, a database connection).
    #[error("{op} {location}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `fsync`, `rename`, `create directory`).
        op: &'static str,
        /// Where: the file, or the database and run.
        location: String,
        /// The operating system's (or driver's) error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data is not a valid checkpoint of the expected shape (truncated, corrupt, or not
    /// ours).
    #[error("{location} is not a valid checkpoint: {reason}")]
    Corrupt {
        /// Where: the file, or the database and run.
        location: String,
        /// What is wrong, with the position when known.
        reason: String,
    },
    /// A document of another format version.
    #[error(
        "{location} has checkpoint format version {found}; this orchflow reads versions {oldest} to {expected}"
    )]
    UnsupportedVersion {
        /// Where the document is.
        location: String,
        /// The version in the document.
        found: u32,
        /// The newest version this code reads (the one it writes).
        expected: u32,
        /// The oldest version this code reads.
        oldest: u32,
    },
    /// The document says the run made progress, but its journal is gone: resuming would run
    /// finished steps again, so the run is not loaded.
    #[error(
        "{location} is missing: the run's document says it made progress, so its journal must exist"
    )]
    MissingJournal {
        /// Where the journal should be.
        location: String,
    },
    /// No checkpoint for this run.
    #[error("no checkpoint for run {0}")]
    NotFound(RunId),
    /// A journal append for a run that has no document.
    #[error("run {0} has no document: create it before appending to its journal")]
    NoDocument(RunId),
    /// A new run was given the id of a run the store already has.
    #[error("run id {0} is taken: the store already has a run with this id")]
    RunExists(RunId),
    /// Another handle holds the run's claim: one writer per run.
    #[error("run {run_id} is being written by {holder}; one writer per run")]
    RunBusy {
        /// The run.
        run_id: RunId,
        /// Who holds it, as far as the store knows (`another task of this process`,
        /// `process 4242`).
        holder: String,
    },
    /// A write whose claim the store no longer honours (released, or passed to another
    /// writer): refused, nothing written.
    #[error("run {run_id}: the claim with fencing token {token} is not held; the write is refused")]
    ClaimLost {
        /// The run.
        run_id: RunId,
        /// The claim's fencing token.
        token: u64,
    },
    /// A journal entry whose `seq` does not follow the journal's last: refused, nothing written.
    #[error("run {run_id}: journal entry seq {found} does not follow seq {last}; refused")]
    OutOfSequence {
        /// The run.
        run_id: RunId,
        /// The journal's last seq (0 when empty).
        last: u64,
        /// The refused entry's seq.
        found: u64,
    },
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

impl StoreError {
    /// Where the error happened, for the variants that name a place (`Io`, `Corrupt`,
    /// `UnsupportedVersion`, `MissingJournal`).
    pub fn location(&self) -> Option<&str> {
        match self {
            StoreError::Io { location, .. }
            | StoreError::Corrupt { location, .. }
            | StoreError::UnsupportedVersion { location, .. }
            | StoreError::MissingJournal { location } => Some(location),
            _ => None,
        }
    }
}

/// A writer's exclusive hold on one run, from [`CheckpointStore::create`] or
/// [`CheckpointStore::claim`]. Every write to the run shows it; dropping it releases the run.
///
/// A claim is honoured through the store value that took it and that value's clones: another
/// handle on the same storage (another `open` of the same database or directory) counts as
/// another writer, and lease stores refuse the claim's writes through it.
///
/// ```
/// use orchflow::store::{CheckpointStore, StoreError};
/// use orchflow::{flow, step, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// let store = MemoryStore::default();
/// let run = flow! { inc }.durable(store.clone()).run(1).await;
///
/// let claim = store.claim(run.run_id).await.unwrap();
/// assert_eq!(claim.run_id(), run.run_id);
/// let second = store.claim(run.run_id).await;
/// assert!(matches!(second, Err(StoreError::RunBusy { .. })));
/// drop(claim);
/// assert!(store.claim(run.run_id).await.is_ok());
/// # }
/// ```
pub struct Claim {
    run_id: RunId,
    token: u64,
    hold: Option<Box<dyn ClaimHold>>,
}

/// What a store keeps alive while a [`Claim`] is held (a lock, a lease's heartbeat); released
/// when the claim is dropped.
pub trait ClaimHold: Send + Sync + 'static {
    /// Gives the run up. Called once, from the claim's `drop`: it must not block for long.
    fn release(self: Box<Self>);
}

impl Claim {
    /// A claim of `run_id` with fencing token `token`; `hold` is released when it is dropped.
    /// For store implementations.
    pub fn new(run_id: RunId, token: u64, hold: impl ClaimHold) -> Self {
        Claim {
            run_id,
            token,
            hold: Some(Box::new(hold)),
        }
    }

    /// The claimed run.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The fencing token: greater than that of every earlier claim of the run.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Ends the claim without its hold's [`release`](ClaimHold::release), for a store whose
    /// write has given the run up itself (see [`CheckpointStore::put_last_document`]). For
    /// store implementations.
    pub fn released(mut self) {
        drop(self.hold.take());
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            hold.release();
        }
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("run_id", &self.run_id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Where durable runs keep their progress. Implementations must make every write durable
/// before its future completes (a crash after `Ok` never loses it), never leave a partial
/// document behind, and keep one writer per run (see the [module docs](self)): a write is
/// accepted only with the run's current [`Claim`], and an append only when its `seq` is the
/// journal's last plus one.
///
/// The trait is object safe (`dyn CheckpointStore`); its futures are boxed, which is negligible
/// next to the `fsync` each write costs.
///
/// A store shows it keeps this contract by running the conformance suite in its tests:
/// `orchflow_core::store_conformance!(fixture)` expands to one test per case of
/// `orchflow_core::store::conformance` (see that module's source for the fixture it needs).
pub trait CheckpointStore: Send + Sync {
    /// Creates a run from its first document, with an empty journal, and claims it. Fails with
    /// [`StoreError::RunExists`] (writing nothing) when the store has a run with this id.
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim>;

    /// Claims an existing run for writing. Fails with [`StoreError::RunBusy`] while another
    /// handle holds it, and with [`StoreError::NotFound`] when there is no such run.
    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim>;

    /// Replaces a claimed run's document, atomically. A document of another run than the
    /// claim's is refused with [`StoreError::ClaimLost`]: a claim covers its own run only.
    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()>;

    /// Writes a claimed run's last document and gives the claim up: what
    /// [`put_document`](Self::put_document) and then dropping the claim do, which is the
    /// default. A durable run writes its final document (completed, failed, suspended) with
    /// it. The claim is given up whether the write succeeds or not; refused as `put_document`
    /// is, writing nothing. Stores that can write the document and release the run in one
    /// write override it (ending the claim with [`Claim::released`] once that write is
    /// committed).
    fn put_last_document<'a>(
        &'a self,
        claim: Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let written = self.put_document(&claim, document).await;
            drop(claim);
            written
        })
    }

    /// Appends an entry to a claimed run's journal, durably. Refused with
    /// [`StoreError::OutOfSequence`] unless `entry.seq` is the last entry's plus one.
    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()>;

    /// Reads a run back: `Ok(None)` if the store has no such run. Needs no claim.
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>>;

    /// A run's document alone, without its journal: `Ok(None)` if the store has no such run.
    /// Needs no claim. Stores override it to read no journal; the default loads the run.
    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        Box::pin(async move { Ok(self.load(run_id).await?.map(|c| c.document)) })
    }

    /// The documents of the runs `query` asks for, newest first, one page; and the runs that
    /// could not be read (a corrupt document does not hide the others). Needs no claim.
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing>;

    /// The journal entries of a run with a `seq` greater than `after` (0 for all), in order;
    /// `Ok(None)` if the store has no such run. Needs no claim. Stores that can read part of a
    /// journal override it; the default loads the whole run.
    fn journal<'a>(
        &'a self,
        run_id: RunId,
        after: u64,
    ) -> StoreFuture<'a, Option<Vec<JournalEntry>>> {
        Box::pin(async move {
            Ok(self
                .load(run_id)
                .await?
                .map(|c| c.journal.into_iter().filter(|e| e.seq > after).collect()))
        })
    }

    /// The traces of every attempt of a run, in the order they were journaled; `Ok(None)` if
    /// the store has no such run. Needs no claim.
    fn traces<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Vec<StepTrace>>> {
        Box::pin(async move {
            Ok(self
                .journal(run_id, 0)
                .await?
                .map(|j| j.into_iter().flat_map(|e| e.traces).collect()))
        })
    }

    /// The questions the suspended runs among those `query` asks for wait on (its status
    /// filter aside), newest run first. Needs no claim.
    fn questions<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, Vec<Question>> {
        Box::pin(async move {
            let query = query.clone().status(RunStatus::Suspended);
            Ok(Question::all_of(&self.list_runs(&query).await?))
        })
    }

    /// How many of the runs `query` asks for have each status, under its flow, time and text
    /// filters (its status, cursor and limit aside). Needs no claim. Stores that can count
    /// without reading documents override it; the default lists the runs.
    fn count_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, StatusCounts> {
        Box::pin(async move {
            let mut all = query.clone();
            (all.status, all.limit, all.after) = (None, None, None);
            Ok(all.tally(&self.list_runs(&all).await?.runs))
        })
    }

    /// Keeps a flow's graph (with its nested flows) under its fingerprint, so that tools that
    /// do not have the flow's code can draw its runs. Writing the graph of a fingerprint the
    /// store already has changes nothing (a fingerprint names one structure). A durable run
    /// calls it before it creates its run. Needs no claim.
    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()>;

    /// The graph kept for `fingerprint` (16 hex digits, as documents store it), or `Ok(None)`.
    /// Needs no claim.
    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>>;

    /// Where a run's checkpoint lives, for messages (a file path, a table row, …).
    fn location(&self, run_id: RunId) -> String {
        format!("the checkpoint of run {run_id}")
    }
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<S> {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        (**self).create(document)
    }
    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        (**self).claim(run_id)
    }
    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        (**self).put_document(claim, document)
    }
    fn put_last_document<'a>(
        &'a self,
        claim: Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        (**self).put_last_document(claim, document)
    }
    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        (**self).append(claim, entry)
    }
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        (**self).load(run_id)
    }
    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        (**self).document(run_id)
    }
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        (**self).list_runs(query)
    }
    fn journal<'a>(
        &'a self,
        run_id: RunId,
        after: u64,
    ) -> StoreFuture<'a, Option<Vec<JournalEntry>>> {
        (**self).journal(run_id, after)
    }
    fn traces<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Vec<StepTrace>>> {
        (**self).traces(run_id)
    }
    fn questions<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, Vec<Question>> {
        (**self).questions(query)
    }
    fn count_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, StatusCounts> {
        (**self).count_runs(query)
    }
    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        (**self).put_graph(graph)
    }
    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        (**self).graph(fingerprint)
    }
    fn location(&self, run_id: RunId) -> String {
        (**self).location(run_id)
    }
}
