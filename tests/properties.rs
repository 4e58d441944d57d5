//! Property tests (proptest) for the rules the real-time guarantees rest on:
//! - seq ordering through the gateway hub: whatever order and however often a room's
//!   events reach it, each subscriber receives the events after its replay exactly once,
//!   in seq order;
//! - replay: after any mix of posts, edits and deletes, `events_after(after_seq)` returns
//!   exactly the room's events with a larger seq, gapless and ascending;
//! - idempotency: posts repeating an (author, client_id) store one message and always
//!   answer with its id and seq, however they are interleaved with other posts.
//!
//! The store properties run on SQLite in a temporary directory (one database per test, a
//! fresh room per case) to keep each case fast; `store_suite` covers PostgreSQL for the
//! same contract with fixed examples.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use banter::bus::LocalBus;
use banter::domain::event::{EventKind, RoomEvent};
use banter::domain::model::User;
use banter::domain::time::Timestamp;
use banter::gateway::hub::{Hub, ReplayDone};
use banter::gateway::outbox::Outbox;
use banter::gateway::protocol::UserRef;
use banter::store::{DeleteOutcome, NewMessage, NewRoom, NewUser, PostOutcome, Store};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

const ROOM: i64 = 1;

/// `cases` cases; failures are reported with their minimal input rather than saved, as
/// these runners are not tied to a source file.
fn config(cases: u32) -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    }
}

fn member_joined(seq: i64) -> RoomEvent {
    RoomEvent {
        room_id: ROOM,
        seq,
        kind: EventKind::MemberJoined {
            user: User {
                id: seq,
                username: format!("user{seq}"),
                email: None,
                is_admin: false,
                is_active: None,
                created_at: Timestamp(0),
            },
        },
    }
}

/// The seqs of the room event frames waiting in an outbox, in queue order.
fn delivered_seqs(outbox: &Outbox) -> Vec<i64> {
    let (frames, closed) = outbox.take();
    assert_eq!(closed, None, "the outbox was closed");
    frames
        .iter()
        .filter_map(|frame| {
            let value: Value = serde_json::from_str(frame).expect("frames are JSON");
            value.get("seq").and_then(Value::as_i64)
        })
        .collect()
}

/// One subscription: it subscribes before arrival `subscribe_at`, reads the store then
/// (finding `extra` more committed events than the hub has seen, up to n), and its
/// replay ends before arrival `done_at` (not before it subscribed).
#[derive(Debug, Clone)]
struct Subscription {
    subscribe_at: usize,
    done_at: usize,
    extra: i64,
}

/// Events 1..=n arriving at the hub in any order, some more than once, and two
/// subscriptions whose replays overlap in any way.
#[derive(Debug, Clone)]
struct HubCase {
    n: i64,
    arrivals: Vec<i64>,
    subscriptions: Vec<Subscription>,
}

fn hub_cases() -> impl Strategy<Value = HubCase> {
    let subscription = (any::<Index>(), any::<Index>(), 0..4i64);
    (1i64..40)
        .prop_flat_map(move |n| {
            let order = Just((1..=n).collect::<Vec<i64>>()).prop_shuffle();
            let duplicates = prop::collection::vec((1..=n, any::<Index>()), 0..n as usize);
            (
                Just(n),
                order,
                duplicates,
                prop::collection::vec(subscription.clone(), 2),
            )
        })
        .prop_map(|(n, mut arrivals, duplicates, subscriptions)| {
            for (seq, at) in duplicates {
                let at = at.index(arrivals.len() + 1);
                arrivals.insert(at, seq);
            }
            let steps = arrivals.len() + 1;
            let subscriptions = subscriptions
                .into_iter()
                .map(|(subscribe, done, extra)| {
                    let subscribe_at = subscribe.index(steps);
                    Subscription {
                        subscribe_at,
                        done_at: subscribe_at + done.index(steps - subscribe_at),
                        extra,
                    }
                })
                .collect();
            HubCase {
                n,
                arrivals,
                subscriptions,
            }
        })
}

