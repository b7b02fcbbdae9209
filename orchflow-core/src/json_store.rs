//! A checkpoint store on the file system: one versioned JSON document per run and an
//! append-only JSON-lines journal beside it.

use crate::context::RunId;
use crate::store::{
    Checkpoint, CheckpointStore, Claim, ClaimHold, FORMAT, FORMAT_VERSION, JournalEntry,
    OLDEST_FORMAT_VERSION, RunDocument, RunListing, StoreError, StoreFuture,
};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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
}

/// A claimed run, as its store knows it.
#[derive(Debug)]
struct Held {
    token: u64,
    /// The journal's last `seq` (0 when empty).
    last_seq: u64,
    /// The journal, open for appending, with its length (everything in it ends with `\n`).
    journal: Option<(File, u64)>,
}

/// A store's identity in `.sessions/`, held locked for the store's life.
#[derive(Debug)]
struct Session {
    id: String,
    path: PathBuf,
    /// Holds the lock; closed (and the lock dropped) with the session.
    _lock: File,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Nobody can hold a claim of this session any more (claims keep the store alive).
        let _ = fs::remove_file(&self.path);
    }
}

/// The content of a `.claim` file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ClaimFile {
    session: Option<String>,
    #[serde(default)]
    pid: u32,
    token: u64,
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
            path: path.clone(),
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
        self.document_path(run_id).display().to_string()
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

    /// Scans the directory for `<run_id>.json` documents (a directory that does not exist yet
    /// holds no runs).
    fn list_runs(&self) -> StoreFuture<'_, RunListing> {
        Box::pin(async move {
            self.blocking(|inner| inner.list(), "read", self.dir().to_path_buf())
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

fn check_token(held: &Held, run_id: RunId, token: u64) -> Result<(), StoreError> {
    if held.token == token {
        Ok(())
    } else {
        Err(StoreError::ClaimLost { run_id, token })
    }
}

/// A claim of a [`JsonCheckpointStore`]: releases the run when dropped.
struct JsonHold {
    inner: Arc<Inner>,
    run_id: RunId,
    token: u64,
}

impl ClaimHold for JsonHold {
    fn release(self: Box<Self>) {
        self.inner.release(self.run_id, self.token);
    }
}

/// Runs short blocking file I/O on the current thread: through `block_in_place` on a
/// multi-thread runtime (so the worker's other tasks move elsewhere), directly otherwise.
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// An open directory, to sync its entries.
#[cfg(unix)]
type DirHandle = File;
/// Directories cannot be opened as files here; renames are durable through the file system.
#[cfg(not(unix))]
type DirHandle = ();

/// The directory, opened so that it can be synced (before anything that cannot be undone).
fn open_dir(dir: &Path) -> Result<DirHandle, StoreError> {
    #[cfg(unix)]
    return File::open(dir).map_err(|e| io_error("open directory", dir, e));
    #[cfg(not(unix))]
    return Ok(());
}

/// Makes a directory entry (a created or renamed file) durable.
fn sync_dir(dir: &DirHandle, path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    return dir
        .sync_all()
        .map_err(|e| io_error("fsync directory", path, e));
    #[cfg(not(unix))]
    return Ok(());
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

    // ----- claims -----

    /// The slot of a run `claim` holds in this store.
    fn held(&self, claim: &Claim) -> Result<Arc<Mutex<Held>>, StoreError> {
        let lost = || StoreError::ClaimLost {
            run_id: claim.run_id(),
            token: claim.token(),
        };
        let slot = lock(&self.claims)
            .get(&claim.run_id())
            .cloned()
            .ok_or_else(lost)?;
        if lock(&slot).token != claim.token() {
            return Err(lost());
        }
        Ok(slot)
    }

    /// Claims a run: an existing one, or (`document` given) a new one created with that
    /// document and an empty journal.
    fn take_claim(
        self: &Arc<Self>,
        run_id: RunId,
        document: Option<&[u8]>,
    ) -> Result<Claim, StoreError> {
        if document.is_some() && self.document_path(run_id).exists() {
            return Err(StoreError::RunExists(run_id));
        }
        // Reserve the run in this store first, so two tasks of one process never both go on.
        let slot = {
            let mut claims = lock(&self.claims);
            if claims.contains_key(&run_id) {
                return Err(StoreError::RunBusy {
                    run_id,
                    holder: "another task of this process".to_string(),
                });
            }
            let slot = Arc::new(Mutex::new(Held {
                token: 0,
                last_seq: 0,
                journal: None,
            }));
            claims.insert(run_id, Arc::clone(&slot));
            slot
        };
        match self.claim_on_disk(run_id, document) {
            Ok((token, last_seq)) => {
                {
                    let mut held = lock(&slot);
                    held.token = token;
                    held.last_seq = last_seq;
                }
                Ok(Claim::new(
                    run_id,
                    token,
                    JsonHold {
                        inner: Arc::clone(self),
                        run_id,
                        token,
                    },
                ))
            }
            Err(e) => {
                lock(&self.claims).remove(&run_id);
                Err(e)
            }
        }
    }

    /// Records the claim in the run's `.claim` file (locked while read and rewritten) and
    /// prepares the journal: created empty for a new run, its torn tail cut and its last `seq`
    /// read for an existing one. Returns the fencing token and the last `seq`.
    fn claim_on_disk(
        &self,
        run_id: RunId,
        document: Option<&[u8]>,
    ) -> Result<(u64, u64), StoreError> {
        let document_path = self.document_path(run_id);
        if document.is_some() {
            fs::create_dir_all(&self.dir)
                .map_err(|e| io_error("create directory", &self.dir, e))?;
        } else {
            match document_path.try_exists() {
                Ok(true) => {}
                Ok(false) => return Err(StoreError::NotFound(run_id)),
                Err(e) => return Err(io_error("read", &document_path, e)),
            }
        }
        let session = self.session()?;
        let claim_path = self.claim_path(run_id);
        not_special(&claim_path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&claim_path)
            .map_err(|e| io_error("open", &claim_path, e))?;
        file.lock().map_err(|e| io_error("lock", &claim_path, e))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| io_error("read", &claim_path, e))?;
        let previous: ClaimFile = if text.trim().is_empty() {
            ClaimFile::default()
        } else {
            serde_json::from_str(&text).map_err(|e| corrupt(&claim_path, e.to_string()))?
        };
        // A taken id is that, whether or not someone writes the run now.
        if document.is_some() {
            match document_path.try_exists() {
                Ok(false) => {}
                Ok(true) => return Err(StoreError::RunExists(run_id)),
                Err(e) => return Err(io_error("read", &document_path, e)),
            }
        }
        if let Some(other) = &previous.session
            && *other != session.id
            && self.session_alive(other)?
        {
            return Err(StoreError::RunBusy {
                run_id,
                holder: format!("process {} (session {other})", previous.pid),
            });
        }
        let last_seq = match document {
            Some(bytes) => {
                self.create_run(run_id, bytes)?;
                0
            }
            None => self.prepare_journal(run_id)?,
        };
        let token = previous.token + 1;
        let record = ClaimFile {
            session: Some(session.id.clone()),
            pid: std::process::id(),
            token,
        };
        write_claim(&mut file, &claim_path, &record)?;
        Ok((token, last_seq))
    }

    /// Whether the session `id` still holds its lock (its store is alive, in this process or
    /// another).
    fn session_alive(&self, id: &str) -> Result<bool, StoreError> {
        let path = self.sessions_dir().join(format!("{id}.lock"));
        not_special(&path)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error("open", &path, e)),
        };
        // A shared lock, so that probes of one dead session by several stores at once do not
        // see each other's probe as the owner's (exclusive) lock.
        match file.try_lock_shared() {
            Ok(()) => {
                // Its owner is gone: the file is litter.
                let _ = fs::remove_file(&path);
                Ok(false)
            }
            Err(fs::TryLockError::WouldBlock) => Ok(true),
            Err(fs::TryLockError::Error(e)) => Err(io_error("lock", &path, e)),
        }
    }

    /// This store's session, made at the first claim: a file in `.sessions/`, locked before it
    /// gets its name so that nobody sees it unlocked while its owner lives.
    fn session(&self) -> Result<Arc<Session>, StoreError> {
        let mut slot = lock(&self.session);
        if let Some(session) = &*slot {
            return Ok(Arc::clone(session));
        }
        let dir = self.sessions_dir();
        fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        remove_dead_sessions(&dir);
        let id = uuid::Uuid::new_v4().to_string();
        let tmp = dir.join(format!("{id}.tmp"));
        let path = dir.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_error("write", &tmp, e))?;
        let locked = file
            .lock()
            .map_err(|e| io_error("lock", &tmp, e))
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| io_error("rename", &path, e)));
        if let Err(e) = locked {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let session = Arc::new(Session {
            id,
            path,
            _lock: file,
        });
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    /// Gives up a claim: forgets the run and marks its `.claim` file free (best effort: a file
    /// still naming this session is taken over by this store, and by others once it ends).
    fn release(&self, run_id: RunId, token: u64) {
        {
            let mut claims = lock(&self.claims);
            match claims.get(&run_id) {
                Some(slot) if lock(slot).token == token => {
                    if let Some(slot) = claims.remove(&run_id)
                        && lock(&slot).journal.take().is_some()
                    {
                        self.open_journals.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                _ => return,
            }
        }
        let path = self.claim_path(run_id);
        let free = || -> io::Result<()> {
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            file.lock()?;
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            let record: ClaimFile = serde_json::from_str(&text).map_err(io::Error::other)?;
            let ours = lock(&self.session)
                .as_ref()
                .is_some_and(|s| record.session.as_deref() == Some(s.id.as_str()));
            if ours && record.token == token {
                let free = ClaimFile {
                    session: None,
                    pid: 0,
                    token,
                };
                write_claim(&mut file, &path, &free).map_err(io::Error::other)?;
            }
            Ok(())
        };
        if let Err(e) = free() {
            tracing::warn!(run_id = %run_id, error = %e, "could not mark the run's claim free");
        }
    }

    // ----- documents -----

    /// Creates a new run's empty journal, then its document (linked into place, so that an
    /// existing document is never replaced), and makes both durable.
    fn create_run(&self, run_id: RunId, bytes: &[u8]) -> Result<(), StoreError> {
        let journal = self.journal_path(run_id);
        // A journal without a document is left by a creation that crashed: start it again.
        File::create(&journal).map_err(|e| io_error("create", &journal, e))?;
        let document = self.document_path(run_id);
        let (tmp, mut file) = self.create_temp(run_id)?;
        let dir = open_dir(&self.dir);
        let result = dir.and_then(|dir| {
            file.write_all(bytes)
                .map_err(|e| io_error("write", &tmp, e))?;
            file.sync_all().map_err(|e| io_error("fsync", &tmp, e))?;
            match fs::hard_link(&tmp, &document) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(StoreError::RunExists(run_id));
                }
                Err(e) => return Err(io_error("link", &document, e)),
            }
            // The document is in place: from here on the run exists, whatever fails.
            if let Err(e) = sync_dir(&dir, &self.dir) {
                tracing::error!(error = %e, "a new run's document is in place but its directory could not be synced");
            }
            Ok(())
        });
        let _ = fs::remove_file(&tmp);
        if result.is_err() {
            let _ = fs::remove_file(&journal);
        }
        result
    }

    fn write_document(&self, run_id: RunId, bytes: &[u8]) -> Result<(), StoreError> {
        let document = self.document_path(run_id);
        let (tmp, file) = self.create_temp(run_id)?;
        let result = open_dir(&self.dir)
            .and_then(|dir| replace_with(file, &tmp, &document, bytes, &dir, &self.dir));
        if result.is_err() {
            // Gone already if the rename happened; either way the document is whole.
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Creates a fresh temporary file beside the document. A name can only be taken already if
    /// a process with the same id crashed and left it behind: then the next name is tried.
    fn create_temp(&self, run_id: RunId) -> Result<(PathBuf, File), StoreError> {
        let pid = std::process::id();
        let mut attempts = 0;
        loop {
            let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
            let tmp = self.dir.join(format!("{run_id}.json.tmp.{pid}.{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error("write", &tmp, e)),
            }
        }
    }

    // ----- journals -----

    /// Opens an existing run's journal for writing at its claim (so an unwritable journal is
    /// found before anything runs), cuts a torn last line and returns the last `seq`. A missing
    /// journal is left for [`load`](Self::load) to judge.
    fn prepare_journal(&self, run_id: RunId) -> Result<u64, StoreError> {
        let path = self.journal_path(run_id);
        not_special(&path)?;
        let mut file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error("open", &path, e)),
        };
        let len = cut_torn_tail(&mut file, &path)?;
        last_seq(&mut file, &path, len)
    }

    fn append_line(
        &self,
        slot: &Mutex<Held>,
        run_id: RunId,
        token: u64,
        seq: u64,
        line: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.journal_path(run_id);
        let mut held = lock(slot);
        check_token(&held, run_id, token)?;
        if seq != held.last_seq + 1 {
            return Err(StoreError::OutOfSequence {
                run_id,
                last: held.last_seq,
                found: seq,
            });
        }
        let (mut file, before) = match held.journal.take() {
            Some(open) => {
                self.open_journals.fetch_sub(1, Ordering::Relaxed);
                open
            }
            None => self.open_journal(&path)?,
        };
        let result = file
            .write_all(line)
            .map_err(|e| io_error("write", &path, e))
            .and_then(|()| file.sync_data().map_err(|e| io_error("fsync", &path, e)));
        match result {
            Ok(()) => {
                held.last_seq = seq;
                let len = before + line.len() as u64;
                // Keep the handle for the next append, within the store's budget.
                if self.open_journals.fetch_add(1, Ordering::Relaxed) < MAX_OPEN_JOURNALS {
                    held.journal = Some((file, len));
                } else {
                    self.open_journals.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                // Not acknowledged: take back whatever part of the line got written, so that a
                // retry does not follow a partial or duplicate line.
                let _ = file.set_len(before).and_then(|()| file.sync_data());
                Err(e)
            }
        }
    }

    /// Opens a journal for appending, with its length. Creates it if a run of an older
    /// version never wrote one.
    fn open_journal(&self, path: &Path) -> Result<(File, u64), StoreError> {
        let mut options = OpenOptions::new();
        options.append(true);
        let file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = open_dir(&self.dir)?;
                let file = options
                    .clone()
                    .create_new(true)
                    .open(path)
                    .map_err(|e| io_error("open", path, e))?;
                if let Err(e) = sync_dir(&dir, &self.dir) {
                    // Without a durable directory entry the journal may vanish in a crash:
                    // remove it, so that the next append creates and syncs it again.
                    drop(file);
                    let _ = fs::remove_file(path);
                    return Err(e);
                }
                file
            }
            Err(e) => return Err(io_error("open", path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| io_error("read", path, e))?
            .len();
        Ok((file, len))
    }

    // ----- loading -----

    fn list(&self) -> Result<RunListing, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RunListing::default()),
            Err(e) => return Err(io_error("read", &self.dir, e)),
        };
        let mut listing = RunListing::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("read", &self.dir, e))?;
            let name = entry.file_name();
            let Some(run_id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|stem| stem.parse::<RunId>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let read = not_special(&path).and_then(|()| {
                let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
                parse_document(&path, &bytes)
            });
            match read {
                Ok(document) if document.run_id == run_id => listing.runs.push(document),
                Ok(document) => listing.unreadable.push(corrupt(
                    &path,
                    format!(
                        "the document is for run {}, not run {run_id}",
                        document.run_id
                    ),
                )),
                // Removed since the directory was read: not a run any more.
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => listing.unreadable.push(e),
            }
        }
        listing.sort();
        Ok(listing)
    }

    fn load(&self, run_id: RunId) -> Result<Option<Checkpoint>, StoreError> {
        let document_path = self.document_path(run_id);
        not_special(&document_path)?;
        let bytes = match fs::read(&document_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &document_path, e)),
        };
        let document = parse_document(&document_path, &bytes)?;
        if document.run_id != run_id {
            return Err(corrupt(
                &document_path,
                format!(
                    "the document is for run {}, not run {run_id}",
                    document.run_id
                ),
            ));
        }
        let journal_path = self.journal_path(run_id);
        not_special(&journal_path)?;
        let journal = match fs::read(&journal_path) {
            Ok(bytes) => parse_journal(&journal_path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if document.made_progress() {
                    return Err(StoreError::MissingJournal { path: journal_path });
                }
                Vec::new()
            }
            Err(e) => return Err(io_error("read", &journal_path, e)),
        };
        Ok(Some(Checkpoint { document, journal }))
    }
}

