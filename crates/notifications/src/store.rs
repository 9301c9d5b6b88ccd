//! SQL of the notifications service (tables `notifications_*`).

use serde::{Deserialize, Serialize};
use tg_messaging::OutboxWrite;
use tg_platform::{clock::now_ms, db::Db, with_db, with_tx};
use utoipa::ToSchema;

/// Insert one notice and its pending deliveries inside transaction `$tx` (a macro: the statements
/// run on whichever backend the transaction is).
macro_rules! insert_notice {
    ($tx:ident, $n:expr, $message_id:expr, $now:expr) => {{
        let n = $n;
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO notifications_mailbox (id, user_id, kind, language, subject, body, booking_id, source_message_id, created_at, private)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&id).bind(&n.user_id).bind(&n.kind).bind(&n.language).bind(&n.subject).bind(&n.body)
            .bind(&n.booking_id).bind($message_id).bind($now).bind(n.private)
            .execute(&mut *$tx).await?;
        for (channel, recipient) in &n.channels {
            sqlx::query(
                "INSERT INTO notifications_deliveries (id, mailbox_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)")
                .bind(uuid::Uuid::now_v7().to_string()).bind(&id).bind(*channel).bind(recipient).bind($now)
                .execute(&mut *$tx).await?;
        }
    }};
}

#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

/// A notice for one user, and where else it goes: (channel, recipient).
pub struct NewNotice {
    pub user_id: String,
    pub kind: String,
    pub language: String,
    pub subject: String,
    pub body: String,
    pub booking_id: Option<String>,
    /// Sent but never shown in the mailbox (it carries a single-use link or code).
    pub private: bool,
    pub channels: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct MailboxEntry {
    pub id: String,
    pub kind: String,
    pub language: String,
    pub subject: String,
    pub body: String,
    pub booking_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub mailbox_id: String,
    pub channel: String,
    pub recipient: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 5;

/// A delivery's status after its `attempts`th attempt, which failed (`Some(retry)`) or not (`None`):
/// `sent`, `pending` (tried again later) or `failed`.
pub fn status_after(attempts: i64, failed: Option<bool>) -> &'static str {
    match failed {
        None => "sent",
        Some(true) if attempts < MAX_ATTEMPTS => "pending",
        Some(_) => "failed",
    }
}

impl Store {
    /// Store the notices of one domain message, once: false when `message_id` was handled before.
    pub async fn record(&self, consumer: &str, message_id: &str, notices: &[NewNotice]) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        with_tx!(&self.db, tx => {
            let first = tx.first_delivery(consumer, message_id).await?;
            if first {
                for n in notices {
                    insert_notice!(tx, n, message_id, now);
                }
            }
            Ok::<_, sqlx::Error>(first)
        })
    }

    /// Forget a deleted user, once per message: their notices, deliveries and channels.
    pub async fn forget(&self, consumer: &str, message_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
        with_tx!(&self.db, tx => {
            let first = tx.first_delivery(consumer, message_id).await?;
            if first {
                sqlx::query("DELETE FROM notifications_deliveries WHERE mailbox_id IN (SELECT id FROM notifications_mailbox WHERE user_id = $1)")
                    .bind(user_id).execute(&mut *tx).await?;
                for table in ["notifications_mailbox", "notifications_channels", "notifications_channel_codes"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1")).bind(user_id).execute(&mut *tx).await?;
                }
            }
            Ok::<_, sqlx::Error>(first)
        })
    }

    /// A user's notices, newest first (id breaks ties), those after `before` = (created_at, id) of the
    /// last one seen.
    pub async fn mailbox(
        &self,
        user_id: &str,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<MailboxEntry>, sqlx::Error> {
        // No cursor: start above any real time, so one statement serves every page.
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, kind, language, subject, body, booking_id, created_at FROM notifications_mailbox
             WHERE user_id = $1 AND NOT private AND (created_at < $2 OR (created_at = $2 AND id < $3))
             ORDER BY created_at DESC, id DESC LIMIT $4")
            .bind(user_id).bind(at).bind(id).bind(limit).fetch_all(pool).await)
    }

