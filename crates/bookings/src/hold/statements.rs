//! The statements of a hold batch whose shape depends on the batch: per-user counters, used
//! idempotency keys and the inserts of the accepted holds.
//!
//! PostgreSQL gets fixed statements over arrays (`= ANY`, `UNNEST`), so each is parsed and planned
//! once per connection whatever the batch size; multi-row `VALUES` with thousands of parameters cost
//! more to plan than to run. SQLite gets `IN` lists and multi-row `VALUES`, which it parses cheaply.

use sqlx::{PgConnection, SqliteConnection};
use tg_platform::{
    bind_args,
    db::{placeholders, Arg},
};

use super::{BatchWrites, UsedKey};

pub(crate) trait BatchStatements {
    /// The per-user counters of `users` (sorted) for an event, locked on PostgreSQL.
    async fn lock_user_counts(&mut self, event_id: &str, users: &[&str]) -> sqlx::Result<Vec<(String, i64)>>;
    /// Booking rows already holding one of these (user, idempotency key) pairs.
    async fn used_keys(&mut self, keys: &[(&str, &str)]) -> sqlx::Result<Vec<UsedKey>>;
    /// Inserts the bookings, items and audit entries and adds to the per-user counters.
    async fn insert_holds(&mut self, w: &BatchWrites) -> sqlx::Result<()>;
}

