//! SQL of the payments service (tables `payments_*`). Every state change of a payment or refund
//! queues its domain event in the same transaction.

use serde::Serialize;
use tg_contracts::{Message, Payment, PaymentFailed, PaymentRefunded, PaymentSucceeded};
use tg_messaging::OutboxWrite;
use tg_platform::{
    clock::now_ms,
    db::{is_unique_violation, Db},
    with_db, with_tx,
};

#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct PaymentRow {
    pub id: String,
    pub booking_id: String,
    pub user_id: String,
    pub provider: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub refunded_cents: i64,
    pub provider_ref: Option<String>,
    pub charge_ref: Option<String>,
    pub next_action: String,
    pub idempotency_key: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the success was settled (booking confirmed, or refunded because it could not be).
    pub settled_at: Option<i64>,
}

const PAYMENT_COLS: &str =
    "id, booking_id, user_id, provider, amount_cents, currency, status, refunded_cents, provider_ref, \
     charge_ref, next_action, idempotency_key, created_at, updated_at, settled_at";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub amount_cents: i64,
    pub status: String,
}

/// What a success report did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The payment is now succeeded (`payment.succeeded` queued).
    Succeeded,
    /// It was already; nothing changed.
    AlreadyDone,
    /// Another payment of the booking had succeeded: this one is to be refunded in full.
    Duplicate(String),
}

/// What the payment's messages say of it, now in `status`.
fn facts(p: &PaymentRow, status: &str) -> Payment {
    Payment {
        payment_id: p.id.clone(),
        booking_id: p.booking_id.clone(),
        user_id: p.user_id.clone(),
        provider: p.provider.clone(),
        amount_cents: p.amount_cents,
        currency: p.currency.clone(),
        status: status.to_owned(),
    }
}

impl Store {
    /// Insert a new payment, or return the one this user created with the same idempotency key.
    /// `(payment, created)`.
    pub async fn insert(&self, p: &PaymentRow) -> Result<(PaymentRow, bool), sqlx::Error> {
        let res = with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO payments_payments (id, booking_id, user_id, provider, amount_cents, currency, status, refunded_cents,
                provider_ref, charge_ref, next_action, idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, NULL, '{}', $8, $9, $9)")
            .bind(&p.id).bind(&p.booking_id).bind(&p.user_id).bind(&p.provider).bind(p.amount_cents).bind(&p.currency)
            .bind(&p.status).bind(&p.idempotency_key).bind(p.created_at)
            .execute(pool).await.map(|_| ()));
        match res {
            Ok(()) => Ok((self.payment(&p.id).await?.ok_or(sqlx::Error::RowNotFound)?, true)),
            Err(e) if is_unique_violation(&e) => {
                let sql =
                    format!("SELECT {PAYMENT_COLS} FROM payments_payments WHERE user_id = $1 AND idempotency_key = $2");
                let existing: PaymentRow = with_db!(&self.db, pool => sqlx::query_as(&sql)
                    .bind(&p.user_id).bind(&p.idempotency_key).fetch_one(pool).await)?;
                Ok((existing, false))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn set_started(
        &self,
        id: &str,
        provider_ref: &str,
        next_action: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE payments_payments SET provider_ref = $2, next_action = $3, updated_at = $4 WHERE id = $1")
            .bind(id).bind(provider_ref).bind(next_action.to_string()).bind(now_ms())
            .execute(pool).await.map(|_| ()))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
        let sql = format!("SELECT {PAYMENT_COLS} FROM payments_payments WHERE id = $1");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
    }

    pub async fn by_idempotency_key(&self, user_id: &str, key: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
        let sql = format!("SELECT {PAYMENT_COLS} FROM payments_payments WHERE user_id = $1 AND idempotency_key = $2");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(user_id).bind(key).fetch_optional(pool).await)
    }

