//! Replay of recorded runs against changed code, and forks (see `orchflow::replay`).
//!
//! Each case records a run with one build of a flow, then replays it with another build of the
//! same name: the same code is compatible; a renamed step, an added step, a changed arm and a
//! changed loop bound are each reported at the right structural path. Forks from a loop
//! iteration and from a branch with an edited input reuse what came before and run the rest.

// A step takes `&T` of the type flowing in, here `String`, not `str`.
#![allow(clippy::ptr_arg)]

use orchflow::replay::{DivergenceKind, ForkAt, ReplayOptions, ReplayOutcome, ReplayReport, Reuse};
use orchflow::{AttemptOutcome, MemoryStore, flow, step};
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[step]
async fn plan(topic: String) -> String {
    CALLS.fetch_add(1, Ordering::SeqCst);
    format!("plan for {topic}")
}

#[step]
async fn draft(topic: String) -> String {
    format!("draft of {topic}")
}

#[step]
async fn docs(plan: &String) -> usize {
    CALLS.fetch_add(1, Ordering::SeqCst);
    plan.len()
}

#[step]
async fn market(plan: &String) -> usize {
    CALLS.fetch_add(1, Ordering::SeqCst);
    plan.split(' ').count()
}

#[step]
fn merge(parts: (usize, usize)) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    u32::try_from(parts.0 * 100 + parts.1).unwrap_or(u32::MAX)
}

#[step]
async fn refine(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n + 1
}

#[step]
async fn publish(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[step]
async fn revise(n: u32) -> u32 {
    n * 3
}

#[step]
async fn audit(n: u32) -> u32 {
    n
}

fn big(n: &u32) -> bool {
    *n > 1000
}

fn small(n: &u32) -> bool {
    *n < 1000
}

fn compatible(report: &ReplayReport) {
    assert!(report.is_compatible(), "{:#?}", report.outcome);
}

fn diverges(report: &ReplayReport) -> (&DivergenceKind, &str, &str) {
    match &report.outcome {
        ReplayOutcome::Diverges(d) => (&d.kind, d.path.as_str(), d.message.as_str()),
        other => panic!("expected a divergence, got {other:#?}"),
    }
}

/// The recorded build: a group, a loop of three iterations, an `if`.
macro_rules! v1 {
    () => {
        flow! { #[flow(name = "launch")]
            plan => [docs, market] => merge => loop(max = 3) { refine } => if big { publish } else { revise }
        }
    };
}

async fn recorded(store: &MemoryStore) -> orchflow::RunId {
    let f = v1!();
    let r = f.durable(store.clone()).run("rust".to_string()).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.output, Some((1300 + 3 + 3) * 2));
    r.run_id
}

#[tokio::test]
async fn the_same_code_replays_compatible_without_running_a_step() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let before = CALLS.load(Ordering::SeqCst);
    let report = v1!()
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    compatible(&report);
    assert_eq!(
        report.reused, 8,
        "plan, docs, market, merge, 3 refines, publish"
    );
    assert!(report.continues_at.is_empty());
    assert_eq!(report.recorded_fingerprint, report.fingerprint);
    let _ = before;
}

#[tokio::test]
async fn a_renamed_step_is_reported_where_it_was_with_both_names_and_its_source() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let f = flow! { #[flow(name = "launch")]
        draft => [docs, market] => merge => loop(max = 3) { refine } => if big { publish } else { revise }
    };
    let report = f
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, message) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::StepChanged);
    assert_eq!(path, "step draft");
    assert_eq!(
        message,
        "the recorded run called `plan` here; the new code calls `draft`"
    );
    let ReplayOutcome::Diverges(d) = &report.outcome else {
        unreachable!()
    };
    let new = d.new.as_ref().unwrap();
    let source = new.source.as_ref().unwrap();
    assert!(source.file.ends_with("tests/replay.rs"), "{source}");
    let line = include_str!("replay.rs")
        .lines()
        .position(|l| l.starts_with("async fn draft"))
        .unwrap();
    assert_eq!(source.line as usize, line + 1, "the line of `fn draft`");
    assert_eq!(new.input, Some(serde_json::json!("rust")));
    assert_eq!(d.recorded.as_ref().unwrap().step, "plan");
}

