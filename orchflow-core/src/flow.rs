//! Flow values: what `flow!` produces ([`Flow`], [`FlowInfo`]) and how a run of one starts and
//! ends. What a run returns is in `result`; durable runs are in `durable`.

use crate::context::StepContext;
use crate::durable::journal::finish_document;
use crate::durable::resume::Resume;
use crate::error::{FlowError, StepError};
use crate::event::{CheckpointEvent, EventQueue, EventStream, RunEvent, new_queue};
use crate::human::{Asker, InputProvider, Stdin};
use crate::policy::{FlowDefaults, RetryPolicy};
use crate::result::{FlowFailed, FlowResult};
use crate::run::{DurableRun, Halt, Journal, PointJson, Rt, RunCore};
use crate::step::bounds::StateReq;
use crate::step::{Feed, StepCall, StepDef};
use crate::store::{CheckpointStore, Claim, PendingInput, RunDocument};
use crate::trace::StepTrace;
use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Static facts about a flow, computed by `flow!` at compile time: its name, fingerprint,
/// shape, resumable points and [graph](crate::graph).
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn a(x: u8) -> u8 { x }
/// #[step] async fn b(x: &u8) -> u8 { *x }
/// let f = flow! { #[flow(name = "ab")] a => [b, b] };
/// let info = f.info();
/// assert_eq!((info.name, info.shape), ("ab", "a => [b, b]"));
/// assert_eq!(info.points, ["AfterA", "InGroup2", "AfterGroup2"]);
/// assert_eq!(info.graph.node("1/1/0").map(|n| n.label.as_ref()), Some("b"));
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
    /// The flow's structure as data, as the macro knows it (see [`graph`](crate::graph));
    /// [`Flow::graph`] adds what only the step values know (run-time names, policies, nested
    /// flows).
    pub graph: &'static crate::graph::FlowGraph,
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
    /// The last element is the most traces one session of this flow has recorded (see
    /// [`traces_seen`](Self::traces_seen)).
    pub(crate) inner: Arc<Inner<T, F, I>>,
    pub(crate) info: &'static FlowInfo,
    /// Shared: a flow is cloned into every task that runs it, so it stays three words.
    config: Arc<FlowConfig>,
    _types: PhantomData<Signature<I, O, N, P>>,
}

/// What every clone of a flow shares: its steps, its driver, its input's JSON form, the facts
/// its graph takes from the steps, the most traces one of its sessions has recorded, and its
/// graph once made.
pub(crate) type Inner<T, F, I> = (
    T,
    F,
    InputJson<I>,
    Describe<T>,
    AtomicU16,
    std::sync::OnceLock<crate::graph::FlowGraph>,
);

/// The flow's input as JSON, when its type is `Serialize` (chosen by `flow!` where the type is
/// known).
type InputJson<I> = fn(&I) -> Option<serde_json::Value>;

/// What the steps of a flow say of themselves at run time, in order of appearance (names,
/// policies, nested graphs), for [`Flow::graph`].
pub(crate) type Describe<T> = fn(&T) -> Vec<crate::graph::StepFacts>;

