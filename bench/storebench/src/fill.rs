//! Filling the database: users, rooms and memberships through the `Store` trait (few,
//! and they must be exactly what the server writes), then millions of messages with bulk
//! SQL straight into the schema, because one transaction per message would take hours.
//!
//! The bulk rows are what `post_message` would have written had the room members posted
//! them one by one: per room gapless seqs after the `member_joined` events (a message is
//! its own event, with no row in `room_events`), `rooms.last_seq` at the last seq, and each author's
//! read marker at their own last message. Rooms are interleaved (every round posts one
//! message to each room, in a shuffled order) so a room's messages are spread over the
//! table as in a live server, rather than stored contiguously, which would flatter reads.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use banter::domain::model::Role;
use banter::domain::time::Timestamp;
use banter::store::{NewRoom, NewUser, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder};

use crate::{Backend, BenchRoom};

/// Prefixes that mark the benchmark's own users and rooms.
pub const USER_PREFIX: &str = "bench_user_";
pub const ROOM_PREFIX: &str = "bench-room-";

pub struct FillOptions {
    pub rooms: usize,
    pub messages: u64,
    pub users: usize,
    pub members_per_room: usize,
    pub seed: u64,
}

/// How long the two fill stages took.
pub struct FillReport {
    pub setup: Duration,
    pub bulk: Duration,
    pub rows: u64,
}

