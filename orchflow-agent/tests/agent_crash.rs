//! Crash test for the agent: a durable solver run is SIGKILLed at random moments and
//! [`Solver::resume`] finishes it without repeating a finished tool call.
//!
//! # How it works
//!
//! The same technique as the workspace's `tests/crash.rs`, for the Planner → Executor → Verifier
//! solver. The helper process is this test binary itself: [`agent_crash_worker`] is an
//! `#[ignore]`d test that does nothing unless `ORCHFLOW_AGENT_CRASH_WORKER` is set; the driver,
//! [`sigkill_and_resume_the_agent_until_done`], re-executes `std::env::current_exe()` with
//! `--ignored --exact agent_crash_worker --nocapture --test-threads=1` and these variables:
//!
//! * `ORCHFLOW_AGENT_CRASH_WORKER=1`: be the worker;
//! * `ORCHFLOW_AGENT_CRASH_DIR`: the directory of the run's [`JsonCheckpointStore`];
//! * `ORCHFLOW_AGENT_CRASH_RUN`: the run id;
//! * `ORCHFLOW_AGENT_CRASH_LOG`: the side-effect log, one line `search:<query>` per tool call.
//!
//! The worker resumes the run if the store has a checkpoint for it, starts it with
//! [`Solver::solve_durable`] otherwise, and when the run is answered writes its answer and its
//! tool calls' queries as JSON to `<dir>/<run id>.output` and exits 0 (anything else panics).
//!
//! The model is a pure function of the prompt (every process answers the same): the planner
//! searches `q1`, `q2`, … `q6` in turn, choosing the next query from how many `result:` lines
//! its memory holds, then answers with a digest of the six results; the verifier always says
//! the memory does not suffice. The `search` tool sleeps 1–4 ms, appends `search:<query>` to
//! the log with a single `O_APPEND` write, sleeps up to 1 ms more one time in three (so that
//! kills also land between the line and the checkpoint of the executor's output) and returns
//! a deterministic text. The model's replies take 0–1 ms.
//!
//! For each run the driver spawns the worker, waits a random 2–30 ms and, if the worker is
//! still running, kills it with SIGKILL, again and again until a worker exits by itself. After
//! every session (killed or not) it checks that:
//!
//! * the checkpoint loads (`Ok`, never an error) with the status `running` or `completed`;
//! * the tool calls the checkpoint covers (those of the last trajectory it saved: the journal's
//!   last loop iteration point or inner position, or the completed run's output) are a prefix
//!   of the uninterrupted run's calls, never fewer than after the previous session, and each
//!   has written its log line;
//! * no call the checkpoint covered when the session started ran again in it, no call ran twice
//!   in one session, at most one call ran again (the one in flight at the last kill), and every
//!   line is a call of the uninterrupted run.
//!
//! At the end of a run: the output's answer and tool calls equal those of an uninterrupted
//! in-process run, every line of that run's log is in the log, there are at most as many
//! duplicate lines as kills, and one more worker, not killed, returns the same result without
//! calling the tool.
//!
//! `ORCHFLOW_AGENT_CRASH_KILLS` sets the number of kills (default 20; hundreds for a soak) and
//! `ORCHFLOW_AGENT_CRASH_SEED` the seed of the driver's kill delays (printed in the summary). A
//! failing run leaves its directory (named in the panic message) for inspection.

#![cfg(unix)]

// The crash test's harness, shared with the workspace's `tests/crash.rs`.
#[path = "../../tests/support/kill_harness.rs"]
mod kill_harness;
use kill_harness::{
    Ended, Rng, Trial, Worker, kills_and_seed, mix, read_log, scratch_root, shared_random,
};

