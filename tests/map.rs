//! Dynamic fan-out: `map(step, limit = N)` runs a step once per item of the incoming
//! collection, at most N at a time, and keeps the input order.

// A step or predicate takes `&T` of the type flowing in, here `Vec<u32>`, not a slice.
#![allow(clippy::ptr_arg)]

use futures::StreamExt;
use orchflow::{AttemptOutcome, Event, MemoryStore, flow, step};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("boom on {0}")]
struct Boom(u32);

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

#[step]
async fn by_ref(x: &u32) -> u32 {
    x * 10
}

#[step]
async fn range(n: u32) -> Vec<u32> {
    (0..n).collect()
}

/// Items still running, and the most seen at once.
static RUNNING: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

/// Sleeps longer for smaller items, so they finish in reverse order.
#[step]
async fn slow(x: u32) -> u32 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(u64::from(20 - x) * 2)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    x * 2
}

#[tokio::test]
async fn keeps_the_input_order_and_never_runs_more_than_the_limit() {
    let f = flow! { map(slow, limit = 3) };
    let r = f.run((0..20).collect::<Vec<u32>>()).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.output, Some((0..20).map(|x| x * 2).collect::<Vec<u32>>()));
    assert_eq!(MOST.load(Ordering::SeqCst), 3, "three at a time, no more");
    assert_eq!(r.traces.len(), 20);
    let group = r.traces[0].parallel_group_id;
    assert!(group.is_some());
    let mut items: Vec<u32> = r.traces.iter().filter_map(|t| t.item).collect();
    assert!(r.traces.iter().all(|t| t.parallel_group_id == group));
    items.sort_unstable();
    assert_eq!(items, (0..20).collect::<Vec<u32>>());
}

#[tokio::test]
async fn an_empty_collection_gives_an_empty_vec() {
    let r = flow! { range => map(inc, limit = 4) }.run(0).await;
    assert_eq!(r.output, Some(vec![]));
    assert_eq!(r.traces.len(), 1);
}

#[tokio::test]
async fn a_step_may_take_its_item_by_reference_and_traces_say_which_item() {
    let r = flow! { range => map(by_ref, limit = 2) => map(inc, limit = 1) }
        .run(3)
        .await;
    assert_eq!(r.output, Some(vec![1, 11, 21]));
    assert_eq!(r.traces[0].item, None, "outside a map");
    let items: Vec<_> = r.traces[1..4].iter().map(|t| t.item).collect();
    assert!(items.iter().all(Option::is_some));
    assert_ne!(
        r.traces[1].parallel_group_id, r.traces[4].parallel_group_id,
        "one group per map"
    );
    let json = serde_json::to_value(&r.traces[1]).unwrap();
    assert!(json["item"].is_u64(), "{json}");
    let json = serde_json::to_value(&r.traces[0]).unwrap();
    assert!(json["item"].is_null(), "{json}");
}

#[step]
async fn len(v: &Vec<u32>) -> usize {
    v.len()
}

#[tokio::test]
async fn a_borrowed_collection_at_the_start_of_a_branch_is_mapped() {
    let f = flow! { range => [map(inc, limit = 2), map(by_ref, limit = 2), len] };
    let r = f.run(3).await;
    assert_eq!(r.output, Some((vec![1, 2, 3], vec![0, 10, 20], 3)));
    // The flow's own (borrowed) input too.
    let r = flow! { map(inc, limit = 8) }.run(vec![5, 6]).await;
    assert_eq!(r.output, Some(vec![6, 7]));
}

#[step]
async fn fetch(id: u32) -> String {
    format!("page {id}")
}

#[step]
async fn parse(page: String) -> usize {
    page.len()
}

#[tokio::test]
async fn a_map_holds_a_pipeline_with_a_group() {
    let f = flow! { range => map(fetch => parse => [inc_len, twice_len], limit = 4) };
    let r = f.run(11).await;
    let out = r.output.unwrap();
    assert_eq!(out.len(), 11);
    assert_eq!(out[0], (7, 12));
    assert_eq!(out[10], (8, 14));
}

#[step]
async fn inc_len(n: &usize) -> usize {
    n + 1
}

#[step]
async fn twice_len(n: &usize) -> usize {
    n * 2
}

fn small(v: &Vec<u32>) -> bool {
    v.len() < 4
}

fn long(v: &Vec<u32>) -> bool {
    v.len() > 5
}

#[step]
async fn grow(v: Vec<u32>) -> Vec<u32> {
    let mut v = v;
    v.push(0);
    v
}

#[tokio::test]
async fn a_map_inside_a_loop_and_an_if() {
    let f = flow! {
        range => loop(max = 3) { map(inc, limit = 2) => grow } until long
            => if small { grow } else { map(inc, limit = 2) }
    };
    let r = f.run(3).await;
    assert_eq!(r.output, Some(vec![4, 5, 6, 3, 2, 1]));
}

static FAILING: AtomicU32 = AtomicU32::new(0);

