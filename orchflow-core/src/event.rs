//! Live lifecycle events of a run, as a `Stream`.

use crate::context::RunId;
use crate::flow::FlowResult;
use futures_core::Stream;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// What happened to one step attempt (or a scheduled retry).
///
/// ```
/// use futures::StreamExt;
/// use orchflow::{flow, step, Event};
/// #[step] async fn id(x: u8) -> u8 { x }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { id };
/// let mut events = f.stream(1);
/// while let Some(e) = events.next().await {
///     if let Event::StepCompleted(s) = &e {
///         assert_eq!((s.step, s.attempt, s.parallel_group_id), ("id", 1, None));
///         assert!(s.duration.is_some());
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StepEvent {
    /// The step's name.
    pub step: &'static str,
    /// The enclosing step when the step runs inside a nested flow.
    pub parent: Option<&'static str>,
    /// The attempt this event is about (for `RetryScheduled`, the attempt to come).
    pub attempt: u32,
    /// The parallel group, if the step is a branch of one.
    pub parallel_group_id: Option<u32>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// The attempt's duration (`StepCompleted`, `StepFailed`).
    pub duration: Option<Duration>,
    /// The error's message (`StepFailed`).
    pub error: Option<String>,
    /// Whether another attempt follows (`StepFailed`).
    pub will_retry: bool,
    /// The delay before the next attempt (`RetryScheduled`).
    pub delay: Option<Duration>,
}

/// A human-input step's question, or the answer it got.
#[derive(Debug, Clone, PartialEq)]
pub struct InputEvent {
    /// The step.
    pub step: &'static str,
    /// The question (`InputRequested`) or the answer (`InputReceived`).
    pub text: String,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A checkpoint written or read (durable runs).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointEvent {
    /// The resumable point, by its variant name in the generated state.
    pub point: &'static str,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A lifecycle event of a run: [`Flow::stream`](crate::Flow::stream) yields these, in order,
/// and the last one carries the [`FlowResult`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<O, S> {
    /// The run began.
    FlowStarted {
        /// The run's id.
        run_id: RunId,
        /// The flow's name.
        flow: &'static str,
    },
    /// A step attempt began.
    StepStarted(StepEvent),
    /// A step attempt returned its output.
    StepCompleted(StepEvent),
    /// A step attempt failed (error, timeout or panic).
    StepFailed(StepEvent),
    /// Another attempt was scheduled after a failure.
    RetryScheduled(StepEvent),
    /// A checkpoint was saved after a resumable point.
    CheckpointSaved(CheckpointEvent),
    /// A run was resumed from a checkpoint.
    CheckpointLoaded(CheckpointEvent),
    /// A human-input step asked a question.
    InputRequested(InputEvent),
    /// A human-input step got its answer.
    InputReceived(InputEvent),
    /// The run stopped to wait for an answer (its checkpoint is saved when it is durable).
    /// Always the last event of a suspended run.
    FlowSuspended(Box<FlowResult<O, S>>),
    /// The run finished with an output. Always the last event of a successful run.
    FlowCompleted(Box<FlowResult<O, S>>),
    /// The run failed. Always the last event of a failed run.
    FlowFailed(Box<FlowResult<O, S>>),
}

impl<O, S> Event<O, S> {
    /// The event's kind in snake case: `flow_started`, `step_started`, `step_completed`,
    /// `step_failed`, `retry_scheduled`, `checkpoint_saved`, `checkpoint_loaded`,
    /// `input_requested`, `input_received`, `flow_suspended`, `flow_completed` or `flow_failed`.
    ///
    /// ```
    /// use orchflow_core::Event;
    /// let e: Event<(), ()> = Event::FlowStarted { run_id: Default::default(), flow: "f" };
    /// assert_eq!(e.kind(), "flow_started");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Event::FlowStarted { .. } => "flow_started",
            Event::StepStarted(_) => "step_started",
            Event::StepCompleted(_) => "step_completed",
            Event::StepFailed(_) => "step_failed",
            Event::RetryScheduled(_) => "retry_scheduled",
            Event::CheckpointSaved(_) => "checkpoint_saved",
            Event::CheckpointLoaded(_) => "checkpoint_loaded",
            Event::InputRequested(_) => "input_requested",
            Event::InputReceived(_) => "input_received",
            Event::FlowSuspended(_) => "flow_suspended",
            Event::FlowCompleted(_) => "flow_completed",
            Event::FlowFailed(_) => "flow_failed",
        }
    }

    /// The step event inside, for the four step kinds.
    pub fn step_event(&self) -> Option<&StepEvent> {
        match self {
            Event::StepStarted(e)
            | Event::StepCompleted(e)
            | Event::StepFailed(e)
            | Event::RetryScheduled(e) => Some(e),
            _ => None,
        }
    }

    /// The result carried by the final event.
    pub fn result(&self) -> Option<&FlowResult<O, S>> {
        match self {
            Event::FlowCompleted(r) | Event::FlowFailed(r) | Event::FlowSuspended(r) => Some(r),
            _ => None,
        }
    }
}

