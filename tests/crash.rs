//! Crash test: a checkpointed flow is SIGKILLed at random moments and resumed until it completes.
//!
//! # How it works
//!
//! The helper process is this test binary itself. [`crash_worker`] is an `#[ignore]`d test that
//! does nothing unless `ORCHFLOW_CRASH_WORKER` is set; the driver,
//! [`sigkill_and_resume_until_done`], re-executes `std::env::current_exe()` with
//! `--ignored --exact crash_worker --nocapture --test-threads=1` and these variables:
//!
//! * `ORCHFLOW_CRASH_WORKER=1`: be the worker;
//! * `ORCHFLOW_CRASH_DIR`: the directory of the run's [`JsonCheckpointStore`];
//! * `ORCHFLOW_CRASH_RUN`: the run id;
//! * `ORCHFLOW_CRASH_LOG`: the side-effect log, one line `<step>:<key>` per step execution.
//!
//! The worker resumes the run if the store has a checkpoint for it, starts it otherwise, and on
//! success writes the output as JSON to `<dir>/<run id>.output` and exits 0.
//!
//! The flow has sequential steps, a three-branch parallel group, a loop of five iterations and an
//! `if` whose arm holds a two-branch group (one branch of two steps) and a loop of three
//! iterations with a two-step body (23 step executions; the `else` arm never runs):
//!
//! ```text
//! start => scale => [left, middle, right] => merge => loop(max = 6) { grow } until grown => seal
//!     => if sealed {
//!         [audit, digest => stamp] => combine => loop(max = 4) { tick => tock } until ticked
//!     } else {
//!         skip
//!     }
//!     => finish
//! ```
//!
//! Each step sleeps 0–3 ms, computes a deterministic function of its input, appends its line to
//! the side-effect log with a single write, sleeps 1 ms more one time in four (so that kills also
//! land between a step's line and the save of its output), and returns.
//!
//! For each run the driver spawns the worker, waits a random 1–25 ms and, if the worker is still
//! running, kills it with SIGKILL, again and again until a worker exits by itself. After every
//! session (killed or not) it checks that:
//!
//! * the checkpoint loads (`Ok`, never an error: no checkpoint is ever unreadable), has the status
//!   `running` or `completed`, and never goes backwards;
//! * every step the checkpoint covers has written its line, and no step the checkpoint already
//!   covered when the session started ran again in it (a step runs again only if it was in
//!   flight at a kill: logged, not yet checkpointed);
//! * no step ran twice within one session, every line is a known step execution, and `skip`
//!   never ran.
//!
//! At the end of a run: the output file and the checkpoint's output equal the output of an
//! uninterrupted run, every step execution of the uninterrupted run is in the log, there are at
//! most `kills × 3` duplicate lines (3 = the most steps in flight at once), and one more worker,
//! not killed, returns the completed result within 30 s without running any step.
//!
//! Which steps a checkpoint covers is learnt from an uninterrupted durable run in this process. A
//! checkpoint covers the steps covered by its last top-level point, plus one step execution per
//! record journaled after that point:
//!
//! * a top-level point (`{"AfterScale": …}`, `{"Loop5": {"iteration": 2, …}}`) covers the lines
//!   the log had when the reference run saved it: a store snapshots the log at every such point
//!   (no step is in flight then);
//! * a finished branch of the top-level group (`Branch { index, .. }`) covers that branch's step;
//! * an inner position of the `if` arm (`Inner { name, path, value }`) covers the step whose
//!   output it holds: `Inner{n}After{Step}` at `path` `[k]` is that step at iteration `k` of the
//!   arm's loop (its only execution for an empty path), and an iteration record of the arm's loop
//!   (`Inner5Loop`, `{"iteration": k, …}`) is the body's last step (`tock`) at iteration `k - 1`.
//!   The mapping is learnt from the reference run's journal (the i-th execution of a loop's step
//!   is its iteration i), not from log snapshots: when a branch is saved, the other branch may
//!   have logged its line without being saved yet. A record must also hold the very value the
//!   reference run saved at that position, and no two records may cover the same step.
//!
//! `ORCHFLOW_CRASH_KILLS` sets the number of kills (default 50; thousands for a soak run) and
//! `ORCHFLOW_CRASH_SEED` the seed of the driver's kill delays (printed in the summary). A failing
//! run leaves its directory (named in the panic message) for inspection.

