//! Rooms, members, direct conversations and read markers.

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::bus::Notice;
use crate::domain::event::{EventKind, RoomEvent};
use crate::domain::model::{Member, Role, Room, RoomInfo};
use crate::domain::rules::Access;
use crate::domain::time::Timestamp;
use crate::domain::validate::{RoomName, Topic};
use crate::store::{Membership, NewRoom, StoreError};

/// A room looked up for a caller, with the rules' view of their standing in it.
pub(super) struct RoomAccess {
    pub info: RoomInfo,
    pub membership: Option<Membership>,
    pub access: Access,
}

fn name_conflict(error: StoreError) -> ServiceError {
    match error {
        StoreError::Conflict(_) => {
            ServiceError::Conflict("a room with that name already exists".into())
        }
        other => other.into(),
    }
}

impl Service {
    pub(super) async fn room_access(
        &self,
        caller: &Caller,
        room_id: i64,
    ) -> ServiceResult<RoomAccess> {
        let (info, membership) = self
            .store
            .room_with_membership(room_id, caller.id)
            .await?
            .ok_or_else(ServiceError::room_not_found)?;
        let access = Access {
            is_private: info.is_private,
            is_direct: info.is_direct,
            role: membership.map(|m| m.role),
            is_server_admin: caller.is_admin,
        };
        Ok(RoomAccess {
            info,
            membership,
            access,
        })
    }

    async fn room_view(
        &self,
        caller: &Caller,
        info: RoomInfo,
        membership: Option<Membership>,
    ) -> ServiceResult<Room> {
        let last_read_seq = membership.map_or(0, |m| m.last_read_seq);
        let unread_count = if membership.is_some() && last_read_seq < info.last_seq {
            self.store
                .unread_count(info.id, caller.id, last_read_seq)
                .await?
        } else {
            0
        };
        Ok(Room {
            info,
            joined: membership.is_some(),
            role: membership.map(|m| m.role),
            last_read_seq,
            unread_count,
        })
    }

    /// The caller's view of one room, fresh from the store.
    async fn reload_room(&self, caller: &Caller, room_id: i64) -> ServiceResult<Room> {
        let found = self.room_access(caller, room_id).await?;
        self.room_view(caller, found.info, found.membership).await
    }

