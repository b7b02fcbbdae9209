//! Where the sandbox cannot run (not Linux): every call says so.

use super::Config;
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
    Err(ToolError::Unavailable {
        reason: format!(
            "the Python sandbox needs Linux (process limits, network namespaces, seccomp); \
             this build is for {}",
            std::env::consts::OS
        ),
    })
}
