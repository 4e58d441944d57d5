//! Posting, editing, deleting and reading messages.

use super::auth::check_active;
use super::{Caller, Service, ServiceError, ServiceResult};
use crate::domain::model::Message;
use crate::domain::rules::Access;
use crate::domain::time::Timestamp;
use crate::domain::validate::{ClientId, MessageBody};
use crate::store::{DeleteOutcome, NewMessage, Page, PostOutcome};

/// A send's answer: the message, and whether this call stored it (false when its
/// `client_id` had been used before, so nothing new was stored or broadcast).
#[derive(Debug, Clone)]
pub struct PostResult {
    pub message: Message,
    pub created: bool,
}

fn message_not_found() -> ServiceError {
    ServiceError::NotFound("message not found".into())
}

impl Service {
    /// A page of a room's history for `reader_id`, the user of a valid access token
    /// (see [`Service::token_user`]): their account is checked in the same store call
    /// that reads the page ([`Store::history_page`]).
    ///
    /// [`Store::history_page`]: crate::store::Store::history_page
    pub async fn history(
        &self,
        reader_id: i64,
        room_id: i64,
        page: Page,
        limit: i64,
    ) -> ServiceResult<Vec<Message>> {
        let read = self
            .store
            .history_page(reader_id, room_id, page, limit)
            .await?;
        check_active(read.reader.ok_or(ServiceError::Unauthenticated)?)?;
        read.access
            .ok_or_else(ServiceError::room_not_found)?
            .read()?;
        Ok(read.messages)
    }

    pub async fn post_message(
        &self,
        caller: &Caller,
        room_id: i64,
        body: MessageBody,
        client_id: Option<ClientId>,
    ) -> ServiceResult<PostResult> {
        // The writer applies the posting rule inside the transaction that stores the
        // message: no read of its own per send, and no window for a removal to slip in.
        let outcome = self
            .writer
            .post(NewMessage {
                room_id,
                author_id: caller.id,
                content: body.as_str().to_owned(),
                client_id: client_id.map(|c| c.as_str().to_owned()),
                is_server_admin: caller.is_admin,
                now: Timestamp::now(),
            })
            .await?;
        // The writer has published the events: it does so even when this call is
        // cancelled after the commit.
        match outcome {
            PostOutcome::Created { message, .. } => Ok(PostResult {
                message,
                created: true,
            }),
            PostOutcome::Existing(message) => Ok(PostResult {
                message,
                created: false,
            }),
            PostOutcome::Denied(denied) => Err(denied.into()),
        }
    }

    /// A message of a room the caller can read, with the caller's standing there.
    async fn readable_message(
        &self,
        caller: &Caller,
        room_id: i64,
        message_id: i64,
    ) -> ServiceResult<(Access, Message)> {
        let found = self.room_access(caller, room_id).await?;
        found.access.read()?;
        let message = self
            .store
            .message(room_id, message_id)
            .await?
            .ok_or_else(message_not_found)?;
        Ok((found.access, message))
    }

    pub async fn edit_message(
        &self,
        caller: &Caller,
        room_id: i64,
        message_id: i64,
        body: MessageBody,
    ) -> ServiceResult<Message> {
        let (access, message) = self.readable_message(caller, room_id, message_id).await?;
        access.edit_message(message.author.id == caller.id)?;
        if message.deleted {
            return Err(message_not_found());
        }
        let event = self
            .store
            .edit_message(
                room_id,
                message_id,
                body.as_str().to_owned(),
                Timestamp::now(),
            )
            .await?
            .ok_or_else(message_not_found)?;
        let edited = match &event.kind {
            crate::domain::event::EventKind::MessageEdited { message } => message.clone(),
            _ => {
                return Err(ServiceError::Internal(
                    "edit produced an unexpected event".into(),
                ));
            }
        };
        self.publish_all([event]);
        Ok(edited)
    }

    /// Deletes a message as a tombstone. Deleting a deleted message changes nothing.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        room_id: i64,
        message_id: i64,
    ) -> ServiceResult<()> {
        let (access, message) = self.readable_message(caller, room_id, message_id).await?;
        access.delete_message(message.author.id == caller.id)?;
        match self
            .store
            .delete_message(room_id, message_id, Timestamp::now())
            .await?
        {
            DeleteOutcome::Deleted(event) => self.publish_all([event]),
            DeleteOutcome::AlreadyDeleted => {}
            DeleteOutcome::NotFound => return Err(message_not_found()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::bus::{Bus, LocalBus, Notice};
    use crate::service::AuthConfig;
    use crate::store::{NewRoom, NewUser, SqliteStore, Store};

    #[tokio::test]
    async fn a_posted_message_is_published_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("banter.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
        let service = Service::new(
            store.clone(),
            bus.clone(),
            AuthConfig {
                secret: vec![7; 32],
                access_lifetime: Duration::from_secs(600),
                refresh_lifetime: Duration::from_secs(3600),
            },
        );
        let now = Timestamp::now();
        let ann = store
            .create_user(NewUser {
                username: "ann".into(),
                username_key: "ann".into(),
                email: "ann@example.com".into(),
                email_key: "ann@example.com".into(),
                password_hash: "unused".into(),
                is_admin: false,
                now,
            })
            .await
            .unwrap();
        let room = store
            .create_room(NewRoom {
                name: "general".into(),
                name_key: "general".into(),
                topic: String::new(),
                is_private: false,
                owner_id: ann.id,
                now,
            })
            .await
            .unwrap();
        let mut notices = bus.subscribe();
        let caller = Caller {
            id: ann.id,
            username: "ann".into(),
            is_admin: false,
        };
        let posted = service
            .post_message(&caller, room.id, MessageBody::parse("hi").unwrap(), None)
            .await
            .unwrap();
        assert!(posted.created);
        // Anything published after the post lands behind its notices: a marker ends them.
        bus.publish(Notice::NodeAlive { node: 0 });
        let mut room_events = Vec::new();
        loop {
            match &*notices.recv().await.unwrap() {
                Notice::Room(event) => room_events.push(event.seq),
                Notice::NodeAlive { node: 0 } => break,
                _ => {}
            }
        }
        assert_eq!(room_events, vec![posted.message.seq]);
    }
}
