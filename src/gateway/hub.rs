//! The hub owns every subscription on this node and fans room events out to them.
//!
//! Ordering is the hub's job. Events reach it from the bus in publish order, which can
//! differ from commit order (two writers commit 5 then 6 but publish 6 then 5), and a
//! publish can be lost (a request cancelled between commit and publish, a lagging bus).
//! So each room keeps a [`SeqOrder`]: the seq it must deliver next, with later events
//! waiting until the gap closes; a gap that stays open is filled from the store.
//! Subscribers therefore see each room's events in seq order, without gaps.
//!
//! A new subscriber starts `Replaying`: live events are buffered for it while its
//! session replays the store's events up to `covered`; then `replay_done` sends
//! `subscribed` and the buffered events after `covered`, and it is `Live`. When replays
//! overlap, the first to end decides where the room starts delivering (its `covered`),
//! and the events up to there are never delivered live: a replay that covered less is
//! told to replay further before it goes live. Each event is serialised once; every
//! recipient gets a clone of the same bytes.
//!
//! Presence is a user's union over the cluster's nodes: the hub tells the bus when a
//! user's first subscription to a room on this node starts or their last one ends, keeps
//! what other nodes told it, and shows a change only when the union changes. Nodes send
//! a heartbeat; one unheard of for [`NODE_TIMEOUT`] has died and its presence is dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;

use super::outbox::{CLOSE_DEACTIVATED, CloseReason, Outbox};
use super::protocol::{self, UserRef};
use crate::bus::{Bus, Notice, PresenceEntry};
use crate::domain::event::{EventKind, RoomEvent};

pub type ConnId = u64;

/// What a subscription is to do when its replay has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ReplayDone {
    /// It is live (or gone: unsubscribed, disconnected or the room deleted meanwhile).
    Live,
    /// The room never delivers events up to this seq live: replay them too, then call
    /// `replay_done` again with it.
    Behind(i64),
}

/// How long a room's gap may stay open before the store fills it.
const GAP_PATIENCE: Duration = Duration::from_millis(200);
/// The server ends a `typing: true` this long after the last one.
pub const TYPING_TIMEOUT: Duration = Duration::from_secs(6);
/// Events fetched per gap fill.
const FILL_BATCH: i64 = 500;
/// How often a node tells the others it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node unheard of this long is gone (three heartbeats missed).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(15);

/// One room event, serialised once, with what delivering it changes.
struct Delivery {
    seq: i64,
    frame: Utf8Bytes,
    effect: Effect,
}

enum Effect {
    None,
    /// A member left: in a private room their subscriptions end with this event.
    MemberLeft {
        user_id: i64,
    },
    /// The room is gone: every subscription ends with this event.
    RoomDeleted,
}

enum SubState {
    Replaying(Vec<Arc<Delivery>>),
    Live,
}

struct Subscriber {
    user_id: i64,
    outbox: Arc<Outbox>,
    state: SubState,
    /// Events up to this seq were replayed to it and are not delivered again.
    covered: i64,
}

/// One room's events put back in seq order. Nothing is released before `start`; from
/// then on each seq is released exactly once, in order, and a seq that arrives early
/// waits until every seq before it has been released.
struct SeqOrder<T> {
    /// The seq `start` released from, less one.
    started_after: Option<i64>,
    /// The seq to release next, once started.
    next: Option<i64>,
    waiting: BTreeMap<i64, T>,
}

