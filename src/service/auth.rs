//! Accounts and tokens: Argon2id password hashes (computed on the blocking pool, never
//! on the async workers), short-lived JWT access tokens, and opaque single-use refresh
//! tokens stored only as SHA-256 hashes and rotated in families (see
//! `Store::rotate_refresh_token`).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::limiter::LoginLimiter;
use super::{Caller, Service, ServiceError, ServiceResult};
use crate::domain::model::User;
use crate::domain::time::Timestamp;
use crate::domain::validate::{Email, Password, Username};
use crate::store::{AccountFlags, NewRefreshToken, NewUser, RotateOutcome, StoreError};

pub struct AuthConfig {
    /// The HMAC key access tokens are signed with.
    pub secret: Vec<u8>,
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
}

pub(super) struct Auth {
    tokens: AccessTokens,
    refresh_lifetime: Duration,
    limiter: LoginLimiter,
}

impl Auth {
    pub(super) fn new(config: AuthConfig) -> Self {
        Self {
            tokens: AccessTokens::new(&config.secret, config.access_lifetime),
            refresh_lifetime: config.refresh_lifetime,
            limiter: LoginLimiter::new(),
        }
    }
}

/// Signs and checks access tokens (HS256 JWTs). Pure: checking a token needs only the
/// key and the clock, so it can be tested and fuzzed without a store.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl AccessTokens {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// A token for the user, valid for the lifetime from `now` (at least a second).
    pub fn issue(&self, user_id: i64, username: &str, now: Timestamp) -> ServiceResult<String> {
        let issued = now.millis() / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iat: issued,
            exp: issued + (millis(self.lifetime) / 1000).max(1),
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .map_err(|e| ServiceError::Internal(format!("cannot sign access token: {e}")))
    }

    /// The user id and claims of a token signed with this key and not yet expired:
    /// `TokenExpired` when only the expiry is wrong, `Unauthenticated` for anything else
    /// (including a `sub` that is not a user id).
    pub fn verify(&self, token: &str) -> ServiceResult<(i64, Claims)> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ServiceError::TokenExpired,
                _ => ServiceError::Unauthenticated,
            })?
            .claims;
        let user_id = claims
            .sub
            .parse()
            .map_err(|_| ServiceError::Unauthenticated)?;
        Ok((user_id, claims))
    }

    /// When a token signed with this key stops being valid, expired or not.
    pub fn expiry(&self, token: &str) -> Option<i64> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims.exp)
    }
}

/// The access token's claims, as the contract lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub exp: i64,
    pub iat: i64,
}

/// What register, login and refresh hand back.
#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user: User,
}

/// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
/// A deactivated user's tokens stop working at once: every request re-reads the flag.
pub(super) fn check_active(account: AccountFlags) -> ServiceResult<()> {
    if account.is_active {
        Ok(())
    } else {
        Err(ServiceError::TokenRevoked)
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Argon2 takes 19 MiB and tens of milliseconds per hash: at most one per core at a
/// time, so a burst of logins queues instead of exhausting memory and the blocking pool.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )
    })
}

async fn hashing_permit() -> ServiceResult<tokio::sync::SemaphorePermit<'static>> {
    hashing_permits()
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing is closed: {e}")))
}

pub async fn hash_password(password: Password) -> ServiceResult<String> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))?
}

async fn verify_password(hash: String, password: String) -> ServiceResult<bool> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ServiceError::Internal(format!("stored password hash is invalid: {e}")))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password check task failed: {e}")))?
}

