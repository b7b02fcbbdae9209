//! The per-run machinery the generated drivers call: attempts, retries, traces, events.

use crate::context::{RunId, StepContext};
use crate::error::{FlowError, StepError};
use crate::event::{EventQueue, RunEvent, StepEvent};
use crate::policy::{FlowDefaults, RetryPolicy};
use crate::step::{Feed, StateReq, StepCall, StepFailure};
use crate::trace::{AttemptOutcome, StepTrace};
use std::any::Any;
use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// What every step of one run shares: identity, the original input, traces and the event queue.
pub(crate) struct RunCore {
    pub(crate) run_id: RunId,
    pub(crate) flow_name: &'static str,
    pub(crate) input: Arc<dyn Any + Send + Sync>,
    pub(crate) capture: bool,
    started: Instant,
    started_at: SystemTime,
    traces: Mutex<Vec<StepTrace>>,
    events: Option<Arc<EventQueue>>,
    groups: AtomicU32,
}

impl RunCore {
    pub(crate) fn new(
        flow_name: &'static str,
        input: Arc<dyn Any + Send + Sync>,
        capture: bool,
        events: Option<Arc<EventQueue>>,
    ) -> Self {
        RunCore {
            run_id: uuid::Uuid::new_v4(),
            flow_name,
            input,
            capture,
            started: Instant::now(),
            started_at: SystemTime::now(),
            traces: Mutex::new(Vec::new()),
            events,
            groups: AtomicU32::new(0),
        }
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.started_at + at.saturating_duration_since(self.started)
    }

    /// Records an event, building it only when somebody listens.
    #[inline]
    pub(crate) fn emit(&self, make: impl FnOnce() -> RunEvent) {
        if let Some(q) = &self.events {
            q.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(make());
        }
    }

    fn push_trace(&self, trace: StepTrace) {
        self.traces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(trace);
    }

    pub(crate) fn take_traces(&self) -> Vec<StepTrace> {
        std::mem::take(&mut *self.traces.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Why a run stopped early. Carried up through the generated driver with `?`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Halt(pub(crate) Box<FlowError>);

impl Halt {
    pub(crate) fn into_error(self) -> FlowError {
        *self.0
    }
}

/// The run handle a generated driver receives: shared run data, the typed state, and where in
/// the flow the driver is (enclosing step, parallel group).
#[doc(hidden)]
pub struct Rt {
    pub(crate) core: Arc<RunCore>,
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) parent: Option<&'static str>,
    pub(crate) group: Option<u32>,
    pub(crate) defaults: FlowDefaults,
}

/// How one attempt failed, before it is boxed into a [`StepError`].
enum Failure<E> {
    Error(E),
    TimedOut(Duration),
    Panicked(String),
}

impl<E: StepFailure> Failure<E> {
    fn outcome(&self) -> AttemptOutcome {
        match self {
            Failure::Error(_) => AttemptOutcome::Failed,
            Failure::TimedOut(_) => AttemptOutcome::TimedOut,
            Failure::Panicked(_) => AttemptOutcome::Panicked,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Error(e) => e.message(),
            Failure::TimedOut(d) => StepError::TimedOut(*d).to_string(),
            Failure::Panicked(m) => format!("step panicked: {m}"),
        }
    }

    fn into_step_error(self) -> StepError {
        match self {
            Failure::Error(e) => StepError::Failed(e.into_box()),
            Failure::TimedOut(d) => StepError::TimedOut(d),
            Failure::Panicked(m) => StepError::Panicked(m),
        }
    }
}

/// Records a `Cancelled` trace if an attempt's future is dropped before it finishes (a sibling
/// branch failed, or the caller dropped the run).
struct CancelGuard<'a> {
    core: &'a RunCore,
    step: &'static str,
    parent: Option<&'static str>,
    attempt: u32,
    group: Option<u32>,
    started: Instant,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let now = Instant::now();
            self.core.push_trace(StepTrace {
                step: Cow::Borrowed(self.step),
                parent: self.parent.map(Cow::Borrowed),
                attempt: self.attempt,
                parallel_group_id: self.group,
                input: None,
                output: None,
                error: Some(StepError::Cancelled.to_string()),
                outcome: AttemptOutcome::Cancelled,
                started_at: self.core.wall(self.started),
                ended_at: self.core.wall(now),
                duration: now.saturating_duration_since(self.started),
                success: false,
            });
        }
    }
}

