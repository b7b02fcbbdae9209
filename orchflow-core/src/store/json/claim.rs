//! One writer per run: sessions, `.claim` files and the slots of claimed runs.
//!
//! Invariants:
//!
//! * A store value has at most one session, made at its first claim: `.sessions/<id>.lock`,
//!   locked (`flock`, exclusive) before it gets its name and for as long as the store lives.
//!   A session is alive exactly while that lock is held; probes take a shared lock, so two
//!   probes of a dead session never mistake each other for its owner.
//! * A run is claimed by this store while its slot is in `Inner::claims`; the slot is added
//!   before the disk is touched (two tasks of one process never both go on) and removed on
//!   failure or release. A slot's token is the token of the claim that holds it.
//! * The `.claim` file is locked only while it is read and rewritten, so claims from several
//!   processes are serialised; a claim naming a live session other than ours is
//!   [`StoreError::RunBusy`], and every claim writes the previous token plus one.
//! * Releasing marks the file free only if it still names this session and this token.

use super::files::not_special;
use super::{Inner, corrupt, io_error, lock};
use crate::context::RunId;
use crate::store::{Claim, ClaimHold, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A claimed run, as its store knows it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) token: u64,
    /// The journal's last `seq` (0 when empty).
    pub(super) last_seq: u64,
    /// The journal, open for appending, with its length (everything in it ends with `\n`).
    pub(super) journal: Option<(File, u64)>,
}

/// A store's identity in `.sessions/`, held locked for the store's life.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: String,
    pub(super) path: PathBuf,
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

pub(super) fn check_token(held: &Held, run_id: RunId, token: u64) -> Result<(), StoreError> {
    if held.token == token {
        Ok(())
    } else {
        Err(StoreError::ClaimLost { run_id, token })
    }
}

/// A claim of a [`JsonCheckpointStore`](super::JsonCheckpointStore): releases the run when dropped.
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

impl Inner {
    /// The slot of a run `claim` holds in this store.
    pub(super) fn held(&self, claim: &Claim) -> Result<Arc<Mutex<Held>>, StoreError> {
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
    pub(super) fn take_claim(
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
    pub(super) fn session_alive(&self, id: &str) -> Result<bool, StoreError> {
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
    pub(super) fn release(&self, run_id: RunId, token: u64) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[tokio::test]
    async fn claiming_a_missing_run_writes_no_claim_file() {
        let (_tmp, store, _run_id, _claim) = running_run().await;
        let other = RunId::new_v4();
        let err = store.claim(other).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(!store.claim_path(other).exists());
    }

    #[tokio::test]
    async fn run_busy_names_the_holder() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let err = store.claim(run_id).await.unwrap_err();
        assert!(
            err.to_string().contains("another task of this process"),
            "{err}"
        );
        // Another store on the same directory stands for another process.
        let err = JsonCheckpointStore::new(store.dir())
            .claim(run_id)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );
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
    async fn a_claim_another_store_value_issued_is_not_this_ones() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        // Same run, same token, but this store value did not issue it (another process would).
        let other = JsonCheckpointStore::new(store.dir());
        let err = other.append(&claim, &entry(2)).await.unwrap_err();
        assert!(matches!(err, StoreError::ClaimLost { .. }), "{err:?}");
        let err = other
            .put_document(&claim, &document(run_id, RunStatus::Failed))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ClaimLost { .. }), "{err:?}");
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(loaded.journal, [entry(1)]);
        assert_eq!(loaded.document.status, RunStatus::Running);
    }

    #[tokio::test]
    async fn garbage_claim_file_is_corrupt_and_left_alone() {
        let (_tmp, store, run_id, claim) = running_run().await;
        drop(claim);
        let path = store.claim_path(run_id);
        fs::write(&path, b"not a claim").unwrap();
        let err = store.claim(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { location: p, .. } if *p == path.display().to_string()),
            "{err:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"not a claim");
    }
}
