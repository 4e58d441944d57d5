//! The storage contract: the same tests, calling `Store` methods directly, against
//! `SqliteStore` and `PostgresStore` (both through `banter::store::connect`).

mod common;

use std::sync::Arc;

use banter::domain::event::{EventKind, RoomEvent};
use banter::domain::model::{Message, Role};
use banter::domain::rules::Denied;
use banter::domain::time::Timestamp;
use banter::store::{
    AccountFlags, DeleteOutcome, NewMessage, NewRefreshToken, NewRoom, NewUser, Page, PostOutcome,
    RotateOutcome, Store, StoreError, UserRecord,
};

type S = Arc<dyn Store>;

/// Runs each `async fn name(store: Arc<dyn Store>)` on a fresh SQLite file and on a fresh
/// PostgreSQL database.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let url = format!("sqlite://{}", dir.path().join("store.db").display());
                    let store = banter::store::connect(&url).await.expect("sqlite store");
                    super::$name(store).await;
                    drop(dir);
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let url = crate::common::fresh_postgres_database().await;
                    let store = banter::store::connect(&url).await.expect("postgres store");
                    super::$name(store).await;
                }
            )*
        }
    };
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        username_key: username.to_ascii_lowercase(),
        email: format!("{username}@Example.com"),
        email_key: format!("{}@example.com", username.to_ascii_lowercase()),
        password_hash: "not-a-real-hash".into(),
        is_admin: false,
        now: now(),
    }
}

async fn user(store: &S, username: &str) -> UserRecord {
    store
        .create_user(new_user(username))
        .await
        .expect("create user")
}

async fn room(store: &S, owner: &UserRecord, name: &str, is_private: bool) -> i64 {
    store
        .create_room(NewRoom {
            name: name.to_owned(),
            name_key: name.to_lowercase(),
            topic: String::new(),
            is_private,
            owner_id: owner.id,
            now: now(),
        })
        .await
        .expect("create room")
        .id
}

fn message(
    room_id: i64,
    author: &UserRecord,
    content: &str,
    client_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        room_id,
        author_id: author.id,
        content: content.to_owned(),
        client_id: client_id.map(str::to_owned),
        is_server_admin: false,
        now: now(),
    }
}

async fn post(store: &S, room_id: i64, author: &UserRecord, content: &str) -> Message {
    match store
        .post_message(message(room_id, author, content, None))
        .await
        .expect("post")
    {
        PostOutcome::Created { message, .. } => message,
        other => panic!("expected a new message: {other:?}"),
    }
}

/// What each message of a batch was answered, none of them an error.
async fn answers(store: &S, batch: Vec<NewMessage>) -> Vec<PostOutcome> {
    store
        .post_messages(batch)
        .await
        .expect("batch answered")
        .into_iter()
        .map(|r| r.expect("each answered"))
        .collect()
}

async fn last_seq(store: &S, room_id: i64) -> i64 {
    store.room(room_id).await.unwrap().expect("room").last_seq
}

fn token(user_id: i64, family: &str, hash: &str, expires_at: Timestamp) -> NewRefreshToken {
    NewRefreshToken {
        user_id,
        family_id: family.to_owned(),
        token_hash: hash.to_owned(),
        expires_at,
        now: now(),
    }
}

async fn users_are_unique_by_key(store: S) {
    let ann = user(&store, "Ann").await;
    assert_eq!(ann.username, "Ann");
    assert_eq!(ann.email, "Ann@Example.com");
    assert!(ann.is_active && !ann.is_admin);
    let mut same_name = new_user("ANN");
    same_name.email_key = "other@example.com".into();
    match store.create_user(same_name).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("username"), "{what}"),
        other => panic!("expected a username conflict: {other:?}"),
    }
    let mut same_email = new_user("bob");
    same_email.email_key = "ann@example.com".into();
    match store.create_user(same_email).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("email"), "{what}"),
        other => panic!("expected an email conflict: {other:?}"),
    }
    let found = store.user_by_username("ann".into()).await.unwrap().unwrap();
    assert_eq!(found, ann);
    assert_eq!(store.user_by_id(ann.id).await.unwrap().unwrap(), ann);
    assert!(
        store
            .user_by_username("bob".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.user_by_id(ann.id + 1000).await.unwrap().is_none());
    let bob = user(&store, "bob").await;
    let all = store.list_users(None).await.unwrap();
    assert_eq!(
        all.iter().map(|u| u.id).collect::<Vec<_>>(),
        [ann.id, bob.id]
    );
    let some = store.list_users(Some("AN".into())).await.unwrap();
    assert_eq!(some.iter().map(|u| u.id).collect::<Vec<_>>(), [ann.id]);
    let changed = store
        .set_user_flags(bob.id, Some(false), Some(true), now())
        .await
        .unwrap()
        .unwrap();
    assert!(!changed.is_active && changed.is_admin);
    let unchanged = store
        .set_user_flags(bob.id, None, None, now())
        .await
        .unwrap()
        .unwrap();
    assert!(!unchanged.is_active && unchanged.is_admin);
    assert!(
        store
            .set_user_flags(9999, Some(true), None, now())
            .await
            .unwrap()
            .is_none()
    );
}

