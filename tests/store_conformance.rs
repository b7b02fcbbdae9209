//! The checkpoint-store conformance suite, for the stores of this crate.
//!
//! * The store contract (`orchflow::store::conformance`, one test per case):
//!   `memory::contract::*` and `json::contract::*`; the queue contract
//!   (`orchflow::store::conformance::queue`) for the stores that hand runs to workers:
//!   `memory::queue::*` and `sqlite::queue::*` (`sqlite::contract::*` runs every case too, with
//!   the SQLite fixture's corruption and lapse hooks).
//! * The same durable flows over every store (this file): a run saves each point and
//!   completes, a stopped run resumes where it stopped from another handle, a suspended run
//!   takes an answer, a changed or another flow is refused, a taken run id runs and writes
//!   nothing: `memory::flows::*`, `json::flows::*` and `sqlite::flows::*`.
//! * With the `postgres` feature, all of it for `PostgresStore` (`postgres::*`) on the server
//!   named by `ORCHFLOW_POSTGRES_URL`: each case prints that it is skipped without one, and
//!   fails without one under CI.
//!
//! A new store runs both by adding a module here (or the same lines in its own crate's tests)
//! with its `StoreFixture`.

use orchflow::human::{self, Answer};
use orchflow::store::conformance::StoreFixture;
use orchflow::store::{RunStatus, StoreError};
use orchflow::{CheckpointStore, FlowError, JsonCheckpointStore, ResumeError, RunId, flow, step};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A [`JsonCheckpointStore`] in a temporary directory, with the corruption hooks.
struct JsonFixture {
    dir: tempfile::TempDir,
}

impl JsonFixture {
    fn new() -> Self {
        JsonFixture {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl StoreFixture for JsonFixture {
    type Store = JsonCheckpointStore;

    async fn open(&self) -> JsonCheckpointStore {
        JsonCheckpointStore::new(self.dir.path().join("runs"))
    }

    /// Replaces the journal's second line with one that is JSON but not an entry.
    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        let path = self.open().await.journal_path(run_id);
        let text = std::fs::read_to_string(&path).expect("read the journal");
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        lines[1] = r#"{"seq":2,"record":oops}"#;
        std::fs::write(&path, lines.join("\n") + "\n").expect("write the journal");
        true
    }

    /// Cuts the document in half.
    async fn corrupt_document(&self, run_id: RunId) -> bool {
        let path = self.open().await.document_path(run_id);
        let bytes = std::fs::read(&path).expect("read the document");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write the document");
        true
    }
}

/// A [`SqliteStore`](orchflow::SqliteStore) in a file of a temporary directory, with the
/// corruption and lapse hooks (`orchflow_sqlite::damage`, a connection of their own).
#[cfg(feature = "sqlite")]
struct SqliteFixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

#[cfg(feature = "sqlite")]
impl SqliteFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("runs.db");
        SqliteFixture { _dir: dir, path }
    }
}

#[cfg(feature = "sqlite")]
impl StoreFixture for SqliteFixture {
    type Store = orchflow::SqliteStore;

    async fn open(&self) -> orchflow::SqliteStore {
        orchflow::SqliteStore::open(&self.path).expect("open the store")
    }

    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        orchflow_sqlite::damage::corrupt_journal(&self.path, run_id).expect("damage the journal")
    }

    async fn corrupt_document(&self, run_id: RunId) -> bool {
        orchflow_sqlite::damage::corrupt_document(&self.path, run_id).expect("damage the document")
    }

    async fn lapse(&self, claim: &orchflow::store::Claim) -> bool {
        orchflow_sqlite::damage::lapse(&self.path, claim).expect("lapse the lease")
    }
}

mod memory {
    mod contract {
        orchflow::store_conformance!(orchflow::MemoryStore::default(), corruption: skipped);
    }
    mod queue {
        orchflow::store_queue_conformance!(orchflow::MemoryStore::default(), leases: skipped);
    }
    mod flows {
        crate::flow_cases!(orchflow::MemoryStore::default());
    }
}

