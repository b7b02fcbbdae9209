//! Group commit seen from outside: saves of many runs in flight share commits, and every save
//! that was acknowledged is there.

use orchflow::RunId;
use orchflow::store::{CheckpointStore, FORMAT, FORMAT_VERSION, JournalEntry, PointRecord};
use orchflow::store::{RunDocument, RunStatus};
use orchflow_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::SystemTime;

fn document(run_id: RunId) -> RunDocument {
    RunDocument {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        run_id,
        flow: "batch".to_string(),
        fingerprint: "0123456789abcdef".to_string(),
        shape: "batch".to_string(),
        input: serde_json::json!(null),
        status: RunStatus::Running,
        pending: Vec::new(),
        output: None,
        error: None,
        created_at: SystemTime::now(),
        updated_at: SystemTime::now(),
        waiting: None,
        lineage: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_of_many_runs_share_commits() {
    const RUNS: usize = 100;
    const STEPS: u64 = 10;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SqliteStore::open(dir.path().join("runs.db")).expect("open"));
    let before = store.stats();
    let mut tasks = Vec::new();
    for _ in 0..RUNS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let run_id = RunId::new_v4();
            let claim = store.create(&document(run_id)).await.expect("create");
            for seq in 1..=STEPS {
                let entry = JournalEntry::new(seq, PointRecord::Point(serde_json::json!(seq)));
                store.append(&claim, &entry).await.expect("append");
            }
            run_id
        }));
    }
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.expect("the task ran"));
    }
    let after = store.stats();
    let requests = after.requests - before.requests;
    let commits = after.commits - before.commits;
    // Creates and appends; releases of the dropped claims may still be queued.
    assert!(
        requests >= (RUNS as u64) * (STEPS + 1),
        "{requests} requests"
    );
    assert!(
        commits * 4 <= requests,
        "{commits} commits for {requests} requests: saves in flight together were not batched"
    );
    for run_id in runs {
        let journal = store
            .journal(run_id, 0)
            .await
            .expect("journal")
            .expect("the run");
        assert_eq!(journal.len() as u64, STEPS);
    }
}

/// The writer's count of the commits each request waited for: every request answered by a
/// commit is counted once, never as 0 commits, and with at most a batch (1,024) of requesters,
/// each waiting for its answer before it sends again, a request waits for at most 2 commits
/// (the one in progress when it was queued and its own) and some do wait for 2.
///
/// The count starts at the sender's read of the commit count, just before it queues the
/// request: a sending thread held up between the two (descheduled, or behind other senders in
/// the channel's push) counts the commits completed meanwhile. On a loaded machine that happens
/// to a few requests in some runs, so the test allows one request in 1,000 above 2. A writer
/// that left queued requests for a later batch (a batch smaller than the requesters) puts many
/// more there, and so does a count read one commit early; a count read after the commit puts
/// requests at 0, and one read by the writer when it takes the batch puts none at 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_save_waits_for_at_most_the_commit_in_progress_and_its_own() {
    const RUNS: usize = 1024;
    const STEPS: u64 = 5;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SqliteStore::open(dir.path().join("runs.db")).expect("open"));
    let before = store.stats();
    let mut tasks = Vec::new();
    for _ in 0..RUNS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let claim = store
                .create(&document(RunId::new_v4()))
                .await
                .expect("create");
            for seq in 1..=STEPS {
                let entry = JournalEntry::new(seq, PointRecord::Point(serde_json::json!(seq)));
                store.append(&claim, &entry).await.expect("append");
            }
            // Kept until the counters are read: a dropped claim queues a release that no
            // requester waits for.
            claim
        }));
    }
    let mut claims = Vec::new();
    for task in tasks {
        claims.push(task.await.expect("the task ran"));
    }
    let after = store.stats();
    drop(claims);
    let waited: Vec<u64> = (0..after.waited.len())
        .map(|i| after.waited[i] - before.waited[i])
        .collect();
    assert_eq!(
        after.requests - before.requests,
        RUNS as u64 * (STEPS + 1),
        "every create and append, nothing else"
    );
    assert_eq!(
        waited.iter().sum::<u64>(),
        after.requests - before.requests,
        "each request answered by a commit is counted once: {waited:?}"
    );
    assert_eq!(
        waited[0], 0,
        "no request is carried by a commit completed before it was queued: {waited:?}"
    );
    let over: u64 = waited[3..].iter().sum();
    assert!(
        over * 1000 <= after.requests - before.requests,
        "{over} requests waited for more than the commit in progress and their own: max {}, \
         {waited:?}",
        after.waited_max
    );
    assert_eq!(
        after.waited_max <= 2,
        over == 0,
        "the max agrees with the histogram: max {}, {waited:?}",
        after.waited_max
    );
    assert!(
        waited[2] > 0,
        "some saves were queued during a commit (what the bound is about): {waited:?}"
    );
}

/// The background checkpointer copies committed saves from the WAL into the database file: a
/// copy of the file alone (no WAL) has them soon after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_saves_reach_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).expect("open");
    let mut runs = Vec::new();
    for _ in 0..50 {
        let run_id = RunId::new_v4();
        drop(store.create(&document(run_id)).await.expect("create"));
        runs.push(run_id);
    }
    store.flush().await.expect("flush");
    let copy = dir.path().join("copy.db");
    let mut found = 0;
    for _ in 0..100 {
        std::fs::copy(&path, &copy).expect("copy the database file alone");
        let conn = rusqlite::Connection::open(&copy).expect("open the copy");
        found = conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0);
        drop(conn);
        let _ = std::fs::remove_file(&copy);
        if found == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found, 50, "the database file has every committed run");
}

/// A claim dropped and taken again at once, through another handle of the same file in this
/// process, is never refused: the release goes first on the writer's ordered channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_claim_is_free_at_once_for_every_handle_of_the_process() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let handles = [
        SqliteStore::open(&path).expect("open"),
        SqliteStore::open(&path).expect("open"),
        SqliteStore::open(&path).expect("open"),
    ];
    let run_id = RunId::new_v4();
    let mut claim = handles[0].create(&document(run_id)).await.expect("create");
    for round in 0..300usize {
        let token = claim.token();
        drop(claim);
        claim = handles[round % 3]
            .claim(run_id)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(claim.token() > token);
    }
}
