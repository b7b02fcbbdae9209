//! A step call of a run that replays or forks a recording: the run's replayer decides whether
//! the step runs (see [`crate::replay`]).

use super::Halt;
use super::core::Rt;
use crate::error::FlowError;
use crate::replay::serve::{Probe, Replayer, Serve};
use crate::step::{Feed, StepCall};
use crate::trace::{AttemptOutcome, Place, RawTrace, TraceDetail};
use std::sync::Arc;

impl Rt {
    /// The run's replayer, when it replays or forks a recording.
    #[inline(always)]
    pub(crate) fn replayer(&self) -> Option<&Arc<Replayer>> {
        self.core.replay.as_ref()
    }
}

/// The halt of a replay that stops (the replayer knows why).
fn stop() -> Halt {
    Halt::new(FlowError::ReplayStopped)
}

/// A call of `step` at `node` decided by `replayer`: answered from the recording, run (with an
/// edited input for a fork's call, compared with the recording when re-executed), parked, or
/// stopped. The decision is made by non-generic code ([`Replayer::serve`]) through a [`Probe`];
/// this shim holds the typed values and the one await of the step.
#[inline(never)]
pub(crate) async fn replayed<'a, St: StepCall>(
    rt: &'a Rt,
    replayer: &'a Arc<Replayer>,
    step: &'a St,
    input: Feed<'a, St::Input>,
    node: &'static crate::graph::StaticNode,
    iterations: Vec<u32>,
) -> Result<St::Output, Halt> {
    let parent = rt.parent;
    let mut probe = Typed {
        step,
        input: input.get(),
        output: None,
        edited: None,
    };
    let decided = replayer.serve(&mut probe, parent, rt.item(), node.0, &iterations);
    let Typed { output, edited, .. } = probe;
    let (feed, recorded) = match decided {
        Serve::Served => {
            return match output {
                Some(v) => {
                    reused(rt, step, node, &input, &v);
                    Ok(v)
                }
                None => Err(stop()),
            };
        }
        Serve::Live(true) => match edited {
            Some(i) => (Feed::Owned(i), None),
            None => return Err(stop()),
        },
        Serve::Live(false) => (input, None),
        Serve::Compare(recorded) => (input, Some(recorded)),
        Serve::Park => return std::future::pending().await,
        Serve::Stop => return Err(stop()),
    };
    let out = rt.step(step, node, feed).await;
    if let Some(recorded) = recorded {
        let json = out.as_ref().ok().map(|v| step.capture_output(v));
        let compared = json.map(|output| (&recorded, output));
        let compared = compared.as_ref().map(|(r, o)| (*r, o.clone()));
        if !replayer.ended(step.name(), compared, node.0, parent, &iterations) {
            return Err(stop());
        }
    }
    out
}

/// A step's call as the replayer sees it, keeping the values it reads back.
struct Typed<'a, St: StepCall> {
    step: &'a St,
    input: &'a St::Input,
    output: Option<St::Output>,
    edited: Option<St::Input>,
}

impl<St: StepCall> Probe for Typed<'_, St> {
    fn name(&self) -> &'static str {
        self.step.name()
    }

    fn input_json(&self) -> Option<serde_json::Value> {
        self.step.capture_input(self.input)
    }

    fn source(&self) -> Option<crate::replay::Source> {
        (!St::SOURCE.is_unknown()).then_some(St::SOURCE)
    }

    fn is_flow(&self) -> bool {
        self.step.graph().is_some()
    }

    fn keep_output(&mut self, json: serde_json::Value) -> Option<Result<(), serde_json::Error>> {
        let read = self.step.restore_output(self.input, json)?;
        Some(read.map(|v| self.output = Some(v)))
    }

    fn keep_input(&mut self, json: serde_json::Value) -> Option<Result<(), serde_json::Error>> {
        let read = self.step.restore_input(json)?;
        Some(read.map(|v| self.edited = Some(v)))
    }
}

/// Records a call answered from the recording as an attempt that did not run
/// ([`AttemptOutcome::Reused`]), with the call's input and the recorded output, so that a
/// fork's own record shows every call its output depends on.
fn reused<St: StepCall>(
    rt: &Rt,
    step: &St,
    node: &'static crate::graph::StaticNode,
    input: &Feed<'_, St::Input>,
    output: &St::Output,
) {
    let core = &*rt.core;
    if !core.traces_on {
        return;
    }
    let at = core.now_ns();
    let detail = TraceDetail {
        input: step.capture_input(input.get()),
        output: step.capture_output(output),
        error: None,
    };
    core.push_trace(RawTrace {
        step: step.name(),
        node,
        parent: rt.parent,
        attempt: 1,
        place: Place::new(rt.group, rt.item()),
        outcome: AttemptOutcome::Reused,
        started: at,
        took: 0,
        detail: Some(Box::new(detail)),
    });
}
