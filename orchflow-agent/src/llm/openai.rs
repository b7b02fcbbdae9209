//! A client for OpenAI-compatible chat servers, `POST {base}/v1/chat/completions`.
//!
//! Works with OpenAI itself and with the many servers that speak its protocol (vLLM,
//! llama.cpp's server, LM Studio, Ollama's `/v1`, OpenRouter…).
//!
//! * The API key is read from an environment variable when the client is built (default
//!   [`DEFAULT_API_KEY_VAR`]) and sent as `Authorization: Bearer …`; a missing key is
//!   [`LlmError::MissingApiKey`] from [`OpenAiClientBuilder::build`]. Local servers that need
//!   no key: [`OpenAiClientBuilder::no_api_key`].
//! * A request's JSON schema becomes `response_format: {type: "json_schema", json_schema:
//!   {name, schema, strict: true}}`, where `name` is the schema's `title` (for a schema from
//!   `schemars`, the Rust type's name or its `#[schemars(title = …)]`) made to fit OpenAI's
//!   `^[a-zA-Z0-9_-]{1,64}$` (see [`schema_name`]), or `reply` when it has none. OpenAI's strict mode wants every object to list
//!   all its properties as `required` and to set `additionalProperties: false`; the client
//!   adds both where the schema lacks them (optional fields stay nullable). Turn this off with
//!   [`OpenAiClientBuilder::strict_schema`]`(false)`, which also sends `strict: false`.
//! * `think` has no standard field and is not sent; with `think: Some(false)` a leading
//!   `<think>…</think>` block in the reply (some reasoning models served this way write one)
//!   is removed.
//! * Streaming reads server-sent events (`data: {…}` lines, ending with `data: [DONE]`) and
//!   asks for the usage in the last event (`stream_options.include_usage`).

use super::http::{self, HttpClient, LineDecoder};
use super::{ChatChunk, ChatRequest, ChatResponse, ChatStream, HttpConfig, LlmClient, LlmError};
use super::{LlmFuture, Message, Usage};
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// OpenAI's address.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com";

/// The environment variable the API key is read from by default.
pub const DEFAULT_API_KEY_VAR: &str = "OPENAI_API_KEY";

/// A client for OpenAI-compatible `/v1/chat/completions`.
///
/// Cheap to clone. Its `Debug` output never shows the API key.
///
/// ```no_run
/// use orchflow_agent::llm::OpenAiClient;
/// use orchflow_agent::{ChatRequest, LlmClient, Message};
/// # async fn demo() -> Result<(), orchflow_agent::LlmError> {
/// let openai = OpenAiClient::new()?; // reads OPENAI_API_KEY
/// let reply = openai
///     .chat(&ChatRequest::new("gpt-4o-mini", vec![Message::user("Say hi")]))
///     .await?;
/// println!("{}", reply.content);
///
/// // A local vLLM server, no key:
/// let local = OpenAiClient::builder().base_url("http://localhost:8000/v1").no_api_key().build()?;
/// # let _ = local; Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiClient {
    http: HttpClient,
    base_url: String,
    chat_url: String,
    auth: Option<HeaderValue>,
    strict: bool,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("base_url", &self.base_url)
            .field("api_key", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("strict", &self.strict)
            .field("http", self.http.config())
            .finish()
    }
}

/// Where the API key comes from.
#[derive(Clone)]
enum KeySource {
    Env(String),
    Value(String),
    None,
}

/// Builds an [`OpenAiClient`]: base URL, API key, schema strictness, timeouts, retries.
///
/// ```
/// use orchflow_agent::llm::OpenAiClient;
/// use orchflow_agent::LlmError;
/// let missing = OpenAiClient::builder().api_key_env("SURELY_UNSET_ORCHFLOW_KEY").build();
/// assert!(matches!(missing, Err(LlmError::MissingApiKey { var }) if var == "SURELY_UNSET_ORCHFLOW_KEY"));
///
/// let client = OpenAiClient::builder()
///     .base_url("https://openrouter.ai/api")
///     .api_key("sk-test")
///     .max_retries(1)
///     .build()?;
/// assert_eq!(client.chat_url(), "https://openrouter.ai/api/v1/chat/completions");
/// # Ok::<(), LlmError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct OpenAiClientBuilder {
    base_url: String,
    key: KeySource,
    strict: bool,
    http: HttpConfig,
}

impl std::fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match &self.key {
            KeySource::Env(var) => format!("env {var}"),
            KeySource::Value(_) => "<redacted>".to_string(),
            KeySource::None => "none".to_string(),
        };
        f.debug_struct("OpenAiClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &key)
            .field("strict", &self.strict)
            .field("http", &self.http)
            .finish()
    }
}

