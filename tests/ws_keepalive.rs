//! Keep-alive and token expiry on live sockets, with the timings shortened through
//! WS_PING_INTERVAL and WS_AUTH_GRACE so the tests take seconds, not minutes.

mod common;
mod wsclient;

use std::time::Duration;

use common::{Backend, spawn_app_with};
use serde_json::json;
use wsclient::WsClient;

/// An access token for `user_id` that expires in `seconds`, signed with the test key.
fn short_token(user_id: i64, username: &str, seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({"sub": user_id.to_string(), "username": username, "iat": now, "exp": now + seconds});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret-key-that-is-long-enough-0123456789"),
    )
    .expect("token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_misses_two_pings_is_dropped() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.ws_ping_interval = "1".into()).await;
    let ann = app.register("ann").await;
    let mut silent = WsClient::connect(&app.base, &ann.access).await;
    let mut lively = WsClient::connect(&app.base, &ann.access).await;
    // The lively client reads (answering pings) for four intervals; the silent one does not.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4000);
    while tokio::time::Instant::now() < deadline {
        let _ = lively.try_next(Duration::from_millis(200)).await;
    }
    assert_eq!(silent.closed().await, None, "dropped without a close frame");
    lively.send(json!({"type": "ping", "nonce": 1})).await;
    assert_eq!(
        lively.next_of_type("pong").await["nonce"],
        1,
        "a peer that answers stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_ends_the_socket_after_the_grace_unless_renewed() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.ws_auth_grace = "1".into()).await;
    let ann = app.register("ann").await;
    let mut expiring = WsClient::connect(&app.base, &short_token(ann.id, "ann", 1)).await;
    let mut renewed = WsClient::connect(&app.base, &short_token(ann.id, "ann", 1)).await;
    renewed
        .send(json!({"type": "auth", "token": ann.access}))
        .await;
    let started = std::time::Instant::now();
    assert_eq!(expiring.closed().await, Some(4001));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before expiry and grace"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    renewed
        .send(json!({"type": "ping", "nonce": "still here"}))
        .await;
    assert_eq!(renewed.next_of_type("pong").await["nonce"], "still here");
}