async fn refresh_rotation_outcomes(store: S) {
    let ann = user(&store, "ann").await;
    let later = now().plus_millis(3_600_000);
    store
        .insert_refresh_token(token(ann.id, "f1", "h1", later))
        .await
        .unwrap();
    let rotate = |hash: &'static str, next: &'static str| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(hash.into(), next.into(), later, now())
                .await
                .unwrap()
        }
    };
    assert_eq!(
        rotate("h1", "h2").await,
        RotateOutcome::Rotated { user_id: ann.id }
    );
    assert_eq!(
        rotate("h2", "h3").await,
        RotateOutcome::Rotated { user_id: ann.id }
    );
    assert_eq!(rotate("nope", "h4").await, RotateOutcome::Unknown);
    // h1 again: reuse, and the family (h3 included) is revoked.
    assert_eq!(rotate("h1", "h5").await, RotateOutcome::Reused);
    assert_eq!(rotate("h3", "h6").await, RotateOutcome::Reused);
    // Another family is untouched; an expired token is Expired.
    store
        .insert_refresh_token(token(ann.id, "f2", "g1", later))
        .await
        .unwrap();
    store
        .insert_refresh_token(token(ann.id, "f3", "old", now().plus_millis(-1000)))
        .await
        .unwrap();
    assert_eq!(rotate("old", "old2").await, RotateOutcome::Expired);
    assert_eq!(
        rotate("g1", "g2").await,
        RotateOutcome::Rotated { user_id: ann.id }
    );
    // Logout revokes the family.
    assert!(
        store
            .revoke_refresh_family("g2".into(), now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_refresh_family("unknown".into(), now())
            .await
            .unwrap()
    );
    assert_eq!(rotate("g2", "g3").await, RotateOutcome::Reused);
    // Deactivation revokes every token of the user.
    store
        .insert_refresh_token(token(ann.id, "f4", "k1", later))
        .await
        .unwrap();
    store
        .set_user_flags(ann.id, Some(false), None, now())
        .await
        .unwrap();
    assert_eq!(rotate("k1", "k2").await, RotateOutcome::Reused);
}

