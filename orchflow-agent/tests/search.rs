//! The search tools: Tavily against a local mock of its API, and the offline BM25 search.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orchflow_agent::tools::search::{CorpusDocument, LocalSearch, TavilySearch};
use orchflow_agent::{Tool, ToolError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "tvly-test-key";

/// What the mock does once the request has passed its checks.
#[derive(Clone)]
enum Mode {
    Results,
    NoAnswer,
    Status(u16, &'static str),
    Malformed,
    Slow(Duration),
}

#[derive(Clone)]
struct Mock {
    mode: Mode,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn search_handler(State(mock): State<Mock>, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {KEY}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": {"error": "Unauthorized: missing or invalid API key."}})),
        )
            .into_response();
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "want JSON").into_response();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let well_formed = body["query"].is_string()
        && body["max_results"].is_u64()
        && body["search_depth"] == "basic"
        && body["include_answer"] == true;
    mock.seen.lock().unwrap().push(body.clone());
    if !well_formed {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": {"error": "bad request body"}})),
        )
            .into_response();
    }
    let n = body["max_results"].as_u64().unwrap() as usize;
    let results: Vec<Value> = (1..=n.min(3))
        .map(|i| {
            json!({
                "title": format!("Result {i} for {}", body["query"].as_str().unwrap()),
                "url": format!("https://example.org/{i}"),
                "content": format!("Content number {i}."),
                "score": 1.0 / i as f64,
                "raw_content": null
            })
        })
        .collect();
    match mock.mode {
        Mode::Results => Json(json!({
            "query": body["query"],
            "answer": "The answer is 42.",
            "results": results,
            "response_time": 0.5
        }))
        .into_response(),
        Mode::NoAnswer => {
            Json(json!({"query": body["query"], "answer": null, "results": []})).into_response()
        }
        Mode::Status(code, text) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"detail": {"error": text}})),
        )
            .into_response(),
        Mode::Malformed => (
            [("content-type", "application/json")],
            "{\"results\": [{\"title\": \"tor",
        )
            .into_response(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            Json(json!({"results": results})).into_response()
        }
    }
}

