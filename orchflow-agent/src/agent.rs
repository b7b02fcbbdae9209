//! [`Agent`]: a named role over a chat model, with free-text and typed (JSON) calls.
//!
//! * [`Agent::run`] sends a prompt and returns the reply's text and token usage.
//! * [`Agent::run_structured`] asks for a reply of a Rust type: the JSON schema derived from the
//!   type (`schemars`) goes to the server for schema-constrained decoding and into the system
//!   prompt; the reply is parsed leniently ([`parse_json_reply`]: fenced blocks, prose around
//!   the JSON); an unparsable reply is retried once with a corrective message, then reported as
//!   [`AgentError::NotJson`] (the last reply holds no JSON value) or [`AgentError::WrongShape`]
//!   (it holds JSON, but not of the type's shape).
//! * [`Agent::run_structured_or_else`] / [`Agent::run_structured_or_default`] degrade to a
//!   default value instead, and say so in [`Structured::degraded`].
//!
//! ```
//! use orchflow_agent::agent::{Agent, AgentConfig};
//! use orchflow_agent::testing::ScriptedLlm;
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use std::sync::Arc;
//!
//! #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
//! struct Verdict {
//!     sufficient: bool,
//!     reason: String,
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let llm = Arc::new(ScriptedLlm::new([
//!     "Sure! ```json\n{\"sufficient\": true, \"reason\": \"the sum is known\"}\n```",
//! ]));
//! let config = AgentConfig::new("qwen3:8b").with_think(false);
//! let verifier = Agent::new("verifier", "You judge whether the memory answers the task.", config, llm);
//! let verdict = verifier.run_structured::<Verdict>("Task: 2 + 2. Memory: 4.").await?;
//! assert!(verdict.value.sufficient);
//! assert_eq!(verdict.attempts, 1);
//! assert!(!verdict.degraded);
//! # Ok::<(), orchflow_agent::agent::AgentError>(())
//! # }).unwrap();
//! ```

use crate::llm::{ChatRequest, LlmClient, LlmError, Message, Usage};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::Instrument;

/// How an [`Agent`] calls its model.
///
/// Serialisable (missing fields take their defaults), so agents can be configured from files.
///
/// ```
/// use orchflow_agent::agent::AgentConfig;
/// let config = AgentConfig::new("llama3.1:8b")
///     .with_temperature(0.7)
///     .with_max_tokens(512)
///     .with_system_prompt("Be brief.")
///     .with_think(false);
/// assert_eq!(config.max_tokens, Some(512));
/// let json = serde_json::to_string(&config).unwrap();
/// assert_eq!(serde_json::from_str::<AgentConfig>(&json).unwrap(), config);
/// let partial: AgentConfig = serde_json::from_str(r#"{"model": "m"}"#).unwrap();
/// assert_eq!(partial.think, AgentConfig::default().think);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// The model's name as the server knows it (default `qwen3:8b`).
    pub model: String,
    /// Sampling temperature (default `Some(0.2)`); `None` leaves it to the server.
    pub temperature: Option<f32>,
    /// The most tokens to generate (default `None`: the server's default).
    pub max_tokens: Option<u32>,
    /// Instructions placed before the agent's role in the system message (default empty).
    pub system_prompt: String,
    /// Ask a reasoning model to think or not (default `Some(false)`: replies without
    /// reasoning, as the agent's JSON decisions want); `None` sends nothing.
    pub think: Option<bool>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            model: "qwen3:8b".to_string(),
            temperature: Some(0.2),
            max_tokens: None,
            system_prompt: String::new(),
            think: Some(false),
        }
    }
}

impl AgentConfig {
    /// The defaults with this model.
    pub fn new(model: impl Into<String>) -> Self {
        AgentConfig {
            model: model.into(),
            ..AgentConfig::default()
        }
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets the token limit.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the instructions that precede the role in the system message.
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = prompt.into();
        self
    }

    /// Turns thinking on or off.
    #[must_use]
    pub fn with_think(mut self, think: bool) -> Self {
        self.think = Some(think);
        self
    }
}