async fn rooms_and_their_names(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let info = store
        .create_room(NewRoom {
            name: "General".into(),
            name_key: "general".into(),
            topic: "talk".into(),
            is_private: false,
            owner_id: ann.id,
            now: now(),
        })
        .await
        .unwrap();
    assert_eq!(info.name, "General");
    assert_eq!(info.topic, "talk");
    assert_eq!(info.member_count, 1);
    assert_eq!(info.last_seq, 0);
    assert!(!info.is_private && !info.is_direct);
    let dup = store
        .create_room(NewRoom {
            name: "GENERAL".into(),
            name_key: "general".into(),
            topic: String::new(),
            is_private: true,
            owner_id: bob.id,
            now: now(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let (_, membership) = store
        .room_with_membership(info.id, ann.id)
        .await
        .unwrap()
        .unwrap();
    let membership = membership.expect("the creator is a member");
    assert_eq!(membership.role, Role::Owner);
    assert_eq!(membership.last_read_seq, 0);
    let (_, none) = store
        .room_with_membership(info.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_none());
    assert!(
        store
            .room_with_membership(9999, ann.id)
            .await
            .unwrap()
            .is_none()
    );

    let private = room(&store, &ann, "secret", true).await;
    let bobs = room(&store, &bob, "bobs", true).await;
    let visible = |rooms: Vec<banter::domain::model::Room>| {
        rooms.iter().map(|r| r.info.id).collect::<Vec<_>>()
    };
    assert_eq!(
        visible(store.rooms_for_user(ann.id).await.unwrap()),
        [info.id, private]
    );
    assert_eq!(
        visible(store.rooms_for_user(bob.id).await.unwrap()),
        [info.id, bobs]
    );
    let all: Vec<i64> = store
        .all_rooms()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, [info.id, private, bobs]);

    // Renames: a conflict, then a rename that is an event.
    let conflict = store
        .update_room(
            info.id,
            Some(("Secret".into(), "secret".into())),
            None,
            now(),
        )
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    let event = store
        .update_room(
            info.id,
            Some(("Lobby".into(), "lobby".into())),
            Some("new".into()),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.seq, 1);
    match &event.kind {
        EventKind::RoomUpdated { room } => {
            assert_eq!(room.name, "Lobby");
            assert_eq!(room.topic, "new");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .update_room(9999, None, Some("x".into()), now())
            .await
            .unwrap()
            .is_none()
    );

    // Direct rooms: created once, found from either side.
    let (direct, created) = store
        .find_or_create_direct(ann.id, bob.id, "ann,bob".into(), now())
        .await
        .unwrap();
    assert!(created && direct.is_direct && direct.is_private);
    assert_eq!(direct.member_count, 2);
    let (again, created) = store
        .find_or_create_direct(bob.id, ann.id, "ann,bob".into(), now())
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, direct.id);
}

async fn membership_and_ownership_passing(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let carl = user(&store, "carl").await;
    let dave = user(&store, "dave").await;
    let room_id = room(&store, &ann, "room", false).await;
    for (i, member) in [&bob, &carl, &dave].into_iter().enumerate() {
        let event = store
            .add_member(room_id, member.id, Role::Member, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.seq, i as i64 + 1);
        assert!(matches!(&event.kind, EventKind::MemberJoined { user } if user.id == member.id));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    assert!(
        store
            .add_member(room_id, bob.id, Role::Member, now())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.room(room_id).await.unwrap().unwrap().member_count, 4);
    let names = |members: Vec<banter::domain::model::Member>| {
        members
            .into_iter()
            .map(|m| (m.user.username, m.role))
            .collect::<Vec<_>>()
    };
    // carl (joined after bob) becomes admin; when ann leaves, carl owns the room.
    let changed = store
        .set_member_role(room_id, carl.id, Role::Admin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.role, Role::Admin);
    assert!(
        store
            .set_member_role(room_id, 9999, Role::Admin)
            .await
            .unwrap()
            .is_none()
    );
    let left = store
        .remove_member(room_id, ann.id, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.seq, 4);
    assert!(matches!(&left.kind, EventKind::MemberLeft { user } if user.id == ann.id));
    assert_eq!(
        names(store.members(room_id).await.unwrap()),
        [
            ("bob".into(), Role::Member),
            ("carl".into(), Role::Owner),
            ("dave".into(), Role::Member)
        ]
    );
    // Without admins, the oldest member.
    store
        .remove_member(room_id, carl.id, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        names(store.members(room_id).await.unwrap()),
        [("bob".into(), Role::Owner), ("dave".into(), Role::Member)]
    );
    assert!(
        store
            .remove_member(room_id, ann.id, now())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.member(room_id, dave.id).await.unwrap().unwrap().role,
        Role::Member
    );
    assert!(store.member(room_id, ann.id).await.unwrap().is_none());
    let info = store.room(room_id).await.unwrap().unwrap();
    assert_eq!(info.member_count, 2);
    assert_eq!(info.last_seq, 5);
}

async fn events_are_rebuilt_in_order(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let room_id = room(&store, &ann, "room", false).await;
    let first = post(&store, room_id, &ann, "hello").await; // 1
    assert_eq!(first.seq, 1);
    store
        .add_member(room_id, bob.id, Role::Member, now())
        .await
        .unwrap(); // 2
    let edited = store
        .edit_message(room_id, first.id, "hello!".into(), now())
        .await
        .unwrap()
        .unwrap(); // 3
    assert_eq!(edited.seq, 3);
    match &edited.kind {
        EventKind::MessageEdited { message } => {
            assert_eq!(message.seq, 1, "the message keeps its seq");
            assert_eq!(message.content, "hello!");
            assert!(message.edited_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    let deleted = store
        .delete_message(room_id, first.id, now())
        .await
        .unwrap(); // 4
    match deleted {
        DeleteOutcome::Deleted(RoomEvent {
            seq,
            kind: EventKind::MessageDeleted { message },
            ..
        }) => {
            assert_eq!(seq, 4);
            assert!(message.deleted);
            assert_eq!(message.content, "");
            assert_eq!(message.id, first.id);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .delete_message(room_id, first.id, now())
            .await
            .unwrap(),
        DeleteOutcome::AlreadyDeleted
    );
    assert_eq!(
        store.delete_message(room_id, 9999, now()).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(
        store
            .edit_message(room_id, first.id, "again".into(), now())
            .await
            .unwrap()
            .is_none()
    );
    store.remove_member(room_id, bob.id, now()).await.unwrap(); // 5
    store
        .update_room(room_id, None, Some("topic".into()), now())
        .await
        .unwrap(); // 6
    let events = store.events_after(room_id, 0, 100).await.unwrap();
    let kinds: Vec<(i64, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.room_id, room_id);
            let name = match &e.kind {
                EventKind::Message { .. } => "message",
                EventKind::MemberJoined { .. } => "member_joined",
                EventKind::MessageEdited { .. } => "message_edited",
                EventKind::MessageDeleted { .. } => "message_deleted",
                EventKind::MemberLeft { .. } => "member_left",
                EventKind::RoomUpdated { .. } => "room_updated",
                EventKind::RoomDeleted {} => "room_deleted",
            };
            (e.seq, name)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "message"),
            (2, "member_joined"),
            (3, "message_edited"),
            (4, "message_deleted"),
            (5, "member_left"),
            (6, "room_updated"),
        ]
    );
    // Messages as they are now (the tombstone), users as they are.
    match &events[0].kind {
        EventKind::Message { message } => assert!(message.deleted && message.content.is_empty()),
        other => panic!("{other:?}"),
    }
    match &events[1].kind {
        EventKind::MemberJoined { user } => assert_eq!(user.id, bob.id),
        other => panic!("{other:?}"),
    }
    match &events[5].kind {
        EventKind::RoomUpdated { room } => assert_eq!(room.topic, "topic"),
        other => panic!("{other:?}"),
    }
    let tail: Vec<i64> = store
        .events_after(room_id, 3, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(tail, [4, 5]);
    assert!(store.events_after(room_id, 6, 10).await.unwrap().is_empty());
    assert!(store.events_after(9999, 0, 10).await.unwrap().is_empty());
}

async fn posting_joins_and_is_idempotent_by_client_id(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let room_id = room(&store, &ann, "room", false).await;
    // bob posts with join: member_joined, then the message.
    let outcome = store
        .post_message(message(room_id, &bob, "hi", Some("c1")))
        .await
        .unwrap();
    let PostOutcome::Created {
        message: first,
        events,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0].kind, EventKind::MemberJoined { user } if user.id == bob.id));
    assert_eq!(events[0].seq, 1);
    assert!(matches!(&events[1].kind, EventKind::Message { message } if message.id == first.id));
    assert_eq!(events[1].seq, 2);
    assert_eq!(first.seq, 2);
    assert_eq!(first.client_id.as_deref(), Some("c1"));
    // The author's read marker moved to their message.
    let (_, membership) = store
        .room_with_membership(room_id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.unwrap().last_read_seq, 2);
    // The same client_id again: nothing stored, the original answered.
    let again = store
        .post_message(message(room_id, &bob, "hi again", Some("c1")))
        .await
        .unwrap();
    assert_eq!(again, PostOutcome::Existing(first.clone()));
    assert_eq!(last_seq(&store, room_id).await, 2);
    // Another author's c1 is a different message; a member's post joins nobody.
    let outcome = store
        .post_message(message(room_id, &ann, "mine", Some("c1")))
        .await
        .unwrap();
    let PostOutcome::Created {
        message: other,
        events,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_ne!(other.id, first.id);
    assert_eq!(events.len(), 1);
    assert_eq!(other.seq, 3);
    assert_eq!(
        store.message(room_id, first.id).await.unwrap().unwrap(),
        first
    );
    assert!(
        store
            .message(room_id + 1, first.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn message_pages_are_ascending(store: S) {
    let ann = user(&store, "ann").await;
    let room_id = room(&store, &ann, "room", false).await;
    for i in 1..=10 {
        post(&store, room_id, &ann, &format!("m{i}")).await;
    }
    let page = |page: Page, limit: i64| {
        let store = store.clone();
        async move {
            store
                .history_page(ann.id, room_id, page, limit)
                .await
                .unwrap()
                .messages
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(Page::Newest, 3).await, [8, 9, 10]);
    assert_eq!(page(Page::Newest, 50).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(page(Page::Before(4), 2).await, [2, 3]);
    assert_eq!(page(Page::Before(3), 10).await, [1, 2]);
    assert_eq!(page(Page::Before(1), 10).await, Vec::<i64>::new());
    assert_eq!(page(Page::After(7), 10).await, [8, 9, 10]);
    assert_eq!(page(Page::After(0), 2).await, [1, 2]);
    assert_eq!(page(Page::After(10), 5).await, Vec::<i64>::new());
    let contents: Vec<String> = store
        .history_page(ann.id, room_id, Page::After(0), 3)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(contents, ["m1", "m2", "m3"]);
}

/// A page hands back each message exactly as stored, whatever its text holds.
async fn pages_keep_every_field_and_character(store: S) {
    let ann = user(&store, "ann").await;
    let room_id = room(&store, &ann, "room", false).await;
    let awkward = [
        "quotes \" and 'apostrophes', back\\slash, tab\tand\nnew line",
        "[1, {\"not\": \"json\"}] null true",
        "emoji 🎉 and combining é, RTL שלום, zero-width\u{200b}joiner",
        "\u{1}\u{1f} control characters and a lone \u{7f}",
    ];
    let mut posted = Vec::new();
    for (i, content) in awkward.iter().enumerate() {
        let client_id = (i % 2 == 0).then(|| format!("client-{i}"));
        let outcome = store
            .post_message(message(room_id, &ann, content, client_id.as_deref()))
            .await
            .expect("posted");
        let PostOutcome::Created { message, .. } = outcome else {
            panic!("message {i} not created: {outcome:?}");
        };
        posted.push(message);
    }
    store
        .edit_message(room_id, posted[1].id, "edited \"text\"".into(), now())
        .await
        .expect("edited")
        .expect("message found");
    store
        .delete_message(room_id, posted[2].id, now())
        .await
        .expect("deleted");
    let page = store
        .history_page(ann.id, room_id, Page::Newest, 50)
        .await
        .expect("page")
        .messages;
    for message in &page {
        let stored = store
            .message(room_id, message.id)
            .await
            .expect("message read")
            .expect("message exists");
        assert_eq!(message, &stored, "a page's message is the stored one");
    }
    assert_eq!(page.len(), awkward.len());
    assert_eq!(page[0], posted[0]);
    assert_eq!(page[3], posted[3]);
    assert_eq!(page[0].client_id.as_deref(), Some("client-0"));
    assert_eq!(page[1].client_id, None);
    assert_eq!(page[1].content, "edited \"text\"");
    assert!(page[1].edited_at.is_some());
    assert!(page[2].deleted && page[2].content.is_empty());
    assert!(!page[3].deleted && page[3].edited_at.is_none());
    assert_eq!(page[3].author.username, "ann");
}

async fn unread_counts_and_read_markers(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let room_id = room(&store, &ann, "room", false).await;
    store
        .add_member(room_id, bob.id, Role::Member, now())
        .await
        .unwrap(); // seq 1
    let mut last = None;
    for i in 0..1003 {
        last = Some(post(&store, room_id, &ann, &format!("m{i}")).await); // seq 2..=1004
    }
    post(&store, room_id, &bob, "bob's own").await; // 1005
    assert_eq!(last_seq(&store, room_id).await, 1005);
    assert_eq!(
        store.unread_count(room_id, bob.id, 0).await.unwrap(),
        1000,
        "capped"
    );
    assert_eq!(store.unread_count(room_id, bob.id, 4).await.unwrap(), 1000);
    assert_eq!(store.unread_count(room_id, bob.id, 5).await.unwrap(), 999);
    // Deleted messages and one's own do not count.
    let last = last.unwrap();
    store.delete_message(room_id, last.id, now()).await.unwrap();
    assert_eq!(store.unread_count(room_id, bob.id, 5).await.unwrap(), 998);
    assert_eq!(store.unread_count(room_id, bob.id, 1003).await.unwrap(), 0);
    // For ann, only bob's one message counts.
    assert_eq!(store.unread_count(room_id, ann.id, 0).await.unwrap(), 1);
    assert_eq!(store.unread_count(room_id, ann.id, 1005).await.unwrap(), 0);
    // Read markers move forward only.
    assert!(
        !store.mark_read(room_id, bob.id, 1000).await.unwrap(),
        "bob's post moved it to 1005"
    );
    let fresh = user(&store, "carl").await;
    store
        .add_member(room_id, fresh.id, Role::Member, now())
        .await
        .unwrap();
    assert!(store.mark_read(room_id, fresh.id, 10).await.unwrap());
    assert!(!store.mark_read(room_id, fresh.id, 5).await.unwrap());
    assert!(!store.mark_read(room_id, fresh.id, 10).await.unwrap());
    assert!(store.mark_read(room_id, fresh.id, 11).await.unwrap());
    let (_, membership) = store
        .room_with_membership(room_id, fresh.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.unwrap().last_read_seq, 11);
    assert!(
        !store.mark_read(room_id, 9999, 20).await.unwrap(),
        "not a member"
    );
    // The list carries the same read state.
    let listed = store.rooms_for_user(fresh.id).await.unwrap();
    assert_eq!(listed[0].last_read_seq, 11);
    // ann's seqs 12..=1003 (1004 was deleted) and bob's 1005.
    assert_eq!(listed[0].unread_count, 993);
}

async fn seq_is_gapless_under_concurrent_writers(store: S) {
    let ann = user(&store, "ann").await;
    let room_id = room(&store, &ann, "room", false).await;
    let mut writers = vec![ann];
    for name in ["bob", "carl", "dave", "eve"] {
        writers.push(user(&store, name).await);
    }
    let mut tasks = Vec::new();
    for writer in &writers {
        for i in 0..20 {
            let store = store.clone();
            let new = message(room_id, writer, &format!("{} {i}", writer.username), None);
            tasks.push(tokio::spawn(async move {
                store.post_message(new).await.unwrap()
            }));
        }
    }
    let mut message_seqs = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            PostOutcome::Created { message, events } => {
                assert_eq!(events.last().unwrap().seq, message.seq);
                message_seqs.push(message.seq);
            }
            other => panic!("{other:?}"),
        }
    }
    // 100 messages and 4 joins: seqs 1..=104, each once.
    let events = store.events_after(room_id, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=104).collect::<Vec<_>>());
    let joins = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::MemberJoined { .. }))
        .count();
    assert_eq!(joins, 4);
    message_seqs.sort_unstable();
    message_seqs.dedup();
    assert_eq!(message_seqs.len(), 100);
    let info = store.room(room_id).await.unwrap().unwrap();
    assert_eq!(info.last_seq, 104);
    assert_eq!(info.member_count, 5);
}

/// First posts to a public room join it. Batches and single posts doing that at once,
/// from several writers, are all stored: none of them deadlocks on the room's row. Even
/// writers post batches to both rooms; odd ones post single messages, to either room.
async fn concurrent_joining_posts_are_all_stored(store: S) {
    let ann = user(&store, "ann").await;
    let rooms = [
        room(&store, &ann, "first", false).await,
        room(&store, &ann, "second", false).await,
    ];
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let mut posters = Vec::new();
        for round in 0..8 {
            posters.push(user(&store, &format!("u{writer}x{round}")).await);
        }
        let store = store.clone();
        let ann = ann.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = 0;
            for poster in &posters {
                let results = if writer % 2 == 0 {
                    let batch = rooms
                        .iter()
                        .flat_map(|&room_id| {
                            [
                                message(room_id, poster, "hi", None),
                                message(room_id, &ann, "hello", None),
                            ]
                        })
                        .collect();
                    store.post_messages(batch).await.expect("batch answered")
                } else {
                    vec![
                        store
                            .post_message(message(rooms[writer / 2 % 2], poster, "hi", None))
                            .await,
                    ]
                };
                for result in results {
                    assert!(
                        matches!(result, Ok(PostOutcome::Created { .. })),
                        "{result:?}"
                    );
                    stored += 1;
                }
            }
            stored
        }));
    }
    let mut stored = 0;
    for task in tasks {
        stored += task.await.expect("writer task");
    }
    // 3 batch writers × 8 batches of 4 messages, 3 single writers × 8 messages.
    assert_eq!(stored, 3 * 8 * 4 + 3 * 8);
    for room_id in rooms {
        let seqs: Vec<i64> = store
            .events_after(room_id, 0, 1000)
            .await
            .expect("events")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=last_seq(&store, room_id).await).collect::<Vec<_>>()
        );
    }
}