mod json {
    mod contract {
        orchflow::store_conformance!(crate::JsonFixture::new());
    }
    mod flows {
        crate::flow_cases!(crate::JsonFixture::new());
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    mod contract {
        orchflow::store_conformance!(crate::SqliteFixture::new());
    }
    mod queue {
        orchflow::store_queue_conformance!(crate::SqliteFixture::new());
    }
    mod flows {
        crate::flow_cases!(crate::SqliteFixture::new());
    }
}

/// A [`orchflow::PostgresStore`] in a schema of its own (dropped at the end) on the server
/// named by `ORCHFLOW_POSTGRES_URL`, with the corruption and lapse hooks.
#[cfg(feature = "postgres")]
struct PostgresFixture {
    url: String,
    schema: String,
}

#[cfg(feature = "postgres")]
impl PostgresFixture {
    /// A fixture on a fresh schema; `None` (after printing that the case is skipped and why)
    /// when `ORCHFLOW_POSTGRES_URL` is not set, except under CI (`CI` set), where a missing
    /// URL fails the case: CI never skips PostgreSQL.
    fn from_env() -> Option<Self> {
        match std::env::var("ORCHFLOW_POSTGRES_URL") {
            Ok(url) if !url.trim().is_empty() => Some(PostgresFixture {
                url,
                schema: format!("t_{}", RunId::new_v4().simple()),
            }),
            _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => panic!(
                "ORCHFLOW_POSTGRES_URL is not set, and CI is: the PostgreSQL cases must run in \
                 CI (.ci/run starts a server with .ci/postgres and exports the URL)"
            ),
            _ => {
                println!(
                    "skipped: ORCHFLOW_POSTGRES_URL is not set (start a throwaway server with \
                     `eval \"$(.ci/postgres)\"`)"
                );
                None
            }
        }
    }

    /// Runs `sql` with `params` in the fixture's schema; how many rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn PgParam + Sync)]) -> u64 {
        use orchflow_postgres::tokio_postgres;
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.schema))
            .await
            .unwrap();
        client.execute(sql, params).await.unwrap()
    }
}

#[cfg(feature = "postgres")]
use orchflow_postgres::tokio_postgres::types::ToSql as PgParam;

#[cfg(feature = "postgres")]
impl Drop for PostgresFixture {
    /// Drops the schema, from a thread of its own (this may run inside a runtime).
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let _ = std::thread::spawn(move || {
            use orchflow_postgres::tokio_postgres;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await
            })
        })
        .join();
    }
}

#[cfg(feature = "postgres")]
impl StoreFixture for PostgresFixture {
    type Store = orchflow::PostgresStore;

    async fn open(&self) -> orchflow::PostgresStore {
        let options = orchflow_postgres::PostgresOptions::new().schema(self.schema.clone());
        orchflow::PostgresStore::connect_with(&self.url, options)
            .await
            .unwrap()
    }

    /// Replaces entry 2 with JSON that is not an entry.
    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        let sql = r#"UPDATE journal SET entry = '{"seq":2,"record":"oops"}'
                     WHERE run_id = $1 AND seq = 2"#;
        self.execute(sql, &[&run_id]).await == 1
    }

    /// Keeps only the document's header.
    async fn corrupt_document(&self, run_id: RunId) -> bool {
        let sql = r#"UPDATE runs SET document = '{"format":"orchflow-checkpoint","version":2}'
                     WHERE run_id = $1"#;
        self.execute(sql, &[&run_id]).await == 1
    }

    /// Moves the lease's expiry into the past (a lapsed lease is never renewed).
    async fn lapse(&self, claim: &orchflow::store::Claim) -> bool {
        let sql = "UPDATE runs SET lease_expires = clock_timestamp() - interval '1 second'
                   WHERE run_id = $1 AND token = $2 AND owner IS NOT NULL";
        let token = i64::try_from(claim.token()).unwrap();
        self.execute(sql, &[&claim.run_id(), &token]).await == 1
    }
}

/// The PostgreSQL store: the contract, queue and flow cases, each passing at once (after a line
/// saying it was skipped) without `ORCHFLOW_POSTGRES_URL`, and failing without it under CI.
#[cfg(feature = "postgres")]
mod postgres {
    mod contract {
        orchflow::store_conformance!(optional: crate::PostgresFixture::from_env());
    }
    mod queue {
        orchflow::store_queue_conformance!(optional: crate::PostgresFixture::from_env());
    }
    mod flows {
        crate::flow_cases!(match crate::PostgresFixture::from_env() {
            Some(fixture) => fixture,
            None => return,
        });
    }
}

