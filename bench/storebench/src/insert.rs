//! Insert throughput through the real write paths, each message posted as a member of a
//! random bench room with a `client_id` as the web client sends:
//! - [`measure`]: `Store::post_message`, one durable transaction per message (next seq,
//!   message row, event row, read marker), from several concurrent tasks;
//! - [`measure_batches`]: `Store::post_messages`, one batch after another as the server's
//!   group-commit writer stores concurrent sends: the writer's ceiling, without the
//!   WebSocket work that shares the machine in the load generator's `sends` scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banter::domain::time::Timestamp;
use banter::store::{NewMessage, PostOutcome, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::BenchRoom;
use crate::stats::Summary;

pub struct InsertFigures {
    pub messages: usize,
    pub tasks: usize,
    /// Messages per `post_messages` call; 1 for `post_message`.
    pub batch_size: usize,
    pub elapsed: Duration,
    pub per_second: f64,
    pub latency: Summary,
}

pub async fn measure(
    store: &Arc<dyn Store>,
    rooms: &[BenchRoom],
    messages: usize,
    tasks: usize,
    seed: u64,
) -> anyhow::Result<InsertFigures> {
    let rooms: Arc<Vec<BenchRoom>> = Arc::new(rooms.to_vec());
    // Unique per run: a repeated client_id would be answered with the old message and
    // store nothing.
    let run = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let count = messages / tasks + usize::from(task < messages % tasks);
        let store = store.clone();
        let rooms = rooms.clone();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(task as u64));
        set.spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let room = &rooms[rng.gen_range(0..rooms.len())];
                let author_id = room.members[rng.gen_range(0..room.members.len())];
                let begun = Instant::now();
                let outcome = store
                    .post_message(NewMessage {
                        room_id: room.id,
                        author_id,
                        content: format!("insert benchmark message {i} from task {task}"),
                        client_id: Some(format!("sb-{run}-{task}-{i}")),
                        is_server_admin: false,
                        now: Timestamp::now(),
                    })
                    .await?;
                latencies.push(begun.elapsed());
                if !matches!(outcome, PostOutcome::Created { .. }) {
                    anyhow::bail!("post_message stored nothing (client_id reused?)");
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(messages);
    while let Some(done) = set.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    Ok(InsertFigures {
        messages: latencies.len(),
        tasks,
        batch_size: 1,
        elapsed,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latency: Summary::of(&latencies),
    })
}

/// Posts `messages` in batches of `batch_size`, one batch at a time; `latency` is per batch.
pub async fn measure_batches(
    store: &Arc<dyn Store>,
    rooms: &[BenchRoom],
    messages: usize,
    batch_size: usize,
    seed: u64,
) -> anyhow::Result<InsertFigures> {
    let run = chrono::Utc::now().timestamp_millis();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut latencies = Vec::with_capacity(messages / batch_size + 1);
    let mut posted = 0;
    let started = Instant::now();
    while posted < messages {
        let size = batch_size.min(messages - posted);
        let now = Timestamp::now();
        let mut batch: Vec<NewMessage> = (posted..posted + size)
            .map(|i| {
                let room = &rooms[rng.gen_range(0..rooms.len())];
                NewMessage {
                    room_id: room.id,
                    author_id: room.members[rng.gen_range(0..room.members.len())],
                    content: format!("batched insert benchmark message {i}"),
                    client_id: Some(format!("sb-{run}-{i}")),
                    is_server_admin: false,
                    now,
                }
            })
            .collect();
        // As the writer does: by room, each room's messages in arrival order.
        batch.sort_by_key(|new| new.room_id);
        let begun = Instant::now();
        let outcomes = store.post_messages(batch).await?;
        latencies.push(begun.elapsed());
        for outcome in outcomes {
            if !matches!(outcome?, PostOutcome::Created { .. }) {
                anyhow::bail!("post_messages stored nothing for a message (client_id reused?)");
            }
        }
        posted += size;
    }
    let elapsed = started.elapsed();
    Ok(InsertFigures {
        messages: posted,
        tasks: 1,
        batch_size,
        elapsed,
        per_second: posted as f64 / elapsed.as_secs_f64(),
        latency: Summary::of(&latencies),
    })
}
