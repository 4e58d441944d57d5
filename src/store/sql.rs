//! The SQL both backends share, written once and instantiated per backend by
//! [`sql_store!`]: `sql_store!(SqliteStore, sqlx::Sqlite)` expands to the full
//! [`Store`](super::Store) implementation for that backend, which must provide
//! `fn reader(&self) -> &Pool<DB>`, `fn writer(&self) -> &Pool<DB>` and its own way of
//! storing a send batch, `async fn post_batch(&self, &[NewMessage])` (the hot path, where
//! the backends differ: [`super::sqlite_batch`], and `postgres.rs`).
//!
//! A macro rather than generics: sqlx's generic executor bounds would have to be repeated
//! on every method, while the SQL itself is identical on both databases.

use std::time::Instant;

/// Records how long one store call took, as `banter_db_query_seconds{query}`.
pub struct QueryTimer {
    query: &'static str,
    started: Instant,
}

impl QueryTimer {
    pub fn start(query: &'static str) -> Self {
        Self {
            query,
            started: Instant::now(),
        }
    }
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        metrics::histogram!("banter_db_query_seconds", "query" => self.query)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Where the two dialects part. On locking: every PostgreSQL writer takes a room's row
/// lock before anything else touches the room (see `add_member_in_tx`), since its
/// concurrent writers would otherwise deadlock; SQLite needs no such statement, as its
/// single writer connection runs one transaction at a time. On the shape of a history
/// page: one JSON row on SQLite, rows on PostgreSQL.
pub trait Dialect {
    /// Wraps a history page query to return the page as one row, where that is faster
    /// (see [`page_as_json`](super::rows::page_as_json)).
    fn page_as_one_row(page_query: &str) -> Option<String>;
    /// A statement locking the room bound as `$1`, if the backend needs one.
    const LOCK_ROOM: Option<&'static str>;
}

impl Dialect for sqlx::Sqlite {
    fn page_as_one_row(page_query: &str) -> Option<String> {
        Some(super::rows::page_as_json(page_query))
    }

    const LOCK_ROOM: Option<&'static str> = None;
}

impl Dialect for sqlx::Postgres {
    /// None: PostgreSQL's rows arrive together on the socket, and building JSON costs
    /// the server more than sending them (page p50 1.15 ms as JSON, 0.69 ms as rows).
    fn page_as_one_row(_: &str) -> Option<String> {
        None
    }

    const LOCK_ROOM: Option<&'static str> = Some("SELECT id FROM rooms WHERE id = $1 FOR UPDATE");
}

/// Statements of the rules for joining a room, which SQLite's direct batch path
/// ([`super::sqlite_batch`]) runs too: each parameter first appears in number order, so
/// rusqlite binds them by position.
pub const ADD_MEMBER: &str = "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) \
     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (room_id, user_id) DO NOTHING";
pub const COUNT_NEW_MEMBER: &str = "UPDATE rooms SET member_count = member_count + 1 WHERE id = $1";
/// Takes the room's next seq; the row update also locks the room until commit.
pub const NEXT_SEQ: &str =
    "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq";
pub const APPEND_EVENT: &str = "INSERT INTO room_events (room_id, seq, kind, message_id, user_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        use $crate::domain::event::{EventKind, RoomEvent};
        use $crate::domain::model::{Member, Message, Role, Room, RoomInfo, UNREAD_CAP};
        use $crate::domain::rules::next_owner;
        use $crate::domain::time::Timestamp;
        use $crate::store::rows::{
            history_reader_from, parse_role, EventRow, HistoryReaderRow, MemberRow, MessageRow,
            RoomMembershipRow, RoomRow, UserRow, EVENT_QUERY, HISTORY_READER_COLUMNS, MEMBER_COLUMNS,
            MESSAGE_COLUMNS, MESSAGE_FROM, ROOM_COLUMNS, USER_COLUMNS,
        };
        use sqlx::{FromRow, Row};
        use $crate::store::batch::BatchError;
        use $crate::store::sql::QueryTimer;
        use $crate::store::{
            DeleteOutcome, HistoryRead, Membership, NewMessage, NewRefreshToken, NewRoom, NewUser, Page,
            PostOutcome, RotateOutcome, Store, StoreError, StoreFuture, StoreResult, UserRecord,
        };

