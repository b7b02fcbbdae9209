//! Reading a checkpoint back: claiming the run, checking that the checkpoint is this flow's,
//! binding an answer to its question, and decoding what the journal says to resume from.

use super::resume::{Resume, saved_state};
use super::{Durable, ResumeError};
use crate::context::RunId;
use crate::error::FlowError;
use crate::flow::{Driver, DurableLaunch, Launch};
use crate::result::FlowResult;
use crate::step::bounds::StateReq;
use crate::store::{
    Checkpoint, Claim, JournalEntry, PointRecord, RunDocument, RunStatus, StoreError,
};
use crate::trace::{StepTrace, Traces};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl<'f, T, I, O, N, P, F> Durable<'f, T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    F: Driver<T, I, O, P>,
{
    /// Claims and reads a checkpoint: a launch to continue it (with `answer` bound to its
    /// question and journaled), or the result of a completed run.
    pub(crate) async fn load(
        &self,
        run_id: RunId,
        answer: Option<(Option<&str>, String)>,
    ) -> Result<Loaded<I, O, P>, ResumeError> {
        // One writer per run: nothing is read, decided or run without the claim.
        let claim = match self.store.claim(run_id).await {
            Ok(claim) => claim,
            Err(StoreError::NotFound(id)) => return Err(ResumeError::NotFound(id)),
            Err(e) => return Err(e.into()),
        };
        self.load_claimed(claim, answer).await
    }

    /// Reads the checkpoint of the run `claim` holds and checks it is this flow's, and not
    /// cancelled.
    pub(crate) async fn read_claimed(
        &self,
        claim: &Claim,
    ) -> Result<(RunDocument, Vec<JournalEntry>), ResumeError> {
        let info = self.flow.info;
        let run_id = claim.run_id();
        let location = self.store.location(run_id);
        let Some(checkpoint) = self.store.load(run_id).await? else {
            return Err(ResumeError::NotFound(run_id));
        };
        let Checkpoint { document, journal } = checkpoint;
        if document.flow != info.name {
            return Err(ResumeError::OtherFlow {
                location,
                expected: info.name.to_string(),
                found: document.flow,
            });
        }
        if document.fingerprint != format!("{:016x}", info.fingerprint)
            && self.flow.declared(&document.fingerprint).is_none()
        {
            return Err(ResumeError::FlowChanged {
                location,
                flow: document.flow,
                saved: document.shape,
                now: info.shape.to_string(),
            });
        }
        if document.status == RunStatus::Cancelled {
            return Err(ResumeError::Cancelled(run_id));
        }
        Ok((document, journal))
    }

    /// [`load`](Self::load) of a run already claimed.
    pub(crate) async fn load_claimed(
        &self,
        claim: Claim,
        answer: Option<(Option<&str>, String)>,
    ) -> Result<Loaded<I, O, P>, ResumeError> {
        let info = self.flow.info;
        let run_id = claim.run_id();
        let location = self.store.location(run_id);
        let (mut document, journal) = self.read_claimed(&claim).await?;
        let answer = match answer {
            None => None,
            Some((name, text)) => {
                Some((crate::store::ops::answered_question(&document, name)?, text))
            }
        };
        let undecodable = |what| {
            let location = location.clone();
            move |source| ResumeError::Undecodable {
                location,
                what,
                source,
            }
        };
        let traces: Vec<StepTrace> = journal
            .iter()
            .flat_map(|e| e.traces.iter().cloned())
            .collect();
        // The shared state as last saved (only a run saving its state has one).
        let shared_state = journal.iter().rev().find_map(|e| e.state.clone());
        if document.status == RunStatus::Completed {
            let output = document
                .output
                .clone()
                .ok_or_else(|| ResumeError::Undecodable {
                    location: location.clone(),
                    what: "output",
                    source: <serde_json::Error as serde::de::Error>::custom(
                        "a completed run without an output",
                    ),
                })?;
            let output: O = (self.codec.output_from)(output).map_err(undecodable("output"))?;
            let loaded = saved_state(&journal, info.points).loaded;
            return Ok((
                None,
                Some(Done {
                    document,
                    output,
                    traces,
                    loaded,
                }),
                shared_state,
            ));
        }
        let input: I =
            (self.codec.input_from)(document.input.clone()).map_err(undecodable("input"))?;
        let saved = saved_state(&journal, info.points);
        let point = match saved.point {
            Some(json) => {
                Some((self.codec.point_from)(json).map_err(undecodable("resumable point"))?)
            }
            None => None,
        };
        let mut inner = Vec::with_capacity(saved.inner.len());
        for (name, path, value) in saved.inner {
            let mut json = serde_json::Map::with_capacity(1);
            json.insert(name.clone(), value);
            let p = (self.codec.point_from)(serde_json::Value::Object(json))
                .map_err(undecodable("inner resumable point"))?;
            inner.push((name, path, p));
        }
        // A checkpoint was read: the run says where it continues from, even before any point.
        let loaded = Some(saved.loaded.unwrap_or("start"));
        let session = traces.iter().map(|t| t.session).max().unwrap_or(0) + 1;
        let mut answers = saved.answers;
        let resume = Resume::new(point, inner);
        let mut seq = journal.last().map_or(0, |e| e.seq);
        // Earlier sessions' traces are journaled already; this session's count from zero.
        let flushed = 0;
        // A run of an earlier fingerprint declared compatible continues as this flow's.
        let current = format!("{:016x}", info.fingerprint);
        if document.fingerprint != current {
            self.keep_graph().await?;
            document.fingerprint = current;
            document.shape = info.shape.to_string();
        }
        document.status = RunStatus::Running;
        document.pending = Vec::new();
        document.error = None;
        document.updated_at = SystemTime::now();
        self.store.put_document(&claim, &document).await?;
        if let Some((question, text)) = answer {
            // Journaled before anything runs, so that a crash from here on keeps the answer.
            let entry = JournalEntry::new(
                seq + 1,
                PointRecord::Answer {
                    question: question.clone(),
                    text: text.clone(),
                },
            );
            self.store.append(&claim, &entry).await?;
            seq += 1;
            answers.push((question, text));
        }
        let replay = self.fork_replayer(&document, &traces).await?;
        Ok((
            Some(Launch {
                input: Arc::new(input),
                resume,
                answers,
                durable: Some(Box::new(DurableLaunch {
                    store: Arc::clone(&self.store),
                    claim,
                    document,
                    traces,
                    journal: (seq, flushed),
                    loaded,
                    session,
                    output_json: self.codec.output_to,
                    point_json: self.codec.point_to,
                    state_json: self.state_codec.map(|c| c.to_json),
                })),
                replay,
            }),
            None,
            shared_state,
        ))
    }
}

