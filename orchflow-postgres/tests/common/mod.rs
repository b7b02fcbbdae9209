//! What the PostgreSQL tests share: the server's URL from `ORCHFLOW_POSTGRES_URL` (skipping
//! without it, failing without it under CI) and a fixture that gives each test a schema of
//! its own, dropped at the end.
#![allow(dead_code)]

use orchflow_core::RunId;
use orchflow_core::store::Claim;
use orchflow_core::store::conformance::StoreFixture;
use orchflow_postgres::{PostgresOptions, PostgresStore, tokio_postgres};

/// The server to test against: `Some(url)` when `ORCHFLOW_POSTGRES_URL` is set; otherwise
/// prints that the test is skipped and why and gives `None`, except under CI (`CI` set),
/// where a missing URL fails the test so that CI never skips PostgreSQL.
pub fn url() -> Option<String> {
    match std::env::var("ORCHFLOW_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => panic!(
            "ORCHFLOW_POSTGRES_URL is not set, and CI is: the PostgreSQL tests must run in CI \
             (.ci/run starts a server with .ci/postgres and exports the URL)"
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

/// A fresh schema name.
pub fn fresh_schema() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// A raw connection to the server, with `search_path` set to `schema`.
pub async fn raw(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to ORCHFLOW_POSTGRES_URL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .expect("set search_path");
    client
}

/// Drops `schema`, from a thread of its own (a `Drop` may run inside a runtime).
pub fn drop_schema(url: &str, schema: &str) {
    let (url, name) = (url.to_string(), schema.to_string());
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let client = raw(&url, "public").await;
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await
        })
    })
    .join();
    if let Ok(Err(e)) = dropped {
        eprintln!("could not drop test schema {schema}: {e}");
    }
}

/// An empty store in a schema of its own; every `open` is another handle (another writer).
pub struct PgFixture {
    pub url: String,
    pub schema: String,
    pub options: PostgresOptions,
}

impl PgFixture {
    /// A fixture on the server of `ORCHFLOW_POSTGRES_URL`; `None` without one (see [`url`]).
    pub fn from_env() -> Option<Self> {
        url().map(|url| PgFixture::with(url, PostgresOptions::new()))
    }

    /// A fixture with `options` (its schema replaced by a fresh one).
    pub fn with(url: String, options: PostgresOptions) -> Self {
        let schema = fresh_schema();
        PgFixture {
            url,
            options: options.schema(schema.clone()),
            schema,
        }
    }

    pub async fn raw(&self) -> tokio_postgres::Client {
        raw(&self.url, &self.schema).await
    }
}

impl Drop for PgFixture {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}

impl StoreFixture for PgFixture {
    type Store = PostgresStore;

    async fn open(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, self.options.clone())
            .await
            .expect("connect")
    }

    /// Replaces entry 2 with JSON that is not an entry.
    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        let n = self
            .raw()
            .await
            .execute(
                r#"UPDATE journal SET entry = '{"seq":2,"record":"oops"}' WHERE run_id = $1 AND seq = 2"#,
                &[&run_id],
            )
            .await
            .expect("corrupt the journal");
        n == 1
    }

    /// Replaces the document with a checkpoint's header and nothing else.
    async fn corrupt_document(&self, run_id: RunId) -> bool {
        let n = self
            .raw()
            .await
            .execute(
                r#"UPDATE runs SET document = '{"format":"orchflow-checkpoint","version":2,"run_id":"cut"}' WHERE run_id = $1"#,
                &[&run_id],
            )
            .await
            .expect("corrupt the document");
        n == 1
    }

    /// Moves the lease's expiry into the past; the holder's heartbeat never renews a lapsed
    /// lease.
    async fn lapse(&self, claim: &Claim) -> bool {
        let token = i64::try_from(claim.token()).expect("a stored token");
        let n = self
            .raw()
            .await
            .execute(
                "UPDATE runs SET lease_expires = clock_timestamp() - interval '1 second'
                 WHERE run_id = $1 AND token = $2 AND owner IS NOT NULL",
                &[&claim.run_id(), &token],
            )
            .await
            .expect("lapse the lease");
        n == 1
    }
}
