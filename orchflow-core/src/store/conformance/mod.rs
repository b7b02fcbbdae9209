//! The conformance suite every [`CheckpointStore`] runs: the store contract, case by case.
//!
//! A store's tests describe how to make an empty store with a [`StoreFixture`] and call
//! [`store_conformance!`](crate::store_conformance), which expands to one `#[test]` per case
//! (each on its own multi-thread tokio runtime), so a failure names its case:
//!
//! ```ignore
//! mod memory {
//!     orchflow_core::store_conformance!(orchflow_core::MemoryStore::default(), corruption: skipped);
//! }
//! mod sqlite {
//!     // `SqliteFixture` implements `StoreFixture`, including its corruption hooks.
//!     orchflow_core::store_conformance!(super::SqliteFixture::new());
//! }
//! ```
//!
//! The fixture expression is evaluated once per case, inside the case's runtime, and must give
//! an **empty** store each time. `corruption: skipped` marks the cases that need the fixture's
//! corruption hooks `#[ignore]`d (so the test report lists them as ignored, with why); without
//! it, a hook that does nothing fails its case.
//!
//! This is test code: it panics on every failed expectation, as tests do.
//!
//! The cases ([`cases`]): `create_then_load_round_trips`, `create_refuses_a_taken_id`,
//! `claim_is_exclusive_until_dropped`, `fencing_token_grows_with_every_claim`,
//! `writes_with_a_stale_claim_are_refused`, `appends_out_of_sequence_are_refused`,
//! `appends_load_back_in_order`, `put_document_replaces_the_document`,
//! `put_last_document_writes_and_gives_the_claim_up`, `missing_runs_are_not_found`, `list_runs_lists_runs_and_pending_questions`,
//! `racing_claims_have_one_winner`, `racing_creates_have_one_winner`,
//! `concurrent_appends_to_different_runs_all_land`, the queries
//! `list_runs_filters_by_flow_status_and_time`, `list_runs_pages_with_a_cursor` and
//! `journal_traces_and_questions_are_queried`, and with the corruption hooks
//! `a_corrupt_journal_is_reported` and `a_corrupt_document_is_reported_and_listed_apart`.
//!
//! Stores that are also a [`RunQueue`](crate::store::RunQueue) run the cases of [`queue`] too,
//! with [`store_queue_conformance!`](crate::store_queue_conformance):
//! `claim_next_takes_the_oldest_runnable_run`, `racing_workers_get_each_run_once`,
//! `mark_waiting_notes_runs_no_worker_knows`, `cancel_revokes_the_claim`, and with the
//! fixture's `lapse` hook `a_lapsed_claim_passes_to_the_next_writer`.

use super::{CheckpointStore, Claim, ClaimHold, FORMAT, FORMAT_VERSION, PendingInput};
use super::{
    JournalEntry, PointRecord, RunDocument, RunQuery, RunStatus, StatusCounts, StoreError,
};
use crate::context::RunId;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How the suite makes and damages the store under test.
pub trait StoreFixture: Send + Sync + 'static {
    /// The store under test.
    type Store: CheckpointStore + 'static;

    /// A handle on the fixture's store. Every call gives a new handle onto the same runs that
    /// counts as another writer as far as the store can tell (another store value on the same
    /// directory, another connection to the same database); for a store without such a notion,
    /// a clone.
    fn open(&self) -> impl Future<Output = Self::Store> + Send;

    /// Damages the journal of `run_id` (a run with entries 1 to 3, not claimed) so that its
    /// second entry can no longer be read as an entry: loading the run must then fail with
    /// [`StoreError::Corrupt`]. Returns `false` when the store cannot be damaged from outside.
    fn corrupt_journal(&self, run_id: RunId) -> impl Future<Output = bool> + Send {
        let _ = run_id;
        async { false }
    }

    /// Damages the document of `run_id` (not claimed) so that it can no longer be read as a
    /// document: loading the run must then fail with [`StoreError::Corrupt`], and listing must
    /// report it apart from the runs it can read. Returns `false` when the store cannot be
    /// damaged from outside.
    fn corrupt_document(&self, run_id: RunId) -> impl Future<Output = bool> + Send {
        let _ = run_id;
        async { false }
    }

    /// Makes `claim`'s lease lapse as if its holder had died: the store stops renewing it and
    /// treats it as expired, without releasing it. Returns `false` for stores whose claims
    /// cannot lapse (they live exactly as long as their holder).
    fn lapse(&self, claim: &Claim) -> impl Future<Output = bool> + Send {
        let _ = claim;
        async { false }
    }
}

