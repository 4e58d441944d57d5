//! Fuzzes request body parsing and validation: `http::extract::json_object` (a body's
//! bytes to a JSON object), the `Fields` reader as the handlers use it for each body shape
//! of the contract, and the domain newtypes of `domain::validate` on arbitrary strings.
//!
//! Properties: nothing panics; a body is refused with `invalid_json` exactly when it is
//! not JSON and with `validation_failed` (field `body`) when it is JSON but not an object;
//! a shape is accepted exactly when each of its fields is valid on its own, and a refusal
//! lists exactly the invalid fields; every accepted value obeys the contract's limits
//! (checked here independently of the parser) and parses again to itself.

#![no_main]

use std::collections::BTreeSet;

use banter::domain::validate::{ClientId, Email, MessageBody, Password, RoomName, Topic, Username};
use banter::http::error::ApiError;
use banter::http::extract::{Fields, json_object};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    body(data);
    values(&String::from_utf8_lossy(data));
});

fn body(bytes: &[u8]) {
    let json = serde_json::from_slice::<Value>(bytes);
    match json_object(bytes) {
        Ok(object) => {
            assert!(matches!(&json, Ok(Value::Object(o)) if *o == object));
            shapes(&object);
        }
        Err(error) => match error.code() {
            "invalid_json" => assert!(json.is_err()),
            "validation_failed" => {
                assert!(matches!(json, Ok(ref v) if !v.is_object()));
                assert_eq!(invalid_fields(&error), names(&["body"]));
            }
            other => panic!("a body refused with {other}"),
        },
    }
}

/// How a field of a shape is read: required or not, and whether a string value is valid.
enum Rule {
    Str {
        required: bool,
        valid: fn(&str) -> bool,
    },
    Bool,
}