/// The non-final events, as the runtime records them while a run is polled: a started or
/// completed attempt (the common case) as a compact record, the rare kinds boxed, so that a run
/// that emits hundreds of events before it yields writes half the memory.
#[derive(Debug)]
pub(crate) enum RunEvent {
    FlowStarted { run_id: RunId, flow: &'static str },
    StepStarted(StepRecord),
    StepCompleted(StepRecord),
    StepFailed(Box<StepEvent>),
    RetryScheduled(Box<StepEvent>),
    CheckpointSaved(CheckpointEvent),
    CheckpointLoaded(CheckpointEvent),
    InputRequested(Box<InputEvent>),
    InputReceived(Box<InputEvent>),
}

/// A started or completed attempt, as recorded on the hot path.
#[derive(Debug)]
pub(crate) struct StepRecord {
    pub(crate) step: &'static str,
    pub(crate) parent: Option<&'static str>,
    pub(crate) group: Option<u32>,
    pub(crate) attempt: u32,
    /// Nanoseconds from the run's start to the event.
    pub(crate) at_ns: u64,
    /// The attempt's duration in nanoseconds (completed attempts).
    pub(crate) took_ns: u64,
}

impl StepRecord {
    fn public(self, completed: bool) -> StepEvent {
        StepEvent {
            step: self.step,
            parent: self.parent,
            attempt: self.attempt,
            parallel_group_id: self.group,
            elapsed: Duration::from_nanos(self.at_ns),
            duration: completed.then(|| Duration::from_nanos(self.took_ns)),
            error: None,
            will_retry: false,
            delay: None,
        }
    }
}

impl<O, S> From<RunEvent> for Event<O, S> {
    fn from(e: RunEvent) -> Self {
        match e {
            RunEvent::FlowStarted { run_id, flow } => Event::FlowStarted { run_id, flow },
            RunEvent::StepStarted(e) => Event::StepStarted(e.public(false)),
            RunEvent::StepCompleted(e) => Event::StepCompleted(e.public(true)),
            RunEvent::StepFailed(e) => Event::StepFailed(*e),
            RunEvent::RetryScheduled(e) => Event::RetryScheduled(*e),
            RunEvent::CheckpointSaved(e) => Event::CheckpointSaved(e),
            RunEvent::CheckpointLoaded(e) => Event::CheckpointLoaded(e),
            RunEvent::InputRequested(e) => Event::InputRequested(*e),
            RunEvent::InputReceived(e) => Event::InputReceived(*e),
        }
    }
}

pub(crate) type EventQueue = Mutex<VecDeque<RunEvent>>;

/// A queue with room for the events of a run of a flow with `points` resumable points (two per
/// step, and a few more), so that a run that does not yield does not regrow it.
pub(crate) fn new_queue(points: usize) -> Arc<EventQueue> {
    Arc::new(Mutex::new(buffer(queue_capacity(points))))
}

std::thread_local! {
    /// Event buffers of finished streams, kept for the next stream on this thread: a run that
    /// emits hundreds of events before it yields then writes into memory that is still in the
    /// cache instead of a fresh allocation.
    static SPARE: std::cell::RefCell<Vec<VecDeque<RunEvent>>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// An empty buffer with room for `capacity` events: a spare one when there is one.
fn buffer(capacity: usize) -> VecDeque<RunEvent> {
    let spare = SPARE.with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()));
    match spare {
        Some(mut b) => {
            b.reserve(capacity);
            b
        }
        None => VecDeque::with_capacity(capacity),
    }
}

