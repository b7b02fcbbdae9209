//! [`PostgresStore`]: the store value, its writes and claims, and its [`CheckpointStore`] and
//! [`RunQueue`] implementations; the reads they forward to (snapshots, listings, counts,
//! graphs) are in `reads`.
//!
//! Invariants: every write is one SQL statement (or one transaction) that checks the claim
//! — same token, same owner, lease live on the database's clock — in the same statement as
//! it writes, so a writer whose lease passed to another writes nothing; the document's
//! columns (`flow`, `status`, times, `waiting`) are written in the same statement as the
//! document; a handle holds at most one pooled connection at a time, so no operation waits on
//! itself.

use crate::PostgresError;
use crate::codec::{
    corrupt, database_location, describe, document_text, entry_texts, io_error, nanos_clamped,
    parse_document, parse_entry, parse_trace, stored_time, token_of, token_sql,
};
use crate::lease::{self, Held, Hold};
use crate::options::PostgresOptions;
use crate::pool::{Conn, Pool};
use crate::schema;
use crate::sql::*;
use orchflow_core::RunId;
use orchflow_core::StepTrace;
use orchflow_core::graph::{FlowGraph, parse_fingerprint};
use orchflow_core::store::{
    Checkpoint, CheckpointStore, Claim, FlowKey, JournalEntry, RunCursor, RunDocument, RunListing,
    RunQuery, RunQueue, RunStatus, StatusCounts, StoreError, StoreFuture,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio_postgres::types::ToSql;

mod reads;

/// What a handle shares with its clones, its claims and its heartbeat.
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    /// This handle's `owner` value.
    pub(crate) owner: Arc<str>,
    /// The database and schema, as the key of this process's pending releases.
    pub(crate) target: Arc<str>,
    /// The database (and schema, when not the default), for errors.
    pub(crate) location: String,
    /// `postgres://host:port/db`.
    base: String,
    schema: String,
    pub(crate) ttl: Duration,
    /// The claims this handle holds, renewed by the heartbeat.
    pub(crate) held: Held,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The fingerprints whose graphs this handle wrote (each is written once).
    pub(crate) graphs: Mutex<std::collections::HashSet<u64>>,
    /// The runtime the handle was made on, for releases of claims dropped outside it.
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// A checkpoint store and run queue in PostgreSQL, for many workers on many machines.
///
/// Runs, journal entries and traces are rows of three tables in one schema (see the
/// [crate docs](crate) and [`SCHEMA_VERSION`](crate::SCHEMA_VERSION)); every acknowledged
/// write is committed (PostgreSQL's `fsync` discipline applies). A claim is a lease: the run's
/// row names its holder (this handle: host, process, handle id) and an expiry on the
/// database's clock, which the handle's heartbeat renews every third of the ttl. Every write
/// checks, in the statement that writes, that the claim's fencing token is still the run's,
/// that this handle holds it and that the lease has not expired; otherwise it is refused
/// with [`StoreError::ClaimLost`] and writes nothing. A claim is therefore used through the
/// handle (or a clone of it) that took it; another handle's writes with it are refused.
///
/// Clones share the pool, the claims and the heartbeat; [`PostgresStore::connect`] again
/// gives another writer. The heartbeat stops when the last clone and claim are dropped.
///
/// ```no_run
/// use orchflow::{flow, step};
/// use orchflow_postgres::PostgresStore;
///
/// #[step] async fn draft(topic: String) -> String { format!("a post about {topic}") }
/// #[step] async fn publish(post: String) -> usize { post.len() }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("postgres://orchflow@localhost/orchflow").await?;
/// let f = flow! { draft => publish };
/// let run = f.durable(store.clone()).run("tides".to_string()).await;
/// assert_eq!(run.output, Some("a post about tides".len()));
/// // Every point is saved: after a crash, any process resumes the run from the last one.
/// let again = f.durable(store.clone()).resume(run.run_id).await?;
/// assert_eq!(again.output, run.output);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.location)
            .field("owner", &self.inner.owner)
            .field("lease_ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` with the default [`PostgresOptions`] (schema
    /// `orchflow`, 8 connections, 30-second leases) and brings its schema to this version.
    ///
    /// `url` is anything `tokio-postgres` reads: a URL (`postgres://user:pass@host:5432/db`)
    /// or `key=value` pairs (`host=/var/run/postgresql dbname=runs`). Connections are
    /// unencrypted (`NoTls`): use a local socket, a private network or a TLS tunnel.
    ///
    /// Fails with [`PostgresError::InvalidUrl`] for an unreadable `url`,
    /// [`PostgresError::Store`] (an [`StoreError::Io`] naming the host and database) when the
    /// server cannot be reached or refuses, and [`PostgresError::SchemaTooNew`] when a newer
    /// orchflow-postgres migrated the schema.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), orchflow_postgres::PostgresError> {
    /// let store = orchflow_postgres::PostgresStore::connect("host=localhost dbname=orchflow").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<PostgresStore, PostgresError> {
        PostgresStore::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects as [`connect`](Self::connect) does, with `options`. Also fails with
    /// [`PostgresError::InvalidOption`] for options out of range. Must be called inside a tokio
    /// runtime, which then runs the handle's connections and heartbeat.
    ///
    /// ```no_run
    /// use orchflow_postgres::{PostgresOptions, PostgresStore};
    /// use std::time::Duration;
    /// # #[tokio::main] async fn main() -> Result<(), orchflow_postgres::PostgresError> {
    /// let options = PostgresOptions::new().schema("staging").lease_ttl(Duration::from_secs(10));
    /// let store = PostgresStore::connect_with("postgres://localhost/orchflow", options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, PostgresError> {
        options.validate()?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| PostgresError::InvalidUrl {
                reason: describe(&e),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("orchflow");
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            PostgresError::InvalidOption(
                "PostgresStore::connect must be called inside a tokio runtime".to_string(),
            )
        })?;
        let base = database_location(&config);
        let schema = options.schema.clone();
        let location = if schema == "orchflow" {
            base.clone()
        } else {
            format!("{base} (schema {schema})")
        };
        let pool = Pool::new(config, schema.clone(), location.clone(), options.pool_size);
        {
            let mut conn = pool.get().await?;
            schema::migrate(&mut conn.client, &schema, &location).await?;
        }
        let inner = Arc::new(Inner {
            pool,
            owner: Arc::from(lease::owner_id()),
            target: Arc::from(format!("{base}#{schema}")),
            location,
            base,
            schema,
            ttl: options.lease_ttl,
            held: Mutex::new(Default::default()),
            heartbeat: Mutex::new(None),
            graphs: Mutex::new(std::collections::HashSet::new()),
            runtime,
        });
        let task = tokio::spawn(lease::heartbeat(
            Arc::downgrade(&inner),
            options.heartbeat_interval(),
        ));
        *inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(PostgresStore { inner })
    }

    /// Who this handle is, as the `owner` of the runs it holds and in other writers'
    /// [`StoreError::RunBusy`]: host, process id and a random handle id.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The database (and schema, when not `orchflow`), as errors name it:
    /// `postgres://host:port/database`. Never the password.
    pub fn database(&self) -> &str {
        &self.inner.location
    }

    /// Where a run lives, for messages: `postgres://host:port/db (run <id>)` (with the schema
    /// when not the default).
    fn at(&self, run_id: RunId) -> String {
        let inner = &self.inner;
        if inner.schema == "orchflow" {
            format!("{} (run {run_id})", inner.base)
        } else {
            format!("{} (schema {}, run {run_id})", inner.base, inner.schema)
        }
    }

    fn ttl_secs(&self) -> f64 {
        self.inner.ttl.as_secs_f64()
    }

    /// Records a claim and returns it.
    fn hold(&self, run_id: RunId, token: u64) -> Claim {
        self.inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id, token);
        Claim::new(
            run_id,
            token,
            Hold {
                inner: Arc::clone(&self.inner),
                run_id,
                token,
            },
        )
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    async fn query(
        &self,
        conn: &mut Conn,
        op: &'static str,
        location: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let statement = conn.prepare(sql, location).await?;
        conn.client
            .query(&statement, params)
            .await
            .map_err(|e| io_error(op, location, &e))
    }

    /// Why a guarded write of `claim` wrote nothing: the run is gone, or the claim is lost.
    async fn refused(&self, conn: &mut Conn, claim: &Claim) -> StoreError {
        let at = self.at(claim.run_id());
        match self
            .query(conn, "read", &at, EXISTS, &[&claim.run_id()])
            .await
        {
            Ok(rows) if rows.first().is_some_and(|r| !r.get::<_, bool>(0)) => {
                StoreError::NoDocument(claim.run_id())
            }
            Ok(_) => lost(claim),
            Err(e) => e,
        }
    }
}

