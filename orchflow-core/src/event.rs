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

/// What happened to one step attempt (or a scheduled retry), read through its accessors.
///
/// Eight machine words whatever the kind, so that a stream of hundreds of these per run moves
/// cheaply; the parts only failures and retries have (error, delay) are boxed inside.
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
///         assert_eq!((s.step(), s.attempt(), s.parallel_group_id()), ("id", 1, None));
///         assert!(s.duration().is_some());
///     }
/// }
/// # }
/// ```
#[derive(Clone, PartialEq)]
pub struct StepEvent {
    step: &'static str,
    parent: Option<&'static str>,
    /// The attempt (low half) and the parallel group (high half; groups are numbered from 1,
    /// so 0 is none).
    ids: u64,
    /// Nanoseconds from the run's start to the event.
    at_ns: u64,
    /// The attempt's duration in nanoseconds; `u64::MAX` when there is none.
    took_ns: u64,
    detail: Option<Box<StepDetail>>,
}

/// What only failed attempts, scheduled retries and captured outputs say.
#[derive(Clone, PartialEq)]
struct StepDetail {
    error: Option<String>,
    will_retry: bool,
    delay: Option<Duration>,
    output: Option<serde_json::Value>,
}

impl StepEvent {
    /// A started attempt, or (with `took_ns`) a completed one: what the hot path records.
    #[inline]
    pub(crate) fn new(
        step: &'static str,
        parent: Option<&'static str>,
        group: Option<u32>,
        attempt: u32,
        at_ns: u64,
        took_ns: Option<u64>,
    ) -> Self {
        StepEvent {
            step,
            parent,
            ids: u64::from(attempt) | (u64::from(group.unwrap_or(0)) << 32),
            at_ns,
            took_ns: took_ns.map_or(u64::MAX, |t| t.min(u64::MAX - 1)),
            detail: None,
        }
    }

    /// Adds what a failed attempt or a scheduled retry says.
    pub(crate) fn with_detail(
        mut self,
        error: Option<String>,
        will_retry: bool,
        delay: Option<Duration>,
    ) -> Self {
        self.detail = Some(Box::new(StepDetail {
            error,
            will_retry,
            delay,
            output: None,
        }));
        self
    }

    /// Adds a completed attempt's output, captured as JSON.
    pub(crate) fn with_output(mut self, output: serde_json::Value) -> Self {
        match &mut self.detail {
            Some(d) => d.output = Some(output),
            None => {
                self.detail = Some(Box::new(StepDetail {
                    error: None,
                    will_retry: false,
                    delay: None,
                    output: Some(output),
                }));
            }
        }
        self
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The enclosing step when the step runs inside a nested flow.
    pub fn parent(&self) -> Option<&'static str> {
        self.parent
    }

    /// The attempt this event is about (for `RetryScheduled`, the attempt to come), from 1.
    pub fn attempt(&self) -> u32 {
        // The low half by construction.
        (self.ids & u64::from(u32::MAX)) as u32
    }

    /// The parallel group, if the step is a branch of one.
    pub fn parallel_group_id(&self) -> Option<u32> {
        match (self.ids >> 32) as u32 {
            0 => None,
            g => Some(g),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.at_ns)
    }

    /// The attempt's duration (`StepCompleted`, `StepFailed`).
    pub fn duration(&self) -> Option<Duration> {
        (self.took_ns != u64::MAX).then(|| Duration::from_nanos(self.took_ns))
    }

    /// The error's message (`StepFailed`).
    pub fn error(&self) -> Option<&str> {
        self.detail.as_ref()?.error.as_deref()
    }

    /// Whether another attempt follows (`StepFailed`).
    pub fn will_retry(&self) -> bool {
        self.detail.as_ref().is_some_and(|d| d.will_retry)
    }

    /// The delay before the next attempt (`RetryScheduled`).
    pub fn delay(&self) -> Option<Duration> {
        self.detail.as_ref()?.delay
    }

