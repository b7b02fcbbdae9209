//! The database file: opening it, refusing files that are not ours, and the versioned schema.
//!
//! Invariants: the schema version is SQLite's `PRAGMA user_version`, 0 for a file we have never
//! written. [`MIGRATIONS`]`[i]` takes a file from version `i` to `i + 1`; every pending step runs
//! in one `BEGIN IMMEDIATE` transaction at open, which re-reads the version under the write lock,
//! so two processes opening a new file at once migrate it once. Nothing is written to a file
//! before it is known to be a SQLite database that is empty or ours: a file of a newer schema, a
//! file that is not SQLite and a SQLite database with tables of someone else's are refused with
//! an [`OpenError`] naming the file.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tables of every schema version (`traces` is version 1's).
const OUR_TABLES: [&str; 4] = ["runs", "journal", "traces", "flows"];

/// The schema steps, in order: step `i` takes a file from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1: runs, their journal entries, and the entries' traces. Entries and traces
    // name their run by its row number (`runs.id`), not its 36-character id: their keys stay
    // small, so the pages a batch of appends dirties (and the commit writes) are few.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        flow TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        document TEXT NOT NULL,
        waiting TEXT,
        lease_owner TEXT,
        lease_holder TEXT,
        lease_token INTEGER NOT NULL DEFAULT 0,
        lease_expires INTEGER
    );
    CREATE TABLE journal (
        run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        record TEXT NOT NULL,
        answered TEXT,
        state TEXT,
        PRIMARY KEY (run, seq)
    );
    CREATE TABLE traces (
        run INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        trace TEXT NOT NULL,
        PRIMARY KEY (run, seq, idx),
        FOREIGN KEY (run, seq) REFERENCES journal (run, seq) ON DELETE CASCADE
    );
    CREATE INDEX runs_newest ON runs (created_at DESC, run_id DESC);
    CREATE INDEX runs_by_flow ON runs (flow, created_at DESC, run_id DESC);
    CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
    CREATE INDEX runs_runnable ON runs (created_at, run_id) WHERE status IN ('queued', 'running');
    CREATE INDEX runs_by_lease_owner ON runs (lease_owner) WHERE lease_owner IS NOT NULL;",
    // Version 2: an entry's traces are a JSON array in the entry's row (NULL for none), so an
    // append is one row and one statement, atomic by itself; the traces table goes. A trace
    // that is not JSON is kept as a JSON string, and reading its entry reports it corrupt.
    "ALTER TABLE journal ADD COLUMN traces TEXT;
    UPDATE journal SET traces = (
        SELECT json_group_array(
            CASE WHEN json_valid(t.trace) THEN json(t.trace) ELSE t.trace END ORDER BY t.idx)
        FROM traces t WHERE t.run = journal.run AND t.seq = journal.seq)
    WHERE EXISTS (SELECT 1 FROM traces t WHERE t.run = journal.run AND t.seq = journal.seq);
    DROP TABLE traces;",
    // Version 3: the graphs of the flows whose runs the file holds, by fingerprint, so that
    // tools without the flows' code can draw their runs.
    "CREATE TABLE flows (
        fingerprint TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        graph TEXT NOT NULL
    );",
];

/// The schema version this code writes (`PRAGMA user_version`): the number of migration steps
/// it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a statement waits for another connection's write lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a database file could not be opened as a store. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be opened, read or written (missing directory, permissions, disk).
    #[error("{op} sqlite:{path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists and is not a SQLite database.
    #[error("sqlite:{path} is not a SQLite database; refusing to overwrite it")]
    NotSqlite {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database that holds tables of something else.
    #[error(
        "sqlite:{path} is a SQLite database of something else (tables {tables}); refusing to write to it"
    )]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// Its tables, comma-separated.
        tables: String,
    },
    /// The file was written by a newer orchflow, with a schema this code does not know.
    #[error(
        "sqlite:{path} has schema version {found}; this orchflow-sqlite reads versions up to {supported}"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The file's schema version.
        found: u32,
        /// The newest version this code knows ([`SCHEMA_VERSION`]).
        supported: u32,
    },
    /// The file does not say it uses write-ahead logging after being asked to (a file system
    /// that cannot hold the WAL index, for instance).
    #[error("sqlite:{path} cannot use write-ahead logging (journal mode stays {mode:?})")]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
}