#![cfg(unix)]

// The crash tests' harness, shared with orchflow-agent/tests/agent_crash.rs.
#[path = "support/kill_harness.rs"]
mod kill_harness;
use kill_harness::{
    Ended, Rng, Trial, Worker, kills_and_seed, mix, read_log, scratch_root, shared_random,
};

use orchflow::store::{
    Checkpoint, Claim, JournalEntry, PointRecord, RunDocument, RunStatus, StoreFuture,
};
use orchflow::{CheckpointStore, JsonCheckpointStore, MemoryStore, RunId, flow, step};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const WORKER_ENV: &str = "ORCHFLOW_CRASH_WORKER";
const DIR_ENV: &str = "ORCHFLOW_CRASH_DIR";
const RUN_ENV: &str = "ORCHFLOW_CRASH_RUN";
const LOG_ENV: &str = "ORCHFLOW_CRASH_LOG";
const KILLS_ENV: &str = "ORCHFLOW_CRASH_KILLS";
const SEED_ENV: &str = "ORCHFLOW_CRASH_SEED";

/// How the driver starts a worker: this binary, running only the worker test.
const WORKER: Worker = Worker {
    test: "crash_worker",
    worker_env: WORKER_ENV,
    dir_env: DIR_ENV,
    run_env: RUN_ENV,
    log_env: LOG_ENV,
};

/// The flow's input, the same for every run.
const INPUT: u64 = 7;
/// Iterations of the top-level loop (`grow`).
const ROUNDS: u32 = 5;
/// Iterations of the loop inside the `if` arm (`tick => tock`).
const TICKS: u32 = 3;
/// Step executions of an uninterrupted run: twelve steps that run once, plus the loops' bodies.
const EXECUTIONS: usize = 12 + ROUNDS as usize + 2 * TICKS as usize;
/// The branches of the top-level parallel group, in declaration order (journal branch index →
/// step).
const GROUP: [&str; 3] = ["left", "middle", "right"];
/// The most steps in flight at once: the widest group, the top-level one (the arm's group has
/// two branches).
const WIDTH: usize = GROUP.len();
/// The inner positions an uninterrupted run saves once, in the `if` arm: after `audit`, after
/// `digest` and after `stamp` (the arm's group: every value of a branch of a group that is not
/// at the top level is saved), after `combine`.
const INNER_ONCE: [&str; 4] = [
    "Inner1AfterAudit",
    "Inner2AfterDigest",
    "Inner3AfterStamp",
    "Inner4AfterCombine",
];
/// The arm's loop: its iteration position (one record per iteration), with the last step of its
/// body, whose output an iteration record holds, and the position after the body's other step
/// (path `[iteration]`; `tock`'s value is saved by the iteration record).
const INNER_LOOP: (&str, &str) = ("Inner5Loop", "tock");
const INNER_TICK: &str = "Inner6AfterTick";
/// Kill delays, in milliseconds.
const KILL_DELAY_MS: (u64, u64) = (1, 25);
/// A run that has not completed after this many workers is not making progress.
const MAX_SPAWNS_PER_RUN: usize = 500;
/// How long a worker that is not killed may take.
const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

// ----- the flow -----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    value: u64,
    round: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    value: u64,
    rounds: u32,
    digest: String,
}

/// The side-effect log, set once per process (by the worker from `ORCHFLOW_CRASH_LOG`, by the
/// driver for its reference runs).
static LOG: OnceLock<PathBuf> = OnceLock::new();

/// Sleeps 0–3 ms, so that kills land anywhere in a step.
async fn jitter() {
    tokio::time::sleep(Duration::from_millis(shared_random() % 4)).await;
}

