//! Opening a checkpoint store from a URL (`--store URL`, or the environment variable
//! `ORCHFLOW_STORE`).
//!
//! Invariants:
//! * a URL is classified by its text alone ([`StoreUrl::parse`]) before anything is opened, so
//!   a URL that names nothing openable fails with [`OpenError::Unrecognised`] and touches
//!   nothing;
//! * a SQLite path that does not exist is refused ([`OpenError::Missing`]) instead of creating
//!   an empty database: the CLI reads existing stores, it never makes one by accident;
//! * [`Store::location`] never contains a password (see [`redact`]);
//! * [`Store::document`] returns what [`CheckpointStore::load`] would return as the document.

use orchflow::RunId;
use orchflow::SqliteStore;
use orchflow::store::{
    CheckpointStore, JsonCheckpointStore, RunDocument, RunQuery, RunQueue, StoreError,
};
use orchflow::{PostgresOptions, PostgresStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a store URL names, before it is opened.
///
/// * `sqlite:PATH`, or a path ending in `.db`, `.sqlite` or `.sqlite3` → a SQLite file;
/// * `json:DIR`, or an existing directory → a directory of JSON checkpoints;
/// * `postgres://…` or `postgresql://…` → a PostgreSQL database; a `schema=NAME` query
///   parameter names the schema the store's tables are in (`orchflow` by default), the other
///   parameters are the driver's.
///
/// ```
/// use orchflow_cli::store::StoreUrl;
/// assert!(matches!(StoreUrl::parse("runs.db"), Ok(StoreUrl::Sqlite(_))));
/// assert!(matches!(StoreUrl::parse("sqlite:runs"), Ok(StoreUrl::Sqlite(_))));
/// assert!(matches!(StoreUrl::parse("json:/tmp/runs"), Ok(StoreUrl::Json(_))));
/// assert!(matches!(StoreUrl::parse("postgres://u@h/db"), Ok(StoreUrl::Postgres(_))));
/// assert!(StoreUrl::parse("ftp://example").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A directory of JSON checkpoint files.
    Json(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// Why a store could not be opened. Every message names the URL (without its password).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No store URL was given (`--store`, or `ORCHFLOW_STORE`).
    #[error(
        "no store given: pass --store URL or set ORCHFLOW_STORE (sqlite:PATH, json:DIR or postgres://…)"
    )]
    NoStore,
    /// The URL names no kind of store.
    #[error(
        "{url:?} names no store: use sqlite:PATH (or a path ending in .db, .sqlite, .sqlite3), json:DIR (or an existing directory), or postgres://…"
    )]
    Unrecognised {
        /// The URL as given (redacted).
        url: String,
    },
    /// The file or directory the URL names does not exist.
    #[error("{url}: no such {what}")]
    Missing {
        /// The URL as given.
        url: String,
        /// `file` or `directory`.
        what: &'static str,
    },
    /// The SQLite file could not be opened.
    #[error("cannot open {url}: {source}")]
    Sqlite {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: Box<orchflow::SqliteOpenError>,
    },
    /// The PostgreSQL database could not be reached or read.
    #[error("cannot open {url}: {source}")]
    Postgres {
        /// The URL, without its password.
        url: String,
        /// Why.
        #[source]
        source: Box<orchflow::PostgresError>,
    },
}

