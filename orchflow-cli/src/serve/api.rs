//! The router and the JSON API handlers (see the [module](super) docs for the rules every
//! response follows).

use super::{BODY_LIMIT, ServeOptions, Source, assets, auth, replay, sse};
use crate::bundle::{Bundle, format_time};
use crate::runs::list::{ListingJson, decode_cursor, parse_status, parse_time};
use crate::runs::ops::{self, OpError};
use crate::store::Store;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchflow::RunId;
use orchflow::store::{
    Checkpoint, CheckpointStore, JournalEntry, PendingInput, RunDocument, RunListing, RunQuery,
    RunStatus, StatusCounts, StoreError,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The default page size of `GET /api/runs`.
const DEFAULT_LIMIT: usize = 50;
/// The largest page `GET /api/runs` returns.
const MAX_LIMIT: usize = 500;

/// What every handler shares.
#[derive(Clone)]
pub(super) struct AppState {
    pub(super) source: Source,
    pub(super) token: Option<Arc<str>>,
    pub(super) poll: Duration,
    /// Whether the server listens on a loopback address (then only loopback `Host`s are
    /// served when there is no token).
    pub(super) loopback: bool,
    /// Becomes true when the server stops (event streams end).
    pub(super) stop: tokio::sync::watch::Receiver<bool>,
    /// The build's flows, for replay and fork.
    pub(super) flows: Arc<orchflow::registry::Registry>,
    /// The forks this server runs in the background, waited for when it stops.
    pub(super) background: Background,
}

/// Runs the server started in the background (forks), shared by the handlers and the server.
pub(super) type Background = Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>;

impl AppState {
    pub(super) fn new(
        source: Source,
        options: &ServeOptions,
        addr: SocketAddr,
        stop: tokio::sync::watch::Receiver<bool>,
        background: Background,
    ) -> Self {
        AppState {
            source,
            token: options.token.as_deref().map(Arc::from),
            poll: options.poll,
            loopback: addr.ip().is_loopback(),
            stop,
            flows: Arc::new(options.flows.clone()),
            background,
        }
    }
}

/// The router: pages and assets, then the API behind the token check.
pub(super) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/info", get(info))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/journal", get(journal))
        .route("/runs/{id}/events", get(sse::events))
        .route("/runs/{id}/export", get(export))
        .route("/runs/{id}/answer", post(answer))
        .route("/runs/{id}/resume", post(resume))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/runs/{id}/replay", get(replay::replay))
        .route("/runs/{id}/fork/preview", post(replay::preview))
        .route("/runs/{id}/fork", post(replay::fork))
        .route("/questions", get(questions))
        .fallback(api_not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .nest("/api", api)
        .fallback(assets::page_or_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// An API error: a status and `{"error": message}`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn not_found(run_id: RunId) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("no run {run_id}"))
    }

    fn read_only() -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "this server shows an exported bundle: it cannot change runs",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(run_id) => ApiError::not_found(run_id),
            e @ StoreError::RunBusy { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<crate::CliError> for ApiError {
    fn from(e: crate::CliError) -> Self {
        match e {
            crate::CliError::Usage(m) => ApiError::bad_request(m),
            crate::CliError::Store(e) => e.into(),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound { run_id, .. } => ApiError::not_found(run_id),
            OpError::BadRequest(m) => ApiError::bad_request(m),
            OpError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            OpError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &serde_json::json!({ "error": self.message }))
    }
}

/// `value` as a JSON response with `status`.
pub(super) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::json!({ "error": format!("cannot write the response as JSON: {e}") })
                .to_string(),
        )
            .into_response(),
    }
}

pub(super) fn ok<T: Serialize>(value: &T) -> Response {
    json_response(StatusCode::OK, value)
}

async fn api_not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such API endpoint: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Reads a run id path segment (400 when it is not one).
pub(super) fn run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("{text:?} is not a run id: {e}")))
}

/// A run of the source: its checkpoint (404 when there is none).
pub(super) async fn checkpoint(source: &Source, run_id: RunId) -> Result<Checkpoint, ApiError> {
    match source {
        Source::Store(store) => store
            .checkpoints()
            .load(run_id)
            .await?
            .ok_or_else(|| ApiError::not_found(run_id)),
        Source::Bundle(b) if b.document.run_id == run_id => Ok(Checkpoint {
            document: b.document.clone(),
            journal: b.journal.clone(),
        }),
        Source::Bundle(_) => Err(ApiError::not_found(run_id)),
    }
}