impl<T> Default for SeqOrder<T> {
    fn default() -> Self {
        Self {
            started_after: None,
            next: None,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> SeqOrder<T> {
    /// Already released or waiting: a later copy is a duplicate.
    fn is_known(&self, seq: i64) -> bool {
        self.next.is_some_and(|next| seq < next) || self.waiting.contains_key(&seq)
    }

    /// Keeps `item` until its turn; a duplicate is dropped.
    fn offer(&mut self, seq: i64, item: T) {
        if !self.is_known(seq) {
            self.waiting.insert(seq, item);
        }
    }

    /// Releases from `covered + 1` on (what waits up to `covered` was replayed instead).
    /// False when it had already started.
    fn start(&mut self, covered: i64) -> bool {
        if self.next.is_some() {
            return false;
        }
        self.started_after = Some(covered);
        self.next = Some(covered + 1);
        self.waiting = self.waiting.split_off(&(covered + 1));
        true
    }

    /// Where `start` began: seqs up to it are never released.
    fn started_after(&self) -> Option<i64> {
        self.started_after
    }

    fn next(&self) -> Option<i64> {
        self.next
    }

    /// The next item in line, when it has arrived.
    fn release(&mut self) -> Option<T> {
        let next = self.next?;
        let item = self.waiting.remove(&next)?;
        self.next = Some(next + 1);
        Some(item)
    }

    /// The lowest seq waiting behind a gap.
    fn first_waiting(&self) -> Option<i64> {
        self.waiting.keys().next().copied()
    }
}

#[derive(Default)]
struct RoomState {
    is_private: bool,
    order: SeqOrder<Arc<Delivery>>,
    gap_since: Option<Instant>,
    /// Events may have been missed (the bus lagged): fill from the store.
    stale: bool,
    filling: bool,
    subscribers: HashMap<ConnId, Subscriber>,
    /// Users with a live subscription here, and how many.
    online: HashMap<i64, (UserRef, usize)>,
    /// Users typing here, until when.
    typing: HashMap<i64, (UserRef, Instant)>,
}

struct Conn {
    user: UserRef,
    outbox: Arc<Outbox>,
    rooms: Vec<i64>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<i64, RoomState>,
    conns: HashMap<ConnId, Conn>,
    users: HashMap<i64, Vec<ConnId>>,
    remote: RemotePresence,
    last_heartbeat: Option<Instant>,
}

/// Who is online through other nodes, as their presence notices said.
#[derive(Default)]
struct RemotePresence {
    /// room → user → the user, and the other nodes where they are subscribed to it.
    rooms: HashMap<i64, HashMap<i64, (UserRef, HashSet<u64>)>>,
    /// When each other node was last heard from.
    heard: HashMap<u64, Instant>,
}

impl RemotePresence {
    fn is_online(&self, room_id: i64, user_id: i64) -> bool {
        self.rooms
            .get(&room_id)
            .is_some_and(|users| users.contains_key(&user_id))
    }

    fn users(&self, room_id: i64) -> impl Iterator<Item = &UserRef> {
        self.rooms
            .get(&room_id)
            .into_iter()
            .flat_map(|users| users.values().map(|(user, _)| user))
    }

    /// True when the user was online in the room on no other node before.
    fn add(&mut self, node: u64, room_id: i64, user: UserRef) -> bool {
        let users = self.rooms.entry(room_id).or_default();
        let (_, nodes) = users
            .entry(user.id)
            .or_insert_with(|| (user, HashSet::new()));
        nodes.insert(node) && nodes.len() == 1
    }

    /// The user, when they are now online in the room on no other node.
    fn remove(&mut self, node: u64, room_id: i64, user_id: i64) -> Option<UserRef> {
        let users = self.rooms.get_mut(&room_id)?;
        let (_, nodes) = users.get_mut(&user_id)?;
        if !nodes.remove(&node) || !nodes.is_empty() {
            return None;
        }
        let (user, _) = users.remove(&user_id)?;
        if users.is_empty() {
            self.rooms.remove(&room_id);
        }
        Some(user)
    }

    /// Forgets everything `node` held, returning the (room, user) pairs now offline.
    fn forget(&mut self, node: u64) -> Vec<(i64, UserRef)> {
        let held: Vec<(i64, i64)> = self
            .rooms
            .iter()
            .flat_map(|(room_id, users)| {
                users
                    .iter()
                    .filter(|(_, (_, nodes))| nodes.contains(&node))
                    .map(|(user_id, _)| (*room_id, *user_id))
            })
            .collect();
        held.into_iter()
            .filter_map(|(room_id, user_id)| {
                self.remove(node, room_id, user_id)
                    .map(|user| (room_id, user))
            })
            .collect()
    }
}

/// This node as the others know it: its id, and the bus it tells them through.
struct Link {
    node: u64,
    bus: Arc<dyn Bus>,
}

impl Link {
    fn presence(&self, room_id: i64, user: &UserRef, online: bool) {
        self.bus.publish(Notice::Presence {
            node: self.node,
            room_id,
            user_id: user.id,
            username: user.username.clone(),
            online,
        });
    }
}

/// A store read the hub needs: events of `room_id` after `after_seq`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub room_id: i64,
    pub after_seq: i64,
    pub limit: i64,
}

pub struct Hub {
    state: Mutex<State>,
    link: Link,
}

impl Hub {
    /// A hub whose presence changes go to other nodes through `bus`.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self {
            state: Mutex::default(),
            link: Link {
                node: rand::random(),
                bus,
            },
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn connect(&self, conn_id: ConnId, user: UserRef, outbox: Arc<Outbox>) {
        let mut state = self.state();
        state.users.entry(user.id).or_default().push(conn_id);
        state.conns.insert(
            conn_id,
            Conn {
                user,
                outbox,
                rooms: Vec::new(),
            },
        );
        metrics::gauge!("banter_ws_connections").set(state.conns.len() as f64);
    }

    pub fn disconnect(&self, conn_id: ConnId) {
        let mut state = self.state();
        let Some(conn) = state.conns.remove(&conn_id) else {
            return;
        };
        let State { rooms, remote, .. } = &mut *state;
        for room_id in &conn.rooms {
            remove_subscriber(rooms, remote, &self.link, *room_id, conn_id, &conn.user);
        }
        if let Some(conns) = state.users.get_mut(&conn.user.id) {
            conns.retain(|id| *id != conn_id);
            if conns.is_empty() {
                state.users.remove(&conn.user.id);
            }
        }
        metrics::gauge!("banter_ws_connections").set(state.conns.len() as f64);
    }

    /// Starts a subscription in the replaying state (a repeated subscribe starts over).
    pub fn subscribe(&self, conn_id: ConnId, room_id: i64) {
        let mut state = self.state();
        let State {
            rooms,
            conns,
            remote,
            ..
        } = &mut *state;
        let Some(conn) = conns.get_mut(&conn_id) else {
            return;
        };
        if conn.rooms.contains(&room_id) {
            remove_subscriber(rooms, remote, &self.link, room_id, conn_id, &conn.user);
        } else {
            conn.rooms.push(room_id);
        }
        let room = rooms.entry(room_id).or_default();
        room.subscribers.insert(
            conn_id,
            Subscriber {
                user_id: conn.user.id,
                outbox: conn.outbox.clone(),
                state: SubState::Replaying(Vec::new()),
                covered: 0,
            },
        );
    }

    /// The replay reached `covered`: sends `subscribed`, then what arrived meanwhile,
    /// and makes the subscription live; or, when the room started delivering after
    /// `covered` (another replay ended first), asks for the replay to go further.
    pub fn replay_done(
        &self,
        conn_id: ConnId,
        room_id: i64,
        covered: i64,
        is_private: bool,
    ) -> ReplayDone {
        let mut state = self.state();
        let State {
            rooms,
            conns,
            remote,
            ..
        } = &mut *state;
        let (Some(conn), Some(room)) = (conns.get(&conn_id), rooms.get_mut(&room_id)) else {
            return ReplayDone::Live;
        };
        let Some(subscriber) = room.subscribers.get_mut(&conn_id) else {
            return ReplayDone::Live;
        };
        room.is_private = is_private;
        if let Some(start) = room.order.started_after().filter(|start| covered < *start) {
            return ReplayDone::Behind(start);
        }
        let buffered = match std::mem::replace(&mut subscriber.state, SubState::Live) {
            SubState::Replaying(buffered) => buffered,
            SubState::Live => Vec::new(),
        };
        subscriber.covered = covered;
        let became_online = {
            let entry = room
                .online
                .entry(conn.user.id)
                .or_insert_with(|| (conn.user.clone(), 0));
            entry.1 += 1;
            entry.1 == 1
        };
        let mut online: Vec<UserRef> = room.online.values().map(|(user, _)| user.clone()).collect();
        online.extend(
            remote
                .users(room_id)
                .filter(|user| !room.online.contains_key(&user.id))
                .cloned(),
        );
        conn.outbox
            .push_own(protocol::subscribed(room_id, covered, &online));
        for delivery in buffered.iter().filter(|d| d.seq > covered) {
            conn.outbox.push(delivery.frame.clone());
        }
        if became_online {
            self.link.presence(room_id, &conn.user, true);
            if !remote.is_online(room_id, conn.user.id) {
                let frame = protocol::presence(room_id, &conn.user, true);
                broadcast(room, &frame, |id, _| id != conn_id);
            }
        }
        if room.order.start(covered) {
            drain(rooms, conns, remote, &self.link, room_id);
        }
        ReplayDone::Live
    }

    pub fn unsubscribe(&self, conn_id: ConnId, room_id: i64) {
        let mut state = self.state();
        let State {
            rooms,
            conns,
            remote,
            ..
        } = &mut *state;
        let Some(conn) = conns.get_mut(&conn_id) else {
            return;
        };
        conn.rooms.retain(|id| *id != room_id);
        remove_subscriber(rooms, remote, &self.link, room_id, conn_id, &conn.user);
    }

    /// The connection's user, when it is subscribed to the room (and so may type there).
    pub fn subscriber(&self, conn_id: ConnId, room_id: i64) -> Option<UserRef> {
        let state = self.state();
        let subscribed = state
            .rooms
            .get(&room_id)
            .is_some_and(|room| room.subscribers.contains_key(&conn_id));
        subscribed
            .then(|| state.conns.get(&conn_id).map(|conn| conn.user.clone()))
            .flatten()
    }

    /// A user's typing state from any node: changes are shown to the room's other
    /// subscribers, and a `true` lasts `TYPING_TIMEOUT` unless renewed.
    fn apply_typing(&self, room_id: i64, user: UserRef, typing: bool) {
        let mut state = self.state();
        let Some(room) = state.rooms.get_mut(&room_id) else {
            return;
        };
        let changed = if typing {
            room.typing
                .insert(user.id, (user.clone(), Instant::now() + TYPING_TIMEOUT))
                .is_none()
        } else {
            room.typing.remove(&user.id).is_some()
        };
        if changed {
            let frame = protocol::typing(room_id, &user, typing);
            broadcast(room, &frame, |_, subscriber| subscriber.user_id != user.id);
        }
    }

    /// Handles a notice from the bus.
    pub fn publish(&self, notice: &Notice) {
        match notice {
            Notice::Room(event) => self.accept(event),
            Notice::ReadMarker {
                user_id,
                room_id,
                seq,
            } => {
                let state = self.state();
                let frame = protocol::read(*room_id, *seq);
                for conn in user_conns(&state, *user_id) {
                    conn.outbox.push(frame.clone());
                }
            }
            Notice::UserDeactivated { user_id } => self.close_user(*user_id, CLOSE_DEACTIVATED),
            Notice::Typing {
                room_id,
                user_id,
                username,
                typing,
            } => self.apply_typing(
                *room_id,
                UserRef {
                    id: *user_id,
                    username: username.clone(),
                },
                *typing,
            ),
            Notice::Presence {
                node,
                room_id,
                user_id,
                username,
                online,
            } if *node != self.link.node => {
                let user = UserRef {
                    id: *user_id,
                    username: username.clone(),
                };
                self.apply_remote_presence(*node, *room_id, user, *online);
            }
            Notice::PresenceSnapshot { node, online, ask } if *node != self.link.node => {
                self.apply_snapshot(*node, online);
                if *ask {
                    self.announce(false);
                }
            }
            Notice::NodeAlive { node } if *node != self.link.node => {
                self.state().remote.heard.insert(*node, Instant::now());
            }
            Notice::Presence { .. }
            | Notice::PresenceSnapshot { .. }
            | Notice::NodeAlive { .. } => {}
            Notice::Resync => {
                self.mark_all_stale();
                self.announce(true);
            }
        }
    }

    /// Tells the other nodes everything online here; with `ask`, they answer in kind.
    pub fn announce(&self, ask: bool) {
        let online: Vec<PresenceEntry> = self
            .state()
            .rooms
            .iter()
            .flat_map(|(room_id, room)| {
                room.online.values().map(|(user, _)| PresenceEntry {
                    room_id: *room_id,
                    user_id: user.id,
                    username: user.username.clone(),
                })
            })
            .collect();
        self.link.bus.publish(Notice::PresenceSnapshot {
            node: self.link.node,
            online,
            ask,
        });
    }

    fn apply_remote_presence(&self, node: u64, room_id: i64, user: UserRef, online: bool) {
        let mut state = self.state();
        let State { rooms, remote, .. } = &mut *state;
        remote.heard.insert(node, Instant::now());
        if online {
            if remote.add(node, room_id, user.clone()) {
                show_remote_change(rooms, room_id, &user, true);
            }
        } else if let Some(user) = remote.remove(node, room_id, user.id) {
            show_remote_change(rooms, room_id, &user, false);
        }
    }

    /// Replaces what `node` holds online with `entries`, showing what changed.
    fn apply_snapshot(&self, node: u64, entries: &[PresenceEntry]) {
        let mut state = self.state();
        let State { rooms, remote, .. } = &mut *state;
        remote.heard.insert(node, Instant::now());
        let gone = remote.forget(node);
        let mut came = Vec::new();
        for entry in entries {
            let user = UserRef {
                id: entry.user_id,
                username: entry.username.clone(),
            };
            if remote.add(node, entry.room_id, user.clone()) {
                came.push((entry.room_id, user));
            }
        }
        let was_online: HashSet<(i64, i64)> = gone
            .iter()
            .map(|(room_id, user)| (*room_id, user.id))
            .collect();
        for (room_id, user) in &gone {
            if !remote.is_online(*room_id, user.id) {
                show_remote_change(rooms, *room_id, user, false);
            }
        }
        for (room_id, user) in came {
            if !was_online.contains(&(room_id, user.id)) {
                show_remote_change(rooms, room_id, &user, true);
            }
        }
    }

    /// Delivers a committed room event in seq order.
    pub fn accept(&self, event: &RoomEvent) {
        let mut state = self.state();
        let State {
            rooms,
            conns,
            remote,
            ..
        } = &mut *state;
        let Some(room) = rooms.get_mut(&event.room_id) else {
            return;
        };
        if room.order.is_known(event.seq) {
            return;
        }
        let effect = match &event.kind {
            EventKind::MemberLeft { user } => Effect::MemberLeft { user_id: user.id },
            EventKind::RoomDeleted {} => Effect::RoomDeleted,
            _ => Effect::None,
        };
        let frame = match serde_json::to_string(event) {
            Ok(json) => Utf8Bytes::from(json),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise a room event");
                return;
            }
        };
        room.order.offer(
            event.seq,
            Arc::new(Delivery {
                seq: event.seq,
                frame,
                effect,
            }),
        );
        if room.order.next().is_some() {
            let started = Instant::now();
            drain(rooms, conns, remote, &self.link, event.room_id);
            metrics::histogram!("banter_fanout_seconds").record(started.elapsed().as_secs_f64());
        }
    }

    pub fn close_user(&self, user_id: i64, reason: CloseReason) {
        let state = self.state();
        for conn in user_conns(&state, user_id) {
            conn.outbox.close(reason);
        }
    }

    pub fn close_all(&self, reason: CloseReason) {
        let state = self.state();
        for conn in state.conns.values() {
            conn.outbox.close(reason);
        }
    }

    /// The bus dropped notices: every room may have missed events.
    pub fn mark_all_stale(&self) {
        for room in self.state().rooms.values_mut() {
            room.stale = true;
        }
    }

    /// Periodic work: ends expired typing, keeps the cluster's presence current
    /// (heartbeats out, dead nodes' presence dropped), and returns the store reads that
    /// gaps need.
    pub fn tick(&self, now: Instant) -> Vec<Fill> {
        let mut state = self.state();
        let State {
            rooms,
            remote,
            last_heartbeat,
            ..
        } = &mut *state;
        if last_heartbeat.is_none_or(|last| now.duration_since(last) >= HEARTBEAT) {
            *last_heartbeat = Some(now);
            self.link.bus.publish(Notice::NodeAlive {
                node: self.link.node,
            });
        }
        let dead: Vec<u64> = remote
            .heard
            .iter()
            .filter(|(_, heard)| now.duration_since(**heard) >= NODE_TIMEOUT)
            .map(|(node, _)| *node)
            .collect();
        for node in dead {
            remote.heard.remove(&node);
            let gone = remote.forget(node);
            tracing::warn!(
                node = format!("{node:016x}"),
                users = gone.len(),
                "a cluster node went silent; its presence is dropped"
            );
            for (room_id, user) in gone {
                show_remote_change(rooms, room_id, &user, false);
            }
        }
        let mut fills = Vec::new();
        for (room_id, room) in rooms.iter_mut() {
            let expired: Vec<UserRef> = room
                .typing
                .values()
                .filter(|(_, deadline)| *deadline <= now)
                .map(|(user, _)| user.clone())
                .collect();
            for user in expired {
                room.typing.remove(&user.id);
                let frame = protocol::typing(*room_id, &user, false);
                broadcast(room, &frame, |_, subscriber| subscriber.user_id != user.id);
            }
            let Some(next) = room.order.next() else {
                continue;
            };
            let gap_open = room
                .gap_since
                .is_some_and(|since| now.duration_since(since) >= GAP_PATIENCE);
            if (gap_open || room.stale) && !room.filling {
                room.filling = true;
                let limit = room
                    .order
                    .first_waiting()
                    .map_or(FILL_BATCH, |first| (first - next).clamp(1, FILL_BATCH));
                fills.push(Fill {
                    room_id: *room_id,
                    after_seq: next - 1,
                    limit,
                });
            }
        }
        fills
    }

    /// A fill finished with `fetched` events: the room stays stale while fills come back full.
    pub fn fill_done(&self, fill: Fill, fetched: usize) {
        if let Some(room) = self.state().rooms.get_mut(&fill.room_id) {
            room.filling = false;
            room.stale = room.stale && fetched as i64 >= fill.limit;
            if room.gap_since.is_some() {
                room.gap_since = Some(Instant::now());
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.state().conns.len()
    }
}

fn user_conns(state: &State, user_id: i64) -> impl Iterator<Item = &Conn> {
    state
        .users
        .get(&user_id)
        .into_iter()
        .flatten()
        .filter_map(|id| state.conns.get(id))
}

/// Sends an ephemeral frame (typing, presence) to the room's live subscribers that `to` picks.
fn broadcast(room: &RoomState, frame: &Utf8Bytes, to: impl Fn(ConnId, &Subscriber) -> bool) {
    for (id, subscriber) in &room.subscribers {
        if matches!(subscriber.state, SubState::Live) && to(*id, subscriber) {
            subscriber.outbox.push(frame.clone());
        }
    }
}

/// Delivers every pending event that is next in line.
fn drain(
    rooms: &mut HashMap<i64, RoomState>,
    conns: &mut HashMap<ConnId, Conn>,
    remote: &RemotePresence,
    link: &Link,
    room_id: i64,
) {
    loop {
        let Some(room) = rooms.get_mut(&room_id) else {
            return;
        };
        if room.order.next().is_none() {
            return;
        }
        let Some(delivery) = room.order.release() else {
            room.gap_since = match room.order.first_waiting() {
                None => None,
                Some(_) => room.gap_since.or(Some(Instant::now())),
            };
            return;
        };
        let mut delivered = 0u64;
        for subscriber in room.subscribers.values_mut() {
            if delivery.seq <= subscriber.covered {
                continue;
            }
            match &mut subscriber.state {
                SubState::Replaying(buffer) => buffer.push(delivery.clone()),
                SubState::Live => {
                    subscriber.outbox.push(delivery.frame.clone());
                    delivered += 1;
                }
            }
        }
        metrics::counter!("banter_ws_deliveries_total").increment(delivered);
        match delivery.effect {
            Effect::None => {}
            Effect::MemberLeft { user_id } if room.is_private => {
                let leaving: Vec<ConnId> = room
                    .subscribers
                    .iter()
                    .filter(|(_, s)| s.user_id == user_id)
                    .map(|(id, _)| *id)
                    .collect();
                for conn_id in leaving {
                    if let Some(conn) = conns.get_mut(&conn_id) {
                        conn.rooms.retain(|id| *id != room_id);
                        let user = conn.user.clone();
                        remove_subscriber(rooms, remote, link, room_id, conn_id, &user);
                    }
                }
            }
            Effect::MemberLeft { .. } => {}
            Effect::RoomDeleted => {
                if let Some(room) = rooms.remove(&room_id) {
                    for (user, _) in room.online.values() {
                        link.presence(room_id, user, false);
                    }
                    for conn_id in room.subscribers.keys() {
                        if let Some(conn) = conns.get_mut(conn_id) {
                            conn.rooms.retain(|id| *id != room_id);
                        }
                    }
                }
                return;
            }
        }
    }
}

/// Ends one subscription: presence and typing follow, and an empty room is forgotten.
fn remove_subscriber(
    rooms: &mut HashMap<i64, RoomState>,
    remote: &RemotePresence,
    link: &Link,
    room_id: i64,
    conn_id: ConnId,
    user: &UserRef,
) {
    let Some(room) = rooms.get_mut(&room_id) else {
        return;
    };
    let Some(subscriber) = room.subscribers.remove(&conn_id) else {
        return;
    };
    if matches!(subscriber.state, SubState::Live) {
        let went_offline = match room.online.get_mut(&user.id) {
            Some(entry) => {
                entry.1 -= 1;
                entry.1 == 0
            }
            None => false,
        };
        if went_offline {
            room.online.remove(&user.id);
            link.presence(room_id, user, false);
            if room.typing.remove(&user.id).is_some() {
                broadcast(room, &protocol::typing(room_id, user, false), |_, _| true);
            }
            if !remote.is_online(room_id, user.id) {
                broadcast(room, &protocol::presence(room_id, user, false), |_, _| true);
            }
        }
    }
    if room.subscribers.is_empty() {
        rooms.remove(&room_id);
    }
}

/// Shows this node's subscribers a change in another node's presence, unless the user is
/// online here too (then nothing changed for the room).
fn show_remote_change(
    rooms: &mut HashMap<i64, RoomState>,
    room_id: i64,
    user: &UserRef,
    online: bool,
) {
    let Some(room) = rooms.get_mut(&room_id) else {
        return;
    };
    if room.online.contains_key(&user.id) {
        return;
    }
    if !online && room.typing.remove(&user.id).is_some() {
        broadcast(room, &protocol::typing(room_id, user, false), |_, _| true);
    }
    broadcast(room, &protocol::presence(room_id, user, online), |_, _| {
        true
    });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tokio::sync::broadcast;

    use super::*;
    use crate::bus::LocalBus;

    /// Nodes of a cluster sharing one bus; `pump` hands every notice to every node, as
    /// the gateway's listener does.
    struct Cluster {
        bus: Arc<dyn Bus>,
        notices: broadcast::Receiver<Arc<Notice>>,
        nodes: Vec<Hub>,
    }

    impl Cluster {
        fn new(size: usize) -> Self {
            let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(1024));
            let notices = bus.subscribe();
            let nodes = (0..size).map(|_| Hub::new(bus.clone())).collect();
            Self {
                bus,
                notices,
                nodes,
            }
        }

        fn pump(&mut self) {
            while let Ok(notice) = self.notices.try_recv() {
                for node in &self.nodes {
                    node.publish(&notice);
                }
            }
        }

        fn join(
            &mut self,
            node: usize,
            conn_id: ConnId,
            user_id: i64,
            room_id: i64,
        ) -> Arc<Outbox> {
            let outbox = Arc::new(Outbox::default());
            let hub = &self.nodes[node];
            let user = UserRef {
                id: user_id,
                username: format!("user{user_id}"),
            };
            hub.connect(conn_id, user, outbox.clone());
            hub.subscribe(conn_id, room_id);
            assert_eq!(
                hub.replay_done(conn_id, room_id, 0, false),
                ReplayDone::Live
            );
            self.pump();
            outbox
        }
    }

    fn frames(outbox: &Outbox, kind: &str) -> Vec<Value> {
        let (frames, _) = outbox.take();
        frames
            .iter()
            .map(|frame| serde_json::from_str::<Value>(frame.as_str()).expect("frames are JSON"))
            .filter(|frame| frame["type"] == kind)
            .collect()
    }

    fn online_ids(subscribed: &Value) -> Vec<i64> {
        let mut ids: Vec<i64> = subscribed["online"]
            .as_array()
            .expect("an online list")
            .iter()
            .map(|user| user["id"].as_i64().expect("a user id"))
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn presence_is_the_union_over_nodes() {
        let mut cluster = Cluster::new(2);
        let alice_a = cluster.join(0, 1, 100, 7);
        let bob_b = cluster.join(1, 2, 200, 7);

        let subscribed = frames(&bob_b, "subscribed");
        assert_eq!(
            online_ids(&subscribed[0]),
            vec![100, 200],
            "the list spans nodes"
        );
        let seen = frames(&alice_a, "presence");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0]["user"]["id"].as_i64(), seen[0]["online"].as_bool()),
            (Some(200), Some(true))
        );

        // Alice opens a second connection on node B: still one user online, no frame.
        let alice_b = cluster.join(1, 3, 100, 7);
        assert!(
            frames(&bob_b, "presence").is_empty(),
            "already online through node A"
        );
        assert_eq!(
            online_ids(&frames(&alice_b, "subscribed")[0]),
            vec![100, 200]
        );

        // Her node A connection ends: she is still online through B.
        cluster.nodes[0].disconnect(1);
        cluster.pump();
        assert!(frames(&bob_b, "presence").is_empty());

        // And when the node B one ends too, she is offline everywhere.
        cluster.nodes[1].disconnect(3);
        cluster.pump();
        let seen = frames(&bob_b, "presence");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0]["user"]["id"].as_i64(), seen[0]["online"].as_bool()),
            (Some(100), Some(false))
        );
    }

    #[test]
    fn a_silent_node_takes_its_presence_with_it() {
        let mut cluster = Cluster::new(2);
        cluster.join(0, 1, 100, 7);
        let bob_b = cluster.join(1, 2, 200, 7);
        frames(&bob_b, "presence");

        let now = Instant::now();
        assert!(cluster.nodes[1].tick(now + NODE_TIMEOUT / 2).is_empty());
        assert!(
            frames(&bob_b, "presence").is_empty(),
            "not silent for long enough"
        );

        cluster.nodes[1].tick(now + NODE_TIMEOUT + Duration::from_secs(1));
        let seen = frames(&bob_b, "presence");
        assert_eq!(seen.len(), 1, "node A's user goes offline: {seen:?}");
        assert_eq!(
            (seen[0]["user"]["id"].as_i64(), seen[0]["online"].as_bool()),
            (Some(100), Some(false))
        );
    }

    #[test]
    fn a_node_beats_once_per_heartbeat_and_others_hear_it() {
        let mut cluster = Cluster::new(2);
        let mut heard = cluster.bus.subscribe();
        let start = Instant::now();
        for offset in [0, 1, 2, 4, 5, 6, 9, 10] {
            cluster.nodes[0].tick(start + Duration::from_secs(offset));
        }
        let mut beats = 0;
        while let Ok(notice) = heard.try_recv() {
            beats += usize::from(matches!(*notice, Notice::NodeAlive { .. }));
        }
        assert_eq!(beats, 3, "at 0, 5 and 10 s");
        cluster.pump();
        let node_a = cluster.nodes[0].link.node;
        assert!(cluster.nodes[1].state().remote.heard.contains_key(&node_a));
        assert!(
            !cluster.nodes[0].state().remote.heard.contains_key(&node_a),
            "a node ignores itself"
        );
    }

    #[test]
    fn a_new_node_learns_presence_by_asking() {
        let mut cluster = Cluster::new(2);
        cluster.join(0, 1, 100, 7);
        cluster.join(1, 2, 200, 7);
        cluster.nodes.push(Hub::new(cluster.bus.clone()));
        cluster.nodes[2].announce(true);
        cluster.pump();
        let carol_c = cluster.join(2, 3, 300, 7);
        assert_eq!(
            online_ids(&frames(&carol_c, "subscribed")[0]),
            vec![100, 200, 300]
        );
    }
}

