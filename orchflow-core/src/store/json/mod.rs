//! [`JsonCheckpointStore`]: a checkpoint store on the file system, one versioned JSON document
//! per run and an append-only JSON-lines journal beside it (the format is described on the
//! type).
//!
//! The store is split by concern, each file stating its own invariants:
//!
//! * this file: the store value, its [`CheckpointStore`] implementation, and how file I/O is
//!   run (on tokio's blocking pool, at most [`MAX_PARALLEL_IO`] at a time, retried once
//!   journal handles are closed when descriptors run out);
//! * `claim`: sessions, `.claim` files and the in-memory slots of claimed runs;
//! * `files`: atomic document writes, directory syncs, refusal of special files;
//! * `journal`: appends, the last `seq`, the torn tail, parsing;
//! * `load`: reading a run back and listing the runs;
//! * `graphs`: flow graphs by fingerprint (`flows/<fingerprint>.json`).
//!
//! Invariants held here: every operation that can fail before its point of no return undoes
//! its partial work, so [`Inner::short_of_descriptors`] may run it again; an error names the
//! file it concerns as its `location` (the path as displayed).

mod claim;
mod files;
mod graphs;
mod journal;
mod load;
#[cfg(test)]
mod test_support;

use crate::context::RunId;
use crate::graph::FlowGraph;
use crate::store::{
    Checkpoint, CheckpointStore, Claim, JournalEntry, RunDocument, RunListing, RunQuery,
    StoreError, StoreFuture,
};
use claim::{Held, Session, check_token};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A [`CheckpointStore`] that keeps each run in a directory as human-readable JSON.
///
/// # On-disk format
///
/// For a run with id `<run_id>` (a hyphenated UUID), the directory holds:
///
/// * **`<run_id>.json`**, the document: a [`RunDocument`] as pretty-printed JSON followed by a
///   newline. Its fields are `format` (always `"orchflow-checkpoint"`), `version` (the format
///   version, currently `2`; version `1` is read too), `run_id`, `flow`, `fingerprint`, `shape`,
///   `input`, `status` (`"running"`, `"suspended"`, `"completed"` or `"failed"`), `pending` (a
///   list of `{"question", "step", "prompt"}`, empty unless suspended), `output`, `error`,
///   `created_at` and `updated_at` (`{"secs_since_epoch", "nanos_since_epoch"}`). A document of
///   another `format` is refused as corrupt, one of another `version` with
///   [`StoreError::UnsupportedVersion`].
/// * **`<run_id>.journal.jsonl`**, the journal: one [`JournalEntry`] per line, as compact JSON
///   terminated by `\n`, for example
///   `{"seq":1,"record":{"point":{"AfterPlan":3}},"traces":[…]}` or
///   `{"seq":2,"record":{"branch":{"group":"InGroup2","index":0,"value":"ok"}}}`. `seq` starts
///   at 1 and grows by one per line. The journal is only ever appended to. It is created (empty)
///   before the run's first document, so a document whose run made progress
///   ([`RunDocument::made_progress`]) without a journal is [`StoreError::MissingJournal`].
/// * **`<run_id>.claim`**, who writes the run (see *One writer per run*):
///   `{"session": <id or null>, "pid": <process id>, "token": <fencing token>}`.
///
/// and, for each store value that claims runs, **`.sessions/<id>.lock`**, locked while it lives.
///
/// # One writer per run
///
/// A [`Claim`] of a run is recorded in its `.claim` file under the id of the claiming store's
/// *session*: a file in `.sessions/` that the store holds an OS lock on (`flock`) for as long as
/// it lives. A claim is held while its session's lock is: another store (in this process or
/// another) that finds a claim naming a live session gets [`StoreError::RunBusy`]; one naming a
/// dead session (its process ended, even by `SIGKILL`: the kernel drops the lock) takes the run
/// over with the next fencing token. Claiming locks the `.claim` file only while it reads and
/// rewrites it, so two processes claiming at once are serialised and exactly one wins. Dropping
/// the claim marks the file free. No descriptor is held per claimed run: one per store for its
/// session, plus at most 16 cached journal handles.
///
/// Within a store value, each claimed run's last `seq` is kept in memory; an append whose `seq`
/// is not the next one is [`StoreError::OutOfSequence`], and a write with a released claim is
/// [`StoreError::ClaimLost`], both before anything is written. The lock is advisory and local:
/// a directory shared between machines (NFS) needs a store with leases instead.
///
/// # Durability
///
/// * Writing a document serialises it to a temporary file in the same directory
///   (`<run_id>.json.tmp.<pid>.<counter>`), writes it completely, `fsync`s it, renames it over
///   `<run_id>.json` (a new run's document is linked in place instead, so an existing one is
///   never replaced) and `fsync`s the directory. A reader (or a crash) sees the old document or
///   the new one, never a mix; on any error before the rename the temporary file is removed and
///   the old document stands. Every descriptor the write needs is opened before the rename: once
///   the new document is in place, the write reports success (a failing directory `fsync`
///   after it is logged), so the caller is never told a write failed that a later load shows.
/// * Appending writes the whole line with a single `write` to the journal, opened in append
///   mode, then `fdatasync`s it: one write and one sync per entry, whatever the length of the
///   run. A failed append is cut off again, so the journal never keeps an unacknowledged line.
/// * A crash in the middle of an append can leave a last line without its `\n`. That entry was
///   never acknowledged: loading ignores it, and the next claim of the run cuts it off first,
///   so the next line starts clean. A complete line that does not parse, or a `seq` that does
///   not follow the previous one, is reported as [`StoreError::Corrupt`] with its line number.
///
/// Temporary files left behind by a crash (`*.json.tmp.*`) are never read and can be deleted.
///
/// The store is cheap to clone: clones share the directory, the session and the open journal
/// handles. Its file I/O runs on tokio's blocking thread pool, at most 16 operations at a time,
/// so that many concurrent runs do not exhaust the process's descriptors; an operation that
/// still finds none free closes the cached journal handles and tries again.
///
/// ```
/// use orchflow_core::JsonCheckpointStore;
/// use orchflow_core::store::{
///     CheckpointStore, FORMAT, FORMAT_VERSION, JournalEntry, PointRecord, RunDocument, RunStatus,
/// };
/// use orchflow_core::RunId;
/// use std::time::{SystemTime, UNIX_EPOCH};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
/// let dir = std::env::temp_dir().join(format!("orchflow-doc-{}-{nanos}", std::process::id()));
/// let store = JsonCheckpointStore::new(&dir);
///
/// let run_id = RunId::new_v4();
/// let now = SystemTime::now();
/// let document = RunDocument {
///     format: FORMAT.to_string(),
///     version: FORMAT_VERSION,
///     run_id,
///     flow: "inc => inc".to_string(),
///     fingerprint: "0123456789abcdef".to_string(),
///     shape: "inc => inc".to_string(),
///     input: serde_json::json!(1),
///     status: RunStatus::Running,
///     pending: Vec::new(),
///     output: None,
///     error: None,
///     created_at: now,
///     updated_at: now,
///     waiting: None,
///     lineage: Default::default(),
/// };
/// let claim = store.create(&document).await?;
///
/// let entry = JournalEntry::new(1, PointRecord::Point(serde_json::json!({ "AfterInc": 2 })));
/// store.append(&claim, &entry).await?;
///
/// let checkpoint = store.load(run_id).await?.ok_or("the run was not saved")?;
/// assert_eq!(checkpoint.document, document);
/// assert_eq!(checkpoint.journal, vec![entry]);
/// assert!(store.document_path(run_id).ends_with(format!("{run_id}.json")));
/// assert!(store.journal_path(run_id).exists());
/// # drop(claim);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JsonCheckpointStore {
    inner: Arc<Inner>,
    /// Run journal appends on tokio's blocking pool instead of in place.
    pool_appends: bool,
}

