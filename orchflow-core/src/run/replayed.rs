//! A step call of a run that replays or forks a recording: the run's replayer decides whether
//! the step runs (see [`crate::replay`]).

use super::Halt;
use super::core::Rt;
use crate::error::FlowError;
use crate::replay::serve::{Replayer, Serve};
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
/// stopped.
pub(crate) async fn replayed<'a, St: StepCall>(
    rt: &'a Rt,
    replayer: &'a Arc<Replayer>,
    step: &'a St,
    input: Feed<'a, St::Input>,
    node: &'static crate::graph::StaticNode,
    iterations: Vec<u32>,
) -> Result<St::Output, Halt> {
    let parent = rt.parent;
    let item = rt.item();
    let decided = replayer.serve(step, parent, item, node.0, &iterations, input.get());
    match decided {
        Serve::Served(v) => {
            reused(rt, step, node, &input, &v);
            Ok(v)
        }
        Serve::Live(None) => rt.step(step, node, input).await,
        Serve::Live(Some(edited)) => rt.step(step, node, Feed::Owned(edited)).await,
        Serve::Compare(recorded) => {
            let out = rt.step(step, node, input).await;
            let json = out.as_ref().ok().map(|v| step.capture_output(v));
            let goes_on = match &json {
                Some(output) => replayer.ended(
                    step,
                    Some((&recorded, output.clone())),
                    node.0,
                    parent,
                    &iterations,
                ),
                None => replayer.ended(step, None, node.0, parent, &iterations),
            };
            if !goes_on {
                return Err(stop());
            }
            out
        }
        Serve::Park => std::future::pending().await,
        Serve::Stop => Err(stop()),
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
