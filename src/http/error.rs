//! The one place errors become the contract's error body:
//! `{"error": {"code", "message", "fields"?}}` with the matching status. Internal causes
//! are logged here and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Option<BTreeMap<String, String>>,
    retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The error body, as documented in the OpenAPI description.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<BTreeMap<String, String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
        }
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        Self {
            fields: Some(fields),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "the request has invalid fields",
            )
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The invalid fields of a `validation_failed`, by request name.
    pub fn fields(&self) -> Option<&BTreeMap<String, String>> {
        self.fields.as_ref()
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid access token is required",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Validation(fields) => ApiError::validation(fields.0),
            ServiceError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid username or password",
            ),
            ServiceError::Unauthenticated => ApiError::unauthenticated(),
            ServiceError::TokenExpired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token has expired",
            ),
            ServiceError::TokenRevoked => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_revoked",
                "the token has been revoked",
            ),
            ServiceError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", why),
            ServiceError::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many attempts; try again in {retry_after_secs} s"),
                )
            },
            ServiceError::Unavailable(why) => {
                tracing::warn!(cause = %why, "answering 503: storage unavailable");
                ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the service is temporarily unavailable; try again shortly",
                    )
                }
            }
            ServiceError::Internal(why) => {
                tracing::error!(cause = %why, "answering 500");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
