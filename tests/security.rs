//! Security properties that are not one endpoint's behaviour: the web client's headers,
//! CORS limited to the configured origins, and the Argon2id parameters actually stored.
//! (Login throttling is in api_auth.rs; tokens and passwords kept out of logs in
//! backup_and_logs.rs.)

mod common;

use common::{Backend, spawn_app, spawn_app_with};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use sqlx::Connection;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

async fn web_client_pages_carry_a_strict_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/", "/rooms/5", "/manage"] {
        let response = app.request(Method::GET, path, None, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let policy: Vec<&str> = header(headers, "content-security-policy")
            .split(';')
            .map(str::trim)
            .collect();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.contains(&directive),
                "{path}: {directive} missing from {policy:?}"
            );
        }
        assert!(
            !policy
                .iter()
                .any(|d| d.starts_with("script-src") && d.contains("unsafe")),
            "{path}: scripts must not be allowed inline or through eval: {policy:?}"
        );
        assert_eq!(header(headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(headers, "x-frame-options"), "DENY");
        assert_eq!(header(headers, "referrer-policy"), "no-referrer");
    }
}

/// A browser's preflight for a login from `origin`.
async fn preflight(app: &common::TestApp, origin: &str) -> HeaderMap {
    let response = app
        .client
        .request(Method::OPTIONS, format!("{}/auth/login/", app.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .expect("preflight");
    response.headers().clone()
}

async fn cors_allows_only_the_configured_origins(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.cors_allowed_origins = "https://chat.example.com".into();
    })
    .await;
    let allowed = preflight(&app, "https://chat.example.com").await;
    assert_eq!(
        allowed.get("access-control-allow-origin"),
        Some(&HeaderValue::from_static("https://chat.example.com"))
    );
    let methods = header(&allowed, "access-control-allow-methods").to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");

    let refused = preflight(&app, "https://evil.example.com").await;
    assert_eq!(
        refused.get("access-control-allow-origin"),
        None,
        "{refused:?}"
    );

    // An actual request from another origin gets no CORS grant either.
    let response = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers().get("access-control-allow-origin"), None);

    // With no origins configured, no origin is allowed.
    let closed = spawn_app(backend).await;
    let headers = preflight(&closed, "https://chat.example.com").await;
    assert_eq!(
        headers.get("access-control-allow-origin"),
        None,
        "{headers:?}"
    );
}

/// The PHC string's algorithm and its m, t, p parameters.
fn argon2_parameters(hash: &str) -> (String, u32, u32, u32) {
    let mut parts = hash.split('$').skip(1);
    let algorithm = parts.next().expect("algorithm").to_owned();
    let _version = parts.next().expect("version");
    let mut m = 0;
    let mut t = 0;
    let mut p = 0;
    for pair in parts.next().expect("parameters").split(',') {
        let (name, value) = pair.split_once('=').expect("name=value");
        let value: u32 = value.parse().expect("a number");
        match name {
            "m" => m = value,
            "t" => t = value,
            "p" => p = value,
            other => panic!("unexpected parameter {other}"),
        }
    }
    (algorithm, m, t, p)
}

async fn stored_passwords_use_argon2id_at_least_at_owasp_minimum(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.register("hashed").await;
    let hash: String = match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("open the test database");
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(&mut conn)
                .await
                .expect("the user's hash")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("open the test database");
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(&mut conn)
                .await
                .expect("the user's hash")
        }
    };
    assert!(
        !hash.contains("password-hashed"),
        "the password itself is not stored"
    );
    let (algorithm, m, t, p) = argon2_parameters(&hash);
    assert_eq!(algorithm, "argon2id");
    // OWASP's minimum for Argon2id: 19 MiB of memory, 2 iterations, 1 lane.
    assert!(m >= 19_456 && t >= 2 && p >= 1, "m={m} t={t} p={p}");
}

both_backends!(
    web_client_pages_carry_a_strict_policy,
    cors_allows_only_the_configured_origins,
    stored_passwords_use_argon2id_at_least_at_owasp_minimum,
);
