//! Storage: the one trait every use case talks to, and its two backends.
//!
//! [`Store`] has one method per query or transaction, each documented with what it
//! guarantees. Both backends speak the same SQL — numbered `$n` parameters, which SQLite
//! also understands, and nothing dialect-specific — so the method bodies are written once,
//! in [`sql`], and instantiated for each backend. What really differs (connecting, SQLite's
//! pragmas and single writer connection, migrations) lives in [`sqlite`] and [`postgres`].
//! One hot path is SQLite's own: a send batch runs on rusqlite over the writer
//! connection's handle ([`sqlite_batch`]). Whichever way a batch is written, what it
//! stores and answers is decided in [`batch`].
//!
//! Depends on `domain` only. Backend errors become [`StoreError`] here, at the edge.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::domain::event::RoomEvent;
use crate::domain::model::{Member, Message, Role, Room, RoomInfo, User};
use crate::domain::rules::{Access, Denied};
use crate::domain::time::Timestamp;

mod batch;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;
mod sqlite_batch;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the text names the constraint.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database cannot be reached or cannot write right now (down, locked, full,
    /// read-only). Callers answer 503 and try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(
                db.constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned()),
            ),
            sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
                StoreError::Unavailable(db.message().to_owned())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
            _ => StoreError::Other(error.to_string()),
        }
    }
}

/// SQLite's direct path ([`sqlite_batch`]) meets the same errors as sqlx's SQLite driver
/// and sorts them the same way.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let text = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.extended_code {
                    SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
                        StoreError::Conflict(text)
                    }
                    code if is_unavailable_sqlite_code(code) => StoreError::Unavailable(text),
                    _ => StoreError::Other(text),
                }
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// Database error codes that mean "not now" rather than "never": SQLite's BUSY, LOCKED,
/// READONLY, IOERR, FULL and CANTOPEN (primary codes, extended codes included), and
/// PostgreSQL's connection (08…), resource (53…) and shutdown (57P0…) classes.
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if let Ok(sqlite_code) = code.parse::<i32>() {
        return is_unavailable_sqlite_code(sqlite_code);
    }
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
}

fn is_unavailable_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

/// A user row, password hash included; never serialised as is.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: Timestamp,
}

impl UserRecord {
    pub fn flags(&self) -> AccountFlags {
        AccountFlags {
            is_active: self.is_active,
            is_admin: self.is_admin,
        }
    }

    /// As other users see them.
    pub fn public(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            email: None,
            is_admin: self.is_admin,
            is_active: None,
            created_at: self.created_at,
        }
    }

    /// As they see themself.
    pub fn private(&self) -> User {
        User {
            email: Some(self.email.clone()),
            ..self.public()
        }
    }

    /// As server admins see them.
    pub fn for_admin(&self) -> User {
        User {
            is_active: Some(self.is_active),
            ..self.private()
        }
    }
}

pub struct NewUser {
    pub username: String,
    pub username_key: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub now: Timestamp,
}

pub struct NewRefreshToken {
    pub user_id: i64,
    pub family_id: String,
    pub token_hash: String,
    pub expires_at: Timestamp,
    pub now: Timestamp,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was valid; it is now revoked and its successor stored.
    Rotated {
        user_id: i64,
    },
    /// The token had already been used or revoked: its whole family is now revoked.
    Reused,
    Expired,
    Unknown,
}

pub struct NewRoom {
    pub name: String,
    pub name_key: String,
    pub topic: String,
    pub is_private: bool,
    pub owner_id: i64,
    pub now: Timestamp,
}

/// The caller's membership of a room, as far as rules and read state need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub role: Role,
    pub last_read_seq: i64,
}

pub struct NewMessage {
    pub room_id: i64,
    pub author_id: i64,
    pub content: String,
    pub client_id: Option<String>,
    /// Whether the author is a server admin, for the posting rule the store applies
    /// inside the transaction (a non-member of a public room joins it first).
    pub is_server_admin: bool,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// Stored; `events` are the room events it made, in seq order (a `member_joined`
    /// when posting joined the room, then the `message`).
    Created {
        message: Message,
        events: Vec<RoomEvent>,
    },
    /// The author already sent a message with this `client_id`: nothing was stored.
    Existing(Message),
    /// The author may not post there (or the room does not exist): nothing was stored.
    Denied(Denied),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    Deleted(RoomEvent),
    AlreadyDeleted,
    NotFound,
}

