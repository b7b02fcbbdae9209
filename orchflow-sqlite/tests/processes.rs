//! Two OS processes on one file: the test binary runs itself again as the holder of a run.
//! While the holder lives (and renews its lease) the run is busy for this process, named by
//! the holder's pid; once it is SIGKILLed, the run can be claimed again when its short lease
//! (600 ms) has expired, with a greater fencing token.

use orchflow::store::{CheckpointStore, StoreError};
use orchflow::{RunId, flow, step};
use orchflow_sqlite::SqliteOptions;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "ORCHFLOW_SQLITE_TEST_ROLE";
const DB: &str = "ORCHFLOW_SQLITE_TEST_DB";
const RUN: &str = "ORCHFLOW_SQLITE_TEST_RUN";
/// Short, so the test is quick; long enough that a loaded machine does not starve the holder's
/// heartbeat (every third of it) past it.
const TTL: Duration = Duration::from_millis(600);

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

/// Kills the child if the test fails half-way.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child: claims the run, says so on stdout, and holds it until killed (30 s at most).
fn holder() {
    let path = std::env::var(DB).expect("the database path");
    let run_id: RunId = std::env::var(RUN)
        .expect("the run id")
        .parse()
        .expect("a run id");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let store = SqliteOptions::new()
            .lease_ttl(TTL)
            .open(&path)
            .expect("open");
        let claim = store
            .claim(run_id)
            .await
            .expect("the holder claims the run");
        println!("CLAIMED {}", claim.token());
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(claim);
    });
}

#[test]
fn a_killed_holder_passes_its_run_on_when_its_lease_expires() {
    if std::env::var(ROLE).as_deref() == Ok("holder") {
        holder();
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let store = SqliteOptions::new()
        .lease_ttl(TTL)
        .open(&path)
        .expect("open");
    let run_id = runtime
        .block_on(flow! { inc }.durable(store.clone()).submit(1))
        .expect("submit");
    runtime
        .block_on(store.flush())
        .expect("the submit's release is committed");

    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_killed_holder_passes_its_run_on_when_its_lease_expires",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "holder")
        .env(DB, &path)
        .env(RUN, run_id.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the holder");
    let mut child = Reaper(child);
    let pid = child.0.id();
    let stdout = child.0.stdout.take().expect("the holder's stdout");
    let held_token: u64 = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("a line"))
        // libtest writes `test <name> ... ` before the test prints, on the same line.
        .find_map(|l| {
            l.split("CLAIMED ")
                .nth(1)
                .map(|t| t.trim().parse().expect("a token"))
        })
        .expect("the holder claimed the run");

    // For several lease lifetimes the holder's heartbeat keeps the run busy.
    let until = Instant::now() + TTL * 3;
    while Instant::now() < until {
        match runtime.block_on(store.claim(run_id)) {
            Err(StoreError::RunBusy { holder, .. }) => {
                assert!(holder.contains(&format!("process {pid}")), "{holder}");
            }
            other => panic!("expected RunBusy while the holder lives, got {other:?}"),
        }
        std::thread::sleep(TTL / 6);
    }

    child.0.kill().expect("SIGKILL the holder");
    child.0.wait().expect("the holder is gone");
    let killed = Instant::now();
    let claim = loop {
        match runtime.block_on(store.claim(run_id)) {
            Ok(claim) => break claim,
            Err(StoreError::RunBusy { .. }) => {
                assert!(
                    killed.elapsed() < TTL * 10,
                    "the dead holder's lease never expired"
                );
                std::thread::sleep(TTL / 10);
            }
            Err(e) => panic!("expected RunBusy or a claim, got {e:?}"),
        }
    };
    assert!(
        claim.token() > held_token,
        "{} after {held_token}",
        claim.token()
    );
    // The new claim is the one honoured: the run resumes and completes here.
    let done = runtime
        .block_on(flow! { inc }.durable(store.clone()).resume_claimed(claim))
        .expect("resume");
    assert_eq!(done.output, Some(2));
}

/// The child: submits a run (create, then the claim dropped at once), prints its id, and
/// returns, as `main` would, dropping its store.
fn submitter() {
    let path = std::env::var(DB).expect("the database path");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let store = orchflow_sqlite::SqliteStore::open(&path).expect("open");
        let run_id = flow! { inc }
            .durable(store)
            .submit(1)
            .await
            .expect("submit");
        println!("SUBMITTED {run_id}");
    });
}

/// A process that submits and returns from `main` commits the submit's release on its way
/// out: another process claims the run at once, long before the submitter's 30 s lease would
/// have expired.
#[test]
fn a_process_that_submits_and_exits_leaves_its_run_claimable_at_once() {
    if std::env::var(ROLE).as_deref() == Ok("submitter") {
        submitter();
        // As a process whose `main` returned: its locals are dropped, and it exits at once
        // (not after the test harness's own epilogue).
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_process_that_submits_and_exits_leaves_its_run_claimable_at_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "submitter")
        .env(DB, &path)
        .stdout(Stdio::piped())
        .output()
        .expect("run the submitter");
    assert!(output.status.success(), "{output:?}");
    let exited = Instant::now();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_id: RunId = stdout
        .split("SUBMITTED ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the submitter printed its run")
        .parse()
        .expect("a run id");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let store = orchflow_sqlite::SqliteStore::open(&path).expect("open");
    assert_eq!(store.lease_ttl(), Duration::from_secs(30));
    let claim = runtime
        .block_on(store.claim(run_id))
        .expect("the run is released, not busy until the submitter's lease expires");
    assert!(exited.elapsed() < Duration::from_secs(5));
    assert_eq!(claim.token(), 2, "the submitter's claim was the first");
    let done = runtime
        .block_on(flow! { inc }.durable(store.clone()).resume_claimed(claim))
        .expect("resume");
    assert_eq!(done.output, Some(2));
}
