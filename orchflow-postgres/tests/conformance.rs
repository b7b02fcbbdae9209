//! The store and queue conformance suites against PostgreSQL, every case, nothing skipped:
//! each case gets a schema of its own on the server of `ORCHFLOW_POSTGRES_URL`. Without the
//! variable each case says it was skipped and passes; under CI it fails instead.

mod common;

mod contract {
    orchflow_core::store_conformance!(optional: crate::common::PgFixture::from_env());
}

mod queue {
    orchflow_core::store_queue_conformance!(optional: crate::common::PgFixture::from_env());
}
