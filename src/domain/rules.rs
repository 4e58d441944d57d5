//! Who may do what in a room. The service gathers an [`Access`] (the room's kind and the
//! caller's role) and asks it; the answer is `Ok` or why not. A private room is invisible
//! to non-members, so every rule answers `NotFound` to them before anything else.

use super::model::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The room (or what the caller asked about) does not exist for this caller.
    NotFound,
    /// The caller can see the room but may not do this; the sentence says why.
    Forbidden(&'static str),
}

pub type Rule = Result<(), Denied>;

/// The caller's standing in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub is_private: bool,
    pub is_direct: bool,
    /// `None` when the caller is not a member.
    pub role: Option<Role>,
    pub is_server_admin: bool,
}

/// What posting needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostMode {
    AlreadyMember,
    /// A public room: the poster joins it in the same transaction.
    JoinFirst,
}

impl Access {
    fn visible(&self) -> Rule {
        if self.is_private && self.role.is_none() {
            Err(Denied::NotFound)
        } else {
            Ok(())
        }
    }

    fn is_room_admin(&self) -> bool {
        matches!(self.role, Some(Role::Owner | Role::Admin))
    }

    /// See the room, its members and its history.
    pub fn read(&self) -> Rule {
        self.visible()
    }

    pub fn post(&self) -> Result<PostMode, Denied> {
        self.visible()?;
        Ok(match self.role {
            Some(_) => PostMode::AlreadyMember,
            None => PostMode::JoinFirst,
        })
    }

    /// Join a public room; joining a room one is already in is harmless.
    pub fn join(&self) -> Rule {
        self.visible()?;
        if self.is_direct && self.role.is_none() {
            return Err(Denied::NotFound);
        }
        Ok(())
    }

    pub fn leave(&self) -> Rule {
        self.visible()?;
        if self.is_direct {
            return Err(Denied::Forbidden("a direct conversation cannot be left"));
        }
        Ok(())
    }

    pub fn update_room(&self) -> Rule {
        self.visible()?;
        if self.is_direct {
            return Err(Denied::Forbidden("a direct conversation cannot be changed"));
        }
        if !self.is_room_admin() {
            return Err(Denied::Forbidden(
                "only the room's owner or admins may change it",
            ));
        }
        Ok(())
    }

    /// The owner deletes their room; a server admin may delete any room, even one they
    /// cannot see.
    pub fn delete_room(&self) -> Rule {
        if self.is_server_admin {
            return Ok(());
        }
        self.visible()?;
        if self.role != Some(Role::Owner) {
            return Err(Denied::Forbidden("only the room's owner may delete it"));
        }
        Ok(())
    }

    pub fn invite(&self) -> Rule {
        self.visible()?;
        if self.is_direct {
            return Err(Denied::Forbidden(
                "nobody can be added to a direct conversation",
            ));
        }
        if !self.is_room_admin() {
            return Err(Denied::Forbidden(
                "only the room's owner or admins may invite",
            ));
        }
        Ok(())
    }

    /// Only the owner hands out `admin`/`member`; the owner's own role is not for changing.
    pub fn set_role(&self, target: Role) -> Rule {
        self.visible()?;
        if self.role != Some(Role::Owner) {
            return Err(Denied::Forbidden("only the room's owner may change roles"));
        }
        if target == Role::Owner {
            return Err(Denied::Forbidden("the owner's role cannot be changed"));
        }
        Ok(())
    }

    /// Removing someone else: the owner removes anyone, an admin removes plain members.
    /// Removing oneself is leaving (see [`Access::leave`]).
    pub fn remove_member(&self, target: Role) -> Rule {
        self.visible()?;
        if self.is_direct {
            return Err(Denied::Forbidden(
                "nobody can be removed from a direct conversation",
            ));
        }
        match (self.role, target) {
            (Some(Role::Owner), _) => Ok(()),
            (Some(Role::Admin), Role::Member) => Ok(()),
            (Some(Role::Admin), _) => Err(Denied::Forbidden("admins may remove only members")),
            _ => Err(Denied::Forbidden(
                "only the room's owner or admins may remove members",
            )),
        }
    }

    pub fn edit_message(&self, caller_is_author: bool) -> Rule {
        self.visible()?;
        if !caller_is_author {
            return Err(Denied::Forbidden("only the author may edit a message"));
        }
        Ok(())
    }

    pub fn delete_message(&self, caller_is_author: bool) -> Rule {
        self.visible()?;
        if caller_is_author || self.is_room_admin() || self.is_server_admin {
            return Ok(());
        }
        Err(Denied::Forbidden(
            "only the author, the room's owner or admins, or a server admin may delete a message",
        ))
    }

