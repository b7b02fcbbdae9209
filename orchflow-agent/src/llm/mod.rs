//! Chat models behind one async trait.
//!
//! [`LlmClient`] is object safe (`Arc<dyn LlmClient>`): a request is a list of [`Message`]s plus
//! sampling options and, optionally, the JSON schema the reply must follow; a reply is the text
//! and the token usage.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
}

/// One message of a chat.
///
/// ```
/// use orchflow_agent::{Message, Role};
/// let m = Message::user("What is 2 + 2?");
/// assert_eq!(m.role, Role::User);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What to ask a model.
///
/// ```
/// use orchflow_agent::{ChatRequest, Message};
/// let r = ChatRequest::new("qwen3:8b", vec![Message::user("hi")]).with_temperature(0.2);
/// assert_eq!(r.temperature, Some(0.2));
/// assert_eq!(r.schema, None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model's name as the server knows it.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Sampling temperature; the server's default when `None`.
    pub temperature: Option<f32>,
    /// The most tokens to generate; the server's default when `None`.
    pub max_tokens: Option<u32>,
    /// Ask a reasoning model to think (`Some(true)`) or not (`Some(false)`); `None` sends
    /// nothing. Ollama gets `think`; OpenAI-compatible servers ignore it.
    pub think: Option<bool>,
    /// The JSON schema the reply must follow (schema-constrained decoding where the server
    /// supports it): Ollama's `format`, OpenAI's `response_format` `json_schema`.
    pub schema: Option<serde_json::Value>,
}

impl ChatRequest {
    /// A request with the server's default options.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            temperature: None,
            max_tokens: None,
            think: None,
            schema: None,
        }
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }

    /// Sets the token limit.
    pub fn with_max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// Turns thinking on or off.
    pub fn with_think(mut self, think: bool) -> Self {
        self.think = Some(think);
        self
    }

    /// Asks for a reply that follows `schema`.
    pub fn with_schema(mut self, schema: serde_json::Value) -> Self {
        self.schema = Some(schema);
        self
    }
}

/// Tokens a request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl Usage {
    /// Both counts summed.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// A model's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The reply's text (for a schema request, the JSON text).
    pub content: String,
    /// Token counts, when the server reports them.
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: String,
}

/// The boxed future of an [`LlmClient`] call.
pub type LlmFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LlmError>> + Send + 'a>>;

/// A chat model.
///
/// Implementations: [`OllamaClient`](ollama::OllamaClient),
/// [`OpenAiClient`](openai::OpenAiClient), and
/// [`ScriptedLlm`](crate::testing::ScriptedLlm) for tests.
pub trait LlmClient: Send + Sync {
    /// Sends the request and returns the whole reply.
    ///
    /// Fails with an [`LlmError`]: the server could not be reached, timed out, answered with an
    /// error status (after the client's retries), or sent a body that is not its wire format.
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse>;
}

impl<C: LlmClient + ?Sized> LlmClient for std::sync::Arc<C> {
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        (**self).chat(request)
    }
}

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The reply did not follow the promised format.
    #[error("the model's reply is not valid for {expected}: {reason}; reply: {reply}")]
    Unparsable {
        /// What was expected (a type name or "JSON").
        expected: String,
        /// Why it did not parse.
        reason: String,
        /// The reply's text (shortened).
        reply: String,
    },
    /// A scripted client ran out of replies.
    #[error("the scripted model has no reply left (call {call})")]
    ScriptExhausted {
        /// Which call (1-based) found the script empty.
        call: usize,
    },
}

pub mod ollama;
pub mod openai;