impl StoreUrl {
    /// Classifies `url` (see the type's docs). Fails with [`OpenError::Unrecognised`] when it
    /// names no kind of store.
    pub fn parse(url: &str) -> Result<StoreUrl, OpenError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if !path.is_empty() {
                return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
            }
        } else if let Some(dir) = url.strip_prefix("json:") {
            let dir = dir.strip_prefix("//").unwrap_or(dir);
            if !dir.is_empty() {
                return Ok(StoreUrl::Json(PathBuf::from(dir)));
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        } else if !url.is_empty() && !url.contains("://") {
            let path = Path::new(url);
            let sqlite_ext = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "db" | "sqlite" | "sqlite3"));
            if sqlite_ext {
                return Ok(StoreUrl::Sqlite(path.to_path_buf()));
            }
            if path.is_dir() {
                return Ok(StoreUrl::Json(path.to_path_buf()));
            }
        }
        Err(OpenError::Unrecognised { url: redact(url) })
    }

    /// The URL as messages show it: `sqlite:/path`, `json:/dir`, or the PostgreSQL URL without
    /// its password.
    pub fn display(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreUrl::Json(p) => format!("json:{}", p.display()),
            StoreUrl::Postgres(u) => redact(u),
        }
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`; other text is
/// returned unchanged.
///
/// ```
/// use orchflow_cli::store::redact;
/// assert_eq!(redact("postgres://me:secret@db:5432/runs"), "postgres://me:***@db:5432/runs");
/// assert_eq!(redact("postgres://me@db/runs"), "postgres://me@db/runs");
/// assert_eq!(redact("sqlite:runs.db"), "sqlite:runs.db");
/// ```
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}://{}:***{}",
        &url[..scheme_end],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// `url` without its `schema=NAME` query parameter, and that name (the driver knows no such
/// parameter; the store takes the schema as an option).
///
/// ```
/// use orchflow_cli::store::split_schema;
/// assert_eq!(
///     split_schema("postgres://h/db?schema=staging&connect_timeout=3"),
///     ("postgres://h/db?connect_timeout=3".to_string(), Some("staging".to_string()))
/// );
/// assert_eq!(split_schema("postgres://h/db"), ("postgres://h/db".to_string(), None));
/// ```
pub fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

/// An open store: the checkpoint store every command reads, and the run queue of the stores
/// that have one (SQLite and PostgreSQL; a JSON directory has none, so it cannot cancel).
#[derive(Clone)]
pub struct Store {
    checkpoints: Arc<dyn CheckpointStore>,
    queue: Option<Arc<dyn RunQueue>>,
    sqlite: Option<SqliteStore>,
    /// Whether listings are indexed by creation time (a database): then a listing of one
    /// millisecond reads one run's document without its journal.
    indexed: bool,
    location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `url` names ([`StoreUrl::parse`]). Fails with an [`OpenError`] naming
    /// the URL when it names nothing openable, the file or directory does not exist, or the
    /// store refuses to open (not a store, a newer schema, unreachable database).
    pub async fn open(url: &str) -> Result<Store, OpenError> {
        let parsed = StoreUrl::parse(url)?;
        let location = parsed.display();
        match parsed {
            StoreUrl::Sqlite(path) => {
                if !path.is_file() {
                    return Err(OpenError::Missing {
                        url: location,
                        what: "file",
                    });
                }
                // Opening is blocking file I/O, done once at start-up.
                let store = SqliteStore::open(&path).map_err(|source| OpenError::Sqlite {
                    url: location.clone(),
                    source: Box::new(source),
                })?;
                Ok(Store::sqlite(store, location))
            }
            StoreUrl::Json(dir) => {
                if !dir.is_dir() {
                    return Err(OpenError::Missing {
                        url: location,
                        what: "directory",
                    });
                }
                let store = JsonCheckpointStore::new(dir);
                Ok(Store {
                    checkpoints: Arc::new(store),
                    queue: None,
                    sqlite: None,
                    indexed: false,
                    location,
                })
            }
            StoreUrl::Postgres(url) => {
                let (url, schema) = split_schema(&url);
                let mut options = PostgresOptions::new();
                if let Some(schema) = schema {
                    options = options.schema(schema);
                }
                let store = PostgresStore::connect_with(&url, options)
                    .await
                    .map_err(|source| OpenError::Postgres {
                        url: location.clone(),
                        source: Box::new(source),
                    })?;
                let store = Arc::new(store);
                Ok(Store {
                    checkpoints: store.clone(),
                    queue: Some(store),
                    sqlite: None,
                    indexed: true,
                    location,
                })
            }
        }
    }