impl OpenAiClientBuilder {
    /// The server's address (default [`DEFAULT_BASE_URL`]). The client POSTs to
    /// `{base}/v1/chat/completions`; a base that already ends in `/v1` is accepted too.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Read the API key from this environment variable (default [`DEFAULT_API_KEY_VAR`]).
    pub fn api_key_env(mut self, var: impl Into<String>) -> Self {
        self.key = KeySource::Env(var.into());
        self
    }

    /// Use this API key (instead of an environment variable).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.key = KeySource::Value(key.into());
        self
    }

    /// Send no `Authorization` header (local servers).
    pub fn no_api_key(mut self) -> Self {
        self.key = KeySource::None;
        self
    }

    /// Whether schemas are sent with `strict: true`, adapted to OpenAI's strict rules
    /// (default), or as they are with `strict: false`.
    pub fn strict_schema(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    http::http_builder_methods!();

    /// Builds the client.
    ///
    /// Fails with [`LlmError::MissingApiKey`] when the key's environment variable is unset,
    /// empty or not Unicode, and with [`LlmError::Config`] when the base URL does not parse,
    /// the key cannot be sent in a header, or the HTTP client cannot be created.
    pub fn build(self) -> Result<OpenAiClient, LlmError> {
        let base_url = super::ollama::normalise_base(&self.base_url)?;
        let key = match self.key {
            KeySource::None => None,
            KeySource::Value(key) => Some(key),
            KeySource::Env(var) => match std::env::var(&var) {
                Ok(key) if !key.trim().is_empty() => Some(key),
                _ => return Err(LlmError::MissingApiKey { var }),
            },
        };
        let auth =
            match key {
                None => None,
                Some(key) => {
                    let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                        .map_err(|_| LlmError::Config {
                            reason: "the API key contains characters that cannot be sent in an \
                                 HTTP header"
                                .to_string(),
                        })?;
                    value.set_sensitive(true);
                    Some(value)
                }
            };
        let chat_url = if base_url.ends_with("/v1") {
            format!("{base_url}/chat/completions")
        } else {
            format!("{base_url}/v1/chat/completions")
        };
        Ok(OpenAiClient {
            http: HttpClient::new(self.http)?,
            base_url,
            chat_url,
            auth,
            strict: self.strict,
        })
    }
}

impl OpenAiClient {
    /// A client for [`DEFAULT_BASE_URL`] with the key from [`DEFAULT_API_KEY_VAR`] and the
    /// default [`HttpConfig`].
    ///
    /// Fails with [`LlmError::MissingApiKey`] when `OPENAI_API_KEY` is not set.
    pub fn new() -> Result<Self, LlmError> {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> OpenAiClientBuilder {
        OpenAiClientBuilder {
            base_url: DEFAULT_BASE_URL.to_string(),
            key: KeySource::Env(DEFAULT_API_KEY_VAR.to_string()),
            strict: true,
            http: HttpConfig::default(),
        }
    }

    /// The server's address, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The URL requests are POSTed to.
    pub fn chat_url(&self) -> &str {
        &self.chat_url
    }

    /// The timeouts and retry policy.
    pub fn http_config(&self) -> &HttpConfig {
        self.http.config()
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, LlmError> {
        let response_format = request.schema.as_ref().map(|schema| {
            let mut schema = schema.clone();
            if self.strict {
                strictify(&mut schema);
            }
            let name = schema_name(&schema);
            serde_json::json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": self.strict},
            })
        });
        let body = WireRequest {
            model: &request.model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            response_format,
        };
        serde_json::to_vec(&body).map_err(|e| LlmError::Config {
            reason: format!("cannot encode the request: {e}"),
        })
    }

    async fn chat_once(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let body = self.body(request, false)?;
        let text = self
            .http
            .post_json(&self.chat_url, self.auth.as_ref(), &body)
            .await?;
        parse_reply(&text, request)
    }
}

/// The name sent as `response_format.json_schema.name` when a schema has no usable title.
pub const DEFAULT_SCHEMA_NAME: &str = "reply";

/// The most characters OpenAI accepts in `json_schema.name`.
const SCHEMA_NAME_MAX: usize = 64;

/// The `json_schema.name` for `schema`: its root `title` with every character other than ASCII
/// letters, digits, `_` and `-` replaced by `_`, cut to 64 characters, so that it matches
/// OpenAI's `^[a-zA-Z0-9_-]{1,64}$`; [`DEFAULT_SCHEMA_NAME`] when the schema has no title, the
/// title is not a string or is empty.
///
/// ```
/// use orchflow_agent::llm::openai::schema_name;
/// use serde_json::json;
/// assert_eq!(schema_name(&json!({"title": "Decision", "type": "object"})), "Decision");
/// assert_eq!(schema_name(&json!({"title": "Array_of_Decision"})), "Array_of_Decision");
/// assert_eq!(schema_name(&json!({"title": "final answer (v2)"})), "final_answer__v2_");
/// assert_eq!(schema_name(&json!({"type": "object"})), "reply");
/// assert_eq!(schema_name(&json!({"title": "x".repeat(100)})).len(), 64);
/// ```
pub fn schema_name(schema: &Value) -> String {
    let name: String = schema
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(SCHEMA_NAME_MAX)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        DEFAULT_SCHEMA_NAME.to_string()
    } else {
        name
    }
}

