//! Rows as both backends return them (plain integers, strings and booleans), and their
//! conversion into domain values. The column lists the queries select live here too, so
//! a row type and the SQL that fills it stay side by side.

use crate::domain::event::{EventKind, RoomEvent};
use crate::domain::model::{Author, Member, Message, Role, RoomInfo, User};
use crate::domain::rules::Access;
use crate::domain::time::Timestamp;

use super::{AccountFlags, StoreError, UserRecord};

pub const USER_COLUMNS: &str =
    "id, username, email, password_hash, is_admin, is_active, created_at";

#[derive(sqlx::FromRow)]
pub struct UserRow {
    id: i64,
    username: String,
    email: String,
    password_hash: String,
    is_admin: bool,
    is_active: bool,
    created_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            id: row.id,
            username: row.username,
            email: row.email,
            password_hash: row.password_hash,
            is_admin: row.is_admin,
            is_active: row.is_active,
            created_at: Timestamp(row.created_at),
        }
    }
}

pub const ROOM_COLUMNS: &str = "r.id, r.name, r.topic, r.is_private, r.is_direct, r.created_at, r.updated_at, r.member_count, r.last_seq";

#[derive(sqlx::FromRow)]
pub struct RoomRow {
    id: i64,
    name: String,
    topic: String,
    is_private: bool,
    is_direct: bool,
    created_at: i64,
    updated_at: i64,
    member_count: i64,
    last_seq: i64,
}

impl From<RoomRow> for RoomInfo {
    fn from(row: RoomRow) -> Self {
        RoomInfo {
            id: row.id,
            name: row.name,
            topic: row.topic,
            is_private: row.is_private,
            is_direct: row.is_direct,
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
            member_count: row.member_count,
            last_seq: row.last_seq,
        }
    }
}

/// A room joined with the caller's membership (role NULL when not a member).
#[derive(sqlx::FromRow)]
pub struct RoomMembershipRow {
    #[sqlx(flatten)]
    pub room: RoomRow,
    pub role: Option<String>,
    pub last_read_seq: Option<i64>,
}

pub fn parse_role(role: &str) -> Result<Role, StoreError> {
    Role::parse(role).ok_or_else(|| StoreError::Other(format!("unknown role '{role}' stored")))
}

pub const MEMBER_COLUMNS: &str =
    "u.id, u.username, u.is_admin, u.created_at, rm.role, rm.joined_at";

#[derive(sqlx::FromRow)]
pub struct MemberRow {
    id: i64,
    username: String,
    is_admin: bool,
    created_at: i64,
    role: String,
    joined_at: i64,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;

    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            user: public_user(row.id, row.username, row.is_admin, row.created_at),
            role: parse_role(&row.role)?,
            joined_at: Timestamp(row.joined_at),
        })
    }
}

pub fn public_user(id: i64, username: String, is_admin: bool, created_at: i64) -> User {
    User {
        id,
        username,
        email: None,
        is_admin,
        is_active: None,
        created_at: Timestamp(created_at),
    }
}

/// A history page's reader and their standing in the room, from [`history_reader_from`]
/// (the room's columns are NULL when there is no such room, the role when the reader is
/// not a member).
pub const HISTORY_READER_COLUMNS: &str = "u.is_active AS reader_is_active, u.is_admin AS reader_is_admin, \
     r.is_private AS room_is_private, r.is_direct AS room_is_direct, rm.role AS reader_role";

/// The room (`r`, bound as `room_param`) and the reader's membership of it, joined to
/// the reader `u` (which the query picks with `WHERE u.id = …`).
pub fn history_reader_from(room_param: &str) -> String {
    format!(
        "users u LEFT JOIN rooms r ON r.id = {room_param} \
         LEFT JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = u.id"
    )
}

#[derive(sqlx::FromRow)]
pub struct HistoryReaderRow {
    reader_is_active: bool,
    reader_is_admin: bool,
    room_is_private: Option<bool>,
    room_is_direct: Option<bool>,
    reader_role: Option<String>,
}

impl HistoryReaderRow {
    pub fn reader_and_access(self) -> Result<(AccountFlags, Option<Access>), StoreError> {
        let reader = AccountFlags {
            is_active: self.reader_is_active,
            is_admin: self.reader_is_admin,
        };
        let access = match (self.room_is_private, self.room_is_direct) {
            (Some(is_private), Some(is_direct)) => Some(Access {
                is_private,
                is_direct,
                role: self.reader_role.as_deref().map(parse_role).transpose()?,
                is_server_admin: reader.is_admin,
            }),
            _ => None,
        };
        Ok((reader, access))
    }
}

pub const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.seq, m.author_id, au.username AS author_username, \
     m.content, m.client_id, m.created_at, m.edited_at, m.deleted";

/// `FROM` clause matching [`MESSAGE_COLUMNS`].
pub const MESSAGE_FROM: &str = "messages m JOIN users au ON au.id = m.author_id";

/// One message of a page fetched as a single JSON text (see [`page_as_json`]): the
/// fields of [`MessageRow`], in its order (`deleted` made a JSON boolean).
const PAGE_JSON_ITEMS: &str = "page.id, page.room_id, page.seq, page.author_id, page.author_username, \
     page.content, page.client_id, page.created_at, page.edited_at, \
     json(CASE WHEN page.deleted THEN 'true' ELSE 'false' END)";

/// Wraps `page_query` (selecting [`MESSAGE_COLUMNS`]) so it returns one row: a JSON array
/// of its messages in seq order (SQLite's JSON functions; aggregate ORDER BY needs
/// SQLite 3.44, and sqlx bundles 3.46). SQLite hands each result row from its
/// connection's thread to the waiting task on its own, and those thread wake-ups cost
/// more than reading the rows; one row per page costs one.
pub fn page_as_json(page_query: &str) -> String {
    format!(
        "SELECT COALESCE(json_group_array(json_array({PAGE_JSON_ITEMS}) ORDER BY page.seq), '[]') \
         FROM ({page_query}) AS page"
    )
}