/// Sleeps 1 ms after one side effect in four, so that kills also land between a step's line and
/// the save of its output (a step in flight, which runs again on resume).
async fn settle() {
    if shared_random().is_multiple_of(4) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The side effect: one line, appended with a single write.
fn effect(step: &str, key: impl Display) {
    let path = LOG.get().expect("the side-effect log is set");
    let line = format!("{step}:{key}\n");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.write_all(line.as_bytes())
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

#[step]
async fn start(x: u64) -> u64 {
    jitter().await;
    let out = mix(x, 1);
    effect("start", x);
    settle().await;
    out
}

#[step]
async fn scale(x: u64) -> u64 {
    jitter().await;
    let out = mix(x, 2) >> 8;
    effect("scale", x);
    settle().await;
    out
}

#[step]
async fn left(x: &u64) -> u64 {
    jitter().await;
    let out = mix(*x, 3);
    effect("left", x);
    settle().await;
    out
}

#[step]
async fn middle(x: &u64) -> u64 {
    jitter().await;
    let out = mix(*x, 4);
    effect("middle", x);
    settle().await;
    out
}

#[step]
async fn right(x: &u64) -> u64 {
    jitter().await;
    let out = mix(*x, 5);
    effect("right", x);
    settle().await;
    out
}

#[step]
async fn merge(parts: (u64, u64, u64)) -> Tally {
    jitter().await;
    let value = mix(
        parts.0 ^ parts.1.rotate_left(21) ^ parts.2.rotate_left(42),
        6,
    );
    effect("merge", format_args!("{}/{}/{}", parts.0, parts.1, parts.2));
    settle().await;
    Tally { value, round: 0 }
}

#[step]
async fn grow(t: Tally) -> Tally {
    jitter().await;
    let next = Tally {
        value: mix(t.value, 7 + u64::from(t.round)),
        round: t.round + 1,
    };
    effect("grow", format_args!("{}/{}", t.round, t.value));
    settle().await;
    next
}

fn grown(t: &Tally) -> bool {
    t.round >= ROUNDS
}

#[step]
async fn seal(t: Tally) -> Report {
    jitter().await;
    let report = Report {
        value: t.value,
        rounds: t.round,
        digest: format!("{:016x}", mix(t.value, 99)),
    };
    effect("seal", format_args!("{}/{}", t.round, t.value));
    settle().await;
    report
}

/// Always true for the flow's input: the `else` arm (`skip`) never runs.
fn sealed(r: &Report) -> bool {
    r.rounds == ROUNDS
}

#[step]
async fn audit(r: &Report) -> u64 {
    jitter().await;
    let out = mix(r.value, 11);
    effect("audit", &r.digest);
    settle().await;
    out
}

#[step]
async fn digest(r: &Report) -> u64 {
    jitter().await;
    let out = mix(r.value ^ u64::from(r.rounds), 12);
    effect("digest", &r.digest);
    settle().await;
    out
}

#[step]
async fn stamp(x: u64) -> u64 {
    jitter().await;
    let out = mix(x, 13);
    effect("stamp", x);
    settle().await;
    out
}

#[step]
async fn combine(parts: (u64, u64)) -> Tally {
    jitter().await;
    let value = mix(parts.0 ^ parts.1.rotate_left(32), 14);
    effect("combine", format_args!("{}/{}", parts.0, parts.1));
    settle().await;
    Tally { value, round: 0 }
}

#[step]
async fn tick(t: Tally) -> Tally {
    jitter().await;
    let next = Tally {
        value: mix(t.value, 20 + u64::from(t.round)),
        round: t.round,
    };
    effect("tick", format_args!("{}/{}", t.round, t.value));
    settle().await;
    next
}

#[step]
async fn tock(t: Tally) -> Tally {
    jitter().await;
    let next = Tally {
        value: mix(t.value, 30 + u64::from(t.round)),
        round: t.round + 1,
    };
    effect("tock", format_args!("{}/{}", t.round, t.value));
    settle().await;
    next
}

fn ticked(t: &Tally) -> bool {
    t.round >= TICKS
}

/// The `else` arm: never runs (see [`sealed`]).
#[step]
async fn skip(r: Report) -> Tally {
    jitter().await;
    effect("skip", &r.digest);
    settle().await;
    Tally {
        value: r.value,
        round: 0,
    }
}

#[step]
async fn finish(t: Tally) -> Report {
    jitter().await;
    let out = Report {
        value: mix(t.value, 100),
        rounds: t.round,
        digest: format!("{:016x}", mix(t.value, 101)),
    };
    effect("finish", format_args!("{}/{}", t.round, t.value));
    settle().await;
    out
}

/// The flow under test. A macro, as the flow's type is spelled by `flow!`.
macro_rules! crash_flow {
    () => {
        flow! {
            #[flow(name = "crash")]
            start => scale => [left, middle, right] => merge
                => loop(max = 6) { grow } until grown => seal
                => if sealed {
                    [audit, digest => stamp] => combine
                        => loop(max = 4) { tick => tock } until ticked
                } else {
                    skip
                }
                => finish
        }
    };
}

// ----- randomness -----

// ----- the worker -----

/// The helper process: does nothing unless `ORCHFLOW_CRASH_WORKER` is set (see the header).
#[test]
#[ignore = "helper process of sigkill_and_resume_until_done; idle unless ORCHFLOW_CRASH_WORKER is set"]
fn crash_worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = PathBuf::from(var(DIR_ENV));
    let run_id: RunId = var(RUN_ENV).parse().expect("a run id");
    LOG.set(PathBuf::from(var(LOG_ENV)))
        .expect("the log is set once");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let store = JsonCheckpointStore::new(&dir);
        let f = crash_flow!();
        let durable = f.durable(store.clone());
        let result = match store.load(run_id).await {
            Ok(Some(_)) => durable
                .resume(run_id)
                .await
                .unwrap_or_else(|e| panic!("resume run {run_id}: {e}")),
            Ok(None) => durable.run_as(run_id, INPUT, ()).await,
            Err(e) => panic!("unreadable checkpoint of run {run_id}: {e}"),
        };
        assert!(
            result.success,
            "run {run_id} failed at {:?}: {:?}",
            result.failed_step, result.error
        );
        let output = result.output.expect("a successful run has an output");
        let json = serde_json::to_vec(&output).expect("the output is JSON");
        fs::write(output_path(&dir, run_id), json).expect("write the output");
    });
}

