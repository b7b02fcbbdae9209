//! A checkpoint store on the file system: one versioned JSON document per run and an
//! append-only JSON-lines journal beside it.

use crate::context::RunId;
use crate::store::{
    Checkpoint, CheckpointStore, FORMAT, FORMAT_VERSION, JournalEntry, RunDocument, RunStatus,
    StoreError, StoreFuture,
};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A [`CheckpointStore`] that keeps each run in a directory as human-readable JSON.
///
/// # On-disk format
///
/// For a run with id `<run_id>` (a hyphenated UUID), the directory holds two files:
///
/// * **`<run_id>.json`**, the document: a [`RunDocument`] as pretty-printed JSON followed by a
///   newline. Its fields are `format` (always `"orchflow-checkpoint"`), `version` (the format
///   version, currently `1`), `run_id`, `flow`, `fingerprint`, `shape`, `input`, `status`
///   (`"running"`, `"suspended"`, `"completed"` or `"failed"`), `pending` (`{"step", "prompt"}`
///   or `null`), `output`, `error`, `created_at` and `updated_at` (`{"secs_since_epoch",
///   "nanos_since_epoch"}`). A document of another `format` is refused as corrupt, one of another
///   `version` with [`StoreError::UnsupportedVersion`].
/// * **`<run_id>.journal.jsonl`**, the journal: one [`JournalEntry`] per line, as compact JSON
///   terminated by `\n`, for example
///   `{"seq":1,"record":{"point":{"AfterPlan":3}},"traces":[…]}` or
///   `{"seq":2,"record":{"branch":{"group":"InGroup2","index":0,"value":"ok"}}}`. `seq` starts
///   at 1 and strictly increases. The journal is only ever appended to.
///
/// # Durability
///
/// * Writing a document serialises it to a temporary file in the same directory
///   (`<run_id>.json.tmp.<pid>.<counter>`), writes it completely, `fsync`s it, renames it over
///   `<run_id>.json` and `fsync`s the directory. A reader (or a crash) sees the old document or
///   the new one, never a mix; on any error the temporary file is removed. The directory is
///   created on the first write.
/// * Appending writes the whole line with a single `write` to the journal, opened in append
///   mode, then `fdatasync`s it: one write and one sync per entry, whatever the length of the
///   run. The journal's file handle stays open between appends while the run is running, and
///   is closed when a document with another status is written. Creating the journal `fsync`s
///   the directory.
/// * A crash in the middle of an append can leave a last line without its `\n`. That entry was
///   never acknowledged: loading ignores it, and the next append (from a new process) cuts it
///   off first, so the new line starts clean. A complete line that does not parse, or a `seq`
///   that does not increase, is reported as [`StoreError::Corrupt`] with its line number.
///
/// One process writes a given run at a time. Temporary files left behind by a crash
/// (`*.json.tmp.*`) are never read and can be deleted.
///
/// The store is cheap to clone: clones share the directory and the open journal handles. Its
/// file I/O runs on tokio's blocking thread pool.
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
///     pending: None,
///     output: None,
///     error: None,
///     created_at: now,
///     updated_at: now,
/// };
/// store.put_document(&document).await?;
///
/// let entry = JournalEntry {
///     seq: 1,
///     record: PointRecord::Point(serde_json::json!({ "AfterInc": 2 })),
///     traces: Vec::new(),
/// };
/// store.append(run_id, &entry).await?;
///
/// let checkpoint = store.load(run_id).await?.ok_or("the run was not saved")?;
/// assert_eq!(checkpoint.document, document);
/// assert_eq!(checkpoint.journal, vec![entry]);
/// assert!(store.document_path(run_id).ends_with(format!("{run_id}.json")));
/// assert!(store.journal_path(run_id).exists());
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

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Makes temporary file names unique within the process.
    tmp_counter: AtomicU64,
    /// The open journals, one slot per run. A slot's lock serialises the appends to its run;
    /// the map's lock is only held to find or create a slot.
    journals: Mutex<HashMap<RunId, Arc<Mutex<Option<Journal>>>>>,
}

/// An open journal and its length (everything in it ends with `\n`).
#[derive(Debug)]
struct Journal {
    file: File,
    len: u64,
}