/// `ClaimLost` for `claim`.
fn lost(claim: &Claim) -> StoreError {
    StoreError::ClaimLost {
        run_id: claim.run_id(),
        token: claim.token(),
    }
}

impl CheckpointStore for PostgresStore {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let run_id = document.run_id;
            let at = self.at(run_id);
            let text = document_text(document)?;
            let created = stored_time(document.created_at, "created_at", &at)?;
            let updated = stored_time(document.updated_at, "updated_at", &at)?;
            let mut conn = self.inner.pool.get().await?;
            let rows = self
                .query(
                    &mut conn,
                    "create a run in",
                    &at,
                    CREATE,
                    &[
                        &run_id,
                        &document.flow,
                        &document.fingerprint,
                        &document.status.as_str(),
                        &created,
                        &updated,
                        &text,
                        &document.waiting,
                        &&*self.inner.owner,
                        &self.ttl_secs(),
                    ],
                )
                .await?;
            match rows.first() {
                Some(row) => Ok(self.hold(run_id, token_of(row.get(0)))),
                None => Err(StoreError::RunExists(run_id)),
            }
        })
    }

    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let at = self.at(run_id);
            let mut conn = self.inner.pool.get().await?;
            lease::flush(&mut conn, &self.inner.target, &self.inner.location).await?;
            let rows = self
                .query(
                    &mut conn,
                    "claim a run in",
                    &at,
                    CLAIM,
                    &[&run_id, &&*self.inner.owner, &self.ttl_secs()],
                )
                .await?;
            if let Some(row) = rows.first() {
                return Ok(self.hold(run_id, token_of(row.get(0))));
            }
            let rows = self
                .query(&mut conn, "read", &at, HOLDER, &[&run_id])
                .await?;
            match rows.first() {
                None => Err(StoreError::NotFound(run_id)),
                Some(row) => Err(StoreError::RunBusy {
                    run_id,
                    holder: row
                        .get::<_, Option<String>>(0)
                        .unwrap_or_else(|| "a writer that released it just now".to_string()),
                }),
            }
        })
    }

    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let Some(token) = token_sql(claim.token()) else {
                return Err(lost(claim));
            };
            if document.run_id != claim.run_id() {
                return Err(lost(claim));
            }
            let at = self.at(claim.run_id());
            let text = document_text(document)?;
            let created = stored_time(document.created_at, "created_at", &at)?;
            let updated = stored_time(document.updated_at, "updated_at", &at)?;
            let mut conn = self.inner.pool.get().await?;
            let statement = conn.prepare(PUT, &at).await?;
            let written = conn
                .client
                .execute(
                    &statement,
                    &[
                        &claim.run_id(),
                        &token,
                        &&*self.inner.owner,
                        &document.flow,
                        &document.fingerprint,
                        &document.status.as_str(),
                        &created,
                        &updated,
                        &text,
                        &document.waiting,
                    ],
                )
                .await
                .map_err(|e| io_error("write", &at, &e))?;
            if written == 1 {
                Ok(())
            } else {
                Err(self.refused(&mut conn, claim).await)
            }
        })
    }

    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let run_id = claim.run_id();
            let Some(token) = token_sql(claim.token()) else {
                return Err(lost(claim));
            };
            let at = self.at(run_id);
            let (text, traces) = entry_texts(entry)?;
            let mut conn = self.inner.pool.get().await?;
            // A seq beyond i64 can never follow the journal's last.
            let seq = i64::try_from(entry.seq).unwrap_or(-1);
            let statement = conn.prepare(APPEND, &at).await?;
            let result = conn
                .client
                .query_one(
                    &statement,
                    &[&run_id, &token, &&*self.inner.owner, &seq, &text, &traces],
                )
                .await;
            let row = match result {
                Ok(row) => row,
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    // Another append of the same claim landed first: the entry no longer
                    // follows the journal's last.
                    let rows = self
                        .query(&mut conn, "read", &at, LAST_SEQ, &[&run_id])
                        .await?;
                    let last = rows.first().map_or(0, |r| r.get::<_, i64>(0));
                    return Err(StoreError::OutOfSequence {
                        run_id,
                        last: u64::try_from(last).unwrap_or(0),
                        found: entry.seq,
                    });
                }
                Err(e) => return Err(io_error("append to", &at, &e)),
            };
            let (guarded, last, inserted): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            if guarded == 0 {
                return Err(self.refused(&mut conn, claim).await);
            }
            if inserted == 0 {
                return Err(StoreError::OutOfSequence {
                    run_id,
                    last: u64::try_from(last).unwrap_or(0),
                    found: entry.seq,
                });
            }
            Ok(())
        })
    }

    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        Box::pin(async move {
            Ok(self
                .read_run(run_id, 0, true, true)
                .await?
                .and_then(|(document, journal, _)| {
                    document.map(|document| Checkpoint { document, journal })
                }))
        })
    }

    fn document<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<RunDocument>> {
        Box::pin(self.document_of(run_id))
    }

    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        Box::pin(self.list(query))
    }

    fn journal<'a>(
        &'a self,
        run_id: RunId,
        after: u64,
    ) -> StoreFuture<'a, Option<Vec<JournalEntry>>> {
        Box::pin(async move {
            Ok(self
                .read_run(run_id, after, false, true)
                .await?
                .map(|(_, journal, _)| journal))
        })
    }

    fn traces<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Vec<StepTrace>>> {
        Box::pin(async move {
            Ok(self
                .read_run(run_id, 0, false, false)
                .await?
                .map(|(_, _, traces)| traces))
        })
    }

    fn count_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, StatusCounts> {
        Box::pin(self.count(query))
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        Box::pin(self.keep_graph(graph))
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        Box::pin(self.graph_of(fingerprint))
    }

    fn location(&self, run_id: RunId) -> String {
        self.at(run_id)
    }
}

