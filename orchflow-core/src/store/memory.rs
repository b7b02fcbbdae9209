//! [`MemoryStore`]: runs kept in a map behind a mutex, for tests and examples.
//!
//! Invariants: every operation takes the map's lock once and does all its checks and its write
//! under it, so a claim, a refusal and a write are atomic with respect to each other. A run's
//! `token` only grows; `held` says whether the claim with that token is alive, and a claim's
//! release clears it only if no newer claim replaced it. Nothing is ever persisted: the runs
//! live as long as the last clone of the store.

use super::{
    Checkpoint, CheckpointStore, Claim, ClaimHold, FlowKey, JournalEntry, RunDocument, RunListing,
    RunQuery, RunQueue, RunStatus, StoreError, StoreFuture, runnable,
};
use crate::context::RunId;
use crate::graph::FlowGraph;

/// A store in memory, for tests: durable for the life of the value. Clones share the runs.
///
/// ```
/// use orchflow::{flow, step, MemoryStore};
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// let f = flow! { inc => inc };
/// let run = f.durable(store.clone()).run(1).await;
/// assert_eq!(run.output, Some(3));
/// assert_eq!(store.journal_len(run.run_id), 2);
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    runs: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<RunId, MemoryRun>>>,
    /// Flow graphs by fingerprint.
    graphs: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u64, FlowGraph>>>,
}

#[derive(Debug)]
struct MemoryRun {
    checkpoint: Checkpoint,
    /// The last claim's token.
    token: u64,
    /// Whether that claim is held.
    held: bool,
}

/// A [`MemoryStore`] claim: releases the run when dropped.
struct MemoryHold {
    runs: std::sync::Weak<std::sync::Mutex<std::collections::BTreeMap<RunId, MemoryRun>>>,
    run_id: RunId,
    token: u64,
}

impl ClaimHold for MemoryHold {
    fn release(self: Box<Self>) {
        if let Some(runs) = self.runs.upgrade() {
            let mut runs = runs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(run) = runs.get_mut(&self.run_id)
                && run.token == self.token
            {
                run.held = false;
            }
        }
    }
}

impl MemoryStore {
    /// How many journal entries a run has.
    pub fn journal_len(&self, run_id: RunId) -> usize {
        self.lock()
            .get(&run_id)
            .map_or(0, |r| r.checkpoint.journal.len())
    }

    /// The run ids in the store.
    pub fn runs(&self) -> Vec<RunId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<RunId, MemoryRun>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, run: &mut MemoryRun, run_id: RunId) -> Claim {
        run.token += 1;
        run.held = true;
        Claim::new(
            run_id,
            run.token,
            MemoryHold {
                runs: std::sync::Arc::downgrade(&self.runs),
                run_id,
                token: run.token,
            },
        )
    }

    /// The run `claim` holds, or why the write is refused.
    fn held<'r>(
        runs: &'r mut std::collections::BTreeMap<RunId, MemoryRun>,
        claim: &Claim,
    ) -> Result<&'r mut MemoryRun, StoreError> {
        match runs.get_mut(&claim.run_id) {
            Some(run) if run.held && run.token == claim.token => Ok(run),
            Some(_) => Err(StoreError::ClaimLost {
                run_id: claim.run_id,
                token: claim.token,
            }),
            None => Err(StoreError::NoDocument(claim.run_id)),
        }
    }
}

