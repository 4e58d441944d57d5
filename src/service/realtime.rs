//! What the real-time gateway asks of the service beyond the HTTP use cases: access
//! checks for subscriptions, and the event log for replays and gap fills.

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::domain::event::RoomEvent;
use crate::domain::model::RoomInfo;

impl Service {
    /// The room, if the caller may subscribe to it (may read it). Its `last_seq` is read
    /// now, so a subscriber registered before this call misses nothing after it.
    pub async fn room_for_subscriber(
        &self,
        caller: &Caller,
        room_id: i64,
    ) -> ServiceResult<RoomInfo> {
        let found = self.room_access(caller, room_id).await?;
        found.access.read()?;
        Ok(found.info)
    }

    /// A room named by the original API's path segment: an id, or else a name.
    pub async fn room_by_id_or_name(
        &self,
        caller: &Caller,
        id_or_name: &str,
    ) -> ServiceResult<RoomInfo> {
        let room_id = match id_or_name.parse::<i64>() {
            Ok(room_id) => room_id,
            Err(_) => {
                self.store
                    .room_by_name(id_or_name.trim().to_lowercase())
                    .await?
                    .ok_or_else(ServiceError::room_not_found)?
                    .id
            }
        };
        self.room_for_subscriber(caller, room_id).await
    }

    /// Events with seq > `after_seq`, at most `limit`, in order.
    pub async fn events_after(
        &self,
        room_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> ServiceResult<Vec<RoomEvent>> {
        Ok(self.store.events_after(room_id, after_seq, limit).await?)
    }
}