async fn delete_room_returns_the_next_seq(store: S) {
    let ann = user(&store, "ann").await;
    let room_id = room(&store, &ann, "room", false).await;
    let one = post(&store, room_id, &ann, "one").await;
    post(&store, room_id, &ann, "two").await;
    assert_eq!(store.delete_room(room_id).await.unwrap(), Some(3));
    assert!(store.room(room_id).await.unwrap().is_none());
    assert_eq!(
        store.message(room_id, one.id).await.unwrap(),
        None,
        "a room's messages go with it"
    );
    let gone = store
        .history_page(ann.id, room_id, Page::Newest, 10)
        .await
        .unwrap();
    assert_eq!(gone.access, None);
    assert!(gone.messages.is_empty());
    assert_eq!(store.delete_room(room_id).await.unwrap(), None);
    // The name is free again.
    room(&store, &ann, "ROOM", false).await;
    let empty = room(&store, &ann, "empty", false).await;
    assert_eq!(store.delete_room(empty).await.unwrap(), Some(1));
}

/// A batch is stored in one go: joins first, then one seq range per room in batch order,
/// a client_id repeated within the batch answered with its first message. (Stored one by
/// one instead, "a" would take seq 1 before bob's join: the seqs prove the batch path.)
async fn a_batch_is_stored_together(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let first = room(&store, &ann, "first", false).await;
    let second = room(&store, &ann, "second", false).await;
    let batch = vec![
        message(first, &ann, "a", Some("c1")),
        message(first, &bob, "b", Some("c2")),
        message(second, &ann, "c", Some("c3")),
        message(first, &ann, "a again", Some("c1")),
        message(first, &ann, "d", None),
    ];
    let results = answers(&store, batch).await;
    let created = |i: usize| match &results[i] {
        PostOutcome::Created { message, events } => (message.clone(), events.clone()),
        other => panic!("message {i} not created: {other:?}"),
    };
    let (a, _) = created(0);
    let (b, b_events) = created(1);
    let (c, _) = created(2);
    let (d, _) = created(4);
    assert_eq!((a.seq, b.seq, d.seq, c.seq), (2, 3, 4, 1));
    assert!(matches!(&b_events[0].kind, EventKind::MemberJoined { user } if user.id == bob.id));
    assert_eq!(b_events[0].seq, 1);
    assert_eq!(b.author.username, "bob");
    assert_eq!(results[3], PostOutcome::Existing(a.clone()));
    let page = store
        .history_page(ann.id, first, Page::Newest, 10)
        .await
        .expect("page")
        .messages;
    let contents: Vec<&str> = page.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["a", "b", "d"]);
    assert_eq!(page[0], a, "what the batch answered is what was stored");
    assert_eq!(last_seq(&store, first).await, 4);
    let events = store.events_after(first, 0, 10).await.expect("events");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