/// Refuses a path that is neither a regular file nor a directory (a device, a FIFO, a socket):
/// not a checkpoint, and reading one could block or never end. A missing path passes, and so
/// does a directory, which fails as I/O where it is opened.
fn not_special(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => Err(corrupt(
            path,
            "not a regular file (a device, a FIFO or a socket)",
        )),
        _ => Ok(()),
    }
}

/// Removes the session files of stores that are gone (their lock is free: the process ended
/// without cleaning up, as a `SIGKILL` leaves it). Best effort: they are litter, not state.
fn remove_dead_sessions(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock")
            && entry.file_type().is_ok_and(|t| t.is_file())
            && let Ok(file) = File::open(&path)
            && file.try_lock_shared().is_ok()
        {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Rewrites a locked `.claim` file in place.
fn write_claim(file: &mut File, path: &Path, record: &ClaimFile) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec(record).map_err(|source| StoreError::Serialize {
        what: "claim",
        source,
    })?;
    bytes.push(b'\n');
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&bytes))
        .and_then(|()| file.set_len(bytes.len() as u64))
        .map_err(|e| io_error("write", path, e))
}

/// Writes `bytes` to the temporary file, makes it durable, renames it over the document and
/// makes the rename durable. A failure after the rename is logged, not returned: the new
/// document is what every later load sees.
fn replace_with(
    mut file: File,
    tmp: &Path,
    document: &Path,
    bytes: &[u8],
    dir: &DirHandle,
    dir_path: &Path,
) -> Result<(), StoreError> {
    file.write_all(bytes)
        .map_err(|e| io_error("write", tmp, e))?;
    file.sync_all().map_err(|e| io_error("fsync", tmp, e))?;
    drop(file);
    fs::rename(tmp, document).map_err(|e| io_error("rename", document, e))?;
    if let Err(e) = sync_dir(dir, dir_path) {
        tracing::error!(error = %e, "a run's document was replaced but its directory could not be synced");
    }
    Ok(())
}