use orchflow_agent::solver::{Solver, SolverConfig};
use orchflow_agent::testing::ScriptedLlm;
use orchflow_agent::tools::{Tool, ToolFuture, ToolOutput};
use orchflow_agent::trajectory::{Outcome, Trajectory};
use orchflow_agent::{ChatRequest, LlmError};
use orchflow_core::store::{Checkpoint, PointRecord, RunDocument, RunStatus};
use orchflow_core::{CheckpointStore, JsonCheckpointStore, RunId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKER_ENV: &str = "ORCHFLOW_AGENT_CRASH_WORKER";
const DIR_ENV: &str = "ORCHFLOW_AGENT_CRASH_DIR";
const RUN_ENV: &str = "ORCHFLOW_AGENT_CRASH_RUN";
const LOG_ENV: &str = "ORCHFLOW_AGENT_CRASH_LOG";
const KILLS_ENV: &str = "ORCHFLOW_AGENT_CRASH_KILLS";
const SEED_ENV: &str = "ORCHFLOW_AGENT_CRASH_SEED";

/// How the driver starts a worker: this binary, running only the worker test.
const WORKER: Worker = Worker {
    test: "agent_crash_worker",
    worker_env: WORKER_ENV,
    dir_env: DIR_ENV,
    run_env: RUN_ENV,
    log_env: LOG_ENV,
};

/// The question, the same for every run.
const QUESTION: &str = "What do the six searches add up to?";
/// How many searches the planner makes before it answers.
const SEARCHES: usize = 6;
/// The step budget: enough for the searches and the answer.
const MAX_STEPS: u32 = 10;
/// Kill delays, in milliseconds.
const KILL_DELAY_MS: (u64, u64) = (2, 30);
/// The default number of kills.
const DEFAULT_KILLS: usize = 20;
/// A run that has not completed after this many workers is not making progress.
const MAX_SPAWNS_PER_RUN: usize = 500;
/// How long a worker that is not killed may take.
const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

// ----- randomness -----

/// A deterministic digest of a text (FNV-1a, then scrambled).
fn digest(text: &str) -> u64 {
    let h = text.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    mix(h, 42)
}

// ----- the model and the tool -----

/// Which solver prompt a request is: the title of its reply schema.
fn kind(req: &ChatRequest) -> String {
    req.schema
        .as_ref()
        .and_then(|s| s.get("title"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string()
}

/// The results in a prompt's memory, in order (the text after `result:`).
fn results(prompt: &str) -> Vec<&str> {
    prompt
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("result:"))
        .map(str::trim)
        .collect()
}

/// The answer the planner gives for these results.
fn answer_for(results: &[&str]) -> String {
    format!("{:016x}", digest(&results.join("|")))
}

/// The planner's reply to a prompt: the next search, or the answer once every search is in.
fn plan(prompt: &str) -> String {
    let results = results(prompt);
    let (action, input) = if results.len() < SEARCHES {
        ("search", format!("q{}", results.len() + 1))
    } else {
        ("answer", answer_for(&results))
    };
    serde_json::json!({
        "thought": format!("{} results so far", results.len()),
        "action": action,
        "action_input": input,
    })
    .to_string()
}

/// The scripted model: a pure function of the prompt (its replies take 0–1 ms).
fn model() -> Arc<ScriptedLlm> {
    Arc::new(ScriptedLlm::from_fn(|req: &ChatRequest| {
        std::thread::sleep(Duration::from_micros(shared_random() % 1_000));
        let prompt = req.messages.last().map_or("", |m| m.content.as_str());
        match kind(req).as_str() {
            "Decision" => Ok(plan(prompt)),
            "VerdictReply" => Ok(r#"{"sufficient": false, "reason": "keep searching"}"#.into()),
            other => Err(LlmError::Stream {
                reason: format!("unexpected prompt `{other}`"),
            }),
        }
    }))
}

/// A `search` tool whose every call leaves one line in the side-effect log.
struct LoggedSearch {
    log: PathBuf,
}

impl LoggedSearch {
    /// The side effect: one line, appended with a single write.
    fn effect(&self, query: &str) {
        let line = format!("search:{query}\n");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        file.write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("append to {}: {e}", self.log.display()));
    }
}

/// The tool's output for a query.
fn search_output(query: &str) -> String {
    format!("result for {query}: {:016x}", digest(query))
}

impl Tool for LoggedSearch {
    fn name(&self) -> &str {
        "search"
    }
    fn description(&self) -> &str {
        "looks things up"
    }
    fn input_schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}}})
    }
    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            let query = input["query"].as_str().unwrap_or("?");
            tokio::time::sleep(Duration::from_millis(1 + shared_random() % 4)).await;
            self.effect(query);
            if shared_random().is_multiple_of(3) {
                tokio::time::sleep(Duration::from_micros(shared_random() % 1_000)).await;
            }
            Ok(ToolOutput::text(search_output(query)))
        })
    }
}

fn solver(log: &Path) -> Solver {
    Solver::new(
        model(),
        vec![Arc::new(LoggedSearch {
            log: log.to_path_buf(),
        })],
        SolverConfig {
            max_steps: MAX_STEPS,
            ..SolverConfig::default()
        },
    )
}

/// What a finished run produced: the worker's output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunOutput {
    answer: String,
    queries: Vec<String>,
}

