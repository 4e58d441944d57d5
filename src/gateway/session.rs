//! One WebSocket connection: authentication, then a single task that owns the socket
//! whole and both reads and writes it. It writes whatever the outbox holds (every frame
//! handed to the socket, then one flush), reads the client's frames, runs the sends it
//! was given one after another (so a client's messages keep their order), and keeps the
//! connection alive with pings.
//!
//! The loop is polled by hand ([`Session::poll_turn`]) rather than a `select!` over a
//! split socket: each turn writes, answers the send being stored, reads the next frame
//! (unless `MAX_QUEUED_SENDS` sends wait) and checks the timer. Unsplit, the socket needs
//! no lock between two halves, and a write needs no boxed future. An idle connection
//! keeps only this state: the steps that wait on the store (admission, frames with
//! their subscribe, replay or renewal) and the close are boxed futures that take memory
//! only while they run.
//!
//! A peer that stops reading fills its socket: writing then waits while reading goes
//! on, the bounded outbox marks the connection 4008 when it overflows, and the close
//! (what is owed, then the close frame) gives up after `CLOSE_PATIENCE`.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, Sleep};

use super::hub::{ConnId, ReplayDone};
use super::outbox::{CloseReason, Outbox};
use super::protocol::{self, ClientFrame, FrameError, UserRef};
use super::rate::{Bucket, Rate};
use super::{Gateway, frame_error, send_rate};
use crate::bus::Notice;
use crate::domain::model::User;
use crate::domain::validate::{ClientId, MessageBody};
use crate::service::{Caller, PostResult, ServiceResult};

const AUTH_DEADLINE: Duration = Duration::from_secs(10);
const MISSED_PONGS_ALLOWED: u32 = 2;
/// A replay longer than this asks the client to reload history over HTTP instead.
const MAX_REPLAY: i64 = 1000;
/// How long a closing connection may take to write what it still owes.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Sends waiting behind the one being stored, per connection; past it the connection
/// stops reading, so TCP slows the client down instead of the server refusing work.
const MAX_QUEUED_SENDS: usize = 64;
/// Frames of any kind a connection may send per second (a burst of twice that).
const FRAMES_PER_SECOND: u32 = 100;
const FRAME_RATE: Rate = Rate {
    per_second: FRAMES_PER_SECOND,
    burst: FRAMES_PER_SECOND * 2,
};
/// Refused frames within `ABUSE_WINDOW` after which the connection is closed with 4029.
const ABUSE_LIMIT: u32 = 100;
const ABUSE_WINDOW: Duration = Duration::from_secs(10);

const CLOSE_AUTH: CloseReason = CloseReason {
    code: 4001,
    reason: "authentication failed or missing",
};
const CLOSE_AUTH_EXPIRED: CloseReason = CloseReason {
    code: 4001,
    reason: "access token expired",
};
const CLOSE_ROOM_NOT_FOUND: CloseReason = CloseReason {
    code: 4004,
    reason: "room not found",
};
const CLOSE_TOO_BIG: CloseReason = CloseReason {
    code: 1009,
    reason: "frame larger than 64 KiB",
};
const CLOSE_ABUSE: CloseReason = CloseReason {
    code: 4029,
    reason: "too many requests",
};

type Store = Pin<Box<dyn Future<Output = (Option<String>, ServiceResult<PostResult>)> + Send>>;

/// One `send` waiting its turn.
struct QueuedSend {
    room_id: i64,
    message: MessageBody,
    client_id: Option<ClientId>,
}

/// What a turn of the loop leaves to the loop.
enum Turn {
    /// A frame from the client, to handle.
    Frame(Message),
    /// Time to say goodbye (`closing` says why).
    Close,
    /// The socket ended or failed, or the peer is to be dropped: nothing more to write.
    Drop,
}

/// How the loop ended.
enum End {
    /// Say goodbye, after the send still in flight.
    Close(Option<Store>),
    Drop,
}

