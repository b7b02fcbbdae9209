//! Many concurrent durable runs under a low descriptor limit: none fails for want of
//! descriptors, and what each caller is told is what a later load shows.
//!
//! The driver re-executes this test binary under `ulimit -n 128` (a limit of this process
//! alone): [`fd_limit_child`] is an `#[ignore]`d test that does nothing unless
//! `ORCHFLOW_FD_CHILD` is set. `ORCHFLOW_FD_RUNS` sets the number of runs (default 2,000).

#![cfg(unix)]

use orchflow::store::RunStatus;
use orchflow::{CheckpointStore, JsonCheckpointStore, flow, step};
use std::process::Command;

#[step]
async fn double(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * 2
}

#[step]
async fn plus_one(x: u64) -> u64 {
    x + 1
}

#[test]
#[ignore = "run by fd_limit_under_many_concurrent_runs as a child process"]
fn fd_limit_child() {
    let Ok(dir) = std::env::var("ORCHFLOW_FD_CHILD") else {
        return;
    };
    let runs: u64 = std::env::var("ORCHFLOW_FD_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = JsonCheckpointStore::new(&dir);
        let f = flow! { #[flow(name = "fd_limit")] double => plus_one => double };
        // Every run is started before any is awaited: all of them are in flight at once.
        let tasks: Vec<_> = (0..runs)
            .map(|i| {
                let f = f.clone();
                let store = store.clone();
                tokio::spawn(async move { f.durable(store).run(i).await })
            })
            .collect();
        let mut failed = Vec::new();
        let mut contradictions = Vec::new();
        for (i, task) in (0..runs).zip(tasks) {
            let r = task.await.expect("the run's task");
            let disk = store.load(r.run_id).await.expect("every checkpoint loads");
            let status = disk.as_ref().map(|c| c.document.status.clone());
            match (&r.output, &status) {
                (Some(out), Some(RunStatus::Completed)) => {
                    assert_eq!(*out, (i * 2 + 1) * 2);
                    let saved = disk.and_then(|c| c.document.output);
                    if saved != Some(serde_json::json!(out)) {
                        contradictions.push(format!("run {i}: told {out}, saved {saved:?}"));
                    }
                }
                (None, Some(RunStatus::Completed)) => contradictions.push(format!(
                    "run {i}: told it failed ({:?}), its document says completed",
                    r.error
                )),
                (Some(out), status) => contradictions.push(format!(
                    "run {i}: told it completed with {out}, the store shows {status:?}"
                )),
                (None, _) => failed.push(format!("run {i}: {:?}", r.error)),
            }
        }
        assert!(contradictions.is_empty(), "{contradictions:#?}");
        assert!(
            failed.is_empty(),
            "{} of {runs} runs failed: {:#?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        println!("FD-CHILD-DONE {runs}");
    });
}

#[test]
fn fd_limit_under_many_concurrent_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 128 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "fd_limit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ORCHFLOW_FD_CHILD", dir.path())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("FD-CHILD-DONE"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
