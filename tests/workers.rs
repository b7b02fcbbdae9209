//! Workers over a run queue (`orchflow::worker`), on the in-memory store: runs submitted by
//! one side are taken by several workers, each exactly once; runs of flows no worker knows wait
//! with a note; answers requeue suspended runs; cancelling stops a run at its next save;
//! shutdown lets the runs in flight stop first. The same worker code runs over SQLite and
//! Postgres in those stores' tests and in the multi-process crash test.

use orchflow::human::{self, Answer};
use orchflow::store::{CheckpointStore, RunQuery, RunQueue, RunStatus};
use orchflow::worker::{Outcome, Worker};
use orchflow::{MemoryStore, RunId, flow, step};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[path = "support/calls.rs"]
mod calls;
use calls::{called, calls};

/// A fresh range of inputs per test.
fn fresh() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1_000_000);
    NEXT.fetch_add(10_000, Ordering::SeqCst)
}

#[step]
async fn double(x: u32) -> u32 {
    called("double", x);
    tokio::task::yield_now().await;
    x * 2
}

#[step]
async fn halve(x: u32) -> u32 {
    called("halve", x);
    x / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_every_run_exactly_once() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "twice")] double => halve };
    let base = fresh();
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(f.durable(store.clone()).submit(base + i).await.unwrap());
    }
    let stop = std::sync::Arc::new(Notify::new());
    let mut workers = Vec::new();
    for n in 0..3 {
        let worker = Worker::new(store.clone())
            .register(f.clone())
            .concurrency(8)
            .poll_interval(Duration::from_millis(5))
            .name(format!("w{n}"));
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            worker.run_until(stop.notified(), |_| {}).await
        }));
    }
    // Wait until every run completed.
    loop {
        let listing = store
            .list_runs(&RunQuery::new().status(RunStatus::Completed))
            .await
            .unwrap();
        if listing.runs.len() == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.notify_waiters();
    let mut taken = 0;
    for w in workers {
        let stats = w.await.unwrap();
        assert_eq!(stats.stopped, 0, "{stats:?}");
        assert_eq!(stats.taken, stats.completed, "{stats:?}");
        taken += stats.taken;
    }
    assert_eq!(taken, 200, "each run taken once");
    for (i, id) in ids.iter().enumerate() {
        let x = base + u32::try_from(i).unwrap();
        assert_eq!(calls("double", x), 1);
        assert_eq!(calls("halve", x * 2), 1);
        let saved = store.load(*id).await.unwrap().unwrap();
        assert_eq!(saved.document.output, Some(serde_json::json!(x)));
    }
}

