//! The authorization matrix: one table of every HTTP endpoint and every WebSocket client
//! frame (the original `/ws/chat/{room}/` endpoint included) × public, private and direct
//! rooms, with the contract's answer (API.md: Rooms, Messages, Administration, Real time)
//! for each of the eight kinds of caller: anonymous, expired token, deactivated user,
//! non-member, member, room admin, owner and server admin.
//!
//! Every cell runs against its own fixture (a fresh room with its owner, a room admin, a
//! member who wrote a message, and a plain `target` member; a fresh direct conversation;
//! fresh users where a cell changes one), so destructive cells (delete, leave, remove,
//! deactivate) cannot spoil others, and cells run concurrently. Failures are collected
//! and reported together, each naming its row, caller, expected and actual outcome.
//!
//! The table is checked for completeness against the running server: every
//! (method, path) of `/openapi.json` and every frame type of
//! [`banter::gateway::protocol::CLIENT_FRAME_TYPES`] needs rows (room paths one per room
//! kind), and a row naming something the server does not describe fails too.
//!
//! Size: 62 HTTP rows and 27 WebSocket rows, 89 × 8 = 712 cells, of which 24 (a room
//! admin in a direct conversation, which has none) are not applicable: 688 cells run
//! per backend (the test prints the counts). In a direct conversation the "owner" is the user who opened it (its role
//! is `member` like the other side's); the test shows that opening one grants nothing.
//! The deactivated caller was a member of the room before deactivation; the expired
//! token is the member's.
//!
//! Interpretation where the contract meets itself: a server admin may delete any room
//! (Administration), but a private room's messages stay invisible to non-members, so a
//! server admin who is not a member gets 404 for a private room's message, as for the
//! room's other parts.

mod common;
mod wsclient;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use banter::gateway::protocol::CLIENT_FRAME_TYPES;
use common::{Backend, TestApp, TestUser, spawn_app};
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wsclient::WsClient;

/// Cells in flight at once: enough to keep both cores busy while cells wait on database
/// round trips, without starving the server.
const PARALLEL_CELLS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    ExpiredToken,
    Deactivated,
    NonMember,
    Member,
    RoomAdmin,
    Owner,
    ServerAdmin,
}

/// The table's column order.
const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::ExpiredToken,
    Caller::Deactivated,
    Caller::NonMember,
    Caller::Member,
    Caller::RoomAdmin,
    Caller::Owner,
    Caller::ServerAdmin,
];

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Caller::Anonymous => "anonymous",
            Caller::ExpiredToken => "expired token",
            Caller::Deactivated => "deactivated user",
            Caller::NonMember => "non-member",
            Caller::Member => "member",
            Caller::RoomAdmin => "room admin",
            Caller::Owner => "owner",
            Caller::ServerAdmin => "server admin",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The row involves no room.
    NoRoom,
    Public,
    Private,
    Direct,
}

