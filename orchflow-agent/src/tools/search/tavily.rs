//! Web search over Tavily's HTTP API.

use super::{
    DEFAULT_MAX_RESULTS, SearchHit, TOOL_NAME, format_hits, hits_data, input_schema, parse_query,
    shorten,
};
use crate::tools::{Tool, ToolError, ToolFuture, ToolOutput};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Tavily's API address.
const DEFAULT_BASE_URL: &str = "https://api.tavily.com";
/// The environment variable the key is read from by default.
const DEFAULT_KEY_ENV: &str = "TAVILY_API_KEY";
/// The default wall-clock limit of one search, response body included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of an error body is quoted in an error message.
const ERROR_BODY_CHARS: usize = 300;

/// Web search over [Tavily](https://tavily.com)'s API: `POST {base}/search` with
/// `{query, max_results, search_depth: "basic", include_answer: true}` and the key as
/// `Authorization: Bearer <key>`.
///
/// The output's `content` is Tavily's short answer (when it gives one) followed by the numbered
/// hits; `data` holds the answer and the hits ([`SearchHit`]).
///
/// Failures are [`ToolError`]s, never panics: no key, a rejected key (HTTP 401/403) or an
/// exhausted plan (HTTP 432/433) → [`ToolError::Unavailable`]; the server cannot be reached →
/// [`ToolError::Unavailable`]; no complete answer within the timeout →
/// [`ToolError::TimedOut`]; any other HTTP error status (400, 429, 5xx…) or a reply that is not
/// Tavily's JSON → [`ToolError::Failed`]; messages quote the status and the start of the body.
///
/// ```
/// use orchflow_agent::tools::search::TavilySearch;
/// use std::time::Duration;
/// let tavily = TavilySearch::new("tvly-…")
///     .with_base_url("http://127.0.0.1:8080")
///     .with_timeout(Duration::from_secs(5))
///     .with_max_results(3);
/// assert_eq!(tavily.base_url(), "http://127.0.0.1:8080");
/// assert!(tavily.has_key());
/// ```
#[derive(Clone)]
pub struct TavilySearch {
    client: Result<reqwest::Client, String>,
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
    max_results: usize,
}

impl std::fmt::Debug for TavilySearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TavilySearch")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("max_results", &self.max_results)
            .finish()
    }
}

impl TavilySearch {
    /// A client with the key read from `TAVILY_API_KEY` (when it is unset or empty, every call
    /// fails with [`ToolError::Unavailable`]), Tavily's public address, a 20 s timeout and 5
    /// results.
    pub fn from_env() -> Self {
        Self::with_key(std::env::var(DEFAULT_KEY_ENV).ok())
    }

    /// A client with the key read from the environment variable `var` (see
    /// [`TavilySearch::from_env`]).
    pub fn from_env_var(var: &str) -> Self {
        Self::with_key(std::env::var(var).ok())
    }