/// A flow's settings (see the builder methods of [`Flow`]).
#[derive(Clone)]
struct FlowConfig {
    defaults: FlowDefaults,
    /// Value capture as set; unset, on for durable runs and off otherwise.
    capture: Option<bool>,
    traces: bool,
    input: Arc<dyn InputProvider>,
    /// Earlier fingerprints declared compatible, with the reason given
    /// ([`Flow::compatible_with`]).
    compatible: Vec<(String, String)>,
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
    /// Builds a flow from its generated parts; generated code calls `__private::new_flow`.
    pub(crate) fn new(
        info: &'static FlowInfo,
        defaults: FlowDefaults,
        _needs: PhantomData<N>,
        steps: T,
        driver: F,
        input_json: InputJson<I>,
        describe: Describe<T>,
    ) -> Self
    where
        // Stated as an `Fn` bound (not only through `Driver`) so that the compiler deduces the
        // generated closure's signature from it.
        F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Resume<P>) -> DriverFuture<'a, O>,
    {
        Flow {
            inner: Arc::new((
                steps,
                driver,
                input_json,
                describe,
                AtomicU16::new(0),
                std::sync::OnceLock::new(),
            )),
            info,
            config: Arc::new(FlowConfig {
                defaults,
                capture: None,
                traces: true,
                input: Arc::new(Stdin),
                compatible: Vec::new(),
            }),
            _types: PhantomData,
        }
    }

    /// Static facts about this flow (name, fingerprint, shape).
    pub fn info(&self) -> &'static FlowInfo {
        self.info
    }

    /// The flow's structure as data: [`FlowInfo::graph`] with what only the step values know
    /// filled in (names of steps given as values, retry and timeout options, the graphs of
    /// nested flows in [`FlowGraph::flows`](crate::graph::FlowGraph::flows)).
    ///
    /// ```
    /// use orchflow::graph::NodeKind;
    /// use orchflow::{flow, step};
    /// #[step(retry = 2)] async fn a(x: u8) -> u8 { x }
    /// let inner = flow! { #[flow(name = "inner")] a };
    /// let g = flow! { a => (inner) }.graph();
    /// assert!(matches!(g.nodes[0].kind, NodeKind::Step { retry: Some(2), .. }));
    /// assert!(matches!(&g.nodes[1].kind, NodeKind::Step { flow: Some(r), .. } if r.name == "inner"));
    /// assert_eq!(g.flows[0].name, "inner");
    /// ```
    pub fn graph(&self) -> crate::graph::FlowGraph {
        self.info.graph.with_facts((self.inner.3)(&self.inner.0))
    }

    /// The flow's graph, made once per flow value (its steps do not change): what a durable
    /// run gives its store, without building it again for every run.
    pub(crate) fn graph_once(&self) -> &crate::graph::FlowGraph {
        self.inner.5.get_or_init(|| self.graph())
    }

    /// How many traces a session of this flow is expected to record: the most one has recorded
    /// so far, and at first the number of its resumable points (about one per step).
    fn traces_seen(&self) -> usize {
        usize::from(self.inner.4.load(Ordering::Relaxed)).max(self.info.points.len())
    }

    /// The flow's name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The flow's structural fingerprint as checkpoints write it (16 hex digits): it changes
    /// when the flow's shape does.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// #[step] async fn inc(x: u32) -> u32 { x + 1 }
    /// let f = flow! { inc };
    /// assert_eq!(f.fingerprint().len(), 16);
    /// assert_ne!(f.fingerprint(), flow! { inc => inc }.fingerprint());
    /// assert_eq!(f.key().name, f.name());
    /// ```
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", self.info.fingerprint)
    }

    /// The flow's name and fingerprint: how a worker's registry and a queue know it.
    pub fn key(&self) -> crate::store::FlowKey {
        crate::store::FlowKey::new(self.info.name, self.fingerprint())
    }

    /// Records each attempt's input and output as JSON in its [`StepTrace`] when the step's
    /// types are `Serialize`. Unset, durable runs record them (a [replay](crate::replay) serves
    /// recorded outputs) and other runs do not (it costs a serialisation per attempt).
    pub fn capture_values(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).capture = Some(on);
        self
    }

    /// Declares that runs recorded under the earlier `fingerprint` (16 hex digits, as
    /// [`fingerprint`](Self::fingerprint) and replay reports show it) may be resumed by this
    /// flow: the change since was reviewed, and `reason` says why it is safe. A resume of such a
    /// run continues from its journal when its saved points read back into this flow's state
    /// (else it fails with [`ResumeError::Undecodable`](crate::ResumeError::Undecodable)); a
    /// [replay](crate::replay) reports the declaration with its verdict, so a declaration that
    /// a replay contradicts is found before a deploy. Workers take such runs too.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// #[step] async fn plan(x: u32) -> u32 { x }
    /// #[step] async fn audit(x: &u32) -> u32 { *x }
    /// let v1 = flow! { #[flow(name = "launch")] plan };
    /// let v2 = flow! { #[flow(name = "launch")] plan => audit }
    ///     .compatible_with(&v1.fingerprint(), "audit only reads the plan; old runs take it at the end");
    /// assert_eq!(v2.declared(&v1.fingerprint()), Some("audit only reads the plan; old runs take it at the end"));
    /// assert_eq!(v2.declared("0000000000000000"), None);
    /// ```
    pub fn compatible_with(mut self, fingerprint: &str, reason: &str) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.compatible.retain(|(f, _)| f != fingerprint);
        config
            .compatible
            .push((fingerprint.to_string(), reason.to_string()));
        self
    }

    /// The reason given for declaring runs of `fingerprint` compatible
    /// ([`compatible_with`](Self::compatible_with)), if they are.
    pub fn declared(&self, fingerprint: &str) -> Option<&str> {
        self.config
            .compatible
            .iter()
            .find(|(f, _)| f == fingerprint)
            .map(|(_, r)| r.as_str())
    }

    /// Every earlier fingerprint declared compatible, with its reason, in the order declared.
    pub fn declarations(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config
            .compatible
            .iter()
            .map(|(f, r)| (f.as_str(), r.as_str()))
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
    /// [`Suspend`](crate::human::Suspend) to stop a durable run until [`Durable::answer`](crate::Durable::answer).
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
        let queue = new_queue(self.info.points.len());
        let run = self.execute(Launch::fresh(input), state, Some(Arc::clone(&queue)));
        EventStream::new(Box::pin(run), queue)
    }

    /// Starts a run: the run's core and handle are built here, so that the future, which lives
    /// as long as the run, holds only what the run needs (a suspended run costs little memory).
    pub(crate) fn execute(
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
            replay,
        } = launch;
        let erased: Arc<dyn std::any::Any + Send + Sync> = input.clone();
        let config = &*self.config;
        let capture = config.capture.unwrap_or(durable.is_some());
        let mut core = RunCore::new(self.info.name, erased, capture, events);
        core.human = Asker::new(Arc::clone(&config.input), answers);
        core.traces_on = config.traces;
        core.expect_traces(self.traces_seen());
        let mut loaded = None;
        let mut document = None;
        // The input for `flow_started`, only when values are captured and somebody listens.
        let input_json = if capture && core.has_listener() {
            (self.inner.2)(&input).map(Box::new)
        } else {
            None
        };
        if let Some(d) = durable {
            core = core.resumed(d.document.run_id, d.traces, d.session);
            loaded = d.loaded;
            document = Some(Box::new((d.document, d.output_json, d.loaded)));
            core.durable = Some(Box::new(DurableRun {
                store: d.store,
                journal: tokio::sync::Mutex::new(Journal {
                    claim: Some(d.claim),
                    seq: d.journal.0,
                    flushed: d.journal.1,
                }),
                point_json: d.point_json,
                state_json: d.state_json,
            }));
        }
        core.replay = replay;
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
            let (steps, driver, ..) = &*self.inner;
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
                        // A replay whose calls left are all parked can go no further.
                        if rt.core.replay.as_ref().is_some_and(|r| r.stuck()) {
                            return std::task::Poll::Ready(Err(Halt::new(
                                FlowError::ReplayStopped,
                            )));
                        }
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
        // The next run of this flow makes room for as many traces at once, rather than
        // growing its buffer (and copying it) as this one did: a flow of nested flows and
        // groups records many more traces than it has resumable points.
        let recorded = u16::try_from(rt.core.trace_count()).unwrap_or(u16::MAX);
        self.inner.4.fetch_max(recorded, Ordering::Relaxed);
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
                    claim,
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
pub(crate) type OutputJson<O> = fn(&O) -> Result<serde_json::Value, serde_json::Error>;

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

    fn graph(&self) -> Option<crate::graph::FlowGraph> {
        Some(Flow::graph(self))
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
        let Some(rt) = Rt::child(ctx, self.config.defaults) else {
            // Every context is one of a run's (the core is the only `RunView`).
            return Err(FlowError::Step {
                step: Cow::Borrowed(ctx.step),
                attempts: 0,
                source: StepError::Panicked("a nested flow's context is not a run's".into()),
            });
        };
        let (steps, driver, ..) = &*self.inner;
        // Its questions stand under its name.
        let seg = crate::site::Seg::Flow(ctx.step);
        crate::site::scoped(seg, driver.drive(steps, &rt, input, Resume::fresh()))
            .await
            .map_err(Halt::into_error)
    }
}

