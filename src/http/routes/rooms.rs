//! `/chat/rooms/…` and `/chat/direct/`: rooms, members, direct conversations, read markers.
//!
//! The `…Request` types document the bodies in the OpenAPI description; bodies are read
//! field by field with `Fields` so that every invalid field is reported at once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;

use crate::domain::model::{Member, Role, Room};
use crate::domain::validate::{RoomName, Topic};
use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{AuthUser, Fields, JsonBody, PathIds};

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateRoomRequest {
    /// 1–80 characters after trimming, unique regardless of case.
    name: String,
    /// At most 500 characters.
    topic: Option<String>,
    is_private: Option<bool>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateRoomRequest {
    name: Option<String>,
    topic: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UsernameRequest {
    username: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RoleRequest {
    /// `admin` or `member`.
    role: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadRequest {
    seq: i64,
}

#[utoipa::path(get, path = "/chat/rooms/", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, body = [Room], description = "Public rooms and the rooms the caller belongs to")))]
pub async fn list(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<Vec<Room>>> {
    Ok(Json(app.service.list_rooms(&caller).await?))
}

#[utoipa::path(post, path = "/chat/rooms/", tag = "rooms", security(("bearer" = [])), request_body = CreateRoomRequest,
    responses((status = 201, body = Room), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Room>)> {
    let mut fields = Fields::new(&body);
    let name = fields.required("name", RoomName::parse);
    let topic = fields.optional("topic", Topic::parse);
    let is_private = fields.optional_bool("is_private");
    let name = fields.finish((name,))?;
    let room = app
        .service
        .create_room(
            &caller,
            name,
            topic.unwrap_or_default(),
            is_private.unwrap_or(false),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

#[utoipa::path(get, path = "/chat/rooms/{room_id}/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), responses((status = 200, body = Room), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.service.get_room(&caller, room_id).await?))
}

#[utoipa::path(patch, path = "/chat/rooms/{room_id}/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), request_body = UpdateRoomRequest,
    responses((status = 200, body = Room), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Room>> {
    let mut fields = Fields::new(&body);
    let name = fields.optional("name", RoomName::parse);
    let topic = fields.optional("topic", Topic::parse);
    fields.finish(())?;
    Ok(Json(
        app.service
            .update_room(&caller, room_id, name, topic)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/chat/rooms/{room_id}/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
) -> ApiResult<StatusCode> {
    app.service.delete_room(&caller, room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/chat/rooms/{room_id}/join/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), responses((status = 200, body = Room), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.service.join_room(&caller, room_id).await?))
}

#[utoipa::path(post, path = "/chat/rooms/{room_id}/leave/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
) -> ApiResult<StatusCode> {
    app.service.leave_room(&caller, room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/chat/rooms/{room_id}/members/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), responses((status = 200, body = [Member]), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(app.service.members(&caller, room_id).await?))
}

#[utoipa::path(post, path = "/chat/rooms/{room_id}/members/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), request_body = UsernameRequest,
    responses((status = 201, body = Member, description = "Added"), (status = 200, body = Member, description = "Already a member"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invite(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let mut fields = Fields::new(&body);
    let username = fields.required("username", |s| Ok(s.to_owned()));
    let username = fields.finish((username,))?;
    let (member, created) = app.service.invite(&caller, room_id, &username).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(member)))
}

#[utoipa::path(patch, path = "/chat/rooms/{room_id}/members/{user_id}/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path), ("user_id" = i64, Path)), request_body = RoleRequest,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_role(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds((room_id, user_id)): PathIds<(i64, i64)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Member>> {
    let mut fields = Fields::new(&body);
    let role = fields.required("role", |s| match Role::parse(s) {
        Some(role @ (Role::Admin | Role::Member)) => Ok(role),
        _ => Err("must be 'admin' or 'member'".into()),
    });
    let role = fields.finish((role,))?;
    Ok(Json(
        app.service
            .set_member_role(&caller, room_id, user_id, role)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/chat/rooms/{room_id}/members/{user_id}/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds((room_id, user_id)): PathIds<(i64, i64)>,
) -> ApiResult<StatusCode> {
    app.service.remove_member(&caller, room_id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/chat/direct/", tag = "rooms", security(("bearer" = [])), request_body = UsernameRequest,
    responses((status = 201, body = Room, description = "Created"), (status = 200, body = Room, description = "Already existed"),
        (status = 404, body = ErrorBody)))]
pub async fn direct(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Room>)> {
    let mut fields = Fields::new(&body);
    let username = fields.required("username", |s| Ok(s.to_owned()));
    let username = fields.finish((username,))?;
    let (room, created) = app.service.direct_room(&caller, &username).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(room)))
}

#[utoipa::path(post, path = "/chat/rooms/{room_id}/read/", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = i64, Path)), request_body = ReadRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(room_id): PathIds<i64>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut fields = Fields::new(&body);
    let seq = fields.required_i64("seq");
    if seq.is_some_and(|seq| seq < 0) {
        fields.reject("seq", "must not be negative");
    }
    let seq = fields.finish((seq,))?;
    app.service.mark_read(&caller, room_id, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}