/// The fields a shape must reject, worked out field by field without `Fields`.
fn expected_invalid(body: &Map<String, Value>, rules: &[(&str, Rule)]) -> BTreeSet<String> {
    rules
        .iter()
        .filter(|(name, rule)| {
            let value = body.get(*name).filter(|v| !v.is_null());
            match (rule, value) {
                (Rule::Str { required, .. }, None) => *required,
                (Rule::Str { valid, .. }, Some(Value::String(s))) => !valid(s),
                (Rule::Str { .. }, Some(_)) => true,
                (Rule::Bool, None | Some(Value::Bool(_))) => false,
                (Rule::Bool, Some(_)) => true,
            }
        })
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

fn invalid_fields(error: &ApiError) -> BTreeSet<String> {
    assert_eq!(error.code(), "validation_failed");
    let fields = error.fields().expect("validation_failed lists its fields");
    assert!(fields.values().all(|problem| !problem.is_empty()));
    fields.keys().cloned().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

/// The outcome must match the field-by-field expectation.
fn check_outcome<T>(result: Result<T, ApiError>, expected: BTreeSet<String>) -> Option<T> {
    match result {
        Ok(values) => {
            assert!(expected.is_empty(), "accepted with invalid {expected:?}");
            Some(values)
        }
        Err(error) => {
            assert!(!expected.is_empty(), "refused a valid body: {error:?}");
            assert_eq!(invalid_fields(&error), expected);
            None
        }
    }
}

/// Each body shape of the contract, read as its handler reads it.
fn shapes(body: &Map<String, Value>) {
    // POST /auth/register/
    let mut fields = Fields::new(body);
    let username = fields.required("username", Username::parse);
    let email = fields.required("email", Email::parse);
    let password = fields.required("password", Password::parse);
    let expected = expected_invalid(
        body,
        &[
            ("username", required(|s| Username::parse(s).is_ok())),
            ("email", required(|s| Email::parse(s).is_ok())),
            ("password", required(|s| Password::parse(s).is_ok())),
        ],
    );
    if let Some((username, email, password)) =
        check_outcome(fields.finish((username, email, password)), expected)
    {
        check_username(username.as_str());
        check_email(email.as_str());
        check_password(password.expose());
    }

    // POST /chat/rooms/
    let mut fields = Fields::new(body);
    let name = fields.required("name", RoomName::parse);
    let topic = fields.optional("topic", Topic::parse);
    let is_private = fields.optional_bool("is_private");
    let expected = expected_invalid(
        body,
        &[
            ("name", required(|s| RoomName::parse(s).is_ok())),
            ("topic", optional(|s| Topic::parse(s).is_ok())),
            ("is_private", Rule::Bool),
        ],
    );
    if let Some(name) = check_outcome(fields.finish((name,)), expected) {
        check_room_name(name.as_str());
        if let Some(topic) = topic {
            check_topic(topic.as_str());
        }
        assert_eq!(is_private, body.get("is_private").and_then(Value::as_bool));
    }

    // PATCH /chat/rooms/{id}/
    let mut fields = Fields::new(body);
    let name = fields.optional("name", RoomName::parse);
    let topic = fields.optional("topic", Topic::parse);
    let expected = expected_invalid(
        body,
        &[
            ("name", optional(|s| RoomName::parse(s).is_ok())),
            ("topic", optional(|s| Topic::parse(s).is_ok())),
        ],
    );
    if check_outcome(fields.finish(()), expected).is_some() {
        if let Some(name) = name {
            check_room_name(name.as_str());
        }
        if let Some(topic) = topic {
            check_topic(topic.as_str());
        }
    }

    // POST /chat/rooms/{id}/messages/
    let mut fields = Fields::new(body);
    let message = fields.required("message", MessageBody::parse);
    let client_id = fields.optional("client_id", ClientId::parse);
    let expected = expected_invalid(
        body,
        &[
            ("message", required(|s| MessageBody::parse(s).is_ok())),
            ("client_id", optional(|s| ClientId::parse(s).is_ok())),
        ],
    );
    if let Some(message) = check_outcome(fields.finish((message,)), expected) {
        check_message(message.as_str());
        if let Some(client_id) = client_id {
            check_client_id(client_id.as_str());
        }
    }

    // PATCH /admin/users/{id}/
    let mut fields = Fields::new(body);
    let is_active = fields.optional_bool("is_active");
    let is_admin = fields.optional_bool("is_admin");
    let expected = expected_invalid(body, &[("is_active", Rule::Bool), ("is_admin", Rule::Bool)]);
    if check_outcome(fields.finish(()), expected).is_some() {
        assert_eq!(is_active, body.get("is_active").and_then(Value::as_bool));
        assert_eq!(is_admin, body.get("is_admin").and_then(Value::as_bool));
    }
}

fn required(valid: fn(&str) -> bool) -> Rule {
    Rule::Str {
        required: true,
        valid,
    }
}

fn optional(valid: fn(&str) -> bool) -> Rule {
    Rule::Str {
        required: false,
        valid,
    }
}

/// Every newtype on an arbitrary string: accepted exactly when the contract says so.
fn values(raw: &str) {
    let chars = raw.chars().count();
    let trimmed = raw.trim();
    let trimmed_chars = trimmed.chars().count();

    let username_ok = (3..=32).contains(&chars)
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    assert_eq!(
        Username::parse(raw).is_ok(),
        username_ok,
        "username {raw:?}"
    );
    if let Ok(username) = Username::parse(raw) {
        assert_eq!(username.as_str(), raw);
        assert_eq!(username.key(), raw.to_ascii_lowercase());
        check_username(username.as_str());
    }

    if let Ok(email) = Email::parse(raw) {
        assert_eq!(email.as_str(), trimmed);
        check_email(email.as_str());
    }

    assert_eq!(Password::parse(raw).is_ok(), (8..=1024).contains(&chars));
    if let Ok(password) = Password::parse(raw) {
        assert_eq!(password.expose(), raw);
        assert_eq!(
            format!("{password:?}"),
            "Password(<redacted>)",
            "a password in logs"
        );
    }

    let room_name_ok = (1..=80).contains(&trimmed_chars) && !trimmed.chars().any(char::is_control);
    assert_eq!(
        RoomName::parse(raw).is_ok(),
        room_name_ok,
        "room name {raw:?}"
    );
    if let Ok(name) = RoomName::parse(raw) {
        assert_eq!(name.as_str(), trimmed);
        check_room_name(name.as_str());
    }

    assert_eq!(Topic::parse(raw).is_ok(), trimmed_chars <= 500);
    if let Ok(topic) = Topic::parse(raw) {
        assert_eq!(topic.as_str(), trimmed);
        check_topic(topic.as_str());
    }

    assert_eq!(
        MessageBody::parse(raw).is_ok(),
        (1..=4000).contains(&trimmed_chars)
    );
    if let Ok(message) = MessageBody::parse(raw) {
        assert_eq!(message.as_str(), trimmed);
        check_message(message.as_str());
    }

    let client_id_ok = (1..=64).contains(&chars) && !raw.chars().any(char::is_control);
    assert_eq!(ClientId::parse(raw).is_ok(), client_id_ok);
    if let Ok(client_id) = ClientId::parse(raw) {
        assert_eq!(client_id.as_str(), raw);
        check_client_id(client_id.as_str());
    }
}

// Each check: the accepted text obeys the contract's limit and parses again to itself.

fn check_username(text: &str) {
    assert!((3..=32).contains(&text.len()));
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    );
    assert_eq!(
        Username::parse(text).map(|u| u.as_str().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_email(text: &str) {
    assert!(!text.is_empty() && text.chars().count() <= 254);
    assert!(!text.chars().any(char::is_whitespace));
    assert_eq!(text.matches('@').count(), 1, "one @ in {text:?}");
    let (local, domain) = text.split_once('@').expect("an @");
    assert!(!local.is_empty());
    assert!(domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    assert!(!domain.contains(".."));
    assert_eq!(
        Email::parse(text).map(|e| e.as_str().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_password(text: &str) {
    assert!((8..=1024).contains(&text.chars().count()));
    assert_eq!(
        Password::parse(text).map(|p| p.expose().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_room_name(text: &str) {
    assert!((1..=80).contains(&text.chars().count()));
    assert_eq!(text.trim(), text);
    assert!(!text.chars().any(char::is_control));
    assert_eq!(
        RoomName::parse(text).map(|n| n.as_str().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_topic(text: &str) {
    assert!(text.chars().count() <= 500);
    assert_eq!(text.trim(), text);
    assert_eq!(
        Topic::parse(text).map(|t| t.as_str().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_message(text: &str) {
    assert!((1..=4000).contains(&text.chars().count()));
    assert_eq!(text.trim(), text);
    assert_eq!(
        MessageBody::parse(text).map(|m| m.as_str().to_owned()),
        Ok(text.to_owned())
    );
}

fn check_client_id(text: &str) {
    assert!((1..=64).contains(&text.chars().count()));
    assert!(!text.chars().any(char::is_control));
    assert_eq!(
        ClientId::parse(text).map(|c| c.as_str().to_owned()),
        Ok(text.to_owned())
    );
}
