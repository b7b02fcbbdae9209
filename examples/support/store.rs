//! Where a durable example keeps its runs: with `--store FILE`, in that SQLite file, kept at
//! the end so that `orchflow serve --store FILE` shows them; else in a file in the temp dir,
//! removed at the end.

use orchflow::SqliteStore;
use std::path::PathBuf;

/// The example's store file, and whether it is kept.
pub struct ExampleStore {
    pub path: PathBuf,
    keep: bool,
}

impl ExampleStore {
    /// From the command line (`--store FILE`), else a temp file named after `example`.
    pub fn from_args(example: &str) -> Self {
        let args: Vec<String> = std::env::args().collect();
        match args.iter().position(|a| a == "--store") {
            Some(i) => match args.get(i + 1) {
                Some(file) => ExampleStore {
                    path: PathBuf::from(file),
                    keep: true,
                },
                None => {
                    eprintln!("--store needs a file name");
                    std::process::exit(2);
                }
            },
            None => ExampleStore {
                path: std::env::temp_dir()
                    .join(format!("orchflow-{example}-{}.db", std::process::id())),
                keep: false,
            },
        }
    }

    /// Opens the store, or exits with the reason.
    pub fn open(&self) -> SqliteStore {
        match SqliteStore::open(&self.path) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("cannot open the checkpoint store: {e}");
                std::process::exit(1);
            }
        }
    }

    /// Removes a temp store; for a kept one, says how to look at its runs.
    pub fn finish(self, store: SqliteStore) {
        drop(store);
        if self.keep {
            println!(
                "\nthe runs are kept in {0}; see them with: orchflow serve --store {0}",
                self.path.display()
            );
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}