/// What loading a checkpoint gives: a launch to continue the run, or the result of a completed
/// run; and the shared state as last saved.
pub(crate) type Loaded<I, O, P> = (
    Option<Launch<I, O, P>>,
    Option<Done<O>>,
    Option<serde_json::Value>,
);

/// A completed run read back from its checkpoint.
pub(crate) struct Done<O> {
    document: RunDocument,
    output: O,
    traces: Vec<StepTrace>,
    /// The last point saved.
    loaded: Option<&'static str>,
}

impl<O> Done<O> {
    pub(crate) fn into_result<S>(self, state: S, flow: &'static str) -> FlowResult<O, S> {
        let started_at = self.document.created_at;
        let duration = self
            .document
            .updated_at
            .duration_since(started_at)
            .unwrap_or(Duration::ZERO);
        FlowResult {
            run_id: self.document.run_id,
            flow,
            output: Some(self.output),
            success: true,
            failed_step: None,
            error: None,
            suspended: Vec::new(),
            resumed_from: Some(self.loaded.unwrap_or("start")),
            session: self.traces.iter().map(|t| t.session).max().unwrap_or(1),
            traces: self.traces.into(),
            state: Arc::new(state),
            started_at,
            duration,
        }
    }
}

/// The result of a run that could not start because its checkpoint could not be written or read.
pub(crate) fn not_started<O, S>(
    run_id: RunId,
    flow: &'static str,
    state: S,
    e: StoreError,
) -> FlowResult<O, S> {
    FlowResult {
        run_id,
        flow,
        output: None,
        success: false,
        failed_step: None,
        error: Some(FlowError::Checkpoint(e)),
        suspended: Vec::new(),
        resumed_from: None,
        session: 1,
        traces: Traces::default(),
        state: Arc::new(state),
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
    }
}
