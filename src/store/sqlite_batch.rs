//! A send batch on SQLite, written with rusqlite through the handle of the one writer
//! connection that sqlx owns.
//!
//! Why not sqlx's statements: sqlx-sqlite runs each connection on a worker thread and
//! hands every statement and every result row across threads. For a batch of a thousand
//! messages those hand-overs cost more than SQLite's own work (a profile of durable sends
//! put 36% of the server's CPU on that worker thread and 8% in thread switches;
//! docs/BENCHMARKS.md, session 7), and each batch also built and parsed SQL text with
//! thousands of parameters. sqlx lends a connection's handle out for direct calls
//! (`SqliteConnection::lock_handle`), its worker waiting meanwhile, so the batch still runs
//! on the single writer connection, and here five prepared statements run one row at a
//! time on the calling thread.
//!
//! The decisions are [`BatchPlan`]'s, as on PostgreSQL's path, and joining a room (a first
//! post to a public room) runs the same statements as everywhere else ([`super::sql`]).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::batch::{BatchError, BatchPlan, StandingRow, posters, standings_from};
use super::rows::{MESSAGE_COLUMNS, MESSAGE_FROM, MessageRow, public_user};
use super::sql::{ADD_MEMBER, APPEND_EVENT, COUNT_NEW_MEMBER, NEXT_SEQ};
use super::{NewMessage, PostOutcome, StoreError};
use crate::domain::event::{EventKind, RoomEvent};
use crate::domain::model::{Message, Role};

/// Stores `batch` in one IMMEDIATE transaction on `connection`, or none of it. The
/// connection is left outside any transaction, unless a failed batch's rollback failed
/// too, which [`in_transaction`] tells the caller.
pub fn post_batch(
    connection: &mut Connection,
    batch: &[NewMessage],
) -> Result<Vec<PostOutcome>, BatchError> {
    let transaction = |e: rusqlite::Error| BatchError::Transaction(e.into());
    // IMMEDIATE takes the write lock now, waiting (busy_timeout) for another process's
    // writer if there is one, rather than failing when the first write upgrades a read.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(transaction)?;
    // Dropping the transaction without a commit rolls it back.
    let outcomes = write(&tx, batch).map_err(BatchError::Statement)?;
    tx.commit().map_err(transaction)?;
    Ok(outcomes)
}

/// Whether the connection is still inside a transaction, which only a failed rollback
/// leaves behind; such a connection must not be used again.
pub fn in_transaction(connection: &Connection) -> bool {
    !connection.is_autocommit()
}

fn write(tx: &Connection, batch: &[NewMessage]) -> Result<Vec<PostOutcome>, StoreError> {
    let mut standing = tx.prepare(
        "SELECT r.is_private, r.is_direct, rm.role, u.username FROM rooms r \
         JOIN users u ON u.id = ?2 \
         LEFT JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = u.id \
         WHERE r.id = ?1",
    )?;
    let mut standings: Vec<StandingRow> = Vec::new();
    for (room_id, user_id) in posters(batch) {
        let found = standing
            .query_row(params![room_id, user_id], |row| {
                Ok((
                    room_id,
                    user_id,
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })
            .optional()?;
        standings.extend(found);
    }
    let mut plan = BatchPlan::new(batch, standings_from(standings)?);

    let mut by_client_id = tx.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.author_id = ?1 AND m.client_id = ?2"
    ))?;
    let mut existing = Vec::new();
    for (author_id, client_id) in plan.client_ids() {
        let found = by_client_id
            .query_row(params![author_id, client_id], MessageRow::from_rusqlite)
            .optional()?;
        existing.extend(found.map(Message::from));
    }
    let fresh = plan.settle(existing).to_vec();
    if fresh.is_empty() {
        return plan.finish(&[], &[], Vec::new());
    }

    // Posting to a public room joins it first (rare: once per poster and room).
    let mut joined: Vec<Option<RoomEvent>> = vec![None; batch.len()];
    for &i in &fresh {
        if plan.joins(i) {
            joined[i] = join(tx, &batch[i])?;
        }
    }

    // Rooms in id order, as every writer takes them.
    let by_room = plan.by_room();
    let mut take_seqs =
        tx.prepare("UPDATE rooms SET last_seq = last_seq + ?2 WHERE id = ?1 RETURNING last_seq")?;
    let mut lasts = HashMap::with_capacity(by_room.len());
    for (room_id, members) in &by_room {
        let last: Option<i64> = take_seqs
            .query_row(params![room_id, members.len() as i64], |row| row.get(0))
            .optional()?;
        if let Some(last) = last {
            lasts.insert(*room_id, last);
        }
    }
    let seqs = plan.seqs(&by_room, &lasts)?;

    let mut insert_message = tx.prepare(
        "INSERT INTO messages (room_id, seq, author_id, content, client_id, created_at, deleted) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, FALSE)",
    )?;
    let mut ids = vec![0i64; batch.len()];
    for &i in &fresh {
        let new = &batch[i];
        let at = new.now.millis();
        insert_message.execute(params![
            new.room_id,
            seqs[i],
            new.author_id,
            new.content,
            new.client_id,
            at
        ])?;
        ids[i] = tx.last_insert_rowid();
    }

    let mut mark_read = tx.prepare(
        "UPDATE room_members SET last_read_seq = ?3 \
         WHERE room_id = ?1 AND user_id = ?2 AND last_read_seq < ?3",
    )?;
    for ((room_id, user_id), seq) in plan.read_markers(&seqs) {
        mark_read.execute(params![room_id, user_id, seq])?;
    }

    plan.finish(&seqs, &ids, joined)
}

/// Makes the author of `new` a member of its room, as `add_member_in_tx` does on the sqlx
/// path, with the same statements; `None` if they already were one.
fn join(tx: &Connection, new: &NewMessage) -> Result<Option<RoomEvent>, StoreError> {
    let at = new.now.millis();
    let added = tx.prepare_cached(ADD_MEMBER)?.execute(params![
        new.room_id,
        new.author_id,
        Role::Member.as_str(),
        at
    ])?;
    if added == 0 {
        return Ok(None);
    }
    tx.prepare_cached(COUNT_NEW_MEMBER)?
        .execute(params![new.room_id])?;
    let seq: i64 = tx
        .prepare_cached(NEXT_SEQ)?
        .query_row(params![new.room_id], |row| row.get(0))?;
    tx.prepare_cached(APPEND_EVENT)?.execute(params![
        new.room_id,
        seq,
        "member_joined",
        None::<i64>,
        new.author_id,
        at
    ])?;
    let user = tx
        .prepare_cached("SELECT id, username, is_admin, created_at FROM users WHERE id = ?1")?
        .query_row(params![new.author_id], |row| {
            Ok(public_user(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        })?;
    Ok(Some(RoomEvent {
        room_id: new.room_id,
        seq,
        kind: EventKind::MemberJoined { user },
    }))
}