/// Adapts a JSON schema to OpenAI's strict mode: every object schema with `properties` gets
/// `additionalProperties: false` (unless it sets it) and lists all its properties as
/// `required`. Recurses through the usual subschema keywords.
pub(crate) fn strictify(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Object(props)) = map.get("properties") {
        let names: Vec<Value> = props.keys().cloned().map(Value::String).collect();
        map.insert("required".to_string(), Value::Array(names));
        map.entry("additionalProperties")
            .or_insert(Value::Bool(false));
    }
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                if let Value::Object(children) = value {
                    children.values_mut().for_each(strictify);
                }
            }
            "items" | "additionalProperties" | "not" | "if" | "then" | "else" | "contains" => {
                strictify(value)
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = value {
                    children.iter_mut().for_each(strictify);
                }
            }
            _ => {}
        }
    }
}

/// Decodes a non-streaming completion.
fn parse_reply(text: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
    let malformed = |reason: String| LlmError::MalformedBody {
        reason,
        body: http::quote(text),
    };
    let reply: WireReply = serde_json::from_str(text)
        .map_err(|e| malformed(format!("not an OpenAI chat completion: {e}")))?;
    if let Some(error) = reply.error {
        return Err(malformed(format!(
            "the server reported an error: {}",
            error_message(&error)
        )));
    }
    let Some(choice) = reply.choices.into_iter().next() else {
        return Err(malformed("the completion has no choices".to_string()));
    };
    let Some(message) = choice.message else {
        return Err(malformed("the first choice has no `message`".to_string()));
    };
    let content = match (message.content, message.refusal) {
        (Some(content), _) => content,
        (None, Some(refusal)) => return Err(malformed(format!("the model refused: {refusal}"))),
        (None, None) => String::new(),
    };
    let content = if request.think == Some(false) {
        http::strip_think(&content).to_string()
    } else {
        content
    };
    let usage = reply.usage.unwrap_or_default();
    Ok(ChatResponse {
        content,
        usage: Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        },
        model: reply.model.unwrap_or_else(|| request.model.clone()),
    })
}

/// The message of an OpenAI error object (`{"message": …}`) or the value itself.
fn error_message(error: &Value) -> String {
    match error.get("message").and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None => http::quote(&error.to_string()),
    }
}

impl LlmClient for OpenAiClient {
    /// POSTs to `/v1/chat/completions` with `stream: false`.
    ///
    /// Fails with [`LlmError::Connect`], [`LlmError::Timeout`] or [`LlmError::Status`] (after
    /// the configured retries: then [`LlmError::RetriesExhausted`]), or
    /// [`LlmError::MalformedBody`] when the body is not a completion, has no choices, holds an
    /// error object or a refusal.
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        Box::pin(self.chat_once(request))
    }

    /// POSTs with `stream: true` and yields the text of the server-sent events' deltas.
    ///
    /// Errors are yielded as items: those of [`chat`](LlmClient::chat) before the first chunk,
    /// then [`LlmError::Stream`] when the connection drops, an event holds an error, or the
    /// body ends before `data: [DONE]` (or a `finish_reason`), [`LlmError::Timeout`] when no
    /// data arrives within the timeout, and [`LlmError::MalformedBody`] for an event that is
    /// not JSON.
    fn chat_stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        let body = match self.body(request, true) {
            Ok(body) => body,
            Err(e) => return Box::pin(futures_util::stream::once(async move { Err(e) })),
        };
        let decoder = SseDecoder {
            model: request.model.clone(),
            data: None,
            usage: None,
            finished: false,
        };
        self.http.stream(
            self.chat_url.clone(),
            self.auth.clone(),
            body,
            decoder,
            request.think == Some(false),
        )
    }
}

/// Server-sent events: `data:` lines accumulate until a blank line dispatches the event.
struct SseDecoder {
    model: String,
    /// The data of the event being read.
    data: Option<String>,
    usage: Option<Usage>,
    /// A choice reported a `finish_reason`.
    finished: bool,
}

