//! PostgreSQL, for larger installations and for clusters of several Banter nodes. Reads
//! and writes have a pool each; per-room ordering comes from the row lock that taking
//! the next seq holds until commit.
//!
//! The read pool is small on purpose: twice this host's cores. Each connection is a
//! PostgreSQL process, and more runnable processes than cores only queue in the kernel's
//! scheduler instead of in the pool, where the wait is fair and cheap. With 16 read
//! connections on 2 cores, HTTP history pages at 2,000/s had a p99 of 43–67 ms; with 4,
//! 8–14 ms, and PostgreSQL used a fifth less CPU (docs/BENCHMARKS.md, session 9). Writes
//! have their own pool so that a burst of reads never keeps a message writer waiting.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

// `sql_store!` brings the store's own types and rows (NewMessage, Tx, MessageRow…) in.
use super::batch::{BatchPlan, StandingRow, posters, standings_from};
use super::sql::sql_store;

/// How long a pooled connection may sit unused before it is pinged on its next use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Message writers: each room's sends go to writer `room_id mod MESSAGE_WRITERS`, so the
/// batches of different writers never wait on each other's room locks.
const MESSAGE_WRITERS: usize = 4;

/// Connections for the HTTP API's own writes (joins, edits, accounts…), beside one per
/// message writer.
const OTHER_WRITERS: usize = 4;

pub struct PostgresStore {
    readers: PgPool,
    writers: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL and migrates it (the
    /// migrator takes an advisory lock, so nodes starting together do not collide).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let writers = pool(url, MESSAGE_WRITERS + OTHER_WRITERS).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&writers)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the PostgreSQL database: {e}"))?;
        let readers = pool(url, 2 * cores).await?;
        Ok(Self { readers, writers })
    }

    async fn backup(&self, _path: &str) -> super::StoreResult<()> {
        Err(super::StoreError::Other(
            "PostgreSQL is backed up with its own tools: `pg_dump -Fc <database> > banter.dump` for a \
             logical copy, or pg_basebackup with WAL archiving for point-in-time recovery"
                .into(),
        ))
    }

    /// Batches of up to 1,024, as before: 4,096 showed no gain (8% fewer sends in two
    /// runs, within PostgreSQL's run-to-run spread here; docs/BENCHMARKS.md, session 9).
    fn send_batching(&self) -> super::SendBatching {
        super::SendBatching {
            writers: MESSAGE_WRITERS,
            max_batch: 1024,
        }
    }

    /// Stores a batch in one transaction, or none of it.
    async fn post_batch(&self, batch: &[NewMessage]) -> Result<Vec<PostOutcome>, BatchError> {
        let mut tx = self
            .writers
            .begin()
            .await
            .map_err(|e| BatchError::Transaction(e.into()))?;
        match Self::post_batch_in_tx(&mut tx, batch).await {
            Ok(outcomes) => {
                tx.commit()
                    .await
                    .map_err(|e| BatchError::Transaction(e.into()))?;
                Ok(outcomes)
            }
            Err(e) => {
                tx.rollback()
                    .await
                    .map_err(|e| BatchError::Transaction(e.into()))?;
                Err(BatchError::Statement(e))
            }
        }
    }