#[tokio::test]
async fn an_added_step_is_reported_at_its_place_in_the_group() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let f = flow! { #[flow(name = "launch")]
        plan => [docs, audit_plan, market] => merge3 => loop(max = 3) { refine } => if big { publish } else { revise }
    };
    let report = f
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, _) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::StepChanged);
    assert_eq!(path, "[docs, audit_plan, market][1] > step audit_plan");
}

#[step]
async fn audit_plan(plan: &String) -> usize {
    plan.len()
}

#[step]
fn merge3(parts: (usize, usize, usize)) -> u32 {
    u32::try_from(parts.0 * 100 + parts.2).unwrap_or(u32::MAX)
}

#[tokio::test]
async fn a_changed_arm_is_reported_inside_the_if() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    // The predicate now picks the other arm.
    let f = flow! { #[flow(name = "launch")]
        plan => [docs, market] => merge => loop(max = 3) { refine } => if small { publish } else { revise }
    };
    let report = f
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, message) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::NotRecorded);
    assert_eq!(path, "if small else > step revise");
    assert_eq!(
        message,
        "the new code calls `revise`, which the recorded run never called here; it called `publish` next"
    );
    // The arm's step replaced.
    let f = flow! { #[flow(name = "launch")]
        plan => [docs, market] => merge => loop(max = 3) { refine } => if big { audit } else { revise }
    };
    let report = f
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, _) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::StepChanged);
    assert_eq!(path, "if big then > step audit");
}

#[tokio::test]
async fn a_changed_loop_bound_is_reported_at_the_iteration() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let fewer = flow! { #[flow(name = "launch")]
        plan => [docs, market] => merge => loop(max = 2) { refine } => if big { publish } else { revise }
    };
    let report = fewer
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, _) = diverges(&report);
    // Two iterations, then `publish` with another input than recorded.
    assert_eq!(*kind, DivergenceKind::InputChanged);
    assert_eq!(path, "if big then > step publish");
    let more = flow! { #[flow(name = "launch")]
        plan => [docs, market] => merge => loop(max = 5) { refine } => if big { publish } else { revise }
    };
    let report = more
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, message) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::NotRecorded);
    assert_eq!(path, "loop refine[3] > step refine");
    assert_eq!(
        message,
        "the new code calls `refine`, which the recorded run never called here; it called `publish` next"
    );
}

#[tokio::test]
async fn a_removed_step_is_reported_where_the_recording_called_it() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    // A flow without the `if` at the end: `publish` is never called.
    let f = flow! { #[flow(name = "launch")]
        plan => [docs, market] => merge => loop(max = 3) { refine }
    };
    let report = f
        .durable(store.clone())
        .replay(run, &ReplayOptions::default())
        .await
        .unwrap();
    let (kind, path, message) = diverges(&report);
    assert_eq!(*kind, DivergenceKind::NotCalled);
    assert_eq!(path, "if big then > step publish");
    assert_eq!(
        message,
        "the recorded run called `publish` here, which the new code never calls"
    );
}

