//! The `orchflow` command: durable runs in any checkpoint store, from a terminal and from a
//! browser.
//!
//! * `orchflow runs list|show|answer|resume|cancel|export` reads and operates on the runs of
//!   the store `--store URL` (or `ORCHFLOW_STORE`) names ([`store`]);
//! * `orchflow serve` starts the offline viewer: an HTTP server with the viewer's assets
//!   compiled in and the JSON API they use ([`serve`]);
//! * `orchflow replay` and `orchflow runs fork` run a build's flows over recorded runs
//!   ([`replay`], [`runs::fork`]): they need an application's own binary made with [`App`],
//!   which knows its flows.
//!
//! The `orchflow` binary is `App::new(Registry::new())`: it parses the arguments, runs the
//! command, prints the error and exits with [`CliError::exit_code`] (0 success, 1 the operation
//! failed or a replay found a run that is not compatible, 2 a usage error or a store that
//! cannot be opened).
//!
//! Invariants: no command writes to a store except `answer`, `resume`, `cancel` and `fork`
//! (and those only through the store's own operations and the flow's durable runs); `replay`
//! writes nothing; every failure is a [`CliError`], never a panic.

#![deny(missing_docs)]

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod app;
pub mod bundle;
pub mod replay;
pub mod runs;
pub mod serve;
pub mod store;

pub use app::{App, Captured};
pub use bundle::Bundle;
pub use replay::{ReplayArgs, ReplayFormat};
pub use store::{OpenError, Store, StoreUrl};

/// The command line: `orchflow [--store URL] <command>`.
///
/// ```
/// use clap::Parser;
/// use orchflow_cli::{Cli, Command, RunsCommand};
/// let cli = Cli::try_parse_from(["orchflow", "--store", "runs.db", "runs", "list", "--limit", "5"]).unwrap();
/// assert_eq!(cli.store.as_deref(), Some("runs.db"));
/// assert!(matches!(cli.command, Command::Runs { command: RunsCommand::List(ref a) } if a.limit == Some(5)));
/// ```
#[derive(Debug, Parser)]
#[command(
    name = "orchflow",
    version,
    about = "Inspect, operate and watch orchflow's durable runs",
    long_about = None
)]
pub struct Cli {
    /// The checkpoint store: sqlite:PATH (or PATH.db), json:DIR (or a directory), or
    /// postgres://…
    #[arg(long, global = true, env = "ORCHFLOW_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, inspect and operate on runs.
    Runs {
        /// The runs command.
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Start the browser viewer (127.0.0.1:7878 by default).
    Serve(ServeArgs),
    /// Replay recorded runs against this build's flows, running no step.
    ///
    /// First the fingerprint check of every unfinished run, then, per run, compatible or the
    /// first divergence with its path. Exits 1 when a run is not compatible.
    Replay(ReplayArgs),
}

/// `orchflow runs …`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// Show a run: its document, the timeline of every attempt, its pending questions.
    Show(ShowArgs),
    /// Answer a question of a suspended run; the run is queued for a worker.
    Answer(AnswerArgs),
    /// Queue a failed, cancelled or answered run for a worker to continue.
    Resume(RunArg),
    /// Cancel a run: it is never run again.
    Cancel(RunArg),
    /// Write a run as one self-contained JSON bundle (document, journal with traces, graph).
    Export(ExportArgs),
    /// Fork a run from one of its step calls, with an edited input if given.
    ///
    /// The new run reuses the recorded results before that call and runs the rest on this
    /// build; both runs record the lineage.
    Fork(ForkArgs),
}

/// `runs list` arguments.
#[derive(Debug, Args, Default)]
pub struct ListArgs {
    /// Only runs of this flow.
    #[arg(long)]
    pub flow: Option<String>,
    /// Only runs with this status (queued, running, suspended, completed, failed, cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs created at or after this time: RFC 3339 (2026-12-03T10:00:00Z) or a duration
    /// ago (90s, 15m, 2h, 3days).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many runs (default 50).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// The page after this cursor (printed at the end of the previous page).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Print JSON (as `GET /api/runs` returns it) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `runs show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id.
    pub id: String,
    /// Print JSON (document and every attempt) instead of the timeline.
    #[arg(long)]
    pub json: bool,
}

/// `runs answer` arguments.
#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The run's id.
    pub id: String,
    /// The question (`review`, `1/review`); needed when the run waits on more than one.
    #[arg(long, value_name = "Q")]
    pub question: Option<String>,
    /// The answer.
    pub value: String,
}

