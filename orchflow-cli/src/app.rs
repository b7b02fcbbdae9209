//! [`App`]: the whole command line with a build's flows, for an application's own binary.
//!
//! The generic `orchflow` binary is an [`App`] with no flows: it lists, shows, answers and
//! serves runs of any flow, but cannot replay or fork them, because both run the flow's code.
//! An application that registers its flows ([`Registry`]) gets `replay`, `runs fork` and the
//! viewer's Replay and Fork buttons for them.
//!
//! Invariants: every command runs through [`App::run`]; [`App::main`] and
//! [`App::run_captured`] differ only in where they print, so that tests see what users see;
//! the exit code is always [`CliError::exit_code`] (0 success, 1 the operation failed or a
//! replay found a run that is not compatible, 2 a usage error or a store that cannot be
//! opened).

use crate::{Cli, CliError, Command};
use clap::Parser;
use orchflow::registry::Registry;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// The `orchflow` command line with the flows of a build.
///
/// An application's binary that runs the CLI with its flows, so that `replay` and `runs fork`
/// can run their code:
///
/// ```no_run
/// use orchflow::registry::Registry;
/// use orchflow::{flow, step};
/// use std::process::ExitCode;
///
/// #[step] async fn plan(topic: String) -> String { format!("plan for {topic}") }
/// #[step] async fn draft(plan: String) -> String { format!("draft of {plan}") }
///
/// fn main() -> ExitCode {
///     let launch = flow! { #[flow(name = "launch")] plan => draft };
///     orchflow_cli::App::new(Registry::new().register(launch)).main()
/// }
/// ```
///
/// Then `my-app --store runs.db replay` replays the recorded runs of `launch` against this
/// build, and `my-app --store runs.db runs fork RUN --from draft --input '"v2"'` forks one.
///
/// In a test, [`run_captured`](Self::run_captured) runs a command line in the process and
/// returns what it printed:
///
/// ```
/// use orchflow::registry::Registry;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let out = orchflow_cli::App::new(Registry::new()).run_captured(["orchflow", "replay"]).await;
/// assert_eq!(out.code, 2);
/// assert!(out.stderr.contains("orchflow_cli::App::new(flows).main()"), "{}", out.stderr);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct App {
    flows: Registry,
}

/// What a command printed and its exit code ([`App::run_captured`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The exit code the binary would exit with.
    pub code: i32,
    /// What it printed to standard output.
    pub stdout: String,
    /// What it printed to standard error.
    pub stderr: String,
}

impl App {
    /// The command line with the flows of `flows` (an empty registry gives the generic
    /// `orchflow` binary, whose `replay` and `runs fork` say how to build an app binary).
    pub fn new(flows: Registry) -> App {
        App { flows }
    }

    /// The build's flows.
    pub fn flows(&self) -> &Registry {
        &self.flows
    }

