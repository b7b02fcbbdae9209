//! The store and queue conformance suites against PostgreSQL, every case, nothing skipped:
//! each case gets a schema of its own on the server of `ORCHFLOW_POSTGRES_URL`.
//!
//! Compiled when `ORCHFLOW_POSTGRES_URL` or `CI` is set (see `build.rs`); otherwise one test
//! says the suite was skipped and why.

mod common;

#[cfg(orchflow_postgres_server)]
mod contract {
    orchflow_core::store_conformance!(crate::common::PgFixture::new());
}

#[cfg(orchflow_postgres_server)]
mod queue {
    orchflow_core::store_queue_conformance!(crate::common::PgFixture::new());
}

#[cfg(not(orchflow_postgres_server))]
#[test]
fn conformance_suite_skipped() {
    assert!(common::url().is_none());
}
