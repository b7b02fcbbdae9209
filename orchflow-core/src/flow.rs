//! Flow values: what `flow!` produces, how they run, and what a run returns.

use crate::context::{RunId, StepContext};
use crate::error::FlowError;
use crate::event::CheckpointEvent;
use crate::event::{EventQueue, EventStream, RunEvent};
use crate::human::{InputProvider, Stdin};
use crate::policy::{FlowDefaults, RetryPolicy};
use crate::resume::Resume;
use crate::run::{Halt, Rt, RunCore};
use crate::step::{Feed, StateReq, StepCall, StepDef};
use crate::store::{
    Checkpoint, CheckpointStore, Claim, JournalEntry, PendingInput, PointRecord, RunDocument,
    RunStatus, StoreError,
};
use crate::trace::{StepTrace, Traces};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// Static facts about a flow, computed by `flow!` at compile time.
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn a(x: u8) -> u8 { x }
/// #[step] async fn b(x: &u8) -> u8 { *x }
/// let f = flow! { #[flow(name = "ab")] a => [b, b] };
/// let info = f.info();
/// assert_eq!((info.name, info.shape), ("ab", "a => [b, b]"));
/// assert_eq!(info.points, ["AfterA", "InGroup2", "AfterGroup2"]);
/// let g = flow! { #[flow(name = "ab")] a => [b, a] };
/// assert_ne!(info.fingerprint, g.info().fingerprint);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo {
    /// The flow's name (`#[flow(name = "…")]`, or `"flow"`).
    pub name: &'static str,
    /// A hash of the flow's normalised structure: steps, names and shape.
    pub fingerprint: u64,
    /// The flow's structure in one line, e.g. `plan => [docs, market] => publish`.
    pub shape: &'static str,
    /// The resumable points of the generated state, in order.
    pub points: &'static [&'static str],
}

/// The future a generated driver returns.
#[doc(hidden)]
pub type DriverFuture<'a, O> = Pin<Box<dyn Future<Output = Result<O, Halt>> + Send + 'a>>;

/// The generated driver: given the flow's steps, a run handle, the input and (when resuming)
/// the saved point of the generated state and the inner positions saved after it, it runs the
/// flow to its end.
#[doc(hidden)]
pub trait Driver<T, I, O, P>: Send + Sync + 'static {
    fn drive<'a>(
        &'a self,
        steps: &'a T,
        rt: &'a Rt,
        input: Feed<'a, I>,
        resume: Resume<P>,
    ) -> DriverFuture<'a, O>;
}

impl<T, I, O, P, F> Driver<T, I, O, P> for F
where
    F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Resume<P>) -> DriverFuture<'a, O>
        + Send
        + Sync
        + 'static,
    T: 'static,
    I: 'static,
    O: 'static,
    P: 'static,
{
    fn drive<'a>(
        &'a self,
        steps: &'a T,
        rt: &'a Rt,
        input: Feed<'a, I>,
        resume: Resume<P>,
    ) -> DriverFuture<'a, O> {
        self(steps, rt, input, resume)
    }
}

/// The type parameters a [`Flow`] carries without storing values of them.
type Signature<I, O, N, P> = fn(I, P) -> (O, N);

/// A compiled flow: what `flow!` evaluates to.
///
/// Type parameters: `T` the tuple of step values, `I` the input, `O` the output, `N` the state
/// requirement (the run's state type is `N::State`), `P` the generated state enum, `F` the
/// generated driver. You rarely name them: bind the flow with `let`, or return `impl Sized`.
///
/// A flow is cheap to clone and can run many times, concurrently. A flow is also a step: it can
/// stand in another flow's pipeline, where its traces and events carry the enclosing step's name
/// as `parent`.
///
/// ```
/// use orchflow::{flow, step};
///
/// #[step] async fn parse(s: String) -> Result<u32, std::num::ParseIntError> { s.trim().parse() }
/// #[step] fn square(x: &u32) -> u32 { x * x }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { parse => square };
/// let ok = f.run(" 12 ".to_string()).await;
/// assert_eq!(ok.output, Some(144));
///
/// let bad = f.run("twelve".to_string()).await;
/// assert!(!bad.success);
/// assert_eq!(bad.failed_step.as_deref(), Some("parse"));
/// # }
/// ```
pub struct Flow<T, I, O, N, P, F> {
    /// The steps, the driver, and the input as JSON for `flow_started` (when value capture is on
    /// and the input is `Serialize`).
    inner: Arc<(T, F, InputJson<I>)>,
    info: &'static FlowInfo,
    /// Shared: a flow is cloned into every task that runs it, so it stays three words.
    config: Arc<FlowConfig>,
    _types: PhantomData<Signature<I, O, N, P>>,
}

/// The flow's input as JSON, when its type is `Serialize` (chosen by `flow!` where the type is
/// known).
type InputJson<I> = fn(&I) -> Option<serde_json::Value>;

/// A flow's settings (see the builder methods of [`Flow`]).
#[derive(Clone)]
struct FlowConfig {
    defaults: FlowDefaults,
    capture: bool,
    traces: bool,
    input: Arc<dyn InputProvider>,
}

impl<T, I, O, N, P, F> Clone for Flow<T, I, O, N, P, F> {
    fn clone(&self) -> Self {
        Flow {
            inner: Arc::clone(&self.inner),
            info: self.info,
            config: Arc::clone(&self.config),
            _types: PhantomData,
        }
    }
}

impl<T, I, O, N, P, F> std::fmt::Debug for Flow<T, I, O, N, P, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.info.name)
            .field("shape", &self.info.shape)
            .field("defaults", &self.config.defaults)
            .field("capture_values", &self.config.capture)
            .finish_non_exhaustive()
    }
}