/// One connection's state; dropping it removes the connection from the hub, however the
/// session ends.
struct Session {
    gateway: Arc<Gateway>,
    conn_id: ConnId,
    caller: Caller,
    outbox: Arc<Outbox>,
    legacy_room: Option<i64>,
    /// When the access token stops counting, grace included.
    auth_deadline: Instant,
    next_ping: Instant,
    missed_pongs: u32,
    ping_due: bool,
    frames: Bucket,
    sends: Bucket,
    abuse: u32,
    abuse_window_start: Instant,
    queued_sends: VecDeque<QueuedSend>,
    closing: Option<CloseReason>,
    /// Frames taken from the outbox that the socket has not accepted yet.
    unsent: VecDeque<Utf8Bytes>,
    /// The socket holds frames it has not flushed yet.
    unflushed: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.gateway.hub.disconnect(self.conn_id);
        self.gateway.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) async fn run(
    mut socket: WebSocket,
    gateway: Arc<Gateway>,
    token: Option<String>,
    legacy_room: Option<String>,
) {
    // The socket stays here, and the loop's steps borrow it and the session: a future
    // that took them by value would hold a second copy of each for the connection's life.
    // Steps that wait on the store are boxed (in statements of their own, so that the
    // unboxed future is not kept either): they take memory only while they run.
    let admitting = Box::pin(admit(&gateway, &mut socket, token));
    let Some((caller, expires_at, user)) = admitting.await else {
        let _ = send_close(&mut socket, CLOSE_AUTH).await;
        return;
    };
    let mut session = Session::start(gateway, caller, expires_at, user);
    if let Some(room) = legacy_room {
        let joining = Box::pin(session.join_legacy_room(&room));
        joining.await;
    }
    if let End::Close(storing) = session.serve(&mut socket).await {
        let closing = Box::pin(session.close(&mut socket, storing));
        closing.await;
    }
}

fn deadline_for(expires_at: Option<i64>, grace: Duration) -> Instant {
    let now_secs = chrono::Utc::now().timestamp();
    let remaining = expires_at
        .map_or(0, |exp| exp.saturating_sub(now_secs))
        .max(0) as u64;
    Instant::now() + Duration::from_secs(remaining) + grace
}

/// The caller, their token's expiry and their account, from `?token=` or a first `auth`
/// frame within 10 s; `None` closes the connection with 4001.
async fn admit(
    gateway: &Gateway,
    socket: &mut WebSocket,
    token: Option<String>,
) -> Option<(Caller, Option<i64>, User)> {
    let (caller, expires_at) = authenticate(gateway, socket, token).await?;
    let user = gateway.service.me(&caller).await.ok()?;
    Some((caller, expires_at, user))
}

async fn authenticate(
    gateway: &Gateway,
    socket: &mut WebSocket,
    token: Option<String>,
) -> Option<(Caller, Option<i64>)> {
    let token = match token {
        Some(token) => token,
        None => {
            let first_auth = async {
                while let Some(Ok(message)) = socket.next().await {
                    match message {
                        Message::Text(text) => {
                            return match protocol::parse(&text) {
                                Ok(ClientFrame::Auth { token }) => Some(token),
                                _ => None,
                            };
                        }
                        Message::Ping(_) | Message::Pong(_) => continue,
                        Message::Binary(_) | Message::Close(_) => return None,
                    }
                }
                None
            };
            tokio::time::timeout(AUTH_DEADLINE, first_auth)
                .await
                .ok()
                .flatten()?
        }
    };
    match gateway.service.authenticate(&token).await {
        Ok(caller) => Some((caller, gateway.service.access_expiry(&token))),
        Err(e) => {
            let error = frame_error(e, Some("auth".into()));
            let _ = socket.send(Message::Text(protocol::error(&error))).await;
            None
        }
    }
}

async fn send_close(socket: &mut WebSocket, reason: CloseReason) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code: reason.code,
        reason: Utf8Bytes::from_static(reason.reason),
    };
    tokio::time::timeout(CLOSE_PATIENCE, socket.send(Message::Close(Some(frame))))
        .await
        .unwrap_or(Ok(()))
}

