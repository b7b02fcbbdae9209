//! Journals: appends, the last `seq`, the torn tail, and parsing.
//!
//! Invariants:
//!
//! * Every complete entry is one line of compact JSON ending in `\n`, appended with a single
//!   `write` in append mode and `fdatasync`ed before the append is acknowledged. An append that
//!   fails is cut off again, so the journal never keeps a line that was not acknowledged.
//! * A last line without its `\n` is an interrupted append: loading ignores it, and the next
//!   claim cuts it off before anything else is written, so a new line always starts clean.
//! * `seq` grows by one per line. An append is checked against the last `seq` kept in the run's
//!   slot (read from the file at the claim) before anything is written; a complete line that
//!   does not parse, or a `seq` that does not grow, is [`StoreError::Corrupt`] with its line.
//! * At most [`MAX_OPEN_JOURNALS`] journal handles stay open between appends per store; past
//!   that an append opens and closes its journal.

use super::claim::{Held, check_token};
use super::files::{not_special, open_dir, sync_dir};
use super::{Inner, MAX_OPEN_JOURNALS, corrupt, io_error, lock};
use crate::context::RunId;
use crate::store::{JournalEntry, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

impl Inner {
    /// Opens an existing run's journal for writing at its claim (so an unwritable journal is
    /// found before anything runs), cuts a torn last line and returns the last `seq`. A missing
    /// journal is left for [`load`](Self::load) to judge.
    pub(super) fn prepare_journal(&self, run_id: RunId) -> Result<u64, StoreError> {
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

    pub(super) fn append_line(
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

/// Parses the complete lines of a journal. A last line without `\n` is an append that was
/// interrupted, hence never acknowledged: it is ignored, whether or not it parses, just as the
/// next append cuts it off.
pub(super) fn parse_journal(path: &Path, bytes: &[u8]) -> Result<Vec<JournalEntry>, StoreError> {
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
    use super::super::test_support::*;
    use super::*;

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
            matches!(&err, StoreError::Corrupt { location: p, .. } if *p == path.display().to_string()),
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
            matches!(&err, StoreError::Corrupt { location: p, .. } if *p == path.display().to_string()),
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
}
