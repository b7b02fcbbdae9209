//! Connecting: options and URLs checked first, errors that name the database (never the
//! password), and schema migrations that run once however many processes connect at once,
//! refusing a schema newer than this code.

mod common;

use common::{PgFixture, url};
use orchflow_core::store::StoreError;
use orchflow_postgres::{PostgresError, PostgresOptions, PostgresStore, SCHEMA_VERSION};
use std::time::Duration;

#[tokio::test]
async fn bad_options_and_urls_are_refused_before_connecting() {
    for (options, what) in [
        (PostgresOptions::new().schema("Runs"), "schema"),
        (PostgresOptions::new().schema("pg_runs"), "schema"),
        (PostgresOptions::new().schema("a;drop"), "schema"),
        (PostgresOptions::new().schema(""), "schema"),
        (PostgresOptions::new().pool_size(0), "pool_size"),
        (
            PostgresOptions::new().lease_ttl(Duration::from_millis(5)),
            "lease_ttl",
        ),
        (
            PostgresOptions::new().heartbeat_every(Duration::ZERO),
            "heartbeat",
        ),
    ] {
        match PostgresStore::connect_with("host=127.0.0.1 port=1", options).await {
            Err(e @ PostgresError::InvalidOption(_)) => {
                assert!(e.to_string().contains(what), "{e}")
            }
            other => panic!("expected InvalidOption ({what}), got {other:?}"),
        }
    }
    match PostgresStore::connect("postgres://u:s3cret@127.0.0.1:notaport/db").await {
        Err(e @ PostgresError::InvalidUrl { .. }) => {
            assert!(!e.to_string().contains("s3cret"), "{e}")
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_an_io_error_naming_where_but_not_the_password() {
    // Port 1 on the loopback address: nothing listens there.
    let err = PostgresStore::connect("postgres://alice:s3cret@127.0.0.1:1/runs?connect_timeout=5")
        .await
        .expect_err("nothing listens on port 1");
    let text = err.to_string();
    match &err {
        PostgresError::Store(StoreError::Io { op, location, .. }) => {
            assert_eq!(*op, "connect to");
            assert_eq!(location, "postgres://127.0.0.1:1/runs");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(
        text.starts_with("connect to postgres://127.0.0.1:1/runs: "),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("refused") || text.contains("error connecting"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret") && !text.contains("alice"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_connecting_at_once_migrate_the_schema_once() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    let mut connects = Vec::new();
    for _ in 0..8 {
        let (url, options) = (fixture.url.clone(), fixture.options.clone());
        connects.push(tokio::spawn(async move {
            PostgresStore::connect_with(&url, options).await
        }));
    }
    for connect in connects {
        connect
            .await
            .expect("the task ran")
            .expect("every connect succeeds");
    }
    let versions: Vec<i32> = fixture
        .raw()
        .await
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .expect("read schema_version")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (1..=i32::try_from(SCHEMA_VERSION).expect("small")).collect();
    assert_eq!(versions, expected, "each migration recorded once");
    // And again, on a migrated schema.
    PostgresStore::connect_with(&fixture.url, fixture.options.clone())
        .await
        .expect("connect to a migrated schema");
}

#[tokio::test]
async fn a_schema_of_a_newer_version_is_refused_and_left_alone() {
    let Some(url) = url() else { return };
    let fixture = PgFixture::with(url, PostgresOptions::new());
    drop(
        PostgresStore::connect_with(&fixture.url, fixture.options.clone())
            .await
            .expect("connect"),
    );
    let raw = fixture.raw().await;
    let newer = i32::try_from(SCHEMA_VERSION + 1).expect("small");
    raw.execute(
        "INSERT INTO schema_version (version, description) VALUES ($1, 'from the future')",
        &[&newer],
    )
    .await
    .expect("record a newer version");
    let err = PostgresStore::connect_with(&fixture.url, fixture.options.clone())
        .await
        .expect_err("a newer schema");
    match &err {
        PostgresError::SchemaTooNew {
            database,
            found,
            supported,
        } => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            assert!(database.contains(&fixture.schema), "{database}");
            assert!(database.starts_with("postgres://"), "{database}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {}", SCHEMA_VERSION + 1))
            && text.contains(&format!("up to {SCHEMA_VERSION}")),
        "{text}"
    );
    let rows = raw
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await
        .expect("count");
    assert_eq!(
        rows.get::<_, i64>(0),
        i64::from(newer),
        "nothing was migrated"
    );
}
