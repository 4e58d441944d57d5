//! Server administration: users (list, deactivate/reactivate, promote/demote) and rooms.

mod common;

use common::{Backend, assert_error, assert_timestamp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn admin_endpoints_are_for_server_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let requests = [
        (Method::GET, "/admin/users/".to_owned(), None),
        (
            Method::PATCH,
            format!("/admin/users/{}/", bob.id),
            Some(json!({"is_active": false})),
        ),
        (Method::GET, "/admin/rooms/".to_owned(), None),
    ];
    for (method, path, body) in &requests {
        let (status, answer) = app
            .call(method.clone(), path, Some(&ann.access), body.clone())
            .await;
        assert_error(status, &answer, 403, "forbidden");
    }
    // bob is still active.
    let (status, _) = app.get("/auth/me/", &bob.access).await;
    assert_eq!(status, StatusCode::OK);
    // Promotion takes effect on the next request, with the same token.
    app.promote("ann");
    for (method, path, _) in &requests[..1] {
        let (status, _) = app
            .call(method.clone(), path, Some(&ann.access), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.get("/admin/rooms/", &ann.access).await;
    assert_eq!(status, StatusCode::OK);
}

async fn admins_list_users_with_emails_and_activity(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.register_admin("root").await;
    let ann = app.register("ann").await;
    let (status, users) = app.get("/admin/users/", &root.access).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    let listed = users.iter().find(|u| u["id"] == ann.id).unwrap();
    assert_eq!(listed["username"], "ann");
    assert_eq!(listed["email"], "ann@example.com");
    assert_eq!(listed["is_active"], true);
    assert_eq!(listed["is_admin"], false);
    assert_timestamp(&listed["created_at"]);
    let root_listed = users.iter().find(|u| u["id"] == root.id).unwrap();
    assert_eq!(root_listed["is_admin"], true);
    // Others never see emails (members lists show public users).
    let room = app.create_room(&ann, "room", false).await;
    let (_, members) = app
        .get(&format!("/chat/rooms/{room}/members/"), &root.access)
        .await;
    assert!(members[0]["user"].get("email").is_none(), "{members}");
    assert!(members[0]["user"].get("is_active").is_none(), "{members}");
}

async fn deactivation_locks_the_user_out_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.register_admin("root").await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let path = format!("/admin/users/{}/", ann.id);
    let (status, user) = app
        .patch(&path, &root.access, json!({"is_active": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["id"], ann.id);
    assert_eq!(user["is_active"], false);
    assert_eq!(user["email"], "ann@example.com");
    // Her unexpired access token stops working at once...
    for path in ["/auth/me/", "/chat/rooms/"] {
        let (status, body) = app.get(path, &ann.access).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body["error"]["code"].is_string());
    }
    let (status, _) = app
        .post(
            &format!("/chat/rooms/{room}/messages/"),
            &ann.access,
            json!({"message": "still here?"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // ...she cannot log in (the same answer as a wrong password) or refresh.
    let (status, body) = app.login("ann", "password-ann").await;
    assert_error(status, &body, 401, "invalid_credentials");
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({"refresh": ann.refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, users) = app.get("/admin/users/", &root.access).await;
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ann.id)
        .unwrap()
        .clone();
    assert_eq!(listed["is_active"], false);
    // Reactivated, she logs in again.
    let (status, user) = app
        .patch(&path, &root.access, json!({"is_active": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_active"], true);
    let (status, body) = app.login("ann", "password-ann").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn promote_and_demote(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.register_admin("root").await;
    let ann = app.register("ann").await;
    let path = format!("/admin/users/{}/", ann.id);
    let (status, user) = app
        .patch(&path, &root.access, json!({"is_admin": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_admin"], true);
    assert_eq!(user["is_active"], true);
    let (status, _) = app.get("/admin/users/", &ann.access).await;
    assert_eq!(status, StatusCode::OK);
    let (status, me) = app.get("/auth/me/", &ann.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["is_admin"], true);
    let (status, user) = app
        .patch(&path, &root.access, json!({"is_admin": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_admin"], false);
    let (status, _) = app.get("/admin/users/", &ann.access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An empty body changes nothing.
    let (status, user) = app.patch(&path, &root.access, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_admin"], false);
    // Unknown users, wrong types.
    let (status, body) = app
        .patch(
            "/admin/users/999999/",
            &root.access,
            json!({"is_admin": true}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .patch(
            &path,
            &root.access,
            json!({"is_active": "no", "is_admin": 1}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["is_active", "is_admin"]);
    // Admins cannot lock themselves out (implementation's choice: 403).
    let own = format!("/admin/users/{}/", root.id);
    for change in [json!({"is_admin": false}), json!({"is_active": false})] {
        let (status, body) = app.patch(&own, &root.access, change).await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, _) = app.get("/admin/users/", &root.access).await;
    assert_eq!(status, StatusCode::OK);
}

async fn admins_list_every_room(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.register_admin("root").await;
    let ann = app.register("ann").await;
    app.register("bob").await;
    let public = app.create_room(&ann, "public", false).await;
    let private = app.create_room(&ann, "private", true).await;
    let (_, direct) = app
        .post("/chat/direct/", &ann.access, json!({"username": "bob"}))
        .await;
    let direct = direct["id"].as_i64().unwrap();
    let own = app.create_room(&root, "admins", true).await;
    let (status, rooms) = app.get("/admin/rooms/", &root.access).await;
    assert_eq!(status, StatusCode::OK, "{rooms}");
    let rooms = rooms.as_array().unwrap();
    let mut ids: Vec<i64> = rooms.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [public, private, direct, own]);
    let find = |id: i64| -> &Value { rooms.iter().find(|r| r["id"] == id).unwrap() };
    assert_eq!(find(private)["is_private"], true);
    assert_eq!(find(private)["joined"], false);
    assert_eq!(find(direct)["is_direct"], true);
    assert_eq!(find(own)["role"], "owner");
    for room in rooms {
        assert!(room["member_count"].is_i64() && room["last_seq"].is_i64());
    }
    // The admin's normal list is unchanged: private rooms stay out of it.
    let (_, list) = app.get("/chat/rooms/", &root.access).await;
    let mut listed: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, [public, own]);
}

both_backends!(
    admin_endpoints_are_for_server_admins_only,
    admins_list_users_with_emails_and_activity,
    deactivation_locks_the_user_out_at_once,
    promote_and_demote,
    admins_list_every_room,
);