#[step(retry = 1)]
async fn fails_on_three(x: u32) -> Result<u32, Boom> {
    if x == 3 {
        FAILING.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        return Err(Boom(x));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(x)
}

#[tokio::test]
async fn the_first_failure_after_its_retries_cancels_the_items_in_flight() {
    let r = flow! { map(fails_on_three, limit = 8) }
        .run(vec![0, 1, 2, 3, 4])
        .await;
    assert!(!r.success);
    assert_eq!(r.failed_step.as_deref(), Some("fails_on_three"));
    assert_eq!(FAILING.load(Ordering::SeqCst), 2, "retried once");
    let failed: Vec<_> = r
        .traces
        .iter()
        .filter(|t| t.outcome == AttemptOutcome::Failed)
        .map(|t| (t.item, t.attempt))
        .collect();
    assert_eq!(failed, [(Some(3), 1), (Some(3), 2)]);
    let mut cancelled: Vec<_> = r
        .traces
        .iter()
        .filter(|t| t.outcome == AttemptOutcome::Cancelled)
        .filter_map(|t| t.item)
        .collect();
    cancelled.sort_unstable();
    assert_eq!(cancelled, [0, 1, 2, 4]);
}

#[tokio::test]
async fn events_carry_the_item() {
    let f = flow! { map(inc, limit = 2) };
    let mut stream = f.stream(vec![1, 2, 3]);
    let mut items = Vec::new();
    while let Some(e) = stream.next().await {
        if let Event::StepCompleted(s) = &e {
            assert!(s.parallel_group_id().is_some());
            items.extend(s.item());
        }
    }
    items.sort_unstable();
    assert_eq!(items, [0, 1, 2]);
}

// ---------------------------------------------------------------- durable

static CALLS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static BROKEN: AtomicUsize = AtomicUsize::new(usize::MAX);

#[step]
async fn enrich(x: u32) -> Result<u32, Boom> {
    CALLS.lock().unwrap().push(x);
    if x as usize == BROKEN.load(Ordering::SeqCst) {
        return Err(Boom(x));
    }
    // Later items finish first, so finished items are not a prefix.
    tokio::time::sleep(Duration::from_millis(u64::from(30 - x))).await;
    Ok(x + 100)
}

#[tokio::test]
async fn a_resumed_map_runs_only_the_unfinished_items() {
    let store = Arc::new(MemoryStore::default());
    let f = flow! { #[flow(name = "durable_map")] range => map(enrich, limit = 4) => map(inc, limit = 2) };
    BROKEN.store(6, Ordering::SeqCst);
    let first = f.durable(store.clone()).run(10).await;
    assert!(!first.success);
    let done_first: Vec<u32> = first
        .traces
        .iter()
        .filter(|t| t.step == "enrich" && t.outcome == AttemptOutcome::Succeeded)
        .filter_map(|t| t.item)
        .collect();
    assert!(
        !done_first.is_empty(),
        "some items finished before the failure"
    );

    BROKEN.store(usize::MAX, Ordering::SeqCst);
    CALLS.lock().unwrap().clear();
    let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
    assert!(second.success, "{:?}", second.error);
    assert_eq!(
        second.output,
        Some((0..10).map(|x| x + 101).collect::<Vec<u32>>())
    );
    let mut rerun = CALLS.lock().unwrap().clone();
    rerun.sort_unstable();
    let expected: Vec<u32> = (0..10).filter(|i| !done_first.contains(i)).collect();
    assert_eq!(rerun, expected, "finished items are not run again");
}

// ---------------------------------------------------------------- questions

static PRICED: AtomicU32 = AtomicU32::new(0);

#[step]
async fn price(x: &u8) -> u32 {
    PRICED.fetch_add(1, Ordering::SeqCst);
    u32::from(*x) * 3
}

#[step]
async fn total(v: Vec<u32>) -> u32 {
    v.iter().sum()
}

fn as_number(a: orchflow::human::Answer<u8>) -> u8 {
    a.text.parse().unwrap_or(0)
}

#[step]
async fn read(a: orchflow::human::Answer<u8>) -> u8 {
    as_number(a)
}

#[tokio::test]
async fn items_asking_questions_do_not_cancel_the_others_and_all_questions_are_pending() {
    let review = orchflow::human::ask("review", |x: &u8| format!("review {x}?"));
    let f = flow! { #[flow(name = "map_questions")] map((review) => read => price, limit = 2) => total }
        .with_input(orchflow::human::Suspend);
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(vec![1u8, 2, 3]).await;
    assert!(!run.success && run.error.is_none(), "{:?}", run.error);
    let questions: Vec<_> = run.suspended.iter().map(|p| p.question.as_str()).collect();
    assert_eq!(questions, ["0/review", "1/review", "2/review"]);
    assert_eq!(PRICED.load(Ordering::SeqCst), 0);

    let mut last = None;
    for (q, a) in [("0/review", "4"), ("1/review", "5"), ("2/review", "6")] {
        last = Some(
            f.durable(store.clone())
                .answer_to(run.run_id, q, a)
                .await
                .unwrap(),
        );
    }
    let done = last.unwrap();
    assert!(done.success, "{:?}", done.error);
    assert_eq!(done.output, Some((4 + 5 + 6) * 3));
    assert_eq!(PRICED.load(Ordering::SeqCst), 3, "each item priced once");
}