impl From<OpenError> for orchflow_core::store::StoreError {
    /// An open failure as a store error: `Io` for I/O, `Corrupt` for a file that is not ours,
    /// `UnsupportedVersion` for a newer schema; each names `sqlite:<path>`.
    fn from(e: OpenError) -> Self {
        use orchflow_core::store::StoreError;
        match e {
            OpenError::Io { op, path, source } => StoreError::Io {
                op,
                location: format!("sqlite:{}", path.display()),
                source: std::io::Error::other(source),
            },
            OpenError::NewerSchema {
                path,
                found,
                supported,
            } => StoreError::UnsupportedVersion {
                location: format!("sqlite:{} (schema)", path.display()),
                found,
                expected: supported,
                oldest: 1,
            },
            other @ (OpenError::NotSqlite { .. }
            | OpenError::NotOurs { .. }
            | OpenError::NoWal { .. }) => {
                let path = match &other {
                    OpenError::NotSqlite { path }
                    | OpenError::NotOurs { path, .. }
                    | OpenError::NoWal { path, .. } => path.clone(),
                    _ => PathBuf::new(),
                };
                StoreError::Corrupt {
                    location: format!("sqlite:{}", path.display()),
                    reason: other.to_string(),
                }
            }
        }
    }
}

/// Whether `e` is SQLite saying the file is not a database.
fn not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    )
}