/// Runs are handed out oldest first (`FOR UPDATE SKIP LOCKED`, so workers asking at once
/// never wait for each other nor get the same run); a run is runnable while it is queued or
/// running and no live lease holds it, so a worker that dies gives its runs back when its
/// leases lapse.
impl RunQueue for PostgresStore {
    fn claim_next<'a>(&'a self, flows: &'a [FlowKey]) -> StoreFuture<'a, Option<Claim>> {
        Box::pin(async move {
            if flows.is_empty() {
                return Ok(None);
            }
            let location = &self.inner.location;
            let (names, fingerprints) = flow_arrays(flows);
            let mut conn = self.inner.pool.get().await?;
            lease::flush(&mut conn, &self.inner.target, location).await?;
            let rows = self
                .query(
                    &mut conn,
                    "claim a run in",
                    location,
                    CLAIM_NEXT,
                    &[&names, &fingerprints, &&*self.inner.owner, &self.ttl_secs()],
                )
                .await?;
            Ok(rows
                .first()
                .map(|row| self.hold(row.get(0), token_of(row.get(1)))))
        })
    }

    fn mark_waiting<'a>(&'a self, flows: &'a [FlowKey], reason: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let location = &self.inner.location;
            let (names, fingerprints) = flow_arrays(flows);
            let mut conn = self.inner.pool.get().await?;
            lease::flush(&mut conn, &self.inner.target, location).await?;
            let statement = conn.prepare(MARK_WAITING, location).await?;
            conn.client
                .execute(&statement, &[&names, &fingerprints, &reason])
                .await
                .map_err(|e| io_error("mark waiting runs in", location, &e))
        })
    }

    fn cancel<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, RunStatus> {
        Box::pin(async move {
            let at = self.at(run_id);
            let failed = |e: tokio_postgres::Error| io_error("cancel a run in", &at, &e);
            let mut conn = self.inner.pool.get().await?;
            let read = conn.prepare(CANCEL_READ, &at).await?;
            let write = conn.prepare(CANCEL, &at).await?;
            let tx = conn.client.transaction().await.map_err(failed)?;
            let Some(row) = tx.query_opt(&read, &[&run_id]).await.map_err(failed)? else {
                return Err(StoreError::NotFound(run_id));
            };
            let mut document = parse_document(row.get(0), run_id, &at)?;
            let before = document.status.clone();
            if matches!(before, RunStatus::Completed | RunStatus::Cancelled) {
                return Ok(before);
            }
            document.status = RunStatus::Cancelled;
            document.pending.clear();
            document.waiting = None;
            document.updated_at = SystemTime::now();
            let updated = stored_time(document.updated_at, "updated_at", &at)?;
            let text = document_text(&document)?;
            tx.execute(&write, &[&run_id, &text, &updated])
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(before)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_number_their_parameters_in_the_order_they_are_bound() {
        let q = RunQuery::new()
            .flow("plan")
            .status(RunStatus::Suspended)
            .since(SystemTime::UNIX_EPOCH)
            .until(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        let listing = Listing::new(&q, true, true);
        assert_eq!(
            listing.sql,
            "SELECT run_id, created_at, document::text FROM runs WHERE flow = $1 AND \
             status = $2 AND created_at >= $3 AND created_at < $4 AND \
             (created_at, run_id) < ($5::bigint, $6::uuid) \
             ORDER BY created_at DESC, run_id DESC LIMIT $7"
        );
        assert_eq!(listing.status, Some("suspended"));
        assert_eq!(
            (listing.since, listing.until),
            (Some(0), Some(1_000_000_000))
        );
        let all = Listing::new(&RunQuery::new(), false, false);
        assert_eq!(
            all.sql,
            "SELECT run_id, created_at, document::text FROM runs \
             ORDER BY created_at DESC, run_id DESC"
        );
        let paged = Listing::new(&RunQuery::new().status(RunStatus::Queued), true, true);
        assert!(
            paged
                .sql
                .contains("status = $1 AND (created_at, run_id) < ($2::bigint, $3::uuid)")
                && paged.sql.ends_with("LIMIT $4"),
            "{}",
            paged.sql
        );
    }

    #[test]
    fn options_are_checked_before_anything_connects() {
        assert!(PostgresOptions::new().validate().is_ok());
        assert!(PostgresOptions::new().schema("t_0a9").validate().is_ok());
        for bad in ["", "9a", "A", "a-b", "pg_x", &"a".repeat(64)] {
            assert!(
                PostgresOptions::new().schema(bad).validate().is_err(),
                "{bad:?}"
            );
        }
        let ttl = PostgresOptions::new().lease_ttl(Duration::from_secs(9));
        assert_eq!(ttl.heartbeat_interval(), Duration::from_secs(3));
        assert!(
            ttl.heartbeat_every(Duration::from_millis(5))
                .validate()
                .is_err()
        );
    }
}