#[cfg(test)]
mod seq_order_properties {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::SeqOrder;

    /// Seqs 1..=n arriving in any order, some more than once, and when the replay ends:
    /// `(n, arrivals, start_at, covered)`, the replay covering 1..=covered and ending before
    /// arrival `start_at`.
    fn arrivals() -> impl Strategy<Value = (i64, Vec<i64>, usize, i64)> {
        (1i64..80)
            .prop_flat_map(|n| {
                let order = Just((1..=n).collect::<Vec<i64>>()).prop_shuffle();
                let duplicates = prop::collection::vec((1..=n, any::<Index>()), 0..n as usize);
                (Just(n), order, duplicates, any::<Index>(), 0..=n)
            })
            .prop_map(|(n, mut arrivals, duplicates, start, covered)| {
                for (seq, at) in duplicates {
                    let at = at.index(arrivals.len() + 1);
                    arrivals.insert(at, seq);
                }
                let start_at = start.index(arrivals.len() + 1);
                (n, arrivals, start_at, covered)
            })
    }

    fn release_all(order: &mut SeqOrder<i64>, released: &mut Vec<i64>) {
        while let Some(seq) = order.release() {
            released.push(seq);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn releases_each_seq_once_in_order((n, arrivals, start_at, covered) in arrivals()) {
            let mut order = SeqOrder::default();
            let mut released = Vec::new();
            for (i, seq) in arrivals.iter().enumerate() {
                if i == start_at {
                    prop_assert!(order.start(covered));
                }
                order.offer(*seq, *seq);
                release_all(&mut order, &mut released);
                if i < start_at {
                    prop_assert!(released.is_empty(), "released before the replay ended");
                } else {
                    // Nothing that could go out is held back.
                    prop_assert_ne!(order.first_waiting(), order.next());
                }
            }
            if start_at == arrivals.len() {
                prop_assert!(order.start(covered));
                release_all(&mut order, &mut released);
            }
            prop_assert!(!order.start(0), "a second start must not rewind");
            prop_assert_eq!(released, (covered + 1..=n).collect::<Vec<_>>());
            prop_assert_eq!(order.first_waiting(), None);
            prop_assert_eq!(order.next(), Some(n + 1));
        }
    }
}
