//! `orchflow runs …`: listing, showing, answering, resuming, cancelling, exporting and forking
//! runs.
//!
//! Invariants: every command reads the store through [`CheckpointStore`]'s own reads and writes
//! only through the store's operations (the run queue's `cancel`, `store::ops`, a flow's
//! durable fork), so it never races a run's writer; output goes to the writer it is given,
//! errors to the caller.

use crate::bundle::Bundle;
use crate::store::Store;
use crate::{CliError, RunsCommand};
use orchflow::RunId;
use orchflow::store::{Checkpoint, CheckpointStore};
use std::io::Write;

pub mod fork;
pub mod list;
pub mod ops;
pub mod show;

/// Runs `command` against `store` with the build's `flows` (for `fork`), writing what it prints
/// to `out`, with ANSI colour when `color`. Fails with a [`CliError`]: a usage error for a bad
/// argument, a failure for a missing run or a refused operation, the store's error when it
/// cannot read or write.
pub async fn run(
    store: &Store,
    flows: &orchflow::registry::Registry,
    command: RunsCommand,
    out: &mut dyn Write,
    color: bool,
) -> Result<(), CliError> {
    match command {
        RunsCommand::List(args) => {
            let query = list::query_of(&args, std::time::SystemTime::now())?;
            let store = store.checkpoints();
            let (listing, counts) = tokio::join!(store.list_runs(&query), store.count_runs(&query));
            let (listing, counts) = (listing?, counts?);
            if args.json {
                list::print_json(&listing, &counts, out)
            } else {
                list::print_table(&listing, &counts, out).map_err(stdout_error)
            }
        }
        RunsCommand::Show(args) => {
            let run_id = resolve(store, &args.id).await?;
            let checkpoint = load(store, run_id).await?;
            if args.json {
                let attempts: Vec<_> = checkpoint
                    .journal
                    .iter()
                    .flat_map(|e| e.traces.iter())
                    .collect();
                let value = serde_json::json!({
                    "document": checkpoint.document,
                    "attempts": attempts,
                });
                print_json(&value, out)
            } else {
                let text = show::render(&checkpoint.document, &checkpoint.journal, color);
                out.write_all(text.as_bytes()).map_err(stdout_error)
            }
        }
        RunsCommand::Cancel(args) => {
            let run_id = resolve(store, &args.id).await?;
            let was = cancel(store, run_id).await?;
            let line = match was {
                orchflow::store::RunStatus::Completed => {
                    format!("run {run_id} had completed: nothing to cancel")
                }
                orchflow::store::RunStatus::Cancelled => {
                    format!("run {run_id} was already cancelled")
                }
                other => format!("run {run_id} cancelled (it was {other})"),
            };
            writeln!(out, "{line}").map_err(stdout_error)
        }
        RunsCommand::Export(args) => {
            let run_id = resolve(store, &args.id).await?;
            let bundle = export(store, run_id).await?;
            let text = bundle
                .to_json()
                .map_err(|e| CliError::Failed(format!("cannot write the bundle as JSON: {e}")))?;
            match args.output {
                Some(path) => {
                    write_file(&path, text.as_bytes())?;
                    writeln!(
                        out,
                        "run {run_id} exported to {} ({} journal entries)",
                        path.display(),
                        bundle.journal.len()
                    )
                    .map_err(stdout_error)
                }
                None => writeln!(out, "{text}").map_err(stdout_error),
            }
        }
        RunsCommand::Answer(args) => {
            let run_id = resolve(store, &args.id).await?;
            let status = ops::answer(store, run_id, args.question.as_deref(), &args.value)
                .await
                .map_err(op_error)?;
            writeln!(out, "run {run_id} answered; it is {status} for a worker")
                .map_err(stdout_error)
        }
        RunsCommand::Fork(args) => fork::fork(store, flows, &args, out).await,
        RunsCommand::Resume(args) => {
            let run_id = resolve(store, &args.id).await?;
            let status = ops::requeue(store, run_id).await.map_err(op_error)?;
            writeln!(out, "run {run_id} is {status} for a worker").map_err(stdout_error)
        }
    }
}