/// One `#[tokio::test]` per flow case, for a fixture expression.
#[macro_export]
macro_rules! flow_cases {
    ($fixture:expr) => {
        $crate::flow_cases! { @cases ($fixture)
            a_durable_run_saves_each_point_and_completes
            a_stopped_run_resumes_where_it_stopped_from_another_handle
            a_suspended_run_takes_an_answer
            a_changed_flow_or_another_flow_is_refused
            a_taken_run_id_runs_and_writes_nothing
        }
    };
    (@cases ($fixture:expr) $($case:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::$case($fixture).await;
            }
        )*
    };
}

/// A fresh input for each test, so that the counters and switches below, keyed by input, are
/// not shared by tests running at the same time.
fn fresh() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1000);
    NEXT.fetch_add(100, Ordering::SeqCst)
}

#[path = "support/calls.rs"]
mod calls;
use calls::{called, calls};

/// The inputs on which `flaky` fails.
static BROKEN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn set_broken(x: u32, broken: bool) {
    let mut set = BROKEN.lock().unwrap();
    let set = set.get_or_insert_with(HashSet::new);
    if broken {
        set.insert(x);
    } else {
        set.remove(&x);
    }
}

#[step]
async fn inc(x: u32) -> u32 {
    called("inc", x);
    x + 1
}

#[step]
async fn flaky(x: u32) -> Result<u32, std::io::Error> {
    called("flaky", x);
    if BROKEN
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|b| b.contains(&x))
    {
        return Err(std::io::Error::other("broken"));
    }
    Ok(x * 10)
}

#[step]
async fn draft(x: u32) -> String {
    format!("post {x}")
}

#[step]
async fn decide(a: Answer<String>) -> String {
    format!("{}: {}", a.text, a.value)
}

