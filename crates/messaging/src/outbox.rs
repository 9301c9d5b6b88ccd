//! Writing domain events into the outbox, inside the transaction of the change they describe, and
//! recording processed message ids inside a consumer's transaction.
//!
//! Both are traits on the concrete connection types so that they can be called from the bodies of
//! `with_tx!`, which expand once per backend.

use sqlx::{PgConnection, SqliteConnection};
use tg_platform::{bus::DomainEvent, clock::now_ms, db::placeholders};

// Only implemented for the two concrete connection types, whose futures are Send where it matters.
#[allow(async_fn_in_trait)]
pub trait OutboxWrite {
    /// Queue `events` for delivery; they leave only if the surrounding transaction commits.
    async fn enqueue(&mut self, events: &[DomainEvent]) -> sqlx::Result<()>;
    /// Record that `consumer` acted on `message_id`; false when it already had (a redelivery), in
    /// which case the caller must not act again.
    async fn first_delivery(&mut self, consumer: &str, message_id: &str) -> sqlx::Result<bool>;
}

const INSERT_PROCESSED: &str =
    "INSERT INTO messaging_processed (consumer, message_id, processed_at) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING";

impl OutboxWrite for PgConnection {
    async fn enqueue(&mut self, events: &[DomainEvent]) -> sqlx::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // One fixed statement over arrays whatever the number of events (planned once).
        let col = |f: fn(&DomainEvent) -> String| events.iter().map(f).collect::<Vec<String>>();
        let trace_parents: Vec<Option<String>> = events.iter().map(|e| e.trace_parent.clone()).collect();
        sqlx::query(
            "INSERT INTO messaging_outbox (id, routing_key, occurred_at, payload, trace_parent, created_at)
             SELECT id, k, o, p, tp, $1
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
                AS t(id, k, o, p, tp, n) ORDER BY n",
        )
        .bind(now_ms())
        .bind(col(|e| e.id.clone()))
        .bind(col(|e| e.routing_key.clone()))
        .bind(col(|e| e.occurred_at.clone()))
        .bind(col(|e| e.payload.to_string()))
        .bind(trace_parents)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn first_delivery(&mut self, consumer: &str, message_id: &str) -> sqlx::Result<bool> {
        let r = sqlx::query(INSERT_PROCESSED).bind(consumer).bind(message_id).bind(now_ms()).execute(self).await?;
        Ok(r.rows_affected() == 1)
    }
}

impl OutboxWrite for SqliteConnection {
    async fn enqueue(&mut self, events: &[DomainEvent]) -> sqlx::Result<()> {
        // SQLite allows 32766 parameters per statement: 6 per row, so chunks of 1000 rows.
        let now = now_ms();
        for chunk in events.chunks(1000) {
            let sql = format!(
                "INSERT INTO messaging_outbox (id, routing_key, occurred_at, payload, trace_parent, created_at) VALUES {}",
                placeholders(chunk.len(), 6, 1)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.id)
                    .bind(&e.routing_key)
                    .bind(&e.occurred_at)
                    .bind(e.payload.to_string())
                    .bind(&e.trace_parent)
                    .bind(now);
            }
            q.execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn first_delivery(&mut self, consumer: &str, message_id: &str) -> sqlx::Result<bool> {
        let r = sqlx::query(INSERT_PROCESSED).bind(consumer).bind(message_id).bind(now_ms()).execute(self).await?;
        Ok(r.rows_affected() == 1)
    }
}
