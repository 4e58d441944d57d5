//! The WebSocket protocol's frames: parsing what clients send (with the contract's
//! `error` codes for anything malformed) and building what the server sends. Server
//! frames are serialised once into shared bytes.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::domain::model::{Message, User};
use crate::domain::validate::{ClientId, MessageBody};

/// Every `type` a client may send, the original API's included. [`parse`] refuses any
/// other type before looking at the frame, so a new frame type starts here; the
/// authorization matrix test (`tests/authz_matrix.rs`) fails until it has rows for it.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "auth",
    "subscribe",
    "unsubscribe",
    "send",
    "chat_message",
    "typing",
    "stop_typing",
    "ping",
];

/// A frame from the client, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Subscribe {
        room_id: i64,
        after_seq: Option<i64>,
    },
    Unsubscribe {
        room_id: i64,
    },
    /// `room_id` is absent only in the original API's `chat_message` (its room is the
    /// connection's).
    Send {
        room_id: Option<i64>,
        message: MessageBody,
        client_id: Option<ClientId>,
    },
    /// `room_id` is absent only in the original API's `typing`/`stop_typing`.
    Typing {
        room_id: Option<i64>,
        typing: bool,
    },
    Ping {
        nonce: Option<Value>,
    },
}

/// Why a frame was refused; becomes an `error` frame, and the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub reference: Option<String>,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>, reference: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reference,
        }
    }
}

/// Reads fields of one frame, collecting problems into one `validation_failed` error.
struct Reader<'a> {
    object: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    fn field(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    fn id(&mut self, name: &str, required: bool) -> Option<i64> {
        match self.field(name) {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v >= 0) => n.as_i64(),
            Some(_) => {
                self.problems
                    .push(format!("{name} must be a non-negative integer"));
                None
            }
            None => {
                if required {
                    self.problems.push(format!("{name} is required"));
                }
                None
            }
        }
    }

    fn string(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.field(name) {
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.problems.push(format!("{name} must be a string"));
                None
            }
            None => {
                if required {
                    self.problems.push(format!("{name} is required"));
                }
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        required: bool,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.string(name, required)?;
        parse(raw)
            .map_err(|problem| self.problems.push(format!("{name} {problem}")))
            .ok()
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.field(name) {
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problems.push(format!("{name} must be true or false"));
                None
            }
            None => None,
        }
    }

    fn finish<T>(
        self,
        frame_type: &str,
        reference: Option<String>,
        value: Option<T>,
    ) -> Result<T, FrameError> {
        match value {
            Some(value) if self.problems.is_empty() => Ok(value),
            _ => Err(FrameError::new(
                "validation_failed",
                self.problems.join("; "),
                reference.or_else(|| Some(frame_type.to_owned())),
            )),
        }
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        FrameError::new(
            "invalid_json",
            format!("the frame is not valid JSON: {e}"),
            None,
        )
    })?;
    let Value::Object(object) = value else {
        return Err(FrameError::new(
            "invalid_json",
            "a frame must be a JSON object",
            None,
        ));
    };
    let Some(Value::String(frame_type)) = object.get("type") else {
        return Err(FrameError::new(
            "validation_failed",
            "type is required and must be a string",
            None,
        ));
    };
    let mut r = Reader {
        object: &object,
        problems: Vec::new(),
    };
    let frame_type = frame_type.as_str();
    if !CLIENT_FRAME_TYPES.contains(&frame_type) {
        return Err(unknown_type(frame_type));
    }
    match frame_type {
        "auth" => {
            let token = r.string("token", true).map(|token| ClientFrame::Auth {
                token: token.to_owned(),
            });
            r.finish(frame_type, None, token)
        }
        "subscribe" => {
            let room_id = r.id("room_id", true);
            let after_seq = r.id("after_seq", false);
            r.finish(
                frame_type,
                None,
                room_id.map(|room_id| ClientFrame::Subscribe { room_id, after_seq }),
            )
        }
        "unsubscribe" => {
            let room_id = r.id("room_id", true);
            r.finish(
                frame_type,
                None,
                room_id.map(|room_id| ClientFrame::Unsubscribe { room_id }),
            )
        }
        "send" | "chat_message" => {
            let legacy = frame_type == "chat_message";
            let room_id = r.id("room_id", !legacy);
            let reference = r
                .object
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let message = r.parsed("message", true, MessageBody::parse);
            let client_id = r.parsed("client_id", false, ClientId::parse);
            let frame = message.map(|message| ClientFrame::Send {
                room_id,
                message,
                client_id,
            });
            r.finish(frame_type, reference, frame)
        }
        "typing" => {
            let room_id = r.id("room_id", false);
            let typing = r.boolean("typing").unwrap_or(true);
            r.finish(
                frame_type,
                None,
                Some(ClientFrame::Typing { room_id, typing }),
            )
        }
        "stop_typing" => {
            let room_id = r.id("room_id", false);
            r.finish(
                frame_type,
                None,
                Some(ClientFrame::Typing {
                    room_id,
                    typing: false,
                }),
            )
        }
        "ping" => Ok(ClientFrame::Ping {
            nonce: object.get("nonce").cloned(),
        }),
        other => Err(unknown_type(other)),
    }
}

