//! Operations and conventions: health, readiness, metrics, the OpenAPI description and
//! its offline docs page; trailing slashes; authentication on every protected path;
//! bad ids in paths; and the `banter` command line.

mod common;

use common::{Backend, TestApp, assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn health_readiness_and_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.is_object(), "{path}: {body}");
    }
    app.register("ann").await;
    let response = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(text.contains("banter_http_requests_total"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("banter_http_requests_total{") && l.contains("/auth/register")),
        "requests are counted per route"
    );
}

async fn openapi_and_offline_docs(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/auth/register/",
        "/auth/login/",
        "/auth/token/refresh/",
        "/auth/logout/",
        "/auth/me/",
        "/chat/rooms/",
        "/chat/rooms/{room_id}/",
        "/chat/rooms/{room_id}/join/",
        "/chat/rooms/{room_id}/leave/",
        "/chat/rooms/{room_id}/members/",
        "/chat/rooms/{room_id}/members/{user_id}/",
        "/chat/rooms/{room_id}/read/",
        "/chat/direct/",
        "/chat/rooms/{room_id}/messages/",
        "/chat/rooms/{room_id}/messages/{message_id}/",
        "/admin/users/",
        "/admin/users/{user_id}/",
        "/admin/rooms/",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    // `/docs` leads to the same page.
    let response = app.request(Method::GET, "/docs", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
    let response = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    // Served from the binary, not a CDN: the page works offline.
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn."),
        "{html}"
    );
    for (asset, kind) in [
        ("/docs/swagger-ui.css", "text/css"),
        ("/docs/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-initializer.js", "javascript"),
    ] {
        let response = app.request(Method::GET, asset, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.contains(kind), "{asset}: {content_type}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let response = app
        .request(Method::GET, "/docs/swagger-initializer.js", None, None)
        .await;
    let init = response.text().await.unwrap();
    assert!(
        init.contains("/openapi.json"),
        "the docs load this server's description"
    );
}

/// A request and the status it must get: method, path, token, body, status.
type Write<'a> = (Method, String, Option<&'a str>, Option<Value>, StatusCode);

/// Every path answers identically with and without its trailing slash, never redirecting.
async fn every_path_answers_without_its_trailing_slash(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let root = app.register_admin("root").await;
    let room = app.create_room(&ann, "room", false).await;
    let message = app.send(&ann, room, "hello").await["id"].as_i64().unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let call = async |method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = no_redirects.request(method, format!("{}{}", app.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    // Read-only requests: both forms must give the same status and the same body.
    let a = Some(ann.access.as_str());
    let r = Some(root.access.as_str());
    let reads: Vec<(&str, Option<&str>)> = vec![
        ("/auth/me/", a),
        ("/chat/rooms/", a),
        ("/chat/rooms/{room}/", a),
        ("/chat/rooms/{room}/members/", a),
        ("/chat/rooms/{room}/messages/", a),
        ("/chat/messages/{room}/messages/", a),
        ("/admin/users/", r),
        ("/admin/rooms/", r),
        ("/chat/rooms/999999/", a),
    ];
    for (path, token) in reads {
        let with = path.replace("{room}", &room.to_string());
        let without = with.trim_end_matches('/').to_owned();
        let (status_with, body_with) = call(Method::GET, &with, token, None).await;
        let (status_without, body_without) = call(Method::GET, &without, token, None).await;
        assert!(
            !status_with.is_redirection() && !status_without.is_redirection(),
            "{with}"
        );
        assert_eq!(status_with, status_without, "{with}");
        assert_eq!(body_with, body_without, "{with}");
    }
    // Every write, slashless, does what it should.
    let rp = format!("/chat/rooms/{room}");
    let writes: Vec<Write> = vec![
        (
            Method::POST,
            "/auth/register".into(),
            None,
            Some(
                json!({"username": "carl", "email": "carl@example.com", "password": "password-carl"}),
            ),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/auth/login".into(),
            None,
            Some(json!({"username": "carl", "password": "password-carl"})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/auth/token/refresh".into(),
            None,
            Some(json!({"refresh": bob.refresh})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/chat/rooms".into(),
            a,
            Some(json!({"name": "second"})),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            rp.clone(),
            a,
            Some(json!({"topic": "t"})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{rp}/join"),
            Some(bob.access.as_str()),
            None,
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            format!("{rp}/members/{}", bob.id),
            a,
            Some(json!({"role": "admin"})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{rp}/messages"),
            a,
            Some(json!({"message": "no slash"})),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("{rp}/messages/{message}"),
            a,
            Some(json!({"message": "edited"})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{rp}/read"),
            a,
            Some(json!({"seq": 1})),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            "/chat/direct".into(),
            a,
            Some(json!({"username": "bob"})),
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            format!("{rp}/messages/{message}"),
            a,
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            format!("{rp}/members/{}", bob.id),
            a,
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("{rp}/leave"),
            Some(root.access.as_str()),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::PATCH,
            format!("/admin/users/{}", bob.id),
            r,
            Some(json!({"is_admin": true})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/auth/logout".into(),
            None,
            Some(json!({"refresh": ann.refresh})),
            StatusCode::NO_CONTENT,
        ),
        (Method::DELETE, rp.clone(), a, None, StatusCode::NO_CONTENT),
    ];
    for (method, path, token, body, expected) in writes {
        let (status, answer) = call(method.clone(), &path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    for path in ["/healthz/", "/readyz/", "/metrics/", "/openapi.json/"] {
        let (status, _) = call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

/// Every `/auth/me/`, `/chat/…` and `/admin/…` call needs a valid access token.
async fn protected_paths_need_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let message = app.send(&ann, room, "hello").await["id"].as_i64().unwrap();
    let r = format!("/chat/rooms/{room}");
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/auth/me/".into(), None),
        (Method::GET, "/chat/rooms/".into(), None),
        (
            Method::POST,
            "/chat/rooms/".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, format!("{r}/"), None),
        (Method::PATCH, format!("{r}/"), Some(json!({"topic": "x"}))),
        (Method::DELETE, format!("{r}/"), None),
        (Method::POST, format!("{r}/join/"), None),
        (Method::POST, format!("{r}/leave/"), None),
        (Method::GET, format!("{r}/members/"), None),
        (
            Method::POST,
            format!("{r}/members/"),
            Some(json!({"username": "ann"})),
        ),
        (
            Method::PATCH,
            format!("{r}/members/{}/", ann.id),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("{r}/members/{}/", ann.id), None),
        (Method::POST, format!("{r}/read/"), Some(json!({"seq": 1}))),
        (
            Method::POST,
            "/chat/direct/".into(),
            Some(json!({"username": "ann"})),
        ),
        (Method::GET, format!("{r}/messages/"), None),
        (
            Method::GET,
            format!("/chat/messages/{room}/messages/"),
            None,
        ),
        (
            Method::POST,
            format!("{r}/messages/"),
            Some(json!({"message": "x"})),
        ),
        (
            Method::PATCH,
            format!("{r}/messages/{message}/"),
            Some(json!({"message": "x"})),
        ),
        (Method::DELETE, format!("{r}/messages/{message}/"), None),
        (Method::GET, "/admin/users/".into(), None),
        (
            Method::PATCH,
            format!("/admin/users/{}/", ann.id),
            Some(json!({"is_admin": true})),
        ),
        (Method::GET, "/admin/rooms/".into(), None),
    ];
    for (method, path, body) in requests {
        let (status, answer) = app.call(method.clone(), &path, None, body.clone()).await;
        assert_error(status, &answer, 401, "unauthenticated");
        assert!(answer["error"].get("fields").is_none());
        let (status, answer) = app
            .call(method.clone(), &path, Some("garbage.token.here"), body)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
    }
    // Nothing was changed by any of them.
    let history = app.history(&ann, room, "").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["content"], "hello");
    assert_eq!(app.room(&ann, room).await["topic"], "");
}

/// Ids that are not ids name nothing: 404, never a 500.
async fn bad_ids_in_paths_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register_admin("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let big = "99999999999999999999";
    let paths: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/chat/rooms/abc/".into(), None),
        (Method::GET, format!("/chat/rooms/{big}/"), None),
        (Method::GET, "/chat/rooms/-1/".into(), None),
        (Method::GET, "/chat/rooms/0/".into(), None),
        (Method::GET, "/chat/rooms/1.5/".into(), None),
        (Method::GET, "/chat/rooms/9223372036854775807/".into(), None),
        (
            Method::PATCH,
            format!("/chat/rooms/{big}/"),
            Some(json!({"topic": "x"})),
        ),
        (Method::DELETE, "/chat/rooms/abc/".into(), None),
        (Method::POST, "/chat/rooms/abc/join/".into(), None),
        (Method::GET, format!("/chat/rooms/{big}/members/"), None),
        (Method::GET, "/chat/rooms/abc/messages/".into(), None),
        (Method::GET, format!("/chat/messages/{big}/messages/"), None),
        (
            Method::POST,
            "/chat/rooms/abc/messages/".into(),
            Some(json!({"message": "x"})),
        ),
        (
            Method::PATCH,
            format!("/chat/rooms/{room}/messages/abc/"),
            Some(json!({"message": "x"})),
        ),
        (
            Method::DELETE,
            format!("/chat/rooms/{room}/messages/{big}/"),
            None,
        ),
        (
            Method::PATCH,
            format!("/chat/rooms/{room}/members/abc/"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/chat/rooms/{room}/members/{big}/"),
            None,
        ),
        (
            Method::PATCH,
            "/admin/users/abc/".into(),
            Some(json!({"is_admin": true})),
        ),
        (
            Method::PATCH,
            format!("/admin/users/{big}/"),
            Some(json!({"is_admin": true})),
        ),
        (Method::GET, "/chat/nothing-here/".into(), None),
    ];
    for (method, path, body) in paths {
        let (status, answer) = app
            .call(method.clone(), &path, Some(&ann.access), body)
            .await;
        assert_error(status, &answer, 404, "not_found");
        assert!(answer["error"].get("fields").is_none(), "{method} {path}");
    }
}

fn run_ok(app: &TestApp, args: &[&str], stdin: Option<&str>) -> String {
    let output = app.cli(args, stdin);
    assert!(
        output.status.success(),
        "banter {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn run_fails(app: &TestApp, args: &[&str], stdin: Option<&str>) -> String {
    let output = app.cli(args, stdin);
    assert!(!output.status.success(), "banter {args:?} should fail");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.trim().is_empty(), "banter {args:?} says why");
    stderr
}

async fn command_line_user_management(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = run_ok(&app, &["migrate"], None);
    assert!(!out.trim().is_empty());
    // --password.
    let out = run_ok(
        &app,
        &[
            "user",
            "create",
            "--username",
            "ann",
            "--email",
            "ann@example.com",
            "--password",
            "secret-ann-1",
        ],
        None,
    );
    assert!(out.contains("ann"), "{out}");
    let (status, body) = app.login("ann", "secret-ann-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["is_admin"], false);
    let ann_access = body["access"].as_str().unwrap().to_owned();
    // The password on standard input (its line ending is not part of it), as an admin.
    run_ok(
        &app,
        &[
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--admin",
        ],
        Some("secret-root-1\n"),
    );
    let (status, body) = app.login("root", "secret-root-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["is_admin"], true);
    let root_access = body["access"].as_str().unwrap().to_owned();
    let (status, _) = app.get("/admin/users/", &root_access).await;
    assert_eq!(status, StatusCode::OK);

    // Bad input: a clear message and a failing exit status; nothing stored.
    let err = run_fails(
        &app,
        &[
            "user",
            "create",
            "--username",
            "x",
            "--email",
            "x@example.com",
            "--password",
            "long-enough",
        ],
        None,
    );
    assert!(err.contains("username"), "{err}");
    let err = run_fails(
        &app,
        &[
            "user",
            "create",
            "--username",
            "carl",
            "--email",
            "not-an-email",
            "--password",
            "long-enough",
        ],
        None,
    );
    assert!(err.contains("email"), "{err}");
    let err = run_fails(
        &app,
        &[
            "user",
            "create",
            "--username",
            "carl",
            "--email",
            "carl@example.com",
        ],
        Some("short\n"),
    );
    assert!(err.contains("password"), "{err}");
    let err = run_fails(
        &app,
        &[
            "user",
            "create",
            "--username",
            "ANN",
            "--email",
            "other@example.com",
            "--password",
            "long-enough",
        ],
        None,
    );
    assert!(err.contains("taken") || err.contains("exists"), "{err}");
    let (status, _) = app.login("carl", "long-enough").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // promote.
    let (status, _) = app.get("/admin/users/", &ann_access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    run_ok(&app, &["user", "promote", "ANN"], None);
    let (status, _) = app.get("/admin/users/", &ann_access).await;
    assert_eq!(status, StatusCode::OK);
    let err = run_fails(&app, &["user", "promote", "nobody"], None);
    assert!(err.contains("nobody"), "{err}");

    // deactivate: tokens stop working at once, login fails.
    run_ok(&app, &["user", "deactivate", "ann"], None);
    let (status, _) = app.get("/auth/me/", &ann_access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.login("ann", "secret-ann-1").await;
    assert_error(status, &body, 401, "invalid_credentials");
    let err = run_fails(&app, &["user", "deactivate", "nobody"], None);
    assert!(err.contains("nobody"), "{err}");
    // Unknown subcommands fail too.
    run_fails(&app, &["user", "explode"], None);
}

both_backends!(
    health_readiness_and_metrics,
    openapi_and_offline_docs,
    every_path_answers_without_its_trailing_slash,
    protected_paths_need_a_token,
    bad_ids_in_paths_are_404,
    command_line_user_management,
);
