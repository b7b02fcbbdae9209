//! Journal writing: a durable run's saves (resumable points, finished branches, inner
//! positions), the entry a stopped run writes, and the run's final document.

use crate::error::FlowError;
use crate::event::{CheckpointEvent, RunEvent};
use crate::run::{DurableRun, Halt, Rt};
use crate::store::{
    CheckpointStore, Claim, JournalEntry, PendingInput, PointRecord, RunDocument, RunStatus,
    StoreError,
};
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

impl Rt {
    /// Whether this run saves checkpoints (the generated driver skips [`reached`](Self::reached)
    /// otherwise). A flow nested in another flow's pipeline saves nothing of its own: it is one
    /// step of the enclosing flow, whose state type its points are not.
    #[inline]
    pub(crate) fn is_durable(&self) -> bool {
        self.durable().is_some()
    }

    #[inline]
    fn durable(&self) -> Option<&DurableRun> {
        match self.parent {
            None => self.core.durable.as_deref(),
            Some(_) => None,
        }
    }

    /// Saves a resumable point: the generated state as JSON, with the traces of the attempts
    /// since the previous save. Does nothing for a run without a store.
    pub(crate) fn reached(
        &self,
        name: Option<&'static str>,
        point: &dyn Any,
    ) -> impl Future<Output = Result<(), Halt>> + Send + '_ {
        let record = match (self.durable(), name) {
            (Some(durable), Some(name)) => Some(match (durable.point_json)(point) {
                Some(Ok(json)) => Ok((durable, name, json)),
                Some(Err(source)) => Err(Halt::new(FlowError::Checkpoint(StoreError::Serialize {
                    what: "a resumable point",
                    source,
                }))),
                None => Err(unserialisable(name)),
            }),
            _ => None,
        };
        async move {
            match record {
                None => Ok(()),
                Some(Err(halt)) => Err(halt),
                Some(Ok((durable, name, json))) => {
                    // Boxed: the journal's future is large and only durable runs need it.
                    Box::pin(self.journal(durable, name, PointRecord::Point(json))).await
                }
            }
        }
    }

    /// Saves one finished branch of the top-level parallel group `group`.
    pub(crate) async fn branch_reached(
        &self,
        group: &'static str,
        index: usize,
        json: impl FnOnce() -> Option<serde_json::Value>,
    ) -> Result<(), Halt> {
        let Some(durable) = self.durable() else {
            return Ok(());
        };
        let value = json().ok_or_else(|| unserialisable(group))?;
        let record = PointRecord::Branch {
            group: group.to_string(),
            index,
            value,
        };
        self.journal(durable, group, record).await
    }

    /// Saves an inner position: the value after a step of an `if` arm, a branch or a loop body,
    /// or (`iteration` given) an iteration of a loop that is not at the top level. `path` holds
    /// the iteration numbers of the loops around it.
    pub(crate) async fn inner_reached(
        &self,
        name: &'static str,
        path: &[u32],
        iteration: Option<u32>,
        json: impl FnOnce() -> Option<serde_json::Value>,
    ) -> Result<(), Halt> {
        let Some(durable) = self.durable() else {
            return Ok(());
        };
        let value = json().ok_or_else(|| unserialisable(name))?;
        let value = match iteration {
            None => value,
            Some(i) => serde_json::json!({ "iteration": i, "value": value }),
        };
        let record = PointRecord::Inner {
            name: name.to_string(),
            path: path.to_vec(),
            value,
        };
        Box::pin(self.journal(durable, name, record)).await
    }

    /// The error for a resumed point that is an inner position, which a journal's point
    /// records never are unless the file was edited.
    pub(crate) fn misplaced(&self, name: Option<&'static str>) -> Halt {
        let location = self
            .core
            .durable
            .as_ref()
            .map(|d| d.store.location(self.core.run_id))
            .unwrap_or_default();
        Halt::new(FlowError::Checkpoint(StoreError::Corrupt {
            location,
            reason: format!(
                "the last point is `{}`, a position inside an item, not a point between items",
                name.unwrap_or("?")
            ),
        }))
    }

    /// Journals the traces not yet saved when a durable run stops early.
    pub(crate) async fn stopped(&self) -> Result<(), FlowError> {
        let Some(durable) = &self.core.durable else {
            return Ok(());
        };
        self.journal(durable, "stopped", PointRecord::Stopped)
            .await
            .map_err(Halt::into_error)
    }

    async fn journal(
        &self,
        durable: &DurableRun,
        point: &'static str,
        record: PointRecord,
    ) -> Result<(), Halt> {
        let branch = match &record {
            PointRecord::Branch { index, .. } => Some(*index),
            _ => None,
        };
        let is_point = !matches!(record, PointRecord::Stopped);
        let mut journal = durable.journal.lock().await;
        let Some(claim) = &journal.claim else {
            // The run's final document is written: nothing more is journaled.
            return Ok(());
        };
        let traces = self.core.traces_since(journal.flushed);
        // A save covers the answers taken since the last one (the steps that took them are
        // done); a stop does not (they are asked again on resume, and take them again), except
        // the answers refused for not fitting their type, which a stop retires.
        let answered = if is_point {
            self.core.human.take_used()
        } else {
            self.core.human.take_refused()
        };
        if !is_point && traces.is_empty() && answered.is_empty() {
            // A stop with no traces to keep and no answer to retire has nothing to say.
            return Ok(());
        }
        let state = match durable.state_json {
            None => None,
            Some(to_json) => match to_json(&*self.state) {
                Some(Ok(json)) => Some(json),
                Some(Err(source)) => {
                    return Err(Halt::new(FlowError::Checkpoint(StoreError::Serialize {
                        what: "the shared state",
                        source,
                    })));
                }
                None => None,
            },
        };
        let entry = JournalEntry {
            seq: journal.seq + 1,
            record,
            traces,
            answered,
            state,
        };
        if let Err(e) = durable.store.append(claim, &entry).await {
            if is_point && !entry.answered.is_empty() {
                self.core.human.give_back_used(entry.answered);
            }
            return Err(Halt::new(FlowError::Checkpoint(e)));
        }
        journal.seq += 1;
        journal.flushed += entry.traces.len();
        drop(journal);
        // The save took time that belongs to no attempt.
        self.core.interrupted();
        self.core.emit(|| {
            RunEvent::CheckpointSaved(CheckpointEvent {
                point,
                branch,
                elapsed: self.core.elapsed(),
            })
        });
        Ok(())
    }
}

fn unserialisable(point: &'static str) -> Halt {
    let source = <serde_json::Error as serde::ser::Error>::custom(format!(
        "the value at `{point}` is not Serialize"
    ));
    Halt::new(FlowError::Checkpoint(StoreError::Serialize {
        what: "a resumable point",
        source,
    }))
}

/// Writes a durable run's final document (its status, output, error or pending questions) and
/// gives its claim up.
pub(crate) async fn finish_document(
    store: Arc<dyn CheckpointStore>,
    claim: Claim,
    mut doc: RunDocument,
    output: Result<Option<serde_json::Value>, serde_json::Error>,
    error: Option<String>,
    suspended: Vec<PendingInput>,
) -> Result<(), StoreError> {
    doc.output = output.map_err(|source| StoreError::Serialize {
        what: "the output",
        source,
    })?;
    doc.status = match (&doc.output, suspended.is_empty(), &error) {
        (_, false, _) => RunStatus::Suspended,
        (_, _, Some(_)) => RunStatus::Failed,
        (Some(_), _, _) => RunStatus::Completed,
        (None, true, None) => RunStatus::Failed,
    };
    doc.error = error;
    doc.pending = suspended;
    doc.updated_at = SystemTime::now();
    store.put_last_document(claim, &doc).await
}