/// Opens the write connection of `path`: checks the file is empty or ours, migrates it to
/// [`SCHEMA_VERSION`], and sets WAL, `synchronous = FULL` and the busy timeout. Foreign keys
/// are not enforced: runs are never deleted, and a journal row takes its run's row number from
/// the `runs` row its insert selects, so its reference holds by construction (enforcing it
/// would cost every append a second lookup of its run and a statement journal).
pub(crate) fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    let io = |op| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { op, path, source }
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(io("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(io("configure"))?;
    // Look before writing anything: a file that is not ours is left exactly as it is.
    check_ours(&conn, path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| classify(e, path, "set journal mode of"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    // The writer checkpoints only past a large WAL: a background connection checkpoints
    // (`open_checkpointer`), off the path of the saves.
    // The page cache (8 MiB) holds what a thousand runs in flight write (their rows, the ends
    // of the journal and of the indexes). It is not larger because SQLite scans all of it at
    // every commit in which a B-tree page split moved a page (it renumbers the page through
    // the lock page, past the end of the file, and then drops the pages past the end).
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA wal_autocheckpoint = 16384;
         PRAGMA cache_size = -8192;",
    )
    .map_err(io("configure"))?;
    stable_plans(&conn).map_err(io("configure"))?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens the background checkpointer's connection to a file [`open_writer`] has opened.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, OpenError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")?;
        Ok(conn)
    })
    .map_err(|source| OpenError::Io {
        op: "open the checkpointer of",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

/// Opens a read-only connection to a file [`open_writer`] has opened.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    stable_plans(&conn)?;
    Ok(conn)
}

/// Keeps each cached statement's plan: without it, SQLite re-prepares a statement whenever a
/// newly bound value might change whether a partial index applies (ours have constant
/// conditions, so the plan never would), which cost as much as the writes themselves.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// A driver error at open, as "not SQLite" when it is that.
fn classify(e: rusqlite::Error, path: &Path, op: &'static str) -> OpenError {
    if not_a_database(&e) {
        OpenError::NotSqlite {
            path: path.to_path_buf(),
        }
    } else {
        OpenError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// The file's schema version, and its tables other than SQLite's own.
fn inspect(conn: &Connection) -> Result<(u32, Vec<String>), rusqlite::Error> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((version, tables))
}

/// Refuses a file that is not SQLite, of a newer schema, or with tables that are not ours.
fn check_ours(conn: &Connection, path: &Path) -> Result<u32, OpenError> {
    let (version, tables) = inspect(conn).map_err(|e| classify(e, path, "read"))?;
    if version > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let foreign = tables.iter().any(|t| !OUR_TABLES.contains(&t.as_str()));
    if foreign || (version == 0 && !tables.is_empty()) {
        return Err(OpenError::NotOurs {
            path: path.to_path_buf(),
            tables: tables.join(", "),
        });
    }
    Ok(version)
}

/// Applies the pending [`MIGRATIONS`] in one transaction, after checking again under the lock.
pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<(), OpenError> {
    let io = |op| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { op, path, source }
    };
    conn.execute_batch("BEGIN IMMEDIATE").map_err(io("lock"))?;
    let result = (|| {
        let version = check_ours(conn, path)?;
        for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(step).map_err(io("migrate"))?;
            conn.pragma_update(None, "user_version", from as i64 + 1)
                .map_err(io("migrate"))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .map_err(io("commit migration of")),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    #[test]
    fn a_fresh_file_gets_the_current_schema_and_reopens() {
        let dir = temp();
        let path = dir.path().join("runs.db");
        let conn = open_writer(&path).expect("create");
        let (version, tables) = inspect(&conn).expect("inspect");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(tables, ["flows", "journal", "runs"]);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("sync");
        assert_eq!(sync, 2, "synchronous = FULL");
        conn.execute(
            "INSERT INTO runs (run_id, flow, fingerprint, status, created_at, updated_at, document)
             VALUES ('r', 'f', 'x', 'queued', 1, 1, '{}')",
            [],
        )
        .expect("insert");
        drop(conn);
        let again = open_writer(&path).expect("reopen");
        let n: i64 = again
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1, "reopening keeps the runs");
        assert_eq!(inspect(&again).expect("inspect").0, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions() {
        let dir = temp();
        let path = dir.path().join("runs.db");
        drop(open_writer(&path).expect("create"));
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
            .expect("bump");
        drop(conn);
        let err = open_writer(&path).expect_err("newer");
        match &err {
            OpenError::NewerSchema {
                path: p,
                found,
                supported,
            } => {
                assert_eq!(
                    (p, *found, *supported),
                    (&path, SCHEMA_VERSION + 7, SCHEMA_VERSION)
                );
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("version {}", SCHEMA_VERSION + 7)),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_refused_and_left_alone() {
        let dir = temp();
        let path = dir.path().join("runs.db");
        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &garbage).expect("write");
        let err = open_writer(&path).expect_err("garbage");
        assert!(
            matches!(&err, OpenError::NotSqlite { path: p } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(std::fs::read(&path).expect("read"), garbage, "untouched");
    }

    #[test]
    fn a_database_of_something_else_is_refused_and_left_alone() {
        let dir = temp();
        let path = dir.path().join("app.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
            .expect("create");
        drop(conn);
        let before = std::fs::read(&path).expect("read");
        let err = open_writer(&path).expect_err("not ours");
        match &err {
            OpenError::NotOurs { path: p, tables } => {
                assert_eq!(p, &path);
                assert_eq!(tables, "users");
            }
            other => panic!("expected NotOurs, got {other:?}"),
        }
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");
        // Our tables next to someone else's are not ours either.
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("ours too");
        drop(conn);
        assert!(matches!(open_writer(&path), Err(OpenError::NotOurs { .. })));
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_file() {
        let dir = temp();
        let path = dir.path().join("no/such/dir/runs.db");
        let err = open_writer(&path).expect_err("no directory");
        assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        let store_error = orchflow_core::store::StoreError::from(err);
        assert!(
            store_error
                .location()
                .is_some_and(|l| l.contains("no/such/dir/runs.db"))
        );
    }

    /// A version-1 file's traces move into their entries' rows, in order, and a trace that is
    /// not JSON is kept (as a JSON string) rather than failing the migration.
    #[test]
    fn version_one_traces_move_into_their_entries() {
        let dir = temp();
        let path = dir.path().join("runs.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO runs (id, run_id, flow, fingerprint, status, created_at, updated_at, document)
             VALUES (7, 'r', 'f', 'x', 'running', 1, 1, '{}');
             INSERT INTO journal (run, seq, record) VALUES (7, 1, '1'), (7, 2, '2'), (7, 3, '3');
             INSERT INTO traces (run, seq, idx, trace)
             VALUES (7, 1, 1, '{\"b\":1}'), (7, 1, 0, '{\"a\":0}'), (7, 3, 0, 'not json');",
        )
        .expect("a version-1 run");
        drop(conn);
        let conn = open_writer(&path).expect("migrate");
        assert_eq!(
            inspect(&conn).expect("inspect"),
            (
                SCHEMA_VERSION,
                vec![
                    "flows".to_string(),
                    "journal".to_string(),
                    "runs".to_string()
                ]
            )
        );
        let traces: Vec<Option<String>> = conn
            .prepare("SELECT traces FROM journal WHERE run = 7 ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("traces");
        assert_eq!(
            traces,
            [
                Some(r#"[{"a":0},{"b":1}]"#.to_string()),
                None,
                Some(r#"["not json"]"#.to_string())
            ]
        );
    }

    #[test]
    fn every_migration_step_applies_in_order_from_version_zero() {
        // An empty file at version 0 is migrated step by step to the current version; a second
        // migrate is a no-op.
        let dir = temp();
        let path = dir.path().join("runs.db");
        let conn = Connection::open(&path).expect("open");
        migrate(&conn, &path).expect("migrate");
        assert_eq!(inspect(&conn).expect("inspect").0, SCHEMA_VERSION);
        migrate(&conn, &path).expect("again");
        assert_eq!(inspect(&conn).expect("inspect").0, SCHEMA_VERSION);
    }
}