/// The posting rule is applied inside the batch: a message its author may not post is
/// answered `Denied` and stores nothing, without costing the rest of the batch theirs.
async fn posting_needs_standing_in_the_room(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let public = room(&store, &ann, "public", false).await;
    let private = room(&store, &ann, "private", true).await;
    let batch = vec![
        message(private, &bob, "let me in", Some("c1")),
        message(public, &bob, "hello", Some("c2")),
        message(9999, &ann, "nowhere", None),
        message(private, &ann, "owner's note", None),
    ];
    let results = answers(&store, batch).await;
    assert_eq!(results[0], PostOutcome::Denied(Denied::NotFound));
    assert!(matches!(&results[1], PostOutcome::Created { events, .. } if events.len() == 2));
    assert_eq!(results[2], PostOutcome::Denied(Denied::NotFound));
    assert!(matches!(&results[3], PostOutcome::Created { .. }));
    let private_contents: Vec<String> = store
        .history_page(ann.id, private, Page::Newest, 10)
        .await
        .expect("page")
        .messages
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(private_contents, ["owner's note"]);
    // Alone, and with the client_id bob's refused message had: still refused.
    assert_eq!(
        store
            .post_message(message(private, &bob, "again", Some("c1")))
            .await
            .expect("answered"),
        PostOutcome::Denied(Denied::NotFound)
    );
}

