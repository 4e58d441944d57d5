//! Values parsed at the edge. Each `parse` either returns a value that obeys the
//! contract's limits or a sentence saying what is wrong, which the caller files under the
//! request field's name (the contract's `fields`).

use std::collections::BTreeMap;

/// Every invalid field of one request, by its request name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn single(field: &str, problem: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, problem);
        errors
    }
}

pub type ParseResult<T> = Result<T, String>;

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// 3–32 characters of `[A-Za-z0-9_.-]`; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        let len = raw.len();
        if !(3..=32).contains(&len) {
            return Err("must be 3 to 32 characters".into());
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err("may contain only letters, digits, '_', '.' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces,
/// at most 254 characters. Deliverability is not ours to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        let email = raw.trim();
        let invalid = || Err("must be a valid email address".to_string());
        if email.is_empty() || char_count(email) > 254 || email.chars().any(char::is_whitespace) {
            return invalid();
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid();
        };
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return invalid();
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// 8–1024 characters. Kept only until it is hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        if !(8..=1024).contains(&char_count(raw)) {
            return Err("must be 8 to 1024 characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// 1–80 characters after trimming; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        let name = raw.trim();
        if !(1..=80).contains(&char_count(name)) {
            return Err("must be 1 to 80 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// At most 500 characters (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topic(String);

impl Topic {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        let topic = raw.trim();
        if char_count(topic) > 500 {
            return Err("must be at most 500 characters".into());
        }
        Ok(Self(topic.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–4000 Unicode scalar values after trimming. The trimmed text is what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        let body = raw.trim();
        if body.is_empty() {
            return Err("must not be empty".into());
        }
        if char_count(body) > 4000 {
            return Err("must be at most 4000 characters".into());
        }
        Ok(Self(body.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client's own id for a send: 1–64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> ParseResult<Self> {
        if raw.is_empty() || char_count(raw) > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_limits() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("a.b-c_D9").is_ok());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("ünï").is_err());
        assert_eq!(Username::parse("AliCe").unwrap().key(), "alice");
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "First.Last+tag@example.org"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.b", "a@b.", "a@b..c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Email::parse("A@B.CO").unwrap().key(), "a@b.co");
    }

    #[test]
    fn password_counts_characters_not_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(1024)).is_ok());
        assert!(Password::parse(&"é".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret123").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn room_name_is_trimmed_and_bounded() {
        assert_eq!(RoomName::parse("  general ").unwrap().as_str(), "general");
        assert!(RoomName::parse("   ").is_err());
        assert!(RoomName::parse(&"x".repeat(80)).is_ok());
        assert!(RoomName::parse(&"x".repeat(81)).is_err());
        assert!(Topic::parse(&"t".repeat(500)).is_ok());
        assert!(Topic::parse(&"t".repeat(501)).is_err());
    }

    #[test]
    fn message_counts_scalar_values_after_trimming() {
        assert!(MessageBody::parse(" \n\t ").is_err());
        assert_eq!(MessageBody::parse("  hi  ").unwrap().as_str(), "hi");
        assert!(MessageBody::parse(&"🦀".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"🦀".repeat(4001)).is_err());
        assert!(MessageBody::parse(&format!("  {}  ", "a".repeat(4000))).is_ok());
    }

    #[test]
    fn client_id_limits() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"c".repeat(64)).is_ok());
        assert!(ClientId::parse(&"c".repeat(65)).is_err());
    }
}