fn unknown_type(frame_type: &str) -> FrameError {
    FrameError::new(
        "unknown_type",
        format!("unknown frame type '{frame_type}'"),
        Some(frame_type.to_owned()),
    )
}

/// A user as typing, presence and `online` lists show them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
}

fn frame(value: Value) -> Utf8Bytes {
    Utf8Bytes::from(value.to_string())
}

pub fn ready(user: &User, session_id: &str) -> Utf8Bytes {
    frame(json!({"type": "ready", "user": user, "session_id": session_id}))
}

pub fn subscribed(room_id: i64, last_seq: i64, online: &[UserRef]) -> Utf8Bytes {
    frame(json!({"type": "subscribed", "room_id": room_id, "last_seq": last_seq, "online": online}))
}

/// The one frame every send is answered with, so it is written straight from the
/// message rather than through a `Value` tree of copies of its fields.
#[derive(Serialize)]
struct Ack<'a> {
    r#type: &'static str,
    client_id: Option<&'a str>,
    message: &'a Message,
}

pub fn ack(client_id: Option<&str>, message: &Message) -> Utf8Bytes {
    let ack = Ack {
        r#type: "ack",
        client_id,
        message,
    };
    let text = serde_json::to_string(&ack).expect("an ack is string keys and plain fields");
    Utf8Bytes::from(text)
}

pub fn typing(room_id: i64, user: &UserRef, typing: bool) -> Utf8Bytes {
    frame(json!({"type": "typing", "room_id": room_id, "user": user, "typing": typing}))
}

pub fn presence(room_id: i64, user: &UserRef, online: bool) -> Utf8Bytes {
    frame(json!({"type": "presence", "room_id": room_id, "user": user, "online": online}))
}

pub fn read(room_id: i64, seq: i64) -> Utf8Bytes {
    frame(json!({"type": "read", "room_id": room_id, "seq": seq}))
}

pub fn resync_required(room_id: i64) -> Utf8Bytes {
    frame(json!({"type": "resync_required", "room_id": room_id}))
}

pub fn error(error: &FrameError) -> Utf8Bytes {
    let mut value = json!({"type": "error", "code": error.code, "message": error.message});
    if let Some(reference) = &error.reference {
        value["ref"] = Value::String(reference.clone());
    }
    frame(value)
}