/// A [`MemoryStore`](crate::MemoryStore) is its own fixture: its clones share its runs, and it
/// cannot be damaged from outside.
impl StoreFixture for crate::MemoryStore {
    type Store = crate::MemoryStore;

    async fn open(&self) -> crate::MemoryStore {
        self.clone()
    }
}

/// Runs one case: builds a multi-thread tokio runtime, makes the fixture in it and runs the
/// case to its end. What [`store_conformance!`](crate::store_conformance) expands to.
pub fn run<F, Fut>(fixture: impl FnOnce() -> F, case: impl FnOnce(F) -> Fut)
where
    F: StoreFixture,
    Fut: Future<Output = ()>,
{
    case_runtime().block_on(async move { case(fixture()).await });
}

/// The runtime a case runs on: multi-thread, two workers, so that racing cases race.
fn case_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance case")
}

/// Like [`run`], for a fixture that may not be there: a case whose fixture expression gives
/// `None` ends at once (the fixture says why: a server that is not configured, say). What
/// `store_conformance!(optional: …)` expands to.
pub fn run_optional<F, Fut>(fixture: impl FnOnce() -> Option<F>, case: impl FnOnce(F) -> Fut)
where
    F: StoreFixture,
    Fut: Future<Output = ()>,
{
    case_runtime().block_on(async move {
        if let Some(fixture) = fixture() {
            case(fixture).await;
        }
    });
}