/// How many file operations of one store run at once on the blocking pool.
const MAX_PARALLEL_IO: usize = 16;

/// How many journal handles one store keeps open between appends; past that, an append opens
/// and closes its journal.
const MAX_OPEN_JOURNALS: usize = 16;

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Makes temporary file names unique within the process.
    tmp_counter: AtomicU64,
    /// The session this store's claims are recorded under, made at the first claim.
    session: Mutex<Option<Arc<Session>>>,
    /// The runs this store claims. A slot's lock serialises the writes to its run; the map's
    /// lock is only held to find, add or remove a slot.
    claims: Mutex<HashMap<RunId, Arc<Mutex<Held>>>>,
    /// How many journal handles the slots hold.
    open_journals: AtomicUsize,
    /// Bounds the blocking file operations in flight.
    io: tokio::sync::Semaphore,
    /// The fingerprints whose graphs this store wrote or found (written once per process).
    graphs: Mutex<std::collections::HashSet<u64>>,
}

impl JsonCheckpointStore {
    /// A store keeping its files in `dir`. Does no I/O: the directory is created by the first
    /// run created.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let mut dir = dir.into();
        if dir.as_os_str().is_empty() {
            dir = PathBuf::from(".");
        }
        JsonCheckpointStore {
            inner: Arc::new(Inner {
                dir,
                tmp_counter: AtomicU64::new(0),
                session: Mutex::new(None),
                claims: Mutex::new(HashMap::new()),
                open_journals: AtomicUsize::new(0),
                io: tokio::sync::Semaphore::new(MAX_PARALLEL_IO),
                graphs: Mutex::new(std::collections::HashSet::new()),
            }),
            pool_appends: false,
        }
    }

    /// Where journal appends run. By default (`false`) an append and its `fdatasync` run in
    /// place: on a multi-thread runtime inside `tokio::task::block_in_place` (the worker hands
    /// its other tasks to another thread), on a current-thread runtime directly (its other tasks
    /// wait for the fsync). The saving run waits for its checkpoint either way, and a thread
    /// hop per save costs more than the write on a fast disk (two context switches: on the
    /// benchmark machine, about as much as the `fdatasync` itself). `true` sends each append to
    /// tokio's blocking pool, so a current-thread runtime keeps serving other tasks meanwhile.
    ///
    /// ```
    /// use orchflow::JsonCheckpointStore;
    /// let store = JsonCheckpointStore::new("checkpoints").appends_on_blocking_pool(true);
    /// # let _ = store;
    /// ```
    pub fn appends_on_blocking_pool(mut self, on: bool) -> Self {
        self.pool_appends = on;
        self
    }

    /// The directory the store keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where a run's document lives: `<dir>/<run_id>.json`.
    pub fn document_path(&self, run_id: RunId) -> PathBuf {
        self.inner.document_path(run_id)
    }

    /// Where a run's journal lives: `<dir>/<run_id>.journal.jsonl`.
    pub fn journal_path(&self, run_id: RunId) -> PathBuf {
        self.inner.journal_path(run_id)
    }

    /// Where a run's claim is recorded: `<dir>/<run_id>.claim`.
    pub fn claim_path(&self, run_id: RunId) -> PathBuf {
        self.inner.claim_path(run_id)
    }

    /// Runs blocking file I/O on tokio's blocking pool, at most [`MAX_PARALLEL_IO`] at a time; a
    /// task that cannot be joined (the runtime is shutting down) becomes an I/O error on `path`.
    /// Runs out of descriptors, closes the cached journal handles and tries again (see
    /// [`Inner::short_of_descriptors`]).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl Fn(&Arc<Inner>) -> Result<T, StoreError> + Send + 'static,
        op: &'static str,
        path: PathBuf,
    ) -> Result<T, StoreError> {
        let gone = |e: &dyn std::fmt::Display| StoreError::Io {
            op,
            location: location(&path),
            source: io::Error::other(e.to_string()),
        };
        let _permit = self.inner.io.acquire().await.map_err(|e| gone(&e))?;
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || inner.short_of_descriptors(|| f(&inner))).await {
            Ok(result) => result,
            Err(e) => Err(gone(&e)),
        }
    }
}

