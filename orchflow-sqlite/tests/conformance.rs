//! The checkpoint-store and run-queue conformance suites on [`SqliteStore`], every case run,
//! with a fixture that damages rows and lapses leases through a connection of its own.

use orchflow::RunId;
use orchflow::store::Claim;
use orchflow::store::conformance::StoreFixture;
use orchflow_sqlite::SqliteStore;
use rusqlite::{Connection, params};
use std::path::PathBuf;
use std::time::Duration;

/// A store in a file of a temporary directory.
struct SqliteFixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SqliteFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("runs.db");
        SqliteFixture { _dir: dir, path }
    }

    /// A connection of the fixture's own, as another program would open the file.
    fn outside(&self) -> Connection {
        let conn = Connection::open(&self.path).expect("open the database from outside");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }
}

impl StoreFixture for SqliteFixture {
    type Store = SqliteStore;

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open the store")
    }

    /// Writes a record that is not JSON into the run's second entry.
    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        let n = self
            .outside()
            .execute(
                "UPDATE journal SET record = '{\"Point\": oops' WHERE run_id = ?1 AND seq = 2",
                [run_id.to_string()],
            )
            .expect("damage the journal");
        n == 1
    }

    /// Cuts the run's document in half.
    async fn corrupt_document(&self, run_id: RunId) -> bool {
        let n = self
            .outside()
            .execute(
                "UPDATE runs SET document = substr(document, 1, length(document) / 2) WHERE run_id = ?1",
                [run_id.to_string()],
            )
            .expect("damage the document");
        n == 1
    }

    /// Expires the claim's lease in the database; its handle's heartbeat renews only leases
    /// that have not expired, so it stays expired.
    async fn lapse(&self, claim: &Claim) -> bool {
        let n = self
            .outside()
            .execute(
                "UPDATE runs SET lease_expires = 0
                 WHERE run_id = ?1 AND lease_token = ?2 AND lease_owner IS NOT NULL",
                params![claim.run_id().to_string(), claim.token() as i64],
            )
            .expect("lapse the lease");
        n == 1
    }
}

mod contract {
    orchflow::store_conformance!(crate::SqliteFixture::new());
}

mod queue {
    orchflow::store_queue_conformance!(crate::SqliteFixture::new());
}