fn output_path(dir: &Path, run_id: RunId) -> PathBuf {
    dir.join(format!("{run_id}.output"))
}

// ----- the reference: an uninterrupted run -----

/// What an uninterrupted run does.
struct Reference {
    /// Its output, as JSON.
    output: serde_json::Value,
    /// Its step executions (log lines), all distinct.
    keys: BTreeSet<String>,
    /// For every resumable point it saved (as JSON text), the step executions done at that point.
    points: HashMap<String, BTreeSet<String>>,
    /// The step execution of each branch of the top-level group.
    branches: [String; WIDTH],
    /// For every inner position it saved (as [`inner_text`]), the step execution whose output
    /// the record holds.
    inner: HashMap<String, String>,
}

/// A store that remembers, for every top-level resumable point saved, which lines the log had
/// then. When such a point is saved no step is in flight, so these are exactly the steps the
/// point covers. (Not so for branches and inner positions: a concurrent branch may have logged
/// its line and not be saved yet. Those are mapped to step executions by [`Reference::inner`].)
struct Recorder {
    inner: MemoryStore,
    points: Mutex<Vec<(String, BTreeSet<String>)>>,
}

impl CheckpointStore for Recorder {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        self.inner.create(document)
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        self.inner.claim(run_id)
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        self.inner.put_document(claim, document)
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        if let PointRecord::Point(json) = &entry.record {
            let lines = read_log(LOG.get().expect("the log is set"));
            let keys = lines.iter().cloned().collect();
            self.points.lock().unwrap().push((json.to_string(), keys));
        }
        self.inner.append(claim, entry)
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        self.inner.load(run_id)
    }
}

/// An inner record as one string, to look it up in [`Reference::inner`].
fn inner_text(name: &str, path: &[u32], value: &serde_json::Value) -> String {
    serde_json::json!([name, path, value]).to_string()
}

