//! Results, traces and events as data: their JSON, what events carry for a live viewer, where a
//! resumed run continues from, and which session made each attempt.

use futures::StreamExt;
use orchflow::store::CheckpointStore;
use orchflow::{Event, JsonCheckpointStore, MemoryStore, flow, step};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

#[step]
async fn double(x: u32) -> u32 {
    x * 2
}

static FLAKY: AtomicU32 = AtomicU32::new(0);

#[step(retry = 1)]
async fn flaky_once(x: u32) -> Result<u32, std::io::Error> {
    if FLAKY.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("first try fails"));
    }
    Ok(x + 1)
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| humantime_like(s) && s.ends_with('Z'))
}

/// `2026-12-03T05:20:01.123456789Z`: date, `T`, time.
fn humantime_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
}

#[tokio::test]
async fn results_and_traces_are_json_with_rfc3339_times_and_nulls() {
    let r = flow! { #[flow(name = "as_json")] double => [double, double] }
        .run(1)
        .await;
    let json = serde_json::to_value(&r).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "run_id",
        "flow",
        "success",
        "output",
        "failed_step",
        "error",
        "suspended",
        "resumed_from",
        "session",
        "started_at",
        "duration",
        "traces",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(json["output"], json!([4, 4]));
    assert_eq!(json["error"], Value::Null);
    assert_eq!(json["failed_step"], Value::Null);
    assert_eq!(json["resumed_from"], Value::Null);
    assert_eq!(json["session"], 1);
    assert!(is_rfc3339(&json["started_at"]), "{}", json["started_at"]);
    assert!(json["duration"].is_f64());
    let first = &json["traces"][0];
    // Absent values are written as null, never dropped.
    for key in ["parent", "parallel_group_id", "input", "output", "error"] {
        assert_eq!(first.get(key), Some(&Value::Null), "{key} in {first}");
    }
    assert_eq!(json["traces"][1]["parallel_group_id"], 1);
    assert!(is_rfc3339(&first["started_at"]) && is_rfc3339(&first["ended_at"]));
    assert_eq!(first["session"], 1);
    // Traces read back.
    let back: Vec<orchflow::StepTrace> = serde_json::from_value(json["traces"].clone()).unwrap();
    assert_eq!(back, r.traces.to_vec());
}

#[tokio::test]
async fn events_carry_what_a_live_viewer_needs() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "viewer")] flaky_once => [double, double] }.capture_values(true);
    let events: Vec<Event<(u32, u32), ()>> = f.durable(store.clone()).stream(3).collect().await;
    let json: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let of = |kind: &str| -> Vec<&Value> { json.iter().filter(|e| e["kind"] == kind).collect() };

    assert_eq!(of("flow_started")[0]["input"], 3);
    let retry = of("retry_scheduled");
    assert_eq!(retry[0]["error"], "first try fails");
    assert_eq!(retry[0]["attempt"], 2);
    let completed = of("step_completed");
    assert_eq!(completed[0]["output"], 4);
    assert_eq!(completed[1]["output"], 8);
    let failed = &of("step_failed")[0];
    assert_eq!(failed["will_retry"], true);
    let saved: Vec<(String, Value)> = of("checkpoint_saved")
        .iter()
        .map(|c| {
            (
                c["point"].as_str().unwrap().to_string(),
                c["branch"].clone(),
            )
        })
        .collect();
    assert_eq!(saved[0], ("AfterFlakyOnce".to_string(), Value::Null));
    // The group's point (entering it), then one save per finished branch.
    let branches: Vec<_> = saved
        .iter()
        .filter(|(p, b)| p == "InGroup2" && !b.is_null())
        .map(|(_, b)| b.as_u64().unwrap())
        .collect();
    assert_eq!(branches.len(), 2);
    assert!(branches.contains(&0) && branches.contains(&1));
    let last = json.last().unwrap();
    assert_eq!(last["kind"], "flow_completed");
    assert_eq!(last["result"]["output"], json!([8, 8]));

    // A run that is not durable says its input too.
    let plain: Vec<Event<(u32, u32), ()>> =
        flow! { #[flow(name = "viewer")] double => [double, double] }
            .capture_values(true)
            .stream(3)
            .collect()
            .await;
    assert_eq!(serde_json::to_value(&plain[0]).unwrap()["input"], 3);

    // Without value capture, no values.
    let quiet: Vec<Event<(u32, u32), ()>> =
        flow! { #[flow(name = "viewer")] double => [double, double] }
            .stream(3)
            .collect()
            .await;
    let started = serde_json::to_value(&quiet[0]).unwrap();
    assert_eq!(started["input"], Value::Null);
    let completed = quiet.iter().find(|e| e.kind() == "step_completed").unwrap();
    assert_eq!(
        serde_json::to_value(completed).unwrap()["output"],
        Value::Null
    );
}

#[tokio::test]
async fn a_durable_stream_that_cannot_start_still_begins_with_flow_started() {
    let file = tempfile::NamedTempFile::new().unwrap();
    // A store whose directory cannot be created (a file stands in its way).
    let store = JsonCheckpointStore::new(file.path().join("runs"));
    let kinds: Vec<_> = flow! { double }
        .durable(store)
        .stream(1)
        .map(|e| e.kind())
        .collect()
        .await;
    assert_eq!(kinds, ["flow_started", "flow_failed"]);
}

static FIRST_FAILS: AtomicU32 = AtomicU32::new(0);

#[step]
async fn fails_first_time(x: u32) -> Result<u32, std::io::Error> {
    if FIRST_FAILS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("not yet"));
    }
    Ok(x)
}

