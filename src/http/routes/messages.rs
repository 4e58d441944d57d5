//! `/chat/rooms/{room_id}/messages/…` (and the original API's `/chat/messages/{room_id}/messages/`).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

use crate::domain::model::Message;
use crate::domain::validate::{ClientId, MessageBody};
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{AuthUser, Fields, JsonBody, PathIds, QueryParams, TokenUser};
use crate::store::Page;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 100;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PostMessageRequest {
    /// 1–4000 characters after trimming.
    message: String,
    /// Up to 64 characters; makes the send idempotent for this user.
    client_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EditMessageRequest {
    message: String,
}

/// Reads `limit`, `before_seq` and `after_seq`, reporting every bad one.
pub fn parse_page(params: &HashMap<String, String>) -> Result<(Page, i64), ApiError> {
    let mut errors = BTreeMap::new();
    let mut number = |name: &str, min: i64, max: i64| -> Option<i64> {
        let raw = params.get(name)?;
        match raw.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let problem = if max == i64::MAX {
                    format!("must be an integer of at least {min}")
                } else {
                    format!("must be an integer from {min} to {max}")
                };
                errors.insert(name.to_owned(), problem);
                None
            }
        }
    };
    let limit = number("limit", 1, MAX_PAGE).unwrap_or(DEFAULT_PAGE);
    let before = number("before_seq", 0, i64::MAX);
    let after = number("after_seq", 0, i64::MAX);
    let page = match (before, after) {
        (Some(_), Some(_)) => {
            errors.insert(
                "before_seq".into(),
                "use before_seq or after_seq, not both".into(),
            );
            Page::Newest
        }
        (Some(seq), None) => Page::Before(seq),
        (None, Some(seq)) => Page::After(seq),
        (None, None) => Page::Newest,
    };
    if errors.is_empty() {
        Ok((page, limit))
    } else {
        Err(ApiError::validation(errors))
    }
}

#[utoipa::path(get, path = "/chat/rooms/{room_id}/messages/", tag = "messages", security(("bearer" = [])),
    params(("room_id" = i64, Path),
        ("limit" = Option<i64>, Query, description = "1–100, default 50"),
        ("before_seq" = Option<i64>, Query, description = "The page just older than this seq"),
        ("after_seq" = Option<i64>, Query, description = "The page just newer than this seq")),
    responses((status = 200, body = [Message], description = "One page, ascending by seq"), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(app): State<AppState>,
    TokenUser(reader_id): TokenUser,
    PathIds(room_id): PathIds<i64>,
    QueryParams(params): QueryParams,
) -> ApiResult<Json<Vec<Message>>> {
    let (page, limit) = parse_page(&params)?;
    Ok(Json(
        app.service.history(reader_id, room_id, page, limit).await?,
    ))
}

/// The original API's path for [`history`], listed on its own so the API description
/// names every path the server answers.
#[utoipa::path(get, path = "/chat/messages/{room_id}/messages/", tag = "messages", security(("bearer" = [])),
    params(("room_id" = i64, Path),
        ("limit" = Option<i64>, Query, description = "1–100, default 50"),
        ("before_seq" = Option<i64>, Query, description = "The page just older than this seq"),
        ("after_seq" = Option<i64>, Query, description = "The page just newer than this seq")),
    responses((status = 200, body = [Message], description = "One page, ascending by seq"), (status = 404, body = ErrorBody)))]
pub async fn history_original(
    state: State<AppState>,
    reader: TokenUser,
    room_id: PathIds<i64>,
    params: QueryParams,
) -> ApiResult<Json<Vec<Message>>> {
    history(state, reader, room_id, params).await
}

#[utoipa::path(post, path = "/chat/rooms/{room_id}/messages/", tag = "messages", security(("bearer" = [])),
    params(("room_id" = i64, Path)), request_body = PostMessageRequest,
    responses((status = 201, body = Message), (status = 200, body = Message, description = "The client_id was used before: the original message"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn post(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut fields = Fields::new(&body);
    let message = fields.required("message", MessageBody::parse);
    let client_id = fields.optional("client_id", ClientId::parse);
    let message = fields.finish((message,))?;
    let posted = app
        .service
        .post_message(&caller, room_id, message, client_id)
        .await?;
    let status = if posted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(posted.message)).into_response())
}

#[utoipa::path(patch, path = "/chat/rooms/{room_id}/messages/{message_id}/", tag = "messages", security(("bearer" = [])),
    params(("room_id" = i64, Path), ("message_id" = i64, Path)), request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn edit(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds((room_id, message_id)): PathIds<(i64, i64)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Message>> {
    let mut fields = Fields::new(&body);
    let message = fields.required("message", MessageBody::parse);
    let message = fields.finish((message,))?;
    Ok(Json(
        app.service
            .edit_message(&caller, room_id, message_id, message)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/chat/rooms/{room_id}/messages/{message_id}/", tag = "messages", security(("bearer" = [])),
    params(("room_id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds((room_id, message_id)): PathIds<(i64, i64)>,
) -> ApiResult<StatusCode> {
    app.service
        .delete_message(&caller, room_id, message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pages_default_to_the_newest_fifty() {
        assert_eq!(parse_page(&params(&[])).unwrap(), (Page::Newest, 50));
        assert_eq!(
            parse_page(&params(&[("limit", "100"), ("before_seq", "7")])).unwrap(),
            (Page::Before(7), 100)
        );
        assert_eq!(
            parse_page(&params(&[("after_seq", "0")])).unwrap(),
            (Page::After(0), 50)
        );
    }

    #[test]
    fn bad_page_parameters_are_all_reported() {
        for bad in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "x"),
            ("before_seq", "-1"),
            ("after_seq", "1.5"),
        ] {
            assert!(parse_page(&params(&[bad])).is_err(), "{bad:?}");
        }
        assert!(parse_page(&params(&[("before_seq", "3"), ("after_seq", "1")])).is_err());
    }
}