impl SseDecoder {
    fn dispatch(&mut self) -> Result<Option<ChatChunk>, LlmError> {
        let Some(data) = self.data.take() else {
            return Ok(None);
        };
        if data.trim() == "[DONE]" {
            return Ok(Some(self.final_chunk()));
        }
        let event: WireChunk =
            serde_json::from_str(&data).map_err(|e| LlmError::MalformedBody {
                reason: format!("an event of the stream is not a completion chunk: {e}"),
                body: http::quote(&data),
            })?;
        if let Some(error) = event.error {
            return Err(LlmError::Stream {
                reason: format!(
                    "the server reported an error mid-stream: {}",
                    error_message(&error)
                ),
            });
        }
        if let Some(model) = event.model {
            self.model = model;
        }
        if let Some(usage) = event.usage {
            self.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            });
        }
        let mut content = String::new();
        if let Some(choice) = event.choices.into_iter().next() {
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                content = text;
            }
        }
        Ok(Some(ChatChunk {
            content,
            done: false,
            usage: None,
            model: Some(self.model.clone()),
        }))
    }

    fn final_chunk(&mut self) -> ChatChunk {
        ChatChunk {
            content: String::new(),
            done: true,
            usage: Some(self.usage.unwrap_or_default()),
            model: Some(self.model.clone()),
        }
    }
}

impl LineDecoder for SseDecoder {
    fn line(&mut self, line: &str) -> Result<Option<ChatChunk>, LlmError> {
        if line.is_empty() {
            return self.dispatch();
        }
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing for us.
        Ok(None)
    }

    fn end(&mut self) -> Result<ChatChunk, LlmError> {
        // An event not followed by a blank line still counts.
        if let Some(chunk) = self.dispatch()?
            && chunk.done
        {
            return Ok(chunk);
        }
        if self.finished {
            Ok(self.final_chunk())
        } else {
            Err(LlmError::Stream {
                reason: "the stream ended before `data: [DONE]`".to_string(),
            })
        }
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct WireReply {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireDeltaChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireDeltaChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strictify_requires_all_properties_and_closes_objects() {
        let mut s = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": ["integer", "null"]},
                "c": {"type": "array", "items": {"type": "object", "properties": {"x": {}}}},
                "d": {"$ref": "#/$defs/D"}
            },
            "required": ["a"],
            "$defs": {"D": {"type": "object", "properties": {"y": {}}, "additionalProperties": true},
                      "E": {"oneOf": [{"type": "object", "properties": {"z": {}}}]}}
        });
        strictify(&mut s);
        assert_eq!(s["required"], json!(["a", "b", "c", "d"]));
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["c"]["items"]["required"], json!(["x"]));
        assert_eq!(s["properties"]["c"]["items"]["additionalProperties"], false);
        assert_eq!(s["$defs"]["D"]["required"], json!(["y"]));
        assert_eq!(
            s["$defs"]["D"]["additionalProperties"], true,
            "an explicit value stays"
        );
        assert_eq!(s["$defs"]["E"]["oneOf"][0]["additionalProperties"], false);
        let mut plain = json!({"type": "string"});
        strictify(&mut plain);
        assert_eq!(plain, json!({"type": "string"}));
    }

    #[test]
    fn schema_names_fit_openais_pattern() {
        for (schema, name) in [
            (json!({"title": "Answer"}), "Answer".to_string()),
            (json!({"title": "a-b_C9"}), "a-b_C9".to_string()),
            (json!({"title": "Wrapper<T>"}), "Wrapper_T_".to_string()),
            (json!({"title": "é→ü"}), "___".to_string()),
            (json!({"title": " "}), "_".to_string()),
            (json!({"title": ""}), "reply".to_string()),
            (json!({"title": null}), "reply".to_string()),
            (json!({"title": ["x"]}), "reply".to_string()),
            (json!(true), "reply".to_string()),
            (json!({"title": "é".repeat(80)}), "_".repeat(64)),
            (json!({"title": "ab".repeat(40)}), "ab".repeat(32)),
        ] {
            assert_eq!(schema_name(&schema), name, "{schema}");
        }
    }

    #[test]
    fn sse_events_accumulate_and_dispatch() {
        let mut d = SseDecoder {
            model: "m".into(),
            data: None,
            usage: None,
            finished: false,
        };
        assert!(d.line(": keep-alive").unwrap().is_none());
        assert!(
            d.line(r#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#)
                .unwrap()
                .is_none()
        );
        assert_eq!(d.line("").unwrap().unwrap().content, "Hi");
        assert!(
            d.line("").unwrap().is_none(),
            "a blank line without data dispatches nothing"
        );
        d.line("data:[DONE]").unwrap();
        assert!(d.end().unwrap().done);
    }

    #[test]
    fn completion_errors_are_malformed() {
        let r = ChatRequest::new("m", vec![]);
        for body in [
            r#"{"choices":[]}"#,
            r#"{"error":{"message":"bad key"}}"#,
            r#"{"choices":[{"message":{"refusal":"no"}}]}"#,
            "[1,2]",
        ] {
            assert!(
                matches!(parse_reply(body, &r), Err(LlmError::MalformedBody { .. })),
                "{body}"
            );
        }
    }
}
