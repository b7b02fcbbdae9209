//! Where the sandbox cannot run (not Linux): every call says so.

use super::{Config, SandboxStatus};
use crate::tools::{ToolError, ToolOutput};

/// Nothing is found out about a host the sandbox does not support.
#[derive(Debug, Clone)]
pub(super) enum Host {}

/// Refuses the call: the sandbox's kernel layer needs Linux.
pub(super) async fn run(
    _config: &Config,
    _host: &tokio::sync::OnceCell<Result<Host, ToolError>>,
    _code: &str,
) -> Result<ToolOutput, ToolError> {
    Err(unsupported())
}

/// There is nothing to report: the sandbox does not run here.
pub(super) async fn status(
    _config: &Config,
    _host: &tokio::sync::OnceCell<Result<Host, ToolError>>,
) -> Result<SandboxStatus, ToolError> {
    Err(unsupported())
}

fn unsupported() -> ToolError {
    ToolError::Unavailable {
        reason: format!(
            "the Python sandbox needs Linux (Landlock, namespaces, seccomp, process limits); \
             this build is for {}",
            std::env::consts::OS
        ),
    }
}
