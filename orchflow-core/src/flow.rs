//! Flow values: what `flow!` produces, how they run, and what a run returns.

use crate::context::{RunId, StepContext};
use crate::error::FlowError;
use crate::event::{EventQueue, EventStream, RunEvent};
use crate::policy::{FlowDefaults, RetryPolicy};
use crate::run::{Halt, Rt, RunCore};
use crate::step::{Feed, StateReq, StepCall, StepDef};
use crate::trace::StepTrace;
use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
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
/// assert_eq!(info.points, ["AfterA", "AfterGroup2"]);
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
/// a point of the generated state, it runs the flow to its end.
#[doc(hidden)]
pub trait Driver<T, I, O, P>: Send + Sync + 'static {
    fn drive<'a>(
        &'a self,
        steps: &'a T,
        rt: &'a Rt,
        input: Feed<'a, I>,
        resume: Option<P>,
    ) -> DriverFuture<'a, O>;
}

impl<T, I, O, P, F> Driver<T, I, O, P> for F
where
    F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Option<P>) -> DriverFuture<'a, O>
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
        resume: Option<P>,
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
    inner: Arc<(T, F)>,
    info: &'static FlowInfo,
    defaults: FlowDefaults,
    capture: bool,
    _types: PhantomData<Signature<I, O, N, P>>,
}

impl<T, I, O, N, P, F> Clone for Flow<T, I, O, N, P, F> {
    fn clone(&self) -> Self {
        Flow {
            inner: Arc::clone(&self.inner),
            info: self.info,
            defaults: self.defaults,
            capture: self.capture,
            _types: PhantomData,
        }
    }
}

impl<T, I, O, N, P, F> std::fmt::Debug for Flow<T, I, O, N, P, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.info.name)
            .field("shape", &self.info.shape)
            .field("defaults", &self.defaults)
            .field("capture_values", &self.capture)
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
    ) -> Self
    where
        // Stated as an `Fn` bound (not only through `Driver`) so that the compiler deduces the
        // generated closure's signature from it.
        F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Option<P>) -> DriverFuture<'a, O>,
    {
        Flow {
            inner: Arc::new((steps, driver)),
            info,
            defaults,
            capture: false,
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
        self.capture = on;
        self
    }

    /// Sets the retry policy of steps that set none (the step's own policy wins).
    pub fn default_retry(mut self, policy: RetryPolicy) -> Self {
        self.defaults.retry = Some(policy);
        self
    }

    /// Sets the per-attempt timeout of steps that set none.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = Some(timeout);
        self
    }

    /// The defaults in force.
    pub fn defaults(&self) -> FlowDefaults {
        self.defaults
    }

    /// Runs the flow with the default shared state; failures are reported in the result.
    pub async fn run(&self, input: I) -> FlowResult<O, N::State>
    where
        N::State: Default,
    {
        self.execute(input, N::State::default(), None).await
    }

    /// Runs the flow with the given shared state.
    pub async fn run_with_state(&self, input: I, state: N::State) -> FlowResult<O, N::State> {
        self.execute(input, state, None).await
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
        self.execute(input, N::State::default(), None)
            .await
            .into_result()
    }

    /// Like [`try_run`](Self::try_run), with the given shared state.
    pub async fn try_run_with_state(
        &self,
        input: I,
        state: N::State,
    ) -> Result<FlowResult<O, N::State>, FlowFailed<O, N::State>> {
        self.execute(input, state, None).await.into_result()
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
        let queue = Arc::new(EventQueue::default());
        let run = self.execute(input, state, Some(Arc::clone(&queue)));
        EventStream::new(Box::pin(run), queue)
    }

    async fn execute(
        &self,
        input: I,
        state: N::State,
        events: Option<Arc<EventQueue>>,
    ) -> FlowResult<O, N::State> {
        let started = Instant::now();
        let input = Arc::new(input);
        let erased: Arc<dyn std::any::Any + Send + Sync> = input.clone();
        let core = Arc::new(RunCore::new(self.info.name, erased, self.capture, events));
        let run_id = core.run_id;
        let state = Arc::new(state);
        let erased: Arc<dyn std::any::Any + Send + Sync> = state.clone();
        let rt = Rt::new(core, erased, self.defaults);
        rt.core.emit(|| RunEvent::FlowStarted {
            run_id,
            flow: self.info.name,
        });
        let span = tracing::info_span!("flow", flow = self.info.name, run_id = %run_id);
        let (steps, driver) = &*self.inner;
        let outcome = driver
            .drive(steps, &rt, Feed::Borrowed(&*input), None)
            .instrument(span)
            .await;
        let traces = rt.core.take_traces();
        let started_at = rt.core.started_at();
        let (output, error) = match outcome {
            Ok(v) => (Some(v), None),
            Err(h) => (None, Some(h.into_error())),
        };
        FlowResult {
            run_id,
            flow: self.info.name,
            success: error.is_none(),
            failed_step: error
                .as_ref()
                .and_then(|e| e.step())
                .map(|s| Cow::Owned(s.to_string())),
            output,
            error,
            traces,
            state,
            started_at,
            duration: started.elapsed(),
        }
    }
}

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
        let rt = Rt::child(ctx, self.defaults);
        let (steps, driver) = &*self.inner;
        driver
            .drive(steps, &rt, input, None)
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
    /// One trace per attempt of every step, in the order attempts ended.
    pub traces: Vec<StepTrace>,
    /// The run's shared state after the run.
    pub state: Arc<S>,
    /// When the run started.
    pub started_at: SystemTime,
    /// How long the run took.
    pub duration: Duration,
}

impl<O, S> FlowResult<O, S> {
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