/// Expands to one `#[test]` per case of the checkpoint-store conformance suite
/// (`orchflow_core::store::conformance`), for the fixture `$fixture` (an expression evaluated
/// once per case, giving a `StoreFixture` over an empty store). Call it inside a module of its
/// own, one per store. With `corruption: skipped`, the cases that damage the store through the
/// fixture's hooks are `#[ignore]`d. With `optional: $fixture`, the expression gives an
/// `Option` of a fixture, and a case whose fixture is `None` passes at once (for a store that
/// needs a server the environment may not have; the fixture says it was skipped).
///
/// ```ignore
/// mod memory {
///     orchflow_core::store_conformance!(orchflow_core::MemoryStore::default(), corruption: skipped);
/// }
/// mod postgres {
///     orchflow_core::store_conformance!(optional: PgFixture::from_env());
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! store_conformance {
    (optional: $fixture:expr $(,)?) => {
        $crate::__store_conformance_cases! { run_optional ($fixture) [] }
    };
    ($fixture:expr, corruption: skipped $(,)?) => {
        $crate::__store_conformance_cases! {
            run ($fixture) [#[ignore = "the store's fixture cannot damage it (corruption: skipped)"]]
        }
    };
    ($fixture:expr $(,)?) => {
        $crate::__store_conformance_cases! { run ($fixture) [] }
    };
}

/// The case list behind [`store_conformance!`](crate::store_conformance).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($run:ident ($fixture:expr) [$(#[$corruption:meta])?]) => {
        $crate::__store_conformance_cases! { @cases $run cases ($fixture) []
            create_then_load_round_trips
            create_refuses_a_taken_id
            claim_is_exclusive_until_dropped
            fencing_token_grows_with_every_claim
            writes_with_a_stale_claim_are_refused
            appends_out_of_sequence_are_refused
            appends_load_back_in_order
            put_document_replaces_the_document
            put_last_document_writes_and_gives_the_claim_up
            missing_runs_are_not_found
            list_runs_lists_runs_and_pending_questions
            racing_claims_have_one_winner
            racing_creates_have_one_winner
            concurrent_appends_to_different_runs_all_land
            list_runs_filters_by_flow_status_and_time
            list_runs_pages_with_a_cursor
            journal_traces_and_questions_are_queried
            list_runs_searches_and_counts
            graphs_are_kept_by_fingerprint
        }
        $crate::__store_conformance_cases! { @cases $run cases ($fixture) [$(#[$corruption])?]
            a_corrupt_journal_is_reported
            a_corrupt_document_is_reported_and_listed_apart
        }
    };
    (@cases $run:ident $suite:ident ($fixture:expr) [$(#[$attr:meta])?]) => {};
    (@cases $run:ident $suite:ident ($fixture:expr) [$(#[$attr:meta])?] $case:ident $($rest:ident)*) => {
        #[test]
        $(#[$attr])?
        fn $case() {
            $crate::store::conformance::$run(
                || $fixture,
                $crate::store::conformance::$suite::$case,
            );
        }
        $crate::__store_conformance_cases! { @cases $run $suite ($fixture) [$(#[$attr])?] $($rest)* }
    };
}

/// A claim a store never issued, with the token a writer believes it holds: what a writer
/// whose claim passed to another (or was never granted) shows.
struct Forged;

impl ClaimHold for Forged {
    fn release(self: Box<Self>) {}
}

fn forged(run_id: RunId, token: u64) -> Claim {
    Claim::new(run_id, token, Forged)
}

/// The time every test document is created at, give or take `offset` seconds.
fn at(offset: i64) -> SystemTime {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if offset < 0 {
        base - Duration::from_secs(offset.unsigned_abs())
    } else {
        base + Duration::from_secs(offset.unsigned_abs())
    }
}

/// A run's document, created `offset` seconds from the base time.
fn document(run_id: RunId, status: RunStatus, offset: i64) -> RunDocument {
    RunDocument {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        run_id,
        flow: "plan => act".to_string(),
        fingerprint: "0123456789abcdef".to_string(),
        shape: "plan => act".to_string(),
        input: serde_json::json!({ "goal": "conformance" }),
        status,
        pending: Vec::new(),
        output: None,
        error: None,
        created_at: at(offset),
        updated_at: at(offset) + Duration::from_millis(1500),
        waiting: None,
        lineage: Default::default(),
    }
}

fn entry(seq: u64) -> JournalEntry {
    JournalEntry::new(
        seq,
        PointRecord::Point(serde_json::json!({ "AfterPlan": seq })),
    )
}

/// An entry of every kind the runtime writes, with answered questions and saved state.
fn rich_entry(seq: u64) -> JournalEntry {
    let record = match seq % 5 {
        0 => PointRecord::Point(serde_json::json!({ "AfterPlan": { "n": seq, "s": "é\n\"" } })),
        1 => PointRecord::Inner {
            name: "Inner3AfterExecutor".to_string(),
            path: vec![0, 2],
            value: serde_json::json!({ "iteration": seq, "value": [1, 2] }),
        },
        2 => PointRecord::Branch {
            group: "InGroup2".to_string(),
            index: 1,
            value: serde_json::json!("ok"),
        },
        3 => PointRecord::Answer {
            question: "1/review".to_string(),
            text: "yes, ship it".to_string(),
        },
        _ => PointRecord::Stopped,
    };
    let mut entry = JournalEntry::new(seq, record);
    if seq.is_multiple_of(3) {
        entry.answered = vec!["1/review".to_string()];
        entry.state = Some(serde_json::json!({ "count": seq }));
    }
    entry
}

/// An entry with two traces: a failed attempt and its successful retry.
fn traced_entry(seq: u64) -> JournalEntry {
    let trace = |attempt: u32, success: bool| crate::trace::StepTrace {
        step: format!("step{seq}").into(),
        node: format!("{seq}").into(),
        parent: None,
        attempt,
        session: 1,
        parallel_group_id: None,
        item: u32::try_from(seq).ok(),
        input: Some(serde_json::json!({ "seq": seq })),
        output: success.then(|| serde_json::json!(seq * 2)),
        error: (!success).then(|| "flaky: try again".to_string()),
        outcome: if success {
            crate::trace::AttemptOutcome::Succeeded
        } else {
            crate::trace::AttemptOutcome::Failed
        },
        started_at: at(i64::try_from(seq).unwrap_or(0)),
        ended_at: at(i64::try_from(seq).unwrap_or(0)) + Duration::from_micros(1250),
        duration: Duration::from_micros(1250),
        success,
    };
    let mut e = entry(seq);
    e.traces = vec![trace(1, false), trace(2, true)];
    e
}

/// A run created and released, with entries `1..=entries`.
async fn released_run<S: CheckpointStore + ?Sized>(store: &S, entries: u64) -> RunId {
    claimed_run(store, entries).await.0
}

/// A new running run with journal entries `1..=entries`, and its claim.
async fn claimed_run<S: CheckpointStore + ?Sized>(store: &S, entries: u64) -> (RunId, Claim) {
    let run_id = RunId::new_v4();
    let claim = store
        .create(&document(run_id, RunStatus::Running, 0))
        .await
        .expect("create");
    for seq in 1..=entries {
        store.append(&claim, &entry(seq)).await.expect("append");
    }
    (run_id, claim)
}

async fn journal<S: CheckpointStore + ?Sized>(store: &S, run_id: RunId) -> Vec<JournalEntry> {
    store
        .load(run_id)
        .await
        .expect("load")
        .expect("the run is in the store")
        .journal
}

fn busy(result: &Result<Claim, StoreError>, run_id: RunId) {
    match result {
        Err(StoreError::RunBusy { run_id: id, holder }) => {
            assert_eq!(*id, run_id);
            assert!(!holder.is_empty(), "RunBusy names a holder");
        }
        other => panic!("expected RunBusy for {run_id}, got {other:?}"),
    }
}

/// The cases of the store contract, each a function of the fixture.
pub mod cases;
mod queries;
pub mod queue;

/// Expands to one `#[test]` per case of the [`RunQueue`](crate::store::RunQueue) conformance
/// suite (`orchflow_core::store::conformance::queue`), for a fixture whose store is a queue.
/// With `leases: skipped`, the case that needs the fixture's `lapse` hook is `#[ignore]`d;
/// `optional: $fixture` is as for [`store_conformance!`](crate::store_conformance).
///
/// ```ignore
/// mod memory_queue {
///     orchflow_core::store_queue_conformance!(orchflow_core::MemoryStore::default(), leases: skipped);
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! store_queue_conformance {
    (optional: $fixture:expr $(,)?) => {
        $crate::__store_conformance_cases! { @cases run_optional queue ($fixture) []
            claim_next_takes_the_oldest_runnable_run
            racing_workers_get_each_run_once
            mark_waiting_notes_runs_no_worker_knows
            cancel_revokes_the_claim
            a_lapsed_claim_passes_to_the_next_writer
        }
    };
    ($fixture:expr, leases: skipped $(,)?) => {
        $crate::__store_conformance_cases! { @cases run queue ($fixture) []
            claim_next_takes_the_oldest_runnable_run
            racing_workers_get_each_run_once
            mark_waiting_notes_runs_no_worker_knows
            cancel_revokes_the_claim
        }
        $crate::__store_conformance_cases! { @cases run queue ($fixture)
            [#[ignore = "the store's claims cannot lapse (leases: skipped)"]]
            a_lapsed_claim_passes_to_the_next_writer
        }
    };
    ($fixture:expr $(,)?) => {
        $crate::__store_conformance_cases! { @cases run queue ($fixture) []
            claim_next_takes_the_oldest_runnable_run
            racing_workers_get_each_run_once
            mark_waiting_notes_runs_no_worker_knows
            cancel_revokes_the_claim
            a_lapsed_claim_passes_to_the_next_writer
        }
    };
}