/// What a session does when the hub says its replay is behind: queues the stored events
/// up to `start` itself and carries on from there.
fn replay_from_store(outbox: &Outbox, covered: i64, start: i64) {
    for seq in covered + 1..=start {
        let frame = serde_json::to_string(&member_joined(seq)).expect("event JSON");
        outbox.push_own(Utf8Bytes::from(frame));
    }
}

fn run_hub_case(case: &HubCase) -> Result<(), TestCaseError> {
    let hub = Hub::new(Arc::new(LocalBus::default()));
    let count = case.subscriptions.len();
    let outboxes: Vec<Arc<Outbox>> = (0..count).map(|_| Arc::new(Outbox::default())).collect();
    for (i, outbox) in outboxes.iter().enumerate() {
        let id = i as i64 + 1;
        hub.connect(
            id as u64,
            UserRef {
                id,
                username: format!("u{id}"),
            },
            outbox.clone(),
        );
    }
    // The store's last seq: it never goes back, and covers every event the hub has seen
    // (an event is published only after it commits).
    let mut committed = 0;
    let mut first_covered = vec![0; count];
    let mut covered = vec![0; count];
    // When each subscription's replay ends (again, after being told it is behind).
    let mut done_at: Vec<usize> = case.subscriptions.iter().map(|s| s.done_at).collect();
    let mut live = vec![false; count];
    let mut received = vec![Vec::new(); count];
    let last_step = case.arrivals.len();
    for step in 0..=last_step {
        for (i, subscription) in case.subscriptions.iter().enumerate() {
            let conn = i as u64 + 1;
            if subscription.subscribe_at == step {
                hub.subscribe(conn, ROOM);
                committed = (committed + subscription.extra).min(case.n);
                first_covered[i] = committed;
                covered[i] = committed;
            }
            while done_at[i] == step && !live[i] {
                match hub.replay_done(conn, ROOM, covered[i], false) {
                    ReplayDone::Live => live[i] = true,
                    ReplayDone::Behind(start) => {
                        prop_assert!(start > covered[i]);
                        replay_from_store(&outboxes[i], covered[i], start);
                        covered[i] = start;
                        // The extra replay takes a while, except at the very end.
                        done_at[i] = (step + 1).min(last_step);
                    }
                }
            }
        }
        if let Some(&seq) = case.arrivals.get(step) {
            committed = committed.max(seq);
            hub.accept(&member_joined(seq));
        }
        for (outbox, received) in outboxes.iter().zip(&mut received) {
            received.extend(delivered_seqs(outbox));
        }
    }
    for (covered, received) in first_covered.iter().zip(received) {
        prop_assert_eq!(
            received,
            (covered + 1..=case.n).collect::<Vec<_>>(),
            "after a replay up to {}",
            covered
        );
    }
    Ok(())
}

/// The smallest case proptest found before the fix: the second replay read the store
/// after event 1 committed and ended first, so the room started after 1 and the first
/// subscription, which had covered nothing, never received it.
#[test]
fn a_replay_that_ends_later_but_covered_less_still_gets_every_event() {
    let case = HubCase {
        n: 1,
        arrivals: vec![1],
        subscriptions: vec![
            Subscription {
                subscribe_at: 0,
                done_at: 1,
                extra: 0,
            },
            Subscription {
                subscribe_at: 0,
                done_at: 0,
                extra: 1,
            },
        ],
    };
    if let Err(failure) = run_hub_case(&case) {
        panic!("{failure}");
    }
}

#[test]
fn hub_delivers_each_seq_once_in_order_to_every_subscriber() {
    let mut runner = TestRunner::new(config(512));
    let result = runner.run(&hub_cases(), |case| run_hub_case(&case));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

// --- The store -------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A SQLite store in a temporary directory, with three users (ids in the vector).
async fn sqlite_store(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Vec<i64>) {
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = banter::store::connect(&url).await.expect("sqlite store");
    let mut users = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let user = store
            .create_user(NewUser {
                username: name.into(),
                username_key: name.into(),
                email: format!("{name}@example.com"),
                email_key: format!("{name}@example.com"),
                password_hash: "not-a-real-hash".into(),
                is_admin: false,
                now: Timestamp::now(),
            })
            .await
            .expect("create user");
        users.push(user.id);
    }
    (store, users)
}