    async fn member_of(&self, room_id: i64, user_id: i64) -> ServiceResult<Member> {
        self.store
            .member(room_id, user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such member".into()))
    }

    pub async fn list_rooms(&self, caller: &Caller) -> ServiceResult<Vec<Room>> {
        Ok(self.store.rooms_for_user(caller.id).await?)
    }

    pub async fn create_room(
        &self,
        caller: &Caller,
        name: RoomName,
        topic: Topic,
        is_private: bool,
    ) -> ServiceResult<Room> {
        let info = self
            .store
            .create_room(NewRoom {
                name: name.as_str().to_owned(),
                name_key: name.key(),
                topic: topic.as_str().to_owned(),
                is_private,
                owner_id: caller.id,
                now: Timestamp::now(),
            })
            .await
            .map_err(name_conflict)?;
        tracing::info!(room.id = info.id, user.id = caller.id, "room created");
        let membership = Membership {
            role: Role::Owner,
            last_read_seq: 0,
        };
        self.room_view(caller, info, Some(membership)).await
    }

    pub async fn get_room(&self, caller: &Caller, room_id: i64) -> ServiceResult<Room> {
        let found = self.room_access(caller, room_id).await?;
        found.access.read()?;
        self.room_view(caller, found.info, found.membership).await
    }

    pub async fn update_room(
        &self,
        caller: &Caller,
        room_id: i64,
        name: Option<RoomName>,
        topic: Option<Topic>,
    ) -> ServiceResult<Room> {
        let found = self.room_access(caller, room_id).await?;
        found.access.update_room()?;
        if name.is_some() || topic.is_some() {
            let event = self
                .store
                .update_room(
                    room_id,
                    name.map(|n| (n.as_str().to_owned(), n.key())),
                    topic.map(|t| t.as_str().to_owned()),
                    Timestamp::now(),
                )
                .await
                .map_err(name_conflict)?
                .ok_or_else(ServiceError::room_not_found)?;
            self.publish_all([event]);
        }
        self.reload_room(caller, room_id).await
    }

    pub async fn delete_room(&self, caller: &Caller, room_id: i64) -> ServiceResult<()> {
        let found = self.room_access(caller, room_id).await?;
        found.access.delete_room()?;
        let seq = self
            .store
            .delete_room(room_id)
            .await?
            .ok_or_else(ServiceError::room_not_found)?;
        tracing::info!(room.id = room_id, user.id = caller.id, "room deleted");
        self.publish_all([RoomEvent {
            room_id,
            seq,
            kind: EventKind::RoomDeleted {},
        }]);
        Ok(())
    }

    pub async fn join_room(&self, caller: &Caller, room_id: i64) -> ServiceResult<Room> {
        let found = self.room_access(caller, room_id).await?;
        found.access.join()?;
        if found.membership.is_none() {
            let joined = self
                .store
                .add_member(room_id, caller.id, Role::Member, Timestamp::now())
                .await?;
            self.publish_all(joined);
        }
        self.reload_room(caller, room_id).await
    }

    pub async fn leave_room(&self, caller: &Caller, room_id: i64) -> ServiceResult<()> {
        let found = self.room_access(caller, room_id).await?;
        found.access.leave()?;
        let left = self
            .store
            .remove_member(room_id, caller.id, Timestamp::now())
            .await?;
        self.publish_all(left);
        Ok(())
    }

    pub async fn members(&self, caller: &Caller, room_id: i64) -> ServiceResult<Vec<Member>> {
        self.room_access(caller, room_id).await?.access.read()?;
        Ok(self.store.members(room_id).await?)
    }

    /// Adds a user by name. Returns the member and whether they are new to the room.
    pub async fn invite(
        &self,
        caller: &Caller,
        room_id: i64,
        username: &str,
    ) -> ServiceResult<(Member, bool)> {
        self.room_access(caller, room_id).await?.access.invite()?;
        let invitee = self
            .store
            .user_by_username(username.to_ascii_lowercase())
            .await?
            .filter(|user| user.is_active)
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        let joined = self
            .store
            .add_member(room_id, invitee.id, Role::Member, Timestamp::now())
            .await?;
        let created = joined.is_some();
        self.publish_all(joined);
        let member = self.member_of(room_id, invitee.id).await?;
        Ok((member, created))
    }

    pub async fn set_member_role(
        &self,
        caller: &Caller,
        room_id: i64,
        user_id: i64,
        role: Role,
    ) -> ServiceResult<Member> {
        let found = self.room_access(caller, room_id).await?;
        found.access.read()?;
        let target = self.member_of(room_id, user_id).await?;
        found.access.set_role(target.role)?;
        if role == Role::Owner {
            return Err(ServiceError::validation(
                "role",
                "must be 'admin' or 'member'",
            ));
        }
        self.store
            .set_member_role(room_id, user_id, role)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such member".into()))
    }

    /// Removes a member; removing oneself is leaving.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        room_id: i64,
        user_id: i64,
    ) -> ServiceResult<()> {
        if user_id == caller.id {
            return self.leave_room(caller, room_id).await;
        }
        let found = self.room_access(caller, room_id).await?;
        found.access.read()?;
        let target = self.member_of(room_id, user_id).await?;
        found.access.remove_member(target.role)?;
        let left = self
            .store
            .remove_member(room_id, user_id, Timestamp::now())
            .await?;
        self.publish_all(left);
        Ok(())
    }

    /// The direct room with `username`, created on first use. True when created now.
    pub async fn direct_room(
        &self,
        caller: &Caller,
        username: &str,
    ) -> ServiceResult<(Room, bool)> {
        let other = self
            .store
            .user_by_username(username.to_ascii_lowercase())
            .await?
            .filter(|user| user.is_active)
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        let mut names = [caller.username.clone(), other.username.clone()];
        names.sort_by_key(|name| name.to_ascii_lowercase());
        let (info, created) = self
            .store
            .find_or_create_direct(caller.id, other.id, names.join(","), Timestamp::now())
            .await?;
        Ok((self.reload_room(caller, info.id).await?, created))
    }

    /// Moves the caller's read marker forward (clamped to the room's last seq).
    pub async fn mark_read(&self, caller: &Caller, room_id: i64, seq: i64) -> ServiceResult<()> {
        let found = self.room_access(caller, room_id).await?;
        found.access.mark_read()?;
        let seq = seq.min(found.info.last_seq);
        if self.store.mark_read(room_id, caller.id, seq).await? {
            self.bus.publish(Notice::ReadMarker {
                user_id: caller.id,
                room_id,
                seq,
            });
        }
        Ok(())
    }
}
