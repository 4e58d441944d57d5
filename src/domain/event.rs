//! Room events. Every change to a room that its subscribers must see is one event with
//! the room's next `seq`, assigned in the transaction that stores the change; the gateway
//! sends events in seq order and replays them from the store by seq.

use serde::{Deserialize, Serialize};

use super::model::{Message, RoomInfo, User};

/// One event of one room. Serialises as the contract's WebSocket frame:
/// `{"type": "message", "room_id": 1, "seq": 7, "message": {…}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoomEvent {
    pub room_id: i64,
    pub seq: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Message {
        message: Message,
    },
    MessageEdited {
        message: Message,
    },
    MessageDeleted {
        message: Message,
    },
    MemberJoined {
        user: User,
    },
    MemberLeft {
        user: User,
    },
    /// The room's shared fields; each subscriber's own `joined`/`role` are not part of it.
    RoomUpdated {
        room: RoomInfo,
    },
    /// The room is gone; its seq is one past the last stored event and is not stored.
    RoomDeleted {},
}

impl EventKind {
    /// The name stored in `room_events.kind` (the same as the frame's `type`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Message { .. } => "message",
            EventKind::MessageEdited { .. } => "message_edited",
            EventKind::MessageDeleted { .. } => "message_deleted",
            EventKind::MemberJoined { .. } => "member_joined",
            EventKind::MemberLeft { .. } => "member_left",
            EventKind::RoomUpdated { .. } => "room_updated",
            EventKind::RoomDeleted {} => "room_deleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::Timestamp;

    #[test]
    fn serialises_as_a_frame_with_room_id_and_seq_at_top_level() {
        let event = RoomEvent {
            room_id: 3,
            seq: 9,
            kind: EventKind::MemberJoined {
                user: User {
                    id: 5,
                    username: "ann".into(),
                    email: None,
                    is_admin: false,
                    is_active: None,
                    created_at: Timestamp(0),
                },
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        let back: RoomEvent = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, event, "events cross the cluster bus as this JSON");
        assert_eq!(json["type"], "member_joined");
        assert_eq!(json["room_id"], 3);
        assert_eq!(json["seq"], 9);
        assert_eq!(json["user"]["username"], "ann");
        assert!(json["user"].get("email").is_none());
    }
}