/// The messages of a page fetched with [`page_as_json`], in seq order.
pub fn page_from_json(json: &str) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = serde_json::from_str(json).map_err(|e| {
        StoreError::Other(format!("a page of messages is not the JSON expected: {e}"))
    })?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// A message as a query row, or as one item of a page fetched as JSON (an array of the
/// fields in this order).
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct MessageRow {
    id: i64,
    room_id: i64,
    seq: i64,
    author_id: i64,
    author_username: String,
    content: String,
    client_id: Option<String>,
    created_at: i64,
    edited_at: Option<i64>,
    deleted: bool,
}

impl MessageRow {
    /// Reads a row selected with [`MESSAGE_COLUMNS`] through rusqlite (SQLite's direct
    /// path for send batches).
    pub fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            room_id: row.get(1)?,
            seq: row.get(2)?,
            author_id: row.get(3)?,
            author_username: row.get(4)?,
            content: row.get(5)?,
            client_id: row.get(6)?,
            created_at: row.get(7)?,
            edited_at: row.get(8)?,
            deleted: row.get(9)?,
        })
    }
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Message {
            id: row.id,
            room_id: row.room_id,
            seq: row.seq,
            author: Author {
                id: row.author_id,
                username: row.author_username,
            },
            content: row.content,
            created_at: Timestamp(row.created_at),
            edited_at: row.edited_at.map(Timestamp),
            deleted: row.deleted,
            client_id: row.client_id,
        }
    }
}

/// A room's events after a seq, joined with what their payloads are rebuilt from. A
/// message's event is its row in `messages` (same room and seq); `room_events` logs every
/// other kind (migration 0002). Each side is read up to the limit along its (room, seq)
/// index and the two are merged; a `message` row left in the log by an older node is
/// skipped, so no seq is served twice.
pub const EVENT_QUERY: &str = "SELECT e.seq, e.kind, \
       m.id AS m_id, m.seq AS m_seq, m.author_id AS m_author_id, au.username AS m_author_username, \
       m.content AS m_content, m.client_id AS m_client_id, m.created_at AS m_created_at, \
       m.edited_at AS m_edited_at, m.deleted AS m_deleted, \
       u.id AS u_id, u.username AS u_username, u.is_admin AS u_is_admin, u.created_at AS u_created_at \
     FROM ( \
         SELECT seq, kind, message_id, user_id FROM ( \
             SELECT seq, kind, message_id, user_id FROM room_events \
             WHERE room_id = $1 AND seq > $2 AND kind <> 'message' ORDER BY seq LIMIT $3) AS logged \
         UNION ALL \
         SELECT seq, kind, message_id, user_id FROM ( \
             SELECT seq, 'message' AS kind, id AS message_id, CAST(NULL AS BIGINT) AS user_id FROM messages \
             WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) AS posted \
     ) AS e \
     LEFT JOIN messages m ON m.id = e.message_id \
     LEFT JOIN users au ON au.id = m.author_id \
     LEFT JOIN users u ON u.id = e.user_id \
     ORDER BY e.seq LIMIT $3";

#[derive(sqlx::FromRow)]
pub struct EventRow {
    seq: i64,
    kind: String,
    m_id: Option<i64>,
    m_seq: Option<i64>,
    m_author_id: Option<i64>,
    m_author_username: Option<String>,
    m_content: Option<String>,
    m_client_id: Option<String>,
    m_created_at: Option<i64>,
    m_edited_at: Option<i64>,
    m_deleted: Option<bool>,
    u_id: Option<i64>,
    u_username: Option<String>,
    u_is_admin: Option<bool>,
    u_created_at: Option<i64>,
}

impl EventRow {
    /// Rebuilds the event; `room` supplies `room_updated` payloads (the room as it is now).
    pub fn into_event(self, room_id: i64, room: &RoomInfo) -> Result<RoomEvent, StoreError> {
        let broken = || {
            StoreError::Other(format!(
                "event {room_id}/{} refers to missing rows",
                self.seq
            ))
        };
        let message = || -> Option<Message> {
            Some(Message {
                id: self.m_id?,
                room_id,
                seq: self.m_seq?,
                author: Author {
                    id: self.m_author_id?,
                    username: self.m_author_username.clone()?,
                },
                content: self.m_content.clone()?,
                created_at: Timestamp(self.m_created_at?),
                edited_at: self.m_edited_at.map(Timestamp),
                deleted: self.m_deleted?,
                client_id: self.m_client_id.clone(),
            })
        };
        let user = || -> Option<User> {
            Some(public_user(
                self.u_id?,
                self.u_username.clone()?,
                self.u_is_admin?,
                self.u_created_at?,
            ))
        };
        let kind = match self.kind.as_str() {
            "message" => EventKind::Message {
                message: message().ok_or_else(broken)?,
            },
            "message_edited" => EventKind::MessageEdited {
                message: message().ok_or_else(broken)?,
            },
            "message_deleted" => EventKind::MessageDeleted {
                message: message().ok_or_else(broken)?,
            },
            "member_joined" => EventKind::MemberJoined {
                user: user().ok_or_else(broken)?,
            },
            "member_left" => EventKind::MemberLeft {
                user: user().ok_or_else(broken)?,
            },
            "room_updated" => EventKind::RoomUpdated { room: room.clone() },
            other => {
                return Err(StoreError::Other(format!(
                    "unknown event kind '{other}' stored"
                )));
            }
        };
        Ok(RoomEvent {
            room_id,
            seq: self.seq,
            kind,
        })
    }
}
