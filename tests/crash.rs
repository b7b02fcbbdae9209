//! Crash test: a checkpointed flow is SIGKILLed at random moments and resumed until it completes.
//!
//! # How it works
//!
//! The helper process is this test binary itself. [`crash_worker`] is an `#[ignore]`d test that
//! does nothing unless `ORCHFLOW_CRASH_WORKER` is set; the driver,
//! [`sigkill_and_resume_until_done`] (and [`two_workers_race_until_done`], see *Two workers
//! racing*), re-executes `std::env::current_exe()` with
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
//! `if` whose arm holds a two-branch group (one branch of two steps), a `map` over five items
//! three at a time, and a loop of three iterations with a two-step body (30 step executions;
//! the `else` arm never runs):
//!
//! ```text
//! start => scale => [left, middle, right] => merge => loop(max = 6) { grow } until grown => seal
//!     => if sealed {
//!         [audit, digest => stamp] => combine => spread => map(fan, limit = 3) => gather
//!             => loop(max = 4) { tick => tock } until ticked
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
//!   (`Inner8Loop`, `{"iteration": k, …}`) is the body's last step (`tock`) at iteration `k - 1`,
//!   and a finished item of the map (`Inner6MapFan` at path `[k]`) is `fan`'s execution on item
//!   `k` (its line starts `fan:k/`).
//!   The mapping is learnt from the reference run's journal (the i-th execution of a loop's step
//!   is its iteration i), not from log snapshots: when a branch is saved, the other branch may
//!   have logged its line without being saved yet. A record must also hold the very value the
//!   reference run saved at that position, and no two records may cover the same step.
//!
//! `ORCHFLOW_CRASH_KILLS` sets the number of kills (default 50; thousands for a soak run) and
//! `ORCHFLOW_CRASH_SEED` the seed of the driver's kill delays (printed in the summary). A failing
//! run leaves its directory (named in the panic message) for inspection.
//!
//! # Two workers racing
//!
//! [`two_workers_race_until_done`] checks one writer per run (the claims of
//! [`CheckpointStore`]): two workers race for each run, on the same directory and run id. Each
//! round the driver starts two workers at once, each to be SIGKILLed after its own random
//! 1–25 ms, so that a round kills one, both or none of them; while one still runs, a worker that
//! ended (killed, or busy) is replaced by a new one, at most twice a round, so that a worker also
//! arrives while the holder dies and takes the run over. Rounds follow each other until a worker
//! completes the run. After 3 rounds in a row in which the checkpoint did not grow, the kill
//! delays double every round (up to 128 times), so that the run progresses on a machine loaded
//! enough that workers take longer than 25 ms to start; a run whose checkpoint does not grow in
//! 40 rounds in a row fails (a claim that is never released, say).
//!
//! A racing worker has `ORCHFLOW_CRASH_TAG` set to its number in the run (its tag). It resumes
//! the run and, when the store has none, starts it with `run_as`; if the other worker holds the
//! run (`ResumeError::Store(RunBusy)`, or `FlowError::Checkpoint(RunBusy | RunExists)` in the
//! result of `run_as`) it exits with status 3 ("busy", a normal end) without running anything.
//! Its lines end with `@<tag>`, and its store (a [`Tattler`] around the JSON store) also logs
//! `#claim:<seq>:<status>` once it holds the run's claim (the journal's last `seq` and the
//! run's status then; 0 for a run it creates) and `#completed` once it has written the completed
//! document. A worker that exits 0 writes the output to `<run id>.<tag>.output`.
//!
//! After each kill while another worker still runs, the checkpoint is loaded: it must load and
//! never go backwards. At the end of each round (no worker running) the checks are:
//!
//! * the checkpoint loads, has the status `running` or `completed`, never goes backwards, and
//!   every step it covers has run;
//! * **one writer at a time**: each worker's lines are contiguous (no worker logs after another
//!   has started logging), a worker runs steps only after its claim line, and a busy worker
//!   logs nothing;
//! * **no checkpointed step runs again**: no worker runs a step that the checkpoint covered when
//!   it claimed the run (the current journal up to the claimed `seq`: a journal only grows), and
//!   that checkpoint only covers steps that had run;
//! * a step runs twice only if all its runs but the last were in workers that were killed (it
//!   was in flight), at most 3 per killed worker, never twice in one worker; every line is a
//!   known step execution, and `skip` never runs;
//! * at most one worker writes the completed document, and a worker that exits 0 either did or
//!   found the run completed when it claimed it.
//!
//! At the end of a run: the checkpoint's output and every output file equal the uninterrupted
//! run's, every step ran; then two workers started at once on the completed run both end (0,
//! or busy for one of them) without running anything, and one more, alone, must return the
//! result (every claim was released).
//!
//! `ORCHFLOW_CRASH_RACE_KILLS` sets the number of kills of this mode (default 400; thousands for
//! a soak run) and `ORCHFLOW_CRASH_RACE_SEED` the seed of its kill delays. The reference run is
//! made once per process, for both modes.

