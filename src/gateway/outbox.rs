//! One connection's outbound queue. The hub and the connection's own loop push frames;
//! the loop drains everything waiting into one write. The queue is bounded: a
//! connection that falls behind is marked for closing with 4008 rather than grown, so a
//! slow reader costs at most the bound and never slows a sender. The queue allocates
//! only while frames wait.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// Frames waiting at most, before the connection counts as too slow.
pub const MAX_QUEUED_FRAMES: usize = 1024;
/// Bytes waiting at most, before the connection counts as too slow.
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// Why the server ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

pub const CLOSE_SLOW_CONSUMER: CloseReason = CloseReason {
    code: 4008,
    reason: "too slow: resume with after_seq",
};
pub const CLOSE_GOING_AWAY: CloseReason = CloseReason {
    code: 1001,
    reason: "server shutting down",
};
pub const CLOSE_DEACTIVATED: CloseReason = CloseReason {
    code: 4001,
    reason: "account deactivated",
};

#[derive(Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    close: Option<CloseReason>,
}

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    notify: Notify,
}

impl Outbox {
    fn with_queue<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut queue)
    }

    /// Queues a frame within the bound. Past the bound the connection is marked for
    /// closing with 4008 and the frame dropped (the client resumes by seq). False when
    /// the frame was not queued.
    pub fn push(&self, frame: Utf8Bytes) -> bool {
        let queued = self.with_queue(|q| {
            if q.close.is_some() {
                return false;
            }
            if q.frames.len() >= MAX_QUEUED_FRAMES || q.bytes + frame.len() > MAX_QUEUED_BYTES {
                q.close = Some(CLOSE_SLOW_CONSUMER);
                q.frames = VecDeque::new();
                q.bytes = 0;
                return false;
            }
            q.bytes += frame.len();
            q.frames.push_back(frame);
            true
        });
        self.notify.notify_one();
        queued
    }

    /// Queues a frame the connection itself produced (replies, replays); these are
    /// bounded by what the client asked for, not by other people's traffic.
    pub fn push_own(&self, frame: Utf8Bytes) {
        self.with_queue(|q| {
            if q.close.is_none() {
                q.bytes += frame.len();
                q.frames.push_back(frame);
            }
        });
        self.notify.notify_one();
    }

    /// Asks the connection to close; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        self.with_queue(|q| {
            q.close.get_or_insert(reason);
        });
        self.notify.notify_one();
    }

    /// Everything waiting, and the close request if any.
    pub fn take(&self) -> (VecDeque<Utf8Bytes>, Option<CloseReason>) {
        self.with_queue(|q| {
            q.bytes = 0;
            (std::mem::take(&mut q.frames), q.close)
        })
    }

    /// Resolves when something was pushed or a close was requested since the last call.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_marks_the_connection_slow_and_drops_the_backlog() {
        let outbox = Outbox::default();
        for _ in 0..MAX_QUEUED_FRAMES {
            assert!(outbox.push(Utf8Bytes::from_static("x")));
        }
        assert!(!outbox.push(Utf8Bytes::from_static("x")));
        let (frames, close) = outbox.take();
        assert!(frames.is_empty());
        assert_eq!(close, Some(CLOSE_SLOW_CONSUMER));
        assert!(
            !outbox.push(Utf8Bytes::from_static("late")),
            "nothing is queued after a close"
        );
    }

    #[test]
    fn the_byte_bound_counts_too() {
        let outbox = Outbox::default();
        let big = Utf8Bytes::from("y".repeat(MAX_QUEUED_BYTES / 2));
        assert!(outbox.push(big.clone()));
        assert!(outbox.push(big.clone()));
        assert!(!outbox.push(Utf8Bytes::from_static("z")));
    }

    #[test]
    fn draining_resets_the_count() {
        let outbox = Outbox::default();
        outbox.push(Utf8Bytes::from_static("a"));
        outbox.push_own(Utf8Bytes::from_static("b"));
        let (frames, close) = outbox.take();
        assert_eq!(frames.len(), 2);
        assert_eq!(close, None);
        let (frames, _) = outbox.take();
        assert!(frames.is_empty());
    }
}
