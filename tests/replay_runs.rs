//! Replay and fork over the other shapes a run can take: a run waiting on a question, a nested
//! flow, a `map`, a failed run forked with a corrected input, a run recorded without values,
//! and declared compatibility (`Flow::compatible_with`) for resumes and workers.

use orchflow::human::{self, Answer};
use orchflow::replay::{
    DivergenceKind, ForkAt, ReplayOptions, ReplayOutcome, ReplayReport, ResumeCheck,
};
use orchflow::store::{CheckpointStore, RunStatus};
use orchflow::worker::{Outcome, Worker};
use orchflow::{AttemptOutcome, MemoryStore, ResumeError, flow, step};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

fn outcome(r: &ReplayReport) -> &ReplayOutcome {
    &r.outcome
}

#[step]
async fn draft(topic: String) -> String {
    format!("a post about {topic}")
}

#[step]
async fn decide(a: Answer<String>) -> bool {
    a.text == "yes"
}

#[step]
async fn unwrap(a: Answer<String>) -> String {
    a.value
}

macro_rules! review_flow {
    () => {{
        let review = human::ask("review", |d: &String| format!("publish {d}?"));
        flow! { #[flow(name = "post")] draft => (review) => decide }.with_input(human::Suspend)
    }};
}

#[tokio::test]
async fn a_waiting_run_is_compatible_and_continues_at_its_question_then_replays_its_answer() {
    let store = MemoryStore::default();
    let f = review_flow!();
    let waiting = f.durable(store.clone()).run("rust".to_string()).await;
    assert_eq!(waiting.suspended.len(), 1);
    let report = f
        .durable(store.clone())
        .replay(waiting.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    assert_eq!(report.status, RunStatus::Suspended);
    let at: Vec<&str> = report
        .continues_at
        .iter()
        .map(|c| c.step.as_str())
        .collect();
    assert_eq!(at, ["review"]);
    assert_eq!(report.resume, ResumeCheck::SameShape);

    // Answered and finished: the answer is served from the recording.
    let done = f
        .durable(store.clone())
        .answer(waiting.run_id, "yes")
        .await
        .unwrap();
    assert_eq!(done.output, Some(true));
    let report = f
        .durable(store.clone())
        .replay(waiting.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    assert_eq!(report.reused, 3, "draft, the answer, decide");
    assert_eq!(report.resume, ResumeCheck::Finished);

    // A build that asks another question first diverges there.
    let check = human::ask("legal", |d: &String| format!("legal ok for {d}?"));
    let review = human::ask("review", |d: &String| format!("publish {d}?"));
    let changed = flow! { #[flow(name = "post")] draft => (check) => unwrap => (review) => decide }
        .with_input(human::Suspend);
    let report = changed
        .durable(store.clone())
        .replay(waiting.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    let ReplayOutcome::Diverges(d) = outcome(&report) else {
        panic!("{report:#?}")
    };
    assert_eq!(d.kind, DivergenceKind::StepChanged);
    assert_eq!(d.path, "step legal");
}

#[step]
async fn fetch(url: String) -> String {
    format!("<{url}>")
}

#[step]
async fn size(page: String) -> usize {
    page.len()
}

#[step]
async fn pages(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("p{i}")).collect()
}

#[step]
async fn total(sizes: Vec<usize>) -> usize {
    sizes.iter().sum()
}

static FETCHED: AtomicU32 = AtomicU32::new(0);

#[step]
async fn fetch_counted(url: String) -> String {
    FETCHED.fetch_add(1, Ordering::SeqCst);
    format!("<{url}>")
}

#[tokio::test]
async fn a_map_and_a_nested_flow_replay_item_by_item_and_a_fork_reruns_one_item() {
    let store = MemoryStore::default();
    let inner = flow! { #[flow(name = "one_page")] fetch_counted => size };
    let f = flow! { #[flow(name = "site")] pages => map((inner.clone()), limit = 3) => total };
    let run = f.durable(store.clone()).run(6).await;
    assert!(run.success, "{:?}", run.error);
    assert_eq!(run.output, Some(6 * 4));
    let fetched = FETCHED.load(Ordering::SeqCst);
    let report = f
        .durable(store.clone())
        .replay(run.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    assert_eq!(
        report.reused,
        1 + 6 * 2 + 1,
        "pages, each item's two steps, total"
    );
    assert_eq!(
        FETCHED.load(Ordering::SeqCst),
        fetched,
        "the replay fetched nothing"
    );

    // A build whose nested flow counts differently: reported inside the item.
    let inner2 = flow! { #[flow(name = "one_page")] fetch => size };
    let g = flow! { #[flow(name = "site")] pages => map((inner2.clone()), limit = 3) => total };
    let report = g
        .durable(store.clone())
        .replay(run.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    let ReplayOutcome::Diverges(d) = outcome(&report) else {
        panic!("{report:#?}")
    };
    assert_eq!(d.kind, DivergenceKind::StepChanged);
    assert!(
        d.path.starts_with("step one_page > step fetch"),
        "{}",
        d.path
    );

    // Fork from item 3's fetch: the other items are reused, item 3 fetches again.
    let at = ForkAt::parse("fetch_counted@4").unwrap();
    let fork = f
        .durable(store.clone())
        .fork(
            run.run_id,
            &at,
            Some(serde_json::json!("a-much-longer-url")),
        )
        .await
        .unwrap();
    assert!(fork.success, "{:?}", fork.error);
    assert_eq!(
        FETCHED.load(Ordering::SeqCst),
        fetched + 1,
        "one item fetched again"
    );
    assert_eq!(fork.output, Some(5 * 4 + "<a-much-longer-url>".len()));
}

/// The cards charged, by every test of this file (they run at once): count your own.
static CHARGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn charges_of(card: &str) -> usize {
    let charged = CHARGED.lock().unwrap_or_else(|e| e.into_inner());
    charged.iter().filter(|c| *c == card).count()
}

#[derive(Debug, thiserror::Error)]
#[error("card {0} declined")]
struct Declined(String);

#[step]
async fn quote(order: String) -> String {
    format!("{order}:card-0000")
}

#[step]
async fn charge(card: String) -> Result<u32, Declined> {
    if card.ends_with("0000") {
        return Err(Declined(card));
    }
    CHARGED.lock().unwrap_or_else(|e| e.into_inner()).push(card);
    Ok(42)
}

#[tokio::test]
async fn a_failed_run_is_forked_from_the_failed_step_with_a_corrected_input() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "checkout")] quote => charge };
    let failed = f.durable(store.clone()).run("order-7".to_string()).await;
    assert!(!failed.success);
    let report = f
        .durable(store.clone())
        .replay(failed.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    assert_eq!(report.continues_at[0].step, "charge");
    let d = f.durable(store.clone());
    let at = ForkAt::parse("charge").unwrap();
    let preview = d
        .preview_fork(
            failed.run_id,
            &at,
            Some(serde_json::json!("order-7:card-4242")),
        )
        .await
        .unwrap();
    assert!(
        !preview.steps[1].repeats_side_effects,
        "the failed charge had no effect to repeat"
    );
    let fork = d
        .fork(
            failed.run_id,
            &at,
            Some(serde_json::json!("order-7:card-4242")),
        )
        .await
        .unwrap();
    assert_eq!(fork.output, Some(42));
    assert_eq!(charges_of("order-7:card-4242"), 1);
    let doc = store.document(fork.run_id).await.unwrap().unwrap();
    assert_eq!(doc.lineage.forked_from.unwrap().path, "step charge");

    // The fork forked again from the same call with no input: the call takes the input it
    // had there, the corrected one, not the one the code passes.
    let again = d.fork(fork.run_id, &at, None).await.unwrap();
    assert!(again.success, "{:?}", again.error);
    assert_eq!(charges_of("order-7:card-4242"), 2);
    let origin = store
        .document(again.run_id)
        .await
        .unwrap()
        .unwrap()
        .lineage
        .forked_from
        .unwrap();
    assert_eq!(origin.input, Some(serde_json::json!("order-7:card-4242")));
    let report = d
        .replay(again.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
}

#[tokio::test]
async fn a_queued_fork_is_run_by_a_worker_with_the_recorded_results() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "checkout")] quote => charge };
    let failed = f.durable(store.clone()).run("order-8".to_string()).await;
    let at = ForkAt::parse("charge").unwrap();
    let fork = f
        .durable(store.clone())
        .submit_fork(
            failed.run_id,
            &at,
            Some(serde_json::json!("order-8:card-1111")),
        )
        .await
        .unwrap();
    let worker = Worker::new(store.clone()).register(f.clone());
    let report = worker.run_one().await.unwrap().unwrap();
    assert_eq!((report.run_id, report.outcome), (fork, Outcome::Completed));
    let saved = store.load(fork).await.unwrap().unwrap();
    let steps: Vec<(String, AttemptOutcome)> = saved
        .journal
        .iter()
        .flat_map(|e| e.traces.iter().map(|t| (t.step.to_string(), t.outcome)))
        .collect();
    assert_eq!(
        steps,
        [
            ("quote".to_string(), AttemptOutcome::Reused),
            ("charge".to_string(), AttemptOutcome::Succeeded)
        ],
        "quote came from the recording"
    );
}

#[tokio::test]
async fn a_run_recorded_without_values_is_unreplayable_and_another_flow_is_reported() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "checkout")] quote => charge }.capture_values(false);
    let run = f.durable(store.clone()).run("order-9".to_string()).await;
    let report = f
        .durable(store.clone())
        .replay(run.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    let ReplayOutcome::Unreplayable { reason } = outcome(&report) else {
        panic!("{report:#?}")
    };
    assert!(reason.contains("recorded without values"), "{reason}");
    let other = flow! { #[flow(name = "other")] quote };
    let report = other
        .durable(store.clone())
        .replay(run.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(outcome(&report), ReplayOutcome::Unreplayable { reason } if reason.contains("not of `other`"))
    );
}

#[step]
async fn log_it(x: bool) -> bool {
    x
}

#[tokio::test]
async fn a_declared_fingerprint_lets_a_changed_build_resume_a_waiting_run() {
    let store = MemoryStore::default();
    let v1 = review_flow!();
    let waiting = v1.durable(store.clone()).run("rust".to_string()).await;
    assert_eq!(waiting.suspended.len(), 1);
    v1.durable(store.clone())
        .submit_answer(waiting.run_id, None, "yes")
        .await
        .unwrap();

    // v2 appends a step: the fingerprint changes.
    let review = human::ask("review", |d: &String| format!("publish {d}?"));
    let v2 = flow! { #[flow(name = "post")] draft => (review) => decide => log_it }
        .with_input(human::Suspend);
    let report = v2
        .durable(store.clone())
        .replay(waiting.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    assert_eq!(report.resume, ResumeCheck::Undeclared);
    let refused = v2.durable(store.clone()).resume(waiting.run_id).await;
    assert!(matches!(refused, Err(ResumeError::FlowChanged { .. })));
    // Nobody takes it until the change is declared.
    let worker = Worker::new(store.clone()).register(v2.clone());
    assert!(worker.run_one().await.unwrap().is_none());

    let v2 = v2.compatible_with(&v1.fingerprint(), "log_it only reads the decision");
    let report = v2
        .durable(store.clone())
        .replay(waiting.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.resume,
        ResumeCheck::Declared {
            reason: "log_it only reads the decision".into()
        }
    );
    let worker = Worker::new(store.clone()).register(v2.clone());
    let taken = worker.run_one().await.unwrap().unwrap();
    assert_eq!(taken.outcome, Outcome::Completed);
    let doc = store.document(waiting.run_id).await.unwrap().unwrap();
    assert_eq!(doc.fingerprint, v2.fingerprint(), "the run is v2's now");
    assert_eq!(doc.output, Some(serde_json::json!(true)));
}

#[tokio::test]
async fn a_declared_change_whose_saved_points_no_longer_fit_is_reported_undecodable() {
    let store = MemoryStore::default();
    let v1 = flow! { #[flow(name = "checkout")] quote => charge };
    let failed = v1.durable(store.clone()).run("order-10".to_string()).await;
    assert!(!failed.success);
    // v2 quotes a number, not a string: the saved point after `quote` does not fit.
    let v2 = flow! { #[flow(name = "checkout")] quote_cents => charge_cents }
        .compatible_with(&v1.fingerprint(), "wrongly declared");
    let report = v2
        .durable(store.clone())
        .replay(failed.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&report.resume, ResumeCheck::Undecodable { .. }),
        "{:#?}",
        report.resume
    );
    assert!(!report.is_compatible());
}

#[step]
async fn quote_cents(order: String) -> u64 {
    order.len() as u64
}

#[step]
async fn charge_cents(cents: u64) -> u32 {
    u32::try_from(cents).unwrap_or(0)
}

#[tokio::test]
async fn a_question_inside_a_nested_flow_is_where_a_waiting_run_continues() {
    let store = MemoryStore::default();
    let inner = review_flow!();
    let f = flow! { #[flow(name = "outer")] draft => (inner.clone()) }.with_input(human::Suspend);
    let waiting = f.durable(store.clone()).run("go".to_string()).await;
    assert_eq!(waiting.suspended.len(), 1);
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        f.durable(store.clone())
            .replay(waiting.run_id, &ReplayOptions::default()),
    )
    .await
    .expect("a replay ends")
    .unwrap();
    assert!(report.is_compatible(), "{:#?}", report.outcome);
    let at: Vec<&str> = report
        .continues_at
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(at, ["step post > step review"]);
}

#[tokio::test]
async fn a_fork_of_a_run_another_writer_holds_is_refused_before_anything_is_written() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "checkout")] quote => charge };
    let failed = f.durable(store.clone()).run("order-11".to_string()).await;
    let held = store.claim(failed.run_id).await.unwrap();
    let at = ForkAt::parse("charge").unwrap();
    let refused = f
        .durable(store.clone())
        .submit_fork(
            failed.run_id,
            &at,
            Some(serde_json::json!("order-11:card-4242")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            orchflow::ForkError::Store(orchflow::store::StoreError::RunBusy { .. })
        ),
        "{refused}"
    );
    let all = store
        .list_runs(&orchflow::store::RunQuery::new())
        .await
        .unwrap();
    assert_eq!(all.runs.len(), 1, "no fork was created");
    drop(held);
    // Released: the fork goes through and the recorded run lists it.
    let fork = f
        .durable(store.clone())
        .submit_fork(
            failed.run_id,
            &at,
            Some(serde_json::json!("order-11:card-4242")),
        )
        .await
        .unwrap();
    let doc = store.document(failed.run_id).await.unwrap().unwrap();
    assert_eq!(doc.lineage.forks, [fork]);
}
