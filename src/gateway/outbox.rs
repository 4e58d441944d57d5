//! One connection's outbound queue. The hub and the connection's own loop push frames;
//! the loop drains everything waiting into one write. The queue is bounded: a
//! connection that falls behind is marked for closing with 4008 rather than grown, so a
//! slow reader costs at most the bound and never slows a sender. The queue allocates
//! only while frames wait.
//!
//! The loop waits for the outbox by leaving its waker in the queue ([`Outbox::poll_take`]),
//! so a push wakes it at most once per drain and an idle outbox holds no waiting future.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use axum::extract::ws::Utf8Bytes;

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
    /// The connection's loop, when it waits on the outbox.
    waiting: Option<Waker>,
    /// False while the loop waits only for a close request (its socket is full, so new
    /// frames could not be written yet anyway).
    wants_frames: bool,
}

impl Queue {
    /// Leaves `cx`'s waker for the next change the loop waits for.
    fn wait(&mut self, cx: &Context<'_>, wants_frames: bool) {
        self.wants_frames = wants_frames;
        if !self
            .waiting
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.waiting = Some(cx.waker().clone());
        }
    }

    /// The loop's waker, when it waits for this change.
    fn waiting_for(&mut self, change: Change) -> Option<Waker> {
        match change {
            Change::Frame if !self.wants_frames => None,
            Change::Frame | Change::Close => self.waiting.take(),
            Change::Nothing => None,
        }
    }
}

enum Change {
    Nothing,
    Frame,
    Close,
}

/// Frames to write, and the close request if any.
pub type Taken = (VecDeque<Utf8Bytes>, Option<CloseReason>);

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
}

impl Outbox {
    fn with_queue<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut queue)
    }

    /// Applies a change and wakes the loop (outside the lock) when it waits for it.
    fn change(&self, f: impl FnOnce(&mut Queue) -> Change) {
        let waiting = self.with_queue(|q| {
            let change = f(q);
            q.waiting_for(change)
        });
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// Queues a frame within the bound. Past the bound the connection is marked for
    /// closing with 4008 and the frame dropped (the client resumes by seq). False when
    /// the frame was not queued.
    pub fn push(&self, frame: Utf8Bytes) -> bool {
        let mut queued = false;
        self.change(|q| {
            if q.close.is_some() {
                return Change::Nothing;
            }
            if q.frames.len() >= MAX_QUEUED_FRAMES || q.bytes + frame.len() > MAX_QUEUED_BYTES {
                q.close = Some(CLOSE_SLOW_CONSUMER);
                q.frames = VecDeque::new();
                q.bytes = 0;
                return Change::Close;
            }
            q.bytes += frame.len();
            q.frames.push_back(frame);
            queued = true;
            Change::Frame
        });
        queued
    }

    /// Queues a frame the connection itself produced (replies, replays); these are
    /// bounded by what the client asked for, not by other people's traffic.
    pub fn push_own(&self, frame: Utf8Bytes) {
        self.change(|q| {
            if q.close.is_some() {
                return Change::Nothing;
            }
            q.bytes += frame.len();
            q.frames.push_back(frame);
            Change::Frame
        });
    }

    /// Asks the connection to close; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        self.change(|q| {
            q.close.get_or_insert(reason);
            Change::Close
        });
    }

    /// Everything waiting, and the close request if any.
    pub fn take(&self) -> Taken {
        self.with_queue(|q| {
            q.bytes = 0;
            (std::mem::take(&mut q.frames), q.close)
        })
    }

    /// Like [`take`](Self::take) when there is something to write or a close request;
    /// otherwise pending, and the next push or close wakes `cx`.
    pub fn poll_take(&self, cx: &Context<'_>) -> Poll<Taken> {
        self.with_queue(|q| {
            if q.frames.is_empty() && q.close.is_none() {
                q.wait(cx, true);
                return Poll::Pending;
            }
            q.bytes = 0;
            Poll::Ready((std::mem::take(&mut q.frames), q.close))
        })
    }

    /// The close request, if any; otherwise pending, and only a close request (not a
    /// push) wakes `cx`. For a loop that cannot write yet: frames wait in the queue.
    pub fn poll_close(&self, cx: &Context<'_>) -> Poll<CloseReason> {
        self.with_queue(|q| match q.close {
            Some(reason) => Poll::Ready(reason),
            None => {
                q.wait(cx, false);
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::task::{ArcWake, waker};

    use super::*;

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(arc: &Arc<Self>) {
            arc.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Wakes {
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn a_waiting_loop_is_woken_once_until_it_drains() {
        let outbox = Outbox::default();
        let wakes = Arc::new(Wakes::default());
        let waker = waker(wakes.clone());
        let cx = Context::from_waker(&waker);
        assert!(outbox.poll_take(&cx).is_pending());
        outbox.push(Utf8Bytes::from_static("a"));
        outbox.push_own(Utf8Bytes::from_static("b"));
        assert_eq!(wakes.count(), 1);
        let Poll::Ready((frames, close)) = outbox.poll_take(&cx) else {
            panic!("frames are waiting");
        };
        assert_eq!((frames.len(), close), (2, None));
        assert!(outbox.poll_take(&cx).is_pending());
        outbox.close(CLOSE_GOING_AWAY);
        assert_eq!(wakes.count(), 2);
        assert_eq!(
            outbox.poll_take(&cx),
            Poll::Ready((VecDeque::new(), Some(CLOSE_GOING_AWAY)))
        );
    }

    #[test]
    fn a_loop_waiting_for_a_close_is_not_woken_by_pushes() {
        let outbox = Outbox::default();
        let wakes = Arc::new(Wakes::default());
        let waker = waker(wakes.clone());
        let cx = Context::from_waker(&waker);
        assert!(outbox.poll_close(&cx).is_pending());
        for _ in 0..MAX_QUEUED_FRAMES {
            outbox.push(Utf8Bytes::from_static("x"));
        }
        assert_eq!(wakes.count(), 0);
        outbox.push(Utf8Bytes::from_static("one too many"));
        assert_eq!(wakes.count(), 1, "the overflow is a close request");
        assert_eq!(outbox.poll_close(&cx), Poll::Ready(CLOSE_SLOW_CONSUMER));
    }

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