/// A page of history with what its access rule needs (see [`Store::history_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRead {
    /// The reader's account, `None` if there is no such user.
    pub reader: Option<AccountFlags>,
    /// The reader's standing in the room, `None` if there is no such room.
    pub access: Option<Access>,
    pub messages: Vec<Message>,
}

/// The flags of an account that every authenticated request checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFlags {
    pub is_active: bool,
    pub is_admin: bool,
}

/// Which page of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Newest,
    /// Messages with seq < S, the newest of them.
    Before(i64),
    /// Messages with seq > S, the oldest of them.
    After(i64),
}

/// How a store wants sends grouped (the service's message writer follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendBatching {
    /// Batches stored at once, each by its own writer (1 for SQLite's single writer).
    pub writers: usize,
    /// Most messages in one batch, and so in one transaction.
    pub max_batch: usize,
}

/// Storage for everything Banter keeps. Every write that changes what a room's
/// subscribers see returns the [`RoomEvent`]s it stored, each with the room's next seq,
/// assigned in the same transaction.
pub trait Store: Send + Sync + 'static {
    /// How message sends are best grouped into transactions on this database.
    fn send_batching(&self) -> SendBatching;

    /// Answers when the database can serve a query.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Writes a consistent copy of the database to `path` while it is in use (SQLite);
    /// PostgreSQL answers with how to use its own tools instead.
    fn backup(&self, path: String) -> StoreFuture<'_, ()>;

    /// Stores a new user. `Conflict` names the taken unique key (username or email).
    fn create_user(&self, new: NewUser) -> StoreFuture<'_, UserRecord>;
    fn user_by_id(&self, user_id: i64) -> StoreFuture<'_, Option<UserRecord>>;
    /// Looks a user up by the lowercased username.
    fn user_by_username(&self, username_key: String) -> StoreFuture<'_, Option<UserRecord>>;
    /// Every user whose username or email contains `search` (case-insensitive), by id.
    fn list_users(&self, search: Option<String>) -> StoreFuture<'_, Vec<UserRecord>>;
    /// Changes the flags given; deactivating also revokes every refresh token of the user.
    fn set_user_flags(
        &self,
        user_id: i64,
        is_active: Option<bool>,
        is_admin: Option<bool>,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<UserRecord>>;

    fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreFuture<'_, ()>;
    /// Spends the refresh token with `token_hash` and stores its successor in the same
    /// family, or revokes the family when the token was already spent.
    fn rotate_refresh_token(
        &self,
        token_hash: String,
        next_hash: String,
        next_expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'_, RotateOutcome>;
    /// Revokes the family of the token with `token_hash` (a logout). False if unknown.
    fn revoke_refresh_family(&self, token_hash: String, now: Timestamp) -> StoreFuture<'_, bool>;

    /// Stores a room with its creator as owner and first member. `Conflict` if the name is
    /// taken.
    fn create_room(&self, new: NewRoom) -> StoreFuture<'_, RoomInfo>;
    fn room(&self, room_id: i64) -> StoreFuture<'_, Option<RoomInfo>>;
    /// A room (not a direct one) by its lowercased name.
    fn room_by_name(&self, name_key: String) -> StoreFuture<'_, Option<RoomInfo>>;
    /// The room and the user's membership of it, if any.
    fn room_with_membership(
        &self,
        room_id: i64,
        user_id: i64,
    ) -> StoreFuture<'_, Option<(RoomInfo, Option<Membership>)>>;
    /// Public rooms and the rooms the user belongs to, with their read state, by id.
    fn rooms_for_user(&self, user_id: i64) -> StoreFuture<'_, Vec<Room>>;
    /// Every room, for server admins.
    fn all_rooms(&self) -> StoreFuture<'_, Vec<RoomInfo>>;
    /// Messages by others after `last_read_seq`, not deleted, counted up to `UNREAD_CAP`.
    fn unread_count(&self, room_id: i64, user_id: i64, last_read_seq: i64) -> StoreFuture<'_, i64>;
    /// Renames and/or re-topics a room; `Conflict` if the new name is taken.
    fn update_room(
        &self,
        room_id: i64,
        name: Option<(String, String)>,
        topic: Option<String>,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<RoomEvent>>;
    /// Deletes a room and everything in it; returns the `room_deleted` event's seq.
    fn delete_room(&self, room_id: i64) -> StoreFuture<'_, Option<i64>>;
    /// The direct room of two users, created (with both as members) if it does not exist.
    /// True when it was created by this call.
    fn find_or_create_direct(
        &self,
        user_a: i64,
        user_b: i64,
        name: String,
        now: Timestamp,
    ) -> StoreFuture<'_, (RoomInfo, bool)>;

    /// Members in join order.
    fn members(&self, room_id: i64) -> StoreFuture<'_, Vec<Member>>;
    fn member(&self, room_id: i64, user_id: i64) -> StoreFuture<'_, Option<Member>>;
    /// Adds a member; `None` when they already were one (nothing changes).
    fn add_member(
        &self,
        room_id: i64,
        user_id: i64,
        role: Role,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<RoomEvent>>;
    /// Removes a member; when the owner goes, ownership passes on (see
    /// `domain::rules::next_owner`). `None` when they were not a member.
    fn remove_member(
        &self,
        room_id: i64,
        user_id: i64,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<RoomEvent>>;
    fn set_member_role(
        &self,
        room_id: i64,
        user_id: i64,
        role: Role,
    ) -> StoreFuture<'_, Option<Member>>;
    /// Moves the read marker forward to `seq` (never back). True when it moved.
    fn mark_read(&self, room_id: i64, user_id: i64, seq: i64) -> StoreFuture<'_, bool>;

    /// Stores messages in order, in as few transactions as possible (one, unless one of
    /// them fails), each idempotent per author and `client_id`, each moving its author's
    /// read marker. Whether each author may post is decided inside the transaction, by
    /// the domain's posting rule. The outer error means none was stored.
    fn post_messages(
        &self,
        batch: Vec<NewMessage>,
    ) -> StoreFuture<'_, Vec<StoreResult<PostOutcome>>>;
    /// Stores one message (see [`Store::post_messages`]).
    fn post_message(&self, new: NewMessage) -> StoreFuture<'_, PostOutcome> {
        Box::pin(async move {
            self.post_messages(vec![new])
                .await?
                .pop()
                .unwrap_or_else(|| Err(StoreError::Other("a batch of one gave no result".into())))
        })
    }
    fn message(&self, room_id: i64, message_id: i64) -> StoreFuture<'_, Option<Message>>;
    /// Replaces a live message's content; `None` if there is no such live message.
    fn edit_message(
        &self,
        room_id: i64,
        message_id: i64,
        content: String,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<RoomEvent>>;
    /// Turns a message into a tombstone (its content is erased).
    fn delete_message(
        &self,
        room_id: i64,
        message_id: i64,
        now: Timestamp,
    ) -> StoreFuture<'_, DeleteOutcome>;
    /// One page of a room's history, in ascending seq order, with what deciding whether
    /// `user_id` may read it needs: their account and their standing in the room. One
    /// statement, because a history page is the most frequent request and a round trip
    /// per check cost a third of it (docs/BENCHMARKS.md, session 6). The page is read
    /// whatever the standing: the caller applies the rules before handing it out.
    fn history_page(
        &self,
        user_id: i64,
        room_id: i64,
        page: Page,
        limit: i64,
    ) -> StoreFuture<'_, HistoryRead>;
    /// Up to `limit` events with seq > `after_seq`, in order, rebuilt from the event log
    /// (messages as they are now: a later edit shows in an earlier `message` event too).
    fn events_after(
        &self,
        room_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreFuture<'_, Vec<RoomEvent>>;
}

/// Opens the store that `database_url` names (`sqlite:` or `postgres:`), creating the
/// SQLite file if needed, and brings its schema up to date.
pub async fn connect(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(database_url).await?))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(database_url).await?))
    } else {
        anyhow::bail!(
            "DATABASE_URL must start with sqlite: or postgres:// (got a URL with scheme '{}')",
            database_url.split(':').next().unwrap_or_default()
        )
    }
}
