//! Accounts and tokens: register, login, refresh rotation and reuse detection, logout,
//! `/auth/me/`, login throttling and the account limits of the contract.

mod common;

use common::{Backend, assert_error, assert_timestamp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Decodes a JWT's payload (base64url without padding) into JSON.
fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in parts[1].bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    serde_json::from_slice(&out).expect("JWT payload is JSON")
}

async fn register_returns_a_session_and_the_private_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app
        .register_raw(
            json!({"username": "Ann", "email": "Ann@Example.com", "password": "password-ann"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user = &body["user"];
    assert!(user["id"].is_i64());
    assert_eq!(user["username"], "Ann");
    assert_eq!(user["email"], "Ann@Example.com");
    assert_eq!(user["is_admin"], false);
    assert_timestamp(&user["created_at"]);
    let access = body["access"].as_str().unwrap();
    let refresh = body["refresh"].as_str().unwrap();
    assert!(!refresh.is_empty());
    assert_ne!(access, refresh);

    let claims = jwt_claims(access);
    assert_eq!(claims["sub"], user["id"].as_i64().unwrap().to_string());
    assert_eq!(claims["username"], "Ann");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 600, "default access lifetime is 10 minutes");

    let (status, me) = app.get("/auth/me/", access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["username"], "Ann");
    assert_eq!(me["email"], "Ann@Example.com");
    assert_eq!(me["is_admin"], false);
    assert_timestamp(&me["created_at"]);
}

async fn me_needs_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let (status, body) = app.call(Method::GET, "/auth/me/", None, None).await;
    assert_error(status, &body, 401, "unauthenticated");
    assert!(body["error"].get("fields").is_none());
    let (status, body) = app.get("/auth/me/", "not-a-jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["code"].is_string());
    // A token whose signature was tampered with.
    let mut forged = ann.access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = app.get("/auth/me/", &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The refresh token is not an access token.
    let (status, _) = app.get("/auth/me/", &ann.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn login_works_in_any_case_and_fails_alike_for_unknown_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let (status, body) = app.login("ANN", "password-ann").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], ann.id);
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert!(body["access"].is_string() && body["refresh"].is_string());
    let (status, me) = app.get("/auth/me/", body["access"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "ann");

    let (status, wrong_password) = app.login("ann", "password-bob").await;
    assert_error(status, &wrong_password, 401, "invalid_credentials");
    let (status, unknown_user) = app.login("nobody", "password-ann").await;
    assert_error(status, &unknown_user, 401, "invalid_credentials");
    assert_eq!(
        wrong_password, unknown_user,
        "failures must not reveal whether the user exists"
    );

    let (status, body) = app
        .call(Method::POST, "/auth/login/", None, Some(json!({})))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["username"].is_string());
    assert!(body["error"]["fields"]["password"].is_string());
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let (status, second_login) = app.login("ann", "password-ann").await;
    assert_eq!(status, StatusCode::OK);

    let refresh = |token: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/auth/token/refresh/",
                None,
                Some(json!({ "refresh": token })),
            )
            .await
        }
    };
    let (status, pair) = refresh(ann.refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let new_refresh = pair["refresh"].as_str().unwrap().to_owned();
    let new_access = pair["access"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, ann.refresh);
    let (status, me) = app.get("/auth/me/", &new_access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], ann.id);

    // The new token rotates too (the chain continues).
    let (status, pair2) = refresh(new_refresh.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let newest = pair2["refresh"].as_str().unwrap().to_owned();

    // Presenting a spent token again: theft detection.
    let (status, body) = refresh(ann.refresh.clone()).await;
    assert_error(status, &body, 401, "token_revoked");
    // ...which revoked the whole family, including its newest member.
    let (status, body) = refresh(newest).await;
    assert_error(status, &body, 401, "token_revoked");

    // Another login's family is untouched.
    let (status, _) = refresh(second_login["refresh"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = refresh("no-such-token".into()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({"refresh": 5})),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["refresh"].is_string());
}

async fn logout_revokes_the_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let (_, other) = app.login("ann", "password-ann").await;
    // Rotate once so logout must revoke the current member of the family.
    let (_, pair) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({"refresh": ann.refresh})),
        )
        .await;
    let current = pair["refresh"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/logout/",
            None,
            Some(json!({ "refresh": current })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({ "refresh": current })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logging out twice is harmless.
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/logout/",
            None,
            Some(json!({ "refresh": current })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The other login still refreshes.
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({"refresh": other["refresh"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn login_is_rate_limited_per_username(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ann").await;
    app.register("bob").await;
    for _ in 0..10 {
        let (status, body) = app.login("ann", "wrong-password").await;
        assert_error(status, &body, 401, "invalid_credentials");
    }
    let response = app
        .request(
            Method::POST,
            "/auth/login/",
            None,
            Some(json!({"username": "ann", "password": "password-ann"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_error(StatusCode::TOO_MANY_REQUESTS, &body, 429, "rate_limited");
    // The username is throttled regardless of its case...
    let (status, body) = app.login("ANN", "password-ann").await;
    assert_error(status, &body, 429, "rate_limited");
    // ...and other usernames are not.
    let (status, _) = app.login("bob", "password-bob").await;
    assert_eq!(status, StatusCode::OK);
}

async fn username_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let register = |username: String| {
        let app = &app;
        async move {
            app.register_raw(json!({"username": username, "email": format!("{}@example.com", username.len()), "password": "long-enough"}))
                .await
        }
    };
    for bad in [
        "ab".to_owned(),
        "a".repeat(33),
        "a b".into(),
        "ünï".into(),
        "a@b".into(),
        "semi;colon".into(),
        "".into(),
    ] {
        let (status, body) = register(bad.clone()).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(
            body["error"]["fields"]["username"].is_string(),
            "{bad}: {body}"
        );
        assert!(body["error"]["fields"].get("email").is_none(), "{body}");
    }
    for good in ["abc".to_owned(), "b".repeat(32), "a.b-c_D9".into()] {
        let (status, body) = register(good.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{good}: {body}");
    }
    // Case-insensitively unique.
    let (status, body) = app
        .register_raw(
            json!({"username": "ABC", "email": "other@example.com", "password": "long-enough"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    assert!(body["error"].get("fields").is_none());
}

async fn email_and_password_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, _) = app
        .register_raw(
            json!({"username": "ann", "email": "Ann@Example.com", "password": "12345678"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "8-character password");
    let (status, body) = app
        .register_raw(
            json!({"username": "ann2", "email": "aNN@example.COM", "password": "12345678"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    for bad in [
        "",
        "ann",
        "ann@example",
        "@example.com",
        "a b@example.com",
        "a@@b.co",
    ] {
        let (status, body) = app
            .register_raw(json!({"username": "bob", "email": bad, "password": "12345678"}))
            .await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(
            body["error"]["fields"]["email"].is_string(),
            "{bad}: {body}"
        );
    }
    let (status, body) = app
        .register_raw(json!({"username": "bob", "email": "bob@example.com", "password": "1234567"}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["password"].is_string());
    let (status, body) = app
        .register_raw(
            json!({"username": "bob", "email": "bob@example.com", "password": "p".repeat(1025)}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["password"].is_string());
    // 1024 characters, counted as characters (2 bytes each here).
    let long = "é".repeat(1024);
    let (status, body) = app
        .register_raw(json!({"username": "bob", "email": "bob@example.com", "password": long}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.login("bob", &long).await;
    assert_eq!(status, StatusCode::OK);
}

async fn every_invalid_field_is_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app
        .register_raw(json!({"username": "x", "email": "nope", "password": "short"}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 3, "{body}");
    for name in ["username", "email", "password"] {
        assert!(fields[name].as_str().is_some_and(|s| !s.is_empty()));
    }
    // Wrong JSON types.
    let (status, body) = app
        .register_raw(json!({"username": 5, "email": true, "password": ["x"]}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["email", "password", "username"],
        "{body}"
    );
    // Missing fields.
    let (status, body) = app.register_raw(json!({})).await;
    assert_error(status, &body, 400, "validation_failed");
    assert_eq!(body["error"]["fields"].as_object().unwrap().len(), 3);
    // Nothing was stored.
    let (status, _) = app.login("x", "short").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn bodies_must_be_json_objects_within_64_kib(backend: Backend) {
    let app = spawn_app(backend).await;
    let ok = br#"{"username":"ann","email":"ann@example.com","password":"password-ann"}"#.to_vec();
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/auth/register/",
            None,
            Some("text/plain"),
            ok.clone(),
        )
        .await;
    assert_error(status, &body, 415, "unsupported_media_type");
    let (status, body) = app
        .send_raw(Method::POST, "/auth/register/", None, None, ok.clone())
        .await;
    assert_error(status, &body, 415, "unsupported_media_type");
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/auth/register/",
            None,
            Some("application/json"),
            b"{\"username\": \"ann\",".to_vec(),
        )
        .await;
    assert_error(status, &body, 400, "invalid_json");
    assert!(body["error"].get("fields").is_none(), "{body}");
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/auth/register/",
            None,
            Some("application/json"),
            b"[1, 2]".to_vec(),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let mut big =
        br#"{"username":"ann","email":"ann@example.com","password":"password-ann","pad":""#
            .to_vec();
    big.extend(std::iter::repeat_n(b'x', 64 * 1024));
    big.extend(br#""}"#);
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/auth/register/",
            None,
            Some("application/json"),
            big,
        )
        .await;
    assert_error(status, &body, 413, "payload_too_large");
    // None of the above registered anyone; a charset parameter is fine.
    let (status, body) = app
        .send_raw(
            Method::POST,
            "/auth/register/",
            None,
            Some("application/json; charset=utf-8"),
            ok,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Expired access and refresh tokens answer 401 `token_expired`; tokens signed with
/// another key, or naming no user, answer 401.
async fn expired_and_forged_tokens(backend: Backend) {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use sha2::{Digest, Sha256};

    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let secret = b"test-secret-key-that-is-long-enough-0123456789";
    let now = chrono::Utc::now().timestamp();
    let sign = |sub: String, iat: i64, exp: i64, key: &[u8]| {
        encode(
            &Header::default(),
            &json!({"sub": sub, "username": "ann", "iat": iat, "exp": exp}),
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    // A well-signed token is accepted (so the forgeries below fail for the right reason).
    let valid = sign(ann.id.to_string(), now, now + 60, secret);
    let (status, _) = app.get("/auth/me/", &valid).await;
    assert_eq!(status, StatusCode::OK);
    let expired = sign(ann.id.to_string(), now - 700, now - 100, secret);
    let (status, body) = app.get("/auth/me/", &expired).await;
    assert_error(status, &body, 401, "token_expired");
    let other_key = sign(
        ann.id.to_string(),
        now,
        now + 60,
        b"another-secret-key-0123456789-abcdefgh",
    );
    let (status, body) = app.get("/auth/me/", &other_key).await;
    assert_error(status, &body, 401, "unauthenticated");
    let nobody = sign("999999".into(), now, now + 60, secret);
    let (status, _) = app.get("/auth/me/", &nobody).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let not_a_number = sign("ann".into(), now, now + 60, secret);
    let (status, _) = app.get("/auth/me/", &not_a_number).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An expired refresh token, stored (hashed, as the server stores them) in the app's database.
    let store = banter::store::connect(&app.database_url).await.unwrap();
    let raw = "an-expired-refresh-token";
    let hash: String = Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let past = banter::domain::time::Timestamp::now().plus_millis(-60_000);
    store
        .insert_refresh_token(banter::store::NewRefreshToken {
            user_id: ann.id,
            family_id: "expired-family".into(),
            token_hash: hash,
            expires_at: past,
            now: past.plus_millis(-1000),
        })
        .await
        .unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/token/refresh/",
            None,
            Some(json!({ "refresh": raw })),
        )
        .await;
    assert_error(status, &body, 401, "token_expired");
}

both_backends!(
    register_returns_a_session_and_the_private_user,
    me_needs_a_valid_token,
    login_works_in_any_case_and_fails_alike_for_unknown_users,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes_the_login,
    login_is_rate_limited_per_username,
    username_limits,
    email_and_password_limits,
    every_invalid_field_is_reported,
    bodies_must_be_json_objects_within_64_kib,
    expired_and_forged_tokens,
);