/// A new public room owned by the first user; rooms are numbered by the case.
async fn new_room(store: &Arc<dyn Store>, owner: i64, case: usize) -> i64 {
    store
        .create_room(NewRoom {
            name: format!("room-{case}"),
            name_key: format!("room-{case}"),
            topic: String::new(),
            is_private: false,
            owner_id: owner,
            now: Timestamp::now(),
        })
        .await
        .expect("create room")
        .id
}

fn post(room_id: i64, author_id: i64, content: String, client_id: Option<String>) -> NewMessage {
    NewMessage {
        room_id,
        author_id,
        content,
        client_id,
        is_server_admin: false,
        now: Timestamp::now(),
    }
}

fn kind_name(event: &RoomEvent) -> &'static str {
    event.kind.name()
}

#[derive(Debug, Clone)]
enum Op {
    /// A post by one of the three users (joining the room on their first post).
    Post { author: usize },
    /// An edit of one of the messages posted so far (maybe deleted already).
    Edit { target: Index },
    /// A delete of one of the messages posted so far (maybe deleted already).
    Delete { target: Index },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0usize..3).prop_map(|author| Op::Post { author }),
        1 => any::<Index>().prop_map(|target| Op::Edit { target }),
        1 => any::<Index>().prop_map(|target| Op::Delete { target }),
    ];
    prop::collection::vec(op, 0..40)
}

