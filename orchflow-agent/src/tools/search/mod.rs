//! Search tools: [`TavilySearch`] (web search over Tavily's HTTP API) and [`LocalSearch`]
//! (offline BM25 over a small corpus, [`LocalSearch::builtin`] needs no key and no network).
//!
//! Both are named `search` and take the same input, described by [`input_schema`]:
//! `{"query": "…", "max_results": 3}` (`max_results` optional), or a bare JSON string, which is
//! the query. Both answer with a [`ToolOutput`](crate::ToolOutput) whose `content` is a numbered,
//! readable list of hits and whose `data` is
//! `{"query": "…", "answer": "…" | null, "results": [SearchHit, …]}`.
//!
//! ```
//! use orchflow_agent::tools::search::LocalSearch;
//! use orchflow_agent::Tool;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let search = LocalSearch::builtin();
//! let out = search.call(&serde_json::json!("gcd Euclidean algorithm")).await.unwrap();
//! assert!(out.content.starts_with("1. Greatest common divisor"));
//! # });
//! ```

use crate::tools::ToolError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod local;
mod tavily;

pub use local::{CorpusDocument, CorpusError, LocalSearch, SearchTokenizer};
pub use tavily::TavilySearch;

/// The name both search tools answer to.
pub const TOOL_NAME: &str = "search";

/// How many hits a search returns when the input does not say.
pub const DEFAULT_MAX_RESULTS: usize = 5;

/// The most hits a search returns, whatever the input asks (larger requests are clamped).
pub const MAX_RESULTS_LIMIT: usize = 20;

/// The longest hit text shown in a tool output's `content`, in characters (the full text stays
/// in `data`).
pub const MAX_SNIPPET_CHARS: usize = 800;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The page's or note's title.
    pub title: String,
    /// Where it came from: a web address, or `local:<document id>` for [`LocalSearch`].
    pub url: String,
    /// The passage's text.
    pub content: String,
    /// The relevance score (Tavily's score in `[0, 1]`, or the BM25 score): higher is better.
    pub score: f64,
}

/// A parsed search input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query, trimmed, never empty.
    pub query: String,
    /// How many hits to return, in `1..=MAX_RESULTS_LIMIT`.
    pub max_results: usize,
}

/// The JSON schema of a search tool's input.
///
/// ```
/// let schema = orchflow_agent::tools::search::input_schema();
/// assert_eq!(schema["required"][0], "query");
/// ```
pub fn input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to search for."},
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_RESULTS_LIMIT,
                "description": "How many results to return (default 5)."
            }
        },
        "required": ["query"]
    })
}

/// Parses a search input: `{"query": string, "max_results"?: int}` or a bare JSON string.
///
/// `default_max` is used when `max_results` is absent or `null`; requests above
/// [`MAX_RESULTS_LIMIT`] are clamped to it. Fields other than these two are ignored.
///
/// Fails with [`ToolError::InvalidInput`] (naming `tool`) when the query is missing, not a
/// string or blank, or when `max_results` is not a positive integer.
///
/// ```
/// use orchflow_agent::tools::search::parse_query;
/// let q = parse_query("search", &serde_json::json!({"query": " primes ", "max_results": 50}), 5)
///     .unwrap();
/// assert_eq!((q.query.as_str(), q.max_results), ("primes", 20));
/// assert!(parse_query("search", &serde_json::json!("  "), 5).is_err());
/// ```
pub fn parse_query(
    tool: &str,
    input: &Value,
    default_max: usize,
) -> Result<SearchQuery, ToolError> {
    let invalid = |reason: String| ToolError::InvalidInput {
        tool: tool.to_string(),
        reason,
    };
    let (query, max) = match input {
        Value::String(s) => (s.as_str(), None),
        Value::Object(map) => {
            let query = match map.get("query") {
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    return Err(invalid(format!(
                        "`query` must be a string, not {}",
                        super::json_kind(other)
                    )));
                }
                None => return Err(invalid("missing `query`".to_string())),
            };
            let max = match map.get("max_results") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(0) | None => {
                        return Err(invalid(format!(
                            "`max_results` must be a positive integer, not {v}"
                        )));
                    }
                    Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                },
            };
            (query, max)
        }
        other => {
            return Err(invalid(format!(
                "expected {{\"query\": string}} or a string, not {}",
                super::json_kind(other)
            )));
        }
    };
    let query = query.trim();
    if query.is_empty() {
        return Err(invalid("the query is empty".to_string()));
    }
    let max_results = max.unwrap_or(default_max).clamp(1, MAX_RESULTS_LIMIT);
    Ok(SearchQuery {
        query: query.to_string(),
        max_results,
    })
}

/// Renders hits as the numbered list a planner reads: the answer first when there is one, then
/// `N. title (url)` and the text (shortened to [`MAX_SNIPPET_CHARS`]) for each hit.
///
/// ```
/// use orchflow_agent::tools::search::{format_hits, SearchHit};
/// let hit = SearchHit {
///     title: "Primes".into(),
///     url: "local:primes".into(),
///     content: "2 is the only even prime.".into(),
///     score: 1.5,
/// };
/// assert_eq!(
///     format_hits(Some("Two."), &[hit]),
///     "Answer: Two.\n\n1. Primes (local:primes)\n   2 is the only even prime."
/// );
/// ```
pub fn format_hits(answer: Option<&str>, hits: &[SearchHit]) -> String {
    let mut out = String::new();
    if let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) {
        out.push_str("Answer: ");
        out.push_str(answer);
    }
    for (i, hit) in hits.iter().enumerate() {
        if !out.is_empty() {
            out.push_str(if i == 0 { "\n\n" } else { "\n" });
        }
        let title = if hit.title.trim().is_empty() {
            "(untitled)"
        } else {
            hit.title.trim()
        };
        out.push_str(&format!("{}. {}", i + 1, title));
        if !hit.url.is_empty() {
            out.push_str(&format!(" ({})", hit.url));
        }
        let text = collapse_whitespace(&hit.content);
        if !text.is_empty() {
            out.push_str("\n   ");
            out.push_str(&shorten(&text, MAX_SNIPPET_CHARS));
        }
    }
    out
}

/// The structured `data` of a search output.
fn hits_data(query: &str, answer: Option<&str>, hits: &[SearchHit]) -> Value {
    json!({"query": query, "answer": answer, "results": hits})
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` cut to at most `max` characters (on a char boundary), with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}
