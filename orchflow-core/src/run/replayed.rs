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

/// What a replayed call does instead of, or after, running its step. Boxed in the step's
/// future, so that a run that does not replay carries one null pointer for it.
pub(crate) enum Replayed<O> {
    /// Done without running: the recorded output, or the run stops.
    Done(Result<O, Halt>),
    /// Never complete (nothing is recorded for the call; a check goes on with other calls).
    Park,
    /// Run, then compare the output with the recorded one (a re-executed pure step).
    Compare {
        recorded: serde_json::Value,
        parent: Option<&'static str>,
        iterations: Vec<u32>,
    },
}

/// A call's decision as the step's future holds it: `None` for a call that just runs.
pub(crate) type Decision<O> = Option<Box<Replayed<O>>>;

/// What the step future does before its attempts: finish now, never finish, or run.
pub(crate) enum Early<O> {
    Done(Result<O, Halt>),
    Park,
}

impl<O> Replayed<O> {
    /// Takes the decision out of `slot` when the step does not run (`Done`, `Park`); leaves a
    /// comparison in place for [`Replayed::compared`].
    pub(crate) fn early(slot: &mut Decision<O>) -> Option<Early<O>> {
        let early = slot.take_if(|r| !matches!(**r, Replayed::Compare { .. }))?;
        match *early {
            Replayed::Done(v) => Some(Early::Done(v)),
            Replayed::Park => Some(Early::Park),
            Replayed::Compare { .. } => None,
        }
    }

    /// The output of a call that ran, after the comparison of a re-executed step with its
    /// recorded output (a difference stops the run).
    pub(crate) fn compared<St: StepCall<Output = O>>(
        self,
        rt: &Rt,
        step: &St,
        node: &'static crate::graph::StaticNode,
        out: Result<O, Halt>,
    ) -> Result<O, Halt> {
        let (
            Replayed::Compare {
                recorded,
                parent,
                iterations,
            },
            Some(replayer),
        ) = (self, rt.replayer())
        else {
            return out;
        };
        let json = out.as_ref().ok().map(|v| step.capture_output(v));
        let compared = json.map(|output| (&recorded, output));
        if !replayer.ended(step.name(), compared, node.0, parent, &iterations) {
            return Err(stop());
        }
        out
    }
}

/// How `replayer` decides a call of `step` at `node`: answered from the recording, run (with an
/// edited input for a fork's call, compared with the recording when re-executed), parked, or
/// stopped. Made when the step's future is made, by non-generic code ([`Replayer::serve`])
/// through a [`Probe`]; this shim holds the typed values. Returns the input to run with, and
/// what to do instead of or after running (`None`: just run).
#[inline(never)]
pub(crate) fn decide<'a, St: StepCall>(
    rt: &Rt,
    replayer: &Replayer,
    step: &St,
    node: &'static crate::graph::StaticNode,
    input: Feed<'a, St::Input>,
    iterations: &[u32],
) -> (Feed<'a, St::Input>, Decision<St::Output>) {
    let parent = rt.parent;
    let mut probe = Typed {
        step,
        input: input.get(),
        output: None,
        edited: None,
    };
    let decided = replayer.serve(&mut probe, parent, rt.item(), node.0, iterations);
    let Typed { output, edited, .. } = probe;
    match decided {
        Serve::Served => match output {
            Some(v) => {
                reused(rt, step, node, &input, &v);
                (input, Some(Box::new(Replayed::Done(Ok(v)))))
            }
            None => (input, Some(Box::new(Replayed::Done(Err(stop()))))),
        },
        Serve::Live(true) => match edited {
            Some(i) => (Feed::Owned(i), None),
            None => (input, Some(Box::new(Replayed::Done(Err(stop()))))),
        },
        Serve::Live(false) => (input, None),
        Serve::Compare(recorded) => (
            input,
            Some(Box::new(Replayed::Compare {
                recorded,
                parent,
                iterations: iterations.to_vec(),
            })),
        ),
        Serve::Park => (input, Some(Box::new(Replayed::Park))),
        Serve::Stop => (input, Some(Box::new(Replayed::Done(Err(stop()))))),
    }
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
