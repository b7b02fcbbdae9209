//! Flow graphs on disk: `flows/<fingerprint>.json`, one pretty JSON [`FlowGraph`] per
//! fingerprint.
//!
//! Invariants: a graph file is written to a temporary file in `flows/`, `fsync`ed, and
//! hard-linked into place, so a reader sees a whole graph or none, and a graph already there is
//! never replaced (a fingerprint names one structure, so the first writer's graph is every
//! writer's). A fingerprint that is not 16 hex digits never becomes a path: it has no graph.

use super::files::{not_special, open_dir, sync_dir};
use super::{Inner, corrupt, io_error};
use crate::graph::{FlowGraph, parse_fingerprint};
use crate::store::StoreError;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

impl Inner {
    fn flows_dir(&self) -> PathBuf {
        self.dir.join("flows")
    }

    /// Writes `graph` under its fingerprint unless a graph is there already.
    pub(super) fn put_graph(&self, graph: &FlowGraph, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.flows_dir();
        let path = dir.join(format!("{:016x}.json", graph.fingerprint));
        if path.exists() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(
            "{:016x}.json.tmp.{}.{n}",
            graph.fingerprint,
            std::process::id()
        ));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_error("write", &tmp, e))?;
            file.write_all(bytes)
                .map_err(|e| io_error("write", &tmp, e))?;
            file.sync_all().map_err(|e| io_error("fsync", &tmp, e))?;
            let handle = open_dir(&dir)?;
            match fs::hard_link(&tmp, &path) {
                Ok(()) => sync_dir(&handle, &dir),
                // Another writer was first: its graph is the same structure.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_error("link", &path, e)),
            }
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    /// The graph kept for `fingerprint`, if any.
    pub(super) fn graph(&self, fingerprint: &str) -> Result<Option<FlowGraph>, StoreError> {
        let Some(fingerprint) = parse_fingerprint(fingerprint) else {
            return Ok(None);
        };
        let path = self.flows_dir().join(format!("{fingerprint:016x}.json"));
        not_special(&path)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let graph: FlowGraph = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&path, format!("not a flow graph: {e}")))?;
        if graph.fingerprint != fingerprint {
            return Err(corrupt(
                &path,
                format!("the graph is of fingerprint {:016x}", graph.fingerprint),
            ));
        }
        Ok(Some(graph))
    }
}

#[cfg(test)]
mod tests {
    use super::super::JsonCheckpointStore;
    use crate::graph::FlowGraph;
    use crate::store::{CheckpointStore, StoreError};
    use std::borrow::Cow;

    fn graph(fingerprint: u64, name: &'static str) -> FlowGraph {
        FlowGraph {
            name: Cow::Borrowed(name),
            fingerprint,
            nodes: Cow::Borrowed(&[]),
            edges: Cow::Borrowed(&[]),
            flows: Vec::new(),
        }
    }

    #[tokio::test]
    async fn graphs_are_kept_once_per_fingerprint_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = JsonCheckpointStore::new(tmp.path());
        assert_eq!(store.graph("00000000000000ab").await.unwrap(), None);
        store.put_graph(&graph(0xab, "first")).await.unwrap();
        store.put_graph(&graph(0xab, "second")).await.unwrap();
        let read = store.graph("00000000000000ab").await.unwrap().unwrap();
        assert_eq!(read.name, "first");
        let files: Vec<_> = std::fs::read_dir(tmp.path().join("flows"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["00000000000000ab.json"], "no temporary file left");
    }

    #[tokio::test]
    async fn a_fingerprint_that_is_not_16_hex_digits_is_never_a_path() {
        let tmp = tempfile::tempdir().unwrap();
        let store = JsonCheckpointStore::new(tmp.path().join("runs"));
        std::fs::create_dir_all(tmp.path().join("runs/flows")).unwrap();
        std::fs::write(tmp.path().join("secret.json"), "{}").unwrap();
        for bad in [
            "../../secret",
            "../secret",
            "",
            "00000000000000AB0",
            "zz00000000000000",
        ] {
            assert_eq!(store.graph(bad).await.unwrap(), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_damaged_graph_file_is_corrupt_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let store = JsonCheckpointStore::new(tmp.path());
        std::fs::create_dir_all(tmp.path().join("flows")).unwrap();
        let path = tmp.path().join("flows/0000000000000001.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = store.graph("0000000000000001").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { location, .. } if location.contains("0000000000000001.json")),
            "{err}"
        );
        let other = serde_json::to_vec(&graph(2, "other")).unwrap();
        std::fs::write(&path, other).unwrap();
        let err = store.graph("0000000000000001").await.unwrap_err();
        assert!(
            err.to_string().contains("fingerprint 0000000000000002"),
            "{err}"
        );
    }
}
