//! Dead letters: messages a consumer can never handle ([`crate::Poison`]), kept in
//! `messaging_dead_letters` in both modes (with RabbitMQ, the relay moves them there from the
//! dead-letter queue). An admin lists them and replays one or all once the cause is fixed: a replay
//! moves the message to `messaging_retries`, due now, for that consumer only, and is written to
//! `messaging_audit_log` (who, which) in the same transaction.

use serde::{Deserialize, Serialize};
use tg_platform::{clock::now_ms, db::Db, with_db, with_tx};
use utoipa::ToSchema;

/// A message one consumer gave up on.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct DeadLetter {
    /// The message id.
    pub id: String,
    pub consumer: String,
    pub routing_key: String,
    /// The message as it was delivered (JSON of the domain event, or the undecodable bytes).
    pub message: String,
    pub error: String,
    /// Unix milliseconds.
    pub failed_at: i64,
}

/// Keep a dead letter; false when it was kept already (a redelivery of the same).
pub async fn record(
    db: &Db,
    consumer: &str,
    id: &str,
    routing_key: &str,
    message: &str,
    error: &str,
) -> sqlx::Result<bool> {
    let n = with_db!(db, pool => sqlx::query(
        "INSERT INTO messaging_dead_letters (id, consumer, routing_key, message, error, failed_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
        .bind(id).bind(consumer).bind(routing_key).bind(message).bind(error).bind(now_ms())
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Dead letters, newest first, at most `limit`, optionally of one consumer.
pub async fn list(db: &Db, consumer: Option<&str>, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
    with_db!(db, pool => sqlx::query_as(
        "SELECT id, consumer, routing_key, message, error, failed_at FROM messaging_dead_letters
         WHERE ($1 IS NULL OR consumer = $1) ORDER BY failed_at DESC, id DESC LIMIT $2")
        .bind(consumer).bind(limit).fetch_all(pool).await)
}

pub async fn count(db: &Db) -> sqlx::Result<i64> {
    with_db!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM messaging_dead_letters").fetch_one(pool).await)
}

/// Replay one dead letter to its consumer for `actor` (a user id, or `cli`): false when there is no
/// such dead letter.
pub async fn replay(db: &Db, actor: &str, consumer: &str, id: &str) -> sqlx::Result<bool> {
    let now = now_ms();
    with_tx!(db, tx => {
        let row: Option<(String,)> = sqlx::query_as(
            "DELETE FROM messaging_dead_letters WHERE id = $1 AND consumer = $2 RETURNING message")
            .bind(id).bind(consumer).fetch_optional(&mut *tx).await?;
        if let Some((message,)) = &row {
            sqlx::query(
                "INSERT INTO messaging_retries (message_id, consumer, message, attempts, next_attempt_at, last_error)
                 VALUES ($1, $2, $3, 0, $4, 'replayed') ON CONFLICT (message_id, consumer)
                 DO UPDATE SET next_attempt_at = excluded.next_attempt_at, attempts = 0, last_error = 'replayed'")
                .bind(id).bind(consumer).bind(message).bind(now).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO messaging_audit_log (id, at, actor, action, consumer, message_id)
                         VALUES ($1, $2, $3, 'dead_letter.replayed', $4, $5)")
                .bind(uuid::Uuid::now_v7().to_string()).bind(now).bind(actor).bind(consumer).bind(id)
                .execute(&mut *tx).await?;
        }
        Ok::<_, sqlx::Error>(row.is_some())
    })
}

/// Replay every dead letter (of one consumer, if named) for `actor`; how many.
pub async fn replay_all(db: &Db, actor: &str, consumer: Option<&str>) -> sqlx::Result<u64> {
    let mut replayed = 0;
    loop {
        let batch = list(db, consumer, 500).await?;
        if batch.is_empty() {
            return Ok(replayed);
        }
        for d in batch {
            if replay(db, actor, &d.consumer, &d.id).await? {
                replayed += 1;
            }
        }
    }
}
