//! `orchflow serve` over HTTP: the real server on 127.0.0.1:0, a real client.

mod common;

use common::server::{get, local, open, post, start};

use orchflow::store::{CheckpointStore, RunQuery, RunStatus};
use orchflow::{SqliteStore, flow, step};
use orchflow_cli::Bundle;
use orchflow_cli::serve::{Source, bind};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Reads server-sent events from `response` until `stop` says so or `limit` passes; returns
/// them as (event, id, data) with the time each arrived.
async fn read_events(
    response: &mut reqwest::Response,
    limit: Duration,
    mut stop: impl FnMut(&(String, Option<String>, Value)) -> bool,
) -> Vec<((String, Option<String>, Value), Instant)> {
    let deadline = Instant::now() + limit;
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut name, mut id, mut data) = (String::from("message"), None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let event = (
                name,
                id,
                serde_json::from_str(&data).expect("event data is JSON"),
            );
            let done = stop(&event);
            events.push((event, Instant::now()));
            if done {
                return events;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return events,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_in_pages_with_counts_over_a_thousand_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let sqlite = SqliteStore::open(&path).expect("open");
    let (completed, _, suspended) = common::make_runs(&sqlite).await;
    sqlite.flush().await.expect("flush");
    let f = flow! { #[flow(name = "bulk")] common::double };
    let durable = f.durable(sqlite.clone());
    // Submitted concurrently, so that the store's group commit takes them in batches.
    let submits = (0..1_050u32).map(|i| durable.submit(i));
    for done in futures_util::future::join_all(submits).await {
        done.expect("submit");
    }
    sqlite.flush().await.expect("flush");
    let server = start(Source::Store(open(&path).await), local()).await;
    let client = reqwest::Client::new();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(c) => server.url(&format!("/api/runs?limit=500&after={c}")),
            None => server.url("/api/runs?limit=500"),
        };
        let (status, page) = get(&client, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let runs = page["runs"].as_array().expect("runs");
        assert!(runs.len() <= 500);
        assert_eq!(page["counts"]["queued"], 1_050, "{}", page["counts"]);
        assert_eq!(page["counts"]["completed"], 1);
        assert_eq!(page["counts"]["suspended"], 1);
        seen.extend(runs.iter().map(|r| {
            (
                r["created_at"].as_str().unwrap_or("").to_string(),
                r["run_id"].as_str().unwrap_or("").to_string(),
            )
        }));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 1_053);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, across pages");
    sorted.dedup();
    assert_eq!(sorted.len(), 1_053, "no run twice");
    assert_eq!(
        seen.last().map(|s| s.1.clone()),
        Some(completed.to_string())
    );

    // Filters and search; counts follow the flow/text filters, not the status.
    let (_, page) = get(&client, &server.url("/api/runs?status=suspended&flow=")).await;
    assert_eq!(page["runs"][0]["run_id"], suspended.to_string());
    assert_eq!(page["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["counts"]["queued"], 1_050);
    let (_, page) = get(&client, &server.url("/api/runs?q=pric")).await;
    assert_eq!(page["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["counts"]["queued"], 0);
    let prefix = &completed.to_string()[..8];
    let (_, page) = get(&client, &server.url(&format!("/api/runs?q={prefix}"))).await;
    assert_eq!(page["runs"][0]["run_id"], completed.to_string());
    let (_, page) = get(&client, &server.url("/api/runs")).await;
    assert_eq!(
        page["runs"].as_array().map(Vec::len),
        Some(50),
        "default limit"
    );
    let (_, page) = get(&client, &server.url("/api/runs?limit=100000")).await;
    assert_eq!(
        page["runs"].as_array().map(Vec::len),
        Some(500),
        "max limit"
    );

    for bad in ["status=done", "limit=x", "since=yesterday", "after=zzz"] {
        let (status, body) = get(&client, &server.url(&format!("/api/runs?{bad}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_its_graph_its_journal_and_its_recorded_events() {
    let f = common::fixture_async().await;
    let server = start(Source::Store(open(&f.path).await), local()).await;
    let client = reqwest::Client::new();

    let (status, info) = get(&client, &server.url("/api/info")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["live"], true);
    assert_eq!(info["bundle"], false);
    assert!(
        info["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("sqlite:"))
    );

    let (status, run) = get(&client, &server.url(&format!("/api/runs/{}", f.completed))).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["document"]["status"], "completed");
    assert_eq!(run["graph"]["name"], "pricing");
    let labels: Vec<&str> = run["graph"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["label"].as_str())
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(run["graph"]["fingerprint"], run["document"]["fingerprint"]);

    let missing = uuid::Uuid::new_v4();
    let (status, body) = get(&client, &server.url(&format!("/api/runs/{missing}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("no run")));
    let (status, _) = get(&client, &server.url("/api/runs/xyz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get(&client, &server.url("/api/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());

    let (status, journal) = get(
        &client,
        &server.url(&format!("/api/runs/{}/journal", f.failed)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let entries = journal.as_array().expect("entries");
    let traces: usize = entries
        .iter()
        .map(|e| e["traces"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(traces, 3, "every attempt of the failed run: {journal}");
    let (_, later) = get(
        &client,
        &server.url(&format!("/api/runs/{}/journal?after=1", f.completed)),
    )
    .await;
    assert!(
        later
            .as_array()
            .is_some_and(|l| l.iter().all(|e| e["seq"].as_u64() > Some(1)))
    );

    // The recording: the document, every entry with its seq as id, the end.
    let all = get(
        &client,
        &server.url(&format!("/api/runs/{}/journal", f.completed)),
    )
    .await
    .1;
    let count = all.as_array().map_or(0, Vec::len);
    assert!(count >= 2, "{all}");
    let mut response = client
        .get(server.url(&format!("/api/runs/{}/events", f.completed)))
        .send()
        .await
        .expect("events");
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let events = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    let names: Vec<&str> = events.iter().map(|((n, _, _), _)| n.as_str()).collect();
    let mut expected = vec!["document"];
    expected.extend(std::iter::repeat_n("entry", count));
    expected.push("end");
    assert_eq!(names, expected);
    let ids: Vec<String> = events
        .iter()
        .filter_map(|((_, id, _), _)| id.clone())
        .collect();
    let want: Vec<String> = (1..=count).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    assert_eq!(events[0].0.2["status"], "completed");

    // Resuming after entry 1, by header and by query.
    let mut response = client
        .get(server.url(&format!("/api/runs/{}/events", f.completed)))
        .header("last-event-id", "1")
        .send()
        .await
        .expect("events");
    let events = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    let ids: Vec<String> = events
        .iter()
        .filter_map(|((_, id, _), _)| id.clone())
        .collect();
    assert_eq!(ids, want[1..]);
    let mut response = client
        .get(server.url(&format!("/api/runs/{}/events?after={count}", f.completed)))
        .send()
        .await
        .expect("events");
    let events = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    let names: Vec<&str> = events.iter().map(|((n, _, _), _)| n.as_str()).collect();
    assert_eq!(names, ["document", "end"]);

    // Once listed, a run is read without its journal: the same answers.
    let (status, _) = get(&client, &server.url("/api/runs")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = get(&client, &server.url(&format!("/api/runs/{}", f.completed))).await;
    assert_eq!(listed, run);
    let mut response = client
        .get(server.url(&format!("/api/runs/{}/events", f.completed)))
        .header("last-event-id", "1")
        .send()
        .await
        .expect("events");
    let events = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    let names: Vec<&str> = events.iter().map(|((n, _, _), _)| n.as_str()).collect();
    let mut expected = vec!["document"];
    expected.extend(std::iter::repeat_n("entry", count - 1));
    expected.push("end");
    assert_eq!(names, expected);

    // The page and its assets.
    let page = client.get(server.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let js = client
        .get(server.url("/assets/app.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/javascript"))
    );
    let etag = js.headers()["etag"].clone();
    let again = client
        .get(server.url("/assets/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("js");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let (status, _) = get(&client, &server.url("/assets/nope.js")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A foreign Host (DNS rebinding) is refused by a loopback server without a token.
    let r = client
        .get(server.url("/api/info"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

static GATE: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[step]
async fn first(x: u32) -> u32 {
    x + 1
}

#[step]
async fn gated(x: u32) -> u32 {
    GATE.notified().await;
    x * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_streams_its_new_entries_within_200_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let sqlite = SqliteStore::open(&path).expect("open");
    let server = start(Source::Store(open(&path).await), local()).await;
    let client = reqwest::Client::new();

    let writer = sqlite.clone();
    let run = tokio::spawn(async move {
        flow! { #[flow(name = "live")] first => gated }
            .durable(writer)
            .run(1)
            .await
    });
    // The run appears, running, with its first entry (after `first`).
    let deadline = Instant::now() + Duration::from_secs(5);
    let run_id = loop {
        let listing = sqlite
            .list_runs(&RunQuery::new().flow("live"))
            .await
            .expect("list");
        if let Some(d) = listing.runs.first() {
            let journal = sqlite.journal(d.run_id, 0).await.expect("journal");
            if journal.is_some_and(|j| !j.is_empty()) {
                break d.run_id;
            }
        }
        assert!(Instant::now() < deadline, "the run did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let mut response = client
        .get(server.url(&format!("/api/runs/{run_id}/events")))
        .send()
        .await
        .expect("events");
    let before = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "entry").await;
    assert_eq!(before[0].0.0, "document");
    assert_eq!(before[0].0.2["status"], "running");
    assert_eq!(
        before.last().map(|e| e.0.1.clone()),
        Some(Some("1".to_string()))
    );

    // Let the run finish: its next entry must arrive within 200 ms.
    let released = Instant::now();
    GATE.notify_one();
    let after = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    let entry = after
        .iter()
        .find(|(e, _)| e.0 == "entry")
        .expect("the run's next entry");
    let latency = entry.1 - released;
    assert!(
        latency < Duration::from_millis(200),
        "entry after {latency:?}"
    );
    assert_eq!(entry.0.1.as_deref(), Some("2"));
    let last_document = after
        .iter()
        .rev()
        .find(|(e, _)| e.0 == "document")
        .expect("the finished document");
    assert_eq!(last_document.0.2["status"], "completed");
    assert_eq!(after.last().map(|e| e.0.0.as_str()), Some("end"));
    let done = run.await.expect("run");
    assert_eq!(done.output, Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_set() {
    let f = common::fixture_async().await;
    let options = local().token("s3cret");
    let server = start(Source::Store(open(&f.path).await), options).await;
    let client = reqwest::Client::new();

    let (status, body) = get(&client, &server.url("/api/info")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("token")));
    let (status, _) = get(&client, &server.url("/api/runs")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = client
        .get(server.url("/api/info"))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .get(server.url("/api/info"))
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);

    // Visiting /?token=T sets the cookie and sends the browser back to /.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirects
        .get(server.url("/?token=s3cret"))
        .send()
        .await
        .expect("send");
    assert!(r.status().is_redirection(), "{}", r.status());
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(cookie.starts_with("orchflow_token=s3cret"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = client
        .get(server.url("/api/info"))
        .header("cookie", "orchflow_token=s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = no_redirects
        .get(server.url("/?token=nope"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The page itself needs no token; the API does.
    let r = client.get(server.url("/")).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_resuming_and_cancelling_from_the_api() {
    let f = common::fixture_async().await;
    let store = open(&f.path).await;
    let server = start(Source::Store(store.clone()), local()).await;
    let client = reqwest::Client::new();

    // Listed first, so that the server reads these runs' documents without their journals.
    let (status, _) = get(&client, &server.url("/api/runs")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, questions) = get(&client, &server.url("/api/questions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(questions.as_array().map(Vec::len), Some(1), "{questions}");
    assert_eq!(questions[0]["run_id"], f.suspended.to_string());
    assert_eq!(questions[0]["flow"], "publish");
    assert_eq!(questions[0]["pending"]["question"], "review");
    assert_eq!(questions[0]["pending"]["prompt"], "publish post?");
    let (_, none) = get(&client, &server.url("/api/questions?flow=pricing")).await;
    assert_eq!(none.as_array().map(Vec::len), Some(0));

    let answer = server.url(&format!("/api/runs/{}/answer", f.suspended));
    // Not JSON: refused before anything happens (no form posts).
    let r = client
        .post(&answer)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("text=yes")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = post(&client, &answer, &"x".repeat(70_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = post(&client, &answer, r#"{"text": 3}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(&client, &answer, r#"{"question": "other", "text": "yes"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("other")),
        "{body}"
    );

    let (status, body) = post(&client, &answer, r#"{"question": null, "text": "yes"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "queued");
    let saved = store
        .checkpoints()
        .load(f.suspended)
        .await
        .expect("load")
        .expect("run");
    assert_eq!(saved.document.status, RunStatus::Queued);
    assert!(saved.document.pending.is_empty());
    let (_, run) = get(&client, &server.url(&format!("/api/runs/{}", f.suspended))).await;
    assert_eq!(
        run["document"]["status"], "queued",
        "the current document, not a stale one"
    );
    let (status, body) = post(&client, &answer, r#"{"text": "again"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let missing = uuid::Uuid::new_v4();
    let (status, _) = post(
        &client,
        &server.url(&format!("/api/runs/{missing}/answer")),
        r#"{"text": "x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = post(
        &client,
        &server.url(&format!("/api/runs/{}/resume", f.failed)),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "queued");
    let (status, body) = post(
        &client,
        &server.url(&format!("/api/runs/{}/resume", f.completed)),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = post(
        &client,
        &server.url(&format!("/api/runs/{}/cancel", f.failed)),
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["previous"], "queued");
    let (_, run) = get(&client, &server.url(&format!("/api/runs/{}", f.failed))).await;
    assert_eq!(run["document"]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_round_trips_and_is_served_with_no_store() {
    let f = common::fixture_async().await;
    let server = start(Source::Store(open(&f.path).await), local()).await;
    let client = reqwest::Client::new();
    let r = client
        .get(server.url(&format!("/api/runs/{}/export", f.failed)))
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let text = r.text().await.expect("body");
    let bundle = Bundle::from_json(&text, "export").expect("bundle");
    let (_, journal) = get(
        &client,
        &server.url(&format!("/api/runs/{}/journal", f.failed)),
    )
    .await;
    assert_eq!(serde_json::to_value(&bundle.journal).ok(), Some(journal));
    assert_eq!(
        bundle.graph.as_ref().map(|g| g.name.to_string()),
        Some("sync".into())
    );
    drop(server);

    // `orchflow serve --bundle FILE`, the real binary, with no store at all.
    let file = f.dir.path().join("failed.json");
    std::fs::write(&file, &text).expect("write");
    std::fs::remove_file(&f.path).expect("no store left");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(["serve", "--bind", "127.0.0.1:0", "--bundle"])
        .arg(&file)
        .env_remove("ORCHFLOW_STORE")
        .env_remove("ORCHFLOW_TOKEN")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the address in time")
        .expect("read")
        .expect("a line");
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("an address")
        .trim_end_matches('/')
        .to_string();

    let (status, info) = get(&client, &format!("{base}/api/info")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["bundle"], true);
    assert_eq!(info["live"], false);
    let (_, runs) = get(&client, &format!("{base}/api/runs")).await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(runs["runs"][0]["run_id"], f.failed.to_string());
    assert_eq!(runs["counts"]["failed"], 1);
    let (_, run) = get(&client, &format!("{base}/api/runs/{}", f.failed)).await;
    assert_eq!(run["graph"]["name"], "sync");
    let (_, journal) = get(&client, &format!("{base}/api/runs/{}/journal", f.failed)).await;
    assert_eq!(serde_json::to_value(&bundle.journal).ok(), Some(journal));
    let mut response = client
        .get(format!("{base}/api/runs/{}/events", f.failed))
        .send()
        .await
        .expect("events");
    let events = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "end").await;
    assert_eq!(events.len(), 2 + bundle.journal.len());
    let (status, _) = get(&client, &format!("{base}/api/runs/{}", f.completed)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = post(&client, &format!("{base}/api/runs/{}/resume", f.failed), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, exported) = get(&client, &format!("{base}/api/runs/{}/export", f.failed)).await;
    assert_eq!(
        Bundle::from_json(&exported.to_string(), "again").ok(),
        Some(bundle)
    );
    // SIGTERM stops it gracefully: exit code 0.
    let pid = child.id().expect("the server's pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the server stops on SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_ends_its_open_event_streams() {
    let f = common::fixture_async().await;
    let server = bind(Source::Store(open(&f.path).await), local())
        .await
        .expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    // A suspended run's stream stays open: the run may be answered and go on.
    let mut response = client
        .get(format!("http://{addr}/api/runs/{}/events", f.suspended))
        .send()
        .await
        .expect("events");
    let first = read_events(&mut response, Duration::from_secs(5), |e| e.0 == "entry").await;
    assert!(first.iter().any(|(e, _)| e.0 == "document"));
    let quiet = read_events(&mut response, Duration::from_millis(300), |_| true).await;
    assert!(quiet.is_empty(), "nothing more while the run waits");

    let asked = Instant::now();
    stop.send(()).expect("stop");
    let done = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server stops with a stream open")
        .expect("task");
    assert!(done.is_ok(), "{done:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    let rest = tokio::time::timeout(Duration::from_secs(1), response.chunk()).await;
    assert!(
        matches!(rest, Ok(Ok(None)) | Ok(Err(_))),
        "the stream ended: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_question_shows_its_schema_and_why_an_answer_was_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let sqlite = SqliteStore::open(&path).expect("open");
    let amount =
        orchflow::human::ask_typed::<u32, _, _>("amount", |p: &String| format!("how many {p}?"));
    let f = flow! { #[flow(name = "order")] (amount) }.with_input(orchflow::human::Suspend);
    let first = f.durable(sqlite.clone()).run("crates".to_string()).await;
    sqlite.flush().await.expect("flush");
    let server = start(Source::Store(open(&path).await), local()).await;
    let client = reqwest::Client::new();

    let (_, questions) = get(&client, &server.url("/api/questions")).await;
    assert_eq!(questions[0]["pending"]["prompt"], "how many crates?");
    assert_eq!(
        questions[0]["pending"]["schema"]["type"], "integer",
        "{questions}"
    );
    assert!(questions[0]["pending"].get("error").is_none());

    // An answer that is not a u32 is taken, and refused when the run goes on.
    let answer = server.url(&format!("/api/runs/{}/answer", first.run_id));
    let (status, body) = post(
        &client,
        &answer,
        r#"{"question": "amount", "text": "lots"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = f
        .durable(sqlite.clone())
        .resume(first.run_id)
        .await
        .expect("resume");
    assert!(again.output.is_none());
    sqlite.flush().await.expect("flush");
    let (_, run) = get(&client, &server.url(&format!("/api/runs/{}", first.run_id))).await;
    assert_eq!(run["document"]["status"], "suspended");
    let error = run["document"]["pending"][0]["error"]
        .as_str()
        .unwrap_or("");
    assert!(error.contains("lots"), "{run}");

    let (status, body) = post(&client, &answer, r#"{"question": null, "text": "12"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = f
        .durable(sqlite.clone())
        .resume(first.run_id)
        .await
        .expect("resume");
    assert_eq!(done.output.map(|a| a.answer), Some(12));
}
