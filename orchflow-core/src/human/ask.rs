//! The human-input step: [`ask`] and the [`Ask`] step it makes.

use super::{
    Answer, Asked, HumanError, InputError, InputReply, InputRequest, PROVIDER_TRIES, TypedAnswer,
    refusal,
};
use crate::context::StepContext;
use crate::event::{InputEvent, RunEvent};
use crate::run::RunCore;
use crate::step::bounds::AnyState;
use crate::step::{Feed, StepCall, StepDef};
use crate::store::PendingInput;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// A human-input step: see [`ask`].
pub struct Ask<T, F> {
    name: &'static str,
    prompt: F,
    _input: PhantomData<fn(T)>,
}

impl<T, F: Clone> Clone for Ask<T, F> {
    fn clone(&self) -> Self {
        Ask {
            name: self.name,
            prompt: self.prompt.clone(),
            _input: PhantomData,
        }
    }
}

/// A step that asks a person: `prompt` turns the incoming value into the question; the output is
/// an [`Answer`] with the value and the text. Put it in a flow as `(review)`. Who answers is the
/// flow's [`InputProvider`](super::InputProvider) ([`Flow::with_input`](crate::Flow::with_input); stdin by default).
pub fn ask<T, F>(name: &'static str, prompt: F) -> Ask<T, F>
where
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    Ask {
        name,
        prompt,
        _input: PhantomData,
    }
}

impl<T, F> StepDef for Ask<T, F>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    type Input = T;
    type Output = Answer<T>;
    type Error = HumanError;
    type Needs = AnyState;

    fn name(&self) -> &'static str {
        self.name
    }

    fn question(&self) -> Option<&'static str> {
        Some(self.name)
    }

    fn suspension(&self, error: &HumanError) -> Option<Vec<PendingInput>> {
        match error {
            HumanError::Suspended(p) => Some(vec![p.clone()]),
            _ => None,
        }
    }

    /// The answer's text: `{"text": …}` (the value passes through, and is the input's).
    fn capture_output(&self, output: &Answer<T>) -> Option<serde_json::Value> {
        Some(answer_json(&output.text))
    }

    fn restore_output(
        &self,
        input: &T,
        json: serde_json::Value,
    ) -> Option<Result<Answer<T>, serde_json::Error>> {
        Some(answer_text(json).map(|text| Answer {
            value: input.clone(),
            text,
        }))
    }
}

/// A recorded answer as a trace keeps it.
fn answer_json(text: &str) -> serde_json::Value {
    serde_json::json!({ "text": text })
}

/// The text of a recorded answer ([`answer_json`]).
fn answer_text(json: serde_json::Value) -> Result<String, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Recorded {
        text: String,
    }
    serde_json::from_value::<Recorded>(json).map(|r| r.text)
}

impl<T, F> StepCall for Ask<T, F>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    // An `async` block, not an `async fn`: the future holds its arguments once.
    #[allow(clippy::manual_async_fn)]
    fn call<'a>(
        &'a self,
        input: Feed<'a, T>,
        ctx: &'a StepContext,
    ) -> impl Future<Output = Result<Answer<T>, HumanError>> + Send + 'a {
        async move {
            let prompt = (self.prompt)(input.get());
            let text = put_question(ctx, self.name, prompt, None, |_| Ok(())).await?;
            Ok(Answer {
                value: input.into_owned(),
                text,
            })
        }
    }
}

