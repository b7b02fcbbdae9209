//! [`SqliteStore`]: durable runs in one SQLite file, for one process or several on one machine.
//!
//! Invariants:
//! * One file, in write-ahead-log mode with `synchronous = FULL`: a save is acknowledged only
//!   after the transaction that holds it committed, so it survives a crash or a power loss.
//! * Runs are rows of `runs` (the document as JSON, and the columns listings filter and order
//!   on), journal entries rows of `journal`, each with its traces (a JSON array). Saving is O(1)
//!   in the length of a run: an append inserts one row, a document write updates one row.
//! * All handles on one file in a process share one writer thread, the only connection that
//!   writes; it commits every request it finds queued in one transaction (group commit), and a
//!   second thread answers the requests of large batches once committed. A background
//!   connection copies the WAL into the database file (passive checkpoints), off the path of
//!   the saves. Reads run on read-only connections on tokio's blocking pool, never
//!   on a runtime worker.
//! * Dropping the last handle of a file in a process (claims and clones keep it) commits
//!   everything queued on its writer, claim releases included, and stops the writer; the drop
//!   blocks for that commit, at most five seconds (past that the disk is taken as wedged, and
//!   what was not committed is lost as in a crash). A process that drops its stores before it
//!   exits (returning from `main` does) leaves no run claimed.
//! * A claim is a lease in the run's row: owner (the handle), a fencing token that grows with
//!   every claim, and an expiry. Every write checks them in the transaction that writes; a
//!   handle renews all its leases with one statement every third of its ttl; a lease whose
//!   holder died (stopped renewing) expires and the run can be claimed again.

#[doc(hidden)]
pub mod damage;
mod read;
mod schema;
mod writer;

pub use schema::{OpenError, SCHEMA_VERSION};

use orchflow_core::RunId;
use orchflow_core::StepTrace;
use orchflow_core::graph::FlowGraph;
use orchflow_core::store::{
    Checkpoint, CheckpointStore, Claim, ClaimHold, FlowKey, JournalEntry, RunDocument, RunListing,
    RunQuery, RunQueue, RunStatus, StatusCounts, StoreError, StoreFuture,
};
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use writer::{DocRow, Drained, EntryRow, Op, Owner, Reply, Writer};

/// The lease time to live of [`SqliteStore::open`].
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// Idle read-only connections kept per file.
const IDLE_READERS: usize = 4;

/// A checkpoint store in one SQLite file (see the [crate docs](crate)).
///
/// Clones share the handle: the same lease owner, so a claim taken through one clone can be
/// written through another. Each [`open`](SqliteStore::open) makes a new handle, a writer of its
/// own as far as claims go, even on a file this process already has open: a claim is written
/// through the handle that took it (or a clone of it), and another handle's write with it is
/// refused with [`StoreError::ClaimLost`].
///
/// ```
/// use orchflow::{flow, step};
/// use orchflow::store::{CheckpointStore, RunStatus};
/// use orchflow_sqlite::SqliteStore;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// #[step] async fn plan(goal: String) -> Vec<String> { vec![goal.clone(), format!("ship {goal}")] }
/// #[step] async fn count(tasks: Vec<String>) -> usize { tasks.len() }
///
/// let path = dir.path().join("runs.db");
/// let store = SqliteStore::open(&path)?;
/// let f = flow! { plan => count };
/// let run = f.durable(store.clone()).run("docs".to_string()).await;
/// assert_eq!(run.output, Some(2));
///
/// // Another process (here: another handle) reads it back and resumes it: a completed run
/// // gives its output again without running a step.
/// let reopened = SqliteStore::open(&path)?;
/// let saved = reopened.load(run.run_id).await?.expect("saved");
/// assert_eq!(saved.document.status, RunStatus::Completed);
/// assert_eq!(saved.journal.len(), 2, "one entry per step");
/// let again = f.durable(reopened).resume(run.run_id).await?;
/// assert_eq!(again.output, Some(2));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.handle.file.path)
            .field("owner", &self.handle.owner.id)
            .finish_non_exhaustive()
    }
}

