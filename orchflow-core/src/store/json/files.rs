//! Documents on disk: atomic writes, directory syncs, and the refusal of special files.
//!
//! Invariants:
//!
//! * A document is written to a fresh temporary file beside it
//!   (`<run_id>.json.tmp.<pid>.<counter>`), fully, `fsync`ed, then renamed over the document (or,
//!   for a new run, hard-linked into place so an existing document is never replaced). Readers
//!   and crashes see the old document or the new one, never a mix.
//! * Every descriptor a write needs (the directory's included) is opened before its point of no
//!   return. Before it, a failure removes the temporary file and leaves the old document; after
//!   it (a failing directory `fsync`), the failure is logged and the write reports success,
//!   because every later load sees the new document.
//! * A path that is neither a regular file nor a directory (a device, a FIFO, a socket) is never
//!   opened: it is refused as [`StoreError::Corrupt`] rather than read or waited on.

use super::{Inner, corrupt, io_error};
use crate::context::RunId;
use crate::store::StoreError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// An open directory, to sync its entries.
#[cfg(unix)]
pub(super) type DirHandle = File;
/// Directories cannot be opened as files here; renames are durable through the file system.
#[cfg(not(unix))]
pub(super) type DirHandle = ();

/// The directory, opened so that it can be synced (before anything that cannot be undone).
pub(super) fn open_dir(dir: &Path) -> Result<DirHandle, StoreError> {
    #[cfg(unix)]
    return File::open(dir).map_err(|e| io_error("open directory", dir, e));
    #[cfg(not(unix))]
    return Ok(());
}

/// Makes a directory entry (a created or renamed file) durable.
pub(super) fn sync_dir(dir: &DirHandle, path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    return dir
        .sync_all()
        .map_err(|e| io_error("fsync directory", path, e));
    #[cfg(not(unix))]
    return Ok(());
}

impl Inner {
    /// Creates a new run's empty journal, then its document (linked into place, so that an
    /// existing document is never replaced), and makes both durable.
    pub(super) fn create_run(&self, run_id: RunId, bytes: &[u8]) -> Result<(), StoreError> {
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

    pub(super) fn write_document(&self, run_id: RunId, bytes: &[u8]) -> Result<(), StoreError> {
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
}

/// Refuses a path that is neither a regular file nor a directory (a device, a FIFO, a socket):
/// not a checkpoint, and reading one could block or never end. A missing path passes, and so
/// does a directory, which fails as I/O where it is opened.
pub(super) fn not_special(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => Err(corrupt(
            path,
            "not a regular file (a device, a FIFO or a socket)",
        )),
        _ => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
            matches!(&err, StoreError::Io { op: "rename", location: p, .. } if *p == path.display().to_string()),
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
}
