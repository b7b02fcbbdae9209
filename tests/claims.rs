//! One writer per run: concurrent answers and resumes (tasks of one process, and processes), a
//! missing journal, an unwritable journal and a full disk. (A reused run id is a case of the
//! store conformance suite, `tests/store_conformance.rs`.)
//!
//! The process cases re-execute this test binary: [`claim_child`] is an `#[ignore]`d test that
//! does nothing unless `ORCHFLOW_CLAIM_CHILD` is set; then it answers (or resumes) the run named
//! by `ORCHFLOW_CLAIM_RUN` in the store at `ORCHFLOW_CLAIM_DIR` and prints what it was told.

#![cfg(unix)]

use orchflow::human::{self, Answer};
use orchflow::store::{RunStatus, StoreError};
use orchflow::{
    CheckpointStore, FlowError, JsonCheckpointStore, MemoryStore, ResumeError, RunId, flow, step,
};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How many times `publish` ran in this process.
static PUBLISHED: AtomicU32 = AtomicU32::new(0);

#[step]
async fn draft(topic: String) -> String {
    format!("a post about {topic}")
}

/// Slow enough that a second writer arrives while the first holds the run.
#[step]
async fn publish(a: Answer<String>) -> String {
    PUBLISHED.fetch_add(1, Ordering::SeqCst);
    if let Ok(log) = std::env::var("ORCHFLOW_CLAIM_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log");
        writeln!(f, "publish {}", a.text).expect("write the log");
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    format!("{}: {}", a.text, a.value)
}

macro_rules! review_flow {
    () => {{
        let review = human::ask("review", |d: &String| format!("publish {d}?"));
        flow! { #[flow(name = "claims_review")] draft => (review) => publish }
            .with_input(human::Suspend)
    }};
}

/// A suspended run in `store`.
async fn suspended_run(store: impl CheckpointStore + 'static) -> RunId {
    let run = review_flow!().durable(store).run("rust".into()).await;
    assert_eq!(run.suspended.len(), 1, "{:?}", run.error);
    run.run_id
}

fn busy(e: &ResumeError) -> bool {
    matches!(e, ResumeError::Store(StoreError::RunBusy { .. }))
}

/// Two answers at once through `a` and `b` (clones of one store, or two stores on one
/// directory): exactly one is taken, the other is refused before anything runs.
async fn racing_answers(a: impl Both, b: impl Both) {
    let run_id = suspended_run(a.clone_store()).await;
    let before = PUBLISHED.load(Ordering::SeqCst);
    let f = review_flow!();
    let (da, db) = (f.durable(a.clone_store()), f.durable(b.clone_store()));
    let (yes, no) = tokio::join!(da.answer(run_id, "yes"), db.answer(run_id, "no"));
    let (won, lost) = match (yes, no) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (Ok(a), Ok(b)) => panic!("both answers taken: {:?} and {:?}", a.output, b.output),
        (Err(a), Err(b)) => panic!("no answer taken: {a} / {b}"),
    };
    assert!(won.success, "{:?}", won.error);
    // Refused while the winner writes (or, on a machine slow enough that it arrives after the
    // end, told the run no longer waits).
    assert!(
        busy(&lost) || matches!(lost, ResumeError::NotSuspended { .. }),
        "{lost:?}"
    );
    assert_eq!(PUBLISHED.load(Ordering::SeqCst) - before, 1);
    // What the winner was told is what the store shows.
    let checkpoint = a.load(run_id).await.unwrap().unwrap();
    assert_eq!(checkpoint.document.status, RunStatus::Completed);
    assert_eq!(
        checkpoint.document.output,
        Some(serde_json::json!(won.output.unwrap()))
    );
    // Once the winner is done, the run is free again (and says it is not waiting).
    let again = f.durable(b.clone_store()).answer(run_id, "late").await;
    assert!(
        matches!(again, Err(ResumeError::NotSuspended { .. })),
        "{again:?}"
    );
}

/// Store values that are cheap to clone and share their runs.
trait CloneStore {
    fn clone_store(&self) -> Self;
}
impl CloneStore for MemoryStore {
    fn clone_store(&self) -> Self {
        self.clone()
    }
}
impl CloneStore for JsonCheckpointStore {
    fn clone_store(&self) -> Self {
        self.clone()
    }
}
trait Both: CheckpointStore + CloneStore + 'static {}
impl<T: CheckpointStore + CloneStore + 'static> Both for T {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_in_one_process_have_one_winner() {
    let memory = MemoryStore::default();
    racing_answers(memory.clone(), memory).await;
    let dir = tempfile::tempdir().unwrap();
    let json = JsonCheckpointStore::new(dir.path());
    racing_answers(json.clone(), json).await;
    // Two store values on one directory are two writers as far as the files know.
    racing_answers(
        JsonCheckpointStore::new(dir.path()),
        JsonCheckpointStore::new(dir.path()),
    )
    .await;
}

