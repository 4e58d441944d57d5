//! Server administration: users and rooms across the whole server.

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::bus::Notice;
use std::collections::HashMap;

use crate::domain::model::{Room, User};
use crate::domain::time::Timestamp;

fn require_admin(caller: &Caller) -> ServiceResult<()> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden("server admins only".into()))
    }
}

impl Service {
    pub async fn admin_list_users(
        &self,
        caller: &Caller,
        search: Option<String>,
    ) -> ServiceResult<Vec<User>> {
        require_admin(caller)?;
        let users = self.store.list_users(search).await?;
        Ok(users.iter().map(|user| user.for_admin()).collect())
    }

    /// Activates/deactivates and promotes/demotes a user. Admins cannot do either to
    /// themselves, so a server is never left without an admin by accident.
    pub async fn admin_update_user(
        &self,
        caller: &Caller,
        user_id: i64,
        is_active: Option<bool>,
        is_admin: Option<bool>,
    ) -> ServiceResult<User> {
        require_admin(caller)?;
        if user_id == caller.id && (is_active == Some(false) || is_admin == Some(false)) {
            return Err(ServiceError::Forbidden(
                "admins cannot deactivate or demote themselves".into(),
            ));
        }
        self.set_user_flags(user_id, is_active, is_admin).await
    }

    /// The flag change itself, for the admin API and the CLI.
    pub async fn set_user_flags(
        &self,
        user_id: i64,
        is_active: Option<bool>,
        is_admin: Option<bool>,
    ) -> ServiceResult<User> {
        let user = self
            .store
            .set_user_flags(user_id, is_active, is_admin, Timestamp::now())
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        if is_active == Some(false) {
            tracing::info!(user.id = user_id, "user deactivated");
            self.bus.publish(Notice::UserDeactivated { user_id });
        }
        Ok(user.for_admin())
    }

    /// Every room, with the admin's own membership where they have one.
    pub async fn admin_list_rooms(&self, caller: &Caller) -> ServiceResult<Vec<Room>> {
        require_admin(caller)?;
        let mut own: HashMap<i64, Room> = self
            .store
            .rooms_for_user(caller.id)
            .await?
            .into_iter()
            .map(|room| (room.info.id, room))
            .collect();
        let rooms = self.store.all_rooms().await?;
        Ok(rooms
            .into_iter()
            .map(|info| {
                own.remove(&info.id).unwrap_or(Room {
                    info,
                    joined: false,
                    role: None,
                    last_read_seq: 0,
                    unread_count: 0,
                })
            })
            .collect())
    }
}
