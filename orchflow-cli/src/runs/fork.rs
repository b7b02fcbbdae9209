//! `runs fork`: a new run from one step call of a recorded run, reusing what came before it
//! (see `orchflow::replay`), or a preview of what the fork would do.
//!
//! Invariants: a preview writes nothing; a fork is created through the build's flow
//! ([`Registry::submit_fork`]), which writes the lineage on both runs, and is then run here
//! ([`Registry::run`]) unless it is left queued for a worker; arguments are checked (the call,
//! the input's JSON) before the store is read.

use super::{not_found, resolve, stdout_error};
use crate::store::Store;
use crate::{CliError, ForkArgs};
use orchflow::ForkError;
use orchflow::registry::Registry;
use orchflow::replay::{ForkAt, ForkPreview, Reuse};
use orchflow::worker::Outcome;
use std::io::Write;

/// Runs `runs fork` (see [`ForkArgs`]). Fails with [`CliError::Usage`] for a call that is not
/// `STEP` or `STEP@N`, an input that is not JSON, or `--queue` on a store with no run queue;
/// with [`CliError::Failed`] when the fork is refused (no such call, an input the step does not
/// take, a flow this build lacks) or the new run fails; with the store's error.
pub async fn fork(
    store: &Store,
    flows: &Registry,
    args: &ForkArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let at = parse_at(&args.from)?;
    let input = args.input.as_deref().map(parse_input).transpose()?;
    if args.queue && store.queue().is_none() {
        return Err(CliError::Usage(format!(
            "{} has no run queue: no worker would take a queued fork; run it here (without --queue)",
            store.location()
        )));
    }
    let run_id = resolve(store, &args.id).await?;
    let checkpoints = store.checkpoints().clone();
    if args.preview {
        let preview = flows
            .preview_fork(checkpoints, run_id, &at, input.clone())
            .await
            .map_err(|e| fork_error(store, e))?;
        let text = render_preview(&preview, input.as_ref());
        return out.write_all(text.as_bytes()).map_err(stdout_error);
    }
    let new = flows
        .submit_fork(checkpoints.clone(), run_id, &at, input)
        .await
        .map_err(|e| fork_error(store, e))?;
    writeln!(out, "run {new} forked from run {run_id} at {at}").map_err(stdout_error)?;
    if args.queue {
        return writeln!(out, "run {new} is queued for a worker").map_err(stdout_error);
    }
    let outcome = flows.run(checkpoints.clone(), new).await;
    match outcome {
        Outcome::Completed => {
            let output = checkpoints
                .document(new)
                .await?
                .and_then(|d| d.output)
                .map(|o| format!(": output {}", super::show::one_line(&o)))
                .unwrap_or_default();
            writeln!(out, "run {new} completed{output}").map_err(stdout_error)
        }
        Outcome::Suspended => writeln!(
            out,
            "run {new} is suspended: it waits for answers (`runs show {new}` lists its questions)"
        )
        .map_err(stdout_error),
        Outcome::Cancelled => {
            writeln!(out, "run {new} was cancelled while it ran").map_err(stdout_error)
        }
        Outcome::Failed(e) => Err(CliError::Failed(format!("the fork {new} failed: {e}"))),
        Outcome::Lost(e) | Outcome::Refused(e) => Err(CliError::Failed(format!(
            "the fork {new} was created but did not run here: {e}"
        ))),
    }
}

/// Reads `--from`: `STEP` or `STEP@N`. Fails with [`CliError::Usage`].
///
/// ```
/// use orchflow_cli::runs::fork::parse_at;
/// assert_eq!(parse_at("draft@2").unwrap().to_string(), "draft@2");
/// assert!(parse_at("draft@0").is_err());
/// ```
pub fn parse_at(text: &str) -> Result<ForkAt, CliError> {
    ForkAt::parse(text.trim()).map_err(|e| CliError::Usage(format!("--from {text:?}: {e}")))
}