impl CheckpointStore for JsonCheckpointStore {
    fn location(&self, run_id: RunId) -> String {
        location(&self.document_path(run_id))
    }

    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let bytes = document_bytes(document)?;
            let run_id = document.run_id;
            self.blocking(
                move |inner| Inner::take_claim(inner, run_id, Some(&bytes)),
                "write",
                self.document_path(run_id),
            )
            .await
        })
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            self.blocking(
                move |inner| Inner::take_claim(inner, run_id, None),
                "write",
                self.claim_path(run_id),
            )
            .await
        })
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let bytes = document_bytes(document)?;
            let slot = self.inner.held(claim)?;
            let (run_id, token) = (claim.run_id(), claim.token());
            if document.run_id != run_id {
                return Err(StoreError::ClaimLost { run_id, token });
            }
            self.blocking(
                move |inner| {
                    let held = lock(&slot);
                    check_token(&held, run_id, token)?;
                    inner.write_document(run_id, &bytes)
                },
                "write",
                self.document_path(run_id),
            )
            .await
        })
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut line = serde_json::to_vec(entry).map_err(|source| StoreError::Serialize {
                what: "journal entry",
                source,
            })?;
            line.push(b'\n');
            let slot = self.inner.held(claim)?;
            let (run_id, token, seq) = (claim.run_id(), claim.token(), entry.seq);
            if !self.pool_appends {
                return in_place(|| {
                    let inner = &self.inner;
                    inner.short_of_descriptors(|| {
                        inner.append_line(&slot, run_id, token, seq, &line)
                    })
                });
            }
            self.blocking(
                move |inner| inner.append_line(&slot, run_id, token, seq, &line),
                "write",
                self.journal_path(run_id),
            )
            .await
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(async move {
            self.blocking(
                move |inner| inner.load(run_id),
                "read",
                self.document_path(run_id),
            )
            .await
        })
    }

    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        Box::pin(async move {
            self.blocking(
                move |inner| inner.document(run_id),
                "read",
                self.document_path(run_id),
            )
            .await
        })
    }

    /// Scans the directory for `<run_id>.json` documents (a directory that does not exist yet
    /// holds no runs).
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        let query = query.clone();
        Box::pin(async move {
            self.blocking(
                move |inner| inner.list(&query),
                "read",
                self.dir().to_path_buf(),
            )
            .await
        })
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if lock(&self.inner.graphs).contains(&graph.fingerprint) {
                return Ok(());
            }
            let mut bytes =
                serde_json::to_vec_pretty(graph).map_err(|source| StoreError::Serialize {
                    what: "flow graph",
                    source,
                })?;
            bytes.push(b'\n');
            let fingerprint = graph.fingerprint;
            let graph = graph.clone();
            self.blocking(
                move |inner| inner.put_graph(&graph, &bytes),
                "write",
                self.dir().join("flows"),
            )
            .await?;
            lock(&self.inner.graphs).insert(fingerprint);
            Ok(())
        })
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        let fingerprint = fingerprint.to_string();
        Box::pin(async move {
            self.blocking(
                move |inner| inner.graph(&fingerprint),
                "read",
                self.dir().join("flows"),
            )
            .await
        })
    }
}

