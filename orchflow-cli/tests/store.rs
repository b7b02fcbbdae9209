//! Opening stores by URL and reading a run's document without its journal.

mod common;

use orchflow::store::{CheckpointStore, JsonCheckpointStore, RunStatus};
use orchflow::{flow, human};
use orchflow_cli::store::{OpenError, Store};
use std::time::SystemTime;

/// The document `Store::document` reads is the one `load` reads, before and after a change,
/// found through a listing when the creation time is right and through `load` when it is not.
async fn documents_follow_the_run(store: &Store, run_id: orchflow::RunId) {
    let loaded = store
        .checkpoints()
        .load(run_id)
        .await
        .expect("load")
        .expect("run");
    let created_at = loaded.document.created_at;
    let read = store.document(run_id, created_at).await.expect("document");
    assert_eq!(read.as_ref(), Some(&loaded.document));
    let status = orchflow_cli::runs::ops::answer(store, run_id, None, "yes")
        .await
        .expect("answer");
    assert_eq!(status, RunStatus::Queued);
    let read = store.document(run_id, created_at).await.expect("document");
    assert_eq!(read.map(|d| d.status), Some(RunStatus::Queued));
    let wrong_time = store
        .document(run_id, SystemTime::UNIX_EPOCH)
        .await
        .expect("document");
    assert_eq!(wrong_time.map(|d| d.status), Some(RunStatus::Queued));
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        store.document(unknown, created_at).await.expect("document"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_reads_documents() {
    let f = common::fixture_async().await;
    let store = Store::open(&f.url()).await.expect("open");
    assert_eq!(store.location(), format!("sqlite:{}", f.path.display()));
    documents_follow_the_run(&store, f.suspended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_directory_reads_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let review = human::ask("review", |d: &String| format!("publish {d}?"));
    let run = flow! { #[flow(name = "publish")] (review) => common::decide }
        .with_input(human::Suspend)
        .durable(JsonCheckpointStore::new(dir.path()))
        .run("post".to_string())
        .await;
    // A directory is a JSON store by itself; `json:` says so explicitly.
    let plain = Store::open(&dir.path().display().to_string())
        .await
        .expect("open");
    assert!(plain.queue().is_none(), "a JSON directory has no run queue");
    let store = Store::open(&format!("json:{}", dir.path().display()))
        .await
        .expect("open");
    documents_follow_the_run(&store, run.run_id).await;
}

#[tokio::test]
async fn a_postgres_url_that_cannot_connect_is_an_open_error_without_its_password() {
    let e = Store::open("postgres://me:hunter2@127.0.0.1:1/none")
        .await
        .expect_err("no server listens on port 1");
    assert!(matches!(e, OpenError::Postgres { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("postgres://me:***@127.0.0.1:1/none"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
