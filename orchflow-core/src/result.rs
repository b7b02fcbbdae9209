//! What a run returns: [`FlowResult`], the [`FlowFailed`] error that carries one, and the
//! result's JSON form.

use crate::context::RunId;
use crate::error::FlowError;
use crate::store::PendingInput;
use crate::trace::{StepTrace, Traces};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The outcome of one run: the output (or the error and the step that failed), every attempt's
/// trace, the final shared state, and timing.
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn check(x: i32) -> Result<i32, std::io::Error> {
///     if x < 0 { Err(std::io::Error::other("negative")) } else { Ok(x) }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { check }.run(-1).await;
/// assert!(!r.success);
/// assert_eq!(r.output, None);
/// assert_eq!(r.failed_step.as_deref(), Some("check"));
/// assert_eq!(r.traces_of("check").count(), 1);
/// assert!(r.into_result().is_err());
/// # }
/// ```
#[derive(Debug)]
pub struct FlowResult<O, S> {
    /// The run's id.
    pub run_id: RunId,
    /// The flow's name.
    pub flow: &'static str,
    /// The output, when the run succeeded.
    pub output: Option<O>,
    /// Whether the run produced an output.
    pub success: bool,
    /// The step that failed, if one did.
    pub failed_step: Option<Cow<'static, str>>,
    /// Why the run failed.
    pub error: Option<FlowError>,
    /// The questions a suspended run waits on (see [`Durable::answer`](crate::Durable::answer)); empty unless it is
    /// suspended.
    pub suspended: Vec<PendingInput>,
    /// Where a resumed run continued from: the resumable point it loaded (a variant of the
    /// flow's generated state, such as `AfterPlan` or `Inner3AfterAct`), or `start` when its
    /// checkpoint held no point yet. `None` for a run that started fresh.
    pub resumed_from: Option<&'static str>,
    /// Which session of the run produced this result: 1 for a run's start, one more for each
    /// resume (traces carry their session too, see [`StepTrace::session`]).
    pub session: u32,
    /// One trace per attempt of every step, in the order attempts ended.
    pub traces: Traces,
    /// The run's shared state after the run.
    pub state: Arc<S>,
    /// When the run started.
    pub started_at: SystemTime,
    /// How long the run took.
    pub duration: Duration,
}

impl<O, S> FlowResult<O, S> {
    /// Whether the run stopped to wait for answers to [`suspended`](Self::suspended).
    pub fn is_suspended(&self) -> bool {
        !self.suspended.is_empty()
    }

    /// `Ok(self)` on success, else the [`FlowFailed`] error carrying `self`.
    pub fn into_result(self) -> Result<Self, FlowFailed<O, S>> {
        if self.success {
            Ok(self)
        } else {
            Err(FlowFailed {
                result: Box::new(self),
            })
        }
    }

    /// The traces of one step, in order.
    pub fn traces_of<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a StepTrace> + 'a {
        self.traces.iter().filter(move |t| t.step == step)
    }
}

/// A result as JSON (the shape is public; see the README's "Results, traces and events as
/// JSON"): `run_id`, `flow`, `success`, `output` (the output's own JSON, or `null`),
/// `failed_step`, `error` (the error's message), `suspended` (the pending questions),
/// `resumed_from`, `session`, `started_at` (RFC 3339), `duration` (seconds) and `traces`. Absent
/// values are `null`, never left out. The shared state is not part of it (it is often not
/// serialisable).
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn double(x: u32) -> u32 { x * 2 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { double }.run(21).await;
/// let json = serde_json::to_value(&r).unwrap();
/// assert_eq!(json["output"], 42);
/// assert_eq!(json["error"], serde_json::Value::Null);
/// assert_eq!(json["traces"][0]["parallel_group_id"], serde_json::Value::Null);
/// assert!(json["started_at"].as_str().unwrap().ends_with('Z'));
/// # }
/// ```
impl<O: Serialize, S> Serialize for FlowResult<O, S> {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("FlowResult", 12)?;
        m.serialize_field("run_id", &self.run_id)?;
        m.serialize_field("flow", self.flow)?;
        m.serialize_field("success", &self.success)?;
        m.serialize_field("output", &self.output)?;
        m.serialize_field("failed_step", &self.failed_step)?;
        m.serialize_field("error", &self.error.as_ref().map(ToString::to_string))?;
        m.serialize_field("suspended", &self.suspended)?;
        m.serialize_field("resumed_from", &self.resumed_from)?;
        m.serialize_field("session", &self.session)?;
        m.serialize_field("started_at", &crate::json::rfc3339(self.started_at))?;
        m.serialize_field("duration", &self.duration.as_secs_f64())?;
        m.serialize_field("traces", &self.traces)?;
        m.end()
    }
}

/// A failed run as an error; `result` holds everything the run produced (see
/// [`Flow::try_run`](crate::Flow::try_run)).
pub struct FlowFailed<O, S> {
    /// The partial result: traces, state, the failed step and its error.
    pub result: Box<FlowResult<O, S>>,
}

impl<O, S> std::fmt::Debug for FlowFailed<O, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowFailed")
            .field("flow", &self.result.flow)
            .field("run_id", &self.result.run_id)
            .field("error", &self.result.error)
            .finish_non_exhaustive()
    }
}

impl<O, S> std::fmt::Display for FlowFailed<O, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result.error {
            Some(e) => write!(f, "flow `{}` failed: {e}", self.result.flow),
            None => write!(f, "flow `{}` failed", self.result.flow),
        }
    }
}

impl<O, S> std::error::Error for FlowFailed<O, S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.result.error.as_ref().map(|e| e as _)
    }
}