/// A named role over a chat model.
///
/// The system message is [`AgentConfig::system_prompt`] followed by the role (see
/// [`Agent::system_prompt`]); each call sends it and one user message.
#[derive(Clone)]
pub struct Agent {
    /// The agent's name (for traces and logs).
    pub name: String,
    /// What the agent is, in the model's words ("You are the planner…").
    pub role: String,
    /// Model and sampling options.
    pub config: AgentConfig,
    /// The model.
    pub client: Arc<dyn LlmClient>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The reply of [`Agent::run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReply {
    /// The reply's text.
    pub text: String,
    /// Tokens used.
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: String,
}

/// The result of a typed call ([`Agent::run_structured`] and its degrading variants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structured<T> {
    /// The parsed reply, or the default when `degraded`.
    pub value: T,
    /// The last reply's text, as the model wrote it.
    pub raw: String,
    /// Tokens used by all attempts.
    pub usage: Usage,
    /// Model calls made: 1, or 2 when the first reply did not parse.
    pub attempts: u32,
    /// `true` when no reply parsed and `value` is the caller's default.
    pub degraded: bool,
    /// Why the last reply did not parse, when `degraded`: not JSON, or JSON of the wrong shape.
    pub error: Option<ReplyError>,
}

/// Why a reply did not parse as the requested type ([`parse_json_reply`]).
///
/// Its `Display` is the reason alone (for logs and for the corrective message to the model).
///
/// ```
/// use orchflow_agent::agent::{ReplyError, parse_json_reply};
/// let e = parse_json_reply::<u32>("no number here").unwrap_err();
/// assert!(matches!(e, ReplyError::NotJson { .. }));
/// let e = parse_json_reply::<u32>("\"seven\"").unwrap_err();
/// assert!(matches!(e, ReplyError::WrongShape { .. }));
/// assert!(e.to_string().contains("invalid type"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply holds no JSON value: it is empty, prose without JSON, or JSON with a syntax
    /// error (an unclosed object, a missing value…).
    #[error("{reason}")]
    NotJson {
        /// Why: the syntax error, or that there is no JSON in the reply.
        reason: String,
    },
    /// The reply holds valid JSON, but not of the requested type's shape: a missing field, a
    /// value of the wrong type, an unknown action, an array where an object is wanted…
    #[error("{reason}")]
    WrongShape {
        /// The deserialisation error (e.g. ``missing field `action` ``).
        reason: String,
    },
}

impl ReplyError {
    /// Why the reply did not parse (the same text as `Display`).
    pub fn reason(&self) -> &str {
        match self {
            ReplyError::NotJson { reason } | ReplyError::WrongShape { reason } => reason,
        }
    }
}

/// Why an agent call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The model could not be called (network, server, script…).
    #[error("the model call failed: {0}")]
    Llm(#[from] LlmError),
    /// No reply parsed as the requested type, the corrective retry included, and the last one
    /// holds no JSON at all: prose, an empty reply, or JSON with a syntax error
    /// ([`ReplyError::NotJson`]).
    #[error(
        "the model's reply is not JSON (wanted {expected}) after {attempts} attempts: {error}; \
         last reply: {}",
        crate::llm::http::shorten(raw, 300)
    )]
    NotJson {
        /// The requested type's name.
        expected: String,
        /// The last reply, in full.
        raw: String,
        /// Why it is not JSON (the syntax error, or that the reply has none).
        error: String,
        /// Model calls made.
        attempts: u32,
        /// Tokens used by all attempts.
        usage: Usage,
    },
    /// No reply parsed as the requested type, the corrective retry included, and the last one
    /// is valid JSON of another shape: a missing field, a wrong type, an array for an object
    /// ([`ReplyError::WrongShape`]).
    #[error(
        "the model's reply is JSON but not a valid {expected} after {attempts} attempts: \
         {error}; last reply: {}",
        crate::llm::http::shorten(raw, 300)
    )]
    WrongShape {
        /// The requested type's name.
        expected: String,
        /// The last reply, in full.
        raw: String,
        /// The deserialisation error (e.g. ``missing field `action` ``).
        error: String,
        /// Model calls made.
        attempts: u32,
        /// Tokens used by all attempts.
        usage: Usage,
    },
}

