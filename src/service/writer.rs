//! Group commit for messages. Sends from every connection and request go through one
//! queue; a writer takes whatever is waiting (up to `MAX_BATCH`) and stores it in one
//! transaction — one commit, one fsync — then publishes the events and answers each
//! sender. Under load batches grow by themselves; alone, a message is stored at once.
//!
//! Each writer sorts its batch by room (a stable sort: each room keeps its order), so
//! concurrent writers always lock rooms in the same order and cannot deadlock. A
//! client's next send waits for the previous answer, so its messages keep their order.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::bus::{Bus, Notice};
use crate::store::{NewMessage, PostOutcome, Store, StoreError, StoreResult};

const MAX_BATCH: usize = 1024;
const QUEUE: usize = 8192;

struct Job {
    new: NewMessage,
    reply: oneshot::Sender<StoreResult<PostOutcome>>,
}

pub(super) struct MessageWriter {
    jobs: mpsc::Sender<Job>,
}

impl MessageWriter {
    /// Starts `writers` writer tasks (one is right for SQLite's single writer).
    pub(super) fn start(store: Arc<dyn Store>, bus: Arc<dyn Bus>, writers: usize) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let batches: Vec<_> = (0..writers.max(1))
            .map(|_| write_batches(queue.clone(), store.clone(), bus.clone()))
            .collect();
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
        Self { jobs }
    }

    /// Stores a message; answers after the commit that holds it.
    pub(super) async fn post(&self, new: NewMessage) -> StoreResult<PostOutcome> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the message writer has stopped".into());
        self.jobs
            .send(Job { new, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
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