/// A batch as large as the writer takes (the store's `max_batch`) still goes in one
/// transaction: the poster who joins, last in the batch, joins before every message of it.
async fn a_full_batch_is_stored_together(store: S) {
    let full = store.send_batching().max_batch;
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let room_id = room(&store, &ann, "room", false).await;
    let start = last_seq(&store, room_id).await;
    let mut batch: Vec<NewMessage> = (0..full - 1)
        .map(|i| message(room_id, &ann, &format!("m{i}"), Some(&format!("c{i}"))))
        .collect();
    batch.push(message(room_id, &bob, "joined", Some("c0")));
    let results = store.post_messages(batch).await.expect("batch stored");
    let PostOutcome::Created { events, .. } = results[full - 1].as_ref().expect("stored") else {
        panic!("bob's message was not created: {:?}", results[full - 1]);
    };
    assert!(matches!(&events[0].kind, EventKind::MemberJoined { user } if user.id == bob.id));
    assert_eq!(
        events[0].seq,
        start + 1,
        "the batch was stored message by message"
    );
    let full_seqs = i64::try_from(full).expect("a batch size fits a seq");
    assert_eq!(last_seq(&store, room_id).await, start + full_seqs + 1);
    let again: Vec<NewMessage> = (0..full)
        .map(|i| message(room_id, &ann, "again", Some(&format!("c{i}"))))
        .collect();
    let repeats = store.post_messages(again).await.expect("answered");
    let existing = repeats
        .iter()
        .filter(|r| matches!(r, Ok(PostOutcome::Existing(_))))
        .count();
    assert_eq!(existing, full - 1, "the last client_id was never ann's");
    assert_eq!(last_seq(&store, room_id).await, start + full_seqs + 2);
}

