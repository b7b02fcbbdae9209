//! Errors of steps and flows.

use std::borrow::Cow;
use std::time::Duration;

/// A boxed error as returned by a failing step.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why one step failed for good (after its retries).
///
/// ```
/// use orchflow_core::StepError;
/// use std::time::Duration;
/// let e = StepError::TimedOut(Duration::from_millis(50));
/// assert_eq!(e.to_string(), "attempt timed out after 50ms");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The step returned an error.
    #[error("{0}")]
    Failed(#[source] BoxError),
    /// The attempt ran past the step's timeout.
    #[error("attempt timed out after {0:?}")]
    TimedOut(Duration),
    /// The step panicked; the payload's message is kept.
    #[error("step panicked: {0}")]
    Panicked(String),
    /// A sibling in the same parallel group failed first and this branch was cancelled.
    #[error("cancelled because a sibling branch failed")]
    Cancelled,
}

impl StepError {
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        StepError::Panicked(msg)
    }
}

/// Why a flow run stopped without an output.
///
/// ```
/// use orchflow_core::{FlowError, StepError};
/// let e = FlowError::Step {
///     step: "plan".into(),
///     attempts: 3,
///     source: StepError::Panicked("boom".into()),
/// };
/// assert_eq!(e.to_string(), "step `plan` failed after 3 attempt(s): step panicked: boom");
/// assert_eq!(e.step(), Some("plan"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A step failed after all its attempts.
    #[error("step `{step}` failed after {attempts} attempt(s): {source}")]
    Step {
        /// The step's name.
        step: Cow<'static, str>,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: StepError,
    },
    /// Human-input steps suspended the run; resume it with the answers.
    #[error("waiting for {}", crate::error::questions(questions))]
    Suspended {
        /// The questions asked, in the order they were asked (at least one).
        questions: Vec<crate::store::PendingInput>,
    },
    /// Saving a checkpoint failed; the run stopped rather than go on without it.
    #[error("checkpoint failed: {0}")]
    Checkpoint(#[from] crate::store::StoreError),
    /// A replay ([`Durable::replay`](crate::Durable::replay)) or a fork's preview stopped the
    /// run: at the first divergence from the recording, or where the recording has nothing
    /// more. Its report says which.
    #[error("the replay stopped")]
    ReplayStopped,
    /// A branch predicate (`if pred { … }`) or loop predicate panicked.
    #[error("predicate `{predicate}` panicked: {message}")]
    PredicatePanicked {
        /// Where the predicate sits (`if` or `until`).
        predicate: &'static str,
        /// The panic message.
        message: String,
    },
}

impl FlowError {
    /// The name of the step that failed, if a step failed.
    pub fn step(&self) -> Option<&str> {
        match self {
            FlowError::Step { step, .. } => Some(step),
            FlowError::Suspended { questions } => questions.first().map(|q| q.step.as_str()),
            FlowError::PredicatePanicked { .. }
            | FlowError::Checkpoint(_)
            | FlowError::ReplayStopped => None,
        }
    }
}

/// `an answer to `q`: prompt` for each question, joined.
fn questions(questions: &[crate::store::PendingInput]) -> String {
    let all: Vec<String> = questions
        .iter()
        .map(|q| format!("an answer to `{}`: {}", q.question, q.prompt))
        .collect();
    all.join("; ")
}
