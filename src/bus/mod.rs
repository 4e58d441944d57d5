//! The bus carries what every node must hear about after a commit: room events (with
//! their seq), read-marker moves, and deactivated users; and what nodes tell each other
//! of their sockets: typing and presence. The real-time gateway subscribes
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
    /// A user's first connection on `node` subscribed to a room (`online`), or their last
    /// one there ended. Presence is the union over nodes.
    Presence {
        node: u64,
        room_id: i64,
        user_id: i64,
        username: String,
        online: bool,
    },
    /// Everything `node` holds online, replacing what others knew of it. With `ask`,
    /// every other node answers with its own (a node that starts or reconnects to the
    /// bus has missed the others' changes).
    PresenceSnapshot {
        node: u64,
        online: Vec<PresenceEntry>,
        ask: bool,
    },
    /// `node` is alive; a node unheard of for a while is gone, and so is its presence.
    NodeAlive { node: u64 },
    /// The bus reconnected: notices may have been lost meanwhile, so every room's
    /// events are checked against the store. Never sent to other nodes.
    Resync,
}

/// One user online in one room, in a [`Notice::PresenceSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    pub room_id: i64,
    pub user_id: i64,
    pub username: String,
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
