//! The store's tables and their versioned migrations.
//!
//! A store lives in one schema (`orchflow` unless configured otherwise). Its
//! `schema_version` table has one row per migration applied. [`migrate`] brings the schema to
//! [`SCHEMA_VERSION`] when a store connects: in one transaction, under a transaction-level
//! advisory lock keyed by the schema's name, it creates the schema and the version table if
//! needed, reads the version and applies the missing migrations in order. So processes
//! connecting at once all succeed and each migration runs once (the others wait for the lock,
//! then find nothing to do); a failed migration leaves the schema as it was. A schema at a
//! newer version than this code knows is refused ([`PostgresError::SchemaTooNew`]) and left
//! untouched.
//!
//! Tables (version 1):
//!
//! * `runs`: one row per run. `document` (jsonb) is the [`RunDocument`] and the source of
//!   truth for every value returned; `flow`, `fingerprint`, `status`, `created_at` and
//!   `updated_at` (nanoseconds since the Unix epoch) and `waiting` repeat its fields for
//!   filtering and ordering, and are written in the same statement as the document. The
//!   lease: `owner` (who holds it, or null), `token` (the last claim's fencing token; it only
//!   grows) and `lease_expires` (on the database's clock).
//! * `journal`: `(run_id, seq)` → the entry's JSON without its traces.
//! * `traces`: `(run_id, seq, idx)` → the `idx`-th trace of entry `seq`.
//!
//! Indexes serve the listing order `(created_at DESC, run_id DESC)`, alone and after a flow or
//! a status, and the queue (`runs_runnable`, a partial index on the runnable statuses in the
//! order runs are handed out).
//!
//! [`RunDocument`]: orchflow_core::store::RunDocument
//! [`PostgresError::SchemaTooNew`]: crate::PostgresError::SchemaTooNew

use crate::PostgresError;
use crate::codec::{io_error, quote_ident};
use tokio_postgres::Client;

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = 2;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "runs, journal and traces",
        r#"
CREATE TABLE runs (
    run_id uuid PRIMARY KEY,
    flow text NOT NULL,
    fingerprint text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('queued', 'running', 'suspended', 'completed', 'failed', 'cancelled')),
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    document jsonb NOT NULL,
    waiting text,
    owner text,
    token bigint NOT NULL CHECK (token > 0),
    lease_expires timestamptz
);
CREATE INDEX runs_listing ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_by_flow ON runs (flow, created_at DESC, run_id DESC);
CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_runnable ON runs (created_at, run_id) WHERE status IN ('queued', 'running');
CREATE TABLE journal (
    run_id uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq bigint NOT NULL CHECK (seq > 0),
    entry jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE traces (
    run_id uuid NOT NULL,
    seq bigint NOT NULL,
    idx integer NOT NULL CHECK (idx >= 0),
    trace jsonb NOT NULL,
    PRIMARY KEY (run_id, seq, idx),
    FOREIGN KEY (run_id, seq) REFERENCES journal ON DELETE CASCADE
);
"#,
    ),
    (
        "flow graphs by fingerprint",
        r#"
CREATE TABLE flows (
    fingerprint text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    name text NOT NULL,
    graph jsonb NOT NULL
);
"#,
    ),
];

/// Brings `schema` to [`SCHEMA_VERSION`] (see the module docs). `database` names the
/// database in errors.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: &str,
    database: &str,
) -> Result<(), PostgresError> {
    let failed = |e: tokio_postgres::Error| PostgresError::Store(io_error("migrate", database, &e));
    // Fast path: a schema already at this version needs no lock (nor the right to create).
    let table = format!("{}.schema_version", quote_ident(schema));
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(failed)?
        .get::<_, bool>(0);
    if exists {
        let found = version(client, &table).await.map_err(failed)?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        too_new(found, database)?;
    }
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("orchflow-postgres migrate {schema}")],
    )
    .await
    .map_err(failed)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {table} (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
        s = quote_ident(schema),
    ))
    .await
    .map_err(failed)?;
    let found = version(&tx, &table).await.map_err(failed)?;
    too_new(found, database)?;
    tx.batch_execute(&format!("SET LOCAL search_path TO {}", quote_ident(schema)))
        .await
        .map_err(failed)?;
    for (i, (description, sql)) in MIGRATIONS.iter().enumerate() {
        let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if version <= found {
            continue;
        }
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            &format!("INSERT INTO {table} (version, description) VALUES ($1, $2)"),
            &[&i32::try_from(version).unwrap_or(i32::MAX), description],
        )
        .await
        .map_err(failed)?;
        tracing::info!(target: "orchflow_postgres", "{database}: schema {schema} migrated to version {version} ({description})");
    }
    tx.commit().await.map_err(failed)?;
    Ok(())
}

/// The version recorded in `table` (0 when empty).
async fn version(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
) -> Result<u32, tokio_postgres::Error> {
    let found: i32 = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {table}"),
            &[],
        )
        .await?
        .get(0);
    Ok(u32::try_from(found).unwrap_or(0))
}

/// Refuses a schema newer than this code.
fn too_new(found: u32, database: &str) -> Result<(), PostgresError> {
    if found > SCHEMA_VERSION {
        return Err(PostgresError::SchemaTooNew {
            database: database.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_migration_is_the_schema_version() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }
}
