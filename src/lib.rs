// The README is the crate's documentation, and its blocks are doctests. One of them runs the
// agent, which this crate has only with its `agent` feature: without it, a short text instead.
#![cfg_attr(feature = "agent", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "agent"),
    doc = "Compile-checked async workflows for Rust: `#[step]` and `flow!` over a small tokio \
           runtime. See the README (this crate's documentation with the `agent` feature)."
)]

pub use orchflow_core::*;

/// Helpers for offline tests: flaky steps, event collection, scripted human input
/// ([`orchflow_core::testing`]) and, with the `agent` feature, the scripted LLM client
/// (`ScriptedLlm`).
pub mod testing {
    #[cfg(feature = "agent")]
    pub use orchflow_agent::testing::*;
    pub use orchflow_core::testing::*;
}

/// The SQLite checkpoint store: durable runs in one file, claims as leases, group commit
/// ([`orchflow_sqlite`]; the `sqlite` feature, on by default).
#[cfg(feature = "sqlite")]
pub use orchflow_sqlite::{OpenError as SqliteOpenError, SqliteOptions, SqliteStore};

/// The Planner → Executor → Verifier agent: LLM clients, tools, the solver, eval (the `agent`
/// feature).
#[cfg(feature = "agent")]
pub use orchflow_agent as agent;

/// The PostgreSQL checkpoint store and run queue, for many workers on many machines (the
/// `postgres` feature; see `orchflow_postgres`).
#[cfg(feature = "postgres")]
pub use orchflow_postgres::{PostgresError, PostgresOptions, PostgresStore};
