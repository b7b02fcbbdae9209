//! Durable runs: the [`Durable`] API (a flow bound to a checkpoint store), how its runs start
//! and resume, and the error of a resume.
//!
//! * this file: the API ([`Flow::durable`], [`Durable`]'s methods), [`ResumeError`], the
//!   codecs that turn the flow's values into JSON, and a new run's first document;
//! * [`journal`]: writing the journal while a run goes (points, branches, inner positions, the
//!   entry of a stopped run) and the run's final document;
//! * [`load`]: reading a checkpoint back into a launch (or a completed run's result);
//! * [`replay`]: replays and forks of recorded runs ([`crate::replay`]);
//! * [`resume`]: what a journal says to resume from, and what a generated driver replays
//!   (`Resume`, `Memo`).

pub(crate) mod journal;
mod load;
mod queue;
mod replay;
pub(crate) mod resume;

use self::load::not_started;
pub use self::replay::ForkError;
use crate::context::RunId;
use crate::event::{EventStream, RunEvent, new_queue};
use crate::flow::{Driver, DurableLaunch, Flow, Launch, OutputJson};
use crate::result::FlowResult;
use crate::run::PointJson;
use crate::step::bounds::StateReq;
use crate::store::{CheckpointStore, RunDocument, RunStatus, StoreError};
use resume::Resume;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::SystemTime;

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
        /// The pending questions ([`PendingInput::question`](crate::store::PendingInput::question)) the answer could be for.
        pending: Vec<String>,
    },
    /// The run was cancelled ([`RunQueue::cancel`](crate::store::RunQueue::cancel)): it is
    /// never run again.
    #[error("run {0} was cancelled")]
    Cancelled(RunId),
    /// The run completed: there is nothing to resume ([`ops::requeue`](crate::store::ops::requeue)).
    #[error("run {0} is completed; there is nothing to resume")]
    Finished(RunId),
    /// The run waits on questions: answer them instead of resuming it
    /// ([`ops::requeue`](crate::store::ops::requeue)).
    #[error("run {run_id} waits on questions ({}); answer them to continue it", .pending.join(", "))]
    StillWaiting {
        /// The run.
        run_id: RunId,
        /// The pending questions.
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
    pub(crate) fn at(mut self, place: String) -> Self {
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
    pub(crate) flow: &'f Flow<T, I, O, N, P, F>,
    pub(crate) store: Arc<dyn CheckpointStore>,
    /// How the shared state is saved and restored, when it is ([`Durable::saving_state`]).
    pub(crate) state_codec: Option<StateCodec<N::State>>,
    /// The flow's values as JSON both ways, chosen where they are known to be serde
    /// ([`Flow::durable`]), so that nothing else here asks for serde.
    pub(crate) codec: Codec<I, O, P>,
}

/// A durable flow's values to and from JSON.
pub(crate) struct Codec<I, O, P> {
    pub(crate) input_to: fn(&I) -> Result<serde_json::Value, serde_json::Error>,
    pub(crate) input_from: fn(serde_json::Value) -> Result<I, serde_json::Error>,
    pub(crate) output_to: OutputJson<O>,
    pub(crate) output_from: fn(serde_json::Value) -> Result<O, serde_json::Error>,
    pub(crate) point_to: PointJson,
    pub(crate) point_from: fn(serde_json::Value) -> Result<P, serde_json::Error>,
}

impl<I, O, P> Clone for Codec<I, O, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O, P> Copy for Codec<I, O, P> {}

/// The shared state's JSON both ways, chosen where it is known to be serde.
pub(crate) struct StateCodec<S> {
    pub(crate) to_json: PointJson,
    pub(crate) from_json: fn(serde_json::Value) -> Result<S, serde_json::Error>,
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

impl<T, I, O, N, P, F> Flow<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    /// This flow with a checkpoint store: runs that save a checkpoint after every resumable
    /// point and can be resumed (see [`Durable`]). Every value the flow saves (its input, the
    /// value after each item, its output) must be `Serialize + Deserialize`: this is the one
    /// place that asks, with one error per value that is not, naming its type and where it is.
    pub fn durable(&self, store: impl CheckpointStore + 'static) -> Durable<'_, T, I, O, N, P, F>
    where
        P: Checkpointable<I, O> + 'static,
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
}

fn point_json<I, O, P: Checkpointable<I, O> + 'static>(
    p: &dyn std::any::Any,
) -> Option<Result<serde_json::Value, serde_json::Error>> {
    p.downcast_ref::<P>().map(P::to_json)
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
        let queue = new_queue(self.flow.info.points.len());
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
        let queue = new_queue(self.flow.info.points.len());
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
    /// the question's position ([`PendingInput::question`](crate::store::PendingInput::question), such as `1/review`) or, when no
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
        let loaded = self.load(run_id, answer).await?;
        self.run_loaded(run_id, loaded, state).await
    }

    /// Runs a loaded checkpoint to its next stop (or returns a completed run's result), with
    /// the shared state `state` makes from the saved one.
    pub(crate) async fn run_loaded(
        &self,
        run_id: RunId,
        (launch, done, saved): load::Loaded<I, O, P>,
        state: impl FnOnce(Option<serde_json::Value>) -> Result<N::State, ResumeError>,
    ) -> Result<FlowResult<O, N::State>, ResumeError> {
        let state = state(saved).map_err(|e| e.at(self.store.location(run_id)))?;
        match (launch, done) {
            (Some(launch), _) => Ok(self.flow.execute(launch, state, None).await),
            (None, Some(done)) => Ok(done.into_result(state, self.flow.info.name)),
            (None, None) => Err(ResumeError::NotFound(run_id)),
        }
    }

    /// The first document of a run of this flow with `input`.
    pub(crate) fn document(
        &self,
        run_id: RunId,
        input: &I,
        status: RunStatus,
    ) -> Result<RunDocument, StoreError> {
        let info = self.flow.info;
        let now = SystemTime::now();
        let json = (self.codec.input_to)(input).map_err(|source| StoreError::Serialize {
            what: "the flow's input",
            source,
        })?;
        Ok(RunDocument {
            format: crate::store::FORMAT.to_string(),
            version: crate::store::FORMAT_VERSION,
            run_id,
            flow: info.name.to_string(),
            fingerprint: format!("{:016x}", info.fingerprint),
            shape: info.shape.to_string(),
            input: json,
            status,
            pending: Vec::new(),
            output: None,
            error: None,
            created_at: now,
            updated_at: now,
            waiting: None,
            lineage: Default::default(),
        })
    }

    pub(crate) async fn create(
        &self,
        run_id: RunId,
        input: I,
    ) -> Result<Launch<I, O, P>, (I, StoreError)> {
        self.create_as(run_id, input, RunStatus::Running, Default::default())
            .await
    }

    /// [`create`](Self::create) with the new run's status and lineage (a fork's).
    pub(crate) async fn create_as(
        &self,
        run_id: RunId,
        input: I,
        status: RunStatus,
        lineage: crate::store::Lineage,
    ) -> Result<Launch<I, O, P>, (I, StoreError)> {
        let mut document = match self.document(run_id, &input, status) {
            Ok(d) => d,
            Err(e) => return Err((input, e)),
        };
        document.lineage = lineage;
        if let Err(e) = self.keep_graph().await {
            return Err((input, e));
        }
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
            replay: None,
        })
    }

    /// Gives the store the flow's graph before a run of it is created, so that every run in a
    /// store can be drawn without the flow's code.
    pub(crate) async fn keep_graph(&self) -> Result<(), StoreError> {
        self.store.put_graph(self.flow.graph_once()).await
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

/// The generated state of a flow as checkpoints store it: `{"Variant": content}`, the content
/// being the variant's value, or an object of its fields; with the flow's input (`I`) and output
/// (`O`) as JSON. Generated by `flow!` (a match per variant over the helpers below) instead of a
/// serde derive, which would be ten times the code. Its impl is bounded by [`Saved`](crate::__private_0_1_0::Saved) for every
/// value, so a flow whose values are not serde compiles and runs, and only
/// [`Flow::durable`] asks for it: one error per value that cannot be
/// saved, naming its type and where it is in the flow.
pub trait Checkpointable<I, O>: Sized {
    /// The point as JSON.
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
    /// A point from JSON written by [`to_json`](Self::to_json).
    fn from_json(json: serde_json::Value) -> Result<Self, serde_json::Error>;
    /// The flow's input as JSON.
    fn input_to_json(input: &I) -> Result<serde_json::Value, serde_json::Error>;
    /// The flow's input from JSON.
    fn input_from_json(json: serde_json::Value) -> Result<I, serde_json::Error>;
    /// The flow's output as JSON.
    fn output_to_json(output: &O) -> Result<serde_json::Value, serde_json::Error>;
    /// The flow's output from JSON.
    fn output_from_json(json: serde_json::Value) -> Result<O, serde_json::Error>;
}
