//! What each request does to the database, inside the writer thread's transaction (see the
//! [module docs](super) for the invariants): the statements of every [`Op`], the lease checks
//! they make, and the reasons read back when one is refused.

use super::*;

impl WriterThread {
    /// Where `op` writes, for its errors: `sqlite:<path> (run <id>)`, or the file.
    pub(super) fn run_location(&self, run: Option<RunId>) -> String {
        match run {
            Some(run) => format!("{} (run {run})", self.location),
            None => self.location.clone(),
        }
    }

    pub(super) fn apply(
        &self,
        op: &Op,
        now: i64,
        prepared: &mut Prepared<'_>,
    ) -> Result<Reply, StoreError> {
        // The run, for error messages: formatted only when one is made.
        let run = match op {
            Op::Create { row, .. } | Op::PutDocument { row, .. } => Some(row.run_id),
            Op::Claim { run_id, .. }
            | Op::Append { run_id, .. }
            | Op::Release { run_id, .. }
            | Op::Cancel { run_id } => Some(*run_id),
            _ => None,
        };
        let sql = |e| sql_error("write", self.run_location(run), e);
        match op {
            Op::Create { row, owner } => {
                // One statement: a run id already there inserts nothing.
                let inserted = prepared
                    .get(
                        "INSERT OR FAIL INTO runs (run_id, flow, fingerprint, status, created_at, updated_at,
                         document, waiting, lease_owner, lease_holder, lease_token, lease_expires)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11)
                         ON CONFLICT (run_id) DO NOTHING",
                    )
                    .and_then(|s| {
                        s.execute(params![
                            key(&row.run_id, &mut [0; 36]),
                            row.flow,
                            row.fingerprint,
                            row.status,
                            row.created_at,
                            row.updated_at,
                            row.json,
                            row.waiting,
                            owner.id,
                            owner.holder,
                            now.saturating_add(ttl_nanos(owner.ttl)),
                        ])
                    })
                    .map_err(sql)?;
                if inserted == 0 {
                    return Err(StoreError::RunExists(row.run_id));
                }
                self.held.borrow_mut().insert(
                    row.run_id,
                    Held {
                        row: self.conn.last_insert_rowid(),
                        token: 1,
                        last: 0,
                    },
                );
                Ok(Reply::Token(1))
            }
            Op::Claim { run_id, owner } => {
                let run_id = *run_id;
                let lease = self.lease(run_id).map_err(sql)?;
                let Some(lease) = lease else {
                    return Err(StoreError::NotFound(run_id));
                };
                if lease.live(now) {
                    return Err(StoreError::RunBusy {
                        run_id,
                        holder: lease.holder(),
                    });
                }
                let token = self
                    .take(run_id, lease.token, owner, now, false)
                    .map_err(sql)?;
                Ok(Reply::Token(token))
            }
            Op::ClaimNext { flows, owner } => {
                if flows.is_empty() {
                    return Ok(Reply::Next(None));
                }
                let mut text = String::from(
                    "SELECT run_id, lease_token FROM runs
                     WHERE status IN ('queued', 'running')
                     AND (lease_owner IS NULL OR lease_expires <= ?1) AND (",
                );
                let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
                for (i, key) in flows.iter().enumerate() {
                    if i > 0 {
                        text.push_str(" OR ");
                    }
                    text.push_str(&format!(
                        "(flow = ?{} AND fingerprint = ?{})",
                        values.len() + 1,
                        values.len() + 2
                    ));
                    values.push(key.name.clone().into());
                    values.push(key.fingerprint.clone().into());
                }
                text.push_str(") ORDER BY created_at, run_id LIMIT 1");
                let found: Option<(String, i64)> = self
                    .conn
                    .prepare_cached(&text)
                    .and_then(|mut s| {
                        s.query_row(rusqlite::params_from_iter(values), |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()
                    })
                    .map_err(sql)?;
                let Some((id, token)) = found else {
                    return Ok(Reply::Next(None));
                };
                let run_id = id.parse::<RunId>().map_err(|e| StoreError::Corrupt {
                    location: format!("{} (run {id})", self.location),
                    reason: format!("the run id is not a UUID: {e}"),
                })?;
                // One statement: the lease and the cleared note.
                let token = self
                    .take(run_id, token.unsigned_abs(), owner, now, true)
                    .map_err(sql)?;
                Ok(Reply::Next(Some((run_id, token))))
            }
            Op::Append {
                run_id,
                token,
                owner,
                entry,
            } => {
                let (run_id, token) = (*run_id, *token);
                let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
                let token_value = i64::try_from(token).unwrap_or(i64::MAX);
                let held = self.held.borrow().get(&run_id).copied();
                if let Some(held) = held
                    && held.token == token
                    && entry.seq == held.last + 1
                {
                    let inserted = prepared
                        .get(
                            "INSERT OR FAIL INTO journal (run, seq, record, answered, state, traces)
                             SELECT id, ?2, ?3, ?4, ?5, ?6 FROM runs
                             WHERE id = ?1 AND lease_owner = ?7 AND lease_token = ?8
                             AND lease_expires > ?9",
                        )
                        .and_then(|s| {
                            s.execute(params![
                                held.row,
                                seq,
                                entry.record,
                                entry.answered,
                                entry.state,
                                entry.traces,
                                owner.id,
                                token_value,
                                now,
                            ])
                        })
                        .map_err(sql)?;
                    if inserted == 1 {
                        self.remember(run_id, held.row, token, entry.seq);
                        return Ok(Reply::Done);
                    }
                    return Err(self.refusal(run_id, token, &owner.id, now, Some(entry.seq)));
                }
                // One statement, atomic by itself: the lease, the token, the expiry and the
                // sequence are checked by the insert, so a refused append inserts nothing, and
                // only then is the reason read.
                let inserted = self
                    .conn
                    .prepare_cached(
                        "INSERT OR FAIL INTO journal (run, seq, record, answered, state, traces)
                         SELECT id, ?2, ?3, ?4, ?5, ?6 FROM runs
                         WHERE run_id = ?1 AND lease_owner = ?7 AND lease_token = ?8
                         AND lease_expires > ?9
                         AND (SELECT COALESCE(MAX(seq), 0) FROM journal WHERE run = runs.id)
                             = ?2 - 1",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            key(&run_id, &mut [0; 36]),
                            seq,
                            entry.record,
                            entry.answered,
                            entry.state,
                            entry.traces,
                            owner.id,
                            token_value,
                            now,
                        ])
                    })
                    .map_err(sql)?;
                if inserted == 1 {
                    let row = self
                        .conn
                        .prepare_cached("SELECT run FROM journal WHERE rowid = last_insert_rowid()")
                        .and_then(|mut s| s.query_row([], |r| r.get(0)))
                        .map_err(sql)?;
                    self.remember(run_id, row, token, entry.seq);
                    return Ok(Reply::Done);
                }
                Err(self.refusal(run_id, token, &owner.id, now, Some(entry.seq)))
            }
            Op::PutDocument {
                token,
                owner,
                row,
                last,
            } => {
                let (token, last) = (*token, *last);
                let token_value = i64::try_from(token).unwrap_or(i64::MAX);
                // The run's row: by its number when the writer knows it, else by its id.
                let number = self.held.borrow().get(&row.run_id).map(|h| h.row);
                let mut buf = [0; 36];
                let id = key(&row.run_id, &mut buf);
                let by: &dyn rusqlite::ToSql = match &number {
                    Some(number) => number,
                    None => &id,
                };
                // A document nearly always keeps the run's flow, fingerprint and creation time:
                // this statement writes only the rest, so that the indexes on those columns are
                // not rewritten, and matches nothing when one of them changed.
                let kept = prepared
                    .get(kept_sql(number.is_some(), last))
                    .and_then(|s| {
                        s.execute(params![
                            by,
                            row.status,
                            row.updated_at,
                            row.json,
                            row.waiting,
                            row.flow,
                            row.fingerprint,
                            row.created_at,
                            owner.id,
                            token_value,
                            now,
                        ])
                    })
                    .map_err(sql)?;
                let written = kept == 1 || {
                    let updated = self
                        .conn
                        .prepare_cached(whole_sql(last))
                        .and_then(|mut s| {
                            s.execute(params![
                                id,
                                row.flow,
                                row.fingerprint,
                                row.status,
                                row.created_at,
                                row.updated_at,
                                row.json,
                                row.waiting,
                                owner.id,
                                token_value,
                                now,
                            ])
                        })
                        .map_err(sql)?;
                    updated == 1
                };
                if !written {
                    return Err(self.refusal(row.run_id, token, &owner.id, now, None));
                }
                if last {
                    self.forget(row.run_id);
                }
                Ok(Reply::Done)
            }
            Op::Release {
                run_id,
                token,
                owner,
            } => {
                let (run_id, token) = (*run_id, *token);
                let held = self.held.borrow_mut().remove(&run_id);
                let token_value = i64::try_from(token).unwrap_or(i64::MAX);
                let mut buf = [0; 36];
                let id = key(&run_id, &mut buf);
                let (by, at): (&dyn rusqlite::ToSql, _) = match &held {
                    Some(held) => (&held.row, RELEASE_BY_NUMBER),
                    None => (&id, RELEASE_BY_ID),
                };
                prepared
                    .get(at)
                    .and_then(|s| s.execute(params![by, token_value, owner]))
                    .map_err(sql)?;
                Ok(Reply::Done)
            }
            Op::MarkWaiting { flows, reason } => {
                let candidates: Vec<(String, String, String)> = self
                    .conn
                    .prepare_cached(
                        "SELECT run_id, flow, fingerprint FROM runs
                         WHERE status IN ('queued', 'running') AND waiting IS NULL
                         AND (lease_owner IS NULL OR lease_expires <= ?1)",
                    )
                    .and_then(|mut s| {
                        s.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                            .collect()
                    })
                    .map_err(sql)?;
                let unknown: Vec<String> = candidates
                    .into_iter()
                    .filter(|(_, flow, fingerprint)| {
                        !flows
                            .iter()
                            .any(|k| k.name == *flow && k.fingerprint == *fingerprint)
                    })
                    .map(|(id, _, _)| id)
                    .collect();
                self.atomically(run, || {
                    let mut stmt = self
                        .conn
                        .prepare_cached("UPDATE OR FAIL runs SET waiting = ?2 WHERE run_id = ?1")?;
                    for id in &unknown {
                        stmt.execute(params![id, reason])?;
                    }
                    Ok(())
                })?;
                Ok(Reply::Count(unknown.len() as u64))
            }
            Op::Cancel { run_id } => {
                let run_id = *run_id;
                self.forget(run_id);
                let key = run_id.to_string();
                let row: Option<(String, String)> = self
                    .conn
                    .prepare_cached("SELECT status, document FROM runs WHERE run_id = ?1")
                    .and_then(|mut s| {
                        s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(sql)?;
                let Some((status, document)) = row else {
                    return Err(StoreError::NotFound(run_id));
                };
                let corrupt = |reason: String| StoreError::Corrupt {
                    location: self.run_location(run),
                    reason,
                };
                let before: RunStatus = status.parse().map_err(corrupt)?;
                if matches!(before, RunStatus::Completed | RunStatus::Cancelled) {
                    return Ok(Reply::Status(before));
                }
                let mut doc: RunDocument = serde_json::from_str(&document)
                    .map_err(|e| corrupt(format!("the run's document: {e}")))?;
                doc.status = RunStatus::Cancelled;
                doc.pending.clear();
                doc.waiting = None;
                doc.updated_at = crate::writer::from_nanos(now);
                let row = DocRow::of(&doc)?;
                self.conn
                    .prepare_cached(
                        "UPDATE OR FAIL runs SET status = 'cancelled', document = ?2, waiting = NULL,
                         updated_at = ?3, lease_token = lease_token + 1, lease_owner = NULL,
                         lease_holder = NULL, lease_expires = NULL WHERE run_id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![key, row.json, row.updated_at]))
                    .map_err(sql)?;
                Ok(Reply::Status(before))
            }
            Op::PutGraph {
                fingerprint,
                name,
                graph,
            } => {
                self.conn
                    .prepare_cached(
                        "INSERT OR FAIL INTO flows (fingerprint, name, graph) VALUES (?1, ?2, ?3)
                         ON CONFLICT (fingerprint) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![fingerprint, name, graph]))
                    .map_err(sql)?;
                Ok(Reply::Done)
            }
            Op::Flush | Op::Register { .. } | Op::Unregister { .. } => Ok(Reply::Done),
        }
    }

    pub(super) fn lease(&self, run_id: RunId) -> rusqlite::Result<Option<Lease>> {
        self.conn
            .prepare_cached(
                "SELECT lease_owner, lease_holder, lease_token, lease_expires FROM runs WHERE run_id = ?1",
            )?
            .query_row([run_id.to_string()], |r| {
                Ok(Lease {
                    owner: r.get(0)?,
                    holder: r.get(1)?,
                    token: r.get::<_, i64>(2)?.unsigned_abs(),
                    expires: r.get(3)?,
                })
            })
            .optional()
    }

    /// Gives the run a new lease held by `owner`, with the token after `token`, in one
    /// statement; `clear_waiting` also clears the run's waiting note.
    pub(super) fn take(
        &self,
        run_id: RunId,
        token: u64,
        owner: &Owner,
        now: i64,
        clear_waiting: bool,
    ) -> rusqlite::Result<u64> {
        let next = token + 1;
        let sql = if clear_waiting {
            "UPDATE OR FAIL runs SET lease_owner = ?2, lease_holder = ?3, lease_token = ?4,
             lease_expires = ?5, waiting = NULL WHERE run_id = ?1"
        } else {
            "UPDATE OR FAIL runs SET lease_owner = ?2, lease_holder = ?3, lease_token = ?4,
             lease_expires = ?5 WHERE run_id = ?1"
        };
        self.conn.prepare_cached(sql)?.execute(params![
            run_id.to_string(),
            owner.id,
            owner.holder,
            i64::try_from(next).unwrap_or(i64::MAX),
            now.saturating_add(ttl_nanos(owner.ttl)),
        ])?;
        Ok(next)
    }

    pub(super) fn remember(&self, run_id: RunId, row: i64, token: u64, last: u64) {
        self.held
            .borrow_mut()
            .insert(run_id, Held { row, token, last });
    }

    pub(super) fn forget(&self, run_id: RunId) {
        self.held.borrow_mut().remove(&run_id);
    }

    /// Why a guarded write of `owner` with `token` on `run_id` (an append of `seq`, or a
    /// document when `None`) changed nothing: the run is missing, the claim is lost, or the
    /// entry is out of sequence.
    pub(super) fn refusal(
        &self,
        run_id: RunId,
        token: u64,
        owner: &str,
        now: i64,
        seq: Option<u64>,
    ) -> StoreError {
        match self.check(run_id, token, owner, now) {
            Err(e) => e,
            Ok((_, last)) => match seq {
                Some(found) if found != last + 1 => StoreError::OutOfSequence {
                    run_id,
                    last,
                    found,
                },
                // The write's guard and the check read the same row in one transaction of the
                // only writer: they cannot disagree unless the file changed under it.
                _ => StoreError::Io {
                    op: "write",
                    location: format!("{} (run {run_id})", self.location),
                    source: std::io::Error::other(
                        "the write was refused, yet its claim and sequence check out",
                    ),
                },
            },
        }
    }

    /// Whether the write of `owner` with `token` on `run_id` is honoured now; if so, the run's
    /// row number and the seq of its last journal entry (0 for none), read by one statement.
    pub(super) fn check(
        &self,
        run_id: RunId,
        token: u64,
        owner: &str,
        now: i64,
    ) -> Result<(i64, u64), StoreError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT id, lease_owner, lease_token, lease_expires,
                 (SELECT COALESCE(MAX(seq), 0) FROM journal WHERE run = runs.id)
                 FROM runs WHERE run_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([run_id.to_string()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        Lease {
                            owner: r.get(1)?,
                            holder: None,
                            token: r.get::<_, i64>(2)?.unsigned_abs(),
                            expires: r.get(3)?,
                        },
                        r.get::<_, i64>(4)?.unsigned_abs(),
                    ))
                })
                .optional()
            })
            .map_err(|e| sql_error("read", format!("{} (run {run_id})", self.location), e))?;
        match found {
            None => Err(StoreError::NoDocument(run_id)),
            Some((run, lease, last))
                if lease.owner.as_deref() == Some(owner)
                    && lease.token == token
                    && lease.live(now) =>
            {
                Ok((run, last))
            }
            Some(_) => Err(StoreError::ClaimLost { run_id, token }),
        }
    }
}

