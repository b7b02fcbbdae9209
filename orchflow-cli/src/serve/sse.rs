//! `GET /api/runs/{id}/events`: a run's recording and then its live tail, as server-sent
//! events.
//!
//! Invariants:
//! * events are `document` (the run's document, no id; sent first and whenever it changes),
//!   `entry` (a journal entry, id = its seq, in seq order, each exactly once per stream), and
//!   `end` (sent once the document says the run finished and every entry up to that document
//!   was sent; the stream then closes);
//! * `Last-Event-ID: N` (or `?after=N`) starts after entry N;
//! * each poll reads the document before the journal, so when a finished document is seen,
//!   the journal read after it holds the run's last entry: `end` never comes before it;
//! * the store is polled only while a client listens (the stream is dropped with the
//!   connection), every `poll` interval: each poll reads the document
//!   ([`CheckpointStore::document`], which in a database reads no journal) and the journal
//!   entries after the last one sent;
//! * every stream ends when the server stops, so that its graceful shutdown completes.

use super::Source;
use super::api::{AfterParam, ApiError, AppState, after_seq, finished, read_run, run_id};
use crate::store::Store;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use orchflow::RunId;
use orchflow::store::{CheckpointStore, JournalEntry, RunDocument};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// The handler.
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<AfterParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let after = match headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(text) => text.parse().map_err(|_| {
            ApiError::bad_request(format!("Last-Event-ID {text:?} is not a journal seq"))
        })?,
        None => after_seq(&params)?,
    };
    // The first read answers 404 for an unknown run before the stream starts.
    let (document, entries) = read_run(&state, run_id, Some(after)).await?;
    let mut tail = Tail {
        source: state.source.clone(),
        run_id,
        last_seq: after,
        document: None,
        queue: VecDeque::new(),
        ended: false,
        poll: state.poll,
        stop: state.stop.clone(),
    };
    tail.take(document, entries);
    if let Source::Bundle(_) = tail.source {
        // A recording: everything, then the end, whatever the run's status was.
        if !tail.ended {
            tail.queue.push_back(end_event());
            tail.ended = true;
        }
    }
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(event) = tail.queue.pop_front() {
                return Some((Ok::<Event, Infallible>(event), tail));
            }
            if tail.ended || *tail.stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(tail.poll) => tail.poll_store().await,
                // Stopping (or the server gone): the stream ends.
                _ = tail.stop.changed() => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// One listener's position in a run.
struct Tail {
    source: Source,
    run_id: RunId,
    /// The seq of the last entry sent (or the resume point).
    last_seq: u64,
    /// The document last sent.
    document: Option<RunDocument>,
    queue: VecDeque<Event>,
    ended: bool,
    poll: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Tail {
    /// Queues what a read found: the document if it changed, the entries after the last
    /// sent, and the end when the document says the run finished.
    fn take(&mut self, document: RunDocument, journal: Vec<JournalEntry>) {
        if self.document.as_ref() != Some(&document) {
            self.queue
                .push_back(json_event("document", &document, None));
            self.document = Some(document);
        }
        self.take_entries(journal);
        if self.document.as_ref().is_some_and(|d| finished(&d.status)) {
            self.queue.push_back(end_event());
            self.ended = true;
        }
    }

    fn take_entries(&mut self, journal: Vec<JournalEntry>) {
        for entry in journal {
            if entry.seq > self.last_seq {
                self.last_seq = entry.seq;
                self.queue
                    .push_back(json_event("entry", &entry, Some(entry.seq)));
            }
        }
    }

    /// One poll of the store: the document, then the journal after the last entry sent. A
    /// store error is sent as an `error` event and ends the stream.
    async fn poll_store(&mut self) {
        let Source::Store(store) = &self.source else {
            self.ended = true;
            return;
        };
        let store: Store = store.clone();
        // The document first, then the journal (see the module docs).
        let document = match store.checkpoints().document(self.run_id).await {
            Ok(Some(document)) => document,
            Ok(None) => return self.fail(format!("run {} is gone from the store", self.run_id)),
            Err(e) => return self.fail(e.to_string()),
        };
        match store
            .checkpoints()
            .journal(self.run_id, self.last_seq)
            .await
        {
            Ok(Some(entries)) => self.take(document, entries),
            Ok(None) => self.fail(format!("run {} is gone from the store", self.run_id)),
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&mut self, message: String) {
        self.queue.push_back(json_event(
            "error",
            &serde_json::json!({ "error": message }),
            None,
        ));
        self.ended = true;
    }
}

fn end_event() -> Event {
    Event::default().event("end").data("{}")
}

/// An event whose data is `value` as one line of JSON.
fn json_event<T: serde::Serialize>(name: &str, value: &T, id: Option<u64>) -> Event {
    let data = serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot write the event as JSON: {e}") }).to_string()
    });
    let event = Event::default().event(name).data(data);
    match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