/// The queries of a trajectory's tool calls, in order.
fn queries(t: &Trajectory) -> Vec<String> {
    t.tool_calls()
        .map(|c| {
            assert_eq!(c.tool, "search", "an unexpected tool call: {c:?}");
            c.input["query"]
                .as_str()
                .unwrap_or_else(|| panic!("a search without a query: {c:?}"))
                .to_string()
        })
        .collect()
}

/// The output of an answered run; panics on any other outcome.
fn run_output(t: &Trajectory) -> RunOutput {
    assert_eq!(
        t.outcome,
        Outcome::Answered,
        "the run did not end with the planner's answer: {t:#?}"
    );
    RunOutput {
        answer: t.answer.clone().expect("an answered run has an answer"),
        queries: queries(t),
    }
}

// ----- the worker -----

/// The helper process: does nothing unless `ORCHFLOW_AGENT_CRASH_WORKER` is set (see the
/// header).
#[test]
#[ignore = "helper process of sigkill_and_resume_the_agent_until_done; idle unless ORCHFLOW_AGENT_CRASH_WORKER is set"]
fn agent_crash_worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = PathBuf::from(var(DIR_ENV));
    let run_id: RunId = var(RUN_ENV).parse().expect("a run id");
    let log = PathBuf::from(var(LOG_ENV));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let store = JsonCheckpointStore::new(&dir);
        let solver = solver(&log);
        let t = match store.load(run_id).await {
            Ok(Some(_)) => solver
                .resume(store.clone(), run_id)
                .await
                .unwrap_or_else(|e| panic!("resume run {run_id}: {e}")),
            Ok(None) => solver.solve_durable(store.clone(), run_id, QUESTION).await,
            Err(e) => panic!("unreadable checkpoint of run {run_id}: {e}"),
        };
        let output = run_output(&t);
        let json = serde_json::to_vec(&output).expect("the output is JSON");
        fs::write(output_path(&dir, run_id), json).expect("write the output");
    });
}

fn output_path(dir: &Path, run_id: RunId) -> PathBuf {
    dir.join(format!("{run_id}.output"))
}

// ----- the checkpoint's coverage -----

/// The trajectory a journal value holds: a loop iteration (`{"Loop1": {"iteration": k,
/// "value": …}}`), a top-level point (`{"AfterLoop1": …}`), an inner position's value (the
/// trajectory itself), or none.
fn trajectory_in(value: &serde_json::Value) -> Option<Trajectory> {
    if let Ok(t) = serde_json::from_value::<Trajectory>(value.clone()) {
        return Some(t);
    }
    let object = value.as_object()?;
    if let Some(inner) = object.get("value")
        && object.contains_key("iteration")
    {
        return trajectory_in(inner);
    }
    match object.len() {
        1 => trajectory_in(object.values().next()?),
        _ => None,
    }
}

/// The tool calls (queries) a checkpoint covers: those of the last trajectory it saved.
fn covered(checkpoint: &Checkpoint, what: &dyn Fn() -> String) -> Vec<String> {
    if let Some(output) = &checkpoint.document.output {
        let t: Trajectory = serde_json::from_value(output.clone())
            .unwrap_or_else(|e| panic!("{}: the checkpoint's output: {e}", what()));
        return queries(&t);
    }
    for entry in checkpoint.journal.iter().rev() {
        let value = match &entry.record {
            PointRecord::Point(v) => v,
            PointRecord::Inner { value, .. } => value,
            PointRecord::Stopped => continue,
            other => panic!("{}: unexpected journal record {other:?}", what()),
        };
        let t = trajectory_in(value).unwrap_or_else(|| {
            panic!(
                "{}: journal entry {} holds no trajectory: {value}",
                what(),
                entry.seq
            )
        });
        return queries(&t);
    }
    Vec::new()
}

/// A journal in short, for messages: each entry's record, name and covered queries.
fn journal_summary(checkpoint: &Checkpoint) -> String {
    checkpoint
        .journal
        .iter()
        .map(|e| {
            let (kind, name, value) = match &e.record {
                PointRecord::Point(v) => (
                    "point",
                    v.as_object()
                        .and_then(|o| o.keys().next().cloned())
                        .unwrap_or_default(),
                    Some(v),
                ),
                PointRecord::Inner { name, path, value } => {
                    ("inner", format!("{name}{path:?}"), Some(value))
                }
                PointRecord::Branch { group, index, .. } => {
                    ("branch", format!("{group}/{index}"), None)
                }
                PointRecord::Stopped => ("stopped", String::new(), None),
                PointRecord::Answer { question, .. } => ("answer", question.clone(), None),
            };
            let calls = value
                .and_then(trajectory_in)
                .map(|t| queries(&t))
                .unwrap_or_default();
            format!("  #{} {kind} {name} calls {calls:?}\n", e.seq)
        })
        .collect()
}