const ROOM_KINDS: [Kind; 3] = [Kind::Public, Kind::Private, Kind::Direct];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An HTTP status, with the error code for errors.
    Http(u16, Option<&'static str>),
    /// The WebSocket reply frame of this type.
    Frame(&'static str),
    /// No reply: a `ping` sent right after is answered first.
    Silent,
    /// An `error` frame with this code; the connection stays open.
    Refused(&'static str),
    /// The server closes with this code, after an `error` frame with that code if given.
    Closed(Option<&'static str>, u16),
    /// The caller kind does not exist here (a direct conversation has no room admin).
    NotApplicable,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Http(status, None) => write!(f, "{status}"),
            Outcome::Http(status, Some(code)) => write!(f, "{status} {code}"),
            Outcome::Frame(frame_type) => write!(f, "frame {frame_type}"),
            Outcome::Silent => f.write_str("silent"),
            Outcome::Refused(code) => write!(f, "error {code}"),
            Outcome::Closed(None, close) => write!(f, "closed {close}"),
            Outcome::Closed(Some(code), close) => write!(f, "closed {close} after error {code}"),
            Outcome::NotApplicable => f.write_str("not applicable"),
        }
    }
}

const fn ok(status: u16) -> Outcome {
    Outcome::Http(status, None)
}
const UNAUTHENTICATED: Outcome = Outcome::Http(401, Some("unauthenticated"));
const EXPIRED: Outcome = Outcome::Http(401, Some("token_expired"));
const REVOKED: Outcome = Outcome::Http(401, Some("token_revoked"));
const BAD_LOGIN: Outcome = Outcome::Http(401, Some("invalid_credentials"));
const FORBIDDEN: Outcome = Outcome::Http(403, Some("forbidden"));
const NOT_FOUND: Outcome = Outcome::Http(404, Some("not_found"));
const NA: Outcome = Outcome::NotApplicable;
const READY: Outcome = Outcome::Frame("ready");
const SUBSCRIBED: Outcome = Outcome::Frame("subscribed");
const ACK: Outcome = Outcome::Frame("ack");
const PONG: Outcome = Outcome::Frame("pong");
const SILENT: Outcome = Outcome::Silent;
const WS_NOT_FOUND: Outcome = Outcome::Refused("not_found");
const WS_ROOM_CLOSED: Outcome = Outcome::Closed(Some("not_found"), 4004);

/// An authenticated HTTP endpoint: anonymous, expired and deactivated callers get 401;
/// `rest` is for non-member, member, room admin, owner and server admin.
const fn http(rest: [Outcome; 5]) -> [Outcome; 8] {
    [
        UNAUTHENTICATED,
        EXPIRED,
        REVOKED,
        rest[0],
        rest[1],
        rest[2],
        rest[3],
        rest[4],
    ]
}

/// A WebSocket cell: without a valid session the socket closes with 4001 (after an
/// `error` frame when a token was presented); `rest` as for [`http`].
const fn ws(rest: [Outcome; 5]) -> [Outcome; 8] {
    [
        Outcome::Closed(None, 4001),
        Outcome::Closed(Some("token_expired"), 4001),
        Outcome::Closed(Some("token_revoked"), 4001),
        rest[0],
        rest[1],
        rest[2],
        rest[3],
        rest[4],
    ]
}

/// The same answer for everyone (endpoints that need no token).
const fn all(outcome: Outcome) -> [Outcome; 8] {
    [outcome; 8]
}

/// Which user `{user_id}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// The room's plain `target` member (the other side in a direct conversation), or a
    /// fresh user when there is no room.
    Target,
    /// The caller themself.
    Caller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `/ws/`
    Gateway,
    /// `/ws/chat/{room}/`, the original application's endpoint.
    Original,
}

/// A request body built from the cell's fixture.
type Body = fn(&Fixture) -> Option<Value>;

#[derive(Debug, Clone, Copy)]
enum Action {
    Http {
        method: &'static str,
        path: &'static str,
        subject: Subject,
        body: Body,
    },
    /// Connect (`frame: None`) or send one frame of this type on a live session.
    Ws {
        endpoint: Endpoint,
        frame: Option<&'static str>,
    },
}

struct Row {
    action: Action,
    kind: Kind,
    expect: [Outcome; 8],
}

impl Row {
    fn name(&self) -> String {
        let kind = match self.kind {
            Kind::NoRoom => "",
            Kind::Public => " [public]",
            Kind::Private => " [private]",
            Kind::Direct => " [direct]",
        };
        match self.action {
            Action::Http {
                method,
                path,
                subject,
                ..
            } => {
                let who = if subject == Subject::Caller {
                    " (the caller themself)"
                } else {
                    ""
                };
                format!("{method} {path}{who}{kind}")
            }
            Action::Ws { endpoint, frame } => {
                let endpoint = match endpoint {
                    Endpoint::Gateway => "/ws/",
                    Endpoint::Original => "/ws/chat/{room}/",
                };
                match frame {
                    Some(frame) => format!("WS {endpoint} frame `{frame}`{kind}"),
                    None => format!("WS {endpoint} connect{kind}"),
                }
            }
        }
    }
}

fn no_body(_: &Fixture) -> Option<Value> {
    None
}

fn row(
    method: &'static str,
    path: &'static str,
    kind: Kind,
    body: Body,
    expect: [Outcome; 8],
) -> Row {
    Row {
        action: Action::Http {
            method,
            path,
            subject: Subject::Target,
            body,
        },
        kind,
        expect,
    }
}

fn ws_row(
    endpoint: Endpoint,
    frame: Option<&'static str>,
    kind: Kind,
    expect: [Outcome; 8],
) -> Row {
    Row {
        action: Action::Ws { endpoint, frame },
        kind,
        expect,
    }
}

