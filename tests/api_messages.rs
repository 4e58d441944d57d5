//! Messages: posting (and joining by posting), limits, client_id idempotency, edits,
//! tombstone deletes, history paging on both paths, and gapless seqs under concurrency.

mod common;

use std::collections::HashSet;

use common::{Backend, TestApp, TestUser, assert_error, assert_timestamp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(app: &TestApp, user: &TestUser, room: i64, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/chat/rooms/{room}/messages/"), &user.access, body)
        .await
}

fn seqs(page: &[Value]) -> Vec<i64> {
    page.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

async fn posting_returns_the_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let (status, message) = post(&app, &ann, room, json!({"message": "  hello \n"})).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert!(message["id"].is_i64());
    assert_eq!(message["room_id"], room);
    assert_eq!(message["seq"], 1);
    assert_eq!(message["author"], json!({"id": ann.id, "username": "ann"}));
    assert_eq!(message["content"], "hello");
    assert_timestamp(&message["created_at"]);
    assert_eq!(message["edited_at"], Value::Null);
    assert_eq!(message["deleted"], false);
    assert_eq!(message["client_id"], Value::Null);
    let history = app.history(&ann, room, "").await;
    assert_eq!(history, [message]);
    assert_eq!(app.room(&ann, room).await["last_seq"], 1);
}

async fn posting_to_a_public_room_joins_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "room", false).await;
    app.send(&ann, room, "first").await; // seq 1
    // Reading a public room needs no membership.
    assert_eq!(app.history(&bob, room, "").await.len(), 1);
    assert_eq!(app.room(&bob, room).await["joined"], false);
    let message = app.send(&bob, room, "hi, I'm new").await;
    // member_joined took seq 2, before the message.
    assert_eq!(message["seq"], 3);
    let view = app.room(&bob, room).await;
    assert_eq!(view["joined"], true);
    assert_eq!(view["role"], "member");
    assert_eq!(view["member_count"], 2);
    assert_eq!(view["last_seq"], 3);
    let (_, members) = app
        .get(&format!("/chat/rooms/{room}/members/"), &ann.access)
        .await;
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    // A second post joins nothing more.
    assert_eq!(app.send(&bob, room, "again").await["seq"], 4);
    assert_eq!(app.room(&bob, room).await["member_count"], 2);
    // Private rooms are not joined by posting.
    let private = app.create_room(&ann, "private", true).await;
    let (status, body) = post(&app, &bob, private, json!({"message": "let me in"})).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = post(&app, &bob, 999_999, json!({"message": "anyone?"})).await;
    assert_error(status, &body, 404, "not_found");
}

async fn message_length_counts_unicode_scalar_values_after_trimming(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let crabs = "🦀".repeat(4000);
    let (status, message) = post(&app, &ann, room, json!({ "message": crabs })).await;
    assert_eq!(status, StatusCode::CREATED, "4000 emoji");
    assert_eq!(message["content"], crabs.as_str());
    let padded = format!("  \n{}\t ", "é".repeat(4000));
    let (status, message) = post(&app, &ann, room, json!({ "message": padded })).await;
    assert_eq!(status, StatusCode::CREATED, "4000 after trimming");
    assert_eq!(message["content"].as_str().unwrap().chars().count(), 4000);
    for bad in [
        json!("🦀".repeat(4001)),
        json!("a".repeat(4001)),
        json!(""),
        json!(" \n\t "),
        json!(5),
        json!(null),
    ] {
        let (status, body) = post(&app, &ann, room, json!({ "message": bad })).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["error"]["fields"]["message"].is_string(), "{body}");
    }
    let (status, body) = post(&app, &ann, room, json!({})).await;
    assert_error(status, &body, 400, "validation_failed");
    // Every invalid field, by its request name.
    let (status, body) = post(&app, &ann, room, json!({"message": 1, "client_id": 2})).await;
    assert_error(status, &body, 400, "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["client_id", "message"]);
    let (status, body) = post(
        &app,
        &ann,
        room,
        json!({"message": "", "client_id": "c".repeat(65)}),
    )
    .await;
    assert_error(status, &body, 400, "validation_failed");
    assert_eq!(body["error"]["fields"].as_object().unwrap().len(), 2);
    // Nothing invalid was stored.
    assert_eq!(app.history(&ann, room, "").await.len(), 2);
    assert_eq!(app.room(&ann, room).await["last_seq"], 2);
}

