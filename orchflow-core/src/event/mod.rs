//! Live lifecycle events of a run.
//!
//! Every event kind is declared once, in the [`event_kinds!`] table below. The table generates
//! both forms of an event:
//!
//! * [`Event<O, S>`], the public one a stream yields, with the three final kinds that carry the
//!   run's [`FlowResult`] (and so the flow's types);
//! * `RunEvent`, the one the runtime records while a run is polled: the same kinds without the
//!   final ones, so without the flow's types (the run's core is not generic), in the same order
//!   and layout, so that turning one into the other is a copy of words;
//!
//! and the conversion between them and [`Event::kind`]. A new kind is one row of the table. A
//! macro rather than one generic enum (`RunEvent` as `Event<!, !>`): the public type stays a
//! plain enum with its own docs, and the internal one has no final variants to rule out.
//!
//! The stream that carries them, and the buffers it recycles, are in [`stream`].

mod stream;

pub use stream::EventStream;
pub(crate) use stream::{EventQueue, new_queue};

use crate::context::RunId;
use crate::graph::StaticNode;
use crate::result::FlowResult;
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
    node: &'static StaticNode,
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

/// What only failed attempts, scheduled retries, captured outputs and `map` items say.
#[derive(Clone, PartialEq, Default)]
struct StepDetail {
    error: Option<String>,
    will_retry: bool,
    delay: Option<Duration>,
    output: Option<serde_json::Value>,
    item: Option<u32>,
}

/// The rare parts of an event of a `map` item: out of line, so that events outside maps build
/// in place.
#[cold]
#[inline(never)]
fn item_detail(item: u32) -> Box<StepDetail> {
    Box::new(StepDetail {
        item: Some(item),
        ..StepDetail::default()
    })
}

impl StepEvent {
    /// A started attempt, or (with `took_ns`) a completed one: what the hot path records. The
    /// item of a `map` is kept with the rare parts, so events outside maps stay ten words.
    #[inline]
    #[allow(clippy::too_many_arguments)] // Built in place on the hot path: no builder moves.
    pub(crate) fn new(
        step: &'static str,
        node: &'static StaticNode,
        parent: Option<&'static str>,
        group: Option<u32>,
        item: Option<u32>,
        attempt: u32,
        at_ns: u64,
        took_ns: Option<u64>,
    ) -> Self {
        StepEvent {
            step,
            node,
            parent,
            ids: u64::from(attempt) | (u64::from(group.unwrap_or(0)) << 32),
            at_ns,
            took_ns: took_ns.map_or(u64::MAX, |t| t.min(u64::MAX - 1)),
            detail: item.map(item_detail),
        }
    }

    /// The rare parts, created empty if there are none yet.
    fn detail_mut(&mut self) -> &mut StepDetail {
        self.detail.get_or_insert_with(Box::default)
    }

    /// Adds what a failed attempt or a scheduled retry says.
    pub(crate) fn with_detail(
        mut self,
        error: Option<String>,
        will_retry: bool,
        delay: Option<Duration>,
    ) -> Self {
        let d = self.detail_mut();
        d.error = error;
        d.will_retry = will_retry;
        d.delay = delay;
        self
    }

