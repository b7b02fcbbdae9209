//! Reading runs back: a run's document and journal, and the listing of every run.
//!
//! Invariants:
//!
//! * Loading needs no claim and writes nothing. A missing document is "no such run"; a present
//!   one must be a valid document of a version this code reads, for the run it is named after.
//! * A document that says its run made progress needs its journal
//!   ([`StoreError::MissingJournal`]): a run is never silently restarted from its input.
//! * Listing reads every `<run_id>.json` in the directory; one that cannot be read is reported
//!   in [`RunListing::unreadable`] without hiding the others, and one removed while the
//!   directory is read is simply not listed.

use super::files::not_special;
use super::journal::parse_journal;
use super::{Inner, corrupt, io_error, location};
use crate::context::RunId;
use crate::store::{
    Checkpoint, FORMAT, FORMAT_VERSION, OLDEST_FORMAT_VERSION, RunDocument, RunListing, RunQuery,
    StoreError,
};
use std::fs;
use std::io;
use std::path::Path;

impl Inner {
    pub(super) fn list(&self, query: &RunQuery) -> Result<RunListing, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RunListing::default()),
            Err(e) => return Err(io_error("read", &self.dir, e)),
        };
        let (mut runs, mut unreadable) = (Vec::new(), Vec::new());
        for entry in entries {
            let entry = entry.map_err(|e| io_error("read", &self.dir, e))?;
            let name = entry.file_name();
            let Some(run_id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|stem| stem.parse::<RunId>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let read = not_special(&path).and_then(|()| {
                let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
                parse_document(&path, &bytes)
            });
            match read {
                Ok(document) if document.run_id == run_id => runs.push(document),
                Ok(document) => unreadable.push(corrupt(
                    &path,
                    format!(
                        "the document is for run {}, not run {run_id}",
                        document.run_id
                    ),
                )),
                // Removed since the directory was read: not a run any more.
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => unreadable.push(e),
            }
        }
        Ok(query.select(runs, unreadable))
    }

    /// A run's document alone.
    pub(super) fn document(&self, run_id: RunId) -> Result<Option<RunDocument>, StoreError> {
        let document_path = self.document_path(run_id);
        not_special(&document_path)?;
        let bytes = match fs::read(&document_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &document_path, e)),
        };
        let document = parse_document(&document_path, &bytes)?;
        if document.run_id != run_id {
            return Err(corrupt(
                &document_path,
                format!(
                    "the document is for run {}, not run {run_id}",
                    document.run_id
                ),
            ));
        }
        Ok(Some(document))
    }

    pub(super) fn load(&self, run_id: RunId) -> Result<Option<Checkpoint>, StoreError> {
        let Some(document) = self.document(run_id)? else {
            return Ok(None);
        };
        let journal_path = self.journal_path(run_id);
        not_special(&journal_path)?;
        let journal = match fs::read(&journal_path) {
            Ok(bytes) => parse_journal(&journal_path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if document.made_progress() {
                    return Err(StoreError::MissingJournal {
                        location: location(&journal_path),
                    });
                }
                Vec::new()
            }
            Err(e) => return Err(io_error("read", &journal_path, e)),
        };
        Ok(Some(Checkpoint { document, journal }))
    }
}