/// A run's document (404 when there is none) and, when `journal_after` is given, its journal
/// entries after that seq, read in that order (the document first, so that a finished run's
/// entries are all there: its last entry is written before its finished document).
pub(super) async fn read_run(
    state: &AppState,
    run_id: RunId,
    journal_after: Option<u64>,
) -> Result<(RunDocument, Vec<JournalEntry>), ApiError> {
    let Source::Store(store) = &state.source else {
        let checkpoint = checkpoint(&state.source, run_id).await?;
        let after = journal_after.unwrap_or(u64::MAX);
        let entries = checkpoint.journal.into_iter().filter(|e| e.seq > after);
        return Ok((checkpoint.document, entries.collect()));
    };
    let document = store
        .checkpoints()
        .document(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(run_id))?;
    let entries = match journal_after {
        Some(after) => store
            .checkpoints()
            .journal(run_id, after)
            .await?
            .ok_or_else(|| ApiError::not_found(run_id))?,
        None => Vec::new(),
    };
    Ok((document, entries))
}

/// Whether a run with `status` will write no more entries unless someone acts on it.
pub(super) fn finished(status: &RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
    )
}

pub(super) fn store_of(source: &Source) -> Result<&Store, ApiError> {
    match source {
        Source::Store(store) => Ok(store),
        Source::Bundle(_) => Err(ApiError::read_only()),
    }
}

// ------------------------------------------------------------------------------ GET /api/info

async fn info(State(state): State<AppState>) -> Response {
    let (store, live, bundle) = match &state.source {
        Source::Store(s) => (s.location().to_string(), true, false),
        Source::Bundle(b) => (format!("bundle of run {}", b.document.run_id), false, true),
    };
    let flows: Vec<_> = state
        .flows
        .names()
        .into_iter()
        .map(|name| {
            serde_json::json!({
                "name": name,
                "fingerprint": state.flows.fingerprint(name).unwrap_or_default(),
            })
        })
        .collect();
    ok(&serde_json::json!({
        "store": store,
        "live": live,
        "bundle": bundle,
        "version": env!("CARGO_PKG_VERSION"),
        "flows": flows,
    }))
}

// ------------------------------------------------------------------------------ GET /api/runs

/// The query of `GET /api/runs`; empty values count as absent (forms send `flow=`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RunsParams {
    flow: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl RunsParams {
    fn query(&self) -> Result<RunQuery, ApiError> {
        let now = SystemTime::now();
        let limit = match given(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("limit {text:?} is not a number")))?
                .clamp(1, MAX_LIMIT),
        };
        let mut query = RunQuery::new().limit(limit);
        if let Some(flow) = given(&self.flow) {
            query = query.flow(flow);
        }
        if let Some(status) = given(&self.status) {
            query = query.status(parse_status(status)?);
        }
        if let Some(t) = given(&self.since) {
            query = query.since(parse_time(t, now)?);
        }
        if let Some(t) = given(&self.until) {
            query = query.until(parse_time(t, now)?);
        }
        if let Some(text) = given(&self.q) {
            query = query.text(text);
        }
        if let Some(after) = given(&self.after) {
            query = query.after(decode_cursor(after)?);
        }
        Ok(query)
    }
}

async fn list_runs(
    State(state): State<AppState>,
    Query(params): Query<RunsParams>,
) -> Result<Response, ApiError> {
    let query = params.query()?;
    let (listing, counts): (RunListing, StatusCounts) = match &state.source {
        Source::Store(store) => {
            let store = store.checkpoints();
            let (listing, counts) = tokio::join!(store.list_runs(&query), store.count_runs(&query));
            let (listing, counts) = (listing?, counts?);
            (listing, counts)
        }
        Source::Bundle(b) => (
            query.select(vec![b.document.clone()], Vec::new()),
            query.tally([&b.document]),
        ),
    };
    let mut body = ListingJson::of(&listing);
    body.counts = Some(counts);
    Ok(ok(&body))
}

// ------------------------------------------------------------------------ GET /api/runs/{id}

async fn run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let (document, _) = read_run(&state, run_id, None).await?;
    let graph = match &state.source {
        Source::Store(store) => ops::graph(store, &document.fingerprint).await?,
        Source::Bundle(b) => b.graph.clone(),
    };
    Ok(ok(&serde_json::json!({
        "document": document,
        "graph": graph,
    })))
}