/// Keeps an emptied buffer for a later stream (at most four per thread, none too large).
fn give_back(mut b: VecDeque<RunEvent>) {
    b.clear();
    if b.capacity() == 0 || b.capacity() > 4096 {
        return;
    }
    SPARE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < 4 {
                s.push(b);
            }
        }
    });
}

fn queue_capacity(points: usize) -> usize {
    points.saturating_mul(2).saturating_add(8).min(4096)
}

type RunFuture<'f, O, S> = Pin<Box<dyn Future<Output = FlowResult<O, S>> + Send + 'f>>;

/// The events of one run, as a [`Stream`]. The run makes progress only while the stream is
/// polled (nothing is spawned); the last item is `FlowCompleted` or `FlowFailed` with the result.
///
/// ```
/// use futures::StreamExt;
/// use orchflow::{flow, step};
///
/// #[step] async fn double(x: u32) -> u32 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { double => double };
/// let kinds: Vec<_> = f.stream(1).map(|e| e.kind()).collect().await;
/// assert_eq!(kinds, ["flow_started", "step_started", "step_completed",
///                    "step_started", "step_completed", "flow_completed"]);
/// # }
/// ```
pub struct EventStream<'f, O, S> {
    run: Option<RunFuture<'f, O, S>>,
    queue: Arc<EventQueue>,
    ready: VecDeque<RunEvent>,
    last: Option<Event<O, S>>,
}

impl<'f, O, S> EventStream<'f, O, S> {
    pub(crate) fn new(run: RunFuture<'f, O, S>, queue: Arc<EventQueue>) -> Self {
        EventStream {
            run: Some(run),
            ready: buffer(queue.lock().map_or(64, |q| q.capacity())),
            queue,
            last: None,
        }
    }

    /// Takes the queued events: one lock, and (when nothing is left over) a swap of buffers
    /// rather than a move per event.
    fn drain(&mut self) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut *q);
        } else {
            self.ready.extend(q.drain(..));
        }
    }
}

impl<O, S> Unpin for EventStream<'_, O, S> {}

impl<O, S> Drop for EventStream<'_, O, S> {
    fn drop(&mut self) {
        // The run first: it holds the other reference to the queue.
        self.run = None;
        give_back(std::mem::take(&mut self.ready));
        if let Some(q) = Arc::get_mut(&mut self.queue) {
            let q = q.get_mut().unwrap_or_else(|p| p.into_inner());
            give_back(std::mem::take(q));
        }
    }
}

impl<O, S> Stream for EventStream<'_, O, S> {
    type Item = Event<O, S>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.ready.pop_front() {
            return Poll::Ready(Some(e.into()));
        }
        if let Some(run) = this.run.as_mut() {
            let polled = run.as_mut().poll(cx);
            this.drain();
            if let Poll::Ready(result) = polled {
                this.run = None;
                this.last = Some(if result.success {
                    Event::FlowCompleted(Box::new(result))
                } else if result.suspended.is_some() {
                    Event::FlowSuspended(Box::new(result))
                } else {
                    Event::FlowFailed(Box::new(result))
                });
            }
            if let Some(e) = this.ready.pop_front() {
                return Poll::Ready(Some(e.into()));
            }
            if this.run.is_some() {
                return Poll::Pending;
            }
        }
        Poll::Ready(this.last.take())
    }
}
