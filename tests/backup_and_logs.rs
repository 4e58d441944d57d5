//! Online backups of SQLite (restored and served), and secrets kept out of the logs.

mod common;
mod procs;
mod wsclient;

use common::{Backend, spawn_app, spawn_app_with};
use serde_json::json;
use wsclient::WsClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_and_serves() {
    let app = spawn_app(Backend::Sqlite).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "kept", false).await;
    for i in 0..20 {
        app.send(&ann, room, &format!("message {i}")).await;
    }
    let copy = app.dir.path().join("copy.db");
    let output = app.cli(&["backup", copy.to_str().expect("utf-8 path")], None);
    assert!(
        output.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = app.cli(&["backup", copy.to_str().expect("utf-8 path")], None);
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    let restored = spawn_app_with(Backend::Sqlite, |s| {
        s.database_url = Some(format!("sqlite://{}", copy.display()))
    })
    .await;
    let (status, page) = restored
        .get(&format!("/chat/rooms/{room}/messages/"), &ann.access)
        .await;
    assert_eq!(status, 200, "{page}");
    let contents: Vec<&str> = page
        .as_array()
        .expect("page")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents.len(), 20);
    assert_eq!(contents[19], "message 19");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backing_up_postgresql_points_to_its_own_tools() {
    let app = spawn_app(Backend::Postgres).await;
    let output = app.cli(&["backup", "/tmp/never-written.db"], None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_passwords_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("banter.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let database_url = format!("sqlite://{}", dir.path().join("banter.db").display());
    let server = procs::start_server_logging(
        dir.path(),
        &database_url,
        procs::free_port(),
        &[("RUST_LOG", "debug")],
        log,
    )
    .await;
    let client = reqwest::Client::new();
    let password = "a-very-secret-password-42";
    let session: serde_json::Value = client
        .post(format!("{}/auth/register/", server.base))
        .json(&json!({"username": "ann", "email": "ann@example.com", "password": password}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let login: serde_json::Value = client
        .post(format!("{}/auth/login/", server.base))
        .json(&json!({"username": "ann", "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let refreshed: serde_json::Value = client
        .post(format!("{}/auth/token/refresh/", server.base))
        .json(&json!({"refresh": login["refresh"]}))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let access = refreshed["access"].as_str().expect("access").to_owned();
    let ws = WsClient::connect(&server.base, &access).await;
    ws.close().await;
    drop(server);

    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.contains("login"),
        "the log was captured at debug level: {log}"
    );
    for secret in [
        password,
        session["access"].as_str().expect("access"),
        session["refresh"].as_str().expect("refresh"),
        login["refresh"].as_str().expect("refresh"),
        refreshed["refresh"].as_str().expect("refresh"),
        access.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
}