#[test]
fn replay_returns_exactly_the_events_after_a_seq() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, users) = rt.block_on(sqlite_store(&dir));
    let mut runner = TestRunner::new(config(32));
    // Each case gets its own room, named by its number.
    let case_number = Cell::new(0);
    let strategy = (ops(), any::<Index>(), any::<Index>());
    let result = runner.run(&strategy, |(ops, after, limit)| {
        case_number.set(case_number.get() + 1);
        rt.block_on(replay_case(
            &store,
            &users,
            case_number.get(),
            ops,
            after,
            limit,
        ))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

async fn replay_case(
    store: &Arc<dyn Store>,
    users: &[i64],
    case_number: usize,
    ops: Vec<Op>,
    after: Index,
    limit: Index,
) -> Result<(), TestCaseError> {
    let room = new_room(store, users[0], case_number).await;
    // What the writes said they stored, in the order they committed.
    let mut written: Vec<(i64, &'static str)> = store
        .events_after(room, 0, 10_000)
        .await
        .expect("events")
        .iter()
        .map(|e| (e.seq, kind_name(e)))
        .collect();
    let mut messages = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Post { author } => {
                let outcome = store
                    .post_message(post(room, users[*author], format!("m{i}"), None))
                    .await
                    .expect("post");
                let PostOutcome::Created { message, events } = outcome else {
                    return Err(TestCaseError::fail("a post without client_id was a repeat"));
                };
                written.extend(events.iter().map(|e| (e.seq, kind_name(e))));
                messages.push(message.id);
            }
            Op::Edit { target } if !messages.is_empty() => {
                let id = messages[target.index(messages.len())];
                let edited = store
                    .edit_message(room, id, format!("edit {i}"), Timestamp::now())
                    .await
                    .expect("edit");
                written.extend(edited.iter().map(|e| (e.seq, kind_name(e))));
            }
            Op::Delete { target } if !messages.is_empty() => {
                let id = messages[target.index(messages.len())];
                let deleted = store
                    .delete_message(room, id, Timestamp::now())
                    .await
                    .expect("delete");
                if let DeleteOutcome::Deleted(event) = deleted {
                    written.push((event.seq, kind_name(&event)));
                }
            }
            Op::Edit { .. } | Op::Delete { .. } => {}
        }
    }

    let all = store
        .events_after(room, 0, 10_000)
        .await
        .expect("events after 0");
    let all: Vec<(i64, &'static str)> = all.iter().map(|e| (e.seq, kind_name(e))).collect();
    let last = all.len() as i64;
    prop_assert_eq!(
        all.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "seqs are 1..=last, gapless and ascending"
    );
    prop_assert_eq!(&all, &written, "the log holds what the writes reported");

    let after_seq = after.index(all.len() + 2) as i64;
    let expected: Vec<_> = all
        .iter()
        .filter(|(seq, _)| *seq > after_seq)
        .cloned()
        .collect();
    let replayed = store
        .events_after(room, after_seq, 10_000)
        .await
        .expect("events after");
    prop_assert!(replayed.iter().all(|e| e.room_id == room));
    let replayed: Vec<_> = replayed.iter().map(|e| (e.seq, kind_name(e))).collect();
    prop_assert_eq!(&replayed, &expected);

    let limit = limit.index(all.len() + 1) as i64 + 1;
    let page = store
        .events_after(room, after_seq, limit)
        .await
        .expect("events after, limited");
    let page: Vec<_> = page.iter().map(|e| (e.seq, kind_name(e))).collect();
    prop_assert_eq!(
        &page[..],
        &expected[..expected.len().min(limit as usize)],
        "a limited replay is the oldest part"
    );
    Ok(())
}

/// Posts by one of three users, each with one of three client ids or none, and content
/// that differs from post to post.
fn posts() -> impl Strategy<Value = Vec<(usize, Option<u8>)>> {
    prop::collection::vec((0usize..3, prop::option::of(0u8..3)), 1..30)
}

#[test]
fn repeated_client_ids_store_one_message() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, users) = rt.block_on(sqlite_store(&dir));
    let mut runner = TestRunner::new(config(32));
    // Each case gets its own room, named by its number.
    let case_number = Cell::new(0);
    let result = runner.run(&posts(), |posts| {
        case_number.set(case_number.get() + 1);
        rt.block_on(idempotency_case(&store, &users, case_number.get(), posts))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

async fn idempotency_case(
    store: &Arc<dyn Store>,
    users: &[i64],
    case_number: usize,
    posts: Vec<(usize, Option<u8>)>,
) -> Result<(), TestCaseError> {
    let room = new_room(store, users[0], case_number).await;
    // (author, client_id) → (id, seq, content) of the message first stored for it.
    let mut first: HashMap<(i64, String), (i64, i64, String)> = HashMap::new();
    let mut expected_count = 0;
    for (i, (author, client_id)) in posts.iter().enumerate() {
        let author = users[*author];
        // client_id idempotency is per author across rooms: ids are unique to the case.
        let client_id = client_id.map(|c| format!("case{case_number}-c{c}"));
        let content = format!("post {i}");
        let outcome = store
            .post_message(post(room, author, content.clone(), client_id.clone()))
            .await
            .expect("post");
        let (message, created) = match outcome {
            PostOutcome::Created { message, .. } => (message, true),
            PostOutcome::Existing(message) => (message, false),
            PostOutcome::Denied(denied) => {
                return Err(TestCaseError::fail(format!(
                    "a public room refused a post: {denied:?}"
                )));
            }
        };
        prop_assert_eq!(message.author.id, author);
        prop_assert_eq!(&message.client_id, &client_id);
        let Some(client_id) = client_id else {
            prop_assert!(created, "a post without client_id is always new");
            expected_count += 1;
            continue;
        };
        match first.get(&(author, client_id.clone())) {
            None => {
                prop_assert!(created, "the first post of {} was a repeat", client_id);
                prop_assert_eq!(&message.content, &content);
                first.insert((author, client_id), (message.id, message.seq, content));
                expected_count += 1;
            }
            Some((id, seq, original)) => {
                prop_assert!(!created, "a repeat of {} stored a new message", client_id);
                prop_assert_eq!(message.id, *id);
                prop_assert_eq!(message.seq, *seq);
                prop_assert_eq!(&message.content, original);
            }
        }
    }

    let events = store.events_after(room, 0, 10_000).await.expect("events");
    let stored: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message { message } => Some(message),
            _ => None,
        })
        .collect();
    prop_assert_eq!(stored.len(), expected_count, "messages stored");
    for ((author, client_id), (id, seq, _)) in &first {
        let matching: Vec<_> = stored
            .iter()
            .filter(|m| m.author.id == *author && m.client_id.as_deref() == Some(client_id))
            .collect();
        prop_assert_eq!(matching.len(), 1);
        prop_assert_eq!((matching[0].id, matching[0].seq), (*id, *seq));
    }
    Ok(())
}