/// Checks the format and version on a loose parse first, so that a document of another version
/// reports its version even when its fields differ, then parses the whole document.
fn parse_document(path: &Path, bytes: &[u8]) -> Result<RunDocument, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(corrupt(
            path,
            "not an orchflow checkpoint (not a JSON object)",
        ));
    };
    match object.get("format") {
        Some(serde_json::Value::String(format)) if format == FORMAT => {}
        Some(format) => {
            return Err(corrupt(
                path,
                format!("not an orchflow checkpoint (format {format})"),
            ));
        }
        None => {
            return Err(corrupt(
                path,
                "not an orchflow checkpoint (no \"format\" field)",
            ));
        }
    }
    let version = match object.get("version") {
        Some(version) => version,
        None => return Err(corrupt(path, "no \"version\" field")),
    };
    let found = version
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| corrupt(path, format!("invalid version {version}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::UnsupportedVersion {
            location: location(path),
            found,
            expected: FORMAT_VERSION,
            oldest: OLDEST_FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[tokio::test]
    async fn a_document_that_made_progress_needs_its_journal() {
        let (_tmp, store, run_id, claim) = running_run().await;
        store.append(&claim, &entry(1)).await.unwrap();
        store
            .put_document(&claim, &document(run_id, RunStatus::Suspended))
            .await
            .unwrap();
        fs::remove_file(store.journal_path(run_id)).unwrap();
        let err = store.load(run_id).await.unwrap_err();
        let path = store.journal_path(run_id);
        assert!(
            matches!(&err, StoreError::MissingJournal { location: p } if *p == path.display().to_string()),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        // A document written once at its creation, with no journal, is a run that never saved.
        let fresh = RunId::new_v4();
        let mut doc = document(fresh, RunStatus::Running);
        doc.updated_at = doc.created_at;
        let claim = store.create(&doc).await.unwrap();
        drop(claim);
        fs::remove_file(store.journal_path(fresh)).unwrap();
        assert!(store.load(fresh).await.unwrap().unwrap().journal.is_empty());
    }

    #[tokio::test]
    async fn truncated_document_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() / 2]).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { location: p, .. } if *p == path.display().to_string()),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("EOF while parsing"), "{text}");
        assert!(text.contains("line "), "{text}");
    }

    #[tokio::test]
    async fn garbage_document_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        fs::write(&path, b"\x00\xff not json at all").unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("is not a valid checkpoint"), "{text}");
        assert!(text.contains("line 1 column 1"), "{text}");
    }

    #[tokio::test]
    async fn document_of_another_format_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        fs::write(&path, br#"{"format": "something-else", "version": 1}"#).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(r#"not an orchflow checkpoint (format "something-else")"#),
            "{text}"
        );

        fs::write(&path, b"[1, 2, 3]").unwrap();
        let err = store.load(run_id).await.unwrap_err();
        assert!(
            err.to_string().contains("not an orchflow checkpoint"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn document_of_another_version_is_unsupported() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value["version"] = serde_json::json!(3);
        // A future version may add fields and change others: the version is still reported.
        value["new_field"] = serde_json::json!({ "x": 1 });
        value["status"] = serde_json::json!({ "paused": true });
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnsupportedVersion { location: p, found: 3, expected: 2, oldest: 1 } if *p == path.display().to_string()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} has checkpoint format version 3; this orchflow reads versions 1 to 2",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn version_1_documents_are_read() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value["version"] = serde_json::json!(1);
        value["status"] = serde_json::json!("suspended");
        value["pending"] = serde_json::json!({ "step": "review", "prompt": "ok?" });
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert_eq!(
            loaded.document.pending,
            [PendingInput::new("review", "review", "ok?")]
        );

        value["pending"] = serde_json::Value::Null;
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        let loaded = store.load(run_id).await.unwrap().unwrap();
        assert!(loaded.document.pending.is_empty());
    }

    #[tokio::test]
    async fn document_of_the_wrong_shape_is_corrupt() {
        let (_tmp, store, run_id, _claim) = running_run().await;
        let path = store.document_path(run_id);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        value.as_object_mut().unwrap().remove("flow");
        fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(text.contains("missing field `flow`"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[tokio::test]
    async fn document_of_another_run_is_corrupt() {
        let (_tmp, store) = store();
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        let _claim = store
            .create(&document(a, RunStatus::Running))
            .await
            .unwrap();
        fs::copy(store.document_path(a), store.document_path(b)).unwrap();
        let err = store.load(b).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("is for run {a}, not run {b}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreadable_document_is_a_read_error() {
        let (_tmp, store) = store();
        let run_id = RunId::new_v4();
        let path = store.document_path(run_id);
        fs::create_dir_all(&path).unwrap();

        let err = store.load(run_id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: "read", location: p, .. } if *p == path.display().to_string()),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("read {}: ", path.display())),
            "{err}"
        );
    }

    #[tokio::test]
    async fn listing_scans_documents_and_reports_bad_ones_by_path() {
        let (_tmp, store) = store();
        assert!(
            store
                .list_runs(&RunQuery::new())
                .await
                .unwrap()
                .runs
                .is_empty(),
            "no directory yet"
        );
        let (a, bad) = (RunId::new_v4(), RunId::new_v4());
        let _ca = store
            .create(&document(a, RunStatus::Running))
            .await
            .unwrap();
        fs::write(store.document_path(bad), b"{ torn").unwrap();
        // Not a run's document: not listed, not reported.
        fs::write(store.dir().join("notes.json"), b"{}").unwrap();

        let listing = store.list_runs(&RunQuery::new()).await.unwrap();
        let ids: Vec<_> = listing.runs.iter().map(|d| d.run_id).collect();
        assert_eq!(ids, [a]);
        assert_eq!(listing.unreadable.len(), 1);
        assert!(
            listing.unreadable[0]
                .to_string()
                .contains(&store.document_path(bad).display().to_string())
        );
    }
}