/// How to open a [`SqliteStore`]: the lease time to live.
///
/// ```
/// use std::time::Duration;
/// use orchflow_sqlite::SqliteOptions;
/// # fn main() -> Result<(), orchflow_sqlite::OpenError> {
/// # let dir = tempfile::tempdir().unwrap();
/// let store = SqliteOptions::new().lease_ttl(Duration::from_secs(5)).open(dir.path().join("runs.db"))?;
/// assert_eq!(store.lease_ttl(), Duration::from_secs(5));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    lease_ttl: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

impl SqliteOptions {
    /// The defaults: leases of [`DEFAULT_LEASE_TTL`].
    pub fn new() -> Self {
        SqliteOptions::default()
    }

    /// How long a claim lasts without being renewed: the handle renews its leases every third
    /// of it, and a claim whose holder died is free again after at most this long. Durations
    /// under a millisecond are taken as one millisecond.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Opens (creating if needed) the store in the file at `path`, as
    /// [`SqliteStore::open`] does, with these options.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        let file = File::open(path.as_ref())?;
        let id = uuid::Uuid::new_v4().to_string();
        let owner = Arc::new(Owner {
            holder: format!("store handle {id} ({})", this_process()),
            id,
            ttl: self.lease_ttl,
        });
        file.writer.send(
            Op::Register {
                owner: owner.id.clone(),
                ttl: owner.ttl,
            },
            None,
        );
        Ok(SqliteStore {
            handle: Arc::new(Handle { file, owner }),
        })
    }
}

/// `process <pid> on <host>`, as a `RunBusy` names a holder.
fn this_process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok());
    match host {
        Some(host) => format!("process {} on {host}", std::process::id()),
        None => format!("process {}", std::process::id()),
    }
}

/// One store handle: a lease owner on a file.
struct Handle {
    file: Arc<File>,
    owner: Arc<Owner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.file.writer.send(
            Op::Unregister {
                owner: self.owner.id.clone(),
            },
            None,
        );
    }
}

/// An open file: its writer thread and its idle readers, shared by the handles of this process.
struct File {
    path: PathBuf,
    /// `sqlite:<path>`.
    location: String,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// The fingerprints whose graphs this process wrote to the file (each is written once).
    graphs: Mutex<std::collections::HashSet<u64>>,
}

/// A file this process has open (or had, while its writer drains).
struct Opened {
    file: Weak<File>,
    drained: Arc<Drained>,
}

/// The files this process has open, by canonical path.
fn files() -> &'static Mutex<HashMap<PathBuf, Opened>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Opened>>> = OnceLock::new();
    FILES.get_or_init(Default::default)
}

/// `path` with its directory made absolute and symbolic links resolved, when it exists.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map_or_else(|_| path.to_path_buf(), |d| d.join(name))
        }
        _ => path.to_path_buf(),
    }
}