/// `audit` → `Audit`, `grow_more` → `GrowMore`: a step's name in its inner positions' names.
fn camel(step: &str) -> String {
    step.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The step execution an inner record of the reference run holds the output of: `Inner{n}After{X}`
/// at path `p` is step `x` at iteration `p` of the arm's loop (its only run if `p` is empty);
/// an iteration record `{"iteration": k, …}` of the arm's loop is the body's last step at
/// iteration `k - 1`. `executions` holds each step's executions in the order they ran (so the
/// i-th execution of a loop's step is its iteration i).
fn inner_execution(
    executions: &BTreeMap<&str, Vec<&String>>,
    name: &str,
    path: &[u32],
    value: &serde_json::Value,
) -> String {
    let what = || inner_text(name, path, value);
    let position = name
        .strip_prefix("Inner")
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("{}: not an inner position's name", what()));
    let (step, index) = if name == INNER_LOOP.0 {
        assert!(path.is_empty(), "{}: the arm's loop is in no loop", what());
        let iteration = value["iteration"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: an iteration record without `iteration`", what()));
        assert!(
            iteration >= 1,
            "{}: an iteration record before any iteration",
            what()
        );
        (INNER_LOOP.1, iteration as usize - 1)
    } else if let Some(after) = position.strip_prefix("After") {
        assert!(
            path.len() <= 1,
            "{}: the flow nests one loop at most",
            what()
        );
        let step = executions
            .keys()
            .find(|step| camel(step) == after)
            .unwrap_or_else(|| panic!("{}: after no step of the flow", what()));
        (*step, path.first().map_or(0, |&i| i as usize))
    } else {
        panic!("{}: an unexpected inner position", what())
    };
    executions[step]
        .get(index)
        .unwrap_or_else(|| panic!("{}: {step} ran fewer than {} times", what(), index + 1))
        .to_string()
}

async fn reference(scratch: &Path) -> Reference {
    let log = scratch.join("reference.log");
    LOG.set(log.clone()).expect("the log is set once");
    let f = crash_flow!();

    let plain = f.run(INPUT).await;
    assert!(plain.success, "uninterrupted run: {:?}", plain.error);
    let output = serde_json::to_value(plain.output.expect("an output")).unwrap();
    let lines = read_log(&log);
    let keys: BTreeSet<String> = lines.iter().cloned().collect();
    assert_eq!(lines.len(), EXECUTIONS, "{lines:#?}");
    assert_eq!(
        keys.len(),
        EXECUTIONS,
        "every execution has its own key: {lines:#?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("skip:")),
        "the else arm ran: {lines:#?}"
    );

    fs::remove_file(&log).unwrap();
    let recorder = Arc::new(Recorder {
        inner: MemoryStore::default(),
        points: Mutex::new(Vec::new()),
    });
    let durable = f.durable(recorder.clone()).run(INPUT).await;
    assert!(
        durable.success,
        "uninterrupted durable run: {:?}",
        durable.error
    );
    assert_eq!(
        serde_json::to_value(durable.output.unwrap()).unwrap(),
        output,
        "a durable run computes what a plain run does"
    );
    let lines = read_log(&log);
    assert_eq!(lines.iter().cloned().collect::<BTreeSet<_>>(), keys);
    assert_eq!(lines.len(), EXECUTIONS);

    let recorded = std::mem::take(&mut *recorder.points.lock().unwrap());
    let last = recorded.last().expect("points were saved");
    assert_eq!(last.1, keys, "the last point covers every step");
    let points: HashMap<_, _> = recorded.into_iter().collect();
    let branches = GROUP.map(|step| {
        let mut of_step = keys.iter().filter(|k| k.split(':').next() == Some(step));
        let key = of_step.next().expect("every branch ran").clone();
        assert!(of_step.next().is_none(), "{step} runs once");
        key
    });

    // The inner positions: those of the `if` arm, between the points before and after it.
    let journal = recorder
        .load(durable.run_id)
        .await
        .unwrap()
        .expect("the durable run's checkpoint")
        .journal;
    let mut executions: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for line in &lines {
        let step = line.split(':').next().expect("a step name");
        executions.entry(step).or_default().push(line);
    }
    let is_inner = |e: &JournalEntry| matches!(e.record, PointRecord::Inner { .. });
    let first = journal.iter().position(is_inner).expect("inner positions");
    let end = journal.iter().rposition(is_inner).unwrap() + 1;
    let mut inner = HashMap::new();
    let mut positions = Vec::new();
    for entry in &journal[first..end] {
        let PointRecord::Inner { name, path, value } = &entry.record else {
            panic!("{:?} among the arm's inner positions", entry.record);
        };
        let key = inner_execution(&executions, name, path, value);
        assert!(
            !inner.values().any(|k| *k == key),
            "two inner positions hold `{key}`"
        );
        assert!(
            inner.insert(inner_text(name, path, value), key).is_none(),
            "{} saved twice",
            inner_text(name, path, value)
        );
        positions.push((name.clone(), path.clone()));
    }
    let mut expected: Vec<(String, Vec<u32>)> = INNER_ONCE
        .iter()
        .map(|n| (n.to_string(), Vec::new()))
        .collect();
    for k in 0..TICKS {
        expected.push((INNER_TICK.to_owned(), vec![k]));
        expected.push((INNER_LOOP.0.to_owned(), Vec::new()));
    }
    expected.sort();
    positions.sort();
    assert_eq!(positions, expected, "the inner positions the arm saves");
    let point_text = |i: usize| match &journal[i].record {
        PointRecord::Point(json) => json.to_string(),
        other => panic!("{other:?} next to the arm's inner positions"),
    };
    let (before, after) = (&points[&point_text(first - 1)], &points[&point_text(end)]);
    let arm: BTreeSet<String> = inner.values().cloned().collect();
    assert!(
        before.is_disjoint(&arm),
        "the inner positions hold steps that ran before the arm"
    );
    assert_eq!(
        before.union(&arm).cloned().collect::<BTreeSet<_>>(),
        *after,
        "the inner positions hold every step execution of the arm, and only those"
    );
    Reference {
        output,
        keys,
        points,
        branches,
        inner,
    }
}

impl Reference {
    /// The step executions a checkpoint covers: those before its last resumable point, plus the
    /// branches and the inner positions journaled after it (one step execution each).
    fn covered(&self, checkpoint: &Checkpoint, what: &dyn Fn() -> String) -> BTreeSet<String> {
        let journal = &checkpoint.journal;
        let last = journal
            .iter()
            .rposition(|e| matches!(e.record, PointRecord::Point(_)));
        let Some(last) = last else {
            assert!(journal.is_empty(), "{}: records before any point", what());
            return BTreeSet::new();
        };
        let PointRecord::Point(json) = &journal[last].record else {
            unreachable!()
        };
        let mut covered = self
            .points
            .get(&json.to_string())
            .unwrap_or_else(|| {
                panic!(
                    "{}: the checkpoint is at {json}, which the uninterrupted run never saved",
                    what()
                )
            })
            .clone();
        for entry in &journal[last + 1..] {
            match &entry.record {
                PointRecord::Branch { index, .. } => {
                    let key = self.branches.get(*index).unwrap_or_else(|| {
                        panic!("{}: branch {index} of a {WIDTH}-branch group", what())
                    });
                    assert!(
                        covered.insert(key.clone()),
                        "{}: branch {index} journaled twice",
                        what()
                    );
                }
                PointRecord::Inner { name, path, value } => {
                    let text = inner_text(name, path, value);
                    let key = self.inner.get(&text).unwrap_or_else(|| {
                        panic!(
                            "{}: the checkpoint has the inner position {text}, which the \
                             uninterrupted run never saved",
                            what()
                        )
                    });
                    assert!(
                        covered.insert(key.clone()),
                        "{}: the inner position {text} holds `{key}`, which the checkpoint \
                         already covered",
                        what()
                    );
                }
                other => panic!("{}: unexpected journal record {other:?}", what()),
            }
        }
        covered
    }
}

// ----- the driver -----

#[derive(Default)]
struct Totals {
    runs: usize,
    spawns: usize,
    kills: usize,
    duplicates: usize,
    /// Kills by how many step executions the checkpoint covered after them.
    kills_at: BTreeMap<usize, usize>,
    /// Kills that left a step logged but not checkpointed.
    kills_in_flight: usize,
    /// Kills before the run had a checkpoint.
    kills_before_checkpoint: usize,
    /// Kills that left inner positions after the last point (the resume replays the `if` arm).
    kills_inside_arm: usize,
}

struct Run<'a> {
    reference: &'a Reference,
    rt: &'a tokio::runtime::Runtime,
    trial: Trial<RunId>,
    store: JsonCheckpointStore,
    /// Log lines so far.
    lines: Vec<String>,
    /// What the checkpoint covered after the last session.
    covered: BTreeSet<String>,
}