/// What a last document sets besides: no lease.
macro_rules! releasing {
    () => {
        ", lease_owner = NULL, lease_holder = NULL, lease_expires = NULL"
    };
}

/// The statements of a document: `?1` the run (its row number or its id), `?2` status, `?3`
/// updated_at, `?4` the document, `?5` waiting, `?6` flow, `?7` fingerprint, `?8` created_at,
/// and the lease: owner `?9`, token `?10`, alive after `?11`. `$release` is empty, or clears
/// the lease with the document.
macro_rules! document_sql {
    (kept $key:literal $release:expr) => {
        concat!(
            "UPDATE OR FAIL runs SET status = ?2, updated_at = ?3, document = ?4, waiting = ?5",
            $release,
            " WHERE ",
            $key,
            " = ?1 AND flow = ?6 AND fingerprint = ?7 AND created_at = ?8
             AND lease_owner = ?9 AND lease_token = ?10 AND lease_expires > ?11"
        )
    };
    (whole $release:expr) => {
        concat!(
            "UPDATE OR FAIL runs SET status = ?4, updated_at = ?6, document = ?7, waiting = ?8,
             flow = ?2, fingerprint = ?3, created_at = ?5",
            $release,
            " WHERE run_id = ?1 AND lease_owner = ?9 AND lease_token = ?10
             AND lease_expires > ?11"
        )
    };
}

