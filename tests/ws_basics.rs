//! The gateway's protocol: authentication, subscribe/replay, live events, sends, acks,
//! idempotency, malformed frames, typing, presence, read markers and limits.

mod common;
mod wsclient;

use std::time::Duration;

use common::{Backend, spawn_app};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use wsclient::WsClient;

async fn authenticates_by_query_or_first_frame(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    WsClient::connect(&app.base, &ann.access)
        .await
        .close()
        .await;

    let mut by_frame = WsClient::open(&app.base, "/ws/").await;
    by_frame
        .send(json!({"type": "auth", "token": ann.access}))
        .await;
    let ready = by_frame.next_of_type("ready").await;
    assert_eq!(ready["user"]["username"], "ann");

    let mut bad = WsClient::open(&app.base, "/ws/?token=nonsense").await;
    assert_eq!(bad.closed().await, Some(4001));
    let mut wrong_first = WsClient::open(&app.base, "/ws/").await;
    wrong_first.send(json!({"type": "ping"})).await;
    assert_eq!(wrong_first.closed().await, Some(4001));
}

async fn live_events_replay_and_acks(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "general", false).await;
    for i in 1..=3 {
        app.send(&ann, room, &format!("before {i}")).await;
    }
    let mut bob_ws = WsClient::connect(&app.base, &bob.access).await;
    let (replay, subscribed) = bob_ws.subscribe(room, Some(1)).await;
    let seqs: Vec<i64> = replay.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(subscribed["last_seq"], 3);
    assert_eq!(replay[0]["type"], "message");
    assert_eq!(replay[0]["message"]["content"], "before 2");

    let mut ann_ws = WsClient::connect(&app.base, &ann.access).await;
    ann_ws.subscribe(room, None).await;
    ann_ws
        .send(json!({"type": "send", "room_id": room, "message": "live", "client_id": "c-1"}))
        .await;
    let ack = ann_ws.next_of_type("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_eq!(ack["message"]["content"], "live");
    let event = bob_ws.next_of_type("message").await;
    assert_eq!(
        (event["seq"].as_i64(), event["room_id"].as_i64()),
        (Some(4), Some(room))
    );

    // The same client_id again: the original message, no second broadcast.
    ann_ws
        .send(json!({"type": "send", "room_id": room, "message": "live again", "client_id": "c-1"}))
        .await;
    let again = ann_ws.next_of_type("ack").await;
    assert_eq!(again["message"]["id"], ack["message"]["id"]);
    // An HTTP write reaches subscribers too: posting joined bob to the room first.
    app.send(&bob, room, "over http").await;
    let joined = bob_ws.next().await;
    assert_eq!(
        (joined["type"].as_str(), joined["seq"].as_i64()),
        (Some("member_joined"), Some(5)),
        "{joined}"
    );
    assert_eq!(joined["user"]["username"], "bob");
    let next = bob_ws.next().await;
    assert_eq!(
        (next["type"].as_str(), next["seq"].as_i64()),
        (Some("message"), Some(6)),
        "{next}"
    );
    assert_eq!(next["message"]["content"], "over http");
}

async fn malformed_frames_keep_the_connection(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    ws.send_raw(Message::text("{not json")).await;
    assert_eq!(ws.next_of_type("error").await["code"], "invalid_json");
    ws.send(json!({"type": "dance"})).await;
    let unknown = ws.next_of_type("error").await;
    assert_eq!(
        (unknown["code"].as_str(), unknown["ref"].as_str()),
        (Some("unknown_type"), Some("dance"))
    );
    ws.send(json!({"type": "subscribe", "room_id": "x"})).await;
    assert_eq!(ws.next_of_type("error").await["code"], "validation_failed");
    ws.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(ws.next_of_type("error").await["code"], "unsupported_frame");
    ws.send(json!({"type": "ping", "nonce": "n1"})).await;
    assert_eq!(ws.next_of_type("pong").await["nonce"], "n1");
    ws.send(json!({"type": "subscribe", "room_id": 999})).await;
    assert_eq!(ws.next_of_type("error").await["code"], "not_found");

    ws.send_raw(Message::text("x".repeat(64 * 1024 + 1))).await;
    assert_eq!(ws.closed().await, Some(1009));
}

async fn typing_is_not_echoed_and_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ann, "general", false).await;
    let mut ann_ws = WsClient::connect(&app.base, &ann.access).await;
    let mut bob_ws = WsClient::connect(&app.base, &bob.access).await;
    ann_ws.subscribe(room, None).await;
    let (_, subscribed) = bob_ws.subscribe(room, None).await;
    let online: Vec<&str> = subscribed["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        online.contains(&"ann") && online.contains(&"bob"),
        "{subscribed}"
    );
    let presence = ann_ws.next_of_type("presence").await;
    assert_eq!(
        (
            presence["user"]["username"].as_str(),
            presence["online"].as_bool()
        ),
        (Some("bob"), Some(true))
    );

    ann_ws
        .send(json!({"type": "typing", "room_id": room, "typing": true}))
        .await;
    let typing = bob_ws.next_of_type("typing").await;
    assert_eq!(
        (
            typing["user"]["username"].as_str(),
            typing["typing"].as_bool()
        ),
        (Some("ann"), Some(true))
    );
    let started = std::time::Instant::now();
    let stopped = bob_ws.next_of_type("typing").await;
    assert_eq!(stopped["typing"], false);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_secs(8),
        "{waited:?}"
    );
    // Never echoed to the typist.
    while let Some(frame) = ann_ws.try_next(Duration::from_millis(200)).await {
        assert_ne!(frame["type"], "typing", "{frame}");
    }
    bob_ws.close().await;
    let gone = ann_ws.next_of_type("presence").await;
    assert_eq!(gone["online"], false);
}

async fn read_markers_reach_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let other = app.register("bob").await;
    app.send(&other, room, "one").await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    let (status, _) = app
        .post(
            &format!("/chat/rooms/{room}/read/"),
            &ann.access,
            json!({"seq": 2}),
        )
        .await;
    assert_eq!(status, 204);
    let read = ws.next_of_type("read").await;
    assert_eq!(
        (read["room_id"].as_i64(), read["seq"].as_i64()),
        (Some(room), Some(2))
    );
}

async fn flooding_is_rate_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    for i in 0..100 {
        ws.send(json!({"type": "send", "room_id": room, "message": format!("m{i}"), "client_id": format!("c{i}")})).await;
    }
    let mut acks = 0;
    let mut limited = 0;
    while acks + limited < 100 {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited", "{frame}");
                assert!(frame["ref"].as_str().unwrap().starts_with('c'));
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(limited > 0 && acks >= 20, "acks {acks}, limited {limited}");
}

async fn persistent_flooding_is_disconnected_with_4029(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let mut ws = WsClient::connect(&app.base, &ann.access).await;
    ws.subscribe(room, None).await;
    let flood = async {
        for i in 0..3000 {
            let frame = json!({"type": "send", "room_id": room, "message": format!("m{i}"), "client_id": format!("f{i}")});
            if ws.stream_send(frame).await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("the flood is not stuck");
    assert_eq!(ws.closed().await, Some(4029));
}

both_backends!(
    persistent_flooding_is_disconnected_with_4029,
    authenticates_by_query_or_first_frame,
    live_events_replay_and_acks,
    malformed_frames_keep_the_connection,
    typing_is_not_echoed_and_expires,
    read_markers_reach_other_sessions,
    flooding_is_rate_limited,
);