impl<T, I, O, N, P, F> Flow<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    #[doc(hidden)]
    pub fn __new(
        info: &'static FlowInfo,
        defaults: FlowDefaults,
        _needs: PhantomData<N>,
        steps: T,
        driver: F,
        input_json: InputJson<I>,
    ) -> Self
    where
        // Stated as an `Fn` bound (not only through `Driver`) so that the compiler deduces the
        // generated closure's signature from it.
        F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Resume<P>) -> DriverFuture<'a, O>,
    {
        Flow {
            inner: Arc::new((steps, driver, input_json)),
            info,
            config: Arc::new(FlowConfig {
                defaults,
                capture: false,
                traces: true,
                input: Arc::new(Stdin),
            }),
            _types: PhantomData,
        }
    }

    /// Static facts about this flow (name, fingerprint, shape).
    pub fn info(&self) -> &'static FlowInfo {
        self.info
    }

    /// The flow's name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// Records each attempt's input and output as JSON in its [`StepTrace`] when the step's
    /// types are `Serialize` (off by default: it costs a serialisation per attempt).
    pub fn capture_values(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).capture = on;
        self
    }

    /// Records a [`StepTrace`] per attempt (on by default). Off, the hot path takes no
    /// timestamps and [`FlowResult::traces`] stays empty; events and spans are unaffected.
    pub fn record_traces(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).traces = on;
        self
    }

    /// Sets the retry policy of steps that set none (the step's own policy wins).
    pub fn default_retry(mut self, policy: RetryPolicy) -> Self {
        Arc::make_mut(&mut self.config).defaults.retry = Some(policy);
        self
    }

    /// Sets the per-attempt timeout of steps that set none.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).defaults.timeout = Some(timeout);
        self
    }

    /// Sets who answers the flow's human-input steps ([`human::ask`](crate::human::ask)):
    /// [`Stdin`] by default, a [`callback`](crate::human::callback), or
    /// [`Suspend`](crate::human::Suspend) to stop a durable run until [`Durable::answer`].
    pub fn with_input(mut self, provider: impl InputProvider) -> Self {
        Arc::make_mut(&mut self.config).input = Arc::new(provider);
        self
    }

    /// The defaults in force.
    pub fn defaults(&self) -> FlowDefaults {
        self.config.defaults
    }

    /// Runs the flow with the default shared state; failures are reported in the result.
    ///
    /// The run starts (its id, start time and `flow_started` event) when this is called; the
    /// returned future does the work.
    pub fn run(&self, input: I) -> impl Future<Output = FlowResult<O, N::State>> + '_
    where
        N::State: Default,
    {
        self.execute(Launch::fresh(input), N::State::default(), None)
    }

    /// Runs the flow with the given shared state.
    pub fn run_with_state(
        &self,
        input: I,
        state: N::State,
    ) -> impl Future<Output = FlowResult<O, N::State>> + '_ {
        self.execute(Launch::fresh(input), state, None)
    }

    /// Runs the flow; a failure is an `Err` that still carries the partial result.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// #[step] async fn fail(_: u8) -> Result<u8, std::io::Error> { Err(std::io::Error::other("no")) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = flow! { fail }.try_run(1).await.unwrap_err();
    /// assert_eq!(err.result.traces.len(), 1);
    /// assert_eq!(err.to_string(), "flow `flow` failed: step `fail` failed after 1 attempt(s): no");
    /// # }
    /// ```
    pub async fn try_run(
        &self,
        input: I,
    ) -> Result<FlowResult<O, N::State>, FlowFailed<O, N::State>>
    where
        N::State: Default,
    {
        self.execute(Launch::fresh(input), N::State::default(), None)
            .await
            .into_result()
    }

    /// Like [`try_run`](Self::try_run), with the given shared state.
    pub async fn try_run_with_state(
        &self,
        input: I,
        state: N::State,
    ) -> Result<FlowResult<O, N::State>, FlowFailed<O, N::State>> {
        self.execute(Launch::fresh(input), state, None)
            .await
            .into_result()
    }

    /// Runs the flow as a stream of lifecycle [`Event`](crate::Event)s; the last carries the result.
    pub fn stream(&self, input: I) -> EventStream<'_, O, N::State>
    where
        N::State: Default,
    {
        self.stream_with_state(input, N::State::default())
    }

    /// Like [`stream`](Self::stream), with the given shared state.
    pub fn stream_with_state(&self, input: I, state: N::State) -> EventStream<'_, O, N::State> {
        let queue = crate::event::new_queue(self.info.points.len());
        let run = self.execute(Launch::fresh(input), state, Some(Arc::clone(&queue)));
        EventStream::new(Box::pin(run), queue)
    }

    /// This flow with a checkpoint store: runs that save a checkpoint after every resumable
    /// point and can be resumed (see [`Durable`]). Every value the flow saves (its input, the
    /// value after each item, its output) must be `Serialize + Deserialize`: this is the one
    /// place that asks, with one error per value that is not, naming its type and where it is.
    pub fn durable(&self, store: impl CheckpointStore + 'static) -> Durable<'_, T, I, O, N, P, F>
    where
        P: crate::__private::Checkpointable<I, O> + 'static,
    {
        Durable {
            flow: self,
            store: Arc::new(store),
            state_codec: None,
            codec: Codec {
                input_to: P::input_to_json,
                input_from: P::input_from_json,
                output_to: P::output_to_json,
                output_from: P::output_from_json,
                point_to: point_json::<I, O, P>,
                point_from: P::from_json,
            },
        }
    }

    /// Starts a run: the run's core and handle are built here, so that the future, which lives
    /// as long as the run, holds only what the run needs (a suspended run costs little memory).
    fn execute(
        &self,
        launch: Launch<I, O, P>,
        state: N::State,
        events: Option<Arc<EventQueue>>,
    ) -> impl Future<Output = FlowResult<O, N::State>> + '_ {
        let started = Instant::now();
        let Launch {
            input,
            resume,
            answers,
            durable,
        } = launch;
        let erased: Arc<dyn std::any::Any + Send + Sync> = input.clone();
        let config = &*self.config;
        let mut core = RunCore::new(self.info.name, erased, config.capture, events);
        core.human = crate::human::Asker::new(Arc::clone(&config.input), answers);
        core.traces_on = config.traces;
        core.expect_traces(self.info.points.len());
        let mut loaded = None;
        let mut document = None;
        // The input for `flow_started`, only when values are captured and somebody listens.
        let input_json = if config.capture && core.has_listener() {
            (self.inner.2)(&input).map(Box::new)
        } else {
            None
        };
        if let Some(d) = durable {
            core = core.resumed(d.document.run_id, d.traces, d.session);
            loaded = d.loaded;
            document = Some(Box::new((d.document, d.output_json, d.loaded)));
            core.durable = Some(Box::new(crate::run::Durable {
                store: d.store,
                journal: tokio::sync::Mutex::new(crate::run::Journal {
                    claim: Some(d.claim),
                    seq: d.journal.0,
                    flushed: d.journal.1,
                }),
                point_json: d.point_json,
                state_json: d.state_json,
            }));
        }
        let core = Arc::new(core);
        let run_id = core.run_id;
        let state = Arc::new(state);
        let erased: Arc<dyn std::any::Any + Send + Sync> = state.clone();
        let rt = Rt::new(core, erased, config.defaults);
        rt.core.emit(|| RunEvent::FlowStarted {
            run_id,
            flow: self.info.name,
            input: input_json,
        });
        if let Some(point) = loaded {
            rt.core.emit(|| {
                RunEvent::CheckpointLoaded(CheckpointEvent {
                    point,
                    branch: None,
                    elapsed: rt.core.elapsed(),
                })
            });
        }
        async move {
            let span = tracing::info_span!("flow", flow = self.info.name, run_id = %run_id);
            let (steps, driver, _) = &*self.inner;
            let outcome = {
                let mut driving = pin!(
                    driver
                        .drive(steps, &rt, Feed::Borrowed(&*input), resume)
                        .instrument(span)
                );
                // Between two polls of the run anything may run: the attempt that comes next
                // reads the clock.
                poll_fn(|cx| {
                    // Question positions start at the run (see `site`).
                    let polled = crate::site::root(|| driving.as_mut().poll(cx));
                    if polled.is_pending() {
                        rt.core.interrupted();
                    }
                    polled
                })
                .await
            };
            // Boxed: the run's future then holds only what the driver needs while it runs.
            Box::pin(self.finish(rt, outcome, state, document, started)).await
        }
    }

    /// The result of a run whose driver has returned; a durable run's document is written.
    async fn finish(
        &self,
        rt: Rt,
        outcome: Result<O, Halt>,
        state: Arc<N::State>,
        document: Option<Box<Finish<O>>>,
        started: Instant,
    ) -> FlowResult<O, N::State> {
        let run_id = rt.core.run_id;
        let stop_error = match &outcome {
            // Boxed: rare, and its future would otherwise make every run's future larger.
            Err(_) => Box::pin(rt.stopped()).await.err(),
            Ok(_) => None,
        };
        let traces = rt.core.take_traces();
        let started_at = rt.core.started_at();
        let session = rt.core.session;
        let resumed_from = document.as_ref().and_then(|d| d.2);
        let (output, mut error) = match outcome {
            Ok(v) => (Some(v), None),
            Err(h) => (None, Some(h.into_error())),
        };
        if let Some(e) = stop_error {
            tracing::warn!(error = %e, "could not journal the traces of a stopped run");
        }
        let suspended = match error.take() {
            Some(FlowError::Suspended { questions }) => questions,
            other => {
                error = other;
                Vec::new()
            }
        };
        if let (Some(durable), Some(document)) = (&rt.core.durable, document) {
            let store = Arc::clone(&durable.store);
            // The final document is the run's last write: the claim goes with it.
            let claim = durable.journal.lock().await.claim.take();
            let (doc, output_json, _) = *document;
            let json = output.as_ref().map(output_json).transpose();
            let error_text = error.as_ref().map(ToString::to_string);
            if let Some(claim) = claim {
                // Boxed: only durable runs get here, and the document is large.
                let written = Box::pin(finish_document(
                    store,
                    &claim,
                    doc,
                    json,
                    error_text,
                    suspended.clone(),
                ));
                if let Err(e) = written.await {
                    match &error {
                        // The first failed write is the one to report (a full disk fails the
                        // checkpoint, then this document): the document still says the run
                        // is running, which a resume continues.
                        Some(FlowError::Checkpoint(first)) => {
                            tracing::warn!(error = %e, first = %first, "could not write the document of a run stopped by a failed checkpoint");
                        }
                        _ => error = Some(FlowError::Checkpoint(e)),
                    }
                }
                drop(claim);
            }
        }
        FlowResult {
            run_id,
            flow: self.info.name,
            success: error.is_none() && suspended.is_empty() && output.is_some(),
            failed_step: error
                .as_ref()
                .and_then(|e| e.step())
                .map(|s| Cow::Owned(s.to_string())),
            output,
            error,
            suspended,
            resumed_from,
            session,
            traces,
            state,
            started_at,
            duration: started.elapsed(),
        }
    }
}