async fn oversized_and_non_json_bodies(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    let path = format!("/chat/rooms/{room}/messages/");
    let big = serde_json::to_vec(&json!({"message": "x".repeat(65 * 1024)})).unwrap();
    let (status, body) = app
        .send_raw(
            Method::POST,
            &path,
            Some(&ann.access),
            Some("application/json"),
            big,
        )
        .await;
    assert_error(status, &body, 413, "payload_too_large");
    let (status, body) = app
        .send_raw(
            Method::POST,
            &path,
            Some(&ann.access),
            Some("text/plain"),
            b"hello".to_vec(),
        )
        .await;
    assert_error(status, &body, 415, "unsupported_media_type");
    let (status, body) = app
        .send_raw(
            Method::POST,
            &path,
            Some(&ann.access),
            Some("application/json"),
            b"{\"message\": ".to_vec(),
        )
        .await;
    assert_error(status, &body, 400, "invalid_json");
    let (status, body) = app
        .send_raw(
            Method::POST,
            &path,
            Some(&ann.access),
            Some("application/json"),
            b"\"hello\"".to_vec(),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(app.history(&ann, room, "").await.is_empty());
}

async fn client_id_makes_sends_idempotent_per_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "room", false).await;
    let client_id = "c".repeat(64);
    let (status, first) = post(
        &app,
        &ann,
        room,
        json!({"message": "once", "client_id": client_id}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["client_id"], client_id.as_str());
    let (status, retry) = post(
        &app,
        &ann,
        room,
        json!({"message": "once (retried)", "client_id": client_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a retry answers 200");
    assert_eq!(retry, first, "with the original message");
    assert_eq!(
        app.history(&ann, room, "").await,
        std::slice::from_ref(&first)
    );
    assert_eq!(app.room(&ann, room).await["last_seq"], 1);
    // Another user's client_id space is separate.
    let (status, other) = post(
        &app,
        &bob,
        room,
        json!({"message": "mine", "client_id": client_id}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["id"], first["id"]);
    // Concurrent retries of a new client_id store one message.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let client = app.client.clone();
        let url = format!("{}/chat/rooms/{room}/messages/", app.base);
        let token = ann.access.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"message": "racy", "client_id": "race-1"}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, message) = task.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}: {message}"
        );
        created += usize::from(status == StatusCode::CREATED);
        ids.insert(message["id"].as_i64().unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let history = app.history(&ann, room, "").await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["client_id"] == "race-1")
            .count(),
        1
    );
}

