//! The checkpoint-store and run-queue conformance suites on [`SqliteStore`], every case run,
//! with a fixture that damages rows and lapses leases through a connection of its own.

use orchflow::RunId;
use orchflow::store::Claim;
use orchflow::store::conformance::StoreFixture;
use orchflow_sqlite::{SqliteStore, damage};
use std::path::PathBuf;

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
}

impl StoreFixture for SqliteFixture {
    type Store = SqliteStore;

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open the store")
    }

    async fn corrupt_journal(&self, run_id: RunId) -> bool {
        damage::corrupt_journal(&self.path, run_id).expect("damage the journal")
    }

    async fn corrupt_document(&self, run_id: RunId) -> bool {
        damage::corrupt_document(&self.path, run_id).expect("damage the document")
    }

    async fn lapse(&self, claim: &Claim) -> bool {
        damage::lapse(&self.path, claim).expect("lapse the lease")
    }
}

mod contract {
    orchflow::store_conformance!(crate::SqliteFixture::new());
}

mod queue {
    orchflow::store_queue_conformance!(crate::SqliteFixture::new());
}
