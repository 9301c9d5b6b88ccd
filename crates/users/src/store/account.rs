//! Single-use account links (verify an address, change it, reset the password), and deletion.
//! Each change and the mail telling of it commit together (the outbox).

use tg_contracts::{AccountMail, AccountMailKind, Message, UserDeleted};
use tg_messaging::OutboxWrite;
use tg_platform::{clock::now_ms, with_db, with_tx};

use super::{insert_audit, Store};

/// What a link's token is good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Prove the account's current address.
    VerifyEmail,
    /// Prove a new address, which then becomes the account's.
    ChangeEmail,
    ResetPassword,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::VerifyEmail => "verify_email",
            LinkPurpose::ChangeEmail => "change_email",
            LinkPurpose::ResetPassword => "reset_password",
        }
    }
}

/// A link about to be sent: the SHA-256 of its token (only that is stored) and the mail carrying it.
pub struct NewLink {
    pub token_hash: String,
    pub purpose: LinkPurpose,
    /// The address the link goes to; using the link proves it.
    pub email: String,
    pub expires_at: i64,
    pub mail: AccountMail,
}

impl NewLink {
    /// The mail, addressed for account `user_id` (known only once the account exists).
    pub(super) fn mail_for(&self, user_id: &str) -> AccountMail {
        AccountMail { user_id: user_id.to_owned(), ..self.mail.clone() }
    }
}

/// What using a verification link did.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// The address is proven (and, for a change, now the account's).
    Done { user_id: String },
    /// The link is unknown, used or expired, or the account's address changed since it was sent.
    Invalid,
}

