//! `raw-broadcast`: a minimal WebSocket broadcast server, the practical ceiling of this
//! machine for the load generator's scenarios.
//!
//! It speaks just enough of Banter's `/ws/` protocol for `loadgen --raw`: `ready` at
//! once (any `?token=` is ignored), `subscribe` → `subscribed`, `send` → a `message`
//! frame to every subscriber of the room plus an `ack` to the sender, `ping` → `pong`.
//! There is no authentication and no storage; each room has its own `seq`.
//!
//! Its shape is what a chat server's hot path can at best be: one task per connection
//! that both reads and writes, each event serialised once and shared as bytes by every
//! recipient, and each connection's waiting frames drained into one write with a single
//! flush. A reader that falls 1,024 frames behind is closed with 4008, like Banter does.
//!
//! Usage: `raw-broadcast [BIND]` (default `127.0.0.1:9000`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames a connection may have waiting before it counts as too slow (Banter's bound).
const MAX_QUEUED_FRAMES: usize = 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection's outbound queue: room broadcasts and the connection's own replies.
#[derive(Default)]
struct Outbox {
    queue: Mutex<Queue>,
    notify: Notify,
}

#[derive(Default)]
struct Queue {
    frames: Vec<Utf8Bytes>,
    too_slow: bool,
}

impl Outbox {
    fn push(&self, frame: Utf8Bytes) {
        {
            let mut queue = lock(&self.queue);
            if queue.too_slow {
                return;
            }
            if queue.frames.len() >= MAX_QUEUED_FRAMES {
                // Drop what waits: the connection is closed, so its memory goes now.
                queue.too_slow = true;
                queue.frames = Vec::new();
            } else {
                queue.frames.push(frame);
            }
        }
        self.notify.notify_one();
    }

    /// Everything waiting, and whether the connection must close as too slow.
    fn take(&self) -> (Vec<Utf8Bytes>, bool) {
        let mut queue = lock(&self.queue);
        (std::mem::take(&mut queue.frames), queue.too_slow)
    }
}

#[derive(Default)]
struct Room {
    seq: i64,
    subscribers: Vec<(u64, Arc<Outbox>)>,
}

/// Rooms by id. Each room has its own lock so that a broadcast holds only its room, and
/// pushing under that lock keeps every subscriber's frames in seq order.
#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<i64, Arc<Mutex<Room>>>>,
}

impl Rooms {
    fn room(&self, room_id: i64) -> Arc<Mutex<Room>> {
        lock(&self.rooms).entry(room_id).or_default().clone()
    }
}

/// The client frames this server understands; anything else is ignored.
#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    room_id: Option<i64>,
    message: Option<String>,
    client_id: Option<String>,
    nonce: Option<serde_json::Value>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    eprintln!("raw-broadcast listening on ws://{bind}/ws");
    let rooms = Arc::new(Rooms::default());
    let next_id = AtomicU64::new(1);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the open connections.
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let rooms = rooms.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, id, &rooms).await {
                // Resets are normal when a load generator exits; nothing to report.
                let _ = e;
            }
        });
    }
}

async fn serve(stream: TcpStream, id: u64, rooms: &Rooms) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    // Small buffers, as in Banter's gateway, so idle connections stay cheap.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(Some(64 * 1024));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let outbox = Arc::new(Outbox::default());
    let mut subscribed: Vec<i64> = Vec::new();
    outbox.push(frame(json!({
        "type": "ready",
        "user": {"id": 0, "username": "raw"},
        "session_id": format!("{id:x}"),
    })));
    let result = async {
        loop {
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        on_frame(&text, id, rooms, &outbox, &mut subscribed);
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    // tungstenite answers pings itself; binary frames are ignored.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(anyhow::Error::from(e)),
                },
                () = outbox.notify.notified() => {
                    let (frames, too_slow) = outbox.take();
                    if too_slow {
                        let close = CloseFrame {
                            code: CloseCode::from(4008),
                            reason: "too slow".into(),
                        };
                        let _ = ws.send(Message::Close(Some(close))).await;
                        return Ok(());
                    }
                    // One write for everything waiting: feed buffers, flush once.
                    for frame in frames {
                        ws.feed(Message::Text(frame)).await?;
                    }
                    ws.flush().await?;
                }
            }
        }
    }
    .await;
    for room_id in subscribed {
        let room = rooms.room(room_id);
        lock(&room).subscribers.retain(|(conn, _)| *conn != id);
    }
    result
}

fn frame(value: serde_json::Value) -> Utf8Bytes {
    Utf8Bytes::from(value.to_string())
}

fn on_frame(text: &str, id: u64, rooms: &Rooms, outbox: &Arc<Outbox>, subscribed: &mut Vec<i64>) {
    let Ok(frame_in) = serde_json::from_str::<ClientFrame>(text) else {
        return;
    };
    match (frame_in.kind.as_str(), frame_in.room_id) {
        ("subscribe", Some(room_id)) => {
            let room = rooms.room(room_id);
            let mut room = lock(&room);
            if !subscribed.contains(&room_id) {
                subscribed.push(room_id);
                room.subscribers.push((id, outbox.clone()));
            }
            // Pushed under the room's lock: every later event comes after `subscribed`.
            outbox.push(frame(json!({
                "type": "subscribed", "room_id": room_id, "last_seq": room.seq, "online": [],
            })));
        }
        ("unsubscribe", Some(room_id)) => {
            let room = rooms.room(room_id);
            lock(&room).subscribers.retain(|(conn, _)| *conn != id);
            subscribed.retain(|r| *r != room_id);
        }
        ("send", Some(room_id)) => {
            let room = rooms.room(room_id);
            let mut room = lock(&room);
            room.seq += 1;
            let seq = room.seq;
            let message = json!({
                "id": seq, "room_id": room_id, "seq": seq,
                "author": {"id": 0, "username": "raw"},
                "content": frame_in.message.unwrap_or_default(),
                "created_at": "2026-11-25T10:00:00.000Z", "edited_at": null, "deleted": false,
                "client_id": frame_in.client_id,
            });
            // Serialised once; every subscriber gets a clone of the same bytes.
            let event = frame(
                json!({"type": "message", "room_id": room_id, "seq": seq, "message": &message}),
            );
            for (_, subscriber) in &room.subscribers {
                subscriber.push(event.clone());
            }
            outbox.push(frame(json!({
                "type": "ack", "client_id": frame_in.client_id, "message": message,
            })));
        }
        ("ping", _) => outbox.push(frame(json!({"type": "pong", "nonce": frame_in.nonce}))),
        _ => {}
    }
}