impl Rt {
    pub(crate) fn new(
        core: Arc<RunCore>,
        state: Arc<dyn Any + Send + Sync>,
        defaults: FlowDefaults,
    ) -> Self {
        Rt {
            core,
            state,
            parent: None,
            group: None,
            defaults,
        }
    }

    /// A handle for the branches of a new parallel group (they share its id).
    pub fn group(&self) -> Rt {
        let id = self.core.groups.fetch_add(1, Ordering::Relaxed) + 1;
        Rt {
            core: Arc::clone(&self.core),
            state: Arc::clone(&self.state),
            parent: self.parent,
            group: Some(id),
            defaults: self.defaults,
        }
    }

    /// Runs a step with its retry policy (step > flow > none), recording a trace per attempt.
    pub async fn step<St: StepCall>(
        &self,
        step: &St,
        input: Feed<'_, St::Input>,
    ) -> Result<St::Output, Halt> {
        let name = step.name();
        let policy = step.policy();
        let inherit = step.inherits_defaults();
        let retry = match (policy.retry, inherit) {
            (Some(r), _) => r,
            (None, true) => self.defaults.retry.unwrap_or(RetryPolicy::NONE),
            (None, false) => RetryPolicy::NONE,
        };
        let timeout = policy
            .timeout
            .or(if inherit { self.defaults.timeout } else { None });
        let max = retry.max_attempts();
        let span = tracing::info_span!("step", step = name, group = self.group);
        async move {
            let mut n = 1u32;
            loop {
                if n >= max {
                    return match self.attempt(step, input, n, timeout).await {
                        Ok(v) => Ok(v),
                        Err(f) => {
                            self.failed_event(name, n, &f, false);
                            Err(Halt(Box::new(FlowError::Step {
                                step: Cow::Borrowed(name),
                                attempts: n,
                                source: f.into_step_error(),
                            })))
                        }
                    };
                }
                match self.attempt(step, input.reborrow(), n, timeout).await {
                    Ok(v) => return Ok(v),
                    Err(f) => {
                        let worth_it = match (&f, policy.retry_if) {
                            (Failure::Error(e), Some(pred)) => pred(e),
                            _ => true,
                        };
                        self.failed_event(name, n, &f, worth_it);
                        if !worth_it {
                            return Err(Halt(Box::new(FlowError::Step {
                                step: Cow::Borrowed(name),
                                attempts: n,
                                source: f.into_step_error(),
                            })));
                        }
                        let delay = retry.jittered_delay_before(n);
                        tracing::debug!(step = name, attempt = n, ?delay, "retry scheduled");
                        self.core.emit(|| {
                            RunEvent::RetryScheduled(self.step_event(
                                name,
                                n + 1,
                                None,
                                None,
                                Some(delay),
                            ))
                        });
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        n += 1;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    fn failed_event<E>(&self, name: &'static str, n: u32, f: &Failure<E>, will_retry: bool)
    where
        E: StepFailure,
    {
        tracing::warn!(step = name, attempt = n, will_retry, error = %f.message(), "attempt failed");
        self.core.emit(|| {
            let mut e = self.step_event(name, n, None, Some(f.message()), None);
            e.will_retry = will_retry;
            RunEvent::StepFailed(e)
        });
    }

    fn step_event(
        &self,
        step: &'static str,
        attempt: u32,
        duration: Option<Duration>,
        error: Option<String>,
        delay: Option<Duration>,
    ) -> StepEvent {
        StepEvent {
            step,
            parent: self.parent,
            attempt,
            parallel_group_id: self.group,
            elapsed: self.core.elapsed(),
            duration,
            error,
            will_retry: false,
            delay,
        }
    }

    /// One attempt: timeout, panic containment, trace, events.
    async fn attempt<St: StepCall>(
        &self,
        step: &St,
        input: Feed<'_, St::Input>,
        n: u32,
        timeout: Option<Duration>,
    ) -> Result<St::Output, Failure<St::Error>> {
        let name = step.name();
        let core = &*self.core;
        core.emit(|| RunEvent::StepStarted(self.step_event(name, n, None, None, None)));
        let captured_input = if core.capture {
            step.capture_input(input.get())
        } else {
            None
        };
        let Some(state) = <St::Needs as StateReq>::resolve(&self.state) else {
            let message = format!("step `{name}` needs another shared state type than this run's");
            return Err(Failure::Panicked(message));
        };
        let ctx = StepContext {
            core: Arc::clone(&self.core),
            state,
            step: name,
            attempt: n,
            group: self.group,
        };
        let started = Instant::now();
        let mut guard = CancelGuard {
            core,
            step: name,
            parent: self.parent,
            attempt: n,
            group: self.group,
            started,
            armed: true,
        };
        let result = {
            let mut fut = pin!(step.call(input, &ctx));
            let caught =
                poll_fn(
                    |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                        Ok(Poll::Ready(Ok(v))) => Poll::Ready(Ok(v)),
                        Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Failure::Error(e))),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(payload) => Poll::Ready(Err(match StepError::from_panic(payload) {
                            StepError::Panicked(m) => Failure::Panicked(m),
                            _ => Failure::Panicked(String::new()),
                        })),
                    },
                );
            let span = tracing::info_span!("attempt", attempt = n);
            match timeout {
                Some(d) => match tokio::time::timeout(d, caught).instrument(span).await {
                    Ok(r) => r,
                    Err(_) => Err(Failure::TimedOut(d)),
                },
                None => caught.instrument(span).await,
            }
        };
        guard.armed = false;
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started);
        let (output, error, outcome) = match &result {
            Ok(v) => {
                let out = if core.capture {
                    step.capture_output(v)
                } else {
                    None
                };
                (out, None, AttemptOutcome::Succeeded)
            }
            Err(f) => (None, Some(f.message()), f.outcome()),
        };
        let success = result.is_ok();
        if success {
            core.emit(|| {
                RunEvent::StepCompleted(self.step_event(name, n, Some(duration), None, None))
            });
        }
        core.push_trace(StepTrace {
            step: Cow::Borrowed(name),
            parent: self.parent.map(Cow::Borrowed),
            attempt: n,
            parallel_group_id: self.group,
            input: captured_input,
            output,
            error,
            outcome,
            started_at: core.wall(started),
            ended_at: core.wall(ended),
            duration,
            success,
        });
        result
    }

    /// Evaluates an `if` or `until` predicate, containing a panic as a flow failure.
    pub fn decide<T, M, P>(&self, which: &'static str, value: &T, pred: &P) -> Result<bool, Halt>
    where
        P: crate::__private::Predicate<T, M>,
    {
        let Some(state) = <P::Needs as StateReq>::resolve(&self.state) else {
            return Err(Halt(Box::new(FlowError::PredicatePanicked {
                predicate: which,
                message: "the predicate's `StepContext` names another state type than the flow's"
                    .into(),
            })));
        };
        let ctx = StepContext {
            core: Arc::clone(&self.core),
            state,
            step: which,
            attempt: 1,
            group: self.group,
        };
        catch_unwind(AssertUnwindSafe(|| pred.test(value, &ctx))).map_err(|payload| {
            let message = match StepError::from_panic(payload) {
                StepError::Panicked(m) => m,
                other => other.to_string(),
            };
            Halt(Box::new(FlowError::PredicatePanicked {
                predicate: which,
                message,
            }))
        })
    }

    /// A handle for a nested flow run as a step of this one.
    pub(crate) fn child<S: Send + Sync + 'static>(
        ctx: &StepContext<S>,
        defaults: FlowDefaults,
    ) -> Rt {
        let state: Arc<dyn Any + Send + Sync> = Arc::clone(&ctx.state) as _;
        Rt {
            core: Arc::clone(&ctx.core),
            state,
            parent: Some(ctx.step),
            group: ctx.group,
            defaults,
        }
    }
}