/// The matrix. Columns: anonymous, expired token, deactivated, then (inside `http`/`ws`)
/// non-member, member, room admin, owner, server admin.
fn table() -> Vec<Row> {
    use Kind::{Direct, NoRoom, Private, Public};
    let mut rows = vec![
        // Accounts: the token-free endpoints act on the credentials in the body (the
        // caller's own; anonymous has none worth having), whatever the header says.
        row(
            "POST",
            "/auth/register/",
            NoRoom,
            |f| {
                let name = format!("reg{}", f.n);
                Some(
                    json!({"username": name, "email": format!("{name}@example.com"), "password": format!("password-{name}")}),
                )
            },
            all(ok(201)),
        ),
        row(
            "POST",
            "/auth/login/",
            NoRoom,
            |f| Some(json!({"username": f.login.0, "password": f.login.1})),
            [
                BAD_LOGIN,
                ok(200),
                BAD_LOGIN,
                ok(200),
                ok(200),
                ok(200),
                ok(200),
                ok(200),
            ],
        ),
        row(
            "POST",
            "/auth/token/refresh/",
            NoRoom,
            |f| Some(json!({"refresh": f.refresh})),
            [
                UNAUTHENTICATED,
                ok(200),
                REVOKED,
                ok(200),
                ok(200),
                ok(200),
                ok(200),
                ok(200),
            ],
        ),
        row(
            "POST",
            "/auth/logout/",
            NoRoom,
            |f| Some(json!({"refresh": f.refresh})),
            all(ok(204)),
        ),
        row("GET", "/auth/me/", NoRoom, no_body, http([ok(200); 5])),
        row("GET", "/chat/rooms/", NoRoom, no_body, http([ok(200); 5])),
        row(
            "POST",
            "/chat/rooms/",
            NoRoom,
            |f| Some(json!({"name": format!("new{}", f.n), "is_private": true})),
            http([ok(201); 5]),
        ),
        row(
            "POST",
            "/chat/direct/",
            NoRoom,
            |f| Some(json!({"username": f.target_name})),
            http([ok(201); 5]),
        ),
        // Administration: server admins only.
        row(
            "GET",
            "/admin/users/",
            NoRoom,
            no_body,
            http([FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ok(200)]),
        ),
        row(
            "PATCH",
            "/admin/users/{user_id}/",
            NoRoom,
            |_| Some(json!({"is_active": false})),
            http([FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ok(200)]),
        ),
        row(
            "GET",
            "/admin/rooms/",
            NoRoom,
            no_body,
            http([FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ok(200)]),
        ),
        // Operations: open to everyone.
        row("GET", "/healthz", NoRoom, no_body, all(ok(200))),
        row("GET", "/readyz", NoRoom, no_body, all(ok(200))),
        row("GET", "/metrics", NoRoom, no_body, all(ok(200))),
    ];
    // Rooms and messages. Per kind: non-member, member, room admin, owner, server admin.
    // Private and direct rooms are 404 to non-members (server admins included) except
    // that a server admin may delete any room.
    let by_kind = |public: [Outcome; 5], private: [Outcome; 5], direct: [Outcome; 5]| {
        [(Public, public), (Private, private), (Direct, direct)]
    };
    let n = NOT_FOUND;
    let f = FORBIDDEN;
    let readers = by_kind(
        [ok(200); 5],
        [n, ok(200), ok(200), ok(200), n],
        [n, ok(200), NA, ok(200), n],
    );
    let room_rows: Vec<(&str, &str, Subject, Body, _)> = vec![
        (
            "GET",
            "/chat/rooms/{room_id}/",
            Subject::Target,
            no_body as Body,
            readers,
        ),
        (
            "PATCH",
            "/chat/rooms/{room_id}/",
            Subject::Target,
            |_| Some(json!({"topic": "changed"})),
            by_kind(
                [f, f, ok(200), ok(200), f],
                [n, f, ok(200), ok(200), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "DELETE",
            "/chat/rooms/{room_id}/",
            Subject::Target,
            no_body,
            by_kind(
                [f, f, f, ok(204), ok(204)],
                [n, f, f, ok(204), ok(204)],
                [n, f, NA, f, ok(204)],
            ),
        ),
        (
            "POST",
            "/chat/rooms/{room_id}/join/",
            Subject::Target,
            no_body,
            // Joining a room one is in already is harmless.
            readers,
        ),
        (
            "POST",
            "/chat/rooms/{room_id}/leave/",
            Subject::Target,
            no_body,
            // Leaving a public room one is not in is as harmless; a direct conversation
            // cannot be left.
            by_kind(
                [ok(204); 5],
                [n, ok(204), ok(204), ok(204), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "GET",
            "/chat/rooms/{room_id}/members/",
            Subject::Target,
            no_body,
            readers,
        ),
        (
            "POST",
            "/chat/rooms/{room_id}/members/",
            Subject::Target,
            |f| Some(json!({"username": f.invitee_name})),
            by_kind(
                [f, f, ok(201), ok(201), f],
                [n, f, ok(201), ok(201), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "PATCH",
            "/chat/rooms/{room_id}/members/{user_id}/",
            Subject::Target,
            |_| Some(json!({"role": "admin"})),
            by_kind(
                [f, f, f, ok(200), f],
                [n, f, f, ok(200), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "DELETE",
            "/chat/rooms/{room_id}/members/{user_id}/",
            Subject::Target,
            no_body,
            // In a direct conversation the target is the member: removing oneself there
            // is leaving, which a direct conversation refuses.
            by_kind(
                [f, f, ok(204), ok(204), f],
                [n, f, ok(204), ok(204), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "DELETE",
            "/chat/rooms/{room_id}/members/{user_id}/",
            Subject::Caller,
            no_body,
            by_kind(
                [ok(204); 5],
                [n, ok(204), ok(204), ok(204), n],
                [n, f, NA, f, n],
            ),
        ),
        (
            "POST",
            "/chat/rooms/{room_id}/read/",
            Subject::Target,
            |_| Some(json!({"seq": 1})),
            // Read markers belong to a membership.
            by_kind(
                [f, ok(204), ok(204), ok(204), f],
                [n, ok(204), ok(204), ok(204), n],
                [n, ok(204), NA, ok(204), n],
            ),
        ),
        (
            "GET",
            "/chat/rooms/{room_id}/messages/",
            Subject::Target,
            no_body,
            readers,
        ),
        (
            "GET",
            "/chat/messages/{room_id}/messages/",
            Subject::Target,
            no_body,
            readers,
        ),
        (
            "POST",
            "/chat/rooms/{room_id}/messages/",
            Subject::Target,
            |_| Some(json!({"message": "hello there"})),
            // Posting to a public room joins it.
            by_kind(
                [ok(201); 5],
                [n, ok(201), ok(201), ok(201), n],
                [n, ok(201), NA, ok(201), n],
            ),
        ),
        (
            "PATCH",
            "/chat/rooms/{room_id}/messages/{message_id}/",
            Subject::Target,
            |_| Some(json!({"message": "edited"})),
            // The message is the member's: only its author edits it.
            by_kind(
                [f, ok(200), f, f, f],
                [n, ok(200), f, f, n],
                [n, ok(200), NA, f, n],
            ),
        ),
        (
            "DELETE",
            "/chat/rooms/{room_id}/messages/{message_id}/",
            Subject::Target,
            no_body,
            by_kind(
                [f, ok(204), ok(204), ok(204), ok(204)],
                [n, ok(204), ok(204), ok(204), n],
                [n, ok(204), NA, f, n],
            ),
        ),
    ];
    for (method, path, subject, body, kinds) in room_rows {
        for (kind, expect) in kinds {
            rows.push(Row {
                action: Action::Http {
                    method,
                    path,
                    subject,
                    body,
                },
                kind,
                expect: http(expect),
            });
        }
    }
    // Real time. The first frame authenticates (`auth`, or `?token=` for `connect`);
    // anonymous callers send the row's frame first instead.
    rows.push(ws_row(Endpoint::Gateway, None, NoRoom, ws([READY; 5])));
    let mut auth = ws([READY; 5]);
    auth[0] = Outcome::Closed(Some("unauthenticated"), 4001);
    rows.push(ws_row(Endpoint::Gateway, Some("auth"), NoRoom, auth));
    rows.push(ws_row(
        Endpoint::Gateway,
        Some("ping"),
        NoRoom,
        ws([PONG; 5]),
    ));
    let w = WS_NOT_FOUND;
    let gateway_rows = [
        (
            "subscribe",
            [SUBSCRIBED; 5],
            [w, SUBSCRIBED, SUBSCRIBED, SUBSCRIBED, w],
            [w, SUBSCRIBED, NA, SUBSCRIBED, w],
        ),
        // Unsubscribing from a room one never saw is a no-op, not a leak.
        (
            "unsubscribe",
            [SILENT; 5],
            [SILENT; 5],
            [SILENT, SILENT, NA, SILENT, SILENT],
        ),
        (
            "send",
            [ACK; 5],
            [w, ACK, ACK, ACK, w],
            [w, ACK, NA, ACK, w],
        ),
        // Sent after subscribing (which fails for those who cannot read the room).
        (
            "typing",
            [SILENT; 5],
            [w, SILENT, SILENT, SILENT, w],
            [w, SILENT, NA, SILENT, w],
        ),
    ];
    for (frame, public, private, direct) in gateway_rows {
        for (kind, expect) in [(Public, public), (Private, private), (Direct, direct)] {
            rows.push(ws_row(Endpoint::Gateway, Some(frame), kind, ws(expect)));
        }
    }
    let c = WS_ROOM_CLOSED;
    let original_rows = [
        (
            None,
            [SUBSCRIBED; 5],
            [c, SUBSCRIBED, SUBSCRIBED, SUBSCRIBED, c],
            [c, SUBSCRIBED, NA, SUBSCRIBED, c],
        ),
        (
            Some("chat_message"),
            [ACK; 5],
            [c, ACK, ACK, ACK, c],
            [c, ACK, NA, ACK, c],
        ),
        (
            Some("typing"),
            [SILENT; 5],
            [c, SILENT, SILENT, SILENT, c],
            [c, SILENT, NA, SILENT, c],
        ),
        (
            Some("stop_typing"),
            [SILENT; 5],
            [c, SILENT, SILENT, SILENT, c],
            [c, SILENT, NA, SILENT, c],
        ),
    ];
    for (frame, public, private, direct) in original_rows {
        for (kind, expect) in [(Public, public), (Private, private), (Direct, direct)] {
            rows.push(ws_row(Endpoint::Original, frame, kind, ws(expect)));
        }
    }
    rows
}

/// The users every cell shares; nothing a cell does changes them.
struct Cast {
    owner: TestUser,
    room_admin: TestUser,
    member: TestUser,
    target: TestUser,
    outsider: TestUser,
    server_admin: TestUser,
    invitee: TestUser,
}

/// What one cell acts on.
struct Fixture {
    /// Unique per cell, for names.
    n: u64,
    room_id: i64,
    message_id: i64,
    /// The user `{user_id}` names.
    user_id: i64,
    /// The caller's bearer token; `None` for anonymous.
    token: Option<String>,
    /// The caller's username and password.
    login: (String, String),
    /// A refresh token of the caller's (a fresh login's, so cells do not share one).
    refresh: String,
    target_name: String,
    invitee_name: String,
}

static NEXT_CELL: AtomicU64 = AtomicU64::new(1);

fn password(username: &str) -> String {
    format!("password-{username}")
}

/// An access token for `user` that expired 100 s ago, signed with the test server's key.
fn expired_token(user: &TestUser) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user.id.to_string(), "username": user.username, "iat": now - 700, "exp": now - 100}),
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret-key-that-is-long-enough-0123456789"),
    )
    .expect("token")
}

async fn expect_status(
    app: &TestApp,
    method: Method,
    path: &str,
    by: &TestUser,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let (got, answer) = app.call(method.clone(), path, Some(&by.access), body).await;
    assert_eq!(
        got, status,
        "fixture: {method} {path} as {}: {answer}",
        by.username
    );
    answer
}

/// Builds the cell's fixture; `None` when the caller kind does not exist in this room.
async fn fixture(app: &TestApp, cast: &Cast, row: &Row, caller: Caller) -> Option<Fixture> {
    let n = NEXT_CELL.fetch_add(1, Ordering::Relaxed);
    if row.kind == Kind::Direct && caller == Caller::RoomAdmin {
        return None;
    }
    let deactivated = match caller {
        Caller::Deactivated => Some(app.register(&format!("gone{n}")).await),
        _ => None,
    };
    let mut owner = cast.owner.clone();
    let (room_id, message_id) = match row.kind {
        Kind::NoRoom => (0, 0),
        Kind::Public | Kind::Private => {
            let private = row.kind == Kind::Private;
            let room_id = app.create_room(&owner, &format!("room{n}"), private).await;
            let mut joining = vec![&cast.room_admin, &cast.member, &cast.target];
            joining.extend(deactivated.as_ref());
            for user in joining {
                if private {
                    let path = format!("/chat/rooms/{room_id}/members/");
                    let body = json!({"username": user.username});
                    expect_status(
                        app,
                        Method::POST,
                        &path,
                        &owner,
                        Some(body),
                        StatusCode::CREATED,
                    )
                    .await;
                } else {
                    let path = format!("/chat/rooms/{room_id}/join/");
                    expect_status(app, Method::POST, &path, user, None, StatusCode::OK).await;
                }
            }
            let path = format!("/chat/rooms/{room_id}/members/{}/", cast.room_admin.id);
            expect_status(
                app,
                Method::PATCH,
                &path,
                &owner,
                Some(json!({"role": "admin"})),
                StatusCode::OK,
            )
            .await;
            let message = app.send(&cast.member, room_id, "the member's words").await;
            (room_id, message["id"].as_i64().expect("message id"))
        }
        Kind::Direct => {
            // The deactivated caller opens the conversation themself; otherwise a fresh
            // user does, so every cell has its own.
            owner = match &deactivated {
                Some(gone) => gone.clone(),
                None => app.register(&format!("dm{n}")).await,
            };
            let room = expect_status(
                app,
                Method::POST,
                "/chat/direct/",
                &owner,
                Some(json!({"username": cast.member.username})),
                StatusCode::CREATED,
            )
            .await;
            let room_id = room["id"].as_i64().expect("room id");
            let message = app.send(&cast.member, room_id, "the member's words").await;
            (room_id, message["id"].as_i64().expect("message id"))
        }
    };
    let user = match caller {
        Caller::Anonymous => None,
        Caller::ExpiredToken | Caller::Member => Some(cast.member.clone()),
        Caller::Deactivated => deactivated.clone(),
        Caller::NonMember => Some(cast.outsider.clone()),
        Caller::RoomAdmin => Some(cast.room_admin.clone()),
        Caller::Owner => Some(owner.clone()),
        Caller::ServerAdmin => Some(cast.server_admin.clone()),
    };
    let (path, subject) = match row.action {
        Action::Http { path, subject, .. } => (path, subject),
        Action::Ws { .. } => ("", Subject::Target),
    };
    let user_id = match (subject, &user) {
        (Subject::Caller, Some(user)) => user.id,
        _ if row.kind == Kind::Direct => cast.member.id,
        _ if row.kind == Kind::NoRoom && path.contains("{user_id}") => {
            app.register(&format!("t{n}")).await.id
        }
        _ => cast.target.id,
    };
    let refresh = match &user {
        Some(user)
            if path.starts_with("/auth/token/refresh") || path.starts_with("/auth/logout") =>
        {
            if caller == Caller::Deactivated {
                user.refresh.clone()
            } else {
                // With the login row this makes 20 logins from one address; the server
                // throttles an address after a burst of 30.
                let (status, session) = app.login(&user.username, &password(&user.username)).await;
                assert_eq!(status, StatusCode::OK, "fixture login: {session}");
                session["refresh"].as_str().expect("refresh").to_owned()
            }
        }
        _ => "not-a-refresh-token".to_owned(),
    };
    if let Some(gone) = &deactivated {
        let path = format!("/admin/users/{}/", gone.id);
        expect_status(
            app,
            Method::PATCH,
            &path,
            &cast.server_admin,
            Some(json!({"is_active": false})),
            StatusCode::OK,
        )
        .await;
    }
    let token = match caller {
        Caller::Anonymous => None,
        Caller::ExpiredToken => Some(expired_token(&cast.member)),
        _ => user.as_ref().map(|user| user.access.clone()),
    };
    let login = match &user {
        Some(user) => (user.username.clone(), password(&user.username)),
        None => (format!("nobody{n}"), password("nobody")),
    };
    Some(Fixture {
        n,
        room_id,
        message_id,
        user_id,
        token,
        login,
        refresh,
        target_name: cast.target.username.clone(),
        invitee_name: cast.invitee.username.clone(),
    })
}

async fn http_cell(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    fixture: &Fixture,
) -> (String, String) {
    let path = path
        .replace("{room_id}", &fixture.room_id.to_string())
        .replace("{user_id}", &fixture.user_id.to_string())
        .replace("{message_id}", &fixture.message_id.to_string());
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let response = app
        .request(method, &path, fixture.token.as_deref(), body)
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let observed = match serde_json::from_str::<Value>(&text) {
        // The contract's error shape: a code and a human sentence.
        Ok(json) if status >= 400 => {
            let message = json["error"]["message"].as_str().unwrap_or_default();
            match json["error"]["code"].as_str() {
                Some(code) if !message.is_empty() => format!("{status} {code}"),
                Some(code) => format!("{status} {code} (without a message)"),
                None => format!("{status} (no error code)"),
            }
        }
        _ if status >= 400 => format!("{status} (not JSON)"),
        _ => status.to_string(),
    };
    let detail: String = text.chars().take(300).collect();
    (observed, format!("({path}: {detail})"))
}

/// What the server does next, as an [`Outcome`]'s text. Event frames are skipped.
/// `probed`: a `ping` followed the frame, so a `pong` means the frame got no reply.
async fn observe(client: &mut WsClient, probed: bool) -> String {
    let deadline = tokio::time::Instant::now() + wsclient::WAIT;
    let mut refused: Option<String> = None;
    loop {
        let message = match tokio::time::timeout_at(deadline, client.stream.next()).await {
            Err(_) => return "no reply".into(),
            Ok(None) | Ok(Some(Err(_))) => return "dropped without a close frame".into(),
            Ok(Some(Ok(message))) => message,
        };
        let frame: Value = match message {
            Message::Text(text) => serde_json::from_str(&text).expect("frames are JSON"),
            Message::Close(close) => {
                let code = close.map_or("without a code".to_owned(), |c| {
                    u16::from(c.code).to_string()
                });
                return match refused {
                    Some(error) => format!("closed {code} after error {error}"),
                    None => format!("closed {code}"),
                };
            }
            _ => continue,
        };
        let frame_type = frame["type"].as_str().unwrap_or_default();
        match (frame_type, &refused) {
            // An error: does the connection stay open? A ping tells.
            ("error", None) => {
                refused = Some(frame["code"].as_str().unwrap_or("(no code)").to_owned());
                let _ = client.stream_send(json!({"type": "ping"})).await;
            }
            ("pong", Some(error)) => return format!("error {error}"),
            ("pong", None) if probed => return "silent".into(),
            ("ready" | "subscribed" | "ack" | "pong", None) => {
                return format!("frame {frame_type}");
            }
            _ => {}
        }
    }
}

fn frame_for(frame: &str, endpoint: Endpoint, fixture: &Fixture) -> Value {
    let room_id = fixture.room_id;
    match (frame, endpoint) {
        ("subscribe" | "unsubscribe", _) => json!({"type": frame, "room_id": room_id}),
        ("send", _) => {
            json!({"type": "send", "room_id": room_id, "message": "over the socket", "client_id": format!("c{}", fixture.n)})
        }
        ("typing", Endpoint::Gateway) => {
            json!({"type": "typing", "room_id": room_id, "typing": true})
        }
        ("chat_message", _) => {
            json!({"type": "chat_message", "message": "the original way", "sender": "mallory"})
        }
        ("ping", _) => json!({"type": "ping", "nonce": fixture.n}),
        (other, _) => json!({"type": other}),
    }
}

async fn ws_cell(
    app: &TestApp,
    endpoint: Endpoint,
    frame: Option<&str>,
    fixture: &Fixture,
) -> String {
    let path = match endpoint {
        Endpoint::Gateway => "/ws/".to_owned(),
        Endpoint::Original => format!("/ws/chat/{}/", fixture.room_id),
    };
    let Some(token) = &fixture.token else {
        // Anonymous: the row's frame comes first, unauthenticated.
        let mut client = WsClient::open(&app.base, &path).await;
        let first = match frame {
            Some("auth") => json!({"type": "auth", "token": "not-a-token"}),
            Some(frame) => frame_for(frame, endpoint, fixture),
            None => json!({"type": "ping"}),
        };
        client.send(first).await;
        return finish(client, false).await;
    };
    // `connect` rows and the original endpoint authenticate with `?token=`; frame rows
    // on `/ws/` with a first `auth` frame (which is the row itself for `auth`).
    let mut client = if endpoint == Endpoint::Gateway && frame.is_some() {
        let mut client = WsClient::open(&app.base, &path).await;
        client.send(json!({"type": "auth", "token": token})).await;
        if frame == Some("auth") {
            return finish(client, false).await;
        }
        client
    } else {
        WsClient::open(&app.base, &format!("{path}?token={token}")).await
    };
    let ready = observe(&mut client, false).await;
    if ready != "frame ready" {
        client.close().await;
        return ready;
    }
    if endpoint == Endpoint::Original {
        let joined = observe(&mut client, false).await;
        if joined != "frame subscribed" || frame.is_none() {
            client.close().await;
            return joined;
        }
    }
    let Some(frame) = frame else {
        client.close().await;
        return ready;
    };
    if frame == "typing" && endpoint == Endpoint::Gateway {
        client
            .send(json!({"type": "subscribe", "room_id": fixture.room_id}))
            .await;
        observe(&mut client, false).await;
    }
    client.send(frame_for(frame, endpoint, fixture)).await;
    // Frames without a reply are followed by a ping: its pong shows nothing came first.
    let probed = matches!(frame, "unsubscribe" | "typing" | "stop_typing");
    if probed {
        client.send(json!({"type": "ping", "nonce": "probe"})).await;
    }
    finish(client, probed).await
}

/// Observes the reply, then hangs up.
async fn finish(mut client: WsClient, probed: bool) -> String {
    let observed = observe(&mut client, probed).await;
    client.close().await;
    observed
}

/// Runs one cell; `Some(failure)` when the server disagrees with the table.
async fn run_cell(app: &TestApp, cast: &Cast, row: &Row, column: usize) -> Option<String> {
    let caller = CALLERS[column];
    let expected = row.expect[column];
    let fixture = fixture(app, cast, row, caller).await;
    let (observed, detail) = match (&fixture, row.action) {
        (None, _) => ("not applicable".to_owned(), String::new()),
        (
            Some(fixture),
            Action::Http {
                method, path, body, ..
            },
        ) => http_cell(app, method, path, body(fixture), fixture).await,
        (Some(fixture), Action::Ws { endpoint, frame }) => {
            (ws_cell(app, endpoint, frame, fixture).await, String::new())
        }
    };
    (observed != expected.to_string()).then(|| {
        format!(
            "{} as {caller}: expected {expected}, got {observed} {detail}",
            row.name()
        )
    })
}

/// Rows for every (method, path) the server describes and every frame type the gateway
/// parses, and nothing else.
async fn completeness(app: &TestApp, rows: &[Row]) -> Vec<String> {
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "patch", "delete", "head", "options"] {
            if item.get(method).is_some() {
                described.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let mut kinds: BTreeMap<(String, String), BTreeSet<Kind>> = BTreeMap::new();
    let mut frames = BTreeSet::new();
    for row in rows {
        match row.action {
            Action::Http { method, path, .. } => {
                kinds
                    .entry((method.to_owned(), path.to_owned()))
                    .or_default()
                    .insert(row.kind);
            }
            Action::Ws { frame, .. } => {
                frames.extend(frame);
            }
        }
    }
    let mut problems = Vec::new();
    for endpoint in &described {
        match kinds.get(endpoint) {
            None => problems.push(format!(
                "{} {} has no rows in the matrix",
                endpoint.0, endpoint.1
            )),
            Some(covered) if endpoint.1.contains("{room_id}") => {
                for kind in ROOM_KINDS {
                    if !covered.contains(&kind) {
                        problems.push(format!(
                            "{} {} has no row for {kind:?} rooms",
                            endpoint.0, endpoint.1
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for endpoint in kinds.keys() {
        if !described.contains(endpoint) {
            problems.push(format!(
                "the matrix has rows for {} {}, which /openapi.json does not describe",
                endpoint.0, endpoint.1
            ));
        }
    }
    let parsed: BTreeSet<&str> = CLIENT_FRAME_TYPES.iter().copied().collect();
    for frame in parsed.difference(&frames) {
        problems.push(format!(
            "the client frame `{frame}` has no rows in the matrix"
        ));
    }
    for frame in frames.difference(&parsed) {
        problems.push(format!(
            "the matrix has rows for the frame `{frame}`, which the gateway does not parse"
        ));
    }
    problems
}

async fn authorization_matrix(backend: Backend) {
    let started = Instant::now();
    let app = spawn_app(backend).await;
    let cast = Cast {
        owner: app.register("owner").await,
        room_admin: app.register("roomadmin").await,
        member: app.register("member").await,
        target: app.register("target").await,
        outsider: app.register("outsider").await,
        server_admin: app.register_admin("root").await,
        invitee: app.register("invitee").await,
    };
    let rows = table();
    let mut failures = completeness(&app, &rows).await;
    let cells: Vec<(&Row, usize)> = rows
        .iter()
        .flat_map(|row| (0..CALLERS.len()).map(move |column| (row, column)))
        .collect();
    let applicable = cells
        .iter()
        .filter(|(row, column)| row.expect[*column] != NA)
        .count();
    let (app, cast) = (&app, &cast);
    let mut outcomes = stream::iter(cells.iter().copied())
        .map(|(row, column)| async move { run_cell(app, cast, row, column).await })
        .buffer_unordered(PARALLEL_CELLS);
    while let Some(outcome) = outcomes.next().await {
        failures.extend(outcome);
    }
    println!(
        "authorization matrix on {backend:?}: {} rows, {} cells ({applicable} applicable) in {:.1} s",
        rows.len(),
        cells.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cells or checks failed:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
}

both_backends!(authorization_matrix);
