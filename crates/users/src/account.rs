//! What a person does with their own account: register (the address proven by a link), reset a
//! forgotten password, change password or address, end sessions, delete the account.
//!
//! No answer here says whether an address has an account: where it matters (registration of a
//! taken address, a reset for an unknown one) the owner of the address is written to instead.

use std::time::Duration;

use tg_contracts::{AccountMail, AccountMailKind};
use tg_platform::{clock::now_ms, db::is_unique_violation};

use crate::{
    issuer::hash_opaque_token,
    model::{parse_display_name, Email, Password},
    store::{AccountRow, LinkPurpose, NewLink, SessionRow, Verified},
    CreateUserError, UsersService,
};

/// How long a link proving an address works.
pub const VERIFY_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a password-reset link works.
pub const RESET_LINK_TTL: Duration = Duration::from_secs(30 * 60);

/// Why an account request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field is invalid: (field, message).
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// The link is unknown, used, expired, or no longer matches the account.
    #[error("the link is invalid or has expired")]
    InvalidLink,
    /// The current password given is wrong.
    #[error("the current password is incorrect")]
    WrongPassword,
    /// The account signs in elsewhere (an external provider): no password or address here to change.
    #[error("this account signs in with an outside identity provider")]
    ExternalIdentity,
    /// The new address has an account (told only to whoever proved the new address).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Organizers hand over their events before their account can go.
    #[error("organizer accounts are closed by an admin")]
    Organizer,
    #[error("no such account")]
    NoAccount,
    #[error("no such session")]
    NoSession,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A signed-in session as its owner sees it.
pub struct Session {
    pub row: SessionRow,
    /// The session the asking token belongs to.
    pub current: bool,
}