impl JsonCheckpointStore {
    /// A store keeping its files in `dir`. Does no I/O: the directory is created by the first
    /// document written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let mut dir = dir.into();
        if dir.as_os_str().is_empty() {
            dir = PathBuf::from(".");
        }
        JsonCheckpointStore {
            inner: Arc::new(Inner {
                dir,
                tmp_counter: AtomicU64::new(0),
                journals: Mutex::new(HashMap::new()),
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
}

impl CheckpointStore for JsonCheckpointStore {
    fn location(&self, run_id: RunId) -> String {
        self.document_path(run_id).display().to_string()
    }

    fn put_document<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut bytes =
                serde_json::to_vec_pretty(document).map_err(|source| StoreError::Serialize {
                    what: "run document",
                    source,
                })?;
            bytes.push(b'\n');
            let run_id = document.run_id;
            let close_journal = document.status != RunStatus::Running;
            let inner = Arc::clone(&self.inner);
            run_blocking(
                move || inner.write_document(run_id, &bytes, close_journal),
                "write",
                || self.document_path(run_id),
            )
            .await
        })
    }

    fn append<'a>(&'a self, run_id: RunId, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut line = serde_json::to_vec(entry).map_err(|source| StoreError::Serialize {
                what: "journal entry",
                source,
            })?;
            line.push(b'\n');
            if !self.pool_appends {
                return in_place(|| self.inner.append_line(run_id, &line));
            }
            let inner = Arc::clone(&self.inner);
            run_blocking(
                move || inner.append_line(run_id, &line),
                "write",
                || self.journal_path(run_id),
            )
            .await
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(async move {
            let inner = Arc::clone(&self.inner);
            run_blocking(
                move || inner.load(run_id),
                "read",
                || self.document_path(run_id),
            )
            .await
        })
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

/// Runs blocking file I/O on tokio's blocking pool; a task that cannot be joined (the runtime is
/// shutting down) becomes an I/O error on `path`.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    op: &'static str,
    path: impl FnOnce() -> PathBuf,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Io {
            op,
            path: path(),
            source: io::Error::other(e),
        }),
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

/// Makes a directory entry (a created or renamed file) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync directory", dir, e))
}

/// Directories cannot be opened as files here; renames are durable through the file system.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

impl Inner {
    fn document_path(&self, run_id: RunId) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    fn journal_path(&self, run_id: RunId) -> PathBuf {
        self.dir.join(format!("{run_id}.journal.jsonl"))
    }

    // ----- documents -----

