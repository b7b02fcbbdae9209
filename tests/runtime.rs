//! Runtime behaviour of flows built with the macros: retries, timeouts, parallel groups,
//! conditionals, loops, nesting, events, traces, panics and shared state.

use futures::StreamExt;
use orchflow::testing::{Flaky, FlakyError, collect_events};
use orchflow::{AttemptOutcome, RetryPolicy, StepContext, StepError, flow, step};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error, PartialEq)]
enum Boom {
    #[error("transient")]
    Transient,
    #[error("fatal")]
    Fatal,
}

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

#[step]
async fn double(x: &u32) -> u32 {
    x * 2
}

// ---------------------------------------------------------------- retries

static RETRY_TWICE: Flaky = Flaky::failing(2);

#[step(retry = 2)]
async fn flaky_twice(x: u32) -> Result<u32, FlakyError> {
    RETRY_TWICE.attempt()?;
    Ok(x)
}

#[tokio::test]
async fn retry_n_means_n_plus_one_attempts_with_one_trace_each() {
    let r = flow! { flaky_twice => inc }.run(1).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.output, Some(2));
    let attempts: Vec<_> = r
        .traces_of("flaky_twice")
        .map(|t| (t.attempt, t.outcome))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, AttemptOutcome::Failed),
            (2, AttemptOutcome::Failed),
            (3, AttemptOutcome::Succeeded)
        ]
    );
    let first = r.traces_of("flaky_twice").next().unwrap();
    assert_eq!(first.error.as_deref(), Some("flaky failure 1 of 2"));
    assert!(!first.success);
}

static ALWAYS: Flaky = Flaky::failing(u32::MAX);

#[step(retry = 1)]
async fn always_fails(x: u32) -> Result<u32, FlakyError> {
    ALWAYS.attempt()?;
    Ok(x)
}

#[tokio::test]
async fn exhausted_retries_fail_the_flow_and_skip_later_steps() {
    let r = flow! { always_fails => inc }.run(1).await;
    assert!(!r.success);
    assert_eq!(r.output, None);
    assert_eq!(r.failed_step.as_deref(), Some("always_fails"));
    assert_eq!(r.traces.len(), 2);
    assert_eq!(r.traces_of("inc").count(), 0);
    let err = r.error.unwrap();
    // `ALWAYS` is shared with other tests, so the call number varies.
    assert!(
        err.to_string()
            .starts_with("step `always_fails` failed after 2 attempt(s): flaky failure "),
        "{err}"
    );
}

static DELAYED: Flaky = Flaky::failing(3);

#[step(retry = 3, delay = "100ms", backoff = 2.0, max_delay = "250ms")]
async fn backs_off(x: u32) -> Result<u32, FlakyError> {
    DELAYED.attempt()?;
    Ok(x)
}

#[tokio::test(start_paused = true)]
async fn delays_grow_exponentially_up_to_the_cap() {
    let t0 = Instant::now();
    let r = flow! { backs_off }.run(1).await;
    assert!(r.success);
    // 100ms + 200ms + 250ms (capped), on tokio's paused clock.
    assert_eq!(t0.elapsed(), Duration::from_millis(550));
    let starts: Vec<_> = r.traces.iter().map(|t| t.started_at).collect();
    let gaps: Vec<_> = starts
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default())
        .collect();
    assert_eq!(gaps.len(), 3);
}

static JITTERED: Flaky = Flaky::failing(1);

#[step(retry = 1, delay = "1s", jitter = 0.5)]
async fn jittered(x: u32) -> Result<u32, FlakyError> {
    JITTERED.attempt()?;
    Ok(x)
}

#[tokio::test(start_paused = true)]
async fn jitter_shortens_the_delay_within_bounds() {
    let t0 = Instant::now();
    let r = flow! { jittered }.run(1).await;
    assert!(r.success);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited <= Duration::from_secs(1),
        "{waited:?}"
    );
}

fn is_transient(e: &Boom) -> bool {
    *e == Boom::Transient
}

static FATAL_CALLS: AtomicU32 = AtomicU32::new(0);

#[step(retry = 5, retry_if = is_transient)]
async fn fatal_once(_x: u32) -> Result<u32, Boom> {
    FATAL_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Boom::Fatal)
}