#[tokio::test]
async fn a_fork_from_a_loop_iteration_reuses_the_iterations_before_it() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let f = v1!();
    let d = f.durable(store.clone());
    let at = ForkAt::parse("refine@2").unwrap();
    let preview = d
        .preview_fork(run, &at, Some(serde_json::json!(2000)))
        .await
        .unwrap();
    let how: Vec<(&str, Reuse)> = preview
        .steps
        .iter()
        .map(|s| (s.call.step.as_str(), s.reuse))
        .collect();
    assert_eq!(
        how,
        [
            ("plan", Reuse::Reused),
            ("docs", Reuse::Reused),
            ("market", Reuse::Reused),
            ("merge", Reuse::Reused),
            ("refine", Reuse::Reused),
            ("refine", Reuse::Rerun),
            ("refine", Reuse::Rerun),
            ("publish", Reuse::Rerun),
        ]
    );
    assert_eq!(preview.at.path, "loop refine[1] > step refine");
    assert!(preview.steps[5].repeats_side_effects);
    let fork = d
        .fork(run, &at, Some(serde_json::json!(2000)))
        .await
        .unwrap();
    assert!(fork.success, "{:?}", fork.error);
    assert_eq!(fork.output, Some((2000 + 1 + 1) * 2));
    let ran: Vec<&str> = fork
        .traces
        .iter()
        .filter(|t| t.outcome != AttemptOutcome::Reused)
        .map(|t| t.step.as_ref())
        .collect();
    assert_eq!(ran, ["refine", "refine", "publish"], "the rest ran");
    let reused: Vec<&str> = fork
        .traces
        .iter()
        .filter(|t| t.outcome == AttemptOutcome::Reused)
        .map(|t| t.step.as_ref())
        .collect();
    assert_eq!(reused, ["plan", "docs", "market", "merge", "refine"]);
    assert!(fork.traces.iter().all(|t| t.success));
    // The fork's own record replays: the reused calls are in it.
    let report = d
        .replay(fork.run_id, &ReplayOptions::default())
        .await
        .unwrap();
    compatible(&report);
    // Both runs keep the lineage.
    let doc = store_doc(&store, fork.run_id).await;
    let origin = doc.lineage.forked_from.unwrap();
    assert_eq!(
        (origin.run_id, origin.at.to_string()),
        (run, "refine@2".to_string())
    );
    assert_eq!(origin.input, Some(serde_json::json!(2000)));
    assert_eq!(store_doc(&store, run).await.lineage.forks, [fork.run_id]);
}

async fn store_doc(store: &MemoryStore, run: orchflow::RunId) -> orchflow::store::RunDocument {
    use orchflow::CheckpointStore;
    store.document(run).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_fork_from_a_branch_with_an_edited_input_reruns_that_branch_only() {
    let store = MemoryStore::default();
    let run = recorded(&store).await;
    let d = v1!();
    let d = d.durable(store.clone());
    let at = ForkAt::parse("market").unwrap();
    let edited = serde_json::json!("a much longer plan with many words");
    let preview = d
        .preview_fork(run, &at, Some(edited.clone()))
        .await
        .unwrap();
    let how: Vec<(&str, Reuse)> = preview
        .steps
        .iter()
        .take(4)
        .map(|s| (s.call.step.as_str(), s.reuse))
        .collect();
    assert_eq!(
        how,
        [
            ("plan", Reuse::Reused),
            ("docs", Reuse::Reused),
            ("market", Reuse::Rerun),
            ("merge", Reuse::Rerun),
        ]
    );
    assert_eq!(preview.at.path, "[docs, market][1] > step market");
    let fork = d.fork(run, &at, Some(edited)).await.unwrap();
    assert!(fork.success, "{:?}", fork.error);
    // docs (13) reused; market counted the edited plan's 7 words.
    let ran: Vec<&str> = fork
        .traces
        .iter()
        .filter(|t| t.outcome != AttemptOutcome::Reused)
        .map(|t| t.step.as_ref())
        .collect();
    assert_eq!(ran[0], "market");
    assert!(!ran.contains(&"docs") && !ran.contains(&"plan"));
    assert_eq!(fork.output, Some((1307 + 3) * 2));

    // An input of the wrong type is refused before anything is written.
    let bad = d
        .fork(run, &at, Some(serde_json::json!({"not": "a string"})))
        .await
        .unwrap_err();
    assert!(
        bad.to_string()
            .contains("does not fit the input type of `market`"),
        "{bad}"
    );
    assert_eq!(store_doc(&store, run).await.lineage.forks.len(), 1);
    let missing = d
        .fork(run, &ForkAt::parse("market@2").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("run {run}: the run called `market` 1 time(s); there is no call 2")
    );
}