// ---------------------------------------------------------------- GET /api/runs/{id}/journal

#[derive(Debug, Deserialize)]
pub(super) struct AfterParam {
    pub(super) after: Option<String>,
}

/// Reads `after` (a journal seq); absent or empty is 0.
pub(super) fn after_seq(p: &AfterParam) -> Result<u64, ApiError> {
    match given(&p.after) {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::bad_request(format!("after {text:?} is not a journal seq"))),
    }
}

async fn journal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<AfterParam>,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let after = after_seq(&params)?;
    let entries = match &state.source {
        Source::Store(store) => store
            .checkpoints()
            .journal(run_id, after)
            .await?
            .ok_or_else(|| ApiError::not_found(run_id))?,
        Source::Bundle(_) => checkpoint(&state.source, run_id)
            .await?
            .journal
            .into_iter()
            .filter(|e| e.seq > after)
            .collect(),
    };
    Ok(ok(&entries))
}

// ----------------------------------------------------------------- GET /api/runs/{id}/export

async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let checkpoint = checkpoint(&state.source, run_id).await?;
    let graph = match &state.source {
        Source::Store(store) => ops::graph(store, &checkpoint.document.fingerprint).await?,
        Source::Bundle(b) => b.graph.clone(),
    };
    let mut bundle = Bundle::new(checkpoint.document, checkpoint.journal, graph);
    if let Source::Bundle(b) = &state.source {
        bundle.exported_at = b.exported_at;
    }
    let mut response = ok(&bundle);
    let disposition = format!("attachment; filename=\"orchflow-run-{run_id}.json\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

// -------------------------------------------------------------------- GET /api/questions

#[derive(Debug, Deserialize)]
pub(super) struct QuestionsParams {
    flow: Option<String>,
}

/// A question as the API lists it.
#[derive(Debug, Serialize)]
struct QuestionJson<'a> {
    run_id: RunId,
    flow: &'a str,
    pending: &'a PendingInput,
    since: String,
}

async fn questions(
    State(state): State<AppState>,
    Query(params): Query<QuestionsParams>,
) -> Result<Response, ApiError> {
    let mut query = RunQuery::new();
    if let Some(flow) = given(&params.flow) {
        query = query.flow(flow);
    }
    let questions = match &state.source {
        Source::Store(store) => store.checkpoints().questions(&query).await?,
        Source::Bundle(b) => {
            orchflow::store::Question::all_of(&query.select(vec![b.document.clone()], Vec::new()))
        }
    };
    let body: Vec<QuestionJson> = questions
        .iter()
        .map(|q| QuestionJson {
            run_id: q.run_id,
            flow: &q.flow,
            pending: &q.pending,
            since: format_time(q.since),
        })
        .collect();
    Ok(ok(&body))
}

// ------------------------------------------------------------------------------- POSTs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    #[serde(default)]
    question: Option<String>,
    text: String,
}

/// Reads a JSON body of at most [`BODY_LIMIT`] bytes (413 past it, 400 when it is not the
/// expected JSON).
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {BODY_LIMIT} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

async fn answer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let store = store_of(&state.source)?;
    let body: AnswerBody = json_body(body).await?;
    let question = body.question.as_deref().filter(|q| !q.is_empty());
    let status = ops::answer(store, run_id, question, &body.text).await?;
    Ok(ok(&serde_json::json!({ "status": status })))
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let store = store_of(&state.source)?;
    drain(body).await?;
    let status = ops::requeue(store, run_id).await?;
    Ok(ok(&serde_json::json!({ "status": status })))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let run_id = run_id(&id)?;
    let store = store_of(&state.source)?;
    drain(body).await?;
    let Some(queue) = store.queue() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} has no run queue: runs in a JSON directory cannot be cancelled",
                store.location()
            ),
        ));
    };
    let previous = queue.cancel(run_id).await?;
    let status = match previous {
        RunStatus::Completed => RunStatus::Completed,
        _ => RunStatus::Cancelled,
    };
    Ok(ok(
        &serde_json::json!({ "status": status, "previous": previous }),
    ))
}

/// Reads and drops a body that carries nothing, within the limit.
async fn drain(body: Body) -> Result<(), ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map(drop)
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {BODY_LIMIT} bytes"),
            )
        })
}

/// Headers every response carries (see `auth::guard`).
pub(super) fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
        ),
    );
}
