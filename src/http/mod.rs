//! The HTTP API: routes, middleware and the mapping of errors to the contract's shape.
//!
//! Handlers are thin (read input → one service call → answer). Every path answers with
//! and without its trailing slash: [`into_service`] trims the slash before routing, so
//! routes are declared once, without it.
//!
//! Depends on `service` and `domain` (never on sqlx or the store directly).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceExt as _;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::TlsFiles;
use crate::service::Service;

pub mod error;
pub mod extract;
mod openapi;
pub mod routes;
mod web;

pub use openapi::ApiDoc;

use error::ApiError;
use routes::{admin, auth, messages, ops, rooms};

/// The request body limit of the contract.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub metrics: PrometheusHandle,
}

/// What the HTTP layer needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call the API from a browser; empty: no CORS headers at all.
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Accepted `Host` values (`example.com`, `.example.com` for subdomains too, `*`);
    /// empty: any.
    pub allowed_hosts: Vec<String>,
}

/// The routes of the contract's HTTP part.
pub fn api_routes(state: AppState) -> Router {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/token/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/chat/rooms", get(rooms::list).post(rooms::create))
        .route(
            "/chat/rooms/{room_id}",
            get(rooms::get).patch(rooms::update).delete(rooms::delete),
        )
        .route("/chat/rooms/{room_id}/join", post(rooms::join))
        .route("/chat/rooms/{room_id}/leave", post(rooms::leave))
        .route(
            "/chat/rooms/{room_id}/members",
            get(rooms::members).post(rooms::invite),
        )
        .route(
            "/chat/rooms/{room_id}/members/{user_id}",
            patch(rooms::set_role).delete(rooms::remove_member),
        )
        .route("/chat/rooms/{room_id}/read", post(rooms::read))
        .route("/chat/direct", post(rooms::direct))
        .route(
            "/chat/rooms/{room_id}/messages",
            get(messages::history).post(messages::post),
        )
        .route(
            "/chat/rooms/{room_id}/messages/{message_id}",
            patch(messages::edit).delete(messages::delete),
        )
        .route(
            "/chat/messages/{room_id}/messages",
            get(messages::history_original),
        )
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{user_id}", patch(admin::update_user))
        .route("/admin/rooms", get(admin::rooms))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn(track_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Adds the docs, the web client and the cross-cutting layers (tracing, compression,
/// CORS, the Host allowlist) to `routes`.
pub fn finish(routes: Router, options: &HttpOptions) -> Router {
    let mut app = routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CompressionLayer::new())
        .layer(
            TraceLayer::new_for_http()
                // The span names the path only: query strings may carry tokens (`/ws/?token=`).
                .make_span_with(|request: &Request| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), user.id = tracing::field::Empty)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
    if !options.cors_allowed_origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(options.cors_allowed_origins.clone()))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(std::time::Duration::from_secs(3600)),
        );
    }
    if !options.allowed_hosts.is_empty() {
        let hosts = Arc::new(options.allowed_hosts.clone());
        app = app.layer(middleware::from_fn_with_state(hosts, check_host));
    }
    app
}

/// Serves the router on `listener` — over TLS when `tls` is given — with trailing
/// slashes trimmed before routing and the client's address available to handlers (login
/// throttling uses it), until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<&TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Some(tls) = tls else {
        let service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(
            router.map_request(trim_trailing_slash),
        );
        // Frames are small and latency matters more than packet count.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    };
    // Another part of the process may have chosen the provider already; either is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| anyhow::anyhow!("cannot load TLS_CERT/TLS_KEY: {e}"))?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let service = axum::ServiceExt::<_>::into_make_service_with_connect_info::<SocketAddr>(
        router.map_request(trim_trailing_slash),
    );
    axum_server::from_tcp_rustls(listener.into_std()?, config)
        .handle(handle)
        .serve(service)
        .await?;
    Ok(())
}

/// The router as one service, trailing slashes trimmed (for servers other than [`serve`]).
pub fn into_service(
    router: Router,
) -> impl tower::Service<Request, Response = Response, Error = std::convert::Infallible> + Clone {
    router.map_request(trim_trailing_slash)
}

fn trim_trailing_slash<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let path = request.uri().path();
    // The docs UI's own routes rely on their slash.
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs") {
        return request;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = PathAndQuery::from_str(&path_and_query) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    )
}

async fn track_metrics(request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("path", path),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("banter_http_requests_total", &labels).increment(1);
    metrics::histogram!("banter_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Refuses requests whose `Host` is not allowed (as Django's ALLOWED_HOSTS did).
async fn check_host(
    State(allowed): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(|host| {
            host.rsplit_once(':')
                .map_or(host, |(name, _port)| name)
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if host_allowed(&host, &allowed) {
        next.run(request).await
    } else {
        tracing::warn!(%host, "request for a host that is not in ALLOWED_HOSTS");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_host",
            "this host name is not served here",
        )
        .into_response()
    }
}

pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|pattern| {
        pattern == "*"
            || pattern == host
            || pattern
                .strip_prefix('.')
                .is_some_and(|domain| host == domain || host.ends_with(pattern.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let allowed = vec!["chat.example.com".to_owned(), ".team.org".to_owned()];
        assert!(host_allowed("chat.example.com", &allowed));
        assert!(host_allowed("team.org", &allowed));
        assert!(host_allowed("eu.team.org", &allowed));
        assert!(!host_allowed("evil.com", &allowed));
        assert!(!host_allowed("notteam.org", &allowed));
        assert!(host_allowed("anything", &["*".to_owned()]));
    }

    #[test]
    fn trailing_slashes_are_trimmed_before_routing() {
        let request = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(
            trim_trailing_slash(request("/chat/rooms/")).uri().path(),
            "/chat/rooms"
        );
        assert_eq!(
            trim_trailing_slash(request("/chat/rooms/1/messages/?limit=5")).uri(),
            "/chat/rooms/1/messages?limit=5"
        );
        assert_eq!(trim_trailing_slash(request("/")).uri().path(), "/");
        assert_eq!(
            trim_trailing_slash(request("/docs/")).uri().path(),
            "/docs/"
        );
    }
}