/// What a durable run's end needs: its document, how to turn its output into JSON, and the
/// point it was resumed from.
type Finish<O> = (RunDocument, OutputJson<O>, Option<&'static str>);

/// Turns a run's output into JSON (chosen where `O: Serialize`, the durable API).
type OutputJson<O> = fn(&O) -> Result<serde_json::Value, serde_json::Error>;

impl<T, I, O, N, P, F> StepDef for Flow<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    type Input = I;
    type Output = O;
    type Error = FlowError;
    type Needs = N;

    fn name(&self) -> &'static str {
        self.info.name
    }

    fn inherits_defaults(&self) -> bool {
        false
    }

    fn capture_input(&self, input: &I) -> Option<serde_json::Value> {
        (self.inner.2)(input)
    }

    fn suspension(&self, error: &FlowError) -> Option<Vec<PendingInput>> {
        match error {
            FlowError::Suspended { questions } => Some(questions.clone()),
            _ => None,
        }
    }
}

impl<T, I, O, N, P, F> StepCall for Flow<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    async fn call<'a>(
        &'a self,
        input: Feed<'a, I>,
        ctx: &'a StepContext<N::State>,
    ) -> Result<O, FlowError> {
        let rt = Rt::child(ctx, self.config.defaults);
        let (steps, driver, _) = &*self.inner;
        // Its questions stand under its name.
        let seg = crate::site::Seg::Flow(ctx.step);
        crate::site::scoped(seg, driver.drive(steps, &rt, input, Resume::fresh()))
            .await
            .map_err(Halt::into_error)
    }
}

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
    /// The questions a suspended run waits on (see [`Durable::answer`]); empty unless it is
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
/// [`Flow::try_run`]).
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

