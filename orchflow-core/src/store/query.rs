//! What every store answers about its runs: listings filtered and paged
//! ([`RunQuery`] → [`RunListing`]), a run's journal and traces, and the questions waiting for
//! a person ([`Question`]).
//!
//! Order and paging: runs are listed newest first by creation time, ties broken by run id
//! (descending), so the order is total and stable. A page ends with a [`RunCursor`] (the last
//! run's creation time and id); the next page is asked with [`RunQuery::after`] and starts
//! strictly after it, so runs created while paging never repeat a run or skip one that
//! existed when the first page was read (keyset paging: no offsets).

use super::{PendingInput, RunDocument, RunStatus, StoreError};
use crate::context::RunId;
use std::time::SystemTime;

/// Which runs to list, and how many.
///
/// Every filter set must match; [`RunQuery::default`] lists every run, unpaged.
///
/// ```
/// use orchflow::store::{RunQuery, RunStatus};
/// let q = RunQuery::new().flow("publish").status(RunStatus::Suspended).limit(50);
/// assert_eq!(q.flow.as_deref(), Some("publish"));
/// assert_eq!(q.limit, Some(50));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RunQuery {
    /// Only runs of the flow with this name.
    pub flow: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs created at or after this time.
    pub since: Option<SystemTime>,
    /// Only runs created before this time.
    pub until: Option<SystemTime>,
    /// At most this many runs (a page); `None` lists all.
    pub limit: Option<usize>,
    /// Only runs after this cursor in the listing's order (the next page).
    pub after: Option<RunCursor>,
    /// Only runs whose id starts with this text, or whose flow's name contains it (a search
    /// box); matched exactly, without wildcards or case folding.
    pub text: Option<String>,
}

/// Where a page of a listing ended: the last run's creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunCursor {
    /// The last listed run's creation time.
    pub created_at: SystemTime,
    /// The last listed run.
    pub run_id: RunId,
}

impl RunCursor {
    /// The cursor just after `document` in a listing.
    pub fn of(document: &RunDocument) -> Self {
        RunCursor {
            created_at: document.created_at,
            run_id: document.run_id,
        }
    }
}

impl RunQuery {
    /// Every run, unpaged (the same as `RunQuery::default()`).
    pub fn new() -> Self {
        RunQuery::default()
    }

    /// Only runs of the flow named `name`.
    pub fn flow(mut self, name: impl Into<String>) -> Self {
        self.flow = Some(name.into());
        self
    }

    /// Only runs with `status`.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs created at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }

    /// Only runs created before `t`.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }

    /// At most `n` runs.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The page after `cursor` (from [`RunListing::next`]).
    pub fn after(mut self, cursor: RunCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Only runs whose id starts with `text` or whose flow's name contains it.
    ///
    /// ```
    /// use orchflow::store::RunQuery;
    /// let q = RunQuery::new().text("publ");
    /// assert_eq!(q.text.as_deref(), Some("publ"));
    /// ```
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Whether `document` passes the filters and comes after the cursor (the limit aside).
    pub fn matches(&self, document: &RunDocument) -> bool {
        self.counts(document)
            && self.status.as_ref().is_none_or(|s| *s == document.status)
            && self.after.is_none_or(|c| RunCursor::of(document) < c)
    }

    /// Whether `document` passes the filters that
    /// [`CheckpointStore::count_runs`](super::CheckpointStore::count_runs) applies: flow, time
    /// and text (not status, cursor or limit).
    pub fn counts(&self, document: &RunDocument) -> bool {
        self.flow.as_ref().is_none_or(|f| *f == document.flow)
            && self.text.as_ref().is_none_or(|t| {
                document.run_id.to_string().starts_with(t.as_str())
                    || document.flow.contains(t.as_str())
            })
            && self.since.is_none_or(|t| document.created_at >= t)
            && self.until.is_none_or(|t| document.created_at < t)
    }

    /// The counts per status of `documents` under this query's flow, time and text filters,
    /// for stores that read every document anyway.
    pub fn tally<'d>(&self, documents: impl IntoIterator<Item = &'d RunDocument>) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for d in documents.into_iter().filter(|d| self.counts(d)) {
            counts.add(&d.status, 1);
        }
        counts
    }

    /// The listing of `documents` this query asks for: filtered, sorted newest first, cut to
    /// the limit with the cursor of the next page. For stores that read every document anyway
    /// (memory, files); database stores do the same in their query.
    ///
    /// ```
    /// use orchflow::store::{RunListing, RunQuery};
    /// let listing = RunQuery::new().limit(10).select(Vec::new(), Vec::new());
    /// assert!(listing.runs.is_empty() && listing.next.is_none());
    /// ```
    pub fn select(&self, documents: Vec<RunDocument>, unreadable: Vec<StoreError>) -> RunListing {
        let mut runs: Vec<RunDocument> =
            documents.into_iter().filter(|d| self.matches(d)).collect();
        runs.sort_by(|a, b| RunCursor::of(b).cmp(&RunCursor::of(a)));
        let mut next = None;
        if let Some(limit) = self.limit
            && runs.len() > limit
        {
            runs.truncate(limit);
            next = runs.last().map(RunCursor::of);
        }
        RunListing {
            runs,
            unreadable,
            next,
        }
    }
}