pub async fn a_durable_run_saves_each_point_and_completes<F: StoreFixture>(fixture: F) {
    let x = fresh();
    let f = flow! { #[flow(name = "conformance_saves")] inc => flaky };
    let run = f.durable(fixture.open().await).run(x).await;
    assert!(run.success, "{:?}", run.error);
    assert_eq!(run.output, Some((x + 1) * 10));
    let store = fixture.open().await;
    let checkpoint = store.load(run.run_id).await.unwrap().unwrap();
    assert_eq!(checkpoint.document.status, RunStatus::Completed);
    assert_eq!(checkpoint.document.flow, "conformance_saves");
    assert_eq!(checkpoint.document.input, serde_json::json!(x));
    assert_eq!(
        checkpoint.document.output,
        Some(serde_json::json!((x + 1) * 10))
    );
    assert_eq!(checkpoint.journal.len(), 2, "one entry per point");
    let seqs: Vec<u64> = checkpoint.journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
    let listing = store
        .list_runs(&orchflow::store::RunQuery::new())
        .await
        .unwrap();
    assert_eq!(listing.runs.len(), 1);
    assert_eq!(listing.runs[0], checkpoint.document);
}

pub async fn a_stopped_run_resumes_where_it_stopped_from_another_handle<F: StoreFixture>(
    fixture: F,
) {
    let x = fresh();
    set_broken(x + 1, true);
    let f = flow! { #[flow(name = "conformance_resume")] inc => flaky };
    let first = f.durable(fixture.open().await).run(x).await;
    assert!(!first.success);
    assert_eq!(first.failed_step.as_deref(), Some("flaky"));
    let store = fixture.open().await;
    let doc = store.load(first.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Failed);

    set_broken(x + 1, false);
    let second = f
        .durable(fixture.open().await)
        .resume(first.run_id)
        .await
        .unwrap();
    assert_eq!(second.output, Some((x + 1) * 10));
    assert_eq!(second.run_id, first.run_id);
    assert_eq!((calls("inc", x), calls("flaky", x + 1)), (1, 2));
    assert_eq!(second.traces.len(), 3, "inc, flaky failed, flaky");

    // A completed run resumes to its output and runs nothing.
    let third = f
        .durable(fixture.open().await)
        .resume(first.run_id)
        .await
        .unwrap();
    assert_eq!(third.output, Some((x + 1) * 10));
    assert_eq!((calls("inc", x), calls("flaky", x + 1)), (1, 2));
    let doc = store.load(first.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Completed);
}

pub async fn a_suspended_run_takes_an_answer<F: StoreFixture>(fixture: F) {
    let x = fresh();
    let review = human::ask("review", |d: &String| format!("publish {d}?"));
    let f = flow! { #[flow(name = "conformance_review")] draft => (review) => decide }
        .with_input(human::Suspend);
    let first = f.durable(fixture.open().await).run(x).await;
    assert!(!first.success);
    assert!(first.error.is_none(), "{:?}", first.error);
    let [pending] = first.suspended.as_slice() else {
        panic!("one question: {:?}", first.suspended)
    };
    assert_eq!(pending.prompt, format!("publish post {x}?"));

    let store = fixture.open().await;
    let doc = store.load(first.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Suspended);
    assert_eq!(doc.pending, first.suspended);
    let listing = store
        .list_runs(&orchflow::store::RunQuery::new())
        .await
        .unwrap();
    let waiting: Vec<_> = listing.pending().map(|(run, q)| (run, q.clone())).collect();
    assert_eq!(waiting, [(first.run_id, pending.clone())]);

    let done = f
        .durable(fixture.open().await)
        .answer(first.run_id, "yes")
        .await
        .unwrap();
    assert_eq!(done.output, Some(format!("yes: post {x}")));
    let err = f
        .durable(fixture.open().await)
        .answer(first.run_id, "no")
        .await
        .unwrap_err();
    assert!(matches!(err, ResumeError::NotSuspended { .. }), "{err}");
    assert!(
        store
            .list_runs(&orchflow::store::RunQuery::new())
            .await
            .unwrap()
            .pending()
            .next()
            .is_none()
    );
}

pub async fn a_changed_flow_or_another_flow_is_refused<F: StoreFixture>(fixture: F) {
    let x = fresh();
    set_broken(x + 1, true);
    let run = flow! { #[flow(name = "conformance_changed")] inc => flaky }
        .durable(fixture.open().await)
        .run(x)
        .await;
    assert!(!run.success);
    let store = fixture.open().await;
    let before = store.load(run.run_id).await.unwrap();

    let changed = flow! { #[flow(name = "conformance_changed")] inc => inc => flaky };
    let err = changed
        .durable(fixture.open().await)
        .resume(run.run_id)
        .await
        .unwrap_err();
    assert!(matches!(err, ResumeError::FlowChanged { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("it was `inc => flaky`, it is now `inc => inc => flaky`"),
        "{err}"
    );
    let other = flow! { #[flow(name = "conformance_other")] inc => flaky };
    let err = other
        .durable(fixture.open().await)
        .resume(run.run_id)
        .await
        .unwrap_err();
    assert!(matches!(err, ResumeError::OtherFlow { .. }), "{err}");
    let err = other
        .durable(fixture.open().await)
        .resume(RunId::new_v4())
        .await
        .unwrap_err();
    assert!(matches!(err, ResumeError::NotFound(_)), "{err}");
    assert_eq!(calls("inc", x), 1, "nothing ran");
    assert_eq!(store.load(run.run_id).await.unwrap(), before);
}

pub async fn a_taken_run_id_runs_and_writes_nothing<F: StoreFixture>(fixture: F) {
    let x = fresh();
    let f = flow! { #[flow(name = "conformance_taken")] inc };
    let first = f.durable(fixture.open().await).run(x).await;
    assert_eq!(first.output, Some(x + 1));
    let store = fixture.open().await;
    let before = store.load(first.run_id).await.unwrap();

    let again = f
        .durable(fixture.open().await)
        .run_as(first.run_id, x + 50, ())
        .await;
    assert!(!again.success);
    assert!(
        matches!(&again.error, Some(FlowError::Checkpoint(StoreError::RunExists(id))) if *id == first.run_id),
        "{:?}",
        again.error
    );
    assert_eq!(calls("inc", x + 50), 0, "nothing ran");
    assert_eq!(store.load(first.run_id).await.unwrap(), before);
}