/// How a run starts: fresh, or from a checkpoint.
struct Launch<I, O, P> {
    input: Arc<I>,
    resume: Resume<P>,
    /// Answers given to a resumed run: `(question, answer)`, oldest first.
    answers: Vec<(String, String)>,
    /// Boxed: a run future carries its launch until first polled, and most runs are not durable.
    durable: Option<Box<DurableLaunch<O>>>,
}

impl<I, O, P> Launch<I, O, P> {
    fn fresh(input: I) -> Self {
        Launch {
            input: Arc::new(input),
            resume: Resume::fresh(),
            answers: Vec::new(),
            durable: None,
        }
    }
}

/// What a durable run starts with.
struct DurableLaunch<O> {
    store: Arc<dyn CheckpointStore>,
    /// The run's claim, held until its final document is written.
    claim: Claim,
    document: RunDocument,
    traces: Vec<StepTrace>,
    /// Last journal sequence number and how many of `traces` are journaled.
    journal: (u64, usize),
    /// The point a resumed run continues from.
    loaded: Option<&'static str>,
    /// The session this launch starts (1 for a new run).
    session: u32,
    output_json: OutputJson<O>,
    point_json: crate::run::PointJson,
    /// Serialises the shared state into every journal entry, when it is saved.
    state_json: Option<crate::run::PointJson>,
}

/// Why a run could not be resumed. Every variant names the run and says what is wrong; the
/// checkpoint is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The store failed, or its files are unreadable, corrupt or of another version.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store has no checkpoint for this run.
    #[error("no checkpoint for run {0}")]
    NotFound(RunId),
    /// The checkpoint belongs to another flow.
    #[error("{location} is a checkpoint of flow `{found}`, not of flow `{expected}`")]
    OtherFlow {
        /// Where the checkpoint is.
        location: String,
        /// This flow's name.
        expected: String,
        /// The checkpoint's flow name.
        found: String,
    },
    /// The flow's structure changed since the checkpoint was written: resuming could run the
    /// wrong steps, so it is refused.
    #[error(
        "flow `{flow}` changed since {location} was written: it was `{saved}`, it is now `{now}`"
    )]
    FlowChanged {
        /// Where the checkpoint is.
        location: String,
        /// The flow's name.
        flow: String,
        /// The shape saved in the checkpoint.
        saved: String,
        /// The flow's shape now.
        now: String,
    },
    /// A saved value no longer deserialises into this flow's types.
    #[error("the saved {what} in {location} does not fit this flow's types: {source}")]
    Undecodable {
        /// Where the checkpoint is.
        location: String,
        /// Which value (`input`, `output`, `resumable point`).
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// An answer was given for a run that is not waiting for one.
    #[error("run {run_id} is not waiting for an answer (it is {status:?})")]
    NotSuspended {
        /// The run.
        run_id: RunId,
        /// Where it stands.
        status: RunStatus,
    },
    /// The run waits on several questions and the answer does not say which one it answers
    /// (see [`Durable::answer_to`]).
    #[error("run {run_id} waits on several questions ({}); name the one this answer is for", .pending.join(", "))]
    AmbiguousAnswer {
        /// The run.
        run_id: RunId,
        /// The pending questions ([`PendingInput::question`]) the answer could be for.
        pending: Vec<String>,
    },
    /// The answer names a question the run is not waiting on.
    #[error("run {run_id} is not waiting on question `{question}` (it waits on: {})", .pending.join(", "))]
    UnknownQuestion {
        /// The run.
        run_id: RunId,
        /// The name given.
        question: String,
        /// The pending questions.
        pending: Vec<String>,
    },
}

impl ResumeError {
    /// Fills in where the checkpoint is, for errors made before it was known.
    fn at(mut self, place: String) -> Self {
        if let ResumeError::Undecodable { location, .. } = &mut self
            && location.is_empty()
        {
            *location = place;
        }
        self
    }
}

/// A flow bound to a checkpoint store (see [`Flow::durable`]): its runs save a checkpoint after
/// every resumable point (each top-level item, each finished branch of a top-level parallel
/// group, each loop iteration) and can be resumed, in this process or another, without redoing
/// finished work.
///
/// The flow's input, output and the values between its items must be `Serialize` and
/// `Deserialize`; the shared state is not saved (resume with the state you want).
///
/// ```
/// use orchflow::{flow, step, MemoryStore};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// #[step] async fn inc(x: u32) -> u32 { CALLS.fetch_add(1, Ordering::SeqCst); x + 1 }
/// #[step] async fn flaky(x: u32) -> Result<u32, std::io::Error> {
///     if CALLS.load(Ordering::SeqCst) < 3 { Err(std::io::Error::other("not yet")) } else { Ok(x) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Arc::new(MemoryStore::default());
/// let f = flow! { inc => inc => flaky => inc };
/// let first = f.durable(store.clone()).run(0).await;
/// assert!(!first.success);
/// CALLS.fetch_add(1, Ordering::SeqCst); // the world changed
/// let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
/// assert_eq!(second.output, Some(3));
/// assert_eq!(CALLS.load(Ordering::SeqCst), 4, "the two finished `inc`s did not run again");
/// # }
/// ```
pub struct Durable<'f, T, I, O, N: StateReq, P, F> {
    flow: &'f Flow<T, I, O, N, P, F>,
    store: Arc<dyn CheckpointStore>,
    /// How the shared state is saved and restored, when it is ([`Durable::saving_state`]).
    state_codec: Option<StateCodec<N::State>>,
    /// The flow's values as JSON both ways, chosen where they are known to be serde
    /// ([`Flow::durable`]), so that nothing else here asks for serde.
    codec: Codec<I, O, P>,
}

