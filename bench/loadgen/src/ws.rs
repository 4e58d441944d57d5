//! The WebSocket half: connecting (round-robin over URLs, optionally from a chosen
//! source address), the few frames the load generator sends, and a cheap parse of the
//! frames it receives.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// How long the server may take to answer `ready` or `subscribed`.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a connection goes: the `/ws/` URL with its token, and the resolved address.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// `base` is an `http://host:port` base URL; `token` is omitted for the raw baseline.
    pub async fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(base).with_context(|| format!("bad URL {base}"))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow!("no host in {base}"))?;
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| anyhow!("no port in {base}"))?;
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("cannot resolve {host}"))?;
        let scheme = if parsed.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let mut url = format!("{scheme}://{host}:{port}/ws/");
        if let Some(token) = token {
            url.push_str("?token=");
            url.push_str(token);
        }
        Ok(Self { url, addr })
    }
}

/// Opens a WebSocket and waits for `ready`. `source` picks the local address: each
/// source address has its own ~28k ephemeral ports, which churn and very large idle
/// runs need.
pub async fn connect(endpoint: &Endpoint, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let socket = if endpoint.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("cannot bind to {source}"))?;
    }
    let stream = socket.connect(endpoint.addr).await?;
    stream.set_nodelay(true)?;
    // Small buffers: the defaults (128 KiB to read) would cost GBs at 19k connections.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(endpoint.url.as_str(), stream, Some(config))
            .await?;
    expect(&mut ws, "ready").await?;
    Ok(ws)
}

/// Subscribes to a room; returns the room's `last_seq` at subscription time.
pub async fn subscribe(ws: &mut Ws, room_id: i64) -> anyhow::Result<i64> {
    let frame = serde_json::json!({"type": "subscribe", "room_id": room_id}).to_string();
    ws.send(Message::Text(frame.into())).await?;
    let last_seq = expect(ws, "subscribed").await?;
    Ok(last_seq.unwrap_or(0))
}

/// Reads frames until one of type `kind` (returning its `last_seq`, if any); an `error`
/// frame or a close fails.
async fn expect(ws: &mut Ws, kind: &str) -> anyhow::Result<Option<i64>> {
    let wait = async {
        while let Some(message) = ws.next().await {
            match message? {
                Message::Text(text) => {
                    let frame = Frame::parse(&text)?;
                    if frame.kind == kind {
                        return Ok(frame.last_seq);
                    }
                    if frame.kind == "error" {
                        bail!("waiting for {kind}: {text}");
                    }
                }
                Message::Close(close) => bail!("closed while waiting for {kind}: {close:?}"),
                _ => {}
            }
        }
        bail!("connection ended while waiting for {kind}")
    };
    tokio::time::timeout(REPLY_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("no {kind} within {REPLY_TIMEOUT:?}"))?
}

/// The `send` frame. The client id carries who sent it and when (see [`SendStamp`]).
pub fn send_frame(room_id: i64, content: &str, stamp: &SendStamp) -> Message {
    let frame = format!(
        r#"{{"type":"send","room_id":{room_id},"message":"{content}","client_id":"{}"}}"#,
        stamp.client_id()
    );
    Message::Text(frame.into())
}

/// What the load generator writes into each `client_id`: `lg-<sender>-<n>-<µs>` where
/// µs is the send time on this process's clock, so any receiver can compute the
/// send-to-receipt latency without a lookup (unique per user, as idempotency needs).
pub struct SendStamp {
    pub sender: usize,
    pub n: u64,
    pub sent_us: u64,
}

impl SendStamp {
    fn client_id(&self) -> String {
        format!("lg-{:x}-{:x}-{:x}", self.sender, self.n, self.sent_us)
    }

    /// The send time in a client id written by [`SendStamp`]; `None` for anyone else's.
    pub fn sent_us(client_id: &str) -> Option<u64> {
        let rest = client_id.strip_prefix("lg-")?;
        u64::from_str_radix(rest.rsplit('-').next()?, 16).ok()
    }
}

/// A server frame, parsed only as far as the load generator looks, in one pass (the
/// receiving side parses hundreds of thousands of frames a second): event frames have
/// top-level `room_id`/`seq`; `ack` and `message` frames carry a `message` object.
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub room_id: Option<i64>,
    pub seq: Option<i64>,
    pub last_seq: Option<i64>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub message: MessageFields,
}

impl<'a> Frame<'a> {
    pub fn parse(text: &'a str) -> anyhow::Result<Self> {
        serde_json::from_str(text).with_context(|| format!("unexpected frame {text}"))
    }
}

/// What the load generator reads of a `message` field: the Message object's `seq` and
/// the send time in its `client_id`. An `error` frame's `message` (a sentence) gives
/// neither.
#[derive(Debug, Default)]
pub struct MessageFields {
    pub seq: Option<i64>,
    pub sent_us: Option<u64>,
}

impl<'de> Deserialize<'de> for MessageFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MessageVisitor)
    }
}

struct MessageVisitor;

/// Keys of a Message object, matched without allocating.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum MessageKey {
    Seq,
    ClientId,
    #[serde(other)]
    Other,
}

impl<'de> serde::de::Visitor<'de> for MessageVisitor {
    type Value = MessageFields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Message object or a sentence")
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<MessageFields, E> {
        Ok(MessageFields::default())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<MessageFields, A::Error> {
        let mut fields = MessageFields::default();
        while let Some(key) = map.next_key::<MessageKey>()? {
            match key {
                MessageKey::Seq => fields.seq = map.next_value()?,
                MessageKey::ClientId => {
                    let client_id: Option<Cow<'de, str>> = map.next_value()?;
                    fields.sent_us = client_id.as_deref().and_then(SendStamp::sent_us);
                }
                MessageKey::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_acks_and_errors() {
        let stamp = SendStamp {
            sender: 3,
            n: 9,
            sent_us: 123_456,
        };
        let event = format!(
            r#"{{"room_id":4,"seq":7,"type":"message","message":{{"id":1,"author":{{"id":2}},"seq":7,"client_id":"{}"}}}}"#,
            stamp.client_id()
        );
        let frame = Frame::parse(&event).unwrap();
        assert_eq!(
            (frame.kind.as_ref(), frame.room_id, frame.seq),
            ("message", Some(4), Some(7))
        );
        assert_eq!(
            (frame.message.seq, frame.message.sent_us),
            (Some(7), Some(123_456))
        );
        let error =
            Frame::parse(r#"{"type":"error","code":"rate_limited","message":"slow \"down\""}"#)
                .unwrap();
        assert_eq!(
            (error.code.as_deref(), error.message.seq),
            (Some("rate_limited"), None)
        );
    }
}
