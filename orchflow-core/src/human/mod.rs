//! Human input: a step that asks a person, and the providers that answer (stdin, callbacks,
//! scripted answers in [`testing`](crate::testing)), or suspend the run until an answer comes.
//!
//! ```
//! use orchflow::human::{self, Answer};
//! use orchflow::{flow, step};
//!
//! #[step] async fn draft(topic: String) -> String { format!("A post about {topic}") }
//! #[step] async fn decide(a: Answer<String>) -> String {
//!     if a.text == "yes" { format!("published: {}", a.value) } else { "shelved".to_string() }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let review = human::ask("review", |d: &String| format!("Publish \"{d}\"? (yes/no)"));
//! let f = flow! { draft => (review) => decide }
//!     .with_input(human::callback(|req| if req.prompt.contains("orchflow") { "yes" } else { "no" }.to_string()));
//! assert_eq!(f.run("orchflow".into()).await.output.as_deref(), Some("published: A post about orchflow"));
//! assert_eq!(f.run("rust".into()).await.output.as_deref(), Some("shelved"));
//! # }
//! ```

mod ask;

pub use ask::{Ask, AskTyped, ask, ask_typed, parse_answer};

use crate::context::RunId;
use crate::store::PendingInput;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A question for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRequest {
    /// The run that asks.
    pub run_id: RunId,
    /// The step that asks.
    pub step: &'static str,
    /// Where the question stands in the flow ([`PendingInput::question`]).
    pub question: String,
    /// The question.
    pub prompt: String,
    /// The JSON Schema of the answer's type when the step asks for a typed answer
    /// ([`ask_typed`]): the answer is JSON text of that type. `None` for free text.
    pub schema: Option<Arc<serde_json::Value>>,
    /// Why the previous answer to this question was refused, when it is asked again.
    pub error: Option<String>,
}

/// What a provider does with a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputReply {
    /// Here is the answer.
    Answer(String),
    /// Stop the run with a checkpoint; it is resumed later with the answer.
    Suspend,
}

/// Why no answer could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input ended before an answer (stdin closed).
    #[error("the input ended before an answer was given")]
    Closed,
    /// Reading the answer failed.
    #[error("reading the answer failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The future a provider returns.
pub type InputFuture<'a> =
    Pin<Box<dyn Future<Output = Result<InputReply, InputError>> + Send + 'a>>;

/// Answers the questions of human-input steps. Set one per flow with
/// [`Flow::with_input`](crate::Flow::with_input); the default is [`Stdin`].
pub trait InputProvider: Send + Sync + 'static {
    /// Answers (or suspends on) one question.
    fn ask<'a>(&'a self, request: &'a InputRequest) -> InputFuture<'a>;
}

/// Prints the question on stderr (after why the previous answer was refused, when it is asked
/// again) and reads one line from stdin (on the blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdin;

impl InputProvider for Stdin {
    fn ask<'a>(&'a self, request: &'a InputRequest) -> InputFuture<'a> {
        let prompt = request.prompt.clone();
        let refused = request.error.clone();
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || {
                use std::io::{BufRead, Write};
                let mut err = std::io::stderr();
                if let Some(refused) = refused {
                    let _ = writeln!(err, "{refused}");
                }
                let _ = write!(err, "{prompt} ");
                let _ = err.flush();
                let mut line = String::new();
                let n = std::io::stdin().lock().read_line(&mut line)?;
                Ok::<_, std::io::Error>((n, line))
            })
            .await
            .map_err(|e| InputError::Io(std::io::Error::other(e)))?;
            match read? {
                (0, _) => Err(InputError::Closed),
                (_, line) => Ok(InputReply::Answer(
                    line.trim_end_matches(['\r', '\n']).to_string(),
                )),
            }
        })
    }
}

/// Always suspends: the run stops with a checkpoint and a `Suspended` outcome, and is resumed
/// later with [`Durable::answer`](crate::Durable::answer). A server need not block a task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Suspend;

