//! The decisions of a send batch that do not touch the database: who may post, which
//! `client_id`s answer with an earlier message, which messages are new, the seq each new
//! message takes and the outcome each sender gets. Both ways of writing a batch
//! (PostgreSQL's array statements in `postgres.rs`, and SQLite's direct path in
//! [`super::sqlite_batch`]) read and write through their own connection and leave every
//! decision to [`BatchPlan`], so the two cannot disagree; a message stored on its own is
//! a batch of one.
//!
//! Depends on `domain` and the store's own types only.

use std::collections::{BTreeMap, HashMap};

use crate::domain::event::{EventKind, RoomEvent};
use crate::domain::model::{Author, Message};
use crate::domain::rules::{Access, Denied, PostMode};

use super::rows::parse_role;
use super::{NewMessage, PostOutcome, StoreError, StoreResult};

/// Why a batch was not stored; none of it was.
#[derive(Debug)]
pub enum BatchError {
    /// A statement failed: each message may still be stored on its own.
    Statement(StoreError),
    /// The transaction could not begin or commit: storing the messages one at a time
    /// would fail the same way.
    Transaction(StoreError),
}

/// (room, user) → the user's standing in the room, and their username. A pair whose room
/// does not exist has no entry.
pub type Standings = HashMap<(i64, i64), (Access, String)>;

/// A standing as the database reads it: room id, user id, the room's `is_private` and
/// `is_direct`, the user's role there (`None`: not a member) and their username.
pub type StandingRow = (i64, i64, bool, bool, Option<String>, String);

/// Standings from the rows read for them.
pub fn standings_from(rows: impl IntoIterator<Item = StandingRow>) -> StoreResult<Standings> {
    let mut standings = Standings::new();
    for (room_id, user_id, is_private, is_direct, role, username) in rows {
        let role = role.as_deref().map(parse_role).transpose()?;
        let access = Access {
            is_private,
            is_direct,
            role,
            is_server_admin: false,
        };
        standings.insert((room_id, user_id), (access, username));
    }
    Ok(standings)
}

/// The domain's posting rule for one message, given the standings read for it (the
/// server-admin flag is the message's own).
fn may_post(standings: &Standings, new: &NewMessage) -> Result<PostMode, Denied> {
    let (standing, _) = standings
        .get(&(new.room_id, new.author_id))
        .ok_or(Denied::NotFound)?;
    Access {
        is_server_admin: new.is_server_admin,
        ..*standing
    }
    .post()
}

