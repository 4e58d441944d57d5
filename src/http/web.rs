//! The web client, embedded into the binary from `web/dist` at build time (so there is
//! no folder to find at run time). Unknown non-API paths get `index.html`, so the
//! client's own routes survive a reload; API-looking paths get a JSON 404 instead.
//! Hashed assets under `assets/` are cached for a year, `index.html` never.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/dist"]
#[allow_missing = true]
struct Assets;

const API_PREFIXES: [&str; 6] = ["/auth", "/chat", "/admin", "/ws", "/api", "/openapi.json"];

/// A strict policy: only this origin's scripts, styles and sockets.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const NOT_BUILT: &str = "<!doctype html><title>Banter</title><p>The web client is not built into this binary. \
     Build it with <code>make web</code> (or run <code>make run</code>), then rebuild Banter.</p>";

pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let is_api = API_PREFIXES
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    if is_api || (method != Method::GET && method != Method::HEAD) {
        return ApiError::not_found("no such endpoint").into_response();
    }
    let file = path.trim_start_matches('/');
    if let Some(asset) = Assets::get(file).filter(|_| !file.is_empty()) {
        let cache = if file.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return with_security_headers(
            (
                [
                    (header::CONTENT_TYPE, asset.metadata.mimetype().to_owned()),
                    (header::CACHE_CONTROL, cache.to_owned()),
                ],
                asset.data,
            )
                .into_response(),
        );
    }
    // A missing file (it has an extension) is a 404; anything else is a client route.
    if file
        .rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'))
    {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let page = match Assets::get("index.html") {
        Some(index) => ([(header::CACHE_CONTROL, "no-cache")], Html(index.data)).into_response(),
        None => Html(NOT_BUILT).into_response(),
    };
    with_security_headers(page)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