    /// Adds a completed attempt's output, captured as JSON.
    pub(crate) fn with_output(mut self, output: serde_json::Value) -> Self {
        self.detail_mut().output = Some(output);
        self
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The step's node in its flow's [graph](crate::graph) (for a step of a nested flow, in
    /// the nested flow's graph).
    pub fn node(&self) -> &'static str {
        self.node.0
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

    /// The index of the item in the collection a `map` runs over; `None` outside a map.
    pub fn item(&self) -> Option<u32> {
        self.detail.as_ref()?.item
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
            .field("node", &self.node.0)
            .field("parent", &self.parent)
            .field("attempt", &self.attempt())
            .field("parallel_group_id", &self.parallel_group_id())
            .field("item", &self.item())
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

/// Hands a binding through a row's payload type (a tuple variant binds one value).
macro_rules! payload {
    ($v:ident, $t:ty) => {
        $v
    };
}

/// Declares the event kinds once: generates [`Event`], `RunEvent`, the conversion from one to
/// the other and [`Event::kind`] (see the module's docs).
macro_rules! event_kinds {
    (
        kinds {
        $(
            $(#[$doc:meta])*
            $kind:ident $( ( $payload:ty ) )? $( { $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)? } )? = $name:literal,
        )*
        }
        final {
        $(
            $(#[$fin_doc:meta])*
            $fin:ident = $fin_name:literal,
        )*
        }
    ) => {
        /// A lifecycle event of a run: [`Flow::stream`](crate::Flow::stream) yields these, in order,
        /// and the last one carries the [`FlowResult`].
        #[derive(Debug)]
        #[non_exhaustive]
        // A tag of a full word, so that every payload starts 8 bytes in, as in `RunEvent`: an
        // event is then moved from the queue to the reader as whole words, and the reader's
        // copies read what the writes wrote (with a one-byte tag, payloads start at odd offsets
        // and each copy stalls on store forwarding; the events row measured 18% slower).
        #[repr(C, u64)]
        pub enum Event<O, S> {
            $(
                $(#[$doc])*
                $kind $( ($payload) )? $( { $( $(#[$fdoc])* $field: $fty ),* } )?,
            )*
            $(
                $(#[$fin_doc])*
                $fin(Box<FlowResult<O, S>>),
            )*
        }

        /// The non-final events, as the runtime records them while a run is polled (see the
        /// module's docs): the common kinds are a [`StepEvent`] of eight words, the rare large
        /// ones boxed.
        #[derive(Debug)]
        // The same layout as `Event` (see there).
        #[repr(C, u64)]
        pub(crate) enum RunEvent {
            $( $kind $( ($payload) )? $( { $( $field: $fty ),* } )?, )*
        }

        impl<O, S> From<RunEvent> for Event<O, S> {
            #[inline]
            fn from(e: RunEvent) -> Self {
                match e {
                    $(
                        RunEvent::$kind $( (payload!(v, $payload)) )? $( { $($field),* } )?
                            => Event::$kind $( (payload!(v, $payload)) )? $( { $($field),* } )?,
                    )*
                }
            }
        }

        impl<O, S> Event<O, S> {
            /// The event's kind in snake case: `flow_started`, `step_started`, `step_completed`,
            /// `step_failed`, `retry_scheduled`, `checkpoint_saved`, `checkpoint_loaded`,
            /// `input_requested`, `input_received`, `flow_suspended`, `flow_completed` or
            /// `flow_failed`.
            ///
            /// ```
            /// use orchflow_core::Event;
            /// let e: Event<(), ()> = Event::FlowStarted { run_id: Default::default(), flow: "f", input: None };
            /// assert_eq!(e.kind(), "flow_started");
            /// ```
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Event::$kind { .. } => $name, )*
                    $( Event::$fin(_) => $fin_name, )*
                }
            }
        }
    };
}

event_kinds! {
    kinds {
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
    } = "flow_started",
    /// A step attempt began.
    StepStarted(StepEvent) = "step_started",
    /// A step attempt returned its output.
    StepCompleted(StepEvent) = "step_completed",
    /// A step attempt failed (error, timeout or panic).
    StepFailed(StepEvent) = "step_failed",
    /// Another attempt was scheduled after a failure.
    RetryScheduled(StepEvent) = "retry_scheduled",
    /// A checkpoint was saved after a resumable point.
    CheckpointSaved(CheckpointEvent) = "checkpoint_saved",
    /// A run was resumed from a checkpoint.
    CheckpointLoaded(CheckpointEvent) = "checkpoint_loaded",
    /// A human-input step asked a question (boxed: rare, and it keeps every event small).
    InputRequested(Box<InputEvent>) = "input_requested",
    /// A human-input step got its answer.
    InputReceived(Box<InputEvent>) = "input_received",
    }
    final {
    /// The run stopped to wait for an answer (its checkpoint is saved when it is durable).
    /// Always the last event of a suspended run.
    FlowSuspended = "flow_suspended",
    /// The run finished with an output. Always the last event of a successful run.
    FlowCompleted = "flow_completed",
    /// The run failed. Always the last event of a failed run.
    FlowFailed = "flow_failed",
    }
}

impl<O, S> Event<O, S> {
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
///   `step`, `node`, `parent`, `attempt`, `parallel_group_id`, `elapsed` (seconds since the session
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
                m.serialize_entry("node", e.node())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_events_pack_attempts_groups_and_durations() {
        let started = StepEvent::new(
            "s",
            &StaticNode("0"),
            Some("outer"),
            Some(u32::MAX),
            None,
            u32::MAX,
            7,
            None,
        );
        assert_eq!((started.step(), started.parent()), ("s", Some("outer")));
        assert_eq!(started.attempt(), u32::MAX);
        assert_eq!(started.parallel_group_id(), Some(u32::MAX));
        assert_eq!(started.elapsed(), Duration::from_nanos(7));
        assert_eq!(started.duration(), None);
        assert_eq!(
            (started.error(), started.will_retry(), started.delay()),
            (None, false, None)
        );

        let done = StepEvent::new("s", &StaticNode("0"), None, None, None, 1, 9, Some(0));
        assert_eq!((done.attempt(), done.parallel_group_id()), (1, None));
        assert_eq!(done.duration(), Some(Duration::ZERO));
        let longest = StepEvent::new(
            "s",
            &StaticNode("0"),
            None,
            None,
            None,
            1,
            9,
            Some(u64::MAX),
        );
        assert!(longest.duration().is_some());

        let failed = done.clone().with_detail(Some("boom".into()), true, None);
        assert_eq!((failed.error(), failed.will_retry()), (Some("boom"), true));
        assert_ne!(failed, done);
        let retry = done.with_detail(None, false, Some(Duration::from_millis(3)));
        assert_eq!(retry.delay(), Some(Duration::from_millis(3)));
        assert_eq!(retry.item(), None);

        let item = StepEvent::new("s", &StaticNode("0"), None, Some(3), Some(7), 1, 9, Some(1))
            .with_detail(Some("boom".into()), false, None)
            .with_output(serde_json::json!(1));
        assert_eq!((item.item(), item.error()), (Some(7), Some("boom")));
    }

    #[test]
    fn step_events_debug_as_their_fields() {
        let e = StepEvent::new("s", &StaticNode("0"), None, Some(2), Some(4), 1, 0, Some(5))
            .with_detail(Some("boom".into()), false, None);
        let shown = format!("{e:?}");
        for part in [
            "step: \"s\"",
            "attempt: 1",
            "parallel_group_id: Some(2)",
            "item: Some(4)",
            "duration: Some(5ns)",
            "error: Some(\"boom\")",
            "will_retry: false",
        ] {
            assert!(shown.contains(part), "{shown}");
        }
    }

    #[test]
    fn events_are_no_larger_than_ten_words() {
        // Eight words of step event, then the node id (a thin reference to a static).
        assert_eq!(std::mem::size_of::<StepEvent>(), 72);
        assert!(std::mem::size_of::<Event<String, ()>>() <= 80);
    }
}
