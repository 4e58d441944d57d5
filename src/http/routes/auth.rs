//! `/auth/…`: register, login, refresh, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::model::User;
use crate::domain::validate::{Email, Password, Username};
use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{AuthUser, ClientAddress, Fields, JsonBody};
use crate::service::Session;

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    access: String,
    refresh: String,
    user: User,
}

impl From<Session> for SessionResponse {
    fn from(session: Session) -> Self {
        Self {
            access: session.access,
            refresh: session.refresh,
            user: session.user,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    access: String,
    refresh: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RegisterRequest {
    /// 3–32 characters of `[A-Za-z0-9_.-]`, unique regardless of case.
    username: String,
    email: String,
    /// 8–1024 characters.
    password: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RefreshRequest {
    refresh: String,
}

#[utoipa::path(post, path = "/auth/register/", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn register(
    State(app): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let mut fields = Fields::new(&body);
    let username = fields.required("username", Username::parse);
    let email = fields.required("email", Email::parse);
    let password = fields.required("password", Password::parse);
    let (username, email, password) = fields.finish((username, email, password))?;
    let session = app.service.register(username, email, password).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

#[utoipa::path(post, path = "/auth/login/", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<SessionResponse>> {
    let mut fields = Fields::new(&body);
    let username = fields.required("username", |s| Ok(s.to_owned()));
    let password = fields.required("password", |s| Ok(s.to_owned()));
    let (username, password) = fields.finish((username, password))?;
    let session = app.service.login(&username, password, address).await?;
    Ok(Json(session.into()))
}

#[utoipa::path(post, path = "/auth/token/refresh/", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(app): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let mut fields = Fields::new(&body);
    let token = fields.required("refresh", |s| Ok(s.to_owned()));
    let token = fields.finish((token,))?;
    let session = app.service.refresh(&token).await?;
    Ok(Json(TokenPair {
        access: session.access,
        refresh: session.refresh,
    }))
}

#[utoipa::path(post, path = "/auth/logout/", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The login's refresh tokens are revoked")))]
pub async fn logout(
    State(app): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut fields = Fields::new(&body);
    let token = fields.required("refresh", |s| Ok(s.to_owned()));
    let token = fields.finish((token,))?;
    app.service.logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/auth/me/", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(State(app): State<AppState>, AuthUser(caller): AuthUser) -> ApiResult<Json<User>> {
    Ok(Json(app.service.me(&caller).await?))
}