/// How a run starts: fresh, or from a checkpoint.
pub(crate) struct Launch<I, O, P> {
    pub(crate) input: Arc<I>,
    pub(crate) resume: Resume<P>,
    /// Answers given to a resumed run: `(question, answer)`, oldest first.
    pub(crate) answers: Vec<(String, String)>,
    /// Boxed: a run future carries its launch until first polled, and most runs are not durable.
    pub(crate) durable: Option<Box<DurableLaunch<O>>>,
    /// The replayer of a run that replays or forks a recording.
    pub(crate) replay: Option<Arc<crate::replay::serve::Replayer>>,
}

impl<I, O, P> Launch<I, O, P> {
    pub(crate) fn fresh(input: I) -> Self {
        Launch {
            input: Arc::new(input),
            resume: Resume::fresh(),
            answers: Vec::new(),
            durable: None,
            replay: None,
        }
    }
}

/// What a durable run starts with.
pub(crate) struct DurableLaunch<O> {
    pub(crate) store: Arc<dyn CheckpointStore>,
    /// The run's claim, held until its final document is written.
    pub(crate) claim: Claim,
    pub(crate) document: RunDocument,
    pub(crate) traces: Vec<StepTrace>,
    /// Last journal sequence number and how many of `traces` are journaled.
    pub(crate) journal: (u64, usize),
    /// The point a resumed run continues from.
    pub(crate) loaded: Option<&'static str>,
    /// The session this launch starts (1 for a new run).
    pub(crate) session: u32,
    pub(crate) output_json: OutputJson<O>,
    pub(crate) point_json: PointJson,
    /// Serialises the shared state into every journal entry, when it is saved.
    pub(crate) state_json: Option<PointJson>,
}