impl CheckpointStore for MemoryStore {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let mut runs = self.lock();
            if runs.contains_key(&document.run_id) {
                return Err(StoreError::RunExists(document.run_id));
            }
            let run = runs.entry(document.run_id).or_insert(MemoryRun {
                checkpoint: Checkpoint {
                    document: document.clone(),
                    journal: Vec::new(),
                },
                token: 0,
                held: false,
            });
            Ok(self.hold(run, document.run_id))
        })
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let mut runs = self.lock();
            match runs.get_mut(&run_id) {
                None => Err(StoreError::NotFound(run_id)),
                Some(run) if run.held => Err(StoreError::RunBusy {
                    run_id,
                    holder: "another handle of this store".to_string(),
                }),
                Some(run) => Ok(self.hold(run, run_id)),
            }
        })
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if document.run_id != claim.run_id {
                return Err(StoreError::ClaimLost {
                    run_id: claim.run_id,
                    token: claim.token,
                });
            }
            let mut runs = self.lock();
            let run = Self::held(&mut runs, claim)?;
            run.checkpoint.document = document.clone();
            Ok(())
        })
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut runs = self.lock();
            let run = Self::held(&mut runs, claim)?;
            let last = run.checkpoint.journal.last().map_or(0, |e| e.seq);
            if entry.seq != last + 1 {
                return Err(StoreError::OutOfSequence {
                    run_id: claim.run_id,
                    last,
                    found: entry.seq,
                });
            }
            run.checkpoint.journal.push(entry.clone());
            Ok(())
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(async move { Ok(self.lock().get(&run_id).map(|r| r.checkpoint.clone())) })
    }

    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .get(&run_id)
                .map(|r| r.checkpoint.document.clone()))
        })
    }

    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        Box::pin(async move {
            let runs = self
                .lock()
                .values()
                .filter(|r| query.matches(&r.checkpoint.document))
                .map(|r| r.checkpoint.document.clone())
                .collect();
            Ok(query.select(runs, Vec::new()))
        })
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut graphs = self.graphs.lock().unwrap_or_else(|p| p.into_inner());
            graphs
                .entry(graph.fingerprint)
                .or_insert_with(|| graph.clone());
            Ok(())
        })
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        Box::pin(async move {
            let Some(fingerprint) = crate::graph::parse_fingerprint(fingerprint) else {
                return Ok(None);
            };
            let graphs = self.graphs.lock().unwrap_or_else(|p| p.into_inner());
            Ok(graphs.get(&fingerprint).cloned())
        })
    }
}

/// Runs are taken oldest first; a claim is held until the [`Claim`] is dropped, so a run whose
/// claim was dropped half-way (its writer gone) is runnable again.
///
/// ```
/// use orchflow::store::{CheckpointStore, FlowKey, RunQueue, RunStatus};
/// use orchflow::{flow, step, MemoryStore};
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// let f = flow! { inc };
/// let run_id = f.durable(store.clone()).submit(1).await.unwrap();
/// let known = [FlowKey::new(f.name(), f.fingerprint())];
/// let claim = store.claim_next(&known).await.unwrap().expect("a queued run");
/// assert_eq!(claim.run_id(), run_id);
/// assert!(store.claim_next(&known).await.unwrap().is_none(), "claimed runs are not handed out twice");
/// assert_eq!(store.cancel(run_id).await.unwrap(), RunStatus::Queued);
/// # }
/// ```
impl RunQueue for MemoryStore {
    fn claim_next<'a>(&'a self, flows: &'a [FlowKey]) -> StoreFuture<'a, Option<Claim>> {
        Box::pin(async move {
            let mut runs = self.lock();
            let next = runs
                .values()
                .filter(|r| {
                    let d = &r.checkpoint.document;
                    runnable(&d.status, r.held) && knows(flows, d)
                })
                .map(|r| {
                    let d = &r.checkpoint.document;
                    (d.created_at, d.run_id)
                })
                .min();
            let Some((_, run_id)) = next else {
                return Ok(None);
            };
            let Some(run) = runs.get_mut(&run_id) else {
                return Ok(None);
            };
            run.checkpoint.document.waiting = None;
            Ok(Some(self.hold(run, run_id)))
        })
    }

    fn mark_waiting<'a>(&'a self, flows: &'a [FlowKey], reason: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut marked = 0;
            for run in self.lock().values_mut() {
                let held = run.held;
                let d = &mut run.checkpoint.document;
                if runnable(&d.status, held) && !knows(flows, d) && d.waiting.is_none() {
                    d.waiting = Some(reason.to_string());
                    marked += 1;
                }
            }
            Ok(marked)
        })
    }

    fn cancel<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, RunStatus> {
        Box::pin(async move {
            let mut runs = self.lock();
            let run = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            let before = run.checkpoint.document.status.clone();
            if matches!(before, RunStatus::Completed | RunStatus::Cancelled) {
                return Ok(before);
            }
            // Revoke: the holder's token is no longer the run's.
            run.token += 1;
            run.held = false;
            let d = &mut run.checkpoint.document;
            d.status = RunStatus::Cancelled;
            d.pending.clear();
            d.waiting = None;
            d.updated_at = std::time::SystemTime::now();
            Ok(before)
        })
    }
}

/// Whether `flows` has the flow of `document`.
fn knows(flows: &[FlowKey], document: &RunDocument) -> bool {
    flows
        .iter()
        .any(|k| k.name == document.flow && k.fingerprint == document.fingerprint)
}
