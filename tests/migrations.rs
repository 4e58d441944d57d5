//! Schema migrations, on both backends: a database left at any earlier schema version,
//! holding the data that version's server stored, is brought to the latest schema by
//! starting Banter on it, and everything in it is served as before.
//!
//! The versions are read from `migrations/<backend>/`, so a new migration file is covered
//! without touching this file. The data for a schema version comes from
//! `tests/migration_fixtures/<backend>/<version>.sql`: the newest fixture at or below that
//! version is used, so a migration that changes existing tables needs a fixture of its
//! own (the test then says which one is missing or fails on the old one).

mod common;
mod wsclient;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use common::{Backend, TestApp, fresh_postgres_database, spawn_app_on};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::migrate::Migrator;
use wsclient::WsClient;

const PASSWORD: &str = "password-v1-user";

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn migrations_dir(backend: Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend_name(backend))
}

/// The migration files of a backend as (version, file name), by version.
fn migration_files(backend: Backend) -> Vec<(i64, String)> {
    let dir = migrations_dir(backend);
    let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let version = name
                .split('_')
                .next()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("migration {name} does not start with a version"));
            (version, name)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = migration_files(Backend::Sqlite);
    let postgres = migration_files(Backend::Postgres);
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must have the same versions and names"
    );
}

/// The fixture for schema `version`: the newest one at or below it.
fn fixture_for(backend: Backend, version: i64) -> (i64, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/migration_fixtures")
        .join(backend_name(backend));
    let mut fixtures: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.expect("directory entry").file_name();
            name.to_str()?.strip_suffix(".sql")?.parse::<i64>().ok()
        })
        .filter(|fixture| *fixture <= version)
        .collect();
    fixtures.sort();
    let fixture = *fixtures.last().unwrap_or_else(|| {
        panic!(
            "no fixture for schema version {version}: add {}/{version:04}.sql",
            dir.display()
        )
    });
    let sql = std::fs::read_to_string(dir.join(format!("{fixture:04}.sql"))).expect("fixture");
    (fixture, sql)
}

/// A migrator holding only the migrations up to `version`.
async fn migrator_up_to(backend: Backend, version: i64) -> Migrator {
    let mut migrator = Migrator::new(migrations_dir(backend).as_path())
        .await
        .expect("migrations load");
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|migration| migration.version <= version)
        .cloned()
        .collect();
    migrator.migrations = Cow::Owned(earlier);
    migrator
}

/// Builds a database at schema `version` holding that version's fixture data.
async fn database_at(backend: Backend, version: i64, dir: &Path) -> String {
    let migrator = migrator_up_to(backend, version).await;
    let (fixture, sql) = fixture_for(backend, version);
    let context = format!("fixture {fixture:04} at schema {version}");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.join("banter.db").display());
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("SQLite URL");
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .expect("open SQLite");
            migrator.run(&pool).await.expect("earlier migrations");
            sqlx::raw_sql(&sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            pool.close().await;
            url
        }
        Backend::Postgres => {
            let url = fresh_postgres_database().await;
            let pool = sqlx::PgPool::connect(&url).await.expect("open PostgreSQL");
            migrator.run(&pool).await.expect("earlier migrations");
            sqlx::raw_sql(&sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            pool.close().await;
            url
        }
    }
}

async fn login(app: &TestApp, username: &str) -> String {
    let (status, body) = app.login(username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "login {username}: {body}");
    body["access"].as_str().expect("access").to_owned()
}

fn room_by_id(rooms: &Value, id: i64) -> Value {
    rooms
        .as_array()
        .expect("rooms")
        .iter()
        .find(|room| room["id"] == id)
        .unwrap_or_else(|| panic!("room {id} missing from {rooms}"))
        .clone()
}