/// A run id argument.
#[derive(Debug, Args)]
pub struct RunArg {
    /// The run's id.
    pub id: String,
}

/// `runs export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run's id.
    pub id: String,
    /// Write the bundle to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `runs fork` arguments.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The run's id (or the start of it).
    pub id: String,
    /// The call to run again: STEP (its first call) or STEP@N (its N-th call, from 1).
    #[arg(long, value_name = "STEP[@N]")]
    pub from: String,
    /// The input that call is given instead of the recorded one, as JSON.
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// Print what the fork would reuse and run again, and write nothing.
    #[arg(long, conflicts_with = "queue")]
    pub preview: bool,
    /// Create the fork queued for a worker instead of running it here.
    #[arg(long)]
    pub queue: bool,
}

/// `serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on. A non-loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Require this token on every API request (Authorization: Bearer, or the cookie set by
    /// visiting /?token=T).
    #[arg(long, env = "ORCHFLOW_TOKEN", value_name = "T")]
    pub token: Option<String>,
    /// Show this exported bundle, with no store.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Open the viewer in the default browser once listening.
    #[arg(long)]
    pub open: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The arguments do not make a valid request (a bad run id, status, time or cursor).
    #[error("{0}")]
    Usage(String),
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The store failed while reading or writing.
    #[error(transparent)]
    Store(#[from] orchflow::store::StoreError),
    /// The operation was refused or failed (no such run, a run not waiting, …).
    #[error("{0}")]
    Failed(String),
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server could not start or stopped with an error.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// A bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// The command runs flows, and this binary has none.
    #[error(
        "`{command}` runs your flows' code, and this binary has none. Build your application's own binary that runs this command line with its flows (one `register` per flow):\n\n    fn main() -> std::process::ExitCode {{\n        let flows = orchflow::registry::Registry::new().register(my_flow());\n        orchflow_cli::App::new(flows).main()\n    }}\n\nthen run `<your binary> --store URL {command} …`"
    )]
    NoFlows {
        /// The command.
        command: &'static str,
    },
    /// A replay could not list or read the store, so it checked nothing (exit 2, unlike a
    /// run that is not compatible).
    #[error("the replay could not read the store: {0}")]
    ReplayStore(#[source] orchflow::store::StoreError),
    /// A replay found runs that are not compatible with this build.
    #[error("{failing} of {total} replayed runs are not compatible with this build")]
    Incompatible {
        /// How many runs diverge, cannot be replayed or cannot be read.
        failing: usize,
        /// How many runs were replayed.
        total: usize,
    },
}

impl CliError {
    /// The process exit code for this error: 2 for usage errors (arguments, a token the
    /// server refuses, a command that needs flows in a binary without), stores or bundles that
    /// cannot be opened and replays that could not list the store (nothing was checked); 1 for
    /// operations that failed and replays that found a run not compatible.
    ///
    /// ```
    /// use orchflow_cli::CliError;
    /// assert_eq!(CliError::Usage("bad".into()).exit_code(), 2);
    /// assert_eq!(CliError::Failed("no".into()).exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_)
            | CliError::Open(_)
            | CliError::NoFlows { .. }
            | CliError::ReplayStore(_) => 2,
            CliError::Serve(e) if e.is_usage() => 2,
            CliError::Bundle(_) => 2,
            _ => 1,
        }
    }
}

/// Runs the command `cli` describes with no flows (as the generic `orchflow` binary does),
/// printing to standard output. Fails with a [`CliError`] (see [`CliError::exit_code`]).
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    App::default().run(cli, &mut out, false).await
}

/// Opens the store `url` names; fails with [`OpenError::NoStore`] when there is none.
pub async fn open(url: Option<&str>) -> Result<Store, CliError> {
    match url {
        Some(url) => Ok(Store::open(url).await?),
        None => Err(OpenError::NoStore.into()),
    }
}

/// Reads a run id; fails with [`CliError::Usage`] naming the text.
///
/// ```
/// assert!(orchflow_cli::parse_run_id("not-a-uuid").is_err());
/// assert!(orchflow_cli::parse_run_id("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
/// ```
pub fn parse_run_id(text: &str) -> Result<orchflow::RunId, CliError> {
    text.trim()
        .parse()
        .map_err(|e| CliError::Usage(format!("{text:?} is not a run id: {e}")))
}