    pub async fn entry(&self, id: &str) -> Result<Option<MailboxEntry>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, kind, language, subject, body, booking_id, created_at FROM notifications_mailbox WHERE id = $1")
            .bind(id).fetch_optional(pool).await)
    }

    /// Claim the next due delivery for one attempt: it stays pending, but its `next_attempt_at` moves
    /// to `until`, so no other dispatcher (another instance) takes it while the claim lasts; `None`
    /// when nothing is due. The due condition is in the outer `WHERE` too: on PostgreSQL a row
    /// another dispatcher claimed meanwhile is re-checked there and left out (and `SKIP LOCKED` lets
    /// concurrent dispatchers pick different rows); SQLite runs it under its single write lock.
    pub async fn claim_due(&self, now: i64, until: i64) -> Result<Option<Delivery>, sqlx::Error> {
        let lock = match self.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE notifications_deliveries SET next_attempt_at = $2
             WHERE id = (SELECT id FROM notifications_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                         ORDER BY next_attempt_at LIMIT 1{lock})
               AND status = 'pending' AND next_attempt_at <= $1
             RETURNING id, mailbox_id, channel, recipient, status, attempts, last_error, created_at, updated_at"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(now).bind(until).fetch_optional(pool).await)
    }

    /// Extend the claim on delivery `id` from `from` to `to`; false when the claim is no longer this
    /// caller's (it ran out and another dispatcher took the delivery).
    pub async fn renew_claim(&self, id: &str, from: i64, to: i64) -> Result<bool, sqlx::Error> {
        let n = with_db!(&self.db, pool => sqlx::query(
            "UPDATE notifications_deliveries SET next_attempt_at = $3
             WHERE id = $1 AND status = 'pending' AND next_attempt_at = $2")
            .bind(id).bind(from).bind(to).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn deliveries(&self, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, mailbox_id, channel, recipient, status, attempts, last_error, created_at, updated_at
             FROM notifications_deliveries ORDER BY created_at DESC LIMIT $1")
            .bind(limit).fetch_all(pool).await)
    }

    /// Record an attempt made under a claim lasting until `claimed_until`: sent, failed for good, or
    /// pending again after `retry_in_ms`. False (nothing written) when the claim was lost meanwhile:
    /// the dispatcher that took the delivery over records its own attempt.
    pub async fn attempted(
        &self,
        d: &Delivery,
        error: Option<(&str, bool)>,
        retry_in_ms: i64,
        claimed_until: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let attempts = d.attempts + 1;
        let status = status_after(attempts, error.map(|(_, retry)| retry));
        let last_error = error.map(|(e, _)| e);
        let n = with_db!(&self.db, pool => sqlx::query(
            "UPDATE notifications_deliveries SET status = $2, attempts = $3, last_error = $4, next_attempt_at = $5, updated_at = $6
             WHERE id = $1 AND status = 'pending' AND next_attempt_at = $7")
            .bind(&d.id).bind(status).bind(attempts).bind(last_error).bind(now + retry_in_ms).bind(now).bind(claimed_until)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 1 && status != "pending" {
            // Its link or code has done its work (or never will): not kept readable at rest.
            with_db!(&self.db, pool => sqlx::query("UPDATE notifications_mailbox SET body = '' WHERE id = $1 AND private")
                .bind(&d.mailbox_id).execute(pool).await.map(|_| ()))?;
        }
        Ok(n == 1)
    }

    /// The confirmed (telegram chat id, phone) of a user: where notices go.
    pub async fn channels(&self, user_id: &str) -> Result<(Option<String>, Option<String>), sqlx::Error> {
        let row: Option<(Option<String>, Option<String>)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT CASE WHEN telegram_confirmed THEN telegram_chat_id END, CASE WHEN phone_confirmed THEN phone END
             FROM notifications_channels WHERE user_id = $1")
            .bind(user_id).fetch_optional(pool).await)?;
        Ok(row.unwrap_or_default())
    }

    /// The channels a user gave, confirmed or not.
    pub async fn channel_settings(&self, user_id: &str) -> Result<ChannelSettings, sqlx::Error> {
        let row: Option<ChannelSettings> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT telegram_chat_id, telegram_confirmed, phone, phone_confirmed FROM notifications_channels WHERE user_id = $1")
            .bind(user_id).fetch_optional(pool).await)?;
        Ok(row.unwrap_or_default())
    }

    /// Save a user's channels. A channel whose recipient changed is unconfirmed until the code in
    /// `codes` (one private notice per new recipient, sent through that channel) is typed back.
    pub async fn set_channels(
        &self,
        user_id: &str,
        s: &ChannelSettings,
        codes: &[(NewCode, NewNotice)],
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let message_id = uuid::Uuid::now_v7().to_string();
        with_tx!(&self.db, tx => {
            sqlx::query(
                "INSERT INTO notifications_channels (user_id, telegram_chat_id, telegram_confirmed, phone, phone_confirmed, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id) DO UPDATE SET telegram_chat_id = excluded.telegram_chat_id,
                    telegram_confirmed = excluded.telegram_confirmed, phone = excluded.phone,
                    phone_confirmed = excluded.phone_confirmed, updated_at = excluded.updated_at")
                .bind(user_id).bind(&s.telegram_chat_id).bind(s.telegram_confirmed).bind(&s.phone).bind(s.phone_confirmed).bind(now)
                .execute(&mut *tx).await?;
            for (code, notice) in codes {
                sqlx::query(
                    "INSERT INTO notifications_channel_codes (user_id, channel, recipient, code, expires_at, attempts)
                     VALUES ($1, $2, $3, $4, $5, 0)
                     ON CONFLICT (user_id, channel) DO UPDATE SET recipient = excluded.recipient, code = excluded.code,
                        expires_at = excluded.expires_at, attempts = 0")
                    .bind(user_id).bind(code.channel).bind(&code.recipient).bind(&code.code).bind(code.expires_at)
                    .execute(&mut *tx).await?;
                insert_notice!(tx, notice, &message_id, now);
            }
            Ok::<_, sqlx::Error>(())
        })
    }

    /// Check a code typed back for `channel` (`telegram` or `sms`); at most [`MAX_CODE_ATTEMPTS`] tries.
    /// Each try is taken atomically before the code is compared, so parallel guesses cannot share one.
    pub async fn confirm_channel(&self, user_id: &str, channel: &str, code: &str) -> Result<CodeCheck, sqlx::Error> {
        use subtle::ConstantTimeEq;
        let now = now_ms();
        with_tx!(&self.db, tx => {
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE notifications_channel_codes SET attempts = attempts + 1
                 WHERE user_id = $1 AND channel = $2 AND attempts < $3 AND expires_at > $4
                 RETURNING recipient, code")
                .bind(user_id).bind(channel).bind(MAX_CODE_ATTEMPTS).bind(now).fetch_optional(&mut *tx).await?;
            // No early `return` below: it would leave without committing (the try must count).
            let check = match row {
                None => CodeCheck::NoCode,
                Some((_, expected)) if !bool::from(expected.as_bytes().ct_eq(code.as_bytes())) => CodeCheck::Wrong,
                Some((recipient, _)) => {
                    let confirm = if channel == "telegram" {
                        "UPDATE notifications_channels SET telegram_confirmed = TRUE, updated_at = $3 WHERE user_id = $1 AND telegram_chat_id = $2"
                    } else {
                        "UPDATE notifications_channels SET phone_confirmed = TRUE, updated_at = $3 WHERE user_id = $1 AND phone = $2"
                    };
                    let n = sqlx::query(confirm).bind(user_id).bind(&recipient).bind(now).execute(&mut *tx).await?.rows_affected();
                    sqlx::query("DELETE FROM notifications_channel_codes WHERE user_id = $1 AND channel = $2")
                        .bind(user_id).bind(channel).execute(&mut *tx).await?;
                    if n == 1 { CodeCheck::Confirmed } else { CodeCheck::NoCode }
                }
            };
            Ok::<_, sqlx::Error>(check)
        })
    }

    /// When the code pending for `channel` expires, if one is.
    pub async fn code_expires_at(&self, user_id: &str, channel: &str) -> Result<Option<i64>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT expires_at FROM notifications_channel_codes WHERE user_id = $1 AND channel = $2")
            .bind(user_id).bind(channel).fetch_optional(pool).await)
    }
}

/// A channel confirmation code to store.
pub struct NewCode {
    /// `telegram` or `sms`.
    pub channel: &'static str,
    pub recipient: String,
    pub code: String,
    pub expires_at: i64,
}

/// Wrong tries a code survives.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// What a code typed back did.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    Confirmed,
    Wrong,
    /// None pending: never sent, expired, used up, or the channel changed since.
    NoCode,
}

