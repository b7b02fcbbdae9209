//! `orchflow serve`'s replay and fork endpoints over HTTP: the real server with a build's flows
//! (or none), a real client.

mod common;

use common::server::{get, local, open, post, start};
use orchflow::flow;
use orchflow_cli::serve::Source;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// The fixture's `pricing` flow (`double => describe`), as the build serving has it.
fn pricing() -> orchflow::registry::Registry {
    orchflow::registry::Registry::new()
        .register(flow! { #[flow(name = "pricing")] common::double => common::describe })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_fork_need_flows_and_answer_with_reports_previews_and_new_runs() {
    let f = common::fixture_async().await;
    let store = open(&f.path).await;
    let client = reqwest::Client::new();
    let completed = f.completed.to_string();

    // The generic binary's server: no flows, so 501 for all three, and /api/info lists none.
    let bare = start(Source::Store(store.clone()), local()).await;
    let (status, info) = get(&client, &bare.url("/api/info")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["flows"], serde_json::json!([]));
    let (status, body) = get(&client, &bare.url(&format!("/api/runs/{completed}/replay"))).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("orchflow_cli::App::new(")),
        "{body}"
    );
    for path in ["fork/preview", "fork"] {
        let (status, body) = post(
            &client,
            &bare.url(&format!("/api/runs/{completed}/{path}")),
            r#"{"from": "describe"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{path}: {body}");
    }
    drop(bare);

    let server = start(Source::Store(store.clone()), local().flows(pricing())).await;
    let (_, info) = get(&client, &server.url("/api/info")).await;
    assert_eq!(info["flows"].as_array().map(Vec::len), Some(1), "{info}");
    assert_eq!(info["flows"][0]["name"], "pricing");
    let fingerprint = info["flows"][0]["fingerprint"].as_str().unwrap_or_default();
    assert_eq!(fingerprint.len(), 16, "{info}");

    // Replay: the library's report.
    let (status, report) = get(
        &client,
        &server.url(&format!("/api/runs/{completed}/replay")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "compatible", "{report}");
    assert_eq!(report["reused"], 2);
    assert_eq!(report["fingerprint"], fingerprint);
    assert_eq!(report["resume"], "finished");
    let (status, report) = get(
        &client,
        &server.url(&format!(
            "/api/runs/{completed}/replay?reexecute=double,describe"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "compatible", "{report}");
    assert_eq!(report["reexecuted"], 2, "{report}");
    // A step the flow does not have is refused, with the flow's steps.
    let (status, error) = get(
        &client,
        &server.url(&format!(
            "/api/runs/{completed}/replay?reexecute=double,tripple"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "cannot re-execute `tripple`: flow `pricing` has no such step; its steps: "
        ) && message.contains("double"),
        "{error}"
    );
    // A run of a flow this build lacks is a report, not an error.
    let (status, report) = get(
        &client,
        &server.url(&format!("/api/runs/{}/replay", f.failed)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["outcome"], "unreplayable");
    assert_eq!(report["reason"], "this build has no flow `sync`");
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = get(&client, &server.url(&format!("/api/runs/{unknown}/replay"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Preview: writes nothing.
    let preview_url = server.url(&format!("/api/runs/{completed}/fork/preview"));
    let (status, preview) = post(
        &client,
        &preview_url,
        r#"{"from": "describe@1", "input": 5}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["run_id"], completed);
    assert_eq!(preview["at"]["step"], "describe");
    let steps: Vec<(String, String, bool)> = preview["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["call"]["step"].as_str().unwrap_or_default().to_string(),
                s["reuse"].as_str().unwrap_or_default().to_string(),
                s["repeats_side_effects"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("double".to_string(), "reused".to_string(), false),
            ("describe".to_string(), "rerun".to_string(), true),
        ]
    );
    let (_, listing) = get(&client, &server.url("/api/runs?flow=pricing")).await;
    assert_eq!(listing["runs"].as_array().map(Vec::len), Some(1));

    // Refusals: a bad input type, no such call, a call that does not parse, a body that is not
    // the expected JSON, an unknown run, a run of a flow this build lacks.
    for (body, expect) in [
        (r#"{"from": "describe", "input": "five"}"#, "run "),
        (r#"{"from": "describe@2"}"#, "run "),
        (r#"{"from": "describe@0"}"#, "from \"describe@0\""),
        (r#"{"input": 5}"#, "the request body is not valid"),
        (
            r#"{"from": "describe", "extra": 1}"#,
            "the request body is not valid",
        ),
    ] {
        for url in [
            preview_url.clone(),
            server.url(&format!("/api/runs/{completed}/fork")),
        ] {
            let (status, error) = post(&client, &url, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{url} {body}: {error}");
            assert!(
                error["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(expect)),
                "{body}: {error}"
            );
        }
    }
    let (status, error) = post(
        &client,
        &server.url(&format!("/api/runs/{}/fork", f.failed)),
        r#"{"from": "flaky"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "this build has no flow `sync`");
    let (status, _) = post(
        &client,
        &server.url(&format!("/api/runs/{unknown}/fork/preview")),
        r#"{"from": "describe"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The rules of every POST: JSON only, 64 KiB at most.
    let r = client
        .post(server.url(&format!("/api/runs/{completed}/fork")))
        .body(r#"{"from": "describe"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(
        r#"{{"from": "describe", "input": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, _) = post(&client, &preview_url, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, listing) = get(&client, &server.url("/api/runs?flow=pricing")).await;
    assert_eq!(
        listing["runs"].as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );

    // Fork: 201 with the new run, which runs in the background to completion.
    let (status, created) = post(
        &client,
        &server.url(&format!("/api/runs/{completed}/fork")),
        r#"{"from": "describe", "input": 5}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let new = created["run_id"].as_str().expect("run_id").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let document = loop {
        let (_, run) = get(&client, &server.url(&format!("/api/runs/{new}"))).await;
        if run["document"]["status"] == "completed" || Instant::now() > deadline {
            break run["document"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(document["status"], "completed", "{document}");
    assert_eq!(document["output"], "value 5");
    let origin = &document["lineage"]["forked_from"];
    assert_eq!(origin["run_id"], completed);
    assert_eq!(
        origin["at"],
        serde_json::json!({"step": "describe", "occurrence": 1})
    );
    assert_eq!(origin["input"], 5);
    let (_, original) = get(&client, &server.url(&format!("/api/runs/{completed}"))).await;
    assert_eq!(
        original["document"]["lineage"]["forks"],
        serde_json::json!([new])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_fork_keep_the_token_host_and_bundle_rules() {
    let f = common::fixture_async().await;
    let store = open(&f.path).await;
    let client = reqwest::Client::new();
    let server = start(
        Source::Store(store.clone()),
        local().token("s3cret").flows(pricing()),
    )
    .await;
    let replay = server.url(&format!("/api/runs/{}/replay", f.completed));
    let (status, _) = get(&client, &replay).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &client,
        &server.url(&format!("/api/runs/{}/fork", f.completed)),
        r#"{"from": "describe"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = client
        .get(&replay)
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    drop(server);

    // Over an exported bundle there is no store to replay or fork from.
    let bundle = orchflow_cli::runs::export(&store, f.completed)
        .await
        .expect("export");
    let server = start(
        Source::Bundle(std::sync::Arc::new(bundle)),
        local().flows(pricing()),
    )
    .await;
    let (status, body) = get(
        &client,
        &server.url(&format!("/api/runs/{}/replay", f.completed)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = post(
        &client,
        &server.url(&format!("/api/runs/{}/fork", f.completed)),
        r#"{"from": "describe"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    drop(server);

    // Without a token, a loopback server refuses a foreign Host.
    let server = start(Source::Store(store), local().flows(pricing())).await;
    let r = client
        .post(server.url(&format!("/api/runs/{}/fork/preview", f.completed)))
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .body(r#"{"from": "describe"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[orchflow::step]
async fn slow_double(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(400)).await;
    x * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_waits_for_the_forks_it_started() {
    use orchflow::store::{CheckpointStore, RunStatus};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let store = orchflow::SqliteStore::open(&path).expect("open");
    let slow = flow! { #[flow(name = "slow")] common::double => slow_double };
    let run = slow.durable(store.clone()).run(1).await;
    assert_eq!(run.output, Some(4), "{:?}", run.error);

    let options = local().flows(orchflow::registry::Registry::new().register(slow));
    let server = orchflow_cli::serve::bind(Source::Store(open(&path).await), options)
        .await
        .expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let (status, body) = post(
        &reqwest::Client::new(),
        &format!("http://{addr}/api/runs/{}/fork", run.run_id),
        r#"{"from": "slow_double", "input": 5}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let fork: orchflow::RunId = body["run_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a run id");
    // Stopped while the fork sleeps in its step: the server returns once the fork has ended.
    let _ = stop.send(());
    serving.await.expect("the server's task").expect("served");
    let doc = store.document(fork).await.expect("read").expect("the fork");
    assert_eq!(doc.status, RunStatus::Completed);
    let saved = store.load(fork).await.expect("read").expect("the fork");
    let calls: Vec<_> = saved
        .journal
        .iter()
        .flat_map(|e| e.traces.iter().map(|t| (t.step.to_string(), t.outcome)))
        .collect();
    assert_eq!(
        calls,
        [
            ("double".to_string(), orchflow::AttemptOutcome::Reused),
            (
                "slow_double".to_string(),
                orchflow::AttemptOutcome::Succeeded
            )
        ]
    );
}