/// Asks a person through the run's asker: emits the question's events, checks the answer with
/// `check`, and gives the accepted answer's text; or the suspension (with why an answer was
/// refused) as [`HumanError::Suspended`].
async fn put_question(
    ctx: &StepContext,
    name: &'static str,
    prompt: String,
    schema: Option<Arc<serde_json::Value>>,
    check: fn(&str) -> Result<(), String>,
) -> Result<String, HumanError> {
    // Every context is one of a run's (the core is the only `RunView`).
    let Some(core) = ctx.core.as_any().downcast_ref::<RunCore>() else {
        return Err(HumanError::Input(InputError::Closed));
    };
    let mut request = InputRequest {
        run_id: core.run_id,
        step: name,
        question: crate::site::question(name),
        prompt,
        schema,
        error: None,
    };
    core.emit(|| {
        RunEvent::InputRequested(Box::new(InputEvent {
            step: name,
            question: request.question.clone(),
            text: request.prompt.clone(),
            elapsed: core.elapsed(),
        }))
    });
    // An answer given on resume first; else the provider, asked again (with the reason) while
    // its answers are refused, up to PROVIDER_TRIES times. One async layer: a waiting run's
    // future is this one.
    let asked = match core.human.given(&request.question, check) {
        Some(asked) => asked,
        None => {
            let mut tries = 0;
            loop {
                match core.human.provider().ask(&request).await? {
                    InputReply::Suspend => {
                        break Asked::Suspend {
                            error: request.error.take(),
                        };
                    }
                    InputReply::Answer(text) => match check(&text) {
                        Ok(()) => break Asked::Answer(text),
                        Err(reason) => {
                            tries += 1;
                            let why = refusal(&text, &reason);
                            if tries >= PROVIDER_TRIES {
                                return Err(HumanError::Refused {
                                    question: request.question,
                                    reason: why,
                                });
                            }
                            request.error = Some(why);
                        }
                    },
                }
            }
        }
    };
    match asked {
        Asked::Answer(text) => {
            core.emit(|| {
                RunEvent::InputReceived(Box::new(InputEvent {
                    step: name,
                    question: request.question.clone(),
                    text: text.clone(),
                    elapsed: core.elapsed(),
                }))
            });
            Ok(text)
        }
        Asked::Suspend { error } => Err(HumanError::Suspended(PendingInput {
            question: request.question,
            step: name.to_string(),
            prompt: request.prompt,
            schema: request.schema.map(|s| Box::new(Arc::unwrap_or_clone(s))),
            error: error.map(String::into_boxed_str),
        })),
    }
}

/// A human-input step whose answer is a typed value: see [`ask_typed`].
pub struct AskTyped<T, A, F> {
    name: &'static str,
    prompt: F,
    _types: PhantomData<fn(T) -> A>,
}

impl<T, A, F: Clone> Clone for AskTyped<T, A, F> {
    fn clone(&self) -> Self {
        AskTyped {
            name: self.name,
            prompt: self.prompt.clone(),
            _types: PhantomData,
        }
    }
}

/// A step that asks a person for a value of type `A`: `prompt` turns the incoming value into
/// the question; the output is a [`TypedAnswer`] with the incoming value, the answer parsed
/// with [`parse_answer`], and its text. The question carries `A`'s JSON Schema
/// ([`InputRequest::schema`], [`PendingInput::schema`]), so a form can be made from it.
///
/// An answer that does not fit `A` is refused: a provider is asked again with the reason in
/// [`InputRequest::error`] (up to [`PROVIDER_TRIES`](super::PROVIDER_TRIES) answers, then the
/// step fails with [`HumanError::Refused`]); an answer given to a suspended run is retired and
/// the run suspends on the question again, with the reason in [`PendingInput::error`].
///
/// ```
/// use orchflow::human::{self, TypedAnswer};
/// use orchflow::{flow, step};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
/// #[serde(rename_all = "snake_case")]
/// enum Verdict { Publish, Revise }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let review = human::ask_typed::<Verdict, _, _>("review", |d: &String| format!("{d}: publish or revise?"));
/// let answers = orchflow::testing::ScriptedInput::new(["maybe", "publish"]);
/// let f = flow! { (review) }.with_input(answers);
/// let r = f.run("draft".to_string()).await;
/// let a: TypedAnswer<String, Verdict> = r.output.unwrap();
/// assert_eq!((a.value.as_str(), a.answer, a.text.as_str()), ("draft", Verdict::Publish, "publish"));
/// # }
/// ```
pub fn ask_typed<A, T, F>(name: &'static str, prompt: F) -> AskTyped<T, A, F>
where
    A: DeserializeOwned + JsonSchema,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    AskTyped {
        name,
        prompt,
        _types: PhantomData,
    }
}