/// A user's channels with whether each is confirmed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct ChannelSettings {
    /// Telegram chat id that receives notices (after the user wrote to the bot).
    pub telegram_chat_id: Option<String>,
    /// Whether the code sent to the chat was typed back; notices go only to a confirmed chat.
    pub telegram_confirmed: bool,
    /// Mobile number in E.164 (`+855…`) for SMS notices.
    pub phone: Option<String>,
    /// Whether the code sent by SMS was typed back; notices go only to a confirmed number.
    pub phone_confirmed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(user_id: &str, n: usize) -> NewNotice {
        NewNotice {
            user_id: user_id.into(),
            kind: "welcome".into(),
            language: "en".into(),
            subject: format!("notice {n}"),
            body: String::new(),
            booking_id: None,
            private: false,
            channels: Vec::new(),
        }
    }

    /// Notices written in one transaction share their millisecond; paging must still give each once.
    #[tokio::test]
    async fn pages_give_every_notice_once_newest_first_even_within_one_millisecond() {
        let dir = std::env::temp_dir().join(format!("tg-mailbox-{}", uuid::Uuid::new_v4().simple()));
        let db = Db::connect(None, &dir, 2).await.unwrap();
        db.migrate(vec![tg_messaging::migrations(), crate::migrations()]).await.unwrap();
        let store = Store { db };
        for batch in 0..3 {
            let notices: Vec<NewNotice> =
                (0..7).map(|i| notice("u1", batch * 7 + i)).chain([notice("u2", 99)]).collect();
            assert!(store.record("test", &format!("m{batch}"), &notices).await.unwrap());
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let all = store.mailbox("u1", None, 100).await.unwrap();
        assert_eq!(all.len(), 21, "only u1's notices");
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        assert_eq!(ids(&all), ids(&sorted), "newest first, id descending within a millisecond");

        let mut walked = Vec::new();
        let mut before: Option<(i64, String)> = None;
        loop {
            let page = store.mailbox("u1", before.as_ref().map(|(t, id)| (*t, id.as_str())), 4).await.unwrap();
            let Some(last) = page.last() else { break };
            before = Some((last.created_at, last.id.clone()));
            walked.extend(page);
        }
        assert_eq!(ids(&walked), ids(&all));
        store.db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn ids(entries: &[MailboxEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }
}
