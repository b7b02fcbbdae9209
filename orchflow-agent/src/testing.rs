//! Helpers for offline tests: [`ScriptedLlm`], a chat model that answers from a script.
//!
//! ```
//! use orchflow_agent::agent::{Agent, AgentConfig};
//! use orchflow_agent::testing::ScriptedLlm;
//! use std::sync::Arc;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let llm = Arc::new(ScriptedLlm::new(["Paris"]));
//! let config = AgentConfig::new("test-model");
//! let agent = Agent::new("geo", "You answer geography questions.", config, llm.clone());
//! let reply = agent.run("Capital of France?").await?;
//! assert_eq!(reply.text, "Paris");
//! assert_eq!(llm.requests()[0].messages.last().unwrap().content, "Capital of France?");
//! # Ok::<(), orchflow_agent::agent::AgentError>(())
//! # }).unwrap();
//! ```

use crate::llm::{ChatRequest, ChatResponse, LlmClient, LlmError, LlmFuture, Usage};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

type Responder = Box<dyn FnMut(&ChatRequest) -> Result<String, LlmError> + Send>;

enum Script {
    Replies(VecDeque<Result<String, LlmError>>),
    Fn(Responder),
}

struct State {
    script: Script,
    requests: Vec<ChatRequest>,
}

/// A chat model for offline tests: answers from a list of replies, in order, or from a
/// closure, and records every request.
///
/// Each call records the request, then takes the next scripted reply; when the list is used up
/// the call fails with [`LlmError::ScriptExhausted`]. The usage of a reply is, unless set with
/// [`with_usage`](ScriptedLlm::with_usage), a word count: prompt tokens = the words of all the
/// request's messages, completion tokens = the words of the reply. The reply's model is the
/// request's.
///
/// Share it as `Arc<ScriptedLlm>`: one clone goes to the code under test (it coerces to
/// `Arc<dyn LlmClient>`), the other inspects [`requests`](ScriptedLlm::requests) afterwards.
///
/// ```
/// use orchflow_agent::testing::ScriptedLlm;
/// use orchflow_agent::{ChatRequest, LlmClient, LlmError, Message};
/// use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let llm = Arc::new(ScriptedLlm::new(["first", "second"]));
/// let client: Arc<dyn LlmClient> = llm.clone();
/// let request = ChatRequest::new("m", vec![Message::user("hi")]);
/// assert_eq!(client.chat(&request).await?.content, "first");
/// assert_eq!(client.chat(&request).await?.content, "second");
/// assert!(matches!(client.chat(&request).await, Err(LlmError::ScriptExhausted { call: 3 })));
/// assert_eq!(llm.calls(), 3);
/// assert_eq!(llm.requests()[0], request);
/// # Ok::<(), LlmError>(())
/// # }).unwrap();
/// ```
pub struct ScriptedLlm {
    state: Mutex<State>,
    usage: Option<Usage>,
}

impl std::fmt::Debug for ScriptedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        let script = match &state.script {
            Script::Replies(r) => format!("{} replies left", r.len()),
            Script::Fn(_) => "closure".to_string(),
        };
        f.debug_struct("ScriptedLlm")
            .field("script", &script)
            .field("calls", &state.requests.len())
            .finish()
    }
}

impl ScriptedLlm {
    /// A model that gives `replies` in order, then fails with [`LlmError::ScriptExhausted`].
    pub fn new<I, S>(replies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::from_results(replies.into_iter().map(|r| Ok(r.into())))
    }

    /// A model that gives these outcomes in order: a reply, or an error (to test failure
    /// handling), then fails with [`LlmError::ScriptExhausted`].
    ///
    /// ```
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use orchflow_agent::LlmError;
    /// let llm = ScriptedLlm::from_results([
    ///     Err(LlmError::Stream { reason: "cut".into() }),
    ///     Ok("recovered".to_string()),
    /// ]);
    /// assert_eq!(llm.remaining(), Some(2));
    /// ```
    pub fn from_results(results: impl IntoIterator<Item = Result<String, LlmError>>) -> Self {
        Self::with_script(Script::Replies(results.into_iter().collect()))
    }

    /// A model whose replies `responder` computes from each request (it may keep state).
    ///
    /// ```
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use orchflow_agent::{ChatRequest, LlmClient, Message};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let echo = ScriptedLlm::from_fn(|req: &ChatRequest| {
    ///     Ok(format!("you said: {}", req.messages.last().map_or("", |m| m.content.as_str())))
    /// });
    /// let reply = echo.chat(&ChatRequest::new("m", vec![Message::user("ping")])).await?;
    /// assert_eq!(reply.content, "you said: ping");
    /// # Ok::<(), orchflow_agent::LlmError>(())
    /// # }).unwrap();
    /// ```
    pub fn from_fn<F>(responder: F) -> Self
    where
        F: FnMut(&ChatRequest) -> Result<String, LlmError> + Send + 'static,
    {
        Self::with_script(Script::Fn(Box::new(responder)))
    }

    fn with_script(script: Script) -> Self {
        ScriptedLlm {
            state: Mutex::new(State {
                script,
                requests: Vec::new(),
            }),
            usage: None,
        }
    }

    /// Reports `usage` for every reply instead of word counts.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Appends a reply to the script (no effect on a closure-based model).
    pub fn push_reply(&self, reply: impl Into<String>) {
        if let Script::Replies(replies) = &mut self.lock().script {
            replies.push_back(Ok(reply.into()));
        }
    }

    /// Every request received so far, in order (failed calls included).
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.lock().requests.clone()
    }

    /// How many calls were made (failed ones included).
    pub fn calls(&self) -> usize {
        self.lock().requests.len()
    }

    /// Scripted replies not yet given; `None` for a closure-based model.
    pub fn remaining(&self) -> Option<usize> {
        match &self.lock().script {
            Script::Replies(replies) => Some(replies.len()),
            Script::Fn(_) => None,
        }
    }

    /// The state, even if a responder panicked while holding the lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn answer(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let content = {
            let mut state = self.lock();
            state.requests.push(request.clone());
            let call = state.requests.len();
            match &mut state.script {
                Script::Replies(replies) => replies
                    .pop_front()
                    .unwrap_or(Err(LlmError::ScriptExhausted { call })),
                Script::Fn(responder) => responder(request),
            }
        }?;
        let usage = self.usage.unwrap_or_else(|| Usage {
            prompt_tokens: request.messages.iter().map(|m| words(&m.content)).sum(),
            completion_tokens: words(&content),
        });
        Ok(ChatResponse {
            content,
            usage,
            model: request.model.clone(),
        })
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl LlmClient for ScriptedLlm {
    /// Records the request and returns the next scripted reply.
    ///
    /// Fails with [`LlmError::ScriptExhausted`] when no reply is left, or with the error the
    /// script or the closure gives.
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        Box::pin(async move { self.answer(request) })
    }
}
