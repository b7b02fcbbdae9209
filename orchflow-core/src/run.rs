//! The per-run machinery the generated drivers call: attempts, retries, traces, events.

use crate::context::{RunId, StepContext};
use crate::error::{FlowError, StepError};
use crate::event::{CheckpointEvent, EventQueue, RunEvent, StepEvent};
use crate::policy::{FlowDefaults, RetryPolicy};
use crate::step::{Feed, StateOf, StateReq, StepCall, StepDef, StepFailure};
use crate::store::{CheckpointStore, JournalEntry, PointRecord, StoreError};
use crate::trace::{AttemptOutcome, StepTrace, Traces};
use std::any::Any;
use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

/// What every step of one run shares: identity, the original input, traces and the event queue.
pub(crate) struct RunCore {
    pub(crate) run_id: RunId,
    pub(crate) flow_name: &'static str,
    pub(crate) input: Arc<dyn Any + Send + Sync>,
    pub(crate) capture: bool,
    /// The start in the fast clock's raw ticks (see [`clock`]).
    started_raw: u64,
    started_at: SystemTime,
    /// Which session of the run this is: 1 at its start, one more for each resume.
    pub(crate) session: u32,
    /// Traces of earlier sessions of a resumed run.
    // Boxed: only resumed runs have any, and every run carries the field (one word, not three).
    #[allow(clippy::box_collection)]
    prior: Option<Box<Vec<StepTrace>>>,
    traces: Mutex<Vec<RawTrace>>,
    pub(crate) traces_on: bool,
    events: Option<Arc<EventQueue>>,
    groups: AtomicU32,
    /// When the run's last attempt succeeded (nanoseconds from its start), as long as nothing
    /// but the generated glue has run since; [`NO_TIME`] otherwise. The next attempt to start
    /// takes it as its start instead of reading the clock again: in a sequence, one step's end
    /// is the next one's start. Anything else that takes time clears it: an attempt or the run
    /// returning `Pending`, a predicate, a retry's delay, a checkpoint.
    last_end: AtomicU64,
    /// How many traces to make room for at the first one (the flow's resumable points: about
    /// one per step), so that short runs hold no spare capacity and long ones grow less.
    trace_hint: u16,
    /// Boxed: most runs are not durable, and many runs may be alive at once.
    pub(crate) durable: Option<Box<Durable>>,
    /// The state of steps without typed state.
    pub(crate) unit: Arc<()>,
    pub(crate) human: crate::human::Asker,
}

/// The checkpointing side of a durable run.
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn CheckpointStore>,
    /// The run's claim and journal position. Held across each append so entries land in order.
    pub(crate) journal: tokio::sync::Mutex<Journal>,
    /// Serialises the generated state (`None` if the value is not of the flow's state type).
    pub(crate) point_json: PointJson,
    /// Serialises the shared state into every entry, when the run saves it.
    pub(crate) state_json: Option<PointJson>,
}

/// Where a durable run's journal stands.
pub(crate) struct Journal {
    /// The run's claim: every write shows it. Taken by the final document's write, after which
    /// nothing is journaled.
    pub(crate) claim: Option<crate::store::Claim>,
    /// The last sequence number.
    pub(crate) seq: u64,
    /// How many of this session's traces are journaled.
    pub(crate) flushed: usize,
}

/// Serialises a flow's generated state, given as `dyn Any`; chosen where its type is known to be
/// `Serialize` (the durable API), so the driver itself needs no serde bound.
pub(crate) type PointJson = fn(&dyn Any) -> Option<Result<serde_json::Value, serde_json::Error>>;

impl RunCore {
    pub(crate) fn new(
        flow_name: &'static str,
        input: Arc<dyn Any + Send + Sync>,
        capture: bool,
        events: Option<Arc<EventQueue>>,
    ) -> Self {
        RunCore {
            run_id: new_run_id(),
            flow_name,
            input,
            capture,
            started_raw: clock().raw(),
            started_at: SystemTime::now(),
            session: 1,
            prior: None,
            traces: Mutex::new(Vec::new()),
            traces_on: true,
            events,
            groups: AtomicU32::new(0),
            last_end: AtomicU64::new(NO_TIME),
            trace_hint: 4,
            durable: None,
            unit: Arc::new(()),
            human: crate::human::Asker::default(),
        }
    }

