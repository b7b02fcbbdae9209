//! The export bundle: one run as one self-contained JSON file (its document, its journal with
//! every attempt's trace, and its flow's graph), for bug reports and for viewing with no store
//! (`orchflow serve --bundle FILE`, or dropped on the viewer's page).
//!
//! Invariants: a bundle always has `"format": "orchflow-bundle"` and `"version": 1`; reading
//! refuses any other format or version with a [`BundleError`] naming the file, and a journal
//! whose entries are not numbered 1, 2, 3… in order.

use orchflow::graph::FlowGraph;
use orchflow::store::{JournalEntry, RunDocument};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::SystemTime;

/// The `format` every bundle carries.
pub const BUNDLE_FORMAT: &str = "orchflow-bundle";
/// The bundle version written and read.
pub const BUNDLE_VERSION: u32 = 1;

/// One exported run.
///
/// ```
/// use orchflow_cli::Bundle;
/// let text = r#"{"format":"orchflow-bundle","version":1,"exported_at":"2026-12-03T10:00:00Z",
///   "document":{"format":"orchflow-checkpoint","version":2,"run_id":"67e55044-10b1-426f-9247-bb680e5fe0c8",
///   "flow":"f","fingerprint":"0000000000000001","shape":"a","input":1,"status":"completed",
///   "pending":[],"output":2,"error":null,"created_at":"2026-12-03T09:59:59Z",
///   "updated_at":"2026-12-03T10:00:00Z"},"journal":[],"graph":null}"#;
/// let bundle = Bundle::from_json(text, "example").unwrap();
/// assert_eq!(bundle.document.flow, "f");
/// assert!(Bundle::from_json("{}", "example").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`].
    pub version: u32,
    /// When the bundle was made (RFC 3339).
    #[serde(with = "rfc3339")]
    pub exported_at: SystemTime,
    /// The run's document.
    pub document: RunDocument,
    /// The run's journal, in order, each entry with the traces of its attempts.
    pub journal: Vec<JournalEntry>,
    /// The flow's graph, when the store has it.
    pub graph: Option<FlowGraph>,
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read.
    #[error("cannot read the bundle {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a bundle.
    #[error("{path} is not an orchflow bundle: {reason}")]
    Invalid {
        /// The file (or what the text came from).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Bundle {
    /// A bundle of `document` and `journal` with `graph`, exported now.
    pub fn new(
        document: RunDocument,
        journal: Vec<JournalEntry>,
        graph: Option<FlowGraph>,
    ) -> Self {
        Bundle {
            format: BUNDLE_FORMAT.to_string(),
            version: BUNDLE_VERSION,
            exported_at: SystemTime::now(),
            document,
            journal,
            graph,
        }
    }

    /// Reads a bundle from JSON text; `origin` names where it came from in errors. Fails with
    /// [`BundleError::Invalid`] for text that is not JSON of a bundle, another format or
    /// version, or a journal out of order.
    pub fn from_json(text: &str, origin: &str) -> Result<Bundle, BundleError> {
        let invalid = |reason: String| BundleError::Invalid {
            path: origin.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(BUNDLE_FORMAT) => {}
            Some(other) => return Err(invalid(format!("its format is {other:?}"))),
            None => return Err(invalid("it has no \"format\"".to_string())),
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(BUNDLE_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "its version is {v}; this orchflow reads version {BUNDLE_VERSION}"
                )));
            }
            None => return Err(invalid("it has no \"version\"".to_string())),
        }
        let bundle: Bundle = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        for (i, entry) in bundle.journal.iter().enumerate() {
            if entry.seq != i as u64 + 1 {
                return Err(invalid(format!(
                    "journal entry {} has seq {} (entries are numbered from 1, in order)",
                    i + 1,
                    entry.seq
                )));
            }
        }
        Ok(bundle)
    }

    /// Reads the bundle in the file at `path`. Fails with [`BundleError::Io`] when the file
    /// cannot be read and as [`from_json`](Self::from_json) does.
    pub fn read(path: &Path) -> Result<Bundle, BundleError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BundleError::Io {
            path: shown.clone(),
            source,
        })?;
        Bundle::from_json(&text, &shown)
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// RFC 3339 times, as the library writes them.
pub(crate) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de};
    use std::time::SystemTime;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .map_err(|e| de::Error::custom(format!("invalid RFC 3339 time {text:?}: {e}")))
    }
}