#[tokio::test]
async fn a_run_no_worker_knows_waits_with_a_note_until_one_does() {
    let store = MemoryStore::default();
    let old = flow! { #[flow(name = "pipeline")] double };
    let new = flow! { #[flow(name = "pipeline")] double => halve };
    let x = fresh();
    let run_id = old.durable(store.clone()).submit(x).await.unwrap();

    let worker = Worker::new(store.clone())
        .register(new.clone())
        .name("new-only")
        .poll_interval(Duration::from_millis(5));
    let stats = worker
        .run_until(tokio::time::sleep(Duration::from_millis(50)), |_| {})
        .await;
    assert_eq!(stats.taken, 0);
    let saved = store.load(run_id).await.unwrap().unwrap();
    assert_eq!(
        saved.document.status,
        RunStatus::Queued,
        "the run stays queued"
    );
    let note = saved.document.waiting.expect("a note says why it waits");
    assert!(
        note.contains("new-only") && note.contains(&new.fingerprint()),
        "{note}"
    );
    assert_eq!(calls("double", x), 0);

    // A worker that knows the old version takes it and the note goes.
    let report = Worker::new(store.clone())
        .register(old.clone())
        .run_one()
        .await
        .unwrap()
        .expect("the run");
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(report.flow, old.key());
    let saved = store.load(run_id).await.unwrap().unwrap();
    assert_eq!(saved.document.status, RunStatus::Completed);
    assert_eq!(saved.document.waiting, None);
}

#[step]
async fn draft(x: u32) -> u32 {
    called("draft", x);
    x + 1
}

#[step]
fn decide(a: Answer<u32>) -> String {
    format!("{} {}", a.value, a.text)
}

#[tokio::test]
async fn answers_requeue_suspended_runs_for_a_worker() {
    let store = MemoryStore::default();
    let ok = human::ask("ok", |x: &u32| format!("ship {x}?"));
    let f = flow! { #[flow(name = "review")] draft => (ok) => decide }.with_input(human::Suspend);
    let worker = Worker::new(store.clone()).register(f.clone());
    let x = fresh();
    let run_id = f.durable(store.clone()).submit(x).await.unwrap();
    assert_eq!(
        worker.run_one().await.unwrap().unwrap().outcome,
        Outcome::Suspended
    );
    assert!(
        worker.run_one().await.unwrap().is_none(),
        "a suspended run is not runnable"
    );
    let questions = store.questions(&RunQuery::new()).await.unwrap();
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0].pending.prompt, format!("ship {}?", x + 1));

    // An answer to the wrong question is refused and changes nothing.
    let wrong = f
        .durable(store.clone())
        .submit_answer(run_id, Some("nope"), "yes")
        .await;
    assert!(wrong.is_err());
    f.durable(store.clone())
        .submit_answer(run_id, None, "yes")
        .await
        .unwrap();
    assert!(store.questions(&RunQuery::new()).await.unwrap().is_empty());
    assert_eq!(
        worker.run_one().await.unwrap().unwrap().outcome,
        Outcome::Completed
    );
    let saved = store.load(run_id).await.unwrap().unwrap();
    assert_eq!(
        saved.document.output,
        Some(serde_json::json!(format!("{} yes", x + 1)))
    );
    assert_eq!(
        calls("draft", x),
        1,
        "the checkpointed step did not run again"
    );
}

static GATE: Notify = Notify::const_new();

#[step]
async fn wait_for_gate(x: u32) -> u32 {
    called("gate", x);
    GATE.notified().await;
    x
}

#[step]
async fn after_gate(x: u32) -> u32 {
    called("after", x);
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_run_stops_it_at_its_next_save() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "gated")] wait_for_gate => after_gate };
    let x = fresh();
    let run_id = f.durable(store.clone()).submit(x).await.unwrap();
    let worker = Worker::new(store.clone()).register(f.clone());
    let running = tokio::spawn(async move { worker.run_one().await });
    while calls("gate", x) == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(store.cancel(run_id).await.unwrap(), RunStatus::Running);
    GATE.notify_one();
    let report = running.await.unwrap().unwrap().unwrap();
    assert_eq!(report.outcome, Outcome::Cancelled);
    assert_eq!(calls("after", x), 0, "nothing ran after the cancel");
    let saved = store.load(run_id).await.unwrap().unwrap();
    assert_eq!(saved.document.status, RunStatus::Cancelled);
    assert!(saved.journal.is_empty(), "the refused save wrote nothing");
    let again = Worker::new(store.clone())
        .register(f.clone())
        .run_one()
        .await;
    assert!(
        again.unwrap().is_none(),
        "a cancelled run is never run again"
    );
}

#[step]
async fn always_fails(x: u32) -> Result<u32, std::io::Error> {
    called("fails", x);
    Err(std::io::Error::other("broken"))
}

#[tokio::test]
async fn a_failed_run_stays_failed_and_shutdown_waits_for_runs_in_flight() {
    let store = MemoryStore::default();
    let broken = flow! { #[flow(name = "broken")] double => always_fails };
    let fine = flow! { #[flow(name = "fine")] double => halve };
    let x = fresh();
    let failed: RunId = broken.durable(store.clone()).submit(x).await.unwrap();
    let ok = fine.durable(store.clone()).submit(x + 1).await.unwrap();
    let worker = Worker::new(store.clone())
        .register(broken.clone())
        .register(fine.clone())
        .concurrency(2);
    let mut reports = Vec::new();
    // Shutdown at once: the worker takes what it can in its first round and lets it finish.
    let stats = worker
        .run_until(async {}, |r| reports.push((r.run_id, r.outcome.clone())))
        .await;
    assert_eq!(stats.taken, 2, "{stats:?}");
    reports.sort_by_key(|(id, _)| *id == ok);
    assert!(
        matches!(&reports[0], (id, Outcome::Failed(e)) if *id == failed && e.contains("broken"))
    );
    assert_eq!(reports[1], (ok, Outcome::Completed));
    let saved = store.load(failed).await.unwrap().unwrap();
    assert_eq!(saved.document.status, RunStatus::Failed);
    assert!(
        worker.run_one().await.unwrap().is_none(),
        "failed runs wait for a person"
    );
    assert_eq!(calls("fails", x * 2), 1);
}