    /// Continues the run ids and traces of a resumed run.
    pub(crate) fn resumed(mut self, run_id: RunId, traces: Vec<StepTrace>, session: u32) -> Self {
        self.run_id = run_id;
        self.session = session;
        self.prior = Some(Box::new(traces));
        self
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_ns())
    }

    /// Nanoseconds since the run started: one read of the fast clock, one scaling. Everything
    /// timed on the hot path is an offset from the run's start, so durations are integer
    /// differences.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        let c = clock();
        c.delta_as_nanos(self.started_raw, c.raw())
    }

    /// An attempt's start: the end of the attempt just before it when nothing else ran since
    /// (see `last_end`), else a clock read.
    #[inline]
    fn attempt_start_ns(&self) -> u64 {
        // A load and a store rather than a swap (no locked instruction): the run's attempts
        // start and end within its polls, one at a time.
        match self.last_end.load(Ordering::Relaxed) {
            NO_TIME => self.now_ns(),
            at => {
                self.last_end.store(NO_TIME, Ordering::Relaxed);
                at
            }
        }
    }

    /// Forgets the last attempt's end: something other than glue runs (or ran) since.
    #[inline]
    pub(crate) fn interrupted(&self) {
        self.last_end.store(NO_TIME, Ordering::Relaxed);
    }

    /// Whether somebody listens to this run's events.
    pub(crate) fn has_listener(&self) -> bool {
        self.events.is_some()
    }

    /// Records an event, building it only when somebody listens.
    #[inline]
    pub(crate) fn emit(&self, make: impl FnOnce() -> RunEvent) {
        if let Some(q) = &self.events {
            q.lock().unwrap_or_else(|p| p.into_inner()).push(make());
        }
    }

    /// Records an attempt's end under one lock: its event (`StepCompleted` or `StepFailed`,
    /// when `has_event` and somebody listens) and its trace (when traces are on). A streamed run
    /// keeps its traces under the event queue's lock for this.
    #[inline]
    pub(crate) fn attempt_ended(
        &self,
        has_event: bool,
        event: impl FnOnce() -> RunEvent,
        trace: impl FnOnce() -> RawTrace,
    ) {
        match &self.events {
            Some(q) => {
                let mut log = q.lock().unwrap_or_else(|p| p.into_inner());
                if has_event {
                    log.push(event());
                }
                if self.traces_on {
                    self.push_into(&mut log.traces, trace);
                }
            }
            None if self.traces_on => {
                let mut traces = self.traces.lock().unwrap_or_else(|p| p.into_inner());
                self.push_into(&mut traces, trace);
            }
            None => {}
        }
    }

    /// Records a trace outside an attempt's normal end (a cancelled attempt).
    fn push_trace(&self, trace: RawTrace) {
        self.with_traces(|traces| self.push_into(traces, || trace));
    }

    /// Appends a trace, built in place when there is room (see [`EventLog::push`]).
    #[inline]
    fn push_into(&self, traces: &mut Vec<RawTrace>, trace: impl FnOnce() -> RawTrace) {
        if traces.capacity() == 0 {
            traces.reserve_exact(usize::from(self.trace_hint.max(1)));
        }
        if traces.len() < traces.capacity() {
            traces.push(trace());
        } else {
            grow_and_push(traces, trace());
        }
    }

    /// Runs `f` on this session's traces, wherever they are kept.
    fn with_traces<R>(&self, f: impl FnOnce(&mut Vec<RawTrace>) -> R) -> R {
        match &self.events {
            Some(q) => f(&mut q.lock().unwrap_or_else(|p| p.into_inner()).traces),
            None => f(&mut self.traces.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Makes room for `n` traces at the first one (see `trace_hint`).
    pub(crate) fn expect_traces(&mut self, n: usize) {
        self.trace_hint = u16::try_from(n).unwrap_or(u16::MAX);
    }

    /// This session's traces from index `from` on, as public traces.
    pub(crate) fn traces_since(&self, from: usize) -> Vec<StepTrace> {
        self.with_traces(|all| {
            all.get(from..)
                .unwrap_or_default()
                .iter()
                .map(|t| t.public(self.started_at, self.session))
                .collect()
        })
    }

    /// Every trace of the run: earlier sessions', then this one's (built when first read).
    pub(crate) fn take_traces(&self) -> Traces {
        let raw = self.with_traces(std::mem::take);
        let prior = self.prior.as_deref().cloned().unwrap_or_default();
        Traces::new(prior, raw, self.started_at, self.session)
    }
}

/// Why a run stopped early (a failure or a suspension). Carried up through the generated
/// driver with `?`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Halt(pub(crate) Box<FlowError>);

impl Halt {
    pub(crate) fn new(e: FlowError) -> Self {
        Halt(Box::new(e))
    }

    /// Whether the run stops to wait for answers (rather than because something failed).
    pub(crate) fn is_suspension(&self) -> bool {
        matches!(*self.0, FlowError::Suspended { .. })
    }

    /// One suspension waiting on every question of `halts` (all suspensions), in order.
    pub(crate) fn suspended(halts: impl IntoIterator<Item = Halt>) -> Halt {
        let mut all = Vec::new();
        for h in halts {
            if let FlowError::Suspended { questions } = *h.0 {
                all.extend(questions);
            }
        }
        Halt::new(FlowError::Suspended { questions: all })
    }

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
    /// The context handed to steps that take none (`StepDef::uses_context` is false): built once
    /// per handle, so those steps cost no reference counting per attempt.
    idle: StepContext<()>,
}

impl Rt {
    fn with(
        core: Arc<RunCore>,
        state: Arc<dyn Any + Send + Sync>,
        parent: Option<&'static str>,
        group: Option<u32>,
        defaults: FlowDefaults,
    ) -> Rt {
        let idle = StepContext {
            core: Arc::clone(&core),
            state: Arc::clone(&core.unit),
            step: parent.unwrap_or(""),
            attempt: 0,
            group,
        };
        Rt {
            core,
            state,
            parent,
            group,
            defaults,
            idle,
        }
    }
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

/// Polls a step's future once, a panic becoming a failed attempt.
#[inline]
fn contained_poll<T, E>(
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

#[cold]
#[inline(never)]
fn grow_and_push(traces: &mut Vec<RawTrace>, trace: RawTrace) {
    traces.push(trace);
}

/// No time recorded (see `RunCore::last_end`).
const NO_TIME: u64 = u64::MAX;

/// A random (version 4) run id, without a system call.
fn new_run_id() -> RunId {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// What a caught panic says.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match StepError::from_panic(payload) {
        StepError::Panicked(m) => m,
        other => other.to_string(),
    }
}

/// Whether a failed attempt is worth another (when one is left): not a suspension, and an error
/// the step's `retry_if` accepts.
fn worth_retrying<St: StepDef>(step: &St, f: &Failure<St::Error>) -> bool {
    let accepted = match (f, step.policy().retry_if) {
        // A panicking predicate accepts nothing: the attempt's failure stands, unretried.
        (Failure::Error(e), Some(pred)) => match catch_unwind(AssertUnwindSafe(|| pred(e))) {
            Ok(accepted) => accepted,
            Err(payload) => {
                let message = panic_message(payload);
                tracing::warn!(step = step.name(), %message, "retry_if panicked: not retrying");
                false
            }
        },
        _ => true,
    };
    accepted && suspension(step, f).is_none()
}

fn log_failure<E: StepFailure>(name: &'static str, n: u32, f: &Failure<E>, will_retry: bool) {
    tracing::warn!(step = name, attempt = n, will_retry, error = %f.message(), "attempt failed");
}

/// The halt for a step error that is a request to suspend the run.
fn suspension<St: StepDef>(step: &St, f: &Failure<St::Error>) -> Option<Halt> {
    let Failure::Error(e) = f else { return None };
    let questions = step.suspension(e)?;
    Some(Halt::new(FlowError::Suspended { questions }))
}

fn unserialisable(point: &'static str) -> Halt {
    let source = <serde_json::Error as serde::ser::Error>::custom(format!(
        "the value at `{point}` is not Serialize"
    ));
    Halt::new(FlowError::Checkpoint(StoreError::Serialize {
        what: "a resumable point",
        source,
    }))
}

/// Records a `Cancelled` trace if an attempt's future is dropped before it finishes (a sibling
/// branch failed, or the caller dropped the run).
struct CancelGuard<'a> {
    rt: &'a Rt,
    step: &'static str,
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
            parent: self.rt.parent,
            attempt: self.attempt,
            group: self.rt.group,
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

/// A trace as the hot path records it: names by reference, instants, rare parts boxed.
/// Turned into [`StepTrace`]s when the run ends or a checkpoint is saved.
pub(crate) struct RawTrace {
    step: &'static str,
    parent: Option<&'static str>,
    attempt: u32,
    group: Option<u32>,
    outcome: AttemptOutcome,
    /// Nanoseconds from the run's start to the attempt's start.
    started: u64,
    /// The attempt's duration in nanoseconds.
    took: u64,
    detail: Option<Box<TraceDetail>>,
}

/// The clock of the hot path: the CPU's time-stamp counter where it is invariant (about 10 ns a
/// read, where `Instant::now` costs 25 ns or more on virtual machines), calibrated once per
/// process against the monotonic clock (under a millisecond); the monotonic clock elsewhere.
fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl RawTrace {
    /// The public trace, given the session's wall-clock start and number.
    pub(crate) fn public(&self, run_started_at: SystemTime, session: u32) -> StepTrace {
        let from = Duration::from_nanos(self.started);
        let took = Duration::from_nanos(self.took);
        let to = from + took;
        let (input, output, error) = match &self.detail {
            Some(d) => (d.input.clone(), d.output.clone(), d.error.clone()),
            None => (None, None, None),
        };
        StepTrace {
            step: Cow::Borrowed(self.step),
            parent: self.parent.map(Cow::Borrowed),
            attempt: self.attempt,
            session,
            parallel_group_id: self.group,
            input,
            output,
            error,
            outcome: self.outcome,
            started_at: run_started_at + from,
            ended_at: run_started_at + to,
            duration: took,
            success: self.outcome == AttemptOutcome::Succeeded,
        }
    }
}

pub(crate) struct TraceDetail {
    input: Option<serde_json::Value>,
    output: Option<serde_json::Value>,
    error: Option<String>,
}

impl Rt {
    pub(crate) fn new(
        core: Arc<RunCore>,
        state: Arc<dyn Any + Send + Sync>,
        defaults: FlowDefaults,
    ) -> Self {
        Rt::with(core, state, None, None, defaults)
    }

    /// A handle for the branches of a new parallel group (they share its id).
    pub fn group(&self) -> Rt {
        // Numbered from 1 (events keep 0 for none), wrapping past `u32::MAX` rather than
        // overflowing.
        let id = self
            .core
            .groups
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
            .max(1);
        Rt::with(
            Arc::clone(&self.core),
            Arc::clone(&self.state),
            self.parent,
            Some(id),
            self.defaults,
        )
    }

    /// Runs a step with its retry policy (step > flow > none), recording a trace per attempt.
    ///
    /// A plain function returning an `async` block (not an `async fn`): the future then holds
    /// its arguments once, and nothing of the retry policy until an attempt fails, which keeps
    /// every run's future small.
    #[allow(clippy::manual_async_fn)]
    pub fn step<'a, St: StepCall>(
        &'a self,
        step: &'a St,
        input: Feed<'a, St::Input>,
    ) -> impl Future<Output = Result<St::Output, Halt>> + 'a {
        let (retry, timeout) = self.policy_of(step);
        let max = retry.max_attempts();
        let core = &*self.core;
        // Nothing to time, record, retry or watch: one contained call.
        let quiet = max <= 1
            && timeout.is_none()
            && !core.traces_on
            && !core.capture
            && core.events.is_none();
        async move {
            // Boxed, and only when a subscriber wants it: a disabled span is 40 bytes of nothing.
            let span = Some(tracing::info_span!(
                "step",
                step = step.name(),
                group = self.group
            ))
            .filter(|s| !s.is_disabled())
            .map(Box::new);
            if quiet && span.is_none() {
                return match self.quiet_attempt(step, input).await {
                    Ok(v) => Ok(v),
                    Err(f) => Err(self.given_up(step, 1, f)),
                };
            }
            let span = span.as_deref();
            let mut n = 1u32;
            loop {
                if n >= max {
                    return match self.attempt(step, input, n, max, timeout, span).await {
                        Ok(v) => Ok(v),
                        Err(f) => Err(self.given_up(step, n, f)),
                    };
                }
                let f = match self
                    .attempt(step, input.reborrow(), n, max, timeout, span)
                    .await
                {
                    Ok(v) => return Ok(v),
                    Err(f) => f,
                };
                if !worth_retrying(step, &f) {
                    return Err(self.given_up(step, n, f));
                }
                log_failure(step.name(), n, &f, true);
                // Boxed: the retry path is rare; the common path keeps a small future.
                // The error that caused the retry, for its event (only when somebody listens).
                let cause = self.core.events.is_some().then(|| f.message());
                drop(f);
                Box::pin(self.before_retry(step, n, cause)).await;
                n += 1;
            }
        }
    }

    /// The halt for a step that will not be tried again: a suspension, or its error.
    fn given_up<St: StepDef>(&self, step: &St, n: u32, f: Failure<St::Error>) -> Halt {
        let name = step.name();
        if let Some(halt) = suspension(step, &f) {
            return halt;
        }
        log_failure(name, n, &f, false);
        Halt::new(FlowError::Step {
            step: Cow::Borrowed(name),
            attempts: n,
            source: f.into_step_error(),
        })
    }

    /// The retry policy and timeout in force for `step`: its own, else (if it inherits) the
    /// flow's defaults.
    fn policy_of<St: StepDef>(&self, step: &St) -> (RetryPolicy, Option<Duration>) {
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
        (retry, timeout)
    }

    /// Announces and waits out the delay before attempt `n + 1`.
    async fn before_retry<St: StepDef>(&self, step: &St, n: u32, cause: Option<String>) {
        let name = step.name();
        let (retry, _) = self.policy_of(step);
        let delay = retry.jittered_delay_before(n);
        tracing::debug!(step = name, attempt = n, ?delay, "retry scheduled");
        self.core.emit(|| {
            RunEvent::RetryScheduled(
                self.step_event(name, n + 1, self.core.now_ns(), None)
                    .with_detail(cause, false, Some(delay)),
            )
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            self.core.interrupted();
        }
    }

    /// Whether this run saves checkpoints (the generated driver skips [`reached`](Self::reached)
    /// otherwise). A flow nested in another flow's pipeline saves nothing of its own: it is one
    /// step of the enclosing flow, whose state type its points are not.
    #[inline]
    pub fn is_durable(&self) -> bool {
        self.durable().is_some()
    }

    #[inline]
    fn durable(&self) -> Option<&Durable> {
        match self.parent {
            None => self.core.durable.as_deref(),
            Some(_) => None,
        }
    }

    /// Saves a resumable point: the generated state as JSON, with the traces of the attempts
    /// since the previous save. Does nothing for a run without a store.
    pub fn reached(
        &self,
        name: Option<&'static str>,
        point: &dyn Any,
    ) -> impl Future<Output = Result<(), Halt>> + Send + '_ {
        let record = match (self.durable(), name) {
            (Some(durable), Some(name)) => Some(match (durable.point_json)(point) {
                Some(Ok(json)) => Ok((durable, name, json)),
                Some(Err(source)) => Err(Halt::new(FlowError::Checkpoint(StoreError::Serialize {
                    what: "a resumable point",
                    source,
                }))),
                None => Err(unserialisable(name)),
            }),
            _ => None,
        };
        async move {
            match record {
                None => Ok(()),
                Some(Err(halt)) => Err(halt),
                Some(Ok((durable, name, json))) => {
                    // Boxed: the journal's future is large and only durable runs need it.
                    Box::pin(self.journal(durable, name, PointRecord::Point(json))).await
                }
            }
        }
    }

    /// Saves one finished branch of the top-level parallel group `group`.
    pub async fn branch_reached(
        &self,
        group: &'static str,
        index: usize,
        json: impl FnOnce() -> Option<serde_json::Value>,
    ) -> Result<(), Halt> {
        let Some(durable) = self.durable() else {
            return Ok(());
        };
        let value = json().ok_or_else(|| unserialisable(group))?;
        let record = PointRecord::Branch {
            group: group.to_string(),
            index,
            value,
        };
        self.journal(durable, group, record).await
    }

    /// Saves an inner position: the value after a step of an `if` arm, a branch or a loop body,
    /// or (`iteration` given) an iteration of a loop that is not at the top level. `path` holds
    /// the iteration numbers of the loops around it.
    pub async fn inner_reached(
        &self,
        name: &'static str,
        path: &[u32],
        iteration: Option<u32>,
        json: impl FnOnce() -> Option<serde_json::Value>,
    ) -> Result<(), Halt> {
        let Some(durable) = self.durable() else {
            return Ok(());
        };
        let value = json().ok_or_else(|| unserialisable(name))?;
        let value = match iteration {
            None => value,
            Some(i) => serde_json::json!({ "iteration": i, "value": value }),
        };
        let record = PointRecord::Inner {
            name: name.to_string(),
            path: path.to_vec(),
            value,
        };
        Box::pin(self.journal(durable, name, record)).await
    }

    /// The error for a resumed point that is an inner position, which a journal's point
    /// records never are unless the file was edited.
    pub fn misplaced(&self, name: Option<&'static str>) -> Halt {
        let location = self
            .core
            .durable
            .as_ref()
            .map(|d| d.store.location(self.core.run_id))
            .unwrap_or_default();
        Halt::new(FlowError::Checkpoint(StoreError::Corrupt {
            location,
            reason: format!(
                "the last point is `{}`, a position inside an item, not a point between items",
                name.unwrap_or("?")
            ),
        }))
    }

    /// Journals the traces not yet saved when a durable run stops early.
    pub(crate) async fn stopped(&self) -> Result<(), FlowError> {
        let Some(durable) = &self.core.durable else {
            return Ok(());
        };
        self.journal(durable, "stopped", PointRecord::Stopped)
            .await
            .map_err(Halt::into_error)
    }

    async fn journal(
        &self,
        durable: &Durable,
        point: &'static str,
        record: PointRecord,
    ) -> Result<(), Halt> {
        let branch = match &record {
            PointRecord::Branch { index, .. } => Some(*index),
            _ => None,
        };
        let is_point = !matches!(record, PointRecord::Stopped);
        let mut journal = durable.journal.lock().await;
        let Some(claim) = &journal.claim else {
            // The run's final document is written: nothing more is journaled.
            return Ok(());
        };
        let traces = self.core.traces_since(journal.flushed);
        if !is_point && traces.is_empty() {
            // A stop with no traces to keep has nothing to say.
            return Ok(());
        }
        // A save covers the answers taken since the last one (the steps that took them are
        // done); a stop does not (they are asked again on resume, and take them again).
        let answered = if is_point {
            self.core.human.take_used()
        } else {
            Vec::new()
        };
        let state = match durable.state_json {
            None => None,
            Some(to_json) => match to_json(&*self.state) {
                Some(Ok(json)) => Some(json),
                Some(Err(source)) => {
                    return Err(Halt::new(FlowError::Checkpoint(StoreError::Serialize {
                        what: "the shared state",
                        source,
                    })));
                }
                None => None,
            },
        };
        let entry = JournalEntry {
            seq: journal.seq + 1,
            record,
            traces,
            answered,
            state,
        };
        if let Err(e) = durable.store.append(claim, &entry).await {
            if is_point && !entry.answered.is_empty() {
                self.core.human.give_back_used(entry.answered);
            }
            return Err(Halt::new(FlowError::Checkpoint(e)));
        }
        journal.seq += 1;
        journal.flushed += entry.traces.len();
        drop(journal);
        // The save took time that belongs to no attempt.
        self.core.interrupted();
        self.core.emit(|| {
            RunEvent::CheckpointSaved(CheckpointEvent {
                point,
                branch,
                elapsed: self.core.elapsed(),
            })
        });
        Ok(())
    }

    /// A step event of this handle's parent and group.
    #[inline]
    fn step_event(
        &self,
        step: &'static str,
        attempt: u32,
        at_ns: u64,
        took_ns: Option<u64>,
    ) -> StepEvent {
        StepEvent::new(step, self.parent, self.group, attempt, at_ns, took_ns)
    }

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
            core: Arc::clone(&self.core),
            state,
            step: name,
            attempt: n,
            group: self.group,
        }))
    }

    /// The one attempt of a step that nothing times, records, retries or watches: the call,
    /// with its panics contained.
    #[allow(clippy::manual_async_fn)]
    fn quiet_attempt<'a, St: StepCall>(
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
    #[allow(clippy::manual_async_fn)]
    fn attempt<'a, St: StepCall>(
        &'a self,
        step: &'a St,
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
                core.emit(|| RunEvent::StepStarted(self.step_event(name, n, at, None)));
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
                parent: self.parent,
                attempt: n,
                group: self.group,
                started,
                took,
                outcome,
                detail,
            };
            match &result {
                Ok(_) => core.attempt_ended(
                    true,
                    || {
                        let e = self.step_event(name, n, ended, Some(took));
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
                        let e = self.step_event(name, n, ended, Some(took));
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

    /// Evaluates an `if` or `until` predicate, containing a panic as a flow failure.
    pub fn decide<T, M, P>(&self, which: &'static str, value: &T, pred: &P) -> Result<bool, Halt>
    where
        P: crate::__private::Predicate<T, M>,
    {
        self.core.interrupted();
        let Some(state) = <P::Needs as StateReq>::resolve(&self.state, &self.core.unit) else {
            return Err(Halt::new(FlowError::PredicatePanicked {
                predicate: which,
                message: "the predicate's `StepContext` names another state type than the flow's"
                    .into(),
            }));
        };
        let ctx = StepContext {
            core: Arc::clone(&self.core),
            state,
            step: which,
            attempt: 1,
            group: self.group,
        };
        catch_unwind(AssertUnwindSafe(|| pred.test(value, &ctx))).map_err(|payload| {
            let message = panic_message(payload);
            Halt::new(FlowError::PredicatePanicked {
                predicate: which,
                message,
            })
        })
    }

    /// A handle for a nested flow run as a step of this one.
    pub(crate) fn child<S: Send + Sync + 'static>(
        ctx: &StepContext<S>,
        defaults: FlowDefaults,
    ) -> Rt {
        let state: Arc<dyn Any + Send + Sync> = Arc::clone(&ctx.state) as _;
        Rt::with(
            Arc::clone(&ctx.core),
            state,
            Some(ctx.step),
            ctx.group,
            defaults,
        )
    }
}
