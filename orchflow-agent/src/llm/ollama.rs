//! A client for Ollama's native chat API, `POST {base}/api/chat`.
//!
//! * A base URL ending in `/v1` (Ollama's OpenAI-compatible path) is accepted: the `/v1` is
//!   dropped, so the client still reaches `{host}/api/chat`.
//! * `think` is sent when the request sets it. With `think: false` the reply's text never holds
//!   reasoning: Ollama's separate `message.thinking` is ignored, and a leading
//!   `<think>…</think>` block that a model writes anyway is removed.
//! * A request's JSON schema is sent as `format` (schema-constrained decoding).
//! * `temperature` and `max_tokens` go to `options.temperature` and `options.num_predict`.
//! * Usage comes from `prompt_eval_count` and `eval_count`.
//! * Streaming reads Ollama's NDJSON stream (one JSON object a line, the last with `done: true`).

use super::http::{self, HttpClient, LineDecoder};
use super::{ChatChunk, ChatRequest, ChatResponse, ChatStream, HttpConfig, LlmClient, LlmError};
use super::{LlmFuture, Message, Usage};
use serde::{Deserialize, Serialize};

/// Ollama's default address.
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// A client for Ollama's native `/api/chat`.
///
/// Cheap to clone (the connection pool is shared). Timeouts and retries follow its
/// [`HttpConfig`] (see [`OllamaClient::builder`]).
///
/// ```no_run
/// use orchflow_agent::llm::OllamaClient;
/// use orchflow_agent::{ChatRequest, LlmClient, Message};
/// # async fn demo() -> Result<(), orchflow_agent::LlmError> {
/// let ollama = OllamaClient::new()?; // http://localhost:11434
/// let request = ChatRequest::new("qwen3:8b", vec![Message::user("2 + 2 = ? Digits only.")])
///     .with_think(false)
///     .with_temperature(0.0);
/// let reply = ollama.chat(&request).await?;
/// println!("{} ({} tokens)", reply.content, reply.usage.total());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: HttpClient,
    base_url: String,
    chat_url: String,
}

/// Builds an [`OllamaClient`]: base URL, timeouts, retries.
///
/// ```
/// use orchflow_agent::llm::OllamaClient;
/// use std::time::Duration;
/// let client = OllamaClient::builder()
///     .base_url("http://gpu-box:11434/")
///     .timeout(Duration::from_secs(120))
///     .max_retries(2)
///     .build()?;
/// assert_eq!(client.base_url(), "http://gpu-box:11434");
/// # Ok::<(), orchflow_agent::LlmError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OllamaClientBuilder {
    base_url: String,
    http: HttpConfig,
}

impl OllamaClientBuilder {
    /// The server's address (default [`DEFAULT_BASE_URL`]).
    ///
    /// Trailing `/`s are ignored, and so is a trailing `/v1` (the path of Ollama's
    /// OpenAI-compatible API, often copied from an OpenAI-style setup): `http://host:11434`,
    /// `http://host:11434/`, `http://host:11434/v1` and `http://host:11434/v1/` all make the
    /// client POST to `http://host:11434/api/chat`. Only one `/v1` is removed, and only as a
    /// whole path segment (`/api/v1` becomes `/api`, `/xv1` stays).
    ///
    /// ```
    /// use orchflow_agent::llm::OllamaClient;
    /// for url in ["http://gpu:11434", "http://gpu:11434/", "http://gpu:11434/v1", "http://gpu:11434/v1/"] {
    ///     assert_eq!(OllamaClient::builder().base_url(url).build()?.base_url(), "http://gpu:11434");
    /// }
    /// # Ok::<(), orchflow_agent::LlmError>(())
    /// ```
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    http::http_builder_methods!();

    /// Builds the client.
    ///
    /// Fails with [`LlmError::Config`] when the base URL does not parse as an `http(s)` URL or
    /// the HTTP client cannot be created.
    pub fn build(self) -> Result<OllamaClient, LlmError> {
        let base_url = strip_v1(&normalise_base(&self.base_url)?).to_string();
        Ok(OllamaClient {
            http: HttpClient::new(self.http)?,
            chat_url: format!("{base_url}/api/chat"),
            base_url,
        })
    }
}