#![cfg(unix)]

// The crash tests' harness, shared with orchflow-agent/tests/agent_crash.rs.
#[path = "support/kill_harness.rs"]
mod kill_harness;
use kill_harness::{
    Ended, Rng, Trial, Worker, kills_and_seed, mix, read_log, scratch_root, shared_random,
    wait_uninterrupted, was_killed,
};

use orchflow::graph::FlowGraph;
use orchflow::store::{
    Checkpoint, Claim, JournalEntry, PointRecord, RunDocument, RunStatus, StoreError, StoreFuture,
};
use orchflow::{
    CheckpointStore, FlowError, JsonCheckpointStore, MemoryStore, ResumeError, RunId, flow, step,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const WORKER_ENV: &str = "ORCHFLOW_CRASH_WORKER";
const DIR_ENV: &str = "ORCHFLOW_CRASH_DIR";
const RUN_ENV: &str = "ORCHFLOW_CRASH_RUN";
const LOG_ENV: &str = "ORCHFLOW_CRASH_LOG";
const KILLS_ENV: &str = "ORCHFLOW_CRASH_KILLS";
const SEED_ENV: &str = "ORCHFLOW_CRASH_SEED";
/// Set for a racing worker (see *Two workers racing*): its tag, which ends each of its lines.
const TAG_ENV: &str = "ORCHFLOW_CRASH_TAG";
const RACE_KILLS_ENV: &str = "ORCHFLOW_CRASH_RACE_KILLS";
const RACE_SEED_ENV: &str = "ORCHFLOW_CRASH_RACE_SEED";

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
/// Items of the map inside the `if` arm (`fan`).
const FANS: u32 = 5;
/// Step executions of an uninterrupted run: fourteen steps that run once, plus the map's items
/// and the loops' bodies.
const EXECUTIONS: usize = 14 + FANS as usize + ROUNDS as usize + 2 * TICKS as usize;
/// The branches of the top-level parallel group, in declaration order (journal branch index →
/// step).
const GROUP: [&str; 3] = ["left", "middle", "right"];
/// The most steps in flight at once: the widest group, the top-level one (the arm's group has
/// two branches, its map runs three items at a time).
const WIDTH: usize = GROUP.len();
/// The inner positions an uninterrupted run saves once, in the `if` arm: after `audit`, after
/// `digest` and after `stamp` (the arm's group: every value of a branch of a group that is not
/// at the top level is saved), after `combine`, `spread` and `gather`.
const INNER_ONCE: [&str; 6] = [
    "Inner1AfterAudit",
    "Inner2AfterDigest",
    "Inner3AfterStamp",
    "Inner4AfterCombine",
    "Inner5AfterSpread",
    "Inner7AfterGather",
];
/// The arm's map: each finished item (path `[item]`), and its step.
const INNER_MAP: (&str, &str) = ("Inner6MapFan", "fan");
/// The arm's loop: its iteration position (one record per iteration), with the last step of its
/// body, whose output an iteration record holds, and the position after the body's other step
/// (path `[iteration]`; `tock`'s value is saved by the iteration record).
const INNER_LOOP: (&str, &str) = ("Inner8Loop", "tock");
const INNER_TICK: &str = "Inner9AfterTick";
/// Kill delays, in milliseconds.
const KILL_DELAY_MS: (u64, u64) = (1, 25);
/// A run that has not completed after this many workers is not making progress.
const MAX_SPAWNS_PER_RUN: usize = 500;
/// How long a worker that is not killed may take.
const WORKER_TIMEOUT: Duration = Duration::from_secs(30);
/// The exit status of a racing worker that found the run held by the other one (`RunBusy`, or
/// `RunExists` when it tried to start the run): it ran nothing.
const BUSY: i32 = 3;
/// Default kills of the racing mode.
const RACE_KILLS: usize = 400;
/// How many times, in one round of the racing mode, a worker that ended is replaced while the
/// other one still runs.
const RACE_RESPAWNS: usize = 2;
/// A racing run that has not completed after this many workers is not making progress.
const MAX_SPAWNS_PER_RACE: usize = 2000;
/// After this many rounds in a row in which the checkpoint did not grow, a racing run's kill
/// delays double every round (at most [`MAX_STALL_DOUBLINGS`] times): on a loaded machine a
/// worker may need more than 25 ms to start.
const STALLS_BEFORE_SLOWER: u32 = 3;
const MAX_STALL_DOUBLINGS: u32 = 7;
/// A racing run whose checkpoint has not grown in this many rounds in a row is stuck.
const MAX_STALLED_ROUNDS: u32 = 40;
/// The start of a racing worker's line for a claim it took: `#claim:<seq>:<status>`, the
/// journal's last `seq` and the run's status when it took it.
const CLAIM_LINE: &str = "#claim:";
/// A racing worker's line once it has written the completed document.
const COMPLETED_LINE: &str = "#completed";

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

/// A racing worker's tag (from `ORCHFLOW_CRASH_TAG`): `@<tag>` ends each of its lines.
static TAG: OnceLock<String> = OnceLock::new();

/// The side effect: one line, appended with a single write.
fn effect(step: &str, key: impl Display) {
    log_line(format_args!("{step}:{key}"));
}

/// Appends `text` (and the worker's tag, if it has one) to the log with a single write.
fn log_line(text: impl Display) {
    let path = LOG.get().expect("the side-effect log is set");
    let line = match TAG.get() {
        Some(tag) => format!("{text}@{tag}\n"),
        None => format!("{text}\n"),
    };
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

/// The items of the arm's map: `(index, value)`, so that each item's line names its index.
#[step]
async fn spread(t: Tally) -> Vec<(u32, u64)> {
    jitter().await;
    let out = (0..FANS)
        .map(|i| (i, mix(t.value, 40 + u64::from(i))))
        .collect();
    effect("spread", t.value);
    settle().await;
    out
}

#[step]
async fn fan(item: &(u32, u64)) -> u64 {
    jitter().await;
    let out = mix(item.1, 50);
    effect("fan", format_args!("{}/{}", item.0, item.1));
    settle().await;
    out
}

#[step]
async fn gather(parts: Vec<u64>) -> Tally {
    jitter().await;
    let value = parts.iter().fold(0, |acc, p| mix(acc ^ p, 60));
    effect("gather", value);
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
                    [audit, digest => stamp] => combine => spread => map(fan, limit = 3)
                        => gather => loop(max = 4) { tick => tock } until ticked
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
    if let Ok(tag) = std::env::var(TAG_ENV) {
        TAG.set(tag.clone()).expect("the tag is set once");
        return rt.block_on(race_worker(&dir, run_id, &tag));
    }
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

/// A racing worker's output file (each has its own: two may write theirs at once).
fn race_output_path(dir: &Path, run_id: RunId, tag: &str) -> PathBuf {
    dir.join(format!("{run_id}.{tag}.output"))
}

/// A racing worker (see *Two workers racing* in the header): resumes the run, or starts it if
/// the store has none; exits with [`BUSY`] if the other worker holds it.
async fn race_worker(dir: &Path, run_id: RunId, tag: &str) {
    let f = crash_flow!();
    let durable = f.durable(Tattler {
        inner: JsonCheckpointStore::new(dir),
    });
    let busy = |e: &dyn Display| -> ! {
        eprintln!("worker {tag}: run {run_id} is busy: {e}");
        std::process::exit(BUSY)
    };
    let result = match durable.resume(run_id).await {
        Ok(result) => result,
        Err(ResumeError::NotFound(_)) => durable.run_as(run_id, INPUT, ()).await,
        Err(ResumeError::Store(e @ StoreError::RunBusy { .. })) => busy(&e),
        Err(e) => panic!("resume run {run_id}: {e}"),
    };
    if let Some(FlowError::Checkpoint(
        e @ (StoreError::RunBusy { .. } | StoreError::RunExists(_)),
    )) = &result.error
    {
        assert!(
            result.failed_step.is_none() && result.traces.is_empty(),
            "run {run_id}: {e} after steps ran"
        );
        busy(e);
    }
    assert!(
        result.success,
        "run {run_id} failed at {:?}: {:?}",
        result.failed_step, result.error
    );
    let output = result.output.expect("a successful run has an output");
    let json = serde_json::to_vec(&output).expect("the output is JSON");
    fs::write(race_output_path(dir, run_id, tag), json).expect("write the output");
}

/// A racing worker's store: the JSON store, logging `#claim:<seq>:<status>` once it holds the
/// run's claim (`seq`: the journal's last entry then, 0 for a run it creates; `status`: the
/// document's) and `#completed` once it has written the completed document.
struct Tattler {
    inner: JsonCheckpointStore,
}

impl CheckpointStore for Tattler {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let claim = self.inner.create(document).await?;
            log_line(format_args!("{CLAIM_LINE}0:{:?}", document.status));
            Ok(claim)
        })
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let claim = self.inner.claim(run_id).await?;
            let checkpoint = self
                .inner
                .load(run_id)
                .await?
                .unwrap_or_else(|| panic!("run {run_id} is claimed and has no checkpoint"));
            let seq = checkpoint.journal.last().map_or(0, |e| e.seq);
            let status = &checkpoint.document.status;
            log_line(format_args!("{CLAIM_LINE}{seq}:{status:?}"));
            Ok(claim)
        })
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.put_document(claim, document).await?;
            if document.status == RunStatus::Completed {
                log_line(COMPLETED_LINE);
            }
            Ok(())
        })
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        self.inner.append(claim, entry)
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        self.inner.load(run_id)
    }

    fn list_runs<'a>(
        &'a self,
        query: &'a orchflow::store::RunQuery,
    ) -> StoreFuture<'a, orchflow::store::RunListing> {
        self.inner.list_runs(query)
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        self.inner.put_graph(graph)
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        self.inner.graph(fingerprint)
    }
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

    fn list_runs<'a>(
        &'a self,
        query: &'a orchflow::store::RunQuery,
    ) -> StoreFuture<'a, orchflow::store::RunListing> {
        self.inner.list_runs(query)
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        self.inner.put_graph(graph)
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        self.inner.graph(fingerprint)
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
    } else if name == INNER_MAP.0 {
        let [item] = path else {
            panic!("{}: a map item's path is its index", what());
        };
        let prefix = format!("{}:{item}/", INNER_MAP.1);
        return executions[INNER_MAP.1]
            .iter()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}: item {item} never ran", what()))
            .to_string();
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
    for k in 0..FANS {
        expected.push((INNER_MAP.0.to_owned(), vec![k]));
    }
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

