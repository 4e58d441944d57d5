//! History pages measured in the database, one query at a time: the store's keyset page
//! (`Store::history_page(member, room, Page::Before(seq), 50)`, which reads the
//! reader's standing and the page in one statement, on SQLite as one JSON row), the same keyset query returning one row per message run directly on a
//! pool like the store's reader, and OFFSET paging at a fixed depth on that pool (so the
//! OFFSET comparison differs in the paging method only).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use banter::store::{Page, Store};
use rand::rngs::StdRng;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::fill::random_page;
use crate::stats::Summary;
use crate::{Backend, BenchRoom};

/// Copies of `MESSAGE_COLUMNS` / `MESSAGE_FROM` in src/store/rows.rs (a private module):
/// the raw queries must select and join exactly what the store does.
const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.seq, m.author_id, au.username AS author_username, \
     m.content, m.client_id, m.created_at, m.edited_at, m.deleted";
const MESSAGE_FROM: &str = "messages m JOIN users au ON au.id = m.author_id";

/// A decoded message row, column for column as the store's `MessageRow`.
type MessageTuple = (
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    bool,
);

pub fn keyset_sql() -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.room_id = $1 AND m.seq < $3 \
         ORDER BY m.seq DESC LIMIT $2"
    )
}

pub fn offset_sql() -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.room_id = $1 \
         ORDER BY m.seq DESC LIMIT $2 OFFSET $3"
    )
}

/// A read pool configured like the store's reader for the backend.
#[derive(Clone)]
pub enum RawPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl RawPool {
    /// Same options as `SqliteStore::connect`'s reader (read-only, WAL, 8 connections)
    /// and `PostgresStore::connect`'s pool (16 connections).
    pub async fn open(backend: Backend, url: &str) -> anyhow::Result<RawPool> {
        Ok(match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    .read_only(true);
                RawPool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(8)
                        .connect_with(options)
                        .await?,
                )
            }
            Backend::Postgres => RawPool::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?,
            ),
        })
    }

    /// Runs a page query (`$1` room, `$2` limit, `$3` seq bound or offset); returns the
    /// number of rows.
    async fn page(&self, sql: &str, room_id: i64, limit: i64, third: i64) -> anyhow::Result<usize> {
        let rows = match self {
            RawPool::Sqlite(pool) => {
                sqlx::query_as::<_, MessageTuple>(sql)
                    .bind(room_id)
                    .bind(limit)
                    .bind(third)
                    .fetch_all(pool)
                    .await?
            }
            RawPool::Postgres(pool) => {
                sqlx::query_as::<_, MessageTuple>(sql)
                    .bind(room_id)
                    .bind(limit)
                    .bind(third)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.len())
    }

    /// The query plan of `sql` with sample parameters, one line per plan row.
    pub async fn explain(
        &self,
        sql: &str,
        room_id: i64,
        limit: i64,
        third: i64,
    ) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            RawPool::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .bind(room_id)
                        .bind(limit)
                        .bind(third)
                        .fetch_all(pool)
                        .await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            RawPool::Postgres(pool) => {
                sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                    .bind(room_id)
                    .bind(limit)
                    .bind(third)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    pub async fn close(&self) {
        match self {
            RawPool::Sqlite(pool) => pool.close().await,
            RawPool::Postgres(pool) => pool.close().await,
        }
    }
}

/// What to measure: `pages` pages of `limit` messages after `warmup` unrecorded ones,
/// and OFFSET paging at `offset_depth`.
pub struct PageOptions {
    pub pages: usize,
    pub warmup: usize,
    pub limit: i64,
    pub offset_depth: i64,
}

pub struct PageFigures {
    pub store_keyset: Summary,
    pub raw_keyset: Summary,
    pub offset: Summary,
    pub offset_depth: i64,
    pub short_pages: usize,
}

/// Measures random pages each way: keyset through the store, keyset and OFFSET raw.
pub async fn measure(
    store: &Arc<dyn Store>,
    pool: &RawPool,
    rooms: &[BenchRoom],
    options: &PageOptions,
    rng: &mut StdRng,
) -> anyhow::Result<PageFigures> {
    let PageOptions {
        pages,
        warmup,
        limit,
        offset_depth,
    } = *options;
    // Each page is read by its room's owner, the first of its members (the fill checks
    // that every room has one).
    let plan: Vec<(i64, i64, i64)> = (0..pages + warmup)
        .map(|_| {
            let (room, seq) = random_page(rooms, rng);
            (room.id, room.members[0], seq)
        })
        .collect();
    let (warm, measured) = plan.split_at(warmup);
    let keyset = keyset_sql();
    let offset = offset_sql();

    // Warm caches (page cache, statement caches, pool connections) for all three. OFFSET
    // gets fewer: each one reads 100 times as many rows, so a hundred warm as much.
    for (i, &(room, reader, seq)) in warm.iter().enumerate() {
        store
            .history_page(reader, room, Page::Before(seq), limit)
            .await?;
        pool.page(&keyset, room, limit, seq).await?;
        if i < 100 {
            pool.page(&offset, room, limit, offset_depth).await?;
        }
    }

    let mut short_pages = 0;
    let mut samples = Vec::with_capacity(pages);
    for &(room, reader, seq) in measured {
        let started = Instant::now();
        let page = store
            .history_page(reader, room, Page::Before(seq), limit)
            .await
            .context("Store::history_page")?
            .messages;
        samples.push(started.elapsed());
        if (page.len() as i64) < limit {
            short_pages += 1;
        }
    }
    let store_keyset = Summary::of(&samples);

    samples.clear();
    for &(room, _, seq) in measured {
        let started = Instant::now();
        pool.page(&keyset, room, limit, seq).await?;
        samples.push(started.elapsed());
    }
    let raw_keyset = Summary::of(&samples);

    samples.clear();
    for &(room, _, _) in measured {
        let started = Instant::now();
        let rows = pool.page(&offset, room, limit, offset_depth).await?;
        samples.push(started.elapsed());
        if (rows as i64) < limit {
            anyhow::bail!(
                "room {room} has fewer than {} messages: OFFSET paging at depth {offset_depth} needs more per room",
                offset_depth + limit
            );
        }
    }
    let offset = Summary::of(&samples);

    Ok(PageFigures {
        store_keyset,
        raw_keyset,
        offset,
        offset_depth,
        short_pages,
    })
}
