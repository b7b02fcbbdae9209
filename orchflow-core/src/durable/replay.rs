//! Replay and fork of recorded runs by a durable flow (see [`crate::replay`]): the report of a
//! replay, a fork's preview, and the fork itself.

use super::Durable;
use super::resume::saved_state;
use crate::context::RunId;
use crate::error::FlowError;
use crate::flow::{Driver, Launch};
use crate::replay::serve::{Mode, Replayer, State, locate};
use crate::replay::{
    Call, Divergence, DivergenceKind, ForkAt, ForkOrigin, ForkPreview, Recording, ReplayOptions,
    ReplayOutcome, ReplayReport, ResumeCheck,
};
use crate::result::FlowResult;
use crate::step::bounds::StateReq;
use crate::store::{RunQuery, RunStatus, StoreError};
use crate::trace::AttemptOutcome;
use std::sync::Arc;

/// Why a fork could not be made. The recorded run is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store has no such run.
    #[error("no run {0} in the store")]
    NotFound(RunId),
    /// The run belongs to another flow.
    #[error("run {run_id} is a run of flow `{found}`, not of flow `{expected}`")]
    OtherFlow {
        /// The run.
        run_id: RunId,
        /// This flow's name.
        expected: String,
        /// The run's flow.
        found: String,
    },
    /// The fork's call is not one the run made ([`ForkAt`]).
    #[error("run {run_id}: {reason}")]
    NoSuchCall {
        /// The run.
        run_id: RunId,
        /// What calls there are.
        reason: String,
    },
    /// The edited input does not fit the step's input type.
    #[error("run {run_id}: {reason}")]
    BadInput {
        /// The run.
        run_id: RunId,
        /// Why.
        reason: String,
    },
    /// This build has no flow of the run's flow name ([`Registry`](crate::registry::Registry)).
    #[error("this build has no flow `{0}`")]
    UnknownFlow(String),
    /// The recording cannot be used (values not recorded, input of another type).
    #[error("run {run_id} cannot be forked: {reason}")]
    Unreplayable {
        /// The run.
        run_id: RunId,
        /// Why.
        reason: String,
    },
}

