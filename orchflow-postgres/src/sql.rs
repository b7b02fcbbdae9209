//! The statements of [`PostgresStore`](crate::PostgresStore), and the listing query built from
//! a [`RunQuery`]'s filters. Every write statement checks the claim (token, owner, lease live
//! on the database's clock) in the statement that writes.

use crate::codec::nanos_clamped;
use orchflow_core::store::{FlowKey, RunQuery, RunStatus};

pub(crate) const CREATE: &str = "INSERT INTO runs
    (run_id, flow, fingerprint, status, created_at, updated_at, document, waiting, owner, token,
     lease_expires)
    VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, 1,
            clock_timestamp() + $10::float8 * interval '1 second')
    ON CONFLICT (run_id) DO NOTHING
    RETURNING token";

pub(crate) const CLAIM: &str = "UPDATE runs SET token = token + 1, owner = $2,
        lease_expires = clock_timestamp() + $3::float8 * interval '1 second'
    WHERE run_id = $1 AND (owner IS NULL OR lease_expires < clock_timestamp())
    RETURNING token";

pub(crate) const HOLDER: &str = "SELECT owner FROM runs WHERE run_id = $1";

pub(crate) const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = $1)";

pub(crate) const PUT: &str =
    "UPDATE runs SET flow = $4, fingerprint = $5, status = $6, created_at = $7,
        updated_at = $8, document = $9::text::jsonb, waiting = $10
    WHERE run_id = $1 AND token = $2 AND owner = $3 AND lease_expires > clock_timestamp()";

pub(crate) const APPEND: &str = "WITH guard AS (
        SELECT run_id FROM runs
        WHERE run_id = $1 AND token = $2 AND owner = $3 AND lease_expires > clock_timestamp()
        FOR UPDATE
    ), last AS (
        SELECT coalesce(max(seq), 0) AS seq FROM journal WHERE run_id = $1
    ), entry AS (
        INSERT INTO journal (run_id, seq, entry)
        SELECT $1, $4::bigint, $5::text::jsonb FROM guard, last WHERE last.seq = $4::bigint - 1
        RETURNING seq
    ), traced AS (
        INSERT INTO traces (run_id, seq, idx, trace)
        SELECT $1, $4::bigint, t.ord - 1, t.trace::jsonb
        FROM guard, last, unnest($6::text[]) WITH ORDINALITY AS t(trace, ord)
        WHERE last.seq = $4::bigint - 1
    )
    SELECT (SELECT count(*) FROM guard), (SELECT seq FROM last), (SELECT count(*) FROM entry)";

pub(crate) const LAST_SEQ: &str = "SELECT coalesce(max(seq), 0) FROM journal WHERE run_id = $1";

pub(crate) const DOCUMENT: &str = "SELECT document::text FROM runs WHERE run_id = $1";

pub(crate) const JOURNAL: &str =
    "SELECT seq, entry::text FROM journal WHERE run_id = $1 AND seq > $2 ORDER BY seq";

pub(crate) const TRACES: &str =
    "SELECT seq, trace::text FROM traces WHERE run_id = $1 AND seq > $2 ORDER BY seq, idx";

pub(crate) const CLAIM_NEXT: &str = "WITH next AS (
        SELECT run_id FROM runs
        WHERE status IN ('queued', 'running')
          AND (owner IS NULL OR lease_expires < clock_timestamp())
          AND (flow, fingerprint) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        ORDER BY created_at, run_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE runs SET token = runs.token + 1, owner = $3,
        lease_expires = clock_timestamp() + $4::float8 * interval '1 second',
        waiting = NULL,
        document = CASE WHEN jsonb_typeof(runs.document) = 'object'
                        THEN runs.document - 'waiting' ELSE runs.document END
    FROM next WHERE runs.run_id = next.run_id
    RETURNING runs.run_id, runs.token";

pub(crate) const MARK_WAITING: &str = "UPDATE runs SET waiting = $3,
        document = CASE WHEN jsonb_typeof(document) = 'object'
                        THEN jsonb_set(document, '{waiting}', to_jsonb($3::text))
                        ELSE document END
    WHERE status IN ('queued', 'running')
      AND (owner IS NULL OR lease_expires < clock_timestamp())
      AND waiting IS NULL
      AND (flow, fingerprint) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))";

