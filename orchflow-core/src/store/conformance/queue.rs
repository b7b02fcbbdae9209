//! The cases of the [`RunQueue`] contract, each a function of the fixture: what workers rely
//! on. Run with [`store_queue_conformance!`](crate::store_queue_conformance).

use super::*;
use crate::store::{FlowKey, RunQueue};
use std::collections::BTreeSet;

fn key(name: &str) -> FlowKey {
    FlowKey::new(name, "0123456789abcdef")
}

/// The run `claim_next` hands out, if any; a store error fails the case.
async fn next<S: RunQueue + ?Sized>(store: &S, flows: &[FlowKey]) -> Option<Claim> {
    store.claim_next(flows).await.expect("claim_next")
}

/// A run of `flow` with `status`, created `offset` seconds from the base time and released.
async fn run_of<S: CheckpointStore + ?Sized>(
    store: &S,
    flow: &str,
    status: RunStatus,
    offset: i64,
) -> RunId {
    let run_id = RunId::new_v4();
    let mut d = document(run_id, status, offset);
    d.flow = flow.to_string();
    drop(store.create(&d).await.expect("create"));
    run_id
}

/// A queued run of `plan`, handed out by `claim_next`, with journal entry 1 written under
/// that claim.
async fn taken_with_one_entry<S: RunQueue + ?Sized>(store: &S) -> (RunId, Claim) {
    let run_id = run_of(store, "plan", RunStatus::Queued, 0).await;
    let claim = next(store, &[key("plan")]).await.expect("a run");
    assert_eq!(claim.run_id(), run_id);
    store.append(&claim, &entry(1)).await.expect("append");
    (run_id, claim)
}

/// `claim_next` hands out the runnable runs of the known flows oldest first, claimed, each
/// once while claimed: queued runs, and running runs nobody holds; never suspended, failed,
/// completed or cancelled runs, runs of other flows or fingerprints, or runs held by a writer.
pub async fn claim_next_takes_the_oldest_runnable_run<F: StoreFixture>(fixture: F)
where
    F::Store: RunQueue,
{
    let store = fixture.open().await;
    let known = [key("plan"), key("act")];
    assert!(next(&store, &known).await.is_none());
    let queued = run_of(&store, "plan", RunStatus::Queued, 20).await;
    let orphan = run_of(&store, "act", RunStatus::Running, 10).await;
    for status in [
        RunStatus::Suspended,
        RunStatus::Failed,
        RunStatus::Completed,
        RunStatus::Cancelled,
    ] {
        run_of(&store, "plan", status, 0).await;
    }
    run_of(&store, "other", RunStatus::Queued, 0).await;
    let mut changed = document(RunId::new_v4(), RunStatus::Queued, 0);
    changed.flow = "plan".to_string();
    changed.fingerprint = "fedcba9876543210".to_string();
    drop(store.create(&changed).await.expect("create"));
    let mut held_doc = document(RunId::new_v4(), RunStatus::Running, 5);
    held_doc.flow = "plan".to_string();
    let held = store.create(&held_doc).await.expect("create");

    let other = fixture.open().await;
    let first = next(&other, &known).await.expect("a run");
    assert_eq!(first.run_id(), orphan, "the oldest runnable run first");
    let second = next(&store, &known).await.expect("a run");
    assert_eq!(second.run_id(), queued);
    assert!(second.token() > 0);
    assert!(next(&store, &known).await.is_none());
    busy(&other.claim(queued).await, queued);

    // A claim from `claim_next` is a claim: writes with it land.
    store.append(&second, &entry(1)).await.expect("append");
    // Dropped half-way, the run is runnable again, with a greater token.
    let token = second.token();
    drop(second);
    let again = next(&other, &known).await.expect("a run");
    assert_eq!(again.run_id(), queued);
    assert!(again.token() > token);
    // The held run becomes runnable when its writer lets go.
    drop(held);
    let last = next(&store, &known).await.expect("a run");
    assert_eq!(last.run_id(), held_doc.run_id);
    assert!(next(&store, &known).await.is_none());
    assert!(next(&store, &[]).await.is_none());
}

/// Workers race for queued runs through handles of their own: every run is handed out exactly
/// once.
pub async fn racing_workers_get_each_run_once<F: StoreFixture>(fixture: F)
where
    F::Store: RunQueue,
{
    let store = fixture.open().await;
    let mut submitted = BTreeSet::new();
    for i in 0..40 {
        submitted.insert(run_of(&store, "plan", RunStatus::Queued, i).await);
    }
    let fixture = Arc::new(fixture);
    let mut workers = Vec::new();
    for _ in 0..6 {
        let fixture = Arc::clone(&fixture);
        workers.push(tokio::spawn(async move {
            let store = fixture.open().await;
            let mut claims = Vec::new();
            while let Some(claim) = next(&store, &[key("plan")]).await {
                claims.push(claim);
            }
            claims
        }));
    }
    let mut got = Vec::new();
    for worker in workers {
        got.extend(worker.await.expect("the worker ran"));
    }
    let ids: BTreeSet<RunId> = got.iter().map(Claim::run_id).collect();
    assert_eq!(
        got.len(),
        submitted.len(),
        "a run was handed out twice or lost"
    );
    assert_eq!(ids, submitted);
}