impl<'f, T, I, O, N, P, F> Durable<'f, T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    N::State: Default,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    /// Replays run `run_id` of the store against this build of the flow, running no step
    /// (see [`crate::replay`]): whether it is compatible, or where it first diverges; and
    /// whether the run, if it has not finished, can be resumed by this build.
    ///
    /// Fails only when the store fails or has no such run ([`StoreError::NotFound`]); a
    /// recording of another flow, or one that cannot be used, is a report.
    ///
    /// ```
    /// use orchflow::{flow, step, MemoryStore};
    /// use orchflow::replay::ReplayOptions;
    ///
    /// #[step] async fn plan(x: u32) -> u32 { x + 1 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let f = flow! { plan => plan };
    /// let run = f.durable(store.clone()).run(1).await;
    /// let report = f.durable(store).replay(run.run_id, &ReplayOptions::default()).await.unwrap();
    /// assert!(report.is_compatible());
    /// assert_eq!(report.reused, 2);
    /// # }
    /// ```
    pub async fn replay(
        &self,
        run_id: RunId,
        options: &ReplayOptions,
    ) -> Result<ReplayReport, StoreError> {
        let recording = Recording::load(&*self.store, run_id)
            .await?
            .ok_or(StoreError::NotFound(run_id))?;
        Ok(self.replay_recording(&recording, options).await)
    }

    /// [`replay`](Self::replay) of every run of this flow's name that `query` lists (its flow
    /// filter is set to this flow), newest first; a run that cannot be read is skipped with
    /// its error in the second list.
    ///
    /// Fails when the store cannot list runs.
    pub async fn replay_runs(
        &self,
        query: &RunQuery,
        options: &ReplayOptions,
    ) -> Result<(Vec<ReplayReport>, Vec<(RunId, StoreError)>), StoreError> {
        let mut query = query.clone();
        query.flow = Some(self.flow.info.name.to_string());
        let listing = self.store.list_runs(&query).await?;
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        for doc in listing.runs {
            match self.replay(doc.run_id, options).await {
                Ok(r) => reports.push(r),
                Err(e) => errors.push((doc.run_id, e)),
            }
        }
        Ok((reports, errors))
    }

    /// [`replay`](Self::replay) of a recording already read (from a store or an exported
    /// bundle).
    pub async fn replay_recording(
        &self,
        recording: &Recording,
        options: &ReplayOptions,
    ) -> ReplayReport {
        let doc = &recording.document;
        let mut report = ReplayReport {
            run_id: doc.run_id,
            flow: doc.flow.clone(),
            status: doc.status.clone(),
            recorded_fingerprint: doc.fingerprint.clone(),
            fingerprint: self.flow.fingerprint(),
            outcome: ReplayOutcome::Compatible,
            reused: 0,
            reexecuted: 0,
            continues_at: Vec::new(),
            resume: self.resume_check(recording),
            declared: self.flow.declared(&doc.fingerprint).map(str::to_string),
        };
        if doc.flow != self.flow.info.name {
            report.outcome = ReplayOutcome::Unreplayable {
                reason: format!(
                    "run {} is a run of flow `{}`, not of `{}`",
                    doc.run_id, doc.flow, self.flow.info.name
                ),
            };
            return report;
        }
        // A fork's own record took an edited input at its fork's call: so does its replay.
        let edit = doc.lineage.forked_from.as_ref().and_then(|origin| {
            let input = origin.input.clone()?;
            let (key, ordinal) = locate(&recording.traces, &origin.at).ok()?;
            Some((key, ordinal, input))
        });
        let mode = Mode::Check {
            options: options.clone(),
            edit,
        };
        let (replayer, result) = match self.drive(recording, mode).await {
            Ok(driven) => driven,
            Err(reason) => {
                report.outcome = ReplayOutcome::Unreplayable { reason };
                return report;
            }
        };
        let (st, not_taken) = replayer.finish();
        report.reused = st.reused;
        report.reexecuted = st.reexecuted;
        report.outcome = self.conclude(recording, st, not_taken, result, &mut report.continues_at);
        report
    }

    /// What a fork of run `run_id` from `at` would do, running nothing: which calls it reuses,
    /// which run again (and which of those repeat side effects), assuming the calls after the
    /// fork's return what they returned in the recording. The edited `input`, if given, is
    /// checked against the step's input type.
    ///
    /// Fails when the store fails, the run is not this flow's, the call is not one the run
    /// made, or the input does not fit ([`ForkError`]).
    ///
    /// ```
    /// use orchflow::{flow, step, MemoryStore};
    /// use orchflow::replay::{ForkAt, Reuse};
    ///
    /// #[step] async fn fetch(x: u32) -> u32 { x + 1 }
    /// #[step] async fn publish(x: u32) -> u32 { x * 10 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let f = flow! { fetch => publish };
    /// let run = f.durable(store.clone()).run(1).await;
    /// let at = ForkAt::parse("publish").unwrap();
    /// let preview = f.durable(store).preview_fork(run.run_id, &at, None).await.unwrap();
    /// let how: Vec<_> = preview.steps.iter().map(|s| (s.call.step.as_str(), s.reuse, s.repeats_side_effects)).collect();
    /// assert_eq!(how, [("fetch", Reuse::Reused, false), ("publish", Reuse::Rerun, true)]);
    /// # }
    /// ```
    pub async fn preview_fork(
        &self,
        run_id: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<ForkPreview, ForkError> {
        let recording = self.recording_to_fork(run_id).await?;
        let (mode, _) = self.fork_mode(&recording, at, input, true)?;
        let (replayer, _) = self
            .drive(&recording, mode)
            .await
            .map_err(|reason| ForkError::Unreplayable { run_id, reason })?;
        let (st, _) = replayer.finish();
        if let Some(reason) = st.bad_input {
            return Err(ForkError::BadInput { run_id, reason });
        }
        let at_call = st
            .log
            .iter()
            .find(|s| s.reuse == crate::replay::Reuse::Rerun)
            .map(|s| s.call.clone())
            .unwrap_or_default();
        Ok(ForkPreview {
            run_id,
            at: at_call,
            steps: st.log,
        })
    }

    /// Forks run `run_id` from `at` and runs the fork to its end (or its first suspension): a
    /// new run of this build that takes the recorded results of every call before `at` (and
    /// of calls independent of it: other branches of a group, other items of a map), runs the
    /// call `at` (with `input` instead of its own, when given; else with its recorded input,
    /// which for a forked run at its fork's call is the edited one) and everything after it.
    /// The new run's document records where it came from, and the recorded run's lists the
    /// fork.
    ///
    /// Fails like [`preview_fork`](Self::preview_fork), before anything is written.
    ///
    /// ```
    /// use orchflow::{flow, step, AttemptOutcome, MemoryStore};
    /// use orchflow::replay::ForkAt;
    ///
    /// #[step] async fn fetch(x: u32) -> u32 { x + 1 }
    /// #[step] async fn publish(x: u32) -> u32 { x * 10 }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::default();
    /// let f = flow! { fetch => publish };
    /// let run = f.durable(store.clone()).run(1).await;
    /// assert_eq!(run.output, Some(20));
    /// let at = ForkAt::parse("publish").unwrap();
    /// let fork = f.durable(store.clone()).fork(run.run_id, &at, Some(serde_json::json!(5))).await.unwrap();
    /// assert_eq!(fork.output, Some(50));
    /// let how: Vec<_> = fork.traces.iter().map(|t| (t.step.as_ref(), t.outcome)).collect();
    /// assert_eq!(how, [("fetch", AttemptOutcome::Reused), ("publish", AttemptOutcome::Succeeded)]);
    /// # }
    /// ```
    pub async fn fork(
        &self,
        run_id: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<FlowResult<O, N::State>, ForkError> {
        let fork = self.prepare_fork(run_id, at, input).await?;
        let new_id = RunId::new_v4();
        let lineage = crate::store::Lineage {
            forked_from: Some(fork.origin),
            forks: Vec::new(),
        };
        let mut launch = self
            .create_as(new_id, fork.input, RunStatus::Running, lineage)
            .await
            .map_err(|(_, e)| ForkError::Store(e))?;
        self.note_fork(&fork.source, new_id).await?;
        drop(fork.source);
        launch.replay = Some(Arc::new(Replayer::new(
            fork.recording.traces,
            self.flow.graph(),
            fork.recording.graph,
            fork.mode,
        )));
        Ok(self.flow.execute(launch, N::State::default(), None).await)
    }

    /// Runs the flow over `recording` with a replayer in `mode`: the replayer and the result,
    /// or why the recording cannot be used.
    async fn drive(
        &self,
        recording: &Recording,
        mode: Mode,
    ) -> Result<(Arc<Replayer>, FlowResult<O, N::State>), String> {
        let input = (self.codec.input_from)(recording.document.input.clone())
            .map_err(|e| format!("the recorded input does not fit the flow's input type: {e}"))?;
        let replayer = Arc::new(Replayer::new(
            recording.traces.clone(),
            self.flow.graph(),
            recording.graph.clone(),
            mode,
        ));
        let mut launch = Launch::fresh(input);
        launch.replay = Some(Arc::clone(&replayer));
        let result = self.flow.execute(launch, N::State::default(), None).await;
        Ok((replayer, result))
    }

    /// Like [`fork`](Self::fork), but queues the fork for a worker
    /// ([`Queued`](RunStatus::Queued)) instead of running it here: the worker that takes it
    /// reuses the recorded results before the fork's call as `fork` does. Returns the new
    /// run's id.
    ///
    /// Fails like [`preview_fork`](Self::preview_fork), before anything is written.
    pub async fn submit_fork(
        &self,
        run_id: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<RunId, ForkError> {
        let fork = self.prepare_fork(run_id, at, input).await?;
        let new_id = RunId::new_v4();
        let lineage = crate::store::Lineage {
            forked_from: Some(fork.origin),
            forks: Vec::new(),
        };
        // The claim `create` returns is released at once: the run waits for a worker.
        drop(
            self.create_as(new_id, fork.input, RunStatus::Queued, lineage)
                .await
                .map_err(|(_, e)| ForkError::Store(e))?,
        );
        self.note_fork(&fork.source, new_id).await?;
        Ok(new_id)
    }

    /// Everything a fork needs before it writes: the call and the input checked by a preview,
    /// the recording, the replayer's mode, the new run's origin and input, and the recorded
    /// run's claim (held until its document lists the fork; a run another writer holds is
    /// waited for up to two seconds, then refused with `RunBusy`).
    async fn prepare_fork(
        &self,
        run_id: RunId,
        at: &ForkAt,
        input: Option<serde_json::Value>,
    ) -> Result<Prepared<I>, ForkError> {
        let preview = self.preview_fork(run_id, at, input.clone()).await?;
        let source = claim_waiting(&*self.store, run_id).await?;
        let recording = self.recording_to_fork(run_id).await?;
        let (mode, mut origin) = self.fork_mode(&recording, at, input, false)?;
        origin.path = preview.at.path;
        let first = (self.codec.input_from)(recording.document.input.clone()).map_err(|e| {
            ForkError::Unreplayable {
                run_id,
                reason: format!("the recorded input does not fit the flow's input type: {e}"),
            }
        })?;
        Ok(Prepared {
            recording,
            mode,
            origin,
            input: first,
            source,
        })
    }

    /// Adds `fork` to the forks listed by the document of the run `source` holds.
    async fn note_fork(&self, source: &crate::store::Claim, fork: RunId) -> Result<(), StoreError> {
        let run_id = source.run_id();
        let mut doc = self
            .store
            .document(run_id)
            .await?
            .ok_or(StoreError::NotFound(run_id))?;
        doc.lineage.forks.push(fork);
        self.store.put_document(source, &doc).await
    }

    /// The verdict of a check, from what the replayer saw and how the run ended.
    fn conclude(
        &self,
        recording: &Recording,
        st: State,
        not_taken: Vec<Call>,
        result: FlowResult<O, N::State>,
        continues_at: &mut Vec<Call>,
    ) -> ReplayOutcome {
        if let Some(reason) = st.unreplayable {
            return ReplayOutcome::Unreplayable { reason };
        }
        if let Some(d) = st.divergence {
            return ReplayOutcome::Diverges(Box::new(d));
        }
        let recorded_done = recording.document.status == RunStatus::Completed;
        let mut frontier = st.parked;
        for q in &result.suspended {
            frontier.push(Call {
                step: q.step.clone(),
                node: String::new(),
                parent: None,
                path: format!("question {}", q.question),
                iterations: Vec::new(),
                input: None,
                source: None,
            });
        }
        if let Some(e) = &result.error
            && !matches!(e, FlowError::ReplayStopped)
        {
            return ReplayOutcome::Diverges(Box::new(Divergence {
                kind: DivergenceKind::Failed,
                path: e.step().map(|s| format!("step {s}")).unwrap_or_default(),
                recorded: None,
                new: None,
                message: format!("the new code stops: {e}"),
            }));
        }
        if let Some(first) = frontier.first() {
            if let Some(next) = not_taken.first() {
                return ReplayOutcome::Diverges(Box::new(Divergence {
                    kind: DivergenceKind::NotRecorded,
                    path: first.path.clone(),
                    message: format!(
                        "the new code calls `{}`, which the recorded run never called here; it called `{}` next",
                        first.step, next.step
                    ),
                    recorded: Some(next.clone()),
                    new: Some(first.clone()),
                }));
            }
            if recorded_done {
                return ReplayOutcome::Diverges(Box::new(Divergence {
                    kind: DivergenceKind::NotRecorded,
                    path: first.path.clone(),
                    message: format!(
                        "the new code calls `{}`, which the recorded run never called here",
                        first.step
                    ),
                    recorded: None,
                    new: Some(first.clone()),
                }));
            }
            *continues_at = frontier;
            return ReplayOutcome::Compatible;
        }
        if let Some(next) = not_taken.first() {
            return ReplayOutcome::Diverges(Box::new(Divergence {
                kind: DivergenceKind::NotCalled,
                path: next.path.clone(),
                message: format!(
                    "the recorded run called `{}` here, which the new code never calls",
                    next.step
                ),
                recorded: Some(next.clone()),
                new: None,
            }));
        }
        if recorded_done
            && let (Some(out), Some(was)) = (&result.output, &recording.document.output)
            && let Ok(is) = (self.codec.output_to)(out)
            && &is != was
        {
            return ReplayOutcome::Diverges(Box::new(Divergence {
                kind: DivergenceKind::FlowOutputChanged,
                path: "output".into(),
                recorded: None,
                new: None,
                message: format!("the run's output was {was}; the new code makes it {is}"),
            }));
        }
        ReplayOutcome::Compatible
    }

    /// Whether the recorded run can be resumed by this build from its journal.
    fn resume_check(&self, recording: &Recording) -> ResumeCheck {
        let doc = &recording.document;
        if matches!(doc.status, RunStatus::Completed | RunStatus::Cancelled) {
            return ResumeCheck::Finished;
        }
        let reason = if doc.fingerprint == self.flow.fingerprint() {
            None
        } else {
            match self.flow.declared(&doc.fingerprint) {
                Some(r) => Some(r.to_string()),
                None => return ResumeCheck::Undeclared,
            }
        };
        let saved = saved_state(&recording.journal, self.flow.info.points);
        let point = saved
            .point
            .map(|json| (self.codec.point_from)(json).map(drop));
        if let Some(Err(e)) = point {
            return ResumeCheck::Undecodable {
                reason: format!("the last saved point does not fit this build's state: {e}"),
            };
        }
        for (name, _, value) in saved.inner {
            let mut json = serde_json::Map::with_capacity(1);
            json.insert(name.clone(), value);
            if let Err(e) = (self.codec.point_from)(serde_json::Value::Object(json)) {
                return ResumeCheck::Undecodable {
                    reason: format!(
                        "the saved position `{name}` does not fit this build's state: {e}"
                    ),
                };
            }
        }
        match reason {
            None => ResumeCheck::SameShape,
            Some(reason) => ResumeCheck::Declared { reason },
        }
    }
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
    /// The recording of run `run_id`, checked to be this flow's.
    async fn recording_to_fork(&self, run_id: RunId) -> Result<Recording, ForkError> {
        let recording = Recording::load(&*self.store, run_id)
            .await?
            .ok_or(ForkError::NotFound(run_id))?;
        if recording.document.flow != self.flow.info.name {
            return Err(ForkError::OtherFlow {
                run_id,
                expected: self.flow.info.name.to_string(),
                found: recording.document.flow.clone(),
            });
        }
        Ok(recording)
    }

    /// The replayer's mode for a fork of `recording` from `at`, and the new run's origin.
    fn fork_mode(
        &self,
        recording: &Recording,
        at: &ForkAt,
        input: Option<serde_json::Value>,
        dry: bool,
    ) -> Result<(Mode, ForkOrigin), ForkError> {
        let run_id = recording.document.run_id;
        let (key, ordinal) = locate(&recording.traces, at)
            .map_err(|reason| ForkError::NoSuchCall { run_id, reason })?;
        // No input given: the call takes the one it had in the recording. That is what the
        // code passes there, except at the call a forked run took its edited input at.
        let input = input.or_else(|| {
            let origin = recording.document.lineage.forked_from.as_ref()?;
            let edited = origin.input.clone()?;
            let edited_at = locate(&recording.traces, &origin.at).ok()?;
            (edited_at.0 == key && edited_at.1 == ordinal).then_some(edited)
        });
        let origin = ForkOrigin {
            run_id,
            at: at.clone(),
            path: String::new(),
            input: input.clone(),
            fingerprint: recording.document.fingerprint.clone(),
        };
        Ok((
            Mode::Fork {
                key,
                ordinal,
                input,
                dry,
            },
            origin,
        ))
    }

    /// The replayer of a forked run that has not made its fork's call yet (a fork submitted
    /// for a worker, or one that stopped before that call): `None` for any other run.
    pub(crate) async fn fork_replayer(
        &self,
        document: &crate::store::RunDocument,
        traces: &[crate::trace::StepTrace],
    ) -> Result<Option<Arc<Replayer>>, StoreError> {
        let Some(origin) = &document.lineage.forked_from else {
            return Ok(None);
        };
        // The calls before the fork's are answered, not run: an attempt of the fork's step
        // in this run's own traces is the fork's call or one after it.
        if traces
            .iter()
            .any(|t| t.step == origin.at.step && t.outcome != AttemptOutcome::Reused)
        {
            return Ok(None);
        }
        let Some(recording) = Recording::load(&*self.store, origin.run_id).await? else {
            return Err(StoreError::NotFound(origin.run_id));
        };
        let Ok((mode, _)) = self.fork_mode(&recording, &origin.at, origin.input.clone(), false)
        else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Replayer::new(
            recording.traces,
            self.flow.graph(),
            recording.graph,
            mode,
        ))))
    }
}

/// What [`Durable::prepare_fork`] gives.
struct Prepared<I> {
    recording: Recording,
    mode: Mode,
    origin: ForkOrigin,
    input: I,
    source: crate::store::Claim,
}

/// Claims run `run_id`, waiting up to two seconds while another writer holds it (a worker
/// releasing it, a fork being noted).
async fn claim_waiting(
    store: &dyn crate::store::CheckpointStore,
    run_id: RunId,
) -> Result<crate::store::Claim, ForkError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match store.claim(run_id).await {
            Ok(claim) => return Ok(claim),
            Err(StoreError::NotFound(id)) => return Err(ForkError::NotFound(id)),
            Err(StoreError::RunBusy { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
