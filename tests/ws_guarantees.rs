//! The contract's real-time guarantees, each proven with several real WebSocket clients:
//! identical gapless order under concurrent senders, exact replay after reconnect,
//! slow consumers closed with 4008, subscriptions ended by removal, deletion and
//! deactivation, resync for long absences, and the original endpoint.

mod common;
mod wsclient;

use std::collections::HashSet;
use std::time::Duration;

use common::{Backend, TestUser, spawn_app};
use futures_util::future::join_all;
use serde_json::{Value, json};
use wsclient::WsClient;

/// Reads `count` room events of `room_id` (skipping other frames) and returns them.
async fn room_events(ws: &mut WsClient, room_id: i64, count: usize) -> Vec<Value> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let frame = ws.next().await;
        if frame["room_id"] == room_id && frame.get("seq").is_some() {
            events.push(frame);
        }
    }
    events
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

async fn concurrent_senders_give_every_subscriber_the_same_gapless_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.register("owner").await;
    let room = app.create_room(&owner, "busy", false).await;
    let mut senders: Vec<TestUser> = Vec::new();
    for i in 0..4 {
        let user = app.register(&format!("sender{i}")).await;
        let (status, _) = app
            .post(
                &format!("/chat/rooms/{room}/join/"),
                &user.access,
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        senders.push(user);
    }
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::connect(&app.base, &owner.access).await;
        ws.subscribe(room, None).await;
        subscribers.push(ws);
    }
    let (_, start) = app
        .get(&format!("/chat/rooms/{room}/"), &owner.access)
        .await;
    let first_seq = start["last_seq"].as_i64().unwrap() + 1;
    let per_sender = 30;
    let bursts = senders.iter().enumerate().map(|(i, sender)| {
        let base = app.base.clone();
        let token = sender.access.clone();
        async move { wsclient::send_burst(&base, &token, room, &format!("s{i}"), per_sender).await }
    });
    join_all(bursts).await;
    let total = senders.len() * per_sender;
    let mut orders = Vec::new();
    for ws in &mut subscribers {
        let events = room_events(ws, room, total).await;
        let got = seqs(&events);
        let expected: Vec<i64> = (first_seq..first_seq + total as i64).collect();
        assert_eq!(got, expected, "gapless, ordered, no duplicates");
        // Each sender's messages arrive in the order it sent them.
        for i in 0..senders.len() {
            let mine: Vec<String> = events
                .iter()
                .filter_map(|e| e["message"]["content"].as_str())
                .filter(|c| c.starts_with(&format!("s{i} ")))
                .map(str::to_owned)
                .collect();
            let sent: Vec<String> = (0..per_sender).map(|n| format!("s{i} m{n}")).collect();
            assert_eq!(mine, sent);
        }
        orders.push(
            events
                .iter()
                .map(|e| e["message"]["id"].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every subscriber saw the same order"
    );
}

async fn reconnecting_replays_exactly_what_was_missed(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "general", false).await;
    app.send(&bob, room, "hello").await;
    let mut bob_ws = WsClient::connect(&app.base, &bob.access).await;
    let (_, subscribed) = bob_ws.subscribe(room, None).await;
    let seen = subscribed["last_seq"].as_i64().unwrap();
    app.send(&ann, room, "while connected").await;
    let live = room_events(&mut bob_ws, room, 1).await;
    let seen_live = live[0]["seq"].as_i64().unwrap();
    assert_eq!(seen_live, seen + 1);
    bob_ws.close().await;

    let mut missed_ids = Vec::new();
    for i in 0..5 {
        missed_ids.push(app.send(&ann, room, &format!("missed {i}")).await["id"].clone());
    }
    let mut back = WsClient::connect(&app.base, &bob.access).await;
    let (replay, subscribed) = back.subscribe(room, Some(seen_live)).await;
    assert_eq!(
        seqs(&replay),
        (seen_live + 1..=seen_live + 5).collect::<Vec<_>>()
    );
    assert_eq!(
        replay
            .iter()
            .map(|e| e["message"]["id"].clone())
            .collect::<Vec<_>>(),
        missed_ids
    );
    assert_eq!(subscribed["last_seq"], seen_live + 5);
    app.send(&ann, room, "after").await;
    let next = room_events(&mut back, room, 1).await;
    assert_eq!(
        next[0]["seq"],
        seen_live + 6,
        "live events continue right after the replay"
    );
}