    pub async fn by_provider_ref(&self, provider: &str, reference: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
        let sql = format!("SELECT {PAYMENT_COLS} FROM payments_payments WHERE provider = $1 AND provider_ref = $2");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(provider).bind(reference).fetch_optional(pool).await)
    }

    /// The booking's successful payment, if any.
    pub async fn paid_for(&self, booking_id: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {PAYMENT_COLS} FROM payments_payments WHERE booking_id = $1 AND status IN ('succeeded', 'partially_refunded')"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(booking_id).fetch_optional(pool).await)
    }

    /// Every payment started for a booking, newest first.
    pub async fn of_booking(&self, booking_id: &str) -> Result<Vec<PaymentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {PAYMENT_COLS} FROM payments_payments WHERE booking_id = $1 ORDER BY created_at DESC, id DESC LIMIT 100"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(booking_id).fetch_all(pool).await)
    }

    /// Pending payments of `provider` created after `since` (for polling providers).
    pub async fn pending(&self, provider: &str, since: i64) -> Result<Vec<PaymentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {PAYMENT_COLS} FROM payments_payments WHERE provider = $1 AND status = 'pending' AND created_at >= $2
             ORDER BY created_at LIMIT 200"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(provider).bind(since).fetch_all(pool).await)
    }

    /// Store a webhook. False when a verified webhook with this event id was stored before (a replay).
    pub async fn record_webhook(
        &self,
        provider: &str,
        event_id: Option<&str>,
        verified: bool,
        outcome: &str,
        payload: &str,
    ) -> Result<bool, sqlx::Error> {
        let res = with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO payments_webhooks (id, provider, event_id, verified, outcome, payload, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::now_v7().to_string()).bind(provider).bind(event_id).bind(verified).bind(outcome)
            .bind(payload).bind(now_ms())
            .execute(pool).await.map(|_| ()));
        match res {
            Ok(()) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A provider says the payment succeeded.
    pub async fn succeed(&self, p: &PaymentRow, charge_ref: Option<&str>) -> Result<Applied, sqlx::Error> {
        let now = now_ms();
        // Succeeds only while no other payment of the booking has (the partial unique index backs this
        // up under races: the loser's webhook fails and is retried by the provider, then lands below).
        let moved: bool = with_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE payments_payments SET status = 'succeeded', charge_ref = $2, updated_at = $3
                 WHERE id = $1 AND status IN ('pending', 'failed', 'abandoned')
                   AND NOT EXISTS (SELECT 1 FROM payments_payments o WHERE o.booking_id = $4 AND o.id <> $1
                                   AND o.status IN ('succeeded', 'partially_refunded'))")
                .bind(&p.id).bind(charge_ref).bind(now).bind(&p.booking_id).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                tx.enqueue(&[PaymentSucceeded(facts(p, "succeeded")).to_event()]).await?;
            }
            Ok::<_, sqlx::Error>(n == 1)
        })?;
        if moved {
            return Ok(Applied::Succeeded);
        }
        // Either this payment's success was applied before, or another payment of the booking had
        // succeeded: then this one's money goes back in full.
        let refund_id: Option<String> = with_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE payments_payments SET status = 'refunded', refunded_cents = amount_cents, charge_ref = $2, updated_at = $3
                 WHERE id = $1 AND status IN ('pending', 'failed', 'abandoned')")
                .bind(&p.id).bind(charge_ref).bind(now).execute(&mut *tx).await?.rows_affected();
            let id = uuid::Uuid::now_v7().to_string();
            if n == 1 {
                sqlx::query("INSERT INTO payments_refunds (id, payment_id, amount_cents, reason, status, created_at, updated_at)
                             VALUES ($1, $2, $3, 'duplicate_payment', 'pending', $4, $4)")
                    .bind(&id).bind(&p.id).bind(p.amount_cents).bind(now).execute(&mut *tx).await?;
            }
            Ok::<_, sqlx::Error>((n == 1).then_some(id))
        })?;
        Ok(refund_id.map(Applied::Duplicate).unwrap_or(Applied::AlreadyDone))
    }

    /// The success of payment `id` is settled (see [`PaymentRow::settled_at`]).
    pub async fn mark_settled(&self, id: &str) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE payments_payments SET settled_at = $2 WHERE id = $1 AND settled_at IS NULL")
            .bind(id).bind(now_ms()).execute(pool).await.map(|_| ()))
    }

    /// Successful payments not settled, last changed before `before` (oldest first).
    pub async fn unsettled(&self, before: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM payments_payments WHERE status = 'succeeded' AND settled_at IS NULL AND updated_at < $1
             ORDER BY updated_at LIMIT $2")
            .bind(before).bind(limit).fetch_all(pool).await)
    }

    /// Pending payments of any provider last changed before `before` (oldest first).
    pub async fn stale_pending(&self, before: i64, limit: i64) -> Result<Vec<PaymentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {PAYMENT_COLS} FROM payments_payments WHERE status = 'pending' AND updated_at < $1
             ORDER BY updated_at LIMIT $2"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(before).bind(limit).fetch_all(pool).await)
    }

    /// Note that reconciliation looked at a pending payment, so the next pass takes others first.
    pub async fn touch(&self, id: &str) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE payments_payments SET updated_at = $2 WHERE id = $1 AND status = 'pending'")
            .bind(id).bind(now_ms()).execute(pool).await.map(|_| ()))
    }

    /// A provider says the payment failed or was abandoned; only a pending payment changes.
    pub async fn fail(&self, p: &PaymentRow, status: &str) -> Result<bool, sqlx::Error> {
        with_tx!(&self.db, tx => {
            let n = sqlx::query("UPDATE payments_payments SET status = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'")
                .bind(&p.id).bind(status).bind(now_ms()).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                tx.enqueue(&[PaymentFailed(facts(p, status)).to_event()]).await?;
            }
            Ok::<_, sqlx::Error>(n == 1)
        })
    }

    /// Record a refund owed because of domain message `message_id` of `consumer`, at most once per
    /// message: the processed id is stored in the same transaction. The refund id, or `None` when
    /// this message was handled before or nothing is left to refund.
    pub async fn owe_refund(
        &self,
        consumer: &str,
        message_id: &str,
        payment_id: &str,
        amount_cents: i64,
        reason: &str,
        tickets: &serde_json::Value,
    ) -> Result<Option<String>, sqlx::Error> {
        let now = now_ms();
        let lock = self.db.for_update();
        let sql = format!("SELECT amount_cents, refunded_cents FROM payments_payments WHERE id = $1{lock}");
        // Early `return`s would leave the macro's function, so the body is one expression.
        with_tx!(&self.db, tx => {
            let first = tx.first_delivery(consumer, message_id).await?;
            let (paid, refunded): (i64, i64) = sqlx::query_as(&sql).bind(payment_id).fetch_one(&mut *tx).await?;
            let amount = amount_cents.min(paid - refunded);
            if first && amount > 0 {
                let status = if refunded + amount == paid { "refunded" } else { "partially_refunded" };
                sqlx::query("UPDATE payments_payments SET refunded_cents = refunded_cents + $2, status = $3, updated_at = $4 WHERE id = $1")
                    .bind(payment_id).bind(amount).bind(status).bind(now).execute(&mut *tx).await?;
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query("INSERT INTO payments_refunds (id, payment_id, amount_cents, reason, status, tickets, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)")
                    .bind(&id).bind(payment_id).bind(amount).bind(reason).bind(tickets.to_string()).bind(now)
                    .execute(&mut *tx).await?;
                Ok::<_, sqlx::Error>(Some(id))
            } else {
                Ok(None)
            }
        })
    }

    pub async fn refund(&self, id: &str) -> Result<Option<RefundRow>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, payment_id, amount_cents, status FROM payments_refunds WHERE id = $1")
            .bind(id).fetch_optional(pool).await)
    }

    pub async fn refunds_of(&self, payment_id: &str) -> Result<Vec<RefundRow>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, payment_id, amount_cents, status FROM payments_refunds WHERE payment_id = $1 ORDER BY created_at")
            .bind(payment_id).fetch_all(pool).await)
    }

    pub async fn pending_refunds(&self) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM payments_refunds WHERE status = 'pending' ORDER BY created_at LIMIT 100")
            .fetch_all(pool).await)
    }

    /// The provider paid the refund back (or an operator must): queue `payment.refunded` once.
    pub async fn refund_done(
        &self,
        refund: &RefundRow,
        p: &PaymentRow,
        status: &str,
        provider_ref: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        with_tx!(&self.db, tx => {
            let n = sqlx::query("UPDATE payments_refunds SET status = $2, provider_ref = $3, updated_at = $4 WHERE id = $1 AND status = 'pending'")
                .bind(&refund.id).bind(status).bind(provider_ref).bind(now_ms()).execute(&mut *tx).await?.rows_affected();
            if n == 1 && status == "succeeded" {
                let after = if p.refunded_cents >= p.amount_cents { "refunded" } else { "partially_refunded" };
                let refunded = PaymentRefunded {
                    payment: facts(p, after),
                    refund_id: refund.id.clone(),
                    refund_cents: refund.amount_cents,
                };
                tx.enqueue(&[refunded.to_event()]).await?;
            }
            Ok::<_, sqlx::Error>(())
        })
    }
}
