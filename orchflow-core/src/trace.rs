//! Per-attempt traces.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

/// How an attempt ended.
///
/// ```
/// use orchflow::AttemptOutcome;
/// assert_eq!(serde_json::to_string(&AttemptOutcome::TimedOut).unwrap(), "\"timed_out\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The step returned its output.
    Succeeded,
    /// The step returned an error.
    Failed,
    /// The attempt ran past its timeout.
    TimedOut,
    /// The step panicked.
    Panicked,
    /// The attempt was cancelled because a sibling branch failed.
    Cancelled,
    /// The step asked a question and the run suspended until it is answered.
    Suspended,
}

/// The record of one attempt of one step. A step that ran three times leaves three traces.
///
/// `input` and `output` hold the values as JSON when the step's types are `Serialize` and value
/// capture is on ([`Flow::capture_values`](crate::Flow::capture_values)); otherwise `None`.
///
/// ```
/// use orchflow::{flow, step, AttemptOutcome};
///
/// #[step] async fn parse(s: String) -> Result<u32, std::num::ParseIntError> { s.parse() }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { parse }.capture_values(true).run("x".to_string()).await;
/// let t = &r.traces[0];
/// assert_eq!((t.step.as_ref(), t.attempt, t.outcome), ("parse", 1, AttemptOutcome::Failed));
/// assert_eq!(t.input, Some(serde_json::json!("x")));
/// assert_eq!(t.error.as_deref(), Some("invalid digit found in string"));
/// assert!(t.ended_at >= t.started_at);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// The step's name.
    pub step: Cow<'static, str>,
    /// The enclosing step when this step ran inside a nested flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Cow<'static, str>>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Shared by every branch of one parallel group in one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_group_id: Option<u32>,
    /// The input, as JSON, when captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// The output, as JSON, when captured and the attempt succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// The error's message when the attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How the attempt ended.
    pub outcome: AttemptOutcome,
    /// When the attempt started.
    pub started_at: SystemTime,
    /// When the attempt ended.
    pub ended_at: SystemTime,
    /// How long the attempt took.
    pub duration: Duration,
    /// Whether the attempt produced an output.
    pub success: bool,
}