/// A durable flow's values to and from JSON.
struct Codec<I, O, P> {
    input_to: fn(&I) -> Result<serde_json::Value, serde_json::Error>,
    input_from: fn(serde_json::Value) -> Result<I, serde_json::Error>,
    output_to: OutputJson<O>,
    output_from: fn(serde_json::Value) -> Result<O, serde_json::Error>,
    point_to: crate::run::PointJson,
    point_from: fn(serde_json::Value) -> Result<P, serde_json::Error>,
}

impl<I, O, P> Clone for Codec<I, O, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O, P> Copy for Codec<I, O, P> {}

/// The shared state's JSON both ways, chosen where it is known to be serde.
struct StateCodec<S> {
    to_json: crate::run::PointJson,
    from_json: fn(serde_json::Value) -> Result<S, serde_json::Error>,
}

impl<S> Clone for StateCodec<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for StateCodec<S> {}

fn state_to_json<S: Serialize + 'static>(
    s: &dyn std::any::Any,
) -> Option<Result<serde_json::Value, serde_json::Error>> {
    s.downcast_ref::<S>().map(serde_json::to_value)
}

fn state_from_json<S: DeserializeOwned>(v: serde_json::Value) -> Result<S, serde_json::Error> {
    serde_json::from_value(v)
}