impl UsersService {
    /// Register: a new account whose address is proven by the link mailed to it. A taken address
    /// gets the same answer, and its owner a mail saying someone tried.
    pub async fn register(&self, email: &str, password: &str, display_name: &str) -> Result<(), CreateUserError> {
        let email = Email::parse(email).map_err(CreateUserError::Email)?;
        let password = Password::parse(password).map_err(CreateUserError::Password)?;
        let display_name = parse_display_name(display_name).map_err(CreateUserError::DisplayName)?;
        let hash = crate::password::hash(&password).await?;
        let link = self.new_link(LinkPurpose::VerifyEmail, email.as_str(), &display_name, "en");
        let db = |e: sqlx::Error| CreateUserError::Other(e.into());
        match self.store.create_account(email.as_str(), &display_name, &hash, &[], Some(link)).await {
            Ok(row) => {
                self.bus.committed();
                self.store
                    .audit(Some(&row.id), "user.registered", Some(&row.id), &serde_json::json!({}))
                    .await
                    .map_err(db)?;
                tracing::info!(user_id = %row.id, "user registered");
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => {
                if let Some(owner) = self.store.account_by_email(email.as_str()).await.map_err(db)? {
                    self.store
                        .send_mail(&mail(&owner, AccountMailKind::EmailTaken, email.as_str()))
                        .await
                        .map_err(db)?;
                    self.bus.committed();
                }
                Ok(())
            }
            Err(e) => Err(CreateUserError::Other(e.into())),
        }
    }

    /// Mail a new verification link to the account's unproven address (nothing when it is proven).
    pub async fn resend_verification(&self, user_id: &str) -> Result<(), AccountError> {
        let account = self.store.account_by_id(user_id).await?.ok_or(AccountError::NoAccount)?;
        let Some(email) = account.email.as_deref().filter(|_| account.email_verified_at.is_none()) else {
            return Ok(());
        };
        let link = self.new_link(LinkPurpose::VerifyEmail, email, &account.display_name, &account.language);
        self.store.send_link(user_id, &link).await?;
        self.bus.committed();
        Ok(())
    }

    /// Use a verification link (registration or change of address); the account's id.
    pub async fn verify_email(&self, token: &str) -> Result<String, AccountError> {
        match self.store.use_verification(&hash_opaque_token(token)).await {
            Ok(Verified::Done { user_id }) => {
                self.bus.committed();
                Ok(user_id)
            }
            Ok(Verified::Invalid) => Err(AccountError::InvalidLink),
            Err(e) if is_unique_violation(&e) => Err(AccountError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Mail a reset link when the address has a password account; the same (silent) outcome otherwise.
    pub async fn forgot_password(&self, email: &str) -> Result<(), AccountError> {
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let Some(account) = self.store.account_by_email(email.as_str()).await? else { return Ok(()) };
        if account.password_hash.is_none() {
            return Ok(());
        }
        let link = self.new_link(LinkPurpose::ResetPassword, email.as_str(), &account.display_name, &account.language);
        self.store.send_link(&account.id, &link).await?;
        self.bus.committed();
        Ok(())
    }

    /// Set a new password with a reset link: every session of the account ends.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<String, AccountError> {
        let password = Password::parse(new_password).map_err(|m| AccountError::Field("password", m))?;
        let hash = crate::password::hash(&password).await?;
        let user_id = self.store.use_reset(&hash_opaque_token(token), &hash).await?.ok_or(AccountError::InvalidLink)?;
        tracing::info!(user_id = %user_id, "password reset");
        Ok(user_id)
    }

    /// Change the password, proving the current one; every other session ends.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new_password: &str,
        session: Option<&str>,
    ) -> Result<(), AccountError> {
        let account = self.local_account(user_id, current).await?;
        let password = Password::parse(new_password).map_err(|m| AccountError::Field("new_password", m))?;
        let hash = crate::password::hash(&password).await?;
        self.store.change_password(&account.id, &hash, session).await?;
        Ok(())
    }

    /// Start a change of address, proving the current password: the new address gets a link that
    /// makes the change (or, when it has an account, a mail saying so); the address stays until then.
    pub async fn change_email(&self, user_id: &str, current: &str, new_email: &str) -> Result<(), AccountError> {
        let account = self.local_account(user_id, current).await?;
        let email = Email::parse(new_email).map_err(|m| AccountError::Field("new_email", m))?;
        if account.email.as_deref() == Some(email.as_str()) {
            return Err(AccountError::Field("new_email", "is already the account's address".into()));
        }
        if self.store.account_by_email(email.as_str()).await?.is_some() {
            self.store.send_mail(&mail(&account, AccountMailKind::EmailTaken, email.as_str())).await?;
        } else {
            let link =
                self.new_link(LinkPurpose::ChangeEmail, email.as_str(), &account.display_name, &account.language);
            self.store.send_link(user_id, &link).await?;
        }
        self.bus.committed();
        Ok(())
    }

    /// The account's live sessions; `current` marks the one of the asking token.
    pub async fn sessions(&self, user_id: &str, current: Option<&str>) -> Result<Vec<Session>, AccountError> {
        let rows = self.store.sessions(user_id).await?;
        Ok(rows.into_iter().map(|row| Session { current: current == Some(row.family_id.as_str()), row }).collect())
    }

    /// End one session of the account (its refresh token stops working at once, its access tokens
    /// when they expire).
    pub async fn end_session(&self, user_id: &str, session_id: &str) -> Result<(), AccountError> {
        if self.store.end_session(user_id, session_id).await? {
            Ok(())
        } else {
            Err(AccountError::NoSession)
        }
    }

    /// End every session of the account, or every other one.
    pub async fn end_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, AccountError> {
        Ok(self.store.end_sessions(user_id, keep).await?)
    }

    /// Delete (anonymize) the account, proving the password for local accounts. Organizers cannot:
    /// their events and payouts must be handed over by an admin first.
    pub async fn delete_account(&self, user_id: &str, password: Option<&str>) -> Result<(), AccountError> {
        let account = self.store.account_by_id(user_id).await?.ok_or(AccountError::NoAccount)?;
        if account.password_hash.is_some() {
            self.local_account(user_id, password.unwrap_or("")).await?;
        }
        if self.store.organizer_by_user(user_id).await?.is_some() {
            return Err(AccountError::Organizer);
        }
        if !self.store.anonymize(user_id).await? {
            return Err(AccountError::NoAccount);
        }
        self.bus.committed();
        tracing::info!(user_id = %user_id, "account deleted (anonymized)");
        Ok(())
    }

    /// The local account `user_id`, if `password` is its password.
    async fn local_account(&self, user_id: &str, password: &str) -> Result<AccountRow, AccountError> {
        let account = self.store.account_by_id(user_id).await?.ok_or(AccountError::NoAccount)?;
        if account.password_hash.is_none() {
            return Err(AccountError::ExternalIdentity);
        }
        if !crate::password::verify(password, account.password_hash.as_deref()).await {
            return Err(AccountError::WrongPassword);
        }
        Ok(account)
    }

    /// A link of `purpose` to `email` (the token is only in the mail; its hash is stored).
    fn new_link(&self, purpose: LinkPurpose, email: &str, name: &str, language: &str) -> NewLink {
        let (token, token_hash) = self.issuer.new_opaque_token();
        let (page, kind, ttl) = match purpose {
            LinkPurpose::VerifyEmail | LinkPurpose::ChangeEmail => {
                ("verify-email", AccountMailKind::VerifyEmail, VERIFY_LINK_TTL)
            }
            LinkPurpose::ResetPassword => ("reset-password", AccountMailKind::ResetPassword, RESET_LINK_TTL),
        };
        let link = format!("{}/account/{page}?token={token}", self.issuer.issuer);
        let mail = AccountMail {
            user_id: String::new(),
            kind,
            to: email.to_owned(),
            display_name: name.to_owned(),
            language: language.to_owned(),
            link: Some(link),
            expires_in_minutes: Some((ttl.as_secs() / 60) as u32),
        };
        let expires_at = now_ms() + ttl.as_millis() as i64;
        NewLink { token_hash, purpose, email: email.to_owned(), expires_at, mail }
    }
}

/// A mail without link about `account`, to `to`.
fn mail(account: &AccountRow, kind: AccountMailKind, to: &str) -> AccountMail {
    AccountMail {
        user_id: account.id.clone(),
        kind,
        to: to.to_owned(),
        display_name: account.display_name.clone(),
        language: account.language.clone(),
        link: None,
        expires_in_minutes: None,
    }
}
