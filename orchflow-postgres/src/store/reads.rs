//! The store's reads: a run's snapshot (document, journal, traces), documents alone, listings
//! and counts, and flow graphs.
//!
//! Invariants: a read of more than one statement runs in one read-only repeatable-read
//! transaction, so it sees one committed state; a row that cannot be read is a
//! [`StoreError::Corrupt`] naming the database and run; a fingerprint that is not 16 lowercase
//! hex digits is never sent to the database.

use super::*;

impl PostgresStore {
    /// Reads, in one read-only snapshot, whether the run exists and its entries and traces
    /// after `after`; `with_document` adds the document.
    pub(super) async fn read_run(
        &self,
        run_id: RunId,
        after: u64,
        with_document: bool,
        with_entries: bool,
    ) -> Result<Option<(Option<RunDocument>, Vec<JournalEntry>, Vec<StepTrace>)>, StoreError> {
        let at = self.at(run_id);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let mut conn = self.inner.pool.get().await?;
        let exists = conn.prepare(EXISTS, &at).await?;
        let document = conn.prepare(DOCUMENT, &at).await?;
        let journal = conn.prepare(JOURNAL, &at).await?;
        let traces = conn.prepare(TRACES, &at).await?;
        let tx = conn
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| io_error("read", &at, &e))?;
        let read = |e: tokio_postgres::Error| io_error("read", &at, &e);
        let found = if with_document {
            tx.query_opt(&document, &[&run_id])
                .await
                .map_err(read)?
                .map(|row| Some(row.get::<_, String>(0)))
        } else {
            let row = tx.query_one(&exists, &[&run_id]).await.map_err(read)?;
            row.get::<_, bool>(0).then_some(None)
        };
        let Some(text) = found else {
            return Ok(None);
        };
        let (entries, trace_rows) = if with_entries {
            let params: [&(dyn ToSql + Sync); 2] = [&run_id, &after];
            let (e, t) = tokio::join!(tx.query(&journal, &params), tx.query(&traces, &params));
            (e.map_err(read)?, t.map_err(read)?)
        } else {
            let t = tx.query(&traces, &[&run_id, &after]).await.map_err(read)?;
            (Vec::new(), t)
        };
        tx.commit().await.map_err(read)?;
        let document = text.map(|t| parse_document(&t, run_id, &at)).transpose()?;
        let mut traces = Vec::with_capacity(trace_rows.len());
        let mut trace_seqs = Vec::with_capacity(trace_rows.len());
        for row in &trace_rows {
            let seq: i64 = row.get(0);
            traces.push(parse_trace(row.get(1), seq, &at)?);
            trace_seqs.push(seq);
        }
        let mut journal = Vec::with_capacity(entries.len());
        for (expected, row) in (after + 1..).zip(&entries) {
            let seq: i64 = row.get(0);
            if seq != expected {
                return Err(corrupt(
                    &at,
                    format!("the journal has entry {seq} where entry {expected} belongs"),
                ));
            }
            journal.push(parse_entry(row.get(1), seq, &at)?);
        }
        if with_entries {
            // Give each entry its traces back (both lists are in seq order).
            let mut traces = trace_seqs.into_iter().zip(traces).peekable();
            for entry in &mut journal {
                let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
                while let Some((_, trace)) = traces.next_if(|(s, _)| *s == seq) {
                    entry.traces.push(trace);
                }
            }
            if let Some((seq, _)) = traces.next() {
                return Err(corrupt(
                    &at,
                    format!("traces of journal entry {seq}, which is missing"),
                ));
            }
            return Ok(Some((document, journal, Vec::new())));
        }
        Ok(Some((document, journal, traces)))
    }

    /// A run's document alone ([`CheckpointStore::document`]).
    pub(super) async fn document_of(
        &self,
        run_id: RunId,
    ) -> Result<Option<RunDocument>, StoreError> {
        let at = self.at(run_id);
        let mut conn = self.inner.pool.get().await?;
        let rows = self
            .query(&mut conn, "read", &at, DOCUMENT, &[&run_id])
            .await?;
        rows.first()
            .map(|row| parse_document(row.get(0), run_id, &at))
            .transpose()
    }

    /// One page of the listing `query` asks for ([`CheckpointStore::list_runs`]), read on past
    /// unreadable documents until the page is full.
    pub(super) async fn list(&self, query: &RunQuery) -> Result<RunListing, StoreError> {
        let location = &self.inner.location;
        // One more than the limit, to know whether there is a next page; unreadable
        // documents do not count, so a page short of them is completed by reading on.
        let want = query.limit.map(|l| l.saturating_add(1));
        let mut runs = Vec::new();
        let mut unreadable = Vec::new();
        let mut cursor = query.after.map(|c| (nanos_clamped(c.created_at), c.run_id));
        let mut conn = self.inner.pool.get().await?;
        loop {
            let batch = want.map(|w| i64::try_from(w - runs.len()).unwrap_or(i64::MAX));
            let listing = Listing::new(query, cursor.is_some(), batch.is_some());
            let mut params = listing.params();
            if let Some((t, id)) = &cursor {
                params.push(t);
                params.push(id);
            }
            if let Some(batch) = &batch {
                params.push(batch);
            }
            let rows = self
                .query(&mut conn, "list runs in", location, &listing.sql, &params)
                .await?;
            let fetched = rows.len();
            for row in &rows {
                let run_id: RunId = row.get(0);
                cursor = Some((row.get(1), run_id));
                match parse_document(row.get(2), run_id, &self.at(run_id)) {
                    Ok(document) => runs.push(document),
                    Err(e) => unreadable.push(e),
                }
            }
            let exhausted = batch.is_none_or(|b| i64::try_from(fetched).unwrap_or(0) < b);
            if exhausted || want.is_some_and(|w| runs.len() >= w) {
                break;
            }
        }
        let mut next = None;
        if let Some(limit) = query.limit
            && runs.len() > limit
        {
            runs.truncate(limit);
            next = runs.last().map(RunCursor::of);
        }
        Ok(RunListing {
            runs,
            unreadable,
            next,
        })
    }

    /// The counts per status ([`CheckpointStore::count_runs`]), in one `GROUP BY`.
    pub(super) async fn count(&self, query: &RunQuery) -> Result<StatusCounts, StoreError> {
        let location = &self.inner.location;
        let listing = Listing::count(query);
        let mut conn = self.inner.pool.get().await?;
        let rows = self
            .query(
                &mut conn,
                "count runs in",
                location,
                &listing.sql,
                &listing.params(),
            )
            .await?;
        let mut counts = StatusCounts::default();
        for row in &rows {
            let (status, n): (String, i64) = (row.get(0), row.get(1));
            // The table's CHECK admits only known statuses.
            if let Ok(status) = status.parse::<RunStatus>() {
                counts.add(&status, n.unsigned_abs());
            }
        }
        Ok(counts)
    }

    /// Keeps `graph` unless this handle or another wrote its fingerprint
    /// ([`CheckpointStore::put_graph`]).
    pub(super) async fn keep_graph(&self, graph: &FlowGraph) -> Result<(), StoreError> {
        let known = |fingerprint| {
            let graphs = self.inner.graphs.lock();
            graphs
                .unwrap_or_else(|p| p.into_inner())
                .contains(&fingerprint)
        };
        if known(graph.fingerprint) {
            return Ok(());
        }
        let location = &self.inner.location;
        let text = serde_json::to_string(graph).map_err(|source| StoreError::Serialize {
            what: "flow graph",
            source,
        })?;
        let fingerprint = format!("{:016x}", graph.fingerprint);
        let name = graph.name.to_string();
        let mut conn = self.inner.pool.get().await?;
        self.query(
            &mut conn,
            "keep a flow graph in",
            location,
            "INSERT INTO flows (fingerprint, name, graph) VALUES ($1, $2, $3::text::jsonb)
             ON CONFLICT (fingerprint) DO NOTHING",
            &[&fingerprint, &name, &text],
        )
        .await?;
        let mut graphs = self.inner.graphs.lock().unwrap_or_else(|p| p.into_inner());
        graphs.insert(graph.fingerprint);
        Ok(())
    }

    /// The graph kept for `fingerprint` ([`CheckpointStore::graph`]).
    pub(super) async fn graph_of(
        &self,
        fingerprint: &str,
    ) -> Result<Option<FlowGraph>, StoreError> {
        if parse_fingerprint(fingerprint).is_none() {
            return Ok(None);
        }
        let location = &self.inner.location;
        let mut conn = self.inner.pool.get().await?;
        let rows = self
            .query(
                &mut conn,
                "read a flow graph in",
                location,
                "SELECT graph::text FROM flows WHERE fingerprint = $1",
                &[&fingerprint],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let text: String = row.get(0);
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                location: format!("{location} (flow graph {fingerprint})"),
                reason: format!("not a flow graph: {e}"),
            })
    }
}