/// How many runs have each status ([`CheckpointStore::count_runs`](super::CheckpointStore::count_runs)).
///
/// ```
/// use orchflow::store::{RunStatus, StatusCounts};
/// let mut c = StatusCounts::default();
/// c.add(&RunStatus::Failed, 2);
/// assert_eq!((c.failed, c.get(&RunStatus::Failed), c.total()), (2, 2, 2));
/// assert_eq!(serde_json::to_value(&c).unwrap()["failed"], 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusCounts {
    /// Runs waiting for a worker.
    pub queued: u64,
    /// Runs started and not finished.
    pub running: u64,
    /// Runs waiting for answers.
    pub suspended: u64,
    /// Runs finished with an output.
    pub completed: u64,
    /// Runs stopped by a failed step.
    pub failed: u64,
    /// Cancelled runs.
    pub cancelled: u64,
}

impl StatusCounts {
    /// Adds `n` runs of `status`.
    pub fn add(&mut self, status: &RunStatus, n: u64) {
        *self.slot(status) += n;
    }

    /// How many runs have `status`.
    pub fn get(&self, status: &RunStatus) -> u64 {
        let mut copy = *self;
        *copy.slot(status)
    }

    /// How many runs in all.
    pub fn total(&self) -> u64 {
        self.queued + self.running + self.suspended + self.completed + self.failed + self.cancelled
    }

    fn slot(&mut self, status: &RunStatus) -> &mut u64 {
        match status {
            RunStatus::Queued => &mut self.queued,
            RunStatus::Running => &mut self.running,
            RunStatus::Suspended => &mut self.suspended,
            RunStatus::Completed => &mut self.completed,
            RunStatus::Failed => &mut self.failed,
            RunStatus::Cancelled => &mut self.cancelled,
        }
    }
}

/// What [`CheckpointStore::list_runs`](super::CheckpointStore::list_runs) found: one page.
///
/// ```
/// use orchflow::human;
/// use orchflow::store::{CheckpointStore, RunQuery, RunStatus};
/// use orchflow::{flow, step, MemoryStore};
/// #[step] async fn inc(x: u32) -> u32 { x + 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// flow! { inc }.durable(store.clone()).run(1).await;
/// let ask = human::ask("ok", |x: &u32| format!("ok {x}?"));
/// let waiting = flow! { (ask) }.with_input(human::Suspend).durable(store.clone()).run(2).await;
///
/// let listing = store.list_runs(&RunQuery::new()).await.unwrap();
/// assert_eq!(listing.runs.len(), 2);
/// assert!(listing.unreadable.is_empty() && listing.next.is_none());
/// let pending: Vec<_> = listing.pending().map(|(run, q)| (run, q.prompt.as_str())).collect();
/// assert_eq!(pending, [(waiting.run_id, "ok 2?")]);
///
/// let page = store.list_runs(&RunQuery::new().status(RunStatus::Completed).limit(1)).await.unwrap();
/// assert_eq!(page.runs.len(), 1);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct RunListing {
    /// The runs' documents, newest (by creation) first.
    pub runs: Vec<RunDocument>,
    /// The runs whose documents could not be read, each with why.
    pub unreadable: Vec<StoreError>,
    /// Where the next page starts, when the limit cut the listing short.
    pub next: Option<RunCursor>,
}

impl RunListing {
    /// Every question a suspended run waits on, with its run, in the order of `runs`.
    pub fn pending(&self) -> impl Iterator<Item = (RunId, &PendingInput)> + '_ {
        self.runs
            .iter()
            .filter(|d| d.status == RunStatus::Suspended)
            .flat_map(|d| d.pending.iter().map(move |p| (d.run_id, p)))
    }
}

/// A question a suspended run waits on, as
/// [`CheckpointStore::questions`](super::CheckpointStore::questions) lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The run.
    pub run_id: RunId,
    /// The run's flow.
    pub flow: String,
    /// The question.
    pub pending: PendingInput,
    /// Since when the run waits (its document's last write).
    pub since: SystemTime,
}

impl Question {
    /// The questions of a listing's suspended runs, in its order.
    pub fn all_of(listing: &RunListing) -> Vec<Question> {
        listing
            .runs
            .iter()
            .filter(|d| d.status == RunStatus::Suspended)
            .flat_map(|d| {
                d.pending.iter().map(move |p| Question {
                    run_id: d.run_id,
                    flow: d.flow.clone(),
                    pending: p.clone(),
                    since: d.updated_at,
                })
            })
            .collect()
    }
}