    /// Read markers belong to a membership.
    pub fn mark_read(&self) -> Rule {
        self.visible()?;
        if self.role.is_none() {
            return Err(Denied::Forbidden("join the room to keep a read marker"));
        }
        Ok(())
    }
}

/// Who becomes owner when the owner leaves: the longest-standing admin, else the
/// longest-standing member. `members` is in join order and excludes the leaving owner.
pub fn next_owner(members: &[(i64, Role)]) -> Option<i64> {
    members
        .iter()
        .find(|(_, role)| *role == Role::Admin)
        .or_else(|| members.first())
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(is_private: bool, role: Option<Role>) -> Access {
        Access {
            is_private,
            is_direct: false,
            role,
            is_server_admin: false,
        }
    }

    #[test]
    fn private_rooms_are_invisible_to_non_members() {
        let outsider = access(true, None);
        assert_eq!(outsider.read(), Err(Denied::NotFound));
        assert_eq!(outsider.post(), Err(Denied::NotFound));
        assert_eq!(outsider.join(), Err(Denied::NotFound));
        assert_eq!(outsider.invite(), Err(Denied::NotFound));
        assert_eq!(outsider.update_room(), Err(Denied::NotFound));
        assert_eq!(outsider.delete_room(), Err(Denied::NotFound));
        assert_eq!(outsider.delete_message(false), Err(Denied::NotFound));
    }

    #[test]
    fn posting_to_a_public_room_joins_it() {
        assert_eq!(access(false, None).post(), Ok(PostMode::JoinFirst));
        assert_eq!(
            access(false, Some(Role::Member)).post(),
            Ok(PostMode::AlreadyMember)
        );
    }

    #[test]
    fn room_changes_need_owner_or_admin() {
        assert!(access(false, Some(Role::Owner)).update_room().is_ok());
        assert!(access(false, Some(Role::Admin)).update_room().is_ok());
        assert!(matches!(
            access(false, Some(Role::Member)).update_room(),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            access(false, None).update_room(),
            Err(Denied::Forbidden(_))
        ));
    }

    #[test]
    fn deleting_a_room_is_for_its_owner_or_a_server_admin() {
        assert!(access(true, Some(Role::Owner)).delete_room().is_ok());
        assert!(matches!(
            access(false, Some(Role::Admin)).delete_room(),
            Err(Denied::Forbidden(_))
        ));
        let server_admin = Access {
            is_server_admin: true,
            ..access(true, None)
        };
        assert!(server_admin.delete_room().is_ok());
    }

    #[test]
    fn roles_and_removals() {
        let owner = access(true, Some(Role::Owner));
        let admin = access(true, Some(Role::Admin));
        assert!(owner.set_role(Role::Member).is_ok());
        assert!(owner.set_role(Role::Owner).is_err());
        assert!(admin.set_role(Role::Member).is_err());
        assert!(owner.remove_member(Role::Admin).is_ok());
        assert!(admin.remove_member(Role::Member).is_ok());
        assert!(admin.remove_member(Role::Admin).is_err());
        assert!(admin.remove_member(Role::Owner).is_err());
        assert!(
            access(true, Some(Role::Member))
                .remove_member(Role::Member)
                .is_err()
        );
    }

    #[test]
    fn message_edits_are_the_authors_and_deletes_also_moderators() {
        let member = access(false, Some(Role::Member));
        assert!(member.edit_message(true).is_ok());
        assert!(member.edit_message(false).is_err());
        assert!(member.delete_message(false).is_err());
        assert!(
            access(false, Some(Role::Admin))
                .delete_message(false)
                .is_ok()
        );
        let server_admin = Access {
            is_server_admin: true,
            ..access(false, None)
        };
        assert!(server_admin.delete_message(false).is_ok());
        assert!(server_admin.edit_message(false).is_err());
    }

    #[test]
    fn direct_rooms_cannot_be_left_joined_by_others_or_extended() {
        let direct = Access {
            is_direct: true,
            ..access(true, Some(Role::Member))
        };
        assert!(direct.leave().is_err());
        assert!(direct.invite().is_err());
        assert!(direct.update_room().is_err());
        let outsider = Access {
            is_direct: true,
            ..access(true, None)
        };
        assert_eq!(outsider.join(), Err(Denied::NotFound));
    }

    #[test]
    fn ownership_passes_to_the_oldest_admin_then_the_oldest_member() {
        assert_eq!(next_owner(&[(2, Role::Member), (3, Role::Admin)]), Some(3));
        assert_eq!(next_owner(&[(2, Role::Member), (4, Role::Member)]), Some(2));
        assert_eq!(next_owner(&[]), None);
    }
}