#[tokio::test]
async fn retry_if_stops_on_errors_not_worth_retrying() {
    let r = flow! { fatal_once }.run(1).await;
    assert!(!r.success);
    assert_eq!(FATAL_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(r.traces.len(), 1);
}

static FLOW_DEFAULT: Flaky = Flaky::failing(2);

#[step]
async fn no_policy(x: u32) -> Result<u32, FlakyError> {
    FLOW_DEFAULT.attempt()?;
    Ok(x)
}

static STEP_WINS: Flaky = Flaky::failing(5);

#[step(retry = 1)]
async fn own_policy(x: u32) -> Result<u32, FlakyError> {
    STEP_WINS.attempt()?;
    Ok(x)
}

#[tokio::test]
async fn flow_default_applies_to_steps_without_policy_and_step_policy_wins() {
    let r = flow! { #[flow(retry = 3)] no_policy }.run(1).await;
    assert!(r.success);
    assert_eq!(r.traces.len(), 3);

    let r = flow! { #[flow(retry = 9)] own_policy }.run(1).await;
    assert!(!r.success);
    assert_eq!(
        r.traces.len(),
        2,
        "the step's retry = 1 wins over the flow's 9"
    );

    static NONE: Flaky = Flaky::failing(1);
    #[step]
    async fn plain(x: u32) -> Result<u32, FlakyError> {
        NONE.attempt()?;
        Ok(x)
    }
    let f = flow! { plain };
    assert!(!f.run(1).await.success, "no policy anywhere: one attempt");
    let r = f
        .clone()
        .default_retry(RetryPolicy::retries(1))
        .run(1)
        .await;
    assert!(r.success, "a runtime default applies too");
}

// ---------------------------------------------------------------- timeouts and panics

#[step(timeout = "50ms", retry = 1)]
async fn sleepy(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    x
}

#[tokio::test(start_paused = true)]
async fn timeouts_fail_an_attempt_and_are_retried() {
    let t0 = Instant::now();
    let r = flow! { sleepy }.run(1).await;
    assert!(!r.success);
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
    assert!(
        r.traces
            .iter()
            .all(|t| t.outcome == AttemptOutcome::TimedOut)
    );
    assert_eq!(r.traces.len(), 2);
    assert!(matches!(
        r.error,
        Some(orchflow::FlowError::Step {
            source: StepError::TimedOut(_),
            attempts: 2,
            ..
        })
    ));
}

#[step]
async fn panics(x: u32) -> u32 {
    if x > 0 {
        panic!("step blew up with {x}");
    }
    x
}

#[step]
fn panics_sync(x: u32) -> u32 {
    if x > 0 {
        panic!("sync step blew up");
    }
    x
}

#[tokio::test]
async fn a_panic_is_a_failed_attempt_not_a_crash() {
    let r = flow! { panics => inc }.run(3).await;
    assert!(!r.success);
    assert_eq!(r.traces[0].outcome, AttemptOutcome::Panicked);
    assert_eq!(
        r.traces[0].error.as_deref(),
        Some("step panicked: step blew up with 3")
    );

    let r = flow! { panics_sync }.run(3).await;
    assert!(!r.success);
    assert_eq!(r.traces[0].outcome, AttemptOutcome::Panicked);
    assert!(
        matches!(r.error, Some(orchflow::FlowError::Step { source: StepError::Panicked(ref m), .. }) if m == "sync step blew up")
    );
}

fn explodes(_: &u32) -> bool {
    panic!("predicate exploded")
}

#[tokio::test]
async fn a_panicking_predicate_fails_the_flow() {
    let r = flow! { inc => if explodes { inc } }.run(1).await;
    assert!(!r.success);
    assert!(r.error.unwrap().to_string().contains("predicate exploded"));
}

// ---------------------------------------------------------------- parallel groups

#[step]
async fn slow_ok(x: &u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    *x
}

#[step]
async fn slow_ok_2(x: &u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    x + 1
}

#[tokio::test(start_paused = true)]
async fn branches_run_concurrently_and_keep_declaration_order() {
    let t0 = Instant::now();
    let r = flow! { inc => [slow_ok_2, slow_ok, double] }.run(1).await;
    assert_eq!(r.output, Some((3, 2, 4)));
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(100),
        "both sleeps overlapped"
    );
    let groups: Vec<_> = r
        .traces
        .iter()
        .filter_map(|t| t.parallel_group_id)
        .collect();
    assert_eq!(groups.len(), 3);
    assert!(groups.iter().all(|g| *g == groups[0]));
    assert_eq!(r.traces_of("inc").next().unwrap().parallel_group_id, None);
}

#[step]
async fn fails_fast(_x: &u32) -> Result<u32, Boom> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Err(Boom::Fatal)
}

static NEVER_FINISHES: AtomicU32 = AtomicU32::new(0);

#[step]
async fn very_slow(x: &u32) -> u32 {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    NEVER_FINISHES.fetch_add(1, Ordering::SeqCst);
    *x
}

#[tokio::test(start_paused = true)]
async fn a_failing_branch_cancels_unfinished_siblings() {
    let t0 = Instant::now();
    let r = flow! { [very_slow, fails_fast] }.run(1).await;
    assert!(!r.success);
    assert_eq!(r.failed_step.as_deref(), Some("fails_fast"));
    assert_eq!(t0.elapsed(), Duration::from_millis(10));
    assert_eq!(NEVER_FINISHES.load(Ordering::SeqCst), 0);
    let slow = r
        .traces_of("very_slow")
        .next()
        .expect("the cancelled attempt is traced");
    assert_eq!(slow.outcome, AttemptOutcome::Cancelled);
}

#[step]
async fn sum_pair(p: (u32, u32)) -> u32 {
    p.0 + p.1
}

#[tokio::test]
async fn branches_may_be_pipelines_and_groups_nest() {
    let r = flow! { inc => [inc => double, [double, inc] => sum_pair] => sum_pair }
        .run(1)
        .await;
    // inc: 2; branch 1: 3 -> 6; branch 2: (4, 3) -> 7; sum: 13
    assert_eq!(r.output, Some(13));
    let ids: std::collections::BTreeSet<_> = r
        .traces
        .iter()
        .filter_map(|t| t.parallel_group_id)
        .collect();
    assert_eq!(ids.len(), 2, "the inner group has its own id");
}

// ---------------------------------------------------------------- shared state

#[derive(Default)]
struct Notes {
    seen: Mutex<Vec<&'static str>>,
    count: AtomicU32,
}

#[step]
async fn note_a(x: &u32, ctx: &StepContext<Notes>) -> u32 {
    ctx.state().seen.lock().unwrap().push(ctx.step_name());
    ctx.state().count.fetch_add(1, Ordering::SeqCst);
    *x
}

#[step]
fn note_b(x: &u32, ctx: &StepContext<Notes>) -> u32 {
    ctx.state().seen.lock().unwrap().push(ctx.step_name());
    ctx.state().count.fetch_add(1, Ordering::SeqCst);
    *x
}

#[step]
async fn info(x: (u32, u32), ctx: &StepContext) -> String {
    format!(
        "{}:{}:{}:{}",
        ctx.flow_name(),
        ctx.step_name(),
        ctx.attempt(),
        x.0 + x.1
    )
}

#[tokio::test]
async fn state_is_shared_across_parallel_branches_and_sync_steps() {
    let f = flow! { #[flow(name = "notes")] [note_a, note_b] => info };
    let r = f.run(5).await;
    assert_eq!(r.output.as_deref(), Some("notes:info:1:10"));
    assert_eq!(r.state.count.load(Ordering::SeqCst), 2);
    let mut seen = r.state.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["note_a", "note_b"]);

    let preset = Notes::default();
    preset.count.store(40, Ordering::SeqCst);
    let r = f.run_with_state(1, preset).await;
    assert_eq!(r.state.count.load(Ordering::SeqCst), 42);
}

#[step]
async fn original(_x: u32, ctx: &StepContext) -> String {
    format!(
        "{:?} {}",
        ctx.input::<u32>(),
        ctx.input::<String>().is_none()
    )
}

#[tokio::test]
async fn the_original_input_is_reachable_from_any_step() {
    let r = flow! { inc => inc => original }.run(7).await;
    assert_eq!(r.output.as_deref(), Some("Some(7) true"));
}

// ---------------------------------------------------------------- if and loops

fn is_even(x: &u32) -> bool {
    x.is_multiple_of(2)
}

#[tokio::test]
async fn if_takes_one_arm_and_without_else_passes_through() {
    let f = flow! { inc => if is_even { double => inc } else { inc } };
    assert_eq!(f.run(1).await.output, Some(5));
    assert_eq!(f.run(2).await.output, Some(4));

    let g = flow! { inc => if is_even { double } };
    assert_eq!(g.run(1).await.output, Some(4));
    assert_eq!(g.run(2).await.output, Some(3));

    let h = flow! { inc => if |x: &u32| *x > 10 { double } else if is_even { inc } else { inc => inc } };
    assert_eq!(h.run(20).await.output, Some(42));
    assert_eq!(h.run(3).await.output, Some(5));
    assert_eq!(h.run(4).await.output, Some(7));
}

fn big(x: &u32) -> bool {
    *x >= 100
}

fn ctx_aware(x: &u32, ctx: &StepContext<Notes>) -> bool {
    ctx.state().count.fetch_add(1, Ordering::SeqCst);
    *x >= 8
}

#[tokio::test]
async fn loops_stop_on_the_predicate_or_the_bound() {
    let until = flow! { loop(max = 50) { double } until big };
    let r = until.run(3).await;
    assert_eq!(r.output, Some(192));
    assert_eq!(r.traces.len(), 6);

    let bounded = flow! { inc => loop(max = 3) { double => inc } };
    assert_eq!(bounded.run(0).await.output, Some(15)); // 1 -> 3 -> 7 -> 15

    let capped = flow! { loop(max = 2) { double } until big };
    assert_eq!(capped.run(1).await.output, Some(4));

    let in_arm = flow! { inc => if is_even { loop(max = 200) { inc } until big } else { inc } };
    assert_eq!(in_arm.run(1).await.output, Some(100));
    let short_arm = flow! { inc => if is_even { loop(max = 10) { inc } until big } };
    assert_eq!(short_arm.run(1).await.output, Some(12), "the bound wins");

    let with_ctx = flow! { loop(max = 10) { double => note_a } until ctx_aware };
    let r = with_ctx.run(1).await;
    assert_eq!(r.output, Some(8));
    assert_eq!(
        r.state.count.load(Ordering::SeqCst),
        6,
        "3 note_a calls + 3 predicate calls"
    );
}

// ---------------------------------------------------------------- nesting

#[tokio::test]
async fn a_flow_is_a_step_of_another_flow() {
    let research = flow! { #[flow(name = "research")] [double, inc] => sum_pair };
    let outer = flow! { inc => (research.clone()) => inc };
    let r = outer.run(1).await;
    // inc 2; research: (4, 3) -> 7; inc 8
    assert_eq!(r.output, Some(8));
    let parents: Vec<_> = r
        .traces
        .iter()
        .map(|t| (t.step.as_ref(), t.parent.as_deref()))
        .collect();
    assert!(parents.contains(&("sum_pair", Some("research"))));
    assert!(parents.contains(&("research", None)));
    assert!(parents.contains(&("inc", None)));
    // The nested flow still runs on its own.
    assert_eq!(research.run(1).await.output, Some(4));
}

#[tokio::test]
async fn nested_flows_share_the_parents_state() {
    let inner = flow! { note_a => note_a };
    let outer = flow! { note_b => (inner) };
    let r = outer.run(1).await;
    assert_eq!(r.state.count.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------- events and traces

#[tokio::test]
async fn events_come_in_lifecycle_order_and_end_with_the_result() {
    static ONCE: Flaky = Flaky::failing(1);
    #[step(retry = 1)]
    async fn once(x: u32) -> Result<u32, FlakyError> {
        ONCE.attempt()?;
        Ok(x)
    }
    let f = flow! { once => inc };
    let (kinds, result) = collect_events(f.stream(1)).await;
    assert_eq!(
        kinds,
        [
            "flow_started",
            "step_started",
            "step_failed",
            "retry_scheduled",
            "step_started",
            "step_completed",
            "step_started",
            "step_completed",
            "flow_completed"
        ]
    );
    assert_eq!(result.and_then(|r| r.output), Some(2));

    let (kinds, result) = collect_events(flow! { always_fails }.stream(1)).await;
    assert_eq!(kinds.last(), Some(&"flow_failed"));
    assert!(!result.unwrap().success);
}

#[tokio::test]
async fn step_events_carry_names_attempts_and_groups() {
    let f = flow! { inc => [double, inc] };
    let events: Vec<_> = f.stream(1).collect().await;
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == "step_completed")
        .filter_map(|e| e.step_event())
        .map(|e| (e.step(), e.attempt(), e.parallel_group_id().is_some()))
        .collect();
    assert_eq!(completed.len(), 3);
    assert_eq!(completed[0], ("inc", 1, false));
    assert!(completed[1..].iter().all(|c| c.2));
}

#[tokio::test]
async fn step_events_say_what_happened_to_each_attempt() {
    static TWICE: Flaky = Flaky::failing(1);
    #[step(retry = 1, delay = "5ms")]
    async fn shaky(x: u32) -> Result<u32, FlakyError> {
        TWICE.attempt()?;
        Ok(x)
    }
    let f = flow! { shaky => [inc, double] };
    let events: Vec<_> = f.stream(1).collect().await;
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| e.step_event().map(|s| (e.kind(), s)))
        .collect();

    let (_, started) = steps[0];
    assert_eq!((started.step(), started.attempt()), ("shaky", 1));
    assert_eq!(
        (started.duration(), started.error(), started.delay()),
        (None, None, None)
    );

    let (kind, failed) = steps[1];
    assert_eq!(kind, "step_failed");
    assert_eq!(failed.error(), Some("flaky failure 1 of 1"));
    assert!(failed.will_retry());
    assert!(failed.duration().is_some());

    let (kind, retry) = steps[2];
    assert_eq!(kind, "retry_scheduled");
    assert_eq!(
        (retry.attempt(), retry.delay()),
        (2, Some(Duration::from_millis(5)))
    );
    // A retry says the error that caused it.
    assert!(!retry.will_retry());
    assert_eq!(retry.error(), Some("flaky failure 1 of 1"));

    let (kind, done) = steps[4];
    assert_eq!(
        (kind, done.step(), done.attempt()),
        ("step_completed", "shaky", 2)
    );
    assert!(done.duration().is_some());
    assert!(done.elapsed() >= retry.elapsed() + Duration::from_millis(5));

    // The branches share their group's id; the steps before them have none.
    let groups: Vec<_> = steps.iter().map(|(_, s)| s.parallel_group_id()).collect();
    assert!(groups[..5].iter().all(Option::is_none));
    assert!(groups[5..].iter().all(|g| *g == Some(1)), "{groups:?}");
    // In order of time.
    assert!(
        steps
            .windows(2)
            .all(|w| w[0].1.elapsed() <= w[1].1.elapsed())
    );
}

#[tokio::test]
async fn the_last_failure_says_no_retry_follows() {
    let events: Vec<_> = flow! { always_fails }.stream(1).collect().await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == "step_failed")
        .filter_map(|e| e.step_event())
        .map(|e| (e.attempt(), e.will_retry(), e.duration().is_some()))
        .collect();
    assert_eq!(failed, [(1, true, true), (2, false, true)]);

    // An error `retry_if` rejects is not retried, though attempts are left.
    #[step(retry = 5, retry_if = is_transient)]
    async fn picky(_x: u32) -> Result<u32, Boom> {
        Err(Boom::Fatal)
    }
    let events: Vec<_> = flow! { picky }.stream(1).collect().await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == "step_failed")
        .filter_map(|e| e.step_event())
        .map(|e| (e.attempt(), e.will_retry()))
        .collect();
    assert_eq!(failed, [(1, false)]);
}