impl Run<'_> {
    fn what(&self) -> String {
        self.trial.what()
    }

    /// One worker: killed after `delay` if still running.
    fn session(&mut self, delay: Duration, totals: &mut Totals) -> Ended {
        totals.spawns += 1;
        let ended = self.trial.session(&WORKER, delay, MAX_SPAWNS_PER_RUN);
        self.check_session(&ended, totals);
        ended
    }

    /// The checks after every session: see the header.
    fn check_session(&mut self, ended: &Ended, totals: &mut Totals) {
        let what = || self.what();
        let lines = read_log(&self.trial.log);
        assert!(
            lines.starts_with(&self.lines),
            "{}: the log was rewritten",
            what()
        );
        let new = &lines[self.lines.len()..];
        let mut seen = BTreeSet::new();
        let mut duplicates = 0;
        for key in new {
            assert!(
                !key.starts_with("skip:"),
                "{}: the else arm ran: `{key}`",
                what()
            );
            assert!(
                self.reference.keys.contains(key),
                "{}: `{key}` is not a step execution of the flow",
                what()
            );
            assert!(
                seen.insert(key),
                "{}: `{key}` ran twice in one session",
                what()
            );
            assert!(
                !self.covered.contains(key),
                "{}: `{key}` ran again although the checkpoint covered it when the worker started",
                what()
            );
            if self.lines.contains(key) {
                duplicates += 1;
            }
        }
        assert!(
            duplicates <= WIDTH,
            "{}: {duplicates} steps ran again after one kill, at most {WIDTH} can be in flight",
            what()
        );
        totals.duplicates += duplicates;

        let loaded = self
            .rt
            .block_on(self.store.load(self.trial.run_id))
            .unwrap_or_else(|e| panic!("{}: unreadable checkpoint: {e}", what()));
        let covered = match &loaded {
            None => {
                assert!(
                    lines.is_empty(),
                    "{}: steps ran before the run had a checkpoint",
                    what()
                );
                BTreeSet::new()
            }
            Some(checkpoint) => {
                let status = &checkpoint.document.status;
                assert!(
                    matches!(status, RunStatus::Running | RunStatus::Completed),
                    "{}: status {status:?}",
                    what()
                );
                self.reference.covered(checkpoint, &what)
            }
        };
        assert!(
            self.covered.is_subset(&covered),
            "{}: the checkpoint went backwards: it lost {:?}",
            what(),
            self.covered.difference(&covered).collect::<Vec<_>>()
        );
        let logged: BTreeSet<&String> = lines.iter().collect();
        let unlogged: Vec<_> = covered.iter().filter(|k| !logged.contains(k)).collect();
        assert!(
            unlogged.is_empty(),
            "{}: checkpointed steps that never ran: {unlogged:?}",
            what()
        );

        match ended {
            Ended::Killed => {
                self.trial.kills += 1;
                totals.kills += 1;
                *totals.kills_at.entry(covered.len()).or_default() += 1;
                if loaded.is_none() {
                    totals.kills_before_checkpoint += 1;
                }
                if logged.len() > covered.len() {
                    totals.kills_in_flight += 1;
                }
                let journal = loaded.as_ref().map(|c| c.journal.as_slice());
                if let Some([.., last]) = journal
                    && matches!(last.record, PointRecord::Inner { .. })
                {
                    totals.kills_inside_arm += 1;
                }
            }
            Ended::Completed => {
                let checkpoint = loaded
                    .as_ref()
                    .unwrap_or_else(|| panic!("{}: completed without a checkpoint", what()));
                assert_eq!(
                    checkpoint.document.status,
                    RunStatus::Completed,
                    "{}",
                    what()
                );
                assert_eq!(
                    checkpoint.document.output.as_ref(),
                    Some(&self.reference.output),
                    "{}: the checkpoint's output",
                    what()
                );
                assert_eq!(covered, self.reference.keys, "{}", what());
            }
        }
        self.lines = lines;
        self.covered = covered;
    }

    /// The checks once a worker has completed the run.
    fn check_completed(&mut self) {
        let what = || self.what();
        let output = fs::read(output_path(&self.trial.dir, self.trial.run_id))
            .unwrap_or_else(|e| panic!("{}: read the output: {e}", what()));
        let output: serde_json::Value = serde_json::from_slice(&output)
            .unwrap_or_else(|e| panic!("{}: the output is not JSON: {e}", what()));
        assert_eq!(
            output,
            self.reference.output,
            "{}: not the output of an uninterrupted run",
            what()
        );

        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for key in &self.lines {
            *counts.entry(key).or_default() += 1;
        }
        let missing: Vec<_> = self
            .reference
            .keys
            .iter()
            .filter(|k| !counts.contains_key(k))
            .collect();
        assert!(missing.is_empty(), "{}: never ran: {missing:?}", what());
        let duplicates = self.lines.len() - counts.len();
        assert!(
            duplicates <= self.trial.kills * WIDTH,
            "{}: {duplicates} duplicate lines after {} kills: {:?}",
            what(),
            self.trial.kills,
            counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
        );

        // A worker for a completed run returns its result and runs nothing.
        fs::remove_file(output_path(&self.trial.dir, self.trial.run_id)).unwrap();
        self.trial.rerun(&WORKER, WORKER_TIMEOUT, &what);
        assert_eq!(
            read_log(&self.trial.log),
            self.lines,
            "{}: resuming a completed run ran steps",
            what()
        );
        let again: serde_json::Value = serde_json::from_slice(
            &fs::read(output_path(&self.trial.dir, self.trial.run_id)).unwrap(),
        )
        .unwrap();
        assert_eq!(again, self.reference.output, "{}", what());
    }
}

