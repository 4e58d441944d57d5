//! Users, rooms, members and messages in the shape the contract puts on the wire.
//! The HTTP API and the WebSocket gateway both serialise these, so a message looks the
//! same whichever way it arrives.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::Timestamp;

/// A user as others see them; `email` and `is_active` only for themself and admins.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub is_admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    pub created_at: Timestamp,
}

/// The author of a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Author {
    pub id: i64,
    pub username: String,
}

/// A member's role in a room. Server admins are a separate, server-wide flag.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The part of a room that is the same for every caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RoomInfo {
    pub id: i64,
    pub name: String,
    pub topic: String,
    pub is_private: bool,
    pub is_direct: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub member_count: i64,
    /// The room's newest event sequence number.
    pub last_seq: i64,
}

/// A room as one caller sees it: the shared part plus their membership and read state.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Room {
    #[serde(flatten)]
    pub info: RoomInfo,
    pub joined: bool,
    pub role: Option<Role>,
    /// 0 if the caller never read the room.
    pub last_read_seq: i64,
    /// Messages by others newer than `last_read_seq`, not deleted, capped at 1000.
    pub unread_count: i64,
}

/// The cap on `unread_count`: counting stops there so the count is a bounded index scan.
pub const UNREAD_CAP: i64 = 1000;

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Message {
    pub id: i64,
    pub room_id: i64,
    /// The seq of the event that created the message.
    pub seq: i64,
    pub author: Author,
    /// `""` once deleted.
    pub content: String,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub client_id: Option<String>,
}
