//! Group commit for messages. Sends from every connection and request go through a
//! writer's queue; the writer takes whatever is waiting (up to the store's `max_batch`)
//! and stores it in one transaction — one commit, one fsync — then publishes the events
//! and answers each sender. Under load batches grow by themselves; alone, a message is stored at once.
//!
//! With several writers (PostgreSQL), each room belongs to one of them (room id modulo
//! the number of writers): two writers never wait for each other's lock on a room, and
//! a room's events are published by one writer in commit order. Each writer sorts its
//! batch by room (a stable sort: each room keeps its order), so writers of different
//! nodes sharing a database lock rooms in the same order and cannot deadlock. A
//! client's next send waits for the previous answer, so its messages keep their order.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, Notice};
use crate::store::{NewMessage, PostOutcome, SendBatching, Store, StoreError, StoreResult};

/// Sends waiting for each writer.
const QUEUE: usize = 8192;

struct Job {
    new: NewMessage,
    reply: oneshot::Sender<StoreResult<PostOutcome>>,
}

pub(super) struct MessageWriter {
    /// One queue per writer; a room's sends all go to the same one.
    queues: Vec<mpsc::Sender<Job>>,
}

impl MessageWriter {
    /// Starts the writer tasks `batching` asks for.
    pub(super) fn start(store: Arc<dyn Store>, bus: Arc<dyn Bus>, batching: SendBatching) -> Self {
        let max_batch = batching.max_batch.max(1);
        let (queues, batches): (Vec<_>, Vec<_>) = (0..batching.writers.max(1))
            .map(|_| {
                let (jobs, queue) = mpsc::channel(QUEUE);
                (
                    jobs,
                    write_batches(queue, max_batch, store.clone(), bus.clone()),
                )
            })
            .unzip();
        let writer = async move {
            futures_util::future::join_all(batches).await;
        };
        // The writers get a thread and runtime of their own. A batch makes a handful of
        // database round trips, and after each one the writer waits to be polled again;
        // on the shared runtime that wait is behind every connection's ready task (tens of
        // milliseconds per batch under load), and every sender waits on the writer.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("message-writer".into())
                    .spawn(move || runtime.block_on(writer));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the message writer's thread");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no runtime of its own for the message writer; sharing the server's");
                tokio::spawn(writer);
            }
        }
        Self { queues }
    }

    /// Stores a message; answers after the commit that holds it.
    pub(super) async fn post(&self, new: NewMessage) -> StoreResult<PostOutcome> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the message writer has stopped".into());
        let writer = new.room_id.rem_euclid(self.queues.len() as i64) as usize;
        self.queues[writer]
            .send(Job { new, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
) {
    loop {
        let mut batch = Vec::new();
        if queue.recv_many(&mut batch, max_batch).await == 0 {
            return;
        }
        batch.sort_by_key(|job| job.new.room_id);
        let (messages, replies): (Vec<NewMessage>, Vec<_>) =
            batch.into_iter().map(|job| (job.new, job.reply)).unzip();
        match store.post_messages(messages).await {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    if let Ok(PostOutcome::Created { events, .. }) = &result {
                        for event in events {
                            bus.publish(Notice::Room(event.clone()));
                        }
                    }
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