async fn a_long_absence_asks_for_a_resync(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    let sends = (0..1001).map(|i| {
        let mut frame = json!({"type": "send", "room_id": room, "message": format!("m{i}")});
        frame["client_id"] = json!(format!("bulk-{i}"));
        frame
    });
    // Over HTTP in parallel batches, to be quick.
    let frames: Vec<Value> = sends.collect();
    let path = format!("/chat/rooms/{room}/messages/");
    for chunk in frames.chunks(50) {
        join_all(
            chunk
                .iter()
                .map(|f| app.post(&path, &ann.access, f.clone())),
        )
        .await;
    }
    ws.send(json!({"type": "subscribe", "room_id": room, "after_seq": 0}))
        .await;
    let first = ws.next().await;
    assert_eq!(
        (first["type"].as_str(), first["room_id"].as_i64()),
        (Some("resync_required"), Some(room)),
        "{first}"
    );
    let subscribed = ws.next_of_type("subscribed").await;
    assert_eq!(subscribed["last_seq"], 1001);
}

async fn a_stalled_reader_is_closed_with_4008_while_others_keep_receiving(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "flood", false).await;
    let mut stalled = WsClient::connect(&app.base, &ann.access).await;
    stalled.subscribe(room, None).await;
    let mut healthy = WsClient::connect(&app.base, &ann.access).await;
    healthy.subscribe(room, None).await;
    let big = "x".repeat(4000);
    let total = 1500;
    let reader = tokio::spawn(async move {
        let events = room_events(&mut healthy, room, total).await;
        seqs(&events)
    });
    let path = format!("/chat/rooms/{room}/messages/");
    for chunk in (0..total).collect::<Vec<_>>().chunks(50) {
        join_all(
            chunk
                .iter()
                .map(|_| app.post(&path, &ann.access, json!({"message": big}))),
        )
        .await;
    }
    let healthy_seqs = reader.await.expect("healthy reader");
    assert_eq!(
        healthy_seqs,
        (1..=total as i64).collect::<Vec<_>>(),
        "the healthy subscriber got everything"
    );
    // The stalled one now reads what was buffered before its close, then the close.
    assert_eq!(stalled.closed().await, Some(4008));
}