    /// A client with this API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self::with_key(Some(api_key.into()))
    }

    fn with_key(api_key: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"));
        TavilySearch {
            client,
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            timeout: DEFAULT_TIMEOUT,
            max_results: DEFAULT_MAX_RESULTS,
        }
    }

    /// Sets the API key (an empty key counts as none).
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into()).filter(|k| !k.trim().is_empty());
        self
    }

    /// Sets the API's base address (for a proxy or a test server); a trailing `/` is ignored.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_string();
        self
    }

    /// Sets the wall-clock limit of one search (connection, request and whole reply).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many results a call asks for when its input does not say (clamped to
    /// `1..=20`).
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = n.clamp(1, super::MAX_RESULTS_LIMIT);
        self
    }

    /// The API's base address.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether a key is configured (calls without one fail with [`ToolError::Unavailable`]).
    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    async fn search(&self, query: &str, max_results: usize) -> Result<ToolOutput, ToolError> {
        let Some(key) = &self.api_key else {
            return Err(ToolError::Unavailable {
                reason: format!(
                    "no Tavily API key: set {DEFAULT_KEY_ENV} or configure the key \
                     (TavilySearch::with_api_key)"
                ),
            });
        };
        let client = self
            .client
            .as_ref()
            .map_err(|e| ToolError::Unavailable { reason: e.clone() })?;
        let url = format!("{}/search", self.base_url);
        let body = json!({
            "query": query,
            "max_results": max_results,
            "search_depth": "basic",
            "include_answer": true,
        });
        let timed_out = || ToolError::timed_out("wall time", self.timeout);
        let request = client
            .post(&url)
            .bearer_auth(key)
            .json(&body)
            .timeout(self.timeout)
            .send();
        // The reqwest timeout covers the whole exchange; the outer one is a safety net.
        let exchange = async {
            let response = request.await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let (status, text) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
            Ok(Err(e)) if e.is_connect() => {
                return Err(ToolError::Unavailable {
                    reason: format!("cannot reach Tavily at {url}: {}", error_chain(&e)),
                });
            }
            Ok(Err(e)) => {
                return Err(ToolError::Failed {
                    message: format!("Tavily request to {url} failed: {}", error_chain(&e)),
                });
            }
            Ok(Ok(reply)) => reply,
        };
        if !status.is_success() {
            return Err(status_error(status.as_u16(), &text));
        }
        let reply: TavilyReply = serde_json::from_str(&text).map_err(|e| ToolError::Failed {
            message: format!(
                "Tavily sent a reply that is not a search result ({e}): {}",
                shorten(text.trim(), ERROR_BODY_CHARS)
            ),
        })?;
        let answer = reply.answer.filter(|a| !a.trim().is_empty());
        let hits: Vec<SearchHit> = reply
            .results
            .into_iter()
            .take(max_results)
            .map(|r| SearchHit {
                title: r.title.unwrap_or_default(),
                url: r.url.unwrap_or_default(),
                content: r.content.unwrap_or_default(),
                score: r.score.unwrap_or(0.0),
            })
            .collect();
        let content = if hits.is_empty() && answer.is_none() {
            format!("No web results for \"{query}\".")
        } else {
            format_hits(answer.as_deref(), &hits)
        };
        Ok(ToolOutput {
            content,
            data: Some(hits_data(query, answer.as_deref(), &hits)),
        })
    }
}

/// The error for a non-success HTTP status.
fn status_error(status: u16, body: &str) -> ToolError {
    let detail = error_detail(body);
    match status {
        401 | 403 => ToolError::Unavailable {
            reason: format!("Tavily rejected the API key (HTTP {status}){detail}"),
        },
        432 | 433 => ToolError::Unavailable {
            reason: format!("Tavily usage limit reached (HTTP {status}){detail}"),
        },
        429 => ToolError::Failed {
            message: format!("Tavily rate limit hit (HTTP 429), try again later{detail}"),
        },
        500..=599 => ToolError::Failed {
            message: format!("Tavily server error (HTTP {status}){detail}"),
        },
        _ => ToolError::Failed {
            message: format!("Tavily refused the search (HTTP {status}){detail}"),
        },
    }
}

/// `: <message>` from an error body (`{"detail": {"error": …}}`, `{"detail": …}`,
/// `{"error": …}` or the raw text, shortened), or nothing for an empty body.
fn error_detail(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let detail = v.get("detail").or_else(|| v.get("error"))?;
            let msg = detail.get("error").unwrap_or(detail);
            Some(match msg {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
    format!(
        ": {}",
        shorten(
            &from_json.unwrap_or_else(|| body.to_string()),
            ERROR_BODY_CHARS
        )
    )
}

/// An error and its sources, `: `-joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Deserialize)]
struct TavilyReply {
    #[serde(default)]
    answer: Option<String>,
    results: Vec<TavilyResult>,
}

#[derive(Deserialize)]
struct TavilyResult {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

impl Tool for TavilySearch {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn description(&self) -> &str {
        "Search the web (Tavily) for facts, definitions and data. Input: the query as a string, \
         or {\"query\": string, \"max_results\"?: int}."
    }

    fn input_schema(&self) -> serde_json::Value {
        input_schema()
    }

    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            let q = parse_query(TOOL_NAME, input, self.max_results)?;
            self.search(&q.query, q.max_results).await
        })
    }
}
