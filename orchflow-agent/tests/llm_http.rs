//! The HTTP clients against local servers that speak the real wire formats: axum for
//! well-formed exchanges, raw TCP where the server has to misbehave at the byte level.
//!
//! Every test uses small timeouts and backoff delays, so the file runs in a few seconds.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use futures_util::StreamExt;
use orchflow_agent::agent::{Agent, AgentConfig, AgentError};
use orchflow_agent::llm::{OllamaClient, OpenAiClient, collect_stream};
use orchflow_agent::{ChatRequest, LlmClient, LlmError, Message};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// A scripted HTTP server
// ---------------------------------------------------------------------------------------------

/// What the server answers to one request.
#[derive(Clone)]
enum Reply {
    /// A JSON body with this status.
    Json(u16, Value),
    /// Any status, headers and body.
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A 200 whose body is sent in these pieces, `gap` apart.
    Chunks {
        content_type: &'static str,
        chunks: Vec<Vec<u8>>,
        gap: Duration,
    },
    /// Waits, then answers `{}`.
    Slow(Duration),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    /// The request's path (`/api/chat`, `/v1/chat/completions`).
    path: String,
    headers: HeaderMap,
    body: Value,
    at: Instant,
}

#[derive(Clone)]
struct Script {
    replies: Arc<Vec<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running scripted server: its base URL and the requests it received.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `replies` in order on both chat paths; the last one repeats.
async fn serve(replies: Vec<Reply>) -> Server {
    let script = Script {
        replies: Arc::new(replies),
        seen: Arc::default(),
    };
    let seen = script.seen.clone();
    let app = Router::new()
        .route("/api/chat", post(handle))
        .route("/v1/chat/completions", post(handle))
        .with_state(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base: format!("http://{addr}"),
        seen,
    }
}

async fn handle(
    State(script): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut seen = script.seen.lock().unwrap();
        seen.push(Seen {
            path: uri.path().to_string(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        });
        seen.len() - 1
    };
    let reply = script
        .replies
        .get(index)
        .or(script.replies.last())
        .cloned()
        .unwrap();
    match reply {
        Reply::Json(status, value) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(value.to_string()))
            .unwrap(),
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            let mut builder = Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(Body::from(body)).unwrap()
        }
        Reply::Chunks {
            content_type,
            chunks,
            gap,
        } => {
            let stream = futures_util::stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(gap).await;
                Ok::<_, std::io::Error>(chunk)
            });
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            Response::builder()
                .status(200)
                .body(Body::from("{}"))
                .unwrap()
        }
    }
}

/// A server that reads each request, writes `response` (bytes, possibly an incomplete HTTP
/// response) and drops the connection. Returns its base URL and a connection counter.
async fn raw_server(response: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(socket); // mid-body: the client sees the connection close
            });
        }
    });
    (format!("http://{addr}"), connections)
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body).
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return;
        }
    }
}

/// An address nothing listens on.
async fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Clients and payloads
// ---------------------------------------------------------------------------------------------

