//! The bus carries what every node must hear about after a commit: room events (with
//! their seq), read-marker moves, and deactivated users. The real-time gateway subscribes
//! to it and fans out to sockets; the service publishes to it and never talks to sockets.
//!
//! [`LocalBus`] serves a single node in-process; [`NatsBus`] joins a cluster of nodes
//! through a NATS server. Depends on `domain` only.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::domain::event::RoomEvent;

mod local;
mod nats;

pub use local::LocalBus;
pub use nats::NatsBus;

/// One thing that happened, for every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// A subscriber started or stopped typing in a room.
    Typing {
        room_id: i64,
        user_id: i64,
        username: String,
        typing: bool,
    },
    /// The bus reconnected: notices may have been lost meanwhile, so every room's
    /// events are checked against the store. Never sent to other nodes.
    Resync,
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