/// The `seq` of a journal's last line (0 for an empty journal). `len` ends after a `\n`.
fn last_seq(file: &mut File, path: &Path, len: u64) -> Result<u64, StoreError> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    if len == 0 {
        return Ok(0);
    }
    // The last line starts after the `\n` before its own final one.
    let start_of_line = after_last_newline(file, path, len - 1)?;
    let mut line = Vec::new();
    file.seek(SeekFrom::Start(start_of_line))
        .and_then(|_| file.take(len - start_of_line).read_to_end(&mut line))
        .map_err(|e| io_error("read", path, e))?;
    let seq: Seq = serde_json::from_slice(&line)
        .map_err(|e| corrupt(path, format!("last line: {}", message(&e))))?;
    Ok(seq.seq)
}

/// The offset just after the last `\n` in the file's first `end` bytes (0 when there is none),
/// reading backwards in chunks.
fn after_last_newline(file: &mut File, path: &Path, end: u64) -> Result<u64, StoreError> {
    let mut buf = [0u8; 8192];
    let mut end = end;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        // At most `buf.len()` bytes, so the conversion cannot truncate.
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| io_error("read", path, e))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Cuts an unfinished last line (one without its `\n`, left by an interrupted append) off an
/// existing journal, so that the next line starts clean. Returns the journal's length.
fn cut_torn_tail(file: &mut File, path: &Path) -> Result<u64, StoreError> {
    let len = file
        .metadata()
        .map_err(|e| io_error("read", path, e))?
        .len();
    let keep = after_last_newline(file, path, len)?;
    if keep != len {
        file.set_len(keep)
            .map_err(|e| io_error("truncate", path, e))?;
        file.sync_data().map_err(|e| io_error("fsync", path, e))?;
    }
    Ok(keep)
}

