//! Operations on a stored run that need no flow code: answering a suspended run's question and
//! requeueing a run for a worker. They are what [`Durable::submit_answer`](crate::Durable::submit_answer)
//! is built on, and what tools that only have a store (the `orchflow` CLI, a viewer) call.
//!
//! Invariants: each operation claims the run, reads it, and writes under that claim, so it
//! never races the run's writer (a run being written is [`StoreError::RunBusy`], except a run
//! that is just suspending, whose release is waited for up to two seconds). An answer is
//! journaled before the document says the run is queued: a crash between the two leaves a
//! suspended run whose answer a resume finds, and answering again then only requeues it. The
//! flow's identity is not checked here: the worker that resumes the run does that.

use crate::context::RunId;
use crate::durable::ResumeError;
use crate::store::{
    CheckpointStore, Claim, JournalEntry, PendingInput, PointRecord, RunDocument, RunStatus,
    StoreError,
};
use std::time::{Duration, Instant, SystemTime};

/// Answers a question of a suspended run and queues the run for a worker (status
/// [`Queued`](RunStatus::Queued); the question leaves `pending`). `question` names the
/// question ([`PendingInput::question`], or the asking step's name when that is unambiguous);
/// `None` answers the only one. Returns the run's new status.
///
/// Fails with [`ResumeError::NotFound`], [`ResumeError::NotSuspended`] (the run waits on no
/// question), [`ResumeError::UnknownQuestion`], [`ResumeError::AmbiguousAnswer`],
/// [`ResumeError::Cancelled`], or the store's error ([`StoreError::RunBusy`] while another
/// writer holds the run). An answer already journaled and not yet used is not journaled again.
///
/// ```
/// use orchflow::store::{ops, CheckpointStore, RunStatus};
/// use orchflow::{flow, human, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// let review = human::ask("review", |d: &String| format!("publish {d}?"));
/// let f = flow! { (review) }.with_input(human::Suspend);
/// let waiting = f.durable(store.clone()).run("post".to_string()).await;
///
/// // No flow code needed: a tool with only the store answers.
/// let status = ops::answer(&store, waiting.run_id, Some("review"), "yes").await.unwrap();
/// assert_eq!(status, RunStatus::Queued);
/// let done = f.durable(store.clone()).resume(waiting.run_id).await.unwrap();
/// assert_eq!(done.output.map(|a| a.text), Some("yes".to_string()));
/// # }
/// ```
pub async fn answer<S: CheckpointStore + ?Sized>(
    store: &S,
    run_id: RunId,
    question: Option<&str>,
    text: impl Into<String>,
) -> Result<RunStatus, ResumeError> {
    let claim = claim_suspended(store, run_id).await?;
    let (document, journal) = read(store, &claim).await?;
    answer_claimed(store, &claim, document, &journal, question, text.into()).await?;
    Ok(RunStatus::Queued)
}

/// Queues a run for a worker to continue from its last checkpoint: a failed run (its failed
/// step is tried again), a suspended run whose questions are all answered, a queued run
/// (nothing changes), or a running run whose writer is gone (its claim lapsed). Returns the
/// run's new status.
///
/// Fails with [`ResumeError::NotFound`]; [`ResumeError::Cancelled`] for a cancelled run;
/// [`ResumeError::Finished`] for a completed one; [`ResumeError::StillWaiting`] for a suspended
/// run with questions unanswered; the store's [`StoreError::RunBusy`] while a writer holds it.
///
/// ```
/// use orchflow::store::{ops, CheckpointStore, RunStatus};
/// use orchflow::{flow, step, MemoryStore};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// static FIXED: AtomicBool = AtomicBool::new(false);
/// #[step] async fn flaky(x: u32) -> Result<u32, std::io::Error> {
///     if FIXED.load(Ordering::SeqCst) { Ok(x) } else { Err(std::io::Error::other("down")) }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// let f = flow! { flaky };
/// let failed = f.durable(store.clone()).run(7).await;
/// assert_eq!(ops::requeue(&store, failed.run_id).await.unwrap(), RunStatus::Queued);
/// FIXED.store(true, Ordering::SeqCst);
/// let done = f.durable(store.clone()).resume(failed.run_id).await.unwrap();
/// assert_eq!(done.output, Some(7));
/// # }
/// ```
pub async fn requeue<S: CheckpointStore + ?Sized>(
    store: &S,
    run_id: RunId,
) -> Result<RunStatus, ResumeError> {
    let claim = match store.claim(run_id).await {
        Ok(claim) => claim,
        Err(StoreError::NotFound(id)) => return Err(ResumeError::NotFound(id)),
        Err(e) => return Err(e.into()),
    };
    let (mut document, _) = read(store, &claim).await?;
    match document.status {
        RunStatus::Queued => return Ok(RunStatus::Queued),
        RunStatus::Cancelled => return Err(ResumeError::Cancelled(run_id)),
        RunStatus::Completed => return Err(ResumeError::Finished(run_id)),
        RunStatus::Suspended if !document.pending.is_empty() => {
            return Err(ResumeError::StillWaiting {
                run_id,
                pending: document
                    .pending
                    .iter()
                    .map(|p| p.question.clone())
                    .collect(),
            });
        }
        RunStatus::Suspended | RunStatus::Failed | RunStatus::Running => {}
    }
    document.status = RunStatus::Queued;
    document.error = None;
    document.waiting = None;
    document.updated_at = SystemTime::now();
    store.put_document(&claim, &document).await?;
    Ok(RunStatus::Queued)
}

