//! A durable flow's side of a run queue: submitting a run for a worker, running a run a
//! worker claimed, and answering a suspended run so that a worker continues it.

use super::{Durable, ResumeError};
use crate::context::RunId;
use crate::flow::Driver;
use crate::result::FlowResult;
use crate::step::bounds::StateReq;
use crate::store::{Claim, RunStatus, StoreError, ops};

impl<'f, T, I, O, N, P, F> Durable<'f, T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    /// Submits a run for a worker to run: the run is written with status
    /// [`Queued`](RunStatus::Queued) and its input, and nothing runs here. Returns its id.
    /// Fails when the input cannot be serialised or the store cannot write.
    ///
    /// ```
    /// use orchflow::store::{CheckpointStore, RunStatus};
    /// use orchflow::{flow, step, MemoryStore};
    /// #[step] async fn inc(x: u32) -> u32 { x + 1 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let run_id = flow! { inc }.durable(store.clone()).submit(41).await.unwrap();
    /// let saved = store.load(run_id).await.unwrap().unwrap();
    /// assert_eq!(saved.document.status, RunStatus::Queued);
    /// assert!(saved.journal.is_empty());
    /// # }
    /// ```
    pub async fn submit(&self, input: I) -> Result<RunId, StoreError> {
        let run_id = RunId::new_v4();
        let document = self.document(run_id, &input, RunStatus::Queued)?;
        self.keep_graph().await?;
        // The claim `create` returns is released at once: the run waits for a worker.
        drop(self.store.create(&document).await?);
        Ok(run_id)
    }

    /// Runs (or continues) the run `claim` holds, as [`resume`](Self::resume) does after
    /// claiming it itself: what a worker calls with a claim from
    /// [`RunQueue::claim_next`](crate::store::RunQueue::claim_next). The claim is released
    /// when the run stops. Fails as `resume` does, and with [`ResumeError::Cancelled`] for a
    /// cancelled run.
    pub async fn resume_claimed(&self, claim: Claim) -> Result<FlowResult<O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        let run_id = claim.run_id();
        let loaded = self.load_claimed(claim, None).await?;
        self.run_loaded(run_id, loaded, |saved| self.restored_state(saved))
            .await
    }

    /// Records the answer to a question of a suspended run and makes the run runnable for a
    /// worker ([`Queued`](RunStatus::Queued)), without running it here; the answered question
    /// leaves the run's `pending` list. `question` may be `None` when the run waits on one
    /// question. Fails as [`answer_to`](Self::answer_to) does (a run not waiting, an unknown or
    /// ambiguous question, a run another writer holds). A run whose document says it is
    /// suspended while its writer still holds it (the writer is releasing it) is waited for,
    /// up to two seconds, before `RunBusy` is returned.
    ///
    /// ```
    /// use orchflow::human::{self, Answer};
    /// use orchflow::store::{CheckpointStore, RunStatus};
    /// use orchflow::{flow, step, MemoryStore};
    /// #[step] async fn decide(a: Answer<u8>) -> bool { a.text == "yes" }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ok = human::ask("ok", |x: &u8| format!("ok {x}?"));
    /// let f = flow! { (ok) => decide }.with_input(human::Suspend);
    /// let store = MemoryStore::default();
    /// let waiting = f.durable(store.clone()).run(1).await;
    /// f.durable(store.clone()).submit_answer(waiting.run_id, None, "yes").await.unwrap();
    /// let saved = store.load(waiting.run_id).await.unwrap().unwrap();
    /// assert_eq!(saved.document.status, RunStatus::Queued);
    /// // A worker (here: this process) continues it with the answer.
    /// let done = f.durable(store.clone()).resume(waiting.run_id).await.unwrap();
    /// assert_eq!(done.output, Some(true));
    /// # }
    /// ```
    pub async fn submit_answer(
        &self,
        run_id: RunId,
        question: Option<&str>,
        answer: impl Into<String>,
    ) -> Result<(), ResumeError> {
        let claim = ops::claim_suspended(&*self.store, run_id).await?;
        let (document, journal) = self.read_claimed(&claim).await?;
        ops::answer_claimed(
            &*self.store,
            &claim,
            document,
            &journal,
            question,
            answer.into(),
        )
        .await
    }
}
