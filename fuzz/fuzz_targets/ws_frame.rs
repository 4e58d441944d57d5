//! Fuzzes the WebSocket client frame parser (`gateway::protocol::parse`) with arbitrary
//! bytes read as lossy UTF-8, as the gateway only ever hands it text frames.
//!
//! Beyond "never panics": a frame that parses came from a JSON object of a known type and
//! its fields obey the contract's limits (ids non-negative, message 1–4000 scalar values
//! after trimming, client_id 1–64 characters without control characters); a refused frame
//! carries the contract's code for what is wrong with it; and the `error`/`pong` frames the
//! server answers with are JSON objects that carry back what they must.

#![no_main]

use banter::domain::validate::{ClientId, MessageBody};
use banter::gateway::protocol::{self, ClientFrame};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const KNOWN_TYPES: [&str; 8] = [
    "auth",
    "subscribe",
    "unsubscribe",
    "send",
    "chat_message",
    "typing",
    "stop_typing",
    "ping",
];

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});

fn check(text: &str) {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let object = json.as_ref().and_then(Value::as_object);
    match protocol::parse(text) {
        Ok(frame) => {
            let object = object.expect("only a JSON object parses as a frame");
            let frame_type = object
                .get("type")
                .and_then(Value::as_str)
                .expect("only a frame with a string type parses");
            check_frame(frame_type, object, &frame);
        }
        Err(error) => {
            match error.code {
                "invalid_json" => assert!(object.is_none(), "a JSON object was {error:?}"),
                "unknown_type" => {
                    let frame_type = object
                        .and_then(|o| o.get("type"))
                        .and_then(Value::as_str)
                        .expect("unknown_type names a string type");
                    assert!(!KNOWN_TYPES.contains(&frame_type), "{frame_type} is known");
                    assert_eq!(error.reference.as_deref(), Some(frame_type));
                }
                "validation_failed" => {
                    assert!(object.is_some(), "validation_failed for a non-object");
                    assert!(!error.message.is_empty(), "validation_failed says nothing");
                }
                other => panic!("a code outside the contract: {other}"),
            }
            let answer: Value =
                serde_json::from_str(&protocol::error(&error)).expect("error frame is JSON");
            assert_eq!(answer["type"], "error");
            assert_eq!(answer["code"], error.code);
            assert_eq!(answer["message"], error.message.as_str());
            assert_eq!(
                answer.get("ref").and_then(Value::as_str),
                error.reference.as_deref()
            );
        }
    }
}

/// The non-null value of a field, as the parser sees it.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn id_field(object: &Map<String, Value>, name: &str) -> Option<i64> {
    field(object, name).map(|v| v.as_i64().expect("an accepted id is an integer"))
}

fn check_frame(frame_type: &str, object: &Map<String, Value>, frame: &ClientFrame) {
    match frame {
        ClientFrame::Auth { token } => {
            assert_eq!(frame_type, "auth");
            assert_eq!(
                field(object, "token").and_then(Value::as_str),
                Some(token.as_str())
            );
        }
        ClientFrame::Subscribe { room_id, after_seq } => {
            assert_eq!(frame_type, "subscribe");
            assert!(*room_id >= 0);
            assert_eq!(id_field(object, "room_id"), Some(*room_id));
            assert!(after_seq.is_none_or(|seq| seq >= 0));
            assert_eq!(id_field(object, "after_seq"), *after_seq);
        }
        ClientFrame::Unsubscribe { room_id } => {
            assert_eq!(frame_type, "unsubscribe");
            assert!(*room_id >= 0);
            assert_eq!(id_field(object, "room_id"), Some(*room_id));
        }
        ClientFrame::Send {
            room_id,
            message,
            client_id,
        } => {
            assert!(matches!(frame_type, "send" | "chat_message"));
            if frame_type == "send" {
                assert!(room_id.is_some(), "send needs a room_id");
            }
            assert!(room_id.is_none_or(|id| id >= 0));
            assert_eq!(id_field(object, "room_id"), *room_id);
            check_message(message);
            let raw = field(object, "message").and_then(Value::as_str);
            assert_eq!(raw.map(str::trim), Some(message.as_str()));
            match client_id {
                Some(client_id) => {
                    check_client_id(client_id);
                    let raw = field(object, "client_id").and_then(Value::as_str);
                    assert_eq!(raw, Some(client_id.as_str()));
                }
                None => assert!(field(object, "client_id").is_none()),
            }
        }
        ClientFrame::Typing { room_id, typing } => {
            assert!(room_id.is_none_or(|id| id >= 0));
            assert_eq!(id_field(object, "room_id"), *room_id);
            match frame_type {
                "stop_typing" => assert!(!typing),
                "typing" => {
                    let raw = field(object, "typing").map(|v| v.as_bool().expect("a bool"));
                    assert_eq!(raw.unwrap_or(true), *typing);
                }
                other => panic!("{other} parsed as typing"),
            }
        }
        ClientFrame::Ping { nonce } => {
            assert_eq!(frame_type, "ping");
            assert_eq!(object.get("nonce"), nonce.as_ref());
            let pong: Value =
                serde_json::from_str(&protocol::pong(nonce.as_ref())).expect("pong is JSON");
            assert_eq!(pong["type"], "pong");
            assert_eq!(pong.get("nonce"), nonce.as_ref());
        }
    }
}

fn check_message(message: &MessageBody) {
    let text = message.as_str();
    let length = text.chars().count();
    assert!(
        (1..=4000).contains(&length),
        "message of {length} characters"
    );
    assert_eq!(text.trim(), text, "message is stored trimmed");
    assert_eq!(MessageBody::parse(text).as_ref(), Ok(message));
}

fn check_client_id(client_id: &ClientId) {
    let text = client_id.as_str();
    assert!((1..=64).contains(&text.chars().count()));
    assert!(!text.chars().any(char::is_control));
    assert_eq!(ClientId::parse(text).as_ref(), Ok(client_id));
}