/// Everything in the fixture is served through the API, and new writes continue from it.
async fn assert_fixture_served(app: &TestApp) {
    let (status, body) = app.login("alice", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], 1);
    assert_eq!(body["user"]["username"], "Alice");
    assert_eq!(body["user"]["is_admin"], true);
    let alice = body["access"].as_str().expect("access").to_owned();
    let bob = login(app, "bob").await;
    let (status, _) = app.login("bob", "not-the-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.login("carol", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "carol is deactivated");

    let (status, rooms) = app.get("/chat/rooms/", &alice).await;
    assert_eq!(status, StatusCode::OK, "{rooms}");
    let general = room_by_id(&rooms, 1);
    assert_eq!(general["name"], "General");
    assert_eq!(general["topic"], "Everything");
    assert_eq!(general["last_seq"], 6);
    assert_eq!(general["member_count"], 2);
    assert_eq!(general["role"], "owner");
    assert_eq!(general["unread_count"], 1, "bob's message is unread");
    assert_eq!(room_by_id(&rooms, 2)["is_private"], true);
    assert_eq!(room_by_id(&rooms, 3)["is_direct"], true);

    let (status, rooms) = app.get("/chat/rooms/", &bob).await;
    assert_eq!(status, StatusCode::OK, "{rooms}");
    let general = room_by_id(&rooms, 1);
    assert_eq!(general["last_read_seq"], 2);
    assert_eq!(
        general["unread_count"], 0,
        "only a deleted message is newer"
    );
    assert_eq!(room_by_id(&rooms, 2)["role"], "admin");

    let (status, messages) = app.get("/chat/rooms/1/messages/", &bob).await;
    assert_eq!(status, StatusCode::OK, "{messages}");
    let messages = messages.as_array().expect("history").clone();
    let seqs: Vec<&Value> = messages.iter().map(|m| &m["seq"]).collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(messages[0]["content"], "hello from version 1");
    assert_eq!(messages[0]["author"]["username"], "Alice");
    assert_eq!(messages[0]["client_id"], "v1-a");
    assert_eq!(messages[1]["content"], "edited in version 1");
    assert!(messages[1]["edited_at"].is_string(), "{}", messages[1]);
    assert_eq!(messages[2]["deleted"], true);
    assert_eq!(messages[2]["content"], "");

    let (status, direct) = app
        .post("/chat/direct/", &alice, json!({"username": "bob"}))
        .await;
    assert_eq!(status, StatusCode::OK, "the existing direct room: {direct}");
    assert_eq!(direct["id"], 3);

    let (status, posted) = app
        .post(
            "/chat/rooms/1/messages/",
            &bob,
            json!({"message": "after the migration", "client_id": "latest-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["seq"], 7, "seq continues from the stored last_seq");
    let (status, again) = app
        .post(
            "/chat/rooms/1/messages/",
            &alice,
            json!({"message": "v1-a again", "client_id": "v1-a"}),
        )
        .await;
    assert!(status.is_success(), "{again}");
    assert_eq!(
        again["id"], 1,
        "client_id idempotency covers stored messages"
    );

    let mut ws = WsClient::connect(&app.base, &bob).await;
    let (replay, _) = ws.subscribe(1, Some(0)).await;
    let replayed: Vec<(i64, String)> = replay
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().expect("seq"),
                e["type"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    let expected = [
        "member_joined",
        "message",
        "message",
        "message",
        "message_edited",
        "message_deleted",
        "message",
    ];
    assert_eq!(
        replayed,
        expected
            .iter()
            .enumerate()
            .map(|(i, kind)| (i as i64 + 1, (*kind).to_owned()))
            .collect::<Vec<_>>(),
        "the event log replays gapless"
    );
    ws.close().await;

    let dave = app.register("dave").await;
    assert_eq!(dave.id, 4, "new users take the next id");
    let (status, room) = app
        .post("/chat/rooms/", &alice, json!({"name": "after"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["id"], 4, "new rooms take the next id");
}

async fn every_earlier_schema_version_migrates_with_its_data(backend: Backend) {
    let versions: Vec<i64> = migration_files(backend).iter().map(|(v, _)| *v).collect();
    for version in versions {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_at(backend, version, dir.path()).await;
        let app = spawn_app_on(backend, dir, url, |_| {}).await;
        assert_fixture_served(&app).await;
    }
}

both_backends!(every_earlier_schema_version_migrates_with_its_data);