/// The distinct (room, author) pairs of a batch, whose standings it needs.
pub fn posters(batch: &[NewMessage]) -> Vec<(i64, i64)> {
    let mut pairs: Vec<(i64, i64)> = batch.iter().map(|m| (m.room_id, m.author_id)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// A batch being decided: each message's outcome once it is known, and the messages still
/// to be stored.
pub struct BatchPlan<'a> {
    batch: &'a [NewMessage],
    standings: Standings,
    outcomes: Vec<Option<PostOutcome>>,
    /// Messages whose author joins the room first (posting to a public room).
    join: Vec<bool>,
    /// Messages to store, in batch order.
    fresh: Vec<usize>,
    /// (message, earlier message of the batch with the same author and client_id).
    repeats: Vec<(usize, usize)>,
}

impl<'a> BatchPlan<'a> {
    /// Applies the posting rule to every message, from its poster's standing.
    pub fn new(batch: &'a [NewMessage], standings: Standings) -> Self {
        let mut outcomes = vec![None; batch.len()];
        let mut join = vec![false; batch.len()];
        for (i, new) in batch.iter().enumerate() {
            match may_post(&standings, new) {
                Ok(mode) => join[i] = mode == PostMode::JoinFirst,
                Err(denied) => outcomes[i] = Some(PostOutcome::Denied(denied)),
            }
        }
        Self {
            batch,
            standings,
            outcomes,
            join,
            fresh: Vec::new(),
            repeats: Vec::new(),
        }
    }

    /// (author, client_id) of every allowed message that carries one: the keys to look up.
    pub fn client_ids(&self) -> Vec<(i64, &'a str)> {
        let batch = self.batch;
        (0..batch.len())
            .filter(|&i| self.outcomes[i].is_none())
            .filter_map(|i| {
                batch[i]
                    .client_id
                    .as_deref()
                    .map(|c| (batch[i].author_id, c))
            })
            .collect()
    }

    /// Settles which messages are new, given the stored messages found for the
    /// client_ids: a stored one answers with itself, and a client_id repeated within the
    /// batch answers with its first message. Returns the messages to store.
    pub fn settle(&mut self, existing: Vec<Message>) -> &[usize] {
        let existing: HashMap<(i64, &str), &Message> = existing
            .iter()
            .filter_map(|m| m.client_id.as_deref().map(|c| ((m.author.id, c), m)))
            .collect();
        let mut first_of: HashMap<(i64, &str), usize> = HashMap::new();
        for (i, new) in self.batch.iter().enumerate() {
            if self.outcomes[i].is_some() {
                continue;
            }
            if let Some(client_id) = new.client_id.as_deref() {
                if let Some(message) = existing.get(&(new.author_id, client_id)) {
                    self.outcomes[i] = Some(PostOutcome::Existing((*message).clone()));
                    continue;
                }
                if let Some(first) = first_of.get(&(new.author_id, client_id)) {
                    self.repeats.push((i, *first));
                    continue;
                }
                first_of.insert((new.author_id, client_id), i);
            }
            self.fresh.push(i);
        }
        &self.fresh
    }

    /// Whether message `i` joins its room before it is stored.
    pub fn joins(&self, i: usize) -> bool {
        self.join[i]
    }

    /// The new messages by room, rooms in id order (the order they are locked in), each
    /// room's messages in batch order.
    pub fn by_room(&self) -> BTreeMap<i64, Vec<usize>> {
        let mut by_room: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for &i in &self.fresh {
            by_room.entry(self.batch[i].room_id).or_default().push(i);
        }
        by_room
    }

    /// Each new message's seq, given each room's `last_seq` after it was raised by the
    /// room's count of new messages: the room's range handed out in batch order.
    pub fn seqs(
        &self,
        by_room: &BTreeMap<i64, Vec<usize>>,
        lasts: &HashMap<i64, i64>,
    ) -> StoreResult<Vec<i64>> {
        let mut seqs = vec![0i64; self.batch.len()];
        for (room_id, members) in by_room {
            let last = *lasts.get(room_id).ok_or_else(|| {
                StoreError::Other(format!("room {room_id} vanished mid-transaction"))
            })?;
            let first = last - members.len() as i64 + 1;
            for (offset, &i) in members.iter().enumerate() {
                seqs[i] = first + offset as i64;
            }
        }
        Ok(seqs)
    }

    /// Each author's read marker in each room: their newest new message there.
    pub fn read_markers(&self, seqs: &[i64]) -> BTreeMap<(i64, i64), i64> {
        let mut markers: BTreeMap<(i64, i64), i64> = BTreeMap::new();
        for &i in &self.fresh {
            let new = &self.batch[i];
            let marker = markers.entry((new.room_id, new.author_id)).or_insert(0);
            *marker = (*marker).max(seqs[i]);
        }
        markers
    }

    /// Every message's outcome, once the new ones are stored with `seqs` and `ids`
    /// (indexed like the batch) and `joined` holds the `member_joined` event each made.
    pub fn finish(
        mut self,
        seqs: &[i64],
        ids: &[i64],
        mut joined: Vec<Option<RoomEvent>>,
    ) -> StoreResult<Vec<PostOutcome>> {
        for &i in &self.fresh {
            let new = &self.batch[i];
            let username = self
                .standings
                .get(&(new.room_id, new.author_id))
                .map(|(_, username)| username.clone())
                .unwrap_or_default();
            let message = Message {
                id: ids[i],
                room_id: new.room_id,
                seq: seqs[i],
                author: Author {
                    id: new.author_id,
                    username,
                },
                content: new.content.clone(),
                created_at: new.now,
                edited_at: None,
                deleted: false,
                client_id: new.client_id.clone(),
            };
            let mut events: Vec<RoomEvent> = joined
                .get_mut(i)
                .and_then(Option::take)
                .into_iter()
                .collect();
            events.push(RoomEvent {
                room_id: new.room_id,
                seq: seqs[i],
                kind: EventKind::Message {
                    message: message.clone(),
                },
            });
            self.outcomes[i] = Some(PostOutcome::Created { message, events });
        }
        for &(i, first) in &self.repeats {
            if let Some(PostOutcome::Created { message, .. }) = &self.outcomes[first] {
                self.outcomes[i] = Some(PostOutcome::Existing(message.clone()));
            }
        }
        self.outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Other("unanswered send".into())))
            .collect()
    }
}