/// True when the read failed because the frame was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

impl Session {
    /// Registers the connection with the hub and queues `ready`.
    fn start(gateway: Arc<Gateway>, caller: Caller, expires_at: Option<i64>, user: User) -> Self {
        let conn_id = gateway.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::default());
        gateway.sessions.fetch_add(1, Ordering::AcqRel);
        gateway.hub.connect(
            conn_id,
            UserRef {
                id: caller.id,
                username: caller.username.clone(),
            },
            outbox.clone(),
        );
        tracing::debug!(
            user.id = caller.id,
            conn.id = conn_id,
            "websocket session started"
        );
        outbox.push_own(protocol::ready(
            &user,
            &format!("{conn_id:x}-{:x}", rand::random::<u32>()),
        ));
        let now = Instant::now();
        Self {
            conn_id,
            outbox,
            legacy_room: None,
            auth_deadline: deadline_for(expires_at, gateway.keepalive.expiry_grace),
            next_ping: now + gateway.keepalive.ping_interval,
            missed_pongs: 0,
            ping_due: false,
            frames: Bucket::new(now),
            sends: Bucket::new(now),
            abuse: 0,
            abuse_window_start: now,
            queued_sends: VecDeque::new(),
            closing: None,
            unsent: VecDeque::new(),
            unflushed: false,
            caller,
            gateway,
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let mut storing: Option<Store> = None;
        let timer = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(timer);
        loop {
            let turn = poll_fn(|cx| self.poll_turn(cx, socket, &mut storing, timer.as_mut())).await;
            match turn {
                Turn::Frame(message) => {
                    // Boxed: see `run`.
                    let handling = Box::pin(self.on_message(message));
                    if !handling.await {
                        return End::Drop;
                    }
                }
                Turn::Close => return End::Close(storing),
                Turn::Drop => return End::Drop,
            }
        }
    }

