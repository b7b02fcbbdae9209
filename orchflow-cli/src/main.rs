//! The generic `orchflow` binary: the command line with no flows ([`orchflow_cli::App`]). It
//! exits with 0 on success, 1 when the operation failed and 2 for a usage error or a store that
//! cannot be opened; `replay` and `runs fork` need an application's own binary and say how to
//! build one.

use std::process::ExitCode;

fn main() -> ExitCode {
    orchflow_cli::App::new(orchflow::registry::Registry::new()).main()
}