    /// The attempt's output as JSON (`StepCompleted`), when values are captured
    /// ([`Flow::capture_values`](crate::Flow::capture_values)) and its type is `Serialize`.
    pub fn output(&self) -> Option<&serde_json::Value> {
        self.detail.as_ref()?.output.as_ref()
    }
}

impl std::fmt::Debug for StepEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepEvent")
            .field("step", &self.step)
            .field("parent", &self.parent)
            .field("attempt", &self.attempt())
            .field("parallel_group_id", &self.parallel_group_id())
            .field("elapsed", &self.elapsed())
            .field("duration", &self.duration())
            .field("error", &self.error())
            .field("will_retry", &self.will_retry())
            .field("delay", &self.delay())
            .finish()
    }
}

/// A human-input step's question, or the answer it got.
#[derive(Debug, Clone, PartialEq)]
pub struct InputEvent {
    /// The step.
    pub step: &'static str,
    /// Where the question stands in the flow ([`PendingInput::question`](crate::store::PendingInput)).
    pub question: String,
    /// The question (`InputRequested`) or the answer (`InputReceived`).
    pub text: String,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A checkpoint written or read (durable runs).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointEvent {
    /// The resumable point, by its variant name in the generated state (`AfterPlan`,
    /// `InGroup2` for a finished branch of that group, `Inner3AfterAct`), `stopped` for the
    /// entry a run writes when it stops (failed or suspended), `start` for a loaded checkpoint
    /// that held no point yet.
    pub point: &'static str,
    /// For a finished branch of a parallel group, its index in declaration order.
    pub branch: Option<usize>,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A lifecycle event of a run: [`Flow::stream`](crate::Flow::stream) yields these, in order,
/// and the last one carries the [`FlowResult`].
#[derive(Debug)]
#[non_exhaustive]
// A tag of a full word, so that every payload starts 8 bytes in, as in `RunEvent`: an event is
// then moved from the queue to the reader as whole words, and the reader's copies read what
// the writes wrote (with a one-byte tag, payloads start at odd offsets and each copy stalls on
// store forwarding; the events row measured 18% slower).
#[repr(C, u64)]
pub enum Event<O, S> {
    /// The run began (or a session of it: a resume begins with this event too).
    FlowStarted {
        /// The run's id.
        run_id: RunId,
        /// The flow's name.
        flow: &'static str,
        /// The run's input as JSON, when values are captured
        /// ([`Flow::capture_values`](crate::Flow::capture_values)) and its type is `Serialize`;
        /// `None` otherwise.
        input: Option<Box<serde_json::Value>>,
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
    /// A human-input step asked a question (boxed: rare, and it keeps every event small).
    InputRequested(Box<InputEvent>),
    /// A human-input step got its answer.
    InputReceived(Box<InputEvent>),
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
    /// let e: Event<(), ()> = Event::FlowStarted { run_id: Default::default(), flow: "f", input: None };
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

/// An event as JSON (the shape is public; see the README's "Results, traces and events as
/// JSON"). Every event is an object with its `kind` ([`Event::kind`]) and the fields of that
/// kind, absent values as `null`:
///
/// * `flow_started`: `run_id`, `flow`, `input`;
/// * the step kinds (`step_started`, `step_completed`, `step_failed`, `retry_scheduled`):
///   `step`, `parent`, `attempt`, `parallel_group_id`, `elapsed` (seconds since the session
///   started), `duration` (seconds), `output`, `error`, `will_retry`, `delay` (seconds);
/// * `checkpoint_saved`, `checkpoint_loaded`: `point`, `branch`, `elapsed`;
/// * `input_requested`, `input_received`: `step`, `question`, `text`, `elapsed`;
/// * `flow_suspended`, `flow_completed`, `flow_failed`: `result`, the
///   [`FlowResult`](crate::FlowResult) as JSON.
///
/// ```
/// use futures::StreamExt;
/// use orchflow::{flow, step};
/// #[step] async fn double(x: u32) -> u32 { x * 2 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events: Vec<_> = flow! { double }.capture_values(true).stream(2).collect().await;
/// let json = serde_json::to_value(&events[2]).unwrap();
/// assert_eq!(json["kind"], "step_completed");
/// assert_eq!(json["output"], 4);
/// assert_eq!(json["parallel_group_id"], serde_json::Value::Null);
/// assert_eq!(serde_json::to_value(&events[3]).unwrap()["result"]["output"], 4);
/// # }
/// ```
impl<O: serde::Serialize, S> serde::Serialize for Event<O, S> {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeMap;
        let secs = |d: Duration| d.as_secs_f64();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        match self {
            Event::FlowStarted {
                run_id,
                flow,
                input,
            } => {
                m.serialize_entry("run_id", run_id)?;
                m.serialize_entry("flow", flow)?;
                m.serialize_entry("input", input)?;
            }
            Event::StepStarted(e)
            | Event::StepCompleted(e)
            | Event::StepFailed(e)
            | Event::RetryScheduled(e) => {
                m.serialize_entry("step", e.step())?;
                m.serialize_entry("parent", &e.parent())?;
                m.serialize_entry("attempt", &e.attempt())?;
                m.serialize_entry("parallel_group_id", &e.parallel_group_id())?;
                m.serialize_entry("elapsed", &secs(e.elapsed()))?;
                m.serialize_entry("duration", &e.duration().map(secs))?;
                m.serialize_entry("output", &e.output())?;
                m.serialize_entry("error", &e.error())?;
                m.serialize_entry("will_retry", &e.will_retry())?;
                m.serialize_entry("delay", &e.delay().map(secs))?;
            }
            Event::CheckpointSaved(c) | Event::CheckpointLoaded(c) => {
                m.serialize_entry("point", c.point)?;
                m.serialize_entry("branch", &c.branch)?;
                m.serialize_entry("elapsed", &secs(c.elapsed))?;
            }
            Event::InputRequested(i) | Event::InputReceived(i) => {
                m.serialize_entry("step", i.step)?;
                m.serialize_entry("question", &i.question)?;
                m.serialize_entry("text", &i.text)?;
                m.serialize_entry("elapsed", &secs(i.elapsed))?;
            }
            Event::FlowSuspended(r) | Event::FlowCompleted(r) | Event::FlowFailed(r) => {
                m.serialize_entry("result", r)?;
            }
        }
        m.end()
    }
}

/// The non-final events, as the runtime records them while a run is polled (the public
/// [`Event`] without its final kinds, so without the flow's types): the common kinds are a
/// [`StepEvent`] of eight words, the rare large ones boxed.
#[derive(Debug)]
// The same layout as `Event` (see there).
#[repr(C, u64)]
pub(crate) enum RunEvent {
    FlowStarted {
        run_id: RunId,
        flow: &'static str,
        /// The input as JSON, when values are captured and its type is `Serialize`.
        input: Option<Box<serde_json::Value>>,
    },
    StepStarted(StepEvent),
    StepCompleted(StepEvent),
    StepFailed(StepEvent),
    RetryScheduled(StepEvent),
    CheckpointSaved(CheckpointEvent),
    CheckpointLoaded(CheckpointEvent),
    InputRequested(Box<InputEvent>),
    InputReceived(Box<InputEvent>),
}

impl<O, S> From<RunEvent> for Event<O, S> {
    #[inline]
    fn from(e: RunEvent) -> Self {
        match e {
            RunEvent::FlowStarted {
                run_id,
                flow,
                input,
            } => Event::FlowStarted {
                run_id,
                flow,
                input,
            },
            RunEvent::StepStarted(e) => Event::StepStarted(e),
            RunEvent::StepCompleted(e) => Event::StepCompleted(e),
            RunEvent::StepFailed(e) => Event::StepFailed(e),
            RunEvent::RetryScheduled(e) => Event::RetryScheduled(e),
            RunEvent::CheckpointSaved(e) => Event::CheckpointSaved(e),
            RunEvent::CheckpointLoaded(e) => Event::CheckpointLoaded(e),
            RunEvent::InputRequested(e) => Event::InputRequested(e),
            RunEvent::InputReceived(e) => Event::InputReceived(e),
        }
    }
}

/// What a streamed run records under one lock: the events its stream has not taken yet, and
/// (so that a completed attempt costs one lock, not two) the run's traces.
#[derive(Default)]
pub(crate) struct EventLog {
    events: VecDeque<RunEvent>,
    pub(crate) traces: Vec<crate::run::RawTrace>,
}

impl EventLog {
    #[inline]
    pub(crate) fn push(&mut self, e: RunEvent) {
        // Within capacity (the common case: the queue is sized for the flow), the event is
        // written straight into its slot; `push_back` alone keeps it on the stack across the
        // possible reallocation and copies it afterwards.
        if self.events.len() < self.events.capacity() {
            self.events.push_back(e);
        } else {
            self.grow_and_push(e);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_and_push(&mut self, e: RunEvent) {
        self.events.push_back(e);
    }
}

pub(crate) type EventQueue = Mutex<EventLog>;

/// A queue with room for the events of a run of a flow with `points` resumable points (two per
/// step, and a few more), so that a run that does not yield does not regrow it.
pub(crate) fn new_queue(points: usize) -> Arc<EventQueue> {
    Arc::new(Mutex::new(EventLog {
        events: buffer(queue_capacity(points)),
        traces: Vec::new(),
    }))
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
        if let Ok(mut s) = s.try_borrow_mut()
            && s.len() < 4
        {
            s.push(b);
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
            ready: buffer(queue.lock().map_or(64, |q| q.events.capacity())),
            queue,
            last: None,
        }
    }

    /// Takes the queued events: one lock, and (when nothing is left over) a swap of buffers
    /// rather than a move per event.
    fn drain(&mut self) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut q.events);
        } else {
            self.ready.extend(q.events.drain(..));
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
            give_back(std::mem::take(&mut q.events));
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
                } else if result.is_suspended() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_events_pack_attempts_groups_and_durations() {
        let started = StepEvent::new("s", Some("outer"), Some(u32::MAX), u32::MAX, 7, None);
        assert_eq!((started.step(), started.parent()), ("s", Some("outer")));
        assert_eq!(started.attempt(), u32::MAX);
        assert_eq!(started.parallel_group_id(), Some(u32::MAX));
        assert_eq!(started.elapsed(), Duration::from_nanos(7));
        assert_eq!(started.duration(), None);
        assert_eq!(
            (started.error(), started.will_retry(), started.delay()),
            (None, false, None)
        );

        let done = StepEvent::new("s", None, None, 1, 9, Some(0));
        assert_eq!((done.attempt(), done.parallel_group_id()), (1, None));
        assert_eq!(done.duration(), Some(Duration::ZERO));
        let longest = StepEvent::new("s", None, None, 1, 9, Some(u64::MAX));
        assert!(longest.duration().is_some());

        let failed = done.clone().with_detail(Some("boom".into()), true, None);
        assert_eq!((failed.error(), failed.will_retry()), (Some("boom"), true));
        assert_ne!(failed, done);
        let retry = done.with_detail(None, false, Some(Duration::from_millis(3)));
        assert_eq!(retry.delay(), Some(Duration::from_millis(3)));
    }

    #[test]
    fn step_events_debug_as_their_fields() {
        let e = StepEvent::new("s", None, Some(2), 1, 0, Some(5)).with_detail(
            Some("boom".into()),
            false,
            None,
        );
        let shown = format!("{e:?}");
        for part in [
            "step: \"s\"",
            "attempt: 1",
            "parallel_group_id: Some(2)",
            "duration: Some(5ns)",
            "error: Some(\"boom\")",
            "will_retry: false",
        ] {
            assert!(shown.contains(part), "{shown}");
        }
    }

    #[test]
    fn events_are_no_larger_than_nine_words() {
        assert_eq!(std::mem::size_of::<StepEvent>(), 64);
        assert!(std::mem::size_of::<Event<String, ()>>() <= 72);
    }
}
