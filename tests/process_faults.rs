//! Process-level faults against the real `banter` binary: `kill -9` during a burst of
//! sends (every acknowledged message must be there after a restart, replaying in
//! order), and SIGTERM (sockets close with 1001 after in-flight sends commit).

mod common;
mod procs;
mod wsclient;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::{Backend, database_url_for};
use futures_util::future::join_all;
use procs::{create_room, free_port, get_json, history, register, start_server};
use serde_json::json;
use wsclient::WsClient;

async fn kill_9_during_a_burst_loses_no_acknowledged_message(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = database_url_for(backend, &dir).await;
    let port = free_port();
    let server = start_server(dir.path(), &database_url, port, &[]).await;
    let (owner, _) = register(&server.base, "owner").await;
    let room_id = create_room(&server.base, &owner, "burst").await;

    // Four senders fire continuously; the server is killed once 200 acks are in.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut senders = Vec::new();
    for i in 0..4 {
        let mut ws = WsClient::connect(&server.base, &owner).await;
        let acks = acks_tx.clone();
        senders.push(tokio::spawn(async move {
            // Up to 16 sends in flight, like a client flushing its queue: each ack lets
            // the next one go.
            let frame = |n: usize| {
                json!({"type": "send", "room_id": room_id, "message": format!("s{i} m{n}"), "client_id": format!("s{i}-{n}")})
            };
            let mut sent = 0;
            while sent < 16 {
                if ws.stream_send(frame(sent)).await.is_err() {
                    return;
                }
                sent += 1;
            }
            while let Some(reply) = ws.try_next(Duration::from_secs(5)).await {
                if reply["type"] != "ack" {
                    continue;
                }
                let _ = acks.send(reply["client_id"].as_str().unwrap_or_default().to_owned());
                if sent < 5000 {
                    if ws.stream_send(frame(sent)).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
            }
        }));
    }
    drop(acks_tx);
    let mut acknowledged = HashSet::new();
    while acknowledged.len() < 200 {
        acknowledged.insert(acks_rx.recv().await.expect("acks arrive"));
    }
    drop(server);
    join_all(senders).await;
    while let Ok(client_id) = acks_rx.try_recv() {
        acknowledged.insert(client_id);
    }

    let server = start_server(dir.path(), &database_url, port, &[]).await;
    let (token, _) = register(&server.base, "auditor").await;
    let room = get_json(&server.base, &format!("/chat/rooms/{room_id}/"), &token).await;
    let last_seq = room["last_seq"].as_i64().expect("last_seq");
    let stored = history(&server.base, room_id, &token).await;
    let stored_ids: HashSet<String> = stored
        .iter()
        .filter_map(|m| m["client_id"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored_ids.contains(*id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let seqs: Vec<i64> = stored
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=last_seq).collect::<Vec<_>>(),
        "history is gapless after the crash"
    );
    // Each sender's stored messages are in the order it sent them.
    for i in 0..4 {
        let order: Vec<i64> = stored
            .iter()
            .filter_map(|m| m["client_id"].as_str())
            .filter(|c| c.starts_with(&format!("s{i}-")))
            .map(|c| {
                c[c.find('-').map_or(0, |p| p + 1)..]
                    .parse::<i64>()
                    .expect("n")
            })
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "sender {i} order {order:?}"
        );
    }
    // A replay after the restart gives the same events in order.
    let mut ws = WsClient::connect(&server.base, &token).await;
    let (replay, _) = ws
        .subscribe(room_id, Some(last_seq.saturating_sub(500).max(0)))
        .await;
    let replayed: Vec<i64> = replay
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        replayed,
        (last_seq.saturating_sub(500).max(0) + 1..=last_seq).collect::<Vec<_>>()
    );
}

async fn sigterm_closes_sockets_with_1001(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = database_url_for(backend, &dir).await;
    let mut server = start_server(dir.path(), &database_url, free_port(), &[]).await;
    let (token, _) = register(&server.base, "ann").await;
    let mut ws = WsClient::connect(&server.base, &token).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    assert_eq!(ws.closed().await, Some(1001));
    let exit = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .expect("join")
        .expect("exit");
    assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");
}

both_backends!(
    kill_9_during_a_burst_loses_no_acknowledged_message,
    sigterm_closes_sockets_with_1001
);