impl BatchStatements for PgConnection {
    async fn lock_user_counts(&mut self, event_id: &str, users: &[&str]) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT user_id, tickets FROM bookings_user_counts WHERE event_id = $1 AND user_id = ANY($2)
             ORDER BY user_id FOR UPDATE",
        )
        .bind(event_id)
        .bind(users)
        .fetch_all(self)
        .await
    }

    async fn used_keys(&mut self, keys: &[(&str, &str)]) -> sqlx::Result<Vec<UsedKey>> {
        let (users, keys): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT b.id, b.user_id, b.idempotency_key, b.request_hash
             FROM UNNEST($1::text[], $2::text[]) AS k(user_id, idempotency_key)
             JOIN bookings_bookings b ON b.user_id = k.user_id AND b.idempotency_key = k.idempotency_key",
        )
        .bind(users)
        .bind(keys)
        .fetch_all(self)
        .await
    }

    async fn insert_holds(&mut self, w: &BatchWrites) -> sqlx::Result<()> {
        let (users, tickets): (Vec<&str>, Vec<i64>) = w.per_user.iter().map(|(u, n)| (u.as_str(), *n)).unzip();
        sqlx::query(
            "INSERT INTO bookings_user_counts (event_id, user_id, tickets)
             SELECT $1, u, n FROM UNNEST($2::text[], $3::bigint[]) AS t(u, n)
             ON CONFLICT (event_id, user_id) DO UPDATE SET tickets = bookings_user_counts.tickets + excluded.tickets",
        )
        .bind(&w.event_id)
        .bind(users)
        .bind(tickets)
        .execute(&mut *self)
        .await?;

        let b = &w.bookings;
        let col = |f: fn(&super::NewBooking) -> &str| b.iter().map(f).collect::<Vec<&str>>();
        sqlx::query(
            "INSERT INTO bookings_bookings (id, user_id, event_id, status, amount_cents, currency, expires_at,
                idempotency_key, request_hash, created_at, updated_at)
             SELECT id, u, $1, 'pending_payment', a, c, $2, k, h, $3, $3
             FROM UNNEST($4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[]) AS t(id, u, a, c, k, h)",
        )
        .bind(&w.event_id)
        .bind(w.expires_at)
        .bind(w.now)
        .bind(col(|b| &b.id))
        .bind(col(|b| &b.user_id))
        .bind(b.iter().map(|b| b.amount_cents).collect::<Vec<i64>>())
        .bind(col(|b| &b.currency))
        .bind(col(|b| &b.idempotency_key))
        .bind(col(|b| &b.request_hash))
        .execute(&mut *self)
        .await?;

        let i = &w.items;
        sqlx::query(
            "INSERT INTO bookings_items (booking_id, type_id, quantity, unit_price_cents, refundable)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bool[])",
        )
        .bind(i.iter().map(|i| i.booking_id.as_str()).collect::<Vec<_>>())
        .bind(i.iter().map(|i| i.type_id.as_str()).collect::<Vec<_>>())
        .bind(i.iter().map(|i| i.quantity).collect::<Vec<_>>())
        .bind(i.iter().map(|i| i.unit_price_cents).collect::<Vec<_>>())
        .bind(i.iter().map(|i| i.refundable).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;

        sqlx::query(
            "INSERT INTO bookings_audit_log (id, at, actor_id, action, booking_id)
             SELECT id, $1, u, 'booking.held', b FROM UNNEST($2::text[], $3::text[], $4::text[]) AS t(id, u, b)",
        )
        .bind(w.now)
        .bind(col(|b| &b.audit_id))
        .bind(col(|b| &b.user_id))
        .bind(col(|b| &b.id))
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl BatchStatements for SqliteConnection {
    async fn lock_user_counts(&mut self, event_id: &str, users: &[&str]) -> sqlx::Result<Vec<(String, i64)>> {
        // The whole database is locked already (BEGIN IMMEDIATE).
        let sql = format!(
            "SELECT user_id, tickets FROM bookings_user_counts WHERE event_id = $1 AND user_id IN ({}) ORDER BY user_id",
            numbered(users.len(), 2)
        );
        let mut q = sqlx::query_as(&sql).bind(event_id);
        for u in users {
            q = q.bind(*u);
        }
        q.fetch_all(self).await
    }

    async fn used_keys(&mut self, keys: &[(&str, &str)]) -> sqlx::Result<Vec<UsedKey>> {
        // Two IN lists select a superset of the exact pairs (narrowed by the caller) through the
        // (user_id, idempotency_key) index.
        let mut users: Vec<&str> = keys.iter().map(|(u, _)| *u).collect();
        let mut ks: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
        users.sort();
        users.dedup();
        ks.sort();
        ks.dedup();
        let sql = format!(
            "SELECT id, user_id, idempotency_key, request_hash FROM bookings_bookings
             WHERE user_id IN ({}) AND idempotency_key IN ({})",
            numbered(users.len(), 1),
            numbered(ks.len(), users.len() + 1)
        );
        let mut q = sqlx::query_as(&sql);
        for v in users.iter().chain(&ks) {
            q = q.bind(*v);
        }
        q.fetch_all(self).await
    }

    async fn insert_holds(&mut self, w: &BatchWrites) -> sqlx::Result<()> {
        let text = |s: &str| Arg::Text(s.to_owned());
        let counts: Vec<Arg> =
            w.per_user.iter().flat_map(|(u, n)| [text(&w.event_id), text(u), Arg::Int(*n)]).collect();
        let bookings: Vec<Arg> = w
            .bookings
            .iter()
            .flat_map(|b| {
                [
                    text(&b.id),
                    text(&b.user_id),
                    text(&w.event_id),
                    text("pending_payment"),
                    Arg::Int(b.amount_cents),
                    text(&b.currency),
                    Arg::Int(w.expires_at),
                    text(&b.idempotency_key),
                    text(&b.request_hash),
                    Arg::Int(w.now),
                    Arg::Int(w.now),
                ]
            })
            .collect();
        let items: Vec<Arg> = w
            .items
            .iter()
            .flat_map(|i| {
                [
                    text(&i.booking_id),
                    text(&i.type_id),
                    Arg::Int(i.quantity),
                    Arg::Int(i.unit_price_cents),
                    Arg::Bool(i.refundable),
                ]
            })
            .collect();
        let audit: Vec<Arg> = w
            .bookings
            .iter()
            .flat_map(|b| [text(&b.audit_id), Arg::Int(w.now), text(&b.user_id), text("booking.held"), text(&b.id)])
            .collect();
        let statements = [
            (
                format!(
                    "INSERT INTO bookings_user_counts (event_id, user_id, tickets) VALUES {}
                     ON CONFLICT (event_id, user_id) DO UPDATE SET tickets = bookings_user_counts.tickets + excluded.tickets",
                    placeholders(w.per_user.len(), 3, 1)
                ),
                counts,
            ),
            (
                format!(
                    "INSERT INTO bookings_bookings (id, user_id, event_id, status, amount_cents, currency, expires_at,
                        idempotency_key, request_hash, created_at, updated_at) VALUES {}",
                    placeholders(w.bookings.len(), 11, 1)
                ),
                bookings,
            ),
            (
                format!(
                    "INSERT INTO bookings_items (booking_id, type_id, quantity, unit_price_cents, refundable) VALUES {}",
                    placeholders(w.items.len(), 5, 1)
                ),
                items,
            ),
            (
                format!(
                    "INSERT INTO bookings_audit_log (id, at, actor_id, action, booking_id) VALUES {}",
                    placeholders(w.bookings.len(), 5, 1)
                ),
                audit,
            ),
        ];
        for (sql, args) in &statements {
            bind_args!(sqlx::query(sql), args).execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// `$first, $first+1, …`: `n` placeholders for an `IN` list.
fn numbered(n: usize, first: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