/// A valid hash of nothing anyone knows, checked against when the username is unknown so
/// that both failures take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"decoy password that matches nothing", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a refresh token: its SHA-256, as 64 lowercase hex digits.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Service {
    async fn start_session(
        &self,
        user: User,
        family_id: Option<String>,
        now: Timestamp,
    ) -> ServiceResult<Session> {
        let access = self.auth.tokens.issue(user.id, &user.username, now)?;
        let refresh = new_refresh_token();
        self.store
            .insert_refresh_token(NewRefreshToken {
                user_id: user.id,
                family_id: family_id.unwrap_or_else(new_refresh_token),
                token_hash: hash_refresh_token(&refresh),
                expires_at: now.plus_millis(millis(self.auth.refresh_lifetime)),
                now,
            })
            .await?;
        Ok(Session {
            access,
            refresh,
            user,
        })
    }

    /// Creates an account (used by `/auth/register/` and by the CLI, which may make an
    /// admin). Conflicts name the taken field.
    pub async fn create_user(
        &self,
        username: Username,
        email: Email,
        password: Password,
        is_admin: bool,
    ) -> ServiceResult<crate::store::UserRecord> {
        let password_hash = hash_password(password).await?;
        let created = self
            .store
            .create_user(NewUser {
                username: username.as_str().to_owned(),
                username_key: username.key(),
                email: email.as_str().to_owned(),
                email_key: email.key(),
                password_hash,
                is_admin,
                now: Timestamp::now(),
            })
            .await;
        match created {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict(what)) if what.contains("email") => Err(
                ServiceError::Conflict("that email address is already registered".into()),
            ),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(
                "that username is already taken".into(),
            )),
            Err(other) => Err(other.into()),
        }
    }

    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: Password,
    ) -> ServiceResult<Session> {
        let user = self.create_user(username, email, password, false).await?;
        tracing::info!(user.id = user.id, "user registered");
        self.start_session(user.private(), None, Timestamp::now())
            .await
    }

    /// Logs in by username (any case). The same error for an unknown user, a wrong
    /// password and a deactivated account.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> ServiceResult<Session> {
        let username_key = username.to_ascii_lowercase();
        self.auth
            .limiter
            .check(&username_key, address)
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        let user = self.store.user_by_username(username_key).await?;
        let hash = user
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
        let matches = verify_password(hash, password).await?;
        match user {
            Some(user) if matches && user.is_active => {
                tracing::info!(user.id = user.id, "login");
                self.start_session(user.private(), None, Timestamp::now())
                    .await
            }
            _ => Err(ServiceError::InvalidCredentials),
        }
    }

    /// Spends a refresh token for a new pair. A token presented twice revokes its family.
    pub async fn refresh(&self, refresh_token: &str) -> ServiceResult<Session> {
        let now = Timestamp::now();
        let next = new_refresh_token();
        let outcome = self
            .store
            .rotate_refresh_token(
                hash_refresh_token(refresh_token),
                hash_refresh_token(&next),
                now.plus_millis(millis(self.auth.refresh_lifetime)),
                now,
            )
            .await?;
        let user_id = match outcome {
            RotateOutcome::Rotated { user_id } => user_id,
            RotateOutcome::Reused => {
                tracing::warn!("a spent refresh token was presented again; its family is revoked");
                return Err(ServiceError::TokenRevoked);
            }
            RotateOutcome::Expired => return Err(ServiceError::TokenExpired),
            RotateOutcome::Unknown => return Err(ServiceError::Unauthenticated),
        };
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(ServiceError::TokenRevoked)?;
        if !user.is_active {
            return Err(ServiceError::TokenRevoked);
        }
        let access = self.auth.tokens.issue(user.id, &user.username, now)?;
        Ok(Session {
            access,
            refresh: next,
            user: user.private(),
        })
    }

    /// Ends the login the refresh token belongs to. Unknown tokens are fine: logging out
    /// twice is not an error.
    pub async fn logout(&self, refresh_token: &str) -> ServiceResult<()> {
        self.store
            .revoke_refresh_family(hash_refresh_token(refresh_token), Timestamp::now())
            .await?;
        Ok(())
    }

    /// The user id of a valid access token, without checking the account: for a store
    /// call that checks it itself. Everything else calls [`Service::authenticate`].
    pub fn token_user(&self, access_token: &str) -> ServiceResult<i64> {
        Ok(self.auth.tokens.verify(access_token)?.0)
    }

    /// Checks an access token and that its user is still active (so deactivation takes
    /// effect at once, not when the token expires).
    pub async fn authenticate(&self, access_token: &str) -> ServiceResult<Caller> {
        let user_id = self.token_user(access_token)?;
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        check_active(user.flags())?;
        Ok(Caller {
            id: user.id,
            username: user.username,
            is_admin: user.is_admin,
        })
    }

    /// When the access token stops being valid (for the gateway's expiry grace period).
    pub fn access_expiry(&self, access_token: &str) -> Option<i64> {
        self.auth.tokens.expiry(access_token)
    }

    pub async fn me(&self, caller: &Caller) -> ServiceResult<User> {
        let user = self
            .store
            .user_by_id(caller.id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(user.private())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let hash = hash_refresh_token(&a);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, a);
        assert_eq!(hash, hash_refresh_token(&a));
    }

    #[tokio::test]
    async fn password_hashes_are_argon2id_at_owasp_minimum() {
        let hash = hash_password(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password(hash.clone(), "correct horse".into())
                .await
                .unwrap()
        );
        assert!(!verify_password(hash, "wrong horse".into()).await.unwrap());
    }
}
