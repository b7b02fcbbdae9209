//! What a replay says about a run ([`ReplayReport`]) and what a fork would do ([`ForkPreview`]).

use super::Source;
use crate::context::RunId;
use crate::store::RunStatus;
use serde::{Deserialize, Serialize};

/// One call of a step: as the recording made it, or as the new code makes it.
///
/// ```
/// use orchflow::replay::Call;
/// let c = Call { step: "market".into(), node: "1/1/0".into(), path: "[docs, market][1] > step market".into(), ..Call::default() };
/// assert_eq!(c.to_string(), "step `market` at [docs, market][1] > step market");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The step's name.
    pub step: String,
    /// Its node in its flow's graph.
    pub node: String,
    /// The enclosing step, when the call is inside a nested flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Where the call is, from the top of the flow: each enclosing loop with its iteration,
    /// each `map` with its item, each group with the branch, each `if` with the arm
    /// (`loop plan[3] > [docs, market][1] > step market`).
    pub path: String,
    /// The iterations of the enclosing loops and the items of the enclosing maps, outermost
    /// first; empty at the top level.
    #[serde(default)]
    pub iterations: Vec<u32>,
    /// The call's input as JSON, when it was captured (recorded) or is `Serialize` (new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// Where the step is defined in the new code (new calls of `#[step]` functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step `{}` at {}", self.step, self.path)
    }
}

/// How the new code departs from the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DivergenceKind {
    /// At the place of a recorded call the new code calls another step (renamed, replaced,
    /// inserted before it).
    StepChanged,
    /// The new code calls the recorded step with another input.
    InputChanged,
    /// The new code makes a call the recording does not have (a step added, another arm taken,
    /// more iterations).
    NotRecorded,
    /// The recording made a call the new code does not make (a step removed, fewer iterations).
    NotCalled,
    /// The recorded output does not read back into the step's output type any more.
    OutputUndecodable,
    /// A re-executed step ([`ReplayOptions::reexecute`](super::ReplayOptions::reexecute))
    /// returned another output than the recorded one.
    OutputChanged,
    /// The new code completes the run with another output than the recorded one.
    FlowOutputChanged,
    /// The new code stops where the recording did not: a predicate panicked, or a re-executed
    /// step failed.
    Failed,
}

/// The first place where the new code departs from a recorded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// What happened.
    pub kind: DivergenceKind,
    /// Where, from the top of the flow (the new call's path when there is one).
    pub path: String,
    /// The recorded call at that place, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Call>,
    /// The new code's call at that place, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Call>,
    /// One sentence saying what differs.
    pub message: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "diverges at {}: {}", self.path, self.message)
    }
}

/// What a replay concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// The new code makes every recorded call, in the same places, with the same inputs, and
    /// (for a completed run) nothing more. A run that had not finished continues at
    /// [`ReplayReport::continues_at`].
    Compatible,
    /// The first divergence.
    Diverges(Box<Divergence>),
    /// The recording cannot be replayed (another flow, values not captured, input that does not
    /// read back): why.
    Unreplayable {
        /// Why.
        reason: String,
    },
}

/// Whether a run waiting to continue (suspended, queued, running, failed) can be resumed by the
/// new code from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resume", rename_all = "snake_case")]
pub enum ResumeCheck {
    /// The run has finished: nothing to resume.
    Finished,
    /// Recorded under the current fingerprint: the resume continues as it would have.
    SameShape,
    /// Recorded under an earlier fingerprint the flow declares compatible
    /// ([`Flow::compatible_with`](crate::Flow::compatible_with)), and its saved points read
    /// back into the new code's state: the resume is allowed.
    Declared {
        /// The reason the declaration gives (`resume_reason` in JSON, apart from an
        /// unreplayable outcome's `reason`).
        #[serde(rename = "resume_reason")]
        reason: String,
    },
    /// Recorded under another fingerprint that the flow does not declare compatible: a resume
    /// is refused until the change is reviewed and declared.
    Undeclared,
    /// The run's saved points do not read back into the new code's state: a resume would fail.
    Undecodable {
        /// Why (`resume_reason` in JSON).
        #[serde(rename = "resume_reason")]
        reason: String,
    },
}