static FLAKY_DONE: AtomicU32 = AtomicU32::new(0);
static AFTER: AtomicU32 = AtomicU32::new(0);

#[step]
async fn once_broken(x: u32) -> Result<u32, std::io::Error> {
    if FLAKY_DONE.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("broken the first time"));
    }
    Ok(x + 1)
}

#[step]
async fn after(x: u32) -> u32 {
    AFTER.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    x * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resumes_run_the_rest_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = flow! { #[flow(name = "resumes")] once_broken => after };
    let first = f.durable(JsonCheckpointStore::new(dir.path())).run(1).await;
    assert!(!first.success);
    let da = f.durable(JsonCheckpointStore::new(dir.path()));
    let db = f.durable(JsonCheckpointStore::new(dir.path()));
    let (a, b) = tokio::join!(da.resume(first.run_id), db.resume(first.run_id));
    let results = [a, b];
    // One resume runs the rest; the other is refused while it does (or, on a machine slow
    // enough that it arrives after the end, reads the completed run and runs nothing).
    let done: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(!done.is_empty(), "{results:?}");
    assert!(done.iter().all(|r| r.output == Some(20)), "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(busy(refused), "{refused:?}");
    }
    assert_eq!(AFTER.load(Ordering::SeqCst), 1, "the rest ran once");
    // The journal is whole: a later resume reads it and runs nothing.
    let again = f
        .durable(JsonCheckpointStore::new(dir.path()))
        .resume(first.run_id)
        .await
        .unwrap();
    assert_eq!(again.output, Some(20));
    assert_eq!(AFTER.load(Ordering::SeqCst), 1);
}

/// The child side of [`concurrent_answers_in_two_processes_have_one_winner`].
#[test]
#[ignore = "run by the tests in this file as a child process"]
fn claim_child() {
    let Ok(dir) = std::env::var("ORCHFLOW_CLAIM_DIR") else {
        return;
    };
    let run_id: RunId = std::env::var("ORCHFLOW_CLAIM_RUN")
        .expect("run id")
        .parse()
        .expect("a run id");
    let answer = std::env::var("ORCHFLOW_CLAIM_ANSWER").expect("answer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let said = runtime.block_on(async {
        let f = review_flow!();
        match f
            .durable(JsonCheckpointStore::new(&dir))
            .answer(run_id, answer)
            .await
        {
            Ok(r) if r.success => format!("ok {}", r.output.unwrap_or_default()),
            Ok(r) => format!("failed {:?}", r.error),
            Err(e) if busy(&e) => "busy".to_string(),
            Err(ResumeError::NotSuspended { .. }) => "not-suspended".to_string(),
            Err(e) => format!("error {e}"),
        }
    });
    println!("CHILD-SAID {said}");
}

fn child(dir: &Path, run_id: RunId, answer: &str, log: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--ignored",
            "--exact",
            "claim_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ORCHFLOW_CLAIM_DIR", dir)
        .env("ORCHFLOW_CLAIM_RUN", run_id.to_string())
        .env("ORCHFLOW_CLAIM_ANSWER", answer)
        .env("ORCHFLOW_CLAIM_LOG", log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child")
}

fn said(child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("wait for the child");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("CHILD-SAID ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("the child said nothing: {text}"))
        .to_string()
}

#[tokio::test]
async fn concurrent_answers_in_two_processes_have_one_winner() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("side-effects.log");
        let store = JsonCheckpointStore::new(dir.path().join("runs"));
        let run_id = suspended_run(store.clone()).await;
        let a = child(store.dir(), run_id, "yes", &log);
        let b = child(store.dir(), run_id, "no", &log);
        let mut told = [said(a), said(b)];
        told.sort();
        let winners: Vec<_> = told.iter().filter(|t| t.starts_with("ok ")).collect();
        assert_eq!(winners.len(), 1, "round {round}: {told:?}");
        let loser = told.iter().find(|t| !t.starts_with("ok ")).unwrap();
        assert!(
            loser == "busy" || loser == "not-suspended",
            "round {round}: {told:?}"
        );
        // `publish` ran once, with the winner's answer, and the journal reads back whole.
        let checkpoint = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(checkpoint.document.status, RunStatus::Completed);
        let output = checkpoint.document.output.unwrap();
        let output = output.as_str().unwrap();
        assert_eq!(winners[0].as_str(), format!("ok {output}"));
        let answer = output.split(':').next().unwrap();
        let lines = std::fs::read_to_string(&log).unwrap();
        assert_eq!(lines, format!("publish {answer}\n"), "round {round}");
    }
}