#[derive(Debug, Clone, serde::Serialize)]
struct Doc {
    words: u32,
}

#[step]
async fn make_doc(words: u32) -> Doc {
    Doc { words }
}

struct Opaque;

#[step]
async fn opaque(_d: &Doc) -> Opaque {
    Opaque
}

#[tokio::test]
async fn traces_capture_serializable_values_when_asked() {
    let f = flow! { make_doc => opaque };
    let r = f.run(3).await;
    assert!(
        r.traces
            .iter()
            .all(|t| t.input.is_none() && t.output.is_none()),
        "off by default"
    );

    let r = f.clone().capture_values(true).run(3).await;
    let doc = &r.traces[0];
    assert_eq!(doc.input, Some(serde_json::json!(3)));
    assert_eq!(doc.output, Some(serde_json::json!({ "words": 3 })));
    let op = &r.traces[1];
    assert_eq!(op.input, Some(serde_json::json!({ "words": 3 })));
    assert_eq!(
        op.output, None,
        "`Opaque` is not Serialize: nothing captured, still runs"
    );
    assert!(doc.ended_at >= doc.started_at);
    assert!(r.traces.iter().all(|t| t.success));
}

// A step's start is the previous step's end when only the generated glue ran between them
// (one clock read per step); anything else that takes time must not be counted in the next
// step's duration. The gaps below are 200 ms; the steps take microseconds.
const GAP: Duration = Duration::from_millis(200);