/// A batch of members' messages (no one joins: SQLite's direct path): rooms take their
/// seq ranges in batch order, a client_id already stored or repeated within the batch
/// answers with its message, a refused message stores nothing, and each author's read
/// marker moves to their newest message. What each sender is answered is what was stored.
async fn a_batch_of_members_is_stored_together(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let first = room(&store, &ann, "first", false).await;
    let second = room(&store, &ann, "second", false).await;
    let private = room(&store, &ann, "private", true).await;
    for room_id in [first, second] {
        store
            .add_member(room_id, bob.id, Role::Member, now())
            .await
            .expect("bob joins");
    }
    let earlier = match store
        .post_message(message(second, &bob, "earlier", Some("b1")))
        .await
        .expect("posted")
    {
        PostOutcome::Created { message, .. } => message,
        other => panic!("not created: {other:?}"),
    };
    let mut lasts = Vec::new();
    for room_id in [first, second] {
        lasts.push(last_seq(&store, room_id).await);
    }
    let batch = vec![
        message(first, &ann, "a", Some("a1")),
        message(second, &bob, "again", Some("b1")),
        message(second, &bob, "b", None),
        message(private, &bob, "let me in", None),
        message(first, &bob, "c", Some("b2")),
        message(second, &ann, "a1 again", Some("a1")),
        message(first, &ann, "d", None),
        message(second, &ann, "e", Some("a2")),
    ];
    let results = answers(&store, batch).await;
    let created = |i: usize| match &results[i] {
        PostOutcome::Created { message, events } => {
            assert_eq!(events.len(), 1, "a member's post makes one event");
            assert_eq!(events[0].seq, message.seq);
            message.clone()
        }
        other => panic!("message {i} not created: {other:?}"),
    };
    let (a, b, c, d, e) = (created(0), created(2), created(4), created(6), created(7));
    assert_eq!(
        [a.seq, c.seq, d.seq],
        [lasts[0] + 1, lasts[0] + 2, lasts[0] + 3]
    );
    assert_eq!([b.seq, e.seq], [lasts[1] + 1, lasts[1] + 2]);
    assert_eq!(results[1], PostOutcome::Existing(earlier));
    assert_eq!(results[3], PostOutcome::Denied(Denied::NotFound));
    assert_eq!(results[5], PostOutcome::Existing(a.clone()));
    assert_eq!((c.author.username.as_str(), c.author.id), ("bob", bob.id));
    assert_eq!(c.client_id.as_deref(), Some("b2"));
    assert_eq!(last_seq(&store, first).await, lasts[0] + 3);
    assert_eq!(last_seq(&store, second).await, lasts[1] + 2);
    let page = store
        .history_page(bob.id, first, Page::Newest, 10)
        .await
        .expect("page")
        .messages;
    assert_eq!(page, vec![a, c.clone(), d.clone()]);
    let page = store
        .history_page(ann.id, second, Page::Newest, 10)
        .await
        .expect("page")
        .messages;
    assert_eq!(page[page.len() - 2..], [b.clone(), e.clone()]);
    let events = store
        .events_after(first, lasts[0], 10)
        .await
        .expect("events");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (lasts[0] + 1..=lasts[0] + 3).collect::<Vec<_>>()
    );
    let marker = |room_id: i64, user_id: i64| {
        let store = store.clone();
        async move {
            let (_, membership) = store
                .room_with_membership(room_id, user_id)
                .await
                .expect("room")
                .expect("exists");
            membership.expect("a member").last_read_seq
        }
    };
    assert_eq!(marker(first, ann.id).await, d.seq);
    assert_eq!(marker(first, bob.id).await, c.seq);
    assert_eq!(marker(second, bob.id).await, b.seq);
    assert_eq!(marker(second, ann.id).await, e.seq);
    assert!(
        store
            .history_page(ann.id, private, Page::Newest, 10)
            .await
            .expect("page")
            .messages
            .is_empty()
    );
}