impl InputProvider for Suspend {
    fn ask<'a>(&'a self, _: &'a InputRequest) -> InputFuture<'a> {
        Box::pin(async { Ok(InputReply::Suspend) })
    }
}

/// A provider from a sync function.
pub struct Callback<F>(F);

/// Answers with a sync function.
///
/// ```
/// let provider = orchflow::human::callback(|req| format!("ok: {}", req.prompt));
/// # let _ = provider;
/// ```
pub fn callback<F>(f: F) -> Callback<F>
where
    F: Fn(&InputRequest) -> String + Send + Sync + 'static,
{
    Callback(f)
}

impl<F> InputProvider for Callback<F>
where
    F: Fn(&InputRequest) -> String + Send + Sync + 'static,
{
    fn ask<'a>(&'a self, request: &'a InputRequest) -> InputFuture<'a> {
        let answer = (self.0)(request);
        Box::pin(async move { Ok(InputReply::Answer(answer)) })
    }
}

/// A provider from an async function.
pub struct AsyncCallback<F>(F);

/// Answers with an async function (a chat UI, a queue, …).
///
/// ```
/// let provider = orchflow::human::async_callback(|req| async move { format!("ok: {}", req.prompt) });
/// # let _ = provider;
/// ```
pub fn async_callback<F, Fut>(f: F) -> AsyncCallback<F>
where
    F: Fn(InputRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    AsyncCallback(f)
}

impl<F, Fut> InputProvider for AsyncCallback<F>
where
    F: Fn(InputRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    fn ask<'a>(&'a self, request: &'a InputRequest) -> InputFuture<'a> {
        let fut = (self.0)(request.clone());
        Box::pin(async move { Ok(InputReply::Answer(fut.await)) })
    }
}

/// The provider of one run, with the answers a resumed run was given.
pub(crate) struct Asker {
    provider: Arc<dyn InputProvider>,
    /// Boxed: rare (a resumed suspension), and every run carries an asker.
    given: Option<Box<Given>>,
}

/// Answers given to a resumed run, and the questions that took one since the last save.
#[derive(Default)]
struct Given {
    /// `(question, answer)`, oldest first: a question takes the oldest answer given to it.
    answers: Mutex<Vec<(String, String)>>,
    used: Mutex<Vec<String>>,
    /// Questions whose given answer was refused (it did not fit the answer's type): the run
    /// stops on them again, and its stop retires the refused answers.
    refused: Mutex<Vec<String>>,
}

impl Default for Asker {
    fn default() -> Self {
        Asker {
            provider: Arc::new(Stdin),
            given: None,
        }
    }
}

impl Asker {
    pub(crate) fn new(provider: Arc<dyn InputProvider>, answers: Vec<(String, String)>) -> Self {
        let given = (!answers.is_empty()).then(|| {
            Box::new(Given {
                answers: Mutex::new(answers),
                used: Mutex::new(Vec::new()),
                refused: Mutex::new(Vec::new()),
            })
        });
        Asker { provider, given }
    }