#[tokio::test]
async fn a_missing_journal_is_an_error_not_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonCheckpointStore::new(dir.path());
    let run_id = suspended_run(store.clone()).await;
    std::fs::remove_file(store.journal_path(run_id)).unwrap();
    let published = PUBLISHED.load(Ordering::SeqCst);
    let err = review_flow!()
        .durable(store.clone())
        .answer(run_id, "yes")
        .await
        .unwrap_err();
    let path = store.journal_path(run_id);
    assert!(
        matches!(&err, ResumeError::Store(StoreError::MissingJournal { location }) if *location == path.display().to_string()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(PUBLISHED.load(Ordering::SeqCst), published);
    // The run still waits, and nothing was written.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.document_path(run_id)).unwrap()).unwrap();
    assert_eq!(doc["status"], "suspended");
    assert!(!path.exists());
}

static UNWRITABLE_EFFECTS: AtomicU32 = AtomicU32::new(0);

#[step]
async fn effect(x: u32) -> u32 {
    UNWRITABLE_EFFECTS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[step]
async fn refuse(_: u32) -> Result<u32, std::io::Error> {
    Err(std::io::Error::other("not now"))
}

#[tokio::test]
async fn an_unwritable_journal_stops_the_run_before_its_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonCheckpointStore::new(dir.path());
    let f = flow! { #[flow(name = "unwritable")] refuse => effect };
    let first = f.durable(store.clone()).run(1).await;
    assert!(!first.success);
    // Something that cannot be opened for appending where the journal was (permission bits do
    // not stop root, a directory does).
    let journal = store.journal_path(first.run_id);
    std::fs::remove_file(&journal).unwrap();
    std::fs::create_dir(&journal).unwrap();
    let err = f
        .durable(store.clone())
        .resume(first.run_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ResumeError::Store(StoreError::Io { op: "open", location, .. }) if *location == journal.display().to_string()),
        "{err:?}"
    );
    assert_eq!(UNWRITABLE_EFFECTS.load(Ordering::SeqCst), 0, "no step ran");
}

/// The journal and document of the run under test in [`a_full_disk_reports_the_write_that_failed_first`].
static FULL: std::sync::Mutex<Option<(std::path::PathBuf, std::path::PathBuf)>> =
    std::sync::Mutex::new(None);

/// The disk fills while this step runs: the journal's writes fail with ENOSPC (it becomes
/// `/dev/full`), and the document cannot be replaced either (a directory stands in its place).
#[step]
async fn fill_the_disk(x: u32) -> u32 {
    if let Some((journal, document)) = FULL.lock().unwrap().take() {
        std::fs::remove_file(&journal).unwrap();
        std::os::unix::fs::symlink("/dev/full", &journal).unwrap();
        std::fs::remove_file(&document).unwrap();
        std::fs::create_dir_all(document.join("blocker")).unwrap();
    }
    x + 1
}

#[tokio::test]
async fn a_full_disk_reports_the_write_that_failed_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonCheckpointStore::new(dir.path());
    let f = flow! { #[flow(name = "full_disk")] fill_the_disk => fill_the_disk };
    let run_id = RunId::new_v4();
    let journal = store.journal_path(run_id);
    *FULL.lock().unwrap() = Some((journal.clone(), store.document_path(run_id)));
    let r = f.durable(store.clone()).run_as(run_id, 1, ()).await;
    assert!(!r.success);
    // The journal's append failed first; the document's write after it failed too, and is not
    // what is reported.
    match &r.error {
        Some(FlowError::Checkpoint(StoreError::Io {
            op: "write",
            location,
            source,
        })) => {
            assert_eq!(*location, journal.display().to_string());
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {source}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.traces_of("fill_the_disk").count(),
        1,
        "the run stopped at the failed save"
    );
}

#[step(retry = 3, retry_if = |_e: &std::io::Error| -> bool { panic!("retry_if is broken") })]
async fn judged_by_a_broken_predicate(_: u32) -> Result<u32, std::io::Error> {
    Err(std::io::Error::other("failed"))
}

#[tokio::test]
async fn a_panicking_retry_if_fails_the_attempt_without_retrying() {
    let r = flow! { judged_by_a_broken_predicate }.run(1).await;
    assert!(!r.success);
    assert_eq!(r.traces.len(), 1, "not retried");
    assert_eq!(
        r.failed_step.as_deref(),
        Some("judged_by_a_broken_predicate")
    );
    assert!(
        r.error.as_ref().unwrap().to_string().contains("failed"),
        "{:?}",
        r.error
    );
    // With the live event stream too (it asks the predicate for `will_retry`).
    use futures::StreamExt;
    let kinds: Vec<_> = flow! { judged_by_a_broken_predicate }
        .stream(1)
        .map(|e| e.kind())
        .collect()
        .await;
    assert_eq!(kinds.last(), Some(&"flow_failed"), "{kinds:?}");
}