impl<'f, T, I, O, N, P, F> Durable<'f, T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    /// Starts a new durable run with the default shared state.
    pub async fn run(&self, input: I) -> FlowResult<O, N::State>
    where
        N::State: Default,
    {
        self.run_as(RunId::new_v4(), input, N::State::default())
            .await
    }

    /// Starts a new durable run with the given id and shared state.
    pub async fn run_as(
        &self,
        run_id: RunId,
        input: I,
        state: N::State,
    ) -> FlowResult<O, N::State> {
        let launch = match self.create(run_id, input).await {
            Ok(l) => l,
            Err((input, e)) => return self.failed_to_start(run_id, input, state, e).await,
        };
        self.flow.execute(launch, state, None).await
    }

    /// Like [`run`](Self::run), as a stream of events.
    pub fn stream(&self, input: I) -> EventStream<'f, O, N::State>
    where
        N::State: Default,
    {
        let queue = crate::event::new_queue(self.flow.info.points.len());
        let events = Some(Arc::clone(&queue));
        let this = Durable {
            flow: self.flow,
            store: Arc::clone(&self.store),
            state_codec: self.state_codec,
            codec: self.codec,
        };
        let run = async move {
            let run_id = RunId::new_v4();
            let state = N::State::default();
            match this.create(run_id, input).await {
                Ok(launch) => this.flow.execute(launch, state, events).await,
                Err((input, e)) => {
                    // The stream still begins where every run's does.
                    if let Some(queue) = &events {
                        queue.lock().unwrap_or_else(|p| p.into_inner()).push(
                            RunEvent::FlowStarted {
                                run_id,
                                flow: this.flow.info.name,
                                input: None,
                            },
                        );
                    }
                    this.failed_to_start(run_id, input, state, e).await
                }
            }
        };
        EventStream::new(Box::pin(run), queue)
    }

    /// Continues a run from its checkpoint: finished items, branches and loop iterations are not
    /// run again. A completed run returns its result and runs nothing. A failed run retries from
    /// the point after its last success.
    pub async fn resume(&self, run_id: RunId) -> Result<FlowResult<O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        let restore = |saved| self.restored_state(saved);
        self.resume_inner(run_id, restore, None).await
    }

    /// Like [`resume`](Self::resume), with the given shared state (which wins over a saved one,
    /// see [`saving_state`](Self::saving_state)).
    pub async fn resume_with_state(
        &self,
        run_id: RunId,
        state: N::State,
    ) -> Result<FlowResult<O, N::State>, ResumeError> {
        self.resume_inner(run_id, |_| Ok(state), None).await
    }

    /// Saves the shared state with every checkpoint and restores it on resume (the default
    /// leaves it out: resume with the state you want). The state is serialised once per save,
    /// so keep it small.
    ///
    /// ```
    /// use orchflow::{flow, step, MemoryStore, StepContext};
    /// use std::sync::Mutex;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Seen { names: Mutex<Vec<String>> }
    ///
    /// #[step] async fn note(x: u32, ctx: &StepContext<Seen>) -> u32 {
    ///     ctx.state().names.lock().unwrap().push(format!("note {x}"));
    ///     x + 1
    /// }
    /// #[step] async fn check(x: u32) -> Result<u32, std::io::Error> {
    ///     if x < 3 { Err(std::io::Error::other("too small")) } else { Ok(x) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let f = flow! { note => check };
    /// let first = f.durable(store.clone()).saving_state().run(1).await;
    /// assert!(!first.success);
    /// // Another process resumes with the state as it was saved, not a default one.
    /// let second = f.durable(store.clone()).saving_state().resume(first.run_id).await;
    /// let state = second.unwrap().state;
    /// assert_eq!(*state.names.lock().unwrap(), ["note 1"]);
    /// # }
    /// ```
    pub fn saving_state(mut self) -> Self
    where
        N::State: Serialize + DeserializeOwned + 'static,
    {
        self.state_codec = Some(StateCodec {
            to_json: state_to_json::<N::State>,
            from_json: state_from_json::<N::State>,
        });
        self
    }

    /// The state a resume starts with: the saved one when the state is saved, else the default.
    fn restored_state(&self, saved: Option<serde_json::Value>) -> Result<N::State, ResumeError>
    where
        N::State: Default,
    {
        match (self.state_codec, saved) {
            (Some(codec), Some(json)) => {
                (codec.from_json)(json).map_err(|source| ResumeError::Undecodable {
                    location: String::new(),
                    what: "shared state",
                    source,
                })
            }
            _ => Ok(N::State::default()),
        }
    }

    /// Like [`resume`](Self::resume), as a stream of events (`checkpoint_loaded` first after
    /// `flow_started`).
    pub async fn resume_stream(
        &self,
        run_id: RunId,
    ) -> Result<EventStream<'f, O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        self.stream_from(run_id, None).await
    }

    /// Like [`answer_to`](Self::answer_to), as a stream of events: the answering process sees
    /// `checkpoint_loaded`, the question's `input_received` and the rest of the run live.
    /// `question` may be `None` when the run waits on one question.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use orchflow::human::{self, Answer};
    /// use orchflow::{flow, step, MemoryStore};
    ///
    /// #[step] async fn decide(a: Answer<u8>) -> bool { a.text == "yes" }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ok = human::ask("ok", |x: &u8| format!("ok {x}?"));
    /// let f = flow! { (ok) => decide }.with_input(human::Suspend);
    /// let store = MemoryStore::default();
    /// let waiting = f.durable(store.clone()).run(1).await;
    /// let events = f.durable(store.clone()).answer_stream(waiting.run_id, None, "yes").await.unwrap();
    /// let kinds: Vec<_> = events.map(|e| e.kind()).collect().await;
    /// assert_eq!(&kinds[..2], ["flow_started", "checkpoint_loaded"]);
    /// assert!(kinds.windows(2).any(|w| w == ["input_requested", "input_received"]));
    /// assert_eq!(kinds.last(), Some(&"flow_completed"));
    /// # }
    /// ```
    pub async fn answer_stream(
        &self,
        run_id: RunId,
        question: Option<&str>,
        answer: impl Into<String>,
    ) -> Result<EventStream<'f, O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        self.stream_from(run_id, Some((question, answer.into())))
            .await
    }

    async fn stream_from(
        &self,
        run_id: RunId,
        answer: Option<(Option<&str>, String)>,
    ) -> Result<EventStream<'f, O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        let (launch, done, saved) = self.load(run_id, answer).await?;
        let queue = crate::event::new_queue(self.flow.info.points.len());
        let events = Some(Arc::clone(&queue));
        let state = self
            .restored_state(saved)
            .map_err(|e| e.at(self.store.location(run_id)))?;
        let flow = self.flow;
        let run = async move {
            match (launch, done) {
                (Some(launch), _) => flow.execute(launch, state, events).await,
                (None, Some(done)) => done.into_result(state, flow.info.name),
                (None, None) => {
                    not_started(run_id, flow.info.name, state, StoreError::NotFound(run_id))
                }
            }
        };
        Ok(EventStream::new(Box::pin(run), queue))
    }

    /// Resumes a suspended run with the answer to its pending question. When the run waits on
    /// several, name the question with [`answer_to`](Self::answer_to)
    /// ([`ResumeError::AmbiguousAnswer`] otherwise).
    pub async fn answer(
        &self,
        run_id: RunId,
        answer: impl Into<String>,
    ) -> Result<FlowResult<O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        let answer = Some((None, answer.into()));
        let restore = |saved| self.restored_state(saved);
        self.resume_inner(run_id, restore, answer).await
    }

    /// Resumes a suspended run with the answer to one of its pending questions: `question` is
    /// the question's position ([`PendingInput::question`], such as `1/review`) or, when no
    /// other pending question has the same step, the step's name. The other questions stay
    /// pending: the run suspends again on them.
    ///
    /// ```
    /// use orchflow::human::{self, Answer};
    /// use orchflow::{flow, step, MemoryStore};
    ///
    /// #[step] fn both(x: (Answer<u8>, Answer<u8>)) -> String { format!("{} {}", x.0.text, x.1.text) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let legal = human::ask("legal", |_: &u8| "legal ok?".to_string());
    /// let brand = human::ask("brand", |_: &u8| "brand ok?".to_string());
    /// let f = flow! { [(legal), (brand)] => both }.with_input(human::Suspend);
    /// let store = MemoryStore::default();
    ///
    /// let waiting = f.durable(store.clone()).run(1).await;
    /// assert_eq!(waiting.suspended.len(), 2);
    /// let still = f.durable(store.clone()).answer_to(waiting.run_id, "brand", "fine").await.unwrap();
    /// assert_eq!(still.suspended[0].question, "0/legal");
    /// let done = f.durable(store.clone()).answer_to(waiting.run_id, "0/legal", "yes").await.unwrap();
    /// assert_eq!(done.output.as_deref(), Some("yes fine"));
    /// # }
    /// ```
    pub async fn answer_to(
        &self,
        run_id: RunId,
        question: &str,
        answer: impl Into<String>,
    ) -> Result<FlowResult<O, N::State>, ResumeError>
    where
        N::State: Default,
    {
        let answer = Some((Some(question), answer.into()));
        let restore = |saved| self.restored_state(saved);
        self.resume_inner(run_id, restore, answer).await
    }

    async fn resume_inner(
        &self,
        run_id: RunId,
        state: impl FnOnce(Option<serde_json::Value>) -> Result<N::State, ResumeError>,
        answer: Option<(Option<&str>, String)>,
    ) -> Result<FlowResult<O, N::State>, ResumeError> {
        let (launch, done, saved) = self.load(run_id, answer).await?;
        let state = state(saved).map_err(|e| e.at(self.store.location(run_id)))?;
        match (launch, done) {
            (Some(launch), _) => Ok(self.flow.execute(launch, state, None).await),
            (None, Some(done)) => Ok(done.into_result(state, self.flow.info.name)),
            (None, None) => Err(ResumeError::NotFound(run_id)),
        }
    }

    async fn create(&self, run_id: RunId, input: I) -> Result<Launch<I, O, P>, (I, StoreError)> {
        let info = self.flow.info;
        let now = SystemTime::now();
        let json = match (self.codec.input_to)(&input) {
            Ok(j) => j,
            Err(source) => {
                return Err((
                    input,
                    StoreError::Serialize {
                        what: "the flow's input",
                        source,
                    },
                ));
            }
        };
        let document = RunDocument {
            format: crate::store::FORMAT.to_string(),
            version: crate::store::FORMAT_VERSION,
            run_id,
            flow: info.name.to_string(),
            fingerprint: format!("{:016x}", info.fingerprint),
            shape: info.shape.to_string(),
            input: json,
            status: RunStatus::Running,
            pending: Vec::new(),
            output: None,
            error: None,
            created_at: now,
            updated_at: now,
        };
        let claim = match self.store.create(&document).await {
            Ok(claim) => claim,
            Err(e) => return Err((input, e)),
        };
        Ok(Launch {
            input: Arc::new(input),
            resume: Resume::fresh(),
            answers: Vec::new(),
            durable: Some(Box::new(DurableLaunch {
                store: Arc::clone(&self.store),
                claim,
                document,
                traces: Vec::new(),
                journal: (0, 0),
                loaded: None,
                session: 1,
                output_json: self.codec.output_to,
                point_json: self.codec.point_to,
                state_json: self.state_codec.map(|c| c.to_json),
            })),
        })
    }

    /// Claims and reads a checkpoint: a launch to continue it (with `answer` bound to its
    /// question and journaled), or the result of a completed run.
    #[allow(clippy::type_complexity)]
    async fn load(
        &self,
        run_id: RunId,
        answer: Option<(Option<&str>, String)>,
    ) -> Result<
        (
            Option<Launch<I, O, P>>,
            Option<Done<O>>,
            Option<serde_json::Value>,
        ),
        ResumeError,
    > {
        let info = self.flow.info;
        let location = self.store.location(run_id);
        // One writer per run: nothing is read, decided or run without the claim.
        let claim = match self.store.claim(run_id).await {
            Ok(claim) => claim,
            Err(StoreError::NotFound(id)) => return Err(ResumeError::NotFound(id)),
            Err(e) => return Err(e.into()),
        };
        let Some(checkpoint) = self.store.load(run_id).await? else {
            return Err(ResumeError::NotFound(run_id));
        };
        let Checkpoint {
            mut document,
            journal,
        } = checkpoint;
        if document.flow != info.name {
            return Err(ResumeError::OtherFlow {
                location,
                expected: info.name.to_string(),
                found: document.flow,
            });
        }
        if document.fingerprint != format!("{:016x}", info.fingerprint) {
            return Err(ResumeError::FlowChanged {
                location,
                flow: document.flow,
                saved: document.shape,
                now: info.shape.to_string(),
            });
        }
        let answer = match answer {
            None => None,
            Some((name, text)) => Some((answered_question(&document, name)?, text)),
        };
        let undecodable = |what| {
            let location = location.clone();
            move |source| ResumeError::Undecodable {
                location,
                what,
                source,
            }
        };
        let traces: Vec<StepTrace> = journal
            .iter()
            .flat_map(|e| e.traces.iter().cloned())
            .collect();
        // The shared state as last saved (only a run saving its state has one).
        let shared_state = journal.iter().rev().find_map(|e| e.state.clone());
        if document.status == RunStatus::Completed {
            let output = document
                .output
                .clone()
                .ok_or_else(|| ResumeError::Undecodable {
                    location: location.clone(),
                    what: "output",
                    source: <serde_json::Error as serde::de::Error>::custom(
                        "a completed run without an output",
                    ),
                })?;
            let output: O = (self.codec.output_from)(output).map_err(undecodable("output"))?;
            let loaded = saved_state(&journal, info.points).loaded;
            return Ok((
                None,
                Some(Done {
                    document,
                    output,
                    traces,
                    loaded,
                }),
                shared_state,
            ));
        }
        let input: I =
            (self.codec.input_from)(document.input.clone()).map_err(undecodable("input"))?;
        let saved = saved_state(&journal, info.points);
        let point = match saved.point {
            Some(json) => {
                Some((self.codec.point_from)(json).map_err(undecodable("resumable point"))?)
            }
            None => None,
        };
        let mut inner = Vec::with_capacity(saved.inner.len());
        for (name, path, value) in saved.inner {
            let mut json = serde_json::Map::with_capacity(1);
            json.insert(name.clone(), value);
            let p = (self.codec.point_from)(serde_json::Value::Object(json))
                .map_err(undecodable("inner resumable point"))?;
            inner.push((name, path, p));
        }
        // A checkpoint was read: the run says where it continues from, even before any point.
        let loaded = Some(saved.loaded.unwrap_or("start"));
        let session = traces.iter().map(|t| t.session).max().unwrap_or(0) + 1;
        let mut answers = saved.answers;
        let resume = Resume::new(point, inner);
        let mut seq = journal.last().map_or(0, |e| e.seq);
        // Earlier sessions' traces are journaled already; this session's count from zero.
        let flushed = 0;
        document.status = RunStatus::Running;
        document.pending = Vec::new();
        document.error = None;
        document.updated_at = SystemTime::now();
        self.store.put_document(&claim, &document).await?;
        if let Some((question, text)) = answer {
            // Journaled before anything runs, so that a crash from here on keeps the answer.
            let entry = JournalEntry::new(
                seq + 1,
                PointRecord::Answer {
                    question: question.clone(),
                    text: text.clone(),
                },
            );
            self.store.append(&claim, &entry).await?;
            seq += 1;
            answers.push((question, text));
        }
        Ok((
            Some(Launch {
                input: Arc::new(input),
                resume,
                answers,
                durable: Some(Box::new(DurableLaunch {
                    store: Arc::clone(&self.store),
                    claim,
                    document,
                    traces,
                    journal: (seq, flushed),
                    loaded,
                    session,
                    output_json: self.codec.output_to,
                    point_json: self.codec.point_to,
                    state_json: self.state_codec.map(|c| c.to_json),
                })),
            }),
            None,
            shared_state,
        ))
    }

    async fn failed_to_start(
        &self,
        run_id: RunId,
        input: I,
        state: N::State,
        e: StoreError,
    ) -> FlowResult<O, N::State> {
        drop(input);
        not_started(run_id, self.flow.info.name, state, e)
    }
}

