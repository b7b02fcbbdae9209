//! The viewer's built assets, compiled into the binary: `assets/index.html`, `assets/app.js`
//! and `assets/app.css` (built from `web/` by its build script; no CDN, nothing fetched at run
//! time).
//!
//! Invariants: this module is the one list of assets; each is served with its content type, an
//! `ETag` (a hash of its bytes) and `Cache-Control: no-cache`, so a browser revalidates and
//! gets `304 Not Modified` while the binary is the same.

use super::api::{ApiError, AppState};
use super::auth;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::OnceLock;

/// One compiled-in file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/assets/` (`index.html` is also `/`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// Every asset, by name.
pub static ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
];

/// The asset named `name`, if there is one.
///
/// ```
/// use orchflow_cli::serve::assets::find;
/// assert!(find("index.html").is_some_and(|a| a.content_type.starts_with("text/html")));
/// assert!(find("../Cargo.toml").is_none());
/// ```
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The `ETag` of each asset, in [`ASSETS`] order: an FNV-1a hash of its bytes.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    })
}

/// The response for `asset`: 304 when the request's `If-None-Match` has its tag.
fn respond(asset: &'static Asset, request_headers: &HeaderMap) -> Response {
    let index = ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, asset))
        .unwrap_or(0);
    let tag = etags().get(index).cloned().unwrap_or_default();
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    response
}

/// `?token=T` on the page.
#[derive(Debug, Deserialize)]
pub(super) struct TokenParam {
    token: Option<String>,
}

/// `GET /`: the page. With `?token=T` showing the server's token, sets the token cookie and
/// redirects to `/` (so the token leaves the address bar); a wrong token is 401.
pub(super) async fn index(
    State(state): State<AppState>,
    Query(param): Query<TokenParam>,
    headers: HeaderMap,
) -> Response {
    if let (Some(given), Some(token)) = (param.token.as_deref(), state.token.as_deref()) {
        if !auth::same(given, token) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "wrong token").into_response();
        }
        let mut response = Redirect::to("/").into_response();
        if let Some(cookie) = auth::token_cookie(token) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    match find("index.html") {
        Some(page) => respond(page, &headers),
        None => ApiError::new(StatusCode::NOT_FOUND, "the page is not built in").into_response(),
    }
}

/// `GET /assets/{file}`.
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match find(&file) {
        Some(asset) => respond(asset, &headers),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no asset {file:?}")).into_response(),
    }
}

/// Any other path: the page for a `GET` of a path the page routes itself (`/runs/…`,
/// `/inbox`), 404 otherwise.
pub(super) async fn page_or_not_found(request: Request) -> Response {
    let path = request.uri().path();
    let page_route = request.method() == axum::http::Method::GET
        && !path.starts_with("/assets/")
        && !path.rsplit('/').next().unwrap_or("").contains('.');
    match (page_route, find("index.html")) {
        (true, Some(page)) => respond(page, request.headers()),
        _ => ApiError::new(StatusCode::NOT_FOUND, format!("nothing at {path}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_there_with_a_distinct_tag() {
        for name in ["index.html", "app.js", "app.css"] {
            assert!(find(name).is_some_and(|a| !a.bytes.is_empty()), "{name}");
        }
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags.iter().all(|t| t.len() == 18));
        assert_ne!(tags[0], tags[1]);
    }
}