        type Tx = sqlx::Transaction<'static, $db>;

        impl $store {
            /// Takes the room's next seq. The row update also locks the room until commit,
            /// which is what keeps seq gapless and ordered under concurrent writers.
            async fn next_seq(tx: &mut Tx, room_id: i64) -> StoreResult<i64> {
                let seq: Option<i64> =
                    sqlx::query_scalar($crate::store::sql::NEXT_SEQ)
                        .bind(room_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                seq.ok_or_else(|| StoreError::Other(format!("room {room_id} vanished mid-transaction")))
            }

            /// Appends an event row with the room's next seq and returns that seq.
            async fn append_event(
                tx: &mut Tx,
                room_id: i64,
                kind: &str,
                message_id: Option<i64>,
                user_id: Option<i64>,
                now: Timestamp,
            ) -> StoreResult<i64> {
                let seq = Self::next_seq(tx, room_id).await?;
                sqlx::query($crate::store::sql::APPEND_EVENT)
                .bind(room_id)
                .bind(seq)
                .bind(kind)
                .bind(message_id)
                .bind(user_id)
                .bind(now.millis())
                .execute(&mut **tx)
                .await?;
                Ok(seq)
            }

            async fn user_in_tx(tx: &mut Tx, user_id: i64) -> StoreResult<UserRecord> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let row: UserRow = sqlx::query_as(&sql).bind(user_id).fetch_one(&mut **tx).await?;
                Ok(row.into())
            }

            async fn message_in_tx(tx: &mut Tx, message_id: i64) -> StoreResult<Message> {
                let sql = format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = $1");
                let row: MessageRow = sqlx::query_as(&sql).bind(message_id).fetch_one(&mut **tx).await?;
                Ok(row.into())
            }

            async fn room_in_tx(tx: &mut Tx, room_id: i64) -> StoreResult<Option<RoomInfo>> {
                let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
                let row: Option<RoomRow> = sqlx::query_as(&sql).bind(room_id).fetch_optional(&mut **tx).await?;
                Ok(row.map(Into::into))
            }