/// A document as the store writes it: pretty JSON and a newline.
fn document_bytes(document: &RunDocument) -> Result<Vec<u8>, StoreError> {
    let mut bytes =
        serde_json::to_vec_pretty(document).map_err(|source| StoreError::Serialize {
            what: "run document",
            source,
        })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Runs short blocking file I/O on the current thread: through `block_in_place` on a
/// multi-thread runtime (so the worker's other tasks move elsewhere), directly otherwise.
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// How an error names a file: its path, as displayed.
fn location(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        op,
        location: location(path),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: location(path),
        reason: reason.into(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Runs `op`; when it fails for want of file descriptors (`EMFILE`, `ENFILE`), closes the
    /// journal handles kept between appends and runs it again, up to three times with a short
    /// pause. Every operation undoes its partial work on failure before its point of no return,
    /// so running it again is safe.
    fn short_of_descriptors<T>(
        &self,
        op: impl Fn() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tries = 0;
        loop {
            match op() {
                Err(StoreError::Io { source, .. })
                    if tries < 3 && matches!(source.raw_os_error(), Some(23 | 24)) =>
                {
                    tries += 1;
                    self.close_journals();
                    std::thread::sleep(std::time::Duration::from_millis(5 * tries));
                }
                other => return other,
            }
        }
    }

    /// Closes the journal handles kept between appends (those not in use right now).
    fn close_journals(&self) {
        let slots: Vec<_> = lock(&self.claims).values().cloned().collect();
        for slot in slots {
            if let Ok(mut held) = slot.try_lock()
                && held.journal.take().is_some()
            {
                self.open_journals.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn document_path(&self, run_id: RunId) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    fn journal_path(&self, run_id: RunId) -> PathBuf {
        self.dir.join(format!("{run_id}.journal.jsonl"))
    }

    fn claim_path(&self, run_id: RunId) -> PathBuf {
        self.dir.join(format!("{run_id}.claim"))
    }

    fn sessions_dir(&self) -> PathBuf {
        self.dir.join(".sessions")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[tokio::test]
    async fn round_trip_document_and_entries() {
        let (_tmp, store) = store();
        let run_id = RunId::new_v4();
        let doc = document(run_id, RunStatus::Running);
        let claim = store.create(&doc).await.unwrap();
        let entries: Vec<JournalEntry> = (1..=3).map(entry).collect();
        for e in &entries {
            store.append(&claim, e).await.unwrap();
        }
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.document, doc);
        assert_eq!(loaded.journal, entries);

        // Human-readable, versioned, newline-terminated; one line per entry.
        let text = fs::read_to_string(store.document_path(run_id)).unwrap();
        assert!(
            text.contains("\n  \"format\": \"orchflow-checkpoint\",\n"),
            "{text}"
        );
        assert!(text.contains("\n  \"version\": 2,\n"), "{text}");
        assert!(text.contains("\n  \"pending\": [],\n"), "{text}");
        assert!(text.ends_with("}\n"));
        let journal = fs::read_to_string(store.journal_path(run_id)).unwrap();
        assert_eq!(journal.lines().count(), 3);
        assert!(journal.starts_with("{\"seq\":1,"), "{journal}");
        assert!(journal.ends_with('\n'));

        // A new store (another process) reads the same.
        let again = JsonCheckpointStore::new(store.dir());
        assert_eq!(again.load(run_id).await.unwrap(), Some(loaded));
        assert_eq!(
            files(&store),
            [
                format!("{run_id}.claim"),
                format!("{run_id}.journal.jsonl"),
                format!("{run_id}.json")
            ]
        );
    }

    #[tokio::test]
    async fn paths_are_named_after_the_run() {
        let store = JsonCheckpointStore::new("/some/dir");
        let run_id = RunId::nil();
        assert_eq!(store.dir(), Path::new("/some/dir"));
        assert_eq!(
            store.document_path(run_id),
            Path::new("/some/dir/00000000-0000-0000-0000-000000000000.json")
        );
        assert_eq!(
            store.journal_path(run_id),
            Path::new("/some/dir/00000000-0000-0000-0000-000000000000.journal.jsonl")
        );
        assert_eq!(
            store.claim_path(run_id),
            Path::new("/some/dir/00000000-0000-0000-0000-000000000000.claim")
        );
        // Clones share their state.
        let clone = store.clone();
        assert!(Arc::ptr_eq(&clone.inner, &store.inner));
        assert!(format!("{store:?}").contains("JsonCheckpointStore"));
    }
}