/// The reference, made once per process: both tests use it, and the side-effect log of this
/// process can be set only once.
fn shared_reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let scratch = scratch_root("orchflow-crash-reference");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reference = rt.block_on(reference(&scratch));
        fs::remove_dir_all(&scratch).unwrap();
        reference
    })
}

impl Reference {
    /// The step executions a checkpoint covers: those before its last resumable point, plus the
    /// branches and the inner positions journaled after it (one step execution each).
    /// What a checkpoint read at the end of a session covers, checked: with no checkpoint yet
    /// nothing may have run (`lines` is the log); a checkpoint has the status `running` or
    /// `completed` and covers at least what it covered `before` (it never goes backwards).
    fn progress(
        &self,
        loaded: Option<&Checkpoint>,
        before: &BTreeSet<String>,
        lines: &[String],
        what: &dyn Fn() -> String,
    ) -> BTreeSet<String> {
        let covered = match loaded {
            None => {
                assert!(
                    lines.is_empty(),
                    "{}: steps ran before the run had a checkpoint: {lines:#?}",
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
                self.covered(checkpoint, what)
            }
        };
        assert!(
            before.is_subset(&covered),
            "{}: the checkpoint went backwards: it lost {:?}",
            what(),
            before.difference(&covered).collect::<Vec<_>>()
        );
        covered
    }

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
        let covered = self
            .reference
            .progress(loaded.as_ref(), &self.covered, &lines, &what);
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
    let reference = shared_reference();

    let mut totals = Totals::default();
    while totals.kills < target {
        totals.runs += 1;
        let dir = root.join(format!("run-{}", totals.runs));
        let mut run = Run {
            reference,
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

// ----- two workers racing -----

/// How a racing worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Spawned, not ended yet.
    Running,
    /// SIGKILLed by the driver.
    Killed,
    /// Exited 0: it completed the run, or found it completed.
    Completed,
    /// Exited [`BUSY`]: the other worker held the run.
    Busy,
}

/// A line of a racing worker.
enum Logged {
    /// A step execution (`<step>:<key>`).
    Step(String),
    /// It took the run's claim when the journal's last entry was `seq`.
    Claim { seq: u64, completed: bool },
    /// It wrote the completed document.
    Completed,
}

/// A racing worker the driver started, to be killed at `deadline` if still running.
struct Racer {
    child: Child,
    tag: usize,
    deadline: Instant,
}

#[derive(Default)]
struct RaceTotals {
    runs: usize,
    rounds: usize,
    spawns: usize,
    kills: usize,
    /// Rounds in which both workers (or a worker and its replacement) were killed.
    rounds_with_two_kills: usize,
    busy: usize,
    /// Loads of the checkpoint just after a kill, while another worker ran.
    loads_while_racing: usize,
    /// From the completed runs' logs:
    claims: usize,
    /// Claims taken from a killed holder.
    takeovers: usize,
    /// Kills of a worker that held the run.
    kills_holding: usize,
    /// Kills that left steps in flight (run again by a later worker).
    kills_in_flight: usize,
    duplicates: usize,
}

/// What a racing run's log shows.
#[derive(Default)]
struct LogSummary {
    claims: usize,
    takeovers: usize,
    kills_holding: usize,
    kills_in_flight: usize,
    duplicates: usize,
}

/// One run raced for by two workers at a time.
struct Race<'a> {
    reference: &'a Reference,
    rt: &'a tokio::runtime::Runtime,
    dir: PathBuf,
    log: PathBuf,
    run_id: RunId,
    store: JsonCheckpointStore,
    /// Every worker's fate; its index is its tag.
    fates: Vec<Fate>,
    kills: usize,
    /// Log lines at the end of the last round.
    lines: Vec<String>,
    /// What the checkpoint covered at the end of the last round.
    covered: BTreeSet<String>,
    /// Rounds in a row in which the checkpoint did not grow.
    stalled: u32,
}

impl Race<'_> {
    fn new<'a>(
        reference: &'a Reference,
        rt: &'a tokio::runtime::Runtime,
        dir: PathBuf,
    ) -> Race<'a> {
        fs::create_dir_all(&dir).expect("create the run's directory");
        Race {
            reference,
            rt,
            log: dir.join("effects.log"),
            store: JsonCheckpointStore::new(&dir),
            dir,
            run_id: RunId::new_v4(),
            fates: Vec::new(),
            kills: 0,
            lines: Vec::new(),
            covered: BTreeSet::new(),
            stalled: 0,
        }
    }

    fn what(&self) -> String {
        format!(
            "racing run {} in {} (after {} workers, {} kills)",
            self.run_id,
            self.dir.display(),
            self.fates.len(),
            self.kills
        )
    }

    fn stderr(&self, tag: usize) -> PathBuf {
        self.dir.join(format!("worker-{tag}.stderr"))
    }

    /// Starts worker number `fates.len()`, to be killed after `delay`.
    fn spawn(&mut self, delay: Duration, totals: &mut RaceTotals) -> Racer {
        assert!(
            self.fates.len() < MAX_SPAWNS_PER_RACE,
            "{}: not complete after {MAX_SPAWNS_PER_RACE} workers",
            self.what()
        );
        totals.spawns += 1;
        let tag = self.fates.len();
        self.fates.push(Fate::Running);
        let child = WORKER.spawn_with(
            &self.dir,
            self.run_id,
            &self.log,
            &self.stderr(tag),
            &[(TAG_ENV, &tag.to_string())],
        );
        Racer {
            child,
            tag,
            deadline: Instant::now() + delay,
        }
    }

    /// Records how worker `tag` ended; a worker that failed fails the test.
    fn ended(&mut self, tag: usize, status: ExitStatus) -> Fate {
        let fate = if status.success() {
            Fate::Completed
        } else if status.code() == Some(BUSY) {
            Fate::Busy
        } else if was_killed(status) {
            Fate::Killed
        } else {
            let stderr = fs::read_to_string(self.stderr(tag)).unwrap_or_default();
            panic!(
                "{}: worker {tag} failed ({status}); its stderr:\n{stderr}",
                self.what()
            );
        };
        self.fates[tag] = fate;
        if fate == Fate::Killed {
            self.kills += 1;
        }
        fate
    }

    /// One round: two workers started at once, each SIGKILLed after its own random delay if
    /// still running; while one runs, one that ended (killed or busy) is replaced, at most
    /// [`RACE_RESPAWNS`] times. The round ends when no worker runs; returns whether the run
    /// is complete.
    fn round(&mut self, rng: &mut Rng, totals: &mut RaceTotals) -> bool {
        totals.rounds += 1;
        assert!(
            self.stalled < MAX_STALLED_ROUNDS,
            "{}: the checkpoint has not grown in {MAX_STALLED_ROUNDS} rounds",
            self.what()
        );
        let slower = 1
            << self
                .stalled
                .saturating_sub(STALLS_BEFORE_SLOWER)
                .min(MAX_STALL_DOUBLINGS);
        let mut delay =
            || Duration::from_millis(slower * rng.range(KILL_DELAY_MS.0, KILL_DELAY_MS.1));
        let mut live = vec![self.spawn(delay(), totals), self.spawn(delay(), totals)];
        let (mut respawns, mut kills) = (0, 0);
        while !live.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            let mut i = 0;
            while i < live.len() {
                let status = match live[i].child.try_wait().expect("poll a worker") {
                    Some(status) => status,
                    None if Instant::now() >= live[i].deadline => {
                        let child = &mut live[i].child;
                        child.kill().expect("kill a worker");
                        child.wait().expect("reap a worker")
                    }
                    None => {
                        i += 1;
                        continue;
                    }
                };
                let racer = live.swap_remove(i);
                let fate = self.ended(racer.tag, status);
                match fate {
                    Fate::Killed => {
                        kills += 1;
                        if !live.is_empty() {
                            self.load_while_racing();
                            totals.loads_while_racing += 1;
                        }
                    }
                    Fate::Busy => totals.busy += 1,
                    Fate::Completed | Fate::Running => {}
                }
                if fate != Fate::Completed && !live.is_empty() && respawns < RACE_RESPAWNS {
                    respawns += 1;
                    live.push(self.spawn(delay(), totals));
                }
            }
        }
        totals.kills += kills;
        if kills >= 2 {
            totals.rounds_with_two_kills += 1;
        }
        self.check_round()
    }

    /// Loads the checkpoint while a worker may be writing it: the load succeeds and the
    /// checkpoint never goes backwards.
    fn load_while_racing(&self) {
        let what = || format!("{} (loaded while a worker ran)", self.what());
        let loaded = self
            .rt
            .block_on(self.store.load(self.run_id))
            .unwrap_or_else(|e| panic!("{}: unreadable checkpoint: {e}", what()));
        let covered = match &loaded {
            None => BTreeSet::new(),
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
    }

    /// The checks at the end of a round, when no worker runs (see the header).
    fn check_round(&mut self) -> bool {
        let what = || self.what();
        let lines = read_log(&self.log);
        assert!(
            lines.starts_with(&self.lines),
            "{}: the log was rewritten",
            what()
        );
        let loaded = self
            .rt
            .block_on(self.store.load(self.run_id))
            .unwrap_or_else(|e| panic!("{}: unreadable checkpoint: {e}", what()));
        let covered = self
            .reference
            .progress(loaded.as_ref(), &self.covered, &lines, &what);
        self.check_log(&lines, loaded.as_ref());
        let logged: BTreeSet<String> = lines
            .iter()
            .filter_map(|line| match self.parse(line).1 {
                Logged::Step(key) => Some(key),
                _ => None,
            })
            .collect();
        let unlogged: Vec<_> = covered.difference(&logged).collect();
        assert!(
            unlogged.is_empty(),
            "{}: checkpointed steps that never ran: {unlogged:?}",
            what()
        );
        let completed = self.fates.contains(&Fate::Completed);
        if completed {
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
        if covered.len() > self.covered.len() {
            self.stalled = 0;
        } else {
            self.stalled += 1;
        }
        self.lines = lines;
        self.covered = covered;
        completed
    }

    /// A line as its worker's tag and what it says.
    fn parse(&self, line: &str) -> (usize, Logged) {
        let what = || format!("{}: line `{line}`", self.what());
        let (text, tag) = line
            .rsplit_once('@')
            .unwrap_or_else(|| panic!("{}: no worker's tag", what()));
        let tag: usize = tag
            .parse()
            .ok()
            .filter(|t| *t < self.fates.len())
            .unwrap_or_else(|| panic!("{}: not the tag of a worker of this run", what()));
        let logged = if let Some(claim) = text.strip_prefix(CLAIM_LINE) {
            let (seq, status) = claim
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: a claim without a status", what()));
            let seq = seq
                .parse()
                .unwrap_or_else(|_| panic!("{}: a claim's seq is a number", what()));
            let completed = match status {
                "Running" => false,
                "Completed" => true,
                _ => panic!("{}: a claim of a run with status {status}", what()),
            };
            Logged::Claim { seq, completed }
        } else if text == COMPLETED_LINE {
            Logged::Completed
        } else {
            assert!(!text.starts_with("skip:"), "{}: the else arm ran", what());
            assert!(
                self.reference.keys.contains(text),
                "{}: not a step execution of the flow",
                what()
            );
            Logged::Step(text.to_owned())
        };
        (tag, logged)
    }

    /// What the checkpoint covered when its journal's last entry was `seq`: the journal only
    /// grows, so that is the current journal up to `seq`.
    fn covered_at(&self, checkpoint: Option<&Checkpoint>, seq: u64) -> BTreeSet<String> {
        let what = || format!("{} (its journal up to seq {seq})", self.what());
        if seq == 0 {
            return BTreeSet::new();
        }
        let checkpoint = checkpoint.unwrap_or_else(|| panic!("{}: claimed and then lost", what()));
        let journal: Vec<JournalEntry> = checkpoint
            .journal
            .iter()
            .filter(|e| e.seq <= seq)
            .cloned()
            .collect();
        assert_eq!(
            journal.len() as u64,
            seq,
            "{}: the journal lost entries a worker had claimed after",
            what()
        );
        let prefix = Checkpoint {
            document: checkpoint.document.clone(),
            journal,
        };
        self.reference.covered(&prefix, &what)
    }

    /// The whole log against the workers' fates (see the header): one writer at a time,
    /// nothing run without the claim or by a busy worker, no checkpointed step run again, a
    /// step run again only after a kill with it in flight, one completion at most.
    fn check_log(&self, lines: &[String], checkpoint: Option<&Checkpoint>) -> LogSummary {
        let what = || self.what();
        let parsed: Vec<(usize, Logged)> = lines.iter().map(|l| self.parse(l)).collect();
        let mut summary = LogSummary::default();

        // One writer at a time: each worker's lines are contiguous.
        let mut finished = BTreeSet::new();
        for pair in parsed.windows(2) {
            let (before, after) = (pair[0].0, pair[1].0);
            if before != after {
                finished.insert(before);
                assert!(
                    !finished.contains(&after),
                    "{}: worker {after} logged again after worker {before}: two workers wrote \
                     the run at once",
                    what()
                );
            }
        }

        // Each worker: its claim first, then steps its claim's checkpoint did not cover.
        let mut claims: HashMap<usize, BTreeSet<String>> = HashMap::new();
        let mut logged: BTreeSet<&String> = BTreeSet::new();
        let mut runs_of: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
        let mut completions = Vec::new();
        let mut holder: Option<usize> = None;
        for (i, (tag, entry)) in parsed.iter().enumerate() {
            let tag = *tag;
            let line = || format!("line {} (`{}`)", i + 1, lines[i]);
            assert!(
                self.fates[tag] != Fate::Busy,
                "{}: worker {tag} found the run busy and exited {BUSY}, but logged {}",
                what(),
                line()
            );
            match entry {
                Logged::Claim { seq, completed } => {
                    let covered = self.covered_at(checkpoint, *seq);
                    let unlogged: Vec<_> = covered.iter().filter(|k| !logged.contains(k)).collect();
                    assert!(
                        unlogged.is_empty(),
                        "{}: {}: the claimed checkpoint covers steps that had not run: \
                         {unlogged:?}",
                        what(),
                        line()
                    );
                    if *completed {
                        assert_eq!(covered, self.reference.keys, "{}: {}", what(), line());
                    }
                    assert!(
                        claims.insert(tag, covered).is_none(),
                        "{}: {}: worker {tag} claimed the run twice",
                        what(),
                        line()
                    );
                    summary.claims += 1;
                    if holder.is_some_and(|h| self.fates[h] == Fate::Killed) {
                        summary.takeovers += 1;
                    }
                    holder = Some(tag);
                }
                Logged::Step(key) => {
                    let covered = claims.get(&tag).unwrap_or_else(|| {
                        panic!(
                            "{}: {}: worker {tag} ran a step without the claim",
                            what(),
                            line()
                        )
                    });
                    assert!(
                        !covered.contains(key),
                        "{}: {}: worker {tag} ran `{key}` again, although the checkpoint \
                         covered it when the worker claimed the run",
                        what(),
                        line()
                    );
                    let runs = runs_of.entry(key).or_default();
                    assert!(
                        !runs.contains(&tag),
                        "{}: {}: `{key}` ran twice in worker {tag}",
                        what(),
                        line()
                    );
                    runs.push(tag);
                    logged.insert(key);
                }
                Logged::Completed => {
                    assert!(
                        claims.contains_key(&tag),
                        "{}: {}: worker {tag} completed the run without its claim",
                        what(),
                        line()
                    );
                    completions.push(tag);
                }
            }
        }

        // A step runs again only if the worker that ran it was killed (with it in flight).
        let mut reruns: BTreeMap<usize, usize> = BTreeMap::new();
        for (key, runs) in &runs_of {
            for tag in &runs[..runs.len() - 1] {
                assert_eq!(
                    self.fates[*tag],
                    Fate::Killed,
                    "{}: `{key}` ran in worker {tag}, which was not killed, and again in worker {}",
                    what(),
                    runs[runs.len() - 1]
                );
                *reruns.entry(*tag).or_default() += 1;
                summary.duplicates += 1;
            }
        }
        for (tag, n) in &reruns {
            assert!(
                *n <= WIDTH,
                "{}: {n} steps of worker {tag} ran again, at most {WIDTH} can be in flight",
                what()
            );
        }
        summary.kills_in_flight = reruns.len();
        summary.kills_holding = claims
            .keys()
            .filter(|t| self.fates[**t] == Fate::Killed)
            .count();

        // One completion at most; a worker that exited 0 completed the run or found it so.
        assert!(
            completions.len() <= 1,
            "{}: workers {completions:?} each wrote the completed document",
            what()
        );
        for (tag, fate) in self.fates.iter().enumerate() {
            if *fate != Fate::Completed {
                continue;
            }
            let found_completed = parsed.iter().any(|(t, entry)| {
                *t == tag
                    && matches!(
                        entry,
                        Logged::Claim {
                            completed: true,
                            ..
                        }
                    )
            });
            assert!(
                completions.contains(&tag) || found_completed,
                "{}: worker {tag} exited 0 without completing the run or finding it completed",
                what()
            );
        }
        summary
    }

    /// Once a worker has completed the run: the outputs, every step ran, and workers started
    /// on the completed run return its result without running anything, two at once and then
    /// one alone (so the claims were released).
    fn check_completed(&mut self, totals: &mut RaceTotals) {
        let missing: Vec<_> = self.reference.keys.difference(&self.covered).collect();
        assert!(
            missing.is_empty(),
            "{}: never ran: {missing:?}",
            self.what()
        );

        let mut pair = [
            self.spawn(WORKER_TIMEOUT, totals),
            self.spawn(WORKER_TIMEOUT, totals),
        ];
        for racer in &mut pair {
            let what = self.what();
            let status = wait_uninterrupted(&mut racer.child, WORKER_TIMEOUT, &|| what.clone());
            let fate = self.ended(racer.tag, status);
            assert!(
                fate != Fate::Killed,
                "{}: worker {} killed",
                self.what(),
                racer.tag
            );
        }
        assert!(
            pair.iter().any(|r| self.fates[r.tag] == Fate::Completed),
            "{}: two workers started on the completed run both found it busy",
            self.what()
        );
        let mut alone = self.spawn(WORKER_TIMEOUT, totals);
        let what = self.what();
        let status = wait_uninterrupted(&mut alone.child, WORKER_TIMEOUT, &|| what.clone());
        assert_eq!(
            self.ended(alone.tag, status),
            Fate::Completed,
            "{}: a worker alone on the completed run did not return its result (a claim never \
             released?)",
            self.what()
        );

        let lines = read_log(&self.log);
        assert!(
            lines.starts_with(&self.lines),
            "{}: the log was rewritten",
            self.what()
        );
        for line in &lines[self.lines.len()..] {
            assert!(
                matches!(
                    self.parse(line).1,
                    Logged::Claim {
                        completed: true,
                        ..
                    }
                ),
                "{}: a worker started on the completed run logged `{line}`",
                self.what()
            );
        }
        let checkpoint = self
            .rt
            .block_on(self.store.load(self.run_id))
            .unwrap_or_else(|e| panic!("{}: unreadable checkpoint: {e}", self.what()))
            .unwrap_or_else(|| panic!("{}: the checkpoint is gone", self.what()));
        let summary = self.check_log(&lines, Some(&checkpoint));
        self.lines = lines;

        // Every worker that exited 0 wrote the uninterrupted run's output.
        for (tag, fate) in self.fates.iter().enumerate() {
            if *fate != Fate::Completed {
                continue;
            }
            let path = race_output_path(&self.dir, self.run_id, &tag.to_string());
            let output = fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: read {}: {e}", self.what(), path.display()));
            let output: serde_json::Value = serde_json::from_slice(&output)
                .unwrap_or_else(|e| panic!("{}: the output is not JSON: {e}", self.what()));
            assert_eq!(
                output,
                self.reference.output,
                "{}: worker {tag}'s output is not that of an uninterrupted run",
                self.what()
            );
        }
        totals.claims += summary.claims;
        totals.takeovers += summary.takeovers;
        totals.kills_holding += summary.kills_holding;
        totals.kills_in_flight += summary.kills_in_flight;
        totals.duplicates += summary.duplicates;
    }
}

#[test]
fn two_workers_race_until_done() {
    let started = Instant::now();
    let (target, seed) = kills_and_seed(RACE_KILLS_ENV, RACE_SEED_ENV, RACE_KILLS);
    let mut rng = Rng::new(seed);
    let root = scratch_root("orchflow-crash-race");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = shared_reference();

    let mut totals = RaceTotals::default();
    while totals.kills < target {
        totals.runs += 1;
        let mut race = Race::new(reference, &rt, root.join(format!("run-{}", totals.runs)));
        while !race.round(&mut rng, &mut totals) {}
        race.check_completed(&mut totals);
        fs::remove_dir_all(&race.dir).unwrap();
    }
    fs::remove_dir_all(&root).unwrap();

    eprintln!(
        "crash race: {} runs, {} rounds, {} workers, {} kills ({} holding the run, {} with a step \
         in flight, {} rounds with two), {} busy, {} claims ({} taken from a killed worker), {} \
         loads while a worker ran, {} duplicate lines, seed {seed}, {:.1?}",
        totals.runs,
        totals.rounds,
        totals.spawns,
        totals.kills,
        totals.kills_holding,
        totals.kills_in_flight,
        totals.rounds_with_two_kills,
        totals.busy,
        totals.claims,
        totals.takeovers,
        totals.loads_while_racing,
        totals.duplicates,
        started.elapsed()
    );
}
