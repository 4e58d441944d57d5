//! Test harness: each test gets a live Banter on a random port with a fresh database —
//! a SQLite file in a temp dir, or a new PostgreSQL database (from `TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`) — and speaks HTTP to it.
//! `both_backends!` runs one test function against each backend.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use banter::config::{Config, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub database_url: String,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A registered user and their tokens.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub access: String,
    pub refresh: String,
}

pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = postgres_base_url();
    let name = format!(
        "banter_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({base}): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("TEST_POSTGRES_URL has a database path");
    format!("{prefix}/{name}")
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

pub fn settings(dir: &std::path::Path, database_url: &str) -> Settings {
    Settings {
        database_url: Some(database_url.to_owned()),
        data_dir: dir.to_path_buf(),
        bind: "127.0.0.1:0".into(),
        secret_key: Some("test-secret-key-that-is-long-enough-0123456789".into()),
        cors_allowed_origins: String::new(),
        allowed_hosts: String::new(),
        access_token_lifetime: "10".into(),
        refresh_token_lifetime: "5".into(),
        ws_send_rate: "20".into(),
        ws_ping_interval: "30".into(),
        ws_auth_grace: "60".into(),
        tls_cert: None,
        tls_key: None,
        bus_url: None,
        cluster_name: "banter".into(),
    }
}

pub async fn database_url_for(backend: Backend, dir: &TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("banter.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server whose settings `adjust` may change first.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = database_url_for(backend, &dir).await;
    spawn_app_on(backend, dir, database_url, adjust).await
}

/// Starts a server on a database the test prepared (its data dir is `dir`).
pub async fn spawn_app_on(
    backend: Backend,
    dir: TempDir,
    database_url: String,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = settings(dir.path(), &database_url);
    adjust(&mut settings);
    let config = Config::resolve(&settings).expect("valid test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        banter::start(&config, listener, async move {
            let _ = stop.await;
        })
        .await
        .expect("server runs");
    });
    let app = TestApp {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
        backend,
        database_url,
        dir,
        shutdown: Some(shutdown),
        server: Some(server),
    };
    app.wait_ready().await;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl TestApp {
    async fn wait_ready(&self) {
        for _ in 0..200 {
            let healthz = self
                .client
                .get(format!("{}/healthz", self.base))
                .send()
                .await;
            if healthz.is_ok_and(|response| response.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server did not become healthy");
    }

    /// Sends a request; `body` is sent as JSON when given. Returns status and JSON (or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, token, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers `username` (email `<username>@example.com`, password `password-<username>`).
    pub async fn register(&self, username: &str) -> TestUser {
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/register/",
                None,
                Some(json!({"username": username, "email": format!("{username}@example.com"), "password": format!("password-{username}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {username}: {body}");
        TestUser {
            id: body["user"]["id"].as_i64().expect("user id"),
            username: username.to_owned(),
            access: body["access"].as_str().expect("access").to_owned(),
            refresh: body["refresh"].as_str().expect("refresh").to_owned(),
        }
    }

    /// Creates a room as `owner` and returns its id.
    pub async fn create_room(&self, owner: &TestUser, name: &str, is_private: bool) -> i64 {
        let (status, body) = self
            .post(
                "/chat/rooms/",
                &owner.access,
                json!({"name": name, "is_private": is_private}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create room {name}: {body}");
        body["id"].as_i64().expect("room id")
    }

    /// Posts a message and returns it.
    pub async fn send(&self, user: &TestUser, room_id: i64, text: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/chat/rooms/{room_id}/messages/"),
                &user.access,
                json!({"message": text}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "send to {room_id}: {body}");
        body
    }

    /// Runs the real `banter` command against this server's database.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_banter"))
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("DATA_DIR", self.dir.path())
            .env(
                "SECRET_KEY",
                "test-secret-key-that-is-long-enough-0123456789",
            )
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run banter");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("banter output")
    }

    /// Makes `username` a server admin with the CLI.
    pub fn promote(&self, username: &str) {
        let output = self.cli(&["user", "promote", username], None);
        assert!(
            output.status.success(),
            "promote: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl TestApp {
    /// `POST /auth/login/` with the given credentials.
    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/auth/login/",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// `POST /auth/register/` with any body; returns status and JSON.
    pub async fn register_raw(&self, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/auth/register/", None, Some(body))
            .await
    }

    /// Sends raw bytes with the given content type (none when `None`).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Registers `username` and makes them a server admin with the CLI.
    pub async fn register_admin(&self, username: &str) -> TestUser {
        let user = self.register(username).await;
        self.promote(username);
        user
    }

    /// `GET /chat/rooms/{room_id}/` as `user`, asserting 200.
    pub async fn room(&self, user: &TestUser, room_id: i64) -> Value {
        let (status, body) = self
            .get(&format!("/chat/rooms/{room_id}/"), &user.access)
            .await;
        assert_eq!(status, StatusCode::OK, "get room {room_id}: {body}");
        body
    }

    /// The newest page (up to 100) of a room's history as `user`, asserting 200.
    pub async fn history(&self, user: &TestUser, room_id: i64, query: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/chat/rooms/{room_id}/messages/{query}"),
                &user.access,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "history of {room_id}: {body}");
        body.as_array().expect("history is an array").clone()
    }
}

/// Asserts a contract timestamp: RFC 3339 UTC with milliseconds (`2026-11-25T10:00:00.123Z`).
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {value}"));
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    assert!(shape_ok, "not RFC 3339 UTC with milliseconds: {text}");
}

/// Asserts the contract's error shape and code.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "status for {body}");
    assert_eq!(body["error"]["code"], code, "code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
}

/// Runs each named `async fn name(backend: Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
