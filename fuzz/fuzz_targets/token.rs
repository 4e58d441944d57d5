//! Fuzzes access token verification (`service::auth::AccessTokens`) and refresh token
//! hashing (`service::auth::hash_refresh_token`).
//!
//! Properties: an arbitrary string never verifies (the committed corpus holds no token
//! signed with this key that is still valid) and is never mistaken for an expired one
//! unless it carries this key's signature; a token minted for any user id and username
//! verifies to exactly those claims; changing, cutting or extending any byte of it makes
//! it fail; a payload of the fuzzer's choosing signed with the key verifies only when it
//! holds a numeric `sub`, a string `username` and a future `exp` (claims it ignores may
//! hold any bytes); a refresh token's stored
//! form is 64 lowercase hex digits, the same for the same token and different for another.

#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use banter::domain::time::Timestamp;
use banter::service::ServiceError;
use banter::service::auth::{AccessTokens, hash_refresh_token};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SECRET: &[u8] = b"banter fuzzing key, not used anywhere else";
const LIFETIME_SECS: i64 = 600;

static TOKENS: LazyLock<AccessTokens> =
    LazyLock::new(|| AccessTokens::new(SECRET, Duration::from_secs(LIFETIME_SECS as u64)));
static OTHER_KEY: LazyLock<AccessTokens> =
    LazyLock::new(|| AccessTokens::new(b"some other key", Duration::from_secs(60)));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    arbitrary_string(&text);
    minted(data);
    signed_payload(data);
    refresh_hash(data, &text);
});

fn arbitrary_string(text: &str) {
    match TOKENS.verify(text) {
        Ok(claims) => panic!("an arbitrary string verified: {claims:?}"),
        Err(ServiceError::TokenExpired) => {
            assert!(
                TOKENS.expiry(text).is_some(),
                "expired but not signed by us"
            );
        }
        Err(ServiceError::Unauthenticated) => {}
        Err(other) => panic!("verification failed with {other:?}"),
    }
}

fn minted(data: &[u8]) {
    let (id_bytes, rest) = data.split_at(data.len().min(8));
    let mut id = [0u8; 8];
    id[..id_bytes.len()].copy_from_slice(id_bytes);
    let user_id = i64::from_le_bytes(id);
    let username = String::from_utf8_lossy(rest);
    let token = TOKENS
        .issue(user_id, &username, Timestamp::now())
        .expect("signing never fails");

    let (verified_id, claims) = TOKENS.verify(&token).expect("a fresh token verifies");
    assert_eq!(verified_id, user_id);
    assert_eq!(claims.sub, user_id.to_string());
    assert_eq!(claims.username, username);
    assert_eq!(claims.exp - claims.iat, LIFETIME_SECS);
    assert_eq!(TOKENS.expiry(&token), Some(claims.exp));
    assert!(OTHER_KEY.verify(&token).is_err(), "another key accepted it");

    let bytes = token.as_bytes();
    let seed = data.iter().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(*b as usize)
    });
    let at = seed % bytes.len();
    // A printable ASCII byte other than the one there.
    let replacement = 0x20 + ((bytes[at] - 0x20 + 1 + (seed / bytes.len() % 94) as u8) % 95);
    assert_ne!(replacement, bytes[at]);
    let mut changed = bytes.to_vec();
    changed[at] = replacement;
    let changed = String::from_utf8(changed).expect("ASCII");
    assert!(
        TOKENS.verify(&changed).is_err(),
        "changed at {at}: {changed}"
    );
    assert!(TOKENS.verify(&token[..at]).is_err(), "cut at {at}");
    let extended = format!("{token}{}", replacement as char);
    assert!(TOKENS.verify(&extended).is_err(), "extended: {extended}");
}

fn signed_payload(payload: &[u8]) {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .expect("HMAC signing never fails");
    let token = format!("{message}.{signature}");
    let now = Timestamp::now().millis() / 1000;
    match TOKENS.verify(&token) {
        Ok((user_id, claims)) => {
            // Claims the server ignores are skipped unread, so a payload that is JSON
            // only once its invalid UTF-8 is replaced (in such a claim) still verifies.
            let json: Value = serde_json::from_str(&String::from_utf8_lossy(payload))
                .expect("verified claims are JSON");
            assert_eq!(json["sub"].as_str(), Some(claims.sub.as_str()));
            assert_eq!(claims.sub.parse::<i64>(), Ok(user_id));
            assert_eq!(json["username"].as_str(), Some(claims.username.as_str()));
            assert!(
                claims.exp > now - 1,
                "expired at {} but verified",
                claims.exp
            );
        }
        Err(ServiceError::TokenExpired) => {
            // No expiry when another claim (an audience) is also wrong.
            if let Some(exp) = TOKENS.expiry(&token) {
                assert!(exp <= now + 1, "exp {exp} is in the future but expired");
            }
        }
        Err(ServiceError::Unauthenticated) => {}
        Err(other) => panic!("verification failed with {other:?}"),
    }
}

fn refresh_hash(data: &[u8], text: &str) {
    let hash = hash_refresh_token(text);
    assert_eq!(hash.len(), 64);
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(hash, hash_refresh_token(text));
    let other = format!("{text}{}", data.len() % 10);
    assert_ne!(hash, hash_refresh_token(&other));
}
