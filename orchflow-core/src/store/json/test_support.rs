//! Fixtures shared by the JSON store's unit tests. Everything a test module needs comes with `use …::test_support::*`.

pub(crate) use super::JsonCheckpointStore;
pub(crate) use crate::context::RunId;
pub(crate) use crate::store::{
    CheckpointStore, Claim, FORMAT, FORMAT_VERSION, JournalEntry, PendingInput, PointRecord,
    RunDocument, RunStatus,
};
pub(crate) use std::fs::{self, OpenOptions};
pub(crate) use std::io::Write;
pub(crate) use std::path::Path;
pub(crate) use std::sync::Arc;
pub(crate) use std::time::{Duration, SystemTime};
pub(crate) use tempfile::TempDir;

pub(crate) fn document(run_id: RunId, status: RunStatus) -> RunDocument {
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    RunDocument {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        run_id,
        flow: "plan => act".to_string(),
        fingerprint: "0123456789abcdef".to_string(),
        shape: "plan => act".to_string(),
        input: serde_json::json!({ "goal": "test" }),
        status,
        pending: Vec::new(),
        output: None,
        error: None,
        created_at: created,
        updated_at: created + Duration::from_millis(1500),
        waiting: None,
        lineage: Default::default(),
    }
}

pub(crate) fn entry(seq: u64) -> JournalEntry {
    JournalEntry::new(
        seq,
        PointRecord::Point(serde_json::json!({ "AfterPlan": seq })),
    )
}

pub(crate) fn store() -> (TempDir, JsonCheckpointStore) {
    let dir = TempDir::new().expect("temp dir");
    let store = JsonCheckpointStore::new(dir.path().join("runs"));
    (dir, store)
}

/// A store holding one running run, claimed.
pub(crate) async fn running_run() -> (TempDir, JsonCheckpointStore, RunId, Claim) {
    let (tmp, store) = store();
    let run_id = RunId::new_v4();
    let claim = store
        .create(&document(run_id, RunStatus::Running))
        .await
        .unwrap();
    (tmp, store, run_id, claim)
}

/// The names in the store's directory, hidden ones (`.sessions`) left out.
pub(crate) fn files(store: &JsonCheckpointStore) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store.dir())
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

pub(crate) fn write_journal_line(store: &JsonCheckpointStore, run_id: RunId, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(store.journal_path(run_id))
        .expect("open journal");
    file.write_all(bytes).expect("write journal");
}