/// Checks that `url` is an `http(s)` URL and drops trailing slashes.
pub(crate) fn normalise_base(url: &str) -> Result<String, LlmError> {
    let trimmed = url.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(trimmed.to_string()),
        Ok(u) => Err(LlmError::Config {
            reason: format!("base URL `{url}` has scheme `{}`, not http(s)", u.scheme()),
        }),
        Err(e) => Err(LlmError::Config {
            reason: format!("base URL `{url}` does not parse: {e}"),
        }),
    }
}

/// `base` (already normalised: no trailing `/`) without a trailing `/v1` path segment and the
/// slashes before it. The authority is never touched (`http://v1` stays).
fn strip_v1(base: &str) -> &str {
    let path_start = base.find("://").map_or(0, |i| {
        i + 3 + base[i + 3..].find('/').unwrap_or(base.len() - i - 3)
    });
    match base.strip_suffix("/v1") {
        Some(rest) if rest.len() >= path_start => rest.trim_end_matches('/'),
        _ => base,
    }
}

impl OllamaClient {
    /// A client for [`DEFAULT_BASE_URL`] with the default [`HttpConfig`].
    ///
    /// Fails with [`LlmError::Config`] only if the HTTP client cannot be created.
    pub fn new() -> Result<Self, LlmError> {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> OllamaClientBuilder {
        OllamaClientBuilder {
            base_url: DEFAULT_BASE_URL.to_string(),
            http: HttpConfig::default(),
        }
    }

    /// The server's address, without a trailing `/` or `/v1` (see
    /// [`OllamaClientBuilder::base_url`]).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The timeouts and retry policy.
    pub fn http_config(&self) -> &HttpConfig {
        self.http.config()
    }

    fn body(request: &ChatRequest, stream: bool) -> Result<Vec<u8>, LlmError> {
        let options = WireOptions {
            temperature: request.temperature,
            num_predict: request.max_tokens,
        };
        let body = WireRequest {
            model: &request.model,
            messages: &request.messages,
            stream,
            options: (options.temperature.is_some() || options.num_predict.is_some())
                .then_some(options),
            think: request.think,
            format: request.schema.as_ref(),
        };
        serde_json::to_vec(&body).map_err(|e| LlmError::Config {
            reason: format!("cannot encode the request: {e}"),
        })
    }

    async fn chat_once(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let body = Self::body(request, false)?;
        let text = self.http.post_json(&self.chat_url, None, &body).await?;
        parse_reply(&text, request)
    }
}

/// Decodes a non-streaming `/api/chat` reply.
fn parse_reply(text: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
    let reply: WireReply = serde_json::from_str(text).map_err(|e| LlmError::MalformedBody {
        reason: format!("not an Ollama chat reply: {e}"),
        body: http::quote(text),
    })?;
    if let Some(error) = reply.error {
        return Err(LlmError::MalformedBody {
            reason: format!("the server reported an error: {error}"),
            body: http::quote(text),
        });
    }
    let Some(message) = reply.message else {
        return Err(LlmError::MalformedBody {
            reason: "the reply has no `message`".to_string(),
            body: http::quote(text),
        });
    };
    let content = message.content.unwrap_or_default();
    let content = if request.think == Some(false) {
        http::strip_think(&content).to_string()
    } else {
        content
    };
    Ok(ChatResponse {
        content,
        usage: Usage {
            prompt_tokens: reply.prompt_eval_count.unwrap_or(0),
            completion_tokens: reply.eval_count.unwrap_or(0),
        },
        model: reply.model.unwrap_or_else(|| request.model.clone()),
    })
}

impl LlmClient for OllamaClient {
    /// POSTs to `/api/chat` with `stream: false`.
    ///
    /// Fails with [`LlmError::Connect`], [`LlmError::Timeout`] or [`LlmError::Status`] (after
    /// the configured retries: then [`LlmError::RetriesExhausted`]), or
    /// [`LlmError::MalformedBody`] when the body is not an Ollama chat reply.
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        Box::pin(self.chat_once(request))
    }

    /// POSTs to `/api/chat` with `stream: true` and yields the NDJSON lines' text.
    ///
    /// Errors are yielded as items: those of [`chat`](LlmClient::chat) before the first chunk,
    /// then [`LlmError::Stream`] when the connection drops, the server sends an error line or
    /// the body ends before the `done` line, [`LlmError::Timeout`] when no data arrives within
    /// the timeout, and [`LlmError::MalformedBody`] for a line that is not JSON.
    fn chat_stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        let body = match Self::body(request, true) {
            Ok(body) => body,
            Err(e) => return Box::pin(futures_util::stream::once(async move { Err(e) })),
        };
        let decoder = NdjsonDecoder {
            model: request.model.clone(),
        };
        self.http.stream(
            self.chat_url.clone(),
            None,
            body,
            decoder,
            request.think == Some(false),
        )
    }
}

