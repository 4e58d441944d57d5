//! A WebSocket test client speaking the contract's frames.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Opens `path` (e.g. `/ws/?token=…`) without authenticating.
    pub async fn open(base: &str, path: &str) -> Self {
        let url = format!("{}{}", base.replacen("http://", "ws://", 1), path);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Self { stream }
    }

    /// Connects to `/ws/` with `?token=` and waits for `ready`.
    pub async fn connect(base: &str, token: &str) -> Self {
        let mut client = Self::open(base, &format!("/ws/?token={token}")).await;
        let ready = client.next_of_type("ready").await;
        assert!(ready["session_id"].is_string(), "{ready}");
        client
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    /// Sends a frame, reporting failure instead of panicking (the server may be gone).
    pub async fn stream_send(
        &mut self,
        frame: Value,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.stream.send(Message::text(frame.to_string())).await
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("frame sent");
    }

    /// The next text frame as JSON (control frames skipped); panics after `WAIT`.
    pub async fn next(&mut self) -> Value {
        self.try_next(WAIT).await.expect("a frame arrives in time")
    }

    /// The next text frame within `wait`, or None (also on close).
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips frames until one of `frame_type` arrives.
    pub async fn next_of_type(&mut self, frame_type: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == frame_type {
                return frame;
            }
        }
    }

    /// Subscribes and returns the replayed events and the `subscribed` frame.
    pub async fn subscribe(&mut self, room_id: i64, after_seq: Option<i64>) -> (Vec<Value>, Value) {
        let mut frame = json!({"type": "subscribe", "room_id": room_id});
        if let Some(after) = after_seq {
            frame["after_seq"] = json!(after);
        }
        self.send(frame).await;
        let mut replay = Vec::new();
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("subscribed") if frame["room_id"] == room_id => return (replay, frame),
                Some("error") => panic!("subscribe refused: {frame}"),
                _ if frame["room_id"] == room_id && frame.get("seq").is_some() => {
                    replay.push(frame)
                }
                _ => {}
            }
        }
    }

    /// Waits for the server to close and returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("the server did not close the connection"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Connects as `token` and sends `count` messages to `room_id` without waiting between
/// them (contents `"<label> m<n>"`, client ids `"<label>-<n>"`), then waits for every ack.
pub async fn send_burst(base: &str, token: &str, room_id: i64, label: &str, count: usize) {
    let mut ws = WsClient::connect(base, token).await;
    for n in 0..count {
        ws.send(json!({"type": "send", "room_id": room_id, "message": format!("{label} m{n}"), "client_id": format!("{label}-{n}")}))
            .await;
    }
    let mut acked = 0;
    while acked < count {
        let frame = ws.next().await;
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "ack" {
            acked += 1;
        }
    }
}

pub fn close_code(code: u16) -> CloseCode {
    CloseCode::from(code)
}