/// Creates users, rooms and memberships through the store; returns the rooms with their
/// members (the authors of their messages).
pub async fn setup(
    store: &Arc<dyn Store>,
    options: &FillOptions,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<BenchRoom>> {
    if options.members_per_room == 0 || options.members_per_room > options.users {
        bail!("--members-per-room must be between 1 and --users");
    }
    let now = Timestamp::now();
    let mut user_ids = Vec::with_capacity(options.users);
    for i in 0..options.users {
        let username = format!("{USER_PREFIX}{i:05}");
        let user = store
            .create_user(NewUser {
                username_key: username.clone(),
                email: format!("{username}@bench.invalid"),
                email_key: format!("{username}@bench.invalid"),
                username,
                // Not a valid PHC string: these accounts only author messages and can
                // never log in (the HTTP phase registers its own reader).
                password_hash: "!bench".into(),
                is_admin: false,
                now,
            })
            .await
            .context("creating bench users (is the database empty? use --skip-fill)")?;
        user_ids.push(user.id);
    }

    let mut rooms = Vec::with_capacity(options.rooms);
    for i in 0..options.rooms {
        let name = format!("{ROOM_PREFIX}{i:05}");
        let owner = user_ids[i % user_ids.len()];
        let room = store
            .create_room(NewRoom {
                name_key: name.clone(),
                name,
                topic: "storage benchmark".into(),
                is_private: false,
                owner_id: owner,
                now,
            })
            .await
            .context("creating bench rooms")?;
        let mut others: Vec<i64> = user_ids.iter().copied().filter(|&u| u != owner).collect();
        others.shuffle(rng);
        others.truncate(options.members_per_room - 1);
        rooms.push((room.id, owner, others));
    }

    // Joins go through add_member (one transaction each, with its member_joined event),
    // from a few tasks at once as joins would arrive; SQLite serialises them anyway.
    let mut joins = tokio::task::JoinSet::new();
    let tasks = 8;
    for t in 0..tasks {
        let store = store.clone();
        let work: Vec<(i64, i64)> = rooms
            .iter()
            .skip(t)
            .step_by(tasks)
            .flat_map(|(room, _, others)| others.iter().map(move |&u| (*room, u)))
            .collect();
        joins.spawn(async move {
            for (room_id, user_id) in work {
                store
                    .add_member(room_id, user_id, Role::Member, Timestamp::now())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = joins.join_next().await {
        joined??;
    }

    // last_seq now counts the member_joined events: messages continue after them.
    let infos: HashMap<i64, i64> = store
        .all_rooms()
        .await?
        .into_iter()
        .map(|r| (r.id, r.last_seq))
        .collect();
    rooms
        .into_iter()
        .map(|(id, owner, others)| {
            let last_seq = *infos.get(&id).context("created room vanished")?;
            let mut members = vec![owner];
            members.extend(others);
            Ok(BenchRoom {
                id,
                last_seq,
                members,
            })
        })
        .collect()
}

/// One generated message.
struct Row {
    id: i64,
    room_id: i64,
    seq: i64,
    author_id: i64,
    content: String,
    created_at: i64,
}

/// Produces the messages in posting order, round by round.
struct Generator {
    rng: StdRng,
    rooms: Vec<GenRoom>,
    /// Rooms still to post to in the current round, popped from the back.
    round: Vec<usize>,
    next_id: i64,
    next_created_at: i64,
    remaining: u64,
    /// Each author's last seq per room: where post_message leaves their read marker.
    last_posted: HashMap<(i64, i64), i64>,
}

struct GenRoom {
    id: i64,
    members: Vec<i64>,
    next_seq: i64,
    remaining: u64,
}

/// Spacing of the generated created_at times: the history ends about now.
const POST_INTERVAL_MS: i64 = 20;

const WORDS: &[&str] = &[
    "the",
    "deploy",
    "is",
    "green",
    "again",
    "can",
    "someone",
    "review",
    "my",
    "patch",
    "lunch",
    "at",
    "noon",
    "meeting",
    "moved",
    "to",
    "room",
    "four",
    "build",
    "broke",
    "on",
    "main",
    "after",
    "merge",
    "thanks",
    "looks",
    "good",
    "shipping",
    "it",
    "now",
    "database",
    "latency",
    "spiked",
    "during",
    "backup",
    "please",
    "check",
    "logs",
    "and",
    "ping",
    "me",
    "when",
    "done",
    "coffee",
    "anyone",
    "release",
    "notes",
    "draft",
    "ready",
    "for",
    "feedback",
    "tomorrow",
    "morning",
    "works",
    "fine",
    "here",
    "reverting",
    "that",
];

impl Generator {
    fn new(rooms: &[BenchRoom], total: u64, first_id: i64, seed: u64) -> Generator {
        let per_room = total / rooms.len() as u64;
        let extra = (total % rooms.len() as u64) as usize;
        let gen_rooms = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| GenRoom {
                id: r.id,
                members: r.members.clone(),
                next_seq: r.last_seq + 1,
                remaining: per_room + u64::from(i < extra),
            })
            .collect();
        Generator {
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_f111),
            rooms: gen_rooms,
            round: Vec::new(),
            next_id: first_id,
            next_created_at: Timestamp::now().millis() - total as i64 * POST_INTERVAL_MS,
            remaining: total,
            last_posted: HashMap::new(),
        }
    }

    fn content(&mut self) -> String {
        // 60–140 bytes: about 100 on average, like short chat lines.
        let target = self.rng.gen_range(60..140);
        let mut text = String::with_capacity(target + 12);
        while text.len() < target {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(WORDS[self.rng.gen_range(0..WORDS.len())]);
        }
        text
    }

    fn next_batch(&mut self, max: usize) -> Vec<Row> {
        let mut batch = Vec::with_capacity(max.min(self.remaining as usize));
        while batch.len() < max && self.remaining > 0 {
            let Some(index) = self.round.pop() else {
                self.round = (0..self.rooms.len())
                    .filter(|&i| self.rooms[i].remaining > 0)
                    .collect();
                self.round.shuffle(&mut self.rng);
                continue;
            };
            let content = self.content();
            let room = &mut self.rooms[index];
            let author_id = room.members[self.rng.gen_range(0..room.members.len())];
            let row = Row {
                id: self.next_id,
                room_id: room.id,
                seq: room.next_seq,
                author_id,
                content,
                created_at: self.next_created_at,
            };
            room.next_seq += 1;
            room.remaining -= 1;
            self.remaining -= 1;
            self.next_id += 1;
            self.next_created_at += POST_INTERVAL_MS;
            self.last_posted.insert((row.room_id, author_id), row.seq);
            batch.push(row);
        }
        batch
    }

    /// (room_id, last_seq) once every message is generated.
    fn last_seqs(&self) -> Vec<(i64, i64)> {
        self.rooms.iter().map(|r| (r.id, r.next_seq - 1)).collect()
    }
}

/// Prints rows/s every few seconds.
struct Progress {
    started: Instant,
    last_print: Instant,
    total: u64,
    done: u64,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last_print: now,
            total,
            done: 0,
        }
    }

    fn add(&mut self, rows: u64) {
        self.done += rows;
        if self.last_print.elapsed() >= Duration::from_secs(5) || self.done == self.total {
            self.last_print = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            let rate = self.done as f64 / secs.max(1e-9);
            let eta = (self.total - self.done) as f64 / rate.max(1e-9);
            eprintln!(
                "  fill: {:>10} / {} messages ({:5.1}%), {:>8.0} msgs/s, {:6.0} s elapsed, ETA {:.0} s",
                self.done,
                self.total,
                100.0 * self.done as f64 / self.total.max(1) as f64,
                rate,
                secs,
                eta
            );
        }
    }
}

/// Rows per transaction (and per COPY on PostgreSQL).
const TX_ROWS: usize = 100_000;
/// Rows per multi-row INSERT on SQLite: 500 × 6 binds stays far below SQLite's
/// 32,766-variable limit while making per-statement overhead negligible.
const SQLITE_STATEMENT_ROWS: usize = 500;

/// Writes `total` messages into the rooms, with their room counters and read markers. The rooms' `last_seq` are updated in `rooms` too.
pub async fn bulk_fill(
    backend: Backend,
    url: &str,
    rooms: &mut [BenchRoom],
    total: u64,
    seed: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let last_seqs = match backend {
        Backend::Sqlite => fill_sqlite(url, rooms, total, seed).await?,
        Backend::Postgres => fill_postgres(url, rooms, total, seed).await?,
    };
    let by_id: HashMap<i64, i64> = last_seqs.into_iter().collect();
    for room in rooms.iter_mut() {
        if let Some(&seq) = by_id.get(&room.id) {
            room.last_seq = seq;
        }
    }
    Ok(started.elapsed())
}

async fn fill_sqlite(
    url: &str,
    rooms: &[BenchRoom],
    total: u64,
    seed: u64,
) -> anyhow::Result<Vec<(i64, i64)>> {
    // A private connection for the fill only: synchronous=OFF (a crash mid-fill just
    // means filling again), no foreign-key lookups (the generator only references rows
    // that exist) and a 1 GiB page cache so the 1,000 insertion points of the
    // (room_id, seq) index stay in memory. The server's own settings are untouched.
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-1048576")
        .pragma("temp_store", "memory");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")
        .fetch_one(&mut conn)
        .await?;
    let mut generator = Generator::new(rooms, total, first_id, seed);
    let mut progress = Progress::new(total);
    loop {
        let batch = generator.next_batch(TX_ROWS);
        if batch.is_empty() {
            break;
        }
        let mut tx = conn.begin().await?;
        for chunk in batch.chunks(SQLITE_STATEMENT_ROWS) {
            QueryBuilder::new(
                "INSERT INTO messages (id, room_id, seq, author_id, content, created_at) ",
            )
            .push_values(chunk, |mut b, row| {
                b.push_bind(row.id)
                    .push_bind(row.room_id)
                    .push_bind(row.seq)
                    .push_bind(row.author_id)
                    .push_bind(row.content.as_str())
                    .push_bind(row.created_at);
            })
            .build()
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        progress.add(batch.len() as u64);
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(&counters_script(&generator))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // Leave a small WAL behind, as a long-running server's checkpoints would.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(generator.last_seqs())
}

/// SQL that sets rooms.last_seq and the authors' read markers as post_message leaves
/// them. One script of plain integer literals (nothing to escape), the same on both
/// databases.
fn counters_script(generator: &Generator) -> String {
    let mut script = String::new();
    for (room_id, last_seq) in generator.last_seqs() {
        let _ = writeln!(
            script,
            "UPDATE rooms SET last_seq = {last_seq} WHERE id = {room_id};"
        );
    }
    for (&(room_id, user_id), &seq) in &generator.last_posted {
        let _ = writeln!(
            script,
            "UPDATE room_members SET last_read_seq = {seq} \
             WHERE room_id = {room_id} AND user_id = {user_id} AND last_read_seq < {seq};"
        );
    }
    script
}

/// COPY text format: backslash, tab, newline and carriage return must be escaped.
fn copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}

async fn fill_postgres(
    url: &str,
    rooms: &[BenchRoom],
    total: u64,
    seed: u64,
) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut conn = PgConnection::connect(url).await?;
    // Foreign-key triggers would run two lookups per copied row; replica mode skips them
    // for this session only (the generator only references rows that exist). Needs a
    // superuser, which the bench database's owner is here.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .context("SET session_replication_role needs a superuser")?;
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")
        .fetch_one(&mut conn)
        .await?;
    let mut generator = Generator::new(rooms, total, first_id, seed);
    let mut progress = Progress::new(total);
    let mut messages = String::new();
    loop {
        let batch = generator.next_batch(TX_ROWS);
        if batch.is_empty() {
            break;
        }
        messages.clear();
        for row in &batch {
            let _ = write!(
                messages,
                "{}\t{}\t{}\t{}\t",
                row.id, row.room_id, row.seq, row.author_id
            );
            copy_text(&mut messages, &row.content);
            let _ = writeln!(messages, "\t{}", row.created_at);
        }
        let mut tx = conn.begin().await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY messages (id, room_id, seq, author_id, content, created_at) FROM STDIN",
            )
            .await?;
        copy.send(messages.as_bytes()).await?;
        copy.finish().await?;
        tx.commit().await?;
        progress.add(batch.len() as u64);
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(&counters_script(&generator))
        .execute(&mut *tx)
        .await?;
    // Explicit ids bypassed the identity sequence: move it past them, or the next
    // post_message would collide with a copied id.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT MAX(id) FROM messages))",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("SET session_replication_role = DEFAULT")
        .execute(&mut conn)
        .await?;
    // Autovacuum would do this soon after such a load on a live server; doing it now
    // measures the steady state instead of whenever autovacuum happens to run.
    eprintln!("  fill: VACUUM ANALYZE messages, room_events …");
    sqlx::query("VACUUM ANALYZE messages")
        .execute(&mut conn)
        .await?;
    sqlx::query("VACUUM ANALYZE room_events")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(generator.last_seqs())
}

/// The bench rooms of an already filled database, with their members.
pub async fn existing_rooms(store: &Arc<dyn Store>) -> anyhow::Result<Vec<BenchRoom>> {
    let mut rooms = Vec::new();
    for info in store.all_rooms().await? {
        if !info.name.starts_with(ROOM_PREFIX) {
            continue;
        }
        let members = store
            .members(info.id)
            .await?
            .into_iter()
            .map(|m| m.user.id)
            .collect();
        rooms.push(BenchRoom {
            id: info.id,
            last_seq: info.last_seq,
            members,
        });
    }
    Ok(rooms)
}

/// Picks a page: a random room and a random `before_seq` in 2..=last_seq+1 (so every
/// page has at least one row).
pub fn random_page<'a>(rooms: &'a [BenchRoom], rng: &mut StdRng) -> (&'a BenchRoom, i64) {
    let room = &rooms[rng.gen_range(0..rooms.len())];
    (room, rng.gen_range(2..=room.last_seq.max(1) + 1))
}
