//! Test hooks: damage a store's file from outside, as another program (or a dead worker) would,
//! through a connection of their own. For conformance fixtures; not part of the API.
//!
//! Invariants: each hook changes one row or none and returns whether it changed one.

use orchflow_core::RunId;
use orchflow_core::store::Claim;
use rusqlite::{Connection, params};
use std::path::Path;

fn outside(path: &Path) -> std::io::Result<Connection> {
    let conn = Connection::open(path).map_err(std::io::Error::other)?;
    conn.busy_timeout(crate::schema::BUSY_TIMEOUT)
        .map_err(std::io::Error::other)?;
    Ok(conn)
}

fn execute(path: &Path, sql: &str, params: impl rusqlite::Params) -> std::io::Result<bool> {
    let n = outside(path)?
        .execute(sql, params)
        .map_err(std::io::Error::other)?;
    Ok(n == 1)
}

/// Writes a record that is not JSON into the second journal entry of `run_id`.
pub fn corrupt_journal(path: &Path, run_id: RunId) -> std::io::Result<bool> {
    execute(
        path,
        "UPDATE journal SET record = '{\"Point\": oops'
         WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND seq = 2",
        [run_id.to_string()],
    )
}

/// Cuts the document of `run_id` in half.
pub fn corrupt_document(path: &Path, run_id: RunId) -> std::io::Result<bool> {
    execute(
        path,
        "UPDATE runs SET document = substr(document, 1, length(document) / 2) WHERE run_id = ?1",
        [run_id.to_string()],
    )
}

/// Expires `claim`'s lease in the database. Its handle's heartbeat renews only leases that have
/// not expired, so the lease stays expired, as if its holder had died.
pub fn lapse(path: &Path, claim: &Claim) -> std::io::Result<bool> {
    execute(
        path,
        "UPDATE runs SET lease_expires = 0
         WHERE run_id = ?1 AND lease_token = ?2 AND lease_owner IS NOT NULL",
        params![
            claim.run_id().to_string(),
            i64::try_from(claim.token()).unwrap_or(i64::MAX)
        ],
    )
}