            async fn message_by_client_id(
                &self,
                author_id: i64,
                client_id: &str,
            ) -> StoreResult<Option<Message>> {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.author_id = $1 AND m.client_id = $2"
                );
                let row: Option<MessageRow> = sqlx::query_as(&sql)
                    .bind(author_id)
                    .bind(client_id)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(Into::into))
            }

            /// Stores one message in its own transaction, as a batch of one (the rules are
            /// the batch's). A `client_id` that raced in from another connection answers
            /// with that connection's message.
            async fn post_alone(&self, new: &NewMessage) -> StoreResult<PostOutcome> {
                match self.post_batch(std::slice::from_ref(new)).await {
                    Ok(mut outcomes) => outcomes.pop().ok_or_else(|| StoreError::Other("unanswered send".into())),
                    Err(BatchError::Statement(StoreError::Conflict(what))) if new.client_id.is_some() => {
                        let client_id = new.client_id.as_deref().unwrap_or_default();
                        match self.message_by_client_id(new.author_id, client_id).await? {
                            Some(existing) => Ok(PostOutcome::Existing(existing)),
                            None => Err(StoreError::Conflict(what)),
                        }
                    }
                    Err(BatchError::Statement(e) | BatchError::Transaction(e)) => Err(e),
                }
            }

            /// Adds a member inside a transaction; `None` if they already were one.
            ///
            /// The room's row is locked first. The member row's foreign key takes a share
            /// lock on the room, and upgrading it (the member count below) while another
            /// writer already waits for the room deadlocks on PostgreSQL, so every writer
            /// takes a room's exclusive lock before anything else touches the room.
            async fn add_member_in_tx(
                tx: &mut Tx,
                room_id: i64,
                user_id: i64,
                role: Role,
                now: Timestamp,
            ) -> StoreResult<Option<RoomEvent>> {
                if let Some(sql) = <$db as $crate::store::sql::Dialect>::LOCK_ROOM {
                    sqlx::query(sql).bind(room_id).execute(&mut **tx).await?;
                }
                let inserted = sqlx::query($crate::store::sql::ADD_MEMBER)
                .bind(room_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(now.millis())
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(None);
                }
                sqlx::query($crate::store::sql::COUNT_NEW_MEMBER)
                    .bind(room_id)
                    .execute(&mut **tx)
                    .await?;
                let seq = Self::append_event(tx, room_id, "member_joined", None, Some(user_id), now).await?;
                let user = Self::user_in_tx(tx, user_id).await?.public();
                Ok(Some(RoomEvent { room_id, seq, kind: EventKind::MemberJoined { user } }))
            }
        }

        impl Store for $store {
            fn send_batching(&self) -> $crate::store::SendBatching {
                <$store>::send_batching(self)
            }

            fn backup(&self, path: String) -> StoreFuture<'_, ()> {
                Box::pin(async move { <$store>::backup(self, &path).await })
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(self.reader()).await?;
                    Ok(())
                })
            }

            fn create_user(&self, new: NewUser) -> StoreFuture<'_, UserRecord> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("create_user");
                    let sql = format!(
                        "INSERT INTO users (username, username_key, email, email_key, password_hash, is_admin, is_active, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7) RETURNING {USER_COLUMNS}"
                    );
                    let row: UserRow = sqlx::query_as(&sql)
                        .bind(&new.username)
                        .bind(&new.username_key)
                        .bind(&new.email)
                        .bind(&new.email_key)
                        .bind(&new.password_hash)
                        .bind(new.is_admin)
                        .bind(new.now.millis())
                        .fetch_one(self.writer())
                        .await?;
                    Ok(row.into())
                })
            }

            fn user_by_id(&self, user_id: i64) -> StoreFuture<'_, Option<UserRecord>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("user_by_id");
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                    let row: Option<UserRow> = sqlx::query_as(&sql).bind(user_id).fetch_optional(self.reader()).await?;
                    Ok(row.map(Into::into))
                })
            }

            fn user_by_username(&self, username_key: String) -> StoreFuture<'_, Option<UserRecord>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("user_by_username");
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
                    let row: Option<UserRow> =
                        sqlx::query_as(&sql).bind(username_key).fetch_optional(self.reader()).await?;
                    Ok(row.map(Into::into))
                })
            }

            fn list_users(&self, search: Option<String>) -> StoreFuture<'_, Vec<UserRecord>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("list_users");
                    let pattern = match search {
                        Some(term) => {
                            let escaped = term
                                .to_lowercase()
                                .replace('\\', "\\\\")
                                .replace('%', "\\%")
                                .replace('_', "\\_");
                            format!("%{escaped}%")
                        }
                        None => "%".to_owned(),
                    };
                    let sql = format!(
                        "SELECT {USER_COLUMNS} FROM users \
                         WHERE username_key LIKE $1 ESCAPE '\\' OR email_key LIKE $1 ESCAPE '\\' ORDER BY id"
                    );
                    let rows: Vec<UserRow> = sqlx::query_as(&sql).bind(pattern).fetch_all(self.reader()).await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                })
            }

            fn set_user_flags(
                &self,
                user_id: i64,
                is_active: Option<bool>,
                is_admin: Option<bool>,
                now: Timestamp,
            ) -> StoreFuture<'_, Option<UserRecord>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("set_user_flags");
                    let mut tx = self.writer().begin().await?;
                    let sql = format!(
                        "UPDATE users SET is_active = COALESCE($2, is_active), is_admin = COALESCE($3, is_admin) \
                         WHERE id = $1 RETURNING {USER_COLUMNS}"
                    );
                    let row: Option<UserRow> = sqlx::query_as(&sql)
                        .bind(user_id)
                        .bind(is_active)
                        .bind(is_admin)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if row.is_some() && is_active == Some(false) {
                        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                            .bind(user_id)
                            .bind(now.millis())
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(row.map(Into::into))
                })
            }

            fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("insert_refresh_token");
                    sqlx::query(
                        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(token.user_id)
                    .bind(&token.family_id)
                    .bind(&token.token_hash)
                    .bind(token.expires_at.millis())
                    .bind(token.now.millis())
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn rotate_refresh_token(
                &self,
                token_hash: String,
                next_hash: String,
                next_expires_at: Timestamp,
                now: Timestamp,
            ) -> StoreFuture<'_, RotateOutcome> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("rotate_refresh_token");
                    let mut tx = self.writer().begin().await?;
                    let found: Option<(i64, i64, String, i64, Option<i64>)> = sqlx::query_as(
                        "SELECT id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
                    )
                    .bind(&token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((id, user_id, family_id, expires_at, revoked_at)) = found else {
                        return Ok(RotateOutcome::Unknown);
                    };
                    // A spent token presented again means someone else may hold the chain.
                    let spent = revoked_at.is_some()
                        || sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                            .bind(id)
                            .bind(now.millis())
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                            == 0;
                    if spent {
                        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                            .bind(&family_id)
                            .bind(now.millis())
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        return Ok(RotateOutcome::Reused);
                    }
                    if expires_at <= now.millis() {
                        tx.commit().await?;
                        return Ok(RotateOutcome::Expired);
                    }
                    sqlx::query(
                        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(user_id)
                    .bind(&family_id)
                    .bind(&next_hash)
                    .bind(next_expires_at.millis())
                    .bind(now.millis())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(RotateOutcome::Rotated { user_id })
                })
            }

            fn revoke_refresh_family(&self, token_hash: String, now: Timestamp) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("revoke_refresh_family");
                    let family: Option<String> =
                        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                            .bind(&token_hash)
                            .fetch_optional(self.writer())
                            .await?;
                    let Some(family) = family else { return Ok(false) };
                    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                        .bind(&family)
                        .bind(now.millis())
                        .execute(self.writer())
                        .await?;
                    Ok(true)
                })
            }

            fn create_room(&self, new: NewRoom) -> StoreFuture<'_, RoomInfo> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("create_room");
                    let mut tx = self.writer().begin().await?;
                    let room_id: i64 = sqlx::query_scalar(
                        "INSERT INTO rooms (name, name_key, topic, is_private, is_direct, direct_key, last_seq, member_count, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, FALSE, NULL, 0, 1, $5, $5) RETURNING id",
                    )
                    .bind(&new.name)
                    .bind(&new.name_key)
                    .bind(&new.topic)
                    .bind(new.is_private)
                    .bind(new.now.millis())
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) VALUES ($1, $2, 'owner', $3, 0)",
                    )
                    .bind(room_id)
                    .bind(new.owner_id)
                    .bind(new.now.millis())
                    .execute(&mut *tx)
                    .await?;
                    let room = Self::room_in_tx(&mut tx, room_id).await?;
                    tx.commit().await?;
                    room.ok_or_else(|| StoreError::Other("created room not found".into()))
                })
            }

            fn room(&self, room_id: i64) -> StoreFuture<'_, Option<RoomInfo>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("room");
                    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
                    let row: Option<RoomRow> = sqlx::query_as(&sql).bind(room_id).fetch_optional(self.reader()).await?;
                    Ok(row.map(Into::into))
                })
            }

            fn room_by_name(&self, name_key: String) -> StoreFuture<'_, Option<RoomInfo>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("room_by_name");
                    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.name_key = $1");
                    let row: Option<RoomRow> =
                        sqlx::query_as(&sql).bind(name_key).fetch_optional(self.reader()).await?;
                    Ok(row.map(Into::into))
                })
            }

            fn room_with_membership(
                &self,
                room_id: i64,
                user_id: i64,
            ) -> StoreFuture<'_, Option<(RoomInfo, Option<Membership>)>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("room_with_membership");
                    let sql = format!(
                        "SELECT {ROOM_COLUMNS}, rm.role, rm.last_read_seq FROM rooms r \
                         LEFT JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = $2 WHERE r.id = $1"
                    );
                    let row: Option<RoomMembershipRow> =
                        sqlx::query_as(&sql).bind(room_id).bind(user_id).fetch_optional(self.reader()).await?;
                    let Some(row) = row else { return Ok(None) };
                    let membership = match row.role {
                        Some(role) => Some(Membership {
                            role: parse_role(&role)?,
                            last_read_seq: row.last_read_seq.unwrap_or(0),
                        }),
                        None => None,
                    };
                    Ok(Some((row.room.into(), membership)))
                })
            }

            fn rooms_for_user(&self, user_id: i64) -> StoreFuture<'_, Vec<Room>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("rooms_for_user");
                    let sql = format!(
                        "SELECT {ROOM_COLUMNS}, rm.role, rm.last_read_seq FROM rooms r \
                         LEFT JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = $1 \
                         WHERE r.is_private = FALSE OR rm.user_id IS NOT NULL ORDER BY r.id"
                    );
                    let rows: Vec<RoomMembershipRow> = sqlx::query_as(&sql).bind(user_id).fetch_all(self.reader()).await?;
                    let mut rooms = Vec::with_capacity(rows.len());
                    for row in rows {
                        let info: RoomInfo = row.room.into();
                        let role = row.role.as_deref().map(parse_role).transpose()?;
                        let last_read_seq = row.last_read_seq.unwrap_or(0);
                        let unread_count = if role.is_some() && last_read_seq < info.last_seq {
                            self.unread_count(info.id, user_id, last_read_seq).await?
                        } else {
                            0
                        };
                        rooms.push(Room { info, joined: role.is_some(), role, last_read_seq, unread_count });
                    }
                    Ok(rooms)
                })
            }

            fn all_rooms(&self) -> StoreFuture<'_, Vec<RoomInfo>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("all_rooms");
                    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r ORDER BY r.id");
                    let rows: Vec<RoomRow> = sqlx::query_as(&sql).fetch_all(self.reader()).await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                })
            }

            fn unread_count(&self, room_id: i64, user_id: i64, last_read_seq: i64) -> StoreFuture<'_, i64> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("unread_count");
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM messages \
                         WHERE room_id = $1 AND seq > $2 AND author_id <> $3 AND deleted = FALSE \
                         ORDER BY seq LIMIT $4) AS unread",
                    )
                    .bind(room_id)
                    .bind(last_read_seq)
                    .bind(user_id)
                    .bind(UNREAD_CAP)
                    .fetch_one(self.reader())
                    .await?;
                    Ok(count)
                })
            }

            fn update_room(
                &self,
                room_id: i64,
                name: Option<(String, String)>,
                topic: Option<String>,
                now: Timestamp,
            ) -> StoreFuture<'_, Option<RoomEvent>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("update_room");
                    let (name, name_key) = name.unzip();
                    let mut tx = self.writer().begin().await?;
                    let updated = sqlx::query(
                        "UPDATE rooms SET name = COALESCE($2, name), name_key = COALESCE($3, name_key), \
                         topic = COALESCE($4, topic), updated_at = $5 WHERE id = $1",
                    )
                    .bind(room_id)
                    .bind(name)
                    .bind(name_key)
                    .bind(topic)
                    .bind(now.millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if updated == 0 {
                        return Ok(None);
                    }
                    let seq = Self::append_event(&mut tx, room_id, "room_updated", None, None, now).await?;
                    let room = Self::room_in_tx(&mut tx, room_id).await?;
                    tx.commit().await?;
                    Ok(room.map(|room| RoomEvent { room_id, seq, kind: EventKind::RoomUpdated { room } }))
                })
            }

            fn delete_room(&self, room_id: i64) -> StoreFuture<'_, Option<i64>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("delete_room");
                    // The room's row goes first: its lock holds off any writer still
                    // storing a message there. Messages are deleted here, not by a
                    // foreign key (PostgreSQL's migration 0003 says why).
                    let mut tx = self.writer().begin().await?;
                    let last_seq: Option<i64> = sqlx::query_scalar("DELETE FROM rooms WHERE id = $1 RETURNING last_seq")
                        .bind(room_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if last_seq.is_some() {
                        sqlx::query("DELETE FROM messages WHERE room_id = $1").bind(room_id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(last_seq.map(|seq| seq + 1))
                })
            }

            fn find_or_create_direct(
                &self,
                user_a: i64,
                user_b: i64,
                name: String,
                now: Timestamp,
            ) -> StoreFuture<'_, (RoomInfo, bool)> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("find_or_create_direct");
                    let key = format!("{}:{}", user_a.min(user_b), user_a.max(user_b));
                    let existing_sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.direct_key = $1");
                    let existing: Option<RoomRow> =
                        sqlx::query_as(&existing_sql).bind(&key).fetch_optional(self.reader()).await?;
                    if let Some(room) = existing {
                        return Ok((room.into(), false));
                    }
                    let members: Vec<i64> = if user_a == user_b { vec![user_a] } else { vec![user_a, user_b] };
                    let mut tx = self.writer().begin().await?;
                    let inserted: StoreResult<i64> = sqlx::query_scalar(
                        "INSERT INTO rooms (name, name_key, topic, is_private, is_direct, direct_key, last_seq, member_count, created_at, updated_at) \
                         VALUES ($1, NULL, '', TRUE, TRUE, $2, 0, $3, $4, $4) RETURNING id",
                    )
                    .bind(&name)
                    .bind(&key)
                    .bind(members.len() as i64)
                    .bind(now.millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::from);
                    let room_id = match inserted {
                        Ok(id) => id,
                        // Both people started the conversation at once: use the other's room.
                        Err(StoreError::Conflict(_)) => {
                            tx.rollback().await?;
                            let room: RoomRow =
                                sqlx::query_as(&existing_sql).bind(&key).fetch_one(self.writer()).await?;
                            return Ok((room.into(), false));
                        }
                        Err(other) => return Err(other),
                    };
                    for user_id in members {
                        sqlx::query(
                            "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) VALUES ($1, $2, 'member', $3, 0)",
                        )
                        .bind(room_id)
                        .bind(user_id)
                        .bind(now.millis())
                        .execute(&mut *tx)
                        .await?;
                    }
                    let room = Self::room_in_tx(&mut tx, room_id).await?;
                    tx.commit().await?;
                    let room = room.ok_or_else(|| StoreError::Other("created room not found".into()))?;
                    Ok((room, true))
                })
            }

            fn members(&self, room_id: i64) -> StoreFuture<'_, Vec<Member>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("members");
                    let sql = format!(
                        "SELECT {MEMBER_COLUMNS} FROM room_members rm JOIN users u ON u.id = rm.user_id \
                         WHERE rm.room_id = $1 ORDER BY rm.joined_at, rm.user_id"
                    );
                    let rows: Vec<MemberRow> = sqlx::query_as(&sql).bind(room_id).fetch_all(self.reader()).await?;
                    rows.into_iter().map(Member::try_from).collect()
                })
            }

            fn member(&self, room_id: i64, user_id: i64) -> StoreFuture<'_, Option<Member>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("member");
                    let sql = format!(
                        "SELECT {MEMBER_COLUMNS} FROM room_members rm JOIN users u ON u.id = rm.user_id \
                         WHERE rm.room_id = $1 AND rm.user_id = $2"
                    );
                    let row: Option<MemberRow> =
                        sqlx::query_as(&sql).bind(room_id).bind(user_id).fetch_optional(self.reader()).await?;
                    row.map(Member::try_from).transpose()
                })
            }

            fn add_member(
                &self,
                room_id: i64,
                user_id: i64,
                role: Role,
                now: Timestamp,
            ) -> StoreFuture<'_, Option<RoomEvent>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("add_member");
                    let mut tx = self.writer().begin().await?;
                    let event = Self::add_member_in_tx(&mut tx, room_id, user_id, role, now).await?;
                    tx.commit().await?;
                    Ok(event)
                })
            }

            fn remove_member(&self, room_id: i64, user_id: i64, now: Timestamp) -> StoreFuture<'_, Option<RoomEvent>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("remove_member");
                    let mut tx = self.writer().begin().await?;
                    let removed: Option<String> =
                        sqlx::query_scalar("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2 RETURNING role")
                            .bind(room_id)
                            .bind(user_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(removed_role) = removed else { return Ok(None) };
                    sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = $1")
                        .bind(room_id)
                        .execute(&mut *tx)
                        .await?;
                    if parse_role(&removed_role)? == Role::Owner {
                        let remaining: Vec<(i64, String)> = sqlx::query_as(
                            "SELECT user_id, role FROM room_members WHERE room_id = $1 ORDER BY joined_at, user_id",
                        )
                        .bind(room_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        let remaining = remaining
                            .into_iter()
                            .map(|(id, role)| Ok((id, parse_role(&role)?)))
                            .collect::<StoreResult<Vec<_>>>()?;
                        if let Some(heir) = next_owner(&remaining) {
                            sqlx::query("UPDATE room_members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
                                .bind(room_id)
                                .bind(heir)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    let seq = Self::append_event(&mut tx, room_id, "member_left", None, Some(user_id), now).await?;
                    let user = Self::user_in_tx(&mut tx, user_id).await?.public();
                    tx.commit().await?;
                    Ok(Some(RoomEvent { room_id, seq, kind: EventKind::MemberLeft { user } }))
                })
            }

            fn set_member_role(&self, room_id: i64, user_id: i64, role: Role) -> StoreFuture<'_, Option<Member>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("set_member_role");
                    let updated = sqlx::query("UPDATE room_members SET role = $3 WHERE room_id = $1 AND user_id = $2")
                        .bind(room_id)
                        .bind(user_id)
                        .bind(role.as_str())
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                    if updated == 0 {
                        return Ok(None);
                    }
                    self.member(room_id, user_id).await
                })
            }

            fn mark_read(&self, room_id: i64, user_id: i64, seq: i64) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("mark_read");
                    let moved = sqlx::query(
                        "UPDATE room_members SET last_read_seq = $3 WHERE room_id = $1 AND user_id = $2 AND last_read_seq < $3",
                    )
                    .bind(room_id)
                    .bind(user_id)
                    .bind(seq)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                    Ok(moved > 0)
                })
            }

            fn post_messages(&self, batch: Vec<NewMessage>) -> StoreFuture<'_, Vec<StoreResult<PostOutcome>>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("post_messages");
                    metrics::histogram!("banter_send_batch_size").record(batch.len() as f64);
                    // One transaction (one commit, one fsync) for the whole batch. If any
                    // message fails, none is kept and each is stored on its own, so one bad
                    // message never costs the others theirs.
                    match self.post_batch(&batch).await {
                        Ok(outcomes) => return Ok(outcomes.into_iter().map(Ok).collect()),
                        Err(BatchError::Transaction(e)) => return Err(e),
                        Err(BatchError::Statement(e)) => tracing::debug!(error = %e, size = batch.len(), "a send batch failed; storing its messages one by one"),
                    }
                    let mut results = Vec::with_capacity(batch.len());
                    for new in &batch {
                        results.push(self.post_alone(new).await);
                    }
                    Ok(results)
                })
            }

            fn message(&self, room_id: i64, message_id: i64) -> StoreFuture<'_, Option<Message>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("message");
                    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = $1 AND m.room_id = $2");
                    let row: Option<MessageRow> =
                        sqlx::query_as(&sql).bind(message_id).bind(room_id).fetch_optional(self.reader()).await?;
                    Ok(row.map(Into::into))
                })
            }

            fn edit_message(
                &self,
                room_id: i64,
                message_id: i64,
                content: String,
                now: Timestamp,
            ) -> StoreFuture<'_, Option<RoomEvent>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("edit_message");
                    let mut tx = self.writer().begin().await?;
                    let updated = sqlx::query(
                        "UPDATE messages SET content = $3, edited_at = $4 WHERE id = $1 AND room_id = $2 AND deleted = FALSE",
                    )
                    .bind(message_id)
                    .bind(room_id)
                    .bind(&content)
                    .bind(now.millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if updated == 0 {
                        return Ok(None);
                    }
                    let seq = Self::append_event(&mut tx, room_id, "message_edited", Some(message_id), None, now).await?;
                    let message = Self::message_in_tx(&mut tx, message_id).await?;
                    tx.commit().await?;
                    Ok(Some(RoomEvent { room_id, seq, kind: EventKind::MessageEdited { message } }))
                })
            }

            fn delete_message(&self, room_id: i64, message_id: i64, now: Timestamp) -> StoreFuture<'_, DeleteOutcome> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("delete_message");
                    let mut tx = self.writer().begin().await?;
                    let deleted: Option<bool> =
                        sqlx::query_scalar("SELECT deleted FROM messages WHERE id = $1 AND room_id = $2")
                            .bind(message_id)
                            .bind(room_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    match deleted {
                        None => return Ok(DeleteOutcome::NotFound),
                        Some(true) => return Ok(DeleteOutcome::AlreadyDeleted),
                        Some(false) => {}
                    }
                    sqlx::query("UPDATE messages SET content = '', deleted = TRUE WHERE id = $1")
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                    let seq = Self::append_event(&mut tx, room_id, "message_deleted", Some(message_id), None, now).await?;
                    let message = Self::message_in_tx(&mut tx, message_id).await?;
                    tx.commit().await?;
                    Ok(DeleteOutcome::Deleted(RoomEvent { room_id, seq, kind: EventKind::MessageDeleted { message } }))
                })
            }

            fn history_page(
                &self,
                user_id: i64,
                room_id: i64,
                page: Page,
                limit: i64,
            ) -> StoreFuture<'_, HistoryRead> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("history_page");
                    let (filter, order, bound) = match page {
                        Page::Newest => ("", "DESC", None),
                        Page::Before(seq) => ("AND m.seq < $2", "DESC", Some(seq)),
                        Page::After(seq) => ("AND m.seq > $2", "ASC", Some(seq)),
                    };
                    let reader_param = if bound.is_some() { "$3" } else { "$2" };
                    // The limit is written into the SQL, not bound: with `LIMIT $n`,
                    // PostgreSQL's generic plan assumes a large limit, looks dearer than
                    // a plan for the actual values, and so it plans every execution
                    // anew (38% of its CPU per page, measured). A written limit (an
                    // integer, at most a few distinct ones) lets it keep one plan.
                    let page = format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.room_id = $1 {filter} ORDER BY m.seq {order} LIMIT {limit}"
                    );
                    let reader_from = history_reader_from("$1");
                    if let Some(page_row) = <$db as $crate::store::sql::Dialect>::page_as_one_row(&page) {
                        // One row: the reader's standing and the page as a JSON array.
                        let sql = format!(
                            "SELECT {HISTORY_READER_COLUMNS}, ({page_row}) AS page FROM {reader_from} WHERE u.id = {reader_param}"
                        );
                        let mut query = sqlx::query(&sql).bind(room_id);
                        if let Some(seq) = bound {
                            query = query.bind(seq);
                        }
                        let Some(row) = query.bind(user_id).fetch_optional(self.reader()).await? else {
                            return Ok(HistoryRead { reader: None, access: None, messages: Vec::new() });
                        };
                        let (reader, access) = HistoryReaderRow::from_row(&row)?.reader_and_access()?;
                        let page: String = row.try_get("page")?;
                        return Ok(HistoryRead {
                            reader: Some(reader),
                            access,
                            messages: $crate::store::rows::page_from_json(&page)?,
                        });
                    }
                    // A row per message, each carrying the reader's standing; one row of
                    // NULL message columns when the page is empty.
                    let sql = format!(
                        "SELECT {HISTORY_READER_COLUMNS}, page.* FROM {reader_from} \
                         LEFT JOIN LATERAL ({page}) AS page ON TRUE WHERE u.id = {reader_param} ORDER BY page.seq"
                    );
                    let mut query = sqlx::query(&sql).bind(room_id);
                    if let Some(seq) = bound {
                        query = query.bind(seq);
                    }
                    let rows = query.bind(user_id).fetch_all(self.reader()).await?;
                    let Some(first) = rows.first() else {
                        return Ok(HistoryRead { reader: None, access: None, messages: Vec::new() });
                    };
                    let (reader, access) = HistoryReaderRow::from_row(first)?.reader_and_access()?;
                    let mut messages = Vec::with_capacity(rows.len());
                    for row in &rows {
                        if row.try_get::<Option<i64>, _>("id")?.is_some() {
                            messages.push(MessageRow::from_row(row)?.into());
                        }
                    }
                    Ok(HistoryRead { reader: Some(reader), access, messages })
                })
            }

            fn events_after(&self, room_id: i64, after_seq: i64, limit: i64) -> StoreFuture<'_, Vec<RoomEvent>> {
                Box::pin(async move {
                    let _timer = QueryTimer::start("events_after");
                    let mut tx = self.reader().begin().await?;
                    let Some(room) = Self::room_in_tx(&mut tx, room_id).await? else {
                        return Ok(Vec::new());
                    };
                    let rows: Vec<EventRow> = sqlx::query_as(EVENT_QUERY)
                        .bind(room_id)
                        .bind(after_seq)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    rows.into_iter().map(|row| row.into_event(room_id, &room)).collect()
                })
            }
        }
    };
}

pub(crate) use sql_store;