    /// Stores a whole batch with a handful of statements, each taking its rows as arrays
    /// (`UNNEST`), so its text is the same for every batch: PostgreSQL parses and plans it
    /// once per connection instead of once per batch (a multi-row VALUES list of thousands
    /// of parameters spent a quarter of PostgreSQL's CPU on that). One read of the
    /// posters' standings, one probe of reused client_ids, the rooms locked in id order,
    /// one update taking every room's seq range, one insert of the messages (each its
    /// own event), one update of the authors' read markers. What to store is [`BatchPlan`]'s
    /// to decide.
    async fn post_batch_in_tx(tx: &mut Tx, batch: &[NewMessage]) -> StoreResult<Vec<PostOutcome>> {
        let (rooms, users): (Vec<i64>, Vec<i64>) = posters(batch).into_iter().unzip();
        let standings: Vec<StandingRow> = sqlx::query_as(
            "SELECT r.id, u.id, r.is_private, r.is_direct, rm.role, u.username \
             FROM UNNEST($1::int8[], $2::int8[]) AS v(room_id, user_id) \
             JOIN rooms r ON r.id = v.room_id \
             JOIN users u ON u.id = v.user_id \
             LEFT JOIN room_members rm ON rm.room_id = v.room_id AND rm.user_id = v.user_id",
        )
        .bind(&rooms)
        .bind(&users)
        .fetch_all(&mut **tx)
        .await?;
        let mut plan = BatchPlan::new(batch, standings_from(standings)?);

        let (authors, client_ids): (Vec<i64>, Vec<&str>) = plan.client_ids().into_iter().unzip();
        let mut existing = Vec::new();
        if !authors.is_empty() {
            // One index probe per pair, as a scalar subquery: a join with the list lets
            // PostgreSQL hash it against a scan of every message.
            let found: Vec<i64> = sqlx::query_scalar(
                "SELECT found.id FROM (SELECT (SELECT m.id FROM messages m \
                 WHERE m.author_id = v.author_id AND m.client_id = v.client_id) AS id \
                 FROM UNNEST($1::int8[], $2::text[]) AS v(author_id, client_id)) AS found \
                 WHERE found.id IS NOT NULL",
            )
            .bind(&authors)
            .bind(&client_ids)
            .fetch_all(&mut **tx)
            .await?;
            if !found.is_empty() {
                let sql =
                    format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ANY($1)");
                let rows: Vec<MessageRow> = sqlx::query_as(&sql)
                    .bind(&found)
                    .fetch_all(&mut **tx)
                    .await?;
                existing = rows.into_iter().map(Message::from).collect();
            }
        }
        let fresh = plan.settle(existing).to_vec();
        if fresh.is_empty() {
            return plan.finish(&[], &[], Vec::new());
        }

        // The batch's rooms are locked, in id order, before anything else in it touches
        // them (the joins below included): see `add_member_in_tx`.
        let by_room = plan.by_room();
        let room_ids: Vec<i64> = by_room.keys().copied().collect();
        sqlx::query("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&room_ids)
            .execute(&mut **tx)
            .await?;

        // Posting to a public room joins it first (rare: once per poster and room).
        let mut joined: Vec<Option<RoomEvent>> = vec![None; batch.len()];
        for &i in &fresh {
            if plan.joins(i) {
                let new = &batch[i];
                joined[i] =
                    Self::add_member_in_tx(tx, new.room_id, new.author_id, Role::Member, new.now)
                        .await?;
            }
        }

        // One seq range per room, handed out in batch order.
        let counts: Vec<i64> = by_room
            .values()
            .map(|members| members.len() as i64)
            .collect();
        let lasts: std::collections::HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
            "UPDATE rooms SET last_seq = rooms.last_seq + v.count \
             FROM UNNEST($1::int8[], $2::int8[]) AS v(id, count) \
             WHERE rooms.id = v.id RETURNING rooms.id, rooms.last_seq",
        )
        .bind(&room_ids)
        .bind(&counts)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
        let seqs = plan.seqs(&by_room, &lasts)?;

        let column = |value: fn(&NewMessage) -> i64| -> Vec<i64> {
            fresh.iter().map(|&i| value(&batch[i])).collect()
        };
        let stored: Vec<(i64, i64, i64)> = sqlx::query_as(
            "INSERT INTO messages (room_id, seq, author_id, content, client_id, created_at, deleted) \
             SELECT room_id, seq, author_id, content, client_id, created_at, FALSE \
             FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int8[]) \
                 AS v(room_id, seq, author_id, content, client_id, created_at) \
             RETURNING id, room_id, seq",
        )
        .bind(column(|new| new.room_id))
        .bind(fresh.iter().map(|&i| seqs[i]).collect::<Vec<i64>>())
        .bind(column(|new| new.author_id))
        .bind(fresh.iter().map(|&i| batch[i].content.as_str()).collect::<Vec<&str>>())
        .bind(fresh.iter().map(|&i| batch[i].client_id.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(column(|new| new.now.millis()))
        .fetch_all(&mut **tx)
        .await?;
        let stored: std::collections::HashMap<(i64, i64), i64> = stored
            .into_iter()
            .map(|(id, room, seq)| ((room, seq), id))
            .collect();
        let mut ids = vec![0i64; batch.len()];
        for &i in &fresh {
            ids[i] = *stored
                .get(&(batch[i].room_id, seqs[i]))
                .ok_or_else(|| StoreError::Other("an inserted message has no id".into()))?;
        }

        // Each author's read marker moves to their newest message in the room.
        let ((marker_rooms, marker_users), marker_seqs): ((Vec<i64>, Vec<i64>), Vec<i64>) =
            plan.read_markers(&seqs).into_iter().unzip();
        sqlx::query(
            "UPDATE room_members SET last_read_seq = v.seq \
             FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) AS v(room_id, user_id, seq) \
             WHERE room_members.room_id = v.room_id AND room_members.user_id = v.user_id \
             AND room_members.last_read_seq < v.seq",
        )
        .bind(&marker_rooms)
        .bind(&marker_users)
        .bind(&marker_seqs)
        .execute(&mut **tx)
        .await?;

        plan.finish(&seqs, &ids, joined)
    }

    fn writer(&self) -> &PgPool {
        &self.writers
    }

    fn reader(&self) -> &PgPool {
        &self.readers
    }
}

/// A pool of at most `size` connections to `url`.
async fn pool(url: &str, size: usize) -> anyhow::Result<PgPool> {
    // sqlx pings a connection when it is released (always) and again when it is acquired
    // (by default): three round trips to the server per query. A connection released a
    // moment ago was just found alive, so only one that sat idle long enough to have been
    // cut (a server restart, a proxy's idle timeout) is pinged.
    PgPoolOptions::new()
        .max_connections(u32::try_from(size).unwrap_or(u32::MAX))
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at DATABASE_URL: {e}"))
}

sql_store!(PostgresStore, sqlx::Postgres);