/// A document that keeps the run's flow, fingerprint and creation time (and matches nothing
/// otherwise), by the run's row number (`by_number`) or id; `last` releases the lease with it.
fn kept_sql(by_number: bool, last: bool) -> &'static str {
    match (by_number, last) {
        (true, false) => document_sql!(kept "id" ""),
        (true, true) => document_sql!(kept "id" releasing!()),
        (false, false) => document_sql!(kept "run_id" ""),
        (false, true) => document_sql!(kept "run_id" releasing!()),
    }
}

/// A whole document, by the run's id; `last` releases the lease with it.
fn whole_sql(last: bool) -> &'static str {
    if last {
        document_sql!(whole releasing!())
    } else {
        document_sql!(whole "")
    }
}

/// A release of the lease with token `?2` held by `?3`, by the run's row number (`?1`).
const RELEASE_BY_NUMBER: &str = "UPDATE OR FAIL runs SET lease_owner = NULL, lease_holder = NULL,
     lease_expires = NULL WHERE id = ?1 AND lease_token = ?2 AND lease_owner = ?3";

/// [`RELEASE_BY_NUMBER`] by the run's id.
const RELEASE_BY_ID: &str = "UPDATE OR FAIL runs SET lease_owner = NULL, lease_holder = NULL,
     lease_expires = NULL WHERE run_id = ?1 AND lease_token = ?2 AND lease_owner = ?3";