    /// A store over an open SQLite handle, shown as `location`.
    pub fn sqlite(store: SqliteStore, location: String) -> Store {
        let shared = Arc::new(store.clone());
        Store {
            checkpoints: shared.clone(),
            queue: Some(shared),
            sqlite: Some(store),
            indexed: true,
            location,
        }
    }

    /// The checkpoint store.
    pub fn checkpoints(&self) -> &Arc<dyn CheckpointStore> {
        &self.checkpoints
    }

    /// The run queue, for stores that have one (`None` for a JSON directory).
    pub fn queue(&self) -> Option<&Arc<dyn RunQueue>> {
        self.queue.as_ref()
    }

    /// Where the store is, for messages and `/api/info`: the URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The current document of the run `run_id`, created at `created_at` (from an earlier
    /// read of it): in a database, a listing of the millisecond it was created in, which
    /// reads no journal; otherwise, or when that listing does not have it, the document of
    /// [`CheckpointStore::load`]. `Ok(None)` when the store has no such run. Fails with the
    /// store's error.
    pub async fn document(
        &self,
        run_id: RunId,
        created_at: SystemTime,
    ) -> Result<Option<RunDocument>, StoreError> {
        let next_millisecond = created_at.checked_add(Duration::from_millis(1));
        if let (true, Some(until)) = (self.indexed, next_millisecond) {
            let query = RunQuery::new().since(created_at).until(until);
            let listing = self.checkpoints.list_runs(&query).await?;
            if let Some(d) = listing.runs.into_iter().find(|d| d.run_id == run_id) {
                return Ok(Some(d));
            }
        }
        Ok(self.checkpoints.load(run_id).await?.map(|c| c.document))
    }

    /// Waits until every write this process made is committed and visible to other processes
    /// (a SQLite file's writer commits in the background; the other stores write before they
    /// return). Fails with the store's error when the commit fails.
    pub async fn flush(&self) -> Result<(), orchflow::store::StoreError> {
        match &self.sqlite {
            Some(s) => s.flush().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_by_their_text() {
        assert_eq!(
            StoreUrl::parse("sqlite:/x/runs").ok(),
            Some(StoreUrl::Sqlite("/x/runs".into()))
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///x/runs").ok(),
            Some(StoreUrl::Sqlite("/x/runs".into()))
        );
        assert_eq!(
            StoreUrl::parse("a/b.sqlite3").ok(),
            Some(StoreUrl::Sqlite("a/b.sqlite3".into()))
        );
        assert_eq!(
            StoreUrl::parse("json:d").ok(),
            Some(StoreUrl::Json("d".into()))
        );
        let dir = std::env::temp_dir();
        let dir_text = dir.to_string_lossy().to_string();
        assert_eq!(StoreUrl::parse(&dir_text).ok(), Some(StoreUrl::Json(dir)));
        for bad in ["", "sqlite:", "json:", "http://x", "no-such-thing-here"] {
            assert!(
                matches!(StoreUrl::parse(bad), Err(OpenError::Unrecognised { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unrecognised_urls_are_redacted_in_messages() {
        let e = StoreUrl::parse("mysql://me:hunter2@db/x")
            .err()
            .map(|e| e.to_string());
        let text = e.unwrap_or_default();
        assert!(text.contains("me:***@db"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn redact_keeps_urls_without_a_password() {
        assert_eq!(redact("postgresql://h/db?x=1"), "postgresql://h/db?x=1");
        assert_eq!(redact("postgres://a:b@h"), "postgres://a:***@h");
        assert_eq!(redact("postgres://a:b@c@h/d"), "postgres://a:***@h/d");
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("none.db");
        let url = format!("sqlite:{}", path.display());
        let err = Store::open(&url).await.err();
        assert!(matches!(err, Some(OpenError::Missing { .. })), "{err:?}");
        assert!(!path.exists());
    }
}
