//! Leases across handles (as across machines): a heartbeat keeps a claim alive past its ttl, a
//! dropped claim is released for everyone, and a writer whose lease lapsed is fenced off.

mod common;

use common::{PgFixture, url};
use orchflow_core::RunId;
use orchflow_core::store::{
    CheckpointStore, FORMAT, FORMAT_VERSION, JournalEntry, PointRecord, RunDocument, RunStatus,
    StoreError,
};
use orchflow_postgres::{PostgresOptions, PostgresStore};
use std::time::{Duration, SystemTime};

fn document(run_id: RunId) -> RunDocument {
    let now = SystemTime::now();
    RunDocument {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        run_id,
        flow: "plan => act".to_string(),
        fingerprint: "0123456789abcdef".to_string(),
        shape: "plan => act".to_string(),
        input: serde_json::json!(1),
        status: RunStatus::Running,
        pending: Vec::new(),
        output: None,
        error: None,
        created_at: now,
        updated_at: now,
        waiting: None,
        lineage: Default::default(),
    }
}

fn entry(seq: u64, who: &str) -> JournalEntry {
    JournalEntry::new(seq, PointRecord::Point(serde_json::json!({ "By": who })))
}

const TTL: Duration = Duration::from_millis(400);

async fn connect(fixture: &PgFixture, options: PostgresOptions) -> PostgresStore {
    PostgresStore::connect_with(&fixture.url, options.schema(fixture.schema.clone()))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_lease_lapsed_is_fenced_off_and_never_merged() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    // The first worker's heartbeat never comes in time: it is as good as dead.
    let dead = connect(
        &fixture,
        PostgresOptions::new()
            .lease_ttl(TTL)
            .heartbeat_every(Duration::from_secs(3600)),
    )
    .await;
    let live = connect(&fixture, PostgresOptions::new().lease_ttl(TTL)).await;
    let run_id = RunId::new_v4();
    let stale = dead.create(&document(run_id)).await.expect("create");
    dead.append(&stale, &entry(1, "dead"))
        .await
        .expect("append");
    busy(&live.claim(run_id).await, &dead);

    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    let fresh = live
        .claim(run_id)
        .await
        .expect("the lapsed lease passes on");
    assert!(fresh.token() > stale.token());

    assert!(matches!(
        dead.append(&stale, &entry(2, "dead")).await,
        Err(StoreError::ClaimLost { run_id: id, token }) if id == run_id && token == stale.token()
    ));
    let mut failed = document(run_id);
    failed.status = RunStatus::Failed;
    failed.error = Some("the dead worker's view".to_string());
    assert!(matches!(
        dead.put_document(&stale, &failed).await,
        Err(StoreError::ClaimLost { .. })
    ));
    live.append(&fresh, &entry(2, "live"))
        .await
        .expect("append");
    // The stale claim's drop does not release the fresh one.
    drop(stale);
    busy(&dead.claim(run_id).await, &live);
    // Past another ttl, the live worker's heartbeat still holds the run.
    tokio::time::sleep(TTL * 2).await;
    busy(&dead.claim(run_id).await, &live);
    live.append(&fresh, &entry(3, "live"))
        .await
        .expect("append");

    let saved = dead.load(run_id).await.expect("load").expect("the run");
    assert_eq!(saved.document.status, RunStatus::Running, "never merged");
    assert_eq!(
        saved.journal,
        [entry(1, "dead"), entry(2, "live"), entry(3, "live")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_a_claim_past_its_ttl_and_a_drop_releases_it_for_everyone() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let a = connect(&fixture, PostgresOptions::new().lease_ttl(TTL)).await;
    let b = connect(&fixture, PostgresOptions::new().lease_ttl(TTL)).await;
    let run_id = RunId::new_v4();
    let claim = a.create(&document(run_id)).await.expect("create");
    tokio::time::sleep(TTL * 3).await;
    busy(&b.claim(run_id).await, &a);
    a.append(&claim, &entry(1, "a")).await.expect("still held");

    // Another process sees the release land without claiming anything itself.
    drop(claim);
    let raw = fixture.raw().await;
    let mut released = false;
    for _ in 0..50 {
        let row = raw
            .query_one(
                "SELECT owner IS NULL FROM runs WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .expect("read");
        if row.get::<_, bool>(0) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the dropped claim's release reached the database");
    let claim = b.claim(run_id).await.expect("free");
    assert_eq!(claim.token(), 2);
}

/// `RunBusy` naming `holder` (its host and process).
fn busy(result: &Result<orchflow_core::store::Claim, StoreError>, holder: &PostgresStore) {
    match result {
        Err(StoreError::RunBusy { holder: h, .. }) => {
            assert_eq!(h, holder.owner());
            assert!(h.contains(&format!("pid {}", std::process::id())), "{h}");
        }
        other => panic!("expected RunBusy, got {other:?}"),
    }
}

/// A claim dropped after its runtime is gone neither panics nor leaves the run busy for
/// this process: the next claim performs the release its task could not.
#[test]
fn a_claim_dropped_outside_its_runtime_is_released_by_the_next_claim() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let run_id = RunId::new_v4();
    let first = runtime();
    let claim = first.block_on(async {
        let store = connect(&fixture, PostgresOptions::new()).await;
        store.create(&document(run_id)).await.expect("create")
    });
    drop(first);
    drop(claim);
    runtime().block_on(async {
        let store = connect(&fixture, PostgresOptions::new()).await;
        let claim = store.claim(run_id).await.expect("released by this claim");
        assert_eq!(claim.token(), 2);
    });
}