pub fn pong(nonce: Option<&Value>) -> Utf8Bytes {
    let mut value = json!({"type": "pong"});
    if let Some(nonce) = nonce {
        value["nonce"] = nonce.clone();
    }
    frame(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_carries_the_client_id_and_the_stored_message() {
        let message = Message {
            id: 3,
            room_id: 1,
            seq: 9,
            author: crate::domain::model::Author {
                id: 2,
                username: "ann".into(),
            },
            content: "say \"hi\"".into(),
            created_at: crate::domain::time::Timestamp(0),
            edited_at: None,
            deleted: false,
            client_id: Some("c-1".into()),
        };
        let answered: Value = serde_json::from_str(&ack(Some("c-1"), &message)).unwrap();
        assert_eq!(
            answered,
            json!({"type": "ack", "client_id": "c-1", "message": message})
        );
        let anonymous: Value = serde_json::from_str(&ack(None, &message)).unwrap();
        assert_eq!(anonymous["client_id"], Value::Null);
    }

    #[test]
    fn parses_each_client_frame() {
        assert_eq!(
            parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientFrame::Auth { token: "t".into() })
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","room_id":3,"after_seq":9}"#),
            Ok(ClientFrame::Subscribe {
                room_id: 3,
                after_seq: Some(9)
            })
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","room_id":3}"#),
            Ok(ClientFrame::Unsubscribe { room_id: 3 })
        );
        assert!(matches!(
            parse(r#"{"type":"send","room_id":3,"message":" hi ","client_id":"c"}"#),
            Ok(ClientFrame::Send { room_id: Some(3), ref message, client_id: Some(_) }) if message.as_str() == "hi"
        ));
        assert_eq!(
            parse(r#"{"type":"typing","room_id":3,"typing":false}"#),
            Ok(ClientFrame::Typing {
                room_id: Some(3),
                typing: false
            })
        );
        assert_eq!(
            parse(r#"{"type":"ping","nonce":7}"#),
            Ok(ClientFrame::Ping {
                nonce: Some(json!(7))
            })
        );
    }

    #[test]
    fn parses_the_original_frames() {
        assert!(matches!(
            parse(r#"{"type":"chat_message","message":"hi","sender":"mallory"}"#),
            Ok(ClientFrame::Send { room_id: None, .. })
        ));
        assert_eq!(
            parse(r#"{"type":"typing"}"#),
            Ok(ClientFrame::Typing {
                room_id: None,
                typing: true
            })
        );
        assert_eq!(
            parse(r#"{"type":"stop_typing"}"#),
            Ok(ClientFrame::Typing {
                room_id: None,
                typing: false
            })
        );
    }

    #[test]
    fn every_listed_frame_type_is_parsed() {
        for frame_type in CLIENT_FRAME_TYPES {
            let refused = parse(&json!({"type": frame_type}).to_string())
                .err()
                .map(|e| e.code);
            assert_ne!(refused, Some("unknown_type"), "{frame_type}");
        }
    }

    #[test]
    fn malformed_frames_get_the_contract_codes() {
        assert_eq!(parse("not json").unwrap_err().code, "invalid_json");
        assert_eq!(parse("[1,2]").unwrap_err().code, "invalid_json");
        assert_eq!(
            parse(r#"{"no":"type"}"#).unwrap_err().code,
            "validation_failed"
        );
        let unknown = parse(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(
            (unknown.code, unknown.reference.as_deref()),
            ("unknown_type", Some("dance"))
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","room_id":"x"}"#)
                .unwrap_err()
                .code,
            "validation_failed"
        );
        assert_eq!(
            parse(r#"{"type":"send","room_id":1}"#).unwrap_err().code,
            "validation_failed"
        );
        let empty =
            parse(r#"{"type":"send","room_id":1,"message":"  ","client_id":"c1"}"#).unwrap_err();
        assert_eq!(
            (empty.code, empty.reference.as_deref()),
            ("validation_failed", Some("c1"))
        );
        let long = format!(
            r#"{{"type":"send","room_id":1,"message":"{}"}}"#,
            "x".repeat(4001)
        );
        assert_eq!(parse(&long).unwrap_err().code, "validation_failed");
    }

    #[test]
    fn pong_echoes_a_float_nonce_exactly() {
        // Found by the ws_frame fuzz target: without correctly rounded parsing this nonce
        // came back one unit in the last place off.
        let sent = "1.7976666666666667e208";
        let Ok(ClientFrame::Ping { nonce }) =
            parse(&format!(r#"{{"type":"ping","nonce":{sent}}}"#))
        else {
            panic!("a ping");
        };
        let pong = pong(nonce.as_ref()).to_string();
        let echoed = pong
            .split("\"nonce\":")
            .nth(1)
            .and_then(|rest| rest.split([',', '}']).next())
            .expect("a nonce in the pong");
        assert_eq!(
            echoed.parse::<f64>().unwrap(),
            sent.parse::<f64>().unwrap(),
            "{pong}"
        );
    }

    #[test]
    fn server_frames_carry_their_fields() {
        let error: Value = serde_json::from_str(&error(&FrameError::new(
            "rate_limited",
            "slow down",
            Some("c".into()),
        )))
        .unwrap();
        assert_eq!(
            error,
            json!({"type": "error", "code": "rate_limited", "message": "slow down", "ref": "c"})
        );
        let pong: Value = serde_json::from_str(&pong(Some(&json!("n")))).unwrap();
        assert_eq!(pong, json!({"type": "pong", "nonce": "n"}));
    }
}
