//! `messaging_retries`: messages to give one consumer again later (see the migration). Claimed
//! with a conditional update, so several relays never take the same row at once.

use tg_platform::{bus::DomainEvent, clock::now_ms, db::Db, with_db};

/// How long a claimed row is left alone before another relay may take it (a relay that died
/// while handling it).
const LEASE_MS: i64 = 60_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RetryRow {
    pub message_id: String,
    pub consumer: String,
    pub message: String,
    pub attempts: i32,
}

/// Give `message` to `consumer` again at `at` (Unix ms); `attempts` failed so far.
pub async fn schedule(
    db: &Db,
    consumer: &str,
    message: &DomainEvent,
    attempts: u32,
    at: i64,
    error: &str,
) -> sqlx::Result<()> {
    let body = serde_json::to_string(message).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    with_db!(db, pool => sqlx::query(
        "INSERT INTO messaging_retries (message_id, consumer, message, attempts, next_attempt_at, last_error)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (message_id, consumer) DO UPDATE SET attempts = excluded.attempts,
            next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error")
        .bind(&message.id).bind(consumer).bind(&body).bind(attempts as i32).bind(at).bind(error)
        .execute(pool).await.map(|_| ()))
}

/// Take up to `limit` rows that are due, each leased to this caller.
pub async fn claim_due(db: &Db, limit: i64) -> sqlx::Result<Vec<RetryRow>> {
    let now = now_ms();
    let due: Vec<(String, String, String, i32, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT message_id, consumer, message, attempts, next_attempt_at FROM messaging_retries
         WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2")
        .bind(now).bind(limit).fetch_all(pool).await)?;
    let mut claimed = Vec::with_capacity(due.len());
    for (message_id, consumer, message, attempts, at) in due {
        let n = with_db!(db, pool => sqlx::query(
            "UPDATE messaging_retries SET next_attempt_at = $4
             WHERE message_id = $1 AND consumer = $2 AND next_attempt_at = $3")
            .bind(&message_id).bind(&consumer).bind(at).bind(now + LEASE_MS)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 1 {
            claimed.push(RetryRow { message_id, consumer, message, attempts });
        }
    }
    Ok(claimed)
}

/// The row was handled (or moved on): forget it.
pub async fn done(db: &Db, consumer: &str, message_id: &str) -> sqlx::Result<()> {
    with_db!(db, pool => sqlx::query("DELETE FROM messaging_retries WHERE message_id = $1 AND consumer = $2")
        .bind(message_id).bind(consumer).execute(pool).await.map(|_| ()))
}

/// Rows waiting for another attempt.
pub async fn count(db: &Db) -> sqlx::Result<i64> {
    with_db!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM messaging_retries").fetch_one(pool).await)
}
