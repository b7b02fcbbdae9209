//! The `orchflow` binary: parses the command line, runs it ([`orchflow_cli::run`]), and exits
//! with 0 on success, 1 when the operation failed and 2 for a usage error or a store that
//! cannot be opened.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Help and version exit 0; other argument errors exit 2 with clap's message.
    let cli = orchflow_cli::Cli::try_parse().unwrap_or_else(|e| e.exit());
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
    match runtime.block_on(orchflow_cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`orchflow runs list | head`): not a failure.
        Err(orchflow_cli::CliError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Written with `writeln!`: `eprintln!` panics when standard error is closed.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "orchflow: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !e.to_string().contains(&text) {
                    let _ = writeln!(err, "  caused by: {text}");
                }
                source = cause.source();
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
