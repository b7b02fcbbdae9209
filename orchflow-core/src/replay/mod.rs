//! Replay and fork: drive the current build of a flow over a recorded run.
//!
//! A durable run records every attempt of every step ([`StepTrace`] values), with
//! its input and output as JSON (durable runs capture values unless
//! [`Flow::capture_values`](crate::Flow::capture_values) turned it off). A **replay** runs the
//! flow's current code from the recorded input, but no step runs: each call is answered with the
//! output the recording has for the same call. The flow's own logic (its `if` and `until`
//! predicates, its loops, its hand-offs) does run, so the replay finds the first place where
//! the new code would do something else than the recorded run did
//! ([`Durable::replay`](crate::Durable::replay), [`ReplayReport`]).
//!
//! A **fork** ([`Durable::fork`](crate::Durable::fork)) is a new run of the current code that
//! takes the recorded results before a chosen call ([`ForkAt`]), runs that call (with an edited
//! input if given) and everything after it, and keeps its lineage in both runs' documents.
//!
//! # How calls are matched
//!
//! A call is identified by where it is: the enclosing nested-flow step (if any), its node in the
//! flow's [graph](crate::graph) (a structural path, stable when nothing before it changes), and
//! its `map` item. The n-th call at one place is answered by the n-th successful attempt the
//! recording has at that place. A call is **compatible** when the recorded attempt is of the
//! same step, its recorded input equals the new input (when both were captured), and its
//! recorded output reads back into the step's output type. Steps that are flows are not
//! answered as a whole: their own steps are. Human questions are asked again and answered with
//! the answers the run was given.
//!
//! # Invariants
//!
//! * A replay executes no step (except those named in [`ReplayOptions::reexecute`]), writes
//!   nothing to any store, and never fails on a recording: a recording it cannot use gives a
//!   report that says why ([`ReplayOutcome::Unreplayable`]).
//! * A fork never changes the recorded run's journal or traces; it only adds the new run's id to
//!   the recorded run's document ([`Lineage::forks`](crate::store::Lineage::forks)).

mod path;
mod report;
pub(crate) mod serve;

pub use report::{
    Call, Divergence, DivergenceKind, ForkPreview, PreviewStep, ReplayOutcome, ReplayReport,
    ResumeCheck, Reuse,
};

use crate::context::RunId;
use crate::graph::FlowGraph;
use crate::store::{CheckpointStore, JournalEntry, PointRecord, RunDocument, StoreError};
pub use crate::store::{ForkAt, ForkOrigin};
use crate::trace::StepTrace;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Where a step is defined in the source: the file, line and column of its function's name.
///
/// ```
/// use orchflow::replay::Source;
/// let s = Source::at("src/main.rs", 12, 10);
/// assert_eq!(s.to_string(), "src/main.rs:12:10");
/// assert!(Source::UNKNOWN.is_unknown());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The file, as `file!()` gives it (relative to the package's workspace).
    pub file: Cow<'static, str>,
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1.
    pub column: u32,
}

impl Source {
    /// No known place (steps written by hand, flows).
    pub const UNKNOWN: Source = Source {
        file: Cow::Borrowed(""),
        line: 0,
        column: 0,
    };

    /// A place in the source.
    pub const fn at(file: &'static str, line: u32, column: u32) -> Source {
        Source {
            file: Cow::Borrowed(file),
            line,
            column,
        }
    }

    /// Whether no place is known.
    pub fn is_unknown(&self) -> bool {
        self.file.is_empty()
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A recorded run, as a replay or a fork reads it: its document, every attempt's trace, the
/// answers it was given, and the graph of the flow that recorded it (when the store kept it).
#[derive(Debug, Clone)]
pub struct Recording {
    /// The run's document.
    pub document: RunDocument,
    /// Every attempt of every session, in the order they ended.
    pub traces: Vec<StepTrace>,
    /// The answers given to the run, `(question, answer)`, in the order they were given.
    pub answers: Vec<(String, String)>,
    /// The recorded flow's graph ([`CheckpointStore::graph`]), for paths of calls the new code
    /// no longer makes.
    pub graph: Option<FlowGraph>,
    /// The run's journal, its traces taken out (they are in `traces`): what a resume would
    /// continue from.
    pub journal: Vec<JournalEntry>,
}

impl Recording {
    /// Reads run `run_id` from `store`: `Ok(None)` when the store has no such run.
    ///
    /// Fails when the store fails or the run's files are unreadable.
    ///
    /// ```
    /// use orchflow::{flow, step, MemoryStore};
    /// use orchflow::replay::Recording;
    ///
    /// #[step] async fn double(x: u32) -> u32 { x * 2 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let f = flow! { double };
    /// let run = f.durable(store.clone()).run(21).await;
    /// let rec = Recording::load(&store, run.run_id).await.unwrap().unwrap();
    /// assert_eq!(rec.traces[0].output, Some(serde_json::json!(42)));
    /// # }
    /// ```
    pub async fn load(
        store: &dyn CheckpointStore,
        run_id: RunId,
    ) -> Result<Option<Recording>, StoreError> {
        let Some(checkpoint) = store.load(run_id).await? else {
            return Ok(None);
        };
        let mut traces = Vec::new();
        let mut answers = Vec::new();
        let mut journal = checkpoint.journal;
        for entry in &mut journal {
            if let PointRecord::Answer { question, text } = &entry.record {
                answers.push((question.clone(), text.clone()));
            }
            traces.append(&mut entry.traces);
        }
        let graph = store.graph(&checkpoint.document.fingerprint).await?;
        Ok(Some(Recording {
            document: checkpoint.document,
            traces,
            answers,
            graph,
            journal,
        }))
    }
}

/// What a replay does beyond matching calls.
///
/// ```
/// use orchflow::replay::ReplayOptions;
/// let o = ReplayOptions::default().reexecute(["parse"]);
/// assert!(o.reexecutes("parse"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    reexecute: BTreeSet<String>,
}

impl ReplayOptions {
    /// Runs the named steps for real (they must be pure: no side effects) and reports a
    /// divergence when one returns another output than the recording has.
    pub fn reexecute<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Self {
        self.reexecute.extend(steps.into_iter().map(Into::into));
        self
    }

    /// Whether step `name` is run for real.
    pub fn reexecutes(&self, name: &str) -> bool {
        self.reexecute.contains(name)
    }
}
