//! `/admin/…`: server administration (server admins only; others get 403).

use axum::Json;
use axum::extract::State;
use utoipa::ToSchema;

use crate::domain::model::{Room, User};
use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{AuthUser, Fields, JsonBody, PathIds, QueryParams};

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserFlagsRequest {
    is_active: Option<bool>,
    is_admin: Option<bool>,
}

#[utoipa::path(get, path = "/admin/users/", tag = "admin", security(("bearer" = [])),
    params(("search" = Option<String>, Query, description = "Only users whose username or email contains this")),
    responses((status = 200, body = [User]), (status = 403, body = ErrorBody)))]
pub async fn users(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    QueryParams(params): QueryParams,
) -> ApiResult<Json<Vec<User>>> {
    let search = params.get("search").filter(|s| !s.is_empty()).cloned();
    Ok(Json(app.service.admin_list_users(&caller, search).await?))
}

#[utoipa::path(patch, path = "/admin/users/{user_id}/", tag = "admin", security(("bearer" = [])),
    params(("user_id" = i64, Path)), request_body = UserFlagsRequest,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
    PathIds(user_id): PathIds<i64>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<User>> {
    let mut fields = Fields::new(&body);
    let is_active = fields.optional_bool("is_active");
    let is_admin = fields.optional_bool("is_admin");
    fields.finish(())?;
    Ok(Json(
        app.service
            .admin_update_user(&caller, user_id, is_active, is_admin)
            .await?,
    ))
}

#[utoipa::path(get, path = "/admin/rooms/", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [Room]), (status = 403, body = ErrorBody)))]
pub async fn rooms(
    State(app): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<Vec<Room>>> {
    Ok(Json(app.service.admin_list_rooms(&caller).await?))
}