/// The question an answer is for: the one named (by position, or by step when that is
/// unambiguous), or the only one pending.
fn answered_question(document: &RunDocument, name: Option<&str>) -> Result<String, ResumeError> {
    let run_id = document.run_id;
    if document.status != RunStatus::Suspended || document.pending.is_empty() {
        return Err(ResumeError::NotSuspended {
            run_id,
            status: document.status.clone(),
        });
    }
    let pending = || {
        document
            .pending
            .iter()
            .map(|p| p.question.clone())
            .collect()
    };
    let matching: Vec<&PendingInput> = match name {
        None => document.pending.iter().collect(),
        Some(name) => match document.pending.iter().find(|p| p.question == name) {
            Some(exact) => vec![exact],
            None => document
                .pending
                .iter()
                .filter(|p| p.is_named(name))
                .collect(),
        },
    };
    match (matching.as_slice(), name) {
        ([one], _) => Ok(one.question.clone()),
        ([], Some(name)) => Err(ResumeError::UnknownQuestion {
            run_id,
            question: name.to_string(),
            pending: pending(),
        }),
        (_, _) => Err(ResumeError::AmbiguousAnswer {
            run_id,
            pending: matching.iter().map(|p| p.question.clone()).collect(),
        }),
    }
}

/// Writes a durable run's final document: its status, output, error or pending questions.
async fn finish_document(
    store: Arc<dyn CheckpointStore>,
    claim: &Claim,
    mut doc: RunDocument,
    output: Result<Option<serde_json::Value>, serde_json::Error>,
    error: Option<String>,
    suspended: Vec<PendingInput>,
) -> Result<(), StoreError> {
    doc.output = output.map_err(|source| StoreError::Serialize {
        what: "the output",
        source,
    })?;
    doc.status = match (&doc.output, suspended.is_empty(), &error) {
        (_, false, _) => RunStatus::Suspended,
        (_, _, Some(_)) => RunStatus::Failed,
        (Some(_), _, _) => RunStatus::Completed,
        (None, true, None) => RunStatus::Failed,
    };
    doc.error = error;
    doc.pending = suspended;
    doc.updated_at = SystemTime::now();
    store.put_document(claim, &doc).await
}

