//! Request extractors that answer in the contract's error shape: the authenticated
//! caller, JSON bodies read field by field (so every invalid field is reported at once),
//! path ids and query parameters.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;
use crate::domain::validate::{FieldErrors, ParseResult};
use crate::service::Caller;

/// The access token of `Authorization: Bearer <access token>`.
struct BearerToken(String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(|token| BearerToken(token.to_owned()))
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The user id of a valid access token, whose account (it exists and is active) is
/// checked by the service call that uses it, in the same store call that reads what
/// the request asks for. For the history page only (see
/// [`Service::history`](crate::service::Service::history)); every other handler takes
/// [`AuthUser`].
pub struct TokenUser(pub i64);

impl FromRequestParts<AppState> for TokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let user_id = state.service.token_user(&token)?;
        tracing::Span::current().record("user.id", user_id);
        Ok(TokenUser(user_id))
    }
}

/// The caller, from `Authorization: Bearer <access token>`.
pub struct AuthUser(pub Caller);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let caller = state.service.authenticate(&token).await?;
        tracing::Span::current().record("user.id", caller.id);
        Ok(AuthUser(caller))
    }
}

/// The client's address, when the server was started with connection info.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(address))
    }
}

/// A JSON object body: 415 without a JSON content type, 413 over the body limit,
/// 400 `invalid_json` when it does not parse, 400 `validation_failed` when it is not an
/// object.
pub struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than 64 KiB",
                    )
                } else {
                    ApiError::invalid_json("the body could not be read")
                }
            })?;
        json_object(&bytes).map(JsonBody)
    }
}

/// A body's bytes as a JSON object: `invalid_json` when they do not parse,
/// `validation_failed` when they are not an object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::validation(
            FieldErrors::single("body", "must be a JSON object").0,
        )),
        Err(e) => Err(ApiError::invalid_json(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// Reads a body's fields, collecting every problem under its field name.
pub struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            errors: FieldErrors::default(),
        }
    }

    /// `null` counts as absent.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|value| !value.is_null())
    }

    fn string(&mut self, name: &str) -> Option<&'a str> {
        match self.get(name) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.errors.add(name, "must be a string");
                None
            }
        }
    }

    /// A required string, parsed by `parse`.
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> ParseResult<T>,
    ) -> Option<T> {
        if self.get(name).is_none() {
            self.errors.add(name, "is required");
            return None;
        }
        self.optional(name, parse)
    }

    /// An optional string, parsed by `parse` when present.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> ParseResult<T>,
    ) -> Option<T> {
        let raw = self.string(name)?;
        parse(raw)
            .map_err(|problem| self.errors.add(name, problem))
            .ok()
    }

    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.errors.add(name, "must be true or false");
                None
            }
        }
    }

    pub fn required_i64(&mut self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => {
                self.errors.add(name, "must be an integer");
                None
            }
            None => {
                self.errors.add(name, "is required");
                None
            }
        }
    }

    /// Records a problem found after reading (a rule across fields).
    pub fn reject(&mut self, name: &str, problem: &str) {
        self.errors.add(name, problem);
    }

    /// The required values, or `validation_failed` listing every invalid field.
    pub fn finish<T: AllSome>(self, values: T) -> Result<T::Output, ApiError> {
        if !self.errors.is_empty() {
            return Err(ApiError::validation(self.errors.0));
        }
        values
            .all_some()
            .ok_or_else(|| ApiError::validation(FieldErrors::single("body", "is incomplete").0))
    }
}

/// A tuple of `Option`s that is complete when every one is `Some`.
pub trait AllSome {
    type Output;
    fn all_some(self) -> Option<Self::Output>;
}

impl AllSome for () {
    type Output = ();
    fn all_some(self) -> Option<()> {
        Some(())
    }
}

impl<A> AllSome for (Option<A>,) {
    type Output = A;
    fn all_some(self) -> Option<A> {
        self.0
    }
}

impl<A, B> AllSome for (Option<A>, Option<B>) {
    type Output = (A, B);
    fn all_some(self) -> Option<(A, B)> {
        Some((self.0?, self.1?))
    }
}

impl<A, B, C> AllSome for (Option<A>, Option<B>, Option<C>) {
    type Output = (A, B, C);
    fn all_some(self) -> Option<(A, B, C)> {
        Some((self.0?, self.1?, self.2?))
    }
}

/// An id from the path; anything that is not an id names nothing, so 404.
pub struct PathIds<T>(pub T);

impl<S: Send + Sync, T> FromRequestParts<S> for PathIds<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| PathIds(path.0))
            .map_err(|_| ApiError::not_found("no such resource"))
    }
}

/// Query parameters as strings; handlers parse the ones they know.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|query| QueryParams(query.0))
            .map_err(|_| {
                ApiError::validation(FieldErrors::single("query", "is not a valid query string").0)
            })
    }
}
