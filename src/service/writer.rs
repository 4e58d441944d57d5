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

const MAX_BATCH: usize = 256;
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
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(queue.clone(), store.clone(), bus.clone()));
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
