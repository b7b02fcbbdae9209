//! [`PostgresOptions`]: how a store connects, and the checks that refuse options no store can
//! work with.

use crate::PostgresError;
use std::time::Duration;

/// How a [`PostgresStore`](crate::PostgresStore) connects: the schema its tables live in, its pool size, the
/// length of its leases and how often it renews them.
///
/// ```
/// use orchflow_postgres::PostgresOptions;
/// use std::time::Duration;
/// let options = PostgresOptions::new()
///     .schema("orchflow_staging")
///     .pool_size(4)
///     .lease_ttl(Duration::from_secs(10));
/// assert_eq!(options.heartbeat_interval(), Duration::from_secs(10) / 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) lease_ttl: Duration,
    pub(crate) heartbeat: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "orchflow".to_string(),
            pool_size: 8,
            lease_ttl: Duration::from_secs(30),
            heartbeat: None,
        }
    }
}

impl PostgresOptions {
    /// The defaults: schema `orchflow`, 8 connections, 30-second leases renewed every 10 s.
    pub fn new() -> Self {
        PostgresOptions::default()
    }

    /// The schema the store's tables live in (created if missing). A lowercase SQL identifier:
    /// a letter or `_`, then letters, digits or `_`, at most 63 bytes; anything else is
    /// refused at connect with [`PostgresError::InvalidOption`].
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// At most this many connections per store handle (at least 1). Each operation uses one
    /// connection; the heartbeat and releases borrow one briefly.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// How long a claim stays valid without being renewed: a worker that dies loses its runs
    /// this long after its last heartbeat. Between 100 ms and one day.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How often the handle renews its leases; a third of the lease ttl unless set. An
    /// interval longer than the ttl lets leases lapse between heartbeats (what a test of a
    /// dead worker wants, and nothing else). At least 10 ms.
    pub fn heartbeat_every(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// The schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The lease ttl.
    pub fn ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// How often leases are renewed.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat.unwrap_or(self.lease_ttl / 3)
    }

    /// Refuses options no store can work with.
    pub(crate) fn validate(&self) -> Result<(), PostgresError> {
        let s = &self.schema;
        let valid = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !s.starts_with("pg_");
        if !valid {
            return Err(PostgresError::InvalidOption(format!(
                "schema {s:?}: a schema name is a lowercase letter or `_`, then lowercase \
                 letters, digits or `_`, at most 63 bytes, not starting with `pg_`"
            )));
        }
        if self.pool_size == 0 {
            return Err(PostgresError::InvalidOption(
                "pool_size 0: a store needs at least one connection".to_string(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(86_400)).contains(&self.lease_ttl) {
            return Err(PostgresError::InvalidOption(format!(
                "lease_ttl {:?}: between 100 ms and one day",
                self.lease_ttl
            )));
        }
        if self.heartbeat_interval() < Duration::from_millis(10) {
            return Err(PostgresError::InvalidOption(format!(
                "heartbeat interval {:?}: at least 10 ms",
                self.heartbeat_interval()
            )));
        }
        Ok(())
    }
}