pub(super) async fn insert_link<'e, E, DB>(exec: E, user_id: &str, link: &NewLink) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = DB>,
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO users_account_tokens (token_hash, user_id, purpose, email, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(link.token_hash.as_str())
    .bind(user_id)
    .bind(link.purpose.as_str())
    .bind(link.email.as_str())
    .bind(now_ms())
    .bind(link.expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Mark every unused link of the user used: after a reset, a change of password or of address, no
/// link sent before may act.
async fn end_links<'e, E, DB>(exec: E, user_id: &str, now: i64) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = DB>,
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query("UPDATE users_account_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(exec)
        .await?;
    Ok(())
}

/// Mark a live token of one of `purposes` used, returning (user id, purpose, address); `None` when it
/// is unknown, used, expired or for something else. Atomic: a token works once.
const USE_TOKEN: &str = "UPDATE users_account_tokens SET used_at = $2
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND (purpose = $3 OR purpose = $4)
     RETURNING user_id, purpose, email";

impl Store {
    /// Store `link` for `user_id` and queue its mail, in one transaction.
    pub async fn send_link(&self, user_id: &str, link: &NewLink) -> Result<(), sqlx::Error> {
        let mail = link.mail_for(user_id).to_event();
        with_tx!(&self.db, tx => {
            insert_link(&mut *tx, user_id, link).await?;
            tx.enqueue(&[mail]).await
        })
    }

    /// Queue a mail that carries no link.
    pub async fn send_mail(&self, mail: &AccountMail) -> Result<(), sqlx::Error> {
        let mail = mail.to_event();
        with_tx!(&self.db, tx => tx.enqueue(&[mail]).await)
    }

    /// Use a verification link (of the current address, or of a new one). A new address that another
    /// account took meanwhile fails with a unique violation, and the link stays unused.
    /// The old address hears of the change.
    pub async fn use_verification(&self, token_hash: &str) -> Result<Verified, sqlx::Error> {
        let now = now_ms();
        with_tx!(&self.db, tx => {
            let used: Option<(String, String, String)> = sqlx::query_as(USE_TOKEN)
                .bind(token_hash).bind(now).bind(LinkPurpose::VerifyEmail.as_str()).bind(LinkPurpose::ChangeEmail.as_str())
                .fetch_optional(&mut *tx).await?;
            let Some((user_id, purpose, email)) = used else { return Ok(Verified::Invalid) };
            let changed = if purpose == LinkPurpose::ChangeEmail.as_str() {
                let old: Option<(Option<String>, String, String)> = sqlx::query_as(
                    "SELECT email, display_name, language FROM users_accounts WHERE id = $1 AND deleted_at IS NULL")
                    .bind(&user_id).fetch_optional(&mut *tx).await?;
                let Some((old, display_name, language)) = old else { return Ok(Verified::Invalid) };
                sqlx::query("UPDATE users_accounts SET email = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1")
                    .bind(&user_id).bind(&email).bind(now).execute(&mut *tx).await?;
                // No other link outlives the change: not those to the old address, nor other changes.
                end_links(&mut *tx, &user_id, now).await?;
                insert_audit(&mut *tx, Some(&user_id), "user.email_changed", Some(&user_id), "{}").await?;
                if let Some(old) = old {
                    let kind = AccountMailKind::EmailChanged;
                    let mail = AccountMail { user_id: user_id.clone(), kind, to: old, display_name, language, link: None, expires_in_minutes: None };
                    tx.enqueue(&[mail.to_event()]).await?;
                }
                1
            } else {
                sqlx::query("UPDATE users_accounts SET email_verified_at = $3, updated_at = $3 WHERE id = $1 AND email = $2 AND deleted_at IS NULL")
                    .bind(&user_id).bind(&email).bind(now).execute(&mut *tx).await?.rows_affected()
            };
            Ok::<_, sqlx::Error>(if changed == 1 { Verified::Done { user_id } } else { Verified::Invalid })
        })
    }

    /// Use a password-reset link: the new password hash replaces the old one, every session (refresh
    /// token) ends, other reset links die, and the address counts as proven (the link reached it).
    /// The user id, or `None` when the link is unknown, used or expired.
    pub async fn use_reset(&self, token_hash: &str, password_hash: &str) -> Result<Option<String>, sqlx::Error> {
        let now = now_ms();
        with_tx!(&self.db, tx => {
            let used: Option<(String, String, String)> = sqlx::query_as(USE_TOKEN)
                .bind(token_hash).bind(now).bind(LinkPurpose::ResetPassword.as_str()).bind(LinkPurpose::ResetPassword.as_str())
                .fetch_optional(&mut *tx).await?;
            let Some((user_id, _, email)) = used else { return Ok(None) };
            let updated = sqlx::query(
                "UPDATE users_accounts SET password_hash = $2, updated_at = $3,
                    email_verified_at = CASE WHEN email = $4 THEN COALESCE(email_verified_at, $3) ELSE email_verified_at END
                 WHERE id = $1 AND deleted_at IS NULL")
                .bind(&user_id).bind(password_hash).bind(now).bind(&email).execute(&mut *tx).await?.rows_affected();
            if updated == 0 {
                return Ok(None);
            }
            // Every link dies with it: a change of address someone else started must not outlive the reset.
            end_links(&mut *tx, &user_id, now).await?;
            sqlx::query("UPDATE users_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(&user_id).bind(now).execute(&mut *tx).await?;
            insert_audit(&mut *tx, Some(&user_id), "user.password_reset", Some(&user_id), "{}").await?;
            Ok::<_, sqlx::Error>(Some(user_id))
        })
    }

    /// A signed-in user's new password: every other session ends (`keep` is the caller's own).
    pub async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        with_tx!(&self.db, tx => {
            sqlx::query("UPDATE users_accounts SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id).bind(password_hash).bind(now).execute(&mut *tx).await?;
            // Links asked for with the old password (a change of address) die with it.
            end_links(&mut *tx, user_id, now).await?;
            sqlx::query("UPDATE users_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND ($3 IS NULL OR family_id <> $3)")
                .bind(user_id).bind(now).bind(keep).execute(&mut *tx).await?;
            insert_audit(&mut *tx, Some(user_id), "user.password_changed", Some(user_id), "{}").await
        })
    }

    /// Delete an account the way accounting law allows: the row stays (bookings and payments keep
    /// pointing at its id) but nothing in it names the person any more; sessions, links, roles and
    /// pending applications go; other services hear `user.deleted` and forget their part.
    pub async fn anonymize(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let deleted = UserDeleted { user_id: user_id.to_owned() }.to_event();
        with_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE users_accounts SET email = NULL, display_name = 'Deleted user', password_hash = NULL,
                    external_issuer = NULL, external_subject = NULL, email_verified_at = NULL, deleted_at = $2, updated_at = $2
                 WHERE id = $1 AND deleted_at IS NULL")
                .bind(user_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM users_refresh_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users_account_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users_roles WHERE user_id = $1 AND role <> 'user'").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users_organizer_applications WHERE user_id = $1 AND status = 'pending'")
                .bind(user_id).execute(&mut *tx).await?;
            insert_audit(&mut *tx, Some(user_id), "user.deleted", Some(user_id), "{}").await?;
            tx.enqueue(&[deleted]).await?;
            Ok::<_, sqlx::Error>(true)
        })
    }

    /// Whether the account is deleted (anonymized).
    pub async fn is_deleted(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let at: Option<Option<i64>> = with_db!(&self.db, pool =>
            sqlx::query_scalar("SELECT deleted_at FROM users_accounts WHERE id = $1").bind(user_id).fetch_optional(pool).await)?;
        Ok(!matches!(at, Some(None)))
    }
}
