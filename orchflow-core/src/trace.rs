//! Per-attempt traces, in both forms: the compact [`RawTrace`] the hot path records, and the
//! public [`StepTrace`] it becomes when a run ends or a checkpoint is saved ([`Traces`] builds
//! them when first read).
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// How an attempt ended.
///
/// ```
/// use orchflow::AttemptOutcome;
/// assert_eq!(serde_json::to_string(&AttemptOutcome::TimedOut).unwrap(), "\"timed_out\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The step returned its output.
    Succeeded,
    /// The step returned an error.
    Failed,
    /// The attempt ran past its timeout.
    TimedOut,
    /// The step panicked.
    Panicked,
    /// The attempt was cancelled because a sibling branch failed.
    Cancelled,
    /// The step asked a question and the run suspended until it is answered.
    Suspended,
    /// The step did not run: a fork took the recorded result of the same call of the run it
    /// was forked from ([`crate::replay`]). Its output is that result.
    Reused,
}

/// The record of one attempt of one step. A step that ran three times leaves three traces.
///
/// `input` and `output` hold the values as JSON when the step's types are `Serialize` and value
/// capture is on ([`Flow::capture_values`](crate::Flow::capture_values)); otherwise `None`.
///
/// ```
/// use orchflow::{flow, step, AttemptOutcome};
///
/// #[step] async fn parse(s: String) -> Result<u32, std::num::ParseIntError> { s.parse() }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { parse }.capture_values(true).run("x".to_string()).await;
/// let t = &r.traces[0];
/// assert_eq!((t.step.as_ref(), t.attempt, t.outcome), ("parse", 1, AttemptOutcome::Failed));
/// assert_eq!(t.input, Some(serde_json::json!("x")));
/// assert_eq!(t.error.as_deref(), Some("invalid digit found in string"));
/// assert!(t.ended_at >= t.started_at);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// The step's name.
    pub step: Cow<'static, str>,
    /// The step's node in its flow's [graph](crate::graph) (for a step of a nested flow, in
    /// the nested flow's graph): where the attempt is placed when the flow is drawn.
    #[serde(default)]
    pub node: Cow<'static, str>,
    /// The enclosing step when this step ran inside a nested flow.
    #[serde(default)]
    pub parent: Option<Cow<'static, str>>,
    /// 1 for the first attempt of the step in its session.
    pub attempt: u32,
    /// Which session of the run made the attempt: 1 for the run's start, then one more for each
    /// resume (`resume`, `answer`). A step that failed, then succeeded after a resume, shows
    /// `attempt 1, session 1, failed` and `attempt 1, session 2, succeeded`.
    #[serde(default = "first_session")]
    pub session: u32,
    /// Shared by every branch of one parallel group in one session, and by every item of one
    /// `map`.
    #[serde(default)]
    pub parallel_group_id: Option<u32>,
    /// The index of the item in the collection a `map` runs over; `None` outside a map.
    #[serde(default)]
    pub item: Option<u32>,
    /// The input, as JSON, when captured.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// The output, as JSON, when captured and the attempt succeeded.
    #[serde(default)]
    pub output: Option<serde_json::Value>,
    /// The error's message when the attempt failed.
    #[serde(default)]
    pub error: Option<String>,
    /// How the attempt ended.
    pub outcome: AttemptOutcome,
    /// When the attempt started. An attempt that follows another's success with only the
    /// flow's own glue between them (the next step of a sequence, a join after its branches)
    /// starts when that one ended: one clock read per step. Time spent elsewhere (a predicate,
    /// a retry's delay, a checkpoint, waiting between polls) is never counted in an attempt.
    #[serde(with = "crate::json::instant")]
    pub started_at: SystemTime,
    /// When the attempt ended.
    #[serde(with = "crate::json::instant")]
    pub ended_at: SystemTime,
    /// How long the attempt took.
    #[serde(with = "crate::json::seconds")]
    pub duration: Duration,
    /// Whether the attempt produced an output.
    pub success: bool,
}

fn first_session() -> u32 {
    1
}

/// Every attempt's trace of a run ([`FlowResult::traces`](crate::FlowResult::traces)), in the
/// order the attempts ended: earlier sessions' first for a resumed run.
///
/// A run records compact records on its hot path; they become [`StepTrace`]s the first time the
/// traces are read, so a run whose traces nobody reads does not pay for building them. Reading
/// is through the slice it dereferences to: `len`, `iter`, indexing, `for t in &traces`.
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn a(x: u32) -> u32 { x + 1 }
/// #[step] async fn b(x: u32) -> u32 { x * 2 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { a => b }.run(1).await;
/// assert_eq!(r.traces.len(), 2);
/// assert_eq!(r.traces[1].step, "b");
/// let names: Vec<_> = r.traces.iter().map(|t| t.step.to_string()).collect();
/// assert_eq!(names, ["a", "b"]);
/// let owned: Vec<orchflow::StepTrace> = r.traces.into_vec();
/// assert_eq!(owned.len(), 2);
/// # }
/// ```
pub struct Traces {
    prior: Vec<StepTrace>,
    raw: Vec<RawTrace>,
    started_at: SystemTime,
    session: u32,
    built: OnceLock<Vec<StepTrace>>,
}