    fn write_document(
        &self,
        run_id: RunId,
        bytes: &[u8],
        close_journal: bool,
    ) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error("create directory", &self.dir, e))?;
        let document = self.document_path(run_id);
        let (tmp, file) = self.create_temp(run_id)?;
        let result = replace_with(file, &tmp, &document, bytes, &self.dir);
        if result.is_err() {
            // Gone already if the rename happened; either way the document is whole.
            let _ = fs::remove_file(&tmp);
        }
        result?;
        if close_journal {
            // The run stops appending for now (finished, failed or waiting): free the handle.
            self.release_journal(run_id);
        }
        Ok(())
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

    fn append_line(&self, run_id: RunId, line: &[u8]) -> Result<(), StoreError> {
        let slot = self.journal_slot(run_id);
        let mut guard = lock(&slot);
        let mut journal = match guard.take() {
            Some(journal) => journal,
            None => match self.open_journal(run_id) {
                Ok(journal) => journal,
                Err(e) => {
                    drop(guard);
                    drop(slot);
                    self.release_journal(run_id);
                    return Err(e);
                }
            },
        };
        let before = journal.len;
        let result = journal
            .file
            .write_all(line)
            .map_err(|e| io_error("write", &self.journal_path(run_id), e))
            .and_then(|()| {
                journal
                    .file
                    .sync_data()
                    .map_err(|e| io_error("fsync", &self.journal_path(run_id), e))
            });
        match result {
            Ok(()) => {
                journal.len = before + line.len() as u64;
                *guard = Some(journal);
                Ok(())
            }
            Err(e) => {
                // Not acknowledged: take back whatever part of the line got written, so that a
                // retry does not follow a partial or duplicate line. The handle is dropped; the
                // next append reopens the journal (and cuts a torn tail if this failed too).
                let _ = journal
                    .file
                    .set_len(before)
                    .and_then(|()| journal.file.sync_data());
                drop(journal);
                drop(guard);
                drop(slot);
                self.release_journal(run_id);
                Err(e)
            }
        }
    }

    fn journal_slot(&self, run_id: RunId) -> Arc<Mutex<Option<Journal>>> {
        Arc::clone(lock(&self.journals).entry(run_id).or_default())
    }

    /// Closes a run's journal handle, if open. The slot is removed when nobody uses it; when an
    /// append is in flight, the handle is closed after it.
    fn release_journal(&self, run_id: RunId) {
        let slot = {
            let mut journals = lock(&self.journals);
            match journals.get(&run_id) {
                None => return,
                Some(slot) if Arc::strong_count(slot) == 1 => {
                    journals.remove(&run_id);
                    return;
                }
                Some(slot) => Arc::clone(slot),
            }
        };
        lock(&slot).take();
    }

    /// Opens a run's journal for appending, the first time this process appends to the run (or
    /// the first time since its handle was closed).
    fn open_journal(&self, run_id: RunId) -> Result<Journal, StoreError> {
        let document = self.document_path(run_id);
        match document.try_exists() {
            Ok(true) => {}
            Ok(false) => return Err(StoreError::NoDocument(run_id)),
            Err(e) => return Err(io_error("read", &document, e)),
        }
        let path = self.journal_path(run_id);
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        match options.clone().create_new(true).open(&path) {
            Ok(file) => {
                if let Err(e) = sync_dir(&self.dir) {
                    // Without a durable directory entry the journal may vanish in a crash:
                    // remove it, so that the next append creates and syncs it again.
                    drop(file);
                    let _ = fs::remove_file(&path);
                    return Err(e);
                }
                Ok(Journal { file, len: 0 })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mut file = options
                    .open(&path)
                    .map_err(|e| io_error("open", &path, e))?;
                let len = cut_torn_tail(&mut file, &path)?;
                Ok(Journal { file, len })
            }
            Err(e) => Err(io_error("open", &path, e)),
        }
    }

    // ----- loading -----

    fn load(&self, run_id: RunId) -> Result<Option<Checkpoint>, StoreError> {
        let document_path = self.document_path(run_id);
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
        let journal = match fs::read(&journal_path) {
            Ok(bytes) => parse_journal(&journal_path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("read", &journal_path, e)),
        };
        Ok(Some(Checkpoint { document, journal }))
    }
}

/// Writes `bytes` to the temporary file, makes it durable, renames it over the document and
/// makes the rename durable.
fn replace_with(
    mut file: File,
    tmp: &Path,
    document: &Path,
    bytes: &[u8],
    dir: &Path,
) -> Result<(), StoreError> {
    file.write_all(bytes)
        .map_err(|e| io_error("write", tmp, e))?;
    file.sync_all().map_err(|e| io_error("fsync", tmp, e))?;
    drop(file);
    fs::rename(tmp, document).map_err(|e| io_error("rename", document, e))?;
    sync_dir(dir)
}

