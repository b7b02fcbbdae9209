//! Stores that hand runs to workers: [`RunQueue`] (its docs say which runs are runnable).

use super::{CheckpointStore, Claim, RunStatus, StoreFuture};
use crate::context::RunId;

/// A flow as a worker knows it: its name and its structural fingerprint (16 hex digits, as in
/// [`RunDocument::fingerprint`](super::RunDocument::fingerprint)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// The flow's name.
    pub name: String,
    /// The flow's fingerprint.
    pub fingerprint: String,
}

impl FlowKey {
    /// A flow key.
    ///
    /// ```
    /// use orchflow::store::FlowKey;
    /// let key = FlowKey::new("publish", "0123456789abcdef");
    /// assert_eq!(key.to_string(), "publish@0123456789abcdef");
    /// ```
    pub fn new(name: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        FlowKey {
            name: name.into(),
            fingerprint: fingerprint.into(),
        }
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.fingerprint)
    }
}

/// A store workers take runs from.
///
/// A run is **runnable** when its status is [`Queued`](RunStatus::Queued) (submitted, or
/// answered) or [`Running`](RunStatus::Running) with no claim held (its writer died or gave
/// it up half-way), and no other state is: a suspended run waits for answers, a failed run
/// for someone to decide to retry it, and completed and cancelled runs are done.
///
/// A worker asks for the oldest runnable run of the flows it knows
/// ([`RunQueue::claim_next`]) and gets it claimed, exactly as
/// [`CheckpointStore::claim`] would: every write it makes then carries the claim's fencing
/// token. Two workers asking at once never get the same run. Runs of flows no worker knows stay
/// queued, and a worker writes why on them ([`RunQueue::mark_waiting`], read back as
/// [`RunDocument::waiting`](super::RunDocument::waiting)).
///
/// A store shows it keeps this contract with the conformance suite, as for
/// [`CheckpointStore`].
pub trait RunQueue: CheckpointStore {
    /// Claims the oldest (by creation) runnable run whose flow is one of `flows`, clearing its
    /// [`waiting`](super::RunDocument::waiting) note; `Ok(None)` when there is none. Runs of
    /// other flows are left as they are.
    fn claim_next<'a>(&'a self, flows: &'a [FlowKey]) -> StoreFuture<'a, Option<Claim>>;

    /// Writes `reason` as the [`waiting`](super::RunDocument::waiting) note of every runnable
    /// run whose flow is not one of `flows` and that has no note yet; returns how many runs
    /// it marked. Needs no claim, and changes nothing else about the runs.
    fn mark_waiting<'a>(&'a self, flows: &'a [FlowKey], reason: &'a str) -> StoreFuture<'a, u64>;

    /// Cancels a run: its status becomes [`Cancelled`](RunStatus::Cancelled) and a claim held
    /// on it is revoked (its next write is refused with
    /// [`ClaimLost`](super::StoreError::ClaimLost)), in one atomic step. Returns the status the
    /// run had; a completed or already cancelled run is left as it is. Fails with
    /// [`NotFound`](super::StoreError::NotFound) for an unknown run.
    fn cancel<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, RunStatus>;
}

impl<S: RunQueue + ?Sized> RunQueue for std::sync::Arc<S> {
    fn claim_next<'a>(&'a self, flows: &'a [FlowKey]) -> StoreFuture<'a, Option<Claim>> {
        (**self).claim_next(flows)
    }
    fn mark_waiting<'a>(&'a self, flows: &'a [FlowKey], reason: &'a str) -> StoreFuture<'a, u64> {
        (**self).mark_waiting(flows, reason)
    }
    fn cancel<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, RunStatus> {
        (**self).cancel(run_id)
    }
}

/// Whether a run with `status` and a claim held or not is runnable (see [`RunQueue`]).
pub fn runnable(status: &RunStatus, claimed: bool) -> bool {
    match status {
        RunStatus::Queued => !claimed,
        RunStatus::Running => !claimed,
        RunStatus::Suspended | RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled => {
            false
        }
    }
}
