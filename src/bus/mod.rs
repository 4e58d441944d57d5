//! The bus carries what every node must hear about after a commit: room events (with
//! their seq), read-marker moves, and deactivated users. The real-time gateway subscribes
//! to it and fans out to sockets; the service publishes to it and never talks to sockets.
//!
//! [`LocalBus`] serves a single node in-process. A cluster implementation (NATS) plugs in
//! behind the same trait. Depends on `domain` only.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::event::RoomEvent;

mod local;

pub use local::LocalBus;

/// One thing that happened, for every node.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A committed room event.
    Room(RoomEvent),
    /// A user's read marker moved; their other sessions show it.
    ReadMarker {
        user_id: i64,
        room_id: i64,
        seq: i64,
    },
    /// A user was deactivated: their sockets close at once.
    UserDeactivated { user_id: i64 },
}

pub trait Bus: Send + Sync + 'static {
    /// Hands a notice to every subscriber on every node. Never waits for a receiver.
    fn publish(&self, notice: Notice);
    /// A stream of every notice published after this call. A receiver that falls more
    /// than the bus's capacity behind gets `Lagged` and must recover from the store.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>>;
    /// True while the bus can deliver (always, for the in-process bus).
    fn is_connected(&self) -> bool;
}