impl File {
    fn open(path: &Path) -> Result<Arc<File>, OpenError> {
        let path = canonical(path);
        let mut files = files().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(opened) = files.get(&path) {
            if let Some(file) = opened.file.upgrade() {
                return Ok(file);
            }
            // Its last handle was dropped and its writer may still be committing what was
            // queued (a release): the new writer's requests come after those.
            opened.drained.wait(writer::DRAIN_BOUND);
        }
        let conn = schema::open_writer(&path)?;
        let location = format!("sqlite:{}", path.display());
        let checkpointer = schema::open_checkpointer(&path)?;
        let writer =
            Writer::start(conn, checkpointer, location.clone()).map_err(|e| OpenError::Io {
                op: "start the writer thread of",
                path: path.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        let file = Arc::new(File {
            path: path.clone(),
            location,
            writer,
            readers: Mutex::new(Vec::new()),
            graphs: Mutex::new(std::collections::HashSet::new()),
        });
        files.retain(|_, f| f.file.strong_count() > 0 || !f.drained.is_set());
        files.insert(
            path,
            Opened {
                file: Arc::downgrade(&file),
                drained: Arc::clone(&file.writer.drained),
            },
        );
        Ok(file)
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path).map_err(|e| StoreError::Io {
                op: "open",
                location: self.location.clone(),
                source: std::io::Error::other(e),
            }),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Counters of a file's writer since it was opened in this process, for tests and benchmarks.
/// They are read one by one: while the writer commits they may disagree by that commit.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Requests applied in them.
    pub requests: u64,
    /// Time the writer spent applying requests, before the commits.
    pub applying: Duration,
    /// Time the writer spent committing (writing the WAL and syncing it).
    pub committing: Duration,
    /// The requests of [`requests`](WriterStats::requests), by how many commits each waited
    /// for from being queued to being answered, its own included: `waited[n]` counts those that
    /// waited for `n` commits, the last bucket those that waited for 9 or more. A request
    /// queued while the writer was between commits waits for 1 (its own), one queued during a
    /// commit for 2 (that one and its own); more only when more than a batch (1,024 requests)
    /// was queued ahead of it, or when the sending thread was held up between reading the
    /// commit count and queuing the request (the commits completed meanwhile are counted).
    /// Never fewer than the commits it waited for once queued; `waited[0]` is always 0.
    pub waited: [u64; writer::WAITED_BUCKETS],
    /// The most commits one request waited for.
    pub waited_max: u64,
}

/// What a [`SqliteStore`] claim keeps: the handle (whose heartbeat renews the lease) and what
/// to release.
struct SqliteHold {
    handle: Arc<Handle>,
    run_id: RunId,
    token: u64,
}

impl ClaimHold for SqliteHold {
    /// Queues the release on the writer's ordered channel: it never blocks, and a claim asked
    /// after it (through any handle of this process) is applied after it.
    fn release(self: Box<Self>) {
        self.handle.file.writer.send(
            Op::Release {
                run_id: self.run_id,
                token: self.token,
                owner: self.handle.owner.id.clone(),
            },
            None,
        );
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`, with leases of
    /// [`DEFAULT_LEASE_TTL`]. Handles opened on the same file in one process share its writer.
    ///
    /// Fails with an [`OpenError`] naming the file when it cannot be opened or written, is not
    /// a SQLite database, is a database of something else, or has a newer schema; such a file
    /// is left as it is. Opening does blocking file I/O: call it at start-up, or from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        SqliteOptions::default().open(path)
    }

    /// The builder of [`SqliteOptions`].
    pub fn options() -> SqliteOptions {
        SqliteOptions::default()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.handle.file.path
    }

    /// The time to live of this handle's leases.
    pub fn lease_ttl(&self) -> Duration {
        self.handle.owner.ttl
    }

    /// Waits until every write this process queued on the file before the call is committed,
    /// claim releases included (a dropped [`Claim`] is released in the background): once it
    /// returns, the run's release is visible to every connection. For handing a run to another
    /// process while this one keeps its store; dropping the file's last handle does the same
    /// (see the [crate docs](crate)), so only a process that exits without dropping its stores
    /// (`std::process::exit`, a store in a `static`) needs it before exiting, or its queued
    /// releases are lost and the runs stay claimed until their leases expire. Fails with
    /// [`StoreError::Io`] when the commit fails.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// use orchflow_sqlite::SqliteStore;
    /// #[step] async fn inc(x: u32) -> u32 { x + 1 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("runs.db"))?;
    /// let _run_id = flow! { inc }.durable(store.clone()).submit(1).await?;
    /// store.flush().await?; // the submit's claim is released for every process now
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self.request(Op::Flush).await? {
            Reply::Done => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }

    /// The writer's counters for this file in this process.
    #[doc(hidden)]
    pub fn stats(&self) -> WriterStats {
        let c = &self.handle.file.writer.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            applying: Duration::from_nanos(c.apply_nanos.load(Ordering::Relaxed)),
            committing: Duration::from_nanos(c.commit_nanos.load(Ordering::Relaxed)),
            waited: std::array::from_fn(|i| c.waited[i].load(Ordering::Relaxed)),
            waited_max: c.waited_max.load(Ordering::Relaxed),
        }
    }

    fn stopped(&self) -> StoreError {
        StoreError::Io {
            op: "write",
            location: self.handle.file.location.clone(),
            source: std::io::Error::other("the store's writer thread has stopped"),
        }
    }

    /// Sends `op` to the writer and waits for its commit.
    async fn request(&self, op: Op) -> Result<Reply, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.handle.file.writer.send(op, Some(tx)) {
            return Err(self.stopped());
        }
        let writer::Answer { result, op } = rx.await.map_err(|_| self.stopped())?;
        // Freed here, by a thread of the runtime that made it, rather than by the writer.
        drop(op);
        result
    }

    /// Writes `document` under `claim`; `last` releases the lease with it.
    async fn write_document(
        &self,
        claim: &Claim,
        document: &RunDocument,
        last: bool,
    ) -> Result<(), StoreError> {
        if document.run_id != claim.run_id() {
            return Err(StoreError::ClaimLost {
                run_id: claim.run_id(),
                token: claim.token(),
            });
        }
        let row = DocRow::of(document)?;
        let op = Op::PutDocument {
            token: claim.token(),
            owner: Arc::clone(&self.handle.owner),
            row,
            last,
        };
        match self.request(op).await? {
            Reply::Done => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }

    fn unexpected(&self, reply: Reply) -> StoreError {
        StoreError::Io {
            op: "write",
            location: self.handle.file.location.clone(),
            source: std::io::Error::other(format!("unexpected reply from the writer: {reply:?}")),
        }
    }

    fn claim_of(&self, run_id: RunId, token: u64) -> Claim {
        Claim::new(
            run_id,
            token,
            SqliteHold {
                handle: Arc::clone(&self.handle),
                run_id,
                token,
            },
        )
    }

    /// Runs `f` on a read-only connection, on tokio's blocking pool (inline outside a runtime).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let file = Arc::clone(&self.handle.file);
        let job = move || {
            let mut conn = file.reader()?;
            let result = f(&mut conn, &file.location);
            file.give_back(conn);
            result
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(|e| StoreError::Io {
                    op: "read",
                    location: self.handle.file.location.clone(),
                    source: std::io::Error::other(e),
                })?,
            Err(_) => job(),
        }
    }
}

/// Runs `f` in one read transaction on `conn`.
fn snapshot<T>(
    conn: &mut Connection,
    location: &str,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction().map_err(|e| StoreError::Io {
        op: "read",
        location: location.to_string(),
        source: std::io::Error::other(e),
    })?;
    let result = f(&tx);
    // A read transaction has nothing to commit; ending it cannot lose data.
    let _ = tx.finish();
    result
}

/// A value serialised for a column, or the error naming what it is.
fn json(
    what: &'static str,
    value: Result<String, serde_json::Error>,
) -> Result<String, StoreError> {
    value.map_err(|source| StoreError::Serialize { what, source })
}

fn entry_row(entry: &JournalEntry) -> Result<EntryRow, StoreError> {
    Ok(EntryRow {
        seq: entry.seq,
        record: json("journal record", serde_json::to_string(&entry.record))?,
        answered: if entry.answered.is_empty() {
            None
        } else {
            Some(json(
                "answered questions",
                serde_json::to_string(&entry.answered),
            )?)
        },
        state: entry
            .state
            .as_ref()
            .map(|s| json("run state", serde_json::to_string(s)))
            .transpose()?,
        traces: if entry.traces.is_empty() {
            None
        } else {
            Some(json("step traces", serde_json::to_string(&entry.traces))?)
        },
    })
}

impl CheckpointStore for SqliteStore {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let row = DocRow::of(document)?;
            let owner = Arc::clone(&self.handle.owner);
            match self.request(Op::Create { row, owner }).await? {
                Reply::Token(token) => Ok(self.claim_of(document.run_id, token)),
                other => Err(self.unexpected(other)),
            }
        })
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let owner = Arc::clone(&self.handle.owner);
            match self.request(Op::Claim { run_id, owner }).await? {
                Reply::Token(token) => Ok(self.claim_of(run_id, token)),
                other => Err(self.unexpected(other)),
            }
        })
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.write_document(claim, document, false))
    }

    /// Writes the document and releases the lease in one statement: one request instead of a
    /// document and then a release. When the write fails, the claim is dropped, which queues
    /// its release as usual.
    fn put_last_document<'a>(
        &'a self,
        claim: Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let written = self.write_document(&claim, document, true).await;
            if written.is_ok() {
                claim.released();
            }
            written
        })
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let op = Op::Append {
                run_id: claim.run_id(),
                token: claim.token(),
                owner: Arc::clone(&self.handle.owner),
                entry: entry_row(entry)?,
            };
            match self.request(op).await? {
                Reply::Done => Ok(()),
                other => Err(self.unexpected(other)),
            }
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(self.read(move |conn, file| {
            snapshot(conn, file, |conn| {
                let Some(document) = read::load_document(conn, file, run_id)? else {
                    return Ok(None);
                };
                let journal = read::entries(conn, file, run_id, 0)?;
                Ok(Some(Checkpoint { document, journal }))
            })
        }))
    }

    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        Box::pin(self.read(move |conn, file| read::load_document(conn, file, run_id)))
    }

    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        let query = query.clone();
        Box::pin(self.read(move |conn, file| read::list(conn, file, &query)))
    }

    fn journal<'a>(
        &'a self,
        run_id: RunId,
        after: u64,
    ) -> StoreFuture<'a, Option<Vec<JournalEntry>>> {
        Box::pin(self.read(move |conn, file| {
            snapshot(conn, file, |conn| {
                if !read::exists(conn, file, run_id)? {
                    return Ok(None);
                }
                read::entries(conn, file, run_id, after).map(Some)
            })
        }))
    }

    fn traces<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Vec<StepTrace>>> {
        Box::pin(self.read(move |conn, file| {
            snapshot(conn, file, |conn| {
                if !read::exists(conn, file, run_id)? {
                    return Ok(None);
                }
                read::traces(conn, file, run_id).map(Some)
            })
        }))
    }

    fn count_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, StatusCounts> {
        let query = query.clone();
        Box::pin(self.read(move |conn, file| read::count(conn, file, &query)))
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let known = |fingerprint| {
                let graphs = self.handle.file.graphs.lock();
                graphs
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&fingerprint)
            };
            if known(graph.fingerprint) {
                return Ok(());
            }
            let op = Op::PutGraph {
                fingerprint: format!("{:016x}", graph.fingerprint),
                name: graph.name.to_string(),
                graph: json("flow graph", serde_json::to_string(graph))?,
            };
            match self.request(op).await? {
                Reply::Done => {}
                other => return Err(self.unexpected(other)),
            }
            let mut graphs = self
                .handle
                .file
                .graphs
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            graphs.insert(graph.fingerprint);
            Ok(())
        })
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        let fingerprint = fingerprint.to_string();
        Box::pin(self.read(move |conn, file| read::graph(conn, file, &fingerprint)))
    }

    fn location(&self, run_id: RunId) -> String {
        format!("{} (run {run_id})", self.handle.file.location)
    }
}

/// Runs are taken oldest first; a claim from [`claim_next`](RunQueue::claim_next) is a lease
/// like any other, and a run whose lease expired (its worker died) is runnable again.
///
/// ```
/// use orchflow::store::{FlowKey, RunQueue, RunStatus};
/// use orchflow::{flow, step};
/// use orchflow_sqlite::SqliteStore;
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("runs.db"))?;
/// let f = flow! { inc };
/// let run_id = f.durable(store.clone()).submit(1).await?;
/// let known = [FlowKey::new(f.name(), f.fingerprint())];
/// let claim = store.claim_next(&known).await?.expect("a queued run");
/// assert_eq!(claim.run_id(), run_id);
/// let done = f.durable(store.clone()).resume_claimed(claim).await?;
/// assert_eq!(done.output, Some(2));
/// assert!(store.claim_next(&known).await?.is_none());
/// # Ok(()) }
/// ```
impl RunQueue for SqliteStore {
    fn claim_next<'a>(&'a self, flows: &'a [FlowKey]) -> StoreFuture<'a, Option<Claim>> {
        Box::pin(async move {
            if flows.is_empty() {
                return Ok(None);
            }
            let op = Op::ClaimNext {
                flows: flows.to_vec(),
                owner: Arc::clone(&self.handle.owner),
            };
            match self.request(op).await? {
                Reply::Next(next) => Ok(next.map(|(run_id, token)| self.claim_of(run_id, token))),
                other => Err(self.unexpected(other)),
            }
        })
    }

    fn mark_waiting<'a>(&'a self, flows: &'a [FlowKey], reason: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let op = Op::MarkWaiting {
                flows: flows.to_vec(),
                reason: reason.to_string(),
            };
            match self.request(op).await? {
                Reply::Count(n) => Ok(n),
                other => Err(self.unexpected(other)),
            }
        })
    }

    fn cancel<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, RunStatus> {
        Box::pin(async move {
            match self.request(Op::Cancel { run_id }).await? {
                Reply::Status(status) => Ok(status),
                other => Err(self.unexpected(other)),
            }
        })
    }
}
