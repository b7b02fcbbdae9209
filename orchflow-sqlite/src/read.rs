//! Reads: loads, listings and journal queries on a read-only connection.
//!
//! Invariants: every read of more than one statement runs in one read transaction, so it sees
//! one committed state of the file. A run's `waiting` note is read from its column (which
//! `claim_next` and `mark_waiting` write without touching the document); everything else comes
//! from the document. A row that cannot be read is a [`StoreError::Corrupt`] naming
//! `sqlite:<path> (run <id>)`, and in a listing it is reported apart without hiding the others.

use crate::writer::{from_nanos, nanos};
use orchflow_core::RunId;
use orchflow_core::StepTrace;
use orchflow_core::graph::{FlowGraph, parse_fingerprint};
use orchflow_core::store::{
    JournalEntry, PointRecord, RunCursor, RunDocument, RunListing, RunQuery, RunStatus,
    StatusCounts, StoreError,
};
use rusqlite::{Connection, OptionalExtension};

fn sql(location: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Io {
        op: "read",
        location: location.to_string(),
        source: std::io::Error::other(e),
    }
}

/// Parses a run's document column, with its `waiting` column.
pub(crate) fn document(
    json: &str,
    waiting: Option<String>,
    location: &str,
) -> Result<RunDocument, StoreError> {
    let mut doc: RunDocument = serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        location: location.to_string(),
        reason: format!("the run's document: {e}"),
    })?;
    doc.waiting = waiting;
    Ok(doc)
}