/// Starts the mock on 127.0.0.1:0; returns its base URL and the request bodies it accepted.
async fn start(mode: Mode) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/search", post(search_handler))
        .with_state(Mock {
            mode,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

fn tavily(base: &str) -> TavilySearch {
    TavilySearch::new(KEY)
        .with_base_url(base)
        .with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn tavily_returns_numbered_results_with_the_answer_first() {
    let (base, seen) = start(Mode::Results).await;
    let tool = tavily(&format!("{base}/"));
    assert_eq!(tool.name(), "search");
    let out = tool
        .call(&json!({"query": "meaning of life", "max_results": 2}))
        .await
        .unwrap();
    assert_eq!(
        out.content,
        "Answer: The answer is 42.\n\n\
         1. Result 1 for meaning of life (https://example.org/1)\n   Content number 1.\n\
         2. Result 2 for meaning of life (https://example.org/2)\n   Content number 2."
    );
    let data = out.data.unwrap();
    assert_eq!(data["answer"], "The answer is 42.");
    assert_eq!(data["results"].as_array().unwrap().len(), 2);
    assert_eq!(data["results"][1]["url"], "https://example.org/2");
    assert_eq!(data["results"][0]["score"], 1.0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![json!({
            "query": "meaning of life",
            "max_results": 2,
            "search_depth": "basic",
            "include_answer": true
        })]
    );
}

#[tokio::test]
async fn tavily_accepts_a_bare_string_and_uses_the_default_count() {
    let (base, seen) = start(Mode::Results).await;
    let out = tavily(&base)
        .with_max_results(3)
        .call(&json!("  speed of light "))
        .await
        .unwrap();
    assert!(out.content.contains("3. Result 3 for speed of light"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0]["query"], "speed of light");
    assert_eq!(seen[0]["max_results"], 3);
}

#[tokio::test]
async fn tavily_says_so_when_nothing_is_found() {
    let (base, _) = start(Mode::NoAnswer).await;
    let out = tavily(&base).call(&json!("zzzz")).await.unwrap();
    assert_eq!(out.content, "No web results for \"zzzz\".");
    assert_eq!(out.data.unwrap()["results"], json!([]));
}

#[tokio::test]
async fn tavily_wrong_key_is_unavailable() {
    let (base, seen) = start(Mode::Results).await;
    let err = TavilySearch::new("wrong")
        .with_base_url(&base)
        .call(&json!("x"))
        .await
        .unwrap_err();
    match &err {
        ToolError::Unavailable { reason } => {
            assert!(reason.contains("HTTP 401"), "{reason}");
            assert!(reason.contains("invalid API key"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tavily_without_a_key_is_unavailable_without_a_request() {
    let (base, seen) = start(Mode::Results).await;
    let tool =
        TavilySearch::from_env_var("ORCHFLOW_TEST_SURELY_UNSET_VARIABLE").with_base_url(&base);
    assert!(!tool.has_key());
    let err = tool.call(&json!("x")).await.unwrap_err();
    assert!(matches!(&err, ToolError::Unavailable { reason } if reason.contains("TAVILY_API_KEY")));
    assert!(seen.lock().unwrap().is_empty());
    // An empty key counts as none.
    let err = tavily(&base)
        .with_api_key("")
        .call(&json!("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unavailable");
}

#[tokio::test]
async fn tavily_rate_limit_and_server_errors_fail() {
    for (code, text, needle) in [
        (429, "Too many requests", "rate limit"),
        (500, "Internal error", "server error (HTTP 500)"),
        (503, "Unavailable", "server error (HTTP 503)"),
        (400, "Query is too long", "HTTP 400"),
    ] {
        let (base, _) = start(Mode::Status(code, text)).await;
        let err = tavily(&base).call(&json!("q")).await.unwrap_err();
        match &err {
            ToolError::Failed { message } => {
                assert!(message.contains(needle), "{message}");
                assert!(message.contains(text), "{message}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    let (base, _) = start(Mode::Status(432, "Plan limit exceeded")).await;
    let err = tavily(&base).call(&json!("q")).await.unwrap_err();
    assert_eq!(err.kind(), "unavailable");
}

#[tokio::test]
async fn tavily_malformed_json_fails_clearly() {
    let (base, _) = start(Mode::Malformed).await;
    let err = tavily(&base).call(&json!("q")).await.unwrap_err();
    match &err {
        ToolError::Failed { message } => {
            assert!(message.contains("not a search result"), "{message}");
            assert!(message.contains("{\"results\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tavily_slow_server_times_out() {
    let (base, _) = start(Mode::Slow(Duration::from_secs(5))).await;
    let started = std::time::Instant::now();
    let err = tavily(&base)
        .with_timeout(Duration::from_millis(200))
        .call(&json!("q"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ToolError::TimedOut {
            what: "wall time".into(),
            limit_ms: 200
        }
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn tavily_unreachable_server_is_unavailable() {
    // Bind then drop a listener: nothing listens on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = tavily(&format!("http://{addr}"))
        .call(&json!("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::Unavailable { reason } if reason.contains("cannot reach")),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_inputs_are_rejected_before_any_request() {
    let (base, seen) = start(Mode::Results).await;
    let tool = tavily(&base);
    for input in [
        json!(""),
        json!("   "),
        json!({}),
        json!({"query": 3}),
        json!({"query": "x", "max_results": 0}),
        json!({"query": "x", "max_results": "two"}),
        json!({"query": "x", "max_results": -1}),
        json!([1, 2]),
        json!(null),
    ] {
        let err = tool.call(&input).await.unwrap_err();
        assert!(
            matches!(&err, ToolError::InvalidInput { tool, .. } if tool == "search"),
            "{input}: {err:?}"
        );
        let err = LocalSearch::builtin().call(&input).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{input}");
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn local_builtin_ranks_the_relevant_note_first() {
    let search = LocalSearch::builtin();
    assert!(search.documents().len() >= 25);
    for (query, expected) in [
        ("Euclidean algorithm greatest common divisor", "gcd-lcm"),
        (
            "how many trailing zeros does 100! have",
            "legendre-factorial",
        ),
        ("value of the Planck constant", "physical-constants"),
        ("ideal gas constant R", "ideal-gas"),
        ("Pythagorean triples", "pythagoras"),
        ("pH of a strong acid", "acids-bases"),
        ("how many codons in the genetic code", "genetics"),
        ("Fermat's little theorem", "euler-fermat"),
        (
            "number of ways to choose k objects from n",
            "permutations-combinations",
        ),
        ("sum of interior angles of a hexagon", "polygons"),
        ("Ohm's law voltage current resistance", "electricity"),
        ("half-life carbon-14", "radioactive-decay"),
    ] {
        let hits = search.search(query, 3);
        assert!(!hits.is_empty(), "{query}");
        assert_eq!(
            hits[0].url,
            format!("local:{expected}"),
            "{query}: {hits:#?}"
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

#[tokio::test]
async fn local_tool_output_and_max_results() {
    let search = LocalSearch::builtin();
    let out = search
        .call(&json!({"query": "prime numbers", "max_results": 2}))
        .await
        .unwrap();
    assert!(
        out.content
            .starts_with("1. Prime numbers (local:prime-numbers)\n   A prime number")
    );
    assert!(out.content.contains("\n2. "));
    assert!(!out.content.contains("\n3. "));
    let data = out.data.unwrap();
    assert_eq!(data["query"], "prime numbers");
    assert_eq!(data["results"].as_array().unwrap().len(), 2);
    assert!(data["results"][0]["score"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn local_no_hits_is_an_honest_empty_result() {
    let search = LocalSearch::builtin();
    let out = search.call(&json!("xylophone quokka")).await.unwrap();
    assert!(
        out.content
            .starts_with("No results for \"xylophone quokka\""),
        "{}",
        out.content
    );
    assert_eq!(out.data.unwrap()["results"], json!([]));
    // Only stop words: nothing to search for, and the output says why.
    let out = search.call(&json!("the of and")).await.unwrap();
    assert!(
        out.content.contains("no searchable words"),
        "{}",
        out.content
    );
}

#[test]
fn local_from_jsonl_and_dir() {
    let search = LocalSearch::from_jsonl_str(concat!(
        r#"{"id": "h", "title": "Hydrogen", "text": "Hydrogen is the lightest element."}"#,
        "\n\n",
        r#"{"title": "Helium", "text": "Helium is a noble gas.", "url": "https://x/he"}"#,
        "\n",
    ))
    .unwrap();
    assert_eq!(search.documents().len(), 2);
    assert_eq!(search.documents()[1].id, "line-3");
    let hits = search.search("noble gases", 5);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].url, "https://x/he");

    let err = LocalSearch::from_jsonl_str("{\"title\": \"no text\"}").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("moon.md"),
        "# The Moon\n\nThe Moon orbits the Earth.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sun.txt"), "The Sun is a star.").unwrap();
    std::fs::write(dir.path().join("ignored.json"), "{\"text\": \"Moon\"}").unwrap();
    let search = LocalSearch::from_dir(dir.path()).unwrap();
    assert_eq!(search.documents().len(), 2);
    let hits = search.search("moon orbit", 5);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "The Moon");
    assert_eq!(hits[0].content, "The Moon orbits the Earth.");
    assert_eq!(search.search("star", 5)[0].title, "sun");

    let path = dir.path().join("corpus.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"title\": \"A\", \"text\": \"alpha beta\"}\n",
    )
    .unwrap();
    assert_eq!(
        LocalSearch::from_jsonl_file(&path)
            .unwrap()
            .search("beta", 1)[0]
            .url,
        "local:a"
    );
    assert!(LocalSearch::from_jsonl_file(dir.path().join("missing.jsonl")).is_err());
    assert!(LocalSearch::from_dir(dir.path().join("missing")).is_err());
}

#[test]
fn local_in_memory_is_deterministic_on_ties() {
    let docs = (0..5)
        .map(|i| CorpusDocument::new(format!("d{i}"), "Same", "identical text about comets"))
        .collect();
    let search = LocalSearch::from_documents(docs);
    let ids: Vec<_> = search
        .search("comets", 5)
        .into_iter()
        .map(|h| h.url)
        .collect();
    assert_eq!(
        ids,
        ["local:d0", "local:d1", "local:d2", "local:d3", "local:d4"]
    );
}