/// Checks the format and version on a loose parse first, so that a document of another version
/// reports its version even when its fields differ, then parses the whole document.
fn parse_document(path: &Path, bytes: &[u8]) -> Result<RunDocument, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(corrupt(
            path,
            "not an orchflow checkpoint (not a JSON object)",
        ));
    };
    match object.get("format") {
        Some(serde_json::Value::String(format)) if format == FORMAT => {}
        Some(format) => {
            return Err(corrupt(
                path,
                format!("not an orchflow checkpoint (format {format})"),
            ));
        }
        None => {
            return Err(corrupt(
                path,
                "not an orchflow checkpoint (no \"format\" field)",
            ));
        }
    }
    let version = match object.get("version") {
        Some(version) => version,
        None => return Err(corrupt(path, "no \"version\" field")),
    };
    let found = version
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| corrupt(path, format!("invalid version {version}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
            oldest: OLDEST_FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(path, e.to_string()))
}

/// Parses the complete lines of a journal. A last line without `\n` is an append that was
/// interrupted, hence never acknowledged: it is ignored, whether or not it parses, just as the
/// next append cuts it off.
fn parse_journal(path: &Path, bytes: &[u8]) -> Result<Vec<JournalEntry>, StoreError> {
    let mut entries: Vec<JournalEntry> = Vec::new();
    let mut rest = bytes;
    let mut line_number = 0usize;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        line_number += 1;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let entry: JournalEntry = serde_json::from_slice(line).map_err(|e| {
            corrupt(
                path,
                format!("line {line_number}, column {}: {}", e.column(), message(&e)),
            )
        })?;
        if let Some(previous) = entries.last()
            && entry.seq <= previous.seq
        {
            return Err(corrupt(
                path,
                format!(
                    "line {line_number}: seq {} does not follow seq {} (seq must increase)",
                    entry.seq, previous.seq
                ),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// serde's message without its " at line L column C" suffix (a journal line is parsed on its
/// own, so serde's line is always 1; the caller gives the journal's line instead).
fn message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_string(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PendingInput, PointRecord, RunStatus};
    use std::time::{Duration, SystemTime};
    use tempfile::TempDir;

    fn document(run_id: RunId, status: RunStatus) -> RunDocument {
        let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        RunDocument {
            format: FORMAT.to_string(),
            version: FORMAT_VERSION,
            run_id,
            flow: "plan => act".to_string(),
            fingerprint: "0123456789abcdef".to_string(),
            shape: "plan => act".to_string(),
            input: serde_json::json!({ "goal": "test" }),
            status,
            pending: Vec::new(),
            output: None,
            error: None,
            created_at: created,
            updated_at: created + Duration::from_millis(1500),
        }
    }

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry::new(
            seq,
            PointRecord::Point(serde_json::json!({ "AfterPlan": seq })),
        )
    }

    fn store() -> (TempDir, JsonCheckpointStore) {
        let dir = TempDir::new().expect("temp dir");
        let store = JsonCheckpointStore::new(dir.path().join("runs"));
        (dir, store)
    }

    /// A store holding one running run, claimed.
    async fn running_run() -> (TempDir, JsonCheckpointStore, RunId, Claim) {
        let (tmp, store) = store();
        let run_id = RunId::new_v4();
        let claim = store
            .create(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        (tmp, store, run_id, claim)
    }

    /// The names in the store's directory, hidden ones (`.sessions`) left out.
    fn files(store: &JsonCheckpointStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(store.dir())
            .expect("read dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    fn write_journal_line(store: &JsonCheckpointStore, run_id: RunId, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(store.journal_path(run_id))
            .expect("open journal");
        file.write_all(bytes).expect("write journal");
    }

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

    #[tokio::test]
    async fn replacing_a_document_leaves_no_temp_files() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        let mut suspended = document(run_id, RunStatus::Suspended);
        suspended.pending = vec![PendingInput::new("ask", "ask", "Proceed?")];
        store.put_document(&claim, &suspended).await.unwrap();
        let mut done = document(run_id, RunStatus::Completed);
        done.output = Some(serde_json::json!(42));
        store.put_document(&claim, &done).await.unwrap();

        assert_eq!(
            files(&store),
            [
                format!("{run_id}.claim"),
                format!("{run_id}.journal.jsonl"),
                format!("{run_id}.json")
            ]
        );
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.document, done);
        assert_eq!(loaded.journal, [entry(1)]);
    }

    #[tokio::test]
    async fn missing_run_is_none_and_cannot_be_claimed() {
        let (_tmp, store) = store();
        // The directory does not even exist yet.
        assert!(store.load(RunId::new_v4()).await.unwrap().is_none());
        let _claim = store
            .create(&document(RunId::new_v4(), RunStatus::Running))
            .await
            .unwrap();
        let other = RunId::new_v4();
        assert!(store.load(other).await.unwrap().is_none());
        let err = store.claim(other).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound(id) if id == other),
            "{err:?}"
        );
        assert!(!store.claim_path(other).exists());
    }

    #[tokio::test]
    async fn a_taken_run_id_is_refused_and_nothing_is_written() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        drop(claim);
        let before = fs::read(store.document_path(run_id)).unwrap();

        let mut other = document(run_id, RunStatus::Running);
        other.flow = "another".into();
        let err = store.create(&other).await.unwrap_err();
        assert!(
            matches!(err, StoreError::RunExists(id) if id == run_id),
            "{err:?}"
        );
        assert!(err.to_string().contains("is taken"), "{err}");
        // Even while the run is claimed (here and in another store).
        let held = store.claim(run_id).await.unwrap();
        let err = store.create(&other).await.unwrap_err();
        assert!(matches!(err, StoreError::RunExists(_)), "{err:?}");
        let elsewhere = JsonCheckpointStore::new(store.dir());
        let err = elsewhere.create(&other).await.unwrap_err();
        assert!(matches!(err, StoreError::RunExists(_)), "{err:?}");
        drop(held);
        // From another process too.
        let err = JsonCheckpointStore::new(store.dir())
            .create(&other)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::RunExists(_)), "{err:?}");
        assert_eq!(fs::read(store.document_path(run_id)).unwrap(), before);
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }

    #[tokio::test]
    async fn one_claim_at_a_time_in_a_process_and_across_stores() {
        let (_tmp, store, run_id, claim) = running_run().await;
        let err = store.claim(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::RunBusy { .. }), "{err:?}");
        assert!(
            err.to_string().contains("another task of this process"),
            "{err}"
        );
        // Another store on the same directory stands for another process.
        let other = JsonCheckpointStore::new(store.dir());
        let err = other.claim(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::RunBusy { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );

        drop(claim);
        let taken = other.claim(run_id).await.unwrap();
        assert_eq!(taken.token(), 2, "each claim's token is greater");
        let err = store.claim(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::RunBusy { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_dead_sessions_claim_is_taken_over() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        // The process dies without releasing: its claim file still names its session, whose
        // lock the kernel drops.
        std::mem::forget(claim);
        let session = lock(&store.inner.session).take().unwrap();
        let path = session.path.clone();
        assert!(path.exists());
        drop(session);
        // SIGKILL leaves the file behind, unlocked.
        fs::write(&path, b"").unwrap();
        lock(&store.inner.claims).clear();

        let other = JsonCheckpointStore::new(store.dir());
        let claim = other.claim(run_id).await.unwrap();
        assert_eq!(claim.token(), 2);
        other.append(&claim, &entry(2)).await.unwrap();
        // The dead session's file is gone; the live one's stays.
        let sessions: Vec<_> = fs::read_dir(store.dir().join(".sessions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!sessions.contains(&path), "{sessions:?}");
        assert_eq!(sessions.len(), 1, "{sessions:?}");
    }

    #[test]
    fn a_probe_of_a_dead_session_does_not_look_alive_to_another_probe() {
        let (_tmp, store) = store();
        let dir = store.inner.sessions_dir();
        fs::create_dir_all(&dir).unwrap();
        let dead = dir.join("dead.lock");
        fs::write(&dead, b"").unwrap();
        // Another store is probing the same dead session right now.
        let probing = File::open(&dead).unwrap();
        probing.try_lock_shared().unwrap();
        assert!(!store.inner.session_alive("dead").unwrap());
        // A live session (its owner's exclusive lock) is alive to every probe.
        let live = dir.join("live.lock");
        let owner = File::create(&live).unwrap();
        owner.lock().unwrap();
        assert!(store.inner.session_alive("live").unwrap());
        assert!(live.exists());
    }

    #[tokio::test]
    async fn writes_need_the_claim_and_the_next_seq() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        for seq in [1, 3, 0] {
            let err = store.append(&claim, &entry(seq)).await.unwrap_err();
            assert!(
                matches!(err, StoreError::OutOfSequence { last: 1, found, .. } if found == seq),
                "{err:?}"
            );
        }
        // A claim another store issued is not this store's.
        let other = JsonCheckpointStore::new(store.dir());
        let err = other.append(&claim, &entry(2)).await.unwrap_err();
        assert!(matches!(err, StoreError::ClaimLost { .. }), "{err:?}");
        let err = other
            .put_document(&claim, &document(run_id, RunStatus::Failed))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ClaimLost { .. }), "{err:?}");
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().document.status,
            RunStatus::Running
        );
        // A new claim continues after the journal's last line.
        drop(claim);
        let again = other.claim(run_id).await.unwrap();
        let err = other.append(&again, &entry(1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfSequence { last: 1, .. }),
            "{err:?}"
        );
        other.append(&again, &entry(2)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_claims_have_one_winner() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        for _ in 0..20 {
            let stores: Vec<_> = (0..4)
                .map(|_| JsonCheckpointStore::new(store.dir()))
                .collect();
            let tasks: Vec<_> = stores
                .iter()
                .map(|s| {
                    let s = s.clone();
                    tokio::spawn(async move { s.claim(run_id).await })
                })
                .collect();
            let mut won = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(claim) => won.push(claim),
                    Err(StoreError::RunBusy { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(won.len(), 1);
        }
    }

    #[tokio::test]
    async fn a_document_that_made_progress_needs_its_journal() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        store
            .put_document(&claim, &document(run_id, RunStatus::Suspended))
            .await
            .unwrap();
        fs::remove_file(store.journal_path(run_id)).unwrap();
        let err = store.load(run_id).await.unwrap_err();
        let path = store.journal_path(run_id);
        assert!(
            matches!(&err, StoreError::MissingJournal { path: p } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        // A document written once at its creation, with no journal, is a run that never saved.
        let fresh = RunId::new_v4();
        let mut doc = document(fresh, RunStatus::Running);
        doc.updated_at = doc.created_at;
        let claim = store.create(&doc).await.unwrap();
        drop(claim);
        fs::remove_file(store.journal_path(fresh)).unwrap();
        assert!(store.load(fresh).await.unwrap().unwrap().journal.is_empty());
    }

    #[tokio::test]
    async fn an_unwritable_journal_is_found_at_the_claim() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        // Something that cannot be opened for appending (root ignores permission bits).
        fs::remove_file(store.journal_path(run_id)).unwrap();
        fs::create_dir(store.journal_path(run_id)).unwrap();
        let err = store.claim(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Io { op: "open", .. }), "{err:?}");
        // The failed claim left the run free.
        fs::remove_dir(store.journal_path(run_id)).unwrap();
        assert!(store.claim(run_id).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_append_and_keeps_the_journal_clean() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        drop(claim);
        let journal = store.journal_path(run_id);
        let kept = fs::read(&journal).unwrap();
        // A journal that is not a regular file is refused at the claim and at a load.
        fs::remove_file(&journal).unwrap();
        std::os::unix::fs::symlink("/dev/full", &journal).unwrap();
        let err = store.claim(run_id).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = store.load(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        // Every write to /dev/full fails with ENOSPC: the disk fills after the claim.
        fs::remove_file(&journal).unwrap();
        fs::write(&journal, &kept).unwrap();
        let claim = store.claim(run_id).await.unwrap();
        fs::remove_file(&journal).unwrap();
        std::os::unix::fs::symlink("/dev/full", &journal).unwrap();
        let err = store.append(&claim, &entry(2)).await.unwrap_err();
        match &err {
            StoreError::Io {
                op: "write",
                source,
                ..
            } => assert_eq!(source.raw_os_error(), Some(libc_enospc())),
            other => panic!("{other:?}"),
        }
        drop(claim);
        fs::remove_file(&journal).unwrap();
        fs::write(&journal, &kept).unwrap();
        let claim = store.claim(run_id).await.unwrap();
        store.append(&claim, &entry(2)).await.unwrap();
    }

    fn libc_enospc() -> i32 {
        28
    }

    #[tokio::test]
    async fn truncated_document_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() / 2]).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("EOF while parsing"), "{text}");
        assert!(text.contains("line "), "{text}");
    }

    #[tokio::test]
    async fn garbage_document_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        fs::write(&path, b"\x00\xff not json at all").unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("is not a valid checkpoint"), "{text}");
        assert!(text.contains("line 1 column 1"), "{text}");
    }

    #[tokio::test]
    async fn garbage_claim_file_is_corrupt_and_left_alone() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        let path = store.claim_path(run_id);
        fs::write(&path, b"not a claim").unwrap();
        let err = store.claim(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"not a claim");
    }

    #[tokio::test]
    async fn special_files_are_refused_not_waited_on() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        let fifo = |path: &Path| {
            let _ = fs::remove_file(path);
            let status = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .expect("mkfifo");
            assert!(status.success());
        };
        fifo(&store.claim_path(run_id));
        let err = store.claim(run_id).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        fs::remove_file(store.claim_path(run_id)).unwrap();
        fifo(&store.journal_path(run_id));
        let err = store.load(run_id).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = store.claim(run_id).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[tokio::test]
    async fn document_of_another_format_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        fs::write(&path, br#"{"format": "something-else", "version": 1}"#).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(r#"not an orchflow checkpoint (format "something-else")"#),
            "{text}"
        );

        fs::write(&path, b"[1, 2, 3]").unwrap();
        let err = store.load(run_id).await.unwrap_err();
        assert!(
            err.to_string().contains("not an orchflow checkpoint"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn document_of_another_version_is_unsupported() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value["version"] = serde_json::json!(3);
        // A future version may add fields and change others: the version is still reported.
        value["new_field"] = serde_json::json!({ "x": 1 });
        value["status"] = serde_json::json!({ "paused": true });
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnsupportedVersion { path: p, found: 3, expected: 2, oldest: 1 } if *p == path),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} has checkpoint format version 3; this orchflow reads versions 1 to 2",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn version_1_documents_are_read() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value["version"] = serde_json::json!(1);
        value["status"] = serde_json::json!("suspended");
        value["pending"] = serde_json::json!({ "step": "review", "prompt": "ok?" });
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(
            loaded.document.pending,
            [PendingInput::new("review", "review", "ok?")]
        );

        value["pending"] = serde_json::Value::Null;
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert!(loaded.document.pending.is_empty());
    }

    #[tokio::test]
    async fn document_of_the_wrong_shape_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value.as_object_mut().unwrap().remove("flow");
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(text.contains("missing field `flow`"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[tokio::test]
    async fn document_of_another_run_is_corrupt() {
        let (_tmp, store) = store();
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        let _claim = store
            .create(&document(a, RunStatus::Running))
            .await
            .unwrap();
        fs::copy(store.document_path(a), store.document_path(b)).unwrap();
        let err = store.load(b).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("is for run {a}, not run {b}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreadable_document_is_a_read_error() {
        let (_tmp, store) = store();
        let run_id = RunId::new_v4();
        let path = store.document_path(run_id);
        fs::create_dir_all(&path).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: "read", path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("read {}: ", path.display())),
            "{err}"
        );
    }

    #[tokio::test]
    async fn failed_replace_reports_rename_and_cleans_up() {
        let (_tmp, store, run_id, claim) = running_run().await;
        // A non-empty directory where the document should go: the rename fails.
        let path = store.document_path(run_id);
        fs::remove_file(&path).unwrap();
        fs::create_dir_all(path.join("blocker")).unwrap();

        let err = store
            .put_document(&claim, &document(run_id, RunStatus::Failed))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: "rename", path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("rename {}: ", path.display())),
            "{err}"
        );
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
    async fn uncreatable_directory_is_reported() {
        let tmp = TempDir::new().unwrap();
        let file = tmp.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let store = JsonCheckpointStore::new(file.join("runs"));
        let err = store
            .create(&document(RunId::new_v4(), RunStatus::Running))
            .await;
        let err = err.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Io {
                    op: "create directory",
                    ..
                }
            ),
            "{err:?}"
        );
        let expected = format!("create directory {}: ", file.join("runs").display());
        assert!(err.to_string().starts_with(&expected), "{err}");
    }

    /// A crash in the middle of an append, then another process resumes the run.
    async fn torn(store: &JsonCheckpointStore, run_id: RunId, tail: &[u8]) -> JsonCheckpointStore {
        write_journal_line(store, run_id, tail);
        JsonCheckpointStore::new(store.dir())
    }

    #[tokio::test]
    async fn torn_journal_tail_is_ignored_then_cut_by_the_next_claim() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        store.append(&claim, &entry(2)).await.unwrap();
        drop(claim);
        let resumed = torn(&store, run_id, br#"{"seq":3,"record":{"poi"#).await;
        let loaded = resumed.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.journal, [entry(1), entry(2)]);

        let claim = resumed.claim(run_id).await.unwrap();
        resumed.append(&claim, &entry(3)).await.unwrap();
        let loaded = resumed.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.journal, [entry(1), entry(2), entry(3)]);
        let text = fs::read_to_string(resumed.journal_path(run_id)).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("\"poi\n"), "{text}");
    }

    #[tokio::test]
    async fn unterminated_complete_line_is_not_acknowledged_either() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        drop(claim);
        // The write of entry 2 stopped just before its newline.
        let resumed = torn(&store, run_id, &serde_json::to_vec(&entry(2)).unwrap()).await;
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
        let claim = resumed.claim(run_id).await.unwrap();
        resumed.append(&claim, &entry(2)).await.unwrap();
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [entry(1), entry(2)]
        );
    }

    #[tokio::test]
    async fn torn_first_line_is_cut_entirely() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        fs::write(store.journal_path(run_id), b"{\"seq\":1,\"rec").unwrap();

        assert!(
            store
                .load(run_id)
                .await
                .unwrap()
                .unwrap()
                .journal
                .is_empty()
        );
        let claim = store.claim(run_id).await.unwrap();
        store.append(&claim, &entry(1)).await.unwrap();
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }

    #[tokio::test]
    async fn torn_tail_is_found_past_a_long_last_line() {
        let (_tmp, store, run_id, claim) = running_run().await;
        let big = JournalEntry::new(
            1,
            PointRecord::Point(serde_json::json!({ "AfterPlan": "x".repeat(20_000) })),
        );
        store.append(&claim, &big).await.unwrap();
        drop(claim);
        let tail = format!("{{\"seq\":2,\"x\":\"{}", "y".repeat(20_000));
        let resumed = torn(&store, run_id, tail.as_bytes()).await;
        let claim = resumed.claim(run_id).await.unwrap();
        resumed.append(&claim, &entry(2)).await.unwrap();
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [big, entry(2)]
        );
    }

    #[tokio::test]
    async fn corrupt_middle_line_names_the_line() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.journal_path(run_id);
        let mut text = String::new();
        text.push_str(&serde_json::to_string(&entry(1)).unwrap());
        text.push_str("\n{\"seq\":2,\"record\":oops}\n");
        text.push_str(&serde_json::to_string(&entry(3)).unwrap());
        text.push('\n');
        fs::write(&path, text).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("line 2, column 19: expected value"), "{text}");

        // A complete line that is JSON but not an entry is corrupt too.
        fs::write(&path, "{\"seq\":1}\n").unwrap();
        let err = store.load(run_id).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1, column 9: missing field `record`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn non_increasing_seq_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        for seq in [1, 2, 2] {
            write_journal_line(
                &store,
                run_id,
                format!("{}\n", serde_json::to_string(&entry(seq)).unwrap()).as_bytes(),
            );
        }
        let err = store.load(run_id).await.unwrap_err();
        let path = store.journal_path(run_id);
        assert!(
            matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("line 3: seq 2 does not follow seq 2"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn journal_handles_are_bounded_and_released_with_the_claim() {
        let (_tmp, store) = store();
        let mut claims = Vec::new();
        for _ in 0..(MAX_OPEN_JOURNALS + 10) {
            let run_id = RunId::new_v4();
            let claim = store
                .create(&document(run_id, RunStatus::Running))
                .await
                .unwrap();
            store.append(&claim, &entry(1)).await.unwrap();
            claims.push(claim);
        }
        assert_eq!(
            store.inner.open_journals.load(Ordering::Relaxed),
            MAX_OPEN_JOURNALS
        );
        // Runs past the budget still append (opening their journal each time).
        for claim in &claims {
            store.append(claim, &entry(2)).await.unwrap();
        }
        claims.clear();
        assert_eq!(store.inner.open_journals.load(Ordering::Relaxed), 0);
        assert!(lock(&store.inner.claims).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_to_two_runs_both_land() {
        let (_tmp, store) = store();
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        let claim_a = store
            .create(&document(a, RunStatus::Running))
            .await
            .unwrap();
        let claim_b = store
            .create(&document(b, RunStatus::Running))
            .await
            .unwrap();

        let tasks = [claim_a, claim_b].map(|claim| {
            let store = store.clone();
            tokio::spawn(async move {
                for seq in 1..=25 {
                    store.append(&claim, &entry(seq)).await.unwrap();
                }
            })
        });
        for task in tasks {
            task.await.unwrap();
        }

        let expected: Vec<JournalEntry> = (1..=25).map(entry).collect();
        for run_id in [a, b] {
            assert_eq!(store.load(run_id).await.unwrap().unwrap().journal, expected);
        }
    }

    #[tokio::test]
    async fn listing_scans_documents_and_reports_bad_ones() {
        let (_tmp, store) = store();
        assert!(
            store.list_runs().await.unwrap().runs.is_empty(),
            "no directory yet"
        );
        let (a, b, bad) = (RunId::new_v4(), RunId::new_v4(), RunId::new_v4());
        let mut older = document(a, RunStatus::Completed);
        older.created_at -= Duration::from_secs(60);
        let _ca = store.create(&older).await.unwrap();
        let mut waiting = document(b, RunStatus::Suspended);
        waiting.pending = vec![PendingInput::new("1/review", "review", "ok?")];
        let _cb = store.create(&waiting).await.unwrap();
        fs::write(store.document_path(bad), b"{ torn").unwrap();
        fs::write(store.dir().join("notes.json"), b"{}").unwrap();

        let listing = store.list_runs().await.unwrap();
        let ids: Vec<_> = listing.runs.iter().map(|d| d.run_id).collect();
        assert_eq!(ids, [b, a], "newest first");
        assert_eq!(listing.unreadable.len(), 1);
        assert!(
            listing.unreadable[0]
                .to_string()
                .contains(&store.document_path(bad).display().to_string())
        );
        let pending: Vec<_> = listing
            .pending()
            .map(|(r, q)| (r, q.question.as_str()))
            .collect();
        assert_eq!(pending, [(b, "1/review")]);
    }

    #[tokio::test]
    async fn works_as_a_shared_trait_object() {
        let (_tmp, store) = store();
        let shared: Arc<dyn CheckpointStore> = Arc::new(store.clone());
        let run_id = RunId::new_v4();
        let claim = shared
            .create(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        shared.append(&claim, &entry(1)).await.unwrap();
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }
}
