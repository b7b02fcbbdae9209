//! One attempt of a step: its context, its future raced against its timeout with its panics
//! contained, its trace and its events. The hot path: see the [module docs](super).

use super::core::{NO_TIME, Rt, RunCore};
use super::retry::{suspension, worth_retrying};
use crate::context::{RunView, StepContext};
use crate::error::StepError;
use crate::event::RunEvent;
use crate::step::bounds::{StateOf, StateReq, StepFailure};
use crate::step::{Feed, StepCall};
use crate::trace::{AttemptOutcome, Place, RawTrace, TraceDetail};
use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

/// How one attempt failed, before it is boxed into a [`StepError`].
pub(crate) enum Failure<E> {
    Error(E),
    TimedOut(Duration),
    Panicked(String),
}

impl<E: StepFailure> Failure<E> {
    pub(crate) fn outcome(&self) -> AttemptOutcome {
        match self {
            Failure::Error(_) => AttemptOutcome::Failed,
            Failure::TimedOut(_) => AttemptOutcome::TimedOut,
            Failure::Panicked(_) => AttemptOutcome::Panicked,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Error(e) => e.message(),
            Failure::TimedOut(d) => StepError::TimedOut(*d).to_string(),
            Failure::Panicked(m) => format!("step panicked: {m}"),
        }
    }

    pub(crate) fn into_step_error(self) -> StepError {
        match self {
            Failure::Error(e) => StepError::Failed(e.into_box()),
            Failure::TimedOut(d) => StepError::TimedOut(d),
            Failure::Panicked(m) => StepError::Panicked(m),
        }
    }
}

/// Polls a step's future once, a panic becoming a failed attempt.
#[inline]
pub(crate) fn contained_poll<T, E>(
    fut: std::pin::Pin<&mut impl Future<Output = Result<T, E>>>,
    cx: &mut std::task::Context<'_>,
) -> Poll<Result<T, Failure<E>>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(Ok(v))) => Poll::Ready(Ok(v)),
        Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Failure::Error(e))),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(Failure::Panicked(panic_message(payload)))),
    }
}

/// One attempt's future as it is polled: the step's future with its panics contained, raced
/// against the attempt's timeout, inside the attempt's span. A future of its own (rather than
/// `poll_fn`) so that its poll is always inlined into the attempt, and its result never goes
/// through memory.
struct Racing<'a, F> {
    core: &'a RunCore,
    fut: std::pin::Pin<&'a mut F>,
    /// The attempt's time limit and its timer. Boxed: a `Sleep` is large, and most steps have no
    /// timeout; keep the future small.
    timeout: Option<(Duration, std::pin::Pin<Box<tokio::time::Sleep>>)>,
    span: Option<&'a tracing::Span>,
}

impl<T, E, F: Future<Output = Result<T, E>>> Future for Racing<'_, F> {
    type Output = Result<T, Failure<E>>;

    #[inline(always)]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.map(|s| s.enter());
        if let Poll::Ready(r) = contained_poll(this.fut.as_mut(), cx) {
            return Poll::Ready(r);
        }
        if let Some((limit, sleep)) = this.timeout.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(Failure::TimedOut(*limit)));
        }
        // The step waits: whatever runs before it is polled again is not glue.
        this.core.interrupted();
        Poll::Pending
    }
}

/// What a caught panic says.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match StepError::from_panic(payload) {
        StepError::Panicked(m) => m,
        other => other.to_string(),
    }
}

/// Records a `Cancelled` trace if an attempt's future is dropped before it finishes (a sibling
/// branch failed, or the caller dropped the run).
struct CancelGuard<'a> {
    rt: &'a Rt,
    step: &'static str,
    node: &'static crate::graph::StaticNode,
    attempt: u32,
    /// Nanoseconds from the run's start to the attempt's.
    started: Option<u64>,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    // Every attempt drops one, almost always disarmed: the check inline, the trace out of line.
    #[inline]
    fn drop(&mut self) {
        if let (true, Some(started)) = (self.armed, self.started) {
            self.cancelled(started);
        }
    }
}

impl CancelGuard<'_> {
    #[cold]
    #[inline(never)]
    /// Records the attempt's trace as cancelled (its future was dropped before it finished).
    fn cancelled(&self, started: u64) {
        let core = &*self.rt.core;
        core.push_trace(RawTrace {
            step: self.step,
            node: self.node,
            parent: self.rt.parent,
            attempt: self.attempt,
            place: Place::new(self.rt.group, self.rt.item()),
            started,
            took: core.now_ns().saturating_sub(started),
            outcome: AttemptOutcome::Cancelled,
            detail: Some(Box::new(TraceDetail {
                input: None,
                output: None,
                error: Some(StepError::Cancelled.to_string()),
            })),
        });
    }
}