pub(crate) const CANCEL_READ: &str = "SELECT document::text FROM runs WHERE run_id = $1 FOR UPDATE";

pub(crate) const CANCEL: &str = "UPDATE runs SET status = 'cancelled', document = $2::text::jsonb,
        updated_at = $3, waiting = NULL, token = token + 1, owner = NULL, lease_expires = NULL
    WHERE run_id = $1";

/// The flows' names and fingerprints as two arrays, for `unnest`.
pub(crate) fn flow_arrays(flows: &[FlowKey]) -> (Vec<&str>, Vec<&str>) {
    flows
        .iter()
        .map(|k| (k.name.as_str(), k.fingerprint.as_str()))
        .unzip()
}

/// The `WHERE` clause and parameters of a listing; `$1` and on are the filters' values, the
/// keyset bound comes last.
pub(crate) struct Listing {
    pub(crate) sql: String,
    pub(crate) flow: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) status: Option<&'static str>,
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
}

impl Listing {
    /// A page of the listing: the filters (flow, text, status, since, until, in that order),
    /// then the cursor's two values and the limit when asked.
    pub(crate) fn new(query: &RunQuery, with_cursor: bool, with_limit: bool) -> Listing {
        let (mut clauses, mut param) = Self::filters(query, true);
        if with_cursor {
            let (t, id) = (param(), param());
            clauses.push(format!("(created_at, run_id) < ({t}::bigint, {id}::uuid)"));
        }
        let mut sql = "SELECT run_id, created_at, document::text FROM runs".to_string();
        Self::push_where(&mut sql, &clauses);
        sql.push_str(" ORDER BY created_at DESC, run_id DESC");
        if with_limit {
            sql.push_str(&format!(" LIMIT {}", param()));
        }
        Self::of(query, sql, true)
    }

    /// The counts per status under the query's flow, text and time filters (in that order).
    pub(crate) fn count(query: &RunQuery) -> Listing {
        let (clauses, _) = Self::filters(query, false);
        let mut sql = "SELECT status, count(*) FROM runs".to_string();
        Self::push_where(&mut sql, &clauses);
        sql.push_str(" GROUP BY status");
        Self::of(query, sql, false)
    }

    /// The filters' clauses, numbered from `$1`, and the numbering to go on with.
    fn filters(query: &RunQuery, status: bool) -> (Vec<String>, impl FnMut() -> String) {
        let mut clauses = Vec::new();
        let mut n = 0;
        let mut param = move || {
            n += 1;
            format!("${n}")
        };
        if query.flow.is_some() {
            clauses.push(format!("flow = {}", param()));
        }
        if query.text.is_some() {
            let t = param();
            clauses.push(format!(
                "(starts_with(run_id::text, {t}) OR strpos(flow, {t}) > 0)"
            ));
        }
        if status && query.status.is_some() {
            clauses.push(format!("status = {}", param()));
        }
        if query.since.is_some() {
            clauses.push(format!("created_at >= {}", param()));
        }
        if query.until.is_some() {
            clauses.push(format!("created_at < {}", param()));
        }
        (clauses, param)
    }

    fn push_where(sql: &mut String, clauses: &[String]) {
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
    }

    fn of(query: &RunQuery, sql: String, status: bool) -> Listing {
        Listing {
            sql,
            flow: query.flow.clone(),
            text: query.text.clone(),
            status: if status {
                query.status.as_ref().map(RunStatus::as_str)
            } else {
                None
            },
            since: query.since.map(nanos_clamped),
            until: query.until.map(nanos_clamped),
        }
    }

    /// The filters' values, in the order of their placeholders.
    pub(crate) fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(flow) = &self.flow {
            params.push(flow);
        }
        if let Some(text) = &self.text {
            params.push(text);
        }
        if let Some(status) = &self.status {
            params.push(status);
        }
        if let Some(since) = &self.since {
            params.push(since);
        }
        if let Some(until) = &self.until {
            params.push(until);
        }
        params
    }
}