/// Journals the answer (unless one is pending already) and writes the run queued, under
/// `claim`, for a run read as `document` and `journal`.
pub(crate) async fn answer_claimed<S: CheckpointStore + ?Sized>(
    store: &S,
    claim: &Claim,
    mut document: RunDocument,
    journal: &[JournalEntry],
    question: Option<&str>,
    text: String,
) -> Result<(), ResumeError> {
    let question = answered_question(&document, question)?;
    if !answer_pending(journal, &question) {
        let seq = journal.last().map_or(0, |e| e.seq) + 1;
        let entry = JournalEntry::new(
            seq,
            PointRecord::Answer {
                question: question.clone(),
                text,
            },
        );
        store.append(claim, &entry).await?;
    }
    document.pending.retain(|p| p.question != question);
    document.status = RunStatus::Queued;
    document.waiting = None;
    document.updated_at = SystemTime::now();
    store.put_document(claim, &document).await?;
    Ok(())
}

/// Claims a run to answer it. A suspended run's writer writes the suspended document and then
/// releases its claim: an answer that comes in between waits for the release, polling every
/// 20 ms for up to two seconds, instead of failing with `RunBusy`.
pub(crate) async fn claim_suspended<S: CheckpointStore + ?Sized>(
    store: &S,
    run_id: RunId,
) -> Result<Claim, ResumeError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match store.claim(run_id).await {
            Ok(claim) => return Ok(claim),
            Err(StoreError::NotFound(id)) => return Err(ResumeError::NotFound(id)),
            Err(busy @ StoreError::RunBusy { .. }) => {
                let suspending = matches!(
                    store.load(run_id).await,
                    Ok(Some(c)) if c.document.status == RunStatus::Suspended
                );
                if !suspending || Instant::now() >= deadline {
                    return Err(busy.into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The claimed run's document and journal; a cancelled run is refused.
async fn read<S: CheckpointStore + ?Sized>(
    store: &S,
    claim: &Claim,
) -> Result<(RunDocument, Vec<JournalEntry>), ResumeError> {
    let run_id = claim.run_id();
    let Some(checkpoint) = store.load(run_id).await? else {
        return Err(ResumeError::NotFound(run_id));
    };
    if checkpoint.document.status == RunStatus::Cancelled {
        return Err(ResumeError::Cancelled(run_id));
    }
    Ok((checkpoint.document, checkpoint.journal))
}

/// The question an answer is for: the one `name` names, or the only one pending.
pub(crate) fn answered_question(
    document: &RunDocument,
    name: Option<&str>,
) -> Result<String, ResumeError> {
    let run_id = document.run_id;
    // A queued run may still list questions: answered ones are taken off as they come in.
    let waits = matches!(document.status, RunStatus::Suspended | RunStatus::Queued);
    if !waits || document.pending.is_empty() {
        return Err(ResumeError::NotSuspended {
            run_id,
            status: document.status.clone(),
        });
    }
    let pending = || {
        document
            .pending
            .iter()
            .map(|p| p.question.clone())
            .collect()
    };
    let matching: Vec<&PendingInput> = match name {
        None => document.pending.iter().collect(),
        Some(name) => match document.pending.iter().find(|p| p.question == name) {
            Some(exact) => vec![exact],
            None => document
                .pending
                .iter()
                .filter(|p| p.is_named(name))
                .collect(),
        },
    };
    match (matching.as_slice(), name) {
        ([one], _) => Ok(one.question.clone()),
        ([], Some(name)) => Err(ResumeError::UnknownQuestion {
            run_id,
            question: name.to_string(),
            pending: pending(),
        }),
        (_, _) => Err(ResumeError::AmbiguousAnswer {
            run_id,
            pending: matching.iter().map(|p| p.question.clone()).collect(),
        }),
    }
}

/// Whether the journal has an answer to `question` that no step has used yet.
fn answer_pending(journal: &[JournalEntry], question: &str) -> bool {
    let used = journal
        .iter()
        .rposition(|e| e.answered.iter().any(|q| q == question));
    journal[used.map_or(0, |i| i + 1)..]
        .iter()
        .any(|e| matches!(&e.record, PointRecord::Answer { question: q, .. } if q == question))
}