#[test]
fn sigkill_and_resume_until_done() {
    let started = Instant::now();
    let (target, seed) = kills_and_seed(KILLS_ENV, SEED_ENV, 50);
    let mut rng = Rng::new(seed);
    let root = scratch_root("orchflow-crash");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = rt.block_on(reference(&root));

    let mut totals = Totals::default();
    while totals.kills < target {
        totals.runs += 1;
        let dir = root.join(format!("run-{}", totals.runs));
        let mut run = Run {
            reference: &reference,
            rt: &rt,
            store: JsonCheckpointStore::new(&dir),
            trial: Trial::new(dir, RunId::new_v4()),
            lines: Vec::new(),
            covered: BTreeSet::new(),
        };
        loop {
            let delay = rng.range(KILL_DELAY_MS.0, KILL_DELAY_MS.1);
            match run.session(Duration::from_millis(delay), &mut totals) {
                Ended::Killed => {}
                Ended::Completed => break,
            }
        }
        run.check_completed();
        fs::remove_dir_all(&run.trial.dir).unwrap();
    }
    fs::remove_dir_all(&root).unwrap();

    eprintln!(
        "crash test: {} runs, {} workers, {} kills ({} before a checkpoint, {} with a step in \
         flight, {} inside the if arm), {} duplicate lines, kills by checkpointed steps {:?}, \
         seed {seed}, {:.1?}",
        totals.runs,
        totals.spawns,
        totals.kills,
        totals.kills_before_checkpoint,
        totals.kills_in_flight,
        totals.kills_inside_arm,
        totals.duplicates,
        totals.kills_at,
        started.elapsed()
    );
}
