//! The code of the crate's examples (which are `no_run`: they need a server), run for real.

mod common;

use common::{PgFixture, url};
use orchflow::store::{FlowKey, RunQueue};
use orchflow::{flow, step};
use orchflow_postgres::{PostgresOptions, PostgresStore};

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

#[step]
async fn draft(topic: String) -> String {
    format!("a post about {topic}")
}

#[step]
async fn publish(post: String) -> usize {
    post.len()
}

async fn store(fixture: &PgFixture) -> PostgresStore {
    PostgresStore::connect_with(&fixture.url, fixture.options.clone())
        .await
        .expect("connect")
}

/// The crate docs' example: a submitter queues a run, a worker claims and runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_run_is_claimed_and_run_by_a_worker() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let store = store(&fixture).await;
    let f = flow! { inc => inc };
    let run_id = f.durable(store.clone()).submit(1).await.expect("submit");
    let known = [FlowKey::new(f.name(), f.fingerprint())];
    let claim = store
        .claim_next(&known)
        .await
        .expect("claim_next")
        .expect("the queued run");
    let run = f
        .durable(store.clone())
        .resume_claimed(claim)
        .await
        .expect("run");
    assert_eq!((run.run_id, run.output), (run_id, Some(3)));
    assert!(
        store
            .claim_next(&known)
            .await
            .expect("claim_next")
            .is_none()
    );
}

/// `PostgresStore`'s example: a durable run, resumed from its checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_run_resumes_to_its_output() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let store = store(&fixture).await;
    let f = flow! { draft => publish };
    let run = f.durable(store.clone()).run("tides".to_string()).await;
    assert_eq!(run.output, Some("a post about tides".len()));
    let again = f
        .durable(store.clone())
        .resume(run.run_id)
        .await
        .expect("resume");
    assert_eq!(again.output, run.output);
}