/// A replay of one recorded run against the current build of its flow.
///
/// ```
/// use orchflow::{flow, step, MemoryStore};
/// use orchflow::replay::{ReplayOptions, ReplayOutcome};
///
/// #[step] async fn plan(x: u32) -> u32 { x + 1 }
/// #[step] async fn check(x: &u32) -> bool { *x > 1 }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// let old = flow! { #[flow(name = "launch")] plan };
/// let run = old.durable(store.clone()).run(1).await;
///
/// let new = flow! { #[flow(name = "launch")] plan => check };
/// let report = new.durable(store.clone()).replay(run.run_id, &ReplayOptions::default()).await.unwrap();
/// let ReplayOutcome::Diverges(d) = &report.outcome else { panic!("{report:?}") };
/// assert_eq!(d.path, "step check");
/// assert_eq!(d.message, "the new code calls `check`, which the recorded run never called here");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The recorded run.
    pub run_id: RunId,
    /// The flow's name.
    pub flow: String,
    /// Where the recorded run stands.
    pub status: RunStatus,
    /// The fingerprint the run was recorded under.
    pub recorded_fingerprint: String,
    /// The current build's fingerprint.
    pub fingerprint: String,
    /// The conclusion.
    #[serde(flatten)]
    pub outcome: ReplayOutcome,
    /// How many calls were answered from the recording.
    pub reused: u32,
    /// How many steps were re-executed and matched the recording.
    pub reexecuted: u32,
    /// Where a run that had not finished continues: the calls the new code makes next that the
    /// recording has no result for.
    #[serde(default)]
    pub continues_at: Vec<Call>,
    /// Whether the run can be resumed by the new code from its journal.
    #[serde(flatten)]
    pub resume: ResumeCheck,
    /// The reason the current build gives for declaring the recorded fingerprint compatible
    /// ([`Flow::compatible_with`](crate::Flow::compatible_with)), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
}

impl ReplayReport {
    /// Whether the run is compatible with the new code.
    pub fn is_compatible(&self) -> bool {
        matches!(self.outcome, ReplayOutcome::Compatible)
    }

    /// Whether a deploy of the new code is safe for this run, as a CI job asks: the recording
    /// could be replayed; the run is compatible, or it diverges under a fingerprint the new code
    /// declares compatible (the change was reviewed); and, if the run has not finished, the new
    /// code can resume it (same shape, or declared and its saved points fit).
    ///
    /// ```
    /// use orchflow::replay::{ReplayOutcome, ReplayReport, ResumeCheck};
    /// use orchflow::store::RunStatus;
    /// let mut r = ReplayReport {
    ///     run_id: Default::default(), flow: "f".into(), status: RunStatus::Suspended,
    ///     recorded_fingerprint: "00000000000000aa".into(), fingerprint: "00000000000000bb".into(),
    ///     outcome: ReplayOutcome::Compatible, reused: 2, reexecuted: 0, continues_at: vec![],
    ///     resume: ResumeCheck::Undeclared, declared: None,
    /// };
    /// assert!(!r.passes(), "a waiting run the new code would refuse to resume");
    /// r.resume = ResumeCheck::Declared { reason: "reviewed".into() };
    /// r.declared = Some("reviewed".into());
    /// assert!(r.passes());
    /// ```
    pub fn passes(&self) -> bool {
        let outcome = match &self.outcome {
            ReplayOutcome::Compatible => true,
            ReplayOutcome::Diverges(_) => self.declared.is_some(),
            ReplayOutcome::Unreplayable { .. } => false,
        };
        let resume = matches!(
            self.resume,
            ResumeCheck::Finished | ResumeCheck::SameShape | ResumeCheck::Declared { .. }
        );
        outcome && resume
    }
}

/// How a fork treats one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reuse {
    /// The recorded result is taken; the step does not run.
    Reused,
    /// The step runs again: the fork's call, or a call after it. Its side effects happen again
    /// when the recording had run it to completion ([`PreviewStep::repeats_side_effects`]).
    Rerun,
    /// The step runs for the first time: the recording has no such call.
    New,
}

/// One call in a [`ForkPreview`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewStep {
    /// The call.
    pub call: Call,
    /// What the fork does with it.
    pub reuse: Reuse,
    /// Whether the recorded run already ran this call to completion, so that running it again
    /// repeats its side effects.
    pub repeats_side_effects: bool,
}

/// What a fork would do, before it runs: which calls are reused, which run again, which repeat
/// side effects. The calls after the fork point are those the recording made (the new run may
/// take another way once its results differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkPreview {
    /// The recorded run.
    pub run_id: RunId,
    /// The fork's call.
    pub at: Call,
    /// Every call, in the order the new code makes them.
    pub steps: Vec<PreviewStep>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreplayable_run_with_a_declared_resume_has_no_key_twice() {
        let r = ReplayReport {
            run_id: RunId::nil(),
            flow: "f".into(),
            status: RunStatus::Failed,
            recorded_fingerprint: "00000000000000aa".into(),
            fingerprint: "00000000000000bb".into(),
            outcome: ReplayOutcome::Unreplayable {
                reason: "values not recorded".into(),
            },
            reused: 0,
            reexecuted: 0,
            continues_at: Vec::new(),
            resume: ResumeCheck::Declared {
                reason: "reviewed".into(),
            },
            declared: Some("reviewed".into()),
        };
        let text = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["reason"], "values not recorded");
        assert_eq!(v["resume"], "declared");
        assert_eq!(v["resume_reason"], "reviewed");
        assert_eq!(text.matches("\"reason\"").count(), 1, "{text}");
    }
}