impl Rt {
    /// The context a step's attempt gets: the handle's idle one for steps that take none (no
    /// reference counting), else a fresh one with its name and attempt, stored in `fresh`.
    #[inline]
    fn context<'c, St: StepCall>(
        &'c self,
        step: &St,
        n: u32,
        fresh: &'c mut Option<StepContext<StateOf<St>>>,
    ) -> Result<&'c StepContext<StateOf<St>>, Failure<St::Error>> {
        if !step.uses_context()
            && let Some(idle) = (&self.idle as &dyn Any).downcast_ref::<StepContext<StateOf<St>>>()
        {
            return Ok(idle);
        }
        let name = step.name();
        let Some(state) = <St::Needs as StateReq>::resolve(&self.state, &self.core.unit) else {
            let message = format!("step `{name}` needs another shared state type than this run's");
            return Err(Failure::Panicked(message));
        };
        Ok(fresh.insert(StepContext {
            core: Arc::clone(&self.core) as Arc<dyn RunView>,
            state,
            step: name,
            attempt: n,
            group: self.group,
            item: self.item.load(std::sync::atomic::Ordering::Relaxed),
        }))
    }

    /// The one attempt of a step that nothing times, records, retries or watches: the call,
    /// with its panics contained.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn quiet_attempt<'a, St: StepCall>(
        &'a self,
        step: &'a St,
        input: Feed<'a, St::Input>,
    ) -> impl Future<Output = Result<St::Output, Failure<St::Error>>> + 'a {
        async move {
            let mut fresh = None;
            let ctx = self.context(step, 1, &mut fresh)?;
            let mut fut = pin!(step.call(input, ctx));
            poll_fn(|cx| contained_poll(fut.as_mut(), cx)).await
        }
    }

    /// One attempt: timeout, panic containment, trace, events. The hot path: no allocation,
    /// two clock reads when traces or events are on and none otherwise, spans only when a
    /// subscriber wants them. Like [`step`](Self::step), an `async` block rather than an
    /// `async fn`, so the future holds its arguments once.
    // Plain arguments rather than a struct: the future holds each once, and the node id is a
    // pointer and a length copied into the trace.
    #[allow(clippy::manual_async_fn, clippy::too_many_arguments)]
    pub(crate) fn attempt<'a, St: StepCall>(
        &'a self,
        step: &'a St,
        node: &'static crate::graph::StaticNode,
        input: Feed<'a, St::Input>,
        n: u32,
        max: u32,
        timeout: Option<Duration>,
        step_span: Option<&'a tracing::Span>,
    ) -> impl Future<Output = Result<St::Output, Failure<St::Error>>> + 'a {
        async move {
            let name = step.name();
            let core = &*self.core;
            let timed = core.traces_on || core.events.is_some();
            let started = if timed {
                Some(core.attempt_start_ns())
            } else {
                None
            };
            if let Some(at) = started {
                core.emit(|| RunEvent::StepStarted(self.step_event(name, node, n, at, None)));
            }
            // Boxed: held across the step's await, and rarely set.
            let captured_input = if core.capture {
                step.capture_input(input.get()).map(Box::new)
            } else {
                None
            };
            let mut fresh = None;
            let ctx = self.context(step, n, &mut fresh)?;
            // The guard holds the name and start time through the await (no second copy).
            let mut guard = CancelGuard {
                rt: self,
                step: name,
                node,
                attempt: n,
                started,
                armed: core.traces_on,
            };
            let attempt_span =
                step_span.map(|s| Box::new(tracing::info_span!(parent: s, "attempt", attempt = n)));
            let mut fut = pin!(step.call(input, ctx));
            let result = Racing {
                core,
                fut: fut.as_mut(),
                timeout: timeout.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
                span: attempt_span.as_deref(),
            }
            .await;
            guard.armed = false;
            let (name, core) = (guard.step, &*self.core);
            let Some(started) = guard.started else {
                return result;
            };
            let ended = core.now_ns();
            let took = ended.saturating_sub(started);
            // The output as JSON, for the trace and the completion event (value capture only).
            let output = match &result {
                // Only when a trace or an event will carry it.
                Ok(v) if core.capture && (core.traces_on || core.events.is_some()) => {
                    step.capture_output(v)
                }
                _ => None,
            };
            let event_output = if core.events.is_some() {
                output.clone()
            } else {
                None
            };
            let (outcome, detail) = if core.traces_on {
                let (outcome, error, output) = match &result {
                    Ok(_) => (AttemptOutcome::Succeeded, None, output),
                    Err(Failure::Error(e)) if step.suspension(e).is_some() => {
                        (AttemptOutcome::Suspended, Some(e.message()), None)
                    }
                    Err(f) => (f.outcome(), Some(f.message()), None),
                };
                let detail = if captured_input.is_some() || output.is_some() || error.is_some() {
                    Some(Box::new(TraceDetail {
                        input: captured_input.map(|b| *b),
                        output,
                        error,
                    }))
                } else {
                    None
                };
                (outcome, detail)
            } else {
                (AttemptOutcome::Succeeded, None)
            };
            let trace = || RawTrace {
                step: name,
                node,
                parent: self.parent,
                attempt: n,
                place: Place::new(self.group, self.item()),
                started,
                took,
                outcome,
                detail,
            };
            match &result {
                Ok(_) => core.attempt_ended(
                    true,
                    || {
                        let e = self.step_event(name, node, n, ended, Some(took));
                        RunEvent::StepCompleted(match event_output {
                            Some(output) => e.with_output(output),
                            None => e,
                        })
                    },
                    trace,
                ),
                Err(f) => {
                    // What a failure says (not a suspension: the run stops to wait, it did not
                    // fail).
                    let failed = match &core.events {
                        Some(_) if suspension(step, f).is_none() => {
                            Some((f.message(), n < max && worth_retrying(step, f)))
                        }
                        _ => None,
                    };
                    let has_event = failed.is_some();
                    let event = || {
                        let (error, will_retry) = failed.unwrap_or_default();
                        let e = self.step_event(name, node, n, ended, Some(took));
                        RunEvent::StepFailed(e.with_detail(Some(error), will_retry, None))
                    };
                    core.attempt_ended(has_event, event, trace);
                }
            }
            // The next attempt may start where this one ended, when it succeeded (a failure
            // is followed by its retry's delay, or by nothing) and its output was not captured
            // (that serialisation is not glue).
            let end = if result.is_ok() && !core.capture {
                ended
            } else {
                NO_TIME
            };
            core.last_end.store(end, Ordering::Relaxed);
            result
        }
    }
}
