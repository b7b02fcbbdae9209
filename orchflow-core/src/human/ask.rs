//! The human-input step: [`ask`] and the [`Ask`] step it makes.

use super::{Answer, HumanError, InputError, InputReply, InputRequest};
use crate::context::StepContext;
use crate::event::{InputEvent, RunEvent};
use crate::run::RunCore;
use crate::step::bounds::AnyState;
use crate::step::{Feed, StepCall, StepDef};
use crate::store::PendingInput;
use std::future::Future;
use std::marker::PhantomData;

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
            HumanError::Input(_) => None,
        }
    }
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
            // Every context is one of a run's (the core is the only `RunView`).
            let Some(core) = ctx.core.as_any().downcast_ref::<RunCore>() else {
                return Err(HumanError::Input(InputError::Closed));
            };
            let request = InputRequest {
                run_id: core.run_id,
                step: self.name,
                question: crate::site::question(self.name),
                prompt,
            };
            core.emit(|| {
                RunEvent::InputRequested(Box::new(InputEvent {
                    step: self.name,
                    question: request.question.clone(),
                    text: request.prompt.clone(),
                    elapsed: core.elapsed(),
                }))
            });
            match core.human.ask(&request).await? {
                InputReply::Answer(text) => {
                    core.emit(|| {
                        RunEvent::InputReceived(Box::new(InputEvent {
                            step: self.name,
                            question: request.question.clone(),
                            text: text.clone(),
                            elapsed: core.elapsed(),
                        }))
                    });
                    Ok(Answer {
                        value: input.into_owned(),
                        text,
                    })
                }
                InputReply::Suspend => Err(HumanError::Suspended(PendingInput {
                    question: request.question,
                    step: self.name.to_string(),
                    prompt: request.prompt,
                })),
            }
        }
    }
}