/// A history page comes with what its access rule needs, read in the same statement:
/// the reader's account flags and their standing in the room, whoever asks.
async fn history_pages_carry_the_readers_standing(store: S) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let private = room(&store, &ann, "private", true).await;
    let public = room(&store, &bob, "public", false).await;
    post(&store, private, &ann, "secret").await;
    let read = |reader: i64, room_id: i64| {
        let store = store.clone();
        async move {
            store
                .history_page(reader, room_id, Page::Newest, 10)
                .await
                .expect("history read")
        }
    };
    let owner = read(ann.id, private).await;
    assert_eq!(
        owner.reader,
        Some(AccountFlags {
            is_active: true,
            is_admin: false
        })
    );
    let access = owner.access.expect("room found");
    assert_eq!(access.role, Some(Role::Owner));
    assert!(access.is_private && !access.is_direct && !access.is_server_admin);
    assert_eq!(access.read(), Ok(()));
    assert_eq!(owner.messages.len(), 1);

    let outsider = read(bob.id, private).await.access.expect("room found");
    assert_eq!(outsider.role, None);
    assert_eq!(outsider.read(), Err(Denied::NotFound));
    let empty_public = read(ann.id, public).await;
    assert_eq!(empty_public.access.map(|a| a.role), Some(None));
    assert!(empty_public.messages.is_empty());

    store
        .set_user_flags(bob.id, Some(false), Some(true), now())
        .await
        .expect("flags set");
    let deactivated = read(bob.id, public).await;
    assert_eq!(
        deactivated.reader,
        Some(AccountFlags {
            is_active: false,
            is_admin: true
        })
    );
    let access = deactivated.access.expect("room found");
    assert!(access.is_server_admin);
    assert_eq!(access.role, Some(Role::Owner));

    let nobody = read(9999, private).await;
    assert_eq!((nobody.reader, nobody.access), (None, None));
    assert!(nobody.messages.is_empty());
    let nowhere = read(ann.id, 9999).await;
    assert!(nowhere.reader.is_some());
    assert_eq!(nowhere.access, None);
    assert!(nowhere.messages.is_empty());
}

store_suite!(
    history_pages_carry_the_readers_standing,
    a_full_batch_is_stored_together,
    a_batch_of_members_is_stored_together,
    posting_needs_standing_in_the_room,
    a_batch_is_stored_together,
    users_are_unique_by_key,
    refresh_rotation_outcomes,
    rooms_and_their_names,
    membership_and_ownership_passing,
    events_are_rebuilt_in_order,
    posting_joins_and_is_idempotent_by_client_id,
    message_pages_are_ascending,
    pages_keep_every_field_and_character,
    unread_counts_and_read_markers,
    seq_is_gapless_under_concurrent_writers,
    concurrent_joining_posts_are_all_stored,
    delete_room_returns_the_next_seq,
);