    /// The answer given on resume to `question`, checked with `check` (the answer type's
    /// deserialiser): `None` when none is left; else the answer, which marks the question used,
    /// or, when refused, a suspension with the reason, which marks it refused (the run's stop
    /// retires the refused answer).
    pub(crate) fn given(
        &self,
        question: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<Asked> {
        let given = self.given.as_ref()?;
        let mut answers = given.answers.lock().unwrap_or_else(|p| p.into_inner());
        let i = answers.iter().position(|(q, _)| q == question)?;
        let (question, answer) = answers.remove(i);
        drop(answers);
        let (list, asked) = match check(&answer) {
            Ok(()) => (&given.used, Asked::Answer(answer)),
            Err(reason) => (
                &given.refused,
                Asked::Suspend {
                    error: Some(refusal(&answer, &reason)),
                },
            ),
        };
        list.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(question);
        Some(asked)
    }

    /// The provider, for a question no given answer is left for.
    pub(crate) fn provider(&self) -> &dyn InputProvider {
        &*self.provider
    }

    /// The questions whose given answers were refused since the last call: the run's stop
    /// records them as answered, which retires those answers, so a new answer is taken next.
    pub(crate) fn take_refused(&self) -> Vec<String> {
        match &self.given {
            Some(given) => {
                std::mem::take(&mut *given.refused.lock().unwrap_or_else(|p| p.into_inner()))
            }
            None => Vec::new(),
        }
    }

    /// The questions that took a given answer since the last call: the next save records them
    /// (its steps' outputs cover those answers), so that they are not handed out again.
    pub(crate) fn take_used(&self) -> Vec<String> {
        match &self.given {
            Some(given) => {
                std::mem::take(&mut *given.used.lock().unwrap_or_else(|p| p.into_inner()))
            }
            None => Vec::new(),
        }
    }

    /// Puts back questions [`take_used`](Self::take_used) gave, when the save failed.
    pub(crate) fn give_back_used(&self, mut questions: Vec<String>) {
        if let Some(given) = &self.given {
            let mut used = given.used.lock().unwrap_or_else(|p| p.into_inner());
            questions.append(&mut used);
            *used = questions;
        }
    }
}

/// What asking a question came to, the answer checked.
pub(crate) enum Asked {
    /// An answer the check accepted.
    Answer(String),
    /// The run suspends on the question; `error` says why an answer was refused.
    Suspend { error: Option<String> },
}

/// How many answers a provider may give to one question before the step fails, when each is
/// refused.
pub const PROVIDER_TRIES: u32 = 3;

/// Why an answer was refused, for the person who gave it.
pub(crate) fn refusal(answer: &str, reason: &str) -> String {
    let shown: String = answer.chars().take(80).collect();
    let more = if shown.len() < answer.len() {
        "…"
    } else {
        ""
    };
    format!("the answer {shown:?}{more} does not fit: {reason}")
}

/// A person's answer, with the value the question was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer<T> {
    /// The value that came into the human-input step.
    pub value: T,
    /// The answer.
    pub text: String,
}

/// A person's typed answer ([`ask_typed`]), with the value the question was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedAnswer<T, A> {
    /// The value that came into the human-input step.
    pub value: T,
    /// The answer, read as the type asked for.
    pub answer: A,
    /// The answer's text, as given.
    pub text: String,
}

/// Why a human-input step did not produce an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HumanError {
    /// The run suspends until the question is answered.
    #[error("waiting for an answer to: {}", .0.prompt)]
    Suspended(PendingInput),
    /// The provider failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The provider's answers did not fit the answer's type, [`PROVIDER_TRIES`] times.
    #[error("question `{question}`: {reason}")]
    Refused {
        /// The question ([`PendingInput::question`]).
        question: String,
        /// Why the last answer was refused.
        reason: String,
    },
}

/// Why a flow with two different human questions of one name does not run: their answers
/// (given by question name, journaled by position) could not be told apart. `flow!` finds it
/// when the flow is built, and every run of the flow fails with it before any step runs, as a
/// [`FlowError::Step`](crate::FlowError::Step) named after the question whose source is this
/// error. One question used twice (`(review) => … => (review.clone())`) is legal.
///
/// ```
/// use orchflow::human::{self, DuplicateQuestion};
/// use orchflow::{flow, FlowError, StepError};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let a = human::ask("review", |d: &String| format!("publish {d}?"));
/// let b = human::ask("review", |d: &human::Answer<String>| format!("really publish {}?", d.value));
/// let f = flow! { (a) => (b) };
/// let r = f.run("post".to_string()).await;
/// assert!(r.traces.is_empty(), "nothing ran");
/// let Some(FlowError::Step { step, source: StepError::Failed(e), .. }) = &r.error else { panic!() };
/// assert_eq!(step, "review");
/// assert_eq!(e.downcast_ref::<DuplicateQuestion>(), Some(&DuplicateQuestion { name: "review" }));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "two different human questions of this flow are named `{name}`: their answers could not be told apart; give one of them another name"
)]
pub struct DuplicateQuestion {
    /// The name both questions have.
    pub name: &'static str,
}