    /// One turn of the loop: writes what is waiting, answers the stored send and starts
    /// the next, keeps time, and returns at the client's next frame (read only while
    /// fewer than `MAX_QUEUED_SENDS` wait) or at the end.
    fn poll_turn(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut WebSocket,
        storing: &mut Option<Store>,
        mut timer: Pin<&mut Sleep>,
    ) -> Poll<Turn> {
        loop {
            if let Poll::Ready(Err(_)) = self.poll_write(cx, socket) {
                return Poll::Ready(Turn::Drop);
            }
            if self.closing.is_some() {
                return Poll::Ready(Turn::Close);
            }
            if storing.is_none() {
                *storing = self.next_store();
            }
            if let Some(store) = storing
                && let Poll::Ready((client_id, result)) = store.as_mut().poll(cx)
            {
                *storing = None;
                self.answer_send(client_id, result);
                continue;
            }
            if self.queued_sends.len() < MAX_QUEUED_SENDS
                && let Poll::Ready(incoming) = socket.poll_next_unpin(cx)
            {
                match incoming {
                    Some(Ok(message)) => return Poll::Ready(Turn::Frame(message)),
                    Some(Err(error)) if is_too_big(&error) => self.closing = Some(CLOSE_TOO_BIG),
                    Some(Err(_)) | None => return Poll::Ready(Turn::Drop),
                }
                continue;
            }
            let deadline = self.next_deadline();
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_ready() {
                if !self.on_timer() {
                    return Poll::Ready(Turn::Drop);
                }
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Writes everything the outbox holds, and a ping when one is due, then flushes once;
    /// notes a close request. Pending while the socket cannot take more: the outbox then
    /// keeps what arrives (within its bound), and only a close request wakes the loop.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut WebSocket,
    ) -> Poll<Result<(), axum::Error>> {
        while self.closing.is_none() {
            if self.unsent.is_empty() {
                match self.outbox.poll_take(cx) {
                    Poll::Ready((frames, close)) => {
                        self.unsent = frames;
                        self.closing = close;
                    }
                    Poll::Pending => break,
                }
            }
            if self.poll_feed(cx, socket)?.is_pending() {
                if let Poll::Ready(reason) = self.outbox.poll_close(cx) {
                    self.closing = Some(reason);
                }
                return Poll::Pending;
            }
        }
        if self.ping_due {
            ready!(socket.poll_ready_unpin(cx))?;
            socket.start_send_unpin(Message::Ping(bytes::Bytes::new()))?;
            self.ping_due = false;
            self.unflushed = true;
        }
        self.poll_flush(cx, socket)
    }

    /// Hands the socket every unsent frame (it writes them out as its buffer fills).
    fn poll_feed(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut WebSocket,
    ) -> Poll<Result<(), axum::Error>> {
        while !self.unsent.is_empty() {
            ready!(socket.poll_ready_unpin(cx))?;
            if let Some(frame) = self.unsent.pop_front() {
                socket.start_send_unpin(Message::Text(frame))?;
                self.unflushed = true;
            }
        }
        // The queue's memory goes with its last frame.
        self.unsent = VecDeque::new();
        Poll::Ready(Ok(()))
    }

    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut WebSocket,
    ) -> Poll<Result<(), axum::Error>> {
        if self.unflushed {
            ready!(socket.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what was taken but not written yet, flushed.
    async fn write_unsent(&mut self, socket: &mut WebSocket) -> Result<(), axum::Error> {
        poll_fn(|cx| {
            ready!(self.poll_feed(cx, socket))?;
            self.poll_flush(cx, socket)
        })
        .await
    }

    /// Finishes the send in flight, delivers what is owed (acks included) and says
    /// goodbye, giving up after `CLOSE_PATIENCE`; then waits briefly for the client's
    /// close.
    async fn close(&mut self, socket: &mut WebSocket, storing: Option<Store>) {
        let reason = self.closing.unwrap_or(CLOSE_AUTH);
        let finish = async {
            self.write_unsent(socket).await?;
            if let Some(store) = storing {
                let (client_id, result) = store.await;
                self.answer_send(client_id, result);
            }
            let (frames, _) = self.outbox.take();
            self.unsent = frames;
            self.write_unsent(socket).await?;
            send_close(socket, reason).await
        };
        let _ = tokio::time::timeout(CLOSE_PATIENCE, finish).await;
        // Wait briefly for the client's own close: dropping a socket with unread input
        // sends a reset, which can destroy our close frame before the client reads it.
        let client_closed = async {
            while let Some(Ok(message)) = socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, client_closed).await;
        tracing::debug!(
            conn.id = self.conn_id,
            code = reason.code,
            "websocket closed by the server"
        );
    }

    fn next_deadline(&self) -> Instant {
        self.next_ping.min(self.auth_deadline)
    }

    /// Starts storing the next queued send.
    fn next_store(&mut self) -> Option<Store> {
        let send = self.queued_sends.pop_front()?;
        let service = self.gateway.service.clone();
        let caller = self.caller.clone();
        Some(Box::pin(async move {
            let client_id = send.client_id.as_ref().map(|c| c.as_str().to_owned());
            let result = service
                .post_message(&caller, send.room_id, send.message, send.client_id)
                .await;
            (client_id, result)
        }))
    }

    fn answer_send(&mut self, client_id: Option<String>, result: ServiceResult<PostResult>) {
        match result {
            Ok(posted) => self
                .outbox
                .push_own(protocol::ack(client_id.as_deref(), &posted.message)),
            Err(e) => self.outbox.push_own(protocol::error(&frame_error(
                e,
                client_id.or(Some("send".into())),
            ))),
        }
    }

    fn refuse(&mut self, error: FrameError) {
        self.outbox.push_own(protocol::error(&error));
    }

    /// Counts a refused frame; persistent abuse closes the connection.
    fn count_abuse(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.abuse_window_start) > ABUSE_WINDOW {
            self.abuse_window_start = now;
            self.abuse = 0;
        }
        self.abuse += 1;
        if self.abuse > ABUSE_LIMIT {
            self.closing = Some(CLOSE_ABUSE);
        }
    }

    fn rate_limited(&mut self, reference: Option<String>, wait: Duration) {
        self.count_abuse();
        let seconds = wait.as_secs_f64().max(0.001);
        self.refuse(FrameError::new(
            "rate_limited",
            format!("slow down: try again in {seconds:.3} s"),
            reference,
        ));
    }

    /// Handles one frame; false ends the connection at once.
    async fn on_message(&mut self, message: Message) -> bool {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.count_abuse();
                self.refuse(FrameError::new(
                    "unsupported_frame",
                    "binary frames are not supported; send JSON text",
                    None,
                ));
                return true;
            }
            Message::Pong(_) => {
                self.missed_pongs = 0;
                return true;
            }
            Message::Ping(_) => return true,
            Message::Close(_) => return false,
        };
        if let Err(wait) = self.frames.take(FRAME_RATE, Instant::now()) {
            self.rate_limited(None, wait);
            return true;
        }
        match protocol::parse(&text) {
            Ok(frame) => self.on_frame(frame).await,
            Err(error) => {
                self.count_abuse();
                self.refuse(error);
            }
        }
        true
    }

    async fn on_frame(&mut self, frame: ClientFrame) {
        match frame {
            ClientFrame::Auth { token } => self.renew(&token).await,
            ClientFrame::Subscribe { room_id, after_seq } => {
                if let Err(error) = self.subscribe(room_id, after_seq).await {
                    self.refuse(error);
                }
            }
            ClientFrame::Unsubscribe { room_id } => {
                self.gateway.hub.unsubscribe(self.conn_id, room_id)
            }
            ClientFrame::Send {
                room_id,
                message,
                client_id,
            } => {
                let reference = client_id
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .or(Some("send".into()));
                let Some(room_id) = room_id.or(self.legacy_room) else {
                    self.refuse(FrameError::new(
                        "validation_failed",
                        "room_id is required",
                        reference,
                    ));
                    return;
                };
                let per_connection = send_rate(self.gateway.limits.per_connection_per_second);
                // The limiter's own clock: building a clock calibrates it (costly per send).
                let user_clock = self.gateway.user_sends.clock();
                let refused = self
                    .sends
                    .take(per_connection, Instant::now())
                    .and_then(|()| {
                        self.gateway
                            .user_sends
                            .check_key(&self.caller.id)
                            .map_err(|not_until| {
                                not_until.wait_time_from(governor::clock::Clock::now(user_clock))
                            })
                    });
                if let Err(wait) = refused {
                    self.rate_limited(reference, wait);
                } else {
                    self.queued_sends.push_back(QueuedSend {
                        room_id,
                        message,
                        client_id,
                    });
                }
            }
            ClientFrame::Typing { room_id, typing } => {
                let Some(room_id) = room_id.or(self.legacy_room) else {
                    self.refuse(FrameError::new(
                        "validation_failed",
                        "room_id is required",
                        Some("typing".into()),
                    ));
                    return;
                };
                match self.gateway.hub.subscriber(self.conn_id, room_id) {
                    Some(user) => self.gateway.service.bus().publish(Notice::Typing {
                        room_id,
                        user_id: user.id,
                        username: user.username,
                        typing,
                    }),
                    None => self.refuse(FrameError::new(
                        "not_found",
                        "subscribe to the room first",
                        Some("typing".into()),
                    )),
                }
            }
            ClientFrame::Ping { nonce } => self.outbox.push_own(protocol::pong(nonce.as_ref())),
        }
    }

    /// A fresh `auth` frame renews the session for the same user.
    async fn renew(&mut self, token: &str) {
        match self.gateway.service.authenticate(token).await {
            Ok(caller) if caller.id == self.caller.id => {
                self.auth_deadline = deadline_for(
                    self.gateway.service.access_expiry(token),
                    self.gateway.keepalive.expiry_grace,
                );
                self.caller = caller;
            }
            Ok(_) => {
                self.refuse(FrameError::new(
                    "forbidden",
                    "a session cannot change its user",
                    Some("auth".into()),
                ));
                self.closing = Some(CLOSE_AUTH);
            }
            Err(e) => self.refuse(frame_error(e, Some("auth".into()))),
        }
    }

    /// Subscribes, replaying what the client missed after `after_seq`.
    async fn subscribe(&mut self, room_id: i64, after_seq: Option<i64>) -> Result<(), FrameError> {
        let reference = Some("subscribe".to_owned());
        let hub = self.gateway.hub.clone();
        // Register first: every event after the room's last_seq read below then reaches
        // the subscription, live or buffered.
        hub.subscribe(self.conn_id, room_id);
        let room = match self
            .gateway
            .service
            .room_for_subscriber(&self.caller, room_id)
            .await
        {
            Ok(room) => room,
            Err(e) => {
                hub.unsubscribe(self.conn_id, room_id);
                return Err(frame_error(e, reference));
            }
        };
        let mut covered = room.last_seq;
        if let Some(after_seq) = after_seq.filter(|after| *after < covered) {
            if covered - after_seq > MAX_REPLAY {
                self.outbox.push_own(protocol::resync_required(room_id));
            } else {
                self.replay(room_id, after_seq, covered, &reference).await?;
            }
        }
        // Another subscription's replay may have ended first and started the room after
        // ours: the events in between are never delivered live, so they are replayed.
        while let ReplayDone::Behind(start) =
            hub.replay_done(self.conn_id, room_id, covered, room.is_private)
        {
            self.replay(room_id, covered, start, &reference).await?;
            covered = start;
        }
        Ok(())
    }

    /// Queues the room's stored events after `after_seq` up to `up_to`; on failure the
    /// subscription ends.
    async fn replay(
        &mut self,
        room_id: i64,
        after_seq: i64,
        up_to: i64,
        reference: &Option<String>,
    ) -> Result<(), FrameError> {
        let events = match self
            .gateway
            .service
            .events_after(room_id, after_seq, up_to - after_seq)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                self.gateway.hub.unsubscribe(self.conn_id, room_id);
                return Err(frame_error(e, reference.clone()));
            }
        };
        for event in &events {
            match serde_json::to_string(event) {
                Ok(json) => self.outbox.push_own(Utf8Bytes::from(json)),
                Err(e) => tracing::error!(error = %e, "cannot serialise a replayed event"),
            }
        }
        Ok(())
    }

    /// The original API's endpoint: subscribed to its room from the start.
    async fn join_legacy_room(&mut self, room: &str) {
        let found = self
            .gateway
            .service
            .room_by_id_or_name(&self.caller, room)
            .await;
        let result = match found {
            Ok(info) => self.subscribe(info.id, None).await.map(|()| info.id),
            Err(e) => Err(frame_error(e, Some("subscribe".into()))),
        };
        match result {
            Ok(room_id) => self.legacy_room = Some(room_id),
            Err(mut error) => {
                if error.code == "not_found" || error.code == "forbidden" {
                    error.code = "not_found";
                    self.refuse(error);
                    self.closing = Some(CLOSE_ROOM_NOT_FOUND);
                } else {
                    self.refuse(error);
                }
            }
        }
    }

    /// Keep-alive and token expiry; false drops the connection.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.auth_deadline {
            self.closing = Some(CLOSE_AUTH_EXPIRED);
            return true;
        }
        if now >= self.next_ping {
            if self.missed_pongs >= MISSED_PONGS_ALLOWED {
                tracing::debug!(conn.id = self.conn_id, "peer missed two pings; dropping it");
                return false;
            }
            self.missed_pongs += 1;
            self.ping_due = true;
            self.next_ping = now + self.gateway.keepalive.ping_interval;
        }
        true
    }
}
