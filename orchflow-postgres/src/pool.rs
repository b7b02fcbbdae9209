//! A small connection pool: at most `size` connections to one database, each with its
//! `search_path` set to the store's schema and its prepared statements cached.
//!
//! Invariant: a connection exists only while it is either idle in `idle` or checked out by a
//! [`Pooled`] that holds one of the semaphore's `size` permits; a new connection is opened only
//! by a holder of a permit who found `idle` empty. So there are never more than `size`
//! connections, and a checkout waits (never fails) while all are in use. A connection whose
//! socket closed is dropped on return instead of going back to `idle`.

use crate::codec::{io_error, quote_ident};
use orchflow_core::store::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Statement};

/// One connection and the statements prepared on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    /// The statement for `sql`, prepared on this connection once.
    pub(crate) async fn prepare(
        &mut self,
        sql: &str,
        location: &str,
    ) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .prepare(sql)
            .await
            .map_err(|e| io_error("prepare a statement on", location, &e))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// The pool (see the module docs for its invariant).
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    schema: String,
    location: String,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// A checked-out connection; goes back to the pool when dropped.
pub(crate) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Only `drop` takes the connection out.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled connection is present until dropped"))
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a pooled connection is present until dropped"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}

impl Pool {
    /// A pool of at most `size` connections (at least one) configured by `config`.
    pub(crate) fn new(
        config: tokio_postgres::Config,
        schema: String,
        location: String,
        size: usize,
    ) -> Pool {
        Pool {
            config,
            schema,
            location,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.clamp(1, Semaphore::MAX_PERMITS)),
        }
    }

    /// A connection: an idle one, or a new one when none is idle and fewer than `size` exist;
    /// waits while all are in use. Fails when a new connection cannot be opened.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| io_error("connect to", &self.location, &"the pool is closed"))?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(conn) = idle.pop() {
                if !conn.client.is_closed() {
                    found = Some(conn);
                    break;
                }
            }
            found
        };
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().await?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }

    /// Opens a connection, drives it on a task of the current runtime and sets its
    /// `search_path` to the schema alone.
    async fn open(&self) -> Result<Conn, StoreError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| io_error("connect to", &self.location, &e))?;
        let location = self.location.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "orchflow_postgres", "connection to {location} ended: {e}");
            }
        });
        client
            .batch_execute(&format!("SET search_path TO {}", quote_ident(&self.schema)))
            .await
            .map_err(|e| io_error("set the search path on", &self.location, &e))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }
}
