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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;

use super::outbox::{CLOSE_DEACTIVATED, CloseReason, Outbox};
use super::protocol::{self, UserRef};
use crate::bus::Notice;
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
}

/// A store read the hub needs: events of `room_id` after `after_seq`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub room_id: i64,
    pub after_seq: i64,
    pub limit: i64,
}

#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
}

impl Hub {
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
        for room_id in &conn.rooms {
            remove_subscriber(&mut state.rooms, *room_id, conn_id, &conn.user);
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
        let State { rooms, conns, .. } = &mut *state;
        let Some(conn) = conns.get_mut(&conn_id) else {
            return;
        };
        if conn.rooms.contains(&room_id) {
            remove_subscriber(rooms, room_id, conn_id, &conn.user);
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
        let State { rooms, conns, .. } = &mut *state;
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
        let online: Vec<UserRef> = room.online.values().map(|(user, _)| user.clone()).collect();
        conn.outbox
            .push_own(protocol::subscribed(room_id, covered, &online));
        for delivery in buffered.iter().filter(|d| d.seq > covered) {
            conn.outbox.push(delivery.frame.clone());
        }
        if became_online {
            let frame = protocol::presence(room_id, &conn.user, true);
            broadcast(room, &frame, |id, _| id != conn_id);
        }
        if room.order.start(covered) {
            drain(rooms, conns, room_id);
        }
        ReplayDone::Live
    }

    pub fn unsubscribe(&self, conn_id: ConnId, room_id: i64) {
        let mut state = self.state();
        let State { rooms, conns, .. } = &mut *state;
        let Some(conn) = conns.get_mut(&conn_id) else {
            return;
        };
        conn.rooms.retain(|id| *id != room_id);
        remove_subscriber(rooms, room_id, conn_id, &conn.user);
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
            Notice::Resync => self.mark_all_stale(),
        }
    }

    /// Delivers a committed room event in seq order.
    pub fn accept(&self, event: &RoomEvent) {
        let mut state = self.state();
        let State { rooms, conns, .. } = &mut *state;
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
            drain(rooms, conns, event.room_id);
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

    /// Periodic work: ends expired typing, and returns the store reads that gaps need.
    pub fn tick(&self, now: Instant) -> Vec<Fill> {
        let mut state = self.state();
        let mut fills = Vec::new();
        for (room_id, room) in state.rooms.iter_mut() {
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
fn drain(rooms: &mut HashMap<i64, RoomState>, conns: &mut HashMap<ConnId, Conn>, room_id: i64) {
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
                        remove_subscriber(rooms, room_id, conn_id, &user);
                    }
                }
            }
            Effect::MemberLeft { .. } => {}
            Effect::RoomDeleted => {
                if let Some(room) = rooms.remove(&room_id) {
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
            if room.typing.remove(&user.id).is_some() {
                broadcast(room, &protocol::typing(room_id, user, false), |_, _| true);
            }
            broadcast(room, &protocol::presence(room_id, user, false), |_, _| true);
        }
    }
    if room.subscribers.is_empty() {
        rooms.remove(&room_id);
    }
}

#[cfg(test)]
mod tests {
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
