//! Domain types of the users service. Input types validate on construction, so a value that exists is valid.

use serde::{Deserialize, Serialize};
use tg_platform::{auth::Role, problem::FieldError};
use utoipa::ToSchema;

/// A normalised e-mail address (trimmed, lower-case, plausible syntax, at most 254 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        tg_platform::validate::email(raw).map(Email)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the length policy. Never logged: `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_BYTES: usize = 1024;
    pub fn parse(raw: &str) -> Result<Password, String> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes", Self::MAX_BYTES));
        }
        Ok(Password(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Display name: 1 to 100 characters after trimming, no control characters.
pub fn parse_display_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 {
        return Err("is required".into());
    }
    if n > 100 {
        return Err("must be at most 100 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// UI languages the platform ships.
pub fn parse_language(raw: &str) -> Result<String, String> {
    match raw {
        "en" | "km" => Ok(raw.to_owned()),
        _ => Err("must be \"en\" or \"km\"".into()),
    }
}

/// Absolute http(s) URL of at most 2048 bytes.
pub fn parse_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && url.len() <= 2048 && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(url.to_owned())
        }
        _ => Err("must be an absolute http(s) URL".into()),
    }
}

/// E.164-style phone number: `+` and 7 to 15 digits.
pub fn parse_phone(raw: &str) -> Result<String, String> {
    let p: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let digits = p.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(p)
    } else {
        Err("must be an international number like +85512345678".into())
    }
}

/// Collects field errors so a request reports every invalid field at once.
#[derive(Default)]
pub struct Validator(pub Vec<FieldError>);

impl Validator {
    pub fn check<T>(&mut self, field: &str, res: Result<T, String>) -> Option<T> {
        match res {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldError { field: field.into(), message });
                None
            }
        }
    }
    pub fn finish(self) -> Result<(), tg_platform::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(tg_platform::ApiError::validation(self.0))
        }
    }
}

/// A user as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    /// Whether the owner of `email` proved it (the link we e-mailed, or the outside provider says
    /// so). Door-staff, invite and organizer rights by address need a verified one.
    #[serde(default)]
    pub email_verified: bool,
    pub display_name: String,
    pub language: String,
    pub roles: Vec<Role>,
    /// Id of the user's organizer profile, when they have one.
    pub organizer_id: Option<String>,
    /// `local` for accounts of the built-in issuer, else the external issuer URL.
    pub identity_provider: String,
    pub created_at: String,
}

/// Organizer profile; same fields as the event document's `organizer`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OrganizerProfile {
    pub id: String,
    pub name: String,
    pub logo: Option<String>,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OrganizerApplication {
    pub id: String,
    pub user_id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub name: String,
    pub logo: Option<String>,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
    pub message: Option<String>,
    pub decision_note: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse("  Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
        for bad in ["", "alice", "alice@", "@example.com", "a@b", "a@@b.com", "a b@c.com", "a@.com", "a@b..com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn password_policy_and_redaction() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        let p = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
        // Counted in characters, so a Khmer passphrase is not penalised for its byte length.
        assert!(Password::parse("ពាក្យសម្ងាត់ល្អ").is_ok());
    }

    #[test]
    fn display_name_phone_url() {
        assert_eq!(parse_display_name("  Sokha  ").unwrap(), "Sokha");
        assert!(parse_display_name("   ").is_err());
        assert!(parse_display_name("a\u{0}b").is_err());
        assert_eq!(parse_phone("+855 12 345 678").unwrap(), "+85512345678");
        assert!(parse_phone("012345678").is_err());
        assert!(parse_url("https://techcambodia.org").is_ok());
        assert!(parse_url("javascript:alert(1)").is_err());
        assert!(parse_url("https://").is_err());
    }
}