fn point_json<I, O, P: crate::__private::Checkpointable<I, O> + 'static>(
    p: &dyn std::any::Any,
) -> Option<Result<serde_json::Value, serde_json::Error>> {
    p.downcast_ref::<P>().map(P::to_json)
}

/// A completed run read back from its checkpoint.
struct Done<O> {
    document: RunDocument,
    output: O,
    traces: Vec<StepTrace>,
    /// The last point saved.
    loaded: Option<&'static str>,
}

impl<O> Done<O> {
    fn into_result<S>(self, state: S, flow: &'static str) -> FlowResult<O, S> {
        let started_at = self.document.created_at;
        let duration = self
            .document
            .updated_at
            .duration_since(started_at)
            .unwrap_or(Duration::ZERO);
        FlowResult {
            run_id: self.document.run_id,
            flow,
            output: Some(self.output),
            success: true,
            failed_step: None,
            error: None,
            suspended: Vec::new(),
            resumed_from: Some(self.loaded.unwrap_or("start")),
            session: self.traces.iter().map(|t| t.session).max().unwrap_or(1),
            traces: self.traces.into(),
            state: Arc::new(state),
            started_at,
            duration,
        }
    }
}

/// The result of a run that could not start because its checkpoint could not be written or read.
fn not_started<O, S>(
    run_id: RunId,
    flow: &'static str,
    state: S,
    e: StoreError,
) -> FlowResult<O, S> {
    FlowResult {
        run_id,
        flow,
        output: None,
        success: false,
        failed_step: None,
        error: Some(FlowError::Checkpoint(e)),
        suspended: Vec::new(),
        resumed_from: None,
        session: 1,
        traces: Traces::default(),
        state: Arc::new(state),
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
    }
}

/// What a journal says to resume from.
struct Saved {
    /// The last top-level point, with the parallel branches finished after it filled in.
    point: Option<serde_json::Value>,
    /// The inner positions saved after it: variant name, loop path, value.
    inner: Vec<(String, Vec<u32>, serde_json::Value)>,
    /// The last position saved (one of `points`), for `checkpoint_loaded`.
    loaded: Option<&'static str>,
    /// The answers not yet retired by a save: `(question, answer)`, oldest first.
    answers: Vec<(String, String)>,
}

/// The state to resume from: the last saved point, with the parallel branches finished after it
/// filled in, and the inner positions saved after it.
fn saved_state(journal: &[JournalEntry], points: &'static [&'static str]) -> Saved {
    let known = |name: &str| points.iter().copied().find(|p| *p == name);
    let at = journal
        .iter()
        .rposition(|e| matches!(e.record, PointRecord::Point(_)));
    let (mut point, after) = match at {
        Some(at) => match &journal[at].record {
            PointRecord::Point(json) => (Some(json.clone()), &journal[at + 1..]),
            _ => (None, journal),
        },
        None => (None, journal),
    };
    let mut loaded = point
        .as_ref()
        .and_then(|json| json.as_object())
        .and_then(|o| o.keys().next())
        .map(|k| known(k).unwrap_or("start"));
    // Answers live until a save retires them, wherever they are in the journal.
    let mut answers: Vec<(String, String)> = Vec::new();
    for entry in journal {
        if let PointRecord::Answer { question, text } = &entry.record {
            answers.push((question.clone(), text.clone()));
        }
        for q in &entry.answered {
            if let Some(i) = answers.iter().position(|(a, _)| a == q) {
                answers.remove(i);
            }
        }
    }
    let mut inner = Vec::new();
    for entry in after {
        match &entry.record {
            PointRecord::Branch {
                group,
                index,
                value,
            } => {
                if let Some(slot) = point
                    .as_mut()
                    .and_then(|json| json.get_mut(group.as_str()))
                    .and_then(|g| g.get_mut("done"))
                    .and_then(|d| d.get_mut(*index))
                {
                    *slot = value.clone();
                }
            }
            PointRecord::Inner { name, path, value } => {
                loaded = Some(known(name).unwrap_or("start"));
                inner.push((name.clone(), path.clone(), value.clone()));
            }
            PointRecord::Point(_) | PointRecord::Stopped | PointRecord::Answer { .. } => {}
        }
    }
    Saved {
        point,
        inner,
        loaded,
        answers,
    }
}