    /// Runs the process's command line and returns its exit code: parses the arguments (help
    /// and version exit 0, bad arguments 2 with clap's message), runs the command on a
    /// two-thread runtime, prints an error with its causes on standard error. A closed
    /// standard output (`… | head`) is not a failure.
    pub fn main(self) -> ExitCode {
        let cli = Cli::try_parse().unwrap_or_else(|e| e.exit());
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "orchflow: cannot start the async runtime: {e}"
                );
                return ExitCode::from(1);
            }
        };
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let result = runtime.block_on(async {
            let mut out = std::io::stdout().lock();
            self.run(cli, &mut out, color).await
        });
        let code = match result {
            Ok(()) => 0,
            Err(e) => {
                let mut err = std::io::stderr().lock();
                exit_code_of(&e, &mut err)
            }
        };
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    }

    /// Runs the command line `args` (the first is the program's name) in this process, and
    /// returns its exit code with what it printed (no colour). Commands that never end
    /// (`serve`) never return.
    pub async fn run_captured<I, T>(&self, args: I) -> Captured
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let code = match Cli::try_parse_from(args) {
            Ok(cli) => match self.run(cli, &mut stdout, false).await {
                Ok(()) => 0,
                Err(e) => exit_code_of(&e, &mut stderr),
            },
            Err(e) => {
                let text = e.render().to_string();
                if e.use_stderr() {
                    stderr.extend_from_slice(text.as_bytes());
                } else {
                    stdout.extend_from_slice(text.as_bytes());
                }
                e.exit_code()
            }
        };
        Captured {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs the command `cli` describes, printing to `out` (with ANSI colour when `color`).
    /// Fails with a [`CliError`] (see [`CliError::exit_code`]); what the command printed
    /// before failing stays printed (a replay's report, then the failure).
    pub async fn run(&self, cli: Cli, out: &mut dyn Write, color: bool) -> Result<(), CliError> {
        match cli.command {
            Command::Runs { command } => {
                if let crate::RunsCommand::Fork(_) = &command {
                    self.need_flows("runs fork")?;
                }
                let store = crate::open(cli.store.as_deref()).await?;
                let result = crate::runs::run(&store, &self.flows, command, out, color).await;
                // Commit what this process wrote before exiting, even when the command failed.
                let flushed = store.flush().await;
                result?;
                flushed?;
                Ok(())
            }
            Command::Replay(args) => {
                self.need_flows("replay")?;
                let store = crate::open(cli.store.as_deref()).await?;
                crate::replay::run(&store, &self.flows, &args, out).await
            }
            Command::Serve(args) => {
                crate::serve::serve_command(cli.store.as_deref(), args, self.flows.clone()).await
            }
        }
    }

    /// Fails with [`CliError::NoFlows`] when the build has no flows.
    fn need_flows(&self, command: &'static str) -> Result<(), CliError> {
        if self.flows.is_empty() {
            Err(CliError::NoFlows { command })
        } else {
            Ok(())
        }
    }
}

/// Prints `e` with its causes to `err` (unless it is a closed standard output) and returns the
/// exit code.
fn exit_code_of(e: &CliError, err: &mut dyn Write) -> i32 {
    // The reader of the output went away (`orchflow runs list | head`): not a failure.
    if let CliError::Io { source, .. } = e
        && source.kind() == std::io::ErrorKind::BrokenPipe
    {
        return 0;
    }
    // Written with `writeln!`: `eprintln!` panics when standard error is closed.
    let _ = writeln!(err, "orchflow: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !e.to_string().contains(&text) {
            let _ = writeln!(err, "  caused by: {text}");
        }
        source = cause.source();
    }
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_generic_binary_cannot_replay_or_fork_and_says_how_to_build_one() {
        let app = App::new(Registry::new());
        for args in [
            &["orchflow", "--store", "x.db", "replay"][..],
            &[
                "orchflow", "--store", "x.db", "runs", "fork", "abcd", "--from", "plan",
            ],
        ] {
            let out = app.run_captured(args).await;
            assert_eq!(out.code, 2, "{args:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{out:?}");
            assert!(
                out.stderr.contains("orchflow_cli::App::new(flows).main()"),
                "{}",
                out.stderr
            );
        }
    }

    #[tokio::test]
    async fn help_goes_to_stdout_with_0_and_bad_arguments_to_stderr_with_2() {
        let app = App::new(Registry::new());
        let help = app.run_captured(["orchflow", "--help"]).await;
        assert_eq!(help.code, 0);
        assert!(help.stdout.contains("replay"), "{}", help.stdout);
        let bad = app.run_captured(["orchflow", "runs", "frobnicate"]).await;
        assert_eq!(bad.code, 2);
        assert!(bad.stderr.contains("frobnicate"), "{}", bad.stderr);
        let no_store = app.run_captured(["orchflow", "runs", "list"]).await;
        assert_eq!(no_store.code, 2);
        assert!(no_store.stderr.contains("no store given"), "{no_store:?}");
    }
}