fn ollama(base: &str) -> OllamaClient {
    OllamaClient::builder()
        .base_url(base)
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .max_retries(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        .max_retry_after(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn openai(base: &str) -> OpenAiClient {
    OpenAiClient::builder()
        .base_url(base)
        .api_key("test-key")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .max_retries(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        .max_retry_after(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn ollama_reply(content: &str) -> Value {
    json!({
        "model": "qwen3:8b",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": 26,
        "eval_count": 7
    })
}

fn openai_reply(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
}

fn request() -> ChatRequest {
    ChatRequest::new(
        "qwen3:8b",
        vec![Message::system("Be brief."), Message::user("2 + 2?")],
    )
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq, Default)]
struct Answer {
    answer: u32,
    confidence: String,
}

fn answer_schema() -> Value {
    Value::from(schemars::schema_for!(Answer))
}

fn agent(client: Arc<dyn LlmClient>) -> Agent {
    Agent::new(
        "solver",
        "You answer arithmetic questions.",
        AgentConfig::new("qwen3:8b").with_think(false),
        client,
    )
}

/// Splits `text` into pieces of `size` bytes (the wire respects neither line nor character
/// boundaries).
fn pieces(text: &str, size: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

async fn stream_items(
    client: &dyn LlmClient,
    request: &ChatRequest,
) -> Vec<Result<orchflow_agent::llm::ChatChunk, LlmError>> {
    client.chat_stream(request).collect().await
}

// ---------------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ollama_reply_and_request_body() {
    let server = serve(vec![Reply::Json(200, ollama_reply("4"))]).await;
    let client = ollama(&server.base);
    let req = request()
        .with_think(false)
        .with_temperature(0.0)
        .with_max_tokens(64)
        .with_schema(answer_schema());
    let reply = client.chat(&req).await.unwrap();
    assert_eq!(reply.content, "4");
    assert_eq!(reply.usage.prompt_tokens, 26);
    assert_eq!(reply.usage.completion_tokens, 7);
    assert_eq!(reply.model, "qwen3:8b");

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["model"], "qwen3:8b");
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}])
    );
    assert_eq!(body["stream"], false);
    assert_eq!(body["think"], false);
    assert_eq!(
        body["options"],
        json!({"temperature": 0.0, "num_predict": 64})
    );
    assert_eq!(body["format"], answer_schema());
    assert!(seen[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn ollama_omits_unset_fields() {
    let server = serve(vec![Reply::Json(200, ollama_reply("hi"))]).await;
    ollama(&server.base).chat(&request()).await.unwrap();
    let body = &server.requests()[0].body;
    for field in ["think", "format", "options"] {
        assert!(body.get(field).is_none(), "{field} sent: {body}");
    }
}

#[tokio::test]
async fn ollama_think_false_drops_thinking() {
    let mut reply =
        ollama_reply("<think>\nThe user wants 2+2. That is 4.\n</think>\n\nThe answer is 4.");
    reply["message"]["thinking"] = json!("separate reasoning that must not leak");
    let server = serve(vec![Reply::Json(200, reply)]).await;
    let client = ollama(&server.base);

    let no_think = client.chat(&request().with_think(false)).await.unwrap();
    assert_eq!(no_think.content, "The answer is 4.");
    assert!(!no_think.content.contains("reasoning"));
    assert_eq!(server.requests()[0].body["think"], false);

    // With thinking on, the content is left as the model wrote it (the separate field is
    // still not mixed in).
    let think = client.chat(&request().with_think(true)).await.unwrap();
    assert!(think.content.starts_with("<think>"));
    assert!(!think.content.contains("separate reasoning"));
    assert_eq!(server.requests()[1].body["think"], true);
}

#[tokio::test]
async fn ollama_streaming_reply() {
    let lines = [
        json!({"model": "qwen3:8b", "message": {"role": "assistant", "content": "The "}, "done": false}),
        json!({"model": "qwen3:8b", "message": {"role": "assistant", "content": "answer "}, "done": false}),
        json!({"model": "qwen3:8b", "message": {"role": "assistant", "content": "is 4."}, "done": false}),
        json!({"model": "qwen3:8b", "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 5}),
    ];
    let ndjson: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let server = serve(vec![Reply::Chunks {
        content_type: "application/x-ndjson",
        chunks: pieces(&ndjson, 13),
        gap: Duration::from_millis(1),
    }])
    .await;
    let client = ollama(&server.base);
    let req = request();

    let items = stream_items(&client, &req).await;
    let chunks: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    let texts: Vec<&str> = chunks.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(texts, ["The ", "answer ", "is 4.", ""]);
    let last = chunks.last().unwrap();
    assert!(last.done);
    assert_eq!(last.usage.unwrap().prompt_tokens, 11);
    assert_eq!(server.requests()[0].body["stream"], true);

    let collected = collect_stream(client.chat_stream(&req)).await.unwrap();
    assert_eq!(collected.content, "The answer is 4.");
    assert_eq!(collected.usage.completion_tokens, 5);
    assert_eq!(collected.model, "qwen3:8b");
}

#[tokio::test]
async fn ollama_streaming_strips_think_split_across_chunks() {
    let parts = [
        "<thi",
        "nk>Let me ",
        "add.</th",
        "ink>",
        "\n\n",
        "Four",
        ".",
    ];
    let mut ndjson = String::new();
    for p in parts {
        ndjson += &format!("{}\n", json!({"message": {"content": p}, "done": false}));
    }
    ndjson += &format!(
        "{}\n",
        json!({"message": {"content": ""}, "done": true, "prompt_eval_count": 1, "eval_count": 2})
    );
    let server = serve(vec![Reply::Chunks {
        content_type: "application/x-ndjson",
        chunks: vec![ndjson.into_bytes()],
        gap: Duration::ZERO,
    }])
    .await;
    let client = ollama(&server.base);
    let reply = collect_stream(client.chat_stream(&request().with_think(false)))
        .await
        .unwrap();
    assert_eq!(reply.content, "Four.");
    assert_eq!(
        reply.model, "qwen3:8b",
        "the requested model when the server names none"
    );
}

#[tokio::test]
async fn ollama_malformed_body_is_typed_and_not_retried() {
    let server = serve(vec![Reply::Raw {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: "{\"message\": {\"content\": \"4\"".into(),
    }])
    .await;
    let err = ollama(&server.base).chat(&request()).await.unwrap_err();
    match &err {
        LlmError::MalformedBody { reason, body } => {
            assert!(reason.contains("not an Ollama chat reply"), "{reason}");
            assert!(body.contains("\"content\""), "{body}");
        }
        other => panic!("expected MalformedBody, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn ollama_malformed_stream_line() {
    let server = serve(vec![Reply::Chunks {
        content_type: "application/x-ndjson",
        chunks: vec!["{\"message\":{\"content\":\"a\"},\"done\":false}\nnot json\n".into()],
        gap: Duration::ZERO,
    }])
    .await;
    let items = stream_items(&ollama(&server.base), &request()).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().content, "a");
    assert!(
        matches!(&items[1], Err(LlmError::MalformedBody { .. })),
        "{:?}",
        items[1]
    );
}

#[tokio::test]
async fn ollama_error_line_mid_stream() {
    let server = serve(vec![Reply::Chunks {
        content_type: "application/x-ndjson",
        chunks: vec!["{\"error\":\"model runner crashed\"}\n".into()],
        gap: Duration::ZERO,
    }])
    .await;
    let err = collect_stream(ollama(&server.base).chat_stream(&request()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Stream { reason } if reason.contains("model runner crashed")),
        "{err:?}"
    );
}

#[tokio::test]
async fn ollama_429_retry_after_is_honoured() {
    let server = serve(vec![
        Reply::Raw {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: "{\"error\":\"too many requests\"}".into(),
        },
        Reply::Json(200, ollama_reply("4")),
    ])
    .await;
    let reply = ollama(&server.base).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "4");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(waited < Duration::from_secs(3), "retried after {waited:?}");
}

#[tokio::test]
async fn ollama_retry_after_is_capped() {
    let server = serve(vec![
        Reply::Raw {
            status: 503,
            headers: vec![("retry-after", "3600".into())],
            body: "busy".into(),
        },
        Reply::Json(200, ollama_reply("4")),
    ])
    .await;
    let client = OllamaClient::builder()
        .base_url(&server.base)
        .backoff(Duration::from_millis(5), Duration::from_millis(5))
        .max_retry_after(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    client.chat(&request()).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn ollama_500_then_success_is_retried() {
    let server = serve(vec![
        Reply::Raw {
            status: 500,
            headers: vec![],
            body: "internal error".into(),
        },
        Reply::Json(200, ollama_reply("4")),
    ])
    .await;
    let reply = ollama(&server.base).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "4");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn ollama_500_always_exhausts_retries() {
    let server = serve(vec![Reply::Raw {
        status: 500,
        headers: vec![],
        body: "{\"error\":\"llama runner process has terminated\"}".into(),
    }])
    .await;
    let err = ollama(&server.base).chat(&request()).await.unwrap_err();
    match &err {
        LlmError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(
                matches!(&**last, LlmError::Status { status: 500, body, .. } if body.contains("terminated")),
                "{last:?}"
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(err.to_string().contains("3 attempts"), "{err}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn ollama_404_is_not_retried() {
    let server = serve(vec![Reply::Json(
        404,
        json!({"error": "model \"nope\" not found, try pulling it first"}),
    )])
    .await;
    let err = ollama(&server.base).chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Status { status: 404, body, retry_after: None, .. } if body.contains("not found")),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

/// A base URL copied from an OpenAI-style setup (`…/v1`) still reaches Ollama's native
/// `/api/chat`, as do the plain address and either with a trailing `/`.
#[tokio::test]
async fn ollama_base_url_with_v1_reaches_the_native_api() {
    let server = serve(vec![Reply::Json(200, ollama_reply("4"))]).await;
    for suffix in ["", "/", "/v1", "/v1/", "/v1//"] {
        let base = format!("{}{suffix}", server.base);
        let client = ollama(&base);
        let reply = client.chat(&request()).await;
        assert_eq!(reply.unwrap().content, "4", "base {base:?}");
        let streamed = collect_stream(client.chat_stream(&request())).await;
        assert_eq!(streamed.unwrap().content, "4", "base {base:?} (streaming)");
        assert_eq!(client.base_url(), server.base, "base {base:?}");
    }
    let paths: Vec<String> = server.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, vec!["/api/chat"; 10]);
}

#[tokio::test]
async fn ollama_connection_cut_mid_stream() {
    let (base, connections) = raw_server(concat!(
        "HTTP/1.1 200 OK\r\n",
        "content-type: application/x-ndjson\r\n",
        "transfer-encoding: chunked\r\n\r\n",
        "2b\r\n",
        "{\"message\":{\"content\":\"Hel\"},\"done\":false}\n\r\n",
    ))
    .await;
    let client = ollama(&base);
    let items = stream_items(&client, &request()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().content, "Hel");
    assert!(
        matches!(&items[1], Err(LlmError::Stream { .. })),
        "{:?}",
        items[1]
    );
    // A stream is not restarted once text was handed out.
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ollama_connection_cut_mid_body() {
    let (base, connections) = raw_server(concat!(
        "HTTP/1.1 200 OK\r\n",
        "content-type: application/json\r\n",
        "content-length: 400\r\n\r\n",
        "{\"model\":\"qwen3:8b\",\"message\":{\"role\":\"assis",
    ))
    .await;
    let no_retry = OllamaClient::builder()
        .base_url(&base)
        .max_retries(0)
        .build()
        .unwrap();
    let err = no_retry.chat(&request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Stream { .. }), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    let err = ollama(&base).chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::RetriesExhausted { attempts: 3, last } if matches!(**last, LlmError::Stream { .. })),
        "{err:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn ollama_slow_server_times_out() {
    let server = serve(vec![Reply::Slow(Duration::from_secs(10))]).await;
    let client = OllamaClient::builder()
        .base_url(&server.base)
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Timeout { after, .. } if *after == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Streaming: no headers within the timeout.
    let err = collect_stream(client.chat_stream(&request()))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn ollama_stream_stalls_past_the_timeout() {
    let server = serve(vec![Reply::Chunks {
        content_type: "application/x-ndjson",
        chunks: vec![
            "{\"message\":{\"content\":\"a\"},\"done\":false}\n".into(),
            "{\"message\":{\"content\":\"b\"},\"done\":false}\n".into(),
        ],
        gap: Duration::from_millis(400),
    }])
    .await;
    let client = OllamaClient::builder()
        .base_url(&server.base)
        .timeout(Duration::from_millis(150))
        .max_retries(0)
        .build()
        .unwrap();
    let err = collect_stream(client.chat_stream(&request()))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    let base = dead_address().await;
    let err = OllamaClient::builder()
        .base_url(&base)
        .max_retries(1)
        .backoff(Duration::from_millis(5), Duration::from_millis(5))
        .build()
        .unwrap()
        .chat(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::RetriesExhausted { attempts: 2, last } if matches!(**last, LlmError::Connect { .. })),
        "{err:?}"
    );
    assert!(matches!(err.last(), LlmError::Connect { .. }));

    let err = OpenAiClient::builder()
        .base_url(&base)
        .no_api_key()
        .max_retries(0)
        .build()
        .unwrap()
        .chat(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn ollama_structured_schema_and_parse() {
    let server = serve(vec![Reply::Json(
        200,
        ollama_reply("{\"answer\": 4, \"confidence\": \"high\"}"),
    )])
    .await;
    let agent = agent(Arc::new(ollama(&server.base)));
    let result = agent.run_structured::<Answer>("2 + 2?").await.unwrap();
    assert_eq!(
        result.value,
        Answer {
            answer: 4,
            confidence: "high".into()
        }
    );
    assert_eq!(result.attempts, 1);
    let body = &server.requests()[0].body;
    assert_eq!(body["format"], answer_schema());
    assert_eq!(body["think"], false);
}

#[tokio::test]
async fn ollama_reply_not_matching_schema_is_retried_once_then_typed() {
    let server = serve(vec![Reply::Json(
        200,
        ollama_reply("{\"answer\": \"four\"}"),
    )])
    .await;
    let agent = agent(Arc::new(ollama(&server.base)));
    let err = agent.run_structured::<Answer>("2 + 2?").await.unwrap_err();
    match &err {
        AgentError::WrongShape {
            raw,
            error,
            attempts,
            usage,
            ..
        } => {
            assert_eq!(raw, "{\"answer\": \"four\"}");
            assert_eq!(*attempts, 2);
            assert!(error.contains("invalid type"), "{error}");
            assert_eq!(usage.prompt_tokens, 52, "usage summed over both attempts");
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "exactly one retry");
    let retry_messages = seen[1].body["messages"].as_array().unwrap();
    let correction = retry_messages.last().unwrap();
    assert_eq!(correction["role"], "user");
    assert!(
        correction["content"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{correction}"
    );
    assert_eq!(seen[1].body["format"], answer_schema());

    let degraded = agent
        .run_structured_or_default::<Answer>("2 + 2?")
        .await
        .unwrap();
    assert!(degraded.degraded);
    assert_eq!(degraded.value, Answer::default());
    assert_eq!(degraded.raw, "{\"answer\": \"four\"}");
    assert!(degraded.error.unwrap().to_string().contains("invalid type"));
    assert_eq!(server.requests().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_reply_and_request_body() {
    let server = serve(vec![Reply::Json(200, openai_reply("4"))]).await;
    let client = openai(&server.base);
    let req = request()
        .with_temperature(0.5)
        .with_max_tokens(32)
        .with_schema(answer_schema());
    let reply = client.chat(&req).await.unwrap();
    assert_eq!(reply.content, "4");
    assert_eq!(reply.usage.prompt_tokens, 12);
    assert_eq!(reply.usage.completion_tokens, 3);
    assert_eq!(reply.model, "gpt-test");

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer test-key");
    let body = &seen[0].body;
    assert_eq!(body["model"], "qwen3:8b");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "2 + 2?"})
    );
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 32);
    assert_eq!(body["stream"], false);
    assert!(body.get("think").is_none());
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(
        format["json_schema"]["name"], "Answer",
        "the type's schema title"
    );
    assert_eq!(format["json_schema"]["strict"], true);
    let sent = &format["json_schema"]["schema"];
    let schema = answer_schema();
    assert_eq!(sent["properties"], schema["properties"]);
    assert_eq!(
        sent["additionalProperties"], false,
        "strict mode closes objects"
    );
    let mut required: Vec<&str> = sent["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["answer", "confidence"]);
}

/// A type whose schema title holds characters OpenAI refuses in `json_schema.name`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "final answer: v2 (é)")]
#[allow(dead_code)]
struct Titled {
    answer: String,
}

/// `response_format.json_schema.name` is the schema's title (the Rust type's name, or its
/// `#[schemars(title)]`), sanitised to `^[a-zA-Z0-9_-]{1,64}$`; `reply` when there is none.
#[tokio::test]
async fn openai_schema_name_is_the_types_title_sanitised() {
    let server = serve(vec![Reply::Json(200, openai_reply("{}"))]).await;
    let client = openai(&server.base);
    let long_title = format!("{}-tail", "x".repeat(70));
    let schemas = [
        answer_schema(),
        Value::from(schemars::schema_for!(Titled)),
        json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        json!({"title": "", "type": "object"}),
        json!({"title": 7, "type": "object"}),
        json!({"title": long_title, "type": "object"}),
        json!({"title": "ok_Name-1", "type": "object"}),
    ];
    for schema in &schemas {
        client
            .chat(&request().with_schema(schema.clone()))
            .await
            .unwrap();
    }
    let names: Vec<String> = server
        .requests()
        .iter()
        .map(|s| {
            s.body["response_format"]["json_schema"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "Answer".to_string(),
            "final_answer__v2____".to_string(),
            "reply".to_string(),
            "reply".to_string(),
            "reply".to_string(),
            "x".repeat(64),
            "ok_Name-1".to_string(),
        ]
    );
    for name in &names {
        assert!(
            (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn openai_non_strict_schema_is_sent_as_is() {
    let server = serve(vec![Reply::Json(200, openai_reply("{}"))]).await;
    let client = OpenAiClient::builder()
        .base_url(format!("{}/v1/", server.base))
        .no_api_key()
        .strict_schema(false)
        .build()
        .unwrap();
    client
        .chat(&request().with_schema(answer_schema()))
        .await
        .unwrap();
    let seen = server.requests();
    let format = &seen[0].body["response_format"]["json_schema"];
    assert_eq!(format["schema"], answer_schema());
    assert_eq!(format["strict"], false);
    assert!(seen[0].headers.get("authorization").is_none());
    assert!(seen[0].body.get("response_format").is_some());
}

#[tokio::test]
async fn openai_api_key_from_the_environment() {
    // Cargo sets CARGO_PKG_NAME for test processes; reading it avoids mutating the environment.
    let server = serve(vec![Reply::Json(200, openai_reply("ok"))]).await;
    let client = OpenAiClient::builder()
        .base_url(&server.base)
        .api_key_env("CARGO_PKG_NAME")
        .build()
        .unwrap();
    client.chat(&request()).await.unwrap();
    let expected = format!("Bearer {}", std::env::var("CARGO_PKG_NAME").unwrap());
    assert_eq!(
        server.requests()[0].headers["authorization"],
        expected.as_str()
    );
    assert!(
        !format!("{client:?}").contains("orchflow-agent"),
        "Debug hides the key"
    );

    let err = OpenAiClient::builder()
        .base_url(&server.base)
        .api_key_env("ORCHFLOW_TEST_KEY_THAT_IS_NOT_SET")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::MissingApiKey { var } if var == "ORCHFLOW_TEST_KEY_THAT_IS_NOT_SET"),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_streaming_reply() {
    let sse = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-test\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"model\":\"gpt-test\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"model\":\"gpt-test\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo ✓\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"model\":\"gpt-test\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
        "data: [DONE]\n\n",
    );
    let server = serve(vec![Reply::Chunks {
        content_type: "text/event-stream",
        // 7-byte pieces: lines, events and the 3-byte ✓ are all split across reads.
        chunks: pieces(sse, 7),
        gap: Duration::from_millis(1),
    }])
    .await;
    let client = openai(&server.base);
    let req = request();
    let items = stream_items(&client, &req).await;
    let chunks: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    let texts: Vec<&str> = chunks.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(texts, ["Hel", "lo ✓", ""]);
    assert!(chunks.last().unwrap().done);

    let reply = collect_stream(client.chat_stream(&req)).await.unwrap();
    assert_eq!(reply.content, "Hello ✓");
    assert_eq!(reply.usage.prompt_tokens, 9);
    assert_eq!(reply.usage.completion_tokens, 2);
    assert_eq!(reply.model, "gpt-test");

    let body = &server.requests()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn openai_stream_without_done_is_a_stream_error() {
    let server = serve(vec![Reply::Chunks {
        content_type: "text/event-stream",
        chunks: vec!["data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n".into()],
        gap: Duration::ZERO,
    }])
    .await;
    let err = collect_stream(openai(&server.base).chat_stream(&request()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Stream { reason } if reason.contains("[DONE]")),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_connection_cut_mid_stream() {
    let (base, connections) = raw_server(concat!(
        "HTTP/1.1 200 OK\r\n",
        "content-type: text/event-stream\r\n",
        "transfer-encoding: chunked\r\n\r\n",
        "31\r\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\r\n",
    ))
    .await;
    let items = stream_items(&openai(&base), &request()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().content, "Hel");
    assert!(
        matches!(&items[1], Err(LlmError::Stream { .. })),
        "{:?}",
        items[1]
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn openai_malformed_bodies() {
    let server = serve(vec![
        Reply::Raw {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: "<html>gateway says hi</html>".into(),
        },
        Reply::Json(200, json!({"id": "x", "choices": []})),
        Reply::Json(
            200,
            json!({"error": {"message": "context length exceeded"}}),
        ),
    ])
    .await;
    let client = openai(&server.base);
    for expected in [
        "not an OpenAI chat completion",
        "no choices",
        "context length exceeded",
    ] {
        let err = client.chat(&request()).await.unwrap_err();
        assert!(
            matches!(&err, LlmError::MalformedBody { reason, .. } if reason.contains(expected)),
            "{err:?}"
        );
    }
    assert_eq!(
        server.requests().len(),
        3,
        "malformed bodies are not retried"
    );
}

#[tokio::test]
async fn openai_503_retry_after_is_honoured() {
    let server = serve(vec![
        Reply::Raw {
            status: 503,
            headers: vec![("retry-after", "1".into())],
            body: "{\"error\":{\"message\":\"overloaded\"}}".into(),
        },
        Reply::Json(200, openai_reply("4")),
    ])
    .await;
    let reply = openai(&server.base).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "4");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(waited < Duration::from_secs(3), "retried after {waited:?}");
}

#[tokio::test]
async fn openai_429_then_500_then_success() {
    let server = serve(vec![
        Reply::Raw {
            status: 429,
            headers: vec![("retry-after", "0.05".into())],
            body: "slow down".into(),
        },
        Reply::Raw {
            status: 502,
            headers: vec![],
            body: "bad gateway".into(),
        },
        Reply::Json(200, openai_reply("done")),
    ])
    .await;
    let reply = openai(&server.base).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "done");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn openai_500_always_exhausts_retries() {
    let server = serve(vec![Reply::Raw {
        status: 500,
        headers: vec![],
        body: "x".repeat(10_000),
    }])
    .await;
    let err = openai(&server.base).chat(&request()).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts, last } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert_eq!(*attempts, 3);
    let LlmError::Status { status, body, .. } = &**last else {
        panic!("expected Status, got {last:?}");
    };
    assert_eq!(*status, 500);
    assert!(body.len() < 1_000, "the body is shortened");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn openai_401_is_not_retried() {
    let server = serve(vec![Reply::Json(
        401,
        json!({"error": {"message": "Incorrect API key provided"}}),
    )])
    .await;
    let err = openai(&server.base).chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Status { status: 401, body, .. } if body.contains("Incorrect API key")),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn openai_slow_server_times_out() {
    let server = serve(vec![Reply::Slow(Duration::from_secs(10))]).await;
    let client = OpenAiClient::builder()
        .base_url(&server.base)
        .no_api_key()
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .backoff(Duration::from_millis(5), Duration::from_millis(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::RetriesExhausted { attempts: 2, last } if matches!(**last, LlmError::Timeout { .. })),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn openai_think_block_removed_when_think_false() {
    let server = serve(vec![Reply::Json(
        200,
        openai_reply("<think>2+2=4, easy</think>\n4"),
    )])
    .await;
    let client = openai(&server.base);
    let reply = client.chat(&request().with_think(false)).await.unwrap();
    assert_eq!(reply.content, "4");
    let reply = client.chat(&request()).await.unwrap();
    assert!(
        reply.content.starts_with("<think>"),
        "untouched unless think is false"
    );
}

#[tokio::test]
async fn openai_reply_not_matching_schema_is_retried_once_then_degrades() {
    let server = serve(vec![
        Reply::Json(200, openai_reply("I think the answer is four.")),
        Reply::Json(200, openai_reply("Sorry: {\"answer\": 4}")),
    ])
    .await;
    let agent = agent(Arc::new(openai(&server.base)));
    let err = agent.run_structured::<Answer>("2 + 2?").await.unwrap_err();
    let AgentError::WrongShape {
        raw,
        error,
        attempts,
        ..
    } = &err
    else {
        panic!("expected WrongShape, got {err:?}");
    };
    assert_eq!(raw, "Sorry: {\"answer\": 4}");
    assert!(error.contains("missing field `confidence`"), "{error}");
    assert_eq!(*attempts, 2);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let messages = seen[1].body["messages"].as_array().unwrap();
    assert_eq!(messages[messages.len() - 2]["role"], "assistant");
    assert_eq!(
        messages[messages.len() - 2]["content"],
        "I think the answer is four."
    );
    assert!(seen[1].body["response_format"].is_object());

    let fallback = agent
        .run_structured_or_else("2 + 2?", || Answer {
            answer: 0,
            confidence: "none".into(),
        })
        .await
        .unwrap();
    assert!(fallback.degraded);
    assert_eq!(fallback.value.confidence, "none");
    assert_eq!(fallback.attempts, 2);
    assert_eq!(fallback.usage.prompt_tokens, 24);
}
