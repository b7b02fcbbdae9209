//! Replay and fork over HTTP: `GET /api/runs/{id}/replay`, `POST /api/runs/{id}/fork/preview`
//! and `POST /api/runs/{id}/fork`, with the build's flows (see the [module](super) docs for the
//! rules every response follows).
//!
//! Invariants: a server without flows answers each of them 501 and reads nothing; a replay and
//! a preview write nothing; a fork is created before the response (201 names it) and runs in a
//! background task, so the page can open it and watch it live; a stopping server waits for it
//! for a while ([`FORK_GRACE`](super::FORK_GRACE)).

use super::api::{ApiError, AppState, json_body, json_response, ok, run_id, store_of};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use orchflow::replay::{ForkAt, ReplayOptions};
use orchflow::store::CheckpointStore;
use orchflow::{ForkError, RunId};
use serde::{Deserialize, Deserializer};
use std::sync::Arc;

/// 501 when the server has no flows.
fn need_flows(state: &AppState) -> Result<(), ApiError> {
    if state.flows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this server has no flows, so it cannot replay or fork runs: serve from your application's own binary, built with orchflow_cli::App::new(Registry::new().register(my_flow())).main()",
        ));
    }
    Ok(())
}

/// The store, or 409 over a bundle.
fn checkpoints(state: &AppState) -> Result<Arc<dyn CheckpointStore>, ApiError> {
    match store_of(&state.source) {
        Ok(store) => Ok(store.checkpoints().clone()),
        Err(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "this server shows an exported bundle: replay and fork need the run's store",
        )),
    }
}

/// A refused fork: 404 for an unknown run, the store's errors as usual, 400 otherwise.
fn fork_error(e: ForkError) -> ApiError {
    match e {
        ForkError::NotFound(run_id) => ApiError::not_found(run_id),
        ForkError::Store(e) => e.into(),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// The query of `GET /api/runs/{id}/replay`.
#[derive(Debug, Deserialize)]
pub(super) struct ReplayParams {
    /// Steps to re-execute, comma-separated.
    reexecute: Option<String>,
}

/// `GET /api/runs/{id}/replay`: the run replayed against the build's flow of its name.
pub(super) async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ReplayParams>,
) -> Result<Response, ApiError> {
    need_flows(&state)?;
    let run_id = run_id(&id)?;
    let store = checkpoints(&state)?;
    let steps = params
        .reexecute
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect::<Vec<_>>();
    // A step to re-execute must be one of the flow's (a run of a flow this build does not
    // have is reported as such by the replay).
    if !steps.is_empty()
        && let Some(doc) = store.document(run_id).await?
        && let Some(known) = state.flows.steps(&doc.flow)
        && let Some(unknown) = steps.iter().find(|s| !known.contains(s))
    {
        return Err(ApiError::bad_request(format!(
            "cannot re-execute `{unknown}`: flow `{}` has no such step; its steps: {}",
            doc.flow,
            known.join(", ")
        )));
    }
    let options = ReplayOptions::default().reexecute(steps);
    let report = state.flows.replay(store, run_id, &options).await?;
    Ok(ok(&report))
}

/// The body of the fork endpoints: `{"from": "step@n", "input": <JSON>}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ForkBody {
    from: String,
    /// Absent: the recorded input; any JSON, `null` included: that input.
    #[serde(default, deserialize_with = "present")]
    input: Option<serde_json::Value>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// What both fork endpoints start from: the run, its store, and the fork's call and input read
/// from the body (501 without flows, 409 over a bundle, 400 for a bad id or body).
async fn fork_request(
    state: &AppState,
    id: &str,
    body: Body,
) -> Result<
    (
        RunId,
        Arc<dyn CheckpointStore>,
        ForkAt,
        Option<serde_json::Value>,
    ),
    ApiError,
> {
    need_flows(state)?;
    let run_id = run_id(id)?;
    let store = checkpoints(state)?;
    let body: ForkBody = json_body(body).await?;
    let at = ForkAt::parse(body.from.trim())
        .map_err(|e| ApiError::bad_request(format!("from {:?}: {e}", body.from)))?;
    Ok((run_id, store, at, body.input))
}

/// `POST /api/runs/{id}/fork/preview`: what a fork would do; writes nothing.
pub(super) async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let (run_id, store, at, input) = fork_request(&state, &id, body).await?;
    let preview = state
        .flows
        .preview_fork(store, run_id, &at, input)
        .await
        .map_err(fork_error)?;
    Ok(ok(&preview))
}

/// `POST /api/runs/{id}/fork`: creates the fork (201 `{"run_id"}`) and runs it in the
/// background.
pub(super) async fn fork(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let (run_id, store, at, input) = fork_request(&state, &id, body).await?;
    let new = state
        .flows
        .submit_fork(store.clone(), run_id, &at, input)
        .await
        .map_err(fork_error)?;
    let flows = state.flows.clone();
    // The run's outcome is in its document. The server waits for it when it stops, for a
    // while (see `Server::run_until`); a run stopped then is continued by `runs resume`.
    let mut background = state.background.lock().unwrap_or_else(|e| e.into_inner());
    while background.try_join_next().is_some() {}
    background.spawn(async move {
        let _ = flows.run(store, new).await;
    });
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "run_id": new }),
    ))
}