// ----- the reference: an uninterrupted run -----

/// What an uninterrupted run does.
struct Reference {
    output: RunOutput,
    /// Its log lines, in order, all distinct.
    lines: Vec<String>,
}

async fn reference(root: &Path) -> Reference {
    let dir = root.join("reference");
    let log = dir.join("effects.log");
    fs::create_dir_all(&dir).unwrap();
    let store = JsonCheckpointStore::new(&dir);
    let run_id = RunId::new_v4();
    let t = solver(&log)
        .solve_durable(store.clone(), run_id, QUESTION)
        .await;
    let output = run_output(&t);
    let lines = read_log(&log);

    let expected: Vec<String> = (1..=SEARCHES).map(|i| format!("q{i}")).collect();
    assert_eq!(output.queries, expected, "the reference run's searches");
    let results: Vec<String> = expected.iter().map(|q| search_output(q)).collect();
    let results: Vec<&str> = results.iter().map(String::as_str).collect();
    assert_eq!(output.answer, answer_for(&results), "the reference answer");
    let expected_lines: Vec<String> = expected.iter().map(|q| format!("search:{q}")).collect();
    assert_eq!(lines, expected_lines, "the reference run's log");

    let checkpoint = store
        .load(run_id)
        .await
        .expect("the reference checkpoint loads")
        .expect("the reference run has a checkpoint");
    assert_eq!(checkpoint.document.status, RunStatus::Completed);
    if std::env::var_os("ORCHFLOW_AGENT_CRASH_SHOW_JOURNAL").is_some() {
        eprintln!("reference journal:\n{}", journal_summary(&checkpoint));
    }
    // Every position of the journal holds a trajectory (the coverage is read from them), and
    // the coverage only grows along it.
    let what = || "the reference run".to_string();
    let mut previous: Vec<String> = Vec::new();
    for n in 1..=checkpoint.journal.len() {
        let prefix = Checkpoint {
            document: RunDocument {
                status: RunStatus::Running,
                output: None,
                ..checkpoint.document.clone()
            },
            journal: checkpoint.journal[..n].to_vec(),
        };
        let now = covered(&prefix, &what);
        assert!(
            now.starts_with(&previous),
            "{}",
            journal_summary(&checkpoint)
        );
        previous = now;
    }
    assert_eq!(previous, output.queries, "{}", journal_summary(&checkpoint));
    Reference { output, lines }
}

// ----- the driver -----

#[derive(Default)]
struct Totals {
    runs: usize,
    spawns: usize,
    kills: usize,
    duplicates: usize,
    /// Kills by how many tool calls the checkpoint covered after them.
    kills_at: BTreeMap<usize, usize>,
    /// Kills that left a tool call logged but not checkpointed.
    kills_in_flight: usize,
    /// Kills before the run had a checkpoint.
    kills_before_checkpoint: usize,
}

