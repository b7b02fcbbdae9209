//! A PostgreSQL checkpoint store and run queue for orchflow: [`PostgresStore`], for runs that
//! any of many workers on many machines may pick up.
//!
//! * **Durable.** Every write is committed before its future completes; a run's document,
//!   journal entries and traces are rows of three tables in one schema (`orchflow` unless
//!   configured), brought to [`SCHEMA_VERSION`] by versioned migrations when a store
//!   connects.
//! * **One writer per run, by lease.** A claim is a lease on the run's row with a fencing
//!   token that grows with every claim. Lease expiry is computed on the database's clock
//!   only, so the machines' clocks never matter. Each store handle renews the leases it holds
//!   with one statement every third of the lease ttl; a worker that dies stops renewing, and
//!   its runs become claimable when the ttl passes. Every write checks token, holder and
//!   expiry in the statement that writes: a stale writer's write is refused with
//!   [`StoreError::ClaimLost`], never merged.
//! * **A queue.** [`RunQueue::claim_next`](orchflow_core::store::RunQueue::claim_next) takes
//!   the oldest runnable run of the flows a worker knows with `FOR UPDATE SKIP LOCKED`.
//! * **Queries** (listing with filters and keyset pages, journal, traces, questions) run in
//!   SQL.
//!
//! The store keeps the contract of `orchflow_core::store` and runs its conformance suite.
//!
//! # Schema
//!
//! In the store's schema, `schema_version` records the migrations applied (one row each).
//! `runs` has one row per run: `document` (jsonb) is the run's document and the source of
//! truth for every value returned; `flow`, `fingerprint`, `status`, `created_at`,
//! `updated_at` (nanoseconds since the Unix epoch) and `waiting` repeat its fields for
//! filtering and ordering; `owner`, `token` and `lease_expires` are the lease. `journal`
//! holds `(run_id, seq, entry)`, each entry without its traces, and `traces`
//! `(run_id, seq, idx, trace)`. Indexes serve the listing order (newest first, by flow, by
//! status) and the queue (a partial index on the runnable statuses).
//!
//! # Leases and clocks
//!
//! A claim sets `owner` to the handle's id (host, process id, handle id), `token` to
//! `token + 1` and `lease_expires` to the database's `clock_timestamp()` plus the ttl, in
//! one statement that succeeds only when no live lease holds the run. Writes compare against
//! `clock_timestamp()` too. Dropping a claim releases it on a background task without
//! blocking; a later claim from the same process performs (or waits for) the release first,
//! so it never finds the run busy with the claim it just dropped.
//!
//! ```no_run
//! use orchflow::store::{FlowKey, RunQueue};
//! use orchflow::{flow, step};
//! use orchflow_postgres::PostgresStore;
//!
//! #[step] async fn inc(x: u32) -> u32 { x + 1 }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://orchflow@localhost/orchflow").await?;
//! let f = flow! { inc => inc };
//! // A submitter queues a run…
//! let run_id = f.durable(store.clone()).submit(1).await?;
//! // …and a worker, on any machine, claims the oldest runnable run of the flows it knows.
//! let known = [FlowKey::new(f.name(), f.fingerprint())];
//! if let Some(claim) = store.claim_next(&known).await? {
//!     let run = f.durable(store.clone()).resume_claimed(claim).await?;
//!     assert_eq!((run.run_id, run.output), (run_id, Some(3)));
//! }
//! # Ok(()) }
//! ```

mod codec;
mod lease;
mod options;
mod pool;
mod schema;
mod sql;
mod store;

pub use options::PostgresOptions;
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;
/// The driver, for its `Config` and error types.
pub use tokio_postgres;

use orchflow_core::store::StoreError;

/// Why [`PostgresStore::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string could not be read.
    #[error("invalid PostgreSQL connection string: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// An option is out of range (see [`PostgresOptions`]).
    #[error("invalid PostgresStore option: {0}")]
    InvalidOption(String),
    /// The database could not be reached, refused the connection, or failed while the schema
    /// was migrated: a [`StoreError::Io`] naming the database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The schema was migrated by a newer orchflow-postgres: this one refuses to touch it.
    #[error(
        "{database} has orchflow schema version {found}; this orchflow-postgres knows versions \
         up to {supported}: upgrade orchflow-postgres (or use another schema)"
    )]
    SchemaTooNew {
        /// The database (and schema).
        database: String,
        /// The version the schema is at.
        found: u32,
        /// The newest version this code knows ([`SCHEMA_VERSION`]).
        supported: u32,
    },
}