/// Reads `--input` as JSON. Fails with [`CliError::Usage`] saying where the JSON breaks (a
/// string must be quoted: `'"text"'`).
///
/// ```
/// use orchflow_cli::runs::fork::parse_input;
/// assert_eq!(parse_input("[1, 2]").unwrap(), serde_json::json!([1, 2]));
/// assert!(parse_input("not json").is_err());
/// ```
pub fn parse_input(text: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_str(text).map_err(|e| {
        CliError::Usage(format!(
            "--input is not JSON ({e}); a string is written with its quotes: --input '\"text\"'"
        ))
    })
}

/// A refused fork as the CLI reports it.
fn fork_error(store: &Store, e: ForkError) -> CliError {
    match e {
        ForkError::Store(e) => CliError::Store(e),
        ForkError::NotFound(run_id) => not_found(store, run_id),
        other => CliError::Failed(other.to_string()),
    }
}

/// A fork's preview as a table: each call's step, path, what the fork does with it, and
/// whether running it again repeats its side effects; then the totals.
///
/// ```
/// use orchflow::replay::{Call, ForkPreview, PreviewStep, Reuse};
/// let call = |step: &str| Call { step: step.into(), path: format!("step {step}"), ..Call::default() };
/// let preview = ForkPreview {
///     run_id: uuid::Uuid::nil(),
///     at: call("draft"),
///     steps: vec![
///         PreviewStep { call: call("plan"), reuse: Reuse::Reused, repeats_side_effects: false },
///         PreviewStep { call: call("draft"), reuse: Reuse::Rerun, repeats_side_effects: true },
///     ],
/// };
/// let text = orchflow_cli::runs::fork::render_preview(&preview, None);
/// assert!(text.contains("draft  step draft  rerun   repeats"), "{text}");
/// assert!(text.contains("1 reused, 1 rerun, 0 new; side effects repeat in 1 call\n"), "{text}");
/// ```
pub fn render_preview(preview: &ForkPreview, input: Option<&serde_json::Value>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fork of run {} from step `{}` at {}",
        preview.run_id, preview.at.step, preview.at.path
    );
    match input {
        Some(input) => {
            let _ = writeln!(out, "with input {}", super::show::one_line(input));
        }
        None => out.push_str("with the recorded input\n"),
    }
    out.push('\n');
    let reuse = |r: Reuse| match r {
        Reuse::Reused => "reused",
        Reuse::Rerun => "rerun",
        Reuse::New => "new",
    };
    let w_step = preview
        .steps
        .iter()
        .map(|s| s.call.step.chars().count())
        .max()
        .unwrap_or(0)
        .max("STEP".len());
    let w_path = preview
        .steps
        .iter()
        .map(|s| s.call.path.chars().count())
        .max()
        .unwrap_or(0)
        .max("PATH".len());
    let _ = writeln!(
        out,
        "{:<w_step$}  {:<w_path$}  {:<6}  SIDE EFFECTS",
        "STEP", "PATH", "FORK"
    );
    for s in &preview.steps {
        let mark = if s.repeats_side_effects {
            "repeats"
        } else {
            ""
        };
        let line = format!(
            "{:<w_step$}  {:<w_path$}  {:<6}  {mark}",
            s.call.step,
            s.call.path,
            reuse(s.reuse)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let count = |r: Reuse| preview.steps.iter().filter(|s| s.reuse == r).count();
    let repeats = preview
        .steps
        .iter()
        .filter(|s| s.repeats_side_effects)
        .count();
    let _ = writeln!(
        out,
        "\n{} reused, {} rerun, {} new; side effects repeat in {repeats} call{}",
        count(Reuse::Reused),
        count(Reuse::Rerun),
        count(Reuse::New),
        if repeats == 1 { "" } else { "s" }
    );
    out.push_str(
        "(a preview writes nothing; the calls after the fork's are the recorded ones, and the new run may take another way)\n",
    );
    out
}