async fn edits_are_for_the_author_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let root = app.register_admin("root").await;
    let room = app.create_room(&ann, "room", false).await;
    let message = app.send(&bob, room, "typo").await; // seq 2 (after bob's join)
    let id = message["id"].as_i64().unwrap();
    let path = format!("/chat/rooms/{room}/messages/{id}/");
    let (status, edited) = app
        .patch(&path, &bob.access, json!({"message": "  fixed  "}))
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["id"], id);
    assert_eq!(edited["seq"], message["seq"], "the message keeps its seq");
    assert_eq!(edited["content"], "fixed");
    assert_timestamp(&edited["edited_at"]);
    assert_eq!(edited["created_at"], message["created_at"]);
    assert_eq!(
        app.room(&ann, room).await["last_seq"],
        3,
        "the edit is an event"
    );
    assert_eq!(
        app.history(&ann, room, "").await,
        std::slice::from_ref(&edited)
    );
    // Neither the room owner nor a server admin may edit someone else's message.
    for other in [&ann, &root] {
        let (status, body) = app
            .patch(&path, &other.access, json!({"message": "hijacked"}))
            .await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = app.patch(&path, &bob.access, json!({"message": " "})).await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["message"].is_string());
    let (status, body) = app
        .patch(
            &format!("/chat/rooms/{room}/messages/999999/"),
            &bob.access,
            json!({"message": "x"}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    // The message is looked up in the room of the path.
    let other_room = app.create_room(&bob, "other", false).await;
    let (status, _) = app
        .patch(
            &format!("/chat/rooms/{other_room}/messages/{id}/"),
            &bob.access,
            json!({"message": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A deleted message cannot be edited.
    app.delete(&path, &bob.access).await;
    let (status, _) = app
        .patch(&path, &bob.access, json!({"message": "back"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.history(&ann, room, "").await[0]["content"], "");
}

async fn deletes_leave_tombstones(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let carl = app.register("carl").await;
    let dave = app.register("dave").await;
    let root = app.register_admin("root").await;
    let room = app.create_room(&ann, "room", false).await;
    let by_bob: Vec<Value> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(app.send(&bob, room, &format!("bob {i}")).await);
        }
        v
    };
    app.send(&carl, room, "carl here").await;
    app.call(
        Method::POST,
        &format!("/chat/rooms/{room}/join/"),
        Some(&dave.access),
        None,
    )
    .await;
    app.patch(
        &format!("/chat/rooms/{room}/members/{}/", carl.id),
        &ann.access,
        json!({"role": "admin"}),
    )
    .await;
    let del = async |user: &TestUser, message: &Value| {
        app.delete(
            &format!("/chat/rooms/{room}/messages/{}/", message["id"]),
            &user.access,
        )
        .await
    };
    // A plain member may not delete someone else's message.
    let (status, body) = del(&dave, &by_bob[0]).await;
    assert_error(status, &body, 403, "forbidden");
    // The author, the room owner, a room admin and a server admin (not a member) may.
    for (who, message) in [
        (&bob, &by_bob[0]),
        (&ann, &by_bob[1]),
        (&carl, &by_bob[2]),
        (&root, &by_bob[3]),
    ] {
        let last_seq = app.room(&ann, room).await["last_seq"].as_i64().unwrap();
        let (status, body) = del(who, message).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{}: {body}", who.username);
        assert_eq!(
            app.room(&ann, room).await["last_seq"].as_i64().unwrap(),
            last_seq + 1,
            "a delete is an event"
        );
    }
    let history = app.history(&ann, room, "").await;
    for (i, original) in by_bob.iter().enumerate() {
        let now = history
            .iter()
            .find(|m| m["id"] == original["id"])
            .expect("a deleted message stays in history");
        assert_eq!(now["seq"], original["seq"]);
        assert_eq!(now["author"], original["author"]);
        if i < 4 {
            assert_eq!(now["deleted"], true);
            assert_eq!(now["content"], "");
        } else {
            assert_eq!(now["deleted"], false);
            assert_eq!(now["content"], "bob 4");
        }
    }
    // Deleting again changes nothing (204, no new event).
    let last_seq = app.room(&ann, room).await["last_seq"].clone();
    let (status, _) = del(&bob, &by_bob[0]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.room(&ann, room).await["last_seq"], last_seq);
    let (status, body) = app
        .delete(&format!("/chat/rooms/{room}/messages/999999/"), &bob.access)
        .await;
    assert_error(status, &body, 404, "not_found");
}

async fn history_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "room", false).await;
    for i in 1..=55 {
        app.send(&ann, room, &format!("m{i}")).await;
    }
    let page = app.history(&ann, room, "").await;
    assert_eq!(
        seqs(&page),
        (6..=55).collect::<Vec<_>>(),
        "newest 50, ascending"
    );
    assert_eq!(page[0]["content"], "m6");
    let page = app.history(&ann, room, "?limit=3").await;
    assert_eq!(seqs(&page), [53, 54, 55]);
    let page = app.history(&ann, room, "?limit=3&before_seq=5").await;
    assert_eq!(seqs(&page), [2, 3, 4]);
    let page = app.history(&ann, room, "?limit=10&before_seq=3").await;
    assert_eq!(seqs(&page), [1, 2]);
    assert!(app.history(&ann, room, "?before_seq=1").await.is_empty());
    let page = app.history(&ann, room, "?limit=3&after_seq=2").await;
    assert_eq!(seqs(&page), [3, 4, 5]);
    let page = app.history(&ann, room, "?after_seq=0").await;
    assert_eq!(seqs(&page), (1..=50).collect::<Vec<_>>());
    let page = app.history(&ann, room, "?limit=100&after_seq=50").await;
    assert_eq!(seqs(&page), [51, 52, 53, 54, 55]);
    assert!(app.history(&ann, room, "?after_seq=55").await.is_empty());
    let page = app.history(&ann, room, "?limit=100").await;
    assert_eq!(page.len(), 55);
    let page = app.history(&ann, room, "?limit=1").await;
    assert_eq!(seqs(&page), [55]);
    // The original API's path serves the same pages.
    for query in ["", "?limit=3&before_seq=5", "?after_seq=10&limit=4"] {
        let (status, body) = app
            .get(
                &format!("/chat/messages/{room}/messages/{query}"),
                &ann.access,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body.as_array().unwrap(),
            &app.history(&ann, room, query).await,
            "{query}"
        );
        let (status, _) = app
            .get(
                &format!("/chat/messages/{room}/messages{query}"),
                &ann.access,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=x", "limit"),
        ("?limit=", "limit"),
        ("?before_seq=-1", "before_seq"),
        ("?after_seq=1.5", "after_seq"),
        ("?after_seq=abc", "after_seq"),
    ] {
        for prefix in ["/chat/rooms", "/chat/messages"] {
            let (status, body) = app
                .get(&format!("{prefix}/{room}/messages/{query}"), &ann.access)
                .await;
            assert_error(status, &body, 400, "validation_failed");
            assert!(
                body["error"]["fields"][field].is_string(),
                "{query}: {body}"
            );
        }
    }
    let (status, body) = app
        .get(
            &format!("/chat/rooms/{room}/messages/?limit=0&before_seq=x"),
            &ann.access,
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert_eq!(
        body["error"]["fields"].as_object().unwrap().len(),
        2,
        "{body}"
    );
    // Both bounds at once is refused (implementation's choice).
    let (status, body) = app
        .get(
            &format!("/chat/rooms/{room}/messages/?before_seq=9&after_seq=2"),
            &ann.access,
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = app
        .get("/chat/messages/999999/messages/", &ann.access)
        .await;
    assert_error(status, &body, 404, "not_found");
}

/// 4 users × 25 concurrent posts: every event takes exactly one seq, none is skipped.
async fn seq_is_gapless_under_concurrent_writers(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "busy", false).await;
    let mut users = vec![ann];
    for name in ["bob", "carl", "dave"] {
        users.push(app.register(name).await);
    }
    let mut tasks = Vec::new();
    for user in &users {
        for i in 0..25 {
            let client = app.client.clone();
            let url = format!("{}/chat/rooms/{room}/messages/", app.base);
            let token = user.access.clone();
            let text = format!("{} {i}", user.username);
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({ "message": text }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, StatusCode::CREATED, "{body}");
                body["seq"].as_i64().unwrap()
            }));
        }
    }
    let mut message_seqs = Vec::new();
    for task in tasks {
        message_seqs.push(task.await.unwrap());
    }
    let unique: HashSet<i64> = message_seqs.iter().copied().collect();
    assert_eq!(unique.len(), 100, "message seqs are unique");
    let view = app.room(&users[0], room).await;
    // 100 messages and 3 member_joined events (bob, carl and dave joined by posting).
    assert_eq!(view["member_count"], 4);
    assert_eq!(view["last_seq"], 103, "one seq per event, no gap");
    assert!(unique.iter().all(|seq| (1..=103).contains(seq)));
    // History agrees, page by page.
    let mut all = app.history(&users[0], room, "?limit=100&after_seq=0").await;
    let last = all.last().unwrap()["seq"].as_i64().unwrap();
    all.extend(
        app.history(&users[0], room, &format!("?limit=100&after_seq={last}"))
            .await,
    );
    let listed = seqs(&all);
    assert_eq!(listed.len(), 100);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "ascending");
    assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), unique);
}

both_backends!(
    posting_returns_the_message,
    posting_to_a_public_room_joins_it,
    message_length_counts_unicode_scalar_values_after_trimming,
    oversized_and_non_json_bodies,
    client_id_makes_sends_idempotent_per_user,
    edits_are_for_the_author_only,
    deletes_leave_tombstones,
    history_pages,
    seq_is_gapless_under_concurrent_writers,
);
