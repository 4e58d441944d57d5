//! The real `banter` binary as a child process, for tests that kill or signal it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    /// A failing test must not leave its server running (it would hold the test's output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `banter serve` on `port` with `env` added, and waits until it is healthy.
pub async fn start_server(
    data_dir: &std::path::Path,
    database_url: &str,
    port: u16,
    env: &[(&str, &str)],
) -> Server {
    start_server_logging(data_dir, database_url, port, env, Stdio::null()).await
}

/// As [`start_server`], with the server's log (it logs to stdout) going to `log`.
pub async fn start_server_logging(
    data_dir: &std::path::Path,
    database_url: &str,
    port: u16,
    env: &[(&str, &str)],
    log: impl Into<Stdio>,
) -> Server {
    start_server_output(data_dir, database_url, port, env, log, Stdio::null()).await
}

/// As [`start_server_logging`], with the server's stderr (where a panic is reported)
/// going to `errors`.
// The child is reaped by `Server`'s Drop, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub async fn start_server_output(
    data_dir: &std::path::Path,
    database_url: &str,
    port: u16,
    env: &[(&str, &str)],
    log: impl Into<Stdio>,
    errors: impl Into<Stdio>,
) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_banter"))
        .arg("serve")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", data_dir)
        .env("DATABASE_URL", database_url)
        .env("SECRET_KEY", "process-test-secret-key-0123456789abcdef")
        .env("WS_SEND_RATE", "1000")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(log)
        .stderr(errors)
        .spawn()
        .expect("banter starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("banter did not start on port {port}");
}

pub async fn register(base: &str, username: &str) -> (String, i64) {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/auth/register/"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": "password-123"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    (
        body["access"].as_str().expect("access").to_owned(),
        body["user"]["id"].as_i64().expect("id"),
    )
}

pub async fn get_json(base: &str, path: &str, token: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

pub async fn create_room(base: &str, token: &str, name: &str) -> i64 {
    let room: Value = reqwest::Client::new()
        .post(format!("{base}/chat/rooms/"))
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("create room")
        .json()
        .await
        .expect("json");
    room["id"].as_i64().expect("room id")
}

/// The whole history of a room, oldest first, paged with after_seq.
pub async fn history(base: &str, room_id: i64, token: &str) -> Vec<Value> {
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = get_json(
            base,
            &format!("/chat/rooms/{room_id}/messages/?limit=100&after_seq={after}"),
            token,
        )
        .await;
        let page = page.as_array().expect("a page").clone();
        let Some(last) = page.last() else {
            return stored;
        };
        after = last["seq"].as_i64().expect("seq");
        stored.extend(page);
    }
}