/// The statements one batch uses most, each taken from the connection's statement cache once
/// for the batch rather than once per request (a take hashes the statement's text and copies
/// it). Given back to that cache when dropped.
pub(super) struct Prepared<'c> {
    conn: &'c Connection,
    statements: Vec<(&'static str, rusqlite::CachedStatement<'c>)>,
}

impl<'c> Prepared<'c> {
    pub(super) fn new(conn: &'c Connection) -> Prepared<'c> {
        Prepared {
            conn,
            statements: Vec::new(),
        }
    }

    /// The statement of `sql`, a constant (found again by its address).
    pub(super) fn get(
        &mut self,
        sql: &'static str,
    ) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let i = match self
            .statements
            .iter()
            .position(|(text, _)| std::ptr::eq(*text, sql))
        {
            Some(i) => i,
            None => {
                let statement = self.conn.prepare_cached(sql)?;
                self.statements.push((sql, statement));
                self.statements.len() - 1
            }
        };
        Ok(&mut self.statements[i].1)
    }
}

/// `run_id` as SQLite stores it (lower-case hyphenated text), written into `buf`.
pub(super) fn key<'b>(run_id: &RunId, buf: &'b mut [u8; 36]) -> &'b str {
    run_id.hyphenated().encode_lower(buf)
}

/// A run's lease as its row holds it.
pub(super) struct Lease {
    pub(super) owner: Option<String>,
    pub(super) holder: Option<String>,
    pub(super) token: u64,
    pub(super) expires: Option<i64>,
}

impl Lease {
    pub(super) fn live(&self, now: i64) -> bool {
        self.owner.is_some() && self.expires.is_some_and(|e| e > now)
    }

    pub(super) fn holder(&self) -> String {
        match (&self.holder, &self.owner) {
            (Some(holder), _) => holder.clone(),
            (None, Some(owner)) => format!("store handle {owner}"),
            (None, None) => "another writer".to_string(),
        }
    }
}