/// Reads an answer as a value of type `A`, as [`ask_typed`] does: the text as JSON; else, when
/// the text is not JSON, the text as a JSON string (so `publish` reads as the enum variant
/// `"publish"`, and free text as a `String`). The error is JSON's own.
///
/// ```
/// use orchflow::human::parse_answer;
/// assert_eq!(parse_answer::<u32>("42").unwrap(), 42);
/// assert_eq!(parse_answer::<String>("hello there").unwrap(), "hello there");
/// assert_eq!(parse_answer::<Vec<bool>>("[true, false]").unwrap(), [true, false]);
/// assert!(parse_answer::<u32>("forty-two").is_err());
/// ```
pub fn parse_answer<A: DeserializeOwned>(text: &str) -> Result<A, serde_json::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => serde_json::from_value(value),
        Err(not_json) => serde_json::from_value(serde_json::Value::String(text.to_string()))
            .map_err(|_| not_json),
    }
}

/// Whether `text` reads as an `A` ([`parse_answer`]), and why not.
fn fits<A: DeserializeOwned>(text: &str) -> Result<(), String> {
    parse_answer::<A>(text).map(drop).map_err(|e| e.to_string())
}

/// The JSON Schema of `A`, as a question carries it.
fn schema_of<A: JsonSchema>() -> Arc<serde_json::Value> {
    Arc::new(serde_json::Value::from(schemars::schema_for!(A)))
}

impl<T, A, F> StepDef for AskTyped<T, A, F>
where
    T: Clone + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    type Input = T;
    type Output = TypedAnswer<T, A>;
    type Error = HumanError;
    type Needs = AnyState;

    fn name(&self) -> &'static str {
        self.name
    }

    fn question(&self) -> Option<&'static str> {
        Some(self.name)
    }

    fn suspension(&self, error: &HumanError) -> Option<Vec<PendingInput>> {
        match error {
            HumanError::Suspended(p) => Some(vec![p.clone()]),
            _ => None,
        }
    }

    /// The answer's text: `{"text": …}` (the answer is read from it, the value is the input's).
    fn capture_output(&self, output: &TypedAnswer<T, A>) -> Option<serde_json::Value> {
        Some(answer_json(&output.text))
    }

    fn restore_output(
        &self,
        input: &T,
        json: serde_json::Value,
    ) -> Option<Result<TypedAnswer<T, A>, serde_json::Error>> {
        let read = answer_text(json).and_then(|text| {
            let answer = parse_answer::<A>(&text)?;
            Ok(TypedAnswer {
                value: input.clone(),
                answer,
                text,
            })
        });
        Some(read)
    }
}

impl<T, A, F> StepCall for AskTyped<T, A, F>
where
    T: Clone + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    // An `async` block, not an `async fn`: the future holds its arguments once.
    #[allow(clippy::manual_async_fn)]
    fn call<'a>(
        &'a self,
        input: Feed<'a, T>,
        ctx: &'a StepContext,
    ) -> impl Future<Output = Result<TypedAnswer<T, A>, HumanError>> + Send + 'a {
        async move {
            let prompt = (self.prompt)(input.get());
            let schema = Some(schema_of::<A>());
            let text = put_question(ctx, self.name, prompt, schema, fits::<A>).await?;
            match parse_answer::<A>(&text) {
                Ok(answer) => Ok(TypedAnswer {
                    value: input.into_owned(),
                    answer,
                    text,
                }),
                // The check above parsed this very text.
                Err(e) => Err(HumanError::Refused {
                    question: crate::site::question(self.name),
                    reason: e.to_string(),
                }),
            }
        }
    }
}
