//! Posting, editing, deleting and reading messages.

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::domain::model::Message;
use crate::domain::rules::{Access, PostMode};
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
    pub async fn history(
        &self,
        caller: &Caller,
        room_id: i64,
        page: Page,
        limit: i64,
    ) -> ServiceResult<Vec<Message>> {
        self.room_access(caller, room_id).await?.access.read()?;
        Ok(self.store.messages_page(room_id, page, limit).await?)
    }

    pub async fn post_message(
        &self,
        caller: &Caller,
        room_id: i64,
        body: MessageBody,
        client_id: Option<ClientId>,
    ) -> ServiceResult<PostResult> {
        let found = self.room_access(caller, room_id).await?;
        let mode = found.access.post()?;
        let outcome = self
            .writer
            .post(NewMessage {
                room_id,
                author_id: caller.id,
                content: body.as_str().to_owned(),
                client_id: client_id.map(|c| c.as_str().to_owned()),
                join: mode == PostMode::JoinFirst,
                now: Timestamp::now(),
            })
            .await?;
        match outcome {
            PostOutcome::Created { message, events } => {
                self.publish_all(events);
                Ok(PostResult {
                    message,
                    created: true,
                })
            }
            PostOutcome::Existing(message) => Ok(PostResult {
                message,
                created: false,
            }),
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