/// The run `text` names: a full run id, or the start of exactly one run's id (at least four
/// characters, as `runs list` shows them). Fails with [`CliError::Usage`] for text that is
/// neither, or a prefix several runs share, and with [`CliError::Failed`] when no run matches.
pub async fn resolve(store: &Store, text: &str) -> Result<RunId, CliError> {
    let text = text.trim();
    if let Ok(run_id) = text.parse::<RunId>() {
        return Ok(run_id);
    }
    let prefix = text.to_ascii_lowercase();
    let is_prefix = prefix.len() >= 4
        && prefix.len() < 36
        && prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !is_prefix {
        return Err(crate::parse_run_id(text)
            .err()
            .unwrap_or_else(|| CliError::Usage(format!("{text:?} is not a run id"))));
    }
    // The text filter also matches flow names containing it: keep the id matches only.
    let query = orchflow::store::RunQuery::new().text(prefix.clone());
    let listing = store.checkpoints().list_runs(&query).await?;
    let matches: Vec<RunId> = listing
        .runs
        .iter()
        .map(|d| d.run_id)
        .filter(|id| id.to_string().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::Failed(format!(
            "no run whose id starts with {text:?} in {}",
            store.location()
        ))),
        several => Err(CliError::Usage(format!(
            "{} runs have ids starting with {text:?}; give more of the id",
            several.len()
        ))),
    }
}

/// Loads a run; fails with [`CliError::Failed`] naming the run and the store when there is no
/// such run.
pub async fn load(store: &Store, run_id: RunId) -> Result<Checkpoint, CliError> {
    store
        .checkpoints()
        .load(run_id)
        .await?
        .ok_or_else(|| not_found(store, run_id))
}

/// The error for a run the store does not have.
pub(crate) fn not_found(store: &Store, run_id: RunId) -> CliError {
    CliError::Failed(format!("no run {run_id} in {}", store.location()))
}

/// Cancels a run through the store's run queue; returns the status it had. Fails for a store
/// with no run queue (a JSON directory), an unknown run, or the store's error.
pub async fn cancel(store: &Store, run_id: RunId) -> Result<orchflow::store::RunStatus, CliError> {
    let Some(queue) = store.queue() else {
        return Err(CliError::Failed(format!(
            "{} has no run queue: runs in a JSON directory cannot be cancelled",
            store.location()
        )));
    };
    match queue.cancel(run_id).await {
        Ok(was) => Ok(was),
        Err(orchflow::store::StoreError::NotFound(_)) => Err(not_found(store, run_id)),
        Err(e) => Err(e.into()),
    }
}

/// The export bundle of a run: its document, its journal and its flow's graph (when the store
/// has it). Fails for an unknown run or the store's error.
pub async fn export(store: &Store, run_id: RunId) -> Result<Bundle, CliError> {
    let checkpoint = load(store, run_id).await?;
    let graph = ops::graph(store, &checkpoint.document.fingerprint).await?;
    Ok(Bundle::new(checkpoint.document, checkpoint.journal, graph))
}

/// An operation's refusal as the CLI reports it (the store's own errors keep their kind).
fn op_error(e: ops::OpError) -> CliError {
    match e {
        ops::OpError::Store(e) => CliError::Store(e),
        other => CliError::Failed(other.to_string()),
    }
}

/// Writes `bytes` to `path`, naming the file in the error.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::Io {
        op: "write",
        path: path.display().to_string(),
        source,
    })
}

/// Prints `value` as pretty JSON.
fn print_json(value: &serde_json::Value, out: &mut dyn Write) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?;
    writeln!(out, "{text}").map_err(stdout_error)
}

/// A failure to write to standard output.
pub(crate) fn stdout_error(source: std::io::Error) -> CliError {
    CliError::Io {
        op: "write to",
        path: "standard output".to_string(),
        source,
    }
}