fn took<S>(r: &orchflow::FlowResult<u32, S>, step: &str) -> Vec<Duration> {
    r.traces_of(step).map(|t| t.duration).collect()
}

#[tokio::test]
async fn steps_in_sequence_share_their_boundary() {
    let r = flow! { inc => double => inc }.run(1).await;
    for pair in r.traces.windows(2) {
        assert_eq!(pair[1].started_at, pair[0].ended_at, "{pair:?}");
    }
}

#[tokio::test]
async fn a_slow_predicate_is_not_counted_in_the_next_step() {
    fn slow_yes(_: &u32) -> bool {
        std::thread::sleep(GAP);
        true
    }
    let r = flow! { inc => if slow_yes { double } else { inc } }
        .run(1)
        .await;
    assert_eq!(r.output, Some(4));
    assert!(took(&r, "double")[0] < GAP, "{:?}", r.traces);
    let (first, second) = (&r.traces[0], &r.traces[1]);
    assert!(second.started_at >= first.ended_at + GAP);
}

#[tokio::test]
async fn a_retry_delay_is_not_counted_in_the_next_attempt() {
    static ONCE: Flaky = Flaky::failing(1);
    #[step(retry = 1, delay = "200ms")]
    async fn shaky(x: u32) -> Result<u32, FlakyError> {
        ONCE.attempt()?;
        Ok(x)
    }
    // A sibling branch finishes while `shaky` waits for its retry.
    let r = flow! { [shaky, inc] => pick_first }.run(1).await;
    let attempts: Vec<_> = r.traces_of("shaky").collect();
    assert_eq!(attempts.len(), 2);
    assert!(attempts[1].duration < GAP, "{attempts:?}");
    assert!(attempts[1].started_at >= attempts[0].ended_at + GAP);
}

