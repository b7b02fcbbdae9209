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
/// Implementations: [`OllamaClient`], [`OpenAiClient`], and
/// [`ScriptedLlm`](crate::testing::ScriptedLlm) for tests.
pub trait LlmClient: Send + Sync {
    /// Sends the request and returns the whole reply.
    ///
    /// Fails with an [`LlmError`]: the server could not be reached, timed out, answered with an
    /// error status (after the client's retries), or sent a body that is not its wire format.
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse>;

    /// Sends the request and returns the reply as a [`ChatStream`] of text chunks, as the server
    /// produces them.
    ///
    /// The stream yields [`ChatChunk`]s; the last item of a stream that ends without error has
    /// `done == true` and carries the usage. A failure (the server could not be reached, an
    /// error status, a broken connection, a malformed line) is yielded as an `Err` item, after
    /// which the stream ends. Retries apply only before the first chunk: a stream that breaks
    /// mid-way is not restarted (its text was already handed out).
    ///
    /// The default implementation calls [`chat`](LlmClient::chat) and yields the whole reply as
    /// one chunk; the HTTP clients override it with the server's streaming protocol.
    /// [`collect_stream`] turns a stream back into a [`ChatResponse`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use orchflow_agent::{ChatRequest, LlmClient, Message};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let llm = ScriptedLlm::new(["Hello there"]);
    /// let request = ChatRequest::new("m", vec![Message::user("hi")]);
    /// let mut text = String::new();
    /// let mut stream = llm.chat_stream(&request);
    /// while let Some(chunk) = stream.next().await {
    ///     text.push_str(&chunk?.content);
    /// }
    /// assert_eq!(text, "Hello there");
    /// # Ok::<(), orchflow_agent::LlmError>(())
    /// # }).unwrap();
    /// ```
    fn chat_stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        Box::pin(futures_util::stream::once(async move {
            self.chat(request).await.map(|r| ChatChunk {
                content: r.content,
                done: true,
                usage: Some(r.usage),
                model: Some(r.model),
            })
        }))
    }
}

impl<C: LlmClient + ?Sized> LlmClient for std::sync::Arc<C> {
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        (**self).chat(request)
    }

    fn chat_stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        (**self).chat_stream(request)
    }
}

/// One piece of a streamed reply (see [`LlmClient::chat_stream`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The text added by this chunk (may be empty on the final chunk).
    pub content: String,
    /// `true` on the last chunk of a reply that ended normally.
    pub done: bool,
    /// Token counts; set on the final chunk when the server reports them.
    pub usage: Option<Usage>,
    /// The model that answered, when known (always set on the final chunk).
    pub model: Option<String>,
}

/// The boxed stream of [`LlmClient::chat_stream`]: text chunks, or one error that ends it.
pub type ChatStream<'a> =
    Pin<Box<dyn futures_core::Stream<Item = Result<ChatChunk, LlmError>> + Send + 'a>>;

