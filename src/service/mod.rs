//! Use cases: each public method authorises, validates what the edge could not, stores,
//! and publishes the resulting events to the bus after the commit. No HTTP or WebSocket
//! types here, so the HTTP API, the gateway and the CLI share the same rules.
//!
//! Depends on `domain`, `store` and `bus`.

use std::sync::Arc;

use crate::bus::{Bus, Notice};
use crate::domain::rules::Denied;
use crate::domain::validate::FieldErrors;
use crate::store::{Store, StoreError};

mod admin;
pub mod auth;
mod limiter;
mod messages;
mod realtime;
mod rooms;
mod writer;

pub use auth::{AuthConfig, Session};
pub use messages::PostResult;

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthenticated,
    #[error("token expired")]
    TokenExpired,
    #[error("token revoked")]
    TokenRevoked,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn validation(field: &str, problem: impl Into<String>) -> Self {
        ServiceError::Validation(FieldErrors::single(field, problem))
    }

    fn room_not_found() -> Self {
        ServiceError::NotFound("room not found".into())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(why) => ServiceError::Unavailable(why),
            // Conflicts a use case expects are mapped where they can happen; any other is a bug.
            StoreError::Conflict(what) => {
                ServiceError::Internal(format!("unexpected conflict on {what}"))
            }
            StoreError::Other(why) => ServiceError::Internal(why),
        }
    }
}

impl From<Denied> for ServiceError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => ServiceError::room_not_found(),
            Denied::Forbidden(why) => ServiceError::Forbidden(why.into()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Everything the use cases need, shared by all requests and connections.
pub struct Service {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    auth: auth::Auth,
    writer: writer::MessageWriter,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, auth: AuthConfig) -> Self {
        let writer =
            writer::MessageWriter::start(store.clone(), bus.clone(), store.send_batching());
        Self {
            store,
            bus,
            auth: auth::Auth::new(auth),
            writer,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    fn publish_all(&self, events: impl IntoIterator<Item = crate::domain::event::RoomEvent>) {
        for event in events {
            self.bus.publish(Notice::Room(event));
        }
    }

    /// True when the database answers and the bus is connected.
    pub async fn ready(&self) -> Result<(), String> {
        self.store
            .ping()
            .await
            .map_err(|e| format!("database: {e}"))?;
        if !self.bus.is_connected() {
            return Err("bus: disconnected".into());
        }
        Ok(())
    }
}