#[step]
async fn pick_first(t: (u32, u32)) -> u32 {
    t.0
}

#[tokio::test]
async fn time_between_polls_is_not_counted_in_the_next_step() {
    #[step]
    async fn wait(x: u32) -> u32 {
        tokio::time::sleep(GAP).await;
        x
    }
    #[step]
    fn busy(x: &u32) -> u32 {
        std::thread::sleep(GAP);
        *x
    }
    // `inc` ends while `wait` is pending; `busy` then holds the thread; `double` starts after
    // both, long after `inc` ended.
    let r = flow! { [wait, inc => busy] => pick_first => double }
        .run(1)
        .await;
    assert_eq!(took(&r, "double").len(), 1);
    assert!(took(&r, "double")[0] < GAP, "{:?}", r.traces);
    assert!(took(&r, "pick_first")[0] < GAP, "{:?}", r.traces);
}

#[tokio::test]
async fn a_busy_sibling_is_not_counted_in_the_next_attempt() {
    // Every branch waits at its first poll. At the second: `later` succeeds, `hog` holds the
    // thread and waits again, `fails_late` fails and its retry starts at once.
    #[step]
    async fn later(x: &u32) -> u32 {
        tokio::task::yield_now().await;
        *x
    }
    #[step]
    async fn hog(x: &u32) -> u32 {
        tokio::task::yield_now().await;
        std::thread::sleep(GAP);
        tokio::task::yield_now().await;
        *x
    }
    static ONCE: Flaky = Flaky::failing(1);
    #[step(retry = 1)]
    async fn fails_late(x: &u32) -> Result<u32, FlakyError> {
        tokio::task::yield_now().await;
        ONCE.attempt()?;
        Ok(*x)
    }
    #[step]
    async fn sum3(t: (u32, u32, u32)) -> u32 {
        t.0 + t.1 + t.2
    }
    let r = flow! { [later, hog, fails_late] => sum3 }.run(1).await;
    assert_eq!(r.output, Some(3), "{:?}", r.error);
    let retry: Vec<_> = r.traces_of("fails_late").collect();
    assert_eq!(retry.len(), 2);
    assert!(retry[1].duration < GAP, "{retry:?}");
}

