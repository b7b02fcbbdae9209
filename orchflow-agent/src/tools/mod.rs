//! Tools the executor dispatches to, behind one trait.
//!
//! A tool has a name, a description for the planner's prompt, a JSON schema of its input, and an
//! async `call`. A failing tool returns a [`ToolError`]: the agent records it in its memory and
//! goes on; a tool never fails the run.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a tool produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// The text the agent sees.
    pub content: String,
    /// Structured data (search hits, exit status…), when the tool has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl ToolOutput {
    /// Text only.
    pub fn text(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            data: None,
        }
    }
}

/// Why a tool call failed. Serialisable: it is part of a trajectory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolError {
    /// The input does not match the tool's schema.
    #[error("invalid input for tool `{tool}`: {reason}")]
    InvalidInput {
        /// The tool.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// No tool of that name.
    #[error("no tool named `{tool}`")]
    UnknownTool {
        /// The name asked for.
        tool: String,
    },
    /// The tool refused the input before running it (e.g. a forbidden import).
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The tool ran past its wall-clock or CPU-time limit and was stopped.
    #[error("stopped after {limit_ms} ms: {what} limit exceeded")]
    TimedOut {
        /// `wall time` or `CPU time`.
        what: String,
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The tool hit a resource limit (memory, output size, processes) and was stopped.
    #[error("stopped: {what} limit exceeded ({detail})")]
    LimitExceeded {
        /// Which limit.
        what: String,
        /// Details (the limit's value, what was seen).
        detail: String,
    },
    /// The tool ran and failed (a Python exception, an HTTP error from a search API…).
    #[error("{message}")]
    Failed {
        /// The error as the agent should see it.
        message: String,
    },
    /// The tool could not be run at all (no interpreter, no network, no API key…).
    #[error("tool unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl ToolError {
    /// A short, stable name of the variant (`timed_out`, `refused`…), for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidInput { .. } => "invalid_input",
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::Refused { .. } => "refused",
            ToolError::TimedOut { .. } => "timed_out",
            ToolError::LimitExceeded { .. } => "limit_exceeded",
            ToolError::Failed { .. } => "failed",
            ToolError::Unavailable { .. } => "unavailable",
        }
    }

    /// A timeout error for `limit`.
    pub fn timed_out(what: &str, limit: Duration) -> Self {
        ToolError::TimedOut {
            what: what.to_string(),
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What kind of JSON value `v` is, for messages about a tool's input ("a number").
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The boxed future of a [`Tool`] call.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// A tool the executor can call.
pub trait Tool: Send + Sync {
    /// The name the planner uses (`code`, `search`).
    fn name(&self) -> &str;
    /// One or two sentences for the planner's prompt.
    fn description(&self) -> &str;
    /// The JSON schema of the input.
    fn input_schema(&self) -> serde_json::Value;
    /// Runs the tool. Never panics; every failure is a [`ToolError`].
    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a>;
}

impl<T: Tool + ?Sized> Tool for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn description(&self) -> &str {
        (**self).description()
    }
    fn input_schema(&self) -> serde_json::Value {
        (**self).input_schema()
    }
    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a> {
        (**self).call(input)
    }
}

pub mod code;
pub mod search;

pub use code::{
    DEFAULT_ALLOWED_MODULES, DEFAULT_DENIED_MODULES, PythonSandbox, PythonSandboxBuilder, RunAs,
    SandboxLimits, SandboxStatus,
};
pub use search::{LocalSearch, TavilySearch};