/// `t` as RFC 3339 text with nanoseconds, as the library writes times; a time RFC 3339 cannot
/// write (before 1970 or after 9999, which only a damaged checkpoint holds) is written as
/// `(out of range: <seconds> s from 1970)`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use orchflow_cli::bundle::format_time;
/// let t = SystemTime::UNIX_EPOCH + Duration::new(1, 5);
/// assert_eq!(format_time(t), "1970-01-01T00:00:01.000000005Z");
/// let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
/// assert!(format_time(far).starts_with("(out of range"));
/// ```
pub fn format_time(t: SystemTime) -> String {
    match writable(t) {
        Ok(t) => humantime::format_rfc3339_nanos(t).to_string(),
        Err(text) => text,
    }
}

/// `t` to the millisecond, as [`format_time`] writes it otherwise.
pub(crate) fn format_time_millis(t: SystemTime) -> String {
    match writable(t) {
        Ok(t) => humantime::format_rfc3339_millis(t).to_string(),
        Err(text) => text,
    }
}

/// `t` when RFC 3339 can write it (1970 to 9999), else the text that stands for it.
fn writable(t: SystemTime) -> Result<SystemTime, String> {
    /// The first second of the year 10000.
    const END: u64 = 253_402_300_800;
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < END => Ok(t),
        Ok(d) => Err(format!("(out of range: {} s from 1970)", d.as_secs())),
        Err(e) => Err(format!(
            "(out of range: -{} s from 1970)",
            e.duration().as_secs()
        )),
    }
}

/// Documents and bundles for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use orchflow::store::RunStatus;

    /// A completed run's document.
    pub(crate) fn document() -> RunDocument {
        RunDocument {
            format: orchflow::store::FORMAT.to_string(),
            version: orchflow::store::FORMAT_VERSION,
            run_id: uuid::Uuid::new_v4(),
            flow: "f".into(),
            fingerprint: "00000000000000aa".into(),
            shape: "a".into(),
            input: serde_json::json!(1),
            status: RunStatus::Completed,
            pending: vec![],
            output: Some(serde_json::json!(2)),
            error: None,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
            waiting: None,
            lineage: Default::default(),
        }
    }

    /// A bundle of [`document`] with an empty journal.
    pub(crate) fn bundle() -> Bundle {
        Bundle::new(document(), Vec::new(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::document;
    use super::*;
    use orchflow::store::PointRecord;

    #[test]
    fn a_bundle_reads_back_what_it_writes() {
        let journal = vec![JournalEntry::new(
            1,
            PointRecord::Point(serde_json::json!({"AfterA": 2})),
        )];
        let b = Bundle::new(document(), journal, None);
        let text = b.to_json().unwrap_or_default();
        let back = Bundle::from_json(&text, "mem");
        assert_eq!(back.ok(), Some(b));
    }

    #[test]
    fn other_formats_versions_and_journals_out_of_order_are_refused() {
        let mut b = Bundle::new(document(), vec![], None);
        let mut value = serde_json::to_value(&b).unwrap_or_default();
        value["format"] = "x".into();
        let e = Bundle::from_json(&value.to_string(), "f.json").err();
        assert!(e.is_some_and(|e| e.to_string().contains("f.json is not an orchflow bundle")));
        value["format"] = BUNDLE_FORMAT.into();
        value["version"] = 2.into();
        let e = Bundle::from_json(&value.to_string(), "f.json").err();
        assert!(e.is_some_and(|e| e.to_string().contains("version is 2")));
        b.journal = vec![JournalEntry::new(2, PointRecord::Stopped)];
        let text = b.to_json().unwrap_or_default();
        let e = Bundle::from_json(&text, "f.json").err();
        assert!(e.is_some_and(|e| e.to_string().contains("seq 2")));
    }
}
