//! Multi-worker crash test: four worker processes share one store and run 1,000 runs of a
//! mixed flow while the driver SIGKILLs them at random and starts new ones.
//!
//! # How it works
//!
//! The worker process is this test binary itself: [`workers_crash_worker`] is an `#[ignore]`d
//! test that does nothing unless `ORCHFLOW_WORKERS_ROLE=worker` is set. It opens the store named
//! by `ORCHFLOW_WORKERS_STORE` (`sqlite:<file>` or `postgres:<url>#<schema>`) with a lease of
//! two seconds and runs a [`Worker`] (concurrency 8) until it is killed. Every step appends one
//! line `<input> <step> <key>` to the worker's own log (`ORCHFLOW_WORKERS_LOG`, one file per
//! worker process) with a single write, and the worker logs `#<outcome> <run id>` for every
//! run it stops.
//!
//! The flow has a parallel group, an `if`, a loop, a human question and a map:
//!
//! ```text
//! start => [left, right] => join
//!     => if even { loop(max = 3) { tick } until ticked => (ok) => decide }
//!        else { spread => map(fan, limit = 2) => gather }
//!     => finish
//! ```
//!
//! The driver submits the runs, starts four workers, answers every question it finds
//! (`questions()` then `submit_answer`), and SIGKILLs a random worker (one up for at least
//! 300 ms) every 50–400 ms
//! (`ORCHFLOW_WORKERS_KILLS` times, 12 by default; a soak run sets more), starting a new one each
//! time, until every run is completed. Then it checks:
//!
//! * every run completed with the output of an uninterrupted run (computed in this process by
//!   the same flow over a [`MemoryStore`] and the same answers);
//! * every step execution of the uninterrupted runs is in the logs, and nothing else is;
//! * a step execution appears more than once only when every appearance but one is in the log
//!   of a worker that was killed, or that lost the run (its lease lapsed): a checkpointed step
//!   never runs again, only a step in flight at a kill does;
//! * no run completed twice (`#completed` at most once per run);
//! * kills landed mid-run: some run's traces show more than one session.
//!
//! It runs on SQLite (always) and on PostgreSQL (when `ORCHFLOW_POSTGRES_URL` is set; `.ci/run`
//! starts a server and sets it, and with `CI` set a missing URL fails the test).

use orchflow::human::{self, Answer};
use orchflow::store::StoreError;
use orchflow::store::{CheckpointStore, RunQuery, RunQueue, RunStatus};
use orchflow::worker::{Outcome, Worker};
use orchflow::{MemoryStore, ResumeError, RunId, flow, step};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "ORCHFLOW_WORKERS_ROLE";
const STORE_ENV: &str = "ORCHFLOW_WORKERS_STORE";
const LOG_ENV: &str = "ORCHFLOW_WORKERS_LOG";
const RUNS: u64 = 1_000;
const WORKERS: usize = 4;
const LEASE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    /// The run's input: every line a step logs starts with it.
    id: u64,
    n: u32,
    v: u64,
}

/// The side-effect log of this process (unset in the driver's reference runs: they log into
/// `REFERENCE`).
static LOG: OnceLock<PathBuf> = OnceLock::new();
/// The reference runs' executions, in the driver.
static REFERENCE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn log_line(line: String) {
    match LOG.get() {
        Some(path) => {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            file.write_all(format!("{line}\n").as_bytes())
                .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
        }
        None => REFERENCE.lock().unwrap().push(line),
    }
}

/// The side effect of a step: one line.
async fn effect(id: u64, step: &str, key: impl std::fmt::Display) {
    if LOG.get().is_some() {
        // 0–3 ms, so that kills land anywhere in a step.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..4))).await;
    }
    log_line(format!("{id} {step} {key}"));
}

fn mix(v: u64, salt: u64) -> u64 {
    (v ^ salt)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17)
        % 1_000_003
}

#[step]
async fn start(x: u64) -> Tally {
    effect(x, "start", x).await;
    Tally {
        id: x,
        n: 0,
        v: mix(x, 1),
    }
}

#[step]
async fn left(t: &Tally) -> Tally {
    effect(t.id, "left", t.v).await;
    Tally {
        v: mix(t.v, 2),
        ..t.clone()
    }
}

#[step]
async fn right(t: &Tally) -> Tally {
    effect(t.id, "right", t.v).await;
    Tally {
        v: mix(t.v, 3),
        ..t.clone()
    }
}

#[step]
async fn join(parts: (Tally, Tally)) -> Tally {
    effect(parts.0.id, "join", parts.0.v ^ parts.1.v).await;
    Tally {
        v: (parts.0.v + parts.1.v) % 1_000_003,
        ..parts.0
    }
}

