//! What the conformance suite does not reach: pages that meet unreadable documents, and
//! errors of a database that changed under the store.

mod common;

use common::{PgFixture, url};
use orchflow_core::RunId;
use orchflow_core::store::{
    CheckpointStore, FORMAT, FORMAT_VERSION, RunCursor, RunDocument, RunQuery, RunStatus,
    StoreError,
};
use orchflow_postgres::{PostgresOptions, PostgresStore};
use std::time::{Duration, UNIX_EPOCH};

fn document(run_id: RunId, minute: u64) -> RunDocument {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 60 * minute);
    RunDocument {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        run_id,
        flow: "plan".to_string(),
        fingerprint: "0123456789abcdef".to_string(),
        shape: "plan".to_string(),
        input: serde_json::json!(minute),
        status: RunStatus::Completed,
        pending: Vec::new(),
        output: None,
        error: None,
        created_at: at,
        updated_at: at,
        waiting: None,
        lineage: Default::default(),
    }
}

async fn store(fixture: &PgFixture) -> PostgresStore {
    PostgresStore::connect_with(&fixture.url, fixture.options.clone())
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_reads_on_past_unreadable_documents_and_reports_them() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let store = store(&fixture).await;
    let mut made = Vec::new();
    for minute in 0..5 {
        let d = document(RunId::new_v4(), minute);
        drop(store.create(&d).await.expect("create"));
        made.push(d);
    }
    // The two newest documents are damaged: the first page of one run must read past both.
    for d in &made[3..] {
        fixture
            .raw()
            .await
            .execute(
                r#"UPDATE runs SET document = '{"format":"orchflow-checkpoint","version":2}'
                   WHERE run_id = $1"#,
                &[&d.run_id],
            )
            .await
            .expect("damage");
    }
    let page = store
        .list_runs(&RunQuery::new().limit(1))
        .await
        .expect("list");
    assert_eq!(page.runs, [made[2].clone()]);
    assert_eq!(page.next, Some(RunCursor::of(&made[2])));
    assert_eq!(page.unreadable.len(), 2, "{:?}", page.unreadable);
    for (e, d) in page.unreadable.iter().zip(made[3..].iter().rev()) {
        match e {
            StoreError::Corrupt { location, .. } => {
                assert!(location.starts_with("postgres://"), "{location}");
                assert!(location.contains(&d.run_id.to_string()), "{location}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    let rest = store
        .list_runs(&RunQuery::new().limit(5).after(page.next.expect("a cursor")))
        .await
        .expect("list");
    assert_eq!(rest.runs, [made[1].clone(), made[0].clone()]);
    assert!(rest.next.is_none() && rest.unreadable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_is_an_io_error_naming_the_run_and_what_the_server_said() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let store = store(&fixture).await;
    let run_id = RunId::new_v4();
    drop(store.create(&document(run_id, 0)).await.expect("create"));
    fixture
        .raw()
        .await
        .batch_execute("DROP TABLE traces, journal, runs")
        .await
        .expect("drop the tables under the store");
    let err = store.load(run_id).await.expect_err("the tables are gone");
    match &err {
        StoreError::Io {
            location, source, ..
        } => {
            assert!(location.contains(&fixture.schema), "{location}");
            assert!(location.contains(&run_id.to_string()), "{location}");
            assert!(source.to_string().contains("does not exist"), "{source}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let err = store
        .create(&document(RunId::new_v4(), 1))
        .await
        .expect_err("the tables are gone");
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}