/// How many characters of a bad reply are quoted back to the model in the corrective retry.
const REQUOTE_LIMIT: usize = 4000;

/// The outcome of the typed call's attempts, before deciding between error and default.
struct Attempts<T> {
    parsed: Result<T, ReplyError>,
    raw: String,
    usage: Usage,
    attempts: u32,
}

impl Agent {
    /// An agent named `name` playing `role` with `config` over `client`.
    ///
    /// `client` is any `Arc` of a client: `Arc<OllamaClient>`, `Arc<ScriptedLlm>`… coerce.
    pub fn new(
        name: impl Into<String>,
        role: impl Into<String>,
        config: AgentConfig,
        client: Arc<dyn LlmClient>,
    ) -> Self {
        Agent {
            name: name.into(),
            role: role.into(),
            config,
            client,
        }
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// The system message: the configured system prompt, a blank line, then the role (either
    /// is left out when empty).
    ///
    /// ```
    /// use orchflow_agent::agent::{Agent, AgentConfig};
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use std::sync::Arc;
    /// let config = AgentConfig::new("m").with_system_prompt("Be brief.");
    /// let agent = Agent::new("planner", "You plan the next step.", config, Arc::new(ScriptedLlm::new(["unused"])));
    /// assert_eq!(agent.system_prompt(), "Be brief.\n\nYou plan the next step.");
    /// ```
    pub fn system_prompt(&self) -> String {
        [self.config.system_prompt.trim(), self.role.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// The request [`run`](Agent::run) sends for `prompt`: the system message (when not
    /// empty), the prompt as the user's message, and the configured model options.
    pub fn request(&self, prompt: &str) -> ChatRequest {
        self.request_with_system(self.system_prompt(), prompt)
    }

    fn request_with_system(&self, system: String, prompt: &str) -> ChatRequest {
        let mut messages = Vec::with_capacity(2);
        if !system.is_empty() {
            messages.push(Message::system(system));
        }
        messages.push(Message::user(prompt));
        ChatRequest {
            model: self.config.model.clone(),
            messages,
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
            think: self.config.think,
            schema: None,
        }
    }

    /// Sends `prompt` and returns the reply's text and usage.
    ///
    /// Fails with [`AgentError::Llm`] when the model call fails (after the client's own
    /// retries).
    ///
    /// ```
    /// use orchflow_agent::agent::{Agent, AgentConfig};
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let llm = Arc::new(ScriptedLlm::new(["Hello!"]));
    /// let agent = Agent::new("helper", "You help.", AgentConfig::new("m"), llm);
    /// let reply = agent.run("Say hello").await?;
    /// assert_eq!(reply.text, "Hello!");
    /// assert_eq!(reply.usage.completion_tokens, 1); // ScriptedLlm counts words
    /// # Ok::<(), orchflow_agent::agent::AgentError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run(&self, prompt: &str) -> Result<AgentReply, AgentError> {
        let request = self.request(prompt);
        let span =
            tracing::debug_span!("agent_run", agent = %self.name, model = %self.config.model);
        let reply = self.client.chat(&request).instrument(span).await?;
        Ok(AgentReply {
            text: reply.content,
            usage: reply.usage,
            model: reply.model,
        })
    }

    /// Asks for a reply of type `T` and parses it.
    ///
    /// The schema of `T` (`schemars::schema_for!(T)`) is sent as the request's
    /// [`schema`](ChatRequest::schema) and quoted in the system message. The reply is parsed
    /// with [`parse_json_reply`]. If it does not parse, the request is sent once more with the
    /// bad reply and a short user message quoting the parse error. Usage sums both attempts.
    ///
    /// Fails, when the second reply does not parse either, with [`AgentError::NotJson`] (it
    /// holds no JSON) or [`AgentError::WrongShape`] (valid JSON, not of `T`'s shape), both
    /// carrying the last reply; and with [`AgentError::Llm`] when a model call fails.
    pub async fn run_structured<T>(&self, prompt: &str) -> Result<Structured<T>, AgentError>
    where
        T: DeserializeOwned + JsonSchema,
    {
        let outcome = self.attempt_structured::<T>(prompt).await?;
        match outcome.parsed {
            Ok(value) => Ok(Structured {
                value,
                raw: outcome.raw,
                usage: outcome.usage,
                attempts: outcome.attempts,
                degraded: false,
                error: None,
            }),
            Err(ReplyError::NotJson { reason }) => Err(AgentError::NotJson {
                expected: short_type_name::<T>(),
                raw: outcome.raw,
                error: reason,
                attempts: outcome.attempts,
                usage: outcome.usage,
            }),
            Err(ReplyError::WrongShape { reason }) => Err(AgentError::WrongShape {
                expected: short_type_name::<T>(),
                raw: outcome.raw,
                error: reason,
                attempts: outcome.attempts,
                usage: outcome.usage,
            }),
        }
    }

    /// Like [`run_structured`](Agent::run_structured), but when no reply parses (the retry
    /// included) returns `default()` with `degraded: true`, the last reply in `raw` and why it
    /// did not parse in `error` ([`ReplyError::NotJson`] or [`ReplyError::WrongShape`], the
    /// cases of [`AgentError::NotJson`] and [`AgentError::WrongShape`]), instead of failing.
    ///
    /// Still fails with [`AgentError::Llm`] when a model call fails: an unreachable server is
    /// not a bad reply.
    ///
    /// ```
    /// use orchflow_agent::agent::{Agent, AgentConfig};
    /// use orchflow_agent::testing::ScriptedLlm;
    /// use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let llm = Arc::new(ScriptedLlm::new(["not json", "still not json"]));
    /// let agent = Agent::new("counter", "You count.", AgentConfig::new("m"), llm);
    /// let n = agent.run_structured_or_else::<u32>("How many?", || 0).await?;
    /// assert!(n.degraded);
    /// assert_eq!((n.value, n.attempts, n.raw.as_str()), (0, 2, "still not json"));
    /// assert!(matches!(n.error, Some(orchflow_agent::agent::ReplyError::NotJson { .. })));
    /// # Ok::<(), orchflow_agent::agent::AgentError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_structured_or_else<T>(
        &self,
        prompt: &str,
        default: impl FnOnce() -> T,
    ) -> Result<Structured<T>, AgentError>
    where
        T: DeserializeOwned + JsonSchema,
    {
        let outcome = self.attempt_structured::<T>(prompt).await?;
        let (value, degraded, error) = match outcome.parsed {
            Ok(value) => (value, false, None),
            Err(error) => {
                let kind = match error {
                    ReplyError::NotJson { .. } => "not JSON",
                    ReplyError::WrongShape { .. } => "JSON of the wrong shape",
                };
                tracing::warn!(agent = %self.name, %error, kind, "unparsable reply; using the default");
                (default(), true, Some(error))
            }
        };
        Ok(Structured {
            value,
            raw: outcome.raw,
            usage: outcome.usage,
            attempts: outcome.attempts,
            degraded,
            error,
        })
    }

    /// [`run_structured_or_else`](Agent::run_structured_or_else) with `T::default()`: a reply
    /// that is not JSON and one of the wrong shape both degrade (see [`Structured::error`]).
    ///
    /// Fails only with [`AgentError::Llm`].
    pub async fn run_structured_or_default<T>(
        &self,
        prompt: &str,
    ) -> Result<Structured<T>, AgentError>
    where
        T: DeserializeOwned + JsonSchema + Default,
    {
        self.run_structured_or_else(prompt, T::default).await
    }

    /// The request [`run_structured`](Agent::run_structured) sends first for `prompt`: as
    /// [`request`](Agent::request), with `T`'s schema as `schema` and an instruction quoting it
    /// in the system message.
    pub fn structured_request<T: JsonSchema>(&self, prompt: &str) -> ChatRequest {
        let schema = serde_json::Value::from(schemars::schema_for!(T));
        let instruction =
            format!("Reply with only a JSON object that follows this JSON schema:\n{schema}");
        let system = self.system_prompt();
        let system = if system.is_empty() {
            instruction
        } else {
            format!("{system}\n\n{instruction}")
        };
        let mut request = self.request_with_system(system, prompt);
        request.schema = Some(schema);
        request
    }

    async fn attempt_structured<T>(&self, prompt: &str) -> Result<Attempts<T>, AgentError>
    where
        T: DeserializeOwned + JsonSchema,
    {
        let span = tracing::debug_span!(
            "agent_run_structured",
            agent = %self.name,
            model = %self.config.model,
            expected = %short_type_name::<T>(),
        );
        async {
            let mut request = self.structured_request::<T>(prompt);
            let first = self.client.chat(&request).await?;
            let mut usage = first.usage;
            let error = match parse_json_reply::<T>(&first.content) {
                Ok(value) => {
                    return Ok(Attempts {
                        parsed: Ok(value),
                        raw: first.content,
                        usage,
                        attempts: 1,
                    });
                }
                Err(error) => error,
            };
            tracing::debug!(%error, "unparsable reply; asking once more");
            request
                .messages
                .push(Message::assistant(crate::llm::http::shorten(
                    &first.content,
                    REQUOTE_LIMIT,
                )));
            request.messages.push(Message::user(format!(
                "Your reply could not be parsed: {error}. Reply again with only the JSON \
                 object that follows the schema, and nothing else."
            )));
            let second = self.client.chat(&request).await?;
            usage += second.usage;
            let parsed = parse_json_reply::<T>(&second.content);
            Ok(Attempts {
                parsed,
                raw: second.content,
                usage,
                attempts: 2,
            })
        }
        .instrument(span)
        .await
    }
}

/// `T`'s name without module paths (`Vec<Decision>` rather than `alloc::vec::Vec<my::Decision>`).
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// The most candidate JSON values [`parse_json_reply`] tries inside prose.
const MAX_CANDIDATES: usize = 64;

/// Parses a model's reply as `T`, leniently.
///
/// In order, the first that deserialises as `T` wins:
/// 1. the whole reply (after removing a leading `<think>…</think>` block and outer whitespace);
/// 2. the content of each fenced code block (```` ```json … ``` ```` or plain ```` ``` ````);
/// 3. each balanced JSON object or array found in the text, in order of its first character
///    (strings and escapes inside it are respected, so `"}"` in a value does not end it).
///
/// Fails with [`ReplyError::WrongShape`] carrying the deserialisation error of the first
/// candidate that was valid JSON of another shape (e.g. ``missing field `action` ``), else with
/// [`ReplyError::NotJson`] carrying the first candidate's syntax error, or "the reply contains
/// no JSON object", or "the reply is empty". The reason is worded for the model and for logs.
///
/// ```
/// use orchflow_agent::agent::parse_json_reply;
/// use serde::Deserialize;
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct A { x: u32, s: String }
///
/// let a: A = parse_json_reply("Here you go: {\"x\": 1, \"s\": \"a } b\"}. Anything else?").unwrap();
/// assert_eq!(a, A { x: 1, s: "a } b".into() });
/// let a: A = parse_json_reply("```json\n{\"x\": 2, \"s\": \"\"}\n```").unwrap();
/// assert_eq!(a.x, 2);
/// let err = parse_json_reply::<A>("{\"x\": 1}").unwrap_err();
/// assert!(err.to_string().contains("missing field `s`"), "{err}");
/// ```
pub fn parse_json_reply<T: DeserializeOwned>(reply: &str) -> Result<T, ReplyError> {
    let text = crate::llm::http::strip_think(reply).trim();
    if text.is_empty() {
        return Err(ReplyError::NotJson {
            reason: "the reply is empty".to_string(),
        });
    }
    let mut shape_error: Option<String> = None;
    let mut syntax_error: Option<String> = None;
    let mut found_candidate = false;
    let mut attempt = |candidate: &str, is_candidate: bool| -> Option<T> {
        match serde_json::from_str::<T>(candidate) {
            Ok(value) => Some(value),
            Err(e) => {
                if e.is_data() {
                    found_candidate = true;
                    shape_error.get_or_insert_with(|| e.to_string());
                } else if is_candidate && !found_candidate {
                    found_candidate = true;
                    syntax_error.get_or_insert_with(|| e.to_string());
                }
                None
            }
        }
    };
    if let Some(value) = attempt(text, false) {
        return Ok(value);
    }
    for block in fenced_blocks(text) {
        if let Some(value) = attempt(block, true) {
            return Ok(value);
        }
    }
    for candidate in balanced_candidates(text).take(MAX_CANDIDATES) {
        if let Some(value) = attempt(candidate, true) {
            return Ok(value);
        }
    }
    Err(match shape_error {
        Some(reason) => ReplyError::WrongShape { reason },
        None => ReplyError::NotJson {
            reason: syntax_error.unwrap_or_else(|| "the reply contains no JSON object".to_string()),
        },
    })
}

/// The contents of the ```` ``` ```` fenced blocks of `text` (the info string after the
/// opening fence is skipped; an unclosed fence runs to the end).
fn fenced_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("```")?;
        let after = &rest[start + 3..];
        // Skip the info string (`json`) up to the end of the line, if the line has no fence.
        let body = match after.find('\n') {
            Some(nl) if !after[..nl].contains("```") => &after[nl + 1..],
            _ => after,
        };
        match body.find("```") {
            Some(end) => {
                rest = &body[end + 3..];
                Some(&body[..end])
            }
            None => {
                rest = "";
                Some(body)
            }
        }
    })
}