fn even(t: &Tally) -> bool {
    t.id.is_multiple_of(2)
}

#[step]
async fn tick(t: Tally) -> Tally {
    effect(t.id, "tick", t.n).await;
    Tally {
        n: t.n + 1,
        v: mix(t.v, 4),
        ..t
    }
}

fn ticked(t: &Tally) -> bool {
    t.n >= 3
}

#[step]
async fn decide(a: Answer<Tally>) -> Tally {
    effect(a.value.id, "decide", &a.text).await;
    let bonus = if a.text == "yes" { 7 } else { 11 };
    Tally {
        v: a.value.v + bonus,
        ..a.value
    }
}

#[step]
async fn spread(t: Tally) -> Vec<Tally> {
    effect(t.id, "spread", t.v).await;
    (0..4)
        .map(|i| Tally {
            n: i,
            v: mix(t.v, 10 + u64::from(i)),
            ..t.clone()
        })
        .collect()
}

#[step]
async fn fan(t: &Tally) -> Tally {
    effect(t.id, "fan", t.n).await;
    Tally {
        v: t.v % 1000,
        ..t.clone()
    }
}

#[step]
async fn gather(parts: Vec<Tally>) -> Tally {
    let id = parts.first().map_or(0, |t| t.id);
    let v = parts.iter().map(|t| t.v).sum();
    effect(id, "gather", v).await;
    Tally { id, n: 9, v }
}

#[step]
async fn finish(t: Tally) -> u64 {
    effect(t.id, "finish", t.v).await;
    t.v
}

macro_rules! mixed_flow {
    () => {{
        let ok = human::ask("ok", |t: &Tally| {
            format!("approve {} of run {}?", t.v, t.id)
        });
        flow! {
            #[flow(name = "mixed")]
            start => [left, right] => join
                => if even { loop(max = 3) { tick } until ticked => (ok) => decide }
                   else { spread => map(fan, limit = 2) => gather }
                => finish
        }
        .with_input(human::Suspend)
    }};
}

/// The answer a person gives to a question, from its prompt: the same in the driver and the
/// reference runs.
fn answer_for(prompt: &str) -> &'static str {
    if prompt.len().is_multiple_of(3) {
        "no"
    } else {
        "yes"
    }
}

// ----- stores -----

/// Opens the store named by `spec` with the test's lease.
async fn open_store(spec: &str) -> Arc<dyn RunQueue> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = orchflow::SqliteStore::options()
            .lease_ttl(LEASE)
            .open(path)
            .unwrap_or_else(|e| panic!("open {spec}: {e}"));
        return Arc::new(store);
    }
    #[cfg(feature = "postgres")]
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest.rsplit_once('#').expect("postgres:<url>#<schema>");
        let options = orchflow::PostgresOptions::new()
            .schema(schema)
            .lease_ttl(LEASE);
        let store = orchflow::PostgresStore::connect_with(url, options)
            .await
            .unwrap_or_else(|e| panic!("connect to postgres: {e}"));
        return Arc::new(store);
    }
    panic!("unknown store spec {spec}");
}

// ----- the worker process -----

#[test]
#[ignore = "helper process of the multi-worker crash tests; idle unless ORCHFLOW_WORKERS_ROLE=worker"]
fn workers_crash_worker() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("worker") {
        return;
    }
    let spec = std::env::var(STORE_ENV).expect(STORE_ENV);
    LOG.set(PathBuf::from(std::env::var(LOG_ENV).expect(LOG_ENV)))
        .expect("the log is set once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let store = open_store(&spec).await;
        let worker = Worker::shared(store)
            .register(mixed_flow!())
            .concurrency(8)
            .poll_interval(Duration::from_millis(20));
        worker
            .run_until(std::future::pending::<()>(), |report| {
                let what = match &report.outcome {
                    Outcome::Completed => "completed",
                    Outcome::Suspended => "suspended",
                    Outcome::Lost(_) => "lost",
                    Outcome::Failed(e) => panic!("run {} failed: {e}", report.run_id),
                    Outcome::Refused(e) => panic!("run {} refused: {e}", report.run_id),
                    Outcome::Cancelled => panic!("run {} cancelled", report.run_id),
                };
                log_line(format!("#{what} {}", report.run_id));
            })
            .await;
    });
}

// ----- the driver -----