/// Ollama's stream: one JSON object a line.
struct NdjsonDecoder {
    /// The requested model, named on the final chunk when the server does not say.
    model: String,
}

impl LineDecoder for NdjsonDecoder {
    fn line(&mut self, line: &str) -> Result<Option<ChatChunk>, LlmError> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let reply: WireReply = serde_json::from_str(line).map_err(|e| LlmError::MalformedBody {
            reason: format!("a line of the stream is not an Ollama chat chunk: {e}"),
            body: http::quote(line),
        })?;
        if let Some(error) = reply.error {
            return Err(LlmError::Stream {
                reason: format!("the server reported an error mid-stream: {error}"),
            });
        }
        let content = reply.message.and_then(|m| m.content).unwrap_or_default();
        if let Some(model) = &reply.model {
            self.model.clone_from(model);
        }
        Ok(Some(ChatChunk {
            content,
            done: reply.done,
            usage: reply.done.then(|| Usage {
                prompt_tokens: reply.prompt_eval_count.unwrap_or(0),
                completion_tokens: reply.eval_count.unwrap_or(0),
            }),
            model: Some(self.model.clone()),
        }))
    }

    fn end(&mut self) -> Result<ChatChunk, LlmError> {
        Err(LlmError::Stream {
            reason: "the stream ended before its `done` line".to_string(),
        })
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<WireOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct WireOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
}

#[derive(Deserialize)]
struct WireReply {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    /// The answer. (`thinking`, the separate reasoning, is deliberately not read.)
    #[serde(default)]
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_only_what_is_set() {
        let r = ChatRequest::new("m", vec![Message::user("hi")]);
        let v: serde_json::Value =
            serde_json::from_slice(&OllamaClient::body(&r, false).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false})
        );
        let r = r.with_max_tokens(7).with_think(false);
        let v: serde_json::Value =
            serde_json::from_slice(&OllamaClient::body(&r, true).unwrap()).unwrap();
        assert_eq!(v["options"], serde_json::json!({"num_predict": 7}));
        assert_eq!(v["think"], false);
        assert_eq!(v["stream"], true);
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        assert!(matches!(
            OllamaClient::builder().base_url("not a url").build(),
            Err(LlmError::Config { .. })
        ));
        assert!(matches!(
            OllamaClient::builder().base_url("ftp://x").build(),
            Err(LlmError::Config { .. })
        ));
    }

    #[test]
    fn a_trailing_v1_is_stripped_from_the_base() {
        for (url, base) in [
            ("http://h:11434", "http://h:11434"),
            ("http://h:11434/", "http://h:11434"),
            ("http://h:11434/v1", "http://h:11434"),
            ("http://h:11434/v1/", "http://h:11434"),
            ("http://h:11434//v1//", "http://h:11434"),
            ("https://h/ollama/v1", "https://h/ollama"),
            ("http://h/api/v1", "http://h/api"),
            ("http://h/xv1", "http://h/xv1"),
            ("http://h/v1/v1", "http://h/v1"),
            ("http://v1", "http://v1"),
            ("http://h/v1x", "http://h/v1x"),
        ] {
            let client = OllamaClient::builder().base_url(url).build().unwrap();
            assert_eq!(client.base_url(), base, "{url}");
            assert_eq!(client.chat_url, format!("{base}/api/chat"), "{url}");
        }
    }

    #[test]
    fn reply_without_message_is_malformed() {
        let r = ChatRequest::new("m", vec![]);
        assert!(matches!(
            parse_reply(r#"{"done":true}"#, &r),
            Err(LlmError::MalformedBody { .. })
        ));
        assert!(matches!(
            parse_reply(r#"{"error":"model 'm' not found"}"#, &r),
            Err(LlmError::MalformedBody { reason, .. }) if reason.contains("not found")
        ));
        let ok = parse_reply(
            r#"{"message":{"role":"assistant","content":null},"done":true}"#,
            &r,
        )
        .unwrap();
        assert_eq!(ok.content, "");
        assert_eq!(ok.model, "m");
    }
}