struct Run<'a> {
    reference: &'a Reference,
    rt: &'a tokio::runtime::Runtime,
    trial: Trial<RunId>,
    store: JsonCheckpointStore,
    /// Log lines so far.
    lines: Vec<String>,
    /// The tool calls the checkpoint covered after the last session.
    covered: Vec<String>,
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
        let lines = read_log(&self.trial.log);
        let loaded = self
            .rt
            .block_on(self.store.load(self.trial.run_id))
            .unwrap_or_else(|e| panic!("{}: unreadable checkpoint: {e}", self.what()));
        let journal = || {
            loaded
                .as_ref()
                .map_or_else(|| "  (no checkpoint)\n".to_string(), journal_summary)
        };
        let what = || {
            format!(
                "{}\nlog before the session: {:?}\nlog now: {lines:?}\ncovered before the \
                 session: {:?}\njournal now:\n{}",
                self.what(),
                self.lines,
                self.covered,
                journal()
            )
        };

        assert!(
            lines.starts_with(&self.lines),
            "{}: the log was rewritten",
            what()
        );
        let new = &lines[self.lines.len()..];
        let mut seen = BTreeSet::new();
        let mut duplicates = 0;
        for line in new {
            assert!(
                self.reference.lines.contains(line),
                "{}: `{line}` is not a tool call of the uninterrupted run",
                what()
            );
            assert!(
                seen.insert(line),
                "{}: `{line}` ran twice in one session",
                what()
            );
            assert!(
                !self.covered.iter().any(|q| *line == format!("search:{q}")),
                "{}: `{line}` ran again although the checkpoint covered it when the worker \
                 started",
                what()
            );
            if self.lines.contains(line) {
                duplicates += 1;
            }
        }
        assert!(
            duplicates <= 1,
            "{}: {duplicates} tool calls ran again in one session; only the one in flight at \
             the last kill may",
            what()
        );
        totals.duplicates += duplicates;

        let covered = match &loaded {
            None => {
                assert!(
                    lines.is_empty(),
                    "{}: tool calls ran before the run had a checkpoint",
                    what()
                );
                Vec::new()
            }
            Some(checkpoint) => {
                let status = &checkpoint.document.status;
                assert!(
                    matches!(status, RunStatus::Running | RunStatus::Completed),
                    "{}: status {status:?}",
                    what()
                );
                covered(checkpoint, &what)
            }
        };
        assert!(
            self.reference.output.queries.starts_with(&covered),
            "{}: the checkpoint covers {covered:?}, not a prefix of the uninterrupted run's calls",
            what()
        );
        assert!(
            covered.starts_with(&self.covered),
            "{}: the checkpoint went backwards: it covers {covered:?}",
            what()
        );
        let logged: BTreeSet<&String> = lines.iter().collect();
        let unlogged: Vec<_> = covered
            .iter()
            .filter(|q| !logged.contains(&format!("search:{q}")))
            .collect();
        assert!(
            unlogged.is_empty(),
            "{}: checkpointed tool calls that never ran: {unlogged:?}",
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
                assert_eq!(covered, self.reference.output.queries, "{}", what());
            }
        }
        self.lines = lines;
        self.covered = covered;
    }

    fn read_output(&self) -> RunOutput {
        let output = fs::read(output_path(&self.trial.dir, self.trial.run_id))
            .unwrap_or_else(|e| panic!("{}: read the output: {e}", self.what()));
        serde_json::from_slice(&output)
            .unwrap_or_else(|e| panic!("{}: the output is not a run's output: {e}", self.what()))
    }

    /// The checks once a worker has completed the run.
    fn check_completed(&mut self) {
        let what = || format!("{}\nlog: {:?}", self.what(), self.lines);
        assert_eq!(
            self.read_output(),
            self.reference.output,
            "{}: not the answer and tool calls of an uninterrupted run",
            what()
        );

        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for line in &self.lines {
            *counts.entry(line).or_default() += 1;
        }
        let missing: Vec<_> = self
            .reference
            .lines
            .iter()
            .filter(|l| !counts.contains_key(l))
            .collect();
        assert!(missing.is_empty(), "{}: never ran: {missing:?}", what());
        let duplicates = self.lines.len() - counts.len();
        assert!(
            duplicates <= self.trial.kills,
            "{}: {duplicates} duplicate lines after {} kills",
            what(),
            self.trial.kills
        );

        // A worker for a completed run returns its result and calls nothing.
        fs::remove_file(output_path(&self.trial.dir, self.trial.run_id)).unwrap();
        self.trial.rerun(&WORKER, WORKER_TIMEOUT, &what);
        assert_eq!(
            read_log(&self.trial.log),
            self.lines,
            "{}: resuming a completed run called the tool",
            what()
        );
        assert_eq!(self.read_output(), self.reference.output, "{}", what());
    }
}

#[test]
fn sigkill_and_resume_the_agent_until_done() {
    let started = Instant::now();
    let (target, seed) = kills_and_seed(KILLS_ENV, SEED_ENV, DEFAULT_KILLS);
    let mut rng = Rng::new(seed);
    let root = scratch_root("orchflow-agent-crash");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reference = rt.block_on(reference(&root));
    let reference_time = started.elapsed();

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
            covered: Vec::new(),
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
        "agent crash test: {} runs, {} workers, {} kills ({} before a checkpoint, {} with a tool \
         call in flight), {} duplicate tool calls, kills by checkpointed calls {:?}, reference \
         run {:.1?}, seed {seed}, {:.1?}",
        totals.runs,
        totals.spawns,
        totals.kills,
        totals.kills_before_checkpoint,
        totals.kills_in_flight,
        totals.duplicates,
        totals.kills_at,
        reference_time,
        started.elapsed()
    );
}