/// Cuts an unfinished last line (one without its `\n`, left by an interrupted append) off an
/// existing journal, so that the next line starts clean. Returns the journal's length.
fn cut_torn_tail(file: &mut File, path: &Path) -> Result<u64, StoreError> {
    let len = file
        .metadata()
        .map_err(|e| io_error("read", path, e))?
        .len();
    let mut buf = [0u8; 8192];
    let mut end = len;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        // At most `buf.len()` bytes, so the conversion cannot truncate.
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| io_error("read", path, e))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
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
    if found != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
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
    use crate::store::{PendingInput, PointRecord};
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
            pending: None,
            output: None,
            error: None,
            created_at: created,
            updated_at: created + Duration::from_millis(1500),
        }
    }

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            seq,
            record: PointRecord::Point(serde_json::json!({ "AfterPlan": seq })),
            traces: Vec::new(),
        }
    }

    fn store() -> (TempDir, JsonCheckpointStore) {
        let dir = TempDir::new().expect("temp dir");
        let store = JsonCheckpointStore::new(dir.path().join("runs"));
        (dir, store)
    }

    /// A store holding the document of one running run.
    async fn running_run() -> (TempDir, JsonCheckpointStore, RunId) {
        let (tmp, store) = store();
        let run_id = RunId::new_v4();
        store
            .put_document(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        (tmp, store, run_id)
    }

    fn files(store: &JsonCheckpointStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(store.dir())
            .expect("read dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
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
        store.put_document(&doc).await.unwrap();
        let mut entries = vec![entry(1), entry(2)];
        entries.push(JournalEntry {
            seq: 3,
            record: PointRecord::Branch {
                group: "InGroup2".to_string(),
                index: 1,
                value: serde_json::json!(["a", 1]),
            },
            traces: Vec::new(),
        });
        for e in &entries {
            store.append(run_id, e).await.unwrap();
        }

        let loaded = store.load(run_id).await.unwrap().expect("run exists");
        assert_eq!(loaded.document, doc);
        assert_eq!(loaded.journal, entries);

        // Human-readable, versioned, newline-terminated; one line per entry.
        let text = fs::read_to_string(store.document_path(run_id)).unwrap();
        assert!(
            text.contains("\n  \"format\": \"orchflow-checkpoint\",\n"),
            "{text}"
        );
        assert!(text.contains("\n  \"version\": 1,\n"), "{text}");
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
            [format!("{run_id}.journal.jsonl"), format!("{run_id}.json")]
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
        // Clones share their state.
        let clone = store.clone();
        assert!(Arc::ptr_eq(&clone.inner, &store.inner));
        assert!(format!("{store:?}").contains("JsonCheckpointStore"));
    }

    #[tokio::test]
    async fn replacing_a_document_leaves_no_temp_files() {
        let (_tmp, store, run_id) = running_run().await;
        store.append(run_id, &entry(1)).await.unwrap();
        let mut suspended = document(run_id, RunStatus::Suspended);
        suspended.pending = Some(PendingInput {
            step: "ask".to_string(),
            prompt: "Proceed?".to_string(),
        });
        store.put_document(&suspended).await.unwrap();
        let mut done = document(run_id, RunStatus::Completed);
        done.output = Some(serde_json::json!(42));
        store.put_document(&done).await.unwrap();

        assert_eq!(
            files(&store),
            [format!("{run_id}.journal.jsonl"), format!("{run_id}.json")]
        );
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.document, done);
        assert_eq!(loaded.journal, [entry(1)]);
    }

    #[tokio::test]
    async fn missing_run_is_none() {
        let (_tmp, store) = store();
        // The directory does not even exist yet.
        assert!(store.load(RunId::new_v4()).await.unwrap().is_none());
        store
            .put_document(&document(RunId::new_v4(), RunStatus::Running))
            .await
            .unwrap();
        assert!(store.load(RunId::new_v4()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn append_before_any_document_is_no_document() {
        let (_tmp, store) = store();
        let run_id = RunId::new_v4();
        let err = store.append(run_id, &entry(1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NoDocument(id) if id == run_id),
            "{err:?}"
        );
        assert!(err.to_string().contains(&run_id.to_string()), "{err}");
        assert!(!store.journal_path(run_id).exists());
        // Once the document exists, appending works.
        store
            .put_document(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        store.append(run_id, &entry(1)).await.unwrap();
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }

    #[tokio::test]
    async fn truncated_document_is_corrupt() {
        let (_tmp, store, run_id) = running_run().await;
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
        let (_tmp, store, run_id) = running_run().await;
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
    async fn document_of_another_format_is_corrupt() {
        let (_tmp, store, run_id) = running_run().await;
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
        let (_tmp, store, run_id) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value["version"] = serde_json::json!(2);
        // A future version may add fields and change others: the version is still reported.
        value["new_field"] = serde_json::json!({ "x": 1 });
        value["status"] = serde_json::json!({ "paused": true });
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnsupportedVersion { path: p, found: 2, expected: 1 } if *p == path),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} has checkpoint format version 2; this orchflow reads version 1",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn document_of_the_wrong_shape_is_corrupt() {
        let (_tmp, store, run_id) = running_run().await;
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
        store
            .put_document(&document(a, RunStatus::Running))
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
        let (_tmp, store) = store();
        let run_id = RunId::new_v4();
        // A non-empty directory where the document should go: the rename fails.
        let path = store.document_path(run_id);
        fs::create_dir_all(path.join("blocker")).unwrap();

        let err = store
            .put_document(&document(run_id, RunStatus::Running))
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
        assert_eq!(files(&store), [format!("{run_id}.json")]);
    }

    #[tokio::test]
    async fn uncreatable_directory_is_reported() {
        let tmp = TempDir::new().unwrap();
        let file = tmp.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let store = JsonCheckpointStore::new(file.join("runs"));
        let err = store
            .put_document(&document(RunId::new_v4(), RunStatus::Running))
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

    #[tokio::test]
    async fn torn_journal_tail_is_ignored_then_cut_by_the_next_append() {
        let (_tmp, store, run_id) = running_run().await;
        store.append(run_id, &entry(1)).await.unwrap();
        store.append(run_id, &entry(2)).await.unwrap();
        // A crash in the middle of the third append.
        write_journal_line(&store, run_id, br#"{"seq":3,"record":{"poi"#);

        // Another process resumes the run.
        let resumed = JsonCheckpointStore::new(store.dir());
        let loaded = resumed.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.journal, [entry(1), entry(2)]);

        resumed.append(run_id, &entry(3)).await.unwrap();
        let loaded = resumed.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.journal, [entry(1), entry(2), entry(3)]);
        let text = fs::read_to_string(resumed.journal_path(run_id)).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("\"poi\n"), "{text}");
    }

    #[tokio::test]
    async fn unterminated_complete_line_is_not_acknowledged_either() {
        let (_tmp, store, run_id) = running_run().await;
        store.append(run_id, &entry(1)).await.unwrap();
        // The write of entry 2 stopped just before its newline.
        write_journal_line(&store, run_id, &serde_json::to_vec(&entry(2)).unwrap());

        let resumed = JsonCheckpointStore::new(store.dir());
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
        resumed.append(run_id, &entry(2)).await.unwrap();
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [entry(1), entry(2)]
        );
    }

    #[tokio::test]
    async fn torn_first_line_is_cut_entirely() {
        let (_tmp, store, run_id) = running_run().await;
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
        store.append(run_id, &entry(1)).await.unwrap();
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }

    #[tokio::test]
    async fn torn_tail_is_found_past_a_long_last_line() {
        let (_tmp, store, run_id) = running_run().await;
        let big = JournalEntry {
            seq: 1,
            record: PointRecord::Point(serde_json::json!({ "AfterPlan": "x".repeat(20_000) })),
            traces: Vec::new(),
        };
        store.append(run_id, &big).await.unwrap();
        write_journal_line(
            &store,
            run_id,
            format!("{{\"seq\":2,\"x\":\"{}", "y".repeat(20_000)).as_bytes(),
        );

        let resumed = JsonCheckpointStore::new(store.dir());
        resumed.append(run_id, &entry(2)).await.unwrap();
        assert_eq!(
            resumed.load(run_id).await.unwrap().unwrap().journal,
            [big, entry(2)]
        );
    }

    #[tokio::test]
    async fn corrupt_middle_line_names_the_line() {
        let (_tmp, store, run_id) = running_run().await;
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
        let (_tmp, store, run_id) = running_run().await;
        for seq in [1, 2, 2] {
            store.append(run_id, &entry(seq)).await.unwrap();
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
    async fn finished_runs_release_their_journal_handle() {
        let (_tmp, store, run_id) = running_run().await;
        store.append(run_id, &entry(1)).await.unwrap();
        assert_eq!(lock(&store.inner.journals).len(), 1);

        store
            .put_document(&document(run_id, RunStatus::Suspended))
            .await
            .unwrap();
        assert!(lock(&store.inner.journals).is_empty());

        // Resuming in the same process reopens the journal.
        store
            .put_document(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        store.append(run_id, &entry(2)).await.unwrap();
        store
            .put_document(&document(run_id, RunStatus::Completed))
            .await
            .unwrap();
        assert!(lock(&store.inner.journals).is_empty());
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1), entry(2)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_to_two_runs_both_land() {
        let (_tmp, store) = store();
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        store
            .put_document(&document(a, RunStatus::Running))
            .await
            .unwrap();
        store
            .put_document(&document(b, RunStatus::Running))
            .await
            .unwrap();

        let tasks = [a, b].map(|run_id| {
            let store = store.clone();
            tokio::spawn(async move {
                for seq in 1..=25 {
                    store.append(run_id, &entry(seq)).await.unwrap();
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
    async fn works_as_a_shared_trait_object() {
        let (_tmp, store) = store();
        let shared: Arc<dyn CheckpointStore> = Arc::new(store.clone());
        let run_id = RunId::new_v4();
        shared
            .put_document(&document(run_id, RunStatus::Running))
            .await
            .unwrap();
        shared.append(run_id, &entry(1)).await.unwrap();
        assert_eq!(
            store.load(run_id).await.unwrap().unwrap().journal,
            [entry(1)]
        );
    }
}