/// The most fresh bracket scans [`balanced_candidates`] makes (each is linear in the text).
const MAX_SCANS: usize = 256;

/// Each balanced `{…}` or `[…]` in `text`, by position of its opening bracket.
///
/// One scan from an opening bracket also settles every bracket nested in it (its end, or that
/// it has none), so the total work stays linear for ordinary text and is capped by
/// [`MAX_SCANS`] for adversarial text.
fn balanced_candidates(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut ends: std::collections::HashMap<usize, Option<usize>> = Default::default();
    let mut scans = 0;
    let mut next = 0;
    std::iter::from_fn(move || {
        while next < bytes.len() {
            let start = next;
            next += 1;
            if bytes[start] != b'{' && bytes[start] != b'[' {
                continue;
            }
            if !ends.contains_key(&start) {
                if scans >= MAX_SCANS {
                    return None;
                }
                scans += 1;
                scan_brackets(bytes, start, &mut ends);
            }
            if let Some(Some(end)) = ends.get(&start) {
                return Some(&text[start..=*end]);
            }
        }
        None
    })
}

/// Scans from the bracket at `start`, honouring JSON strings, and records in `ends` the
/// closing index of every bracket opened on the way (`None` for those that never close
/// properly: a mismatched closer or the end of the text).
fn scan_brackets(
    bytes: &[u8],
    start: usize,
    ends: &mut std::collections::HashMap<usize, Option<usize>>,
) {
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => stack.push((b'}', i)),
            b'[' => stack.push((b']', i)),
            b'}' | b']' => match stack.pop() {
                Some((closer, open)) if closer == b => {
                    ends.insert(open, Some(i));
                    if stack.is_empty() {
                        return;
                    }
                }
                Some((_, open)) => {
                    ends.insert(open, None);
                    break;
                }
                None => break,
            },
            _ => {}
        }
    }
    for (_, open) in stack {
        ends.insert(open, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct D {
        action: String,
        n: u32,
    }

    fn d(action: &str, n: u32) -> D {
        D {
            action: action.into(),
            n,
        }
    }

    #[test]
    fn parses_plain_fenced_and_embedded_json() {
        assert_eq!(
            parse_json_reply::<D>(r#"{"action":"a","n":1}"#),
            Ok(d("a", 1))
        );
        assert_eq!(
            parse_json_reply::<D>("  \n```json\n{\"action\":\"a\",\"n\":2}\n```\n"),
            Ok(d("a", 2))
        );
        assert_eq!(
            parse_json_reply::<D>("```\n{\"action\":\"a\",\"n\":3}```"),
            Ok(d("a", 3))
        );
        assert_eq!(
            parse_json_reply::<D>("Sure. {\"action\":\"}{\\\"\",\"n\":4} hope it helps {x}"),
            Ok(d("}{\"", 4))
        );
        assert_eq!(
            parse_json_reply::<D>(
                "<think>maybe {\"action\":\"no\",\"n\":0}</think>{\"action\":\"yes\",\"n\":5}"
            ),
            Ok(d("yes", 5))
        );
        // An earlier brace group that is not JSON, and a nested object that is the answer.
        assert_eq!(
            parse_json_reply::<D>(
                "use {braces} like this: {\"decision\": {\"action\":\"a\",\"n\":6}}"
            ),
            Ok(d("a", 6))
        );
        // Unicode around and inside.
        assert_eq!(
            parse_json_reply::<D>("Réponse : {\"action\":\"é→ü\",\"n\":7} ✓"),
            Ok(d("é→ü", 7))
        );
        // Two fenced blocks: the first that parses wins.
        assert_eq!(
            parse_json_reply::<D>(
                "```python\nprint(1)\n```\nthen\n```json\n{\"action\":\"b\",\"n\":8}\n```"
            ),
            Ok(d("b", 8))
        );
    }

    #[test]
    fn reports_useful_errors() {
        let wrong = |reason: &str| ReplyError::WrongShape {
            reason: reason.to_string(),
        };
        let not_json = |reason: &str| ReplyError::NotJson {
            reason: reason.to_string(),
        };
        let e = parse_json_reply::<D>(r#"{"action":"a"}"#).unwrap_err();
        assert!(matches!(e, ReplyError::WrongShape { .. }), "{e:?}");
        assert!(e.reason().contains("missing field `n`"), "{e}");
        let e = parse_json_reply::<D>("Here: {\"action\": \"a\", \"n\": -1}").unwrap_err();
        assert!(matches!(e, ReplyError::WrongShape { .. }), "{e:?}");
        assert!(e.to_string().contains("invalid value"), "{e}");
        let e = parse_json_reply::<D>("no json here").unwrap_err();
        assert_eq!(e, not_json("the reply contains no JSON object"));
        let e = parse_json_reply::<D>("  ").unwrap_err();
        assert_eq!(e, not_json("the reply is empty"));
        let e = parse_json_reply::<D>("<think>only thinking</think>").unwrap_err();
        assert_eq!(e, not_json("the reply is empty"));
        let e = parse_json_reply::<D>("{\"action\": \"a\", \"n\": 1").unwrap_err();
        assert!(matches!(e, ReplyError::NotJson { .. }), "{e:?}");
        assert!(!e.reason().is_empty());
        // Valid JSON of another shape wins over a syntax error elsewhere in the reply.
        let e = parse_json_reply::<D>("{oops} then [1, 2]").unwrap_err();
        assert!(matches!(e, ReplyError::WrongShape { .. }), "{e:?}");
        assert_eq!(
            parse_json_reply::<D>("[]").unwrap_err(),
            wrong("invalid length 0, expected struct D with 2 elements at line 1 column 2")
        );
        // Unbalanced or mismatched brackets do not panic.
        for s in [
            "{",
            "}",
            "[}",
            "{]",
            "{\"a\":\"\\",
            "```",
            "```json",
            "{{{{{{{{",
        ] {
            assert!(parse_json_reply::<D>(s).is_err(), "{s}");
        }
    }

    #[test]
    fn pathological_input_is_bounded() {
        let s = "{".repeat(200_000);
        let started = std::time::Instant::now();
        assert!(parse_json_reply::<D>(&s).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn short_type_names() {
        assert_eq!(short_type_name::<D>(), "D");
        assert_eq!(short_type_name::<Vec<D>>(), "Vec<D>");
        assert_eq!(
            short_type_name::<Option<(u32, String)>>(),
            "Option<(u32, String)>"
        );
    }
}