/// The document of `run_id`, `None` when the store has no such run.
pub(crate) fn load_document(
    conn: &Connection,
    file: &str,
    run_id: RunId,
) -> Result<Option<RunDocument>, StoreError> {
    let location = format!("{file} (run {run_id})");
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT document, waiting FROM runs WHERE run_id = ?1")
        .and_then(|mut s| {
            s.query_row([run_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(&location))?;
    row.map(|(json, waiting)| document(&json, waiting, &location))
        .transpose()
}

/// Whether the store has `run_id`.
pub(crate) fn exists(conn: &Connection, file: &str, run_id: RunId) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM runs WHERE run_id = ?1")
        .and_then(|mut s| s.exists([run_id.to_string()]))
        .map_err(sql(&format!("{file} (run {run_id})")))
}

/// The journal entries of `run_id` after `after`, with their traces.
pub(crate) fn entries(
    conn: &Connection,
    file: &str,
    run_id: RunId,
    after: u64,
) -> Result<Vec<JournalEntry>, StoreError> {
    let run_location = format!("{file} (run {run_id}, journal)");
    let key = run_id.to_string();
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    type Row = (i64, String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT seq, record, answered, state, traces FROM journal
             WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND seq > ?2 ORDER BY seq",
        )
        .and_then(|mut s| {
            s.query_map(rusqlite::params![key, after], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(sql(&run_location))?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, record, answered, state, traces) in rows {
        let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt {
            location: format!("{file} (run {run_id}, journal seq {seq})"),
            reason: format!("the entry's {what}: {e}"),
        };
        let record: PointRecord =
            serde_json::from_str(&record).map_err(|e| corrupt("record", e))?;
        let answered: Vec<String> = match answered {
            Some(text) => serde_json::from_str(&text).map_err(|e| corrupt("answered list", e))?,
            None => Vec::new(),
        };
        let state = match state {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt("state", e))?),
            None => None,
        };
        let mut entry = JournalEntry::new(seq.unsigned_abs(), record);
        entry.answered = answered;
        entry.state = state;
        if let Some(text) = traces {
            entry.traces = serde_json::from_str(&text).map_err(|e| corrupt("traces", e))?;
        }
        out.push(entry);
    }
    Ok(out)
}

/// The traces of `run_id`'s entries, in order.
pub(crate) fn traces(
    conn: &Connection,
    file: &str,
    run_id: RunId,
) -> Result<Vec<StepTrace>, StoreError> {
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT seq, traces FROM journal
             WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND traces IS NOT NULL
             ORDER BY seq",
        )
        .and_then(|mut s| {
            s.query_map([run_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(sql(&format!("{file} (run {run_id}, journal)")))?;
    let mut out = Vec::new();
    for (seq, text) in rows {
        let traces: Vec<StepTrace> =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                location: format!("{file} (run {run_id}, journal seq {seq})"),
                reason: format!("the entry's traces: {e}"),
            })?;
        out.extend(traces);
    }
    Ok(out)
}

/// A query's `WHERE` clause and its values: the flow, time and text filters, and with
/// `page` the status filter and the cursor.
fn filters(query: &RunQuery, page: bool) -> (String, Vec<rusqlite::types::Value>) {
    let mut text = String::from(" WHERE 1 = 1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    // Every `?` of a clause is the same value.
    let mut bind = |text: &mut String, clause: &str, value: rusqlite::types::Value| {
        values.push(value);
        text.push_str(&clause.replace('?', &format!("?{}", values.len())));
    };
    if let Some(flow) = &query.flow {
        bind(&mut text, " AND flow = ?", flow.clone().into());
    }
    if let Some(search) = &query.text {
        bind(
            &mut text,
            " AND (substr(run_id, 1, length(?)) = ? OR instr(flow, ?) > 0)",
            search.clone().into(),
        );
    }
    if let Some(since) = query.since {
        bind(&mut text, " AND created_at >= ?", nanos(since).into());
    }
    if let Some(until) = query.until {
        bind(&mut text, " AND created_at < ?", nanos(until).into());
    }
    if !page {
        return (text, values);
    }
    if let Some(status) = &query.status {
        bind(
            &mut text,
            " AND status = ?",
            status.as_str().to_string().into(),
        );
    }
    if let Some(after) = query.after {
        bind(
            &mut text,
            " AND (created_at < ?",
            nanos(after.created_at).into(),
        );
        bind(
            &mut text,
            " OR (created_at = ?",
            nanos(after.created_at).into(),
        );
        bind(
            &mut text,
            " AND run_id < ?))",
            after.run_id.to_string().into(),
        );
    }
    (text, values)
}

/// How many runs have each status under the query's flow, time and text filters.
pub(crate) fn count(
    conn: &Connection,
    file: &str,
    query: &RunQuery,
) -> Result<StatusCounts, StoreError> {
    let (filter, values) = filters(query, false);
    let text = format!("SELECT status, count(*) FROM runs{filter} GROUP BY status");
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(&text)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .map_err(sql(file))?;
    let mut counts = StatusCounts::default();
    for (status, n) in rows {
        // A status this version does not know is a corrupt row, which listings report.
        if let Ok(status) = status.parse::<RunStatus>() {
            counts.add(&status, n.unsigned_abs());
        }
    }
    Ok(counts)
}

/// The graph kept for `fingerprint`, if any.
pub(crate) fn graph(
    conn: &Connection,
    file: &str,
    fingerprint: &str,
) -> Result<Option<FlowGraph>, StoreError> {
    if parse_fingerprint(fingerprint).is_none() {
        return Ok(None);
    }
    let location = format!("{file} (flow graph {fingerprint})");
    let text: Option<String> = conn
        .prepare_cached("SELECT graph FROM flows WHERE fingerprint = ?1")
        .and_then(|mut s| s.query_row([fingerprint], |r| r.get(0)).optional())
        .map_err(sql(&location))?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            location,
            reason: format!("not a flow graph: {e}"),
        })
    })
    .transpose()
}

/// One page of runs, as [`RunQuery::select`] would order and cut it.
pub(crate) fn list(
    conn: &Connection,
    file: &str,
    query: &RunQuery,
) -> Result<RunListing, StoreError> {
    let (filter, mut values) = filters(query, true);
    let mut text = format!("SELECT run_id, created_at, document, waiting FROM runs{filter}");
    text.push_str(" ORDER BY created_at DESC, run_id DESC");
    if let Some(limit) = query.limit {
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        values.push(fetch.into());
        text.push_str(&format!(" LIMIT ?{}", values.len()));
    }
    type Row = (String, i64, String, Option<String>);
    let mut rows: Vec<Row> = conn
        .prepare_cached(&text)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .map_err(sql(file))?;
    let mut next = None;
    if let Some(limit) = query.limit
        && rows.len() > limit
    {
        rows.truncate(limit);
        next = rows.last().map(|(id, created_at, _, _)| RunCursor {
            created_at: from_nanos(*created_at),
            run_id: id.parse().unwrap_or_default(),
        });
    }
    let mut listing = RunListing {
        runs: Vec::with_capacity(rows.len()),
        unreadable: Vec::new(),
        next,
    };
    for (id, _, json, waiting) in rows {
        match document(&json, waiting, &format!("{file} (run {id})")) {
            Ok(doc) => listing.runs.push(doc),
            Err(e) => listing.unreadable.push(e),
        }
    }
    Ok(listing)
}
