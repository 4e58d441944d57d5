//! Rooms: listing, creating, reading, changing and deleting rooms; joining and leaving;
//! members, invitations and roles; direct conversations; read markers; and the rule
//! that private rooms are invisible (404) to non-members.

mod common;

use common::{Backend, TestApp, TestUser, assert_error, assert_timestamp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn ids(rooms: &Value) -> Vec<i64> {
    rooms
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn members(app: &TestApp, user: &TestUser, room: i64) -> Vec<(String, String)> {
    let (status, body) = app
        .get(&format!("/chat/rooms/{room}/members/"), &user.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn join(app: &TestApp, user: &TestUser, room: i64) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/chat/rooms/{room}/join/"),
        Some(&user.access),
        None,
    )
    .await
}

async fn set_role(
    app: &TestApp,
    by: &TestUser,
    room: i64,
    user_id: i64,
    role: &str,
) -> (StatusCode, Value) {
    app.patch(
        &format!("/chat/rooms/{room}/members/{user_id}/"),
        &by.access,
        json!({ "role": role }),
    )
    .await
}

async fn invite(app: &TestApp, by: &TestUser, room: i64, username: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/chat/rooms/{room}/members/"),
        &by.access,
        json!({ "username": username }),
    )
    .await
}

async fn create_returns_the_room_with_the_caller_as_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let (status, room) = app
        .post(
            "/chat/rooms/",
            &ann.access,
            json!({"name": "  General  ", "topic": " chat "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert!(room["id"].is_i64());
    assert_eq!(room["name"], "General");
    assert_eq!(room["topic"], "chat");
    assert_eq!(room["is_private"], false);
    assert_eq!(room["is_direct"], false);
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["last_seq"], 0);
    assert_eq!(room["joined"], true);
    assert_eq!(room["role"], "owner");
    assert_eq!(room["last_read_seq"], 0);
    assert_eq!(room["unread_count"], 0);
    assert_timestamp(&room["created_at"]);
    assert_timestamp(&room["updated_at"]);
    let id = room["id"].as_i64().unwrap();
    assert_eq!(app.room(&ann, id).await, room);
    assert_eq!(
        members(&app, &ann, id).await,
        [("ann".into(), "owner".into())]
    );
    let (status, private) = app
        .post(
            "/chat/rooms/",
            &ann.access,
            json!({"name": "secret", "is_private": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(private["is_private"], true);
    assert_eq!(private["topic"], "");
}

async fn room_name_and_topic_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let create = |body: Value| app.post("/chat/rooms/", &ann.access, body);
    for bad in [json!(""), json!("   "), json!("x".repeat(81)), json!(null)] {
        let (status, body) = create(json!({ "name": bad })).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["error"]["fields"]["name"].is_string(), "{body}");
    }
    let (status, body) = create(json!({"name": "é".repeat(80)})).await;
    assert_eq!(status, StatusCode::CREATED, "80 characters: {body}");
    let (status, body) = create(json!({"name": format!("  {}  ", "y".repeat(80))})).await;
    assert_eq!(status, StatusCode::CREATED, "80 after trimming: {body}");
    let (status, body) = create(json!({"name": "topical", "topic": "t".repeat(500)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = create(json!({"name": "too topical", "topic": "t".repeat(501)})).await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["topic"].is_string());
    // Every invalid field at once, including wrong types.
    let (status, body) = create(json!({"name": 1, "topic": 2, "is_private": "yes"})).await;
    assert_error(status, &body, 400, "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["is_private", "name", "topic"],
        "{body}"
    );
    // Names are unique regardless of case and surrounding spaces.
    app.create_room(&ann, "General", false).await;
    for dup in ["general", " GENERAL ", "General"] {
        let (status, body) = create(json!({ "name": dup, "is_private": true })).await;
        assert_error(status, &body, 409, "conflict");
    }
}

async fn list_shows_public_rooms_and_the_callers_private_and_direct_rooms(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let public = app.create_room(&ann, "public", false).await;
    let anns_private = app.create_room(&ann, "anns", true).await;
    let bobs_private = app.create_room(&bob, "bobs", true).await;
    let (status, direct) = app
        .post("/chat/direct/", &ann.access, json!({"username": "carl"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let direct = direct["id"].as_i64().unwrap();

    let (status, list) = app.get("/chat/rooms/", &ann.access).await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = ids(&list);
    seen.sort_unstable();
    assert_eq!(seen, [public, anns_private, direct]);

    let (_, list) = app.get("/chat/rooms/", &bob.access).await;
    let mut seen = ids(&list);
    seen.sort_unstable();
    assert_eq!(seen, [public, bobs_private]);
    let public_for_bob = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == public)
        .unwrap();
    assert_eq!(public_for_bob["joined"], false);
    assert_eq!(public_for_bob["role"], Value::Null);
    assert_eq!(public_for_bob["member_count"], 1);

    let (_, list) = app.get("/chat/rooms/", &carl.access).await;
    let mut seen = ids(&list);
    seen.sort_unstable();
    assert_eq!(seen, [public, direct]);
    let direct_for_carl = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == direct)
        .unwrap();
    assert_eq!(direct_for_carl["is_direct"], true);
    assert_eq!(direct_for_carl["joined"], true);
}

async fn get_room_as_member_outsider_and_for_unknown_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let public = app.create_room(&ann, "public", false).await;
    let room = app.room(&bob, public).await;
    assert_eq!(room["joined"], false);
    assert_eq!(room["role"], Value::Null);
    assert_eq!(room["last_read_seq"], 0);
    assert_eq!(room["unread_count"], 0);
    let (status, body) = app.get("/chat/rooms/999999/", &ann.access).await;
    assert_error(status, &body, 404, "not_found");
}

async fn patch_room_is_for_owner_and_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let dave = app.register("dave").await;
    let room = app.create_room(&ann, "room", false).await;
    app.create_room(&ann, "taken", false).await;
    join(&app, &bob, room).await;
    join(&app, &carl, room).await;
    let before = app.room(&ann, room).await;

    let path = format!("/chat/rooms/{room}/");
    let (status, updated) = app
        .patch(
            &path,
            &ann.access,
            json!({"name": " Renamed ", "topic": "new topic"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["topic"], "new topic");
    assert_eq!(updated["role"], "owner");
    assert_eq!(updated["created_at"], before["created_at"]);
    assert!(updated["updated_at"].as_str() >= before["updated_at"].as_str());
    assert_eq!(
        updated["last_seq"].as_i64().unwrap(),
        before["last_seq"].as_i64().unwrap() + 1,
        "a change is a room event"
    );
    // Only the topic: the name stays.
    let (status, updated) = app.patch(&path, &ann.access, json!({"topic": ""})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["topic"], "");

    // A plain member and an outsider may not.
    let (status, body) = app.patch(&path, &carl.access, json!({"topic": "x"})).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app.patch(&path, &dave.access, json!({"topic": "x"})).await;
    assert_error(status, &body, 403, "forbidden");
    // A room admin may.
    let (status, _) = set_role(&app, &ann, room, bob.id, "admin").await;
    assert_eq!(status, StatusCode::OK);
    let (status, updated) = app
        .patch(&path, &bob.access, json!({"topic": "by bob"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["topic"], "by bob");
    assert_eq!(updated["role"], "admin");

    let (status, body) = app
        .patch(&path, &ann.access, json!({"name": "TAKEN"}))
        .await;
    assert_error(status, &body, 409, "conflict");
    // Renaming to another case of its own name is fine.
    let (status, _) = app
        .patch(&path, &ann.access, json!({"name": "RENAMED"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .patch(
            &path,
            &ann.access,
            json!({"name": "  ", "topic": "t".repeat(501)}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["name"].is_string());
    assert!(body["error"]["fields"]["topic"].is_string());
    let (status, body) = app
        .patch("/chat/rooms/999999/", &ann.access, json!({"topic": "x"}))
        .await;
    assert_error(status, &body, 404, "not_found");
}

async fn delete_room_is_for_the_owner_or_a_server_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let root = app.register_admin("root").await;
    let room = app.create_room(&ann, "room", false).await;
    app.send(&ann, room, "hello").await;
    join(&app, &bob, room).await;
    join(&app, &carl, room).await;
    set_role(&app, &ann, room, bob.id, "admin").await;
    let path = format!("/chat/rooms/{room}/");
    let (status, body) = app.delete(&path, &bob.access).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app.delete(&path, &carl.access).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app.delete(&path, &ann.access).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.get(&path, &ann.access).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .get(&format!("/chat/rooms/{room}/messages/"), &ann.access)
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, _) = app.delete(&path, &ann.access).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The name is free again.
    app.create_room(&carl, "ROOM", false).await;

    // A server admin deletes any room, even a private one they cannot see.
    let private = app.create_room(&ann, "private", true).await;
    let (status, _) = app
        .get(&format!("/chat/rooms/{private}/"), &root.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .delete(&format!("/chat/rooms/{private}/"), &root.access)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app
        .get(&format!("/chat/rooms/{private}/"), &ann.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/chat/rooms/", &ann.access).await;
    assert!(!ids(&list).contains(&private));
}

async fn join_is_for_public_rooms_and_harmless_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let public = app.create_room(&ann, "public", false).await;
    let private = app.create_room(&ann, "private", true).await;
    let (status, room) = join(&app, &bob, public).await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(room["id"], public);
    assert_eq!(room["joined"], true);
    assert_eq!(room["role"], "member");
    assert_eq!(room["member_count"], 2);
    assert_eq!(room["last_seq"], 1, "member_joined is an event");
    let (status, again) = join(&app, &bob, public).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["member_count"], 2);
    assert_eq!(again["last_seq"], 1, "joining twice stores nothing");
    assert_eq!(
        members(&app, &ann, public).await,
        [
            ("ann".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );
    // The owner joining their own room changes nothing either.
    let (status, room) = join(&app, &ann, public).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(room["role"], "owner");
    let (status, body) = join(&app, &bob, private).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = join(&app, &bob, 999999).await;
    assert_error(status, &body, 404, "not_found");
}

async fn leave_and_ownership_passing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let dave = app.register("dave").await;
    let room = app.create_room(&ann, "room", false).await;
    for user in [&bob, &carl, &dave] {
        join(&app, user, room).await;
    }
    let leave = async |user: &TestUser| {
        app.call(
            Method::POST,
            &format!("/chat/rooms/{room}/leave/"),
            Some(&user.access),
            None,
        )
        .await
    };
    // dave leaves: 204, and he is gone.
    let (status, body) = leave(&dave).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.room(&ann, room).await["member_count"], 3);
    assert_eq!(app.room(&dave, room).await["joined"], false);
    // carl (joined after bob) is made admin: when ann leaves, carl (the oldest admin) owns it.
    set_role(&app, &ann, room, carl.id, "admin").await;
    let (status, _) = leave(&ann).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        members(&app, &bob, room).await,
        [
            ("bob".into(), "member".into()),
            ("carl".into(), "owner".into())
        ]
    );
    // Without admins, the oldest member inherits.
    let (status, _) = leave(&carl).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        members(&app, &bob, room).await,
        [("bob".into(), "owner".into())]
    );
    assert_eq!(app.room(&bob, room).await["role"], "owner");

    // Leaving a private room makes it invisible.
    let private = app.create_room(&ann, "private", true).await;
    invite(&app, &ann, private, "bob").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/chat/rooms/{private}/leave/"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .get(&format!("/chat/rooms/{private}/"), &bob.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn invitations_into_private_rooms(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let room = app.create_room(&ann, "private", true).await;
    let (status, member) = invite(&app, &ann, room, "BOB").await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["user"]["id"], bob.id);
    assert_eq!(member["user"]["username"], "bob");
    assert!(member["user"].get("email").is_none(), "{member}");
    assert_eq!(member["role"], "member");
    assert_timestamp(&member["joined_at"]);
    let room_for_bob = app.room(&bob, room).await;
    assert_eq!(room_for_bob["joined"], true);
    assert_eq!(room_for_bob["member_count"], 2);
    // Inviting a member again adds nothing (answered 200).
    let (status, _) = invite(&app, &ann, room, "bob").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.room(&bob, room).await["member_count"], 2);
    // A plain member may not invite; an outsider does not see the room.
    let (status, body) = invite(&app, &bob, room, "carl").await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = invite(&app, &carl, room, "carl").await;
    assert_error(status, &body, 404, "not_found");
    // A room admin may.
    set_role(&app, &ann, room, bob.id, "admin").await;
    let (status, _) = invite(&app, &bob, room, "carl").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = invite(&app, &ann, room, "nobody").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(
            &format!("/chat/rooms/{room}/members/"),
            &ann.access,
            json!({}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["username"].is_string());
    assert_eq!(
        members(&app, &carl, room).await,
        [
            ("ann".into(), "owner".into()),
            ("bob".into(), "admin".into()),
            ("carl".into(), "member".into())
        ]
    );
}

async fn member_roles_are_set_by_the_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let dave = app.register("dave").await;
    let room = app.create_room(&ann, "room", false).await;
    join(&app, &bob, room).await;
    join(&app, &carl, room).await;
    let (status, member) = set_role(&app, &ann, room, bob.id, "admin").await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["role"], "admin");
    assert_eq!(member["user"]["id"], bob.id);
    // A room admin may not change roles, nor a member.
    let (status, body) = set_role(&app, &bob, room, carl.id, "admin").await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = set_role(&app, &carl, room, carl.id, "admin").await;
    assert_error(status, &body, 403, "forbidden");
    // The owner's role is not for changing, and `owner` is not a role to hand out.
    let (status, body) = set_role(&app, &ann, room, ann.id, "member").await;
    assert_error(status, &body, 403, "forbidden");
    for bad in ["owner", "superuser", ""] {
        let (status, body) = set_role(&app, &ann, room, carl.id, bad).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["error"]["fields"]["role"].is_string());
    }
    let (status, body) = set_role(&app, &ann, room, dave.id, "admin").await;
    assert_error(status, &body, 404, "not_found");
    // Demote back.
    let (status, member) = set_role(&app, &ann, room, bob.id, "member").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member["role"], "member");
    assert_eq!(app.room(&bob, room).await["role"], "member");
}

async fn removing_members(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let dave = app.register("dave").await;
    let eve = app.register("eve").await;
    let room = app.create_room(&ann, "room", true).await;
    for name in ["bob", "carl", "dave", "eve"] {
        invite(&app, &ann, room, name).await;
    }
    set_role(&app, &ann, room, bob.id, "admin").await;
    set_role(&app, &ann, room, carl.id, "admin").await;
    let remove = async |by: &TestUser, user_id: i64| {
        app.delete(
            &format!("/chat/rooms/{room}/members/{user_id}/"),
            &by.access,
        )
        .await
    };
    // A plain member may not remove others.
    let (status, body) = remove(&dave, eve.id).await;
    assert_error(status, &body, 403, "forbidden");
    // An admin may not remove the owner (nor, here, another admin).
    let (status, body) = remove(&bob, ann.id).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = remove(&bob, carl.id).await;
    assert_error(status, &body, 403, "forbidden");
    // An admin removes a member.
    let (status, body) = remove(&bob, eve.id).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get(&format!("/chat/rooms/{room}/"), &eve.access).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "eve no longer sees the room");
    // A member removes themself.
    let (status, _) = remove(&dave, dave.id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The owner removes an admin.
    let (status, _) = remove(&ann, carl.id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Someone who is not a member.
    let (status, body) = remove(&ann, eve.id).await;
    assert_error(status, &body, 404, "not_found");
    // Outsiders do not see the private room at all.
    let (status, body) = remove(&eve, bob.id).await;
    assert_error(status, &body, 404, "not_found");
    assert_eq!(
        members(&app, &ann, room).await,
        [
            ("ann".into(), "owner".into()),
            ("bob".into(), "admin".into())
        ]
    );
    assert_eq!(app.room(&ann, room).await["member_count"], 2);
}

async fn direct_rooms_are_found_from_either_side(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let (status, room) = app
        .post("/chat/direct/", &ann.access, json!({"username": "bob"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["is_direct"], true);
    assert_eq!(room["is_private"], true);
    assert_eq!(room["member_count"], 2);
    assert_eq!(room["joined"], true);
    let id = room["id"].as_i64().unwrap();
    let (status, again) = app
        .post("/chat/direct/", &ann.access, json!({"username": "bob"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], id);
    let (status, other_side) = app
        .post("/chat/direct/", &bob.access, json!({"username": "ANN"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other_side["id"], id);
    assert_eq!(other_side["joined"], true);
    let mut names: Vec<String> = members(&app, &bob, id)
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    names.sort();
    assert_eq!(names, ["ann", "bob"]);
    // Both can talk; carl cannot see it.
    app.send(&bob, id, "hi ann").await;
    let (status, _) = app.get(&format!("/chat/rooms/{id}/"), &carl.access).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&format!("/chat/rooms/{id}/messages/"), &carl.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = join(&app, &carl, id).await;
    assert_error(status, &body, 404, "not_found");
    // Nobody can be added to a direct conversation.
    let (status, body) = invite(&app, &ann, id, "carl").await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post("/chat/direct/", &ann.access, json!({"username": "nobody"}))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.post("/chat/direct/", &ann.access, json!({})).await;
    assert_error(status, &body, 400, "validation_failed");
}

/// Every room endpoint answers 404, never 403, to someone outside a private room.
async fn private_rooms_are_404_to_outsiders_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let private = app.create_room(&ann, "private", true).await;
    invite(&app, &ann, private, "bob").await;
    let message = app.send(&ann, private, "secret").await["id"]
        .as_i64()
        .unwrap();
    let (_, direct) = app
        .post("/chat/direct/", &ann.access, json!({"username": "bob"}))
        .await;
    let direct = direct["id"].as_i64().unwrap();
    let direct_message = app.send(&ann, direct, "psst").await["id"].as_i64().unwrap();
    for (room, message) in [(private, message), (direct, direct_message)] {
        let r = format!("/chat/rooms/{room}");
        let requests: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("{r}/"), None),
            (Method::PATCH, format!("{r}/"), Some(json!({"topic": "x"}))),
            (Method::DELETE, format!("{r}/"), None),
            (Method::POST, format!("{r}/join/"), None),
            (Method::POST, format!("{r}/leave/"), None),
            (Method::GET, format!("{r}/members/"), None),
            (
                Method::POST,
                format!("{r}/members/"),
                Some(json!({"username": "eve"})),
            ),
            (
                Method::PATCH,
                format!("{r}/members/{}/", bob.id),
                Some(json!({"role": "admin"})),
            ),
            (Method::DELETE, format!("{r}/members/{}/", bob.id), None),
            (Method::DELETE, format!("{r}/members/{}/", eve.id), None),
            (Method::POST, format!("{r}/read/"), Some(json!({"seq": 1}))),
            (Method::GET, format!("{r}/messages/"), None),
            (
                Method::GET,
                format!("/chat/messages/{room}/messages/"),
                None,
            ),
            (
                Method::POST,
                format!("{r}/messages/"),
                Some(json!({"message": "hi"})),
            ),
            (
                Method::PATCH,
                format!("{r}/messages/{message}/"),
                Some(json!({"message": "edited"})),
            ),
            (Method::DELETE, format!("{r}/messages/{message}/"), None),
        ];
        for (method, path, body) in requests {
            let (status, answer) = app
                .call(method.clone(), &path, Some(&eve.access), body)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "not_found", "{method} {path}");
        }
    }
    // Nothing changed for the members.
    assert_eq!(app.room(&ann, private).await["member_count"], 2);
    assert_eq!(app.history(&bob, private, "").await.len(), 1);
    assert_eq!(app.history(&bob, direct, "").await[0]["content"], "psst");
}

async fn read_markers_and_unread_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let room = app.create_room(&ann, "room", false).await;
    join(&app, &bob, room).await; // seq 1
    app.send(&ann, room, "one").await; // seq 2
    app.send(&ann, room, "two").await; // seq 3
    app.send(&bob, room, "mine").await; // seq 4: bob's own, not unread for him
    let m5 = app.send(&ann, room, "three").await; // seq 5
    assert_eq!(m5["seq"], 5);
    let view = app.room(&bob, room).await;
    assert_eq!(view["last_seq"], 5);
    // Posting moved bob's marker to his own message.
    assert_eq!(view["last_read_seq"], 4);
    assert_eq!(view["unread_count"], 1);
    // ann's marker is at her last message.
    let view = app.room(&ann, room).await;
    assert_eq!(view["last_read_seq"], 5);
    assert_eq!(view["unread_count"], 0);

    // carl joins at seq 6: everything by others counts.
    join(&app, &carl, room).await;
    let view = app.room(&carl, room).await;
    assert_eq!(view["last_read_seq"], 0);
    assert_eq!(view["unread_count"], 4);
    let read = async |user: &TestUser, seq: Value| {
        app.post(
            &format!("/chat/rooms/{room}/read/"),
            &user.access,
            json!({ "seq": seq }),
        )
        .await
    };
    let (status, body) = read(&carl, json!(3)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let view = app.room(&carl, room).await;
    assert_eq!(view["last_read_seq"], 3);
    assert_eq!(view["unread_count"], 2);
    // Never back.
    let (status, _) = read(&carl, json!(1)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.room(&carl, room).await["last_read_seq"], 3);
    // Deleted messages are not unread.
    let (status, _) = app
        .delete(
            &format!("/chat/rooms/{room}/messages/{}/", m5["id"]),
            &ann.access,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.room(&carl, room).await["unread_count"], 1);
    // The list carries the same read state.
    let (_, list) = app.get("/chat/rooms/", &carl.access).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap()
        .clone();
    assert_eq!(listed["last_read_seq"], 3);
    assert_eq!(listed["unread_count"], 1);
    // A marker past the end is clamped to the room's last seq (implementation's choice).
    let (status, _) = read(&carl, json!(1_000_000)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let view = app.room(&carl, room).await;
    assert_eq!(view["last_read_seq"], view["last_seq"]);
    assert_eq!(view["unread_count"], 0);

    for bad in [json!(-1), json!("3"), json!(1.5), json!(null)] {
        let (status, body) = read(&carl, bad.clone()).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["error"]["fields"]["seq"].is_string(), "{bad}: {body}");
    }
    // Read markers belong to members (the implementation answers 403 in a public room).
    let dave = app.register("dave").await;
    let (status, body) = read(&dave, json!(1)).await;
    assert_error(status, &body, 403, "forbidden");
}

async fn unread_count_is_capped_at_1000(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "busy", false).await;
    join(&app, &bob, room).await; // seq 1
    // 1003 messages by ann: seq 2..=1004, posted by a few concurrent senders.
    let total = 1003;
    let senders = 4;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let client = app.client.clone();
        let url = format!("{}/chat/rooms/{room}/messages/", app.base);
        let token = ann.access.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = s;
            while i < total {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "message": format!("m{i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                i += senders;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let view = app.room(&bob, room).await;
    assert_eq!(view["last_seq"], 1004);
    assert_eq!(view["unread_count"], 1000);
    // 1000 messages newer than seq 4: still the cap; newer than 5: 999.
    let read = async |seq: i64| {
        app.post(
            &format!("/chat/rooms/{room}/read/"),
            &bob.access,
            json!({ "seq": seq }),
        )
        .await
    };
    read(4).await;
    assert_eq!(app.room(&bob, room).await["unread_count"], 1000);
    read(5).await;
    assert_eq!(app.room(&bob, room).await["unread_count"], 999);
    let (_, list) = app.get("/chat/rooms/", &bob.access).await;
    assert_eq!(list[0]["unread_count"], 999);
}

both_backends!(
    create_returns_the_room_with_the_caller_as_owner,
    room_name_and_topic_limits,
    list_shows_public_rooms_and_the_callers_private_and_direct_rooms,
    get_room_as_member_outsider_and_for_unknown_ids,
    patch_room_is_for_owner_and_admins,
    delete_room_is_for_the_owner_or_a_server_admin,
    join_is_for_public_rooms_and_harmless_twice,
    leave_and_ownership_passing,
    invitations_into_private_rooms,
    member_roles_are_set_by_the_owner,
    removing_members,
    direct_rooms_are_found_from_either_side,
    private_rooms_are_404_to_outsiders_everywhere,
    read_markers_and_unread_counts,
    unread_count_is_capped_at_1000,
);
