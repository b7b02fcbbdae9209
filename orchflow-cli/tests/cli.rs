//! The `orchflow` binary against a real SQLite file with real durable runs.

mod common;

use common::fixture;
use orchflow_cli::Bundle;
use std::process::{Command, Output};

fn orchflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(args)
        .env_remove("ORCHFLOW_STORE")
        .env_remove("ORCHFLOW_TOKEN")
        .output()
        .expect("run orchflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; returns its output.
fn ok(args: &[&str]) -> String {
    let o = orchflow(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn list_shows_every_run_and_filters_and_pages() {
    let f = fixture();
    let url = f.url();
    let all = ok(&["--store", &url, "runs", "list"]);
    let rows: Vec<&str> = all.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{all}");
    assert_eq!(
        rows[3], "total: 3 (1 suspended, 1 completed, 1 failed)",
        "{all}"
    );
    // Newest first.
    assert!(rows[0].starts_with(&f.suspended.to_string()), "{all}");
    assert!(
        rows[0].contains("publish") && rows[0].contains("suspended"),
        "{all}"
    );
    assert!(
        rows[1].contains("sync") && rows[1].contains("failed"),
        "{all}"
    );
    assert!(
        rows[2].contains("pricing") && rows[2].contains("completed"),
        "{all}"
    );
    assert!(!all.contains('\x1b'), "no colour when not a terminal");

    let failed = ok(&[
        "--store", &url, "runs", "list", "--status", "failed", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&failed).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["runs"][0]["run_id"], f.failed.to_string());
    assert_eq!(v["next"], serde_json::Value::Null);
    assert_eq!(v["counts"]["failed"], 1);
    assert_eq!(v["counts"]["completed"], 1);

    let by_flow = ok(&["--store", &url, "runs", "list", "--flow", "pricing"]);
    assert_eq!(by_flow.lines().count(), 3, "{by_flow}");
    let none = ok(&[
        "--store",
        &url,
        "runs",
        "list",
        "--since",
        "2100-01-01T00:00:00Z",
    ]);
    assert_eq!(none.trim(), "no runs");
    let recent = ok(&["--store", &url, "runs", "list", "--since", "1h"]);
    assert_eq!(recent.lines().count(), 5, "{recent}");

    // Paging: one run, then the cursor printed gives the other two.
    let first = ok(&["--store", &url, "runs", "list", "--limit", "1"]);
    let cursor = first
        .lines()
        .find_map(|l| l.strip_prefix("more: --after "))
        .expect("a cursor")
        .to_string();
    assert!(first.contains(&f.suspended.to_string()));
    let rest = ok(&["--store", &url, "runs", "list", "--after", &cursor]);
    assert!(!rest.contains(&f.suspended.to_string()), "{rest}");
    assert!(rest.contains(&f.failed.to_string()) && rest.contains(&f.completed.to_string()));
    assert!(!rest.contains("more:"), "{rest}");
}

#[test]
fn show_prints_the_timeline_of_every_attempt() {
    let f = fixture();
    let url = f.url();
    let failed = ok(&["--store", &url, "runs", "show", &f.failed.to_string()]);
    assert!(failed.contains("flow     sync"), "{failed}");
    assert!(failed.contains("status   failed"), "{failed}");
    assert!(failed.contains("attempts (3, 1 session)"), "{failed}");
    let attempts: Vec<Vec<&str>> = failed
        .lines()
        .filter(|l| l.contains("down for 7") && !l.starts_with("error"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(attempts.len(), 3, "{failed}");
    for (i, cells) in attempts.iter().enumerate() {
        // START NODE STEP ATTEMPT OUTCOME DURATION [GAP] ERROR...
        assert_eq!(
            cells[1..5],
            ["0", "flaky", &(i + 1).to_string(), "failed"],
            "{failed}"
        );
    }
    // The retries wait 5 ms: a gap is shown before attempts 2 and 3 only.
    assert_eq!(attempts[0][6], "down", "{failed}");
    for retry in &attempts[1..] {
        let gap = retry[6];
        let ms: f64 = gap.trim_end_matches("ms").parse().unwrap_or(0.0);
        assert!(gap.ends_with("ms") && ms >= 4.0, "gap {gap} in {failed}");
    }
    assert!(!failed.contains('\x1b'));

    let completed = ok(&["--store", &url, "runs", "show", &f.completed.to_string()]);
    assert!(completed.contains("output   \"value 42\""), "{completed}");
    let steps: Vec<&str> = completed
        .lines()
        .filter(|l| l.contains("succeeded"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(steps, ["double", "describe"], "{completed}");

    let suspended = ok(&["--store", &url, "runs", "show", &f.suspended.to_string()]);
    assert!(suspended.contains("pending questions"), "{suspended}");
    assert!(
        suspended.contains("review (step review): publish post?"),
        "{suspended}"
    );

    let json = ok(&[
        "--store",
        &url,
        "runs",
        "show",
        &f.failed.to_string(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["document"]["status"], "failed");
    assert_eq!(v["attempts"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["attempts"][2]["attempt"], 3);
}

#[test]
fn answer_queues_the_run_and_a_second_answer_is_refused() {
    let f = fixture();
    let url = f.url();
    let id = f.suspended.to_string();
    let out = ok(&[
        "--store",
        &url,
        "runs",
        "answer",
        &id,
        "--question",
        "review",
        "yes",
    ]);
    assert!(out.contains("queued"), "{out}");
    let shown = ok(&["--store", &url, "runs", "show", &id]);
    assert!(shown.contains("status   queued"), "{shown}");
    assert!(shown.contains("review: \"yes\""), "{shown}");
    assert!(!shown.contains("pending questions"), "{shown}");

    let again = orchflow(&["--store", &url, "runs", "answer", &id, "no"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("not waiting"), "{}", stderr(&again));

    let wrong = orchflow(&[
        "--store",
        &url,
        "runs",
        "answer",
        &f.completed.to_string(),
        "x",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
}

#[test]
fn cancel_and_resume_change_the_status() {
    let f = fixture();
    let url = f.url();
    let failed = f.failed.to_string();
    let out = ok(&["--store", &url, "runs", "resume", &failed]);
    assert!(out.contains("queued"), "{out}");
    let out = ok(&["--store", &url, "runs", "cancel", &failed]);
    assert!(out.contains("cancelled (it was queued)"), "{out}");
    let shown = ok(&["--store", &url, "runs", "show", &failed]);
    assert!(shown.contains("status   cancelled"), "{shown}");
    let resumed = orchflow(&["--store", &url, "runs", "resume", &failed]);
    assert_eq!(resumed.status.code(), Some(1));
    assert!(
        stderr(&resumed).contains("cancelled"),
        "{}",
        stderr(&resumed)
    );

    let out = ok(&["--store", &url, "runs", "cancel", &f.completed.to_string()]);
    assert!(out.contains("had completed"), "{out}");
    let completed = ok(&["--store", &url, "runs", "show", &f.completed.to_string()]);
    assert!(completed.contains("status   completed"));
}

#[test]
fn export_writes_a_bundle_that_reads_back() {
    let f = fixture();
    let url = f.url();
    let file = f.dir.path().join("bundle.json");
    let file_text = file.display().to_string();
    let id = f.completed.to_string();
    let out = ok(&["--store", &url, "runs", "export", &id, "-o", &file_text]);
    assert!(out.contains("exported"), "{out}");
    let bundle = Bundle::read(&file).expect("bundle");
    assert_eq!(bundle.format, "orchflow-bundle");
    assert_eq!(bundle.version, 1);
    assert_eq!(bundle.document.run_id, f.completed);
    let traces: Vec<String> = bundle
        .journal
        .iter()
        .flat_map(|e| e.traces.iter().map(|t| t.step.to_string()))
        .collect();
    assert_eq!(traces, ["double", "describe"]);
    let graph = bundle.graph.expect("the flow's graph");
    assert_eq!(graph.name, "pricing");
    assert_eq!(
        format!("{:016x}", graph.fingerprint),
        bundle.document.fingerprint
    );

    let printed = ok(&["--store", &url, "runs", "export", &id]);
    let again = Bundle::from_json(&printed, "stdout").expect("bundle on stdout");
    assert_eq!(again.journal, bundle.journal);
}

#[test]
fn errors_have_their_exit_codes() {
    let f = fixture();
    let url = f.url();
    let unknown = uuid::Uuid::new_v4().to_string();
    let completed = f.completed.to_string();
    let cases: [(&[&str], i32, &str); 11] = [
        (&["--store", "ftp://x", "runs", "list"], 2, "names no store"),
        (
            &["--store", "/nowhere/runs.db", "runs", "list"],
            2,
            "no such file",
        ),
        (&["runs", "list"], 2, "no store given"),
        (
            &["--store", &url, "runs", "show", "nope"],
            2,
            "not a run id",
        ),
        (
            &["--store", &url, "runs", "list", "--status", "done"],
            2,
            "unknown run status",
        ),
        (
            &["--store", &url, "runs", "list", "--after", "x"],
            2,
            "not a listing cursor",
        ),
        (&["--store", &url, "runs", "show", &unknown], 1, "no run"),
        (
            &["--store", &url, "runs", "show", "ffff0000"],
            1,
            "no run whose id starts",
        ),
        (&["--store", &url, "runs", "frobnicate"], 2, "frobnicate"),
        // The generic binary has no flows: it says how to build one that has.
        (
            &["--store", &url, "replay"],
            2,
            "orchflow_cli::App::new(flows).main()",
        ),
        (
            &[
                "--store", &url, "runs", "fork", &completed, "--from", "double",
            ],
            2,
            "orchflow_cli::App::new(flows).main()",
        ),
    ];
    for (args, code, message) in cases {
        let o = orchflow(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    // The store's URL may also come from the environment.
    let o = Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(["runs", "list"])
        .env("ORCHFLOW_STORE", &url)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A JSON directory has no run queue: cancel fails, reading works.
    let dir = f.dir.path().join("json-runs");
    std::fs::create_dir(&dir).expect("mkdir");
    let json_url = format!("json:{}", dir.display());
    assert_eq!(
        ok(&["--store", &json_url, "runs", "list"]).trim(),
        "no runs"
    );
    let o = orchflow(&["--store", &json_url, "runs", "cancel", &unknown]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no run queue"), "{}", stderr(&o));

    let public = orchflow(&["--store", &url, "serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(public.status.code(), Some(2));
    assert!(
        stderr(&public).contains("without a token"),
        "{}",
        stderr(&public)
    );
}

#[test]
fn a_reader_that_stops_reading_is_not_an_error() {
    let f = fixture();
    let url = f.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(["--store", &url, "runs", "export", &f.failed.to_string()])
        .env_remove("ORCHFLOW_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end before the command writes (it opens the store first).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