/// The uninterrupted runs: each input's output and step executions.
async fn reference() -> (HashMap<u64, u64>, HashSet<String>) {
    let store = MemoryStore::default();
    let f = mixed_flow!();
    let worker = Worker::new(store.clone()).register(f.clone());
    let mut ids = HashMap::new();
    for x in 0..RUNS {
        ids.insert(f.durable(store.clone()).submit(x).await.unwrap(), x);
    }
    loop {
        while worker.run_one().await.unwrap().is_some() {}
        let questions = store.questions(&RunQuery::new()).await.unwrap();
        if questions.is_empty() {
            break;
        }
        for q in questions {
            let text = answer_for(&q.pending.prompt);
            f.durable(store.clone())
                .submit_answer(q.run_id, Some(&q.pending.question), text)
                .await
                .unwrap();
        }
    }
    let mut outputs = HashMap::new();
    for (run_id, x) in ids {
        let saved = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(saved.document.status, RunStatus::Completed);
        outputs.insert(
            x,
            serde_json::from_value(saved.document.output.unwrap()).unwrap(),
        );
    }
    let executions: Vec<String> = std::mem::take(&mut *REFERENCE.lock().unwrap());
    let unique: HashSet<String> = executions.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        executions.len(),
        "the reference runs each execution once"
    );
    (outputs, unique)
}

struct Incarnation {
    child: Child,
    log: PathBuf,
    killed: bool,
    spawned: Instant,
}

/// A failing driver must not leave workers behind: they are killed when dropped.
impl Drop for Incarnation {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn spawn_worker(spec: &str, dir: &Path, n: usize) -> Incarnation {
    let log = dir.join(format!("worker{n}.log"));
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--ignored",
            "--exact",
            "workers_crash_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, "worker")
        .env(STORE_ENV, spec)
        .env(LOG_ENV, &log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a worker");
    Incarnation {
        child,
        log,
        killed: false,
        spawned: Instant::now(),
    }
}

fn kills() -> usize {
    std::env::var("ORCHFLOW_WORKERS_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(12)
}

/// One drive at a time in this process: the reference runs log into one static, and eight
/// workers at once would only load the machine.
static ONE_DRIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn drive(spec: &str, dir: &Path) {
    let _one = ONE_DRIVE.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let (expected, executions) = reference().await;
        let store = open_store(spec).await;
        let f = mixed_flow!();
        let mut ids: BTreeMap<RunId, u64> = BTreeMap::new();
        for x in 0..RUNS {
            ids.insert(f.durable(Arc::clone(&store)).submit(x).await.unwrap(), x);
        }
        let mut workers: Vec<Incarnation> =
            (0..WORKERS).map(|n| spawn_worker(spec, dir, n)).collect();
        let (kills, started) = (kills(), Instant::now());
        let mut killed = 0;
        let mut next_kill = Instant::now() + Duration::from_millis(fastrand::u64(50..400));
        let mut answered = HashSet::new();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "the runs did not complete in 5 minutes: {:?}",
                statuses(&*store).await
            );
            // Answer every question waiting.
            for q in store.questions(&RunQuery::new()).await.unwrap() {
                let key = (q.run_id, q.pending.question.clone());
                if answered.contains(&key) {
                    continue;
                }
                let answer = answer_for(&q.pending.prompt);
                match f
                    .durable(Arc::clone(&store))
                    .submit_answer(q.run_id, Some(&q.pending.question), answer)
                    .await
                {
                    Ok(()) => {
                        answered.insert(key);
                    }
                    // Its worker was killed between suspending and releasing the run (the
                    // lease lapses within two seconds), or this process lost its own claim to
                    // a stall: the next round answers it again, and a journaled answer stands.
                    Err(ResumeError::Store(
                        StoreError::RunBusy { .. } | StoreError::ClaimLost { .. },
                    )) => {}
                    Err(e) => {
                        let c = store.load(q.run_id).await;
                        panic!("answer run {}: {e}\n{c:#?}", q.run_id)
                    }
                }
            }
            // Kill a worker that has had time to start and take runs (killing one still
            // starting tests nothing).
            let ready: Vec<usize> = (0..WORKERS)
                .filter(|i| workers[*i].spawned.elapsed() >= Duration::from_millis(300))
                .collect();
            if killed < kills && Instant::now() >= next_kill && !ready.is_empty() {
                let victim = ready[fastrand::usize(0..ready.len())];
                let w = &mut workers[victim];
                // SIGKILL: the kernel stops it wherever it is.
                w.child.kill().expect("kill a worker");
                w.child.wait().expect("reap a worker");
                w.killed = true;
                killed += 1;
                let n = WORKERS + killed;
                let fresh = spawn_worker(spec, dir, n);
                let old = std::mem::replace(&mut workers[victim], fresh);
                workers.push(old);
                next_kill = Instant::now() + Duration::from_millis(fastrand::u64(50..400));
            }
            let done = store
                .list_runs(
                    &RunQuery::new()
                        .status(RunStatus::Completed)
                        .limit(1_000_000),
                )
                .await
                .unwrap()
                .runs
                .len();
            if done == ids.len() && killed >= kills {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Stop the workers still running (they are not counted as killed).
        for w in workers.iter_mut() {
            if !w.killed {
                w.child.kill().ok();
                w.child.wait().ok();
            }
        }
        check(&*store, &ids, &expected, &executions, &workers).await;
        eprintln!(
            "{spec}: {} runs completed by {} worker processes ({killed} SIGKILLed) in {:.1} s",
            ids.len(),
            workers.len(),
            started.elapsed().as_secs_f64()
        );
    });
}

async fn statuses(store: &dyn RunQueue) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in store.list_runs(&RunQuery::new()).await.unwrap().runs {
        *counts.entry(d.status.to_string()).or_default() += 1;
    }
    counts
}

