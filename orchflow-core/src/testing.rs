//! Helpers for offline tests of flows: flaky behaviour on demand and event collection.

use crate::event::Event;
use crate::result::FlowResult;
use futures_core::Stream;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};

/// A switch that fails the first `n` times it is asked, then succeeds: put one in a step (or in
/// the flow's shared state) to make that step flaky.
///
/// ```
/// use orchflow::{flow, step, testing::Flaky};
///
/// static FLAKY: Flaky = Flaky::failing(2);
///
/// #[step(retry = 2)]
/// async fn fetch(x: u32) -> Result<u32, orchflow::testing::FlakyError> {
///     FLAKY.attempt()?;
///     Ok(x)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = flow! { fetch }.run(5).await;
/// assert_eq!(r.output, Some(5));
/// assert_eq!(r.traces.len(), 3);
/// assert_eq!(FLAKY.calls(), 3);
/// # }
/// ```
#[derive(Debug)]
pub struct Flaky {
    failures: u32,
    calls: AtomicU32,
}

/// The error a [`Flaky`] returns while it is still failing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flaky failure {call} of {failures}")]
pub struct FlakyError {
    /// Which call this was (1-based).
    pub call: u32,
    /// How many calls fail in all.
    pub failures: u32,
}

impl Flaky {
    /// Fails the first `n` calls.
    pub const fn failing(n: u32) -> Self {
        Flaky {
            failures: n,
            calls: AtomicU32::new(0),
        }
    }

    /// Counts a call; `Err` while fewer than `n` calls have been made.
    pub fn attempt(&self) -> Result<(), FlakyError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call <= self.failures {
            Err(FlakyError {
                call,
                failures: self.failures,
            })
        } else {
            Ok(())
        }
    }

    /// How many calls were made.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Drains an event stream: every event's kind in order, and the result from the final event.
///
/// ```
/// use orchflow::{flow, step, testing::collect_events};
/// #[step] async fn id(x: u8) -> u8 { x }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { id };
/// let (kinds, result) = collect_events(f.stream(3)).await;
/// assert_eq!(kinds.first(), Some(&"flow_started"));
/// assert_eq!(result.and_then(|r| r.output), Some(3));
/// # }
/// ```
pub async fn collect_events<O, S>(
    stream: impl Stream<Item = Event<O, S>>,
) -> (Vec<&'static str>, Option<FlowResult<O, S>>) {
    let mut stream = pin!(stream);
    let mut kinds = Vec::new();
    let mut result = None;
    while let Some(e) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        kinds.push(e.kind());
        if let Event::FlowCompleted(r) | Event::FlowFailed(r) | Event::FlowSuspended(r) = e {
            result = Some(*r);
        }
    }
    (kinds, result)
}

/// Answers human-input steps from a script, in order; suspends when the script runs out.
///
/// ```
/// use orchflow::human::{self, InputProvider, InputReply, InputRequest};
/// use orchflow::testing::ScriptedInput;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let script = ScriptedInput::new(["yes"]);
/// let req = InputRequest {
///     run_id: Default::default(),
///     step: "review",
///     question: "review".into(),
///     prompt: "ok?".into(),
///     schema: None,
///     error: None,
/// };
/// assert_eq!(script.ask(&req).await.unwrap(), InputReply::Answer("yes".into()));
/// assert_eq!(script.ask(&req).await.unwrap(), InputReply::Suspend);
/// assert_eq!(script.asked(), ["ok?", "ok?"]);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ScriptedInput {
    answers: std::sync::Mutex<std::collections::VecDeque<String>>,
    asked: std::sync::Mutex<Vec<String>>,
}

impl ScriptedInput {
    /// A script of answers.
    pub fn new<S: Into<String>>(answers: impl IntoIterator<Item = S>) -> Self {
        ScriptedInput {
            answers: std::sync::Mutex::new(answers.into_iter().map(Into::into).collect()),
            asked: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The questions asked so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl crate::human::InputProvider for ScriptedInput {
    fn ask<'a>(&'a self, request: &'a crate::human::InputRequest) -> crate::human::InputFuture<'a> {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.prompt.clone());
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        Box::pin(async move {
            Ok(match next {
                Some(a) => crate::human::InputReply::Answer(a),
                None => crate::human::InputReply::Suspend,
            })
        })
    }
}