/// `mark_waiting` writes its reason on the runnable runs of flows not in the list that have no
/// note yet, and on nothing else; `claim_next` clears the note of the run it hands out.
pub async fn mark_waiting_notes_runs_no_worker_knows<F: StoreFixture>(fixture: F)
where
    F::Store: RunQueue,
{
    let store = fixture.open().await;
    let unknown = run_of(&store, "other", RunStatus::Queued, 0).await;
    let orphan = run_of(&store, "other", RunStatus::Running, 1).await;
    let known = run_of(&store, "plan", RunStatus::Queued, 2).await;
    let done = run_of(&store, "other", RunStatus::Completed, 3).await;
    let reason = "no worker knows flow `other` (worker w1 knows plan@0123456789abcdef)";
    assert_eq!(
        store
            .mark_waiting(&[key("plan")], reason)
            .await
            .expect("mark"),
        2
    );
    assert_eq!(
        store
            .mark_waiting(&[key("plan")], "again")
            .await
            .expect("mark"),
        0
    );
    let waiting = |run| {
        let store = &store;
        async move {
            store
                .load(run)
                .await
                .expect("load")
                .expect("a run")
                .document
                .waiting
        }
    };
    assert_eq!(waiting(unknown).await.as_deref(), Some(reason));
    assert_eq!(waiting(orphan).await.as_deref(), Some(reason));
    assert_eq!(waiting(known).await, None);
    assert_eq!(waiting(done).await, None);
    let listed = store
        .list_runs(&RunQuery::new().flow("other"))
        .await
        .expect("list");
    assert!(
        listed
            .runs
            .iter()
            .filter(|d| d.run_id != done)
            .all(|d| d.waiting.as_deref() == Some(reason))
    );

    let claim = next(&store, &[key("other")]).await.expect("a run");
    assert_eq!(claim.run_id(), unknown);
    assert_eq!(waiting(unknown).await, None, "claiming clears the note");
}

/// `cancel` makes a run cancelled and revokes its claim: the holder's next write is refused
/// and the run is never handed out again. Completed runs stay completed; unknown runs are not
/// found.
pub async fn cancel_revokes_the_claim<F: StoreFixture>(fixture: F)
where
    F::Store: RunQueue,
{
    let store = fixture.open().await;
    let (run_id, claim) = taken_with_one_entry(&store).await;

    let other = fixture.open().await;
    assert_eq!(
        other.cancel(run_id).await.expect("cancel"),
        RunStatus::Queued
    );
    match store.append(&claim, &entry(2)).await {
        Err(StoreError::ClaimLost { run_id: id, .. }) => assert_eq!(id, run_id),
        other => panic!("expected ClaimLost after cancel, got {other:?}"),
    }
    let mut running = document(run_id, RunStatus::Running, 0);
    running.flow = "plan".to_string();
    assert!(matches!(
        store.put_document(&claim, &running).await,
        Err(StoreError::ClaimLost { .. })
    ));
    drop(claim);
    let saved = store.load(run_id).await.expect("load").expect("a run");
    assert_eq!(saved.document.status, RunStatus::Cancelled);
    assert_eq!(saved.journal, [entry(1)]);
    assert!(next(&store, &[key("plan")]).await.is_none());
    assert_eq!(
        store.cancel(run_id).await.expect("cancel"),
        RunStatus::Cancelled
    );

    let done = run_of(&store, "plan", RunStatus::Completed, 0).await;
    assert_eq!(
        store.cancel(done).await.expect("cancel"),
        RunStatus::Completed
    );
    let saved = store.load(done).await.expect("load").expect("a run");
    assert_eq!(saved.document.status, RunStatus::Completed);
    let unknown = RunId::new_v4();
    assert!(matches!(store.cancel(unknown).await, Err(StoreError::NotFound(id)) if id == unknown));
}

/// A claim whose lease lapses (its holder stopped renewing it, as a killed worker does) is not
/// honoured: another writer claims the run with a greater token, and the stale holder's writes
/// are refused, never merged.
pub async fn a_lapsed_claim_passes_to_the_next_writer<F: StoreFixture>(fixture: F)
where
    F::Store: RunQueue,
{
    let store = fixture.open().await;
    let (run_id, stale) = taken_with_one_entry(&store).await;
    assert!(
        fixture.lapse(&stale).await,
        "the fixture's lapse did nothing: implement it, or call the macro with `leases: skipped`"
    );
    let other = fixture.open().await;
    let fresh = next(&other, &[key("plan")])
        .await
        .expect("the lapsed run is runnable");
    assert_eq!(fresh.run_id(), run_id);
    assert!(fresh.token() > stale.token());
    assert!(matches!(
        store.append(&stale, &entry(2)).await,
        Err(StoreError::ClaimLost { .. })
    ));
    other.append(&fresh, &entry(2)).await.expect("append");
    drop(stale);
    // Dropping the stale claim does not release the fresh one.
    busy(&store.claim(run_id).await, run_id);
    other.append(&fresh, &entry(3)).await.expect("append");
    assert_eq!(
        journal(&store, run_id).await,
        [entry(1), entry(2), entry(3)]
    );
}