/// Reads a [`ChatStream`] to its end and assembles the [`ChatResponse`]: the chunks' text
/// concatenated, the final chunk's usage and the last model name seen (empty if none was).
///
/// Fails with the first error the stream yields, or with [`LlmError::Stream`] when the stream
/// ends without a final (`done`) chunk.
///
/// ```
/// use orchflow_agent::llm::collect_stream;
/// use orchflow_agent::testing::ScriptedLlm;
/// use orchflow_agent::{ChatRequest, LlmClient, Message};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let llm = ScriptedLlm::new(["42"]);
/// let request = ChatRequest::new("m", vec![Message::user("6 * 7?")]);
/// let reply = collect_stream(llm.chat_stream(&request)).await?;
/// assert_eq!(reply.content, "42");
/// # Ok::<(), orchflow_agent::LlmError>(())
/// # }).unwrap();
/// ```
pub async fn collect_stream(mut stream: ChatStream<'_>) -> Result<ChatResponse, LlmError> {
    use futures_util::StreamExt;
    let mut content = String::new();
    let mut usage = Usage::default();
    let mut model = String::new();
    let mut done = false;
    while let Some(item) = stream.next().await {
        let chunk = item?;
        content.push_str(&chunk.content);
        if let Some(u) = chunk.usage {
            usage = u;
        }
        if let Some(m) = chunk.model {
            model = m;
        }
        if chunk.done {
            done = true;
            break;
        }
    }
    if !done {
        return Err(LlmError::Stream {
            reason: "the stream ended without its final message".to_string(),
        });
    }
    Ok(ChatResponse {
        content,
        usage,
        model,
    })
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
    /// The client is misconfigured: a base URL that does not parse, an API key that cannot be
    /// sent as a header, an HTTP client that cannot be built. Not retried.
    #[error("invalid LLM client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The API key's environment variable is unset, empty or not Unicode (raised when the
    /// client is built). Not retried.
    #[error("no API key: the environment variable `{var}` is not set (or is empty)")]
    MissingApiKey {
        /// The variable that was read.
        var: String,
    },
    /// The server could not be reached, or the connection failed before a reply arrived
    /// (refused, reset, DNS, TLS). Retried.
    #[error("could not reach {url}: {reason}")]
    Connect {
        /// The URL called.
        url: String,
        /// The underlying error chain.
        reason: String,
    },
    /// No reply (or, when streaming, no next chunk) within the configured time. Retried.
    #[error("{url} did not answer within {after:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The limit that was exceeded.
        after: std::time::Duration,
    },
    /// The server answered with an error status. Retried for 429, 500, 502, 503 and 504
    /// (honouring `Retry-After`), not for other statuses.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the reply's body (the server's error message, usually).
        body: String,
        /// The wait the server asked for in `Retry-After` (429 and 503 only).
        retry_after: Option<std::time::Duration>,
    },
    /// Every attempt failed with a retryable error; `last` is the final one.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// How many requests were sent.
        attempts: u32,
        /// The last attempt's error.
        last: Box<LlmError>,
    },
    /// A success status, but a body that is not the server's wire format (not JSON, a missing
    /// field, an error object, no choices). Not retried.
    #[error("the server's reply is not in the expected format: {reason}; body: {body}")]
    MalformedBody {
        /// What is wrong.
        reason: String,
        /// The body (shortened).
        body: String,
    },
    /// The reply broke off while its body was being read: the connection dropped mid-body, the
    /// server reported an error mid-stream, or a stream ended without its final message.
    #[error("the reply broke off: {reason}")]
    Stream {
        /// What happened.
        reason: String,
    },
}

impl LlmError {
    /// Whether sending the same request again may succeed: connection failures, timeouts,
    /// broken bodies and HTTP 429/500/502/503/504.
    ///
    /// ```
    /// use orchflow_agent::LlmError;
    /// let e = LlmError::Status { url: "u".into(), status: 503, body: String::new(), retry_after: None };
    /// assert!(e.is_retryable());
    /// assert!(!LlmError::MissingApiKey { var: "OPENAI_API_KEY".into() }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect { .. } | LlmError::Timeout { .. } | LlmError::Stream { .. } => true,
            LlmError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The error itself, or for [`LlmError::RetriesExhausted`] the last attempt's error.
    ///
    /// ```
    /// use orchflow_agent::LlmError;
    /// let last = LlmError::Connect { url: "u".into(), reason: "refused".into() };
    /// let e = LlmError::RetriesExhausted { attempts: 3, last: Box::new(last) };
    /// assert!(matches!(e.last(), LlmError::Connect { .. }));
    /// ```
    pub fn last(&self) -> &LlmError {
        match self {
            LlmError::RetriesExhausted { last, .. } => last.last(),
            other => other,
        }
    }
}

pub mod http;
pub use http::HttpConfig;
pub use ollama::OllamaClient;
pub use openai::OpenAiClient;

pub mod ollama;
pub mod openai;