impl Traces {
    pub(crate) fn new(
        prior: Vec<StepTrace>,
        raw: Vec<RawTrace>,
        started_at: SystemTime,
        session: u32,
    ) -> Self {
        Traces {
            prior,
            raw,
            started_at,
            session,
            built: OnceLock::new(),
        }
    }

    fn build(&self) -> Vec<StepTrace> {
        let mut out = Vec::with_capacity(self.prior.len() + self.raw.len());
        out.extend(self.prior.iter().cloned());
        out.extend(
            self.raw
                .iter()
                .map(|t| t.public(self.started_at, self.session)),
        );
        out
    }

    /// The traces as a vector.
    pub fn into_vec(mut self) -> Vec<StepTrace> {
        match self.built.take() {
            Some(v) => v,
            None => self.build(),
        }
    }
}

impl std::ops::Deref for Traces {
    type Target = [StepTrace];
    fn deref(&self) -> &[StepTrace] {
        self.built.get_or_init(|| self.build())
    }
}

impl From<Vec<StepTrace>> for Traces {
    fn from(v: Vec<StepTrace>) -> Self {
        let built = OnceLock::new();
        let _ = built.set(v);
        Traces {
            prior: Vec::new(),
            raw: Vec::new(),
            started_at: SystemTime::UNIX_EPOCH,
            session: 1,
            built,
        }
    }
}

impl Default for Traces {
    fn default() -> Self {
        Traces::from(Vec::new())
    }
}

impl Clone for Traces {
    fn clone(&self) -> Self {
        Traces::from(self.to_vec())
    }
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Traces {
    fn eq(&self, other: &Traces) -> bool {
        **self == **other
    }
}

impl<'a> IntoIterator for &'a Traces {
    type Item = &'a StepTrace;
    type IntoIter = std::slice::Iter<'a, StepTrace>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Traces {
    type Item = StepTrace;
    type IntoIter = std::vec::IntoIter<StepTrace>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl Serialize for Traces {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// A trace as the hot path records it: names by reference, instants, rare parts boxed.
/// Turned into [`StepTrace`]s when the run ends or a checkpoint is saved.
pub(crate) struct RawTrace {
    pub(crate) step: &'static str,
    /// The step's node in its flow's graph.
    pub(crate) node: &'static crate::graph::StaticNode,
    pub(crate) parent: Option<&'static str>,
    pub(crate) attempt: u32,
    pub(crate) place: Place,
    pub(crate) outcome: AttemptOutcome,
    /// Nanoseconds from the run's start to the attempt's start.
    pub(crate) started: u64,
    /// The attempt's duration in nanoseconds.
    pub(crate) took: u64,
    pub(crate) detail: Option<Box<TraceDetail>>,
}

/// The parallel group and `map` item of an attempt, packed into one word so that a trace stays
/// as small as it was before maps.
#[derive(Clone, Copy)]
pub(crate) struct Place {
    /// The group, 0 for none (groups are numbered from 1).
    group: u32,
    /// The item, `u32::MAX` for none.
    item: u32,
}

impl Place {
    #[inline]
    pub(crate) fn new(group: Option<u32>, item: Option<u32>) -> Place {
        Place {
            group: group.unwrap_or(0),
            item: item.unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn group(self) -> Option<u32> {
        (self.group != 0).then_some(self.group)
    }

    pub(crate) fn item(self) -> Option<u32> {
        (self.item != u32::MAX).then_some(self.item)
    }
}

/// What only some attempts' traces say: captured values, an error.
pub(crate) struct TraceDetail {
    pub(crate) input: Option<serde_json::Value>,
    pub(crate) output: Option<serde_json::Value>,
    pub(crate) error: Option<String>,
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
            node: Cow::Borrowed(self.node.0),
            parent: self.parent.map(Cow::Borrowed),
            attempt: self.attempt,
            session,
            parallel_group_id: self.place.group(),
            item: self.place.item(),
            input,
            output,
            error,
            outcome: self.outcome,
            started_at: run_started_at + from,
            ended_at: run_started_at + to,
            duration: took,
            success: matches!(
                self.outcome,
                AttemptOutcome::Succeeded | AttemptOutcome::Reused
            ),
        }
    }
}

/// Appends a trace to a session's traces, built in place when there is room; the first makes
/// room for `hint` (about one per step of the flow), so that short runs hold no spare capacity
/// and long ones grow less.
#[inline]
pub(crate) fn push_raw(traces: &mut Vec<RawTrace>, hint: u16, trace: impl FnOnce() -> RawTrace) {
    if traces.capacity() == 0 {
        traces.reserve_exact(usize::from(hint.max(1)));
    }
    if traces.len() < traces.capacity() {
        traces.push(trace());
    } else {
        grow_and_push(traces, trace());
    }
}

#[cold]
#[inline(never)]
fn grow_and_push(traces: &mut Vec<RawTrace>, trace: RawTrace) {
    traces.push(trace);
}

#[cfg(test)]
mod size {
    use super::*;

    #[test]
    fn a_raw_trace_is_ten_words_with_its_node_and_map_item() {
        // Nine words of attempt, then the node id (a thin reference); the group and the map
        // item share one word.
        assert!(std::mem::size_of::<RawTrace>() <= 80);
        let p = Place::new(Some(3), None);
        assert_eq!((p.group(), p.item()), (Some(3), None));
        let p = Place::new(None, Some(0));
        assert_eq!((p.group(), p.item()), (None, Some(0)));
    }
}
