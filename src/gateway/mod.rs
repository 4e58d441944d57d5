//! The real-time gateway: `/ws/` (and the original API's `/ws/chat/{room}/`).
//!
//! - [`protocol`]: frames in and out;
//! - [`outbox`]: each connection's bounded outbound queue;
//! - [`rate`]: each connection's rate limits;
//! - [`hub`]: subscriptions, ordering and fan-out of room events;
//! - [`session`]: one connection's loop (authentication, frames, keep-alive).
//!
//! The hub listens to the bus, so events from HTTP writes, WebSocket sends and (in a
//! cluster) other nodes all arrive the same way. Depends on `service`, `bus` and `domain`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::bus::Notice;

use crate::service::{Service, ServiceError};

pub mod hub;
pub mod outbox;
pub mod protocol;
mod rate;
mod session;

use hub::Hub;
use outbox::CLOSE_GOING_AWAY;
use protocol::FrameError;
use rate::Rate;

/// The largest frame a client may send (the contract's limit).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Send rate limits: per connection, and per user across their connections.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub per_connection_per_second: u32,
    pub per_user_per_second: u32,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            per_connection_per_second: 20,
            per_user_per_second: 40,
        }
    }
}

/// Keep-alive timings: a ping every `ping_interval` (two unanswered drop the peer), and
/// how long a socket outlives its access token without a fresh `auth` frame.
#[derive(Debug, Clone, Copy)]
pub struct KeepAlive {
    pub ping_interval: Duration,
    pub expiry_grace: Duration,
}

pub struct Gateway {
    service: Arc<Service>,
    hub: Arc<Hub>,
    limits: SendLimits,
    keepalive: KeepAlive,
    user_sends: DefaultKeyedRateLimiter<i64>,
    next_conn_id: AtomicU64,
    sessions: AtomicUsize,
}

/// Sends allowed at `rate` a second: a burst of three seconds' worth lets a reconnecting
/// client flush its queue.
fn send_rate(rate: u32) -> Rate {
    let per_second = rate.max(1);
    Rate {
        per_second,
        burst: per_second.saturating_mul(3),
    }
}

impl Gateway {
    /// Builds the gateway and starts its background work: listening to the bus, and a
    /// tick for typing timeouts and gap fills.
    pub fn start(service: Arc<Service>, limits: SendLimits, keepalive: KeepAlive) -> Arc<Self> {
        // Subscribed before the first announcement, so no node's answer is missed.
        let notices = service.bus().subscribe();
        let gateway = Arc::new(Self {
            hub: Arc::new(Hub::new(service.bus().clone())),
            user_sends: RateLimiter::keyed(send_rate(limits.per_user_per_second).quota()),
            limits,
            keepalive,
            next_conn_id: AtomicU64::new(1),
            sessions: AtomicUsize::new(0),
            service,
        });
        tokio::spawn(listen(gateway.clone(), notices));
        tokio::spawn(tick(gateway.clone()));
        gateway.hub.announce(true);
        gateway
    }

    /// Closes every socket with 1001 so clients reconnect elsewhere, and waits (up to
    /// `patience`) for sessions to finish their in-flight sends.
    pub async fn shutdown(&self, patience: Duration) {
        self.hub.close_all(CLOSE_GOING_AWAY);
        let deadline = Instant::now() + patience;
        while self.sessions.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

/// Feeds bus notices to the hub. A lagging receiver has lost notices: every room is
/// refilled from the store.
async fn listen(gateway: Arc<Gateway>, mut notices: broadcast::Receiver<Arc<Notice>>) {
    loop {
        match notices.recv().await {
            Ok(notice) => gateway.hub.publish(&notice),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "the gateway fell behind the bus; refilling rooms from the store"
                );
                gateway.hub.mark_all_stale();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn tick(gateway: Arc<Gateway>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for fill in gateway.hub.tick(Instant::now()) {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let fetched = match gateway
                    .service
                    .events_after(fill.room_id, fill.after_seq, fill.limit)
                    .await
                {
                    Ok(events) => {
                        for event in &events {
                            gateway.hub.accept(event);
                        }
                        events.len()
                    }
                    Err(e) => {
                        tracing::warn!(room.id = fill.room_id, error = %e, "cannot fill a gap in a room's events; will retry");
                        0
                    }
                };
                gateway.hub.fill_done(fill, fetched);
            });
        }
    }
}

/// The WebSocket routes, ready to merge into the HTTP router.
pub fn routes<S: Clone + Send + Sync + 'static>(gateway: Arc<Gateway>) -> Router<S> {
    Router::new()
        .route("/ws", get(ws))
        .route("/ws/chat/{room}", get(legacy_ws))
        .with_state(gateway)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    // Small buffers: idle connections must stay cheap (the defaults allocate 128 KiB each;
    // the read buffer is allocated up front, the write buffer only as frames go out).
    upgrade
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
}

async fn ws(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    configure(upgrade).on_upgrade(move |socket| session::run(socket, gateway, query.token, None))
}

async fn legacy_ws(
    State(gateway): State<Arc<Gateway>>,
    Path(room): Path<String>,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    configure(upgrade)
        .on_upgrade(move |socket| session::run(socket, gateway, query.token, Some(room)))
}

/// A service error as an `error` frame.
fn frame_error(error: ServiceError, reference: Option<String>) -> FrameError {
    let (code, message) = match error {
        ServiceError::Validation(fields) => (
            "validation_failed",
            fields
                .0
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ServiceError::InvalidCredentials | ServiceError::Unauthenticated => {
            ("unauthenticated", "authentication failed".into())
        }
        ServiceError::TokenExpired => ("token_expired", "the token has expired".into()),
        ServiceError::TokenRevoked => ("token_revoked", "the token has been revoked".into()),
        ServiceError::Forbidden(why) => ("forbidden", why),
        ServiceError::NotFound(what) => ("not_found", what),
        ServiceError::Conflict(why) => ("conflict", why),
        ServiceError::RateLimited { retry_after_secs } => {
            ("rate_limited", format!("try again in {retry_after_secs} s"))
        }
        ServiceError::Unavailable(why) => {
            tracing::warn!(cause = %why, "storage unavailable for a WebSocket request");
            (
                "unavailable",
                "the service is temporarily unavailable; try again shortly".into(),
            )
        }
        ServiceError::Internal(why) => {
            tracing::error!(cause = %why, "internal error in a WebSocket request");
            ("internal", "an internal error occurred".into())
        }
    };
    FrameError::new(code, message, reference)
}