async fn check(
    store: &dyn RunQueue,
    ids: &BTreeMap<RunId, u64>,
    expected: &HashMap<u64, u64>,
    executions: &HashSet<String>,
    workers: &[Incarnation],
) {
    // Outputs, and kills that landed mid-run.
    let mut resumed = 0;
    for (run_id, x) in ids {
        let saved = store
            .load(*run_id)
            .await
            .unwrap()
            .expect("the run is in the store");
        assert_eq!(saved.document.status, RunStatus::Completed, "run {run_id}");
        let output: u64 = serde_json::from_value(saved.document.output.clone().unwrap()).unwrap();
        assert_eq!(output, expected[x], "run {run_id} (input {x})");
        // A run without a question has a second session only if a worker died in it; a run
        // with one, a third.
        let traces = store.traces(*run_id).await.unwrap().unwrap();
        let sessions = traces.iter().map(|t| t.session).max().unwrap_or(0);
        if sessions > if x.is_multiple_of(2) { 2 } else { 1 } {
            resumed += 1;
        }
    }
    // Executions: who ran what.
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    let mut completed: HashMap<String, usize> = HashMap::new();
    let mut lost: HashSet<(usize, String)> = HashSet::new();
    for (w, inc) in workers.iter().enumerate() {
        let text = fs::read_to_string(&inc.log).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('#') {
                let (what, run) = rest.split_once(' ').expect("#<outcome> <run>");
                match what {
                    "completed" => *completed.entry(run.to_string()).or_default() += 1,
                    "lost" => {
                        lost.insert((w, run.to_string()));
                    }
                    _ => {}
                }
            } else {
                seen.entry(line.to_string()).or_default().push(w);
            }
        }
    }
    for e in executions {
        assert!(seen.contains_key(e), "step execution {e} never ran");
    }
    let by_input: HashMap<u64, RunId> = ids.iter().map(|(r, x)| (*x, *r)).collect();
    let mut repeats = 0;
    for (line, who) in &seen {
        assert!(executions.contains(line), "unknown step execution {line}");
        if who.len() > 1 {
            repeats += who.len() - 1;
            let x: u64 = line.split(' ').next().unwrap().parse().unwrap();
            let run = by_input[&x].to_string();
            let excused = who
                .iter()
                .filter(|w| workers[**w].killed || lost.contains(&(**w, run.clone())))
                .count();
            assert!(
                excused >= who.len() - 1,
                "{line} ran {} times, in workers {who:?}: a step ran again though it was not in \
                 flight at a kill",
                who.len()
            );
        }
    }
    for (run, n) in &completed {
        assert_eq!(*n, 1, "run {run} completed {n} times");
    }
    let killed = workers.iter().filter(|w| w.killed).count();
    if killed > 0 {
        assert!(resumed > 0, "no run was resumed after a kill");
    }
    eprintln!(
        "{resumed} runs resumed in another session; {repeats} step executions in flight at a kill ran again"
    );
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("orchflow-workers-crash-")
        .tempdir()
        .expect("a temporary directory")
}

#[test]
fn four_sqlite_workers_survive_sigkills() {
    let dir = scratch();
    let spec = format!("sqlite:{}", dir.path().join("runs.db").display());
    drive(&spec, dir.path());
}

#[cfg(feature = "postgres")]
#[test]
fn four_postgres_workers_survive_sigkills() {
    let Ok(url) = std::env::var("ORCHFLOW_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "ORCHFLOW_POSTGRES_URL is not set: CI must run the Postgres crash test (.ci/run starts a server)"
        );
        eprintln!("skipped: ORCHFLOW_POSTGRES_URL is not set (see .ci/postgres)");
        return;
    };
    let dir = scratch();
    let schema = format!("crash_{}", RunId::new_v4().simple());
    let spec = format!("postgres:{url}#{schema}");
    drive(&spec, dir.path());
}
