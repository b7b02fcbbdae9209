//! The request guards: the `Host` check of a loopback server without a token, the token of
//! `/api`, the `Content-Type` of `POST`s, and the security headers of every response.
//!
//! Invariants: a token is compared in time independent of where it differs; the cookie is
//! `HttpOnly; SameSite=Strict; Path=/`, and is set only when `/?token=T` shows the right
//! token.

use super::api::{ApiError, AppState, security_headers};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The cookie that carries the token.
pub(super) const COOKIE: &str = "orchflow_token";

/// Every request: refuses foreign `Host`s on a loopback server without a token, and
/// `POST`s that are not JSON; adds the security headers.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.loopback && state.token.is_none() && !loopback_host(request.headers()) {
        return finish(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "this server answers requests to localhost only (its Host header names another host)",
            )
            .into_response(),
        );
    }
    if request.method() == Method::POST && !is_json(request.headers()) {
        return finish(
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a POST must have Content-Type: application/json",
            )
            .into_response(),
        );
    }
    finish(next.run(request).await)
}

fn finish(mut response: Response) -> Response {
    security_headers(response.headers_mut());
    response
}

/// `/api/…`: with a token set, the request must show it.
pub(super) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match &state.token {
        Some(token) if !shows_token(request.headers(), token) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs its token: send Authorization: Bearer <token>, or open /?token=<token> once",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Whether the request shows `token` in `Authorization: Bearer` or in the cookie.
pub(super) fn shows_token(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|t| same(t.trim(), token));
    bearer || cookie(headers, COOKIE).is_some_and(|t| same(t, token))
}

/// The value of cookie `name`, if the request has it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares two strings in time that depends on their lengths only.
pub(super) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the `Host` header names a loopback host (`localhost`, `127.0.0.1`, `[::1]`, with
/// any port). A request without one (HTTP/1.0) is refused.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `Content-Type` is `application/json` (parameters such as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The `Set-Cookie` value that stores `token`.
pub(super) fn token_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(k.clone(), v);
            }
        }
        h
    }

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        assert!(shows_token(
            &headers(&[(header::AUTHORIZATION, "Bearer s3")]),
            "s3"
        ));
        assert!(!shows_token(
            &headers(&[(header::AUTHORIZATION, "Bearer s4")]),
            "s3"
        ));
        assert!(!shows_token(
            &headers(&[(header::AUTHORIZATION, "Basic s3")]),
            "s3"
        ));
        assert!(shows_token(
            &headers(&[(header::COOKIE, "a=b; orchflow_token=s3")]),
            "s3"
        ));
        assert!(!shows_token(
            &headers(&[(header::COOKIE, "orchflow_token=s")]),
            "s3"
        ));
        assert!(!shows_token(&HeaderMap::new(), "s3"));
    }

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in [
            "127.0.0.1:7878",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "app.localhost:9",
        ] {
            assert!(loopback_host(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "127.0.0.1.evil.example",
            "10.0.0.1:80",
            "",
        ] {
            assert!(!loopback_host(&headers(&[(header::HOST, bad)])), "{bad}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers(&[(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[(header::CONTENT_TYPE, "text/plain")])));
        assert!(!is_json(&headers(&[(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded"
        )])));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