async fn removal_deletion_and_deactivation_end_subscriptions(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let private = app.create_room(&ann, "secret", true).await;
    let (status, _) = app
        .post(
            &format!("/chat/rooms/{private}/members/"),
            &ann.access,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(status, 201);
    let mut bob_ws = WsClient::connect(&app.base, &bob.access).await;
    bob_ws.subscribe(private, None).await;
    let (status, _) = app
        .delete(
            &format!("/chat/rooms/{private}/members/{}/", bob.id),
            &ann.access,
        )
        .await;
    assert_eq!(status, 204);
    let left = bob_ws.next_of_type("member_left").await;
    assert_eq!(left["user"]["id"], bob.id);
    app.send(&ann, private, "after removal").await;
    while let Some(frame) = bob_ws.try_next(Duration::from_millis(300)).await {
        assert_ne!(
            frame["type"], "message",
            "a removed member receives nothing more: {frame}"
        );
    }

    let public = app.create_room(&ann, "open", false).await;
    bob_ws.subscribe(public, None).await;
    let (status, _) = app
        .delete(&format!("/chat/rooms/{public}/"), &ann.access)
        .await;
    assert_eq!(status, 204);
    let deleted = bob_ws.next_of_type("room_deleted").await;
    assert_eq!(deleted["room_id"], public);
    assert!(deleted["seq"].as_i64().is_some());

    app.promote("ann");
    let (status, _) = app
        .patch(
            &format!("/admin/users/{}/", bob.id),
            &ann.access,
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(bob_ws.closed().await, Some(4001));
}

async fn the_original_endpoint_ignores_a_spoofed_sender(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let mallory = app.register("mallory").await;
    let room = app.create_room(&ann, "Lobby", false).await;
    let mut ann_ws = WsClient::connect(&app.base, &ann.access).await;
    ann_ws.subscribe(room, None).await;

    let mut legacy = WsClient::open(
        &app.base,
        &format!("/ws/chat/lobby/?token={}", mallory.access),
    )
    .await;
    legacy.next_of_type("ready").await;
    legacy.next_of_type("subscribed").await;
    legacy
        .send(json!({"type": "chat_message", "message": "I am ann", "sender": "ann"}))
        .await;
    let message = ann_ws.next_of_type("message").await;
    assert_eq!(message["message"]["author"]["username"], "mallory");
    legacy.send(json!({"type": "typing"})).await;
    let typing = ann_ws.next_of_type("typing").await;
    assert_eq!(
        (
            typing["user"]["username"].as_str(),
            typing["typing"].as_bool()
        ),
        (Some("mallory"), Some(true))
    );
    legacy.send(json!({"type": "stop_typing"})).await;
    assert_eq!(ann_ws.next_of_type("typing").await["typing"], false);

    let by_id = WsClient::open(
        &app.base,
        &format!("/ws/chat/{room}/?token={}", mallory.access),
    )
    .await;
    by_id.close().await;
    let private = app.create_room(&ann, "hidden", true).await;
    let mut refused = WsClient::open(
        &app.base,
        &format!("/ws/chat/{private}/?token={}", mallory.access),
    )
    .await;
    refused.next_of_type("ready").await;
    let error = refused.next_of_type("error").await;
    assert_eq!(error["code"], "not_found");
    assert_eq!(refused.closed().await, Some(4004));
}

async fn acks_come_only_after_commit_and_repeat_without_rebroadcast(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    ws.subscribe(room, None).await;
    let mut acked = HashSet::new();
    for i in 0..20 {
        ws.send(json!({"type": "send", "room_id": room, "message": format!("m{i}"), "client_id": format!("k{i}")})).await;
    }
    let mut messages = 0;
    while acked.len() < 20 || messages < 20 {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => {
                acked.insert(frame["client_id"].as_str().unwrap().to_owned());
                // Acknowledged means stored: history already has it.
                let id = frame["message"]["id"].clone();
                let (_, page) = app
                    .get(
                        &format!("/chat/rooms/{room}/messages/?limit=100"),
                        &ann.access,
                    )
                    .await;
                assert!(page.as_array().unwrap().iter().any(|m| m["id"] == id));
            }
            Some("message") => messages += 1,
            _ => {}
        }
    }
    // Retrying over HTTP with a client_id used over WebSocket answers with the original.
    let (status, original) = app
        .post(
            &format!("/chat/rooms/{room}/messages/"),
            &ann.access,
            json!({"message": "again", "client_id": "k3"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(original["content"], "m3");
    while let Some(frame) = ws.try_next(Duration::from_millis(300)).await {
        assert_ne!(frame["type"], "message", "no second broadcast: {frame}");
    }
}

both_backends!(
    concurrent_senders_give_every_subscriber_the_same_gapless_order,
    reconnecting_replays_exactly_what_was_missed,
    a_long_absence_asks_for_a_resync,
    a_stalled_reader_is_closed_with_4008_while_others_keep_receiving,
    removal_deletion_and_deactivation_end_subscriptions,
    the_original_endpoint_ignores_a_spoofed_sender,
    acks_come_only_after_commit_and_repeat_without_rebroadcast,
);