#[tokio::test]
async fn a_resumed_run_says_where_it_continued_from_and_which_session_did_what() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "sessions")] fails_first_time => double };
    let first = f.durable(store.clone()).run(5).await;
    assert!(!first.success);
    assert_eq!((first.session, first.resumed_from), (1, None));

    // It failed in its first item: the checkpoint holds no point, and is still announced.
    let events: Vec<_> = f
        .durable(store.clone())
        .resume_stream(first.run_id)
        .await
        .unwrap()
        .collect()
        .await;
    let loaded: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::CheckpointLoaded(c) => Some(c.point),
            _ => None,
        })
        .collect();
    assert_eq!(loaded, ["start"]);
    let r = events.last().unwrap().result().unwrap();
    assert_eq!(r.output, Some(10));
    assert_eq!((r.session, r.resumed_from), (2, Some("start")));
    let attempts: Vec<_> = r
        .traces
        .iter()
        .map(|t| (t.step.as_ref(), t.session, t.attempt, t.success))
        .collect();
    assert_eq!(
        attempts,
        [
            ("fails_first_time", 1, 1, false),
            ("fails_first_time", 2, 1, true),
            ("double", 2, 1, true)
        ]
    );

    // A completed run read back says its last point and the session that finished it.
    let again = f.durable(store.clone()).resume(first.run_id).await.unwrap();
    assert_eq!(
        (again.session, again.resumed_from),
        (2, Some("AfterDouble"))
    );
    // The journal keeps each trace's session.
    let journal = store.load(first.run_id).await.unwrap().unwrap().journal;
    let sessions: Vec<u32> = journal
        .iter()
        .flat_map(|e| e.traces.iter().map(|t| t.session))
        .collect();
    assert_eq!(sessions, [1, 2, 2]);
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    seen: std::sync::Mutex<Vec<u32>>,
}

static TALLY_GATE: AtomicU32 = AtomicU32::new(0);

#[step]
async fn tally(x: u32, ctx: &orchflow::StepContext<Tally>) -> u32 {
    ctx.state().seen.lock().unwrap().push(x);
    x + 1
}

#[step]
async fn gate(x: u32) -> Result<u32, std::io::Error> {
    if TALLY_GATE.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("closed"));
    }
    Ok(x)
}

#[tokio::test]
async fn shared_state_is_saved_only_when_asked() {
    let store = MemoryStore::default();
    let f = flow! { #[flow(name = "tally")] tally => tally => gate => tally };
    let first = f.durable(store.clone()).saving_state().run(1).await;
    assert!(!first.success);
    let journal = store.load(first.run_id).await.unwrap().unwrap().journal;
    assert_eq!(journal[1].state, Some(json!({ "seen": [1, 2] })));

    // Restored on resume: the last step adds to what the first two saw.
    let done = f
        .durable(store.clone())
        .saving_state()
        .resume(first.run_id)
        .await
        .unwrap();
    assert_eq!(done.output, Some(4));
    assert_eq!(*done.state.seen.lock().unwrap(), [1, 2, 3]);

    // Without the opt-in nothing is saved and a resume starts from the default state.
    TALLY_GATE.store(0, Ordering::SeqCst);
    let plain = f.durable(store.clone()).run(1).await;
    let journal = store.load(plain.run_id).await.unwrap().unwrap().journal;
    assert!(journal.iter().all(|e| e.state.is_none()));
    let resumed = f.durable(store.clone()).resume(plain.run_id).await.unwrap();
    assert_eq!(*resumed.state.seen.lock().unwrap(), [3]);

    // A saved state that no longer fits the type is a typed error.
    TALLY_GATE.store(0, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let json_store = JsonCheckpointStore::new(dir.path());
    let broken = f.durable(json_store.clone()).saving_state().run(1).await;
    let path = json_store.journal_path(broken.run_id);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"seen\":[1,2]", "\"seen\":\"oops\"")).unwrap();
    let err = f
        .durable(json_store.clone())
        .saving_state()
        .resume(broken.run_id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            orchflow::ResumeError::Undecodable {
                what: "shared state",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(
            &json_store
                .document_path(broken.run_id)
                .display()
                .to_string()
        ),
        "{err}"
    );
}

/// Not `Serialize`: captured as nothing, and the run goes on.
#[derive(Clone)]
struct Opaque(u32);

#[step]
async fn unwrap_opaque(o: Opaque) -> u32 {
    o.0
}

#[tokio::test]
async fn an_input_that_is_not_serialize_is_captured_as_null() {
    let events: Vec<Event<u32, ()>> = flow! { unwrap_opaque }
        .capture_values(true)
        .stream(Opaque(7))
        .collect()
        .await;
    let started = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(started["kind"], "flow_started");
    assert_eq!(started["input"], Value::Null);
    assert_eq!(events.last().unwrap().result().unwrap().output, Some(7));
}