#[tokio::test]
async fn a_checkpoint_is_not_counted_in_the_next_step() {
    struct Slow(orchflow::MemoryStore);
    impl orchflow::CheckpointStore for Slow {
        fn create<'a>(
            &'a self,
            document: &'a orchflow::store::RunDocument,
        ) -> orchflow::store::StoreFuture<'a, orchflow::store::Claim> {
            self.0.create(document)
        }
        fn claim<'a>(
            &'a self,
            run_id: orchflow::RunId,
        ) -> orchflow::store::StoreFuture<'a, orchflow::store::Claim> {
            self.0.claim(run_id)
        }
        fn put_document<'a>(
            &'a self,
            claim: &'a orchflow::store::Claim,
            document: &'a orchflow::store::RunDocument,
        ) -> orchflow::store::StoreFuture<'a, ()> {
            self.0.put_document(claim, document)
        }
        fn append<'a>(
            &'a self,
            claim: &'a orchflow::store::Claim,
            entry: &'a orchflow::store::JournalEntry,
        ) -> orchflow::store::StoreFuture<'a, ()> {
            std::thread::sleep(GAP);
            self.0.append(claim, entry)
        }
        fn load<'a>(
            &'a self,
            run_id: orchflow::RunId,
        ) -> orchflow::store::StoreFuture<'a, Option<orchflow::store::Checkpoint>> {
            self.0.load(run_id)
        }
        fn list_runs<'a>(
            &'a self,
            query: &'a orchflow::store::RunQuery,
        ) -> orchflow::store::StoreFuture<'a, orchflow::store::RunListing> {
            self.0.list_runs(query)
        }
        fn put_graph<'a>(
            &'a self,
            graph: &'a orchflow::graph::FlowGraph,
        ) -> orchflow::store::StoreFuture<'a, ()> {
            self.0.put_graph(graph)
        }
        fn graph<'a>(
            &'a self,
            fingerprint: &'a str,
        ) -> orchflow::store::StoreFuture<'a, Option<orchflow::graph::FlowGraph>> {
            self.0.graph(fingerprint)
        }
    }
    let f = flow! { inc => double };
    let r = f
        .durable(Slow(orchflow::MemoryStore::default()))
        .run(1)
        .await;
    assert_eq!(r.output, Some(4), "{:?}", r.error);
    assert!(took(&r, "double")[0] < GAP, "{:?}", r.traces);
}

#[tokio::test]
async fn try_run_returns_an_error_carrying_the_partial_result() {
    let f = flow! { inc => always_fails };
    let err = f.try_run(1).await.unwrap_err();
    assert_eq!(err.result.traces_of("inc").count(), 1);
    assert_eq!(err.result.failed_step.as_deref(), Some("always_fails"));
    assert!(std::error::Error::source(&err).is_some());
    let ok = flow! { inc }.try_run(1).await.unwrap();
    assert_eq!(ok.output, Some(2));
}

// ---------------------------------------------------------------- sync steps

#[step]
fn blocking_work(x: &u32) -> u32 {
    std::thread::sleep(Duration::from_millis(1));
    x + 100
}

#[step(inline)]
fn inline_work(x: u32) -> u32 {
    x + 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_steps_run_on_the_blocking_pool_or_inline() {
    let r = flow! { blocking_work => inline_work }.run(1).await;
    assert_eq!(r.output, Some(1101));
}

#[tokio::test]
async fn runs_can_be_spawned() {
    let f = flow! { inc => [double, blocking_work] };
    let handle = tokio::spawn(async move { f.run(1).await });
    let r = handle.await.unwrap();
    assert_eq!(r.output, Some((4, 102)));
}
